//! Which `(sender, client_msg_id)` pairs a conversation has stored, kept
//! compact: a resend must get its original ack, but keeping every id as
//! strings cost ~200 bytes per message for the life of the actor (most of
//! the server's memory per chat in S2, docs/performance.md).
//!
//! Only a 64-bit hash of each pair is kept. A miss is certain (the pair was
//! never stored); a hit may be a collision, so the caller confirms it in
//! the store, where the pair is unique. Resends are rare, so the store is
//! asked almost only for real duplicates.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

/// The hashes of the stored `(sender key, client message id)` pairs.
#[derive(Debug, Default)]
pub struct SentIds {
    hashes: HashSet<u64>,
}

/// A fixed-key hash: the same pair gives the same value for the life of the
/// process (`DefaultHasher::new` is not randomised). An adversary forging
/// collisions only makes their own sends ask the store once more.
fn pair_hash(sender: &str, client_msg_id: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    // Hashing the tuple adds length prefixes, so ("ab", "c") ≠ ("a", "bc").
    (sender, client_msg_id).hash(&mut hasher);
    hasher.finish()
}

impl SentIds {
    /// From the pairs already in the log.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            hashes: pairs
                .into_iter()
                .map(|(sender, id)| pair_hash(sender, id))
                .collect(),
        }
    }

    /// False: certainly never stored. True: probably stored; confirm in the store.
    pub fn may_contain(&self, sender: &str, client_msg_id: &str) -> bool {
        self.hashes.contains(&pair_hash(sender, client_msg_id))
    }

    pub fn insert(&mut self, sender: &str, client_msg_id: &str) {
        self.hashes.insert(pair_hash(sender, client_msg_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_pair_is_found_and_another_is_not() {
        let mut sent = SentIds::from_pairs([("customer", "m1")]);
        sent.insert("agent:7", "a1");
        assert!(sent.may_contain("customer", "m1"));
        assert!(sent.may_contain("agent:7", "a1"));
        // The same id from another sender is another message.
        assert!(!sent.may_contain("agent:7", "m1"));
        assert!(!sent.may_contain("customer", "a1"));
        assert!(!sent.may_contain("customer", "m2"));
    }

    #[test]
    fn the_boundary_between_sender_and_id_counts() {
        let sent = SentIds::from_pairs([("ab", "c")]);
        assert!(!sent.may_contain("a", "bc"));
    }
}
