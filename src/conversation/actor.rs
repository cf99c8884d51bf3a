//! The conversation actor: a thin shell around [`ConversationRules`] that
//! numbers events, commits them through the group-commit writer and only
//! then fans them out to the participants' connections.

use super::audience::Rendered;
use super::sent::SentIds;
use super::{
    Ack, Attached, ChatError, Command, CommandReceiver, Contribution, Left, Lost,
    MAX_EVENTS_PER_CONVERSATION,
};
use crate::clock::wall_ms;
use crate::domain::choices::{ChoiceBook, ChoiceOffer};
use crate::domain::conversation::{
    AgentLost, Audience, ConversationError, ConversationRules, ConversationState, Party,
};
use crate::domain::customer::CustomerVariable;
use crate::domain::ids::{AttachmentId, ConversationId, UserId};
use crate::outbox::{CloseReason, Frame, Outbox};
use crate::protocol::{AuthorView, ConversationView, CustomerView, EventData, ServerEvent};
use crate::store::{
    AttachmentMeta, Author, ConversationRecord, DynStore, EventKind, LogPosition, NewEvent,
    StoreError,
};
use crate::writer::CommitWriter;
use futures_util::FutureExt;
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

/// An actor with no connected participant stops after this long.
const IDLE_STOP: Duration = Duration::from_secs(300);
/// Events read from the store per page when replaying.
const REPLAY_PAGE: i64 = 1000;

/// What a chat just created is known to be, so its actor needs no reads:
/// no events, no agents, the customer's data as stored with it.
pub struct NewChat {
    pub record: ConversationRecord,
    pub variables: Vec<CustomerVariable>,
    pub queue_name: String,
}

pub(super) fn spawn(
    id: ConversationId,
    store: DynStore,
    writer: CommitWriter,
    rx: CommandReceiver,
    new_chat: Option<NewChat>,
) {
    tokio::spawn(async move {
        let actor = match new_chat {
            Some(chat) => Ok(Box::new(Actor::fresh(chat, store, writer))),
            None => Actor::load(id.clone(), store, writer).await.map(Box::new),
        };
        match actor {
            Ok(actor) => {
                // A panic (a bug) must cost one conversation's live state,
                // never the process. Tokio would contain it too; catching it
                // here names the conversation in the log. Unwinding drops the
                // actor: `Drop` closes its connections (they resume) and the
                // closed command channel makes the next request start a fresh
                // actor from the store (`Conversations::actor`).
                if AssertUnwindSafe(actor.run(rx))
                    .catch_unwind()
                    .await
                    .is_err()
                {
                    tracing::error!(conversation = %id.0, "conversation actor panicked; it restarts from the store on the next command");
                }
            }
            Err(error) => refuse_all(rx, error).await,
        }
    });
}

/// Answers every queued command with `error`, then stops.
async fn refuse_all(mut rx: CommandReceiver, error: ChatError) {
    rx.close();
    while let Some(command) = rx.recv().await {
        match *command {
            Command::Attach { reply, .. } => drop(reply.send(Err(error))),
            Command::Send { reply, .. } => drop(reply.send(Err(error))),
            Command::Join { reply, .. } => drop(reply.send(Err(error))),
            Command::Leave { reply, .. } => drop(reply.send(Err(error))),
            Command::Note { reply, .. } => drop(reply.send(Err(error))),
            Command::AgentLost { reply, .. } => drop(reply.send(Err(error))),
            Command::End { reply, .. } => drop(reply.send(Err(error))),
            #[cfg(test)]
            Command::Panic { reply } => drop(reply.send(Err(error))),
            Command::Detach { .. } | Command::Typing { .. } => {}
        }
    }
}

struct Subscriber {
    party: Party,
    outbox: Outbox,
}

struct Actor {
    id: ConversationId,
    store: DynStore,
    writer: CommitWriter,
    record: ConversationRecord,
    /// The customer's data, fixed when the chat started.
    variables: Vec<CustomerVariable>,
    queue_name: String,
    rules: ConversationRules,
    next_seq: i64,
    /// Next number of an event everyone sees (customers count these).
    next_public_seq: i64,
    /// The stored (sender key, client message id) pairs, hashed: idempotency
    /// is per sender, and a hit is confirmed in the store.
    sent: SentIds,
    /// Offers of choices and whether each was answered.
    choices: ChoiceBook,
    /// Agents whose joining is in the log; recovery announces the others.
    announced: HashSet<UserId>,
    /// Set after a failed commit: its outcome is unknown (it may have
    /// happened), so numbering is re-read from the store before the next
    /// write, and whatever did land is delivered.
    position_uncertain: bool,
    subscribers: Vec<Subscriber>,
    /// Set while the customer has been told that no agent is connected.
    agents_away: bool,
}

/// An actor that stops while connections are attached (a panic unwinding
/// it, or the registry going away) closes them: they would otherwise stay
/// open and silently miss this conversation's events. Their clients
/// reconnect and resume from the store by `last_seq`. After a normal idle
/// stop the list is empty.
impl Drop for Actor {
    fn drop(&mut self) {
        for s in &self.subscribers {
            s.outbox.close(CloseReason::Restarting);
        }
    }
}

impl From<ConversationError> for ChatError {
    fn from(e: ConversationError) -> Self {
        match e {
            ConversationError::Ended => ChatError::Ended,
            ConversationError::NotParticipant => ChatError::NotParticipant,
            ConversationError::LastAgent => ChatError::LastAgent,
        }
    }
}

fn unavailable(e: StoreError) -> ChatError {
    tracing::warn!(error = %e, "chat log unavailable");
    ChatError::Unavailable
}

impl Actor {
    /// The actor of a chat created a moment ago (by this process, which
    /// is the only writer of its log until the customer connects): the six
    /// reads of `load` would only find it empty. In a burst of thousands of
    /// joins they were most of the database's work (docs/performance.md, S3).
    fn fresh(chat: NewChat, store: DynStore, writer: CommitWriter) -> Self {
        Self {
            rules: ConversationRules::new(chat.record.state, Vec::new()),
            id: chat.record.id.clone(),
            store,
            writer,
            record: chat.record,
            variables: chat.variables,
            queue_name: chat.queue_name,
            next_seq: 1,
            next_public_seq: 1,
            sent: SentIds::default(),
            choices: ChoiceBook::default(),
            announced: HashSet::new(),
            position_uncertain: false,
            subscribers: Vec::new(),
            agents_away: false,
        }
    }

    async fn load(
        id: ConversationId,
        store: DynStore,
        writer: CommitWriter,
    ) -> Result<Self, ChatError> {
        let record = store
            .conversation(&id)
            .await
            .map_err(unavailable)?
            .ok_or(ChatError::NotFound)?;
        let position = store.log_position(&id).await.map_err(unavailable)?;
        let agents = store.conversation_agents(&id).await.map_err(unavailable)?;
        let choices = load_choices(&store, &id).await?;
        let variables = store.customer_variables(&id).await.map_err(unavailable)?;
        let queue_name = store
            .list_queues()
            .await
            .map_err(unavailable)?
            .into_iter()
            .find(|q| q.id == record.queue)
            .map(|q| q.name)
            .unwrap_or_default();
        Ok(Self {
            rules: ConversationRules::new(record.state, agents),
            id,
            store,
            writer,
            record,
            variables,
            queue_name,
            next_seq: position.last_seq + 1,
            next_public_seq: position.last_public_seq + 1,
            sent: sent_ids(&position),
            choices,
            announced: position.announced,
            position_uncertain: false,
            subscribers: Vec::new(),
            agents_away: false,
        })
    }

    /// Takes commands until nobody is attached for [`IDLE_STOP`] or the
    /// channel closes. The actor is boxed and each command's future too, so
    /// an idle chat's task holds pointers, not the largest command's state
    /// (3.9 KB per idle chat before; docs/performance.md, S1).
    async fn run(self: Box<Self>, mut rx: CommandReceiver) {
        let mut actor = self;
        loop {
            let command = if actor.subscribers.is_empty() {
                match tokio::time::timeout(IDLE_STOP, rx.recv()).await {
                    Ok(command) => command,
                    Err(_) => {
                        // Stop taking commands, but answer those already queued.
                        rx.close();
                        while let Some(command) = rx.recv().await {
                            Box::pin(actor.handle(*command)).await;
                        }
                        break;
                    }
                }
            } else {
                rx.recv().await
            };
            let Some(command) = command else { break };
            Box::pin(actor.handle(*command)).await;
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Attach {
                party,
                outbox,
                after_seq,
                reply,
            } => {
                let _ = reply.send(self.attach(party, outbox, after_seq).await);
            }
            Command::Detach { connection } => self.detach(connection),
            Command::Send {
                party,
                name,
                client_msg_id,
                contribution,
                reply,
            } => {
                let client_msg_id = client_msg_id.as_str().to_owned();
                let result = self.send(party, name, client_msg_id, *contribution).await;
                let _ = reply.send(result);
            }
            Command::Typing {
                party,
                name,
                typing,
                private,
            } => self.typing(party, name, typing, private),
            Command::Leave { agent, name, reply } => {
                let _ = reply.send(self.leave(agent, name).await);
            }
            Command::Note { note, reply } => {
                let _ = reply.send(self.note(*note).await);
            }
            Command::Join { agent, name, reply } => {
                let _ = reply.send(self.join(agent, name).await);
            }
            Command::AgentLost { agent, name, reply } => {
                let _ = reply.send(self.agent_lost(agent, name).await);
            }
            Command::End { party, name, reply } => {
                let _ = reply.send(self.end(party, name).await);
            }
            #[cfg(test)]
            Command::Panic { reply } => {
                drop(reply);
                panic!("injected conversation actor panic");
            }
        }
    }

    fn customer_connected(&self) -> bool {
        self.subscribers.iter().any(|s| s.party == Party::Customer)
    }

    fn agent_connected(&self) -> bool {
        self.subscribers.iter().any(|s| s.party != Party::Customer)
    }

    fn agent_presence_frame(&self, connected: bool) -> Frame {
        ServerEvent::AgentPresence {
            conversation_id: self.id.0.clone(),
            connected,
        }
        .to_frame()
    }

    /// Tells the customer when the last agent's console of an active chat
    /// drops, and when one is back (not stored). A chat whose agents left
    /// on purpose is not "away": only a detach starts it.
    fn announce_agent_presence(&mut self, connected: bool) {
        // Only changes are told: `agents_away` is what the customer knows.
        if connected != self.agents_away {
            return;
        }
        self.agents_away = !connected;
        let frame = self.agent_presence_frame(connected);
        for s in self
            .subscribers
            .iter()
            .filter(|s| s.party == Party::Customer)
        {
            s.outbox.push_frame(frame.clone());
        }
    }

    fn view(&self, party: Party) -> ConversationView {
        ConversationView {
            conversation_id: self.id.0.clone(),
            queue_id: self.record.queue,
            queue_name: self.queue_name.clone(),
            state: self.rules.state(),
            customer: CustomerView::new(&self.record, self.variables.clone()),
            customer_connected: self.customer_connected(),
            last_seq: match party {
                Party::Customer => self.next_public_seq - 1,
                Party::Agent(_) => self.next_seq - 1,
            },
        }
    }

    /// Tells agents whether the customer is connected (not stored). Nobody
    /// needs it once the conversation is over.
    fn announce_presence(&self) {
        if self.rules.state().is_final() {
            return;
        }
        let frame = ServerEvent::CustomerPresence {
            conversation_id: self.id.0.clone(),
            connected: self.customer_connected(),
        }
        .to_frame();
        for s in self
            .subscribers
            .iter()
            .filter(|s| s.party != Party::Customer)
        {
            s.outbox.push_frame(frame.clone());
        }
    }

    async fn attach(
        &mut self,
        party: Party,
        outbox: Outbox,
        after_seq: i64,
    ) -> Result<Attached, ChatError> {
        if let Party::Agent(agent) = party {
            if !self.rules.has_agent(agent) {
                return Err(ChatError::NotParticipant);
            }
        }
        self.settle_position().await?;
        // Customers resume by the public numbering and read only public
        // events; both reads still pass through the audience filter.
        let mut backlog: Vec<Frame> = Vec::new();
        let mut cursor = after_seq.max(0);
        // The numbering is settled, so this actor knows the last event: a
        // client that has it (a new chat's first connection) needs no read.
        let last = match party {
            Party::Customer => self.next_public_seq - 1,
            Party::Agent(_) => self.next_seq - 1,
        };
        let mut up_to_date = cursor >= last;
        while !up_to_date {
            let page = match party {
                Party::Customer => {
                    self.store
                        .events_after_public(&self.id, cursor, REPLAY_PAGE)
                        .await
                }
                Party::Agent(_) => self.store.events_after(&self.id, cursor, REPLAY_PAGE).await,
            }
            .map_err(unavailable)?;
            let full_page = page.len() as i64 == REPLAY_PAGE;
            for event in &page {
                cursor = match party {
                    Party::Customer => event.public_seq.unwrap_or(cursor),
                    Party::Agent(_) => event.seq,
                };
                backlog.extend(Rendered::new(event).frame_for(party));
            }
            up_to_date = !full_page;
        }
        if party == Party::Customer && self.agents_away {
            // A customer who reloads while the agent is away hears it too.
            backlog.push(self.agent_presence_frame(false));
        }
        let was_connected = self.customer_connected();
        let connection = outbox.connection();
        // A connection attaches once: a repeated attach replaces the old one.
        self.subscribers
            .retain(|s| !s.outbox.is_closed() && s.outbox.connection() != connection);
        self.subscribers.push(Subscriber { party, outbox });
        if party == Party::Customer && !was_connected {
            self.announce_presence();
        }
        if party != Party::Customer {
            self.announce_agent_presence(true);
        }
        Ok(Attached {
            view: self.view(party),
            backlog,
        })
    }

    fn detach(&mut self, connection: u64) {
        let was_connected = self.customer_connected();
        let agent_was_connected = self.agent_connected();
        self.subscribers
            .retain(|s| s.outbox.connection() != connection && !s.outbox.is_closed());
        if was_connected && !self.customer_connected() {
            self.announce_presence();
        }
        let active_with_agents =
            self.rules.state() == ConversationState::Active && self.rules.agents().count() > 0;
        if agent_was_connected && !self.agent_connected() && active_with_agents {
            self.announce_agent_presence(false);
        }
    }

    /// Delivers a committed event to every subscriber its audience admits.
    fn fan_out(&self, event: &NewEvent) {
        let rendered = Rendered::new(event);
        for s in &self.subscribers {
            if let Some(frame) = rendered.frame_for(s.party) {
                s.outbox.push_frame(frame);
            }
        }
    }

    fn author(&self, party: Party, name: String) -> Author {
        match party {
            Party::Customer => Author::Customer { name },
            Party::Agent(id) => Author::Agent { id, name },
        }
    }

    /// Re-reads the conversation after a commit whose outcome is unknown and
    /// delivers whatever that commit did store, so nobody sees a gap.
    async fn settle_position(&mut self) -> Result<(), ChatError> {
        if !self.position_uncertain {
            return Ok(());
        }
        let position = self
            .store
            .log_position(&self.id)
            .await
            .map_err(unavailable)?;
        let record = self
            .store
            .conversation(&self.id)
            .await
            .map_err(unavailable)?;
        let agents = self
            .store
            .conversation_agents(&self.id)
            .await
            .map_err(unavailable)?;
        let landed = self
            .store
            .events_after(&self.id, self.next_seq - 1, REPLAY_PAGE)
            .await
            .map_err(unavailable)?;
        if let Some(record) = record {
            self.rules = ConversationRules::new(record.state, agents);
            self.record = record;
        }
        self.next_seq = position.last_seq + 1;
        self.next_public_seq = position.last_public_seq + 1;
        self.sent = sent_ids(&position);
        self.announced = position.announced;
        self.choices = load_choices(&self.store, &self.id).await?;
        self.position_uncertain = false;
        for event in &landed {
            self.fan_out(event);
        }
        Ok(())
    }

    fn new_event(
        &self,
        kind: EventKind,
        audience: Audience,
        author: Author,
        body: String,
        data: Option<EventData>,
        client_msg_id: Option<String>,
    ) -> NewEvent {
        NewEvent {
            conversation: self.id.clone(),
            seq: self.next_seq,
            public_seq: (audience == Audience::Everyone).then_some(self.next_public_seq),
            kind,
            audience,
            author,
            body,
            data: data.and_then(|d| serde_json::to_string(&d).ok()),
            client_msg_id,
            created_at: wall_ms(),
            attachments: Vec::new(),
        }
    }

    /// Numbering after `event` is stored.
    fn advance(&mut self, event: &NewEvent) {
        self.next_seq = event.seq + 1;
        if let Some(public) = event.public_seq {
            self.next_public_seq = public + 1;
        }
    }

    /// Commits through the group-commit writer, then delivers.
    async fn commit(&mut self, event: NewEvent) -> Result<(), ChatError> {
        if let Err(e) = self.writer.commit(event.clone()).await {
            self.position_uncertain = true;
            return Err(unavailable(e));
        }
        self.advance(&event);
        if let Some(id) = &event.client_msg_id {
            self.sent.insert(&event.author.sender_key(), id);
        }
        self.fan_out(&event);
        Ok(())
    }

    async fn send(
        &mut self,
        party: Party,
        name: String,
        client_msg_id: String,
        contribution: Contribution,
    ) -> Result<Ack, ChatError> {
        self.settle_position().await?;
        let author = self.author(party, name);
        // A resend gets its original ack, even after the chat ended.
        let key = (author.sender_key(), client_msg_id);
        if self.sent.may_contain(&key.0, &key.1) {
            let stored = self
                .store
                .find_client_msg(&self.id, &key.0, &key.1)
                .await
                .map_err(unavailable)?;
            if let Some((seq, public_seq)) = stored {
                return Ok(Ack {
                    seq,
                    public_seq,
                    duplicate: true,
                });
            }
        }
        self.rules.check_send(party)?;
        // Only contributions count against the limit: joining and ending always work.
        if self.next_seq > MAX_EVENTS_PER_CONVERSATION {
            return Err(ChatError::Full);
        }
        let requested = match &contribution {
            Contribution::Message { attachments, .. } => attachments.clone(),
            _ => Vec::new(),
        };
        let (kind, audience, body, data, answered) = match (contribution, party) {
            (Contribution::Message { audience, .. }, Party::Customer)
                if audience != Audience::Everyone =>
            {
                return Err(ChatError::NotAllowed)
            }
            (Contribution::Message { text, audience, .. }, _) => {
                (EventKind::Message, audience, text.into_string(), None, None)
            }
            (Contribution::OfferChoices { prompt, options }, Party::Agent(_)) => {
                let offer =
                    ChoiceOffer::parse(uuid::Uuid::new_v4().to_string(), &prompt, &options)?;
                let body = offer.as_text();
                (
                    EventKind::Choices,
                    Audience::Everyone,
                    body,
                    Some(EventData::Choices(offer)),
                    None,
                )
            }
            (
                Contribution::Answer {
                    offer_id,
                    option_id,
                },
                Party::Customer,
            ) => match option_id {
                Some(option_id) => {
                    let option = self.choices.check_answer(&offer_id, option_id)?;
                    let data = EventData::Choice {
                        offer_id: offer_id.clone(),
                        option_id,
                        label: option.label.clone(),
                    };
                    (
                        EventKind::Choice,
                        Audience::Everyone,
                        // Readable on its own in the log and transcripts.
                        format!("Chose: {}", option.label),
                        Some(data),
                        Some(offer_id),
                    )
                }
                None => {
                    self.choices.check_dismiss(&offer_id)?;
                    let data = EventData::Dismissed {
                        offer_id: offer_id.clone(),
                    };
                    let body = "Dismissed the choices".to_owned();
                    (
                        EventKind::ChoicesDismissed,
                        Audience::Everyone,
                        body,
                        Some(data),
                        Some(offer_id),
                    )
                }
            },
            _ => return Err(ChatError::NotAllowed),
        };
        let offered = match &data {
            Some(EventData::Choices(offer)) => Some(offer.clone()),
            _ => None,
        };
        let attachments = self.check_attachments(party, &requested).await?;
        let mut event = self.new_event(kind, audience, author, body, data, Some(key.1));
        // Committing the event binds these files to it, with its audience.
        event.attachments = attachments;
        let (seq, public_seq) = (event.seq, event.public_seq);
        self.commit(event).await?;
        if let Some(offer) = offered {
            self.choices.offered(offer);
        }
        if let Some(offer_id) = answered {
            self.choices.closed(&offer_id);
        }
        Ok(Ack {
            seq,
            public_seq,
            duplicate: false,
        })
    }

    /// The files a message may carry: each uploaded by its sender to this
    /// conversation and not yet attached to a message. Checked here, where
    /// this conversation's sends are serialised, so no file is sent twice.
    async fn check_attachments(
        &self,
        party: Party,
        ids: &[AttachmentId],
    ) -> Result<Vec<AttachmentMeta>, ChatError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let found = self.store.attachments(ids).await.map_err(unavailable)?;
        ids.iter()
            .map(|id| {
                found
                    .iter()
                    .find(|a| &a.id == id)
                    .filter(|a| a.conversation == self.id && a.uploader == party)
                    .filter(|a| a.event_seq.is_none())
                    .map(|a| a.meta())
                    .ok_or(ChatError::InvalidAttachment)
            })
            .collect()
    }

    fn typing(&mut self, party: Party, name: String, typing: bool, private: bool) {
        if self.rules.check_send(party).is_err() {
            return;
        }
        // Private typing is an agents-only event like a private message.
        let audience = if private {
            Audience::AgentsOnly
        } else {
            Audience::Everyone
        };
        let author = match party {
            Party::Customer => AuthorView::Customer { name },
            Party::Agent(_) => AuthorView::Agent { name },
        };
        let frame = ServerEvent::Typing {
            conversation_id: self.id.0.clone(),
            author,
            typing,
        }
        .to_frame();
        for s in self
            .subscribers
            .iter()
            .filter(|s| s.party != party && audience.admits(s.party))
        {
            s.outbox.push_frame(frame.clone());
        }
    }

    /// Idempotent: an agent already announced is not announced again, and
    /// one whose join never reached the log (a crash right after the accept)
    /// is announced now.
    async fn join(&mut self, agent: UserId, name: String) -> Result<ConversationView, ChatError> {
        self.settle_position().await?;
        let mut rules = self.rules.clone();
        rules.join(agent)?;
        if !self.announced.contains(&agent) {
            let author = Author::Agent {
                id: agent,
                name: name.clone(),
            };
            let body = format!("{name} joined the chat");
            let event = self.new_event(
                EventKind::Joined,
                Audience::Everyone,
                author,
                body,
                None,
                None,
            );
            self.commit(event).await?;
            self.announced.insert(agent);
        }
        self.rules = rules;
        self.record.state = self.rules.state();
        Ok(self.view(Party::Agent(agent)))
    }

    /// Ends the conversation for everyone. The store decides the final state
    /// (an accepted chat ends, an unaccepted one is abandoned) and names the
    /// agents whose capacity frees up.
    async fn end(
        &mut self,
        party: Party,
        name: String,
    ) -> Result<(ConversationState, Vec<UserId>), ChatError> {
        self.settle_position().await?;
        let expected = self.rules.clone().end(party)?;
        let body = if expected == ConversationState::Abandoned {
            format!("{name} left before an agent answered")
        } else {
            format!("{name} ended the chat")
        };
        self.finish(party, name, body).await
    }

    /// Ends the conversation with `body` as the `ended` event's text.
    async fn finish(
        &mut self,
        party: Party,
        name: String,
        body: String,
    ) -> Result<(ConversationState, Vec<UserId>), ChatError> {
        let author = self.author(party, name);
        let event = self.new_event(
            EventKind::Ended,
            Audience::Everyone,
            author,
            body,
            None,
            None,
        );
        match self.writer.finish(event.clone()).await {
            Ok(Some((state, agents))) => {
                self.rules = ConversationRules::new(state, []);
                self.record.state = state;
                self.advance(&event);
                self.fan_out(&event);
                Ok((state, agents))
            }
            Ok(None) => {
                // Someone else (another node, or recovery) closed it first.
                self.position_uncertain = true;
                Err(ChatError::Ended)
            }
            Err(e) => {
                self.position_uncertain = true;
                Err(unavailable(e))
            }
        }
    }

    /// Appends a server-written event while the chat is live.
    async fn note(&mut self, note: super::Note) -> Result<(), ChatError> {
        self.settle_position().await?;
        if self.rules.state().is_final() {
            return Err(ChatError::Ended);
        }
        let event = self.new_event(
            note.kind,
            note.audience,
            Author::System,
            note.body,
            note.data,
            None,
        );
        self.commit(event).await
    }

    /// An agent leaves; the others (and the customer) see it. The last agent
    /// leaving a customer who is gone ends the chat.
    async fn leave(&mut self, agent: UserId, name: String) -> Result<Left, ChatError> {
        self.settle_position().await?;
        let mut rules = self.rules.clone();
        let ends = rules.leave(agent, self.customer_connected())?;
        if ends {
            self.end(Party::Agent(agent), name).await?;
            return Ok(Left::Ended);
        }
        let body = format!("{name} left the chat");
        self.remove_agent(agent, name, body, rules).await?;
        Ok(Left::Stayed)
    }

    /// The agent's console stayed away past the grace period: the others
    /// carry on, or, if they were the last agent, the chat goes back to the
    /// queue (ending instead if the customer is gone too).
    async fn agent_lost(&mut self, agent: UserId, name: String) -> Result<Lost, ChatError> {
        self.settle_position().await?;
        let mut rules = self.rules.clone();
        match rules.agent_lost(agent, self.customer_connected())? {
            AgentLost::Left => {
                let body = format!("{name} lost their connection and left the chat");
                self.remove_agent(agent, name, body, rules).await?;
                Ok(Lost::Left)
            }
            AgentLost::Ended => {
                let body = format!("{name} lost their connection; the chat ended");
                let (_, agents) = self.finish(Party::Agent(agent), name, body).await?;
                self.agents_away = false;
                Ok(Lost::Ended { agents })
            }
            AgentLost::Requeued => self.requeue(agent, name, rules).await,
        }
    }

    /// The last agent is lost with the customer still here: the chat waits
    /// for another agent, who will see its whole history.
    async fn requeue(
        &mut self,
        agent: UserId,
        name: String,
        rules: ConversationRules,
    ) -> Result<Lost, ChatError> {
        let event = self.new_event(
            EventKind::Left,
            Audience::Everyone,
            Author::Agent {
                id: agent,
                name: name.clone(),
            },
            format!("{name} lost their connection; you are back in the queue for the next agent"),
            None,
            None,
        );
        let record = match self.store.requeue_conversation(agent, &event).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                // The row changed underneath (ended, or the agent left).
                self.position_uncertain = true;
                return Err(ChatError::NotParticipant);
            }
            Err(e) => {
                self.position_uncertain = true;
                return Err(unavailable(e));
            }
        };
        self.rules = rules;
        self.record = record.clone();
        self.announced.remove(&agent);
        self.agents_away = false;
        self.advance(&event);
        self.fan_out(&event);
        self.subscribers.retain(|s| s.party != Party::Agent(agent));
        let customers = self
            .subscribers
            .iter()
            .filter(|s| s.party == Party::Customer)
            .map(|s| s.outbox.clone())
            .collect();
        Ok(Lost::Requeued { record, customers })
    }

    /// Takes an agent out of a chat that goes on with `rules` (others
    /// stay): stores it with a `left` event and stops their delivery.
    async fn remove_agent(
        &mut self,
        agent: UserId,
        name: String,
        body: String,
        rules: ConversationRules,
    ) -> Result<(), ChatError> {
        let author = Author::Agent { id: agent, name };
        let event = self.new_event(
            EventKind::Left,
            Audience::Everyone,
            author,
            body,
            None,
            None,
        );
        match self.store.leave_conversation(agent, &event).await {
            Ok(true) => {}
            Ok(false) => return Err(ChatError::NotParticipant),
            Err(e) => {
                self.position_uncertain = true;
                return Err(unavailable(e));
            }
        }
        self.rules = rules;
        // Invited back later, they are announced again.
        self.announced.remove(&agent);
        self.advance(&event);
        self.fan_out(&event);
        // The agent's connection stops receiving this conversation.
        self.subscribers.retain(|s| s.party != Party::Agent(agent));
        Ok(())
    }
}

/// The hashed idempotency keys of a log position.
fn sent_ids(position: &LogPosition) -> SentIds {
    SentIds::from_pairs(
        position
            .client_msg_ids
            .keys()
            .map(|(sender, id)| (sender.as_str(), id.as_str())),
    )
}

/// Rebuilds the offers of choices and their answers from the log.
async fn load_choices(store: &DynStore, id: &ConversationId) -> Result<ChoiceBook, ChatError> {
    let mut book = ChoiceBook::default();
    let events = store
        .events_after(id, 0, MAX_EVENTS_PER_CONVERSATION + 100)
        .await
        .map_err(unavailable)?;
    for event in events {
        let data = event
            .data
            .as_deref()
            .and_then(|d| serde_json::from_str::<EventData>(d).ok());
        match data {
            Some(EventData::Choices(offer)) => book.offered(offer),
            Some(EventData::Choice { offer_id, .. }) | Some(EventData::Dismissed { offer_id }) => {
                book.closed(&offer_id)
            }
            _ => {}
        }
    }
    Ok(book)
}
