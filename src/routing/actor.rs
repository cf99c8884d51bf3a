//! The router actor: executes what [`RoutingState`] decides.

use super::{
    Accepted, AgentSignIn, AgentState, Alert, Command, RouterConfig, RouterError, RoutingSnapshot,
};
use crate::clock::wall_ms;
use crate::conversation::{ChatError, Conversations};
use crate::domain::account::{AgentStatus, Queue};
use crate::domain::conversation::{ConversationState, Party};
use crate::domain::customer::CustomerVariable;
use crate::domain::ids::{ConversationId, QueueId, UserId};
use crate::domain::routing::{
    self, Answering, Millis, OfferOutcome, QueueRule, RoutingState, WaitingChatInit,
};
use crate::outbox::{CloseReason, Outbox};
use crate::protocol::{CustomerView, OfferEndReason, ServerEvent};
use crate::store::{ConversationRecord, DynStore, Presence, RoutingEventKind, StoreError};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// After a store failure, routing is retried this much later.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// Most offers planned and committed together by `route()`.
const OFFER_BATCH: usize = 512;

/// Queue positions are announced at most this often. Working out every
/// waiting chat's place sorts each queue, so doing it after every command
/// made a burst of n joins cost O(n²); coalesced, a burst costs one sort per
/// interval, and a customer hears of a change at most this much later.
/// Only places that changed since a customer was last told are sent.
const PLACES_EVERY: Duration = Duration::from_millis(200);

/// What an offer shows besides the chat id.
struct ChatCard {
    queue: QueueId,
    customer: CustomerView,
}

pub(super) struct AgentLink {
    pub(super) outbox: Outbox,
    profile: crate::domain::ids::ProfileId,
}

pub(super) struct RouterActor {
    pub(super) state: RoutingState,
    pub(super) store: DynStore,
    pub(super) conversations: Conversations,
    pub(super) config: RouterConfig,
    pub(super) agents: HashMap<UserId, AgentLink>,
    /// What the offer of a pending invitation shows, by chat.
    pub(super) invite_cards: HashMap<ConversationId, super::invites::InviteCard>,
    /// Connections of waiting customers (a customer may have several tabs).
    pub(super) customers: HashMap<ConversationId, Vec<Outbox>>,
    cards: HashMap<ConversationId, ChatCard>,
    queue_names: HashMap<QueueId, String>,
    epoch: Instant,
    retry_at: Option<Instant>,
    /// When queue positions were last announced.
    places_at: Instant,
    /// Recent events supervisors should see (oldest first).
    pub(super) alerts: VecDeque<Alert>,
    /// The profile of each agent whose console is away (grace period), so
    /// that a status change meanwhile (an offer timing out) is saved.
    pub(super) away_profiles: HashMap<UserId, crate::domain::ids::ProfileId>,
}

fn rule(queue: &Queue) -> QueueRule {
    QueueRule {
        priority: queue.priority,
        offer_timeout_ms: u64::from(queue.offer_timeout_secs) * 1000,
    }
}

pub(super) fn logged(e: StoreError) -> RouterError {
    tracing::warn!(error = %e, "routing store operation failed");
    RouterError::Unavailable
}

/// A router that stops with connections registered (a panic unwinding it,
/// or shutdown) closes them with code 1012: consoles and waiting customers
/// reconnect and register with the router that replaces it
/// (`super::supervise`). Otherwise they would stay open but unknown to it.
impl Drop for RouterActor {
    fn drop(&mut self) {
        let agents = self.agents.values().map(|link| &link.outbox);
        for outbox in agents.chain(self.customers.values().flatten()) {
            outbox.close(CloseReason::Restarting);
        }
    }
}

impl RouterActor {
    /// Rebuilds routing from the store: queues, and every waiting or offered
    /// chat. Offers pending at a crash are released (their agents are no
    /// longer connected to this process) and routed again.
    pub(super) async fn recover(
        store: DynStore,
        conversations: Conversations,
        config: RouterConfig,
    ) -> anyhow::Result<Self> {
        let mut actor = Self {
            state: RoutingState::new(),
            store,
            conversations,
            config,
            agents: HashMap::new(),
            customers: HashMap::new(),
            invite_cards: HashMap::new(),
            cards: HashMap::new(),
            queue_names: HashMap::new(),
            epoch: Instant::now(),
            retry_at: None,
            places_at: Instant::now(),
            alerts: VecDeque::new(),
            away_profiles: HashMap::new(),
        };
        for queue in actor.store.list_queues().await? {
            actor.add_queue(queue);
        }
        // Invitations do not survive a restart: their offers went with the
        // old process. They are closed as cancelled; the inviter can invite again.
        for invite in actor.store.open_invites().await? {
            actor
                .store
                .close_invite(invite.id, RoutingEventKind::InviteCancelled, wall_ms())
                .await?;
        }
        for queued in actor.store.queued_conversations().await? {
            let rejected: HashSet<UserId> = queued.rejected_by.into_iter().collect();
            if let Some(record) = actor.release_stale_offer(queued.record).await? {
                let variables = actor.store.customer_variables(&record.id).await?;
                actor.track(record, rejected, variables);
            }
        }
        // Agents in active chats had consoles on the old process: they get
        // the grace period to sign in again before their chats are handed on.
        let now = actor.now();
        for agent in actor.store.agents_in_active_chats().await? {
            actor.state.expect_agent(agent, now);
        }
        Ok(actor)
    }

    /// Makes a queued chat routable by this process: an offer recorded in
    /// the store (made by a process that is gone) is released. If the row
    /// changes underneath (the old process released it itself), the fresh
    /// row is used. Returns None when the chat is no longer queued.
    async fn release_stale_offer(
        &self,
        mut record: ConversationRecord,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        for _ in 0..3 {
            match (record.state, record.offered_to) {
                (ConversationState::Waiting, _) => return Ok(Some(record)),
                (ConversationState::Offered, Some(agent)) => {
                    let released = self
                        .store
                        .release_offer(
                            &record.id,
                            agent,
                            record.version,
                            RoutingEventKind::Withdrawn,
                            wall_ms(),
                        )
                        .await?;
                    if let Some(version) = released {
                        record.state = ConversationState::Waiting;
                        record.offered_to = None;
                        record.version = version;
                        return Ok(Some(record));
                    }
                }
                _ => return Ok(None),
            }
            match self.store.conversation(&record.id).await? {
                Some(fresh) => record = fresh,
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    pub(super) fn now(&self) -> Millis {
        self.epoch.elapsed().as_millis() as u64
    }

    fn instant(&self, at: Millis) -> Instant {
        self.epoch + Duration::from_millis(at)
    }

    async fn reload_queues(&mut self) {
        match self.store.list_queues().await {
            Ok(queues) => queues.into_iter().for_each(|q| self.add_queue(q)),
            Err(e) => drop(logged(e)),
        }
    }

    fn add_queue(&mut self, queue: Queue) {
        self.state.set_queue(queue.id, rule(&queue));
        self.queue_names.insert(queue.id, queue.name);
    }

    /// Starts routing a chat. Its customer counts as away until they connect.
    pub(super) fn track(
        &mut self,
        record: ConversationRecord,
        rejected_by: HashSet<UserId>,
        variables: Vec<CustomerVariable>,
    ) {
        let now = self.now();
        self.cards.insert(
            record.id.clone(),
            ChatCard {
                queue: record.queue,
                customer: CustomerView::new(&record, variables),
            },
        );
        self.state.enqueue(
            record.id,
            WaitingChatInit {
                queue: record.queue,
                enqueued_at_ms: record.created_at,
                version: record.version,
                rejected_by,
                customer_away_since: Some(now),
            },
        );
    }

    pub(super) async fn run(mut self, rx: &mut mpsc::Receiver<Command>) {
        // Whether anything happened since queue positions were last announced.
        let mut places_stale = true;
        loop {
            let grace = self.config.customer_grace.as_millis() as u64;
            let agent_grace = self.config.agent_grace.as_millis() as u64;
            let wake = [
                self.state
                    .next_deadline(grace, agent_grace)
                    .map(|at| self.instant(at)),
                self.retry_at,
            ]
            .into_iter()
            .flatten()
            .min();
            let places_due = Some(self.places_at + PLACES_EVERY);
            tokio::select! {
                command = rx.recv() => match command {
                    // With it, whatever else is already waiting (`super::batch`).
                    Some(command) => self.handle_waiting(command, rx).await,
                    None => break,
                },
                _ = sleep_until(wake) => self.on_timer().await,
                _ = sleep_until(places_due), if places_stale => {}
            }
            self.route().await;
            places_stale = true;
            if Instant::now() >= self.places_at + PLACES_EVERY {
                // Changes held back for a customer told recently are sent
                // at a later tick, even if no command comes to wake us.
                places_stale = self.announce_places();
                self.places_at = Instant::now();
            }
        }
    }

    pub(super) async fn handle(&mut self, command: Command) {
        match command {
            Command::SignIn { sign_in, reply } => {
                let _ = reply.send(self.sign_in(sign_in).await);
            }
            Command::SignOut { agent, connection } => self.sign_out(agent, connection).await,
            Command::SetStatus {
                agent,
                status,
                reply,
            } => {
                let _ = reply.send(self.set_status(agent, status).await);
            }
            Command::Enqueue { record, variables } => {
                if self.state.queue_rule(record.queue).is_none() {
                    // Created outside this process (CLI, another node).
                    self.reload_queues().await;
                }
                if !self.state.is_waiting(&record.id) {
                    self.track(record, HashSet::new(), variables);
                }
            }
            Command::CustomerAttached { chat, outbox } => {
                if self.state.is_waiting(&chat) {
                    self.state.set_customer_away(&chat, None);
                    self.customers.entry(chat).or_default().push(outbox);
                }
            }
            Command::CustomerDetached { chat, connection } => {
                if let Some(outboxes) = self.customers.get_mut(&chat) {
                    outboxes.retain(|o| o.connection() != connection && !o.is_closed());
                    if outboxes.is_empty() {
                        self.customers.remove(&chat);
                        let now = self.now();
                        self.state.set_customer_away(&chat, Some(now));
                    }
                }
            }
            Command::Accept { agent, chat, reply } => {
                let _ = reply.send(self.accept(agent, chat).await);
            }
            Command::Reject { agent, chat, reply } => {
                let _ = reply.send(self.reject(agent, chat).await);
            }
            Command::ChatFinished { chat, agents } => self.chat_finished(chat, agents).await,
            Command::Invite { request, reply } => {
                let _ = reply.send(self.invite(request).await);
            }
            Command::CancelInvite {
                chat,
                inviter,
                reply,
            } => {
                let _ = reply.send(self.cancel_invite(chat, inviter).await);
            }
            Command::AgentLeft { agent } => {
                let now = self.now();
                self.state.chat_closed(agent, now);
                self.push_status(agent);
            }
            Command::QueueChanged { queue } => self.add_queue(queue),
            Command::Snapshot { reply } => {
                let _ = reply.send(RoutingSnapshot {
                    waiting: self.state.waiting_count(),
                    agents_online: self.agents.len(),
                });
            }
            Command::Online { reply } => {
                let online = self
                    .agents
                    .keys()
                    .filter_map(|id| self.state.agent_status(*id).map(|(s, _)| (*id, s)))
                    .collect();
                let _ = reply.send(online);
            }
            Command::Live { reply } => {
                let (queues, agents) = self.state.live(wall_ms());
                let alerts = self.alerts.iter().rev().cloned().collect();
                let _ = reply.send(super::LiveState {
                    queues,
                    agents,
                    alerts,
                });
            }
            #[cfg(test)]
            Command::Panic => panic!("injected router panic"),
        }
    }

    pub(super) fn queue_name(&self, queue: QueueId) -> String {
        self.queue_names.get(&queue).cloned().unwrap_or_default()
    }

    pub(super) fn push_status(&self, agent: UserId) {
        if let (Some(link), Some((status, open_chats))) =
            (self.agents.get(&agent), self.state.agent_status(agent))
        {
            link.outbox.push(&ServerEvent::Status {
                label: status.label(open_chats),
                status,
                open_chats,
            });
        }
    }

    pub(super) async fn save_presence(&self, agent: UserId) {
        let profile = match self.agents.get(&agent) {
            Some(link) => Some(link.profile),
            None => self.away_profiles.get(&agent).copied(),
        };
        let (Some(profile), Some((status, _))) = (profile, self.state.agent_status(agent)) else {
            return;
        };
        let presence = Presence {
            user: agent,
            profile: Some(profile),
            status,
            now: wall_ms(),
        };
        if let Err(e) = self.store.save_presence(&presence).await {
            tracing::warn!(error = %e, %agent, "could not save agent status");
        }
    }

    fn offer_event(&self, chat: &ConversationId, deadline: Millis) -> Option<ServerEvent> {
        let card = self.cards.get(chat)?;
        Some(ServerEvent::ChatOffered {
            conversation_id: chat.0.clone(),
            queue_id: card.queue,
            queue_name: self
                .queue_names
                .get(&card.queue)
                .cloned()
                .unwrap_or_default(),
            customer: card.customer.clone(),
            expires_in_ms: deadline.saturating_sub(self.now()),
            invite: None,
        })
    }

    pub(super) fn push_withdrawn(
        &self,
        agent: UserId,
        chat: &ConversationId,
        reason: OfferEndReason,
    ) {
        if let Some(link) = self.agents.get(&agent) {
            link.outbox.push(&ServerEvent::OfferWithdrawn {
                conversation_id: chat.0.clone(),
                reason,
            });
        }
    }

    async fn sign_in(&mut self, s: AgentSignIn) -> Result<AgentState, RouterError> {
        let previous = self.store.load_presence(s.agent).await.map_err(logged)?;
        let status = match previous {
            Some(p) if p.profile == Some(s.profile.id) => p.status,
            _ => AgentStatus::NotReady {
                reason: "Signed in".into(),
            },
        };
        let now = self.now();
        let pending = self.state.agent_online(
            s.agent,
            routing::AgentSignIn {
                queues: s.profile.queues.iter().copied().collect(),
                takes_chat: s.profile.takes_chat(),
                capacity: s.capacity,
                open_chats: s.open_chats,
                status,
            },
            now,
        );
        let link = AgentLink {
            outbox: s.outbox,
            profile: s.profile.id,
        };
        self.away_profiles.remove(&s.agent);
        if let Some(old) = self.agents.insert(s.agent, link) {
            if old.outbox.connection() != self.agents[&s.agent].outbox.connection() {
                old.outbox.close(CloseReason::Replaced);
            }
        }
        if let Some(chat) = pending {
            let event = match self.state.pending_offer(&chat) {
                Some(offer) => self.offer_event(&chat, offer.deadline),
                None => self
                    .state
                    .pending_invite_offer(&chat)
                    .and_then(|offer| self.invite_offer_event(&chat, offer.deadline)),
            };
            if let Some(event) = event {
                self.agents[&s.agent].outbox.push(&event);
            }
        }
        self.save_presence(s.agent).await;
        let (status, open_chats) = self
            .state
            .agent_status(s.agent)
            .ok_or(RouterError::Unavailable)?;
        Ok(AgentState { status, open_chats })
    }

    /// The console closed. The agent stays known, away, for the grace
    /// period: an offer they hold keeps its deadline and their chats stay
    /// theirs until then (`super::lost`).
    async fn sign_out(&mut self, agent: UserId, connection: u64) {
        if self.agents.get(&agent).map(|l| l.outbox.connection()) != Some(connection) {
            return; // a newer connection of this agent replaced it
        }
        if let Some(link) = self.agents.remove(&agent) {
            self.away_profiles.insert(agent, link.profile);
        }
        let now = self.now();
        self.state.agent_disconnected(agent, now);
    }

    async fn set_status(
        &mut self,
        agent: UserId,
        status: AgentStatus,
    ) -> Result<AgentState, RouterError> {
        let now = self.now();
        self.state.set_status(agent, status, now)?;
        self.save_presence(agent).await;
        self.push_status(agent);
        let (status, open_chats) = self
            .state
            .agent_status(agent)
            .ok_or(RouterError::Unavailable)?;
        Ok(AgentState { status, open_chats })
    }

    pub(super) async fn accept(
        &mut self,
        agent: UserId,
        chat: ConversationId,
    ) -> Result<Accepted, RouterError> {
        let version = match self.state.answering(agent, &chat)? {
            Answering::Chat { version } => version,
            Answering::Invite { invite_id, version } => {
                return self.accept_invite(agent, chat, invite_id, version).await
            }
        };
        match self
            .store
            .accept_offer(&chat, agent, version, wall_ms())
            .await
        {
            Ok(Some(_)) => {
                self.on_accepted(agent, &chat);
                Ok(Accepted::Chat)
            }
            Ok(None) => {
                self.resync(&chat).await;
                Err(RouterError::Routing(routing::RoutingError::OfferWithdrawn))
            }
            Err(e) => Err(logged(e)),
        }
    }

    /// The store recorded `agent`'s accept of `chat`: memory follows.
    pub(super) fn on_accepted(&mut self, agent: UserId, chat: &ConversationId) {
        let now = self.now();
        self.state.accepted(agent, chat, now, wall_ms());
        self.customers.remove(chat);
        self.cards.remove(chat);
        self.push_status(agent);
    }

    pub(super) async fn reject(
        &mut self,
        agent: UserId,
        chat: ConversationId,
    ) -> Result<(), RouterError> {
        let released = match self.state.answering(agent, &chat)? {
            Answering::Chat { version } => {
                self.release(&chat, agent, version, OfferOutcome::Rejected)
                    .await
            }
            Answering::Invite { invite_id, version } => {
                self.release_invite(&chat, agent, invite_id, version, OfferOutcome::Rejected)
                    .await
            }
        };
        if released {
            Ok(())
        } else {
            Err(RouterError::Unavailable)
        }
    }

    /// Ends an offer without acceptance, in the store and then in memory.
    /// Returns false if the store could not be updated.
    pub(super) async fn release(
        &mut self,
        chat: &ConversationId,
        agent: UserId,
        version: i64,
        outcome: OfferOutcome,
    ) -> bool {
        let kind = match outcome {
            OfferOutcome::Rejected => RoutingEventKind::Rejected,
            OfferOutcome::TimedOut => RoutingEventKind::TimedOut,
            OfferOutcome::Withdrawn | OfferOutcome::Accepted => RoutingEventKind::Withdrawn,
        };
        match self
            .store
            .release_offer(chat, agent, version, kind, wall_ms())
            .await
        {
            Ok(Some(new_version)) => {
                self.state.released(chat, agent, outcome, new_version);
                true
            }
            Ok(None) => {
                self.state.released(chat, agent, outcome, version);
                self.resync(chat).await;
                true
            }
            Err(e) => {
                logged(e);
                self.retry_at = Some(Instant::now() + STORE_RETRY);
                false
            }
        }
    }

    /// The store disagrees with memory about a chat: adopt the store's view.
    pub(super) async fn resync(&mut self, chat: &ConversationId) {
        let record = match self.store.conversation(chat).await {
            Ok(record) => record,
            Err(e) => {
                logged(e);
                self.retry_at = Some(Instant::now() + STORE_RETRY);
                return;
            }
        };
        // The customer's data never changes: keep the card's copy if there is one.
        let variables = match self.cards.get(chat) {
            Some(card) => card.customer.variables.clone(),
            None => match self.store.customer_variables(chat).await {
                Ok(variables) => variables,
                Err(e) => {
                    logged(e);
                    self.retry_at = Some(Instant::now() + STORE_RETRY);
                    return;
                }
            },
        };
        if let Some(agent) = self.state.forget(chat) {
            self.push_withdrawn(agent, chat, OfferEndReason::Withdrawn);
        }
        let Some(record) = record else { return };
        let record = match self.release_stale_offer(record).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                self.cards.remove(chat);
                self.customers.remove(chat);
                return;
            }
            Err(e) => {
                logged(e);
                self.retry_at = Some(Instant::now() + STORE_RETRY);
                return;
            }
        };
        let rejected = match self.store.queued_conversations().await {
            Ok(all) => all
                .into_iter()
                .find(|q| &q.record.id == chat)
                .map(|q| q.rejected_by.into_iter().collect())
                .unwrap_or_default(),
            Err(_) => HashSet::new(),
        };
        let away = !self.customers.contains_key(chat);
        self.track(record, rejected, variables);
        if !away {
            self.state.set_customer_away(chat, None);
        }
    }

    pub(super) async fn chat_finished(&mut self, chat: ConversationId, agents: Vec<UserId>) {
        if let Some(agent) = self.state.remove_chat(&chat) {
            self.push_withdrawn(agent, &chat, OfferEndReason::CustomerLeft);
        }
        self.drop_invite(
            &chat,
            RoutingEventKind::InviteCancelled,
            OfferEndReason::Withdrawn,
        )
        .await;
        self.customers.remove(&chat);
        self.cards.remove(&chat);
        let now = self.now();
        for agent in agents {
            self.state.chat_closed(agent, now);
            self.push_status(agent);
        }
    }

    async fn on_timer(&mut self) {
        self.retry_at = None;
        let now = self.now();
        for (chat, agent, version) in self.state.expired_offers(now) {
            if self
                .release(&chat, agent, version, OfferOutcome::TimedOut)
                .await
            {
                self.push_withdrawn(agent, &chat, OfferEndReason::TimedOut);
                self.push_status(agent);
                self.save_presence(agent).await;
            }
        }
        for (chat, agent, invite_id, version) in self.state.expired_invites(now) {
            if self
                .release_invite(&chat, agent, invite_id, version, OfferOutcome::TimedOut)
                .await
            {
                self.push_withdrawn(agent, &chat, OfferEndReason::TimedOut);
                self.push_status(agent);
                self.save_presence(agent).await;
            }
        }
        let grace = self.config.customer_grace.as_millis() as u64;
        for chat in self.state.abandoned_chats(now, grace) {
            let name = self
                .cards
                .get(&chat)
                .and_then(|c| c.customer.name.clone())
                .unwrap_or_else(|| "Customer".into());
            match self.conversations.end(&chat, Party::Customer, &name).await {
                Ok((_, agents)) => self.chat_finished(chat, agents).await,
                Err(ChatError::Ended) | Err(ChatError::NotFound) => {
                    self.chat_finished(chat, Vec::new()).await
                }
                Err(_) => {
                    // The store is down: try again after another grace period.
                    self.state.set_customer_away(&chat, Some(now));
                }
            }
        }
        self.lose_agents().await;
    }

    /// Makes every offer that is possible now.
    async fn route(&mut self) {
        if self.retry_at.is_some() {
            return;
        }
        if !self.route_invites().await {
            return;
        }
        loop {
            // A batch is the offers `next_offer` would make one by one; the
            // store commits it in one transaction (a burst's routing is
            // bound by commits, not by CPU).
            let plan = self.state.plan_offers(OFFER_BATCH);
            if plan.is_empty() {
                return;
            }
            let results = match self.store.try_offers(&plan, wall_ms()).await {
                Ok(results) => results,
                Err(e) => {
                    logged(e);
                    self.retry_at = Some(Instant::now() + STORE_RETRY);
                    return;
                }
            };
            for ((chat, agent, _), result) in plan.into_iter().zip(results) {
                match result {
                    Some(new_version) => {
                        let now = self.now();
                        if let Some(offer) = self.state.offer_made(&chat, agent, new_version, now) {
                            if let (Some(event), Some(link)) = (
                                self.offer_event(&chat, offer.deadline),
                                self.agents.get(&agent),
                            ) {
                                link.outbox.push(&event);
                            }
                        }
                    }
                    None => self.resync(&chat).await,
                }
            }
        }
    }

    /// Notes a store failure: routing pauses and is retried shortly.
    pub(super) fn store_failed(&mut self, e: StoreError) -> RouterError {
        self.retry_at = Some(Instant::now() + STORE_RETRY);
        logged(e)
    }

    /// Tells waiting customers their new places; true if some were held
    /// back for later (`PLACE_REPEAT_MS`).
    fn announce_places(&mut self) -> bool {
        let news = self.state.changed_places(self.now());
        for place in news.places {
            if let Some(outboxes) = self.customers.get(&place.chat) {
                let frame = ServerEvent::QueuePosition {
                    conversation_id: place.chat.0.clone(),
                    position: place.position,
                    estimated_wait_secs: place.estimated_wait_secs,
                }
                .to_frame();
                for outbox in outboxes {
                    outbox.push_frame(frame.clone());
                }
            }
        }
        news.held_back
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
