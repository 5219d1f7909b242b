//! The library error: one enum per stage, joined here.

use std::path::{Path, PathBuf};

/// Any qualscribe library error. Each stage's error already names the file or model involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Installing or finding a model failed.
    #[error(transparent)]
    Models(#[from] crate::models::ModelError),
    /// The audio could not be decoded.
    #[error(transparent)]
    Audio(#[from] crate::audio::AudioError),
    /// Voice activity detection failed.
    #[error(transparent)]
    Vad(#[from] crate::vad::VadError),
    /// Transcription failed.
    #[error(transparent)]
    Asr(#[from] crate::asr::AsrError),
    /// Diarization failed or was misconfigured.
    #[error(transparent)]
    Diarize(#[from] crate::diarize::DiarizeError),
    /// The audio given for a saved transcript is not the recording it was made from.
    #[error(
        "{path} is not the recording transcript `{uri}` was made from (SHA-256 differs): pass the original with --audio"
    )]
    AudioMismatch {
        /// The audio file.
        path: PathBuf,
        /// The transcript's recording id.
        uri: String,
    },
    /// A saved artifact is not valid JSON of its kind.
    #[error("{path} is not a qualscribe artifact: {source}")]
    BadArtifact {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A saved artifact was written by an incompatible version.
    #[error("{path} was written by another qualscribe version: delete it to recompute")]
    ArtifactVersion {
        /// The file.
        path: PathBuf,
    },
    /// Transcripts could not be cut into passages.
    #[error(transparent)]
    Passages(#[from] crate::passages::PassageError),
    /// Themes could not be found.
    #[error(transparent)]
    Themes(#[from] crate::themes::ThemeError),
    /// Codes could not be proposed (or a quote failed its verbatim check).
    #[error(transparent)]
    Codes(#[from] crate::codes::CodesError),
    /// A code examples file is wrong, or one of its rows matches no content passage.
    #[error(transparent)]
    Examples(#[from] crate::codes::examples::ExamplesError),
    /// Text embedding failed.
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
    /// Writing a REFI-QDA file failed.
    #[error(transparent)]
    Qda(#[from] crate::export::qda::QdaError),
    /// Writing an export failed.
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    /// An atomic write failed.
    #[error(transparent)]
    Write(#[from] crate::atomic::WriteError),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A failure line that names its file exactly once: `error` as it is when it already names
/// `path` (decoder errors do), else prefixed with it.
pub fn naming_the_file(path: &Path, error: &str) -> String {
    let name = path.display().to_string();
    if error.contains(&name) {
        error.to_string()
    } else {
        format!("{name}: {error}")
    }
}

/// `message` on one line: line breaks and other control characters (which parsers quote from
/// a damaged file) become spaces, so an error stays one line in a terminal and in a TSV report.
pub fn one_line(message: &impl std::fmt::Display) -> String {
    message.to_string().replace(|c: char| c.is_control(), " ")
}
