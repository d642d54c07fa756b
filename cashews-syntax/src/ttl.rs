//! TTL strings: `<digits><unit>` repeated, units `ms`, `s`, `m`, `h`, `d` (any case; no weeks, as in Python: write `7d`), or digits
//! alone for seconds. Surrounding whitespace is ignored.

use std::fmt;
use std::time::Duration;

/// Why a TTL string was rejected, with the byte position of the problem.
///
/// ```
/// let err = cashews_syntax::parse_ttl("1m10").unwrap_err();
/// assert_eq!(err.position(), 2);
/// assert!(err.to_string().contains("`1m10`"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtlError {
    input: String,
    position: usize,
    kind: TtlErrorKind,
}

/// The kinds of TTL string errors.
///
/// ```
/// use cashews_syntax::{parse_ttl, TtlErrorKind};
/// assert_eq!(parse_ttl("").unwrap_err().kind(), TtlErrorKind::Empty);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TtlErrorKind {
    /// The string is empty or only whitespace.
    Empty,
    /// A unit letter with no digits before it (`"m"`, `"1hm"`).
    MissingNumber,
    /// Digits with no unit after a unit was used (`"1m10"`).
    MissingUnit,
    /// A character that is neither a digit nor a unit (`"1.5s"`, `"5x"`).
    UnexpectedChar(char),
    /// The total does not fit in a `Duration`.
    Overflow,
}

impl TtlError {
    fn new(input: &str, position: usize, kind: TtlErrorKind) -> Self {
        Self {
            input: input.to_owned(),
            position,
            kind,
        }
    }

    /// The byte offset in the input where the problem starts.
    ///
    /// ```
    /// assert_eq!(cashews_syntax::parse_ttl("5x").unwrap_err().position(), 1);
    /// ```
    #[must_use]
    pub fn position(&self) -> usize {
        self.position
    }

    /// What went wrong.
    ///
    /// ```
    /// use cashews_syntax::{parse_ttl, TtlErrorKind};
    /// assert_eq!(parse_ttl("5x").unwrap_err().kind(), TtlErrorKind::UnexpectedChar('x'));
    /// ```
    #[must_use]
    pub fn kind(&self) -> TtlErrorKind {
        self.kind
    }

    /// The input that was rejected.
    ///
    /// ```
    /// assert_eq!(cashews_syntax::parse_ttl("1w2").unwrap_err().input(), "1w2");
    /// ```
    #[must_use]
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for TtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid ttl `{}` at position {}: ",
            self.input, self.position
        )?;
        match self.kind {
            TtlErrorKind::Empty => f.write_str("empty string; write a duration such as \"10s\", \"1h30m\" or \"500ms\", or use no TTL"),
            TtlErrorKind::MissingNumber => f.write_str("a unit needs a number before it, as in \"5m\""),
            TtlErrorKind::MissingUnit => f.write_str("number without a unit; add one of ms, s, m, h, d (\"1m10s\", not \"1m10\")"),
            TtlErrorKind::UnexpectedChar(c) => write!(f, "unexpected `{c}`; accepted: whole numbers followed by ms, s, m, h or d (write 7d for a week)"),
            TtlErrorKind::Overflow => f.write_str("duration too large"),
        }
    }
}

impl std::error::Error for TtlError {}

/// Parses a TTL string such as `"10s"`, `"1h30m"`, `"1d2h3m50s"`, `"500ms"`, `"2H"` or `"80"`
/// (digits alone are seconds).
///
/// Strict, unlike Python cashews: `""`, `"1m10"` (trailing digits), `"1.5s"`, `"m"` and totals
/// that overflow are errors that give the position.
///
/// # Errors
///
/// A [`TtlError`] naming the input, the position and what is accepted.
///
/// ```
/// use std::time::Duration;
/// use cashews_syntax::parse_ttl;
/// assert_eq!(parse_ttl(" 2H "), Ok(Duration::from_secs(7200)));
/// assert_eq!(parse_ttl("500ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(parse_ttl("80"), Ok(Duration::from_secs(80)));
/// ```
pub fn parse_ttl(input: &str) -> Result<Duration, TtlError> {
    if let Some(ttl) = parse_short(input.as_bytes()) {
        return Ok(ttl);
    }
    let start = input.len() - input.trim_start().len();
    let text = input.trim();
    if text.is_empty() {
        return Err(TtlError::new(input, start, TtlErrorKind::Empty));
    }
    let bytes = text.as_bytes();
    if bytes.iter().all(u8::is_ascii_digit) {
        let secs = parse_number(text)
            .ok_or_else(|| TtlError::new(input, start, TtlErrorKind::Overflow))?;
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut i = 0;
    while i < bytes.len() {
        let num_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == bytes.len() {
            return Err(TtlError::new(
                input,
                start + num_start,
                TtlErrorKind::MissingUnit,
            ));
        }
        if i == num_start {
            let c = text[i..].chars().next().unwrap_or(' ');
            let kind = if is_unit_start(c) {
                TtlErrorKind::MissingNumber
            } else {
                TtlErrorKind::UnexpectedChar(c)
            };
            return Err(TtlError::new(input, start + i, kind));
        }
        let number = parse_number(&text[num_start..i])
            .ok_or_else(|| TtlError::new(input, start + num_start, TtlErrorKind::Overflow))?;
        let unit_pos = i;
        let c = text[i..].chars().next().unwrap_or(' ');
        // Seconds per unit, or `None` for milliseconds. The number is a `u64` with every unit,
        // as it is without one: `5000000000s` reads as `5000000000` does.
        let seconds_per_unit = match c.to_ascii_lowercase() {
            'm' if bytes
                .get(i + 1)
                .is_some_and(|b| b.eq_ignore_ascii_case(&b's')) =>
            {
                i += 2;
                None
            }
            's' => {
                i += 1;
                Some(1)
            }
            'm' => {
                i += 1;
                Some(60)
            }
            'h' => {
                i += 1;
                Some(3_600)
            }
            'd' => {
                i += 1;
                Some(86_400)
            }
            _ => {
                return Err(TtlError::new(
                    input,
                    start + unit_pos,
                    TtlErrorKind::UnexpectedChar(c),
                ));
            }
        };
        let part = match seconds_per_unit {
            None => Some(Duration::from_millis(number)),
            Some(per) => number.checked_mul(per).map(Duration::from_secs),
        }
        .ok_or_else(|| TtlError::new(input, start + num_start, TtlErrorKind::Overflow))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| TtlError::new(input, start + num_start, TtlErrorKind::Overflow))?;
    }
    Ok(total)
}

/// The common forms (`30s`, `10m`, `1h`, `7d`: up to nine digits and one lowercase unit)
/// without the general scan, which a write with a TTL string pays on every call. `None` for
/// anything else, which the general parser reads (with the same result for these forms).
#[inline]
fn parse_short(bytes: &[u8]) -> Option<Duration> {
    let (unit, digits) = bytes.split_last()?;
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let per: u64 = match unit {
        b's' => 1,
        b'm' => 60,
        b'h' => 3_600,
        b'd' => 86_400,
        _ => return None,
    };
    let number = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    // Nine digits times a day's seconds fit a u64.
    Some(Duration::from_secs(number * per))
}

fn is_unit_start(c: char) -> bool {
    // No `w`: "1w" is rejected, as cashews for Python rejects it (write "7d").
    matches!(c.to_ascii_lowercase(), 's' | 'm' | 'h' | 'd')
}

fn parse_number(digits: &str) -> Option<u64> {
    digits.parse::<u64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_short_path_agrees_with_the_general_parser() {
        for text in [
            "0s",
            "1s",
            "30s",
            "1m",
            "10m",
            "1h",
            "24h",
            "7d",
            "999999999d",
            "5ms",
            "1h30m",
            "1H",
            "1w",
            "s",
            "12",
            "1000000000d",
            " 1h",
            "1h ",
        ] {
            let short = parse_short(text.as_bytes());
            if let Some(short) = short {
                // Force the general scan: a leading space is trimmed, never short.
                let general = parse_ttl(&format!(" {text}")).ok();
                assert_eq!(Some(short), general, "{text}");
            }
        }
        assert_eq!(parse_short(b"1h"), Some(Duration::from_secs(3_600)));
        assert_eq!(parse_short(b"5ms"), None);
        assert_eq!(parse_short(b"1000000000d"), None);
    }

    fn secs(s: &str) -> u64 {
        parse_ttl(s).unwrap().as_secs()
    }

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(secs("10s"), 10);
        assert_eq!(secs("1m10s"), 70);
        assert_eq!(secs("10m1s"), 601);
        assert_eq!(secs("1d2h3m50s"), 93_830);
        assert_eq!(secs("2H"), 7_200);
        assert_eq!(secs("1m1m"), 120);
        assert_eq!(secs("1"), 1);
        assert_eq!(secs("80"), 80);
        assert!(parse_ttl("1w").is_err(), "weeks are not a unit");
        assert_eq!(parse_ttl("1s500ms").unwrap(), Duration::from_millis(1_500));
        assert_eq!(parse_ttl("500MS").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_ttl("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_with_position_and_kind() {
        let cases: &[(&str, usize, TtlErrorKind)] = &[
            ("", 0, TtlErrorKind::Empty),
            ("   ", 3, TtlErrorKind::Empty),
            ("1m10", 2, TtlErrorKind::MissingUnit),
            ("10s5", 3, TtlErrorKind::MissingUnit),
            ("m", 0, TtlErrorKind::MissingNumber),
            ("1hm", 2, TtlErrorKind::MissingNumber),
            ("1.5s", 1, TtlErrorKind::UnexpectedChar('.')),
            ("5x", 1, TtlErrorKind::UnexpectedChar('x')),
            ("-5s", 0, TtlErrorKind::UnexpectedChar('-')),
            (" 5 s", 2, TtlErrorKind::UnexpectedChar(' ')),
            ("5é", 1, TtlErrorKind::UnexpectedChar('é')),
            ("99999999999999999999999s", 0, TtlErrorKind::Overflow),
            ("99999999999999999999999", 0, TtlErrorKind::Overflow),
            ("999999999999999999d", 0, TtlErrorKind::Overflow),
            ("1s999999999999999999d", 2, TtlErrorKind::Overflow),
        ];
        for (input, position, kind) in cases {
            let err = parse_ttl(input).unwrap_err();
            assert_eq!(
                (err.position(), err.kind()),
                (*position, *kind),
                "input {input:?}"
            );
            assert!(err.to_string().contains(&format!("`{input}`")));
        }
    }

    #[test]
    fn never_panics_on_arbitrary_input() {
        // A small exhaustive sweep over short strings of the interesting characters.
        let alphabet = [
            '1', '0', 's', 'm', 'h', 'd', 'w', 'M', 'S', ' ', '.', '-', 'é',
        ];
        let mut inputs = vec![String::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for s in &inputs {
                for c in alphabet {
                    let mut t = s.clone();
                    t.push(c);
                    next.push(t);
                }
            }
            for s in &next {
                let _ = parse_ttl(s);
            }
            inputs = next;
        }
    }

    /// Found by fuzzing: a number with a unit was limited to `u32` while a bare number is a
    /// `u64` of seconds, so `5000000000` was accepted and `5000000000s` refused.
    #[test]
    fn a_unit_takes_the_same_numbers_as_bare_seconds() {
        for n in [4_294_967_296_u64, 5_000_000_000, 999_999_999_990] {
            assert_eq!(parse_ttl(&format!("{n}s")), parse_ttl(&n.to_string()));
            assert_eq!(
                parse_ttl(&format!("{n}ms")).ok(),
                Some(Duration::from_millis(n))
            );
            assert_eq!(
                parse_ttl(&format!("{}ms", n * 1000)),
                parse_ttl(&n.to_string())
            );
        }
    }
}
