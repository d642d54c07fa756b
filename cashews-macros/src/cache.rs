//! `#[cashews::cache]`: expands to a call of `cashews::strategy::cache`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

use crate::args::Args;
use crate::signature::Function;
use crate::ttl::TtlArg;

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item_fn: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let error = syn::Error::new(
                proc_macro2::Span::call_site(),
                "`#[cashews::cache]` goes on an `async fn`",
            );
            return with_original(error, item);
        }
    };
    match build(attr, item_fn) {
        Ok(tokens) => tokens,
        Err(error) => with_original(error, item),
    }
}

/// On a validation error: the error and the function unchanged, so callers see no cascade.
fn with_original(error: syn::Error, item: TokenStream) -> TokenStream {
    let error = error.to_compile_error();
    quote! { #error #item }
}

/// The arguments of `#[cashews::cache(...)]`.
struct CacheArgs {
    ttl: Option<TtlArg>,
    key: Option<syn::LitStr>,
    prefix: Option<syn::LitStr>,
    not_none: bool,
    time_condition: Option<TtlArg>,
    cache: Option<syn::Expr>,
    filters: Vec<syn::Ident>,
    protected: Option<bool>,
    krate: Option<syn::Path>,
}

const ACCEPTED: &[&str] = &[
    "ttl",
    "key",
    "prefix",
    "condition",
    "time_condition",
    "cache",
    "filters",
    "protected",
    "crate",
];

impl CacheArgs {
    fn parse(attr: TokenStream) -> syn::Result<Self> {
        let mut args = Args::parse("cache", ACCEPTED, attr)?;
        args.require(
            "ttl",
            "a string such as \"1h30m\", whole seconds, a `Duration`, or an expression of the arguments",
        );
        let out = Self {
            ttl: args.ttl("ttl"),
            key: args.string("key"),
            prefix: args.string("prefix"),
            not_none: args
                .word(
                    "condition",
                    &["not_none"],
                    "results are stored unless `None`; `Err` results are never stored",
                )
                .is_some(),
            time_condition: args.ttl("time_condition"),
            cache: args.expr("cache"),
            filters: args.idents(
                "filters",
                "lists the custom key filters the template uses, e.g. `filters = [prefix4]`",
            ),
            protected: args.flag("protected"),
            krate: args.path("crate"),
        };
        args.finish().map(|()| out)
    }
}

fn build(attr: TokenStream, item: ItemFn) -> syn::Result<TokenStream> {
    let args_result = CacheArgs::parse(attr);
    let func_result = Function::parse(item, "cache");
    let (args, func) = match (args_result, func_result) {
        (Ok(a), Ok(f)) => (a, f),
        (Err(mut a), Err(f)) => {
            a.combine(f);
            return Err(a);
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let private = match &args.krate {
        Some(path) => quote! { #path::__private },
        None => quote! { ::cashews::__private },
    };
    let key = crate::key::tokens(
        &func,
        args.key.as_ref(),
        args.prefix.as_ref(),
        &args.filters,
        &private,
    )?;
    let ttl = match &args.ttl {
        Some(ttl) => ttl.tokens(&private),
        None => quote! { ::core::option::Option::None },
    };
    let mut options = quote! { #private::CacheOptions::new() };
    if args.protected == Some(false) {
        options = quote! { #options.protected(false) };
    }
    if args.not_none {
        options = quote! { #options.condition(#private::StoreCondition::NotNone) };
    }
    let time_condition = args.time_condition.as_ref().map(|t| t.tokens(&private));
    let cache = match &args.cache {
        Some(expr) => quote! { &#expr },
        None => quote! { #private::default_cache() },
    };
    let output = &func.output;
    let ItemFn {
        attrs,
        vis,
        modifiers,
        sig,
        block,
    } = &func.item;
    let defaultness = &modifiers.defaultness;
    let time_condition = match time_condition {
        Some(tokens) => quote! {
            if let ::core::option::Option::Some(__at_least) = #tokens.and_then(|t| t.duration()) {
                __options = __options.time_condition(__at_least);
            }
        },
        None => quote! {},
    };
    Ok(quote! {
        #(#attrs)*
        #vis #defaultness #sig {
            let __cashews_key: ::std::string::String = #key;
            let __cashews_ttl: ::core::option::Option<#private::Ttl> = #ttl;
            #[allow(unused_mut)]
            let mut __options = #options;
            #time_condition
            let __cashews_origin = async move {
                let __cashews_result: #output = #block;
                __cashews_result
            };
            match __cashews_ttl {
                ::core::option::Option::Some(__cashews_ttl) => {
                    let __cashews_shape = {
                        #[allow(unused_imports)]
                        use #private::{
                            ModeDecoded as _, ModeShared as _, ShapeFallible as _,
                            ShapeOptional as _, ShapePlain as _,
                        };
                        let __shape = (&&&#private::Shape::<#output>::new()).shape();
                        (&&#private::Mode::<#output, _>::new(__shape)).mode()
                    };
                    #private::cache(
                        #cache,
                        &__cashews_key,
                        __cashews_ttl,
                        &__options,
                        __cashews_shape,
                        __cashews_origin,
                    )
                    .await
                }
                ::core::option::Option::None => __cashews_origin.await,
            }
        }
    })
}
