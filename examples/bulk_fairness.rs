//! A small request beside bulk transfers: one worker, loopback sockets, no client process.
//!
//! ```sh
//! cargo run --release --example bulk_fairness                # 0, 2 and 4 bulk transfers, 2 s each
//! cargo run --release --example bulk_fairness -- --secs 5 --bulk 1,8
//! ```
//!
//! Each bulk transfer is a pair of green threads on the runtime's only worker: one writes
//! 64 KiB at a time into a loopback TCP connection as fast as it can, the other reads it in
//! 64 KiB reads, so both are almost always ready. Beside them, one more connection ping-pongs
//! 64-byte messages (its client and its echo are green threads on the same worker), and the
//! example reports the round trips made, their p50 and p99, and the bulk bytes moved per
//! second. Every stream read and write spends ticks of its green thread's budget by the bytes it
//! moves, so a bulk transfer yields after tens of microseconds of copying, not after 64 calls of
//! 64 KiB.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use green::net::{TcpListener, TcpStream};

const USAGE: &str = "usage: bulk_fairness [--secs S] [--bulk N,N,...]";
const CHUNK: usize = 64 * 1024;

/// Both ends of a new loopback connection.
fn connection() -> std::io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    Ok((client, server))
}

/// One point: `bulks` transfers beside the ping-pong for `window`.
fn measure(bulks: usize, window: Duration) -> std::io::Result<()> {
    let rt = green::Runtime::builder().workers(1).build()?;
    rt.block_on(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let moved = Arc::new(AtomicU64::new(0));
        let mut transfers = Vec::new();
        for _ in 0..bulks {
            let (mut writer, mut reader) = connection()?;
            let stop_writing = stop.clone();
            transfers.push(green::spawn(move || {
                let chunk = vec![7u8; CHUNK];
                while !stop_writing.load(Ordering::Relaxed) && writer.write_all(&chunk).is_ok() {}
            }));
            let (stop_reading, moved) = (stop.clone(), moved.clone());
            transfers.push(green::spawn(move || {
                let mut chunk = vec![0u8; CHUNK];
                while !stop_reading.load(Ordering::Relaxed) {
                    match reader.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => moved.fetch_add(n as u64, Ordering::Relaxed),
                    };
                }
            }));
        }
        let (mut client, mut server) = connection()?;
        let echo = green::spawn(move || {
            let mut message = [0u8; 64];
            while server.read_exact(&mut message).is_ok() && server.write_all(&message).is_ok() {}
        });
        let start = Instant::now();
        let mut round_trips = Vec::new();
        let (request, mut reply) = ([1u8; 64], [0u8; 64]);
        // At least one round trip, however short the window: the percentiles need one.
        loop {
            let sent = Instant::now();
            client.write_all(&request)?;
            client.read_exact(&mut reply)?;
            assert_eq!(reply, request, "the echo differs from the request");
            round_trips.push(sent.elapsed());
            if start.elapsed() >= window {
                break;
            }
        }
        let elapsed = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        drop(client);
        for transfer in transfers {
            transfer.cancel();
            let _ = transfer.join();
        }
        let _ = echo.join();
        round_trips.sort();
        let at = |q: usize| round_trips[(round_trips.len() - 1) * q / 100].as_secs_f64() * 1e6;
        println!(
            "| {bulks} | {} | {:.0} µs | {:.0} µs | {:.0} |",
            round_trips.len(),
            at(50),
            at(99),
            moved.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64() / 1e6
        );
        Ok(())
    })
}

fn main() -> std::process::ExitCode {
    let (mut window, mut bulks) = (Duration::from_secs(2), vec![0, 2, 4]);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let parsed = match (flag.as_str(), args.next()) {
            ("--secs", Some(v)) => {
                v.parse::<f64>().ok().filter(|s| *s > 0.0).map(|s| window = Duration::from_secs_f64(s))
            }
            ("--bulk", Some(v)) => {
                v.split(',').map(str::parse).collect::<Result<Vec<usize>, _>>().ok().map(|b| bulks = b)
            }
            _ => None,
        };
        if parsed.is_none() {
            eprintln!("{USAGE}");
            return std::process::ExitCode::from(2);
        }
    }
    println!("one worker; 64-byte ping-pong beside bulk transfers of {} KiB writes, {window:?} each", CHUNK / 1024);
    println!("| bulk transfers | round trips | p50 | p99 | bulk MB/s |");
    println!("|---:|---:|---:|---:|---:|");
    for bulk in bulks {
        if let Err(e) = measure(bulk, window) {
            eprintln!("bulk_fairness: {bulk} transfers: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    std::process::ExitCode::SUCCESS
}
