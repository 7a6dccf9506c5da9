//! `green::fs` calls on a file of a FUSE file system, whose daemon holds its answer to one kind
//! of request (the file's `open`, or the file system's `statfs`): the wait is the pool's, never
//! the worker's. Needs the right to mount (root, and /dev/fuse); elsewhere each test says so and
//! passes.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod common;

const LIMIT: Duration = Duration::from_secs(60);

/// What the daemon's one file holds.
const CONTENTS: &[u8] = b"held by a FUSE daemon";

/// The longest the daemon holds an answer unless told to give it: past this, a held worker lets
/// the test end with its failure.
const MOST_HELD: Duration = Duration::from_secs(10);

// The FUSE protocol's operations used here (<linux/fuse.h>), and version 7.31 of it.
const LOOKUP: u32 = 1;
const FORGET: u32 = 2;
const GETATTR: u32 = 3;
const OPEN: u32 = 14;
const READ: u32 = 15;
const RELEASE: u32 = 18;
const STATFS: u32 = 17;
const FLUSH: u32 = 25;
const INIT: u32 = 26;
const BATCH_FORGET: u32 = 42;
const ROOT: u64 = 1;
const FILE: u64 = 2;

/// A FUSE file system mounted on a directory of its own, with one file, `f`; its daemon, a
/// thread, holds its answer to each request of one kind (`OPEN` or `STATFS`) until told to give
/// it (`answer`). Dropped, it is unmounted, its daemon ends, and the directory is removed.
struct Held {
    dir: PathBuf,
    release: Option<mpsc::Sender<()>>,
    daemon: Option<JoinHandle<()>>,
}

impl Held {
    /// `Err` where no FUSE file system can be mounted.
    fn mount(name: &str, held: u32) -> io::Result<Held> {
        let dir = std::env::temp_dir().join(format!("green-fuse-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir)?;
        let device = match std::fs::OpenOptions::new().read(true).write(true).open("/dev/fuse") {
            Ok(device) => OwnedFd::from(device),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(e);
            }
        };
        // SAFETY: plain reads of the caller's ids.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let options =
            CString::new(format!("fd={},rootmode=40000,user_id={uid},group_id={gid}", device.as_raw_fd())).unwrap();
        let target = CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: NUL-terminated strings alive across the call.
        let rc = unsafe {
            libc::mount(c"green-test".as_ptr(), target.as_ptr(), c"fuse".as_ptr(), 0, options.as_ptr().cast())
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            let _ = std::fs::remove_dir(&dir);
            return Err(e);
        }
        let (release, released) = mpsc::channel();
        let daemon = std::thread::spawn(move || serve(device, held, released));
        Ok(Held { dir, release: Some(release), daemon: Some(daemon) })
    }

    fn file(&self) -> PathBuf {
        self.dir.join("f")
    }

    /// Lets the daemon answer every request from now on.
    fn answer(&self) {
        let _ = self.release.as_ref().unwrap().send(());
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.release.take());
        let target = CString::new(self.dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path alive across the call. Detached: the daemon's reads
        // then fail with ENODEV, and it ends.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        if let Some(daemon) = self.daemon.take() {
            let _ = daemon.join();
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Mounts a file system whose daemon holds its first request of kind `held`, or says why it
/// cannot and gives `None` (the test then passes untested).
fn mount_or_skip(name: &str, held: u32) -> Option<Held> {
    Held::mount(name, held).inspect_err(|e| eprintln!("no FUSE file system can be mounted here ({e}): not tested")).ok()
}

/// Runs `op` with the path of `fuse`'s file on a green thread of a one-worker runtime, while
/// another green thread there sleeps 50 ms; then sets the flag given to `op` and lets the
/// daemon answer. Gives how long the sleep took (a worker held by `op` makes it long) and what
/// `op` returned, and unmounts.
fn beside_the_held_request<T: Send + 'static>(
    fuse: Held,
    op: impl FnOnce(PathBuf, Arc<AtomicBool>) -> T + Send + 'static,
) -> (Duration, T) {
    let path = fuse.file();
    let fuse = Arc::new(fuse);
    let daemon = fuse.clone();
    let outcome = common::bounded(LIMIT, move || {
        green::Runtime::builder().workers(1).build().unwrap().block_on(move || {
            let answered = Arc::new(AtomicBool::new(false));
            let asker = {
                let answered = answered.clone();
                green::spawn(move || op(path, answered))
            };
            let asleep = Instant::now();
            green::sleep(Duration::from_millis(50));
            let slept = asleep.elapsed();
            answered.store(true, Ordering::SeqCst);
            daemon.answer();
            (slept, asker.join().unwrap())
        })
    });
    drop(fuse);
    outcome
}

/// The daemon: answers requests read from `device` until the file system is unmounted, the
/// first one of kind `held` only when told to (or after `MOST_HELD`).
fn serve(device: OwnedFd, held: u32, released: mpsc::Receiver<()>) {
    let mut holding = true;
    let mut request = vec![0u8; 256 * 1024];
    loop {
        // SAFETY: `request` is writable for its length.
        let n = unsafe { libc::read(device.as_raw_fd(), request.as_mut_ptr().cast(), request.len()) };
        if n < 0 {
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR | libc::ENOENT) => continue, // ENOENT: a request withdrawn
                _ => return,                                  // ENODEV: unmounted
            }
        }
        let request = &request[..n as usize];
        let u32_at = |at: usize| u32::from_le_bytes(request[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_le_bytes(request[at..at + 8].try_into().unwrap());
        // fuse_in_header: len, opcode, unique, nodeid, uid, gid, pid, extlen, padding.
        let (opcode, unique, node) = (u32_at(4), u64_at(8), u64_at(16));
        let body = &request[40..];
        if opcode == held && holding {
            let _ = released.recv_timeout(MOST_HELD);
            holding = false;
        }
        let (error, reply): (i32, Vec<u8>) = match opcode {
            FORGET | BATCH_FORGET => continue, // no answer
            INIT => {
                // fuse_init_out: major, minor, max_readahead, flags, max_background,
                // congestion_threshold, max_write, time_gran, max_pages, map_alignment, flags2,
                // unused[7].
                let mut out = Vec::new();
                for word in [7u32, 31, 65536, 0] {
                    out.extend(word.to_le_bytes());
                }
                out.extend([0u8; 4]);
                out.extend(65536u32.to_le_bytes());
                out.extend(1u32.to_le_bytes());
                out.extend([0u8; 4 + 4 + 28]);
                (0, out)
            }
            LOOKUP if node == ROOT && body.starts_with(b"f\0") => {
                // fuse_entry_out: nodeid, generation, entry_valid, attr_valid (an hour: the
                // path stays in the kernel's caches), their nanoseconds, attr.
                let mut out = Vec::new();
                for word in [FILE, 0, 3600, 3600] {
                    out.extend(word.to_le_bytes());
                }
                out.extend([0u8; 8]);
                out.extend(attributes(FILE));
                (0, out)
            }
            LOOKUP => (-libc::ENOENT, Vec::new()),
            GETATTR => {
                // fuse_attr_out: attr_valid, its nanoseconds, dummy, attr.
                let mut out = 3600u64.to_le_bytes().to_vec();
                out.extend([0u8; 8]);
                out.extend(attributes(node));
                (0, out)
            }
            // fuse_open_out: fh, open_flags, padding.
            OPEN => (0, [0u8; 16].to_vec()),
            // fuse_statfs_out: blocks, bfree, bavail, files, ffree, bsize, namelen, frsize,
            // padding, spare[6].
            STATFS => (0, [0u8; 80].to_vec()),
            READ => {
                // fuse_read_in: fh, offset, size, ...
                let offset = (u64::from_le_bytes(body[8..16].try_into().unwrap()) as usize).min(CONTENTS.len());
                let size = u32::from_le_bytes(body[16..20].try_into().unwrap()) as usize;
                (0, CONTENTS[offset..(offset + size).min(CONTENTS.len())].to_vec())
            }
            FLUSH | RELEASE => (0, Vec::new()),
            _ => (-libc::ENOSYS, Vec::new()),
        };
        // fuse_out_header: len, error, unique.
        let mut answer = ((16 + reply.len()) as u32).to_le_bytes().to_vec();
        answer.extend(error.to_le_bytes());
        answer.extend(unique.to_le_bytes());
        answer.extend(reply);
        // SAFETY: `answer` is readable for its length. A failed answer (a request withdrawn)
        // needs nothing more.
        unsafe { libc::write(device.as_raw_fd(), answer.as_ptr().cast(), answer.len()) };
    }
}

/// fuse_attr of the root directory or the file: ino, size, blocks, atime, mtime, ctime, their
/// nanoseconds, mode, nlink, uid, gid, rdev, blksize, flags.
fn attributes(node: u64) -> Vec<u8> {
    let (mode, size) = if node == ROOT { (0o040_755u32, 0) } else { (0o100_644, CONTENTS.len() as u64) };
    let mut out = Vec::new();
    for word in [node, size, 1, 0, 0, 0] {
        out.extend(word.to_le_bytes());
    }
    out.extend([0u8; 12]);
    // SAFETY: plain reads of the caller's ids.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    for word in [mode, 1, uid, gid, 0, 4096, 0] {
        out.extend(word.to_le_bytes());
    }
    out
}

/// The file's path is in the kernel's caches, but its daemon holds the answer to its `open`:
/// the read waits for that on the pool, and the green thread beside it on the worker goes on
/// (the read's attempt in place used to open the file on the worker, which was held until the
/// daemon gave up waiting, 10 s).
#[test]
fn an_open_a_fuse_daemon_holds_does_not_hold_the_worker() {
    let Some(fuse) = mount_or_skip("held", OPEN) else { return };
    // Looked up once: the path is in the caches from now on.
    assert_eq!(std::fs::metadata(fuse.file()).unwrap().len(), CONTENTS.len() as u64);
    let (slept, read) = beside_the_held_request(fuse, |path, _| green::fs::read(&path));
    assert_eq!(read.unwrap(), CONTENTS);
    assert!(slept < Duration::from_secs(5), "the worker was held {slept:?} by the FUSE daemon's open");
}

/// The file's path and attributes are in the kernel's caches, but its daemon holds the answer to
/// the file system's `statfs`: `metadata`, `exists` and `File::open` of the file wait for
/// nothing on the worker (the look for Btrfs asked `fstatfs` of any file on a device with no
/// number, which FUSE sends to its daemon, a network file system to its server: the worker was
/// held until the daemon gave up, 10 s).
#[test]
fn a_statfs_a_fuse_daemon_holds_does_not_hold_the_worker() {
    let Some(fuse) = mount_or_skip("statfs", STATFS) else { return };
    assert_eq!(std::fs::metadata(fuse.file()).unwrap().len(), CONTENTS.len() as u64);
    let (slept, (len, exists, read)) = beside_the_held_request(fuse, |path, _| {
        let len = green::fs::metadata(&path).map(|m| m.len());
        let exists = green::fs::exists(&path);
        let mut read = Vec::new();
        let read =
            green::fs::File::open(&path).and_then(|mut f| io::Read::read_to_end(&mut f, &mut read)).map(|_| read);
        (len, exists, read)
    });
    assert_eq!(len.unwrap(), CONTENTS.len() as u64);
    assert!(exists.unwrap());
    assert_eq!(read.unwrap(), CONTENTS);
    assert!(slept < Duration::from_secs(5), "the worker was held {slept:?} by the FUSE daemon's statfs");
}

/// A `File` of a FUSE file system, dropped on a green thread while the daemon holds its answer
/// to the `FLUSH` that every close sends: the close waits on the pool, not on the worker, and
/// the drop returns once it is made (std's close, as synchronous as std's).
#[test]
fn a_close_a_fuse_daemon_holds_does_not_hold_the_worker() {
    let Some(fuse) = mount_or_skip("flush", FLUSH) else { return };
    let (slept, closed_after_answer) = beside_the_held_request(fuse, |path, answered| {
        let file = green::fs::File::open(&path).unwrap();
        drop(file); // FLUSH held by the daemon
        answered.load(Ordering::SeqCst)
    });
    assert!(slept < Duration::from_secs(5), "the worker was held {slept:?} by the FUSE daemon's flush");
    assert!(closed_after_answer, "the drop returned before the close was made");
}
