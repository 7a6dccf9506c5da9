#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

/// The message for a broken internal invariant: what broke, and that it is a bug to report.
/// A literal, so that `expect` and `panic!` take it as they take any other.
macro_rules! internal_error {
    ($what:literal) => {
        concat!("green: internal error: ", $what, "; this is a bug in green, please report it")
    };
}

/// Where a wait was refused because no green thread runs there, for the messages that say
/// so: a program may get there without calling `on_worker_stack`, through a destructor that
/// the worker runs. A literal, for `concat!`.
macro_rules! on_worker_stack_where {
    () => {
        "on a worker's own stack (inside green::on_worker_stack, or in a destructor the worker runs: of a \
         value captured by a green thread dropped before it started)"
    };
}

mod blocking;
mod coop;
mod deadline;
pub mod fs;
pub mod io;
mod iter;
mod local;
mod monitor;
pub mod net;
mod park;
pub mod process;
mod reactor;
mod rlimit;
pub mod runtime;
mod scope;
pub mod signal;
mod stack;
pub mod sync;
pub mod thread;
mod time;

pub use crate::blocking::{DEFAULT_BLOCKING_KEEP_ALIVE, DEFAULT_MAX_BLOCKING_THREADS, spawn_blocking};
pub use crate::coop::{NoYield, no_yield, tick};
pub use crate::deadline::{Elapsed, timeout, timeout_at};
pub use crate::iter::{Ticking, TickingExt};
pub use crate::local::{AccessError, LocalKey};
pub use crate::runtime::{Handle, Runtime, ShutdownTimedOut};
pub use crate::scope::{Scope, ScopedJoinHandle, scope};
pub use crate::thread::{
    Builder, GreenThread, GreenThreadId, JoinError, JoinHandle, current, is_cancelled, on_worker_stack, park,
    park_timeout, spawn, spawn_local, try_current, yield_now,
};
pub use crate::time::{sleep, sleep_until};
pub use green_macros::{main, preemptible};

/// Default usable stack size of a green thread: 256 KiB. Only the pages a green thread
/// touches cost memory; the rest is address space.
pub const DEFAULT_STACK_SIZE: usize = crate::stack::DEFAULT_STACK_SIZE;

/// Starts a runtime with the default settings, runs `f` as its first green thread, and returns
/// what `f` returns once the runtime has shut down.
///
/// The calling thread serves as worker 0, so `f` needs no bounds: it may borrow from the
/// caller and need not be `Send`. Other workers (one per available core in all) start with
/// it. When `f` returns, green threads still alive are cancelled: each unwinds from its next
/// blocking-looking call, running its destructors; then the workers stop and the stacks are
/// freed. The end of `main` stops std threads wherever they are; `run` instead waits for that
/// unwinding: a green thread that reaches no cancellation point (a loop
/// that only ticks or computes, blocking code) holds it up for the
/// [shutdown timeout](runtime::Builder::shutdown_timeout), 10 s, and is then leaked with a
/// warning; such a loop can stop when [`is_cancelled`] says so. Use [`runtime::Builder::run`]
/// for other settings.
///
/// # Panics
///
/// If `f` panics (the panic is resumed here, after the shutdown), if the runtime or `f`'s green
/// thread cannot start (or that green thread is cancelled), or if called from a green thread or
/// a worker.
///
/// ```
/// let name = String::from("world");
/// let greeting = green::run(|| format!("hello, {name}")); // borrows `name`
/// assert_eq!(greeting, "hello, world");
/// ```
#[track_caller]
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T,
{
    match runtime::Builder::new().run(f) {
        Ok(value) => value,
        Err(e) => panic!("green::run: {e}"),
    }
}

/// Prints `message` to stderr and aborts the process. For the few cases where the runtime
/// cannot go on soundly and cannot return an error.
#[cold]
pub(crate) fn abort_with(message: &str) -> ! {
    eprintln!("{message}");
    std::process::abort()
}

/// Logs `message` as a warning, and prints it to stderr too when no logger would let it
/// through: for what a user must hear about even without one (green threads or jobs left
/// behind at a shutdown).
#[cold]
pub(crate) fn warn_even_without_logger(message: &str) {
    log::warn!("{message}");
    // A logger that drops warnings (env_logger's lets only errors through by default) is as
    // good as none.
    if !log::log_enabled!(log::Level::Warn) {
        eprintln!("{message}");
    }
}

/// What the expansions of `#[preemptible]` and `#[main]` call. Not a public API: it may change
/// in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::coop::{back_edge, edge_batch, tick};
    pub use crate::iter::chunked::{Chunks, ForChunks, ForChunksAny, ForChunksSliceOrRange};
    // `green::select!`
    pub use crate::sync::select::{Arm, Fallback, Outcome, RecvArm, SendArm, select};
}
