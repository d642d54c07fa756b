//! [`KeyTemplate`]: key templates parsed and rendered at run time, for code that cannot use
//! the attribute macros (closures, generic code, keys from configuration).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use cashews_syntax::{Field, Filter, FilterArg, Root, Segment, Template, parse_template};

use super::{KeyBuf, KeyPart, context, filter, render};
use crate::{Error, Result};

/// A key template parsed at run time: `user:{user_id}:{email:lower:hash}`.
///
/// The grammar is the one the attribute macros use (see [`cashews_syntax::Template`]).
/// Arguments are passed by name as [`KeyPart`] values; filters chain left to right; a filter
/// argument may be a field (`{x:hash({alg})}`), rendered to text first; `{@:get(name)}` reads
/// the key context ([`context`](super::context)) and renders empty when the name is not set.
///
/// Unlike the macros, a run-time template cannot read fields or indexes of a value
/// (`{user.id}`, `{items[0]}`): the values are `&dyn KeyPart`. Pass the field as its own
/// argument (`{user_id}`), or use the attribute macro, which reads fields at compile time.
///
/// ```
/// use cashews::key::KeyTemplate;
///
/// let template = KeyTemplate::parse("user:{id}:{email:lower:hash(sha1)}")?;
/// let key = template.render(&[("id", &42), ("email", &"Ada@Example.com")])?;
/// assert_eq!(key, "user:42:3ca93ad87e0bb737e653b66ad67731e86bbc050f");
///
/// // As a pattern for delete_match: values are escaped, template text is not.
/// let pattern = KeyTemplate::parse("user:{id}:*")?.render_pattern(&[("id", &"*")])?;
/// assert_eq!(pattern, r"user:\*:*");
/// # Ok::<(), cashews::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    source: String,
    template: Template,
}

/// Where a field's value comes from.
enum Source<'a> {
    /// A named argument.
    Arg(&'a dyn KeyPart),
    /// `{@:get(name)}`: one key-context value.
    ContextValue(&'a str),
    /// `{@}`: the whole key context, rendered like a map.
    Context,
}

impl KeyTemplate {
    /// Parses `template` and checks its filters against the built-in and registered ones
    /// ([`filter::register_filter`]; register custom filters before parsing).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKeyTemplate`] with the syntax error's text and byte position, an unknown
    /// filter (listing the known ones), a wrong number of filter arguments, an unknown hash
    /// algorithm, a field or index access (`{user.id}`: not possible at run time), or `get`
    /// used other than as `{@:get(name)}`.
    ///
    /// ```
    /// use cashews::key::KeyTemplate;
    ///
    /// assert!(KeyTemplate::parse("user:{id}").is_ok());
    /// let err = KeyTemplate::parse("user:{id").unwrap_err();
    /// assert!(err.to_string().contains("at byte 5: unclosed `{`"));
    /// assert!(KeyTemplate::parse("{id:nope}").is_err());
    /// assert!(KeyTemplate::parse("{user.id}").is_err());
    /// ```
    pub fn parse(template: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidKeyTemplate {
            template: template.to_owned(),
            reason,
        };
        let parsed = parse_template(template).map_err(|err| invalid(err.to_string()))?;
        let custom = filter::registered_filters();
        let custom: Vec<&str> = custom.iter().map(String::as_str).collect();
        parsed
            .check_filters(&custom)
            .map_err(|err| invalid(err.to_string()))?;
        for field in parsed.fields() {
            check_field(field).map_err(invalid)?;
        }
        Ok(Self {
            source: template.to_owned(),
            template: parsed,
        })
    }

    /// Renders the key with `args`, the template's arguments by name.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKeyTemplate`] when a field names an argument not in `args` (the message
    /// lists the given names), or when `hash` gets an unknown algorithm from a field argument.
    ///
    /// ```
    /// use cashews::key::KeyTemplate;
    ///
    /// let template = KeyTemplate::parse("{x:lower}:{x:upper}:{x:len}:{x:hash({alg})}")?;
    /// let key = template.render(&[("x", &"Ab"), ("alg", &"md5")])?;
    /// assert_eq!(key, "ab:AB:2:0e4c46df226b9c0cb391311c54f28efe");
    /// assert!(template.render(&[("y", &"Ab")]).is_err());
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn render(&self, args: &[(&str, &dyn KeyPart)]) -> Result<String> {
        self.render_into(KeyBuf::with_capacity(self.source.len() + 16), args)
    }

    /// Renders a glob pattern: like [`render`](Self::render), but every value is escaped with
    /// [`crate::pattern::escape`] (template text is not), so user input can never widen a
    /// `delete_match`.
    ///
    /// # Errors
    ///
    /// As [`render`](Self::render).
    ///
    /// ```
    /// use cashews::key::KeyTemplate;
    ///
    /// let template = KeyTemplate::parse("user:{name}:*")?;
    /// assert_eq!(template.render_pattern(&[("name", &"a?[b]")])?, r"user:a\?\[b\]:*");
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn render_pattern(&self, args: &[(&str, &dyn KeyPart)]) -> Result<String> {
        self.render_into(KeyBuf::for_pattern(), args)
    }

    /// Whether the template has no fields, so it renders to its own text.
    ///
    /// ```
    /// use cashews::key::KeyTemplate;
    /// assert!(KeyTemplate::parse("users:{{all}}")?.is_constant());
    /// assert!(!KeyTemplate::parse("users:{page}")?.is_constant());
    /// # Ok::<(), cashews::Error>(())
    /// ```
    #[must_use]
    pub fn is_constant(&self) -> bool {
        self.template.is_constant()
    }

    /// The distinct argument names the template uses, in order of first use (`@` is not one;
    /// `self` is written `{self}` and passed as `("self", …)`, but is not listed).
    ///
    /// ```
    /// use cashews::key::KeyTemplate;
    /// let template = KeyTemplate::parse("{b}:{a:hash({c})}:{b}:{@:get(d)}")?;
    /// assert_eq!(template.roots(), ["b", "a", "c"]);
    /// # Ok::<(), cashews::Error>(())
    /// ```
    #[must_use]
    pub fn roots(&self) -> Vec<&str> {
        self.template.roots()
    }

    /// The template as written.
    ///
    /// ```
    /// use cashews::key::KeyTemplate;
    /// assert_eq!(KeyTemplate::parse("k:{a}")?.as_str(), "k:{a}");
    /// # Ok::<(), cashews::Error>(())
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The parsed template.
    ///
    /// ```
    /// use cashews::key::KeyTemplate;
    /// let template = KeyTemplate::parse("k:{a}:{b}")?;
    /// assert_eq!(template.template().fields().count(), 2);
    /// # Ok::<(), cashews::Error>(())
    /// ```
    #[must_use]
    pub fn template(&self) -> &Template {
        &self.template
    }

    fn render_into(&self, mut buf: KeyBuf, args: &[(&str, &dyn KeyPart)]) -> Result<String> {
        for segment in &self.template.segments {
            match segment {
                Segment::Literal(text) => buf.literal(text),
                Segment::Field(field) => self.write_field(&mut buf, field, args)?,
            }
        }
        Ok(buf.finish())
    }

    /// Writes one top-level field; without filters the value goes straight into the buffer.
    fn write_field(
        &self,
        buf: &mut KeyBuf,
        field: &Field,
        args: &[(&str, &dyn KeyPart)],
    ) -> Result<()> {
        let (value, filters) = self.value(field, args)?;
        if filters.is_empty() {
            match value {
                Source::Arg(value) => buf.part(value),
                Source::ContextValue(name) => buf.context_value(name),
                Source::Context => buf.part(&context::snapshot()),
            }
        } else {
            let text = self.filtered(field, value, filters, args)?;
            buf.text(&text);
        }
        Ok(())
    }

    /// A field rendered to text, filters applied (for filter arguments and filtered fields).
    fn field_text(&self, field: &Field, args: &[(&str, &dyn KeyPart)]) -> Result<String> {
        let (value, filters) = self.value(field, args)?;
        self.filtered(field, value, filters, args)
    }

    /// The field's value and the filters left to apply (`get` is consumed here).
    fn value<'f, 'a>(
        &self,
        field: &'f Field,
        args: &[(&str, &'a dyn KeyPart)],
    ) -> Result<(Source<'a>, &'f [Filter])>
    where
        'f: 'a,
    {
        let name = match &field.root {
            Root::Arg(name) => name.as_str(),
            Root::SelfValue => "self",
            Root::Context => {
                return Ok(match field.filters.split_first() {
                    Some((first, rest)) if first.name == "get" => {
                        let name = match first.args.first() {
                            Some(FilterArg::Text(name)) => name.as_str(),
                            _ => "",
                        };
                        (Source::ContextValue(name), rest)
                    }
                    _ => (Source::Context, field.filters.as_slice()),
                });
            }
        };
        match args.iter().find(|(arg, _)| *arg == name) {
            Some((_, value)) => Ok((Source::Arg(*value), field.filters.as_slice())),
            None => Err(self.error(field, unknown_argument(name, args))),
        }
    }

    fn filtered(
        &self,
        field: &Field,
        value: Source<'_>,
        filters: &[Filter],
        args: &[(&str, &dyn KeyPart)],
    ) -> Result<String> {
        let mut text = match value {
            Source::Arg(value) => render(value),
            Source::ContextValue(name) => context::get(name).unwrap_or_default(),
            Source::Context => render(&context::snapshot()),
        };
        for filter in filters {
            let filter_args = filter
                .args
                .iter()
                .map(|arg| match arg {
                    FilterArg::Text(text) => Ok(Cow::Borrowed(text.as_str())),
                    FilterArg::Field(nested) => self.field_text(nested, args).map(Cow::Owned),
                })
                .collect::<Result<Vec<_>>>()?;
            let filter_args: Vec<&str> = filter_args.iter().map(AsRef::as_ref).collect();
            text = filter::apply(&filter.name, &text, &filter_args).map_err(|err| match err {
                Error::InvalidKeyTemplate { reason, .. } => self.error(field, reason),
                other => other,
            })?;
        }
        Ok(text)
    }

    fn error(&self, field: &Field, reason: String) -> Error {
        Error::InvalidKeyTemplate {
            template: self.source.clone(),
            reason: format!("in `{field}`: {reason}"),
        }
    }
}

/// Rejects what a run-time template cannot render: field and index access, and `get` other
/// than as the first filter of `{@…}`.
fn check_field(field: &Field) -> std::result::Result<(), String> {
    let at = field.span.start;
    if let Some(access) = field.path.first() {
        let root = &field.root;
        if *root == Root::Context {
            return Err(format!(
                "at byte {at}: `{field}` reads `{access}` of `@`: read a key-context value with \
                 `{{@:get(name)}}`"
            ));
        }
        let path: String = field.path.iter().map(ToString::to_string).collect();
        let mut name = root.to_string();
        for access in &field.path {
            name.push('_');
            name.extend(access.to_string().chars().filter_map(|c| match c {
                '.' | '[' | ']' => None,
                '-' => Some('_'),
                c => Some(c),
            }));
        }
        return Err(format!(
            "at byte {at}: `{field}` reads `{access}` of `{root}`, which a run-time template cannot do (its \
             values are `&dyn KeyPart`): pass the value as its own argument, e.g. write \
             `{{{name}}}` and render with `(\"{name}\", &{root}{path})`, or use the attribute \
             macro, which reads fields at compile time"
        ));
    }
    let get_elsewhere = field
        .filters
        .iter()
        .enumerate()
        .any(|(i, filter)| filter.name == "get" && (i > 0 || field.root != Root::Context));
    if get_elsewhere {
        return Err(format!(
            "at byte {at}: `{field}`: `get` reads the key context and must come first after `@`: write \
             `{{@:get(name)}}`"
        ));
    }
    Ok(())
}

fn unknown_argument(name: &str, args: &[(&str, &dyn KeyPart)]) -> String {
    if args.is_empty() {
        return format!("unknown argument `{name}`: no arguments were given");
    }
    let given: Vec<String> = args.iter().map(|(name, _)| format!("`{name}`")).collect();
    format!(
        "unknown argument `{name}`: the given arguments are {}",
        given.join(", ")
    )
}

/// The template as written.
///
/// ```
/// let template = cashews::key::KeyTemplate::parse("k:{a}")?;
/// assert_eq!(template.to_string(), "k:{a}");
/// # Ok::<(), cashews::Error>(())
/// ```
impl fmt::Display for KeyTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Same as [`KeyTemplate::parse`].
///
/// ```
/// let template: cashews::key::KeyTemplate = "k:{a}".parse()?;
/// assert_eq!(template.render(&[("a", &1)])?, "k:1");
/// # Ok::<(), cashews::Error>(())
/// ```
impl FromStr for KeyTemplate {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}
