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
    /// Transcript e-mail; off unless configured.
    #[serde(default)]
    pub mail: MailSettings,
    #[serde(default)]
    pub attachments: AttachmentSettings,
    /// Abuse limits: connections, frame rates, timeouts, login attempts.
    #[serde(default)]
    pub limits: LimitSettings,
}

/// Every abuse limit in one place (`[limits]` in `config/default.toml`).
/// The defaults suit one site behind one public address per customer; a
/// benchmark from a few loopback addresses raises the per-address ones.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct LimitSettings {
    /// Open TCP connections from one IP address; more get 429 `too_many_connections`.
    pub connections_per_ip: usize,
    /// Open TCP connections in total; more get 503 `too_many_connections`.
    pub connections_total: usize,
    /// Seconds a client may take to send a request's headers (slowloris).
    pub header_read_timeout_secs: u64,
    /// WebSocket frames one connection may send in a burst, and per second after it.
    pub frames_burst: u32,
    pub frames_per_sec: u32,
    /// The same for all WebSocket connections of one IP address together.
    pub ip_frames_burst: u32,
    pub ip_frames_per_sec: u32,
    /// Frames refused as `rate_limited` on one connection before it is
    /// closed with 1008 (policy violation).
    pub rate_limited_frames_before_close: u32,
    /// Failed logins per account and IP address within `login_window_secs`
    /// before further attempts get 429 with `Retry-After`.
    pub login_failures: u32,
    pub login_window_secs: u64,
    /// Seconds shutdown waits for open WebSockets to finish their last command.
    pub shutdown_grace_secs: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            connections_per_ip: 50,
            connections_total: 10_000,
            header_read_timeout_secs: 5,
            frames_burst: 60,
            frames_per_sec: 20,
            ip_frames_burst: 300,
            ip_frames_per_sec: 100,
            rate_limited_frames_before_close: 200,
            login_failures: 5,
            login_window_secs: 900,
            shutdown_grace_secs: 10,
        }
    }
}

impl LimitSettings {
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }
    pub fn login_window(&self) -> Duration {
        Duration::from_secs(self.login_window_secs)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
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
    /// Seconds an agent's console may be disconnected before their offer is
    /// withdrawn and their chats go to others (docs/protocol.md 6.5).
    #[serde(default = "default_agent_grace_secs")]
    pub agent_grace_secs: u64,
}

fn default_agent_grace_secs() -> u64 {
    60
}

impl RoutingSettings {
    pub fn customer_grace(&self) -> Duration {
        Duration::from_secs(self.customer_grace_secs)
    }

    pub fn agent_grace(&self) -> Duration {
        Duration::from_secs(self.agent_grace_secs)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct DemoSettings {
    /// Seed a demo queue, profile and two agents on an empty database.
    #[serde(default)]
    pub enabled: bool,
}

/// How the server connects to an SMTP server to send transcripts.
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct MailSettings {
    /// Off by default: without SMTP the server runs, and e-mail requests get 503.
    pub enabled: bool,
    pub smtp_host: String,
    pub smtp_port: u16,
    /// How the connection is protected.
    pub tls: SmtpTls,
    /// The sender, e.g. `Support <no-reply@example.com>`.
    pub from: String,
    /// SMTP AUTH credentials; both or neither.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Bound on one SMTP exchange, so a stuck server cannot hold a request.
    pub timeout_secs: u64,
}

/// Transport security towards the SMTP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain SMTP: only for a relay on the same host or network.
    None,
    /// Upgrade with STARTTLS (usually port 587); refuses servers without it.
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            smtp_host: "127.0.0.1".into(),
            smtp_port: 25,
            tls: SmtpTls::None,
            from: "Switchboard <no-reply@localhost>".into(),
            username: None,
            password: None,
            timeout_secs: 10,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct AttachmentSettings {
    /// Directory of the local-disk file store, created if missing. A
    /// relative path is relative to the working directory, like the SQLite file.
    #[serde(default = "default_attachment_dir")]
    pub dir: String,
    /// Whether customers of chats started without a site may send files.
    /// A site's chats follow its own `allow_customer_attachments`.
    #[serde(default = "default_true")]
    pub customers_may_upload: bool,
}

fn default_attachment_dir() -> String {
    "data/attachments".into()
}

fn default_true() -> bool {
    true
}

impl Default for AttachmentSettings {
    fn default() -> Self {
        Self {
            dir: default_attachment_dir(),
            customers_may_upload: true,
        }
    }
}

impl std::fmt::Debug for MailSettings {
    // Credentials are secrets: say whether they are set, never what they are.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "…");
        f.debug_struct("MailSettings")
            .field("enabled", &self.enabled)
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("tls", &self.tls)
            .field("from", &self.from)
            .field("username", &redacted(&self.username))
            .field("password", &redacted(&self.password))
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_credentials_are_redacted_in_debug() {
        let mail = MailSettings {
            username: Some("smtp-user".into()),
            password: Some("hunter2-secret".into()),
            ..MailSettings::default()
        };
        let shown = format!("{mail:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(!shown.contains("smtp-user"), "{shown}");
        assert!(shown.contains("smtp_port: 25"), "{shown}");
    }

    #[test]
    fn default_config_loads_with_mail_off() {
        let settings = Settings::load(Path::new(env!("CARGO_MANIFEST_DIR"))).expect("load");
        assert!(!settings.mail.enabled);
        assert_eq!(settings.mail.tls, SmtpTls::None);
    }

    #[test]
    fn default_toml_limits_match_the_built_in_defaults() {
        let settings = Settings::load(Path::new(env!("CARGO_MANIFEST_DIR"))).expect("load");
        let (file, built_in) = (settings.limits, LimitSettings::default());
        assert_eq!(format!("{file:?}"), format!("{built_in:?}"));
    }
}
