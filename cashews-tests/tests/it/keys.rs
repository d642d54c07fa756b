//! `cashews::key`: value rendering (SPEC §4.3), filters (§4.5, §4.6), key context (§4.7),
//! run-time templates and glob-safe patterns; SPEC §9 "Keys" cases 55-63.

mod filters;
mod key_context;

use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use cashews::key::context::with_key_context;
use cashews::key::filter::register_filter;
use cashews::key::{KeyBuf, KeyBytes, KeyError, KeyPart, KeyTemplate, render};
use cashews::{Cache, Error};

const JWT: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoidGVzdCJ9.n75bSCIEuSemX5iop0sCF3HmXwMQWF1zI6TzckzHUKY";

fn render_template(template: &str, args: &[(&str, &dyn KeyPart)]) -> String {
    KeyTemplate::parse(template).unwrap().render(args).unwrap()
}

fn template_error(template: &str, args: &[(&str, &dyn KeyPart)]) -> String {
    let err = KeyTemplate::parse(template)
        .and_then(|t| t.render(args))
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidKeyTemplate { .. }),
        "{template}: {err:?}"
    );
    err.to_string()
}

#[derive(Debug)]
struct ValueError(&'static str);

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ValueError {}

#[derive(Debug)]
struct CustomError<T>(T);

impl<T: fmt::Debug> fmt::Display for CustomError<T> {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

impl<T: fmt::Debug> std::error::Error for CustomError<T> {}

// ---- SPEC §4.3 rendering rules ----

#[test]
fn none_and_unit_render_empty() {
    assert_eq!(render(&None::<i32>), "");
    assert_eq!(render(&()), "");
    assert_eq!(render(&Some(5)), "5");
    assert_eq!(render(&Some(Some("x"))), "x");
}

#[test]
fn strings_render_as_themselves_without_escaping() {
    assert_eq!(render("!@#$%^&*()"), "!@#$%^&*()");
    assert_eq!(render(&String::from("s")), "s");
    assert_eq!(render(&Cow::Borrowed("cow")), "cow");
    assert_eq!(render(&'c'), "c");
    assert_eq!(
        render_template("!@#$%^&*():{kwarg1}", &[("kwarg1", &"!@#$%^&*()")]),
        "!@#$%^&*():!@#$%^&*()"
    );
}

#[test]
fn booleans_render_lowercase() {
    assert_eq!(render(&true), "true");
    assert_eq!(render(&false), "false");
}

#[test]
fn numbers_render_in_standard_decimal_form() {
    assert_eq!(render(&1234), "1234");
    assert_eq!(render(&-7i8), "-7");
    assert_eq!(render(&u128::MAX), u128::MAX.to_string());
    assert_eq!(render(&1usize), "1");
    assert_eq!(render(&1.5), "1.5");
    assert_eq!(render(&1.2f32), "1.2");
    assert_eq!(render(&0.1f64), "0.1");
}

#[test]
fn bytes_render_as_utf8_or_lowercase_hex() {
    assert_eq!(render(&KeyBytes(b"a1")), "a1");
    assert_eq!(render(&KeyBytes(b"")), "");
    assert_eq!(render(&KeyBytes(b"\xff\x00")), "ff00");
    // SPEC case 58
    let bytes = [
        0x16, 0x46, 0xBD, 0xB0, 0xCF, 0xCD, 0x4E, 0xD7, 0x59, 0x29, 0xFA, 0x1D, 0x96, 0xB1, 0x75,
        0x81,
    ];
    assert_eq!(
        render(&KeyBytes(&bytes)),
        "1646bdb0cfcd4ed75929fa1d96b17581"
    );
    // u8 is an integer: a Vec<u8> is a sequence of numbers.
    assert_eq!(render(&vec![1u8, 2]), "1:2");
}

#[test]
fn errors_render_type_name_and_message() {
    assert_eq!(render(&KeyError(&ValueError("boom"))), "ValueError:boom");
    assert_eq!(render(&KeyError(&CustomError(1u8))), "CustomError:");
    let parse = "x".parse::<i32>().unwrap_err();
    assert_eq!(
        render(&KeyError(&parse)),
        "ParseIntError:invalid digit found in string"
    );
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(ValueError("boom"));
    assert_eq!(render(&KeyError(&*boxed)), "Error:boom");
}

#[test]
fn sequences_join_with_colons_and_flatten() {
    assert_eq!(render(&(1, (2, 3))), "1:2:3");
    assert_eq!(render(&[1, 2, 3]), "1:2:3");
    assert_eq!(render(&vec!["a", "b"]), "a:b");
    assert_eq!(render(&vec![vec![1, 2], vec![3]]), "1:2:3");
    assert_eq!(render(&VecDeque::from([1, 2])), "1:2");
    assert_eq!(render(&[1, 2][..]), "1:2");
    assert_eq!(render(&Vec::<i32>::new()), "");
    assert_eq!(render(&("a", 1, 1.2, true, None::<u8>)), "a:1:1.2:true:");
    assert_eq!(render(&(1, 2, 3, 4, 5, 6, 7, 8)), "1:2:3:4:5:6:7:8");
    assert_eq!(render(&(1,)), "1");
}

#[test]
fn maps_are_sorted_by_key_each_entry_key_colon_value() {
    let map = BTreeMap::from([("b", Some(1)), ("a", None)]);
    assert_eq!(render(&map), "a::b:1");
    let hash: HashMap<&str, Option<i32>> = HashMap::from([("b", Some(1)), ("a", None)]);
    assert_eq!(render(&hash), "a::b:1");
    assert_eq!(render(&HashMap::from([(1, 1)])), "1:1");
    assert_eq!(render(&BTreeMap::<u8, u8>::new()), "");
    // Heterogeneous values through `&dyn KeyPart`.
    let kwargs: BTreeMap<&str, &dyn KeyPart> =
        BTreeMap::from([("e", &true as &dyn KeyPart), ("d", &1 as &dyn KeyPart)]);
    assert_eq!(render(&kwargs), "d:1:e:true");
}

#[test]
fn hash_collections_render_the_same_whatever_their_order() {
    let words: Vec<String> = (0..50).map(|i| format!("w{i}")).collect();
    let forward: HashSet<&String> = words.iter().collect();
    let mut backward: HashSet<&String, RandomState> = HashSet::with_hasher(RandomState::new());
    backward.extend(words.iter().rev());
    assert_eq!(render(&forward), render(&backward));
    assert_eq!(
        render(&forward),
        render(&words.iter().collect::<BTreeSet<_>>())
    );

    let numbers: HashMap<i32, i32> = (0..50).map(|i| (i, i * 2)).collect();
    let numbers_again: HashMap<i32, i32> = (0..50).rev().map(|i| (i, i * 2)).collect();
    assert_eq!(render(&numbers), render(&numbers_again));
    // Order is by rendered text, for hash and tree collections alike.
    assert_eq!(render(&HashSet::from([2, 10])), "10:2");
    assert_eq!(render(&BTreeSet::from([2, 10])), "10:2");
    assert_eq!(
        render(&numbers),
        render(&numbers.iter().collect::<BTreeMap<_, _>>())
    );
}

#[test]
fn pointers_render_their_target() {
    assert_eq!(render(&Box::new(1)), "1");
    assert_eq!(render(&Arc::new("a")), "a");
    assert_eq!(render(&Rc::new(vec![1, 2])), "1:2");
    let boxed_str: Box<str> = "boxed".into();
    assert_eq!(render(&boxed_str), "boxed");
    let dynamic: &dyn KeyPart = &42;
    assert_eq!(render(dynamic), "42");
    assert_eq!(render(&&&7), "7");
}

#[test]
fn addresses_and_paths_render_with_display() {
    assert_eq!(render(&Ipv4Addr::LOCALHOST), "127.0.0.1");
    assert_eq!(render(&Ipv6Addr::LOCALHOST), "::1");
    assert_eq!(render(&IpAddr::from([10, 0, 0, 1])), "10.0.0.1");
    assert_eq!(
        render(&SocketAddr::from(([127, 0, 0, 1], 6379))),
        "127.0.0.1:6379"
    );
    assert_eq!(render(Path::new("/tmp/a b")), "/tmp/a b");
    assert_eq!(render(&PathBuf::from("rel/x")), "rel/x");
}

#[test]
fn custom_types_implement_key_part() {
    struct Klass;
    impl KeyPart for Klass {
        fn write_key(&self, out: &mut String) {
            out.push_str("hoho");
        }
    }
    // SPEC case 58, second half.
    assert_eq!(render_template("{arg1}", &[("arg1", &Klass)]), "hoho");
    assert_eq!(render(&[Klass, Klass]), "hoho:hoho");
}

#[test]
fn write_key_appends_without_clearing() {
    let mut out = String::from("pre:");
    (1, "a").write_key(&mut out);
    assert_eq!(out, "pre:1:a");
}

// ---- KeyBuf ----

#[test]
fn key_buf_writes_literals_parts_and_text() {
    let mut key = KeyBuf::with_capacity(8);
    assert!(!key.is_pattern());
    key.literal("user:");
    key.part(&7);
    key.literal(":");
    key.text("*");
    assert_eq!(key.as_str(), "user:7:*");
    assert_eq!(key.finish(), "user:7:*");
    assert_eq!(KeyBuf::new().finish(), "");
}

#[test]
fn pattern_buf_escapes_values_but_not_literals() {
    let mut pattern = KeyBuf::for_pattern();
    assert!(pattern.is_pattern());
    pattern.literal("a*?[x]\\:");
    pattern.part("*");
    pattern.literal(":");
    pattern.part(&("?", "[1]"));
    pattern.literal(":");
    pattern.text("back\\slash");
    pattern.literal(":");
    pattern.part("plain");
    pattern.literal(":*");
    assert_eq!(pattern.finish(), r"a*?[x]\:\*:\?:\[1\]:back\\slash:plain:*");
}

#[test]
fn escaped_pattern_matches_only_the_literal_value() {
    use cashews::pattern::matches;
    for value in ["*", "a?", "[ab]", "x\\", "]", "plain"] {
        let mut pattern = KeyBuf::for_pattern();
        pattern.literal("user:");
        pattern.part(value);
        let pattern = pattern.finish();
        assert!(matches(&pattern, &format!("user:{value}")), "{pattern}");
        assert!(!matches(&pattern, "user:1"), "{pattern}");
        assert!(!matches(&pattern, "user:ab"), "{pattern}");
    }
}

#[tokio::test]
async fn a_wildcard_from_user_input_deletes_nothing() {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    cache.set("user:1", &1, "1h").await.unwrap();
    cache.set("user:2", &2, "1h").await.unwrap();

    let user_input = "*";
    let mut pattern = KeyBuf::for_pattern();
    pattern.literal("user:");
    pattern.part(user_input);
    assert_eq!(cache.delete_match(&pattern.finish()).await.unwrap(), 0);
    let pattern = KeyTemplate::parse("user:{id}")
        .unwrap()
        .render_pattern(&[("id", &user_input)])
        .unwrap();
    assert_eq!(cache.delete_match(&pattern).await.unwrap(), 0);
    assert!(cache.exists("user:1").await.unwrap());
    assert!(cache.exists("user:2").await.unwrap());

    // A wildcard in the template text is still a wildcard.
    let pattern = KeyTemplate::parse("user:*")
        .unwrap()
        .render_pattern(&[])
        .unwrap();
    assert_eq!(cache.delete_match(&pattern).await.unwrap(), 2);
    assert!(!cache.exists("user:1").await.unwrap());
}

#[test]
fn render_pattern_escapes_filtered_values_too() {
    register_filter("keys_test_star", |_, _| "*".to_owned()).unwrap();
    let template = KeyTemplate::parse("k:{a:keys_test_star}:{a:upper}:{b}:*").unwrap();
    assert_eq!(
        template
            .render_pattern(&[("a", &"x?"), ("b", &"[b]")])
            .unwrap(),
        r"k:\*:X\?:\[b\]:*"
    );
    assert_eq!(
        template.render(&[("a", &"x?"), ("b", &"[b]")]).unwrap(),
        "k:*:X?:[b]:*"
    );
}

// ---- SPEC §9 Keys cases 55-63 through run-time templates ----

#[test]
fn case_55_extra_args_and_kwargs() {
    let args = ("b", true, 1, 1.2, ("a", 1, 1.2));
    let kwargs: BTreeMap<&str, &dyn KeyPart> =
        BTreeMap::from([("e", &true as &dyn KeyPart), ("d", &1)]);
    assert_eq!(
        render_template(
            "{__args__}:{__kwargs__}",
            &[("__args__", &args), ("__kwargs__", &kwargs)]
        ),
        "b:true:1:1.2:a:1:1.2:d:1:e:true"
    );
}

#[test]
fn case_56_named_kwarg_and_the_rest() {
    let kwargs: BTreeMap<&str, &dyn KeyPart> =
        BTreeMap::from([("e", &true as &dyn KeyPart), ("d", &1)]);
    assert_eq!(
        render_template(
            "{kwarg1}:{__kwargs__}",
            &[("kwarg1", &"k1"), ("__kwargs__", &kwargs)]
        ),
        "k1:d:1:e:true"
    );
}

#[test]
fn case_57_missing_values_render_empty() {
    let none = None::<&str>;
    let template = "{arg1}-{kwarg1}-{kwarg3}";
    assert_eq!(
        render_template(
            template,
            &[
                ("arg1", &KeyBytes(b"a1")),
                ("kwarg1", &none),
                ("kwarg3", &none)
            ]
        ),
        "a1--"
    );
    assert_eq!(
        render_template(
            template,
            &[("arg1", &true), ("kwarg1", &none), ("kwarg3", &none)]
        ),
        "true--"
    );
}

#[tokio::test]
async fn case_59_key_context() {
    let values: [(&str, &dyn KeyPart); 2] = [("context_value", &"context"), ("kwarg1", &"test")];
    with_key_context(values, async {
        let template = KeyTemplate::parse("{@:get(context_value)}:{kwarg}").unwrap();
        assert_eq!(template.render(&[("kwarg", &"1")]).unwrap(), "context:1");
        assert_eq!(template.render(&[("kwarg", &1)]).unwrap(), "context:1");
        assert_eq!(
            template
                .render(&[("kwarg", &BTreeMap::from([(1, 1)]))])
                .unwrap(),
            "context:1:1"
        );
        // The argument wins over the context value of the same name; a missing field is empty.
        assert_eq!(
            render_template(
                "{arg2}-{kwarg1}-{kwarg3}",
                &[("arg2", &2), ("kwarg1", &"k1"), ("kwarg3", &None::<u8>)]
            ),
            "2-k1-"
        );
    })
    .await;
}

#[test]
fn case_60_len_and_hash() {
    assert_eq!(render_template("{kwarg1:len}", &[("kwarg1", &1234)]), "4");
    assert_eq!(render_template("{name:len}", &[("name", &"test")]), "4");
    let md5 = "098f6bcd4621d373cade4e832627b4f6";
    for template in [
        "{kwarg1:hash}",
        "{kwarg1:hash()}",
        "{kwarg1:hash(md5)}",
        "{kwarg1:hash({kwarg2})}",
    ] {
        assert_eq!(
            render_template(template, &[("kwarg1", &"test"), ("kwarg2", &"md5")]),
            md5,
            "{template}"
        );
    }
    assert_eq!(
        render_template("{a:hash}", &[("a", &1)]),
        "c4ca4238a0b923820dcc509a6f75849b"
    );
}

#[test]
fn case_61_chained_builtin_filters() {
    assert_eq!(
        render_template(
            "{x:lower}:{x:upper}:{x:len}:{x:hash(sha256)}",
            &[("x", &"Ab")]
        ),
        "ab:AB:2:025b5573cb68f3af8b09ad8f678555ecb185f7832b0d156800f40c300649a56c"
    );
    // Filters chain left to right.
    assert_eq!(
        render_template("{x:lower:hash}", &[("x", &"TEST")]),
        "098f6bcd4621d373cade4e832627b4f6"
    );
    assert_eq!(render_template("{x:hash:len}", &[("x", &"a")]), "32");
}

#[test]
fn case_62_jwt_and_a_custom_filter_with_a_field_argument() {
    assert_eq!(
        render_template("{kwarg1:jwt(user)}", &[("kwarg1", &JWT)]),
        "test"
    );
    register_filter("call_method", |text, args| match args.first() {
        Some(&"lower") => text.to_lowercase(),
        Some(&"reverse") => text.chars().rev().collect(),
        _ => String::new(),
    })
    .unwrap();
    assert_eq!(
        render_template(
            "{kwarg1:call_method({kwarg2})}",
            &[("kwarg1", &"EXPECT"), ("kwarg2", &"lower")]
        ),
        "expect"
    );
    assert_eq!(
        render_template("{kwarg1:call_method(reverse)}", &[("kwarg1", &"tcepxe")]),
        "expect"
    );
}

#[test]
fn case_63_literal_braces_and_rendering_rules() {
    assert_eq!(
        render_template("{{literal}}:{a}", &[("a", &"abc")]),
        "{literal}:abc"
    );
    assert_eq!(
        render_template("test_key:{name}", &[("name", &"new")]),
        "test_key:new"
    );
    assert_eq!(render_template("{a}", &[("a", &None::<u8>)]), "");
    assert_eq!(render_template("{a}", &[("a", &false)]), "false");
    assert_eq!(
        render_template("{a}", &[("a", &KeyError(&ValueError("boom")))]),
        "ValueError:boom"
    );
    assert_eq!(render_template("{a}", &[("a", &(1, (2, 3)))]), "1:2:3");
    assert_eq!(render_template("{a}", &[("a", &1.5)]), "1.5");
    assert_eq!(
        render_template("{a}", &[("a", &KeyBytes(b"\xff\x00"))]),
        "ff00"
    );
}

// ---- run-time template errors and accessors ----

#[test]
fn syntax_errors_quote_the_template_and_the_problem() {
    let err = template_error("user:{id", &[]);
    assert!(err.contains("`user:{id`"), "{err}");
    assert!(err.contains("at byte 5: unclosed `{`"), "{err}");
    let err = template_error("{0}", &[]);
    assert!(err.contains("{0}"), "{err}");
}

#[test]
fn unknown_filters_are_rejected_at_parse() {
    let err = template_error("k:{a:lowr}", &[("a", &1)]);
    assert!(err.contains("lowr"), "{err}");
    assert!(err.contains("`lower`"), "{err}");
    let err = template_error("{a:lower(x)}", &[]);
    assert!(err.contains("lower"), "{err}");
}

#[test]
fn unknown_hash_algorithms_are_rejected_at_parse_and_at_render() {
    let err = template_error("{a:hash(sha512)}", &[]);
    assert!(err.contains("sha512"), "{err}");
    let template = KeyTemplate::parse("{a:hash({alg})}").unwrap();
    let err = template
        .render(&[("a", &"x"), ("alg", &"sha512")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("`{a:hash({alg})}`"), "{err}");
    assert!(
        err.contains("unknown hash algorithm `sha512`: use one of `md5`, `sha1`, `sha256`"),
        "{err}"
    );
}

#[test]
fn unknown_arguments_list_the_given_names() {
    let err = template_error("k:{usr}", &[("user", &1), ("page", &2)]);
    assert!(
        err.contains("unknown argument `usr`: the given arguments are `user`, `page`"),
        "{err}"
    );
    let err = template_error("k:{a:hash({alg})}", &[("a", &1)]);
    assert!(err.contains("unknown argument `alg`"), "{err}");
    let err = template_error("k:{a}", &[]);
    assert!(err.contains("no arguments were given"), "{err}");
}

#[test]
fn field_access_is_refused_with_advice() {
    let err = template_error("test_key:{user.name}", &[("user", &"x")]);
    assert!(
        err.contains("`{user.name}` reads `.name` of `user`"),
        "{err}"
    );
    assert!(err.contains("`{user_name}`"), "{err}");
    assert!(err.contains("(\"user_name\", &user.name)"), "{err}");
    assert!(err.contains("attribute macro"), "{err}");
    let err = template_error("{a[0]}", &[]);
    assert!(err.contains("`{a_0}`"), "{err}");
    let err = template_error("{h[x-y]}", &[]);
    assert!(err.contains("`{h_x_y}`"), "{err}");
    let err = template_error("{@.name}", &[]);
    assert!(err.contains("reads `.name` of `@`"), "{err}");
    assert!(err.contains("{@:get(name)}"), "{err}");
    let err = template_error("k:{self.id}", &[]);
    assert!(err.contains("at byte 2: `{self.id}`"), "{err}");
}

#[test]
fn get_only_reads_the_context() {
    let err = template_error("{a:get(x)}", &[("a", &1)]);
    assert!(err.contains("write `{@:get(name)}`"), "{err}");
    let err = template_error("{@:lower:get(x)}", &[]);
    assert!(err.contains("must come first"), "{err}");
}

#[test]
fn self_is_an_argument_named_self() {
    assert_eq!(render_template("obj:{self}", &[("self", &3)]), "obj:3");
}

#[test]
fn template_accessors() {
    let template: KeyTemplate = "{b}:{a:hash({c})}:{b}:{@:get(d)}".parse().unwrap();
    assert_eq!(template.roots(), ["b", "a", "c"]);
    assert!(!template.is_constant());
    assert_eq!(template.as_str(), "{b}:{a:hash({c})}:{b}:{@:get(d)}");
    assert_eq!(template.to_string(), template.as_str());
    assert_eq!(template.template().fields().count(), 5);
    let constant = KeyTemplate::parse("users:{{all}}").unwrap();
    assert!(constant.is_constant());
    assert!(constant.roots().is_empty());
    assert_eq!(constant.render(&[]).unwrap(), "users:{all}");
    assert_eq!(constant, KeyTemplate::parse("users:{{all}}").unwrap());
}

#[test]
fn extra_and_duplicate_arguments() {
    // Unused arguments are fine; with duplicates the first wins.
    assert_eq!(
        render_template("{a}", &[("a", &1), ("b", &2), ("a", &3)]),
        "1"
    );
}

#[test]
fn template_text_never_reaches_into_a_value() {
    use cashews::pattern::matches;
    // (template text before the value, key that must match, key that must not)
    let cases = [
        ("dir\\", "dir\\*:1", "dir\\secret:1"),
        ("dir\\\\\\", "dir\\\\*:1", "dir\\\\secret:1"),
        ("dir[", "dir[*:1", "dirx:1"),
        ("dir[a", "dir[a*:1", "dira:1"),
        ("dir[\\", "dir[\\*:1", "dir[x:1"),
        ("dir[[", "dir[[*:1", "dir[x:1"),
    ];
    for (text, yes, no) in cases {
        let mut pattern = KeyBuf::for_pattern();
        pattern.literal(text);
        pattern.part("*");
        pattern.literal(":*");
        let pattern = pattern.finish();
        assert!(
            matches(&pattern, yes),
            "{text:?} -> {pattern:?} must match {yes:?}"
        );
        assert!(
            !matches(&pattern, no),
            "{text:?} -> {pattern:?} must not match {no:?}"
        );
    }
    // A value inside a class the text opened stays one literal value, not a range.
    let mut pattern = KeyBuf::for_pattern();
    pattern.literal("k[");
    pattern.text("a-z");
    pattern.literal("]");
    let pattern = pattern.finish();
    assert!(matches(&pattern, "k[a-z]"), "{pattern}");
    assert!(!matches(&pattern, "kq"), "{pattern}");
    // Closed constructs in the text keep their meaning.
    let mut pattern = KeyBuf::for_pattern();
    pattern.literal("[ab]\\*");
    pattern.part("?");
    let pattern = pattern.finish();
    assert!(matches(&pattern, "a*?"), "{pattern}");
    assert!(!matches(&pattern, "a*x"), "{pattern}");
}

static ESCAPES: std::sync::LazyLock<crate::support::Clocked> =
    std::sync::LazyLock::new(crate::support::clocked);

#[cashews::invalidate(key = "dir\\{id}:*", cache = ESCAPES.cache)]
async fn drop_dir(id: &str) -> Result<(), std::io::Error> {
    let _ = id;
    Ok(())
}

#[tokio::test]
async fn a_backslash_before_a_field_does_not_unescape_the_value() {
    ESCAPES.cache.set("dir\\a:1", &1, "1h").await.unwrap();
    ESCAPES.cache.set("dir\\b:1", &2, "1h").await.unwrap();
    drop_dir("*").await.unwrap();
    assert!(ESCAPES.cache.exists("dir\\a:1").await.unwrap());
    assert!(ESCAPES.cache.exists("dir\\b:1").await.unwrap());
    drop_dir("a").await.unwrap();
    assert!(!ESCAPES.cache.exists("dir\\a:1").await.unwrap());
    assert!(ESCAPES.cache.exists("dir\\b:1").await.unwrap());
    // The same through a run-time template.
    let pattern = KeyTemplate::parse("dir\\{id}:*")
        .unwrap()
        .render_pattern(&[("id", &"*")])
        .unwrap();
    assert_eq!(ESCAPES.cache.delete_match(&pattern).await.unwrap(), 0);
}
