//! `#[preemptible]`: a tick at function entry and on every loop back-edge.
//!
//! # What the expansion does
//!
//! 1. The function must have a body and be neither `const` nor `async` (the error is spanned on
//!    the keyword).
//! 2. `tick()` is inserted as the first statement of the body.
//! 3. Every loop of the body (`loop`, `while`, `while let`, `for`) gets
//!    `back_edge(&mut __green_edges)` as the first statement of its body: every iteration passes
//!    there, `continue` included, and nothing else about the loop changes (its label, its value,
//!    its `break`s). It counts down a counter the body declares after the entry tick, and
//!    charges a batch of ticks when it reaches zero. A closure with loops declares its own
//!    counter (capturing the function's would make it `FnMut`).
//! 4. Except the *light innermost `for` loop*: a `for` whose body has no loop and makes no call
//!    but to a short list of cheap standard methods (see [`CHEAP_CALLS`]), no macro, closure,
//!    `async` block or item. A tick per item would stop such a loop from being vectorised (the
//!    tick's slow path is a call, and LLVM does not vectorise a loop that may call). It is
//!    counted per chunk of items instead:
//!
//!    ```text
//!    'a: for PAT in EXPR { BODY }
//!    ```
//!    becomes
//!    ```text
//!    match (&&ForChunks::new(EXPR)).__green_for_chunks() {
//!        mut src => 'done: {
//!            let Some(mut chunk) = Chunks::next_chunk(&mut src) else { break 'done; };
//!            'a: loop {
//!                'items: for PAT in chunk { BODY' }
//!                match Chunks::next_chunk(&mut src) {
//!                    Some(next) => chunk = next,
//!                    None => break 'done,
//!                }
//!            }
//!        }
//!    }
//!    ```
//!    where `BODY'` is `BODY` with every unlabelled `break` turned into `break 'a` (a fresh
//!    hygienic label when the loop had none) and every `continue 'a` into `continue 'items`.
//!    `next_chunk` charges the ticks. The next chunk is taken after the inner loop, not at the
//!    head of a `while let`: the inner loop's exit then falls through to it instead of jumping
//!    back past the outer loop's head (see `benches/tick.rs`). The method call picks, by the
//!    type of `EXPR` at compile time, chunks that are sub-slices or sub-ranges (the inner loop
//!    is a plain slice or range loop, so it vectorises as before) or, for any other iterator,
//!    a counting adapter around it. The `match` keeps the temporaries of `EXPR` alive for the
//!    whole loop, as `for` does.
//!
//! # What is not rewritten
//!
//! - Nested items (a `fn` inside the function, `impl` blocks, `const` and `static` items):
//!   they are not the annotated function.
//! - `async` blocks and `async` closures, `const` blocks, array lengths, types, patterns and
//!   const generic arguments (compile-time code cannot tick).
//! - The tokens inside macro invocations (`vec![..]`, a user's macro): they are not parsed.
//!
//! Closures inside the function *are* covered: their loops tick like the function's own.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{
    Block, Expr, ExprBreak, ExprContinue, ExprForLoop, GenericArgument, Item, ItemFn, Label, Lifetime, Pat, Stmt, Type,
};

/// Error for `const fn`.
const CONST_FN: &str = "#[green::preemptible] cannot go on a `const fn`: a tick may yield the green thread to \
    the scheduler, which code evaluated at compile time cannot do. Remove `const`, or the attribute";

/// Error for `async fn`.
const ASYNC_FN: &str = "#[green::preemptible] cannot go on an `async fn`: its body runs inside an executor's \
    `poll` and shares its thread at `.await` points, not at ticks. Make it a plain `fn`, or remove the \
    attribute";

/// Error for anything that is not a function with a body.
const NOT_A_FN: &str = "#[green::preemptible] goes on a function with a body (`fn`, a method in an `impl`, or a \
    provided trait method)";

/// What [`NOT_A_FN`] adds for a block of functions (an `impl`, a trait, a module).
const NOT_A_BLOCK: &str = "put it on each of its functions that loops";

/// What [`NOT_A_FN`] adds for a closure.
const NOT_A_CLOSURE: &str = "put it on the function the closure is written in, which covers the closure's loops too";

/// Error for an unknown argument.
const BAD_ARGS: &str = "#[green::preemptible] takes no arguments but `crate = path` (the path of the `green` \
    crate, when it is renamed). How often a green thread looks at the clock and yields is set where it is \
    spawned, `green::Builder::new().budget(..)` or `.time_slice(..)`, or for the whole runtime on \
    `green::Runtime::builder()`";

/// Calls a light loop body may make: methods and functions of the standard library that are a
/// few instructions, so a loop that makes only these can be vectorised and is cheap per item.
/// A call to anything else (a user's function, a method not listed) counts as heavy: its cost is
/// unknown, so its loop ticks on every iteration. Tuple-struct and enum-variant constructors
/// (`Some(x)`, a path whose last segment starts with a capital letter) are cheap too.
#[rustfmt::skip]
pub(crate) const CHEAP_CALLS: &[&str] = &[
    // Integer arithmetic.
    "wrapping_add", "wrapping_sub", "wrapping_mul", "wrapping_neg", "wrapping_shl", "wrapping_shr",
    "overflowing_add", "overflowing_sub", "overflowing_mul", "saturating_add", "saturating_sub",
    "saturating_mul", "checked_add", "checked_sub", "checked_mul", "checked_div", "checked_rem",
    "div_euclid", "rem_euclid", "abs", "abs_diff", "unsigned_abs", "signum", "pow", "isqrt", "ilog2",
    "rotate_left", "rotate_right", "count_ones", "count_zeros", "leading_zeros", "trailing_zeros",
    "swap_bytes", "reverse_bits", "is_power_of_two", "min", "max", "clamp",
    // Conversions.
    "from", "into", "to_le", "to_be", "from_le", "from_be", "to_bits", "from_bits",
    // Floating point.
    "sqrt", "mul_add", "floor", "ceil", "round", "trunc", "fract", "recip", "powi", "is_nan",
    "is_finite", "is_sign_negative", "is_sign_positive", "total_cmp",
    // Bytes and characters.
    "is_ascii_digit", "is_ascii_alphabetic", "is_ascii_alphanumeric", "is_ascii_whitespace",
    "is_ascii_uppercase", "is_ascii_lowercase", "is_ascii_punctuation", "is_ascii",
    "to_ascii_lowercase", "to_ascii_uppercase", "eq_ignore_ascii_case",
    // Comparisons.
    "cmp", "partial_cmp", "eq", "ne", "lt", "le", "gt", "ge",
    // Options, results and slices.
    "unwrap", "unwrap_or", "unwrap_or_default", "expect", "is_some", "is_none", "is_ok", "is_err",
    "len", "is_empty", "get", "get_mut", "get_unchecked", "get_unchecked_mut", "as_ptr", "black_box",
];

/// Expands `#[preemptible(attr)] item`. On error, the error is emitted beside the item left as
/// it was, so the rest of the crate still sees the function.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match try_expand(attr, item.clone()) {
        Ok(tokens) => tokens,
        Err(error) => {
            let error = error.to_compile_error();
            // The item stays, so that what refers to it does not fail too; but not what is no
            // item (a closure, in expression position, would read as `compile_error!(..) || 1`
            // and add a type error of its own). A `let` statement stays too (the attribute on
            // it is also rustc's error), so that its variable is not reported missing after it.
            let is_item = syn::parse2::<syn::Item>(item.clone()).is_ok()
                || syn::parse2::<syn::TraitItem>(item.clone()).is_ok()
                || syn::parse2::<syn::ImplItem>(item.clone()).is_ok()
                || matches!(syn::parse2::<Stmt>(item.clone()), Ok(Stmt::Local(_)));
            if is_item { quote!(#error #item) } else { error }
        }
    }
}

fn try_expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let krate = crate::parse_crate_arg(attr, BAD_ARGS)?;
    let mut func: ItemFn = syn::parse2(item.clone()).map_err(|e| syn::Error::new(e.span(), not_a_fn(item)))?;
    if let Some(token) = &func.sig.constness {
        return Err(syn::Error::new(token.span, CONST_FN));
    }
    if let Some(token) = &func.sig.asyncness {
        return Err(syn::Error::new(token.span, ASYNC_FN));
    }
    rewrite_body(&krate, &mut func.block);
    Ok(func.into_token_stream())
}

/// The error for what is not a function with a body: [`NOT_A_FN`], and what to do instead when
/// the item is a block of functions or a closure.
fn not_a_fn(item: TokenStream) -> String {
    let is = |parses: bool, what: &str, advice: &str| parses.then(|| format!("{NOT_A_FN}, not on {what}: {advice}"));
    let closure = match syn::parse2::<Stmt>(item.clone()) {
        Ok(Stmt::Local(local)) => local.init.is_some_and(|init| matches!(*init.expr, Expr::Closure(_))),
        _ => syn::parse2::<syn::ExprClosure>(item.clone()).is_ok(),
    };
    is(syn::parse2::<syn::ItemImpl>(item.clone()).is_ok(), "an `impl` block", NOT_A_BLOCK)
        .or_else(|| is(syn::parse2::<syn::ItemTrait>(item.clone()).is_ok(), "a trait", NOT_A_BLOCK))
        .or_else(|| is(syn::parse2::<syn::ItemMod>(item.clone()).is_ok(), "a module", NOT_A_BLOCK))
        .or_else(|| is(closure, "a closure", NOT_A_CLOSURE))
        .unwrap_or_else(|| NOT_A_FN.to_string())
}

/// Rewrites a function body in place: the loops, then the entry tick (and, when a light `for`
/// loop was chunked, the `use` that brings the chunk-picking methods into scope).
pub(crate) fn rewrite_body(krate: &syn::Path, block: &mut Block) {
    let mut rewriter = Rewriter { krate, chunked: false, edges: false };
    rewriter.visit_block_mut(block);
    let mut prelude: Vec<Stmt> = vec![syn::parse_quote!(#krate::__private::tick();)];
    if rewriter.edges {
        prelude.push(edge_counter(krate));
    }
    if rewriter.chunked {
        prelude.push(syn::parse_quote!(
            #[allow(unused_imports)]
            use #krate::__private::{ForChunksAny as _, ForChunksSliceOrRange as _};
        ));
    }
    block.stmts.splice(0..0, prelude);
}

/// Walks the function body and rewrites its loops.
struct Rewriter<'a> {
    /// Path of the `green` crate.
    krate: &'a syn::Path,
    /// Whether a light `for` loop was chunked, so the body needs the `use` of the chunk traits.
    chunked: bool,
    /// Whether a back-edge was counted in the body being rewritten (the function's, or a
    /// closure's), so it needs its counter.
    edges: bool,
}

/// The back-edge counter's name. Every body declares its own (`edge_counter`), so a closure's
/// loops count in the closure's counter, which shadows the function's.
fn edge_counter_ident() -> syn::Ident {
    syn::Ident::new("__green_edges", Span::mixed_site())
}

/// The declaration of a body's back-edge counter.
fn edge_counter(krate: &syn::Path) -> Stmt {
    let counter = edge_counter_ident();
    syn::parse_quote!(let mut #counter: u32 = #krate::__private::edge_batch();)
}

impl Rewriter<'_> {
    /// The statement that counts one back-edge (a tick, charged in batches: `back_edge`).
    fn tick(&mut self) -> Stmt {
        self.edges = true;
        let krate = self.krate;
        let counter = edge_counter_ident();
        syn::parse_quote!(#krate::__private::back_edge(&mut #counter);)
    }
}

impl VisitMut for Rewriter<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Loop(l) => {
                self.visit_block_mut(&mut l.body);
                l.body.stmts.insert(0, self.tick());
            }
            Expr::While(w) => {
                self.visit_expr_mut(&mut w.cond);
                self.visit_block_mut(&mut w.body);
                w.body.stmts.insert(0, self.tick());
            }
            Expr::ForLoop(f) => {
                self.visit_expr_mut(&mut f.expr);
                let scan = Scan::of(&mut f.body);
                if scan.has_loop || scan.heavy {
                    self.visit_block_mut(&mut f.body);
                    f.body.stmts.insert(0, self.tick());
                } else {
                    // A light innermost loop: nothing inside to rewrite, count it by chunks.
                    self.chunked = true;
                    let chunked = chunk_for_loop(self.krate, f);
                    *expr = chunked;
                }
            }
            Expr::Closure(c) if c.asyncness.is_some() || c.constness.is_some() => {}
            Expr::Closure(c) => {
                // A closure counts its back-edges in its own counter: capturing the function's
                // would make it `FnMut`. Like the function, it ticks at entry: back-edges not
                // yet charged when a call returns are never charged, so a closure whose loop
                // runs fewer than `EDGES_PER_CHARGE` times per call, called over and over (by
                // an iterator adapter, say), would otherwise never spend the budget.
                let outer = std::mem::replace(&mut self.edges, false);
                self.visit_expr_mut(&mut c.body);
                if self.edges {
                    let counter = edge_counter(self.krate);
                    let krate = self.krate;
                    let body = &c.body;
                    *c.body = syn::parse_quote!({ #krate::__private::tick(); #counter #body });
                }
                self.edges = outer;
            }
            Expr::Async(_) | Expr::Const(_) => {}
            // The length is a constant expression.
            Expr::Repeat(r) => self.visit_expr_mut(&mut r.expr),
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    // Nested items are not the annotated function.
    fn visit_item_mut(&mut self, _: &mut Item) {}
    // Types, patterns and generic arguments hold only constant expressions.
    fn visit_type_mut(&mut self, _: &mut Type) {}
    fn visit_pat_mut(&mut self, _: &mut Pat) {}
    fn visit_generic_argument_mut(&mut self, _: &mut GenericArgument) {}
}

/// What a `for` loop's body holds, to decide whether it is light and innermost.
#[derive(Debug, Default)]
struct Scan {
    /// A loop, outside closures, `async` blocks and items.
    has_loop: bool,
    /// Something of unknown cost, or something the chunked form could not keep as it is: a call
    /// not in [`CHEAP_CALLS`], a macro (its tokens may hold a `break`), a closure, an `async`
    /// block, an `.await`, an item.
    heavy: bool,
}

impl Scan {
    fn of(body: &mut Block) -> Scan {
        let mut scan = Scan::default();
        scan.visit_block_mut(body);
        scan
    }
}

/// Whether a call to a function or method of this name is cheap (see [`CHEAP_CALLS`]).
fn is_cheap_call(name: &syn::Ident) -> bool {
    let name = name.to_string();
    CHEAP_CALLS.contains(&name.as_str()) || name.starts_with(|c: char| c.is_ascii_uppercase())
}

impl VisitMut for Scan {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Loop(_) | Expr::While(_) | Expr::ForLoop(_) => self.has_loop = true,
            Expr::Closure(_) | Expr::Async(_) | Expr::Await(_) | Expr::Macro(_) | Expr::Verbatim(_) => {
                self.heavy = true
            }
            Expr::Call(call) => {
                let cheap = match &*call.func {
                    Expr::Path(p) => p.path.segments.last().is_some_and(|s| is_cheap_call(&s.ident)),
                    _ => false,
                };
                self.heavy |= !cheap;
                visit_mut::visit_expr_mut(self, expr);
            }
            Expr::MethodCall(call) => {
                self.heavy |= !is_cheap_call(&call.method);
                visit_mut::visit_expr_mut(self, expr);
            }
            // A `break` with a value is an error in a `for` loop (E0571); left as written, the
            // loop keeps rustc's own message for it.
            Expr::Break(b) if b.expr.is_some() => {
                self.heavy = true;
                visit_mut::visit_expr_mut(self, expr);
            }
            Expr::Const(_) => {}
            Expr::Repeat(r) => self.visit_expr_mut(&mut r.expr),
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_stmt_mut(&mut self, stmt: &mut Stmt) {
        match stmt {
            Stmt::Item(_) | Stmt::Macro(_) => self.heavy = true,
            _ => visit_mut::visit_stmt_mut(self, stmt),
        }
    }

    fn visit_type_mut(&mut self, _: &mut Type) {}
    fn visit_pat_mut(&mut self, _: &mut Pat) {}
    fn visit_generic_argument_mut(&mut self, _: &mut GenericArgument) {}
}

/// Rewrites a light innermost `for` loop into chunks (see the module documentation).
fn chunk_for_loop(krate: &syn::Path, f: &mut ExprForLoop) -> Expr {
    let user_label = f.label.as_ref().map(|l| l.name.clone());
    let outer = user_label.clone().unwrap_or_else(|| Lifetime::new("'__green_chunks", Span::mixed_site()));
    let inner = Lifetime::new("'__green_items", Span::mixed_site());
    let mut jumps = Jumps {
        user_label: user_label.as_ref(),
        outer: &outer,
        inner: &inner,
        breaks_to_outer: 0,
        continues_to_inner: 0,
        uses_of_user_label: 0,
    };
    jumps.visit_block_mut(&mut f.body);
    let Jumps { breaks_to_outer, continues_to_inner, uses_of_user_label, .. } = jumps;

    // The outer loop keeps the user's label when something breaks to it, or when nothing used
    // it at all (then the `unused_labels` lint says so, as it did before); the inner label only
    // when a `continue` was redirected to it.
    let outer_label = if breaks_to_outer > 0 || (user_label.is_some() && uses_of_user_label == 0) {
        Some(Label { name: outer, colon_token: Default::default() })
    } else {
        None
    };
    let inner_label = (continues_to_inner > 0).then(|| Label { name: inner, colon_token: Default::default() });

    let ExprForLoop { attrs, pat, expr: iterable, body, .. } = f;
    let src = syn::Ident::new("__green_src", Span::mixed_site());
    let chunk = syn::Ident::new("__green_chunk", Span::mixed_site());
    let pick = quote_spanned! {iterable.span()=>
        (&&#krate::__private::ForChunks::new(#iterable)).__green_for_chunks()
    };
    let next = syn::Ident::new("__green_next", Span::mixed_site());
    let done = Lifetime::new("'__green_done", Span::mixed_site());
    syn::parse_quote! {
        #(#attrs)*
        match #pick {
            mut #src => #done: {
                let ::core::option::Option::Some(mut #chunk) = #krate::__private::Chunks::next_chunk(&mut #src) else {
                    break #done;
                };
                #outer_label loop {
                    #inner_label for #pat in #chunk #body
                    match #krate::__private::Chunks::next_chunk(&mut #src) {
                        ::core::option::Option::Some(#next) => #chunk = #next,
                        ::core::option::Option::None => break #done,
                    }
                }
            }
        }
    }
}

/// Redirects the jumps of a light loop body to the two loops of its chunked form. The body has
/// no loop, closure, `async` block, item or macro (it is light and innermost), so every
/// unlabelled `break` and `continue` in it belongs to the loop being chunked.
struct Jumps<'a> {
    /// The loop's own label, if it had one.
    user_label: Option<&'a Lifetime>,
    /// Label of the outer (chunk) loop.
    outer: &'a Lifetime,
    /// Label of the inner (item) loop.
    inner: &'a Lifetime,
    /// `break`s pointed at the outer loop (unlabelled ones, and `break 'label`).
    breaks_to_outer: usize,
    /// `continue 'label`s pointed at the inner loop.
    continues_to_inner: usize,
    /// Jumps that named the user's label.
    uses_of_user_label: usize,
}

impl Jumps<'_> {
    fn is_user_label(&self, label: &Option<Lifetime>) -> bool {
        matches!((label, self.user_label), (Some(l), Some(u)) if l.ident == u.ident)
    }
}

impl VisitMut for Jumps<'_> {
    // Constant contexts (a `const` block, an array length, a const generic argument) are
    // evaluated apart: their jumps never leave them, and the loop's labels are not in scope
    // there. The other visitors skip them too.
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Const(_) => {}
            Expr::Repeat(r) => self.visit_expr_mut(&mut r.expr),
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_generic_argument_mut(&mut self, _: &mut GenericArgument) {}

    fn visit_expr_break_mut(&mut self, b: &mut ExprBreak) {
        if self.is_user_label(&b.label) {
            self.uses_of_user_label += 1;
            self.breaks_to_outer += 1;
        } else if b.label.is_none() {
            b.label = Some(self.outer.clone());
            self.breaks_to_outer += 1;
        }
        visit_mut::visit_expr_break_mut(self, b);
    }

    fn visit_expr_continue_mut(&mut self, c: &mut ExprContinue) {
        if self.is_user_label(&c.label) {
            self.uses_of_user_label += 1;
            c.label = Some(self.inner.clone());
            self.continues_to_inner += 1;
        }
    }

    fn visit_item_mut(&mut self, _: &mut Item) {}
    fn visit_type_mut(&mut self, _: &mut Type) {}
    fn visit_pat_mut(&mut self, _: &mut Pat) {}
}
