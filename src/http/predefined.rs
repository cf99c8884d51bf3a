//! Predefined messages over HTTP. Supervisors manage the shared ones
//! (`/api/predefined`), every logged-in user their own personal ones
//! (`/api/me/predefined`), and an agent in a chat lists the ones that apply
//! there (`/api/conversations/{id}/predefined`). Picking one only fills the
//! console's text box: it is then sent as an ordinary chat message, so
//! nothing here touches the chat log.

use super::error::AppError;
use super::extract::{CurrentUser, Supervisor};
use super::json::ApiJson;
use super::AppState;
use crate::clock::wall_ms;
use crate::domain::account::{Role, User};
use crate::domain::ids::{ConversationId, PredefinedId, QueueId, UserId};
use crate::domain::predefined::{
    may_edit_via, Body, Editor, Heading, PredefinedError, Scope, ScopeKind, Via,
};
use crate::store::{NewPredefined, PredefinedRecord, ReorderOutcome, SharedFilter};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// Longest accepted reorder list; far above any useful number of messages.
const MAX_REORDER_IDS: usize = 1000;

/// The predefined-message routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/predefined", get(list_shared).post(create_shared))
        .route("/api/predefined/reorder", post(reorder_shared))
        .route(
            "/api/predefined/{id}",
            put(update_shared).delete(delete_shared),
        )
        .route(
            "/api/me/predefined",
            get(list_personal).post(create_personal),
        )
        .route("/api/me/predefined/reorder", post(reorder_personal))
        .route(
            "/api/me/predefined/{id}",
            put(update_personal).delete(delete_personal),
        )
        .route("/api/conversations/{id}/predefined", get(applicable))
}

impl From<PredefinedError> for AppError {
    fn from(e: PredefinedError) -> Self {
        AppError::BadRequest(e.to_string())
    }
}

/// A predefined message on the wire: the scope's kind with its target ids.
#[derive(Serialize)]
struct PredefinedView {
    id: PredefinedId,
    heading: String,
    body: String,
    scope: ScopeKind,
    queue_id: Option<QueueId>,
    /// The target agent of an `agent` message, the owner of a `personal` one.
    agent_id: Option<UserId>,
    position: i64,
    created_by: UserId,
    created_at: i64,
    updated_at: i64,
}

impl From<PredefinedRecord> for PredefinedView {
    fn from(r: PredefinedRecord) -> Self {
        Self {
            id: r.id,
            scope: r.scope.kind(),
            queue_id: r.scope.queue(),
            agent_id: r.scope.agent(),
            heading: r.heading,
            body: r.body,
            position: r.position,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn views(records: Vec<PredefinedRecord>) -> Json<Vec<PredefinedView>> {
    Json(records.into_iter().map(PredefinedView::from).collect())
}

/// Heading and body: the whole of a personal message, and what an edit replaces.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Content {
    heading: String,
    body: String,
}

impl Content {
    fn parse(self) -> Result<(Heading, Body), AppError> {
        Ok((Heading::parse(&self.heading)?, Body::parse(self.body)?))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewShared {
    heading: String,
    body: String,
    scope: ScopeKind,
    queue_id: Option<QueueId>,
    agent_id: Option<UserId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    scope: Option<ScopeKind>,
    queue_id: Option<QueueId>,
    agent_id: Option<UserId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SharedOrder {
    scope: ScopeKind,
    queue_id: Option<QueueId>,
    agent_id: Option<UserId>,
    ids: Vec<PredefinedId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonalOrder {
    ids: Vec<PredefinedId>,
}

/// A numeric `{id}`, refused in our error format rather than axum's plain text.
fn message_id(raw: Result<Path<i64>, PathRejection>) -> Result<PredefinedId, AppError> {
    raw.map(|Path(id)| PredefinedId(id))
        .map_err(|_| AppError::BadRequest("id must be a number".into()))
}

fn ensure_may_edit(user: &User, scope: Scope, via: Via) -> Result<(), AppError> {
    if may_edit_via(Editor::from(user), scope, via) {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

/// An agent-scoped message must target an existing agent; an unknown queue
/// is caught by the store's foreign key (404).
async fn check_target(state: &AppState, scope: Scope) -> Result<(), AppError> {
    let Scope::Agent(agent) = scope else {
        return Ok(());
    };
    match state.store.user_by_id(agent).await? {
        None => Err(AppError::NotFound),
        Some(user) if user.role != Role::Agent => {
            Err(AppError::BadRequest("agent_id must name an agent".into()))
        }
        Some(_) => Ok(()),
    }
}

async fn create(
    state: &AppState,
    by: &User,
    scope: Scope,
    via: Via,
    content: Content,
) -> Result<(StatusCode, Json<PredefinedView>), AppError> {
    ensure_may_edit(by, scope, via)?;
    let (heading, body) = content.parse()?;
    check_target(state, scope).await?;
    let record = state
        .store
        .create_predefined(NewPredefined {
            heading,
            body,
            scope,
            created_by: by.id,
            now: wall_ms(),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// Loads the message and checks `by` may change it through `via`: an
/// unknown id is 404, someone else's message 403.
async fn editable(
    state: &AppState,
    by: &User,
    id: PredefinedId,
    via: Via,
) -> Result<PredefinedRecord, AppError> {
    let record = state
        .store
        .predefined(id)
        .await?
        .ok_or(AppError::NotFound)?;
    ensure_may_edit(by, record.scope, via)?;
    Ok(record)
}

async fn update(
    state: &AppState,
    by: &User,
    id: PredefinedId,
    via: Via,
    content: Content,
) -> Result<Json<PredefinedView>, AppError> {
    editable(state, by, id, via).await?;
    let (heading, body) = content.parse()?;
    let record = state
        .store
        .update_predefined(id, &heading, &body, wall_ms())
        .await?
        // Deleted between the check and the update.
        .ok_or(AppError::NotFound)?;
    Ok(Json(record.into()))
}

async fn delete(
    state: &AppState,
    by: &User,
    id: PredefinedId,
    via: Via,
) -> Result<StatusCode, AppError> {
    editable(state, by, id, via).await?;
    if state.store.delete_predefined(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound)
    }
}

async fn reorder(
    state: &AppState,
    by: &User,
    scope: Scope,
    via: Via,
    ids: &[PredefinedId],
) -> Result<StatusCode, AppError> {
    ensure_may_edit(by, scope, via)?;
    if ids.len() > MAX_REORDER_IDS {
        return Err(AppError::BadRequest(format!(
            "ids may list at most {MAX_REORDER_IDS} messages"
        )));
    }
    match state.store.reorder_predefined(scope, ids).await? {
        ReorderOutcome::Reordered => Ok(StatusCode::NO_CONTENT),
        ReorderOutcome::Incomplete => Err(AppError::BadRequest(
            "ids must list every message of that scope exactly once".into(),
        )),
    }
}

// --- shared messages (supervisors) ---

async fn list_shared(
    State(state): State<AppState>,
    _s: Supervisor,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<PredefinedView>>, AppError> {
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    if query.scope == Some(ScopeKind::Personal) {
        return Err(PredefinedError::PersonalNotShared.into());
    }
    let filter = SharedFilter {
        kind: query.scope,
        queue: query.queue_id,
        agent: query.agent_id,
    };
    Ok(views(state.store.shared_predefined(filter).await?))
}

async fn create_shared(
    State(state): State<AppState>,
    Supervisor(by): Supervisor,
    ApiJson(req): ApiJson<NewShared>,
) -> Result<(StatusCode, Json<PredefinedView>), AppError> {
    let scope = Scope::shared(req.scope, req.queue_id, req.agent_id)?;
    let content = Content {
        heading: req.heading,
        body: req.body,
    };
    create(&state, &by, scope, Via::Shared, content).await
}

async fn update_shared(
    State(state): State<AppState>,
    Supervisor(by): Supervisor,
    id: Result<Path<i64>, PathRejection>,
    ApiJson(req): ApiJson<Content>,
) -> Result<Json<PredefinedView>, AppError> {
    update(&state, &by, message_id(id)?, Via::Shared, req).await
}

async fn delete_shared(
    State(state): State<AppState>,
    Supervisor(by): Supervisor,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, AppError> {
    delete(&state, &by, message_id(id)?, Via::Shared).await
}

async fn reorder_shared(
    State(state): State<AppState>,
    Supervisor(by): Supervisor,
    ApiJson(req): ApiJson<SharedOrder>,
) -> Result<StatusCode, AppError> {
    let scope = Scope::shared(req.scope, req.queue_id, req.agent_id)?;
    reorder(&state, &by, scope, Via::Shared, &req.ids).await
}

// --- personal messages (any logged-in user, their own only) ---

async fn list_personal(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<Vec<PredefinedView>>, AppError> {
    Ok(views(state.store.personal_predefined(user.id).await?))
}

async fn create_personal(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(req): ApiJson<Content>,
) -> Result<(StatusCode, Json<PredefinedView>), AppError> {
    let scope = Scope::Personal(user.id);
    create(&state, &user, scope, Via::Personal, req).await
}

async fn update_personal(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    id: Result<Path<i64>, PathRejection>,
    ApiJson(req): ApiJson<Content>,
) -> Result<Json<PredefinedView>, AppError> {
    update(&state, &user, message_id(id)?, Via::Personal, req).await
}

async fn delete_personal(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, AppError> {
    delete(&state, &user, message_id(id)?, Via::Personal).await
}

async fn reorder_personal(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(req): ApiJson<PersonalOrder>,
) -> Result<StatusCode, AppError> {
    let scope = Scope::Personal(user.id);
    reorder(&state, &user, scope, Via::Personal, &req.ids).await
}

// --- in a chat ---

/// What the caller may pick in one of their chats. Anyone who is not a
/// participant gets the same 404 as for an unknown chat, so conversation
/// ids cannot be probed.
async fn applicable(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(raw): Path<String>,
) -> Result<Json<Vec<PredefinedView>>, AppError> {
    let id = ConversationId::parse(&raw).ok_or(AppError::NotFound)?;
    let conversation = state
        .store
        .conversation(&id)
        .await?
        .ok_or(AppError::NotFound)?;
    if !state
        .store
        .conversation_agents(&id)
        .await?
        .contains(&user.id)
    {
        return Err(AppError::NotFound);
    }
    let records = state
        .store
        .applicable_predefined(user.id, conversation.queue)
        .await?;
    Ok(views(records))
}
