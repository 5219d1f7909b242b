//! `analysis.json`: the analysis stage's artifact (passages, theme members, proposed codes), so
//! review can import what the machine proposed without recomputing it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::codes::Codebook;
use crate::passages::Passages;
use crate::themes::Themes;

/// File name in an output folder.
pub const ANALYSIS_FILE: &str = "analysis.json";
/// The artifact's schema name.
pub const SCHEMA_NAME: &str = "qualscribe.analysis";
/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// The passages, themes and proposed codes of one analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisArtifact {
    /// Always [`SCHEMA_NAME`].
    pub schema: String,
    /// Always [`SCHEMA_VERSION`] when written by this version.
    pub schema_version: u32,
    /// Every passage of every transcript.
    pub passages: Passages,
    /// Theme `T<n>` (n from 1) and the ids of its passages.
    pub themes: Vec<ThemeMembers>,
    /// One proposed code per theme.
    pub codebook: Codebook,
}

/// One theme's passages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThemeMembers {
    /// `T1`, `T2`, … as in `passages.tsv` and `codes.csv`.
    pub key: String,
    /// Passage ids.
    pub members: Vec<usize>,
}

/// Writes `analysis.json` into `out_dir`, atomically.
pub fn write_analysis_json(
    out_dir: &Path,
    passages: &Passages,
    themes: &Themes,
    codebook: &Codebook,
) -> Result<PathBuf, crate::Error> {
    let artifact = AnalysisArtifact {
        schema: SCHEMA_NAME.to_string(),
        schema_version: SCHEMA_VERSION,
        passages: passages.clone(),
        themes: themes
            .themes
            .iter()
            .enumerate()
            .map(|(i, t)| ThemeMembers {
                key: format!("T{}", i + 1),
                members: t.members.clone(),
            })
            .collect(),
        codebook: codebook.clone(),
    };
    let path = out_dir.join(ANALYSIS_FILE);
    let mut json = serde_json::to_string_pretty(&artifact).expect("an analysis always serialises");
    json.push('\n');
    write_atomic(&path, json.as_bytes())?;
    Ok(path)
}

/// Reads an `analysis.json`, checking its schema.
pub fn read_analysis_json(path: &Path) -> Result<AnalysisArtifact, crate::Error> {
    let text = std::fs::read_to_string(path).map_err(|source| crate::Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let a: AnalysisArtifact =
        serde_json::from_str(&text).map_err(|source| crate::Error::BadArtifact {
            path: path.to_path_buf(),
            source,
        })?;
    if a.schema != SCHEMA_NAME || a.schema_version != SCHEMA_VERSION {
        return Err(crate::Error::ArtifactVersion {
            path: path.to_path_buf(),
        });
    }
    Ok(a)
}
