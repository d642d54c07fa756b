//! The grammar shared by the cashews attribute macros (at compile time) and the cashews runtime:
//! TTL strings ([`parse_ttl`]) and key templates ([`parse_template`]).
//!
//! One parser, one test set, so compile-time and run-time parsing never disagree. No
//! dependencies.
//!
//! ```
//! use std::time::Duration;
//! assert_eq!(cashews_syntax::parse_ttl("1d2h3m50s"), Ok(Duration::from_secs(93_830)));
//! assert!(cashews_syntax::parse_ttl("1m10").is_err());
//!
//! let key = cashews_syntax::parse_template("user:{user.id}:{email:lower:hash}").unwrap();
//! assert_eq!(key.roots(), ["user", "email"]);
//! assert!(cashews_syntax::parse_template("user:{0}").is_err());
//! ```

mod template;
mod ttl;

pub use template::{
    Access, Field, Filter, FilterArg, FilterSpec, Root, Segment, Template, TemplateError,
    TemplateErrorKind, builtin_filter, builtin_filters, parse_template, unknown_placeholder,
};
pub use ttl::{TtlError, TtlErrorKind, parse_ttl};
