//! A real SMTP server for the transcript e-mail tests: Python's aiosmtpd,
//! started as a child process on a free loopback port, storing every
//! message it receives in a maildir. `.ci/run` installs aiosmtpd; if
//! python3 or aiosmtpd is missing, the tests fail loudly rather than skip.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use switchboard::config::{MailSettings, SmtpTls};
use tokio::process::{Child, Command};

/// A running aiosmtpd; killed when dropped.
pub struct SmtpServer {
    pub port: u16,
    maildir: PathBuf,
    child: Child,
}

impl SmtpServer {
    /// Starts the server and waits until it accepts connections.
    pub async fn start() -> SmtpServer {
        let port = free_port();
        let maildir =
            std::env::temp_dir().join(format!("sb_mail_{}", uuid::Uuid::new_v4().simple()));
        let mut child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 must be installed to run the SMTP tests");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = pipe.read_to_string(&mut stderr).await;
                }
                panic!(
                    "aiosmtpd exited ({status}); install it with `python3 -m pip install aiosmtpd`:\n{stderr}"
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "aiosmtpd did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        SmtpServer {
            port,
            maildir,
            child,
        }
    }

    /// Mail settings that send to this server in plain SMTP.
    pub fn settings(&self) -> MailSettings {
        MailSettings {
            enabled: true,
            smtp_host: "127.0.0.1".into(),
            smtp_port: self.port,
            tls: SmtpTls::None,
            from: "Switchboard Support <support@switchboard.test>".into(),
            username: None,
            password: None,
            timeout_secs: 10,
        }
    }

    /// Every message received so far, raw.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        let mut messages: Vec<(std::time::SystemTime, Vec<u8>)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let modified = e.metadata().ok()?.modified().ok()?;
                Some((modified, std::fs::read(e.path()).ok()?))
            })
            .collect();
        messages.sort_by_key(|(at, _)| *at);
        messages.into_iter().map(|(_, m)| m).collect()
    }

    /// Waits until `count` messages have arrived and returns them.
    pub async fn wait_for(&self, count: usize) -> Vec<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {count} messages, got {}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
