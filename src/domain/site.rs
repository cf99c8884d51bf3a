//! Sites: the websites that embed the widget. Each has a public key (the
//! widget's `data-site`), the origins its pages are served from, a default
//! queue and the secret its backend signs identity tokens with.

use super::ids::{QueueId, SiteId};
use serde::Serialize;
use std::fmt;

/// Most allowed origins per site.
pub const MAX_ORIGINS: usize = 20;
/// Longest allowed origin, in bytes.
pub const MAX_ORIGIN_BYTES: usize = 200;
/// Longest site key, in characters.
pub const MAX_KEY_CHARS: usize = 40;

/// A site as stored. `Debug` leaves out the identity secret.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Site {
    pub id: SiteId,
    pub name: String,
    /// Public: the widget names its site with it, and tokens may carry it as `aud`.
    pub key: String,
    /// Normalised origins (`https://shop.example`) whose pages may start chats.
    pub allowed_origins: Vec<String>,
    pub default_queue_id: QueueId,
    /// The HS256 key of identity tokens. Never serialised by accident:
    /// responses that show it add it explicitly.
    #[serde(skip)]
    pub identity_secret: String,
    /// Chats without a valid identity token are refused.
    pub require_verified: bool,
    /// Stored for the attachments feature.
    pub allow_customer_attachments: bool,
    /// E-mail the transcript to the customer's verified address when the
    /// chat ends (`transcript_mail::spawn_automatic_transcript`).
    pub transcript_email: bool,
    pub created_at: i64,
}

impl fmt::Debug for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Site")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("key", &self.key)
            .field("allowed_origins", &self.allowed_origins)
            .field("default_queue_id", &self.default_queue_id)
            .field("identity_secret", &"…")
            .field("require_verified", &self.require_verified)
            .finish_non_exhaustive()
    }
}

/// Why a site setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SiteError {
    #[error("site key must be 1–40 characters of a–z, 0–9, '-' and '_'")]
    Key,
    #[error("origin {0:?} must look like https://shop.example or http://host:port")]
    Origin(String),
    #[error("at most {MAX_ORIGINS} allowed origins")]
    TooManyOrigins,
}

/// Parses a site key: lowercase so it is safe in HTML attributes and URLs.
pub fn parse_key(raw: &str) -> Result<String, SiteError> {
    let key = raw.trim();
    let ok = !key.is_empty()
        && key.chars().count() <= MAX_KEY_CHARS
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(key.to_owned())
    } else {
        Err(SiteError::Key)
    }
}

/// Parses an origin into the form browsers send in the `Origin` header:
/// lowercase scheme and host, no path, no default port.
pub fn parse_origin(raw: &str) -> Result<String, SiteError> {
    let invalid = || SiteError::Origin(raw.chars().take(MAX_ORIGIN_BYTES).collect());
    let trimmed = raw.trim().trim_end_matches('/');
    if trimmed.len() > MAX_ORIGIN_BYTES {
        return Err(invalid());
    }
    let lower = trimmed.to_ascii_lowercase();
    let (scheme, authority) = lower.split_once("://").ok_or_else(invalid)?;
    let default_port = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return Err(invalid()),
    };
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    let host_ok = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !host_ok {
        return Err(invalid());
    }
    Ok(format!("{scheme}://{authority}"))
}

/// Parses a list of origins, dropping duplicates.
pub fn parse_origins(raw: &[String]) -> Result<Vec<String>, SiteError> {
    if raw.len() > MAX_ORIGINS {
        return Err(SiteError::TooManyOrigins);
    }
    let mut origins: Vec<String> = Vec::with_capacity(raw.len());
    for origin in raw {
        let origin = parse_origin(origin)?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(origins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_like_the_browser_sends_them() {
        assert_eq!(
            parse_origin("HTTPS://Shop.Example/").unwrap(),
            "https://shop.example"
        );
        assert_eq!(
            parse_origin("https://shop.example:443").unwrap(),
            "https://shop.example"
        );
        assert_eq!(
            parse_origin("http://localhost:8080").unwrap(),
            "http://localhost:8080"
        );
        for bad in [
            "shop.example",
            "ftp://shop.example",
            "https://",
            "https://shop.example/path",
            "https://shop.example?x",
            "https://a,b",
            "*",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origin_lists_are_bounded_and_deduplicated() {
        let list = vec!["https://a.example".to_owned(), "https://A.example/".into()];
        assert_eq!(parse_origins(&list).unwrap(), vec!["https://a.example"]);
        let many: Vec<String> = (0..=MAX_ORIGINS)
            .map(|i| format!("https://{i}.example"))
            .collect();
        assert_eq!(parse_origins(&many), Err(SiteError::TooManyOrigins));
    }

    #[test]
    fn keys_are_lowercase_slugs() {
        assert_eq!(parse_key(" shop-1 ").unwrap(), "shop-1");
        for bad in ["", "Shop", "a b", "<script>", &"k".repeat(41)] {
            assert!(parse_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let site = Site {
            id: SiteId(1),
            name: "Shop".into(),
            key: "shop".into(),
            allowed_origins: vec![],
            default_queue_id: QueueId(1),
            identity_secret: "top-secret".into(),
            require_verified: false,
            allow_customer_attachments: false,
            transcript_email: false,
            created_at: 0,
        };
        assert!(!format!("{site:?}").contains("top-secret"));
        let json = serde_json::to_string(&site).unwrap();
        assert!(!json.contains("top-secret"));
    }
}
