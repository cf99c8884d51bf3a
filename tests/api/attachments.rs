//! Attachments: upload over HTTP, send in a message over either socket,
//! download per conversation and audience. Every refusal gets its typed
//! error and leaves no file on disk and no row in the store.

use crate::both_stores;
use crate::helpers::{accept, settings, Backend, TestApp, Ws};
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use switchboard::domain::ids::ConversationId;

both_stores!(
    upload_send_and_download_on_both_sides,
    limits_are_enforced_while_streaming,
    refused_types_leave_nothing_behind,
    private_attachments_are_agents_only,
    access_is_per_conversation,
    only_your_own_unsent_uploads_can_be_sent,
    customer_uploads_follow_the_switch,
);

const MIB: usize = 1024 * 1024;
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01";
const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n";
const ELF: &[u8] = b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00";

/// How a request authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    Cookie(&'a str),
    Bearer(&'a str),
    Nobody,
}

fn authorised(request: reqwest::RequestBuilder, auth: Auth<'_>) -> reqwest::RequestBuilder {
    match auth {
        Auth::Cookie(cookie) => request.header("cookie", cookie),
        Auth::Bearer(token) => request.bearer_auth(token),
        Auth::Nobody => request,
    }
}

/// A file to upload: (name the client gives, Content-Type it claims, bytes).
type File<'a> = (&'a str, &'a str, Vec<u8>);

/// Uploads `files` as fields named `file`; returns the status and JSON body.
async fn upload(app: &TestApp, id: &str, auth: Auth<'_>, files: Vec<File<'_>>) -> (u16, Value) {
    let mut form = Form::new();
    for (name, content_type, bytes) in files {
        let part = Part::bytes(bytes)
            .file_name(name.to_owned())
            .mime_str(content_type)
            .expect("content type");
        form = form.part("file", part);
    }
    let request = app
        .http
        .post(app.url(&format!("/api/conversations/{id}/attachments")))
        .multipart(form);
    let response = authorised(request, auth).send().await.expect("upload");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Uploads files that must be accepted; returns their ids.
async fn uploaded(app: &TestApp, id: &str, auth: Auth<'_>, files: Vec<File<'_>>) -> Vec<String> {
    let (status, body) = upload(app, id, auth, files).await;
    assert_eq!(status, 201, "{body}");
    body["attachments"]
        .as_array()
        .expect("attachments")
        .iter()
        .map(|a| a["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn download(app: &TestApp, attachment: &str, auth: Auth<'_>) -> reqwest::Response {
    let request = app
        .http
        .get(app.url(&format!("/api/attachments/{attachment}")));
    authorised(request, auth).send().await.expect("download")
}

fn text(bytes: &[u8]) -> Vec<u8> {
    bytes.to_vec()
}

/// Every file under `dir`, however deep.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found.sort();
    found
}

async fn rows(app: &TestApp, id: &str) -> usize {
    app.store
        .conversation_attachments(&ConversationId(id.to_owned()))
        .await
        .expect("attachments")
        .len()
}

/// A refusal: the status, the error code, and nothing new on disk or in the table.
async fn assert_refused(
    app: &TestApp,
    id: &str,
    auth: Auth<'_>,
    files: Vec<File<'_>>,
    status: u16,
    code: &str,
) {
    let disk_before = files_under(&app.attachments_dir);
    let rows_before = rows(app, id).await;
    let (got, body) = upload(app, id, auth, files).await;
    assert_eq!(
        (got, body["error"].as_str()),
        (status, Some(code)),
        "{body}"
    );
    assert_eq!(
        files_under(&app.attachments_dir),
        disk_before,
        "nothing left on disk"
    );
    assert_eq!(rows(app, id).await, rows_before, "nothing in the table");
}

fn attachment_ids(event: &Value) -> Vec<String> {
    event["attachments"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|a| a["id"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The customer's transcript of an ended chat.
async fn transcript(app: &TestApp, id: &str, token: &str) -> String {
    let response = app
        .http
        .get(app.url(&format!("/api/chats/{id}/transcript")))
        .bearer_auth(token)
        .send()
        .await
        .expect("transcript");
    assert_eq!(response.status(), 200);
    response.text().await.expect("text")
}

/// Everything a freshly resumed customer socket receives.
async fn customer_history(app: &TestApp, id: &str, token: &str) -> Vec<Value> {
    let mut ws = Ws::connect(app, "/ws/customer", None, None).await.unwrap();
    ws.send(json!({"type": "resume", "conversation_id": id, "token": token, "last_seq": 0}))
        .await;
    ws.until_pong().await
}

async fn upload_send_and_download_on_both_sides(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    app.add_supervisor("sam").await;
    let mut alice = app.ready_agent("alice").await;
    let alice_cookie = app.login("alice").await;
    let (id, token, mut customer) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;

    // The customer uploads; names lose their paths, claimed types are ignored.
    let (status, body) = upload(
        &app,
        &id,
        Auth::Bearer(&token),
        vec![
            (
                "../../notes.txt",
                "application/x-msdownload",
                text(b"order 42\n"),
            ),
            ("photo.png", "text/plain", PNG.to_vec()),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let files = body["attachments"].as_array().unwrap().clone();
    assert_eq!(files[0]["name"], "notes.txt");
    assert_eq!(files[0]["content_type"], "text/plain; charset=utf-8");
    assert_eq!(files[0]["size"], 9);
    assert_eq!(files[1]["name"], "photo.png");
    assert_eq!(files[1]["content_type"], "image/png");
    let ids: Vec<String> = files
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();

    // A message with attachments may have no text.
    customer
        .send(json!({"type": "send", "client_msg_id": "c1", "text": "", "attachments": ids}))
        .await;
    customer.expect("ack").await;
    let own = customer.expect_event("message").await;
    assert_eq!(own["attachments"], json!(files));
    let seen = alice.expect_event("message").await;
    assert_eq!(
        (seen["text"].as_str(), &seen["attachments"]),
        (Some(""), &json!(files))
    );

    // The agent downloads with the session, the customer with the token.
    let response = download(&app, &ids[0], Auth::Cookie(&alice_cookie)).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"notes.txt\""
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["content-security-policy"],
        "sandbox; default-src 'none'"
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"order 42\n");
    let response = download(&app, &ids[1], Auth::Bearer(&token)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.bytes().await.unwrap().as_ref(), PNG);

    // The agent sends a file with a caption; the customer gets it.
    let sent = uploaded(
        &app,
        &id,
        Auth::Cookie(&alice_cookie),
        vec![("résumé.pdf", "application/octet-stream", PDF.to_vec())],
    )
    .await;
    alice.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "a1", "text": "Here it is", "attachments": sent})).await;
    alice.expect("ack").await;
    let event = customer.expect_event("message").await;
    assert_eq!(
        (event["text"].as_str(), attachment_ids(&event)),
        (Some("Here it is"), sent.clone())
    );
    let response = download(&app, &sent[0], Auth::Bearer(&token)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"r_sum_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
    );

    // Replay carries the references; supervisors may download; strangers may not.
    let history = customer_history(&app, &id, &token).await;
    let replayed: Vec<Vec<String>> = history
        .iter()
        .filter(|f| f["kind"] == "message")
        .map(attachment_ids)
        .collect();
    assert_eq!(replayed, [ids.clone(), sent]);
    let sam = app.login("sam").await;
    assert_eq!(
        download(&app, &ids[0], Auth::Cookie(&sam)).await.status(),
        200
    );
    assert_eq!(download(&app, &ids[0], Auth::Nobody).await.status(), 401);

    // The organisation log lists them; the transcript names them.
    let log: Value = app
        .http
        .get(app.url(&format!("/api/conversations/{id}/log")))
        .header("cookie", &sam)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let logged: Vec<Vec<String>> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "message")
        .map(attachment_ids)
        .collect();
    assert_eq!(logged[0], ids);
    customer.send(json!({"type": "end"})).await;
    customer.expect_event("ended").await;
    let transcript = transcript(&app, &id, &token).await;
    assert!(
        transcript.contains("Carla: [Attachment: notes.txt (9 bytes)]"),
        "{transcript}"
    );
    assert!(
        transcript.contains("[Attachment: résumé.pdf ("),
        "{transcript}"
    );
}

async fn limits_are_enforced_while_streaming(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Customers may send files while they wait; no agent is needed.
    let (id, token) = app.start_chat("Carla").await;
    let auth = Auth::Bearer(&token);
    let small = |i: usize| (format!("f{i}.txt"), format!("file {i}\n").into_bytes());
    let six: Vec<(String, Vec<u8>)> = (0..6).map(small).collect();
    let six: Vec<File<'_>> = six
        .iter()
        .map(|(n, b)| (n.as_str(), "text/plain", b.clone()))
        .collect();
    assert_refused(&app, &id, auth, six, 413, "too_many_files").await;

    let over = vec![b'a'; 20 * MIB + 1];
    assert_refused(
        &app,
        &id,
        auth,
        vec![("big.txt", "text/plain", over)],
        413,
        "file_too_large",
    )
    .await;

    // A good file and a bad one: neither is kept.
    let mixed = vec![
        ("ok.txt", "text/plain", text(b"fine")),
        ("big.txt", "text/plain", vec![b'a'; 20 * MIB + 1]),
    ];
    assert_refused(&app, &id, auth, mixed, 413, "file_too_large").await;

    let exact = vec![b'a'; 20 * MIB];
    let (status, body) = upload(&app, &id, auth, vec![("exact.txt", "text/plain", exact)]).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["attachments"][0]["size"], 20 * MIB);
    let five: Vec<(String, Vec<u8>)> = (0..5).map(small).collect();
    let five: Vec<File<'_>> = five
        .iter()
        .map(|(n, b)| (n.as_str(), "text/plain", b.clone()))
        .collect();
    assert_eq!(uploaded(&app, &id, auth, five).await.len(), 5);
    assert_eq!(rows(&app, &id).await, 6);
    // One blob per recorded file, and no staging leftovers.
    assert_eq!(files_under(&app.attachments_dir).len(), 6);
}

async fn refused_types_leave_nothing_behind(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, token) = app.start_chat("Carla").await;
    let auth = Auth::Bearer(&token);
    let pe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00".to_vec();
    let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("cat.png", "image/png", ELF.to_vec()),
        ("invoice.pdf", "application/pdf", pe),
        ("notes.txt", "text/plain", zip),
        (
            "logo.svg",
            "image/svg+xml",
            text(b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>"),
        ),
        (
            "page.txt",
            "text/plain",
            text(b"<!DOCTYPE html><script>alert(1)</script>"),
        ),
        ("latin1.txt", "text/plain", text(b"caf\xe9")),
    ];
    for (name, content_type, bytes) in cases {
        assert_refused(
            &app,
            &id,
            auth,
            vec![(name, content_type, bytes)],
            415,
            "unsupported_type",
        )
        .await;
    }
    assert_refused(
        &app,
        &id,
        auth,
        vec![("empty.txt", "text/plain", Vec::new())],
        422,
        "empty_file",
    )
    .await;
    assert!(files_under(&app.attachments_dir).is_empty());
    assert_eq!(rows(&app, &id).await, 0);

    // Fields must be named `file`.
    let form = Form::new().text("comment", "hello");
    let response = app
        .http
        .post(app.url(&format!("/api/conversations/{id}/attachments")))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

async fn private_attachments_are_agents_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut alice = app.ready_agent("alice").await;
    let cookie = app.login("alice").await;
    let (id, token, mut customer) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;
    customer.until_pong().await;

    let secret = uploaded(
        &app,
        &id,
        Auth::Cookie(&cookie),
        vec![("internal.txt", "text/plain", text(b"SECRET notes"))],
    )
    .await;
    alice.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "p1", "text": "", "private": true, "attachments": secret})).await;
    alice.expect("ack").await;
    let own = alice.expect_event("message").await;
    assert_eq!(
        (own["audience"].as_str(), attachment_ids(&own)),
        (Some("agents_only"), secret.clone())
    );
    alice.say(Some(&id), "p2", "public answer").await;

    // Live: the customer gets the public message only.
    let live = customer.until_pong().await;
    assert!(live.iter().any(|f| f["text"] == "public answer"));
    assert!(
        live.iter().all(|f| !f.to_string().contains(&secret[0])),
        "live leak: {live:?}"
    );
    // Replay: no reference either.
    let history = customer_history(&app, &id, &token).await;
    assert!(
        history.iter().all(|f| !f.to_string().contains(&secret[0])),
        "replay leak: {history:?}"
    );
    // Download: not found for the customer, fine for the agent.
    assert_eq!(
        download(&app, &secret[0], Auth::Bearer(&token))
            .await
            .status(),
        404
    );
    let response = download(&app, &secret[0], Auth::Cookie(&cookie)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"SECRET notes");
    // Agents get the reference on replay.
    alice.close().await;
    let mut alice = app.agent("alice").await;
    let replay = alice.until_pong().await;
    assert!(replay.iter().any(|f| attachment_ids(f) == secret));
    // Nor does the customer's transcript name it.
    alice
        .send(json!({"type": "end", "conversation_id": id}))
        .await;
    alice.expect_event("ended").await;
    let transcript = transcript(&app, &id, &token).await;
    assert!(transcript.contains("public answer"), "{transcript}");
    assert!(!transcript.contains("internal.txt"), "{transcript}");
}

async fn access_is_per_conversation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    app.add_agent("bob", 3).await;
    let mut alice = app.ready_agent("alice").await;
    let (a, a_token, mut carla) = app.new_customer("Carla").await;
    accept(&mut alice, &a).await;
    let (b, b_token, _dave) = app.new_customer("Dave").await;
    let file = vec![("a.txt", "text/plain", text(b"for Carla's chat"))];
    let sent = uploaded(&app, &a, Auth::Bearer(&a_token), file.clone()).await;
    carla
        .send(json!({"type": "send", "client_msg_id": "c1", "attachments": sent}))
        .await;
    carla.expect("ack").await;

    // Another customer: not found, for downloads and uploads alike.
    assert_eq!(
        download(&app, &sent[0], Auth::Bearer(&b_token))
            .await
            .status(),
        404
    );
    assert_eq!(
        upload(&app, &a, Auth::Bearer(&b_token), file.clone())
            .await
            .0,
        404
    );
    assert_eq!(
        upload(&app, &b, Auth::Bearer(&a_token), file.clone())
            .await
            .0,
        404
    );
    assert_eq!(
        upload(&app, &a, Auth::Bearer("not-a-token"), file.clone())
            .await
            .0,
        404
    );
    // An agent who is not in the chat: not found as well.
    let bob = app.login("bob").await;
    assert_eq!(
        download(&app, &sent[0], Auth::Cookie(&bob)).await.status(),
        404
    );
    assert_eq!(
        upload(&app, &a, Auth::Cookie(&bob), file.clone()).await.0,
        404
    );
    assert_eq!(upload(&app, &a, Auth::Nobody, file.clone()).await.0, 401);
    // Unknown and malformed ids, and an upload nobody sent yet.
    let unsent = uploaded(&app, &a, Auth::Bearer(&a_token), file.clone()).await;
    let alice_cookie = app.login("alice").await;
    for attachment in [
        uuid::Uuid::new_v4().to_string(),
        "..%2F..%2Fetc%2Fpasswd".into(),
        unsent[0].clone(),
    ] {
        assert_eq!(
            download(&app, &attachment, Auth::Cookie(&alice_cookie))
                .await
                .status(),
            404
        );
        assert_eq!(
            download(&app, &attachment, Auth::Bearer(&a_token))
                .await
                .status(),
            404
        );
    }
    // After the chat ends, its agent can still download; nobody can upload.
    alice
        .send(json!({"type": "end", "conversation_id": a}))
        .await;
    carla.expect_event("ended").await;
    assert_eq!(
        download(&app, &sent[0], Auth::Cookie(&alice_cookie))
            .await
            .status(),
        200
    );
    let (status, body) = upload(&app, &a, Auth::Bearer(&a_token), file).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("conversation_ended"))
    );
}

async fn only_your_own_unsent_uploads_can_be_sent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut alice = app.ready_agent("alice").await;
    let (a, a_token, mut carla) = app.new_customer("Carla").await;
    accept(&mut alice, &a).await;
    let (b, b_token, _dave) = app.new_customer("Dave").await;
    let file = || vec![("x.txt", "text/plain", text(b"x"))];
    let carlas = uploaded(&app, &a, Auth::Bearer(&a_token), file()).await;
    let daves = uploaded(&app, &b, Auth::Bearer(&b_token), file()).await;

    // The agent cannot send the customer's upload.
    alice.send(json!({"type": "send", "conversation_id": a, "client_msg_id": "a1", "text": "mine now", "attachments": carlas})).await;
    let error = alice.expect_error().await;
    assert_eq!(
        (error["code"].as_str(), error["client_msg_id"].as_str()),
        (Some("invalid_attachment"), Some("a1"))
    );
    // Nor can a customer send another conversation's upload.
    let refused = |msg: &str, attachments: Value| json!({"type": "send", "client_msg_id": msg, "text": "x", "attachments": attachments});
    let six: Vec<String> = (0..6).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    for (msg, attachments) in [
        ("c1", json!(daves)),
        ("c2", json!([uuid::Uuid::new_v4().to_string()])),
        ("c3", json!(["nope"])),
        ("c4", json!(six)),
        ("c5", json!([carlas[0], carlas[0]])),
    ] {
        carla.send(refused(msg, attachments)).await;
        assert_eq!(
            carla.expect_error().await["code"],
            "invalid_attachment",
            "{msg}"
        );
    }
    // Sent once, it cannot be sent again.
    carla
        .send(json!({"type": "send", "client_msg_id": "c6", "attachments": carlas}))
        .await;
    carla.expect("ack").await;
    carla.send(refused("c7", json!(carlas))).await;
    assert_eq!(carla.expect_error().await["code"], "invalid_attachment");
    // Without attachments, text is still required.
    carla
        .send(json!({"type": "send", "client_msg_id": "c8", "text": " "}))
        .await;
    assert_eq!(carla.expect_error().await["code"], "text_empty");
    // Only the one good message is in the log, and only it binds the file.
    let log = app
        .store
        .events_after(&ConversationId(a.clone()), 0, 100)
        .await
        .unwrap();
    let messages: Vec<_> = log.iter().filter_map(|e| e.client_msg_id.clone()).collect();
    assert_eq!(messages, ["c6"]);
    let stored = app
        .store
        .conversation_attachments(&ConversationId(b.clone()))
        .await
        .unwrap();
    assert_eq!(stored[0].event_seq, None, "Dave's upload stays unsent");
}

async fn customer_uploads_follow_the_switch(backend: Backend) {
    // Chats without a site follow `customers_may_upload`; here it is off.
    let url = crate::helpers::fresh_database(backend).await;
    let mut config = settings(&url);
    config.attachments.customers_may_upload = false;
    let app = TestApp::spawn_with(config).await;
    app.add_agent("alice", 3).await;
    let mut alice = app.ready_agent("alice").await;
    let cookie = app.login("alice").await;
    let (id, token, _carla) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;
    let file = || vec![("x.txt", "text/plain", text(b"x"))];
    assert_refused(&app, &id, Auth::Bearer(&token), file(), 403, "forbidden").await;
    assert_eq!(
        uploaded(&app, &id, Auth::Cookie(&cookie), file())
            .await
            .len(),
        1,
        "agents always may"
    );

    // A site's chats follow the site's own switch, either way.
    app.add_supervisor("sam").await;
    let sam = app.login("sam").await;
    for (key, allow, status) in [("open", true, 201), ("closed", false, 403)] {
        let site = app
            .http
            .post(app.url("/api/sites"))
            .header("cookie", &sam)
            .json(
                &json!({"name": key, "key": key, "default_queue_id": app.queue,
                          "allow_customer_attachments": allow}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(site.status(), 201);
        let chat: Value = app
            .http
            .post(app.url("/api/chats"))
            .json(&json!({"site": key, "name": "Sia"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (id, token) = (
            chat["conversation_id"].as_str().unwrap(),
            chat["token"].as_str().unwrap(),
        );
        let (got, body) = upload(&app, id, Auth::Bearer(token), file()).await;
        assert_eq!(got, status, "site {key}: {body}");
    }
}
