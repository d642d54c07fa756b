//! Code generation: a checked [`Plan`] becomes the decorated function. The key is rendered
//! once (its text and default rules are the runtime's, see [`crate::key`]), TTLs and options
//! are built, the body becomes an `async move` block with the function's own return type (so
//! `return` and `?` keep their meaning), and one call of the runtime function runs it.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Expr, ItemFn};

use super::validate::{Caching, Guard, Iterator, Locking, Plan, Refusal, Transaction, Wait};
use super::{Common, Kind};
use crate::key::Head;
use crate::response::Stored;
use crate::signature::Function;
use crate::ttl::TtlArg;

/// The decorated function for `plan`.
pub(super) fn plan(kind: Kind, func: &Function, plan: &Plan) -> syn::Result<TokenStream> {
    match plan {
        Plan::Caching(c) => caching(kind, func, c),
        Plan::Refusal(r) => refusal(kind, func, r),
        Plan::Invalidate(common) => invalidate(func, common),
        Plan::Iterator(i) => iterator(func, i),
        Plan::Guard(g) => guard(kind, func, g),
        Plan::Locking(l) => locking(kind, func, l),
        Plan::Transaction(t) => Ok(transaction(func, t)),
    }
}

/// Statements that adjust `__options` from a TTL-like argument (`.time_condition(d)`).
fn duration_option(ttl: Option<&TtlArg>, method: &str, private: &TokenStream) -> TokenStream {
    let Some(ttl) = ttl else {
        return quote! {};
    };
    let tokens = ttl.tokens(private);
    let method = syn::Ident::new(method, proc_macro2::Span::call_site());
    quote! {
        if let ::core::option::Option::Some(__d) =
            (#tokens).and_then(|__t: #private::Ttl| __t.duration())
        {
            __options = __options.#method(__d);
        }
    }
}

/// The shape expression of a caching strategy's result: which results are stored, how errors
/// are cached, and the TTL computed from the value.
fn shape(c: &Caching, output: &syn::Type, private: &TokenStream) -> TokenStream {
    let mut base_shape = match (c.errors_mode, &c.error_filter) {
        (Some(only), Some((_, predicate))) => quote! {
            #private::Shape::<#output>::new().with_errors(#only).matching(#predicate)
        },
        (Some(only), None) => {
            quote! { #private::Shape::<#output>::new().with_errors(#only) }
        }
        (None, _) => quote! { (&&&#private::Shape::<#output>::new()).shape() },
    };
    if let Some(predicate) = &c.custom_condition {
        base_shape = quote! {
            #private::When(#base_shape, |__r: &#output| -> bool { (#predicate)(__r) })
        };
    }
    let moded = quote! { (&&#private::Mode::<#output, _>::new(__shape)).mode() };
    let moded = match &c.ttl_of_result {
        Some(closure) => quote! { #private::ttl_by::<#output, _, _, _>(#moded, #closure) },
        None => moded,
    };
    quote! {{
        #[allow(unused_imports)]
        use #private::{
            ModeDecoded as _, ModeShared as _, ShapeFallible as _, ShapeOptional as _,
            ShapePlain as _,
        };
        let __shape = #base_shape;
        #moded
    }}
}

/// The options value of a caching strategy (before the duration adjustments).
fn caching_options(
    kind: Kind,
    c: &Caching,
    func: &Function,
    head: &Head,
    private: &TokenStream,
) -> TokenStream {
    let mut options = match kind {
        Kind::Failover => quote! { #private::FailoverOptions::new() },
        Kind::Soft => quote! { #private::SoftOptions::new() },
        Kind::Early => quote! { #private::EarlyOptions::new() },
        Kind::Hit => {
            let hits = c
                .cache_hits
                .as_ref()
                .map_or_else(|| quote! { 0 }, |e| quote! { #e });
            quote! { #private::HitOptions::new(#hits) }
        }
        Kind::Dynamic => quote! { () },
        _ => quote! { #private::CacheOptions::new() },
    };
    if kind != Kind::Dynamic {
        // What detect reports as the template of a hit.
        let template = crate::key::template(func, c.common.key.as_ref(), head, private);
        options = quote! { #options.template(#template) };
    }
    if c.not_none {
        options = quote! { #options.condition(#private::StoreCondition::NotNone) };
    }
    if c.protected == Some(false) {
        options = quote! { #options.protected(false) };
    }
    if c.upper {
        options = quote! { #options.upper(true) };
    }
    if let Some(n) = &c.update_after {
        options = quote! { #options.update_after(#n) };
    }
    if let Some(n) = &c.update_before {
        options = quote! { #options.update_before(#n) };
    }
    options
}

/// `cache`, `failover`, `soft`, `early`, `hit`, `dynamic`.
#[allow(clippy::too_many_lines)]
fn caching(kind: Kind, func: &Function, c: &Caching) -> syn::Result<TokenStream> {
    let private = c.common.private();
    let filters = &c.common.filters;
    let mut tag_exprs = Vec::new();
    for tag in &c.tags {
        tag_exprs.push(crate::key::tokens(
            func,
            Some(tag),
            &Head::None,
            kind.name(),
            filters,
            &private,
        )?);
    }
    let head = c.common.head(kind);
    let key = crate::key::tokens(
        func,
        c.common.key.as_ref(),
        &head,
        kind.name(),
        filters,
        &private,
    )?;
    let ttl = match (&c.ttl, kind) {
        _ if c.ttl_of_result.is_some() => {
            quote! { ::core::option::Option::Some(#private::Ttl::NONE) }
        }
        (Some(ttl), _) => ttl.tokens(&private),
        (None, Kind::Dynamic) => {
            quote! { ::core::option::Option::Some(#private::HitOptions::DYNAMIC_TTL) }
        }
        (None, _) => quote! { ::core::option::Option::None },
    };
    let cache = c.common.cache(&private);
    let options = caching_options(kind, c, func, &head, &private);
    let mut adjust = duration_option(c.time_condition.as_ref(), "time_condition", &private);
    adjust.extend(duration_option(c.soft_ttl.as_ref(), "soft_ttl", &private));
    adjust.extend(duration_option(c.early_ttl.as_ref(), "early_ttl", &private));

    // What the strategy stores: the return type, or the data of an axum `Json<T>` (rebuilt
    // from it below, on every path out).
    let ret = &func.output;
    let output: syn::Type = match c.stored {
        Stored::AsIs => ret.clone(),
        Stored::Response => syn::parse_quote! { <#ret as #private::CachedResponse>::Stored },
    };
    let output = &output;
    let rebuild = |value: TokenStream| match c.stored {
        Stored::AsIs => value,
        Stored::Response => {
            quote! { <#ret as #private::CachedResponse>::from_stored(#value) }
        }
    };
    let shape = shape(c, output, &private);
    let background = c.background;
    // The strategy's future, awaited below (inside `tagged` when there are tags).
    let call = match kind {
        Kind::Cache if c.lock => quote! {
            #private::cache_locked(#cache, &__cashews_key, __cashews_ttl, &__options, #shape, __cashews_origin)
        },
        Kind::Soft => quote! {
            #private::soft(#cache, &__cashews_key, __cashews_ttl, &__options, #shape, __cashews_origin)
        },
        Kind::Early if background => quote! {
            #private::early_detached(#cache, &__cashews_key, __cashews_ttl, &__options, #shape, __cashews_origin)
        },
        Kind::Early => quote! {
            #private::early(#cache, &__cashews_key, __cashews_ttl, &__options, #shape, __cashews_origin)
        },
        Kind::Hit if background => quote! {
            #private::hit_detached(#cache, &__cashews_key, __cashews_ttl, &__options, #shape, __cashews_origin)
        },
        Kind::Hit => quote! {
            #private::hit(#cache, &__cashews_key, __cashews_ttl, &__options, #shape, __cashews_origin)
        },
        Kind::Dynamic => quote! {
            #private::dynamic(#cache, &__cashews_key, __cashews_ttl, #shape, __cashews_origin)
        },
        Kind::Failover => {
            let when: Expr = c
                .when
                .clone()
                .unwrap_or_else(|| syn::parse_quote!(#private::any_error));
            match &c.custom_condition {
                Some(keep) => quote! {
                    #private::failover_if(
                        #cache, &__cashews_key, __cashews_ttl, &__options,
                        |__e| (#when)(__e),
                        |__v| (#keep)(__v),
                        __cashews_origin,
                    )
                },
                None => quote! {
                    #private::failover(
                        #cache, &__cashews_key, __cashews_ttl, &__options,
                        |__e| (#when)(__e),
                        __cashews_origin,
                    )
                },
            }
        }
        // `cache`: the hit was looked for before the origin future was built (`hit_first`).
        _ => quote! {
            #private::cache_after_lookup(&__options, #cache, &__cashews_key, __cashews_ttl, #shape, __cashews_origin, __cashews_known_miss)
        },
    };
    let (tagging, call) = if tag_exprs.is_empty() {
        (quote! {}, quote! { #call.await })
    } else {
        // The registry maps the full key template to the tag templates, so a
        // delete of the key also takes it out of its tag sets.
        let key_template = crate::key::template(func, c.common.key.as_ref(), &head, &private);
        let tag_literals = c.tags.iter();
        (
            quote! {
                #private::register_tags(#cache, #key_template, &[#(#tag_literals),*]);
                let __cashews_tags: ::std::vec::Vec<::std::string::String> =
                    ::std::vec![#(#tag_exprs),*];
            },
            quote! {
                #private::tagged(
                    ::std::clone::Clone::clone(&__cashews_key),
                    __cashews_tags,
                    #call,
                )
                .await
            },
        )
    };
    // `cache` on a memory route: a hit is looked up and returned before the origin future
    // and the strategy's future are built, so it moves no arguments and builds no state
    // machine (a measured share of a ~100 ns hit). A miss goes on without reading again.
    // `#cache` and `#shape` are written inline, in the `Some` arm, as every other strategy
    // writes them: nothing runs when the TTL is `None`, and a temporary in `cache = …` lives
    // to the end of the call. On a miss they are evaluated once more by the call (the
    // `cache` option names a `Cache`, a path or a cheap expression; see its docs).
    let hit_first = if kind == Kind::Cache && !c.lock {
        let hit = rebuild(quote! { __cashews_hit });
        quote! {
            let mut __cashews_seen: ::core::option::Option<#private::Seen> = ::core::option::Option::None;
            let __cashews_first: ::core::option::Option<::core::option::Option<#output>> =
                match __cashews_ttl {
                    ::core::option::Option::Some(__cashews_ttl) => #private::cache_lookup_now(
                        &__options, #cache, &__cashews_key, __cashews_ttl, &#shape, &mut __cashews_seen,
                    ),
                    ::core::option::Option::None => ::core::option::Option::None,
                };
            let __cashews_known_miss = match __cashews_first {
                ::core::option::Option::Some(::core::option::Option::Some(__cashews_hit)) => {
                    return #hit;
                }
                ::core::option::Option::Some(::core::option::Option::None) => __cashews_seen,
                ::core::option::Option::None => ::core::option::Option::None,
            };
        }
    } else {
        quote! {}
    };
    let setup = quote! {
        let __cashews_key: ::std::string::String = #key;
        #tagging
        let __cashews_ttl: ::core::option::Option<#private::Ttl> = #ttl;
        #[allow(unused_mut)]
        let mut __options = #options;
        #adjust
        #hit_first
    };
    let call = rebuild(quote! {
        match __cashews_ttl {
            ::core::option::Option::Some(__cashews_ttl) => #call,
            ::core::option::Option::None => __cashews_origin.await,
        }
    });
    Ok(wrap_as(func, &private, &setup, &call, c.stored))
}

/// Rate limits and the circuit breaker: refusals reach the caller through the function's
/// error type (`E: From<cashews::Error>`); the body runs only when the call is let through.
fn refusal(kind: Kind, func: &Function, r: &Refusal) -> syn::Result<TokenStream> {
    let private = r.common.private();
    let key = crate::key::tokens(
        func,
        r.common.key.as_ref(),
        &r.common.head(kind),
        kind.name(),
        &r.common.filters,
        &private,
    )?;
    let cache = r.common.cache(&private);
    let period = &r.period;
    let (limit, errors_rate) = (&r.limit, &r.errors_rate);
    let (options, options_type, call) = match kind {
        Kind::RateLimit => {
            let mut options = quote! { #private::RateLimitOptions::new(#limit, #period) };
            if let Some(ban) = &r.ttl {
                options = quote! { #options.ttl(#ban) };
            }
            (
                options,
                quote! { #private::RateLimitOptions },
                quote! { #private::rate_limited(#cache, &__cashews_key, &__OPTIONS, __cashews_origin).await },
            )
        }
        Kind::SliceRateLimit => (
            quote! { #private::SliceRateLimitOptions::new(#limit, #period) },
            quote! { #private::SliceRateLimitOptions },
            quote! { #private::slice_rate_limited(#cache, &__cashews_key, &__OPTIONS, __cashews_origin).await },
        ),
        _ => {
            let ttl = r.ttl.clone().unwrap_or_default();
            let mut options =
                quote! { #private::CircuitBreakerOptions::new(#errors_rate, #period, #ttl) };
            if let Some(half) = &r.half_open_ttl {
                options = quote! { #options.half_open_ttl(#half) };
            }
            if let Some(n) = &r.min_calls {
                options = quote! { #options.min_calls(#n) };
            }
            if let Some(n) = &r.half_open_probes {
                options = quote! { #options.half_open_probes(#n) };
            }
            let when: Expr = r
                .when
                .clone()
                .unwrap_or_else(|| syn::parse_quote!(|_| true));
            (
                options,
                quote! { #private::CircuitBreakerOptions },
                quote! {
                    #private::circuit_breaker(
                        #cache, &__cashews_key, &__OPTIONS, |__e| (#when)(__e), __cashews_origin,
                    ).await
                },
            )
        }
    };
    let output = &func.output;
    if let Some(action) = &r.action {
        // `action`: a refused call returns `action(args…)` instead of an error, so
        // the result type is free. The check runs before the body takes the arguments.
        let check = if kind == Kind::RateLimit {
            quote! { #private::rate_limit(#cache, &__cashews_key, &__OPTIONS).await }
        } else {
            quote! { #private::slice_rate_limit(#cache, &__cashews_key, &__OPTIONS).await }
        };
        let receiver = func.has_receiver.then(|| quote! { self, });
        let names = &func.params;
        let setup = quote! {
            const __OPTIONS: #options_type = #options;
            const _: () = #private::assert_options(__OPTIONS.problem());
            let __cashews_key: ::std::string::String = #key;
            if #private::refused(#check) {
                return (#action)(#receiver #(#names),*);
            }
        };
        return Ok(wrap(
            func,
            &private,
            &setup,
            &quote! { __cashews_origin.await },
        ));
    }
    let setup = quote! {
        const _: () = #private::assert_refusal::<#output>();
        // Built at compile time: a bad limit or window is a compile error.
        const __OPTIONS: #options_type = #options;
        const _: () = #private::assert_options(__OPTIONS.problem());
        let __cashews_key: ::std::string::String = #key;
    };
    Ok(wrap(func, &private, &setup, &call))
}

/// `invalidate`: after a successful call, deletes the keys matching the rendered pattern.
fn invalidate(func: &Function, common: &Common) -> syn::Result<TokenStream> {
    let private = common.private();
    let Some(key) = &common.key else {
        return Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            "`key` is required",
        ));
    };
    let pattern = crate::key::pattern_tokens(func, key, &common.filters, &private)?;
    let cache = common.cache(&private);
    let output = &func.output;
    let setup = quote! {
        let __cashews_pattern: ::std::string::String = #pattern;
    };
    let call = quote! {
        let __cashews_shape = {
            #[allow(unused_imports)]
            use #private::{ShapeFallible as _, ShapeOptional as _, ShapePlain as _};
            (&&&#private::Shape::<#output>::new()).shape()
        };
        #private::invalidate(#cache, &__cashews_pattern, __cashews_shape, __cashews_origin).await
    };
    Ok(wrap(func, &private, &setup, &call))
}

/// `iterator`: a plain `fn` returning a stream; the stream's items are cached one by one.
fn iterator(func: &Function, i: &Iterator) -> syn::Result<TokenStream> {
    let private = i.common.private();
    let head = i.common.head(Kind::Iterator);
    let key = crate::key::tokens(
        func,
        i.common.key.as_ref(),
        &head,
        Kind::Iterator.name(),
        &i.common.filters,
        &private,
    )?;
    let ttl = i.ttl.as_ref().map_or_else(
        || quote! { ::core::option::Option::None },
        |t| t.tokens(&private),
    );
    let cache = i.common.cache(&private);
    let template = crate::key::template(func, i.common.key.as_ref(), &head, &private);
    let mut options = quote! { #private::IteratorOptions::new().template(#template) };
    if i.not_none {
        options = quote! { #options.condition(#private::StoreCondition::NotNone) };
    }
    // The items' shape: errors cached when asked, else chosen by the item type.
    let item_shape = match i.errors {
        Some(only) => quote! { __cashews_items.with_errors(#only) },
        None => quote! {{
            #[allow(unused_imports)]
            use #private::{ShapeFallible as _, ShapeOptional as _, ShapePlain as _};
            (&&&__cashews_items).shape()
        }},
    };
    let ItemFn {
        attrs,
        vis,
        modifiers,
        sig,
        block,
    } = &func.item;
    let defaultness = &modifiers.defaultness;
    Ok(quote! {
        #(#attrs)*
        #vis #defaultness #sig {
            let __cashews_key: ::std::string::String = #key;
            let __cashews_ttl: ::core::option::Option<#private::Ttl> = #ttl;
            // A closure, so a `return` in the body returns the stream, not the function.
            #[allow(clippy::redundant_closure_call)]
            let __cashews_origin = (move || #block)();
            let __cashews_items = #private::item_shape(&__cashews_origin);
            let __cashews_shape = #item_shape;
            match __cashews_ttl {
                ::core::option::Option::Some(__cashews_ttl) => #private::Either::Left(
                    #private::iterator(
                        #cache,
                        &__cashews_key,
                        __cashews_ttl,
                        &#options,
                        __cashews_shape,
                        __cashews_origin,
                    ),
                ),
                ::core::option::Option::None => #private::Either::Right(__cashews_origin),
            }
        }
    })
}

/// `bloom`, `dual_bloom` (functions returning `bool`) and `perf` (refusals through
/// `E: From<cashews::Error>`): options built as constants, one runtime call.
fn guard(kind: Kind, func: &Function, g: &Guard) -> syn::Result<TokenStream> {
    let private = g.common.private();
    let cache = g.common.cache(&private);
    let head = g.common.head(kind);
    let output = &func.output;
    let (setup, call) = if kind == Kind::Perf {
        let ttl = &g.ttl;
        let mut options = quote! { #private::PerfOptions::new(#ttl) };
        if let Some(n) = &g.trace_size {
            options = quote! { #options.trace_size(#n) };
        }
        if let Some(w) = &g.window {
            options = quote! { #options.window(#w) };
        }
        if let Some(f) = &g.perf_condition {
            options = quote! { #options.condition(#f) };
        }
        let key = crate::key::tokens(
            func,
            g.common.key.as_ref(),
            &head,
            kind.name(),
            &g.common.filters,
            &private,
        )?;
        (
            quote! {
                const _: () = #private::assert_refusal::<#output>();
                const __OPTIONS: #private::PerfOptions = #options;
                const _: () = #private::assert_options(__OPTIONS.problem());
                let __cashews_key: ::std::string::String = #key;
            },
            quote! { #private::perf(#cache, &__cashews_key, &__OPTIONS, __cashews_origin).await },
        )
    } else {
        // The filter is per function; the member is the rendered name (default: the arguments).
        let filter_key = crate::key::function_key(func, &head, &private);
        let member = crate::key::tokens(
            func,
            g.name.as_ref(),
            &Head::None,
            kind.name(),
            &g.common.filters,
            &private,
        )?;
        let capacity = g
            .capacity
            .as_ref()
            .map_or_else(|| quote! { 1 }, |c| quote! { #c });
        let (options, options_type, function) = if kind == Kind::Bloom {
            let mut o = quote! { #private::BloomOptions::new(#capacity) };
            if let Some(fp) = &g.false_positives {
                o = quote! { #o.false_positives(#fp) };
            }
            if let Some(c) = g.check {
                o = quote! { #o.check_false_positive(#c) };
            }
            (
                o,
                quote! { #private::BloomOptions },
                quote! { #private::bloom },
            )
        } else {
            let mut o = quote! { #private::DualBloomOptions::new(#capacity) };
            if let Some(fp) = &g.false_positives {
                o = quote! { #o.false_positives(#fp) };
            }
            if let Some(n) = g.no_collisions {
                o = quote! { #o.no_collisions(#n) };
            }
            (
                o,
                quote! { #private::DualBloomOptions },
                quote! { #private::dual_bloom },
            )
        };
        (
            quote! {
                const __OPTIONS: #options_type = #options;
                const _: () = #private::assert_options(__OPTIONS.problem());
                let __cashews_member: ::std::string::String = #member;
            },
            quote! {
                #function(#cache, #filter_key, &__cashews_member, &__OPTIONS, __cashews_origin).await
            },
        )
    };
    Ok(wrap(func, &private, &setup, &call))
}

/// `locked` (one call at a time per key, across processes) and `thunder_protection`
/// (concurrent calls in this process share one run and its result).
fn locking(kind: Kind, func: &Function, l: &Locking) -> syn::Result<TokenStream> {
    let private = l.common.private();
    let cache = l.common.cache(&private);
    let key = crate::key::tokens(
        func,
        l.common.key.as_ref(),
        &l.common.head(kind),
        kind.name(),
        &l.common.filters,
        &private,
    )?;
    let output = &func.output;
    let call = if kind == Kind::ThunderProtection {
        quote! { #private::thunder_protection(#cache, &__cashews_key, __cashews_origin).await }
    } else {
        let ttl = l.ttl.as_ref().map_or_else(
            || quote! { ::core::option::Option::None },
            |t| t.tokens(&private),
        );
        let wait_options = match &l.wait {
            Wait::Always => None,
            Wait::No => Some(quote! { #private::LockedOptions::new().no_wait() }),
            Wait::For(duration) => Some(quote! { #private::LockedOptions::new().wait(#duration) }),
        };
        match wait_options {
            Some(options) => quote! {{
                const _: () = #private::assert_refusal::<#output>();
                const __OPTIONS: #private::LockedOptions = #options;
                let __cashews_ttl = (#ttl).unwrap_or(#private::Ttl::NONE);
                #private::locked(#cache, &__cashews_key, __cashews_ttl, &__OPTIONS, __cashews_origin).await
            }},
            None => quote! {{
                let __cashews_ttl = (#ttl).unwrap_or(#private::Ttl::NONE);
                #private::locked_always(#cache, &__cashews_key, __cashews_ttl, __cashews_origin).await
            }},
        }
    };
    let setup = quote! {
        let __cashews_key: ::std::string::String = #key;
    };
    Ok(wrap(func, &private, &setup, &call))
}

/// `transaction`: the body runs inside a transaction of the cache, committed on `Ok`.
fn transaction(func: &Function, t: &Transaction) -> TokenStream {
    let private = t.common.private();
    let cache = t.common.cache(&private);
    let output = &func.output;
    let mode = t.mode.as_ref().map_or_else(
        || quote! { ::core::option::Option::None },
        |mode| quote! { ::core::option::Option::Some(#mode) },
    );
    let timeout = t.timeout.as_ref().map_or_else(
        || quote! { ::core::option::Option::None },
        |timeout| quote! { ::core::option::Option::Some(#timeout) },
    );
    let setup = quote! {
        const _: () = #private::assert_refusal::<#output>();
    };
    let call = quote! {
        #private::transaction(#cache, #mode, #timeout, __cashews_origin).await
    };
    wrap(func, &private, &setup, &call)
}

/// The decorated function: its signature, attributes and docs unchanged; `setup` (key,
/// options, …) runs first, while the arguments are still borrowed; the body becomes an
/// `async move` origin with the function's own return type (so `return` and `?` keep their
/// meaning); then `call` runs it through the strategy.
///
/// The origin is an `Origin`: the closure that builds the body's future, built (and boxed)
/// only when the strategy first polls it. So each attribute's future holds the arguments, not
/// the body's future, and stacked attributes stay small, each layer the same size however
/// deep (a hit builds nothing).
fn wrap(
    func: &Function,
    private: &TokenStream,
    setup: &TokenStream,
    call: &TokenStream,
) -> TokenStream {
    wrap_as(func, private, setup, call, Stored::AsIs)
}

/// [`wrap`], with the origin's result turned into what the strategy stores: for an axum
/// `Json<T>`, the body runs as its own `async` block (so its `return`s keep the declared
/// type) and the origin yields the `T`.
fn wrap_as(
    func: &Function,
    private: &TokenStream,
    setup: &TokenStream,
    call: &TokenStream,
    stored: Stored,
) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        modifiers,
        sig,
        block,
    } = &func.item;
    let defaultness = &modifiers.defaultness;
    let output = &func.output;
    let origin = match stored {
        Stored::AsIs => quote! {
            let __cashews_result: #output = #block;
            __cashews_result
        },
        Stored::Response => quote! {
            let __cashews_result: #output = async move #block.await;
            <#output as #private::CachedResponse>::into_stored(__cashews_result)
        },
    };
    quote! {
        #(#attrs)*
        #vis #defaultness #sig {
            #setup
            let __cashews_origin = #private::Origin::new(move || async move { #origin });
            #call
        }
    }
}
