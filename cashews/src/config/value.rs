//! Typed readers for option values, shared by every scheme's schema.

use std::time::Duration;

use crate::error::{Error, Result, shorten};

/// What the boolean options accept, for error messages.
pub(crate) const BOOL_EXPECTED: &str = "true/false/1/0/yes/no/on/off";

/// The size suffixes accepted by size options, for error messages.
const SIZE_EXPECTED: &str = "a whole number of bytes with an optional suffix B, KB, MB, GB (powers of 1000) \
     or KiB, MiB, GiB (powers of 1024), such as `512KiB` or `64MiB`";

/// Options whose values are credentials: their values never appear in errors.
const SECRET_OPTIONS: &[&str] = &["secret", "password"];

/// One accepted option: its canonical name and the older names accepted for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OptionSpec {
    /// The canonical name (the field it sets).
    pub(crate) name: &'static str,
    /// Other spellings of the same option (Appendix B.1 of the spec).
    pub(crate) aliases: &'static [&'static str],
}

impl OptionSpec {
    /// Whether `name` (already lower-cased) spells this option.
    pub(crate) fn matches(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }

    /// `name` or `name (alias a, b)`, for the list of accepted options.
    pub(crate) fn describe(&self) -> String {
        if self.aliases.is_empty() {
            self.name.to_owned()
        } else {
            format!("{} (alias {})", self.name, self.aliases.join(", "))
        }
    }
}

/// One option read from a URL query, resolved to its canonical name.
#[derive(Debug, Clone)]
pub(crate) struct RawOption {
    /// The canonical name from the schema.
    pub(crate) canonical: &'static str,
    /// The name as written, lower-cased (used in error messages).
    pub(crate) name: String,
    /// The value, percent-decoded.
    pub(crate) value: String,
}

impl RawOption {
    /// An [`Error::InvalidOption`] for this option, with the value redacted for credentials and
    /// shortened if long.
    pub(crate) fn invalid(&self, expected: impl Into<String>) -> Error {
        Error::InvalidOption {
            option: self.name.clone(),
            value: self.display_value(),
            expected: expected.into(),
        }
    }

    /// Whether the value is a credential, never shown.
    pub(crate) fn is_secret(&self) -> bool {
        SECRET_OPTIONS.contains(&self.canonical)
    }

    /// The value as it may appear in an error message.
    pub(crate) fn display_value(&self) -> String {
        if self.is_secret() {
            "***".to_owned()
        } else {
            shorten(&self.value)
        }
    }

    /// Reads a boolean: true/false/1/0/yes/no/on/off in any case.
    pub(crate) fn bool(&self) -> Result<bool> {
        match self.value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(self.invalid(BOOL_EXPECTED)),
        }
    }

    /// Reads a positive whole number (no suffix); `what` names the unit ("entries", "bytes").
    pub(crate) fn positive(&self, what: &str) -> Result<usize> {
        self.value
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| self.invalid(format!("a positive whole number of {what}")))
    }

    /// Reads a size in bytes with an optional suffix; `positive` rejects zero.
    pub(crate) fn size(&self, positive: bool) -> Result<u64> {
        let expected = || {
            if positive {
                format!("a positive size: {SIZE_EXPECTED}")
            } else {
                format!("a size: {SIZE_EXPECTED}")
            }
        };
        parse_size(&self.value)
            .filter(|n| !positive || *n > 0)
            .ok_or_else(|| self.invalid(expected()))
    }

    /// Reads a size in bytes that must also fit in `usize`.
    pub(crate) fn size_usize(&self, positive: bool) -> Result<usize> {
        let n = self.size(positive)?;
        usize::try_from(n).map_err(|_| self.invalid("a size that fits in memory on this platform"))
    }

    /// Reads an interval: seconds as a whole or decimal number (`1`, `0.01`), or a TTL string
    /// (`500ms`, `1s`, `1m30s`). Zero is allowed.
    pub(crate) fn interval(&self) -> Result<Duration> {
        let expected = "seconds as a number (`1`, `0.01`) or a duration such as `500ms`, `1s` or `1m30s`; \
             `0` turns it off";
        let text = self.value.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            let secs: f64 = text.parse().map_err(|_| self.invalid(expected))?;
            let duration = Duration::try_from_secs_f64(secs).map_err(|_| self.invalid(expected))?;
            // A positive value so small it rounds to zero would silently turn the purge off.
            if secs > 0.0 && duration.is_zero() {
                return Err(self.invalid("an interval of at least 1 ns, or `0` to turn it off"));
            }
            return Ok(duration);
        }
        cashews_syntax::parse_ttl(text).map_err(|_| self.invalid(expected))
    }
}

/// Parses `512KiB`, `1MB`, `64 MiB`, `100B` or `4096` into bytes; `None` on any problem,
/// including overflow.
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits_end = text
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(digits_end);
    if digits.is_empty() {
        return None;
    }
    let number: u64 = digits.parse().ok()?;
    let multiplier: u64 = match suffix.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("100B"), Some(100));
        assert_eq!(parse_size("1KB"), Some(1_000));
        assert_eq!(parse_size("512KiB"), Some(512 * 1024));
        assert_eq!(parse_size("64 mib"), Some(64 << 20));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("MiB"), None);
        assert_eq!(parse_size("1.5MiB"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("1TB"), None);
        assert_eq!(parse_size("18446744073709551615GiB"), None);
    }
}
