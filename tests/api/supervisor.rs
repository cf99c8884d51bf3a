//! Supervisor administration and the live view: changing and deleting
//! queues, profiles, sites and users, disabling accounts, password resets,
//! the chat log's free search, and the role checks on all of it.

use crate::both_stores;
use crate::helpers::{accept, Backend, TestApp, Ws, PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};

both_stores!(
    agents_get_403_and_anonymous_401_on_every_supervisor_route,
    live_view_shows_waiting_chats_and_agent_states_from_the_router,
    queues_are_edited_and_deleted_unless_chats_are_open,
    profiles_are_edited_and_deleted,
    sites_are_deleted_unless_chats_are_open,
    disabled_users_cannot_log_in_and_their_console_is_closed,
    password_reset_replaces_the_password_and_ends_sessions,
    chat_log_free_search_finds_text_name_and_email,
    chats_start_in_the_queues_as_they_are_after_each_change,
);

async fn call(
    app: &TestApp,
    cookie: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.http.request(method, app.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn login_status(app: &TestApp, username: &str, password: &str) -> (u16, Value) {
    call(
        app,
        None,
        Method::POST,
        "/api/login",
        Some(json!({"username": username, "password": password})),
    )
    .await
}

async fn agents_get_403_and_anonymous_401_on_every_supervisor_route(backend: Backend) {
    // Arrange
    let app = TestApp::spawn(backend).await;
    let alice = app.add_agent("alice", 3).await;
    let agent = app.login("alice").await;
    let routes = [
        (Method::GET, "/api/live".to_owned(), None),
        (
            Method::PUT,
            format!("/api/queues/{}", app.queue.0),
            Some(json!({"priority": 3})),
        ),
        (Method::DELETE, format!("/api/queues/{}", app.queue.0), None),
        (
            Method::PUT,
            format!("/api/profiles/{}", app.profile.0),
            Some(json!({"name": "x"})),
        ),
        (
            Method::DELETE,
            format!("/api/profiles/{}", app.profile.0),
            None,
        ),
        (Method::DELETE, "/api/sites/1".to_owned(), None),
        (
            Method::PUT,
            format!("/api/users/{}", alice.0),
            Some(json!({"role": "supervisor"})),
        ),
        (
            Method::POST,
            format!("/api/users/{}/password", alice.0),
            Some(json!({})),
        ),
        (Method::GET, "/api/conversations?q=x".to_owned(), None),
    ];

    for (method, path, body) in routes {
        // Act
        let (anonymous, _) = call(&app, None, method.clone(), &path, body.clone()).await;
        let (as_agent, error) = call(&app, Some(&agent), method.clone(), &path, body).await;

        // Assert
        assert_eq!(anonymous, 401, "{method} {path} anonymous");
        assert_eq!(as_agent, 403, "{method} {path} as agent");
        assert_eq!(error["error"], "forbidden");
    }
    // Nothing changed.
    let queues = app.store.list_queues().await.expect("queues");
    assert_eq!(queues[0].priority, 0);
    assert_eq!(app.store.list_profiles().await.expect("profiles").len(), 1);
}

fn find<'a>(list: &'a Value, key: &str, value: &Value) -> &'a Value {
    list.as_array()
        .expect("list")
        .iter()
        .find(|v| &v[key] == value)
        .unwrap_or_else(|| panic!("no {key} = {value} in {list}"))
}

async fn live_view_shows_waiting_chats_and_agent_states_from_the_router(backend: Backend) {
    // Arrange
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    app.add_agent("bob", 2).await;
    app.add_agent("carol", 2).await;
    app.add_supervisor("sue").await;
    let sue = app.login("sue").await;
    let mut bob = app.agent("bob").await;
    bob.send(json!({"type": "set_status", "status": "not_ready", "reason": "Lunch"}))
        .await;
    bob.expect("status").await;
    let (first, _t1, _c1) = app.new_customer("Waiting One").await;
    let (_second, _t2, _c2) = app.new_customer("Waiting Two").await;

    // Act: with nobody ready, both chats wait.
    let (status, live) = call(&app, Some(&sue), Method::GET, "/api/live", None).await;

    // Assert
    assert_eq!(status, 200, "{live}");
    let queue = find(&live["queues"], "id", &json!(app.queue.0));
    assert_eq!(queue["name"], "Support");
    assert_eq!(queue["waiting"], 2);
    assert_eq!(queue["agents_ready"], 0);
    assert!(queue["longest_wait_secs"].as_u64().is_some());
    let bob_live = find(&live["agents"], "username", &json!("bob"));
    assert_eq!(bob_live["status"], "not_ready");
    assert_eq!(bob_live["pause_reason"], "Lunch");
    assert_eq!(bob_live["open_chats"], 0);
    let carol_live = find(&live["agents"], "username", &json!("carol"));
    assert_eq!(carol_live["status"], "offline");

    // Act: alice gets ready and accepts one chat.
    let mut alice = app.ready_agent("alice").await;
    accept(&mut alice, &first).await;
    alice.roundtrip().await;
    let (_, live) = call(&app, Some(&sue), Method::GET, "/api/live", None).await;

    // Assert
    let queue = find(&live["queues"], "id", &json!(app.queue.0));
    assert_eq!(queue["waiting"], 1, "{live}");
    let alice_live = find(&live["agents"], "username", &json!("alice"));
    assert_eq!(alice_live["status"], "ready");
    assert_eq!(alice_live["open_chats"], 1);
    assert!(alice_live.get("pause_reason").is_none());
}

async fn queues_are_edited_and_deleted_unless_chats_are_open(backend: Backend) {
    // Arrange
    let app = TestApp::spawn(backend).await;
    app.add_supervisor("sue").await;
    let sue = app.login("sue").await;
    let (status, spare) = call(
        &app,
        Some(&sue),
        Method::POST,
        "/api/queues",
        Some(json!({"name": "Sales"})),
    )
    .await;
    assert_eq!(status, 201);
    let spare = spare["id"].as_i64().expect("id");
    let (_id, _token, _customer) = app.new_customer("Waiting").await;

    // Act + Assert: edit
    let (status, edited) = call(
        &app,
        Some(&sue),
        Method::PUT,
        &format!("/api/queues/{spare}"),
        Some(json!({"name": "Sales DK", "priority": 4, "offer_timeout_secs": 20})),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(
        (
            &edited["name"],
            &edited["priority"],
            &edited["offer_timeout_secs"]
        ),
        (&json!("Sales DK"), &json!(4), &json!(20))
    );
    let (status, error) = call(
        &app,
        Some(&sue),
        Method::PUT,
        &format!("/api/queues/{spare}"),
        Some(json!({"offer_timeout_secs": 0})),
    )
    .await;
    assert_eq!((status, &error["error"]), (400, &json!("bad_request")));

    // A queue with a waiting chat is refused with a typed error.
    let (status, error) = call(
        &app,
        Some(&sue),
        Method::DELETE,
        &format!("/api/queues/{}", app.queue.0),
        None,
    )
    .await;
    assert_eq!((status, &error["error"]), (409, &json!("queue_busy")));

    // An idle queue goes, and its name is free again.
    let (status, _) = call(
        &app,
        Some(&sue),
        Method::DELETE,
        &format!("/api/queues/{spare}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, queues) = call(&app, Some(&sue), Method::GET, "/api/queues", None).await;
    assert_eq!(queues.as_array().expect("list").len(), 1);
    let (status, _) = call(
        &app,
        Some(&sue),
        Method::DELETE,
        &format!("/api/queues/{spare}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &app,
        Some(&sue),
        Method::POST,
        "/api/queues",
        Some(json!({"name": "Sales DK"})),
    )
    .await;
    assert_eq!(status, 201);
}

async fn profiles_are_edited_and_deleted(backend: Backend) {
    // Arrange
    let app = TestApp::spawn(backend).await;
    app.add_supervisor("sue").await;
    let sue = app.login("sue").await;
    let (_, second) = call(
        &app,
        Some(&sue),
        Method::POST,
        "/api/queues",
        Some(json!({"name": "Billing"})),
    )
    .await;
    let second = second["id"].as_i64().expect("id");
    let path = format!("/api/profiles/{}", app.profile.0);

    // Act
    let (status, edited) = call(
        &app,
        Some(&sue),
        Method::PUT,
        &path,
        Some(json!({"name": "Everything", "queue_ids": [app.queue.0, second]})),
    )
    .await;

    // Assert
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["name"], "Everything");
    assert_eq!(edited["queues"], json!([app.queue.0, second]));
    assert_eq!(edited["media"], json!(["chat"]));
    let (status, error) = call(
        &app,
        Some(&sue),
        Method::PUT,
        &path,
        Some(json!({"queue_ids": [999_999]})),
    )
    .await;
    assert_eq!((status, &error["error"]), (400, &json!("bad_request")));
    let (status, _) = call(&app, Some(&sue), Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    assert!(app.store.list_profiles().await.expect("list").is_empty());
    let (status, _) = call(&app, Some(&sue), Method::DELETE, &path, None).await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &app,
        Some(&sue),
        Method::PUT,
        &path,
        Some(json!({"name": "again"})),
    )
    .await;
    assert_eq!(status, 404);
}

async fn sites_are_deleted_unless_chats_are_open(backend: Backend) {
    // Arrange
    let app = TestApp::spawn(backend).await;
    app.add_supervisor("sue").await;
    let sue = app.login("sue").await;
    let (status, site) = call(
        &app,
        Some(&sue),
        Method::POST,
        "/api/sites",
        Some(json!({"name": "Shop", "key": "shop", "default_queue_id": app.queue.0})),
    )
    .await;
    assert_eq!(status, 201, "{site}");
    let site_id = site["id"].as_i64().expect("id");
    let (status, started) = call(
        &app,
        None,
        Method::POST,
        "/api/chats",
        Some(json!({"site": "shop", "name": "Carl"})),
    )
    .await;
    assert_eq!(status, 201, "{started}");
    let chat = started["conversation_id"].as_str().expect("id").to_owned();
    let token = started["token"].as_str().expect("token").to_owned();

    // Act + Assert: refused while the chat waits; the queue is pinned by the site.
    let (status, error) = call(
        &app,
        Some(&sue),
        Method::DELETE,
        &format!("/api/sites/{site_id}"),
        None,
    )
    .await;
    assert_eq!((status, &error["error"]), (409, &json!("site_busy")));

    // After the customer ends it, the site can go; the chat log stays.
    let mut customer = app.customer(&chat, &token, 0).await;
    customer.send(json!({"type": "end"})).await;
    customer.expect_event("ended").await;
    let (status, error) = call(
        &app,
        Some(&sue),
        Method::DELETE,
        &format!("/api/queues/{}", app.queue.0),
        None,
    )
    .await;
    assert_eq!(
        (status, &error["error"]),
        (409, &json!("queue_used_by_site"))
    );
    let (status, _) = call(
        &app,
        Some(&sue),
        Method::DELETE,
        &format!("/api/sites/{site_id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, log) = call(
        &app,
        Some(&sue),
        Method::GET,
        &format!("/api/conversations/{chat}/log"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{log}");
    let (_, sites) = call(&app, Some(&sue), Method::GET, "/api/sites", None).await;
    assert_eq!(sites, json!([]));
    // With the site gone and no chat open, the queue can go too.
    let (status, _) = call(
        &app,
        Some(&sue),
        Method::DELETE,
        &format!("/api/queues/{}", app.queue.0),
        None,
    )
    .await;
    assert_eq!(status, 204);
}

async fn disabled_users_cannot_log_in_and_their_console_is_closed(backend: Backend) {
    // Arrange
    let app = TestApp::spawn(backend).await;
    let alice = app.add_agent("alice", 3).await;
    let sue_id = app.add_supervisor("sue").await;
    let sue = app.login("sue").await;
    let mut console: Ws = app.agent("alice").await;
    let alice_cookie = app.login("alice").await;

    // Act
    let (status, user) = call(
        &app,
        Some(&sue),
        Method::PUT,
        &format!("/api/users/{}", alice.0),
        Some(json!({"disabled": true, "display_name": "Alice A."})),
    )
    .await;

    // Assert
    assert_eq!(status, 200, "{user}");
    assert_eq!(
        (&user["disabled"], &user["display_name"]),
        (&json!(true), &json!("Alice A."))
    );
    assert!(
        console.next().await.is_none(),
        "the console socket is closed"
    );
    let (status, _) = call(&app, Some(&alice_cookie), Method::GET, "/api/me", None).await;
    assert_eq!(status, 401, "the old session no longer works");
    let (status, error) = login_status(&app, "alice", PASSWORD).await;
    assert_eq!((status, &error["error"]), (403, &json!("account_disabled")));
    let (status, error) = login_status(&app, "alice", "wrong-password").await;
    assert_eq!((status, &error["error"]), (401, &json!("unauthorized")));

    // A supervisor cannot lock themselves out.
    let (status, _) = call(
        &app,
        Some(&sue),
        Method::PUT,
        &format!("/api/users/{}", sue_id.0),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, 400);

    // Enabled again, alice logs in; role changes are stored.
    let (status, user) = call(
        &app,
        Some(&sue),
        Method::PUT,
        &format!("/api/users/{}", alice.0),
        Some(json!({"disabled": false, "role": "supervisor", "capacity": 5})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (&user["role"], &user["capacity"]),
        (&json!("supervisor"), &json!(5))
    );
    let (status, _) = login_status(&app, "alice", PASSWORD).await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &app,
        Some(&sue),
        Method::PUT,
        "/api/users/999999",
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, 404);
}

async fn password_reset_replaces_the_password_and_ends_sessions(backend: Backend) {
    // Arrange
    let app = TestApp::spawn(backend).await;
    let alice = app.add_agent("alice", 3).await;
    app.add_supervisor("sue").await;
    let sue = app.login("sue").await;
    let old_session = app.login("alice").await;
    let path = format!("/api/users/{}/password", alice.0);

    // Act
    let (status, done) = call(&app, Some(&sue), Method::POST, &path, Some(json!({}))).await;

    // Assert
    assert_eq!(status, 200, "{done}");
    let generated = done["generated_password"].as_str().expect("generated");
    assert_eq!(login_status(&app, "alice", PASSWORD).await.0, 401);
    assert_eq!(login_status(&app, "alice", generated).await.0, 200);
    let (status, _) = call(&app, Some(&old_session), Method::GET, "/api/me", None).await;
    assert_eq!(status, 401);
    let (status, done) = call(
        &app,
        Some(&sue),
        Method::POST,
        &path,
        Some(json!({"password": "chosen-password-1"})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(done.get("generated_password").is_none());
    assert_eq!(
        login_status(&app, "alice", "chosen-password-1").await.0,
        200
    );
    let (status, _) = call(
        &app,
        Some(&sue),
        Method::POST,
        &path,
        Some(json!({"password": "short"})),
    )
    .await;
    assert_eq!(status, 400);
}

async fn chat_log_free_search_finds_text_name_and_email(backend: Backend) {
    // Arrange
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    app.add_supervisor("sue").await;
    let sue = app.login("sue").await;
    let mut alice = app.ready_agent("alice").await;
    let (first, _token, mut customer) = app.new_customer("Karen Blixen").await;
    accept(&mut alice, &first).await;
    customer
        .say(None, "m1", "My invoice number is ZX-4711")
        .await;
    let (second, _t, _c) = app.new_customer("Hans Andersen").await;

    let ids = |list: &Value| -> Vec<String> {
        list["conversations"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| c["conversation_id"].as_str().expect("id").to_owned())
            .collect()
    };
    for (q, expected) in [
        ("zx-4711", vec![first.clone()]),
        ("blixen", vec![first.clone()]),
        ("andersen@example", vec![second.clone()]),
        ("nothing-like-this", vec![]),
    ] {
        // Act
        let (status, found) = call(
            &app,
            Some(&sue),
            Method::GET,
            &format!("/api/conversations?q={q}"),
            None,
        )
        .await;

        // Assert
        assert_eq!(status, 200, "{found}");
        assert_eq!(ids(&found), expected, "q={q}");
    }
}

/// Starting a chat looks queues up in memory (`queue_directory`): every
/// change the server makes is seen at once, and a queue another process
/// added (the CLI) is found too.
async fn chats_start_in_the_queues_as_they_are_after_each_change(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_supervisor("sue").await;
    let sue = app.login("sue").await;
    let start = |queue: &'static str| {
        let app = &app;
        async move {
            let (status, _) = call(
                app,
                None,
                Method::POST,
                "/api/chats",
                Some(json!({"queue": queue, "name": "Carla"})),
            )
            .await;
            status
        }
    };
    let create = |name: &'static str| {
        let (app, sue) = (&app, &sue);
        async move {
            let (status, queue) = call(
                app,
                Some(sue),
                Method::POST,
                "/api/queues",
                Some(json!({ "name": name })),
            )
            .await;
            assert_eq!(status, 201);
            queue["id"].as_i64().expect("id")
        }
    };
    assert_eq!(start("Support").await, 201, "the list is in memory now");

    let billing = create("Billing").await;
    assert_eq!(start("Billing").await, 201, "a created queue is found");
    let returns = create("Returns").await;
    assert_eq!(start("Support").await, 201);
    let (status, _) = call(
        &app,
        Some(&sue),
        Method::DELETE,
        &format!("/api/queues/{returns}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(
        start("Returns").await,
        404,
        "a deleted queue takes no chats"
    );

    let (status, _) = call(
        &app,
        Some(&sue),
        Method::PUT,
        &format!("/api/queues/{billing}"),
        Some(json!({"name": "Billing DK"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(start("Billing").await, 404, "the old name is gone");
    assert_eq!(start("Billing DK").await, 201);

    app.store
        .create_queue("Added by the CLI", 30, 0)
        .await
        .expect("queue");
    assert_eq!(start("Added by the CLI").await, 201);
}
