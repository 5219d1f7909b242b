//! Stage artifacts of a batch, keyed by content and settings, so a rerun skips finished work.
//!
//! ```text
//! <out>/.qualscribe/stages/<first 16 hex of the audio's SHA-256>/transcript-<settings key>.json
//!                                                               /speakers-<settings key>.json
//! ```
//!
//! The audio's content hash (not its name or place) identifies the recording, so a renamed or
//! moved archive is still recognised. The settings key covers everything that changes a stage's
//! result (model weights, language, beam, voice activity threshold, speaker counts, version).
//! Every artifact is written atomically: after a crash it is either complete or absent.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::atomic::write_atomic;
use crate::diarize::{Diarization, DiarizeConfig};
use crate::export;
use crate::pipeline::{self, TranscribeConfig};
use crate::transcript::Transcript;

/// The folder of a batch's bookkeeping inside its output folder.
pub const STATE_DIR: &str = ".qualscribe";

/// Where stage artifacts of one output folder live.
#[derive(Debug, Clone)]
pub struct StageStore {
    root: PathBuf,
}

/// A recording's key for one stage: its content hash and the stage's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageKey {
    content: String,
    settings: String,
}

impl StageStore {
    /// The store of output folder `out_dir`.
    pub fn new(out_dir: &Path) -> StageStore {
        StageStore {
            root: out_dir.join(STATE_DIR).join("stages"),
        }
    }

    /// The store's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The key of a recording's transcript.
    pub fn transcript_key(
        content_sha256: &str,
        model_sha256: &str,
        cfg: &TranscribeConfig,
    ) -> StageKey {
        // Thread count is left out on purpose: it changes speed, not words.
        StageKey::new(
            content_sha256,
            &[
                "transcript",
                model_sha256,
                cfg.asr.language.trim(),
                &cfg.asr.beam_size.to_string(),
                &format!("{:?}", cfg.vad),
                env!("CARGO_PKG_VERSION"),
            ],
        )
    }

    /// The key of a recording's speakers: its transcript's key plus the clustering settings.
    pub fn speakers_key(transcript: &StageKey, cfg: &DiarizeConfig) -> StageKey {
        StageKey::new(
            &transcript.content,
            &["speakers", &transcript.settings, &format!("{cfg:?}")],
        )
    }

    /// A saved transcript, if this stage finished before. An unreadable artifact (another
    /// version's) counts as absent: the stage simply runs again.
    pub fn load_transcript(&self, key: &StageKey) -> Option<Transcript> {
        let path = self.path(key, "transcript");
        if !path.is_file() {
            return None;
        }
        export::read_transcript(&path).ok()
    }

    /// Saves a finished transcript.
    pub fn save_transcript(&self, key: &StageKey, t: &Transcript) -> Result<(), crate::Error> {
        let path = self.path(key, "transcript");
        self.ensure_dir(&path)?;
        write_atomic(&path, &export::render(t, export::Format::Json))?;
        Ok(())
    }

    /// Saved speakers, if this stage finished before.
    pub fn load_speakers(&self, key: &StageKey) -> Option<Diarization> {
        let path = self.path(key, "speakers");
        if !path.is_file() {
            return None;
        }
        pipeline::read_diarization(&path).ok()
    }

    /// Saves finished speakers.
    pub fn save_speakers(&self, key: &StageKey, d: &Diarization) -> Result<(), crate::Error> {
        let path = self.path(key, "speakers");
        self.ensure_dir(&path)?;
        write_atomic(&path, pipeline::diarization_json(d).as_bytes())?;
        Ok(())
    }

    fn path(&self, key: &StageKey, stage: &str) -> PathBuf {
        self.root
            .join(&key.content[..key.content.len().min(16)])
            .join(format!("{stage}-{}.json", key.settings))
    }

    fn ensure_dir(&self, path: &Path) -> Result<(), crate::Error> {
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(|source| {
            crate::Error::Write(crate::atomic::WriteError {
                path: dir.to_path_buf(),
                source,
            })
        })
    }
}

impl StageKey {
    fn new(content_sha256: &str, settings: &[&str]) -> StageKey {
        let mut h = Sha256::new();
        for part in settings {
            h.update(part.as_bytes());
            h.update([0u8]); // separator: ("ab","c") and ("a","bc") must differ
        }
        let digest = h.finalize();
        let settings = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        StageKey {
            content: content_sha256.to_string(),
            settings,
        }
    }
}

/// Removes temp files left by a process killed in the middle of an atomic write (they are never
/// read; this only tidies). Call only while holding the batch lock.
pub fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            remove_stale_temp_files(&path);
        } else if name.starts_with(".qualscribe-") && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_change_with_settings_not_threads() {
        let cfg = TranscribeConfig::default();
        let a = StageStore::transcript_key("abc", "model", &cfg);
        let mut threads = cfg.clone();
        threads.asr.threads += 3;
        assert_eq!(a, StageStore::transcript_key("abc", "model", &threads));
        let mut lang = cfg.clone();
        lang.asr.language = "es".into();
        assert_ne!(a, StageStore::transcript_key("abc", "model", &lang));
        assert_ne!(a, StageStore::transcript_key("abc", "other", &cfg));
        let s1 = StageStore::speakers_key(&a, &DiarizeConfig::default());
        let s2 = StageStore::speakers_key(
            &a,
            &DiarizeConfig {
                num_speakers: Some(2),
                ..DiarizeConfig::default()
            },
        );
        assert_ne!(s1, s2);
    }

    #[test]
    fn stale_temp_files_are_removed_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("x")).unwrap();
        std::fs::write(dir.path().join("x/.qualscribe-abc.tmp"), b"half").unwrap();
        std::fs::write(dir.path().join("x/a.txt"), b"kept").unwrap();
        remove_stale_temp_files(dir.path());
        assert!(!dir.path().join("x/.qualscribe-abc.tmp").exists());
        assert!(dir.path().join("x/a.txt").exists());
    }
}
