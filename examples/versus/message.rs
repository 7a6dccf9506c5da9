//! The 64-byte request and the check of its echo.
//!
//! A request holds its connection number, its sequence number, and bytes derived from both, so
//! that an echo sent to the wrong connection, a stale echo, a short one or a corrupted byte
//! each fail the check.

use std::io;

/// Bytes per message, request and reply alike.
pub const MESSAGE: usize = 64;

pub type Message = [u8; MESSAGE];

/// The request number `seq` of connection `conn`.
pub fn request(conn: u32, seq: u64) -> Message {
    let mut m = [0u8; MESSAGE];
    m[..4].copy_from_slice(&conn.to_le_bytes());
    m[4..12].copy_from_slice(&seq.to_le_bytes());
    // A xorshift stream seeded from both numbers: cheap, and different for every request.
    let mut x = (u64::from(conn) << 32 ^ seq).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in m[12..].chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    m
}

/// Checks that `got` is the echo of `sent`, request `seq` of connection `conn`.
pub fn check(conn: u32, seq: u64, sent: &Message, got: &Message) -> io::Result<()> {
    match sent.iter().zip(got).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(i) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "reply mismatch on connection {conn}, message {seq}: byte {i} is {:#04x}, the request had {:#04x} \
                 (request {:02x?}, reply {:02x?})",
                got[i], sent[i], sent, got
            ),
        )),
    }
}
