//! The automatic transcript: a chat from a site with `transcript_email` on
//! whose customer's e-mail the site signed gets its transcript mailed to
//! that address at the end, through a real SMTP server. Typed addresses and
//! sites without the setting get nothing.

use crate::both_stores;
use crate::helpers::{accept, fresh_database, settings, Backend, TestApp, Ws};
use crate::smtp::SmtpServer;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use mail_parser::MessageParser;
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;

both_stores!(transcript_goes_to_the_verified_address_when_the_site_enables_it);

/// A token signed as the site's backend would (HS256 over the claims).
fn identity_token(site_key: &str, email: &str, secret: &str) -> String {
    let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = json!({"name": "Carla", "email": email, "aud": site_key,
                        "exp": switchboard::clock::wall_ms() / 1000 + 600});
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "HS256", "typ": "JWT"})),
        b64(claims)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{input}.{signature}")
}

/// Creates a site; returns its identity secret.
async fn site(app: &TestApp, cookie: &str, key: &str, transcript_email: bool) -> String {
    let response = app
        .http
        .post(app.url("/api/sites"))
        .header("cookie", cookie)
        .json(
            &json!({"name": key, "key": key, "default_queue_id": app.queue,
                      "transcript_email": transcript_email}),
        )
        .send()
        .await
        .expect("create site");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    body["identity_secret"].as_str().expect("secret").to_owned()
}

/// Starts a chat on a site, has the agent answer and private-note it, and
/// ends it from the customer's side.
async fn chat_and_end(app: &TestApp, agent: &mut Ws, body: Value) {
    let response = app
        .http
        .post(app.url("/api/chats"))
        .json(&body)
        .send()
        .await
        .expect("start chat");
    assert_eq!(response.status(), 201);
    let started: Value = response.json().await.expect("json");
    let id = started["conversation_id"].as_str().expect("id").to_owned();
    let token = started["token"].as_str().expect("token");
    let mut customer = app.customer(&id, token, 0).await;
    accept(agent, &id).await;
    customer.say(None, "c1", "Where is my parcel?").await;
    agent
        .send(
            json!({"type": "send", "conversation_id": id, "client_msg_id": "p1",
                     "text": "PRIVATE: check the fraud list", "private": true}),
        )
        .await;
    agent.expect("ack").await;
    agent.say(Some(&id), "a1", "It arrives tomorrow").await;
    customer.send(json!({"type": "end"})).await;
    customer.expect_event("ended").await;
    agent.expect_event("ended").await;
}

async fn transcript_goes_to_the_verified_address_when_the_site_enables_it(backend: Backend) {
    // Arrange
    let smtp = SmtpServer::start().await;
    let mut settings = settings(&fresh_database(backend).await);
    settings.mail = smtp.settings();
    let app = TestApp::spawn_with(settings).await;
    app.add_supervisor("sam").await;
    let sam = app.login("sam").await;
    let shop_secret = site(&app, &sam, "shop", true).await;
    let quiet_secret = site(&app, &sam, "quiet", false).await;
    app.add_agent("alice", 3).await;
    let mut alice = app.ready_agent("alice").await;

    // Act: a typed address and a site without the setting first, then the
    // chat that qualifies.
    chat_and_end(
        &app,
        &mut alice,
        json!({"site": "shop", "name": "Typed", "email": "typed@example.com"}),
    )
    .await;
    let quiet = identity_token("quiet", "carla@quiet.example", &quiet_secret);
    chat_and_end(
        &app,
        &mut alice,
        json!({"site": "quiet", "identity_token": quiet}),
    )
    .await;
    let shop = identity_token("shop", "carla@shop.example", &shop_secret);
    chat_and_end(
        &app,
        &mut alice,
        json!({"site": "shop", "identity_token": shop}),
    )
    .await;

    // Assert: exactly one message, to the verified address, without the private one.
    let raw = smtp.wait_for(1).await.remove(0);
    let message = MessageParser::default().parse(&raw).expect("an e-mail");
    let to = message
        .to()
        .and_then(|t| t.first())
        .and_then(|a| a.address());
    assert_eq!(to, Some("carla@shop.example"));
    let text = message.body_text(0).expect("a text part").into_owned();
    assert!(text.contains("Where is my parcel?"), "{text}");
    assert!(text.contains("Alice: It arrives tomorrow"), "{text}");
    assert!(
        !text.contains("PRIVATE"),
        "a private message leaked: {text}"
    );
    assert!(!String::from_utf8_lossy(&raw).contains("fraud list"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.messages().len(), 1, "only the verified chat is mailed");
}
