//! What a decorated function's result means for the cache: which part is stored, and how a
//! hit becomes a result again.
//!
//! Three shapes, chosen by the type system (never by reading the return type's tokens):
//! [`Plain`] for any `T` (store it), [`Fallible`] for `Result<T, E>` (store `Ok`, never `Err`)
//! and [`Optional`] for `Option<T>` (store `Some` and `None`; the `not_none` condition skips
//! `None`). The attribute macros pick the shape from the result type; code calling the strategies
//! by hand passes one of the three.

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ttl::{IntoTtl, Ttl};

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

    /// Whether `result` is an error (an `Err` of [`Fallible`] or [`WithErrors`]). An error a
    /// shape stores ([`WithErrors`]) ends a cached [`iterator`](super::iterator()) pass: the
    /// pass is complete once it is stored, as a consumer may stop there.
    ///
    /// ```
    /// use cashews::strategy::{Outcome, Plain, WithErrors};
    /// assert!(WithErrors::<u8, String>::new(false).is_error(&Err("down".to_owned())));
    /// assert!(!Plain::<u8>::new().is_error(&1));
    /// ```
    fn is_error(&self, result: &R) -> bool {
        let _ = result;
        false
    }

    /// Whether hits read a shared, decoded-once object ([`Cache::get_shared`](crate::Cache::get_shared))
    /// and rebuild the result from a clone of it, instead of decoding per hit. True for
    /// [`Shared`] shapes.
    const SHARED: bool = false;

    /// The result a shared hit stands for (a clone of `stored`); `None` when this shape does
    /// not read shared objects.
    fn restore_shared(&self, stored: &Self::Stored) -> Option<R> {
        let _ = stored;
        None
    }

    /// The TTL to store `stored` for, given the strategy's `ttl`: `ttl` itself unless the
    /// shape computes it from the value ([`TtlBy`]); `None` skips storing (an invalid TTL
    /// computed from the value, logged).
    fn store_ttl(&self, stored: &Self::Stored, ttl: Ttl) -> Option<Ttl> {
        let _ = stored;
        Some(ttl)
    }

    /// For the timed strategies ([`early`](super::early()), [`soft`](super::soft())): how long
    /// after the write `stored` is due (for a refresh, or soft-expired), given the strategy's
    /// own `after` (`None`: never). `after` itself unless the shape computes it from the value,
    /// as the HTTP cache layer does with a response's `max-age`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::strategy::{Outcome, Plain};
    /// let after = Some(Duration::from_secs(60));
    /// assert_eq!(Plain::<u8>::new().stamp_after(&1, after), after);
    /// ```
    fn stamp_after(
        &self,
        stored: &Self::Stored,
        after: Option<std::time::Duration>,
    ) -> Option<std::time::Duration> {
        let _ = stored;
        after
    }
}

/// Any shape, reading hits as shared objects: on `mem://` the stored value is decoded once per
/// write and each hit clones it, which beats decoding when `Stored: Clone` is cheap.
///
/// ```
/// use cashews::strategy::{Outcome, Plain, Shared};
/// let shape = Shared(Plain::<String>::new());
/// assert_eq!(shape.restore_shared(&"x".to_owned()), Some("x".to_owned()));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Shared<S>(pub S);

impl<R, S> Outcome<R> for Shared<S>
where
    S: Outcome<R>,
    S::Stored: Clone,
{
    type Stored = S::Stored;

    const SHARED: bool = true;

    fn stored<'a>(&self, result: &'a R) -> Option<&'a Self::Stored> {
        self.0.stored(result)
    }

    fn restore(&self, stored: Self::Stored) -> R {
        self.0.restore(stored)
    }

    fn is_none(&self, result: &R) -> bool {
        self.0.is_none(result)
    }

    fn is_error(&self, result: &R) -> bool {
        self.0.is_error(result)
    }

    fn restore_shared(&self, stored: &Self::Stored) -> Option<R> {
        Some(self.0.restore(stored.clone()))
    }

    fn store_ttl(&self, stored: &Self::Stored, ttl: Ttl) -> Option<Ttl> {
        self.0.store_ttl(stored, ttl)
    }

    fn stamp_after(
        &self,
        stored: &Self::Stored,
        after: Option<std::time::Duration>,
    ) -> Option<std::time::Duration> {
        self.0.stamp_after(stored, after)
    }
}

/// Picks how a shape reads hits, for the attribute macros: [`Shared`] when the stored type is
/// `Clone`, the shape itself otherwise (auto-ref, as [`Shape`]).
///
/// ```
/// use cashews::__private::{Mode, ModeDecoded, ModeShared};
/// use cashews::strategy::{Outcome, Plain};
/// fn shares<R, S: Outcome<R>>(_: &S) -> bool { S::SHARED }
///
/// let cloneable = (&&Mode::<String, _>::new(Plain::<String>::new())).mode();
/// assert!(shares::<String, _>(&cloneable));
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct NotClone(u8);
/// let decoded = (&&Mode::<NotClone, _>::new(Plain::<NotClone>::new())).mode();
/// assert!(!shares::<NotClone, _>(&decoded));
/// ```
pub struct Mode<R, S>(S, PhantomData<fn() -> R>);

impl<R, S> Mode<R, S> {
    /// The selector for shape `shape` of results `R`.
    #[must_use]
    pub const fn new(shape: S) -> Self {
        Self(shape, PhantomData)
    }
}

impl<R, S: fmt::Debug> fmt::Debug for Mode<R, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Mode").field(&self.0).finish()
    }
}

/// Selects [`Shared`] when the stored type is `Clone` (see [`Mode`]).
pub trait ModeShared<S> {
    /// The shape reading shared objects.
    fn mode(&self) -> Shared<S>;
}

impl<R, S> ModeShared<S> for &Mode<R, S>
where
    S: Outcome<R> + Copy,
    S::Stored: Clone,
{
    fn mode(&self) -> Shared<S> {
        Shared(self.0)
    }
}

/// Keeps the shape (decoding per hit) when the stored type is not `Clone` (see [`Mode`]).
pub trait ModeDecoded<S> {
    /// The shape itself.
    fn mode(&self) -> S;
}

impl<R, S: Copy> ModeDecoded<S> for Mode<R, S> {
    fn mode(&self) -> S {
        self.0
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

    fn is_error(&self, result: &Result<T, E>) -> bool {
        result.is_err()
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

/// `Result<T, E>` with errors cached too (`condition = with_errors`), or only errors
/// (`condition = only_errors`): the whole `Result` is stored, and a hit replays an `Err`
/// as the function would have returned it. Needs `E: Serialize + Deserialize`.
///
/// ```
/// use cashews::strategy::{Outcome, WithErrors};
/// let both = WithErrors::<u8, String>::new(false);
/// assert_eq!(both.stored(&Err("x".to_owned())), Some(&Err("x".to_owned())));
/// let only = WithErrors::<u8, String>::new(true);
/// assert_eq!(only.stored(&Ok(1)), None);
/// ```
pub struct WithErrors<T, E> {
    only_errors: bool,
    types: PhantomData<fn() -> (T, E)>,
}

impl<T, E> WithErrors<T, E> {
    /// Errors and values (`only_errors = false`), or errors only.
    #[must_use]
    pub const fn new(only_errors: bool) -> Self {
        Self {
            only_errors,
            types: PhantomData,
        }
    }
}

impl<T, E> WithErrors<T, E> {
    /// Caches only the errors `is_cached` accepts (Python cashews' `with_exceptions(ErrorType)`: in
    /// Rust one error type, so a predicate picks the variants): other errors are returned and
    /// never stored; values are stored as before (none with `only_errors`).
    ///
    /// ```
    /// use cashews::strategy::{Outcome, WithErrors};
    /// let shape = WithErrors::<u8, String>::new(false).matching(|e: &String| e == "not found");
    /// assert!(shape.stored(&Err("not found".to_owned())).is_some());
    /// assert!(shape.stored(&Err("timeout".to_owned())).is_none());
    /// assert!(shape.stored(&Ok(1)).is_some());
    /// ```
    pub fn matching<P>(self, is_cached: P) -> When<Self, impl Fn(&Result<T, E>) -> bool + Copy>
    where
        P: Fn(&E) -> bool + Copy,
    {
        When(self, move |result: &Result<T, E>| {
            result.as_ref().err().is_none_or(is_cached)
        })
    }
}

impl<T, E> Clone for WithErrors<T, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, E> Copy for WithErrors<T, E> {}

impl<T, E> fmt::Debug for WithErrors<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithErrors")
            .field("only_errors", &self.only_errors)
            .finish()
    }
}

impl<T, E> Outcome<Result<T, E>> for WithErrors<T, E>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    E: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type Stored = Result<T, E>;

    fn stored<'a>(&self, result: &'a Result<T, E>) -> Option<&'a Result<T, E>> {
        (!self.only_errors || result.is_err()).then_some(result)
    }

    fn restore(&self, stored: Result<T, E>) -> Result<T, E> {
        stored
    }

    fn is_error(&self, result: &Result<T, E>) -> bool {
        result.is_err()
    }
}

impl<T, E> Shape<Result<T, E>> {
    /// The shape caching errors too (`condition = with_errors`; `only_errors` to cache
    /// nothing else). Exists only for `Result` outputs, so the attribute on another return
    /// type is a compile error.
    ///
    /// ```
    /// use cashews::__private::Shape;
    /// use cashews::strategy::Outcome;
    /// let shape = Shape::<Result<u8, String>>::new().with_errors(false);
    /// assert!(shape.stored(&Err("down".to_owned())).is_some());
    /// ```
    #[must_use]
    pub const fn with_errors(&self, only_errors: bool) -> WithErrors<T, E> {
        WithErrors::new(only_errors)
    }
}

/// Any shape with a store condition: results for which `condition` is false are not stored
/// (`condition = my_fn` on the attributes, with `fn my_fn(result: &R) -> bool`).
///
/// ```
/// use cashews::strategy::{Outcome, Plain, When};
/// let shape = When(Plain::<u32>::new(), |n: &u32| *n > 10);
/// assert_eq!(shape.stored(&5), None);
/// assert_eq!(shape.stored(&50), Some(&50));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct When<S, P>(pub S, pub P);

impl<R, S, P> Outcome<R> for When<S, P>
where
    S: Outcome<R>,
    P: Fn(&R) -> bool,
{
    type Stored = S::Stored;

    const SHARED: bool = S::SHARED;

    fn stored<'a>(&self, result: &'a R) -> Option<&'a Self::Stored> {
        if (self.1)(result) {
            self.0.stored(result)
        } else {
            None
        }
    }

    fn restore(&self, stored: Self::Stored) -> R {
        self.0.restore(stored)
    }

    fn is_none(&self, result: &R) -> bool {
        self.0.is_none(result)
    }

    fn is_error(&self, result: &R) -> bool {
        self.0.is_error(result)
    }

    fn restore_shared(&self, stored: &Self::Stored) -> Option<R> {
        self.0.restore_shared(stored)
    }

    fn store_ttl(&self, stored: &Self::Stored, ttl: Ttl) -> Option<Ttl> {
        self.0.store_ttl(stored, ttl)
    }

    fn stamp_after(
        &self,
        stored: &Self::Stored,
        after: Option<std::time::Duration>,
    ) -> Option<std::time::Duration> {
        self.0.stamp_after(stored, after)
    }
}

/// Any shape whose values are stored for a TTL computed from the value itself (`ttl = |v| ...`
/// on the attributes; Python cashews' `ttl(result)`): `ttl_of` gets what is stored (the `Ok`
/// value of a `Result`, the whole `Option`, …) and returns any TTL form. A TTL that does not
/// parse is logged and the value is not stored.
///
/// ```
/// use std::time::Duration;
/// use cashews::Ttl;
/// use cashews::strategy::{Outcome, Plain, TtlBy};
/// let shape = TtlBy(Plain::<u32>::new(), |n: &u32| if *n > 10 { "1h" } else { "1m" });
/// assert_eq!(shape.store_ttl(&50, Ttl::NONE), Some(Ttl::new(Duration::from_secs(3600))));
/// assert_eq!(shape.store_ttl(&5, Ttl::NONE), Some(Ttl::new(Duration::from_secs(60))));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TtlBy<S, F>(pub S, pub F);

/// A TTL computed from a stored value (what [`TtlBy`] holds): any `Fn(&V) -> impl IntoTtl`.
///
/// ```
/// use cashews::strategy::TtlOf;
/// fn ttl_of_score(score: &u32) -> u64 { u64::from(*score) }
/// let ttl = TtlOf::ttl_of(&ttl_of_score, &60).unwrap();
/// assert_eq!(ttl.duration(), Some(std::time::Duration::from_secs(60)));
/// ```
pub trait TtlOf<V: ?Sized> {
    /// The TTL for `value`.
    ///
    /// # Errors
    ///
    /// The computed TTL is not a valid TTL (a bad string, a negative number).
    fn ttl_of(&self, value: &V) -> crate::Result<Ttl>;
}

impl<V: ?Sized, F, T> TtlOf<V> for F
where
    F: Fn(&V) -> T,
    T: IntoTtl,
{
    fn ttl_of(&self, value: &V) -> crate::Result<Ttl> {
        self(value).into_ttl()
    }
}

impl<R, S, F> Outcome<R> for TtlBy<S, F>
where
    S: Outcome<R>,
    F: TtlOf<S::Stored>,
{
    type Stored = S::Stored;

    const SHARED: bool = S::SHARED;

    fn stored<'a>(&self, result: &'a R) -> Option<&'a Self::Stored> {
        self.0.stored(result)
    }

    fn restore(&self, stored: Self::Stored) -> R {
        self.0.restore(stored)
    }

    fn is_none(&self, result: &R) -> bool {
        self.0.is_none(result)
    }

    fn is_error(&self, result: &R) -> bool {
        self.0.is_error(result)
    }

    fn restore_shared(&self, stored: &Self::Stored) -> Option<R> {
        self.0.restore_shared(stored)
    }

    fn store_ttl(&self, stored: &Self::Stored, _ttl: Ttl) -> Option<Ttl> {
        match self.1.ttl_of(stored) {
            Ok(ttl) => Some(ttl),
            Err(error) => {
                tracing::error!(%error, "invalid TTL computed from a result; the result is not stored");
                None
            }
        }
    }

    fn stamp_after(
        &self,
        stored: &Self::Stored,
        after: Option<std::time::Duration>,
    ) -> Option<std::time::Duration> {
        self.0.stamp_after(stored, after)
    }
}

/// Wraps `shape` so values are stored for `ttl_of(value)`; the closure's argument type is
/// inferred from the shape (what [`TtlBy`]'s attribute form expands to).
///
/// ```
/// use cashews::strategy::{Fallible, Outcome, ttl_by};
/// let shape = ttl_by::<Result<u64, String>, _, _, _>(Fallible::new(), |n| *n * 60);
/// assert_eq!(shape.store_ttl(&2, cashews::Ttl::NONE).and_then(|t| t.duration()).map(|d| d.as_secs()), Some(120));
/// ```
pub fn ttl_by<R, S, F, T>(shape: S, ttl_of: F) -> TtlBy<S, F>
where
    S: Outcome<R>,
    F: Fn(&S::Stored) -> T,
    T: IntoTtl,
{
    TtlBy(shape, ttl_of)
}

/// Picks the shape of a result type at compile time, for the attribute macros: `Result` and
/// `Option` get theirs, every other type is [`Plain`]. (Method resolution through auto-ref:
/// the impls for `&&Shape<Result<..>>` and `&&Shape<Option<..>>` win over the one for
/// `&Shape<R>` when the receiver is `&&&Shape<R>`: the first probe step looks for receivers of
/// type `&&&Shape<R>`, which only the specific impls offer.)
///
/// ```
/// use cashews::__private::{Shape, ShapeFallible, ShapeOptional, ShapePlain};
/// use cashews::strategy::Outcome;
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
