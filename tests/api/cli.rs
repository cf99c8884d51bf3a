//! The command line: `user add` with a password from stdin or a generated
//! one printed once, and first start creating a supervisor.

use crate::helpers::{fresh_database, Backend};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

async fn switchboard(url: &str, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--root")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env("SWITCHBOARD__DATABASE__URL", url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run switchboard");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write stdin");
    }
    drop(input);
    let output = child.wait_with_output().await.expect("output");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test]
async fn user_add_with_stdin_or_generated_password() {
    let url = fresh_database(Backend::Sqlite).await;
    let (ok, out) = switchboard(
        &url,
        &["queue", "add", "Billing", "--offer-timeout", "20"],
        None,
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = switchboard(
        &url,
        &["profile", "add", "Billing chat", "--queue", "Billing"],
        None,
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = switchboard(
        &url,
        &[
            "user",
            "add",
            "carol",
            "--name",
            "Carol",
            "--profile",
            "Billing chat",
            "--password-stdin",
        ],
        Some("a-long-password\n"),
    )
    .await;
    assert!(ok, "{out}");
    assert!(
        !out.contains("a-long-password"),
        "a given password is never echoed"
    );
    let (ok, out) = switchboard(&url, &["user", "add", "dave", "--role", "supervisor"], None).await;
    assert!(ok, "{out}");
    let generated = out
        .lines()
        .find_map(|l| l.strip_prefix("Password (shown once): "))
        .expect("generated password printed");
    assert!(generated.len() >= 20);
    let (ok, _) = switchboard(&url, &["user", "add", "carol"], None).await;
    assert!(!ok, "duplicate username refused");

    let store = switchboard::store::connect(&url, 1).await.unwrap();
    let (carol, hash) = store.user_credentials("carol").await.unwrap().unwrap();
    assert!(switchboard::auth::verify_password("a-long-password", &hash));
    assert_eq!(
        store.profiles_of_user(carol.id).await.unwrap()[0].name,
        "Billing chat"
    );
    let (dave, hash) = store.user_credentials("dave").await.unwrap().unwrap();
    assert_eq!(dave.role.as_str(), "supervisor");
    assert!(switchboard::auth::verify_password(generated, &hash));
    assert_eq!(store.list_queues().await.unwrap()[0].offer_timeout_secs, 20);
}

#[tokio::test]
async fn first_start_creates_a_supervisor_and_demo_data() {
    let url = fresh_database(Backend::Sqlite).await;
    let store = switchboard::store::connect(&url, 1).await.unwrap();
    switchboard::seed::first_start(&store, true).await.unwrap();
    let users = store.list_users().await.unwrap();
    let names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["admin", "alice", "bob"]);
    assert_eq!(store.list_queues().await.unwrap()[0].name, "Support");
    assert_eq!(
        store.profiles_of_user(users[1].id).await.unwrap()[0].name,
        "Support chat"
    );
    // A second start changes nothing.
    switchboard::seed::first_start(&store, true).await.unwrap();
    assert_eq!(store.list_users().await.unwrap().len(), 3);
}
