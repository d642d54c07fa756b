//! The key template parser.

use std::ops::Range;

use super::error::{TemplateError, TemplateErrorKind};
use super::{Access, Field, Filter, FilterArg, Root, Segment, Template};

/// How deep field arguments nest: `{x:hash({alg})}` is depth 1, the most allowed.
const MAX_NESTING: usize = 1;

/// Parses a key template such as `"user:{user.id}:{email:lower:hash}"` (grammar on
/// [`Template`]): literal text, `{{`/`}}` for literal braces, and fields
/// `{root path* (:filter)*}`.
///
/// Only the syntax is checked here; check names with [`Template::check_filters`] and
/// [`Template::check_roots`]. Never panics, whatever the input.
///
/// # Errors
///
/// A [`TemplateError`] with the byte position of the first problem: an unclosed `{`, a lone
/// `}`, an empty or positional field (`{}`, `{0}`), a bad name or path, a Python format spec or
/// conversion (`{a:>5}`, `{a!r}`), malformed filter arguments, or a field argument inside a
/// field argument.
///
/// ```
/// use cashews_syntax::{parse_template, Access, FilterArg, Root, Segment, TemplateErrorKind};
/// let t = parse_template("{kwarg1:hash({kwarg2})}").unwrap();
/// let Segment::Field(field) = &t.segments[0] else { unreachable!() };
/// assert_eq!(field.root, Root::Arg("kwarg1".to_owned()));
/// assert!(matches!(&field.filters[0].args[0], FilterArg::Field(f) if f.root == Root::Arg("kwarg2".to_owned())));
///
/// let t = parse_template("{a[x]}").unwrap();
/// assert_eq!(t.fields().next().unwrap().path, [Access::Key("x".to_owned())]);
///
/// let err = parse_template("{a:>5}").unwrap_err();
/// assert_eq!(err.position(), 3);
/// assert_eq!(err.kind(), &TemplateErrorKind::FormatSpec { spec: ">5".to_owned() });
/// ```
pub fn parse_template(template: &str) -> Result<Template, TemplateError> {
    Parser {
        src: template,
        pos: 0,
    }
    .template()
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

impl Parser<'_> {
    fn byte(&self) -> Option<u8> {
        self.byte_at(self.pos)
    }

    fn byte_at(&self, index: usize) -> Option<u8> {
        self.src.as_bytes().get(index).copied()
    }

    fn rest(&self) -> &str {
        self.src.get(self.pos..).unwrap_or_default()
    }

    /// Advances over the longest run of bytes matching `pred` (ASCII only, so the cut is a
    /// char boundary) and returns it.
    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &str {
        let start = self.pos;
        let len = self.rest().bytes().take_while(|&b| pred(b)).count();
        self.pos += len;
        self.src.get(start..self.pos).unwrap_or_default()
    }

    /// Advances up to (not over) the next of `stops` or the end, and returns the text passed.
    fn take_until(&mut self, stops: &[char]) -> &str {
        let start = self.pos;
        let rest = self.rest();
        self.pos += rest.find(stops).unwrap_or(rest.len());
        self.src.get(start..self.pos).unwrap_or_default()
    }

    fn skip_whitespace(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn error(range: Range<usize>, kind: TemplateErrorKind) -> TemplateError {
        TemplateError::new(range, kind)
    }

    fn unclosed(field_start: usize) -> TemplateError {
        Self::error(
            field_start..field_start + 1,
            TemplateErrorKind::UnclosedField,
        )
    }

    /// The error for the character at the current position, or an unclosed field at the end
    /// of the input.
    fn unexpected(
        &self,
        field_start: usize,
        kind: impl FnOnce(char) -> TemplateErrorKind,
    ) -> TemplateError {
        match self.rest().chars().next() {
            Some(c) => Self::error(self.pos..self.pos + c.len_utf8(), kind(c)),
            None => Self::unclosed(field_start),
        }
    }

    /// A format spec or conversion starting at the current position, up to the field's `}`.
    fn format_spec(&self) -> TemplateError {
        let rest = self.rest();
        let spec = rest
            .get(..rest.find('}').unwrap_or(rest.len()))
            .unwrap_or_default();
        Self::error(
            self.pos..self.pos + spec.len().max(1),
            TemplateErrorKind::FormatSpec {
                spec: spec.to_owned(),
            },
        )
    }

    fn ident(&mut self) -> Option<String> {
        if !self.byte().is_some_and(is_ident_start) {
            return None;
        }
        Some(self.take_while(is_ident_continue).to_owned())
    }

    fn template(mut self) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        while let Some(b) = self.byte() {
            let doubled = self.byte_at(self.pos + 1) == Some(b);
            match b {
                b'{' | b'}' if doubled => {
                    literal.push(char::from(b));
                    self.pos += 2;
                }
                b'}' => {
                    return Err(Self::error(
                        self.pos..self.pos + 1,
                        TemplateErrorKind::UnmatchedClose,
                    ));
                }
                b'{' => {
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    segments.push(Segment::Field(self.field(0)?));
                }
                _ => literal.push_str(self.take_until(&['{', '}'])),
            }
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Ok(Template { segments })
    }

    /// A field, the current byte being its `{`.
    fn field(&mut self, depth: usize) -> Result<Field, TemplateError> {
        let start = self.pos;
        self.pos += 1;
        let root = self.root(start)?;
        let mut path = Vec::new();
        loop {
            match self.byte() {
                Some(b'.') => {
                    self.pos += 1;
                    path.push(self.member(start)?);
                }
                Some(b'[') => {
                    self.pos += 1;
                    path.push(self.index(start)?);
                }
                _ => break,
            }
        }
        let mut filters: Vec<Filter> = Vec::new();
        loop {
            match self.byte() {
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                Some(b':') => {
                    self.pos += 1;
                    filters.push(self.filter(start, depth)?);
                }
                Some(b'!') => return Err(self.format_spec()),
                _ => {
                    return Err(match filters.last() {
                        None => {
                            self.unexpected(start, |found| TemplateErrorKind::BadPath { found })
                        }
                        Some(filter) => {
                            self.unexpected(start, |found| TemplateErrorKind::BadFilter {
                                filter: filter.name.clone(),
                                found,
                            })
                        }
                    });
                }
            }
        }
        Ok(Field {
            root,
            path,
            filters,
            span: start..self.pos,
        })
    }

    fn root(&mut self, field_start: usize) -> Result<Root, TemplateError> {
        match self.byte() {
            Some(b'@') => {
                self.pos += 1;
                Ok(Root::Context)
            }
            Some(b'}') => Err(Self::error(
                field_start..self.pos + 1,
                TemplateErrorKind::EmptyField,
            )),
            Some(b':' | b'!' | b'.' | b'[') => Err(Self::error(
                field_start..field_start + 1,
                TemplateErrorKind::EmptyField,
            )),
            Some(b) if b.is_ascii_digit() => {
                let start = self.pos;
                self.take_while(|b| b.is_ascii_digit());
                Err(Self::error(
                    start..self.pos,
                    TemplateErrorKind::PositionalField,
                ))
            }
            _ => match self.ident() {
                Some(name) if name == "self" => Ok(Root::SelfValue),
                Some(name) => Ok(Root::Arg(name)),
                None => {
                    Err(self.unexpected(field_start, |found| TemplateErrorKind::BadName { found }))
                }
            },
        }
    }

    /// After a `.`: an identifier or a tuple index.
    fn member(&mut self, field_start: usize) -> Result<Access, TemplateError> {
        if self.byte().is_some_and(|b| b.is_ascii_digit()) {
            let start = self.pos;
            if self.byte() == Some(b'0')
                && self.byte_at(start + 1).is_some_and(|b| b.is_ascii_digit())
            {
                return Err(
                    self.unexpected(field_start, |found| TemplateErrorKind::BadPath { found })
                );
            }
            let digits = self.take_while(|b| b.is_ascii_digit()).to_owned();
            if digits.parse::<u32>().is_err() {
                return Err(Self::error(
                    start..self.pos,
                    TemplateErrorKind::IndexTooLarge,
                ));
            }
            return Ok(Access::Field(digits));
        }
        match self.ident() {
            Some(name) => Ok(Access::Field(name)),
            None => Err(self.unexpected(field_start, |found| TemplateErrorKind::BadPath { found })),
        }
    }

    /// After a `[`: an index or a key, then `]`.
    fn index(&mut self, field_start: usize) -> Result<Access, TemplateError> {
        let start = self.pos;
        let key = self.take_while(is_key_byte).to_owned();
        if key.is_empty() || self.byte() != Some(b']') {
            return Err(self.unexpected(field_start, |found| TemplateErrorKind::BadPath { found }));
        }
        self.pos += 1;
        if !key.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Access::Key(key));
        }
        key.parse::<u64>()
            .map(Access::Index)
            .map_err(|_| Self::error(start..start + key.len(), TemplateErrorKind::IndexTooLarge))
    }

    /// After a `:`: a filter name and its arguments.
    fn filter(&mut self, field_start: usize, depth: usize) -> Result<Filter, TemplateError> {
        let start = self.pos;
        let Some(name) = self.ident() else {
            return Err(match self.byte() {
                None => Self::unclosed(field_start),
                Some(_) => self.format_spec(),
            });
        };
        let mut args = Vec::new();
        if self.byte() == Some(b'(') {
            self.pos += 1;
            args = self.args(field_start, &name, depth)?;
        }
        Ok(Filter {
            name,
            args,
            span: start..self.pos,
        })
    }

    /// After a `(`: arguments separated by `,`, then `)`.
    fn args(
        &mut self,
        field_start: usize,
        filter: &str,
        depth: usize,
    ) -> Result<Vec<FilterArg>, TemplateError> {
        let bad_arg = |found| TemplateErrorKind::BadFilterArg {
            filter: filter.to_owned(),
            found,
        };
        let mut args = Vec::new();
        loop {
            let text = self
                .take_until(&['{', '}', '(', ')', ','])
                .trim()
                .to_owned();
            match self.byte() {
                None => return Err(Self::unclosed(field_start)),
                Some(b'{') if text.is_empty() => {
                    if depth >= MAX_NESTING {
                        return Err(Self::error(
                            self.pos..self.pos + 1,
                            TemplateErrorKind::NestedTooDeep,
                        ));
                    }
                    args.push(FilterArg::Field(self.field(depth + 1)?));
                    self.skip_whitespace();
                }
                // `name()` and `name( )` have no arguments.
                Some(b')') if text.is_empty() && args.is_empty() => {
                    self.pos += 1;
                    return Ok(args);
                }
                Some(b',' | b')') if text.is_empty() => {
                    return Err(Self::error(
                        self.pos..self.pos + 1,
                        TemplateErrorKind::EmptyArgument {
                            filter: filter.to_owned(),
                        },
                    ));
                }
                Some(b',' | b')') => args.push(FilterArg::Text(text)),
                Some(_) => return Err(self.unexpected(field_start, bad_arg)),
            }
            match self.byte() {
                Some(b',') => self.pos += 1,
                Some(b')') => {
                    self.pos += 1;
                    return Ok(args);
                }
                _ => return Err(self.unexpected(field_start, bad_arg)),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Template {
        parse_template(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn only_field(s: &str) -> Field {
        let t = parse(s);
        let mut fields = t.segments.into_iter().filter_map(|segment| match segment {
            Segment::Field(field) => Some(field),
            Segment::Literal(_) => None,
        });
        let field = fields.next().unwrap();
        assert!(fields.next().is_none());
        field
    }

    fn arg(name: &str) -> Root {
        Root::Arg(name.to_owned())
    }

    fn lit(text: &str) -> Segment {
        Segment::Literal(text.to_owned())
    }

    fn text(s: &str) -> FilterArg {
        FilterArg::Text(s.to_owned())
    }

    fn key(s: &str) -> Access {
        Access::Key(s.to_owned())
    }

    fn member(s: &str) -> Access {
        Access::Field(s.to_owned())
    }

    fn filter_names(field: &Field) -> Vec<&str> {
        field.filters.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn literals_and_escapes() {
        assert_eq!(parse("").segments, []);
        assert_eq!(parse("test_key").segments, [lit("test_key")]);
        assert_eq!(parse("{{literal}}").segments, [lit("{literal}")]);
        assert_eq!(parse("}}{{").segments, [lit("}{")]);
        assert_eq!(parse("{{{a}}}").segments.len(), 3);
        assert_eq!(parse("{{{a}}}").segments[0], lit("{"));
        assert_eq!(parse("{{{a}}}").segments[2], lit("}"));
        assert_eq!(parse("é{{ü}}").segments, [lit("é{ü}")]);
    }

    #[test]
    fn spec_examples() {
        let t = parse("{x:lower}:{x:upper}:{x:len}:{x:hash(sha256)}");
        let fields: Vec<&Field> = t.fields().collect();
        assert_eq!(fields.len(), 4);
        assert_eq!(filter_names(fields[3]), ["hash"]);
        assert_eq!(fields[3].filters[0].args, [text("sha256")]);
        assert_eq!(fields[3].span, 28..44);
        assert_eq!(t.segments[1], lit(":"));

        let f = only_field("{kwarg1:hash({kwarg2})}");
        assert_eq!(f.root, arg("kwarg1"));
        let FilterArg::Field(nested) = &f.filters[0].args[0] else {
            panic!("not a field arg")
        };
        assert_eq!(
            (nested.root.clone(), nested.span.clone()),
            (arg("kwarg2"), 13..21)
        );

        let t = parse("{@:get(context_value)}:{kwarg}");
        let fields: Vec<&Field> = t.fields().collect();
        assert_eq!(fields[0].root, Root::Context);
        assert_eq!(fields[0].filters[0].args, [text("context_value")]);
        assert_eq!(fields[1].root, arg("kwarg"));

        assert_eq!(only_field("{a[0]}").path, [Access::Index(0)]);
        assert_eq!(only_field("{a[x]}").path, [key("x")]);

        let t = parse("{{literal}}:{a}");
        assert_eq!(t.segments[0], lit("{literal}:"));
        assert_eq!(t.roots(), ["a"]);

        let t = parse("test_key:{user.name}");
        assert_eq!(t.segments[0], lit("test_key:"));
        let f = t.fields().next().unwrap();
        assert_eq!(
            (f.root.clone(), f.path.clone()),
            (arg("user"), vec![member("name")])
        );

        let t = parse("!@#$%^&*():{kwarg1}");
        assert_eq!(t.segments[0], lit("!@#$%^&*():"));
        assert_eq!(t.roots(), ["kwarg1"]);

        let f = only_field("{user.profile.settings.theme}");
        assert_eq!(f.path.len(), 3);
        assert_eq!(only_field("{user.name:len}").filters[0].name, "len");
        assert_eq!(only_field("user:{@:get(client_id)}").root, Root::Context);
        assert_eq!(only_field("{a:prefix(4)}").filters[0].args, [text("4")]);
        assert_eq!(
            parse("mod:f:a:{a}:b:{b}:{__args__}:c:{c}:{__kwargs__}").roots(),
            ["a", "b", "__args__", "c", "__kwargs__"]
        );
    }

    #[test]
    fn roots() {
        assert_eq!(only_field("{a}").root, arg("a"));
        assert_eq!(only_field("{_x9}").root, arg("_x9"));
        assert_eq!(only_field("{_}").root, arg("_"));
        assert_eq!(only_field("{selfish}").root, arg("selfish"));
        assert_eq!(only_field("{self}").root, Root::SelfValue);
        assert_eq!(only_field("{@}").root, Root::Context);
        assert_eq!(only_field("{@[client]}").path, [key("client")]);
    }

    #[test]
    fn paths() {
        assert_eq!(
            only_field("{a.b.c_1.d}").path,
            [member("b"), member("c_1"), member("d")]
        );
        assert_eq!(only_field("{pair.0}").path, [member("0")]);
        assert_eq!(only_field("{t.10.x}").path, [member("10"), member("x")]);
        assert_eq!(
            only_field("{a[0][12][007]}").path,
            [Access::Index(0), Access::Index(12), Access::Index(7)]
        );
        assert_eq!(
            only_field(&format!("{{a[{}]}}", u64::MAX)).path,
            [Access::Index(u64::MAX)]
        );
        assert_eq!(
            only_field("{a[x-client][_][1a][-]}").path,
            [key("x-client"), key("_"), key("1a"), key("-")]
        );
        assert_eq!(
            only_field("{a[k].v.0[1]}").path,
            [key("k"), member("v"), member("0"), Access::Index(1)]
        );
    }

    #[test]
    fn filters() {
        let f = only_field("{email:lower:hash}");
        assert_eq!(filter_names(&f), ["lower", "hash"]);
        assert_eq!(f.filters[0].span, 7..12);
        assert_eq!(f.filters[1].span, 13..17);

        let f = only_field("{a.b:f(x, y z ,w):g}");
        assert_eq!(f.filters[0].args, [text("x"), text("y z"), text("w")]);
        assert_eq!(f.filters[0].span, 5..17);
        assert_eq!(f.filters[1].span, 18..19);

        assert_eq!(only_field("{a:f()}").filters[0].args, []);
        assert_eq!(only_field("{a:f(  )}").filters[0].args, []);
        assert_eq!(only_field("{a:f()}").filters[0].span, 3..6);
        assert_eq!(
            only_field("{a:f(a:b, [x], 1.5, ü, @)}").filters[0].args,
            [text("a:b"), text("[x]"), text("1.5"), text("ü"), text("@")]
        );

        let f = only_field("{x:f( {y.z:lower} , t, {@:get(k)})}");
        let args = &f.filters[0].args;
        assert_eq!(args.len(), 3);
        let FilterArg::Field(y) = &args[0] else {
            panic!()
        };
        assert_eq!((y.root.clone(), y.span.clone()), (arg("y"), 6..17));
        assert_eq!(filter_names(y), ["lower"]);
        assert_eq!(args[1], text("t"));
        let FilterArg::Field(ctx) = &args[2] else {
            panic!()
        };
        assert_eq!(ctx.root, Root::Context);
        assert_eq!(ctx.filters[0].args, [text("k")]);
    }

    #[test]
    fn errors_have_kind_and_position() {
        use TemplateErrorKind as K;
        let bad_path = |found| K::BadPath { found };
        let bad_arg = |filter: &str, found| K::BadFilterArg {
            filter: filter.to_owned(),
            found,
        };
        let spec = |s: &str| K::FormatSpec { spec: s.to_owned() };
        let cases: Vec<(&str, usize, K)> = vec![
            // braces
            ("{", 0, K::UnclosedField),
            ("ab{cd", 2, K::UnclosedField),
            ("{a", 0, K::UnclosedField),
            ("{a.", 0, K::UnclosedField),
            ("{a[1", 0, K::UnclosedField),
            ("{a:", 0, K::UnclosedField),
            ("{a:lower", 0, K::UnclosedField),
            ("{a:f(x", 0, K::UnclosedField),
            ("{a:f(x)", 0, K::UnclosedField),
            ("{a:f({b", 5, K::UnclosedField),
            ("{a:f({b}", 0, K::UnclosedField),
            ("x{{{", 3, K::UnclosedField),
            ("}", 0, K::UnmatchedClose),
            ("ab}c", 2, K::UnmatchedClose),
            ("{a}}", 3, K::UnmatchedClose),
            ("{{a}", 3, K::UnmatchedClose),
            // names
            ("{}", 0, K::EmptyField),
            ("k:{}", 2, K::EmptyField),
            ("{:lower}", 0, K::EmptyField),
            ("{!r}", 0, K::EmptyField),
            ("{.a}", 0, K::EmptyField),
            ("{[0]}", 0, K::EmptyField),
            ("{0}", 1, K::PositionalField),
            ("x{12.a}", 2, K::PositionalField),
            ("{ a}", 1, K::BadName { found: ' ' }),
            ("{-a}", 1, K::BadName { found: '-' }),
            ("{é}", 1, K::BadName { found: 'é' }),
            ("{\"a\"}", 1, K::BadName { found: '"' }),
            ("{a:f({{b})}", 6, K::BadName { found: '{' }),
            // paths
            ("{a-b}", 2, bad_path('-')),
            ("{a b}", 2, bad_path(' ')),
            ("{a }", 2, bad_path(' ')),
            ("{a{b}}", 2, bad_path('{')),
            ("{a.}", 3, bad_path('}')),
            ("{a..b}", 3, bad_path('.')),
            ("{a.-}", 3, bad_path('-')),
            ("{a.01}", 3, bad_path('0')),
            ("{a[]}", 3, bad_path(']')),
            ("{a[x}", 4, bad_path('}')),
            ("{a[\"x\"]}", 3, bad_path('"')),
            ("{a[x y]}", 4, bad_path(' ')),
            ("{a[1]x}", 5, bad_path('x')),
            ("{a.4294967296}", 3, K::IndexTooLarge),
            ("{a[18446744073709551616]}", 3, K::IndexTooLarge),
            // format specs and conversions
            ("{a!r}", 2, spec("!r")),
            ("{a.b!s:x}", 4, spec("!s:x")),
            ("{a:>5}", 3, spec(">5")),
            ("{a:5}", 3, spec("5")),
            ("{a:}", 3, spec("")),
            ("{a::lower}", 3, spec(":lower")),
            ("{a:lower:>5}", 9, spec(">5")),
            ("{a:lower!r}", 8, spec("!r")),
            ("{a:>5", 3, spec(">5")),
            // filters
            (
                "{a:lower-x}",
                8,
                K::BadFilter {
                    filter: "lower".to_owned(),
                    found: '-',
                },
            ),
            (
                "{a:f(x).y}",
                7,
                K::BadFilter {
                    filter: "f".to_owned(),
                    found: '.',
                },
            ),
            ("{a:f(x(y))}", 6, bad_arg("f", '(')),
            ("{a:f(x})", 6, bad_arg("f", '}')),
            ("{a:f(x{b})}", 6, bad_arg("f", '{')),
            ("{a:f({b}x)}", 8, bad_arg("f", 'x')),
            ("{a:f({b} {c})}", 9, bad_arg("f", '{')),
            ("{a:f(})", 5, bad_arg("f", '}')),
            (
                "{a:f(x,)}",
                7,
                K::EmptyArgument {
                    filter: "f".to_owned(),
                },
            ),
            (
                "{a:f(,x)}",
                5,
                K::EmptyArgument {
                    filter: "f".to_owned(),
                },
            ),
            (
                "{a:f(x, ,y)}",
                8,
                K::EmptyArgument {
                    filter: "f".to_owned(),
                },
            ),
            ("{a:f({b:g({c})})}", 10, K::NestedTooDeep),
        ];
        for (input, position, kind) in cases {
            let err = parse_template(input).unwrap_err();
            assert_eq!(
                (err.position(), err.kind()),
                (position, &kind),
                "input {input:?}: {err}"
            );
            assert!(err.span().start < err.span().end, "input {input:?}");
            assert!(input.get(err.span()).is_some(), "input {input:?}");
        }
    }

    #[test]
    fn error_spans_cover_the_bad_part() {
        let span = |s: &str| parse_template(s).unwrap_err().span();
        assert_eq!(span("{}"), 0..2);
        assert_eq!(span("{123}"), 1..4);
        assert_eq!(span("{a:>5}"), 3..5);
        assert_eq!(span("{a:}"), 3..4);
        assert_eq!(span("{é}"), 1..3);
        assert_eq!(span("{a[99999999999999999999]}"), 3..23);
    }

    #[test]
    fn messages_for_common_mistakes() {
        let msg = |s: &str| parse_template(s).unwrap_err().to_string();
        assert_eq!(
            msg("user:{id"),
            "key template error at byte 5: unclosed `{` — close the field with `}` or write `{{` \
             for a literal brace"
        );
        assert!(msg("{0}").contains("not positions"));
        assert!(msg("{}").contains("not positions"));
        assert!(msg("{a:>5}").contains("format spec `>5` is not supported"));
        assert!(msg("{a!r}").contains("format spec `!r`"));
    }

    #[test]
    fn never_panics_on_short_strings() {
        // Exhaustive over short strings of the interesting characters.
        let alphabet = [
            '{', '}', '(', ')', '[', ']', ':', '.', ',', '!', '@', 'a', '0', ' ', 'é',
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
                check_any(s);
            }
            inputs = next;
        }
    }

    /// Whatever the input: no panic; an error points inside it at char boundaries; a success
    /// prints back to text that parses to the same template.
    fn check_any(input: &str) {
        match parse_template(input) {
            Ok(t) => {
                let again = parse_template(&t.to_string()).unwrap_or_else(|e| {
                    panic!("{input:?} printed as {:?}, which fails: {e}", t.to_string())
                });
                assert_eq!(again.without_spans(), t.without_spans(), "input {input:?}");
                for field in t.fields() {
                    let source = input.get(field.span.clone()).unwrap();
                    assert!(source.starts_with('{') && source.ends_with('}'));
                    for filter in &field.filters {
                        let source = input.get(filter.span.clone()).unwrap();
                        assert!(source.starts_with(filter.name.as_str()));
                    }
                }
            }
            Err(err) => {
                assert!(err.span().start <= err.span().end);
                assert!(input.get(err.span()).is_some(), "input {input:?}: {err:?}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn arbitrary_strings_never_panic(input in any::<String>()) {
            check_any(&input);
        }

        #[test]
        fn template_like_strings_never_panic(
            input in r"([{}()\[\]:.,!@ _x0-9-]|a|self|lower|hash|é|\{\{|\}\}){0,40}"
        ) {
            check_any(&input);
        }
    }
}
