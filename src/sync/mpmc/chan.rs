//! The shared core of a channel: a buffer, the senders waiting with their values, the receivers
//! waiting for one, all under one internal lock.
//!
//! # States of a message
//!
//! - *offered*: a sender waits with it in `offers` (the buffer is full, or the channel is a
//!   rendezvous and no receiver waits). Its `send` has not returned.
//! - *buffered*: in `buffer`. Its `send` has returned. On a rendezvous channel the buffer holds
//!   only messages handed to a receiver that was waiting (see below), one per such receiver.
//! - *received*: out of the channel.
//!
//! # Protocol
//!
//! 1. A send with room (or, on a rendezvous channel, with a receiver waiting) buffers its message
//!    and *claims* the first waiting receiver: removes it from `receivers` and wakes it. A send
//!    without room offers its message and parks.
//! 2. A receive takes the front of the buffer, and then, since that made room, moves the first
//!    offer into the buffer: that sender's send is complete, and it is woken. With the buffer
//!    empty, it takes the first offer directly (a rendezvous). With nothing to take, it queues
//!    itself in `receivers` and parks.
//! 3. A woken receiver takes a message if there is one; a barging receiver may have taken it
//!    first, and then it queues again, at the front.
//! 4. A receiver that leaves without a message after it was claimed (cancelled) claims the next
//!    receiver if there is something to take, so no message is left behind with receivers
//!    parked. A sender that leaves (timeout, cancellation) takes its offer back, unless a
//!    receiver took it first: then its send completed.
//! 5. The last `Sender` to go marks the channel `senders_gone` and wakes every receiver; the
//!    last `Receiver` marks it `receivers_gone` and wakes every waiting sender, which takes its
//!    value back and returns it in the error. Buffered messages stay until the channel is freed.
//!
//! Senders complete in the order they offered (no barging past a full buffer), which is what
//! keeps a bounded channel fair; receivers are served in the order they queued, with barging
//! allowed, as in std.
//!
//! A `select!` registers the same way, as a [`Party::Select`] in `receivers` or in `offers`
//! (with its value). Claiming it is a CAS on its [`Token`]: a select chosen by another channel
//! is skipped (and, in `receivers`, dropped).
//!
//! Invariant, under the lock: if `receivers` holds a live party then nothing is takeable (the
//! buffer is empty and no live offer waits), except for receivers already claimed and on their
//! way.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::park;
use crate::sync::token::{Party, Token};
use crate::sync::wait::{Lock, Stop, Wait, Wakes};

/// What a channel operation may do when it cannot complete at once.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// Return at once.
    Try,
    /// Wait, until the given deadline if any (and the caller's `green::timeout` deadline).
    Block(Option<Instant>),
}

/// Why a channel operation did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fail {
    /// Every receiver (for a send) or every sender (for a receive) is gone.
    Disconnected,
    /// `Mode::Try`, and the operation would have to wait.
    WouldBlock,
    /// The wait stopped; see [`Stop`].
    Stop(Stop),
}

/// A sender waiting with its message.
#[derive(Debug)]
struct Offer<T> {
    party: Party,
    value: T,
}

/// The state under the lock.
#[derive(Debug)]
struct Inner<T> {
    /// Buffered messages; see the module docs.
    buffer: VecDeque<T>,
    /// `None`: unbounded. `Some(0)`: a rendezvous.
    cap: Option<usize>,
    /// Waiting senders with their messages, in arrival order.
    offers: VecDeque<Offer<T>>,
    /// Waiting receivers, in arrival order.
    receivers: VecDeque<Party>,
    /// Every `Sender` has been dropped.
    senders_gone: bool,
    /// Every `Receiver` has been dropped.
    receivers_gone: bool,
    /// Ids of plain waiting operations.
    next_id: u64,
}

/// The channel shared by its senders and receivers.
#[derive(Debug)]
pub(crate) struct Chan<T> {
    inner: Lock<Inner<T>>,
    /// A hint readable without the lock: nonzero if a receive might find something to take (or
    /// the senders are gone). Published by every locked section as it ends ([`Locked`]); a
    /// receive that sees 0 skips its first attempt and goes straight to the one it makes as it
    /// registers, under the lock. A stale value costs a lock, never a lost message.
    takeable: AtomicUsize,
    /// Live `Sender` handles. The last one to go disconnects.
    pub(crate) senders: AtomicUsize,
    /// Live `Receiver` handles. The last one to go disconnects.
    pub(crate) receivers: AtomicUsize,
    cap: Option<usize>,
}

/// The state, locked; publishes the `takeable` hint when unlocked.
struct Locked<'a, T> {
    inner: crate::sync::wait::LockGuard<'a, Inner<T>>,
    takeable: &'a AtomicUsize,
}

impl<T> std::ops::Deref for Locked<'_, T> {
    type Target = Inner<T>;

    fn deref(&self) -> &Inner<T> {
        &self.inner
    }
}

impl<T> std::ops::DerefMut for Locked<'_, T> {
    fn deref_mut(&mut self) -> &mut Inner<T> {
        &mut self.inner
    }
}

impl<T> Drop for Locked<'_, T> {
    fn drop(&mut self) {
        let hint = self.inner.buffer.len() + self.inner.offers.len() + usize::from(self.inner.senders_gone);
        self.takeable.store(hint, Ordering::Relaxed);
    }
}

impl<T> Inner<T> {
    fn has_room(&self) -> bool {
        self.cap.is_none_or(|cap| self.buffer.len() < cap)
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Claims the first offer whose sender can still complete, removes it, and returns its
    /// message; its sender is added to `wakes`.
    #[inline]
    fn claim_offer(&mut self, wakes: &mut Wakes) -> Option<T> {
        if self.offers.is_empty() {
            return None;
        }
        self.claim_offer_slow(wakes)
    }

    fn claim_offer_slow(&mut self, wakes: &mut Wakes) -> Option<T> {
        let at = self.offers.iter().position(|o| o.party.claim())?;
        let offer = self.offers.remove(at).expect("position is in bounds");
        wakes.push(offer.party.into_waiter());
        Some(offer.value)
    }

    /// Claims the first waiting receiver that can still take a message, and removes it; the
    /// receiver is added to `wakes`. Selects chosen elsewhere are dropped on the way.
    #[inline]
    fn claim_receiver(&mut self, wakes: &mut Wakes) -> bool {
        while let Some(party) = self.receivers.pop_front() {
            if party.claim() {
                wakes.push(party.into_waiter());
                return true;
            }
        }
        false
    }

    /// Takes a message if one is to be had now (protocol step 2).
    #[inline]
    fn take(&mut self, wakes: &mut Wakes) -> Option<T> {
        if let Some(value) = self.buffer.pop_front() {
            if self.has_room()
                && let Some(moved) = self.claim_offer(wakes)
            {
                self.buffer.push_back(moved);
            }
            return Some(value);
        }
        self.claim_offer(wakes)
    }

    /// True if a receive could take something now, not counting offers of `except`.
    fn can_take(&self, except: Option<&Token>) -> bool {
        !self.buffer.is_empty()
            || self.offers.iter().any(|o| o.party.is_live() && except.is_none_or(|t| !o.party.is_token(t)))
    }

    /// Sends without waiting (protocol step 1).
    #[inline]
    fn try_send(&mut self, value: T, wakes: &mut Wakes) -> Result<(), (T, Fail)> {
        if self.receivers_gone {
            return Err((value, Fail::Disconnected));
        }
        if self.has_room() {
            self.buffer.push_back(value);
            self.claim_receiver(wakes);
            return Ok(());
        }
        if self.cap == Some(0) && self.claim_receiver(wakes) {
            self.buffer.push_back(value);
            return Ok(());
        }
        Err((value, Fail::WouldBlock))
    }

    /// Removes the plain receiver `id` from `receivers`; true if it was there.
    fn remove_receiver(&mut self, id: u64) -> bool {
        match self.receivers.iter().position(|p| p.is_plain(id)) {
            Some(at) => {
                self.receivers.remove(at);
                true
            }
            None => false,
        }
    }
}

impl<T> Chan<T> {
    pub(crate) fn new(cap: Option<usize>) -> Chan<T> {
        Chan {
            inner: Lock::new(Inner {
                buffer: VecDeque::new(),
                cap,
                offers: VecDeque::new(),
                receivers: VecDeque::new(),
                senders_gone: false,
                receivers_gone: false,
                next_id: 0,
            }),
            takeable: AtomicUsize::new(0),
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
            cap,
        }
    }

    fn lock(&self) -> Locked<'_, T> {
        Locked { inner: self.inner.lock(), takeable: &self.takeable }
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.cap
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().buffer.len()
    }

    /// Sends `value`. On failure the value comes back with the reason; a send that stopped
    /// waiting after a receiver took its value has completed and returns `Ok`.
    pub(crate) fn send(&self, value: T, mode: Mode) -> Result<(), (T, Fail)> {
        let mut wakes = Wakes::default();
        let first = self.lock().try_send(value, &mut wakes);
        wakes.wake();
        let value = match first {
            Err((value, Fail::WouldBlock)) => value,
            done => return done,
        };
        let Mode::Block(own) = mode else { return Err((value, Fail::WouldBlock)) };
        let wait = Wait::new(own);
        let mut value = Some(value);
        // Our offer's id, once it is queued.
        let mut id: Option<u64> = None;
        loop {
            if let Some(stop) = wait.check() {
                return match self.withdraw(id, value.take()) {
                    Some(value) => Err((value, Fail::Stop(stop))),
                    None => Ok(()),
                };
            }
            let mut done = None;
            park::wait_for(
                park::ParkReason::Sync,
                |waiter| {
                    let mut inner = self.lock();
                    let Some(mine) = id else {
                        // First round: try again under the lock, then offer.
                        return match inner.try_send(value.take().expect("not offered yet"), &mut wakes) {
                            Err((v, Fail::WouldBlock)) => {
                                let mine = inner.new_id();
                                id = Some(mine);
                                inner.offers.push_back(Offer { party: Party::Plain { id: mine, waiter }, value: v });
                                true
                            }
                            other => {
                                done = Some(other);
                                false
                            }
                        };
                    };
                    match inner.offers.iter().position(|o| o.party.is_plain(mine)) {
                        Some(at) => {
                            inner.offers[at].party = Party::Plain { id: mine, waiter };
                            true
                        }
                        None => {
                            done = Some(Ok(()));
                            false
                        }
                    }
                },
                wait.deadline(),
            );
            wakes.wake();
            if let Some(done) = done {
                return done;
            }
            // Woken: collect the outcome without a new waiter. Gone: a receiver took it.
            let Some(mine) = id else { continue };
            let mut inner = self.lock();
            let Some(at) = inner.offers.iter().position(|o| o.party.is_plain(mine)) else { return Ok(()) };
            if inner.receivers_gone {
                let offer = inner.offers.remove(at).expect("position is in bounds");
                return Err((offer.value, Fail::Disconnected));
            }
        }
    }

    /// Takes back the offer `id` (or returns `value` if it was never offered). `None`: a
    /// receiver took it, the send is complete.
    fn withdraw(&self, id: Option<u64>, value: Option<T>) -> Option<T> {
        let Some(mine) = id else { return value };
        let mut inner = self.lock();
        let at = inner.offers.iter().position(|o| o.party.is_plain(mine))?;
        inner.offers.remove(at).map(|offer| offer.value)
    }

    /// Receives a message.
    #[inline]
    pub(crate) fn recv(&self, mode: Mode) -> Result<T, Fail> {
        let blocking = matches!(mode, Mode::Block(_));
        let mut wakes = Wakes::default();
        if !blocking || self.takeable.load(Ordering::Relaxed) != 0 {
            let first = self.try_take(&mut self.lock(), &mut wakes, None);
            wakes.wake();
            if let Some(done) = first {
                return done;
            }
        }
        let Mode::Block(own) = mode else { return Err(Fail::WouldBlock) };
        let wait = Wait::new(own);
        // Our entry's id in `receivers`, once queued. If it is gone, a sender claimed us.
        let mut id: Option<u64> = None;
        loop {
            if let Some(stop) = wait.check() {
                return self.leave_recv(id, stop);
            }
            let mut done = None;
            park::wait_for(
                park::ParkReason::Sync,
                |waiter| {
                    let mut inner = self.lock();
                    let at = id.and_then(|mine| inner.receivers.iter().position(|p| p.is_plain(mine)));
                    done = self.try_take(&mut inner, &mut wakes, at);
                    if done.is_some() {
                        return false;
                    }
                    match (at, id) {
                        // Still queued (an early wake): keep our place, with the new waiter.
                        (Some(at), Some(mine)) => inner.receivers[at] = Party::Plain { id: mine, waiter },
                        // Claimed, but a barging receiver took the message: back to the front.
                        (None, Some(_)) => {
                            let mine = inner.new_id();
                            id = Some(mine);
                            inner.receivers.push_front(Party::Plain { id: mine, waiter });
                        }
                        _ => {
                            let mine = inner.new_id();
                            id = Some(mine);
                            inner.receivers.push_back(Party::Plain { id: mine, waiter });
                        }
                    }
                    true
                },
                wait.deadline(),
            );
            if done.is_none() && wait.check() != Some(Stop::Cancelled) {
                // Woken: collect a message without a new waiter (usually a sender claimed us).
                // A cancelled receiver does not: it unwinds at once, passing the claim on.
                let mut inner = self.lock();
                let at = id.and_then(|mine| inner.receivers.iter().position(|p| p.is_plain(mine)));
                done = self.try_take(&mut inner, &mut wakes, at);
            }
            wakes.wake();
            if let Some(done) = done {
                return done;
            }
        }
    }

    /// Under the lock: a message, or the disconnection, if there is one to report; then also
    /// removes our entry at `queued`.
    fn try_take(&self, inner: &mut Inner<T>, wakes: &mut Wakes, queued: Option<usize>) -> Option<Result<T, Fail>> {
        let outcome = match inner.take(wakes) {
            Some(value) => Ok(value),
            None if inner.senders_gone => Err(Fail::Disconnected),
            None => return None,
        };
        if let Some(at) = queued {
            inner.receivers.remove(at);
        }
        Some(outcome)
    }

    /// A receive stops waiting: leaves the queue; prefers a message that is there over a
    /// timeout; passes a claim on if it was claimed and leaves without a message.
    fn leave_recv(&self, id: Option<u64>, stop: Stop) -> Result<T, Fail> {
        let mut wakes = Wakes::default();
        let result = {
            let mut inner = self.lock();
            let claimed = id.is_some_and(|mine| !inner.remove_receiver(mine));
            if stop == Stop::Cancelled {
                if claimed && inner.can_take(None) {
                    inner.claim_receiver(&mut wakes);
                }
                Err(Fail::Stop(stop))
            } else if let Some(value) = inner.take(&mut wakes) {
                Ok(value)
            } else if inner.senders_gone {
                Err(Fail::Disconnected)
            } else {
                Err(Fail::Stop(stop))
            }
        };
        wakes.wake();
        result
    }

    /// The last sender is gone: wake every receiver.
    pub(crate) fn disconnect_senders(&self) {
        let mut wakes = Wakes::default();
        {
            let mut inner = self.lock();
            inner.senders_gone = true;
            while inner.claim_receiver(&mut wakes) {}
        }
        wakes.wake();
    }

    /// The last receiver is gone: wake every waiting sender, which takes its value back.
    pub(crate) fn disconnect_receivers(&self) {
        let mut wakes = Wakes::default();
        {
            let mut inner = self.lock();
            inner.receivers_gone = true;
            for offer in &inner.offers {
                if offer.party.claim() {
                    wakes.push(offer.party.waiter());
                }
            }
        }
        wakes.wake();
    }

    // ---- select ------------------------------------------------------------------------

    /// Registers arm `arm` of a select as a receiver. False (nothing registered) if a receive
    /// would not wait now.
    pub(crate) fn register_recv(&self, token: &Arc<Token>, arm: usize) -> bool {
        let mut inner = self.lock();
        if inner.senders_gone || inner.can_take(Some(token)) {
            return false;
        }
        inner.receivers.push_back(Party::Select { token: token.clone(), arm });
        true
    }

    /// Removes a select's receiver registration.
    pub(crate) fn unregister_recv(&self, token: &Token) {
        self.lock().receivers.retain(|p| !p.is_token(token));
    }

    /// Registers arm `arm` of a select as a sender offering `value`. Gives the value back if a
    /// send would not wait now.
    pub(crate) fn register_send(&self, token: &Arc<Token>, arm: usize, value: T) -> Result<(), T> {
        let mut inner = self.lock();
        let receiver_waits = || inner.receivers.iter().any(|p| p.is_live() && !p.is_token(token));
        if inner.receivers_gone || inner.has_room() || (inner.cap == Some(0) && receiver_waits()) {
            return Err(value);
        }
        inner.offers.push_back(Offer { party: Party::Select { token: token.clone(), arm }, value });
        Ok(())
    }

    /// Removes a select's offer and gives its value back; `None` if a receiver took it (the
    /// select's send is complete).
    pub(crate) fn unregister_send(&self, token: &Token) -> Option<T> {
        let mut inner = self.lock();
        let at = inner.offers.iter().position(|o| o.party.is_token(token))?;
        inner.offers.remove(at).map(|offer| offer.value)
    }

    /// A select chosen by this channel for a receive leaves without a message: claim another
    /// receiver if there is something to take.
    pub(crate) fn pass_on_recv(&self) {
        let mut wakes = Wakes::default();
        {
            let mut inner = self.lock();
            if inner.can_take(None) {
                inner.claim_receiver(&mut wakes);
            }
        }
        wakes.wake();
    }
}

/// Counts one more handle of a kind; used by `Clone`.
pub(crate) fn add_handle(count: &AtomicUsize) {
    count.fetch_add(1, Ordering::Relaxed);
}

/// Counts one handle fewer; true if it was the last.
pub(crate) fn drop_handle(count: &AtomicUsize) -> bool {
    count.fetch_sub(1, Ordering::AcqRel) == 1
}
