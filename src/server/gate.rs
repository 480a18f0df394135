//! A connection's watchers (idle timer, parking timer, the drain signal), polled only
//! when one of them woke the task.
//!
//! A connection's task wakes a few times per request (the client's bytes, the origin's
//! answer), and `select!` polls every branch on every wake-up. Polling a timer re-checks
//! its deadline and re-registers its waker; polling the drain signal re-reads the watch
//! channel: some 1,000 instructions per proxied request for watchers that fire once a
//! minute, if at all. Behind a gate they are given a waker of their own, which notes that
//! they woke before waking the task, and are skipped while it has not.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

pub(super) struct Gate {
    flag: Arc<Flag>,
    /// The watchers' waker: `flag` as a waker.
    waker: Waker,
}

struct Flag {
    /// A watcher woke since they were last polled (set at first: they must be polled once
    /// to register).
    woken: AtomicBool,
    /// The task to wake on their behalf, as of their last poll.
    task: Mutex<Option<Waker>>,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        if let Some(task) = &*self.task.lock().unwrap_or_else(PoisonError::into_inner) {
            task.wake_by_ref();
        }
    }
}

impl Gate {
    pub(super) fn new() -> Self {
        let flag = Arc::new(Flag { woken: AtomicBool::new(true), task: Mutex::new(None) });
        Self { waker: Waker::from(flag.clone()), flag }
    }

    /// Polls the watchers (`watch`, with the gate's waker) if one of them woke since the
    /// last time; `Pending` at once otherwise.
    pub(super) fn poll<T>(&self, cx: &Context<'_>, watch: impl FnOnce(&mut Context<'_>) -> Poll<T>) -> Poll<T> {
        if !self.flag.woken.swap(false, Ordering::Acquire) {
            return Poll::Pending;
        }
        {
            let mut task = self.flag.task.lock().unwrap_or_else(PoisonError::into_inner);
            if !task.as_ref().is_some_and(|known| known.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        let result = watch(&mut Context::from_waker(&self.waker));
        if result.is_ready() {
            // What fired changes what is watched next: look at all of them again.
            self.flag.woken.store(true, Ordering::Release);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn watchers_are_polled_first_and_then_only_after_they_woke_the_task() {
        let task = Arc::new(Count(AtomicUsize::new(0)));
        let task_waker = Waker::from(task.clone());
        let cx = Context::from_waker(&task_waker);
        let gate = Gate::new();
        let polls = AtomicUsize::new(0);
        let saved: Mutex<Option<Waker>> = Mutex::new(None);
        let watch = |inner: &mut Context<'_>| {
            polls.fetch_add(1, Ordering::SeqCst);
            *saved.lock().unwrap() = Some(inner.waker().clone());
            Poll::<()>::Pending
        };

        assert!(gate.poll(&cx, watch).is_pending());
        assert!(gate.poll(&cx, watch).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 1, "not polled again before it woke");

        saved.lock().unwrap().take().unwrap().wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "its wake-up wakes the task");
        assert!(gate.poll(&cx, watch).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 2, "polled after it woke");
    }

    #[test]
    fn after_a_watcher_fired_all_are_polled_again() {
        let task_waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let cx = Context::from_waker(&task_waker);
        let gate = Gate::new();
        assert!(gate.poll(&cx, |_| Poll::Ready(())).is_ready());
        let mut polled = false;
        let _ = gate.poll(&cx, |_| {
            polled = true;
            Poll::<()>::Pending
        });
        assert!(polled);
    }
}
