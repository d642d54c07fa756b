//! What a handler returns, stored by its data: the caching attributes store an
//! `axum::Json<T>` as its `T` (which is `Serialize` and `Deserialize`) and wrap a hit in
//! `Json` again. `Result<Json<T>, E>` is stored as `Result<T, E>`, so errors follow the
//! attribute's `condition` as for any `Result`.

/// A return type stored as another: [`Stored`](Self::Stored) is what the cache holds.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be stored by the caching attributes",
    label = "the handler's return type",
    note = "a handler returning `axum::Json<T>` or `Result<axum::Json<T>, E>` is cached by its `T` \
            with the `axum` feature of cashews enabled; for other responses, cache an inner async \
            fn that returns the data and call it from the handler"
)]
pub trait CachedResponse: Sized {
    /// What the cache holds.
    type Stored;
    /// The value to store.
    fn into_stored(self) -> Self::Stored;
    /// The value again, from what was stored.
    fn from_stored(stored: Self::Stored) -> Self;
}

#[cfg(feature = "axum")]
impl<T> CachedResponse for axum::Json<T> {
    type Stored = T;

    #[inline]
    fn into_stored(self) -> T {
        self.0
    }

    #[inline]
    fn from_stored(stored: T) -> Self {
        Self(stored)
    }
}

impl<W: CachedResponse, E> CachedResponse for Result<W, E> {
    type Stored = Result<W::Stored, E>;

    #[inline]
    fn into_stored(self) -> Self::Stored {
        self.map(W::into_stored)
    }

    #[inline]
    fn from_stored(stored: Self::Stored) -> Self {
        stored.map(W::from_stored)
    }
}
