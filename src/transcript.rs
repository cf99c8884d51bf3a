//! Rendering a conversation's chat log for people: the customer's transcript
//! (plain text and simple HTML) and the organisation's log. Pure: no I/O.
//!
//! The customer's transcript can only be built through
//! [`CustomerTranscript::new`], which keeps exactly the events whose audience
//! admits [`Party::Customer`]. Private agent messages (`AgentsOnly`) therefore
//! cannot reach a customer's download or e-mail by any rendering path. The
//! organisation log keeps every event and marks private ones `[private]`.
//!
//! Times are shown in UTC. A message's continuation lines are indented, so
//! text a customer typed can never pass for a new line of the log.

use crate::clock::format_utc;
use crate::domain::conversation::Party;
use crate::domain::ids::ConversationId;
use crate::store::{Author, EventKind, EventRecord};
use std::fmt::Write;

/// What the top of a transcript says about the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptHeader {
    pub conversation_id: ConversationId,
    pub queue_name: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
}

/// The part of a conversation a customer may see.
#[derive(Debug, Clone)]
pub struct CustomerTranscript {
    header: TranscriptHeader,
    events: Vec<EventRecord>,
}

impl CustomerTranscript {
    /// Keeps only the events the customer's audience admits, in seq order.
    pub fn new(header: TranscriptHeader, events: impl IntoIterator<Item = EventRecord>) -> Self {
        let mut events: Vec<EventRecord> = events
            .into_iter()
            .filter(|e| e.audience.admits(Party::Customer))
            .collect();
        events.sort_by_key(|e| e.seq);
        Self { header, events }
    }

    /// The events that will be rendered.
    pub fn events(&self) -> &[EventRecord] {
        &self.events
    }

    /// The transcript as plain text.
    pub fn to_text(&self) -> String {
        let mut out = header_text("Chat transcript", &self.header);
        for event in &self.events {
            out.push_str(&event_line(event, ""));
        }
        out
    }

    /// The transcript as a small standalone HTML document, every piece of
    /// chat text escaped.
    pub fn to_html(&self) -> String {
        let h = &self.header;
        let mut out = String::from(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Chat transcript</title></head>\n<body style=\"font-family:sans-serif\">\n\
             <h1>Chat transcript</h1>\n<p>",
        );
        let _ = write!(
            out,
            "Queue: {}<br>Started: {}",
            escape_html(&h.queue_name),
            format_utc(h.started_at)
        );
        if let Some(ended) = h.ended_at {
            let _ = write!(out, "<br>Ended: {}", format_utc(ended));
        }
        out.push_str("</p>\n<table>\n");
        for e in &self.events {
            let what = match is_contribution(e.kind) {
                true => format!(
                    "<strong>{}:</strong> <span style=\"white-space:pre-wrap\">{}</span>",
                    escape_html(author_name(&e.author)),
                    escape_html(&normalise_newlines(&said(e)))
                ),
                false => format!("<em>{}</em>", escape_html(&e.body)),
            };
            let _ = writeln!(
                out,
                "<tr><td style=\"color:#666;white-space:nowrap;vertical-align:top\">{}</td><td>{what}</td></tr>",
                format_utc(e.created_at)
            );
        }
        out.push_str("</table>\n</body></html>\n");
        out
    }
}

/// The organisation's log of a conversation: every event, private ones marked.
#[derive(Debug, Clone)]
pub struct OrganisationLog {
    header: TranscriptHeader,
    events: Vec<EventRecord>,
}

impl OrganisationLog {
    pub fn new(header: TranscriptHeader, events: impl IntoIterator<Item = EventRecord>) -> Self {
        let mut events: Vec<EventRecord> = events.into_iter().collect();
        events.sort_by_key(|e| e.seq);
        Self { header, events }
    }

    /// The log as plain text; events the customer never saw start with `[private]`.
    pub fn to_text(&self) -> String {
        let mut out = header_text("Chat log", &self.header);
        for event in &self.events {
            let mark = if is_private(event) { "[private] " } else { "" };
            out.push_str(&event_line(event, mark));
        }
        out
    }
}

/// Whether an event was hidden from the customer.
pub fn is_private(event: &EventRecord) -> bool {
    !event.audience.admits(Party::Customer)
}

fn header_text(title: &str, h: &TranscriptHeader) -> String {
    let mut out = format!(
        "{title}\nConversation: {}\nQueue: {}\nStarted: {}\n",
        h.conversation_id,
        h.queue_name,
        format_utc(h.started_at)
    );
    if let Some(ended) = h.ended_at {
        let _ = writeln!(out, "Ended: {}", format_utc(ended));
    }
    out.push('\n');
    out
}

/// One event as one or more lines: `[time] Name: text` for messages,
/// `[time] * text` for joins and ends.
fn event_line(e: &EventRecord, mark: &str) -> String {
    let time = format_utc(e.created_at);
    let text = if is_contribution(e.kind) {
        format!("{}: {}", author_name(&e.author), said(e))
    } else {
        format!("* {}", e.body)
    };
    let mut lines = normalise_newlines(&text)
        .split('\n')
        .map(str::to_owned)
        .collect::<Vec<_>>()
        .into_iter();
    let mut out = format!("[{time}] {mark}{}\n", lines.next().unwrap_or_default());
    for line in lines {
        let _ = writeln!(out, "    {line}");
    }
    out
}

/// What a contribution says: its text, then one line per attached file
/// (named only; the file itself is downloaded, never mailed).
fn said(e: &EventRecord) -> String {
    let mut text = e.body.clone();
    for a in &e.attachments {
        if !text.is_empty() {
            text.push('\n');
        }
        let _ = write!(text, "[Attachment: {} ({} bytes)]", a.name, a.size);
    }
    text
}

/// Whether an event is something its author said or chose (shown as
/// `Name: text`) rather than a note about the chat (shown as `* text`).
/// Exhaustive on purpose: a new kind must be placed here.
fn is_contribution(kind: EventKind) -> bool {
    match kind {
        EventKind::Message
        | EventKind::Choices
        | EventKind::Choice
        | EventKind::ChoicesDismissed => true,
        EventKind::Joined
        | EventKind::Left
        | EventKind::Ended
        | EventKind::Invited
        | EventKind::InviteEnded => false,
    }
}

fn author_name(author: &Author) -> &str {
    match author {
        Author::Customer { name } | Author::Agent { name, .. } if !name.trim().is_empty() => name,
        Author::Customer { .. } => "Customer",
        Author::Agent { .. } => "Agent",
        Author::System => "System",
    }
}

fn normalise_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::conversation::Audience;
    use crate::domain::ids::UserId;
    use crate::store::NewEvent;

    const T0: i64 = 1_764_090_000_000;

    fn header() -> TranscriptHeader {
        TranscriptHeader {
            conversation_id: ConversationId("3f0c9a1e-5b7d-4c2a-9e61-0d8f2b7a4c15".into()),
            queue_name: "Support".into(),
            started_at: T0,
            ended_at: Some(T0 + 60_000),
        }
    }

    fn event(
        seq: i64,
        kind: EventKind,
        audience: Audience,
        author: Author,
        body: &str,
    ) -> NewEvent {
        NewEvent {
            conversation: header().conversation_id,
            seq,
            public_seq: (audience == Audience::Everyone).then_some(seq),
            kind,
            audience,
            author,
            body: body.into(),
            data: None,
            client_msg_id: None,
            created_at: T0 + seq * 1000,
            attachments: Vec::new(),
        }
    }

    fn carla() -> Author {
        Author::Customer {
            name: "Carla".into(),
        }
    }

    fn alice() -> Author {
        Author::Agent {
            id: UserId(2),
            name: "Alice".into(),
        }
    }

    fn log() -> Vec<EventRecord> {
        use Audience::*;
        use EventKind::*;
        vec![
            event(1, Message, Everyone, carla(), "Hello, my order is late"),
            event(2, Joined, Everyone, alice(), "Alice joined the chat"),
            event(
                3,
                Message,
                AgentsOnly,
                alice(),
                "SECRET: customer is on the watch list",
            ),
            event(4, Message, Everyone, alice(), "Let me check <that> & more"),
            event(5, Ended, Everyone, carla(), "Carla ended the chat"),
        ]
    }

    #[test]
    fn the_customer_transcript_has_no_private_event() {
        let transcript = CustomerTranscript::new(header(), log());
        assert_eq!(
            transcript
                .events()
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>(),
            vec![1, 2, 4, 5]
        );
        let text = transcript.to_text();
        let html = transcript.to_html();
        for rendered in [&text, &html] {
            assert!(!rendered.contains("SECRET"), "{rendered}");
            assert!(!rendered.contains("watch list"), "{rendered}");
            assert!(!rendered.contains("[private]"), "{rendered}");
        }
    }

    #[test]
    fn a_transcript_of_only_private_events_is_empty() {
        let private = log()
            .into_iter()
            .filter(|e| e.audience == Audience::AgentsOnly);
        let transcript = CustomerTranscript::new(header(), private);
        assert!(transcript.events().is_empty());
        assert!(!transcript.to_text().contains("SECRET"));
    }

    #[test]
    fn plain_text_lists_public_events_in_order() {
        let text = CustomerTranscript::new(header(), log()).to_text();
        let expected = "Chat transcript\n\
            Conversation: 3f0c9a1e-5b7d-4c2a-9e61-0d8f2b7a4c15\n\
            Queue: Support\n\
            Started: 2025-11-25 17:00:00 UTC\n\
            Ended: 2025-11-25 17:01:00 UTC\n\
            \n\
            [2025-11-25 17:00:01 UTC] Carla: Hello, my order is late\n\
            [2025-11-25 17:00:02 UTC] * Alice joined the chat\n\
            [2025-11-25 17:00:04 UTC] Alice: Let me check <that> & more\n\
            [2025-11-25 17:00:05 UTC] * Carla ended the chat\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn attached_files_are_named_on_their_own_lines() {
        use crate::domain::ids::AttachmentId;
        use crate::store::AttachmentMeta;
        let file = |name: &str| AttachmentMeta {
            id: AttachmentId::random(),
            name: name.into(),
            content_type: "application/pdf".into(),
            size: 1234,
        };
        let mut only_files = event(1, EventKind::Message, Audience::Everyone, carla(), "");
        only_files.attachments = vec![file("invoice.pdf"), file("<b>.pdf")];
        let mut captioned = event(2, EventKind::Message, Audience::Everyone, alice(), "Here");
        captioned.attachments = vec![file("label.pdf")];
        let transcript = CustomerTranscript::new(header(), [only_files, captioned]);
        let text = transcript.to_text();
        assert!(text.contains(
            "Carla: [Attachment: invoice.pdf (1234 bytes)]\n    [Attachment: <b>.pdf (1234 bytes)]\n"
        ));
        assert!(text.contains("Alice: Here\n    [Attachment: label.pdf (1234 bytes)]\n"));
        assert!(transcript
            .to_html()
            .contains("[Attachment: &lt;b&gt;.pdf (1234 bytes)]"));
    }

    #[test]
    fn continuation_lines_cannot_forge_log_lines() {
        let forged = event(
            1,
            EventKind::Message,
            Audience::Everyone,
            carla(),
            "hi\r\n[2025-11-25 17:00:09 UTC] Alice: refund approved",
        );
        let text = CustomerTranscript::new(header(), [forged]).to_text();
        assert!(text.contains("Carla: hi\n    [2025-11-25 17:00:09 UTC] Alice: refund approved\n"));
    }

    #[test]
    fn html_escapes_chat_text() {
        let mut events = log();
        events.push(event(
            6,
            EventKind::Message,
            Audience::Everyone,
            Author::Customer {
                name: "<b>Carla</b>".into(),
            },
            "<script>alert('x')</script>",
        ));
        let html = CustomerTranscript::new(header(), events).to_html();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(html.contains("&lt;b&gt;Carla&lt;/b&gt;:"));
        assert!(html.contains("Let me check &lt;that&gt; &amp; more"));
    }

    #[test]
    fn choices_read_as_said_and_invitations_stay_private() {
        use Audience::*;
        use EventKind::*;
        let events = vec![
            event(
                1,
                Choices,
                Everyone,
                alice(),
                "Which one? [Refund] [Replace]",
            ),
            event(2, Choice, Everyone, carla(), "Chose: Refund"),
            event(3, Invited, AgentsOnly, alice(), "Alice invited Bob"),
        ];
        let text = CustomerTranscript::new(header(), events.clone()).to_text();
        assert!(
            text.contains("] Alice: Which one? [Refund] [Replace]\n"),
            "{text}"
        );
        assert!(text.contains("] Carla: Chose: Refund\n"), "{text}");
        assert!(!text.contains("invited"), "{text}");
        let log = OrganisationLog::new(header(), events).to_text();
        assert!(log.contains("] [private] * Alice invited Bob\n"), "{log}");
    }

    #[test]
    fn the_organisation_log_marks_private_events() {
        let text = OrganisationLog::new(header(), log()).to_text();
        assert!(text.starts_with("Chat log\n"));
        assert!(text.contains(
            "[2025-11-25 17:00:03 UTC] [private] Alice: SECRET: customer is on the watch list\n"
        ));
        assert!(text.contains("[2025-11-25 17:00:04 UTC] Alice: Let me check"));
        assert_eq!(text.matches("[private]").count(), 1);
    }
}
