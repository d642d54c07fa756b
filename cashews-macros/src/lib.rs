//! The attribute macros of [cashews](https://docs.rs/cashews). Use them through the `cashews`
//! crate (`#[cashews::cache(...)]`), which documents them with runnable examples.
//!
//! This crate only parses, validates and expands: every macro becomes a call of a public
//! function of `cashews::strategy`, so all behaviour lives (and is tested) in the runtime.
//! TTL strings and key templates are checked here, at compile time, by `cashews-syntax`.

mod args;
mod cache;
mod key;
mod signature;
mod ttl;

use proc_macro::TokenStream;

/// Caches an async function's result: see `cashews::cache` (the attribute) in the `cashews`
/// crate for the arguments and examples.
#[proc_macro_attribute]
pub fn cache(attr: TokenStream, item: TokenStream) -> TokenStream {
    cache::expand(attr.into(), item.into()).into()
}
