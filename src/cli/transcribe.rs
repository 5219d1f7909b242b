//! `qualscribe transcribe` (transcripts only; models must be installed) and `qualscribe run`
//! (the whole job: installs missing models, transcribes, finds speakers, themes and codes).

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use qualscribe::asr;
use qualscribe::diarize::{DiarizeConfig, SpeakerEmbedder};
use qualscribe::error::naming_the_file;
use qualscribe::export::{self, Format};
use qualscribe::pipeline::{self, Engines, TranscribeConfig};
use qualscribe::transcript::Transcript;

use super::args::{AnalysisSettings, ModelsDirArg, StageArgs, WhisperArgs};
use super::common::{
    error_line, install_missing_models, install_missing_text_model, prepare_output_dir,
};
use super::themes::analyse_and_write;

#[derive(Args, Clone)]
pub struct TranscribeArgs {
    /// Audio files (wav, flac, mp3, m4a/aac, ogg vorbis, opus)
    #[arg(required = true, value_name = "AUDIO")]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    whisper: WhisperArgs,
    /// Output folder (created if missing)
    #[arg(short = 'o', long = "output-dir", default_value = "qualscribe-output")]
    output_dir: PathBuf,
    /// Formats, comma-separated: txt,srt,vtt,json,md,docx or all
    #[arg(long, default_value = "all")]
    format: String,
    /// Print nothing but errors
    #[arg(short, long)]
    quiet: bool,
    /// Count a damaged recording (cut off, damaged packets, NaN samples, wrong header length) as
    /// failed, writing nothing for it, instead of transcribing it with a warning
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    dir: ModelsDirArg,
}

#[derive(Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    transcribe: TranscribeArgs,
    #[command(flatten)]
    stages: StageArgs,
}

/// Speaker settings and names for `run`, when it diarizes.
type SpeakerStage = (DiarizeConfig, Vec<(String, String)>);

/// `qualscribe transcribe`.
pub fn transcribe(args: &TranscribeArgs) -> Result<ExitCode> {
    transcribe_and_analyse(args, None, None, false)
}

/// `qualscribe run`.
pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let s = &args.stages;
    let speakers = if s.no_diarize {
        None
    } else {
        let cfg = s.speakers.config()?;
        cfg.validate()?;
        Some((cfg, s.speakers.names()?))
    };
    let analysis = if s.no_themes {
        None
    } else {
        Some(s.analysis.settings()?)
    };
    transcribe_and_analyse(&args.transcribe, speakers, analysis, true)
}

/// The shared body; `install_missing` (`run`) installs missing models once the arguments and
/// the output folder have been checked.
fn transcribe_and_analyse(
    args: &TranscribeArgs,
    speakers: Option<SpeakerStage>,
    analysis: Option<AnalysisSettings>,
    install_missing: bool,
) -> Result<ExitCode> {
    let formats = export::parse_formats(&args.format)?;
    let models_dir = args.dir.resolve();
    prepare_output_dir(&args.output_dir)?;
    if install_missing {
        install_missing_models(
            &models_dir,
            &args.whisper.model,
            speakers.as_ref().map(|(cfg, _)| cfg.method),
            args.quiet,
        )?;
        if let Some(a) = &analysis {
            install_missing_text_model(&models_dir, &a.text_model, args.quiet)?;
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
    let mut seen_ids = HashSet::new();
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
            (args.quiet, args.strict),
        ) {
            Ok(t) => done.push(t),
            Err(e) => failures.push(naming_the_file(input, &error_line(&e))),
        }
    }
    // Whisper, the VAD and the speaker models are done with: freed before the text model loads,
    // so their memory and the text model's are never held at once (the run's peak).
    drop(engines);
    drop(embedder);
    if let Some(settings) = &analysis
        && !done.is_empty()
        && let Err(e) =
            analyse_and_write(&done, &args.output_dir, settings, &models_dir, args.quiet)
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

fn transcribe_one(
    engines: &Engines,
    speakers: Option<(&SpeakerEmbedder, &SpeakerStage)>,
    input: &Path,
    cfg: &TranscribeConfig,
    out_dir: &Path,
    formats: &[Format],
    (quiet, strict): (bool, bool),
) -> Result<Transcript> {
    let started = Instant::now();
    let (transcript, written, times) = match speakers {
        Some((embedder, (diarize_cfg, names))) => {
            let (transcript, diarization, mut times) =
                pipeline::process_file(engines, embedder, input, cfg, diarize_cfg, names)?;
            check_damage(input, &transcript, strict)?;
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
            check_damage(input, &transcript, strict)?;
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
        if let Some(line) = untranscribed_line(&transcript, &written) {
            let _ = writeln!(out, "  {line}");
        }
        let _ = writeln!(out, "  stage times: {}", stage_times_line(&times));
        for p in &written {
            let _ = writeln!(out, "  wrote {}", p.display());
        }
    } else if let Some(line) = untranscribed_line(&transcript, &written) {
        // Even a quiet run never leaves speech out without saying so.
        eprintln!("qualscribe: {}: {line}", input.display());
    }
    Ok(transcript)
}

/// `2 stretches of speech, 14 s, not transcribed — see out/x.txt`, or `None` when every
/// stretch of speech has words. Points at the file a person reads (TXT, else MD, else JSON).
pub(super) fn untranscribed_line(t: &Transcript, written: &[PathBuf]) -> Option<String> {
    if t.untranscribed.is_empty() {
        return None;
    }
    let n = t.untranscribed.len();
    let stretches = if n == 1 { "stretch" } else { "stretches" };
    let seconds = t.untranscribed_ms() as f64 / 1000.0;
    let shown_in = [".txt", ".md", ".transcript.json"]
        .iter()
        .find_map(|suffix| {
            written
                .iter()
                .find(|p| p.to_string_lossy().ends_with(suffix))
        });
    let see = shown_in.map_or_else(
        || " (export txt, md or json to see where)".to_string(),
        |p| format!(" — see {}", p.display()),
    );
    Some(format!(
        "{n} {stretches} of speech, {seconds:.0} s, not transcribed{see}"
    ))
}

/// A damaged recording: one warning line on stderr (printed even with --quiet: it is about the
/// result, not progress), or with --strict an error so nothing is written for it.
fn check_damage(input: &Path, transcript: &Transcript, strict: bool) -> Result<()> {
    let warnings = transcript.source.decode.summary();
    if warnings.is_empty() {
        return Ok(());
    }
    if strict {
        anyhow::bail!("damaged recording: {warnings} (--strict)");
    }
    eprintln!(
        "qualscribe: warning: {}: {warnings}; the transcript covers what could be decoded (--strict makes this an error)",
        input.display()
    );
    Ok(())
}

/// `read 0.01s, decode 0.40s, …`: the per-stage times of one recording (benchmarks parse it).
fn stage_times_line(t: &pipeline::StageTimes) -> String {
    format!(
        "read {:.2}s, decode {:.2}s, vad {:.2}s, asr {:.2}s, speakers {:.2}s, export {:.2}s",
        t.read_s, t.decode_s, t.vad_s, t.asr_s, t.speakers_s, t.export_s
    )
}
