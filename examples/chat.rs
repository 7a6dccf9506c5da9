//! A chat server: every line a client sends goes to all the others. The accept loop spawns
//! one green thread per client; a client's line is written to the others' sockets directly.
//!
//! ```sh
//! cargo run --example chat              # listens on 127.0.0.1:7879
//! nc 127.0.0.1 7879                     # first line: your name; then chat (several terminals)
//! cargo run --example chat -- --demo    # a free port, three clients talking, then exits
//! ```

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use green::net::{TcpListener, TcpStream};

/// Who is connected: id → (name, socket). The lock is held only to copy the list, never
/// across a write (a write may park, and a parked green thread must not hold a std lock).
#[derive(Default)]
struct Room {
    members: Mutex<HashMap<u64, (String, Arc<TcpStream>)>>,
    next_id: AtomicU64,
}

impl Room {
    /// Sends `line` to everyone but `from`.
    fn broadcast(&self, from: u64, line: &str) {
        let others: Vec<Arc<TcpStream>> = {
            let members = self.members.lock().unwrap();
            members.iter().filter(|(id, _)| **id != from).map(|(_, (_, s))| s.clone()).collect()
        };
        for stream in others {
            // One write_all per line; a member who left just misses it.
            let _ = (&*stream).write_all(line.as_bytes());
        }
    }

    fn len(&self) -> usize {
        self.members.lock().unwrap().len()
    }
}

/// One client: its first line is its name, every other line goes to the room.
fn handle(room: Arc<Room>, stream: TcpStream) -> io::Result<()> {
    let stream = Arc::new(stream);
    let mut lines = BufReader::new(&*stream).lines();
    let Some(name) = lines.next().transpose()? else { return Ok(()) };
    let id = room.next_id.fetch_add(1, Ordering::Relaxed);
    room.members.lock().unwrap().insert(id, (name.clone(), stream.clone()));
    room.broadcast(id, &format!("* {name} joined\n"));
    for line in lines {
        room.broadcast(id, &format!("{name}: {}\n", line?));
    }
    room.members.lock().unwrap().remove(&id);
    room.broadcast(id, &format!("* {name} left\n"));
    Ok(())
}

fn serve(room: Arc<Room>, listener: TcpListener) -> io::Result<()> {
    for stream in listener.incoming() {
        let stream = stream?;
        let room = room.clone();
        green::spawn(move || handle(room, stream));
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let demo = std::env::args().any(|a| a == "--demo");
    green::run(|| {
        let listener = TcpListener::bind(if demo { "127.0.0.1:0" } else { "127.0.0.1:7879" })?;
        let addr = listener.local_addr()?;
        println!("chat server on {addr}");
        let room = Arc::new(Room::default());
        let server = green::spawn({
            let room = room.clone();
            move || serve(room, listener)
        });
        if demo {
            return run_demo(&room, addr);
        }
        server.join().expect("the server panicked")
    })
}

/// Three clients join; once all are in, each says hello, and each checks that it heard both
/// others.
fn run_demo(room: &Room, addr: SocketAddr) -> io::Result<()> {
    const NAMES: [&str; 3] = ["alice", "bob", "carol"];
    let mut streams = Vec::new();
    for name in NAMES {
        let mut stream = TcpStream::connect(addr)?;
        writeln!(stream, "{name}")?;
        streams.push(stream);
    }
    while room.len() < NAMES.len() {
        green::sleep(std::time::Duration::from_millis(1));
    }
    let clients: Vec<_> = streams
        .into_iter()
        .zip(NAMES)
        .map(|(mut stream, name)| {
            green::spawn(move || -> io::Result<()> {
                writeln!(stream, "hello from {name}")?;
                let mut expected: Vec<String> =
                    NAMES.iter().filter(|n| **n != name).map(|n| format!("{n}: hello from {n}")).collect();
                let mut lines = BufReader::new(&stream).lines();
                while !expected.is_empty() {
                    let line = lines.next().expect("the server closed")?;
                    expected.retain(|e| *e != line);
                }
                println!("{name} heard everyone");
                Ok(())
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client panicked")?;
    }
    Ok(())
}
