//! Unit tests of the stack module. Whether a guard really faults can only be seen from another
//! process: `tests/stack_overflow.rs` does that.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use corosensei::stack::Stack;

use super::class::SizeClass;
use super::green_stack::{GreenStack, Kind};
use super::pool::{TRIM_AGE, packed_cap};
use super::registry;
use super::{AltStack, DEFAULT_GUARD_SIZE, DEFAULT_STACK_SIZE, StackArena, StackConfig, StackLayout};
use super::{StackPool, sys};

/// Serialises the tests that count the process's mappings: the others run in parallel threads
/// of this process and map memory too.
fn map_count_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Kernel mappings (lines of `/proc/self/maps`) that overlap `[start, start + len)`.
fn vmas_in(start: usize, len: usize) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter(|line| {
            let range = line.split(' ').next().unwrap();
            let (lo, hi) = range.split_once('-').unwrap();
            let lo = usize::from_str_radix(lo, 16).unwrap();
            let hi = usize::from_str_radix(hi, 16).unwrap();
            lo < start + len && hi > start
        })
        .count()
}

fn pool(layout: StackLayout) -> StackPool {
    let config = StackConfig { layout, ..StackConfig::default() };
    StackPool::new(StackArena::new(config).unwrap())
}

fn layouts() -> Vec<StackLayout> {
    if sys::guard_installs_supported() {
        vec![StackLayout::Auto, StackLayout::Separate]
    } else {
        eprintln!("MADV_GUARD_INSTALL unsupported here: testing the separate layout only");
        vec![StackLayout::Separate]
    }
}

/// Writes the lowest and highest usable byte, and reads them back.
fn touch_ends(stack: &GreenStack) {
    let top = stack.base().get();
    let low = top - stack.size();
    // SAFETY: `[low, top)` is the stack's usable memory, owned by `stack`, not in use.
    unsafe {
        std::ptr::write_volatile((top - 1) as *mut u8, 0xa5);
        std::ptr::write_volatile(low as *mut u8, 0x5a);
        assert_eq!(std::ptr::read_volatile((top - 1) as *const u8), 0xa5);
        assert_eq!(std::ptr::read_volatile(low as *const u8), 0x5a);
    }
}

#[test]
fn size_classes_round_up_to_powers_of_two() {
    let bytes = |size| SizeClass::of(size).unwrap().bytes();
    assert_eq!(bytes(0), 32 << 10);
    assert_eq!(bytes(1), 32 << 10);
    assert_eq!(bytes(16 << 10), 32 << 10);
    assert_eq!(bytes(32 << 10), 32 << 10);
    assert_eq!(bytes((32 << 10) + 1), 64 << 10);
    assert_eq!(bytes(DEFAULT_STACK_SIZE), DEFAULT_STACK_SIZE);
    assert_eq!(bytes(DEFAULT_STACK_SIZE - 100), DEFAULT_STACK_SIZE);
    assert_eq!(bytes(1 << 30), 1 << 30);
    let err = SizeClass::of((1 << 30) + 1).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("1 GiB"), "{err}");
    assert!(SizeClass::of(usize::MAX).is_err());
}

#[test]
fn take_gives_usable_guarded_stacks_of_per_spawn_sizes() {
    for layout in layouts() {
        let mut pool = pool(layout);
        for size in [1, 20 << 10, DEFAULT_STACK_SIZE, 300 << 10, 4 << 20] {
            let stack = pool.take(size).unwrap();
            assert!(stack.size() >= size && stack.size().is_power_of_two());
            let (start, len) = stack.span();
            assert_eq!(stack.limit().get(), start);
            assert_eq!(stack.base().get(), start + len);
            assert_eq!(len, stack.size() + DEFAULT_GUARD_SIZE);
            touch_ends(&stack);
            // The guard is registered, the usable part is not a guard.
            let hit = registry::lookup(start + DEFAULT_GUARD_SIZE - 1).expect("guard registered");
            assert_eq!((hit.slot_start, hit.slot_top, hit.guard), (start, start + len, DEFAULT_GUARD_SIZE));
            assert!(registry::lookup(start).is_some());
            assert!(registry::lookup(start + DEFAULT_GUARD_SIZE).is_none());
            assert!(registry::lookup(start + len - 1).is_none());
            pool.give(stack);
        }
    }
}

#[test]
fn given_stack_is_reused_first() {
    for layout in layouts() {
        let mut pool = pool(layout);
        let a = pool.take(DEFAULT_STACK_SIZE).unwrap();
        let b = pool.take(DEFAULT_STACK_SIZE).unwrap();
        let (a_start, b_start) = (a.span().0, b.span().0);
        assert_ne!(a_start, b_start);
        pool.give(a);
        pool.give(b);
        // Most recently given first.
        assert_eq!(pool.take(DEFAULT_STACK_SIZE).unwrap().span().0, b_start);
        let again = pool.take(DEFAULT_STACK_SIZE - 1000).unwrap();
        assert_eq!(again.span().0, a_start);
        // Another class does not take it.
        let small = pool.take(32 << 10).unwrap();
        assert_ne!(small.span().0, a_start);
        assert_eq!(small.size(), 32 << 10);
        pool.give(again);
        pool.give(small);
    }
}

#[test]
fn owner_is_recorded_for_the_handler_and_cleared_on_give() {
    for layout in layouts() {
        let mut pool = pool(layout);
        let name: Arc<str> = Arc::from("worker-7");
        let mut stack = pool.take(DEFAULT_STACK_SIZE).unwrap();
        // SAFETY: `name` outlives the stack's use (it is given back below, before `name` drops).
        unsafe { stack.set_owner(42, Some(&name)) };
        let guard_addr = stack.span().0;
        let hit = registry::lookup(guard_addr).unwrap();
        // SAFETY: `name` is alive and nothing changes the owner concurrently.
        let (id, got) = unsafe { (*hit.owner).read() };
        assert_eq!((id, got), (42, Some(&b"worker-7"[..])));
        pool.give(stack);
        // SAFETY: as above; the owner was cleared.
        let read = unsafe { (*hit.owner).read() };
        assert_eq!(read, (0, None));
        let mut stack = pool.take(DEFAULT_STACK_SIZE).unwrap();
        // SAFETY: no name to keep alive.
        unsafe { stack.set_owner(43, None) };
        let owner = registry::lookup(guard_addr).unwrap().owner;
        // SAFETY: nothing changes the owner concurrently, and there is no name.
        let read = unsafe { (*owner).read() };
        assert_eq!(read, (43, None));
        pool.give(stack);
    }
}

#[test]
fn pool_trims_above_its_cap_and_the_arena_reuses_trimmed_slots() {
    if !sys::guard_installs_supported() {
        return;
    }
    let arena = StackArena::new(StackConfig::default()).unwrap();
    let class = SizeClass::of(DEFAULT_STACK_SIZE).unwrap();
    let cap = packed_cap(class);
    assert_eq!(cap, 4096, "the default class keeps 4,096 stacks at most");
    let mut pool = StackPool::new(arena.clone());
    let total = cap + 200;
    let stacks: Vec<_> = (0..total).map(|_| pool.take(DEFAULT_STACK_SIZE).unwrap()).collect();
    let starts: Vec<_> = stacks.iter().map(|s| s.span().0).collect();
    for stack in &stacks {
        touch_ends(stack);
    }
    assert_eq!(arena.outstanding(), total);
    stacks.into_iter().for_each(|s| pool.give(s));
    // The pool kept at most its cap, and at least three quarters of it (hysteresis); the rest
    // went back, pages discarded.
    let kept = pool.pooled(class);
    assert!(kept <= cap && kept >= cap - cap / 4, "{kept}");
    assert_eq!(arena.outstanding(), kept);
    // A second pool (another worker) gets the trimmed slots, zeroed, before any new one.
    let mut other = StackPool::new(arena.clone());
    let chunks = arena.chunks(class);
    let reused: Vec<_> = (0..100).map(|_| other.take(DEFAULT_STACK_SIZE).unwrap()).collect();
    assert_eq!(arena.chunks(class), chunks);
    for stack in &reused {
        assert!(starts.contains(&stack.span().0));
        let top = stack.base().get();
        // SAFETY: the stack's usable memory, owned by `stack`.
        let byte = unsafe { std::ptr::read_volatile((top - 1) as *const u8) };
        assert_eq!(byte, 0, "discarded");
    }
    reused.into_iter().for_each(|s| other.give(s));
    drop((pool, other));
    assert_eq!(arena.outstanding(), 0);
}

/// Stacks of `arena` that are neither in its free list nor unmapped: packed ones out, or
/// separate ones live.
fn held(arena: &StackArena) -> usize {
    if arena.is_packed() { arena.outstanding() } else { arena.separate_live() }
}

/// Writes `mark` to the top byte of `stack`'s usable memory.
fn mark(stack: &GreenStack, mark: u8) {
    // SAFETY: the top byte of the stack's usable memory, owned by `stack`, not in use.
    unsafe { std::ptr::write_volatile((stack.base().get() - 1) as *mut u8, mark) };
}

/// Reads the top byte of `stack`'s usable memory.
fn read_mark(stack: &GreenStack) -> u8 {
    // SAFETY: as in `mark`.
    unsafe { std::ptr::read_volatile((stack.base().get() - 1) as *const u8) }
}

/// Regression: the old count watermark (64) trimmed a chain of 66 green threads on every round.
#[test]
fn a_reused_working_set_of_100_is_never_trimmed() {
    for layout in layouts() {
        let config = StackConfig { layout, ..StackConfig::default() };
        let arena = StackArena::new(config).unwrap();
        let class = SizeClass::of(DEFAULT_STACK_SIZE).unwrap();
        let mut pool = StackPool::new(arena.clone());
        let stacks: Vec<_> = (0..100).map(|_| pool.take(DEFAULT_STACK_SIZE).unwrap()).collect();
        let mut starts: Vec<_> = stacks.iter().map(|s| s.span().0).collect();
        starts.sort_unstable();
        stacks.iter().for_each(|s| mark(s, 0xa5));
        stacks.into_iter().for_each(|s| pool.give(s));
        let t0 = Instant::now();
        pool.maintain(t0);
        // Each round uses the whole set, and a trim pass falls between every two rounds: the
        // set is never idle for a whole interval.
        for round in 1..=50u32 {
            let stacks: Vec<_> = (0..100).map(|_| pool.take(DEFAULT_STACK_SIZE).unwrap()).collect();
            let mut got: Vec<_> = stacks.iter().map(|s| s.span().0).collect();
            got.sort_unstable();
            assert_eq!(got, starts, "round {round}: the same stacks");
            for stack in &stacks {
                assert_eq!(read_mark(stack), 0xa5, "round {round}: pages kept, not discarded");
            }
            stacks.into_iter().for_each(|s| pool.give(s));
            pool.maintain(t0 + TRIM_AGE * round);
            assert_eq!(pool.pooled(class), 100, "round {round}");
            assert_eq!(held(&arena), 100, "{layout:?} round {round}");
        }
        drop(pool);
        assert_eq!(held(&arena), 0);
    }
}

#[test]
fn maintain_gives_back_the_stacks_idle_for_trim_age() {
    for layout in layouts() {
        let config = StackConfig { layout, ..StackConfig::default() };
        let arena = StackArena::new(config).unwrap();
        let class = SizeClass::of(DEFAULT_STACK_SIZE).unwrap();
        let mut pool = StackPool::new(arena.clone());
        let stacks: Vec<_> = (0..100).map(|_| pool.take(DEFAULT_STACK_SIZE).unwrap()).collect();
        stacks.into_iter().for_each(|s| pool.give(s));
        assert_eq!(pool.next_maintain(), None, "no interval started yet");
        // The first call starts the first interval: the stacks were never watched.
        let t0 = Instant::now();
        pool.maintain(t0);
        assert_eq!(pool.pooled(class), 100);
        assert_eq!(pool.next_maintain(), Some(t0 + TRIM_AGE));
        // 30 stacks are used during the interval, 70 are not.
        let used: Vec<_> = (0..30).map(|_| pool.take(DEFAULT_STACK_SIZE).unwrap()).collect();
        let mut used_starts: Vec<_> = used.iter().map(|s| s.span().0).collect();
        used_starts.sort_unstable();
        used.into_iter().for_each(|s| pool.give(s));
        // Before the interval is over: nothing happens.
        pool.maintain(t0 + TRIM_AGE - Duration::from_millis(1));
        assert_eq!(pool.pooled(class), 100);
        assert_eq!(held(&arena), 100);
        // Over: the 70 idle ones go back; the 30 used ones stay.
        pool.maintain(t0 + TRIM_AGE);
        assert_eq!(pool.pooled(class), 30);
        assert_eq!(held(&arena), 30, "{layout:?}");
        let kept: Vec<_> = (0..30).map(|_| pool.take(DEFAULT_STACK_SIZE).unwrap()).collect();
        let mut kept_starts: Vec<_> = kept.iter().map(|s| s.span().0).collect();
        kept_starts.sort_unstable();
        assert_eq!(kept_starts, used_starts, "the ones used in the interval are kept");
        kept.into_iter().for_each(|s| pool.give(s));
        // Taking them all just now makes the low-water mark 0: a pass releases nothing.
        let t1 = t0 + TRIM_AGE * 2;
        assert_eq!(pool.next_maintain(), Some(t1));
        pool.maintain(t1);
        assert_eq!(pool.pooled(class), 30);
        // Idle for a whole interval more: all go back, and there is nothing left to wake for.
        pool.maintain(t1 + TRIM_AGE * 5);
        assert_eq!(pool.pooled(class), 0);
        assert_eq!(held(&arena), 0, "{layout:?}");
        assert_eq!(pool.next_maintain(), None);
    }
}

#[test]
fn hundred_thousand_packed_stacks_need_only_a_few_mappings() {
    if !sys::guard_installs_supported() {
        eprintln!("MADV_GUARD_INSTALL unsupported here: skipped");
        return;
    }
    let _serial = map_count_lock();
    let before = sys::count_maps().unwrap();
    let arena = StackArena::new(StackConfig::default()).unwrap();
    let class = SizeClass::of(DEFAULT_STACK_SIZE).unwrap();
    let mut pool = StackPool::new(arena.clone());
    let started = Instant::now();
    let stacks: Vec<_> = (0..100_000).map(|_| pool.take(DEFAULT_STACK_SIZE).unwrap()).collect();
    let took = started.elapsed();
    let during = sys::count_maps().unwrap();
    let chunks = arena.chunk_spans(class);
    let ours: usize = chunks.iter().map(|&(start, len)| vmas_in(start, len)).sum();
    eprintln!(
        "100,000 stacks: {took:?} ({:?} each), {} chunks in {ours} kernel mappings; \
         process mappings {before} -> {during}",
        took / 100_000,
        chunks.len(),
    );
    // Exactly: at most one kernel mapping per chunk (adjacent chunks may even merge), and few
    // chunks. The process's own count is only printed: other tests' runtimes and threads map
    // and unmap meanwhile (it went 91 -> 208 in a loaded run).
    assert!(chunks.len() <= 9, "{} chunks", chunks.len());
    assert!(ours <= chunks.len(), "{ours} mappings for {} chunks", chunks.len());
    // Every one is distinct and usable.
    touch_ends(&stacks[0]);
    touch_ends(&stacks[99_999]);
    stacks.into_iter().for_each(|s| pool.give(s));
    drop(pool);
    assert_eq!(arena.outstanding(), 0);
    // The arena forgets its chunks when it drops (and unmaps them: not checked here, since the
    // other tests of this process may map the same addresses again at once).
    drop(arena);
    assert!(registry::lookup(chunks[0].0 + chunks[0].1 - 1).is_none());
}

#[test]
fn separate_layout_soft_cap_gives_a_clear_error_and_recovers() {
    let _serial = map_count_lock();
    let config = StackConfig { layout: StackLayout::Separate, separate_cap: Some(10), ..StackConfig::default() };
    let arena = StackArena::new(config).unwrap();
    assert!(!arena.is_packed());
    let mut pool = StackPool::new(arena.clone());
    let mut stacks: Vec<_> = (0..10).map(|_| pool.take(DEFAULT_STACK_SIZE).unwrap()).collect();
    for stack in &stacks {
        assert!(matches!(stack.kind(), Kind::Separate(_)));
        let (start, len) = stack.span();
        assert_eq!(vmas_in(start, len), 2, "guard and stack");
    }
    assert_eq!(arena.separate_live(), 10);
    // The cap: a clear error, which names the limit, the count and the fix; spawn's early check
    // gives the same.
    let early = arena.admit().unwrap_err();
    let err = pool.take(DEFAULT_STACK_SIZE).unwrap_err();
    assert_eq!(early.to_string(), err.to_string());
    assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
    let msg = err.to_string();
    for needle in
        ["10 stacks are live", "vm.max_map_count = ", "sysctl -w vm.max_map_count=262144", "fewer green threads"]
    {
        assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
    }
    // The failure leaked nothing, and memory still works.
    assert_eq!(arena.separate_live(), 10);
    let big = vec![1u8; 64 << 20];
    assert_eq!(big[(64 << 20) - 1], 1);
    drop(big);
    // A stack given back is taken again (and counts as available to spawn meanwhile).
    pool.give(stacks.pop().unwrap());
    arena.admit().unwrap();
    stacks.push(pool.take(DEFAULT_STACK_SIZE).unwrap());
    assert!(arena.admit().is_err());
    assert_eq!(arena.separate_live(), 10);
    // Separate stacks trimmed or dropped with the pool are unmapped and unregistered.
    let spans: Vec<_> = stacks.iter().map(GreenStack::span).collect();
    stacks.into_iter().for_each(|s| pool.give(s));
    drop(pool);
    assert_eq!(arena.separate_live(), 0);
    for (start, _) in spans {
        assert!(registry::lookup(start).is_none());
    }
    // And the cap counts them out: the arena gives 10 again.
    let mut pool = StackPool::new(arena.clone());
    let again: Vec<_> = (0..10).map(|_| pool.take(DEFAULT_STACK_SIZE).unwrap()).collect();
    assert!(pool.take(DEFAULT_STACK_SIZE).is_err());
    again.into_iter().for_each(|s| pool.give(s));
}

#[test]
fn arena_with_stacks_outstanding_keeps_its_chunks_mapped() {
    if !sys::guard_installs_supported() {
        return;
    }
    let arena = StackArena::new(StackConfig::default()).unwrap();
    let mut pool = StackPool::new(arena.clone());
    let leaked = pool.take(DEFAULT_STACK_SIZE).unwrap();
    drop(pool);
    drop(arena);
    // The arena is gone, but the slot is still mapped and guarded: as a suspended green thread
    // that was leaked would need.
    touch_ends(&leaked);
    assert!(registry::lookup(leaked.span().0).is_some());
    leaked.into_slot();
}

#[test]
fn altstack_is_installed_while_it_lives_and_restored_after() {
    std::thread::spawn(|| {
        let read = || {
            let mut current = std::mem::MaybeUninit::<libc::stack_t>::zeroed();
            // SAFETY: a null new stack only reads the current one.
            let rc = unsafe { libc::sigaltstack(std::ptr::null(), current.as_mut_ptr()) };
            assert_eq!(rc, 0);
            // SAFETY: filled in by sigaltstack.
            unsafe { current.assume_init() }
        };
        let before = read();
        {
            let alt = AltStack::install().unwrap();
            let now = read();
            assert_eq!(now.ss_flags & libc::SS_DISABLE, 0);
            assert!(now.ss_size >= 64 << 10, "{}", now.ss_size);
            // Installing twice keeps the first (large enough).
            let nested = AltStack::install().unwrap();
            assert_eq!(read().ss_sp, now.ss_sp);
            drop(nested);
            assert_eq!(read().ss_sp, now.ss_sp);
            drop(alt);
        }
        let after = read();
        assert_eq!((after.ss_sp, after.ss_size, after.ss_flags), (before.ss_sp, before.ss_size, before.ss_flags));
    })
    .join()
    .unwrap();
}

/// Prints what a fresh stack and a reused one cost: `cargo test --release -- --ignored
/// --nocapture stack_costs`.
#[test]
#[ignore = "a measurement, not a check"]
fn stack_costs() {
    for layout in layouts() {
        const N: usize = 20_000;
        let mut pool = pool(layout);
        // Fresh: carve + guard install (or mmap + mprotect + register) + first touch of the top.
        let started = Instant::now();
        let mut stacks = Vec::with_capacity(N);
        for _ in 0..N {
            let stack = pool.take(DEFAULT_STACK_SIZE).unwrap();
            // SAFETY: the top byte of the stack's usable memory, owned by `stack`.
            unsafe { std::ptr::write_volatile((stack.base().get() - 64) as *mut u8, 1) };
            stacks.push(stack);
        }
        let fresh = started.elapsed() / N as u32;
        let started = Instant::now();
        for stack in stacks.drain(..) {
            pool.give(stack);
        }
        let give_all = started.elapsed() / N as u32;
        // Reused: take + give of a pooled stack.
        let started = Instant::now();
        for _ in 0..1_000_000 {
            let stack = pool.take(DEFAULT_STACK_SIZE).unwrap();
            pool.give(std::hint::black_box(stack));
        }
        let reused = started.elapsed() / 1_000_000;
        // Trimmed: from the arena's free list + first touch again.
        let started = Instant::now();
        for _ in 0..N {
            let stack = pool.take(DEFAULT_STACK_SIZE).unwrap();
            // SAFETY: as above.
            unsafe { std::ptr::write_volatile((stack.base().get() - 64) as *mut u8, 1) };
            stacks.push(stack);
        }
        let from_arena = started.elapsed() / N as u32;
        stacks.into_iter().for_each(|s| pool.give(s));
        eprintln!(
            "{layout:?}: fresh take + first touch {fresh:?}; give (with trims) {give_all:?}; \
             pooled take + give {reused:?}; trimmed take + first touch {from_arena:?}"
        );
    }
}

/// Memory the process has locked (`mlock`, `mlockall`) cannot be discarded: trimming such a
/// packed stack, and dropping the pool that holds it, keep its pages instead of failing (a
/// separate stack is unmapped when trimmed, locked or not).
#[test]
fn trimming_locked_stack_memory_keeps_the_pages() {
    for layout in layouts() {
        let mut pool = pool(layout);
        let stack = pool.take(DEFAULT_STACK_SIZE).unwrap();
        let (start, len) = stack.span();
        let top_page = start + len - 4096;
        // SAFETY: the page is part of the stack's usable range, mapped while the stack lives.
        let locked = unsafe { libc::mlock(top_page as *const libc::c_void, 4096) };
        assert_eq!(locked, 0, "mlock: {}", std::io::Error::last_os_error());
        mark(&stack, 0x5a);
        pool.give(stack);
        let t0 = Instant::now();
        pool.maintain(t0);
        pool.maintain(t0 + TRIM_AGE * 2); // idle for a whole interval: trimmed
        let again = pool.take(DEFAULT_STACK_SIZE).unwrap();
        if layout == StackLayout::Auto {
            assert_eq!(again.span().0, start, "the same stack back");
            assert_eq!(read_mark(&again), 0x5a, "locked pages kept their contents");
        }
        pool.give(again);
        drop(pool);
    }
}
