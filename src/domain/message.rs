//! Chat message input rules: parsed once at the edge, so the rest of the
//! server only ever sees text that is within limits.

use serde::{Deserialize, Serialize};

/// Longest accepted message, in Unicode scalar values (what a user calls characters).
pub const MAX_TEXT_CHARS: usize = 4000;
/// Longest accepted client message id.
pub const MAX_CLIENT_MSG_ID_CHARS: usize = 64;

/// Why a piece of input was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputError {
    Empty,
    TooLong,
    ControlCharacters,
}

/// The text of a chat message: not blank, at most [`MAX_TEXT_CHARS`], no
/// control characters other than newline and tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MessageText(String);

impl MessageText {
    pub fn parse(raw: String) -> Result<Self, InputError> {
        if raw.trim().is_empty() {
            return Err(InputError::Empty);
        }
        if raw.chars().count() > MAX_TEXT_CHARS {
            return Err(InputError::TooLong);
        }
        if raw
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
        {
            return Err(InputError::ControlCharacters);
        }
        Ok(Self(raw))
    }

    /// The text of a message that carries attachments: it may be blank,
    /// and then it is stored empty; otherwise the rules of [`parse`](Self::parse).
    pub fn parse_caption(raw: String) -> Result<Self, InputError> {
        if raw.trim().is_empty() {
            return Ok(Self(String::new()));
        }
        Self::parse(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The sender's idempotency key for one message. A resend with the same key
/// gets the original acknowledgement, never a second row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    pub fn parse(raw: String) -> Result<Self, InputError> {
        if raw.is_empty() {
            return Err(InputError::Empty);
        }
        if raw.chars().count() > MAX_CLIENT_MSG_ID_CHARS {
            return Err(InputError::TooLong);
        }
        if !raw.chars().all(|c| c.is_ascii_graphic()) {
            return Err(InputError::ControlCharacters);
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_limits_count_characters_not_bytes() {
        let at_limit = "ø".repeat(MAX_TEXT_CHARS);
        assert!(MessageText::parse(at_limit).is_ok());
        let over = "ø".repeat(MAX_TEXT_CHARS + 1);
        assert_eq!(MessageText::parse(over), Err(InputError::TooLong));
    }

    #[test]
    fn blank_and_control_text_is_refused() {
        assert_eq!(MessageText::parse(" \n ".into()), Err(InputError::Empty));
        assert_eq!(
            MessageText::parse("hi\u{0}".into()),
            Err(InputError::ControlCharacters)
        );
        assert!(MessageText::parse("line one\nline two\tTabbed".into()).is_ok());
    }

    #[test]
    fn a_caption_may_be_blank_but_not_too_long() {
        assert_eq!(
            MessageText::parse_caption(" \n".into()).unwrap().as_str(),
            ""
        );
        assert_eq!(
            MessageText::parse_caption("x".repeat(MAX_TEXT_CHARS + 1)),
            Err(InputError::TooLong)
        );
        assert_eq!(
            MessageText::parse_caption("hi\u{0}".into()),
            Err(InputError::ControlCharacters)
        );
    }

    #[test]
    fn client_msg_id_is_short_printable_ascii() {
        assert!(ClientMsgId::parse("c-1".into()).is_ok());
        assert_eq!(ClientMsgId::parse(String::new()), Err(InputError::Empty));
        assert_eq!(
            ClientMsgId::parse("a b".into()),
            Err(InputError::ControlCharacters)
        );
        assert_eq!(ClientMsgId::parse("x".repeat(65)), Err(InputError::TooLong));
    }
}
