//! Speaker embeddings: GE2E d-vectors (resemblyzer's encoder) of sliding windows over speech.
//!
//! The front end and network are resemblyzer 0.1.4's, re-implemented with candle: 16 kHz audio,
//! volume raised (never lowered) to -30 dBFS, a 40-channel power mel spectrogram (librosa Slaney
//! filters, n_fft 400 = 25 ms periodic Hann window, hop 160 = 10 ms, frames centred on their
//! time), a 3-layer LSTM of width 256, a 256 → 256 linear layer, ReLU and L2 normalisation.
//!
//! Promises:
//! - Windows lie inside speech regions: [`WINDOW_FRAMES`] frames (1.6 s, what the encoder was
//!   trained on) every `step_ms`, plus one window flush with the region's end so every part of
//!   every region is covered. A region shorter than 1.6 s gets one window of its own length
//!   ([`SpeakerWindow::is_full`] is false): the LSTM reads exactly its frames, no padding.
//! - Frame `f` is centred on sample `160 f` of the recording (10 ms); its 25 ms of context come
//!   from the recording itself (zeros only outside the recording), so a window's embedding does
//!   not depend on where the voice activity detector cut.
//! - Times are integer milliseconds on the input's timeline; windows are sorted by start.
//! - Output is deterministic: batches are formed in a fixed order and every window's result is
//!   independent of the others in its batch (sequences are left-aligned and each one's final
//!   state is taken at its own last frame).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use super::DiarizeError;
use crate::models::ge2e::{GE2E_TENSORS, HIDDEN, N_MELS};
use crate::models::mel::mel_filters;
use crate::transcript::SpeechRegion;

/// Samples per second the encoder expects.
const SAMPLE_RATE: usize = 16_000;
/// FFT size and analysis window: 25 ms.
const N_FFT: usize = 400;
/// Hop between frames: 10 ms.
const HOP: usize = 160;
/// Milliseconds per frame hop.
pub const FRAME_MS: u64 = 10;
/// Frames per full window: 1.6 s, resemblyzer's `partials_n_frames`.
pub const WINDOW_FRAMES: usize = 160;
/// resemblyzer's `audio_norm_target_dBFS`.
const TARGET_DBFS: f32 = -30.0;
/// Windows pushed through the LSTM together: large enough for efficient matrix products,
/// small enough that the layer activations stay well under 100 MB. (Running batches in
/// parallel was tried: no faster on 2 shared cores, where the matrix products already use both.)
const BATCH: usize = 64;
/// LSTM gates per unit.
const GATES: usize = 4;

/// One embedded window of speech.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerWindow {
    /// Start on the input's timeline.
    pub start_ms: u64,
    /// End on the input's timeline (exclusive).
    pub end_ms: u64,
    /// Index of the speech region it lies in.
    pub region: usize,
    /// The L2-normalised 256-dimensional d-vector.
    pub embedding: Vec<f32>,
}

impl SpeakerWindow {
    /// Whether the window has the full 1.6 s the encoder was trained on (short ones, from short
    /// regions, are noisier).
    pub fn is_full(&self) -> bool {
        self.end_ms - self.start_ms >= WINDOW_FRAMES as u64 * FRAME_MS
    }

    /// The window's centre.
    pub fn center_ms(&self) -> u64 {
        (self.start_ms + self.end_ms) / 2
    }
}

/// One LSTM layer, weights transposed for `x · W` products.
struct LstmLayer {
    /// `(input, 4·256)`.
    w_ih_t: Tensor,
    /// `(256, 4·256)`.
    w_hh_t: Tensor,
    /// `b_ih + b_hh`, `(4·256)`.
    bias: Tensor,
}

/// The GE2E speaker encoder, loaded once and shared (`Send + Sync`).
pub struct SpeakerEmbedder {
    layers: Vec<LstmLayer>,
    /// `(256, 256)`, transposed.
    linear_w_t: Tensor,
    linear_b: Tensor,
    mel: MelFrontend,
    path: PathBuf,
    sha256: String,
}

impl std::fmt::Debug for SpeakerEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeakerEmbedder")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SpeakerEmbedder {
    /// Loads the converted encoder (`models::resolve_speaker` finds it), checking every tensor's
    /// presence and shape.
    pub fn load(path: &Path) -> Result<Self, DiarizeError> {
        let tensors = candle_core::safetensors::load(path, &Device::Cpu).map_err(|source| {
            DiarizeError::ModelUnreadable {
                path: path.to_path_buf(),
                source,
            }
        })?;
        for (name, shape) in GE2E_TENSORS {
            match tensors.get(name) {
                Some(t) if t.dims() == shape && t.dtype() == DType::F32 => {}
                Some(_) => return Err(model_invalid(path, name, "has the wrong shape or type")),
                None => return Err(model_invalid(path, name, "is missing")),
            }
        }
        let sha256 =
            crate::models::sha256_file(path).map_err(|source| DiarizeError::ModelUnreadable {
                path: path.to_path_buf(),
                source: candle_core::Error::Io(source),
            })?;
        let get = |name: &str| tensors[name].clone();
        let prepare = |source| DiarizeError::ModelUnreadable {
            path: path.to_path_buf(),
            source,
        };
        let layers = (0..3)
            .map(|l| -> candle_core::Result<LstmLayer> {
                Ok(LstmLayer {
                    w_ih_t: get(&format!("lstm.weight_ih_l{l}")).t()?.contiguous()?,
                    w_hh_t: get(&format!("lstm.weight_hh_l{l}")).t()?.contiguous()?,
                    bias: (get(&format!("lstm.bias_ih_l{l}"))
                        + get(&format!("lstm.bias_hh_l{l}")))?,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(prepare)?;
        let linear_w_t = get("linear.weight")
            .t()
            .and_then(|t| t.contiguous())
            .map_err(prepare)?;
        Ok(SpeakerEmbedder {
            layers,
            linear_w_t,
            linear_b: get("linear.bias"),
            mel: MelFrontend::new(),
            path: path.to_path_buf(),
            sha256,
        })
    }

    /// SHA-256 (hex) of the model file, recorded in every diarization for provenance.
    pub fn model_sha256(&self) -> &str {
        &self.sha256
    }

    /// Embeds sliding windows over `regions` of `samples_16k` (16 kHz mono), one every `step_ms`
    /// (rounded down to whole 10 ms frames, at least one frame). Regions are clamped to the audio;
    /// empty ones are skipped.
    pub fn embed_windows(
        &self,
        samples_16k: &[f32],
        regions: &[SpeechRegion],
        step_ms: u64,
    ) -> Result<Vec<SpeakerWindow>, DiarizeError> {
        let n_frames = samples_16k.len() / HOP + 1;
        let step_frames = usize::try_from(step_ms / FRAME_MS).unwrap_or(1).max(1);
        let plans = plan_windows(regions, n_frames, step_frames);
        if plans.is_empty() {
            return Ok(Vec::new());
        }
        let gain = volume_gain(samples_16k, regions);
        let mels = self.region_mels(samples_16k, regions, &plans, gain);

        // Longest first, so each batch's sequences are nearly equal in length; the index breaks
        // ties, keeping the order (and so the output) deterministic.
        let mut order: Vec<usize> = (0..plans.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(plans[i].n_frames), i));
        let mut embeddings = vec![Vec::new(); plans.len()];
        for batch in order.chunks(BATCH) {
            let inputs: Vec<&[f32]> = batch
                .iter()
                .map(|&i| {
                    let p = &plans[i];
                    let (mel, first) = &mels[p.region];
                    let at = (p.start_frame - first) * N_MELS;
                    &mel[at..at + p.n_frames * N_MELS]
                })
                .collect();
            let out = self
                .forward(&inputs)
                .map_err(|source| DiarizeError::Inference { source })?;
            for (&i, e) in batch.iter().zip(out) {
                embeddings[i] = e;
            }
        }
        Ok(plans
            .iter()
            .zip(embeddings)
            .map(|(p, embedding)| SpeakerWindow {
                start_ms: p.start_frame as u64 * FRAME_MS,
                end_ms: (p.start_frame + p.n_frames) as u64 * FRAME_MS,
                region: p.region,
                embedding,
            })
            .collect())
    }

    /// Mel frames of each region that has windows: (frames × 40, first frame index).
    fn region_mels(
        &self,
        samples: &[f32],
        regions: &[SpeechRegion],
        plans: &[WindowPlan],
        gain: f32,
    ) -> Vec<(Vec<f32>, usize)> {
        let mut spans = vec![(usize::MAX, 0usize); regions.len()];
        for p in plans {
            let span = &mut spans[p.region];
            span.0 = span.0.min(p.start_frame);
            span.1 = span.1.max(p.start_frame + p.n_frames);
        }
        let mut scratch = self.mel.scratch();
        spans
            .into_iter()
            .map(|(first, end)| {
                if first >= end {
                    return (Vec::new(), 0);
                }
                let mut mel = Vec::with_capacity((end - first) * N_MELS);
                for frame in first..end {
                    self.mel.frame(samples, frame, gain, &mut scratch, &mut mel);
                }
                (mel, first)
            })
            .collect()
    }

    /// Runs the encoder on sequences of mel frames (each `len × 40`, sorted longest first) and
    /// returns one L2-normalised embedding per sequence.
    fn forward(&self, seqs: &[&[f32]]) -> candle_core::Result<Vec<Vec<f32>>> {
        let lens: Vec<usize> = seqs.iter().map(|s| s.len() / N_MELS).collect();
        let batch = seqs.len();
        let steps = lens.first().copied().unwrap_or(0);
        // Time-major input (steps, batch, 40); frames past a sequence's end stay zero and are
        // never read for it (see `lstm_layer`).
        let mut x = vec![0f32; steps * batch * N_MELS];
        for (b, seq) in seqs.iter().enumerate() {
            for (t, frame) in seq.chunks_exact(N_MELS).enumerate() {
                let at = (t * batch + b) * N_MELS;
                x[at..at + N_MELS].copy_from_slice(frame);
            }
        }
        let mut input_width = N_MELS;
        let mut h_final = Vec::new();
        for layer in &self.layers {
            let (out, h) = lstm_layer(layer, &x, input_width, &lens)?;
            x = out;
            h_final = h;
            input_width = HIDDEN;
        }
        let h = Tensor::from_vec(h_final, (batch, HIDDEN), &Device::Cpu)?;
        let e = h
            .matmul(&self.linear_w_t)?
            .broadcast_add(&self.linear_b)?
            .relu()?;
        let mut out = e.to_vec2::<f32>()?;
        out.iter_mut().for_each(|v| l2_normalize(v));
        Ok(out)
    }
}

fn model_invalid(path: &Path, tensor: &str, problem: &'static str) -> DiarizeError {
    DiarizeError::ModelInvalid {
        path: path.to_path_buf(),
        tensor: tensor.to_string(),
        problem,
    }
}

/// One LSTM layer over a time-major batch `x` (`steps × batch × input_width`) whose sequences
/// are sorted longest first. Returns the outputs (`steps × batch × 256`) and the hidden state of
/// each sequence after its own last frame.
///
/// At step `t` only the sequences longer than `t` (a prefix of the batch) are advanced, so a
/// finished sequence's state is frozen at its end and padding never reaches it.
fn lstm_layer(
    layer: &LstmLayer,
    x: &[f32],
    input_width: usize,
    lens: &[usize],
) -> candle_core::Result<(Vec<f32>, Vec<f32>)> {
    let batch = lens.len();
    let steps = lens.first().copied().unwrap_or(0);
    let width = GATES * HIDDEN;
    // Input projections of every step at once: one large product instead of `steps` small ones.
    let xp = Tensor::from_slice(x, (steps * batch, input_width), &Device::Cpu)?
        .matmul(&layer.w_ih_t)?
        .broadcast_add(&layer.bias)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let mut h = vec![0f32; batch * HIDDEN];
    let mut c = vec![0f32; batch * HIDDEN];
    let mut out = vec![0f32; steps * batch * HIDDEN];
    for t in 0..steps {
        let active = lens.iter().take_while(|&&l| l > t).count();
        let mut gates = Tensor::from_slice(&h[..active * HIDDEN], (active, HIDDEN), &Device::Cpu)?
            .matmul(&layer.w_hh_t)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let mut cell_tanh = [0f32; HIDDEN];
        for b in 0..active {
            let pre = &xp[(t * batch + b) * width..][..width];
            let z = &mut gates[b * width..][..width];
            z.iter_mut().zip(pre).for_each(|(z, p)| *z += p);
            // PyTorch gate order: input, forget, cell, output.
            let (input_forget, rest) = z.split_at_mut(2 * HIDDEN);
            let (cell, output) = rest.split_at_mut(HIDDEN);
            sigmoid_in_place(input_forget);
            tanh_in_place(cell);
            sigmoid_in_place(output);
            let (input, forget) = input_forget.split_at(HIDDEN);
            let cb = &mut c[b * HIDDEN..][..HIDDEN];
            for j in 0..HIDDEN {
                cb[j] = forget[j] * cb[j] + input[j] * cell[j];
            }
            cell_tanh.copy_from_slice(cb);
            tanh_in_place(&mut cell_tanh);
            let hb = &mut h[b * HIDDEN..][..HIDDEN];
            for j in 0..HIDDEN {
                hb[j] = output[j] * cell_tanh[j];
            }
            out[(t * batch + b) * HIDDEN..][..HIDDEN].copy_from_slice(hb);
        }
    }
    Ok((out, h))
}

/// `tanh` of every element, by Eigen's rational approximation (max error ~1e-7 absolute): a
/// branch-free loop the compiler vectorises. libm's scalar `tanhf`/`expf` took as long as all
/// the matrix products together.
fn tanh_in_place(v: &mut [f32]) {
    // Beyond this, tanh is ±1 in f32.
    const CLAMP: f32 = 7.905_311;
    const A: [f32; 7] = [
        4.893_524_6e-3,
        6.372_619_3e-4,
        1.485_722_4e-5,
        5.122_297e-8,
        -8.604_672e-11,
        2.000_188e-13,
        -2.760_768_5e-16,
    ];
    const B: [f32; 4] = [4.893_525e-3, 2.268_434_6e-3, 1.185_347_1e-4, 1.198_258_4e-6];
    for x in v.iter_mut() {
        let xc = x.clamp(-CLAMP, CLAMP);
        let x2 = xc * xc;
        let mut p = A[6];
        for a in A[..6].iter().rev() {
            p = p * x2 + a;
        }
        let mut q = B[3];
        for b in B[..3].iter().rev() {
            q = q * x2 + b;
        }
        *x = xc * p / q;
    }
}

/// The logistic function of every element: `σ(x) = (1 + tanh(x / 2)) / 2`.
fn sigmoid_in_place(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x *= 0.5);
    tanh_in_place(v);
    v.iter_mut().for_each(|x| *x = 0.5 * *x + 0.5);
}

/// Scales `v` to unit length (left as is when it is all zeros).
pub(crate) fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Where one window lies, in frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WindowPlan {
    region: usize,
    start_frame: usize,
    n_frames: usize,
}

/// Windows of each region: full windows every `step` frames, the last one flush with the end;
/// a region shorter than a full window gets one window of its own length.
fn plan_windows(regions: &[SpeechRegion], n_frames: usize, step: usize) -> Vec<WindowPlan> {
    let mut plans = Vec::new();
    for (region, r) in regions.iter().enumerate() {
        let first = usize::try_from(r.start_ms / FRAME_MS).unwrap_or(usize::MAX);
        let end = usize::try_from(r.end_ms.div_ceil(FRAME_MS))
            .unwrap_or(usize::MAX)
            .min(n_frames);
        if first >= end {
            continue;
        }
        let len = end - first;
        if len <= WINDOW_FRAMES {
            plans.push(WindowPlan {
                region,
                start_frame: first,
                n_frames: len,
            });
            continue;
        }
        let mut start = first;
        while start + WINDOW_FRAMES <= end {
            plans.push(WindowPlan {
                region,
                start_frame: start,
                n_frames: WINDOW_FRAMES,
            });
            start += step;
        }
        let last_start = end - WINDOW_FRAMES;
        if plans.last().is_some_and(|p| p.start_frame < last_start) {
            plans.push(WindowPlan {
                region,
                start_frame: last_start,
                n_frames: WINDOW_FRAMES,
            });
        }
    }
    plans
}

/// The amplitude gain that brings the speech to -30 dBFS, never below 1 (resemblyzer's
/// `normalize_volume(increase_only=True)`). Measured on the speech regions only, since a long
/// silence in a meeting would otherwise make quiet speech look quieter still.
fn volume_gain(samples: &[f32], regions: &[SpeechRegion]) -> f32 {
    let mut sum = 0f64;
    let mut count = 0usize;
    for r in regions {
        let a = usize::try_from(r.start_ms * 16)
            .unwrap_or(usize::MAX)
            .min(samples.len());
        let b = usize::try_from(r.end_ms * 16)
            .unwrap_or(usize::MAX)
            .min(samples.len());
        if a < b {
            sum += samples[a..b].iter().map(|&x| f64::from(x * x)).sum::<f64>();
            count += b - a;
        }
    }
    if count == 0 {
        return 1.0;
    }
    let rms = (sum / count as f64).sqrt().max(1e-10);
    let dbfs = 20.0 * rms.log10() as f32;
    let change = TARGET_DBFS - dbfs;
    if change > 0.0 {
        10f32.powf(change / 20.0)
    } else {
        1.0
    }
}

/// The 40-channel power mel spectrogram, one frame at a time.
struct MelFrontend {
    /// `40 × 201`, row-major.
    filters: Vec<f32>,
    /// Periodic Hann window of 400 samples.
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
}

/// Reusable buffers of [`MelFrontend::frame`].
struct MelScratch {
    input: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    power: Vec<f32>,
}

impl MelFrontend {
    fn new() -> Self {
        let window = (0..N_FFT)
            .map(|i| {
                let phase = 2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64;
                (0.5 - 0.5 * phase.cos()) as f32
            })
            .collect();
        MelFrontend {
            filters: mel_filters(SAMPLE_RATE as f64, N_FFT, N_MELS),
            window,
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT),
        }
    }

    fn scratch(&self) -> MelScratch {
        MelScratch {
            input: self.fft.make_input_vec(),
            spectrum: self.fft.make_output_vec(),
            power: vec![0.0; N_FFT / 2 + 1],
        }
    }

    /// Appends frame `frame` (centred on sample `160 · frame`) of `samples` scaled by `gain`.
    fn frame(
        &self,
        samples: &[f32],
        frame: usize,
        gain: f32,
        s: &mut MelScratch,
        out: &mut Vec<f32>,
    ) {
        let center = frame * HOP;
        for (k, (slot, w)) in s.input.iter_mut().zip(&self.window).enumerate() {
            let at = (center + k).checked_sub(N_FFT / 2);
            let x = at.and_then(|i| samples.get(i)).copied().unwrap_or(0.0);
            *slot = x * gain * w;
        }
        // The buffers have the lengths the plan asked for, so the transform cannot fail.
        if self.fft.process(&mut s.input, &mut s.spectrum).is_err() {
            out.extend(std::iter::repeat_n(0.0, N_MELS));
            return;
        }
        for (p, c) in s.power.iter_mut().zip(&s.spectrum) {
            *p = c.norm_sqr();
        }
        for row in self.filters.chunks_exact(N_FFT / 2 + 1) {
            out.push(row.iter().zip(&s.power).map(|(a, b)| a * b).sum());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(start_ms: u64, end_ms: u64) -> SpeechRegion {
        SpeechRegion { start_ms, end_ms }
    }

    #[test]
    fn windows_cover_each_region_and_end_flush() {
        let plans = plan_windows(&[region(0, 2500)], 1000, 40);
        let starts: Vec<usize> = plans.iter().map(|p| p.start_frame).collect();
        assert_eq!(starts, [0, 40, 80, 90]);
        assert!(plans.iter().all(|p| p.n_frames == WINDOW_FRAMES));
    }

    #[test]
    fn short_regions_get_one_window_of_their_length() {
        let plans = plan_windows(&[region(1000, 1300), region(5000, 5000)], 1000, 40);
        assert_eq!(
            plans,
            [WindowPlan {
                region: 0,
                start_frame: 100,
                n_frames: 30
            }]
        );
    }

    #[test]
    fn regions_past_the_audio_are_clamped() {
        let plans = plan_windows(&[region(900, 99_999)], 120, 40);
        assert_eq!(plans.len(), 1);
        assert_eq!((plans[0].start_frame, plans[0].n_frames), (90, 30));
    }

    #[test]
    fn quiet_speech_is_raised_loud_speech_is_kept() {
        let quiet = vec![0.001f32; 16_000];
        let g = volume_gain(&quiet, &[region(0, 1000)]);
        let rms_db = 20.0 * (0.001f32 * g).log10();
        assert!((rms_db - TARGET_DBFS).abs() < 0.01, "{rms_db}");
        let loud = vec![0.5f32; 16_000];
        assert_eq!(volume_gain(&loud, &[region(0, 1000)]), 1.0);
        assert_eq!(volume_gain(&loud, &[]), 1.0);
    }

    #[test]
    fn embedder_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<SpeakerEmbedder>();
    }

    #[test]
    fn fast_activations_match_libm() {
        let xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 / 100.0).collect();
        let mut t = xs.clone();
        tanh_in_place(&mut t);
        let mut s = xs.clone();
        sigmoid_in_place(&mut s);
        for ((x, t), s) in xs.iter().zip(&t).zip(&s) {
            assert!((t - x.tanh()).abs() < 1e-6, "tanh({x}) = {t}");
            let exact = 1.0 / (1.0 + (-x).exp());
            assert!((s - exact).abs() < 1e-6, "sigmoid({x}) = {s}");
        }
    }

    #[test]
    fn mel_of_a_tone_peaks_in_the_right_channel() {
        let mel = MelFrontend::new();
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 500.0 * i as f32 / 16_000.0).sin())
            .collect();
        let mut out = Vec::new();
        mel.frame(&tone, 50, 1.0, &mut mel.scratch(), &mut out);
        let peak = (0..N_MELS)
            .max_by(|&a, &b| out[a].total_cmp(&out[b]))
            .unwrap();
        // Slaney mel: 500 Hz is 7.5 mel; 8 kHz is 45.25 mel, so the 40 channel centres lie
        // 45.25 / 41 = 1.10 mel apart, at 1.10 (m + 1): channel 6 (7.73 mel) is the closest.
        assert_eq!(peak, 6, "{out:?}");
    }
}
