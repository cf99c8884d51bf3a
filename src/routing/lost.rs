//! Lost agents: what the router does when a console stays away past the
//! agent grace period (docs/protocol.md 6.5). Their pending offer goes to
//! others, each of their active chats goes on without them (back to the
//! queue with its history when they were its last agent), and supervisors
//! get an alert in the live view.

use super::actor::{logged, RouterActor};
use super::{Alert, AlertKind};
use crate::clock::wall_ms;
use crate::conversation::{ChatError, Lost};
use crate::domain::ids::{ConversationId, UserId};
use crate::domain::routing::{Answering, OfferOutcome};
use crate::outbox::Outbox;
use crate::protocol::OfferEndReason;
use crate::store::RoutingEventKind;
use std::collections::HashSet;
use std::time::Duration;

/// Supervisor alerts kept in memory for the live view.
const KEPT_ALERTS: usize = 50;
/// A lost agent whose chats could not be handed on (the store is down) is
/// tried again this much later.
const RETRY_LOST: Duration = Duration::from_secs(5);

impl RouterActor {
    /// Hands on the offers and chats of every agent away for longer than the
    /// grace period.
    pub(super) async fn lose_agents(&mut self) {
        let now = self.now();
        let grace = self.config.agent_grace.as_millis() as u64;
        for agent in self.state.lost_agents(now, grace) {
            self.lose_agent(agent).await;
        }
    }

    async fn lose_agent(&mut self, agent: UserId) {
        tracing::warn!(%agent, "agent console stayed away past the grace period");
        self.away_profiles.remove(&agent);
        match self.state.agent_offline(agent) {
            Some((chat, Answering::Chat { version })) => {
                self.release(&chat, agent, version, OfferOutcome::Withdrawn)
                    .await;
            }
            Some((chat, Answering::Invite { invite_id, version })) => {
                self.release_invite(&chat, agent, invite_id, version, OfferOutcome::Withdrawn)
                    .await;
            }
            None => {}
        }
        if !self.hand_on_chats(agent).await {
            // Known as away again, so the timer comes back to them soon.
            let grace = self.config.agent_grace.as_millis() as u64;
            let retry = RETRY_LOST.as_millis() as u64;
            let since = self.now().saturating_sub(grace.saturating_sub(retry));
            self.state.expect_agent(agent, since);
        }
    }

    /// Takes a lost agent out of each of their active chats. Returns false
    /// if the store failed for any of them (those are tried again).
    async fn hand_on_chats(&mut self, agent: UserId) -> bool {
        let open = match self.store.open_conversations_of(agent).await {
            Ok(open) => open,
            Err(e) => {
                logged(e);
                return false;
            }
        };
        if open.is_empty() {
            return true;
        }
        let name = match self.store.user_by_id(agent).await {
            Ok(user) => user.map_or_else(|| "Agent".into(), |u| u.display_name),
            Err(e) => {
                logged(e);
                return false;
            }
        };
        self.alert(AlertKind::AgentLost, agent, None);
        let mut all_done = true;
        for record in open {
            let chat = record.id;
            match self.conversations.agent_lost(&chat, agent, &name).await {
                Ok(Lost::Left) => {}
                Ok(Lost::Requeued { record, customers }) => {
                    self.requeued(record, customers).await;
                    self.alert(AlertKind::ChatRequeued, agent, Some(chat));
                }
                Ok(Lost::Ended { agents }) => {
                    self.alert(AlertKind::ChatEnded, agent, Some(chat.clone()));
                    self.chat_finished(chat, agents).await;
                }
                Err(ChatError::Ended | ChatError::NotParticipant | ChatError::NotFound) => {}
                Err(e) => {
                    tracing::warn!(error = %e, conversation = %chat, %agent, "could not hand on a lost agent's chat");
                    all_done = false;
                }
            }
        }
        all_done
    }

    /// A chat that went back to the queue: routed again like a new one,
    /// with its customers told their place.
    async fn requeued(&mut self, record: crate::store::ConversationRecord, customers: Vec<Outbox>) {
        let chat = record.id.clone();
        // An invitation the lost agent made is void: nobody is in the chat
        // to be joined. The agent who accepts it from the queue can invite
        // again.
        self.drop_invite(
            &chat,
            RoutingEventKind::InviteCancelled,
            OfferEndReason::Withdrawn,
        )
        .await;
        let variables = match self.store.customer_variables(&chat).await {
            Ok(variables) => variables,
            Err(e) => {
                // The customer card shows fewer details; routing goes on.
                logged(e);
                Vec::new()
            }
        };
        self.track(record, HashSet::new(), variables);
        if !customers.is_empty() {
            self.state.set_customer_away(&chat, None);
            self.customers.insert(chat, customers);
        }
    }

    fn alert(&mut self, kind: AlertKind, agent: UserId, conversation: Option<ConversationId>) {
        if self.alerts.len() == KEPT_ALERTS {
            self.alerts.pop_front();
        }
        self.alerts.push_back(Alert {
            at_ms: wall_ms(),
            kind,
            agent,
            conversation,
        });
    }
}
