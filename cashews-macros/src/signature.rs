//! What the macros need to know about the decorated function.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::{FnArg, Ident, ItemFn, Pat, ReturnType, Type};

/// The decorated function, checked: async, with its arguments sorted by what a key may name.
pub(crate) struct Function {
    pub(crate) item: ItemFn,
    /// The names the default key names, in order (the receiver excluded): each plain
    /// argument, and each name a pattern binds (`(a, b): (u8, u8)`, `Path(id): Path<u64>`),
    /// except those bound by `State` or `Extension`.
    pub(crate) args: Vec<Ident>,
    /// Names a key template may use but the default key skips: those bound by `Extension`
    /// (e.g. the caller's identity, put there by a middleware), and request extractors left
    /// whole (`path: Path<u64>`, which the default key cannot name: see `unnamed`).
    pub(crate) template_only: Vec<Ident>,
    /// The arguments written as plain names, in order: what `action` is called with.
    pub(crate) params: Vec<Ident>,
    /// Arguments written as patterns (`action` cannot receive them).
    pub(crate) patterns: Vec<Span>,
    /// Arguments the default key cannot name, with the reason and the fix.
    pub(crate) unnamed: Vec<(Span, String)>,
    /// Names bound by `State`: application state, never part of a key.
    pub(crate) state: Vec<Ident>,
    /// Whether the function takes `self` in some form.
    pub(crate) has_receiver: bool,
    /// The return type (`()` when none is written).
    pub(crate) output: Type,
}

/// Extractors whose values the default key skips: application state (never part of a key)
/// and request extensions (a template may name them).
const STATE_EXTRACTORS: [&str; 2] = ["State", "Extension"];

/// Extractors of the request whose inner value a key names once destructured.
const REQUEST_EXTRACTORS: [&str; 4] = ["Path", "Query", "Json", "Form"];

/// The last segment of a path type or pattern, as text.
fn last_segment(path: &syn::Path) -> Option<String> {
    path.segments.last().map(|s| s.ident.to_string())
}

fn type_name(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) if p.qself.is_none() => last_segment(&p.path),
        Type::Paren(p) => type_name(&p.elem),
        Type::Group(g) => type_name(&g.elem),
        _ => None,
    }
}

/// The names `pat` binds, in order; `Err` with the span of a part whose bindings cannot be
/// seen (a macro in pattern position).
fn bindings(pat: &Pat, out: &mut Vec<Ident>) -> Result<(), Span> {
    match pat {
        Pat::Ident(p) => {
            out.push(p.ident.clone());
            if let Some((_, sub)) = &p.subpat {
                bindings(sub, out)?;
            }
        }
        Pat::Tuple(t) => {
            for elem in &t.elems {
                bindings(elem, out)?;
            }
        }
        Pat::TupleStruct(t) => {
            for elem in &t.elems {
                bindings(elem, out)?;
            }
        }
        Pat::Struct(s) => {
            for field in &s.fields {
                bindings(&field.pat, out)?;
            }
        }
        Pat::Slice(s) => {
            for elem in &s.elems {
                bindings(elem, out)?;
            }
        }
        Pat::Reference(r) => bindings(&r.pat, out)?,
        Pat::Paren(p) => bindings(&p.pat, out)?,
        Pat::Type(t) => bindings(&t.pat, out)?,
        // Every alternative binds the same names.
        Pat::Or(o) => {
            if let Some(first) = o.cases.first() {
                bindings(first, out)?;
            }
        }
        Pat::Wild(_) | Pat::Rest(_) | Pat::Lit(_) | Pat::Range(_) | Pat::Path(_) => {}
        other => return Err(syn::spanned::Spanned::span(other)),
    }
    Ok(())
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
        let mut sorted = Sorted::default();
        for input in &item.sig.inputs {
            match input {
                FnArg::Receiver(_) => sorted.has_receiver = true,
                FnArg::Typed(typed) => sorted.add(&typed.pat, &typed.ty),
            }
        }
        let Sorted {
            args,
            params,
            patterns,
            unnamed,
            template_only,
            state,
            has_receiver,
        } = sorted;
        let output = match &item.sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, ty) => {
                if !stream && let Type::ImplTrait(_) = &**ty {
                    return Err(syn::Error::new_spanned(
                        ty,
                        format!(
                            "`#[cashews::{attribute}]` cannot store an `impl Trait` result: \
                             return a named type that implements `Serialize` and \
                             `Deserialize`; on an axum handler, return `Json<T>` (cached by its \
                             `T`) or cache an inner async fn that returns the data and call it \
                             from the handler"
                        ),
                    ));
                }
                (**ty).clone()
            }
        };
        Ok(Self {
            item,
            args,
            template_only,
            params,
            patterns,
            unnamed,
            state,
            has_receiver,
            output,
        })
    }

    /// The names a key template may use, as text (`self` for a receiver).
    pub(crate) fn arg_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .args
            .iter()
            .chain(&self.template_only)
            .map(ToString::to_string)
            .collect();
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

/// The arguments being sorted by [`Function::parse`].
#[derive(Default)]
struct Sorted {
    args: Vec<Ident>,
    params: Vec<Ident>,
    patterns: Vec<Span>,
    unnamed: Vec<(Span, String)>,
    template_only: Vec<Ident>,
    state: Vec<Ident>,
    has_receiver: bool,
}

impl Sorted {
    fn add(&mut self, pat: &Pat, ty: &Type) {
        let span = syn::spanned::Spanned::span(pat);
        let type_name = type_name(ty);
        let extractor = match pat {
            Pat::TupleStruct(t) => last_segment(&t.path),
            _ => None,
        };
        if let Pat::Ident(p) = pat
            && p.subpat.is_none()
        {
            self.params.push(p.ident.clone());
            match type_name.as_deref() {
                Some(name) if STATE_EXTRACTORS.contains(&name) => {
                    self.skip(name, vec![p.ident.clone()]);
                }
                Some(name) if REQUEST_EXTRACTORS.contains(&name) => {
                    self.template_only.push(p.ident.clone());
                    self.unnamed.push((
                        span,
                        format!(
                            "the default key names each argument's value, and this one is an \
                             axum `{name}` extractor: destructure it so the key names the value \
                             inside, e.g. `{name}(id): {name}<u64>`, or write a `key = \"...\"` \
                             template"
                        ),
                    ));
                }
                _ => self.args.push(p.ident.clone()),
            }
            return;
        }
        self.patterns.push(span);
        let mut bound = Vec::new();
        if let Err(at) = bindings(pat, &mut bound) {
            self.unnamed.push((
                at,
                "the default key names every argument, and the names this pattern binds cannot \
                 be seen: give the argument a name or write a `key = \"...\"` template"
                    .to_owned(),
            ));
        }
        let state = extractor
            .as_deref()
            .or(type_name.as_deref())
            .filter(|name| STATE_EXTRACTORS.contains(name));
        match state {
            Some(name) => self.skip(name, bound),
            None => self.args.extend(bound),
        }
    }

    /// Names the default key skips, bound by the extractor `name`.
    fn skip(&mut self, name: &str, bound: Vec<Ident>) {
        if name == "State" {
            self.state.extend(bound);
        } else {
            self.template_only.extend(bound);
        }
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
