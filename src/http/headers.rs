//! Security headers on every response. The UI is plain ES modules with no
//! inline script or style, so the policy needs no `unsafe-inline`. Only the
//! widget's frame may be embedded by other sites; everything else refuses
//! framing.

use super::AppState;
use crate::domain::site::parse_key;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

const CONSOLE_POLICY: &str = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/// The widget frame's policy before `frame-ancestors`.
const WIDGET_BASE: &str = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; \
     base-uri 'none'; form-action 'self'";

pub async fn security_headers(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let widget = request.uri().path().starts_with("/widget/");
    let site = request.uri().query().and_then(site_param);
    let policy = if widget {
        widget_policy(&state, site.as_deref()).await
    } else {
        HeaderValue::from_static(CONSOLE_POLICY)
    };
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // A handler's own, stricter policy (downloads) is kept.
    headers.entry(CONTENT_SECURITY_POLICY).or_insert(policy);
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// The `site` query parameter of the frame's URL (`?site=shop`).
fn site_param(query: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "site")
        .map(|(_, value)| value.to_owned())
}

/// A frame opened for a site may be embedded only by that site's origins
/// (and our own pages); a frame without a site (a plain queue) by any page,
/// as before sites existed. An unknown site, or a store that cannot say,
/// gets no embedding at all.
async fn widget_policy(state: &AppState, site: Option<&str>) -> HeaderValue {
    let ancestors = match site {
        None => "*".to_owned(),
        Some(key) => match parse_key(key) {
            Err(_) => "'none'".to_owned(),
            Ok(key) => match state.store.site_by_key(&key).await {
                Ok(Some(site)) => {
                    // Origins are validated (scheme, host, port only), so
                    // they cannot break out of the directive.
                    let mut sources = vec!["'self'".to_owned()];
                    sources.extend(site.allowed_origins);
                    sources.join(" ")
                }
                Ok(None) => "'none'".to_owned(),
                Err(e) => {
                    tracing::warn!(error = %e, "widget frame policy: store unavailable");
                    "'none'".to_owned()
                }
            },
        },
    };
    HeaderValue::from_str(&format!("{WIDGET_BASE}; frame-ancestors {ancestors}"))
        .unwrap_or_else(|_| HeaderValue::from_static(CONSOLE_POLICY))
}
