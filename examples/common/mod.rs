//! What the echo examples (`echo_bench`, `fairness`) share: pinning to a CPU, and the tokio
//! client's ping-pong on one connection.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes of each request and echo.
pub const MESSAGE: usize = 64;

/// Pins the calling thread to `cpu`, if the machine has it; says so if the kernel refuses.
pub fn pin(cpu: usize) {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) <= cpu {
        return;
    }
    // SAFETY: cpu_set_t is plain old data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit of `set`; `cpu` is below the CPU count, far below
    // CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        eprintln!("note: could not pin to CPU {cpu}: {}", io::Error::last_os_error());
    }
}

/// Sends a request on `stream` and waits for its echo, again and again until `end`, checking
/// each echo; adds to `latencies` the round-trip times (ns) of the rounds that began after
/// `start` and ended by `end`. A round the server has not answered by `end` ends the loop.
///
/// The client should cost as little as it can, so that it measures the servers: one list for
/// all connections (a list each would touch one more cold cache line per message), and one
/// deadline per connection, registered once (a `timeout_at` per round registers a timer and
/// removes it at every round).
pub async fn ping_pong(
    mut stream: tokio::net::TcpStream,
    start: Instant,
    end: Instant,
    latencies: Arc<Mutex<Vec<u64>>>,
) -> io::Result<()> {
    let message = [7u8; MESSAGE];
    let mut back = [0u8; MESSAGE];
    let deadline = tokio::time::sleep_until(end.into());
    tokio::pin!(deadline);
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let round = async {
            stream.write_all(&message).await?;
            stream.read_exact(&mut back).await
        };
        tokio::select! {
            biased;
            answered = round => {
                answered?;
            }
            () = &mut deadline => break, // not answered before the end
        }
        assert_eq!(back, message, "echo mismatch");
        let done = Instant::now();
        if sent >= start && done <= end {
            latencies.lock().unwrap_or_else(|e| e.into_inner()).push((done - sent).as_nanos() as u64);
        }
    }
    Ok(())
}

/// Every connection's [`ping_pong`], each a task of the calling tokio runtime, sharing one
/// list of round-trip times.
pub struct PingPongs {
    tasks: Vec<tokio::task::JoinHandle<io::Result<()>>>,
    latencies: Arc<Mutex<Vec<u64>>>,
}

impl PingPongs {
    /// Starts a [`ping_pong`] on each of `streams`. Call from inside a tokio runtime.
    pub fn spawn(streams: Vec<tokio::net::TcpStream>, start: Instant, end: Instant) -> PingPongs {
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let tasks =
            streams.into_iter().map(|stream| tokio::spawn(ping_pong(stream, start, end, latencies.clone()))).collect();
        PingPongs { tasks, latencies }
    }

    /// Waits for every connection; returns the round-trip times, or the first error.
    pub async fn join(self) -> io::Result<Vec<u64>> {
        for task in self.tasks {
            task.await.expect("a client task panicked")?;
        }
        Ok(std::mem::take(&mut *self.latencies.lock().unwrap_or_else(|e| e.into_inner())))
    }
}
