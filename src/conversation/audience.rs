//! The audience filter: the one place that decides which party may see a
//! chat-log event, and renders it for them. Every live delivery and every
//! replay goes through [`Rendered`]; private (agents-only) events can reach a
//! customer by no other path.

use crate::domain::conversation::Party;
use crate::outbox::Frame;
use crate::protocol::ServerEvent;
use crate::store::NewEvent;
use std::cell::OnceCell;

/// An event rendered lazily, once per kind of recipient.
pub struct Rendered<'a> {
    event: &'a NewEvent,
    for_agents: OnceCell<Frame>,
    for_customer: OnceCell<Frame>,
}

impl<'a> Rendered<'a> {
    pub fn new(event: &'a NewEvent) -> Self {
        Self {
            event,
            for_agents: OnceCell::new(),
            for_customer: OnceCell::new(),
        }
    }

    /// The frame `party` may receive, or None if the event is not for them.
    pub fn frame_for(&self, party: Party) -> Option<Frame> {
        if !self.event.audience.admits(party) {
            return None;
        }
        let cell = match party {
            Party::Customer => &self.for_customer,
            Party::Agent(_) => &self.for_agents,
        };
        Some(
            cell.get_or_init(|| ServerEvent::from_record(self.event, party).to_frame())
                .clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::conversation::Audience;
    use crate::domain::ids::{ConversationId, UserId};
    use crate::store::{Author, EventKind};

    fn event(audience: Audience, public_seq: Option<i64>) -> NewEvent {
        NewEvent {
            conversation: ConversationId::random(),
            seq: 7,
            public_seq,
            kind: EventKind::Message,
            audience,
            author: Author::Agent {
                id: UserId(1),
                name: "Alice".into(),
            },
            body: "internal note".into(),
            data: None,
            client_msg_id: Some("n1".into()),
            created_at: 1,
            attachments: Vec::new(),
        }
    }

    #[test]
    fn private_events_never_render_for_the_customer() {
        let private = event(Audience::AgentsOnly, None);
        let rendered = Rendered::new(&private);
        assert!(rendered.frame_for(Party::Customer).is_none());
        assert!(rendered.frame_for(Party::Agent(UserId(2))).is_some());
    }

    #[test]
    fn customers_see_the_public_numbering() {
        let public = event(Audience::Everyone, Some(3));
        let rendered = Rendered::new(&public);
        let customer: serde_json::Value =
            serde_json::from_str(&rendered.frame_for(Party::Customer).unwrap()).unwrap();
        let agent: serde_json::Value =
            serde_json::from_str(&rendered.frame_for(Party::Agent(UserId(2))).unwrap()).unwrap();
        assert_eq!(customer["seq"], 3);
        assert_eq!(agent["seq"], 7);
    }
}
