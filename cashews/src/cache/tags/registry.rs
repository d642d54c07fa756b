//! The in-process tag registry: which tags a key belongs to, computed from its
//! text, so deleting a key can take it out of its tag sets.
//!
//! `register_tag("user:{id}", "profile:{id}:{lang}")` says: a key that matches the key
//! template belongs to the tag rendered from the fields the key template captured.
//!
//! # Matching
//!
//! A key template is compiled to a list of literal and field parts and matched against the
//! whole key by a small backtracking matcher, not a regex: the only operators needed are
//! "exact text" and "any text", so a regex engine (and its compile time) buys nothing. The
//! semantics are those of Python's full-match pattern `literal(?P<field>.+)?literal…`:
//!
//! - literal text matches exactly ([PORT]: Python leaves `.` unescaped, a wildcard, by
//!   accident; here `key.{id}` does not match `keyX1`);
//! - a field matches any text, possibly empty (then the capture is missing and renders
//!   empty), greedily: of several ways to split a key, the earlier field takes the most;
//! - a field's name is its root and path (`data.first`, `items[0]`, `m[k]` for
//!   `{m:get(k)}`); its filters are ignored, so `{i:len}` captures as `i` what the key holds
//!   there. `{data.first}` and `{data.second}` are distinct (Python #397). When a name
//!   appears twice, its first non-empty capture counts;
//! - a key-context field (`{@:get(name)}`, `{@}`) matches any text and captures nothing.
//!
//! Failed (part, position) pairs are remembered, so a key is matched in at most
//! parts × length steps however many fields the template has.
//!
//! # Rendering
//!
//! A tag field takes the capture of the same name, then applies the tag's own filters to that
//! text. A field the key template does not have reads the key context: `{@:get(name)}`
//! always, and a plain `{name}` falls back to the context value `name` (as Python's formatter
//! does), else renders empty.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use cashews_syntax::{Access, Field, FilterArg, Root, Segment, Template, parse_template};
use foldhash::fast::FixedState;
use parking_lot::Mutex;

use crate::key::{context, filter, render};
use crate::{Error, Result};

/// Tags and the key templates they are registered against, in registration order.
#[derive(Default)]
pub(crate) struct Registry {
    /// Whether anything is registered: the one atomic load every delete pays.
    active: AtomicBool,
    /// Grouped by tag, tags in order of first registration. Rarely written, read on every
    /// delete once active: readers never wait for a writer.
    entries: ArcSwap<Vec<TagEntry>>,
    /// Serializes writers (each copies `entries`), and remembers every macro call site
    /// registered, so each is parsed once per cache.
    writer: Mutex<HashSet<StaticId, FixedState>>,
    /// The same call sites for the macros' repeat path, readable without the lock;
    /// allocated by the first macro registration.
    sites: OnceLock<Box<[Site]>>,
}

/// `(key template ptr, len, tags ptr, len)`: the identity of one macro call site's static
/// arguments. `'static` data is never freed, so an address never names other text.
type StaticId = (usize, usize, usize, usize);

/// Slots of [`Registry::sites`] (a power of two): 8 KiB, for caches used by macros only.
const SITES: usize = 256;

/// Slots probed from a call site's hash before giving up (then the lock is taken).
const PROBES: usize = 8;

/// One remembered call site. Written once under the writer lock, `key` last (release), so a
/// reader that sees `key` (acquire) sees the rest; `key == 0` is an empty slot.
#[derive(Default)]
struct Site {
    key: AtomicUsize,
    key_len: AtomicUsize,
    tags: AtomicUsize,
    tags_len: AtomicUsize,
}

impl Site {
    #[inline]
    fn holds(&self, id: &StaticId) -> Option<bool> {
        match self.key.load(Ordering::Acquire) {
            0 => None,
            key => Some(
                key == id.0
                    && self.key_len.load(Ordering::Relaxed) == id.1
                    && self.tags.load(Ordering::Relaxed) == id.2
                    && self.tags_len.load(Ordering::Relaxed) == id.3,
            ),
        }
    }
}

/// The first slot to probe for a call site: a multiplicative hash of its addresses.
#[inline]
fn slot_of(id: &StaticId) -> usize {
    let mixed = (id.0 ^ id.2.rotate_left(29)) as u64;
    (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SITES.trailing_zeros())) as usize
}

#[derive(Clone)]
struct TagEntry {
    source: String,
    tag: Vec<TagPart>,
    keys: Vec<KeyPattern>,
}

#[derive(Clone)]
enum TagPart {
    Literal(String),
    Field(TagField),
}

#[derive(Clone)]
struct TagField {
    source: Source,
    filters: Vec<TagFilter>,
}

#[derive(Clone)]
enum Source {
    /// The capture of this name; a plain name falls back to the key context.
    Capture { name: String, plain: bool },
    /// `{@:get(name)}`.
    ContextValue(String),
    /// `{@}`.
    Context,
}

#[derive(Clone)]
struct TagFilter {
    name: String,
    args: Vec<TagArg>,
}

#[derive(Clone)]
enum TagArg {
    Text(String),
    Field(TagField),
}

/// A compiled key template.
#[derive(Clone)]
struct KeyPattern {
    source: String,
    parts: Vec<KeyPart>,
    /// The distinct capture names; `KeyPart::Field(Some(i))` captures into slot `i`.
    names: Vec<String>,
}

#[derive(Clone)]
enum KeyPart {
    Literal(String),
    Field(Option<usize>),
}

impl Registry {
    /// Whether any tag is registered (one atomic load).
    #[inline]
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Registers `tag` against `key`; registering the same pair again does nothing.
    /// `check_filters`: reject filters that are neither built in nor registered (the macros
    /// checked theirs at compile time, against filters that may be registered later).
    pub(crate) fn register(&self, tag: &str, key: &str, check_filters: bool) -> Result<()> {
        let compiled = compile(tag, key, check_filters)?;
        let _writer = self.writer.lock();
        self.insert(compiled);
        Ok(())
    }

    /// Adds a compiled pair unless present; the caller holds `writer`.
    fn insert(&self, (tag, pattern): (TagEntry, KeyPattern)) {
        let current = self.entries.load();
        if let Some(entry) = current.iter().find(|e| e.source == tag.source)
            && entry.keys.iter().any(|k| k.source == pattern.source)
        {
            return;
        }
        let mut next: Vec<TagEntry> = Vec::clone(&current);
        match next.iter_mut().find(|e| e.source == tag.source) {
            Some(entry) => entry.keys.push(pattern),
            None => next.push(TagEntry {
                keys: vec![pattern],
                ..tag
            }),
        }
        self.entries.store(Arc::new(next));
        self.active.store(true, Ordering::Release);
    }

    /// Registers each of `tags` against `key` once per cache and call site. The macros call
    /// this on every decorated call, so the repeat path reads a few words of this cache's
    /// call-site table (plain loads, no lock, nothing written).
    #[inline]
    pub(crate) fn register_static(&self, key: &'static str, tags: &'static [&'static str]) {
        let id: StaticId = (
            key.as_ptr() as usize,
            key.len(),
            tags.as_ptr() as usize,
            tags.len(),
        );
        if !self.site_known(&id) {
            self.register_site(id, key, tags);
        }
    }

    #[inline]
    fn site_known(&self, id: &StaticId) -> bool {
        let Some(sites) = self.sites.get() else {
            return false;
        };
        let first = slot_of(id);
        for probe in 0..PROBES {
            match sites[(first + probe) % SITES].holds(id) {
                Some(true) => return true,
                Some(false) => {}
                None => return false,
            }
        }
        false
    }

    /// A call site not in the table: register its tags unless done (another thread, or a
    /// full probe run), and remember it.
    #[cold]
    #[inline(never)]
    fn register_site(&self, id: StaticId, key: &'static str, tags: &'static [&'static str]) {
        // One lock around check and registration: a concurrent first call of the same call
        // site returns only once the tags are registered.
        let mut writer = self.writer.lock();
        if !writer.insert(id) {
            return;
        }
        for tag in tags {
            match compile(tag, key, false) {
                Ok(compiled) => self.insert(compiled),
                Err(error) => {
                    tracing::error!(%error, "could not register a tag; deleting its keys will not clean the tag up");
                }
            }
        }
        let sites = self
            .sites
            .get_or_init(|| (0..SITES).map(|_| Site::default()).collect());
        let first = slot_of(&id);
        // Past `PROBES` taken slots the call site is not memoized: its calls take the lock
        // and find it in `writer`. That needs over 200 call sites on one cache.
        if let Some(site) = (0..PROBES)
            .map(|probe| &sites[(first + probe) % SITES])
            .find(|site| site.key.load(Ordering::Relaxed) == 0)
        {
            site.key_len.store(id.1, Ordering::Relaxed);
            site.tags.store(id.2, Ordering::Relaxed);
            site.tags_len.store(id.3, Ordering::Relaxed);
            site.key.store(id.0, Ordering::Release);
        }
    }

    /// The tags `key` belongs to, rendered, in registration order, without repeats.
    pub(crate) fn key_tags(&self, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        if !self.is_active() {
            return out;
        }
        let entries = self.entries.load();
        let mut captures = Vec::new();
        for entry in entries.iter() {
            for pattern in &entry.keys {
                captures.clear();
                captures.resize(pattern.names.len(), None);
                if pattern.matches(key, &mut captures) {
                    let tag = render_tag(&entry.tag, pattern, &captures);
                    if !out.contains(&tag) {
                        out.push(tag);
                    }
                }
            }
        }
        out
    }
}

/// Parses and compiles a `(tag, key template)` pair; the entry holds no key patterns yet.
fn compile(tag: &str, key: &str, check_filters: bool) -> Result<(TagEntry, KeyPattern)> {
    let invalid = |template: &str, reason: String| Error::InvalidKeyTemplate {
        template: template.to_owned(),
        reason,
    };
    let parsed_tag = parse_template(tag).map_err(|e| invalid(tag, format!("as a tag: {e}")))?;
    if check_filters {
        let custom = filter::registered_filters();
        let custom: Vec<&str> = custom.iter().map(String::as_str).collect();
        parsed_tag
            .check_filters(&custom)
            .map_err(|e| invalid(tag, format!("as a tag: {e}")))?;
    }
    let parsed_key =
        parse_template(key).map_err(|e| invalid(key, format!("as a key template: {e}")))?;
    let entry = TagEntry {
        source: tag.to_owned(),
        tag: compile_tag(&parsed_tag),
        keys: Vec::new(),
    };
    Ok((entry, KeyPattern::compile(key, &parsed_key)))
}

/// A field's capture name and the filters left to apply after the ones the name absorbed
/// (`{m:get(k)}` reads `m[k]`, as the macros do); `None` for the key context.
fn capture_name(field: &Field) -> Option<(String, usize)> {
    let mut name = match &field.root {
        Root::Context => return None,
        root => root.to_string(),
    };
    for access in &field.path {
        name.push_str(&access.to_string());
    }
    match field.filters.first() {
        Some(first) if first.name == "get" => {
            if let Some(FilterArg::Text(key)) = first.args.first() {
                name.push_str(&Access::Key(key.clone()).to_string());
            }
            Some((name, 1))
        }
        _ => Some((name, 0)),
    }
}

fn compile_tag(template: &Template) -> Vec<TagPart> {
    template
        .segments
        .iter()
        .map(|segment| match segment {
            Segment::Literal(text) => TagPart::Literal(text.clone()),
            Segment::Field(field) => TagPart::Field(compile_field(field)),
        })
        .collect()
}

fn compile_field(field: &Field) -> TagField {
    let (source, skip) = match capture_name(field) {
        Some((name, skip)) => (
            Source::Capture {
                plain: field.path.is_empty() && skip == 0 && matches!(field.root, Root::Arg(_)),
                name,
            },
            skip,
        ),
        None => match field.filters.first() {
            Some(first) if first.name == "get" => {
                let name = match first.args.first() {
                    Some(FilterArg::Text(name)) => name.clone(),
                    _ => String::new(),
                };
                (Source::ContextValue(name), 1)
            }
            _ => (Source::Context, 0),
        },
    };
    let filters = field.filters[skip..]
        .iter()
        .map(|f| TagFilter {
            name: f.name.clone(),
            args: f
                .args
                .iter()
                .map(|arg| match arg {
                    FilterArg::Text(text) => TagArg::Text(text.clone()),
                    FilterArg::Field(nested) => TagArg::Field(compile_field(nested)),
                })
                .collect(),
        })
        .collect();
    TagField { source, filters }
}

fn render_tag(tag: &[TagPart], pattern: &KeyPattern, captures: &[Option<&str>]) -> String {
    let mut out = String::new();
    for part in tag {
        match part {
            TagPart::Literal(text) => out.push_str(text),
            TagPart::Field(field) => out.push_str(&field_text(field, pattern, captures)),
        }
    }
    out
}

fn field_text(field: &TagField, pattern: &KeyPattern, captures: &[Option<&str>]) -> String {
    let mut text = match &field.source {
        Source::Capture { name, plain } => match pattern.names.iter().position(|n| n == name) {
            Some(slot) => captures[slot].unwrap_or_default().to_owned(),
            None if *plain => context::get(name).unwrap_or_default(),
            None => String::new(),
        },
        Source::ContextValue(name) => context::get(name).unwrap_or_default(),
        Source::Context => render(&context::snapshot()),
    };
    for f in &field.filters {
        let args: Vec<String> = f
            .args
            .iter()
            .map(|arg| match arg {
                TagArg::Text(text) => text.clone(),
                TagArg::Field(nested) => field_text(nested, pattern, captures),
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        text = filter::apply(&f.name, &text, &args).unwrap_or_else(|error| {
            tracing::error!(%error, "tag template filter failed; the part renders empty");
            String::new()
        });
    }
    text
}

impl KeyPattern {
    fn compile(source: &str, template: &Template) -> Self {
        let mut names: Vec<String> = Vec::new();
        let parts = template
            .segments
            .iter()
            .map(|segment| match segment {
                Segment::Literal(text) => KeyPart::Literal(text.clone()),
                Segment::Field(field) => KeyPart::Field(capture_name(field).map(|(name, _)| {
                    names.iter().position(|n| *n == name).unwrap_or_else(|| {
                        names.push(name);
                        names.len() - 1
                    })
                })),
            })
            .collect();
        Self {
            source: source.to_owned(),
            parts,
            names,
        }
    }

    /// Whether the whole `key` matches; on a match, `captures` (one slot per name) holds each
    /// name's first non-empty capture.
    fn matches<'k>(&self, key: &'k str, captures: &mut [Option<&'k str>]) -> bool {
        // Cheap rejections first: most registered templates start or end with text.
        if let Some(KeyPart::Literal(first)) = self.parts.first()
            && !key.starts_with(first.as_str())
        {
            return false;
        }
        if let Some(KeyPart::Literal(last)) = self.parts.last()
            && !key.ends_with(last.as_str())
        {
            return false;
        }
        let mut matcher = Matcher {
            parts: &self.parts,
            key,
            failed: Vec::new(),
        };
        matcher.run(0, 0, captures)
    }
}

struct Matcher<'p, 'k> {
    parts: &'p [KeyPart],
    key: &'k str,
    /// Failed `(part, position)` pairs, `(key.len() + 1)` per part; allocated on the first
    /// failure after a field. Matching never depends on captures, so a failure is final.
    failed: Vec<bool>,
}

impl<'k> Matcher<'_, 'k> {
    fn run(&mut self, part: usize, pos: usize, captures: &mut [Option<&'k str>]) -> bool {
        let key = self.key;
        let Some(current) = self.parts.get(part) else {
            return pos == key.len();
        };
        match current {
            KeyPart::Literal(text) => {
                key[pos..].starts_with(text.as_str())
                    && self.run(part + 1, pos + text.len(), captures)
            }
            KeyPart::Field(slot) => {
                if part + 1 == self.parts.len() {
                    Self::capture(*slot, &key[pos..], captures);
                    return true;
                }
                if self.has_failed(part, pos) {
                    return false;
                }
                // Candidate ends, longest first (greedy): where the next literal occurs, or
                // every character boundary when another field follows.
                let next_literal = match &self.parts[part + 1] {
                    KeyPart::Literal(text) => Some(text.as_bytes()),
                    KeyPart::Field(_) => None,
                };
                let rest = &key.as_bytes()[pos..];
                for end in (0..=rest.len()).rev() {
                    let candidate = match next_literal {
                        // A literal is valid UTF-8 starting with a lead byte, so where it
                        // occurs is a character boundary.
                        Some(literal) => rest[end..].starts_with(literal),
                        None => key.is_char_boundary(pos + end),
                    };
                    if candidate && self.run(part + 1, pos + end, captures) {
                        Self::capture(*slot, &key[pos..pos + end], captures);
                        return true;
                    }
                }
                self.set_failed(part, pos);
                false
            }
        }
    }

    /// Called while unwinding a successful match, last field first: the earliest non-empty
    /// capture of a name is written last and wins.
    fn capture(slot: Option<usize>, text: &'k str, captures: &mut [Option<&'k str>]) {
        if let Some(slot) = slot
            && !text.is_empty()
        {
            captures[slot] = Some(text);
        }
    }

    fn has_failed(&self, part: usize, pos: usize) -> bool {
        !self.failed.is_empty() && self.failed[part * (self.key.len() + 1) + pos]
    }

    fn set_failed(&mut self, part: usize, pos: usize) {
        let width = self.key.len() + 1;
        if self.failed.is_empty() {
            self.failed = vec![false; self.parts.len() * width];
        }
        self.failed[part * width + pos] = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(registry: &Registry, key: &str) -> Vec<String> {
        registry.key_tags(key)
    }

    #[test]
    fn greedy_split_and_missing_captures() {
        let r = Registry::default();
        r.register("{a}|{b}", "{a}:{b}", true).unwrap();
        assert_eq!(tags(&r, "x:y:z"), ["x:y|z"]);
        assert_eq!(tags(&r, ":"), ["|"]);
        assert_eq!(tags(&r, "xyz"), Vec::<String>::new());
        r.register("{a}/{b}", "{a}{b}", true).unwrap();
        assert_eq!(tags(&r, "ab"), ["ab/"]);
    }

    #[test]
    fn overlapping_literals_backtrack() {
        let r = Registry::default();
        r.register("{a}", "{a}aa{b}aab", true).unwrap();
        assert_eq!(tags(&r, "xaaaab"), ["x"]);
        assert_eq!(tags(&r, "aaaab"), [""]);
    }

    #[test]
    fn pathological_keys_stay_linear_per_part() {
        let r = Registry::default();
        // Without the failure memo this is O(len^4): it would not finish.
        r.register("t", "{a}x{b}x{c}x{d}z{e}", true).unwrap();
        let key = "x".repeat(2000);
        assert!(tags(&r, &key).is_empty());
    }

    #[test]
    fn more_call_sites_than_the_table_holds() {
        let r = Registry::default();
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let sites: Vec<(&'static str, &'static [&'static str])> = (0..SITES + 100)
            .map(|i| {
                let tags: &'static [&'static str] =
                    Box::leak(vec![leak(format!("t{i}"))].into_boxed_slice());
                (leak(format!("k{i}:{{a}}")), tags)
            })
            .collect();
        for _ in 0..3 {
            for (key, tags) in &sites {
                r.register_static(key, tags);
            }
        }
        assert_eq!(r.entries.load().len(), SITES + 100);
        for i in [0, 1, SITES - 1, SITES, SITES + 99] {
            assert_eq!(tags(&r, &format!("k{i}:x")), [format!("t{i}")]);
        }
    }

    #[test]
    fn concurrent_first_calls_register_once() {
        static KEY: &str = "c:{a}";
        static TAGS: &[&str] = &["c", "c:{a}"];
        let r = Registry::default();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    r.register_static(KEY, TAGS);
                    // Every caller returns after the registration, not during it.
                    assert_eq!(r.key_tags("c:1"), ["c", "c:1"]);
                });
            }
        });
        assert_eq!(r.entries.load().len(), 2);
    }

    #[test]
    fn multibyte_text() {
        let r = Registry::default();
        r.register("{a}-{b}", "{a}{b}é", true).unwrap();
        assert_eq!(tags(&r, "ñé"), ["ñ-"]);
    }
}
