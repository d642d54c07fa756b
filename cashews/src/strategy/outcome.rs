//! What a decorated function's result means for the cache: which part is stored, and how a
//! hit becomes a result again.
//!
//! Three shapes, chosen by the type system (never by reading the return type's tokens):
//! [`Plain`] for any `T` (store it), [`Fallible`] for `Result<T, E>` (store `Ok`, never `Err`)
//! and [`Optional`] for `Option<T>` (store `Some` and `None`; the `not_none` condition skips
//! `None`). The attribute macros pick the shape with [`Shape`]; code calling the strategies
//! by hand passes one of the three.

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How a result of type `R` is cached.
///
/// ```
/// use cashews::strategy::{Fallible, Outcome};
/// let shape = Fallible::<u32, String>::new();
/// assert_eq!(shape.stored(&Ok(7)), Some(&7));
/// assert_eq!(shape.stored(&Err("down".to_owned())), None);
/// assert_eq!(shape.restore(7), Ok(7));
/// ```
pub trait Outcome<R> {
    /// The type written to the cache.
    type Stored: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The part of `result` to store, or `None` when this result must not be cached.
    fn stored<'a>(&self, result: &'a R) -> Option<&'a Self::Stored>;

    /// The result a cache hit stands for.
    fn restore(&self, stored: Self::Stored) -> R;

    /// Whether `result` is `None` (only [`Optional`] says yes), for the `not_none` condition.
    fn is_none(&self, result: &R) -> bool {
        let _ = result;
        false
    }
}

macro_rules! shape {
    ($(#[$doc:meta])* $name:ident<$($p:ident),*>) => {
        $(#[$doc])*
        pub struct $name<$($p),*>(PhantomData<fn() -> ($($p,)*)>);

        impl<$($p),*> $name<$($p),*> {
            /// The shape (a zero-sized value).
            #[must_use]
            pub const fn new() -> Self {
                Self(PhantomData)
            }
        }

        impl<$($p),*> Default for $name<$($p),*> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<$($p),*> Clone for $name<$($p),*> {
            fn clone(&self) -> Self {
                *self
            }
        }

        impl<$($p),*> Copy for $name<$($p),*> {}

        impl<$($p),*> fmt::Debug for $name<$($p),*> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(stringify!($name))
            }
        }
    };
}

shape! {
    /// Any `T`: stored as it is.
    ///
    /// ```
    /// use cashews::strategy::{Outcome, Plain};
    /// assert_eq!(Plain::<String>::new().stored(&"x".to_owned()).map(String::as_str), Some("x"));
    /// ```
    Plain<T>
}

shape! {
    /// `Result<T, E>`: `Ok(v)` stores `v`, `Err` is never stored; a hit is `Ok`.
    ///
    /// ```
    /// use cashews::strategy::{Fallible, Outcome};
    /// assert_eq!(Fallible::<u8, ()>::new().restore(1), Ok(1));
    /// ```
    Fallible<T, E>
}

shape! {
    /// `Option<T>`: stored whole, `None` included (a cached "not found"); the `not_none`
    /// condition skips `None`.
    ///
    /// ```
    /// use cashews::strategy::{Optional, Outcome};
    /// let shape = Optional::<u8>::new();
    /// assert!(shape.is_none(&None));
    /// assert_eq!(shape.stored(&None), Some(&None));
    /// ```
    Optional<T>
}

impl<T> Outcome<T> for Plain<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type Stored = T;

    fn stored<'a>(&self, result: &'a T) -> Option<&'a T> {
        Some(result)
    }

    fn restore(&self, stored: T) -> T {
        stored
    }
}

impl<T, E> Outcome<Result<T, E>> for Fallible<T, E>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type Stored = T;

    fn stored<'a>(&self, result: &'a Result<T, E>) -> Option<&'a T> {
        result.as_ref().ok()
    }

    fn restore(&self, stored: T) -> Result<T, E> {
        Ok(stored)
    }
}

impl<T> Outcome<Option<T>> for Optional<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type Stored = Option<T>;

    fn stored<'a>(&self, result: &'a Option<T>) -> Option<&'a Option<T>> {
        Some(result)
    }

    fn restore(&self, stored: Option<T>) -> Option<T> {
        stored
    }

    fn is_none(&self, result: &Option<T>) -> bool {
        result.is_none()
    }
}

/// Picks the shape of a result type at compile time, for the attribute macros: `Result` and
/// `Option` get theirs, every other type is [`Plain`]. (Method resolution through auto-ref:
/// the impls for `&&Shape<Result<..>>` and `&&Shape<Option<..>>` win over the one for
/// `&Shape<R>` when the receiver is `&&&Shape<R>`: the first probe step looks for receivers of
/// type `&&&Shape<R>`, which only the specific impls offer.)
///
/// ```
/// use cashews::strategy::{Outcome, Shape, ShapeFallible, ShapeOptional, ShapePlain};
/// let fallible = (&&&Shape::<Result<u8, ()>>::new()).shape();
/// assert_eq!(fallible.stored(&Err(())), None);
/// let plain = (&&&Shape::<u8>::new()).shape();
/// assert_eq!(plain.stored(&3), Some(&3));
/// let optional = (&&&Shape::<Option<u8>>::new()).shape();
/// assert!(optional.is_none(&None));
/// ```
pub struct Shape<R>(PhantomData<fn() -> R>);

impl<R> Shape<R> {
    /// The selector for `R`.
    #[must_use]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<R> Default for Shape<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> fmt::Debug for Shape<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Shape")
    }
}

/// Selects [`Fallible`] for `Result` (see [`Shape`]).
pub trait ShapeFallible<T, E> {
    /// The shape.
    fn shape(&self) -> Fallible<T, E>;
}

impl<T, E> ShapeFallible<T, E> for &&Shape<Result<T, E>> {
    fn shape(&self) -> Fallible<T, E> {
        Fallible::new()
    }
}

/// Selects [`Optional`] for `Option` (see [`Shape`]).
pub trait ShapeOptional<T> {
    /// The shape.
    fn shape(&self) -> Optional<T>;
}

impl<T> ShapeOptional<T> for &&Shape<Option<T>> {
    fn shape(&self) -> Optional<T> {
        Optional::new()
    }
}

/// Selects [`Plain`] for every other type (see [`Shape`]).
pub trait ShapePlain<R> {
    /// The shape.
    fn shape(&self) -> Plain<R>;
}

impl<R> ShapePlain<R> for &Shape<R> {
    fn shape(&self) -> Plain<R> {
        Plain::new()
    }
}
