//! [`KeyBuf`]: the builder that generated code writes a key into.

use super::KeyPart;

/// Builds one key from template text and values: what the attribute macros expand a key
/// template into.
///
/// Template text goes in with [`literal`](Self::literal), values with [`part`](Self::part)
/// (rendered by [`KeyPart`]) or [`text`](Self::text) (already rendered, e.g. by a filter).
/// Everything is written straight into one string.
///
/// A buffer made with [`for_pattern`](Self::for_pattern) builds a glob pattern for
/// `delete_match`, `get_match` or `scan`: values are escaped with [`crate::pattern::escape`],
/// literals are not, so user input can never widen the pattern.
///
/// ```
/// use cashews::key::KeyBuf;
///
/// // key = "user:{user_id}:{email:lower}"
/// let (user_id, email) = (42, "Ada@Example.com");
/// let mut key = KeyBuf::with_capacity(32);
/// key.literal("user:");
/// key.part(&user_id);
/// key.literal(":");
/// key.text(&cashews::key::filter::lower(email));
/// assert_eq!(key.finish(), "user:42:ada@example.com");
///
/// let mut pattern = KeyBuf::for_pattern();
/// pattern.literal("user:");
/// pattern.part("*");
/// pattern.literal(":*");
/// assert_eq!(pattern.finish(), r"user:\*:*");
/// ```
#[derive(Debug, Clone, Default)]
pub struct KeyBuf {
    out: String,
    pattern: bool,
    /// In a pattern, where the template text written since the last value starts.
    literal_start: usize,
}

impl KeyBuf {
    /// An empty buffer for a plain key.
    ///
    /// ```
    /// let mut key = cashews::key::KeyBuf::new();
    /// key.literal("all-users");
    /// assert_eq!(key.finish(), "all-users");
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty buffer for a plain key with room for `capacity` bytes, so a key whose length
    /// is known roughly is built without growing.
    ///
    /// ```
    /// let mut key = cashews::key::KeyBuf::with_capacity(16);
    /// key.part(&(1, 2));
    /// assert_eq!(key.finish(), "1:2");
    /// ```
    #[must_use]
    #[inline]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            out: String::with_capacity(capacity),
            pattern: false,
            literal_start: 0,
        }
    }

    /// An empty buffer for a glob pattern: values written through [`part`](Self::part) and
    /// [`text`](Self::text) are escaped (`*`, `?`, `[`, `]`, `\`), literals are not.
    ///
    /// ```
    /// use cashews::key::KeyBuf;
    /// use cashews::pattern::matches;
    ///
    /// let mut pattern = KeyBuf::for_pattern();
    /// pattern.literal("user:");
    /// pattern.text("a?b");
    /// pattern.literal("*");
    /// let pattern = pattern.finish();
    /// assert_eq!(pattern, r"user:a\?b*");
    /// assert!(matches(&pattern, "user:a?b:profile"));
    /// assert!(!matches(&pattern, "user:axb:profile"));
    /// ```
    #[must_use]
    pub fn for_pattern() -> Self {
        Self {
            out: String::new(),
            pattern: true,
            literal_start: 0,
        }
    }

    /// Whether values are escaped as glob input (made by [`for_pattern`](Self::for_pattern)).
    ///
    /// ```
    /// use cashews::key::KeyBuf;
    /// assert!(KeyBuf::for_pattern().is_pattern());
    /// assert!(!KeyBuf::new().is_pattern());
    /// ```
    #[must_use]
    pub fn is_pattern(&self) -> bool {
        self.pattern
    }

    /// Appends template text as is, never escaped (in a pattern, its `*` stays a wildcard).
    ///
    /// In a pattern, template text cannot reach into the value after it: a `\` left escaping
    /// nothing at its end is made a literal backslash, and a `[` left open is made a literal
    /// `[`, before the value is written, so that the value stays escaped whatever the text
    /// around it.
    ///
    /// ```
    /// use cashews::key::KeyBuf;
    /// use cashews::pattern::matches;
    ///
    /// let mut key = KeyBuf::for_pattern();
    /// key.literal("user:*");
    /// assert_eq!(key.finish(), "user:*");
    ///
    /// // `dir\{id}:*` with `id = "*"` matches only `dir\*:…`, never every `dir\…` key.
    /// let mut key = KeyBuf::for_pattern();
    /// key.literal(r"dir\");
    /// key.part("*");
    /// key.literal(":*");
    /// let pattern = key.finish();
    /// assert!(matches(&pattern, r"dir\*:1"));
    /// assert!(!matches(&pattern, r"dir\secret:1"));
    /// ```
    #[inline]
    pub fn literal(&mut self, text: &str) {
        self.out.push_str(text);
    }

    /// Appends a value rendered by [`KeyPart`], escaped in a pattern.
    ///
    /// ```
    /// let mut key = cashews::key::KeyBuf::new();
    /// key.part(&Some(["a", "b"]));
    /// assert_eq!(key.finish(), "a:b");
    /// ```
    #[inline]
    pub fn part<T: KeyPart + ?Sized>(&mut self, value: &T) {
        if self.pattern {
            self.seal_literal();
        }
        let start = self.out.len();
        value.write_key(&mut self.out);
        if self.pattern {
            self.escape_from(start);
        }
    }

    /// Appends an already rendered value (a filter's output), escaped in a pattern.
    ///
    /// ```
    /// let mut key = cashews::key::KeyBuf::for_pattern();
    /// key.text("[1]");
    /// assert_eq!(key.finish(), r"\[1\]");
    /// ```
    pub fn text(&mut self, text: &str) {
        if self.pattern {
            self.seal_literal();
        }
        let start = self.out.len();
        self.out.push_str(text);
        if self.pattern {
            self.escape_from(start);
        }
    }

    /// Appends the value of `name` in the current task's key context (what `{@:get(name)}`
    /// renders), escaped in a pattern; nothing when it is not set. No intermediate string.
    ///
    /// ```
    /// use cashews::key::{KeyBuf, context::with_key_context};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let key = with_key_context([("client_id", 135)], async {
    ///     let mut key = KeyBuf::new();
    ///     key.literal("user:");
    ///     key.context_value("client_id");
    ///     key.literal(":");
    ///     key.context_value("missing");
    ///     key.finish()
    /// })
    /// .await;
    /// assert_eq!(key, "user:135:");
    /// # }
    /// ```
    pub fn context_value(&mut self, name: &str) {
        if self.pattern {
            self.seal_literal();
        }
        let start = self.out.len();
        if super::context::write_value(name, &mut self.out) && self.pattern {
            self.escape_from(start);
        }
    }

    /// The key written so far.
    ///
    /// ```
    /// let mut key = cashews::key::KeyBuf::new();
    /// key.literal("a:");
    /// assert_eq!(key.as_str(), "a:");
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.out
    }

    /// The finished key (or pattern).
    ///
    /// ```
    /// let mut key = cashews::key::KeyBuf::new();
    /// key.part(&true);
    /// assert_eq!(key.finish(), "true");
    /// ```
    #[must_use]
    #[inline]
    pub fn finish(self) -> String {
        self.out
    }

    /// Escapes the glob metacharacters written since `start`; allocates only when there is
    /// one. The next template text starts after it.
    fn escape_from(&mut self, start: usize) {
        let tail = self.out.get(start..).unwrap_or_default();
        if !crate::pattern::is_literal(tail) || tail.contains(']') {
            let escaped = crate::pattern::escape(tail);
            self.out.truncate(start);
            self.out.push_str(&escaped);
        }
        self.literal_start = self.out.len();
    }

    /// Ends the template text written since the last value so that no glob construct it opened
    /// reaches into the value about to be written: a trailing `\` that escapes nothing gets a
    /// second `\` (a literal backslash), and a `[` whose class is not closed gets a `\`
    /// before it (a literal `[`). Without this, `dir\` followed by the escaped value `\*`
    /// would read `dir\\*`: an escaped backslash, then a wildcard made of user input.
    fn seal_literal(&mut self) {
        let mut from = self.literal_start;
        loop {
            match open_construct(self.out.get(from..).unwrap_or_default()) {
                None => break,
                Some(Open::Escape) => {
                    self.out.push('\\');
                    break;
                }
                Some(Open::Class(at)) => {
                    self.out.insert(from + at, '\\');
                    // Scan again after the `\[`: what was inside the class is now text.
                    from += at + 2;
                }
            }
        }
        self.literal_start = self.out.len();
    }
}

impl KeyBuf {
    // ----- default keys (their rules: `super::defaults`) -----

    /// An empty buffer with `prefix` and [`SEPARATOR`](super::SEPARATOR) written (nothing for
    /// an empty prefix): what an attribute's `prefix = "..."` argument starts the key with.
    ///
    /// ```
    /// use cashews::key::KeyBuf;
    /// let mut key = KeyBuf::with_prefix("v2");
    /// key.literal("user");
    /// assert_eq!(key.finish(), "v2:user");
    /// assert_eq!(KeyBuf::with_prefix("").finish(), "");
    /// ```
    #[must_use]
    #[inline]
    pub fn with_prefix(prefix: &str) -> Self {
        let mut buf = Self::with_capacity(64);
        if !prefix.is_empty() {
            buf.literal(prefix);
            buf.literal(super::SEPARATOR);
        }
        buf
    }

    /// Appends the start of a free function's default key: its module path and name
    /// (`app::users:profile`). Pass `module_path!()`.
    ///
    /// ```
    /// let mut key = cashews::key::KeyBuf::new();
    /// key.function("app::users", "profile");
    /// assert_eq!(key.finish(), "app::users:profile");
    /// ```
    #[inline]
    pub fn function(&mut self, module: &str, name: &str) {
        self.literal(module);
        self.literal(super::SEPARATOR);
        self.literal(name);
    }

    /// Appends the start of a method's default key: the module path, the type's name (with
    /// its generic arguments, every path shortened to its last segment) and the method's name
    /// (`app::users:Repo.profile`), so methods of two types in one module do not share keys.
    /// Pass `module_path!()` and `std::any::type_name::<Self>()`.
    ///
    /// ```
    /// let mut key = cashews::key::KeyBuf::new();
    /// key.method("app", "app::Page<alloc::string::String>", "items");
    /// assert_eq!(key.finish(), "app:Page<String>.items");
    /// ```
    #[inline]
    pub fn method(&mut self, module: &str, type_name: &'static str, name: &str) {
        self.literal(module);
        self.literal(super::SEPARATOR);
        self.literal(&super::defaults::type_label(type_name));
        self.literal(".");
        self.literal(name);
    }

    /// Appends one argument of a default key: `:name:` and the value rendered by [`KeyPart`].
    ///
    /// ```
    /// let mut key = cashews::key::KeyBuf::new();
    /// key.function("app", "search");
    /// key.arg("query", "rust");
    /// key.arg("page", &2);
    /// assert_eq!(key.finish(), "app:search:query:rust:page:2");
    /// ```
    #[inline]
    pub fn arg<T: KeyPart + ?Sized>(&mut self, name: &str, value: &T) {
        self.literal(super::SEPARATOR);
        self.literal(name);
        self.literal(super::SEPARATOR);
        self.part(value);
    }
}

/// A glob construct left open at the end of some template text.
enum Open {
    /// A `\` that escapes nothing.
    Escape,
    /// A `[` at this byte offset whose class has no `]`.
    Class(usize),
}

/// The construct `text` leaves open, read as Redis reads a glob (`\x` escapes `x`, inside a
/// class too; a class runs from `[` to the next unescaped `]`).
fn open_construct(text: &str) -> Option<Open> {
    let bytes = text.as_bytes();
    let mut class_start = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if i + 1 == bytes.len() => {
                return Some(class_start.map_or(Open::Escape, Open::Class));
            }
            b'\\' => i += 2,
            b'[' if class_start.is_none() => {
                class_start = Some(i);
                i += 1;
            }
            b']' => {
                class_start = None;
                i += 1;
            }
            _ => i += 1,
        }
    }
    class_start.map(Open::Class)
}
