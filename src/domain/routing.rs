//! The routing state machine: which waiting chat is offered to which agent.
//!
//! Pure and synchronous. The router actor feeds it events with the current
//! time (milliseconds on a monotonic clock the caller owns) and carries out
//! what it decides: persisting offers with conditional updates, telling
//! agents, arming timers. Keeping it free of I/O lets every rule below be
//! unit-tested with explicit times.
//!
//! Rules:
//! - a chat is offered to one eligible agent at a time: online with a profile
//!   holding the chat's queue and `chat`, Ready, below capacity, holding no
//!   other offer, and not among those who already rejected this chat;
//! - among eligible agents the one idle longest wins (ties: lowest id);
//! - chats are served by queue priority (higher first), then oldest first;
//!   a rejected chat keeps its original place;
//! - an offer not answered by its deadline counts as a reject and puts the
//!   agent in Not ready ("No answer");
//! - an agent whose console disconnects stays known, *away*, for a grace
//!   period: they get no new offers, but an offer they hold keeps its
//!   deadline and is shown again if they come back in time. An agent still
//!   away when the grace period ends is *lost*: the caller takes them out
//!   (see [`RoutingState::lost_agents`]) and hands their chats on.

use super::account::{AgentStatus, NO_ANSWER_REASON};
use super::ids::{ConversationId, QueueId, UserId};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

/// Milliseconds on the caller's monotonic clock.
pub type Millis = u64;

/// How many past offer outcomes are remembered per agent, to give a precise
/// error for an answer that comes too late or twice.
const REMEMBERED_OUTCOMES: usize = 64;
/// Weight of the newest sample in the per-queue average wait.
const WAIT_AVERAGE_WEIGHT: f64 = 0.2;

/// Routing settings of one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueRule {
    pub priority: i32,
    pub offer_timeout_ms: u64,
}

/// What an agent brings when their console signs in.
#[derive(Debug, Clone)]
pub struct AgentSignIn {
    pub queues: HashSet<QueueId>,
    pub takes_chat: bool,
    pub capacity: u32,
    pub open_chats: u32,
    pub status: AgentStatus,
}

/// A chat that is waiting for an agent, as the router needs to know it.
#[derive(Debug, Clone)]
pub struct WaitingChatInit {
    pub queue: QueueId,
    /// Wall-clock time the chat entered the queue (ms since the epoch); the
    /// queue order and the wait estimate are based on it.
    pub enqueued_at_ms: i64,
    /// The store's version of the conversation row, for conditional updates.
    pub version: i64,
    pub rejected_by: HashSet<UserId>,
    /// When the customer's connection was last seen gone, if it is gone.
    pub customer_away_since: Option<Millis>,
}

/// How an offer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferOutcome {
    Accepted,
    Rejected,
    TimedOut,
    /// Taken back by the server: the agent went away or the customer left.
    Withdrawn,
}

/// Why an accept or reject was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("agent is not signed in")]
    NotSignedIn,
    #[error("this chat was never offered to you")]
    NotYourOffer,
    #[error("you already accepted this chat")]
    AlreadyAccepted,
    #[error("the offer expired")]
    OfferExpired,
    #[error("you already rejected this chat")]
    AlreadyRejected,
    #[error("the offer was withdrawn")]
    OfferWithdrawn,
}

#[derive(Debug, Clone)]
struct AgentSlot {
    queues: HashSet<QueueId>,
    takes_chat: bool,
    status: AgentStatus,
    capacity: u32,
    open_chats: u32,
    offer: Option<ConversationId>,
    idle_since: Millis,
    past_offers: VecDeque<(ConversationId, OfferOutcome)>,
    /// When the console went away, while it is away.
    away_since: Option<Millis>,
}

impl AgentSlot {
    fn remember(&mut self, chat: ConversationId, outcome: OfferOutcome) {
        if self.past_offers.len() == REMEMBERED_OUTCOMES {
            self.past_offers.pop_front();
        }
        self.past_offers.push_back((chat, outcome));
    }

    fn past_outcome(&self, chat: &ConversationId) -> Option<OfferOutcome> {
        self.past_offers
            .iter()
            .rev()
            .find(|(c, _)| c == chat)
            .map(|(_, o)| *o)
    }
}

/// An offer that is out and not yet answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingOffer {
    pub agent: UserId,
    pub deadline: Millis,
}

#[derive(Debug, Clone)]
struct WaitingChat {
    init: WaitingChatInit,
    offer: Option<PendingOffer>,
    last_announced: Option<Told>,
}

/// What a waiting customer was last told of their place, and when.
#[derive(Debug, Clone, Copy)]
struct Told {
    place: (u32, Option<u32>),
    at: Millis,
}

/// A waiting customer hears of a new place at most this often; their first
/// place at once. In a burst every place moves with every offer: telling
/// 8,000 waiting customers five times a second was about half of the
/// server's work per chat (docs/performance.md, S3), and nobody reads a
/// queue position faster than this.
pub const PLACE_REPEAT_MS: Millis = 1_000;

/// What `RoutingState::changed_places` found to tell.
#[derive(Debug, Clone, Default)]
pub struct PlaceNews {
    /// Places to announce now.
    pub places: Vec<QueuePlace>,
    /// Some changes were held back by [`PLACE_REPEAT_MS`]: ask again later.
    pub held_back: bool,
}

/// A waiting customer's place: 1 is next in line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePlace {
    pub chat: ConversationId,
    pub position: u32,
    pub estimated_wait_secs: Option<u32>,
}

/// One queue in the live view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLoad {
    pub queue: QueueId,
    /// Chats waiting, offered ones included.
    pub waiting: u32,
    /// How long the oldest waiting chat has waited; 0 when none waits.
    pub longest_wait_secs: u64,
    /// Signed-in agents who are Ready and serve this queue.
    pub agents_ready: u32,
}

/// One signed-in agent in the live view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLoad {
    pub agent: UserId,
    /// False while the console is away (within the grace period).
    pub connected: bool,
    pub status: AgentStatus,
    pub open_chats: u32,
    pub capacity: u32,
}

/// Whom an invitation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteTarget {
    /// A named agent: offered to them only; a reject or timeout ends it.
    Agent(UserId),
    /// Any available agent of a queue, chosen like for a new chat.
    Queue(QueueId),
}

/// An invitation into an active chat.
#[derive(Debug, Clone)]
pub struct InviteInit {
    pub invite_id: i64,
    pub target: InviteTarget,
    /// The chat's own queue: its offer timeout applies.
    pub chat_queue: QueueId,
    /// Agents already in the chat: never offered the invitation.
    pub excluded: HashSet<UserId>,
    pub version: i64,
    /// Order among invitations (creation time, ms).
    pub created_at_ms: i64,
}

#[derive(Debug, Clone)]
struct WaitingInvite {
    init: InviteInit,
    offer: Option<PendingOffer>,
    rejected_by: HashSet<UserId>,
}

/// What an agent is answering: an offered chat or an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answering {
    Chat { version: i64 },
    Invite { invite_id: i64, version: i64 },
}

/// The whole routing state of one node.
#[derive(Debug, Default)]
pub struct RoutingState {
    queues: HashMap<QueueId, QueueRule>,
    agents: HashMap<UserId, AgentSlot>,
    chats: HashMap<ConversationId, WaitingChat>,
    /// At most one pending invitation per chat, keyed by the chat.
    invites: HashMap<ConversationId, WaitingInvite>,
    average_wait_ms: HashMap<QueueId, f64>,
}

impl RoutingState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or updates a queue's rules.
    pub fn set_queue(&mut self, queue: QueueId, rule: QueueRule) {
        self.queues.insert(queue, rule);
    }

    pub fn queue_rule(&self, queue: QueueId) -> Option<QueueRule> {
        self.queues.get(&queue).copied()
    }

    /// An agent's console signed in (or reconnected). Returns the chat
    /// offered to them, if an offer is still pending, so it can be shown again.
    pub fn agent_online(
        &mut self,
        agent: UserId,
        sign_in: AgentSignIn,
        now: Millis,
    ) -> Option<ConversationId> {
        let previous = self.agents.remove(&agent);
        let status = match sign_in.status {
            AgentStatus::Offline => AgentStatus::NotReady {
                reason: "Signed in".into(),
            },
            other => other,
        };
        let (offer, past_offers, idle_since) = match previous {
            Some(p) => (p.offer, p.past_offers, p.idle_since),
            None => (None, VecDeque::new(), now),
        };
        self.agents.insert(
            agent,
            AgentSlot {
                queues: sign_in.queues,
                takes_chat: sign_in.takes_chat,
                status,
                capacity: sign_in.capacity,
                open_chats: sign_in.open_chats,
                offer: offer.clone(),
                idle_since,
                past_offers,
                away_since: None,
            },
        );
        offer
    }

    /// The agent's console went away at `now`. They stay known but away:
    /// no new offers, and a pending offer keeps running to its deadline.
    /// Returns false for an agent who was not signed in.
    pub fn agent_disconnected(&mut self, agent: UserId, now: Millis) -> bool {
        match self.agents.get_mut(&agent) {
            Some(slot) => {
                slot.away_since.get_or_insert(now);
                true
            }
            None => false,
        }
    }

    /// An agent who owns chats but has no console (after a restart): known
    /// as away since `since`, so that they are lost if they do not come
    /// back. An agent already known keeps their slot (and, if away, the
    /// earlier time).
    pub fn expect_agent(&mut self, agent: UserId, since: Millis) {
        self.agents.entry(agent).or_insert_with(|| AgentSlot {
            queues: HashSet::new(),
            takes_chat: false,
            status: AgentStatus::Offline,
            capacity: 0,
            open_chats: 0,
            offer: None,
            idle_since: since,
            past_offers: VecDeque::new(),
            away_since: Some(since),
        });
    }

    /// Agents away for `grace_ms` or longer at `now`, lowest id first.
    pub fn lost_agents(&self, now: Millis, grace_ms: u64) -> Vec<UserId> {
        let mut lost: Vec<UserId> = self
            .agents
            .iter()
            .filter(|(_, a)| {
                a.away_since
                    .is_some_and(|since| now.saturating_sub(since) >= grace_ms)
            })
            .map(|(id, _)| *id)
            .collect();
        lost.sort();
        lost
    }

    /// Whether the agent is known but their console is away.
    pub fn is_away(&self, agent: UserId) -> bool {
        self.agents
            .get(&agent)
            .is_some_and(|a| a.away_since.is_some())
    }

    /// The agent is gone for good (lost, or signed out). Their pending
    /// offer, if any, is withdrawn (the chat is not marked as rejected by
    /// them) and returned so the caller can persist that and route the chat
    /// again.
    pub fn agent_offline(&mut self, agent: UserId) -> Option<(ConversationId, Answering)> {
        let slot = self.agents.remove(&agent)?;
        let chat_id = slot.offer?;
        if let Some(chat) = self.chats.get_mut(&chat_id) {
            chat.offer = None;
            return Some((
                chat_id,
                Answering::Chat {
                    version: chat.init.version,
                },
            ));
        }
        let invite = self.invites.get_mut(&chat_id)?;
        invite.offer = None;
        let answering = Answering::Invite {
            invite_id: invite.init.invite_id,
            version: invite.init.version,
        };
        Some((chat_id, answering))
    }

    pub fn is_online(&self, agent: UserId) -> bool {
        self.agents.contains_key(&agent)
    }

    /// The agent's status and open chat count.
    pub fn agent_status(&self, agent: UserId) -> Option<(AgentStatus, u32)> {
        self.agents
            .get(&agent)
            .map(|a| (a.status.clone(), a.open_chats))
    }

    /// Changes an agent's status. Becoming Ready restarts their idle time.
    pub fn set_status(
        &mut self,
        agent: UserId,
        status: AgentStatus,
        now: Millis,
    ) -> Result<(), RoutingError> {
        let slot = self
            .agents
            .get_mut(&agent)
            .ok_or(RoutingError::NotSignedIn)?;
        if status == AgentStatus::Ready && slot.status != AgentStatus::Ready {
            slot.idle_since = now;
        }
        slot.status = status;
        Ok(())
    }

    /// A chat enters (or, after a restart, re-enters) the queue.
    pub fn enqueue(&mut self, chat: ConversationId, init: WaitingChatInit) {
        self.chats.insert(
            chat,
            WaitingChat {
                init,
                offer: None,
                last_announced: None,
            },
        );
    }

    pub fn is_waiting(&self, chat: &ConversationId) -> bool {
        self.chats.contains_key(chat)
    }

    /// The pending offer of a chat, if any.
    pub fn pending_offer(&self, chat: &ConversationId) -> Option<PendingOffer> {
        self.chats.get(chat).and_then(|c| c.offer)
    }

    /// The store version the router believes a waiting chat has.
    pub fn version(&self, chat: &ConversationId) -> Option<i64> {
        self.chats.get(chat).map(|c| c.init.version)
    }

    pub fn queue_of(&self, chat: &ConversationId) -> Option<QueueId> {
        self.chats.get(chat).map(|c| c.init.queue)
    }

    /// Connected, Ready, taking chats, below capacity, holding no offer.
    fn free(agent: &AgentSlot) -> bool {
        agent.away_since.is_none()
            && agent.status == AgentStatus::Ready
            && agent.takes_chat
            && agent.open_chats < agent.capacity
            && agent.offer.is_none()
    }

    /// The agents who could take an offer now, whatever the chat, best
    /// first: idle longest, then lowest id.
    fn free_agents(&self) -> Vec<(UserId, &AgentSlot)> {
        let mut free: Vec<(UserId, &AgentSlot)> = self
            .agents
            .iter()
            .filter(|(_, a)| Self::free(a))
            .map(|(id, a)| (*id, a))
            .collect();
        free.sort_unstable_by_key(|(id, a)| (a.idle_since, *id));
        free
    }

    /// Unoffered chats in service order (queue priority, then age, then
    /// id), lazily: a heap is built in O(waiting) and only as many chats
    /// are taken off it as the free agents need. The router plans offers
    /// after every command, so a full sort of every waiting chat each time
    /// made a burst of n joins cost O(n² log n) (docs/performance.md, S3).
    fn service_order(&self) -> impl Iterator<Item = &ConversationId> + '_ {
        let mut heap: BinaryHeap<Reverse<(Reverse<i32>, i64, &ConversationId)>> = self
            .chats
            .iter()
            .filter(|(_, c)| c.offer.is_none())
            .map(|(id, c)| {
                let priority = self.queues.get(&c.init.queue).map_or(0, |q| q.priority);
                Reverse((Reverse(priority), c.init.enqueued_at_ms, id))
            })
            .collect();
        std::iter::from_fn(move || heap.pop().map(|Reverse((_, _, id))| id))
    }

    /// The next offer to make, if any chat has an eligible agent. The caller
    /// persists it and then calls [`RoutingState::offer_made`] (or
    /// [`RoutingState::forget`] if the store refused it).
    pub fn next_offer(&self) -> Option<(ConversationId, UserId, i64)> {
        self.plan_offers(1).into_iter().next()
    }

    /// Up to `max` offers that are possible now, in the order [`next_offer`]
    /// would make them one by one (recording each with
    /// [`RoutingState::offer_made`] before the next). That holds because an
    /// offer only takes its agent out of the running (an agent holds one
    /// offer at a time) and its chat out of the order; nothing else that
    /// decides eligibility changes. Each chat, in service order, goes to
    /// the best free agent who serves its queue and has not rejected it.
    /// The caller persists the batch and then records each offer the store
    /// accepted.
    ///
    /// [`next_offer`]: RoutingState::next_offer
    pub fn plan_offers(&self, max: usize) -> Vec<(ConversationId, UserId, i64)> {
        let mut free = self.free_agents();
        let mut plan = Vec::new();
        if free.is_empty() {
            return plan;
        }
        for chat_id in self.service_order() {
            if plan.len() >= max || free.is_empty() {
                break;
            }
            let chat = &self.chats[chat_id];
            let best = free.iter().position(|(id, a)| {
                a.queues.contains(&chat.init.queue) && !chat.init.rejected_by.contains(id)
            });
            if let Some(index) = best {
                let (agent, _) = free.remove(index);
                plan.push((chat_id.clone(), agent, chat.init.version));
            }
        }
        plan
    }

    /// Records an offer the store accepted; `version` is the row's new version.
    pub fn offer_made(
        &mut self,
        chat_id: &ConversationId,
        agent: UserId,
        version: i64,
        now: Millis,
    ) -> Option<PendingOffer> {
        let chat = self.chats.get_mut(chat_id)?;
        let slot = self.agents.get_mut(&agent)?;
        let timeout = self
            .queues
            .get(&chat.init.queue)
            .map_or(30_000, |q| q.offer_timeout_ms);
        let offer = PendingOffer {
            agent,
            deadline: now + timeout,
        };
        chat.offer = Some(offer);
        chat.init.version = version;
        slot.offer = Some(chat_id.clone());
        Some(offer)
    }

    /// Drops a chat the store says is no longer ours to route (another node
    /// changed it, or it ended). Returns the agent whose offer disappears.
    pub fn forget(&mut self, chat_id: &ConversationId) -> Option<UserId> {
        let chat = self.chats.remove(chat_id)?;
        let agent = chat.offer?.agent;
        if let Some(slot) = self.agents.get_mut(&agent) {
            if slot.offer.as_ref() == Some(chat_id) {
                slot.offer = None;
            }
        }
        Some(agent)
    }

    /// Checks that `agent` may answer the offer of `chat_id`; returns the
    /// version to use in the store's conditional update.
    pub fn check_answer(
        &self,
        agent: UserId,
        chat_id: &ConversationId,
    ) -> Result<i64, RoutingError> {
        match self.answering(agent, chat_id)? {
            Answering::Chat { version } | Answering::Invite { version, .. } => Ok(version),
        }
    }

    /// What `agent` would be answering for `chat_id`, or why they cannot.
    pub fn answering(
        &self,
        agent: UserId,
        chat_id: &ConversationId,
    ) -> Result<Answering, RoutingError> {
        let slot = self.agents.get(&agent).ok_or(RoutingError::NotSignedIn)?;
        if let Some(chat) = self.chats.get(chat_id) {
            if chat.offer.map(|o| o.agent) == Some(agent) {
                return Ok(Answering::Chat {
                    version: chat.init.version,
                });
            }
        }
        if let Some(invite) = self.invites.get(chat_id) {
            if invite.offer.map(|o| o.agent) == Some(agent) {
                return Ok(Answering::Invite {
                    invite_id: invite.init.invite_id,
                    version: invite.init.version,
                });
            }
        }
        Err(match slot.past_outcome(chat_id) {
            Some(OfferOutcome::Accepted) => RoutingError::AlreadyAccepted,
            Some(OfferOutcome::Rejected) => RoutingError::AlreadyRejected,
            Some(OfferOutcome::TimedOut) => RoutingError::OfferExpired,
            Some(OfferOutcome::Withdrawn) => RoutingError::OfferWithdrawn,
            None => RoutingError::NotYourOffer,
        })
    }

    /// The agent accepted and the store recorded it: the chat leaves the
    /// queue and counts against the agent's capacity.
    pub fn accepted(
        &mut self,
        agent: UserId,
        chat_id: &ConversationId,
        now: Millis,
        now_wall_ms: i64,
    ) {
        if let Some(chat) = self.chats.remove(chat_id) {
            let waited = (now_wall_ms - chat.init.enqueued_at_ms).max(0) as f64;
            let average = self
                .average_wait_ms
                .entry(chat.init.queue)
                .or_insert(waited);
            *average = *average * (1.0 - WAIT_AVERAGE_WEIGHT) + waited * WAIT_AVERAGE_WEIGHT;
        }
        if let Some(slot) = self.agents.get_mut(&agent) {
            slot.offer = None;
            slot.open_chats += 1;
            slot.idle_since = now;
            slot.remember(chat_id.clone(), OfferOutcome::Accepted);
        }
    }

    /// An offer ended without acceptance and the store recorded it (with the
    /// row's new `version`). A reject or a timeout bars the agent from this
    /// chat; a timeout also sets them Not ready ("No answer").
    pub fn released(
        &mut self,
        chat_id: &ConversationId,
        agent: UserId,
        outcome: OfferOutcome,
        version: i64,
    ) {
        if let Some(chat) = self.chats.get_mut(chat_id) {
            if chat.offer.map(|o| o.agent) == Some(agent) {
                chat.offer = None;
            }
            chat.init.version = version;
            if matches!(outcome, OfferOutcome::Rejected | OfferOutcome::TimedOut) {
                chat.init.rejected_by.insert(agent);
            }
        }
        if let Some(slot) = self.agents.get_mut(&agent) {
            if slot.offer.as_ref() == Some(chat_id) {
                slot.offer = None;
            }
            if outcome == OfferOutcome::TimedOut {
                slot.status = AgentStatus::NotReady {
                    reason: NO_ANSWER_REASON.into(),
                };
            }
            slot.remember(chat_id.clone(), outcome);
        }
    }

    /// Offers whose deadline has passed at `now`: (chat, agent, version).
    pub fn expired_offers(&self, now: Millis) -> Vec<(ConversationId, UserId, i64)> {
        self.chats
            .iter()
            .filter_map(|(id, c)| {
                c.offer
                    .filter(|o| o.deadline <= now)
                    .map(|o| (id.clone(), o.agent, c.init.version))
            })
            .collect()
    }

    /// Invitation offers whose deadline has passed: (chat, agent, invite id, version).
    pub fn expired_invites(&self, now: Millis) -> Vec<(ConversationId, UserId, i64, i64)> {
        self.invites
            .iter()
            .filter_map(|(id, i)| {
                i.offer
                    .filter(|o| o.deadline <= now)
                    .map(|o| (id.clone(), o.agent, i.init.invite_id, i.init.version))
            })
            .collect()
    }

    /// Chats whose customer has been gone longer than `grace_ms`.
    pub fn abandoned_chats(&self, now: Millis, grace_ms: u64) -> Vec<ConversationId> {
        self.chats
            .iter()
            .filter(|(_, c)| {
                c.init
                    .customer_away_since
                    .is_some_and(|since| now.saturating_sub(since) >= grace_ms)
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The earliest time something must happen without outside input: an
    /// offer deadline or the end of a customer's or an agent's grace period.
    pub fn next_deadline(&self, grace_ms: u64, agent_grace_ms: u64) -> Option<Millis> {
        let invites = self
            .invites
            .values()
            .filter_map(|i| i.offer.map(|o| o.deadline));
        let agents = self
            .agents
            .values()
            .filter_map(|a| a.away_since.map(|since| since + agent_grace_ms));
        self.chats
            .values()
            .flat_map(|c| {
                let offer = c.offer.map(|o| o.deadline);
                let away = c.init.customer_away_since.map(|s| s + grace_ms);
                offer.into_iter().chain(away)
            })
            .chain(invites)
            .chain(agents)
            .min()
    }

    /// The customer's connection went away (`Some(now)`) or came back (`None`).
    pub fn set_customer_away(&mut self, chat_id: &ConversationId, since: Option<Millis>) {
        if let Some(chat) = self.chats.get_mut(chat_id) {
            chat.init.customer_away_since = since;
            chat.last_announced = None;
        }
    }

    /// Removes a chat whose customer left; returns the agent whose offer is
    /// withdrawn, if one was pending.
    pub fn remove_chat(&mut self, chat_id: &ConversationId) -> Option<UserId> {
        let agent = self.forget(chat_id)?;
        if let Some(slot) = self.agents.get_mut(&agent) {
            slot.remember(chat_id.clone(), OfferOutcome::Withdrawn);
        }
        Some(agent)
    }

    /// One of the agent's chats ended: their capacity frees up.
    pub fn chat_closed(&mut self, agent: UserId, now: Millis) {
        if let Some(slot) = self.agents.get_mut(&agent) {
            slot.open_chats = slot.open_chats.saturating_sub(1);
            slot.idle_since = now;
        }
    }

    /// Places of waiting customers whose position or estimate changed since
    /// they were last told, at most one per [`PLACE_REPEAT_MS`] per customer
    /// (a first place at once); marks them as told.
    pub fn changed_places(&mut self, now: Millis) -> PlaceNews {
        let places = self.places();
        let mut news = PlaceNews::default();
        for place in places {
            if let Some(chat) = self.chats.get_mut(&place.chat) {
                let current = (place.position, place.estimated_wait_secs);
                let due = match chat.last_announced {
                    None => true,
                    Some(told) if told.place == current => false,
                    Some(told) if now.saturating_sub(told.at) < PLACE_REPEAT_MS => {
                        news.held_back = true;
                        false
                    }
                    Some(_) => true,
                };
                if due {
                    chat.last_announced = Some(Told {
                        place: current,
                        at: now,
                    });
                    news.places.push(place);
                }
            }
        }
        news
    }

    /// Every waiting chat's place in its queue (offered chats included: they
    /// are still waiting for an answer).
    pub fn places(&self) -> Vec<QueuePlace> {
        let mut by_queue: HashMap<QueueId, Vec<(&ConversationId, &WaitingChat)>> = HashMap::new();
        for (id, chat) in &self.chats {
            by_queue
                .entry(chat.init.queue)
                .or_default()
                .push((id, chat));
        }
        let mut places = Vec::with_capacity(self.chats.len());
        for (queue, mut chats) in by_queue {
            chats.sort_by(|(a_id, a), (b_id, b)| {
                a.init
                    .enqueued_at_ms
                    .cmp(&b.init.enqueued_at_ms)
                    .then(a_id.cmp(b_id))
            });
            let serving = self
                .agents
                .values()
                .filter(|a| a.takes_chat && a.queues.contains(&queue))
                .count()
                .max(1) as f64;
            let average = self.average_wait_ms.get(&queue).copied();
            for (index, (id, _)) in chats.into_iter().enumerate() {
                let position = index as u32 + 1;
                let estimate =
                    average.map(|ms| ((ms * f64::from(position) / serving) / 1000.0).ceil() as u32);
                places.push(QueuePlace {
                    chat: id.clone(),
                    position,
                    estimated_wait_secs: estimate,
                });
            }
        }
        places
    }

    /// Number of chats waiting (offered or not).
    pub fn waiting_count(&self) -> usize {
        self.chats.len()
    }

    /// The load of every known queue and the state of every signed-in
    /// agent, for the supervisors' live view. `now_wall_ms` is the wall
    /// clock (the queue entry times are wall-clock times). Sorted by id.
    pub fn live(&self, now_wall_ms: i64) -> (Vec<QueueLoad>, Vec<AgentLoad>) {
        let mut queues: Vec<QueueLoad> = self
            .queues
            .keys()
            .map(|&queue| {
                let waiting: Vec<i64> = self
                    .chats
                    .values()
                    .filter(|c| c.init.queue == queue)
                    .map(|c| c.init.enqueued_at_ms)
                    .collect();
                let oldest = waiting.iter().min().copied();
                let agents_ready = self
                    .agents
                    .values()
                    .filter(|a| {
                        a.status == AgentStatus::Ready && a.takes_chat && a.queues.contains(&queue)
                    })
                    .count();
                QueueLoad {
                    queue,
                    waiting: waiting.len() as u32,
                    longest_wait_secs: oldest.map_or(0, |at| {
                        (now_wall_ms.saturating_sub(at).max(0) / 1000) as u64
                    }),
                    agents_ready: agents_ready as u32,
                }
            })
            .collect();
        queues.sort_by_key(|q| q.queue);
        let mut agents: Vec<AgentLoad> = self
            .agents
            .iter()
            .map(|(&agent, a)| AgentLoad {
                agent,
                connected: a.away_since.is_none(),
                status: a.status.clone(),
                open_chats: a.open_chats,
                capacity: a.capacity,
            })
            .collect();
        agents.sort_by_key(|a| a.agent);
        (queues, agents)
    }

    /// Whether an agent could take an invitation right now: signed in with
    /// chat, below capacity and holding no other offer. (A named colleague
    /// may be invited while Not ready.)
    pub fn can_take_invite(&self, agent: UserId) -> bool {
        self.agents.get(&agent).is_some_and(|a| {
            a.away_since.is_none() && a.takes_chat && a.open_chats < a.capacity && a.offer.is_none()
        })
    }

    /// The pending offer of a chat's invitation, if any.
    pub fn pending_invite_offer(&self, chat: &ConversationId) -> Option<PendingOffer> {
        self.invites.get(chat).and_then(|i| i.offer)
    }

    pub fn has_invite(&self, chat: &ConversationId) -> bool {
        self.invites.contains_key(chat)
    }

    /// Starts routing an invitation (one per chat; the caller checked).
    pub fn add_invite(&mut self, chat: ConversationId, init: InviteInit) {
        self.invites.insert(
            chat,
            WaitingInvite {
                init,
                offer: None,
                rejected_by: HashSet::new(),
            },
        );
    }

    fn invite_candidate(&self, invite: &WaitingInvite) -> Option<UserId> {
        let usable =
            |id: &UserId| !invite.init.excluded.contains(id) && !invite.rejected_by.contains(id);
        match invite.init.target {
            InviteTarget::Agent(agent) => {
                (usable(&agent) && self.can_take_invite(agent)).then_some(agent)
            }
            InviteTarget::Queue(queue) => self
                .agents
                .iter()
                .filter(|(id, a)| usable(id) && Self::free(a) && a.queues.contains(&queue))
                .min_by_key(|(id, a)| (a.idle_since, **id))
                .map(|(id, _)| *id),
        }
    }

    /// The next invitation offer to make: (chat, agent, invite id, version).
    /// Invitations go before new chats: a customer is already talking.
    pub fn next_invite_offer(&self) -> Option<(ConversationId, UserId, i64, i64)> {
        let mut waiting: Vec<(&ConversationId, &WaitingInvite)> = self
            .invites
            .iter()
            .filter(|(_, i)| i.offer.is_none())
            .collect();
        waiting.sort_by_key(|(id, i)| (i.init.created_at_ms, (*id).clone()));
        waiting.into_iter().find_map(|(chat, invite)| {
            self.invite_candidate(invite).map(|agent| {
                (
                    chat.clone(),
                    agent,
                    invite.init.invite_id,
                    invite.init.version,
                )
            })
        })
    }

    /// Records an invitation offer the store accepted.
    pub fn invite_offer_made(
        &mut self,
        chat: &ConversationId,
        agent: UserId,
        version: i64,
        now: Millis,
    ) -> Option<PendingOffer> {
        let timeout = {
            let invite = self.invites.get(chat)?;
            self.queues
                .get(&invite.init.chat_queue)
                .map_or(30_000, |q| q.offer_timeout_ms)
        };
        let slot = self.agents.get_mut(&agent)?;
        let invite = self.invites.get_mut(chat)?;
        let offer = PendingOffer {
            agent,
            deadline: now + timeout,
        };
        invite.offer = Some(offer);
        invite.init.version = version;
        slot.offer = Some(chat.clone());
        Some(offer)
    }

    /// The invited agent accepted and the store recorded it.
    pub fn invite_accepted(&mut self, agent: UserId, chat: &ConversationId, now: Millis) {
        self.invites.remove(chat);
        if let Some(slot) = self.agents.get_mut(&agent) {
            slot.offer = None;
            slot.open_chats += 1;
            slot.idle_since = now;
            slot.remember(chat.clone(), OfferOutcome::Accepted);
        }
    }

    /// An invitation offer ended unanswered (stored with the new `version`).
    /// Returns true when the invitation itself is over: a named agent
    /// rejected or let it time out. A queue invitation goes on to others.
    pub fn invite_released(
        &mut self,
        chat: &ConversationId,
        agent: UserId,
        outcome: OfferOutcome,
        version: i64,
    ) -> bool {
        let mut over = false;
        if let Some(invite) = self.invites.get_mut(chat) {
            if invite.offer.map(|o| o.agent) == Some(agent) {
                invite.offer = None;
            }
            invite.init.version = version;
            if matches!(outcome, OfferOutcome::Rejected | OfferOutcome::TimedOut) {
                invite.rejected_by.insert(agent);
                over = matches!(invite.init.target, InviteTarget::Agent(_));
            }
        }
        if let Some(slot) = self.agents.get_mut(&agent) {
            if slot.offer.as_ref() == Some(chat) {
                slot.offer = None;
            }
            if outcome == OfferOutcome::TimedOut {
                slot.status = AgentStatus::NotReady {
                    reason: NO_ANSWER_REASON.into(),
                };
            }
            slot.remember(chat.clone(), outcome);
        }
        if over {
            self.invites.remove(chat);
        }
        over
    }

    /// Drops an invitation (cancelled, or its chat ended); returns its id
    /// and the agent whose offer disappears.
    pub fn remove_invite(&mut self, chat: &ConversationId) -> Option<(i64, Option<UserId>)> {
        let invite = self.invites.remove(chat)?;
        let agent = invite.offer.map(|o| o.agent);
        if let Some(agent) = agent {
            if let Some(slot) = self.agents.get_mut(&agent) {
                if slot.offer.as_ref() == Some(chat) {
                    slot.offer = None;
                }
                slot.remember(chat.clone(), OfferOutcome::Withdrawn);
            }
        }
        Some((invite.init.invite_id, agent))
    }

    /// Panics if the agent and chat views of pending offers disagree. Called
    /// by tests after every step.
    pub fn check_invariants(&self) {
        for (chat_id, chat) in &self.chats {
            if let Some(offer) = chat.offer {
                assert!(
                    !chat.init.rejected_by.contains(&offer.agent),
                    "chat {chat_id} offered to an agent who rejected it"
                );
                if let Some(slot) = self.agents.get(&offer.agent) {
                    assert_eq!(
                        slot.offer.as_ref(),
                        Some(chat_id),
                        "chat {chat_id} offered to {} who holds another offer",
                        offer.agent
                    );
                }
            }
        }
        for (agent, slot) in &self.agents {
            if let Some(chat_id) = &slot.offer {
                let holder = match (self.chats.get(chat_id), self.invites.get(chat_id)) {
                    (Some(chat), _) => chat.offer.map(|o| o.agent),
                    (None, Some(invite)) => invite.offer.map(|o| o.agent),
                    (None, None) => panic!("agent {agent} holds offer of unknown chat {chat_id}"),
                };
                assert_eq!(holder, Some(*agent));
            }
        }
        for (chat_id, invite) in &self.invites {
            if let Some(offer) = invite.offer {
                assert!(
                    !invite.init.excluded.contains(&offer.agent),
                    "invite of {chat_id} offered to a participant"
                );
                assert!(
                    !self.chats.contains_key(chat_id),
                    "{chat_id} both queued and inviting"
                );
            }
        }
    }
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
