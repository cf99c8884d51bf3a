-- Supervisor administration: a user can be disabled (cannot log in, their
-- sessions stop working) and a queue can be deleted while the chat log
-- still names it (`deleted_at` set; it is no longer listed or routable).

alter table users add column disabled integer not null default 0;
alter table queues add column deleted_at bigint;
