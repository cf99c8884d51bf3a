//! Accounts, profiles and agent status: the vocabulary routing decisions are made in.

use super::ids::{ProfileId, QueueId, UserId};
use serde::{Deserialize, Serialize};

/// What a user may do. Supervisors configure; agents take chats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Agent,
    Supervisor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "agent" => Some(Role::Agent),
            "supervisor" => Some(Role::Supervisor),
            _ => None,
        }
    }
}

/// The media types a profile can carry. Only chat exists today; the field is
/// there so that a profile without `chat` is never offered chats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Media {
    Chat,
}

impl Media {
    pub fn as_str(self) -> &'static str {
        match self {
            Media::Chat => "chat",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "chat" => Some(Media::Chat),
            _ => None,
        }
    }
}

/// A profile an agent logs in with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub id: ProfileId,
    pub name: String,
    pub queues: Vec<QueueId>,
    pub media: Vec<Media>,
}

impl Profile {
    pub fn takes_chat(&self) -> bool {
        self.media.contains(&Media::Chat)
    }
}

/// A queue and the routing rules attached to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queue {
    pub id: QueueId,
    pub name: String,
    /// Seconds an agent has to answer an offer before it counts as a reject.
    pub offer_timeout_secs: u32,
    /// Higher is served first.
    pub priority: i32,
}

/// Reason recorded when an agent let an offer time out.
pub const NO_ANSWER_REASON: &str = "No answer";
/// Longest accepted not-ready reason, in characters.
pub const MAX_REASON_CHARS: usize = 60;

/// An agent's availability. "Offline" is not a status an agent picks; it is
/// what the agent is while no console is connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AgentStatus {
    Ready,
    NotReady { reason: String },
    Offline,
}

impl AgentStatus {
    /// The label shown in the console, with the number of open chats:
    /// "Ready (2)", "Not ready: Pause (1)".
    pub fn label(&self, open_chats: u32) -> String {
        match self {
            AgentStatus::Ready => format!("Ready ({open_chats})"),
            AgentStatus::NotReady { reason } => format!("Not ready: {reason} ({open_chats})"),
            AgentStatus::Offline => format!("Offline ({open_chats})"),
        }
    }

    /// Builds a not-ready status from a client-supplied reason.
    pub fn not_ready(reason: &str) -> Result<Self, &'static str> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err("a not-ready status needs a reason");
        }
        if reason.chars().count() > MAX_REASON_CHARS || reason.chars().any(char::is_control) {
            return Err("reason is too long or contains control characters");
        }
        Ok(AgentStatus::NotReady {
            reason: reason.to_owned(),
        })
    }
}

/// A user as the rest of the server sees it (never carries the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// Maximum number of concurrent chats.
    pub capacity: u32,
    /// A disabled user cannot log in and has no live session.
    pub disabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_shows_open_chat_count() {
        assert_eq!(AgentStatus::Ready.label(2), "Ready (2)");
        let pause = AgentStatus::not_ready("Pause").unwrap();
        assert_eq!(pause.label(0), "Not ready: Pause (0)");
    }

    #[test]
    fn not_ready_needs_a_clean_reason() {
        assert!(AgentStatus::not_ready("  ").is_err());
        assert!(AgentStatus::not_ready("a\u{7}b").is_err());
        assert!(AgentStatus::not_ready(&"x".repeat(61)).is_err());
        assert_eq!(
            AgentStatus::not_ready(" Lunch "),
            Ok(AgentStatus::NotReady {
                reason: "Lunch".into()
            })
        );
    }

    #[test]
    fn profile_without_chat_takes_no_chats() {
        let p = Profile {
            id: ProfileId(1),
            name: "mail".into(),
            queues: vec![QueueId(1)],
            media: vec![],
        };
        assert!(!p.takes_chat());
    }
}
