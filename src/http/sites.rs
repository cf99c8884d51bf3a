//! Supervisor configuration of sites: the websites that embed the widget.
//! The identity secret is generated here and shown only in the answers to
//! create and rotate, so it is not copied around by every listing.

use super::admin::clean_name;
use super::error::AppError;
use super::extract::Supervisor;
use super::json::ApiJson;
use super::AppState;
use crate::auth::random_token;
use crate::clock::wall_ms;
use crate::domain::ids::{QueueId, SiteId};
use crate::domain::site::{parse_key, parse_origins, Site, SiteError};
use crate::store::{DeleteOutcome, NewSite, SiteUpdate};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/sites", get(list_sites).post(create_site))
        .route("/api/sites/{id}", put(update_site).delete(delete_site))
        .route("/api/sites/{id}/rotate-secret", post(rotate_secret))
}

impl From<SiteError> for AppError {
    fn from(e: SiteError) -> Self {
        AppError::BadRequest(e.to_string())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSiteRequest {
    name: String,
    /// Generated when omitted.
    key: Option<String>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    default_queue_id: QueueId,
    #[serde(default)]
    require_verified: bool,
    #[serde(default)]
    allow_customer_attachments: bool,
    #[serde(default)]
    transcript_email: bool,
}

/// Every field is optional: what is left out stays as it is. The key is
/// fixed once created, because embedded widgets and tokens carry it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteChanges {
    name: Option<String>,
    allowed_origins: Option<Vec<String>>,
    default_queue_id: Option<QueueId>,
    require_verified: Option<bool>,
    allow_customer_attachments: Option<bool>,
    transcript_email: Option<bool>,
}

/// A site with its secret: only the answers to create and rotate.
#[derive(Serialize)]
struct SiteWithSecret {
    #[serde(flatten)]
    site: Site,
    identity_secret: String,
}

impl From<Site> for SiteWithSecret {
    fn from(site: Site) -> Self {
        let identity_secret = site.identity_secret.clone();
        Self {
            site,
            identity_secret,
        }
    }
}

fn generated_key() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("site-{}", &random[..12])
}

async fn list_sites(
    State(state): State<AppState>,
    _s: Supervisor,
) -> Result<Json<Vec<Site>>, AppError> {
    Ok(Json(state.store.list_sites().await?))
}

async fn create_site(
    State(state): State<AppState>,
    Supervisor(by): Supervisor,
    ApiJson(body): ApiJson<NewSiteRequest>,
) -> Result<(StatusCode, Json<SiteWithSecret>), AppError> {
    let site = NewSite {
        name: clean_name(&body.name, "site name")?,
        key: match body.key {
            Some(key) => parse_key(&key)?,
            None => generated_key(),
        },
        allowed_origins: parse_origins(&body.allowed_origins)?,
        default_queue: body.default_queue_id,
        identity_secret: random_token(),
        require_verified: body.require_verified,
        allow_customer_attachments: body.allow_customer_attachments,
        transcript_email: body.transcript_email,
        now: wall_ms(),
    };
    let site = state.store.create_site(site).await?;
    tracing::info!(supervisor = %by.username, site = %site.key, "site created");
    Ok((StatusCode::CREATED, Json(site.into())))
}

async fn update_site(
    State(state): State<AppState>,
    Supervisor(by): Supervisor,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<SiteChanges>,
) -> Result<Json<Site>, AppError> {
    let update = SiteUpdate {
        name: body.name.map(|n| clean_name(&n, "site name")).transpose()?,
        allowed_origins: body
            .allowed_origins
            .map(|o| parse_origins(&o))
            .transpose()?,
        default_queue: body.default_queue_id,
        require_verified: body.require_verified,
        allow_customer_attachments: body.allow_customer_attachments,
        transcript_email: body.transcript_email,
    };
    let site = state
        .store
        .update_site(SiteId(id), &update)
        .await?
        .ok_or(AppError::NotFound)?;
    tracing::info!(supervisor = %by.username, site = %site.key, "site changed");
    Ok(Json(site))
}

async fn rotate_secret(
    State(state): State<AppState>,
    Supervisor(by): Supervisor,
    Path(id): Path<i64>,
) -> Result<Json<SiteWithSecret>, AppError> {
    let site = state
        .store
        .set_site_secret(SiteId(id), &random_token())
        .await?
        .ok_or(AppError::NotFound)?;
    tracing::info!(supervisor = %by.username, site = %site.key, "site identity secret rotated");
    Ok(Json(site.into()))
}

/// Refused while chats from the site are open; ended chats keep their log.
async fn delete_site(
    State(state): State<AppState>,
    Supervisor(by): Supervisor,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    match state.store.delete_site(SiteId(id)).await? {
        DeleteOutcome::Deleted => {
            tracing::info!(supervisor = %by.username, site = id, "site deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        DeleteOutcome::NotFound => Err(AppError::NotFound),
        DeleteOutcome::Busy | DeleteOutcome::DefaultOfSite => Err(AppError::SiteBusy),
    }
}
