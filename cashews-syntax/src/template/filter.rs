//! The built-in filter table and the check of a template's filters against it.

use super::error::{TemplateError, TemplateErrorKind};
use super::{FilterArg, Template};

/// What a built-in filter accepts, for checking templates before they run.
///
/// ```
/// let hash = cashews_syntax::builtin_filter("hash").unwrap();
/// assert_eq!((hash.min_args, hash.max_args), (0, 1));
/// assert_eq!(hash.choices, ["md5", "sha1", "sha256"]);
/// assert!(!hash.text_args_only);
/// assert!(cashews_syntax::builtin_filter("get").unwrap().raw_value);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FilterSpec {
    /// The name written after `:`.
    pub name: &'static str,
    /// The fewest arguments.
    pub min_args: usize,
    /// The most arguments.
    pub max_args: usize,
    /// Arguments must be literal text; a field argument (`{x}`) is an error.
    pub text_args_only: bool,
    /// When not empty, a literal text argument must be one of these (a field argument is
    /// checked at run time). Only `hash` has choices; a violation is
    /// [`TemplateErrorKind::UnknownHash`].
    pub choices: &'static [&'static str],
    /// The filter receives the raw value rather than its rendered text (`get`).
    pub raw_value: bool,
    /// How to write it, for error messages.
    pub usage: &'static str,
}

const HASH_ALGORITHMS: &[&str] = &["md5", "sha1", "sha256"];

const fn no_args(name: &'static str, usage: &'static str) -> FilterSpec {
    FilterSpec {
        name,
        min_args: 0,
        max_args: 0,
        text_args_only: true,
        choices: &[],
        raw_value: false,
        usage,
    }
}

const BUILTINS: &[FilterSpec] = &[
    no_args("lower", "`lower`"),
    no_args("upper", "`upper`"),
    no_args("len", "`len`"),
    FilterSpec {
        name: "hash",
        min_args: 0,
        max_args: 1,
        text_args_only: false,
        choices: HASH_ALGORITHMS,
        raw_value: false,
        usage: "`hash` (md5), `hash(md5)`, `hash(sha1)`, `hash(sha256)` or `hash({field})`",
    },
    FilterSpec {
        name: "jwt",
        min_args: 1,
        max_args: 1,
        text_args_only: true,
        choices: &[],
        raw_value: false,
        usage: "`jwt(claim)`",
    },
    FilterSpec {
        name: "get",
        min_args: 1,
        max_args: 1,
        text_args_only: true,
        choices: &[],
        raw_value: true,
        usage: "`get(name)`",
    },
];

/// Every built-in filter, in the order error messages list them: `lower`, `upper`, `len`,
/// `hash`, `jwt`, `get`.
///
/// ```
/// let names: Vec<&str> = cashews_syntax::builtin_filters().iter().map(|f| f.name).collect();
/// assert_eq!(names, ["lower", "upper", "len", "hash", "jwt", "get"]);
/// ```
#[must_use]
pub fn builtin_filters() -> &'static [FilterSpec] {
    BUILTINS
}

/// The built-in filter called `name`, if there is one (names are case-sensitive).
///
/// | Filter | Arguments |
/// | --- | --- |
/// | `lower`, `upper`, `len` | none |
/// | `hash` | none (md5), or one of `md5`, `sha1`, `sha256`, or a field resolved at run time |
/// | `jwt(claim)` | exactly one text argument |
/// | `get(name)` | exactly one text argument; receives the raw value |
///
/// ```
/// use cashews_syntax::builtin_filter;
/// assert_eq!(builtin_filter("jwt").unwrap().min_args, 1);
/// assert!(builtin_filter("prefix").is_none());
/// assert!(builtin_filter("LOWER").is_none());
/// ```
#[must_use]
pub fn builtin_filter(name: &str) -> Option<FilterSpec> {
    BUILTINS.iter().find(|spec| spec.name == name).copied()
}

impl Template {
    /// Checks every filter, those of nested fields included, against the built-in table and
    /// the `custom` filter names.
    ///
    /// A name in `custom` is accepted with any arguments, even when it is also a built-in
    /// name (so a registry that overrides a built-in is honoured). A built-in must get the
    /// right number of arguments, literal text where it needs text, and for `hash` a known
    /// algorithm.
    ///
    /// # Errors
    ///
    /// The first problem in source order: [`TemplateErrorKind::UnknownFilter`] (listing the
    /// built-in and custom names), [`TemplateErrorKind::FilterArity`],
    /// [`TemplateErrorKind::FieldArgument`] or [`TemplateErrorKind::UnknownHash`], positioned
    /// on the filter.
    ///
    /// ```
    /// use cashews_syntax::{parse_template, TemplateErrorKind};
    /// let ok = parse_template("{x:lower}:{x:hash(sha256)}:{x:prefix(4)}").unwrap();
    /// assert!(ok.check_filters(&["prefix"]).is_ok());
    /// assert!(ok.check_filters(&[]).is_err());
    ///
    /// let err = parse_template("{a:hash(sha512)}").unwrap().check_filters(&[]).unwrap_err();
    /// assert_eq!(err.position(), 3);
    /// assert!(err.to_string().contains("use one of `md5`, `sha1`, `sha256`"));
    /// ```
    pub fn check_filters(&self, custom: &[&str]) -> Result<(), TemplateError> {
        for field in self.fields() {
            for filter in &field.filters {
                if custom.contains(&filter.name.as_str()) {
                    continue;
                }
                let error = |kind| Err(TemplateError::new(filter.span.clone(), kind));
                let Some(spec) = builtin_filter(&filter.name) else {
                    let mut known: Vec<String> =
                        BUILTINS.iter().map(|spec| spec.name.to_owned()).collect();
                    for name in custom {
                        if !known.iter().any(|k| k == name) {
                            known.push((*name).to_owned());
                        }
                    }
                    return error(TemplateErrorKind::UnknownFilter {
                        name: filter.name.clone(),
                        known,
                    });
                };
                let found = filter.args.len();
                if found < spec.min_args || found > spec.max_args {
                    return error(TemplateErrorKind::FilterArity {
                        filter: filter.name.clone(),
                        min: spec.min_args,
                        max: spec.max_args,
                        found,
                    });
                }
                for arg in &filter.args {
                    match arg {
                        FilterArg::Field(_) if spec.text_args_only => {
                            return error(TemplateErrorKind::FieldArgument {
                                filter: filter.name.clone(),
                            });
                        }
                        FilterArg::Text(text)
                            if !spec.choices.is_empty()
                                && !spec.choices.contains(&text.as_str()) =>
                        {
                            return error(TemplateErrorKind::UnknownHash {
                                found: text.clone(),
                                known: spec.choices.iter().map(|&c| c.to_owned()).collect(),
                            });
                        }
                        FilterArg::Field(_) | FilterArg::Text(_) => {}
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::parse_template;

    fn check(template: &str, custom: &[&str]) -> Result<(), TemplateError> {
        parse_template(template).unwrap().check_filters(custom)
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|&s| s.to_owned()).collect()
    }

    #[test]
    fn builtins_with_the_right_arguments_pass() {
        for template in [
            "{x:lower}:{x:upper}:{x:len}:{x:hash(sha256)}",
            "{x:hash}",
            "{x:hash()}",
            "{x:hash(md5)}{x:hash(sha1)}",
            "{kwarg1:hash({kwarg2})}",
            "{@:get(context_value)}:{kwarg}",
            "{token:jwt(user)}",
            "{email:lower:hash}",
            "{x:hash({alg:lower})}",
            "constant",
        ] {
            assert_eq!(check(template, &[]), Ok(()), "{template}");
        }
    }

    #[test]
    fn unknown_filters_list_builtins_and_custom_names() {
        let err = check("k:{a:lowr}", &["prefix", "lower"]).unwrap_err();
        assert_eq!(err.span(), 5..9);
        assert_eq!(
            err.kind(),
            &TemplateErrorKind::UnknownFilter {
                name: "lowr".to_owned(),
                known: strings(&["lower", "upper", "len", "hash", "jwt", "get", "prefix"]),
            }
        );
        assert!(err.to_string().contains("`get`, `prefix`;"));
        // Filters of nested fields are checked too.
        let err = check("{a:hash({b:nope})}", &[]).unwrap_err();
        assert_eq!(err.position(), 11);
    }

    #[test]
    fn custom_names_accept_any_arguments_and_override_builtins() {
        assert_eq!(check("{a:prefix(4)}", &["prefix"]), Ok(()));
        assert_eq!(check("{a:prefix}", &["prefix"]), Ok(()));
        assert_eq!(check("{a:call_method({b})}", &["call_method"]), Ok(()));
        assert_eq!(check("{a:hash(blake3, 2)}", &["hash"]), Ok(()));
    }

    #[test]
    fn arity_is_checked() {
        let cases: &[(&str, usize, &str, usize, usize, usize)] = &[
            ("{a:lower(x)}", 3, "lower", 0, 0, 1),
            ("{a:len(x, y)}", 3, "len", 0, 0, 2),
            ("{a:hash(md5,sha1)}", 3, "hash", 0, 1, 2),
            ("ab{a:jwt}", 5, "jwt", 1, 1, 0),
            ("{a:jwt(a,b)}", 3, "jwt", 1, 1, 2),
            ("{@:get}", 3, "get", 1, 1, 0),
        ];
        for &(template, position, filter, min, max, found) in cases {
            let err = check(template, &[]).unwrap_err();
            assert_eq!(err.position(), position, "{template}");
            assert_eq!(
                err.kind(),
                &TemplateErrorKind::FilterArity {
                    filter: filter.to_owned(),
                    min,
                    max,
                    found,
                },
                "{template}"
            );
        }
    }

    #[test]
    fn text_only_filters_reject_field_arguments() {
        let err = check("{a:jwt({claim})}", &[]).unwrap_err();
        assert_eq!(
            err.kind(),
            &TemplateErrorKind::FieldArgument {
                filter: "jwt".to_owned()
            }
        );
        assert_eq!(err.span(), 3..15);
        assert!(err.to_string().contains("write `jwt(claim)`"));
        let err = check("{@:get({name})}", &[]).unwrap_err();
        assert_eq!(err.position(), 3);
    }

    #[test]
    fn hash_algorithms_are_checked() {
        let err = check("{a:hash(sha512)}", &[]).unwrap_err();
        assert_eq!(err.span(), 3..15);
        assert_eq!(
            err.kind(),
            &TemplateErrorKind::UnknownHash {
                found: "sha512".to_owned(),
                known: strings(&["md5", "sha1", "sha256"]),
            }
        );
        assert!(check("{a:hash(SHA256)}", &[]).is_err());
    }

    #[test]
    fn first_error_in_source_order_wins() {
        let err = check("{a:upper}{b:lowr}{c:hash(x)}", &[]).unwrap_err();
        assert_eq!(err.position(), 12);
    }

    #[test]
    fn table_is_consistent() {
        for spec in builtin_filters() {
            assert!(spec.min_args <= spec.max_args, "{}", spec.name);
            assert_eq!(builtin_filter(spec.name), Some(*spec));
            assert!(spec.usage.contains(spec.name));
        }
    }
}
