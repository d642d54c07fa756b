//! `rediss://` (cargo feature `redis-tls`): the certificate files of the TLS options, read and
//! checked when the backend is built, and the rustls crypto provider.
//!
//! Without `tls_ca_file`, redis-rs trusts the platform's root certificates (`rustls-native-certs`).
//! Host names are always verified; there is no option to turn verification off.

use std::path::Path;

use redis::{ClientTlsConfig, TlsCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::RedisOptions;
use crate::error::{Error, Result};

/// Makes ring the process's rustls crypto provider unless one is installed already. rustls
/// cannot pick one by itself when several are compiled in (another crate may enable aws-lc-rs),
/// and redis-rs would then fail at the first connection.
pub(super) fn install_provider() {
    // An `Err` means a provider is installed already, which is all that is needed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The certificates of the TLS options, or `None` when none is given (the platform's roots,
/// no client certificate).
pub(super) fn certificates(options: &RedisOptions) -> Result<Option<TlsCertificates>> {
    let root_cert = match &options.tls_ca_file {
        Some(path) => Some(read_certificates(path, "tls_ca_file", "root certificates")?),
        None => None,
    };
    let client_tls = match (&options.tls_cert_file, &options.tls_key_file) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: read_certificates(cert, "tls_cert_file", "a client certificate chain")?,
            client_key: read_key(key)?,
        }),
        // The options parser refuses one without the other.
        _ => None,
    };
    if root_cert.is_none() && client_tls.is_none() {
        return Ok(None);
    }
    Ok(Some(TlsCertificates {
        client_tls,
        root_cert,
    }))
}

/// A PEM file holding at least one certificate, every one readable.
fn read_certificates(path: &Path, option: &str, what: &str) -> Result<Vec<u8>> {
    let pem = read(path, option, what)?;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        if let Err(e) = cert {
            return Err(bad_file(
                path,
                option,
                what,
                &format!("a certificate is damaged ({e})"),
            ));
        }
        count += 1;
    }
    if count == 0 {
        return Err(bad_file(
            path,
            option,
            what,
            "it holds no `-----BEGIN CERTIFICATE-----` block",
        ));
    }
    Ok(pem)
}

/// A PEM file holding a private key (PKCS#8, PKCS#1 or SEC1).
fn read_key(path: &Path) -> Result<Vec<u8>> {
    let what = "the private key of `tls_cert_file`";
    let pem = read(path, "tls_key_file", what)?;
    if let Err(e) = PrivateKeyDer::from_pem_slice(&pem) {
        return Err(bad_file(
            path,
            "tls_key_file",
            what,
            &format!("no readable private key in it ({e})"),
        ));
    }
    Ok(pem)
}

fn read(path: &Path, option: &str, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| bad_file(path, option, what, &format!("cannot read it: {e}")))
}

fn bad_file(path: &Path, option: &str, what: &str, problem: &str) -> Error {
    Error::InvalidOption {
        option: option.to_owned(),
        value: path.display().to_string(),
        expected: format!("a PEM file of {what}, but {problem}: fix the path or the file"),
    }
}
