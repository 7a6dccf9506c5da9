//! A small HTTP/1.1 server that answers every request with "Hello, world!" and keeps
//! connections alive: one green thread per connection, requests parsed with `httparse`.
//!
//! ```sh
//! cargo run --release --example http_hello            # listens on 127.0.0.1:8080
//! cargo run --release --example http_hello -- --port 9000
//! curl -v http://127.0.0.1:8080/                      # or any HTTP load generator
//! cargo run --example http_hello -- --demo            # a free port, a few keep-alive clients, exits
//! ```

mod common {
    pub mod server;
}

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use common::server;
use green::net::{TcpListener, TcpStream};

const USAGE: &str = "usage: http_hello [--port N] [--demo]   (default: port 8080)";
const PORT: u16 = 8080;

const BODY: &str = "Hello, world!\n";

/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Serves one connection: parses each request in the buffer, answers it, and keeps going
/// until the client closes or asks to (pipelined requests are answered in order).
///
/// An idle keep-alive connection is kept for as long as the client keeps it: its green thread
/// stays parked in `read`, holding its stack and an fd. A server facing the open internet
/// would close idle connections with `stream.set_read_timeout(Some(IDLE))`, ending the
/// connection when `read` fails with `WouldBlock`, and would read each request under
/// `green::timeout`: a read timeout bounds each read alone, so a client that sends a byte now
/// and then would hold the connection forever. That deadline starts at the request's first
/// byte, not when the previous response went out: one that also covers the wait between
/// requests closes kept-alive connections that were only idle, sometimes just as the client
/// sends its next request on one (the client then sees a broken pipe or a reset). This example
/// leaves both out to stay short.
fn handle(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0; MAX_HEAD];
    let mut filled = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf[..filled]) {
            Ok(httparse::Status::Complete(head_len)) => {
                let keep_alive = keep_alive(&request);
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{BODY}",
                    BODY.len(),
                    if keep_alive { "" } else { "Connection: close\r\n" }
                );
                stream.write_all(response.as_bytes())?;
                if !keep_alive {
                    return Ok(());
                }
                // Requests have no body here (GET); keep what follows the head.
                buf.copy_within(head_len..filled, 0);
                filled -= head_len;
                continue;
            }
            Ok(httparse::Status::Partial) if filled < buf.len() => {}
            Ok(httparse::Status::Partial) | Err(_) => {
                stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
                return Ok(());
            }
        }
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
    }
}

/// HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes unless told not to.
fn keep_alive(request: &httparse::Request<'_, '_>) -> bool {
    let connection = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("connection"))
        .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase());
    match request.version {
        Some(1) => connection.as_deref() != Some("close"),
        _ => connection.as_deref() == Some("keep-alive"),
    }
}

/// Accepts forever. A failed `accept` (out of fds, a connection reset before it was taken) is
/// logged, and the server goes on. Each connection starts on the next worker in turn
/// (`spread`): a green thread never moves once started, and handlers spawned plainly would
/// mostly start on the accept loop's worker.
fn serve(listener: TcpListener) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let spawned = green::Builder::new().spread().spawn(move || {
                    if let Err(e) = handle(stream) {
                        eprintln!("connection error: {e}");
                    }
                });
                if let Err(e) = spawned {
                    eprintln!("could not start a connection's green thread: {e}");
                }
            }
            Err(e) => server::accept_failed(&e),
        }
    }
}

fn main() -> ExitCode {
    server::main(USAGE, PORT, |args, listener, addr| {
        println!("http_hello on http://{addr}/");
        let server = green::spawn(move || serve(listener));
        if args.demo {
            return run_demo(addr).map_err(|e| format!("the demo failed: {e}"));
        }
        server.join().expect("the server panicked");
        Ok(())
    })
}

/// Four clients, each sending three requests on one kept-alive connection (the last asks to
/// close), checking every response.
fn run_demo(addr: SocketAddr) -> io::Result<()> {
    let clients: Vec<_> = (0..4)
        .map(|i| {
            green::spawn(move || -> io::Result<()> {
                let mut stream = TcpStream::connect(addr)?;
                for r in 0..3 {
                    let close = if r == 2 { "Connection: close\r\n" } else { "" };
                    write!(stream, "GET /{i}/{r} HTTP/1.1\r\nHost: {addr}\r\n{close}\r\n")?;
                    let response = read_response(&mut stream)?;
                    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
                    assert!(response.ends_with(BODY), "{response}");
                }
                let mut rest = Vec::new();
                stream.read_to_end(&mut rest)?; // the server closed after the last one
                assert!(rest.is_empty());
                println!("client {i}: 3 requests on one connection, all answered");
                Ok(())
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client panicked")?;
    }
    Ok(())
}

/// Reads one response whose body length is given by `Content-Length`.
fn read_response(stream: &mut TcpStream) -> io::Result<String> {
    let mut data = Vec::new();
    let mut byte = [0; 1];
    while !data.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte)?;
        data.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&data).into_owned();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    Ok(head + &String::from_utf8_lossy(&body))
}
