//! Key templates: the AST, its printing and the name checks. The grammar is documented on
//! [`Template`].

mod error;
mod filter;
mod parse;

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

pub use error::{TemplateError, TemplateErrorKind, unknown_placeholder};
pub use filter::{FilterSpec, builtin_filter, builtin_filters};
pub use parse::parse_template;

/// A parsed key template: literal text and brace fields, such as
/// `user:{user.id}:{email:lower:hash}`.
///
/// The grammar (whitespace is significant everywhere except around filter arguments):
///
/// ```text
/// template = { text | "{{" | "}}" | field }        "{{" and "}}" are literal braces
/// field    = "{" root { access } { ":" filter } "}"
/// root     = ident | "@" | "self"                  an argument, the key context, the receiver
/// access   = "." ident                             field access:  {user.profile.theme}
///          | "." tuple-index                       tuple field:   {pair.0}
///          | "[" digits "]"                        index:         {items[0]}
///          | "[" key "]"                           map lookup:    {headers[x-client]}
/// filter   = ident [ "(" [ arg { "," arg } ] ")" ] filters chain: {email:lower:hash}
/// arg      = field | arg-text                      a field argument has no field arguments itself
/// ident    = [A-Za-z_][A-Za-z0-9_]*
/// key      = [A-Za-z0-9_-]+                        all digits makes it an index instead
/// tuple-index = "0" | [1-9][0-9]*                  fits in u32
/// arg-text = characters other than { } ( ) ,       trimmed of surrounding whitespace, not empty
/// ```
///
/// [`parse_template`] checks the syntax; [`Template::check_filters`] and
/// [`Template::check_roots`] check names against the filter table and the function's
/// arguments. Every error carries a byte position into the template string.
///
/// ```
/// use cashews_syntax::parse_template;
/// let t = parse_template("user:{user.id}:{email:lower:hash}").unwrap();
/// assert_eq!(t.roots(), ["user", "email"]);
/// assert!(t.check_filters(&[]).is_ok());
/// assert!(t.check_roots(&["user", "email"]).is_ok());
/// assert_eq!(t.to_string(), "user:{user.id}:{email:lower:hash}");
/// ```
///
/// Templates from [`parse_template`] never hold two literal segments in a row nor an empty
/// literal, so two templates that render alike compare equal (spans aside, see
/// [`Template::without_spans`]).
///
/// ```
/// use cashews_syntax::{parse_template, Segment};
/// let t = parse_template("{{literal}}:{a}").unwrap();
/// assert_eq!(t.segments[0], Segment::Literal("{literal}:".to_owned()));
/// assert!(matches!(t.segments[1], Segment::Field(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Template {
    /// The literal text and fields, in order.
    pub segments: Vec<Segment>,
}

/// One piece of a [`Template`].
///
/// ```
/// use cashews_syntax::{parse_template, Segment};
/// let t = parse_template("a}}b").unwrap();
/// assert_eq!(t.segments, [Segment::Literal("a}b".to_owned())]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Literal text, already unescaped (`{{` became `{`).
    Literal(String),
    /// A brace field.
    Field(Field),
}

/// A brace field: `{root path* (:filter)*}`.
///
/// ```
/// use cashews_syntax::{parse_template, Access, Root, Segment};
/// let t = parse_template("k:{user.tags[0]:lower}").unwrap();
/// let Segment::Field(field) = &t.segments[1] else { unreachable!() };
/// assert_eq!(field.root, Root::Arg("user".to_owned()));
/// assert_eq!(field.path, [Access::Field("tags".to_owned()), Access::Index(0)]);
/// assert_eq!(field.filters[0].name, "lower");
/// assert_eq!(field.span, 2..22);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Field {
    /// What the field starts from.
    pub root: Root,
    /// Field accesses, indexes and key lookups applied to the root, in order.
    pub path: Vec<Access>,
    /// Filters applied to the value, left to right.
    pub filters: Vec<Filter>,
    /// Byte range of the whole field, braces included, in the template string.
    pub span: Range<usize>,
}

/// What a [`Field`] starts from.
///
/// ```
/// use cashews_syntax::{parse_template, Root};
/// let t = parse_template("{@}{self}{user_id}").unwrap();
/// let roots: Vec<&Root> = t.fields().map(|f| &f.root).collect();
/// assert_eq!(roots, [&Root::Context, &Root::SelfValue, &Root::Arg("user_id".to_owned())]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// A function argument, by name (never `self`, which is [`Root::SelfValue`]).
    Arg(String),
    /// `@`: the key context of the current task.
    Context,
    /// `self`: the method receiver.
    SelfValue,
}

/// One step of a [`Field`]'s path.
///
/// ```
/// use cashews_syntax::{parse_template, Access};
/// let t = parse_template("{a.b.0[1][x-y]}").unwrap();
/// let field = t.fields().next().unwrap();
/// assert_eq!(field.path, [
///     Access::Field("b".to_owned()),
///     Access::Field("0".to_owned()),
///     Access::Index(1),
///     Access::Key("x-y".to_owned()),
/// ]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// `.name` (an identifier) or `.0` (a tuple index: decimal digits without a leading zero
    /// that fit in `u32`).
    Field(String),
    /// `[123]`: indexing with a number.
    Index(u64),
    /// `[name]`: map lookup with the string key `name` (letters, digits, `-`, `_`; never all
    /// digits, which is an [`Access::Index`]).
    Key(String),
}

/// A filter applied to a field: `name` or `name(arg, …)`.
///
/// ```
/// use cashews_syntax::{parse_template, FilterArg};
/// let t = parse_template("{x:hash({alg})}").unwrap();
/// let filter = &t.fields().next().unwrap().filters[0];
/// assert_eq!(filter.name, "hash");
/// assert!(matches!(filter.args[0], FilterArg::Field(_)));
/// assert_eq!(filter.span, 3..14);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Filter {
    /// The filter name.
    pub name: String,
    /// The arguments in parentheses; empty for `name` and `name()`.
    pub args: Vec<FilterArg>,
    /// Byte range from the start of the name to the closing `)` included, in the template
    /// string.
    pub span: Range<usize>,
}

/// An argument of a [`Filter`].
///
/// ```
/// use cashews_syntax::{parse_template, FilterArg};
/// let t = parse_template("{@:get( client id )}").unwrap();
/// let filter = &t.fields().next().unwrap().filters[0];
/// assert_eq!(filter.args, [FilterArg::Text("client id".to_owned())]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterArg {
    /// Literal text, trimmed of surrounding whitespace; never empty and never contains
    /// `{ } ( ) ,`.
    Text(String),
    /// A field whose value is the argument at run time, as in `{x:hash({alg})}`. Its own
    /// filters may take only text arguments: one level of nesting.
    Field(Field),
}

impl Template {
    /// True when the template has no fields: its text is the key as is.
    ///
    /// ```
    /// use cashews_syntax::parse_template;
    /// assert!(parse_template("users:all").unwrap().is_constant());
    /// assert!(parse_template("{{braces}}").unwrap().is_constant());
    /// assert!(!parse_template("users:{page}").unwrap().is_constant());
    /// ```
    #[must_use]
    pub fn is_constant(&self) -> bool {
        !self
            .segments
            .iter()
            .any(|segment| matches!(segment, Segment::Field(_)))
    }

    /// The key text of a template without fields, or `None` when it has fields.
    ///
    /// ```
    /// use cashews_syntax::parse_template;
    /// assert_eq!(parse_template("a:{{b}}").unwrap().constant_text().as_deref(), Some("a:{b}"));
    /// assert_eq!(parse_template("").unwrap().constant_text().as_deref(), Some(""));
    /// assert_eq!(parse_template("a:{b}").unwrap().constant_text(), None);
    /// ```
    #[must_use]
    pub fn constant_text(&self) -> Option<String> {
        let mut text = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(literal) => text.push_str(literal),
                Segment::Field(_) => return None,
            }
        }
        Some(text)
    }

    /// Every field, in source order, each followed by the fields nested in its filter
    /// arguments.
    ///
    /// ```
    /// use cashews_syntax::parse_template;
    /// let t = parse_template("{x:hash({alg})}:{y}").unwrap();
    /// let spans: Vec<_> = t.fields().map(|f| f.span.clone()).collect();
    /// assert_eq!(spans, [0..15, 8..13, 16..19]);
    /// ```
    pub fn fields(&self) -> impl Iterator<Item = &Field> {
        let mut fields = Vec::new();
        for segment in &self.segments {
            if let Segment::Field(field) = segment {
                collect_fields(field, &mut fields);
            }
        }
        fields.into_iter()
    }

    /// The distinct argument names the template uses ([`Root::Arg`]), in order of first use,
    /// nested fields included. `@` and `self` are not listed.
    ///
    /// ```
    /// use cashews_syntax::parse_template;
    /// let t = parse_template("{b}:{a.x}:{b:hash({c})}:{@:get(d)}:{self.id}").unwrap();
    /// assert_eq!(t.roots(), ["b", "a", "c"]);
    /// ```
    #[must_use]
    pub fn roots(&self) -> Vec<&str> {
        let mut roots: Vec<&str> = Vec::new();
        for field in self.fields() {
            if let Root::Arg(name) = &field.root
                && !roots.contains(&name.as_str())
            {
                roots.push(name);
            }
        }
        roots
    }

    /// Checks that every field starts from a known name: an argument in `known`, `@` (always
    /// allowed), or `self` when `known` contains `"self"` (pass it for methods with a
    /// receiver). Only the root is checked; `{user.anything}` passes when `user` is known.
    ///
    /// # Errors
    ///
    /// The first unknown root, as [`TemplateErrorKind::UnknownPlaceholder`] (see
    /// [`unknown_placeholder`]).
    ///
    /// ```
    /// use cashews_syntax::parse_template;
    /// let t = parse_template("u:{usr}:{@:get(client)}").unwrap();
    /// assert!(t.check_roots(&["usr", "page"]).is_ok());
    /// let err = t.check_roots(&["user", "page"]).unwrap_err();
    /// assert_eq!(err.position(), 3);
    /// assert!(err.to_string().contains("the function's arguments are `user`, `page`"));
    /// assert!(parse_template("{self.id}").unwrap().check_roots(&["id"]).is_err());
    /// ```
    pub fn check_roots(&self, known: &[&str]) -> Result<(), TemplateError> {
        for field in self.fields() {
            let ok = match &field.root {
                Root::Arg(name) => known.contains(&name.as_str()),
                Root::Context => true,
                Root::SelfValue => known.contains(&"self"),
            };
            if !ok {
                return Err(unknown_placeholder(field, known));
            }
        }
        Ok(())
    }

    /// The same template with every span set to `0..0`, for comparing templates by content.
    ///
    /// Display writes canonical source text, so for any template `t` returned by
    /// [`parse_template`], `parse_template(&t.to_string())` gives `t` again up to spans:
    ///
    /// ```
    /// use cashews_syntax::parse_template;
    /// let t = parse_template("{{ {x:hash( md5 )} }}").unwrap();
    /// assert_eq!(t.to_string(), "{{ {x:hash(md5)} }}");
    /// let again = parse_template(&t.to_string()).unwrap();
    /// assert_ne!(again, t); // the filter's span moved
    /// assert_eq!(again.without_spans(), t.without_spans());
    /// ```
    #[must_use]
    pub fn without_spans(&self) -> Self {
        Self {
            segments: self
                .segments
                .iter()
                .map(|segment| match segment {
                    Segment::Literal(text) => Segment::Literal(text.clone()),
                    Segment::Field(field) => Segment::Field(field.without_spans()),
                })
                .collect(),
        }
    }
}

fn collect_fields<'a>(field: &'a Field, out: &mut Vec<&'a Field>) {
    out.push(field);
    for filter in &field.filters {
        for arg in &filter.args {
            if let FilterArg::Field(nested) = arg {
                collect_fields(nested, out);
            }
        }
    }
}

impl Field {
    /// The same field with every span, its own and its filters', set to `0..0`.
    ///
    /// ```
    /// use cashews_syntax::parse_template;
    /// let a = parse_template("{x:lower}").unwrap();
    /// let b = parse_template("key:{x:lower}").unwrap();
    /// let (fa, fb) = (a.fields().next().unwrap(), b.fields().next().unwrap());
    /// assert_ne!(fa, fb);
    /// assert_eq!(fa.without_spans(), fb.without_spans());
    /// ```
    #[must_use]
    pub fn without_spans(&self) -> Self {
        Self {
            root: self.root.clone(),
            path: self.path.clone(),
            filters: self.filters.iter().map(Filter::without_spans).collect(),
            span: 0..0,
        }
    }
}

impl Filter {
    /// The same filter with every span, its own and its nested fields', set to `0..0`.
    ///
    /// ```
    /// use cashews_syntax::parse_template;
    /// let t = parse_template("{x:hash({alg})}").unwrap();
    /// let filter = t.fields().next().unwrap().filters[0].without_spans();
    /// assert_eq!(filter.span, 0..0);
    /// assert_eq!(filter.to_string(), "hash({alg})");
    /// ```
    #[must_use]
    pub fn without_spans(&self) -> Self {
        Self {
            name: self.name.clone(),
            args: self
                .args
                .iter()
                .map(|arg| match arg {
                    FilterArg::Text(text) => FilterArg::Text(text.clone()),
                    FilterArg::Field(field) => FilterArg::Field(field.without_spans()),
                })
                .collect(),
            span: 0..0,
        }
    }
}

/// Canonical source text: literal braces doubled, filter arguments joined by `,` without
/// spaces, `name()` written `name`, indexes without leading zeros. Faithful for templates from
/// [`parse_template`]; a hand-built template that breaks the invariants documented on the
/// types (an empty or untrimmed text argument, [`Root::Arg`]`("self")`, an all-digit
/// [`Access::Key`], …) may print text that parses differently or not at all.
impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => {
                    for c in text.chars() {
                        match c {
                            '{' => f.write_str("{{")?,
                            '}' => f.write_str("}}")?,
                            _ => fmt::Write::write_char(f, c)?,
                        }
                    }
                }
                Segment::Field(field) => write!(f, "{field}")?,
            }
        }
        Ok(())
    }
}

/// The field as source text, braces included: `{user.name:lower}`.
impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}", self.root)?;
        for access in &self.path {
            write!(f, "{access}")?;
        }
        for filter in &self.filters {
            write!(f, ":{filter}")?;
        }
        f.write_str("}")
    }
}

/// `@`, `self` or the argument name.
impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Arg(name) => f.write_str(name),
            Self::Context => f.write_str("@"),
            Self::SelfValue => f.write_str("self"),
        }
    }
}

/// `.name`, `[0]` or `[key]`.
impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field(name) => write!(f, ".{name}"),
            Self::Index(index) => write!(f, "[{index}]"),
            Self::Key(key) => write!(f, "[{key}]"),
        }
    }
}

/// `name` or `name(arg,arg)`, without the leading `:`.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.args.is_empty() {
            f.write_str("(")?;
            for (i, arg) in self.args.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{arg}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// The text as is, or the field with its braces.
impl fmt::Display for FilterArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => f.write_str(text),
            Self::Field(field) => write!(f, "{field}"),
        }
    }
}

/// Same as [`parse_template`].
///
/// ```
/// let t: cashews_syntax::Template = "k:{a}".parse().unwrap();
/// assert_eq!(t.roots(), ["a"]);
/// ```
impl FromStr for Template {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_template(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Template {
        parse_template(s).unwrap()
    }

    #[test]
    fn constant_templates() {
        assert!(parse("").is_constant());
        assert!(parse("a:b").is_constant());
        assert!(parse("{{x}}").is_constant());
        assert!(!parse("{x}").is_constant());
        assert_eq!(parse("!@#$%^&*()").constant_text().unwrap(), "!@#$%^&*()");
        assert_eq!(parse("{{}}").constant_text().unwrap(), "{}");
    }

    #[test]
    fn fields_include_nested_ones_in_order() {
        let t = parse("{a:f({b},x,{c:lower})}:{d}");
        let roots: Vec<String> = t.fields().map(|f| f.root.to_string()).collect();
        assert_eq!(roots, ["a", "b", "c", "d"]);
        assert_eq!(parse("plain").fields().count(), 0);
    }

    #[test]
    fn roots_are_distinct_arguments_only() {
        let t = parse("{a}{a.b}{@}{self}{b:hash({a})}{c:get(x)}");
        assert_eq!(t.roots(), ["a", "b", "c"]);
    }

    #[test]
    fn check_roots_accepts_context_and_self_when_listed() {
        let t = parse("{@:get(x)}{self.id}{user}");
        assert!(t.check_roots(&["self", "user"]).is_ok());
        let err = t.check_roots(&["user"]).unwrap_err();
        assert_eq!(
            err.kind(),
            &TemplateErrorKind::UnknownPlaceholder {
                name: "self".to_owned(),
                known: vec!["user".to_owned()],
            }
        );
        assert_eq!(err.position(), 11);
        assert_eq!(err.span(), 11..15);
        let nested = parse("{a:hash({alg})}");
        let err = nested.check_roots(&["a"]).unwrap_err();
        assert_eq!((err.position(), err.span()), (9, 9..12));
    }

    #[test]
    fn display_is_canonical() {
        let cases = [
            ("{x:lower}:{x:upper}", "{x:lower}:{x:upper}"),
            ("{x:hash()}", "{x:hash}"),
            ("{x:f( a , b )}", "{x:f(a,b)}"),
            ("{x:f( {y} , b b )}", "{x:f({y},b b)}"),
            ("{a[007]}", "{a[7]}"),
            ("{{literal}}:{a}", "{{literal}}:{a}"),
            ("}}{{", "}}{{"),
            ("{@:get(context_value)}", "{@:get(context_value)}"),
            ("{self.a.0[1][k-2]}", "{self.a.0[1][k-2]}"),
        ];
        for (input, canonical) in cases {
            let t = parse(input);
            assert_eq!(t.to_string(), canonical, "input {input:?}");
            assert_eq!(parse(canonical).without_spans(), t.without_spans());
        }
    }

    #[test]
    fn without_spans_clears_every_span() {
        let t = parse("x{a:f({b:g})}").without_spans();
        let field = t.fields().next().unwrap();
        assert_eq!(field.span, 0..0);
        assert_eq!(field.filters[0].span, 0..0);
        assert!(t.fields().all(|f| f.span == (0..0)));
        assert!(
            t.fields()
                .flat_map(|f| f.filters.iter())
                .all(|f| f.span == (0..0))
        );
    }

    #[test]
    fn from_str_parses() {
        let t: Template = "{a}".parse().unwrap();
        assert_eq!(t, parse("{a}"));
        assert!("{".parse::<Template>().is_err());
    }

    // ---- generators of valid templates for the round trip ----

    fn ident() -> impl Strategy<Value = String> {
        "[A-Za-z_][A-Za-z0-9_]{0,6}"
    }

    fn root() -> impl Strategy<Value = Root> {
        prop_oneof![
            4 => ident()
                .prop_filter("self is Root::SelfValue", |s| s != "self")
                .prop_map(Root::Arg),
            1 => Just(Root::Context),
            1 => Just(Root::SelfValue),
        ]
    }

    fn access() -> impl Strategy<Value = Access> {
        prop_oneof![
            ident().prop_map(Access::Field),
            any::<u32>().prop_map(|n| Access::Field(n.to_string())),
            any::<u64>().prop_map(Access::Index),
            "[A-Za-z0-9_-]{1,6}"
                .prop_filter("all digits is an index", |k| {
                    !k.bytes().all(|b| b.is_ascii_digit())
                })
                .prop_map(Access::Key),
        ]
    }

    fn text_arg() -> impl Strategy<Value = String> {
        r"[^{}(),\s]([^{}(),]{0,6}[^{}(),\s])?"
    }

    fn filter(arg: BoxedStrategy<FilterArg>) -> impl Strategy<Value = Filter> {
        (ident(), prop::collection::vec(arg, 0..3)).prop_map(|(name, args)| Filter {
            name,
            args,
            span: 0..0,
        })
    }

    fn field(arg: BoxedStrategy<FilterArg>) -> impl Strategy<Value = Field> {
        (
            root(),
            prop::collection::vec(access(), 0..4),
            prop::collection::vec(filter(arg), 0..3),
        )
            .prop_map(|(root, path, filters)| Field {
                root,
                path,
                filters,
                span: 0..0,
            })
    }

    fn nested_field() -> impl Strategy<Value = Field> {
        field(text_arg().prop_map(FilterArg::Text).boxed())
    }

    fn top_field() -> impl Strategy<Value = Field> {
        let arg = prop_oneof![
            3 => text_arg().prop_map(FilterArg::Text),
            1 => nested_field().prop_map(FilterArg::Field),
        ];
        field(arg.boxed())
    }

    fn template() -> impl Strategy<Value = Template> {
        let segment = prop_oneof![
            "[a-z:{}!@#$ é]{1,6}".prop_map(Segment::Literal),
            top_field().prop_map(Segment::Field),
        ];
        prop::collection::vec(segment, 0..6).prop_map(|segments| {
            // Parsed templates merge adjacent literals; build the same normal form.
            let mut merged: Vec<Segment> = Vec::new();
            for segment in segments {
                match (merged.last_mut(), segment) {
                    (Some(Segment::Literal(prev)), Segment::Literal(text)) => prev.push_str(&text),
                    (_, segment) => merged.push(segment),
                }
            }
            Template { segments: merged }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn display_then_parse_round_trips(t in template()) {
            let text = t.to_string();
            let parsed = parse_template(&text);
            prop_assert!(parsed.is_ok(), "{text:?} failed: {parsed:?}");
            let parsed = parsed.unwrap();
            prop_assert_eq!(parsed.without_spans(), t);
            prop_assert_eq!(parsed.to_string(), text);
        }

        #[test]
        fn parsed_spans_point_at_the_source(t in template()) {
            let text = t.to_string();
            let parsed = parse_template(&text).unwrap();
            for field in parsed.fields() {
                let source = text.get(field.span.clone()).unwrap();
                prop_assert_eq!(source, field.to_string());
                for filter in &field.filters {
                    let source = text.get(filter.span.clone()).unwrap();
                    prop_assert_eq!(source, filter.to_string());
                }
            }
        }
    }
}
