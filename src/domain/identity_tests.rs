use super::*;
use serde_json::json;

const SECRET: &[u8] = b"site-secret-with-enough-entropy-0123456789";
const SITE: &str = "shop";
const NOW: i64 = 1_700_000_000;

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn sign_with(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{input}.{signature}")
}

fn sign(claims: &Value) -> String {
    sign_with(&json!({"alg": "HS256", "typ": "JWT"}), claims, SECRET)
}

fn good_claims() -> Value {
    json!({
        "sub": "cust-42",
        "name": "Carla Jones",
        "email": "carla@example.com",
        "exp": NOW + 600,
        "aud": SITE,
        "vars": {"plan": "gold", "account.no": "A-17"}
    })
}

fn check(token: &str) -> Result<VerifiedIdentity, IdentityError> {
    verify(token, SECRET, SITE, NOW)
}

#[test]
fn a_valid_token_yields_its_claims() {
    let identity = check(&sign(&good_claims())).unwrap();
    assert_eq!(identity.customer_id.as_deref(), Some("cust-42"));
    assert_eq!(identity.name.as_deref(), Some("Carla Jones"));
    assert_eq!(identity.email.as_deref(), Some("carla@example.com"));
    assert_eq!(
        identity.variables,
        vec![
            ("account.no".to_owned(), "A-17".to_owned()),
            ("plan".to_owned(), "gold".to_owned())
        ]
    );
}

#[test]
fn optional_claims_may_be_absent() {
    let identity = check(&sign(&json!({"exp": NOW + 60}))).unwrap();
    assert_eq!(identity, VerifiedIdentity::default());
}

#[test]
fn a_tampered_payload_is_refused() {
    let token = sign(&good_claims());
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut forged = good_claims();
    forged["name"] = json!("Mallory");
    parts[1] = b64(&forged);
    assert_eq!(check(&parts.join(".")), Err(IdentityError::Signature));
}

#[test]
fn a_tampered_signature_is_refused() {
    let token = sign(&good_claims());
    let (input, signature) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[0] ^= 1;
    let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(bytes));
    assert_eq!(check(&forged), Err(IdentityError::Signature));
    // A truncated signature is not a prefix match.
    let short = format!("{input}.{}", &signature[..10]);
    assert!(check(&short).is_err());
}

#[test]
fn a_wrong_secret_is_refused() {
    let token = sign_with(
        &json!({"alg": "HS256"}),
        &good_claims(),
        b"another-site-secret",
    );
    assert_eq!(check(&token), Err(IdentityError::Signature));
    assert_eq!(
        verify(&sign(&good_claims()), b"", SITE, NOW),
        Err(IdentityError::Signature)
    );
}

#[test]
fn alg_none_and_other_algorithms_are_refused() {
    let claims = good_claims();
    // alg none with an empty signature, the classic forgery.
    let none = format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&claims));
    assert_eq!(check(&none), Err(IdentityError::Algorithm));
    // Even correctly signed with our secret, the header must say HS256 exactly.
    for alg in ["none", "HS512", "RS256", "hs256", "HS256 "] {
        let token = sign_with(&json!({"alg": alg}), &claims, SECRET);
        assert_eq!(check(&token), Err(IdentityError::Algorithm), "{alg}");
    }
    let missing = sign_with(&json!({"typ": "JWT"}), &claims, SECRET);
    assert_eq!(check(&missing), Err(IdentityError::Algorithm));
    let crit = sign_with(&json!({"alg": "HS256", "crit": ["b64"]}), &claims, SECRET);
    assert_eq!(check(&crit), Err(IdentityError::Algorithm));
}

#[test]
fn exp_is_required_and_checked_with_a_small_leeway() {
    let mut claims = good_claims();
    claims.as_object_mut().unwrap().remove("exp");
    assert_eq!(check(&sign(&claims)), Err(IdentityError::MissingExpiry));
    claims["exp"] = json!("tomorrow");
    assert!(matches!(
        check(&sign(&claims)),
        Err(IdentityError::Claims(_))
    ));
    claims["exp"] = json!(NOW - 3600);
    assert_eq!(check(&sign(&claims)), Err(IdentityError::Expired));
    claims["exp"] = json!(NOW - LEEWAY_SECS);
    assert_eq!(check(&sign(&claims)), Err(IdentityError::Expired));
    // Within the leeway a just-expired token still counts (clock skew).
    claims["exp"] = json!(NOW - LEEWAY_SECS + 1);
    assert!(check(&sign(&claims)).is_ok());
    claims["exp"] = json!((NOW + 10) as f64 + 0.5);
    assert!(check(&sign(&claims)).is_ok());
}

#[test]
fn nbf_in_the_future_is_refused() {
    let mut claims = good_claims();
    claims["nbf"] = json!(NOW + 3600);
    assert_eq!(check(&sign(&claims)), Err(IdentityError::NotYetValid));
    claims["nbf"] = json!(NOW + 5);
    assert!(check(&sign(&claims)).is_ok());
}

#[test]
fn aud_when_present_must_name_the_site() {
    let mut claims = good_claims();
    claims["aud"] = json!("other-site");
    assert_eq!(check(&sign(&claims)), Err(IdentityError::Audience));
    claims["aud"] = json!(["other-site", SITE]);
    assert!(check(&sign(&claims)).is_ok());
    claims["aud"] = json!(7);
    assert_eq!(check(&sign(&claims)), Err(IdentityError::Audience));
    claims.as_object_mut().unwrap().remove("aud");
    assert!(check(&sign(&claims)).is_ok());
}

#[test]
fn oversize_tokens_are_refused_before_decoding() {
    let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert_eq!(check(&huge), Err(IdentityError::TooLarge));
    let mut claims = good_claims();
    claims["padding"] = json!("x".repeat(MAX_TOKEN_BYTES));
    assert_eq!(check(&sign(&claims)), Err(IdentityError::TooLarge));
}

#[test]
fn variable_limits_are_enforced() {
    let mut claims = good_claims();
    let many: Map<String, Value> = (0..=MAX_VARIABLES)
        .map(|i| (format!("v{i}"), json!("x")))
        .collect();
    claims["vars"] = Value::Object(many);
    assert!(matches!(
        check(&sign(&claims)),
        Err(IdentityError::Claims(_))
    ));

    for bad_name in ["", "has space", "ünïcode", &"n".repeat(41), "email", "name"] {
        claims["vars"] = json!({ bad_name: "x" });
        assert!(
            matches!(check(&sign(&claims)), Err(IdentityError::Claims(_))),
            "{bad_name:?}"
        );
    }
    claims["vars"] = json!({"long": "x".repeat(MAX_VARIABLE_VALUE_CHARS + 1)});
    assert!(matches!(
        check(&sign(&claims)),
        Err(IdentityError::Claims(_))
    ));
    claims["vars"] = json!({"number": 7});
    assert!(matches!(
        check(&sign(&claims)),
        Err(IdentityError::Claims(_))
    ));
    claims["vars"] = json!(["not", "an", "object"]);
    assert!(matches!(
        check(&sign(&claims)),
        Err(IdentityError::Claims(_))
    ));
    claims["vars"] = json!({"ok_name-1.2": "x".repeat(MAX_VARIABLE_VALUE_CHARS)});
    assert!(check(&sign(&claims)).is_ok());
}

#[test]
fn standard_claims_are_validated() {
    let mut claims = good_claims();
    claims["email"] = json!("not-an-address");
    assert!(matches!(
        check(&sign(&claims)),
        Err(IdentityError::Claims(_))
    ));
    claims["email"] = json!("carla@example.com");
    claims["name"] = json!("x".repeat(MAX_NAME_CHARS + 1));
    assert!(matches!(
        check(&sign(&claims)),
        Err(IdentityError::Claims(_))
    ));
    claims["name"] = json!("Bell\u{7}");
    assert!(matches!(
        check(&sign(&claims)),
        Err(IdentityError::Claims(_))
    ));
    claims["name"] = json!("Carla");
    claims["sub"] = json!(42);
    assert!(matches!(
        check(&sign(&claims)),
        Err(IdentityError::Claims(_))
    ));
}

#[test]
fn garbage_is_malformed() {
    for token in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!.??.**",
        &format!("{}.{}.sig", b64(&json!([1])), b64(&json!({}))),
    ] {
        assert!(check(token).is_err(), "{token}");
    }
    assert_eq!(check("a.b"), Err(IdentityError::Malformed));
    // A payload that is not JSON, correctly signed, is still refused.
    let header = b64(&json!({"alg": "HS256"}));
    let payload = URL_SAFE_NO_PAD.encode("not json");
    let input = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(input.as_bytes());
    let token = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(check(&token), Err(IdentityError::Malformed));
}
