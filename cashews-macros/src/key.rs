//! Keys: a template checked at compile time and turned into straight-line code that renders
//! it, or the default key. What a key starts with (a strategy's default prefix), the default
//! key's layout and which arguments it names are the runtime's (`cashews::key::Strategy`,
//! `KeyBuf` and the hidden `macro_rules!` beside them): this module only names the strategy,
//! the function and its arguments.

use cashews_syntax::{Access, Field, FilterArg, Root, Segment, Template};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{Ident, LitStr};

use crate::signature::Function;

/// What a key starts with. The text of every head is the runtime's (`Strategy::key_buf`,
/// `KeyBuf::with_prefix` and the `key_head!` table of `cashews::key`); here it is only named.
#[derive(Clone)]
pub(crate) enum Head {
    /// Nothing (tag templates, a Bloom filter's member, patterns).
    None,
    /// The strategy's default prefix: the attribute's name and its `cashews::key::Strategy`
    /// variant.
    Default(&'static str, &'static str),
    /// A `prefix = "..."` argument.
    Prefix(LitStr),
}

impl Head {
    /// Tokens of a `KeyBuf` with the head written.
    fn buf(&self, private: &TokenStream) -> TokenStream {
        match self {
            Self::None => quote! { #private::KeyBuf::with_capacity(64) },
            Self::Default(_, variant) => {
                let variant = Ident::new(variant, Span::call_site());
                quote! { #private::Strategy::#variant.key_buf() }
            }
            Self::Prefix(prefix) => quote! { #private::KeyBuf::with_prefix(#prefix) },
        }
    }

    /// The arguments of the runtime's `key_head!` table that name this head.
    pub(crate) fn table_args(&self) -> TokenStream {
        match self {
            Self::None => quote! {},
            Self::Default(name, _) => {
                let name = Ident::new(name, Span::call_site());
                quote! { #name }
            }
            Self::Prefix(prefix) => quote! { prefix #prefix },
        }
    }
}

/// Tokens of an expression of type `String`: the rendered key. `kind` (an attribute's name)
/// selects the runtime's default-key rule when there is no template.
pub(crate) fn tokens(
    func: &Function,
    template: Option<&LitStr>,
    head: &Head,
    kind: &str,
    custom_filters: &[Ident],
    private: &TokenStream,
) -> syn::Result<TokenStream> {
    let body = match template {
        Some(lit) => template_tokens(func, lit, custom_filters, private)?,
        None => vec![default_tokens(func, kind, private)],
    };
    let buf = head.buf(private);
    Ok(quote! {{
        let mut __key = #buf;
        #(#body)*
        __key.finish()
    }})
}

/// Tokens of an expression of type `String`: a glob pattern from `template`, whose values
/// are escaped (user input can never widen the pattern) while the template's own `*`, `?`
/// and `[...]` stay wildcards.
pub(crate) fn pattern_tokens(
    func: &Function,
    template: &LitStr,
    custom_filters: &[Ident],
    private: &TokenStream,
) -> syn::Result<TokenStream> {
    let body = template_tokens(func, template, custom_filters, private)?;
    Ok(quote! {{
        let mut __key = #private::KeyBuf::for_pattern();
        #(#body)*
        __key.finish()
    }})
}

/// The default key: one call of the runtime's `default_key!`, which writes the module path,
/// the function (or `Type.method`) and the arguments its rule names: each plain argument and
/// each name a pattern binds (`Path(id): Path<u64>` gives `id`), not what `State` or
/// `Extension` bind. When an argument cannot be named, the call also carries an error spanned
/// at the first one, which the runtime emits if its rule names the arguments.
fn default_tokens(func: &Function, kind: &str, private: &TokenStream) -> TokenStream {
    let kind = Ident::new(kind, Span::call_site());
    let name = func.item.sig.ident.to_string();
    let form = if func.has_receiver {
        quote! { method }
    } else {
        quote! { fn }
    };
    let args = func
        .args
        .iter()
        .map(|arg| quote_spanned! {arg.span()=> #arg = &#arg });
    let unnamed = func.unnamed.first().map(|(span, message)| {
        quote_spanned! {*span=>
            ::core::compile_error!(#message);
        }
    });
    quote! {
        #private::default_key!(#kind, __key, #form #name, [#(#args),*], [#unnamed]);
    }
}

/// The full key template as a `&'static str` expression, built at compile time by the
/// runtime's `key_template!`: the head and the `key` template, or the default key's template.
pub(crate) fn template(
    func: &Function,
    key: Option<&LitStr>,
    head: &Head,
    private: &TokenStream,
) -> TokenStream {
    let head = head.table_args();
    if let Some(key) = key {
        return quote! { #private::key_template!((#head), key #key) };
    }
    let name = func.item.sig.ident.to_string();
    let form = if func.has_receiver {
        quote! { method }
    } else {
        quote! { fn }
    };
    let args = &func.args;
    quote! { #private::key_template!((#head), #form #name, [#(#args),*]) }
}

/// A per-function key (a Bloom filter's) as a `&'static str` expression.
pub(crate) fn function_key(func: &Function, head: &Head, private: &TokenStream) -> TokenStream {
    let head = head.table_args();
    let name = func.item.sig.ident.to_string();
    quote! { #private::function_key!((#head), #name) }
}

fn template_tokens(
    func: &Function,
    lit: &LitStr,
    custom_filters: &[Ident],
    private: &TokenStream,
) -> syn::Result<Vec<TokenStream>> {
    let text = lit.value();
    let span = lit.span();
    let fail = |error: cashews_syntax::TemplateError| {
        let part = text.get(error.span()).unwrap_or_default();
        let at = if part.is_empty() {
            format!(" at byte {}", error.position())
        } else {
            format!(" at `{part}`")
        };
        syn::Error::new(span, format!("key template {text:?}{at}: {}", error.kind()))
    };
    let template: Template = cashews_syntax::parse_template(&text).map_err(fail)?;
    let names = func.arg_names();
    let known: Vec<&str> = names.iter().map(String::as_str).collect();
    for field in template.fields() {
        if let Root::Arg(name) = &field.root
            && func.state.iter().any(|ident| ident == name)
        {
            return Err(syn::Error::new(
                span,
                format!(
                    "key template {text:?}: `{name}` is bound by the `State` extractor, and \
                     application state is never part of a key (it is the same for every \
                     request): name values of the request instead, e.g. `Path(id): Path<u64>` \
                     and `key = \"user:{{id}}\"`"
                ),
            ));
        }
    }
    template.check_roots(&known).map_err(fail)?;
    let custom: Vec<String> = custom_filters.iter().map(ToString::to_string).collect();
    let custom_refs: Vec<&str> = custom.iter().map(String::as_str).collect();
    template.check_filters(&custom_refs).map_err(fail)?;
    let mut out = Vec::new();
    for segment in &template.segments {
        match segment {
            Segment::Literal(text) => out.push(quote_spanned! {span=> __key.literal(#text); }),
            Segment::Field(field) => {
                let value = field_text_or_part(field, span, private, &custom)?;
                out.push(value);
            }
        }
    }
    Ok(out)
}

/// A value being rendered: a plain reference, or an `Option` of one after a lookup.
enum Value {
    Ref(TokenStream),
    Opt(TokenStream),
}

impl Value {
    /// A reference expression: `&T` as it is, an `Option<&T>` borrowed.
    fn as_part(&self) -> TokenStream {
        match self {
            Self::Ref(e) => quote! { #e },
            Self::Opt(e) => quote! { &(#e) },
        }
    }
}

fn access(field: &Field, span: Span, private: &TokenStream) -> syn::Result<Value> {
    let root = match &field.root {
        Root::Arg(name) => {
            let ident = Ident::new(name, span);
            quote_spanned! {span=> &#ident }
        }
        Root::SelfValue => quote_spanned! {span=> self },
        Root::Context => {
            return Err(syn::Error::new(
                span,
                "`@` (the key context) is read with the `get` filter: `{@:get(name)}`",
            ));
        }
    };
    let mut value = Value::Ref(root);
    for step in &field.path {
        value = match (value, step) {
            (Value::Ref(e), Access::Field(name)) => Value::Ref(member(e, name, span)),
            (Value::Opt(e), Access::Field(name)) => {
                let inner = member(quote! { __v }, name, span);
                Value::Opt(quote_spanned! {span=> (#e).map(|__v| #inner) })
            }
            (Value::Ref(e), Access::Index(i)) => {
                let i = usize::try_from(*i).unwrap_or(usize::MAX);
                Value::Opt(quote_spanned! {span=> #private::KeyIndex::key_index(#e, #i) })
            }
            (Value::Opt(e), Access::Index(i)) => {
                let i = usize::try_from(*i).unwrap_or(usize::MAX);
                Value::Opt(
                    quote_spanned! {span=> (#e).and_then(|__v| #private::KeyIndex::key_index(__v, #i)) },
                )
            }
            (Value::Ref(e), Access::Key(k)) => {
                Value::Opt(quote_spanned! {span=> #private::KeyLookup::key_lookup(#e, #k) })
            }
            (Value::Opt(e), Access::Key(k)) => Value::Opt(
                quote_spanned! {span=> (#e).and_then(|__v| #private::KeyLookup::key_lookup(__v, #k)) },
            ),
        };
    }
    Ok(value)
}

fn member(base: TokenStream, name: &str, span: Span) -> TokenStream {
    if name.bytes().all(|b| b.is_ascii_digit()) {
        let index = syn::Index {
            index: name.parse().unwrap_or(u32::MAX),
            span,
        };
        quote_spanned! {span=> &(#base).#index }
    } else {
        let ident = format_ident!("{}", name, span = span);
        quote_spanned! {span=> &(#base).#ident }
    }
}

/// Tokens that render one field into `__key`: straight into the buffer when unfiltered,
/// through text and the filter chain otherwise.
fn field_text_or_part(
    field: &Field,
    span: Span,
    private: &TokenStream,
    custom: &[String],
) -> syn::Result<TokenStream> {
    if field.filters.is_empty() {
        let value = access(field, span, private)?.as_part();
        return Ok(quote_spanned! {span=> __key.part(#value); });
    }
    let text = field_text(field, span, private, custom)?;
    Ok(quote_spanned! {span=> __key.text(&#text); })
}

/// An expression of type `String`: the field rendered and filtered.
fn field_text(
    field: &Field,
    span: Span,
    private: &TokenStream,
    custom: &[String],
) -> syn::Result<TokenStream> {
    let mut filters = field.filters.iter();
    let mut text = match (&field.root, field.filters.first()) {
        (Root::Context, Some(first)) if first.name == "get" => {
            filters.next();
            let name = text_arg(first.args.first());
            quote_spanned! {span=> #private::render(&#private::context_get(#name)) }
        }
        (Root::Context, _) => {
            return Err(syn::Error::new(
                span,
                "`@` (the key context) is read with the `get` filter first: `{@:get(name)}`",
            ));
        }
        (_, Some(first)) if first.name == "get" && !custom.iter().any(|c| c == "get") => {
            filters.next();
            let value = access(field, span, private)?.as_part();
            let name = text_arg(first.args.first());
            quote_spanned! {span=>
                #private::render(&#private::KeyLookup::key_lookup(#value, #name))
            }
        }
        _ => {
            let value = access(field, span, private)?.as_part();
            quote_spanned! {span=> #private::render(#value) }
        }
    };
    for filter in filters {
        let name = filter.name.as_str();
        let mut args = Vec::new();
        for arg in &filter.args {
            args.push(match arg {
                FilterArg::Text(t) => quote! { #t },
                FilterArg::Field(f) => {
                    let inner = if f.filters.is_empty() {
                        let v = access(f, span, private)?.as_part();
                        quote_spanned! {span=> #private::render(#v) }
                    } else {
                        field_text(f, span, private, custom)?
                    };
                    quote! { &#inner }
                }
            });
        }
        text = if custom.iter().any(|c| c == name) {
            quote_spanned! {span=> #private::custom_filter(#name, &#text, &[#(#args),*]) }
        } else {
            match name {
                "lower" => quote_spanned! {span=> #private::filter::lower(&#text) },
                "upper" => quote_spanned! {span=> #private::filter::upper(&#text) },
                "len" => quote_spanned! {span=> #private::filter::len(&#text) },
                "hash" => {
                    let algorithm = args.first().cloned().unwrap_or_else(|| quote! { "md5" });
                    quote_spanned! {span=> #private::hash(&#text, #algorithm) }
                }
                "jwt" => {
                    let claim = args.first().cloned().unwrap_or_else(|| quote! { "" });
                    quote_spanned! {span=> #private::filter::jwt(&#text, #claim) }
                }
                // `get` after another filter: the text is no map; check_filters allows it,
                // so render it as a custom filter would be dispatched (an error, logged).
                other => {
                    quote_spanned! {span=> #private::custom_filter(#other, &#text, &[#(#args),*]) }
                }
            }
        };
    }
    Ok(text)
}

fn text_arg(arg: Option<&FilterArg>) -> TokenStream {
    match arg {
        Some(FilterArg::Text(t)) => quote! { #t },
        _ => quote! { "" },
    }
}
