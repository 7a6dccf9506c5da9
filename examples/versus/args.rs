//! Command line: the comparison's options, or the hidden server mode the comparison starts
//! itself in.

use std::time::Duration;

use super::server::{READ_BUFFER, READ_BUFFERS};

pub const USAGE: &str = "\
usage: versus [--quick | --full] [--conns 100,1000,10000] [--client green|std] [--with tokio|tokio-ct]
              [--servers green,threads,tokio,tokio-ct] [--reps N] [--secs S] [--warmup S] [--buffer BYTES]
              [--svg PATH]

  --quick         one repetition of 1 s per point (under 30 s)
  --full          5 repetitions of 4 s per point
  --conns LIST    connection counts, comma-separated (default 100,1000,10000)
  --client KIND   load generator: green (default) or std (one epoll loop on one thread, no green)
  --with tokio    also measure the same echo service on tokio (multi-thread runtime, one worker);
                  --with tokio-ct: on tokio's current-thread runtime
  --servers LIST  which servers to run, comma-separated (default green,threads)
  --reps N        repetitions per point (the median is shown)
  --secs S        length of each measurement window
  --warmup S      warm-up before each window
  --buffer BYTES  each server handler's read buffer, on its stack: 1024 (default), 4096 or 16384
  --svg PATH      where to write the chart (default: target/versus.svg)";

/// Which server a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// `green::net` and a green thread per connection.
    Green,
    /// `std::net` and a `std::thread` per connection.
    Threads,
    /// tokio's multi-thread runtime, a task per connection (`--with tokio`).
    Tokio,
    /// tokio's current-thread runtime, a task per connection (`--with tokio-ct`).
    TokioCt,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Green => "green",
            ServerKind::Threads => "threads",
            ServerKind::Tokio => "tokio",
            ServerKind::TokioCt => "tokio-ct",
        }
    }

    fn parse(s: &str) -> Option<ServerKind> {
        [ServerKind::Green, ServerKind::Threads, ServerKind::Tokio, ServerKind::TokioCt]
            .into_iter()
            .find(|k| k.name() == s)
    }
}

/// Which load generator drives the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// One green worker, a green thread per connection.
    Green,
    /// One epoll loop on one plain thread, through `libc`: does not use `green` at all.
    Std,
}

impl ClientKind {
    pub fn describe(self) -> &'static str {
        match self {
            ClientKind::Green => "green (one worker, a green thread per connection)",
            ClientKind::Std => "std (one epoll loop on one thread, through libc; no green)",
        }
    }
}

/// How long and how often each point is measured.
#[derive(Debug, Clone)]
pub struct Timing {
    pub reps: usize,
    pub warmup: Duration,
    pub window: Duration,
}

/// The comparison's options.
#[derive(Debug, Clone)]
pub struct Options {
    pub conns: Vec<usize>,
    pub servers: Vec<ServerKind>,
    pub client: ClientKind,
    pub timing: Timing,
    pub svg: Option<std::path::PathBuf>,
    /// The servers' read buffer, bytes.
    pub buffer: usize,
    /// `--quick`, `--full` or the default, for the chart's caption.
    pub mode: &'static str,
}

/// The hidden server mode.
#[derive(Debug, Clone, Copy)]
pub struct Serve {
    pub kind: ServerKind,
    pub port: u16,
    pub cpu: Option<usize>,
    pub buffer: usize,
}

pub enum Command {
    Compare(Options),
    Serve(Serve),
    /// `--help`: print [`USAGE`] to stdout and exit successfully.
    Help,
}

pub fn parse(args: impl Iterator<Item = String>) -> Result<Command, String> {
    let args: Vec<String> = args.collect();
    if args.first().is_some_and(|a| a == "--serve") {
        return parse_serve(&args[1..]).map(Command::Serve);
    }
    let mut options = Options {
        conns: vec![100, 1000, 10_000],
        servers: vec![ServerKind::Green, ServerKind::Threads],
        client: ClientKind::Green,
        timing: Timing { reps: 3, warmup: Duration::from_millis(500), window: Duration::from_secs(2) },
        svg: None,
        buffer: READ_BUFFER,
        mode: "default",
    };
    let (mut reps, mut secs, mut warmup) = (None, None, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--quick" => {
                options.mode = "--quick";
                options.timing = Timing { reps: 1, warmup: Duration::from_millis(300), window: Duration::from_secs(1) };
            }
            "--full" => {
                options.mode = "--full";
                options.timing = Timing { reps: 5, warmup: Duration::from_secs(1), window: Duration::from_secs(4) };
            }
            "--conns" => options.conns = parse_list(value()?)?,
            "--client" => {
                options.client = match value()?.as_str() {
                    "green" => ClientKind::Green,
                    "std" => ClientKind::Std,
                    other => return Err(format!("--client {other}: expected green or std\n{USAGE}")),
                }
            }
            "--with" => {
                let v = value()?;
                let kind = ServerKind::parse(v).filter(|k| matches!(k, ServerKind::Tokio | ServerKind::TokioCt)).ok_or_else(|| {
                    format!(
                        "--with {v}: only tokio and tokio-ct are available (may is not a dependency: see docs/benchmarks.md)\n{USAGE}"
                    )
                })?;
                if !options.servers.contains(&kind) {
                    options.servers.push(kind);
                }
            }
            "--servers" => {
                let v = value()?;
                options.servers = v
                    .split(',')
                    .map(|name| {
                        ServerKind::parse(name).ok_or_else(|| format!("--servers: unknown server {name}\n{USAGE}"))
                    })
                    .collect::<Result<_, _>>()?;
                options.servers.dedup();
            }
            "--reps" => reps = Some(parse_number(flag, value()?)?),
            "--secs" => secs = Some(parse_secs(flag, value()?)?),
            "--warmup" => warmup = Some(parse_secs(flag, value()?)?),
            "--svg" => options.svg = Some(value()?.into()),
            "--buffer" => {
                let v = value()?;
                options.buffer = parse_number(flag, v)?;
                if !READ_BUFFERS.contains(&options.buffer) {
                    return Err(format!("--buffer {v}: expected one of {READ_BUFFERS:?}\n{USAGE}"));
                }
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    // Explicit values win over --quick / --full, whatever the order.
    if let Some(reps) = reps {
        if reps == 0 {
            return Err(format!("--reps 0: at least one repetition is needed\n{USAGE}"));
        }
        options.timing.reps = reps;
    }
    if let Some(secs) = secs {
        options.timing.window = secs;
    }
    if let Some(warmup) = warmup {
        options.timing.warmup = warmup;
    }
    if options.timing.window.is_zero() {
        return Err(format!("--secs must be more than 0\n{USAGE}"));
    }
    Ok(Command::Compare(options))
}

fn parse_serve(args: &[String]) -> Result<Serve, String> {
    let kind =
        args.first().and_then(|k| ServerKind::parse(k)).ok_or("--serve needs green, threads, tokio or tokio-ct")?;
    let mut serve = Serve { kind, port: 0, cpu: None, buffer: READ_BUFFER };
    let mut it = args[1..].iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => serve.port = value.parse().map_err(|e| format!("--port {value}: {e}"))?,
            "--cpu" => serve.cpu = Some(parse_number(flag, value)?),
            "--buffer" => serve.buffer = parse_number(flag, value)?,
            other => return Err(format!("unknown server argument {other}")),
        }
    }
    Ok(serve)
}

fn parse_list(value: &str) -> Result<Vec<usize>, String> {
    let mut list = Vec::new();
    for item in value.split(',').filter(|s| !s.is_empty()) {
        let n: usize = item.replace('_', "").parse().map_err(|e| format!("--conns {item}: {e}"))?;
        if n == 0 {
            return Err("--conns: every count must be at least 1".to_owned());
        }
        list.push(n);
    }
    if list.is_empty() {
        return Err(format!("--conns needs at least one count\n{USAGE}"));
    }
    list.sort_unstable();
    list.dedup();
    Ok(list)
}

fn parse_number(flag: &str, value: &str) -> Result<usize, String> {
    value.parse().map_err(|e| format!("{flag} {value}: {e}"))
}

fn parse_secs(flag: &str, value: &str) -> Result<Duration, String> {
    let secs: f64 = value.parse().map_err(|e| format!("{flag} {value}: {e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{flag} {value}: {e}"))
}
