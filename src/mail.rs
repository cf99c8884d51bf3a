//! Outgoing e-mail. Handlers and the transcript service talk to the small
//! [`Mailer`] trait; [`SmtpMailer`] speaks SMTP through lettre, and
//! [`DisabledMailer`] stands in when `[mail]` is off, so the server runs
//! without an SMTP server and e-mail requests fail with a typed error.

use crate::config::{MailSettings, SmtpTls};
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::Duration;

/// Longest address accepted (RFC 5321 path limit).
pub const MAX_ADDRESS_CHARS: usize = 254;

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// A single validated address (no display name, so nothing the customer
    /// typed ends up in a header other than the address itself).
    pub to: Address,
    pub subject: String,
    pub text: String,
    /// An HTML alternative of `text`, already escaped.
    pub html: Option<String>,
}

/// Why a message was not handed to the SMTP server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// `[mail] enabled = false`: nothing is sent.
    #[error("e-mail is not enabled on this server")]
    Disabled,
    /// The message could not be built (a bad `from` setting, say).
    #[error("could not build the message: {0}")]
    Build(String),
    /// The SMTP server refused the message or could not be reached; retryable.
    #[error("SMTP delivery failed: {0}")]
    Smtp(String),
}

/// Something that sends e-mail.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends `mail`; returns once the SMTP server accepted it.
    async fn send(&self, mail: Mail) -> Result<(), MailError>;

    /// False when every `send` would fail with [`MailError::Disabled`], so
    /// callers can refuse before doing any work.
    fn is_enabled(&self) -> bool {
        true
    }
}

/// A shared mailer handle.
pub type DynMailer = Arc<dyn Mailer>;

/// The mailer `[mail]` describes: SMTP when enabled, otherwise one that
/// refuses every message with [`MailError::Disabled`].
pub fn from_settings(settings: &MailSettings) -> anyhow::Result<DynMailer> {
    if settings.enabled {
        Ok(Arc::new(SmtpMailer::new(settings)?))
    } else {
        Ok(Arc::new(DisabledMailer))
    }
}

/// Parses an address a person typed: trimmed, at most 254 characters, no
/// control characters, and a valid `local@domain`.
pub fn parse_address(raw: &str) -> Option<Address> {
    let raw = raw.trim();
    if raw.is_empty()
        || raw.chars().count() > MAX_ADDRESS_CHARS
        || raw.chars().any(char::is_control)
    {
        return None;
    }
    raw.parse::<Address>().ok()
}

/// Refuses every message: the server has no SMTP configured.
pub struct DisabledMailer;

#[async_trait]
impl Mailer for DisabledMailer {
    async fn send(&self, _mail: Mail) -> Result<(), MailError> {
        Err(MailError::Disabled)
    }

    fn is_enabled(&self) -> bool {
        false
    }
}

/// Sends through an SMTP server with lettre.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// Builds the transport; connects only when the first message is sent.
    /// Call it inside the Tokio runtime: the connection pool spawns a task.
    pub fn new(settings: &MailSettings) -> anyhow::Result<Self> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("mail.from is not a valid mailbox: {e}"))?;
        let host = settings.smtp_host.as_str();
        let builder = match settings.tls {
            // A local relay (or a test server) without TLS.
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
        };
        let mut builder = builder
            .port(settings.smtp_port)
            .timeout(Some(Duration::from_secs(settings.timeout_secs.max(1))));
        match (&settings.username, &settings.password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            (None, None) => {}
            _ => anyhow::bail!("mail.username and mail.password must be set together"),
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let builder = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, mail.to))
            .subject(mail.subject);
        let message = match mail.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(mail.text, html)),
            None => builder.singlepart(SinglePart::plain(mail.text)),
        }
        .map_err(|e| MailError::Build(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError::Smtp(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_validated() {
        assert_eq!(
            parse_address("  carla@example.com ").map(|a| a.to_string()),
            Some("carla@example.com".into())
        );
        for bad in [
            "",
            "carla",
            "carla@",
            "@example.com",
            "carla@example.com\r\nBcc: x@example.com",
            "Carla <carla@example.com>",
        ] {
            assert_eq!(parse_address(bad), None, "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(parse_address(&long), None);
    }

    #[tokio::test]
    async fn disabled_mailer_refuses() {
        let mail = Mail {
            to: "carla@example.com".parse().expect("address"),
            subject: "s".into(),
            text: "t".into(),
            html: None,
        };
        assert_eq!(DisabledMailer.send(mail).await, Err(MailError::Disabled));
    }

    // lettre's connection pool needs a runtime to be built and dropped in.
    #[tokio::test]
    async fn smtp_settings_are_checked() {
        let mut settings = MailSettings {
            enabled: true,
            ..MailSettings::default()
        };
        assert!(SmtpMailer::new(&settings).is_ok());
        settings.username = Some("user".into());
        assert!(SmtpMailer::new(&settings).is_err(), "password missing");
        settings.password = Some("secret".into());
        assert!(SmtpMailer::new(&settings).is_ok());
        settings.from = "not a mailbox".into();
        assert!(SmtpMailer::new(&settings).is_err());
    }
}
