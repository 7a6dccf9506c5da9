//! A one-shot slot that a pool thread fills and a green thread (or an OS thread) parks on.
//!
//! # States
//!
//! - `Empty(waiter)`: nothing sent yet; `waiter` is whoever parked on it last (maybe stale: a
//!   green thread's waker carries its wait sequence, so a stale one is ignored when woken).
//! - `Full(value)`: sent, not yet received.
//! - `Closed`: the sender was dropped without sending (its job was dropped unrun), or the value
//!   was received.
//!
//! The sender moves `Empty → Full` (or `Empty → Closed` when dropped unsent) under the lock and
//! wakes the waiter it took out after unlocking. The receiver stores its waiter only while the
//! slot is `Empty`, under the same lock, so a send either sees the waiter or happens before the
//! receiver looks: no wakeup is lost (and a wake that races with the park is caught by the
//! park's commit, rule 4 of docs/design.md).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::park::{self, Waiter};

/// The shared slot.
#[derive(Debug)]
struct Slot<T> {
    /// Protected by its own lock; held only to move between states, never across a park.
    state: Mutex<State<T>>,
}

#[derive(Debug)]
enum State<T> {
    Empty(Option<Waiter>),
    Full(T),
    Closed,
}

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing runs user code under this lock, so a poisoned lock still holds a whole state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sending half; dropping it unsent closes the slot and wakes the receiver.
#[derive(Debug)]
pub(crate) struct Sender<T> {
    slot: Arc<Slot<T>>,
    sent: bool,
}

/// The receiving half.
#[derive(Debug)]
pub(crate) struct Receiver<T> {
    slot: Arc<Slot<T>>,
}

/// A new empty slot.
pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Slot { state: Mutex::new(State::Empty(None)) });
    (Sender { slot: slot.clone(), sent: false }, Receiver { slot })
}

impl<T> Sender<T> {
    /// Fills the slot and wakes the receiver. The value is dropped if the receiver is gone.
    pub(crate) fn send(mut self, value: T) {
        self.sent = true;
        self.finish(State::Full(value));
    }

    fn finish(&self, to: State<T>) {
        let previous = std::mem::replace(&mut *self.slot.lock(), to);
        if let State::Empty(Some(waiter)) = previous {
            waiter.wake();
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if !self.sent {
            self.finish(State::Closed);
        }
    }
}

impl<T> Receiver<T> {
    /// Waits for the value: `None` if the sender was dropped unsent.
    ///
    /// Parks a green thread (its worker runs others meanwhile) or blocks an OS thread. With
    /// `cancellable`, this is a cancellation point: a cancelled green thread unwinds from here
    /// and the value, when it comes, is dropped with the slot. The caller makes sure the green
    /// thread is not unwinding (rule 3 of docs/design.md).
    pub(crate) fn recv(self, cancellable: bool) -> Option<T> {
        loop {
            if cancellable {
                park::cancellation_point();
            }
            if let Some(outcome) = self.try_take() {
                return outcome;
            }
            park::wait_for(
                park::ParkReason::Blocking,
                |waiter| match &mut *self.slot.lock() {
                    State::Empty(slot) => {
                        *slot = Some(waiter);
                        true
                    }
                    // Sent or closed meanwhile: do not park, take it on the next round.
                    _ => false,
                },
                // A cancellation point honours the `green::timeout` deadline: park until it.
                if cancellable { park::honoured_deadline(None) } else { None },
            );
        }
    }

    /// The outcome if the slot is no longer empty: `Some(Some(value))` or `Some(None)` (closed).
    fn try_take(&self) -> Option<Option<T>> {
        let mut state = self.slot.lock();
        match std::mem::replace(&mut *state, State::Closed) {
            State::Full(value) => Some(Some(value)),
            State::Closed => Some(None),
            empty @ State::Empty(_) => {
                *state = empty;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_threads_send_and_receive() {
        let (tx, rx) = channel();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            tx.send(5);
        });
        assert_eq!(rx.recv(true), Some(5));
        sender.join().unwrap();
    }

    #[test]
    fn a_dropped_sender_closes_the_slot() {
        let (tx, rx) = channel::<u8>();
        std::thread::spawn(move || drop(tx)).join().unwrap();
        assert_eq!(rx.recv(true), None);
    }

    #[test]
    fn a_green_thread_parks_until_sent() {
        let value = crate::run(|| {
            let (tx, rx) = channel();
            let sender = std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                tx.send("done");
            });
            let value = rx.recv(true);
            sender.join().unwrap();
            value
        });
        assert_eq!(value, Some("done"));
    }
}
