-- Core schema: accounts, sessions, queues, profiles, conversations, the
-- chat log and the routing event log. Times are milliseconds since the
-- Unix epoch (BIGINT) so that both stores share one representation.

create table users (
    id bigserial primary key,
    username text not null unique,
    display_name text not null,
    password_hash text not null,
    role text not null check (role in ('agent', 'supervisor')),
    capacity integer not null default 3 check (capacity between 1 and 50),
    created_at bigint not null
);

create table sessions (
    token_hash text primary key,
    user_id bigint not null references users(id) on delete cascade,
    created_at bigint not null,
    expires_at bigint not null
);
create index sessions_user on sessions(user_id);

create table queues (
    id bigserial primary key,
    name text not null unique,
    offer_timeout_secs integer not null default 30 check (offer_timeout_secs between 1 and 3600),
    priority integer not null default 0
);

create table profiles (
    id bigserial primary key,
    name text not null unique,
    -- comma-separated media types, e.g. 'chat'
    media text not null
);

create table profile_queues (
    profile_id bigint not null references profiles(id) on delete cascade,
    queue_id bigint not null references queues(id) on delete cascade,
    primary key (profile_id, queue_id)
);

create table user_profiles (
    user_id bigint not null references users(id) on delete cascade,
    profile_id bigint not null references profiles(id) on delete cascade,
    primary key (user_id, profile_id)
);

-- The status an agent last chose, so a reconnect or a server restart does
-- not silently change it.
create table agent_presence (
    user_id bigint primary key references users(id) on delete cascade,
    profile_id bigint references profiles(id) on delete set null,
    status text not null,
    reason text,
    updated_at bigint not null
);

create table conversations (
    id text primary key,
    queue_id bigint not null references queues(id),
    state text not null check (state in ('waiting', 'offered', 'active', 'ended', 'abandoned')),
    -- bumped by every state change; conditional updates compare it so that
    -- two nodes can never both offer or both accept one chat
    version bigint not null default 1,
    offered_to bigint references users(id),
    customer_token_hash text not null unique,
    customer_name text,
    customer_email text,
    created_at bigint not null,
    ended_at bigint,
    ended_by text
);
create index conversations_live on conversations(state) where state in ('waiting', 'offered', 'active');

create table conversation_agents (
    conversation_id text not null references conversations(id) on delete cascade,
    agent_id bigint not null references users(id),
    joined_at bigint not null,
    left_at bigint,
    primary key (conversation_id, agent_id)
);
create index conversation_agents_agent on conversation_agents(agent_id) where left_at is null;

create table rejections (
    conversation_id text not null references conversations(id) on delete cascade,
    agent_id bigint not null references users(id),
    primary key (conversation_id, agent_id)
);

-- The chat log: every message and system event of a conversation, in seq order.
create table events (
    conversation_id text not null references conversations(id) on delete cascade,
    seq bigint not null,
    kind text not null,
    audience text not null,
    author_kind text not null,
    author_id bigint,
    author_name text not null,
    body text not null,
    -- who sent it ('customer' or 'agent:<id>'): idempotency keys are per sender
    sender text not null,
    client_msg_id text,
    created_at bigint not null,
    primary key (conversation_id, seq),
    unique (conversation_id, sender, client_msg_id)
);

-- Everything routing did, with its time: statistics are computed from it.
create table routing_events (
    id bigserial primary key,
    conversation_id text not null references conversations(id) on delete cascade,
    queue_id bigint not null,
    kind text not null,
    agent_id bigint,
    at bigint not null
);
create index routing_events_conversation on routing_events(conversation_id, id);
