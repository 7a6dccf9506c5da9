//! The shared core of a channel: a buffer, the senders waiting with their values, the receivers
//! waiting for one, all under one internal lock.
//!
//! # States of a message
//!
//! - *offered*: a sender waits with it in `offers` (the buffer is full, or the channel is a
//!   rendezvous and no receiver waits). Its `send` has not returned.
//! - *buffered*: in `buffer`. Its `send` has returned. On a rendezvous channel the buffer holds
//!   only messages for a select that was chosen, or given back by a cancelled receiver.
//! - *handed*: in a waiting receiver's [`Slot`], *in flight* (below). Its `send` has returned.
//! - *received*: out of the channel.
//!
//! # Protocol
//!
//! 1. A send with a receiver waiting hands its message to the first one: puts it in that
//!    receiver's [`Slot`], removes the receiver from `receivers` and wakes it. Otherwise a send
//!    with room buffers its message, and one without room offers it and parks.
//! 2. A receive takes the front of the buffer, and then, since that made room, moves the first
//!    offer into the buffer: that sender's send is complete, and it is woken. With the buffer
//!    empty, it takes the first offer directly (a rendezvous). With nothing to take, it queues
//!    its slot in `receivers` and parks.
//! 3. A woken receiver whose slot is filled returns the message without taking the lock again.
//!    One woken early (a timeout) finds out under the lock whether a sender filled its slot
//!    meanwhile; if so, the message wins over the timeout. A cancelled receiver never keeps a
//!    message: one handed to it goes back to the front of the channel and to the next receiver.
//!    A sender that leaves (timeout, cancellation) takes its offer back, unless a receiver took
//!    it first: then its send completed.
//! 4. The last `Sender` to go marks the channel `senders_gone`, gives waiting receivers what
//!    is left to take, and settles the rest of their slots as closed once no message is in
//!    flight. The last `Receiver` marks it `receivers_gone`, drops the buffered messages (as
//!    std does: nobody can receive them, and what they own, a reply channel say, should close
//!    now, not when the last `Sender` goes), and wakes every waiting sender, which takes its
//!    value back and returns it in the error. No receive or select is under way then: each
//!    borrows a `Receiver`.
//!
//! A message is in flight from the moment a sender puts it in a slot until its receiver
//! returns it or, cancelled, gives it back (`handed` counts the first, `collected` the second).
//! While one is, the channel is not drained even with every sender gone: a receive does not
//! report the disconnection but waits, since a given-back message may still come to it. The
//! last collection after the disconnection closes the receivers still waiting. (`collected` is
//! counted without the lock; it and `disconnected` are written and read in opposite orders by
//! the two sides, sequentially consistent, so one of them always sees the other.)
//!
//! Senders complete in the order they offered (no barging past a full buffer), which is what
//! keeps a bounded channel fair; receivers are served in the order they queued.
//!
//! A `select!` registers as a [`Party::Select`] in `offers` (with its value) or as a
//! [`Waiting::Select`] in `receivers`. Claiming it is a CAS on its [`Token`]: a select chosen by
//! another channel is skipped (and, in `receivers`, dropped). A select chosen for a receive
//! takes its message itself once woken: a send that claims one buffers the message for it. A
//! select that leaves may leave its entry in `receivers`, withdrawn, for a later sweep
//! ([`Chan::unregister_recv`]).
//!
//! Invariant, under the lock: if `receivers` holds a live party then nothing is takeable (the
//! buffer is empty and no live offer waits), except for messages buffered for selects already
//! claimed and on their way.
//!
//! # Waiting receivers count no reference
//!
//! A receiver's entry points to its [`Slot`] in the receiving frame, and the slot's waiter is a
//! [`LockedWaiter`], which holds its green thread's header without counting a reference (two
//! atomic operations fewer per wait). Both are sound by one rule: a slot is *settled* (filled or
//! closed) only under the lock, by whoever removes its entry, which writes the outcome, makes the
//! wake transition, and stores the settled state last; and the receiver leaves only after it has
//! seen its slot settled, or removed its entry itself under the lock. So while an entry is in `receivers` its
//! receiver is inside `recv_wait`, its frame and its green thread alive (docs/design.md,
//! "Waiters that count no reference").

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::park::{self, LockedWaiter, Woken};
use crate::sync::token::{Party, Token};
use crate::sync::wait::{Lock, Mirrored, Stop, Wait};

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

/// A waiting receive's slot: where a sender puts the message for it, or the disconnection
/// says there will be none. Lives in the receiving frame ([`Chan::recv_wait`]); its entry in
/// `receivers` points to it. See the module docs for why that is sound.
struct Slot<T> {
    /// [`OPEN`] while the receive waits; then [`FILLED`] or [`CLOSED`], set once, under the
    /// lock, by whoever removes the entry, as the last thing it does to the slot.
    state: AtomicU8,
    /// The message, once `FILLED` (written before `state`, taken by the receiver after it).
    value: UnsafeCell<Option<T>>,
    /// Whom to wake. Written by the receiver and read by senders, both under the lock; set
    /// before the entry is queued.
    waiter: UnsafeCell<Option<LockedWaiter>>,
}

const OPEN: u8 = 0;
const FILLED: u8 = 1;
const CLOSED: u8 = 2;

impl<T> Slot<T> {
    fn new() -> Slot<T> {
        Slot { state: AtomicU8::new(OPEN), value: UnsafeCell::new(None), waiter: UnsafeCell::new(None) }
    }

    /// The receive's outcome, once settled. Called by the receiver only.
    #[inline]
    fn outcome(&self) -> Option<Result<T, Fail>> {
        match self.state.load(Ordering::Acquire) {
            OPEN => None,
            // SAFETY: `FILLED` was stored (release, read here with acquire) after the value was
            // written, and the settling party touches the slot no more; only the receiver,
            // which is us, reads it.
            FILLED => Some(Ok(unsafe { (*self.value.get()).take() }
                .expect(internal_error!("a green::sync channel slot marked full holds no message")))),
            _ => Some(Err(Fail::Disconnected)),
        }
    }
}

/// Settles the slot: fills it with `value`, or closes it with `None`; returns the wake to
/// finish after unlocking.
///
/// # Safety
///
/// Under the channel's lock, with the slot's entry just removed from `receivers` (so the slot
/// is open and its receiver waits for it, alive: module docs).
unsafe fn settle<T>(slot: NonNull<Slot<T>>, value: Option<T>) -> Option<Woken> {
    // SAFETY: the slot is alive (caller's contract).
    let slot = unsafe { slot.as_ref() };
    let state = if value.is_some() { FILLED } else { CLOSED };
    // SAFETY: the cell is ours while we hold the lock and the state is open: the receiver reads
    // `value` only once settled.
    unsafe { *slot.value.get() = value };
    // SAFETY: set by the receiver under the lock before it queued the entry. The wake comes
    // before the state, after which the receiver may leave.
    let woken = unsafe { (*slot.waiter.get()).as_ref().and_then(|waiter| waiter.wake_locked()) };
    slot.state.store(state, Ordering::Release);
    woken
}

/// Chooses the select `token` for `arm`, if no other channel has: the wake that sends it to
/// complete the arm.
#[inline]
fn choose(token: &Token, arm: usize) -> Option<Woken> {
    token.try_select(arm).then(|| Woken::Waiter(token.waiter().clone()))
}

/// Withdrawn select entries a channel keeps at least before it sweeps them out of `receivers`
/// ([`Chan::unregister_recv`]). A sweep reads every entry, so one per this many withdrawals,
/// or per half the list's length if that is more, keeps its cost per withdrawal constant, and
/// the withdrawn entries fewer than this or than the live ones.
const SWEEP_AFTER: usize = 64;

/// A waiting receive, in `receivers`.
enum Waiting<T> {
    /// A `recv`, by its slot.
    Recv(NonNull<Slot<T>>),
    /// Arm `arm` of a select.
    Select { token: Arc<Token>, arm: usize },
}

// SAFETY: the slot pointer is dereferenced only under the channel's lock, by whichever thread
// holds it, to move a `T` (which is `Send`) to the receiver and to wake it; a `LockedWaiter` is
// as movable between threads as the `Waiter` it stands for.
unsafe impl<T: Send> Send for Waiting<T> {}

impl<T> Waiting<T> {
    fn is_live(&self) -> bool {
        match self {
            Waiting::Recv(_) => true,
            Waiting::Select { token, .. } => token.is_waiting(),
        }
    }

    fn is_token(&self, token: &Token) -> bool {
        matches!(self, Waiting::Select { token: t, .. } if std::ptr::eq(&**t, token))
    }
}

impl<T> std::fmt::Debug for Waiting<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Waiting::Recv(_) => f.write_str("Recv"),
            Waiting::Select { arm, .. } => f.debug_struct("Select").field("arm", arm).finish_non_exhaustive(),
        }
    }
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
    /// Waiting receivers, in arrival order. May hold withdrawn select entries (their select
    /// left without this channel choosing it), which every reader skips; see [`Chan::unregister_recv`].
    receivers: VecDeque<Waiting<T>>,
    /// Select entries withdrawn since the last sweep but left in `receivers`. An estimate from
    /// above: a send may have popped some since; the sweep recounts.
    withdrawn: usize,
    /// Every `Sender` has been dropped.
    senders_gone: bool,
    /// Messages put into receivers' slots so far; see the module docs on messages in flight.
    handed: u64,
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
    /// the senders are gone). Published by every locked section as it ends ([`Chan::lock`]); a
    /// receive that sees 0 skips its first attempt and goes straight to the one it makes as it
    /// registers, under the lock. A stale value costs a lock, never a lost message.
    takeable: AtomicUsize,
    /// Of `Inner::handed`, those their receivers returned or gave back (counted without the
    /// lock).
    collected: AtomicU64,
    /// `Inner::senders_gone`, readable without the lock by a receiver that collects.
    disconnected: AtomicBool,
    /// Live `Sender` and `Receiver` handles; dumps show them for the green threads parked here.
    pub(crate) handles: park::ChannelHandles,
    cap: Option<usize>,
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
    /// message with its sender's wake.
    #[inline]
    fn claim_offer(&mut self) -> Option<(T, Woken)> {
        if self.offers.is_empty() {
            return None;
        }
        self.claim_offer_slow()
    }

    fn claim_offer_slow(&mut self) -> Option<(T, Woken)> {
        let at = self.offers.iter().position(|o| o.party.claim())?;
        let offer =
            self.offers.remove(at).expect(internal_error!("a green::sync channel offer seen a moment ago is gone"));
        Some((offer.value, Woken::Waiter(offer.party.into_waiter())))
    }

    /// Puts `value` in the slot of a receive whose entry was just removed from `receivers`:
    /// the message is in flight from now on (module docs).
    ///
    /// # Safety
    ///
    /// As for [`settle`]: under the lock, the entry just removed.
    #[inline]
    unsafe fn fill(&mut self, slot: NonNull<Slot<T>>, value: T) -> Option<Woken> {
        self.handed += 1;
        // SAFETY: the caller's contract.
        unsafe { settle(slot, Some(value)) }
    }

    /// Hands `value` to the first waiting receiver that can still take it (protocol step 1),
    /// removing it; gives the value back if there is none. Selects chosen elsewhere are
    /// dropped on the way.
    #[inline]
    fn hand_off(&mut self, value: T) -> Result<Option<Woken>, T> {
        while let Some(waiting) = self.receivers.pop_front() {
            match waiting {
                // SAFETY: under the lock, the entry just removed.
                Waiting::Recv(slot) => return Ok(unsafe { self.fill(slot, value) }),
                Waiting::Select { token, arm } => {
                    if let Some(woken) = choose(&token, arm) {
                        self.buffer.push_back(value);
                        return Ok(Some(woken));
                    }
                }
            }
        }
        Err(value)
    }

    /// Takes a message if one is to be had now (protocol step 2), with the wake of the sender
    /// whose offer that moved into the buffer, if any.
    #[inline]
    fn take(&mut self) -> Option<(T, Option<Woken>)> {
        if let Some(value) = self.buffer.pop_front() {
            let mut woken = None;
            if self.has_room()
                && let Some((moved, sender)) = self.claim_offer()
            {
                self.buffer.push_back(moved);
                woken = Some(sender);
            }
            return Some((value, woken));
        }
        self.claim_offer().map(|(value, sender)| (value, Some(sender)))
    }

    /// A message, or the disconnection, if a receive has one to report now.
    #[inline]
    fn try_take(&mut self, collected: &AtomicU64) -> Option<(Result<T, Fail>, Option<Woken>)> {
        if self.buffer.is_empty() && self.offers.is_empty() && !self.senders_gone {
            return None; // The usual case for a receive about to wait.
        }
        self.try_take_slow(collected)
    }

    fn try_take_slow(&mut self, collected: &AtomicU64) -> Option<(Result<T, Fail>, Option<Woken>)> {
        match self.take() {
            Some((value, woken)) => Some((Ok(value), woken)),
            None if self.drained(collected) => Some((Err(Fail::Disconnected), None)),
            None => None,
        }
    }

    /// Every sender is gone and no message is in flight (module docs): nothing more can come.
    /// The caller has found nothing to take.
    fn drained(&self, collected: &AtomicU64) -> bool {
        self.senders_gone && collected.load(Ordering::SeqCst) == self.handed
    }

    /// Once every sender is gone: gives each waiting receiver a message while there are
    /// any, then, if nothing is in flight, settles the rest as closed (a select is woken to
    /// see for itself). Receivers that must wait for a message in flight stay queued.
    fn close_if_drained(&mut self, collected: &AtomicU64) -> Vec<Woken> {
        let mut woken = Vec::new();
        if !self.senders_gone {
            return woken;
        }
        let mut kept = VecDeque::new();
        while let Some(waiting) = self.receivers.pop_front() {
            match waiting {
                Waiting::Recv(slot) => {
                    if let Some((value, sender)) = self.take() {
                        woken.extend(sender);
                        // SAFETY: under the lock, the entry just removed.
                        woken.extend(unsafe { self.fill(slot, value) });
                    } else if self.drained(collected) {
                        // SAFETY: as above.
                        woken.extend(unsafe { settle(slot, None) });
                    } else {
                        kept.push_back(Waiting::Recv(slot));
                    }
                }
                Waiting::Select { token, arm } => {
                    if self.can_take(None) || self.drained(collected) {
                        woken.extend(choose(&token, arm));
                    } else {
                        kept.push_back(Waiting::Select { token, arm });
                    }
                }
            }
        }
        self.receivers = kept;
        woken
    }

    /// True if a receive could take something now, not counting offers of `except`.
    fn can_take(&self, except: Option<&Token>) -> bool {
        !self.buffer.is_empty()
            || self.offers.iter().any(|o| o.party.is_live() && except.is_none_or(|t| !o.party.is_token(t)))
    }

    /// Sends without waiting (protocol step 1).
    #[inline]
    fn try_send(&mut self, value: T) -> Result<Option<Woken>, (T, Fail)> {
        if self.receivers_gone {
            return Err((value, Fail::Disconnected));
        }
        let value = if self.receivers.is_empty() {
            value
        } else {
            match self.hand_off(value) {
                Ok(woken) => return Ok(woken),
                Err(value) => value,
            }
        };
        if self.has_room() {
            self.buffer.push_back(value);
            return Ok(None);
        }
        Err((value, Fail::WouldBlock))
    }

    /// Removes the entry of the receive waiting with `slot`; true if it was there.
    fn remove_slot(&mut self, slot: &Slot<T>) -> bool {
        let mine = NonNull::from(slot);
        match self.receivers.iter().position(|w| matches!(w, Waiting::Recv(p) if *p == mine)) {
            Some(at) => {
                self.receivers.remove(at);
                true
            }
            None => false,
        }
    }

    /// Gives the first waiting receiver something to take, if there is something: a message
    /// in its slot, or, for a select, the wake that sends it to take one.
    fn serve_one_receiver(&mut self) -> Vec<Woken> {
        let mut woken = Vec::new();
        while self.can_take(None)
            && let Some(waiting) = self.receivers.pop_front()
        {
            match waiting {
                Waiting::Recv(slot) => {
                    // `can_take` saw a live offer; a select may have withdrawn it since.
                    let Some((value, sender)) = self.take() else {
                        self.receivers.push_front(Waiting::Recv(slot));
                        break;
                    };
                    woken.extend(sender);
                    // SAFETY: under the lock, the entry just removed.
                    woken.extend(unsafe { self.fill(slot, value) });
                    break;
                }
                Waiting::Select { token, arm } => {
                    if let Some(chosen) = choose(&token, arm) {
                        woken.push(chosen);
                        break;
                    }
                }
            }
        }
        woken
    }
}

/// Finishes the wakes decided under the lock.
fn finish_all(woken: impl IntoIterator<Item = Woken>) {
    woken.into_iter().for_each(Woken::finish);
}

/// A queued receive: removes its entry if it leaves by unwinding with the entry still queued
/// (nothing in `recv_wait` is expected to unwind there, but a dangling entry must never stay),
/// and counts a message dropped unread with its slot as collected.
struct Queued<'a, T> {
    chan: &'a Chan<T>,
    slot: &'a Slot<T>,
    /// From queuing the entry until the receive has read its slot's outcome or removed the
    /// entry itself.
    queued: bool,
}

impl<T> Drop for Queued<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if self.queued {
            self.leave_unwinding();
        }
    }
}

impl<T> Queued<'_, T> {
    /// The receive unwinds with its entry queued, or its slot settled and not yet read.
    #[cold]
    fn leave_unwinding(&mut self) {
        if self.slot.state.load(Ordering::Acquire) == OPEN {
            // Under the lock: either the entry is still there, or a sender settled the slot
            // before we got the lock (then it is read below).
            self.chan.lock().remove_slot(self.slot);
        }
        // SAFETY: settled (or open with the entry gone), so the slot is the receiver's (us)
        // alone.
        let unread = unsafe { (*self.slot.value.get()).take() };
        if unread.is_some() {
            // Dropped uncollected: it is no longer in flight.
            self.chan.collected_one();
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
                withdrawn: 0,
                senders_gone: false,
                handed: 0,
                receivers_gone: false,
                next_id: 0,
            }),
            takeable: AtomicUsize::new(0),
            collected: AtomicU64::new(0),
            disconnected: AtomicBool::new(false),
            handles: park::ChannelHandles::new(),
            cap,
        }
    }

    /// The state, locked; the `takeable` hint is published as it is unlocked.
    fn lock(&self) -> Mirrored<'_, Inner<T>, impl FnMut(&Inner<T>) + '_> {
        let takeable = &self.takeable;
        self.inner.lock_mirrored(move |inner| {
            let hint = inner.buffer.len() + inner.offers.len() + usize::from(inner.senders_gone);
            takeable.store(hint, Ordering::Relaxed);
        })
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.cap
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().buffer.len()
    }

    /// Sends `value`. On failure the value comes back with the reason; a send that stopped
    /// waiting after a receiver took its value has completed and returns `Ok`.
    #[inline]
    pub(crate) fn send(&self, value: T, mode: Mode) -> Result<(), (T, Fail)> {
        let first = self.lock().try_send(value);
        match first {
            Ok(woken) => {
                if let Some(woken) = woken {
                    woken.finish();
                }
                Ok(())
            }
            Err((value, Fail::WouldBlock)) => match mode {
                Mode::Block(own) => self.send_wait(value, own),
                Mode::Try => Err((value, Fail::WouldBlock)),
            },
            Err(failed) => Err(failed),
        }
    }

    /// A send that must wait: offers its value and parks until a receiver takes it.
    fn send_wait(&self, value: T, own: Option<Instant>) -> Result<(), (T, Fail)> {
        let wait = Wait::failing(own);
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
            park::wait_channel(
                park::Primitive::ChannelSend,
                &self.handles,
                |waiter| {
                    let mut inner = self.lock();
                    let Some(mine) = id else {
                        // First round: try again under the lock, then offer.
                        return match inner.try_send(
                            value.take().expect(internal_error!("a green::sync channel message was sent twice")),
                        ) {
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
                            done = Some(Ok(None));
                            false
                        }
                    }
                },
                wait.deadline(),
            );
            if let Some(done) = done {
                return done.map(finish_all);
            }
            // Woken: collect the outcome without a new waiter. Gone: a receiver took it.
            let Some(mine) = id else { continue };
            let mut inner = self.lock();
            let Some(at) = inner.offers.iter().position(|o| o.party.is_plain(mine)) else { return Ok(()) };
            if inner.receivers_gone {
                let offer = inner
                    .offers
                    .remove(at)
                    .expect(internal_error!("a green::sync channel offer seen a moment ago is gone"));
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
    #[inline(always)]
    pub(crate) fn recv(&self, mode: Mode) -> Result<T, Fail> {
        let blocking = matches!(mode, Mode::Block(_));
        if !blocking || self.takeable.load(Ordering::Relaxed) != 0 {
            let first = self.lock().try_take(&self.collected);
            if let Some((done, woken)) = first {
                if let Some(woken) = woken {
                    woken.finish();
                }
                return done;
            }
        }
        match mode {
            Mode::Block(own) => self.recv_wait(own),
            Mode::Try => Err(Fail::WouldBlock),
        }
    }

    /// A receive that must wait: queues a [`Slot`] and parks until a sender fills it (protocol
    /// steps 2 and 3). Inlined into its caller, like the park inside it: the return from a frame
    /// entered before a stack switch costs a mispredicted return after it.
    #[inline(always)]
    fn recv_wait(&self, own: Option<Instant>) -> Result<T, Fail> {
        let wait = Wait::failing(own);
        let slot = Slot::new();
        let mut queued = Queued { chan: self, slot: &slot, queued: false };
        loop {
            if let Some(stop) = wait.check() {
                return self.leave_recv(&mut queued, stop);
            }
            let mut done = None;
            park::wait_channel_locked(
                park::Primitive::ChannelRecv,
                &self.handles,
                |waiter| {
                    let mut inner = self.lock();
                    if slot.state.load(Ordering::Relaxed) != OPEN {
                        // Settled while we ran after an early wake.
                        return false;
                    }
                    if let Some(outcome) = inner.try_take(&self.collected) {
                        if queued.queued {
                            inner.remove_slot(&slot);
                            queued.queued = false;
                        }
                        done = Some(outcome);
                        return false;
                    }
                    // SAFETY: under the lock, as senders read it; the state is open.
                    unsafe { *slot.waiter.get() = Some(waiter) };
                    if !queued.queued {
                        inner.receivers.push_back(Waiting::Recv(NonNull::from(&slot)));
                        queued.queued = true;
                    }
                    true
                },
                wait.deadline(),
            );
            if let Some((done, woken)) = done {
                if let Some(woken) = woken {
                    woken.finish();
                }
                return done;
            }
            if let Some(outcome) = self.read_slot(&mut queued, park::cancelled_here) {
                return outcome;
            }
        }
    }

    /// The receive's outcome if its slot is settled (protocol step 3): a message is collected,
    /// or given back if `cancelled()`; `None` while the slot is open.
    #[inline]
    fn read_slot(&self, queued: &mut Queued<'_, T>, cancelled: impl FnOnce() -> bool) -> Option<Result<T, Fail>> {
        let outcome = queued.slot.outcome()?;
        queued.queued = false; // The sender took the entry out.
        Some(match outcome {
            Ok(value) if cancelled() => self.give_back(value),
            Ok(value) => {
                self.collected_one();
                Ok(value)
            }
            Err(fail) => Err(fail),
        })
    }

    /// A receiver returns the message a sender put in its slot: it is no longer in flight.
    #[inline]
    fn collected_one(&self) {
        self.collected.fetch_add(1, Ordering::SeqCst);
        if self.disconnected.load(Ordering::SeqCst) {
            self.close_if_drained();
        }
    }

    /// After the disconnection: closes the receivers still waiting if nothing is left to come.
    #[cold]
    fn close_if_drained(&self) {
        let woken = self.lock().close_if_drained(&self.collected);
        finish_all(woken);
    }

    /// A cancelled receive whose slot was filled before it could unwind: the message goes back
    /// to the front of the channel, to the next receiver, and the receive reports the
    /// cancellation (a message is never lost with its receiver).
    #[cold]
    fn give_back(&self, value: T) -> Result<T, Fail> {
        let woken = {
            let mut inner = self.lock();
            inner.buffer.push_front(value);
            self.collected.fetch_add(1, Ordering::SeqCst);
            let mut woken = inner.serve_one_receiver();
            woken.extend(inner.close_if_drained(&self.collected));
            woken
        };
        finish_all(woken);
        Err(Fail::Stop(Stop::Cancelled))
    }

    /// A waiting receive stops (protocol step 3): returns the message if its slot was filled
    /// meanwhile (or one is there to take, for a timeout), else leaves the queue and reports
    /// `stop`.
    #[cold]
    fn leave_recv(&self, queued: &mut Queued<'_, T>, stop: Stop) -> Result<T, Fail> {
        let mut inner = self.lock();
        if queued.slot.state.load(Ordering::Relaxed) != OPEN {
            // Settled before we got the lock, and so for good.
            drop(inner);
            return self
                .read_slot(queued, || stop == Stop::Cancelled)
                .expect(internal_error!("a settled green::sync channel operation became unsettled"));
        }
        if queued.queued {
            inner.remove_slot(queued.slot);
            queued.queued = false;
        }
        if stop == Stop::Cancelled {
            return Err(Fail::Stop(stop));
        }
        let outcome = inner.try_take(&self.collected);
        drop(inner);
        match outcome {
            Some((done, woken)) => {
                finish_all(woken);
                done
            }
            None => Err(Fail::Stop(stop)),
        }
    }

    /// The last sender is gone: every waiting receiver learns it, once nothing is in flight
    /// (module docs).
    pub(crate) fn disconnect_senders(&self) {
        let woken = {
            let mut inner = self.lock();
            inner.senders_gone = true;
            self.disconnected.store(true, Ordering::SeqCst);
            inner.close_if_drained(&self.collected)
        };
        finish_all(woken);
    }

    /// The last receiver is gone: drop the buffered messages and wake every waiting sender,
    /// which takes its value back.
    pub(crate) fn disconnect_receivers(&self) {
        let mut woken = Vec::new();
        let unreceivable = {
            let mut inner = self.lock();
            inner.receivers_gone = true;
            for offer in &inner.offers {
                if offer.party.claim() {
                    woken.push(Woken::Waiter(offer.party.waiter()));
                }
            }
            std::mem::take(&mut inner.buffer)
        };
        finish_all(woken);
        // After the lock: a message's destructor may use this channel (drop the last sender).
        drop(unreceivable);
    }

    // ---- select ------------------------------------------------------------------------

    /// Registers arm `arm` of a select as a receiver. False (nothing registered) if a receive
    /// would not wait now.
    pub(crate) fn register_recv(&self, token: &Arc<Token>, arm: usize) -> bool {
        let mut inner = self.lock();
        if inner.can_take(Some(token)) || inner.drained(&self.collected) {
            return false;
        }
        inner.receivers.push_back(Waiting::Select { token: token.clone(), arm });
        true
    }

    /// Withdraws the entry of a select's receive arm, the select having left (its token no
    /// longer waiting), unless this channel chose the select for this arm (`chosen`) and so
    /// took the entry out.
    /// At the back of the list, where a select that registered last finds it, the entry goes
    /// now. Further in it stays, withdrawn, which every reader of `receivers` skips, until a
    /// send pops it or enough have gathered for a sweep ([`SWEEP_AFTER`]). Searching the list
    /// instead made every wake of every select pay for all the selects waiting on any of its
    /// channels: a thousand connections selecting on one shutdown channel cost each message a
    /// scan of a thousand entries.
    pub(crate) fn unregister_recv(&self, token: &Token, chosen: bool) {
        if chosen {
            return;
        }
        let mut inner = self.lock();
        if inner.receivers.back().is_some_and(|w| w.is_token(token)) {
            inner.receivers.pop_back();
            return;
        }
        inner.withdrawn += 1;
        if inner.withdrawn >= (inner.receivers.len() / 2).max(SWEEP_AFTER) {
            inner.receivers.retain(Waiting::is_live);
            inner.withdrawn = 0;
        }
    }

    /// Registers arm `arm` of a select as a sender offering `value`. Gives the value back if a
    /// send would not wait now.
    pub(crate) fn register_send(&self, token: &Arc<Token>, arm: usize, value: T) -> Result<(), T> {
        let mut inner = self.lock();
        let receiver_waits = || inner.receivers.iter().any(|w| w.is_live() && !w.is_token(token));
        if inner.receivers_gone || inner.has_room() || (inner.cap == Some(0) && receiver_waits()) {
            return Err(value);
        }
        inner.offers.push_back(Offer { party: Party::Select { token: token.clone(), arm }, value });
        Ok(())
    }

    /// Removes the offer of arm `arm` of a select and gives its value back; `None` if a receiver
    /// took it (that arm's send is complete). Another arm of the same select may offer on this
    /// channel too, under the same token: only this arm's offer is its own.
    ///
    /// `chosen`: the select was chosen for this arm. A receiver chooses an offer only as it
    /// takes it out ([`Inner::claim_offer`]), so then there is nothing to look for, unless the
    /// choice was the last receiver's going, which leaves the offers in place. (Looking cost
    /// every send that completes from a select a scan of all the offers waiting behind it.)
    pub(crate) fn unregister_send(&self, token: &Token, arm: usize, chosen: bool) -> Option<T> {
        let mut inner = self.lock();
        if chosen && !inner.receivers_gone {
            return None;
        }
        let at = inner.offers.iter().position(|o| o.party.is_arm(token, arm))?;
        inner.offers.remove(at).map(|offer| offer.value)
    }

    /// A select chosen by this channel for a receive leaves without a message: claim another
    /// receiver if there is something to take.
    pub(crate) fn pass_on_recv(&self) {
        let woken = self.lock().serve_one_receiver();
        finish_all(woken);
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
