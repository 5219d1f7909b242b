//! `qualscribe diarize`: speakers for saved transcripts, without transcribing again. A saved
//! diarization next to the outputs is reused (only names change) unless clustering options or
//! `--recluster` ask for new speakers.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

use qualscribe::diarize::{self, DiarizeConfig, SpeakerEmbedder};
use qualscribe::error::naming_the_file;
use qualscribe::export::{self, Format};
use qualscribe::pipeline;

use super::args::{ModelsDirArg, SpeakerArgs};
use super::common::{error_line, prepare_output_dir};

#[derive(Args, Clone)]
pub struct DiarizeArgs {
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
    /// Formats, comma-separated: txt,srt,vtt,json,md,docx or all
    #[arg(long, default_value = "all")]
    format: String,
    #[command(flatten)]
    speakers: SpeakerArgs,
    #[command(flatten)]
    dir: ModelsDirArg,
}

/// What every transcript of one `diarize` call shares; the speaker model loads on first need.
struct Settings {
    formats: Vec<Format>,
    cfg: DiarizeConfig,
    names: Vec<(String, String)>,
    reuse_saved: bool,
    models_dir: PathBuf,
    embedder: Option<SpeakerEmbedder>,
}

/// The speaker model in `slot`, loaded from `models_dir` on first need.
fn loaded<'a>(
    slot: &'a mut Option<SpeakerEmbedder>,
    models_dir: &Path,
) -> Result<&'a SpeakerEmbedder> {
    if slot.is_none() {
        *slot = Some(pipeline::load_speaker_embedder(models_dir)?);
    }
    Ok(slot.as_ref().expect("loaded just above"))
}

pub fn run(args: &DiarizeArgs) -> Result<ExitCode> {
    let cfg = args.speakers.config()?;
    cfg.validate()?;
    let mut settings = Settings {
        formats: export::parse_formats(&args.format)?,
        cfg,
        names: args.speakers.names()?,
        reuse_saved: !args.recluster && !args.speakers.changes_clustering(),
        models_dir: args.dir.resolve(),
        embedder: None,
    };
    if args.audio.is_some() && args.transcripts.len() > 1 {
        bail!("--audio names one recording: give one transcript with it");
    }
    let mut failures = Vec::new();
    for path in &args.transcripts {
        let out_dir = match &args.output_dir {
            Some(d) => d.clone(),
            None => path
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        };
        if let Err(e) = diarize_one(&mut settings, path, args.audio.as_deref(), &out_dir) {
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

fn diarize_one(s: &mut Settings, path: &Path, audio: Option<&Path>, out_dir: &Path) -> Result<()> {
    prepare_output_dir(out_dir)?;
    let transcript = export::read_transcript(path)?;
    let saved = pipeline::diarization_path(out_dir, &transcript.uri);
    let mut diarization = if s.reuse_saved && saved.is_file() {
        let mut d = pipeline::read_diarization(&saved)?;
        if !s.cfg.voices.is_empty() && diarize::needs_clean_voices(&d) {
            // Saved by a run without profiles: the voices naming compares are made now.
            let embedder = loaded(&mut s.embedder, &s.models_dir)?;
            pipeline::make_clean_voices(embedder, &transcript, audio, &mut d).with_context(
                || {
                    format!(
                        "naming the speakers of {} needs their voices, made from its recording \
                         (give it with --audio if it moved)",
                        transcript.uri
                    )
                },
            )?;
        }
        d
    } else {
        let embedder = loaded(&mut s.embedder, &s.models_dir)?;
        pipeline::diarize_transcript(embedder, &transcript, audio, &s.cfg)?
    };
    for (id, _) in &s.names {
        if diarization.speaker(id).is_none() {
            let known: Vec<&str> = diarization.speakers.iter().map(|s| s.id.as_str()).collect();
            bail!(
                "no speaker {id} in {} (speakers: {})",
                transcript.uri,
                known.join(", ")
            );
        }
    }
    // A saved diarization is reused as it is: name its speakers from the voices now.
    diarize::voices::name_speakers(
        &mut diarization.speakers,
        &s.cfg.voices,
        s.cfg.voice_threshold,
    );
    pipeline::apply_names(&mut diarization, &s.names);
    let attributed = diarize::attribute(&transcript, &diarization);
    pipeline::write_outputs(&attributed, out_dir, &s.formats)?;
    pipeline::write_diarization(&diarization, out_dir)?;
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
}
