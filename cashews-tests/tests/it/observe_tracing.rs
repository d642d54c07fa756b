//! The `tracing` feature, seen by a subscriber: a small layer records every span (name,
//! fields, parent) and the test checks that a cached call's backend commands sit inside its
//! strategy span, with their fields, and without the key unless asked.
//!
//! Commands answered by a memory route's local tier get no span, so the commands here run on
//! Redis (fresh key prefix; skipped outside CI when Redis is missing, failing in CI).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use cashews::Cache;
use cashews::strategy::{self, CacheOptions, Plain, SoftOptions};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Subscriber, subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, Clone)]
struct Recorded {
    id: u64,
    name: &'static str,
    parent: Option<u64>,
    fields: BTreeMap<String, String>,
}

/// Records spans into a shared list.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Recorded>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|parent| parent.id().into_u64());
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Recorded {
            id: id.into_u64(),
            name: attrs.metadata().name(),
            parent,
            fields,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        if let Some(span) = spans.iter_mut().rev().find(|s| s.id == id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }
}

impl Spans {
    fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn field<'a>(span: &'a Recorded, name: &str) -> Option<&'a str> {
    span.fields.get(name).map(String::as_str)
}

#[tokio::test]
async fn command_spans_nest_in_the_strategy_span_with_their_fields_and_no_key_by_default() {
    let spans = Spans::default();
    let _guard = subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));

    let prefix = crate::support::unique_prefix("trace");
    let url = crate::support::redis_url();
    let cache = Cache::new();
    cache
        .setup_prefix(&prefix, &format!("{url}?suppress=false"))
        .unwrap();
    if let Err(e) = cache.exists(&format!("{prefix}probe")).await {
        let _: Option<()> =
            cashews_testkit::skip_unless_ci("tracing spans", &format!("no Redis at {url}: {e}"));
        return;
    }
    spans.take();

    let key = format!("{prefix}item:1");
    let ttl = cashews::Ttl::parse("1m").unwrap();
    let options = CacheOptions::new().template("item:{id}");
    let got = strategy::cache(&cache, &key, ttl, &options, Plain::<u32>::new(), async {
        5
    })
    .await;
    assert_eq!(got, 5);

    let recorded = spans.take();
    let strategies: Vec<_> = recorded
        .iter()
        .filter(|s| s.name == "cashews.strategy")
        .collect();
    assert_eq!(strategies.len(), 1, "{recorded:#?}");
    let call = strategies[0];
    assert_eq!(field(call, "strategy"), Some("cache"));
    assert_eq!(field(call, "template"), Some("item:{id}"));
    assert_eq!(field(call, "result"), Some("miss"));

    let commands: Vec<_> = recorded
        .iter()
        .filter(|s| s.name == "cashews.command")
        .collect();
    assert!(!commands.is_empty(), "{recorded:#?}");
    for command in &commands {
        assert_eq!(
            command.parent,
            Some(call.id),
            "nested in the strategy span: {command:?}"
        );
        assert_eq!(field(command, "backend"), Some("redis"));
        assert_eq!(field(command, "prefix"), Some(prefix.as_str()));
        assert_eq!(
            field(command, "key"),
            None,
            "no key by default: {command:?}"
        );
    }
    let outcome = |name: &str| -> Vec<Option<&str>> {
        commands
            .iter()
            .filter(|c| field(c, "command") == Some(name))
            .map(|c| field(c, "outcome"))
            .collect()
    };
    // Read once (no flight ended since, so the coalescer's leader does not read again), then
    // stored.
    assert_eq!(outcome("get"), [Some("miss")]);
    assert_eq!(outcome("set"), [Some("ok")]);

    // A hit, with keys allowed in spans.
    cashews::observe::trace_keys(true);
    let again = strategy::cache(&cache, &key, ttl, &options, Plain::<u32>::new(), async {
        6
    })
    .await;
    cashews::observe::trace_keys(false);
    assert_eq!(again, 5);
    let recorded = spans.take();
    let call = recorded
        .iter()
        .find(|s| s.name == "cashews.strategy")
        .unwrap();
    assert_eq!(field(call, "result"), Some("hit"));
    let get = recorded
        .iter()
        .find(|s| s.name == "cashews.command")
        .unwrap();
    assert_eq!(get.parent, Some(call.id));
    assert_eq!(field(get, "outcome"), Some("hit"));
    assert_eq!(field(get, "key"), Some(key.as_str()));
    cache.delete(&key).await.unwrap();
    spans.take();

    // Another strategy: a `soft` miss, its reads and its write inside its span.
    let soft_key = format!("{prefix}soft:1");
    let soft = SoftOptions::new().template("soft:{id}");
    let got = strategy::soft(&cache, &soft_key, ttl, &soft, Plain::<u32>::new(), async {
        8
    })
    .await;
    assert_eq!(got, 8);
    let recorded = spans.take();
    let calls: Vec<_> = recorded
        .iter()
        .filter(|s| s.name == "cashews.strategy")
        .collect();
    assert_eq!(calls.len(), 1, "{recorded:#?}");
    let call = calls[0];
    assert_eq!(field(call, "strategy"), Some("soft"));
    assert_eq!(field(call, "template"), Some("soft:{id}"));
    assert_eq!(field(call, "result"), Some("miss"));
    let commands: Vec<_> = recorded
        .iter()
        .filter(|s| s.name == "cashews.command")
        .collect();
    assert!(
        commands.iter().any(|c| field(c, "command") == Some("set")),
        "{recorded:#?}"
    );
    for command in &commands {
        assert_eq!(command.parent, Some(call.id), "{command:?}");
    }
    cache.delete(&soft_key).await.unwrap();
}
