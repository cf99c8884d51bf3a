//! Every malformed, oversize, unknown or wrong-state request gets a typed
//! error and changes nothing; the socket stays usable where it should.

use crate::both_stores;
use crate::helpers::{accept, Backend, TestApp, Ws};
use serde_json::json;
use switchboard::domain::ids::ConversationId;
use tokio_tungstenite::tungstenite::Message;

both_stores!(
    malformed_and_unknown_frames_keep_the_socket_open,
    text_limits_are_enforced_and_nothing_is_stored,
    oversize_frame_gets_an_error_and_close_1009,
    customer_token_of_another_conversation_is_not_found,
    commands_in_the_wrong_state_are_refused,
    http_bad_input_gets_typed_errors,
);

async fn malformed_and_unknown_frames_keep_the_socket_open(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut agent = app.agent("alice").await;
    for (frame, code) in [
        ("{not json", "malformed_json"),
        (r#"{"type":"self_destruct"}"#, "unknown_type"),
        (r#"{"type":"accept"}"#, "invalid_request"),
        (
            r#"{"type":"set_status","status":"sleeping"}"#,
            "invalid_request",
        ),
        (r#"[1,2,3]"#, "invalid_request"),
        (r#""just a string""#, "invalid_request"),
    ] {
        agent.send_raw(Message::Text(frame.into())).await;
        let error = agent.expect_error().await;
        assert_eq!(error["code"], code, "for {frame}");
    }
    agent
        .send_raw(Message::Binary(vec![1u8, 2, 3].into()))
        .await;
    assert_eq!(agent.expect_error().await["code"], "invalid_request");
    agent.roundtrip().await;
}

async fn text_limits_are_enforced_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut agent = app.ready_agent("alice").await;
    let (id, _token, mut customer) = app.new_customer("Carla").await;
    accept(&mut agent, &id).await;

    let cases = [
        ("ø".repeat(4001), "text_too_long"),
        ("   \n  ".to_owned(), "text_empty"),
        ("bell\u{7}".to_owned(), "invalid_text"),
    ];
    for (text, code) in cases {
        customer
            .send(json!({"type": "send", "client_msg_id": "bad", "text": text}))
            .await;
        let error = customer.expect_error().await;
        assert_eq!(error["code"], code);
        assert_eq!(error["client_msg_id"], "bad");
    }
    customer
        .send(json!({"type": "send", "client_msg_id": "", "text": "hi"}))
        .await;
    assert_eq!(
        customer.expect_error().await["code"],
        "invalid_client_msg_id"
    );
    customer
        .send(json!({"type": "send", "client_msg_id": "x".repeat(65), "text": "hi"}))
        .await;
    assert_eq!(
        customer.expect_error().await["code"],
        "invalid_client_msg_id"
    );
    // Exactly at the limit is fine.
    customer.say(None, "max", &"ø".repeat(4000)).await;

    let log = app
        .store
        .events_after(&ConversationId(id), 0, 100)
        .await
        .unwrap();
    let messages: Vec<_> = log
        .iter()
        .filter(|e| e.kind.as_str() == "message")
        .collect();
    assert_eq!(messages.len(), 1, "only the valid message is stored");
}

async fn oversize_frame_gets_an_error_and_close_1009(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, _token, mut customer) = app.new_customer("Carla").await;
    let huge = format!(
        r#"{{"type":"send","client_msg_id":"big","text":"{}"}}"#,
        "a".repeat(64 * 1024)
    );
    customer.send_raw(Message::Text(huge.into())).await;
    let error = customer.expect_error().await;
    assert_eq!(error["code"], "frame_too_large");
    assert!(customer.next().await.is_none(), "socket closed");
    assert_eq!(customer.closed_with, Some(1009));
    let log = app
        .store
        .events_after(&ConversationId(id), 0, 100)
        .await
        .unwrap();
    assert!(log.is_empty());
}

async fn customer_token_of_another_conversation_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (first, first_token) = app.start_chat("First").await;
    let (second, _second_token) = app.start_chat("Second").await;
    let mut ws = Ws::connect(&app, "/ws/customer", None, None).await.unwrap();
    ws.send(json!({"type": "send", "client_msg_id": "c1", "text": "hi"}))
        .await;
    assert_eq!(ws.expect_error().await["code"], "not_resumed");
    ws.send(json!({"type": "resume", "conversation_id": second, "token": first_token}))
        .await;
    let wrong_pair = ws.expect_error().await;
    ws.send(json!({"type": "resume", "conversation_id": uuid::Uuid::new_v4().to_string(), "token": first_token})).await;
    let unknown = ws.expect_error().await;
    assert_eq!(wrong_pair["code"], "not_found");
    assert_eq!(
        wrong_pair, unknown,
        "no way to tell an existing conversation from an unknown one"
    );
    ws.send(json!({"type": "resume", "conversation_id": first, "token": "forged"}))
        .await;
    assert_eq!(ws.expect_error().await["code"], "not_found");
    // The right pair still works on the same socket.
    ws.send(json!({"type": "resume", "conversation_id": first, "token": first_token}))
        .await;
    ws.expect("resumed").await;
}

async fn commands_in_the_wrong_state_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let cookie = app.login("alice").await;
    let mut agent = Ws::connect(&app, "/ws/agent", Some(&cookie), None)
        .await
        .unwrap();
    agent.expect("hello").await;
    agent
        .send(json!({"type": "set_status", "status": "ready"}))
        .await;
    assert_eq!(agent.expect_error().await["code"], "not_signed_in");
    agent
        .send(json!({"type": "sign_in", "profile_id": 999_999}))
        .await;
    assert_eq!(agent.expect_error().await["code"], "invalid_profile");
    agent
        .send(json!({"type": "sign_in", "profile_id": app.profile}))
        .await;
    agent.expect("signed_in").await;
    agent
        .send(json!({"type": "set_status", "status": "not_ready"}))
        .await;
    assert_eq!(agent.expect_error().await["code"], "invalid_status");
    agent
        .send(json!({"type": "set_status", "status": "not_ready", "reason": "x".repeat(61)}))
        .await;
    assert_eq!(agent.expect_error().await["code"], "invalid_status");
    agent
        .send(json!({"type": "end", "conversation_id": uuid::Uuid::new_v4().to_string()}))
        .await;
    assert_eq!(agent.expect_error().await["code"], "not_found");
}

async fn http_bad_input_gets_typed_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let post = |body: serde_json::Value| app.http.post(app.url("/api/chats")).json(&body).send();
    let unknown_queue = post(json!({"queue_id": 424242})).await.unwrap();
    assert_eq!(unknown_queue.status(), 404);
    let bad_email = post(json!({"queue_id": app.queue, "email": "nope"}))
        .await
        .unwrap();
    assert_eq!(bad_email.status(), 400);
    let body: serde_json::Value = bad_email.json().await.unwrap();
    assert_eq!(body["error"], "bad_request");
    let unknown_field = post(json!({"queue_id": app.queue, "admin": true}))
        .await
        .unwrap();
    assert_eq!(unknown_field.status(), 400);
    let long_name = post(json!({"queue_id": app.queue, "name": "n".repeat(101)}))
        .await
        .unwrap();
    assert_eq!(long_name.status(), 400);
    let not_json = app
        .http
        .post(app.url("/api/login"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(
        not_json.json::<serde_json::Value>().await.unwrap()["error"],
        "bad_request"
    );
}

both_stores!(
    a_frame_flood_is_rate_limited,
    logout_closes_the_console_socket
);

async fn a_frame_flood_is_rate_limited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_id, _token, mut customer) = app.new_customer("Carla").await;
    for _ in 0..100 {
        customer
            .send(json!({"type": "typing", "typing": true}))
            .await;
    }
    let mut limited = 0;
    for frame in customer.drain(std::time::Duration::from_millis(500)).await {
        if frame["code"] == "rate_limited" {
            limited += 1;
        }
    }
    assert!(
        limited >= 30,
        "a burst of 100 frames exceeds the allowance of 60: {limited}"
    );
}

async fn logout_closes_the_console_socket(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let cookie = app.login("alice").await;
    let mut ws = Ws::connect(&app, "/ws/agent", Some(&cookie), None)
        .await
        .unwrap();
    ws.expect("hello").await;
    ws.send(json!({"type": "sign_in", "profile_id": app.profile}))
        .await;
    ws.expect("signed_in").await;
    // A second console (another tab) that has not signed in yet: the router
    // does not know it, and it must be closed all the same.
    let mut idle = Ws::connect(&app, "/ws/agent", Some(&cookie), None)
        .await
        .unwrap();
    idle.expect("hello").await;
    let out = app
        .http
        .post(app.url("/api/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    while ws.next().await.is_some() {}
    assert_eq!(ws.closed_with, Some(4003));
    while idle.next().await.is_some() {}
    assert_eq!(idle.closed_with, Some(4003), "the console not signed in");
}
