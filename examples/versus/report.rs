//! Medians of the repetitions, the table, and the verdicts against the targets of issue 6.

use std::fmt::Write as _;
use std::time::Duration;

use super::args::ServerKind;
use super::run::Outcome;
use crate::KERNEL_STACK_BYTES;

/// A share of one core from which a process counts as saturated. A run whose client is
/// saturated while its server is not is client-bound: the server may have had more to give.
/// With both saturated, the server's figure is its own limit. For a green server, what counts
/// is the share of the window its worker had work, not its CPU time: the worker spins while
/// it waits, which the OS counts as busy.
const SATURATED: f64 = 0.90;

/// A saturated client whose server worked this much less of the window than the client did is
/// the bound too: the server waited for it (a green server idle 7% beside a client at 99%).
const CLIENT_AHEAD: f64 = 0.05;

/// Other processes that took this share of a core from the client's and the server's CPUs
/// during a window disturbed it.
const DISTURBED: f64 = 0.10;

/// The targets of issue 6: at (connections, green msgs/s ÷ threads msgs/s).
const THROUGHPUT_TARGETS: [(usize, f64); 2] = [(1000, 2.0), (10_000, 1.8)];
/// Server memory per connection, threads ÷ green: RSS plus kernel stacks, and RSS alone.
const MEMORY_TARGET: f64 = 3.0;
const RSS_TARGET: f64 = 2.0;

/// The medians of one server at one connection count.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub server: ServerKind,
    pub conns: usize,
    pub runs: usize,
    pub msgs_per_sec: f64,
    pub msgs_min: f64,
    pub msgs_max: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub user_ns: f64,
    pub sys_ns: f64,
    pub server_busy: f64,
    /// A green server's idle share of the window (inside `server_busy` where it spun).
    pub server_idle: Option<f64>,
    pub client_busy: f64,
    pub others_busy: f64,
    /// Server RSS and kernel stacks with every connection open, bytes.
    pub rss: f64,
    pub kernel_stacks: f64,
    pub threads: f64,
    /// Growth from the idle server, per connection: RSS plus kernel stacks, and RSS alone.
    pub memory_per_conn: f64,
    pub rss_per_conn: f64,
    /// Page tables per connection, the same way (not in RSS, not in the targets).
    pub page_tables_per_conn: f64,
    pub connect_all: Duration,
}

pub struct Report {
    servers: Vec<ServerKind>,
    points: Vec<(ServerKind, usize, Vec<Outcome>)>,
}

impl Report {
    pub fn new(servers: &[ServerKind]) -> Report {
        Report { servers: servers.to_vec(), points: Vec::new() }
    }

    pub fn add(&mut self, server: ServerKind, conns: usize, outcome: Outcome) {
        match self.points.iter_mut().find(|(s, c, _)| *s == server && *c == conns) {
            Some((_, _, runs)) => runs.push(outcome),
            None => self.points.push((server, conns, vec![outcome])),
        }
    }

    pub fn servers(&self) -> &[ServerKind] {
        &self.servers
    }

    /// Every point, by connection count, then in the order the servers were given.
    pub fn summaries(&self) -> Vec<Summary> {
        let mut all: Vec<Summary> = self.points.iter().map(|(s, c, runs)| summarize(*s, *c, runs)).collect();
        let rank = |s: ServerKind| self.servers.iter().position(|x| *x == s);
        all.sort_by_key(|s| (s.conns, rank(s.server)));
        all
    }

    fn find(&self, server: ServerKind, conns: usize) -> Option<Summary> {
        self.summaries().into_iter().find(|s| s.server == server && s.conns == conns)
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| server | conns | msgs/s | (min–max) | p50 | p99 | p99.9 | server CPU/msg user + sys | server CPU | client CPU \
             | others | server RSS | + kernel stacks | memory/conn | RSS/conn | page tables/conn | threads | connect all |"
        );
        let _ =
            writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for s in self.summaries() {
            let client = if client_bound(&s) {
                format!("{} client-bound", percent(s.client_busy))
            } else {
                percent(s.client_busy)
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {}–{} | {} | {} | {} | {:.0} + {:.0} ns | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} |",
                s.server.name(),
                thousands(s.conns as f64),
                thousands(s.msgs_per_sec),
                thousands(s.msgs_min),
                thousands(s.msgs_max),
                duration(s.p50),
                duration(s.p99),
                duration(s.p999),
                s.user_ns,
                s.sys_ns,
                server_cpu(&s),
                client,
                percent(s.others_busy),
                mib(s.rss),
                mib(s.kernel_stacks),
                kib(s.memory_per_conn),
                kib(s.rss_per_conn),
                kib(s.page_tables_per_conn),
                s.threads,
                duration(s.connect_all),
            );
        }
        let runs = self.points.first().map_or(0, |(_, _, r)| r.len());
        let _ = write!(
            out,
            "\nmedians of {runs} run(s). memory/conn = (RSS + {} KiB kernel stack per thread) with all connections \
             open, less the idle server, per connection; page tables (VmPTE) are not in RSS and come on top. CPU \
             shares are of one core; others: what other processes (not the kernel's softirq threads) took of the \
             client's and the server's CPUs during the window; idle: the time green's worker had nothing to run \
             (asked of the server; it spins a while before it sleeps, and the spinning counts as CPU time); \
             client-bound: the client used {}+ of its core and the server less than that, or {} points less than \
             the client (green's: had work for less of the window), so the server may have had more to give.",
            KERNEL_STACK_BYTES / 1024,
            percent(SATURATED),
            (CLIENT_AHEAD * 100.0).round(),
        );
        out
    }

    /// Green against threads at the counts the issue sets targets for.
    pub fn verdicts(&self) -> String {
        let mut out = String::from("targets (issue 6), green against threads measured in the same run:\n");
        let mut any = false;
        for (conns, target) in THROUGHPUT_TARGETS {
            let (Some(g), Some(t)) = (self.find(ServerKind::Green, conns), self.find(ServerKind::Threads, conns))
            else {
                continue;
            };
            any = true;
            let throughput = g.msgs_per_sec / t.msgs_per_sec;
            let memory = t.memory_per_conn / g.memory_per_conn;
            let rss = t.rss_per_conn / g.rss_per_conn;
            let _ = writeln!(
                out,
                "  {} conns: msgs/s {:.2}x (target >= {target}x: {}); p99 {} vs {} (lower: {}); \
                 memory/conn {:.1}x lower (target >= {MEMORY_TARGET}x: {}); RSS/conn {:.1}x lower (target >= {RSS_TARGET}x: {})",
                thousands(conns as f64),
                throughput,
                verdict(throughput >= target),
                duration(g.p99),
                duration(t.p99),
                verdict(g.p99 < t.p99),
                memory,
                verdict(memory >= MEMORY_TARGET),
                rss,
                verdict(rss >= RSS_TARGET),
            );
            if client_bound(&g) {
                let _ = writeln!(
                    out,
                    "    (green's run was client-bound: the client used {} of its core, green's server {}; the \
                     throughput ratio is a lower bound; `--client std` drives the servers with a cheaper client)",
                    percent(g.client_busy),
                    server_cpu(&g)
                );
            }
        }
        if !any {
            out.push_str(
                "  (not measured: the targets are set at 1,000 and 10,000 connections for green and threads)\n",
            );
        }
        let disturbed: Vec<String> = self
            .summaries()
            .iter()
            .filter(|s| s.others_busy >= DISTURBED)
            .map(|s| format!("{} at {} ({})", s.server.name(), thousands(s.conns as f64), percent(s.others_busy)))
            .collect();
        if !disturbed.is_empty() {
            let _ = writeln!(
                out,
                "note: other processes took CPU time from the client and the server (median of the runs) for: {}. \
                 Those figures are disturbed (every wakeup may wait behind another process); rerun on a quieter \
                 machine.",
                disturbed.join(", ")
            );
        }
        out
    }
}

fn client_bound(s: &Summary) -> bool {
    let working = s.server_idle.map_or(s.server_busy, |idle| s.server_busy.min(1.0 - idle));
    s.client_busy >= SATURATED && (working < SATURATED || working + CLIENT_AHEAD <= s.client_busy)
}

/// The server's share of its core, with a green server's idle share beside it.
fn server_cpu(s: &Summary) -> String {
    match s.server_idle {
        Some(idle) => format!("{} (idle {})", percent(s.server_busy), percent(idle)),
        None => percent(s.server_busy),
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn summarize(server: ServerKind, conns: usize, runs: &[Outcome]) -> Summary {
    let med = |f: &dyn Fn(&Outcome) -> f64| median(runs.iter().map(f).collect());
    let secs = |d: Duration| d.as_secs_f64();
    let stack = KERNEL_STACK_BYTES as f64;
    let msgs: Vec<f64> = runs.iter().map(|o| o.msgs_per_sec).collect();
    Summary {
        server,
        conns,
        runs: runs.len(),
        msgs_per_sec: median(msgs.clone()),
        msgs_min: msgs.iter().copied().fold(f64::INFINITY, f64::min),
        msgs_max: msgs.iter().copied().fold(0.0, f64::max),
        p50: Duration::from_secs_f64(med(&|o| secs(o.p50))),
        p99: Duration::from_secs_f64(med(&|o| secs(o.p99))),
        p999: Duration::from_secs_f64(med(&|o| secs(o.p999))),
        user_ns: med(&|o| o.server_user_ns),
        sys_ns: med(&|o| o.server_sys_ns),
        server_busy: med(&|o| o.server_busy),
        server_idle: runs.iter().map(|o| o.server_idle).collect::<Option<Vec<f64>>>().map(median),
        client_busy: med(&|o| o.client_busy),
        others_busy: med(&|o| o.others_busy),
        rss: med(&|o| o.loaded.rss as f64),
        kernel_stacks: med(&|o| o.loaded.threads as f64 * stack),
        threads: med(&|o| o.loaded.threads as f64),
        memory_per_conn: med(&|o| {
            let loaded = o.loaded.rss as f64 + o.loaded.threads as f64 * stack;
            let idle = o.idle.rss as f64 + o.idle.threads as f64 * stack;
            (loaded - idle) / conns as f64
        }),
        rss_per_conn: med(&|o| (o.loaded.rss as f64 - o.idle.rss as f64) / conns as f64),
        page_tables_per_conn: med(&|o| (o.loaded.page_tables as f64 - o.idle.page_tables as f64) / conns as f64),
        connect_all: Duration::from_secs_f64(med(&|o| secs(o.connect_all))),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

pub fn duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    match us {
        us if us < 1000.0 => format!("{us:.0} µs"),
        us if us < 1e6 => format!("{:.1} ms", us / 1e3),
        us => format!("{:.2} s", us / 1e6),
    }
}

pub fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percent(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

fn mib(bytes: f64) -> String {
    if bytes < 1024.0 * 1024.0 { kib(bytes) } else { format!("{:.1} MiB", bytes / (1024.0 * 1024.0)) }
}

fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}
