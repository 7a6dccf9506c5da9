//! A chat server: every line a client sends goes to all the others. The accept loop spawns
//! one green thread per client; a client's line is written to the others' sockets directly.
//!
//! ```sh
//! cargo run --example chat                   # listens on 127.0.0.1:7879
//! cargo run --example chat -- --port 9000    # another port
//! cargo run --example chat_client -- alice   # a client, in another terminal (one per person)
//! nc 127.0.0.1 7879                          # or any line client: first line your name, then chat
//! cargo run --example chat -- --demo         # a free port, three clients talking, one leaving, then exits
//! ```
//!
//! # What a line costs
//!
//! The sender's own green thread writes the line to every other member in turn, so a line
//! takes as long as the slowest member takes to accept it. A member that stops reading fills
//! its socket buffer, and from then on every sender parks on it, until one write to it has
//! waited [`WRITE_TIMEOUT`] without progress; then that member is shut down and leaves. (The
//! timeout is per write call, as in std: a member that takes a byte now and then is never
//! caught.) A server for many members would give each one an outbox instead (a bounded
//! channel drained by a writer green thread of its own), so that no sender ever waits for
//! another member.

mod common {
    pub mod server;
}

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::server;
use green::net::{TcpListener, TcpStream};

const USAGE: &str = "usage: chat [--port N] [--demo]   (default: port 7879)";
const PORT: u16 = 7879;

/// How long one write to a member may park without progress before that member counts as
/// gone: long enough for a slow reader on a bad link, short enough that the room does not
/// freeze behind it for long.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest line read at once; a longer one goes to the room in pieces of this size, so a
/// client that never sends a newline cannot make the server buffer without end.
const MAX_LINE: u64 = 4096;

/// One member, as the others see it.
struct Member {
    /// Its socket, written by every other member's green thread (and read by its own).
    stream: TcpStream,
    /// Held across the `write_all` of one line, so that two senders' lines reach this member
    /// whole, one after the other. A `green::sync::Mutex`, since it is held across a park.
    writing: green::sync::Mutex<()>,
}

/// Who is connected: id → member. The lock is held only to copy the list, never across a
/// write (a write may park, and a parked green thread must not hold a std lock).
#[derive(Default)]
struct Room {
    members: Mutex<HashMap<u64, Arc<Member>>>,
    next_id: AtomicU64,
}

impl Room {
    /// Sends `line` to everyone but `from`.
    fn broadcast(&self, from: u64, line: &str) {
        let others: Vec<Arc<Member>> = {
            let members = self.members.lock().unwrap();
            members.iter().filter(|(id, _)| **id != from).map(|(_, m)| m.clone()).collect()
        };
        for member in others {
            let _writing = member.writing.lock().unwrap();
            if (&member.stream).write_all(line.as_bytes()).is_err() {
                // It took nothing for WRITE_TIMEOUT, or it is leaving already.
                // Shutting it down wakes its own green thread's read, which then leaves the
                // room; a member who left just misses the line.
                let _ = member.stream.shutdown(Shutdown::Both);
            }
        }
    }

    fn len(&self) -> usize {
        self.members.lock().unwrap().len()
    }
}

/// A member's place in the room: made when it has given its name, and dropped on every way
/// out of [`handle`] (the client closed, a reset, a panic), which removes the member, tells
/// the others, and drops the room's reference to its socket.
struct Seat<'a> {
    room: &'a Room,
    id: u64,
    name: String,
}

impl<'a> Seat<'a> {
    fn take(room: &'a Room, name: String, member: Arc<Member>) -> Seat<'a> {
        let id = room.next_id.fetch_add(1, Ordering::Relaxed);
        room.members.lock().unwrap().insert(id, member);
        room.broadcast(id, &format!("* {name} joined\n"));
        Seat { room, id, name }
    }
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        self.room.members.lock().unwrap().remove(&self.id);
        self.room.broadcast(self.id, &format!("* {} left\n", self.name));
    }
}

/// Reads one line, without its line ending; `None` at the end of the stream. Bytes that are
/// not UTF-8 become U+FFFD rather than an error: a client's typo must not end its session.
fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut bytes = Vec::new();
    if reader.take(MAX_LINE).read_until(b'\n', &mut bytes)? == 0 {
        return Ok(None);
    }
    let line = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(Some(String::from_utf8_lossy(line).into_owned()))
}

/// One client: its first line is its name, every other line goes to the room. Its socket is
/// closed when this returns: the seat, dropped first, takes it out of the room.
fn handle(room: &Room, stream: TcpStream) -> io::Result<()> {
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let member = Arc::new(Member { stream, writing: green::sync::Mutex::new(()) });
    let mut reader = BufReader::new(&member.stream);
    let Some(name) = read_line(&mut reader)? else { return Ok(()) };
    let seat = Seat::take(room, name, member.clone());
    while let Some(line) = read_line(&mut reader)? {
        room.broadcast(seat.id, &format!("{}: {line}\n", seat.name));
    }
    Ok(())
}

/// Accepts forever. A failed `accept` (out of fds, a connection reset before it was taken) is
/// logged, and the server goes on.
fn serve(room: Arc<Room>, listener: TcpListener) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let room = room.clone();
                green::spawn(move || {
                    if let Err(e) = handle(&room, stream) {
                        eprintln!("client error: {e}");
                    }
                });
            }
            Err(e) => server::accept_failed(&e),
        }
    }
}

fn main() -> ExitCode {
    server::main(USAGE, PORT, |args, listener, addr| {
        println!("chat server on {addr}");
        let room = Arc::new(Room::default());
        let server = green::spawn({
            let room = room.clone();
            move || serve(room, listener)
        });
        if args.demo {
            return run_demo(&room, addr).map_err(|e| format!("the demo failed: {e}"));
        }
        server.join().expect("the server panicked");
        Ok(())
    })
}

/// Three clients join; once all are in, each says hello and checks that it heard both others.
/// Then carol hangs up, and alice and bob each check that they heard she left.
fn run_demo(room: &Room, addr: SocketAddr) -> io::Result<()> {
    const NAMES: [&str; 3] = ["alice", "bob", "carol"];
    let mut streams = Vec::new();
    for name in NAMES {
        let mut stream = TcpStream::connect(addr)?;
        writeln!(stream, "{name}")?;
        streams.push(stream);
    }
    while room.len() < NAMES.len() {
        green::sleep(Duration::from_millis(1));
    }
    let clients: Vec<_> = streams
        .into_iter()
        .zip(NAMES)
        .map(|(mut stream, name)| {
            green::spawn(move || -> io::Result<BufReader<TcpStream>> {
                writeln!(stream, "hello from {name}")?;
                let mut expected: Vec<String> =
                    NAMES.iter().filter(|n| **n != name).map(|n| format!("{n}: hello from {n}")).collect();
                let mut reader = BufReader::new(stream);
                while !expected.is_empty() {
                    let line = read_line(&mut reader)?.expect("the server closed");
                    expected.retain(|e| *e != line);
                }
                println!("{name} heard everyone");
                Ok(reader)
            })
        })
        .collect();
    let mut readers = Vec::new();
    for client in clients {
        readers.push(client.join().expect("a client panicked")?);
    }
    drop(readers.pop()); // carol hangs up
    for (mut reader, name) in readers.into_iter().zip(NAMES) {
        while read_line(&mut reader)?.expect("the server closed") != "* carol left" {}
        println!("{name} heard that carol left");
    }
    Ok(())
}
