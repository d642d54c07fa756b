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
    /// ```
    /// let mut key = cashews::key::KeyBuf::for_pattern();
    /// key.literal("user:*");
    /// assert_eq!(key.finish(), "user:*");
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
    /// one.
    fn escape_from(&mut self, start: usize) {
        let tail = self.out.get(start..).unwrap_or_default();
        if crate::pattern::is_literal(tail) && !tail.contains(']') {
            return;
        }
        let escaped = crate::pattern::escape(tail);
        self.out.truncate(start);
        self.out.push_str(&escaped);
    }
}
