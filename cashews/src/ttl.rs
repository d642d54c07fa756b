//! [`Ttl`]: how long a value lives, and [`IntoTtl`]: every form a TTL can be given in.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};

/// A time to live: a duration, or no expiry.
///
/// Parsed once, at the boundary, from any [`IntoTtl`] form: `&str` (`"1h30m"`, `"500ms"`, `"80"`),
/// [`Duration`], whole seconds as an integer (`0` means no expiry), or `Option` of those.
///
/// ```
/// use std::time::Duration;
/// use cashews::Ttl;
/// assert_eq!(Ttl::parse("1d2h3m50s")?.duration(), Some(Duration::from_secs(93_830)));
/// assert_eq!(Ttl::NONE.duration(), None);
/// assert!(Ttl::parse("1m10").is_err());
/// # Ok::<(), cashews::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ttl(Option<Duration>);

impl Ttl {
    /// No expiry.
    pub const NONE: Self = Self(None);

    /// A TTL of this duration; a zero duration means no expiry.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(cashews::Ttl::new(Duration::ZERO), cashews::Ttl::NONE);
    /// ```
    #[must_use]
    pub const fn new(duration: Duration) -> Self {
        if duration.is_zero() {
            Self(None)
        } else {
            Self(Some(duration))
        }
    }

    /// A TTL of whole seconds; `0` means no expiry.
    ///
    /// ```
    /// assert_eq!(cashews::Ttl::secs(60).duration().unwrap().as_secs(), 60);
    /// ```
    #[must_use]
    pub const fn secs(secs: u64) -> Self {
        Self::new(Duration::from_secs(secs))
    }

    /// Parses a TTL string (see [`cashews_syntax::parse_ttl`] for the grammar).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTtl`] quoting the string, the position of the problem and what is accepted.
    ///
    /// ```
    /// let err = cashews::Ttl::parse("5x").unwrap_err();
    /// assert!(err.to_string().contains("`5x`"));
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        Ok(Self::new(cashews_syntax::parse_ttl(text)?))
    }

    /// The duration, or `None` for no expiry.
    ///
    /// ```
    /// assert!(cashews::Ttl::secs(0).duration().is_none());
    /// ```
    #[must_use]
    pub const fn duration(self) -> Option<Duration> {
        self.0
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("no expiry"),
            Some(d) => write!(f, "{d:?}"),
        }
    }
}

impl From<Duration> for Ttl {
    fn from(d: Duration) -> Self {
        Self::new(d)
    }
}

/// Every form a TTL argument can take: `&str`, `String`, [`Duration`], [`Ttl`], whole seconds
/// (`u64`, `u32`, `i64`, `i32`; `0` means no expiry, negative is an error), and `Option` of any of
/// these (`None` means no expiry).
///
/// ```
/// use std::time::Duration;
/// use cashews::IntoTtl;
/// assert_eq!("2h".into_ttl()?.duration(), Some(Duration::from_secs(7_200)));
/// assert_eq!(10.into_ttl()?.duration(), Some(Duration::from_secs(10)));
/// assert_eq!(None::<Duration>.into_ttl()?.duration(), None);
/// assert!((-1).into_ttl().is_err());
/// # Ok::<(), cashews::Error>(())
/// ```
pub trait IntoTtl {
    /// Converts into a [`Ttl`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTtl`] for a bad string, [`Error::InvalidOption`] for a negative number.
    fn into_ttl(self) -> Result<Ttl>;
}

impl IntoTtl for Ttl {
    fn into_ttl(self) -> Result<Ttl> {
        Ok(self)
    }
}

impl IntoTtl for Duration {
    fn into_ttl(self) -> Result<Ttl> {
        Ok(Ttl::new(self))
    }
}

impl IntoTtl for &str {
    fn into_ttl(self) -> Result<Ttl> {
        Ttl::parse(self)
    }
}

impl IntoTtl for &String {
    fn into_ttl(self) -> Result<Ttl> {
        Ttl::parse(self)
    }
}

impl IntoTtl for String {
    fn into_ttl(self) -> Result<Ttl> {
        Ttl::parse(&self)
    }
}

impl IntoTtl for u64 {
    fn into_ttl(self) -> Result<Ttl> {
        Ok(Ttl::secs(self))
    }
}

impl IntoTtl for u32 {
    fn into_ttl(self) -> Result<Ttl> {
        Ok(Ttl::secs(u64::from(self)))
    }
}

impl IntoTtl for i64 {
    fn into_ttl(self) -> Result<Ttl> {
        u64::try_from(self)
            .map(Ttl::secs)
            .map_err(|_| negative_ttl(self))
    }
}

impl IntoTtl for i32 {
    fn into_ttl(self) -> Result<Ttl> {
        i64::from(self).into_ttl()
    }
}

impl<T: IntoTtl> IntoTtl for Option<T> {
    fn into_ttl(self) -> Result<Ttl> {
        match self {
            None => Ok(Ttl::NONE),
            Some(t) => t.into_ttl(),
        }
    }
}

fn negative_ttl(secs: i64) -> Error {
    Error::InvalidOption {
        option: "ttl".to_owned(),
        value: secs.to_string(),
        expected: "a non-negative number of seconds (0 means no expiry)".to_owned(),
    }
}

/// A strategy's TTL from any [`IntoTtl`] form: an invalid one is logged (with the key) and
/// gives `None`, for which the strategy runs its origin without the cache (a strategy never
/// fails a call over its cache).
pub(crate) fn strategy_ttl(ttl: impl IntoTtl, key: &str) -> Option<Ttl> {
    match ttl.into_ttl() {
        Ok(ttl) => Some(ttl),
        Err(error) => {
            tracing::error!(key = %crate::error::shorten(key), %error, "invalid TTL; the call runs without the cache");
            None
        }
    }
}
