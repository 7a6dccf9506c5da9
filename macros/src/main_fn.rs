//! `#[main]`: runs `fn main`'s body as the first green thread of a runtime.
//!
//! ```text
//! #[green::main]
//! fn main() -> R { BODY }
//! ```
//! becomes
//! ```text
//! fn main() -> R { ::green::run(|| -> R { BODY }) }
//! ```
//! `return` and `?` in `BODY` leave the closure with the same value they would have left
//! `main` with. A closure, not a nested function, so that the body of an associated function
//! may name `Self` and the generic parameters of its `impl` as it did without the attribute.
//! A closure's return type may not hold `impl Trait`, though: when `R` does, at any depth, the
//! body becomes a function of its own instead,
//! `fn __green_main_body() -> R { BODY } ::green::run(__green_main_body)`, which is fine for
//! `main` (it takes nothing, so the body captures nothing) but sees no `Self`. Inner
//! attributes (`#![allow(..)]`) stay on `main`.

use proc_macro2::{TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType};

/// Error for `async fn main`.
const ASYNC_MAIN: &str = "#[green::main] cannot go on an `async fn`: green threads run plain synchronous code. \
    Remove `async` (and the `.await`s: a blocking-looking call suspends only the green thread)";

/// Error for `const fn main`.
const CONST_MAIN: &str = "#[green::main] cannot go on a `const fn`: it starts a runtime, which cannot happen at \
    compile time. Remove `const`";

/// Error for a `main` with parameters.
const PARAMS: &str = "#[green::main] goes on a function without parameters, such as `fn main()`";

/// Error for a generic `main`.
const GENERICS: &str = "#[green::main] goes on a function without generic parameters, such as `fn main()`";

/// Error for anything that is not a function with a body.
const NOT_A_FN: &str = "#[green::main] goes on a function with a body, such as `fn main() { .. }`";

/// Error for an unknown argument.
const BAD_ARGS: &str = "#[green::main] takes no arguments but `crate = path` (the path of the `green` crate, when \
    it is renamed). For other settings (workers, stack size, budget), leave `main` plain and call \
    `green::Runtime::builder().workers(2).run(|| ..)` in it";

/// Expands `#[main(attr)] item`. On error, the error beside an empty function of the same name
/// (the compiler's own complaints about the function, such as "`main` function is not allowed
/// to be `async`", would only repeat it), or beside the item as it was if it is no function.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match try_expand(attr, item.clone()) {
        Ok(tokens) => tokens,
        Err(error) => {
            let error = error.to_compile_error();
            match syn::parse2::<ItemFn>(item.clone()) {
                Ok(func) => {
                    let (vis, ident) = (&func.vis, &func.sig.ident);
                    quote!(#error #vis fn #ident() {})
                }
                Err(_) => quote!(#error #item),
            }
        }
    }
}

fn try_expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let krate = crate::parse_crate_arg(attr, BAD_ARGS)?;
    let mut func: ItemFn = syn::parse2(item).map_err(|e| syn::Error::new(e.span(), NOT_A_FN))?;
    let sig = &func.sig;
    if let Some(token) = &sig.asyncness {
        return Err(syn::Error::new(token.span, ASYNC_MAIN));
    }
    if let Some(token) = &sig.constness {
        return Err(syn::Error::new(token.span, CONST_MAIN));
    }
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new(sig.inputs.span(), PARAMS));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(sig.generics.span(), GENERICS));
    }
    if let Some(clause) = &sig.generics.where_clause {
        return Err(syn::Error::new(clause.span(), GENERICS));
    }
    // The body runs as a closure, which sees `Self` and the generic parameters of an `impl`
    // around the function; `main` takes nothing, so it captures nothing. A return type that
    // holds `impl Trait` at any depth cannot be a closure's: the body becomes a function of
    // its own then, with the return type as written.
    let body = &func.block;
    let braces = body.brace_token;
    let output = &sig.output;
    let mut block: syn::Block = match output {
        ReturnType::Type(_, ty) if holds_impl_trait(ty.to_token_stream()) => syn::parse_quote!({
            fn __green_main_body() #output #body
            #krate::run(__green_main_body)
        }),
        ReturnType::Type(arrow, ty) => syn::parse_quote!({ #krate::run(|| #arrow #ty #body) }),
        ReturnType::Default => syn::parse_quote!({ #krate::run(|| #body) }),
    };
    // The new body keeps the braces of the old one: a lint on the whole function (such as
    // `missing_docs`) then spans the function, not the attribute.
    block.brace_token = braces;
    *func.block = block;
    Ok(func.into_token_stream())
}

/// Whether a type holds `impl Trait` anywhere (`impl` is a keyword: in a type it can only be
/// that).
fn holds_impl_trait(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == "impl",
        TokenTree::Group(group) => holds_impl_trait(group.stream()),
        _ => false,
    })
}
