//! The WebSocket commands per role: anonymous, the customer of another
//! conversation, an agent not in the chat and a supervisor; and the
//! private-message audience filter on every path a customer can read
//! (live, resume, transcript download, transcript e-mail, attachment
//! download).

use crate::both_stores;
use crate::helpers::{accept, settings, Backend, TestApp, Ws};
use crate::smtp::SmtpServer;
use mail_parser::MessageParser;
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Error as WsError;

both_stores!(
    anonymous_cannot_open_the_console,
    another_customers_token_finds_nothing,
    agent_not_in_the_chat_is_refused_and_hears_nothing,
    supervisor_console_is_an_agent_console,
    private_messages_never_reach_the_customer,
);

/// Every conversation command of the console, for chat `id`.
fn conversation_commands(id: &str) -> Vec<Value> {
    vec![
        json!({"type": "accept", "conversation_id": id}),
        json!({"type": "reject", "conversation_id": id}),
        json!({"type": "send", "conversation_id": id, "client_msg_id": "x1", "text": "hi"}),
        json!({"type": "send", "conversation_id": id, "client_msg_id": "x2", "text": "hi", "private": true}),
        json!({"type": "offer_choices", "conversation_id": id, "client_msg_id": "x3", "prompt": "Which?", "options": ["A", "B"]}),
        json!({"type": "invite", "conversation_id": id, "queue_id": 1}),
        json!({"type": "cancel_invite", "conversation_id": id}),
        json!({"type": "leave", "conversation_id": id}),
        json!({"type": "end", "conversation_id": id}),
    ]
}

/// What [`conversation_commands`] get from an agent who is not in the chat.
const NOT_IN_CHAT: [&str; 9] = [
    "not_your_offer",
    "not_your_offer",
    "not_participant",
    "not_participant",
    "not_participant",
    "not_participant",
    "no_invite_pending",
    "not_participant",
    "not_participant",
];

/// Sends each command and returns the error code each one got; panics on
/// any answer that is not an error.
async fn refusals(ws: &mut Ws, commands: Vec<Value>) -> Vec<String> {
    let mut codes = Vec::new();
    for command in commands {
        ws.send(command.clone()).await;
        let frames = ws.until_pong().await;
        assert_eq!(frames.len(), 1, "{command}: {frames:?}");
        assert_eq!(frames[0]["type"], "error", "{command}: {frames:?}");
        codes.push(frames[0]["code"].as_str().unwrap_or("").to_owned());
    }
    codes
}

fn mentions(frames: &[Value], needle: &str) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| f.to_string().contains(needle))
        .cloned()
        .collect()
}

async fn anonymous_cannot_open_the_console(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for cookie in [None, Some("sb_session=forged-session-id")] {
        match Ws::connect(&app, "/ws/agent", cookie, None).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), 401, "{cookie:?}"),
            Err(other) => panic!("{cookie:?}: {other}"),
            Ok(_) => panic!("{cookie:?}: the console opened without a session"),
        }
    }
}

async fn another_customers_token_finds_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut alice = app.ready_agent("alice").await;
    let (a_id, a_token, mut a_customer) = app.new_customer("Carla").await;
    accept(&mut alice, &a_id).await;
    a_customer.say(None, "c1", "my address is 1 Main St").await;
    let (b_id, b_token) = app.start_chat("Mallory").await;

    let mut mallory = Ws::connect(&app, "/ws/customer", None, None)
        .await
        .expect("customer socket");
    // Before a resume every command is refused.
    let commands = vec![
        json!({"type": "send", "client_msg_id": "m1", "text": "hi"}),
        json!({"type": "typing", "typing": true}),
        json!({"type": "choose", "client_msg_id": "m2", "offer_id": uuid::Uuid::new_v4().to_string(), "option_id": 1}),
        json!({"type": "dismiss_choices", "client_msg_id": "m3", "offer_id": uuid::Uuid::new_v4().to_string()}),
        json!({"type": "end"}),
    ];
    for code in refusals(&mut mallory, commands.clone()).await {
        assert_eq!(code, "not_resumed");
    }
    // A's id with B's token, and an unknown id, give the same answer.
    let mut answers = Vec::new();
    for id in [a_id.clone(), uuid::Uuid::new_v4().to_string()] {
        mallory
            .send(json!({"type": "resume", "conversation_id": id, "token": b_token, "last_seq": 0}))
            .await;
        let frames = mallory.until_pong().await;
        assert_eq!(frames.len(), 1, "{frames:?}");
        answers.push(frames[0].clone());
    }
    assert_eq!(answers[0]["code"], "not_found");
    assert_eq!(answers[0], answers[1], "no enumeration");
    // Still unresumed: nothing can be done to A, and nothing of A arrives.
    for code in refusals(&mut mallory, commands).await {
        assert_eq!(code, "not_resumed");
    }
    alice.say(Some(&a_id), "a1", "we ship to 1 Main St").await;
    let frames = mallory.until_pong().await;
    assert!(frames.is_empty(), "{frames:?}");
    // Over HTTP: A's transcript with B's token is not found.
    alice
        .send(json!({"type": "end", "conversation_id": a_id}))
        .await;
    a_customer.expect_event("ended").await;
    let response = app
        .http
        .get(app.url(&format!("/api/chats/{a_id}/transcript")))
        .bearer_auth(&b_token)
        .send()
        .await
        .expect("transcript");
    assert_eq!(response.status(), 404);
    // B's own token works on B only; A's log is unchanged by all this.
    let b = app.customer(&b_id, &b_token, 0).await;
    b.close().await;
    let own = app.customer(&a_id, &a_token, 0).await;
    own.close().await;
}

async fn agent_not_in_the_chat_is_refused_and_hears_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    app.add_agent("bob", 3).await;
    let mut alice = app.ready_agent("alice").await;
    let mut bob = app.agent("bob").await; // not ready: offered nothing
    let (id, _token, mut customer) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;
    customer.expect_event("joined").await;
    customer.until_pong().await;
    bob.until_pong().await;

    let codes = refusals(&mut bob, conversation_commands(&id)).await;
    assert_eq!(codes, NOT_IN_CHAT);
    // Typing is dropped silently.
    bob.send(json!({"type": "typing", "conversation_id": id, "typing": true}))
        .await;
    let frames = customer.until_pong().await;
    assert!(frames.is_empty(), "{frames:?}");

    // The chat goes on; bob hears none of it, even asking to resume it.
    customer.say(None, "c1", "hello").await;
    alice.say(Some(&id), "a1", "public").await;
    alice
        .send(json!({"type": "send", "conversation_id": id, "client_msg_id": "p1", "text": "note", "private": true}))
        .await;
    alice.expect("ack").await;
    alice
        .send(json!({"type": "typing", "conversation_id": id, "typing": true}))
        .await;
    customer.expect("typing").await;
    assert_eq!(mentions(&bob.until_pong().await, &id), Vec::<Value>::new());
    bob.send(json!({"type": "sign_in", "profile_id": app.profile, "resume": {id.clone(): 0}}))
        .await;
    let signed_in = bob.expect("signed_in").await;
    assert_eq!(signed_in["conversations"], json!([]));
    assert_eq!(mentions(&bob.until_pong().await, &id), Vec::<Value>::new());
}

async fn supervisor_console_is_an_agent_console(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let sam_id = app.add_supervisor("sam").await;
    let mut alice = app.ready_agent("alice").await;
    let (id, _token, mut customer) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;

    let cookie = app.login("sam").await;
    let mut sam = Ws::connect(&app, "/ws/agent", Some(&cookie), None)
        .await
        .expect("a supervisor may open the console");
    let hello = sam.expect("hello").await;
    assert_eq!(hello["user"]["role"], "supervisor");
    // Before sign_in: not_signed_in for every conversation command.
    for code in refusals(&mut sam, conversation_commands(&id)).await {
        assert_eq!(code, "not_signed_in");
    }
    // Only granted profiles; then the supervisor is an agent not in the chat.
    sam.send(json!({"type": "sign_in", "profile_id": app.profile}))
        .await;
    assert_eq!(sam.expect_error().await["code"], "invalid_profile");
    app.store
        .grant_profile(sam_id, app.profile)
        .await
        .expect("grant");
    sam.send(json!({"type": "sign_in", "profile_id": app.profile}))
        .await;
    sam.expect("signed_in").await;
    let codes = refusals(&mut sam, conversation_commands(&id)).await;
    assert_eq!(codes, NOT_IN_CHAT);
    customer.say(None, "c1", "hello").await;
    alice.say(Some(&id), "a1", "public").await;
    assert_eq!(mentions(&sam.until_pong().await, &id), Vec::<Value>::new());
}

const SECRET: &str = "SECRET-note-watch-list";

async fn private_messages_never_reach_the_customer(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let url = crate::helpers::fresh_database(backend).await;
    let mut settings = settings(&url);
    settings.mail = smtp.settings();
    let app = TestApp::spawn_with(settings).await;
    app.add_agent("alice", 3).await;
    let mut alice = app.ready_agent("alice").await;
    let cookie = app.login("alice").await;
    let (id, token, mut customer) = app.new_customer("Carla").await;
    customer.say(None, "c1", "hello").await;
    accept(&mut alice, &id).await;
    customer.until_pong().await;

    // A private file, a private note and private typing; then a public answer.
    let form = Form::new().part(
        "file",
        Part::bytes(format!("{SECRET} file").into_bytes())
            .file_name("secret-notes.txt")
            .mime_str("text/plain")
            .expect("mime"),
    );
    let upload: Value = app
        .http
        .post(app.url(&format!("/api/conversations/{id}/attachments")))
        .header("cookie", &cookie)
        .multipart(form)
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    let file = upload["attachments"][0]["id"]
        .as_str()
        .expect("attachment id")
        .to_owned();
    alice
        .send(json!({"type": "typing", "conversation_id": id, "typing": true, "private": true}))
        .await;
    alice.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "p1", "text": SECRET, "private": true, "attachments": [file]})).await;
    alice.expect("ack").await;
    alice.say(Some(&id), "a1", "public answer").await;

    let leaks = |frames: &[Value]| -> Vec<Value> {
        frames
            .iter()
            .filter(|f| {
                let s = f.to_string();
                s.contains(SECRET) || s.contains(&file) || s.contains("secret-notes")
            })
            .cloned()
            .collect()
    };
    // Live: the public answer arrives, nothing private (not even typing).
    let live = customer.until_pong().await;
    assert!(
        live.iter().any(|f| f["text"] == "public answer"),
        "{live:?}"
    );
    assert!(live.iter().all(|f| f["type"] != "typing"), "{live:?}");
    assert_eq!(leaks(&live), Vec::<Value>::new());
    // Resume history, in the customer's own gap-free numbering.
    let mut tab = Ws::connect(&app, "/ws/customer", None, None)
        .await
        .expect("socket");
    tab.send(json!({"type": "resume", "conversation_id": id, "token": token, "last_seq": 0}))
        .await;
    let history = tab.until_pong().await;
    assert_eq!(leaks(&history), Vec::<Value>::new());
    let seqs: Vec<i64> = history.iter().filter_map(|f| f["seq"].as_i64()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    tab.close().await;
    // The private file: not found for the customer, served to the agent.
    let as_customer = app
        .http
        .get(app.url(&format!("/api/attachments/{file}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("download");
    assert_eq!(as_customer.status(), 404);
    let as_agent = app
        .http
        .get(app.url(&format!("/api/attachments/{file}")))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("download");
    assert_eq!(as_agent.status(), 200);

    // After the end: the transcript download and the e-mail.
    alice
        .send(json!({"type": "end", "conversation_id": id}))
        .await;
    customer.expect_event("ended").await;
    let transcript = app
        .http
        .get(app.url(&format!("/api/chats/{id}/transcript")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("transcript")
        .text()
        .await
        .expect("text");
    assert!(transcript.contains("public answer"), "{transcript}");
    assert!(!transcript.contains(SECRET), "{transcript}");
    assert!(!transcript.contains("secret-notes"), "{transcript}");
    let sent = app
        .http
        .post(app.url(&format!("/api/chats/{id}/transcript/email")))
        .bearer_auth(&token)
        .json(&json!({"email": "carla@example.com"}))
        .send()
        .await
        .expect("email");
    assert_eq!(sent.status(), 202);
    let raw = smtp.wait_for(1).await.remove(0);
    let message = MessageParser::default().parse(&raw).expect("an e-mail");
    let text = message.body_text(0).expect("text part").into_owned();
    let html = message.body_html(0).expect("html part").into_owned();
    assert!(text.contains("public answer"), "{text}");
    for part in [text, html, String::from_utf8_lossy(&raw).into_owned()] {
        assert!(!part.contains(SECRET), "{part}");
        assert!(!part.contains("secret-notes"), "{part}");
    }
}
