//! Attribute macros of the [`green`](https://docs.rs/green) green-thread runtime.
//!
//! Use them through `green`, which re-exports them: `#[green::preemptible]` puts the budget's
//! ticks into a CPU-bound function so it shares its worker, and `#[green::main]` runs `fn main`
//! as the first green thread of a runtime. The expansions refer to `::green`, so this crate is
//! of no use without it.
//!
//! ```
//! #[green::preemptible]
//! fn busy(n: u64) -> u64 {
//!     let mut acc = 0;
//!     for i in 0..n {
//!         acc ^= i.wrapping_mul(0x9e37_79b9);
//!     }
//!     acc
//! }
//!
//! #[green::main]
//! fn main() {
//!     assert_eq!(busy(4), 0x9e37_79b9 ^ (2 * 0x9e37_79b9) ^ (3 * 0x9e37_79b9));
//! }
//! ```

use proc_macro::TokenStream;

mod main_fn;
mod preemptible;

/// Makes a CPU-bound function share its worker: a tick at function entry and on every loop
/// back-edge, the closest thing to an interpreter counting opcodes.
///
/// A green thread that computes for a long time without calling into the runtime holds its
/// worker, and every other green thread on that worker waits. A tick ([`green::tick`]) is a
/// thread-local decrement and a branch; when the budget runs out the runtime looks at the clock
/// and yields only if the time slice is over *and* another green thread on the worker is
/// waiting. This attribute writes the ticks for you.
///
/// [`green::tick`]: https://docs.rs/green/latest/green/fn.tick.html
///
/// # Where the ticks go
///
/// - **At function entry**: one tick, so recursion without loops is counted too.
/// - **`loop`, `while`, `while let`, and `for` loops in general**: one tick per iteration, as the
///   first statement of the loop body (so `continue` passes it too). The iteration is counted
///   in a local counter (a register) and charged to the budget 256 ticks at a time (fewer when
///   the budget has fewer left, so a small budget is kept to the iteration): a thread-local
///   update per iteration is a dependency through memory that slowed a tight `while` loop by
///   14% here; the counter costs at most about 2% on a dependent arithmetic chain and on a
///   tight branchy `while` loop of a few instructions (docs/benchmarks.md has the figures).
///   Other loops of a few instructions have measured more, since where the compiler puts the
///   counter's branch moves the loop's layout: +13 to +43% on an insertion sort, +28 to +38% on
///   an indexed `while i < v.len()` scan. A light loop over a slice or range is cheaper as a
///   `for` loop, which runs in chunks (below); a hot helper of a few instructions is better left
///   without the attribute and called from an annotated loop, whose iteration ticks. The
///   function (and each closure with loops) has its own counter, and what it counted since its
///   last charge is dropped when the call returns: a loop of fewer than 256 iterations in a
///   function called over and over spends the entry tick per call, not a tick per iteration
///   (100,000 calls of a 100-iteration loop looked at the clock 108 times, against 9,765 with
///   a tick each). If such iterations are heavy, call [`green::tick`] in the loop. A loop that
///   the compiler would otherwise replace with a closed form (a sum over a range that breaks at
///   a computed index, say) has to run in full once it ticks: such a loop can be many times
///   slower annotated; keep it in a function of its own, without the attribute.
/// - **A light innermost `for` loop** is counted per chunk of items instead, because a tick per
///   item would stop it from being vectorised (the tick's slow path is a call, and LLVM does not
///   vectorise a loop that may call; measured here: a `u32` sum over a slice ran 6 to 12 times
///   slower with a tick per item, and 4 to 11 times with a counter that ticks every 64 items,
///   against about 2% counted by chunks). *Light* means the body has no loop, no macro,
///   closure, `async` block or nested item, and calls nothing but constructors (`Some(x)`) and
///   a short list of cheap standard methods (`wrapping_add`, `min`, `abs`, `len`, `get`,
///   `unwrap`, comparisons, ...). A loop over a slice (`&[T]`,
///   `&mut [T]`, `&Vec<T>`, `&[T; N]`, `.iter()`, `.iter_mut()`) or an integer range (`a..b`)
///   runs as a plain loop over sub-slices or sub-ranges of up to 65,536 items (no more than the
///   budget has ticks left for), charging one tick per 64 items at the start of each; over any
///   other iterator it runs in chunks of up to 64 items, charging a tick per item at the start
///   of each (the iterator's `next` is a call of unknown cost: `lines.iter().map(parse)`). The
///   type decides at compile time; the items, their order and every call to the iterator's
///   `next` are those of the original loop.
///
/// A loop body that calls a function of unknown cost is ticked once per iteration: a light body
/// is a bounded number of instructions, a call is not.
///
/// # Meaning is kept
///
/// Labels, `break 'label`, `break value` out of `loop`, `continue` and `continue 'label`, early
/// `return`, `?`, nested loops and loops used as expressions (`let x = loop { break 5; };`) all
/// behave exactly as without the attribute. The expression of a `for` loop is evaluated once,
/// and its temporaries live until the loop ends, as they do in a `for` loop.
///
/// # What is covered
///
/// - Loops in **closures** inside the function are covered: such a closure ticks at entry, and
///   its loops on their back-edges, like the function.
/// - **Nested items** (a `fn` inside the function, `impl` blocks, `const` and `static` items)
///   are not the annotated function and are not rewritten: annotate them separately.
/// - **`async` blocks and closures** and constant contexts (`const` blocks, array lengths) are
///   not rewritten.
/// - Loops inside **macro invocations** (`vec![..]`, your own macros) are not seen: the macro's
///   tokens are not parsed.
/// - Functions it calls are not rewritten: annotate them too, or call [`green::tick`] in them.
/// - **Iterator chains** (`.map(..).filter(..).sum()`, `fold`, `collect`) are calls, not loops:
///   their loops are in the standard library, and a closure given to an adapter ticks only if
///   it has loops of its own. A chain of a million items spends no more than the entry tick:
///   put [`.ticking()`] in it (a tick per item), or write it as a `for` loop.
///
/// [`.ticking()`]: https://docs.rs/green/latest/green/trait.TickingExt.html#method.ticking
///
/// # In parallel computations
///
/// The ticks are for sharing a worker, and on a runtime that only computes they work against
/// the spread of the work. When a ticking green thread's time slice is over, the green threads
/// spawned on its worker and not started yet count as waiting, so the worker starts the next
/// one; within a few slices all of them have started there, and a started green thread is never
/// stolen. An idle worker that comes late finds nothing to take. Keep the leaves of such work
/// plain loops, short ones, or give their green threads a long
/// [`time_slice`](https://docs.rs/green/latest/green/struct.Builder.html#method.time_slice).
/// On a recursive function the tick at every call costs the most: a counter of N-queens
/// solutions, a few ns per call, ran 1.2 to 1.5 times slower annotated. Annotate the function
/// whose loop calls the recursion instead. The project's docs/design.md, "CPU-parallel work",
/// has the measurements.
///
/// # Errors
///
/// It goes on a function with a body: a free function, a method in an `impl` block, or a trait
/// method with a default body. A `const fn` (a tick cannot run at compile time) and an
/// `async fn` (its body runs inside an executor's `poll`, which shares its thread at `.await`
/// points) are rejected at compile time, with the error on the keyword.
///
/// The expansion calls `::green::__private`; if `green` is renamed in your `Cargo.toml`, say
/// where it is: `#[green::preemptible(crate = my_green)]`.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::time::Duration;
///
/// #[green::preemptible]
/// fn collatz_steps(mut n: u64) -> u32 {
///     let mut steps = 0;
///     while n != 1 {
///         // a tick per iteration goes here
///         n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
///         steps += 1;
///     }
///     steps
/// }
///
/// #[green::preemptible]
/// fn sum(values: &[u64]) -> u64 {
///     let mut total = 0u64;
///     for &v in values {
///         // light: counted per chunk, still vectorised
///         total = total.wrapping_add(v);
///     }
///     total
/// }
///
/// let rt = green::Runtime::builder().workers(1).build()?;
/// rt.block_on(|| {
///     assert_eq!(collatz_steps(27), 111);
///     assert_eq!(sum(&[1, 2, 3]), 6);
///
///     // On one worker, a busy loop that ticks lets a sleeper in.
///     let woke = Arc::new(AtomicBool::new(false));
///     let sleeper = {
///         let woke = woke.clone();
///         green::spawn(move || {
///             green::sleep(Duration::from_millis(1));
///             woke.store(true, Ordering::Release);
///         })
///     };
///     #[green::preemptible]
///     fn spin_until(flag: &AtomicBool) -> u64 {
///         let mut spins = 0u64;
///         while !flag.load(Ordering::Acquire) {
///             spins += 1;
///         }
///         spins
///     }
///     spin_until(&woke);
///     sleeper.join().unwrap();
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
#[proc_macro_attribute]
pub fn preemptible(attr: TokenStream, item: TokenStream) -> TokenStream {
    preemptible::expand(attr.into(), item.into()).into()
}

/// Runs `fn main` as the first green thread of a runtime with the default settings.
///
/// `#[green::main] fn main() -> R { body }` becomes, in effect,
/// `fn main() -> R { green::run(|| -> R { body }) }`:
/// the body runs on a green thread, and when it returns, green threads still alive are
/// cancelled and the runtime shuts down (see [`green::run`]). `main` may return a `Result` or
/// any other [`Termination`](std::process::Termination), and `?` and `return` keep their
/// meaning. On an associated function the body may name `Self`, except when the return type
/// holds `impl Trait` (which a closure's may not): the body is then a function of its own, and
/// sees no `Self`. For other settings (workers, stack size, budget), build
/// a runtime with `green::Runtime::builder()` instead. The body's stack is a green thread's,
/// 256 KiB by default, not the 8 MiB of a plain `main`: deep recursion in it needs
/// `green::Runtime::builder().stack_size(..).run(..)`.
///
/// It goes on any function without parameters, not only `main`; there is no separate test
/// attribute: `#[test] #[green::main] fn name() { .. }` runs a test's body on a runtime of its
/// own.
///
/// [`green::run`]: https://docs.rs/green/latest/green/fn.run.html
///
/// # Errors
///
/// It goes on a function without parameters or generics; `async fn` and `const fn` are
/// rejected at compile time. `#[green::main(crate = my_green)]` names a renamed `green`.
///
/// # Example
///
/// ```
/// use std::time::Duration;
///
/// #[green::main]
/// fn main() -> Result<(), std::num::ParseIntError> {
///     let children: Vec<_> = ["1", "2", "3"]
///         .into_iter()
///         .map(|s| {
///             green::spawn(move || {
///                 green::sleep(Duration::from_millis(1));
///                 s.parse::<u32>()
///             })
///         })
///         .collect();
///     let mut total = 0;
///     for child in children {
///         total += child.join().unwrap()?;
///     }
///     assert_eq!(total, 6);
///     Ok(())
/// }
/// ```
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    main_fn::expand(attr.into(), item.into()).into()
}

/// Error for a `crate = ..` whose value is not a path.
const NOT_A_CRATE_PATH: &str = "`crate = ..` takes the path of the `green` crate, such as `crate = my_green` or \
    `crate = \"::my_green\"`";

/// Parses an attribute's arguments: nothing, or `crate = path` (a path, or a string holding
/// one). Returns the path of the `green` crate; `bad_args` is the error for anything else.
fn parse_crate_arg(attr: proc_macro2::TokenStream, bad_args: &str) -> syn::Result<syn::Path> {
    use syn::parse::Parser;

    let mut krate: syn::Path = syn::parse_quote!(::green);
    if attr.is_empty() {
        return Ok(krate);
    }
    let mut seen = false;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            if std::mem::replace(&mut seen, true) {
                return Err(meta.error("`crate` is given twice: name the green crate once"));
            }
            // `crate` alone, or `crate(..)`: syn's "expected `=`" would be spanned on the
            // whole attribute.
            if !meta.input.peek(syn::Token![=]) {
                return Err(meta.error(NOT_A_CRATE_PATH));
            }
            let value = meta.value()?;
            let span = value.span();
            let path = if value.peek(syn::LitStr) {
                value.parse::<syn::LitStr>().and_then(|lit| lit.parse())
            } else {
                value.parse()
            };
            krate = path.map_err(|_| syn::Error::new(span, NOT_A_CRATE_PATH))?;
            Ok(())
        } else {
            Err(meta.error(bad_args))
        }
    });
    parser.parse2(attr)?;
    Ok(krate)
}

#[cfg(test)]
mod tests;
