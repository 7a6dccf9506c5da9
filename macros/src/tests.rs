//! Expansion tests: what the macros write, token for token.

use proc_macro2::TokenStream;
use quote::quote;

/// The tokens as text without spaces: `&&` and `& &`, `||` and `| |` print differently for
/// the same meaning.
fn squash(tokens: impl ToString) -> String {
    tokens.to_string().chars().filter(|c| !c.is_whitespace()).collect()
}

fn preemptible(attr: TokenStream, item: TokenStream) -> String {
    squash(crate::preemptible::expand(attr, item))
}

fn main_fn(attr: TokenStream, item: TokenStream) -> String {
    squash(crate::main_fn::expand(attr, item))
}

#[test]
fn entry_and_every_kind_of_loop() {
    let out = preemptible(
        quote!(),
        quote! {
            fn f(mut n: u32, v: Vec<u32>) -> u32 {
                loop { if n == 0 { break; } n -= 1; }
                while n < 3 { n += 1; }
                while let Some(x) = v.pop() { n += x; }
                for x in v { n += g(x); }
                n
            }
        },
    );
    let want = quote! {
        fn f(mut n: u32, v: Vec<u32>) -> u32 {
            ::green::__private::tick();
            let mut __green_edges: u32 = ::green::__private::edge_batch();
            loop { ::green::__private::back_edge(&mut __green_edges); if n == 0 { break; } n -= 1; }
            while n < 3 { ::green::__private::back_edge(&mut __green_edges); n += 1; }
            while let Some(x) = v.pop() { ::green::__private::back_edge(&mut __green_edges); n += x; }
            for x in v { ::green::__private::back_edge(&mut __green_edges); n += g(x); }
            n
        }
    };
    assert_eq!(out, squash(want));
}

#[test]
fn nested_loops_labels_and_values_are_untouched_but_for_the_ticks() {
    let out = preemptible(
        quote!(),
        quote! {
            fn f() -> u32 {
                let x = 'outer: loop {
                    for i in 0..10 {
                        if i == 3 { continue 'outer; }
                        if g(i) { break 'outer i; }
                    }
                    return 7;
                };
                x
            }
        },
    );
    let want = quote! {
        fn f() -> u32 {
            ::green::__private::tick();
            let mut __green_edges: u32 = ::green::__private::edge_batch();
            let x = 'outer: loop {
                ::green::__private::back_edge(&mut __green_edges);
                for i in 0..10 {
                    ::green::__private::back_edge(&mut __green_edges);
                    if i == 3 { continue 'outer; }
                    if g(i) { break 'outer i; }
                }
                return 7;
            };
            x
        }
    };
    assert_eq!(out, squash(want));
}

#[test]
fn a_light_innermost_for_loop_is_chunked_with_its_jumps_redirected() {
    let out = preemptible(
        quote!(),
        quote! {
            fn f(v: &[u32]) -> u32 {
                let mut s = 0;
                'a: for &x in v {
                    if x == 0 { continue 'a; }
                    if x > 9 { break; }
                    s = s.wrapping_add(x);
                }
                s
            }
        },
    );
    let want = quote! {
        fn f(v: &[u32]) -> u32 {
            ::green::__private::tick();
            #[allow(unused_imports)]
            use ::green::__private::{ForChunksAny as _, ForChunksSliceOrRange as _};
            let mut s = 0;
            match (&&::green::__private::ForChunks::new(v)).__green_for_chunks() {
                mut __green_src => '__green_done: {
                    let ::core::option::Option::Some(mut __green_chunk) =
                        ::green::__private::Chunks::next_chunk(&mut __green_src) else { break '__green_done; };
                    'a: loop {
                        '__green_items: for &x in __green_chunk {
                            if x == 0 { continue '__green_items; }
                            if x > 9 { break 'a; }
                            s = s.wrapping_add(x);
                        }
                        match ::green::__private::Chunks::next_chunk(&mut __green_src) {
                            ::core::option::Option::Some(__green_next) => __green_chunk = __green_next,
                            ::core::option::Option::None => break '__green_done,
                        }
                    }
                }
            }
            s
        }
    };
    assert_eq!(out, squash(want));
}

#[test]
fn an_unlabelled_light_loop_gets_labels_only_where_needed() {
    let out = preemptible(
        quote!(),
        quote! {
            fn f(v: &[u32]) -> u32 {
                let mut s = 0;
                for x in v { s += x; }
                for x in v { if *x == 0 { break; } }
                s
            }
        },
    );
    let want = quote! {
        fn f(v: &[u32]) -> u32 {
            ::green::__private::tick();
            #[allow(unused_imports)]
            use ::green::__private::{ForChunksAny as _, ForChunksSliceOrRange as _};
            let mut s = 0;
            match (&&::green::__private::ForChunks::new(v)).__green_for_chunks() {
                mut __green_src => '__green_done: {
                    let ::core::option::Option::Some(mut __green_chunk) =
                        ::green::__private::Chunks::next_chunk(&mut __green_src) else { break '__green_done; };
                    loop {
                        for x in __green_chunk { s += x; }
                        match ::green::__private::Chunks::next_chunk(&mut __green_src) {
                            ::core::option::Option::Some(__green_next) => __green_chunk = __green_next,
                            ::core::option::Option::None => break '__green_done,
                        }
                    }
                }
            }
            match (&&::green::__private::ForChunks::new(v)).__green_for_chunks() {
                mut __green_src => '__green_done: {
                    let ::core::option::Option::Some(mut __green_chunk) =
                        ::green::__private::Chunks::next_chunk(&mut __green_src) else { break '__green_done; };
                    '__green_chunks: loop {
                        for x in __green_chunk { if *x == 0 { break '__green_chunks; } }
                        match ::green::__private::Chunks::next_chunk(&mut __green_src) {
                            ::core::option::Option::Some(__green_next) => __green_chunk = __green_next,
                            ::core::option::Option::None => break '__green_done,
                        }
                    }
                }
            }
            s
        }
    };
    assert_eq!(out, squash(want));
}

#[test]
fn heavy_bodies_tick_per_iteration() {
    // A call of unknown cost, a macro, a closure: one tick per iteration, no chunks.
    for body in [quote!(s += f(x);), quote!(println!("{x}");), quote!(s += (|| *x)();), quote!(s += x.count();)] {
        let out = preemptible(quote!(), quote!(fn f(v: &[u32]) { for x in v { #body } }));
        let want = quote!(fn f(v: &[u32]) { ::green::__private::tick(); let mut __green_edges: u32 = ::green::__private::edge_batch(); for x in v { ::green::__private::back_edge(&mut __green_edges); #body } });
        assert_eq!(out, squash(want));
    }
}

#[test]
fn closures_are_covered_nested_items_and_async_blocks_are_not() {
    let out = preemptible(
        quote!(),
        quote! {
            fn f() {
                let c = |n: u32| { let mut k = n; while k > 0 { k -= 1; } };
                fn inner() { loop {} }
                impl S { fn m() { loop {} } }
                let fut = async { loop {} };
                let fut2 = async || { loop {} };
                const N: usize = { let mut i = 0; while i < 3 { i += 1; } i };
                let a = [0u8; { let mut i = 0; while i < 3 { i += 1; } i }];
            }
        },
    );
    let want = quote! {
        fn f() {
            ::green::__private::tick();
            // The closure ticks at entry and counts in its own counter.
            let c = |n: u32| { ::green::__private::tick(); let mut __green_edges: u32 = ::green::__private::edge_batch(); { let mut k = n; while k > 0 { ::green::__private::back_edge(&mut __green_edges); k -= 1; } } };
            fn inner() { loop {} }
            impl S { fn m() { loop {} } }
            let fut = async { loop {} };
            let fut2 = async || { loop {} };
            const N: usize = { let mut i = 0; while i < 3 { i += 1; } i };
            let a = [0u8; { let mut i = 0; while i < 3 { i += 1; } i }];
        }
    };
    assert_eq!(out, squash(want));
}

#[test]
fn a_renamed_crate() {
    let out = preemptible(
        quote!(crate = my_green),
        quote!(
            fn f() {}
        ),
    );
    assert_eq!(
        out,
        squash(quote!(
            fn f() {
                my_green::__private::tick();
            }
        ))
    );
    let out = preemptible(
        quote!(crate = "::a::b"),
        quote!(
            fn f() {}
        ),
    );
    assert_eq!(
        out,
        squash(quote!(
            fn f() {
                ::a::b::__private::tick();
            }
        ))
    );
}

#[test]
fn a_crate_given_twice_is_an_error() {
    let out = preemptible(
        quote!(crate = a, crate = b),
        quote!(
            fn f() {}
        ),
    );
    assert!(out.starts_with("::core::compile_error!"), "{out}");
    assert!(out.contains("giventwice"), "{out}"); // spaces squashed
}

/// A `crate = ..` that is no path says what it takes, for both macros (it used to be syn's
/// "unexpected token" or "expected identifier", spanned on the value; for `crate` without a
/// value, syn's "expected `=`", spanned on the whole attribute).
#[test]
fn a_crate_that_is_not_a_path_says_what_it_takes() {
    for attr in [quote!(crate = "not a path!"), quote!(crate = 5), quote!(crate = ""), quote!(crate), quote!(crate(g))]
    {
        let (f, main) = (
            quote!(
                fn f() {}
            ),
            quote!(
                fn main() {}
            ),
        );
        for out in [preemptible(attr.clone(), f), main_fn(attr, main)] {
            assert!(out.starts_with("::core::compile_error!"), "{out}");
            assert!(out.contains("takesthepathofthe`green`crate"), "{out}"); // spaces squashed
        }
    }
}

/// A `break` with a value in a `for` loop is rustc's error to report (E0571): the loop is left
/// as written, not chunked (where the message would be about mismatched types).
#[test]
fn a_for_loop_that_breaks_with_a_value_is_not_chunked() {
    let out = preemptible(
        quote!(),
        quote!(
            fn f(v: &[u32]) {
                for x in v {
                    if *x > 3 {
                        break 7;
                    }
                }
            }
        ),
    );
    assert!(!out.contains("__green_for_chunks"), "{out}");
    assert!(out.contains("back_edge"), "{out}");
}

#[test]
fn const_async_and_non_functions_are_rejected() {
    for (item, message) in [
        (
            quote!(
                const fn f() {}
            ),
            "cannot go on a `const fn`",
        ),
        (
            quote!(
                pub async fn f() {}
            ),
            "cannot go on an `async fn`",
        ),
        (
            quote!(
                struct S;
            ),
            "goes on a function with a body",
        ),
        (
            quote!(
                fn f();
            ),
            "goes on a function with a body",
        ),
    ] {
        let out = preemptible(quote!(), item.clone());
        assert!(out.starts_with("::core::compile_error!"), "{out}");
        assert!(out.contains(&squash(message)), "{out}");
        // The item is kept as it was, so the rest of the crate still finds it.
        assert!(out.ends_with(&squash(item)), "{out}");
    }
    let out = preemptible(
        quote!(every = 4),
        quote!(
            fn f() {}
        ),
    );
    assert!(out.contains(&squash("takes no arguments but `crate = path`")), "{out}");
}

/// On a block of functions or on a closure, the error says where the attribute goes instead;
/// a `let` statement is kept, so that what uses its variable is not reported too.
#[test]
fn blocks_and_closures_are_told_where_the_attribute_goes() {
    for (item, message, kept) in [
        (quote!(impl S { fn f(&self) {} }), "not on an `impl` block: put it on each of its functions", true),
        (
            quote!(
                trait T {
                    fn f(&self) {}
                }
            ),
            "not on a trait: put it on each of its functions",
            true,
        ),
        (
            quote!(
                mod m {
                    fn f() {}
                }
            ),
            "not on a module: put it on each of its functions",
            true,
        ),
        (quote!(|n: u32| n + 1), "not on a closure: put it on the function the closure is written in", false),
        (quote!(let f = |n: u32| n + 1;), "not on a closure: put it on the function", true),
    ] {
        let out = preemptible(quote!(), item.clone());
        assert!(out.starts_with("::core::compile_error!"), "{out}");
        assert!(out.contains(&squash(message)), "{out}");
        assert_eq!(out.ends_with(&squash(item)), kept, "{out}");
    }
    let out = preemptible(
        quote!(every = 4),
        quote!(
            fn f() {}
        ),
    );
    assert!(out.contains(&squash("`green::Builder::new().budget(..)`")), "{out}");
}

#[test]
fn main_runs_its_body_on_a_runtime() {
    let out = main_fn(
        quote!(),
        quote!(
            fn main() {
                println!("hi");
            }
        ),
    );
    assert_eq!(
        out,
        squash(quote!(
            fn main() {
                ::green::run(|| {
                    println!("hi");
                })
            }
        ))
    );
    let out = main_fn(
        quote!(),
        quote! {
            #[allow(unused)]
            fn main() -> Result<(), String> { #![allow(dead_code)] g()?; Ok(()) }
        },
    );
    let want = quote! {
        #[allow(unused)]
        fn main() -> Result<(), String> {
            #![allow(dead_code)]
            ::green::run(|| -> Result<(), String> { g()?; Ok(()) })
        }
    };
    assert_eq!(out, squash(want));
    let out = main_fn(
        quote!(),
        quote!(
            fn main() -> impl std::process::Termination {
                g();
            }
        ),
    );
    let want = quote!(
        fn main() -> impl std::process::Termination {
            fn __green_main_body() -> impl std::process::Termination {
                g();
            }
            ::green::run(__green_main_body)
        }
    );
    assert_eq!(out, squash(want));
    let out = main_fn(
        quote!(),
        quote!(
            fn main() -> Result<u32, Box<impl std::fmt::Debug>> {
                g()
            }
        ),
    );
    assert!(out.contains("fn__green_main_body()->Result<u32,Box<implstd::fmt::Debug>>"), "{out}");
}

/// The body of an associated function names `Self` as it did without the attribute (a nested
/// function's body cannot: E0401, "can't use `Self` from outer item").
#[test]
fn main_keeps_self_in_scope() {
    let out = main_fn(
        quote!(),
        quote!(
            fn start() -> Self {
                Self::new()
            }
        ),
    );
    assert_eq!(
        out,
        squash(quote!(
            fn start() -> Self {
                ::green::run(|| -> Self { Self::new() })
            }
        ))
    );
}

#[test]
fn main_rejects_what_it_cannot_run() {
    for (item, message) in [
        (
            quote!(
                async fn main() {}
            ),
            "cannot go on an `async fn`",
        ),
        (
            quote!(
                const fn main() {}
            ),
            "cannot go on a `const fn`",
        ),
        (
            quote!(
                fn main(x: u32) {}
            ),
            "without parameters",
        ),
        (
            quote!(
                fn main<T>() {}
            ),
            "without generic parameters",
        ),
        (
            quote!(
                static X: u8 = 1;
            ),
            "goes on a function with a body",
        ),
    ] {
        let out = main_fn(quote!(), item);
        assert!(out.contains(&squash(message)), "{out}");
    }
}

/// `#[green::main] #[green::preemptible] fn main`: `main` expands first, and the body's loops
/// still tick, since `preemptible` covers the closure the body runs in (not a nested function).
#[test]
fn main_then_preemptible_ticks_in_the_body() {
    let main = crate::main_fn::expand(
        quote!(),
        quote!(
            fn main() {
                while g() {}
            }
        ),
    );
    let out = preemptible(quote!(), main);
    let want = quote!(
        fn main() {
            ::green::__private::tick();
            ::green::run(|| {
                ::green::__private::tick();
                let mut __green_edges: u32 = ::green::__private::edge_batch();
                {
                    while g() {
                        ::green::__private::back_edge(&mut __green_edges);
                    }
                }
            })
        }
    );
    assert_eq!(out, squash(want));
}
