//! Model-based tests: random command sequences against a `BTreeMap` model of what a cache
//! must answer, on every backend.
//!
//! - `mem_follows_the_model`: many sequences on `mem://` with a manual clock, time moving
//!   between commands (expiry of values, sets, windows and locks included).
//! - `every_backend_gives_the_model_replies`: sequences without time moves (the servers keep
//!   their own time) on mem, disk, Redis, Redis with the client-side tier, and Redis Cluster;
//!   every reply of every backend equals the model's, so the backends agree with each other.
//!
//! Keys are typed by name so that each command meets the kinds of values it works on, and the
//! type errors are exercised on purpose: `v*` hold values (integers or text), `s*` sets, `w*`
//! sliding windows, `l*` locks; `incr` also runs on text values (a `WrongType` error).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cashews::backend::Expiry;
use cashews::{Cache, Clock};
use futures_util::StreamExt;
use proptest::prelude::*;
use serde_json::Value as Json;

/// A value key's content.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Int(i64),
    Text(String),
}

/// What a key holds in the model.
#[derive(Debug, Clone, PartialEq)]
enum Data {
    Val(Val),
    Set(BTreeSet<String>),
    Window(Vec<u64>),
    Lock(String),
}

/// One command and its arguments. TTLs are whole seconds (`None`: no expiry).
#[derive(Debug, Clone)]
enum Op {
    Set(u8, Val, Option<u64>),
    SetIfAbsent(u8, Val, Option<u64>),
    SetIfPresent(u8, Val, Option<u64>),
    Get(u8),
    Incr(u8, i64, Option<u64>),
    IncrText(u8),
    Delete(char, u8),
    DeleteMatch(&'static str),
    Scan(&'static str),
    Exists(char, u8),
    Expire(char, u8, u64),
    GetExpire(char, u8),
    SetAdd(u8, Vec<&'static str>, Option<u64>),
    SetRemove(u8, Vec<&'static str>),
    Window(u8, u64, u64, u64, Option<u64>),
    Lock(u8, &'static str, u64),
    Unlock(u8, &'static str),
    IsLocked(u8),
    /// Moves the clock (only in the manual-clock run).
    Advance(u64),
}

/// A command's reply, in one shape for every backend.
#[derive(Debug, Clone, PartialEq)]
enum Reply {
    Bool(bool),
    Int(i64),
    Count(u64),
    Val(Option<Val>),
    Keys(BTreeSet<String>),
    Expiry(Option<Option<u64>>),
    Error,
    Done,
}

const PATTERNS: &[&str] = &["v*", "s?", "w1", "*", "l*", "[vs]0", "nothing*"];
const MEMBERS: &[&str] = &["a", "b", "c", "d"];
const TOKENS: &[&str] = &["t1", "t2"];

/// The shortest TTL of a run: 1 s with a manual clock; a minute on the real clock, so that
/// nothing expires during a run however slow the machine.
fn shortest(with_time: bool) -> u64 {
    if with_time { 1 } else { 60 }
}

fn ttl(with_time: bool) -> impl Strategy<Value = Option<u64>> {
    prop_oneof![Just(None), (shortest(with_time)..400).prop_map(Some)]
}

fn val() -> impl Strategy<Value = Val> {
    prop_oneof![
        (-5i64..50).prop_map(Val::Int),
        "[a-z]{0,6}".prop_map(Val::Text),
    ]
}

fn kind() -> impl Strategy<Value = char> {
    prop::sample::select(vec!['v', 's', 'w', 'l'])
}

fn members() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(prop::sample::select(MEMBERS), 1..4)
}

fn op(with_time: bool) -> impl Strategy<Value = Op> {
    let k = || 0u8..4;
    let ops = prop_oneof![
        (k(), val(), ttl(with_time)).prop_map(|(k, v, t)| Op::Set(k, v, t)),
        (k(), val(), ttl(with_time)).prop_map(|(k, v, t)| Op::SetIfAbsent(k, v, t)),
        (k(), val(), ttl(with_time)).prop_map(|(k, v, t)| Op::SetIfPresent(k, v, t)),
        k().prop_map(Op::Get),
        (k(), -3i64..10, ttl(with_time)).prop_map(|(k, by, t)| Op::Incr(k, by, t)),
        k().prop_map(Op::IncrText),
        (kind(), k()).prop_map(|(c, k)| Op::Delete(c, k)),
        prop::sample::select(PATTERNS).prop_map(Op::DeleteMatch),
        prop::sample::select(PATTERNS).prop_map(Op::Scan),
        (kind(), k()).prop_map(|(c, k)| Op::Exists(c, k)),
        (kind(), k(), shortest(with_time)..400).prop_map(|(c, k, t)| Op::Expire(c, k, t)),
        (kind(), k()).prop_map(|(c, k)| Op::GetExpire(c, k)),
        (k(), members(), ttl(with_time)).prop_map(|(k, m, t)| Op::SetAdd(k, m, t)),
        (k(), members()).prop_map(|(k, m)| Op::SetRemove(k, m)),
        (k(), 0u64..50, 0u64..30, 1u64..4, ttl(with_time))
            .prop_map(|(k, start, len, max, t)| Op::Window(k, start, start + len, max, t)),
        (k(), prop::sample::select(TOKENS), 1u64..400).prop_map(|(k, tok, t)| Op::Lock(k, tok, t)),
        (k(), prop::sample::select(TOKENS)).prop_map(|(k, tok)| Op::Unlock(k, tok)),
        k().prop_map(Op::IsLocked),
    ];
    if with_time {
        prop_oneof![9 => ops, 1 => (1u64..300).prop_map(Op::Advance)].boxed()
    } else {
        ops.boxed()
    }
}

/// The model: data and deadlines (milliseconds on the model's clock).
#[derive(Debug, Default)]
struct Model {
    now: u64,
    keys: BTreeMap<String, (Data, Option<u64>)>,
}

impl Model {
    fn live(&mut self, key: &str) -> Option<&mut (Data, Option<u64>)> {
        let now = self.now;
        if self
            .keys
            .get(key)
            .is_some_and(|(_, d)| d.is_some_and(|d| d <= now))
        {
            self.keys.remove(key);
        }
        self.keys.get_mut(key)
    }

    fn deadline(&self, ttl: Option<u64>) -> Option<u64> {
        ttl.map(|s| self.now + s * 1000)
    }

    fn live_keys(&mut self) -> Vec<String> {
        let names: Vec<String> = self.keys.keys().cloned().collect();
        names
            .into_iter()
            .filter(|k| self.live(k).is_some())
            .collect()
    }

    fn set(&mut self, key: String, v: &Val, ttl: Option<u64>) {
        let deadline = self.deadline(ttl);
        self.keys.insert(key, (Data::Val(v.clone()), deadline));
    }

    fn apply(&mut self, op: &Op) -> Reply {
        match op {
            Op::Set(k, v, t) => {
                self.set(format!("v{k}"), v, *t);
                Reply::Bool(true)
            }
            Op::SetIfAbsent(k, v, t) => {
                let key = format!("v{k}");
                if self.live(&key).is_some() {
                    return Reply::Bool(false);
                }
                self.set(key, v, *t);
                Reply::Bool(true)
            }
            Op::SetIfPresent(k, v, t) => {
                let key = format!("v{k}");
                if self.live(&key).is_none() {
                    return Reply::Bool(false);
                }
                self.set(key, v, *t);
                Reply::Bool(true)
            }
            Op::Get(k) => match self.live(&format!("v{k}")) {
                Some((Data::Val(v), _)) => Reply::Val(Some(v.clone())),
                _ => Reply::Val(None),
            },
            Op::Incr(k, by, t) => {
                let key = format!("v{k}");
                let deadline = self.deadline(*t);
                match self.live(&key) {
                    None => {
                        self.keys.insert(key, (Data::Val(Val::Int(*by)), deadline));
                        Reply::Int(*by)
                    }
                    Some((Data::Val(Val::Int(n)), _)) => {
                        *n += by;
                        Reply::Int(*n)
                    }
                    Some(_) => Reply::Error,
                }
            }
            Op::IncrText(k) => {
                let key = format!("v{k}");
                self.set(key, &Val::Text("text".to_owned()), None);
                Reply::Error
            }
            Op::Delete(c, k) => Reply::Bool(
                self.live(&format!("{c}{k}")).is_some() && {
                    self.keys.remove(&format!("{c}{k}"));
                    true
                },
            ),
            Op::DeleteMatch(p) => {
                let gone: Vec<String> = self
                    .live_keys()
                    .into_iter()
                    .filter(|k| cashews::pattern::matches(p, k))
                    .collect();
                for k in &gone {
                    self.keys.remove(k);
                }
                Reply::Count(gone.len() as u64)
            }
            Op::Scan(p) => Reply::Keys(
                self.live_keys()
                    .into_iter()
                    .filter(|k| cashews::pattern::matches(p, k))
                    .collect(),
            ),
            Op::Exists(c, k) => Reply::Bool(self.live(&format!("{c}{k}")).is_some()),
            Op::Expire(c, k, t) => {
                let deadline = self.deadline(Some(*t));
                match self.live(&format!("{c}{k}")) {
                    Some(entry) => {
                        entry.1 = deadline;
                        Reply::Bool(true)
                    }
                    None => Reply::Bool(false),
                }
            }
            Op::GetExpire(c, k) => {
                let now = self.now;
                Reply::Expiry(
                    self.live(&format!("{c}{k}"))
                        .map(|(_, d)| d.map(|d| (d - now + 500) / 1000)),
                )
            }
            Op::SetAdd(k, members, t) => {
                let key = format!("s{k}");
                let deadline = self.deadline(*t);
                let entry = self
                    .live(&key)
                    .map(|e| e.clone())
                    .unwrap_or((Data::Set(BTreeSet::new()), None));
                let (Data::Set(mut set), old) = entry else {
                    return Reply::Error;
                };
                let added = members
                    .iter()
                    .filter(|m| set.insert((**m).to_owned()))
                    .count();
                self.keys.insert(
                    key,
                    (Data::Set(set), if t.is_some() { deadline } else { old }),
                );
                Reply::Count(added as u64)
            }
            Op::SetRemove(k, members) => {
                let key = format!("s{k}");
                let Some((Data::Set(set), _)) = self.live(&key) else {
                    return Reply::Count(0);
                };
                let removed = members.iter().filter(|m| set.remove(**m)).count();
                if set.is_empty() {
                    self.keys.remove(&key);
                }
                Reply::Count(removed as u64)
            }
            Op::Window(k, start, end, max, t) => {
                let key = format!("w{k}");
                let deadline = self.deadline(*t);
                let (mut events, old) = match self.live(&key) {
                    Some((Data::Window(e), d)) => (e.clone(), *d),
                    Some(_) => return Reply::Error,
                    None => (Vec::new(), None),
                };
                events.retain(|&e| e >= *start);
                let count = events.iter().filter(|&&e| e <= *end).count() as u64;
                if count >= *max {
                    self.keys.insert(key, (Data::Window(events), old));
                    return Reply::Count(count);
                }
                events.push(*end);
                events.sort_unstable();
                let deadline = if t.is_some() { deadline } else { old };
                self.keys.insert(key, (Data::Window(events), deadline));
                Reply::Count(count + 1)
            }
            Op::Lock(k, token, t) => {
                let key = format!("l{k}");
                if self.live(&key).is_some() {
                    return Reply::Bool(false);
                }
                let deadline = self.deadline(Some(*t));
                self.keys
                    .insert(key, (Data::Lock((*token).to_owned()), deadline));
                Reply::Bool(true)
            }
            Op::Unlock(k, token) => {
                let key = format!("l{k}");
                match self.live(&key) {
                    Some((Data::Lock(held), _)) if held == token => {
                        self.keys.remove(&key);
                        Reply::Bool(true)
                    }
                    _ => Reply::Bool(false),
                }
            }
            Op::IsLocked(k) => Reply::Bool(self.live(&format!("l{k}")).is_some()),
            Op::Advance(s) => {
                self.now += s * 1000;
                Reply::Done
            }
        }
    }
}

fn secs(t: Option<u64>) -> Option<Duration> {
    t.map(Duration::from_secs)
}

/// Runs `op` on `cache` and puts the reply in the model's shape.
async fn run(cache: &Cache, clock: Option<&Clock>, op: &Op) -> Reply {
    fn or_error<T>(r: cashews::Result<T>, f: impl FnOnce(T) -> Reply) -> Reply {
        r.map_or(Reply::Error, f)
    }
    let text = |v: &Val| match v {
        Val::Int(n) => Json::from(*n),
        Val::Text(s) => Json::from(s.clone()),
    };
    match op {
        Op::Set(k, v, t) => or_error(
            cache.set(&format!("v{k}"), &text(v), secs(*t)).await,
            Reply::Bool,
        ),
        Op::SetIfAbsent(k, v, t) => or_error(
            cache
                .set_if_absent(&format!("v{k}"), &text(v), secs(*t))
                .await,
            Reply::Bool,
        ),
        Op::SetIfPresent(k, v, t) => or_error(
            cache
                .set_if_present(&format!("v{k}"), &text(v), secs(*t))
                .await,
            Reply::Bool,
        ),
        Op::Get(k) => or_error(cache.get::<Json>(&format!("v{k}")).await, |v| {
            Reply::Val(v.map(|v| match v {
                Json::Number(n) => Val::Int(n.as_i64().unwrap_or(i64::MIN)),
                Json::String(s) => Val::Text(s),
                other => Val::Text(format!("unexpected {other}")),
            }))
        }),
        Op::Incr(k, by, t) => or_error(
            cache.incr_by(&format!("v{k}"), *by, secs(*t)).await,
            Reply::Int,
        ),
        Op::IncrText(k) => {
            let key = format!("v{k}");
            if cache.set(&key, "text", None::<u64>).await.is_err() {
                return Reply::Bool(false);
            }
            or_error(cache.incr(&key).await, Reply::Int)
        }
        Op::Delete(c, k) => or_error(cache.delete(&format!("{c}{k}")).await, Reply::Bool),
        Op::DeleteMatch(p) => or_error(cache.delete_match(p).await, Reply::Count),
        Op::Scan(p) => {
            let mut keys = BTreeSet::new();
            let mut stream = cache.scan(p);
            while let Some(key) = stream.next().await {
                match key {
                    Ok(key) => keys.insert(key),
                    Err(_) => return Reply::Error,
                };
            }
            Reply::Keys(keys)
        }
        Op::Exists(c, k) => or_error(cache.exists(&format!("{c}{k}")).await, Reply::Bool),
        Op::Expire(c, k, t) => or_error(cache.expire(&format!("{c}{k}"), *t).await, Reply::Bool),
        Op::GetExpire(c, k) => or_error(cache.get_expire(&format!("{c}{k}")).await, |e| {
            Reply::Expiry(match e {
                Expiry::Missing => None,
                Expiry::Persistent => Some(None),
                other => Some(other.as_secs_rounded()),
            })
        }),
        Op::SetAdd(k, m, t) => or_error(
            cache.set_add(&format!("s{k}"), m, secs(*t)).await,
            Reply::Count,
        ),
        Op::SetRemove(k, m) => or_error(cache.set_remove(&format!("s{k}"), m).await, Reply::Count),
        Op::Window(k, start, end, max, t) => or_error(
            cache
                .slice_incr(&format!("w{k}"), *start, *end, *max, secs(*t))
                .await,
            Reply::Count,
        ),
        Op::Lock(k, token, t) => or_error(
            cache.set_lock(&format!("l{k}"), token, *t).await,
            Reply::Bool,
        ),
        Op::Unlock(k, token) => or_error(cache.unlock(&format!("l{k}"), token).await, Reply::Bool),
        Op::IsLocked(k) => or_error(cache.is_locked(&format!("l{k}")).await, Reply::Bool),
        Op::Advance(s) => {
            if let Some(clock) = clock {
                clock.advance(Duration::from_secs(*s));
            }
            Reply::Done
        }
    }
}

/// Runs `ops` on `cache` and on a fresh model; the first reply that differs is an error
/// naming the step.
async fn check(name: &str, cache: &Cache, clock: Option<&Clock>, ops: &[Op]) -> Result<(), String> {
    let mut model = Model::default();
    for (i, op) in ops.iter().enumerate() {
        let want = model.apply(op);
        let got = run(cache, clock, op).await;
        // On a real clock a remaining TTL may have lost a second or two to a slow machine.
        let close = match (&got, &want) {
            (Reply::Expiry(Some(Some(got))), Reply::Expiry(Some(Some(want)))) => {
                clock.is_none() && got <= want && want - got <= 2
            }
            _ => false,
        };
        if got != want && !close {
            return Err(format!(
                "{name}: step {i} {op:?}: backend answered {got:?}, the model {want:?}\nsequence: {ops:?}"
            ));
        }
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(crate::support::fixed_seed(200))]

    #[test]
    fn mem_follows_the_model(ops in prop::collection::vec(op(true), 1..80)) {
        let outcome = runtime().block_on(async {
            let clock = Clock::manual();
            let cache = Cache::new();
            cache.setup_with_clock("mem://", clock.clone()).unwrap();
            check("mem", &cache, Some(&clock), &ops).await
        });
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}

/// The backends of this build that answer: `(name, url)`. Redis URLs get a key prefix of
/// their own per call, and safe mode off (it is on by default there, and would turn the type
/// errors into neutral replies); a server that does not answer is skipped outside CI.
async fn backends(dir: &std::path::Path) -> Vec<(String, Cache)> {
    let mut urls = vec![("mem".to_owned(), "mem://".to_owned())];
    #[cfg(feature = "disk")]
    urls.push((
        "disk".to_owned(),
        format!("disk://?directory={}&shards=3", dir.display()),
    ));
    #[cfg(feature = "redis")]
    {
        let redis = crate::support::redis_url();
        let cluster = std::env::var("CASHEWS_REDIS_CLUSTER_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:7000?cluster=true".to_owned());
        for (name, url, sep) in [
            ("redis", redis.clone(), '?'),
            ("client-side", format!("{redis}?client_side=true"), '&'),
            ("cluster", cluster, '&'),
        ] {
            let prefix = crate::support::unique_prefix("model");
            urls.push((
                name.to_owned(),
                format!("{url}{sep}key_prefix={prefix}&suppress=false"),
            ));
        }
    }
    let _ = dir;
    let mut caches = Vec::new();
    for (name, url) in urls {
        let cache = Cache::new();
        cache.setup(&url).unwrap();
        match cache.ping().await {
            Ok(_) => caches.push((name, cache)),
            Err(e) => {
                cashews_testkit::skip_unless_ci::<()>(&format!("model on {name}"), &e.to_string());
            }
        }
    }
    caches
}

/// Runs `ops` on every backend against a fresh model each, without moving time.
fn on_every_backend(ops: &[Op]) -> Result<(), String> {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        for (name, cache) in backends(dir.path()).await {
            let outcome = check(&name, &cache, None, ops).await;
            cache.delete_match("*").await.ok();
            outcome?;
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(crate::support::fixed_seed(24))]

    #[test]
    fn every_backend_gives_the_model_replies(ops in prop::collection::vec(op(false), 1..60)) {
        let outcome = on_every_backend(&ops);
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}

/// Found by the model: forgetting every event of a window then recording one made Redis's
/// window persistent (its sorted set was deleted and created again without the TTL).
#[test]
fn a_window_keeps_its_ttl_when_every_event_is_forgotten() {
    let ops = [
        Op::Window(1, 0, 0, 1, Some(60)),
        Op::Window(1, 1, 1, 1, None),
        Op::GetExpire('w', 1),
    ];
    let outcome = on_every_backend(&ops);
    assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
}
