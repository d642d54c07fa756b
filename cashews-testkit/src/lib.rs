//! The conformance suite every cashews backend and wrapper passes, unchanged.
//!
//! The cases live in [`cases`], one `async fn` each, generic over [`cashews::Backend`]. The
//! [`conformance_suite!`] macro turns each into its own `#[test]`, so a failure names the case
//! and the rest still run. A backend's tests provide one factory, `async fn(Setup) ->
//! Option<Harness<B>>`, that builds the backend for a case:
//!
//! ```
//! use cashews::{Clock, MemoryBackend};
//! use cashews_testkit::{Harness, Setup, Time};
//!
//! async fn mem(_setup: Setup) -> Option<Harness<MemoryBackend>> {
//!     let clock = Clock::manual();
//!     let backend = MemoryBackend::with_clock(Default::default(), clock.clone());
//!     Some(Harness::new(backend, Time::Manual(clock)))
//! }
//!
//! // In a test file: `cashews_testkit::conformance_suite!(mem);`
//! # cashews_testkit::run(cashews_testkit::Setup::new("basic::ping_answers", false), mem,
//! #     cashews_testkit::cases::basic::ping_answers).unwrap();
//! ```
//!
//! # What the factory must honour
//!
//! - Keys: cases only touch keys under [`Harness::key`], a namespace unique to the harness, so
//!   backends that share a server (Redis) may reuse one backend for every case, except that
//! - [`Setup::exclusive`] cases (`clear`, `keys_count`) need a backend no other test writes to.
//! - Time: [`Time::Manual`] when the backend reads a manual [`cashews::Clock`], else
//!   [`Time::Real`] (cases then sleep; TTLs in cases are at least one second).
//! - Returning `None` skips the case: do it only outside CI, after printing why (see
//!   [`skip_unless_ci`]). In CI a missing service must fail the test loudly.
//!
//! # What is checked
//!
//! Every command of the backend trait with its edge cases:
//! conditions, expiry seen by every command, typed TTL answers, glob classes and escapes, bit
//! fields and their saturation, the sliding window, sets, wrong types and overflow; atomicity
//! under concurrent callers by counts (1,000 `incr`, 100 `set_lock`, wrong-token `unlock`,
//! `slice_incr` and `slice_incr_now` at their limit, `incr_bits`, `set_add`/`set_pop`); and
//! typed values through a [`cashews::Cache`] on the backend (round trips under every codec,
//! tampering, schema changes, single flight).
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::missing_panics_doc,
    reason = "a test kit: a failed expectation is a panic with a message, as in assert! \
              (every case panics when the backend breaks the contract; see `cases`)"
)]

pub mod cases;
pub mod fuzz;
mod harness;
mod origin;

use std::future::Future;

pub use cashews::Result;
pub use harness::{Harness, Setup, Time};
pub use origin::CountingOrigin;

/// Runs one case on a fresh multi-threaded runtime (2 workers): builds the harness with
/// `factory`, then runs `case` on it. A `None` from the factory skips the case.
///
/// # Errors
///
/// The case's error.
///
/// # Panics
///
/// When the runtime cannot start, or a case's expectation fails.
///
/// ```
/// use cashews::MemoryBackend;
/// use cashews_testkit::{Harness, Setup, Time, run, cases};
/// run(Setup::new("basic::get_missing", false),
///     |_| async { Some(Harness::new(MemoryBackend::new(Default::default()), Time::Real)) },
///     cases::basic::get_missing).unwrap();
/// ```
pub fn run<B, F, FF, C, CF>(setup: Setup, factory: F, case: C) -> Result<()>
where
    B: cashews::Backend + Clone,
    F: FnOnce(Setup) -> FF,
    FF: Future<Output = Option<Harness<B>>>,
    C: FnOnce(Harness<B>) -> CF,
    CF: Future<Output = Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the conformance case");
    runtime.block_on(async move {
        match factory(setup).await {
            Some(harness) => case(harness).await,
            None => Ok(()),
        }
    })
}

/// Whether this process runs in CI (`CI` set to anything but empty, `0` or `false`).
///
/// ```
/// let _ = cashews_testkit::in_ci();
/// ```
#[must_use]
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// For a factory whose service is missing: panics in CI (a missing service must fail loudly),
/// otherwise prints why the case is skipped and returns `None`.
///
/// # Panics
///
/// In CI, always, with `reason`.
///
/// ```
/// # if !cashews_testkit::in_ci() {
/// let skipped: Option<()> = cashews_testkit::skip_unless_ci("case", "Redis is not running on 127.0.0.1:6379");
/// assert!(skipped.is_none());
/// # }
/// ```
pub fn skip_unless_ci<T>(case: &str, reason: &str) -> Option<T> {
    assert!(
        !in_ci(),
        "{case}: {reason} (CI must run every conformance case)"
    );
    eprintln!("skipped {case}: {reason}");
    None
}

/// Turns a task's panic into a test failure with the panic's own message.
pub(crate) fn join_error(e: tokio::task::JoinError) -> cashews::Error {
    match e.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(e) => panic!("a conformance task was cancelled: {e}"),
    }
}

/// One `#[test]` per conformance case, each on a backend from `$factory`, an
/// `async fn(Setup) -> Option<Harness<B>>` in scope where the macro is invoked.
///
/// Tests land in modules named for the case groups (`basic::set_conditions`, …), so
/// `cargo nextest run conformance::locks` runs one group.
///
/// ```
/// use cashews::{Clock, MemoryBackend};
/// use cashews_testkit::{Harness, Setup, Time};
///
/// async fn mem(_setup: Setup) -> Option<Harness<MemoryBackend>> {
///     let clock = Clock::manual();
///     let backend = MemoryBackend::with_clock(Default::default(), clock.clone());
///     Some(Harness::new(backend, Time::Manual(clock)))
/// }
///
/// cashews_testkit::conformance_suite!(mem);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($factory:ident) => {
        $crate::__conformance_tests! { $factory;
            basic: get_missing set_get_roundtrip keys_are_opaque set_overwrites set_conditions
                get_many_in_order set_many_writes_all delete_and_delete_many exists_follows_writes
                ping_answers set_without_ttl_persists;
            expiry: ttl_expires expired_is_absent_everywhere get_expire_states expire_sets_ttl
                set_replaces_ttl incr_ttl_on_creation expire_zero_removes expire_none_persists;
            counters: incr_sequence incr_negative incr_wrong_type incr_overflow incr_concurrent;
            patterns: scan_glob delete_match_glob glob_classes_and_escapes scan_batch_sizes;
            locks: set_lock_and_unlock lock_expires set_lock_one_winner
                unlock_wrong_token_concurrent;
            structures: get_bits_missing incr_bits_fields incr_bits_saturates bits_bad_width
                slice_incr_window slice_incr_same_instant slice_incr_ttl slice_incr_concurrent
                slice_incr_now_counts slice_incr_now_forgets slice_incr_now_concurrent
                incr_bits_concurrent set_add_remove_pop set_ttl wrong_type set_concurrent;
            typed: typed_roundtrip typed_counters_and_raw typed_expire_zero_persists typed_get_match typed_tampered_is_miss
                typed_codec_mix typed_schema_change_is_miss typed_get_or_set_single_flight
                typed_lock_guard typed_get_shared;
            admin: get_size;
        }
        $crate::__conformance_tests! { @exclusive $factory;
            admin_exclusive: keys_count_and_clear;
        }
    };
}

/// Expands the case lists of [`conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($factory:ident; $($group:ident : $($case:ident)*;)*) => {
        $(
            mod $group {
                $(
                    #[test]
                    fn $case() -> $crate::Result<()> {
                        $crate::run(
                            $crate::Setup::new(
                                concat!(stringify!($group), "::", stringify!($case)),
                                false,
                            ),
                            super::$factory,
                            $crate::cases::$group::$case,
                        )
                    }
                )*
            }
        )*
    };
    (@exclusive $factory:ident; $($group:ident : $($case:ident)*;)*) => {
        $(
            mod $group {
                $(
                    #[test]
                    fn $case() -> $crate::Result<()> {
                        $crate::run(
                            $crate::Setup::new(concat!("admin::", stringify!($case)), true),
                            super::$factory,
                            $crate::cases::admin::$case,
                        )
                    }
                )*
            }
        )*
    };
}
