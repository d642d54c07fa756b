//! The grammar shared by the cashews attribute macros (at compile time) and the cashews runtime:
//! TTL strings now, key templates next.
//!
//! One parser, one test set, so compile-time and run-time parsing never disagree. No
//! dependencies.
//!
//! ```
//! use std::time::Duration;
//! assert_eq!(cashews_syntax::parse_ttl("1d2h3m50s"), Ok(Duration::from_secs(93_830)));
//! assert!(cashews_syntax::parse_ttl("1m10").is_err());
//! ```

mod ttl;

pub use ttl::{TtlError, TtlErrorKind, parse_ttl};
