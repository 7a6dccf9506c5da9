//! A client for `examples/chat.rs`: each line typed goes to the room, and what the room says is
//! printed as it comes. One green thread reads standard input with `green::io::stdin()`, another
//! reads the socket; each parks while it waits, so neither holds up the other.
//!
//! ```sh
//! cargo run --example chat                         # the server, in one terminal
//! cargo run --example chat_client -- alice         # in a second terminal: type lines, Enter sends
//! cargo run --example chat_client -- bob           # in a third
//! cargo run --example chat_client -- --port 9000 carol   # to a server started with --port 9000
//! ```
//!
//! Ctrl-D (the end of standard input) leaves the room: the client closes its side of the
//! connection, the server tells the others and closes the other side, and the client exits. If
//! the server goes away first, the client stops waiting for input and exits at once.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use green::net::TcpStream;

const USAGE: &str = "usage: chat_client [--port N] NAME   (joins the chat server on 127.0.0.1, port 7879 by default)";
const PORT: u16 = 7879;

fn main() -> ExitCode {
    let (port, name) = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    match green::run(|| chat(SocketAddr::from(([127, 0, 0, 1], port)), &name)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `[--port N] NAME`, or `--help` (which prints the usage and exits).
fn parse_args() -> Result<(u16, String), String> {
    let (mut port, mut name) = (PORT, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--port" => {
                let value = args.next().ok_or("--port needs a value")?;
                port = value.parse().map_err(|e| format!("--port {value}: {e} (expected 1 to 65535)"))?;
            }
            _ if name.is_none() && !arg.starts_with('-') => name = Some(arg),
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    Ok((port, name.ok_or("no NAME given: the room shows it before each of your lines")?))
}

/// Joins the room at `addr` as `name`, sends what is typed from a green thread of its own, and
/// prints what the room says on this one until the server closes the connection.
fn chat(addr: SocketAddr, name: &str) -> Result<(), String> {
    let stream = TcpStream::connect(addr)
        .map_err(|e| format!("cannot connect to {addr}: {e}; is `cargo run --example chat` running there?"))?;
    let stream = Arc::new(stream);
    // The server takes the first line for the member's name.
    (&*stream).write_all(format!("{name}\n").as_bytes()).map_err(|e| format!("cannot send the name: {e}"))?;
    println!("connected to {addr} as {name}: type a line and press Enter; Ctrl-D leaves");
    let typing = green::spawn({
        let stream = stream.clone();
        move || send_typed_lines(&stream)
    });
    let heard = print_room(&stream);
    // The server has closed the connection. After a Ctrl-D the typing green thread has ended
    // already; otherwise it is parked waiting for input that nobody would read now, and the
    // cancellation unwinds it from that wait.
    let left = typing.is_finished();
    typing.cancel();
    let typed = typing.join();
    if !left {
        eprintln!("the server closed the connection");
    }
    heard.map_err(|e| format!("reading from the server: {e}"))?;
    match typed {
        Ok(Err(e)) => Err(format!("sending to the server: {e}")),
        _ => Ok(()),
    }
}

/// Sends each line typed to the room until the end of standard input, then closes the
/// connection's sending side, which the server takes as leaving.
fn send_typed_lines(stream: &TcpStream) -> io::Result<()> {
    for line in green::io::stdin().lines() {
        (&*stream).write_all(format!("{}\n", line?).as_bytes())?;
    }
    stream.shutdown(Shutdown::Write)
}

/// Prints each line the room sends until the server closes the connection (a reset counts as
/// closed: the server went away). Lines go out through std's `println!`: a write to a terminal
/// or a pipe takes microseconds, too short to matter to the other green thread.
fn print_room(stream: &TcpStream) -> io::Result<()> {
    for line in BufReader::new(stream).lines() {
        match line {
            Ok(line) => println!("{line}"),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
