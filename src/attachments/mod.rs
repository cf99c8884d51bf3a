//! Where attachment files live: one [`BlobStore`] interface with a
//! local-disk default ([`LocalDiskStore`]), and [`staging`], which writes an
//! upload to a temporary file while it is checked. The rules of what may be
//! attached are in `domain::attachment`; the metadata is in the `Store`.

mod local;
pub mod staging;

pub use local::LocalDiskStore;

use crate::domain::ids::AttachmentId;
use async_trait::async_trait;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::AsyncRead;

/// A stored file, open for reading.
pub type BlobReader = Pin<Box<dyn AsyncRead + Send>>;

/// A shared blob store handle.
pub type DynBlobStore = Arc<dyn BlobStore>;

/// Keeps attachment files by id. Ids are random UUIDs checked before they
/// get here, so an implementation may use them as file or object names.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Where uploads are written while they stream in. On the store's own
    /// file system, so that [`put`](Self::put) can move a file, not copy it.
    fn staging_dir(&self) -> &Path;
    /// Keeps the finished temporary file `temp` under `id`; `temp` is gone
    /// afterwards (or left for its owner to remove).
    async fn put(&self, id: &AttachmentId, temp: &Path) -> io::Result<()>;
    /// Opens a stored file; `NotFound` if there is none.
    async fn open(&self, id: &AttachmentId) -> io::Result<BlobReader>;
    /// Deletes a stored file. Deleting a missing file is not an error.
    async fn delete(&self, id: &AttachmentId) -> io::Result<()>;
}
