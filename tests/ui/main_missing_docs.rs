//! A lint on the whole function points at the function, not at the attribute.
#![deny(missing_docs)]

#[green::main]
pub fn main() {}
