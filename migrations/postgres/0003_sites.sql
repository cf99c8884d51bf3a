-- Sites (websites that embed the widget) and the customer data of each
-- conversation, marked verified when the site signed it. Booleans are
-- integers 0/1 so both stores bind and read them alike.

create table sites (
    id bigserial primary key,
    name text not null unique,
    -- public: the widget's data-site, and the expected aud of identity tokens
    site_key text not null unique,
    -- comma-separated normalised origins, e.g. 'https://shop.example'
    allowed_origins text not null default '',
    default_queue_id bigint not null references queues(id),
    -- HS256 key of identity tokens; kept in clear because verifying needs it
    identity_secret text not null,
    require_verified integer not null default 0 check (require_verified in (0, 1)),
    allow_customer_attachments integer not null default 0 check (allow_customer_attachments in (0, 1)),
    transcript_email integer not null default 0 check (transcript_email in (0, 1)),
    created_at bigint not null
);

-- null for chats started without a site (a plain queue)
alter table conversations add column site_id bigint references sites(id);

create table customer_variables (
    conversation_id text not null references conversations(id) on delete cascade,
    name text not null,
    value text not null,
    verified integer not null check (verified in (0, 1)),
    -- display order
    position integer not null,
    primary key (conversation_id, name)
);
