//! Predefined messages: supervisors manage the shared ones, agents keep
//! personal ones nobody else sees, and an agent in a chat lists exactly
//! the ones that apply to them there.

use crate::both_stores;
use crate::helpers::{accept, Backend, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

both_stores!(
    supervisor_creates_lists_edits_and_deletes_shared_messages,
    role_checks_on_every_route,
    agents_cannot_change_shared_messages,
    personal_messages_are_private_to_their_owner,
    a_chat_lists_what_applies_to_its_agent,
    reorder_rewrites_the_positions_of_one_scope,
    invalid_input_is_refused_with_our_error_body,
);

/// Sends a request with an optional session cookie: (status, JSON body or Null).
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

/// Creates a message and returns its id, asserting 201.
async fn create(app: &TestApp, cookie: &str, path: &str, body: Value) -> i64 {
    let (status, created) = call(app, Some(cookie), Method::POST, path, Some(body)).await;
    assert_eq!(status, 201, "create: {created}");
    created["id"].as_i64().expect("id")
}

fn headings(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|m| m["heading"].as_str().expect("heading"))
        .collect()
}

async fn supervisor_creates_lists_edits_and_deletes_shared_messages(backend: Backend) {
    // Arrange
    let app = TestApp::spawn(backend).await;
    let alice = app.add_agent("alice", 3).await;
    app.add_supervisor("sue").await;
    let sue = app.login("sue").await;

    // Act: one message of each shared scope, and a second one for everyone.
    let (status, hello) = call(
        &app,
        Some(&sue),
        Method::POST,
        "/api/predefined",
        Some(json!({"heading": " Hello ", "body": "Hello!\nHow can I help?", "scope": "everyone"})),
    )
    .await;
    let queue_body = json!({"heading": "Refunds", "body": "Refunds take 5 days.", "scope": "queue", "queue_id": app.queue});
    let refunds = create(&app, &sue, "/api/predefined", queue_body).await;
    let agent_body = json!({"heading": "Alice's line", "body": "Alice here.", "scope": "agent", "agent_id": alice});
    let aimed = create(&app, &sue, "/api/predefined", agent_body).await;
    let bye_body = json!({"heading": "Bye", "body": "Goodbye!", "scope": "everyone"});
    let bye = create(&app, &sue, "/api/predefined", bye_body).await;

    // Assert: created as sent (heading trimmed), appended to their scope.
    assert_eq!(status, 201);
    assert_eq!(hello["heading"], "Hello");
    assert_eq!(hello["body"], "Hello!\nHow can I help?");
    assert_eq!(
        (&hello["scope"], &hello["queue_id"], &hello["agent_id"]),
        (&json!("everyone"), &Value::Null, &Value::Null)
    );
    assert_eq!(hello["position"], 1);
    let (_, all) = call(&app, Some(&sue), Method::GET, "/api/predefined", None).await;
    assert_eq!(
        headings(&all),
        ["Hello", "Bye", "Refunds", "Alice's line"],
        "everyone, then queue, then agent; each by position"
    );
    assert_eq!(all[1]["position"], 2);
    assert_eq!(all[2]["queue_id"], json!(app.queue));
    assert_eq!(all[3]["agent_id"], json!(alice));

    // Filters narrow the list.
    for (query, expected) in [
        ("?scope=everyone", vec!["Hello", "Bye"]),
        (&format!("?queue_id={}", app.queue) as &str, vec!["Refunds"]),
        (
            &format!("?scope=agent&agent_id={alice}"),
            vec!["Alice's line"],
        ),
        ("?queue_id=999", vec![]),
    ] {
        let path = format!("/api/predefined{query}");
        let (status, list) = call(&app, Some(&sue), Method::GET, &path, None).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(headings(&list), expected, "{query}");
    }

    // Edit replaces heading and body and keeps scope and position.
    let path = format!("/api/predefined/{refunds}");
    let (status, edited) = call(
        &app,
        Some(&sue),
        Method::PUT,
        &path,
        Some(json!({"heading": "Refund time", "body": "Refunds take 3 days."})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (&edited["heading"], &edited["body"], &edited["scope"]),
        (
            &json!("Refund time"),
            &json!("Refunds take 3 days."),
            &json!("queue")
        )
    );
    assert_eq!(edited["position"], 1);
    assert!(edited["updated_at"].as_i64() >= edited["created_at"].as_i64());

    // Delete removes it; a second delete or an edit of it is 404.
    for id in [aimed, bye] {
        let path = format!("/api/predefined/{id}");
        let (status, _) = call(&app, Some(&sue), Method::DELETE, &path, None).await;
        assert_eq!(status, 204);
        let (status, _) = call(&app, Some(&sue), Method::DELETE, &path, None).await;
        assert_eq!(status, 404);
    }
    let body = json!({"heading": "x", "body": "y"});
    let path = format!("/api/predefined/{bye}");
    let (status, error) = call(&app, Some(&sue), Method::PUT, &path, Some(body)).await;
    assert_eq!((status, &error["error"]), (404, &json!("not_found")));
    let (_, all) = call(&app, Some(&sue), Method::GET, "/api/predefined", None).await;
    assert_eq!(headings(&all), ["Hello", "Refund time"]);
}

async fn role_checks_on_every_route(backend: Backend) {
    // Arrange
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    app.add_supervisor("sue").await;
    let sue = app.login("sue").await;
    let alice = app.login("alice").await;
    let body = json!({"heading": "Hi", "body": "Hi!", "scope": "everyone"});
    let shared = create(&app, &sue, "/api/predefined", body).await;
    let item = format!("/api/predefined/{shared}");
    let content = json!({"heading": "Hi", "body": "Hello"});
    let supervisor_routes = [
        (Method::GET, "/api/predefined".to_owned(), None),
        (
            Method::POST,
            "/api/predefined".to_owned(),
            Some(json!({"heading": "A", "body": "B", "scope": "everyone"})),
        ),
        (Method::PUT, item.clone(), Some(content.clone())),
        (Method::DELETE, item.clone(), None),
        (
            Method::POST,
            "/api/predefined/reorder".to_owned(),
            Some(json!({"scope": "everyone", "ids": [shared]})),
        ),
    ];

    for (method, path, body) in supervisor_routes {
        // Act + Assert: agents get 403, anonymous callers 401.
        let (status, error) = call(&app, Some(&alice), method.clone(), &path, body.clone()).await;
        assert_eq!(
            (status, &error["error"]),
            (403, &json!("forbidden")),
            "{method} {path}"
        );
        let (status, error) = call(&app, None, method.clone(), &path, body).await;
        assert_eq!(
            (status, &error["error"]),
            (401, &json!("unauthorized")),
            "{method} {path}"
        );
    }
    let chat = format!("/api/conversations/{}/predefined", uuid::Uuid::new_v4());
    let personal_routes = [
        (Method::GET, "/api/me/predefined".to_owned(), None),
        (
            Method::POST,
            "/api/me/predefined".to_owned(),
            Some(content.clone()),
        ),
        (
            Method::PUT,
            "/api/me/predefined/1".to_owned(),
            Some(content),
        ),
        (Method::DELETE, "/api/me/predefined/1".to_owned(), None),
        (
            Method::POST,
            "/api/me/predefined/reorder".to_owned(),
            Some(json!({"ids": []})),
        ),
        (Method::GET, chat, None),
    ];
    for (method, path, body) in personal_routes {
        let (status, _) = call(&app, None, method.clone(), &path, body).await;
        assert_eq!(status, 401, "{method} {path}");
    }
    // The shared message is untouched.
    let (_, all) = call(&app, Some(&sue), Method::GET, "/api/predefined", None).await;
    assert_eq!(headings(&all), ["Hi"]);
}

async fn agents_cannot_change_shared_messages(backend: Backend) {
    // Arrange
    let app = TestApp::spawn(backend).await;
    let alice_id = app.add_agent("alice", 3).await;
    app.add_supervisor("sue").await;
    let sue = app.login("sue").await;
    let alice = app.login("alice").await;
    let mut shared = Vec::new();
    for body in [
        json!({"heading": "All", "body": "For everyone", "scope": "everyone"}),
        json!({"heading": "Queue", "body": "For Support", "scope": "queue", "queue_id": app.queue}),
        json!({"heading": "Mine?", "body": "For Alice", "scope": "agent", "agent_id": alice_id}),
    ] {
        shared.push(create(&app, &sue, "/api/predefined", body).await);
    }

    // Act + Assert: even the message aimed at her is not hers to change.
    for id in &shared {
        let path = format!("/api/me/predefined/{id}");
        let body = json!({"heading": "Changed", "body": "Changed"});
        let (status, _) = call(&app, Some(&alice), Method::PUT, &path, Some(body)).await;
        assert_eq!(status, 403, "edit {id}");
        let (status, _) = call(&app, Some(&alice), Method::DELETE, &path, None).await;
        assert_eq!(status, 403, "delete {id}");
    }
    // Nor can she reorder them, nor does the personal list show them.
    let order = json!({"ids": shared});
    let path = "/api/me/predefined/reorder";
    let (status, _) = call(&app, Some(&alice), Method::POST, path, Some(order)).await;
    assert_eq!(status, 400, "not her personal messages");
    let (_, mine) = call(&app, Some(&alice), Method::GET, "/api/me/predefined", None).await;
    assert_eq!(mine, json!([]));
    // An unknown id is 404, not 403.
    let body = json!({"heading": "x", "body": "y"});
    let path = "/api/me/predefined/999999";
    let (status, _) = call(&app, Some(&alice), Method::PUT, path, Some(body)).await;
    assert_eq!(status, 404);
    let (status, _) = call(&app, Some(&alice), Method::DELETE, path, None).await;
    assert_eq!(status, 404);
    let (_, all) = call(&app, Some(&sue), Method::GET, "/api/predefined", None).await;
    assert_eq!(headings(&all), ["All", "Queue", "Mine?"]);
}

async fn personal_messages_are_private_to_their_owner(backend: Backend) {
    // Arrange
    let app = TestApp::spawn(backend).await;
    let alice_id = app.add_agent("alice", 3).await;
    app.add_agent("bob", 3).await;
    app.add_supervisor("sue").await;
    let (alice, bob, sue) = (
        app.login("alice").await,
        app.login("bob").await,
        app.login("sue").await,
    );

    // Act
    let (status, mine) = call(
        &app,
        Some(&alice),
        Method::POST,
        "/api/me/predefined",
        Some(json!({"heading": "My sign-off", "body": "Cheers,\nAlice"})),
    )
    .await;
    let second = json!({"heading": "Second", "body": "Another"});
    create(&app, &alice, "/api/me/predefined", second).await;
    let sues = json!({"heading": "Sue's own", "body": "Regards, Sue"});
    create(&app, &sue, "/api/me/predefined", sues).await;

    // Assert: it is hers, listed to her only.
    assert_eq!(status, 201);
    assert_eq!(
        (&mine["scope"], &mine["agent_id"], &mine["created_by"]),
        (&json!("personal"), &json!(alice_id), &json!(alice_id))
    );
    let id = mine["id"].as_i64().unwrap();
    let (_, list) = call(&app, Some(&alice), Method::GET, "/api/me/predefined", None).await;
    assert_eq!(headings(&list), ["My sign-off", "Second"]);
    let (_, list) = call(&app, Some(&bob), Method::GET, "/api/me/predefined", None).await;
    assert_eq!(list, json!([]));
    let (_, list) = call(&app, Some(&sue), Method::GET, "/api/me/predefined", None).await;
    assert_eq!(headings(&list), ["Sue's own"]);
    let (_, shared) = call(&app, Some(&sue), Method::GET, "/api/predefined", None).await;
    assert_eq!(shared, json!([]), "personal messages are not shared ones");
    let (status, _) = call(
        &app,
        Some(&sue),
        Method::GET,
        "/api/predefined?scope=personal",
        None,
    )
    .await;
    assert_eq!(status, 400);

    // Neither another agent nor a supervisor may change it.
    let edit = json!({"heading": "Hijacked", "body": "Hijacked"});
    let personal_path = format!("/api/me/predefined/{id}");
    let shared_path = format!("/api/predefined/{id}");
    for (cookie, path) in [
        (&bob, &personal_path),
        (&sue, &personal_path),
        (&sue, &shared_path),
    ] {
        let (status, _) = call(&app, Some(cookie), Method::PUT, path, Some(edit.clone())).await;
        assert_eq!(status, 403, "edit via {path}");
        let (status, _) = call(&app, Some(cookie), Method::DELETE, path, None).await;
        assert_eq!(status, 403, "delete via {path}");
    }

    // Its owner may.
    let edit = json!({"heading": "Sign-off", "body": "Best,\nAlice"});
    let (status, edited) = call(&app, Some(&alice), Method::PUT, &personal_path, Some(edit)).await;
    assert_eq!((status, &edited["body"]), (200, &json!("Best,\nAlice")));
    let (status, _) = call(&app, Some(&alice), Method::DELETE, &personal_path, None).await;
    assert_eq!(status, 204);
    let (_, list) = call(&app, Some(&alice), Method::GET, "/api/me/predefined", None).await;
    assert_eq!(headings(&list), ["Second"]);
}

async fn a_chat_lists_what_applies_to_its_agent(backend: Backend) {
    // Arrange: messages for every audience, some of them not Alice's.
    let app = TestApp::spawn(backend).await;
    let alice_id = app.add_agent("alice", 3).await;
    let bob_id = app.add_agent("bob", 3).await;
    app.add_supervisor("sue").await;
    let (sue, alice, bob) = (
        app.login("sue").await,
        app.login("alice").await,
        app.login("bob").await,
    );
    let billing = app.store.create_queue("Billing", 30, 0).await.unwrap();
    for body in [
        json!({"heading": "Alice only", "body": "a", "scope": "agent", "agent_id": alice_id}),
        json!({"heading": "Bob only", "body": "b", "scope": "agent", "agent_id": bob_id}),
        json!({"heading": "Support 1", "body": "s", "scope": "queue", "queue_id": app.queue}),
        json!({"heading": "Billing 1", "body": "b", "scope": "queue", "queue_id": billing}),
        json!({"heading": "Welcome", "body": "Welcome to Support!\nHow can I help?", "scope": "everyone"}),
        json!({"heading": "Thanks", "body": "t", "scope": "everyone"}),
    ] {
        create(&app, &sue, "/api/predefined", body).await;
    }
    let personal = json!({"heading": "Alice's own", "body": "p"});
    create(&app, &alice, "/api/me/predefined", personal).await;
    let personal = json!({"heading": "Bob's own", "body": "p"});
    create(&app, &bob, "/api/me/predefined", personal).await;
    let mut agent = app.ready_agent("alice").await;
    let (id, _token, mut customer) = app.new_customer("Carla").await;
    accept(&mut agent, &id).await;
    let path = format!("/api/conversations/{id}/predefined");

    // Act
    let (status, list) = call(&app, Some(&alice), Method::GET, &path, None).await;

    // Assert: everyone, then the chat's queue, then aimed at her, then hers.
    assert_eq!(status, 200);
    assert_eq!(
        headings(&list),
        [
            "Welcome",
            "Thanks",
            "Support 1",
            "Alice only",
            "Alice's own"
        ]
    );
    // Picking one only fills the text box; it is sent as any message.
    let text = list[0]["body"].as_str().unwrap();
    agent.say(Some(&id), "a1", text).await;
    let received = customer.expect_event("message").await;
    assert_eq!(received["text"], "Welcome to Support!\nHow can I help?");

    // Anyone not in the chat gets the same 404 as for no chat at all.
    let unknown = format!("/api/conversations/{}/predefined", uuid::Uuid::new_v4());
    for (cookie, path) in [
        (&bob, path.as_str()),
        (&sue, path.as_str()),
        (&alice, unknown.as_str()),
        (&alice, "/api/conversations/not-a-uuid/predefined"),
    ] {
        let (status, error) = call(&app, Some(cookie), Method::GET, path, None).await;
        assert_eq!(
            (status, &error["error"]),
            (404, &json!("not_found")),
            "{path}"
        );
    }
}

async fn reorder_rewrites_the_positions_of_one_scope(backend: Backend) {
    // Arrange
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    app.add_supervisor("sue").await;
    let (sue, alice) = (app.login("sue").await, app.login("alice").await);
    let mut everyone = Vec::new();
    for heading in ["One", "Two", "Three"] {
        let body = json!({"heading": heading, "body": "x", "scope": "everyone"});
        everyone.push(create(&app, &sue, "/api/predefined", body).await);
    }
    let queued = json!({"heading": "Queued", "body": "x", "scope": "queue", "queue_id": app.queue});
    let queued = create(&app, &sue, "/api/predefined", queued).await;
    let reorder = |body: Value| {
        let (app, sue) = (&app, &sue);
        async move {
            call(
                app,
                Some(sue),
                Method::POST,
                "/api/predefined/reorder",
                Some(body),
            )
            .await
        }
    };

    // Act
    let order = [everyone[2], everyone[0], everyone[1]];
    let (status, _) = reorder(json!({"scope": "everyone", "ids": order})).await;

    // Assert
    assert_eq!(status, 204);
    let (_, list) = call(
        &app,
        Some(&sue),
        Method::GET,
        "/api/predefined?scope=everyone",
        None,
    )
    .await;
    assert_eq!(headings(&list), ["Three", "One", "Two"]);
    let positions: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["position"].clone())
        .collect();
    assert_eq!(positions, [json!(1), json!(2), json!(3)]);
    // A new message goes to the end.
    let body = json!({"heading": "Four", "body": "x", "scope": "everyone"});
    everyone.push(create(&app, &sue, "/api/predefined", body).await);

    // Incomplete, repeated or foreign ids change nothing.
    let (a, b, c, d) = (everyone[0], everyone[1], everyone[2], everyone[3]);
    for ids in [
        json!([a, b, c]),
        json!([a, b, c, d, d]),
        json!([a, b, c, queued]),
        json!([a, b, c, d, queued]),
        json!([a, b, c, 999999]),
    ] {
        let (status, error) = reorder(json!({"scope": "everyone", "ids": ids})).await;
        assert_eq!(
            (status, &error["error"]),
            (400, &json!("bad_request")),
            "{ids}"
        );
    }
    let (_, list) = call(
        &app,
        Some(&sue),
        Method::GET,
        "/api/predefined?scope=everyone",
        None,
    )
    .await;
    assert_eq!(headings(&list), ["Three", "One", "Two", "Four"]);

    // A queue's list is reordered on its own; so are personal ones.
    let scope = json!({"scope": "queue", "queue_id": app.queue, "ids": [queued]});
    assert_eq!(reorder(scope).await.0, 204);
    let mut mine = Vec::new();
    for heading in ["P1", "P2"] {
        let body = json!({"heading": heading, "body": "x"});
        mine.push(create(&app, &alice, "/api/me/predefined", body).await);
    }
    let order = json!({"ids": [mine[1], mine[0]]});
    let path = "/api/me/predefined/reorder";
    let (status, _) = call(&app, Some(&alice), Method::POST, path, Some(order)).await;
    assert_eq!(status, 204);
    let (_, list) = call(&app, Some(&alice), Method::GET, "/api/me/predefined", None).await;
    assert_eq!(headings(&list), ["P2", "P1"]);
    // A supervisor cannot reorder someone's personal list from the shared route.
    let personal = json!({"scope": "personal", "ids": [mine[0], mine[1]]});
    assert_eq!(reorder(personal).await.0, 400);
}

async fn invalid_input_is_refused_with_our_error_body(backend: Backend) {
    // Arrange
    let app = TestApp::spawn(backend).await;
    let sue_id = app.add_supervisor("sue").await;
    app.add_agent("alice", 3).await;
    let (sue, alice) = (app.login("sue").await, app.login("alice").await);
    let long_heading = "h".repeat(81);
    let long_body = "b".repeat(4001);
    let everyone =
        |heading: &str, body: &str| json!({"heading": heading, "body": body, "scope": "everyone"});

    // Act + Assert: each of these is a 400 with the JSON error body.
    let bad_shared = [
        everyone("", "body"),
        everyone("   ", "body"),
        everyone(&long_heading, "body"),
        everyone("two\nlines", "body"),
        everyone("heading", ""),
        everyone("heading", " \n "),
        everyone("heading", &long_body),
        everyone("heading", "bell\u{7}"),
        json!({"heading": "h", "body": "b", "scope": "queue"}),
        json!({"heading": "h", "body": "b", "scope": "queue", "queue_id": app.queue, "agent_id": sue_id}),
        json!({"heading": "h", "body": "b", "scope": "everyone", "queue_id": app.queue}),
        json!({"heading": "h", "body": "b", "scope": "agent"}),
        json!({"heading": "h", "body": "b", "scope": "agent", "agent_id": sue_id}),
        json!({"heading": "h", "body": "b", "scope": "personal"}),
        json!({"heading": "h", "body": "b", "scope": "team"}),
        json!({"heading": "h", "body": "b", "scope": "everyone", "colour": "red"}),
        json!({"heading": "h", "scope": "everyone"}),
    ];
    for body in bad_shared {
        let (status, error) = call(
            &app,
            Some(&sue),
            Method::POST,
            "/api/predefined",
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (status, &error["error"]),
            (400, &json!("bad_request")),
            "{body}"
        );
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    for body in [
        json!({"heading": "", "body": "b"}),
        json!({"heading": "h", "body": long_body}),
    ] {
        let (status, error) = call(
            &app,
            Some(&alice),
            Method::POST,
            "/api/me/predefined",
            Some(body),
        )
        .await;
        assert_eq!((status, &error["error"]), (400, &json!("bad_request")));
    }
    for path in [
        "/api/predefined?scope=team",
        "/api/predefined?queue_id=abc",
        "/api/predefined?colour=red",
    ] {
        let (status, error) = call(&app, Some(&sue), Method::GET, path, None).await;
        assert_eq!(
            (status, &error["error"]),
            (400, &json!("bad_request")),
            "{path}"
        );
    }
    let edit = json!({"heading": "h", "body": "b"});
    let (status, error) = call(
        &app,
        Some(&sue),
        Method::PUT,
        "/api/predefined/abc",
        Some(edit),
    )
    .await;
    assert_eq!((status, &error["error"]), (400, &json!("bad_request")));
    let ids = json!({"ids": (1..=1001).collect::<Vec<_>>()});
    let (status, _) = call(
        &app,
        Some(&alice),
        Method::POST,
        "/api/me/predefined/reorder",
        Some(ids),
    )
    .await;
    assert_eq!(status, 400);

    // An edit is validated like a creation.
    let id = create(&app, &sue, "/api/predefined", everyone("Ok", "Fine")).await;
    let path = format!("/api/predefined/{id}");
    let (status, _) = call(
        &app,
        Some(&sue),
        Method::PUT,
        &path,
        Some(json!({"heading": "", "body": "b"})),
    )
    .await;
    assert_eq!(status, 400);

    // Unknown queues and agents are 404.
    for body in [
        json!({"heading": "h", "body": "b", "scope": "queue", "queue_id": 999999}),
        json!({"heading": "h", "body": "b", "scope": "agent", "agent_id": 999999}),
    ] {
        let (status, error) = call(
            &app,
            Some(&sue),
            Method::POST,
            "/api/predefined",
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (status, &error["error"]),
            (404, &json!("not_found")),
            "{body}"
        );
    }
    let (_, all) = call(&app, Some(&sue), Method::GET, "/api/predefined", None).await;
    assert_eq!(headings(&all), ["Ok"]);
}
