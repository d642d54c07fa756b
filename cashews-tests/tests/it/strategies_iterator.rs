//! The `iterator` strategy: streams cached item by item.
//!
//! Every cache runs on a manual clock: tests move time instead of sleeping, and count how
//! often the origin stream was polled, never how long anything took.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use crate::support::{manual_cache as mem, secs};
use cashews::backend::Expiry;
use cashews::config::MemoryOptions;
use cashews::strategy::{Fallible, IteratorOptions, Optional, Plain, StoreCondition, iterator};
use cashews::{Cache, Clock, MemoryBackend, Ttl};
use futures_core::Stream;
use futures_util::{StreamExt, stream};

const OPTIONS: IteratorOptions = IteratorOptions::new();

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Counts how often origin streams were polled (every `poll_next`, the final `None`
/// included) and how many items they yielded.
#[derive(Debug, Clone, Default)]
struct Source {
    polls: Arc<AtomicUsize>,
    items: Arc<AtomicUsize>,
}

impl Source {
    fn polls(&self) -> usize {
        self.polls.load(Ordering::SeqCst)
    }

    fn items(&self) -> usize {
        self.items.load(Ordering::SeqCst)
    }

    /// An origin yielding `items`, counted.
    fn over<T: Send + 'static>(&self, items: Vec<T>) -> impl Stream<Item = T> + Send + 'static {
        let (polls, counted) = (Arc::clone(&self.polls), Arc::clone(&self.items));
        let mut items = items.into_iter();
        stream::poll_fn(move |_| {
            polls.fetch_add(1, Ordering::SeqCst);
            let next = items.next();
            if next.is_some() {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            Poll::Ready(next)
        })
    }
}

/// Collects a plain stream of strings cached under `key` (ttl 10 s).
async fn words(cache: &Cache, key: &str, origin: impl Stream<Item = String>) -> Vec<String> {
    iterator(cache, key, Ttl::secs(10), &OPTIONS, Plain::new(), origin)
        .collect()
        .await
}

#[derive(Debug, Clone, PartialEq)]
struct MyErr;

type Chunk = Result<String, MyErr>;

/// The source of SPEC §9 scenarios 93 and 94: every poll is one call of a scripted function
/// that returns the next scripted result; an error ends the stream after it is yielded (a
/// raising generator), and the end of the script ends it too (one more call).
#[derive(Debug, Clone)]
struct Script {
    calls: Arc<AtomicUsize>,
    queue: Arc<Mutex<VecDeque<Chunk>>>,
}

impl Script {
    fn new(script: Vec<Chunk>) -> Self {
        Self {
            calls: Arc::default(),
            queue: Arc::new(Mutex::new(script.into())),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn source(&self) -> impl Stream<Item = Chunk> + Send + 'static {
        let script = self.clone();
        let mut failed = false;
        stream::poll_fn(move |_| {
            if failed {
                return Poll::Ready(None);
            }
            script.calls.fetch_add(1, Ordering::SeqCst);
            let next = script.queue.lock().unwrap().pop_front();
            failed = matches!(next, Some(Err(_)));
            Poll::Ready(next)
        })
    }

    /// One pass cached under `iterator`, as in the scenarios: what it yielded.
    async fn pass(&self, cache: &Cache) -> Vec<Chunk> {
        let shape = Fallible::<String, MyErr>::new();
        iterator(
            cache,
            "iterator",
            Ttl::secs(10),
            &OPTIONS,
            shape,
            self.source(),
        )
        .collect()
        .await
    }
}

fn ok(s: &str) -> Chunk {
    Ok(s.to_owned())
}

// ----- hits and misses --------------------------------------------------------------------

/// SPEC §9 scenario 92.
#[tokio::test]
async fn full_pass_then_hit_does_not_poll_the_origin() {
    let (cache, _clock) = mem();
    let source = Source::default();
    let chunks = strings(&["a", "b", "c", "d"]);

    let first = words(&cache, "iterator", source.over(chunks.clone())).await;
    assert_eq!(first, chunks);
    assert_eq!((source.items(), source.polls()), (4, 5));

    let second = words(&cache, "iterator", source.over(chunks.clone())).await;
    assert_eq!(second, chunks);
    assert_eq!(
        (source.items(), source.polls()),
        (4, 5),
        "a hit polls nothing"
    );
}

#[tokio::test]
async fn storage_layout_is_a_counting_marker_and_numbered_items() {
    let (cache, _clock) = mem();
    let source = Source::default();
    words(&cache, "k", source.over(strings(&["x", "y"]))).await;

    assert_eq!(cache.get::<u64>("k").await.unwrap(), Some(2));
    assert_eq!(
        cache.get::<String>("k:0").await.unwrap().as_deref(),
        Some("x")
    );
    assert_eq!(
        cache.get::<String>("k:1").await.unwrap().as_deref(),
        Some("y")
    );
    assert!(!cache.exists("k:2").await.unwrap());
}

#[tokio::test]
async fn empty_stream_is_cached_as_empty() {
    let (cache, _clock) = mem();
    let source = Source::default();

    assert!(words(&cache, "empty", source.over(vec![])).await.is_empty());
    assert_eq!(source.polls(), 1);
    assert_eq!(cache.get::<u64>("empty").await.unwrap(), Some(0));

    let again = words(&cache, "empty", source.over(strings(&["not", "polled"]))).await;
    assert!(again.is_empty());
    assert_eq!(source.polls(), 1, "the empty replay polls nothing");
}

#[tokio::test]
async fn falsy_items_are_replayed_like_any_other() {
    // SPEC §9 scenario 94 [PORT]: "a", "", "c" replay all three.
    let (cache, _clock) = mem();
    let source = Source::default();
    let chunks = strings(&["a", "", "c"]);
    words(&cache, "falsy", source.over(chunks.clone())).await;

    let replay = words(&cache, "falsy", source.over(vec![])).await;
    assert_eq!(replay, chunks);
    assert_eq!(source.items(), 3);
}

#[tokio::test]
async fn leftover_items_of_a_longer_earlier_run_are_not_replayed() {
    let (cache, _clock) = mem();
    let source = Source::default();
    words(&cache, "left", source.over(strings(&["a", "b", "c", "d"]))).await;
    cache.delete("left").await.unwrap();

    words(&cache, "left", source.over(strings(&["e", "f"]))).await;
    assert!(
        cache.exists("left:3").await.unwrap(),
        "the old item is still there"
    );

    let replay = words(&cache, "left", source.over(vec![])).await;
    assert_eq!(replay, strings(&["e", "f"]));
    assert_eq!(source.items(), 6);
}

#[tokio::test]
async fn long_streams_replay_across_read_pages() {
    let clock = Clock::manual();
    let cache = Cache::new();
    let memory = MemoryBackend::with_clock(MemoryOptions::with_size(10_000), clock);
    cache.setup_backend("", memory, Default::default()).unwrap();
    let source = Source::default();
    let numbers: Vec<u32> = (0..1_300).collect();
    let run = |origin| {
        iterator(
            &cache,
            "long",
            Ttl::secs(10),
            &OPTIONS,
            Plain::new(),
            origin,
        )
        .collect::<Vec<u32>>()
    };

    assert_eq!(run(source.over(numbers.clone())).await, numbers);
    assert_eq!(run(source.over(vec![])).await, numbers);
    assert_eq!(source.items(), 1_300);
}

#[tokio::test]
async fn a_stream_larger_than_the_memory_cache_is_served_from_the_origin() {
    let (cache, _clock) = mem(); // 1000 entries: some of the 1300 items are evicted
    let source = Source::default();
    let numbers: Vec<u32> = (0..1_300).collect();
    let run = |origin| {
        iterator(
            &cache,
            "huge",
            Ttl::secs(10),
            &OPTIONS,
            Plain::new(),
            origin,
        )
        .collect::<Vec<u32>>()
    };

    assert_eq!(run(source.over(numbers.clone())).await, numbers);
    assert_eq!(run(source.over(numbers.clone())).await, numbers);
    assert_eq!(source.items(), 2_600, "never a partial replay");
}

// ----- partial runs, errors, evictions ----------------------------------------------------

#[tokio::test]
async fn half_consumed_stream_leaves_no_marker() {
    let (cache, _clock) = mem();
    let source = Source::default();
    let chunks = strings(&["a", "b", "c", "d"]);

    let mut stream = Box::pin(iterator(
        &cache,
        "half",
        Ttl::secs(10),
        &OPTIONS,
        Plain::new(),
        source.over(chunks.clone()),
    ));
    assert_eq!(stream.next().await.as_deref(), Some("a"));
    assert_eq!(stream.next().await.as_deref(), Some("b"));
    drop(stream);

    assert!(!cache.exists("half").await.unwrap(), "no marker");
    assert!(
        cache.exists("half:1").await.unwrap(),
        "the items read so far were stored"
    );

    assert_eq!(
        words(&cache, "half", source.over(chunks.clone())).await,
        chunks
    );
    assert_eq!(source.items(), 2 + 4, "the next call recomputes");
    assert_eq!(words(&cache, "half", source.over(vec![])).await, chunks);
    assert_eq!(source.items(), 6);
}

/// SPEC §9 scenario 94: source `a`, raise, `c`.
#[tokio::test]
async fn an_error_is_passed_through_and_the_next_call_recomputes() {
    let (cache, _clock) = mem();
    let script = Script::new(vec![ok("a"), Err(MyErr), ok("c")]);

    assert_eq!(script.pass(&cache).await, [ok("a"), Err(MyErr)]);
    assert_eq!(script.calls(), 2);
    assert!(!cache.exists("iterator").await.unwrap());

    assert_eq!(script.pass(&cache).await, [ok("c")]);
    assert_eq!(script.calls(), 4);

    assert_eq!(script.pass(&cache).await, [ok("c")]);
    assert_eq!(script.calls(), 4, "the third pass replays");
}

/// SPEC §9 scenario 93 asks for cached errors (`with_exceptions`); errors are never cached
/// here, so the second pass runs the source again instead of replaying "ab" and the error.
#[tokio::test]
async fn errors_are_never_cached() {
    let (cache, _clock) = mem();
    let script = Script::new(vec![ok("a"), ok("b"), Err(MyErr), ok("c"), ok("d")]);

    assert_eq!(script.pass(&cache).await, [ok("a"), ok("b"), Err(MyErr)]);
    assert_eq!(script.calls(), 3);

    assert_eq!(script.pass(&cache).await, [ok("c"), ok("d")]);
    assert_eq!(script.calls(), 6);
    assert_eq!(script.pass(&cache).await, [ok("c"), ok("d")]);
    assert_eq!(script.calls(), 6);
}

#[tokio::test]
async fn items_after_an_error_are_passed_through_unstored() {
    let (cache, _clock) = mem();
    let source = Source::default();
    let shape = Fallible::<u32, MyErr>::new();
    let origin = source.over(vec![Ok(1), Err(MyErr), Ok(3)]);
    let got: Vec<_> = iterator(&cache, "after", Ttl::secs(10), &OPTIONS, shape, origin)
        .collect()
        .await;

    assert_eq!(got, [Ok(1), Err(MyErr), Ok(3)]);
    assert!(cache.exists("after:0").await.unwrap());
    assert!(
        !cache.exists("after:1").await.unwrap(),
        "caching ended at the error"
    );
    assert!(!cache.exists("after").await.unwrap());
}

#[tokio::test]
async fn an_evicted_item_makes_the_call_a_miss() {
    let (cache, _clock) = mem();
    let source = Source::default();
    words(&cache, "evicted", source.over(strings(&["a", "b", "c"]))).await;
    cache.delete("evicted:1").await.unwrap();

    // Served from the origin, whole, and stored again.
    let fresh = strings(&["x", "y", "z"]);
    assert_eq!(
        words(&cache, "evicted", source.over(fresh.clone())).await,
        fresh
    );
    assert_eq!(source.items(), 6);
    assert_eq!(words(&cache, "evicted", source.over(vec![])).await, fresh);
    assert_eq!(source.items(), 6);
}

#[tokio::test]
async fn an_incomplete_replay_deletes_the_stale_marker() {
    let (cache, _clock) = mem();
    let source = Source::default();
    words(&cache, "stale", source.over(strings(&["a", "b", "c"]))).await;
    cache.delete("stale:2").await.unwrap();

    // The recomputing run is dropped after its first item: nothing may look complete.
    let mut stream = Box::pin(iterator(
        &cache,
        "stale",
        Ttl::secs(10),
        &OPTIONS,
        Plain::new(),
        source.over(strings(&["x", "y", "z"])),
    ));
    assert_eq!(stream.next().await.as_deref(), Some("x"));
    drop(stream);
    assert!(!cache.exists("stale").await.unwrap());
}

#[tokio::test]
async fn an_undecodable_marker_is_a_miss() {
    let (cache, _clock) = mem();
    let source = Source::default();
    cache.set("odd", "not a count", 10).await.unwrap();

    let chunks = strings(&["a"]);
    assert_eq!(
        words(&cache, "odd", source.over(chunks.clone())).await,
        chunks
    );
    assert_eq!(source.items(), 1);
    assert_eq!(cache.get::<u64>("odd").await.unwrap(), Some(1));
}

#[tokio::test]
async fn a_failing_cache_serves_the_origin_every_time() {
    let cache = Cache::new(); // no backend: every command fails
    let source = Source::default();
    let chunks = strings(&["a", "b"]);

    assert_eq!(
        words(&cache, "k", source.over(chunks.clone())).await,
        chunks
    );
    assert_eq!(
        words(&cache, "k", source.over(chunks.clone())).await,
        chunks
    );
    assert_eq!(source.items(), 4);
}

// ----- TTLs -------------------------------------------------------------------------------

#[tokio::test]
async fn a_pass_expires_with_its_ttl() {
    let (cache, clock) = mem();
    let source = Source::default();
    let chunks = strings(&["a", "b"]);
    words(&cache, "exp", source.over(chunks.clone())).await;

    clock.advance(secs(9));
    assert_eq!(
        words(&cache, "exp", source.over(chunks.clone())).await,
        chunks
    );
    assert_eq!(source.items(), 2, "still a hit");

    clock.advance(secs(1));
    assert_eq!(
        words(&cache, "exp", source.over(chunks.clone())).await,
        chunks
    );
    assert_eq!(source.items(), 4, "expired: recomputed");
}

#[tokio::test]
async fn the_marker_lives_ttl_minus_the_time_the_stream_took() {
    let (cache, clock) = mem();
    let source = Source::default();
    let mut stream = std::pin::pin!(iterator(
        &cache,
        "slow",
        Ttl::secs(10),
        &OPTIONS,
        Plain::new(),
        source.over(strings(&["a", "b"])),
    ));
    assert_eq!(stream.next().await.as_deref(), Some("a"));
    clock.advance(secs(3));
    assert_eq!(stream.next().await.as_deref(), Some("b"));
    clock.advance(secs(1));
    assert_eq!(stream.next().await, None);

    assert_eq!(cache.get_expire("slow").await.unwrap(), Expiry::In(secs(6)));
    assert_eq!(
        cache.get_expire("slow:0").await.unwrap(),
        Expiry::In(secs(6))
    );
    assert_eq!(
        cache.get_expire("slow:1").await.unwrap(),
        Expiry::In(secs(9))
    );

    // The marker goes with the first item: the next call is a miss, never a partial replay.
    clock.advance(secs(6));
    assert!(cache.exists("slow:1").await.unwrap());
    words(&cache, "slow", source.over(strings(&["c"]))).await;
    assert_eq!(source.items(), 3);
}

#[tokio::test]
async fn a_stream_slower_than_its_ttl_is_not_cached() {
    let (cache, clock) = mem();
    let source = Source::default();
    let mut stream = std::pin::pin!(iterator(
        &cache,
        "late",
        Ttl::secs(10),
        &OPTIONS,
        Plain::new(),
        source.over(strings(&["a"])),
    ));
    assert_eq!(stream.next().await.as_deref(), Some("a"));
    clock.advance(secs(10));
    assert_eq!(stream.next().await, None);
    assert!(!cache.exists("late").await.unwrap());
}

#[tokio::test]
async fn no_ttl_means_a_marker_that_never_expires() {
    let (cache, clock) = mem();
    let source = Source::default();
    let origin = source.over(strings(&["a"]));
    let _: Vec<String> = iterator(&cache, "forever", Ttl::NONE, &OPTIONS, Plain::new(), origin)
        .collect()
        .await;
    clock.advance(secs(5));
    assert_eq!(
        cache.get_expire("forever").await.unwrap(),
        Expiry::Persistent
    );
    assert_eq!(
        cache.get_expire("forever:0").await.unwrap(),
        Expiry::Persistent
    );
}

// ----- conditions, shapes -----------------------------------------------------------------

#[tokio::test]
async fn option_items_are_stored_whole_unless_not_none() {
    let (cache, _clock) = mem();
    let source = Source::default();
    let items = vec![Some(1), None, Some(3)];
    let shape = Optional::<u32>::new();
    let run = |key: &'static str, options: IteratorOptions, origin| {
        iterator(&cache, key, Ttl::secs(10), &options, shape, origin).collect::<Vec<_>>()
    };

    let all = IteratorOptions::new();
    assert_eq!(run("all", all, source.over(items.clone())).await, items);
    assert_eq!(run("all", all, source.over(vec![])).await, items);

    let not_none = IteratorOptions::new().condition(StoreCondition::NotNone);
    assert_eq!(
        run("some", not_none, source.over(items.clone())).await,
        items
    );
    assert_eq!(
        run("some", not_none, source.over(vec![])).await,
        [Some(1), Some(3)]
    );
    assert_eq!(source.items(), 6);
}

// ----- ownership, concurrency -------------------------------------------------------------

/// What `#[cashews::iterator]` on `fn numbers(..) -> impl Stream<Item = u32>` can return:
/// the key and the cache reference do not outlive the call.
fn numbers(cache: &Cache, n: u32) -> impl Stream<Item = u32> + Send + 'static {
    let key = format!("numbers:{n}");
    iterator(
        cache,
        &key,
        Ttl::secs(10),
        &OPTIONS,
        Plain::new(),
        stream::iter(0..n),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_is_static_and_send() {
    let (cache, _clock) = mem();
    let stream = numbers(&cache, 3);
    drop(cache);
    let got = tokio::spawn(stream.collect::<Vec<u32>>()).await.unwrap();
    assert_eq!(got, [0, 1, 2]);
}

#[tokio::test]
async fn a_finished_stream_keeps_answering_none() {
    let (cache, _clock) = mem();
    let mut stream = std::pin::pin!(numbers(&cache, 1));
    assert_eq!(stream.next().await, Some(0));
    assert_eq!(stream.next().await, None);
    assert_eq!(stream.next().await, None);
}

#[tokio::test]
async fn concurrent_misses_each_poll_their_own_origin() {
    let (cache, _clock) = mem();
    let source = Source::default();
    let chunks = strings(&["a", "b", "c"]);

    let start = |origin| {
        iterator(
            &cache,
            "both",
            Ttl::secs(10),
            &OPTIONS,
            Plain::new(),
            origin,
        )
    };
    let mut one = std::pin::pin!(start(source.over(chunks.clone())));
    let mut two = std::pin::pin!(start(source.over(chunks.clone())));
    // Both read the cache (a miss) before either ends.
    assert_eq!(one.next().await.as_deref(), Some("a"));
    assert_eq!(two.next().await.as_deref(), Some("a"));
    let (one, two) = (one.collect::<Vec<_>>().await, two.collect::<Vec<_>>().await);
    assert_eq!((one, two), (strings(&["b", "c"]), strings(&["b", "c"])));
    assert_eq!(source.items(), 6);

    assert_eq!(words(&cache, "both", source.over(vec![])).await, chunks);
    assert_eq!(source.items(), 6);
}
