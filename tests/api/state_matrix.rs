//! The wrong-state matrix: every conversation command, from each side, in
//! every state a chat or its offer can be in. One table of
//! (state, actor, command, expected) rows and one loop. A refused command
//! must answer with exactly the typed error code of docs/protocol.md and
//! leave the organisation log (events, state, agents) as it was.

use crate::both_stores;
use crate::helpers::{accept, Backend, TestApp, Ws};
use serde_json::{json, Value};

both_stores!(every_command_in_every_state_answers_as_documented);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A well-formed id no conversation has.
    Unknown,
    /// Queued, no agent ready, so not offered.
    Waiting,
    /// Offered to bob; alice and carol are signed in, not ready.
    Offered,
    /// Alice accepted; bob and carol are not in it.
    Active,
    /// Active with alice, who invited carol; carol holds the invitation.
    InvitePending,
    /// Alice's chat, ended by the customer.
    Ended,
    /// The customer left before anyone accepted.
    Abandoned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    Alice,
    Bob,
    Carol,
    Customer,
}

#[derive(Debug, Clone, Copy)]
enum Cmd {
    Accept,
    Reject,
    Send,
    Typing,
    OfferChoices,
    Invite,
    CancelInvite,
    Leave,
    End,
    CSend,
    CTyping,
    Choose,
    Dismiss,
    CEnd,
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// This error code, and nothing changed.
    Err(&'static str),
    /// No answer at all (typing), and nothing changed.
    Silent,
    /// This frame type (or `event:<kind>`) arrives: the command was legal.
    Ok(&'static str),
    /// This frame type arrives again, and nothing changed: an idempotent
    /// repeat (a second `accept` by the agent in the chat).
    Again(&'static str),
}

use Actor::{Alice, Bob, Carol, Customer};
use Cmd::*;
use Expect::{Again as A, Err as E, Ok as K, Silent as S};
use State::*;

/// Within one state the rows run in order on one chat, so rows that change
/// the chat come after the refusals they would disturb.
const MATRIX: &[(State, Actor, Cmd, Expect)] = &[
    (Unknown, Alice, Accept, E("not_your_offer")),
    (Unknown, Alice, Reject, E("not_your_offer")),
    (Unknown, Alice, Send, E("not_found")),
    (Unknown, Alice, Typing, S),
    (Unknown, Alice, OfferChoices, E("not_found")),
    (Unknown, Alice, Invite, E("not_found")),
    (Unknown, Alice, CancelInvite, E("no_invite_pending")),
    (Unknown, Alice, Leave, E("not_found")),
    (Unknown, Alice, End, E("not_found")),
    // Waiting: nobody holds an offer, nobody is in the chat.
    (Waiting, Alice, Accept, E("not_your_offer")),
    (Waiting, Alice, Reject, E("not_your_offer")),
    (Waiting, Alice, Send, E("not_participant")),
    (Waiting, Alice, Typing, S),
    (Waiting, Alice, OfferChoices, E("not_participant")),
    (Waiting, Alice, Invite, E("not_participant")),
    (Waiting, Alice, CancelInvite, E("no_invite_pending")),
    (Waiting, Alice, Leave, E("not_participant")),
    (Waiting, Alice, End, E("not_participant")),
    (Waiting, Customer, Choose, E("unknown_offer")),
    (Waiting, Customer, Dismiss, E("unknown_offer")),
    (Waiting, Customer, CTyping, S),
    (Waiting, Customer, CSend, K("ack")),
    // Offered to bob: alice is another agent, bob holds the offer.
    (Offered, Alice, Accept, E("not_your_offer")),
    (Offered, Alice, Reject, E("not_your_offer")),
    (Offered, Alice, Send, E("not_participant")),
    (Offered, Alice, OfferChoices, E("not_participant")),
    (Offered, Alice, Invite, E("not_participant")),
    (Offered, Alice, Leave, E("not_participant")),
    (Offered, Alice, End, E("not_participant")),
    (Offered, Bob, Send, E("not_participant")),
    (Offered, Bob, Typing, S),
    (Offered, Bob, OfferChoices, E("not_participant")),
    (Offered, Bob, Invite, E("not_participant")),
    (Offered, Bob, CancelInvite, E("no_invite_pending")),
    (Offered, Bob, Leave, E("not_participant")),
    (Offered, Bob, End, E("not_participant")),
    (Offered, Customer, Choose, E("unknown_offer")),
    (Offered, Customer, CSend, K("ack")),
    (Offered, Bob, Accept, K("chat_accepted")),
    // A repeated accept is idempotent while the agent is in the chat.
    (Offered, Bob, Accept, A("chat_accepted")),
    (Offered, Bob, Reject, E("already_accepted")),
    (Offered, Alice, Accept, E("not_your_offer")),
    // Active with alice; bob is an agent not in the chat, never offered it.
    (Active, Bob, Accept, E("not_your_offer")),
    (Active, Bob, Reject, E("not_your_offer")),
    (Active, Bob, Send, E("not_participant")),
    (Active, Bob, Typing, S),
    (Active, Bob, OfferChoices, E("not_participant")),
    (Active, Bob, Invite, E("not_participant")),
    (Active, Bob, CancelInvite, E("no_invite_pending")),
    (Active, Bob, Leave, E("not_participant")),
    (Active, Bob, End, E("not_participant")),
    (Active, Alice, Accept, A("chat_accepted")),
    (Active, Alice, Reject, E("already_accepted")),
    (Active, Alice, CancelInvite, E("no_invite_pending")),
    (Active, Alice, Leave, E("last_agent")),
    (Active, Customer, Choose, E("unknown_offer")),
    (Active, Customer, Dismiss, E("unknown_offer")),
    (Active, Alice, Typing, S),
    (Active, Customer, CTyping, S),
    (Active, Alice, Send, K("ack")),
    (Active, Alice, OfferChoices, K("ack")),
    (Active, Customer, CSend, K("ack")),
    (Active, Alice, End, K("event:ended")),
    // Invitation pending: alice invited carol.
    (InvitePending, Alice, Invite, E("invite_pending")),
    (InvitePending, Bob, Invite, E("not_participant")),
    (InvitePending, Bob, CancelInvite, E("no_invite_pending")),
    (InvitePending, Bob, Accept, E("not_your_offer")),
    (InvitePending, Carol, Send, E("not_participant")),
    (InvitePending, Carol, OfferChoices, E("not_participant")),
    (InvitePending, Carol, CancelInvite, E("no_invite_pending")),
    (InvitePending, Carol, Leave, E("not_participant")),
    (InvitePending, Carol, End, E("not_participant")),
    (InvitePending, Alice, Send, K("ack")),
    (InvitePending, Carol, Accept, K("chat_accepted")),
    (InvitePending, Alice, CancelInvite, E("no_invite_pending")),
    (InvitePending, Carol, Accept, A("chat_accepted")),
    (InvitePending, Alice, Leave, K("event:left")),
    (InvitePending, Alice, Send, E("not_participant")),
    // Ended by the customer.
    (Ended, Alice, Accept, E("already_accepted")),
    (Ended, Alice, Reject, E("already_accepted")),
    (Ended, Alice, Send, E("conversation_ended")),
    (Ended, Alice, Typing, S),
    (Ended, Alice, OfferChoices, E("conversation_ended")),
    (Ended, Alice, Invite, E("conversation_ended")),
    (Ended, Alice, CancelInvite, E("no_invite_pending")),
    (Ended, Alice, Leave, E("conversation_ended")),
    (Ended, Alice, End, E("conversation_ended")),
    (Ended, Bob, Accept, E("not_your_offer")),
    (Ended, Bob, Send, E("conversation_ended")),
    (Ended, Bob, End, E("conversation_ended")),
    (Ended, Customer, CSend, E("conversation_ended")),
    (Ended, Customer, CTyping, S),
    (Ended, Customer, Choose, E("conversation_ended")),
    (Ended, Customer, Dismiss, E("conversation_ended")),
    (Ended, Customer, CEnd, E("conversation_ended")),
    // Abandoned before anyone answered.
    (Abandoned, Alice, Accept, E("not_your_offer")),
    (Abandoned, Alice, Send, E("conversation_ended")),
    (Abandoned, Alice, End, E("conversation_ended")),
    (Abandoned, Customer, CSend, E("conversation_ended")),
    (Abandoned, Customer, CEnd, E("conversation_ended")),
];

const STATES: &[State] = &[
    Unknown,
    Waiting,
    Offered,
    Active,
    InvitePending,
    Ended,
    Abandoned,
];

/// One state built on a fresh server.
struct Scene {
    app: TestApp,
    sam: String,
    id: String,
    alice: Ws,
    bob: Ws,
    carol: Ws,
    customer: Option<Ws>,
    bob_id: i64,
    carol_id: i64,
    /// Unique `client_msg_id`s.
    counter: u32,
}

async fn set_ready(ws: &mut Ws) {
    ws.send(json!({"type": "set_status", "status": "ready"}))
        .await;
    ws.expect("status").await;
}

async fn build(backend: Backend, state: State) -> Scene {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let bob_id = app.add_agent("bob", 3).await.0;
    let carol_id = app.add_agent("carol", 3).await.0;
    app.add_supervisor("sam").await;
    let sam = app.login("sam").await;
    let mut alice = app.agent("alice").await;
    let mut bob = app.agent("bob").await;
    let mut carol = app.agent("carol").await;
    let mut id = uuid::Uuid::new_v4().to_string();
    let mut customer = None;
    if state != Unknown {
        match state {
            Offered => set_ready(&mut bob).await,
            Active | InvitePending | Ended => set_ready(&mut alice).await,
            _ => {}
        }
        let (new_id, _token, mut ws) = app.new_customer("Carla").await;
        id = new_id;
        match state {
            Offered => {
                bob.expect("chat_offered").await;
            }
            Active | InvitePending | Ended => {
                accept(&mut alice, &id).await;
                ws.expect_event("joined").await;
            }
            _ => {}
        }
        match state {
            InvitePending => {
                alice
                    .send(json!({"type": "invite", "conversation_id": id, "agent_id": carol_id}))
                    .await;
                carol.expect("chat_offered").await;
                alice.expect_event("invited").await;
            }
            Ended | Abandoned => {
                ws.send(json!({"type": "end"})).await;
                ws.expect_event("ended").await;
                if state == Ended {
                    alice.expect_event("ended").await;
                }
            }
            _ => {}
        }
        ws.until_pong().await;
        customer = Some(ws);
    }
    for ws in [&mut alice, &mut bob, &mut carol] {
        ws.until_pong().await;
    }
    Scene {
        app,
        sam,
        id,
        alice,
        bob,
        carol,
        customer,
        bob_id,
        carol_id,
        counter: 0,
    }
}

impl Scene {
    /// The organisation log: the summary (state, agents) and the events.
    async fn log(&self) -> Option<(Value, usize)> {
        let response = self
            .app
            .http
            .get(self.app.url(&format!("/api/conversations/{}/log", self.id)))
            .header("cookie", &self.sam)
            .send()
            .await
            .expect("log request");
        if response.status() == 404 {
            return None;
        }
        assert_eq!(response.status(), 200);
        let log: Value = response.json().await.expect("json");
        let events = log["events"].as_array().expect("events").len();
        Some((log["conversation"].clone(), events))
    }

    fn frame(&mut self, actor: Actor, cmd: Cmd) -> Value {
        self.counter += 1;
        let msg = format!("m-{}", self.counter);
        let id = self.id.clone();
        let target = if actor == Carol {
            self.bob_id
        } else {
            self.carol_id
        };
        let offer = uuid::Uuid::new_v4().to_string();
        match cmd {
            Accept => json!({"type": "accept", "conversation_id": id}),
            Reject => json!({"type": "reject", "conversation_id": id}),
            Send => {
                json!({"type": "send", "conversation_id": id, "client_msg_id": msg, "text": "hello"})
            }
            Typing => json!({"type": "typing", "conversation_id": id, "typing": true}),
            OfferChoices => json!({"type": "offer_choices", "conversation_id": id,
                "client_msg_id": msg, "prompt": "Which?", "options": ["A", "B"]}),
            Invite => json!({"type": "invite", "conversation_id": id, "agent_id": target}),
            CancelInvite => json!({"type": "cancel_invite", "conversation_id": id}),
            Leave => json!({"type": "leave", "conversation_id": id}),
            End => json!({"type": "end", "conversation_id": id}),
            CSend => json!({"type": "send", "client_msg_id": msg, "text": "hi"}),
            CTyping => json!({"type": "typing", "typing": true}),
            Choose => {
                json!({"type": "choose", "client_msg_id": msg, "offer_id": offer, "option_id": 1})
            }
            Dismiss => json!({"type": "dismiss_choices", "client_msg_id": msg, "offer_id": offer}),
            CEnd => json!({"type": "end"}),
        }
    }

    fn socket(&mut self, actor: Actor) -> &mut Ws {
        match actor {
            Alice => &mut self.alice,
            Bob => &mut self.bob,
            Carol => &mut self.carol,
            Customer => self.customer.as_mut().expect("a customer in this state"),
        }
    }
}

async fn every_command_in_every_state_answers_as_documented(backend: Backend) {
    for &state in STATES {
        let mut scene = build(backend, state).await;
        for &(row_state, actor, cmd, expect) in MATRIX.iter().filter(|r| r.0 == state) {
            let row = format!("{row_state:?} {actor:?} {cmd:?} -> {expect:?}");
            let before = scene.log().await;
            let frame = scene.frame(actor, cmd);
            let ws = scene.socket(actor);
            ws.send(frame).await;
            match expect {
                E(code) => {
                    let frames = ws.until_pong().await;
                    let answers: Vec<&Value> = frames
                        .iter()
                        .filter(|f| {
                            matches!(
                                f["type"].as_str(),
                                Some("error" | "ack" | "chat_accepted" | "chat_rejected")
                            )
                        })
                        .collect();
                    assert_eq!(answers.len(), 1, "{row}: {frames:?}");
                    assert_eq!(answers[0]["type"], "error", "{row}: {frames:?}");
                    assert_eq!(answers[0]["code"], code, "{row}: {frames:?}");
                    assert_eq!(scene.log().await, before, "{row}: the log changed");
                }
                S => {
                    let frames = ws.until_pong().await;
                    assert!(
                        frames.iter().all(|f| f["type"] != "error"),
                        "{row}: {frames:?}"
                    );
                    assert_eq!(scene.log().await, before, "{row}: the log changed");
                }
                A(kind) => {
                    ws.expect(kind).await;
                    ws.until_pong().await;
                    assert_eq!(scene.log().await, before, "{row}: the log changed");
                }
                K(kind) => {
                    match kind.strip_prefix("event:") {
                        Some(event) => ws.expect_event(event).await,
                        None => ws.expect(kind).await,
                    };
                    ws.until_pong().await;
                    assert_ne!(scene.log().await, before, "{row}: nothing was stored");
                }
            }
        }
        scene.app.shutdown().await;
    }
}
