//! The canonical transcript artifact (`<uri>.transcript.json`): writer and checked reader.
//!
//! Output: `serde_json` pretty printing (two-space indent, fields in [`Transcript`]'s declared
//! order, `\n` line ends) plus one trailing newline, so equal transcripts give equal bytes.
//! The reader checks `schema` and `schema_version` before anything else, so a file from a
//! newer qualscribe is refused for its version rather than for a field it does not expect.

use std::path::Path;

use super::ExportError;
use crate::transcript::{SCHEMA_NAME, SCHEMA_VERSION, Transcript};

/// The transcript as pretty JSON with a trailing newline.
pub(super) fn render(t: &Transcript) -> String {
    // A Transcript holds only structs, strings, numbers, options and vectors, which
    // serde_json always serializes (non-finite floats become `null`), so this cannot fail.
    let mut json = serde_json::to_string_pretty(t).expect("a Transcript always serializes");
    json.push('\n');
    json
}

/// Reads a `.transcript.json` file, refusing other schemas and unknown versions.
///
/// Every error is one line naming `path`.
pub fn read_transcript(path: &Path) -> Result<Transcript, ExportError> {
    let parse_err = |source| ExportError::Parse {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(|source| ExportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(parse_err)?;
    check_schema(path, &value)?;
    serde_json::from_value(value).map_err(parse_err)
}

fn check_schema(path: &Path, value: &serde_json::Value) -> Result<(), ExportError> {
    let schema = value.get("schema").and_then(|s| s.as_str());
    if schema != Some(SCHEMA_NAME) {
        return Err(ExportError::WrongSchema {
            path: path.to_path_buf(),
            found: schema.map(str::to_string),
            expected: SCHEMA_NAME,
        });
    }
    let version = value.get("schema_version");
    if version.and_then(|v| v.as_u64()) != Some(u64::from(SCHEMA_VERSION)) {
        return Err(ExportError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version.map_or_else(|| "missing".to_string(), |v| v.to_string()),
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}
