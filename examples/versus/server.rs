//! The servers: one echo service, written as a user of each would write it. Each runs in a
//! process of its own (`versus --serve KIND --port P`), binds `127.0.0.1:P` (0: any free port)
//! and prints `port N` on stdout once it listens.
//!
//! - `green`: `green::run`, `green::net::TcpListener`, a green thread per connection. The
//!   runtime starts one worker per available CPU: one, since the process is pinned. It also
//!   answers the parent's `idle` lines on stdin (see [`answer_idle_queries`]).
//! - `threads`: `std::net::TcpListener`, a `std::thread` per connection with std's defaults
//!   (2 MiB stacks, std's listen backlog of 128).
//! - `tokio`: a multi-thread runtime with its default worker count (one, pinned), a task per
//!   connection.
//! - `tokio-ct`: the same on tokio's current-thread runtime, whose one thread runs every task
//!   from one FIFO queue. The multi-thread runtime's worker keeps 256 tasks in its local queue,
//!   moves the overflow to a global queue it looks at only every few dozen turns, and runs a
//!   task woken from the worker next (its LIFO slot): with a thousand connections, some are
//!   served over and over while others wait (docs/benchmarks.md).
//!
//! Every handler is the same loop: read what is there into a buffer, write it all back, until
//! end of stream or an error.

use std::io::{self, BufRead, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::args::{Serve, ServerKind};
use super::sys;

/// Bytes each handler reads at most at once, from a buffer on its stack (tokio's: in the
/// task), by default: 1 KiB, as in tokio's echo example; messages are 64 bytes. The stack
/// pages a handler touches are most of its memory, so this size moves the servers' RSS:
/// `--buffer` chooses one of [`READ_BUFFERS`] instead.
pub const READ_BUFFER: usize = 1024;

/// The read buffer sizes `--buffer` accepts (each is a separate instance of the handlers).
pub const READ_BUFFERS: [usize; 3] = [1024, 4096, 16384];

/// Pause after an accept error (out of fds, say) so that a full table does not spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

pub fn serve(serve: Serve) -> ExitCode {
    sys::die_with_parent();
    if let Some(cpu) = serve.cpu
        && let Err(e) = sys::pin_to(cpu)
    {
        eprintln!("versus server: could not pin to CPU {cpu}: {e}");
        return ExitCode::FAILURE;
    }
    // The parent raised it already and we inherit it; raise it anyway when run by hand.
    let _ = sys::raise_to_hard(libc::RLIMIT_NOFILE);
    let result = match serve.buffer {
        1024 => run::<1024>(serve),
        4096 => run::<4096>(serve),
        16384 => run::<16384>(serve),
        other => Err(io::Error::other(format!("--buffer {other}: expected one of {READ_BUFFERS:?}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("versus server ({}): {e}", serve.kind.name());
            ExitCode::FAILURE
        }
    }
}

fn run<const BUFFER: usize>(serve: Serve) -> io::Result<()> {
    match serve.kind {
        ServerKind::Green => green_server::<BUFFER>(serve.port),
        ServerKind::Threads => threads_server::<BUFFER>(serve.port),
        ServerKind::Tokio => tokio_server::<BUFFER>(tokio::runtime::Builder::new_multi_thread(), serve.port),
        ServerKind::TokioCt => tokio_server::<BUFFER>(tokio::runtime::Builder::new_current_thread(), serve.port),
    }
}

/// Tells the parent which port to connect to.
fn announce(port: u16) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "port {port}")?;
    out.flush()
}

/// The echo loop of the green and the thread-per-connection servers.
fn echo<const BUFFER: usize>(mut stream: impl Read + Write) {
    let mut buf = [0u8; BUFFER];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn accept_failed(e: &io::Error) {
    eprintln!("versus server: accept failed: {e}");
}

/// Answers each `idle` line the parent writes on stdin with `idle I workers W at T`: the
/// nanoseconds the runtime's `W` workers have spent with nothing to run, summed
/// (`green::runtime::WorkerMetrics::idle`), read `T` nanoseconds after this began. The OS
/// counts a worker that spins while it waits for work as busy; with this the parent tells a
/// server that waited for its client from one that had no time to spare. The answer comes
/// when this green thread's turn comes, after the connections ready before it, so it carries
/// its own time: the parent divides by the interval between two answers, not its own.
///
/// The parent waits for each answer, so an error or a line this does not know ends the
/// server, saying why. The end of stdin only ends the answers: nobody is left to ask (and a
/// server started by hand in the background has no stdin).
fn answer_idle_queries() {
    let began = Instant::now();
    let stdin = io::stdin();
    let mut line = String::new();
    let why = loop {
        line.clear();
        // The parent writes each line whole, in one write: once readable, it is all there.
        match green::io::wait_readable(&stdin).and_then(|()| stdin.lock().read_line(&mut line)) {
            Ok(0) => return,
            Ok(_) if line.trim() == "idle" => {}
            Ok(_) => break format!("an unknown line on stdin: {line:?}"),
            Err(e) => break format!("reading stdin: {e}"),
        }
        let metrics = green::Handle::current().metrics();
        let idle: Duration = metrics.workers.iter().map(|w| w.idle).sum();
        let at = began.elapsed();
        let mut out = io::stdout().lock();
        let answer = format!("idle {} workers {} at {}", idle.as_nanos(), metrics.workers.len(), at.as_nanos());
        if let Err(e) = writeln!(out, "{answer}").and_then(|()| out.flush()) {
            break format!("answering on stdout: {e}");
        }
    };
    eprintln!("versus server (green): stops after {why}");
    std::process::exit(2);
}

fn green_server<const BUFFER: usize>(port: u16) -> io::Result<()> {
    green::run(|| {
        let listener = green::net::TcpListener::bind(("127.0.0.1", port))?;
        announce(listener.local_addr()?.port())?;
        green::spawn(answer_idle_queries);
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    green::spawn(move || echo::<BUFFER>(stream));
                }
                Err(e) => {
                    accept_failed(&e);
                    green::sleep(ACCEPT_BACKOFF);
                }
            }
        }
        Ok(())
    })
}

fn threads_server<const BUFFER: usize>(port: u16) -> io::Result<()> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    announce(listener.local_addr()?.port())?;
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                // std::thread::spawn, but keep serving if one cannot start.
                if let Err(e) = std::thread::Builder::new().spawn(move || echo::<BUFFER>(stream)) {
                    eprintln!("versus server: could not start a thread for a connection: {e}");
                }
            }
            Err(e) => {
                accept_failed(&e);
                std::thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
    Ok(())
}

fn tokio_server<const BUFFER: usize>(mut builder: tokio::runtime::Builder, port: u16) -> io::Result<()> {
    let rt = builder.enable_all().build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        announce(listener.local_addr()?.port())?;
        loop {
            match listener.accept().await {
                Ok((mut stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(async move {
                        let mut buf = [0u8; BUFFER];
                        loop {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => {
                                    if stream.write_all(&buf[..n]).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    });
                }
                Err(e) => {
                    accept_failed(&e);
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    })
}
