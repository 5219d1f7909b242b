//! Wires the stages together; holds no logic of its own.
//!
//! [`Engines`] are the heavy, shared parts (loaded once per run); [`transcribe_file`] takes one
//! recording through decode → voice activity → Whisper and returns the canonical
//! [`Transcript`]; [`write_outputs`] exports it.

use std::path::{Path, PathBuf};

use crate::asr::{AsrConfig, Transcriber};
use crate::audio;
use crate::error::Error;
use crate::export::{self, Format};
use crate::models::{self, WhisperModelFile};
use crate::transcript::{
    ModelInfo, SCHEMA_NAME, SCHEMA_VERSION, SourceInfo, TranscribeSettings, Transcript,
};
use crate::vad::{Vad, VadConfig};

/// Everything that changes what a run produces.
#[derive(Debug, Clone, Default)]
pub struct TranscribeConfig {
    /// Whisper settings.
    pub asr: AsrConfig,
    /// Voice activity settings.
    pub vad: VadConfig,
}

/// The loaded models, shared by every file of a run.
#[derive(Debug)]
pub struct Engines {
    vad: Vad,
    transcriber: Transcriber,
    model: WhisperModelFile,
}

impl Engines {
    /// Loads the VAD and the Whisper model named by `model_spec` ("base", "tiny.en", a path…).
    pub fn load(models_dir: &Path, model_spec: &str) -> Result<Engines, Error> {
        let model = models::resolve_whisper(models_dir, model_spec)?;
        let vad = Vad::load(&models::resolve_vad(models_dir)?)?;
        let transcriber = Transcriber::load(&model.path, &model.name)?;
        Ok(Engines {
            vad,
            transcriber,
            model,
        })
    }

    /// The Whisper model in use.
    pub fn model(&self) -> &WhisperModelFile {
        &self.model
    }
}

/// Transcribes one recording. The transcript's `uri` is the file stem.
pub fn transcribe_file(
    engines: &Engines,
    path: &Path,
    cfg: &TranscribeConfig,
) -> Result<Transcript, Error> {
    let decoded = audio::decode_file(path)?;
    let speech = engines.vad.detect(&decoded.samples, &cfg.vad)?;
    let asr = engines
        .transcriber
        .transcribe(&decoded.samples, &speech, &cfg.asr)?;
    let source = SourceInfo {
        path: path.display().to_string(),
        sha256: models::sha256_file(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?,
        duration_ms: decoded.duration_ms(),
        sample_rate_hz: decoded.source_sample_rate,
        channels: decoded.source_channels,
        codec: decoded.codec.clone(),
    };
    Ok(Transcript {
        schema: SCHEMA_NAME.to_string(),
        schema_version: SCHEMA_VERSION,
        uri: recording_id(path),
        source,
        language: asr.language,
        model: ModelInfo {
            name: engines.model.name.clone(),
            sha256: engines.model.sha256.clone(),
            multilingual: engines.model.multilingual,
        },
        settings: TranscribeSettings {
            language_requested: cfg.asr.language.clone(),
            beam_size: cfg.asr.beam_size,
            vad_threshold: cfg.vad.threshold,
            qualscribe_version: env!("CARGO_PKG_VERSION").to_string(),
        },
        speech,
        segments: asr.segments,
    })
}

/// Writes the transcript in the requested formats into `out_dir`.
pub fn write_outputs(
    transcript: &Transcript,
    out_dir: &Path,
    formats: &[Format],
) -> Result<Vec<PathBuf>, Error> {
    Ok(export::write_all(transcript, out_dir, formats)?)
}

/// A recording's id: its file stem (used for output names and as the RTTM `uri`).
pub fn recording_id(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "recording".to_string())
}
