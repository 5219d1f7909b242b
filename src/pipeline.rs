//! Wires the stages together; holds no logic of its own.
//!
//! [`Engines`] are the heavy, shared parts (loaded once per run); [`transcribe_file`] takes one
//! recording through decode → voice activity → Whisper and returns the canonical
//! [`Transcript`]; [`process_file`] also finds who spoke when, on the same decoded audio and
//! the same speech regions; [`diarize_transcript`] re-runs only the speaker stage on a saved
//! transcript; [`write_outputs`] and [`write_diarization`] export.

use std::path::{Path, PathBuf};

use crate::asr::{AsrConfig, Transcriber};
use crate::atomic::write_atomic;
use crate::audio::{self, Audio};
use crate::codes::examples::CodeExample;
use crate::codes::{self, Codebook, CodesConfig, SeedCode};
use crate::diarize::{self, Diarization, DiarizeConfig, SpeakerEmbedder};
use crate::embed::TextEmbedder;
use crate::error::Error;
use crate::eval::rttm;
use crate::export::{self, Format};
use crate::models::{self, WhisperModelFile};
use crate::passages::{self, PassageConfig, Passages};
use crate::themes::{self, CodeSpec, ThemeConfig, Themes};
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

/// Loads the speaker model for diarization, with the segmentation model when it is installed
/// (the segmentation recipe needs it; the windows recipe ignores it).
pub fn load_speaker_embedder(models_dir: &Path) -> Result<SpeakerEmbedder, Error> {
    let embedder = SpeakerEmbedder::load(&models::resolve_speaker(models_dir)?)?;
    Ok(match models::resolve_segmentation(models_dir) {
        Ok(path) => embedder.with_segmenter(diarize::segment::Segmenter::load(&path)?),
        Err(_) => embedder,
    })
}

/// Wall-clock seconds one recording spent in each stage (zero for a stage not run), so runs
/// and benchmarks can say where the time goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StageTimes {
    /// Reading the file to hash it.
    pub read_s: f64,
    /// Decoding and resampling to 16 kHz mono.
    pub decode_s: f64,
    /// Voice activity detection.
    pub vad_s: f64,
    /// Whisper transcription (language detection included).
    pub asr_s: f64,
    /// Speaker embeddings, clustering and word attribution.
    pub speakers_s: f64,
    /// Writing the transcript exports.
    pub export_s: f64,
}

impl StageTimes {
    /// The sum of all stages.
    pub fn total_s(&self) -> f64 {
        self.read_s + self.decode_s + self.vad_s + self.asr_s + self.speakers_s + self.export_s
    }

    /// Adds another recording's times to these.
    pub fn add(&mut self, other: &StageTimes) {
        self.read_s += other.read_s;
        self.decode_s += other.decode_s;
        self.vad_s += other.vad_s;
        self.asr_s += other.asr_s;
        self.speakers_s += other.speakers_s;
        self.export_s += other.export_s;
    }
}

/// Runs `f`, adding its wall-clock seconds to `slot`.
pub fn timed<T>(slot: &mut f64, f: impl FnOnce() -> T) -> T {
    let started = std::time::Instant::now();
    let value = f();
    *slot += started.elapsed().as_secs_f64();
    value
}

/// The SHA-256 of a recording's bytes: the identity of its content, kept in the transcript.
/// The file is checked first: a pipe or device would block the read forever.
pub fn hash_recording(path: &Path) -> Result<String, Error> {
    audio::check_input_file(path)?;
    models::sha256_file(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The recording's content hash and its decoded audio, timed into `times`.
fn read_and_decode(path: &Path, times: &mut StageTimes) -> Result<(String, Audio), Error> {
    let sha256 = timed(&mut times.read_s, || hash_recording(path))?;
    let decoded = timed(&mut times.decode_s, || audio::decode_file(path))?;
    Ok((sha256, decoded))
}

/// Transcribes one recording. The transcript's `uri` is the file stem.
pub fn transcribe_file(
    engines: &Engines,
    path: &Path,
    cfg: &TranscribeConfig,
) -> Result<Transcript, Error> {
    transcribe_file_timed(engines, path, cfg).map(|(t, _)| t)
}

/// [`transcribe_file`], also saying how long each stage took.
pub fn transcribe_file_timed(
    engines: &Engines,
    path: &Path,
    cfg: &TranscribeConfig,
) -> Result<(Transcript, StageTimes), Error> {
    let mut times = StageTimes::default();
    let (sha256, decoded) = read_and_decode(path, &mut times)?;
    let transcript = transcribe_audio(engines, path, sha256, &decoded, cfg, &mut times)?;
    Ok((transcript, times))
}

/// Transcribes and diarizes one recording: read once, decoded once, voice activity run once.
/// The returned transcript has its words attributed to speakers (display names set from `names`).
pub fn process_file(
    engines: &Engines,
    embedder: &SpeakerEmbedder,
    path: &Path,
    cfg: &TranscribeConfig,
    diarize_cfg: &DiarizeConfig,
    names: &[(String, String)],
) -> Result<(Transcript, Diarization, StageTimes), Error> {
    diarize_cfg.validate()?;
    let mut times = StageTimes::default();
    let (sha256, decoded) = read_and_decode(path, &mut times)?;
    let transcript = transcribe_audio(engines, path, sha256, &decoded, cfg, &mut times)?;
    let mut diarization = timed(&mut times.speakers_s, || {
        diarize_audio(embedder, &transcript, &decoded, diarize_cfg)
    })?;
    apply_names(&mut diarization, names);
    let attributed = timed(&mut times.speakers_s, || {
        diarize::attribute(&transcript, &diarization)
    });
    Ok((attributed, diarization, times))
}

/// The speaker stage on already decoded audio and its transcript's speech regions.
pub fn diarize_audio(
    embedder: &SpeakerEmbedder,
    transcript: &Transcript,
    decoded: &Audio,
    diarize_cfg: &DiarizeConfig,
) -> Result<Diarization, Error> {
    Ok(diarize::diarize(
        embedder,
        &transcript.uri,
        &decoded.samples,
        &transcript.speech,
        diarize_cfg,
    )?)
}

/// Re-runs the speaker stage on a saved transcript, without transcribing again. The audio is
/// `audio` if given, else the transcript's source path; its SHA-256 must match the transcript's,
/// so speakers are never computed on a different recording.
pub fn diarize_transcript(
    embedder: &SpeakerEmbedder,
    transcript: &Transcript,
    audio: Option<&Path>,
    diarize_cfg: &DiarizeConfig,
) -> Result<Diarization, Error> {
    diarize_cfg.validate()?;
    let decoded = decode_transcribed_recording(transcript, audio)?;
    diarize_audio(embedder, transcript, &decoded, diarize_cfg)
}

/// Makes the clean voices of a saved diarization's speakers ([`diarize::voices::set_clean_voices`])
/// from the recording (`audio` if given, else the transcript's source, checked as
/// [`diarize_transcript`] checks it); for one that needs them ([`diarize::needs_clean_voices`]).
pub fn make_clean_voices(
    embedder: &SpeakerEmbedder,
    transcript: &Transcript,
    audio: Option<&Path>,
    diarization: &mut Diarization,
) -> Result<(), Error> {
    let decoded = decode_transcribed_recording(transcript, audio)?;
    diarize::voices::set_clean_voices(embedder, &decoded.samples, diarization)?;
    Ok(())
}

/// The recording `transcript` was made from (`audio` if given, else its source path), decoded,
/// after checking its SHA-256 is the transcript's.
fn decode_transcribed_recording(
    transcript: &Transcript,
    audio: Option<&Path>,
) -> Result<Audio, Error> {
    let path = audio.map_or_else(|| PathBuf::from(&transcript.source.path), Path::to_path_buf);
    let sha256 = hash_recording(&path)?;
    if sha256 != transcript.source.sha256 {
        return Err(Error::AudioMismatch {
            path,
            uri: transcript.uri.clone(),
        });
    }
    Ok(audio::decode_file(&path)?)
}

/// Gives speakers human names (`SPEAKER_01` → `Ana`). Ids not found are ignored here; the CLI
/// reports them.
pub fn apply_names(diarization: &mut Diarization, names: &[(String, String)]) {
    for (id, name) in names {
        if let Some(s) = diarization.speakers.iter_mut().find(|s| &s.id == id) {
            s.name = Some(name.clone());
        }
    }
}

/// Writes `<uri>.diarization.json` (the speaker stage's artifact, names included) and
/// `<uri>.rttm` into `out_dir`, atomically.
pub fn write_diarization(d: &Diarization, out_dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let json_path = diarization_path(out_dir, &d.uri);
    write_atomic(&json_path, diarization_json(d).as_bytes())?;
    let rttm_path = out_dir.join(format!("{}.rttm", d.uri));
    write_atomic(
        &rttm_path,
        rttm::write_rttm(&diarize::to_rttm_turns(d)).as_bytes(),
    )?;
    Ok(vec![rttm_path, json_path])
}

/// The diarization artifact's text (pretty JSON, final newline).
pub fn diarization_json(d: &Diarization) -> String {
    let mut json = serde_json::to_string_pretty(d).expect("a diarization always serialises");
    json.push('\n');
    json
}

/// Where a recording's diarization artifact lives in an output folder.
pub fn diarization_path(out_dir: &Path, uri: &str) -> PathBuf {
    out_dir.join(format!("{uri}.diarization.json"))
}

/// Reads a saved diarization artifact, checking its schema.
pub fn read_diarization(path: &Path) -> Result<Diarization, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let d: Diarization = serde_json::from_str(&text).map_err(|source| Error::BadArtifact {
        path: path.to_path_buf(),
        source,
    })?;
    if d.schema != diarize::SCHEMA_NAME || d.schema_version != diarize::SCHEMA_VERSION {
        return Err(Error::ArtifactVersion {
            path: path.to_path_buf(),
        });
    }
    Ok(d)
}

/// Voice activity then Whisper on decoded audio. `sha256` is the file's content hash (read
/// once by the caller, never again here).
pub fn transcribe_audio(
    engines: &Engines,
    path: &Path,
    sha256: String,
    decoded: &Audio,
    cfg: &TranscribeConfig,
    times: &mut StageTimes,
) -> Result<Transcript, Error> {
    let detected = timed(&mut times.vad_s, || {
        engines.vad.detect_speech(&decoded.samples, &cfg.vad)
    })?;
    let asr = timed(&mut times.asr_s, || {
        engines
            .transcriber
            .transcribe(&decoded.samples, &detected, &cfg.asr)
    })?;
    let speech = detected.regions;
    let source = SourceInfo {
        path: path.display().to_string(),
        sha256,
        duration_ms: decoded.duration_ms(),
        sample_rate_hz: decoded.source_sample_rate,
        channels: decoded.source_channels,
        codec: decoded.codec.clone(),
        decode: decoded.report.clone(),
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
        untranscribed: asr.untranscribed,
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

/// Settings of the analysis stages (passages → themes → codes).
#[derive(Debug, Clone, Default)]
pub struct AnalysisConfig {
    /// How turns become passages (moderator override, sizes).
    pub passages: PassageConfig,
    /// How themes are found (count override, outliers).
    pub themes: ThemeConfig,
    /// How codes are proposed (quotes, keywords).
    pub codes: CodesConfig,
    /// Seed codes for deductive coding (empty: inductive only).
    pub seeds: Vec<SeedCode>,
    /// Passages the researcher coded, and the file they came from (for errors). With examples,
    /// every content passage is sorted into the codebook's and the examples' codes.
    pub examples: Option<(PathBuf, Vec<CodeExample>)>,
}

/// Passages, themes and proposed codes of a set of transcripts.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The passages of all transcripts.
    pub passages: Passages,
    /// The themes over the content passages.
    pub themes: Themes,
    /// One proposed code per theme, quotes verified verbatim.
    pub codebook: Codebook,
    /// The text model the passages were embedded with (`e5`, `use`, …).
    pub text_model: String,
    /// Each proposed code's text ([`themes::code_text`]) as a vector of the themes' space
    /// (first text model), for the review page's suggestions.
    pub code_text_vectors: Vec<(String, Vec<f32>)>,
}

/// Loads a text embedding model (`e5`, `minilm` or a folder).
pub fn load_text_embedder(models_dir: &Path, spec: &str) -> Result<TextEmbedder, Error> {
    Ok(TextEmbedder::load(&models::resolve_text_model(
        models_dir, spec,
    )?)?)
}

/// Loads the text models of a `--text-model` spec: one model (`e5`, `use`, `minilm`, a
/// folder) or several joined by `+` (`e5+use`: fused at the score level for coding by example
/// and by codebook; inductive themes use the first).
pub fn load_text_embedders(models_dir: &Path, spec: &str) -> Result<Vec<TextEmbedder>, Error> {
    spec.split('+')
        .map(|one| load_text_embedder(models_dir, one.trim()))
        .collect()
}

/// Finds themes and proposes codes over `transcripts` (one recording or an archive).
pub fn analyse(
    transcripts: &[Transcript],
    embedder: &TextEmbedder,
    cfg: &AnalysisConfig,
) -> Result<Analysis, Error> {
    analyse_with(transcripts, &[embedder], cfg)
}

/// [`analyse`] with one or more text models ([`load_text_embedders`]): codes are assigned
/// with every model's scores fused ([`themes::code_passages_fused`]); inductive themes are
/// found with the first model. `embedders` must not be empty.
pub fn analyse_with(
    transcripts: &[Transcript],
    embedders: &[&TextEmbedder],
    cfg: &AnalysisConfig,
) -> Result<Analysis, Error> {
    let Some(&embedder) = embedders.first() else {
        return Err(themes::ThemeError::EmbeddingCount {
            what: "text models",
            expected: 1,
            got: 0,
        }
        .into());
    };
    let text_model = embedders
        .iter()
        .map(|e| e.name())
        .collect::<Vec<_>>()
        .join("+");
    let passages = passages::split(transcripts, &cfg.passages)?;
    if cfg.examples.is_some() || !cfg.seeds.is_empty() {
        // Deductive: every content passage is sorted into the codebook's and the examples'
        // codes, or left unassigned.
        let (examples, ids) = match &cfg.examples {
            Some((path, examples)) => (
                examples.as_slice(),
                codes::examples::resolve_examples(&passages, examples, path)?,
            ),
            None => (&[][..], Vec::new()),
        };
        let specs = code_specs(&cfg.seeds, examples, &ids);
        let themes = themes::code_passages_fused(&passages, embedders, &specs, &cfg.themes)?;
        let seeds: Vec<SeedCode> = specs
            .iter()
            .map(|s| SeedCode {
                name: s.name.clone(),
                description: s.description.clone(),
            })
            .collect();
        let codebook = codes::propose(transcripts, &passages, &themes, &seeds, &cfg.codes)?;
        let code_text_vectors = code_text_vectors(&themes, &codebook, embedder)?;
        return Ok(Analysis {
            passages,
            themes,
            codebook,
            text_model,
            code_text_vectors,
        });
    }
    let seeds: Vec<(String, String)> = cfg
        .seeds
        .iter()
        .map(|s| (s.name.clone(), s.description.clone()))
        .collect();
    let themes = themes::run(&passages, embedder, &seeds, &cfg.themes)?;
    let codebook = codes::propose(transcripts, &passages, &themes, &cfg.seeds, &cfg.codes)?;
    let code_text_vectors = code_text_vectors(&themes, &codebook, embedder)?;
    Ok(Analysis {
        passages,
        themes,
        codebook,
        text_model,
        code_text_vectors,
    })
}

/// Each code's text embedded as a query and placed in the themes' space (the review page has
/// no text model; see [`Analysis::code_text_vectors`]). Repeated texts once.
fn code_text_vectors(
    themes: &themes::Themes,
    codebook: &codes::Codebook,
    embedder: &TextEmbedder,
) -> Result<Vec<(String, Vec<f32>)>, Error> {
    let mut texts: Vec<String> = Vec::new();
    for c in &codebook.codes {
        if let Some(t) = themes::code_text(&c.label, &c.definition)
            && !texts.contains(&t)
        {
            texts.push(t);
        }
    }
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let raw = embedder.embed_queries(&refs)?;
    Ok(texts
        .into_iter()
        .zip(raw)
        .filter_map(|(t, v)| themes.place_query(&v).map(|v| (t, v)))
        .collect())
}

/// The codes to sort passages into: the codebook's, in its order, then codes that only the
/// examples name, in order of first appearance; `ids` is the passage of each example.
pub fn code_specs(seeds: &[SeedCode], examples: &[CodeExample], ids: &[usize]) -> Vec<CodeSpec> {
    let mut specs: Vec<CodeSpec> = seeds
        .iter()
        .map(|s| CodeSpec {
            name: s.name.clone(),
            description: s.description.clone(),
            examples: Vec::new(),
            from_codebook: true,
        })
        .collect();
    for (e, &id) in examples.iter().zip(ids) {
        let at = match specs.iter().position(|s| s.name == e.code) {
            Some(at) => at,
            None => {
                specs.push(CodeSpec {
                    name: e.code.clone(),
                    ..CodeSpec::default()
                });
                specs.len() - 1
            }
        };
        if !specs[at].examples.contains(&id) {
            specs[at].examples.push(id);
        }
    }
    specs
}

/// Writes `codes.md`, `codes.csv`, `passages.tsv`, `analysis.json` (the artifact review imports)
/// and, when there is at least one code,
/// `codebook.qdc` and `project.qdpx`.
pub fn write_analysis(
    out_dir: &Path,
    transcripts: &[Transcript],
    analysis: &Analysis,
    provenance: &[(String, String)],
    qdpx: &export::qda::QdpxOptions,
) -> Result<Vec<PathBuf>, Error> {
    let report = export::codes_report::CodesReport {
        passages: &analysis.passages,
        themes: &analysis.themes,
        codebook: &analysis.codebook,
        provenance,
    };
    let mut written = export::codes_report::write_codes_report(out_dir, &report)?;
    written.push(export::analysis_json::write_analysis_json(
        out_dir,
        &analysis.passages,
        &analysis.themes,
        &analysis.codebook,
        &analysis.text_model,
        &analysis.code_text_vectors,
    )?);
    if !analysis.codebook.codes.is_empty() {
        written.extend(export::codes_qda::write_qda(
            out_dir,
            transcripts,
            &analysis.passages,
            &analysis.themes,
            &analysis.codebook,
            qdpx,
        )?);
    }
    Ok(written)
}
