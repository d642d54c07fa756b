//! TTL arguments: a string checked at compile time, whole seconds, or any expression of the
//! function's arguments converted at run time.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{Expr, ExprLit, Lit};

/// Where a TTL computed from the result is refused.
pub(crate) const OF_RESULT_ONLY: &str = "a TTL computed from the result (a closure) applies to \
     `cache`, `soft`, `hit` and `dynamic`, which know the result when they store it; here give a \
     TTL such as \"10m\" or an expression of the arguments";

/// A TTL as written in the attribute.
pub(crate) enum TtlArg {
    /// A constant, already checked: its duration in nanoseconds (0 = no expiry).
    Constant(u128, proc_macro2::Span),
    /// An expression evaluated in the function's scope on each call.
    Expr(Box<Expr>),
    /// A closure of the stored value (`ttl = |v| ...`): the TTL is computed from the result.
    OfResult(Box<Expr>),
}

impl TtlArg {
    pub(crate) fn parse(expr: Expr) -> syn::Result<Self> {
        match &expr {
            Expr::Lit(ExprLit {
                lit: Lit::Str(text),
                ..
            }) => match cashews_syntax::parse_ttl(&text.value()) {
                Ok(duration) => Ok(Self::Constant(duration.as_nanos(), text.span())),
                Err(error) => Err(syn::Error::new(
                    text.span(),
                    format!("bad TTL {:?}: {error}", text.value()),
                )),
            },
            Expr::Lit(ExprLit {
                lit: Lit::Int(secs),
                ..
            }) => {
                let secs: u64 = secs.base10_parse()?;
                Ok(Self::Constant(
                    u128::from(secs) * 1_000_000_000,
                    secs_span(&expr),
                ))
            }
            Expr::Closure(_) => Ok(Self::OfResult(Box::new(expr))),
            _ => Ok(Self::Expr(Box::new(expr))),
        }
    }

    /// Tokens of type `Option<Ttl>`: `None` when a run-time TTL is invalid (logged).
    pub(crate) fn tokens(&self, private: &TokenStream) -> TokenStream {
        match self {
            Self::Constant(nanos, span) => {
                let secs = (nanos / 1_000_000_000) as u64;
                let sub = (nanos % 1_000_000_000) as u32;
                quote_spanned! {*span=>
                    ::core::option::Option::Some(#private::Ttl::new(
                        ::core::time::Duration::new(#secs, #sub),
                    ))
                }
            }
            Self::Expr(expr) => quote! { #private::runtime_ttl(#expr) },
            Self::OfResult(closure) => {
                syn::Error::new_spanned(closure, OF_RESULT_ONLY).to_compile_error()
            }
        }
    }
}

impl TtlArg {
    /// Tokens of a `Duration` for an argument that must be a constant (a window, a period);
    /// `name` names it in the error.
    pub(crate) fn constant_duration(&self, name: &str) -> syn::Result<TokenStream> {
        match self {
            Self::Constant(0, span) => Err(syn::Error::new(
                *span,
                format!("`{name}` must be longer than zero"),
            )),
            Self::Constant(nanos, span) => {
                let secs = (nanos / 1_000_000_000) as u64;
                let sub = (nanos % 1_000_000_000) as u32;
                Ok(quote_spanned! {*span=> ::core::time::Duration::new(#secs, #sub) })
            }
            Self::Expr(expr) | Self::OfResult(expr) => Err(syn::Error::new_spanned(
                expr,
                format!(
                    "`{name}` must be a literal such as \"1m\" or 60 (checked at compile time)"
                ),
            )),
        }
    }
}

fn secs_span(expr: &Expr) -> proc_macro2::Span {
    syn::spanned::Spanned::span(expr)
}
