-- Offers and answers change a conversation's state several times in its
-- first seconds. An index whose key or predicate names `state` made every
-- one of those updates write a new entry into each of the table's indexes
-- (no HOT update: 0 of 6,407 in an S3 run). Keyed on `ended_at` instead,
-- only a chat's end does; free room on each page lets the new row version
-- stay on its page. `ended_at` is null exactly while the state is waiting,
-- offered or active: only `finish_conversation` sets either.
drop index conversations_live;
create index conversations_open on conversations(created_at, id) where ended_at is null;
alter table conversations set (fillfactor = 70);
