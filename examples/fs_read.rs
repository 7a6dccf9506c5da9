//! Reading many files: `std::fs` on green threads, `green::fs` per file, one `spawn_blocking`
//! job per batch of files, and plain OS threads, side by side; then the cost of one call.
//!
//! ```sh
//! cargo run --release --example fs_read                  # 20,000 small + 200 larger files, 5 rounds
//! cargo run --release --example fs_read -- --rounds 3 --readers 64
//! cargo run --release --example fs_read -- --cold       # each file dropped from the page cache before each run
//! ```
//!
//! It writes a tree under the system's temporary directory (20,000 files of about 1 KiB in 200
//! directories and 200 files of about 250 KiB: 56 MiB), reads it once to warm the page cache,
//! then in each round runs every variant once, in turn. A variant walks the tree on one thread,
//! sends the paths through a bounded channel to `--readers` readers, which read each file whole
//! and count the lines that hold `needle`, and send the counts to a collector. It prints the
//! median time of each variant, then the median per-call time of 20,000 reads of one small
//! file from a single green thread (and of 20,000 looks at its metadata, and 20,000 opens of it
//! read to the end through a `File`), and removes the tree. With `--cold`, every file of the tree
//! is dropped from the page cache before each variant's run (`posix_fadvise` with
//! `POSIX_FADV_DONTNEED`, after a `sync`; the directories stay cached), so that the reads wait
//! for the disk.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use green::sync::mpmc;

const USAGE: &str = "usage: fs_read [--rounds N] [--readers R] [--batch B] [--cold]";
const SMALL_FILES: usize = 20_000;
const LARGE_FILES: usize = 200;
const DIRS: usize = 200;
const NEEDLE: &[u8] = b"needle";

/// Writes the tree; every line is `word number word`, one word in eight is the needle.
fn generate(root: &Path) -> std::io::Result<()> {
    let words = ["alpha", "beta", "gamma", "needle", "delta", "kappa", "omega", "sigma"];
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut write = |path: PathBuf, lines: u64| {
        let mut text = String::new();
        for _ in 0..lines {
            let (a, n, b) = (next() % 8, next() % 100_000, next() % 8);
            text += &format!("{} {n} {}\n", words[a as usize], words[b as usize]);
        }
        std::fs::write(path, text)
    };
    for d in 0..DIRS {
        let dir = root.join(format!("d{d:03}"));
        std::fs::create_dir_all(&dir)?;
        for f in 0..SMALL_FILES / DIRS {
            write(dir.join(format!("f{f:03}.txt")), 40 + f as u64 % 40)?;
        }
    }
    std::fs::create_dir_all(root.join("large"))?;
    for f in 0..LARGE_FILES {
        write(root.join("large").join(format!("l{f:03}.log")), 12_000)?;
    }
    Ok(())
}

/// Lines of `data` that hold the needle.
fn count(data: &[u8]) -> usize {
    data.split(|&b| b == b'\n').filter(|line| line.windows(NEEDLE.len()).any(|w| w == NEEDLE)).count()
}

/// Sends the path of every file under `dir`, listing directories with `read_dir`.
fn walk(dir: &Path, read_dir: ReadDir, send: &mut dyn FnMut(PathBuf)) {
    for (path, is_dir) in read_dir(dir).unwrap() {
        if is_dir {
            walk(&path, read_dir, send);
        } else {
            send(path);
        }
    }
}

/// A directory's entries, each with whether it is a directory (from the listing: no `stat`).
type ReadDir = fn(&Path) -> std::io::Result<Vec<(PathBuf, bool)>>;

fn entry(e: std::io::Result<std::fs::DirEntry>) -> std::io::Result<(PathBuf, bool)> {
    let e = e?;
    Ok((e.path(), e.file_type()?.is_dir()))
}

fn std_read_dir(dir: &Path) -> std::io::Result<Vec<(PathBuf, bool)>> {
    std::fs::read_dir(dir)?.map(entry).collect()
}

fn green_read_dir(dir: &Path) -> std::io::Result<Vec<(PathBuf, bool)>> {
    green::fs::read_dir(dir)?.map(entry).collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    StdOnGreen,
    GreenFs,
    Batches,
    OsThreads,
}

/// One run of a variant: (files read, matching lines).
fn run(variant: Variant, root: &Path, readers: usize, batch: usize) -> (usize, usize) {
    if variant == Variant::OsThreads {
        let (paths, rx) = mpmc::sync_channel::<PathBuf>(1024);
        let (counts, totals) = mpmc::channel::<usize>();
        let threads: Vec<_> = (0..readers)
            .map(|_| {
                let (rx, counts) = (rx.clone(), counts.clone());
                std::thread::spawn(move || {
                    rx.into_iter().for_each(|p| counts.send(count(&std::fs::read(p).unwrap())).unwrap())
                })
            })
            .collect();
        drop((rx, counts));
        walk(root, std_read_dir, &mut |p| paths.send(p).unwrap());
        drop(paths);
        threads.into_iter().for_each(|t| t.join().unwrap());
        return totals.into_iter().fold((0, 0), |(n, m), c| (n + 1, m + c));
    }
    green::run(|| {
        let (paths, rx) = mpmc::sync_channel::<PathBuf>(1024);
        let (counts, totals) = mpmc::channel::<usize>();
        let collector = green::spawn(move || totals.into_iter().fold((0, 0), |(n, m), c| (n + 1, m + c)));
        let threads: Vec<_> = (0..readers)
            .map(|_| {
                let (rx, counts) = (rx.clone(), counts.clone());
                green::spawn(move || match variant {
                    Variant::StdOnGreen => {
                        rx.into_iter().for_each(|p| counts.send(count(&std::fs::read(p).unwrap())).unwrap())
                    }
                    Variant::GreenFs => {
                        rx.into_iter().for_each(|p| counts.send(count(&green::fs::read(p).unwrap())).unwrap())
                    }
                    _ => {
                        while let Ok(first) = rx.recv() {
                            let mut group = vec![first];
                            group.extend(std::iter::from_fn(|| rx.try_recv().ok()).take(batch - 1));
                            let data = green::spawn_blocking(move || {
                                group.into_iter().map(|p| std::fs::read(p).unwrap()).collect::<Vec<_>>()
                            });
                            data.join().unwrap().iter().for_each(|d| counts.send(count(d)).unwrap());
                        }
                    }
                })
            })
            .collect();
        drop((rx, counts));
        let read_dir: ReadDir = if variant == Variant::GreenFs { green_read_dir } else { std_read_dir };
        walk(root, read_dir, &mut |p| paths.send(p).unwrap());
        drop(paths);
        threads.into_iter().for_each(|t| t.join().unwrap());
        collector.join().unwrap()
    })
}

/// Drops every file under `dir` from the page cache (they are clean: the tree was synced after
/// it was written).
fn evict(dir: &Path) {
    use std::os::fd::AsRawFd;
    walk(dir, std_read_dir, &mut |path| {
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: an open fd; the advice touches no memory of ours.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0, "posix_fadvise({}): error {rc}", path.display());
    });
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Median per-call time of `calls` calls of `std_call` and of `green_call` from one green
/// thread, over 5 rounds.
fn per_call<T>(calls: u32, std_call: impl Fn() -> T + Send, green_call: impl Fn() -> T + Send) -> (Duration, Duration) {
    green::run(|| {
        let (mut std_times, mut green_times) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            let start = Instant::now();
            for _ in 0..calls {
                std::hint::black_box(std_call());
                green::tick();
            }
            std_times.push(start.elapsed() / calls);
            let start = Instant::now();
            for _ in 0..calls {
                std::hint::black_box(green_call());
            }
            green_times.push(start.elapsed() / calls);
        }
        (median(std_times), median(green_times))
    })
}

fn main() {
    let (mut rounds, mut readers, mut batch, mut cold) = (5, 8, 64, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--cold" {
            cold = true;
            continue;
        }
        let value = args.next().and_then(|v| v.parse::<usize>().ok()).filter(|&v| v > 0);
        match (arg.as_str(), value) {
            ("--rounds", Some(v)) => rounds = v,
            ("--readers", Some(v)) => readers = v,
            ("--batch", Some(v)) => batch = v,
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let tree = Tree(std::env::temp_dir().join(format!("green-fs-read-{}", std::process::id())));
    let root = &tree.0;
    generate(root).unwrap();
    if cold {
        // SAFETY: no arguments; writes every dirty page back, so that the eviction can drop them.
        unsafe { libc::sync() };
    }
    let warm = run(Variant::OsThreads, root, readers, batch);
    let cache = if cold { "files dropped from the page cache before each run" } else { "in the page cache" };
    println!(
        "{} files, {} matching lines, {cache}; {rounds} rounds, {readers} readers, batches of {batch}",
        warm.0, warm.1
    );
    let variants = [
        (Variant::StdOnGreen, "std::fs::read on green threads"),
        (Variant::GreenFs, "green::fs::read per file"),
        (Variant::Batches, "one spawn_blocking per batch"),
        (Variant::OsThreads, "std::fs::read on OS threads"),
    ];
    let mut times = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        for (i, &(variant, _)) in variants.iter().enumerate() {
            if cold {
                evict(root);
            }
            let start = Instant::now();
            assert_eq!(run(variant, root, readers, batch), warm, "a variant read something else");
            times[i].push(start.elapsed());
        }
    }
    for ((_, name), times) in variants.iter().zip(times) {
        println!("{name:<32} {:>8.1} ms (median)", median(times).as_secs_f64() * 1e3);
    }
    let file = root.join("d000").join("f000.txt");
    let (std_call, green_call) = per_call(20_000, || std::fs::read(&file).unwrap(), || green::fs::read(&file).unwrap());
    println!("one read of a small cached file: std::fs::read {std_call:.2?}, green::fs::read {green_call:.2?}");
    let (std_call, green_call) =
        per_call(20_000, || std::fs::metadata(&file).unwrap(), || green::fs::metadata(&file).unwrap());
    println!("its metadata: std::fs::metadata {std_call:.2?}, green::fs::metadata {green_call:.2?}");
    let read_file = |file: &mut dyn std::io::Read| {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        bytes
    };
    let (std_call, green_call) = per_call(
        20_000,
        || read_file(&mut std::fs::File::open(&file).unwrap()),
        || read_file(&mut green::fs::File::open(&file).unwrap()),
    );
    println!("open and read_to_end: std::fs::File {std_call:.2?}, green::fs::File {green_call:.2?}");
}

/// The tree, removed when dropped (on a panic too).
struct Tree(PathBuf);

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
