//! Options set by hand go through the same checks as parsed ones: every path that hands options
//! to a backend (`Cache::setup_config`, `setup_backend`, the backends' constructors) refuses
//! one out of range before the backend sees it, naming the option.

use cashews::config::{BackendConfig, CacheConfig, MemoryOptions};
use cashews::{Cache, Error, MemoryBackend};

fn option_of(error: &Error) -> &str {
    match error {
        Error::InvalidOption { option, .. } => option,
        other => panic!("expected an InvalidOption, got {other:?}"),
    }
}

#[test]
fn setup_config_refuses_wrapper_limits_set_by_hand() {
    let mut config = CacheConfig::default();
    config.max_key_length = 0;
    let error = Cache::new().setup_config("", config).unwrap_err();
    assert_eq!(option_of(&error), "max_key_length");

    let mut config = CacheConfig::default();
    config.max_value_size = Some(0);
    let error = Cache::new().setup_config("", config.clone()).unwrap_err();
    assert_eq!(option_of(&error), "max_value_size");
    // `setup_backend` ignores the backend part but checks the limits.
    let backend = MemoryBackend::new(MemoryOptions::default());
    let error = Cache::new().setup_backend("", backend, config).unwrap_err();
    assert_eq!(option_of(&error), "max_value_size");
}

#[test]
fn setup_config_refuses_memory_options_set_by_hand() {
    let mut config = CacheConfig::default();
    config.backend = BackendConfig::Memory(MemoryOptions::with_size(0));
    let error = Cache::new().setup_config("", config).unwrap_err();
    assert_eq!(option_of(&error), "size");
    // The parsed form is refused by the same rule.
    let error = CacheConfig::parse("mem://?size=0").unwrap_err();
    assert_eq!(option_of(&error), "size");
}

#[cfg(feature = "disk")]
#[test]
fn disk_options_set_by_hand_are_checked_before_any_file_is_opened() {
    use cashews::backend::DiskBackend;
    use cashews::config::DiskOptions;
    let dir = tempfile::tempdir().unwrap();
    let error = DiskBackend::new(DiskOptions::new(dir.path()).with_shards(1000)).unwrap_err();
    assert_eq!(option_of(&error), "shards");
    let mut options = DiskOptions::new(dir.path());
    options.size_limit = 0;
    let error = DiskBackend::new(options.clone()).unwrap_err();
    assert_eq!(option_of(&error), "size_limit");
    let mut config = CacheConfig::default();
    config.backend = BackendConfig::Disk(options);
    let error = Cache::new().setup_config("", config).unwrap_err();
    assert_eq!(option_of(&error), "size_limit");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no shard file opened"
    );
}

#[cfg(feature = "redis")]
#[test]
fn redis_options_set_by_hand_are_checked_before_any_connection() {
    use cashews::backend::{ClientSideRedis, RedisBackend};
    use cashews::config::RedisOptions;
    use std::time::Duration;
    // Nothing listens on port 1: a check that passed would fail later, not with InvalidOption.
    let base = || RedisOptions::new("redis://127.0.0.1:1");
    let cases: [(&str, fn(&mut RedisOptions)); 7] = [
        ("max_connections", |o| o.max_connections = 0),
        ("min_connections", |o| o.min_connections = 5),
        ("command_timeout", |o| o.command_timeout = Duration::ZERO),
        ("probe_max_interval", |o| {
            o.probe_max_interval = o.probe_interval / 2;
        }),
        ("client_side", |o| {
            o.client_side = true;
            o.cluster = true;
        }),
        ("nodes", |o| o.nodes = vec!["127.0.0.1:7000".to_owned()]),
        ("tls_ca_file", |o| o.tls_ca_file = Some("ca.pem".into())),
    ];
    for (option, spoil) in cases {
        let mut options = base();
        spoil(&mut options);
        assert_eq!(option_of(&options.validate().unwrap_err()), option);
        let error = RedisBackend::new(options.clone()).unwrap_err();
        assert_eq!(option_of(&error), option, "RedisBackend::new");
        let error = ClientSideRedis::new(options.clone()).unwrap_err();
        assert_eq!(option_of(&error), option, "ClientSideRedis::new");
        let mut config = CacheConfig::default();
        config.backend = BackendConfig::Redis(options);
        let error = Cache::new().setup_config("", config).unwrap_err();
        assert_eq!(option_of(&error), option, "setup_config");
    }
    assert!(base().validate().is_ok());
}
