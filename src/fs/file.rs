//! [`File`] and [`OpenOptions`]: std's, with every call that may wait for a disk made on the
//! blocking pool while the green thread parks.

use std::fmt;
use std::io::{self, IoSlice, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use super::{FileTimes, Metadata, Permissions, TryLockError, in_place_call, on_pool, owned, parks_here};

/// Most bytes one read or write hands to the pool at a time (its own copy of them): a larger
/// buffer is read or written in part, as `read` and `write` may; but not a write to a file
/// opened for appending (see [`status_flags`]).
const MOST_PER_CALL: usize = 2 * 1024 * 1024;

/// The first pause of a green thread's [`File::lock`] between tries.
const LOCK_RETRY_FIRST: Duration = Duration::from_millis(1);

/// The longest pause of a green thread's [`File::lock`] between tries: a lock let go is had at
/// most this much later.
const LOCK_RETRY_MAX: Duration = Duration::from_millis(10);

/// Most bytes one read made in place copies from the page cache: tens of µs of the worker's
/// time (as `fs::read` in place, whole files up to that size).
const MOST_IN_PLACE_PER_CALL: usize = 256 * 1024;

/// An open file, as [`std::fs::File`], whose calls never hold a worker.
///
/// A read first asks for what the page cache holds (`preadv2` with `RWF_NOWAIT`, for a regular
/// file of a block device's file system: see the [module docs](super)) straight into the
/// caller's buffer; only a read that would wait for the disk goes to the
/// [blocking pool](crate::spawn_blocking), through a copy of its own. Writes, `sync_all`,
/// `sync_data`, `set_len` and `set_permissions` go to the pool, with a copy of the data written
/// (up to 2 MiB a call, all of it for a file opened for appending, whose records the kernel
/// keeps whole as std's one `write` of each would: wrap the file in a
/// [`BufWriter`](std::io::BufWriter) for many small writes, each of which would otherwise pay
/// a hand-off). Seeks, `metadata`, `try_lock` and `unlock` of a regular file of a block
/// device's file system are made in place, on the pool for any other (a network file system
/// may ask its server, a device its driver); reads and seeks go to the pool too while a call of
/// the same open file (this `File` or a clone) is under way there, as the kernel's lock on the
/// position would make them wait for it. [`lock`](File::lock) waits by trying again and again,
/// without the pool. `try_clone` is made in place. Dropping the last `File` of an open file
/// closes it before the drop returns, as std's does; for any but a local regular file opened
/// only for reading the close is made on the pool (FUSE sends it to its daemon, a network file
/// system may write back and ask its server, ext4 and XFS start writing back a file truncated
/// and written again), a wait that no cancellation or deadline ends.
///
/// `Read`, `Write` and `Seek` are implemented for `File` and `&File`, as std's are. Every call
/// is a cancellation point; a call cancelled (or past its [`green::timeout`](crate::timeout)
/// deadline) while the pool makes it unwinds at once, and the pool finishes it: a write may
/// still be made, a read's bytes are lost and the file's position has moved past them. Where
/// nothing may park (an OS thread, the worker's own stack, a green thread unwinding) each call
/// is std's, in place, but for `lock` on a worker, which tries once there (see its docs).
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
///
/// green::run(|| {
///     let path = std::env::temp_dir().join(format!("green-file-doc-{}", std::process::id()));
///     let mut file = green::fs::File::create(&path)?;
///     file.write_all(b"one\ntwo\n")?;
///     file.sync_all()?;
///     let lines: Vec<String> = BufReader::new(green::fs::File::open(&path)?).lines().collect::<Result<_, _>>()?;
///     assert_eq!(lines, ["one", "two"]);
///     green::fs::remove_file(&path)
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct File {
    /// Shared with the pool job of a call under way, which may outlive a cancelled caller.
    inner: Arc<Closing>,
    /// Calls on the pool, given up on or not, of this file and of its clones (`try_clone`: the
    /// same open file, whose position they share). While one is under way, a read or a seek
    /// goes to the pool too: the pool's `read` or `write` holds the open file's position lock
    /// for as long as it waits (for the disk, for writeback to catch up, for the inode's lock),
    /// and a `read` or `lseek` in place would wait for that lock on the worker. (Another
    /// thread's or process's call on the same open file, through a descriptor of its own, may
    /// still hold it: not seen here.)
    pool_calls: Arc<AtomicUsize>,
}

/// The std file of a [`File`] and its clones' calls on the pool, closed where its close may
/// wait: the last reference dropped on a green thread closes on the pool a file that is not a
/// local regular one, or that was opened for writing, and waits for that (std's close is
/// synchronous: a lock is given up, a network file system's data is flushed, by the time it
/// returns). Elsewhere, or for a local regular file opened only for reading, whose close waits
/// for nothing, it is closed in place.
struct Closing {
    /// `None` only once given away (`into_std`) or being closed.
    file: Option<std::fs::File>,
    /// A regular file of a block device's file system: reads tried in place first, seeks and
    /// metadata made in place, and closed in place if opened only for reading.
    local: bool,
}

impl std::ops::Deref for Closing {
    type Target = std::fs::File;

    fn deref(&self) -> &std::fs::File {
        self.file.as_ref().expect(internal_error!("a File's file used after it was given away"))
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        let Some(file) = self.file.take() else { return };
        // Flags that cannot be had count as opened for writing.
        let read_only = || status_flags(&file).is_some_and(|f| f & libc::O_ACCMODE == libc::O_RDONLY);
        if !parks_here() || (self.local && read_only()) {
            return drop(file);
        }
        // A close on FUSE asks its daemon (`FLUSH`), one on NFS may write back and ask its
        // server, and the last close of a local file opened for writing may write too (ext4
        // and XFS start the writeback of a file truncated and written again, 50 ms for one of
        // 200 MiB here; ext4 takes the inode's block-mapping lock to drop the last writer's
        // reservation): on the pool. If the pool does not take it, the file was closed here.
        crate::blocking::run_to_the_end(move || drop(file));
    }
}

impl Closing {
    fn new(file: std::fs::File, local: bool) -> Arc<Closing> {
        Arc::new(Closing { file: Some(file), local })
    }
}

/// One call of a file's on the pool, counted in its `pool_calls` until the pool is done with it
/// (or the call is dropped unmade).
struct PoolCall(Arc<AtomicUsize>);

impl PoolCall {
    fn start(calls: &Arc<AtomicUsize>) -> PoolCall {
        calls.fetch_add(1, Ordering::AcqRel);
        PoolCall(calls.clone())
    }
}

impl Drop for PoolCall {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl File {
    /// Opens a file for reading, as [`std::fs::File::open`]: in place when its path is in the
    /// kernel's caches and it is a regular file of a block device's file system, on the pool
    /// otherwise.
    ///
    /// # Errors
    ///
    /// What std's gives.
    pub fn open(path: impl AsRef<Path>) -> io::Result<File> {
        let path = path.as_ref();
        if let Some(file) = super::open_in_place(path) {
            return Ok(File { inner: Closing::new(file, true), pool_calls: Arc::default() });
        }
        let path = owned(path);
        on_pool(move || std::fs::File::open(path)).map(File::from)
    }

    /// Opens a file for writing, creating it or truncating it, as [`std::fs::File::create`],
    /// on the pool.
    ///
    /// # Errors
    ///
    /// What std's gives.
    pub fn create(path: impl AsRef<Path>) -> io::Result<File> {
        let path = owned(path);
        on_pool(move || std::fs::File::create(path)).map(File::from)
    }

    /// Creates a new file for reading and writing, failing if it exists, as
    /// [`std::fs::File::create_new`], on the pool.
    ///
    /// # Errors
    ///
    /// What std's gives (`AlreadyExists` if the file is there).
    pub fn create_new(path: impl AsRef<Path>) -> io::Result<File> {
        let path = owned(path);
        on_pool(move || std::fs::File::create_new(path)).map(File::from)
    }

    /// A blank [`OpenOptions`], as [`std::fs::File::options`].
    #[must_use]
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Writes the file's contents and metadata to the disk, as
    /// [`std::fs::File::sync_all`], on the pool.
    ///
    /// # Errors
    ///
    /// What std's gives.
    pub fn sync_all(&self) -> io::Result<()> {
        self.on_pool(|file| file.sync_all())
    }

    /// Writes the file's contents to the disk, as [`std::fs::File::sync_data`], on the pool.
    ///
    /// # Errors
    ///
    /// What std's gives.
    pub fn sync_data(&self) -> io::Result<()> {
        self.on_pool(|file| file.sync_data())
    }

    /// Truncates or extends the file to `size` bytes, as [`std::fs::File::set_len`], on the
    /// pool.
    ///
    /// # Errors
    ///
    /// What std's gives.
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        self.on_pool(move |file| file.set_len(size))
    }

    /// The file's metadata, as [`std::fs::File::metadata`]: in place on a block device's file
    /// system, on the pool otherwise.
    ///
    /// # Errors
    ///
    /// What std's gives.
    pub fn metadata(&self) -> io::Result<Metadata> {
        self.in_place_or_on_pool(self.inner.local, |file| file.metadata())
    }

    /// A new `File` for the same open file (position included), as
    /// [`std::fs::File::try_clone`]; in place (a `dup` waits for nothing).
    ///
    /// # Errors
    ///
    /// What std's gives (the fd limit, say).
    pub fn try_clone(&self) -> io::Result<File> {
        if parks_here() {
            in_place_call();
        }
        let clone = Closing::new(self.inner.try_clone()?, self.inner.local);
        Ok(File { inner: clone, pool_calls: self.pool_calls.clone() })
    }

    /// Takes an exclusive advisory lock on the file, waiting until no other lock is held, as
    /// [`std::fs::File::lock`].
    ///
    /// A green thread waits by trying ([`try_lock`](File::try_lock), made in place on a local
    /// file) and sleeping between tries, 1 ms at first, doubling to 10 ms: a lock let go is had
    /// within that much, and the wait holds neither a worker nor a pool thread (a wait made on
    /// the pool held one each, and as many waiters as the pool has threads kept the holder's
    /// own writes from running, and so from ever letting go). The wait is a cancellation point,
    /// and ends at a [`green::timeout`](crate::timeout) deadline by unwinding to it, the lock
    /// not taken (a try made on the pool for a file that is not local goes on after its caller
    /// has gone, and lets go of a lock it takes then). The price: the kernel wakes a process
    /// blocked in `flock` the moment the lock is let go, while a try comes up to 10 ms later, so
    /// a green thread can lose a lock that other processes take again and again to their
    /// blocked waiters. On a plain OS thread the call blocks in the kernel, as std's. Where a
    /// worker cannot wait (a green thread unwinding, the worker's own stack) it tries once: the
    /// wait would hold the worker, for good if the holder is a green thread of that worker.
    ///
    /// # Errors
    ///
    /// What std's gives; where a worker cannot wait and the lock is held elsewhere, a
    /// `WouldBlock` error that says so.
    pub fn lock(&self) -> io::Result<()> {
        self.lock_with(std::fs::File::try_lock, std::fs::File::lock)
    }

    /// Takes a shared advisory lock on the file, waiting until no exclusive lock is held, as
    /// [`std::fs::File::lock_shared`]: waiting as [`lock`](File::lock) does.
    ///
    /// # Errors
    ///
    /// As [`lock`](File::lock)'s.
    pub fn lock_shared(&self) -> io::Result<()> {
        self.lock_with(std::fs::File::try_lock_shared, std::fs::File::lock_shared)
    }

    /// [`lock`](File::lock) and [`lock_shared`](File::lock_shared): `try_lock` until it takes
    /// the lock, sleeping between tries; `lock` where nothing may park.
    fn lock_with(
        &self,
        try_lock: fn(&std::fs::File) -> Result<(), TryLockError>,
        lock: fn(&std::fs::File) -> io::Result<()>,
    ) -> io::Result<()> {
        if !parks_here() {
            // On a worker (a green thread unwinding, the worker's own stack) a wait in the kernel
            // would hold it, for good if the holder is a green thread of that worker: one try.
            return match crate::reactor::cannot_park() {
                None => lock(&self.inner),
                Some(why) => try_lock(&self.inner).map_err(|e| match e {
                    TryLockError::WouldBlock => {
                        io::Error::new(io::ErrorKind::WouldBlock, format!("{why} (the file's lock is held elsewhere)"))
                    }
                    TryLockError::Error(e) => e,
                }),
            };
        }
        let mut pause = LOCK_RETRY_FIRST;
        loop {
            match self.try_to_wait(try_lock) {
                Ok(()) => return Ok(()),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(e),
            }
            crate::sleep(pause);
            pause = (pause * 2).min(LOCK_RETRY_MAX);
        }
    }

    /// Takes an exclusive advisory lock if none is held, as [`std::fs::File::try_lock`]: in
    /// place for a regular file of a block device's file system, on the pool otherwise (a
    /// network file system's locks are its server's).
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] if another lock is held; else what std's gives.
    ///
    /// ```
    /// green::run(|| {
    ///     let path = std::env::temp_dir().join(format!("green-lock-doc-{}", std::process::id()));
    ///     let holder = green::fs::File::create(&path)?;
    ///     holder.lock()?;
    ///     let other = green::fs::File::open(&path)?;
    ///     assert!(matches!(other.try_lock(), Err(green::fs::TryLockError::WouldBlock)));
    ///     holder.unlock()?;
    ///     other.try_lock().expect("the lock is free");
    ///     green::fs::remove_file(&path)
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_lock(&self) -> Result<(), TryLockError> {
        self.try_lock_with(std::fs::File::try_lock)
    }

    /// Takes a shared advisory lock if no exclusive one is held, as
    /// [`std::fs::File::try_lock_shared`]; where, as [`try_lock`](File::try_lock).
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] if an exclusive lock is held; else what std's gives.
    pub fn try_lock_shared(&self) -> Result<(), TryLockError> {
        self.try_lock_with(std::fs::File::try_lock_shared)
    }

    /// Gives the file's advisory lock up, as [`std::fs::File::unlock`]; where, as
    /// [`try_lock`](File::try_lock).
    ///
    /// # Errors
    ///
    /// What std's gives.
    pub fn unlock(&self) -> io::Result<()> {
        self.in_place_or_on_pool(self.inner.local, |file| file.unlock())
    }

    /// One try of [`lock_with`](File::lock_with)'s. On the pool (a file that is not local) a try
    /// goes on after its caller gives up (cancelled, at a deadline): a lock it takes then is let
    /// go again, whichever of the two comes last seeing the other's mark, so that a `lock` that
    /// returned none never leaves one held.
    fn try_to_wait(&self, try_lock: fn(&std::fs::File) -> Result<(), TryLockError>) -> Result<(), TryLockError> {
        if self.inner.local {
            return self.try_lock_with(try_lock);
        }
        // Set by whichever of the try and its caller comes first: neither yet (`OPEN`), the try,
        // which took the lock (`TAKEN`), or the caller, which left without an outcome
        // (`GIVEN_UP`).
        const OPEN: u8 = 0;
        const TAKEN: u8 = 1;
        const GIVEN_UP: u8 = 2;
        /// Gives the try up, unless its outcome reached the caller (`None`): lets go of a lock
        /// it took.
        struct GiveUp<'a>(&'a File, Option<Arc<AtomicU8>>);
        impl Drop for GiveUp<'_> {
            fn drop(&mut self) {
                let Some(mark) = &self.1 else { return };
                if mark.compare_exchange(OPEN, GIVEN_UP, Ordering::AcqRel, Ordering::Acquire).is_err() {
                    // In place: unwinding, or the pool's green thread could not be had.
                    let _ = self.0.inner.unlock();
                }
            }
        }
        let mark = Arc::new(AtomicU8::new(OPEN));
        let mut give_up = GiveUp(self, Some(mark.clone()));
        let tried = self.on_pool(move |file| {
            let tried = try_lock(file);
            if tried.is_ok() && mark.compare_exchange(OPEN, TAKEN, Ordering::AcqRel, Ordering::Acquire).is_err() {
                let _ = file.unlock();
            }
            Ok(tried)
        });
        // The try's own outcome, which the caller now has; an error of the hand-off's may hide a
        // lock taken.
        let tried = tried.map_err(TryLockError::Error)?;
        give_up.1 = None;
        tried
    }

    fn try_lock_with(&self, try_lock: fn(&std::fs::File) -> Result<(), TryLockError>) -> Result<(), TryLockError> {
        // As an `io::Result`, which a refusal leaves as `WouldBlock` (std's `try_lock` gives
        // that kind for a refusal only).
        self.in_place_or_on_pool(self.inner.local, move |file| try_lock(file).map_err(io::Error::from)).map_err(|e| {
            if e.kind() == io::ErrorKind::WouldBlock { TryLockError::WouldBlock } else { TryLockError::Error(e) }
        })
    }

    /// Changes the file's permissions, as [`std::fs::File::set_permissions`], on the pool.
    ///
    /// # Errors
    ///
    /// What std's gives.
    pub fn set_permissions(&self, permissions: Permissions) -> io::Result<()> {
        self.on_pool(move |file| file.set_permissions(permissions))
    }

    /// Changes the file's access and modification times, as [`std::fs::File::set_times`], on
    /// the pool.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    ///
    /// green::run(|| {
    ///     let path = std::env::temp_dir().join(format!("green-file-times-{}", std::process::id()));
    ///     let file = green::fs::File::create(&path)?;
    ///     let noon = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    ///     file.set_times(green::fs::FileTimes::new().set_accessed(noon).set_modified(noon))?;
    ///     assert_eq!(file.metadata()?.modified()?, noon);
    ///     green::fs::remove_file(&path)
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// What std's gives.
    pub fn set_times(&self, times: FileTimes) -> io::Result<()> {
        self.on_pool(move |file| file.set_times(times))
    }

    /// Changes the file's modification time, as [`std::fs::File::set_modified`], on the pool.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    ///
    /// green::run(|| {
    ///     let path = std::env::temp_dir().join(format!("green-file-modified-{}", std::process::id()));
    ///     let file = green::fs::File::create(&path)?;
    ///     let then = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    ///     file.set_modified(then)?;
    ///     assert_eq!(file.metadata()?.modified()?, then);
    ///     green::fs::remove_file(&path)
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// What std's gives.
    pub fn set_modified(&self, time: SystemTime) -> io::Result<()> {
        self.on_pool(move |file| file.set_modified(time))
    }

    /// The std file, for a call this type does not have. If a call given up on (cancelled, or
    /// at a deadline) is still being made on the pool, this waits for it to end; on a worker
    /// where nothing may wait (a green thread unwinding, the worker's own stack), it returns at
    /// once a new descriptor of the same open file instead (`dup`: the position is shared, and
    /// the pool's call may still move it), and waits only if no descriptor can be had.
    ///
    /// ```
    /// use std::io::Write;
    ///
    /// green::run(|| {
    ///     let path = std::env::temp_dir().join(format!("green-into-std-doc-{}", std::process::id()));
    ///     let file = green::fs::File::create(&path)?;
    ///     let mut std_file: std::fs::File = file.into_std();
    ///     std_file.write_all(b"written through std")?;
    ///     assert_eq!(green::fs::read(&path)?, b"written through std");
    ///     green::fs::remove_file(&path)
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> std::fs::File {
        let on_worker = crate::runtime::context::with_core(|core| core.is_some());
        let mut inner = self.inner;
        loop {
            match Arc::try_unwrap(inner) {
                Ok(mut closing) => return closing.file.take().expect(internal_error!("a File given away twice")),
                Err(shared) => {
                    if parks_here() {
                        inner = shared;
                        crate::time::sleep(Duration::from_millis(1));
                    } else if let Some(file) = on_worker.then(|| shared.try_clone().ok()).flatten() {
                        return file;
                    } else {
                        inner = shared;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }
    }

    /// Makes `op` in place where nothing may park, and where `in_place` says it waits for
    /// nothing (after the call's tick and cancellation point); on the pool otherwise.
    fn in_place_or_on_pool<T: Send + 'static>(
        &self,
        in_place: bool,
        op: impl FnOnce(&std::fs::File) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        if !parks_here() {
            return op(&self.inner);
        }
        if in_place {
            in_place_call();
            return op(&self.inner);
        }
        self.on_pool(op)
    }

    /// Runs `op` on the file on the pool, or in place where nothing may park.
    fn on_pool<T: Send + 'static>(
        &self,
        op: impl FnOnce(&std::fs::File) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let (file, call) = (self.inner.clone(), PoolCall::start(&self.pool_calls));
        on_pool(move || {
            let _call = call;
            op(&file)
        })
    }

    /// Whether a read or a seek may be made in place: on a block device's file system, with no
    /// call of the open file's under way on the pool (`pool_calls`).
    fn in_place(&self) -> bool {
        self.inner.local && self.pool_calls.load(Ordering::Acquire) == 0
    }
}

impl From<std::fs::File> for File {
    /// Wraps a std file, asking the kernel (from the attributes it holds) whether it is a
    /// regular file of a block device's file system.
    fn from(file: std::fs::File) -> File {
        let local = super::in_place::is_local(&file);
        File { inner: Closing::new(file, local), pool_calls: Arc::default() }
    }
}

impl Read for &File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !parks_here() {
            return (&**self.inner).read(buf);
        }
        in_place_call();
        if self.in_place() && !buf.is_empty() {
            // A read may come back short: a long one made in place would hold the worker for
            // the whole copy (a `read_to_end` of a large file asks for all of it at once).
            let most = buf.len().min(MOST_IN_PLACE_PER_CALL);
            loop {
                match super::in_place::read_nowait(&self.inner, &mut buf[..most]) {
                    Ok(n) => {
                        crate::coop::tick_bytes(n); // the copy's time, in the budget
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // The disk is needed, or the file cannot say: the pool reads.
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Unsupported) => break,
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
                    Err(e) => return Err(e),
                }
            }
        }
        let len = buf.len().min(MOST_PER_CALL);
        let got = self.on_pool(move |mut file| {
            let mut bytes = vec![0; len];
            let n = file.read(&mut bytes)?;
            bytes.truncate(n);
            Ok(bytes)
        })?;
        buf[..got.len()].copy_from_slice(&got);
        Ok(got.len())
    }

    /// Reserves what is left of the file first, as std's `File` does (so that a small file is
    /// one read and a look at the end, not a probe and a few growing reads).
    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        if let Some(left) = self.left() {
            buf.try_reserve(left)?;
        }
        io::Read::read_to_end(&mut ReadOnly(self), buf)
    }

    /// As std's: what was read is appended if it is UTF-8, even before an error (which is then
    /// returned); else nothing is, and the error is the read's, or std's own for contents that
    /// are not UTF-8.
    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        let mut bytes = Vec::new();
        let read = self.read_to_end(&mut bytes);
        match String::from_utf8(bytes) {
            Ok(text) => {
                buf.push_str(&text);
                read.map(|_| text.len())
            }
            Err(not_utf8) => {
                read?;
                io::Read::read_to_string(&mut not_utf8.as_bytes(), &mut String::new())
            }
        }
    }
}

impl File {
    /// The bytes from the position to the end, where that can be asked without waiting (a file
    /// of a block device's file system, on a green thread; std's `File` asks everywhere).
    fn left(&self) -> Option<usize> {
        if !self.in_place() && parks_here() {
            return None;
        }
        let size = self.inner.metadata().ok()?.len();
        let position = (&**self.inner).stream_position().ok()?;
        usize::try_from(size.saturating_sub(position)).ok()
    }
}

/// A `&File` with only `read`: std's own `read_to_end` loop over it.
struct ReadOnly<'a>(&'a File);

impl Read for ReadOnly<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&mut self.0).read(buf)
    }
}

impl Write for &File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !parks_here() {
            return (&**self.inner).write(buf);
        }
        self.write_on_pool(&[IoSlice::new(buf)])
    }

    /// The buffers' bytes in one write, as std's one `writev`: to a file opened for appending,
    /// all of them as one record; to any other, up to 2 MiB of them.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if !parks_here() {
            return (&**self.inner).write_vectored(bufs);
        }
        self.write_on_pool(bufs)
    }

    /// Nothing to do, as for std's `File`: writes are not buffered here.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl File {
    /// One `write` on the pool of a copy of `bufs`' bytes: all of them to a file opened for
    /// appending (see [`status_flags`]), up to [`MOST_PER_CALL`] to any other.
    fn write_on_pool(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let total = bufs.iter().map(|buf| buf.len()).fold(0usize, usize::saturating_add);
        let appends = total > MOST_PER_CALL && status_flags(&self.inner).is_some_and(|f| f & libc::O_APPEND != 0);
        let most = if appends { total } else { MOST_PER_CALL };
        let mut bytes = Vec::with_capacity(total.min(most));
        for buf in bufs {
            let room = most - bytes.len();
            if room == 0 {
                break;
            }
            bytes.extend_from_slice(&buf[..buf.len().min(room)]);
        }
        self.on_pool(move |mut file| file.write(&bytes))
    }
}

/// The open file's status flags (`F_GETFL`), asked of the kernel, which waits for nothing to
/// answer; `None` if it refuses. A file opened for appending (`O_APPEND`) has each `write` made
/// whole at its end under the file's lock, so that records appended at once by several
/// writers (threads, processes) do not interleave: one `write` of std's is one record, and a
/// write here must not be split either.
fn status_flags(file: &std::fs::File) -> Option<libc::c_int> {
    // SAFETY: `file` is borrowed, so its fd is open for the call; `F_GETFL` takes no argument
    // and writes no memory of ours.
    let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
    (flags >= 0).then_some(flags)
}

impl Seek for &File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.in_place_or_on_pool(self.in_place(), move |mut file| file.seek(pos))
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        (&*self).read_to_end(buf)
    }

    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        (&*self).read_to_string(buf)
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self).flush()
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        (&*self).seek(pos)
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl IntoRawFd for File {
    fn into_raw_fd(self) -> RawFd {
        self.into_std().into_raw_fd()
    }
}

impl FromRawFd for File {
    /// # Safety
    ///
    /// As [`std::fs::File::from_raw_fd`]: `fd` is an open file descriptor, owned by nobody
    /// else.
    unsafe fn from_raw_fd(fd: RawFd) -> File {
        // SAFETY: the caller's promise, passed on.
        File::from(unsafe { std::fs::File::from_raw_fd(fd) })
    }
}

impl From<OwnedFd> for File {
    fn from(fd: OwnedFd) -> File {
        File::from(std::fs::File::from(fd))
    }
}

impl From<File> for OwnedFd {
    fn from(file: File) -> OwnedFd {
        file.into_std().into()
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self.inner).fmt(f)
    }
}

/// How to open a file, as [`std::fs::OpenOptions`] (whose Unix extensions, `mode` and
/// `custom_flags`, it has too); [`open`](OpenOptions::open) is made on the pool.
///
/// ```
/// use std::io::{Read, Write};
///
/// green::run(|| {
///     let path = std::env::temp_dir().join(format!("green-options-doc-{}", std::process::id()));
///     let mut log = green::fs::OpenOptions::new().append(true).create(true).open(&path)?;
///     log.write_all(b"first\n")?;
///     drop(log);
///     let mut log = green::fs::File::options().append(true).open(&path)?;
///     log.write_all(b"second\n")?;
///     assert_eq!(green::fs::read_to_string(&path)?, "first\nsecond\n");
///     green::fs::remove_file(&path)
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions(std::fs::OpenOptions);

impl OpenOptions {
    /// All options off, as [`std::fs::OpenOptions::new`].
    #[must_use]
    pub fn new() -> OpenOptions {
        OpenOptions(std::fs::OpenOptions::new())
    }

    /// Opens for reading.
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.0.read(read);
        self
    }

    /// Opens for writing.
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.0.write(write);
        self
    }

    /// Opens for appending: every write goes to the end.
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.0.append(append);
        self
    }

    /// Truncates the file to 0 bytes when opened (with `write`).
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.0.truncate(truncate);
        self
    }

    /// Creates the file if it is not there (with `write` or `append`).
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.0.create(create);
        self
    }

    /// Creates the file, failing if it is there.
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.0.create_new(create_new);
        self
    }

    /// Opens `path` with these options, as [`std::fs::OpenOptions::open`], on the pool.
    ///
    /// # Errors
    ///
    /// What std's gives.
    pub fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let (options, path) = (self.0.clone(), owned(path));
        on_pool(move || options.open(path)).map(File::from)
    }
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

impl From<std::fs::OpenOptions> for OpenOptions {
    fn from(options: std::fs::OpenOptions) -> OpenOptions {
        OpenOptions(options)
    }
}

impl std::os::unix::fs::OpenOptionsExt for OpenOptions {
    fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        self.0.mode(mode);
        self
    }

    fn custom_flags(&mut self, flags: i32) -> &mut OpenOptions {
        self.0.custom_flags(flags);
        self
    }
}
