//! `green::fs`: std's file system functions, run on the blocking pool.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod common;

const LIMIT: Duration = Duration::from_secs(60);

/// A directory of its own under the system's temporary one, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("green-fs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_functions_do_what_std_does() {
    let scratch = Scratch::new("functions");
    let dir = scratch.0.clone();
    green::run(move || {
        let a = dir.join("a.txt");
        green::fs::write(&a, "alpha").unwrap();
        assert_eq!(green::fs::read(&a).unwrap(), b"alpha");
        assert_eq!(green::fs::read_to_string(&a).unwrap(), "alpha");
        assert_eq!(green::fs::metadata(&a).unwrap().len(), 5);
        assert!(green::fs::exists(&a).unwrap());
        assert_eq!(green::fs::copy(&a, dir.join("b.txt")).unwrap(), 5);
        green::fs::rename(dir.join("b.txt"), dir.join("c.txt")).unwrap();
        green::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
        let listing = green::fs::read_dir(&dir).unwrap();
        assert_eq!(listing.len(), 3);
        let mut names: Vec<String> =
            listing.map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["a.txt", "c.txt", "sub"]);
        assert_eq!(green::fs::canonicalize(dir.join("sub/../a.txt")).unwrap(), green::fs::canonicalize(&a).unwrap());
        green::fs::remove_file(dir.join("c.txt")).unwrap();
        green::fs::remove_dir_all(dir.join("sub")).unwrap();
        // Errors are std's.
        let missing = green::fs::read(dir.join("missing")).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
        assert!(!green::fs::exists(dir.join("missing")).unwrap());
        assert_eq!(green::fs::create_dir(&dir).unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
    });
}

/// Symbolic links and a file's times, as std makes them.
#[test]
fn links_and_times_are_std_s() {
    use std::time::{Duration, SystemTime};
    let scratch = Scratch::new("links-times");
    let dir = scratch.0.clone();
    green::run(move || {
        let (target, link) = (dir.join("target"), dir.join("link"));
        green::fs::write(&target, "t").unwrap();
        green::fs::symlink(&target, &link).unwrap();
        assert_eq!(green::fs::read_link(&link).unwrap(), target);
        assert!(green::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(green::fs::read_to_string(&link).unwrap(), "t");
        let taken = green::fs::symlink(&target, &link).unwrap_err();
        let std_taken = std::os::unix::fs::symlink(&target, &link).unwrap_err();
        assert_eq!((taken.kind(), taken.to_string()), (std_taken.kind(), std_taken.to_string()));

        let file = green::fs::File::options().write(true).open(&target).unwrap();
        let then = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        let later = then + Duration::from_secs(60);
        file.set_times(green::fs::FileTimes::new().set_accessed(then).set_modified(then)).unwrap();
        let metadata = green::fs::metadata(&target).unwrap();
        assert_eq!((metadata.accessed().unwrap(), metadata.modified().unwrap()), (then, then));
        file.set_modified(later).unwrap();
        assert_eq!(file.metadata().unwrap().modified().unwrap(), later);
    });
}

/// A read of a FIFO that nobody has opened for writing blocks in `open`: a pool thread's, not
/// the worker's, which goes on running the green thread beside it.
#[test]
fn a_call_that_blocks_does_not_hold_the_worker() {
    common::bounded(LIMIT, || {
        let scratch = Scratch::new("fifo");
        let fifo = fifo_in(&scratch.0);
        let (got, ticks) = common::beside_a_ticker(move || {
            // The writer opens the FIFO after a while, from an OS thread of its own.
            let writer = {
                let fifo = fifo.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(300));
                    std::fs::write(fifo, "through the fifo").unwrap();
                })
            };
            let got = green::fs::read(fifo).unwrap();
            writer.join().unwrap();
            got
        });
        assert_eq!(got, b"through the fifo");
        // 300 ms of 1 ms sleeps: a held worker would have counted none.
        assert!(ticks >= 20, "the ticker ticked {ticks} times while the read waited");
    });
}

/// Where nothing may park, the call runs in place: on a plain OS thread, and in a destructor
/// run while a green thread unwinds (a file saved on the way out is still saved).
#[test]
fn where_nothing_parks_the_call_runs_in_place() {
    let scratch = Scratch::new("in-place");
    let plain = scratch.0.join("plain");
    green::fs::write(&plain, "from a plain thread").unwrap();
    assert_eq!(green::fs::read_to_string(&plain).unwrap(), "from a plain thread");

    struct SavesOnDrop(PathBuf);
    impl Drop for SavesOnDrop {
        fn drop(&mut self) {
            green::fs::write(&self.0, "saved while unwinding").unwrap();
        }
    }
    let saved = scratch.0.join("saved");
    let joined = green::run({
        let saved = saved.clone();
        move || {
            green::spawn(move || {
                let _saves = SavesOnDrop(saved);
                panic!("on the way out");
            })
            .join()
        }
    });
    assert!(joined.unwrap_err().is_panic());
    assert_eq!(std::fs::read_to_string(&saved).unwrap(), "saved while unwinding");
}

/// A FIFO in `dir`, which a read blocks on in `open` until someone opens it for writing.
fn fifo_in(dir: &std::path::Path) -> PathBuf {
    let fifo = dir.join("fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path, read by mkfifo only.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "{}", std::io::Error::last_os_error());
    fifo
}

/// A green thread cancelled, or past its `green::timeout` deadline, before it makes a call
/// unwinds there without making it: no file is written after its cancellation.
#[test]
fn a_cancelled_green_thread_makes_no_call() {
    let scratch = Scratch::new("cancelled");
    let (cancelled, late) = (scratch.0.join("cancelled"), scratch.0.join("late"));
    common::bounded(LIMIT, move || {
        green::run(|| {
            // Cancelled while it computes (`is_cancelled` and `tick` are no cancellation points).
            let started = Arc::new(AtomicUsize::new(0));
            let writer = green::spawn({
                let (started, cancelled) = (started.clone(), cancelled.clone());
                move || {
                    started.store(1, Ordering::SeqCst);
                    while !green::is_cancelled() {
                        green::tick();
                    }
                    green::fs::write(&cancelled, "written after the cancellation")
                }
            });
            while started.load(Ordering::SeqCst) == 0 {
                green::yield_now();
            }
            writer.cancel();
            assert!(writer.join().unwrap_err().is_cancelled());

            // Past its deadline while it computes.
            let outcome = green::timeout(Duration::from_millis(5), || {
                let end = std::time::Instant::now() + Duration::from_millis(20);
                while std::time::Instant::now() < end {
                    green::tick();
                }
                green::fs::write(&late, "written after the deadline")
            });
            assert!(outcome.is_err(), "the write after the deadline returned {outcome:?}");
        });
        // The runtime is gone, and with it its pool's jobs: a write made would be there now.
        assert!(!cancelled.exists(), "a cancelled green thread wrote {}", cancelled.display());
        assert!(!late.exists(), "a write after the deadline made {}", late.display());
    });
}

/// Cancelled while its call blocks on the pool, a green thread unwinds at once; the pool
/// thread finishes the call (here once a writer opens the FIFO) and its result is dropped.
#[test]
fn a_cancelled_call_unwinds_at_once() {
    common::bounded(LIMIT, || {
        let scratch = Scratch::new("cancel-blocked");
        let fifo = fifo_in(&scratch.0);
        green::run(|| {
            let reader = green::spawn({
                let fifo = fifo.clone();
                move || green::fs::read(fifo)
            });
            green::sleep(Duration::from_millis(50));
            reader.cancel();
            let error = reader.join().unwrap_err();
            assert!(error.is_cancelled(), "{error}");
            // Release the pool thread, still in `open`: std's read there ends at once.
            std::fs::write(&fifo, "").unwrap();
        });
    });
}

/// A green thread in a call when the runtime shuts down unwinds from it like from any other
/// cancellation point, rather than getting an error to handle.
#[test]
fn a_call_cut_short_by_the_shutdown_unwinds() {
    common::bounded(LIMIT, || {
        let scratch = Scratch::new("shutdown");
        for workers in [1, 2] {
            let fifo = fifo_in(&scratch.0);
            let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
            // The shutdown waits for the pool thread, blocked in `open` until this writer.
            let writer = std::thread::spawn({
                let fifo = fifo.clone();
                move || {
                    std::thread::sleep(Duration::from_millis(200));
                    std::fs::write(fifo, "late").unwrap();
                }
            });
            let rt = green::Runtime::builder().workers(workers).build().unwrap();
            rt.block_on({
                let (fifo, seen) = (fifo.clone(), seen.clone());
                move || {
                    for _ in 0..32 {
                        let (fifo, seen) = (fifo.clone(), seen.clone());
                        green::spawn(move || {
                            let got = green::fs::read(&fifo);
                            seen.lock().unwrap().push(format!("{got:?}"));
                        });
                    }
                    green::sleep(Duration::from_millis(50));
                }
            });
            drop(rt);
            writer.join().unwrap();
            std::fs::remove_file(&fifo).unwrap();
            let seen = seen.lock().unwrap();
            assert!(seen.is_empty(), "with {workers} workers, calls cut short by the shutdown returned {seen:?}");
        }
    });
}

/// A call made just after the shutdown has begun, by a green thread that was running then (its
/// worker has not yet come round to cancel it), unwinds too: the pool's waiter is refused, and
/// that is the shutdown's cancellation, not a lost result to report (the call used to return
/// an error saying "the call's result was lost").
#[test]
fn a_call_made_as_the_shutdown_begins_unwinds() {
    common::bounded(LIMIT, || {
        let scratch = Scratch::new("shutdown-begins");
        let (reached, returned) = common::calls_made_as_the_shutdown_begins(10, |round| {
            let path = scratch.0.join(format!("file-{round}"));
            move |hold: &dyn Fn()| {
                hold();
                format!("{:?}", green::fs::write(&path, "x"))
            }
        });
        assert!(returned.is_empty(), "calls made as the shutdown began returned {returned:?}");
        assert!(reached > 0, "no round reached its call: the test shows nothing");
    });
}

/// On the worker's own stack, where nothing parks, the call runs in place.
#[test]
fn on_the_worker_stack_the_call_runs_in_place() {
    let scratch = Scratch::new("worker-stack");
    let path = scratch.0.join("file");
    green::run(|| {
        green::on_worker_stack(|| {
            green::fs::write(&path, "on the worker's stack").unwrap();
            assert_eq!(green::fs::read_to_string(&path).unwrap(), "on the worker's stack");
        });
    });
}

/// Green threads the calling runtime has started so far: a hand-off to the pool starts one,
/// which waits for the job.
fn started() -> u64 {
    green::Handle::current().metrics().total_started()
}

/// A file the page cache holds whole is read without a hand-off to the pool (no green thread
/// started to wait for it),
/// with std's results: the bytes, a directory's error, contents that are not UTF-8. A file too
/// large to copy on the worker goes to the pool.
#[test]
fn a_cached_file_is_read_without_a_hand_off() {
    let scratch = Scratch::new("cached");
    let dir = scratch.0.clone();
    common::bounded(LIMIT, move || {
        green::Runtime::builder().workers(1).build().unwrap().block_on(move || {
            let small = dir.join("small");
            let contents: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
            std::fs::write(&small, &contents).unwrap();
            let latin1 = dir.join("latin1");
            std::fs::write(&latin1, b"caf\xe9").unwrap();
            let empty = dir.join("empty");
            std::fs::write(&empty, b"").unwrap();
            let before = started();
            assert_eq!(green::fs::read(&small).unwrap(), contents);
            assert_eq!(green::fs::read_to_string(&empty).unwrap(), "");
            let not_utf8 = green::fs::read_to_string(&latin1).unwrap_err();
            assert_eq!(not_utf8.kind(), std::io::ErrorKind::InvalidData, "{not_utf8}");
            let std_not_utf8 = std::fs::read_to_string(&latin1).unwrap_err();
            assert_eq!(not_utf8.to_string(), std_not_utf8.to_string());
            // The same error, not one with the same message (std's carries no inner error).
            assert_eq!(format!("{not_utf8:?}"), format!("{std_not_utf8:?}"));
            assert!(not_utf8.get_ref().is_none(), "{not_utf8:?}");
            assert_eq!(started(), before, "a cached read was handed to the pool");

            let directory = green::fs::read(&dir).unwrap_err();
            assert_eq!(directory.kind(), std::fs::read(&dir).unwrap_err().kind(), "{directory}");
            // A regular file of size 0 whose reads produce its contents (procfs has no device of
            // its own: the read is made on the pool).
            let status = green::fs::read_to_string("/proc/self/status").unwrap();
            assert!(status.contains("Threads:"), "{status}");

            let large = dir.join("large");
            let contents: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
            std::fs::write(&large, &contents).unwrap();
            let before = started();
            assert_eq!(green::fs::read(&large).unwrap(), contents);
            assert!(started() > before, "a 300,000-byte file was read on the worker");
        });
    });
}

/// A file whose pages are not in the page cache is opened on the green thread, then read on
/// the pool from where the attempt stopped: every byte comes back, in order.
#[test]
fn a_file_not_in_the_page_cache_is_finished_on_the_pool() {
    use std::os::fd::AsRawFd;
    let scratch = Scratch::new("evicted");
    let path = scratch.0.join("evicted");
    let contents: Vec<u8> = (0..200_000u32).map(|i| (i % 249) as u8).collect();
    std::fs::write(&path, &contents).unwrap();
    // Written back, then dropped from the page cache (clean pages go at once on most file
    // systems; not on tmpfs, say, checked below).
    let file = std::fs::File::open(&path).unwrap();
    file.sync_all().unwrap();
    // SAFETY: an open fd; the advice changes no memory of ours.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0);
    let evicted = !all_pages_cached(&file, contents.len());
    drop(file);
    common::bounded(LIMIT, move || {
        green::Runtime::builder().workers(1).build().unwrap().block_on(move || {
            let before = started();
            assert!(green::fs::read(&path).unwrap() == contents, "the bytes read differ from those written");
            if evicted {
                assert!(started() > before, "a file not in the page cache was read on the worker");
            } else {
                eprintln!("the page cache kept the file here: only its bytes were checked");
            }
        });
    });
}

/// Whether the page cache holds every page of `file` (of `len` bytes), asked through `mincore`
/// on a mapping of it, which reads nothing (a read that must not wait would start a
/// read-ahead).
fn all_pages_cached(file: &std::fs::File, len: usize) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: a shared read-only mapping of an open file, unmapped below; no page of it is
    // touched.
    let map = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, file.as_raw_fd(), 0) };
    assert_ne!(map, libc::MAP_FAILED, "{}", std::io::Error::last_os_error());
    let mut resident = vec![0u8; len.div_ceil(4096)];
    // SAFETY: `map` is a mapping of `len` bytes; `resident` has a byte per 4 KiB page of it.
    let rc = unsafe { libc::mincore(map, len, resident.as_mut_ptr()) };
    // SAFETY: the mapping made above, of `len` bytes, no longer used.
    unsafe { libc::munmap(map, len) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    resident.iter().all(|page| page & 1 == 1)
}

/// Opening a file that another open file holds a write lease on waits until the lease is given
/// up (or `/proc/sys/fs/lease-break-time`, 45 s by default, passes). A read must not make that
/// wait on the worker, whose other green thread is the one that gives the lease up (the read's
/// attempt in place used to open the file there without `O_NONBLOCK`, and held the worker until
/// the lease was broken from outside).
#[test]
fn a_read_waiting_for_a_lease_break_does_not_hold_the_worker() {
    use std::os::fd::AsRawFd;
    let scratch = Scratch::new("lease");
    let path = scratch.0.join("leased");
    std::fs::write(&path, b"leased contents").unwrap();
    let holder = Arc::new(std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap());
    // The kernel tells the holder of a lease to give it up with a signal, SIGIO unless told
    // otherwise, which would end the process: SIGWINCH is ignored by default.
    // `F_SETSIG` (Linux's <asm-generic/fcntl.h>; `libc` does not name it).
    const F_SETSIG: libc::c_int = 10;
    // SAFETY: an open fd; these commands change no memory of ours.
    let leased = unsafe {
        libc::fcntl(holder.as_raw_fd(), F_SETSIG, libc::SIGWINCH) == 0
            && libc::fcntl(holder.as_raw_fd(), libc::F_SETLEASE, libc::F_WRLCK) == 0
    };
    if !leased {
        eprintln!("no lease can be taken here ({}): not tested", std::io::Error::last_os_error());
        return;
    }
    let give_up = |holder: &std::fs::File| {
        // SAFETY: an open fd; the command changes no memory of ours.
        unsafe { libc::fcntl(holder.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK) };
    };
    // Should the worker be held, the lease is given up from here after 10 s, so that the test
    // ends with a failure rather than at the kernel's lease-break time.
    let (done, stop) = std::sync::mpsc::channel::<()>();
    let rescue = {
        let holder = holder.clone();
        std::thread::spawn(move || {
            let _ = stop.recv_timeout(Duration::from_secs(10));
            give_up(&holder);
        })
    };
    let (slept, read) = common::bounded(LIMIT, move || {
        green::Runtime::builder().workers(1).build().unwrap().block_on(move || {
            let reader = green::spawn(move || green::fs::read(&path));
            let asleep = std::time::Instant::now();
            green::sleep(Duration::from_millis(50));
            let slept = asleep.elapsed();
            give_up(&holder);
            (slept, reader.join().unwrap())
        })
    });
    let _ = done.send(());
    rescue.join().unwrap();
    assert_eq!(read.unwrap(), b"leased contents");
    assert!(slept < Duration::from_secs(5), "the worker was held {slept:?} by an open waiting for a lease break");
}

/// Metadata of a path the kernel's caches hold, on this machine's disk, is had without a
/// hand-off to the pool, and is std's: of a file, a directory, a FIFO (which is not opened), a
/// symbolic link followed or not. A path that is not there goes to the pool, with std's error.
#[test]
fn cached_metadata_is_had_without_a_hand_off() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let scratch = Scratch::new("metadata");
    let dir = scratch.0.clone();
    common::bounded(LIMIT, move || {
        green::Runtime::builder().workers(1).build().unwrap().block_on(move || {
            let file = dir.join("file");
            std::fs::write(&file, b"twelve bytes").unwrap();
            let link = dir.join("link");
            std::os::unix::fs::symlink(&file, &link).unwrap();
            let fifo = fifo_in(&dir);
            let same = |a: &std::fs::Metadata, b: &std::fs::Metadata| {
                (a.dev(), a.ino(), a.mode(), a.len(), a.mtime_nsec())
                    == (b.dev(), b.ino(), b.mode(), b.len(), b.mtime_nsec())
            };
            // Looked up once by std, following the link, so that every path is in the caches
            // (a new link looked at with `lstat` was then followed on the pool the first time:
            // the kernel's walk from its caches alone gave up on it once).
            for path in [&file, &link, &fifo, &dir] {
                std::fs::metadata(path).unwrap();
            }
            let before = started();
            let got = green::fs::metadata(&file).unwrap();
            assert!(same(&got, &std::fs::metadata(&file).unwrap()) && got.len() == 12);
            let followed = green::fs::metadata(&link).unwrap();
            assert!(same(&followed, &got), "the link was not followed");
            let itself = green::fs::symlink_metadata(&link).unwrap();
            assert!(itself.file_type().is_symlink());
            assert!(same(&itself, &std::fs::symlink_metadata(&link).unwrap()));
            assert!(green::fs::metadata(&fifo).unwrap().file_type().is_fifo());
            assert!(green::fs::metadata(&dir).unwrap().is_dir());
            assert!(green::fs::exists(&file).unwrap());
            if started() != before {
                let device = std::fs::metadata(&dir).unwrap().dev();
                let major = libc::major(device);
                assert_eq!(major, 0, "a cached path on a block device's file system went to the pool");
                eprintln!("the scratch directory is on an anonymous device here: only std's answers were checked");
            }

            let missing = dir.join("missing");
            assert_eq!(green::fs::metadata(&missing).unwrap_err().kind(), std::io::ErrorKind::NotFound);
            assert!(!green::fs::exists(&missing).unwrap());
            assert!(!green::fs::exists(dir.join("dangling")).unwrap());
        });
    });
}

/// `green::fs::File` does what std's does: create, write, sync, open, read through a
/// `BufReader`, seek, clone (sharing the position), `&File` reads and writes, append and
/// `create_new` through `OpenOptions`, `set_len`, `metadata`, `into_std`; on a green thread and
/// on a plain OS thread alike.
#[test]
fn a_file_does_what_std_s_does() {
    use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
    let scratch = Scratch::new("file");
    let dir = scratch.0.clone();
    let exercise = move |name: &str| {
        let path = dir.join(name);
        let mut file = green::fs::File::create(&path).unwrap();
        file.write_all(b"alpha\nbeta\ngamma\n").unwrap();
        file.sync_all().unwrap();
        assert_eq!(file.metadata().unwrap().len(), 17);
        let lines: Vec<String> =
            BufReader::new(green::fs::File::open(&path).unwrap()).lines().map(Result::unwrap).collect();
        assert_eq!(lines, ["alpha", "beta", "gamma"]);

        let mut reader = green::fs::File::open(&path).unwrap();
        assert_eq!(reader.seek(SeekFrom::Start(6)).unwrap(), 6);
        let mut clone = reader.try_clone().unwrap();
        let mut four = [0; 4];
        (&clone).read_exact(&mut four).unwrap();
        assert_eq!(&four, b"beta");
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap(); // the clone moved the shared position
        assert_eq!(rest, "\ngamma\n");
        assert_eq!(clone.stream_position().unwrap(), 17);
        assert!(reader.write(b"x").is_err(), "a file opened for reading was written");

        let mut log = green::fs::OpenOptions::new().append(true).open(&path).unwrap();
        (&log).write_all(b"delta\n").unwrap();
        log.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "alpha\nbeta\ngamma\ndelta\n");
        let exists = green::fs::File::create_new(&path).unwrap_err();
        assert_eq!(exists.kind(), std::io::ErrorKind::AlreadyExists, "{exists}");
        log.set_len(5).unwrap();
        assert_eq!(green::fs::read(&path).unwrap(), b"alpha");
        let std_file: std::fs::File = log.into_std();
        assert_eq!(std_file.metadata().unwrap().len(), 5);
        let missing = green::fs::File::open(path.with_extension("missing")).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);

        let latin1 = path.with_extension("latin1");
        std::fs::write(&latin1, b"caf\xe9").unwrap();
        let mut text = String::from("kept");
        let not_utf8 = green::fs::File::open(&latin1).unwrap().read_to_string(&mut text).unwrap_err();
        let std_error = std::fs::File::open(&latin1).unwrap().read_to_string(&mut String::new()).unwrap_err();
        assert_eq!(format!("{not_utf8:?}"), format!("{std_error:?}"));
        assert_eq!(text, "kept", "contents that are not UTF-8 were appended");
    };
    let on_os_thread = exercise.clone();
    common::bounded(LIMIT, move || {
        green::Runtime::builder().workers(2).build().unwrap().block_on(move || exercise("green"));
        on_os_thread("os");
    });
}

/// A cached file's open and reads are made in place (no green thread started to wait on the
/// pool); a file dropped from the page cache is read on the pool, every byte right.
#[test]
fn a_file_s_cached_reads_need_no_hand_off() {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let scratch = Scratch::new("file-cached");
    let (cached, evicted) = (scratch.0.join("cached"), scratch.0.join("evicted"));
    let contents: Vec<u8> = (0..300_000u32).map(|i| (i % 247) as u8).collect();
    std::fs::write(&cached, &contents).unwrap();
    std::fs::write(&evicted, &contents).unwrap();
    let file = std::fs::File::open(&evicted).unwrap();
    file.sync_all().unwrap();
    // SAFETY: an open fd; the advice changes no memory of ours.
    assert_eq!(unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) }, 0);
    let was_evicted = !all_pages_cached(&file, contents.len());
    drop(file);
    common::bounded(LIMIT, move || {
        green::Runtime::builder().workers(1).build().unwrap().block_on(move || {
            let before = started();
            let mut got = Vec::new();
            green::fs::File::open(&cached).unwrap().read_to_end(&mut got).unwrap();
            assert!(got == contents, "the bytes read differ from those written");
            // One read made in place copies 256 KiB at most, however large the buffer.
            let first = green::fs::File::open(&cached).unwrap().read(&mut vec![0; 1 << 20]).unwrap();
            assert_eq!(first, 256 * 1024, "one read in place copied {first} bytes");
            assert_eq!(started(), before, "a cached file's open or reads went to the pool");

            let before = started();
            let mut got = Vec::new();
            green::fs::File::open(&evicted).unwrap().read_to_end(&mut got).unwrap();
            assert!(got == contents, "the bytes read differ from those written");
            if was_evicted {
                assert!(started() > before, "a file not in the page cache was read on the worker");
            }
        });
    });
}

/// A FIFO's open waits for a writer, and its reads for data: on the pool, while the green
/// thread beside on the only worker goes on; a read given up on unwinds at once.
#[test]
fn a_file_s_waits_do_not_hold_the_worker() {
    use std::io::{Read, Write};
    common::bounded(LIMIT, || {
        let scratch = Scratch::new("file-fifo");
        let fifo = fifo_in(&scratch.0);
        let (got, ticks) = common::beside_a_ticker(move || {
            let writer = {
                let fifo = fifo.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(200));
                    let mut end = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
                    std::thread::sleep(Duration::from_millis(200));
                    end.write_all(b"late").unwrap();
                    std::thread::sleep(Duration::from_millis(500));
                    end.write_all(b" and later").unwrap();
                })
            };
            let mut file = green::fs::File::open(&fifo).unwrap(); // waits 200 ms for the writer
            let mut first = [0; 4];
            file.read_exact(&mut first).unwrap(); // 200 ms more
            // Given up on after 50 ms: unwinds then; the pool's read takes " and later", lost.
            let given_up = green::timeout(Duration::from_millis(50), || file.read(&mut [0; 64]));
            assert!(given_up.is_err());
            writer.join().unwrap();
            let std_file = file.into_std(); // after the pool's read has ended
            drop(std_file);
            first
        });
        assert_eq!(&got, b"late");
        // 450 ms of waits: a held worker would have counted (almost) none.
        assert!(ticks >= 20, "the ticker ticked {ticks} times while the file waited");
    });
}

/// A page of memory whose first touch, by the kernel copying from it in a `write`, waits until
/// the page is given (`userfaultfd`): the writer holds meanwhile whatever lock its `write` took
/// (a file's inode lock, a pipe's mutex). `None` where `userfaultfd` is refused.
struct HeldPage {
    uffd: std::sync::Mutex<Option<std::os::fd::OwnedFd>>,
    page: *mut libc::c_void,
}

// SAFETY: the page is plain memory, touched only by the kernel through `write`; the fd is
// behind a mutex.
unsafe impl Send for HeldPage {}
// SAFETY: as above.
unsafe impl Sync for HeldPage {}

impl HeldPage {
    const LEN: usize = 4096;

    fn new() -> Option<Arc<HeldPage>> {
        use std::os::fd::FromRawFd;
        // <linux/userfaultfd.h>: UFFD_API, UFFDIO_API and UFFDIO_REGISTER (_IOWR(0xAA, ..)),
        // UFFDIO_REGISTER_MODE_MISSING.
        const UFFD_API: u64 = 0xAA;
        const UFFDIO_API: libc::c_ulong = 0xc018_aa3f;
        const UFFDIO_REGISTER: libc::c_ulong = 0xc020_aa00;
        const MODE_MISSING: u64 = 1;
        // SAFETY: no pointers passed.
        let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::c_long::from(libc::O_CLOEXEC)) };
        if fd < 0 {
            eprintln!("userfaultfd refused ({}): not tested", std::io::Error::last_os_error());
            return None;
        }
        // SAFETY: a new fd, ours alone.
        let uffd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
        let mut api = [UFFD_API, 0, 0]; // api, features, ioctls
        // SAFETY: a `struct uffdio_api`, alive and writable across the call.
        assert_eq!(unsafe { libc::ioctl(fd as i32, UFFDIO_API, api.as_mut_ptr()) }, 0);
        // SAFETY: a new private anonymous mapping, not touched here.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(page, libc::MAP_FAILED);
        let held = Arc::new(HeldPage { uffd: std::sync::Mutex::new(Some(uffd)), page });
        let mut register = [page as u64, Self::LEN as u64, MODE_MISSING, 0]; // start, len, mode, ioctls
        // SAFETY: a `struct uffdio_register`, alive and writable across the call.
        assert_eq!(unsafe { libc::ioctl(fd as i32, UFFDIO_REGISTER, register.as_mut_ptr()) }, 0);
        Some(held)
    }

    /// Writes the page to `fd` from an OS thread of its own, which waits in the kernel until
    /// [`give`](Self::give); returns once it waits there.
    fn write_from_it(self: &Arc<HeldPage>, fd: std::os::fd::OwnedFd) -> std::thread::JoinHandle<isize> {
        use std::os::fd::AsRawFd;
        let page = self.clone();
        let writer = std::thread::spawn(move || {
            // SAFETY: the page is mapped for `LEN` bytes while `page` lives.
            unsafe { libc::write(fd.as_raw_fd(), page.page, HeldPage::LEN) }
        });
        let uffd = self.uffd.lock().unwrap().as_ref().unwrap().as_raw_fd();
        let mut poll = libc::pollfd { fd: uffd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd, alive across the call.
        assert_eq!(unsafe { libc::poll(&mut poll, 1, 10_000) }, 1, "the write never touched the page");
        writer
    }

    /// Lets the writer go on: with the `userfaultfd` closed, the page is had as zeros.
    fn give(&self) {
        drop(self.uffd.lock().unwrap().take());
    }
}

impl Drop for HeldPage {
    fn drop(&mut self) {
        // SAFETY: mapped by `new`; the last user (the writer's thread) is gone.
        unsafe { libc::munmap(self.page, HeldPage::LEN) };
    }
}

/// Whether the position lock of the open file behind `fd` is held: an `lseek` through `fd`
/// (a duplicate) on a thread of its own has not returned within 50 ms. The thread is handed
/// back to be joined once the lock is let go; `None` if it returned (the lock was free).
/// (Asking whether some thread waits in the kernel could not tell: under disk load, other
/// tests' threads do.)
fn position_lock_held(fd: &Arc<std::os::fd::OwnedFd>) -> Option<std::thread::JoinHandle<()>> {
    use std::os::fd::AsRawFd;
    let returned = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let (fd, returned) = (fd.clone(), returned.clone());
        std::thread::spawn(move || {
            // SAFETY: `fd` is open while this thread holds its `Arc`.
            unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_CUR) };
            returned.store(true, Ordering::Release);
        })
    };
    for _ in 0..50 {
        green::sleep(Duration::from_millis(1));
        if returned.load(Ordering::Acquire) {
            prober.join().unwrap();
            return None;
        }
    }
    Some(prober)
}

/// A write of the file on the pool holds the open file's position lock while it waits (here
/// for the inode lock, which another writer holds while its page is faulted in; a slow disk or
/// writeback throttling makes the same wait): a seek of the same open file, through a clone,
/// waits for it on the pool, not on the worker (it was made in place, where `lseek` waited for
/// the lock).
#[test]
fn a_seek_beside_a_write_on_the_pool_does_not_hold_the_worker() {
    use std::io::{Seek, SeekFrom, Write};
    let Some(held) = HeldPage::new() else { return };
    let scratch = Scratch::new("file-pos-lock");
    let path = scratch.0.join("f");
    std::fs::write(&path, b"0123456789").unwrap();
    let writer = held.write_from_it(std::fs::OpenOptions::new().write(true).open(&path).unwrap().into());
    let (seeking, seeks) = std::sync::mpsc::channel::<()>();
    let giver = std::thread::spawn(move || {
        let _ = seeks.recv_timeout(LIMIT);
        std::thread::sleep(Duration::from_millis(300));
        held.give();
        writer.join().unwrap()
    });
    let ticked = common::bounded(LIMIT, move || {
        common::beside_a_counted_ticker(move |ticks| {
            let file = Arc::new(green::fs::OpenOptions::new().write(true).open(&path).unwrap());
            let writing = {
                let file = file.clone();
                green::spawn(move || (&*file).write(b"x").unwrap())
            };
            let probe = Arc::new(std::os::fd::OwnedFd::from(file.try_clone().unwrap()));
            let prober = (0..200).find_map(|_| position_lock_held(&probe));
            let clone = file.try_clone().unwrap();
            seeking.send(()).unwrap();
            assert!(prober.is_some(), "the pool's write never held the position lock (waiting for the inode lock)");
            let before = ticks.load(Ordering::Relaxed);
            (&clone).seek(SeekFrom::Start(0)).unwrap();
            let ticked = ticks.load(Ordering::Relaxed) - before;
            writing.join().unwrap();
            prober.into_iter().for_each(|p| p.join().unwrap());
            ticked
        })
    });
    assert_eq!(giver.join().unwrap(), HeldPage::LEN as isize);
    assert!(ticked >= 20, "the ticker ticked {ticked} times while the seek waited 300 ms");
}

/// Every call of a `File` is a cancellation point, those made in place too: a cancelled green
/// thread that seeks and asks for metadata in a loop unwinds (in-place seeks and metadata
/// were none, and the loop ran to its end).
#[test]
fn a_file_s_calls_in_place_are_cancellation_points() {
    use std::io::{Seek, SeekFrom};
    let scratch = Scratch::new("file-cancelled");
    let path = scratch.0.join("f");
    std::fs::write(&path, b"0123456789").unwrap();
    common::bounded(LIMIT, move || {
        green::Runtime::builder().workers(1).build().unwrap().block_on(move || {
            let file = green::fs::File::open(&path).unwrap();
            let rounds = Arc::new(AtomicUsize::new(0));
            let looper = {
                let rounds = rounds.clone();
                green::spawn(move || {
                    for _ in 0..1_000_000 {
                        (&file).seek(SeekFrom::Start(3)).unwrap();
                        file.metadata().unwrap();
                        rounds.fetch_add(1, Ordering::Relaxed);
                    }
                })
            };
            while rounds.load(Ordering::Relaxed) == 0 {
                green::yield_now();
            }
            looper.cancel();
            let joined = looper.join();
            assert!(
                joined.is_err_and(|e| e.is_cancelled()),
                "the loop ran {} rounds to its end",
                rounds.load(Ordering::Relaxed)
            );
        });
    });
}

/// `read_to_string` keeps what it read before an error, if that is UTF-8, as std's does (it was
/// dropped): here a `File` made of a socket whose read times out after the first bytes.
#[test]
fn read_to_string_keeps_what_was_read_before_an_error() {
    use std::io::{Read, Write};
    let (mut near, far) = std::os::unix::net::UnixStream::pair().unwrap();
    far.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    near.write_all(b"before the timeout").unwrap();
    let std_copy = std::fs::File::from(std::os::fd::OwnedFd::from(far.try_clone().unwrap()));
    let (got, error) = common::bounded(LIMIT, move || {
        green::Runtime::builder().workers(1).build().unwrap().block_on(move || {
            let mut file = green::fs::File::from(std::os::fd::OwnedFd::from(far));
            let mut text = String::from("kept, ");
            let error = file.read_to_string(&mut text).unwrap_err();
            (text, error.kind())
        })
    });
    near.write_all(b"and for std").unwrap();
    let mut std_text = String::from("kept, ");
    let std_error = (&std_copy).read_to_string(&mut std_text).unwrap_err();
    assert_eq!((std_text.as_str(), std_error.kind()), ("kept, and for std", error));
    assert_eq!(got, "kept, before the timeout");
    drop(near);
}

/// `into_std` in a destructor run while a green thread unwinds, with a read given up on still
/// waiting on the pool, returns at once (a new descriptor of the same open file) instead of
/// waiting on the worker for the pool's read to end, which nothing may do while unwinding (it
/// slept there until the read ended: here 10 s, when the writer gave up waiting for it).
#[test]
fn into_std_while_unwinding_does_not_wait_for_the_pool() {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    use std::time::Instant;
    let scratch = Scratch::new("into-std-unwinding");
    let fifo = fifo_in(&scratch.0);
    let mut both =
        std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NONBLOCK).open(&fifo).unwrap();
    let (returned, waits) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let _ = waits.recv_timeout(Duration::from_secs(10));
        both.write_all(b"late").unwrap();
        both
    });

    struct IntoStdOnDrop(Option<green::fs::File>, std::sync::mpsc::Sender<()>, Arc<std::sync::Mutex<Duration>>);
    impl Drop for IntoStdOnDrop {
        fn drop(&mut self) {
            let file = self.0.take().unwrap();
            let start = Instant::now();
            let std_file = file.into_std();
            *self.2.lock().unwrap() = start.elapsed();
            let _ = self.1.send(());
            drop(std_file);
        }
    }
    let took = Arc::new(std::sync::Mutex::new(Duration::MAX));
    let took_there = took.clone();
    let joined = common::bounded(LIMIT, move || {
        green::Runtime::builder().workers(1).build().unwrap().block_on(move || {
            green::spawn(move || {
                let file = green::fs::File::open(&fifo).unwrap();
                let given_up = green::timeout(Duration::from_millis(20), || (&file).read(&mut [0; 8]));
                assert!(given_up.is_err(), "the FIFO had something to read");
                let _on_drop = IntoStdOnDrop(Some(file), returned, took_there);
                panic!("on the way out");
            })
            .join()
        })
    });
    assert!(joined.unwrap_err().is_panic());
    drop(writer.join().unwrap());
    let took = *took.lock().unwrap();
    assert!(took < Duration::from_secs(5), "into_std waited {took:?} while unwinding");
}

/// A `File`'s advisory locks are std's: `try_lock` refuses while another open file holds the
/// lock, and `lock` waits for it, the worker going on meanwhile.
#[test]
fn a_file_s_lock_waits_without_holding_the_worker() {
    common::bounded(LIMIT, || {
        let scratch = Scratch::new("file-lock");
        let path = scratch.0.join("locked");
        std::fs::write(&path, b"").unwrap();
        let (waited, ticks) = common::beside_a_ticker(move || {
            let holder = green::fs::File::open(&path).unwrap();
            holder.lock().unwrap();
            let other = green::fs::File::open(&path).unwrap();
            assert!(matches!(other.try_lock(), Err(green::fs::TryLockError::WouldBlock)));
            assert!(matches!(other.try_lock_shared(), Err(green::fs::TryLockError::WouldBlock)));
            let releaser = green::spawn(move || {
                green::sleep(Duration::from_millis(200));
                holder.unlock().unwrap();
            });
            let start = std::time::Instant::now();
            other.lock().unwrap(); // tries and sleeps until the holder lets go
            let waited = start.elapsed();
            releaser.join().unwrap();
            other.unlock().unwrap();
            other.try_lock_shared().unwrap();
            waited
        });
        assert!(waited >= Duration::from_millis(200), "the lock was had after {waited:?}, before it was let go");
        // 200 ms of 1 ms sleeps: a held worker would have counted none.
        assert!(ticks >= 20, "the ticker ticked {ticks} times while the lock was waited for");
    });
}

/// A write of more than 2 MiB to a file opened for appending is made whole, as std's one
/// `write` is: the kernel holds the file's lock for one `write`, so records appended at once by
/// several writers stay whole. (Split into writes of 2 MiB, 3 MiB records written by four green
/// threads at once came out interleaved, where std's on four OS threads did not.)
#[test]
fn a_large_append_is_one_write() {
    use std::io::Write;
    const RECORD: usize = 3 * 1024 * 1024;
    common::bounded(LIMIT, || {
        let scratch = Scratch::new("file-append");
        let path = scratch.0.join("log");
        green::Runtime::builder().workers(2).build().unwrap().block_on(move || {
            let log = green::fs::OpenOptions::new().append(true).create(true).open(&path).unwrap();
            assert_eq!((&log).write(&vec![b'a'; RECORD]).unwrap(), RECORD, "an append was split");
            // A file not opened for appending may still be written in part.
            let other = green::fs::OpenOptions::new().write(true).open(&path).unwrap();
            assert!((&other).write(&vec![b'b'; RECORD]).unwrap() > 0);
            let writers: Vec<_> = (0..4u8)
                .map(|k| {
                    let path = path.clone();
                    green::spawn(move || {
                        let mut log = green::fs::OpenOptions::new().append(true).open(&path).unwrap();
                        for _ in 0..2 {
                            log.write_all(&vec![b'c' + k; RECORD]).unwrap();
                        }
                    })
                })
                .collect();
            for writer in writers {
                writer.join().unwrap();
            }
            let contents = green::fs::read(&path).unwrap();
            assert_eq!(contents.len(), 9 * RECORD);
            for (i, record) in contents.chunks(RECORD).enumerate().skip(1) {
                assert!(record.iter().all(|&b| b == record[0]), "record {i} of the log was interleaved with another");
            }
        });
    });
}

/// A vectored write is one write, as std's `writev`: all the buffers at once (an append of a
/// header and a body stays one record), not the first buffer only.
#[test]
fn a_vectored_write_writes_every_buffer_at_once() {
    use std::io::{IoSlice, Write};
    common::bounded(LIMIT, || {
        let scratch = Scratch::new("file-vectored");
        let path = scratch.0.join("log");
        green::run(move || {
            let mut log = green::fs::OpenOptions::new().append(true).create(true).open(&path).unwrap();
            let parts = [IoSlice::new(b"head:"), IoSlice::new(b""), IoSlice::new(b"body\n")];
            assert_eq!(log.write_vectored(&parts).unwrap(), 10, "not every buffer was written");
            assert_eq!((&log).write_vectored(&parts).unwrap(), 10);
            assert_eq!(green::fs::read_to_string(&path).unwrap(), "head:body\nhead:body\n");
        });
    });
}

/// Whether an exclusive `flock` is held on the file at `path`, as `/proc/locks` lists them.
fn flock_held(path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ino = format!(":{} ", std::fs::metadata(path).unwrap().ino());
    std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .any(|line| line.contains("FLOCK") && line.contains("WRITE") && line.contains(&ino))
}

/// A `lock` given up on at a deadline, or cancelled, is not taken afterwards: the wait was
/// the green thread's own tries, which end with it. (Made on the pool, the wait went on there
/// and took the lock once it was let go, for an open file whose call had returned none.)
#[test]
fn a_lock_given_up_on_is_never_taken() {
    common::bounded(LIMIT, || {
        let scratch = Scratch::new("file-lock-given-up");
        let path = scratch.0.join("locked");
        std::fs::write(&path, b"").unwrap();
        let holder = std::fs::File::open(&path).unwrap();
        holder.lock().unwrap();
        let runtime = green::Runtime::builder().workers(1).build().unwrap();
        let (file, other) = runtime.block_on({
            let path = path.clone();
            move || {
                let file = green::fs::File::open(&path).unwrap();
                let waited = green::timeout(Duration::from_millis(50), || file.lock());
                assert!(waited.is_err(), "the lock was had while another file held it: {waited:?}");
                let other = green::fs::File::open(&path).unwrap();
                let waiter = green::spawn({
                    let other = other.try_clone().unwrap();
                    move || other.lock_shared()
                });
                green::sleep(Duration::from_millis(20));
                waiter.cancel();
                assert!(waiter.join().unwrap_err().is_cancelled());
                (file, other)
            }
        });
        drop(holder);
        // Both open files stay open past the holder's release: neither takes the lock.
        std::thread::sleep(Duration::from_millis(100));
        assert!(!flock_held(&path), "a lock given up on was taken after the holder let go");
        let again = std::fs::File::open(&path).unwrap();
        again.try_lock().unwrap();
        drop((file, other, again));
        drop(runtime);
    });
}

/// Waiters for a lock hold no pool thread: with a pool of one thread and more waiters than
/// that, the holder's own write (on the pool) still runs, it lets go, and each waiter has the
/// lock in turn. (Waits made on the pool filled it, and the holder's write waited behind them
/// for good.)
#[test]
fn lock_waiters_leave_the_pool_to_the_holder() {
    use std::io::Write;
    common::bounded(LIMIT, || {
        let scratch = Scratch::new("file-lock-waiters");
        let path = scratch.0.join("locked");
        std::fs::write(&path, b"").unwrap();
        let runtime = green::Runtime::builder().workers(2).max_blocking_threads(1).build().unwrap();
        let turns = runtime.block_on(move || {
            let holder = green::fs::OpenOptions::new().append(true).open(&path).unwrap();
            holder.lock().unwrap();
            let waiters: Vec<_> = (0..3)
                .map(|k| {
                    let path = path.clone();
                    green::spawn(move || {
                        let file = green::fs::OpenOptions::new().append(true).open(&path).unwrap();
                        file.lock().unwrap();
                        writeln!(&file, "waiter {k}").unwrap();
                        file.unlock().unwrap();
                    })
                })
                .collect();
            green::sleep(Duration::from_millis(50));
            writeln!(&holder, "holder").unwrap(); // on the pool's only thread
            holder.unlock().unwrap();
            for waiter in waiters {
                waiter.join().unwrap();
            }
            green::fs::read_to_string(&path).unwrap()
        });
        let mut lines: Vec<_> = turns.lines().collect();
        assert_eq!(lines.first(), Some(&"holder"), "{turns:?}");
        lines.sort_unstable();
        assert_eq!(lines, ["holder", "waiter 0", "waiter 1", "waiter 2"]);
    });
}

/// The closes of one file, as fanotify reports them, each with the id of the thread that made
/// it (`FAN_REPORT_TID`). `None` where fanotify is refused (it needs `CAP_SYS_ADMIN`).
struct Closes(std::os::fd::OwnedFd);

impl Closes {
    fn watch(path: &std::path::Path) -> Option<Closes> {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        let flags = libc::FAN_CLASS_NOTIF | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK | libc::FAN_REPORT_TID;
        // SAFETY: plain integers in; a new fd (ours alone) or -1 out.
        let fd = unsafe { libc::fanotify_init(flags, libc::O_RDONLY as libc::c_uint) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` was just returned, and nobody else owns it.
        let watch = Closes(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a fanotify fd and a NUL-terminated path alive across the call.
        let marked =
            unsafe { libc::fanotify_mark(fd, libc::FAN_MARK_ADD, libc::FAN_CLOSE, libc::AT_FDCWD, path.as_ptr()) };
        (marked == 0).then_some(watch)
    }

    /// The ids of the threads that closed the file since the last look.
    fn closers(&self) -> Vec<i32> {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 4096];
        // SAFETY: a writable buffer of the length given.
        let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        let mut closers = Vec::new();
        let mut at = 0;
        while n > 0 && at < n as usize {
            // SAFETY: the kernel wrote whole events from `at` on; `read_unaligned` copes with the
            // byte buffer's alignment.
            let event: libc::fanotify_event_metadata = unsafe { std::ptr::read_unaligned(buf.as_ptr().add(at).cast()) };
            if event.fd >= 0 {
                // SAFETY: each event carries an fd of the file, ours to close.
                unsafe { libc::close(event.fd) };
            }
            closers.push(event.pid);
            at += event.event_len as usize;
        }
        closers
    }
}

/// A file that was opened for writing is closed on the pool, not on the worker: the last close
/// of a file truncated and written again starts its writeback on ext4 and XFS (50 ms for a
/// file of 200 MiB here, on the worker, before this). A file opened only for reading is closed
/// in place.
#[test]
fn a_written_file_is_closed_on_the_pool() {
    use std::io::Write;
    common::bounded(LIMIT, || {
        let scratch = Scratch::new("file-close");
        let path = scratch.0.join("rewritten");
        std::fs::write(&path, b"first").unwrap();
        let Some(closes) = Closes::watch(&path) else {
            eprintln!("skipped: fanotify refused here");
            return;
        };
        green::Runtime::builder().workers(1).build().unwrap().block_on(move || {
            // SAFETY: no arguments; the id of the calling thread, the worker's.
            let worker = unsafe { libc::gettid() };
            drop(green::fs::File::open(&path).unwrap());
            let read_only = closes.closers();
            assert!(!read_only.is_empty() && read_only.iter().all(|&t| t == worker), "{read_only:?}, worker {worker}");
            let mut file = green::fs::File::create(&path).unwrap();
            file.write_all(b"second").unwrap();
            drop(file);
            let written = closes.closers();
            assert!(!written.is_empty(), "no close seen");
            assert!(!written.contains(&worker), "a written file was closed on the worker: {written:?}");
        });
    });
}

/// A `lock` of a file that is not a block device's (tmpfs here) tries on the pool: given up on
/// while a try waits there (queued behind the pool's only thread), the try still runs, and a
/// lock it takes is let go, not left held by an open file whose `lock` returned none.
#[test]
fn a_lock_given_up_on_while_tried_on_the_pool_is_let_go() {
    const SHM: &str = "/dev/shm";
    if !std::path::Path::new(SHM).is_dir() {
        eprintln!("skipped: no {SHM}");
        return;
    }
    common::bounded(LIMIT, || {
        let path = std::path::Path::new(SHM).join(format!("green-fs-lock-on-pool-{}", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        let runtime = green::Runtime::builder().workers(1).max_blocking_threads(1).build().unwrap();
        let files = runtime.block_on({
            let path = path.clone();
            move || {
                // Opened first: an open of such a file is made on the pool too.
                let timed = green::fs::File::open(&path).unwrap();
                let cancelled = green::fs::File::open(&path).unwrap();
                let waiting = cancelled.try_clone().unwrap();
                let busy = green::spawn_blocking(|| std::thread::sleep(Duration::from_millis(150)));
                let waited = green::timeout(Duration::from_millis(30), || timed.lock());
                assert!(waited.is_err(), "the lock was had, though its try waited for the pool: {waited:?}");
                let waiter = green::spawn(move || waiting.lock_shared());
                green::sleep(Duration::from_millis(20));
                waiter.cancel();
                assert!(waiter.join().unwrap_err().is_cancelled());
                busy.join().unwrap();
                // The pool is first in, first out: both tries have run once this has.
                green::spawn_blocking(|| ()).join().unwrap();
                (timed, cancelled)
            }
        });
        let held = std::fs::File::open(&path).unwrap().try_lock();
        drop(files);
        drop(runtime);
        std::fs::remove_file(&path).unwrap();
        held.expect("a lock given up on while tried on the pool stayed held");
    });
}

/// A `lock` made while its green thread unwinds (in a destructor) never holds the worker: the
/// lock held elsewhere, it tries once and returns a `WouldBlock` error, as an I/O call there
/// does. (It blocked the worker in `flock` until the lock was let go: for good if the holder was
/// a green thread of the same worker.)
#[test]
fn a_lock_while_unwinding_does_not_hold_the_worker() {
    struct LockOnDrop(green::fs::File, std::sync::mpsc::Sender<std::io::Result<()>>);
    impl Drop for LockOnDrop {
        fn drop(&mut self) {
            let _ = self.1.send(self.0.lock());
        }
    }
    common::bounded(LIMIT, || {
        let scratch = Scratch::new("file-lock-unwinding");
        let path = scratch.0.join("locked");
        std::fs::write(&path, b"").unwrap();
        let holder = std::fs::File::open(&path).unwrap();
        holder.lock().unwrap();
        // Lets go when told, or after 10 s (when the call has blocked that long).
        let (release, released) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            let _ = released.recv_timeout(Duration::from_secs(10));
            drop(holder);
        });
        let (tx, rx) = std::sync::mpsc::channel();
        green::Runtime::builder().workers(1).build().unwrap().block_on(move || {
            let file = green::fs::File::open(&path).unwrap();
            let unwinding = green::spawn(move || {
                let _guard = LockOnDrop(file, tx);
                std::panic::resume_unwind(Box::new("unwinding"));
            });
            assert!(unwinding.join().unwrap_err().is_panic());
        });
        let locked = rx.recv().unwrap();
        let _ = release.send(());
        holder.join().unwrap();
        let e = locked.expect_err("a lock held elsewhere was had while unwinding");
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
    });
}
