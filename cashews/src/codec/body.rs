//! Deserializing an envelope's body into `T`: no trailing bytes, no field that `T` would ignore,
//! and error reasons that never quote the stored value.

use std::cell::Cell;

use serde::de::DeserializeOwned;

use super::miss::Miss;
use super::{Format, ignored};

/// Deserializes a body, refusing trailing bytes and (with `track_ignored`) fields that `T`
/// would ignore.
pub(super) fn deserialize<T: DeserializeOwned>(
    format: Format,
    body: &[u8],
    track_ignored: bool,
) -> Result<T, Miss> {
    let ignored = Cell::new(false);
    let value = match format {
        Format::MsgPack => {
            let mut de = rmp_serde::Deserializer::from_read_ref(body);
            // rmp-serde allows 1024 levels, enough for a hostile body to overflow a thread's
            // stack; serde_json stops at 128, and so do we.
            de.set_max_depth(MAX_DEPTH);
            let value: Result<T, _> = if track_ignored {
                ignored::deserialize(&mut de, &ignored)
            } else {
                T::deserialize(&mut de)
            };
            let value = value.map_err(|e| Miss::Body(format, msgpack_reason(&e)))?;
            if !at_end(&mut de) {
                return Err(Miss::Trailing(format));
            }
            value
        }
        Format::Json => {
            let mut de = serde_json::Deserializer::from_slice(body);
            let value: Result<T, _> = if track_ignored {
                ignored::deserialize(&mut de, &ignored)
            } else {
                T::deserialize(&mut de)
            };
            let value = value.map_err(|e| Miss::Body(format, json_reason(&e)))?;
            de.end().map_err(|_| Miss::Trailing(format))?;
            value
        }
    };
    if ignored.get() {
        // Which field was ignored is not known (the tracker keeps no path): a path could hold
        // map keys, which are data, and would not be logged anyway.
        return Err(Miss::SchemaChanged);
    }
    Ok(value)
}

/// Whether a MessagePack deserializer has read its whole input. The zero-copy reader, which
/// borrows strings instead of copying them through a buffer, does not say where it stopped:
/// asked for one more value, it must find no byte to read the value's marker from. Constant
/// time at the end; bytes after the value (a value or garbage) give any other answer. (A
/// scan that measured the value before decoding it cost a tenth of a typed read.)
fn at_end<'de, R: rmp_serde::decode::ReadSlice<'de>>(de: &mut rmp_serde::Deserializer<R>) -> bool {
    matches!(
        <serde::de::IgnoredAny as serde::Deserialize>::deserialize(de),
        Err(rmp_serde::decode::Error::InvalidMarkerRead(error))
            if error.kind() == std::io::ErrorKind::UnexpectedEof
    )
}

/// The deepest nesting a MessagePack body may have (serde_json's own limit is the same).
const MAX_DEPTH: usize = 128;

/// A log-safe description of a MessagePack decoding error.
fn msgpack_reason(e: &rmp_serde::decode::Error) -> String {
    use rmp_serde::decode::Error as E;
    match e {
        E::InvalidMarkerRead(_) | E::InvalidDataRead(_) => "the body is truncated".to_owned(),
        E::TypeMismatch(marker) => format!("type mismatch at marker {marker:?}"),
        E::OutOfRange => "a number is out of range for the requested type".to_owned(),
        E::LengthMismatch(n) => format!("a length of {n} does not match the requested type"),
        E::Utf8Error(_) => "a string is not UTF-8".to_owned(),
        E::DepthLimitExceeded => "the body is nested too deeply".to_owned(),
        E::Uncategorized(msg) | E::Syntax(msg) => safe_serde_message(msg),
    }
}

/// A log-safe description of a JSON decoding error.
fn json_reason(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = format!("line {} column {}", e.line(), e.column());
    match e.classify() {
        Category::Io | Category::Eof => format!("the body is truncated ({at})"),
        Category::Syntax => format!("the body is not valid JSON ({at})"),
        Category::Data => {
            let full = e.to_string();
            let msg = full
                .strip_suffix(&format!(" at {at}"))
                .unwrap_or(full.as_str());
            format!("{} ({at})", safe_serde_message(msg))
        }
    }
}

/// Keeps the parts of a serde error message that come from the requested type, never from the
/// stored data: serde's `invalid type: string "…"` quotes the value.
fn safe_serde_message(msg: &str) -> String {
    const FROM_THE_TYPE: [&str; 3] = ["missing field `", "duplicate field `", "invalid length "];
    if FROM_THE_TYPE.iter().any(|p| msg.starts_with(p)) && !msg.contains('"') {
        return msg.to_owned();
    }
    for (prefix, what) in [
        ("invalid type: ", "invalid type"),
        ("invalid value: ", "invalid value"),
        ("unknown variant ", "unknown variant"),
        ("unknown field ", "unknown field"),
    ] {
        if msg.starts_with(prefix) {
            // `expected …` is written last and describes the type; the unexpected part before
            // it may be the value itself.
            return match msg.rfind(", expected ") {
                Some(i) => format!("{what}{}", &msg[i..]),
                None => what.to_owned(),
            };
        }
    }
    "the body does not match the requested type".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_never_quote_the_value() {
        let msg = r#"invalid type: string "s3cret, expected x", expected u32"#;
        assert_eq!(safe_serde_message(msg), "invalid type, expected u32");
        assert_eq!(
            safe_serde_message("missing field `name`"),
            "missing field `name`"
        );
        assert_eq!(
            safe_serde_message("something \"odd\""),
            "the body does not match the requested type"
        );
    }

    /// A MessagePack body with anything after its value is refused: another value, a lone
    /// marker, a truncated value, garbage; with and without the schema check.
    #[test]
    fn bytes_after_a_msgpack_value_are_refused() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
        struct User {
            id: u64,
            tags: Vec<String>,
            nick: Option<String>,
        }
        let user = User {
            id: 7,
            tags: vec!["a".to_owned(), "b".to_owned()],
            nick: None,
        };
        let body = rmp_serde::to_vec_named(&user).unwrap();
        let tails: [&[u8]; 5] = [&[0xC0], &[0x01, 0x02], &[0xA3, b'a'], &[0xC1], &body];
        for track_ignored in [true, false] {
            assert_eq!(
                deserialize::<User>(Format::MsgPack, &body, track_ignored).ok(),
                Some(user.clone()),
                "the whole value reads"
            );
            for tail in tails {
                let longer = [&body[..], tail].concat();
                assert!(
                    matches!(
                        deserialize::<User>(Format::MsgPack, &longer, track_ignored),
                        Err(Miss::Trailing(Format::MsgPack))
                    ),
                    "{tail:?} after the value ({track_ignored})"
                );
            }
            let string = rmp_serde::to_vec("v").unwrap();
            assert_eq!(
                deserialize::<String>(Format::MsgPack, &string, track_ignored).ok(),
                Some("v".to_owned())
            );
        }
    }
}
