//! The token of one `select!` wait: one waiter registered on several channels, of which exactly
//! one may choose it.
//!
//! # States
//!
//! - `WAITING`: registered with every channel of the select; any of them may choose it.
//! - `SELECTED(arm)`: one channel chose it for `arm` (and woke its waiter). For a send on a
//!   channel that took the select's value, the send is done; otherwise the arm is worth trying
//!   first. No other channel may choose it any more.
//! - `ABORTED`: the select stopped waiting (it woke for another reason, timed out, or is
//!   leaving); no channel may choose it.
//!
//! `WAITING → SELECTED` (a channel, under its internal lock) and `WAITING → ABORTED` (the
//! select) are each one CAS: exactly one of them wins. A channel that loses skips the token;
//! the select removes its registrations after it has woken.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::park::Waiter;

const WAITING: usize = 0;
const ABORTED: usize = usize::MAX;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Token {
    /// `WAITING`, `ABORTED`, or `arm + 1` for `SELECTED(arm)`.
    state: AtomicUsize,
    /// Whom a channel wakes when it chooses the token.
    waiter: Waiter,
}

impl Token {
    pub(crate) fn new(waiter: Waiter) -> Token {
        Token { state: AtomicUsize::new(WAITING), waiter }
    }

    /// A channel chooses the token for `arm`; true if it won.
    pub(crate) fn try_select(&self, arm: usize) -> bool {
        self.state.compare_exchange(WAITING, arm + 1, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Whom a channel wakes when it chooses the token.
    pub(crate) fn waiter(&self) -> &Waiter {
        &self.waiter
    }

    /// True while no channel has chosen the token and the select has not left.
    pub(crate) fn is_waiting(&self) -> bool {
        self.state.load(Ordering::Acquire) == WAITING
    }

    /// The select stops waiting. Returns the arm a channel chose it for, if one did.
    pub(crate) fn abort(&self) -> Option<usize> {
        match self.state.compare_exchange(WAITING, ABORTED, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => None,
            Err(ABORTED) => None,
            Err(selected) => Some(selected - 1),
        }
    }
}

/// One waiting party of a channel: a plain operation, or one arm of a select.
#[derive(Debug)]
pub(crate) enum Party {
    /// A `send` or `recv`; `id` finds its entry again.
    Plain { id: u64, waiter: Waiter },
    /// Arm `arm` of a select.
    Select { token: std::sync::Arc<Token>, arm: usize },
}

impl Party {
    /// Chooses this party to complete. False for a select that another channel chose first
    /// (or that left): skip it.
    #[inline]
    pub(crate) fn claim(&self) -> bool {
        match self {
            Party::Plain { .. } => true,
            Party::Select { token, arm } => token.try_select(*arm),
        }
    }

    /// The waiter to wake, once claimed.
    #[inline]
    pub(crate) fn into_waiter(self) -> Waiter {
        match self {
            Party::Plain { waiter, .. } => waiter,
            Party::Select { token, .. } => token.waiter.clone(),
        }
    }

    /// A copy of the waiter, to wake a party that stays in its list.
    pub(crate) fn waiter(&self) -> Waiter {
        match self {
            Party::Plain { waiter, .. } => waiter.clone(),
            Party::Select { token, .. } => token.waiter.clone(),
        }
    }

    /// Whether this party can still be chosen.
    pub(crate) fn is_live(&self) -> bool {
        match self {
            Party::Plain { .. } => true,
            Party::Select { token, .. } => token.is_waiting(),
        }
    }

    #[inline]
    pub(crate) fn is_plain(&self, id: u64) -> bool {
        matches!(self, Party::Plain { id: mine, .. } if *mine == id)
    }

    pub(crate) fn is_token(&self, token: &Token) -> bool {
        matches!(self, Party::Select { token: t, .. } if std::ptr::eq(&**t, token))
    }

    /// Whether this party is arm `arm` of the select of `token`.
    pub(crate) fn is_arm(&self, token: &Token, arm: usize) -> bool {
        matches!(self, Party::Select { token: t, arm: a } if std::ptr::eq(&**t, token) && *a == arm)
    }
}
