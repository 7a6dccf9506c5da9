//! What the server examples (`echo`, `chat`, `http_hello`, `kv`, `proxy`) share: their command
//! line, binding with an error that says what to do, what the accept loop does when `accept`
//! fails, and a graceful stop's drain.
//!
//! Each example includes it as `mod common { pub mod server; }`.

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use green::net::TcpListener;

/// How long the accept loop waits after `accept` failed for want of a resource (`EMFILE`,
/// `ENFILE`, `ENOBUFS`, `ENOMEM`). The pending connection stays queued and the listener stays
/// readable, so trying again at once would fail again at once, spinning a core; a tenth of a
/// second lets connections that are closing give their fds back, and keeps the log readable.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The command line of a server example.
#[derive(Debug, Clone, Copy)]
pub struct Args {
    /// `--demo`: serve on a free port, run a few checked clients, exit.
    pub demo: bool,
    /// `--port N`, if given: the port to listen on (0 for a free one).
    pub port: Option<u16>,
}

/// Parses `--demo`, `--port N` and `--help` (which prints `usage` to stdout and exits 0). An
/// error is one line plus the usage, for stderr.
pub fn parse_args(usage: &str) -> Result<Args, String> {
    let mut args = Args { demo: false, port: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{usage}");
                std::process::exit(0);
            }
            "--demo" => args.demo = true,
            "--port" => {
                let value = it.next().ok_or_else(|| format!("--port needs a value\n{usage}"))?;
                let port = value.parse().map_err(|e| format!("--port {value}: {e} (expected 0 to 65535)\n{usage}"))?;
                args.port = Some(port);
            }
            other => return Err(format!("unknown argument {other}\n{usage}")),
        }
    }
    Ok(args)
}

/// Binds 127.0.0.1 on `--port`, else on a free port for `--demo`, else on `default_port`. A
/// failure says which address, the OS error, and how to pick another port.
pub fn listen(args: Args, default_port: u16) -> Result<TcpListener, String> {
    let port = args.port.unwrap_or(if args.demo { 0 } else { default_port });
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpListener::bind(addr)
        .map_err(|e| format!("cannot listen on {addr}: {e}; try --port N for another port, or --demo for a free one"))
}

/// The connections of a server that stops gracefully (`kv`, `proxy`): their handles, kept for
/// the stop's drain.
#[derive(Default)]
#[allow(dead_code, reason = "used by the examples that stop gracefully, not all")]
pub struct Connections(std::sync::Mutex<Vec<green::JoinHandle<()>>>);

#[allow(dead_code, reason = "used by the examples that stop gracefully, not all")]
impl Connections {
    /// Keeps the handle of `peer`'s connection, forgetting those that have finished, or says
    /// that it could not be spawned. No cancellation point (a std `Mutex`): nothing between an
    /// accept and this may let a stop miss the connection.
    pub fn keep(&self, peer: SocketAddr, spawned: io::Result<green::JoinHandle<()>>) {
        match spawned {
            Ok(handle) => {
                let mut open = self.0.lock().unwrap();
                open.retain(|h| !h.is_finished());
                open.push(handle);
            }
            Err(e) => eprintln!("{peer}: not served: {e}"),
        }
    }

    /// A graceful stop's drain: lets each connection finish until `deadline`, and cancels the
    /// ones still running then; every one is joined. Prints how many finished and how many
    /// were cancelled, and returns the latter.
    pub fn drain(&self, deadline: std::time::Instant) -> usize {
        let (mut finished, mut cancelled) = (0, 0);
        for mut connection in std::mem::take(&mut *self.0.lock().unwrap()) {
            if connection.wait_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
                finished += 1;
            } else {
                connection.cancel();
                cancelled += 1;
            }
            let _ = connection.join();
        }
        println!("connections: {finished} finished, {cancelled} cancelled at the deadline");
        cancelled
    }
}

/// What an accept loop does when `accept` fails: log it and go on, for the listener is still
/// good. A connection reset before it was accepted (`ECONNABORTED`) costs nothing more; running
/// out of fds or memory waits [`ACCEPT_BACKOFF`] first, so that the loop does not spin.
pub fn accept_failed(e: &io::Error) {
    eprintln!("accept failed: {e}");
    if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)) {
        green::sleep(ACCEPT_BACKOFF);
    }
}

/// The `main` of a server example: parses the command line, binds, and runs `body` with the
/// listener and its address as the runtime's first green thread. A bad command line, a failed
/// bind or an error from `body` is printed as one line, and the exit code says so.
pub fn main(
    usage: &str,
    default_port: u16,
    body: impl FnOnce(Args, TcpListener, SocketAddr) -> Result<(), String>,
) -> ExitCode {
    let args = match parse_args(usage) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = green::run(|| {
        let listener = listen(args, default_port)?;
        let addr = listener.local_addr().map_err(|e| format!("no local address: {e}"))?;
        body(args, listener, addr)
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
