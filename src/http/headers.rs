//! Security headers on every response. The UI is plain ES modules with no
//! inline script or style, so the policy needs no `unsafe-inline`. Only the
//! widget's frame may be embedded by other sites; everything else refuses
//! framing.

use axum::extract::Request;
use axum::http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

const CONSOLE_POLICY: &str = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/// The widget frame is embedded by the company's site. Which sites may do so
/// becomes a per-site setting with sites; until then any page may.
const WIDGET_POLICY: &str = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors *";

pub async fn security_headers(request: Request, next: Next) -> Response {
    let widget = request.uri().path().starts_with("/widget/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let policy = if widget {
        WIDGET_POLICY
    } else {
        CONSOLE_POLICY
    };
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}
