//! The expansion every strategy attribute shares: the key is rendered once, TTLs and options
//! are built, the body becomes an `async move` block with the function's own return type (so
//! `return` and `?` keep their meaning), and one call of the runtime function runs it.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Expr, ItemFn};

use crate::args::Args;
use crate::signature::Function;
use crate::ttl::TtlArg;

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
        }
    }

    /// The key prefix when none is given.
    fn default_prefix(self) -> Option<&'static str> {
        match self {
            Self::Cache => None,
            Self::Failover => Some("fail"),
            Self::Soft => Some("soft"),
            Self::Early => Some("early:v2"),
            Self::Hit => Some("hit"),
            Self::Dynamic => Some("dynamic"),
            Self::RateLimit => Some("rate_limit"),
            Self::SliceRateLimit => Some("srl"),
            Self::CircuitBreaker => Some("circuit_breaker"),
            Self::Invalidate | Self::Iterator => None,
            Self::Bloom => Some("bloom"),
            Self::DualBloom => Some("dual_bloom"),
            Self::Perf => Some("perf"),
            Self::Locked => Some("locked"),
            Self::ThunderProtection => None,
        }
    }

    fn is_refusal(self) -> bool {
        matches!(
            self,
            Self::RateLimit | Self::SliceRateLimit | Self::CircuitBreaker
        )
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
    match build(kind, attr, item_fn) {
        Ok(tokens) => tokens,
        Err(error) => with_original(error, item),
    }
}

/// On a validation error: the error and the function unchanged, so callers see no cascade.
fn with_original(error: syn::Error, item: TokenStream) -> TokenStream {
    let error = error.to_compile_error();
    quote! { #error #item }
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

#[allow(clippy::too_many_lines)]
fn build(kind: Kind, attr: TokenStream, item: ItemFn) -> syn::Result<TokenStream> {
    let name = kind.name();
    let args = Args::parse(name, kind.accepted(), attr);
    let func = if kind == Kind::Iterator {
        Function::parse_stream(item)
    } else {
        Function::parse(item, name)
    };
    let (mut args, func) = match (args, func) {
        (Ok(a), Ok(f)) => (a, f),
        (Err(mut a), Err(f)) => {
            a.combine(f);
            return Err(a);
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    if kind.is_refusal() {
        return build_refusal(kind, args, &func);
    }
    if kind == Kind::Invalidate {
        return build_invalidate(args, &func);
    }
    if kind == Kind::Iterator {
        return build_iterator(args, &func);
    }
    if matches!(kind, Kind::Bloom | Kind::DualBloom | Kind::Perf) {
        return build_guard(kind, args, &func);
    }
    if matches!(kind, Kind::Locked | Kind::ThunderProtection) {
        return build_locking(kind, args, &func);
    }
    if kind != Kind::Dynamic {
        args.require("ttl", TTL_HINT);
    }
    if kind == Kind::Hit {
        args.require(
            "cache_hits",
            "how many hits a computed value serves, e.g. `cache_hits = 100`",
        );
    }
    let ttl = args.ttl("ttl");
    let common = Common::parse(&mut args);
    // A keyword, or a path to `fn(&R) -> bool` deciding which results are stored.
    let condition_expr = args.expr("condition");
    // `with_errors(pred)` / `only_errors(pred)`: cache only the errors `pred` accepts.
    let mut error_filter: Option<(bool, Expr)> = None;
    if let Some(Expr::Call(call)) = &condition_expr
        && let Expr::Path(func) = &*call.func
        && let Some(ident) = func.path.get_ident()
        && (ident == "with_errors" || ident == "only_errors")
    {
        if call.args.len() != 1 {
            return Err(syn::Error::new_spanned(
                call,
                format!(
                    "`{ident}(...)` takes one predicate over the error, e.g. \
                     `{ident}(ApiError::is_not_found)`"
                ),
            ));
        }
        error_filter = Some((ident == "only_errors", call.args[0].clone()));
    }
    let custom_condition = match &condition_expr {
        _ if error_filter.is_some() => None,
        Some(Expr::Path(p))
            if p.path.get_ident().is_some_and(|i| {
                ["not_none", "with_errors", "only_errors"].contains(&i.to_string().as_str())
            }) =>
        {
            None
        }
        Some(Expr::Path(p)) => Some(p.clone()),
        _ => None,
    };
    let condition = if let Some((only, _)) = &error_filter {
        Some(if *only { "only_errors" } else { "with_errors" }.to_owned())
    } else if custom_condition.is_some() {
        None
    } else {
        args.word(
            "condition",
            &["not_none", "with_errors", "only_errors"],
            "`not_none` skips `None`; `with_errors` stores `Err` too and replays it on a hit \
             (the error type must be `Serialize` and `Deserialize`); `only_errors` stores only \
             `Err`; or a path to `fn(&R) -> bool` deciding which results are stored",
        )
        .map(|c| c.to_string())
    };
    if custom_condition.is_some() && kind == Kind::Soft {
        return Err(syn::Error::new_spanned(
            &condition_expr,
            "a custom `condition` applies to `cache`, `failover`, `early`, `hit` and `dynamic`",
        ));
    }
    if kind == Kind::Failover && condition.is_some() {
        return Err(syn::Error::new_spanned(
            &condition_expr,
            "`#[cashews::failover]` stores only `Ok` values: its `condition` is a path to \
             `fn(&T) -> bool` over them (errors fall back through `when`)",
        ));
    }
    let not_none = condition.as_deref() == Some("not_none");
    if kind == Kind::Soft && condition.as_deref().is_some_and(|c| c != "not_none") {
        return Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            "`#[cashews::soft]` serves the stale value on errors, so it cannot cache them: \
             `condition` accepts only `not_none` here",
        ));
    }
    let errors_mode = match condition.as_deref() {
        Some("with_errors") => Some(false),
        Some("only_errors") => Some(true),
        _ => None,
    };
    let time_condition = args.ttl("time_condition");
    let soft_ttl = args.ttl("soft_ttl");
    let early_ttl = args.ttl("early_ttl");
    let protected = args.flag("protected");
    let lock = args.flag("lock").unwrap_or(false);
    if lock && let Some(TtlArg::Constant(0, span)) = &ttl {
        // SPEC §9 #77: the lock lives as long as the TTL, so "no expiry" cannot lock.
        args.errors.push(syn::Error::new(
            *span,
            "`lock = true` needs a TTL longer than zero: the lock `lock:<key>` expires with it",
        ));
    }
    let upper = args.flag("upper").unwrap_or(false);
    // `background = true`: the refresh runs in a spawned task, so the origin must own what it
    // uses. A borrowed argument is refused here, naming it, rather than by the borrow checker.
    let background = args.flag("background").unwrap_or(false);
    if background {
        for (span, arg) in func.borrowed() {
            args.errors.push(syn::Error::new(
                span,
                format!(
                    "`background = true` refreshes in a spawned task, which outlives the call and \
                     so cannot borrow `{arg}`: take it by value (e.g. `String` for `&str`, an \
                     `Arc` or a clone for `&self`), or leave out `background` to refresh in the \
                     caller"
                ),
            ));
        }
    }
    let cache_hits = args.expr("cache_hits");
    let update_after = args.expr("update_after");
    let update_before = args.expr("update_before");
    if let Some(before) = &update_before {
        check_update_before(
            &mut args,
            before,
            update_after.is_some(),
            cache_hits.as_ref(),
        );
    }
    let when = args.expr("when");
    let tags = args.strings(
        "tags",
        "lists tag templates, e.g. `tags = [\"users\", \"user:{id}\"]`",
    );
    args.finish()?;

    let private = common.private();
    let mut tag_exprs = Vec::new();
    for tag in &tags {
        tag_exprs.push(crate::key::tokens(
            &func,
            Some(tag),
            None,
            &common.filters,
            &private,
            true,
        )?);
    }
    let prefix_text = common.prefix_for(kind);
    let key = crate::key::tokens(
        &func,
        common.key.as_ref(),
        prefix_text.as_deref(),
        &common.filters,
        &private,
        true,
    )?;
    // `ttl = |value| ...` on the strategies that store a known result: the shape computes
    // the TTL per value; the strategy's own TTL is then only a placeholder.
    let ttl_of_result = match &ttl {
        Some(TtlArg::OfResult(closure))
            if matches!(kind, Kind::Cache | Kind::Soft | Kind::Hit | Kind::Dynamic) =>
        {
            Some(closure.clone())
        }
        Some(TtlArg::OfResult(closure)) => {
            return Err(syn::Error::new_spanned(closure, crate::ttl::OF_RESULT_ONLY));
        }
        _ => None,
    };
    let ttl = match (&ttl, kind) {
        _ if ttl_of_result.is_some() => {
            quote! { ::core::option::Option::Some(#private::Ttl::NONE) }
        }
        (Some(ttl), _) => ttl.tokens(&private),
        (None, Kind::Dynamic) => {
            quote! { ::core::option::Option::Some(#private::HitOptions::DYNAMIC_TTL) }
        }
        (None, _) => quote! { ::core::option::Option::None },
    };
    let cache = common.cache(&private);

    let mut options = match kind {
        Kind::Cache => quote! { #private::CacheOptions::new() },
        Kind::Failover => quote! { #private::FailoverOptions::new() },
        Kind::Soft => quote! { #private::SoftOptions::new() },
        Kind::Early => quote! { #private::EarlyOptions::new() },
        Kind::Hit => {
            let hits = cache_hits.map_or_else(|| quote! { 0 }, |e| quote! { #e });
            quote! { #private::HitOptions::new(#hits) }
        }
        // Refusals and invalidate are expanded by their own functions, before this point.
        Kind::Dynamic
        | Kind::RateLimit
        | Kind::SliceRateLimit
        | Kind::CircuitBreaker
        | Kind::Invalidate
        | Kind::Iterator
        | Kind::Bloom
        | Kind::DualBloom
        | Kind::Perf
        | Kind::Locked
        | Kind::ThunderProtection => {
            quote! { () }
        }
    };
    if kind != Kind::Dynamic {
        // What detect reports as the template of a hit.
        let template = key_template(&func, common.key.as_ref(), prefix_text.as_deref());
        options = quote! { #options.template(#template) };
    }
    if not_none {
        options = quote! { #options.condition(#private::StoreCondition::NotNone) };
    }
    if protected == Some(false) {
        options = quote! { #options.protected(false) };
    }
    if upper {
        options = quote! { #options.upper(true) };
    }
    if let Some(n) = &update_after {
        options = quote! { #options.update_after(#n) };
    }
    if let Some(n) = &update_before {
        options = quote! { #options.update_before(#n) };
    }
    let mut adjust = duration_option(time_condition.as_ref(), "time_condition", &private);
    adjust.extend(duration_option(soft_ttl.as_ref(), "soft_ttl", &private));
    adjust.extend(duration_option(early_ttl.as_ref(), "early_ttl", &private));

    let output = &func.output;
    let mut base_shape = match (errors_mode, &error_filter) {
        (Some(only), Some((_, predicate))) => quote! {
            #private::Shape::<#output>::new().with_errors(#only).matching(#predicate)
        },
        (Some(only), None) => {
            quote! { #private::Shape::<#output>::new().with_errors(#only) }
        }
        (None, _) => quote! { (&&&#private::Shape::<#output>::new()).shape() },
    };
    if let Some(predicate) = &custom_condition {
        base_shape = quote! {
            #private::When(#base_shape, |__r: &#output| -> bool { (#predicate)(__r) })
        };
    }
    let moded = quote! { (&&#private::Mode::<#output, _>::new(__shape)).mode() };
    let moded = match &ttl_of_result {
        Some(closure) => quote! { #private::ttl_by::<#output, _, _, _>(#moded, #closure) },
        None => moded,
    };
    let shape = quote! {{
        #[allow(unused_imports)]
        use #private::{
            ModeDecoded as _, ModeShared as _, ShapeFallible as _, ShapeOptional as _,
            ShapePlain as _,
        };
        let __shape = #base_shape;
        #moded
    }};
    // The strategy's future, awaited below (inside `tagged` when there are tags).
    let call = match kind {
        Kind::Cache if lock => quote! {
            #private::cache_locked(#cache, &__cashews_key, __cashews_ttl, &__options, #shape, __cashews_origin)
        },
        // The hit was looked for before the origin future was built (`hit_first` below).
        Kind::Cache => quote! {
            __options.after_lookup(#cache, &__cashews_key, __cashews_ttl, #shape, __cashews_origin, __cashews_known_miss)
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
        Kind::RateLimit
        | Kind::SliceRateLimit
        | Kind::CircuitBreaker
        | Kind::Invalidate
        | Kind::Iterator
        | Kind::Bloom
        | Kind::DualBloom
        | Kind::Perf
        | Kind::Locked
        | Kind::ThunderProtection => {
            quote! { __cashews_origin }
        }
        Kind::Failover => {
            let when: Expr = when.unwrap_or_else(|| syn::parse_quote!(#private::any_error));
            match &custom_condition {
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
    };
    let (tagging, call) = if tag_exprs.is_empty() {
        (quote! {}, quote! { #call.await })
    } else {
        // The registry maps the full key template to the tag templates, so a
        // delete of the key also takes it out of its tag sets.
        let key_template = key_template(&func, common.key.as_ref(), prefix_text.as_deref());
        let tag_literals = tags.iter();
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
    let hit_first = if kind == Kind::Cache && !lock {
        quote! {
            let __cashews_first: ::core::option::Option<::core::option::Option<#output>> =
                match __cashews_ttl {
                    ::core::option::Option::Some(__cashews_ttl) => __options.lookup_now(
                        #cache, &__cashews_key, __cashews_ttl, &#shape,
                    ),
                    ::core::option::Option::None => ::core::option::Option::None,
                };
            let __cashews_known_miss = match __cashews_first {
                ::core::option::Option::Some(::core::option::Option::Some(__cashews_hit)) => {
                    return __cashews_hit;
                }
                ::core::option::Option::Some(::core::option::Option::None) => true,
                ::core::option::Option::None => false,
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
    let call = quote! {
        match __cashews_ttl {
            ::core::option::Option::Some(__cashews_ttl) => #call,
            ::core::option::Option::None => __cashews_origin.await,
        }
    };
    Ok(wrap(&func, &private, &setup, &call))
}

/// `hit(update_before = N)`, the 2.x spelling of `update_after = cache_hits - N`: not both,
/// and (when both are integer literals) not more than `cache_hits`.
fn check_update_before(args: &mut Args, before: &Expr, after: bool, cache_hits: Option<&Expr>) {
    if after {
        args.errors.push(syn::Error::new_spanned(
            before,
            "give one of `update_after` and `update_before`: `update_before = N` is \
             `update_after = cache_hits - N`",
        ));
    }
    let int = |e: Option<&Expr>| match e {
        Some(Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(n),
            ..
        })) => n.base10_parse::<u64>().ok(),
        _ => None,
    };
    if let (Some(n), Some(hits)) = (int(Some(before)), int(cache_hits))
        && n > hits
    {
        args.errors.push(syn::Error::new_spanned(
            before,
            format!(
                "`update_before = {n}` is more than `cache_hits = {hits}`: a value serves at most \
                 {hits} hits, so give at most {hits} (`update_before = {hits}` recomputes at \
                 the first hit)"
            ),
        ));
    }
}

/// The full key template of a strategy as a `&'static str` expression: the prefix and the
/// `key` template, or the default key's template (module, function and `{arg}` fields; a
/// method's type is a field, since its name is known only at run time).
fn key_template(func: &Function, key: Option<&syn::LitStr>, prefix: Option<&str>) -> TokenStream {
    let prefix = prefix
        .filter(|p| !p.is_empty())
        .map(|p| format!("{p}:"))
        .unwrap_or_default();
    if let Some(key) = key {
        let text = format!("{prefix}{}", key.value());
        return quote! { #text };
    }
    let mut rest = String::new();
    let name = func.item.sig.ident.to_string();
    if func.has_receiver {
        rest.push_str(&format!(":{{__type}}.{name}"));
    } else {
        rest.push_str(&format!(":{name}"));
    }
    for arg in &func.args {
        rest.push_str(&format!(":{arg}:{{{arg}}}"));
    }
    quote! { ::core::concat!(#prefix, ::core::module_path!(), #rest) }
}

/// Rate limits and the circuit breaker: refusals reach the caller through the function's
/// error type (`E: From<cashews::Error>`); the body runs only when the call is let through.
fn build_refusal(kind: Kind, mut args: Args, func: &Function) -> syn::Result<TokenStream> {
    match kind {
        Kind::CircuitBreaker => {
            args.require(
                "errors_rate",
                "the failure percentage that opens the circuit, e.g. `errors_rate = 10`",
            );
            args.require(
                "period",
                "the window errors are counted over, e.g. `period = \"1m\"`",
            );
            args.require(
                "ttl",
                "how long the circuit stays open, e.g. `ttl = \"5m\"`",
            );
        }
        _ => {
            args.require(
                "limit",
                "the number of calls allowed per period, e.g. `limit = 100`",
            );
            args.require(
                "period",
                "the window the limit applies to, e.g. `period = \"1m\"`",
            );
        }
    }
    let period = args.ttl("period");
    let ttl = args.ttl("ttl");
    let half_open_ttl = args.ttl("half_open_ttl");
    let limit = args.expr("limit");
    let errors_rate = args.expr("errors_rate");
    let min_calls = args.expr("min_calls");
    let half_open_probes = args.expr("half_open_probes");
    let when = args.expr("when");
    let action = args.expr("action");
    let common = Common::parse(&mut args);
    args.finish()?;
    if let Some(action) = &action
        && let Some(span) = func.unnamed.first()
    {
        return Err(syn::Error::new(
            *span,
            format!(
                "`action` is called with the function's arguments, so each needs a name \
                 (found a pattern here); `action = {}` cannot receive it",
                quote! { #action }
            ),
        ));
    }
    let private = common.private();
    let mut errors = crate::args::Errors::default();
    let mut duration = |arg: Option<&TtlArg>, name: &str| -> Option<TokenStream> {
        match arg.map(|a| a.constant_duration(name)) {
            Some(Ok(tokens)) => Some(tokens),
            Some(Err(e)) => {
                errors.push(e);
                None
            }
            None => None,
        }
    };
    let period = duration(period.as_ref(), "period");
    let ttl = duration(ttl.as_ref(), "ttl");
    let half_open_ttl = duration(half_open_ttl.as_ref(), "half_open_ttl");
    errors.finish()?;
    let period = period.unwrap_or_default();
    let prefix_text = common.prefix_for(kind);
    // A circuit is per function by default, not per argument.
    let with_args = kind != Kind::CircuitBreaker;
    let key = crate::key::tokens(
        func,
        common.key.as_ref(),
        prefix_text.as_deref(),
        &common.filters,
        &private,
        with_args,
    )?;
    let cache = common.cache(&private);
    let (options, call) = match kind {
        Kind::RateLimit => {
            let mut options = quote! { #private::RateLimitOptions::new(#limit, #period) };
            if let Some(ban) = ttl {
                options = quote! { #options.ttl(#ban) };
            }
            (
                options,
                quote! { #private::rate_limited(#cache, &__cashews_key, &__OPTIONS, __cashews_origin).await },
            )
        }
        Kind::SliceRateLimit => (
            quote! { #private::SliceRateLimitOptions::new(#limit, #period) },
            quote! { #private::slice_rate_limited(#cache, &__cashews_key, &__OPTIONS, __cashews_origin).await },
        ),
        _ => {
            let ttl = ttl.unwrap_or_default();
            let mut options =
                quote! { #private::CircuitBreakerOptions::new(#errors_rate, #period, #ttl) };
            if let Some(half) = half_open_ttl {
                options = quote! { #options.half_open_ttl(#half) };
            }
            if let Some(n) = &min_calls {
                options = quote! { #options.min_calls(#n) };
            }
            if let Some(n) = &half_open_probes {
                options = quote! { #options.half_open_probes(#n) };
            }
            let when: Expr = when.unwrap_or_else(|| syn::parse_quote!(|_| true));
            (
                options,
                quote! {
                    #private::circuit_breaker(
                        #cache, &__cashews_key, &__OPTIONS, |__e| (#when)(__e), __cashews_origin,
                    ).await
                },
            )
        }
    };
    let options_type = match kind {
        Kind::RateLimit => quote! { #private::RateLimitOptions },
        Kind::SliceRateLimit => quote! { #private::SliceRateLimitOptions },
        _ => quote! { #private::CircuitBreakerOptions },
    };
    let output = &func.output;
    if let Some(action) = action {
        // `action`: a refused call returns `action(args…)` instead of an error, so
        // the result type is free. The check runs before the body takes the arguments.
        let check = if kind == Kind::RateLimit {
            quote! { #private::rate_limit(#cache, &__cashews_key, &__OPTIONS).await }
        } else {
            quote! { #private::slice_rate_limit(#cache, &__cashews_key, &__OPTIONS).await }
        };
        let receiver = func.has_receiver.then(|| quote! { self, });
        let names = &func.args;
        let setup = quote! {
            const __OPTIONS: #options_type = #options;
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
        let __cashews_key: ::std::string::String = #key;
    };
    Ok(wrap(func, &private, &setup, &call))
}

/// `invalidate`: after a successful call, deletes the keys matching the rendered pattern.
fn build_invalidate(mut args: Args, func: &Function) -> syn::Result<TokenStream> {
    args.require(
        "key",
        "the key template or pattern to delete after a successful call, e.g. `key = \"user:{id}:*\"`",
    );
    let common = Common::parse(&mut args);
    args.finish()?;
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
fn build_iterator(mut args: Args, func: &Function) -> syn::Result<TokenStream> {
    args.require("ttl", TTL_HINT);
    let ttl = args.ttl("ttl");
    let common = Common::parse(&mut args);
    let condition = args
        .word(
            "condition",
            &["not_none", "with_errors", "only_errors"],
            "`not_none`: `None` items are not stored; `with_errors`: an `Err` item is stored \
             too and replayed, ending the pass, as the stream did (`E: Serialize + Deserialize`); \
             `only_errors`: only the `Err` items are stored. Without it an `Err` item ends \
             caching for that run",
        )
        .map(|c| c.to_string());
    let not_none = condition.as_deref() == Some("not_none");
    let errors = match condition.as_deref() {
        Some("with_errors") => Some(false),
        Some("only_errors") => Some(true),
        _ => None,
    };
    args.finish()?;
    let private = common.private();
    let key = crate::key::tokens(
        func,
        common.key.as_ref(),
        None,
        &common.filters,
        &private,
        true,
    )?;
    let ttl = ttl.map_or_else(
        || quote! { ::core::option::Option::None },
        |t| t.tokens(&private),
    );
    let cache = common.cache(&private);
    let template = key_template(func, common.key.as_ref(), None);
    let mut options = quote! { #private::IteratorOptions::new().template(#template) };
    if not_none {
        options = quote! { #options.condition(#private::StoreCondition::NotNone) };
    }
    // The items' shape: errors cached when asked, else chosen by the item type.
    let item_shape = match errors {
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
fn build_guard(kind: Kind, mut args: Args, func: &Function) -> syn::Result<TokenStream> {
    if kind == Kind::Perf {
        args.require(
            "ttl",
            "how long calls are refused once slowness is detected, e.g. `ttl = \"1m\"`",
        );
    } else {
        args.require(
            "capacity",
            "how many members the filter is sized for, e.g. `capacity = 10_000`",
        );
    }
    let ttl = args.ttl("ttl");
    let window = args.ttl("window");
    let name = args.string("name");
    let capacity = args.expr("capacity");
    let false_positives = args.expr("false_positives");
    let check = args.flag("check_false_positive");
    let no_collisions = args.flag("no_collisions");
    let trace_size = args.expr("trace_size");
    let perf_condition = args.expr("perf_condition");
    let common = Common::parse(&mut args);
    args.finish()?;
    let private = common.private();
    let cache = common.cache(&private);
    let prefix_text = common.prefix_for(kind).unwrap_or_default();
    let output = &func.output;
    let (setup, call) = if kind == Kind::Perf {
        let mut errors = crate::args::Errors::default();
        let ttl = match ttl.as_ref().map(|t| t.constant_duration("ttl")) {
            Some(Ok(t)) => t,
            Some(Err(e)) => {
                errors.push(e);
                quote! { ::core::time::Duration::ZERO }
            }
            None => quote! { ::core::time::Duration::ZERO },
        };
        let mut options = quote! { #private::PerfOptions::new(#ttl) };
        if let Some(n) = &trace_size {
            options = quote! { #options.trace_size(#n) };
        }
        match window.as_ref().map(|w| w.constant_duration("window")) {
            Some(Ok(w)) => options = quote! { #options.window(#w) },
            Some(Err(e)) => errors.push(e),
            None => {}
        }
        if let Some(f) = &perf_condition {
            options = quote! { #options.condition(#f) };
        }
        errors.finish()?;
        let key = crate::key::tokens(
            func,
            common.key.as_ref(),
            Some(prefix_text.as_str()),
            &common.filters,
            &private,
            true,
        )?;
        (
            quote! {
                const _: () = #private::assert_refusal::<#output>();
                const __OPTIONS: #private::PerfOptions = #options;
                let __cashews_key: ::std::string::String = #key;
            },
            quote! { #private::perf(#cache, &__cashews_key, &__OPTIONS, __cashews_origin).await },
        )
    } else {
        // The filter is per function; the member is the rendered name (default: the arguments).
        let fn_name = func.item.sig.ident.to_string();
        let filter_key = quote! {
            ::core::concat!(#prefix_text, ":", ::core::module_path!(), ":", #fn_name)
        };
        let member =
            crate::key::tokens(func, name.as_ref(), None, &common.filters, &private, true)?;
        let capacity = capacity.map_or_else(|| quote! { 1 }, |c| quote! { #c });
        let (options, options_type, function) = if kind == Kind::Bloom {
            let mut o = quote! { #private::BloomOptions::new(#capacity) };
            if let Some(fp) = &false_positives {
                o = quote! { #o.false_positives(#fp) };
            }
            if let Some(c) = check {
                o = quote! { #o.check_false_positive(#c) };
            }
            (
                o,
                quote! { #private::BloomOptions },
                quote! { #private::bloom },
            )
        } else {
            let mut o = quote! { #private::DualBloomOptions::new(#capacity) };
            if let Some(fp) = &false_positives {
                o = quote! { #o.false_positives(#fp) };
            }
            if let Some(n) = no_collisions {
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
fn build_locking(kind: Kind, mut args: Args, func: &Function) -> syn::Result<TokenStream> {
    if kind == Kind::Locked {
        args.require(
            "ttl",
            "how long the lock is held at most, e.g. `ttl = \"30s\"`",
        );
    }
    let ttl = args.ttl("ttl");
    let wait = args.get_expr_raw("wait");
    let common = Common::parse(&mut args);
    args.finish()?;
    let private = common.private();
    let cache = common.cache(&private);
    let prefix_text = common.prefix_for(kind);
    let key = crate::key::tokens(
        func,
        common.key.as_ref(),
        prefix_text.as_deref(),
        &common.filters,
        &private,
        true,
    )?;
    let output = &func.output;
    let call = if kind == Kind::ThunderProtection {
        quote! { #private::thunder_protection(#cache, &__cashews_key, __cashews_origin).await }
    } else {
        let ttl = ttl.map_or_else(
            || quote! { ::core::option::Option::None },
            |t| t.tokens(&private),
        );
        // `wait = false`: refuse at once; `wait = "5s"`: refuse after that; none: wait as long
        // as it takes (any return type).
        let wait_options = match &wait {
            None => None,
            Some(Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Bool(b),
                ..
            })) if !b.value => Some(quote! { #private::LockedOptions::new().no_wait() }),
            Some(Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Bool(b),
                ..
            })) => {
                let _ = b;
                None
            }
            Some(expr) => {
                let duration = TtlArg::parse(expr.clone())?.constant_duration("wait")?;
                Some(quote! { #private::LockedOptions::new().wait(#duration) })
            }
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
    let ItemFn {
        attrs,
        vis,
        modifiers,
        sig,
        block,
    } = &func.item;
    let defaultness = &modifiers.defaultness;
    let output = &func.output;
    quote! {
        #(#attrs)*
        #vis #defaultness #sig {
            #setup
            let __cashews_origin = #private::Origin::new(move || async move {
                let __cashews_result: #output = #block;
                __cashews_result
            });
            #call
        }
    }
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

    /// The key prefix: the one given (`prefix = ""` for none), else the attribute's default.
    fn prefix_for(&self, kind: Kind) -> Option<String> {
        match &self.prefix {
            Some(prefix) => Some(prefix.value()),
            None => kind.default_prefix().map(str::to_owned),
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
