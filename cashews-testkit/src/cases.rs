//! The conformance cases, one async function each, grouped by what they exercise.
//!
//! Every case takes a [`Harness`](crate::Harness), touches only keys under
//! [`Harness::key`](crate::Harness::key) (except the exclusive ones in [`admin`]) and returns
//! `Err` for a backend error, or panics with a message naming what differed.

pub mod admin;
pub mod basic;
pub mod counters;
pub mod expiry;
pub mod locks;
pub mod patterns;
pub mod structures;
pub mod typed;
