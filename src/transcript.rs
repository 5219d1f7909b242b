//! The canonical transcript artifact (`<stem>.transcript.json`) and its parts.
//!
//! Every time is integer milliseconds on the original audio timeline (the input file as decoded,
//! before silence was skipped). The schema is versioned: readers check `schema_version` and
//! refuse versions they do not know.

use serde::{Deserialize, Serialize};

/// Schema name written into every transcript JSON.
pub const SCHEMA_NAME: &str = "qualscribe.transcript";
/// Bumped whenever a field changes meaning or a required field is added.
pub const SCHEMA_VERSION: u32 = 1;

/// A transcribed recording: what was heard, when, with which settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// Always [`SCHEMA_NAME`].
    pub schema: String,
    /// Always [`SCHEMA_VERSION`] when written by this version.
    pub schema_version: u32,
    /// The recording's id: the input file's stem (also the RTTM `uri`).
    pub uri: String,
    /// Where the audio came from.
    pub source: SourceInfo,
    /// The language the text is in.
    pub language: LanguageInfo,
    /// The Whisper model that produced the text.
    pub model: ModelInfo,
    /// Resolved settings that affect the text (for reproducibility).
    pub settings: TranscribeSettings,
    /// Speech regions found by voice activity detection (reused by later stages).
    pub speech: Vec<SpeechRegion>,
    /// Transcribed segments in time order.
    pub segments: Vec<Segment>,
    /// Stretches of speech (voice activity regions of at least [`MIN_UNTRANSCRIBED_MS`]) that
    /// ended up with no transcribed word, or far too few ([`FEW_WORDS_MS_PER_WORD`]), in time
    /// order: what a person should listen to.
    /// Absent from the JSON when empty (older transcripts read as empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untranscribed: Vec<UntranscribedSpan>,
}

/// Speech shorter than this with no words is not reported: a cough, a breath, "mm".
pub const MIN_UNTRANSCRIBED_MS: u64 = 1_000;

/// A stretch of speech the machine heard but did not transcribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UntranscribedSpan {
    /// Start on the original timeline.
    pub start_ms: u64,
    /// End on the original timeline (exclusive).
    pub end_ms: u64,
    /// Why no words came out.
    pub reason: UntranscribedReason,
}

impl UntranscribedSpan {
    /// Length of the span.
    pub fn duration_ms(&self) -> u64 {
        self.end_ms.saturating_sub(self.start_ms)
    }
}

/// Why a stretch of speech has no words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UntranscribedReason {
    /// Whisper wrote words here, but a hallucination guard removed them (probable non-speech,
    /// a known silence phrase, or a repetition loop).
    DroppedByGuard,
    /// Whisper wrote nothing for this speech.
    NothingDecoded,
    /// Whisper wrote far fewer words than anyone says in that much speech (under one word per
    /// [`FEW_WORDS_MS_PER_WORD`] ms): most of it was probably skipped.
    FewWordsDecoded,
}

/// A speech region of at least [`MIN_UNTRANSCRIBED_MS`] with fewer than one kept word per this
/// many milliseconds is marked [`UntranscribedReason::FewWordsDecoded`]. Read speech runs at
/// 2–3 words a second; one word in 3 s is far below any speaker's rate even with hesitations.
pub const FEW_WORDS_MS_PER_WORD: u64 = 3_000;

impl UntranscribedReason {
    /// A short phrase for people (`dropped by a guard`, `nothing decoded`, `few words decoded`).
    pub fn describe(self) -> &'static str {
        match self {
            UntranscribedReason::DroppedByGuard => "dropped by a guard",
            UntranscribedReason::NothingDecoded => "nothing decoded",
            UntranscribedReason::FewWordsDecoded => "few words decoded",
        }
    }
}

/// The input recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// Path as given by the user.
    pub path: String,
    /// SHA-256 of the file's bytes (hex), so a transcript can be matched to its audio.
    pub sha256: String,
    /// Duration of the decoded audio.
    pub duration_ms: u64,
    /// Sample rate of the file before resampling to 16 kHz.
    pub sample_rate_hz: u32,
    /// Channel count of the file before the mono mix-down.
    pub channels: u16,
    /// Codec name as reported by the decoder (e.g. "opus", "pcm_s16le").
    pub codec: String,
    /// What went wrong while decoding (absent when nothing did). Added after schema version 1
    /// was published; readers of older files see a clean report.
    #[serde(default, skip_serializing_if = "DecodeReport::is_clean")]
    pub decode: DecodeReport,
}

/// What decoding found wrong with a recording: a damaged file is transcribed as far as it
/// goes, and this says so (one warning line, the transcript JSON, the batch report).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecodeReport {
    /// The file ended in the middle of its audio (cut off, or not fully copied).
    #[serde(default)]
    pub ended_early: bool,
    /// Damaged packets skipped (their time is kept as silence).
    #[serde(default)]
    pub skipped_packets: u64,
    /// Samples that were NaN or infinite, replaced by silence.
    #[serde(default)]
    pub non_finite_samples: u64,
    /// Length the file's header claims, when it says and differs from the decoded length by
    /// more than 1 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_duration_ms: Option<u64>,
    /// Length actually decoded (set together with `header_duration_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoded_duration_ms: Option<u64>,
}

impl DecodeReport {
    /// Nothing to warn about.
    pub fn is_clean(&self) -> bool {
        self.warnings().is_empty()
    }

    /// One short phrase per problem, e.g. `"ended early (cut off or incompletely copied)"`.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.ended_early {
            w.push("ended early (cut off or incompletely copied)".to_string());
        }
        if self.skipped_packets > 0 {
            w.push(format!(
                "{} damaged packets skipped (kept as silence)",
                self.skipped_packets
            ));
        }
        if self.non_finite_samples > 0 {
            w.push(format!(
                "{} NaN/infinite samples replaced by silence",
                self.non_finite_samples
            ));
        }
        if let (Some(h), Some(d)) = (self.header_duration_ms, self.decoded_duration_ms) {
            w.push(format!(
                "header says {:.1} s but {:.1} s of audio decoded",
                h as f64 / 1000.0,
                d as f64 / 1000.0
            ));
        }
        w
    }

    /// The warnings as one line (`"; "`-separated); empty when clean.
    pub fn summary(&self) -> String {
        self.warnings().join("; ")
    }
}

/// Language of the transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageInfo {
    /// ISO 639-1 code (e.g. "es").
    pub code: String,
    /// True when Whisper detected it, false when the user gave it.
    pub detected: bool,
    /// Detection probability (only when detected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f32>,
}

/// The model used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Model name, e.g. "base", "tiny.en", or a file name for user-supplied models.
    pub name: String,
    /// SHA-256 of the ggml file (hex).
    pub sha256: String,
    /// Whether the model can transcribe languages other than English.
    pub multilingual: bool,
}

/// Settings that change the transcript's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscribeSettings {
    /// The language asked for ("auto" or a code).
    pub language_requested: String,
    /// Beam size (1 = greedy).
    pub beam_size: u32,
    /// Voice activity threshold (Silero probability).
    pub vad_threshold: f32,
    /// qualscribe version that wrote the file.
    pub qualscribe_version: String,
}

/// A stretch of audio where the voice activity detector heard speech.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeechRegion {
    /// Start on the original timeline.
    pub start_ms: u64,
    /// End on the original timeline (exclusive).
    pub end_ms: u64,
}

/// One Whisper segment: usually a sentence or clause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Position in the transcript, from 0.
    pub id: u32,
    /// Start on the original timeline.
    pub start_ms: u64,
    /// End on the original timeline.
    pub end_ms: u64,
    /// The text, trimmed, exactly the words joined as Whisper wrote them.
    pub text: String,
    /// Speaker label, once speaker turns are known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    /// Whisper's probability that the window held no speech.
    pub no_speech_prob: f32,
    /// Mean token log-probability (a confidence measure).
    pub avg_logprob: f32,
    /// Words with their own times, in order, inside `start_ms..=end_ms`.
    pub words: Vec<Word>,
}

/// One word with its time and confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    /// The word as written (punctuation attached, no leading space).
    pub text: String,
    /// Start on the original timeline.
    pub start_ms: u64,
    /// End on the original timeline.
    pub end_ms: u64,
    /// Mean probability of the word's tokens (0..1).
    pub probability: f32,
}

/// A segment's text: its words joined by single spaces. Every stage that builds or cuts
/// segments uses this, so a segment's text is always exactly its words.
pub fn words_text(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Transcript {
    /// Total number of words.
    pub fn word_count(&self) -> usize {
        self.segments.iter().map(|s| s.words.len()).sum()
    }

    /// Total length of the speech left untranscribed.
    pub fn untranscribed_ms(&self) -> u64 {
        self.untranscribed.iter().map(|s| s.duration_ms()).sum()
    }

    /// The whole text, segments joined by single spaces.
    pub fn text(&self) -> String {
        let parts: Vec<&str> = self.segments.iter().map(|s| s.text.as_str()).collect();
        parts.join(" ")
    }
}
