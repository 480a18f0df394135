//! Coalescing visits for the Redis store: every poll of every waiting visitor is a visit,
//! and at a sale's peak thousands arrive each second. Calls that arrive while others are
//! in flight are gathered and sent as one `visit` script per room (one `TIME`, one
//! settings read, one line length), which more than halves Redis's work per poll.
//!
//! A script call has a fixed cost of about 30 µs of Redis's one core, a poll inside it a few
//! µs more. With a long line polling every 30 s, calls rarely overlap and most would carry
//! one poll; so a batch of nothing but polls of places already held waits up to
//! [`LINGER`] for company. Anything else (a first visit, a join, a claim) goes out at once,
//! and takes the waiting polls with it.

use super::types::{Joining, Policy, Restore, Standing, StoreFault, Visit};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;

/// Script calls in flight at once (the connection is multiplexed).
const MAX_IN_FLIGHT: usize = 2;
/// Most visitors in one script call: keeps each script short for Redis.
const MAX_BATCH: usize = 64;
/// Visits waiting to be sent; beyond it callers wait (and their own timeout applies).
const QUEUE: usize = 8_192;
/// How long a batch of polls of held places waits for more: nothing to a buyer polling
/// every few seconds, and with 100,000 waiting it cut Redis's CPU per poll by a quarter
/// (docs/BENCHMARKS.md, "One room, a million waiting").
pub(super) const LINGER: Duration = Duration::from_millis(2);

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

impl OwnedVisit {
    /// A poll of a place the visitor holds (their cookie names it): it may wait a moment
    /// for others to share the call.
    fn may_linger(&self) -> bool {
        self.restore.is_some_and(|r| r.seq > 0) && !matches!(self.joining, OwnedJoining::Proof { .. })
    }
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

/// Starts the coalescing task; it ends when the store (the sender) is dropped. Batches of
/// polls wait up to `linger` for company ([`LINGER`] in the store).
pub(super) fn spawn<B: Batches>(inner: Arc<B>, linger: Duration) -> mpsc::Sender<Job> {
    let (sender, receiver) = mpsc::channel(QUEUE);
    tokio::spawn(run(inner, receiver, linger));
    sender
}

async fn run<B: Batches>(inner: Arc<B>, mut receiver: mpsc::Receiver<Job>, linger: Duration) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        // A free slot first: while all are busy, visits gather in the channel.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let Some(first) = receiver.recv().await else { return };
        let linger_until = Instant::now() + linger;
        let mut lingering = first.visit.may_linger();
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            let job = match receiver.try_recv() {
                Ok(job) => job,
                Err(_) if lingering => match tokio::time::timeout_at(linger_until, receiver.recv()).await {
                    Ok(Some(job)) => job,
                    _ => break,
                },
                Err(_) => break,
            };
            lingering &= job.visit.may_linger();
            jobs.push(job);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::types::{QueueState, Restore};
    use std::sync::Mutex;

    /// Answers every visit at once and remembers the size of each batch.
    #[derive(Default)]
    struct Recorder {
        batches: Mutex<Vec<usize>>,
    }

    impl Batches for Recorder {
        async fn visit_batch(&self, _: &str, _: &Policy, visits: &[OwnedVisit]) -> Result<Vec<Standing>, StoreFault> {
            self.batches.lock().unwrap().push(visits.len());
            let standing = Standing {
                state: QueueState::Waiting,
                position: Some(1),
                queue_length: 1,
                seq: 1,
                epoch: 1,
                immediate: false,
                rejoined: false,
                replayed: false,
                claimed_ms: 0,
                capped: false,
                joined: false,
                now_ms: 0,
            };
            Ok(vec![standing; visits.len()])
        }
    }

    /// A poll of a held place (`held`), or a first visit that takes one.
    fn job(held: bool) -> (Job, oneshot::Receiver<Result<Standing, StoreFault>>) {
        let (reply, answer) = oneshot::channel();
        let restore = held.then_some(Restore { epoch: 1, seq: 7, seen_ms: 0 });
        let visit =
            OwnedVisit { visitor: "v".into(), restore, prequeue_score: 0, joining: OwnedJoining::Place, client: None };
        (Job { room: "sale".into(), policy: Policy::default(), visit, reply }, answer)
    }

    #[tokio::test]
    async fn polls_of_held_places_wait_for_company_and_go_as_one_call() {
        let recorder = Arc::new(Recorder::default());
        // Far longer than the 50 ms the polls take to arrive, even on a loaded machine.
        let sender = spawn(recorder.clone(), Duration::from_secs(2));
        let mut answers = Vec::new();
        for _ in 0..10 {
            let (job, answer) = job(true);
            sender.send(job).await.unwrap();
            answers.push(answer);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for answer in answers {
            assert_eq!(answer.await.unwrap().unwrap().position, Some(1));
        }
        assert_eq!(*recorder.batches.lock().unwrap(), vec![10], "ten polls 5 ms apart, one call");
    }

    #[tokio::test]
    async fn a_first_visit_goes_out_at_once_and_takes_the_waiting_polls_along() {
        let recorder = Arc::new(Recorder::default());
        // A linger far longer than the test: only the first visit can end it.
        let sender = spawn(recorder.clone(), Duration::from_secs(3_600));
        let (poll, polled) = job(true);
        sender.send(poll).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (first, visited) = job(false);
        sender.send(first).await.unwrap();
        let both = async { (visited.await.unwrap().unwrap(), polled.await.unwrap().unwrap()) };
        tokio::time::timeout(Duration::from_secs(30), both).await.expect("the first visit did not wait");
        assert_eq!(*recorder.batches.lock().unwrap(), vec![2]);

        // Alone, a first visit does not wait at all.
        let (first, visited) = job(false);
        sender.send(first).await.unwrap();
        tokio::time::timeout(Duration::from_secs(30), visited)
            .await
            .expect("a lone first visit waited")
            .unwrap()
            .unwrap();
        assert_eq!(*recorder.batches.lock().unwrap(), vec![2, 1]);
    }
}
