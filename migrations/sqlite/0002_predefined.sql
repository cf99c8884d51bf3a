-- Predefined messages: canned texts an agent picks in a chat to fill the
-- text box. Shared ones (for everyone, one queue or one agent) are managed
-- by supervisors; personal ones belong to the agent who wrote them.
create table predefined_messages (
    id integer primary key autoincrement,
    heading text not null check (length(heading) between 1 and 80),
    body text not null check (length(body) between 1 and 4000),
    scope text not null check (scope in ('everyone', 'queue', 'agent', 'personal')),
    queue_id bigint references queues(id) on delete cascade,
    -- the target agent for 'agent', the owner for 'personal'
    agent_id bigint references users(id) on delete cascade,
    -- order within one scope and target; ties fall back to id
    position bigint not null,
    created_by bigint not null references users(id),
    created_at bigint not null,
    updated_at bigint not null,
    -- each scope sets exactly the id it needs, so a row can never be
    -- read as belonging to a wider audience than it was written for
    check (
        (scope = 'everyone' and queue_id is null and agent_id is null)
        or (scope = 'queue' and queue_id is not null and agent_id is null)
        or (scope in ('agent', 'personal') and queue_id is null and agent_id is not null)
    )
);
create index predefined_messages_scope on predefined_messages(scope, position);
create index predefined_messages_queue on predefined_messages(queue_id, position);
create index predefined_messages_agent on predefined_messages(agent_id, scope, position);
