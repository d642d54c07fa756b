//! The one check of a strategy's options: a `const fn` per options type finds the first
//! value it cannot use, so the attribute macros turn it into a compile error (their options
//! are constants) and the functions into [`Error::InvalidOption`] (options built, or
//! changed through their public fields, at run time). The builders themselves never fail.

use std::fmt;
use std::time::Duration;

use crate::error::Error;

/// An option value a strategy cannot use: which option, what it holds, what it accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Invalid {
    /// `strategy.option`, e.g. `rate_limit.period`.
    pub(crate) option: &'static str,
    /// The value it holds.
    pub(crate) value: Value,
    /// What it accepts.
    pub(crate) expected: &'static str,
    /// The whole sentence, for the compile error of a constant.
    pub(crate) message: &'static str,
}

/// An option's value, kept as given so the error can show it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    Duration(Duration),
    Integer(u64),
    Float(f64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duration(d) => write!(f, "{d:?}"),
            Self::Integer(n) => write!(f, "{n}"),
            Self::Float(x) => write!(f, "{x}"),
        }
    }
}

impl Invalid {
    /// The first of `checks` that failed.
    pub(crate) const fn first<const N: usize>(checks: [Option<Self>; N]) -> Option<Self> {
        let mut i = 0;
        while i < N {
            if checks[i].is_some() {
                return checks[i];
            }
            i += 1;
        }
        None
    }

    /// `Some` when `bad`: the problem of one option.
    pub(crate) const fn when(
        bad: bool,
        option: &'static str,
        value: Value,
        expected: &'static str,
        message: &'static str,
    ) -> Option<Self> {
        if bad {
            Some(Self {
                option,
                value,
                expected,
                message,
            })
        } else {
            None
        }
    }

    /// The error a strategy function returns.
    pub(crate) fn into_error(self) -> Error {
        Error::InvalidOption {
            option: self.option.to_owned(),
            value: self.value.to_string(),
            expected: self.expected.to_owned(),
        }
    }
}

/// `Ok(())`, or the error naming the first unusable option.
pub(crate) fn check(invalid: Option<Invalid>) -> crate::Result<()> {
    match invalid {
        None => Ok(()),
        Some(invalid) => Err(invalid.into_error()),
    }
}

/// The message a compile error shows, for the attribute macros' constants.
pub(crate) const fn message(invalid: Option<Invalid>) -> Option<&'static str> {
    match invalid {
        Some(invalid) => Some(invalid.message),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failed_check_is_reported_with_its_value() {
        const A: Option<Invalid> = Invalid::when(false, "a", Value::Integer(1), "x", "a is bad");
        const B: Option<Invalid> = Invalid::when(
            true,
            "s.period",
            Value::Duration(Duration::ZERO),
            "longer than zero",
            "s: the period must be longer than zero",
        );
        const C: Option<Invalid> = Invalid::when(true, "c", Value::Float(0.5), "y", "c is bad");
        assert_eq!(Invalid::first([A, B, C]), B);
        assert_eq!(Invalid::first([A]), None);
        assert_eq!(message(B), Some("s: the period must be longer than zero"));
        let err = check(B).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value `0ns` for option `s.period`: expected longer than zero"
        );
        assert!(err.is_config());
        assert_eq!(Value::Float(0.5).to_string(), "0.5");
        assert!(check(A).is_ok());
    }
}
