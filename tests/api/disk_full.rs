//! Disk full while storing an attachment: the attachment directory is a
//! real 1 MiB tmpfs. An upload bigger than the free space gets 507
//! `insufficient_storage`, leaves no file and no row behind, and the chat
//! goes on, files that fit included. Mounting needs root (CI runs as root);
//! elsewhere the test says why it skipped.

use crate::both_stores;
use crate::helpers::{accept, fresh_database, settings, Backend, TestApp};
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use switchboard::domain::ids::ConversationId;

both_stores!(disk_full_while_storing_an_attachment);

const TMPFS_SIZE: &str = "1m";

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a small tmpfs, or says why it cannot.
    fn mount() -> Result<Tmpfs, String> {
        // The effective user: `id -u` prints 0 for root.
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| format!("cannot run `id -u`: {e}"))?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err("mounting a tmpfs needs root".into());
        }
        let path = std::env::temp_dir().join(format!("sb_full_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_SIZE}"), "tmpfs"])
            .arg(&path)
            .status()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !status.success() {
            let _ = std::fs::remove_dir(&path);
            return Err(format!("mount -t tmpfs failed ({status})"));
        }
        Ok(Tmpfs { path })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Every file under `dir`, however deep.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found.sort();
    found
}

async fn upload(app: &TestApp, id: &str, token: &str, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    let part = Part::bytes(bytes).file_name(name.to_owned());
    let response = app
        .http
        .post(app.url(&format!("/api/conversations/{id}/attachments")))
        .bearer_auth(token)
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .expect("upload");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn disk_full_while_storing_an_attachment(backend: Backend) {
    let tmpfs = match Tmpfs::mount() {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            println!("SKIPPED disk_full_while_storing_an_attachment: {reason}");
            return;
        }
    };
    // Arrange: a chat whose attachments live on the 1 MiB tmpfs.
    let url = fresh_database(backend).await;
    let mut settings = settings(&url);
    settings.attachments.dir = tmpfs.path.display().to_string();
    let app = TestApp::spawn_with(settings).await;
    app.add_agent("alice", 1).await;
    let mut alice = app.ready_agent("alice").await;
    let (id, token, mut carla) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;

    // Act: an upload twice the size of the whole disk.
    let (status, body) = upload(&app, &id, &token, "big.txt", vec![b'a'; 2 * 1024 * 1024]).await;

    // Assert: a clear, typed refusal; no half-written file, no row.
    assert_eq!(
        (status, body["error"].as_str()),
        (507, Some("insufficient_storage")),
        "{body}"
    );
    assert_eq!(
        files_under(&tmpfs.path),
        Vec::<PathBuf>::new(),
        "a partial file was left"
    );
    let rows = app
        .store
        .conversation_attachments(&ConversationId(id.clone()))
        .await
        .expect("attachments");
    assert!(rows.is_empty(), "a refused upload was recorded: {rows:?}");

    // The chat goes on: text, and a file that fits, on both sides.
    let seq = carla.say(None, "c1", "did my file arrive?").await;
    assert!(seq >= 1);
    assert_eq!(
        alice.expect_event("message").await["text"],
        "did my file arrive?"
    );
    let (status, body) = upload(
        &app,
        &id,
        &token,
        "small.txt",
        b"fits on the disk\n".to_vec(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let file = body["attachments"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    carla
        .send(json!({"type": "send", "client_msg_id": "c2", "text": "here it is", "attachments": [file]}))
        .await;
    carla.expect("ack").await;
    let event = loop {
        let event = alice.expect_event("message").await;
        if event["client_msg_id"] == "c2" {
            break event;
        }
    };
    assert_eq!(event["attachments"][0]["name"], "small.txt");
    assert_eq!(
        files_under(&tmpfs.path).len(),
        1,
        "only the small file is kept"
    );
    alice
        .send(
            json!({"type": "send", "conversation_id": id, "client_msg_id": "a1", "text": "got it"}),
        )
        .await;
    alice.expect("ack").await;
    drop(app);
}
