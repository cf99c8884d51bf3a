//! The default blob store: one file per attachment in a directory on local
//! disk, named by its random id, with uploads staged in `tmp/` beside them.

use super::{BlobReader, BlobStore};
use crate::domain::ids::AttachmentId;
use async_trait::async_trait;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Staged files older than this are left over from a crash, not in flight.
const STALE_STAGED: Duration = Duration::from_secs(3600);

/// Attachment files under one directory (`attachments.dir`).
#[derive(Debug, Clone)]
pub struct LocalDiskStore {
    root: PathBuf,
    staging: PathBuf,
}

impl LocalDiskStore {
    /// Opens the store at `root`, creating it if missing, and removes
    /// staged uploads a crash left behind.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        // Blob names are UUIDs, so "tmp" can never be one of them.
        let staging = root.join("tmp");
        std::fs::create_dir_all(&staging)?;
        let store = Self { root, staging };
        store.remove_stale_staged()?;
        Ok(store)
    }

    fn remove_stale_staged(&self) -> io::Result<()> {
        let now = SystemTime::now();
        for entry in std::fs::read_dir(&self.staging)? {
            let entry = entry?;
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok());
            if age.is_some_and(|age| age > STALE_STAGED) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    fn path(&self, id: &AttachmentId) -> PathBuf {
        self.root.join(id.as_str())
    }
}

#[async_trait]
impl BlobStore for LocalDiskStore {
    fn staging_dir(&self) -> &Path {
        &self.staging
    }

    async fn put(&self, id: &AttachmentId, temp: &Path) -> io::Result<()> {
        // Same file system: an atomic rename, so a file is whole or absent.
        tokio::fs::rename(temp, self.path(id)).await?;
        sync_dir(&self.root).await
    }

    async fn open(&self, id: &AttachmentId) -> io::Result<BlobReader> {
        let file = tokio::fs::File::open(self.path(id)).await?;
        Ok(Box::pin(file))
    }

    async fn delete(&self, id: &AttachmentId) -> io::Result<()> {
        match tokio::fs::remove_file(self.path(id)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Makes a rename into `dir` durable (the file's data was synced before).
async fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
            .await
            .map_err(io::Error::other)?
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn temp_root() -> PathBuf {
        std::env::temp_dir().join(format!("sb_blobs_{}", uuid::Uuid::new_v4().simple()))
    }

    #[tokio::test]
    async fn put_open_delete_round_trip() {
        let root = temp_root();
        let store = LocalDiskStore::open(&root).unwrap();
        let temp = store.staging_dir().join("upload");
        std::fs::write(&temp, b"hello").unwrap();
        let id = AttachmentId::random();
        store.put(&id, &temp).await.unwrap();
        assert!(!temp.exists(), "moved, not copied");
        let mut content = String::new();
        store
            .open(&id)
            .await
            .unwrap()
            .read_to_string(&mut content)
            .await
            .unwrap();
        assert_eq!(content, "hello");
        store.delete(&id).await.unwrap();
        store.delete(&id).await.unwrap();
        let missing = store.open(&id).await.err().map(|e| e.kind());
        assert_eq!(missing, Some(io::ErrorKind::NotFound));
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn fresh_staged_files_survive_a_reopen() {
        let root = temp_root();
        let store = LocalDiskStore::open(&root).unwrap();
        let in_flight = store.staging_dir().join("upload-in-flight");
        std::fs::write(&in_flight, b"x").unwrap();
        LocalDiskStore::open(&root).unwrap();
        assert!(in_flight.exists(), "only stale ones are removed");
        std::fs::remove_dir_all(root).unwrap();
    }
}
