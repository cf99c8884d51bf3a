-- Transcripts and the chat log.

-- Transcript e-mails a customer asked for, counted per conversation: the
-- customer's token must not become a way to send unlimited mail. One row
-- per conversation, so the limit is one atomic conditional upsert.
create table transcript_emails (
    conversation_id text primary key references conversations(id) on delete cascade,
    sent bigint not null,
    last_at bigint not null
);

-- Transcripts mailed automatically to a verified address at the end (for
-- sites with `transcript_email`). The row is claimed before sending, so a
-- chat that two ending paths report is mailed once.
create table transcript_auto_emails (
    conversation_id text primary key references conversations(id) on delete cascade,
    sent_at bigint not null
);

-- Supervisors list conversations newest first, with keyset pagination.
create index conversations_created on conversations(created_at, id);
