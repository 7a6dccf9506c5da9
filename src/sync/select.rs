//! `select!`: wait for the first of several channel operations.
//!
//! # Design
//!
//! The macro turns each operation arm into a typed *arm* value on the caller's stack
//! ([`RecvArm`], [`SendArm`]) and hands them, as `&mut dyn Arm`, to one driver function,
//! [`select`]. The driver:
//!
//! 1. tries every arm once without waiting, starting at a random arm, so that when several are
//!    ready each is chosen about equally often (fairness);
//! 2. if none is ready: returns for a `default` arm; otherwise registers one [`Token`] with
//!    every channel (a receiver entry, or an offer carrying the send arm's value), re-checking
//!    each under its lock (an arm found ready undoes the registrations and goes back to 1);
//! 3. parks. A channel that can serve an arm *chooses* the token with a CAS (see `token.rs`):
//!    exactly one channel wins, the others skip it. For a send, choosing it moves the value into
//!    the channel: that arm is done;
//! 4. after waking: withdraws the token (`ABORTED`, unless a channel chose it), removes every
//!    registration (getting the unsent values back), and completes the chosen arm, else tries
//!    all arms again (a barging receiver may have taken what it was chosen for);
//! 5. stops at the `timeout` arm's deadline (or the `green::timeout` deadline: then the
//!    `timeout` arm runs, or without one the select unwinds to the `green::timeout`), and on
//!    cancellation, passing a receive it was chosen for on to another receiver.
//!
//! Values of send arms are evaluated before the select starts, as in Go; the value of an arm
//! that does not complete is dropped.
//!
//! # Rejected
//!
//! - *Lazy send values* (evaluated only for the chosen arm, as crossbeam does): needs a
//!   reservation protocol per channel flavour; evaluating upfront is Go's rule and simple.
//! - *Polling with backoff*: burns CPU, and a select on a quiet channel would never park.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::park;
use crate::sync::mpmc::{Fail, Mode, Receiver, RecvError, SendError, Sender};
use crate::sync::token::Token;
use crate::sync::wait::{Stop, Wait, describe_current, op, op_past_deadline, unwind_cancelled, unwind_elapsed};

/// The registration of one select wait: the token every channel sees.
#[doc(hidden)]
#[derive(Debug)]
pub struct Registration {
    token: Arc<Token>,
}

/// One operation arm of a `select!`, as the driver sees it.
#[doc(hidden)]
pub trait Arm {
    /// Completes the operation if that needs no waiting; true if done (the result is stored).
    fn try_complete(&mut self) -> bool;
    /// Registers with the channel as arm `index`; false (nothing registered) if the operation
    /// would not wait now.
    fn register(&mut self, registration: &Registration, index: usize) -> bool;
    /// Removes the registration; true if the operation completed meanwhile. `chosen` is the arm
    /// a channel chose the select for, if one did.
    fn unregister(&mut self, registration: &Registration, chosen: Option<usize>) -> bool;
    /// The select leaves after the channel chose it for this arm, without completing it.
    fn pass_on(&self);
    /// Completes the arm with its error (the select cannot wait: rule 3 of docs/design.md).
    fn fail(&mut self);
}

/// A `recv(rx) -> result` arm.
#[doc(hidden)]
#[derive(Debug)]
pub struct RecvArm<'a, T> {
    rx: &'a Receiver<T>,
    result: Option<Result<T, RecvError>>,
    /// The arm's index in its select, once registered.
    index: usize,
}

impl<'a, T> RecvArm<'a, T> {
    /// An arm receiving from `rx`.
    pub fn new(rx: &'a Receiver<T>) -> RecvArm<'a, T> {
        RecvArm { rx, result: None, index: usize::MAX }
    }

    /// The arm's result, if it completed.
    pub fn into_result(self) -> Option<Result<T, RecvError>> {
        self.result
    }
}

impl<T> Arm for RecvArm<'_, T> {
    fn try_complete(&mut self) -> bool {
        self.result = match self.rx.chan.recv(Mode::Try) {
            Ok(value) => Some(Ok(value)),
            Err(Fail::Disconnected) => Some(Err(RecvError)),
            Err(_) => None,
        };
        self.result.is_some()
    }

    fn register(&mut self, registration: &Registration, index: usize) -> bool {
        self.index = index;
        self.rx.chan.register_recv(&registration.token, index)
    }

    fn unregister(&mut self, registration: &Registration, chosen: Option<usize>) -> bool {
        self.rx.chan.unregister_recv(&registration.token, chosen == Some(self.index));
        false
    }

    fn pass_on(&self) {
        self.rx.chan.pass_on_recv();
    }

    fn fail(&mut self) {
        self.result = Some(Err(RecvError));
    }
}

/// A `send(tx, value) -> result` arm.
#[doc(hidden)]
#[derive(Debug)]
pub struct SendArm<'a, T> {
    tx: &'a Sender<T>,
    /// The value, while it is not in the channel.
    value: Option<T>,
    result: Option<Result<(), SendError<T>>>,
    /// The arm's index in its select, once registered: two arms may offer on one channel under
    /// one token, and each must take back its own offer.
    index: usize,
}

impl<'a, T> SendArm<'a, T> {
    /// An arm sending `value` on `tx`.
    pub fn new(tx: &'a Sender<T>, value: T) -> SendArm<'a, T> {
        SendArm { tx, value: Some(value), result: None, index: usize::MAX }
    }

    /// The arm's result, if it completed.
    pub fn into_result(self) -> Option<Result<(), SendError<T>>> {
        self.result
    }
}

impl<T> Arm for SendArm<'_, T> {
    fn try_complete(&mut self) -> bool {
        let value = self.value.take().expect(internal_error!("a green::select! send arm lost its value between tries"));
        match self.tx.chan.send(value, Mode::Try) {
            Ok(()) => self.result = Some(Ok(())),
            Err((value, Fail::Disconnected)) => self.result = Some(Err(SendError(value))),
            Err((value, _)) => self.value = Some(value),
        }
        self.result.is_some()
    }

    fn register(&mut self, registration: &Registration, index: usize) -> bool {
        let value = self.value.take().expect(internal_error!("a green::select! send arm lost its value between tries"));
        self.index = index;
        match self.tx.chan.register_send(&registration.token, index, value) {
            Ok(()) => true,
            Err(value) => {
                self.value = Some(value);
                false
            }
        }
    }

    fn unregister(&mut self, registration: &Registration, chosen: Option<usize>) -> bool {
        match self.tx.chan.unregister_send(&registration.token, self.index, chosen == Some(self.index)) {
            Some(value) => {
                self.value = Some(value);
                false
            }
            None => {
                // A receiver took the value: the send is done.
                self.result = Some(Ok(()));
                true
            }
        }
    }

    fn pass_on(&self) {}

    fn fail(&mut self) {
        let value = self.value.take().expect(internal_error!("a green::select! send arm lost its value between tries"));
        self.result = Some(Err(SendError(value)));
    }
}

/// What a `select!` does when no operation is ready.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Fallback {
    /// Wait.
    None,
    /// Return at once (`default` arm).
    Default,
    /// Wait at most this long (`timeout` arm).
    Timeout(Duration),
}

/// Which kind of arm a `select!` completed.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An operation arm; it holds its result.
    Operation,
    /// The `default` arm.
    Default,
    /// The `timeout` arm.
    Timeout,
}

thread_local! {
    /// xorshift state for the random first arm.
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// A random index below `n` (n > 0).
fn random_below(n: usize) -> usize {
    RNG.with(|rng| {
        let mut x = rng.get();
        if x == 0 {
            // Seed once per thread from its thread-local's address and the wall clock's
            // nanoseconds.
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            x = (&raw const *rng as u64) ^ u64::from(nanos).rotate_left(32) ^ 0x9E37_79B9_7F4A_7C15;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        rng.set(x);
        (x % n as u64) as usize
    })
}

/// Tries every arm once, starting at `start`, skipping `skip`; true if one completed.
fn try_all(arms: &mut [&mut dyn Arm], start: usize, skip: Option<usize>) -> bool {
    let n = arms.len();
    (0..n).map(|k| (start + k) % n).filter(|&i| Some(i) != skip).any(|i| arms[i].try_complete())
}

/// The driver of `select!` (see the module docs).
#[doc(hidden)]
pub fn select(arms: &mut [&mut dyn Arm], fallback: Fallback) -> Outcome {
    if matches!(fallback, Fallback::Default) {
        op();
    } else {
        // A select that may wait is a cancellation point even when an arm is ready, as `recv`
        // is: a loop kept busy by its channels must still stop when cancelled, and at its
        // deadline.
        if op_past_deadline() {
            if matches!(fallback, Fallback::Timeout(_)) {
                return Outcome::Timeout;
            }
            crate::deadline::raise();
        }
        park::check_cancelled();
    }
    let n = arms.len();
    let start = if n > 1 { random_below(n) } else { 0 };
    if try_all(arms, start, None) {
        return Outcome::Operation;
    }
    let own = match fallback {
        Fallback::Default => return Outcome::Default,
        Fallback::Timeout(timeout) => Instant::now().checked_add(timeout),
        Fallback::None => None,
    };
    let timed = matches!(fallback, Fallback::Timeout(_));
    // With no arm and no timeout there is no error to give: such a select waits on in a
    // cancelled green thread that cannot unwind (rule 7 under panic = "abort"), as a lock does.
    let wait = if n == 0 && !timed { Wait::new(own) } else { Wait::failing(own) };
    loop {
        if let Some(stop) = wait.check() {
            match stop {
                Stop::Cancelled => unwind_cancelled(),
                Stop::TimedOut if timed => {
                    crate::deadline::report_timeout();
                    return Outcome::Timeout;
                }
                Stop::TimedOut => unwind_elapsed(),
                Stop::WorkerStack => {
                    panic!(
                        "green::select! would wait {}, where no green thread can park; select outside that closure \
                         or destructor, or give it a default arm",
                        on_worker_stack_where!()
                    )
                }
                Stop::Unwinding if timed => return Outcome::Timeout,
                Stop::Unwinding if n > 0 => {
                    arms[start].fail();
                    return Outcome::Operation;
                }
                Stop::Unwinding => crate::abort_with(&format!(
                    "green: {} entered a green::select! with no arms while unwinding; it would wait forever. Give it a \
                     default arm, or do not select in a destructor",
                    describe_current()
                )),
            }
        }
        let mut registration = None;
        let mut registered = 0;
        park::wait_sync(
            park::Primitive::Select,
            |waiter| {
                let reg = registration.insert(Registration { token: Arc::new(Token::new(waiter)) });
                for (index, arm) in arms.iter_mut().enumerate() {
                    if !arm.register(reg, index) {
                        return false;
                    }
                    registered += 1;
                }
                true
            },
            wait.deadline(),
        );
        let reg = registration.expect(internal_error!("a green::select! wait never registered"));
        let chosen = reg.token.abort();
        let mut completed = false;
        for arm in arms[..registered].iter_mut() {
            completed |= arm.unregister(&reg, chosen);
        }
        if completed {
            return Outcome::Operation;
        }
        if wait.check() == Some(Stop::Cancelled) {
            if let Some(k) = chosen {
                arms[k].pass_on();
            }
            unwind_cancelled();
        }
        if let Some(k) = chosen
            && arms[k].try_complete()
        {
            return Outcome::Operation;
        }
        if try_all(arms, start, chosen) {
            return Outcome::Operation;
        }
    }
}

/// Waits for the first of several channel operations to complete, and runs its arm.
///
/// ```
/// use std::time::Duration;
/// use green::sync::mpmc;
///
/// green::run(|| {
///     let (tx_a, rx_a) = mpmc::channel::<u32>();
///     let (_tx_b, rx_b) = mpmc::channel::<&str>();
///     green::spawn(move || tx_a.send(7).unwrap());
///
///     let got = green::select! {
///         recv(rx_a) -> msg => format!("a: {}", msg.unwrap()),
///         recv(rx_b) -> msg => format!("b: {}", msg.unwrap()),
///         timeout(Duration::from_secs(10)) => "nothing".to_string(),
///     };
///     assert_eq!(got, "a: 7");
/// });
/// ```
///
/// # Arms
///
/// - `recv(rx) -> result => body`: receives from `rx` (a `&`[`Receiver`] or a `Receiver`);
///   `result` is an irrefutable pattern bound to `Result<T, RecvError>` (an error means the
///   channel is disconnected: that arm is always ready).
/// - `send(tx, value) -> result => body`: sends `value` on `tx`; `result` is bound to
///   `Result<(), SendError<T>>`. Every `value` is evaluated before the select begins, as in Go;
///   the values of arms that do not run are dropped.
/// - `default => body`: runs if no operation is ready at once.
/// - `timeout(duration) => body`: runs if no operation completes within `duration`, or when the
///   caller's [`green::timeout`](crate::timeout) deadline comes first. (crossbeam's
///   `select!` spells it `default(duration)`, which is refused here with a message saying so.)
///
/// The channel of an arm may be a temporary (`recv(rx.clone())`, `send(make_sender(), v)`): it
/// lives until the select ends, its bodies included.
///
/// At most one of `default` and `timeout`. Without either, `select!` waits; inside
/// `green::timeout` it unwinds to it at the deadline. A body may be a block (the comma after
/// it is optional) or an expression followed by a comma. Bodies run after the select has
/// finished, so they may `break`, `continue`, `return` or use `?`.
///
/// ```
/// use green::sync::mpmc;
///
/// green::run(|| {
///     let (tx, rx) = mpmc::sync_channel::<i32>(1);
///     let (_other_tx, other_rx) = mpmc::channel::<i32>();
///     for i in 0..3 {
///         green::select! {
///             send(tx, i) -> sent => sent.unwrap(),
///             recv(other_rx) -> _ => unreachable!(),
///             default => {
///                 // Full: make room.
///                 assert_eq!(rx.recv(), Ok(i - 1));
///                 tx.send(i).unwrap();
///             }
///         }
///     }
///     assert_eq!(rx.recv(), Ok(2));
/// });
/// ```
///
/// # A periodic tick
///
/// `timeout(d)` counts from the start of each `select!`: in a loop that a busy channel keeps
/// waking, it never runs. For a tick on a schedule, keep the next tick's time and give the
/// `timeout` what is left of it:
///
/// ```
/// use std::time::{Duration, Instant};
/// use green::sync::mpmc;
///
/// green::run(|| {
///     let (tx, rx) = mpmc::channel::<u32>();
///     // A producer busier than the tick: a message every millisecond for 50 ms.
///     green::spawn(move || {
///         for i in 0..50 {
///             tx.send(i).unwrap();
///             green::sleep(Duration::from_millis(1));
///         }
///     });
///     let period = Duration::from_millis(10);
///     let mut next_tick = Instant::now() + period;
///     let (mut messages, mut ticks) = (0, 0);
///     loop {
///         green::select! {
///             recv(rx) -> msg => match msg {
///                 Ok(_) => messages += 1,
///                 Err(_) => break, // the producer is done
///             },
///             timeout(next_tick.saturating_duration_since(Instant::now())) => {
///                 ticks += 1;
///                 next_tick += period;
///             }
///         }
///     }
///     assert_eq!(messages, 50);
///     assert!(ticks >= 1, "the ticks ran between the messages");
/// });
/// ```
///
/// # Fairness
///
/// When several operations are ready, each is chosen about equally often: the arms are tried
/// starting at a random one.
///
/// # Cancellation and unwinding
///
/// A `select!` that may wait (one without a `default` arm) is a cancellation point, even when
/// an arm is ready at once, as `recv` is. A green thread that is unwinding never parks in it
/// ([while unwinding](crate::sync#while-unwinding)): with no operation ready, the `timeout`
/// arm runs if there is one, otherwise one operation arm runs with its error
/// (`Err(RecvError)` or `Err(SendError(value))`).
///
/// An empty `select! {}` has nothing to wait for and waits for good, as crossbeam's does: only
/// a cancellation ([`JoinHandle::cancel`](crate::JoinHandle::cancel), the runtime's shutdown)
/// or a [`green::timeout`](crate::timeout) deadline ends it, by unwinding. Under
/// `panic = "abort"`, where a cancellation cannot unwind, it waits on, and the runtime's
/// shutdown leaves it behind with a warning when its timeout passes.
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_parse!(@ops [] @fallback [] @rest $($tokens)*)
    };
}

/// Parses the arms of `select!` one by one. Each operation arm gets its own `__arm` binding
/// (a fresh one per expansion, by hygiene) that is carried along to the final expansion.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    (@ops [$($ops:tt)*] @fallback [$($fb:tt)*] @rest) => {
        $crate::__select_emit!(@ops [$($ops)*] @fallback [$($fb)*])
    };

    // recv
    (@ops [$($ops:tt)*] @fallback $fb:tt @rest recv($rx:expr) -> $res:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(@ops [$($ops)* (__arm, ($crate::__private::RecvArm::new(&$rx)), $res, $body)] @fallback $fb @rest $($rest)*)
    };
    (@ops [$($ops:tt)*] @fallback $fb:tt @rest recv($rx:expr) -> $res:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@ops [$($ops)* (__arm, ($crate::__private::RecvArm::new(&$rx)), $res, $body)] @fallback $fb @rest $($rest)*)
    };
    (@ops [$($ops:tt)*] @fallback $fb:tt @rest recv($rx:expr) -> $res:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(@ops [$($ops)* (__arm, ($crate::__private::RecvArm::new(&$rx)), $res, $body)] @fallback $fb @rest $($rest)*)
    };
    (@ops [$($ops:tt)*] @fallback $fb:tt @rest recv($rx:expr) -> $res:pat => $body:expr) => {
        $crate::__select_parse!(@ops [$($ops)* (__arm, ($crate::__private::RecvArm::new(&$rx)), $res, $body)] @fallback $fb @rest)
    };

    // send
    (@ops [$($ops:tt)*] @fallback $fb:tt @rest send($tx:expr, $value:expr) -> $res:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(@ops [$($ops)* (__arm, ($crate::__private::SendArm::new(&$tx, $value)), $res, $body)] @fallback $fb @rest $($rest)*)
    };
    (@ops [$($ops:tt)*] @fallback $fb:tt @rest send($tx:expr, $value:expr) -> $res:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@ops [$($ops)* (__arm, ($crate::__private::SendArm::new(&$tx, $value)), $res, $body)] @fallback $fb @rest $($rest)*)
    };
    (@ops [$($ops:tt)*] @fallback $fb:tt @rest send($tx:expr, $value:expr) -> $res:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(@ops [$($ops)* (__arm, ($crate::__private::SendArm::new(&$tx, $value)), $res, $body)] @fallback $fb @rest $($rest)*)
    };
    (@ops [$($ops:tt)*] @fallback $fb:tt @rest send($tx:expr, $value:expr) -> $res:pat => $body:expr) => {
        $crate::__select_parse!(@ops [$($ops)* (__arm, ($crate::__private::SendArm::new(&$tx, $value)), $res, $body)] @fallback $fb @rest)
    };

    // default
    (@ops $ops:tt @fallback [] @rest default => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(@ops $ops @fallback [(Default) $body] @rest $($rest)*)
    };
    (@ops $ops:tt @fallback [] @rest default => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@ops $ops @fallback [(Default) $body] @rest $($rest)*)
    };
    (@ops $ops:tt @fallback [] @rest default => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(@ops $ops @fallback [(Default) $body] @rest $($rest)*)
    };
    (@ops $ops:tt @fallback [] @rest default => $body:expr) => {
        $crate::__select_parse!(@ops $ops @fallback [(Default) $body] @rest)
    };

    // timeout
    (@ops $ops:tt @fallback [] @rest timeout($d:expr) => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(@ops $ops @fallback [(Timeout($d)) $body] @rest $($rest)*)
    };
    (@ops $ops:tt @fallback [] @rest timeout($d:expr) => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@ops $ops @fallback [(Timeout($d)) $body] @rest $($rest)*)
    };
    (@ops $ops:tt @fallback [] @rest timeout($d:expr) => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(@ops $ops @fallback [(Timeout($d)) $body] @rest $($rest)*)
    };
    (@ops $ops:tt @fallback [] @rest timeout($d:expr) => $body:expr) => {
        $crate::__select_parse!(@ops $ops @fallback [(Timeout($d)) $body] @rest)
    };

    // errors
    (@ops $ops:tt @fallback $fb:tt @rest default ($($d:tt)*) $($rest:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "green::select!: a timed default is written `timeout(duration) => body` here, not `default(",
            ::core::stringify!($($d)*),
            ")` as in crossbeam's select!"
        ))
    };
    (@ops $ops:tt @fallback [$($fb:tt)+] @rest default $($rest:tt)*) => {
        ::core::compile_error!("green::select!: at most one `default` or `timeout` arm")
    };
    (@ops $ops:tt @fallback [$($fb:tt)+] @rest timeout $($rest:tt)*) => {
        ::core::compile_error!("green::select!: at most one `default` or `timeout` arm")
    };
    (@ops $ops:tt @fallback $fb:tt @rest $($rest:tt)+) => {
        ::core::compile_error!(::core::concat!(
            "green::select!: expected `recv(rx) -> result => body`, `send(tx, value) -> result => body`, ",
            "`default => body` or `timeout(duration) => body`, each followed by a comma when its body is no block ",
            "and it is not the last arm; found: ",
            ::core::stringify!($($rest)+)
        ))
    };
}

/// Emits the code of a parsed `select!`.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_emit {
    // The arms are bound by a `match`, not a `let`: the temporaries of the channel expressions
    // (`recv(rx.clone())`, a function that returns a `Receiver`) then live until the select
    // ends, where a `let` would drop them at its end, still borrowed (E0716).
    // Without a fallback arm the select waits until an operation completes: none completing is
    // the runtime's bug.
    (@ops [$(($arm:ident, $ctor:tt, $res:pat, $body:tt))*] @fallback []) => {
        $crate::__select_emit!(@ops [$(($arm, $ctor, $res, $body))*] @fallback [(None) {
            ::core::panic!("green: internal error: no green::select! arm completed; this is a bug in green, please report it")
        }])
    };
    (@ops [$(($arm:ident, $ctor:tt, $res:pat, $body:tt))*] @fallback [($($kind:tt)*) $fbody:tt]) => {
        match ($( $ctor, )*) {
            ($( mut $arm, )*) => {
                $crate::__private::select(
                    &mut [$( &mut $arm as &mut dyn $crate::__private::Arm ),*],
                    $crate::__private::Fallback::$($kind)*,
                );
                $( let $arm = $arm.into_result(); )*
                $( if let ::core::option::Option::Some(__result) = $arm {
                    // The caller's pattern: `_msg` is a name they chose, not a binding without effect.
                    #[allow(clippy::no_effect_underscore_binding)]
                    let $res = __result;
                    $body
                } else )* {
                    $fbody
                }
            }
        }
    };
}
