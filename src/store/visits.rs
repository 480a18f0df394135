//! Coalescing visits for the Redis store: every poll of every waiting visitor is a visit,
//! and at a sale's peak thousands arrive each second. Calls that arrive while others are
//! in flight are gathered and sent as one `visit` script per room (one `TIME`, one
//! settings read, one line length), which more than halves Redis's work per poll. Nothing
//! waits on purpose: a lone call goes out at once.

use super::types::{Joining, Policy, Restore, Standing, StoreFault, Visit};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Script calls in flight at once (the connection is multiplexed).
const MAX_IN_FLIGHT: usize = 2;
/// Most visitors in one script call: keeps each script short for Redis.
const MAX_BATCH: usize = 64;
/// Visits waiting to be sent; beyond it callers wait (and their own timeout applies).
const QUEUE: usize = 8_192;

pub(super) struct Job {
    pub room: String,
    pub policy: Policy,
    pub visit: OwnedVisit,
    pub reply: oneshot::Sender<Result<Standing, StoreFault>>,
}

pub(super) struct OwnedVisit {
    pub visitor: String,
    pub restore: Option<Restore>,
    pub prequeue_score: u64,
    pub joining: OwnedJoining,
    pub client: Option<String>,
}

/// [`Joining`] with its proof owned, to wait in the batch.
pub(super) enum OwnedJoining {
    AtOnce,
    Place,
    Proof { id: String, until_ms: u64 },
    Keep,
}

impl From<&Visit<'_>> for OwnedVisit {
    fn from(v: &Visit<'_>) -> Self {
        let joining = match v.joining {
            Joining::AtOnce => OwnedJoining::AtOnce,
            Joining::Place => OwnedJoining::Place,
            Joining::Proof { id, until_ms } => OwnedJoining::Proof { id: id.to_owned(), until_ms },
            Joining::Keep => OwnedJoining::Keep,
        };
        let client = v.client.map(str::to_owned);
        Self { visitor: v.visitor.to_owned(), restore: v.restore, prequeue_score: v.prequeue_score, joining, client }
    }
}

/// Where the batches go: one script call for several visitors of one room, one answer
/// each, in order.
pub(super) trait Batches: Send + Sync + 'static {
    fn visit_batch(
        &self,
        room: &str,
        policy: &Policy,
        visits: &[OwnedVisit],
    ) -> impl Future<Output = Result<Vec<Standing>, StoreFault>> + Send;
}

/// Starts the coalescing task; it ends when the store (the sender) is dropped.
pub(super) fn spawn<B: Batches>(inner: Arc<B>) -> mpsc::Sender<Job> {
    let (sender, receiver) = mpsc::channel(QUEUE);
    tokio::spawn(run(inner, receiver));
    sender
}

async fn run<B: Batches>(inner: Arc<B>, mut receiver: mpsc::Receiver<Job>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        // A free slot first: while all are busy, visits gather in the channel.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let Some(first) = receiver.recv().await else { return };
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let inner = inner.clone();
        tokio::spawn(async move {
            send(&*inner, jobs).await;
            drop(slot);
        });
    }
}

/// One script call per room among `jobs`, answers handed back in order (the room's
/// policy is the first job's: calls for one room moments apart carry the same).
async fn send<B: Batches>(inner: &B, mut jobs: Vec<Job>) {
    while !jobs.is_empty() {
        let room = jobs[0].room.clone();
        let policy = jobs[0].policy.clone();
        let (group, rest): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|job| job.room == room);
        jobs = rest;
        let (visits, replies): (Vec<OwnedVisit>, Vec<_>) = group.into_iter().map(|job| (job.visit, job.reply)).unzip();
        match inner.visit_batch(&room, &policy, &visits).await {
            Ok(standings) => {
                for (reply, standing) in replies.into_iter().zip(standings) {
                    let _ = reply.send(Ok(standing));
                }
            }
            Err(fault) => {
                for reply in replies {
                    let _ = reply.send(Err(fault.clone()));
                }
            }
        }
    }
}
