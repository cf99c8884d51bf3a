//! Live conversations: one actor per chat, owning its sequence numbers, its
//! participants' connections and the rules of who may say what.
//!
//! [`Conversations`] is the registry: it hands out the actor of a
//! conversation, starting it (and loading its state from the store) on first
//! use. Actors stop when nobody has been connected for a while; the next
//! request starts a fresh one from the store.

mod actor;
pub use actor::NewChat;
pub mod audience;
mod sent;

use crate::domain::choices::ChoiceError;
use crate::domain::conversation::{Audience, ConversationState, Party};
use crate::domain::ids::{AttachmentId, ConversationId, UserId};
use crate::domain::message::{ClientMsgId, MessageText};
use crate::outbox::{Frame, Outbox};
use crate::protocol::{ConversationView, ErrorCode, EventData};
use crate::store::EventKind;
use crate::store::{ConversationRecord, DynStore};
use crate::writer::CommitWriter;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Most events one conversation may hold; an explicit limit instead of an
/// unbounded history.
pub const MAX_EVENTS_PER_CONVERSATION: i64 = 10_000;
const COMMAND_CAPACITY: usize = 256;

/// Commands travel boxed: tokio allocates a channel's slots 32 at a time,
/// and 32 inline commands cost every chat's actor 2.6 KB while it idles
/// (docs/performance.md, S1); boxed they cost 256 bytes.
type CommandSender = mpsc::Sender<Box<Command>>;
type CommandReceiver = mpsc::Receiver<Box<Command>>;

/// Refusals and failures of conversation commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("conversation not found")]
    NotFound,
    #[error("the conversation has ended")]
    Ended,
    #[error("you are not a participant of this conversation")]
    NotParticipant,
    #[error("the conversation has reached its message limit")]
    Full,
    #[error("the chat log is unavailable; retry")]
    Unavailable,
    #[error("not allowed for this participant")]
    NotAllowed,
    #[error(transparent)]
    Choice(#[from] ChoiceError),
    #[error(
        "the last agent cannot leave while the customer is connected: end or transfer the chat"
    )]
    LastAgent,
    #[error("an attachment is unknown, not yours to send here, or already sent")]
    InvalidAttachment,
}

impl ChatError {
    pub fn code(self) -> ErrorCode {
        match self {
            ChatError::NotFound => ErrorCode::NotFound,
            ChatError::Ended => ErrorCode::ConversationEnded,
            ChatError::NotParticipant => ErrorCode::NotParticipant,
            ChatError::Full => ErrorCode::ConversationFull,
            ChatError::Unavailable => ErrorCode::Unavailable,
            ChatError::NotAllowed => ErrorCode::NotAllowed,
            ChatError::Choice(ChoiceError::InvalidOffer) => ErrorCode::InvalidChoices,
            ChatError::Choice(ChoiceError::UnknownOffer) => ErrorCode::UnknownOffer,
            ChatError::Choice(ChoiceError::InvalidOption) => ErrorCode::InvalidOption,
            ChatError::Choice(ChoiceError::AlreadyAnswered) => ErrorCode::AlreadyAnswered,
            ChatError::LastAgent => ErrorCode::LastAgent,
            ChatError::InvalidAttachment => ErrorCode::InvalidAttachment,
        }
    }
}

/// What a connection gets when it attaches: the conversation and the events
/// it missed (already filtered for its audience), to write before anything
/// from its outbox.
#[derive(Debug)]
pub struct Attached {
    pub view: ConversationView,
    pub backlog: Vec<Frame>,
}

/// Acknowledgement of a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub seq: i64,
    /// The customer-visible number (None for a private message).
    pub public_seq: Option<i64>,
    pub duplicate: bool,
}

impl Ack {
    /// The number `party` knows the message by.
    pub fn seq_for(&self, party: Party) -> i64 {
        match party {
            Party::Customer => self.public_seq.unwrap_or(self.seq),
            Party::Agent(_) => self.seq,
        }
    }
}

/// What a party writes: a text message, an offer of choices, or an answer.
#[derive(Debug, Clone)]
pub enum Contribution {
    Message {
        text: MessageText,
        audience: Audience,
        /// Uploaded files to attach; the actor checks they are the sender's.
        attachments: Vec<AttachmentId>,
    },
    OfferChoices {
        prompt: String,
        options: Vec<String>,
    },
    Answer {
        offer_id: String,
        option_id: Option<u32>,
    },
}

/// A server-written event for the log (invitations and their outcomes).
#[derive(Debug, Clone)]
pub struct Note {
    pub kind: EventKind,
    pub audience: Audience,
    pub body: String,
    pub data: Option<EventData>,
}

/// Whether an agent's leaving ended the chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// Other agents stay.
    Stayed,
    /// They were the last agent and the customer was gone: the chat ended.
    Ended,
}

/// What losing an agent (their console stayed away past the grace
/// period) did to a conversation.
#[derive(Debug)]
pub enum Lost {
    /// Other agents carry on without them.
    Left,
    /// They were the last agent: the chat is waiting again, with its
    /// history. The router routes it and tells these customer connections
    /// their place in the queue.
    Requeued {
        record: ConversationRecord,
        customers: Vec<Outbox>,
    },
    /// The customer was gone too: the chat ended; these agents' capacity
    /// frees up.
    Ended { agents: Vec<UserId> },
}

type Reply<T> = oneshot::Sender<Result<T, ChatError>>;

enum Command {
    Attach {
        party: Party,
        outbox: Outbox,
        after_seq: i64,
        reply: Reply<Attached>,
    },
    Detach {
        connection: u64,
    },
    Send {
        party: Party,
        name: String,
        client_msg_id: ClientMsgId,
        /// Boxed, like `Note::note`: a command channel allocates its first
        /// block of slots when the actor starts, so the enum's size is
        /// paid per conversation even while it is idle.
        contribution: Box<Contribution>,
        reply: Reply<Ack>,
    },
    Typing {
        party: Party,
        name: String,
        typing: bool,
        private: bool,
    },
    Leave {
        agent: UserId,
        name: String,
        reply: Reply<Left>,
    },
    Note {
        note: Box<Note>,
        reply: Reply<()>,
    },
    AgentLost {
        agent: UserId,
        name: String,
        reply: Reply<Lost>,
    },
    Join {
        agent: UserId,
        name: String,
        reply: Reply<ConversationView>,
    },
    End {
        party: Party,
        name: String,
        reply: Reply<(ConversationState, Vec<UserId>)>,
    },
    /// Test seam: makes the actor panic, to prove a panic is contained. It
    /// exists only in the crate's unit tests, so no build can trigger it.
    #[cfg(test)]
    Panic {
        reply: Reply<()>,
    },
}

/// The registry of conversation actors.
#[derive(Clone)]
pub struct Conversations {
    actors: Arc<Mutex<HashMap<ConversationId, CommandSender>>>,
    store: DynStore,
    writer: CommitWriter,
}

impl Conversations {
    pub fn new(store: DynStore, writer: CommitWriter) -> Self {
        Self {
            actors: Arc::default(),
            store,
            writer,
        }
    }

    /// The command channel of a conversation's actor, starting it if needed.
    /// The lock is held only for the map lookup, never across an await.
    fn actor(&self, id: &ConversationId) -> CommandSender {
        let mut actors = self.actors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = actors.get(id) {
            if !tx.is_closed() {
                return tx.clone();
            }
        }
        let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
        actor::spawn(
            id.clone(),
            self.store.clone(),
            self.writer.clone(),
            rx,
            None,
        );
        actors.insert(id.clone(), tx.clone());
        tx
    }

    /// Starts the actor of a chat just created, from what its creation
    /// stored, so the customer's first connection reads nothing
    /// (`actor::NewChat`). Does nothing if one is already running.
    pub fn started(&self, chat: NewChat) {
        let id = chat.record.id.clone();
        let mut actors = self.actors.lock().unwrap_or_else(|p| p.into_inner());
        if actors.get(&id).is_some_and(|tx| !tx.is_closed()) {
            return;
        }
        let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
        actor::spawn(
            id.clone(),
            self.store.clone(),
            self.writer.clone(),
            rx,
            Some(chat),
        );
        actors.insert(id, tx);
    }

    fn forget_if_closed(&self, id: &ConversationId) {
        let mut actors = self.actors.lock().unwrap_or_else(|p| p.into_inner());
        if actors.get(id).is_some_and(|tx| tx.is_closed()) {
            actors.remove(id);
        }
    }

    /// Sends a request; if the actor stopped in between, starts a new one once.
    async fn request<T>(
        &self,
        id: &ConversationId,
        make: impl Fn(Reply<T>) -> Command,
    ) -> Result<T, ChatError> {
        for _ in 0..2 {
            let (reply, answer) = oneshot::channel();
            if self.actor(id).send(Box::new(make(reply))).await.is_err() {
                self.forget_if_closed(id);
                continue;
            }
            return answer.await.unwrap_or(Err(ChatError::Unavailable));
        }
        Err(ChatError::Unavailable)
    }

    /// Subscribes a connection and returns what it missed after `after_seq`.
    pub async fn attach(
        &self,
        id: &ConversationId,
        party: Party,
        outbox: Outbox,
        after_seq: i64,
    ) -> Result<Attached, ChatError> {
        self.request(id, |reply| Command::Attach {
            party,
            outbox: outbox.clone(),
            after_seq,
            reply,
        })
        .await
    }

    /// Unsubscribes a connection (fire and forget).
    pub fn detach(&self, id: &ConversationId, connection: u64) {
        let tx = self.actor(id);
        let _ = tx.try_send(Box::new(Command::Detach { connection }));
    }

    /// Stores a contribution and delivers it; returns once it is durable.
    pub async fn send(
        &self,
        id: &ConversationId,
        party: Party,
        name: &str,
        client_msg_id: ClientMsgId,
        contribution: Contribution,
    ) -> Result<Ack, ChatError> {
        self.request(id, |reply| Command::Send {
            party,
            name: name.to_owned(),
            client_msg_id: client_msg_id.clone(),
            contribution: Box::new(contribution.clone()),
            reply,
        })
        .await
    }

    /// Forwards a typing indicator (best effort, not stored). Private typing
    /// reaches agents only.
    pub fn typing(
        &self,
        id: &ConversationId,
        party: Party,
        name: &str,
        typing: bool,
        private: bool,
    ) {
        let _ = self.actor(id).try_send(Box::new(Command::Typing {
            party,
            name: name.to_owned(),
            typing,
            private,
        }));
    }

    /// Appends a server-written event (e.g. an invitation's outcome).
    pub async fn note(&self, id: &ConversationId, note: Note) -> Result<(), ChatError> {
        self.request(id, |reply| Command::Note {
            note: Box::new(note.clone()),
            reply,
        })
        .await
    }

    /// An agent leaves a conversation.
    pub async fn leave(
        &self,
        id: &ConversationId,
        agent: UserId,
        name: &str,
    ) -> Result<Left, ChatError> {
        self.request(id, |reply| Command::Leave {
            agent,
            name: name.to_owned(),
            reply,
        })
        .await
    }

    /// The agent's console stayed away past the grace period: they leave
    /// the chat, which goes back to the queue if they were its last agent.
    pub async fn agent_lost(
        &self,
        id: &ConversationId,
        agent: UserId,
        name: &str,
    ) -> Result<Lost, ChatError> {
        self.request(id, |reply| Command::AgentLost {
            agent,
            name: name.to_owned(),
            reply,
        })
        .await
    }

    /// Adds an agent that routing handed the chat to. Idempotent.
    pub async fn join(
        &self,
        id: &ConversationId,
        agent: UserId,
        name: &str,
    ) -> Result<ConversationView, ChatError> {
        self.request(id, |reply| Command::Join {
            agent,
            name: name.to_owned(),
            reply,
        })
        .await
    }

    /// Ends the conversation; returns its final state and the agents that
    /// were in it (whose capacity frees up).
    pub async fn end(
        &self,
        id: &ConversationId,
        party: Party,
        name: &str,
    ) -> Result<(ConversationState, Vec<UserId>), ChatError> {
        self.request(id, |reply| Command::End {
            party,
            name: name.to_owned(),
            reply,
        })
        .await
    }

    /// Number of running conversation actors.
    pub fn live_count(&self) -> usize {
        self.actors.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{self, CloseReason};
    use crate::store::{self, NewConversation};

    async fn chat() -> (Conversations, ConversationId) {
        let store = store::connect("sqlite::memory:", 1).await.expect("store");
        let queue = store.create_queue("Support", 30, 0).await.expect("queue");
        let id = ConversationId::random();
        store
            .create_conversation(NewConversation {
                id: id.clone(),
                queue,
                customer_token_hash: "h".into(),
                customer_name: Some("Carla".into()),
                customer_email: None,
                now: 1_764_090_000_000,
            })
            .await
            .expect("conversation");
        let writer = CommitWriter::spawn(store.clone());
        (Conversations::new(store, writer), id)
    }

    async fn say(chats: &Conversations, id: &ConversationId, msg_id: &str, text: &str) -> Ack {
        let contribution = Contribution::Message {
            text: MessageText::parse(text.into()).expect("text"),
            audience: Audience::Everyone,
            attachments: Vec::new(),
        };
        let msg_id = ClientMsgId::parse(msg_id.into()).expect("id");
        chats
            .send(id, Party::Customer, "Carla", msg_id, contribution)
            .await
            .expect("send")
    }

    /// A panicking actor costs neither the process nor a message: its
    /// connection is closed so the client resumes, the next command starts a
    /// fresh actor from the store, numbering continues and a resend is
    /// still recognised.
    #[tokio::test]
    async fn a_panicking_actor_closes_its_connections_and_restarts_from_the_store() {
        let (chats, id) = chat().await;
        let (outbox, inbox) = outbox::channel();
        chats
            .attach(&id, Party::Customer, outbox, 0)
            .await
            .expect("attach");
        let first = say(&chats, &id, "m1", "before the panic").await;

        let panicked = chats.request(&id, |reply| Command::Panic { reply }).await;
        assert_eq!(panicked, Err(ChatError::Unavailable));
        assert_eq!(inbox.kick.kicked().await, CloseReason::Restarting);

        let resent = say(&chats, &id, "m1", "before the panic").await;
        assert!(resent.duplicate);
        assert_eq!(resent.seq, first.seq);
        let second = say(&chats, &id, "m2", "after the panic").await;
        assert!(!second.duplicate);
        assert_eq!(second.seq, first.seq + 1);
        assert_eq!(second.public_seq, first.public_seq.map(|s| s + 1));

        // The client reconnects and resumes from before the panic.
        let (outbox, _inbox) = outbox::channel();
        let resumed = chats
            .attach(&id, Party::Customer, outbox, 0)
            .await
            .expect("resume");
        assert_eq!(Some(resumed.view.last_seq), second.public_seq);
        let texts: Vec<&str> = resumed.backlog.iter().map(|f| f.as_ref()).collect();
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(texts[0].contains("before the panic"), "{texts:?}");
        assert!(texts[1].contains("after the panic"), "{texts:?}");
        assert_eq!(chats.live_count(), 1);
    }
}
