//! The supervisors' administration part of the store: changing and deleting
//! queues, profiles, sites and users. A separate trait (a supertrait of
//! [`super::Store`]) so the main trait stays readable; the SQL is portable
//! and generated for both databases by [`impl_admin_store`].

use crate::domain::account::{Media, Profile, Queue, Role, User};
use crate::domain::ids::{ProfileId, QueueId, SiteId, UserId};
use async_trait::async_trait;

use super::StoreResult;

/// Changes to a queue; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct QueueChanges {
    pub name: Option<String>,
    pub offer_timeout_secs: Option<u32>,
    pub priority: Option<i32>,
}

/// Changes to a profile; `None` leaves a field as it is. `queues` replaces
/// the whole list.
#[derive(Debug, Clone, Default)]
pub struct ProfileChanges {
    pub name: Option<String>,
    pub media: Option<Vec<Media>>,
    pub queues: Option<Vec<QueueId>>,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    pub capacity: Option<u32>,
    pub disabled: Option<bool>,
}

/// What a delete of a queue or a site did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    NotFound,
    /// Chats are waiting, offered or active in it: nothing changed.
    Busy,
    /// A site sends its chats to this queue: nothing changed.
    DefaultOfSite,
}

/// Conversation states that still need their queue and site.
/// Open chats: `ended_at is null` lets Postgres use the `conversations_open`
/// index (migration 0008); the states say the same thing.
pub(super) const OPEN_CHAT: &str = "ended_at is null and state in ('waiting', 'offered', 'active')";

#[async_trait]
pub trait AdminStore: Send + Sync + 'static {
    /// Changes a queue in one statement; None if there is no such (live) queue.
    async fn update_queue(&self, id: QueueId, changes: &QueueChanges)
        -> StoreResult<Option<Queue>>;
    /// Deletes a queue unless chats are open in it or a site defaults to it.
    /// The row stays (marked deleted and renamed so the name is free again)
    /// because the chat log still names it; its profile links and its
    /// predefined messages go.
    async fn delete_queue(&self, id: QueueId, now: i64) -> StoreResult<DeleteOutcome>;
    /// Changes a profile; None if there is no such profile. An unknown queue is `NotFound`.
    async fn update_profile(
        &self,
        id: ProfileId,
        changes: &ProfileChanges,
    ) -> StoreResult<Option<Profile>>;
    /// Deletes a profile and who may use it; false if there was none.
    async fn delete_profile(&self, id: ProfileId) -> StoreResult<bool>;
    /// Deletes a site unless chats from it are still open; ended chats keep
    /// their log but no longer name the site.
    async fn delete_site(&self, id: SiteId) -> StoreResult<DeleteOutcome>;
    /// Changes a user in one statement; None if there is no such user.
    async fn update_user(&self, id: UserId, changes: &UserChanges) -> StoreResult<Option<User>>;
    /// Replaces a user's password hash; false if there is no such user.
    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> StoreResult<bool>;
    /// Ends every session of a user (they must log in again).
    async fn end_sessions(&self, id: UserId) -> StoreResult<()>;
}

/// Implements [`AdminStore`] for a struct with a `pool: sqlx::Pool<$db>` field.
macro_rules! impl_admin_store {
    ($store:ty, $db:ty) => {
        use $crate::store::admin::*;

        #[async_trait::async_trait]
        impl AdminStore for $store {
            async fn update_queue(&self, id: QueueId, c: &QueueChanges) -> StoreResult<Option<Queue>> {
                let row: Option<QueueRow> = sqlx::query_as(
                    "update queues set name = coalesce($2, name), \
                     offer_timeout_secs = coalesce($3, offer_timeout_secs), \
                     priority = coalesce($4, priority) \
                     where id = $1 and deleted_at is null \
                     returning id, name, offer_timeout_secs, priority",
                )
                .bind(id.0)
                .bind(c.name.as_deref())
                .bind(c.offer_timeout_secs.map(|s| s as i32))
                .bind(c.priority)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(QueueRow::into_queue))
            }

            async fn delete_queue(&self, id: QueueId, now: i64) -> StoreResult<DeleteOutcome> {
                let mut tx = self.pool.begin().await?;
                // The checks sit in the update itself so a chat cannot slip in between.
                let done = sqlx::query(&format!(
                    "update queues set deleted_at = $2, name = name || ' [deleted ' || id || ']' \
                     where id = $1 and deleted_at is null \
                     and not exists (select 1 from conversations where queue_id = $1 and {OPEN_CHAT}) \
                     and not exists (select 1 from sites where default_queue_id = $1)"
                ))
                .bind(id.0)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 0 {
                    let (live,): (i64,) = sqlx::query_as(
                        "select count(*) from queues where id = $1 and deleted_at is null",
                    )
                    .bind(id.0)
                    .fetch_one(&mut *tx)
                    .await?;
                    let (open,): (i64,) = sqlx::query_as(&format!(
                        "select count(*) from conversations where queue_id = $1 and {OPEN_CHAT}"
                    ))
                    .bind(id.0)
                    .fetch_one(&mut *tx)
                    .await?;
                    return Ok(match (live, open) {
                        (0, _) => DeleteOutcome::NotFound,
                        (_, 0) => DeleteOutcome::DefaultOfSite,
                        _ => DeleteOutcome::Busy,
                    });
                }
                sqlx::query("delete from profile_queues where queue_id = $1")
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("delete from predefined_messages where queue_id = $1")
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(DeleteOutcome::Deleted)
            }

            async fn update_profile(&self, id: ProfileId, c: &ProfileChanges) -> StoreResult<Option<Profile>> {
                let mut tx = self.pool.begin().await?;
                let row: Option<ProfileRow> = sqlx::query_as(
                    "update profiles set name = coalesce($2, name), media = coalesce($3, media) \
                     where id = $1 returning id, name, media",
                )
                .bind(id.0)
                .bind(c.name.as_deref())
                .bind(c.media.as_deref().map(join_media))
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else { return Ok(None) };
                if let Some(queues) = &c.queues {
                    sqlx::query("delete from profile_queues where profile_id = $1")
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await?;
                    for queue in queues {
                        sqlx::query("insert into profile_queues (profile_id, queue_id) values ($1, $2) on conflict do nothing")
                            .bind(id.0)
                            .bind(queue.0)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                let queues: Vec<(i64,)> = sqlx::query_as(
                    "select queue_id from profile_queues where profile_id = $1 order by queue_id",
                )
                .bind(id.0)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Some(row.into_profile(queues.into_iter().map(|(q,)| QueueId(q)).collect())))
            }

            async fn delete_profile(&self, id: ProfileId) -> StoreResult<bool> {
                let done = sqlx::query("delete from profiles where id = $1")
                    .bind(id.0)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_site(&self, id: $crate::domain::ids::SiteId) -> StoreResult<DeleteOutcome> {
                let mut tx = self.pool.begin().await?;
                let (open,): (i64,) = sqlx::query_as(&format!(
                    "select count(*) from conversations where site_id = $1 and {OPEN_CHAT}"
                ))
                .bind(id.0)
                .fetch_one(&mut *tx)
                .await?;
                if open > 0 {
                    return Ok(DeleteOutcome::Busy);
                }
                sqlx::query("update conversations set site_id = null where site_id = $1")
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query("delete from sites where id = $1")
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(if done > 0 { DeleteOutcome::Deleted } else { DeleteOutcome::NotFound })
            }

            async fn update_user(&self, id: UserId, c: &UserChanges) -> StoreResult<Option<User>> {
                let row: Option<UserRow> = sqlx::query_as(
                    "update users set display_name = coalesce($2, display_name), \
                     role = coalesce($3, role), capacity = coalesce($4, capacity), \
                     disabled = coalesce($5, disabled) \
                     where id = $1 returning id, username, display_name, role, capacity, disabled",
                )
                .bind(id.0)
                .bind(c.display_name.as_deref())
                .bind(c.role.map(|r| r.as_str()))
                .bind(c.capacity.map(|n| n as i32))
                .bind(c.disabled.map(i32::from))
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(UserRow::into_user))
            }

            async fn set_password_hash(&self, id: UserId, password_hash: &str) -> StoreResult<bool> {
                let done = sqlx::query("update users set password_hash = $2 where id = $1")
                    .bind(id.0)
                    .bind(password_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn end_sessions(&self, id: UserId) -> StoreResult<()> {
                sqlx::query("delete from sessions where user_id = $1")
                    .bind(id.0)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_admin_store;
