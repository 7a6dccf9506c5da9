//! An echo server: one green thread per connection, written as plain blocking code.
//!
//! ```sh
//! cargo run --example echo            # listens on 127.0.0.1:7878; try `nc 127.0.0.1 7878`
//! cargo run --example echo -- --demo  # a free port, three clients, then exits
//! ```

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use green::net::{TcpListener, TcpStream};

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

fn serve(listener: TcpListener) -> io::Result<()> {
    for stream in listener.incoming() {
        let stream = stream?;
        green::spawn(move || handle(stream));
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let demo = std::env::args().any(|a| a == "--demo");
    green::run(|| {
        let listener = TcpListener::bind(if demo { "127.0.0.1:0" } else { "127.0.0.1:7878" })?;
        let addr = listener.local_addr()?;
        println!("echo server on {addr}");
        let server = green::spawn(move || serve(listener));
        if demo {
            return run_demo(addr); // returning ends the runtime, and so the server
        }
        server.join().expect("the server panicked")
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
