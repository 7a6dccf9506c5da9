//! File system calls that never hold a worker: the free functions of [`std::fs`], and its
//! [`File`], answered in place when the kernel's caches can answer without waiting, and run on
//! the runtime's [blocking pool](crate::spawn_blocking) while the green thread parks when not.
//!
//! A file system call cannot be made to park the way a socket read can: the kernel has no
//! readiness for regular files (epoll refuses them, `poll` calls them always ready), so a read
//! from a slow disk, an `fsync` or a call into a hung network file system blocks whatever
//! thread makes it. Made on a worker, that stalls every green thread of the worker. These
//! functions make it on a pool thread instead, unless Linux can promise it will not wait;
//! `use green::fs;` ports code written against `std::fs`.
//!
//! ```
//! green::run(|| {
//!     let path = std::env::temp_dir().join(format!("green-fs-doc-{}", std::process::id()));
//!     green::fs::write(&path, "hello")?;
//!     assert_eq!(green::fs::read_to_string(&path)?, "hello");
//!     assert_eq!(green::fs::metadata(&path)?.len(), 5);
//!     green::fs::remove_file(&path)
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Costs and limits
//!
//! - [`read()`] and [`read_to_string()`] first try on the green thread itself (Linux 5.12 and
//!   later), for a regular file of a block device's file system (ext4, XFS, Btrfs from Linux
//!   6.10, ...; not a network file system or FUSE, whose `open` may ask a server or a daemon,
//!   nor tmpfs or overlayfs, which have no device of their own): when the kernel's caches hold
//!   the file's path and every page of it, the file is read in place, as std would, and nothing
//!   is handed off. Measured here (2 vCPUs, docs/benchmarks.md), one such read of a 1 KiB file
//!   took 6.8 to 7.9 µs, against 4.1 to 5.4 µs for `std::fs::read` (the attempt makes three
//!   system calls more, to open nothing but a regular file: a FIFO's `open` can wait). The
//!   attempt waits for no disk, server or lease break: a path not in the caches, a file that is
//!   not regular, not on a block device or larger than 256 KiB go to the pool whole, and a file
//!   whose pages are not all cached is read on the pool from where the attempt stopped.
//! - [`metadata()`], [`symlink_metadata()`] and [`exists()`] are tried in place the same way
//!   (an `O_PATH` open of the cached path, which opens nothing, then std's `statx` of it): a
//!   path that is there, in the caches, on such a file system is answered without a hand-off
//!   (3.1 µs here, against 1.2 µs for `std::fs::metadata`); anything else (a path that is not
//!   there included) goes to the pool.
//! - Every other call hands its work to a pool thread and parks until it is done. The hand-off
//!   wakes the pool thread, and its end wakes the worker: a green thread making one call after
//!   another took 26 to 52 µs a call here (the reads too, before they were tried in place),
//!   where `std::fs::read` of a 1 KiB file in the page cache takes about 4 µs. Calls made at
//!   once by several green threads overlap. For a loop of file calls other than reads, one
//!   [`spawn_blocking`](crate::spawn_blocking) around the whole loop (or a batch of it) pays
//!   the hand-off once: a job per batch of 64 reads took 0.7 to 1.1 times as long as
//!   `std::fs::read` on the green threads.
//! - From the disk, the pool is what keeps a program going: with every file of the tree above
//!   dropped from the page cache, `green::fs::read` read it 1.5 to 2.6 times as fast as
//!   `std::fs::read` on the same green threads, whose disk waits each held a worker.
//! - `std::fs` on a green thread holds its worker for the length of the call and spends no
//!   budget: a loop of such calls that reaches no scheduling point for 100 ms is reported by
//!   the monitor as a green thread computing without a tick. Call [`green::tick()`](crate::tick)
//!   in such a loop.
//! - Arguments are copied for the pool thread: paths, and the contents given to [`write()`].
//! - A call is a cancellation point. A green thread cancelled before it, or past its
//!   [`green::timeout`](crate::timeout) deadline, unwinds without making the call. Once made,
//!   the work itself cannot be stopped: cancelled then, the green thread unwinds at once while
//!   the pool thread finishes the call (a file may still be written, a directory still
//!   removed), and its result is dropped. The same holds at the deadline.
//! - On a plain OS thread, on a worker's own stack ([`on_worker_stack`](crate::on_worker_stack))
//!   and in a green thread that is unwinding ([while unwinding](crate::sync#while-unwinding)),
//!   where nothing parks, the call runs in place, as std's does: a destructor that saves a
//!   file still saves it.
//! - Each function's errors are std's, with one more: if the runtime cannot start the green
//!   thread that waits for the pool (no stack to be had), the call fails with an error that
//!   says its result was lost and that the call may have been made. A call panics, as
//!   [`spawn_blocking`](crate::spawn_blocking) does, if the pool has no thread and cannot
//!   start one.
//! - [`File`] and [`OpenOptions`] stand for std's: a read of what the page cache holds is made
//!   in place, other calls that may wait on the pool, one hand-off each (see [`File`]). Work
//!   on a file made of many small calls pays less inside one
//!   [`spawn_blocking`](crate::spawn_blocking) job, with std's `File`.

mod file;
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), path = "fs/in_place_none.rs")]
mod in_place;

use std::io;
use std::path::{Path, PathBuf};

pub use self::file::{File, OpenOptions};
pub use std::fs::{DirEntry, FileTimes, FileType, Metadata, Permissions, TryLockError};

/// Whether a call may park here: on a green thread that is not unwinding (rule 3 of
/// docs/design.md). Elsewhere each call is std's, in place.
fn parks_here() -> bool {
    crate::runtime::context::in_green_thread() && !crate::park::must_not_wait()
}

/// Runs `op` on the blocking pool and parks until it returns; in place where nothing may park
/// (see the module docs).
fn on_pool<T: Send + 'static>(op: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    if !parks_here() {
        return op();
    }
    // A cancelled green thread, or one past its `green::timeout` deadline, unwinds here without
    // making the call: once handed to the pool, the call would be made even though the join
    // below unwinds.
    crate::park::cancellation_point();
    match crate::spawn_blocking(op).join() {
        Ok(result) => result,
        // A panic in std's call (an allocation failure, say) is the caller's, as it would be in
        // place.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The green thread that waits for the job did not see it end: the runtime's shutdown
        // cancelled it (and this green thread too, which unwinds here, as at any other
        // cancellation point, even if its worker has not come round to cancel it yet), or it
        // could not start (no stack could be had). The job may have run either way, so the error
        // does not say it was not.
        Err(e) => {
            if e.is_cancelled() {
                crate::park::unwind_if_shutting_down();
            }
            crate::park::check_cancelled();
            let kind = e.start_error().map_or(io::ErrorKind::Other, io::Error::kind);
            Err(io::Error::new(
                kind,
                format!(
                    "green::fs: the call's result was lost, and the call may have been made: the green thread \
                     waiting for it on the blocking pool did not finish ({e}). Retry it, or make it with std::fs"
                ),
            ))
        }
    }
}

fn owned(path: impl AsRef<Path>) -> PathBuf {
    path.as_ref().to_path_buf()
}

/// The whole contents of a file, as [`std::fs::read`]: read on the green thread if the
/// kernel's caches hold all of it, else on the pool (module docs).
///
/// # Errors
///
/// What std's gives.
pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref();
    read_in_place(path).unwrap_or_else(|| {
        let path = owned(path);
        on_pool(move || std::fs::read(path))
    })
}

/// The whole contents of a file as a string, as [`std::fs::read_to_string`]: read on the
/// green thread if the kernel's caches hold all of it, else on the pool (module docs).
///
/// # Errors
///
/// What std's gives (`InvalidData` for contents that are not UTF-8).
pub fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref();
    match read_in_place(path) {
        // Contents that are not UTF-8 get std's own error (not one with the same message, which
        // would carry an inner error std's has not): the one `Read::read_to_string` of the
        // bytes gives.
        Some(bytes) => String::from_utf8(bytes?).or_else(|not_utf8| {
            let mut contents = String::new();
            io::Read::read_to_string(&mut not_utf8.as_bytes(), &mut contents).map(|_| contents)
        }),
        None => {
            let path = owned(path);
            on_pool(move || std::fs::read_to_string(path))
        }
    }
}

/// On a green thread, `path`'s contents read without a hand-off if the page cache holds them
/// all, or finished on the pool from where that stopped (`in_place`); `None` if it was not
/// tried, for std's call on the pool to make (or in place where nothing may park).
fn read_in_place(path: &Path) -> Option<io::Result<Vec<u8>>> {
    use std::io::Read;
    if !may_try_in_place() {
        return None;
    }
    match in_place::read(path) {
        in_place::Attempt::Read(bytes) => {
            crate::coop::tick_bytes(bytes.len()); // up to 256 KiB copied: its time
            Some(Ok(bytes))
        }
        in_place::Attempt::Started(mut file, mut bytes) => Some(on_pool(move || {
            file.read_to_end(&mut bytes)?;
            Ok(bytes)
        })),
        in_place::Attempt::Untried => None,
    }
}

/// On a green thread, `path`'s metadata (`follow`ing a symbolic link at its end or not) had
/// without a hand-off if the kernel can give it without waiting (`in_place`); `None` if not,
/// for std's call on the pool to make (or in place where nothing may park).
fn metadata_in_place(path: &Path, follow: bool) -> Option<Metadata> {
    may_try_in_place().then(|| in_place::metadata(path, follow)).flatten()
}

/// On a green thread, `path` opened for reading without a hand-off (`in_place::open`); `None`
/// if that was not tried, for std's call on the pool to make.
fn open_in_place(path: &Path) -> Option<std::fs::File> {
    may_try_in_place().then(|| in_place::open(path)).flatten()
}

/// Whether a call may be tried in place before it goes to the pool: where a call may park
/// ([`parks_here`]); then [`in_place_call`] is made.
fn may_try_in_place() -> bool {
    parks_here() && {
        in_place_call();
        true
    }
}

/// Before a call made in place on a green thread: spends its tick, then is its cancellation
/// point (a cancelled green thread, or one past its deadline, unwinds without making it), as a
/// call on the pool is one; the tick first, as it may yield, and the cancellation or the
/// deadline come meanwhile.
fn in_place_call() {
    crate::coop::tick_op();
    crate::park::cancellation_point();
}

/// Writes `contents` as the whole file, creating or truncating it, as [`std::fs::write`].
/// The contents are copied for the pool thread.
///
/// # Errors
///
/// What std's gives.
pub fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let (path, contents) = (owned(path), contents.as_ref().to_vec());
    on_pool(move || std::fs::write(path, contents))
}

/// Metadata of a file or directory, following symbolic links, as [`std::fs::metadata`].
///
/// # Errors
///
/// What std's gives.
pub fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = path.as_ref();
    metadata_in_place(path, true).map(Ok).unwrap_or_else(|| {
        let path = owned(path);
        on_pool(move || std::fs::metadata(path))
    })
}

/// Metadata of a file, directory or symbolic link itself, as [`std::fs::symlink_metadata`].
///
/// # Errors
///
/// What std's gives.
pub fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = path.as_ref();
    metadata_in_place(path, false).map(Ok).unwrap_or_else(|| {
        let path = owned(path);
        on_pool(move || std::fs::symlink_metadata(path))
    })
}

/// Whether the path exists, as [`std::fs::exists`]: `Ok(false)` for a broken symbolic link or
/// nothing there, an error when it cannot be told (a directory that may not be searched).
///
/// # Errors
///
/// What std's gives.
pub fn exists(path: impl AsRef<Path>) -> io::Result<bool> {
    let path = path.as_ref();
    if metadata_in_place(path, true).is_some() {
        return Ok(true);
    }
    let path = owned(path);
    on_pool(move || std::fs::exists(path))
}

/// The entries of a directory, as [`std::fs::read_dir`], read to the end on the pool thread:
/// the [`ReadDir`] iterator yields each entry, or the error met reading it, in the order the
/// system gave them, as std's does. An entry's `file_name` and `path` cost nothing; its
/// `file_type` usually nothing (most file systems give it with the listing); its `metadata` is
/// a system call of its own, made on the calling thread (usually answered from the cache, as
/// the listing just read the directory).
///
/// ```
/// green::run(|| {
///     let names: Vec<_> = green::fs::read_dir(".")?.filter_map(Result::ok).map(|e| e.file_name()).collect();
///     assert!(names.iter().any(|name| name == "Cargo.toml"));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// What std's `read_dir` gives for the directory itself.
pub fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = owned(path);
    on_pool(move || Ok(ReadDir(std::fs::read_dir(path)?.collect::<Vec<_>>().into_iter())))
}

/// The entries of a directory, from [`read_dir`]: an iterator of `io::Result<DirEntry>`, as
/// [`std::fs::ReadDir`], over entries already read (its `next` makes no system call).
#[derive(Debug)]
pub struct ReadDir(std::vec::IntoIter<io::Result<DirEntry>>);

impl Iterator for ReadDir {
    type Item = io::Result<DirEntry>;

    fn next(&mut self) -> Option<io::Result<DirEntry>> {
        self.0.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for ReadDir {}

/// Creates a directory, as [`std::fs::create_dir`].
///
/// # Errors
///
/// What std's gives (`AlreadyExists`, or `NotFound` for a missing parent).
pub fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = owned(path);
    on_pool(move || std::fs::create_dir(path))
}

/// Creates a directory and every missing parent, as [`std::fs::create_dir_all`].
///
/// # Errors
///
/// What std's gives.
pub fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = owned(path);
    on_pool(move || std::fs::create_dir_all(path))
}

/// Removes a file, as [`std::fs::remove_file`].
///
/// # Errors
///
/// What std's gives.
pub fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = owned(path);
    on_pool(move || std::fs::remove_file(path))
}

/// Removes an empty directory, as [`std::fs::remove_dir`].
///
/// # Errors
///
/// What std's gives.
pub fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = owned(path);
    on_pool(move || std::fs::remove_dir(path))
}

/// Removes a directory and everything in it, as [`std::fs::remove_dir_all`].
///
/// # Errors
///
/// What std's gives.
pub fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = owned(path);
    on_pool(move || std::fs::remove_dir_all(path))
}

/// Renames a file or directory, replacing `to` if it is a file, as [`std::fs::rename`].
///
/// # Errors
///
/// What std's gives.
pub fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (owned(from), owned(to));
    on_pool(move || std::fs::rename(from, to))
}

/// Copies a file's contents and permissions, as [`std::fs::copy`]; returns the bytes copied.
///
/// # Errors
///
/// What std's gives.
pub fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (from, to) = (owned(from), owned(to));
    on_pool(move || std::fs::copy(from, to))
}

/// Makes a hard link `link` to `original`, as [`std::fs::hard_link`].
///
/// # Errors
///
/// What std's gives.
pub fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (original, link) = (owned(original), owned(link));
    on_pool(move || std::fs::hard_link(original, link))
}

/// The absolute path with every symbolic link and `..` resolved, as [`std::fs::canonicalize`].
///
/// # Errors
///
/// What std's gives (`NotFound` for a path that is not there).
pub fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = owned(path);
    on_pool(move || std::fs::canonicalize(path))
}

/// Where a symbolic link points, as [`std::fs::read_link`].
///
/// # Errors
///
/// What std's gives.
pub fn read_link(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = owned(path);
    on_pool(move || std::fs::read_link(path))
}

/// Makes `link` a symbolic link to `original`, as [`std::os::unix::fs::symlink`].
///
/// ```
/// green::run(|| {
///     let dir = std::env::temp_dir().join(format!("green-symlink-doc-{}", std::process::id()));
///     green::fs::create_dir(&dir)?;
///     green::fs::write(dir.join("target"), "t")?;
///     green::fs::symlink("target", dir.join("link"))?;
///     assert_eq!(green::fs::read_to_string(dir.join("link"))?, "t");
///     green::fs::remove_dir_all(&dir)
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// What std's gives (`AlreadyExists` where `link` is there).
pub fn symlink(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (original, link) = (owned(original), owned(link));
    on_pool(move || std::os::unix::fs::symlink(original, link))
}

/// Sets a file's permissions, as [`std::fs::set_permissions`].
///
/// # Errors
///
/// What std's gives.
pub fn set_permissions(path: impl AsRef<Path>, permissions: Permissions) -> io::Result<()> {
    let path = owned(path);
    on_pool(move || std::fs::set_permissions(path, permissions))
}
