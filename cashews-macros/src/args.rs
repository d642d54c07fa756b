//! Attribute arguments: `name = value` pairs, parsed into a typed model with spanned errors.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Path, Token};

use crate::ttl::TtlArg;

/// The `condition` argument.
pub(crate) enum ConditionArg {
    /// `condition = not_none`.
    NotNone,
}

/// The arguments of `#[cashews::cache(...)]`.
#[derive(Default)]
pub(crate) struct CacheArgs {
    pub(crate) ttl: Option<TtlArg>,
    pub(crate) key: Option<LitStr>,
    pub(crate) prefix: Option<LitStr>,
    pub(crate) condition: Option<ConditionArg>,
    pub(crate) time_condition: Option<TtlArg>,
    pub(crate) cache: Option<Expr>,
    pub(crate) filters: Vec<Ident>,
    pub(crate) krate: Option<Path>,
}

const CACHE_ARGS: &str = "ttl, key, prefix, condition, time_condition, cache, filters, crate";

/// Collects errors so one compilation reports every bad argument.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

impl CacheArgs {
    pub(crate) fn parse(attr: TokenStream) -> syn::Result<Self> {
        let pairs = Punctuated::<syn::MetaNameValue, Token![,]>::parse_terminated.parse2(attr)?;
        let mut out = Self::default();
        let mut errors = Errors::default();
        let mut seen: Vec<String> = Vec::new();
        for pair in pairs {
            let Some(name) = pair.path.get_ident().map(ToString::to_string) else {
                errors.push(syn::Error::new_spanned(
                    &pair.path,
                    format!("unknown argument: `#[cashews::cache]` accepts {CACHE_ARGS}"),
                ));
                continue;
            };
            if seen.contains(&name) {
                errors.push(syn::Error::new_spanned(
                    &pair.path,
                    format!("duplicate argument `{name}`: give it once"),
                ));
                continue;
            }
            seen.push(name.clone());
            let value = pair.value;
            let result = match name.as_str() {
                "ttl" => TtlArg::parse(value).map(|t| out.ttl = Some(t)),
                "time_condition" => TtlArg::parse(value).map(|t| out.time_condition = Some(t)),
                "key" => string(&value, "key").map(|s| out.key = Some(s)),
                "prefix" => string(&value, "prefix").map(|s| out.prefix = Some(s)),
                "condition" => condition(&value).map(|c| out.condition = Some(c)),
                "cache" => {
                    out.cache = Some(value);
                    Ok(())
                }
                "filters" => filters(&value).map(|f| out.filters = f),
                "crate" => path(&value).map(|p| out.krate = Some(p)),
                other => Err(syn::Error::new_spanned(
                    &pair.path,
                    format!("unknown argument `{other}`: `#[cashews::cache]` accepts {CACHE_ARGS}"),
                )),
            };
            if let Err(error) = result {
                errors.push(error);
            }
        }
        if out.ttl.is_none() && !seen.iter().any(|n| n == "ttl") {
            errors.push(syn::Error::new(
                Span::call_site(),
                "`#[cashews::cache]` needs a `ttl`: a string such as \"1h30m\", whole seconds, \
                 a `Duration`, or an expression of the arguments",
            ));
        }
        errors.finish().map(|()| out)
    }
}

fn string(value: &Expr, name: &str) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(text),
            ..
        }) => Ok(text.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{name}` must be a string literal (checked at compile time)"),
        )),
    }
}

fn condition(value: &Expr) -> syn::Result<ConditionArg> {
    match value {
        Expr::Path(p) if p.path.is_ident("not_none") => Ok(ConditionArg::NotNone),
        other => Err(syn::Error::new_spanned(
            other,
            "unknown condition: `condition` accepts `not_none` (results are stored unless \
             `None`; `Err` results are never stored)",
        )),
    }
}

fn filters(value: &Expr) -> syn::Result<Vec<Ident>> {
    let err = || {
        syn::Error::new_spanned(
            value,
            "`filters` lists the custom key filters the template uses, e.g. `filters = [prefix4]`",
        )
    };
    let Expr::Array(array) = value else {
        return Err(err());
    };
    array
        .elems
        .iter()
        .map(|e| match e {
            Expr::Path(p) => p.path.get_ident().cloned().ok_or_else(err),
            _ => Err(err()),
        })
        .collect()
}

fn path(value: &Expr) -> syn::Result<Path> {
    match value {
        Expr::Path(p) => Ok(p.path.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            "`crate` must be a path to the cashews crate, e.g. `crate = ::my_reexport::cashews`",
        )),
    }
}
