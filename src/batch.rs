//! Many recordings at once: an interview archive in, transcripts and speaker turns per file out,
//! resumable after any interruption, one bad file never stopping the others.
//!
//! ```text
//! <out>/transcripts/<uri>.txt .srt .vtt .md .transcript.json .rttm .diarization.json
//! <out>/batch-report.tsv                     one row per recording: ok, or failed at which stage
//! <out>/codes.md codes.csv passages.tsv …    cross-archive themes (written by the caller)
//! <out>/.qualscribe/stages/…                 stage artifacts keyed by content + settings
//! <out>/.qualscribe/lock                     held while a batch or merge writes here
//! ```
//!
//! Each recording goes read → decode → transcribe → speakers → export. A stage whose artifact
//! already exists for the same audio content and settings is not run again, so a batch killed at
//! any moment redoes at most the stage that was running. Sharding ([`Shard`]) splits an archive
//! between machines; [`merge_shards`] joins their output folders.

mod discover;
pub mod progress;
mod report;
mod store;

use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

pub use discover::{AUDIO_EXTENSIONS, Discovery, Recording, Shard, discover};
pub use report::{REPORT_FILE, ReportRow, failure_table, read_report, write_report};
pub use store::{STATE_DIR, StageKey, StageStore, remove_stale_temp_files};

use crate::atomic::write_atomic;
use crate::audio::{self, Audio};
use crate::diarize::{self, DiarizeConfig, SpeakerEmbedder};
use crate::export::{self, Format};
use crate::pipeline::{self, Engines, StageTimes, TranscribeConfig, timed};
use crate::transcript::Transcript;

/// Per-recording outputs go into this subfolder of the output folder.
pub const TRANSCRIPTS_DIR: &str = "transcripts";

/// Why a batch could not run (per-file problems are [`ReportRow`]s instead).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// `--shard` was not `K/N` with 1 ≤ K ≤ N.
    #[error("--shard {given}: expected K/N with 1 ≤ K ≤ N, e.g. --shard 2/8")]
    BadShard {
        /// What was given.
        given: String,
    },
    /// Another batch or merge is writing into the same output folder.
    #[error(
        "{dir} is in use by another qualscribe batch or merge: wait for it to finish or choose another -o folder"
    )]
    Busy {
        /// The output folder.
        dir: PathBuf,
    },
    /// A folder given to merge is not a batch output.
    #[error(
        "{path} is not a qualscribe batch output ({reason}): give folders written by `qualscribe batch`"
    )]
    NotABatchFolder {
        /// The report file looked for.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Two shards hold different versions of the same output file.
    #[error(
        "{file} differs between shard folders {first} and {second}: were they run with different settings? Merge shards of one run"
    )]
    MergeConflict {
        /// The file, relative to the output folder.
        file: PathBuf,
        /// One shard folder.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// Merging into one of the shard folders would overwrite what is being read.
    #[error("merge output {dir} is one of the shard folders: choose a new -o folder")]
    MergeIntoShard {
        /// The folder.
        dir: PathBuf,
    },
    /// A stage of the pipeline failed outside any one recording (writing the report,
    /// reading finished transcripts back).
    #[error(transparent)]
    Stage(Box<crate::Error>),
    /// An output of the batch could not be written.
    #[error(transparent)]
    Write(#[from] crate::atomic::WriteError),
    /// A file or folder of the batch could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl From<crate::Error> for BatchError {
    fn from(e: crate::Error) -> Self {
        BatchError::Stage(Box::new(e))
    }
}

/// The stages of one recording, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Reading the file (content hash).
    Read,
    /// Decoding to 16 kHz mono.
    Decode,
    /// Voice activity and Whisper.
    Transcribe,
    /// Who spoke when.
    Speakers,
    /// Writing transcript files.
    Export,
}

impl Stage {
    /// The stage's name in reports and logs.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Decode => "decode",
            Stage::Transcribe => "transcribe",
            Stage::Speakers => "speakers",
            Stage::Export => "export",
        }
    }
}

/// What a batch does to each recording.
#[derive(Debug, Clone)]
pub struct BatchConfig {
    /// Transcription settings (`asr.threads` is the Whisper thread count of each job).
    pub transcribe: TranscribeConfig,
    /// Speaker settings; `None` skips the speaker stage.
    pub diarize: Option<DiarizeConfig>,
    /// Transcript formats to write (the JSON transcript is always written: themes and merge
    /// read it).
    pub formats: Vec<Format>,
    /// Recordings processed at the same time.
    pub jobs: usize,
    /// A damaged recording (see [`crate::transcript::DecodeReport`]) fails instead of passing
    /// with a warning.
    pub strict: bool,
}

/// The loaded models, shared by all jobs.
#[derive(Debug, Clone, Copy)]
pub struct Models<'a> {
    /// VAD and Whisper.
    pub engines: &'a Engines,
    /// The speaker model, when speakers are wanted.
    pub speakers: Option<&'a SpeakerEmbedder>,
}

/// What happened to one recording.
#[derive(Debug, Clone)]
pub struct FileResult {
    /// The report row (status, failing stage, error).
    pub row: ReportRow,
    /// Time spent per stage in this run (zero for reused stages).
    pub times: StageTimes,
    /// Stages whose saved artifact was reused instead of running again.
    pub reused: Vec<Stage>,
    /// Wall-clock seconds for this recording.
    pub wall_s: f64,
}

/// Progress notifications, sent from the worker threads.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A job picked up a recording.
    Started {
        /// The recording.
        recording: &'a Recording,
    },
    /// A stage begins (or is found done: `reused`).
    Stage {
        /// The recording.
        recording: &'a Recording,
        /// The stage.
        stage: Stage,
        /// Whether its saved artifact is reused instead of running it.
        reused: bool,
    },
    /// The recording is finished, one way or the other.
    Finished {
        /// The recording.
        recording: &'a Recording,
        /// Its result.
        result: &'a FileResult,
    },
}

/// How many recordings run at once and how many Whisper threads each gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadPlan {
    /// Recordings processed in parallel.
    pub jobs: usize,
    /// Whisper threads per recording.
    pub threads: usize,
    /// `jobs × threads` exceeds the cores (only when the user asked for it).
    pub oversubscribed: bool,
}

/// Splits `cores` between parallel recordings and Whisper threads. Whisper scales well up to
/// about 4 threads per file and poorly beyond, so by default each job gets 4 threads and the
/// remaining cores run more files; never more jobs than files.
pub fn plan_threads(
    cores: usize,
    jobs: Option<usize>,
    threads: Option<usize>,
    files: usize,
) -> ThreadPlan {
    let cores = cores.max(1);
    let files = files.max(1);
    let (jobs, threads) = match (jobs, threads) {
        (Some(j), Some(t)) => (j.max(1), t.max(1)),
        (Some(j), None) => {
            let j = j.max(1).min(files);
            (j, (cores / j).max(1))
        }
        (None, Some(t)) => {
            let t = t.max(1);
            ((cores / t).max(1).min(files), t)
        }
        (None, None) => {
            let t = cores.min(4);
            let j = (cores / t).max(1).min(files);
            // Fewer files than job slots: give the spare cores to Whisper.
            (j, (cores / j).max(1))
        }
    };
    ThreadPlan {
        jobs,
        threads,
        oversubscribed: jobs * threads > cores,
    }
}

/// Exclusive use of an output folder while a batch or merge writes into it. Released when
/// dropped, and by the operating system if the process dies.
#[derive(Debug)]
pub struct OutputLock {
    _file: File,
}

/// Creates the output folder's bookkeeping, takes its lock and tidies temp files a killed run
/// left behind.
pub fn lock_output(out_dir: &Path) -> Result<OutputLock, BatchError> {
    let state = out_dir.join(STATE_DIR);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BatchError::Io { path, source }
    };
    std::fs::create_dir_all(&state).map_err(io(&state))?;
    let lock_path = state.join("lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(BatchError::Busy {
                dir: out_dir.to_path_buf(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
    }
    store::remove_stale_temp_files(out_dir);
    Ok(OutputLock { _file: file })
}

/// Processes `recordings` with `cfg.jobs` parallel jobs, in the order given (put long ones first
/// for a shorter total), writing outputs under `out_dir`. Never stops for a bad file: each
/// recording's result, success or failure, is returned (in the order given).
pub fn process_all(
    models: Models<'_>,
    recordings: &[Recording],
    out_dir: &Path,
    cfg: &BatchConfig,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Vec<FileResult>, BatchError> {
    let transcripts_dir = out_dir.join(TRANSCRIPTS_DIR);
    std::fs::create_dir_all(&transcripts_dir).map_err(|source| BatchError::Io {
        path: transcripts_dir.clone(),
        source,
    })?;
    let store = StageStore::new(out_dir);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<FileResult>>> = Mutex::new(vec![None; recordings.len()]);
    let job = Job {
        models,
        store: &store,
        transcripts_dir: &transcripts_dir,
        cfg,
        on_event,
    };
    std::thread::scope(|scope| {
        for _ in 0..cfg.jobs.max(1).min(recordings.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(recording) = recordings.get(i) else {
                        break;
                    };
                    let result = job.run(recording);
                    on_event(Event::Finished {
                        recording,
                        result: &result,
                    });
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(result);
                }
            });
        }
    });
    Ok(results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect())
}

/// Everything a worker needs for one recording.
struct Job<'a> {
    models: Models<'a>,
    store: &'a StageStore,
    transcripts_dir: &'a Path,
    cfg: &'a BatchConfig,
    on_event: &'a (dyn Fn(Event<'_>) + Sync),
}

/// The state of one recording as it moves through the stages.
struct Progressing {
    stage: Stage,
    times: StageTimes,
    reused: Vec<Stage>,
    audio_s: Option<f64>,
    warnings: String,
}

impl Job<'_> {
    fn run(&self, recording: &Recording) -> FileResult {
        let started = Instant::now();
        (self.on_event)(Event::Started { recording });
        let mut p = Progressing {
            stage: Stage::Read,
            times: StageTimes::default(),
            reused: Vec::new(),
            audio_s: None,
            warnings: String::new(),
        };
        // A panic in one file (a decoder bug, say) must not take the archive down with it.
        let outcome = catch_unwind(AssertUnwindSafe(|| self.stages(recording, &mut p)))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("unknown");
                Err(format!(
                    "internal error ({what}); please report it with this file's format"
                ))
            });
        let failure = outcome.err().map(|error| {
            let error = crate::error::naming_the_file(&recording.path, &error);
            (p.stage.name().to_string(), error)
        });
        FileResult {
            row: ReportRow {
                file: recording.path.display().to_string(),
                uri: recording.uri.clone(),
                failure,
                audio_s: p.audio_s,
                warnings: p.warnings,
            },
            times: p.times,
            reused: p.reused,
            wall_s: started.elapsed().as_secs_f64(),
        }
    }

    fn enter(&self, recording: &Recording, p: &mut Progressing, stage: Stage, reused: bool) {
        p.stage = stage;
        if reused {
            p.reused.push(stage);
        }
        (self.on_event)(Event::Stage {
            recording,
            stage,
            reused,
        });
    }

    fn stages(&self, recording: &Recording, p: &mut Progressing) -> Result<(), String> {
        self.enter(recording, p, Stage::Read, false);
        let sha256 = timed(&mut p.times.read_s, || {
            pipeline::hash_recording(&recording.path)
        })
        .map_err(|e| e.to_string())?;
        let key = StageStore::transcript_key(
            &sha256,
            &self.models.engines.model().sha256,
            &self.cfg.transcribe,
        );
        let mut decoded: Option<Audio> = None;
        let transcript = self.transcript_stage(recording, p, &key, sha256, &mut decoded)?;
        p.audio_s = Some(transcript.source.duration_ms as f64 / 1000.0);
        // Kept in the transcript, so a resumed batch reports it too.
        p.warnings = transcript.source.decode.summary();
        if self.cfg.strict && !p.warnings.is_empty() {
            p.stage = Stage::Decode;
            return Err(format!("damaged recording: {} (--strict)", p.warnings));
        }
        let (attributed, diarization) = match (self.models.speakers, &self.cfg.diarize) {
            (Some(embedder), Some(dcfg)) => {
                let skey = StageStore::speakers_key(&key, dcfg);
                let d = self.speakers_stage(
                    recording,
                    p,
                    (embedder, dcfg),
                    &skey,
                    &transcript,
                    decoded,
                )?;
                let attributed = timed(&mut p.times.speakers_s, || {
                    diarize::attribute(&transcript, &d)
                });
                (attributed, Some(d))
            }
            _ => (transcript, None),
        };
        self.enter(recording, p, Stage::Export, false);
        timed(&mut p.times.export_s, || {
            self.export(&attributed, diarization.as_ref())
        })
        .map_err(|e| e.to_string())
    }

    /// The saved transcript, or decode + voice activity + Whisper (and save). The decoded audio
    /// is left in `decoded` for the speaker stage.
    fn transcript_stage(
        &self,
        recording: &Recording,
        p: &mut Progressing,
        key: &StageKey,
        sha256: String,
        decoded: &mut Option<Audio>,
    ) -> Result<Transcript, String> {
        if let Some(t) = self.store.load_transcript(key) {
            self.enter(recording, p, Stage::Transcribe, true);
            return Ok(as_found(t, recording));
        }
        let audio = self.decode(recording, p)?;
        self.enter(recording, p, Stage::Transcribe, false);
        let t = pipeline::transcribe_audio(
            self.models.engines,
            &recording.path,
            sha256,
            &audio,
            &self.cfg.transcribe,
            &mut p.times,
        )
        .map_err(|e| e.to_string())?;
        self.store
            .save_transcript(key, &t)
            .map_err(|e| e.to_string())?;
        *decoded = Some(audio);
        Ok(as_found(t, recording))
    }

    /// The saved speakers, or the speaker stage on the (decoded once) audio (and save).
    fn speakers_stage(
        &self,
        recording: &Recording,
        p: &mut Progressing,
        (embedder, dcfg): (&SpeakerEmbedder, &DiarizeConfig),
        key: &StageKey,
        transcript: &Transcript,
        decoded: Option<Audio>,
    ) -> Result<diarize::Diarization, String> {
        let mut d = match self.store.load_speakers(key) {
            Some(d) => {
                self.enter(recording, p, Stage::Speakers, true);
                d
            }
            None => {
                let audio = match decoded {
                    Some(a) => a,
                    None => self.decode(recording, p)?,
                };
                self.enter(recording, p, Stage::Speakers, false);
                let d = timed(&mut p.times.speakers_s, || {
                    pipeline::diarize_audio(embedder, transcript, &audio, dcfg)
                })
                .map_err(|e| e.to_string())?;
                self.store
                    .save_speakers(key, &d)
                    .map_err(|e| e.to_string())?;
                d
            }
        };
        d.uri = recording.uri.clone();
        Ok(d)
    }

    /// Decodes the recording (at most once per run: the audio is handed from stage to stage).
    fn decode(&self, recording: &Recording, p: &mut Progressing) -> Result<Audio, String> {
        self.enter(recording, p, Stage::Decode, false);
        timed(&mut p.times.decode_s, || {
            audio::decode_file(&recording.path)
        })
        .map_err(|e| e.to_string())
    }

    fn export(&self, t: &Transcript, d: Option<&diarize::Diarization>) -> Result<(), BatchError> {
        let mut formats = self.cfg.formats.clone();
        if !formats.contains(&Format::Json) {
            formats.push(Format::Json);
        }
        export::write_all(t, self.transcripts_dir, &formats).map_err(crate::Error::from)?;
        if let Some(d) = d {
            pipeline::write_diarization(d, self.transcripts_dir)?;
        }
        Ok(())
    }
}

/// A stage artifact is keyed by content, so it may have been made from the same audio under
/// another name or place: give it this recording's id and path.
fn as_found(mut t: Transcript, recording: &Recording) -> Transcript {
    t.uri = recording.uri.clone();
    t.source.path = recording.path.display().to_string();
    t
}

/// The transcripts of the recordings that succeeded, read back from `<out>/transcripts`, in the
/// report's order (by file): the input of cross-archive themes, the same whether the batch ran
/// in one go, resumed, or was merged from shards.
pub fn finished_transcripts(
    out_dir: &Path,
    rows: &[ReportRow],
) -> Result<Vec<Transcript>, BatchError> {
    let mut ok: Vec<&ReportRow> = rows.iter().filter(|r| r.ok()).collect();
    ok.sort_by(|a, b| a.file.cmp(&b.file));
    ok.iter()
        .map(|r| {
            let path = export::output_path(&out_dir.join(TRANSCRIPTS_DIR), &r.uri, Format::Json);
            Ok(export::read_transcript(&path).map_err(crate::Error::from)?)
        })
        .collect()
}

/// Joins the output folders of shard runs into `out_dir`: transcripts, stage artifacts and
/// reports. Identical files are fine (a shard merged twice); different contents for one file
/// are refused. Returns the joined report rows.
pub fn merge_shards(shards: &[PathBuf], out_dir: &Path) -> Result<Vec<ReportRow>, BatchError> {
    let out_canonical = out_dir.canonicalize().ok();
    let mut rows: Vec<ReportRow> = Vec::new();
    let mut origin: std::collections::HashMap<PathBuf, PathBuf> = Default::default();
    for shard in shards {
        if shard.canonicalize().ok() == out_canonical {
            return Err(BatchError::MergeIntoShard {
                dir: out_dir.to_path_buf(),
            });
        }
        rows.extend(read_report(&shard.join(REPORT_FILE))?);
        for sub in [
            PathBuf::from(TRANSCRIPTS_DIR),
            Path::new(STATE_DIR).join("stages"),
        ] {
            copy_tree(shard, &sub, out_dir, &mut origin)?;
        }
    }
    // A file in two shards (a shard run twice with different slices): keep its success.
    rows.sort_by(|a, b| a.file.cmp(&b.file).then(b.ok().cmp(&a.ok())));
    rows.dedup_by(|later, first| later.file == first.file);
    write_report(out_dir, &rows)?;
    Ok(rows)
}

fn copy_tree(
    shard: &Path,
    relative: &Path,
    out_dir: &Path,
    origin: &mut std::collections::HashMap<PathBuf, PathBuf>,
) -> Result<(), BatchError> {
    let src = shard.join(relative);
    let Ok(entries) = std::fs::read_dir(&src) else {
        return Ok(()); // a shard with no successes has no transcripts folder
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BatchError::Io { path, source }
    };
    let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    for path in names {
        let name = path.file_name().map(PathBuf::from).unwrap_or_default();
        let rel = relative.join(&name);
        if name.to_string_lossy().starts_with(".qualscribe-") {
            continue; // a temp file of a killed shard
        }
        if path.is_dir() {
            copy_tree(shard, &rel, out_dir, origin)?;
            continue;
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let dest = out_dir.join(&rel);
        if let Some(first) = origin.get(&rel) {
            if std::fs::read(&dest).ok().as_deref() != Some(bytes.as_slice()) {
                return Err(BatchError::MergeConflict {
                    file: rel,
                    first: first.clone(),
                    second: shard.to_path_buf(),
                });
            }
            continue;
        }
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        write_atomic(&dest, &bytes)?;
        origin.insert(rel, shard.to_path_buf());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_plan_never_oversubscribes_by_default() {
        assert_eq!(
            plan_threads(2, None, None, 50),
            ThreadPlan {
                jobs: 1,
                threads: 2,
                oversubscribed: false
            }
        );
        assert_eq!(
            plan_threads(16, None, None, 50),
            ThreadPlan {
                jobs: 4,
                threads: 4,
                oversubscribed: false
            }
        );
        // Two files on 16 cores: both run, each with 8 threads.
        assert_eq!(
            plan_threads(16, None, None, 2),
            ThreadPlan {
                jobs: 2,
                threads: 8,
                oversubscribed: false
            }
        );
        assert_eq!(plan_threads(8, Some(2), None, 10).threads, 4);
        assert_eq!(plan_threads(8, None, Some(2), 10).jobs, 4);
        assert!(plan_threads(4, Some(4), Some(4), 10).oversubscribed);
    }

    #[test]
    fn merge_refuses_conflicting_shards_and_joins_reports() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, out) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("out"),
        );
        for (shard, file, text) in [(&a, "x.wav", "hola"), (&b, "y.wav", "adiós")] {
            std::fs::create_dir_all(shard.join(TRANSCRIPTS_DIR)).unwrap();
            std::fs::write(
                shard.join(TRANSCRIPTS_DIR).join(format!("{file}.txt")),
                text,
            )
            .unwrap();
            let row = ReportRow {
                file: file.into(),
                uri: file.into(),
                failure: None,
                audio_s: Some(1.0),
                warnings: String::new(),
            };
            write_report(shard, &[row]).unwrap();
        }
        std::fs::create_dir_all(&out).unwrap();
        let rows = merge_shards(&[a.clone(), b.clone()], &out).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.file.as_str()).collect::<Vec<_>>(),
            ["x.wav", "y.wav"]
        );
        assert_eq!(
            std::fs::read_to_string(out.join("transcripts/y.wav.txt")).unwrap(),
            "adiós"
        );
        // Same file, different content in another shard: refused.
        std::fs::write(b.join(TRANSCRIPTS_DIR).join("x.wav.txt"), "otro").unwrap();
        let out2 = dir.path().join("out2");
        std::fs::create_dir_all(&out2).unwrap();
        let err = merge_shards(&[a.clone(), b.clone()], &out2).unwrap_err();
        assert!(
            err.to_string().contains("differs between shard folders"),
            "{err}"
        );
        assert!(merge_shards(std::slice::from_ref(&a), &a).is_err());
    }
}
