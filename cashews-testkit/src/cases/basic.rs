//! Plain reads and writes: get, set and its conditions, batches, delete, exists, ping.

use std::time::Duration;

use cashews::backend::{Condition, SetOptions};
use cashews::{Backend, Bytes, Result};

use crate::Harness;

const HOUR: Option<Duration> = Some(Duration::from_secs(3600));

/// A missing key reads as `None` and does not exist.
///
/// # Errors
///
/// A backend error.
pub async fn get_missing<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    assert_eq!(b.get(&h.key("missing")).await?, None);
    assert!(!b.exists(&h.key("missing")).await?);
    Ok(())
}

/// Values round-trip byte for byte: empty, binary (NUL, 0xFF, invalid UTF-8), text, 1 MiB.
///
/// # Errors
///
/// A backend error.
pub async fn set_get_roundtrip<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let values: [&[u8]; 5] = [
        b"",
        b"\x00\xff\xfe\x00",
        "cafe: \u{e9}".as_bytes(),
        b"10",
        &big,
    ];
    for (i, value) in values.into_iter().enumerate() {
        let key = h.key(&format!("v{i}"));
        assert!(
            b.set(&key, Bytes::copy_from_slice(value), SetOptions::ttl(HOUR))
                .await?
        );
        let back = b.get(&key).await?;
        assert_eq!(back.as_deref(), Some(value), "value {i} did not round-trip");
    }
    Ok(())
}

/// Keys are opaque text: spaces, unicode, glob characters and colons are stored as written.
///
/// # Errors
///
/// A backend error.
pub async fn keys_are_opaque<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let names = [
        "with space",
        "caf\u{e9}:\u{1f600}",
        "glob*?[x]\\",
        "a:b:c",
        "",
    ];
    for (i, name) in names.iter().enumerate() {
        let key = h.key(name);
        b.set(&key, Bytes::from(i.to_string()), SetOptions::ttl(HOUR))
            .await?;
    }
    for (i, name) in names.iter().enumerate() {
        let back = b.get(&h.key(name)).await?;
        assert_eq!(back, Some(Bytes::from(i.to_string())), "key {name:?}");
    }
    Ok(())
}

/// A second set replaces the value.
///
/// # Errors
///
/// A backend error.
pub async fn set_overwrites<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("k");
    assert!(b.set(&key, "one".into(), SetOptions::ttl(HOUR)).await?);
    assert!(b.set(&key, "two".into(), SetOptions::ttl(HOUR)).await?);
    assert_eq!(b.get(&key).await?, Some(Bytes::from("two")));
    Ok(())
}

/// SET NX writes only when absent, SET XX only when present.
///
/// # Errors
///
/// A backend error.
pub async fn set_conditions<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let (key, key2) = (h.key("key"), h.key("key2"));
    let xx = SetOptions::ttl(HOUR).condition(Condition::IfPresent);
    let nx = SetOptions::ttl(HOUR).condition(Condition::IfAbsent);
    assert!(b.set(&key, "value".into(), SetOptions::ttl(HOUR)).await?);
    assert!(b.set(&key, "V".into(), xx).await?, "XX on a present key");
    assert_eq!(b.get(&key).await?, Some(Bytes::from("V")));
    assert!(
        !b.set(&key2, "value".into(), xx).await?,
        "XX on a missing key"
    );
    assert!(
        !b.exists(&key2).await?,
        "a refused XX must not create the key"
    );
    assert!(
        b.set(&key2, "value".into(), nx).await?,
        "NX on a missing key"
    );
    assert!(
        !b.set(&key2, "value2".into(), nx).await?,
        "NX on a present key"
    );
    assert_eq!(b.get(&key2).await?, Some(Bytes::from("value")));
    Ok(())
}

/// `get_many` answers in the order asked, with `None` for missing keys.
///
/// # Errors
///
/// A backend error.
pub async fn get_many_in_order<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let (a, missing, c) = (h.key("a"), h.key("missing"), h.key("c"));
    b.set(&a, "A".into(), SetOptions::ttl(HOUR)).await?;
    b.set(&c, "C".into(), SetOptions::ttl(HOUR)).await?;
    let got = b.get_many(&[&c, &missing, &a, &a]).await?;
    assert_eq!(
        got,
        vec![Some("C".into()), None, Some("A".into()), Some("A".into())]
    );
    assert_eq!(b.get_many(&[]).await?, Vec::<Option<Bytes>>::new());
    Ok(())
}

/// `set_many` writes every pair with the TTL given.
///
/// # Errors
///
/// A backend error.
pub async fn set_many_writes_all<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let (k1, k2) = (h.key("key1"), h.key("key2"));
    b.set_many(
        &[(&k1, "value1".into()), (&k2, "value2".into())],
        Some(Duration::from_secs(60)),
    )
    .await?;
    assert_eq!(
        b.get_many(&[&k1, &k2]).await?,
        vec![Some("value1".into()), Some("value2".into())]
    );
    for key in [&k1, &k2] {
        match b.get_expire(key).await? {
            cashews::backend::Expiry::In(left) => {
                assert!(left <= Duration::from_secs(60) && left > Duration::from_secs(50));
            }
            other => panic!("set_many TTL not applied to {key}: {other:?}"),
        }
    }
    b.set_many(&[], None).await?;
    Ok(())
}

/// `delete` says whether the key existed; `delete_many` counts.
///
/// # Errors
///
/// A backend error.
pub async fn delete_and_delete_many<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let keys: Vec<String> = (1..=4).map(|i| h.key(&format!("key{i}"))).collect();
    for key in &keys[..3] {
        b.set(key, "v".into(), SetOptions::ttl(HOUR)).await?;
    }
    assert_eq!(b.delete_many(&[&keys[0], &keys[1], &keys[3]]).await?, 2);
    assert_eq!(
        b.get_many(&[&keys[0], &keys[1], &keys[2]]).await?,
        vec![None, None, Some("v".into())]
    );
    assert!(b.delete(&keys[2]).await?);
    assert!(!b.delete(&keys[2]).await?, "a second delete finds nothing");
    assert_eq!(b.delete_many(&[]).await?, 0);
    Ok(())
}

/// `exists` follows set and delete.
///
/// # Errors
///
/// A backend error.
pub async fn exists_follows_writes<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("k");
    assert!(!b.exists(&key).await?);
    b.set(&key, Bytes::new(), SetOptions::ttl(HOUR)).await?;
    assert!(b.exists(&key).await?, "an empty value still exists");
    b.delete(&key).await?;
    assert!(!b.exists(&key).await?);
    Ok(())
}

/// `ping` answers PONG, or echoes a message.
///
/// # Errors
///
/// A backend error.
pub async fn ping_answers<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    assert_eq!(b.ping(b"").await?, Bytes::from("PONG"));
    assert_eq!(b.ping(b"PING").await?, Bytes::from("PONG"));
    assert_eq!(b.ping(b"hi").await?, Bytes::from("hi"));
    Ok(())
}

/// A set without TTL makes the key persistent, even over a key that had one.
///
/// # Errors
///
/// A backend error.
pub async fn set_without_ttl_persists<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("k");
    b.set(
        &key,
        "a".into(),
        SetOptions::ttl(Some(Duration::from_secs(30))),
    )
    .await?;
    b.set(&key, "b".into(), SetOptions::ttl(None)).await?;
    assert_eq!(
        b.get_expire(&key).await?,
        cashews::backend::Expiry::Persistent
    );
    b.delete(&key).await?;
    Ok(())
}
