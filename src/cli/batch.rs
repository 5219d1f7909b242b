//! `qualscribe batch` and `qualscribe merge`: an archive in, per-file outputs, a failure table and
//! cross-archive themes out.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::json;

use qualscribe::batch::{
    self, BatchConfig, Models, Recording, ReportRow, Shard, progress::Progress,
};
use qualscribe::export;
use qualscribe::pipeline::{self, Engines, StageTimes};

use super::args::{
    AnalysisArgs, AnalysisSettings, ModelsDirArg, ReportArgs, StageArgs, WhisperArgs,
};
use super::common::{
    error_line, install_missing_models, install_missing_text_model, prepare_output_dir,
};
use super::themes::analyse_and_write;

#[derive(Args, Clone)]
pub struct BatchArgs {
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
    /// Formats, comma-separated: txt,srt,vtt,json,md,docx or all (the JSON transcript is always written)
    #[arg(long, default_value = "all")]
    format: String,
    #[command(flatten)]
    stages: StageArgs,
    #[command(flatten)]
    report: ReportArgs,
    /// Count damaged recordings (cut off, damaged packets, NaN samples, wrong header length) as
    /// failed instead of done with a warning
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    dir: ModelsDirArg,
}

#[derive(Args, Clone)]
pub struct MergeArgs {
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
}

/// `qualscribe batch`.
pub fn batch(args: &BatchArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let formats = export::parse_formats(&args.format)?;
    let shard: Option<Shard> = args.shard.as_deref().map(str::parse).transpose()?;
    if !args.stages.speakers.rename.is_empty() || args.stages.speakers.names.is_some() {
        bail!(
            "--rename and --names name one recording's speakers: after the batch, run \
             `qualscribe diarize <out>/transcripts/<file>.transcript.json --rename SPEAKER_01=Ana`"
        );
    }
    let diarize_cfg = if args.stages.no_diarize {
        None
    } else {
        Some(args.stages.speakers.config()?)
    };
    if let Some(cfg) = &diarize_cfg {
        cfg.validate()?;
    }
    let analysis = args.stages.analysis.settings()?;
    let out = &args.output_dir;
    prepare_output_dir(out)?;
    let _lock = batch::lock_output(out)?;

    let discovery = batch::discover(&args.inputs, Some(out));
    let mut recordings = discovery.recordings;
    if let Some(s) = shard {
        recordings.retain(|r| s.contains(r));
    }
    if recordings.is_empty() && discovery.unreadable.is_empty() && shard.is_none() {
        bail!(
            "no audio files found in {}: folders are searched for {}",
            list_paths(&args.inputs),
            batch::AUDIO_EXTENSIONS.join(", ")
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let plan = batch::plan_threads(cores, args.jobs, args.whisper.threads, recordings.len());
    if plan.oversubscribed {
        eprintln!(
            "qualscribe: warning: {} jobs × {} threads on {cores} cores: slower than fewer jobs",
            plan.jobs, plan.threads
        );
    }

    let models_dir = args.dir.resolve();
    let quiet = args.report.quiet;
    install_missing_models(
        &models_dir,
        &args.whisper.model,
        diarize_cfg.as_ref().map(|c| c.method),
        quiet,
    )?;
    let themes_wanted = !args.stages.no_themes && shard.is_none();
    if themes_wanted {
        install_missing_text_model(&models_dir, &analysis.text_model, quiet)?;
    }
    let engines = Engines::load(&models_dir, &args.whisper.model)?;
    let speakers = match diarize_cfg {
        Some(_) => Some(pipeline::load_speaker_embedder(&models_dir)?),
        None => None,
    };
    let cfg = BatchConfig {
        transcribe: args.whisper.config(plan.threads),
        diarize: diarize_cfg,
        formats,
        jobs: plan.jobs,
        strict: args.strict,
    };

    let with_durations = in_processing_order(recordings, plan.jobs);
    let progress = Progress::new(
        &with_durations,
        std::io::stderr().is_terminal(),
        quiet,
        open_log(args.report.log_json.as_deref())?,
    );
    let audio_total: f64 = with_durations.iter().filter_map(|(_, d)| *d).sum();
    progress.log(json!({
        "event": "batch_start", "files": with_durations.len(), "jobs": plan.jobs,
        "threads": plan.threads, "shard": shard.map(|s| s.to_string()),
        "audio_s_estimate": audio_total, "output": out,
    }));
    if let Some(s) = shard {
        progress.println(&format!(
            "shard {s}: {} of the archive's recordings",
            with_durations.len()
        ));
    }
    let ordered: Vec<Recording> = with_durations.into_iter().map(|(r, _)| r).collect();
    let models = Models {
        engines: &engines,
        speakers: speakers.as_ref(),
    };
    let results = batch::process_all(models, &ordered, out, &cfg, &|e| progress.event(&e))?;
    progress.finish();
    // As in `run`: the transcription and speaker models are freed before the themes' text model
    // loads.
    drop(engines);
    drop(speakers);

    let mut times = StageTimes::default();
    for r in &results {
        times.add(&r.times);
    }
    let mut rows: Vec<ReportRow> = results.into_iter().map(|r| r.row).collect();
    rows.extend(
        discovery
            .unreadable
            .into_iter()
            .map(|(path, why)| ReportRow {
                file: path.display().to_string(),
                uri: String::new(),
                failure: Some(("read".to_string(), format!("{}: {why}", path.display()))),
                audio_s: None,
                warnings: String::new(),
            }),
    );
    batch::write_report(out, &rows)?;
    if !quiet {
        println!(
            "stage times (all files): read {:.1}s, decode {:.1}s, vad {:.1}s, asr {:.1}s, speakers {:.1}s, export {:.1}s",
            times.read_s,
            times.decode_s,
            times.vad_s,
            times.asr_s,
            times.speakers_s,
            times.export_s
        );
    }
    let analysis = themes_wanted.then_some(analysis);
    finish(out, &rows, analysis, &models_dir, &progress, quiet, started)
}

/// `qualscribe merge`.
pub fn merge(args: &MergeArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let (shards, out, report) = (&args.shards, &args.output_dir, &args.report);
    let models_dir = &args.dir.resolve();
    let analysis = if args.no_themes {
        None
    } else {
        Some(args.analysis.settings()?)
    };
    prepare_output_dir(out)?;
    let _lock = batch::lock_output(out)?;
    let rows = batch::merge_shards(shards, out)?;
    if let Some(a) = &analysis {
        install_missing_text_model(models_dir, &a.text_model, report.quiet)?;
    }
    let progress = Progress::new(
        &[],
        false,
        report.quiet,
        open_log(report.log_json.as_deref())?,
    );
    progress.log(json!({"event": "merge", "shards": shards, "files": rows.len(), "output": out}));
    finish(
        out,
        &rows,
        analysis,
        models_dir,
        &progress,
        report.quiet,
        started,
    )
}

/// Cross-archive themes over the finished transcripts, the summary and the failure table.
fn finish(
    out: &Path,
    rows: &[ReportRow],
    analysis: Option<AnalysisSettings>,
    models_dir: &Path,
    progress: &Progress,
    quiet: bool,
    started: Instant,
) -> Result<ExitCode> {
    let ok = rows.iter().filter(|r| r.ok()).count();
    let failed = rows.len() - ok;
    let mut themes_error = None;
    // Read once: the themes' input, and where speech was left untranscribed.
    let finished = (ok > 0).then(|| batch::finished_transcripts(out, rows));
    if let Some(Ok(ts)) = &finished {
        report_untranscribed(ts, out);
    }
    if let Some(settings) = analysis
        && let Some(finished) = finished
    {
        let themes_started = Instant::now();
        let result = finished
            .map_err(anyhow::Error::from)
            .and_then(|ts| analyse_and_write(&ts, out, &settings, models_dir, quiet));
        progress.log(json!({
            "event": "themes_done", "status": if result.is_ok() { "ok" } else { "failed" },
            "error": result.as_ref().err().map(error_line),
            "wall_s": themes_started.elapsed().as_secs_f64(),
        }));
        themes_error = result.err();
    }
    let audio_s: f64 = rows.iter().filter_map(|r| r.audio_s).sum();
    let wall_s = started.elapsed().as_secs_f64();
    progress.log(json!({
        "event": "batch_done", "ok": ok, "failed": failed, "audio_s": audio_s, "wall_s": wall_s,
        "themes": themes_error.is_none(),
    }));
    if !quiet {
        println!(
            "{} recordings: {ok} done, {failed} failed; {:.1} min of audio, {:.1} min wall clock; report {}",
            rows.len(),
            audio_s / 60.0,
            wall_s / 60.0,
            out.join(batch::REPORT_FILE).display()
        );
    }
    let table = batch::failure_table(rows);
    if !table.is_empty() {
        eprintln!("qualscribe: {failed} of {} recordings failed:", rows.len());
        eprint!("{table}");
    }
    if let Some(e) = &themes_error {
        eprintln!("qualscribe: themes and codes: {}", error_line(e));
    }
    Ok(if failed == 0 && themes_error.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One line per recording with speech left untranscribed (`qualscribe: <uri>: 2 stretches of
/// speech, 14 s, not transcribed — see <its .txt>`), on stderr even with --quiet: like `run`,
/// a batch never leaves speech out without saying so.
fn report_untranscribed(transcripts: &[qualscribe::transcript::Transcript], out: &Path) {
    let dir = out.join(batch::TRANSCRIPTS_DIR);
    for t in transcripts {
        let written: Vec<PathBuf> = [
            export::Format::Txt,
            export::Format::Md,
            export::Format::Json,
        ]
        .into_iter()
        .map(|f| export::output_path(&dir, &t.uri, f))
        .filter(|p| p.exists())
        .collect();
        if let Some(line) = super::transcribe::untranscribed_line(t, &written) {
            eprintln!("qualscribe: {}: {line}", t.uri);
        }
    }
}

/// Each recording with its header duration. With several jobs, longest first: the last job
/// to finish is then a short one, so cores do not sit idle at the end.
fn in_processing_order(recordings: Vec<Recording>, jobs: usize) -> Vec<(Recording, Option<f64>)> {
    let mut with: Vec<(Recording, Option<f64>)> = recordings
        .into_iter()
        .map(|r| {
            let d = qualscribe::audio::probe_duration_s(&r.path);
            (r, d)
        })
        .collect();
    if jobs > 1 {
        with.sort_by(|a, b| b.1.unwrap_or(0.0).total_cmp(&a.1.unwrap_or(0.0)));
    }
    with
}

fn open_log(path: Option<&Path>) -> Result<Option<Box<dyn std::io::Write + Send>>> {
    Ok(match path {
        None => None,
        Some(p) if p == Path::new("-") => Some(Box::new(std::io::stdout())),
        Some(p) => Some(Box::new(std::fs::File::create(p).with_context(|| {
            format!(
                "cannot create log file {}: choose a writable path",
                p.display()
            )
        })?)),
    })
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
