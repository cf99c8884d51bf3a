//! Typed identifiers, so an agent id can never be passed where a queue id is meant.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

int_id!(
    /// A user account (agent or supervisor).
    UserId
);
int_id!(
    /// A chat queue.
    QueueId
);
int_id!(
    /// A profile: the queues and media types an agent logs in with.
    ProfileId
);
int_id!(
    /// A predefined message (a canned text an agent can pick in a chat).
    PredefinedId
);
int_id!(
    /// A site: one website that embeds the widget.
    SiteId
);

/// A conversation. Random (UUID v4) because customers address their chat by it;
/// knowing one id must not reveal another.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConversationId(pub String);

impl ConversationId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// Parses a client-supplied id; anything that is not a UUID is rejected
    /// before it reaches the store.
    pub fn parse(raw: &str) -> Option<Self> {
        uuid::Uuid::parse_str(raw)
            .ok()
            .map(|u| Self(u.hyphenated().to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An uploaded file. Random (UUID v4) like conversation ids: it names the
/// file on disk and in download URLs, so knowing one must not reveal another.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AttachmentId(pub String);

impl AttachmentId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// Parses a client-supplied id; anything that is not a UUID is rejected
    /// before it reaches the store or the file system.
    pub fn parse(raw: &str) -> Option<Self> {
        uuid::Uuid::parse_str(raw)
            .ok()
            .map(|u| Self(u.hyphenated().to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AttachmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_id_parse_normalises_and_rejects_garbage() {
        let id = ConversationId::random();
        assert_eq!(ConversationId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(ConversationId::parse(&id.as_str().to_uppercase()), Some(id));
        assert_eq!(ConversationId::parse("../etc/passwd"), None);
        assert_eq!(ConversationId::parse(""), None);
    }

    #[test]
    fn attachment_id_parse_rejects_paths() {
        let id = AttachmentId::random();
        assert_eq!(AttachmentId::parse(id.as_str()), Some(id));
        assert_eq!(AttachmentId::parse("../../etc/passwd"), None);
        assert_eq!(AttachmentId::parse("a/b"), None);
    }
}
