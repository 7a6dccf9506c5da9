//! What happens to green threads still waiting when their runtime shuts down, or when they are
//! cancelled, in a build whose panics abort:
//!
//! ```text
//! cargo run --profile abort --example panic_abort
//! ```
//!
//! (`--profile abort` is the workspace's `dev` profile with `panic = "abort"`.) Nothing can
//! unwind there, so a cancellation cannot end a green thread the way it does in an ordinary
//! build. Instead, each wait that can fail (a socket call, a channel's `recv`, a join) fails at
//! once, and a sleep returns, so that the code ends through its own error handling. A socket
//! call that never has to wait fails at its next look, once per budget. A green thread that
//! waits where nothing can fail (an empty `select! {}`) is left, with a warning, when the
//! shutdown times out. The same program in an ordinary build (`cargo run --example
//! panic_abort`) shows the other way: each green thread unwinds from its wait, running its
//! destructors.
//!
//! Each green thread reports how it ended through a guard; the program checks that all of them
//! did (all but the one left behind, with panics that abort), and exits with an error if not.

use std::io::Read;
use std::sync::mpsc;
use std::time::Duration;

/// Sends its green thread's name and how it ended when dropped: `outcome` if the thread got
/// that far, "unwound" if it was dropped by an unwind.
struct Report {
    name: &'static str,
    outcome: Option<String>,
    to: mpsc::Sender<(&'static str, String)>,
}

impl Report {
    fn new(name: &'static str, to: &mpsc::Sender<(&'static str, String)>) -> Report {
        Report { name, outcome: None, to: to.clone() }
    }

    /// The green thread got as far as its end, having seen `outcome`.
    fn ended(&mut self, outcome: String) {
        self.outcome = Some(outcome);
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        let outcome = self.outcome.take().unwrap_or_else(|| "unwound (a cancellation, by unwinding)".to_owned());
        let _ = self.to.send((self.name, outcome));
    }
}

fn main() {
    let build = if cfg!(panic = "abort") { "panic = \"abort\"" } else { "panic = \"unwind\"" };
    println!("a build with {build}");
    let (reports, reported) = mpsc::channel();
    // Kept alive past the runtime, so that the consumer's receive waits until the shutdown.
    let (_keep_sender, messages) = green::sync::mpsc::channel::<u32>();
    // A peer that always has more to send: its reader never has to wait.
    let firehose = std::net::TcpListener::bind("127.0.0.1:0").expect("bind on loopback");
    let firehose_addr = firehose.local_addr().expect("local address");
    let writer = std::thread::spawn(move || {
        let (mut peer, _) = firehose.accept().expect("the bulk reader's connection");
        let chunk = [7u8; 64 * 1024];
        while std::io::Write::write_all(&mut peer, &chunk).is_ok() {}
    });
    // Short: with panics that abort, the empty select! waits on until the shutdown leaves it.
    let runtime = green::Runtime::builder().shutdown_timeout(Duration::from_secs(1)).build().expect("runtime");
    runtime.block_on(|| {
        let listener = green::net::TcpListener::bind("127.0.0.1:0").expect("bind on loopback");
        let addr = listener.local_addr().expect("local address");

        let mut report = Report::new("reader of a silent peer", &reports);
        green::spawn(move || {
            let mut stream = green::net::TcpStream::connect(addr).expect("connect on loopback");
            let got = stream.read(&mut [0u8; 16]);
            report.ended(format!("its read returned {got:?}"));
        });
        let mut report = Report::new("acceptor", &reports);
        green::spawn(move || {
            let (_peer, _) = listener.accept().expect("the reader's connection");
            let got = listener.accept().map(|_| ());
            report.ended(format!("its second accept returned {got:?}"));
        });

        let mut report = Report::new("consumer of a channel", &reports);
        green::spawn(move || {
            let got = messages.recv();
            report.ended(format!("its recv returned {got:?}"));
        });

        let mut report = Report::new("ticker", &reports);
        green::spawn(move || {
            let mut ticks = 0u64;
            while !green::is_cancelled() {
                green::sleep(Duration::from_millis(10));
                ticks += 1;
            }
            report.ended(format!("saw green::is_cancelled() after {ticks} ticks"));
        });

        let mut report = Report::new("joiner of a sleeper", &reports);
        green::spawn(move || {
            let sleeper = green::spawn(|| green::sleep(Duration::from_secs(3600)));
            let got = sleeper.join().map_err(|e| e.to_string());
            report.ended(format!("its join returned {got:?}"));
        });

        let mut report = Report::new("reader of a peer that always has more", &reports);
        green::spawn(move || {
            let mut stream = green::net::TcpStream::connect(firehose_addr).expect("connect on loopback");
            let mut buf = [0u8; 16]; // slower than the peer: never waits
            let mut bytes = 0u64;
            let got = loop {
                match stream.read(&mut buf) {
                    Ok(0) => break Ok(0),
                    Ok(n) => bytes += n as u64,
                    Err(e) => break Err(e),
                }
            };
            report.ended(format!("its read returned {got:?} after {bytes} bytes"));
        });

        let report = Report::new("selector with no arms", &reports);
        green::spawn(move || {
            let _report = report;
            green::select! {}
        });

        // One cancelled while the runtime runs on.
        let (_sender, never) = green::sync::mpsc::channel::<u32>();
        let mut report = Report::new("cancelled by its handle", &reports);
        let cancelled = green::spawn(move || {
            let got = never.recv();
            report.ended(format!("its recv returned {got:?}"));
        });
        green::sleep(Duration::from_millis(50));
        cancelled.cancel();
        let joined = cancelled.join();
        println!("the handle's join after cancel: {:?}", joined.map_err(|e| e.to_string()));
        // Returning now shuts the runtime down with the others still waiting.
    });
    drop(runtime);
    drop(reports);
    // Every green thread that ended has reported by now; one left behind keeps its sender.
    let mut ended: Vec<_> = reported.try_iter().collect();
    ended.sort();
    for (name, outcome) in &ended {
        println!("  {name}: {outcome}");
    }
    const SPAWNED: usize = 8;
    // Where nothing unwinds, the empty select! is left behind, its guard never dropped.
    let expected = if cfg!(panic = "abort") { SPAWNED - 1 } else { SPAWNED };
    if ended.len() != expected {
        eprintln!("panic_abort: {} of {SPAWNED} green threads reported how they ended, not {expected}", ended.len());
        std::process::exit(1);
    }
    // Its reader has closed the connection.
    writer.join().expect("the bulk writer");
}
