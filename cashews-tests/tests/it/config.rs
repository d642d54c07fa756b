//! URL parsing into `CacheConfig` (spec §1.2–1.4, §1.7, scenarios 3, 5, 6; Appendix B.1).

use std::time::Duration;

use cashews::Error;
use cashews::codec::{Compression, Digest, Format, Secret};
use cashews::config::{BackendConfig, CacheConfig, MemoryOptions};
use proptest::prelude::*;

fn parse(url: &str) -> CacheConfig {
    CacheConfig::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
}

fn mem(config: &CacheConfig) -> &MemoryOptions {
    match &config.backend {
        BackendConfig::Memory(m) => m,
        other => panic!("{other:?}"),
    }
}

fn err(url: &str) -> Error {
    match CacheConfig::parse(url) {
        Ok(config) => panic!("{url} parsed: {config:?}"),
        Err(e) => e,
    }
}

/// Asserts an `InvalidOption` for `option` and returns its message.
fn invalid_option(url: &str, option: &str) -> String {
    let e = err(url);
    match &e {
        Error::InvalidOption { option: o, .. } => assert_eq!(o, option, "{e}"),
        other => panic!("{url}: expected InvalidOption, got {other:?}"),
    }
    e.to_string()
}

// ----- scenarios and §1.2 examples --------------------------------------------------------------

#[test]
fn mem_defaults() {
    let config = parse("mem://");
    assert_eq!(config, CacheConfig::default());
    assert_eq!(mem(&config).size, 1000);
    assert_eq!(mem(&config).max_bytes, None);
    assert_eq!(mem(&config).check_interval, Duration::from_secs(1));
    assert!(!config.disable);
    assert_eq!(config.suppress, None);
    assert_eq!(config.max_key_length, 1024);
    assert_eq!(config.max_value_size, None);
    assert_eq!(config.codec.format, Format::MsgPack);
    assert!(config.codec.secret.is_none());
}

#[test]
fn scenario_3_size_and_check_interval() {
    let config = parse("mem://?size=10&check_interval=0.01");
    assert_eq!(mem(&config).size, 10);
    assert_eq!(mem(&config).check_interval, Duration::from_millis(10));
    assert!(!config.disable);
}

#[test]
fn scenario_3_empty_scheme_is_a_disabled_memory_cache() {
    for url in ["://", "", "  ", "://?size=5"] {
        let config = parse(url);
        assert!(config.disable, "{url}");
        assert!(matches!(config.backend, BackendConfig::Memory(_)), "{url}");
    }
    assert_eq!(mem(&parse("://?size=5")).size, 5);
    // `://` acts as `disable=true`: an explicit `disable` overrides it, `enable` does not.
    assert!(!parse("://?disable=0").disable);
    assert!(parse("://?enable=1").disable);
}

#[test]
fn scenario_5_unknown_scheme() {
    let e = err("foo://");
    assert!(
        matches!(&e, Error::UnknownScheme { scheme } if scheme == "foo"),
        "{e:?}"
    );
    // The Display of `Error::UnknownScheme` quotes the alias with backticks.
    assert!(e.to_string().contains("wrong backend alias `foo`"), "{e}");
    assert!(e.to_string().contains("mem://"), "{e}");
    assert!(e.is_config());
    assert!(matches!(err("Foo://"), Error::UnknownScheme { scheme } if scheme == "Foo"));
}

#[test]
fn scenario_5_booleans() {
    for t in ["1", "true", "TRUE", "True", "yes", "YES", "on", "On"] {
        assert_eq!(
            parse(&format!("mem://?suppress={t}")).suppress,
            Some(true),
            "{t}"
        );
    }
    for f in ["0", "false", "FALSE", "no", "No", "off", "OFF"] {
        assert_eq!(
            parse(&format!("mem://?suppress={f}")).suppress,
            Some(false),
            "{f}"
        );
    }
}

#[test]
fn scenario_6_disable_and_enable() {
    assert!(parse("mem://?disable=1").disable);
    assert!(!parse("mem://?disable=0").disable);
    assert!(!parse("mem://?enable=1").disable);
    assert!(parse("mem://?enable=0").disable);
    // `disable` decides when present, whatever `enable` says.
    assert!(parse("mem://?enable=1&disable=1").disable);
    assert!(!parse("mem://?disable=false&enable=false").disable);
}

// ----- options ----------------------------------------------------------------------------------

#[test]
fn option_names_are_case_insensitive_and_schemes_too() {
    let config = parse("MEM://?SIZE=7&Check_Interval=2s&Safe=ON");
    assert_eq!(mem(&config).size, 7);
    assert_eq!(mem(&config).check_interval, Duration::from_secs(2));
    assert_eq!(config.suppress, Some(true));
}

#[test]
fn check_interval_forms() {
    let ci = |v: &str| mem(&parse(&format!("mem://?check_interval={v}"))).check_interval;
    assert_eq!(ci("1"), Duration::from_secs(1));
    assert_eq!(ci("0.5"), Duration::from_millis(500));
    assert_eq!(ci("500ms"), Duration::from_millis(500));
    assert_eq!(ci("1m30s"), Duration::from_secs(90));
    assert_eq!(ci("0"), Duration::ZERO);
    assert_eq!(ci("0.0"), Duration::ZERO);
}

#[test]
fn max_bytes_sizes_and_alias() {
    let mb = |url: &str| mem(&parse(url)).max_bytes;
    assert_eq!(mb("mem://?max_bytes=4096"), Some(4096));
    assert_eq!(mb("mem://?max_bytes=100B"), Some(100));
    assert_eq!(mb("mem://?max_bytes=1KB"), Some(1000));
    assert_eq!(mb("mem://?max_bytes=512KiB"), Some(512 * 1024));
    assert_eq!(mb("mem://?max_bytes=1MB"), Some(1_000_000));
    assert_eq!(mb("mem://?max_bytes=64MiB"), Some(64 << 20));
    assert_eq!(mb("mem://?max_bytes=2GB"), Some(2_000_000_000));
    assert_eq!(mb("mem://?max_bytes=1GiB"), Some(1 << 30));
    assert_eq!(mb("mem://?max_bytes=64+mib"), Some(64 << 20));
    assert_eq!(mb("mem://?max_size=1KiB"), Some(1024));
}

#[test]
fn wrapper_options() {
    let config = parse(
        "mem://?secret=s3&digestmod=sha1&accept_digestmods=md5,sha256&compress_type=null\
         &compress_min_size=2KiB&pickle_type=json&max_key_length=64&max_value_size=1MB",
    );
    assert_eq!(config.codec.secret, Some(Secret::new("s3")));
    assert_eq!(config.codec.digest, Digest::Sha1);
    assert_eq!(
        config.codec.accept_digests,
        vec![Digest::Md5, Digest::Sha256]
    );
    assert_eq!(config.codec.compression, Compression::None);
    assert_eq!(config.codec.compress_min_size, 2048);
    assert_eq!(config.codec.format, Format::Json);
    assert_eq!(config.max_key_length, 64);
    assert_eq!(config.max_value_size, Some(1_000_000));

    assert_eq!(parse("mem://?digestmod=MD5").codec.digest, Digest::Md5);
    assert_eq!(
        parse("mem://?digestmod=sha256").codec.digest,
        Digest::Sha256
    );
    assert!(
        parse("mem://?accept_digestmods=")
            .codec
            .accept_digests
            .is_empty()
    );
    assert_eq!(
        parse("mem://?compress_type=none").codec.compression,
        Compression::None
    );
    assert_eq!(
        parse("mem://?compress_min_size=0").codec.compress_min_size,
        0
    );
    for (v, f) in [
        ("msgpack", Format::MsgPack),
        ("default", Format::MsgPack),
        ("null", Format::MsgPack),
    ] {
        assert_eq!(
            parse(&format!("mem://?pickle_type={v}")).codec.format,
            f,
            "{v}"
        );
    }
    assert_eq!(parse("://?pickle_type=null").codec.format, Format::MsgPack);
}

#[cfg(feature = "compression-gzip")]
#[test]
fn gzip_and_zlib() {
    assert_eq!(
        parse("mem://?compress_type=gzip").codec.compression,
        Compression::Gzip
    );
    assert_eq!(
        parse("mem://?compress_type=ZLIB").codec.compression,
        Compression::Zlib
    );
}

#[cfg(feature = "compression-zstd")]
#[test]
fn zstd() {
    assert_eq!(
        parse("mem://?compress_type=zstd").codec.compression,
        Compression::Zstd
    );
}

#[cfg(not(feature = "compression-zstd"))]
#[test]
fn zstd_without_its_feature_names_the_feature() {
    let e = err("mem://?compress_type=zstd");
    assert!(
        matches!(
            &e,
            Error::FeatureDisabled {
                feature: "compression-zstd",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("compression-zstd"), "{e}");
}

#[test]
fn aliases_of_cashews_2() {
    let old = parse("mem://?safe=1&hash_key=k&format=json&max_size=1KiB");
    let new = parse("mem://?suppress=1&secret=k&pickle_type=json&max_bytes=1KiB");
    assert_eq!(old, new);
    assert_eq!(old.suppress, Some(true));
    assert_eq!(old.codec.secret, Some(Secret::new("k")));
    assert_eq!(old.codec.format, Format::Json);
    assert_eq!(mem(&old).max_bytes, Some(1024));
}

#[test]
fn percent_encoded_values() {
    let config = parse("mem://?secret=a%26b%3Dc+d");
    assert_eq!(config.codec.secret, Some(Secret::new("a&b=c d")));
}

#[test]
fn from_str_is_parse() {
    let config: CacheConfig = "mem://?size=3".parse().unwrap();
    assert_eq!(config, parse("mem://?size=3"));
}

// ----- bad URLs on purpose ------------------------------------------------------------------------

#[test]
fn unknown_option_lists_the_accepted_ones() {
    let e = err("mem://?sise=10");
    match &e {
        Error::UnknownOption {
            scheme,
            option,
            accepted,
        } => {
            assert_eq!(scheme, "mem");
            assert_eq!(option, "sise");
            for name in [
                "size",
                "max_bytes (alias max_size)",
                "check_interval",
                "disable",
                "enable",
                "suppress (alias safe)",
                "secret (alias hash_key)",
                "digestmod",
                "accept_digestmods",
                "compress_type",
                "compress_min_size",
                "pickle_type (alias format)",
                "max_key_length",
                "max_value_size",
            ] {
                assert!(accepted.contains(name), "{name} missing from {accepted}");
            }
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("`sise`") && msg.contains("accepted options: size"),
        "{msg}"
    );
}

#[test]
fn prefix_and_backend_client_options_are_unknown() {
    for url in [
        "mem://?prefix=user",
        "mem://?password=x",
        "mem://?check_repr=false",
        "mem://?client_side=true",
        "mem://?=1",
    ] {
        assert!(matches!(err(url), Error::UnknownOption { .. }), "{url}");
    }
}

#[test]
fn size_must_be_a_positive_whole_number() {
    for bad in [
        "ten",
        "-5",
        "0",
        "1.5",
        "",
        "10KiB",
        "99999999999999999999999",
    ] {
        let msg = invalid_option(&format!("mem://?size={bad}"), "size");
        assert!(msg.contains(&format!("`{bad}`")), "{msg}");
        assert!(msg.contains("a positive whole number of entries"), "{msg}");
    }
}

#[test]
fn bad_booleans_say_what_is_accepted() {
    for (opt, bad) in [
        ("disable", "t"),
        ("enable", "maybe"),
        ("suppress", ""),
        ("safe", "2"),
    ] {
        let msg = invalid_option(&format!("mem://?{opt}={bad}"), opt);
        assert!(
            msg.contains("expected true/false/1/0/yes/no/on/off"),
            "{msg}"
        );
        assert!(msg.contains(&format!("`{bad}`")), "{msg}");
    }
}

#[test]
fn bad_check_interval() {
    for bad in [
        "soon",
        "-1",
        "1.5s",
        "1m10",
        "1e3",
        "inf",
        "",
        "0.0000000001",
    ] {
        let msg = invalid_option(&format!("mem://?check_interval={bad}"), "check_interval");
        assert!(msg.contains(&format!("`{bad}`")), "{msg}");
    }
    let msg = invalid_option("mem://?check_interval=soon", "check_interval");
    assert!(msg.contains("500ms") && msg.contains("0.01"), "{msg}");
}

#[test]
fn bad_sizes() {
    for (opt, bad) in [
        ("max_bytes", "0"),
        ("max_bytes", "lots"),
        ("max_bytes", "1TB"),
        ("max_bytes", "1.5MiB"),
        ("max_size", "-1"),
        ("max_value_size", "0"),
        ("max_value_size", "1PiB"),
        ("compress_min_size", "x"),
        ("max_key_length", "0"),
        ("max_key_length", "1KiB"),
    ] {
        let msg = invalid_option(&format!("mem://?{opt}={bad}"), opt);
        assert!(msg.contains(&format!("`{bad}`")), "{msg}");
    }
    let msg = invalid_option("mem://?max_bytes=lots", "max_bytes");
    assert!(msg.contains("KiB") && msg.contains("MB"), "{msg}");
}

#[test]
fn sum_and_xxhash_are_not_macs() {
    let msg = invalid_option("mem://?digestmod=sum", "digestmod");
    assert!(msg.contains("`sum`") && msg.contains("not a MAC"), "{msg}");
    assert!(msg.contains("md5, sha1 or sha256"), "{msg}");
    for x in ["xxh32", "xxh64", "xxh3_64", "xxh3_128"] {
        let msg = invalid_option(&format!("mem://?digestmod={x}"), "digestmod");
        assert!(
            msg.contains("not a MAC") && msg.contains("not supported"),
            "{msg}"
        );
    }
    let msg = invalid_option("mem://?accept_digestmods=md5,sum", "accept_digestmods");
    assert!(msg.contains("not a MAC"), "{msg}");
    let msg = invalid_option("mem://?digestmod=sha512", "digestmod");
    assert!(
        msg.contains("`sha512`") && msg.contains("md5, sha1 or sha256"),
        "{msg}"
    );
    invalid_option("mem://?accept_digestmods=md5,,sha1", "accept_digestmods");
}

#[test]
fn unknown_compression() {
    let msg = invalid_option("mem://?compress_type=brotli", "compress_type");
    assert!(msg.contains("`brotli`"), "{msg}");
    for name in ["null", "gzip", "zlib", "zstd"] {
        assert!(msg.contains(name), "{msg}");
    }
}

#[test]
fn python_only_picklers() {
    for p in ["dill", "sqlalchemy"] {
        let msg = invalid_option(&format!("mem://?pickle_type={p}"), "pickle_type");
        assert!(
            msg.contains(&format!("`{p}`")) && msg.contains("Python-only"),
            "{msg}"
        );
    }
    let msg = invalid_option("mem://?format=yaml", "format");
    assert!(msg.contains("msgpack, json"), "{msg}");
}

#[test]
fn repeated_options() {
    let msg = invalid_option("mem://?size=1&size=2", "size");
    assert!(msg.contains("given twice"), "{msg}");
    let msg = invalid_option("mem://?safe=1&suppress=1", "suppress");
    assert!(
        msg.contains("given twice") && msg.contains("`safe`"),
        "{msg}"
    );
    let msg = invalid_option("mem://?SIZE=1&size=2", "size");
    assert!(msg.contains("given twice"), "{msg}");
    let msg = invalid_option("mem://?secret=first&hash_key=second", "hash_key");
    assert!(!msg.contains("second") && msg.contains("`***`"), "{msg}");
}

#[test]
fn disk_needs_its_feature() {
    let parsed = CacheConfig::parse("disk://?directory=/tmp/c&shards=0");
    if cfg!(feature = "disk") {
        assert!(parsed.is_ok(), "{parsed:?}");
    } else {
        let e = err("disk://?directory=/tmp/c");
        assert!(
            matches!(
                e,
                Error::FeatureDisabled {
                    feature: "disk",
                    ..
                }
            ),
            "{e:?}"
        );
    }
}

#[test]
fn redis_needs_its_feature() {
    let parsed = CacheConfig::parse("redis://localhost:6379/0");
    if cfg!(feature = "redis") {
        assert!(parsed.is_ok(), "{parsed:?}");
    } else {
        let e = err("redis://localhost:6379/0");
        assert!(
            matches!(
                e,
                Error::FeatureDisabled {
                    feature: "redis",
                    ..
                }
            ),
            "{e:?}"
        );
    }
    // rediss:// needs `redis-tls` (which brings `redis`).
    let parsed = CacheConfig::parse("rediss://host");
    if cfg!(feature = "redis-tls") {
        assert!(parsed.is_ok(), "{parsed:?}");
    } else {
        let e = err("rediss://host");
        assert!(
            matches!(
                e,
                Error::FeatureDisabled {
                    feature: "redis-tls",
                    ..
                }
            ),
            "{e:?}"
        );
    }
}

#[test]
fn malformed_urls() {
    for url in [
        "mem",
        "mem:/",
        "mem://localhost",
        "mem://?size=1#frag",
        "m em://",
        "user:pw@x://",
    ] {
        let e = err(url);
        assert!(matches!(e, Error::InvalidUrl { .. }), "{url}: {e:?}");
    }
    let e = err("mem://host?size=1");
    assert!(e.to_string().contains("takes no host"), "{e}");
    // `mem:///` (an empty path) is fine.
    assert_eq!(mem(&parse("mem:///?size=2")).size, 2);
}

// ----- credentials ------------------------------------------------------------------------------

#[test]
fn passwords_never_appear_in_errors() {
    for url in [
        "redis://user:pw@host:6379/0",
        "redis://:pw@host",
        "rediss://user:pw@host?password=pw",
        "mem://user:pw@host",
        "mem://?secret=pw#x",
        "user:pw@host",
        "user:pw@host://",
    ] {
        // With the `redis` feature, the redis:// URLs parse (rediss:// with `redis-tls`): then
        // `Debug` must hide the password.
        let text = match CacheConfig::parse(url) {
            Ok(config) if cfg!(feature = "redis") && url.starts_with("redis") => {
                format!("{config:?} {config:#?}")
            }
            _ => {
                let e = err(url);
                format!("{e} {e:?}")
            }
        };
        assert!(!text.contains("pw"), "{url}: {text}");
    }
    if !cfg!(feature = "redis") {
        return;
    }
    let text = format!("{:?}", parse("redis://:pw@host"));
    assert!(text.contains("redis://:***@host"), "{text}");
    let text = format!("{:?}", parse("redis://user:pw@host?password=pw2"));
    assert!(
        text.contains("redis://user:***@host") && !text.contains("pw"),
        "{text}"
    );
    let e = err("redis://user:pw@host?password=pw&password=pw2");
    assert!(!format!("{e} {e:?}").contains("pw"), "{e:?}");
}

#[test]
fn secret_never_appears_in_debug_or_errors() {
    let config = parse("mem://?secret=hunter2&size=5");
    assert!(!format!("{config:?}").contains("hunter2"));
    assert!(!format!("{config:#?}").contains("hunter2"));
    let msg = invalid_option("mem://?secret=", "secret");
    assert!(msg.contains("non-empty"), "{msg}");
    let e = err("mem://?secret=hunter2&secret=hunter3");
    assert!(!format!("{e} {e:?}").contains("hunter"), "{e:?}");
}

// ----- never panics -----------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics(url in any::<String>()) {
        let _ = CacheConfig::parse(&url);
    }

    #[test]
    fn parse_never_panics_on_url_like_input(
        scheme in "(mem|MEM|redis|disk||foo|m\\.e-m)",
        sep in "(://|:/|:|)",
        location in "[a-z:@/]{0,6}",
        query in "[a-zA-Z_=&%0-9.+#?,-]{0,40}",
    ) {
        let _ = CacheConfig::parse(&format!("{scheme}{sep}{location}?{query}"));
    }

    #[test]
    fn option_values_never_panic(
        name in "(size|max_bytes|max_size|check_interval|disable|enable|suppress|safe|secret|hash_key|digestmod|accept_digestmods|compress_type|compress_min_size|pickle_type|format|max_key_length|max_value_size)",
        value in any::<String>(),
    ) {
        let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        let _ = CacheConfig::parse(&format!("mem://?{name}={encoded}"));
    }

    #[test]
    fn size_round_trips(n in any::<u64>()) {
        match CacheConfig::parse(&format!("mem://?size={n}")) {
            Ok(config) => {
                prop_assert!(n > 0);
                prop_assert_eq!(Some(mem(&config).size), usize::try_from(n).ok());
            }
            Err(e) => {
                prop_assert!(n == 0 || usize::try_from(n).is_err(), "{}", e);
                prop_assert!(
                    matches!(e, Error::InvalidOption { ref option, .. } if option == "size"),
                    "{:?}",
                    e
                );
            }
        }
    }
}

// ----- Redis Cluster options --------------------------------------------------------------------

#[cfg(feature = "redis")]
fn redis_options(url: &str) -> cashews::config::RedisOptions {
    match parse(url).backend {
        BackendConfig::Redis(options) => options,
        other => panic!("{url}: {other:?}"),
    }
}

#[cfg(feature = "redis")]
#[test]
fn cluster_options() {
    let options = redis_options("redis://127.0.0.1:7000?cluster=true");
    assert!(options.cluster && options.nodes.is_empty());
    let options = redis_options(
        "redis://:pw@10.0.0.1:7000?cluster=yes&nodes=10.0.0.2:7001,%20node-3.local:7002,[::1]:7003",
    );
    assert!(options.cluster);
    assert_eq!(
        options.nodes,
        ["10.0.0.2:7001", "node-3.local:7002", "[::1]:7003"]
    );
    assert!(!format!("{options:?}").contains("pw"));
    assert!(!redis_options("redis://h?cluster=false").cluster);
    assert!(redis_options("redis://h/0?cluster=true&db=0").cluster);
}

#[cfg(feature = "redis")]
#[test]
fn cluster_option_errors_name_the_fix() {
    let msg = invalid_option("redis://h:7000?nodes=h:7001", "nodes");
    assert!(msg.contains("cluster=true"), "{msg}");
    let msg = invalid_option("redis://h:7000?cluster=false&nodes=h:7001", "nodes");
    assert!(msg.contains("cluster=true"), "{msg}");

    let msg = invalid_option("redis://h:7000?cluster=true&db=1", "db");
    assert!(
        msg.contains("database 0 only") && msg.contains("remove `db`"),
        "{msg}"
    );
    let msg = invalid_option("redis://h:7000/2?cluster=true", "db");
    assert!(msg.contains("`2`") && msg.contains("path"), "{msg}");

    for (nodes, why) in [
        ("h", "port is missing"),
        ("h:0", "from 1 to 65535"),
        ("h:99999", "from 1 to 65535"),
        ("h:7001,,h:7002", "empty entry"),
        (":7001", "host must be"),
        ("redis://h:7001", "host must be"),
        ("::1:7001", "brackets"),
        ("user:hunter2@h:7001", "host must be"),
    ] {
        let url = format!("redis://h:7000?cluster=true&nodes={nodes}");
        let msg = invalid_option(&url, "nodes");
        assert!(msg.contains(why), "{nodes}: {msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }
    let msg = invalid_option("redis://h?cluster=maybe", "cluster");
    assert!(msg.contains("true"), "{msg}");
}

// ----- Redis health options ---------------------------------------------------------------------

#[cfg(feature = "redis")]
#[test]
fn health_options_and_defaults() {
    let options = redis_options("redis://h");
    assert_eq!(
        (
            options.down_after,
            options.probe_interval,
            options.probe_max_interval
        ),
        (3, Duration::from_millis(100), Duration::from_secs(1))
    );
    let options = redis_options("redis://h?down_after=5&probe_interval=50ms&probe_max_interval=2s");
    assert_eq!(
        (
            options.down_after,
            options.probe_interval,
            options.probe_max_interval
        ),
        (5, Duration::from_millis(50), Duration::from_secs(2))
    );
    assert_eq!(redis_options("redis://h?down_after=0").down_after, 0);
    // A first probe later than the default longest wait raises that wait.
    let options = redis_options("redis://h?probe_interval=3s");
    assert_eq!(options.probe_max_interval, Duration::from_secs(3));

    let msg = invalid_option("redis://h?down_after=-1", "down_after");
    assert!(msg.contains("0 to never"), "{msg}");
    let msg = invalid_option("redis://h?down_after=1001", "down_after");
    assert!(msg.contains("1 to 1000"), "{msg}");
    let msg = invalid_option("redis://h?probe_interval=0", "probe_interval");
    assert!(msg.contains("positive"), "{msg}");
    let msg = invalid_option(
        "redis://h?probe_interval=2s&probe_max_interval=1s",
        "probe_max_interval",
    );
    assert!(msg.contains("at least `probe_interval`"), "{msg}");
}

// ----- Redis pool and cluster addresses -------------------------------------------------------

#[cfg(feature = "redis")]
#[test]
fn a_minimum_above_the_default_maximum_raises_it() {
    let options = redis_options("redis://localhost/0?minsize=3");
    assert_eq!((options.min_connections, options.max_connections), (3, 3));
    let options = redis_options("redis://localhost/0?min_connections=5&max_connections=8");
    assert_eq!((options.min_connections, options.max_connections), (5, 8));
    // Both given, the minimum above the maximum: the caller must choose.
    let msg = invalid_option("redis://localhost/0?minsize=3&maxsize=2", "min_connections");
    assert!(msg.contains("at most `max_connections` (2)"), "{msg}");
}

#[cfg(feature = "redis")]
#[test]
fn a_wildcard_address_is_refused_for_its_real_reason() {
    for url in [
        "redis://0.0.0.0:9000?cluster=true",
        "redis://0.0.0.0:9000",
        "redis://user:hunter2@[::]:9000/0",
    ] {
        let e = err(url);
        assert!(matches!(e, Error::InvalidUrl { .. }), "{url}: {e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("wildcard") && msg.contains("127.0.0.1") && !msg.contains("write it as"),
            "{url}: {msg}"
        );
        assert!(!msg.contains("hunter2"), "{msg}");
    }
    // A seed node that is a wildcard: refused when the backend is built, for the same reason.
    let options = redis_options("redis://10.0.0.1:9000?cluster=true&nodes=0.0.0.0:9001");
    let msg = cashews::backend::RedisBackend::new(options)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("wildcard") && !msg.contains("share the address's scheme"),
        "{msg}"
    );
    // Other unreadable addresses keep the generic fix.
    let msg = err("redis://h:6379/notadb").to_string();
    assert!(msg.contains("write it as"), "{msg}");
}
