//! Command line: `switchboard [serve] [--demo]`, `switchboard user add …`,
//! `switchboard queue add …`, `switchboard profile add …`.

use crate::accounts::{create_user, UserSpec};
use crate::config::Settings;
use crate::domain::account::{Media, Role};
use crate::startup::Application;
use crate::store::{self, DynStore};
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::BufRead;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "switchboard", version, about = "Webchat contact-centre server")]
struct Cli {
    /// Directory holding `config/` (and, by default, `static/`).
    #[arg(long, global = true, default_value = ".")]
    root: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
    /// With no subcommand: seed demo data on an empty database.
    #[arg(long)]
    demo: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve {
        /// Seed a demo queue, profile and two agents on an empty database.
        #[arg(long)]
        demo: bool,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage queues.
    Queue {
        #[command(subcommand)]
        action: QueueAction,
    },
    /// Manage profiles.
    Profile {
        #[command(subcommand)]
        action: ProfileAction,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Agent,
    Supervisor,
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a user. The password is read from stdin with
    /// --password-stdin, otherwise generated and printed once.
    Add {
        username: String,
        #[arg(long, value_enum, default_value = "agent")]
        role: RoleArg,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        capacity: Option<u32>,
        /// Profiles (by name) the user may log in with.
        #[arg(long = "profile")]
        profiles: Vec<String>,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum QueueAction {
    /// Create a queue.
    Add {
        name: String,
        #[arg(long, default_value_t = 30)]
        offer_timeout: u32,
        #[arg(long, default_value_t = 0)]
        priority: i32,
    },
}

#[derive(Subcommand)]
enum ProfileAction {
    /// Create a profile holding queues (by name) and media type chat.
    Add {
        name: String,
        #[arg(long = "queue", required = true)]
        queues: Vec<String>,
        /// Create it without the chat media type (it then gets no chats).
        #[arg(long)]
        no_chat: bool,
    },
}

/// Entry point of the binary.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "switchboard=info,tower_http=warn".into()),
        )
        .init();
    let mut settings = Settings::load(&cli.root)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            None => {
                settings.demo.enabled |= cli.demo;
                serve(settings).await
            }
            Some(Command::Serve { demo }) => {
                settings.demo.enabled |= demo || cli.demo;
                serve(settings).await
            }
            Some(Command::User { action }) => user(settings, action).await,
            Some(Command::Queue { action }) => queue(settings, action).await,
            Some(Command::Profile { action }) => profile(settings, action).await,
        }
    })
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let listener = crate::startup::bind_listener(&settings.server.bind)
        .await
        .with_context(|| format!("cannot listen on {}", settings.server.bind))?;
    let app = Application::build(settings, listener).await?;
    let addr = app.local_addr()?;
    println!("Switchboard listening on http://{addr}");
    app.run(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn open_store(settings: &Settings) -> anyhow::Result<DynStore> {
    store::connect(&settings.database.url, 2).await
}

async fn user(settings: Settings, action: UserAction) -> anyhow::Result<()> {
    let UserAction::Add {
        username,
        role,
        name,
        capacity,
        profiles,
        password_stdin,
    } = action;
    let store = open_store(&settings).await?;
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Some(line.trim_end_matches(['\r', '\n']).to_owned())
    } else {
        None
    };
    let all_profiles = store.list_profiles().await?;
    let mut grant = Vec::new();
    for wanted in &profiles {
        let profile = all_profiles
            .iter()
            .find(|p| &p.name == wanted)
            .ok_or_else(|| anyhow::anyhow!("no profile named {wanted:?}"))?;
        grant.push(profile.id);
    }
    let role = match role {
        RoleArg::Agent => Role::Agent,
        RoleArg::Supervisor => Role::Supervisor,
    };
    let created = create_user(
        &store,
        UserSpec {
            username,
            display_name: name,
            role,
            capacity,
            password,
        },
    )
    .await?;
    for profile in grant {
        store.grant_profile(created.user.id, profile).await?;
    }
    println!(
        "Created {} '{}' (id {})",
        role.as_str(),
        created.user.username,
        created.user.id
    );
    if let Some(password) = created.generated_password {
        println!("Password (shown once): {password}");
    }
    Ok(())
}

async fn queue(settings: Settings, action: QueueAction) -> anyhow::Result<()> {
    let QueueAction::Add {
        name,
        offer_timeout,
        priority,
    } = action;
    let store = open_store(&settings).await?;
    let id = store.create_queue(&name, offer_timeout, priority).await?;
    println!("Created queue '{name}' (id {id})");
    Ok(())
}

async fn profile(settings: Settings, action: ProfileAction) -> anyhow::Result<()> {
    let ProfileAction::Add {
        name,
        queues,
        no_chat,
    } = action;
    let store = open_store(&settings).await?;
    let all = store.list_queues().await?;
    let mut ids = Vec::new();
    for wanted in &queues {
        let queue = all
            .iter()
            .find(|q| &q.name == wanted)
            .ok_or_else(|| anyhow::anyhow!("no queue named {wanted:?}"))?;
        ids.push(queue.id);
    }
    let media: Vec<Media> = if no_chat { vec![] } else { vec![Media::Chat] };
    let id = store.create_profile(&name, &media, &ids).await?;
    println!("Created profile '{name}' (id {id})");
    Ok(())
}
