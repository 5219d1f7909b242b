//! Install records: `<file>.install.json` next to each installed file, written atomically after
//! the file itself. The record is what makes later checks cheap (size compare instead of a
//! re-hash) and says where the file came from.

use super::InstalledModel;
use super::error::ModelError;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Suffix appended to an installed file's name.
const SUFFIX: &str = ".install.json";

/// What was installed, and from what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InstallRecord {
    /// The spec that selects the file (`base-q8_0`).
    pub id: String,
    /// SHA-256 (hex) of the installed file.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Multilingual Whisper model or not; absent for the VAD.
    pub multilingual: Option<bool>,
    /// The pinned wheels it was made from.
    pub wheels: Vec<String>,
    /// qualscribe version that installed it (conversions may change between versions).
    pub installed_by: String,
}

fn record_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(SUFFIX);
    file.with_file_name(name)
}

impl InstallRecord {
    /// The record describing `installed`.
    pub fn from_installed(installed: &InstalledModel, wheels: Vec<String>) -> Self {
        InstallRecord {
            id: installed.id.clone(),
            sha256: installed.sha256.clone(),
            bytes: installed.bytes,
            multilingual: installed.multilingual,
            wheels,
            installed_by: format!("qualscribe {}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Writes the record next to `file`, atomically.
    pub fn save(&self, file: &Path) -> Result<(), ModelError> {
        let path = record_path(file);
        let mut json = serde_json::to_vec_pretty(self).map_err(|source| ModelError::BadRecord {
            path: path.clone(),
            source,
        })?;
        json.push(b'\n');
        crate::atomic::write_atomic_with(&path, |file| {
            super::make_world_readable(file)?;
            file.write_all(&json)
        })?;
        Ok(())
    }

    /// The record next to `file`, or `None` if there is none.
    pub fn load(file: &Path) -> Result<Option<Self>, ModelError> {
        let path = record_path(file);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ModelError::Io { path, source }),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|source| ModelError::BadRecord { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_next_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ggml-base.bin");
        assert_eq!(InstallRecord::load(&file).unwrap(), None);
        let installed = InstalledModel {
            id: "base".into(),
            path: file.clone(),
            sha256: "ab".repeat(32),
            bytes: 42,
            multilingual: Some(true),
        };
        let record = InstallRecord::from_installed(&installed, vec!["w.whl".into()]);
        record.save(&file).unwrap();
        assert!(dir.path().join("ggml-base.bin.install.json").is_file());
        assert_eq!(InstallRecord::load(&file).unwrap(), Some(record));
    }

    #[test]
    fn damaged_record_names_the_file_and_remedy() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.bin");
        std::fs::write(record_path(&file), b"{").unwrap();
        let e = InstallRecord::load(&file).unwrap_err().to_string();
        assert!(
            e.contains("x.bin.install.json") && e.contains("fetch again"),
            "{e}"
        );
    }
}
