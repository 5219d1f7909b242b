//! Argument groups shared by several commands, and their translation into library settings.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use qualscribe::asr::AsrConfig;
use qualscribe::diarize::{DiarizeConfig, Method, voices};
use qualscribe::export::qda::{AudioStorage, QdpxOptions};
use qualscribe::models;
use qualscribe::pipeline::{AnalysisConfig, TranscribeConfig};
use qualscribe::vad::VadConfig;

/// `--models-dir`, for every command that loads or installs models.
#[derive(Args, Clone)]
pub struct ModelsDirArg {
    /// Models folder [env: QUALSCRIBE_MODELS; default: per-user cache]
    #[arg(long, value_name = "DIR")]
    pub models_dir: Option<PathBuf>,
}

impl ModelsDirArg {
    pub fn resolve(&self) -> PathBuf {
        self.models_dir
            .clone()
            .unwrap_or_else(models::default_models_dir)
    }
}

/// Whisper's settings, shared by `transcribe`, `run` and `batch`.
#[derive(Args, Clone)]
pub struct WhisperArgs {
    /// Whisper model: base, tiny.en, base-q8_0, … or a path to a ggml-*.bin
    #[arg(long, default_value = "base")]
    pub model: String,
    /// Spoken language: auto, or a code such as es, en, pt
    #[arg(long, default_value = "auto")]
    pub language: String,
    /// CPU threads for Whisper (per file in `batch`) [default: all cores, split between jobs]
    #[arg(long)]
    pub threads: Option<usize>,
    /// Beam width (1 = greedy, faster)
    #[arg(long, default_value_t = 1)]
    pub beam_size: u32,
}

impl WhisperArgs {
    pub fn config(&self, threads: usize) -> TranscribeConfig {
        TranscribeConfig {
            asr: AsrConfig {
                language: self.language.clone(),
                threads,
                beam_size: self.beam_size.max(1),
            },
            vad: VadConfig::default(),
        }
    }
}

/// Speaker counts and names, shared by `run`, `batch` and `diarize`.
#[derive(Args, Clone)]
pub struct SpeakerArgs {
    /// Exact number of speakers, when known
    #[arg(long, value_name = "N")]
    pub speakers: Option<usize>,
    /// Fewest speakers to look for
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min_speakers: usize,
    /// Most speakers to look for
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_speakers: usize,
    /// Name a speaker in every export, e.g. --rename SPEAKER_01=Ana (repeatable)
    #[arg(long, value_name = "ID=NAME")]
    pub rename: Vec<String>,
    /// File of names, one `SPEAKER_01=Ana` (or tab-separated) per line
    #[arg(long, value_name = "FILE")]
    pub names: Option<PathBuf>,
    /// Folder of enrolled voices (`qualscribe speakers enroll`): speakers whose voice matches
    /// one get its name, and an enrolled voice that says little still gets a speaker of its
    /// own (with `diarize`, when the speakers are computed, e.g. `--recluster`)
    #[arg(long, value_name = "DIR")]
    pub voices: Option<PathBuf>,
    /// Speaker recipe: `segmentation` (default; pyannote segmentation-3.0 + CAM++: finds
    /// overlapping and quiet speech, better on real meetings; needs `models fetch --model
    /// segmentation`) or `windows` (CAM++ windows inside the VAD's speech)
    #[arg(long, value_name = "METHOD", default_value = "segmentation")]
    pub speaker_method: SpeakerMethodArg,
}

/// `--speaker-method` values.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum SpeakerMethodArg {
    Windows,
    Segmentation,
}

impl SpeakerArgs {
    /// The diarization settings, with the enrolled voices loaded.
    pub fn config(&self) -> Result<DiarizeConfig> {
        let voices = match &self.voices {
            Some(dir) => voices::load_profiles(dir, models::speaker_model_sha256())?,
            None => Vec::new(),
        };
        let method = match self.speaker_method {
            SpeakerMethodArg::Windows => Method::Windows,
            SpeakerMethodArg::Segmentation => Method::Segmentation,
        };
        Ok(DiarizeConfig {
            num_speakers: self.speakers,
            min_speakers: self.min_speakers,
            max_speakers: self.max_speakers,
            voices,
            method,
            ..DiarizeConfig::default()
        })
    }

    /// Whether the user asked for a particular clustering (so a saved one cannot be reused).
    pub fn changes_clustering(&self) -> bool {
        self.speakers.is_some()
            || self.min_speakers != 1
            || self.max_speakers != 16
            || self.speaker_method != SpeakerMethodArg::Segmentation
    }

    /// The `--names` file's pairs, then the `--rename` pairs (later ones win when applied).
    pub fn names(&self) -> Result<Vec<(String, String)>> {
        let mut pairs = Vec::new();
        if let Some(file) = &self.names {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read names file {}", file.display()))?;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let pair = parse_name(line).with_context(|| {
                    format!("{}:{}: expected `SPEAKER_01=Ana`", file.display(), i + 1)
                })?;
                pairs.push(pair);
            }
        }
        for r in &self.rename {
            pairs.push(
                parse_name(r).with_context(|| format!("--rename {r}: expected SPEAKER_01=Ana"))?,
            );
        }
        Ok(pairs)
    }
}

fn parse_name(s: &str) -> Result<(String, String)> {
    let (id, name) = s
        .split_once('=')
        .or_else(|| s.split_once('\t'))
        .ok_or_else(|| anyhow::anyhow!("no `=`"))?;
    let (id, name) = (id.trim(), name.trim());
    if id.is_empty() || name.is_empty() {
        bail!("empty speaker id or name");
    }
    Ok((id.to_string(), name.to_string()))
}

/// Themes and codes settings, shared by `run`, `themes`, `batch` and `merge`.
#[derive(Args, Clone)]
pub struct AnalysisArgs {
    /// Number of themes (default: chosen automatically)
    #[arg(long, value_name = "N")]
    pub themes: Option<usize>,
    /// Seed codes for deductive coding: a REFI-QDA .qdc or a CSV `name,description`
    #[arg(long, value_name = "FILE")]
    pub codebook: Option<PathBuf>,
    /// Code by example: a TSV `uri start end code` (seconds) of passages you coded; every other
    /// passage gets its most likely code and a confidence, or stays unassigned
    #[arg(long, value_name = "FILE")]
    pub examples: Option<PathBuf>,
    /// Inductive clustering: kmeans (spherical k-means on e5, default) or ward (Ward on e5
    /// fused with TF-IDF; better on the interview archive, not on the focus group)
    #[arg(long, default_value = "kmeans", value_name = "METHOD", value_parser = ["kmeans", "ward"])]
    pub clustering: String,
    /// How --examples and --codebook become codes: centroid (cosine to each code's examples
    /// mixed with its definition, default) or balanced (each code's prototype re-estimated
    /// from every passage, codes kept of similar size: measured better on the interviews with
    /// code names + examples, worse with a codebook and on the focus group's Whisper text;
    /// its confidences are less calibrated to the 0.70 threshold)
    #[arg(long, default_value = "centroid", value_name = "METHOD", value_parser = ["centroid", "balanced"])]
    pub example_method: String,
    /// The moderator's speaker name (default: the speaker who asks most questions)
    #[arg(long, value_name = "NAME")]
    pub moderator: Option<String>,
    /// Text embedding model: e5 (multilingual, default), use (Universal Sentence Encoder
    /// multilingual v3, 512-d), minilm (English) or a folder. e5+use: codes from --codebook
    /// and --examples are assigned with both models' scores averaged, unassigned below 0.75
    /// (with a codebook's one-line definitions: better on interviews, as good elsewhere; with
    /// names only: worse on the focus group); inductive themes use e5
    #[arg(long, default_value = "e5", value_name = "MODEL")]
    pub text_model: String,
    /// Audio in project.qdpx: embed (the recordings inside the file: self-contained),
    /// relative (linked relative to the output folder) or absolute (linked by full path)
    #[arg(long, default_value = "embed", value_name = "HOW")]
    pub qdpx_audio: AudioStorage,
}

/// Validated analysis settings: what to find, with which text model, how to write the project.
pub struct AnalysisSettings {
    pub cfg: AnalysisConfig,
    pub text_model: String,
    pub qdpx: QdpxOptions,
}

impl AnalysisArgs {
    pub fn settings(&self) -> Result<AnalysisSettings> {
        let mut cfg = AnalysisConfig::default();
        if self.themes == Some(0) {
            bail!("--themes must be at least 1");
        }
        cfg.themes.themes = self.themes;
        cfg.passages.moderator = self.moderator.clone();
        if self.clustering == "ward" {
            cfg.themes.clustering = qualscribe::themes::ClusterMethod::Ward;
        }
        if self.example_method == "balanced" {
            cfg.themes.example_method = qualscribe::themes::by_example::ExampleMethod::Balanced;
        }
        if let Some(path) = &self.codebook {
            cfg.seeds = qualscribe::codes::read_seed_codes(path)?;
        }
        if let Some(path) = &self.examples {
            cfg.examples = Some((
                path.clone(),
                qualscribe::codes::examples::read_examples(path)?,
            ));
        }
        Ok(AnalysisSettings {
            cfg,
            text_model: self.text_model.clone(),
            qdpx: QdpxOptions {
                audio: self.qdpx_audio,
            },
        })
    }
}

/// The stages after transcription, shared by `run` and `batch`.
#[derive(Args, Clone)]
pub struct StageArgs {
    #[command(flatten)]
    pub speakers: SpeakerArgs,
    /// Skip speaker diarization
    #[arg(long)]
    pub no_diarize: bool,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
    /// Skip themes and proposed codes (across all files)
    #[arg(long)]
    pub no_themes: bool,
}

/// Progress reporting of `batch` and `merge`.
#[derive(Args, Clone)]
pub struct ReportArgs {
    /// Print nothing but errors and the failure table
    #[arg(short, long)]
    pub quiet: bool,
    /// Also write progress as JSON lines to FILE (`-` for standard output), for scripts
    #[arg(long, value_name = "FILE")]
    pub log_json: Option<PathBuf>,
}
