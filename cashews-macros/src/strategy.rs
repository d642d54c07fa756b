//! The strategy attributes: which arguments each accepts, then [`validate`] (arguments and
//! function read into a checked plan, errors spanned) and [`expand`] (the plan turned into
//! the decorated function). On an error the function is emitted unchanged beside it.

mod expand;
mod validate;

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Expr, ItemFn};

use crate::args::Args;
use crate::key::Head;

/// The attributes, by what their expansion calls.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Cache,
    Failover,
    Soft,
    Early,
    Hit,
    Dynamic,
    RateLimit,
    SliceRateLimit,
    CircuitBreaker,
    Invalidate,
    Iterator,
    Bloom,
    DualBloom,
    Perf,
    Locked,
    ThunderProtection,
    Transaction,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Cache => "cache",
            Self::Failover => "failover",
            Self::Soft => "soft",
            Self::Early => "early",
            Self::Hit => "hit",
            Self::Dynamic => "dynamic",
            Self::RateLimit => "rate_limit",
            Self::SliceRateLimit => "slice_rate_limit",
            Self::CircuitBreaker => "circuit_breaker",
            Self::Invalidate => "invalidate",
            Self::Iterator => "iterator",
            Self::Bloom => "bloom",
            Self::DualBloom => "dual_bloom",
            Self::Perf => "perf",
            Self::Locked => "locked",
            Self::ThunderProtection => "thunder_protection",
            Self::Transaction => "transaction",
        }
    }

    /// The `cashews::key::Strategy` variant naming this attribute's keys (`invalidate` has
    /// none: its key is a pattern).
    fn strategy(self) -> Option<&'static str> {
        Some(match self {
            Self::Cache => "Cache",
            Self::Failover => "Failover",
            Self::Soft => "Soft",
            Self::Early => "Early",
            Self::Hit => "Hit",
            Self::Dynamic => "Dynamic",
            Self::RateLimit => "RateLimit",
            Self::SliceRateLimit => "SliceRateLimit",
            Self::CircuitBreaker => "CircuitBreaker",
            Self::Invalidate | Self::Transaction => return None,
            Self::Iterator => "Iterator",
            Self::Bloom => "Bloom",
            Self::DualBloom => "DualBloom",
            Self::Perf => "Perf",
            Self::Locked => "Locked",
            Self::ThunderProtection => "ThunderProtection",
        })
    }

    fn accepted(self) -> &'static [&'static str] {
        match self {
            Self::Cache => &[
                "ttl",
                "key",
                "tags",
                "prefix",
                "condition",
                "time_condition",
                "protected",
                "lock",
                "upper",
                "cache",
                "filters",
                "crate",
            ],
            Self::Failover => &[
                "ttl",
                "key",
                "prefix",
                "when",
                "condition",
                "time_condition",
                "cache",
                "filters",
                "crate",
            ],
            Self::Soft => &[
                "ttl",
                "soft_ttl",
                "key",
                "tags",
                "prefix",
                "condition",
                "time_condition",
                "protected",
                "cache",
                "filters",
                "crate",
            ],
            Self::Early => &[
                "ttl",
                "early_ttl",
                "key",
                "tags",
                "prefix",
                "condition",
                "time_condition",
                "protected",
                "background",
                "cache",
                "filters",
                "crate",
            ],
            Self::Hit => &[
                "ttl",
                "cache_hits",
                "update_after",
                "update_before",
                "background",
                "key",
                "tags",
                "prefix",
                "condition",
                "time_condition",
                "cache",
                "filters",
                "crate",
            ],
            Self::Dynamic => &["ttl", "key", "tags", "prefix", "cache", "filters", "crate"],
            Self::RateLimit => &[
                "limit", "period", "ttl", "action", "key", "prefix", "cache", "filters", "crate",
            ],
            Self::SliceRateLimit => &[
                "limit", "period", "action", "key", "prefix", "cache", "filters", "crate",
            ],
            Self::Invalidate => &["key", "cache", "filters", "crate"],
            Self::Iterator => &["ttl", "key", "condition", "cache", "filters", "crate"],
            Self::Bloom => &[
                "capacity",
                "name",
                "false_positives",
                "check_false_positive",
                "prefix",
                "cache",
                "filters",
                "crate",
            ],
            Self::DualBloom => &[
                "capacity",
                "name",
                "false_positives",
                "no_collisions",
                "prefix",
                "cache",
                "filters",
                "crate",
            ],
            Self::Locked => &["ttl", "wait", "key", "prefix", "cache", "filters", "crate"],
            Self::ThunderProtection => &["key", "cache", "filters", "crate"],
            Self::Transaction => &["mode", "timeout", "cache", "crate"],
            Self::Perf => &[
                "ttl",
                "key",
                "trace_size",
                "window",
                "perf_condition",
                "prefix",
                "cache",
                "filters",
                "crate",
            ],
            Self::CircuitBreaker => &[
                "errors_rate",
                "period",
                "ttl",
                "half_open_ttl",
                "half_open_probes",
                "min_calls",
                "when",
                "key",
                "prefix",
                "cache",
                "filters",
                "crate",
            ],
        }
    }
}

const TTL_HINT: &str =
    "a string such as \"1h30m\", whole seconds, a `Duration`, or an expression of the arguments";

pub(crate) fn expand(kind: Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    let item_fn: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let error = syn::Error::new(
                proc_macro2::Span::call_site(),
                format!("`#[cashews::{}]` goes on an `async fn`", kind.name()),
            );
            return with_original(error, item);
        }
    };
    let expanded = validate::check(kind, attr, item_fn)
        .and_then(|(func, plan)| expand::plan(kind, &func, &plan));
    match expanded {
        Ok(tokens) => tokens,
        Err(error) => with_original(error, item),
    }
}

/// On a validation error: the error and the function unchanged, so callers see no cascade.
fn with_original(error: syn::Error, item: TokenStream) -> TokenStream {
    let error = error.to_compile_error();
    quote! { #error #item }
}

/// The arguments every strategy attribute takes: `key`, `prefix`, `cache`, `filters`, `crate`.
struct Common {
    key: Option<syn::LitStr>,
    prefix: Option<syn::LitStr>,
    cache: Option<Expr>,
    filters: Vec<syn::Ident>,
    krate: Option<syn::Path>,
}

impl Common {
    fn parse(args: &mut Args) -> Self {
        Self {
            key: args.string("key"),
            prefix: args.string("prefix"),
            cache: args.expr("cache"),
            filters: args.idents(
                "filters",
                "lists the custom key filters the template uses, e.g. `filters = [prefix4]`",
            ),
            krate: args.path("crate"),
        }
    }

    /// What the key starts with: the prefix given (`prefix = ""` for none), else the
    /// strategy's default, whose text is the runtime's.
    fn head(&self, kind: Kind) -> Head {
        match (&self.prefix, kind.strategy()) {
            (Some(prefix), _) => Head::Prefix(prefix.clone()),
            (None, Some(variant)) => Head::Default(kind.name(), variant),
            (None, None) => Head::None,
        }
    }

    /// The path generated code names the runtime through.
    fn private(&self) -> TokenStream {
        match &self.krate {
            Some(path) => quote! { #path::__private },
            None => quote! { ::cashews::__private },
        }
    }

    /// A `&Cache` expression: the one given, or the process-wide default.
    fn cache(&self, private: &TokenStream) -> TokenStream {
        match &self.cache {
            Some(expr) => quote! { &#expr },
            None => quote! { #private::default_cache() },
        }
    }
}
