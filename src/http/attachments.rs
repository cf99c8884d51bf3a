//! Attachments over HTTP.
//!
//! - `POST /api/conversations/{id}/attachments` streams up to five files
//!   (multipart fields named `file`) to disk, checking each as it arrives,
//!   and records them unsent. Any refusal removes every file of the request.
//! - `GET /api/attachments/{id}` serves a sent file to those its message's
//!   audience admits, as a download that no browser renders inline.
//!
//! Sending uploads in a message is the sockets' `send` ([`message_input`]);
//! the conversation actor checks they are the sender's and binds them.

use super::agent_ws::text_error;
use super::error::AppError;
use super::extract::CurrentUser;
use super::transcripts::bearer_token;
use super::AppState;
use crate::attachments::staging::{StageError, StagedFile, Staging};
use crate::auth::token_hash;
use crate::clock::wall_ms;
use crate::domain::account::{Role, User};
use crate::domain::attachment::{
    clean_name, content_disposition, parse_refs, AttachmentError, AttachmentRefError, FileKind,
    MAX_FILES_PER_MESSAGE, MAX_FILE_BYTES,
};
use crate::domain::conversation::{ConversationError, ConversationRules, Party};
use crate::domain::ids::{AttachmentId, ConversationId};
use crate::domain::message::MessageText;
use crate::protocol::{AttachmentView, ErrorCode};
use crate::store::{AttachmentRecord, ConversationRecord, NewAttachment};
use axum::body::Body;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Multipart, Path, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_SECURITY_POLICY,
    CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use std::io;
use tokio_util::io::ReaderStream;

/// Five full-size files plus room for the multipart framing. Raised on the
/// upload route only; every other route keeps axum's 2 MB default.
const UPLOAD_BODY_LIMIT: usize = MAX_FILES_PER_MESSAGE * MAX_FILE_BYTES as usize + 1024 * 1024;
/// Longer bearer tokens are not ours (ours are 43 characters).
const MAX_TOKEN_BYTES: usize = 128;
/// Served files may not run script, load anything or be framed into a page.
const DOWNLOAD_POLICY: &str = "sandbox; default-src 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/conversations/{id}/attachments",
            post(upload).layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)),
        )
        .route("/api/attachments/{id}", get(download))
}

/// Who is asking: a customer, by the bearer token of their conversation, or
/// a logged-in user, by the session cookie. Checked before any body is read.
enum Caller {
    Customer(ConversationRecord),
    User(User),
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if !parts.headers.contains_key(AUTHORIZATION) {
            let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
            return Ok(Caller::User(user));
        }
        let token = bearer_token(&parts.headers).ok_or(AppError::Unauthorized)?;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AppError::NotFound);
        }
        // An unknown token is answered like a foreign conversation: not found.
        state
            .store
            .conversation_by_token(&token_hash(token))
            .await?
            .map(Caller::Customer)
            .ok_or(AppError::NotFound)
    }
}

/// The answer to an upload.
#[derive(Serialize)]
struct Uploaded {
    attachments: Vec<AttachmentView>,
}

async fn upload(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    caller: Caller,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Uploaded>), AppError> {
    let id = ConversationId::parse(&raw_id).ok_or(AppError::NotFound)?;
    let uploader = may_upload(&state, caller, &id).await?;
    let multipart = multipart.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let staged = receive(state.blobs.staging_dir(), multipart).await?;
    // Once every file is in, keeping them runs as its own task: a client
    // that disconnects now cannot leave a stored file without its row.
    let kept = tokio::spawn(keep(state, id, uploader, staged))
        .await
        .map_err(|e| AppError::Internal(e.into()))??;
    let attachments = kept
        .iter()
        .map(|a| AttachmentView {
            id: a.id.0.clone(),
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
        })
        .collect();
    Ok((StatusCode::CREATED, Json(Uploaded { attachments })))
}

/// The party uploading to `id`: its customer (if customers may upload) or
/// an agent in it. Others get 404, so ids cannot be probed.
async fn may_upload(
    state: &AppState,
    caller: Caller,
    id: &ConversationId,
) -> Result<Party, AppError> {
    let (party, record) = match caller {
        Caller::Customer(record) if record.id == *id => {
            if !customer_may_upload(state, id).await? {
                return Err(AppError::Forbidden);
            }
            (Party::Customer, record)
        }
        Caller::Customer(_) => return Err(AppError::NotFound),
        Caller::User(user) => {
            let record = state
                .store
                .conversation(id)
                .await?
                .ok_or(AppError::NotFound)?;
            (Party::Agent(user.id), record)
        }
    };
    let agents = state.store.conversation_agents(id).await?;
    if matches!(party, Party::Agent(agent) if !agents.contains(&agent)) {
        return Err(AppError::NotFound);
    }
    // The same rule as for writing a message in the chat.
    match ConversationRules::new(record.state, agents).check_send(party) {
        Ok(()) => Ok(party),
        Err(ConversationError::Ended) => Err(AppError::ConversationEnded),
        Err(_) => Err(AppError::NotFound),
    }
}

/// Whether the customer of a chat may send files: the switch of the site
/// the chat was started from, or `attachments.customers_may_upload` for a
/// chat started without a site.
async fn customer_may_upload(state: &AppState, id: &ConversationId) -> Result<bool, AppError> {
    Ok(match state.store.site_of_conversation(id).await? {
        Some(site) => site.allow_customer_attachments,
        None => state.attachments.customers_may_upload,
    })
}

/// Streams every `file` field to the staging directory, checking it on the
/// way. On any error the files staged so far are dropped, which removes them.
async fn receive(
    dir: &std::path::Path,
    mut multipart: Multipart,
) -> Result<Vec<StagedFile>, AppError> {
    let mut staged = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            return Err(AppError::BadRequest(
                "only multipart fields named `file` are accepted".into(),
            ));
        }
        if staged.len() == MAX_FILES_PER_MESSAGE {
            return Err(AttachmentError::TooManyFiles.into());
        }
        // The client's name is display data only; its Content-Type is ignored.
        let mut file = Staging::create(dir, clean_name(field.file_name())).await?;
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            file.write(&chunk).await?;
        }
        staged.push(file.finish().await?);
    }
    if staged.is_empty() {
        return Err(AppError::BadRequest(
            "send at least one multipart field named `file`".into(),
        ));
    }
    Ok(staged)
}

/// Moves the staged files into the blob store and records them, all or
/// none: a failure removes the files already moved.
async fn keep(
    state: AppState,
    conversation: ConversationId,
    uploader: Party,
    staged: Vec<StagedFile>,
) -> Result<Vec<NewAttachment>, AppError> {
    let mut kept = Vec::with_capacity(staged.len());
    for file in &staged {
        let id = AttachmentId::random();
        if let Err(e) = state.blobs.put(&id, file.path()).await {
            discard(&state, &kept).await;
            return Err(io_error(e));
        }
        kept.push(NewAttachment {
            id,
            conversation: conversation.clone(),
            uploader,
            name: file.name.clone(),
            content_type: file.kind.content_type().to_owned(),
            size: file.size as i64,
            sha256: file.sha256.clone(),
            created_at: wall_ms(),
        });
    }
    if let Err(e) = state.store.create_attachments(&kept).await {
        discard(&state, &kept).await;
        return Err(e.into());
    }
    Ok(kept)
}

async fn discard(state: &AppState, kept: &[NewAttachment]) {
    for a in kept {
        if let Err(e) = state.blobs.delete(&a.id).await {
            tracing::warn!(error = %e, attachment = %a.id, "could not remove an unrecorded file");
        }
    }
}

async fn download(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    caller: Caller,
) -> Result<Response, AppError> {
    let id = AttachmentId::parse(&raw_id).ok_or(AppError::NotFound)?;
    let record = state
        .store
        .attachment(&id)
        .await?
        .ok_or(AppError::NotFound)?;
    if !may_download(&state, caller, &record).await? {
        return Err(AppError::NotFound);
    }
    let reader = state.blobs.open(&id).await.map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            tracing::error!(attachment = %id, "attachment recorded but its file is missing");
        }
        io_error(e)
    })?;
    // The stored type was decided from the content; anything unexpected is
    // served as opaque bytes.
    let content_type = FileKind::from_content_type(&record.content_type)
        .map_or("application/octet-stream", FileKind::content_type);
    let disposition = HeaderValue::from_str(&content_disposition(&record.name))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let mut response = Response::new(Body::from_stream(ReaderStream::new(reader)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(record.size.max(0) as u64));
    headers.insert(CONTENT_DISPOSITION, disposition);
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOWNLOAD_POLICY),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    headers.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    Ok(response)
}

/// Only files sent in a message can be downloaded: by the conversation's
/// customer if the message was for everyone, by any agent who is or was in
/// it, and by supervisors.
async fn may_download(
    state: &AppState,
    caller: Caller,
    record: &AttachmentRecord,
) -> Result<bool, AppError> {
    let Some(audience) = record.audience.filter(|_| record.event_seq.is_some()) else {
        return Ok(false);
    };
    Ok(match caller {
        // The same audience rule as every chat-log event.
        Caller::Customer(conversation) => {
            conversation.id == record.conversation && audience.admits(Party::Customer)
        }
        Caller::User(user) if user.role == Role::Supervisor => true,
        Caller::User(user) => state.store.took_part(&record.conversation, user.id).await?,
    })
}

fn multipart_error(e: MultipartError) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge
    } else {
        AppError::BadRequest(e.body_text())
    }
}

fn io_error(e: io::Error) -> AppError {
    if e.kind() == io::ErrorKind::StorageFull {
        AppError::InsufficientStorage
    } else {
        AppError::Internal(e.into())
    }
}

impl From<StageError> for AppError {
    fn from(e: StageError) -> Self {
        match e {
            StageError::Refused(refusal) => AppError::Attachment(refusal),
            StageError::Io(e) => io_error(e),
        }
    }
}

/// The text and attachment ids of a `send`, checked at the edge. A message
/// with attachments may have blank text.
pub(super) fn message_input(
    text: String,
    attachments: &[String],
) -> Result<(MessageText, Vec<AttachmentId>), (ErrorCode, &'static str)> {
    let ids = parse_refs(attachments).map_err(|e| {
        let message = match e {
            AttachmentRefError::TooMany => "at most 5 attachments per message",
            AttachmentRefError::Malformed => "an attachment id is not a valid id",
            AttachmentRefError::Duplicate => "an attachment is listed twice",
        };
        (ErrorCode::InvalidAttachment, message)
    })?;
    let text = if ids.is_empty() {
        MessageText::parse(text)
    } else {
        MessageText::parse_caption(text)
    };
    Ok((text.map_err(text_error)?, ids))
}
