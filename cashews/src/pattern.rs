//! Glob patterns with Redis semantics (`*`, `?`, `[a-z]`, `[^a]`, `\\` escapes), so `scan`,
//! `get_match` and `delete_match` match the same keys on every backend (Python cashews used
//! regexes on memory and disk).
//!
//! Hand-written: crates such as `globset` follow shell/path rules (`/` is special, `**`), which
//! differ from Redis's `stringmatchlen`.

/// Whether `text` matches the Redis glob `pattern`: `*` any run of bytes, `?` one byte,
/// `[abc]`, `[a-z]`, `[^abc]` classes, and `\x` for a literal `x`.
///
/// ```
/// use cashews::pattern::matches;
/// assert!(matches("user:*", "user:42"));
/// assert!(matches("h[ae]llo", "hallo"));
/// assert!(!matches("a?b", "ab"));
/// ```
#[must_use]
pub fn matches(pattern: &str, text: &str) -> bool {
    glob(pattern.as_bytes(), text.as_bytes())
}

/// Whether the pattern has no glob metacharacter, so it names exactly one key.
///
/// ```
/// assert!(cashews::pattern::is_literal("user:1"));
/// assert!(!cashews::pattern::is_literal("user:*"));
/// ```
#[must_use]
pub fn is_literal(pattern: &str) -> bool {
    !pattern
        .bytes()
        .any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
}

/// Escapes glob metacharacters so that `text` matches only itself: use it on user input that
/// goes into a pattern, so it can never widen a `delete_match`.
///
/// ```
/// use cashews::pattern::{escape, matches};
/// let user_input = "*";
/// let pattern = format!("user:{}:*", escape(user_input));
/// assert!(matches(&pattern, "user:*:profile"));
/// assert!(!matches(&pattern, "user:42:profile"));
/// ```
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn glob(p: &[u8], t: &[u8]) -> bool {
    // Iterative matcher with single-star backtracking: linear in practice, no recursion depth
    // issues on hostile patterns.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    while pi < p.len() && p[pi] == b'*' {
                        pi += 1;
                    }
                    if pi == p.len() {
                        return true;
                    }
                    star = Some((pi, ti));
                    continue;
                }
                b'?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(p, pi, t[ti]) {
                        if matched {
                            pi = next;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == b'[' {
                        // An unterminated class matches a literal '['.
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                b'\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == t[ti] {
                        pi += 2;
                        ti += 1;
                        continue;
                    }
                }
                c => {
                    if c == t[ti] {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Matches `c` against the class starting at `p[start] == b'['`. Returns whether it matched and
/// the index after the closing `]`, or `None` if the class is not terminated.
fn class(p: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = p.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let lo = if p[i] == b'\\' && i + 1 < p.len() {
            i += 1;
            p[i]
        } else {
            p[i]
        };
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            let mut hi = p[i + 2];
            let mut skip = 3;
            if hi == b'\\' && i + 3 < p.len() {
                hi = p[i + 3];
                skip = 4;
            }
            let (a, b) = if lo <= hi { (lo, hi) } else { (hi, lo) };
            if (a..=b).contains(&c) {
                matched = true;
            }
            i += skip;
        } else {
            if lo == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_glob_semantics() {
        let cases: &[(&str, &str, bool)] = &[
            ("pref:*:test", "pref:test:test", true),
            ("pref:*:test", "pref:*:test", true),
            ("pref:*:test", "pref:-:test", true),
            ("pref:*:test", "ppref:test:test", false),
            ("pref:*:test", "pref:test:tests", false),
            ("*", "", true),
            ("*", "anything", true),
            ("a?b", "a?b", true),
            ("a?b", "acb", true),
            ("a?b", "ab", false),
            ("h[ae]llo", "hello", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[a-b]llo", "hcllo", false),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("user:*", "user:", true),
            ("*a*b*c*", "xxaxxbxxcxx", true),
            ("*a*b*c*", "xxaxxcxxbxx", false),
            ("[", "[", true),
            ("abc", "abc", true),
            ("abc", "abcd", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(matches(p, t), *want, "pattern {p:?} text {t:?}");
        }
    }

    #[test]
    fn escape_makes_literal() {
        for text in ["a*b", "x?[y]", "back\\slash", "plain"] {
            let pat = escape(text);
            assert!(matches(&pat, text));
            assert!(!matches(&pat, &format!("{text}z")));
        }
        assert!(is_literal("user:1"));
        assert!(!is_literal("user:*"));
    }

    #[test]
    fn hostile_pattern_is_fast_enough_to_finish() {
        let p = "*a*a*a*a*a*a*a*a*a*a*b";
        let t = "a".repeat(200);
        assert!(!matches(p, &t));
    }
}
