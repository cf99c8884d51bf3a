//! First start: an empty database gets a supervisor (password printed once)
//! and, in demo mode, a queue, a profile and two agents ready to chat.

use crate::accounts::{create_user, UserSpec};
use crate::domain::account::{Media, Role};
use crate::store::DynStore;

/// Name of the demo queue the demo page's widget uses.
pub const DEMO_QUEUE: &str = "Support";

pub async fn first_start(store: &DynStore, demo: bool) -> anyhow::Result<()> {
    if store.count_users().await? > 0 {
        return Ok(());
    }
    let admin = create_user(
        store,
        UserSpec {
            username: "admin".into(),
            display_name: Some("Supervisor".into()),
            role: Role::Supervisor,
            capacity: None,
            password: None,
        },
    )
    .await?;
    println!(
        "Created supervisor 'admin' with password: {}",
        admin.generated_password.unwrap_or_default()
    );
    println!("(shown once; change it or create your own users with `switchboard user add`)");
    if !demo {
        return Ok(());
    }
    let queue = store.create_queue(DEMO_QUEUE, 30, 0).await?;
    let profile = store
        .create_profile("Support chat", &[Media::Chat], &[queue])
        .await?;
    store.grant_profile(admin.user.id, profile).await?;
    for (username, name) in [("alice", "Alice"), ("bob", "Bob")] {
        let agent = create_user(
            store,
            UserSpec {
                username: username.into(),
                display_name: Some(name.into()),
                role: Role::Agent,
                capacity: None,
                password: None,
            },
        )
        .await?;
        store.grant_profile(agent.user.id, profile).await?;
        println!(
            "Demo agent '{username}' with password: {}",
            agent.generated_password.unwrap_or_default()
        );
    }
    println!("Demo queue '{DEMO_QUEUE}' and profile 'Support chat' created; customer page: /demo.html, agent console: /agent.html");
    Ok(())
}
