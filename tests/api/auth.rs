//! Login, sessions, roles and the console socket's origin check.

use crate::both_stores;
use crate::helpers::{Backend, TestApp, Ws, PASSWORD};
use serde_json::json;

both_stores!(
    login_sets_a_strict_http_only_session,
    wrong_password_and_unknown_user_look_the_same,
    logout_ends_the_session,
    agents_get_403_on_supervisor_routes,
    console_socket_needs_a_session_and_our_origin
);

async fn login_sets_a_strict_http_only_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let response = app
        .http
        .post(app.url("/api/login"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("sb_session="));
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Strict"));
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("sb_session=");
    assert_eq!(base64_len(token), 32, "256-bit session id");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["user"]["username"], "alice");
    assert_eq!(body["profiles"][0]["name"], "Support chat");
}

fn base64_len(token: &str) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map(|b| b.len())
        .unwrap_or(0)
}

async fn wrong_password_and_unknown_user_look_the_same(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut bodies = Vec::new();
    for (user, password) in [("alice", "wrong-password"), ("mallory", PASSWORD)] {
        let response = app
            .http
            .post(app.url("/api/login"))
            .json(&json!({"username": user, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        assert!(response.headers().get("set-cookie").is_none());
        bodies.push(response.text().await.unwrap());
    }
    assert_eq!(bodies[0], bodies[1]);
}

async fn logout_ends_the_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let cookie = app.login("alice").await;
    let me = app
        .http
        .get(app.url("/api/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let out = app
        .http
        .post(app.url("/api/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let me = app
        .http
        .get(app.url("/api/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
    assert!(Ws::connect(&app, "/ws/agent", Some(&cookie), None)
        .await
        .is_err());
}

async fn agents_get_403_on_supervisor_routes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    app.add_supervisor("sue").await;
    let agent = app.login("alice").await;
    let supervisor = app.login("sue").await;
    let new_queue = json!({"name": "Billing", "offer_timeout_secs": 20, "priority": 1});
    let anonymous = app
        .http
        .post(app.url("/api/queues"))
        .json(&new_queue)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let as_agent = app
        .http
        .post(app.url("/api/queues"))
        .header("cookie", &agent)
        .json(&new_queue)
        .send()
        .await
        .unwrap();
    assert_eq!(as_agent.status(), 403);
    let as_supervisor = app
        .http
        .post(app.url("/api/queues"))
        .header("cookie", &supervisor)
        .json(&new_queue)
        .send()
        .await
        .unwrap();
    assert_eq!(as_supervisor.status(), 201);
    let duplicate = app
        .http
        .post(app.url("/api/queues"))
        .header("cookie", &supervisor)
        .json(&new_queue)
        .send()
        .await
        .unwrap();
    assert_eq!(duplicate.status(), 409);
    let users = app
        .http
        .get(app.url("/api/users"))
        .header("cookie", &agent)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 403);
}

async fn console_socket_needs_a_session_and_our_origin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    assert!(
        Ws::connect(&app, "/ws/agent", None, None).await.is_err(),
        "no session"
    );
    assert!(
        Ws::connect(&app, "/ws/agent", Some("sb_session=forged"), None)
            .await
            .is_err()
    );
    let cookie = app.login("alice").await;
    let foreign = Ws::connect(
        &app,
        "/ws/agent",
        Some(&cookie),
        Some("https://evil.example"),
    )
    .await;
    assert!(foreign.is_err(), "foreign origin refused");
    let own = format!("http://{}", app.addr);
    let mut ws = Ws::connect(&app, "/ws/agent", Some(&cookie), Some(&own))
        .await
        .expect("own origin");
    ws.expect("hello").await;
    let mut ws = Ws::connect(
        &app,
        "/ws/agent",
        Some(&cookie),
        Some("https://console.example"),
    )
    .await
    .expect("configured origin");
    ws.expect("hello").await;
}

#[tokio::test]
async fn pages_carry_a_strict_content_security_policy() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for (path, framing) in [
        ("/agent.html", "frame-ancestors 'none'"),
        ("/widget/frame.html", "frame-ancestors *"),
    ] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(
            csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(csp.contains(framing), "{path}: {csp}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
}
