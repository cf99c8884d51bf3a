//! Cross-site request forgery defence for state-changing HTTP requests.
//! The session cookie is `SameSite=Strict` already; on top, a request that
//! a browser marks as coming from another site (`Origin` not ours or
//! configured, or `Sec-Fetch-Site: cross-site`/`same-site`) is refused with
//! 403 `cross_origin` before any handler runs. Requests without those
//! headers come from non-browser clients (scripts, the CLI, other servers),
//! which cannot be driven by a foreign page and keep working.
//!
//! `POST /api/chats` is exempt: sites embed the widget and start chats from
//! their own origins; that route checks the site's allowed origins itself.

use super::agent_ws::origin_allowed;
use super::error::AppError;
use super::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Routes browsers on other sites may call by design.
const CROSS_SITE_ROUTES: &[&str] = &["/api/chats"];

/// Whether a state-changing request carries browser evidence of a foreign
/// page.
pub fn cross_site(headers: &HeaderMap, allowed: &[String]) -> bool {
    if !origin_allowed(headers, allowed) {
        return true;
    }
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none");
    let foreign = matches!(fetch_site, "cross-site" | "same-site");
    // A same-site page of a configured origin (e.g. a proxy's) is fine;
    // without an `Origin` to check, a foreign fetch is refused.
    foreign && headers.get(axum::http::header::ORIGIN).is_none()
}

pub async fn refuse_cross_site(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let exempt = CROSS_SITE_ROUTES.contains(&request.uri().path());
    if !safe && !exempt && cross_site(request.headers(), &state.server.allowed_origins) {
        tracing::info!(path = %request.uri().path(), "cross-site request refused");
        return AppError::CrossOrigin.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert("host", HeaderValue::from_static("chat.example"));
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn foreign_pages_are_cross_site_and_others_are_not() {
        let allowed = vec!["https://console.example".to_owned()];
        let check = |pairs: &[(&'static str, &'static str)]| cross_site(&headers(pairs), &allowed);
        assert!(!check(&[]), "non-browser client");
        assert!(!check(&[("origin", "http://chat.example")]));
        assert!(!check(&[
            ("origin", "https://chat.example"),
            ("sec-fetch-site", "same-origin")
        ]));
        assert!(!check(&[
            ("origin", "https://console.example"),
            ("sec-fetch-site", "same-site")
        ]));
        assert!(check(&[("origin", "https://evil.example")]));
        assert!(check(&[("origin", "null")]));
        assert!(check(&[("sec-fetch-site", "cross-site")]));
        assert!(check(&[("sec-fetch-site", "same-site")]));
        assert!(
            !check(&[("sec-fetch-site", "none")]),
            "typed into the address bar"
        );
    }
}
