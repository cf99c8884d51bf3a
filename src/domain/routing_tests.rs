use super::*;

const Q1: QueueId = QueueId(1);
const Q2: QueueId = QueueId(2);
const A: UserId = UserId(10);
const B: UserId = UserId(11);

fn chat(n: u8) -> ConversationId {
    ConversationId(format!("00000000-0000-4000-8000-0000000000{n:02}"))
}

fn state() -> RoutingState {
    let mut s = RoutingState::new();
    s.set_queue(
        Q1,
        QueueRule {
            priority: 0,
            offer_timeout_ms: 30_000,
        },
    );
    s.set_queue(
        Q2,
        QueueRule {
            priority: 5,
            offer_timeout_ms: 10_000,
        },
    );
    s
}

fn sign_in(queues: &[QueueId], status: AgentStatus) -> AgentSignIn {
    AgentSignIn {
        queues: queues.iter().copied().collect(),
        takes_chat: true,
        capacity: 3,
        open_chats: 0,
        status,
    }
}

fn waiting(queue: QueueId, at: i64) -> WaitingChatInit {
    WaitingChatInit {
        queue,
        enqueued_at_ms: at,
        version: 1,
        rejected_by: HashSet::new(),
        customer_away_since: None,
    }
}

/// Makes the next offer as the actor would, asserting invariants.
fn offer_next(s: &mut RoutingState, now: Millis) -> Option<(ConversationId, UserId)> {
    let (chat, agent, version) = s.next_offer()?;
    s.offer_made(&chat, agent, version + 1, now);
    s.check_invariants();
    Some((chat, agent))
}

#[test]
fn offers_to_a_ready_agent_of_the_queue_only() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q2], AgentStatus::Ready), 0);
    s.agent_online(
        B,
        sign_in(&[Q1], AgentStatus::not_ready("Pause").unwrap()),
        0,
    );
    s.enqueue(chat(1), waiting(Q1, 100));
    assert_eq!(s.next_offer(), None, "A lacks the queue, B is not ready");
    s.set_status(B, AgentStatus::Ready, 5).unwrap();
    assert_eq!(offer_next(&mut s, 5), Some((chat(1), B)));
}

#[test]
fn profile_without_chat_media_gets_nothing() {
    let mut s = state();
    let mut no_chat = sign_in(&[Q1], AgentStatus::Ready);
    no_chat.takes_chat = false;
    s.agent_online(A, no_chat, 0);
    s.enqueue(chat(1), waiting(Q1, 0));
    assert_eq!(s.next_offer(), None);
}

#[test]
fn one_offer_at_a_time_per_agent() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q1], AgentStatus::Ready), 0);
    s.enqueue(chat(1), waiting(Q1, 1));
    s.enqueue(chat(2), waiting(Q1, 2));
    assert_eq!(offer_next(&mut s, 0), Some((chat(1), A)));
    assert_eq!(s.next_offer(), None, "A already holds an offer");
}

#[test]
fn longest_idle_agent_wins() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q1], AgentStatus::Ready), 50);
    s.agent_online(B, sign_in(&[Q1], AgentStatus::Ready), 10);
    s.enqueue(chat(1), waiting(Q1, 0));
    assert_eq!(offer_next(&mut s, 60), Some((chat(1), B)));
}

#[test]
fn priority_then_age_orders_the_queues() {
    let mut s = state();
    s.enqueue(chat(1), waiting(Q1, 1));
    s.enqueue(chat(2), waiting(Q2, 9));
    s.enqueue(chat(3), waiting(Q2, 5));
    s.agent_online(A, sign_in(&[Q1, Q2], AgentStatus::Ready), 0);
    assert_eq!(
        offer_next(&mut s, 0),
        Some((chat(3), A)),
        "higher priority queue, oldest first"
    );
}

#[test]
fn reject_goes_to_someone_else_and_keeps_the_place() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q1], AgentStatus::Ready), 0);
    s.agent_online(B, sign_in(&[Q1], AgentStatus::Ready), 1);
    s.enqueue(chat(1), waiting(Q1, 1));
    s.enqueue(chat(2), waiting(Q1, 2));
    let (c, a) = offer_next(&mut s, 0).unwrap();
    assert_eq!((c.clone(), a), (chat(1), A));
    let v = s.check_answer(A, &c).unwrap();
    s.released(&c, A, OfferOutcome::Rejected, v + 1);
    s.check_invariants();
    // B is next idle and chat 1 is still first in line.
    assert_eq!(offer_next(&mut s, 2), Some((chat(1), B)));
    // A, now free, gets chat 2 but never chat 1 again.
    assert_eq!(offer_next(&mut s, 2), Some((chat(2), A)));
    assert_eq!(
        s.check_answer(A, &chat(1)),
        Err(RoutingError::AlreadyRejected)
    );
}

#[test]
fn chat_rejected_by_everyone_waits() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q1], AgentStatus::Ready), 0);
    s.enqueue(chat(1), waiting(Q1, 1));
    let (c, _) = offer_next(&mut s, 0).unwrap();
    s.released(&c, A, OfferOutcome::Rejected, 3);
    assert_eq!(s.next_offer(), None);
    assert!(s.is_waiting(&c));
}

#[test]
fn timeout_counts_as_reject_and_sets_no_answer() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q1], AgentStatus::Ready), 0);
    s.agent_online(B, sign_in(&[Q1], AgentStatus::Ready), 5);
    s.enqueue(chat(1), waiting(Q1, 0));
    offer_next(&mut s, 1000).unwrap();
    assert_eq!(s.next_deadline(60_000, 60_000), Some(31_000));
    assert!(s.expired_offers(30_999).is_empty());
    let expired = s.expired_offers(31_000);
    assert_eq!(expired.len(), 1);
    let (c, a, v) = expired[0].clone();
    s.released(&c, a, OfferOutcome::TimedOut, v + 1);
    s.check_invariants();
    assert_eq!(
        s.agent_status(A),
        Some((
            AgentStatus::NotReady {
                reason: "No answer".into()
            },
            0
        ))
    );
    assert_eq!(s.check_answer(A, &c), Err(RoutingError::OfferExpired));
    assert_eq!(offer_next(&mut s, 31_000), Some((chat(1), B)));
}

#[test]
fn queue_timeout_comes_from_the_queue() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q2], AgentStatus::Ready), 0);
    s.enqueue(chat(1), waiting(Q2, 0));
    offer_next(&mut s, 0).unwrap();
    assert_eq!(s.pending_offer(&chat(1)).unwrap().deadline, 10_000);
}

#[test]
fn capacity_limits_offers() {
    let mut s = state();
    let mut full = sign_in(&[Q1], AgentStatus::Ready);
    full.capacity = 1;
    s.agent_online(A, full, 0);
    s.enqueue(chat(1), waiting(Q1, 1));
    s.enqueue(chat(2), waiting(Q1, 2));
    let (c, a) = offer_next(&mut s, 0).unwrap();
    s.check_answer(a, &c).unwrap();
    s.accepted(a, &c, 1, 10);
    s.check_invariants();
    assert_eq!(s.agent_status(A), Some((AgentStatus::Ready, 1)));
    assert_eq!(s.check_answer(A, &c), Err(RoutingError::AlreadyAccepted));
    assert_eq!(s.next_offer(), None, "A is at capacity");
    s.chat_closed(A, 5);
    assert_eq!(offer_next(&mut s, 5), Some((chat(2), A)));
}

#[test]
fn agent_going_offline_withdraws_the_offer_without_barring_them() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q1], AgentStatus::Ready), 0);
    s.agent_online(B, sign_in(&[Q1], AgentStatus::Ready), 1);
    s.enqueue(chat(1), waiting(Q1, 0));
    offer_next(&mut s, 0).unwrap();
    assert_eq!(
        s.agent_offline(A),
        Some((chat(1), Answering::Chat { version: 2 }))
    );
    s.check_invariants();
    assert_eq!(offer_next(&mut s, 1), Some((chat(1), B)));
}

#[test]
fn away_agent_keeps_the_offer_running_and_gets_no_new_one() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q1], AgentStatus::Ready), 0);
    s.agent_online(B, sign_in(&[Q1], AgentStatus::Ready), 1);
    s.enqueue(chat(1), waiting(Q1, 0));
    s.enqueue(chat(2), waiting(Q1, 1));
    assert_eq!(offer_next(&mut s, 0), Some((chat(1), A)));
    assert!(s.agent_disconnected(A, 500));
    assert!(s.is_away(A));
    s.check_invariants();
    // The offer stays A's: the answer check still knows it.
    assert_eq!(
        s.pending_offer(&chat(1)).map(|o| (o.agent, o.deadline)),
        Some((A, 30_000))
    );
    assert_eq!(offer_next(&mut s, 600), Some((chat(2), B)));
    assert_eq!(s.next_offer(), None, "A is away, B holds an offer");
    // The earliest deadline: A's offer (30 s) before A's grace (0.5 + 60 s).
    assert_eq!(s.next_deadline(60_000, 60_000), Some(30_000));
    // Unanswered by the deadline: a timeout as for a connected agent.
    let expired = s.expired_offers(30_000);
    assert_eq!(expired, vec![(chat(1), A, 2)]);
    s.released(&chat(1), A, OfferOutcome::TimedOut, 3);
    s.check_invariants();
    assert_eq!(
        s.agent_status(A).map(|(st, _)| st),
        Some(AgentStatus::NotReady {
            reason: "No answer".into()
        })
    );
    assert!(s.lost_agents(60_499, 60_000).is_empty());
    assert_eq!(s.lost_agents(60_500, 60_000), vec![A]);
}

#[test]
fn agent_back_within_grace_gets_the_offer_again_and_is_not_lost() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q1], AgentStatus::Ready), 0);
    s.enqueue(chat(1), waiting(Q1, 0));
    offer_next(&mut s, 0).unwrap();
    s.agent_disconnected(A, 100);
    s.agent_disconnected(A, 200); // a second close keeps the first time
    assert_eq!(s.lost_agents(60_100, 60_000), vec![A]);
    let again = s.agent_online(A, sign_in(&[Q1], AgentStatus::Ready), 5_000);
    assert_eq!(again, Some(chat(1)));
    assert!(!s.is_away(A));
    assert!(s.lost_agents(1_000_000, 60_000).is_empty());
    assert_eq!(s.check_answer(A, &chat(1)), Ok(2));
    s.check_invariants();
}

#[test]
fn away_agent_is_not_offered_invitations() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q1], AgentStatus::Ready), 0);
    s.agent_online(B, sign_in(&[Q1], AgentStatus::Ready), 1);
    s.agent_disconnected(B, 2);
    assert!(!s.can_take_invite(B));
    s.add_invite(
        chat(1),
        InviteInit {
            invite_id: 1,
            target: InviteTarget::Queue(Q1),
            chat_queue: Q1,
            excluded: [A].into_iter().collect(),
            version: 1,
            created_at_ms: 0,
        },
    );
    assert_eq!(s.next_invite_offer(), None);
    s.agent_online(B, sign_in(&[Q1], AgentStatus::Ready), 3);
    assert_eq!(s.next_invite_offer().map(|o| o.1), Some(B));
}

#[test]
fn expected_agent_is_lost_unless_they_sign_in() {
    let mut s = state();
    s.expect_agent(A, 1_000);
    s.expect_agent(B, 1_000);
    s.enqueue(chat(1), waiting(Q1, 0));
    assert_eq!(s.next_offer(), None, "expected agents take nothing");
    assert_eq!(s.next_deadline(60_000, 5_000), Some(6_000));
    s.agent_online(B, sign_in(&[Q1], AgentStatus::Ready), 2_000);
    assert_eq!(s.lost_agents(6_000, 5_000), vec![A]);
    assert_eq!(s.agent_offline(A), None);
    s.check_invariants();
    let (_, agents) = s.live(0);
    assert_eq!(agents.len(), 1);
    assert!(agents[0].connected);
}

#[test]
fn reconnecting_agent_gets_the_pending_offer_back() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q1], AgentStatus::Ready), 0);
    s.enqueue(chat(1), waiting(Q1, 0));
    offer_next(&mut s, 0).unwrap();
    let again = s.agent_online(A, sign_in(&[Q1], AgentStatus::Ready), 3);
    assert_eq!(again, Some(chat(1)));
    s.check_invariants();
}

#[test]
fn customer_leaving_withdraws_the_offer() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q1], AgentStatus::Ready), 0);
    s.enqueue(chat(1), waiting(Q1, 0));
    offer_next(&mut s, 0).unwrap();
    assert_eq!(s.remove_chat(&chat(1)), Some(A));
    s.check_invariants();
    assert_eq!(
        s.check_answer(A, &chat(1)),
        Err(RoutingError::OfferWithdrawn)
    );
    assert_eq!(s.waiting_count(), 0);
}

#[test]
fn strangers_and_unknown_chats_get_not_your_offer() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q1], AgentStatus::Ready), 0);
    s.agent_online(B, sign_in(&[Q1], AgentStatus::Ready), 1);
    s.enqueue(chat(1), waiting(Q1, 0));
    offer_next(&mut s, 0).unwrap();
    assert_eq!(s.check_answer(B, &chat(1)), Err(RoutingError::NotYourOffer));
    assert_eq!(s.check_answer(B, &chat(9)), Err(RoutingError::NotYourOffer));
    assert_eq!(
        s.check_answer(UserId(99), &chat(1)),
        Err(RoutingError::NotSignedIn)
    );
}

#[test]
fn away_customer_is_abandoned_after_grace() {
    let mut s = state();
    let mut init = waiting(Q1, 0);
    init.customer_away_since = Some(100);
    s.enqueue(chat(1), init);
    assert_eq!(s.next_deadline(1_000, 60_000), Some(1_100));
    assert!(s.abandoned_chats(1_099, 1_000).is_empty());
    s.set_customer_away(&chat(1), None);
    assert!(s.abandoned_chats(5_000, 1_000).is_empty());
    s.set_customer_away(&chat(1), Some(5_000));
    assert_eq!(s.abandoned_chats(6_000, 1_000), vec![chat(1)]);
}

#[test]
fn positions_are_announced_only_when_they_change() {
    let mut s = state();
    s.enqueue(chat(1), waiting(Q1, 1));
    s.enqueue(chat(2), waiting(Q1, 2));
    s.enqueue(chat(3), waiting(Q2, 0));
    let mut first = s.changed_places(0).places;
    first.sort_by(|a, b| a.chat.cmp(&b.chat));
    let positions: Vec<u32> = first.iter().map(|p| p.position).collect();
    assert_eq!(positions, vec![1, 2, 1]);
    let nothing = s.changed_places(PLACE_REPEAT_MS);
    assert!(nothing.places.is_empty() && !nothing.held_back);
    s.remove_chat(&chat(1));
    let moved = s.changed_places(2 * PLACE_REPEAT_MS).places;
    assert_eq!(moved.len(), 1);
    assert_eq!((moved[0].chat.clone(), moved[0].position), (chat(2), 1));
}

#[test]
fn a_customer_hears_of_a_new_place_at_most_once_per_repeat_interval() {
    let mut s = state();
    s.enqueue(chat(1), waiting(Q1, 1));
    s.enqueue(chat(2), waiting(Q1, 2));
    s.enqueue(chat(3), waiting(Q1, 3));
    assert_eq!(
        s.changed_places(1_000).places.len(),
        3,
        "first places at once"
    );
    s.remove_chat(&chat(1));
    let soon = s.changed_places(1_000 + PLACE_REPEAT_MS - 1);
    assert!(soon.places.is_empty(), "told too recently");
    assert!(soon.held_back, "the change is kept for later");
    s.enqueue(chat(4), waiting(Q1, 4));
    let newcomer = s.changed_places(1_000 + PLACE_REPEAT_MS - 1);
    assert_eq!(newcomer.places.len(), 1, "a new customer hears at once");
    assert_eq!(newcomer.places[0].chat, chat(4));
    let later = s.changed_places(1_000 + PLACE_REPEAT_MS);
    let mut told: Vec<(ConversationId, u32)> = later
        .places
        .iter()
        .map(|p| (p.chat.clone(), p.position))
        .collect();
    told.sort();
    assert_eq!(told, vec![(chat(2), 1), (chat(3), 2)]);
    assert!(!later.held_back);
}

#[test]
fn wait_estimate_follows_accepted_waits() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q1], AgentStatus::Ready), 0);
    s.enqueue(chat(1), waiting(Q1, 0));
    s.enqueue(chat(2), waiting(Q1, 1));
    s.enqueue(chat(3), waiting(Q1, 2));
    assert_eq!(s.places()[0].estimated_wait_secs, None, "no data yet");
    let (c, a) = offer_next(&mut s, 0).unwrap();
    s.accepted(a, &c, 0, 20_000);
    let mut places = s.places();
    places.sort_by_key(|p| p.position);
    assert_eq!(places[0].estimated_wait_secs, Some(20));
    assert_eq!(places[1].estimated_wait_secs, Some(40));
}

fn invite(target: InviteTarget, excluded: &[UserId]) -> InviteInit {
    InviteInit {
        invite_id: 7,
        target,
        chat_queue: Q1,
        excluded: excluded.iter().copied().collect(),
        version: 1,
        created_at_ms: 0,
    }
}

const C: UserId = UserId(12);

#[test]
fn queue_invite_skips_participants_and_goes_on_after_a_reject() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q1], AgentStatus::Ready), 0);
    s.agent_online(B, sign_in(&[Q1], AgentStatus::Ready), 1);
    s.agent_online(C, sign_in(&[Q1], AgentStatus::Ready), 2);
    s.add_invite(chat(1), invite(InviteTarget::Queue(Q1), &[A]));
    let (c, agent, id, v) = s.next_invite_offer().unwrap();
    assert_eq!(
        (c.clone(), agent, id),
        (chat(1), B, 7),
        "A is in the chat; B idle longest"
    );
    s.invite_offer_made(&c, B, v + 1, 10);
    s.check_invariants();
    assert_eq!(
        s.answering(B, &c),
        Ok(Answering::Invite {
            invite_id: 7,
            version: v + 1
        })
    );
    assert!(
        !s.invite_released(&c, B, OfferOutcome::Rejected, v + 2),
        "a queue invite goes on"
    );
    let (_, next, _, _) = s.next_invite_offer().unwrap();
    assert_eq!(next, C);
}

#[test]
fn named_invite_ends_on_reject_or_timeout_and_needs_a_free_agent() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q1], AgentStatus::Ready), 0);
    s.agent_online(
        B,
        sign_in(&[Q2], AgentStatus::not_ready("Pause").unwrap()),
        0,
    );
    assert!(
        s.can_take_invite(B),
        "a colleague in Pause can still be asked"
    );
    s.add_invite(chat(1), invite(InviteTarget::Agent(B), &[A]));
    let (c, agent, _, v) = s.next_invite_offer().unwrap();
    assert_eq!(agent, B);
    let offer = s.invite_offer_made(&c, B, v + 1, 100).unwrap();
    assert_eq!(offer.deadline, 30_100, "the chat's queue timeout");
    assert!(!s.can_take_invite(B), "one offer at a time");
    let expired = s.expired_invites(30_100);
    assert_eq!(expired.len(), 1);
    assert!(
        s.invite_released(&c, B, OfferOutcome::TimedOut, v + 2),
        "a named invite is over"
    );
    assert!(!s.has_invite(&c));
    assert_eq!(
        s.agent_status(B).unwrap().0,
        AgentStatus::NotReady {
            reason: "No answer".into()
        }
    );
    s.check_invariants();
}

#[test]
fn accepted_invite_counts_against_capacity_and_cancel_withdraws() {
    let mut s = state();
    s.agent_online(B, sign_in(&[Q1], AgentStatus::Ready), 0);
    s.add_invite(chat(1), invite(InviteTarget::Agent(B), &[A]));
    let (c, _, _, v) = s.next_invite_offer().unwrap();
    s.invite_offer_made(&c, B, v + 1, 0);
    assert_eq!(s.remove_invite(&c), Some((7, Some(B))));
    assert_eq!(s.check_answer(B, &c), Err(RoutingError::OfferWithdrawn));
    s.add_invite(chat(2), invite(InviteTarget::Agent(B), &[A]));
    let (c, _, _, v) = s.next_invite_offer().unwrap();
    s.invite_offer_made(&c, B, v + 1, 0);
    s.invite_accepted(B, &c, 5);
    assert_eq!(s.agent_status(B), Some((AgentStatus::Ready, 1)));
    assert_eq!(s.check_answer(B, &c), Err(RoutingError::AlreadyAccepted));
    s.check_invariants();
}

#[test]
fn live_view_counts_waiting_chats_oldest_wait_and_ready_agents() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q1, Q2], AgentStatus::Ready), 0);
    s.agent_online(
        B,
        sign_in(&[Q1], AgentStatus::not_ready("Lunch").unwrap()),
        0,
    );
    s.enqueue(chat(1), waiting(Q1, 10_000));
    s.enqueue(chat(2), waiting(Q1, 4_000));

    let (queues, agents) = s.live(16_500);

    assert_eq!(
        queues,
        vec![
            QueueLoad {
                queue: Q1,
                waiting: 2,
                longest_wait_secs: 12,
                agents_ready: 1
            },
            QueueLoad {
                queue: Q2,
                waiting: 0,
                longest_wait_secs: 0,
                agents_ready: 1
            },
        ]
    );
    assert_eq!(agents.len(), 2);
    assert_eq!(
        (agents[0].agent, &agents[0].status),
        (A, &AgentStatus::Ready)
    );
    assert_eq!(
        agents[1].status,
        AgentStatus::NotReady {
            reason: "Lunch".into()
        }
    );
}

/// Plans a batch, then records it as the actor does after the store took it.
fn offer_batch(s: &mut RoutingState, max: usize, now: Millis) -> Vec<(ConversationId, UserId)> {
    let plan = s.plan_offers(max);
    for (chat, agent, version) in &plan {
        s.offer_made(chat, *agent, version + 1, now);
        s.check_invariants();
    }
    plan.into_iter().map(|(c, a, _)| (c, a)).collect()
}

/// Several agents of both queues with different idle times and capacities,
/// chats of both queues (Q2 has the higher priority), some rejected.
fn busy_state() -> RoutingState {
    let mut s = state();
    for (i, queues) in [&[Q1][..], &[Q2], &[Q1, Q2], &[Q1, Q2], &[Q1]]
        .into_iter()
        .enumerate()
    {
        let mut signed = sign_in(queues, AgentStatus::Ready);
        signed.capacity = 1 + i as u32 % 3;
        signed.open_chats = u32::from(i == 4);
        s.agent_online(UserId(20 + i as i64), signed, 100 - i as u64 * 7);
    }
    for n in 0..12u8 {
        let queue = if n % 3 == 0 { Q2 } else { Q1 };
        let mut init = waiting(queue, i64::from(n % 5) * 10 + i64::from(n));
        if n % 4 == 1 {
            init.rejected_by.insert(UserId(22));
        }
        s.enqueue(chat(n), init);
    }
    s
}

#[test]
fn a_planned_batch_equals_offers_made_one_by_one() {
    let mut sequential = busy_state();
    let mut one_by_one = Vec::new();
    while let Some(offer) = offer_next(&mut sequential, 7) {
        one_by_one.push(offer);
    }
    assert!(one_by_one.len() > 2, "the fixture makes several offers");

    let mut batched = busy_state();
    assert_eq!(offer_batch(&mut batched, 512, 7), one_by_one);
    assert_eq!(batched.plan_offers(512), Vec::new());
    let sorted = |s: &RoutingState| {
        let mut places = s.places();
        places.sort_by(|a, b| a.chat.0.cmp(&b.chat.0));
        places
    };
    assert_eq!(sorted(&batched), sorted(&sequential));
}

#[test]
fn planning_in_small_batches_gives_the_same_offers() {
    let mut sequential = busy_state();
    let mut one_by_one = Vec::new();
    while let Some(offer) = offer_next(&mut sequential, 7) {
        one_by_one.push(offer);
    }
    let mut batched = busy_state();
    let mut in_batches = Vec::new();
    loop {
        let batch = offer_batch(&mut batched, 2, 7);
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 2);
        in_batches.extend(batch);
    }
    assert_eq!(in_batches, one_by_one);
}

#[test]
fn a_plan_gives_each_agent_one_offer() {
    let mut s = state();
    s.agent_online(A, sign_in(&[Q1], AgentStatus::Ready), 0);
    for n in 1..=3 {
        s.enqueue(chat(n), waiting(Q1, i64::from(n)));
    }
    assert_eq!(s.plan_offers(10), vec![(chat(1), A, 1)]);
    assert_eq!(s.plan_offers(0), Vec::new());
}
