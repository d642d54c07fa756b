//! Key filters: the built-ins as functions, `apply`, and registering custom filters.

use cashews::Error;
use cashews::key::filter::{self, apply, register_filter, registered_filters};

use super::{JWT, render_template};

#[test]
fn builtin_filters_as_functions() {
    assert_eq!(filter::lower("ÀB"), "àb");
    assert_eq!(filter::upper("ab"), "AB");
    assert_eq!(filter::len("né"), "2");
    assert_eq!(filter::len(""), "0");
    assert_eq!(
        filter::hash("test", "sha1").unwrap(),
        "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"
    );
    assert_eq!(
        filter::hash("", "sha256").unwrap(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let err = filter::hash("test", "SHA256").unwrap_err();
    assert!(matches!(err, Error::InvalidKeyTemplate { .. }));
    assert!(
        err.to_string()
            .contains("unknown hash algorithm `SHA256`: use one of `md5`, `sha1`, `sha256`"),
        "{err}"
    );
}

#[test]
fn jwt_reads_standard_and_url_safe_payloads() {
    assert_eq!(filter::jwt(JWT, "user"), "test");
    assert_eq!(filter::jwt(JWT, "absent"), "");
    // {"sub":"a?b>","n":5,"ok":true,"obj":{"x":1}} in URL-safe base64 without padding.
    let payload = "eyJzdWIiOiJhP2I-IiwibiI6NSwib2siOnRydWUsIm9iaiI6eyJ4IjoxfX0";
    let token = format!("h.{payload}.sig");
    assert_eq!(filter::jwt(&token, "sub"), "a?b>");
    assert_eq!(filter::jwt(&token, "n"), "5");
    assert_eq!(filter::jwt(&token, "ok"), "true");
    assert_eq!(filter::jwt(&token, "obj"), r#"{"x":1}"#);
    // The same payload in the standard alphabet, padded.
    let standard = format!("h.{}==.sig", payload.replace('-', "+"));
    assert_eq!(filter::jwt(&standard, "sub"), "a?b>");
    for broken in ["", "no-dots", "a.!!!.c", "a.bm90IGpzb24.c", "a.WzFd.c"] {
        assert_eq!(filter::jwt(broken, "sub"), "", "{broken}");
    }
}

#[test]
fn apply_dispatches_to_builtins_and_custom_filters() {
    assert_eq!(apply("lower", "AB", &[]).unwrap(), "ab");
    assert_eq!(apply("upper", "ab", &[]).unwrap(), "AB");
    assert_eq!(apply("len", "abc", &[]).unwrap(), "3");
    assert_eq!(
        apply("hash", "test", &[]).unwrap(),
        "098f6bcd4621d373cade4e832627b4f6"
    );
    assert_eq!(apply("jwt", JWT, &["user"]).unwrap(), "test");
    register_filter("keys_test_prefix", |text, args| {
        let n = args.first().and_then(|n| n.parse().ok()).unwrap_or(1);
        text.chars().take(n).collect::<String>().to_uppercase()
    })
    .unwrap();
    assert_eq!(apply("keys_test_prefix", "abcdef", &["4"]).unwrap(), "ABCD");
    assert_eq!(
        render_template("{a:keys_test_prefix(2)}", &[("a", &"xyz")]),
        "XY"
    );
    assert!(registered_filters().contains(&"keys_test_prefix".to_owned()));
}

#[test]
fn apply_rejects_unknown_filters_wrong_arity_and_get() {
    register_filter("keys_test_listed", |text, _| text.to_owned()).unwrap();
    let err = apply("lowr", "x", &[]).unwrap_err().to_string();
    assert!(err.contains("unknown filter `lowr`"), "{err}");
    assert!(
        err.contains("`lower`, `upper`, `len`, `hash`, `jwt`, `get`"),
        "{err}"
    );
    assert!(err.contains("`keys_test_listed`"), "{err}");

    let err = apply("lower", "x", &["y"]).unwrap_err().to_string();
    assert!(err.contains("`lower` takes 0 arguments but got 1"), "{err}");
    let err = apply("jwt", "x", &[]).unwrap_err().to_string();
    assert!(err.contains("write `jwt(claim)`"), "{err}");
    let err = apply("get", "x", &["name"]).unwrap_err().to_string();
    assert!(err.contains("{@:get(name)}"), "{err}");
}

#[test]
fn register_filter_refuses_builtin_names_and_bad_identifiers() {
    for name in ["lower", "upper", "len", "hash", "jwt", "get"] {
        let err = register_filter(name, |text, _| text.to_owned()).unwrap_err();
        assert!(matches!(err, Error::InvalidOption { .. }), "{name}");
        assert!(err.to_string().contains("not a built-in filter"), "{err}");
    }
    for name in ["", "1abc", "a-b", "a b", "é", "a(b)"] {
        let err = register_filter(name, |text, _| text.to_owned()).unwrap_err();
        assert!(err.to_string().contains("an identifier"), "{name:?}: {err}");
    }
    // Built-ins still work as before.
    assert_eq!(apply("lower", "X", &[]).unwrap(), "x");
    register_filter("_ok_Name9", |text, _| text.to_owned()).unwrap();
}

#[test]
fn registering_a_name_again_replaces_the_filter() {
    register_filter("keys_test_replace", |_, _| "one".to_owned()).unwrap();
    register_filter("keys_test_replace", |_, _| "two".to_owned()).unwrap();
    assert_eq!(apply("keys_test_replace", "", &[]).unwrap(), "two");
}
