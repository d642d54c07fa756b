//! Configuration by URL (interim minimal parser; the full one is being written).

pub mod memory;

pub use memory::MemoryOptions;

use crate::codec::CodecOptions;
use crate::error::{Error, Result};

/// Parsed configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Backend.
    pub backend: BackendConfig,
    /// Disabled at start.
    pub disable: bool,
    /// Safe mode.
    pub suppress: Option<bool>,
    /// Codec.
    pub codec: CodecOptions,
    /// Max key length.
    pub max_key_length: usize,
    /// Max value size.
    pub max_value_size: Option<usize>,
}

/// Backend part.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendConfig {
    /// Memory.
    Memory(MemoryOptions),
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            backend: BackendConfig::Memory(MemoryOptions::default()),
            disable: false,
            suppress: None,
            codec: CodecOptions::default(),
            max_key_length: 1024,
            max_value_size: None,
        }
    }
}

impl CacheConfig {
    /// Parses.
    ///
    /// # Errors
    ///
    /// Bad URL.
    pub fn parse(url: &str) -> Result<Self> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| Error::InvalidUrl {
            url: url.to_owned(),
            reason: "no scheme".to_owned(),
        })?;
        let mut config = Self::default();
        match scheme {
            "mem" => {}
            "" => config.disable = true,
            other => {
                return Err(Error::UnknownScheme {
                    scheme: other.to_owned(),
                });
            }
        }
        let query = rest.split_once('?').map_or("", |(_, q)| q);
        let mut mem = MemoryOptions::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let bad = || Error::InvalidOption {
                option: k.to_string(),
                value: v.to_string(),
                expected: "a valid value".to_owned(),
            };
            match k.as_ref() {
                "size" => mem.size = v.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?,
                "check_interval" => {
                    mem.check_interval = crate::Ttl::parse(&v)?.duration().unwrap_or_default();
                }
                "disable" => config.disable = v == "1" || v == "true",
                "enable" => config.disable = !(v == "1" || v == "true"),
                "suppress" | "safe" => config.suppress = Some(v == "1" || v == "true"),
                "max_key_length" => config.max_key_length = v.parse().map_err(|_| bad())?,
                "max_value_size" => config.max_value_size = Some(v.parse().map_err(|_| bad())?),
                _ => {
                    return Err(Error::UnknownOption {
                        scheme: scheme.to_owned(),
                        option: k.to_string(),
                        accepted: "size, check_interval".to_owned(),
                    });
                }
            }
        }
        config.backend = BackendConfig::Memory(mem);
        Ok(config)
    }
}

impl std::str::FromStr for CacheConfig {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}
