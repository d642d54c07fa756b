//! What the macros need to know about the decorated function.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::{FnArg, Ident, ItemFn, Pat, ReturnType, Type};

/// The decorated function, checked: async, with named arguments.
pub(crate) struct Function {
    pub(crate) item: ItemFn,
    /// The names of the arguments usable in a key, in order (the receiver excluded).
    pub(crate) args: Vec<Ident>,
    /// Arguments the default key cannot name (patterns like `(a, b): (u8, u8)` or `_`).
    pub(crate) unnamed: Vec<Span>,
    /// Whether the function takes `self` in some form.
    pub(crate) has_receiver: bool,
    /// The return type (`()` when none is written).
    pub(crate) output: Type,
}

impl Function {
    pub(crate) fn parse(item: ItemFn, attribute: &str) -> syn::Result<Self> {
        Self::parse_with(item, attribute, false)
    }

    /// For `iterator`: a plain `fn` returning `impl Stream<Item = T>`.
    pub(crate) fn parse_stream(item: ItemFn) -> syn::Result<Self> {
        if item.sig.asyncness.is_some() {
            return Err(syn::Error::new_spanned(
                item.sig.asyncness,
                "`#[cashews::iterator]` goes on a plain `fn` returning `impl Stream<Item = T>` \
                 (the stream is what is awaited): remove `async`",
            ));
        }
        Self::parse_with(item, "iterator", true)
    }

    fn parse_with(item: ItemFn, attribute: &str, stream: bool) -> syn::Result<Self> {
        if !stream && item.sig.asyncness.is_none() {
            return Err(syn::Error::new_spanned(
                item.sig.fn_token,
                format!("`#[cashews::{attribute}]` needs an `async fn`: the cache is asynchronous"),
            ));
        }
        let mut args = Vec::new();
        let mut unnamed = Vec::new();
        let mut has_receiver = false;
        for input in &item.sig.inputs {
            match input {
                FnArg::Receiver(_) => has_receiver = true,
                FnArg::Typed(typed) => match &*typed.pat {
                    Pat::Ident(pat) if pat.subpat.is_none() => args.push(pat.ident.clone()),
                    other => unnamed.push(syn::spanned::Spanned::span(other)),
                },
            }
        }
        let output = match &item.sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, ty) => {
                if !stream && let Type::ImplTrait(_) = &**ty {
                    return Err(syn::Error::new_spanned(
                        ty,
                        format!(
                            "`#[cashews::{attribute}]` cannot cache an `impl Trait` result: \
                             return a named type that implements `Serialize` and `Deserialize`"
                        ),
                    ));
                }
                (**ty).clone()
            }
        };
        Ok(Self {
            item,
            args,
            unnamed,
            has_receiver,
            output,
        })
    }

    /// The argument names as text, for error messages.
    pub(crate) fn arg_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.args.iter().map(ToString::to_string).collect();
        if self.has_receiver {
            names.push("self".to_owned());
        }
        names
    }

    /// The arguments that borrow (a reference or a lifetime in their type, or `&self`): the
    /// spans to point at and how to name them, for options whose future must be `'static`.
    pub(crate) fn borrowed(&self) -> Vec<(Span, String)> {
        let mut out = Vec::new();
        for input in &self.item.sig.inputs {
            match input {
                FnArg::Receiver(receiver) => {
                    if borrows(receiver.to_token_stream()) {
                        out.push((syn::spanned::Spanned::span(receiver), "self".to_owned()));
                    }
                }
                FnArg::Typed(typed) => {
                    if borrows(typed.ty.to_token_stream()) {
                        let name = match &*typed.pat {
                            Pat::Ident(pat) => pat.ident.to_string(),
                            other => other.to_token_stream().to_string(),
                        };
                        out.push((syn::spanned::Spanned::span(&typed.ty), name));
                    }
                }
            }
        }
        out
    }
}

/// Whether a type's tokens hold a reference (`&`) or a lifetime other than `'static`.
fn borrows(tokens: TokenStream) -> bool {
    let mut lifetime = false;
    for tree in tokens {
        match tree {
            TokenTree::Group(group) if borrows(group.stream()) => return true,
            TokenTree::Punct(punct) if punct.as_char() == '&' => return true,
            TokenTree::Punct(punct) if punct.as_char() == '\'' => lifetime = true,
            TokenTree::Ident(ident) if lifetime => {
                if ident != "static" {
                    return true;
                }
                lifetime = false;
            }
            _ => lifetime = false,
        }
    }
    false
}
