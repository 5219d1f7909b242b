//! REFI-QDA export: a `.qdc` codebook and a `.qdpx` project that NVivo, ATLAS.ti, MAXQDA and
//! QualCoder open, and readers for both (to check what was written and to import codebooks).
//!
//! The formats are the Rotterdam Exchange Format Initiative's QDA-XML 1.0 (`shared/refi-qda/`):
//! - `.qdc`: one XML document, root `CodeBook` in namespace `urn:QDA-XML:codebook:1.0`.
//! - `.qdpx`: a zip holding `project.qde` (root `Project`, namespace `urn:QDA-XML:project:1.0`)
//!   and `Sources/`, whose files the project references as `internal://<guid>.<ext>`.
//!
//! This module works on its own small input model ([`QdaProject`] and its parts), so it does not
//! depend on how codes are found; the caller maps transcripts and codes onto it.
//!
//! What goes where in a `.qdpx`:
//! - each [`QdaSource`] becomes a `TextSource` whose text is `Sources/<guid>.txt`, with one
//!   `PlainTextSelection` (holding one `Coding` → `CodeRef`) per [`QdaCoding`] of that source;
//! - a source with an [`QdaSource::audio_path`] also becomes an `AudioSource` (by default the
//!   recording is embedded as `Sources/<audio guid>.<ext>`, `internal://…`, so the project is
//!   self-contained; see [`AudioStorage`] for links instead) named after the recording, with a
//!   `Transcript` child named `<recording>.txt` (QualCoder's name for a recording's transcript):
//!   the same text in `Sources/<transcript guid>.txt` and one `SyncPoint` (`position` in
//!   characters, `timeStamp` in milliseconds) per [`QdaSyncPoint`];
//! - speakers are `Cases` with one `SourceRef` per source they speak in;
//! - a code's definition is its `Description`; its [`QdaCode::note`] (e.g. `status: proposed`)
//!   is a `Note` under `Notes` that the code points to with a `NoteRef`. The `.qdc` schema has no
//!   notes, so there the note is appended to the description as a last paragraph
//!   `Note: <note>` (see [`write_codebook`]), which [`read_qdc`] splits off again;
//! - [`QdaProject::notes`] are `Notes` that the project points to with `NoteRef`s.
//!
//! Promises:
//! - **Positions** (`startPosition`, `endPosition`, `SyncPoint position`) count Unicode scalar
//!   values (code points) from 0, as the standard does, never bytes; a selection is the half-open
//!   range `[start, end)`. [`char_span`] converts a Rust byte range.
//! - **Times** are integer milliseconds on the original audio timeline.
//! - **Dates and users**: every element that can carry them gets `creatingUser` /
//!   `creationDateTime` and `modifyingUser` / `modifiedDateTime` from [`QdaProject::dates`] and
//!   [`QdaProject::created_by`] (optional in the schema, but QualCoder's importer fails without
//!   them).
//! - **Determinism**: identical input gives byte-identical files: elements are written in input
//!   order (codings grouped by source, keeping their order within a source), every derived GUID
//!   comes from [`guid_for`], dates come from the input ([`QdaProject::dates`]), and zip
//!   entries carry the fixed DOS date 1980-01-01 and mode 0644.
//! - **Encoding**: UTF-8 without a byte-order mark, `\n` line ends; characters that XML 1.0
//!   cannot hold (C0 controls other than tab, newline, carriage return) become U+FFFD in XML
//!   text. Source texts are stored verbatim.
//! - **Validity**: [`write_qdc`] and [`write_qdpx`] check the input first (GUID syntax, unique
//!   GUIDs, colours, references, positions inside the text) and refuse what the schema or an
//!   importer would reject; the output validates against `Codebook.xsd` / `Project.xsd`.
//! - Files are written atomically ([`crate::atomic`]); a failure is one line naming the file.

mod codebook;
mod project;
mod read;
mod validate;
mod xml;

use std::ops::Range;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::atomic::{WriteError, write_atomic};

pub use codebook::write_codebook;
pub use read::{read_qdc, read_qdpx};

/// The namespace of `project.qde`.
pub const PROJECT_NAMESPACE: &str = "urn:QDA-XML:project:1.0";
/// The namespace of a `.qdc` codebook.
pub const CODEBOOK_NAMESPACE: &str = "urn:QDA-XML:codebook:1.0";

/// A code (theme) of the codebook, possibly with sub-codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QdaCode {
    /// Its GUID (`8-4-4-4-12` hex, see [`guid_for`]).
    pub guid: String,
    /// The name shown in the codebook.
    pub name: String,
    /// The definition: what the code means and when to apply it. Empty writes no `Description`.
    pub description: String,
    /// Display colour as `#RRGGBB` (or `#RGB`), if any.
    pub color: Option<String>,
    /// False for a pure grouping node that segments cannot be coded with.
    pub is_codable: bool,
    /// Sub-codes, in display order.
    pub children: Vec<QdaCode>,
    /// A note about the code, e.g. `status: proposed` or `status: accepted`.
    pub note: Option<String>,
}

/// A transcribed recording: its text and, optionally, its audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QdaSource {
    /// GUID of the text source.
    pub guid: String,
    /// The recording's id (its `uri`), shown as the document name.
    pub name: String,
    /// The transcript as plain text; codings and sync points index into it by character.
    pub text: String,
    /// The recording, when the project should link the audio to the text. It must exist when
    /// the project is written (it is referenced by its canonical path, or copied).
    pub audio_path: Option<PathBuf>,
    /// Where each speaker turn starts in `text` and in the audio. Needs `audio_path`.
    pub sync_points: Vec<QdaSyncPoint>,
}

/// One point where the transcript text and the audio line up (the start of a speaker turn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QdaSyncPoint {
    /// Its GUID.
    pub guid: String,
    /// Character offset into [`QdaSource::text`] (code points, 0-based).
    pub position: usize,
    /// Time on the original audio timeline, in milliseconds.
    pub time_ms: u64,
}

/// A speaker, as a case that groups the sources they speak in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QdaCase {
    /// Its GUID.
    pub guid: String,
    /// The speaker's name or label.
    pub name: String,
    /// GUIDs of the [`QdaSource`]s the speaker appears in.
    pub source_refs: Vec<String>,
}

/// A span of a source's text coded with one code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QdaCoding {
    /// GUID of the `Coding` element; the enclosing `PlainTextSelection` gets
    /// `guid_for("qdpx-selection", guid)`.
    pub guid: String,
    /// The [`QdaSource`] whose text is coded.
    pub source_guid: String,
    /// First character of the span (code points, 0-based, inclusive).
    pub start: usize,
    /// One past the last character (exclusive); `start <= end <= text length in chars`.
    pub end: usize,
    /// The [`QdaCode`] applied.
    pub code_guid: String,
    /// A label for the selection (often the quoted text), written as its `name`.
    pub name: Option<String>,
}

/// The person (or tool user) the project is attributed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QdaUser {
    /// Its GUID.
    pub guid: String,
    /// Display name.
    pub name: String,
}

/// Everything a `.qdpx` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QdaProject {
    /// Project name.
    pub name: String,
    /// The software that wrote it, e.g. `qualscribe 0.1.0`.
    pub origin: String,
    /// The project's creator; also recorded as the creating user of sources and codings.
    pub created_by: QdaUser,
    /// The codebook (top-level codes).
    pub codes: Vec<QdaCode>,
    /// The transcripts.
    pub sources: Vec<QdaSource>,
    /// The speakers.
    pub cases: Vec<QdaCase>,
    /// Coded spans, in any order (written grouped by source, see the module docs).
    pub codings: Vec<QdaCoding>,
    /// Project-level notes as `(guid, text)`, e.g. how the codes were produced.
    pub notes: Vec<(String, String)>,
    /// When the content was made and last changed, written on every element that has dates.
    pub dates: QdaDates,
}

/// Creation and modification dates as `xs:dateTime` in UTC, e.g. `2026-12-03T21:05:18Z`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QdaDates {
    /// When the content was made.
    pub created: String,
    /// When it was last changed (not before `created`).
    pub modified: String,
}

impl QdaDates {
    /// Both dates at `t`, to the second.
    pub fn at(t: std::time::SystemTime) -> QdaDates {
        let text = xs_date_time(t);
        QdaDates {
            created: text.clone(),
            modified: text,
        }
    }
}

/// `t` as an `xs:dateTime` in UTC to the second (`2026-12-03T21:05:18Z`); times before 1970
/// (a broken clock or file system) are written as 1970-01-01T00:00:00Z.
pub fn xs_date_time(t: std::time::SystemTime) -> String {
    let t = t.max(std::time::UNIX_EPOCH);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// How a `.qdpx` holds the audio of its sources.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AudioStorage {
    /// Copy each recording into the archive's `Sources/` (`internal://…`, stored uncompressed):
    /// the project is self-contained and can be moved or sent as one file, but it is as large as
    /// the recordings.
    #[default]
    Embed,
    /// Link each recording by its path relative to the folder the `.qdpx` is written in
    /// (`relative://…`), with that folder as the project's `basePath`: small, and it keeps
    /// working when the project folder and the recordings move together (for tools that resolve
    /// against the project's own location; QualCoder resolves against `basePath`).
    Relative,
    /// Link each recording by its canonical path (`absolute://…`): small, but only this
    /// machine finds the audio.
    Absolute,
}

impl std::str::FromStr for AudioStorage {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "embed" => Ok(AudioStorage::Embed),
            "relative" => Ok(AudioStorage::Relative),
            "absolute" | "link" => Ok(AudioStorage::Absolute),
            other => Err(format!(
                "unknown --qdpx-audio {other:?}: expected embed, relative or absolute"
            )),
        }
    }
}

/// Settings for [`write_qdpx_with`]. The default embeds the audio.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QdpxOptions {
    /// Where the audio goes.
    pub audio: AudioStorage,
}

/// Failure to write or read a REFI-QDA file, or input the standard cannot express.
#[derive(Debug, thiserror::Error)]
pub enum QdaError {
    /// The output file could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A file (input archive, codebook or audio to copy) could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A `.qdpx` is not a readable zip archive.
    #[error("{path} is not a readable .qdpx (zip) archive: {source}")]
    Zip {
        /// The archive.
        path: PathBuf,
        /// What the zip reader found wrong.
        #[source]
        source: zip::result::ZipError,
    },
    /// A file the project needs is missing from the archive.
    #[error("{path} has no {entry}")]
    MissingEntry {
        /// The archive.
        path: PathBuf,
        /// The entry name, e.g. `project.qde` or `Sources/<guid>.txt`.
        entry: String,
    },
    /// A file is not well-formed XML (or not UTF-8).
    #[error(
        "{path}: invalid XML at byte {position}: {}",
        crate::error::one_line(source)
    )]
    Xml {
        /// The file (for a `.qdpx`, the archive followed by `!project.qde`).
        path: PathBuf,
        /// Byte offset where the parser stopped.
        position: u64,
        /// The parser's error.
        #[source]
        source: quick_xml::Error,
    },
    /// The root element is not the one this file type must have.
    #[error(
        "{path}: root element is {}, expected {expected}",
        crate::error::one_line(found)
    )]
    WrongRoot {
        /// The file.
        path: PathBuf,
        /// `{namespace}Name` found.
        found: String,
        /// `{namespace}Name` expected.
        expected: String,
    },
    /// An element lacks an attribute or child the standard requires.
    #[error(
        "{path}: <{}> has no {}",
        crate::error::one_line(element),
        crate::error::one_line(attribute)
    )]
    Missing {
        /// The file.
        path: PathBuf,
        /// The element's name.
        element: String,
        /// The missing attribute or child.
        attribute: String,
    },
    /// An attribute's value is not of its type (a position that is not a number, …).
    #[error(
        "{path}: <{} {}=\"{}\"> is not valid",
        crate::error::one_line(element),
        crate::error::one_line(attribute),
        crate::error::one_line(value)
    )]
    BadValue {
        /// The file.
        path: PathBuf,
        /// The element's name.
        element: String,
        /// The attribute.
        attribute: String,
        /// The value found.
        value: String,
    },
    /// A string that must be a GUID (`8-4-4-4-12` hex digits) is not one.
    #[error("{what} has invalid GUID {guid:?} (expected 8-4-4-4-12 hex digits)")]
    InvalidGuid {
        /// What carries it (`code "precio"`, `source grupo_focal_01`, …).
        what: String,
        /// The value given.
        guid: String,
    },
    /// Two items share a GUID, so references between them would be ambiguous.
    #[error("GUID {guid} is used twice: by {first} and by {second}")]
    DuplicateGuid {
        /// The GUID.
        guid: String,
        /// The first item using it.
        first: String,
        /// The second item using it.
        second: String,
    },
    /// A code colour is not `#RRGGBB` or `#RGB`.
    #[error("code {code:?} has invalid color {color:?} (expected #RRGGBB)")]
    InvalidColor {
        /// The code's name.
        code: String,
        /// The value given.
        color: String,
    },
    /// A reference points at nothing in the project.
    #[error("{what} refers to unknown {kind} {guid}")]
    DanglingRef {
        /// The referring item.
        what: String,
        /// `code`, `source`…
        kind: &'static str,
        /// The GUID that matched nothing.
        guid: String,
    },
    /// A coding's span is reversed or runs past the end of its source's text.
    #[error(
        "coding {coding} spans characters {start}..{end} but source {source_guid} has {chars} characters"
    )]
    SpanOutOfRange {
        /// The coding's GUID.
        coding: String,
        /// The source's GUID.
        source_guid: String,
        /// Its start (characters).
        start: usize,
        /// Its end (characters).
        end: usize,
        /// The source text's length in characters.
        chars: usize,
    },
    /// A sync point lies past the end of its source's text.
    #[error(
        "sync point {sync_point} at character {position} is past the end of source {source_guid} ({chars} characters)"
    )]
    SyncPointOutOfRange {
        /// The sync point's GUID.
        sync_point: String,
        /// The source's GUID.
        source_guid: String,
        /// Its position (characters).
        position: usize,
        /// The source text's length in characters.
        chars: usize,
    },
    /// Sync points need an audio source to hang on; the standard has no place for them otherwise.
    #[error("source {source_guid} has sync points but no audio_path")]
    SyncPointsWithoutAudio {
        /// The source's GUID.
        source_guid: String,
    },
    /// A path that the XML must spell out is not valid UTF-8.
    #[error("audio path {path} is not valid UTF-8")]
    NonUtf8Path {
        /// The path.
        path: PathBuf,
    },
    /// A date is not an `xs:dateTime`.
    #[error("project date {value:?} is not an xs:dateTime such as 2026-12-03T21:05:18Z")]
    InvalidDate {
        /// The value given.
        value: String,
    },
    /// A codebook needs at least one code (the schema requires one).
    #[error("codebook {path} would have no codes")]
    EmptyCodebook {
        /// The file that was to be written.
        path: PathBuf,
    },
}

/// A deterministic GUID for `key` within `namespace`, so the same input always gets the same ids.
///
/// It is a name-based UUID in the spirit of version 5, but hashed with SHA-256 (already a
/// dependency) instead of SHA-1, so it carries version 8 ("custom", RFC 9562) and the RFC 4122
/// variant bits. Formatted as lower-case `8-4-4-4-12` hex, which the schemas' GUID pattern
/// accepts. Namespace and key are separated by a NUL byte so ("ab", "c") ≠ ("a", "bc").
pub fn guid_for(namespace: &str, key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(namespace.as_bytes());
    hasher.update([0u8]);
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8
    b[8] = (b[8] & 0x3f) | 0x80; // variant 10xx
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Converts a byte range of `text` into the character (code point) range the standard counts in.
///
/// `None` when the range is reversed, runs past the end, or does not fall on character
/// boundaries.
pub fn char_span(text: &str, bytes: Range<usize>) -> Option<Range<usize>> {
    if bytes.start > bytes.end
        || !text.is_char_boundary(bytes.start)
        || !text.is_char_boundary(bytes.end)
    {
        return None;
    }
    let start = text[..bytes.start].chars().count();
    let len = text[bytes.start..bytes.end].chars().count();
    Some(start..start + len)
}

/// Writes `codes` as a `.qdc` codebook to `path`, atomically, after checking them.
pub fn write_qdc(path: &Path, codes: &[QdaCode], origin: &str) -> Result<(), QdaError> {
    if codes.is_empty() {
        return Err(QdaError::EmptyCodebook {
            path: path.to_path_buf(),
        });
    }
    validate::codes(codes)?;
    write_atomic(path, write_codebook(codes, origin).as_bytes())?;
    Ok(())
}

/// Writes `project` as a `.qdpx` archive to `path`, atomically, with the audio embedded.
pub fn write_qdpx(path: &Path, project: &QdaProject) -> Result<(), QdaError> {
    write_qdpx_with(path, project, &QdpxOptions::default())
}

/// Writes `project` as a `.qdpx` archive to `path`, atomically, with `options`.
pub fn write_qdpx_with(
    path: &Path,
    project: &QdaProject,
    options: &QdpxOptions,
) -> Result<(), QdaError> {
    validate::project(project)?;
    project::write(path, project, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_is_stable_and_schema_shaped() {
        let g = guid_for("code", "precio");
        assert_eq!(g, guid_for("code", "precio"));
        assert_ne!(g, guid_for("code", "precios"));
        assert_ne!(guid_for("ab", "c"), guid_for("a", "bc"));
        let groups: Vec<usize> = g.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(g.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_eq!(&g[14..15], "8", "version nibble");
        assert!(validate::is_guid(&g));
    }

    #[test]
    fn char_span_counts_code_points() {
        let text = "¿Qué tal? Señor Muñoz";
        let byte_start = text.find("Señor").unwrap();
        let span = char_span(text, byte_start..text.len()).unwrap();
        assert_eq!(span, 10..21);
        let quoted: String = text.chars().skip(span.start).take(span.len()).collect();
        assert_eq!(quoted, "Señor Muñoz");
        assert_eq!(char_span(text, 1..2), None, "inside ¿");
        let reversed = Range { start: 3, end: 2 };
        assert_eq!(char_span(text, reversed), None);
        assert_eq!(char_span(text, 0..text.len() + 1), None);
    }
}
