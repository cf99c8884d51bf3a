//! Agent commands that involve other agents: invitations (conference and
//! transfer) and leaving a chat.

use super::agent_ws::{conversation_error, AgentSession};
use crate::conversation::Left;
use crate::domain::ids::{ConversationId, QueueId, UserId};
use crate::domain::routing::InviteTarget;
use crate::outbox::Frame;
use crate::protocol::ErrorCode;
use crate::routing::InviteRequest;
use crate::transcript_mail::spawn_automatic_transcript;

impl AgentSession {
    /// Invites a named agent or any available agent of a queue into a chat
    /// this agent is in.
    pub(super) async fn invite(
        &mut self,
        raw: &str,
        agent: Option<UserId>,
        queue: Option<QueueId>,
        transfer: bool,
    ) -> Vec<Frame> {
        let Some(id) = ConversationId::parse(raw) else {
            return conversation_error(ErrorCode::NotFound, "conversation not found", raw, None);
        };
        let target = match (agent, queue) {
            (Some(agent), None) => InviteTarget::Agent(agent),
            (None, Some(queue)) => InviteTarget::Queue(queue),
            _ => {
                return conversation_error(
                    ErrorCode::InvalidInvite,
                    "invite exactly one of agent_id or queue_id",
                    raw,
                    None,
                )
            }
        };
        let store = &self.state.store;
        let (record, participants, queues, variables) = match (
            store.conversation(&id).await,
            store.conversation_agents(&id).await,
            store.list_queues().await,
            store.customer_variables(&id).await,
        ) {
            (Ok(Some(record)), Ok(participants), Ok(queues), Ok(variables)) => {
                (record, participants, queues, variables)
            }
            (Ok(None), _, _, _) => {
                return conversation_error(ErrorCode::NotFound, "conversation not found", raw, None)
            }
            _ => {
                return conversation_error(
                    ErrorCode::Unavailable,
                    "store unavailable; retry",
                    raw,
                    None,
                )
            }
        };
        if record.state.is_final() {
            return conversation_error(
                ErrorCode::ConversationEnded,
                "the conversation has ended",
                raw,
                None,
            );
        }
        if !participants.contains(&self.user.id) {
            return conversation_error(
                ErrorCode::NotParticipant,
                "you are not in this conversation",
                raw,
                None,
            );
        }
        match target {
            InviteTarget::Agent(agent) if participants.contains(&agent) => {
                return conversation_error(
                    ErrorCode::AlreadyInChat,
                    "that agent is already in the chat",
                    raw,
                    None,
                )
            }
            InviteTarget::Queue(queue) if !queues.iter().any(|q| q.id == queue) => {
                return conversation_error(ErrorCode::InvalidInvite, "no such queue", raw, None)
            }
            _ => {}
        }
        let request = InviteRequest {
            chat: id.clone(),
            inviter: self.user.id,
            inviter_name: self.user.display_name.clone(),
            target,
            transfer,
            participants,
            queue: record.queue,
            customer: crate::protocol::CustomerView::new(&record, variables),
        };
        match self.state.router.invite(request).await {
            Ok(_) => Vec::new(), // the `invited` event reaches every agent in the chat
            Err(e) => conversation_error(e.code(), e.to_string(), raw, None),
        }
    }

    pub(super) async fn cancel_invite(&mut self, raw: &str) -> Vec<Frame> {
        let Some(id) = ConversationId::parse(raw) else {
            return conversation_error(
                ErrorCode::NoInvitePending,
                "no invitation of yours is pending",
                raw,
                None,
            );
        };
        match self.state.router.cancel_invite(id, self.user.id).await {
            Ok(()) => Vec::new(), // the `invite_ended` event follows
            Err(e) => conversation_error(e.code(), e.to_string(), raw, None),
        }
    }

    /// Leaves a chat other agents stay in (the last agent must end it or
    /// transfer it while the customer is connected).
    pub(super) async fn leave(&mut self, raw: &str) -> Vec<Frame> {
        let Some(id) = ConversationId::parse(raw) else {
            return conversation_error(ErrorCode::NotFound, "conversation not found", raw, None);
        };
        let name = self.user.display_name.clone();
        match self
            .state
            .conversations
            .leave(&id, self.user.id, &name)
            .await
        {
            Ok(Left::Stayed) => {
                self.state.router.agent_left(self.user.id).await;
                self.attached.remove(&id);
                Vec::new()
            }
            Ok(Left::Ended) => {
                self.state
                    .router
                    .chat_finished(id.clone(), vec![self.user.id])
                    .await;
                spawn_automatic_transcript(
                    self.state.store.clone(),
                    self.state.mailer.clone(),
                    id.clone(),
                );
                self.attached.remove(&id);
                Vec::new()
            }
            Err(e) => conversation_error(e.code(), e.to_string(), raw, None),
        }
    }

    /// After the invited agent joined a transfer, the inviter leaves.
    pub(super) async fn complete_transfer(&mut self, id: &ConversationId, inviter: UserId) {
        let name = match self.state.store.user_by_id(inviter).await {
            Ok(Some(user)) => user.display_name,
            _ => format!("agent {inviter}"),
        };
        match self.state.conversations.leave(id, inviter, &name).await {
            Ok(_) => self.state.router.agent_left(inviter).await,
            Err(e) => {
                tracing::warn!(error = %e, conversation = %id, "transfer: the inviter could not leave")
            }
        }
    }
}
