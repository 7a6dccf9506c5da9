//! An echo server: one green thread per connection, written as plain blocking code.
//!
//! ```sh
//! cargo run --example echo                 # listens on 127.0.0.1:7878; try `nc 127.0.0.1 7878`
//! cargo run --example echo -- --port 9000  # another port
//! cargo run --example echo -- --demo       # a free port, three clients, then exits
//! ```

mod common {
    pub mod server;
}

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use common::server;
use green::net::{TcpListener, TcpStream};

const USAGE: &str = "usage: echo [--port N] [--demo]   (default: port 7878)";
const PORT: u16 = 7878;

/// Echoes until the client closes. `read` and `write_all` park this green thread only.
fn handle(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = [0; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}

/// Accepts forever. A failed `accept` (out of fds, a connection reset before it was taken) is
/// logged, and the server goes on.
fn serve(listener: TcpListener) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                green::spawn(move || handle(stream));
            }
            Err(e) => server::accept_failed(&e),
        }
    }
}

fn main() -> ExitCode {
    server::main(USAGE, PORT, |args, listener, addr| {
        println!("echo server on {addr}");
        let server = green::spawn(move || serve(listener));
        if args.demo {
            // Returning ends the runtime, and so the server.
            return run_demo(addr).map_err(|e| format!("the demo failed: {e}"));
        }
        server.join().expect("the server panicked");
        Ok(())
    })
}

/// Three clients at once, each checking its echo.
fn run_demo(addr: SocketAddr) -> io::Result<()> {
    let clients: Vec<_> = (0..3)
        .map(|i| {
            green::spawn(move || -> io::Result<()> {
                let mut stream = TcpStream::connect(addr)?;
                let message = format!("hello from client {i}");
                stream.write_all(message.as_bytes())?;
                let mut echo = vec![0; message.len()];
                stream.read_exact(&mut echo)?;
                assert_eq!(echo, message.as_bytes());
                println!("client {i} got its echo: {}", String::from_utf8_lossy(&echo));
                Ok(())
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client panicked")?;
    }
    Ok(())
}
