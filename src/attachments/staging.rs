//! One upload on its way in: written chunk by chunk to a temporary file in
//! the blob store's staging directory while [`ContentCheck`] checks it and
//! SHA-256 hashes it. Nothing is held in memory but the sniffed head, and a
//! temporary file is removed when dropped, so a refused file, an error or a
//! client that goes away mid-upload leave nothing behind.

use crate::domain::attachment::{AttachmentError, ContentCheck, FileKind};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use tokio::fs::File;
use tokio::io::{AsyncWriteExt, BufWriter};

/// Write buffer: fewer, larger writes than the network's chunks.
const WRITE_BUFFER: usize = 64 * 1024;

/// Why an upload could not be staged.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The file breaks the attachment rules.
    #[error(transparent)]
    Refused(#[from] AttachmentError),
    /// Writing it failed (e.g. the disk is full).
    #[error("writing the upload failed: {0}")]
    Io(#[from] io::Error),
}

/// A temporary file, removed when dropped unless it was moved away.
#[derive(Debug)]
struct TempFile {
    path: PathBuf,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // After a successful `BlobStore::put` the file is gone; that is fine.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A file being received.
pub struct Staging {
    temp: TempFile,
    file: BufWriter<File>,
    check: ContentCheck,
    hash: Sha256,
    name: String,
}

/// A received file that passed every check, still in the staging directory.
#[derive(Debug)]
pub struct StagedFile {
    temp: TempFile,
    /// The cleaned display name.
    pub name: String,
    pub kind: FileKind,
    pub size: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
}

impl StagedFile {
    /// Where the file is, for `BlobStore::put`.
    pub fn path(&self) -> &Path {
        &self.temp.path
    }
}

impl Staging {
    /// Starts a temporary file in `dir` for an upload shown as `name`.
    pub async fn create(dir: &Path, name: String) -> Result<Self, StageError> {
        let path = dir.join(format!("upload-{}", uuid::Uuid::new_v4().simple()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok(Self {
            temp: TempFile { path },
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            check: ContentCheck::new(),
            hash: Sha256::new(),
            name,
        })
    }

    /// Takes the next chunk. A refusal is final: stop reading the upload.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StageError> {
        // Checked before it is written: a chunk past the limit never lands.
        self.check.push(chunk)?;
        self.hash.update(chunk);
        self.file.write_all(chunk).await?;
        Ok(())
    }

    /// The file is complete: checks it as a whole and makes it durable.
    pub async fn finish(mut self) -> Result<StagedFile, StageError> {
        let (kind, size) = self.check.finish()?;
        self.file.flush().await?;
        self.file.get_mut().sync_all().await?;
        let mut sha256 = String::with_capacity(64);
        for byte in self.hash.finalize() {
            let _ = write!(sha256, "{byte:02x}");
        }
        Ok(StagedFile {
            temp: self.temp,
            name: self.name,
            kind,
            size,
            sha256,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sb_staging_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn files_in(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[tokio::test]
    async fn a_good_file_is_staged_and_hashed() {
        let dir = dir();
        let mut staging = Staging::create(&dir, "a.txt".into()).await.unwrap();
        staging.write(b"hello ").await.unwrap();
        staging.write(b"world").await.unwrap();
        let staged = staging.finish().await.unwrap();
        assert_eq!((staged.kind, staged.size), (FileKind::Text, 11));
        assert_eq!(
            staged.sha256,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(std::fs::read(staged.path()).unwrap(), b"hello world");
        drop(staged);
        assert_eq!(files_in(&dir), 0, "dropped means removed");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_refused_or_abandoned_file_leaves_nothing() {
        let dir = dir();
        let mut staging = Staging::create(&dir, "x.png".into()).await.unwrap();
        let refused = match staging.write(b"\x7fELF\x02\x01\x01\x00").await {
            Ok(()) => staging.finish().await.map(|_| ()),
            Err(e) => {
                drop(staging);
                Err(e)
            }
        };
        assert!(matches!(
            refused,
            Err(StageError::Refused(AttachmentError::UnsupportedType))
        ));
        assert_eq!(files_in(&dir), 0);
        let mut abandoned = Staging::create(&dir, "y.txt".into()).await.unwrap();
        abandoned.write(b"half of it").await.unwrap();
        drop(abandoned);
        assert_eq!(files_in(&dir), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
