-- Private (agents-only) events must not be countable by the customer, so
-- events visible to everyone get their own gap-free numbering: customers see
-- and resume by public_seq; agents by seq.
alter table events add column public_seq bigint;
-- Before this migration every event was visible to everyone.
update events set public_seq = seq where audience = 'everyone';
create unique index events_public_seq on events(conversation_id, public_seq) where public_seq is not null;
-- Structured payload of events that are more than text (offers of choices
-- and their answers, invitations), as JSON; `body` keeps a readable text.
alter table events add column data text;

-- Invitations of another agent into a chat (conference or transfer). At most
-- one is pending per chat; the partial unique index enforces it for every node.
create table invites (
    id integer primary key autoincrement,
    conversation_id text not null references conversations(id) on delete cascade,
    inviter_id bigint not null references users(id),
    target_agent_id bigint references users(id),
    queue_id bigint references queues(id),
    transfer integer not null default 0,
    state text not null check (state in ('pending', 'offered', 'accepted', 'rejected', 'timed_out', 'cancelled')),
    offered_to bigint references users(id),
    version bigint not null default 1,
    created_at bigint not null,
    ended_at bigint,
    check ((target_agent_id is null) <> (queue_id is null))
);
create unique index invites_one_pending on invites(conversation_id) where state in ('pending', 'offered');
