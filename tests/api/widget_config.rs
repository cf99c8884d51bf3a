//! `GET /api/widget/config`: the public display settings of the widget
//! frame, for a site and for a widget without one. Never the origins or the
//! secret.

use crate::both_stores;
use crate::helpers::{fresh_database, settings, Backend, TestApp};
use serde_json::{json, Value};
use switchboard::config::{MailSettings, SmtpTls};

both_stores!(
    a_sites_settings_without_origins_or_secret,
    a_change_to_the_site_is_seen_at_once,
    without_a_site_the_server_defaults_apply,
    unknown_and_malformed_sites_are_refused,
);

async fn supervisor_cookie(app: &TestApp) -> String {
    app.add_supervisor("sam").await;
    app.login("sam").await
}

async fn create_site(app: &TestApp, cookie: &str, body: Value) -> Value {
    let response = app
        .http
        .post(app.url("/api/sites"))
        .header("cookie", cookie)
        .json(&body)
        .send()
        .await
        .expect("create site");
    assert_eq!(response.status(), 201);
    response.json().await.expect("site json")
}

async fn config(app: &TestApp, query: &str) -> (u16, Value) {
    let response = app
        .http
        .get(app.url(&format!("/api/widget/config{query}")))
        .send()
        .await
        .expect("config request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Mail switched on; nothing is sent in these tests, so no server listens.
fn mail_on() -> MailSettings {
    MailSettings {
        enabled: true,
        smtp_host: "127.0.0.1".into(),
        smtp_port: 9,
        tls: SmtpTls::None,
        from: "Switchboard <no-reply@switchboard.test>".into(),
        username: None,
        password: None,
        timeout_secs: 1,
    }
}

async fn a_sites_settings_without_origins_or_secret(backend: Backend) {
    let mut settings = settings(&fresh_database(backend).await);
    settings.mail = mail_on();
    let app = TestApp::spawn_with(settings).await;
    let cookie = supervisor_cookie(&app).await;
    let site = create_site(
        &app,
        &cookie,
        json!({"name": "Shop", "key": "shop", "allowed_origins": ["https://shop.example"],
               "default_queue_id": app.queue, "require_verified": true,
               "allow_customer_attachments": true, "transcript_email": true}),
    )
    .await;
    let secret = site["identity_secret"].as_str().expect("secret").to_owned();

    let (status, body) = config(&app, "?site=shop").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"site": "shop", "name": "Shop", "require_verified": true,
               "allow_attachments": true, "max_files": 5, "max_file_bytes": 20971520,
               "transcript_email": true, "automatic_transcript_email": true})
    );
    let raw = body.to_string();
    assert!(!raw.contains("shop.example"), "origins leaked: {raw}");
    assert!(!raw.contains(&secret), "secret leaked: {raw}");
}

async fn a_change_to_the_site_is_seen_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = supervisor_cookie(&app).await;
    let site = create_site(
        &app,
        &cookie,
        json!({"name": "Shop", "key": "shop", "default_queue_id": app.queue}),
    )
    .await;
    let (_, before) = config(&app, "?site=shop").await;
    assert_eq!(before["allow_attachments"], false);
    assert_eq!(before["require_verified"], false);
    // Mail is off on this server: no e-mail in any form.
    assert_eq!(before["transcript_email"], false);
    assert_eq!(before["automatic_transcript_email"], false);

    let response = app
        .http
        .put(app.url(&format!("/api/sites/{}", site["id"])))
        .header("cookie", &cookie)
        .json(
            &json!({"allow_customer_attachments": true, "name": "Shop DK",
                      "transcript_email": true}),
        )
        .send()
        .await
        .expect("update site");
    assert_eq!(response.status(), 200);
    let (_, after) = config(&app, "?site=shop").await;
    assert_eq!(after["allow_attachments"], true);
    assert_eq!(after["name"], "Shop DK");
    // The site asks for automatic mail, but the server cannot send any.
    assert_eq!(after["automatic_transcript_email"], false);
}

async fn without_a_site_the_server_defaults_apply(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for query in ["", "?site="] {
        let (status, body) = config(&app, query).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(
            body,
            json!({"site": null, "name": null, "require_verified": false,
                   "allow_attachments": true, "max_files": 5, "max_file_bytes": 20971520,
                   "transcript_email": false, "automatic_transcript_email": false}),
            "{query}"
        );
    }

    let mut settings = settings(&fresh_database(Backend::Sqlite).await);
    settings.attachments.customers_may_upload = false;
    settings.mail = mail_on();
    let strict = TestApp::spawn_with(settings).await;
    let (_, body) = config(&strict, "").await;
    assert_eq!(body["allow_attachments"], false);
    assert_eq!(body["transcript_email"], true);
}

async fn unknown_and_malformed_sites_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = config(&app, "?site=nope").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, body) = config(&app, "?site=Not%20A%20Key").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
    let (status, body) = config(&app, "?site=shop&queue=Support").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
}
