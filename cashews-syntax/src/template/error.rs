//! Key template errors: a byte span into the template string and a kind.

use std::fmt;
use std::ops::Range;

use super::filter::builtin_filter;
use super::{Field, Root};

/// Why a key template was rejected, with the byte position of the problem in the template
/// string.
///
/// ```
/// let err = cashews_syntax::parse_template("user:{id").unwrap_err();
/// assert_eq!(err.position(), 5);
/// assert_eq!(
///     err.to_string(),
///     "key template error at byte 5: unclosed `{` — close the field with `}` or write `{{` for a literal brace",
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    span: Range<usize>,
    kind: TemplateErrorKind,
}

/// The kinds of key template errors. The syntax kinds come from
/// [`parse_template`](crate::parse_template); [`UnknownFilter`](Self::UnknownFilter),
/// [`FilterArity`](Self::FilterArity), [`FieldArgument`](Self::FieldArgument) and
/// [`UnknownHash`](Self::UnknownHash) from [`Template::check_filters`](crate::Template::check_filters);
/// [`UnknownPlaceholder`](Self::UnknownPlaceholder) from
/// [`Template::check_roots`](crate::Template::check_roots) and [`unknown_placeholder`].
///
/// ```
/// use cashews_syntax::{parse_template, TemplateErrorKind};
/// assert_eq!(parse_template("{}").unwrap_err().kind(), &TemplateErrorKind::EmptyField);
/// assert_eq!(parse_template("{0}").unwrap_err().kind(), &TemplateErrorKind::PositionalField);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateErrorKind {
    /// A `{` whose field never closes (`"user:{id"`). Position: that `{`.
    UnclosedField,
    /// A `}` outside any field that is not doubled (`"a}b"`). Position: that `}`.
    UnmatchedClose,
    /// A field without a name: `{}`, `{:lower}`, `{.x}`. Position: its `{`.
    EmptyField,
    /// A positional field such as `{0}`: templates name arguments. Position: the digits.
    PositionalField,
    /// A character that cannot start a field name (`{-x}`, `{ a}`). Position: that character.
    BadName {
        /// The character found.
        found: char,
    },
    /// A character that does not fit the field path (`{a-b}`, `{a.}`, `{a[]}`, `{a.01}`).
    /// Position: that character.
    BadPath {
        /// The character found.
        found: char,
    },
    /// An index that does not fit: `[n]` must fit in `u64`, a tuple index `.n` in `u32`.
    /// Position: the digits.
    IndexTooLarge,
    /// A Python format spec or conversion: `{a:>5}`, `{a!r}`, or `{a:}` (no filter name).
    /// Position: the first character of the spec (`>` or `!`).
    FormatSpec {
        /// The spec text up to the closing `}` (empty for `{a:}`).
        spec: String,
    },
    /// A character after a filter that is not `:`, `(` or `}` (`{a:lower-x}`). Position: that
    /// character.
    BadFilter {
        /// The filter before it.
        filter: String,
        /// The character found.
        found: char,
    },
    /// A character that does not belong in filter arguments: a brace or parenthesis inside
    /// text (`{a:f(x(y))}`, `{a:f(x})`) or text after a field argument. Position: that
    /// character.
    BadFilterArg {
        /// The filter whose arguments these are.
        filter: String,
        /// The character found.
        found: char,
    },
    /// An empty filter argument (`{a:f(x,)}`, `{a:f(,x)}`). Position: the `,` or `)` after it.
    EmptyArgument {
        /// The filter whose argument is empty.
        filter: String,
    },
    /// A field argument inside a field argument (`{a:f({b:g({c})})}`): only one level of
    /// nesting is supported. Position: the inner `{`.
    NestedTooDeep,
    /// A filter name that is neither built in nor custom. Position: the filter.
    UnknownFilter {
        /// The name written.
        name: String,
        /// The built-in names, then the custom names passed to the check.
        known: Vec<String>,
    },
    /// A built-in filter with the wrong number of arguments. Position: the filter.
    FilterArity {
        /// The filter.
        filter: String,
        /// The fewest arguments it takes.
        min: usize,
        /// The most arguments it takes.
        max: usize,
        /// How many were written.
        found: usize,
    },
    /// A field argument where a built-in filter needs literal text (`{a:jwt({claim})}`).
    /// Position: the filter.
    FieldArgument {
        /// The filter.
        filter: String,
    },
    /// `hash` with an algorithm it does not know (`{a:hash(sha512)}`). Position: the filter.
    UnknownHash {
        /// The algorithm written.
        found: String,
        /// The accepted algorithms.
        known: Vec<String>,
    },
    /// A field whose root is not one of the function's arguments. Position: the root name.
    UnknownPlaceholder {
        /// The root written (`self` for the receiver).
        name: String,
        /// The function's argument names.
        known: Vec<String>,
    },
}

impl TemplateError {
    pub(super) fn new(span: Range<usize>, kind: TemplateErrorKind) -> Self {
        Self { span, kind }
    }

    /// The byte offset in the template string where the problem starts.
    ///
    /// ```
    /// assert_eq!(cashews_syntax::parse_template("ab}c").unwrap_err().position(), 2);
    /// ```
    #[must_use]
    pub fn position(&self) -> usize {
        self.span.start
    }

    /// The byte range of the bad part (at least one byte, except at the end of the string),
    /// for pointing at it.
    ///
    /// ```
    /// let template = "k:{a:lower:lowr}";
    /// let t = cashews_syntax::parse_template(template).unwrap();
    /// let err = t.check_filters(&[]).unwrap_err();
    /// assert_eq!(&template[err.span()], "lowr");
    /// ```
    #[must_use]
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// What went wrong.
    ///
    /// ```
    /// use cashews_syntax::{parse_template, TemplateErrorKind};
    /// let err = parse_template("{a!r}").unwrap_err();
    /// assert_eq!(err.kind(), &TemplateErrorKind::FormatSpec { spec: "!r".to_owned() });
    /// ```
    #[must_use]
    pub fn kind(&self) -> &TemplateErrorKind {
        &self.kind
    }
}

/// The error for a field whose root is not among `known`, the function's argument names:
/// "unknown placeholder `{usr}` — the function's arguments are `user`, `page`; `@` reads the
/// key context". Its span covers the root name (`usr`, `self`) after the field's `{`.
///
/// [`Template::check_roots`](crate::Template::check_roots) uses it; a macro with its own
/// rules can call it directly.
///
/// ```
/// use cashews_syntax::{parse_template, unknown_placeholder};
/// let template = "u:{usr.name}";
/// let t = parse_template(template).unwrap();
/// let err = unknown_placeholder(t.fields().next().unwrap(), &["user", "page"]);
/// assert_eq!(&template[err.span()], "usr");
/// assert_eq!(
///     err.to_string(),
///     "key template error at byte 3: unknown placeholder `{usr}` — the function's arguments \
///      are `user`, `page`; `@` reads the key context",
/// );
/// ```
#[must_use]
pub fn unknown_placeholder(field: &Field, known: &[&str]) -> TemplateError {
    let name = match &field.root {
        Root::Arg(name) => name.clone(),
        Root::Context => "@".to_owned(),
        Root::SelfValue => "self".to_owned(),
    };
    let start = field.span.start.saturating_add(1);
    TemplateError::new(
        start..start.saturating_add(name.len()),
        TemplateErrorKind::UnknownPlaceholder {
            name,
            known: known.iter().map(|&s| s.to_owned()).collect(),
        },
    )
}

struct List<'a>(&'a [String]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{item}`")?;
        }
        Ok(())
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl fmt::Display for TemplateErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnclosedField => f.write_str(
                "unclosed `{` — close the field with `}` or write `{{` for a literal brace",
            ),
            Self::UnmatchedClose => f.write_str(
                "unmatched `}` — write `}}` for a literal brace, or open a field with `{`",
            ),
            Self::EmptyField => f.write_str(
                "field without a name — templates name the function's arguments, not positions: \
                 write `{user_id}`, or `{{}}` for literal braces",
            ),
            Self::PositionalField => f.write_str(
                "positional field — templates name the function's arguments, not positions: \
                 write `{user_id}` instead of `{0}`",
            ),
            Self::BadName { found } => write!(
                f,
                "unexpected `{}` where a field name belongs — start the field with an argument \
                 name (letters, digits and `_`, not starting with a digit), `@` for the key \
                 context or `self`",
                found.escape_debug()
            ),
            Self::BadPath { found } => write!(
                f,
                "unexpected `{}` in the field path — write `.name`, `.0` (tuple index, no leading \
                 zero), `[0]` or `[key]` (key: letters, digits, `-`, `_`), then `:filter` or `}}`",
                found.escape_debug()
            ),
            Self::IndexTooLarge => f.write_str(
                "index too large — an index `[n]` must fit in 64 bits and a tuple index `.n` in \
                 32 bits",
            ),
            Self::FormatSpec { spec } if spec.is_empty() => f.write_str(
                "missing filter name after `:` — write a filter such as `lower` or \
                 `hash(sha256)`, or remove the `:`",
            ),
            Self::FormatSpec { spec } => write!(
                f,
                "format spec `{spec}` is not supported — after `:` write a filter name such as \
                 `lower` or `hash(sha256)`; Python format specs and `!r`/`!s` conversions do not \
                 exist here"
            ),
            Self::BadFilter { filter, found } => write!(
                f,
                "unexpected `{}` after filter `{filter}` — continue with `:next_filter`, \
                 `(arguments)` or close the field with `}}`",
                found.escape_debug()
            ),
            Self::BadFilterArg { filter, found } => write!(
                f,
                "unexpected `{}` in the arguments of `{filter}` — an argument is text without \
                 braces, parentheses or commas, or a field such as `{{alg}}`; separate arguments \
                 with `,` and close them with `)`",
                found.escape_debug()
            ),
            Self::EmptyArgument { filter } => write!(
                f,
                "empty argument to `{filter}` — remove the extra `,` or write a value"
            ),
            Self::NestedTooDeep => f.write_str(
                "a field inside a field argument — only one level of nesting is supported, as in \
                 `{x:hash({alg})}`; pass the inner value as its own argument",
            ),
            Self::UnknownFilter { name, known } => write!(
                f,
                "unknown filter `{name}` — the known filters are {}; fix the name or register a \
                 custom filter",
                List(known)
            ),
            Self::FilterArity {
                filter,
                min,
                max,
                found,
            } => {
                write!(f, "filter `{filter}` takes ")?;
                if max == &0 {
                    f.write_str("no arguments")?;
                } else if min == max {
                    write!(f, "exactly {min} argument{}", plural(*min))?;
                } else if min == &0 {
                    write!(f, "at most {max} argument{}", plural(*max))?;
                } else {
                    write!(f, "{min} to {max} arguments")?;
                }
                write!(f, ", found {found}")?;
                match builtin_filter(filter) {
                    Some(spec) => write!(f, " — write {}", spec.usage),
                    None => Ok(()),
                }
            }
            Self::FieldArgument { filter } => {
                write!(f, "filter `{filter}` takes literal text, not a field")?;
                match builtin_filter(filter) {
                    Some(spec) => write!(f, " — write {}", spec.usage),
                    None => Ok(()),
                }
            }
            Self::UnknownHash { found, known } => write!(
                f,
                "unknown hash algorithm `{found}` — use one of {}, or `hash` alone for md5",
                List(known)
            ),
            Self::UnknownPlaceholder { name, known } => {
                write!(f, "unknown placeholder `{{{name}}}` — ")?;
                if known.is_empty() {
                    f.write_str("the function has no arguments")?;
                } else {
                    write!(f, "the function's arguments are {}", List(known))?;
                }
                f.write_str("; `@` reads the key context")
            }
        }
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key template error at byte {}: {}",
            self.span.start, self.kind
        )
    }
}

impl std::error::Error for TemplateError {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::parse_template;

    fn message(kind: TemplateErrorKind) -> String {
        TemplateError::new(7..8, kind).to_string()
    }

    #[test]
    fn every_message_names_the_position_and_a_fix() {
        let kinds = [
            TemplateErrorKind::UnclosedField,
            TemplateErrorKind::UnmatchedClose,
            TemplateErrorKind::EmptyField,
            TemplateErrorKind::PositionalField,
            TemplateErrorKind::BadName { found: '-' },
            TemplateErrorKind::BadPath { found: '-' },
            TemplateErrorKind::IndexTooLarge,
            TemplateErrorKind::FormatSpec {
                spec: ">5".to_owned(),
            },
            TemplateErrorKind::FormatSpec {
                spec: String::new(),
            },
            TemplateErrorKind::BadFilter {
                filter: "lower".to_owned(),
                found: '-',
            },
            TemplateErrorKind::BadFilterArg {
                filter: "f".to_owned(),
                found: '(',
            },
            TemplateErrorKind::EmptyArgument {
                filter: "f".to_owned(),
            },
            TemplateErrorKind::NestedTooDeep,
            TemplateErrorKind::UnknownFilter {
                name: "lowr".to_owned(),
                known: vec!["lower".to_owned()],
            },
            TemplateErrorKind::FilterArity {
                filter: "jwt".to_owned(),
                min: 1,
                max: 1,
                found: 0,
            },
            TemplateErrorKind::FieldArgument {
                filter: "get".to_owned(),
            },
            TemplateErrorKind::UnknownHash {
                found: "sha512".to_owned(),
                known: vec!["md5".to_owned()],
            },
            TemplateErrorKind::UnknownPlaceholder {
                name: "usr".to_owned(),
                known: vec![],
            },
        ];
        for kind in kinds {
            let text = message(kind.clone());
            assert!(text.starts_with("key template error at byte 7: "), "{text}");
            assert!(text.contains(" — "), "no fix in {kind:?}: {text}");
        }
    }

    #[test]
    fn messages_quote_the_details() {
        assert_eq!(
            message(TemplateErrorKind::UnknownHash {
                found: "sha512".to_owned(),
                known: vec!["md5".to_owned(), "sha1".to_owned(), "sha256".to_owned()],
            }),
            "key template error at byte 7: unknown hash algorithm `sha512` — use one of `md5`, \
             `sha1`, `sha256`, or `hash` alone for md5"
        );
        assert_eq!(
            message(TemplateErrorKind::FilterArity {
                filter: "jwt".to_owned(),
                min: 1,
                max: 1,
                found: 2,
            }),
            "key template error at byte 7: filter `jwt` takes exactly 1 argument, found 2 — \
             write `jwt(claim)`"
        );
        assert!(
            message(TemplateErrorKind::FilterArity {
                filter: "lower".to_owned(),
                min: 0,
                max: 0,
                found: 1,
            })
            .contains("`lower` takes no arguments, found 1 — write `lower`")
        );
        assert!(
            message(TemplateErrorKind::FilterArity {
                filter: "hash".to_owned(),
                min: 0,
                max: 1,
                found: 2,
            })
            .contains("takes at most 1 argument, found 2 — write `hash` (md5)")
        );
        assert!(
            message(TemplateErrorKind::UnknownFilter {
                name: "lowr".to_owned(),
                known: vec!["lower".to_owned(), "prefix".to_owned()],
            })
            .contains("unknown filter `lowr` — the known filters are `lower`, `prefix`;")
        );
        assert!(
            message(TemplateErrorKind::UnknownPlaceholder {
                name: "usr".to_owned(),
                known: vec![],
            })
            .contains("`{usr}` — the function has no arguments; `@` reads the key context")
        );
        assert!(message(TemplateErrorKind::BadName { found: '\n' }).contains("`\\n`"));
        assert!(
            message(TemplateErrorKind::FormatSpec {
                spec: String::new()
            })
            .contains("missing filter name")
        );
    }

    #[test]
    fn unknown_placeholder_points_at_the_root() {
        let template = "ab{self.x}";
        let t = parse_template(template).unwrap();
        let err = unknown_placeholder(t.fields().next().unwrap(), &["a", "b"]);
        assert_eq!(template.get(err.span()), Some("self"));
        assert!(err.to_string().contains("`{self}`"));
        let t = parse_template("{@}").unwrap();
        let err = unknown_placeholder(t.fields().next().unwrap(), &[]);
        assert_eq!(err.span(), 1..2);
    }

    #[test]
    fn is_a_std_error() {
        let err: Box<dyn std::error::Error> = Box::new(parse_template("{").unwrap_err());
        assert!(err.to_string().contains("unclosed"));
    }
}
