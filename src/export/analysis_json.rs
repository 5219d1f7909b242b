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
    /// The content passages' text vectors, for the review page's "suggest more passages".
    /// Added after schema version 1 without changing it: older artifacts have none (the review
    /// page then says to re-run `themes`), and older readers ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vectors: Option<PassageVectors>,
    /// The text model the passages were embedded with (`e5`, `use`, a folder's name); vectors
    /// of different models are not comparable. `e5+use`: codes were assigned with both models,
    /// the stored vectors are the first's. Added like `vectors`: older artifacts have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_model: Option<String>,
    /// The proposed codes' texts (`name: definition`, as the review page builds them) as
    /// vectors of the same space as `vectors`, so a code's definition counts with its meaning
    /// in the review page's suggestions, not only with its words. Added like `vectors`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_text_vectors: Option<TextVectors>,
}

/// One vector per text (a code's `name: definition`), in the space of [`PassageVectors`]
/// (the text model's query vector, centred on the passages' mean, unit length); packed the
/// same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextVectors {
    /// Always [`VECTORS_VERSION`] when written by this version.
    pub version: u32,
    /// Values per vector.
    pub dim: usize,
    /// The text of each vector, in order.
    pub texts: Vec<String>,
    /// `texts.len() × dim` little-endian `f32`s, base64 (standard alphabet, padded).
    pub data: String,
}

impl TextVectors {
    /// Packs `(text, vector)` pairs (all of length `dim`).
    pub fn pack(dim: usize, rows: &[(String, Vec<f32>)]) -> Self {
        TextVectors {
            version: VECTORS_VERSION,
            dim,
            texts: rows.iter().map(|r| r.0.clone()).collect(),
            data: pack_values(rows.iter().map(|r| r.1.as_slice())),
        }
    }

    /// The `(text, vector)` pairs, or `None` when the data is not what the header says.
    pub fn unpack(&self) -> Option<Vec<(String, Vec<f32>)>> {
        if self.version != VECTORS_VERSION {
            return None;
        }
        let rows = unpack_values(&self.data, self.texts.len(), self.dim)?;
        Some(self.texts.iter().cloned().zip(rows).collect())
    }
}

/// Little-endian `f32`s of every row, base64.
fn pack_values<'a>(rows: impl IntoIterator<Item = &'a [f32]>) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = rows
        .into_iter()
        .flat_map(|v| v.iter().flat_map(|x| x.to_le_bytes()))
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `rows × dim` finite `f32`s from [`pack_values`]'s base64; None when it is not that.
fn unpack_values(data: &str, rows: usize, dim: usize) -> Option<Vec<Vec<f32>>> {
    use base64::Engine as _;
    if dim == 0 {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    if bytes.len() != rows * dim * 4 {
        return None;
    }
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    Some(values.chunks_exact(dim).map(<[f32]>::to_vec).collect())
}

/// The version of [`PassageVectors`] this build writes and reads.
pub const VECTORS_VERSION: u32 = 1;

/// One vector per content passage: the centred unit text-model vector the themes were
/// computed from, stored as base64 of little-endian `f32`s (JSON numbers would be ten times
/// larger and one per line in the pretty-printed artifact).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassageVectors {
    /// Always [`VECTORS_VERSION`] when written by this version.
    pub version: u32,
    /// Values per vector.
    pub dim: usize,
    /// The passage id of each vector, in order.
    pub passages: Vec<usize>,
    /// `passages.len() × dim` little-endian `f32`s, base64 (standard alphabet, padded).
    pub data: String,
}

impl PassageVectors {
    /// Packs `(passage id, vector)` pairs (all of length `dim`).
    pub fn pack<'a>(dim: usize, rows: impl IntoIterator<Item = (usize, &'a [f32])>) -> Self {
        let (passages, vectors): (Vec<usize>, Vec<&[f32]>) = rows.into_iter().unzip();
        debug_assert!(vectors.iter().all(|v| v.len() == dim));
        PassageVectors {
            version: VECTORS_VERSION,
            dim,
            passages,
            data: pack_values(vectors),
        }
    }

    /// The `(passage id, vector)` pairs, or `None` when the data is not what the header says
    /// (another version, bad base64, wrong length, values that are not finite).
    pub fn unpack(&self) -> Option<Vec<(usize, Vec<f32>)>> {
        if self.version != VECTORS_VERSION {
            return None;
        }
        let rows = unpack_values(&self.data, self.passages.len(), self.dim)?;
        Some(self.passages.iter().copied().zip(rows).collect())
    }
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
    text_model: &str,
    code_text_vectors: &[(String, Vec<f32>)],
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
        vectors: content_vectors(passages, themes),
        text_model: Some(text_model.to_string()),
        code_text_vectors: code_text_vectors
            .first()
            .map(|first| TextVectors::pack(first.1.len(), code_text_vectors)),
    };
    let path = out_dir.join(ANALYSIS_FILE);
    let mut json = serde_json::to_string_pretty(&artifact).expect("an analysis always serialises");
    json.push('\n');
    write_atomic(&path, json.as_bytes())?;
    Ok(path)
}

/// The content passages' vectors, in passage id order (None when there are none).
fn content_vectors(passages: &Passages, themes: &Themes) -> Option<PassageVectors> {
    let rows: Vec<(usize, &[f32])> = (0..passages.passages.len())
        .filter_map(|p| themes.passage_vector(p).map(|v| (p, v)))
        .collect();
    let dim = rows.first()?.1.len();
    Some(PassageVectors::pack(dim, rows))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_and_damaged_data_is_refused() {
        let a = [0.25f32, -1.0, 3.5];
        let b = [1e-7f32, 0.0, -0.5];
        let packed = PassageVectors::pack(3, [(4, &a[..]), (9, &b[..])]);
        assert_eq!(
            packed.unpack().unwrap(),
            vec![(4, a.to_vec()), (9, b.to_vec())]
        );
        let short = PassageVectors {
            dim: 4,
            ..packed.clone()
        };
        assert!(short.unpack().is_none());
        let newer = PassageVectors {
            version: VECTORS_VERSION + 1,
            ..packed.clone()
        };
        assert!(newer.unpack().is_none());
        let garbage = PassageVectors {
            data: "not base64!".to_string(),
            ..packed
        };
        assert!(garbage.unpack().is_none());
        let texts = vec![("precio: lo que cuesta".to_string(), a.to_vec())];
        let packed = TextVectors::pack(3, &texts);
        assert_eq!(packed.unpack().unwrap(), texts);
        let short = TextVectors { dim: 2, ..packed };
        assert!(short.unpack().is_none());
    }
}
