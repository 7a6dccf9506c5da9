//! Child processes whose waits park: [`Command`], [`Child`] and the child's pipes, mirroring
//! [`std::process`]. `use green::process::Command;` in place of std's is the whole port of most
//! code that runs programs: `output`, `status`, `wait` and the pipes' reads and writes park the
//! green thread instead of blocking its worker, and on a plain OS thread they block as std's do.
//!
//! ```
//! use std::io::{Read, Write};
//! use green::process::{Command, Stdio};
//!
//! green::run(|| {
//!     let out = Command::new("echo").arg("hello").output()?;
//!     assert!(out.status.success());
//!     assert_eq!(out.stdout, b"hello\n");
//!
//!     // A filter: feed its stdin from one green thread, read its stdout in this one.
//!     let mut child = Command::new("sort").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
//!     let mut stdin = child.stdin.take().unwrap();
//!     let feeder = green::spawn(move || stdin.write_all(b"pear\napple\n"));
//!     let mut sorted = String::new();
//!     child.stdout.take().unwrap().read_to_string(&mut sorted)?;
//!     feeder.join().unwrap()?;
//!     assert!(child.wait()?.success());
//!     assert_eq!(sorted, "apple\npear\n");
//!     Ok::<(), std::io::Error>(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # What differs from std
//!
//! - The pipes of a [`Child`] are non-blocking on this side, registered with a worker's poller
//!   the first time a green thread waits on one, as the `green::net` types are. Handed on to
//!   another command through [`Stdio::from`], or taken back with `into_std`, a pipe is made
//!   blocking again: the next program would not expect `EAGAIN` from its standard input.
//! - [`Command::output`] and [`Command::status`] own the child they start: if the wait is
//!   cancelled ([`JoinHandle::cancel`](crate::JoinHandle::cancel)) or its
//!   [`green::timeout`](crate::timeout) passes, they kill the child and reap it before the
//!   error goes on, where std's would have no caller left to do it. (A killed child that has
//!   not ended within 20 ms, stuck in the kernel say, is reaped by an OS thread of its own
//!   rather than hold the worker. Only the child is killed: processes it started run on, as
//!   after std's `Child::kill`, and may keep the pipes open: to end them too, spawn the child in
//!   a process group of its own (`as_std_mut().process_group(0)`) and signal the group.)
//!   [`Child::wait_with_output`], which takes the child, owns it in the same way. A [`Child`]
//!   you hold is yours: dropping it neither kills nor waits for the process, as in std, unless
//!   its command had [`Command::kill_on_drop`]: then the drop (in a cancelled green thread's
//!   unwind too) kills and reaps it.
//! - [`Command::spawn`] itself runs on the calling thread, as std's does: it returns once the
//!   child has `exec`ed, about 100 µs for `true` on a 2-vCPU virtual machine (the median of 200,
//!   the same as std's measured beside it), which the worker spends there rather than on a
//!   hand-off to the blocking pool and back (some tens of µs on that machine). The pool would
//!   also make a thread that comes and goes the child's parent thread: a child whose
//!   `pre_exec` asks for `PR_SET_PDEATHSIG` is signalled when the thread that spawned it exits,
//!   and a worker lives as long as its runtime. A spawn error names the program (`cannot start "nosuch": No such file
//!   or directory (not found in PATH)`), with std's error kind; for `NotFound`, which the kernel gives alike for a
//!   missing program, working directory or script interpreter, it says which of them is missing; for an exec
//!   format error, what the file should have been; at the fd limit (no fd for the pipes) or the process limit, the
//!   limit and its value.
//! - [`Child::wait`] parks on a pidfd; see [`io::wait_child`](crate::io::wait_child), which it
//!   calls.
//! - While the green thread unwinds (in a destructor), a wait or a pipe's read or write that
//!   would park fails with a `WouldBlock` error instead
//!   ([while unwinding](crate::sync#while-unwinding)); `output` and `status` then kill and
//!   reap their child as when cancelled.
//!
//! What `std::os::unix::process::CommandExt` offers (`uid`, `process_group`, `pre_exec`, ...)
//! is reached through [`Command::as_std_mut`], or by building a std `Command` and converting
//! it with `From`.

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

// What `std::process` has beside commands, re-exported so that `use green::process::{...}` in
// place of `use std::process::{...}` keeps compiling: none of it waits.
pub use std::process::{CommandArgs, CommandEnvs, ExitCode, Termination, abort, exit, id};
pub use std::process::{ExitStatus, Output, Stdio};

use crate::reactor::{Direction, Source};

/// A process builder, like [`std::process::Command`], whose [`output`](Command::output),
/// [`status`](Command::status) and children park instead of blocking. See the
/// [module docs](self).
pub struct Command {
    inner: std::process::Command,
    /// Which of stdin, stdout and stderr the caller configured: `output` fills in its own
    /// defaults for the others, as std's does.
    configured: [bool; 3],
    /// Children it spawns are killed and reaped when their `Child` is dropped.
    kill_on_drop: bool,
}

impl Command {
    /// A command that runs `program`, as [`std::process::Command::new`].
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command::from(std::process::Command::new(program))
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable of the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.inner.env(key, val);
        self
    }

    /// Sets environment variables of the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Clears the child's environment.
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// Sets the child's standard input. `Stdio::piped()` gives a [`ChildStdin`] that parks.
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stdin(cfg);
        self.configured[0] = true;
        self
    }

    /// Sets the child's standard output. `Stdio::piped()` gives a [`ChildStdout`] that parks.
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stdout(cfg);
        self.configured[1] = true;
        self
    }

    /// Sets the child's standard error. `Stdio::piped()` gives a [`ChildStderr`] that parks.
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stderr(cfg);
        self.configured[2] = true;
        self
    }

    /// The program, as given to [`Command::new`].
    pub fn get_program(&self) -> &OsStr {
        self.inner.get_program()
    }

    /// The arguments, without the program.
    pub fn get_args(&self) -> CommandArgs<'_> {
        self.inner.get_args()
    }

    /// The environment changes made with `env`, `envs` and `env_remove`.
    pub fn get_envs(&self) -> CommandEnvs<'_> {
        self.inner.get_envs()
    }

    /// The working directory set with `current_dir`, if any.
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.inner.get_current_dir()
    }

    /// The std command inside, for what only std's `CommandExt` traits offer (`uid`,
    /// `process_group`, `pre_exec`, ...). A standard stream set on it directly does not count as
    /// configured (std does not say which were set): [`Command::output`] replaces it with its
    /// default, and leaves it inherited afterwards. Set the streams on this `Command` instead.
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.inner
    }

    /// The std command inside.
    pub fn as_std(&self) -> &std::process::Command {
        &self.inner
    }

    /// Starts the program as a child process, as [`std::process::Command::spawn`]: standard
    /// streams not set are inherited. The child's piped streams park (see the
    /// [module docs](self)).
    ///
    /// # Errors
    ///
    /// The error std gives (`NotFound` for a program that is not there), with the program named
    /// in its message. It is of std's kind, but not an OS error itself: std's error, with the
    /// code, is its [`source`](std::error::Error::source).
    pub fn spawn(&mut self) -> io::Result<Child> {
        crate::coop::tick_op();
        let child = self.inner.spawn().map_err(|e| spawn_error(&self.inner, e))?;
        let mut child = Child::from_std(child)?;
        child.inner.kill_on_drop = self.kill_on_drop;
        Ok(child)
    }

    /// Whether dropping a [`Child`] this command spawns kills the process (`SIGKILL`) and reaps
    /// it; off by default, as std's children run on when dropped. A server whose handlers run
    /// programs turns it on so that a handler cancelled ([`JoinHandle::cancel`](crate::JoinHandle::cancel),
    /// a [`green::timeout`](crate::timeout) deadline, the runtime's shutdown) while it holds a
    /// `Child` ends the process with it, and leaves no zombie behind: the unwind drops the
    /// `Child`. The drop blocks its thread for 20 ms at most, as a cancelled
    /// [`output`](Command::output) does, and hands a child that has not ended by then to an OS
    /// thread that waits for it. Only the child is killed, not the processes it started.
    ///
    /// ```
    /// use std::time::Duration;
    /// use green::process::Command;
    ///
    /// green::run(|| {
    ///     let handler = green::spawn(|| {
    ///         let mut child = Command::new("sleep").arg("3600").kill_on_drop(true).spawn()?;
    ///         child.wait()
    ///     });
    ///     green::sleep(Duration::from_millis(20));
    ///     handler.cancel(); // the wait unwinds, and the `sleep` process ends with it
    ///     assert!(handler.join().unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn kill_on_drop(&mut self, kill: bool) -> &mut Command {
        self.kill_on_drop = kill;
        self
    }

    /// Runs the program to its end and collects its output, as
    /// [`std::process::Command::output`]: standard output and error are captured unless set,
    /// and standard input reads nothing unless set. Both outputs are read as they come (the
    /// standard error on a green thread of its own, an OS thread outside a runtime), so a child
    /// that fills one pipe while nobody reads it cannot stall.
    ///
    /// A cancellation point; cancelled, or at a [`green::timeout`](crate::timeout) deadline, it
    /// kills the child (not the processes it started) and reaps it before the error or the
    /// unwind goes on (see the [module docs](self)).
    ///
    /// # Errors
    ///
    /// As [`Command::spawn`], and what reading the pipes or waiting gives.
    pub fn output(&mut self) -> io::Result<Output> {
        let defaults: [fn() -> Stdio; 3] = [Stdio::null, Stdio::piped, Stdio::piped];
        self.set_unconfigured(defaults);
        let spawned = self.spawn();
        // Back to the defaults of `spawn` and `status`, which inherit.
        self.set_unconfigured([Stdio::inherit; 3]);
        finish_owned(spawned?, Child::collect)
    }

    /// Runs the program to its end with the standard streams inherited unless set, and returns
    /// its exit status, as [`std::process::Command::status`].
    ///
    /// A cancellation point; cancelled, or at a [`green::timeout`](crate::timeout) deadline, it
    /// kills the child (not the processes it started) and reaps it before the error or the
    /// unwind goes on (see the [module docs](self)).
    ///
    /// # Errors
    ///
    /// As [`Command::spawn`], and what the wait gives.
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        finish_owned(self.spawn()?, Child::wait)
    }

    fn set_unconfigured(&mut self, cfg: [fn() -> Stdio; 3]) {
        if !self.configured[0] {
            self.inner.stdin(cfg[0]());
        }
        if !self.configured[1] {
            self.inner.stdout(cfg[1]());
        }
        if !self.configured[2] {
            self.inner.stderr(cfg[2]());
        }
    }
}

impl From<std::process::Command> for Command {
    /// Wraps a std command. Standard streams set on it count as not configured (std does not
    /// say which were set): [`Command::output`] replaces them with its defaults, and leaves them
    /// inherited afterwards, so a `spawn` after an `output` no longer has them. Set them on the
    /// result instead.
    fn from(inner: std::process::Command) -> Command {
        Command { inner, configured: [false; 3], kill_on_drop: false }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

/// A spawn error that names the program, of std's kind, with a hint at what to check.
fn spawn_error(command: &std::process::Command, e: io::Error) -> io::Error {
    let program = command.get_program();
    let hint = match (e.raw_os_error(), e.kind()) {
        (Some(libc::EMFILE | libc::ENFILE), _) => out_of_fds_hint(),
        (Some(libc::EAGAIN), _) => out_of_processes_hint(),
        (Some(libc::ENOEXEC), _) => {
            " (the file is neither a program built for this machine nor a script whose first line is #! and the \
             path of its interpreter)"
                .to_owned()
        }
        (_, io::ErrorKind::NotFound) => not_found_hint(command),
        (_, io::ErrorKind::PermissionDenied) => permission_hint(command),
        _ => String::new(),
    };
    let message = format!("cannot start {program:?}: {e}{hint}");
    io::Error::new(e.kind(), SpawnError { message, os: e })
}

/// What `EMFILE` or `ENFILE` from a spawn means: no fd was left for the pipes std makes before
/// the child starts (one per piped stream, and one to hear of a failed `exec`).
fn out_of_fds_hint() -> String {
    format!(
        " (no fd was free for the child's pipes, at the process's fd limit ({}) or the system's: close files, \
         wait for other children to end, or raise the limit)",
        crate::rlimit::Limit::Fds.describe()
    )
}

/// What `EAGAIN` from a spawn means: `fork` could not make another process, at the user's
/// process limit or the system's.
fn out_of_processes_hint() -> String {
    format!(
        " (no process could be made, at the user's process and thread limit ({}) or the system's \
         (/proc/sys/kernel/pid_max, threads-max): wait for other children to end, or raise the limit)",
        crate::rlimit::Limit::Threads.describe()
    )
}

/// What a `PermissionDenied` from a spawn may mean: a directory where a program was named, or
/// a file without permission to execute.
fn permission_hint(command: &std::process::Command) -> String {
    match program_paths(command).into_iter().find(|path| path.is_dir()) {
        Some(path) => format!(" ({path:?} is a directory)"),
        None => " (is the file executable?)".to_owned(),
    }
}

/// What a `NotFound` from a spawn may mean, looked up after the fact: `ENOENT` comes alike for
/// a working directory that is not there, a program that is not there, and a script or binary
/// that is there but whose interpreter (its `#!` line, or its dynamic loader) is not.
fn not_found_hint(command: &std::process::Command) -> String {
    if let Some(dir) = command.get_current_dir()
        && !dir.is_dir()
    {
        return format!(" (the working directory {dir:?} does not exist)");
    }
    let named = named_by_path(command);
    let found = match program_paths(command).into_iter().find(|path| if named { path.exists() } else { path.is_file() })
    {
        Some(found) => found,
        None if named => return " (the path given does not exist)".to_owned(),
        None => return " (not found in PATH)".to_owned(),
    };
    format!(" ({found:?} is there: the interpreter its #! line names, or the loader it needs, is missing)")
}

/// Whether the program is named by a path (it has a `/`), not looked for in `PATH`.
fn named_by_path(command: &std::process::Command) -> bool {
    command.get_program().as_encoded_bytes().contains(&b'/')
}

/// Where the child looked for its program: a path relative to the child's working directory
/// (which it has entered before its `exec`), or a bare name in each directory of the child's
/// `PATH` (the command's, if it sets one), not in the working directory.
fn program_paths(command: &std::process::Command) -> Vec<std::path::PathBuf> {
    let program = Path::new(command.get_program());
    if named_by_path(command) {
        return vec![command.get_current_dir().map_or_else(|| program.to_path_buf(), |dir| dir.join(program))];
    }
    let set = command.get_envs().find(|(key, _)| *key == "PATH").map(|(_, value)| value.map(OsStr::to_owned));
    let path = match set {
        Some(value) => value,
        None => std::env::var_os("PATH"),
    };
    path.iter().flat_map(std::env::split_paths).map(|dir| dir.join(program)).collect()
}

/// What [`spawn_error`] wraps: its message, and std's error as the source, so that the OS error
/// code (`raw_os_error`) is still there to read.
#[derive(Debug)]
struct SpawnError {
    message: String,
    os: io::Error,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.os)
    }
}

/// Runs `wait` on a child that `output` or `status` started, or that `wait_with_output` took,
/// and that nobody else can reach: if the wait does not finish (cancelled, a `green::timeout`
/// deadline, an error), the child is killed and reaped as it drops.
fn finish_owned<R>(mut child: Child, wait: impl FnOnce(&mut Child) -> io::Result<R>) -> io::Result<R> {
    child.inner.kill_on_drop = true;
    let result = wait(&mut child);
    if result.is_ok() {
        child.inner.kill_on_drop = false;
    }
    result
}

/// A child process as std holds it, killed and reaped when dropped if `kill_on_drop` says so
/// (for [`Command::kill_on_drop`], and for the children that `output`, `status` and
/// `wait_with_output` own). A field of [`Child`] rather than a destructor of its own, so that
/// its pipes can still be moved out of it, as out of std's.
struct Process {
    /// `None` only once dropped.
    std: Option<std::process::Child>,
    kill_on_drop: bool,
}

impl Process {
    fn get(&self) -> &std::process::Child {
        self.std.as_ref().expect(internal_error!("a child process used after it was dropped"))
    }

    fn get_mut(&mut self) -> &mut std::process::Child {
        self.std.as_mut().expect(internal_error!("a child process used after it was dropped"))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.std.take().filter(|_| self.kill_on_drop) {
            // Fails for a child reaped already, which `reap` sees at once, or one that changed its
            // credentials so that this process may not signal it: `reap` then hands the wait on.
            let _ = child.kill();
            reap(child, KILLED_GRACE);
        }
    }
}

/// How long [`Process`]'s destructor blocks its thread for the child it killed to end. A killed
/// process ends within a millisecond or so; one in uninterruptible sleep (a hung network
/// mount, a failing disk) ends only when the kernel call returns, and one with gigabytes
/// mapped takes a while to free them. The destructor cannot park (it may run while unwinding),
/// so past this it hands the wait to a thread of its own rather than hold the worker.
const KILLED_GRACE: Duration = Duration::from_millis(20);

/// The first pause of [`reap`] between two looks; each next one doubles, up to 2 ms.
const REAP_FIRST_PAUSE: Duration = Duration::from_micros(50);

/// Reaps `child`, blocking this thread at most about `grace`: a child that has not ended by
/// then is waited for on an OS thread of its own, which ends with it. Nothing here parks, so it
/// may run while unwinding.
fn reap(mut child: std::process::Child, grace: Duration) {
    let start = Instant::now();
    let mut pause = REAP_FIRST_PAUSE;
    loop {
        match child.try_wait() {
            // An error (`ECHILD`: reaped by other code) leaves nothing to wait for either.
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if start.elapsed() >= grace => break,
            Ok(None) => {}
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(2));
    }
    let pid = child.id();
    let reaper = std::thread::Builder::new().name("green-reaper".into()).spawn(move || {
        let _ = child.wait();
    });
    if let Err(e) = reaper {
        log::warn!(
            "green: process {pid}, killed as its Child was dropped (with kill_on_drop, or by the output(), status() or \
             wait_with_output() that owned it and gave up), had not ended after {grace:?}, and no thread could be started to wait for it ({e}); it stays a zombie until this \
             process ends"
        );
    }
}

/// A running or exited child process, like [`std::process::Child`], whose waits park and whose
/// piped streams are green ones. Dropping it neither kills nor waits for the process, unless
/// [`Command::kill_on_drop`] was set when it was spawned.
pub struct Child {
    /// The child's standard input, if piped.
    pub stdin: Option<ChildStdin>,
    /// The child's standard output, if piped.
    pub stdout: Option<ChildStdout>,
    /// The child's standard error, if piped.
    pub stderr: Option<ChildStderr>,
    inner: Process,
}

impl Child {
    /// A green child from a std one (spawned with std's `Command`, say): its piped streams
    /// become non-blocking and park.
    ///
    /// # Errors
    ///
    /// What making a pipe non-blocking gives (`fcntl`); the child runs on, and is dropped.
    pub fn from_std(mut inner: std::process::Child) -> io::Result<Child> {
        Ok(Child {
            stdin: inner.stdin.take().map(ChildStdin::from_std).transpose()?,
            stdout: inner.stdout.take().map(ChildStdout::from_std).transpose()?,
            stderr: inner.stderr.take().map(ChildStderr::from_std).transpose()?,
            inner: Process { std: Some(inner), kill_on_drop: false },
        })
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.inner.get().id()
    }

    /// Sends the child `SIGKILL`, as [`std::process::Child::kill`]; a child that has already
    /// been reaped is left alone.
    ///
    /// # Errors
    ///
    /// What std's gives.
    pub fn kill(&mut self) -> io::Result<()> {
        self.inner.get_mut().kill()
    }

    /// Waits for the child to end, parking the green thread, and returns its exit status; closes
    /// its standard input first, as std's does. See [`io::wait_child`](crate::io::wait_child).
    ///
    /// A cancellation point: cancelled, the green thread unwinds and the child runs on, as at a
    /// deadline.
    ///
    /// # Errors
    ///
    /// What the wait gives; `TimedOut` at a [`green::timeout`](crate::timeout) deadline (the
    /// child runs on).
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        crate::io::wait_child(self.inner.get_mut())
    }

    /// The exit status if the child has ended, without waiting.
    ///
    /// # Errors
    ///
    /// What std's gives.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.inner.get_mut().try_wait()
    }

    /// Closes the child's standard input, reads its piped standard output and error to their
    /// ends (at once, as [`Command::output`] does), and waits for it, as
    /// [`std::process::Child::wait_with_output`].
    ///
    /// A cancellation point. The call owns the child, as [`Command::output`] owns its own:
    /// cancelled, at a [`green::timeout`](crate::timeout) deadline, or failing, it kills the
    /// child (not the processes it started) and reaps it before the error or the unwind goes
    /// on. Nobody else could: the `Child` is gone, and a child nobody reaps stays a zombie
    /// once it ends, until this process ends. To let the child run on past a deadline, read
    /// its pipes and [`wait`](Child::wait) on a `Child` you keep.
    ///
    /// # Errors
    ///
    /// What reading the pipes or waiting gives.
    pub fn wait_with_output(self) -> io::Result<Output> {
        finish_owned(self, Child::collect)
    }

    fn collect(&mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (stdout, stderr) = read_both(self.stdout.take(), self.stderr.take())?;
        let status = self.wait()?;
        Ok(Output { status, stdout, stderr })
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.id())
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}

/// Reads both pipes to their ends at once: the standard error on a green thread of its own (an
/// OS thread where there is no runtime), the standard output here.
fn read_both(stdout: Option<ChildStdout>, stderr: Option<ChildStderr>) -> io::Result<(Vec<u8>, Vec<u8>)> {
    fn all(mut pipe: impl Read) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        pipe.read_to_end(&mut bytes)?;
        Ok(bytes)
    }
    match (stdout, stderr) {
        (None, None) => Ok((Vec::new(), Vec::new())),
        (Some(out), None) => Ok((all(out)?, Vec::new())),
        (None, Some(err)) => Ok((Vec::new(), all(err)?)),
        (Some(out), Some(err)) if crate::runtime::context::in_green_thread() => {
            let mut reader = CancelOnDrop(Some(crate::Builder::new().spawn(move || all(err))?));
            let out = all(out)?;
            // Ends once the child closes its standard error (it ends, or is killed). Waited for
            // by reference, so that a wait that unwinds still cancels the reader: cancelled, or
            // at a `green::timeout` deadline (where the first wait says false and the second
            // unwinds). While unwinding, neither waits, and the join says the reader is
            // unfinished.
            let handle = reader.0.as_mut().expect(internal_error!("the reader of stderr was gone"));
            let _ = handle.wait_timeout(READER_WAIT) || handle.wait_timeout(READER_WAIT);
            let handle = reader.0.take().expect(internal_error!("the reader of stderr was gone"));
            match handle.join() {
                Ok(err) => Ok((out, err?)),
                Err(e) => {
                    // Cancelled: nobody but the runtime's shutdown reaches the reader, and it
                    // cancels this green thread too, which unwinds here as it would at its
                    // worker's next look (`output` then kills and reaps the child).
                    if e.is_cancelled() {
                        crate::park::unwind_if_shutting_down();
                    }
                    Err(io::Error::other(format!("reading the child's standard error: {e}")))
                }
            }
        }
        (Some(out), Some(err)) => std::thread::scope(|scope| {
            let reader = scope.spawn(move || all(err));
            let out = all(out);
            let err = reader.join().unwrap_or_else(|_| Err(io::Error::other("reading stderr panicked")));
            Ok((out?, err?))
        }),
    }
}

/// One wait of [`read_both`] for its reader of the standard error; long, as a child may run
/// for long. A wait that ends without the reader done is followed by the join, which waits on.
const READER_WAIT: Duration = Duration::from_secs(3600);

/// The green thread that reads a child's standard error for [`read_both`], cancelled if the
/// read of the standard output fails or unwinds: the child is then killed, but a process it
/// started may hold the pipe open for long, and nobody would take what the reader collects.
struct CancelOnDrop<T>(Option<crate::JoinHandle<T>>);

impl<T> Drop for CancelOnDrop<T> {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.cancel();
        }
    }
}

/// A green thread's `green::timeout` deadline passed while it waited on a pipe: the kind a
/// wait for readiness gives there (pipes have no timeouts of their own).
fn deadline_error() -> io::Error {
    io::Error::from(io::ErrorKind::TimedOut)
}

/// Defines a pipe end of a child: a std pipe made non-blocking, and its source.
macro_rules! pipe {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name {
            // Dropped first: the registration goes before the fd closes.
            source: Source,
            inner: std::process::$name,
        }

        impl $name {
            fn from_std(inner: std::process::$name) -> io::Result<$name> {
                crate::io::set_nonblocking(&inner, true)?;
                Ok($name { source: Source::new(inner.as_raw_fd()), inner })
            }

            /// The std pipe inside, made blocking again.
            ///
            /// # Errors
            ///
            /// What making it blocking gives (`fcntl`).
            pub fn into_std(self) -> io::Result<std::process::$name> {
                let $name { source, inner } = self;
                drop(source);
                crate::io::set_nonblocking(&inner, false)?;
                Ok(inner)
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.inner.as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.inner.as_raw_fd()
            }
        }

        /// Hands over the fd, still non-blocking (as the sockets' `into_raw_fd`; [`into_std`]
        /// makes it blocking again).
        ///
        #[doc = concat!("[`into_std`]: ", stringify!($name), "::into_std")]
        impl IntoRawFd for $name {
            fn into_raw_fd(self) -> RawFd {
                OwnedFd::from(self).into_raw_fd()
            }
        }

        /// Hands over the fd, still non-blocking, as [`IntoRawFd`] does.
        impl From<$name> for OwnedFd {
            fn from(pipe: $name) -> OwnedFd {
                let $name { source, inner } = pipe;
                drop(source);
                inner.into()
            }
        }

        /// Takes over a pipe's fd and makes it non-blocking, as std's `From<OwnedFd>` takes it
        /// over (the fd should be close-on-exec, as std asks, so that other children do not
        /// inherit it).
        ///
        /// # Panics
        ///
        /// If the fd cannot be made non-blocking, which `fcntl` refuses only for an fd that is
        /// not open.
        impl From<OwnedFd> for $name {
            fn from(fd: OwnedFd) -> $name {
                $name::from_std(std::process::$name::from(fd)).unwrap_or_else(|e| {
                    panic!(
                        "green: could not make the pipe handed in to {} non-blocking: {e}; was its fd closed by \
                         other code?",
                        stringify!($name)
                    )
                })
            }
        }

        impl From<$name> for Stdio {
            /// Hands the pipe to another command, blocking again (if that fails, which `fcntl`
            /// on a pipe does not, the next program sees `EAGAIN` when it outpaces this one).
            fn from(pipe: $name) -> Stdio {
                let $name { source, inner } = pipe;
                drop(source);
                let _ = crate::io::set_nonblocking(&inner, false);
                Stdio::from(inner)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("fd", &self.as_raw_fd()).finish()
            }
        }
    };
}

pipe! {
    /// The writing end of a child's standard input, like [`std::process::ChildStdin`]: a write
    /// that finds the pipe full parks until the child reads. Dropping it closes the pipe, which
    /// the child reads as the end of its input.
    ChildStdin
}

pipe! {
    /// The reading end of a child's standard output, like [`std::process::ChildStdout`]: a read
    /// that finds the pipe empty parks until the child writes or ends.
    ChildStdout
}

pipe! {
    /// The reading end of a child's standard error, like [`std::process::ChildStderr`]: a read
    /// that finds the pipe empty parks until the child writes or ends.
    ChildStderr
}

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes through a shared reference, as std's `&ChildStdin` does: several green threads may
/// write at once, each parking while the pipe is full. A write of up to `PIPE_BUF` (4096 bytes
/// on Linux) is never interleaved with another; `write_all` of more may be.
impl Write for &ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let inner = &self.inner;
        let n = self.source.io(Direction::Write, None, deadline_error, || (&*inner).write(buf))?;
        crate::coop::tick_bytes(n);
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let inner = &self.inner;
        let n = self.source.io(Direction::Write, None, deadline_error, || (&*inner).write_vectored(bufs))?;
        crate::coop::tick_bytes(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

macro_rules! read_pipe {
    ($name:ident) => {
        impl Read for $name {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let inner = &mut self.inner;
                let n = self.source.io(Direction::Read, None, deadline_error, || inner.read(buf))?;
                crate::coop::tick_bytes(n);
                Ok(n)
            }

            fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
                let inner = &mut self.inner;
                let n = self.source.io(Direction::Read, None, deadline_error, || inner.read_vectored(bufs))?;
                crate::coop::tick_bytes(n);
                Ok(n)
            }
        }
    };
}

read_pipe!(ChildStdout);
read_pipe!(ChildStderr);

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    /// Whether process `pid` is gone, reaped (not a zombie).
    fn reaped(pid: u32) -> bool {
        std::fs::metadata(format!("/proc/{pid}")).is_err()
    }

    /// A child that outlives the grace (as a killed one in uninterruptible sleep would): the
    /// caller goes on after about the grace, and the child is reaped once it ends all the same.
    #[test]
    fn a_child_that_outlives_the_grace_is_reaped_by_a_thread_of_its_own() {
        let child = std::process::Command::new("sleep").arg("0.3").spawn().unwrap();
        let pid = child.id();
        let start = Instant::now();
        super::reap(child, Duration::from_millis(10));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(10), "reap gave up before the grace: {took:?}");
        assert!(took < Duration::from_millis(250), "reap blocked until the child ended: {took:?}");
        assert!(!reaped(pid), "the child ended within the grace: the test shows nothing");
        let until = Instant::now() + Duration::from_secs(30);
        while !reaped(pid) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(reaped(pid), "the child was never reaped");
    }

    /// A spawn refused for want of a process (`fork`'s `EAGAIN`, which a test cannot provoke
    /// when run as root) names the limit to raise, and keeps std's kind and code; it used to
    /// say only "Resource temporarily unavailable".
    #[test]
    fn a_spawn_with_no_process_left_names_the_limit() {
        let command = std::process::Command::new("true");
        let e = super::spawn_error(&command, std::io::Error::from_raw_os_error(libc::EAGAIN));
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
        let message = e.to_string();
        for needle in ["cannot start \"true\"", "no process could be made", "ulimit -u", "raise the limit"] {
            assert!(message.contains(needle), "{needle:?} not in {message:?}");
        }
        let source = std::error::Error::source(e.get_ref().unwrap()).unwrap();
        let os = source.downcast_ref::<std::io::Error>().unwrap();
        assert_eq!(os.raw_os_error(), Some(libc::EAGAIN));
    }

    /// A child that ends within the grace is reaped by the caller, with no thread started.
    #[test]
    fn a_child_that_ends_within_the_grace_is_reaped_at_once() {
        let mut child = std::process::Command::new("sleep").arg("10").spawn().unwrap();
        let pid = child.id();
        child.kill().unwrap();
        let start = Instant::now();
        super::reap(child, Duration::from_secs(20));
        assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
        assert!(reaped(pid));
    }
}
