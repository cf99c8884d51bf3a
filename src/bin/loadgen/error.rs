//! The loadgen's error type.

use tokio_tungstenite::tungstenite;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Bad command-line values (including a non-loopback target).
    #[error("configuration: {0}")]
    Config(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("websocket: {0}")]
    Ws(#[from] tungstenite::Error),
    #[error("http: {0}")]
    Http(String),
    /// The server said something the protocol does not allow here.
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("setup: {0}")]
    Setup(String),
    #[error("timed out: {0}")]
    Timeout(String),
}

pub type Result<T> = std::result::Result<T, LoadError>;
