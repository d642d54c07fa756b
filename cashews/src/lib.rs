#![doc = include_str!("../docs/overview.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backend;
mod cache;
pub mod clock;
pub mod codec;
pub mod command;
pub mod config;
pub mod error;
mod lock;
pub mod pattern;
pub mod ttl;

pub use backend::{Backend, MemoryBackend};
pub use bytes::Bytes;
pub use cache::{Cache, cache};
pub use clock::Clock;
pub use command::Command;
pub use error::{Error, Result};
pub use lock::LockGuard;
pub use ttl::{IntoTtl, Ttl};
