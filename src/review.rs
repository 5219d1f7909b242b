//! Human review: a project store (SQLite) of transcripts, passages, themes and codes; review
//! actions with an audit trail and undo; exports that reflect the decisions; and a local web
//! page to do it (`qualscribe review`).
//!
//! ```text
//! run/batch output ─ Project::import_output ─▶ review.qualscribe.sqlite
//!                  ─ Project::apply(Action) / undo ─▶ (audit trail)
//!                  ─ export::export_reviewed ─▶ reviewed/codes.md .csv .qdc .qdpx transcripts/
//! ```

pub mod export;
mod reconcile;
pub mod server;
pub mod store;
pub mod suggest;
pub mod view;

use std::path::PathBuf;

pub use export::export_reviewed;
pub use server::{Lang, ReviewServer, ServeOptions};
pub use store::{Action, AuditEntry, ImportSummary, PROJECT_DB, Project};

/// Why a review step failed. Each message is one line that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The database could not be opened or written.
    #[error(
        "project database {path}: {source}; check the disk has space and the folder is writable"
    )]
    Db {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// Another process has the project open.
    #[error(
        "{path} is open in another `qualscribe review`; close that one (Ctrl-C) or use its page, then try again"
    )]
    Busy {
        /// The project database.
        path: PathBuf,
    },
    /// The folder holds no transcripts.
    #[error("{dir} holds no *.transcript.json: give the -o folder of `qualscribe run` or `batch`")]
    NothingToImport {
        /// The folder.
        dir: PathBuf,
    },
    /// An action names something that does not exist.
    #[error("no {what} {id} in this project")]
    NoSuch {
        /// Code, speaker, segment, …
        what: &'static str,
        /// The id given.
        id: String,
    },
    /// A name or label was empty.
    #[error("the {what} cannot be empty")]
    Empty {
        /// What was empty.
        what: &'static str,
    },
    /// The action would break one of the store's rules (a code merged into itself or into a
    /// merged code, a passage in two codes, an empty split, …); nothing was changed.
    #[error("{reason}")]
    Refused {
        /// What is wrong and what to do instead.
        reason: String,
    },
    /// Stored data could not be read back.
    #[error("the project database holds a damaged {what}; re-import the output folder")]
    Corrupt {
        /// What.
        what: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The review page's server could not start.
    #[error("review page: {message}")]
    Serve {
        /// What went wrong.
        message: String,
    },
    /// Reading an artifact or writing an export failed.
    #[error(transparent)]
    Artifact(Box<crate::Error>),
}

impl From<crate::Error> for ReviewError {
    fn from(e: crate::Error) -> Self {
        ReviewError::Artifact(Box::new(e))
    }
}

impl From<crate::export::ExportError> for ReviewError {
    fn from(e: crate::export::ExportError) -> Self {
        crate::Error::from(e).into()
    }
}

impl From<crate::export::qda::QdaError> for ReviewError {
    fn from(e: crate::export::qda::QdaError) -> Self {
        crate::Error::from(e).into()
    }
}

impl From<crate::atomic::WriteError> for ReviewError {
    fn from(e: crate::atomic::WriteError) -> Self {
        crate::Error::from(e).into()
    }
}
