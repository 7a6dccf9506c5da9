//! Telling Valgrind where the green-thread stacks are.
//!
//! Valgrind's memcheck follows the stack pointer: a move down makes the new frame's bytes
//! addressable, a move up makes the bytes left behind inaccessible. It cannot see a switch
//! between two stacks as one unless both are registered stacks, or the move is larger than
//! `--max-stackframe` (2 MB by default). Packed slots of the default size are 320 KiB apart, so
//! a switch from one green thread to the next looked like a frame of a few hundred KiB being
//! pushed or popped: every later access to the other stack was reported as an invalid read or
//! write (about 29,000 errors for 300 short green threads).
//!
//! So each slot is registered as a stack of its own (`VALGRIND_STACK_REGISTER`) for as long as
//! it exists, and deregistered before its memory goes. The requests are Valgrind's "client
//! requests": a fixed instruction sequence that does nothing on a real CPU and that Valgrind's
//! JIT recognises. They are made only when [`active`] says the process runs under Valgrind,
//! found once by the same kind of request.

use std::sync::atomic::{AtomicU8, Ordering};

/// `VG_USERREQ__RUNNING_ON_VALGRIND` in `valgrind.h`.
const RUNNING_ON_VALGRIND: usize = 0x1001;
/// `VG_USERREQ__STACK_REGISTER` in `valgrind.h`.
const STACK_REGISTER: usize = 0x1501;
/// `VG_USERREQ__STACK_DEREGISTER` in `valgrind.h`.
const STACK_DEREGISTER: usize = 0x1502;

/// Whether the process runs under Valgrind (asked once).
pub(super) fn active() -> bool {
    /// 0: not asked yet; 1: no; 2: yes.
    static ACTIVE: AtomicU8 = AtomicU8::new(0);
    match ACTIVE.load(Ordering::Relaxed) {
        0 => {
            let yes = request(RUNNING_ON_VALGRIND, 0, 0) != 0;
            ACTIVE.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
        known => known == 2,
    }
}

/// Registers `[low, high)` as a stack; returns its id, or 0 when not under Valgrind.
pub(super) fn register(low: usize, high: usize) -> u32 {
    if !active() {
        return 0;
    }
    // Valgrind takes the lowest and the highest byte: the end is inclusive, and the next slot's
    // first byte is not this stack's. It numbers stacks from 1 in registration order; a u32
    // outlasts any process.
    u32::try_from(request(STACK_REGISTER, low, high - 1)).unwrap_or(0)
}

/// Forgets stack `id` (from [`register`]; 0 is no stack).
pub(super) fn deregister(id: u32) {
    if id != 0 {
        request(STACK_DEREGISTER, id as usize, 0);
    }
}

/// Makes client request `code` with two arguments; returns Valgrind's answer, or 0 on a real
/// CPU.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn request(code: usize, arg1: usize, arg2: usize) -> usize {
    let args = [code, arg1, arg2, 0, 0, 0];
    let mut result: usize = 0;
    // SAFETY: `valgrind.h`'s amd64 sequence. On a CPU it changes nothing: the four rotations of
    // rdi add up to 128 bits and put it back, and `xchg rbx, rbx` exchanges rbx with itself;
    // rdx keeps the default 0. Valgrind reads the six words at rax (alive for the block) and
    // writes its answer to rdx. Rotations change the flags, which are not preserved.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") result,
            options(nostack),
        );
    }
    result
}

/// Makes client request `code` with two arguments; returns Valgrind's answer, or 0 on a real
/// CPU.
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
fn request(code: usize, arg1: usize, arg2: usize) -> usize {
    let args = [code, arg1, arg2, 0, 0, 0];
    let mut result: usize = 0;
    // SAFETY: `valgrind.h`'s arm64 sequence. On a CPU it changes nothing: the four rotations of
    // x12 add up to 128 bits and put it back, and `orr x10, x10, x10` leaves x10 as it is; x3
    // keeps the default 0. Valgrind reads the six words at x4 (alive for the block) and writes
    // its answer to x3.
    unsafe {
        std::arch::asm!(
            "ror x12, x12, #3",
            "ror x12, x12, #13",
            "ror x12, x12, #51",
            "ror x12, x12, #61",
            "orr x10, x10, x10",
            in("x4") args.as_ptr(),
            inout("x3") result,
            options(nostack),
        );
    }
    result
}

/// No client requests where the sequence is not known here: never "under Valgrind".
#[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
fn request(_code: usize, _arg1: usize, _arg2: usize) -> usize {
    0
}
