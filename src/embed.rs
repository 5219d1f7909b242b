//! Text embeddings for passages (speaker turns, quotes) and queries (theme descriptions), on the CPU
//! with candle's BERT and Hugging Face tokenizers.
//!
//! Promises:
//! - Each vector is the mean of the model's last hidden states over the input's real tokens
//!   (special tokens included, padding excluded), scaled to unit L2 norm, so the cosine of two
//!   vectors is their dot product ([`cosine`]). Length = [`TextEmbedder::dim`] (384 for e5-small
//!   and MiniLM).
//! - Model-specific prefixes are applied here: e5 sees `passage: <text>` / `query: <text>`,
//!   MiniLM the text as is (see [`crate::models::TextModelDir`]).
//! - Inputs longer than the model's limit (e5: 512 tokens, MiniLM: 256) are truncated at the end.
//! - Output order is input order. Inputs are batched by token length to cut padding, and padding
//!   is masked out, so a text's vector does not depend on what it is batched with beyond float
//!   rounding (tests: within 1e-5 of embedding it alone). Same input, same output, every run.
//! - The empty string is a valid input (it still has the model's special tokens).

pub mod sentencepiece;
pub mod usem3;

use crate::models::{TextArchitecture, TextModelDir};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use rayon::prelude::*;
use std::path::PathBuf;
use tokenizers::{Tokenizer, TruncationParams};

/// Settings of a [`TextEmbedder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedConfig {
    /// Texts per forward pass. Default 16. Measured on the 71 corpus turns with 2 threads on a
    /// shared, overloaded 2-core machine (`examples/bench_embed.rs`): 8, 16 and 32 differed by
    /// less than the run-to-run noise (e5 7.7–11.5 passages/s, MiniLM 10–20), so 16 is a middle
    /// value: little padding waste on turns of mixed length, modest activation memory.
    pub batch_size: usize,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        EmbedConfig { batch_size: 16 }
    }
}

/// Why a text model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// `config.json` cannot be read or is not a BERT config candle understands.
    #[error("cannot read text model config {path}: {source}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ConfigSource,
    },
    /// The config describes an architecture other than BERT (e.g. XLM-RoBERTa, whose position
    /// ids are offset, so running it as BERT would give wrong vectors without any error).
    #[error(
        "text model {path} is a `{model_type}` model; only BERT models (model_type \"bert\") are supported"
    )]
    UnsupportedArchitecture {
        /// The config file.
        path: PathBuf,
        /// Its `model_type`.
        model_type: String,
    },
    /// `tokenizer.json` cannot be loaded or configured.
    #[error("cannot load tokenizer {path}: {source}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// Why.
        #[source]
        source: tokenizers::Error,
    },
    /// The tokenizer can produce ids the model has no embedding for.
    #[error(
        "tokenizer {path} has {tokenizer_vocab} tokens but the model only {model_vocab}; they do not belong together"
    )]
    VocabularyTooLarge {
        /// The tokenizer file.
        path: PathBuf,
        /// Tokens in the tokenizer (with added tokens).
        tokenizer_vocab: usize,
        /// Rows of the model's word embedding.
        model_vocab: usize,
    },
    /// `model.safetensors` cannot be loaded as the config's BERT.
    #[error("cannot load text model weights {path}: {source}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// Why.
        #[source]
        source: candle_core::Error,
    },
    /// A text could not be tokenised.
    #[error("cannot tokenise text {index} for model `{model}`: {source}")]
    Tokenize {
        /// The model.
        model: String,
        /// Position of the text in the input.
        index: usize,
        /// Why.
        #[source]
        source: tokenizers::Error,
    },
    /// The Universal Sentence Encoder's files cannot be used.
    #[error(transparent)]
    Use(Box<usem3::UseError>),
    /// The forward pass failed.
    #[error("text model `{model}` failed: {source}")]
    Inference {
        /// The model.
        model: String,
        /// Why.
        #[source]
        source: candle_core::Error,
    },
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigSource {
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Not the JSON candle's BERT config expects.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// The network behind a [`TextEmbedder`].
enum Network {
    Bert {
        model: Box<BertModel>,
        tokenizer: Box<Tokenizer>,
    },
    Use(Box<usem3::UseModel>),
}

/// A loaded sentence-embedding model (loaded once, shared by every file of a run): a BERT
/// (e5, MiniLM, a user folder) or Universal Sentence Encoder multilingual v3.
pub struct TextEmbedder {
    name: String,
    network: Network,
    max_tokens: usize,
    passage_prefix: String,
    query_prefix: String,
    pad_id: u32,
    dim: usize,
    batch_size: usize,
    device: Device,
}

impl std::fmt::Debug for TextEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextEmbedder")
            .field("name", &self.name)
            .field("dim", &self.dim)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

fn read_config(path: PathBuf) -> Result<BertConfig, EmbedError> {
    let parsed = std::fs::read(&path)
        .map_err(ConfigSource::from)
        .and_then(|bytes| serde_json::from_slice::<BertConfig>(&bytes).map_err(ConfigSource::from));
    let config = parsed.map_err(|source| EmbedError::Config {
        path: path.clone(),
        source,
    })?;
    match &config.model_type {
        Some(t) if t != "bert" => Err(EmbedError::UnsupportedArchitecture {
            path,
            model_type: t.clone(),
        }),
        _ => Ok(config),
    }
}

/// The tokenizer with padding off (batches are padded here, to their longest text) and
/// truncation at `max_tokens`. Shipped tokenizer.json files may force other settings: MiniLM's
/// pads every text to 128 tokens and truncates at 128.
fn load_tokenizer(path: PathBuf, max_tokens: usize) -> Result<Tokenizer, EmbedError> {
    let err = |source| EmbedError::Tokenizer {
        path: path.clone(),
        source,
    };
    let mut tokenizer = Tokenizer::from_file(&path).map_err(err)?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: max_tokens,
            ..Default::default()
        }))
        .map_err(err)?;
    Ok(tokenizer)
}

impl TextEmbedder {
    /// Loads a model folder with the default [`EmbedConfig`].
    pub fn load(model: &TextModelDir) -> Result<TextEmbedder, EmbedError> {
        TextEmbedder::load_with(model, &EmbedConfig::default())
    }

    /// Loads a model folder.
    pub fn load_with(model: &TextModelDir, cfg: &EmbedConfig) -> Result<TextEmbedder, EmbedError> {
        if model.architecture == TextArchitecture::UseM3 {
            return Ok(TextEmbedder {
                name: model.name.clone(),
                network: Network::Use(Box::new(
                    usem3::UseModel::load(&model.dir).map_err(|e| EmbedError::Use(Box::new(e)))?,
                )),
                max_tokens: model.max_tokens.max(2),
                passage_prefix: model.passage_prefix.clone(),
                query_prefix: model.query_prefix.clone(),
                pad_id: 0,
                dim: usem3::DIM,
                batch_size: cfg.batch_size.max(1),
                device: Device::Cpu,
            });
        }
        let config = read_config(model.config_path())?;
        // Positions past the table would fail inside the model; cut before that.
        let max_tokens = model.max_tokens.min(config.max_position_embeddings);
        let tokenizer = load_tokenizer(model.tokenizer_path(), max_tokens)?;
        let tokenizer_vocab = tokenizer.get_vocab_size(true);
        if tokenizer_vocab > config.vocab_size {
            return Err(EmbedError::VocabularyTooLarge {
                path: model.tokenizer_path(),
                tokenizer_vocab,
                model_vocab: config.vocab_size,
            });
        }
        let device = compute_device();
        let weights = model.weights_path();
        let weights_err = |source| EmbedError::Weights {
            path: weights.clone(),
            source,
        };
        let vb = match read_f32_safetensors(&weights).map_err(weights_err)? {
            Some(tensors) => VarBuilder::from_tensors(tensors, DType::F32, &device),
            // SAFETY: the file is memory-mapped only while candle copies it into its own
            // tensors (CPU backend); it must not be truncated meanwhile, as for any mmap.
            // Installed models are written atomically (rename), so a concurrent re-install does
            // not change the mapped file.
            None => unsafe {
                VarBuilder::from_mmaped_safetensors(
                    std::slice::from_ref(&weights),
                    DType::F32,
                    &device,
                )
            }
            .map_err(weights_err)?,
        };
        let bert = BertModel::load(vb, &config).map_err(weights_err)?;
        Ok(TextEmbedder {
            name: model.name.clone(),
            network: Network::Bert {
                model: Box::new(bert),
                tokenizer: Box::new(tokenizer),
            },
            max_tokens,
            passage_prefix: model.passage_prefix.clone(),
            query_prefix: model.query_prefix.clone(),
            pad_id: u32::try_from(config.pad_token_id).unwrap_or(0),
            dim: config.hidden_size,
            batch_size: cfg.batch_size.max(1),
            device,
        })
    }

    /// The model's name (`e5`, `minilm`, or a folder name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Length of every vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Embeds passages (turns, quotes): e5 prefixes `passage: `. One unit vector per input.
    pub fn embed_passages(&self, passages: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_with_prefix(&self.passage_prefix, passages)
    }

    /// Embeds queries (theme names, search terms): e5 prefixes `query: `.
    pub fn embed_queries(&self, queries: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_with_prefix(&self.query_prefix, queries)
    }

    /// Number of tokens the model sees for a passage, prefix and special tokens included, after
    /// truncation.
    pub fn passage_tokens(&self, passage: &str) -> Result<usize, EmbedError> {
        Ok(self.tokenize(&self.passage_prefix, &[passage])?[0].len())
    }

    fn tokenize(&self, prefix: &str, texts: &[&str]) -> Result<Vec<Vec<u32>>, EmbedError> {
        let tokenizer = match &self.network {
            Network::Bert { tokenizer, .. } => tokenizer,
            Network::Use(model) => {
                // Cut at the end as the BERT tokenizers do, keeping `</s>`.
                return Ok(texts
                    .iter()
                    .map(|text| {
                        let mut ids = model.tokenize(&format!("{prefix}{text}"));
                        if ids.len() > self.max_tokens {
                            let eos = ids[ids.len() - 1];
                            ids.truncate(self.max_tokens - 1);
                            ids.push(eos);
                        }
                        ids
                    })
                    .collect());
            }
        };
        texts
            .iter()
            .enumerate()
            .map(|(index, text)| {
                tokenizer
                    .encode(format!("{prefix}{text}"), true)
                    .map(|e| e.get_ids().to_vec())
                    .map_err(|source| EmbedError::Tokenize {
                        model: self.name.clone(),
                        index,
                        source,
                    })
            })
            .collect()
    }

    fn embed_with_prefix(&self, prefix: &str, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let ids = self.tokenize(prefix, texts)?;
        // Batches of similar length waste little on padding; the stable sort keeps ties in input
        // order, so batching is the same on every run.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let batches: Vec<&[usize]> = order.chunks(self.batch_size).collect();
        // Batches run side by side, one per core: candle runs the element-wise half of a
        // forward pass (GELU, softmax, norms) on the calling thread, and its matrix products
        // on these short rows keep a second core barely busy (1 h of Spanish, 359 passages:
        // 14.5 s wall for 15.3 CPU-s on 2 cores). A batch's rows are the same whichever
        // thread runs it, so the vectors are too.
        let vectors: Vec<Vec<Vec<f32>>> = batches
            .par_iter()
            .map(|batch| {
                let rows: Vec<&[u32]> = batch.iter().map(|&i| ids[i].as_slice()).collect();
                self.forward(&rows).map_err(|source| EmbedError::Inference {
                    model: self.name.clone(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        let mut out = vec![Vec::new(); ids.len()];
        for (batch, batch_vectors) in batches.iter().zip(vectors) {
            for (&i, v) in batch.iter().zip(batch_vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// One forward pass over token id rows (padded here to the longest), mean-pooled over each
    /// row's real tokens and L2-normalised.
    fn forward(&self, rows: &[&[u32]]) -> candle_core::Result<Vec<Vec<f32>>> {
        let model = match &self.network {
            Network::Bert { model, .. } => model,
            Network::Use(model) => return rows.iter().map(|r| model.embed_ids(r)).collect(),
        };
        let width = rows.iter().map(|r| r.len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(rows.len() * width);
        let mut mask = Vec::with_capacity(rows.len() * width);
        for row in rows {
            ids.extend_from_slice(row);
            ids.extend(std::iter::repeat_n(self.pad_id, width - row.len()));
            mask.extend(std::iter::repeat_n(1u32, row.len()));
            mask.extend(std::iter::repeat_n(0u32, width - row.len()));
        }
        let shape = (rows.len(), width);
        let ids = Tensor::from_vec(ids, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let token_types = ids.zeros_like()?;
        let hidden = model.forward(&ids, &token_types, Some(&mask))?;
        let hidden = hidden.to_vec3::<f32>()?;
        Ok(hidden
            .iter()
            .zip(rows)
            .map(|(states, row)| mean_pool_normalized(&states[..row.len()]))
            .collect())
    }
}

/// Bytes read at a time by [`read_f32_safetensors`].
const READ_BLOCK_BYTES: usize = 1 << 20;
/// Largest safetensors header accepted (the format's own limit).
const MAX_SAFETENSORS_HEADER: usize = 100_000_000;

/// Every tensor of a safetensors file stored as F32, read into memory block by block; `None`
/// when some tensor has another type (candle's memory-mapped loader converts those). Why not
/// that loader for F32 too: it copies each tensor out of a map of the file, so while a model
/// loads, its weights are resident twice (e5-small: 2 × 470 MB, which was the peak of a whole
/// `run`); read this way only the tensors are.
fn read_f32_safetensors(
    path: &std::path::Path,
) -> candle_core::Result<Option<std::collections::HashMap<String, Tensor>>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes)?;
    let header_len = usize::try_from(u64::from_le_bytes(len_bytes))
        .ok()
        .filter(|&n| n <= MAX_SAFETENSORS_HEADER)
        .ok_or_else(|| candle_core::Error::msg("not a safetensors file (header length)"))?;
    let mut header = vec![0u8; header_len];
    file.read_exact(&mut header)?;
    let metadata: safetensors::tensor::Metadata =
        serde_json::from_slice(&header).map_err(candle_core::Error::wrap)?;
    let data_start = 8 + header_len;
    if (data_start + metadata.data_len()) as u64 != file.metadata()?.len() {
        return Err(candle_core::Error::msg(
            "the file's size does not match its header (cut off or damaged)",
        ));
    }
    let names = metadata.offset_keys();
    let infos: Vec<&safetensors::tensor::TensorInfo> =
        names.iter().filter_map(|n| metadata.info(n)).collect();
    if infos.iter().any(|i| i.dtype != safetensors::Dtype::F32) {
        return Ok(None);
    }
    let mut block = vec![0u8; READ_BLOCK_BYTES];
    let mut tensors = std::collections::HashMap::with_capacity(names.len());
    for (name, info) in names.into_iter().zip(infos) {
        let (begin, end) = info.data_offsets;
        file.seek(SeekFrom::Start((data_start + begin) as u64))?;
        let mut values = Vec::with_capacity((end - begin) / 4);
        let mut left = end - begin;
        while left > 0 {
            let bytes = &mut block[..left.min(READ_BLOCK_BYTES)];
            file.read_exact(bytes)?;
            values.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
            left -= bytes.len();
        }
        tensors.insert(
            name,
            Tensor::from_vec(values, info.shape.as_slice(), &Device::Cpu)?,
        );
    }
    Ok(Some(tensors))
}

/// Smallest norm divided by, as in sentence-transformers (`F.normalize`, eps 1e-12): an all-zero
/// mean stays zero instead of becoming NaN.
const NORM_EPS: f32 = 1e-12;

/// The mean of `states` (one hidden vector per real token), scaled to unit length.
fn mean_pool_normalized(states: &[Vec<f32>]) -> Vec<f32> {
    let dim = states.first().map_or(0, Vec::len);
    let mut mean = vec![0f32; dim];
    for state in states {
        for (m, x) in mean.iter_mut().zip(state) {
            *m += x;
        }
    }
    let count = states.len().max(1) as f32;
    mean.iter_mut().for_each(|m| *m /= count);
    let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt().max(NORM_EPS);
    mean.iter_mut().for_each(|m| *m /= norm);
    mean
}

/// Cosine similarity of two unit vectors (their dot product); 0 for vectors of different length.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The first GPU when built with the `cuda` or `metal` feature and one is present; else the CPU.
fn compute_device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::new_cuda(0) {
        return d;
    }
    #[cfg(feature = "metal")]
    if let Ok(d) = Device::new_metal(0) {
        return d;
    }
    Device::Cpu
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file with a 2×3 and a 4-element tensor of `dtype` (values 0.5, 1.5, …).
    fn write_safetensors(dir: &std::path::Path, dtype: DType) -> std::path::PathBuf {
        let path = dir.join("model.safetensors");
        let values: Vec<f32> = (0..10).map(|i| i as f32 + 0.5).collect();
        let a = Tensor::from_vec(values[..6].to_vec(), (2, 3), &Device::Cpu).unwrap();
        let b = Tensor::from_vec(values[6..].to_vec(), 4, &Device::Cpu).unwrap();
        let tensors = std::collections::HashMap::from([
            ("layer.weight".to_string(), a.to_dtype(dtype).unwrap()),
            ("layer.bias".to_string(), b.to_dtype(dtype).unwrap()),
        ]);
        candle_core::safetensors::save(&tensors, &path).unwrap();
        path
    }

    #[test]
    fn f32_weights_are_read_as_candle_loads_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_safetensors(dir.path(), DType::F32);
        let read = read_f32_safetensors(&path).unwrap().expect("all F32");
        let loaded = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        assert_eq!(read.len(), 2);
        for (name, tensor) in &loaded {
            let ours = &read[name];
            assert_eq!(ours.dims(), tensor.dims(), "{name}");
            let (ours, theirs) = (ours.flatten_all().unwrap(), tensor.flatten_all().unwrap());
            assert_eq!(
                ours.to_vec1::<f32>().unwrap(),
                theirs.to_vec1::<f32>().unwrap(),
                "{name}"
            );
        }
    }

    #[test]
    fn other_weight_types_are_left_to_candle_and_cut_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_safetensors(dir.path(), DType::F16);
        assert!(read_f32_safetensors(&path).unwrap().is_none());
        let path = write_safetensors(dir.path(), DType::F32);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        let err = read_f32_safetensors(&path).unwrap_err().to_string();
        assert!(err.contains("does not match its header"), "{err}");
        std::fs::write(&path, b"not a model").unwrap();
        assert!(read_f32_safetensors(&path).is_err());
    }

    #[test]
    fn mean_pool_averages_tokens_then_normalises() {
        let v = mean_pool_normalized(&[vec![1.0, 0.0], vec![3.0, 4.0]]);
        // mean (2, 2) → (1/√2, 1/√2)
        let expected = std::f32::consts::FRAC_1_SQRT_2;
        assert!(
            (v[0] - expected).abs() < 1e-7 && (v[1] - expected).abs() < 1e-7,
            "{v:?}"
        );
        assert_eq!(mean_pool_normalized(&[vec![0.0, 0.0]]), [0.0, 0.0]);
    }

    #[test]
    fn cosine_is_the_dot_product_of_unit_vectors() {
        assert_eq!(cosine(&[0.6, 0.8], &[0.6, 0.8]), 1.0);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 1.0]), 0.0);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0);
    }
}
