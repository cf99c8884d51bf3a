//! Accounts for a run, created with the same library calls as the CLI
//! (`switchboard::accounts::create_user` and the store), and agent logins
//! over HTTP. Agents are named by capacity and number and reused across
//! runs on the same database, because password hashing is deliberately slow.

use crate::error::{LoadError, Result};
use crate::http;
use crate::net::{Sources, Target};
use futures_util::{stream, StreamExt, TryStreamExt};
use serde_json::json;
use switchboard::accounts::{create_user, AccountError, UserSpec};
use switchboard::domain::account::{Media, Role};
use switchboard::domain::ids::{ProfileId, QueueId};
use switchboard::store::{self, DynStore};

pub const QUEUE: &str = "Loadgen";
pub const PROFILE: &str = "Loadgen chat";
/// Every generated agent has this password; the accounts exist only on
/// throwaway benchmark databases.
pub const PASSWORD: &str = "loadgen-password-1";
/// Hashes (and logins) at once; more only queue up on two cores.
const HASH_CONCURRENCY: usize = 4;

/// The queue and profile the run uses.
#[derive(Debug, Clone, Copy)]
pub struct Fixture {
    pub queue: QueueId,
    pub profile: ProfileId,
}

pub async fn open_store(db_url: &str) -> Result<DynStore> {
    store::connect(db_url, 4)
        .await
        .map_err(|e| LoadError::Setup(format!("cannot open {db_url}: {e}")))
}

fn setup_err(what: &str) -> impl Fn(store::StoreError) -> LoadError + '_ {
    move |e| LoadError::Setup(format!("{what}: {e}"))
}

/// Finds or creates the queue `Loadgen` and its chat profile.
pub async fn fixture(store: &DynStore) -> Result<Fixture> {
    let queues = store.list_queues().await.map_err(setup_err("queues"))?;
    let queue = match queues.iter().find(|q| q.name == QUEUE) {
        Some(q) => q.id,
        None => store
            .create_queue(QUEUE, 30, 0)
            .await
            .map_err(setup_err("create queue"))?,
    };
    let profiles = store.list_profiles().await.map_err(setup_err("profiles"))?;
    let profile = match profiles.iter().find(|p| p.name == PROFILE) {
        Some(p) => p.id,
        None => store
            .create_profile(PROFILE, &[Media::Chat], &[queue])
            .await
            .map_err(setup_err("create profile"))?,
    };
    Ok(Fixture { queue, profile })
}

pub fn agent_name(capacity: u32, i: usize) -> String {
    format!("lg-c{capacity}-a{i}")
}

/// Creates (or reuses) `count` agents of `capacity` allowed the profile.
pub async fn agents(
    store: &DynStore,
    fixture: Fixture,
    count: usize,
    capacity: u32,
) -> Result<Vec<String>> {
    let names: Vec<String> = (0..count).map(|i| agent_name(capacity, i)).collect();
    stream::iter(names.clone())
        .map(|username| async move {
            let created = create_user(
                store,
                UserSpec {
                    username: username.clone(),
                    display_name: None,
                    role: Role::Agent,
                    capacity: Some(capacity),
                    password: Some(PASSWORD.into()),
                },
            )
            .await;
            match created {
                Ok(c) => store
                    .grant_profile(c.user.id, fixture.profile)
                    .await
                    .map_err(setup_err("grant profile")),
                // Made by an earlier run on this database: reuse it.
                Err(AccountError::Taken) => Ok(()),
                Err(e) => Err(LoadError::Setup(format!("create {username}: {e}"))),
            }
        })
        .buffer_unordered(HASH_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(names)
}

/// Logs every agent in; returns their session cookies (`sb_session=…`).
pub async fn login_all(
    target: &Target,
    sources: &Sources,
    names: &[String],
) -> Result<Vec<String>> {
    stream::iter(names.iter())
        .map(|name| login(target, sources, name))
        .buffered(HASH_CONCURRENCY)
        .try_collect()
        .await
}

async fn login(target: &Target, sources: &Sources, username: &str) -> Result<String> {
    let response = http::post_json(
        target,
        sources,
        "/api/login",
        &json!({"username": username, "password": PASSWORD}),
    )
    .await?;
    if response.status != 200 {
        return Err(LoadError::Setup(format!(
            "login of {username}: HTTP {}",
            response.status
        )));
    }
    let cookie = response
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .ok_or_else(|| LoadError::Setup(format!("login of {username}: no session cookie")))?;
    Ok(cookie.to_owned())
}
