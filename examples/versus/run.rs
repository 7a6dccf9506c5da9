//! One measurement: start a server process, drive it, sample it, stop it.

use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::args::{ClientKind, Options, ServerKind};
use super::sys::{self, Placement, ProcSample};
use super::{client_green, client_std};

/// What the load generator measured.
pub struct Load {
    /// From the first connect until every connection had its first echo.
    pub connect_all: Duration,
    /// Round-trip times of the echoes completed inside the window, in nanoseconds.
    pub latencies: Vec<u64>,
    /// Taken when the window opened and when it closed.
    pub first: Snapshot,
    pub last: Snapshot,
}

/// When the measurement window opens and closes.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

/// Reads the server's `/proc` entries and this process's CPU time, and asks a green server
/// for its idle time. The client calls it itself at the window's start and end: a thread of
/// its own would compete with the client for its core and could wake late, after connections
/// had already begun to close.
#[derive(Debug, Clone)]
pub struct Sampler {
    pid: u32,
    /// The client's and the server's CPUs, if pinned.
    cpus: Option<[usize; 2]>,
    /// The green server's stdin and stdout, to ask for its idle time.
    idle: Option<Arc<Mutex<IdleQuery>>>,
}

/// The pipes to a green server that answers `idle` lines (`server::answer_idle_queries`).
#[derive(Debug)]
struct IdleQuery {
    ask: ChildStdin,
    answers: BufReader<ChildStdout>,
}

/// How long a green server may take to answer: far more than its turn behind every ready
/// connection (5 ms at 1,000 connections, 20 to 40 ms at 10,000).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// One answer of a green server: its workers' idle time, summed, on its own clock.
#[derive(Debug, Clone, Copy)]
pub struct IdleReading {
    pub idle: Duration,
    pub workers: u32,
    /// When the server read it, on a clock of its own.
    pub at: Duration,
}

impl IdleQuery {
    /// Asks the server. The answer waits for the server's turn; meanwhile a green caller
    /// parks (the load generator's other connections keep running), a plain thread blocks.
    fn ask(&mut self) -> io::Result<IdleReading> {
        self.ask.write_all(b"idle\n")?;
        if self.answers.buffer().is_empty() {
            match green::io::wait_readable_until(self.answers.get_ref(), Instant::now() + ANSWER_TIMEOUT) {
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("the green server did not say its idle time within {} s", ANSWER_TIMEOUT.as_secs()),
                    ));
                }
                other => other?,
            }
        }
        let mut line = String::new();
        if self.answers.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the green server closed its stdout when asked for its idle time (see its message above)",
            ));
        }
        parse_idle(line.trim())
            .ok_or_else(|| io::Error::other(format!("the green server answered {line:?} when asked for its idle time")))
    }
}

/// `idle I workers W at T`, all integers (nanoseconds, and a count).
fn parse_idle(line: &str) -> Option<IdleReading> {
    let mut words = line.split(' ');
    let mut field = |name: &str| -> Option<u64> {
        (words.next()? == name).then_some(())?;
        words.next()?.parse().ok()
    };
    let idle = Duration::from_nanos(field("idle")?);
    let workers = u32::try_from(field("workers")?).ok()?;
    let at = Duration::from_nanos(field("at")?);
    Some(IdleReading { idle, workers, at })
}

/// One reading of the sampler.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    pub at: Instant,
    pub server: ProcSample,
    /// This process's CPU time so far, user plus system: the client's.
    pub client_cpu: Duration,
    /// Busy time of the client's and the server's CPUs so far, whoever used them, less what
    /// their `ksoftirqd` threads spent (network work for our own sockets).
    pub cpus_busy: Duration,
    /// A green server's idle time so far: spinning and asleep, with nothing to run.
    pub server_idle: Option<IdleReading>,
}

impl Sampler {
    pub fn take(&self) -> io::Result<Snapshot> {
        let at = Instant::now();
        let server = ProcSample::read(self.pid)?;
        let (user, system) = sys::self_cpu();
        let cpus_busy = sys::cpus_busy(self.cpus)?.saturating_sub(sys::softirq_threads_cpu(self.cpus));
        let server_idle = match &self.idle {
            Some(query) => Some(query.lock().unwrap_or_else(|e| e.into_inner()).ask()?),
            None => None,
        };
        Ok(Snapshot { at, server, client_cpu: user + system, cpus_busy, server_idle })
    }
}

/// The figures of one run.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub msgs_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    /// Server CPU per message, user and system, in nanoseconds.
    pub server_user_ns: f64,
    pub server_sys_ns: f64,
    /// Share of one core the server and the client used during the window.
    pub server_busy: f64,
    pub client_busy: f64,
    /// Share of the window a green server's worker spent with nothing to run: spinning (which
    /// is in `server_busy`) or asleep. Averaged over its workers (it runs one: it is pinned
    /// to one CPU).
    pub server_idle: Option<f64>,
    /// Share of one core that other processes took on the client's and the server's CPUs.
    pub others_busy: f64,
    /// Server with every connection open (at the start of the window, after the warm-up), and
    /// idle, before the first connection.
    pub loaded: ProcSample,
    pub idle: ProcSample,
    pub connect_all: Duration,
}

/// A server process, killed and reaped when dropped.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    /// A green server's pipes, to ask for its idle time.
    idle: Option<Arc<Mutex<IdleQuery>>>,
}

impl ServerProcess {
    fn start(kind: ServerKind, cpu: Option<usize>, buffer: usize) -> io::Result<ServerProcess> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["--serve", kind.name(), "--port", "0", "--buffer", &buffer.to_string()]);
        if let Some(cpu) = cpu {
            command.args(["--cpu", &cpu.to_string()]);
        }
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()?;
        let (ask, stdout) =
            (child.stdin.take().expect("stdin is piped"), child.stdout.take().expect("stdout is piped"));
        // From here on, dropping `server` kills the child on every path.
        let mut server = ServerProcess { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)), idle: None };
        let mut line = String::new();
        let mut answers = BufReader::new(stdout);
        answers.read_line(&mut line)?;
        let port = line.trim().strip_prefix("port ").and_then(|p| p.parse::<u16>().ok());
        match port {
            Some(port) => {
                server.addr.set_port(port);
                if kind == ServerKind::Green {
                    server.idle = Some(Arc::new(Mutex::new(IdleQuery { ask, answers })));
                }
                Ok(server)
            }
            None => {
                let status = server.child.wait()?;
                Err(io::Error::other(format!("the {} server did not start ({status})", kind.name())))
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn measure(kind: ServerKind, conns: usize, options: &Options, cpus: &Placement) -> io::Result<Outcome> {
    let timing = &options.timing;
    let server = ServerProcess::start(kind, cpus.server, options.buffer)?;
    let idle = ProcSample::read(server.pid())?;
    let cpus_used = cpus.client.zip(cpus.server).map(|(c, s)| [c, s]);
    let sampler = Sampler { pid: server.pid(), cpus: cpus_used, idle: server.idle.clone() };
    let load = match options.client {
        ClientKind::Green => client_green::drive(server.addr, conns, timing, sampler)?,
        ClientKind::Std => client_std::drive(server.addr, conns, timing, sampler)?,
    };
    drop(server);
    let (first, last) = (load.first, load.last);

    let mut latencies = load.latencies;
    latencies.sort_unstable();
    let messages = latencies.len().max(1) as f64;
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        Duration::from_nanos(latencies.get(i).copied().unwrap_or(0))
    };
    // Rates over the window as counted; CPU shares over the time between the two readings.
    let sampled = last.at.saturating_duration_since(first.at).as_secs_f64().max(1e-3);
    let client_cpu = last.client_cpu.saturating_sub(first.client_cpu);
    let server_user = last.server.user.saturating_sub(first.server.user);
    let server_sys = last.server.system.saturating_sub(first.server.system);
    Ok(Outcome {
        msgs_per_sec: latencies.len() as f64 / timing.window.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        p999: at(0.999),
        server_user_ns: server_user.as_nanos() as f64 / messages,
        server_sys_ns: server_sys.as_nanos() as f64 / messages,
        server_busy: (server_user + server_sys).as_secs_f64() / sampled,
        client_busy: client_cpu.as_secs_f64() / sampled,
        // Over the server's own interval between its answers, per worker.
        server_idle: first.server_idle.zip(last.server_idle).map(|(first, last)| {
            let interval = last.at.saturating_sub(first.at).as_secs_f64().max(1e-3);
            last.idle.saturating_sub(first.idle).as_secs_f64() / interval / f64::from(last.workers.max(1))
        }),
        others_busy: (last.cpus_busy.saturating_sub(first.cpus_busy).as_secs_f64()
            - (server_user + server_sys + client_cpu).as_secs_f64())
        .max(0.0)
            / sampled,
        loaded: first.server,
        idle,
        connect_all: load.connect_all,
    })
}
