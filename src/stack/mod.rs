//! Stacks for green threads: where they live, how they are guarded, and what happens when one
//! overflows.
//!
//! # Job
//!
//! Every started green thread runs on a stack of its own. This module hands out those stacks
//! cheaply, keeps a parked green thread's cost near the one page its frames touched, gives
//! memory back to the OS when a burst is over, and turns an overflow into a message naming the
//! green thread instead of a bare SIGSEGV (rule 6 of docs/design.md).
//!
//! Measured here (x86_64 KVM, Linux 6.18): taking and giving back a pooled stack, about 10 ns; a
//! fresh one, about 1.5 µs (most of it the guard install), plus 2 to 5 µs for the kernel to zero
//! the first page the green thread touches. A million parked green threads of the default size
//! (`examples/million.rs`): 65 kernel mappings in the whole process, about 4.4 KiB of resident
//! memory each (its stack page and the runtime's task), and about 0.6 KiB of page tables on
//! top.
//!
//! # Concepts
//!
//! - **size class**: requested sizes round up to a power of two, at least 32 KiB ([`class`]).
//!   Stacks of one class are interchangeable, so they can be pooled and packed.
//! - **slot**: a guard followed (upwards) by a stack of one class. The guard is memory that
//!   faults on any access; a stack that grows into it faults instead of silently writing over
//!   whatever lies below.
//! - **packed chunk** (Linux 6.13+): one large `MAP_NORESERVE` mapping holding many slots of one
//!   class. Guards are installed with `madvise(MADV_GUARD_INSTALL)`, which marks page-table
//!   entries and does not split the mapping, so a chunk stays one kernel mapping however many
//!   stacks it holds ([`arena`]).
//! - **separate stack** (fallback): one mapping per stack with an `mprotect(PROT_NONE)` guard, two
//!   kernel mappings each, held under a soft cap below `vm.max_map_count` ([`separate`]).
//! - **arena**: the runtime-wide owner of chunks and of trimmed free slots (one per runtime,
//!   shared by its workers behind a lock that only misses and trims take).
//! - **pool**: a worker's own free stacks per class; the hot path ([`pool`]). It gives a stack
//!   back to the arena once the stack has sat unused for a whole trim interval (about a second),
//!   or when a class passes a large hard cap; a working set that is reused stays.
//! - **registry**: a lock-free, process-wide table of every region that holds guards, read by
//!   the signal handler ([`registry`]).
//! - **Valgrind**: under it, every slot is registered as a stack of its own while it exists,
//!   so that memcheck sees a switch between two green threads as one and not as a frame of a
//!   few hundred KiB ([`valgrind`]).
//!
//! # A packed chunk
//!
//! ```text
//!  low addresses                                                           high addresses
//!  +-------------+---------+-----------+---------+-----------+-----+---------+-----------+
//!  | owner table | guard 0 |  stack 0  | guard 1 |  stack 1  | ... | guard n |  stack n  |
//!  +-------------+---------+-----------+---------+-----------+-----+---------+-----------+
//!   slots x 24 B   64 KiB    one class             ^ stack 0's frames grow down from here
//!   (page-rounded)           (e.g. 256 KiB)
//! ```
//!
//! A slot's stack grows down towards its own guard. The owner table holds, per slot, the id and
//! name of the green thread running on it, for the overflow message. Nothing is touched until
//! used: a parked green thread costs the pages its frames touched (usually one) plus 24 bytes of
//! owner table.
//!
//! # Protocol
//!
//! 1. `install_overflow_handler` (once per process) puts the SIGSEGV/SIGBUS handler in place,
//!    keeping the previous ones to forward to ([`overflow`]).
//! 2. `AltStack::install` (once per worker thread) gives the handler a stack of its own to run
//!    on: the faulting stack has no room left ([`altstack`]).
//! 3. `StackArena::new` probes guard installs once per process and picks packed or separate.
//! 4. `StackPool::take(size)`: pop a stack of the class from the worker's pool; on a miss, ask
//!    the arena: reuse a trimmed slot, else carve the next slot of the newest chunk and install
//!    its guard, else map a new chunk (or, separate: map one stack under the soft cap).
//! 5. `GreenStack::set_owner` records the green thread's id and name in the slot's owner entry.
//! 6. `StackPool::give`: clear the owner, push the stack to the pool. Only above the pool's hard
//!    cap (4,096 default stacks per class) does it trim at once: the oldest quarter goes back.
//! 7. `StackPool::maintain(now)`, called by the worker before it sleeps and every so often while
//!    busy: once per trim interval (`TRIM_AGE`, 1 s), the stacks no `take` reached during the
//!    whole interval (the low-water mark of the free list) go back. Going back means: discard
//!    the pages (`MADV_DONTNEED`; guards survive it) and push the slot to the arena's free list
//!    (separate stacks are unmapped instead, to give back their mappings).
//! 8. On a fault, the handler looks the address up in the registry; inside a guard, it writes
//!    the owner's message with `write(2)` and aborts; otherwise it forwards to the previous
//!    handler exactly as the kernel would have called it.
//!
//! # Rejected
//!
//! - *One mapping per stack everywhere* (corosensei's `DefaultStack`): two kernel mappings per
//!   stack; at the default `vm.max_map_count` (65530) creation fails near 32,750 live stacks, and
//!   past the limit every other `mmap` in the process fails too. Kept only as the fallback.
//! - *`mprotect` guards inside a shared mapping*: each splits the mapping, same limit as above.
//! - *One huge mapping for all stacks*: a mapping cannot grow in place, and per-spawn sizes need
//!   several classes; so chunks per class, growing geometrically.
//! - *Owner info at the top of each stack*: it would eat usable bytes, so a 256 KiB request
//!   would need the 512 KiB class. The owner table costs 24 bytes per slot instead.
//! - *A per-stack heap allocation or an `Arc` per stack*: memory per parked green thread and an
//!   atomic on the hot path, for nothing the arena's counters do not already give.
//! - *Formatting the message in the handler with `std::fmt`*: not async-signal-safe; the
//!   handler formats digits by hand into a local buffer.
//!
//! # Invariants
//!
//! - Every stack handed out has a guard below it, registered in the registry, for as long as
//!   its memory is mapped (the `corosensei::stack::Stack` contract).
//! - A chunk is unmapped only when its arena drops with no packed stack outstanding (every
//!   stack taken was given back and every pool returned its stacks). Otherwise its memory is
//!   leaked, never unmapped under a suspended green thread.
//! - A stack is used by one coroutine at a time: the pool owns free ones; a `GreenStack` value
//!   owns a used one.
//! - The signal handler only reads atomics and memory that stays mapped while it is registered.

mod altstack;
mod arena;
mod class;
mod green_stack;
mod overflow;
mod pool;
mod registry;
mod separate;
mod sys;
#[cfg(test)]
mod tests;
mod valgrind;

pub(crate) use altstack::AltStack;
pub(crate) use arena::StackArena;
pub(crate) use green_stack::GreenStack;
pub(crate) use overflow::install_overflow_handler;
pub(crate) use pool::StackPool;
pub(crate) use sys::page_size;

/// Checks that stacks of `bytes` usable bytes exist at all (the largest size class is 1 GiB), so
/// that a spawn or a runtime's build refuses an impossible size at once, with the error a
/// green thread's start would give, instead of the green thread failing later.
pub(crate) fn check_size(bytes: usize) -> std::io::Result<()> {
    class::SizeClass::of(bytes).map(drop)
}

/// Default usable stack size of a green thread: 256 KiB.
///
/// Deep enough for ordinary synchronous code (std's formatting, a TLS handshake, serde of a
/// nested document) while a parked green thread still costs only the pages it touched. Smaller
/// than an OS thread's 2 MiB (std) or 8 MiB (main) because there may be a million of them.
pub(crate) const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// Default guard size below each stack: 64 KiB.
///
/// In a packed chunk the memory under a guard is the top of the neighbouring stack. A frame
/// larger than the guard that does not probe its pages (C code built without stack-clash
/// protection, `alloca`) would skip a 4 KiB guard and write into the neighbour. 64 KiB covers the
/// frames such code realistically makes, and costs only address space: guards are never backed.
pub(crate) const DEFAULT_GUARD_SIZE: usize = 64 * 1024;

/// How stacks are laid out in memory.
///
/// The layout changes only how stacks are mapped, never what a green thread can do: every stack
/// has a guard below it, and an overflow is reported by name either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StackLayout {
    /// Pack many stacks into a few large mappings, with guards installed by
    /// `MADV_GUARD_INSTALL`, where the kernel supports it (Linux 6.13+); otherwise fall back to
    /// [`StackLayout::Separate`]. A million parked green threads then need only a few dozen
    /// kernel mappings.
    #[default]
    Auto,
    /// Give each stack its own mapping with an `mprotect` guard: two kernel mappings per stack.
    /// With the default `vm.max_map_count` (65530) this allows roughly 32,000 live green
    /// threads; past a soft cap below that limit, spawning a green thread fails with an error
    /// that says so. Mostly useful to test the behaviour of kernels without guard installs.
    Separate,
}

/// Stack settings shared by every worker of one runtime.
#[derive(Debug, Clone)]
pub(crate) struct StackConfig {
    /// Packed or separate (see [`StackLayout`]).
    pub(crate) layout: StackLayout,
    /// Bytes of guard below each stack; rounded up to whole pages, at least one page.
    pub(crate) guard_size: usize,
    /// Overrides the soft cap on live separate stacks of this arena (normally derived from
    /// `vm.max_map_count`), so tests can reach it cheaply. `None` in normal use.
    pub(crate) separate_cap: Option<usize>,
}

impl Default for StackConfig {
    fn default() -> StackConfig {
        StackConfig { layout: StackLayout::Auto, guard_size: DEFAULT_GUARD_SIZE, separate_cap: None }
    }
}
