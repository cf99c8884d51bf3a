//! Bounded property tests ("fuzzing" that fits in CI): the protocol decoder
//! never panics and answers every input with a command or one of its three
//! typed errors; attachment validation never panics, never accepts an
//! unlisted type and cleans every name; random multipart uploads against
//! the real server get 201 or a typed 4xx, never a 5xx, and the server
//! stays up. Case counts are fixed so the run time stays small.

use crate::helpers::{Backend, TestApp};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use reqwest::multipart::{Form, Part};
use switchboard::domain::attachment::{clean_name, ContentCheck, MAX_NAME_BYTES};
use switchboard::protocol::{decode, AgentCommand, CustomerCommand, ErrorCode};

const DECODE_ERRORS: [ErrorCode; 3] = [
    ErrorCode::MalformedJson,
    ErrorCode::UnknownType,
    ErrorCode::InvalidRequest,
];

/// JSON-shaped text: frames that get past the JSON parser more often than
/// random strings do, built from the protocol's own vocabulary.
fn json_frame() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "\\PC{0,20}".prop_map(serde_json::Value::from),
        prop::sample::select(switchboard::protocol::KNOWN_COMMAND_TYPES.to_vec())
            .prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "type",
                    "conversation_id",
                    "client_msg_id",
                    "text",
                    "private",
                    "attachments",
                    "status",
                    "reason",
                    "profile_id",
                    "resume",
                    "token",
                    "last_seq",
                    "typing",
                    "offer_id",
                    "option_id",
                    "options",
                    "prompt",
                    "agent_id",
                    "queue_id",
                    "transfer",
                    "extra",
                ]),
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(
                m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    });
    value.prop_map(|v| v.to_string())
}

fn check_decode(frame: &str) {
    if let Err(e) = decode::<AgentCommand>(frame) {
        assert!(DECODE_ERRORS.contains(&e.code), "{frame}: {:?}", e.code);
    }
    if let Err(e) = decode::<CustomerCommand>(frame) {
        assert!(DECODE_ERRORS.contains(&e.code), "{frame}: {:?}", e.code);
    }
}

proptest! {
    #![proptest_config(Config { cases: 2000, failure_persistence: None, ..Config::default() })]

    #[test]
    fn the_decoder_never_panics_on_any_text(frame in "\\PC{0,200}") {
        check_decode(&frame);
    }

    #[test]
    fn the_decoder_types_every_json_frame(frame in json_frame()) {
        check_decode(&frame);
    }

    #[test]
    fn content_checks_never_panic_and_accept_only_listed_kinds(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 0..6)
    ) {
        let mut check = ContentCheck::new();
        let mut refused = false;
        for chunk in &chunks {
            if check.push(chunk).is_err() {
                refused = true;
                break;
            }
        }
        if !refused {
            if let Ok((kind, size)) = check.finish() {
                let total: usize = chunks.iter().map(Vec::len).sum();
                prop_assert_eq!(size, total as u64);
                prop_assert!(size > 0, "an empty file is never accepted");
                prop_assert!(!kind.content_type().is_empty());
            }
        }
    }

    #[test]
    fn file_names_are_always_clean(raw in "\\PC{0,400}|[./\\\\\u{202E}\u{0}a-z]{0,300}") {
        let name = clean_name(Some(&raw));
        prop_assert!(!name.is_empty());
        prop_assert!(name.len() <= MAX_NAME_BYTES);
        prop_assert!(!name.contains(['/', '\\']));
        let bidi = |c: char| ('\u{202A}'..='\u{202E}').contains(&c);
        prop_assert!(!name.chars().any(|c| c.is_control() || bidi(c)));
        prop_assert!(!name.starts_with('.'));
    }
}

/// One random upload: a few parts with random names, content types and bytes.
fn upload_strategy() -> impl Strategy<Value = Vec<(String, String, Vec<u8>)>> {
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        "\\PC{0,200}".prop_map(String::into_bytes),
        Just(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec()),
        Just(b"%PDF-1.4\n<script>".to_vec()),
        Just(b"<html><script>alert(1)</script>".to_vec()),
    ];
    let part = (
        "\\PC{0,40}|\\.\\./\\.\\./[a-z]{1,8}",
        prop::sample::select(vec![
            "text/plain",
            "image/png",
            "text/html",
            "application/x-msdownload",
            "",
            "x/\u{0}",
        ]),
        body,
    )
        .prop_map(|(name, ty, bytes)| (name, ty.to_owned(), bytes));
    prop::collection::vec(part, 0..7)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_multipart_uploads_get_typed_answers() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (id, token) = app.start_chat("Carla").await;
    let mut runner = TestRunner::new(Config {
        cases: 60,
        failure_persistence: None,
        ..Config::default()
    });
    let mut uploads = Vec::new();
    for _ in 0..60 {
        uploads.push(upload_strategy().new_tree(&mut runner).unwrap().current());
    }
    for parts in uploads {
        let mut form = Form::new();
        for (name, content_type, bytes) in &parts {
            let mut part = Part::bytes(bytes.clone()).file_name(name.clone());
            if let Ok(typed) = part.mime_str(content_type) {
                part = typed;
            } else {
                part = Part::bytes(bytes.clone()).file_name(name.clone());
            }
            form = form.part("file", part);
        }
        let response = app
            .http
            .post(app.url(&format!("/api/conversations/{id}/attachments")))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        assert!(
            status == 201 || status.is_client_error(),
            "{status} for {} parts: {body}",
            parts.len()
        );
        if status.is_client_error() {
            assert!(body["error"].is_string(), "typed error: {body}");
        } else {
            for attachment in body["attachments"].as_array().unwrap() {
                let name = attachment["name"].as_str().unwrap();
                assert!(!name.contains(['/', '\\']), "{name}");
            }
        }
    }
    let alive = app.http.get(app.url("/livez")).send().await.unwrap();
    assert_eq!(alive.status(), 200);
}
