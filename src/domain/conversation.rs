//! What a conversation allows: who may write, join or end it, and in which state.

use super::ids::UserId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Lifecycle of a conversation. `Waiting` and `Offered` belong to routing;
/// `Ended` and `Abandoned` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationState {
    Waiting,
    Offered,
    Active,
    Ended,
    /// The customer left before any agent accepted.
    Abandoned,
}

impl ConversationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Offered => "offered",
            Self::Active => "active",
            Self::Ended => "ended",
            Self::Abandoned => "abandoned",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "waiting" => Self::Waiting,
            "offered" => Self::Offered,
            "active" => Self::Active,
            "ended" => Self::Ended,
            "abandoned" => Self::Abandoned,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Ended | Self::Abandoned)
    }

    pub fn is_queued(self) -> bool {
        matches!(self, Self::Waiting | Self::Offered)
    }
}

/// Who did something in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    Customer,
    Agent(UserId),
}

/// Who may see an event. Everything in the core server is for everyone;
/// private agent notes use `AgentsOnly`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    Everyone,
    AgentsOnly,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Everyone => "everyone",
            Self::AgentsOnly => "agents_only",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "everyone" => Some(Self::Everyone),
            "agents_only" => Some(Self::AgentsOnly),
            _ => None,
        }
    }

    /// Whether a party may see an event with this audience.
    pub fn admits(self, party: Party) -> bool {
        match (self, party) {
            (Self::Everyone, _) => true,
            (Self::AgentsOnly, Party::Agent(_)) => true,
            (Self::AgentsOnly, Party::Customer) => false,
        }
    }
}

/// Refusals of the conversation rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConversationError {
    #[error("the conversation has ended")]
    Ended,
    #[error("you are not a participant of this conversation")]
    NotParticipant,
    #[error("the last agent cannot leave while the customer is connected")]
    LastAgent,
}

/// What losing an agent did to a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentLost {
    /// Other agents are still in the chat.
    Left,
    /// It was the last agent and the customer is there: back to the queue.
    Requeued,
    /// It was the last agent and the customer is gone too.
    Ended,
}

/// The rule-relevant state of one conversation.
#[derive(Debug, Clone)]
pub struct ConversationRules {
    state: ConversationState,
    agents: BTreeSet<UserId>,
}

impl ConversationRules {
    pub fn new(state: ConversationState, agents: impl IntoIterator<Item = UserId>) -> Self {
        Self {
            state,
            agents: agents.into_iter().collect(),
        }
    }

    pub fn state(&self) -> ConversationState {
        self.state
    }

    pub fn agents(&self) -> impl Iterator<Item = UserId> + '_ {
        self.agents.iter().copied()
    }

    pub fn has_agent(&self, agent: UserId) -> bool {
        self.agents.contains(&agent)
    }

    /// May `party` write a message now? Customers may write while they wait
    /// (the agent sees it on accept); agents only once they have joined.
    pub fn check_send(&self, party: Party) -> Result<(), ConversationError> {
        if self.state.is_final() {
            return Err(ConversationError::Ended);
        }
        match party {
            Party::Customer => Ok(()),
            Party::Agent(id) if self.agents.contains(&id) => Ok(()),
            Party::Agent(_) => Err(ConversationError::NotParticipant),
        }
    }

    /// May `party` end the conversation now?
    pub fn check_end(&self, party: Party) -> Result<(), ConversationError> {
        self.check_send(party)
    }

    /// An agent joins after routing handed them the chat. Returns false when
    /// they were already in it (joining is idempotent so that recovery after
    /// a crash can replay it).
    pub fn join(&mut self, agent: UserId) -> Result<bool, ConversationError> {
        if self.state.is_final() {
            return Err(ConversationError::Ended);
        }
        self.state = ConversationState::Active;
        Ok(self.agents.insert(agent))
    }

    /// An agent leaves. Returns true when that ends the chat: they were the
    /// last agent and the customer is gone. The last agent may not leave a
    /// connected customer alone: they end or transfer the chat instead.
    pub fn leave(
        &mut self,
        agent: UserId,
        customer_connected: bool,
    ) -> Result<bool, ConversationError> {
        self.check_send(Party::Agent(agent))?;
        let last = self.agents.len() == 1;
        if last && customer_connected {
            return Err(ConversationError::LastAgent);
        }
        self.agents.remove(&agent);
        if last {
            self.state = ConversationState::Ended;
        }
        Ok(last)
    }

    /// An agent's console stayed away past the grace period. The others
    /// carry on without them; if they were the last agent, the chat goes
    /// back to the queue for a connected customer (keeping its history), or
    /// ends if the customer is gone too.
    pub fn agent_lost(
        &mut self,
        agent: UserId,
        customer_connected: bool,
    ) -> Result<AgentLost, ConversationError> {
        self.check_send(Party::Agent(agent))?;
        if self.state != ConversationState::Active {
            return Err(ConversationError::NotParticipant);
        }
        self.agents.remove(&agent);
        if !self.agents.is_empty() {
            return Ok(AgentLost::Left);
        }
        if customer_connected {
            self.state = ConversationState::Waiting;
            Ok(AgentLost::Requeued)
        } else {
            self.state = ConversationState::Ended;
            Ok(AgentLost::Ended)
        }
    }

    /// Ends the conversation. Ending a chat nobody accepted yet abandons it.
    pub fn end(&mut self, party: Party) -> Result<ConversationState, ConversationError> {
        self.check_end(party)?;
        self.state = if self.state.is_queued() {
            ConversationState::Abandoned
        } else {
            ConversationState::Ended
        };
        Ok(self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: UserId = UserId(1);
    const B: UserId = UserId(2);

    #[test]
    fn customer_may_write_while_waiting_agent_only_after_joining() {
        let mut c = ConversationRules::new(ConversationState::Waiting, []);
        assert_eq!(c.check_send(Party::Customer), Ok(()));
        assert_eq!(
            c.check_send(Party::Agent(A)),
            Err(ConversationError::NotParticipant)
        );
        assert_eq!(c.join(A), Ok(true));
        assert_eq!(c.join(A), Ok(false), "joining again is a no-op");
        assert_eq!(c.state(), ConversationState::Active);
        assert_eq!(c.check_send(Party::Agent(A)), Ok(()));
        assert_eq!(
            c.check_send(Party::Agent(B)),
            Err(ConversationError::NotParticipant)
        );
    }

    #[test]
    fn ended_conversation_refuses_everything() {
        let mut c = ConversationRules::new(ConversationState::Active, [A]);
        assert_eq!(
            c.end(Party::Agent(B)),
            Err(ConversationError::NotParticipant)
        );
        assert_eq!(c.end(Party::Agent(A)), Ok(ConversationState::Ended));
        assert_eq!(c.check_send(Party::Customer), Err(ConversationError::Ended));
        assert_eq!(c.end(Party::Customer), Err(ConversationError::Ended));
        assert_eq!(c.join(B), Err(ConversationError::Ended));
    }

    #[test]
    fn last_agent_cannot_leave_a_connected_customer() {
        let mut c = ConversationRules::new(ConversationState::Active, [A, B]);
        assert_eq!(c.leave(A, true), Ok(false), "B stays: a transfer");
        assert!(!c.has_agent(A));
        assert_eq!(c.leave(A, true), Err(ConversationError::NotParticipant));
        assert_eq!(c.leave(B, true), Err(ConversationError::LastAgent));
        assert_eq!(
            c.leave(B, false),
            Ok(true),
            "customer gone: leaving ends it"
        );
        assert_eq!(c.state(), ConversationState::Ended);
    }

    #[test]
    fn losing_the_last_agent_requeues_for_a_connected_customer() {
        let mut c = ConversationRules::new(ConversationState::Active, [A, B]);
        assert_eq!(c.agent_lost(A, true), Ok(AgentLost::Left));
        assert_eq!(c.state(), ConversationState::Active);
        assert_eq!(
            c.agent_lost(A, true),
            Err(ConversationError::NotParticipant)
        );
        assert_eq!(c.agent_lost(B, true), Ok(AgentLost::Requeued));
        assert_eq!(c.state(), ConversationState::Waiting);
        assert_eq!(c.agents().count(), 0);
        assert_eq!(c.check_send(Party::Customer), Ok(()));
        assert_eq!(c.join(A), Ok(true), "a new agent takes it as usual");
        assert_eq!(c.state(), ConversationState::Active);
    }

    #[test]
    fn losing_the_last_agent_of_an_absent_customer_ends_the_chat() {
        let mut c = ConversationRules::new(ConversationState::Active, [A]);
        assert_eq!(c.agent_lost(A, false), Ok(AgentLost::Ended));
        assert_eq!(c.state(), ConversationState::Ended);
        let mut waiting = ConversationRules::new(ConversationState::Waiting, []);
        assert_eq!(
            waiting.agent_lost(A, true),
            Err(ConversationError::NotParticipant)
        );
    }

    #[test]
    fn ending_before_acceptance_abandons() {
        let mut c = ConversationRules::new(ConversationState::Offered, []);
        assert_eq!(c.end(Party::Customer), Ok(ConversationState::Abandoned));
    }

    #[test]
    fn agents_only_audience_never_admits_the_customer() {
        assert!(!Audience::AgentsOnly.admits(Party::Customer));
        assert!(Audience::AgentsOnly.admits(Party::Agent(A)));
        assert!(Audience::Everyone.admits(Party::Customer));
    }

    #[test]
    fn state_names_round_trip() {
        for s in [
            ConversationState::Waiting,
            ConversationState::Offered,
            ConversationState::Active,
            ConversationState::Ended,
            ConversationState::Abandoned,
        ] {
            assert_eq!(ConversationState::parse(s.as_str()), Some(s));
        }
    }
}
