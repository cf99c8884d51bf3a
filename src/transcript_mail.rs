//! Getting a customer's transcript out of the store and into an e-mail:
//! loading goes through [`CustomerTranscript::new`], the customer's audience
//! filter, so private messages never reach a download or a message.
//!
//! Two ways in:
//! - [`email_transcript`]: the customer asked, after the end, for a copy to
//!   an address they typed. Limited per conversation (see the constants) and
//!   only for chats an agent answered, so an anonymous chat cannot be used
//!   to mail arbitrary text to arbitrary addresses.
//! - [`spawn_automatic_transcript`]: called where a chat ends (customer
//!   `end`, agent `end`, the last agent leaving). If the chat came from a
//!   site with `transcript_email` and the customer's e-mail is *verified*
//!   (signed by the site), the transcript goes to that address, once.

use crate::clock::{format_utc, wall_ms};
use crate::conversation::MAX_EVENTS_PER_CONVERSATION;
use crate::domain::conversation::ConversationState;
use crate::domain::customer::EMAIL;
use crate::domain::ids::ConversationId;
use crate::mail::{parse_address, DynMailer, Mail, MailError};
use crate::store::{ConversationSummary, DynStore, StoreError};
use crate::transcript::{CustomerTranscript, TranscriptHeader};
use lettre::Address;

/// Most transcript e-mails a customer may request for one conversation.
pub const MAX_EMAILS_PER_CONVERSATION: i64 = 3;
/// Least time between two of them.
pub const MIN_EMAIL_INTERVAL_MS: i64 = 60_000;
/// Most events read for one transcript or log: contributions stop at
/// 10,000, but joins, leaves, ends and invitations are always written, so a
/// log may go a little past that; never by this much.
pub const LOG_READ_LIMIT: i64 = 2 * MAX_EVENTS_PER_CONVERSATION;

/// Why a transcript could not be produced or sent.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TranscriptError {
    #[error("conversation not found")]
    NotFound,
    /// Transcripts exist only once the conversation is over.
    #[error("the conversation has not ended yet")]
    NotEnded,
    /// No agent ever answered: there is nothing to mail but the customer's
    /// own text (which could be anything), so only the download is offered.
    #[error("the chat was never answered; download the transcript instead")]
    NotAnswered,
    #[error("at most {MAX_EMAILS_PER_CONVERSATION} transcript e-mails per chat, one per minute")]
    RateLimited,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Mail(#[from] MailError),
}

/// The customer's transcript of an ended (or abandoned) conversation.
pub async fn customer_transcript(
    store: &DynStore,
    id: &ConversationId,
) -> Result<(ConversationSummary, CustomerTranscript), TranscriptError> {
    let summary = store
        .conversation_summary(id)
        .await?
        .ok_or(TranscriptError::NotFound)?;
    if !summary.record.state.is_final() {
        return Err(TranscriptError::NotEnded);
    }
    // The customer's read path (only `everyone` events, by public_seq), and
    // then the audience filter again in `CustomerTranscript::new`.
    let events = store.events_after_public(id, 0, LOG_READ_LIMIT).await?;
    let header = TranscriptHeader {
        conversation_id: id.clone(),
        queue_name: summary.queue_name.clone(),
        started_at: summary.record.created_at,
        ended_at: summary.record.ended_at,
    };
    Ok((summary, CustomerTranscript::new(header, events)))
}

/// The e-mail carrying a transcript: plain text with an HTML alternative.
pub fn transcript_mail(to: Address, summary: &ConversationSummary, t: &CustomerTranscript) -> Mail {
    let day = format_utc(summary.record.created_at);
    let day = day.split(' ').next().unwrap_or_default();
    Mail {
        to,
        subject: format!("Your chat transcript ({}, {day})", summary.queue_name),
        text: t.to_text(),
        html: Some(t.to_html()),
    }
}

/// Sends the transcript to an address the customer entered at the end,
/// within the per-conversation limits.
pub async fn email_transcript(
    store: &DynStore,
    mailer: &DynMailer,
    id: &ConversationId,
    to: Address,
) -> Result<(), TranscriptError> {
    let (summary, transcript) = customer_transcript(store, id).await?;
    if summary.record.state != ConversationState::Ended {
        return Err(TranscriptError::NotAnswered);
    }
    // Checked before a slot is used up, so a server without SMTP does not
    // eat the customer's allowance.
    if !mailer.is_enabled() {
        return Err(MailError::Disabled.into());
    }
    let claimed = store
        .claim_transcript_email(
            id,
            wall_ms(),
            MIN_EMAIL_INTERVAL_MS,
            MAX_EMAILS_PER_CONVERSATION,
        )
        .await?;
    if !claimed {
        return Err(TranscriptError::RateLimited);
    }
    // A failed delivery keeps its slot: the limit counts attempts, so a
    // flaky SMTP server cannot turn into unlimited retries.
    mailer
        .send(transcript_mail(to, &summary, &transcript))
        .await?;
    Ok(())
}

/// Mails the transcript to a verified address when `enabled` (the site's
/// `transcript_email`); the primitive under [`send_automatic_transcript`].
/// Returns whether a message was sent. Does nothing (Ok(false)) when
/// `enabled` is false, there is no verified address, the address does not
/// parse, or mail is off on this server.
///
/// The caller supplies `verified_email` only for an address the site
/// vouched for (a verified identity), never one the customer typed; that is
/// why this path has no rate limit and works for unanswered chats too. Call
/// it after the conversation is finished, off the socket's path, since SMTP
/// may take seconds.
pub async fn send_transcript_if_enabled(
    store: &DynStore,
    mailer: &DynMailer,
    id: &ConversationId,
    verified_email: Option<String>,
    enabled: bool,
) -> Result<bool, TranscriptError> {
    if !enabled || !mailer.is_enabled() {
        return Ok(false);
    }
    let Some(to) = verified_email.as_deref().and_then(parse_address) else {
        return Ok(false);
    };
    let (summary, transcript) = customer_transcript(store, id).await?;
    mailer
        .send(transcript_mail(to, &summary, &transcript))
        .await?;
    Ok(true)
}

/// Mails the transcript to the customer's verified e-mail when the chat's
/// site has `transcript_email` on; at most once per conversation, however
/// many ending paths report the chat. Returns whether a message was sent.
/// A failed delivery is not retried (the conversation's claim is used).
pub async fn send_automatic_transcript(
    store: &DynStore,
    mailer: &DynMailer,
    id: &ConversationId,
) -> Result<bool, TranscriptError> {
    if !mailer.is_enabled() {
        return Ok(false);
    }
    let enabled = store
        .site_of_conversation(id)
        .await?
        .is_some_and(|site| site.transcript_email);
    if !enabled {
        return Ok(false);
    }
    // Only a value the site signed: a typed address could be anyone's.
    let verified = store
        .customer_variables(id)
        .await?
        .into_iter()
        .find(|v| v.verified && v.name == EMAIL)
        .map(|v| v.value);
    if verified.as_deref().and_then(parse_address).is_none() {
        return Ok(false);
    }
    if !store.claim_automatic_transcript(id, wall_ms()).await? {
        return Ok(false);
    }
    send_transcript_if_enabled(store, mailer, id, verified, enabled).await
}

/// Runs [`send_automatic_transcript`] in the background, so SMTP never
/// delays the end of a chat; failures are logged.
pub fn spawn_automatic_transcript(store: DynStore, mailer: DynMailer, id: ConversationId) {
    tokio::spawn(async move {
        match send_automatic_transcript(&store, &mailer, &id).await {
            Ok(true) => {
                tracing::info!(conversation = %id, "transcript e-mailed to the verified address")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(conversation = %id, error = %e, "automatic transcript e-mail failed")
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::conversation::Audience;
    use crate::mail::{DisabledMailer, Mailer};
    use crate::store::{self, Author, EventKind, NewConversation, NewEvent};
    use async_trait::async_trait;
    use std::sync::{Arc, Mutex};

    /// Keeps what it was asked to send.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Mail>>);

    #[async_trait]
    impl Mailer for Recorder {
        async fn send(&self, mail: Mail) -> Result<(), MailError> {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(mail);
            Ok(())
        }
    }

    fn event(
        id: &ConversationId,
        seq: i64,
        audience: Audience,
        kind: EventKind,
        body: &str,
    ) -> NewEvent {
        NewEvent {
            conversation: id.clone(),
            seq,
            public_seq: (audience == Audience::Everyone).then_some(seq),
            kind,
            audience,
            author: Author::Customer {
                name: "Carla".into(),
            },
            body: body.into(),
            data: None,
            client_msg_id: (kind == EventKind::Message).then(|| format!("m{seq}")),
            created_at: 1_764_090_000_000 + seq,
            attachments: Vec::new(),
        }
    }

    /// A chat nobody accepted, with one public and one private message;
    /// abandoned when `end`.
    async fn chat(end: bool) -> (DynStore, ConversationId) {
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
        store
            .append_events(&[
                event(
                    &id,
                    1,
                    Audience::Everyone,
                    EventKind::Message,
                    "public hello",
                ),
                event(
                    &id,
                    2,
                    Audience::AgentsOnly,
                    EventKind::Message,
                    "private note",
                ),
            ])
            .await
            .expect("events");
        if end {
            let ended = event(
                &id,
                3,
                Audience::Everyone,
                EventKind::Ended,
                "Carla ended the chat",
            );
            store.finish_conversation(&ended).await.expect("finish");
        }
        (store, id)
    }

    #[tokio::test]
    async fn the_hook_sends_only_when_enabled_with_a_verified_address() {
        let (store, id) = chat(true).await;
        let recorder = Arc::new(Recorder::default());
        let mailer: DynMailer = recorder.clone();
        let verified = || Some("carla@example.com".to_owned());

        let off = send_transcript_if_enabled(&store, &mailer, &id, verified(), false).await;
        let no_address = send_transcript_if_enabled(&store, &mailer, &id, None, true).await;
        let bad = send_transcript_if_enabled(&store, &mailer, &id, Some("nope".into()), true).await;
        assert_eq!(
            (off.ok(), no_address.ok(), bad.ok()),
            (Some(false), Some(false), Some(false))
        );
        assert!(recorder.0.lock().expect("lock").is_empty());

        let sent = send_transcript_if_enabled(&store, &mailer, &id, verified(), true).await;
        assert_eq!(sent.ok(), Some(true));
        let mails = recorder.0.lock().expect("lock").clone();
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].to.to_string(), "carla@example.com");
        assert!(mails[0].text.contains("public hello"));
        assert!(!mails[0].text.contains("private note"));
        assert!(!mails[0]
            .html
            .as_deref()
            .unwrap_or_default()
            .contains("private note"));
    }

    #[tokio::test]
    async fn the_hook_is_quiet_without_smtp_and_waits_for_the_end() {
        let (store, id) = chat(false).await;
        let disabled: DynMailer = Arc::new(DisabledMailer);
        let quiet =
            send_transcript_if_enabled(&store, &disabled, &id, Some("c@example.com".into()), true);
        assert_eq!(quiet.await.ok(), Some(false));
        let mailer: DynMailer = Arc::new(Recorder::default());
        let early =
            send_transcript_if_enabled(&store, &mailer, &id, Some("c@example.com".into()), true);
        assert!(matches!(early.await, Err(TranscriptError::NotEnded)));
    }

    /// A site chat whose customer's e-mail is verified, ended.
    async fn site_chat(transcript_email: bool) -> (DynStore, ConversationId) {
        use crate::domain::customer::CustomerVariable;
        use crate::store::{NewCustomerChat, NewSite};
        let store = store::connect("sqlite::memory:", 1).await.expect("store");
        let queue = store.create_queue("Support", 30, 0).await.expect("queue");
        let site = store
            .create_site(NewSite {
                name: "Shop".into(),
                key: "shop".into(),
                allowed_origins: Vec::new(),
                default_queue: queue,
                identity_secret: "s".into(),
                require_verified: false,
                allow_customer_attachments: false,
                transcript_email,
                now: 1,
            })
            .await
            .expect("site");
        let id = ConversationId::random();
        let conversation = NewConversation {
            id: id.clone(),
            queue,
            customer_token_hash: "h".into(),
            customer_name: Some("Carla".into()),
            customer_email: Some("carla@shop.example".into()),
            now: 1_764_090_000_000,
        };
        let verified = CustomerVariable {
            name: EMAIL.into(),
            value: "carla@shop.example".into(),
            verified: true,
        };
        store
            .create_customer_chats(&[NewCustomerChat {
                conversation,
                site: Some(site.id),
                variables: vec![verified],
            }])
            .await
            .expect("conversation");
        let hello = event(
            &id,
            1,
            Audience::Everyone,
            EventKind::Message,
            "public hello",
        );
        store.append_events(&[hello]).await.expect("events");
        let ended = event(
            &id,
            2,
            Audience::Everyone,
            EventKind::Ended,
            "Carla ended the chat",
        );
        store.finish_conversation(&ended).await.expect("finish");
        (store, id)
    }

    #[tokio::test]
    async fn the_automatic_transcript_goes_out_once_and_only_when_enabled() {
        let (store, id) = site_chat(true).await;
        let recorder = Arc::new(Recorder::default());
        let mailer: DynMailer = recorder.clone();
        let first = send_automatic_transcript(&store, &mailer, &id).await;
        let again = send_automatic_transcript(&store, &mailer, &id).await;
        assert_eq!((first.ok(), again.ok()), (Some(true), Some(false)));
        let mails = recorder.0.lock().expect("lock").clone();
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].to.to_string(), "carla@shop.example");

        let (store, id) = site_chat(false).await;
        let off = send_automatic_transcript(&store, &mailer, &id).await;
        assert_eq!(off.ok(), Some(false));
        assert_eq!(recorder.0.lock().expect("lock").len(), 1);
    }

    #[tokio::test]
    async fn customers_cannot_mail_unanswered_chats() {
        // `chat(true)` is abandoned: no agent ever accepted it.
        let (store, id) = chat(true).await;
        let mailer: DynMailer = Arc::new(Recorder::default());
        let to: Address = "c@example.com".parse().expect("address");
        let refused = email_transcript(&store, &mailer, &id, to).await;
        assert!(matches!(refused, Err(TranscriptError::NotAnswered)));
    }
}
