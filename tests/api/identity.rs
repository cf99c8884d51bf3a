//! Sites and verified customer data: identity tokens minted here as a
//! site's backend would, the verified flag agents see, refusals, the origin
//! check and the supervisor-only site routes.

use crate::both_stores;
use crate::helpers::{Backend, TestApp};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use switchboard::domain::ids::ConversationId;

both_stores!(
    a_valid_token_is_shown_verified_to_the_agent,
    typed_values_are_unverified,
    bad_tokens_never_yield_verified_values,
    require_verified_refuses_without_a_valid_token_and_stores_nothing,
    origins_are_checked_against_the_site,
    site_routes_are_for_supervisors_and_rotation_replaces_the_secret,
    verified_data_survives_a_restart,
);

const SHOP: &str = "https://shop.example";

// ---- minting, as a site's backend does ----

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn mint_with(header: Value, claims: Value, secret: &str) -> String {
    let input = format!("{}.{}", b64(&header), b64(&claims));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{input}.{signature}")
}

fn mint(claims: Value, secret: &str) -> String {
    mint_with(json!({"alg": "HS256", "typ": "JWT"}), claims, secret)
}

fn now_secs() -> i64 {
    switchboard::clock::wall_ms() / 1000
}

fn carla_claims(site_key: &str) -> Value {
    json!({
        "sub": "cust-42",
        "name": "Carla Verified",
        "email": "carla@shop.example",
        "aud": site_key,
        "exp": now_secs() + 600,
        "vars": {"plan": "gold"}
    })
}

// ---- HTTP helpers ----

/// A site created by a supervisor: its JSON, including `identity_secret`.
async fn create_site(app: &TestApp, body: Value) -> Value {
    app.add_supervisor("sam").await;
    let cookie = app.login("sam").await;
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

async fn shop_site(app: &TestApp, require_verified: bool) -> (String, String) {
    let site = create_site(
        app,
        json!({"name": "Shop", "key": "shop", "allowed_origins": [SHOP],
               "default_queue_id": app.queue, "require_verified": require_verified}),
    )
    .await;
    (
        site["key"].as_str().expect("key").to_owned(),
        site["identity_secret"].as_str().expect("secret").to_owned(),
    )
}

async fn post_chat(app: &TestApp, body: Value, origin: Option<&str>) -> reqwest::Response {
    let mut request = app.http.post(app.url("/api/chats")).json(&body);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.expect("start chat")
}

/// Starts a chat that must succeed; returns (conversation id, token).
async fn start(app: &TestApp, body: Value) -> (String, String) {
    let response = post_chat(app, body, Some(SHOP)).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    (
        body["conversation_id"].as_str().expect("id").to_owned(),
        body["token"].as_str().expect("token").to_owned(),
    )
}

async fn stored_variables(app: &TestApp, id: &str) -> Vec<(String, String, bool)> {
    app.store
        .customer_variables(&ConversationId(id.to_owned()))
        .await
        .expect("variables")
        .into_iter()
        .map(|v| (v.name, v.value, v.verified))
        .collect()
}

fn var(name: &str, value: &str, verified: bool) -> Value {
    json!({"name": name, "value": value, "verified": verified})
}

// ---- tests ----

async fn a_valid_token_is_shown_verified_to_the_agent(backend: Backend) {
    // Arrange
    let app = TestApp::spawn(backend).await;
    let (site, secret) = shop_site(&app, false).await;
    app.add_agent("alice", 3).await;
    let mut alice = app.ready_agent("alice").await;

    // Act: the customer also typed a name, which the signed one overrides.
    let token = mint(carla_claims(&site), &secret);
    let (id, customer_token) = start(
        &app,
        json!({"site": site, "identity_token": token, "name": "Typed Name"}),
    )
    .await;

    // Assert: the offer carries every variable with its flag.
    let expected = json!([
        var("customer_id", "cust-42", true),
        var("name", "Carla Verified", true),
        var("email", "carla@shop.example", true),
        var("plan", "gold", true),
    ]);
    let offer = alice.expect("chat_offered").await;
    assert_eq!(offer["conversation_id"], id.as_str());
    assert_eq!(offer["customer"]["variables"], expected);
    assert_eq!(offer["customer"]["verified"], true);
    assert_eq!(offer["customer"]["name"], "Carla Verified");
    assert_eq!(offer["customer"]["email"], "carla@shop.example");

    // After the accept, the conversation view shows the same.
    let mut carla = app.customer(&id, &customer_token, 0).await;
    alice
        .send(json!({"type": "accept", "conversation_id": id}))
        .await;
    let accepted = alice.expect("chat_accepted").await;
    assert_eq!(accepted["conversation"]["customer"]["variables"], expected);
    // Messages carry the verified name.
    carla.say(None, "c1", "Hi").await;
    let message = alice.expect_event("message").await;
    assert_eq!(message["author"]["name"], "Carla Verified");

    // An invitation shows the invited agent the same flags.
    app.add_agent("bob", 3).await;
    let mut bob = app.ready_agent("bob").await;
    alice
        .send(json!({"type": "invite", "conversation_id": id, "queue_id": app.queue}))
        .await;
    let invitation = bob.expect("chat_offered").await;
    assert!(invitation.get("invite").is_some(), "{invitation}");
    assert_eq!(invitation["customer"]["variables"], expected);
}

async fn typed_values_are_unverified(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (site, secret) = shop_site(&app, false).await;
    app.add_agent("alice", 3).await;
    let mut alice = app.ready_agent("alice").await;

    // A chat without a site (the old request shape) still works.
    let (plain, _) = app.start_chat("Dora").await;
    let offer = alice.expect("chat_offered").await;
    assert_eq!(offer["conversation_id"], plain.as_str());
    assert_eq!(
        offer["customer"]["variables"],
        json!([
            var("name", "Dora", false),
            var("email", "dora@example.com", false)
        ])
    );
    assert_eq!(offer["customer"]["verified"], false);
    alice
        .send(json!({"type": "reject", "conversation_id": plain}))
        .await;
    alice.expect("chat_rejected").await;

    // A site chat without a token: typed only, unverified.
    let (typed, _) = start(
        &app,
        json!({"site": site, "name": "Eve", "email": "eve@example.com"}),
    )
    .await;
    assert_eq!(
        stored_variables(&app, &typed).await,
        [
            ("name".into(), "Eve".into(), false),
            ("email".into(), "eve@example.com".into(), false)
        ]
    );

    // A token without an e-mail: the typed e-mail stays, unverified.
    let token = mint(
        json!({"name": "Fay Signed", "exp": now_secs() + 60}),
        &secret,
    );
    let (mixed, _) = start(
        &app,
        json!({"site": site, "identity_token": token, "name": "Fay", "email": "fay@typed.example"}),
    )
    .await;
    assert_eq!(
        stored_variables(&app, &mixed).await,
        [
            ("name".into(), "Fay Signed".into(), true),
            ("email".into(), "fay@typed.example".into(), false)
        ]
    );
}

async fn bad_tokens_never_yield_verified_values(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (site, secret) = shop_site(&app, false).await;
    let good = mint(carla_claims(&site), &secret);

    let tampered = {
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let mut claims = carla_claims(&site);
        claims["name"] = json!("Mallory");
        parts[1] = b64(&claims);
        parts.join(".")
    };
    let expired = {
        let mut claims = carla_claims(&site);
        claims["exp"] = json!(now_secs() - 3600);
        mint(claims, &secret)
    };
    let no_exp = {
        let mut claims = carla_claims(&site);
        claims.as_object_mut().expect("object").remove("exp");
        mint(claims, &secret)
    };
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&carla_claims(&site))
    );
    let hs512_header = mint_with(json!({"alg": "HS512"}), carla_claims(&site), &secret);
    let wrong_secret = mint(carla_claims(&site), "not-the-site-secret");
    let other_site = {
        let mut claims = carla_claims(&site);
        claims["aud"] = json!("another-site");
        mint(claims, &secret)
    };
    let oversize = {
        let mut claims = carla_claims(&site);
        claims["vars"] = json!({"blob": "x".repeat(9000)});
        mint(claims, &secret)
    };

    for (what, token) in [
        ("tampered", tampered),
        ("expired", expired),
        ("missing exp", no_exp),
        ("alg none", alg_none),
        ("HS512 header", hs512_header),
        ("wrong secret", wrong_secret),
        ("other audience", other_site),
        ("oversize", oversize),
        ("garbage", "not.a.jwt".to_owned()),
    ] {
        let (id, _) = start(
            &app,
            json!({"site": site, "identity_token": token, "name": "Typed"}),
        )
        .await;
        assert_eq!(
            stored_variables(&app, &id).await,
            [("name".into(), "Typed".into(), false)],
            "{what}"
        );
    }
}

async fn require_verified_refuses_without_a_valid_token_and_stores_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (site, secret) = shop_site(&app, true).await;
    let expired = {
        let mut claims = carla_claims(&site);
        claims["exp"] = json!(now_secs() - 3600);
        mint(claims, &secret)
    };
    let forged = mint(carla_claims(&site), "guessed-secret");

    for body in [
        json!({"site": site, "name": "Typed"}),
        json!({"site": site, "identity_token": "", "name": "Typed"}),
        json!({"site": site, "identity_token": expired}),
        json!({"site": site, "identity_token": forged}),
    ] {
        let response = post_chat(&app, body.clone(), Some(SHOP)).await;
        assert_eq!(response.status(), 401, "{body}");
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["error"], "unauthorized");
    }
    assert!(
        app.store.queued_conversations().await.unwrap().is_empty(),
        "a refused chat stores nothing"
    );

    let token = mint(carla_claims(&site), &secret);
    let (id, _) = start(&app, json!({"site": site, "identity_token": token})).await;
    assert!(stored_variables(&app, &id).await.iter().all(|v| v.2));
}

async fn origins_are_checked_against_the_site(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (site, _) = shop_site(&app, false).await;
    let body = json!({"site": site, "name": "Gus"});

    let foreign = post_chat(&app, body.clone(), Some("https://evil.example")).await;
    assert_eq!(foreign.status(), 403);
    let error: Value = foreign.json().await.expect("json");
    assert_eq!(error["error"], "forbidden");
    assert!(app.store.queued_conversations().await.unwrap().is_empty());

    // The site's own pages, the widget frame (our origin) and non-browser
    // callers (no Origin) may start chats.
    let own = format!("http://{}", app.addr);
    for origin in [Some(SHOP), Some(own.as_str()), None] {
        let response = post_chat(&app, body.clone(), origin).await;
        assert_eq!(response.status(), 201, "{origin:?}");
    }

    // The widget frame of the site may be embedded only by its origins.
    for (query, framing) in [
        ("?site=shop", format!("frame-ancestors 'self' {SHOP}")),
        ("?site=nope", "frame-ancestors 'none'".to_owned()),
        ("", "frame-ancestors *".to_owned()),
    ] {
        let url = app.url(&format!("/widget/frame.html{query}"));
        let response = app.http.get(url).send().await.expect("frame");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .expect("ascii");
        assert!(csp.ends_with(&framing), "{query}: {csp}");
    }

    // An unknown site is 404; a token without a site is refused.
    let unknown = post_chat(&app, json!({"site": "nope"}), Some(SHOP)).await;
    assert_eq!(unknown.status(), 404);
    let orphan = post_chat(
        &app,
        json!({"queue_id": app.queue, "identity_token": "a.b.c"}),
        None,
    )
    .await;
    assert_eq!(orphan.status(), 400);
}

async fn site_routes_are_for_supervisors_and_rotation_replaces_the_secret(backend: Backend) {
    // Arrange
    let app = TestApp::spawn(backend).await;
    let created = create_site(
        &app,
        json!({"name": "Shop", "allowed_origins": ["HTTPS://Shop.Example/"],
               "default_queue_id": app.queue, "transcript_email": true}),
    )
    .await;
    let id = created["id"].as_i64().expect("id");
    let key = created["key"].as_str().expect("generated key").to_owned();
    let first_secret = created["identity_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert_eq!(URL_SAFE_NO_PAD.decode(&first_secret).unwrap().len(), 32);
    assert_eq!(created["allowed_origins"], json!([SHOP]));
    assert_eq!(created["transcript_email"], true);
    assert_eq!(created["require_verified"], false);
    let sam = app.login("sam").await;
    app.add_agent("alice", 3).await;
    let alice = app.login("alice").await;

    // Agents get 403 and anonymous callers 401 on every site route.
    let routes = [
        ("GET", "/api/sites".to_owned()),
        ("POST", "/api/sites".to_owned()),
        ("PUT", format!("/api/sites/{id}")),
        ("POST", format!("/api/sites/{id}/rotate-secret")),
    ];
    for (method, path) in &routes {
        for (cookie, status) in [(Some(alice.as_str()), 403), (None, 401)] {
            let mut request = app
                .http
                .request(method.parse().unwrap(), app.url(path))
                .json(&json!({}));
            if let Some(cookie) = cookie {
                request = request.header("cookie", cookie);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), status, "{method} {path}");
        }
    }

    // Listing never shows the secret.
    let list: Value = app
        .http
        .get(app.url("/api/sites"))
        .header("cookie", &sam)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["key"], key.as_str());
    assert!(list[0].get("identity_secret").is_none());

    // Bad input and conflicts.
    for (body, status) in [
        (json!({"name": "Shop", "default_queue_id": app.queue}), 409),
        (json!({"name": "Other", "default_queue_id": 999}), 404),
        (
            json!({"name": "Other", "default_queue_id": app.queue, "allowed_origins": ["shop.example"]}),
            400,
        ),
        (
            json!({"name": "Other", "key": "Bad Key", "default_queue_id": app.queue}),
            400,
        ),
    ] {
        let response = app
            .http
            .post(app.url("/api/sites"))
            .header("cookie", &sam)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{body}");
    }

    // Act: require verification, then rotate the secret.
    let updated: Value = app
        .http
        .put(app.url(&format!("/api/sites/{id}")))
        .header("cookie", &sam)
        .json(&json!({"require_verified": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated["require_verified"], true);
    assert_eq!(updated["name"], "Shop");
    assert_eq!(updated["allowed_origins"], json!([SHOP]));
    let missing = app
        .http
        .put(app.url("/api/sites/999"))
        .header("cookie", &sam)
        .json(&json!({"name": "Ghost"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let rotated: Value = app
        .http
        .post(app.url(&format!("/api/sites/{id}/rotate-secret")))
        .header("cookie", &sam)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_secret = rotated["identity_secret"].as_str().expect("new secret");
    assert_ne!(new_secret, first_secret);

    // Assert: tokens signed with the old secret stop verifying.
    let old = mint(carla_claims(&key), &first_secret);
    let response = post_chat(&app, json!({"site": key, "identity_token": old}), None).await;
    assert_eq!(response.status(), 401);
    let new = mint(carla_claims(&key), new_secret);
    let response = post_chat(&app, json!({"site": key, "identity_token": new}), None).await;
    assert_eq!(response.status(), 201);
}

async fn verified_data_survives_a_restart(backend: Backend) {
    // Arrange: a verified chat is waiting when the server restarts.
    let app = TestApp::spawn(backend).await;
    let (site, secret) = shop_site(&app, false).await;
    app.add_agent("alice", 3).await;
    let token = mint(carla_claims(&site), &secret);
    let (id, customer_token) = start(
        &app,
        json!({"site": site, "identity_token": token, "email": "typed@example.com"}),
    )
    .await;

    // Act
    let app = app.restart().await;
    let carla = app.customer(&id, &customer_token, 0).await;
    let mut alice = app.ready_agent("alice").await;

    // Assert: the recovered offer and the accepted chat still carry the flags
    // (a signed e-mail beats the typed one).
    let offer = alice.expect("chat_offered").await;
    assert_eq!(offer["conversation_id"], id.as_str());
    let variables = &offer["customer"]["variables"];
    assert_eq!(variables[1], var("name", "Carla Verified", true));
    assert_eq!(variables[2], var("email", "carla@shop.example", true));
    alice
        .send(json!({"type": "accept", "conversation_id": id}))
        .await;
    let accepted = alice.expect("chat_accepted").await;
    assert_eq!(
        accepted["conversation"]["customer"]["variables"],
        *variables
    );
    assert_eq!(accepted["conversation"]["customer"]["verified"], true);
    carla.close().await;
}
