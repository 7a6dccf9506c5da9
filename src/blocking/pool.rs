//! The runtime's pool of OS threads for blocking jobs.
//!
//! # Protocol
//!
//! All state sits behind one mutex ([`State`]); jobs are rare and long next to a lock
//! acquisition, so nothing cleverer is needed.
//!
//! 1. **Submit**: push the job to the FIFO queue. If a thread is idle and not yet promised a
//!    wakeup (`idle > notified`), promise one (`notified += 1`) and signal the condition
//!    variable. Otherwise, if fewer than `max_threads` threads exist, start one (counted before
//!    the lock is released, started after). Otherwise leave the job queued: every busy thread
//!    looks at the queue again when its job ends.
//! 2. **Run**: a thread pops jobs until the queue is empty, running each without the lock.
//! 3. **Idle**: it then waits on the condition variable for at most `keep_alive`. A promised
//!    wakeup (`notified > 0`) is consumed by whichever idle thread wakes first; a thread that
//!    wakes without one keeps waiting. A thread whose keep-alive passes with nothing promised
//!    exits, so a burst of jobs does not leave hundreds of idle threads behind.
//! 4. **Shutdown** (after the runtime's workers have stopped): refuse new jobs, drop the queued
//!    ones unrun (their join handles report a cancellation), wake every idle thread so it exits,
//!    and wait (up to a timeout) for the running jobs to return. Running jobs are plain OS
//!    code: they are never interrupted; past the timeout they are left to finish on their own.
//!    If all returned in time, join the threads, so that their thread-locals' destructors (a
//!    job's buffered writer, say) have run when the runtime's drop returns, as after a join in
//!    std: a process that exits then would skip them.
//!
//! # Invariants
//!
//! - `notified <= idle`: a wakeup is promised only to a thread that is waiting.
//! - A queued job always has a thread that will look at the queue: one that was promised a
//!   wakeup, one started for it, or (at `max_threads`) a busy one that looks when its job ends.
//! - `threads` counts started threads that have not yet decided to exit, including ones whose
//!   OS thread is still being created.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{BlockingConfig, set_pool_runtime};
use crate::runtime::shared::Shared;

/// A job: a closure that reports its own outcome (through a one-shot slot it captured).
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Name of every pool thread.
const THREAD_NAME: &str = "green-blocking";

/// The pool, as owned by the runtime's [`Shared`]. Dropping it shuts the pool down without
/// waiting (the runtime normally shuts it down earlier, waiting; see [`Pool::shutdown`]).
#[derive(Debug)]
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

/// What the pool threads share with the runtime.
#[derive(Debug)]
struct Inner {
    /// The queue and the thread counts; see the module docs.
    state: Mutex<State>,
    /// Idle threads wait here for a job (or for shutdown).
    work: Condvar,
    /// `shutdown` waits here for threads to exit.
    exited: Condvar,
    /// Settings from the runtime's builder. Read-only.
    config: BlockingConfig,
    /// The runtime, for `Handle::current` on pool threads. Weak: the runtime owns the pool.
    runtime: Weak<Shared>,
}

/// Everything behind the pool's lock.
#[derive(Default)]
struct State {
    /// Jobs not yet taken by a thread, oldest first.
    queue: VecDeque<Job>,
    /// Threads started and not exiting (see the module invariants).
    threads: usize,
    /// Threads waiting for a job on `work`.
    idle: usize,
    /// Wakeups promised to idle threads and not yet consumed; never more than `idle`.
    notified: usize,
    /// Set once: no job is accepted any more, and idle threads exit.
    shutdown: bool,
    /// The threads for `shutdown` to join. A thread that exits after its keep-alive takes its
    /// own out (detaching itself, so that its stack is freed as it exits).
    handles: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("queued", &self.queue.len())
            .field("threads", &self.threads)
            .field("idle", &self.idle)
            .field("notified", &self.notified)
            .field("shutdown", &self.shutdown)
            .finish()
    }
}

/// What the pool is doing at one instant, from [`Pool::load`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PoolLoad {
    /// OS threads of the pool, busy or idle.
    pub(crate) threads: usize,
    /// Threads running a job.
    pub(crate) running: usize,
    /// Jobs waiting for a thread.
    pub(crate) queued: usize,
    /// The bound on `threads` (`Builder::max_blocking_threads`).
    pub(crate) max_threads: usize,
}

impl std::fmt::Display for PoolLoad {
    /// `8 of at most 8 threads running jobs, 292 job(s) queued`, and, when every thread a job
    /// could have is busy and jobs wait, what that means and what to do.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} thread(s) of at most {}, {} running a job, {} job(s) queued",
            self.threads, self.max_threads, self.running, self.queued
        )?;
        if self.queued > 0 && self.running >= self.max_threads {
            write!(
                f,
                " (saturated: each spawn_blocking waits for a running job to end; look for slow jobs among the \
                 green threads parked (blocking), or raise runtime::Builder::max_blocking_threads)"
            )?;
        }
        Ok(())
    }
}

impl Pool {
    /// An empty pool; threads start on demand.
    pub(crate) fn new(config: BlockingConfig, runtime: Weak<Shared>) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                exited: Condvar::new(),
                config,
                runtime,
            }),
        }
    }

    /// Right now: the pool's threads, those of them running a job, the jobs waiting for a
    /// thread, and the most threads it may run. One look under the lock, so they agree.
    pub(crate) fn load(&self) -> PoolLoad {
        let state = self.inner.lock();
        PoolLoad {
            threads: state.threads,
            running: state.threads.saturating_sub(state.idle),
            queued: state.queue.len(),
            max_threads: self.inner.config.max_threads,
        }
    }

    /// Jobs queued or running right now.
    pub(crate) fn busy(&self) -> usize {
        let state = self.inner.lock();
        state.queue.len() + state.threads.saturating_sub(state.idle)
    }

    /// Queues `job` to run on a pool thread.
    ///
    /// # Errors
    ///
    /// If the pool is shut down (the job is dropped, unrun), or if no pool thread exists and
    /// none can be started (then the jobs queued are dropped, unrun: no thread would run them).
    /// A thread that cannot be started while others run is no error: the job waits for them.
    pub(crate) fn submit(&self, job: Job) -> io::Result<()> {
        self.submit_or_return(job).map_err(|(e, unrun)| {
            drop(unrun);
            e
        })
    }

    /// [`submit`](Pool::submit), but on an error the jobs dropped unrun (`job` among them) are
    /// handed back, for the caller to drop once it has done what must come before: dropping a
    /// job wakes whoever waits for it.
    pub(crate) fn submit_or_return(&self, job: Job) -> Result<(), (io::Error, Vec<Job>)> {
        let inner = &self.inner;
        let mut state = inner.lock();
        if state.shutdown {
            drop(state);
            let e = io::Error::other("green: the runtime has shut down, so its blocking pool takes no more jobs");
            return Err((e, vec![job]));
        }
        state.queue.push_back(job);
        // 1. Wake an idle thread that is not already on its way.
        if state.idle > state.notified {
            state.notified += 1;
            drop(state);
            inner.work.notify_one();
            return Ok(());
        }
        // 2. Start another thread, if the bound allows.
        if state.threads >= inner.config.max_threads {
            return Ok(()); // 3. Queued: a busy thread takes it when its job ends.
        }
        state.threads += 1;
        drop(state);
        let runner = inner.clone();
        let started = std::thread::Builder::new().name(THREAD_NAME.to_owned()).spawn(move || runner.run());
        let e = match started {
            Ok(handle) => {
                let mut state = inner.lock();
                // One that already exited after its keep-alive found no handle to take out
                // (ones that exited for a shutdown are the shutdown's to join).
                if !state.shutdown {
                    state.handles.retain(|h| !h.is_finished());
                }
                state.handles.push(handle);
                return Ok(());
            }
            Err(e) => e,
        };
        // 4. No new thread. With others running, the job stays queued for them, as past the
        //    bound (an error now would report a job that still runs); with none, the queue
        //    would never run: empty it and say why.
        let mut state = inner.lock();
        state.threads -= 1;
        if state.threads > 0 {
            let running = state.threads;
            drop(state);
            log::warn!(
                "green: could not start another blocking-pool thread ({e}); the job waits for one of the \
                 {running} running. The process may have reached its thread limit ({}, \
                 /proc/sys/kernel/threads-max)",
                crate::rlimit::Limit::Threads.describe()
            );
            return Ok(());
        }
        let orphans = std::mem::take(&mut state.queue);
        drop(state);
        let e = io::Error::new(
            e.kind(),
            format!(
                "green: no blocking-pool thread is running and none could be started ({e}): the \
                 process may have reached its thread limit ({}, /proc/sys/kernel/threads-max) \
                 or its address space ({}); the job was not run. Raise the limit or end threads",
                crate::rlimit::Limit::Threads.describe(),
                crate::rlimit::Limit::AddressSpace.describe()
            ),
        );
        Err((e, orphans.into()))
    }

    /// Why a job this pool took may have been dropped unrun: the runtime shut down, or no
    /// pool thread was running and none could be started (then every queued job is dropped,
    /// other callers' included: see [`submit`](Pool::submit)). `shutting_down` says
    /// which.
    pub(crate) fn why_dropped(shutting_down: bool) -> String {
        if shutting_down {
            "the runtime is shutting down".to_owned()
        } else {
            format!(
                "no blocking-pool thread was running and none could be started: the process may have \
                 reached its thread limit ({}, /proc/sys/kernel/threads-max) or its address space ({}). \
                 Raise the limit or end threads",
                crate::rlimit::Limit::Threads.describe(),
                crate::rlimit::Limit::AddressSpace.describe()
            )
        }
    }

    /// Shuts the pool down (module docs, step 4): refuses new jobs, drops queued ones, and
    /// waits up to `timeout` for running jobs to return. Returns how many threads were still
    /// running jobs when it gave up (0 if all had exited). `from_a_job`: the caller is itself
    /// one of the pool's jobs, whose thread cannot exit while it waits, so it is not waited for.
    pub(crate) fn shutdown(&self, timeout: Duration, from_a_job: bool) -> usize {
        let caller = usize::from(from_a_job);
        let inner = &self.inner;
        let queued = {
            let mut state = inner.lock();
            state.shutdown = true;
            std::mem::take(&mut state.queue)
        };
        inner.work.notify_all();
        // Dropping a job runs the destructors of what it captured: not under the lock.
        drop(queued);
        // A timeout too long to reach is no limit.
        let deadline = Instant::now().checked_add(timeout);
        let mut state = inner.lock();
        while state.threads > caller {
            let Some(deadline) = deadline else {
                state = inner.exited.wait(state).unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // Idle threads were told to exit and do so at once: they run no job, and a
                // short wait (what `Runtime::shutdown_timeout` left of its own) must not
                // report them as jobs still running.
                return state.threads.saturating_sub(state.idle + caller);
            }
            state = inner.exited.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        // Every thread but the caller's has left its loop: what is left of each is its
        // thread-locals' destructors.
        let me = std::thread::current().id();
        let handles = std::mem::take(&mut state.handles);
        drop(state);
        for handle in handles.into_iter().filter(|h| h.thread().id() != me) {
            let _ = handle.join();
        }
        0
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Normally shut down already, with a wait; this covers a runtime dropped from inside
        // itself, whose shared state goes away later.
        self.shutdown(Duration::ZERO, false);
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run without the lock and nothing under it panics, so a poisoned lock still holds
        // a consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The loop of one pool thread (module docs, steps 2 and 3).
    fn run(self: Arc<Inner>) {
        set_pool_runtime(self.runtime.clone());
        let mut state = self.lock();
        loop {
            // 1. Run what is queued.
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                // A job catches its own closure's panic; this catch is for the drop of its
                // result or captures, so that one bad job does not lose the thread count.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                    log::warn!("green: a blocking job panicked outside its closure (in a destructor)");
                }
                state = self.lock();
                continue;
            }
            if state.shutdown {
                break;
            }
            // 2. Idle: wait for a promised wakeup, shutdown, or the end of the keep-alive.
            state.idle += 1;
            // A keep-alive too long to reach keeps the thread for good.
            let deadline = Instant::now().checked_add(self.config.keep_alive);
            let woken = loop {
                state = match deadline {
                    Some(deadline) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        self.work.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0
                    }
                    None => self.work.wait(state).unwrap_or_else(PoisonError::into_inner),
                };
                if state.notified > 0 {
                    state.notified -= 1;
                    break true;
                }
                if state.shutdown {
                    break true;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break false;
                }
            };
            state.idle -= 1;
            // 3. Kept alive long enough with nothing to do: exit, detached.
            if !woken && state.queue.is_empty() {
                let me = std::thread::current().id();
                if let Some(at) = state.handles.iter().position(|h| h.thread().id() == me) {
                    drop(state.handles.swap_remove(at));
                }
                break;
            }
        }
        state.threads -= 1;
        // Every exit: a shutdown called from a job waits for all threads but its own.
        self.exited.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    fn pool(max_threads: usize, keep_alive: Duration) -> Pool {
        Pool::new(BlockingConfig { max_threads, keep_alive }, Weak::new())
    }

    fn threads(pool: &Pool) -> usize {
        pool.inner.lock().threads
    }

    /// A shutdown that runs out of time counts the threads running jobs, not idle ones (told
    /// to exit, which they do at once).
    #[test]
    fn a_shutdown_out_of_time_counts_running_jobs_only() {
        let pool = pool(4, Duration::from_secs(60));
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        pool.submit(Box::new(move || {
            started_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(Duration::from_secs(10));
        }))
        .unwrap();
        started_rx.recv().unwrap();
        // A second thread, for a job that ends at once: then it waits for work.
        let (done_tx, done_rx) = mpsc::channel();
        pool.submit(Box::new(move || done_tx.send(()).unwrap())).unwrap();
        done_rx.recv().unwrap();
        let start = Instant::now();
        while pool.inner.lock().idle == 0 {
            assert!(start.elapsed() < Duration::from_secs(5), "no pool thread went idle");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(pool.shutdown(Duration::ZERO, false), 1, "the running job, not the idle thread");
        drop(release_tx);
        assert_eq!(pool.shutdown(Duration::from_secs(10), false), 0);
    }

    #[test]
    fn idle_threads_exit_after_the_keep_alive() {
        let pool = pool(4, Duration::from_millis(50));
        let (tx, rx) = mpsc::channel();
        // Held while the pool's threads are counted: no job has ended, so no thread has gone
        // idle, let alone past its keep-alive, however long the count takes to come.
        let gate = Arc::new(std::sync::RwLock::new(()));
        let closed = gate.write().unwrap();
        for _ in 0..4 {
            let (tx, gate) = (tx.clone(), gate.clone());
            pool.submit(Box::new(move || {
                tx.send(()).unwrap();
                drop(gate.read());
            }))
            .unwrap();
        }
        rx.recv().unwrap();
        assert!(threads(&pool) >= 1);
        drop(closed);
        for _ in 0..3 {
            rx.recv().unwrap();
        }
        let start = Instant::now();
        while threads(&pool) > 0 {
            assert!(start.elapsed() < Duration::from_secs(5), "idle pool threads did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Each detached itself: nothing is left for a shutdown to join.
        assert_eq!(pool.inner.lock().handles.len(), 0);
    }

    #[test]
    fn shutdown_drops_queued_jobs_and_waits_for_running_ones() {
        let pool = pool(1, Duration::from_secs(10));
        let ran = Arc::new(AtomicUsize::new(0));
        let (started_tx, started_rx) = mpsc::channel();
        for _ in 0..3 {
            let (ran, started_tx) = (ran.clone(), started_tx.clone());
            pool.submit(Box::new(move || {
                started_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(50));
                ran.fetch_add(1, Ordering::SeqCst);
            }))
            .unwrap();
        }
        started_rx.recv().unwrap();
        assert_eq!(pool.shutdown(Duration::from_secs(5), false), 0);
        assert_eq!(ran.load(Ordering::SeqCst), 1, "only the running job finishes");
        assert!(pool.submit(Box::new(|| ())).is_err());
    }
}
