//! The widget frame's display settings: `GET /api/widget/config?site=…`.
//! Public, because the frame asks before anyone has a token; it therefore
//! returns only what changes how the widget looks and behaves, never a
//! site's allowed origins, secret or queue ids.

use super::error::AppError;
use super::AppState;
use crate::domain::attachment::{MAX_FILES_PER_MESSAGE, MAX_FILE_BYTES};
use crate::domain::site::parse_key;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/widget/config", get(widget_config))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigParams {
    /// The site's public key; without it, the settings of chats started
    /// without a site (a widget embedded with `data-queue` only).
    site: Option<String>,
}

/// What the widget frame needs to know before a chat starts.
#[derive(Serialize)]
struct WidgetConfig {
    /// The site's key, or null for a widget without a site.
    site: Option<String>,
    /// The site's display name, shown as the frame's title; null without a site.
    name: Option<String>,
    /// Chats need a valid identity token from the site's backend: the frame
    /// skips the pre-chat form and says so when the token is missing.
    require_verified: bool,
    /// Customers may send files (`POST /api/conversations/{id}/attachments`).
    allow_attachments: bool,
    /// Per message, when `allow_attachments`.
    max_files: usize,
    /// Per file, in bytes.
    max_file_bytes: u64,
    /// The customer may ask for the transcript by e-mail after the chat
    /// (the server has SMTP configured).
    transcript_email: bool,
    /// The site mails the transcript by itself to a verified address.
    automatic_transcript_email: bool,
}

async fn widget_config(
    State(state): State<AppState>,
    params: Result<Query<ConfigParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(params) = params.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let mail = state.mailer.is_enabled();
    let config = match params
        .site
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => WidgetConfig {
            site: None,
            name: None,
            require_verified: false,
            allow_attachments: state.attachments.customers_may_upload,
            max_files: MAX_FILES_PER_MESSAGE,
            max_file_bytes: MAX_FILE_BYTES,
            transcript_email: mail,
            automatic_transcript_email: false,
        },
        Some(raw) => {
            let key = parse_key(raw).map_err(AppError::from)?;
            let site = state
                .store
                .site_by_key(&key)
                .await?
                .ok_or(AppError::NotFound)?;
            WidgetConfig {
                site: Some(site.key),
                name: Some(site.name),
                require_verified: site.require_verified,
                allow_attachments: site.allow_customer_attachments,
                max_files: MAX_FILES_PER_MESSAGE,
                max_file_bytes: MAX_FILE_BYTES,
                transcript_email: mail,
                automatic_transcript_email: site.transcript_email && mail,
            }
        }
    };
    let mut response = Json(config).into_response();
    // Supervisors change sites at any time; the next chat sees the change.
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}
