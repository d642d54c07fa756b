//! Typed values through a [`cashews::Cache`] on the backend under test: the codec's
//! promises (round trips, signing, compression, schema changes, tampering) hold on every
//! backend, not only in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::time::Duration;

use cashews::{Backend, Bytes, Cache, Result};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{CountingOrigin, Harness};

/// Wrapper options tried by the round-trip cases: plain, signed with each digest, compressed.
const CODECS: [&str; 7] = [
    "mem://",
    "mem://?secret=s3cr3t&digestmod=md5",
    "mem://?secret=s3cr3t&digestmod=sha1",
    "mem://?secret=s3cr3t&digestmod=sha256",
    "mem://?compress_type=gzip&compress_min_size=0",
    "mem://?secret=s3cr3t&compress_type=zlib&compress_min_size=0",
    "mem://?pickle_type=json&secret=s3cr3t",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    tags: Vec<String>,
}

async fn roundtrip<T>(cache: &Cache, key: &str, value: &T, codec: &str) -> Result<()>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    cache.set(key, value, "1h").await?;
    let back: Option<T> = cache.get(key).await?;
    assert_eq!(
        back.as_ref(),
        Some(value),
        "set/get of {value:?} with {codec}"
    );
    let many: Vec<Option<T>> = cache.get_many(&[key]).await?;
    assert_eq!(many.len(), 1);
    assert_eq!(
        many[0].as_ref(),
        Some(value),
        "get_many of {value:?} with {codec}"
    );
    cache.set_many(&[(key, value)], "1h").await?;
    let back: Option<T> = cache.get(key).await?;
    assert_eq!(
        back.as_ref(),
        Some(value),
        "set_many/get of {value:?} with {codec}"
    );
    Ok(())
}

/// Every kind of value round-trips through set/get and set_many/get_many, plain, signed with
/// md5, sha1 or sha256, compressed, and as JSON.
///
/// # Errors
///
/// A backend or codec error.
pub async fn typed_roundtrip<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    for (i, codec) in CODECS.iter().enumerate() {
        let cache = h.cache_from_url(codec)?;
        let k = |name: &str| h.key(&format!("{i}:{name}"));
        roundtrip(&cache, &k("s"), &"test".to_owned(), codec).await?;
        roundtrip(&cache, &k("s11"), &"1_1".to_owned(), codec).await?;
        roundtrip(&cache, &k("empty"), &String::new(), codec).await?;
        roundtrip(&cache, &k("digits"), &"1".to_owned(), codec).await?;
        for n in [0_i64, 1, 2, -5, i64::MAX, i64::MIN] {
            roundtrip(&cache, &k(&format!("i{n}")), &n, codec).await?;
        }
        roundtrip(&cache, &k("u"), &u64::MAX, codec).await?;
        roundtrip(&cache, &k("f"), &1.234_f64, codec).await?;
        roundtrip(&cache, &k("t"), &true, codec).await?;
        roundtrip(&cache, &k("false"), &false, codec).await?;
        roundtrip(&cache, &k("none"), &Option::<i32>::None, codec).await?;
        roundtrip(&cache, &k("some"), &Some(3_i32), codec).await?;
        roundtrip(&cache, &k("bytes"), &b"1_1_1".to_vec(), codec).await?;
        roundtrip(
            &cache,
            &k("map"),
            &BTreeMap::from([("hi".to_owned(), true)]),
            codec,
        )
        .await?;
        roundtrip(&cache, &k("vec0"), &Vec::<String>::new(), codec).await?;
        roundtrip(
            &cache,
            &k("vec"),
            &vec!["test".to_owned(), "to".to_owned()],
            codec,
        )
        .await?;
        roundtrip(&cache, &k("set"), &BTreeSet::from([1, 2, 5]), codec).await?;
        roundtrip(&cache, &k("pairs"), &vec![(1, 2), (3, 4)], codec).await?;
        let user = User {
            id: 7,
            name: "caf\u{e9}".to_owned(),
            tags: vec!["a".to_owned(); 300],
        };
        roundtrip(&cache, &k("user"), &user, codec).await?;
    }
    Ok(())
}

/// `incr` counters read back as integers; data that is not a value of the type asked for is a
/// miss, never a wrong value.
///
/// # Errors
///
/// A backend or codec error.
pub async fn typed_counters_and_raw<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let cache = h.cache_from_url("mem://")?;
    let (key, key2) = (h.key("key"), h.key("key2"));
    assert_eq!(cache.incr(&key).await?, 1);
    cache.incr_bits(&key2, &[0], 1, 1).await?;
    let got: Vec<Option<i64>> = cache.get_many(&[&key, &key2]).await?;
    assert_eq!(got, vec![Some(1), None]);
    let matched: Vec<Result<(String, i64)>> = cache.get_match(&h.pattern("*")).collect().await;
    let matched = matched.into_iter().collect::<Result<Vec<_>>>()?;
    assert_eq!(matched, vec![(key.clone(), 1)]);
    assert_eq!(cache.incr_by(&key, 6, "1h").await?, 7);
    assert_eq!(cache.get::<i64>(&key).await?, Some(7));

    let bytes_key = h.key("bytes");
    cache.set(&bytes_key, &b"10".to_vec(), "1h").await?;
    assert_eq!(
        cache.get::<Vec<u8>>(&bytes_key).await?,
        Some(b"10".to_vec())
    );
    assert_eq!(
        cache.get::<i64>(&bytes_key).await?,
        None,
        "bytes are not an integer"
    );
    Ok(())
}

/// `Cache::expire(key, 0)` (and `None`) removes the TTL and keeps the value; a missing key
/// answers `false`.
///
/// # Errors
///
/// A backend or codec error.
pub async fn typed_expire_zero_persists<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    use cashews::backend::Expiry;
    let cache = h.cache_from_url("mem://")?;
    let key = h.key("key");
    cache.set(&key, "v", "1h").await?;
    assert!(cache.expire(&key, 0).await?);
    assert_eq!(cache.get_expire(&key).await?, Expiry::Persistent);
    assert_eq!(cache.get::<String>(&key).await?.as_deref(), Some("v"));
    assert!(cache.expire(&key, "1h").await?);
    assert!(cache.expire(&key, None::<u64>).await?);
    assert_eq!(cache.get_expire(&key).await?, Expiry::Persistent);
    assert!(!cache.expire(&h.key("missing"), 0).await?);
    assert!(!cache.exists(&h.key("missing")).await?);
    cache.delete(&key).await?;
    Ok(())
}

/// `get_match` yields exactly the matching keys with their values.
///
/// # Errors
///
/// A backend or codec error.
pub async fn typed_get_match<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let cache = h.cache_from_url("mem://?secret=s3cr3t")?;
    let names = [
        "pref:test:test",
        "pref:value:test",
        "pref:-:test",
        "pref:*:test",
        "ppref:test:test",
        "pref:test:tests",
    ];
    for (i, name) in names.iter().enumerate() {
        cache.set(&h.key(name), &format!("v{i}"), "1h").await?;
    }
    let found: Vec<Result<(String, String)>> =
        cache.get_match(&h.pattern("pref:*:test")).collect().await;
    let mut found = found.into_iter().collect::<Result<Vec<_>>>()?;
    found.sort();
    let mut want: Vec<(String, String)> = names[..4]
        .iter()
        .enumerate()
        .map(|(i, n)| (h.key(n), format!("v{i}")))
        .collect();
    want.sort();
    assert_eq!(found, want);
    let none: Vec<Result<(String, String)>> =
        cache.get_match(&h.pattern("not_exists:*")).collect().await;
    assert!(none.is_empty());
    Ok(())
}

/// Under a secret, a value copied to another key, and raw data that only looks signed, are
/// misses for get, get_many and get_match.
///
/// # Errors
///
/// A backend or codec error.
pub async fn typed_tampered_is_miss<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let cache = h.cache_from_url("mem://?secret=s3cr3t&digestmod=md5")?;
    let (key, copy) = (h.key("key"), h.key("replace"));
    cache.set(&key, &"value".to_owned(), "1h").await?;
    let raw = cache.get_raw(&key).await?;
    let Some(raw) = raw else {
        panic!("set_raw/get_raw lost the value");
    };
    cache.set_raw(&copy, raw.clone(), "1h").await?;
    assert_eq!(
        cache.get::<String>(&copy).await?,
        None,
        "a signature is bound to its key"
    );
    assert_eq!(cache.get::<String>(&key).await?, Some("value".to_owned()));
    let mut flipped = raw.to_vec();
    if let Some(last) = flipped.last_mut() {
        *last ^= 1;
    }
    cache.set_raw(&key, Bytes::from(flipped), "1h").await?;
    assert_eq!(cache.get::<String>(&key).await?, None, "a flipped bit");
    let shapes = ["_x", ":_x", "md5:_x", "sha1:_x", "__x", "nopickledata", ""];
    for (i, shape) in shapes.iter().enumerate() {
        let k = h.key(&format!("raw{i}"));
        cache.set_raw(&k, Bytes::from(*shape), "1h").await?;
        assert_eq!(cache.get::<String>(&k).await?, None, "{shape:?}");
        assert_eq!(
            cache.get_many::<String>(&[&k]).await?,
            vec![None],
            "{shape:?}"
        );
    }
    let matched: Vec<Result<(String, String)>> =
        cache.get_match(&h.pattern("raw*")).collect().await;
    let matched = matched.into_iter().collect::<Result<Vec<_>>>()?;
    assert!(
        matched.is_empty(),
        "get_match yielded tampered values: {matched:?}"
    );
    Ok(())
}

/// Caches with different codec settings on one storage: signed values are a miss without the
/// secret; another digest's signature is accepted only when listed in `accept_digestmods`
/// (the stored value must not pick a weaker digest); compression is recorded in the value,
/// so any cache reads it.
///
/// # Errors
///
/// A backend or codec error.
pub async fn typed_codec_mix<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let plain = h.cache_from_url("mem://")?;
    let md5 = h.cache_from_url("mem://?secret=s3cr3t&digestmod=md5")?;
    let sha256 = h.cache_from_url("mem://?secret=s3cr3t&digestmod=sha256")?;
    let migrating =
        h.cache_from_url("mem://?secret=s3cr3t&digestmod=sha256&accept_digestmods=md5")?;
    let gzip = h.cache_from_url("mem://?compress_type=gzip&compress_min_size=0")?;
    let key = h.key("k");
    md5.set(&key, &"signed".to_owned(), "1h").await?;
    assert_eq!(
        plain.get::<String>(&key).await?,
        None,
        "signed, read without the secret"
    );
    assert_eq!(sha256.get::<String>(&key).await?, None, "md5 not accepted");
    assert_eq!(
        migrating.get::<String>(&key).await?,
        Some("signed".to_owned())
    );
    plain.set(&key, &"plain".to_owned(), "1h").await?;
    assert_eq!(
        md5.get::<String>(&key).await?,
        None,
        "unsigned, read with a secret"
    );
    assert_eq!(gzip.get::<String>(&key).await?, Some("plain".to_owned()));
    gzip.set(&key, &"zipped".repeat(50), "1h").await?;
    assert_eq!(plain.get::<String>(&key).await?, Some("zipped".repeat(50)));
    Ok(())
}

#[derive(Debug, Serialize, Deserialize)]
struct SchemaV1 {
    test: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct SchemaV2 {
    name: String,
}

/// A value written under an older shape of a struct is a miss under the new shape, and a value
/// written under the new shape reads fine.
///
/// # Errors
///
/// A backend or codec error.
pub async fn typed_schema_change_is_miss<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    for codec in ["mem://", "mem://?pickle_type=json"] {
        let cache = h.cache_from_url(codec)?;
        let key = h.key(codec);
        cache
            .set(
                &key,
                &SchemaV1 {
                    test: "old".to_owned(),
                },
                "1h",
            )
            .await?;
        assert_eq!(cache.get::<SchemaV2>(&key).await?, None, "{codec}");
        let new = SchemaV2 {
            name: "new".to_owned(),
        };
        cache.set(&key, &new, "1h").await?;
        assert_eq!(cache.get::<SchemaV2>(&key).await?, Some(new), "{codec}");
    }
    Ok(())
}

/// 1,000 concurrent `get_or_set` callers on a cold key run the origin once and all get its
/// value; later callers hit.
///
/// # Errors
///
/// A backend or codec error.
pub async fn typed_get_or_set_single_flight<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let cache = h.cache_from_url("mem://")?;
    let key = h.key("cold");
    let origin = CountingOrigin::new(Duration::from_millis(50));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..1_000 {
        let (cache, key, origin) = (cache.clone(), key.clone(), origin.clone());
        tasks.spawn(async move {
            cache
                .get_or_set(&key, "1h", move || async move { origin.call(42_u32).await })
                .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.map_err(crate::join_error)??, 42);
    }
    assert_eq!(origin.calls(), 1, "the origin ran more than once");
    let again: u32 = cache.get_or_set(&key, "1h", || async { 0 }).await?;
    assert_eq!((again, origin.calls()), (42, 1));
    Ok(())
}

/// A lock guard holds the lock until released; `is_locked` with a wait on a free key answers
/// at once.
///
/// # Errors
///
/// A backend error.
pub async fn typed_lock_guard<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let cache = h.cache_from_url("mem://")?;
    let key = h.key("lock");
    let guard = cache.lock(&key, "10s").await?;
    assert!(cache.is_locked(&key).await?);
    assert!(cache.try_lock(&key, "10s").await.is_err(), "a held lock");
    assert!(guard.release().await?);
    assert!(!cache.is_locked(&key).await?);
    let free = cache
        .is_locked_wait(&h.key("nolock"), Duration::from_secs(3_600))
        .await?;
    assert!(!free);
    Ok(())
}

/// `get_shared` reads what `set` wrote, follows later writes and deletes, and misses on data
/// of another type, on every backend.
///
/// # Errors
///
/// A backend or codec error.
pub async fn typed_get_shared<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let cache = h.cache_from_url("mem://?secret=s3cr3t")?;
    let key = h.key("u");
    let user = |id| User {
        id,
        name: "n".to_owned(),
        tags: vec![],
    };
    assert_eq!(cache.get_shared::<User>(&key).await?, None);
    cache.set(&key, &user(1), "1h").await?;
    assert_eq!(
        cache.get_shared::<User>(&key).await?.as_deref(),
        Some(&user(1))
    );
    assert_eq!(
        cache.get_shared::<User>(&key).await?.as_deref(),
        Some(&user(1))
    );
    cache.set(&key, &user(2), "1h").await?;
    assert_eq!(
        cache.get_shared::<User>(&key).await?.as_deref(),
        Some(&user(2))
    );
    assert_eq!(
        cache.get_shared::<Vec<u64>>(&key).await?,
        None,
        "another type"
    );
    cache.delete(&key).await?;
    assert_eq!(cache.get_shared::<User>(&key).await?, None);
    Ok(())
}
