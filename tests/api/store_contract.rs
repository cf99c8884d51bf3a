//! The store's ownership rules, run against both implementations: an offer
//! or an accept succeeds for exactly one of several racing callers, as it
//! would for several server nodes sharing one database.

use crate::both_stores;
use crate::helpers::{ensure_fixtures, fresh_database, Backend};
use switchboard::accounts::{create_user, UserSpec};
use switchboard::domain::account::Role;
use switchboard::domain::conversation::Audience;
use switchboard::domain::ids::{ConversationId, UserId};
use switchboard::store::{
    self, Author, DynStore, EventKind, NewConversation, NewEvent, RoutingEventKind,
};

both_stores!(
    racing_offers_and_accepts_have_one_winner,
    released_offer_bars_the_rejecter_across_restarts,
    a_stored_client_msg_id_is_found_per_sender
);

async fn agents(store: &DynStore, n: usize) -> Vec<UserId> {
    let mut ids = Vec::new();
    for i in 0..n {
        let user = create_user(
            store,
            UserSpec {
                username: format!("agent{i}"),
                display_name: None,
                role: Role::Agent,
                capacity: None,
                password: Some("password-123".into()),
            },
        )
        .await
        .unwrap();
        ids.push(user.user.id);
    }
    ids
}

async fn new_chat(store: &DynStore) -> (ConversationId, i64) {
    let (queue, _) = ensure_fixtures(store).await;
    let id = ConversationId::random();
    let record = store
        .create_conversation(NewConversation {
            id: id.clone(),
            queue,
            customer_token_hash: uuid::Uuid::new_v4().to_string(),
            customer_name: None,
            customer_email: None,
            now: 1,
        })
        .await
        .unwrap();
    (id, record.version)
}

/// A new chat offered to `agent` and accepted.
async fn accepted_chat(store: &DynStore, agent: UserId) -> ConversationId {
    let (id, version) = new_chat(store).await;
    let offered = store
        .try_offer(&id, agent, version, 2)
        .await
        .unwrap()
        .unwrap();
    store
        .accept_offer(&id, agent, offered, 3)
        .await
        .unwrap()
        .unwrap();
    id
}

async fn racing_offers_and_accepts_have_one_winner(backend: Backend) {
    let store = store::connect(&fresh_database(backend).await, 8)
        .await
        .unwrap();
    let agents = agents(&store, 8).await;
    for _round in 0..10 {
        let (id, version) = new_chat(&store).await;
        // Eight "nodes" try to offer the same chat at the same version.
        let offers = agents.iter().map(|&agent| {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move {
                (
                    agent,
                    store.try_offer(&id, agent, version, 2).await.unwrap(),
                )
            })
        });
        let results = futures_util::future::join_all(offers).await;
        let winners: Vec<(UserId, i64)> = results
            .into_iter()
            .map(|r| r.unwrap())
            .filter_map(|(agent, v)| v.map(|v| (agent, v)))
            .collect();
        assert_eq!(winners.len(), 1, "exactly one offer wins");
        let (holder, offered_version) = winners[0];
        // Everyone tries to accept; only the holder at that version can.
        let accepts = agents.iter().map(|&agent| {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move {
                store
                    .accept_offer(&id, agent, offered_version, 3)
                    .await
                    .unwrap()
                    .is_some()
            })
        });
        let accepted: Vec<bool> = futures_util::future::join_all(accepts)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(accepted.iter().filter(|a| **a).count(), 1);
        assert_eq!(store.conversation_agents(&id).await.unwrap(), vec![holder]);
        // A stale accept after the fact changes nothing.
        assert_eq!(
            store
                .accept_offer(&id, holder, offered_version, 4)
                .await
                .unwrap(),
            None
        );
    }
}

async fn released_offer_bars_the_rejecter_across_restarts(backend: Backend) {
    let url = fresh_database(backend).await;
    let store = store::connect(&url, 2).await.unwrap();
    let agents = agents(&store, 2).await;
    let (id, version) = new_chat(&store).await;
    let offered = store
        .try_offer(&id, agents[0], version, 2)
        .await
        .unwrap()
        .unwrap();
    let released = store
        .release_offer(&id, agents[0], offered, RoutingEventKind::Rejected, 3)
        .await
        .unwrap()
        .unwrap();
    assert!(released > offered);
    // Wrong agent or stale version: refused.
    assert_eq!(
        store
            .release_offer(&id, agents[1], released, RoutingEventKind::Rejected, 4)
            .await
            .unwrap(),
        None
    );
    drop(store);
    let reopened = store::connect(&url, 2).await.unwrap();
    let queued = reopened.queued_conversations().await.unwrap();
    let chat = queued.iter().find(|q| q.record.id == id).unwrap();
    assert_eq!(chat.rejected_by, vec![agents[0]]);
    assert_eq!(chat.record.state.as_str(), "waiting");
}

both_stores!(finishing_an_accepted_chat_ends_it_and_names_its_agents);

async fn finishing_an_accepted_chat_ends_it_and_names_its_agents(backend: Backend) {
    use switchboard::domain::conversation::ConversationState;
    let store = store::connect(&fresh_database(backend).await, 2)
        .await
        .unwrap();
    let agents = agents(&store, 1).await;
    let id = accepted_chat(&store, agents[0]).await;
    // The customer's view may still be "waiting" (the join not yet seen);
    // the store decides: an accepted chat ends, it is not abandoned.
    let event = customer_ended(&id, 4);
    let (state, in_chat) = store.finish_conversation(&event).await.unwrap().unwrap();
    assert_eq!(state, ConversationState::Ended);
    assert_eq!(in_chat, agents);
    assert!(store
        .open_conversations_of(agents[0])
        .await
        .unwrap()
        .is_empty());
    let again = NewEvent {
        seq: 2,
        public_seq: Some(2),
        ..event
    };
    assert_eq!(
        store.finish_conversation(&again).await.unwrap(),
        None,
        "closing twice changes nothing"
    );
    assert_eq!(store.events_after(&id, 0, 10).await.unwrap().len(), 1);
    let last_routing = store.routing_events(&id).await.unwrap().pop().unwrap();
    assert_eq!(last_routing.kind, "ended");
}

/// Resend detection confirms in the store what the actor's hashed ids
/// suggest: a stored (sender, client_msg_id) is found with its numbers, the
/// same id from another sender or another conversation is not.
async fn a_stored_client_msg_id_is_found_per_sender(backend: Backend) {
    let store = store::connect(&fresh_database(backend).await, 2)
        .await
        .unwrap();
    let (id, _) = new_chat(&store).await;
    let (other, _) = new_chat(&store).await;
    let event = |seq: i64, public_seq: Option<i64>, author: Author, msg: &str| NewEvent {
        conversation: id.clone(),
        seq,
        public_seq,
        kind: EventKind::Message,
        audience: if public_seq.is_some() {
            Audience::Everyone
        } else {
            Audience::AgentsOnly
        },
        author,
        body: "hello".into(),
        data: None,
        client_msg_id: Some(msg.into()),
        created_at: 1,
        attachments: Vec::new(),
    };
    let customer = Author::Customer {
        name: "Carla".into(),
    };
    let agent = Author::Agent {
        id: UserId(1),
        name: "Ann".into(),
    };
    store
        .append_events(&[
            event(2, Some(2), customer.clone(), "m1"),
            event(3, None, agent.clone(), "a1"),
        ])
        .await
        .unwrap();
    let find = |conversation: ConversationId, author: Author, msg: &'static str| {
        let store = store.clone();
        async move {
            store
                .find_client_msg(&conversation, &author.sender_key(), msg)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        find(id.clone(), customer.clone(), "m1").await,
        Some((2, Some(2)))
    );
    assert_eq!(find(id.clone(), agent.clone(), "a1").await, Some((3, None)));
    assert_eq!(find(id.clone(), agent, "m1").await, None);
    assert_eq!(find(id.clone(), customer.clone(), "m2").await, None);
    assert_eq!(find(other, customer, "m1").await, None);
}

both_stores!(batched_offers_and_answers_are_each_conditional_on_their_row);

/// `try_offers` and `answer_offers` commit many rows at once (the router's
/// group commit); each row must still obey its own condition, a stale one
/// must not spoil the others, and each answer must leave what its single
/// form leaves (participant, bar, routing event).
async fn batched_offers_and_answers_are_each_conditional_on_their_row(backend: Backend) {
    use switchboard::store::OfferAnswer;
    let store = store::connect(&fresh_database(backend).await, 2)
        .await
        .unwrap();
    let agents = agents(&store, 3).await;
    let mut chats = Vec::new();
    for _ in 0..3 {
        chats.push(new_chat(&store).await);
    }
    // The third offer names a stale version: refused, the others made.
    let offers = vec![
        (chats[0].0.clone(), agents[0], chats[0].1),
        (chats[1].0.clone(), agents[1], chats[1].1),
        (chats[2].0.clone(), agents[2], chats[2].1 + 7),
    ];
    let offered = store.try_offers(&offers, 2).await.unwrap();
    assert!(offered[0].is_some() && offered[1].is_some());
    assert_eq!(offered[2], None);
    let answers = vec![
        OfferAnswer {
            chat: chats[0].0.clone(),
            agent: agents[0],
            version: offered[0].unwrap(),
            accept: true,
        },
        OfferAnswer {
            chat: chats[1].0.clone(),
            agent: agents[1],
            version: offered[1].unwrap(),
            accept: false,
        },
        // Not offered to this agent: refused.
        OfferAnswer {
            chat: chats[2].0.clone(),
            agent: agents[2],
            version: chats[2].1,
            accept: true,
        },
    ];
    let answered = store.answer_offers(&answers, 3).await.unwrap();
    assert!(answered[0].unwrap() > offered[0].unwrap());
    assert!(answered[1].unwrap() > offered[1].unwrap());
    assert_eq!(answered[2], None);
    // The same answers again are stale: nothing changes twice.
    assert_eq!(
        store.answer_offers(&answers, 4).await.unwrap(),
        vec![None, None, None]
    );

    let accepted = store.conversation(&chats[0].0).await.unwrap().unwrap();
    assert_eq!(accepted.state.as_str(), "active");
    assert_eq!(
        store.conversation_agents(&chats[0].0).await.unwrap(),
        vec![agents[0]]
    );
    let queued = store.queued_conversations().await.unwrap();
    let rejected = queued.iter().find(|q| q.record.id == chats[1].0).unwrap();
    assert_eq!(rejected.record.state.as_str(), "waiting");
    assert_eq!(rejected.rejected_by, vec![agents[1]]);
    assert!(store
        .conversation_agents(&chats[1].0)
        .await
        .unwrap()
        .is_empty());
    let untouched = queued.iter().find(|q| q.record.id == chats[2].0).unwrap();
    assert_eq!(untouched.record.version, chats[2].1);

    // Each chat's routing events, leaving out how it was queued.
    let decisions = |events: Vec<switchboard::store::RoutingEventRecord>| {
        events
            .into_iter()
            .filter(|e| e.kind != RoutingEventKind::Queued.as_str())
            .map(|e| (e.kind, e.agent))
            .collect::<Vec<_>>()
    };
    let event = |kind: RoutingEventKind, agent: UserId| (kind.as_str().to_owned(), Some(agent));
    assert_eq!(
        decisions(store.routing_events(&chats[0].0).await.unwrap()),
        vec![
            event(RoutingEventKind::Offered, agents[0]),
            event(RoutingEventKind::Accepted, agents[0]),
        ]
    );
    assert_eq!(
        decisions(store.routing_events(&chats[1].0).await.unwrap()),
        vec![
            event(RoutingEventKind::Offered, agents[1]),
            event(RoutingEventKind::Rejected, agents[1]),
        ]
    );
    assert!(decisions(store.routing_events(&chats[2].0).await.unwrap()).is_empty());
}

both_stores!(
    a_batch_of_new_chats_is_stored_in_order_with_each_customer,
    finishing_a_waiting_chat_abandons_it
);

/// Chat creation is group-committed (`chat_creation`): one call stores
/// several chats, and each keeps its own site, variables and `queued`
/// event; the resume query finds each by its token with its site's origins.
async fn a_batch_of_new_chats_is_stored_in_order_with_each_customer(backend: Backend) {
    use switchboard::domain::customer::CustomerVariable;
    use switchboard::store::{NewCustomerChat, NewSite};
    let store = store::connect(&fresh_database(backend).await, 2)
        .await
        .unwrap();
    let (queue, _) = ensure_fixtures(&store).await;
    let site = store
        .create_site(NewSite {
            name: "Shop".into(),
            key: "shop-key".into(),
            allowed_origins: vec![
                "https://shop.example".into(),
                "https://m.shop.example".into(),
            ],
            default_queue: queue,
            identity_secret: "secret".into(),
            require_verified: false,
            allow_customer_attachments: false,
            transcript_email: false,
            now: 1,
        })
        .await
        .unwrap();
    let variable = |name: &str, value: &str, verified| CustomerVariable {
        name: name.into(),
        value: value.into(),
        verified,
    };
    let variables = [
        Vec::new(),
        vec![
            variable("email", "b@example.com", true),
            variable("name", "Bo", false),
        ],
        vec![variable("name", "Cy", false)],
    ];
    let chats: Vec<NewCustomerChat> = variables
        .iter()
        .enumerate()
        .map(|(i, variables)| NewCustomerChat {
            conversation: NewConversation {
                id: ConversationId::random(),
                queue,
                customer_token_hash: format!("token-hash-{i}"),
                customer_name: Some(format!("customer {i}")),
                customer_email: None,
                now: 10 + i as i64,
            },
            site: (i != 0).then_some(site.id),
            variables: variables.clone(),
        })
        .collect();
    let records = store.create_customer_chats(&chats).await.unwrap();
    assert_eq!(records.len(), 3);
    for ((record, chat), variables) in records.iter().zip(&chats).zip(&variables) {
        assert_eq!(
            record.id, chat.conversation.id,
            "records come back in the batch's order"
        );
        assert_eq!(record.customer_name, chat.conversation.customer_name);
        assert_eq!(record.created_at, chat.conversation.now);
        assert_eq!(
            &store.customer_variables(&record.id).await.unwrap(),
            variables,
            "each chat keeps its own variables, in order"
        );
        let routing = store.routing_events(&record.id).await.unwrap();
        assert_eq!(routing.len(), 1);
        assert_eq!(routing[0].kind, "queued");
        let resumed = store
            .customer_chat(&chat.conversation.customer_token_hash)
            .await
            .unwrap()
            .expect("found by its token");
        assert_eq!(resumed.record.id, record.id);
        let expected_origins = chat.site.map(|_| site.allowed_origins.clone());
        assert_eq!(resumed.site_origins, expected_origins);
    }
    assert!(store.customer_chat("no such hash").await.unwrap().is_none());
    assert!(store.create_customer_chats(&[]).await.unwrap().is_empty());
}

/// The customer's `ended` event, first in the chat's log.
fn customer_ended(id: &ConversationId, at: i64) -> NewEvent {
    NewEvent {
        conversation: id.clone(),
        seq: 1,
        public_seq: Some(1),
        kind: EventKind::Ended,
        audience: Audience::Everyone,
        author: Author::Customer {
            name: "Carla".into(),
        },
        body: "Carla ended the chat".into(),
        data: None,
        client_msg_id: None,
        created_at: at,
        attachments: Vec::new(),
    }
}

/// A chat nobody accepted is abandoned when it ends: no agent named, and
/// its routing history ends with `abandoned`.
async fn finishing_a_waiting_chat_abandons_it(backend: Backend) {
    use switchboard::domain::conversation::ConversationState;
    let store = store::connect(&fresh_database(backend).await, 2)
        .await
        .unwrap();
    let (id, _) = new_chat(&store).await;
    let event = customer_ended(&id, 5);
    let (state, in_chat) = store.finish_conversation(&event).await.unwrap().unwrap();
    assert_eq!(state, ConversationState::Abandoned);
    assert!(in_chat.is_empty());
    let record = store.conversation(&id).await.unwrap().unwrap();
    assert_eq!(record.state, ConversationState::Abandoned);
    assert_eq!(record.ended_at, Some(5));
    let kinds: Vec<String> = store
        .routing_events(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(kinds, ["queued", "abandoned"]);
    let log = store.events_after(&id, 0, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].body, "Carla ended the chat");
}

both_stores!(a_chat_refused_in_a_batch_fails_alone);

/// Chat creation is batched: a chat whose site was deleted a moment ago
/// (a foreign key the store refuses) gets its own error, and the chats
/// batched with it are stored.
async fn a_chat_refused_in_a_batch_fails_alone(backend: Backend) {
    use switchboard::chat_creation::ChatCreator;
    use switchboard::store::{DeleteOutcome, NewCustomerChat, NewSite, StoreError};
    let store = store::connect(&fresh_database(backend).await, 4)
        .await
        .unwrap();
    let (queue, _) = ensure_fixtures(&store).await;
    let site = store
        .create_site(NewSite {
            name: "Gone".into(),
            key: "gone-key".into(),
            allowed_origins: Vec::new(),
            default_queue: queue,
            identity_secret: "secret".into(),
            require_verified: false,
            allow_customer_attachments: false,
            transcript_email: false,
            now: 1,
        })
        .await
        .unwrap();
    assert_eq!(
        store.delete_site(site.id).await.unwrap(),
        DeleteOutcome::Deleted
    );
    let chat = |i: usize, site| NewCustomerChat {
        conversation: NewConversation {
            id: ConversationId::random(),
            queue,
            customer_token_hash: format!("refused-batch-{i}"),
            customer_name: None,
            customer_email: None,
            now: 1,
        },
        site,
        variables: Vec::new(),
    };
    let creator = ChatCreator::spawn(store.clone());
    // Submitted together, so they are committed as one batch.
    let (first, refused, last) = tokio::join!(
        creator.create(chat(0, None)),
        creator.create(chat(1, Some(site.id))),
        creator.create(chat(2, None)),
    );
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    for stored in [first.unwrap(), last.unwrap()] {
        assert!(store.conversation(&stored.id).await.unwrap().is_some());
    }
    assert!(store
        .customer_chat("refused-batch-1")
        .await
        .unwrap()
        .is_none());
}

both_stores!(chat_ends_are_committed_in_batches_each_with_its_own_answer);

/// Chat ends are group-committed (`writer::CommitWriter::finish`): in one
/// batch an accepted chat ends naming its agent, a waiting one is
/// abandoned, a closed one is left alone, and an end the store refuses
/// (its seq already taken) fails alone.
async fn chat_ends_are_committed_in_batches_each_with_its_own_answer(backend: Backend) {
    use switchboard::domain::conversation::ConversationState;
    use switchboard::store::StoreError;
    use switchboard::writer::CommitWriter;
    let store = store::connect(&fresh_database(backend).await, 4)
        .await
        .unwrap();
    let agents = agents(&store, 1).await;
    let accepted = accepted_chat(&store, agents[0]).await;
    let (waiting, _) = new_chat(&store).await;
    let (closed, _) = new_chat(&store).await;
    store
        .finish_conversation(&customer_ended(&closed, 4))
        .await
        .unwrap()
        .unwrap();
    let (taken, _) = new_chat(&store).await;
    let mut first = customer_ended(&taken, 4);
    first.kind = EventKind::Message;
    first.body = "hello".into();
    store.append_events(&[first]).await.unwrap();

    let writer = CommitWriter::spawn(store.clone());
    let mut closed_again = customer_ended(&closed, 5);
    closed_again.seq = 2;
    closed_again.public_seq = Some(2);
    // Submitted together, so they are committed as one batch.
    let (accepted_end, waiting_end, closed_end) = tokio::join!(
        writer.finish(customer_ended(&accepted, 5)),
        writer.finish(customer_ended(&waiting, 5)),
        writer.finish(closed_again),
    );
    assert_eq!(
        accepted_end.unwrap(),
        Some((ConversationState::Ended, agents.clone()))
    );
    assert_eq!(
        waiting_end.unwrap(),
        Some((ConversationState::Abandoned, Vec::new()))
    );
    assert_eq!(closed_end.unwrap(), None, "closing twice changes nothing");
    let (bystander, _) = new_chat(&store).await;
    let (taken_end, bystander_end) = tokio::join!(
        writer.finish(customer_ended(&taken, 5)),
        writer.finish(customer_ended(&bystander, 5)),
    );
    assert!(
        matches!(taken_end, Err(StoreError::Conflict)),
        "{taken_end:?}"
    );
    assert_eq!(
        bystander_end.unwrap(),
        Some((ConversationState::Abandoned, Vec::new())),
        "the chat batched with a refused one still ends"
    );

    assert!(store
        .open_conversations_of(agents[0])
        .await
        .unwrap()
        .is_empty());
    for (id, events) in [
        (&accepted, 1),
        (&waiting, 1),
        (&closed, 1),
        (&taken, 1),
        (&bystander, 1),
    ] {
        assert_eq!(store.events_after(id, 0, 10).await.unwrap().len(), events);
    }
    let taken_record = store.conversation(&taken).await.unwrap().unwrap();
    assert_eq!(
        taken_record.state,
        ConversationState::Waiting,
        "a refused end closes nothing"
    );
    let last_kind = |id: &ConversationId| {
        let store = store.clone();
        let id = id.clone();
        async move { store.routing_events(&id).await.unwrap().pop().unwrap().kind }
    };
    assert_eq!(last_kind(&accepted).await, "ended");
    assert_eq!(last_kind(&waiting).await, "abandoned");
}
