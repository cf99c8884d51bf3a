-- Files attached to chat messages. A file is recorded when its upload has
-- been checked and stored (event_seq null: nobody can see it yet), then
-- bound to the message that references it, in the transaction that stores
-- that message: event_seq is the message, audience its audience, position
-- its place in the message's list. The file itself is kept by the blob
-- store under `id`, a random UUID; `name` is only for display.
create table attachments (
    id text primary key,
    conversation_id text not null references conversations(id) on delete cascade,
    uploader_kind text not null check (uploader_kind in ('customer', 'agent')),
    uploader_id bigint references users(id),
    name text not null,
    content_type text not null,
    size bigint not null check (size > 0),
    sha256 text not null,
    created_at bigint not null,
    event_seq bigint,
    audience text check (audience in ('everyone', 'agents_only')),
    position integer,
    check ((uploader_kind = 'agent') = (uploader_id is not null)),
    check ((event_seq is null) = (audience is null)),
    foreign key (conversation_id, event_seq) references events(conversation_id, seq)
);
create index attachments_event on attachments(conversation_id, event_seq);
