//! Strategies: caching and resilience patterns as plain async functions.
//!
//! Each attribute macro (`#[cashews::cache]`, …) expands to one call of a function here, so
//! closures, trait methods and generic code use the same behaviour without macros. What a
//! result means for the cache (store `Ok`, skip `Err`, …) is an [`Outcome`].
//!
//! | Attribute | Function | Use it for |
//! |---|---|---|
//! | `#[cashews::cache]` | [`cache()`] | plain caching with a TTL |

mod cache;
mod gate;
mod outcome;

pub use cache::{CacheOptions, StoreCondition, cache};
pub(crate) use gate::Gates;
pub use outcome::{
    Fallible, Mode, ModeDecoded, ModeShared, Optional, Outcome, Plain, Shape, ShapeFallible,
    ShapeOptional, ShapePlain, Shared,
};
