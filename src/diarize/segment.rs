//! pyannote segmentation-3.0 (PyanNet, MIT) in candle: raw 16 kHz audio in 10 s chunks →
//! per 16.875 ms frame, log-probabilities of 7 "powerset" classes (nobody; speaker 1, 2 or 3
//! alone; two of them at once). The speakers are local to the chunk: speaker 1 of one chunk
//! need not be speaker 1 of the next (see [`super::pyannote`] for how they are joined).
//!
//! Network: instance-normalised waveform → SincNet (80 parametric band-pass filters of 251
//! taps, stride 10, then two 5-tap convolutions, each stage max-pooled by 3, instance-normalised
//! and leaky-ReLU'd) → 4 bidirectional LSTM layers (128 per direction) → 2 linear layers →
//! 7 classes, log-softmax. Checked against the numpy prototype on a real AMI chunk
//! (`tests/segmentation.rs`).
//!
//! Promises: a chunk's output depends only on its own samples (to float rounding where, in
//! onnxruntime, chunks of one recording share the SincNet convolution:
//! [`Segmenter::log_probs_in_recording`]); shorter input is zero-padded to 10 s (as pyannote
//! pads the last chunk); deterministic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{D, Device, Tensor};

use super::DiarizeError;

/// Samples per chunk (10 s at 16 kHz).
pub const CHUNK_SAMPLES: usize = 160_000;
/// Output frames per chunk.
pub const CHUNK_FRAMES: usize = 589;
/// Samples between the starts of consecutive output frames (16.875 ms).
pub const FRAME_STEP_SAMPLES: usize = 270;
/// Samples each output frame sees (its receptive field, 61.9375 ms).
pub const FRAME_SPAN_SAMPLES: usize = 991;
/// Powerset classes: which local speakers (bits 0–2) each class stands for.
pub const POWERSET: [u8; 7] = [0b000, 0b001, 0b010, 0b100, 0b011, 0b101, 0b110];
/// Local speakers per chunk.
pub const LOCAL_SPEAKERS: usize = 3;

const SAMPLE_RATE: f64 = 16_000.0;
/// The SincNet convolution's stride and taps, and its output frames per chunk.
pub const SINC_STRIDE: usize = 10;
const SINC_TAPS: usize = 251;
const SINC_FILTERS: usize = 80;
const SINC_FRAMES: usize = (CHUNK_SAMPLES - SINC_TAPS) / SINC_STRIDE + 1;
/// Output frames of the shared SincNet convolution per onnxruntime call (40 000 samples).
const CONV_BLOCK_FRAMES: usize = 4_000;
/// Chunks per call of the network after the shared convolution: onnxruntime's LSTM then steps
/// them together, a matrix product per step instead of a vector product (10 min of Spanish,
/// 1-thread sessions on 2 cores: 12.8 CPU-s with 1, 9.4 with 4 or 6, 10.4–11.3 with 8 or 16).
const AFTER_SINC_BATCH: usize = 4;
/// Chunks per candle forward pass (the recurrence steps them together).
const CANDLE_BATCH: usize = 4;
const LSTM_LAYERS: usize = 4;
const HIDDEN: usize = 128;
const EPS: f64 = 1e-5;

struct Norm {
    weight: Tensor,
    bias: Tensor,
}

struct Conv {
    weight: Tensor,
    bias: Tensor,
}

/// One direction of one LSTM layer: the input projection runs in candle; the recurrence in
/// plain Rust (a 128 × 512 matrix-vector product per step, where candle's per-op overhead
/// would dominate).
struct LstmDirection {
    /// `(in, 512)`: the input weights, transposed for `x @ w`.
    w_ih_t: Tensor,
    /// `b_ih + b_hh`.
    bias: Tensor,
    /// `(512, 128)` row-major.
    w_hh: Vec<f32>,
}

struct Linear {
    weight_t: Tensor,
    bias: Tensor,
}

/// The segmentation network, loaded once and shared (`Send + Sync`).
pub struct Segmenter {
    wav_norm: Norm,
    /// `(80, 1, 251)` band-pass filters computed from the learnt cut-off frequencies.
    sinc: Tensor,
    norms: [Norm; 3],
    convs: [Conv; 2],
    lstm: Vec<[LstmDirection; 2]>,
    linear: [Linear; 2],
    classifier: Linear,
    /// The same network in onnxruntime, when its library is installed beside the model.
    ort: Option<OrtSegmentation>,
    path: PathBuf,
    sha256: String,
}

impl std::fmt::Debug for Segmenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segmenter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

struct Weights<'a> {
    tensors: HashMap<String, Tensor>,
    path: &'a Path,
}

impl Weights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor, DiarizeError> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| self.bad(name, "is missing"))?;
        if t.dims() != shape {
            return Err(self.bad(name, "has the wrong shape"));
        }
        Ok(t.clone())
    }

    fn bad(&self, tensor: &str, problem: &str) -> DiarizeError {
        DiarizeError::SegmentationModel {
            path: self.path.to_path_buf(),
            problem: format!("tensor `{tensor}` {problem}"),
        }
    }

    fn vec(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, DiarizeError> {
        self.get(name, shape)?
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| self.bad(name, &format!("is unreadable ({e})")))
    }

    fn norm(&self, prefix: &str, channels: usize) -> Result<Norm, DiarizeError> {
        let col = |t: Tensor| {
            t.reshape((1, channels, 1))
                .map_err(|e| self.bad(prefix, &e.to_string()))
        };
        Ok(Norm {
            weight: col(self.get(&format!("{prefix}.weight"), &[channels])?)?,
            bias: col(self.get(&format!("{prefix}.bias"), &[channels])?)?,
        })
    }

    fn conv(&self, prefix: &str, out: usize, inp: usize) -> Result<Conv, DiarizeError> {
        Ok(Conv {
            weight: self.get(&format!("{prefix}.weight"), &[out, inp, 5])?,
            bias: self
                .get(&format!("{prefix}.bias"), &[out])?
                .reshape((1, out, 1))
                .map_err(|e| self.bad(prefix, &e.to_string()))?,
        })
    }

    fn linear(&self, prefix: &str, out: usize, inp: usize) -> Result<Linear, DiarizeError> {
        let err = |e: candle_core::Error| self.bad(prefix, &e.to_string());
        Ok(Linear {
            weight_t: self
                .get(&format!("{prefix}.weight"), &[out, inp])?
                .t()
                .and_then(|t| t.contiguous())
                .map_err(err)?,
            bias: self.get(&format!("{prefix}.bias"), &[out])?,
        })
    }

    fn lstm(&self, layer: usize, reverse: bool) -> Result<LstmDirection, DiarizeError> {
        let inp = if layer == 0 { 60 } else { 2 * HIDDEN };
        let sfx = if reverse { "_reverse" } else { "" };
        let name = |w: &str| format!("lstm.{w}_l{layer}{sfx}");
        let err = |e: candle_core::Error| self.bad(&name("weight_ih"), &e.to_string());
        let gates = 4 * HIDDEN;
        let w_ih_t = self
            .get(&name("weight_ih"), &[gates, inp])?
            .t()
            .and_then(|t| t.contiguous())
            .map_err(err)?;
        let bias = (self.get(&name("bias_ih"), &[gates])?
            + self.get(&name("bias_hh"), &[gates])?)
        .map_err(err)?;
        Ok(LstmDirection {
            w_ih_t,
            bias,
            w_hh: self.vec(&name("weight_hh"), &[gates, HIDDEN])?,
        })
    }

    /// SincNet's band-pass filters (pyannote's `ParamSincFB`): 40 cosine then 40 sine filters.
    fn sinc_filters(&self) -> Result<Tensor, DiarizeError> {
        let p = "sincnet.conv1d.0.filterbank";
        let low_hz = self.vec(&format!("{p}.low_hz_"), &[40, 1])?;
        let band_hz = self.vec(&format!("{p}.band_hz_"), &[40, 1])?;
        let window = self.vec(&format!("{p}.window_"), &[125])?;
        let n = self.vec(&format!("{p}.n_"), &[1, 125])?;
        // In f32 step by step as pyannote (torch, float32) computes them: f64 here moved the
        // output log-probabilities by ~1e-3 against the float32 reference.
        let (min_low, min_band, nyquist) = (50f32, 50f32, (SAMPLE_RATE / 2.0) as f32);
        let half = window.len();
        let taps = 2 * half + 1;
        let mut filters = vec![0f32; 80 * taps];
        for f in 0..40 {
            let low = min_low + low_hz[f].abs();
            let high = (low + min_band + band_hz[f].abs()).clamp(min_low, nyquist);
            let band = high - low;
            for (kind, row) in [(0, f), (1, 40 + f)] {
                let out = &mut filters[row * taps..(row + 1) * taps];
                for k in 0..half {
                    let (nk, wk) = (n[k], window[k]);
                    let (ft_low, ft_high) = (low * nk, high * nk);
                    let left = if kind == 0 {
                        (ft_high.sin() - ft_low.sin()) / (nk / 2.0) * wk
                    } else {
                        (ft_low.cos() - ft_high.cos()) / (nk / 2.0) * wk
                    };
                    let mirrored = if kind == 0 { left } else { -left };
                    out[k] = left / (2.0 * band);
                    out[taps - 1 - k] = mirrored / (2.0 * band);
                }
                out[half] = if kind == 0 { 1.0 } else { 0.0 };
            }
        }
        Tensor::from_vec(filters, (80, 1, taps), &Device::Cpu)
            .map_err(|e| self.bad(p, &e.to_string()))
    }
}

/// The network in onnxruntime: whole, one chunk per call ([`Segmenter::log_probs`]), and in two
/// parts for chunks of one recording ([`Segmenter::log_probs_in_recording`]).
///
/// The parts rest on the SincNet convolution being linear: the network starts by
/// instance-normalising a chunk's waveform x (mean μ, population variance σ², learnt scale γ
/// and shift β) and convolving it with filters h, and h ∗ (a·x + b) = a·(h ∗ x) + b·Σh with
/// a = γ / √(σ² + ε), b = β − a·μ. So h ∗ x is computed once over the recording, and each
/// chunk takes its stretch of it through its own a and b.
struct OrtSegmentation {
    whole: super::ort_backend::OrtNet,
    sinc_conv: super::ort_backend::OrtNet,
    after_sinc: super::ort_backend::OrtNet,
    /// Per filter, the sum of its taps (the filter's response to a constant 1).
    tap_sums: Vec<f32>,
    /// γ and β of the waveform's instance norm.
    wav_scale: f64,
    wav_shift: f64,
}

/// The network's ONNX graphs in onnxruntime sessions.
fn ort_segmenter(
    w: &Weights,
    sinc: &Tensor,
    library: &Path,
) -> Result<OrtSegmentation, DiarizeError> {
    use super::ort_backend::OrtNet;
    use super::segment_onnx::{after_sinc_onnx, segmentation_onnx, sinc_conv_onnx};
    let data = sinc
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| w.bad("sinc filters", &e.to_string()))?;
    let tap_sums = data
        .chunks_exact(SINC_TAPS)
        .map(|taps| taps.iter().map(|&t| f64::from(t)).sum::<f64>() as f32)
        .collect();
    let sinc = super::campplus_onnx::Array {
        data,
        dims: sinc.dims().iter().map(|&d| d as i64).collect(),
    };
    let scalar = |name: &str| -> Result<f64, DiarizeError> { Ok(f64::from(w.vec(name, &[1])?[0])) };
    Ok(OrtSegmentation {
        whole: OrtNet::new(
            library,
            segmentation_onnx(&w.tensors, sinc.clone(), w.path)?,
            ("waveform", "logprobs"),
        )?,
        sinc_conv: OrtNet::new(library, sinc_conv_onnx(sinc), ("waveform", "filtered"))?,
        after_sinc: OrtNet::new(
            library,
            after_sinc_onnx(&w.tensors, w.path)?,
            ("filtered", "logprobs"),
        )?,
        tap_sums,
        wav_scale: scalar("sincnet.wav_norm1d.weight")?,
        wav_shift: scalar("sincnet.wav_norm1d.bias")?,
    })
}

impl OrtSegmentation {
    /// Log-probabilities of the chunks of `samples` at `starts` (multiples of [`SINC_STRIDE`]),
    /// the SincNet convolution computed once over the stretch they cover.
    fn log_probs_in_recording(
        &self,
        samples: &[f32],
        starts: &[usize],
    ) -> Result<Vec<Vec<[f32; 7]>>, DiarizeError> {
        use rayon::prelude::*;
        let (Some(&first), Some(&last)) = (starts.iter().min(), starts.iter().max()) else {
            return Ok(Vec::new());
        };
        let span_frames = (last - first) / SINC_STRIDE + SINC_FRAMES;
        let blocks: Vec<usize> = (0..span_frames).step_by(CONV_BLOCK_FRAMES).collect();
        // Past the end of the recording the audio is zeros, as a short last chunk is padded.
        let filtered = blocks
            .par_iter()
            .map(|&b| {
                let frames = CONV_BLOCK_FRAMES.min(span_frames - b);
                let len = (frames - 1) * SINC_STRIDE + SINC_TAPS;
                let wav = zero_padded(samples, first + b * SINC_STRIDE, len);
                self.sinc_conv.run(wav, [1, 1, len])
            })
            .collect::<Result<Vec<_>, _>>()?;
        let batches: Vec<&[usize]> = starts.chunks(AFTER_SINC_BATCH).collect();
        let out = batches
            .par_iter()
            .map(|batch| {
                let mut input = Vec::with_capacity(batch.len() * SINC_FILTERS * SINC_FRAMES);
                for &start in *batch {
                    let (a, b) = self.wav_affine(&zero_padded(samples, start, CHUNK_SAMPLES));
                    let offset = (start - first) / SINC_STRIDE;
                    for (f, &sum) in self.tap_sums.iter().enumerate() {
                        let shift = b * sum;
                        append_frames(&mut input, &filtered, span_frames, f, offset, |c| {
                            a * c + shift
                        });
                    }
                }
                let shape = [batch.len(), SINC_FILTERS, SINC_FRAMES];
                self.after_sinc.run(input, shape)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(out
            .iter()
            .flat_map(|flat| flat.chunks_exact(CHUNK_FRAMES * 7))
            .map(|chunk| {
                chunk
                    .chunks_exact(7)
                    .map(|c| std::array::from_fn(|k| c[k]))
                    .collect()
            })
            .collect())
    }

    /// The waveform instance norm of one (padded) chunk as a·x + b: a = γ / √(σ² + ε),
    /// b = β − a·μ, with the population variance (as torch and ONNX), in f64.
    fn wav_affine(&self, chunk: &[f32]) -> (f32, f32) {
        let n = chunk.len() as f64;
        let mean = chunk.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = chunk
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n;
        let eps = f64::from(super::segment_onnx::INSTANCE_NORM_EPS);
        let a = self.wav_scale / (var + eps).sqrt();
        (a as f32, (self.wav_shift - a * mean) as f32)
    }
}

/// `len` samples of `samples` from `from`, zeros past its end.
fn zero_padded(samples: &[f32], from: usize, len: usize) -> Vec<f32> {
    let mut out = vec![0f32; len];
    if let Some(rest) = samples.get(from..) {
        let have = rest.len().min(len);
        out[..have].copy_from_slice(&rest[..have]);
    }
    out
}

/// Appends filter `f`'s frames `offset..offset + SINC_FRAMES` of the shared convolution
/// (blocks of [`CONV_BLOCK_FRAMES`], each `(80, frames)`, over `span_frames` frames in all),
/// each through `map`.
fn append_frames(
    out: &mut Vec<f32>,
    blocks: &[Vec<f32>],
    span_frames: usize,
    f: usize,
    offset: usize,
    map: impl Fn(f32) -> f32,
) {
    let mut frame = offset;
    while frame < offset + SINC_FRAMES {
        let (block, within) = (frame / CONV_BLOCK_FRAMES, frame % CONV_BLOCK_FRAMES);
        let block_frames = CONV_BLOCK_FRAMES.min(span_frames - block * CONV_BLOCK_FRAMES);
        let take = (block_frames - within).min(offset + SINC_FRAMES - frame);
        let row = &blocks[block][f * block_frames..(f + 1) * block_frames];
        out.extend(row[within..within + take].iter().map(|&c| map(c)));
        frame += take;
    }
}

impl Segmenter {
    /// Loads the converted model (`models::resolve_segmentation` finds it), checking every
    /// tensor the network needs. As the speaker model, it runs in onnxruntime when its library
    /// is installed beside the model, else in candle.
    pub fn load(path: &Path) -> Result<Self, DiarizeError> {
        let library = path.parent().and_then(crate::models::installed_onnxruntime);
        Self::load_with(path, library.as_deref())
    }

    /// Loads the model to run in candle only (the checked reference).
    pub fn load_candle(path: &Path) -> Result<Self, DiarizeError> {
        Self::load_with(path, None)
    }

    /// Which implementation runs the network: `onnxruntime` or `candle`.
    pub fn backend(&self) -> &'static str {
        if self.ort.is_some() {
            "onnxruntime"
        } else {
            "candle"
        }
    }

    fn load_with(path: &Path, onnxruntime: Option<&Path>) -> Result<Self, DiarizeError> {
        let unreadable = |problem: String| DiarizeError::SegmentationModel {
            path: path.to_path_buf(),
            problem,
        };
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| unreadable(format!("not readable as safetensors ({e})")))?;
        let sha256 = crate::models::sha256_file(path).map_err(|e| unreadable(e.to_string()))?;
        let w = Weights { tensors, path };
        let sinc = w.sinc_filters()?;
        let ort =
            super::ort_backend::ort_or_fallback(onnxruntime, "segmentation model", |library| {
                ort_segmenter(&w, &sinc, library)
            });
        let mut lstm = Vec::with_capacity(LSTM_LAYERS);
        for layer in 0..LSTM_LAYERS {
            lstm.push([w.lstm(layer, false)?, w.lstm(layer, true)?]);
        }
        Ok(Segmenter {
            wav_norm: w.norm("sincnet.wav_norm1d", 1)?,
            sinc,
            norms: [
                w.norm("sincnet.norm1d.0", 80)?,
                w.norm("sincnet.norm1d.1", 60)?,
                w.norm("sincnet.norm1d.2", 60)?,
            ],
            convs: [
                w.conv("sincnet.conv1d.1", 60, 80)?,
                w.conv("sincnet.conv1d.2", 60, 60)?,
            ],
            lstm,
            linear: [
                w.linear("linear.0", 128, 256)?,
                w.linear("linear.1", 128, 128)?,
            ],
            classifier: w.linear("classifier", 7, 128)?,
            ort,
            path: path.to_path_buf(),
            sha256,
        })
    }

    /// SHA-256 (hex) of the model file.
    pub fn model_sha256(&self) -> &str {
        &self.sha256
    }

    /// Log-probabilities `[chunk][frame][class]` ([`CHUNK_FRAMES`] × 7 per chunk) of chunks of
    /// at most [`CHUNK_SAMPLES`] samples each (shorter ones are zero-padded).
    pub fn log_probs(&self, chunks: &[&[f32]]) -> Result<Vec<Vec<[f32; 7]>>, DiarizeError> {
        if chunks.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(ort) = &self.ort {
            // One chunk per call, the chunks spread over the workers' sessions.
            use rayon::prelude::*;
            return chunks
                .par_iter()
                .map(|chunk| {
                    let wav = zero_padded(chunk, 0, CHUNK_SAMPLES);
                    let out = ort.whole.run(wav, [1, 1, CHUNK_SAMPLES])?;
                    Ok(out
                        .chunks_exact(7)
                        .map(|c| std::array::from_fn(|k| c[k]))
                        .collect())
                })
                .collect();
        }
        let mut flat = vec![0f32; chunks.len() * CHUNK_SAMPLES];
        for (dst, src) in flat.chunks_exact_mut(CHUNK_SAMPLES).zip(chunks) {
            let n = src.len().min(CHUNK_SAMPLES);
            dst[..n].copy_from_slice(&src[..n]);
        }
        let x = Tensor::from_vec(flat, (chunks.len(), 1, CHUNK_SAMPLES), &Device::Cpu)
            .and_then(|x| self.forward(&x))
            .and_then(|y| y.to_vec3::<f32>())
            .map_err(|source| DiarizeError::Inference { source })?;
        Ok(x.into_iter()
            .map(|frames| {
                frames
                    .into_iter()
                    .map(|c| std::array::from_fn(|k| c[k]))
                    .collect()
            })
            .collect())
    }

    /// Log-probabilities of the chunks of `samples` that start at `starts` (each
    /// [`CHUNK_SAMPLES`] long, zero-padded past the end), in the order of `starts`: those of
    /// [`Self::log_probs`] on the same chunks, to float rounding. In onnxruntime, with starts
    /// on multiples of [`SINC_STRIDE`], overlapping chunks share one SincNet convolution (the
    /// network's first layer; a quarter of its work per chunk), still each chunk's output
    /// depending on its own samples only.
    pub fn log_probs_in_recording(
        &self,
        samples: &[f32],
        starts: &[usize],
    ) -> Result<Vec<Vec<[f32; 7]>>, DiarizeError> {
        if let Some(ort) = &self.ort
            && starts.iter().all(|s| s % SINC_STRIDE == 0)
        {
            return ort.log_probs_in_recording(samples, starts);
        }
        let mut out = Vec::with_capacity(starts.len());
        for batch in starts.chunks(CANDLE_BATCH) {
            let chunks: Vec<&[f32]> = batch
                .iter()
                .map(|&s| &samples[s.min(samples.len())..(s + CHUNK_SAMPLES).min(samples.len())])
                .collect();
            out.extend(self.log_probs(&chunks)?);
        }
        Ok(out)
    }

    /// `(B, 1, samples)` → `(B, frames, 7)` log-probabilities.
    fn forward(&self, wav: &Tensor) -> candle_core::Result<Tensor> {
        let x = instance_norm(wav, &self.wav_norm)?;
        let x = x.conv1d(&self.sinc, 0, SINC_STRIDE, 1, 1)?.abs()?;
        let mut x = leaky_relu(&instance_norm(&max_pool3(&x)?, &self.norms[0])?)?;
        for (conv, norm) in self.convs.iter().zip(&self.norms[1..]) {
            let y = x
                .conv1d(&conv.weight, 0, 1, 1, 1)?
                .broadcast_add(&conv.bias)?;
            x = leaky_relu(&instance_norm(&max_pool3(&y)?, norm)?)?;
        }
        let mut h = x.transpose(1, 2)?.contiguous()?; // (B, T, 60)
        for layer in &self.lstm {
            let forward = lstm_direction(&h, &layer[0], false)?;
            let backward = lstm_direction(&h, &layer[1], true)?;
            h = Tensor::cat(&[&forward, &backward], 2)?;
        }
        for linear in &self.linear {
            h = leaky_relu(&apply(&h, linear)?)?;
        }
        candle_nn::ops::log_softmax(&apply(&h, &self.classifier)?, D::Minus1)
    }
}

fn apply(x: &Tensor, l: &Linear) -> candle_core::Result<Tensor> {
    x.broadcast_matmul(&l.weight_t)?.broadcast_add(&l.bias)
}

/// Per (batch, channel) over time, population variance, then the learnt affine.
fn instance_norm(x: &Tensor, n: &Norm) -> candle_core::Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    centred
        .broadcast_div(&(var + EPS)?.sqrt()?)?
        .broadcast_mul(&n.weight)?
        .broadcast_add(&n.bias)
}

fn leaky_relu(x: &Tensor) -> candle_core::Result<Tensor> {
    let neg = (x.minimum(0f32)? * 0.01)?;
    x.maximum(0f32)? + neg
}

/// Max over non-overlapping runs of 3 along time (a trailing remainder is dropped).
fn max_pool3(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, c, t) = x.dims3()?;
    x.narrow(2, 0, t / 3 * 3)?
        .reshape((b, c, t / 3, 3))?
        .max(D::Minus1)
}

/// All hidden states `(B, T, 128)` of one LSTM direction over `x` `(B, T, in)`; `reverse`
/// runs it from the last frame to the first (outputs stay in time order).
fn lstm_direction(x: &Tensor, dir: &LstmDirection, reverse: bool) -> candle_core::Result<Tensor> {
    let (b, t, _) = x.dims3()?;
    let gates = 4 * HIDDEN;
    let projected = x
        .broadcast_matmul(&dir.w_ih_t)?
        .broadcast_add(&dir.bias)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let mut out = vec![0f32; b * t * HIDDEN];
    // All chunks of the batch step together, so each row of the recurrent weights is read once
    // per step for all of them (the same sums in the same order as one chunk at a time).
    let mut g = vec![0f32; b * gates];
    let mut h = vec![0f32; b * HIDDEN];
    let mut c = vec![0f32; b * HIDDEN];
    for step in 0..t {
        let frame = if reverse { t - 1 - step } else { step };
        for batch in 0..b {
            let base = (batch * t + frame) * gates;
            g[batch * gates..(batch + 1) * gates].copy_from_slice(&projected[base..base + gates]);
        }
        for (r, row) in dir.w_hh.chunks_exact(HIDDEN).enumerate() {
            for (gb, hb) in g.chunks_exact_mut(gates).zip(h.chunks_exact(HIDDEN)) {
                gb[r] += dot(row, hb);
            }
        }
        for (batch, gb) in g.chunks_exact_mut(gates).enumerate() {
            // PyTorch's gate order: input, forget, cell, output.
            let (ifc, o) = gb.split_at_mut(3 * HIDDEN);
            let (i_f, cell) = ifc.split_at_mut(2 * HIDDEN);
            sigmoid_in_place(i_f);
            sigmoid_in_place(o);
            tanh_in_place(cell);
            let (i, f) = i_f.split_at(HIDDEN);
            let cb = &mut c[batch * HIDDEN..(batch + 1) * HIDDEN];
            for k in 0..HIDDEN {
                cb[k] = f[k] * cb[k] + i[k] * cell[k];
            }
            let hb = &mut h[batch * HIDDEN..(batch + 1) * HIDDEN];
            hb.copy_from_slice(cb);
            tanh_in_place(hb);
            for (hk, ok) in hb.iter_mut().zip(o.iter()) {
                *hk *= ok;
            }
            let at = (batch * t + frame) * HIDDEN;
            out[at..at + HIDDEN].copy_from_slice(hb);
        }
    }
    Tensor::from_vec(out, (b, t, HIDDEN), &Device::Cpu)
}

/// `x ← 1 / (1 + e^-x)` with [`exp_vectorisable`].
fn sigmoid_in_place(xs: &mut [f32]) {
    for x in xs {
        *x = 1.0 / (1.0 + exp_vectorisable(-*x));
    }
}

/// `x ← tanh x = 1 - 2 / (1 + e^2x)` with [`exp_vectorisable`] (absolute error ~1e-7).
fn tanh_in_place(xs: &mut [f32]) {
    for x in xs {
        *x = 1.0 - 2.0 / (1.0 + exp_vectorisable(2.0 * *x));
    }
}

/// e^x to about 2e-7 relative error, for x clamped to [-87, 88], in plain arithmetic the
/// compiler vectorises (the library `expf`/`tanhf` are scalar calls, which made the gate
/// nonlinearities a quarter of the segmentation's time): x = n ln 2 + r with |r| ≤ ln 2 / 2,
/// e^r by its degree-6 Taylor polynomial, 2^n through the exponent bits.
#[inline(always)]
fn exp_vectorisable(x: f32) -> f32 {
    // 1.5 · 2^23: adding it rounds to an integer that lands in the low mantissa bits.
    const SHIFTER: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + SHIFTER;
    let n = shifted - SHIFTER;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let n_int = shifted.to_bits().wrapping_sub(SHIFTER.to_bits()) as i32;
    let scale = f32::from_bits(((n_int + 127) as u32) << 23);
    p * scale
}

/// Dot product with 8 independent sums, so the compiler can vectorise it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectorisable_exp_sigmoid_and_tanh_match_the_library_ones() {
        let xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.01).collect();
        for &x in &xs {
            let (ours, std) = (exp_vectorisable(x), x.exp());
            assert!(
                (ours - std).abs() <= 4e-7 * std,
                "exp({x}): {ours} vs {std}"
            );
        }
        let mut sig = xs.clone();
        sigmoid_in_place(&mut sig);
        let mut th = xs.clone();
        tanh_in_place(&mut th);
        for ((&x, s), t) in xs.iter().zip(sig).zip(th) {
            assert!((s - 1.0 / (1.0 + (-x).exp())).abs() <= 2e-7, "sigmoid({x})");
            assert!((t - x.tanh()).abs() <= 3e-7, "tanh({x})");
        }
        // Far outside the clamp: finite, no overflow to infinity or NaN.
        assert!(exp_vectorisable(-1000.0) > 0.0 && exp_vectorisable(1000.0).is_finite());
    }
}
