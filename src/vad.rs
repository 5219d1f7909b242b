//! Voice activity detection: where in a recording someone is speaking.
//!
//! Runs Silero VAD v6 (`silero_vad_op18_ifless.onnx`, see [`crate::models::VAD_FILE`]) with
//! tract-onnx, entirely on the CPU, and turns its per-chunk speech probabilities into
//! [`SpeechRegion`]s the same way silero-vad's own `get_speech_timestamps` does, so our regions
//! match the reference implementation's (checked by `scripts/check-vad-reference.py`).
//!
//! Promises:
//! - Input is 16 kHz mono `f32` samples; the model sees 512-sample (32 ms) chunks, each with the
//!   64 samples before it prepended, and its recurrent state carried from chunk to chunk, exactly
//!   as silero-vad's `OnnxWrapper` feeds it. The last partial chunk is padded with zeros.
//! - Every time is integer milliseconds on the input's own timeline (sample 0 is 0 ms).
//!   Regions are sorted, non-overlapping, non-empty and lie inside `[0, duration]`.
//! - [`VadConfig::default`] is silero-vad's defaults: threshold 0.5, exit threshold
//!   `threshold - 0.15`, min speech 250 ms, min silence 100 ms, padding 30 ms, no length limit.
//! - One loaded [`Vad`] is `Send + Sync`: several files may be processed with it at once; each
//!   call keeps its own recurrent state.
//!
//! [`compact_speech`] cuts the silences out of a recording (so Whisper does not spend time on
//! them, nor hallucinate in them) and returns a [`SpeechTimeline`] that maps times in the
//! compacted audio back to the original timeline.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;

use crate::transcript::{MIN_UNTRANSCRIBED_MS, SpeechRegion};

/// The only sample rate the detector accepts.
pub const SAMPLE_RATE_HZ: u32 = 16_000;
/// Samples the model judges at a time (32 ms at 16 kHz); one probability per chunk.
pub const CHUNK_SAMPLES: usize = 512;
/// Duration of one chunk.
pub const CHUNK_MS: u64 = 32;
/// Samples of the previous chunk prepended to each chunk, as silero-vad does at 16 kHz.
const CONTEXT_SAMPLES: usize = 64;
/// The recurrent state carried between chunks: `[2, batch 1, 128]`.
const STATE_SHAPE: [usize; 3] = [2, 1, 128];
/// Samples per millisecond at 16 kHz.
const SAMPLES_PER_MS: u64 = SAMPLE_RATE_HZ as u64 / 1000;
/// How much lower than `threshold` the probability must fall to end speech (silero-vad's default).
const EXIT_THRESHOLD_GAP: f64 = 0.15;
/// A silence inside speech must be longer than this to be a split point when a region reaches
/// `max_speech_ms` (silero-vad's `min_silence_at_max_speech`).
const MIN_SILENCE_AT_MAX_SPEECH_MS: u64 = 98;
/// A chunk under this speech probability is quiet (see [`Vad::probabilities_fresh_after_pauses`]).
const QUIET_PROBABILITY: f32 = 0.1;
/// This many quiet chunks in a row (160 ms) are a pause after which the model starts afresh.
const QUIET_CHUNKS_BEFORE_RESET: usize = 5;

/// What can go wrong loading or running the detector. Messages say what failed and how to fix
/// it; the cause is the error's `source()` (print the chain, e.g. anyhow's `{:#}`, to see it).
#[derive(Debug, thiserror::Error)]
pub enum VadError {
    /// The model file is missing or unreadable.
    #[error(
        "cannot read the voice activity model {}; run `qualscribe models fetch` to install it",
        path.display()
    )]
    ModelUnreadable {
        /// The model file that was asked for.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The file exists but is not a Silero VAD ONNX model tract can run.
    #[error(
        "the voice activity model {} is not a usable Silero VAD ONNX file; run `qualscribe models fetch` to reinstall it",
        path.display()
    )]
    ModelInvalid {
        /// The model file that was loaded.
        path: PathBuf,
        /// What tract reported.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The model's inputs are not the Silero ones (`input`, `state`, `sr`).
    #[error(
        "the voice activity model {} has an unexpected input `{name}` (expected input, state and sr); run `qualscribe models fetch` to reinstall it",
        path.display()
    )]
    UnexpectedInput {
        /// The model file that was loaded.
        path: PathBuf,
        /// The input's name.
        name: String,
    },
    /// Inference failed part-way through the audio.
    #[error("voice activity detection failed at {at_ms} ms")]
    Inference {
        /// Where in the input the failing chunk starts.
        at_ms: u64,
        /// What tract reported.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// How probabilities become speech regions. Defaults are silero-vad's `get_speech_timestamps`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// A chunk whose speech probability is at least this starts (or continues) speech. Speech
    /// ends only when the probability falls below `threshold - 0.15` (hysteresis). Default 0.5.
    pub threshold: f32,
    /// Regions shorter than this (before padding) are dropped. Default 250 ms.
    pub min_speech_ms: u64,
    /// Silence must last at least this long to end a region. Default 100 ms.
    pub min_silence_ms: u64,
    /// Each region is widened by this much on both sides (less where two regions would touch:
    /// then the silence between them is split in half). Default 30 ms.
    pub speech_pad_ms: u64,
    /// Regions longer than this are split at their longest inner silence (over 98 ms), or cut
    /// hard where there is none. Default `u64::MAX`: no limit, as in silero-vad.
    pub max_speech_ms: u64,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            threshold: 0.5,
            min_speech_ms: 250,
            min_silence_ms: 100,
            speech_pad_ms: 30,
            max_speech_ms: u64::MAX,
        }
    }
}

/// Which Silero input a model input position is, since input order differs between exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SileroInput {
    Audio,
    State,
    SampleRate,
}

/// The Silero VAD model, loaded and optimized once; cheap to share between threads.
#[derive(Debug, Clone)]
pub struct Vad {
    plan: Arc<TypedRunnableModel>,
    inputs: Vec<SileroInput>,
}

impl Vad {
    /// Loads and optimizes the ONNX model at `model_path` (normally
    /// `models::default_models_dir().join(models::VAD_FILE)`). Takes well under a second.
    pub fn load(model_path: &Path) -> Result<Vad, VadError> {
        let bytes = std::fs::read(model_path).map_err(|source| VadError::ModelUnreadable {
            path: model_path.to_path_buf(),
            source,
        })?;
        let invalid = |err: TractError| VadError::ModelInvalid {
            path: model_path.to_path_buf(),
            source: err.into(),
        };
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut bytes.as_slice())
            .map_err(invalid)?;
        let inputs = silero_inputs(&model, model_path)?;
        // Only `sr` is pinned: the op18 "ifless" export optimizes in tract when the audio and state
        // inputs keep the file's symbolic shapes, and a constant rate folds away the 8 kHz branch.
        for (ix, kind) in inputs.iter().enumerate() {
            if *kind == SileroInput::SampleRate {
                let rate = tensor0(i64::from(SAMPLE_RATE_HZ));
                model
                    .set_input_fact(ix, InferenceFact::from(rate))
                    .map_err(invalid)?;
            }
        }
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(invalid)?;
        Ok(Vad { plan, inputs })
    }

    /// Speech probability (0–1) of each 32 ms chunk: `ceil(len / 512)` values, the `i`-th for
    /// samples `512 i .. 512 (i + 1)`. Empty input gives an empty vector.
    pub fn probabilities(&self, samples_16k: &[f32]) -> Result<Vec<f32>, VadError> {
        let mut stream = ChunkStream::new(self)?;
        samples_16k
            .chunks(CHUNK_SAMPLES)
            .enumerate()
            .map(|(ix, chunk)| {
                stream.push(chunk).map_err(|err| VadError::Inference {
                    at_ms: ix as u64 * CHUNK_MS,
                    source: err.into(),
                })
            })
            .collect()
    }

    /// Like [`Vad::probabilities`], but the model starts afresh (zero state, zero context) once
    /// the probability has stayed under [`QUIET_PROBABILITY`] for [`QUIET_CHUNKS_BEFORE_RESET`]
    /// chunks. Silero's recurrent state can stay stuck after one sentence and miss the next
    /// one entirely (measured: 8 s of clear read English after a 0.2 s pause, found at once
    /// by a fresh model); starting afresh at each pause makes every sentence look like the
    /// start of a file, where the model is reliable.
    pub fn probabilities_fresh_after_pauses(
        &self,
        samples_16k: &[f32],
    ) -> Result<Vec<f32>, VadError> {
        let mut stream = ChunkStream::new(self)?;
        let mut quiet_chunks = 0;
        let mut probs = Vec::with_capacity(samples_16k.len().div_ceil(CHUNK_SAMPLES));
        for (ix, chunk) in samples_16k.chunks(CHUNK_SAMPLES).enumerate() {
            let p = stream.push(chunk).map_err(|err| VadError::Inference {
                at_ms: ix as u64 * CHUNK_MS,
                source: err.into(),
            })?;
            quiet_chunks = if p < QUIET_PROBABILITY {
                quiet_chunks + 1
            } else {
                0
            };
            if quiet_chunks == QUIET_CHUNKS_BEFORE_RESET {
                stream.start_afresh();
            }
            probs.push(p);
        }
        Ok(probs)
    }

    /// Speech regions of `samples_16k` (16 kHz mono): silero-vad's own regions
    /// (`get_speech_timestamps` with the same settings, on [`Vad::probabilities`]) exactly as
    /// they are, plus each region of a second pass whose model starts afresh at each pause
    /// ([`Vad::probabilities_fresh_after_pauses`]) that overlaps none of them: speech the first
    /// pass missed after a stuck state. Joining the two passes' probabilities instead moved
    /// region edges on ordinary clips and cost 2–3 words per 10 FLEURS clips (measured).
    pub fn detect(
        &self,
        samples_16k: &[f32],
        cfg: &VadConfig,
    ) -> Result<Vec<SpeechRegion>, VadError> {
        Ok(self.detect_speech(samples_16k, cfg)?.regions)
    }

    /// [`Vad::detect`]'s regions, with the brief ones only the second pass found set apart
    /// (see [`DetectedSpeech`]): what the transcription stage needs.
    pub fn detect_speech(
        &self,
        samples_16k: &[f32],
        cfg: &VadConfig,
    ) -> Result<DetectedSpeech, VadError> {
        // The passes are independent (each keeps its own state), so they run side by side.
        let (probs, fresh) = rayon::join(
            || self.probabilities(samples_16k),
            || self.probabilities_fresh_after_pauses(samples_16k),
        );
        let first = regions_from_probabilities(&probs?, samples_16k.len(), cfg);
        let second = regions_from_probabilities(&fresh?, samples_16k.len(), cfg);
        Ok(detected_speech(first, &second))
    }
}

/// Both passes' regions joined ([`with_regions_missed`]), with the second pass's brief own
/// finds set apart.
fn detected_speech(first: Vec<SpeechRegion>, second: &[SpeechRegion]) -> DetectedSpeech {
    let brief_fresh_only = regions_missed(&first, second)
        .into_iter()
        .filter(|r| r.end_ms - r.start_ms < MIN_FRESH_ONLY_TRANSCRIBED_MS)
        .collect();
    DetectedSpeech {
        regions: with_regions_missed(first, second),
        brief_fresh_only,
    }
}

/// Words Whisper writes in a region that only the fresh-after-pauses pass found are kept only if
/// the region lasts at least this long. Measured on every file at hand (music, AMI, corpus,
/// FLEURS, long-form sets): the second pass's own finds are either whole sentences the first
/// pass missed after a stuck state (3.4–5.9 s, all real speech) or blips of 0.3–0.6 s. The
/// blips in music (0.32 and 0.35 s in a Debian hold-music track, where silero-vad's own pass
/// peaks at 0.61 and 0.00) are where Whisper invented words ("y", p 0.93; on a cut of the same
/// track a whole sentence); in the three in AMI meetings (real backchannels) Whisper wrote
/// nothing. Equal to [`MIN_UNTRANSCRIBED_MS`], so a region whose words are dropped is also below
/// what would be listed as untranscribed: nothing long goes unseen.
pub const MIN_FRESH_ONLY_TRANSCRIBED_MS: u64 = MIN_UNTRANSCRIBED_MS;

/// What [`Vad::detect_speech`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedSpeech {
    /// Every speech region of both passes, sorted (what [`Vad::detect`] returns): what Whisper
    /// decodes, the transcript's `speech` and the speaker stage's input.
    pub regions: Vec<SpeechRegion>,
    /// Regions of `regions` found only by the fresh-after-pauses pass and shorter than
    /// [`MIN_FRESH_ONLY_TRANSCRIBED_MS`]: silero-vad's own pass heard no speech there, and the
    /// transcription stage drops the words Whisper writes in them. They are still decoded with
    /// the rest (cutting them out would move the other words of their window).
    pub brief_fresh_only: Vec<SpeechRegion>,
}

/// The regions of `second` that overlap none of `first`.
fn regions_missed(first: &[SpeechRegion], second: &[SpeechRegion]) -> Vec<SpeechRegion> {
    let overlaps_first = |r: &SpeechRegion| {
        first
            .iter()
            .any(|f| f.start_ms < r.end_ms && r.start_ms < f.end_ms)
    };
    second
        .iter()
        .filter(|r| !overlaps_first(r))
        .copied()
        .collect()
}

/// `first` with every region of `second` that overlaps none of `first`'s added, in time order.
/// `first`'s regions are kept exactly as they are, so where both passes hear speech the
/// boundaries are silero-vad's own; the second pass only fills in speech the first missed.
fn with_regions_missed(first: Vec<SpeechRegion>, second: &[SpeechRegion]) -> Vec<SpeechRegion> {
    let missed = regions_missed(&first, second);
    let mut regions = first;
    regions.extend(missed);
    regions.sort_by_key(|r| r.start_ms);
    regions
}

/// Maps each model input to the Silero input it is, by name.
fn silero_inputs(model: &InferenceModel, path: &Path) -> Result<Vec<SileroInput>, VadError> {
    let outlets = model
        .input_outlets()
        .map_err(|err| VadError::ModelInvalid {
            path: path.to_path_buf(),
            source: err.into(),
        })?;
    outlets
        .iter()
        .map(|outlet| {
            let name = &model.node(outlet.node).name;
            match name.as_str() {
                "input" => Ok(SileroInput::Audio),
                "state" => Ok(SileroInput::State),
                "sr" => Ok(SileroInput::SampleRate),
                _ => Err(VadError::UnexpectedInput {
                    path: path.to_path_buf(),
                    name: name.clone(),
                }),
            }
        })
        .collect()
}

/// One pass over one recording: the model's per-session state, the recurrent state and the
/// audio context carried from chunk to chunk.
struct ChunkStream<'a> {
    vad: &'a Vad,
    session: TypedSimpleState,
    state: TValue,
    zero_state: TValue,
    context: [f32; CONTEXT_SAMPLES],
}

impl<'a> ChunkStream<'a> {
    fn new(vad: &'a Vad) -> Result<Self, VadError> {
        let spawn_failed = |err: TractError| VadError::Inference {
            at_ms: 0,
            source: err.into(),
        };
        let session = vad.plan.spawn().map_err(spawn_failed)?;
        let zero_state: TValue = Tensor::zero::<f32>(&STATE_SHAPE)
            .map_err(spawn_failed)?
            .into();
        Ok(ChunkStream {
            vad,
            session,
            state: zero_state.clone(),
            zero_state,
            context: [0.0; CONTEXT_SAMPLES],
        })
    }

    /// Zero recurrent state and zero context, as at the start of a file. The session itself
    /// keeps nothing between runs (the recurrent state is an input), so it is reused.
    fn start_afresh(&mut self) {
        self.state = self.zero_state.clone();
        self.context = [0.0; CONTEXT_SAMPLES];
    }

    /// Runs one chunk (at most 512 samples; shorter ones are zero-padded) and returns its
    /// speech probability.
    fn push(&mut self, chunk: &[f32]) -> TractResult<f32> {
        let mut window = Vec::with_capacity(CONTEXT_SAMPLES + CHUNK_SAMPLES);
        window.extend_from_slice(&self.context);
        window.extend_from_slice(chunk);
        window.resize(CONTEXT_SAMPLES + CHUNK_SAMPLES, 0.0);
        // The next chunk's context is the end of this padded window, as in silero-vad.
        self.context.copy_from_slice(&window[CHUNK_SAMPLES..]);
        let audio = Tensor::from_shape(&[1, CONTEXT_SAMPLES + CHUNK_SAMPLES], &window)?;

        let feed: TVec<TValue> = self
            .vad
            .inputs
            .iter()
            .map(|kind| match kind {
                SileroInput::Audio => audio.clone().into(),
                SileroInput::State => self.state.clone(),
                SileroInput::SampleRate => tensor0(i64::from(SAMPLE_RATE_HZ)).into(),
            })
            .collect();
        let mut outputs = self.session.run(feed)?;
        if outputs.len() != 2 {
            anyhow::bail!(
                "expected 2 outputs (probability, state), got {}",
                outputs.len()
            );
        }
        self.state = outputs.remove(1);
        let probability = outputs[0]
            .to_plain_array_view::<f32>()?
            .iter()
            .next()
            .copied();
        probability.ok_or_else(|| anyhow::anyhow!("the model returned an empty probability"))
    }
}

/// Turns per-chunk speech probabilities into speech regions, following silero-vad's
/// `get_speech_timestamps_from_probs` (with `use_max_poss_sil_at_max_speech`, its default)
/// step by step, in samples, so boundaries agree with the reference exactly.
/// `len_samples` is the length of the audio the probabilities came from.
pub fn regions_from_probabilities(
    probs: &[f32],
    len_samples: usize,
    cfg: &VadConfig,
) -> Vec<SpeechRegion> {
    let raw = raw_speech_spans(probs, len_samples as u64, cfg);
    let padded = pad_spans(raw, len_samples as u64, cfg.speech_pad_ms * SAMPLES_PER_MS);
    padded
        .into_iter()
        .map(|(start, end)| SpeechRegion {
            start_ms: start / SAMPLES_PER_MS,
            end_ms: end / SAMPLES_PER_MS,
        })
        .filter(|region| region.end_ms > region.start_ms)
        .collect()
}

/// The state machine of `get_speech_timestamps_from_probs`: unpadded `(start, end)` spans in
/// samples.
fn raw_speech_spans(probs: &[f32], len_samples: u64, cfg: &VadConfig) -> Vec<(u64, u64)> {
    // In f64, as Python computes it, so a probability right at the edge is judged the same way.
    let threshold = f64::from(cfg.threshold);
    let neg_threshold = (threshold - EXIT_THRESHOLD_GAP).max(0.01);
    let chunk = CHUNK_SAMPLES as u64;
    let min_speech = cfg.min_speech_ms.saturating_mul(SAMPLES_PER_MS);
    let min_silence = cfg.min_silence_ms.saturating_mul(SAMPLES_PER_MS);
    let min_silence_at_max = MIN_SILENCE_AT_MAX_SPEECH_MS * SAMPLES_PER_MS;
    // silero-vad leaves room for one chunk and both paddings inside the limit.
    let max_speech = cfg
        .max_speech_ms
        .saturating_mul(SAMPLES_PER_MS)
        .saturating_sub(chunk + 2 * cfg.speech_pad_ms.saturating_mul(SAMPLES_PER_MS));

    let mut spans = Vec::new();
    let mut start: Option<u64> = None;
    // Where the current silence inside speech began (silero's `temp_end`).
    let mut silence_start: Option<u64> = None;
    // Silences inside the current region long enough to split at: (start, duration).
    let mut split_points: Vec<(u64, u64)> = Vec::new();

    for (ix, &prob) in probs.iter().enumerate() {
        let cur = ix as u64 * chunk;
        let prob = f64::from(prob);

        if prob >= threshold {
            if let Some(sil) = silence_start.take()
                && cur - sil > min_silence_at_max
            {
                split_points.push((sil, cur - sil));
            }
            if start.is_none() {
                start = Some(cur);
                continue;
            }
        }

        if let Some(region_start) = start
            && cur - region_start > max_speech
        {
            // Split at the longest silence; speech resumes where it ended. Without one, cut here.
            let longest = longest_silence(&split_points);
            split_points.clear();
            silence_start = None;
            match longest {
                Some((sil, dur)) => {
                    spans.push((region_start, sil));
                    start = Some(sil + dur);
                }
                None => {
                    spans.push((region_start, cur));
                    start = None;
                    continue;
                }
            }
        }

        if let Some(region_start) = start
            && prob < neg_threshold
        {
            let sil = *silence_start.get_or_insert(cur);
            if cur - sil < min_silence {
                continue;
            }
            if sil - region_start.min(sil) > min_speech {
                spans.push((region_start, sil));
            }
            start = None;
            silence_start = None;
            split_points.clear();
        }
    }

    if let Some(region_start) = start
        && len_samples.saturating_sub(region_start) > min_speech
    {
        spans.push((region_start, len_samples));
    }
    spans
}

/// The longest `(start, duration)` silence; the first of equals, as Python's `max()` picks.
fn longest_silence(silences: &[(u64, u64)]) -> Option<(u64, u64)> {
    silences
        .iter()
        .copied()
        .reduce(|best, s| if s.1 > best.1 { s } else { best })
}

/// silero-vad's padding: widen each span by `pad` samples, but where two spans are closer than
/// `2 * pad`, meet in the middle of the silence between them.
fn pad_spans(mut spans: Vec<(u64, u64)>, len_samples: u64, pad: u64) -> Vec<(u64, u64)> {
    if let Some(first) = spans.first_mut() {
        first.0 = first.0.saturating_sub(pad);
    }
    for ix in 0..spans.len() {
        let Some(&(next_start, _)) = spans.get(ix + 1) else {
            spans[ix].1 = (spans[ix].1 + pad).min(len_samples);
            break;
        };
        let silence = next_start.saturating_sub(spans[ix].1);
        if silence < 2 * pad {
            spans[ix].1 += silence / 2;
            spans[ix + 1].0 = next_start.saturating_sub(silence / 2);
        } else {
            spans[ix].1 = (spans[ix].1 + pad).min(len_samples);
            spans[ix + 1].0 = next_start.saturating_sub(pad);
        }
    }
    spans
}

/// One stretch of speech copied into the compacted audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelinePiece {
    /// Where the piece starts in the compacted audio.
    pub compact_start_ms: u64,
    /// Where the same audio starts in the original recording.
    pub original_start_ms: u64,
    /// How long the piece is (the same on both timelines).
    pub len_ms: u64,
}

/// Maps times in audio built by [`compact_speech`] back to the original recording.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpeechTimeline {
    pieces: Vec<TimelinePiece>,
}

impl SpeechTimeline {
    /// The pieces in order; compacted and original starts both increase.
    pub fn pieces(&self) -> &[TimelinePiece] {
        &self.pieces
    }

    /// The original time of `compact_ms`. Monotone: later compacted times never map earlier.
    /// A time inside an inserted gap maps to the nearer region edge (the earlier region's end
    /// at the exact middle); times past the end map to the last region's end. With no pieces
    /// (no speech) times are returned unchanged.
    pub fn to_original_ms(&self, compact_ms: u64) -> u64 {
        // The last piece starting at or before `compact_ms` (the first piece starts at 0).
        let after = self
            .pieces
            .partition_point(|p| p.compact_start_ms <= compact_ms);
        let Some(piece) = after.checked_sub(1).map(|ix| self.pieces[ix]) else {
            return self
                .pieces
                .first()
                .map_or(compact_ms, |p| p.original_start_ms);
        };
        let offset = compact_ms - piece.compact_start_ms;
        if offset <= piece.len_ms {
            return piece.original_start_ms + offset;
        }
        let piece_end = piece.original_start_ms + piece.len_ms;
        match self.pieces.get(after) {
            Some(next) => {
                let past_end = offset - piece.len_ms;
                let before_next = next.compact_start_ms - compact_ms;
                if past_end <= before_next {
                    piece_end
                } else {
                    next.original_start_ms
                }
            }
            None => piece_end,
        }
    }
}

impl SpeechTimeline {
    /// The original time of `end_compact_ms`, the end of something (a word) that starts at
    /// `start_compact_ms`: never past the end of the speech piece holding the start, because a
    /// word does not cross the silence cut out between two pieces. Without this, a word whose
    /// end Whisper puts a little late, inside the next piece, would end seconds later on the
    /// original timeline, in the middle of a pause.
    pub fn to_original_end_ms(&self, start_compact_ms: u64, end_compact_ms: u64) -> u64 {
        let start = self.to_original_ms(start_compact_ms);
        let end = self.to_original_ms(end_compact_ms.max(start_compact_ms));
        let holding_start = self
            .pieces
            .partition_point(|p| p.compact_start_ms <= start_compact_ms)
            .checked_sub(1)
            .map(|ix| self.pieces[ix]);
        match holding_start {
            Some(p) => end.min((p.original_start_ms + p.len_ms).max(start)),
            None => end,
        }
    }
}

/// Copies only the speech in `regions` out of `samples_16k`, joined by `gap_ms` of silence,
/// and returns it with the map back to the original timeline.
///
/// Regions are clipped to the audio; overlapping or unsorted regions are merged first, so the
/// map stays monotone. With no regions the result is empty.
pub fn compact_speech(
    samples_16k: &[f32],
    regions: &[SpeechRegion],
    gap_ms: u64,
) -> (Vec<f32>, SpeechTimeline) {
    let duration_ms = samples_16k.len() as u64 / SAMPLES_PER_MS;
    let gap_samples = ms_to_samples(gap_ms);
    let mut compact = Vec::new();
    let mut pieces = Vec::new();
    for region in merged_regions(regions, duration_ms) {
        if !pieces.is_empty() {
            compact.resize(compact.len() + gap_samples, 0.0);
        }
        pieces.push(TimelinePiece {
            compact_start_ms: compact.len() as u64 / SAMPLES_PER_MS,
            original_start_ms: region.start_ms,
            len_ms: region.end_ms - region.start_ms,
        });
        compact.extend_from_slice(
            &samples_16k[ms_to_samples(region.start_ms)..ms_to_samples(region.end_ms)],
        );
    }
    (compact, SpeechTimeline { pieces })
}

/// Regions clipped to `[0, duration_ms]`, empty ones dropped, sorted, overlaps merged.
pub(crate) fn merged_regions(regions: &[SpeechRegion], duration_ms: u64) -> Vec<SpeechRegion> {
    let mut clipped: Vec<SpeechRegion> = regions
        .iter()
        .map(|r| SpeechRegion {
            start_ms: r.start_ms,
            end_ms: r.end_ms.min(duration_ms),
        })
        .filter(|r| r.end_ms > r.start_ms)
        .collect();
    clipped.sort_by_key(|r| r.start_ms);
    let mut merged: Vec<SpeechRegion> = Vec::with_capacity(clipped.len());
    for region in clipped {
        match merged.last_mut() {
            Some(last) if region.start_ms <= last.end_ms => {
                last.end_ms = last.end_ms.max(region.end_ms);
            }
            _ => merged.push(region),
        }
    }
    merged
}

fn ms_to_samples(ms: u64) -> usize {
    usize::try_from(ms.saturating_mul(SAMPLES_PER_MS)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_end_never_crosses_a_cut_silence() {
        // Regions 1–2 s and 10–11 s, joined with a 200 ms gap: compacted 0–1000, 1200–2200.
        let samples = vec![0.0f32; 12 * 16_000];
        let (_, timeline) = compact_speech(
            &samples,
            &[region(1_000, 2_000), region(10_000, 11_000)],
            200,
        );
        // A word from 900 ms to 1300 ms (compacted) would end at 10.1 s without the clamp.
        assert_eq!(timeline.to_original_ms(1_300), 10_100);
        assert_eq!(timeline.to_original_end_ms(900, 1_300), 2_000);
        // Inside one piece nothing changes.
        assert_eq!(timeline.to_original_end_ms(1_300, 1_500), 10_300);
    }

    fn region(start_ms: u64, end_ms: u64) -> SpeechRegion {
        SpeechRegion { start_ms, end_ms }
    }

    /// `total_chunks` probabilities: speech (0.9) inside the given chunk ranges, else 0.05.
    fn probs_with_speech(total_chunks: usize, speech: &[(usize, usize)]) -> Vec<f32> {
        (0..total_chunks)
            .map(|ix| {
                if speech.iter().any(|&(s, e)| ix >= s && ix < e) {
                    0.9
                } else {
                    0.05
                }
            })
            .collect()
    }

    #[test]
    fn second_pass_only_adds_regions_the_first_missed() {
        let first = vec![region(1_000, 3_000), region(10_000, 12_000)];
        let second = [
            region(900, 3_400),     // overlaps a first-pass region: its edges are not used
            region(5_000, 8_000),   // missed by the first pass: added
            region(11_500, 14_000), // overlaps: ignored
            region(20_000, 21_000), // missed: added
        ];
        assert_eq!(
            with_regions_missed(first, &second),
            [
                region(1_000, 3_000),
                region(5_000, 8_000),
                region(10_000, 12_000),
                region(20_000, 21_000)
            ]
        );
    }

    #[test]
    fn brief_regions_only_the_second_pass_found_are_set_apart() {
        let first = vec![region(1_000, 3_000)];
        let second = [
            region(900, 2_000),    // overlaps the first pass: the first pass's edges count
            region(3_906, 4_222),  // a 316 ms blip only the second pass heard: set apart
            region(5_000, 8_420),  // a sentence the first pass missed: kept
            region(9_000, 10_000), // exactly the limit: kept
        ];
        let detected = detected_speech(first, &second);
        assert_eq!(
            detected.regions,
            [
                region(1_000, 3_000),
                region(3_906, 4_222),
                region(5_000, 8_420),
                region(9_000, 10_000)
            ]
        );
        assert_eq!(detected.brief_fresh_only, [region(3_906, 4_222)]);
    }

    #[test]
    fn silence_gives_no_regions() {
        let probs = vec![0.01; 100];
        assert!(regions_from_probabilities(&probs, 100 * 512, &VadConfig::default()).is_empty());
        assert!(regions_from_probabilities(&[], 0, &VadConfig::default()).is_empty());
    }

    #[test]
    fn one_region_is_padded_by_30_ms() {
        // Speech in chunks 10..40 = samples 5120..20480 = 320..1280 ms.
        let probs = probs_with_speech(100, &[(10, 40)]);
        let regions = regions_from_probabilities(&probs, 100 * 512, &VadConfig::default());
        assert_eq!(regions, vec![region(290, 1310)]);
    }

    #[test]
    fn short_blips_are_dropped_and_short_pauses_bridged() {
        // 5 chunks = 160 ms < 250 ms min speech: dropped. Pause of 2 chunks (64 ms) < 100 ms:
        // bridged.
        let probs = probs_with_speech(200, &[(10, 15), (50, 80), (82, 120)]);
        let regions = regions_from_probabilities(&probs, 200 * 512, &VadConfig::default());
        assert_eq!(regions, vec![region(50 * 32 - 30, 120 * 32 + 30)]);
    }

    #[test]
    fn close_regions_meet_in_the_middle_of_the_silence() {
        // A 6-chunk (192 ms) silence ends the first region; it is wider than two 30 ms pads, so
        // both regions get their full padding.
        let probs = probs_with_speech(100, &[(10, 30), (36, 60)]);
        let regions = regions_from_probabilities(&probs, 100 * 512, &VadConfig::default());
        assert_eq!(regions, vec![region(290, 990), region(1122, 1950)]);
        // With a 120 ms pad the 192 ms silence is split in half instead.
        let cfg = VadConfig {
            speech_pad_ms: 120,
            ..VadConfig::default()
        };
        let regions = regions_from_probabilities(&probs, 100 * 512, &cfg);
        assert_eq!(regions, vec![region(200, 1056), region(1056, 2040)]);
    }

    #[test]
    fn speech_at_end_runs_to_end_of_audio() {
        let len = 99 * 512 + 100;
        let probs = probs_with_speech(100, &[(50, 100)]);
        let regions = regions_from_probabilities(&probs, len, &VadConfig::default());
        assert_eq!(regions, vec![region(1570, len as u64 / 16)]);
    }

    #[test]
    fn long_region_splits_at_longest_silence() {
        // A large min silence keeps the inner pauses from ending speech; the 3 s limit splits.
        let cfg = VadConfig {
            min_silence_ms: 1000,
            max_speech_ms: 3000,
            ..VadConfig::default()
        };
        // Speech 0..40, pause 40..44 (128 ms), speech 44..60, pause 60..64, speech 64..200.
        let probs = probs_with_speech(200, &[(0, 40), (44, 60), (64, 200)]);
        let regions = regions_from_probabilities(&probs, 200 * 512, &cfg);
        assert!(regions.len() >= 2, "{regions:?}");
        // The first split is at the start of the first 128 ms pause (tie: the first wins).
        assert_eq!(regions[0].start_ms, 0);
        assert_eq!(regions[0].end_ms, 40 * 32 + 30);
        assert_regions_well_formed(&regions, 200 * 32);
    }

    #[test]
    fn long_region_without_silence_is_cut_hard() {
        let cfg = VadConfig {
            max_speech_ms: 2000,
            ..VadConfig::default()
        };
        let probs = vec![0.9; 300];
        let regions = regions_from_probabilities(&probs, 300 * 512, &cfg);
        assert!(regions.len() >= 4, "{regions:?}");
        assert_regions_well_formed(&regions, 300 * 32);
    }

    pub(crate) fn assert_regions_well_formed(regions: &[SpeechRegion], duration_ms: u64) {
        for r in regions {
            assert!(r.start_ms < r.end_ms, "{r:?}");
            assert!(r.end_ms <= duration_ms, "{r:?} past {duration_ms}");
        }
        for pair in regions.windows(2) {
            assert!(pair[0].end_ms <= pair[1].start_ms, "{pair:?}");
        }
    }

    #[test]
    fn compact_speech_round_trips() {
        // 10 s of audio whose sample value encodes its own time in ms.
        let samples: Vec<f32> = (0..160_000).map(|i| (i / 16) as f32).collect();
        let regions = [region(1000, 2000), region(5000, 5500), region(9000, 10_000)];
        let (compact, timeline) = compact_speech(&samples, &regions, 200);
        assert_eq!(compact.len(), (1000 + 200 + 500 + 200 + 1000) * 16);
        assert_eq!(
            timeline.pieces(),
            &[
                TimelinePiece {
                    compact_start_ms: 0,
                    original_start_ms: 1000,
                    len_ms: 1000
                },
                TimelinePiece {
                    compact_start_ms: 1200,
                    original_start_ms: 5000,
                    len_ms: 500
                },
                TimelinePiece {
                    compact_start_ms: 1900,
                    original_start_ms: 9000,
                    len_ms: 1000
                },
            ]
        );
        // Inside pieces the map is exact: the sample at a compacted time holds its original time.
        for piece in timeline.pieces() {
            for offset in [0, 1, piece.len_ms / 2, piece.len_ms - 1] {
                let t = piece.compact_start_ms + offset;
                let original = timeline.to_original_ms(t);
                assert_eq!(compact[(t * 16) as usize] as u64, original);
            }
        }
        // Inside gaps: nearest edge.
        assert_eq!(timeline.to_original_ms(1000), 2000);
        assert_eq!(timeline.to_original_ms(1050), 2000);
        assert_eq!(timeline.to_original_ms(1100), 2000);
        assert_eq!(timeline.to_original_ms(1101), 5000);
        assert_eq!(timeline.to_original_ms(1199), 5000);
        // Past the end: the last region's end.
        assert_eq!(timeline.to_original_ms(2900), 10_000);
        assert_eq!(timeline.to_original_ms(99_999), 10_000);
        // Monotone everywhere.
        let mapped: Vec<u64> = (0..3000).map(|t| timeline.to_original_ms(t)).collect();
        assert!(mapped.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn compact_speech_merges_clips_and_handles_nothing() {
        let samples = vec![0.5f32; 16_000];
        let regions = [region(600, 1500), region(100, 300), region(200, 400)];
        let (compact, timeline) = compact_speech(&samples, &regions, 100);
        assert_eq!(
            timeline.pieces(),
            &[
                TimelinePiece {
                    compact_start_ms: 0,
                    original_start_ms: 100,
                    len_ms: 300
                },
                TimelinePiece {
                    compact_start_ms: 400,
                    original_start_ms: 600,
                    len_ms: 400
                },
            ]
        );
        assert_eq!(compact.len(), 800 * 16);

        let (compact, timeline) = compact_speech(&samples, &[], 100);
        assert!(compact.is_empty());
        assert_eq!(timeline.to_original_ms(42), 42);
        let (compact, _) = compact_speech(&[], &regions, 100);
        assert!(compact.is_empty());
    }

    #[test]
    fn vad_is_send_and_sync() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Vad>();
    }
}
