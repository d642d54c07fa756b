//! The one in-process coalescer: concurrent callers of one key run one computation.
//!
//! Used by [`Cache::get_or_set`](crate::Cache::get_or_set) and by the strategies `cache`,
//! `cache_locked`, `early`, `soft` (with `protected`) and `thunder_protection`. It depends on
//! neither [`Cache`](crate::Cache) nor the strategies: each `Cache` keeps one [`Flights`] per
//! value type (the caching strategies' as a field of its own, the others among its
//! extensions), so two caches never share a flight and the clones of one always do.
//!
//! # The semantics, once
//!
//! - **One leader per key.** The first caller of a key *leads*: it runs the computation. The
//!   callers that arrive while it runs *follow*: they wait for the leader, do not run their
//!   own computation, and get what the leader *shares*: the value itself (`get_or_set`: the
//!   encoded bytes; `thunder_protection`: a clone of the result), or for the caching
//!   strategies whether the result was stored, after which they read it from the cache (so
//!   a result needs no `Clone`). When the leader stored nothing (an `Err`, a store
//!   condition, a write failure), each follower of a caching strategy runs its own
//!   computation, so every caller gets a real result of its own. A flight is forgotten as
//!   soon as its leader ends: the next caller leads again (a caching strategy reads the
//!   cache first, so only misses ever come here).
//! - **Where the computation runs.** In the leader's own future for the strategies, whose
//!   origins may borrow the caller's arguments. `get_or_set` requires a `Send + 'static`
//!   origin and runs it *detached*, in a Tokio task that owns the lead: the load survives the
//!   caller that started it.
//! - **Cancellation.** A leader that is dropped before it shares a result (a cancelled or
//!   timed-out caller) wakes its followers at once; none hangs, none gets a result that was
//!   never computed, and one of them leads in its place (it reads the cache first). A
//!   follower that is dropped just stops waiting. A detached `get_or_set` load is not
//!   cancelled with its caller.
//! - **Panics.** A panic in the computation reaches the caller that ran it and no other: a
//!   strategy's leader unwinds with it; a `get_or_set` leader, whose load ran in a task,
//!   gets [`Error::OriginFailed`](crate::Error::OriginFailed). The followers are released as
//!   for a cancellation and one of them runs the computation again, so each caller gets a
//!   result of its own run or its own run's panic, never a hang and never another caller's
//!   panic.
//! - **Re-entry.** A computation that calls the same coalesced operation with its own key
//!   (directly or through other calls, in the same task) does not wait for itself: the
//!   nested call computes at once, without coalescing. The marker behind this ([`Marker`]:
//!   the task's marks, set for the length of each poll of its computation) is also the one
//!   the distributed-lock strategies use for "this task already holds the lock".
//! - **Waiters' errors.** Followers share what the leader shares and nothing else: a
//!   `thunder_protection` `Err` is given to every follower (it is the result), a caching
//!   strategy's unstored `Err` is not (each follower computes its own), and a `get_or_set`
//!   value that could not be encoded is [`Error::Encode`](crate::Error::Encode) for all.
//!
//! Only misses reach the coalescer, with one exception: the hit paths never touch it, except
//! `cache_locked`'s on a backend that answers asynchronously (Redis), whose callers read the
//! cache inside their flight (one read for all, the value handed to the others as its bytes).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use hashbrown::HashTable;
use parking_lot::Mutex;
use smallvec::SmallVec;
use tokio::sync::Notify;

// ----- re-entry ----------------------------------------------------------------------------

thread_local! {
    /// The marks of the computations being polled on this thread, outermost first: each
    /// [`Inside`] pushes its own for the length of its poll (and pops it after, or on unwind),
    /// so they are exactly the marks of the task being polled, as a task-local would hold them,
    /// without a copy of them per computation or a swap of them on every poll.
    static INSIDE: RefCell<Marks> = const { RefCell::new(Marks::new()) };
}

static NEXT_MARKER: AtomicU64 = AtomicU64::new(1);

/// The `(marker id, key hash)` pairs a task is inside. The first few are kept inline, so
/// the usual depth of one or two allocates nothing. Keys are kept as 64-bit hashes under a
/// per-process random seed: two keys of one task's nesting with the same hash would make the
/// inner call compute without coalescing, which is what a re-entrant call does anyway; never
/// a hang, never a wrong result.
#[derive(Clone, Default)]
struct Marks {
    inline: [(u64, u64); 3],
    len: usize,
    more: Vec<(u64, u64)>,
}

impl Marks {
    const fn new() -> Self {
        Self {
            inline: [(0, 0); 3],
            len: 0,
            more: Vec::new(),
        }
    }

    fn push(&mut self, mark: (u64, u64)) {
        match self.inline.get_mut(self.len) {
            Some(slot) => {
                *slot = mark;
                self.len += 1;
            }
            None => self.more.push(mark),
        }
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many marks are kept.
    fn count(&self) -> usize {
        self.len + self.more.len()
    }

    /// Keeps the first `count` marks.
    fn truncate(&mut self, count: usize) {
        if count <= self.len {
            self.len = count;
            self.more.clear();
        } else {
            self.more.truncate(count - self.len);
        }
    }

    fn contains(&self, mark: (u64, u64)) -> bool {
        self.inline[..self.len].contains(&mark) || self.more.contains(&mark)
    }

    /// The marks, outermost first.
    fn to_vec(&self) -> Vec<(u64, u64)> {
        let mut all = self.inline[..self.len].to_vec();
        all.extend_from_slice(&self.more);
        all
    }
}

/// The hash a mark keeps of `key`.
fn key_hash(key: &str) -> u64 {
    use std::hash::BuildHasher;
    static SEED: std::sync::LazyLock<foldhash::quality::RandomState> =
        std::sync::LazyLock::new(foldhash::quality::RandomState::default);
    SEED.hash_one(key)
}

/// A re-entry scope: "the current task is computing (or holding) `key` of this marker".
/// Every [`Flights`] has its own; the lock strategies keep one per cache.
#[derive(Debug)]
pub(crate) struct Marker(u64);

impl Default for Marker {
    fn default() -> Self {
        Self(NEXT_MARKER.fetch_add(1, Ordering::Relaxed))
    }
}

/// Whether the current task is inside any key of any marker: when not (the common case), no
/// [`Marker::is_inside`] can be true, and the marker need not be looked up.
pub(crate) fn marked() -> bool {
    INSIDE
        .try_with(|inside| !inside.borrow().is_empty())
        .unwrap_or(false)
}

impl Marker {
    /// Whether the current task is inside `key` of this marker (a re-entrant call).
    pub(crate) fn is_inside(&self, key: &str) -> bool {
        marked() && self.is_inside_hashed(key_hash(key))
    }

    /// [`Marker::is_inside`] with the key's [`key_hash`], computed once by the caller.
    fn is_inside_hashed(&self, hash: u64) -> bool {
        INSIDE
            .try_with(|inside| inside.borrow().contains((self.0, hash)))
            .unwrap_or(false)
    }

    /// `future`, run marked as inside `key` of this marker. The marks of the current task are
    /// read now, so the returned future carries them into a task it is spawned on.
    pub(crate) fn inside<F: Future>(&self, key: &str, future: F) -> Inside<F> {
        // A copy only when the task is inside something already (rarely): an empty `Vec`
        // does not allocate.
        let carried = INSIDE
            .try_with(|inside| {
                let inside = inside.borrow();
                if inside.is_empty() {
                    Vec::new()
                } else {
                    inside.to_vec()
                }
            })
            .unwrap_or_default();
        Inside {
            carried,
            mark: (self.0, key_hash(key)),
            future,
        }
    }

    /// [`Marker::inside`] with the key's [`key_hash`], computed once by the caller, for a
    /// future polled where it is made (in the caller's own future): the marks it is made
    /// under are the ones it is polled under, so it carries none.
    fn inside_hashed<F: Future>(&self, hash: u64, future: F) -> Inside<F> {
        Inside {
            carried: Vec::new(),
            mark: (self.0, hash),
            future,
        }
    }
}

pin_project_lite::pin_project! {
    /// A future polled inside a mark (see [`Marker::inside`]): the marks it carried and its own
    /// are the current task's for the length of each of its polls.
    pub(crate) struct Inside<F> {
        carried: Vec<(u64, u64)>,
        mark: (u64, u64),
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Inside<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = Entered::new(this.carried, *this.mark);
        this.future.poll(cx)
    }
}

/// The marks of one [`Inside`] poll, on this thread's stack: taken off again when dropped,
/// also when the poll unwinds. `None` when the thread's marks are gone (a poll from a thread
/// local's destructor): nothing is marked then.
struct Entered(Option<usize>);

impl Entered {
    fn new(carried: &[(u64, u64)], mark: (u64, u64)) -> Self {
        Self(
            INSIDE
                .try_with(|inside| {
                    let mut inside = inside.borrow_mut();
                    let before = inside.count();
                    for &carried in carried {
                        inside.push(carried);
                    }
                    inside.push(mark);
                    before
                })
                .ok(),
        )
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Some(before) = self.0 {
            let _gone = INSIDE.try_with(|inside| inside.borrow_mut().truncate(before));
        }
    }
}

// ----- flights -----------------------------------------------------------------------------

/// The flights of one cache for one shared value type `V`, by key. A plain mutex: held for a
/// table operation only, never across an await.
///
/// Aligned to a cache line: a cache keeps its strategies' flights inline, and every miss
/// writes the lock and the count of ended flights, which must not share a line with the
/// cache's other fields (the routes every command reads).
#[repr(align(64))]
pub(crate) struct Flights<V> {
    marker: Marker,
    /// How many flights have ended: written under `running`'s lock (a plain store, no
    /// read-modify-write), read without it by [`Flights::seen`].
    ended: AtomicU64,
    running: Mutex<Running<V>>,
}

/// When a caller read the cache, as the coalescer counts time: how many flights of the
/// cache's caching strategies had ended. Taken before a read that missed, and handed to the
/// coalescer with the miss.
///
/// A leader reads the cache once more after taking its turn, because another leader may have
/// stored the value between the caller's read and its turn (the caller would compute it
/// again). When no flight has ended since the caller's read, no leader can have stored in
/// between, and the second read is skipped: nothing changes but the cost of an uncontended
/// miss.
///
/// ```
/// use cashews::__private::cache_lookup_now;
/// use cashews::strategy::{CacheOptions, Plain};
/// let store = cashews::Cache::new();
/// store.setup("mem://")?;
/// let (options, ttl) = (CacheOptions::new(), cashews::Ttl::parse("1h")?);
/// let mut seen = None;
/// let first = cache_lookup_now(&options, &store, "k", ttl, &Plain::<u32>::new(), &mut seen);
/// assert_eq!(first, Some(None));
/// assert!(seen.is_some(), "taken with the read");
/// # Ok::<(), cashews::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen(u64);

/// The keys being computed. A `HashTable` keyed by the hash the re-entry marks use, so a
/// coalesced call hashes its key once for both.
struct Running<V> {
    slots: HashTable<Slot<V>>,
    /// The id of the next lead: a leader finds its own slot by it, so it keeps no copy of the
    /// key.
    next: u64,
}

/// A key being computed.
///
/// Built for the uncontended case, where nobody follows: a slot in the table, with the key
/// inline when short, and no allocation: the waiting place ([`Flight`]) is made by the first
/// follower. A `tokio::sync::watch` channel per computation, and later a flight allocated up
/// front with a shared copy of the key, cost an uncontended miss three allocations and most
/// of its coalescing time.
struct Slot<V> {
    hash: u64,
    id: u64,
    key: SmallVec<[u8; 32]>,
    /// The followers' waiting place, made by the first of them.
    flight: Option<Arc<Flight<V>>>,
}

impl<V> Default for Flights<V> {
    fn default() -> Self {
        Self {
            marker: Marker::default(),
            ended: AtomicU64::new(0),
            // Room for a few concurrent flights from the start: a tiny table refilled on
            // every miss (insert, then remove) would grow in steps first.
            running: Mutex::new(Running {
                slots: HashTable::with_capacity(32),
                next: 0,
            }),
        }
    }
}

impl<V> std::fmt::Debug for Flights<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flights")
            .field("in_flight", &self.running.lock().slots.len())
            .finish()
    }
}

/// One computation, as its followers see it: made when the first follower joins.
struct Flight<V> {
    state: Mutex<State<V>>,
    /// Signalled (`notify_waiters`) once the state is final.
    ended: Notify,
}

enum State<V> {
    Running,
    /// What the leader shared.
    Shared(V),
    /// The leader was dropped without sharing (cancelled or panicked).
    Abandoned,
}

/// A caller's turn at a key.
pub(crate) enum Turn<'f, V> {
    /// Compute, then [`Leader::share`]; dropping the guard instead releases the followers.
    Lead(Leader<'f, V>),
    /// Wait for the leader with [`Follower::wait`].
    Follow(Follower<V>),
}

impl<V: Send + 'static> Flights<V> {
    /// Leads `key`, or follows the flight already running for it. The lead owns a reference
    /// to these flights, so a detached computation can hold it.
    pub(crate) fn enter(self: &Arc<Self>, key: &str) -> Turn<'static, V> {
        match self.enter_hashed(key, key_hash(key)) {
            Turn::Lead(leader) => Turn::Lead(leader.owning(self)),
            Turn::Follow(follower) => Turn::Follow(follower),
        }
    }

    /// [`Flights::enter`] with the key's [`key_hash`], computed once by the caller, and a
    /// lead that borrows these flights (no reference count per miss).
    fn enter_hashed(&self, key: &str, hash: u64) -> Turn<'_, V> {
        let mut running = self.running.lock();
        let Running { slots, next } = &mut *running;
        let same = |slot: &Slot<V>| slot.hash == hash && slot.key[..] == *key.as_bytes();
        if let Some(slot) = slots.find_mut(hash, same) {
            let flight = slot.flight.get_or_insert_with(|| {
                Arc::new(Flight {
                    state: Mutex::new(State::Running),
                    ended: Notify::new(),
                })
            });
            return Turn::Follow(Follower {
                flight: Arc::clone(flight),
            });
        }
        *next += 1;
        let id = *next;
        slots.insert_unique(
            hash,
            Slot {
                hash,
                id,
                key: SmallVec::from_slice(key.as_bytes()),
                flight: None,
            },
            |slot| slot.hash,
        );
        drop(running);
        Turn::Lead(Leader {
            flights: Holder::Borrowed(self),
            hash,
            id,
            ended: false,
        })
    }

    /// How many flights have ended, for a caller about to read the cache: see [`Seen`].
    #[inline]
    pub(crate) fn seen(&self) -> Seen {
        // Acquire: pairs with the release of the count by a leader that ended after storing,
        // so that a caller who sees the count also sees what that leader stored.
        Seen(self.ended.load(Ordering::Acquire))
    }

    /// The re-entry marker of these flights: a leader's computation runs inside it.
    pub(crate) fn marker(&self) -> &Marker {
        &self.marker
    }
}

/// The leader's guard: shares the outcome with the followers; dropped unshared (cancellation,
/// panic) it releases them to lead in its place. `Send + 'static`, so that a detached
/// computation can own it.
pub(crate) struct Leader<'f, V> {
    flights: Holder<'f, V>,
    hash: u64,
    id: u64,
    /// Whether [`Leader::share`] ended the flight.
    ended: bool,
}

/// How a [`Leader`] reaches its flights: borrowed by a computation in the caller's future,
/// owned by a detached one.
enum Holder<'f, V> {
    Borrowed(&'f Flights<V>),
    Owned(Arc<Flights<V>>),
}

impl<V> std::ops::Deref for Holder<'_, V> {
    type Target = Flights<V>;

    fn deref(&self) -> &Flights<V> {
        match self {
            Self::Borrowed(flights) => flights,
            Self::Owned(flights) => flights,
        }
    }
}

impl<V> Leader<'_, V> {
    /// The same lead, owning a reference to its flights (`flights` are the ones it borrows).
    fn owning(mut self, flights: &Arc<Flights<V>>) -> Leader<'static, V> {
        let (hash, id, ended) = (self.hash, self.id, self.ended);
        // The slot passes to the returned lead: this one must not end it when dropped.
        self.ended = true;
        Leader {
            flights: Holder::Owned(Arc::clone(flights)),
            hash,
            id,
            ended,
        }
    }

    /// Ends the flight and hands the followers `share()`, built only if someone waits.
    pub(crate) fn share(mut self, share: impl FnOnce() -> V) {
        self.ended = true;
        if let Some(flight) = self.unregister() {
            *flight.state.lock() = State::Shared(share());
            flight.ended.notify_waiters();
        }
    }

    /// Takes our slot out of the table and returns its followers' flight, if any followed:
    /// once the slot is out, no follower can join, and those that joined made or found the
    /// flight under the table's lock, which this took after them.
    ///
    /// Counts the flight as ended ([`Seen`]), also when its slot was already gone.
    fn unregister(&self) -> Option<Arc<Flight<V>>> {
        let flights = &*self.flights;
        let mut running = flights.running.lock();
        // Released after whatever this leader stored (see `Flights::seen`). A plain store:
        // every writer holds the lock.
        let ended = flights.ended.load(Ordering::Relaxed);
        flights
            .ended
            .store(ended.wrapping_add(1), Ordering::Release);
        let (id, hash) = (self.id, self.hash);
        let slot = running.slots.find_entry(hash, |slot| slot.id == id).ok()?;
        slot.remove().0.flight
    }
}

impl<V> Drop for Leader<'_, V> {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        // Dropped unshared: with nobody following there is nobody to tell.
        let Some(flight) = self.unregister() else {
            return;
        };
        {
            let mut state = flight.state.lock();
            if matches!(*state, State::Running) {
                *state = State::Abandoned;
            }
        }
        flight.ended.notify_waiters();
    }
}

/// A follower's wait for its leader.
pub(crate) struct Follower<V> {
    flight: Arc<Flight<V>>,
}

impl<V: Clone> Follower<V> {
    /// What the leader shared; `None` when it was dropped without sharing (the caller then
    /// takes a turn again).
    pub(crate) async fn wait(self) -> Option<V> {
        loop {
            // Registered before the state is read: a `notify_waiters` after this point wakes
            // it even before its first poll, so the end cannot slip between check and wait.
            let ended = self.flight.ended.notified();
            match &*self.flight.state.lock() {
                State::Shared(value) => return Some(value.clone()),
                State::Abandoned => return None,
                State::Running => {}
            }
            ended.await;
        }
    }
}

// ----- the loop the callers in the caller's future share -----------------------------------

/// What a follower does with what its leader shared.
pub(crate) enum Then<R> {
    /// Return this (`thunder_protection`: a clone of the leader's result).
    Take(R),
    /// The leader stored its result: read it (a miss there takes a turn again).
    Look,
    /// The leader stored nothing: compute our own, concurrently with the other followers.
    Compute,
}

/// Runs `compute` once per key among concurrent callers, in the caller's future (the leader
/// is the caller; see the module docs for the semantics).
///
/// - `(seen, stale)` is what the caller's own read left: when it was taken ([`Seen`], if the
///   caller knows) and what it found expired.
/// - `look` reads the cache: `Ok(hit)`, or `Err(stale)` on a miss, where `stale` is what a
///   computation may use (`soft`: the expired value; `None` for the others). The leader looks
///   before computing (another leader may have just stored the value), unless `seen` shows
///   that no flight ended since the caller's read; a follower looks after a leader that
///   stored.
/// - `compute` runs the origin and stores what may be stored: the result and whether it was
///   stored.
/// - `share` is what the followers get from the leader's result (built only if they exist;
///   `stored` is `true` when the leader found a hit); `then` is what a follower does with it.
pub(crate) fn run<V, R, T, LF, CF>(
    flights: &Flights<V>,
    key: &str,
    (seen, mut stale): (Option<Seen>, Option<T>),
    look: impl Fn() -> LF,
    compute: impl FnOnce(Option<T>) -> CF,
    share: impl FnOnce(&R, bool) -> V,
    then: impl Fn(V) -> Then<R>,
) -> impl Future<Output = R>
where
    V: Clone + Send + 'static,
    LF: Future<Output = Result<R, Option<T>>>,
    CF: Future<Output = (R, bool)>,
{
    // Not an `async fn`, which would hold its arguments twice: the caching strategies hold
    // this future, with the computation's inline, in one box.
    let hash = key_hash(key);
    async move {
        if flights.marker().is_inside_hashed(hash) {
            // Our own computation calls us with its key: waiting for ourselves would never end.
            return compute(stale).await.0;
        }
        // Only the first turn follows the caller's read; a later one comes after a wait.
        let mut seen = seen;
        loop {
            let turn = flights.enter_hashed(key, hash);
            // Read after our slot went in: a leader that stored this key after the caller's
            // read ended before that (or we would follow it), so it moved the count.
            let read_stands = seen.take().is_some_and(|seen| seen == flights.seen());
            match turn {
                Turn::Lead(leader) => {
                    if !read_stands {
                        match look().await {
                            Ok(hit) => {
                                leader.share(|| share(&hit, true));
                                return hit;
                            }
                            Err(again) => stale = again.or(stale),
                        }
                    }
                    let (result, stored) =
                        flights.marker().inside_hashed(hash, compute(stale)).await;
                    leader.share(|| share(&result, stored));
                    return result;
                }
                Turn::Follow(follower) => match follower.wait().await.map(&then) {
                    Some(Then::Take(result)) => return result,
                    Some(Then::Look) => match look().await {
                        Ok(hit) => return hit,
                        Err(again) => stale = again.or(stale),
                    },
                    Some(Then::Compute) => return compute(stale).await.0,
                    // The leader was cancelled or panicked: take a turn again.
                    None => {}
                },
            }
        }
    }
}

/// The `share` and `then` of the caching strategies: followers learn whether the leader
/// stored, and read the cache or compute their own.
pub(crate) mod stored {
    use super::Then;

    /// What a caching leader shares: whether its result is in the cache.
    pub(crate) fn share<R>(_: &R, stored: bool) -> bool {
        stored
    }

    /// What a caching follower does: read the stored result, or compute its own.
    pub(crate) fn then<R>(stored: bool) -> Then<R> {
        if stored { Then::Look } else { Then::Compute }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dropped_leader_releases_its_followers_and_a_shared_value_reaches_them() {
        let flights = Arc::new(Flights::<u32>::default());
        let Turn::Lead(leader) = flights.enter("k") else {
            unreachable!("the first caller leads");
        };
        let Turn::Follow(follower) = flights.enter("k") else {
            unreachable!("the second caller follows");
        };
        drop(leader);
        assert_eq!(follower.wait().await, None);
        let Turn::Lead(leader) = flights.enter("k") else {
            unreachable!("the flight was forgotten");
        };
        let Turn::Follow(follower) = flights.enter("k") else {
            unreachable!("the second caller follows");
        };
        leader.share(|| 7);
        assert_eq!(follower.wait().await, Some(7));
        assert!(matches!(flights.enter("k"), Turn::Lead(_)));
    }

    #[test]
    fn marks_beyond_the_inline_ones_are_kept() {
        let mut marks = Marks::default();
        for i in 0..6 {
            marks.push((i, key_hash(&format!("k{i}"))));
        }
        for i in 0..6 {
            assert!(marks.contains((i, key_hash(&format!("k{i}")))), "{i}");
            assert!(!marks.contains((i, key_hash("other"))), "{i}");
        }
        assert!(!marks.contains((6, key_hash("k6"))));
    }

    #[tokio::test]
    async fn markers_are_per_scope_and_key() {
        let (a, b) = (Marker::default(), Marker::default());
        assert!(!a.is_inside("k"));
        a.inside("k", async {
            assert!(a.is_inside("k"));
            assert!(!a.is_inside("other"));
            assert!(!b.is_inside("k"));
            b.inside("other", async {
                assert!(a.is_inside("k"), "outer marks are kept");
                assert!(b.is_inside("other"));
            })
            .await;
        })
        .await;
        assert!(!a.is_inside("k"));
    }
}
