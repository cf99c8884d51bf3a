//! Settings: `config/default.toml`, then an optional `config/local.toml`,
//! then `SWITCHBOARD__SECTION__KEY` environment variables.

use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub routing: RoutingSettings,
    #[serde(default)]
    pub demo: DemoSettings,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ServerSettings {
    /// Address to listen on, e.g. "127.0.0.1:8080".
    pub bind: String,
    /// Extra origins allowed to open the agent console WebSocket besides the
    /// server's own (e.g. a reverse proxy's public origin).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Lifetime of a login session, in hours.
    pub session_hours: u64,
    /// Set when served over HTTPS: adds `Secure` to the session cookie.
    #[serde(default)]
    pub secure_cookies: bool,
    /// Directory of the browser UI.
    pub static_dir: String,
}

#[derive(Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite:…` (embedded default) or `postgres://…`.
    pub url: String,
    pub max_connections: u32,
}

impl std::fmt::Debug for DatabaseSettings {
    // The URL may carry a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.url.split(':').next().unwrap_or("");
        f.debug_struct("DatabaseSettings")
            .field("url", &format!("{scheme}:…"))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct RoutingSettings {
    /// Seconds a waiting customer may be disconnected before the chat is abandoned.
    pub customer_grace_secs: u64,
}

impl RoutingSettings {
    pub fn customer_grace(&self) -> Duration {
        Duration::from_secs(self.customer_grace_secs)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct DemoSettings {
    /// Seed a demo queue, profile and two agents on an empty database.
    #[serde(default)]
    pub enabled: bool,
}

impl Settings {
    /// Loads settings from the `config/` directory under `root`.
    pub fn load(root: &Path) -> anyhow::Result<Self> {
        let dir = root.join("config");
        let settings = config::Config::builder()
            .add_source(config::File::from(dir.join("default.toml")))
            .add_source(config::File::from(dir.join("local.toml")).required(false))
            .add_source(
                config::Environment::with_prefix("SWITCHBOARD")
                    .prefix_separator("__")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("server.allowed_origins")
                    .try_parsing(true),
            )
            .build()?;
        Ok(settings.try_deserialize()?)
    }
}
