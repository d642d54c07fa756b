//! The fuzz corpora (`fuzz/corpus/<target>/`, kept by `cargo fuzz` runs) replayed through the
//! same property checks as the fuzz targets, on the stable toolchain.

use std::path::PathBuf;

/// Runs `check` on every file of the corpus of `target`; returns how many there were.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", file.display());
    }
    files.len()
}

#[test]
fn url_corpus_never_shows_a_secret() {
    assert!(replay("url", cashews_testkit::fuzz::url) > 0);
}

#[test]
fn ttl_corpus_reads_back() {
    assert!(replay("ttl", cashews_testkit::fuzz::ttl) > 0);
}

#[test]
fn template_corpus_patterns_match_only_their_key() {
    assert!(replay("template", cashews_testkit::fuzz::template) > 0);
}

#[test]
fn decode_corpus_never_reads_unsigned_values_on_signed_caches() {
    assert!(replay("decode", cashews_testkit::fuzz::decode) > 0);
}
