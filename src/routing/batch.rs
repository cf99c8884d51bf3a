//! Group commit of the router's work: the commands already waiting in its
//! mailbox are handled together, the answers to offers among them (accepts
//! and rejects) are persisted in one transaction, and routing then runs
//! once for all of them.
//!
//! Why: every answer was its own transaction awaited by the router before
//! its next command, so a burst was bound by one commit per decision (a few
//! hundred per second here). Offers were already committed per batch
//! (`RouterActor::route`); this does the same for answers.

use super::actor::RouterActor;
use super::{Accepted, Command, RouterError};
use crate::clock::wall_ms;
use crate::domain::ids::ConversationId;
use crate::domain::routing::{Answering, OfferOutcome, RoutingError};
use crate::store::OfferAnswer;
use tokio::sync::{mpsc, oneshot};

/// Most commands handled before routing runs again: bounds how long a
/// command that arrived in a flood waits for the offers it makes possible.
const COMMAND_BATCH: usize = 256;

/// Who waits for an answer's commit.
enum AnswerReply {
    Accept(oneshot::Sender<Result<Accepted, RouterError>>),
    Reject(oneshot::Sender<Result<(), RouterError>>),
}

/// An answer checked against memory and waiting for its commit.
struct PendingAnswer {
    answer: OfferAnswer,
    reply: AnswerReply,
}

/// Answers collected for one commit.
#[derive(Default)]
struct Answers(Vec<PendingAnswer>);

impl Answers {
    fn has(&self, chat: &ConversationId) -> bool {
        self.0.iter().any(|a| &a.answer.chat == chat)
    }
}

impl RouterActor {
    /// Handles `first` and then every command already waiting, up to
    /// [`COMMAND_BATCH`]. Answers to plain chat offers are collected and
    /// committed together; before any other command that could depend on
    /// them (everything but a new chat or a customer attaching), the
    /// collected ones are committed first, so each command sees the effects
    /// of all commands before it, as if they had been handled one by one.
    pub(super) async fn handle_waiting(
        &mut self,
        first: Command,
        rx: &mut mpsc::Receiver<Command>,
    ) {
        let mut answers = Answers::default();
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(command) = next.take() {
            match command {
                Command::Accept { agent, chat, reply } => {
                    match self.collectable(agent, &chat, &answers) {
                        Some(version) => answers.0.push(PendingAnswer {
                            answer: OfferAnswer {
                                chat,
                                agent,
                                version,
                                accept: true,
                            },
                            reply: AnswerReply::Accept(reply),
                        }),
                        None => {
                            self.commit_answers(std::mem::take(&mut answers)).await;
                            let _ = reply.send(self.accept(agent, chat).await);
                        }
                    }
                }
                Command::Reject { agent, chat, reply } => {
                    match self.collectable(agent, &chat, &answers) {
                        Some(version) => answers.0.push(PendingAnswer {
                            answer: OfferAnswer {
                                chat,
                                agent,
                                version,
                                accept: false,
                            },
                            reply: AnswerReply::Reject(reply),
                        }),
                        None => {
                            self.commit_answers(std::mem::take(&mut answers)).await;
                            let _ = reply.send(self.reject(agent, chat).await);
                        }
                    }
                }
                Command::Enqueue { .. } | Command::CustomerAttached { .. } => {
                    self.handle(command).await
                }
                other => {
                    self.commit_answers(std::mem::take(&mut answers)).await;
                    self.handle(other).await;
                }
            }
            handled += 1;
            if handled < COMMAND_BATCH {
                next = rx.try_recv().ok();
            }
        }
        self.commit_answers(answers).await;
    }

    /// The version of `agent`'s pending offer of `chat`, if the answer can
    /// join the batch: a plain chat offer (not an invitation) that no
    /// answer in the batch is about yet. Anything else is handled alone,
    /// after the batch, and gets the answer it would have got then.
    fn collectable(
        &self,
        agent: crate::domain::ids::UserId,
        chat: &ConversationId,
        answers: &Answers,
    ) -> Option<i64> {
        match self.state.answering(agent, chat) {
            Ok(Answering::Chat { version }) if !answers.has(chat) => Some(version),
            _ => None,
        }
    }

    /// Persists answers in one transaction and replies to each.
    async fn commit_answers(&mut self, answers: Answers) {
        let answers = answers.0;
        if answers.is_empty() {
            return;
        }
        let rows: Vec<OfferAnswer> = answers.iter().map(|a| a.answer.clone()).collect();
        let results = match self.store.answer_offers(&rows, wall_ms()).await {
            Ok(results) => results,
            Err(e) => {
                let _ = self.store_failed(e);
                for pending in answers {
                    match pending.reply {
                        AnswerReply::Accept(reply) => {
                            let _ = reply.send(Err(RouterError::Unavailable));
                        }
                        AnswerReply::Reject(reply) => {
                            let _ = reply.send(Err(RouterError::Unavailable));
                        }
                    }
                }
                return;
            }
        };
        for (pending, result) in answers.into_iter().zip(results) {
            let PendingAnswer { answer, reply } = pending;
            match reply {
                AnswerReply::Accept(reply) => {
                    let outcome = match result {
                        Some(_) => {
                            self.on_accepted(answer.agent, &answer.chat);
                            Ok(Accepted::Chat)
                        }
                        None => {
                            // The row changed underneath (another process): adopt it.
                            self.resync(&answer.chat).await;
                            Err(RouterError::Routing(RoutingError::OfferWithdrawn))
                        }
                    };
                    let _ = reply.send(outcome);
                }
                AnswerReply::Reject(reply) => {
                    // As `release`: memory follows the store either way.
                    let version = result.unwrap_or(answer.version);
                    self.state.released(
                        &answer.chat,
                        answer.agent,
                        OfferOutcome::Rejected,
                        version,
                    );
                    if result.is_none() {
                        self.resync(&answer.chat).await;
                    }
                    let _ = reply.send(Ok(()));
                }
            }
        }
    }
}
