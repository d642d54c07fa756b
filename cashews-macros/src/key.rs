//! Keys: a template checked at compile time and turned into straight-line code that renders
//! it, or the default key built from the function's path and arguments.

use cashews_syntax::{Access, Field, FilterArg, Root, Segment, Template};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{Ident, LitStr};

use crate::signature::Function;

/// Tokens of an expression of type `String`: the rendered key.
pub(crate) fn tokens(
    func: &Function,
    template: Option<&LitStr>,
    prefix: Option<&str>,
    custom_filters: &[Ident],
    private: &TokenStream,
    with_args: bool,
) -> syn::Result<TokenStream> {
    build(
        func,
        template,
        prefix,
        custom_filters,
        private,
        with_args,
        false,
    )
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
    build(
        func,
        Some(template),
        None,
        custom_filters,
        private,
        true,
        true,
    )
}

fn build(
    func: &Function,
    template: Option<&LitStr>,
    prefix: Option<&str>,
    custom_filters: &[Ident],
    private: &TokenStream,
    with_args: bool,
    pattern: bool,
) -> syn::Result<TokenStream> {
    let mut body = Vec::new();
    if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
        let text = format!("{prefix}:");
        body.push(quote! { __key.literal(#text); });
    }
    match template {
        Some(lit) => body.extend(template_tokens(func, lit, custom_filters, private)?),
        None => body.extend(default_tokens(func, with_args, private)?),
    }
    let buf = if pattern {
        quote! { #private::KeyBuf::for_pattern() }
    } else {
        quote! { #private::KeyBuf::with_capacity(64) }
    };
    Ok(quote! {{
        let mut __key = #buf;
        #(#body)*
        __key.finish()
    }})
}

fn default_tokens(
    func: &Function,
    with_args: bool,
    private: &TokenStream,
) -> syn::Result<Vec<TokenStream>> {
    if with_args && let Some(span) = func.unnamed.first() {
        return Err(syn::Error::new(
            *span,
            "the default key names every argument, and this one is a pattern: give the \
             argument a name or write a `key = \"...\"` template",
        ));
    }
    let name = func.item.sig.ident.to_string();
    let mut out = vec![quote! { __key.literal(::core::module_path!()); }];
    if func.has_receiver {
        // Methods of two types in one module must not share keys.
        out.push(quote! {
            __key.literal(":");
            __key.literal(&#private::type_label(::core::any::type_name::<Self>()));
            __key.literal(".");
            __key.literal(#name);
        });
    } else {
        let text = format!(":{name}");
        out.push(quote! { __key.literal(#text); });
    }
    for arg in func.args.iter().filter(|_| with_args) {
        let text = format!(":{arg}:");
        out.push(quote_spanned! {arg.span()=>
            __key.literal(#text);
            __key.part(&#arg);
        });
    }
    Ok(out)
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
