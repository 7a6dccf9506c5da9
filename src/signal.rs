//! Waiting for Unix signals with a blocking-looking call, for graceful shutdown and reloads.
//!
//! ```no_run
//! use green::signal::{Signal, Signals};
//!
//! green::run(|| -> std::io::Result<()> {
//!     let signals = Signals::new(&[Signal::Interrupt, Signal::Terminate])?;
//!     let server = green::spawn(|| { /* accept connections until cancelled */ });
//!     let signal = signals.recv()?; // parks this green thread; the workers go on
//!     eprintln!("{signal}: shutting down");
//!     server.cancel();
//!     let _ = server.join();
//!     Ok(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Cancelling the server ends its connections where they are. To let them finish first, keep
//! their [`JoinHandle`](crate::JoinHandle)s, stop accepting, and give them a deadline with
//! [`JoinHandle::wait_timeout`](crate::JoinHandle::wait_timeout) before cancelling the rest:
//! `examples/kv.rs` in the repository is such a server, with a log it syncs on the way out.
//!
//! A keep-alive connection idle between requests sits parked in `read` and sees no stop flag,
//! so such a drain waits the whole deadline for it and then cancels it. To end those at once,
//! keep a [`try_clone`](crate::net::TcpStream::try_clone) of each connection beside its handle
//! and call `shutdown(Shutdown::Read)` on it when the stop begins, as with std: a read parked
//! on any worker returns end of stream (after any bytes already queued), and a handler busy
//! with a request finishes it and then sees the end at its next read. A handler parked in a
//! `write` to a client that does not read is not woken by this; the deadline ends it.
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use std::net::Shutdown;
//! use std::time::Duration;
//! use green::net::{TcpListener, TcpStream};
//!
//! green::run(|| -> std::io::Result<()> {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let client = TcpStream::connect(listener.local_addr()?)?;
//!     let (stream, _) = listener.accept()?;
//!     let kept = stream.try_clone()?; // the server's, for its stop
//!     let mut connection = green::spawn(move || -> std::io::Result<usize> {
//!         let mut served = 0;
//!         // One reply per line, until end of stream.
//!         for line in BufReader::new(&stream).lines() {
//!             line?;
//!             (&stream).write_all(b"ok\n")?;
//!             served += 1;
//!         }
//!         Ok(served)
//!     });
//!     (&client).write_all(b"a request\n")?;
//!     BufReader::new(&client).read_line(&mut String::new())?;
//!     // The client stays connected and idle; the stop begins.
//!     kept.shutdown(Shutdown::Read)?;
//!     assert!(connection.wait_timeout(Duration::from_secs(10)), "the idle connection ended");
//!     assert_eq!(connection.join().unwrap()?, 1);
//!     Ok(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! A [`Signals`] is not a channel, so it cannot be an arm of [`select!`](crate::select). A
//! loop that waits for a signal or a message at once forwards the signals into a channel from
//! a green thread of its own:
//!
//! ```
//! use green::signal::{Signal, Signals};
//! use green::sync::mpmc;
//!
//! green::run(|| -> std::io::Result<()> {
//!     let signals = Signals::new(&[Signal::User1])?;
//!     let (signal_tx, signal_rx) = mpmc::channel();
//!     // Ends when `signal_rx` is dropped (the send fails) or at the runtime's shutdown.
//!     green::spawn(move || {
//!         while let Ok(signal) = signals.recv() {
//!             if signal_tx.send(signal).is_err() {
//!                 break;
//!             }
//!         }
//!     });
//!     let (work_tx, work_rx) = mpmc::channel::<u32>();
//!     work_tx.send(1).unwrap();
//!     // SAFETY: raise has no memory-safety preconditions; SIGUSR1 is listened for above.
//!     unsafe { libc::raise(libc::SIGUSR1) };
//!     let (mut jobs, mut heard) = (0, None);
//!     while heard.is_none() {
//!         green::select! {
//!             recv(work_rx) -> job => jobs += job.unwrap(),
//!             recv(signal_rx) -> signal => heard = signal.ok(),
//!         }
//!     }
//!     assert_eq!(heard, Some(Signal::User1));
//!     assert!(jobs <= 1);
//!     Ok(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Design
//!
//! A signal handler may do almost nothing (only async-signal-safe calls: no lock, no
//! allocation), and it runs on whatever thread the kernel picks, possibly a worker in the middle
//! of a green thread. So the work is split in three:
//!
//! 1. **The handler**, installed once per signal for the rest of the process,
//!    sets the signal's bit in an atomic word and writes a byte to a self-pipe.
//! 2. **The dispatcher**, an OS thread named `green-signal` started with the first
//!    [`Signals`], blocks reading the pipe. For each signal caught it marks the signal pending
//!    in every live [`Signals`] listening for it and wakes their waiters the way every other
//!    wait of the runtime is woken, so green threads and plain OS threads wait alike. A thread was chosen over the workers' reactors because it is
//!    simple and sound without them: signals are rare, so one idle thread and one cross-thread
//!    wakeup per signal cost nothing that matters. A reactor could take the pipe over later.
//! 3. **Listeners** ([`Signals`]) keep what was delivered to them until it is received, like a
//!    channel. Delivery coalesces the way the kernel does: a signal that comes twice before it
//!    is received is received once.
//!
//! # What happens to the signal's default action
//!
//! The first [`Signals`] for a signal installs the handler, and it stays installed (removing
//! it would race with signals in flight and with handlers other libraries installed on top).
//! What the signal then does:
//!
//! - **While a [`Signals`] for it is alive**, it is delivered there, and its default action
//!   does not happen: `SIGINT` (Ctrl-C) and `SIGTERM` no longer end the process; ending it is
//!   now the program's job. That holds for a signal that arrived while one was alive even if
//!   it is dropped before receiving it: the signal goes with it.
//! - **While none is alive**, it does what it did before the first listener: an action that was
//!   the default happens (the dispatcher restores it and raises the signal again, so the
//!   process ends as if `green` had never been there), and an ignored signal stays ignored.
//!   A second Ctrl-C during a graceful shutdown, after the [`Signals`] is dropped, still ends
//!   the process.
//! - A handler that was installed before `green`'s is always called too, after `green` has
//!   recorded the signal (the handlers are chained), with its own signal mask and its own
//!   choice of `SA_RESTART`; one installed with `SA_RESETHAND` is called once, and then the
//!   default action is the one behind `green`'s, as the kernel would have made it.
//! - A handler installed after `green`'s, by code that calls the one it replaced (as
//!   `signal-hook` does), decides what the signal does: with no [`Signals`] alive, `green`
//!   leaves the signal to it rather than restore the default action.
//!
//! Handlers are inherited by `fork` and reset to the default by `exec`, as usual. One
//! consequence: a signal that was ignored when the first [`Signals`] for it came (`SIGHUP`
//! under `nohup`, `SIGINT` in a job a script started with `&`) is no longer ignored in programs
//! started afterwards, even once no [`Signals`] listens: `exec` keeps an ignored signal
//! ignored, but resets `green`'s handler to the default. To hand it on ignored, ignore it in the
//! child before its `exec` (`pre_exec` of `std::os::unix::process::CommandExt`, calling
//! `libc::signal(signal, libc::SIG_IGN)`, which is async-signal-safe). A child that
//! goes on without `exec` inherits no threads, so neither the signal-dispatching thread nor
//! any runtime: there, until it makes a [`Signals`] of its own, `green`'s handler does what the
//! action before it would have done (the default ends the child, an ignored signal stays
//! ignored, an earlier handler is called). Its first [`Signals`] starts a signal thread of its
//! own (the workers of a pre-forking server listen as their parent did). The [`Signals`] made
//! before the fork do not listen in the child: a signal that only they listened for does there
//! what it does with nobody listening.

pub(crate) mod handler;

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::park::{self, Waiter};
use crate::runtime::context;

/// A Unix signal that can be waited for.
///
/// ```
/// use green::signal::Signal;
/// assert_eq!(Signal::Interrupt.as_raw(), libc::SIGINT);
/// assert_eq!(Signal::from_raw(libc::SIGTERM), Some(Signal::Terminate));
/// assert_eq!(Signal::Terminate.to_string(), "SIGTERM");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// `SIGHUP`: the terminal hung up; by convention, daemons reload their configuration.
    Hangup,
    /// `SIGINT`: interrupt from the keyboard (Ctrl-C).
    Interrupt,
    /// `SIGQUIT`: quit from the keyboard (Ctrl-\); its default also dumps core.
    Quit,
    /// `SIGTERM`: a polite request to end (what `kill` and service managers send first).
    Terminate,
    /// `SIGUSR1`: for the program's own use.
    User1,
    /// `SIGUSR2`: for the program's own use.
    User2,
    /// `SIGWINCH`: the terminal window changed size. Ignored by default.
    WindowChange,
}

impl Signal {
    const ALL: [Signal; 7] = [
        Signal::Hangup,
        Signal::Interrupt,
        Signal::Quit,
        Signal::Terminate,
        Signal::User1,
        Signal::User2,
        Signal::WindowChange,
    ];

    /// The signal's number, as `libc` spells it.
    ///
    /// ```
    /// assert_eq!(green::signal::Signal::Terminate.as_raw(), libc::SIGTERM);
    /// ```
    pub fn as_raw(self) -> libc::c_int {
        match self {
            Signal::Hangup => libc::SIGHUP,
            Signal::Interrupt => libc::SIGINT,
            Signal::Quit => libc::SIGQUIT,
            Signal::Terminate => libc::SIGTERM,
            Signal::User1 => libc::SIGUSR1,
            Signal::User2 => libc::SIGUSR2,
            Signal::WindowChange => libc::SIGWINCH,
        }
    }

    /// The signal with number `raw`, if it is one of these.
    ///
    /// ```
    /// use green::signal::Signal;
    /// assert_eq!(Signal::from_raw(libc::SIGHUP), Some(Signal::Hangup));
    /// assert_eq!(Signal::from_raw(libc::SIGKILL), None); // cannot be caught
    /// ```
    pub fn from_raw(raw: libc::c_int) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.as_raw() == raw)
    }

    /// Its conventional name, such as `"SIGINT"`; also what `Display` prints.
    ///
    /// ```
    /// assert_eq!(green::signal::Signal::Interrupt.name(), "SIGINT");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Signal::Hangup => "SIGHUP",
            Signal::Interrupt => "SIGINT",
            Signal::Quit => "SIGQUIT",
            Signal::Terminate => "SIGTERM",
            Signal::User1 => "SIGUSR1",
            Signal::User2 => "SIGUSR2",
            Signal::WindowChange => "SIGWINCH",
        }
    }

    /// True if the signal's default action ends the process.
    fn default_terminates(self) -> bool {
        !matches!(self, Signal::WindowChange)
    }

    fn bit(self) -> u64 {
        1 << self.as_raw()
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Waits until one of `signals` arrives, and returns it: [`Signals::new`] then
/// [`Signals::recv`].
///
/// Only signals that arrive after the call are seen. For a loop that handles a signal again and
/// again (reload on every `SIGHUP`), keep one [`Signals`] instead: one that arrives while the
/// previous is being handled is kept for the next `recv`, and while none is alive the signal's
/// default action happens (see the [module docs](self)).
///
/// A cancellation point; parks a green thread, blocks an OS thread.
///
/// # Errors
///
/// As for [`Signals::new`] and [`Signals::recv`].
///
/// ```
/// use green::signal::{self, Signal};
///
/// green::run(|| {
///     let waiter = green::spawn(|| signal::wait(&[Signal::User1]));
///     // Wait until it listens, then send the process a SIGUSR1.
///     while !green::signal::is_listening(Signal::User1) {
///         green::sleep(std::time::Duration::from_millis(1));
///     }
///     // SAFETY: kill has no memory-safety preconditions.
///     unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
///     assert_eq!(waiter.join().unwrap().unwrap(), Signal::User1);
/// });
/// ```
pub fn wait(signals: &[Signal]) -> io::Result<Signal> {
    Signals::new(signals)?.recv()
}

/// True while some [`Signals`] listens for `signal`: while it is delivered there instead of
/// taking its previous action.
///
/// ```
/// use green::signal::{Signal, Signals, is_listening};
///
/// let signals = Signals::new(&[Signal::User2])?;
/// assert!(is_listening(Signal::User2));
/// drop(signals);
/// assert!(!is_listening(Signal::User2));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn is_listening(signal: Signal) -> bool {
    registry().listeners.iter().filter_map(Weak::upgrade).any(|l| l.set & signal.bit() != 0)
}

/// A listener for some signals: everything that arrives for them while it lives is kept until
/// received, like the receiving end of a channel.
///
/// Any number of threads, green or not, may receive from one `Signals` (it is `Sync`); each
/// delivered signal is received once. Several `Signals` for one signal each get their own copy.
/// While one is alive, the signal's default action does not happen (see the
/// [module docs](self)).
///
/// ```
/// use green::signal::{Signal, Signals};
///
/// green::run(|| {
///     let signals = Signals::new(&[Signal::Hangup, Signal::User1])?;
///     // SAFETY: raise has no memory-safety preconditions.
///     unsafe { libc::raise(libc::SIGUSR1) };
///     assert_eq!(signals.recv()?, Signal::User1);
///     assert_eq!(signals.try_recv(), None);
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Signals {
    listener: Arc<Listener>,
}

/// What the dispatcher and the receivers of one [`Signals`] share.
#[derive(Debug)]
struct Listener {
    /// The signals it listens for, as bits (bit `n` for signal `n`). Fixed.
    set: u64,
    /// Pending signals and waiters, behind a lock held only to move them (never across a park).
    state: Mutex<ListenerState>,
}

/// The states of a listener: nothing pending and nobody waiting; pending signals (receivers
/// take them without parking); or waiters parked (the dispatcher marks a signal pending and
/// wakes every waiter, and one of them takes it; the others park again).
#[derive(Debug, Default)]
struct ListenerState {
    /// Delivered and not yet received, as bits.
    pending: u64,
    /// Who waits in `recv`, each with the ticket of its round of waiting, so that it can take
    /// its waiter out again when it stops waiting (timeout, spurious wake) without a delivery.
    waiters: Vec<(u64, Waiter)>,
    /// The next ticket.
    next_ticket: u64,
}

impl Listener {
    fn lock(&self) -> MutexGuard<'_, ListenerState> {
        // Nothing panics under this lock, so a poisoned lock still holds a whole state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The dispatcher: marks `bits` pending (those this listener wants) and wakes the waiters.
    fn deliver(&self, bits: u64) -> bool {
        let bits = bits & self.set;
        if bits == 0 {
            return false;
        }
        let waiters = {
            let mut state = self.lock();
            state.pending |= bits;
            std::mem::take(&mut state.waiters)
        };
        for (_, waiter) in waiters {
            waiter.wake();
        }
        true
    }
}

impl Signals {
    /// Starts listening for `signals`. From now until it is dropped, each of them that arrives
    /// is kept for [`Signals::recv`], and its default action does not happen.
    ///
    /// The first listener in the process starts the `green-signal` thread, and the first for a
    /// given signal installs the handler for it (module docs). Like the handlers, the thread and
    /// its self-pipe (two fds) stay for the rest of the process, listeners or not: a program
    /// that counts its threads and fds before and after a runtime sees them.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `signals` is empty; if the self-pipe (at the fd limit), the thread (at
    /// the thread limit) or the handler cannot be set up, an error of the OS error's kind that
    /// says which, and the limit.
    ///
    /// ```
    /// use green::signal::{Signal, Signals};
    ///
    /// let shutdown = Signals::new(&[Signal::Interrupt, Signal::Terminate])?;
    /// assert_eq!(shutdown.try_recv(), None);
    /// assert!(Signals::new(&[]).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(signals: &[Signal]) -> io::Result<Signals> {
        if signals.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "green: Signals::new needs at least one signal"));
        }
        let set = signals.iter().fold(0, |set, s| set | s.bit());
        let listener = Arc::new(Listener { set, state: Mutex::default() });
        hold_registry_across_fork()?;
        let mut registry = registry();
        registry.start_dispatcher()?;
        for signal in signals {
            if registry.installed & signal.bit() == 0 {
                handler::install(signal.as_raw()).map_err(|e| {
                    io::Error::new(e.kind(), format!("green: could not install a handler for {signal}: {e}"))
                })?;
                registry.installed |= signal.bit();
            }
        }
        registry.listeners.push(Arc::downgrade(&listener));
        handler::set_listening(registry.listening());
        Ok(Signals { listener })
    }

    /// Waits for one of the signals and returns it. Signals that arrived since the last
    /// `recv` (or since [`Signals::new`]) are returned at once, lowest number first.
    ///
    /// Parks a green thread (its worker runs others meanwhile) or blocks an OS thread. A
    /// cancellation point.
    ///
    /// # Errors
    ///
    /// Only where the caller cannot wait, with nothing pending: on a green thread that is
    /// unwinding (it [never parks then](crate::sync#while-unwinding)), or inside
    /// [`on_worker_stack`](crate::on_worker_stack). The kind is `WouldBlock`.
    ///
    /// ```
    /// use green::signal::{Signal, Signals};
    ///
    /// let signals = Signals::new(&[Signal::User1])?;
    /// let waiter = std::thread::spawn(move || signals.recv()); // an OS thread: blocks
    /// std::thread::sleep(std::time::Duration::from_millis(10));
    /// // SAFETY: kill has no memory-safety preconditions.
    /// unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
    /// assert_eq!(waiter.join().unwrap()?, Signal::User1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv(&self) -> io::Result<Signal> {
        self.recv_until(None, false)
            .map(|signal| signal.expect(internal_error!("Signals::recv, with no deadline, ended without a signal")))
    }

    /// Like [`Signals::recv`], but gives up after `timeout` and returns `Ok(None)`; inside
    /// [`crate::timeout`], at that deadline too, if it comes first.
    ///
    /// # Errors
    ///
    /// As for [`Signals::recv`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use green::signal::{Signal, Signals};
    ///
    /// green::run(|| {
    ///     let signals = Signals::new(&[Signal::Hangup])?;
    ///     assert_eq!(signals.recv_timeout(Duration::from_millis(10))?, None);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> io::Result<Option<Signal>> {
        self.recv_until(Instant::now().checked_add(timeout), true)
    }

    /// A signal that has arrived and not been received yet, if any; never waits.
    ///
    /// Signals reach a listener through the `green-signal` thread, a moment after the handler
    /// caught them: right after a `raise`, `try_recv` may not see the signal yet, where
    /// [`Signals::recv_timeout`] would wait for it.
    ///
    /// ```
    /// use green::signal::{Signal, Signals};
    ///
    /// let signals = Signals::new(&[Signal::User2])?;
    /// assert_eq!(signals.try_recv(), None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_recv(&self) -> Option<Signal> {
        let mut state = self.listener.lock();
        let pending = state.pending;
        let signal = Signal::ALL.into_iter().filter(|s| pending & s.bit() != 0).min_by_key(|s| s.as_raw())?;
        state.pending &= !signal.bit();
        Some(signal)
    }

    /// Waits until `deadline` at most (`None` for an untimed wait, `recv`; also for a timed one
    /// too long to have a deadline). A `timed` wait ends at a `green::timeout` deadline too, with
    /// `Ok(None)`; an untimed one unwinds there.
    fn recv_until(&self, deadline: Option<Instant>, timed: bool) -> io::Result<Option<Signal>> {
        crate::coop::tick_op();
        loop {
            if timed {
                park::check_cancelled();
            } else {
                park::cancellation_point();
            }
            if let Some(signal) = self.try_recv() {
                return Ok(Some(signal));
            }
            // The park ends at our deadline or the `green::timeout` one; past the latter, an
            // untimed wait has unwound at the top of the loop already.
            let until = park::honoured_deadline(deadline);
            if timed && until.is_some_and(|d| Instant::now() >= d) {
                crate::deadline::report_timeout();
                return Ok(None);
            }
            if let Some(why) = cannot_park() {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "green: Signals::recv {why}: it cannot park there, and no signal is pending; use try_recv there"
                    ),
                ));
            }
            // Register a waiter unless a signal came meanwhile; park; then take the waiter back
            // out if no delivery did (it is stale now, and would pile up across timeouts).
            let mut ticket = None;
            park::wait_for(
                park::ParkReason::Signal,
                |waiter| {
                    let mut state = self.listener.lock();
                    if state.pending != 0 {
                        return false;
                    }
                    let t = state.next_ticket;
                    state.next_ticket += 1;
                    state.waiters.push((t, waiter));
                    ticket = Some(t);
                    true
                },
                until,
            );
            if let Some(t) = ticket {
                self.listener.lock().waiters.retain(|(other, _)| *other != t);
            }
        }
    }
}

impl Drop for Signals {
    /// Stops listening. A signal that arrived before this, and is not delivered yet, goes with
    /// this listener (if no other listens for it): it does not take its default action later.
    fn drop(&mut self) {
        let mut registry = registry();
        let this = Arc::as_ptr(&self.listener);
        registry.listeners.retain(|l| l.as_ptr() != this);
        handler::set_listening(registry.listening());
    }
}

/// Why the caller cannot park now, if it cannot.
fn cannot_park() -> Option<&'static str> {
    context::with_core(|core| {
        let core = core?;
        if !core.in_green_thread() {
            Some(concat!("was called ", on_worker_stack_where!()))
        } else if std::thread::panicking() {
            Some("was called while its green thread unwinds")
        } else if crate::park::cancelled_without_unwind() {
            Some("was called in a cancelled green thread, which a panic = \"abort\" build cannot unwind")
        } else {
            None
        }
    })
}

/// The process-wide bookkeeping: which handlers are installed, who listens, the dispatcher.
#[derive(Debug)]
struct Registry {
    /// Signals whose handler is installed, as bits. Only grows.
    installed: u64,
    /// Every live `Signals` (each takes itself out when dropped).
    listeners: Vec<Weak<Listener>>,
    /// The self-pipe's read end, once made; the dispatcher holds a clone.
    pipe: Option<Arc<OwnedFd>>,
    /// Set once the dispatcher thread runs. A child made by `fork` inherits it set, without
    /// the thread: the pipe is not its own then (`handler::pipe_is_ours`).
    dispatcher: bool,
}

/// Held by `Signals::new` to install and register, by `Signals::drop` to unregister, and by the
/// dispatcher while it delivers, so that "nobody listens, take the default action" is decided
/// with no listener appearing or going meanwhile. Held across a `fork` too, so that a child
/// never inherits it locked ([`hold_registry_across_fork`]).
static REGISTRY: Mutex<Registry> =
    Mutex::new(Registry { installed: 0, listeners: Vec::new(), pipe: None, dispatcher: false });

fn registry() -> MutexGuard<'static, Registry> {
    // Nothing panics under this lock, so a poisoned lock still holds a whole registry.
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    /// The registry, locked by the thread that calls `fork` from just before until just after
    /// (in the parent and in the child); see [`hold_registry_across_fork`].
    static HELD_ACROSS_FORK: RefCell<Option<MutexGuard<'static, Registry>>> = const { RefCell::new(None) };
}

/// From the first `Signals` on, makes `fork` wait for the registry lock and hold it until the
/// child is made. A child gets only the thread that called `fork`: a lock that another thread
/// held then stayed locked in the child for good, and its first `Signals` (or the drop of one
/// it inherited) waited forever.
fn hold_registry_across_fork() -> io::Result<()> {
    extern "C" fn prepare() {
        let held = registry();
        HELD_ACROSS_FORK.with(|cell| *cell.borrow_mut() = Some(held));
    }
    extern "C" fn after() {
        HELD_ACROSS_FORK.with(|cell| cell.borrow_mut().take());
    }
    // Only a success is kept: pthread_atfork fails only for want of memory, and a later call
    // tries again. The lock has the handlers registered once (twice, `prepare` would lock the
    // registry twice); it is taken only until they are, as a `fork` meanwhile would leave it
    // locked in the child.
    static REGISTERED: OnceLock<()> = OnceLock::new();
    static REGISTERING: Mutex<()> = Mutex::new(());
    if REGISTERED.get().is_some() {
        return Ok(());
    }
    let _turn = REGISTERING.lock().unwrap_or_else(PoisonError::into_inner);
    if REGISTERED.get().is_none() {
        handler::around_fork(prepare, after).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "green: Signals::new could not register its fork handlers (pthread_atfork: {e}); free memory \
                     and retry"
                ),
            )
        })?;
        let _ = REGISTERED.set(());
    }
    Ok(())
}

impl Registry {
    /// Makes the self-pipe and starts the dispatcher thread, unless done already in this
    /// process (a child made by `fork` makes its own).
    fn start_dispatcher(&mut self) -> io::Result<()> {
        let ours = handler::pipe_is_ours();
        if self.dispatcher && ours {
            return Ok(());
        }
        if !ours {
            // A child made by `fork`. The listeners made before it were the parent's (most
            // belong to threads the child does not have, which will never receive on them or
            // drop them): they neither receive here nor keep a signal from its default action.
            self.listeners.clear();
            handler::set_listening(0);
            // A signal that came before it listened, and that the default did not end it for,
            // left the default installed (`handler::as_if_absent`). Ours goes in again with the
            // child's first listener for it.
            let installed = self.installed;
            for signal in Signal::ALL.into_iter().filter(|s| installed & s.bit() != 0) {
                if handler::is_default(signal.as_raw())? {
                    self.installed &= !signal.bit();
                }
            }
        }
        let pipe = match &self.pipe {
            Some(pipe) if ours => pipe.clone(),
            _ => {
                let pipe = Arc::new(handler::open_pipe().map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "green: could not make the signal dispatcher's self-pipe ({e}); it takes 2 fds, \
                             once per process: at the fd limit ({}), close files or raise the limit",
                            crate::rlimit::Limit::Fds.describe()
                        ),
                    )
                })?);
                self.pipe = Some(pipe.clone());
                pipe
            }
        };
        std::thread::Builder::new().name("green-signal".to_owned()).spawn(move || dispatch(&pipe)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "green: could not start the signal dispatcher thread ({e}); the process may be at its \
                     thread limit ({}) or address space ({}): end threads or raise the limit",
                    crate::rlimit::Limit::Threads.describe(),
                    crate::rlimit::Limit::AddressSpace.describe()
                ),
            )
        })?;
        self.dispatcher = true;
        Ok(())
    }

    /// The signals some live listener listens for, as bits.
    fn listening(&self) -> u64 {
        self.listeners.iter().filter_map(Weak::upgrade).fold(0, |bits, l| bits | l.set)
    }

    /// Hands the signals in `caught` to their listeners. One that nobody listens for now takes
    /// its default action if that was its action before ours and nobody listened when it
    /// arrived either; one that arrived while a listener was alive went with that listener when
    /// it was dropped.
    fn deliver(&self, caught: handler::Caught) {
        for signal in Signal::ALL.into_iter().filter(|s| caught.all & s.bit() != 0) {
            let mut heard = false;
            for listener in self.listeners.iter().filter_map(Weak::upgrade) {
                heard |= listener.deliver(signal.bit());
            }
            if !heard && caught.unheard & signal.bit() != 0 {
                handler::default_action(signal.as_raw(), signal.default_terminates());
            }
        }
    }
}

/// The dispatcher thread: waits on the self-pipe and delivers what was caught, for the rest of
/// the process.
fn dispatch(pipe: &OwnedFd) {
    loop {
        match handler::wait_caught(pipe) {
            Ok(caught) if caught.all == 0 => {}
            Ok(caught) => registry().deliver(caught),
            Err(e) => {
                // Cannot happen with a healthy pipe; do not spin if it does.
                log::error!(
                    "green: the signal dispatcher cannot read its pipe: {e}; was the pipe's fd closed by other code? \
                     Signals are not delivered meanwhile"
                );
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_types_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Signals>();
        send_sync::<Signal>();
    }

    #[test]
    fn raw_numbers_round_trip() {
        for signal in Signal::ALL {
            assert_eq!(Signal::from_raw(signal.as_raw()), Some(signal));
            assert!((signal.as_raw() as usize) < handler::MAX_SIGNAL);
        }
        assert_eq!(Signal::from_raw(libc::SIGKILL), None);
    }
}
