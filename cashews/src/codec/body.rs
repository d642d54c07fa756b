//! Deserializing an envelope's body into `T`: no trailing bytes, no field that `T` would ignore,
//! and error reasons that never quote the stored value.

use std::cell::Cell;

use serde::de::DeserializeOwned;

use super::miss::Miss;
use super::{Format, ignored, skim};

/// Deserializes a body, refusing trailing bytes and, for a `foreign` body (one that may come
/// from outside this process: another version of the code, another writer), fields that `T`
/// would ignore.
///
/// A MessagePack body's trailing bytes are looked for by measuring the value first, which
/// costs a walk over it; a body that is not `foreign` was encoded whole by this process, and
/// skips that walk.
pub(super) fn deserialize<T: DeserializeOwned>(
    format: Format,
    body: &[u8],
    foreign: bool,
) -> Result<T, Miss> {
    let track_ignored = foreign;
    let ignored = Cell::new(false);
    let value = match format {
        Format::MsgPack => {
            // The zero-copy reader borrows strings instead of copying them through a buffer,
            // but cannot say where it stopped: measure the value first (a body of this
            // process counts as measured).
            let whole = if foreign {
                skim::value_len(body)
            } else {
                Some(body.len())
            };
            if whole.is_some_and(|len| len != body.len()) {
                return Err(Miss::Trailing(format));
            }
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
            if whole.is_none() {
                // rmp-serde accepted what the scan could not measure: refuse it all the same.
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

    /// A foreign MessagePack body is measured, and refused with bytes after its value; a body
    /// of this process (encoded whole) is read without the walk that measures it.
    #[test]
    fn only_a_foreign_msgpack_body_is_measured_for_trailing_bytes() {
        let mut body = rmp_serde::to_vec("v").unwrap();
        assert_eq!(
            deserialize::<String>(Format::MsgPack, &body, true).ok(),
            Some("v".to_owned())
        );
        body.push(0xC0);
        assert!(matches!(
            deserialize::<String>(Format::MsgPack, &body, true),
            Err(Miss::Trailing(Format::MsgPack))
        ));
        assert_eq!(
            deserialize::<String>(Format::MsgPack, &body, false).ok(),
            Some("v".to_owned()),
            "not measured"
        );
    }
}
