//! The chart: msgs/s and p99 latency against connections, one line per server, as a
//! hand-written SVG (two panels of lines and points need no plotting crate).

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use super::args::{ClientKind, Options, ServerKind};
use super::report::{Report, Summary, duration, thousands};
use super::sys::Placement;

const WIDTH: f64 = 980.0;
const HEIGHT: f64 = 430.0;
/// Each panel's plot area: left edge, width; all panels share the top and the height.
const PANELS: [(f64, f64); 2] = [(80.0, 380.0), (570.0, 380.0)];
const TOP: f64 = 90.0;
const PLOT_HEIGHT: f64 = 270.0;

fn colour(server: ServerKind) -> &'static str {
    match server {
        ServerKind::Green => "#2a9d4a",
        ServerKind::Threads => "#d1495b",
        ServerKind::Tokio => "#5b5f97",
        ServerKind::TokioCt => "#e0a030",
    }
}

/// `target/versus.svg` of the target directory this example was built in.
pub fn default_path() -> PathBuf {
    // target/<profile>/examples/versus: three levels up is the target directory.
    let target = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()));
    target.unwrap_or_else(|| PathBuf::from("target")).join("versus.svg")
}

pub fn write(path: &Path, report: &Report, cpus: &Placement, options: &Options) -> io::Result<()> {
    let summaries = report.summaries();
    let mut conns: Vec<usize> = summaries.iter().map(|s| s.conns).collect();
    conns.dedup();
    let runs = summaries.first().map_or(0, |s| s.runs);
    let pinned = if cpus.server.is_some() { "server pinned to one core, client to another" } else { "one CPU, shared" };
    let client = match options.client {
        ClientKind::Green => "green client",
        ClientKind::Std => "std epoll client",
    };

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="24" font-size="16" text-anchor="middle">64-byte echo over loopback: green against one thread per connection</text>"#,
        WIDTH / 2.0
    );
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="44" fill="#555" text-anchor="middle">{pinned}; {client}; read buffer {} B; median of {runs} run(s) per point ({})</text>"##,
        WIDTH / 2.0,
        options.buffer,
        options.mode
    );
    legend(&mut svg, report.servers());

    let x = XAxis::new(&conns);
    let max_msgs = summaries.iter().map(|s| s.msgs_per_sec).fold(0.0, f64::max);
    let linear = Linear::new(max_msgs);
    let p99s: Vec<f64> = summaries.iter().map(|s| s.p99.as_secs_f64() * 1e3).collect();
    let log = Log::new(&p99s);

    let (left, width) = PANELS[0];
    frame(&mut svg, left, width, "messages per second", &x);
    for (value, label) in linear.ticks() {
        y_tick(&mut svg, left, width, linear.y(value), &label);
    }
    let (left2, width2) = PANELS[1];
    frame(&mut svg, left2, width2, "p99 round trip (log scale)", &x);
    for (value, label) in log.ticks() {
        y_tick(&mut svg, left2, width2, log.y(value), &label);
    }

    for &server in report.servers() {
        let points: Vec<&Summary> = summaries.iter().filter(|s| s.server == server).collect();
        let c = colour(server);
        let series = |panel: (f64, f64), y: &dyn Fn(&Summary) -> f64, label: &dyn Fn(&Summary) -> String| {
            let mut out = String::new();
            let coords: Vec<(f64, f64)> = points.iter().map(|s| (x.x(panel, s.conns), y(s))).collect();
            let list: Vec<String> = coords.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
            let _ =
                writeln!(out, r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#, list.join(" "));
            for ((a, b), s) in coords.iter().zip(&points) {
                let _ = writeln!(out, r#"<circle cx="{a:.1}" cy="{b:.1}" r="4" fill="{c}"/>"#);
                let _ = writeln!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}" fill="{c}" font-size="10" text-anchor="middle">{}</text>"#,
                    a,
                    b - 8.0,
                    label(s)
                );
            }
            out
        };
        svg.push_str(&series(PANELS[0], &|s| linear.y(s.msgs_per_sec), &|s| compact(s.msgs_per_sec)));
        svg.push_str(&series(PANELS[1], &|s| log.y(s.p99.as_secs_f64() * 1e3), &|s| duration(s.p99)));
    }
    svg.push_str("</svg>\n");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, svg)
}

fn legend(svg: &mut String, servers: &[ServerKind]) {
    let mut x = WIDTH / 2.0 - 75.0 * servers.len() as f64;
    for &server in servers {
        let name = match server {
            ServerKind::Green => "green",
            ServerKind::Threads => "thread per connection",
            ServerKind::Tokio => "tokio",
            ServerKind::TokioCt => "tokio, current thread",
        };
        let _ = writeln!(svg, r#"<rect x="{x}" y="58" width="14" height="4" fill="{}"/>"#, colour(server));
        let _ = writeln!(svg, r#"<text x="{}" y="64">{name}</text>"#, x + 20.0);
        x += 170.0;
    }
}

/// The axes and the x ticks of one panel.
fn frame(svg: &mut String, left: f64, width: f64, title: &str, x: &XAxis) {
    let bottom = TOP + PLOT_HEIGHT;
    let _ = writeln!(
        svg,
        r##"<rect x="{left}" y="{TOP}" width="{width}" height="{PLOT_HEIGHT}" fill="none" stroke="#999"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" font-size="13" text-anchor="middle">{title}</text>"#,
        left + width / 2.0,
        TOP - 8.0
    );
    for &conns in &x.ticks {
        let at = x.x((left, width), conns);
        let _ =
            writeln!(svg, r##"<line x1="{at:.1}" y1="{bottom}" x2="{at:.1}" y2="{}" stroke="#999"/>"##, bottom + 5.0);
        let _ = writeln!(
            svg,
            r#"<text x="{at:.1}" y="{}" text-anchor="middle">{}</text>"#,
            bottom + 20.0,
            thousands(conns as f64)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">connections (log scale)</text>"#,
        left + width / 2.0,
        bottom + 40.0
    );
}

fn y_tick(svg: &mut String, left: f64, width: f64, y: f64, label: &str) {
    let _ = writeln!(svg, r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/>"##, left + width);
    let _ = writeln!(svg, r#"<text x="{}" y="{:.1}" text-anchor="end">{label}</text>"#, left - 6.0, y + 4.0);
}

/// Connections on a log scale, with a margin on both sides.
struct XAxis {
    ticks: Vec<usize>,
    low: f64,
    high: f64,
}

impl XAxis {
    fn new(conns: &[usize]) -> XAxis {
        let logs: Vec<f64> = conns.iter().map(|&c| (c.max(1) as f64).log10()).collect();
        let low = logs.iter().copied().fold(f64::INFINITY, f64::min);
        let high = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        XAxis { ticks: conns.to_vec(), low: low - 0.3, high: high + 0.3 }
    }

    fn x(&self, (left, width): (f64, f64), conns: usize) -> f64 {
        left + width * ((conns.max(1) as f64).log10() - self.low) / (self.high - self.low)
    }
}

/// A linear y axis from 0 to a round number above `max`.
struct Linear {
    step: f64,
    top: f64,
}

impl Linear {
    fn new(max: f64) -> Linear {
        let rough = (max.max(1.0) * 1.15) / 5.0;
        let magnitude = 10f64.powf(rough.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= rough).unwrap_or(rough);
        Linear { step, top: (max.max(1.0) * 1.15 / step).ceil() * step }
    }

    fn y(&self, value: f64) -> f64 {
        TOP + PLOT_HEIGHT * (1.0 - value / self.top)
    }

    fn ticks(&self) -> Vec<(f64, String)> {
        let n = (self.top / self.step).round() as usize;
        (0..=n).map(|i| i as f64 * self.step).map(|v| (v, compact(v))).collect()
    }
}

/// A log y axis of milliseconds, whole decades.
struct Log {
    low: f64,
    high: f64,
}

impl Log {
    fn new(ms: &[f64]) -> Log {
        let positive = ms.iter().copied().filter(|v| *v > 0.0);
        let min = positive.clone().fold(f64::INFINITY, f64::min);
        let max = positive.fold(0.0, f64::max);
        if !min.is_finite() {
            return Log { low: -1.0, high: 3.0 };
        }
        let low = min.log10().floor();
        let high = max.log10().ceil().max(low + 1.0);
        Log { low, high }
    }

    fn y(&self, ms: f64) -> f64 {
        let v = ms.max(10f64.powf(self.low)).log10();
        TOP + PLOT_HEIGHT * (1.0 - (v - self.low) / (self.high - self.low))
    }

    fn ticks(&self) -> Vec<(f64, String)> {
        (self.low as i32..=self.high as i32)
            .map(|e| {
                let ms = 10f64.powi(e);
                let label = match e {
                    3.. => format!("{:.0} s", ms / 1e3),
                    0.. => format!("{ms:.0} ms"),
                    _ => format!("{:.0} µs", ms * 1e3),
                };
                (ms, label)
            })
            .collect()
    }
}

/// 12,345 as "12.3k", 1,234,567 as "1.23M".
fn compact(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{:.2}M", x / 1e6),
        x if x >= 1e4 => format!("{:.0}k", x / 1e3),
        x if x >= 1e3 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.0}"),
    }
}
