//! The supervisors' view of every chat: list and search conversations, live
//! and ended, and read one conversation's full organisation log, private
//! messages included and marked as such.

use super::error::AppError;
use super::extract::Supervisor;
use super::AppState;
use crate::domain::conversation::{Audience, ConversationState};
use crate::domain::ids::{ConversationId, QueueId, UserId};
use crate::protocol::{AttachmentView, AuthorView, EventData, EventKindView};
use crate::store::{Author, ConversationFilter, ConversationSummary, EventKind, EventRecord};
use crate::transcript::{is_private, OrganisationLog, TranscriptHeader};
use crate::transcript_mail::LOG_READ_LIMIT;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/conversations", get(search))
        .route("/api/conversations/{id}/log", get(log))
}

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;
const MAX_NEEDLE_CHARS: usize = 200;

/// Query parameters, all optional; an empty value means "not given", so a
/// search form can send every field.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    queue_id: Option<String>,
    agent_id: Option<String>,
    customer: Option<String>,
    text: Option<String>,
    /// Free search: message text, customer name or e-mail.
    q: Option<String>,
    from: Option<String>,
    to: Option<String>,
    state: Option<String>,
    limit: Option<String>,
    before: Option<String>,
}

fn given(raw: Option<String>) -> Option<String> {
    raw.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn number(raw: Option<String>, what: &str) -> Result<Option<i64>, AppError> {
    given(raw)
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| AppError::BadRequest(format!("{what} must be an integer")))
        })
        .transpose()
}

fn needle(raw: Option<String>, what: &str) -> Result<Option<String>, AppError> {
    let value = given(raw);
    if value
        .as_ref()
        .is_some_and(|v| v.chars().count() > MAX_NEEDLE_CHARS || v.chars().any(char::is_control))
    {
        return Err(AppError::BadRequest(format!(
            "{what} must be at most {MAX_NEEDLE_CHARS} characters without control characters"
        )));
    }
    Ok(value)
}

/// `state`: a comma-separated list of states, or `live` (waiting, offered,
/// active) or `closed` (ended, abandoned).
fn states(raw: Option<String>) -> Result<Vec<ConversationState>, AppError> {
    use ConversationState::*;
    let mut states = Vec::new();
    for part in given(raw).iter().flat_map(|v| v.split(',')) {
        match part.trim() {
            "live" => states.extend([Waiting, Offered, Active]),
            "closed" => states.extend([Ended, Abandoned]),
            other => states.push(
                ConversationState::parse(other)
                    .ok_or_else(|| AppError::BadRequest(format!("unknown state {other:?}")))?,
            ),
        }
    }
    Ok(states)
}

/// The page cursor: `<created_at>.<conversation id>` of the last row.
fn cursor(summary: &ConversationSummary) -> String {
    format!("{}.{}", summary.record.created_at, summary.record.id)
}

fn parse_cursor(raw: &str) -> Option<(i64, ConversationId)> {
    let (at, id) = raw.split_once('.')?;
    Some((at.parse().ok()?, ConversationId::parse(id)?))
}

fn filter(p: SearchParams) -> Result<ConversationFilter, AppError> {
    let limit = number(p.limit, "limit")?.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AppError::BadRequest(format!("limit must be 1–{MAX_LIMIT}")));
    }
    let before = given(p.before)
        .map(|raw| parse_cursor(&raw).ok_or_else(|| AppError::BadRequest("bad cursor".into())))
        .transpose()?;
    Ok(ConversationFilter {
        queue: number(p.queue_id, "queue_id")?.map(QueueId),
        agent: number(p.agent_id, "agent_id")?.map(UserId),
        customer: needle(p.customer, "customer")?,
        text: needle(p.text, "text")?,
        any: needle(p.q, "q")?,
        from: number(p.from, "from")?,
        to: number(p.to, "to")?,
        states: states(p.state)?,
        before,
        limit,
    })
}

/// The customer as they gave themselves when the chat started.
#[derive(Serialize)]
struct CustomerRef {
    name: Option<String>,
    email: Option<String>,
}

#[derive(Serialize)]
struct AgentRef {
    id: UserId,
    display_name: String,
}

/// A conversation in the supervisor's list.
#[derive(Serialize)]
struct SummaryView {
    conversation_id: String,
    queue_id: QueueId,
    queue_name: String,
    state: ConversationState,
    customer: CustomerRef,
    agents: Vec<AgentRef>,
    created_at: i64,
    ended_at: Option<i64>,
}

impl From<ConversationSummary> for SummaryView {
    fn from(s: ConversationSummary) -> Self {
        SummaryView {
            conversation_id: s.record.id.0,
            queue_id: s.record.queue,
            queue_name: s.queue_name,
            state: s.record.state,
            customer: CustomerRef {
                name: s.record.customer_name,
                email: s.record.customer_email,
            },
            agents: s
                .agents
                .into_iter()
                .map(|(id, display_name)| AgentRef { id, display_name })
                .collect(),
            created_at: s.record.created_at,
            ended_at: s.record.ended_at,
        }
    }
}

#[derive(Serialize)]
struct SearchResult {
    conversations: Vec<SummaryView>,
    /// Pass as `before` for the next page; null on the last page.
    next_before: Option<String>,
}

/// `GET /api/conversations`: newest first, keyset-paginated.
async fn search(
    State(state): State<AppState>,
    _s: Supervisor,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchResult>, AppError> {
    let Query(params) = params.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let filter = filter(params)?;
    let found = state.store.search_conversations(&filter).await?;
    let next_before = match found.last() {
        Some(last) if found.len() as i64 == filter.limit => Some(cursor(last)),
        _ => None,
    };
    Ok(Json(SearchResult {
        conversations: found.into_iter().map(SummaryView::from).collect(),
        next_before,
    }))
}

/// One event of the organisation log.
#[derive(Serialize)]
struct LogEvent {
    seq: i64,
    at: i64,
    kind: EventKindView,
    author: AuthorView,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_msg_id: Option<String>,
    audience: Audience,
    /// True when the customer never saw this event.
    private: bool,
    /// The structured part of choices, answers and invitations.
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<EventData>,
    /// Files attached to a message (supervisors may download them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<AttachmentView>,
}

impl From<EventRecord> for LogEvent {
    fn from(e: EventRecord) -> Self {
        let private = is_private(&e);
        LogEvent {
            seq: e.seq,
            at: e.created_at,
            kind: match e.kind {
                EventKind::Message => EventKindView::Message,
                EventKind::Joined => EventKindView::Joined,
                EventKind::Left => EventKindView::Left,
                EventKind::Ended => EventKindView::Ended,
                EventKind::Choices => EventKindView::Choices,
                EventKind::Choice => EventKindView::Choice,
                EventKind::ChoicesDismissed => EventKindView::ChoicesDismissed,
                EventKind::Invited => EventKindView::Invited,
                EventKind::InviteEnded => EventKindView::InviteEnded,
            },
            author: match e.author {
                Author::Customer { name } => AuthorView::Customer { name },
                Author::Agent { name, .. } => AuthorView::Agent { name },
                Author::System => AuthorView::System,
            },
            text: e.body,
            client_msg_id: e.client_msg_id,
            audience: e.audience,
            private,
            data: e.data.as_deref().and_then(|d| serde_json::from_str(d).ok()),
            attachments: e.attachments.iter().map(AttachmentView::from).collect(),
        }
    }
}

#[derive(Serialize)]
struct LogView {
    conversation: SummaryView,
    events: Vec<LogEvent>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LogParams {
    /// `json` (default) or `text`.
    format: Option<String>,
}

/// `GET /api/conversations/{id}/log`: every event, private ones included.
async fn log(
    State(state): State<AppState>,
    _s: Supervisor,
    Path(raw): Path<String>,
    params: Result<Query<LogParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(params) = params.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let as_text = match given(params.format).as_deref() {
        None | Some("json") => false,
        Some("text") => true,
        Some(_) => return Err(AppError::BadRequest("format must be json or text".into())),
    };
    let id = ConversationId::parse(&raw).ok_or(AppError::NotFound)?;
    let summary = state
        .store
        .conversation_summary(&id)
        .await?
        .ok_or(AppError::NotFound)?;
    let events = state.store.events_after(&id, 0, LOG_READ_LIMIT).await?;
    if as_text {
        let header = TranscriptHeader {
            conversation_id: id,
            queue_name: summary.queue_name,
            started_at: summary.record.created_at,
            ended_at: summary.record.ended_at,
        };
        let text = OrganisationLog::new(header, events).to_text();
        let headers = [
            (CONTENT_TYPE, "text/plain; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
        ];
        return Ok((headers, text).into_response());
    }
    Ok(Json(LogView {
        conversation: summary.into(),
        events: events.into_iter().map(LogEvent::from).collect(),
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_parameters_mean_not_given() {
        let f = filter(SearchParams {
            queue_id: Some("".into()),
            customer: Some("  ".into()),
            state: Some("".into()),
            ..SearchParams::default()
        })
        .expect("valid");
        assert_eq!((f.queue, f.customer, f.limit), (None, None, DEFAULT_LIMIT));
        assert!(f.states.is_empty());
    }

    #[test]
    fn bad_parameters_are_refused() {
        for params in [
            SearchParams {
                limit: Some("0".into()),
                ..SearchParams::default()
            },
            SearchParams {
                limit: Some("201".into()),
                ..SearchParams::default()
            },
            SearchParams {
                from: Some("yesterday".into()),
                ..SearchParams::default()
            },
            SearchParams {
                state: Some("gone".into()),
                ..SearchParams::default()
            },
            SearchParams {
                before: Some("nonsense".into()),
                ..SearchParams::default()
            },
            SearchParams {
                text: Some("x".repeat(201)),
                ..SearchParams::default()
            },
        ] {
            assert!(filter(params).is_err());
        }
    }

    #[test]
    fn state_aliases_expand() {
        use ConversationState::*;
        assert_eq!(
            states(Some("live".into())).expect("valid"),
            vec![Waiting, Offered, Active]
        );
        assert_eq!(
            states(Some("closed,active".into())).expect("valid"),
            vec![Ended, Abandoned, Active]
        );
    }

    #[test]
    fn cursors_round_trip() {
        let id = ConversationId::random();
        let raw = format!("1764090123456.{id}");
        assert_eq!(parse_cursor(&raw), Some((1_764_090_123_456, id)));
        assert_eq!(parse_cursor("1.not-a-uuid"), None);
    }
}
