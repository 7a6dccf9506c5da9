//! A key-value server with a graceful shutdown: a line protocol over TCP, the map in a green
//! `RwLock`, every change appended to a log file by a green thread of its own, and on SIGTERM or
//! Ctrl-C a stop that loses no acknowledged change.
//!
//! ```sh
//! cargo run --example kv                   # listens on 127.0.0.1:7880, appends to ./kv.log
//! cargo run --example kv -- --port 9000    # another port
//! nc 127.0.0.1 7880                        # then: SET a 1, GET a, DEL a, QUIT
//! kill -TERM <pid>                         # or Ctrl-C: stops as below, then exits 0
//! cargo run --example kv -- --demo         # a free port, 50 checked clients, a SIGTERM mid-load
//! ```
//!
//! The shutdown, in order: stop accepting (cancel the accept loop); let each connection finish
//! the command it is on, for at most [`DRAIN`] in all, then cancel those still open
//! ([`green::JoinHandle::wait_timeout`] keeps each handle to do so); drop the last `Sender`, so
//! the log writer's `recv` loop ends; wait for it to sync the file. File I/O goes through
//! [`green::spawn_blocking`]: a `write` or `fsync` on a worker would stall every connection on it.

mod common {
    pub mod server;
}

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::server;
use green::net::{TcpListener, TcpStream};
use green::signal::{Signal, Signals};
use green::sync::{RwLock, mpsc};

const USAGE: &str = "usage: kv [--port N] [--demo]   (default: port 7880, log ./kv.log)";
const PORT: u16 = 7880;
/// How long open connections get to finish once a shutdown begins.
const DRAIN: Duration = Duration::from_secs(1);
/// The same in the demo, which checks that only its idle client is cancelled: long enough for
/// every active client to finish on a loaded machine.
const DEMO_DRAIN: Duration = Duration::from_secs(3);
/// A client silent this long is dropped (std's read timeout: the read fails with `WouldBlock`).
const IDLE: Duration = Duration::from_secs(10);

/// One change, for the log.
enum Change {
    Set(String, String),
    Del(String),
}

/// What every connection shares.
#[derive(Clone)]
struct Shared {
    map: Arc<RwLock<HashMap<String, String>>>,
    log: mpsc::Sender<Change>,
    stopping: Arc<AtomicBool>,
}

/// Serves one client until it quits, goes idle, or the server stops.
fn handle(stream: TcpStream, shared: Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    let (mut reader, mut writer) = (BufReader::new(&stream), &stream);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return writer.write_all(b"ERR idle\n"),
            Err(e) => return Err(e),
        }
        let mut words = line.trim_end().splitn(3, ' ');
        // A change goes to the log under the write lock, so the log has the changes in the
        // order the map had them (an unbounded channel's send never waits). No guard is held
        // across a read or write of the socket: every other connection would queue behind it.
        let reply = match (words.next(), words.next(), words.next()) {
            (Some("GET"), Some(k), None) => {
                shared.map.read().unwrap().get(k).map_or("NIL".into(), |v| format!("VALUE {v}"))
            }
            (Some("SET"), Some(k), Some(v)) => {
                let mut map = shared.map.write().unwrap();
                logged(shared.log.send(Change::Set(k.into(), v.into())), || {
                    map.insert(k.into(), v.into());
                })
            }
            (Some("DEL"), Some(k), None) => {
                let mut map = shared.map.write().unwrap();
                match map.contains_key(k) {
                    true => logged(shared.log.send(Change::Del(k.into())), || {
                        map.remove(k);
                    }),
                    false => "NIL".into(),
                }
            }
            (Some("QUIT"), None, None) => return writer.write_all(b"BYE\n"),
            _ => "ERR unknown command".into(),
        };
        writer.write_all(format!("{reply}\n").as_bytes())?;
        if shared.stopping.load(Ordering::Relaxed) {
            return writer.write_all(b"ERR shutting down\n");
        }
    }
}

/// The reply to a change: `OK` once it is on its way to the log, and `apply` makes it in the
/// map only then. A change the log did not take is not made: no client could read it.
fn logged(sent: Result<(), mpsc::SendError<Change>>, apply: impl FnOnce()) -> String {
    match sent {
        Ok(()) => {
            apply();
            "OK".into()
        }
        Err(_) => "ERR the log writer has stopped".into(),
    }
}

/// Appends each change to the file at `path` until every `Sender` is gone; returns how many.
fn write_log(changes: mpsc::Receiver<Change>, path: PathBuf) -> io::Result<u64> {
    let open = move || File::options().create(true).append(true).open(path);
    let mut file = green::spawn_blocking(open).join().unwrap()?;
    let mut written = 0;
    // Ends once every Sender is dropped: the server's own, the accept loop's, each connection's.
    while let Ok(first) = changes.recv() {
        let mut text = String::new();
        for change in std::iter::once(first).chain(changes.try_iter()) {
            match change {
                Change::Set(k, v) => text += &format!("SET {k} {v}\n"),
                Change::Del(k) => text += &format!("DEL {k}\n"),
            }
            written += 1;
        }
        // The file goes to the blocking pool and comes back with the result.
        file = green::spawn_blocking(move || file.write_all(text.as_bytes()).map(|()| file)).join().unwrap()?;
    }
    green::spawn_blocking(move || file.sync_all()).join().unwrap()?;
    Ok(written)
}

/// Accepts until cancelled, keeping each connection's handle for the shutdown.
///
/// Between an accept and the push of its connection's handle there is no cancellation point:
/// one there would drop the handle, and the shutdown would neither wait for that connection nor
/// cancel it at the deadline. So `open` keeps them under std's `Mutex`, held only for the push
/// (a green lock is a cancellation point even when free), and the loop looks for a
/// cancellation itself, since an `accept` that finds a connection waiting is none (under a
/// flood of connections it never waits).
fn accept_loop(listener: TcpListener, shared: Shared, open: Arc<server::Connections>) {
    while !green::is_cancelled() {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) => {
                server::accept_failed(&e);
                continue;
            }
        };
        let shared = shared.clone();
        let connection = green::Builder::new()
            .name(format!("conn {peer}")) // shown in panics, the monitor's reports and dumps
            .spread()
            .spawn(move || {
                if let Err(e) = handle(stream, shared) {
                    eprintln!("{peer}: {e}");
                }
            });
        open.keep(peer, connection);
    }
}

fn main() -> std::process::ExitCode {
    server::main(USAGE, PORT, |args, listener, addr| {
        // First, before any client: from now on SIGTERM and SIGINT wait here instead of ending
        // the process.
        let signals = Signals::new(&[Signal::Terminate, Signal::Interrupt]).map_err(|e| format!("signals: {e}"))?;
        let path = match args.demo {
            true => std::env::temp_dir().join(format!("green-kv-demo-{}.log", std::process::id())),
            false => PathBuf::from("kv.log"),
        };
        let (log, changes) = mpsc::channel();
        let log_path = path.clone();
        let writer = green::Builder::new().name("log writer".into()).spawn(move || write_log(changes, log_path));
        let writer = writer.map_err(|e| e.to_string())?;
        let shared = Shared { map: Arc::default(), log, stopping: Arc::default() };
        let open = Arc::default();
        let acceptor = {
            let (shared, open) = (shared.clone(), Arc::clone(&open));
            green::spawn(move || accept_loop(listener, shared, open))
        };
        println!("kv server on {addr}, logging to {}", path.display());
        let demo = args.demo.then(|| green::spawn(move || run_demo(addr)));

        let signal = signals.recv().map_err(|e| format!("signals: {e}"))?;
        drop(signals); // a second Ctrl-C ends the process at once
        println!("{signal}: stopping");
        shared.stopping.store(true, Ordering::Relaxed);
        acceptor.cancel();
        let _ = acceptor.join();
        let deadline = Instant::now() + if args.demo { DEMO_DRAIN } else { DRAIN };
        let cancelled = open.drain(deadline);
        // The last Sender: without this drop, the writer would wait for more changes for good.
        drop(shared);
        let written = writer.join().map_err(|e| e.to_string())?.map_err(|e| format!("the log: {e}"))?;
        println!("log synced: {written} change(s)");
        if let Some(demo) = demo {
            let (acked, _idle) = demo.join().map_err(|e| e.to_string())??;
            let lines = std::fs::read_to_string(&path).map_err(|e| e.to_string())?.lines().count() as u64;
            let _ = std::fs::remove_file(&path);
            // Every acknowledged change is in the log; at most one per client more, sent just
            // before its connection was cut.
            if !(acked..=acked + DEMO_CLIENTS as u64).contains(&lines) || lines != written {
                return Err(format!("{acked} changes acknowledged, {written} written, {lines} in the log"));
            }
            if cancelled != 1 {
                return Err(format!("{cancelled} connections cancelled at the deadline, expected the idle one"));
            }
            println!("demo: {acked} acknowledged changes, all in the log");
        }
        Ok(())
    })
}

const DEMO_CLIENTS: usize = 50;

/// Clients checking every reply, one idle client, and a SIGTERM once some changes are in.
/// Returns how many changes the server acknowledged, and the idle client, to be dropped only
/// once the server has stopped.
fn run_demo(addr: SocketAddr) -> Result<(u64, TcpStream), String> {
    let acked = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..DEMO_CLIENTS)
        .map(|c| {
            let acked = acked.clone();
            green::spawn(move || demo_client(addr, c, &acked))
        })
        .collect();
    // Served once, then silent: its connection is the one the deadline cancels.
    let idle = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    let mut reply = String::new();
    (&idle)
        .write_all(b"GET idle\n")
        .and_then(|()| BufReader::new(&idle).read_line(&mut reply))
        .map_err(|e| e.to_string())?;
    if reply != "NIL\n" {
        return Err(format!("the idle client got {reply:?}"));
    }
    while acked.load(Ordering::Relaxed) < 2_000 {
        green::sleep(Duration::from_millis(1));
    }
    // SAFETY: raise has no memory-safety preconditions; SIGTERM is listened for.
    unsafe { libc::raise(libc::SIGTERM) };
    for client in clients {
        client.join().map_err(|e| e.to_string())??;
    }
    Ok((acked.load(Ordering::Relaxed), idle))
}

/// SET, GET, DEL and GET again on keys of its own, checking each reply, until the server stops.
fn demo_client(addr: SocketAddr, c: usize, acked: &AtomicU64) -> Result<(), String> {
    let stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    let (mut reader, mut writer) = (BufReader::new(&stream), &stream);
    let mut ask = |command: String, want: &str| -> Result<bool, String> {
        let mut reply = String::new();
        let sent = writer.write_all(command.as_bytes()).and_then(|()| reader.read_line(&mut reply));
        match sent {
            Ok(_) if reply == want => Ok(true),
            Ok(0) | Err(_) => Ok(false), // cut by the shutdown
            Ok(_) if reply == "ERR shutting down\n" => Ok(false),
            Ok(_) => Err(format!("client {c}: {command:?} got {reply:?}, expected {want:?}")),
        }
    };
    for i in 0.. {
        let key = format!("k{c}.{i}");
        let value = format!("v{i}");
        if !ask(format!("SET {key} {value}\n"), "OK\n")? {
            break;
        }
        acked.fetch_add(1, Ordering::Relaxed);
        if !ask(format!("GET {key}\n"), &format!("VALUE {value}\n"))? {
            break;
        }
        if i % 2 == 0 {
            if !ask(format!("DEL {key}\n"), "OK\n")? {
                break;
            }
            acked.fetch_add(1, Ordering::Relaxed);
            if !ask(format!("GET {key}\n"), "NIL\n")? {
                break;
            }
        }
    }
    Ok(())
}
