//! The router's own work in the S3 routing burst, without I/O: how many
//! routing decisions per second the pure `RoutingState` makes on one core.
//! (`bench/run.sh s3` measures the whole server; this isolates the part
//! the router actor runs between store commits.)
//!
//! `cargo bench --bench routing [-- CHATS AGENTS CAPACITY]` (defaults: the
//! issue's S3 sizes, 10,000 chats for 500 agents × 4). Per loop it does
//! what `RouterActor` does per batch: plan up to 512 offers, record them,
//! answer every pending offer (10% rejected), end the oldest chats so
//! capacity frees, and look for the next timer; queue positions are worked
//! out once per loop (the actor does it at most every 200 ms).

use std::collections::{HashSet, VecDeque};
use std::time::Instant;
use switchboard::domain::account::AgentStatus;
use switchboard::domain::ids::{ConversationId, QueueId, UserId};
use switchboard::domain::routing::{
    AgentSignIn, OfferOutcome, QueueRule, RoutingState, WaitingChatInit,
};

const OFFER_BATCH: usize = 512;

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .filter(|a| !a.starts_with('-'))
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let chats = arg(1, 10_000);
    let agents = arg(2, 500);
    let capacity = arg(3, 4) as u32;
    for round in 0..3 {
        let (decisions, secs, batches) = burst(chats, agents, capacity);
        println!(
            "routing round {round}: {chats} chats, {agents} agents x {capacity}: \
             {decisions} decisions in {:.1} ms = {:.0} decisions/s, {batches} batches, \
             {:.1} µs per batch",
            secs * 1e3,
            decisions as f64 / secs,
            secs * 1e6 / batches as f64
        );
    }
}

/// Routes `chats` waiting chats to completion; returns the decisions
/// (offers, accepts, rejects), the seconds taken and the loops run.
fn burst(chats: usize, agents: usize, capacity: u32) -> (u64, f64, u64) {
    let queue = QueueId(1);
    let mut state = RoutingState::new();
    state.set_queue(
        queue,
        QueueRule {
            priority: 0,
            offer_timeout_ms: 30_000,
        },
    );
    for a in 0..agents {
        state.agent_online(
            UserId(a as i64 + 1),
            AgentSignIn {
                queues: HashSet::from([queue]),
                takes_chat: true,
                capacity,
                open_chats: 0,
                status: AgentStatus::Ready,
            },
            0,
        );
    }
    let ids: Vec<ConversationId> = (0..chats).map(|_| ConversationId::random()).collect();
    let started = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        state.enqueue(
            id.clone(),
            WaitingChatInit {
                queue,
                enqueued_at_ms: i as i64,
                version: 1,
                rejected_by: HashSet::new(),
                customer_away_since: None,
            },
        );
    }
    let mut decisions = 0u64;
    let mut batches = 0u64;
    let mut accepted = 0usize;
    let mut open: VecDeque<(UserId, ConversationId)> = VecDeque::new();
    let mut now = 1u64;
    while accepted < chats {
        batches += 1;
        now += 1;
        let plan = state.plan_offers(OFFER_BATCH);
        let mut offered = Vec::with_capacity(plan.len());
        for (chat, agent, version) in plan {
            if state.offer_made(&chat, agent, version + 1, now).is_some() {
                decisions += 1;
                offered.push((chat, agent, version + 1));
            }
        }
        for (n, (chat, agent, version)) in offered.into_iter().enumerate() {
            decisions += 1;
            if n % 10 == 9 {
                state.released(&chat, agent, OfferOutcome::Rejected, version + 1);
            } else {
                state.accepted(agent, &chat, now, now as i64);
                accepted += 1;
                open.push_back((agent, chat));
            }
        }
        // Capacity frees as the oldest chats end (the S3 agents hold each
        // chat for a while): a quarter of the open ones per loop.
        for _ in 0..open.len().div_ceil(4) {
            if let Some((agent, _)) = open.pop_front() {
                state.chat_closed(agent, now);
            }
        }
        std::hint::black_box(state.next_deadline(60_000, 60_000));
        std::hint::black_box(state.changed_places(now));
    }
    (decisions, started.elapsed().as_secs_f64(), batches)
}
