//! Predefined messages: canned texts an agent picks in a chat to fill the
//! text box. This module owns their vocabulary and rules: the scopes a
//! message can have, the validated heading and body, who may change which
//! message, and what a complete reorder list is.

use super::account::{Role, User};
use super::ids::{PredefinedId, QueueId, UserId};
use super::message::{InputError, MessageText};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Longest accepted heading, in characters.
pub const MAX_HEADING_CHARS: usize = 80;

/// Why a predefined message was refused. The text is shown to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PredefinedError {
    #[error("heading must be 1–80 characters without control characters")]
    InvalidHeading,
    #[error("body must not be blank")]
    EmptyBody,
    #[error("body is over 4000 characters")]
    BodyTooLong,
    #[error("body contains control characters other than newline and tab")]
    InvalidBody,
    #[error("scope \"everyone\" takes neither queue_id nor agent_id")]
    EveryoneWithTarget,
    #[error("scope \"queue\" needs queue_id and no agent_id")]
    QueueTarget,
    #[error("scope \"agent\" needs agent_id and no queue_id")]
    AgentTarget,
    #[error("personal messages are managed under /api/me/predefined")]
    PersonalNotShared,
}

/// The kind of a scope, as stored and as sent on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    Everyone,
    Queue,
    Agent,
    Personal,
}

impl ScopeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Everyone => "everyone",
            Self::Queue => "queue",
            Self::Agent => "agent",
            Self::Personal => "personal",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "everyone" => Self::Everyone,
            "queue" => Self::Queue,
            "agent" => Self::Agent,
            "personal" => Self::Personal,
            _ => return None,
        })
    }
}

/// Who a predefined message is for. Each variant carries exactly the id it
/// needs, so a queue message without a queue cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every agent, in every chat.
    Everyone,
    /// Agents in chats of this queue.
    Queue(QueueId),
    /// This one agent, set by a supervisor.
    Agent(UserId),
    /// Written by this agent for themselves; nobody else sees it.
    Personal(UserId),
}

impl Scope {
    /// A shared scope from a request's `scope`, `queue_id` and `agent_id`.
    /// Personal scopes are never built from client fields: their owner is
    /// always the caller.
    pub fn shared(
        kind: ScopeKind,
        queue: Option<QueueId>,
        agent: Option<UserId>,
    ) -> Result<Self, PredefinedError> {
        match (kind, queue, agent) {
            (ScopeKind::Everyone, None, None) => Ok(Self::Everyone),
            (ScopeKind::Everyone, _, _) => Err(PredefinedError::EveryoneWithTarget),
            (ScopeKind::Queue, Some(q), None) => Ok(Self::Queue(q)),
            (ScopeKind::Queue, _, _) => Err(PredefinedError::QueueTarget),
            (ScopeKind::Agent, None, Some(a)) => Ok(Self::Agent(a)),
            (ScopeKind::Agent, _, _) => Err(PredefinedError::AgentTarget),
            (ScopeKind::Personal, _, _) => Err(PredefinedError::PersonalNotShared),
        }
    }

    /// Rebuilds a scope from stored columns; None if they do not fit
    /// together (the table's check constraint rules that out).
    pub fn from_columns(kind: &str, queue: Option<i64>, agent: Option<i64>) -> Option<Self> {
        match (ScopeKind::parse(kind)?, queue, agent) {
            (ScopeKind::Everyone, None, None) => Some(Self::Everyone),
            (ScopeKind::Queue, Some(q), None) => Some(Self::Queue(QueueId(q))),
            (ScopeKind::Agent, None, Some(a)) => Some(Self::Agent(UserId(a))),
            (ScopeKind::Personal, None, Some(a)) => Some(Self::Personal(UserId(a))),
            _ => None,
        }
    }

    pub fn kind(self) -> ScopeKind {
        match self {
            Self::Everyone => ScopeKind::Everyone,
            Self::Queue(_) => ScopeKind::Queue,
            Self::Agent(_) => ScopeKind::Agent,
            Self::Personal(_) => ScopeKind::Personal,
        }
    }

    pub fn queue(self) -> Option<QueueId> {
        match self {
            Self::Queue(q) => Some(q),
            _ => None,
        }
    }

    /// The target agent of an agent scope, or the owner of a personal one.
    pub fn agent(self) -> Option<UserId> {
        match self {
            Self::Agent(a) | Self::Personal(a) => Some(a),
            _ => None,
        }
    }

    /// Shared messages are managed by supervisors; personal ones by their owner.
    pub fn is_shared(self) -> bool {
        !matches!(self, Self::Personal(_))
    }
}

/// A message's heading: trimmed, 1–[`MAX_HEADING_CHARS`] characters, no
/// control characters (it is shown on one line in the console's picker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Heading(String);

impl Heading {
    pub fn parse(raw: &str) -> Result<Self, PredefinedError> {
        let heading = raw.trim();
        if heading.is_empty()
            || heading.chars().count() > MAX_HEADING_CHARS
            || heading.chars().any(char::is_control)
        {
            return Err(PredefinedError::InvalidHeading);
        }
        Ok(Self(heading.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message's body. It fills the agent's text box and is then sent as an
/// ordinary chat message, so it obeys exactly the chat message rules
/// ([`MessageText`]): 1–4000 characters, newlines and tabs allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Body(MessageText);

impl Body {
    pub fn parse(raw: String) -> Result<Self, PredefinedError> {
        MessageText::parse(raw).map(Self).map_err(|e| match e {
            InputError::Empty => PredefinedError::EmptyBody,
            InputError::TooLong => PredefinedError::BodyTooLong,
            InputError::ControlCharacters => PredefinedError::InvalidBody,
        })
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// The user asking for a change: only their id and role matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Editor {
    pub id: UserId,
    pub role: Role,
}

impl From<&User> for Editor {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            role: user.role,
        }
    }
}

/// Whether `editor` may create, edit, reorder or delete a message of
/// `scope`: supervisors manage every shared scope; a personal message
/// belongs to its owner alone, whatever anyone's role.
pub fn may_edit(editor: Editor, scope: Scope) -> bool {
    match scope {
        Scope::Personal(owner) => owner == editor.id,
        Scope::Everyone | Scope::Queue(_) | Scope::Agent(_) => editor.role == Role::Supervisor,
    }
}

/// Which set of endpoints a change arrives through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `/api/predefined`: shared messages only.
    Shared,
    /// `/api/me/predefined`: the caller's personal messages only.
    Personal,
}

/// [`may_edit`], restricted to the messages the endpoints in `via` manage,
/// so that a supervisor's personal route never reaches shared messages and
/// the shared routes never reach personal ones.
pub fn may_edit_via(editor: Editor, scope: Scope, via: Via) -> bool {
    let in_reach = match via {
        Via::Shared => scope.is_shared(),
        Via::Personal => !scope.is_shared(),
    };
    in_reach && may_edit(editor, scope)
}

/// Whether `requested` names every id of `stored` exactly once: a reorder
/// must be complete, so no message is silently left at an old position.
pub fn is_complete_order(stored: &[PredefinedId], requested: &[PredefinedId]) -> bool {
    let wanted: HashSet<_> = requested.iter().collect();
    requested.len() == stored.len()
        && wanted.len() == requested.len()
        && stored.iter().all(|id| wanted.contains(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUE: Editor = Editor {
        id: UserId(1),
        role: Role::Supervisor,
    };
    const ALICE: Editor = Editor {
        id: UserId(2),
        role: Role::Agent,
    };
    const BOB: UserId = UserId(3);

    #[test]
    fn supervisors_edit_shared_scopes_but_not_others_personal_ones() {
        assert!(may_edit(SUE, Scope::Everyone));
        assert!(may_edit(SUE, Scope::Queue(QueueId(1))));
        assert!(may_edit(SUE, Scope::Agent(ALICE.id)));
        assert!(!may_edit(SUE, Scope::Personal(ALICE.id)));
        assert!(may_edit(SUE, Scope::Personal(SUE.id)));
    }

    #[test]
    fn agents_edit_only_their_own_personal_messages() {
        assert!(may_edit(ALICE, Scope::Personal(ALICE.id)));
        assert!(!may_edit(ALICE, Scope::Personal(BOB)));
        assert!(!may_edit(ALICE, Scope::Everyone));
        assert!(!may_edit(ALICE, Scope::Queue(QueueId(1))));
        // Even a message aimed at her is the supervisors' to change.
        assert!(!may_edit(ALICE, Scope::Agent(ALICE.id)));
    }

    #[test]
    fn each_route_reaches_only_its_own_messages() {
        assert!(may_edit_via(SUE, Scope::Everyone, Via::Shared));
        assert!(!may_edit_via(SUE, Scope::Everyone, Via::Personal));
        assert!(may_edit_via(SUE, Scope::Personal(SUE.id), Via::Personal));
        assert!(!may_edit_via(SUE, Scope::Personal(SUE.id), Via::Shared));
        assert!(may_edit_via(
            ALICE,
            Scope::Personal(ALICE.id),
            Via::Personal
        ));
        assert!(!may_edit_via(ALICE, Scope::Agent(ALICE.id), Via::Personal));
    }

    #[test]
    fn shared_scope_needs_exactly_its_target() {
        let (q, a) = (Some(QueueId(4)), Some(UserId(5)));
        assert_eq!(
            Scope::shared(ScopeKind::Everyone, None, None),
            Ok(Scope::Everyone)
        );
        assert_eq!(
            Scope::shared(ScopeKind::Queue, q, None),
            Ok(Scope::Queue(QueueId(4)))
        );
        assert_eq!(
            Scope::shared(ScopeKind::Agent, None, a),
            Ok(Scope::Agent(UserId(5)))
        );
        assert!(Scope::shared(ScopeKind::Everyone, q, None).is_err());
        assert!(Scope::shared(ScopeKind::Queue, None, None).is_err());
        assert!(Scope::shared(ScopeKind::Queue, q, a).is_err());
        assert!(Scope::shared(ScopeKind::Agent, q, None).is_err());
        assert_eq!(
            Scope::shared(ScopeKind::Personal, None, a),
            Err(PredefinedError::PersonalNotShared)
        );
    }

    #[test]
    fn stored_columns_round_trip_and_mismatches_are_refused() {
        for scope in [
            Scope::Everyone,
            Scope::Queue(QueueId(1)),
            Scope::Agent(UserId(2)),
            Scope::Personal(UserId(3)),
        ] {
            let columns = (
                scope.kind().as_str(),
                scope.queue().map(|q| q.0),
                scope.agent().map(|a| a.0),
            );
            assert_eq!(
                Scope::from_columns(columns.0, columns.1, columns.2),
                Some(scope)
            );
        }
        assert_eq!(Scope::from_columns("queue", None, Some(1)), None);
        assert_eq!(Scope::from_columns("team", None, None), None);
    }

    #[test]
    fn heading_is_one_short_clean_line() {
        assert_eq!(Heading::parse("  Greeting ").unwrap().as_str(), "Greeting");
        assert!(Heading::parse(&"ø".repeat(MAX_HEADING_CHARS)).is_ok());
        for bad in ["", "   ", "two\nlines", "bell\u{7}"] {
            assert_eq!(Heading::parse(bad), Err(PredefinedError::InvalidHeading));
        }
        let long = "ø".repeat(MAX_HEADING_CHARS + 1);
        assert_eq!(Heading::parse(&long), Err(PredefinedError::InvalidHeading));
    }

    #[test]
    fn body_follows_the_chat_message_rules() {
        let body = Body::parse("Hello!\n\nHow can I help?\tThanks".into()).unwrap();
        assert_eq!(body.as_str(), "Hello!\n\nHow can I help?\tThanks");
        assert_eq!(Body::parse(" \n ".into()), Err(PredefinedError::EmptyBody));
        assert_eq!(
            Body::parse("x".repeat(4001)),
            Err(PredefinedError::BodyTooLong)
        );
        assert_eq!(
            Body::parse("nul\u{0}".into()),
            Err(PredefinedError::InvalidBody)
        );
    }

    #[test]
    fn a_reorder_must_name_every_message_once() {
        let stored = [PredefinedId(1), PredefinedId(2), PredefinedId(3)];
        let ids = |raw: &[i64]| raw.iter().map(|&i| PredefinedId(i)).collect::<Vec<_>>();
        assert!(is_complete_order(&stored, &ids(&[3, 1, 2])));
        assert!(!is_complete_order(&stored, &ids(&[3, 1])));
        assert!(!is_complete_order(&stored, &ids(&[3, 1, 1])));
        assert!(!is_complete_order(&stored, &ids(&[3, 1, 2, 4])));
        assert!(!is_complete_order(&stored, &ids(&[3, 1, 4])));
        assert!(is_complete_order(&[], &[]));
    }
}
