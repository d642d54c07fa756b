//! What a caching attribute does with the return type: most types are stored as they are; an
//! axum `Json<T>` (or `Result<Json<T>, E>`) is stored as its `T` through the runtime's
//! `CachedResponse` and wrapped again on a hit; other HTTP responses cannot be stored, and the
//! error says what to write instead. Types are recognised by their last path segment, as
//! written in the signature.

use syn::{GenericArgument, PathArguments, Type};

/// How a caching attribute stores the function's result.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// As it is (`Serialize` and `Deserialize`).
    AsIs,
    /// Through `CachedResponse`: an axum `Json<T>` as its `T`.
    Response,
}

/// Responses that carry no data the cache can store.
const RESPONSES: [&str; 8] = [
    "Response",
    "Html",
    "Redirect",
    "Sse",
    "StatusCode",
    "HeaderMap",
    "Body",
    "NoContent",
];

/// How `#[cashews::{attribute}]` stores a result of type `output`, or the error naming what
/// to write when it cannot.
pub(crate) fn classify(output: &Type, attribute: &str) -> syn::Result<Stored> {
    if is(output, "Json") {
        return Ok(Stored::Response);
    }
    if let Some(ok) = result_ok(output) {
        if is(ok, "Json") {
            return Ok(Stored::Response);
        }
        check_not_response(ok, attribute)?;
    }
    check_not_response(output, attribute)?;
    Ok(Stored::AsIs)
}

fn check_not_response(ty: &Type, attribute: &str) -> syn::Result<()> {
    let response = match ty {
        Type::Tuple(tuple) => tuple
            .elems
            .iter()
            .any(|e| is(e, "Json") || RESPONSES.iter().any(|r| is(e, r))),
        other => RESPONSES.iter().any(|r| is(other, r)),
    };
    if !response {
        return Ok(());
    }
    Err(syn::Error::new_spanned(
        ty,
        format!(
            "`#[cashews::{attribute}]` stores results serialized, and this HTTP response \
             cannot be stored: return `Json<T>` or `Result<Json<T>, E>` (cached by its \
             `T`, which must be `Serialize` and `Deserialize`, and wrapped again on a hit), or \
             cache an inner async fn that returns the data and call it from the handler"
        ),
    ))
}

/// Whether `ty` is a path type whose last segment is `name`.
fn is(ty: &Type, name: &str) -> bool {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            p.path.segments.last().is_some_and(|s| s.ident == name)
        }
        Type::Paren(p) => is(&p.elem, name),
        Type::Group(g) => is(&g.elem, name),
        _ => false,
    }
}

/// `T` of a `Result<T, …>` (any path ending in `Result` with a first type argument).
fn result_ok(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}
