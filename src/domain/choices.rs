//! Offers of choices ("Tilbud"): an agent offers a prompt with 2–10 options,
//! the customer answers exactly one or dismisses it, once.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub const MIN_OPTIONS: usize = 2;
pub const MAX_OPTIONS: usize = 10;
pub const MAX_PROMPT_CHARS: usize = 500;
pub const MAX_OPTION_CHARS: usize = 100;

/// One option of an offer; `id` is its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChoiceOption {
    pub id: u32,
    pub label: String,
}

/// A validated offer of choices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChoiceOffer {
    pub offer_id: String,
    pub prompt: String,
    pub options: Vec<ChoiceOption>,
}

/// Why an offer or an answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error(
        "an offer needs a prompt of 1–500 characters and 2–10 distinct options of 1–100 characters"
    )]
    InvalidOffer,
    #[error("no such offer of choices in this conversation")]
    UnknownOffer,
    #[error("that option was not offered")]
    InvalidOption,
    #[error("this offer was already answered or dismissed")]
    AlreadyAnswered,
}

fn clean(text: &str, max: usize) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && text.chars().count() <= max && !text.chars().any(char::is_control))
        .then(|| text.to_owned())
}

impl ChoiceOffer {
    /// Validates an agent's offer; `offer_id` is chosen by the caller.
    pub fn parse(offer_id: String, prompt: &str, options: &[String]) -> Result<Self, ChoiceError> {
        let prompt = clean(prompt, MAX_PROMPT_CHARS).ok_or(ChoiceError::InvalidOffer)?;
        if !(MIN_OPTIONS..=MAX_OPTIONS).contains(&options.len()) {
            return Err(ChoiceError::InvalidOffer);
        }
        let mut labels: Vec<String> = Vec::with_capacity(options.len());
        for option in options {
            let label = clean(option, MAX_OPTION_CHARS).ok_or(ChoiceError::InvalidOffer)?;
            if labels.iter().any(|l| l.eq_ignore_ascii_case(&label)) {
                return Err(ChoiceError::InvalidOffer);
            }
            labels.push(label);
        }
        Ok(Self {
            offer_id,
            prompt,
            options: labels
                .into_iter()
                .enumerate()
                .map(|(i, label)| ChoiceOption {
                    id: i as u32 + 1,
                    label,
                })
                .collect(),
        })
    }

    /// The text kept in the log and shown by simple clients.
    pub fn as_text(&self) -> String {
        let options: Vec<String> = self
            .options
            .iter()
            .map(|o| format!("[{}]", o.label))
            .collect();
        format!("{} {}", self.prompt, options.join(" "))
    }
}

/// The offers of one conversation and whether each is still open.
#[derive(Debug, Default, Clone)]
pub struct ChoiceBook {
    offers: HashMap<String, (ChoiceOffer, bool)>,
}

impl ChoiceBook {
    pub fn offered(&mut self, offer: ChoiceOffer) {
        self.offers.insert(offer.offer_id.clone(), (offer, false));
    }

    /// Marks an offer answered (recovery from the log).
    pub fn closed(&mut self, offer_id: &str) {
        if let Some(entry) = self.offers.get_mut(offer_id) {
            entry.1 = true;
        }
    }

    /// Checks an answer; returns the chosen option.
    pub fn check_answer(&self, offer_id: &str, option: u32) -> Result<ChoiceOption, ChoiceError> {
        let (offer, answered) = self.offers.get(offer_id).ok_or(ChoiceError::UnknownOffer)?;
        if *answered {
            return Err(ChoiceError::AlreadyAnswered);
        }
        offer
            .options
            .iter()
            .find(|o| o.id == option)
            .cloned()
            .ok_or(ChoiceError::InvalidOption)
    }

    /// Checks a dismissal.
    pub fn check_dismiss(&self, offer_id: &str) -> Result<(), ChoiceError> {
        match self.offers.get(offer_id) {
            None => Err(ChoiceError::UnknownOffer),
            Some((_, true)) => Err(ChoiceError::AlreadyAnswered),
            Some((_, false)) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn offers_need_two_to_ten_distinct_options() {
        assert_eq!(
            ChoiceOffer::parse("o".into(), "Size?", &opts(&["S"])),
            Err(ChoiceError::InvalidOffer)
        );
        let eleven: Vec<String> = (0..11).map(|i| format!("o{i}")).collect();
        assert_eq!(
            ChoiceOffer::parse("o".into(), "Size?", &eleven),
            Err(ChoiceError::InvalidOffer)
        );
        assert_eq!(
            ChoiceOffer::parse("o".into(), "Size?", &opts(&["S", "s"])),
            Err(ChoiceError::InvalidOffer)
        );
        assert_eq!(
            ChoiceOffer::parse("o".into(), " ", &opts(&["S", "M"])),
            Err(ChoiceError::InvalidOffer)
        );
        assert_eq!(
            ChoiceOffer::parse("o".into(), "Size?", &opts(&["S", ""])),
            Err(ChoiceError::InvalidOffer)
        );
        let ok = ChoiceOffer::parse("o".into(), "Size?", &opts(&["S", "M", "L"])).unwrap();
        assert_eq!(
            ok.options[2],
            ChoiceOption {
                id: 3,
                label: "L".into()
            }
        );
        assert_eq!(ok.as_text(), "Size? [S] [M] [L]");
    }

    #[test]
    fn one_answer_per_offer_and_only_offered_options() {
        let mut book = ChoiceBook::default();
        book.offered(ChoiceOffer::parse("o1".into(), "Size?", &opts(&["S", "M"])).unwrap());
        assert_eq!(book.check_answer("nope", 1), Err(ChoiceError::UnknownOffer));
        assert_eq!(book.check_answer("o1", 3), Err(ChoiceError::InvalidOption));
        assert_eq!(book.check_answer("o1", 2).unwrap().label, "M");
        book.closed("o1");
        assert_eq!(
            book.check_answer("o1", 1),
            Err(ChoiceError::AlreadyAnswered)
        );
        assert_eq!(book.check_dismiss("o1"), Err(ChoiceError::AlreadyAnswered));
    }
}
