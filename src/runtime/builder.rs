//! Building a runtime.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::Duration;

use crossbeam_deque::Worker;

use super::shared::{Remote, Shared};
use super::task::TaskRef;
use super::worker::Core;
use super::{Config, Handle, NESTED_RUNTIME, Runtime, StackLayout};
use crate::blocking::{BlockingConfig, Pool};
use crate::rlimit::Limit;
use crate::stack::{StackArena, StackConfig};

/// Stack size of each worker OS thread. Green threads do not run on it; the worker's loop and
/// [`crate::on_worker_stack`] calls do. Only touched pages cost memory.
const WORKER_STACK_SIZE: usize = 8 << 20;

/// Default ticks between two looks at the clock (see [`Builder::budget`]).
pub(crate) const DEFAULT_BUDGET: u32 = 1024;

/// The largest budget a green thread can have ([`Builder::budget`], and
/// [`crate::Builder::budget`] per green thread): a spent budget is where a worker gets its
/// turn back from a busy green thread, to share it and to enforce a shutdown timeout, so it must
/// come soon. About a million ticks.
pub const MAX_BUDGET: u32 = 1 << 20;

/// Default time slice (see [`Builder::time_slice`]), chosen with `examples/fairness.rs` (an
/// echo service on one worker beside a `#[preemptible]` CPU burner, 100 connections): the
/// service kept 97%, 92%, 91% and 77% of its throughput with slices of 20, 50, 100 and 200 µs,
/// p99 within 1.1× throughout, while the burner got 0.57×, 1×, 1.3× and 2.2× the work of the
/// 50 µs run. 50 µs keeps the service above 90% with room to spare for a busier neighbour, and
/// gives the burner most of what longer slices would.
pub(crate) const DEFAULT_TIME_SLICE: Duration = Duration::from_micros(50);

/// Default threshold of the blocking-code monitor (see [`Builder::blocking_threshold`]): long
/// enough that no legitimate slice comes near it (a slice is tens of microseconds), short
/// enough to be seen in a server's latency before users notice; gevent warns at 0.1 s too.
pub(crate) const DEFAULT_BLOCKING_THRESHOLD: Duration = Duration::from_millis(100);

/// The shortest blocking threshold: the monitor looks at the workers four times per
/// threshold, so a zero one would keep it spinning.
const MIN_BLOCKING_THRESHOLD: Duration = Duration::from_millis(1);

/// The longest blocking threshold: the monitor adds multiples of it to the clock (a look at
/// the waits every 40 thresholds), and an `Instant` overflows past a few hundred years from
/// now. A year is as good as never to anyone who asks for more (`Duration::MAX`, say).
const MAX_BLOCKING_THRESHOLD: Duration = Duration::from_secs(365 * 24 * 3600);

/// `threshold` within [`MIN_BLOCKING_THRESHOLD`] and [`MAX_BLOCKING_THRESHOLD`].
fn clamp_threshold(threshold: Duration) -> Duration {
    threshold.clamp(MIN_BLOCKING_THRESHOLD, MAX_BLOCKING_THRESHOLD)
}

/// The value of the environment variable `name`, trimmed; `None` when it is unset or empty,
/// which every variable green reads takes for "not set".
fn env_setting(name: &str) -> Option<String> {
    let value = std::env::var_os(name)?;
    let value = value.to_string_lossy().trim().to_owned();
    (!value.is_empty()).then_some(value)
}

/// The blocking threshold the environment variable `GREEN_BLOCKING_THRESHOLD_MS` asks for:
/// `Some(None)` for `off`, `None` when it is unset or empty, or says neither a number of
/// milliseconds nor `off` (which is warned about, once per process).
fn threshold_from_env() -> Option<Option<Duration>> {
    static FROM_ENV: std::sync::OnceLock<Option<Option<Duration>>> = std::sync::OnceLock::new();
    *FROM_ENV.get_or_init(|| {
        let value = env_setting("GREEN_BLOCKING_THRESHOLD_MS")?;
        let value = value.as_str();
        if value.eq_ignore_ascii_case("off") {
            return Some(None);
        }
        match value.strip_suffix("ms").unwrap_or(value).trim_end().parse::<u64>() {
            Ok(ms) => Some(Some(clamp_threshold(Duration::from_millis(ms)))),
            Err(_) => {
                crate::warn_even_without_logger(&format!(
                    "green: GREEN_BLOCKING_THRESHOLD_MS={value} is neither a whole number of milliseconds nor `off`; \
                     the monitor keeps its default threshold of {} ms",
                    DEFAULT_BLOCKING_THRESHOLD.as_millis()
                ));
                None
            }
        }
    })
}

/// The default number of workers the environment variable `GREEN_WORKERS` asks for: `None`
/// when it is unset or empty, or is not a whole number above 0 and up to [`MAX_ENV_WORKERS`]
/// (which is warned about, once per process).
fn workers_from_env() -> Option<usize> {
    static FROM_ENV: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *FROM_ENV.get_or_init(|| {
        let value = env_setting("GREEN_WORKERS")?;
        let most = MAX_ENV_WORKERS.max(default_workers());
        match value.parse::<usize>() {
            Ok(n) if n > most => {
                crate::warn_even_without_logger(&format!(
                    "green: GREEN_WORKERS={value} asks for more workers than the {most} it may set (each is an OS \
                     thread with a poller of its own); runtimes keep the default, one worker per CPU this process \
                     may use ({}). Set a number up to {most}, or more in the code with runtime::Builder::workers",
                    default_workers()
                ));
                None
            }
            Ok(n) if n > 0 => Some(n),
            _ => {
                crate::warn_even_without_logger(&format!(
                    "green: GREEN_WORKERS={value} is not a whole number of workers above 0; runtimes keep the \
                     default, one worker per CPU this process may use ({})",
                    default_workers()
                ));
                None
            }
        }
    })
}

/// The most workers `GREEN_WORKERS` may ask for, unless the process may use more CPUs than
/// this: a mistyped value (a byte count, a few zeros too many) would otherwise start that many
/// threads, or fail to allocate their queues and abort the process.
const MAX_ENV_WORKERS: usize = 1024;

/// The most workers a runtime is built with: each is an OS thread with an epoll fd and an
/// eventfd, and the default thread and fd limits run out long before.
const MAX_WORKERS: usize = 65_536;

/// One worker per CPU the process may use.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Whether the environment variable `GREEN_PARK_BACKTRACES` turns park backtraces on: any
/// value but an empty one or a word for "no" (`0`, `false`, `off`, `no`, in any case), which
/// a user writes to turn them off and which used to turn them on.
fn park_backtraces_from_env() -> bool {
    env_setting("GREEN_PARK_BACKTRACES")
        .is_some_and(|value| !["0", "false", "off", "no"].iter().any(|no| value.eq_ignore_ascii_case(no)))
}

/// The environment variables green reads (README, "Environment variables").
const ENV_NAMES: [&str; 6] = [
    "GREEN_WORKERS",
    "GREEN_BLOCKING_THRESHOLD_MS",
    "GREEN_PARK_BACKTRACES",
    "GREEN_DUMP_SIGNAL",
    "GREEN_DUMP_LISTED",
    "GREEN_POLL_MODE",
];

/// Names other runtimes give the worker count (Go's `GOMAXPROCS`, tokio's
/// `TOKIO_WORKER_THREADS`), written with green's prefix: too far from `GREEN_WORKERS` to be a
/// near miss by spelling, and as surely meant.
const WORKER_ALIASES: [&str; 4] = ["GREEN_THREADS", "GREEN_WORKER_THREADS", "GREEN_NUM_WORKERS", "GREEN_MAXPROCS"];

/// Warns, once per process, of a variable set in the environment whose name is a near miss of
/// one green reads (`GREEN_BLOCKING_THRESHOLD` for `GREEN_BLOCKING_THRESHOLD_MS`, say): it
/// would otherwise be ignored without a word.
fn warn_of_near_misses() {
    static CHECKED: std::sync::Once = std::sync::Once::new();
    CHECKED.call_once(|| {
        for (name, _) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with("GREEN_") || ENV_NAMES.contains(&name) {
                continue;
            }
            let alias = WORKER_ALIASES.contains(&name).then_some(&"GREEN_WORKERS");
            if let Some(meant) = alias.or_else(|| ENV_NAMES.iter().find(|known| near_miss(name, known))) {
                crate::warn_even_without_logger(&format!(
                    "green: the environment variable {name} is set, and green reads no such variable; did you mean \
                     {meant}?"
                ));
            }
        }
    });
}

/// Whether `name` is `known` with a suffix left out or added, or at most two letters off, or
/// made of some of its words in any order (`GREEN_DUMP`, `GREEN_SIGNAL_DUMP`, `GREEN_BACKTRACE`;
/// a word may drop or add a plural `S`).
fn near_miss(name: &str, known: &str) -> bool {
    if name.len().abs_diff(known.len()) <= 3 && (known.starts_with(name) || name.starts_with(known)) {
        return true;
    }
    fn words(name: &str) -> impl Iterator<Item = &str> {
        name.strip_prefix("GREEN_").unwrap_or(name).split('_').filter(|w| !w.is_empty())
    }
    let same_word = |a: &str, b: &str| a == b || a.strip_suffix('S') == Some(b) || b.strip_suffix('S') == Some(a);
    let mut own = words(name).peekable();
    if own.peek().is_some() && own.all(|w| words(known).any(|k| same_word(w, k))) {
        return true;
    }
    // Edit distance, one row at a time; the names are short.
    let (a, b) = (name.as_bytes(), known.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()] <= 2
}

/// Default shutdown timeout (see [`Builder::shutdown_timeout`]).
pub(crate) const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings for a [`Runtime`], in the style of [`std::thread::Builder`].
///
/// ```
/// use std::time::Duration;
///
/// let rt = green::Runtime::builder()
///     .workers(2)
///     .stack_size(128 * 1024)
///     .thread_name("my-worker")
///     .time_slice(Duration::from_micros(100))
///     .build()?;
/// assert_eq!(rt.block_on(|| 1 + 1), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a Builder does nothing until you call build() or run()"]
pub struct Builder {
    config: Config,
    /// Settings of the blocking pool (`crate::spawn_blocking`).
    blocking: BlockingConfig,
    /// The number of workers came from `GREEN_WORKERS`: an error that asks for fewer names it.
    workers_from_env: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// The defaults: one worker per available core, [`crate::DEFAULT_STACK_SIZE`] stacks, a
    /// budget of 1024 ticks, a 50 µs time slice, a 100 ms blocking threshold, a 10 s shutdown
    /// timeout, and the blocking pool's [`DEFAULT_MAX_BLOCKING_THREADS`](crate::DEFAULT_MAX_BLOCKING_THREADS)
    /// and [`DEFAULT_BLOCKING_KEEP_ALIVE`](crate::DEFAULT_BLOCKING_KEEP_ALIVE). Park backtraces
    /// are on if the environment variable `GREEN_PARK_BACKTRACES` is set to anything but `0`, `false`,
    /// `off` or `no`
    /// (see [`Builder::park_backtraces`]), `GREEN_BLOCKING_THRESHOLD_MS` sets the blocking
    /// threshold (see [`Builder::blocking_threshold`]), and `GREEN_WORKERS` the number of
    /// workers (see [`Builder::workers`]).
    pub fn new() -> Builder {
        warn_of_near_misses();
        let from_env = workers_from_env();
        let workers = from_env.unwrap_or_else(default_workers);
        Builder {
            workers_from_env: from_env.is_some(),
            config: Config {
                workers,
                stack_size: crate::stack::DEFAULT_STACK_SIZE,
                stack_layout: StackLayout::Auto,
                thread_name: "green-worker".to_owned(),
                budget: DEFAULT_BUDGET,
                time_slice: DEFAULT_TIME_SLICE,
                shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
                blocking_threshold: threshold_from_env().unwrap_or(Some(DEFAULT_BLOCKING_THRESHOLD)),
                park_backtraces: park_backtraces_from_env(),
            },
            blocking: BlockingConfig::default(),
        }
    }

    /// Number of workers: the OS threads that run green threads. The default is
    /// [`std::thread::available_parallelism`], or the number the environment variable
    /// `GREEN_WORKERS` gives (`GREEN_WORKERS=1` runs a program's runtimes on one worker each,
    /// without a change to its code; a call to this method still wins). The variable sets at
    /// most 1024, or one per CPU where there are more; a larger value is warned about and the
    /// default kept. With [`Builder::run`] the calling thread is worker 0 and counts as one of
    /// them. More than 65,536 makes [`Builder::build`] fail with an error that says so; the
    /// thread and fd limits usually stop a build at far fewer, each with its own error.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    #[track_caller]
    pub fn workers(mut self, n: usize) -> Builder {
        assert!(n > 0, "green: a runtime needs at least one worker, got workers(0)");
        self.config.workers = n;
        self.workers_from_env = false;
        self
    }

    /// Default usable stack size of each green thread, in bytes (rounded up to the stack
    /// allocator's size class). [`crate::Builder::stack_size`] overrides it per green thread.
    /// The default is [`crate::DEFAULT_STACK_SIZE`]; more than 1 GiB makes [`Builder::build`]
    /// fail.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.config.stack_size = bytes;
        self
    }

    /// How stacks are laid out in memory. The default picks the best the kernel offers.
    pub fn stack_layout(mut self, layout: StackLayout) -> Builder {
        self.config.stack_layout = layout;
        self
    }

    /// Name prefix of the worker OS threads; worker `i` is named `"{prefix}-{i}"`. The default
    /// is `"green-worker"`. Under [`Builder::run`], worker 0 is the calling thread and keeps its
    /// own name. A NUL byte in the prefix makes [`Builder::build`] fail.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Builder {
        self.config.thread_name = prefix.into();
        self
    }

    /// Ticks a green thread may spend before the runtime looks at the clock (see
    /// [`crate::tick`]). The default is 1024; more than [`MAX_BUDGET`] counts as that.
    ///
    /// # Panics
    ///
    /// If `ticks` is 0.
    #[track_caller]
    pub fn budget(mut self, ticks: u32) -> Builder {
        assert!(ticks > 0, "green: the budget must be at least one tick, got budget(0)");
        self.config.budget = ticks.min(MAX_BUDGET);
        self
    }

    /// How long a green thread may run, once its budget is spent, before it yields to others
    /// that are waiting on its worker. The default is 50 µs.
    pub fn time_slice(mut self, slice: Duration) -> Builder {
        self.config.time_slice = slice;
        self
    }

    /// How long a worker may run one green thread without it reaching a scheduling point (a
    /// blocking-looking call, a yield, or the end of its budget) before the monitor reports it
    /// as blocking code, through the `log` facade; `None` turns the monitor off. The default
    /// is 100 ms; less than 1 ms counts as 1 ms (the monitor looks four times per threshold,
    /// and would spin), and more than a year as a year (`Duration::MAX` means "never report",
    /// as does a year; `None` also spares the monitor's thread).
    ///
    /// A report is a warning of target `green::monitor`: it names the worker, the green thread
    /// (id, name, spawn site), how long it has held the worker, whether it computes or waits in
    /// a system call (which one, on which fd and what that fd is, read from `/proc`: `recvfrom
    /// on fd 7 (socket:[81233])`, with what the call usually comes from and what to use
    /// instead), and how many green threads wait behind it. It repeats each time the stall
    /// has doubled, and its end is reported too. When every worker is stuck at once, a summary
    /// of their reports follows. With no logger, or one that drops warnings (env_logger's
    /// default, without `RUST_LOG=green=warn`), the first report and the first summary go to
    /// stderr.
    /// It names where the green thread was spawned, not where it blocks: its stack is the
    /// worker thread's while it runs, so `gdb -p <pid> -batch -ex 'thread apply all bt'` shows the
    /// blocking call under the worker thread's name.
    ///
    /// The environment variable `GREEN_BLOCKING_THRESHOLD_MS` sets the threshold of runtimes
    /// built afterwards without a change to the code (a call to this method still wins): `2`
    /// for 2 ms, `off` for no monitor. A port from std run once with `2` and a logger shows
    /// the std calls left in that block for milliseconds (a `std::thread::sleep` in a rate
    /// limiter) and that a 100 ms threshold never sees.
    ///
    /// A block shorter than the threshold is not reported, yet holds the worker all the same:
    /// `std::fs` calls in a green thread go unseen while the page cache answers them in
    /// microseconds, and stall every green thread of the worker once the disk is slow (an
    /// `fsync`, a network file system). Put file I/O on the blocking pool from the start
    /// ([`green::fs`](crate::fs), or a [`spawn_blocking`](crate::spawn_blocking) job around a
    /// `File`'s calls); a lower threshold in tests shows more of it. Such a block that lasts a
    /// quarter of the threshold or more is counted, though not reported, as a slow slice
    /// ([`WorkerMetrics::slow_slices`](crate::runtime::WorkerMetrics::slow_slices)): a server
    /// whose throughput drops with no stall reported should look there first.
    ///
    /// The monitor also reports a *possible deadlock*, with a [dump](Handle::dump), when every
    /// worker has slept for a second with live green threads and nothing inside the runtime
    /// (a timer, I/O, a blocking job) that could wake one. An OS thread may still wake them (a
    /// program whose green threads wait for an input thread's lines looks the same), so each
    /// report doubles the quiet the next needs, up to 64 s, and without a logger that hears it
    /// only the first goes to stderr.
    ///
    /// Green threads that wait on each other in joins and on green locks while others keep
    /// running are found by a look at their waits every 40 thresholds (4 s by default, once a
    /// second at most often). When the same waits make a cycle in two looks in a row, the
    /// monitor reports a *deadlock* once, naming each green thread and what it waits for. A
    /// look walks the green threads so waiting, about 0.1 µs each, and looks are spread out to
    /// cost a worker 1% at most.
    ///
    /// [`Handle::metrics`] counts each kind of report, for a program that exports its figures:
    /// each worker's stalls and the time they held it
    /// ([`WorkerMetrics::stalls`](crate::runtime::WorkerMetrics::stalls)), the possible
    /// deadlocks ([`Metrics::possible_deadlocks`](crate::runtime::Metrics::possible_deadlocks))
    /// and the deadlocks ([`Metrics::deadlocks`](crate::runtime::Metrics::deadlocks)).
    ///
    /// ```
    /// use std::time::Duration;
    /// let quiet = green::Runtime::builder().blocking_threshold(None).build()?;
    /// let strict = green::Runtime::builder().blocking_threshold(Duration::from_millis(20)).build()?;
    /// # drop((quiet, strict));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn blocking_threshold(mut self, threshold: impl Into<Option<Duration>>) -> Builder {
        self.config.blocking_threshold = threshold.into().map(clamp_threshold);
        self
    }

    /// Whether every park records a backtrace of the green thread, for [dumps](Handle::dump) to
    /// show under each parked green thread. A suspended stack cannot be walked from outside it,
    /// so the backtrace is taken by the green thread itself as it parks: several µs per park,
    /// hence off by default. Setting the environment variable `GREEN_PARK_BACKTRACES=1` turns it
    /// on for runtimes built afterwards, without changing the code (together with
    /// `GREEN_DUMP_SIGNAL`, see [`Handle::dump`]).
    ///
    /// Cargo's default release profile has no debug info: its backtraces name functions but no
    /// source lines, and a green thread's closure, inlined into the runtime's entry frame, does
    /// not show at all (a lock's backtrace ends `Mutex::lock_as`, then `Task::run`). With
    /// `debug = "line-tables-only"` under `[profile.release]` (or
    /// `CARGO_PROFILE_RELEASE_DEBUG=line-tables-only` in the build's environment) each frame,
    /// inlined ones included, has its file and line: the one in your code is where the green
    /// thread waits. Frames are resolved when a dump prints them, by the worker that answers,
    /// which runs no green thread meanwhile: about 0.1 ms a backtrace with line tables.
    ///
    /// ```
    /// let rt = green::Runtime::builder().park_backtraces(true).build()?;
    /// # drop(rt);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn park_backtraces(mut self, on: bool) -> Builder {
        self.config.park_backtraces = on;
        self
    }

    /// How long dropping the runtime waits for cancelled green threads to end before leaking
    /// them. The default is 10 s. A worker stuck in blocking code (a blocking system call, a
    /// long loop without ticks) cannot even start counting: dropping the runtime waits at most
    /// this long and a quarter of a second more, then leaves such a worker to finish on its
    /// own, saying so (on stderr too when no logger is installed). The drop then waits up to
    /// this long again for running [`spawn_blocking`](crate::spawn_blocking) jobs
    /// ([`Runtime::shutdown_timeout(t)`](crate::Runtime::shutdown_timeout) gives them what is
    /// left of `t` instead).
    ///
    /// A leaked green thread never runs again and never finishes (its stack is not freed: its
    /// frames may still be borrowed from): a [`JoinHandle::join`](crate::JoinHandle::join) of
    /// it from another runtime or an OS thread waits for good. Green threads are leaked only if
    /// they outlive their cancellation, by catching its unwind or by blocking in code the
    /// runtime cannot interrupt.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Builder {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// Most OS threads the [blocking pool](crate::spawn_blocking) runs at once; further jobs
    /// wait in a queue. The default is [`crate::DEFAULT_MAX_BLOCKING_THREADS`] (512).
    ///
    /// ```
    /// let rt = green::Runtime::builder().max_blocking_threads(4).build()?;
    /// assert_eq!(rt.block_on(|| green::spawn_blocking(|| 1).join().unwrap()), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    #[track_caller]
    pub fn max_blocking_threads(mut self, n: usize) -> Builder {
        assert!(n > 0, "green: the blocking pool needs at least one thread, got max_blocking_threads(0)");
        self.blocking.max_threads = n;
        self
    }

    /// How long an idle thread of the [blocking pool](crate::spawn_blocking) waits for another
    /// job before it exits. The default is [`crate::DEFAULT_BLOCKING_KEEP_ALIVE`] (10 s).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = green::Runtime::builder().blocking_keep_alive(Duration::from_millis(100)).build()?;
    /// assert_eq!(rt.block_on(|| green::spawn_blocking(|| 1).join().unwrap()), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn blocking_keep_alive(mut self, keep_alive: Duration) -> Builder {
        self.blocking.keep_alive = keep_alive;
        self
    }

    /// Starts the worker threads.
    ///
    /// # Errors
    ///
    /// - A worker's poller, the stack arena, the monitor thread or a worker thread cannot be
    ///   created: the OS's error kind, with a message that names the limit the process is at
    ///   (open files, threads, address space) and what to change.
    /// - The stack size is more than the largest stack (1 GiB), or the thread name holds a NUL
    ///   byte: kind [`InvalidInput`](io::ErrorKind::InvalidInput).
    ///
    /// # Panics
    ///
    /// If called from inside a green thread or a worker.
    #[track_caller]
    pub fn build(self) -> io::Result<Runtime> {
        let (runtime, first) = self.start(false)?;
        debug_assert!(first.is_none());
        Ok(runtime)
    }

    /// Builds a runtime whose worker 0 is the calling thread, runs `f` on it as the first green
    /// thread, shuts the runtime down when `f` returns, and returns what `f` returned.
    /// [`crate::run`] is this with the default settings.
    ///
    /// # Errors
    ///
    /// As for [`Builder::build`]; also if the green thread running `f` could not start (no
    /// memory for its stack) or was cancelled before it returned.
    ///
    /// # Panics
    ///
    /// Resumes the panic of `f`, after the shutdown. Panics if called from inside a green
    /// thread or a worker.
    #[track_caller]
    pub fn run<F, T>(self, f: F) -> io::Result<T>
    where
        F: FnOnce() -> T,
    {
        let (runtime, first) = self.start(true)?;
        let deque = first.expect(internal_error!("Builder::run got no worker for the calling thread"));
        let mut out: Option<T> = None;
        let out_ptr: *mut Option<T> = &mut out;
        let body = move || {
            let value = f();
            // SAFETY: `out` outlives this green thread: the caller's frame waits in `core.run`
            // below until the runtime has shut down, and this green thread, being `main`, is the
            // one whose end starts the shutdown, so it has finished by then. It runs on this
            // same OS thread, so `T` need not be `Send`.
            unsafe { *out_ptr = Some(value) };
        };
        // SAFETY: the green thread runs on worker 0, this very thread, inside `core.run` below,
        // which returns only after it has finished; so neither the closure's borrows nor its
        // `!Send` captures outlive this frame or leave this thread.
        let main = unsafe { crate::thread::new_main_task(runtime.handle(), body) };
        let core = Core::new(0, runtime.handle().shared.clone(), deque);
        core.run(Some(main.task_ref()));
        drop(core);
        drop(runtime);
        match main.join() {
            Ok(()) => Ok(out.expect(internal_error!("the green thread of Builder::run finished without a value"))),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the shared state and the worker threads. With `caller_worker`, worker 0 gets no
    /// thread and its deque is returned for the caller to run.
    #[track_caller]
    fn start(self, caller_worker: bool) -> io::Result<(Runtime, Option<Worker<TaskRef>>)> {
        assert!(!super::context::with_core(|c| c.is_some()), "{NESTED_RUNTIME}");
        crate::stack::install_overflow_handler();
        super::stats::use_asymmetric_fences();
        crate::thread::install_panic_hook();
        let config = self.config;
        crate::stack::check_size(config.stack_size)?;
        if config.thread_name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "green: the worker thread name prefix {:?} (Builder::thread_name) holds a NUL byte; pass one \
                     without it",
                    config.thread_name
                ),
            ));
        }
        let blocking = self.blocking;
        // Each worker is an OS thread with a poller: far past the thread and fd limits, a number
        // (a typo, a variable read as bytes) would abort the process on an allocation first.
        if config.workers > MAX_WORKERS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "green: {} workers asked for{}, more than a runtime can run ({MAX_WORKERS} at most); a runtime \
                     wants about one worker per CPU (this process may use {})",
                    config.workers,
                    if self.workers_from_env { " by GREEN_WORKERS" } else { " (Builder::workers)" },
                    default_workers()
                ),
            ));
        }
        // What the errors below ask for, and where the number to lower is set.
        let fewer = if self.workers_from_env {
            format!("use fewer workers (GREEN_WORKERS={} set the number)", config.workers)
        } else {
            "use fewer workers".to_owned()
        };
        let stacks = StackArena::new(StackConfig { layout: config.stack_layout, ..StackConfig::default() })?;
        let mut deques: Vec<Worker<TaskRef>> = (0..config.workers).map(|_| Worker::new_fifo()).collect();
        let stealers = deques.iter().map(Worker::stealer).collect();
        let workers = config.workers;
        let remotes = (0..workers)
            .map(|k| {
                Remote::new().map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "green: could not create the poller of worker {k} of {workers} ({e}); at the fd \
                             limit ({}), close files, raise the limit or {fewer}",
                            Limit::Fds.describe()
                        ),
                    )
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        let shared = Arc::new_cyclic(|runtime| Shared {
            config,
            injector: crossbeam_deque::Injector::new(),
            remotes: remotes.into_boxed_slice(),
            stealers,
            live: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            leaked: AtomicBool::new(false),
            stacks,
            blocking: Pool::new(blocking, runtime.clone()),
            monitor: crate::monitor::MonitorState::default(),
            spread_next: AtomicUsize::new(0),
            epoch: std::time::Instant::now(),
            coarse_ms: std::sync::atomic::AtomicU64::new(0),
        });
        let first = if caller_worker { Some(deques.remove(0)) } else { None };
        let mut runtime = Runtime {
            handle: Handle { shared: shared.clone() },
            threads: Vec::new(),
            monitor: None,
            blocking_wait: None,
        };
        let monitor = crate::monitor::Monitor::start(&shared).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "green: could not start the runtime's monitor thread ({e}); the process may be at its \
                     thread limit ({}) or address space ({}): raise the limit, or go without the monitor \
                     (Runtime::builder().blocking_threshold(None), and GREEN_DUMP_SIGNAL unset)",
                    Limit::Threads.describe(),
                    Limit::AddressSpace.describe()
                ),
            )
        })?;
        runtime.monitor = Some(monitor);
        let offset = usize::from(caller_worker);
        for (k, deque) in deques.into_iter().enumerate() {
            let index = k + offset;
            let shared = shared.clone();
            let thread = std::thread::Builder::new()
                .name(format!("{}-{index}", shared.config.thread_name))
                .stack_size(WORKER_STACK_SIZE)
                .spawn(move || Core::new(index, shared, deque).run(None));
            match thread {
                Ok(thread) => runtime.threads.push(thread),
                // Dropping `runtime` shuts down and joins the workers started so far.
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!(
                            "green: could not start worker thread {index} of {workers} ({e}); the process may \
                             be at its thread limit ({}) or address space ({}): raise the limit or {fewer}",
                            Limit::Threads.describe(),
                            Limit::AddressSpace.describe()
                        ),
                    ));
                }
            }
        }
        Ok((runtime, first))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn near_misses_of_the_variable_names_are_told_apart() {
        use super::near_miss;
        assert!(near_miss("GREEN_BLOCKING_THRESHOLD", "GREEN_BLOCKING_THRESHOLD_MS"));
        assert!(near_miss("GREEN_BLOCKING_THRESHOLD_MSEC", "GREEN_BLOCKING_THRESHOLD_MS"));
        assert!(near_miss("GREEN_POL_MODE", "GREEN_POLL_MODE"));
        assert!(near_miss("GREEN_DUMP_SIGNALS", "GREEN_DUMP_SIGNAL"));
        assert!(!near_miss("GREEN_STRESS_SEEDS", "GREEN_POLL_MODE"));
        assert!(!near_miss("GREEN_DUMP_LISTED", "GREEN_DUMP_SIGNAL"));
        assert!(!near_miss("GREEN_STRESS_SECONDS", "GREEN_DUMP_SIGNAL"));
        // Some of its words, in any order, a plural `S` dropped or added.
        assert!(near_miss("GREEN_DUMP", "GREEN_DUMP_SIGNAL"));
        assert!(near_miss("GREEN_SIGNAL_DUMP", "GREEN_DUMP_SIGNAL"));
        assert!(near_miss("GREEN_BACKTRACE", "GREEN_PARK_BACKTRACES"));
        assert!(near_miss("GREEN_THRESHOLD_MS", "GREEN_BLOCKING_THRESHOLD_MS"));
        assert!(!near_miss("GREEN_DUMP_STACK", "GREEN_DUMP_SIGNAL"));
        assert!(!near_miss("GREEN_", "GREEN_DUMP_SIGNAL"));
    }
}
