//! Speaker embeddings: CAM++ x-vectors of sliding windows over speech.
//!
//! Each window's samples go through the Kaldi filter bank ([`super::fbank`]), are
//! mean-normalised per channel over the window (as CAM++ was trained), and the network
//! ([`super::campplus`]) gives a 192-d embedding, L2-normalised here.
//!
//! Promises:
//! - Windows lie inside speech regions: [`WINDOW_FRAMES`] frames (1.6 s) every `step_ms`, plus
//!   one window flush with the region's end so every part of every region is covered. A region
//!   shorter than 1.6 s gets one window of its own length ([`SpeakerWindow::is_full`] is false).
//! - A window's embedding depends only on its own samples (no context from outside it), and on
//!   nothing else in its batch; the loudness of the recording does not matter (log features are
//!   mean-normalised).
//! - Times are integer milliseconds on the input's timeline; windows are sorted by start.
//! - Deterministic: batches are formed in a fixed order.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::DiarizeError;
use super::campplus::{CamPlus, EMBEDDING_DIM};
use super::fbank::{FRAME_SHIFT, KaldiFbank, N_BINS, all_frames_count, frame_count};
use super::ort_backend::{OrtNet, ort_or_fallback};
use crate::transcript::SpeechRegion;

/// Samples per 10 ms frame step.
const HOP: usize = FRAME_SHIFT;
/// Milliseconds per frame hop.
pub const FRAME_MS: u64 = 10;
/// Frames per full window: 1.6 s.
pub const WINDOW_FRAMES: usize = 160;
/// Windows pushed through the network together (the head unfolds one window at a time, ~7 MB;
/// batches of 4, 8 and 16 took the same CPU time on one core).
const BATCH: usize = 8;

/// One embedded window of speech.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerWindow {
    /// Start on the input's timeline.
    pub start_ms: u64,
    /// End on the input's timeline (exclusive).
    pub end_ms: u64,
    /// Index of the speech region it lies in.
    pub region: usize,
    /// The L2-normalised 192-dimensional CAM++ embedding.
    pub embedding: Vec<f32>,
}

impl SpeakerWindow {
    /// Whether the window has the full 1.6 s (short ones, from short regions, are noisier).
    pub fn is_full(&self) -> bool {
        self.end_ms - self.start_ms >= WINDOW_FRAMES as u64 * FRAME_MS
    }

    /// The window's centre.
    pub fn center_ms(&self) -> u64 {
        (self.start_ms + self.end_ms) / 2
    }
}

/// Which implementation runs the CAM++ network.
enum Network {
    /// onnxruntime on the graph built from the weights (about 3× faster on a CPU core).
    Ort(OrtNet),
    /// candle: the checked reference, and the fallback where no onnxruntime is installed.
    Candle(CamPlus),
}

/// The CAM++ speaker model, loaded once and shared (`Send + Sync`).
pub struct SpeakerEmbedder {
    net: Network,
    /// The segmentation model, when loaded ([`SpeakerEmbedder::with_segmenter`]).
    segmenter: Option<super::segment::Segmenter>,
    fbank: KaldiFbank,
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
    /// Loads the converted model (`models::resolve_speaker` finds it), checking that every
    /// tensor the network needs is there. The network runs in onnxruntime when its library is
    /// installed beside the model (`models fetch --model speaker` installs it on Linux x86-64),
    /// else in candle; a library that is there but cannot be used is said on stderr in one
    /// line, and candle runs.
    pub fn load(path: &Path) -> Result<Self, DiarizeError> {
        let library = path.parent().and_then(crate::models::installed_onnxruntime);
        Self::load_with(path, library.as_deref())
    }

    /// Loads the model to run in candle only (the reference the onnxruntime path is checked
    /// against, and what runs where onnxruntime is not installed).
    pub fn load_candle(path: &Path) -> Result<Self, DiarizeError> {
        Self::load_with(path, None)
    }

    /// Which implementation runs the network: `onnxruntime` or `candle`.
    pub fn backend(&self) -> &'static str {
        match self.net {
            Network::Ort(_) => "onnxruntime",
            Network::Candle(_) => "candle",
        }
    }

    fn load_with(path: &Path, onnxruntime: Option<&Path>) -> Result<Self, DiarizeError> {
        let unreadable = |source| DiarizeError::ModelUnreadable {
            path: path.to_path_buf(),
            source,
        };
        let tensors = candle_core::safetensors::load(path, &Device::Cpu).map_err(unreadable)?;
        // The candle network (~28 MB of folded weights) is built only when onnxruntime is not
        // used; either way every tensor the network needs is checked while building it.
        let ort = ort_or_fallback(onnxruntime, "speaker model", |library| {
            super::campplus_onnx::campplus_onnx(&tensors, path)
                .and_then(|graph| OrtNet::new(library, graph, ("feats", "embedding")))
        });
        let net = match ort {
            Some(ort) => Network::Ort(ort),
            None => Network::Candle(CamPlus::new(tensors, path)?),
        };
        let sha256 = crate::models::sha256_file(path)
            .map_err(|source| unreadable(candle_core::Error::Io(source)))?;
        Ok(SpeakerEmbedder {
            net,
            segmenter: None,
            fbank: KaldiFbank::new(),
            path: path.to_path_buf(),
            sha256,
        })
    }

    /// The same embedder, carrying the segmentation model too (for [`super::Method::Segmentation`]).
    pub fn with_segmenter(mut self, segmenter: super::segment::Segmenter) -> Self {
        self.segmenter = Some(segmenter);
        self
    }

    /// The segmentation model, if loaded.
    pub fn segmenter(&self) -> Option<&super::segment::Segmenter> {
        self.segmenter.as_ref()
    }

    /// SHA-256 (hex) of the model file, recorded in every diarization for provenance.
    pub fn model_sha256(&self) -> &str {
        &self.sha256
    }

    /// The unit-length embedding of one short clip (16 kHz mono) taken as a whole: one window.
    /// Meant for clips of a few seconds (memory grows with the length, ~10 MB per second);
    /// `None` for an empty clip.
    pub fn embed_clip(&self, samples_16k: &[f32]) -> Result<Option<Vec<f32>>, DiarizeError> {
        let feats = self.fbank.all_frames(samples_16k);
        if feats.is_empty() {
            return Ok(None);
        }
        let mut out = self.forward(&[feats])?;
        Ok(out.pop())
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
        let feats = windows_fbank(&self.fbank, samples_16k, &plans);

        let lengths: Vec<usize> = feats.iter().map(Vec::len).collect();
        let embeddings = self.forward_batched(&lengths, |i| feats[i].clone())?;
        Ok(plans
            .iter()
            .zip(embeddings)
            .filter_map(|(p, e)| e.map(|e| (p, e)))
            .map(|(p, embedding)| SpeakerWindow {
                start_ms: p.start_frame as u64 * FRAME_MS,
                end_ms: (p.start_frame + p.n_frames) as u64 * FRAME_MS,
                region: p.region,
                embedding,
            })
            .collect())
    }

    /// The unit-length embeddings of several short clips (16 kHz mono), each taken whole as by
    /// [`Self::embed_clip`] (`None` for an empty clip), in their order. Clips of equal length go
    /// through the network together and the batches run on every core, as windows do.
    pub fn embed_clips(&self, clips: &[&[f32]]) -> Result<Vec<Option<Vec<f32>>>, DiarizeError> {
        // Sequence length (frames × bins) of each clip's filter bank, without computing it:
        // the frames are made inside the batches, so only a batch's are held at a time.
        let lengths: Vec<usize> = clips
            .iter()
            .map(|c| all_frames_count(c.len()) * N_BINS)
            .collect();
        self.forward_batched(&lengths, |i| self.fbank.all_frames(clips[i]))
    }

    /// Embeddings of sequences `0..lengths.len()` (`lengths[i]`: the length of sequence `i`,
    /// made by `sequence(i)`; 0 for none, which gets `None`): equal lengths batch together
    /// (the index breaks ties, keeping the order and so the output deterministic), and the
    /// batches are independent, so they run on every core (much of the network is small
    /// convolutions that one batch alone keeps on a single thread).
    fn forward_batched(
        &self,
        lengths: &[usize],
        sequence: impl Fn(usize) -> Vec<f32> + Sync,
    ) -> Result<Vec<Option<Vec<f32>>>, DiarizeError> {
        let mut order: Vec<usize> = (0..lengths.len()).filter(|&i| lengths[i] > 0).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(lengths[i]), i));
        let mut batches = Vec::new();
        let mut rest = order.as_slice();
        while let Some(&first) = rest.first() {
            let same = rest
                .iter()
                .take(BATCH)
                .take_while(|&&i| lengths[i] == lengths[first])
                .count();
            let (batch, tail) = rest.split_at(same);
            batches.push(batch);
            rest = tail;
        }
        let outputs: Vec<Vec<Vec<f32>>> = batches
            .par_iter()
            .map(|batch| {
                let inputs: Vec<Vec<f32>> = batch.iter().map(|&i| sequence(i)).collect();
                self.forward(&inputs)
            })
            .collect::<Result<_, _>>()?;
        let mut embeddings = vec![None; lengths.len()];
        for (batch, out) in batches.iter().zip(outputs) {
            for (&i, e) in batch.iter().zip(out) {
                embeddings[i] = Some(e);
            }
        }
        Ok(embeddings)
    }

    /// Runs the network on equally long fbank sequences (each `T × 80`) and returns one
    /// L2-normalised embedding per sequence.
    fn forward(&self, seqs: &[Vec<f32>]) -> Result<Vec<Vec<f32>>, DiarizeError> {
        let normalized: Vec<Vec<f32>> = seqs.iter().map(|s| mean_normalized(s)).collect();
        let mut out = match &self.net {
            Network::Ort(net) => net.embeddings(normalized)?,
            Network::Candle(net) => candle_forward(net, normalized)
                .map_err(|source| DiarizeError::Inference { source })?,
        };
        debug_assert!(out.iter().all(|e| e.len() == EMBEDDING_DIM));
        out.iter_mut().for_each(|v| l2_normalize(v));
        Ok(out)
    }
}

/// candle's forward pass over equally long sequences, as one batch.
fn candle_forward(net: &CamPlus, normalized: Vec<Vec<f32>>) -> candle_core::Result<Vec<Vec<f32>>> {
    let batch = normalized.len();
    let frames = normalized.first().map_or(0, |s| s.len() / N_BINS);
    let flat: Vec<f32> = normalized.into_iter().flatten().collect();
    let x = Tensor::from_vec(flat, (batch, frames, N_BINS), &Device::Cpu)?;
    net.forward(&x)?.to_vec2::<f32>()
}

/// The filter bank frames of every window. Overlapping windows share frames, and a frame
/// depends only on its own samples, so the frames are computed once per region and each
/// window takes its slice (the same values as [`window_fbank`]).
fn windows_fbank(fbank: &KaldiFbank, samples: &[f32], plans: &[WindowPlan]) -> Vec<Vec<f32>> {
    let mut out = Vec::with_capacity(plans.len());
    // (region, first frame, frames)
    let mut shared: Option<(usize, usize, Vec<f32>)> = None;
    for (i, p) in plans.iter().enumerate() {
        let count = window_frame_count(samples.len(), p);
        if count == 0 {
            out.push(window_fbank(fbank, samples, p));
            continue;
        }
        if shared
            .as_ref()
            .is_none_or(|(region, ..)| *region != p.region)
        {
            let end = plans[i..]
                .iter()
                .take_while(|q| q.region == p.region)
                .map(|q| q.start_frame + window_frame_count(samples.len(), q))
                .max()
                .unwrap_or(p.start_frame);
            let frames = fbank.frames(samples, p.start_frame, end - p.start_frame);
            shared = Some((p.region, p.start_frame, frames));
        }
        let slice = shared.as_ref().and_then(|(_, first, frames)| {
            let from = p.start_frame.checked_sub(*first)? * N_BINS;
            frames.get(from..from + count * N_BINS)
        });
        match slice {
            Some(frames) => out.push(frames.to_vec()),
            None => out.push(window_fbank(fbank, samples, p)),
        }
    }
    out
}

/// The filter bank frames of one window's samples (clamped to the recording).
fn window_fbank(fbank: &KaldiFbank, samples: &[f32], p: &WindowPlan) -> Vec<f32> {
    let start = (p.start_frame * HOP).min(samples.len());
    let end = ((p.start_frame + p.n_frames) * HOP).min(samples.len());
    let clip = &samples[start..end];
    if frame_count(clip.len()) == 0 {
        return fbank.all_frames(clip);
    }
    fbank.frames(samples, p.start_frame, frame_count(clip.len()))
}

/// How many whole filter bank frames a window's samples (clamped to the recording) hold.
fn window_frame_count(n_samples: usize, p: &WindowPlan) -> usize {
    let start = (p.start_frame * HOP).min(n_samples);
    let end = ((p.start_frame + p.n_frames) * HOP).min(n_samples);
    frame_count(end - start)
}

/// Each channel minus its mean over the frames (CAM++'s input normalisation).
fn mean_normalized(seq: &[f32]) -> Vec<f32> {
    let frames = seq.len() / N_BINS;
    let mut mean = [0f64; N_BINS];
    for frame in seq.chunks_exact(N_BINS) {
        for (m, &x) in mean.iter_mut().zip(frame) {
            *m += f64::from(x);
        }
    }
    mean.iter_mut().for_each(|m| *m /= frames.max(1) as f64);
    seq.chunks_exact(N_BINS)
        .flat_map(|frame| {
            frame
                .iter()
                .zip(&mean)
                .map(|(&x, &m)| (f64::from(x) - m) as f32)
        })
        .collect()
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
    fn shared_region_frames_equal_each_windows_own() {
        let samples: Vec<f32> = (0..80_000)
            .map(|i| ((i as f32 * 0.013).sin() + (i as f32 * 0.0071).cos()) * 0.2)
            .collect();
        let regions = [
            region(120, 3_000),
            region(3_500, 3_800),
            region(4_000, 5_000),
        ];
        let plans = plan_windows(&regions, samples.len() / HOP + 1, 40);
        let fbank = KaldiFbank::new();
        let shared = windows_fbank(&fbank, &samples, &plans);
        assert_eq!(shared.len(), plans.len());
        for (p, frames) in plans.iter().zip(&shared) {
            assert_eq!(frames, &window_fbank(&fbank, &samples, p), "{p:?}");
        }
    }

    #[test]
    fn embedder_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<SpeakerEmbedder>();
    }
}
