//! Shared test fixtures: corpus paths and models loaded once per test binary.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};

use qualscribe::asr::AsrConfig;
use qualscribe::diarize::SpeakerEmbedder;
use qualscribe::diarize::segment::Segmenter;
use qualscribe::pipeline::{Engines, TranscribeConfig};

/// `../shared/corpus` next to the project (see its README).
pub fn corpus(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus")
        .join(rel)
}

/// A file in the project itself.
pub fn project(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The installed models (scripts/test.sh installs them before the tests run).
pub fn models_dir() -> PathBuf {
    qualscribe::models::default_models_dir()
}

/// Whisper uses every core: running two model tests at once only makes both slower.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn base() -> &'static Engines {
    static E: OnceLock<Engines> = OnceLock::new();
    E.get_or_init(|| {
        Engines::load(&models_dir(), "base").expect("base model installed by scripts/test.sh")
    })
}

pub fn tiny_en() -> &'static Engines {
    static E: OnceLock<Engines> = OnceLock::new();
    E.get_or_init(|| {
        Engines::load(&models_dir(), "tiny.en").expect("tiny.en installed by scripts/test.sh")
    })
}

/// Transcription settings as the CLI's defaults, in one language ("auto" detects it).
pub fn config(language: &str) -> TranscribeConfig {
    TranscribeConfig {
        asr: AsrConfig {
            language: language.to_string(),
            ..AsrConfig::default()
        },
        ..TranscribeConfig::default()
    }
}

/// The CAM++ speaker model with the segmentation model (`models fetch --model segmentation`),
/// loaded once per test binary.
pub fn speaker_and_segmentation() -> &'static SpeakerEmbedder {
    static E: OnceLock<SpeakerEmbedder> = OnceLock::new();
    E.get_or_init(|| {
        let dir = models_dir();
        let path = qualscribe::models::resolve_speaker(&dir).unwrap_or_else(|e| panic!("{e}"));
        let seg = qualscribe::models::resolve_segmentation(&dir).unwrap_or_else(|e| panic!("{e}"));
        SpeakerEmbedder::load(&path)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_segmenter(Segmenter::load(&seg).unwrap_or_else(|e| panic!("{e}")))
    })
}

/// The real `qualscribe` binary built for this test run.
pub fn qualscribe_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_qualscribe"))
}

/// The interpreter with the client programs' packages (QualCoder's, python-docx); never
/// skipped: the test command installs them.
pub fn clients_python() -> PathBuf {
    let python = std::env::var_os("QUALSCRIBE_CLIENTS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            qualscribe::models::default_models_dir()
                .parent()
                .expect("the models folder lies in the cache folder")
                .join("clients-venv/bin/python")
        });
    assert!(
        python.is_file(),
        "{} missing: run the tests with `bash scripts/test.sh`, which installs QualCoder's packages",
        python.display()
    );
    python
}
