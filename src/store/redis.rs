//! The shared store: Redis (or Redis Cluster), one Lua script per state change.
//!
//! Every key of a room carries the hash tag `{ROOM}`, so a room's scripts run on one
//! cluster node. Time comes from Redis `TIME` inside the scripts: one clock for all
//! instances. Scripts are idempotent, so a call retried after a dropped connection does
//! no harm. The connection is created lazily and re-established in the background, so the
//! gateway starts, and keeps answering, while Redis is away.

use super::health::*;
use super::reply::{self, Row, Rows};
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

struct Inner {
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
    unpin: Script,
    health: Script,
    adapt: Script,
    find: Script,
}

mod find;

/// A script: the state codes (defined once, by `QueueState::code`), the prelude, the body.
fn script(body: &str) -> Script {
    Script::new(&script_source(body))
}

fn script_source(body: &str) -> String {
    let states: String =
        QueueState::ALL.iter().map(|state| format!("local {} = {}\n", state.lua_name(), state.code())).collect();
    format!("{states}{PRELUDE}\n{body}")
}

/// The `visit` script exactly as the store sends it (the queue benchmark runs it in
/// `redis-benchmark` for the ceiling).
pub fn visit_script_source() -> String {
    script_source(include_str!("lua/visit.lua"))
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cluster = matches!(self.inner.connection, Connection::Cluster(_));
        f.debug_struct("RedisStore").field("cluster", &cluster).finish_non_exhaustive()
    }
}

impl RedisStore {
    /// `url`: `redis://` or `rediss://` (TLS); `cluster`: node URLs of a Redis Cluster
    /// (used instead of `url` when non-empty); `ca_pem`: CA certificates to trust for TLS
    /// instead of the system's. Does not wait for Redis to be up.
    pub fn connect(url: &str, cluster: &[String], ca_pem: Option<Vec<u8>>) -> Result<Self, StoreFault> {
        let certificates = || TlsCertificates { client_tls: None, root_cert: ca_pem.clone() };
        let connection = if cluster.is_empty() {
            let client = match &ca_pem {
                Some(_) => Client::build_with_tls(url, certificates()),
                None => Client::open(url),
            }
            .map_err(|e| StoreFault::Setup(format!("store.redis_url: {e}")))?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_secs(2))
                .set_number_of_retries(usize::MAX);
            let manager = ConnectionManager::new_lazy_with_config(client, config)
                .map_err(|e| StoreFault::Setup(e.to_string()))?;
            Connection::Single(manager)
        } else {
            let mut builder = ClusterClientBuilder::new(cluster.iter().map(String::as_str))
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                .retries(2);
            if ca_pem.is_some() {
                builder = builder.certs(certificates());
            }
            let client = builder.build().map_err(|e| StoreFault::Setup(format!("store.redis_cluster: {e}")))?;
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
                unpin: script(include_str!("lua/unpin.lua")),
                health: script(include_str!("lua/health.lua")),
                adapt: script(include_str!("lua/adapt.lua")),
                find: script(include_str!("lua/find.lua")),
            },
        };
        Ok(Self { inner: Arc::new(inner), visits: OnceLock::new() })
    }

    pub async fn visit(&self, room: &str, visit: &Visit<'_>, policy: &Policy) -> Result<Standing, StoreFault> {
        let sender = self.visits.get_or_init(|| visits::spawn(self.inner.clone(), visits::LINGER));
        let (reply, answer) = oneshot::channel();
        let job = visits::Job { room: room.to_owned(), policy: policy.clone(), visit: visit.into(), reply };
        sender.send(job).await.map_err(|_| StoreFault::unreachable("visit batcher stopped"))?;
        answer.await.map_err(|_| StoreFault::unreachable("visit batcher dropped the call"))?
    }

    pub async fn leave(&self, room: &str, departure: &Departure<'_>) -> Result<(), StoreFault> {
        let mut call = keyed(&self.inner.scripts.leave, room);
        let seq = if departure.seq > 0 { departure.seq.to_string() } else { String::new() };
        call.arg(departure.visitor).arg(departure.session.unwrap_or("")).arg(seq);
        self.inner.numbers(&call, 0).await.map(drop)
    }

    pub async fn end_session(&self, room: &str, session: &str) -> Result<(), StoreFault> {
        let mut call = keyed(&self.inner.scripts.end_session, room);
        call.arg(session);
        self.inner.numbers(&call, 0).await.map(drop)
    }

    pub async fn renew(&self, room: &str, renewal: &Renewal<'_>, policy: &Policy) -> Result<bool, StoreFault> {
        let mut call = keyed(&self.inner.scripts.renew, room);
        room_args(&mut call, policy);
        call.arg(renewal.session).arg(renewal.ttl_ms).arg(renewal.age_ms);
        Ok(self.inner.numbers(&call, 1).await?[0] == 1)
    }

    pub async fn tick(&self, room: &str, policy: &Policy, revoked_since_ms: u64) -> Result<TickReport, StoreFault> {
        let mut call = keyed(&self.inner.scripts.tick, room);
        room_args(&mut call, policy);
        call.arg(TICK_BATCH).arg(revoked_since_ms).arg(policy.claim_ms).arg(policy.rejoin_ms).arg(policy.reclaim_ms);
        let rows = Rows::parse("tick", self.inner.run(&call).await?)?;
        let row = rows.single()?;
        let revocations = match row.value("revocations")? {
            Value::Array(pairs) => revocations(pairs)?,
            other => return Err(StoreFault::Protocol(format!("tick: expected revocations, got {other:?}"))),
        };
        Ok(TickReport {
            admitted: row.count("admitted")?,
            abandoned: row.count("abandoned")?,
            expired_sessions: row.count("expired")?,
            stats: stats_from(&row)?,
            revocations,
        })
    }

    pub async fn stats(&self, room: &str, policy: &Policy) -> Result<RoomStats, StoreFault> {
        let mut call = keyed(&self.inner.scripts.stats, room);
        call.arg(policy.admit_per_minute).arg(policy.max_active_users).arg(number(policy.adaptive_start));
        let rows = Rows::parse("stats", self.inner.run(&call).await?)?;
        stats_from(&rows.single()?)
    }

    pub async fn set_paused(&self, room: &str, paused: bool) -> Result<(), StoreFault> {
        let mut call = keyed(&self.inner.scripts.control, room);
        call.arg("paused").arg(if paused { "1" } else { "" });
        self.inner.numbers(&call, 0).await.map(drop)
    }

    pub async fn set_closed(&self, room: &str, closed: bool) -> Result<(), StoreFault> {
        let mut call = keyed(&self.inner.scripts.control, room);
        call.arg("closed").arg(if closed { "1" } else { "" });
        self.inner.numbers(&call, 0).await.map(drop)
    }

    pub async fn set_limits(&self, room: &str, limits: LimitOverrides) -> Result<(), StoreFault> {
        if limits.reset {
            self.unpin_rate(room).await?;
            let mut clear = keyed(&self.inner.scripts.control, room);
            clear.arg("admit_per_minute").arg("").arg("max_active_users").arg("");
            self.inner.numbers(&clear, 0).await?;
        }
        let mut call = keyed(&self.inner.scripts.control, room);
        if let Some(n) = limits.admit_per_minute {
            call.arg("admit_per_minute").arg(n);
        }
        if let Some(n) = limits.max_active_users {
            call.arg("max_active_users").arg(n);
        }
        self.inner.numbers(&call, 0).await.map(drop)
    }

    pub async fn set_message(&self, room: &str, message: &str) -> Result<(), StoreFault> {
        let mut call = keyed(&self.inner.scripts.control, room);
        call.arg("message").arg(message);
        self.inner.numbers(&call, 0).await.map(drop)
    }

    pub async fn unpin_rate(&self, room: &str) -> Result<(), StoreFault> {
        self.inner.numbers(&keyed(&self.inner.scripts.unpin, room), 0).await.map(drop)
    }

    pub async fn report_health(
        &self,
        room: &str,
        policy: &Policy,
        sample: &HealthSample,
        window_ms: u64,
    ) -> Result<Option<HealthWindow>, StoreFault> {
        let mut call = keyed(&self.inner.scripts.health, room);
        room_args(&mut call, policy);
        call.arg(window_ms).arg(sample.requests).arg(sample.errors).arg(sample.delayed).arg(sample.shed);
        call.arg(sample.in_flight_ms);
        for count in sample.latency {
            call.arg(count);
        }
        let rows = Rows::parse("health", self.inner.run(&call).await?)?;
        let row = rows.single()?;
        if !row.flag("ended")? {
            return Ok(None);
        }
        let mut window_sample = HealthSample {
            requests: row.count("requests")?,
            errors: row.count("errors")?,
            delayed: row.count("delayed")?,
            shed: row.count("shed")?,
            in_flight_ms: row.count("in_flight_ms")?,
            ..HealthSample::default()
        };
        let Value::Array(counts) = row.value("latency")? else {
            return Err(StoreFault::Protocol("health: `latency` is not a list".into()));
        };
        for (bucket, count) in window_sample.latency.iter_mut().zip(counts) {
            *bucket = match count {
                Value::Int(n) => (*n).max(0) as u64,
                other => return Err(StoreFault::Protocol(format!("health: latency count {other:?}"))),
            };
        }
        Ok(Some(HealthWindow {
            id: row.count("window")?,
            elapsed_ms: row.count("elapsed")?,
            sample: window_sample,
            admitted: row.count("admitted")?,
            queue_length: row.count("queue_length")?,
            pinned: row.flag("pinned")?,
            control: Control {
                rate: row.limit("rate")?,
                phase: Phase::from_code(row.int("phase")?),
                reason: row.reason("reason")?,
                health: row.health("health")?,
                baseline_us: row.limit("baseline")?,
                cliff: row.limit("cliff")?,
            },
        }))
    }

    pub async fn adapt(&self, room: &str, window_id: u64, update: &ControlUpdate) -> Result<bool, StoreFault> {
        let mut call = keyed(&self.inner.scripts.adapt, room);
        call.arg(window_id)
            .arg(number(update.rate))
            .arg(update.phase.code())
            .arg(update.reason.as_str())
            .arg(update.health.as_str())
            .arg(update.baseline_us)
            .arg(update.cliff);
        Ok(self.inner.numbers(&call, 1).await?[0] == 1)
    }
}

impl visits::Batches for Inner {
    /// One `visit` script call for several visitors of one room; one answer each, in order.
    async fn visit_batch(
        &self,
        room: &str,
        policy: &Policy,
        visits: &[visits::OwnedVisit],
    ) -> Result<Vec<Standing>, StoreFault> {
        let mut call = keyed(&self.scripts.visit, room);
        room_args(&mut call, policy);
        call.arg(seen_refresh_ms(policy.abandon_ms))
            .arg(policy.rejoin_ms)
            .arg(policy.reclaim_ms)
            .arg(policy.max_places_per_client);
        for visit in visits {
            let (restore_epoch, restore_seq, restore_seen) = match visit.restore {
                Some(r) => (r.epoch.to_string(), r.seq.to_string(), r.seen_ms.to_string()),
                None => (String::new(), String::new(), String::new()),
            };
            call.arg(&visit.visitor)
                .arg(restore_epoch)
                .arg(restore_seq)
                .arg(restore_seen)
                .arg(visit.prequeue_score)
                .arg(match visit.joining {
                    visits::OwnedJoining::AtOnce => "0",
                    visits::OwnedJoining::Place | visits::OwnedJoining::Proof { .. } => "1",
                    visits::OwnedJoining::Keep => "k",
                });
            match &visit.joining {
                visits::OwnedJoining::Proof { id, until_ms } => call.arg(id).arg(until_ms),
                _ => call.arg("").arg(0),
            };
            call.arg(visit.client.as_deref().unwrap_or_default());
        }
        let rows = Rows::parse("visit", self.run(&call).await?)?;
        let standings = rows.rows().map(|row| standing(&row)).collect::<Result<Vec<_>, _>>()?;
        if standings.len() != visits.len() {
            let counts = format!("visit: {} answers for {} visitors", standings.len(), visits.len());
            return Err(StoreFault::Protocol(counts));
        }
        Ok(standings)
    }
}

impl Inner {
    async fn run(&self, call: &ScriptInvocation<'_>) -> Result<Value, StoreFault> {
        match self.connection.clone() {
            Connection::Single(mut c) => call.invoke_async(&mut c).await,
            Connection::Cluster(mut c) => call.invoke_async(&mut c).await,
        }
        .map_err(unavailable)
    }

    /// Runs a script and reads its reply as at least `expect` integers.
    async fn numbers(&self, call: &ScriptInvocation<'_>, expect: usize) -> Result<Vec<i64>, StoreFault> {
        integers(self.run(call).await?, expect)
    }
}

/// A reply read as at least `expect` integers.
fn integers(reply: Value, expect: usize) -> Result<Vec<i64>, StoreFault> {
    let numbers = match reply {
        Value::Int(n) => vec![n],
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Int(n) => Ok(n),
                other => Err(StoreFault::Protocol(format!("expected an integer, got {other:?}"))),
            })
            .collect::<Result<_, _>>()?,
        other => return Err(StoreFault::Protocol(format!("expected integers, got {other:?}"))),
    };
    if numbers.len() < expect {
        return Err(StoreFault::Protocol(format!("expected {expect} integers, got {}", numbers.len())));
    }
    Ok(numbers)
}

/// `ZRANGEBYSCORE … WITHSCORES` pairs: session id, revocation time (ms).
fn revocations(pairs: &[Value]) -> Result<Vec<(String, u64)>, StoreFault> {
    let text = |value: &Value| {
        reply::text(value).ok_or_else(|| StoreFault::Protocol(format!("tick: unexpected revocation item {value:?}")))
    };
    pairs
        .chunks(2)
        .filter(|pair| pair.len() == 2)
        .map(|pair| {
            let score = text(&pair[1])?;
            let at = score.parse::<f64>().map_err(|_| StoreFault::Protocol(format!("tick: bad score {score}")))?;
            Ok((text(&pair[0])?, at as u64))
        })
        .collect()
}

/// An optional number as a script argument ('' for none).
fn number(n: Option<u32>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
}

/// ARGV 1–12 of `visit`, `tick`, `renew` and `health`: the room, and what this instance
/// remembers of it.
fn room_args(call: &mut ScriptInvocation<'_>, policy: &Policy) {
    let remembered = &policy.remembered;
    let flag = |on: bool| if on { "1" } else { "0" };
    call.arg(policy.admit_per_minute)
        .arg(policy.max_active_users)
        .arg(policy.session_ms)
        .arg(policy.abandon_ms)
        .arg(policy.opens_at_ms.unwrap_or(0))
        .arg(policy.recount_ms)
        .arg(remembered.epoch)
        .arg(flag(remembered.paused))
        .arg(flag(remembered.closed))
        .arg(number(remembered.admit_per_minute))
        .arg(number(remembered.max_active_users))
        .arg(number(policy.adaptive_start));
}

/// The names of a room's keys, in the order the scripts take them (see the prelude), each
/// `anteroom:{ROOM}:NAME`. Heartbeat chunks are further keys, `anteroom:{ROOM}:beats:N`.
pub const ROOM_KEYS: [&str; 15] = [
    "waiting", "seen", "admitted", "active", "revoked", "state", "seq", "grants", "health", "dropped", "proofs",
    "claims", "clients", "owners", "beats",
];

/// A script invocation with the room's keys, all under one hash tag.
fn keyed<'a>(script: &'a Script, room: &str) -> ScriptInvocation<'a> {
    let mut call = script.prepare_invoke();
    for part in ROOM_KEYS {
        call.key(format!("anteroom:{{{room}}}:{part}"));
    }
    call
}

fn standing(row: &Row<'_>) -> Result<Standing, StoreFault> {
    let code = row.int("state")?;
    let state =
        QueueState::from_code(code).ok_or_else(|| StoreFault::Protocol(format!("visit: unknown state {code}")))?;
    let position = row.int("position")?;
    Ok(Standing {
        state,
        position: u64::try_from(position).ok().filter(|p| *p > 0),
        queue_length: row.count("queue_length")?,
        seq: row.count("seq")?,
        epoch: row.count("epoch")?,
        immediate: row.flag("immediate")?,
        rejoined: row.flag("rejoined")?,
        replayed: row.flag("replayed")?,
        claimed_ms: row.count("claimed")?,
        capped: row.flag("capped")?,
        joined: row.flag("joined")?,
        now_ms: row.count("now")?,
    })
}

fn stats_from(row: &Row<'_>) -> Result<RoomStats, StoreFault> {
    Ok(RoomStats {
        queue_length: row.count("queue_length")?,
        active_sessions: row.count("active_sessions")?,
        admitted_unclaimed: row.count("admitted_unclaimed")?,
        admitted_total: row.count("admitted_total")?,
        joins_total: row.count("joins_total")?,
        paused: row.flag("paused")?,
        admit_per_minute: row.limit("admit_per_minute")?,
        max_active_users: row.limit("max_active_users")?,
        closed: row.flag("closed")?,
        epoch: row.count("epoch")?,
        recounting: row.flag("recounting")?,
        rate_pinned: row.flag("pinned")?,
        control_reason: row.reason("reason")?,
        origin_health: row.health("health")?,
        message: row.text("message")?,
    })
}

fn unavailable(e: RedisError) -> StoreFault {
    StoreFault::Unreachable(Arc::new(e))
}
