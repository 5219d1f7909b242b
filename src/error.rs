//! The library error: one enum per stage, joined here.

/// Any qualscribe library error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An atomic write failed.
    #[error(transparent)]
    Write(#[from] crate::atomic::WriteError),
}
