//! The abuse rows of the bad-input catalogue (docs/reliability.md):
//! broken frames and their close codes, floods, too many sockets, slow
//! headers, cross-site sockets and requests, and login guessing. Limits are
//! lowered per test through `[limits]` so each is reached quickly.

use crate::both_stores;
use crate::helpers::{fresh_database, settings, Backend, TestApp, Ws, PASSWORD};
use serde_json::{json, Value};
use std::time::Duration;
use switchboard::config::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

async fn spawn_with(backend: Backend, tune: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = settings(&fresh_database(backend).await);
    tune(&mut settings);
    TestApp::spawn_with(settings).await
}

/// A text frame whose payload is given as raw bytes (may be invalid UTF-8).
fn raw_text(bytes: &[u8]) -> Message {
    Message::Frame(Frame::message(
        bytes.to_vec(),
        OpCode::Data(Data::Text),
        true,
    ))
}

both_stores!(
    hostile_json_gets_typed_errors_and_the_socket_stays,
    invalid_utf8_closes_1007_and_protocol_violations_close_1002,
    a_flood_is_refused_then_closed_1008,
    frames_are_also_limited_per_address,
    too_many_sockets_from_one_address_get_429_and_in_total_503,
    slow_header_clients_are_closed,
    the_widget_socket_accepts_only_its_sites_origins,
    cross_site_requests_are_refused_and_others_work,
    login_guessing_is_limited_per_account_and_address,
    a_password_change_ends_sessions_and_closes_sockets,
);

async fn hostile_json_gets_typed_errors_and_the_socket_stays(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_id, _token, mut customer) = app.new_customer("Carla").await;
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let deep_object = format!(
        r#"{{"type":"send","client_msg_id":"d","text":"x","attachments":{}{}}}"#,
        "[".repeat(150),
        "]".repeat(150)
    );
    let cases: Vec<(String, &str)> = vec![
        (deep, "malformed_json"),
        (deep_object, "malformed_json"),
        (
            r#"{"type":"send","client_msg_id":"s","text":"\ud800"}"#.into(),
            "malformed_json",
        ),
        (
            r#"{"type":"send","client_msg_id":"a","client_msg_id":"b","text":"x"}"#.into(),
            "invalid_request",
        ),
        (
            r#"{"type":"send","client_msg_id":"u","text":"x","admin":true}"#.into(),
            "invalid_request",
        ),
        (r#"{"type":"ping","extra":1}"#.into(), "invalid_request"),
        (r#"{"type":"end","extra":1}"#.into(), "invalid_request"),
        (r#"{"type":"Send"}"#.into(), "unknown_type"),
        (r#"{"type":7}"#.into(), "invalid_request"),
        (r#"{}"#.into(), "invalid_request"),
        ("".into(), "malformed_json"),
        ("null".into(), "invalid_request"),
        ("\u{0}".into(), "malformed_json"),
    ];
    for (frame, code) in cases {
        customer.send_raw(Message::Text(frame.clone().into())).await;
        let error = customer.expect_error().await;
        assert_eq!(error["code"], code, "for {}", &frame[..frame.len().min(60)]);
    }
    customer.roundtrip().await;
    // The agent console decodes with the same rules.
    app.add_agent("alice", 3).await;
    let mut agent = app.agent("alice").await;
    agent
        .send(json!({"type": "set_status", "status": "ready", "sneaky": 1}))
        .await;
    assert_eq!(agent.expect_error().await["code"], "invalid_request");
    agent.roundtrip().await;
}

async fn invalid_utf8_closes_1007_and_protocol_violations_close_1002(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_id, _token, mut customer) = app.new_customer("Carla").await;
    customer
        .send_raw(raw_text(b"{\"type\":\"ping\xff\xfe\"}"))
        .await;
    while customer.next().await.is_some() {}
    assert_eq!(customer.closed_with, Some(1007));

    let (_id, _token, mut customer) = app.new_customer("Dora").await;
    let mut frame = Frame::message(b"{}".to_vec(), OpCode::Data(Data::Text), true);
    frame.header_mut().rsv1 = true;
    customer.send_raw(Message::Frame(frame)).await;
    while customer.next().await.is_some() {}
    assert_eq!(customer.closed_with, Some(1002));

    // A frame over the protocol's hard cap is refused by the WebSocket layer.
    let (_id, _token, mut customer) = app.new_customer("Edna").await;
    customer
        .send_raw(Message::Text("x".repeat(200 * 1024).into()))
        .await;
    while customer.next().await.is_some() {}
    assert_eq!(customer.closed_with, Some(1009));
}

async fn a_flood_is_refused_then_closed_1008(backend: Backend) {
    let app = spawn_with(backend, |s| {
        s.limits.frames_burst = 5;
        s.limits.frames_per_sec = 1;
        s.limits.rate_limited_frames_before_close = 20;
    })
    .await;
    let (_id, _token, mut customer) = app.new_customer("Carla").await;
    // In lockstep (one frame, one answer), so no unread frame is left when
    // the server closes: that would turn its close into a reset.
    let (mut sent, mut pongs, mut limited) = (0, 0, 0);
    'flood: while sent < 200 && customer.try_send(json!({"type": "ping"})).await {
        sent += 1;
        loop {
            let Some(frame) = customer.next().await else {
                break 'flood;
            };
            match (frame["type"].as_str(), frame["code"].as_str()) {
                (Some("pong"), _) => pongs += 1,
                (Some("error"), Some("rate_limited")) => limited += 1,
                (Some("error"), _) => panic!("unexpected {frame}"),
                _ => continue, // queue position and the like
            }
            break;
        }
    }
    assert!(sent > 24);
    // `resume` used one of the burst of 5.
    assert!((4..=8).contains(&pongs), "the burst is served: {pongs}");
    assert_eq!(
        limited, 20,
        "then rate_limited until the allowance of refusals"
    );
    assert_eq!(customer.closed_with, Some(1008));
}

async fn frames_are_also_limited_per_address(backend: Backend) {
    let app = spawn_with(backend, |s| {
        s.limits.ip_frames_burst = 10;
        s.limits.ip_frames_per_sec = 1;
    })
    .await;
    let (_a, _t, mut first) = app.new_customer("Carla").await;
    let (_b, _u, mut second) = app.new_customer("Dora").await;
    // `resume` of both used 2 of the address's 10.
    for _ in 0..6 {
        first.roundtrip().await;
    }
    second.roundtrip().await;
    second.roundtrip().await;
    second.send(json!({"type": "ping"})).await;
    let refused = second.expect_error().await;
    assert_eq!(refused["code"], "rate_limited");
    first.send(json!({"type": "ping"})).await;
    assert_eq!(first.expect_error().await["code"], "rate_limited");
}

async fn too_many_sockets_from_one_address_get_429_and_in_total_503(backend: Backend) {
    // No HTTP request first: a pooled keep-alive connection would count.
    let app = spawn_with(backend, |s| s.limits.connections_per_ip = 3).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut ws = Ws::connect(&app, "/ws/customer", None, None).await.unwrap();
        ws.roundtrip().await;
        open.push(ws);
    }
    let refused = Ws::connect(&app, "/ws/customer", None, None).await;
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = refused else {
        panic!("a fourth socket must be refused");
    };
    assert_eq!(response.status(), 429);
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or(b"{}")).unwrap();
    assert_eq!(body["error"], "too_many_connections");
    assert!(response.headers().contains_key("retry-after"));
    // Closing one frees its slot (the server notices the close first).
    open.pop().expect("socket").close().await;
    let mut reopened = None;
    for _ in 0..200 {
        if let Ok(ws) = Ws::connect(&app, "/ws/customer", None, None).await {
            reopened = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(reopened.is_some(), "a slot is free again");
    drop(open);

    let app = spawn_with(backend, |s| s.limits.connections_total = 2).await;
    let _one = Ws::connect(&app, "/ws/customer", None, None).await.unwrap();
    let _two = Ws::connect(&app, "/ws/customer", None, None).await.unwrap();
    let refused = app.http.get(app.url("/livez")).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "too_many_connections");
}

async fn slow_header_clients_are_closed(backend: Backend) {
    let app = spawn_with(backend, |s| s.limits.header_read_timeout_secs = 1).await;
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    // The server gives up on the headers and closes: the read ends (EOF or
    // an error answer) long before this test's own bound.
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut buffer)).await;
    assert!(read.is_ok(), "the server closed a slow-header connection");
    // Nothing was served to the slow client.
    assert!(!String::from_utf8_lossy(&buffer).contains("200 OK"));
    // Other clients are served meanwhile and afterwards.
    let ok = app.http.get(app.url("/livez")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
}

async fn create_site(app: &TestApp, cookie: &str, origins: &[&str]) -> String {
    let response = app
        .http
        .post(app.url("/api/sites"))
        .header("cookie", cookie)
        .json(
            &json!({"name": "Shop", "key": "shop", "allowed_origins": origins,
                      "default_queue_id": app.queue, "require_verified": false}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    "shop".into()
}

async fn the_widget_socket_accepts_only_its_sites_origins(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_supervisor("sam").await;
    let cookie = app.login("sam").await;
    let site = create_site(&app, &cookie, &["https://shop.example"]).await;
    let started: Value = app
        .http
        .post(app.url("/api/chats"))
        .header("origin", "https://shop.example")
        .json(&json!({"site": site, "name": "Carla"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, token) = (
        started["conversation_id"].as_str().unwrap(),
        started["token"].as_str().unwrap(),
    );
    let resume = json!({"type": "resume", "conversation_id": id, "token": token});
    let own = format!("http://{}", app.addr);
    for (origin, allowed) in [
        (Some("https://evil.example"), false),
        (Some("null"), false),
        (Some("https://shop.example.evil"), false),
        (Some("https://shop.example"), true),
        (Some(own.as_str()), true),
        (None, true),
    ] {
        let mut ws = Ws::connect(&app, "/ws/customer", None, origin)
            .await
            .unwrap();
        ws.send(resume.clone()).await;
        if allowed {
            ws.expect("resumed").await;
        } else {
            assert_eq!(
                ws.expect_error().await["code"],
                "origin_not_allowed",
                "{origin:?}"
            );
            // Nothing was attached: commands still need a resume.
            ws.send(json!({"type": "send", "client_msg_id": "x", "text": "hi"}))
                .await;
            assert_eq!(ws.expect_error().await["code"], "not_resumed");
        }
    }
}

async fn cross_site_requests_are_refused_and_others_work(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_supervisor("sam").await;
    app.add_agent("alice", 3).await;
    let sam = app.login("sam").await;
    let alice = app.login("alice").await;
    let own = format!("http://{}", app.addr);
    let queue = |name: &str| json!({"name": name, "offer_timeout_secs": 30, "priority": 0});
    let post = |path: &str, cookie: &str, headers: &[(&str, &str)], body: Value| {
        let mut request = app
            .http
            .post(app.url(path))
            .header("cookie", cookie)
            .json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    for (i, headers) in [
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ],
    ]
    .into_iter()
    .enumerate()
    {
        let refused = post("/api/queues", &sam, &headers, queue(&format!("Evil {i}")))
            .await
            .unwrap();
        assert_eq!(refused.status(), 403, "{headers:?}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "cross_origin");
        let agent = post(
            "/api/me/predefined",
            &alice,
            &headers,
            json!({"heading": "t", "body": "x"}),
        )
        .await
        .unwrap();
        assert_eq!(agent.status(), 403, "agent endpoint, {headers:?}");
        let logout = post("/api/logout", &alice, &headers, json!({}))
            .await
            .unwrap();
        assert_eq!(logout.status(), 403, "logout CSRF, {headers:?}");
    }
    let queues: Value = app
        .http
        .get(app.url("/api/queues"))
        .header("cookie", &sam)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !queues.to_string().contains("Evil"),
        "no refused request changed anything"
    );
    // Same-origin browsers, the configured console origin and non-browser
    // clients keep working.
    for (i, headers) in [
        vec![("origin", own.as_str()), ("sec-fetch-site", "same-origin")],
        vec![("origin", "https://console.example")],
        vec![],
    ]
    .into_iter()
    .enumerate()
    {
        let created = post("/api/queues", &sam, &headers, queue(&format!("Ok {i}")))
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "{headers:?}");
    }
    // The widget's route is for other sites by design.
    let chat = app
        .http
        .post(app.url("/api/chats"))
        .header("origin", "https://anyone.example")
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"queue_id": app.queue}))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 201);
}

async fn login_guessing_is_limited_per_account_and_address(backend: Backend) {
    let app = spawn_with(backend, |s| s.limits.login_failures = 3).await;
    app.add_agent("alice", 3).await;
    app.add_agent("bob", 3).await;
    let attempt = |username: &'static str, password: &'static str| {
        app.http
            .post(app.url("/api/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(attempt("alice", "guess").await.unwrap().status(), 401);
        assert_eq!(attempt("nobody", "guess").await.unwrap().status(), 401);
    }
    let locked = attempt("alice", PASSWORD_STATIC).await.unwrap();
    assert_eq!(locked.status(), 429, "even the right password waits");
    let retry_after: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    let locked: Value = locked.json().await.unwrap();
    let unknown = attempt("nobody", "guess").await.unwrap();
    assert_eq!(unknown.status(), 429);
    let unknown: Value = unknown.json().await.unwrap();
    assert_eq!(locked, unknown, "locked accounts do not reveal existence");
    assert_eq!(locked["error"], "rate_limited");
    // Another account from the same address is not affected.
    assert_eq!(attempt("bob", PASSWORD_STATIC).await.unwrap().status(), 200);
}

const PASSWORD_STATIC: &str = PASSWORD;

async fn a_password_change_ends_sessions_and_closes_sockets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut console = app.agent("alice").await;
    let other_session = app.login("alice").await;
    let cookie = app.login("alice").await;
    let change = |current: &'static str, new: &'static str| {
        app.http
            .post(app.url("/api/me/password"))
            .header("cookie", &cookie)
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
    };
    assert_eq!(
        change("wrong-password", "new-password-456")
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        change(PASSWORD_STATIC, "short").await.unwrap().status(),
        400
    );
    console.roundtrip().await;
    assert_eq!(
        change(PASSWORD_STATIC, "new-password-456")
            .await
            .unwrap()
            .status(),
        204
    );
    while console.next().await.is_some() {}
    assert_eq!(console.closed_with, Some(4003), "the console is closed");
    for old in [&cookie, &other_session] {
        let me = app
            .http
            .get(app.url("/api/me"))
            .header("cookie", old)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 401, "every old session ended");
    }
    let login = |password: &'static str| {
        app.http
            .post(app.url("/api/login"))
            .json(&json!({"username": "alice", "password": password}))
            .send()
    };
    assert_eq!(login(PASSWORD_STATIC).await.unwrap().status(), 401);
    assert_eq!(login("new-password-456").await.unwrap().status(), 200);
}
