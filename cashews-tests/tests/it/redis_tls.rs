//! `rediss://` (cargo feature `redis-tls`) against a `redis-server` this file spawns with TLS on
//! a free loopback port, its certificate signed by a CA generated here (rcgen): trusted through
//! `tls_ca_file` it round-trips values; untrusted it fails with a TLS error; the password of the
//! URL never shows in errors or `Debug`. Bad certificate files fail at setup, naming the file.
//!
//! When `redis-server` is missing, the server tests print why and return; with `CI=true` they
//! fail.

use std::io::Write;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cashews::backend::RedisBackend;
use cashews::config::{BackendConfig, CacheConfig};
use cashews::{Cache, Error};
use cashews_testkit::skip_unless_ci;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::support::SpawnedRedis;

const PASSWORD: &str = "tls-hunter2-secret";

/// A temporary directory with the CA, the server certificate and key; removed on drop.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "cashews-tls-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();

        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "cashews test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().unwrap();
        let mut server_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let server = server_params.signed_by(&server_key, &issuer).unwrap();

        let files = Self { dir };
        files.write("ca.pem", &ca.pem());
        files.write("server.pem", &server.pem());
        files.write("server.key", &server_key.serialize_pem());
        files.write("empty.pem", "not a certificate\n");
        files
    }

    fn write(&self, name: &str, text: &str) {
        let mut file = std::fs::File::create(self.path(name)).unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `redis-server` with only a TLS port, killed on drop (test failures included).
struct Server {
    redis: SpawnedRedis,
}

impl Server {
    /// Starts one, or says why it cannot (no `redis-server`, no TLS support).
    fn start(files: &Files) -> Result<Self, String> {
        let port = SpawnedRedis::free_port();
        let mut args = tls_args(files, port);
        args.extend(["--requirepass", PASSWORD].map(OsString::from));
        SpawnedRedis::start(port, args)
            .map(|redis| Self { redis })
            .map_err(|e| format!("{e} (is redis-server built with TLS support?)"))
    }

    fn url(&self, query: &str) -> String {
        format!(
            "rediss://:{PASSWORD}@127.0.0.1:{}/0?{query}",
            self.redis.port
        )
    }
}

/// The arguments of a TLS-only server on `port` with the certificates of `files`.
fn tls_args(files: &Files, port: u16) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["--port", "0", "--tls-port", &port.to_string()]
        .map(OsString::from)
        .into();
    for (flag, file) in [
        ("--tls-cert-file", "server.pem"),
        ("--tls-key-file", "server.key"),
        ("--tls-ca-cert-file", "ca.pem"),
    ] {
        args.push(flag.into());
        args.push(files.path(file).into());
    }
    args.extend(["--tls-auth-clients", "no", "--dir"].map(OsString::from));
    args.push(files.dir.clone().into());
    args
}

fn ca_query(path: &Path) -> String {
    let path = path.to_str().unwrap();
    format!(
        "tls_ca_file={}",
        url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
    )
}

macro_rules! server_or_skip {
    ($case:literal, $files:expr) => {
        match Server::start($files) {
            Ok(server) => server,
            Err(reason) => return skip_unless_ci::<()>($case, &reason).unwrap_or(()),
        }
    };
}

#[tokio::test]
async fn trusted_ca_file_round_trips_values() {
    let files = Files::new();
    let server = server_or_skip!("trusted_ca_file_round_trips_values", &files);
    let url = server.url(&format!(
        "{}&suppress=false&command_timeout=2s",
        ca_query(&files.path("ca.pem"))
    ));

    let config = CacheConfig::parse(&url).unwrap();
    let BackendConfig::Redis(options) = &config.backend else {
        panic!("{config:?}");
    };
    assert_eq!(options.tls_ca_file.as_deref(), Some(&*files.path("ca.pem")));
    let backend = RedisBackend::new(options.clone()).unwrap();
    for text in [
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{backend:?}"),
    ] {
        assert!(!text.contains(PASSWORD), "{text}");
    }

    let cache = Cache::new();
    cache.setup(&url).unwrap();
    cache.ping().await.unwrap();
    assert!(cache.set("tls:text", "héllo", 60).await.unwrap());
    assert_eq!(
        cache.get::<String>("tls:text").await.unwrap().as_deref(),
        Some("héllo")
    );
    assert_eq!(cache.incr_by("tls:n", 7, 60).await.unwrap(), 7);
    let got: Vec<Option<String>> = cache.get_many(&["tls:text", "tls:missing"]).await.unwrap();
    assert_eq!(got, vec![Some("héllo".to_owned()), None]);
    assert_eq!(cache.delete_many(&["tls:text", "tls:n"]).await.unwrap(), 2);
    cache.close().await.unwrap();
}

#[tokio::test]
async fn untrusted_server_is_a_tls_error_without_the_password() {
    let files = Files::new();
    let server = server_or_skip!("untrusted_server_is_a_tls_error", &files);
    // No `tls_ca_file`: the platform's roots do not know the test CA.
    let cache = Cache::new();
    cache
        .setup(&server.url("suppress=false&connect_timeout=2s"))
        .unwrap();
    let e = cache.get::<String>("tls:k").await.unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(matches!(e, Error::Backend { .. }), "{text}");
    assert!(
        text.to_lowercase().contains("certificate"),
        "the error says the certificate is not trusted: {text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");

    // Safe mode (the default) turns the same failure into a miss; ping still reports it.
    let safe = Cache::new();
    safe.setup(&server.url("connect_timeout=2s")).unwrap();
    assert_eq!(safe.get::<String>("tls:k").await.unwrap(), None);
    let e = safe.ping().await.unwrap_err();
    assert!(!format!("{e} {e:?}").contains(PASSWORD), "{e:?}");
}

#[test]
fn bad_certificate_files_fail_at_setup_naming_them() {
    let files = Files::new();
    let url = |query: String| format!("rediss://:{PASSWORD}@127.0.0.1:1/0?{query}");

    let missing = files.path("missing.pem");
    let e = Cache::new().setup(&url(ca_query(&missing))).unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(&e, Error::InvalidOption { option, .. } if option == "tls_ca_file"),
        "{e:?}"
    );
    assert!(
        text.contains(missing.to_str().unwrap()) && text.contains("cannot read"),
        "{text}"
    );

    let e = Cache::new()
        .setup(&url(ca_query(&files.path("empty.pem"))))
        .unwrap_err();
    assert!(
        e.to_string().contains("no `-----BEGIN CERTIFICATE-----`"),
        "{e}"
    );

    // A certificate is not a key.
    let cert = files.path("server.pem");
    let e = Cache::new()
        .setup(&url(format!(
            "{}&tls_cert_file={}&tls_key_file={}",
            ca_query(&files.path("ca.pem")),
            cert.display(),
            cert.display()
        )))
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidOption { option, .. } if option == "tls_key_file"),
        "{e:?}"
    );
    assert!(!format!("{e} {e:?}").contains(PASSWORD));

    // A client certificate without its key, and TLS files on plain redis://.
    let e = CacheConfig::parse(&url(format!("tls_cert_file={}", cert.display()))).unwrap_err();
    assert!(e.to_string().contains("together"), "{e}");
    let e = CacheConfig::parse(&format!(
        "redis://127.0.0.1/0?{}",
        ca_query(&files.path("ca.pem"))
    ))
    .unwrap_err();
    assert!(e.to_string().contains("rediss://"), "{e}");
}

/// Three TLS cluster nodes (primaries only, `tls-cluster yes`), joined with `redis-cli --tls
/// --cluster create`; killed on drop.
struct TlsCluster {
    nodes: Vec<SpawnedRedis>,
}

impl TlsCluster {
    fn start(files: &Files) -> Result<Self, String> {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let port = SpawnedRedis::free_port();
            let bus = SpawnedRedis::free_port();
            let mut args = tls_args(files, port);
            args.extend(
                [
                    "--cluster-enabled".to_owned(),
                    "yes".to_owned(),
                    "--cluster-port".to_owned(),
                    bus.to_string(),
                    "--cluster-config-file".to_owned(),
                ]
                .map(OsString::from),
            );
            args.push(files.path(&format!("nodes-{port}.conf")).into());
            args.extend(["--tls-cluster", "yes", "--tls-replication", "yes"].map(OsString::from));
            nodes.push(SpawnedRedis::start(port, args)?);
        }
        let cluster = Self { nodes };
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut create = cluster.cli(files);
        create.arg("--cluster").arg("create");
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .map_err(|e| format!("cannot run redis-cli: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        for node in &cluster.nodes {
            loop {
                let info = cluster
                    .cli(files)
                    .args(["-p", &node.port.to_string(), "cluster", "info"])
                    .output()
                    .map_err(|e| format!("cannot run redis-cli: {e}"))?;
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                if Instant::now() > deadline {
                    return Err("the TLS cluster is not cluster_state:ok".to_owned());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(cluster)
    }

    fn cli(&self, files: &Files) -> Command {
        let mut cli = Command::new("redis-cli");
        cli.args(["--tls", "-h", "127.0.0.1"])
            .arg("--cacert")
            .arg(files.path("ca.pem"));
        cli
    }
}

/// `rediss://` with `cluster=true`: the TLS mode and the CA apply to every node the cluster
/// connection discovers; keys in many slots round-trip and a scan sees every primary.
#[tokio::test]
async fn tls_cluster_round_trips_values() {
    use futures_util::StreamExt;

    let files = Files::new();
    let cluster = match TlsCluster::start(&files) {
        Ok(cluster) => cluster,
        Err(reason) => {
            return skip_unless_ci::<()>("tls_cluster_round_trips_values", &reason).unwrap_or(());
        }
    };
    let first = cluster.nodes.first().unwrap().port;
    let url = format!(
        "rediss://127.0.0.1:{first}?cluster=true&{}&suppress=false&command_timeout=2s",
        ca_query(&files.path("ca.pem"))
    );
    let config = CacheConfig::parse(&url).unwrap();
    let BackendConfig::Redis(options) = config.backend else {
        panic!("not Redis");
    };
    let backend = RedisBackend::new(options.with_key_prefix("tls-cl:")).unwrap();
    let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    let pairs: Vec<(&str, cashews::Bytes)> = keys
        .iter()
        .map(|k| (k.as_str(), cashews::Bytes::from(k.clone())))
        .collect();
    use cashews::Backend;
    backend.set_many(&pairs, None).await.unwrap();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let got = backend.get_many(&refs).await.unwrap();
    for (key, value) in keys.iter().zip(got) {
        assert_eq!(value.as_deref(), Some(key.as_bytes()));
    }
    assert_eq!(backend.scan("*", 10).count().await, 50);
    assert_eq!(backend.keys_count().await.unwrap(), 50);
    assert_eq!(backend.delete_match("*").await.unwrap(), 50);
    drop(cluster);
}
