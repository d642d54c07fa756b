//! Attribute arguments: `name = value` pairs, checked against the names an attribute accepts,
//! then read as typed values with spanned errors. Every bad argument of one attribute is
//! reported in one compilation.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Path, Token};

use crate::ttl::TtlArg;

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

/// The raw arguments of one attribute, by name.
pub(crate) struct Args {
    attribute: &'static str,
    pairs: Vec<(Ident, Expr)>,
    pub(crate) errors: Errors,
}

impl Args {
    /// Parses `name = value, …` and checks every name against `accepted`.
    pub(crate) fn parse(
        attribute: &'static str,
        accepted: &[&str],
        attr: TokenStream,
    ) -> syn::Result<Self> {
        let parsed = Punctuated::<syn::MetaNameValue, Token![,]>::parse_terminated.parse2(attr)?;
        let mut errors = Errors::default();
        let mut pairs: Vec<(Ident, Expr)> = Vec::new();
        let list = accepted.join(", ");
        for pair in parsed {
            let name = match pair.path.get_ident() {
                Some(ident) => ident.clone(),
                None if pair.path.is_ident("crate") => Ident::new("crate", Span::call_site()),
                None => {
                    errors.push(syn::Error::new_spanned(
                        &pair.path,
                        format!("unknown argument: `#[cashews::{attribute}]` accepts {list}"),
                    ));
                    continue;
                }
            };
            let text = name.to_string();
            if !accepted.contains(&text.as_str()) {
                errors.push(syn::Error::new_spanned(
                    &pair.path,
                    format!("unknown argument `{text}`: `#[cashews::{attribute}]` accepts {list}"),
                ));
            } else if pairs.iter().any(|(n, _)| *n == text) {
                errors.push(syn::Error::new_spanned(
                    &pair.path,
                    format!("duplicate argument `{text}`: give it once"),
                ));
            } else {
                pairs.push((name, pair.value));
            }
        }
        Ok(Self {
            attribute,
            pairs,
            errors,
        })
    }

    /// Whether the argument was written (even if its value was bad).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }

    fn get(&self, name: &str) -> Option<&Expr> {
        self.pairs.iter().find(|(n, _)| n == name).map(|(_, e)| e)
    }

    /// A required argument is missing: record the error with `hint`.
    pub(crate) fn require(&mut self, name: &str, hint: &str) {
        if !self.has(name) {
            let attribute = self.attribute;
            self.errors.push(syn::Error::new(
                Span::call_site(),
                format!("`#[cashews::{attribute}]` needs `{name}`: {hint}"),
            ));
        }
    }

    pub(crate) fn ttl(&mut self, name: &str) -> Option<TtlArg> {
        let expr = self.get(name)?.clone();
        match TtlArg::parse(expr) {
            Ok(ttl) => Some(ttl),
            Err(error) => {
                self.errors.push(error);
                None
            }
        }
    }

    pub(crate) fn string(&mut self, name: &str) -> Option<LitStr> {
        match self.get(name)? {
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(text),
                ..
            }) => Some(text.clone()),
            other => {
                let error = syn::Error::new_spanned(
                    other,
                    format!("`{name}` must be a string literal (checked at compile time)"),
                );
                self.errors.push(error);
                None
            }
        }
    }

    /// Any expression, evaluated in the function's scope.
    pub(crate) fn expr(&self, name: &str) -> Option<Expr> {
        self.get(name).cloned()
    }

    /// A bare identifier among `choices` (e.g. `condition = not_none`).
    pub(crate) fn word(&mut self, name: &str, choices: &[&str], hint: &str) -> Option<Ident> {
        let expr = self.get(name)?;
        if let Expr::Path(p) = expr
            && let Some(ident) = p.path.get_ident()
            && choices.contains(&ident.to_string().as_str())
        {
            return Some(ident.clone());
        }
        let error = syn::Error::new_spanned(
            expr,
            format!("`{name}` accepts {}: {hint}", choices.join(", ")),
        );
        self.errors.push(error);
        None
    }

    /// A `bool` literal.
    pub(crate) fn flag(&mut self, name: &str) -> Option<bool> {
        match self.get(name)? {
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Bool(b),
                ..
            }) => Some(b.value),
            other => {
                let error =
                    syn::Error::new_spanned(other, format!("`{name}` must be `true` or `false`"));
                self.errors.push(error);
                None
            }
        }
    }

    /// A list of identifiers: `filters = [a, b]`.
    pub(crate) fn idents(&mut self, name: &str, hint: &str) -> Vec<Ident> {
        let Some(expr) = self.get(name).cloned() else {
            return Vec::new();
        };
        let err = |e: &Expr| syn::Error::new_spanned(e, format!("`{name}` {hint}"));
        let Expr::Array(array) = &expr else {
            self.errors.push(err(&expr));
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in &array.elems {
            match e {
                Expr::Path(p) if p.path.get_ident().is_some() => {
                    out.extend(p.path.get_ident().cloned());
                }
                other => self.errors.push(err(other)),
            }
        }
        out
    }

    /// A list of string literals: `tags = ["all", "user:{id}"]`.
    pub(crate) fn strings(&mut self, name: &str, hint: &str) -> Vec<LitStr> {
        let Some(expr) = self.get(name).cloned() else {
            return Vec::new();
        };
        let err = |e: &Expr| syn::Error::new_spanned(e, format!("`{name}` {hint}"));
        let Expr::Array(array) = &expr else {
            self.errors.push(err(&expr));
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in &array.elems {
            match e {
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(text),
                    ..
                }) => out.push(text.clone()),
                other => self.errors.push(err(other)),
            }
        }
        out
    }

    /// A path (`crate = ::my::cashews`), or a string holding one.
    pub(crate) fn path(&mut self, name: &str) -> Option<Path> {
        let parsed = match self.get(name)? {
            Expr::Path(p) => Ok(p.path.clone()),
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(text),
                ..
            }) => text.parse::<Path>(),
            other => Err(syn::Error::new_spanned(other, "expected a path")),
        };
        match parsed {
            Ok(path) => Some(path),
            Err(e) => {
                self.errors.push(syn::Error::new(
                    e.span(),
                    format!("`{name}` must be a path to the cashews crate, e.g. `crate = ::my_reexport::cashews`"),
                ));
                None
            }
        }
    }

    /// The errors so far, or the attribute's arguments checked.
    pub(crate) fn finish(self) -> syn::Result<()> {
        self.errors.finish()
    }
}
