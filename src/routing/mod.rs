//! The router: one actor that owns the [`RoutingState`] of this node, makes
//! offers, and enforces answers and timeouts. Every decision that gives an
//! agent a chat is first made durable in the store with a conditional update,
//! so a second node sharing the database cannot make a conflicting one.
//!
//! Channels: sockets → router (commands with oneshot replies); router →
//! connection outboxes (non-blocking pushes); router → conversation actors
//! (to abandon a chat whose customer is gone). Conversation actors never call
//! the router, so there is no cycle.

mod actor;
mod batch;
mod invites;
mod lost;

use crate::conversation::Conversations;
use crate::domain::account::{AgentStatus, Profile, Queue};
use crate::domain::customer::CustomerVariable;
use crate::domain::ids::{ConversationId, UserId};
use crate::domain::routing::{InviteTarget, RoutingError};
use crate::outbox::Outbox;
use crate::protocol::CustomerView;
use crate::protocol::ErrorCode;
use crate::store::{ConversationRecord, DynStore};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

const COMMAND_CAPACITY: usize = 4096;

/// Failures of router requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    #[error(transparent)]
    Routing(#[from] RoutingError),
    #[error("the store is unavailable; retry")]
    Unavailable,
    #[error("an invitation is already pending for this chat")]
    InvitePending,
    #[error("no invitation is pending for this chat")]
    NoInvitePending,
    #[error(
        "that agent cannot take an invitation now (not signed in, at capacity or holding an offer)"
    )]
    AgentUnavailable,
}

impl RouterError {
    pub fn code(self) -> ErrorCode {
        match self {
            RouterError::Routing(RoutingError::NotSignedIn) => ErrorCode::NotSignedIn,
            RouterError::Routing(RoutingError::NotYourOffer) => ErrorCode::NotYourOffer,
            RouterError::Routing(RoutingError::AlreadyAccepted) => ErrorCode::AlreadyAccepted,
            RouterError::Routing(RoutingError::AlreadyRejected) => ErrorCode::AlreadyRejected,
            RouterError::Routing(RoutingError::OfferExpired) => ErrorCode::OfferExpired,
            RouterError::Routing(RoutingError::OfferWithdrawn) => ErrorCode::OfferWithdrawn,
            RouterError::Unavailable => ErrorCode::Unavailable,
            RouterError::InvitePending => ErrorCode::InvitePending,
            RouterError::NoInvitePending => ErrorCode::NoInvitePending,
            RouterError::AgentUnavailable => ErrorCode::AgentUnavailable,
        }
    }
}

/// An agent console signing in.
#[derive(Debug, Clone)]
pub struct AgentSignIn {
    pub agent: UserId,
    pub profile: Profile,
    pub capacity: u32,
    pub open_chats: u32,
    pub outbox: Outbox,
}

/// Status of an agent after sign-in or a status change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentState {
    pub status: AgentStatus,
    pub open_chats: u32,
}

/// An invitation request from an agent in a chat.
#[derive(Debug, Clone)]
pub struct InviteRequest {
    pub chat: ConversationId,
    pub inviter: UserId,
    pub inviter_name: String,
    pub target: InviteTarget,
    pub transfer: bool,
    /// Agents already in the chat.
    pub participants: Vec<UserId>,
    /// What the invited agent's offer shows.
    pub queue: crate::domain::ids::QueueId,
    pub customer: CustomerView,
}

/// What an accepted offer was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// A new chat from the queue.
    Chat,
    /// An invitation into a running chat; with `transfer` the inviter leaves.
    Invite { inviter: UserId, transfer: bool },
}

/// A routing snapshot, for supervisors and tests.
#[derive(Debug, Clone, Default)]
pub struct RoutingSnapshot {
    pub waiting: usize,
    pub agents_online: usize,
}

/// What this node's router knows right now, for the supervisors' live view:
/// every routable queue's load and every signed-in agent. Agents who are
/// not listed have no console connected (offline).
#[derive(Debug, Clone, Default)]
pub struct LiveState {
    pub queues: Vec<crate::domain::routing::QueueLoad>,
    pub agents: Vec<crate::domain::routing::AgentLoad>,
    /// Recent alerts, newest first.
    pub alerts: Vec<Alert>,
}

/// Something supervisors should look at, kept in memory (the last 50).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Wall-clock time, ms since the epoch.
    pub at_ms: i64,
    pub kind: AlertKind,
    pub agent: UserId,
    pub conversation: Option<ConversationId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// The agent's console stayed away past the grace period while they
    /// had chats.
    AgentLost,
    /// One of their chats went back to the queue.
    ChatRequeued,
    /// One of their chats ended: the customer was gone too.
    ChatEnded,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AgentLost => "agent_lost",
            Self::ChatRequeued => "chat_requeued",
            Self::ChatEnded => "chat_ended",
        }
    }
}

/// Router settings.
#[derive(Debug, Clone, Copy)]
pub struct RouterConfig {
    /// How long a waiting customer may be disconnected before the chat is
    /// abandoned (long enough for a page reload or a network blip).
    pub customer_grace: Duration,
    /// How long a signed-in agent's console may be disconnected before the
    /// agent is lost: their offer withdrawn, their chats handed on.
    pub agent_grace: Duration,
}

type Reply<T> = oneshot::Sender<Result<T, RouterError>>;

enum Command {
    SignIn {
        sign_in: AgentSignIn,
        reply: Reply<AgentState>,
    },
    SignOut {
        agent: UserId,
        connection: u64,
    },
    SetStatus {
        agent: UserId,
        status: AgentStatus,
        reply: Reply<AgentState>,
    },
    Enqueue {
        record: ConversationRecord,
        variables: Vec<CustomerVariable>,
    },
    CustomerAttached {
        chat: ConversationId,
        outbox: Outbox,
    },
    CustomerDetached {
        chat: ConversationId,
        connection: u64,
    },
    Accept {
        agent: UserId,
        chat: ConversationId,
        reply: Reply<Accepted>,
    },
    Invite {
        request: InviteRequest,
        reply: Reply<i64>,
    },
    CancelInvite {
        chat: ConversationId,
        inviter: UserId,
        reply: Reply<()>,
    },
    AgentLeft {
        agent: UserId,
    },
    Reject {
        agent: UserId,
        chat: ConversationId,
        reply: Reply<()>,
    },
    ChatFinished {
        chat: ConversationId,
        agents: Vec<UserId>,
    },
    QueueChanged {
        queue: Queue,
    },
    Snapshot {
        reply: oneshot::Sender<RoutingSnapshot>,
    },
    Online {
        reply: oneshot::Sender<Vec<(UserId, AgentStatus)>>,
    },
    Live {
        reply: oneshot::Sender<LiveState>,
    },
    /// Test seam: makes the router panic, to prove it is restarted. It
    /// exists only in the crate's unit tests, so no build can trigger it.
    #[cfg(test)]
    Panic,
}

/// Runs the router and restarts it after a panic (a bug), so routing does
/// not stop for the rest of the process. The command channel outlives each
/// run: commands sent meanwhile wait for the new router. Unwinding drops the
/// old router, whose `Drop` closes every agent and waiting-customer
/// connection it held (code 1012): their clients reconnect, sign in and
/// resume against the new router, which is rebuilt from the store exactly
/// as at startup (waiting chats queued again, pending offers released).
async fn supervise(
    mut actor: actor::RouterActor,
    mut rx: mpsc::Receiver<Command>,
    store: DynStore,
    conversations: Conversations,
    config: RouterConfig,
) {
    use futures_util::FutureExt;
    loop {
        let run = std::panic::AssertUnwindSafe(actor.run(&mut rx));
        if run.catch_unwind().await.is_ok() {
            return;
        }
        tracing::error!("router panicked; restarting it from the store");
        actor = loop {
            match actor::RouterActor::recover(store.clone(), conversations.clone(), config).await {
                Ok(actor) => break actor,
                Err(error) => {
                    tracing::warn!(%error, "router restart failed; retrying");
                    tokio::time::sleep(RESTART_RETRY).await;
                }
            }
        };
    }
}

/// Wait between attempts to rebuild the router while the store is down.
const RESTART_RETRY: Duration = Duration::from_secs(1);

/// Handle to the router actor.
#[derive(Clone)]
pub struct Router {
    tx: mpsc::Sender<Command>,
}

impl Router {
    /// Loads queues and queued chats from the store and starts the actor.
    pub async fn spawn(
        store: DynStore,
        conversations: Conversations,
        config: RouterConfig,
    ) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
        let actor =
            actor::RouterActor::recover(store.clone(), conversations.clone(), config).await?;
        tokio::spawn(supervise(actor, rx, store, conversations, config));
        Ok(Self { tx })
    }

    async fn request<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, RouterError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| RouterError::Unavailable)?;
        answer.await.unwrap_or(Err(RouterError::Unavailable))
    }

    async fn tell(&self, command: Command) {
        // Only fails when the router stopped (shutdown); nothing to do then.
        let _ = self.tx.send(command).await;
    }

    pub async fn sign_in(&self, sign_in: AgentSignIn) -> Result<AgentState, RouterError> {
        self.request(|reply| Command::SignIn { sign_in, reply })
            .await
    }

    /// The agent's connection closed; a pending offer is withdrawn.
    pub async fn sign_out(&self, agent: UserId, connection: u64) {
        self.tell(Command::SignOut { agent, connection }).await
    }

    pub async fn set_status(
        &self,
        agent: UserId,
        status: AgentStatus,
    ) -> Result<AgentState, RouterError> {
        self.request(|reply| Command::SetStatus {
            agent,
            status,
            reply,
        })
        .await
    }

    /// A new chat entered its queue; `variables` are its customer's data,
    /// shown with every offer.
    pub async fn enqueue(&self, record: ConversationRecord, variables: Vec<CustomerVariable>) {
        self.tell(Command::Enqueue { record, variables }).await
    }

    /// The customer of a waiting chat connected: they get queue positions.
    pub async fn customer_attached(&self, chat: ConversationId, outbox: Outbox) {
        self.tell(Command::CustomerAttached { chat, outbox }).await
    }

    /// The customer of a chat disconnected; a waiting chat is abandoned if
    /// they do not come back within the grace period.
    pub async fn customer_detached(&self, chat: ConversationId, connection: u64) {
        self.tell(Command::CustomerDetached { chat, connection })
            .await
    }

    /// Starts an invitation; returns its id.
    pub async fn invite(&self, request: InviteRequest) -> Result<i64, RouterError> {
        self.request(|reply| Command::Invite { request, reply })
            .await
    }

    /// The inviter takes back the pending invitation of a chat.
    pub async fn cancel_invite(
        &self,
        chat: ConversationId,
        inviter: UserId,
    ) -> Result<(), RouterError> {
        self.request(|reply| Command::CancelInvite {
            chat,
            inviter,
            reply,
        })
        .await
    }

    /// An agent left a chat others stay in: their capacity frees up.
    pub async fn agent_left(&self, agent: UserId) {
        self.tell(Command::AgentLeft { agent }).await
    }

    pub async fn accept(
        &self,
        agent: UserId,
        chat: ConversationId,
    ) -> Result<Accepted, RouterError> {
        self.request(|reply| Command::Accept { agent, chat, reply })
            .await
    }

    pub async fn reject(&self, agent: UserId, chat: ConversationId) -> Result<(), RouterError> {
        self.request(|reply| Command::Reject { agent, chat, reply })
            .await
    }

    /// A conversation ended or was abandoned: its offer (if any) is withdrawn
    /// and its agents' capacity frees up.
    pub async fn chat_finished(&self, chat: ConversationId, agents: Vec<UserId>) {
        self.tell(Command::ChatFinished { chat, agents }).await
    }

    pub async fn queue_changed(&self, queue: Queue) {
        self.tell(Command::QueueChanged { queue }).await
    }

    /// Queue loads and agent states, straight from the routing state.
    pub async fn live(&self) -> Result<LiveState, RouterError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Live { reply })
            .await
            .map_err(|_| RouterError::Unavailable)?;
        answer.await.map_err(|_| RouterError::Unavailable)
    }

    pub async fn snapshot(&self) -> RoutingSnapshot {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Command::Snapshot { reply }).await.is_err() {
            return RoutingSnapshot::default();
        }
        answer.await.unwrap_or_default()
    }

    /// The agents signed in on this server now, with their status. Used by
    /// the colleague directory; an agent not listed is offline.
    pub async fn online_agents(&self) -> Vec<(UserId, AgentStatus)> {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Command::Online { reply }).await.is_err() {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::ProfileId;
    use crate::outbox::{self, CloseReason};
    use crate::store::{self, NewConversation};
    use crate::writer::CommitWriter;

    /// A router panic does not stop routing: the signed-in agent's console
    /// is closed with 1012 (it signs in again), the router is rebuilt from
    /// the store with the waiting chat queued again, and takes commands.
    #[tokio::test]
    async fn a_panicking_router_closes_consoles_and_restarts_from_the_store() {
        let store = store::connect("sqlite::memory:", 1).await.expect("store");
        let queue = store.create_queue("Support", 30, 0).await.expect("queue");
        store
            .create_conversation(NewConversation {
                id: ConversationId::random(),
                queue,
                customer_token_hash: "h".into(),
                customer_name: Some("Carla".into()),
                customer_email: None,
                now: 1_764_090_000_000,
            })
            .await
            .expect("conversation");
        let conversations = Conversations::new(store.clone(), CommitWriter::spawn(store.clone()));
        let config = RouterConfig {
            customer_grace: Duration::from_secs(60),
            agent_grace: Duration::from_secs(60),
        };
        let router = Router::spawn(store, conversations, config)
            .await
            .expect("router");
        let sign_in = |outbox| AgentSignIn {
            agent: UserId(7),
            // No queues: the agent is never offered the chat, so the
            // waiting count below depends on recovery alone.
            profile: Profile {
                id: ProfileId(1),
                name: "Back office".into(),
                queues: Vec::new(),
                media: Vec::new(),
            },
            capacity: 1,
            open_chats: 0,
            outbox,
        };
        let (console, inbox) = outbox::channel();
        router.sign_in(sign_in(console)).await.expect("sign in");
        assert_eq!(router.snapshot().await.agents_online, 1);

        router.tell(Command::Panic).await;
        assert_eq!(inbox.kick.kicked().await, CloseReason::Restarting);

        let after = router.snapshot().await;
        assert_eq!(after.waiting, 1);
        assert_eq!(after.agents_online, 0);
        let (console, _inbox) = outbox::channel();
        router
            .sign_in(sign_in(console))
            .await
            .expect("sign in again");
        assert_eq!(router.snapshot().await.agents_online, 1);
    }
}
