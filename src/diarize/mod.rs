//! Speaker diarization: who spoke when, and which transcript words each speaker said.
//!
//! ```text
//! samples + speech regions ─ SpeakerEmbedder::embed_windows ─▶ 1.6 s windows, CAM++ x-vectors
//!                          ─ cluster (AHC + refinement)     ─▶ a speaker per window
//!                          ─ turns                           ─▶ Diarization (speakers, turns)
//! Transcript + Diarization ─ attribute                       ─▶ Transcript, one speaker per segment
//! ```
//!
//! Promises:
//! - Runs on the CPU with the CAM++ model installed by `qualscribe models fetch --model speaker`
//!   ([`crate::models::resolve_speaker`]); nothing leaves the machine.
//! - Every time is integer milliseconds on the original audio timeline. Turns lie inside the
//!   speech regions given; silence gives no turns.
//! - The number of speakers is estimated (1 to `max_speakers`, default 16) unless
//!   `num_speakers` fixes it; `min_speakers`/`max_speakers` bound the estimate.
//! - Speakers are `SPEAKER_00`, `SPEAKER_01`, … numbered by first appearance; turns are sorted
//!   by start, then end, then speaker.
//! - With overlap detection on (`overlap_margin`), where two speakers' voices seem mixed (a
//!   window almost equally close to two speakers) both speakers get a turn there and both turns
//!   are marked `overlap: true`. It is off by default because it raised DER on the corpus.
//! - Deterministic: the same input and config give byte-identical [`Diarization`] JSON.

mod campplus;
mod campplus_onnx;
mod cluster;
mod embed;
pub mod fbank;
mod ort_backend;
pub mod pyannote;
pub mod segment;
mod segment_onnx;
mod turns;
pub mod voices;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use campplus::EMBEDDING_DIM;
pub use embed::{FRAME_MS, SpeakerEmbedder, SpeakerWindow, WINDOW_FRAMES};
pub use pyannote::{LocalEmbedding, LocalSegmentation, Piece};
pub use turns::{SpeakerTurn, attribute, to_rttm_turns};

use crate::transcript::SpeechRegion;

/// Schema name written into every diarization JSON.
pub const SCHEMA_NAME: &str = "qualscribe.diarization";
/// Bumped whenever a field changes meaning or a required field is added.
pub const SCHEMA_VERSION: u32 = 1;

/// Which diarization recipe runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// CAM++ on 1.6 s windows inside the VAD's speech regions, clustered; one speaker at a time
    /// unless `overlap_margin` is set. What [`Method::Segmentation`] falls back to.
    Windows,
    /// The default. pyannote segmentation-3.0 over 10 s chunks, one CAM++ embedding per chunk
    /// and local speaker, clustered, then reconstructed with overlap ([`pyannote`]). Speech comes
    /// from segmentation, not the VAD; where it covers less than
    /// [`MIN_SEGMENTATION_SPEECH_SHARE`] of the VAD's speech the windows recipe runs instead
    /// ([`windows_fallback`]). Needs `models fetch --model segmentation`. On real voices held
    /// out from all tuning it beats the windows recipe (DER collar 0.25: AMI held-out half 21.2
    /// vs 33.2 %, voice mixes 4–6 10.1 vs 13.6 %, pyannote sample 0.6 vs 8.2 %, the 19 min
    /// 7-voice long2 12.3 % 7 of 7 vs 15.3 % 6 of 7), on the corpus's synthetic voices it is
    /// level (8.7 %, 7 of 8 counts right; windows 10.2 %, 6 of 8; interviews tuned
    /// `split_margin`), and with both networks in onnxruntime it costs about what windows cost.
    /// Its speakers are named by their clean voice (as profiles are made), which gives no wrong
    /// name on the held-out pairs but fewer names than windows: AMI 2 of 7, mixes 4–6 12 of 16,
    /// against 3 of 7 and 14 of 16 (see [`voices::VOICE_THRESHOLD`]). Default because a
    /// speaker turn given to the wrong person misleads every quote, while an unnamed speaker is
    /// renamed once.
    #[default]
    Segmentation,
}

/// How diarization runs. [`Default`] gives the documented defaults, tuned on the corpus (see
/// each field).
#[derive(Debug, Clone, PartialEq)]
pub struct DiarizeConfig {
    /// Exact number of speakers, when known; overrides `min_speakers`/`max_speakers`.
    pub num_speakers: Option<usize>,
    /// Fewest speakers to find (default 1).
    pub min_speakers: usize,
    /// Most speakers to find (default 16).
    pub max_speakers: usize,
    /// Step between the starts of consecutive 1.6 s windows, in ms (default 800; 10–1600).
    /// Smaller steps place speaker changes more precisely and cost proportionally more. With
    /// CAM++, 800 against 400 (examples/diarize_sweep): AMI held-out half 33.2 vs 33.4 % DER,
    /// tuning half 47.1 vs 46.9 %, voice mixes 10.8 % both, interviews 4.8 % and 6/7 both,
    /// pyannote sample 8.2 vs 9.0 %, FLEURS 50/50 one speaker, synthetic focus group 25.7 vs
    /// 25.0 % (4/5 both), at half the windows. (With GE2E, 600–800 miscounted 2–3 interviews.)
    /// Larger steps (1000–1600, with `smoothing_windows` 1–3) were measured as a cost lever
    /// (1600: 35 % fewer windows on real Spanish speech) and rejected: 1600 with smoothing 2
    /// held the tuning sets (AMI half 46.5 vs 47.9 %, mixes 1–3 11.3 vs 10.3 %) but took the
    /// pyannote sample's short turns from 8.2 to 18.0 % DER, and the settings that kept the
    /// sample under 13 % gave two enrolled names to the wrong person on mixes 4–6.
    pub step_ms: u64,
    /// Two groups of windows whose average cosine similarity is at least this belong to the
    /// same speaker (default 0.20; in −1..1), or the floor of the adapted threshold (see
    /// `threshold_margin`). Higher finds more speakers. Measured CAM++ window similarities, same
    /// vs different speaker: 0.49–0.64 vs −0.04–0.26 on real AMI meetings, 0.67 vs 0.34 on the
    /// pyannote sample, 0.69–0.80 vs 0.25–0.69 on the synthetic (espeak) Spanish sets.
    pub threshold: f32,
    /// Adapts the threshold to the recording: `max(threshold, m − margin)`, where `m` is the
    /// median over full windows of the similarity to the most similar window not overlapping
    /// it — how alike one voice sounds to itself in this recording. `None` keeps `threshold`
    /// fixed. Why: CAM++ hears the synthetic (espeak) voices as alike (`m` 0.84–0.89, different
    /// speakers up to 0.69) but real voices as distinct (`m` 0.40–0.78 on AMI, 0.66 on the
    /// pyannote sample), so no fixed threshold fits both. Default 0.30, chosen with the floor
    /// 0.20 on half of the AMI clips and the corpus sets: DER 47.9 % and 10.0 % (margins 0.25
    /// and 0.30 alike; 0.20: 46.5 % and 13.1 %; 0.35: 47.9 % and 13.5 %), against 50.8 % and
    /// 17.3 % for the best fixed threshold on both (0.40).
    pub threshold_margin: Option<f32>,
    /// A group of windows with less speech than this is not a speaker of its own (default
    /// 800 ms, counted as windows × step): its windows join the nearest speaker. Noise, laughter
    /// and mixed voices form such groups; a person who says almost nothing is merged too. On the
    /// AMI tuning half, 1600 ms and more merged the quieter people of short meetings (DER 51.2 %
    /// vs 50.8 %; 4000 ms: every clip one speaker, 55.2 %). Recordings with more than 80 s of
    /// speech ask 1 % of it instead (`min_speaker_speech_ms`).
    pub min_speaker_ms: u64,
    /// Each window's speaker is the majority among it and this many windows either side in the
    /// same speech region (default 3), which removes isolated one-window flips.
    pub smoothing_windows: usize,
    /// Overlap detection: a window whose similarity to its second-closest speaker is within this
    /// margin of its closest one (and at least `overlap_min_similarity`) is taken to hold both
    /// voices. `None` (the default) turns detection off: with a margin of 0.03 the pyannote
    /// sample's missed speech fell from 4.0 % to 1.0 % but false alarm rose by 5.6 % (DER 11.6 →
    /// 11.9 %), and AMI's DER rose by 1 point (its clips mostly come out as one speaker, so
    /// there is no second voice to add); wider margins were worse.
    pub overlap_margin: Option<f32>,
    /// The second speaker of an overlap must be at least this similar (default 0.5).
    pub overlap_min_similarity: f32,
    /// Enrolled voices ([`voices::load_profiles`]): speakers matching one get its name.
    pub voices: Vec<voices::VoiceProfile>,
    /// Least cosine similarity between a speaker and a profile for the name to be given
    /// (default [`voices::VOICE_THRESHOLD`], the same for both recipes).
    pub voice_threshold: f32,
    /// The recipe (default [`Method::Segmentation`]).
    pub method: Method,
    /// Segmentation: step between 10 s chunks, in ms (default 2500: each second of speech is
    /// embedded about 4 times, as in the windows path at its 400 ms step). Longer steps are
    /// cheaper but worse on the tuning sets (DER collar 0.25, AMI tuning half / mixes 1–3;
    /// held-out AMI half / mixes 4–6 / pyannote sample; CPU seconds against the windows recipe
    /// on AMI 14 clips and mixes 1–6, one thread): 2500: 33.2 / 8.8 %; 22.6 / 12.0 / 1.5 %;
    /// 5.1× and 5.3×. 5000: 36.0 / 10.2 %; 23.7 / 16.3 / 3.1 %; 3.4× and 2.8×. 10000: 40.1 /
    /// 20.5 %; 19.7 / 15.1 / 5.1 %; 1.9× and 1.5×. (Windows: 47.1 %; 33.2 / 13.6 / 8.2 %.)
    pub chunk_step_ms: u64,
    /// Segmentation: clusters of (chunk, local speaker) embeddings whose average similarity is
    /// at least this are one speaker. Default 0.45, chosen with the timeline-piece embeddings
    /// ([`pyannote::embed_local_speakers`]) on the AMI tuning half and mixes 1–3 (margin 0.25,
    /// DER collar 0.25): 0.35 39.0 / 6.2 %, 0.40 38.1 / 6.2 %, 0.45–0.55 34.5 / 6.2 %. (With
    /// the earlier per-chunk embeddings 0.40 was best: 33.9 % on the AMI tuning half.)
    pub segment_threshold: f32,
    /// Segmentation: a cluster of fewer (chunk, local speaker) embeddings than this is not a
    /// speaker of its own: it joins the nearest large one (pyannote's `min_cluster_size`,
    /// capped like pyannote's at a tenth of the clustered embeddings so a 30 s clip's quieter
    /// people still count). Default 5, chosen on the voice mixes 1–3 + AMI tuning half (with
    /// `piece_margin` 0): 1 → 5 took the mixes from 4/3 8/4 9/5 speakers to 3/3 4/4 5/5.
    pub min_cluster_chunks: usize,
    /// Segmentation: a (chunk, local speaker) helps build clusters only with at least this much
    /// speech alone in its chunk (default 500 ms); the others join the nearest cluster
    /// afterwards. On the AMI tuning half (threshold 0.40), DER at collar 0.25 / 0: 500 ms
    /// 33.9 / 40.4 %, 1000 ms 35.2 / 40.2 %, 2000 ms (pyannote's `min_active_ratio` 0.2 of a
    /// chunk) 36.5 / 40.8 %: quiet people of 30 s clips rarely speak 2 s alone in one chunk.
    /// Re-measured with the current recipe (session 9, issue 10's speaker count): 280–350 ms
    /// gets one more AMI tuning count right (trn04's third person, 3/7 → 4/7, DER 33.2 →
    /// 32.5 %), 250–260 ms breaks mixes 1–3 (5.9 → 14.4 %, mix3 5 → 4 speakers), 375 ms and up
    /// equals 500. Held out, 325 ms changed no count (AMI 1/7, mixes 4–6 2/3, sample, long2
    /// 7/7) and cost mixes 4–6 0.5 points (10.1 → 10.6 %), so 500 stays.
    pub min_alone_ms: u64,
    /// Segmentation: adapts `segment_threshold` to the recording like `threshold_margin` does
    /// for windows: `max(segment_threshold, m − margin)`, `m` the median similarity of an
    /// embedding to its most similar one from a chunk not overlapping its own. `None`: fixed.
    /// Default 0.25: on the synthetic focus group DER 72.2 % fixed → 38.1 % (0.1–0.3: 38.1–41.8 %;
    /// interviews 19.0 → 11.9 %); no DER change on the AMI tuning half or the pyannote sample
    /// (real voices: `m − 0.25` stays near the floor). On the AMI held-out half it cost 1.2
    /// points (22.3 % vs 21.1 % fixed), measured after choosing it.
    pub segment_margin: Option<f32>,
    /// Segmentation: a ~2 s piece of a local speaker whose embedding is nearer another speaker's
    /// centroid than its own by at least this takes that speaker for its frames
    /// ([`pyannote::piece_runs`]). `None`: a local speaker is one speaker throughout its chunk.
    /// Why: on the voice mixes segmentation often gives two voices taking turns one local
    /// speaker (35 of 83 local speakers in mix3 under 80 % one voice), whose embedding is a
    /// blend. Default 0 (the nearest centroid), on the tuning sets (threshold 0.40, margin 0.25,
    /// min chunks 5): mixes 1–3 DER 24.7 → 8.8 %, AMI tuning half 33.6 → 33.2 %; 0.1: 11.2 %
    /// and 32.5 %. Costs a second CAM++ pass over each local speaker's speech (the pieces).
    pub piece_margin: Option<f32>,
    /// Segmentation: a global speaker whose ~2 s pieces fall into two groups less alike than
    /// the clustering threshold plus this margin (each group at least `split_min_pieces`)
    /// sheds the smaller group as a new speaker unless it sounds like another speaker
    /// ([`pyannote::split_by_pieces`]). `None`: no split. Why: segmentation sometimes gives two
    /// voices one local speaker in most chunks (the corpus's synthetic interviews exp2 and
    /// exp5: the interviewer is alone in one chunk), so clustering the local speakers cannot
    /// tell them apart while their pieces can. Default 0.1 with 4 pieces; first 0 with 4, chosen on the tuning
    /// sets (interviews exp1/3/5/7, AMI tuning half, mixes 1–3): DER 6.5 → 0.5 % (2 speakers
    /// in 4 of 4, was 3), 34.5 → 34.5 %, 6.2 → 5.9 %; margins 0–0.2 gave the same, 2 or 3
    /// pieces over-split mixes and AMI. Held out: AMI 22.0 → 21.2 %, mixes 4–6 10.1 → 10.1 %,
    /// pyannote sample 0.6 → 0.6 %. The margin is 0.1 since a later session, chosen because it
    /// parts interview exp6 (one speaker at 0), so the interviews exp2/4/6 are tuning data for
    /// it, not a measurement: margins 0 / 0.05–0.15 / 0.2 / 0.25 give them 14.5 % 1/3 / 8.9 %
    /// 2/3 / 0.6 % 3/3 / 11.2 % 2/3, while 0.25 already over-splits the tuning interviews
    /// (15.9 %, 2/4) and AMI tuning half (37.9 %); 0.1 keeps a distance from that edge. The sets
    /// still held out do not move from 0 to 0.35 (AMI 21.2 %, mixes 4–6 10.1 %, sample 0.6 %).
    pub split_margin: Option<f32>,
    /// Fewest pieces in each group of a split (see `split_margin`).
    pub split_min_pieces: usize,
    /// Segmentation: a speaker with less speech alone than this (after clustering and the
    /// split) is not a person of its own: its local speakers join the most alike larger
    /// speaker ([`pyannote::absorb_small_speakers`], pyannote's `min_cluster_size` rule in
    /// seconds). Respects `min_speakers`; not applied with `num_speakers`. 0: off. Default
    /// 750 ms, chosen on the tuning sets (AMI tuning half, mixes 1–3, interviews exp1/3/5/7;
    /// DER collar 0.25, speaker count): off 34.5 % 3/7 (tst00 5 of 4); 500 ms 34.5 % 2/7;
    /// 750 ms 33.2 % 3/7 (tst00 4 of 4, trn04's 0.3 s stray speaker gone); 1000–1750 ms
    /// 34.0 % 3/7; 2000 ms 33.4 % 2/7; 2500 ms 33.2 % 2/7; mixes 1–3 (5.9 %, 3/3) and the
    /// interviews (0.5 %, 4/4) the same at every value. Counting overlapped speech too, no
    /// value up to 4 s helped (tst00's stray speakers speak mostly in overlap). Recordings with
    /// more than 75 s of speech alone ask 1 % of it instead (`min_speaker_speech_ms`).
    pub segment_min_speaker_ms: u64,
    /// Segmentation: after the speech floor (`segment_min_speaker_ms`), speakers whose voices
    /// (the piece means naming compares, `segmented_speaker_voices`) are at least this alike
    /// are one ([`pyannote::merge_alike_speakers`]); not applied with `num_speakers`, nor where
    /// it would leave fewer than `min_speakers`; only on recordings of 10 min or more
    /// (`MERGE_MIN_RECORDING_MS`). None: off. DER collar 0.25, found/true.
    ///
    /// Default 0.65. Until then speakers were merged before the floor by their clustering
    /// centroids at 0.85 (chosen on long1 / long60t / long90t of
    /// `scripts/make-long-voice-mix.py`, 7 real voices: without a merge 13 of 7 at 90 min, a
    /// varied voice cut into clusters 0.9-0.99 alike). One-to-one interviews
    /// (`make-long-voice-mix.py --interviews`, two real voices, 20-45 min) showed a voice
    /// recorded in many sessions (the GSM prompts of July and Armelle) cut into its main
    /// speaker and several of 20-40 s, each over the 1 % floor when only two people talk, that
    /// the centroids do not join: their local speakers hold both voices, the pieces do not.
    /// Tuning (long1 / long60t / long90t / int20t / int40t): centroids at 0.85 9.9 % (8/7 7/7
    /// 6/7 2/2 3/2), at 0.75 9.4 % (8/7 … 2/2); voices 0.55 32.9 % (two people merge),
    /// 0.6-0.7 9.3 % (7/7 7/7 6/7 2/2 2/2; the middle taken), 0.75 9.4 % (8/7). Held out
    /// (long2 / long60h / long90h / long120h / int30h / int45h), centroids 0.85 → voices 0.65:
    /// 11.4 / 12.9 / 13.6 / 15.7 / 18.4 / 22.9 % → 11.4 / 12.9 / 13.6 / 13.6 / 7.9 / 16.6 %,
    /// found 7 6 6 7 8 5 → 7 6 6 6 2 2 for 7 7 7 7 2 2 (long120h's 7 had been the wrong 7: one
    /// voice split in two, the quiet participant without a speaker; now the voice is one).
    pub segment_merge_above: Option<f32>,
    /// Segmentation: after the clean voices are made ([`voices::set_clean_voices`]), speakers
    /// whose clean voices are at least this alike, the smaller with under 15 s of speech
    /// ([`voices::VOICE_MERGE_MAX_SMALL_MS`]), are one ([`voices::merge_alike_voices`]), on
    /// recordings of any length; not applied with `num_speakers`, nor below `min_speakers`.
    /// None: off, the default. 0.58 (with the 15 s gate) was chosen on the tuning halves
    /// (`scripts/make-many-voice-mix.py` many8t/10t/12t, AMI tuning clips, mixes 1-3, long1):
    /// many*t 23.5 % 7/8 12/10 13/12 → 22.2 % 7/8 10/10 12/12, held-out many*h 24.4 % 11/8 11/10
    /// 14/12 → 21.4 % 9/8 10/10 13/12, AMI unchanged, but held-out mixes 4-6 lost a voice in mix5
    /// and mix6 (mixes 1-6 8.1 % 5/6 → 10.4 % 4/6): Menardi's and Irina's clean voices are
    /// 0.58-0.62 alike with 9-12 s of speech, as alike as a person's strays. Kept for
    /// `diarize_sweep --voice-merge-above` until something tells strays from such pairs.
    pub voice_merge_above: Option<f32>,
}

impl Default for DiarizeConfig {
    fn default() -> Self {
        DiarizeConfig {
            num_speakers: None,
            min_speakers: 1,
            max_speakers: 16,
            step_ms: 800,
            threshold: 0.20,
            min_speaker_ms: 800,
            threshold_margin: Some(0.30),
            smoothing_windows: 3,
            overlap_margin: None,
            overlap_min_similarity: 0.5,
            voices: Vec::new(),
            voice_threshold: voices::VOICE_THRESHOLD,
            method: Method::default(),
            chunk_step_ms: 2500,
            segment_threshold: 0.45,
            min_cluster_chunks: 5,
            min_alone_ms: 500,
            segment_margin: Some(0.25),
            piece_margin: Some(0.0),
            split_margin: Some(0.1),
            split_min_pieces: 4,
            segment_min_speaker_ms: 750,
            segment_merge_above: Some(0.65),
            voice_merge_above: None,
        }
    }
}

impl DiarizeConfig {
    /// Checks the settings; each problem is one line saying what to change.
    pub fn validate(&self) -> Result<(), DiarizeError> {
        if self.num_speakers == Some(0) {
            return Err(DiarizeError::ZeroSpeakers);
        }
        if self.min_speakers == 0 {
            return Err(DiarizeError::ZeroMinSpeakers);
        }
        if self.num_speakers.is_none() && self.min_speakers > self.max_speakers {
            return Err(DiarizeError::MinAboveMax {
                min: self.min_speakers,
                max: self.max_speakers,
            });
        }
        if !(FRAME_MS..=WINDOW_FRAMES as u64 * FRAME_MS).contains(&self.step_ms) {
            return Err(DiarizeError::BadStep {
                step_ms: self.step_ms,
            });
        }
        if !(1000..=10_000).contains(&self.chunk_step_ms) {
            return Err(DiarizeError::BadChunkStep {
                step_ms: self.chunk_step_ms,
            });
        }
        let similarities = [
            ("segment_threshold", self.segment_threshold),
            ("threshold", self.threshold),
            ("overlap_min_similarity", self.overlap_min_similarity),
            ("overlap_margin", self.overlap_margin.unwrap_or(0.0)),
            ("voice_threshold", self.voice_threshold),
            ("threshold_margin", self.threshold_margin.unwrap_or(0.0)),
            ("segment_margin", self.segment_margin.unwrap_or(0.0)),
            ("piece_margin", self.piece_margin.unwrap_or(0.0)),
            ("split_margin", self.split_margin.unwrap_or(0.0)),
            (
                "segment_merge_above",
                self.segment_merge_above.unwrap_or(0.0),
            ),
            ("voice_merge_above", self.voice_merge_above.unwrap_or(0.0)),
        ];
        for (name, value) in similarities {
            if !(-1.0..=1.0).contains(&value) {
                return Err(DiarizeError::BadSimilarity { name, value });
            }
        }
        Ok(())
    }
}

/// What can go wrong. Messages are one line saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum DiarizeError {
    /// `num_speakers` is 0.
    #[error("the number of speakers must be at least 1 (got 0)")]
    ZeroSpeakers,
    /// `min_speakers` is 0.
    #[error("the minimum number of speakers must be at least 1 (got 0)")]
    ZeroMinSpeakers,
    /// `min_speakers > max_speakers`.
    #[error("the minimum number of speakers ({min}) is greater than the maximum ({max})")]
    MinAboveMax {
        /// The minimum asked for.
        min: usize,
        /// The maximum asked for.
        max: usize,
    },
    /// The window step is outside 10–1600 ms.
    #[error("the window step must be between 10 and 1600 ms (got {step_ms} ms)")]
    BadStep {
        /// The step asked for.
        step_ms: u64,
    },
    /// The chunk step is outside 1000–10000 ms.
    #[error("the segmentation chunk step must be between 1000 and 10000 ms (got {step_ms} ms)")]
    BadChunkStep {
        /// The step asked for.
        step_ms: u64,
    },
    /// Segmentation was asked for but its model is not loaded.
    #[error(
        "speaker method `segmentation` needs the segmentation model: run `qualscribe models fetch --model segmentation`"
    )]
    NoSegmenter,
    /// A similarity setting is outside −1..1 (or not a number).
    #[error("{name} is a cosine similarity and must be between -1 and 1 (got {value})")]
    BadSimilarity {
        /// The setting.
        name: &'static str,
        /// Its value.
        value: f32,
    },
    /// The speaker model file cannot be read as safetensors.
    #[error(
        "cannot read the speaker model {}; run `qualscribe models fetch --model speaker --force` to reinstall it",
        path.display()
    )]
    ModelUnreadable {
        /// The model file.
        path: PathBuf,
        /// What candle reported.
        #[source]
        source: candle_core::Error,
    },
    /// The speaker model lacks a tensor or has one of the wrong shape.
    #[error(
        "the speaker model {} is not the CAM++ model: tensor `{tensor}` {problem}; run `qualscribe models fetch --model speaker --force`",
        path.display()
    )]
    ModelInvalid {
        /// The model file.
        path: PathBuf,
        /// The tensor concerned.
        tensor: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The segmentation model is missing a tensor, has a wrong one, or cannot be read.
    #[error(
        "cannot use the segmentation model {}: {problem}; run `qualscribe models fetch --model segmentation --force`",
        path.display()
    )]
    SegmentationModel {
        /// The model file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The installed onnxruntime library cannot be loaded or cannot make a session.
    #[error(
        "cannot use the onnxruntime library {}: {message}; run `qualscribe models fetch --model onnxruntime --force` to reinstall it",
        path.display()
    )]
    OnnxruntimeLibrary {
        /// The library file.
        path: PathBuf,
        /// What onnxruntime reported.
        message: String,
    },
    /// onnxruntime failed while running the speaker model.
    #[error("{what} failed in onnxruntime: {source}")]
    Onnxruntime {
        /// What was being done.
        what: String,
        /// What onnxruntime reported.
        #[source]
        source: ort::Error,
    },
    /// A tensor operation failed while embedding or clustering.
    #[error("speaker embedding failed: {source}")]
    Inference {
        /// What candle reported.
        #[source]
        source: candle_core::Error,
    },
}

/// Who spoke when in one recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diarization {
    /// Always [`SCHEMA_NAME`].
    pub schema: String,
    /// Always [`SCHEMA_VERSION`] when written by this version.
    pub schema_version: u32,
    /// The recording's id (file stem; the RTTM `uri`).
    pub uri: String,
    /// Speakers in order of first appearance.
    pub speakers: Vec<Speaker>,
    /// Turns sorted by start, end, speaker.
    pub turns: Vec<SpeakerTurn>,
    /// The resolved settings, for reproducibility.
    pub settings: DiarizeSettings,
}

/// One speaker found in a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Speaker {
    /// `SPEAKER_00`, `SPEAKER_01`, … numbered by first appearance.
    pub id: String,
    /// A human name given later (e.g. "Moderadora"); shown instead of the id when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Total duration of this speaker's turns (overlapped time included).
    pub speech_ms: u64,
    /// The speaker's unit-length voice embedding (what naming compares with profiles and what a
    /// profile is enrolled from without the audio): the windows recipe's mean of the speaker's
    /// windows; with the segmentation recipe, when voices were compared ([`diarize`] with
    /// profiles), the mean of the windows of its cleanest speech, made as a voice profile is
    /// ([`voices::set_clean_voices`], and `voice_purity` is set), else the recipe's own mean of
    /// its pieces ([`needs_clean_voices`]). Absent in diarizations of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    /// How alike the windows of the speaker's cleanest speech are (mean cosine to their mean,
    /// [`voices::CleanVoice::purity`]); set with the clean voice ([`voices::set_clean_voices`]),
    /// else absent. A diagnostic for `scripts/measure-voices.py --min-purity`; naming does not
    /// use it (no value separated merged speakers on the tuning half).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_purity: Option<f32>,
}

impl Speaker {
    /// The name if one was given, else the id.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// The settings a diarization was made with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiarizeSettings {
    /// Exact count asked for, if any.
    pub num_speakers: Option<usize>,
    /// Lower bound on the count.
    pub min_speakers: usize,
    /// Upper bound on the count.
    pub max_speakers: usize,
    /// Window length (always 1600).
    pub window_ms: u64,
    /// Window step.
    pub step_ms: u64,
    /// Clustering similarity threshold (the floor, when adapted).
    pub threshold: f32,
    /// Margin of the adapted threshold (`None`: fixed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_margin: Option<f32>,
    /// The threshold used for this recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_used: Option<f32>,
    /// Least speech for a speaker of its own.
    pub min_speaker_ms: u64,
    /// Majority-filter radius in windows.
    pub smoothing_windows: usize,
    /// Overlap margin (`None`: overlap detection off).
    pub overlap_margin: Option<f32>,
    /// Least similarity of an overlap's second speaker.
    pub overlap_min_similarity: f32,
    /// The recipe (absent: windows, as before it could be chosen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// Segmentation: step between 10 s chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_step_ms: Option<u64>,
    /// Segmentation: clustering threshold of the local speakers (the floor, when adapted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_threshold: Option<f32>,
    /// Segmentation: margin of a speaker's split by its pieces (absent: no split, or windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_margin: Option<f32>,
    /// Segmentation: fewest pieces in each group of a split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_min_pieces: Option<usize>,
    /// Segmentation: speakers with voices at least this alike were merged, on recordings of
    /// 10 min or more (absent: off, or windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_merge_above: Option<f32>,
    /// Segmentation: speakers with clean voices at least this alike were merged (absent: off,
    /// or windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_merge_above: Option<f32>,
    /// Why the windows recipe ran although segmentation was asked for (segmentation heard too
    /// little of the VAD's speech, [`needs_windows_fallback`]); absent when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// SHA-256 of the speaker model file.
    pub model_sha256: String,
    /// qualscribe version that made it.
    pub qualscribe_version: String,
}

impl Diarization {
    /// A diarization of recording `uri` in this version's schema.
    pub fn new(
        uri: &str,
        speakers: Vec<Speaker>,
        turns: Vec<SpeakerTurn>,
        settings: DiarizeSettings,
    ) -> Self {
        Diarization {
            schema: SCHEMA_NAME.to_string(),
            schema_version: SCHEMA_VERSION,
            uri: uri.to_string(),
            speakers,
            turns,
            settings,
        }
    }

    /// The speaker with this id.
    pub fn speaker(&self, id: &str) -> Option<&Speaker> {
        self.speakers.iter().find(|s| s.id == id)
    }

    /// The name to show for a speaker id: its `name` if set, else the id itself.
    pub fn display_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.speaker(id).map_or(id, Speaker::display_name)
    }
}

/// Finds who spoke when in `samples_16k` (16 kHz mono) within the `speech` regions (from
/// [`crate::vad::Vad::detect`]). `uri` names the recording in the result. With the
/// segmentation recipe, when voices are compared (`cfg.voices` given, or
/// [`DiarizeConfig::voice_merge_above`] set), each speaker's embedding is then its voice made
/// the way a profile is ([`voices::set_clean_voices`]; see [`voices::VOICE_THRESHOLD`] for why
/// only there), and speakers matching `cfg.voices` are named.
pub fn diarize(
    embedder: &SpeakerEmbedder,
    uri: &str,
    samples_16k: &[f32],
    speech: &[SpeechRegion],
    cfg: &DiarizeConfig,
) -> Result<Diarization, DiarizeError> {
    let mut d = find_speakers(embedder, uri, samples_16k, speech, cfg)?;
    if cfg.method == Method::Segmentation && compares_voices(cfg) {
        voices::set_clean_voices(embedder, samples_16k, &mut d)?;
        merge_alike_voices(embedder, samples_16k, &mut d, cfg)?;
    }
    voices::name_speakers(&mut d.speakers, &cfg.voices, cfg.voice_threshold);
    Ok(d)
}

/// Whether `cfg` compares speakers' clean voices: with profiles to name by, or to merge alike
/// voices. Only then are they made: they take a CAM++ pass over up to
/// [`voices::NAMING_VOICE_MS`] of every speaker (10 min of Spanish, 13 speakers: 3.3 s of a
/// 13.4 s speaker stage), and nothing else reads them. A saved diarization made without them
/// gets them when it is named later ([`needs_clean_voices`]).
fn compares_voices(cfg: &DiarizeConfig) -> bool {
    !cfg.voices.is_empty() || voice_merge_threshold(cfg).is_some()
}

/// The [`DiarizeConfig::voice_merge_above`] in force: none when the speaker count is given.
fn voice_merge_threshold(cfg: &DiarizeConfig) -> Option<f32> {
    cfg.voice_merge_above.filter(|_| cfg.num_speakers.is_none())
}

/// Whether naming the speakers of saved diarization `d` needs their clean voices made first
/// ([`voices::set_clean_voices`], from the recording), as [`diarize`] makes them when given
/// profiles: the segmentation recipe (or its windows fallback) without them (made without
/// profiles), where a speaker's embedding is still the recipe's own mean of its pieces, which
/// named fewer people and once wrongly ([`voices::VOICE_THRESHOLD`]).
pub fn needs_clean_voices(d: &Diarization) -> bool {
    (d.settings.method == Some(Method::Segmentation) || d.settings.fallback.is_some())
        && !d.speakers.is_empty()
        && d.speakers.iter().all(|s| s.voice_purity.is_none())
}

/// [`voices::merge_alike_voices`] with `cfg`'s [`DiarizeConfig::voice_merge_above`] (not with
/// `num_speakers`), on a diarization whose speakers have their clean voices.
pub fn merge_alike_voices(
    embedder: &SpeakerEmbedder,
    samples_16k: &[f32],
    d: &mut Diarization,
    cfg: &DiarizeConfig,
) -> Result<bool, DiarizeError> {
    match voice_merge_threshold(cfg) {
        Some(min_cos) => {
            voices::merge_alike_voices(embedder, samples_16k, d, min_cos, cfg.min_speakers)
        }
        None => Ok(false),
    }
}

/// Who spoke when, by `cfg.method` (with the windows fallback), before clean voices and names.
fn find_speakers(
    embedder: &SpeakerEmbedder,
    uri: &str,
    samples_16k: &[f32],
    speech: &[SpeechRegion],
    cfg: &DiarizeConfig,
) -> Result<Diarization, DiarizeError> {
    cfg.validate()?;
    if cfg.method == Method::Segmentation {
        let segmenter = embedder.segmenter().ok_or(DiarizeError::NoSegmenter)?;
        let seg = pyannote::segment_recording(segmenter, samples_16k, cfg.chunk_step_ms)?;
        let local = pyannote::embed_local_speakers(embedder, samples_16k, &seg)?;
        let segmented = diarize_segmented(uri, &seg, &local, cfg, embedder.model_sha256())?;
        if !needs_windows_fallback(&segmented, speech) {
            return Ok(segmented);
        }
        let windows = embedder.embed_windows(samples_16k, speech, cfg.step_ms)?;
        return windows_fallback(uri, speech, &windows, cfg, embedder.model_sha256());
    }
    let windows = embedder.embed_windows(samples_16k, speech, cfg.step_ms)?;
    diarize_windows(uri, speech, &windows, cfg, embedder.model_sha256())
}

/// Segmentation's turns must cover at least this share of the speech the VAD heard, else the
/// windows recipe runs on the VAD's regions instead ([`windows_fallback`]). Why: segmentation
/// hears nothing in some quiet or very short recordings the VAD (and so Whisper) hears speech
/// in (AMI trn01: 4 people, 5.8 s of short quiet utterances; a 1 s speech clip), which would
/// leave every word without a speaker. Measured share on recordings where segmentation works:
/// see `examples/diarize_sweep.rs --segmentation` (it prints each recording's share).
pub const MIN_SEGMENTATION_SPEECH_SHARE: f64 = 0.5;

/// The share of the VAD's speech (`speech`) covered by the diarization's turns, in 0..=1;
/// `None` when the VAD heard no speech.
pub fn vad_speech_share(diarization: &Diarization, speech: &[SpeechRegion]) -> Option<f64> {
    let vad_ms: u64 = speech
        .iter()
        .map(|r| r.end_ms.saturating_sub(r.start_ms))
        .sum();
    if vad_ms == 0 {
        return None;
    }
    let turns: Vec<SpeechRegion> = diarization
        .turns
        .iter()
        .map(|t| SpeechRegion {
            start_ms: t.start_ms,
            end_ms: t.end_ms,
        })
        .collect();
    // Overlapping turns count once.
    let merged = crate::vad::merged_regions(&turns, u64::MAX);
    let covered: u64 = speech
        .iter()
        .map(|r| {
            merged
                .iter()
                .map(|m| {
                    m.end_ms
                        .min(r.end_ms)
                        .saturating_sub(m.start_ms.max(r.start_ms))
                })
                .sum::<u64>()
        })
        .sum();
    Some(covered as f64 / vad_ms as f64)
}

/// True when a segmentation result covers less than [`MIN_SEGMENTATION_SPEECH_SHARE`] of the
/// VAD's speech, so the windows recipe should run instead.
pub fn needs_windows_fallback(segmented: &Diarization, speech: &[SpeechRegion]) -> bool {
    vad_speech_share(segmented, speech).is_some_and(|s| s < MIN_SEGMENTATION_SPEECH_SHARE)
}

/// The windows recipe on the VAD's regions, for a recording segmentation heard too little
/// speech in; `settings.fallback` says so. Should even the windows find no speaker (too little
/// speech to cluster), the VAD's regions become one speaker's turns, so no word that the VAD
/// heard is left without a speaker.
pub fn windows_fallback(
    uri: &str,
    speech: &[SpeechRegion],
    windows: &[SpeakerWindow],
    cfg: &DiarizeConfig,
    model_sha256: &str,
) -> Result<Diarization, DiarizeError> {
    let windows_cfg = DiarizeConfig {
        method: Method::Windows,
        ..cfg.clone()
    };
    let mut d = diarize_windows(uri, speech, windows, &windows_cfg, model_sha256)?;
    if d.turns.is_empty() && !speech.is_empty() {
        d = one_speaker(uri, speech, windows, &windows_cfg, model_sha256);
    }
    d.settings.fallback = Some(format!(
        "segmentation heard less than {:.0} % of the VAD's speech; speakers from the windows recipe",
        100.0 * MIN_SEGMENTATION_SPEECH_SHARE
    ));
    Ok(d)
}

/// All of `speech` as one speaker's turns (the speaker's embedding: the mean of all windows).
fn one_speaker(
    uri: &str,
    speech: &[SpeechRegion],
    windows: &[SpeakerWindow],
    cfg: &DiarizeConfig,
    model_sha256: &str,
) -> Diarization {
    let id = "SPEAKER_00".to_string();
    let turns: Vec<SpeakerTurn> = speech
        .iter()
        .filter(|r| r.end_ms > r.start_ms)
        .map(|r| SpeakerTurn {
            start_ms: r.start_ms,
            end_ms: r.end_ms,
            speaker: id.clone(),
            overlap: false,
        })
        .collect();
    let embedding = windows.first().map(|first| {
        let mut sum = vec![0f32; first.embedding.len()];
        for w in windows {
            sum.iter_mut().zip(&w.embedding).for_each(|(s, x)| *s += x);
        }
        embed::l2_normalize(&mut sum);
        sum
    });
    let speakers = vec![Speaker {
        id,
        name: None,
        speech_ms: turns.iter().map(|t| t.end_ms - t.start_ms).sum(),
        embedding,
        voice_purity: None,
    }];
    let settings = settings(cfg, model_sha256, cfg.threshold);
    Diarization::new(uri, speakers, turns, settings)
}

/// The clustering and reconstruction half of the segmentation recipe, on a recording already
/// segmented and embedded ([`pyannote::segment_recording`], [`pyannote::embed_local_speakers`]):
/// re-running with other clustering settings costs milliseconds.
pub fn diarize_segmented(
    uri: &str,
    seg: &pyannote::LocalSegmentation,
    local: &[pyannote::LocalEmbedding],
    cfg: &DiarizeConfig,
    model_sha256: &str,
) -> Result<Diarization, DiarizeError> {
    cfg.validate()?;
    let threshold = pyannote::recording_threshold(local, cfg);
    let (mut labels, mut centroids) = pyannote::assign_global(local, cfg, threshold)?;
    if let Some(margin) = cfg.split_margin
        && cfg.num_speakers.is_none()
    {
        let split = pyannote::split_by_pieces(local, &labels, &centroids, threshold, margin, cfg);
        if let Some((l, c)) = split {
            (labels, centroids) = (l, c);
        }
    }
    let mut active = segmented_activity(seg, local, &labels, &centroids, cfg);
    if cfg.num_speakers.is_none() && cfg.segment_min_speaker_ms > 0 {
        let speech = pyannote::alone_ms_per_speaker(&active, centroids.len());
        let min_ms = min_speaker_speech_ms(cfg.segment_min_speaker_ms, speech.iter().sum());
        let known = voices::enrolled_clusters(&centroids, &cfg.voices, cfg.voice_threshold);
        let absorbed = pyannote::absorb_small_speakers(
            local,
            &labels,
            &centroids,
            &speech,
            min_ms,
            cfg.min_speakers,
            &known,
        );
        if let Some((l, c)) = absorbed {
            (labels, centroids) = (l, c);
            active = segmented_activity(seg, local, &labels, &centroids, cfg);
        }
    }
    // After the floor, so a stray the floor folds away is not what a merge compares.
    if let Some(min_cos) = cfg.segment_merge_above
        && cfg.num_speakers.is_none()
        && seg.n_samples as u64 / 16 >= MERGE_MIN_RECORDING_MS
    {
        let voices = |l: &[usize], c: &[Vec<f32>]| segmented_speaker_voices(local, l, c, cfg);
        let merged = pyannote::merge_alike_speakers(local, &labels, &centroids, min_cos, voices);
        if let Some((l, c)) = merged
            && c.len() >= cfg.min_speakers
        {
            (labels, centroids) = (l, c);
            active = segmented_activity(seg, local, &labels, &centroids, cfg);
        }
    }
    let raw = pyannote::frame_turns(&active, centroids.len());
    let (order, turns) = pyannote::number_speakers(&raw);
    let mut voices = segmented_speaker_voices(local, &labels, &centroids, cfg);
    let speakers: Vec<Speaker> = order
        .iter()
        .enumerate()
        .map(|(n, &c)| {
            let id = turns::speaker_id(n);
            let sum = std::mem::take(&mut voices[c]);
            Speaker {
                speech_ms: turns
                    .iter()
                    .filter(|t| t.speaker == id)
                    .map(|t| t.end_ms - t.start_ms)
                    .sum(),
                id,
                name: None,
                embedding: Some(sum),
                voice_purity: None,
            }
        })
        .collect();
    let mut settings = settings(cfg, model_sha256, threshold);
    settings.threshold_margin = cfg.segment_margin;
    settings.window_ms = segment::CHUNK_SAMPLES as u64 / 16;
    settings.threshold = cfg.segment_threshold;
    settings.min_speaker_ms = cfg.segment_min_speaker_ms;
    Ok(Diarization::new(uri, speakers, turns, settings))
}

/// Per global frame, the active global speakers of the segmentation recipe (pieces taking
/// the nearest speaker with `piece_margin`).
fn segmented_activity(
    seg: &pyannote::LocalSegmentation,
    local: &[pyannote::LocalEmbedding],
    labels: &[usize],
    centroids: &[Vec<f32>],
    cfg: &DiarizeConfig,
) -> Vec<Vec<usize>> {
    match cfg.piece_margin {
        Some(margin) => {
            let runs = pyannote::piece_runs(local, labels, centroids, margin);
            pyannote::reconstruct_runs(seg, local, &runs, centroids.len())
        }
        None => pyannote::reconstruct(seg, local, labels, centroids.len()),
    }
}

/// Each speaker's embedding in the segmentation recipe (what enrolment, naming and
/// [`pyannote::merge_alike_speakers`] compare), indexed by speaker: the normalised mean of the
/// ~2 s pieces that [`pyannote::piece_speaker`] gives it (with `piece_margin`), plus the whole
/// embedding of each local speaker labelled with it that has no pieces. Why pieces rather than
/// whole local speakers: a local speaker often holds two voices taking turns, so the mean of
/// whole ones blends in other people; measured with scripts/measure-voices.py (see the report
/// of issue 10).
fn segmented_speaker_voices(
    local: &[pyannote::LocalEmbedding],
    labels: &[usize],
    centroids: &[Vec<f32>],
    cfg: &DiarizeConfig,
) -> Vec<Vec<f32>> {
    let mut sums = vec![vec![0f32; EMBEDDING_DIM]; centroids.len()];
    let mut add = |c: usize, e: &[f32]| {
        if let Some(sum) = sums.get_mut(c) {
            sum.iter_mut().zip(e).for_each(|(s, x)| *s += x);
        }
    };
    for (e, &own) in local.iter().zip(labels) {
        match cfg.piece_margin {
            Some(margin) if !e.pieces.is_empty() => e.pieces.iter().for_each(|p| {
                add(
                    pyannote::piece_speaker(p, own, centroids, margin),
                    &p.embedding,
                )
            }),
            _ => add(own, &e.embedding),
        }
    }
    for sum in &mut sums {
        embed::l2_normalize(sum);
    }
    sums
}

/// The clustering half of [`diarize`], on windows already embedded with
/// [`SpeakerEmbedder::embed_windows`] at `cfg.step_ms`: re-running with another speaker count or
/// threshold then costs milliseconds instead of another pass of the encoder.
pub fn diarize_windows(
    uri: &str,
    speech: &[SpeechRegion],
    windows: &[SpeakerWindow],
    cfg: &DiarizeConfig,
    model_sha256: &str,
) -> Result<Diarization, DiarizeError> {
    cfg.validate()?;
    let threshold_used = recording_threshold(windows, cfg);
    let labels = label_windows(windows, cfg, threshold_used)?;
    let (mut speakers, turns) = turns::build(speech, windows, &labels);
    set_speaker_embeddings(&mut speakers, &turns, windows);
    let settings = settings(cfg, model_sha256, threshold_used);
    Ok(Diarization::new(uri, speakers, turns, settings))
}

fn settings(cfg: &DiarizeConfig, model_sha256: &str, threshold_used: f32) -> DiarizeSettings {
    let segmentation = cfg.method == Method::Segmentation;
    DiarizeSettings {
        num_speakers: cfg.num_speakers,
        min_speakers: cfg.min_speakers,
        max_speakers: cfg.max_speakers,
        window_ms: WINDOW_FRAMES as u64 * FRAME_MS,
        step_ms: cfg.step_ms,
        threshold: cfg.threshold,
        threshold_margin: cfg.threshold_margin,
        threshold_used: Some(threshold_used),
        min_speaker_ms: cfg.min_speaker_ms,
        smoothing_windows: cfg.smoothing_windows,
        overlap_margin: cfg.overlap_margin,
        overlap_min_similarity: cfg.overlap_min_similarity,
        method: Some(cfg.method),
        chunk_step_ms: segmentation.then_some(cfg.chunk_step_ms),
        segment_threshold: segmentation.then_some(cfg.segment_threshold),
        split_margin: cfg.split_margin.filter(|_| segmentation),
        split_min_pieces: (segmentation && cfg.split_margin.is_some())
            .then_some(cfg.split_min_pieces),
        segment_merge_above: cfg.segment_merge_above.filter(|_| segmentation),
        voice_merge_above: cfg.voice_merge_above.filter(|_| segmentation),
        fallback: None,
        model_sha256: model_sha256.to_string(),
        qualscribe_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// Full windows compared when adapting the threshold (evenly spaced): bounds the cost on long
/// recordings to ~1000² dot products.
const ADAPT_MAX_WINDOWS: usize = 1000;
/// Fewer comparable windows than this: too little to measure, the threshold stays fixed.
const ADAPT_MIN_WINDOWS: usize = 5;

/// Shortest recording (ms) whose speakers are merged ([`DiarizeConfig::segment_merge_above`]).
/// Why a length: the fragmentation it undoes grows with length, while on short recordings two
/// real voices can be that alike: mix3 (`scripts/make-voice-mix.py`, 2 min, tuning) lost one
/// of its 5 voices when merged by centroid at 0.85 (mixes 1-6 8.1 % 5/6 → 12.2 % 4/6) and at
/// 0.75. Merged by voice at 0.65, the short tuning sets (AMI tuning half, mixes 1-3,
/// many8t/10t/12t, interviews exp1/3/5/7) do not change, but held out it joins the two
/// (synthetic) voices of interview exp6 and an AMI person of trn09, although it also takes the
/// many-speaker mixes many8h/10h/12h from 11/8 11/10 14/12 to 8/8 10/10 13/12: the length stays.
const MERGE_MIN_RECORDING_MS: u64 = 10 * 60 * 1000;

/// Least share of a recording's speech (1 / this) a speaker of its own must have, on top of
/// the fixed `min_speaker_ms` / `segment_min_speaker_ms`.
const MIN_SPEAKER_SHARE_INV: u64 = 100;

/// The least speech (ms) of a speaker of its own in a recording with `speech_ms` of speech:
/// the fixed floor, or 1 % of the speech when that is more. Why: the stray clusters (a voice's
/// codec-coloured or overlapped stretches, noise) grow in number and size with the length of a
/// recording, while a fixed floor tuned on 30 s clips does not. On the 15 min, 7-voice
/// recording long1 (`scripts/make-long-voice-mix.py`, tuning) the fixed floors found 16 speakers
/// (windows) and 13 (segmentation), the extra ones 2-10 s each. Recordings under ~80 s of
/// speech (AMI clips, the pyannote sample) keep the fixed floor exactly.
fn min_speaker_speech_ms(floor_ms: u64, speech_ms: u64) -> u64 {
    floor_ms.max(speech_ms / MIN_SPEAKER_SHARE_INV)
}

/// The clustering threshold for this recording (see [`DiarizeConfig::threshold_margin`]).
fn recording_threshold(windows: &[SpeakerWindow], cfg: &DiarizeConfig) -> f32 {
    let Some(margin) = cfg.threshold_margin else {
        return cfg.threshold;
    };
    let full: Vec<&SpeakerWindow> = windows.iter().filter(|w| w.is_full()).collect();
    let step = full.len().div_ceil(ADAPT_MAX_WINDOWS).max(1);
    let sample: Vec<&SpeakerWindow> = full.iter().step_by(step).copied().collect();
    let window_ms = WINDOW_FRAMES as u64 * FRAME_MS;
    let mut nearest: Vec<f32> = sample
        .iter()
        .filter_map(|a| {
            sample
                .iter()
                .filter(|b| a.start_ms.abs_diff(b.start_ms) >= window_ms)
                .map(|b| cluster::dot(&a.embedding, &b.embedding))
                .max_by(f32::total_cmp)
        })
        .collect();
    if nearest.len() < ADAPT_MIN_WINDOWS {
        return cfg.threshold;
    }
    nearest.sort_by(f32::total_cmp);
    let median = nearest[nearest.len() / 2];
    (median - margin).max(cfg.threshold)
}

/// Each speaker's embedding: the normalised mean of the windows whose centre lies in one of its
/// turns without overlap (full-length windows when there are any, as they are more reliable).
fn set_speaker_embeddings(
    speakers: &mut [Speaker],
    turns: &[SpeakerTurn],
    windows: &[SpeakerWindow],
) {
    for speaker in speakers.iter_mut() {
        let own: Vec<&SpeakerWindow> = windows
            .iter()
            .filter(|w| {
                let c = w.center_ms();
                turns.iter().any(|t| {
                    t.speaker == speaker.id && !t.overlap && t.start_ms <= c && c < t.end_ms
                })
            })
            .collect();
        let full: Vec<&SpeakerWindow> = own.iter().copied().filter(|w| w.is_full()).collect();
        let chosen = if full.is_empty() { own } else { full };
        let Some(first) = chosen.first() else {
            continue;
        };
        let mut sum = vec![0f32; first.embedding.len()];
        for w in &chosen {
            sum.iter_mut().zip(&w.embedding).for_each(|(s, x)| *s += x);
        }
        embed::l2_normalize(&mut sum);
        speaker.embedding = Some(sum);
    }
}

/// The speaker of each window (cluster index) and, where overlap detection finds one, a
/// second speaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowLabel {
    pub primary: usize,
    pub secondary: Option<usize>,
}

/// Clusters the windows, smooths the labels in time and detects overlap.
fn label_windows(
    windows: &[SpeakerWindow],
    cfg: &DiarizeConfig,
    threshold: f32,
) -> Result<Vec<WindowLabel>, DiarizeError> {
    let embeddings: Vec<Vec<f32>> = windows.iter().map(|w| w.embedding.clone()).collect();
    let reliable: Vec<bool> = windows.iter().map(SpeakerWindow::is_full).collect();
    let params = cluster::ClusterParams {
        num_speakers: cfg.num_speakers,
        min_speakers: cfg.min_speakers,
        max_speakers: cfg.max_speakers,
        threshold,
        min_cluster_windows: usize::try_from(
            min_speaker_speech_ms(cfg.min_speaker_ms, windows.len() as u64 * cfg.step_ms)
                .div_ceil(cfg.step_ms),
        )
        .unwrap_or(usize::MAX),
    };
    let clustering = cluster::cluster(&embeddings, &reliable, &params)
        .map_err(|source| DiarizeError::Inference { source })?;
    let regions: Vec<usize> = windows.iter().map(|w| w.region).collect();
    let mut primary = turns::majority_filter(&clustering.labels, &regions, cfg.smoothing_windows);
    // Smoothing may swallow a small cluster; with a fixed count or minimum that breaks a promise.
    let promised = cfg.num_speakers.is_some() || distinct(&primary) < cfg.min_speakers;
    if promised && distinct(&primary) < distinct(&clustering.labels) {
        primary = clustering.labels.clone();
    }
    Ok(primary
        .into_iter()
        .zip(&embeddings)
        .map(|(primary, e)| WindowLabel {
            primary,
            secondary: cfg.overlap_margin.and_then(|margin| {
                second_speaker(
                    e,
                    &clustering.centroids,
                    primary,
                    margin,
                    cfg.overlap_min_similarity,
                )
            }),
        })
        .collect())
}

fn distinct(labels: &[usize]) -> usize {
    let mut seen: Vec<usize> = labels.to_vec();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// The other speaker a window is almost as close to as to its own, if any.
fn second_speaker(
    embedding: &[f32],
    centroids: &[Vec<f32>],
    primary: usize,
    margin: f32,
    min_similarity: f32,
) -> Option<usize> {
    let own = cluster::dot(embedding, centroids.get(primary)?);
    let (other, sim) = centroids
        .iter()
        .enumerate()
        .filter(|(c, _)| *c != primary)
        .map(|(c, centroid)| (c, cluster::dot(embedding, centroid)))
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))?;
    (sim >= min_similarity && own - sim <= margin).then_some(other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_voices_are_needed_for_segmentation_speakers_saved_without_them() {
        let speaker = |purity: Option<f32>| Speaker {
            id: "SPEAKER_00".into(),
            name: None,
            speech_ms: 10_000,
            embedding: Some(vec![0.6, 0.8]),
            voice_purity: purity,
        };
        let saved = |method: Method, speakers: Vec<Speaker>| {
            let cfg = DiarizeConfig {
                method,
                ..DiarizeConfig::default()
            };
            Diarization::new("g1", speakers, Vec::new(), settings(&cfg, "sha", 0.45))
        };
        let seg = Method::Segmentation;
        assert!(needs_clean_voices(&saved(seg, vec![speaker(None)])));
        assert!(!needs_clean_voices(&saved(seg, vec![speaker(Some(0.9))])));
        // One speaker with a clean voice means they were made (the other had no clean speech).
        assert!(!needs_clean_voices(&saved(
            seg,
            vec![speaker(None), speaker(Some(0.9))]
        )));
        assert!(!needs_clean_voices(&saved(seg, Vec::new())));
        // The windows recipe names by its own windows' mean; its fallback from segmentation
        // gets clean voices as segmentation does.
        assert!(!needs_clean_voices(&saved(
            Method::Windows,
            vec![speaker(None)]
        )));
        let mut fallback = saved(Method::Windows, vec![speaker(None)]);
        fallback.settings.fallback = Some("segmentation heard too little".into());
        assert!(needs_clean_voices(&fallback));
    }

    #[test]
    fn the_least_speaker_speech_grows_with_long_recordings_only() {
        // A 30 s clip keeps the fixed floor; 15 min of speech asks 1 % (9 s) of a speaker.
        assert_eq!(min_speaker_speech_ms(800, 30_000), 800);
        assert_eq!(min_speaker_speech_ms(800, 80_000), 800);
        assert_eq!(min_speaker_speech_ms(750, 900_000), 9_000);
        assert_eq!(min_speaker_speech_ms(0, 0), 0);
    }

    #[test]
    fn defaults_are_valid_and_bad_settings_are_one_clear_line() {
        assert!(DiarizeConfig::default().validate().is_ok());
        let msg = |cfg: DiarizeConfig| cfg.validate().unwrap_err().to_string();
        assert_eq!(
            msg(DiarizeConfig {
                num_speakers: Some(0),
                ..Default::default()
            }),
            "the number of speakers must be at least 1 (got 0)"
        );
        assert_eq!(
            msg(DiarizeConfig {
                min_speakers: 5,
                max_speakers: 3,
                ..Default::default()
            }),
            "the minimum number of speakers (5) is greater than the maximum (3)"
        );
        assert!(
            msg(DiarizeConfig {
                step_ms: 0,
                ..Default::default()
            })
            .contains("between 10 and 1600 ms")
        );
        assert!(
            msg(DiarizeConfig {
                threshold: f32::NAN,
                ..Default::default()
            })
            .contains("threshold")
        );
        // A fixed count overrides the bounds, so it is not checked against them.
        assert!(
            DiarizeConfig {
                num_speakers: Some(20),
                ..Default::default()
            }
            .validate()
            .is_ok()
        );
    }

    fn turn(start_ms: u64, end_ms: u64) -> SpeakerTurn {
        SpeakerTurn {
            start_ms,
            end_ms,
            speaker: "SPEAKER_00".to_string(),
            overlap: false,
        }
    }

    #[test]
    fn speech_share_counts_overlapping_turns_once_and_only_inside_the_vad() {
        let speech = [
            SpeechRegion {
                start_ms: 0,
                end_ms: 1000,
            },
            SpeechRegion {
                start_ms: 2000,
                end_ms: 3000,
            },
        ];
        let mut d = Diarization::new(
            "x",
            Vec::new(),
            Vec::new(),
            settings(&DiarizeConfig::default(), "", 0.2),
        );
        assert_eq!(vad_speech_share(&d, &speech), Some(0.0));
        assert!(needs_windows_fallback(&d, &speech));
        assert_eq!(vad_speech_share(&d, &[]), None);
        assert!(!needs_windows_fallback(&d, &[]));
        // Two overlapping turns over 0–1000 ms count once; 1000–2000 lies outside the VAD's.
        d.turns = vec![turn(0, 800), turn(200, 1000), turn(1000, 2000)];
        assert_eq!(vad_speech_share(&d, &speech), Some(0.5));
        assert!(!needs_windows_fallback(&d, &speech));
        d.turns = vec![turn(0, 900)];
        assert!(needs_windows_fallback(&d, &speech));
    }

    #[test]
    fn second_speaker_needs_a_close_call() {
        let c = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let mixed = [0.72, 0.69];
        assert_eq!(second_speaker(&mixed, &c, 0, 0.05, 0.5), Some(1));
        assert_eq!(second_speaker(&mixed, &c, 0, 0.01, 0.5), None);
        assert_eq!(second_speaker(&[1.0, 0.0], &c, 0, 0.5, 0.5), None);
    }
}
