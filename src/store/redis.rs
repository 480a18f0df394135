//! The shared store: Redis (or Redis Cluster), one Lua script per state change.
//!
//! Every key of a room carries the hash tag `{ROOM}`, so a room's scripts run on one
//! cluster node. Time comes from Redis `TIME` inside the scripts: one clock for all
//! instances. Scripts are idempotent, so a call retried after a dropped connection does
//! no harm. The connection is created lazily and re-established in the background, so the
//! gateway starts, and keeps answering, while Redis is away.

use super::types::*;
use super::visits;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Client, RedisError, Script, ScriptInvocation, TlsCertificates, Value};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Socket-level limits: a dead Redis shows up within these, not at the kernel's leisure.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

const PRELUDE: &str = include_str!("lua/prelude.lua");

pub struct RedisStore {
    inner: Arc<Inner>,
    /// Visits go through one coalescing task (see `visits.rs`), started on first use.
    visits: OnceLock<mpsc::Sender<visits::Job>>,
}

pub(super) struct Inner {
    connection: Connection,
    scripts: Scripts,
}

#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

struct Scripts {
    visit: Script,
    tick: Script,
    stats: Script,
    leave: Script,
    end_session: Script,
    renew: Script,
    control: Script,
}

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

impl RedisStore {
    /// `url`: `redis://` or `rediss://` (TLS); `cluster`: node URLs of a Redis Cluster
    /// (used instead of `url` when non-empty); `ca_pem`: CA certificates to trust for TLS
    /// instead of the system's. Does not wait for Redis to be up.
    pub fn connect(url: &str, cluster: &[String], ca_pem: Option<Vec<u8>>) -> Result<Self, StoreError> {
        let certificates = || TlsCertificates { client_tls: None, root_cert: ca_pem.clone() };
        let connection = if cluster.is_empty() {
            let client = match &ca_pem {
                Some(_) => Client::build_with_tls(url, certificates()),
                None => Client::open(url),
            }
            .map_err(|e| StoreError::Unavailable(format!("store.redis_url: {e}")))?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_secs(2))
                .set_number_of_retries(usize::MAX);
            let manager = ConnectionManager::new_lazy_with_config(client, config)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            Connection::Single(manager)
        } else {
            let mut builder = ClusterClientBuilder::new(cluster.iter().map(String::as_str))
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                .retries(2);
            if ca_pem.is_some() {
                builder = builder.certs(certificates());
            }
            let client = builder.build().map_err(|e| StoreError::Unavailable(format!("store.redis_cluster: {e}")))?;
            let connection = client.get_pending_async_connection_with_config(redis::cluster::ClusterConfig::new());
            Connection::Cluster(connection)
        };
        let inner = Inner {
            connection,
            scripts: Scripts {
                visit: script(include_str!("lua/visit.lua")),
                tick: script(include_str!("lua/tick.lua")),
                stats: script(include_str!("lua/stats.lua")),
                leave: script(include_str!("lua/leave.lua")),
                end_session: script(include_str!("lua/end_session.lua")),
                renew: script(include_str!("lua/renew.lua")),
                control: script(include_str!("lua/control.lua")),
            },
        };
        Ok(Self { inner: Arc::new(inner), visits: OnceLock::new() })
    }

    pub async fn visit(&self, room: &str, visit: &Visit<'_>, policy: &Policy) -> Result<Standing, StoreError> {
        let sender = self.visits.get_or_init(|| visits::spawn(self.inner.clone()));
        let (reply, answer) = oneshot::channel();
        let job = visits::Job { room: room.to_owned(), policy: policy.clone(), visit: visit.into(), reply };
        sender.send(job).await.map_err(|_| StoreError::Unavailable("visit batcher stopped".into()))?;
        answer.await.map_err(|_| StoreError::Unavailable("visit batcher dropped the call".into()))?
    }

    pub async fn leave(&self, room: &str, visitor: &str, revoke_until_ms: u64) -> Result<(), StoreError> {
        let mut call = keyed(&self.inner.scripts.leave, room);
        call.arg(visitor).arg(revoke_until_ms);
        self.inner.numbers(&call, 0).await.map(drop)
    }

    pub async fn end_session(&self, room: &str, session: &str, revoke_until_ms: u64) -> Result<(), StoreError> {
        let mut call = keyed(&self.inner.scripts.end_session, room);
        call.arg(session).arg(revoke_until_ms);
        self.inner.numbers(&call, 0).await.map(drop)
    }

    pub async fn renew(&self, room: &str, session: &str, expires_at_ms: u64) -> Result<bool, StoreError> {
        let mut call = keyed(&self.inner.scripts.renew, room);
        call.arg(session).arg(expires_at_ms);
        Ok(self.inner.numbers(&call, 1).await?[0] == 1)
    }

    pub async fn tick(&self, room: &str, policy: &Policy) -> Result<TickReport, StoreError> {
        let mut call = keyed(&self.inner.scripts.tick, room);
        call.arg(policy.admit_per_minute)
            .arg(policy.max_active_users)
            .arg(policy.abandon_ms)
            .arg(policy.opens_at_ms.unwrap_or(0))
            .arg(ADMISSION_LOOKAHEAD_MS)
            .arg(TICK_BATCH);
        let r = self.inner.numbers(&call, 11).await?;
        Ok(TickReport {
            admitted: r[0] as u64,
            abandoned: r[1] as u64,
            expired_sessions: r[2] as u64,
            stats: stats_from(&r[3..]),
        })
    }

    pub async fn stats(&self, room: &str, policy: &Policy) -> Result<RoomStats, StoreError> {
        let mut call = keyed(&self.inner.scripts.stats, room);
        call.arg(policy.admit_per_minute).arg(policy.max_active_users);
        let r = self.inner.numbers(&call, 8).await?;
        Ok(stats_from(&r))
    }

    pub async fn set_paused(&self, room: &str, paused: bool) -> Result<(), StoreError> {
        let mut call = keyed(&self.inner.scripts.control, room);
        call.arg("paused").arg(if paused { "1" } else { "" });
        self.inner.numbers(&call, 0).await.map(drop)
    }

    pub async fn set_closed(&self, room: &str, closed: bool) -> Result<(), StoreError> {
        let mut call = keyed(&self.inner.scripts.control, room);
        call.arg("closed").arg(if closed { "1" } else { "" });
        self.inner.numbers(&call, 0).await.map(drop)
    }

    pub async fn set_limits(&self, room: &str, limits: LimitOverrides) -> Result<(), StoreError> {
        let mut call = keyed(&self.inner.scripts.control, room);
        if let Some(n) = limits.admit_per_minute {
            call.arg("admit_per_minute").arg(n);
        }
        if let Some(n) = limits.max_active_users {
            call.arg("max_active_users").arg(n);
        }
        self.inner.numbers(&call, 0).await.map(drop)
    }
}

impl Inner {
    /// One `visit` script call for several visitors of one room; one answer each, in order.
    pub(super) async fn visit_many(
        &self,
        room: &str,
        policy: &Policy,
        visits: &[visits::OwnedVisit],
    ) -> Result<Vec<Standing>, StoreError> {
        let mut call = keyed(&self.scripts.visit, room);
        call.arg(policy.admit_per_minute)
            .arg(policy.max_active_users)
            .arg(policy.session_ms)
            .arg(policy.opens_at_ms.unwrap_or(0))
            .arg(RESTORE_MAX_AGE_MS);
        for visit in visits {
            let (restore_epoch, restore_seq) = match visit.restore {
                Some(r) => (r.epoch.to_string(), r.seq.to_string()),
                None => (String::new(), String::new()),
            };
            call.arg(&visit.visitor).arg(restore_epoch).arg(restore_seq).arg(visit.prequeue_score).arg(if visit.join {
                "1"
            } else {
                "0"
            });
        }
        let reply = self.numbers(&call, 6 * visits.len()).await?;
        reply.chunks(6).take(visits.len()).map(standing).collect()
    }

    /// Runs a script and reads its reply as at least `expect` integers.
    async fn numbers(&self, call: &ScriptInvocation<'_>, expect: usize) -> Result<Vec<i64>, StoreError> {
        let reply: Value = match self.connection.clone() {
            Connection::Single(mut c) => call.invoke_async(&mut c).await,
            Connection::Cluster(mut c) => call.invoke_async(&mut c).await,
        }
        .map_err(unavailable)?;
        let numbers = match reply {
            Value::Int(n) => vec![n],
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::Int(n) => Ok(n),
                    other => Err(StoreError::Protocol(format!("expected an integer, got {other:?}"))),
                })
                .collect::<Result<_, _>>()?,
            other => return Err(StoreError::Protocol(format!("expected integers, got {other:?}"))),
        };
        if numbers.len() < expect {
            return Err(StoreError::Protocol(format!("expected {expect} integers, got {}", numbers.len())));
        }
        Ok(numbers)
    }
}

/// A script invocation with the room's keys, all under one hash tag.
fn keyed<'a>(script: &'a Script, room: &str) -> ScriptInvocation<'a> {
    let mut call = script.prepare_invoke();
    for part in ["waiting", "seen", "admitted", "active", "revoked", "state", "seq"] {
        call.key(format!("anteroom:{{{room}}}:{part}"));
    }
    call
}

fn standing(reply: &[i64]) -> Result<Standing, StoreError> {
    let state = match reply[0] {
        1 => QueueState::Waiting,
        2 => QueueState::Admitted,
        3 => QueueState::Scheduled,
        4 => QueueState::Paused,
        5 => QueueState::Closed,
        other => return Err(StoreError::Protocol(format!("visit: unknown state {other}"))),
    };
    Ok(Standing {
        state,
        position: u64::try_from(reply[1]).ok().filter(|_| reply[1] > 0),
        queue_length: reply[2].max(0) as u64,
        seq: reply[3].max(0) as u64,
        epoch: reply[4].max(0) as u64,
        immediate: reply[5] == 1,
    })
}

fn stats_from(r: &[i64]) -> RoomStats {
    RoomStats {
        queue_length: r[0].max(0) as u64,
        active_sessions: r[1].max(0) as u64,
        admitted_unclaimed: r[2].max(0) as u64,
        admitted_total: r[3].max(0) as u64,
        paused: r[4] == 1,
        admit_per_minute: r[5].clamp(0, u32::MAX as i64) as u32,
        max_active_users: r[6].clamp(0, u32::MAX as i64) as u32,
        closed: r[7] == 1,
    }
}

fn unavailable(e: RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}
