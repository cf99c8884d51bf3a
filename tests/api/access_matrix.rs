//! The access-control matrix over every HTTP route: anonymous, the
//! customer of another conversation, an agent in the chat, an agent not in
//! it, and a supervisor. The route list is read from `src/http/*.rs`, so a
//! new route without a row here fails the test.

use crate::both_stores;
use crate::helpers::{accept, Backend, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

both_stores!(every_route_answers_each_role_as_the_matrix_says);

/// What a role gets from a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Past access control: any answer but 401/403/404 and no 5xx (the
    /// empty bodies of this test may well be 400).
    Pass,
    /// 401
    Unauth,
    /// 403
    Forbidden,
    /// 404: other people's data does not exist for you.
    NotFound,
}
use Expect::{Forbidden as F, NotFound as N, Pass as P, Unauth as U};

/// (method, path, [anonymous, other customer, agent in chat, agent not in chat, supervisor])
/// `{id}` is filled per route family by `fill`.
const MATRIX: &[(&str, &str, [Expect; 5])] = &[
    ("GET", "/livez", [P, P, P, P, P]),
    ("GET", "/readyz", [P, P, P, P, P]),
    ("POST", "/api/login", [P, P, P, P, P]),
    ("GET", "/api/me", [U, U, P, P, P]),
    ("POST", "/api/me/password", [U, U, P, P, P]),
    ("GET", "/api/queues", [U, U, P, P, P]),
    ("POST", "/api/queues", [U, U, F, F, P]),
    ("GET", "/api/profiles", [U, U, F, F, P]),
    ("POST", "/api/profiles", [U, U, F, F, P]),
    ("GET", "/api/users", [U, U, F, F, P]),
    ("POST", "/api/users", [U, U, F, F, P]),
    ("POST", "/api/users/{id}/profiles", [U, U, F, F, P]),
    ("POST", "/api/chats", [P, P, P, P, P]),
    ("GET", "/api/predefined", [U, U, F, F, P]),
    ("POST", "/api/predefined", [U, U, F, F, P]),
    ("POST", "/api/predefined/reorder", [U, U, F, F, P]),
    ("PUT", "/api/predefined/{id}", [U, U, F, F, P]),
    ("GET", "/api/me/predefined", [U, U, P, P, P]),
    ("POST", "/api/me/predefined", [U, U, P, P, P]),
    ("POST", "/api/me/predefined/reorder", [U, U, P, P, P]),
    // Another user's personal message: 403, as for any predefined message
    // the caller may not edit.
    ("PUT", "/api/me/predefined/{id}", [U, U, P, F, F]),
    ("GET", "/api/conversations/{id}/predefined", [U, U, P, N, N]),
    ("GET", "/api/conversations", [U, U, F, F, P]),
    ("GET", "/api/conversations/{id}/log", [U, U, F, F, P]),
    ("GET", "/api/sites", [U, U, F, F, P]),
    ("POST", "/api/sites", [U, U, F, F, P]),
    ("PUT", "/api/sites/{id}", [U, U, F, F, P]),
    ("POST", "/api/sites/{id}/rotate-secret", [U, U, F, F, P]),
    ("GET", "/api/chats/{id}/transcript", [U, N, U, U, U]),
    ("POST", "/api/chats/{id}/transcript/email", [U, N, U, U, U]),
    (
        "POST",
        "/api/conversations/{id}/attachments",
        [U, N, P, N, N],
    ),
    ("GET", "/api/attachments/{id}", [U, N, P, N, P]),
    ("GET", "/ws/agent", [U, U, P, P, P]),
    ("GET", "/ws/customer", [P, P, P, P, P]),
    // Deleting runs last, so the rows above still find their targets.
    // The owner deletes first; afterwards it is gone for everyone.
    ("DELETE", "/api/me/predefined/{id}", [U, U, P, N, N]),
    ("DELETE", "/api/predefined/{id}", [U, U, F, F, P]),
    ("POST", "/api/logout", [P, P, P, P, P]),
];

/// Every (method, path) declared with `.route(` in `src/http/*.rs`.
fn declared_routes() -> BTreeSet<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("src/http") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("read source");
        for chunk in source.split(".route(").skip(1) {
            // The call ends where the next builder call or item starts.
            let end = ["\n        .", "\n}", "\n    .", ";"]
                .iter()
                .filter_map(|stop| chunk.find(stop))
                .min()
                .unwrap_or(chunk.len());
            let call = &chunk[..end];
            let Some(start) = call.find('"') else {
                continue;
            };
            let Some(len) = call[start + 1..].find('"') else {
                continue;
            };
            let route = call[start + 1..start + 1 + len].to_owned();
            for method in ["get", "post", "put", "delete", "patch"] {
                let token = format!("{method}(");
                let mut from = 0;
                while let Some(at) = call[from..].find(&token) {
                    let at = from + at;
                    let before = call[..at].chars().last().unwrap_or(' ');
                    if !(before.is_alphanumeric() || before == '_') {
                        routes.insert((method.to_uppercase(), route.clone()));
                    }
                    from = at + token.len();
                }
            }
        }
    }
    routes
}

struct Fixture {
    queue: switchboard::domain::ids::QueueId,
    chat: String,
    other_token: String,
    alice: String,
    bob: String,
    sam: String,
    user_id: i64,
    site_id: i64,
    shared_predefined: i64,
    personal_predefined: i64,
    attachment: String,
}

impl Fixture {
    /// A valid body where validation would otherwise answer before the
    /// access check; `{}` elsewhere.
    fn body(&self, method: &str, path: &str) -> Value {
        match (method, path) {
            ("POST", "/api/chats") => json!({"queue_id": self.queue}),
            ("PUT", "/api/me/predefined/{id}") => json!({"heading": "New", "body": "New"}),
            _ => json!({}),
        }
    }

    fn fill(&self, path: &str) -> String {
        let id = if path.starts_with("/api/users/") {
            self.user_id.to_string()
        } else if path.starts_with("/api/sites/") {
            self.site_id.to_string()
        } else if path.starts_with("/api/predefined/") {
            self.shared_predefined.to_string()
        } else if path.starts_with("/api/me/predefined/") {
            self.personal_predefined.to_string()
        } else if path.starts_with("/api/attachments/") {
            self.attachment.clone()
        } else {
            self.chat.clone()
        };
        path.replace("{id}", &id)
    }
}

async fn json_post(app: &TestApp, path: &str, cookie: &str, body: Value) -> Value {
    let response = app
        .http
        .post(app.url(path))
        .header("cookie", cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

async fn fixture(app: &TestApp) -> Fixture {
    app.add_agent("alice", 3).await;
    let bob = app.add_agent("bob", 3).await;
    app.add_supervisor("sam").await;
    let mut agent = app.ready_agent("alice").await;
    let (chat, token) = app.start_chat("Carla").await;
    accept(&mut agent, &chat).await;
    let (_other, other_token) = app.start_chat("Dora").await;
    let (alice, bob_cookie, sam) = (
        app.login("alice").await,
        app.login("bob").await,
        app.login("sam").await,
    );
    let site = json_post(
        app,
        "/api/sites",
        &sam,
        json!({"name": "Shop", "key": "shop", "allowed_origins": [],
               "default_queue_id": app.queue, "require_verified": false}),
    )
    .await;
    let shared = json_post(
        app,
        "/api/predefined",
        &sam,
        json!({"heading": "Hi", "body": "Hello", "scope": "everyone", "queue_id": null, "agent_id": null}),
    )
    .await;
    let personal = json_post(
        app,
        "/api/me/predefined",
        &alice,
        json!({"heading": "Mine", "body": "Mine"}),
    )
    .await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"hello".to_vec())
            .file_name("a.txt")
            .mime_str("text/plain")
            .unwrap(),
    );
    let uploaded: Value = app
        .http
        .post(app.url(&format!("/api/conversations/{chat}/attachments")))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let attachment = uploaded["attachments"][0]["id"]
        .as_str()
        .expect("attachment id")
        .to_owned();
    // Sent in a message, so the chat's agents may see it.
    let mut customer = app.customer(&chat, &token, 0).await;
    customer
        .send(json!({"type": "send", "client_msg_id": "file", "text": "", "attachments": [attachment]}))
        .await;
    customer.expect("ack").await;
    Fixture {
        queue: app.queue,
        chat,
        other_token,
        alice,
        bob: bob_cookie,
        sam,
        user_id: bob.0,
        site_id: site["id"].as_i64().expect("site id"),
        shared_predefined: shared["id"].as_i64().expect("predefined id"),
        personal_predefined: personal["id"].as_i64().expect("personal id"),
        attachment,
    }
}

async fn every_route_answers_each_role_as_the_matrix_says(backend: Backend) {
    let declared = declared_routes();
    let covered: BTreeSet<(String, String)> = MATRIX
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let missing: Vec<_> = declared.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "routes without a matrix row: {missing:?}"
    );
    let stale: Vec<_> = covered.difference(&declared).collect();
    assert!(stale.is_empty(), "matrix rows for no route: {stale:?}");

    let app = TestApp::spawn(backend).await;
    let fx = fixture(&app).await;
    let mut wrong = Vec::new();
    for (method, path, expected) in MATRIX {
        let url = app.url(&fx.fill(path));
        for (role, expect) in [
            "anonymous",
            "other customer",
            "agent in chat",
            "agent not in chat",
            "supervisor",
        ]
        .iter()
        .zip(expected)
        {
            let mut request = app
                .http
                .request(Method::from_bytes(method.as_bytes()).unwrap(), &url);
            if *method != "GET" {
                request = request.json(&fx.body(method, path));
            }
            request = match *role {
                "other customer" => request.bearer_auth(&fx.other_token),
                "agent in chat" => request.header("cookie", &fx.alice),
                "agent not in chat" => request.header("cookie", &fx.bob),
                "supervisor" => request.header("cookie", &fx.sam),
                _ => request,
            };
            let status = request.send().await.unwrap().status().as_u16();
            let ok = match expect {
                Expect::Pass => !matches!(status, 401 | 403 | 404) && status < 500,
                Expect::Unauth => status == 401,
                Expect::Forbidden => status == 403,
                Expect::NotFound => status == 404,
            };
            if !ok {
                wrong.push(format!(
                    "{method} {path} as {role}: {status}, expected {expect:?}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
