//! The colleague directory (`GET /api/colleagues`): the other agents, whether
//! they are signed in and their status, for the console's invite picker.

use crate::both_stores;
use crate::helpers::{Backend, TestApp};
use serde_json::{json, Value};

both_stores!(lists_other_agents_with_their_status, needs_a_session,);

async fn colleagues(app: &TestApp, cookie: &str) -> Value {
    let response = app
        .http
        .get(app.url("/api/colleagues"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.expect("json")
}

async fn lists_other_agents_with_their_status(backend: Backend) {
    // Arrange: alice asks; bob is Ready, carol is signed in and paused,
    // dave never signed in, sue is a supervisor.
    let app = TestApp::spawn(backend).await;
    let alice = app.add_agent("alice", 3).await;
    let bob = app.add_agent("bob", 3).await;
    let carol = app.add_agent("carol", 3).await;
    let dave = app.add_agent("dave", 3).await;
    app.add_supervisor("sue").await;
    let _bob_ws = app.ready_agent("bob").await;
    let mut carol_ws = app.agent("carol").await;
    carol_ws
        .send(json!({"type": "set_status", "status": "not_ready", "reason": "Lunch"}))
        .await;
    carol_ws.expect("status").await;
    let cookie = app.login("alice").await;

    // Act
    let list = colleagues(&app, &cookie).await;

    // Assert: online first, then by name; no caller, no supervisor, no secrets.
    assert_eq!(
        list,
        json!([
            {"id": bob.0, "display_name": "Bob", "online": true, "status": {"status": "ready"}},
            {"id": carol.0, "display_name": "Carol", "online": true,
             "status": {"status": "not_ready", "reason": "Lunch"}},
            {"id": dave.0, "display_name": "Dave", "online": false, "status": {"status": "offline"}},
        ])
    );
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["id"] != json!(alice.0)));
}

async fn needs_a_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .http
        .get(app.url("/api/colleagues"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "unauthorized");
}
