//! Glob patterns: scan, delete_match, character classes, escapes, batch sizes.

use std::collections::BTreeSet;
use std::time::Duration;

use cashews::backend::SetOptions;
use cashews::{Backend, Result};
use futures_util::StreamExt;

use crate::Harness;

const HOUR: Option<Duration> = Some(Duration::from_secs(3600));

async fn scan_set<B: Backend>(b: &B, pattern: &str, batch: usize) -> Result<BTreeSet<String>> {
    let keys: Vec<Result<String>> = b.scan(pattern, batch).collect().await;
    let keys = keys.into_iter().collect::<Result<Vec<String>>>()?;
    let set: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(set.len(), keys.len(), "scan yielded a key twice: {keys:?}");
    Ok(set)
}

async fn fill<B: Backend + Clone>(h: &Harness<B>, names: &[&str]) -> Result<()> {
    for name in names {
        h.backend()
            .set(&h.key(name), "v".into(), SetOptions::ttl(HOUR))
            .await?;
    }
    Ok(())
}

const PREF: [&str; 6] = [
    "pref:test:test",
    "pref:value:test",
    "pref:-:test",
    "pref:*:test",
    "ppref:test:test",
    "pref:test:tests",
];

/// `scan("pref:*:test")` yields exactly the four matching keys.
///
/// # Errors
///
/// A backend error.
pub async fn scan_glob<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    fill(&h, &PREF).await?;
    let found = scan_set(h.backend(), &h.pattern("pref:*:test"), 100).await?;
    let want: BTreeSet<String> = PREF[..4].iter().map(|n| h.key(n)).collect();
    assert_eq!(found, want);
    let none = scan_set(h.backend(), &h.pattern("not_exists:*"), 100).await?;
    assert!(none.is_empty());
    Ok(())
}

/// `delete_match("pref:*:test")` removes exactly the four matching keys.
///
/// # Errors
///
/// A backend error.
pub async fn delete_match_glob<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    fill(&h, &PREF).await?;
    assert_eq!(
        h.backend().delete_match(&h.pattern("pref:*:test")).await?,
        4
    );
    for (i, name) in PREF.iter().enumerate() {
        let exists = h.backend().exists(&h.key(name)).await?;
        assert_eq!(exists, i >= 4, "{name}");
    }
    assert_eq!(h.backend().delete_match(&h.pattern("nothing:*")).await?, 0);
    Ok(())
}

/// `?`, `[abc]`, `[a-c]`, `[^a]` and `\` escapes behave as in Redis; an escaped `*` matches
/// only a literal star, so user input can never widen a delete.
///
/// # Errors
///
/// A backend error.
pub async fn glob_classes_and_escapes<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    fill(
        &h,
        &["a1", "b1", "c1", "d1", "a12", "*", "x*y", "xzy", "q?", "q1"],
    )
    .await?;
    let b = h.backend();
    let names = |set: BTreeSet<String>| -> BTreeSet<String> {
        set.into_iter()
            .map(|k| k[h.prefix().len() + 1..].to_owned())
            .collect()
    };
    let expect =
        |list: &[&str]| -> BTreeSet<String> { list.iter().map(|s| (*s).to_owned()).collect() };
    let cases: [(&str, &[&str]); 7] = [
        ("?1", &["a1", "b1", "c1", "d1", "q1"]),
        ("[abc]1", &["a1", "b1", "c1"]),
        ("[a-c]1", &["a1", "b1", "c1"]),
        ("[^a]1", &["b1", "c1", "d1", "q1"]),
        ("\\*", &["*"]),
        ("x\\*y", &["x*y"]),
        ("q\\?", &["q?"]),
    ];
    for (pattern, want) in cases {
        let found = names(scan_set(b, &h.pattern(pattern), 100).await?);
        assert_eq!(found, expect(want), "pattern {pattern:?}");
    }
    assert_eq!(b.delete_match(&h.pattern("x\\*y")).await?, 1);
    assert!(
        b.exists(&h.key("xzy")).await?,
        "an escaped * must not match z"
    );
    Ok(())
}

/// Any batch size yields every key once: 1, 7, 100 and 10,000 over 250 keys.
///
/// # Errors
///
/// A backend error.
pub async fn scan_batch_sizes<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let names: Vec<String> = (0..250).map(|i| format!("k:{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    fill(&h, &refs).await?;
    for batch in [1, 7, 100, 10_000] {
        let found = scan_set(h.backend(), &h.pattern("k:*"), batch).await?;
        assert_eq!(found.len(), 250, "batch size {batch}");
    }
    assert_eq!(h.backend().delete_match(&h.pattern("k:*")).await?, 250);
    assert!(
        scan_set(h.backend(), &h.pattern("k:*"), 100)
            .await?
            .is_empty()
    );
    Ok(())
}
