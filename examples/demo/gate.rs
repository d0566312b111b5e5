//! A fixed number of slots that waiters take in turn, those with priority first.
//!
//! The sign-in's password checks go through one: a flood of guesses from many addresses queues
//! behind the account owners who signed in from their address before, instead of in front of
//! them (with a first-come queue, 80 addresses made one correct sign-in in five wait past its
//! deadline). tokio's `Semaphore` serves strictly first come, first served.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// Who is asking for a slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Priority {
    /// Served before any [`Priority::Other`] waiter.
    First,
    Other,
}

pub struct Gate {
    state: Arc<Mutex<State>>,
}

struct State {
    free: usize,
    /// Most waiters of each kind; past it, `enter` answers `None` at once. A full queue turns a
    /// flood away without holding its connections, and bounds the memory it takes.
    max_waiting: usize,
    first: VecDeque<oneshot::Sender<Permit>>,
    others: VecDeque<oneshot::Sender<Permit>>,
}

/// One slot, given back on drop (to the next waiter, if any).
pub struct Permit {
    /// `None` once the slot is given back.
    state: Option<Arc<Mutex<State>>>,
}

impl Gate {
    pub fn new(slots: usize, max_waiting: usize) -> Gate {
        Gate {
            state: Arc::new(Mutex::new(State {
                free: slots,
                max_waiting,
                first: VecDeque::new(),
                others: VecDeque::new(),
            })),
        }
    }

    /// A slot, once one is free and every waiter before this one (by priority, then by arrival)
    /// has had theirs; `None` if too many are waiting already. Dropping the future leaves the
    /// queue.
    pub async fn enter(&self, priority: Priority) -> Option<Permit> {
        let waiting = {
            let mut state = lock(&self.state);
            if state.free > 0 {
                state.free -= 1;
                return Some(Permit {
                    state: Some(self.state.clone()),
                });
            }
            let max = state.max_waiting;
            let queue = match priority {
                Priority::First => &mut state.first,
                Priority::Other => &mut state.others,
            };
            // Waiters that gave up stay in the queue until a slot passes them by; count only
            // the live ones.
            queue.retain(|tx| !tx.is_closed());
            if queue.len() >= max {
                return None;
            }
            let (tx, rx) = oneshot::channel();
            queue.push_back(tx);
            rx
        };
        waiting.await.ok()
    }

    /// How many wait, of each priority (for the tests).
    #[cfg(test)]
    fn waiting(&self) -> (usize, usize) {
        let state = lock(&self.state);
        let live =
            |q: &VecDeque<oneshot::Sender<Permit>>| q.iter().filter(|t| !t.is_closed()).count();
        (live(&state.first), live(&state.others))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some(shared) = self.state.take() else {
            return;
        };
        let mut state = lock(&shared);
        let mut handed = Permit {
            state: Some(shared.clone()),
        };
        while let Some(tx) = state.first.pop_front().or_else(|| state.others.pop_front()) {
            // A waiter that gave up hands it back; a waiter that gives up after this send
            // drops it, which gives it back then.
            match tx.send(handed) {
                Ok(()) => return,
                Err(back) => handed = back,
            }
        }
        // No one waits: the slot is free. Disarmed first, so that dropping it is not a release.
        handed.state = None;
        state.free += 1;
    }
}

/// A panic elsewhere cannot leave the counts half-changed: each change is one statement.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the spawned tasks until they are all blocked.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_freed_slot_goes_to_the_first_priority_waiter_however_late_it_came() {
        let gate = Arc::new(Gate::new(1, 100));
        let held = gate.enter(Priority::Other).await.unwrap();
        let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
        for (name, priority) in [
            ("other 1", Priority::Other),
            ("other 2", Priority::Other),
            ("first 1", Priority::First),
            ("first 2", Priority::First),
        ] {
            let (gate, done_tx) = (gate.clone(), done_tx.clone());
            tokio::spawn(async move {
                let permit = gate.enter(priority).await.unwrap();
                done_tx.send(name).unwrap();
                drop(permit);
            });
            settle().await;
        }
        assert_eq!(gate.waiting(), (2, 2));
        drop(held);
        let mut order = Vec::new();
        for _ in 0..4 {
            order.push(done.recv().await.unwrap());
        }
        assert_eq!(order, ["first 1", "first 2", "other 1", "other 2"]);
        assert_eq!(gate.waiting(), (0, 0));
        // Every slot came back.
        let _a = gate.enter(Priority::Other).await.unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_turns_others_away_at_once_but_not_first_priority() {
        let gate = Arc::new(Gate::new(1, 2));
        let held = gate.enter(Priority::Other).await.unwrap();
        for _ in 0..2 {
            let gate = gate.clone();
            tokio::spawn(async move { gate.enter(Priority::Other).await.map(drop) });
        }
        settle().await;
        assert!(gate.enter(Priority::Other).await.is_none());
        let first = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter(Priority::First).await.is_some() }
        });
        settle().await;
        assert_eq!(gate.waiting(), (1, 2));
        drop(held);
        assert!(first.await.unwrap());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_waiter_that_gives_up_neither_keeps_a_place_nor_loses_the_slot() {
        let gate = Arc::new(Gate::new(1, 1));
        let held = gate.enter(Priority::Other).await.unwrap();
        let impatient = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter(Priority::Other).await.map(drop) }
        });
        settle().await;
        assert_eq!(gate.waiting(), (0, 1));
        impatient.abort();
        settle().await;
        assert_eq!(gate.waiting(), (0, 0), "its place is free for another");
        drop(held);
        // The slot passed the one who left and is free again.
        let _again = gate.enter(Priority::Other).await.unwrap();
        assert!(lock(&gate.state).free == 0);
    }
}
