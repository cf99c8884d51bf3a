//! Transcripts after the end (download and e-mail over a real SMTP server)
//! and the supervisors' chat log: search, the full log with private
//! messages marked, and who may see what.
//!
//! Every chat here has a private message sent the real way (`send` with
//! `private: true`), and the leak tests assert it is absent from what the
//! customer gets and present, marked, in the organisation log.

use crate::both_stores;
use crate::helpers::{accept, settings, Backend, TestApp};
use crate::smtp::SmtpServer;
use mail_parser::MessageParser;
use serde_json::{json, Value};
use std::time::Duration;
use switchboard::domain::ids::{ConversationId, QueueId, UserId};

both_stores!(
    download_after_the_end_has_no_private_messages,
    no_transcript_before_the_end,
    another_conversations_token_is_not_found,
    transcript_email_arrives_over_smtp,
    transcript_email_without_smtp_is_refused,
    supervisor_log_includes_private_messages_marked,
    supervisor_search_filters_and_pages,
    chat_log_is_for_supervisors_only,
);

const PRIVATE: &str = "PRIVATE: customer is on the watch list";

/// An ended chat between Carla and Alice with a private note in its log.
struct EndedChat {
    id: String,
    token: String,
}

async fn ended_chat(app: &TestApp) -> EndedChat {
    app.add_agent("alice", 3).await;
    let mut agent = app.ready_agent("alice").await;
    let (id, token, mut customer) = app.new_customer("Carla").await;
    customer.say(None, "c1", "Hello, my order is late").await;
    accept(&mut agent, &id).await;
    agent.say(Some(&id), "a1", "Order 1234 ships today").await;
    agent
        .send(json!({"type": "send", "conversation_id": id, "client_msg_id": "p1", "text": PRIVATE, "private": true}))
        .await;
    agent.expect("ack").await;
    customer.say(None, "c2", "Thank you!").await;
    agent
        .send(json!({"type": "end", "conversation_id": id}))
        .await;
    customer.expect_event("ended").await;
    EndedChat { id, token }
}

async fn user_id(app: &TestApp, username: &str) -> UserId {
    let users = app.store.list_users().await.expect("users");
    users
        .iter()
        .find(|u| u.username == username)
        .map(|u| u.id)
        .expect("user exists")
}

async fn download(app: &TestApp, id: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app
        .http
        .get(app.url(&format!("/api/chats/{id}/transcript")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("transcript request")
}

async fn request_email(app: &TestApp, id: &str, token: &str, email: &str) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/api/chats/{id}/transcript/email")))
        .bearer_auth(token)
        .json(&json!({ "email": email }))
        .send()
        .await
        .expect("email request")
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json error body");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn download_after_the_end_has_no_private_messages(backend: Backend) {
    // Arrange
    let app = TestApp::spawn(backend).await;
    let chat = ended_chat(&app).await;

    // Act
    let response = download(&app, &chat.id, Some(&chat.token)).await;

    // Assert
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"transcript-{}.txt\"", chat.id).as_str()
    );
    assert_eq!(headers["cache-control"], "no-store");
    let text = response.text().await.expect("body");
    assert!(text.starts_with("Chat transcript\n"), "{text}");
    assert!(text.contains(&format!("Conversation: {}\n", chat.id)));
    assert!(text.contains("Queue: Support\n"));
    assert!(text.contains("Carla: Hello, my order is late\n"), "{text}");
    assert!(text.contains("* Alice joined the chat\n"));
    assert!(text.contains("Alice: Order 1234 ships today\n"));
    assert!(text.contains("Carla: Thank you!\n"));
    assert!(text.contains("* Alice ended the chat\n"));
    assert!(
        !text.contains("PRIVATE"),
        "a private message leaked: {text}"
    );
    assert!(
        !text.contains("watch list"),
        "a private message leaked: {text}"
    );
}

async fn no_transcript_before_the_end(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, token, mut customer) = app.new_customer("Carla").await;
    customer.say(None, "c1", "Hello").await;

    let early = download(&app, &id, Some(&token)).await;
    assert_eq!(error_code(early).await, (409, "not_ended".into()));
    let early = request_email(&app, &id, &token, "carla@example.com").await;
    assert_eq!(error_code(early).await, (409, "not_ended".into()));

    // Once the customer leaves (abandoned: no agent), the download works
    // but e-mail is refused, so anonymous chats cannot mail arbitrary text.
    customer.send(json!({"type": "end"})).await;
    customer.expect_event("ended").await;
    let late = download(&app, &id, Some(&token)).await;
    assert_eq!(late.status(), 200);
    assert!(late.text().await.expect("body").contains("Carla: Hello\n"));
    let mail = request_email(&app, &id, &token, "carla@example.com").await;
    assert_eq!(error_code(mail).await, (409, "not_answered".into()));
}

async fn another_conversations_token_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let chat = ended_chat(&app).await;
    let (_other_id, other_token) = app.start_chat("Mallory").await;

    let foreign = download(&app, &chat.id, Some(&other_token)).await;
    let unknown_id = download(&app, &uuid::Uuid::new_v4().to_string(), Some(&chat.token)).await;
    let wrong_token = download(&app, &chat.id, Some("not-a-token")).await;
    let garbage_id = download(&app, "not-a-uuid", Some(&chat.token)).await;
    let long_token = download(&app, &chat.id, Some(&"x".repeat(200))).await;
    let foreign_body = error_code(foreign).await;
    assert_eq!(foreign_body, (404, "not_found".into()));
    for response in [unknown_id, wrong_token, garbage_id, long_token] {
        assert_eq!(error_code(response).await, foreign_body);
    }
    let foreign_mail = request_email(&app, &chat.id, &other_token, "m@example.com").await;
    assert_eq!(error_code(foreign_mail).await, (404, "not_found".into()));

    let anonymous = download(&app, &chat.id, None).await;
    assert_eq!(error_code(anonymous).await, (401, "unauthorized".into()));
}

async fn transcript_email_arrives_over_smtp(backend: Backend) {
    // Arrange: a real SMTP server and a server configured to use it.
    let smtp = SmtpServer::start().await;
    let url = crate::helpers::fresh_database(backend).await;
    let mut settings = settings(&url);
    settings.mail = smtp.settings();
    let app = TestApp::spawn_with(settings).await;
    let chat = ended_chat(&app).await;

    // Act
    let bad = request_email(&app, &chat.id, &chat.token, "not an address").await;
    let sent = request_email(&app, &chat.id, &chat.token, " carla.home@example.org ").await;

    // Assert
    assert_eq!(error_code(bad).await, (400, "bad_request".into()));
    assert_eq!(sent.status(), 202);
    let body: Value = sent.json().await.expect("json");
    assert_eq!(body, json!({"email": "carla.home@example.org"}));

    let raw = smtp.wait_for(1).await.remove(0);
    let message = MessageParser::default().parse(&raw).expect("an e-mail");
    let to = message
        .to()
        .and_then(|t| t.first())
        .and_then(|a| a.address());
    assert_eq!(to, Some("carla.home@example.org"));
    let from = message
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.address());
    assert_eq!(from, Some("support@switchboard.test"));
    let subject = message.subject().unwrap_or_default();
    assert!(
        subject.starts_with("Your chat transcript (Support, "),
        "{subject}"
    );
    let text = message.body_text(0).expect("a text part").into_owned();
    assert!(text.contains("Carla: Hello, my order is late"), "{text}");
    assert!(text.contains("Alice: Order 1234 ships today"), "{text}");
    assert!(text.contains("Carla: Thank you!"), "{text}");
    let html = message.body_html(0).expect("an HTML part").into_owned();
    assert!(html.contains("Order 1234 ships today"), "{html}");
    let whole = String::from_utf8_lossy(&raw);
    for part in [&text, &html, &whole.to_string()] {
        assert!(
            !part.contains("PRIVATE"),
            "a private message leaked: {part}"
        );
        assert!(
            !part.contains("watch list"),
            "a private message leaked: {part}"
        );
    }

    // A second request within the minute is refused, and nothing more is sent.
    let again = request_email(&app, &chat.id, &chat.token, "carla@example.com").await;
    assert_eq!(error_code(again).await, (429, "rate_limited".into()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.messages().len(), 1);
}

async fn transcript_email_without_smtp_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let chat = ended_chat(&app).await;
    let response = request_email(&app, &chat.id, &chat.token, "carla@example.com").await;
    assert_eq!(error_code(response).await, (503, "mail_disabled".into()));
}

async fn get_as(app: &TestApp, cookie: Option<&str>, path: &str) -> reqwest::Response {
    let mut request = app.http.get(app.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.expect("request")
}

async fn supervisor_log_includes_private_messages_marked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let chat = ended_chat(&app).await;
    app.add_supervisor("sam").await;
    let sam = app.login("sam").await;

    let log: Value = get_as(
        &app,
        Some(&sam),
        &format!("/api/conversations/{}/log", chat.id),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(log["conversation"]["conversation_id"], chat.id.as_str());
    assert_eq!(log["conversation"]["state"], "ended");
    assert_eq!(log["conversation"]["agents"][0]["display_name"], "Alice");
    let events = log["events"].as_array().expect("events");
    let private: Vec<&Value> = events.iter().filter(|e| e["private"] == true).collect();
    assert_eq!(private.len(), 1, "{log}");
    assert_eq!(private[0]["text"], PRIVATE);
    assert_eq!(private[0]["audience"], "agents_only");
    let public = events
        .iter()
        .find(|e| e["text"] == "Order 1234 ships today");
    assert_eq!(public.map(|e| e["private"].clone()), Some(json!(false)));
    let seqs: Vec<i64> = events.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());

    let text = get_as(
        &app,
        Some(&sam),
        &format!("/api/conversations/{}/log?format=text", chat.id),
    )
    .await
    .text()
    .await
    .expect("text");
    assert!(
        text.contains(&format!("[private] Alice: {PRIVATE}\n")),
        "{text}"
    );
    assert!(text.contains("] Alice: Order 1234 ships today\n"), "{text}");

    let unknown = get_as(
        &app,
        Some(&sam),
        &format!("/api/conversations/{}/log", uuid::Uuid::new_v4()),
    )
    .await;
    assert_eq!(unknown.status(), 404);
}

async fn search(app: &TestApp, cookie: &str, query: &str) -> Value {
    let response = get_as(app, Some(cookie), &format!("/api/conversations?{query}")).await;
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.expect("json")
}

fn ids(result: &Value) -> Vec<String> {
    result["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .filter_map(|c| c["conversation_id"].as_str().map(str::to_owned))
        .collect()
}

async fn created_at(app: &TestApp, id: &str) -> i64 {
    let id = ConversationId::parse(id).expect("id");
    app.store
        .conversation(&id)
        .await
        .expect("store")
        .expect("row")
        .created_at
}

async fn supervisor_search_filters_and_pages(backend: Backend) {
    // Arrange: A (Carla, Support, Alice, ended), B (Dave, Billing, waiting),
    // C (Erin, Support, Bob, active), created in that order.
    let app = TestApp::spawn(backend).await;
    let a = ended_chat(&app).await.id;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let billing = app
        .store
        .create_queue("Billing", 30, 0)
        .await
        .expect("queue");
    let b = start_chat_in(&app, billing, "Dave").await;
    let (_, b_token) = &b;
    let mut dave = app.customer(&b.0, b_token, 0).await;
    dave.say(None, "d1", "Invoice question: 50% off?").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let alice_id = user_id(&app, "alice").await;
    let bob_id = app.add_agent("bob", 3).await;
    let mut bob = app.ready_agent("bob").await;
    let (c, _, _erin) = app.new_customer("Erin").await;
    accept(&mut bob, &c).await;
    let b = b.0;
    let (a, b, c) = (a.as_str(), b.as_str(), c.as_str());
    app.add_supervisor("sam").await;
    let sam = app.login("sam").await;

    // Act and assert
    let all = search(&app, &sam, "").await;
    assert_eq!(ids(&all), [c, b, a]);
    assert_eq!(all["next_before"], Value::Null);
    assert_eq!(all["conversations"][2]["agents"][0]["id"], alice_id.0);

    assert_eq!(
        ids(&search(&app, &sam, &format!("queue_id={}", billing.0)).await),
        [b]
    );
    assert_eq!(
        ids(&search(&app, &sam, &format!("queue_id={}", app.queue.0)).await),
        [c, a]
    );
    assert_eq!(
        ids(&search(&app, &sam, &format!("agent_id={}", alice_id.0)).await),
        [a]
    );
    assert_eq!(
        ids(&search(&app, &sam, &format!("agent_id={}", bob_id.0)).await),
        [c]
    );
    assert_eq!(ids(&search(&app, &sam, "customer=CARL").await), [a]);
    assert_eq!(
        ids(&search(&app, &sam, "customer=dave%40EXAMPLE").await),
        [b]
    );
    assert_eq!(
        ids(&search(&app, &sam, "customer=example.com").await).len(),
        3
    );
    assert_eq!(ids(&search(&app, &sam, "text=ORDER%201234").await), [a]);
    assert_eq!(ids(&search(&app, &sam, "text=invoice").await), [b]);
    // Pattern characters match themselves.
    assert_eq!(ids(&search(&app, &sam, "text=50%25").await), [b]);
    assert!(ids(&search(&app, &sam, "text=%25%25%25").await).is_empty());
    assert!(ids(&search(&app, &sam, "text=_nvoice").await).is_empty());
    // Supervisors find private messages too.
    assert_eq!(ids(&search(&app, &sam, "text=watch%20list").await), [a]);
    assert_eq!(ids(&search(&app, &sam, "state=live").await), [c, b]);
    assert_eq!(ids(&search(&app, &sam, "state=closed").await), [a]);
    assert_eq!(ids(&search(&app, &sam, "state=active,ended").await), [c, a]);
    let (tb, tc) = (created_at(&app, b).await, created_at(&app, c).await);
    assert_eq!(
        ids(&search(&app, &sam, &format!("from={tb}")).await),
        [c, b]
    );
    assert_eq!(ids(&search(&app, &sam, &format!("to={tb}")).await), [a]);
    assert_eq!(
        ids(&search(&app, &sam, &format!("from={tb}&to={tc}")).await),
        [b]
    );
    let combined = format!("queue_id={}&state=closed&customer=&text=order", app.queue.0);
    assert_eq!(ids(&search(&app, &sam, &combined).await), [a]);

    // Keyset pages.
    let first = search(&app, &sam, "limit=2").await;
    assert_eq!(ids(&first), [c, b]);
    let cursor = first["next_before"].as_str().expect("a cursor").to_owned();
    let second = search(&app, &sam, &format!("limit=2&before={cursor}")).await;
    assert_eq!(ids(&second), [a]);
    assert_eq!(second["next_before"], Value::Null);

    for bad in [
        "limit=0",
        "limit=1000",
        "from=yesterday",
        "state=gone",
        "before=x",
        "color=red",
    ] {
        let response = get_as(&app, Some(&sam), &format!("/api/conversations?{bad}")).await;
        assert_eq!(
            error_code(response).await,
            (400, "bad_request".into()),
            "{bad}"
        );
    }
}

async fn start_chat_in(app: &TestApp, queue: QueueId, name: &str) -> (String, String) {
    let response = app
        .http
        .post(app.url("/api/chats"))
        .json(&json!({"queue_id": queue, "name": name, "email": format!("{}@example.com", name.to_lowercase())}))
        .send()
        .await
        .expect("start chat");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    (
        body["conversation_id"].as_str().expect("id").to_owned(),
        body["token"].as_str().expect("token").to_owned(),
    )
}

async fn chat_log_is_for_supervisors_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let chat = ended_chat(&app).await;
    let alice = app.login("alice").await;
    for path in [
        "/api/conversations".to_owned(),
        format!("/api/conversations/{}/log", chat.id),
        // Authorisation is checked before the query is read.
        "/api/conversations?limit=nonsense".to_owned(),
    ] {
        let anonymous = get_as(&app, None, &path).await;
        assert_eq!(
            error_code(anonymous).await,
            (401, "unauthorized".into()),
            "{path}"
        );
        let agent = get_as(&app, Some(&alice), &path).await;
        assert_eq!(error_code(agent).await, (403, "forbidden".into()), "{path}");
    }
    // The customer's token is no key to the organisation log either.
    let with_token = app
        .http
        .get(app.url(&format!("/api/conversations/{}/log", chat.id)))
        .bearer_auth(&chat.token)
        .send()
        .await
        .expect("request");
    assert_eq!(with_token.status(), 401);
}
