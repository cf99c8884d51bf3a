//! Invitations: the router's part of inviting another agent into a running
//! chat. Routed like new chats (one offer per agent, answers, timeouts), made
//! durable with conditional updates on the `invites` row, and reported in the
//! chat log as agents-only events.

use super::actor::{logged, RouterActor};
use super::{Accepted, InviteRequest, RouterError};
use crate::clock::wall_ms;
use crate::conversation::Note;
use crate::domain::conversation::Audience;
use crate::domain::ids::{ConversationId, QueueId, UserId};
use crate::domain::routing::{InviteInit, InviteTarget, OfferOutcome, RoutingError};
use crate::protocol::{CustomerView, EventData, InviteView, OfferEndReason, ServerEvent};
use crate::store::{EventKind, NewInvite, RoutingEventKind, StoreError};

/// What an invitation's offer shows, kept while it is pending.
pub(super) struct InviteCard {
    invite_id: i64,
    inviter: UserId,
    inviter_name: String,
    transfer: bool,
    queue: QueueId,
    queue_name: String,
    customer: CustomerView,
    /// "Bob" or "queue Support": for the log.
    target: String,
}

impl RouterActor {
    /// Starts an invitation after checking the one-pending rule (here and,
    /// for every node, by the store's unique index) and a named agent's
    /// availability.
    pub(super) async fn invite(&mut self, r: InviteRequest) -> Result<i64, RouterError> {
        if self.state.has_invite(&r.chat) {
            return Err(RouterError::InvitePending);
        }
        if let InviteTarget::Agent(agent) = r.target {
            if !self.state.can_take_invite(agent) {
                return Err(RouterError::AgentUnavailable);
            }
        }
        let (target_agent, queue) = match r.target {
            InviteTarget::Agent(a) => (Some(a), None),
            InviteTarget::Queue(q) => (None, Some(q)),
        };
        let record = match self
            .store
            .create_invite(NewInvite {
                conversation: r.chat.clone(),
                inviter: r.inviter,
                target_agent,
                queue,
                transfer: r.transfer,
                now: wall_ms(),
            })
            .await
        {
            Ok(record) => record,
            Err(StoreError::Conflict) => return Err(RouterError::InvitePending),
            Err(e) => return Err(logged(e)),
        };
        let target = self.target_label(r.target).await;
        self.state.add_invite(
            r.chat.clone(),
            InviteInit {
                invite_id: record.id,
                target: r.target,
                chat_queue: r.queue,
                excluded: r.participants.iter().copied().collect(),
                version: record.version,
                created_at_ms: wall_ms(),
            },
        );
        let body = if r.transfer {
            format!("{} asked {target} to take over the chat", r.inviter_name)
        } else {
            format!("{} invited {target}", r.inviter_name)
        };
        let note = Note {
            kind: EventKind::Invited,
            audience: Audience::AgentsOnly,
            body,
            data: Some(EventData::Invited {
                target: target.clone(),
                transfer: r.transfer,
            }),
        };
        if let Err(e) = self.conversations.note(&r.chat, note).await {
            tracing::warn!(error = %e, "could not log the invitation");
        }
        let queue_name = self.queue_name(r.queue);
        self.invite_cards.insert(
            r.chat,
            InviteCard {
                invite_id: record.id,
                inviter: r.inviter,
                inviter_name: r.inviter_name,
                transfer: r.transfer,
                queue: r.queue,
                queue_name,
                customer: r.customer,
                target,
            },
        );
        Ok(record.id)
    }

    async fn target_label(&self, target: InviteTarget) -> String {
        match target {
            InviteTarget::Queue(queue) => format!("queue {}", self.queue_name(queue)),
            InviteTarget::Agent(agent) => match self.store.user_by_id(agent).await {
                Ok(Some(user)) => user.display_name,
                _ => format!("agent {agent}"),
            },
        }
    }

    /// Only the inviter may take back a pending invitation.
    pub(super) async fn cancel_invite(
        &mut self,
        chat: ConversationId,
        inviter: UserId,
    ) -> Result<(), RouterError> {
        match self.invite_cards.get(&chat) {
            Some(card) if card.inviter == inviter => {}
            _ => return Err(RouterError::NoInvitePending),
        }
        if self
            .drop_invite(
                &chat,
                RoutingEventKind::InviteCancelled,
                OfferEndReason::Cancelled,
            )
            .await
        {
            Ok(())
        } else {
            Err(RouterError::Unavailable)
        }
    }

    /// Ends a pending invitation (cancelled, or its chat ended): in the store,
    /// in memory, at the offered agent and in the log. False if the store
    /// could not record it.
    pub(super) async fn drop_invite(
        &mut self,
        chat: &ConversationId,
        kind: RoutingEventKind,
        reason: OfferEndReason,
    ) -> bool {
        let Some(card) = self.invite_cards.get(chat) else {
            return true;
        };
        if let Err(e) = self
            .store
            .close_invite(card.invite_id, kind, wall_ms())
            .await
        {
            self.store_failed(e);
            return false;
        }
        if let Some((_, Some(agent))) = self.state.remove_invite(chat) {
            self.push_withdrawn(agent, chat, reason);
        }
        self.end_invite_in_log(chat, "cancelled").await;
        true
    }

    async fn end_invite_in_log(&mut self, chat: &ConversationId, reason: &str) {
        let Some(card) = self.invite_cards.remove(chat) else {
            return;
        };
        let note = Note {
            kind: EventKind::InviteEnded,
            audience: Audience::AgentsOnly,
            body: format!("The invitation of {} was {reason}", card.target),
            data: Some(EventData::InviteEnded {
                target: card.target,
                reason: reason.to_owned(),
            }),
        };
        // A chat that just ended refuses notes; nothing is lost then.
        let _ = self.conversations.note(chat, note).await;
    }

    pub(super) async fn accept_invite(
        &mut self,
        agent: UserId,
        chat: ConversationId,
        invite_id: i64,
        version: i64,
    ) -> Result<Accepted, RouterError> {
        match self
            .store
            .accept_invite(invite_id, agent, version, wall_ms())
            .await
        {
            Ok(Some(_)) => {
                let now = self.now();
                self.state.invite_accepted(agent, &chat, now);
                self.push_status(agent);
                let card = self.invite_cards.remove(&chat);
                Ok(Accepted::Invite {
                    inviter: card.as_ref().map_or(agent, |c| c.inviter),
                    transfer: card.is_some_and(|c| c.transfer),
                })
            }
            Ok(None) => {
                self.state.remove_invite(&chat);
                self.invite_cards.remove(&chat);
                Err(RouterError::Routing(RoutingError::OfferWithdrawn))
            }
            Err(e) => Err(logged(e)),
        }
    }

    /// An invitation offer ended unanswered. A named invitation is then
    /// over; a queue invitation goes on to the next available agent.
    pub(super) async fn release_invite(
        &mut self,
        chat: &ConversationId,
        agent: UserId,
        invite_id: i64,
        version: i64,
        outcome: OfferOutcome,
    ) -> bool {
        let kind = match outcome {
            OfferOutcome::Rejected => RoutingEventKind::InviteRejected,
            OfferOutcome::TimedOut => RoutingEventKind::InviteTimedOut,
            _ => RoutingEventKind::Withdrawn,
        };
        let new_version = match self
            .store
            .release_invite(invite_id, agent, version, kind, wall_ms())
            .await
        {
            Ok(Some(v)) => v,
            Ok(None) => {
                self.state.remove_invite(chat);
                self.invite_cards.remove(chat);
                return true;
            }
            Err(e) => {
                self.store_failed(e);
                return false;
            }
        };
        if self
            .state
            .invite_released(chat, agent, outcome, new_version)
        {
            if let Err(e) = self.store.close_invite(invite_id, kind, wall_ms()).await {
                self.store_failed(e);
            }
            let reason = if outcome == OfferOutcome::TimedOut {
                "not answered"
            } else {
                "declined"
            };
            self.end_invite_in_log(chat, reason).await;
        }
        true
    }

    /// The offer an invited agent sees.
    pub(super) fn invite_offer_event(
        &self,
        chat: &ConversationId,
        deadline: u64,
    ) -> Option<ServerEvent> {
        let card = self.invite_cards.get(chat)?;
        Some(ServerEvent::ChatOffered {
            conversation_id: chat.0.clone(),
            queue_id: card.queue,
            queue_name: card.queue_name.clone(),
            customer: card.customer.clone(),
            expires_in_ms: deadline.saturating_sub(self.now()),
            invite: Some(InviteView {
                inviter: card.inviter_name.clone(),
                transfer: card.transfer,
            }),
        })
    }

    /// Makes every invitation offer possible now. False on a store failure.
    pub(super) async fn route_invites(&mut self) -> bool {
        while let Some((chat, agent, invite_id, version)) = self.state.next_invite_offer() {
            match self
                .store
                .try_offer_invite(invite_id, agent, version, wall_ms())
                .await
            {
                Ok(Some(new_version)) => {
                    let now = self.now();
                    let Some(offer) = self.state.invite_offer_made(&chat, agent, new_version, now)
                    else {
                        continue;
                    };
                    if let (Some(event), Some(link)) = (
                        self.invite_offer_event(&chat, offer.deadline),
                        self.agents.get(&agent),
                    ) {
                        link.outbox.push(&event);
                    }
                }
                Ok(None) => {
                    self.state.remove_invite(&chat);
                    self.invite_cards.remove(&chat);
                }
                Err(e) => {
                    self.store_failed(e);
                    return false;
                }
            }
        }
        true
    }
}
