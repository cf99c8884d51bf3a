//! Creating users, shared by the CLI, first-start seeding and the HTTP API.

use crate::auth::{hash_password, random_password, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
use crate::clock::wall_ms;
use crate::domain::account::{Role, User};
use crate::store::{DynStore, NewUser, StoreError};

/// Default maximum number of concurrent chats of a new agent.
pub const DEFAULT_CAPACITY: u32 = 3;

/// What to create.
#[derive(Debug, Clone)]
pub struct UserSpec {
    pub username: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub capacity: Option<u32>,
    /// None: generate one and return it.
    pub password: Option<String>,
}

/// A created user, with the generated password if there was one.
#[derive(Debug)]
pub struct CreatedUser {
    pub user: User,
    pub generated_password: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("username is taken")]
    Taken,
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn valid_username(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// Validates, hashes and stores a new user.
pub async fn create_user(store: &DynStore, spec: UserSpec) -> Result<CreatedUser, AccountError> {
    if !valid_username(&spec.username) {
        return Err(AccountError::Invalid(
            "username must be 1–40 characters of letters, digits, '.', '_', '-' or '@'".into(),
        ));
    }
    let display_name = spec.display_name.unwrap_or_else(|| spec.username.clone());
    let display_name = display_name.trim().to_owned();
    if display_name.is_empty()
        || display_name.chars().count() > 80
        || display_name.chars().any(char::is_control)
    {
        return Err(AccountError::Invalid(
            "display name must be 1–80 characters".into(),
        ));
    }
    let capacity = spec.capacity.unwrap_or(DEFAULT_CAPACITY);
    if !(1..=50).contains(&capacity) {
        return Err(AccountError::Invalid("capacity must be 1–50".into()));
    }
    let (password, generated) = match spec.password {
        Some(p) => (p, false),
        None => (random_password(), true),
    };
    let length = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&length) {
        return Err(AccountError::Invalid(format!(
            "password must be {MIN_PASSWORD_CHARS}–{MAX_PASSWORD_CHARS} characters"
        )));
    }
    let to_hash = password.clone();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&to_hash))
        .await
        .map_err(anyhow::Error::from)??;
    let now = wall_ms();
    let id = store
        .create_user(NewUser {
            username: spec.username.clone(),
            display_name: display_name.clone(),
            password_hash,
            role: spec.role,
            capacity,
            now,
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict => AccountError::Taken,
            other => AccountError::Store(other),
        })?;
    Ok(CreatedUser {
        user: User {
            id,
            username: spec.username,
            display_name,
            role: spec.role,
            capacity,
            disabled: false,
        },
        generated_password: generated.then_some(password),
    })
}
