//! Validation: an attribute's arguments and the decorated function read into a [`Plan`], with
//! a spanned error for each bad argument (every one of them in one compilation where the
//! arguments are independent). Nothing here generates code: [`super::expand`] does, from the
//! plan alone.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Expr, ExprPath, ItemFn, LitStr};

use super::{Common, Kind, TTL_HINT};
use crate::args::{Args, Errors};
use crate::response::Stored;
use crate::signature::Function;
use crate::ttl::TtlArg;

/// An attribute checked: what to generate, by family. Built once per expansion, so the
/// variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum Plan {
    /// `cache`, `failover`, `soft`, `early`, `hit`, `dynamic`.
    Caching(Caching),
    /// `rate_limit`, `slice_rate_limit`, `circuit_breaker`.
    Refusal(Refusal),
    /// `invalidate`.
    Invalidate(Common),
    /// `iterator`.
    Iterator(Iterator),
    /// `bloom`, `dual_bloom`, `perf`.
    Guard(Guard),
    /// `locked`, `thunder_protection`.
    Locking(Locking),
    /// `transaction`.
    Transaction(Transaction),
}

/// The checked arguments of `transaction`.
pub(super) struct Transaction {
    pub(super) common: Common,
    /// A `TransactionMode` expression (a string literal checked and turned into its variant).
    pub(super) mode: Option<TokenStream>,
    /// A constant `Duration`.
    pub(super) timeout: Option<TokenStream>,
}

/// The checked arguments of a caching attribute.
pub(super) struct Caching {
    pub(super) common: Common,
    pub(super) ttl: Option<TtlArg>,
    /// `ttl = |value| ...` (only on `cache`, `soft`, `hit`, `dynamic`).
    pub(super) ttl_of_result: Option<Box<Expr>>,
    /// `with_errors(pred)` / `only_errors(pred)`: whether only errors, and the predicate.
    pub(super) error_filter: Option<(bool, Expr)>,
    /// `condition = path::to::fn`: which results are stored.
    pub(super) custom_condition: Option<ExprPath>,
    pub(super) not_none: bool,
    /// `with_errors` (`Some(false)`) or `only_errors` (`Some(true)`).
    pub(super) errors_mode: Option<bool>,
    pub(super) time_condition: Option<TtlArg>,
    pub(super) soft_ttl: Option<TtlArg>,
    pub(super) early_ttl: Option<TtlArg>,
    pub(super) protected: Option<bool>,
    pub(super) lock: bool,
    pub(super) upper: bool,
    pub(super) background: bool,
    pub(super) cache_hits: Option<Expr>,
    pub(super) update_after: Option<Expr>,
    pub(super) update_before: Option<Expr>,
    pub(super) when: Option<Expr>,
    pub(super) tags: Vec<LitStr>,
    /// How the result is stored: as it is, or as the data of an axum `Json<T>`.
    pub(super) stored: Stored,
}

/// The checked arguments of a rate limit or a circuit breaker; durations are constants.
pub(super) struct Refusal {
    pub(super) common: Common,
    pub(super) period: TokenStream,
    pub(super) ttl: Option<TokenStream>,
    pub(super) half_open_ttl: Option<TokenStream>,
    pub(super) limit: Option<Expr>,
    pub(super) errors_rate: Option<Expr>,
    pub(super) min_calls: Option<Expr>,
    pub(super) half_open_probes: Option<Expr>,
    pub(super) when: Option<Expr>,
    pub(super) action: Option<Expr>,
}

/// The checked arguments of `iterator`.
pub(super) struct Iterator {
    pub(super) common: Common,
    pub(super) ttl: Option<TtlArg>,
    pub(super) not_none: bool,
    /// `with_errors` (`Some(false)`) or `only_errors` (`Some(true)`).
    pub(super) errors: Option<bool>,
}

/// The checked arguments of `bloom`, `dual_bloom` and `perf`.
pub(super) struct Guard {
    pub(super) common: Common,
    /// `perf`: the constant TTL and window.
    pub(super) ttl: TokenStream,
    pub(super) window: Option<TokenStream>,
    pub(super) name: Option<LitStr>,
    pub(super) capacity: Option<Expr>,
    pub(super) false_positives: Option<Expr>,
    pub(super) check: Option<bool>,
    pub(super) no_collisions: Option<bool>,
    pub(super) trace_size: Option<Expr>,
    pub(super) perf_condition: Option<Expr>,
}

/// How `locked` waits for the lock.
pub(super) enum Wait {
    /// As long as it takes (any return type).
    Always,
    /// `wait = false`: refuse at once.
    No,
    /// `wait = "5s"`: refuse after that (a constant `Duration`).
    For(TokenStream),
}

/// The checked arguments of `locked` and `thunder_protection`.
pub(super) struct Locking {
    pub(super) common: Common,
    pub(super) ttl: Option<TtlArg>,
    pub(super) wait: Wait,
}

/// Reads and checks `attr` for `kind` on `item`.
pub(super) fn check(kind: Kind, attr: TokenStream, item: ItemFn) -> syn::Result<(Function, Plan)> {
    let name = kind.name();
    let args = Args::parse(name, kind.accepted(), attr);
    let func = if kind == Kind::Iterator {
        Function::parse_stream(item)
    } else {
        Function::parse(item, name)
    };
    let (args, func) = match (args, func) {
        (Ok(a), Ok(f)) => (a, f),
        (Err(mut a), Err(f)) => {
            a.combine(f);
            return Err(a);
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let plan = match kind {
        Kind::RateLimit | Kind::SliceRateLimit | Kind::CircuitBreaker => {
            Plan::Refusal(refusal(kind, args, &func)?)
        }
        Kind::Invalidate => Plan::Invalidate(invalidate(args)?),
        Kind::Iterator => Plan::Iterator(iterator(args)?),
        Kind::Bloom | Kind::DualBloom | Kind::Perf => Plan::Guard(guard(kind, args)?),
        Kind::Locked | Kind::ThunderProtection => Plan::Locking(locking(kind, args)?),
        Kind::Transaction => Plan::Transaction(transaction(args, &func)?),
        Kind::Cache | Kind::Failover | Kind::Soft | Kind::Early | Kind::Hit | Kind::Dynamic => {
            Plan::Caching(caching(kind, args, &func)?)
        }
    };
    Ok((func, plan))
}

/// The keywords `condition` accepts (besides a path to a predicate).
const CONDITIONS: [&str; 3] = ["not_none", "with_errors", "only_errors"];

#[allow(clippy::too_many_lines)]
fn caching(kind: Kind, mut args: Args, func: &Function) -> syn::Result<Caching> {
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
            if p.path
                .get_ident()
                .is_some_and(|i| CONDITIONS.contains(&i.to_string().as_str())) =>
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
            &CONDITIONS,
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
            Span::call_site(),
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
        // The lock lives as long as the TTL, so "no expiry" cannot lock.
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
    let stored = crate::response::classify(&func.output, kind.name())?;
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
    Ok(Caching {
        common,
        ttl,
        ttl_of_result,
        error_filter,
        custom_condition,
        not_none,
        errors_mode,
        time_condition,
        soft_ttl,
        early_ttl,
        protected,
        lock,
        upper,
        background,
        cache_hits,
        update_after,
        update_before,
        when,
        tags,
        stored,
    })
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

/// Rate limits and the circuit breaker: the required arguments, constant durations, and
/// `action` only with named arguments.
fn refusal(kind: Kind, mut args: Args, func: &Function) -> syn::Result<Refusal> {
    if kind == Kind::CircuitBreaker {
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
    } else {
        args.require(
            "limit",
            "the number of calls allowed per period, e.g. `limit = 100`",
        );
        args.require(
            "period",
            "the window the limit applies to, e.g. `period = \"1m\"`",
        );
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
        && let Some(span) = func.patterns.first()
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
    let mut errors = Errors::default();
    let period = constant(&mut errors, period.as_ref(), "period");
    let ttl = constant(&mut errors, ttl.as_ref(), "ttl");
    let half_open_ttl = constant(&mut errors, half_open_ttl.as_ref(), "half_open_ttl");
    errors.finish()?;
    Ok(Refusal {
        common,
        period: period.unwrap_or_default(),
        ttl,
        half_open_ttl,
        limit,
        errors_rate,
        min_calls,
        half_open_probes,
        when,
        action,
    })
}

/// A duration argument that must be a constant: its `Duration` tokens, the error recorded.
fn constant(errors: &mut Errors, arg: Option<&TtlArg>, name: &str) -> Option<TokenStream> {
    match arg.map(|a| a.constant_duration(name)) {
        Some(Ok(tokens)) => Some(tokens),
        Some(Err(e)) => {
            errors.push(e);
            None
        }
        None => None,
    }
}

/// `invalidate`: a key template (the pattern) is required.
fn invalidate(mut args: Args) -> syn::Result<Common> {
    args.require(
        "key",
        "the key template or pattern to delete after a successful call, e.g. `key = \"user:{id}:*\"`",
    );
    let common = Common::parse(&mut args);
    args.finish()?;
    if common.key.is_none() {
        return Err(syn::Error::new(Span::call_site(), "`key` is required"));
    }
    Ok(common)
}

fn iterator(mut args: Args) -> syn::Result<Iterator> {
    args.require("ttl", TTL_HINT);
    let ttl = args.ttl("ttl");
    let common = Common::parse(&mut args);
    let condition = args
        .word(
            "condition",
            &CONDITIONS,
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
    Ok(Iterator {
        common,
        ttl,
        not_none,
        errors,
    })
}

fn guard(kind: Kind, mut args: Args) -> syn::Result<Guard> {
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
    let mut errors = Errors::default();
    let (ttl, window) = if kind == Kind::Perf {
        let ttl = constant(&mut errors, ttl.as_ref(), "ttl");
        (ttl, constant(&mut errors, window.as_ref(), "window"))
    } else {
        (None, None)
    };
    errors.finish()?;
    Ok(Guard {
        common,
        ttl: ttl.unwrap_or_else(|| quote! { ::core::time::Duration::ZERO }),
        window,
        name,
        capacity,
        false_positives,
        check,
        no_collisions,
        trace_size,
        perf_condition,
    })
}

fn locking(kind: Kind, mut args: Args) -> syn::Result<Locking> {
    if kind == Kind::Locked {
        args.require(
            "ttl",
            "how long the lock is held at most, e.g. `ttl = \"30s\"`",
        );
    }
    let ttl = args.ttl("ttl");
    let wait = args.expr("wait");
    let common = Common::parse(&mut args);
    args.finish()?;
    // `wait = false`: refuse at once; `wait = "5s"`: refuse after that; none (or `true`): wait
    // as long as it takes.
    let wait = match wait {
        None => Wait::Always,
        Some(Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Bool(b),
            ..
        })) => {
            if b.value {
                Wait::Always
            } else {
                Wait::No
            }
        }
        Some(expr) => Wait::For(TtlArg::parse(expr)?.constant_duration("wait")?),
    };
    Ok(Locking { common, ttl, wait })
}

/// `transaction`: `mode = "fast" | "locked" | "serializable"` (or a `TransactionMode`
/// expression), `timeout` a constant duration; both default to the cache's.
fn transaction(mut args: Args, func: &Function) -> syn::Result<Transaction> {
    // A lock timeout or a failed commit must reach the caller, and an `Err` must roll back:
    // the function returns a `Result` (any alias whose name ends in `Result`).
    let returns_result = matches!(
        &func.output,
        syn::Type::Path(path) if path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident.to_string().ends_with("Result"))
    );
    if !returns_result {
        return Err(syn::Error::new_spanned(
            &func.output,
            "a `#[cashews::transaction]` function returns `Result<T, E>` with \
             `impl From<cashews::Error> for E`: an `Err` rolls the transaction back, and a lock \
             timeout or a failed commit arrives as one",
        ));
    }
    let mode = args.expr("mode");
    let timeout = args.expr("timeout");
    let common = Common::parse(&mut args);
    args.finish()?;
    let private = common.private();
    let mode = match mode {
        None => None,
        Some(Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(name),
            ..
        })) => {
            let variant = match name.value().as_str() {
                "fast" => quote! { Fast },
                "locked" => quote! { Locked },
                "serializable" => quote! { Serializable },
                _ => {
                    return Err(syn::Error::new_spanned(
                        name,
                        "a transaction `mode` is \"fast\", \"locked\" or \"serializable\"",
                    ));
                }
            };
            Some(quote! { #private::TransactionMode::#variant })
        }
        Some(expr) => Some(quote! { #expr }),
    };
    let timeout = match timeout {
        None => None,
        Some(expr) => Some(TtlArg::parse(expr)?.constant_duration("timeout")?),
    };
    Ok(Transaction {
        common,
        mode,
        timeout,
    })
}
