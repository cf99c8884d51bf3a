//! Verification of the identity token that a site's own backend signs for
//! its customer (the lock icon in the console). The token is a JWT, but only
//! one shape of it is accepted: HS256 with the site's identity secret, an
//! `exp`, an optional `aud` naming the site, and a few bounded claims.
//!
//! Hand-rolled rather than a general JWT library on purpose: the algorithm
//! is fixed by us and never read from the token, so `alg: none`, HS512 or an
//! RS256/HS256 confusion can never be reached; the size limit applies before
//! anything is decoded; and the signature is compared in constant time
//! (`Mac::verify_slice`). Pure: the caller passes the time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

/// Longest accepted token, in bytes. Checked before decoding.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Most extra variables (`vars`) one token may carry.
pub const MAX_VARIABLES: usize = 20;
/// Longest variable name, in characters.
pub const MAX_VARIABLE_NAME_CHARS: usize = 40;
/// Longest variable value (and `sub`), in characters.
pub const MAX_VARIABLE_VALUE_CHARS: usize = 500;
/// Longest `name`, as for the typed pre-chat name.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest `email`, as for the typed pre-chat e-mail.
pub const MAX_EMAIL_CHARS: usize = 254;
/// Clock skew tolerated between the site's backend and this server.
pub const LEEWAY_SECS: i64 = 30;
/// Names the standard claims are shown under; `vars` may not reuse them.
pub const RESERVED_NAMES: [&str; 3] = ["customer_id", "name", "email"];

/// The one header algorithm accepted, compared exactly.
const ALGORITHM: &str = "HS256";

/// Why a token yields no verified data. The reason is for the server log;
/// none of them tells a caller anything about the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("identity token is over {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("identity token is not a compact JWT")]
    Malformed,
    #[error("identity token is not signed with HS256 (or has critical header extensions)")]
    Algorithm,
    #[error("identity token signature does not match the site's secret")]
    Signature,
    #[error("identity token has no exp")]
    MissingExpiry,
    #[error("identity token has expired")]
    Expired,
    #[error("identity token is not valid yet (nbf)")]
    NotYetValid,
    #[error("identity token is meant for another site (aud)")]
    Audience,
    #[error("identity token claims are invalid: {0}")]
    Claims(String),
}

/// What a valid token vouches for. Every field was signed by the site.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// `sub`: the site's own id for the customer.
    pub customer_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// `vars`: extra variables, sorted by name.
    pub variables: Vec<(String, String)>,
}

/// Verifies `token` against the site's `secret` and key at `now_secs`
/// (seconds since the Unix epoch). The signature is checked before any
/// claim is read, so an unsigned payload is never even parsed.
pub fn verify(
    token: &str,
    secret: &[u8],
    site_key: &str,
    now_secs: i64,
) -> Result<VerifiedIdentity, IdentityError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(IdentityError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdentityError::Malformed);
    };
    check_header(&decode_object(header)?)?;
    let signature = decode_segment(signature)?;
    // An empty key would make every HMAC forgeable by anyone who guesses it.
    if secret.is_empty() {
        return Err(IdentityError::Signature);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| IdentityError::Signature)?;
    mac.update(header.as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| IdentityError::Signature)?;

    let claims = decode_object(payload)?;
    check_time(&claims, now_secs)?;
    check_audience(&claims, site_key)?;
    let email = text_claim(&claims, "email", MAX_EMAIL_CHARS)?;
    if email.as_deref().is_some_and(|e| !e.contains('@')) {
        return Err(IdentityError::Claims(
            "email is not an e-mail address".into(),
        ));
    }
    Ok(VerifiedIdentity {
        customer_id: text_claim(&claims, "sub", MAX_VARIABLE_VALUE_CHARS)?,
        name: text_claim(&claims, "name", MAX_NAME_CHARS)?,
        email,
        variables: variables(&claims)?,
    })
}

fn decode_segment(segment: &str) -> Result<Vec<u8>, IdentityError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| IdentityError::Malformed)
}

fn decode_object(segment: &str) -> Result<Map<String, Value>, IdentityError> {
    match serde_json::from_slice(&decode_segment(segment)?) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(IdentityError::Malformed),
    }
}

fn check_header(header: &Map<String, Value>) -> Result<(), IdentityError> {
    // Exactly "HS256": not "none", not "hs256", not another HMAC size.
    if header.get("alg").and_then(Value::as_str) != Some(ALGORITHM) {
        return Err(IdentityError::Algorithm);
    }
    // RFC 7515 §4.1.11: extensions marked critical must be understood; we
    // understand none, so such a token is refused rather than misread.
    if header.contains_key("crit") {
        return Err(IdentityError::Algorithm);
    }
    Ok(())
}

/// A NumericDate: seconds, possibly fractional.
fn numeric_date(claims: &Map<String, Value>, key: &str) -> Result<Option<i64>, IdentityError> {
    match claims.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.floor() as i64))
            .map(Some)
            .ok_or_else(|| IdentityError::Claims(format!("{key} is not a time"))),
        Some(_) => Err(IdentityError::Claims(format!("{key} must be a number"))),
    }
}

fn check_time(claims: &Map<String, Value>, now_secs: i64) -> Result<(), IdentityError> {
    let exp = numeric_date(claims, "exp")?.ok_or(IdentityError::MissingExpiry)?;
    if now_secs >= exp.saturating_add(LEEWAY_SECS) {
        return Err(IdentityError::Expired);
    }
    if let Some(nbf) = numeric_date(claims, "nbf")? {
        if now_secs.saturating_add(LEEWAY_SECS) < nbf {
            return Err(IdentityError::NotYetValid);
        }
    }
    Ok(())
}

/// `aud` is optional; when present (a string or a list) it must name this
/// site, so a token minted for one site cannot be replayed on another that
/// happens to share the secret.
fn check_audience(claims: &Map<String, Value>, site_key: &str) -> Result<(), IdentityError> {
    let matches = match claims.get("aud") {
        None | Some(Value::Null) => true,
        Some(Value::String(aud)) => aud == site_key,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(site_key)),
        Some(_) => false,
    };
    if matches {
        Ok(())
    } else {
        Err(IdentityError::Audience)
    }
}

/// A bounded string claim; blank counts as absent.
fn text_claim(
    claims: &Map<String, Value>,
    key: &str,
    max: usize,
) -> Result<Option<String>, IdentityError> {
    match claims.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(raw)) => {
            let value = raw.trim();
            if value.is_empty() {
                return Ok(None);
            }
            check_value(key, value, max)?;
            Ok(Some(value.to_owned()))
        }
        Some(_) => Err(IdentityError::Claims(format!("{key} must be a string"))),
    }
}

fn check_value(key: &str, value: &str, max: usize) -> Result<(), IdentityError> {
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(IdentityError::Claims(format!(
            "{key} must be at most {max} characters without control characters"
        )));
    }
    Ok(())
}

/// Whether `name` may name a variable: 1–40 of `A–Z a–z 0–9 _ . -`.
pub fn valid_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_VARIABLE_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn variables(claims: &Map<String, Value>) -> Result<Vec<(String, String)>, IdentityError> {
    let vars = match claims.get("vars") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(vars)) => vars,
        Some(_) => return Err(IdentityError::Claims("vars must be an object".into())),
    };
    if vars.len() > MAX_VARIABLES {
        return Err(IdentityError::Claims(format!(
            "vars holds more than {MAX_VARIABLES} variables"
        )));
    }
    let mut out = Vec::with_capacity(vars.len());
    for (name, value) in vars {
        if !valid_variable_name(name) || RESERVED_NAMES.contains(&name.as_str()) {
            return Err(IdentityError::Claims(format!(
                "variable name {name:?} is not allowed"
            )));
        }
        let Value::String(value) = value else {
            return Err(IdentityError::Claims(format!(
                "vars.{name} must be a string"
            )));
        };
        check_value(name, value, MAX_VARIABLE_VALUE_CHARS)?;
        out.push((name.clone(), value.clone()));
    }
    // The map's order depends on serde_json features; make it stable.
    out.sort();
    Ok(out)
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
