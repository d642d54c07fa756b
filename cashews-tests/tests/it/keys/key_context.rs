//! The key context: scopes, missing values, filters and patterns on context values, and
//! carrying it into spawned tasks.

use std::collections::BTreeMap;

use cashews::key::context::{self, KeyContext, scope, snapshot, with_key_context};
use cashews::key::{KeyBuf, KeyPart, KeyTemplate};

use super::render_template;

#[tokio::test]
async fn nested_context_scopes_merge_and_override() {
    assert!(snapshot().is_empty());
    let template = KeyTemplate::parse("{@:get(a)}:{@:get(b)}:{@:get(c)}").unwrap();
    with_key_context([("a", &1 as &dyn KeyPart), ("b", &"outer")], async {
        assert_eq!(template.render(&[]).unwrap(), "1:outer:");
        let inner = KeyContext::new().with("b", &"inner").with("c", &true);
        let inner: Vec<(String, String)> = inner
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        with_key_context(inner, async {
            assert_eq!(template.render(&[]).unwrap(), "1:inner:true");
        })
        .await;
        assert_eq!(template.render(&[]).unwrap(), "1:outer:");
    })
    .await;
    assert_eq!(template.render(&[]).unwrap(), "::");
}

#[tokio::test]
async fn missing_context_values_render_empty() {
    assert_eq!(context::get("client_id"), None);
    assert_eq!(render_template("user:{@:get(client_id)}", &[]), "user:");
    let mut key = KeyBuf::new();
    key.context_value("client_id");
    assert_eq!(key.finish(), "");
    with_key_context([("other", 1)], async {
        assert_eq!(render_template("user:{@:get(client_id)}", &[]), "user:");
    })
    .await;
}

#[tokio::test]
async fn context_values_go_through_filters_and_patterns() {
    with_key_context([("client_id", "Ab*")], async {
        assert_eq!(render_template("u:{@:get(client_id):lower}", &[]), "u:ab*");
        assert_eq!(
            render_template("u:{x:hash({@:get(alg)})}", &[("x", &"test")]),
            "u:098f6bcd4621d373cade4e832627b4f6"
        );
        let template = KeyTemplate::parse("u:{@:get(client_id)}:*").unwrap();
        assert_eq!(template.render_pattern(&[]).unwrap(), r"u:Ab\*:*");
        let mut pattern = KeyBuf::for_pattern();
        pattern.context_value("client_id");
        assert_eq!(pattern.finish(), r"Ab\*");
    })
    .await;
}

#[tokio::test]
async fn whole_context_renders_like_a_sorted_map() {
    with_key_context(BTreeMap::from([("b", Some(2)), ("a", None)]), async {
        assert_eq!(render_template("{@}", &[]), "a::b:2");
        assert_eq!(render_template("{@:upper}", &[]), "A::B:2");
    })
    .await;
}

#[tokio::test]
async fn spawned_tasks_need_the_context_carried_over() {
    with_key_context([("client_id", 135)], async {
        let lost = tokio::spawn(async { context::get("client_id") });
        assert_eq!(lost.await.unwrap(), None);
        let kept = tokio::spawn(scope(snapshot(), async {
            render_template("user:{@:get(client_id)}", &[])
        }));
        assert_eq!(kept.await.unwrap(), "user:135");
    })
    .await;
}

#[tokio::test]
async fn scope_replaces_the_current_context() {
    let ctx = KeyContext::new().with("only", &1);
    with_key_context([(String::from("outer"), 1)], async {
        scope(ctx.clone(), async {
            assert_eq!(context::get("outer"), None);
            assert_eq!(context::get("only").as_deref(), Some("1"));
            assert_eq!(snapshot(), ctx);
        })
        .await;
    })
    .await;
}

#[test]
fn key_context_values_are_rendered_text() {
    let ctx = KeyContext::new()
        .with("list", &vec![1, 2])
        .with("none", &None::<u8>)
        .with("list", &[3]);
    assert_eq!(ctx.get("list"), Some("3"));
    assert_eq!(ctx.get("none"), Some(""));
    assert_eq!(ctx.len(), 2);
    assert_eq!(
        ctx.iter().collect::<Vec<_>>(),
        [("list", "3"), ("none", "")]
    );
}
