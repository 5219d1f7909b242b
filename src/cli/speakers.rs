//! `qualscribe speakers enroll|list`: voice profiles, so a speaker named once is recognised by
//! name in other recordings (`run`/`batch`/`diarize --voices DIR`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use clap::{Args, Subcommand};

use qualscribe::audio;
use qualscribe::diarize::{self, Diarization, voices};
use qualscribe::error::naming_the_file;
use qualscribe::export;
use qualscribe::models;
use qualscribe::pipeline;

use super::args::ModelsDirArg;

#[derive(Subcommand)]
pub enum SpeakersAction {
    /// Name a speaker of a saved transcript; later recordings processed with `--voices DIR`
    /// get that name where the voice matches. Stores the voice's embedding, never audio.
    Enroll(EnrollArgs),
    /// List the enrolled voices
    List {
        #[command(flatten)]
        dir: VoicesDirArg,
    },
}

#[derive(Args)]
pub struct EnrollArgs {
    /// The name to give, e.g. Moderadora
    name: String,
    /// A saved transcript (<stem>.transcript.json) with its <stem>.diarization.json beside it,
    /// or a <stem>.diarization.json itself (then give the recording with --audio)
    #[arg(long = "from", value_name = "TRANSCRIPT")]
    from: PathBuf,
    /// The speaker's id in that transcript, e.g. SPEAKER_00
    #[arg(long, value_name = "ID")]
    speaker: String,
    /// The recording, when it moved since transcription: the profile is made from the
    /// speaker's cleanest speech in it (without it, from the saved speaker embedding)
    #[arg(long, value_name = "AUDIO")]
    audio: Option<PathBuf>,
    #[command(flatten)]
    dir: VoicesDirArg,
    #[command(flatten)]
    models: ModelsDirArg,
}

#[derive(Args)]
pub struct VoicesDirArg {
    /// Folder of voice profiles [default: $QUALSCRIBE_VOICES, else
    /// ~/.local/share/qualscribe/voices]
    #[arg(long = "voices", value_name = "DIR")]
    voices: Option<PathBuf>,
}

impl VoicesDirArg {
    fn resolve(&self) -> PathBuf {
        self.voices
            .clone()
            .unwrap_or_else(voices::default_voices_dir)
    }
}

pub fn run(action: &SpeakersAction) -> Result<ExitCode> {
    match action {
        SpeakersAction::Enroll(args) => enroll(args)?,
        SpeakersAction::List { dir } => list(&dir.resolve())?,
    }
    Ok(ExitCode::SUCCESS)
}

fn enroll(args: &EnrollArgs) -> Result<()> {
    let (diarization, audio) = saved_speakers(args)?;
    // The speaker must exist and have enough speech before the audio is decoded.
    if let Err(e) = voices::check_enrollable(&diarization, &args.speaker) {
        bail!("{}: {e}", args.from.display());
    }
    let embedding = match audio {
        Some(path) => {
            let embedder = pipeline::load_speaker_embedder(&args.models.resolve())?;
            let decoded = audio::decode_file(&path)
                .map_err(|e| anyhow!(naming_the_file(&path, &e.to_string())))?;
            voices::clean_embedding(&embedder, &decoded.samples, &diarization, &args.speaker)?
        }
        // Without the recording, the profile is the speaker's saved voice; a segmentation
        // diarization saved without profiles holds no clean voice, only the recipe's mean.
        None if diarize::needs_clean_voices(&diarization) => bail!(
            "{}: the voice profile of {} is made from the recording, which was not found: give it with --audio",
            args.from.display(),
            args.speaker
        ),
        None => None,
    };
    let dir = args.dir.resolve();
    let profile = voices::enroll(
        &dir,
        &args.name,
        &diarization,
        &args.speaker,
        embedding.clone(),
    )?;
    let clean_ms = voices::clean_speech_ms(&diarization, &args.speaker);
    println!(
        "enrolled {} from {} {} ({:.0} s of speech without overlap; {:.0} s in {} recording(s)) in {}",
        profile.name,
        diarization.uri,
        args.speaker,
        clean_ms as f64 / 1000.0,
        profile.speech_ms as f64 / 1000.0,
        profile.sources.len(),
        voices::profile_path(&dir, &profile.name)?.display()
    );
    if embedding.is_none() {
        eprintln!(
            "qualscribe: note: without the recording the profile is the speaker's saved mean embedding; give it with --audio for a profile from their cleanest speech"
        );
    }
    if clean_ms < voices::WARN_ENROL_MS {
        eprintln!(
            "qualscribe: warning: {} has only {:.0} s of speech without overlap in {}; the profile may miss this voice elsewhere: enroll it again from another recording to add speech",
            args.speaker,
            clean_ms as f64 / 1000.0,
            diarization.uri
        );
    }
    Ok(())
}

/// The saved speakers `--from` names, and the recording to make the profile from if it can be
/// found (a transcript's recording is checked to be the one it was made from).
fn saved_speakers(args: &EnrollArgs) -> Result<(Diarization, Option<PathBuf>)> {
    let is_diarization = args
        .from
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".diarization.json"));
    if is_diarization {
        let diarization = pipeline::read_diarization(&args.from)?;
        return Ok((diarization, args.audio.clone()));
    }
    let transcript = export::read_transcript(&args.from)?;
    let folder = args
        .from
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let saved = pipeline::diarization_path(&folder, &transcript.uri);
    if !saved.is_file() {
        bail!(
            "no speakers saved beside {} ({} is missing): run `qualscribe diarize {}` first",
            args.from.display(),
            saved.display(),
            args.from.display()
        );
    }
    let diarization = pipeline::read_diarization(&saved)?;
    let audio = args
        .audio
        .clone()
        .unwrap_or_else(|| PathBuf::from(&transcript.source.path));
    if !audio.is_file() {
        if args.audio.is_some() {
            bail!("{}: no such recording", audio.display());
        }
        return Ok((diarization, None));
    }
    if pipeline::hash_recording(&audio)? != transcript.source.sha256 {
        bail!(
            "{}: not the recording {} was made from; give the right one with --audio",
            audio.display(),
            args.from.display()
        );
    }
    Ok((diarization, Some(audio)))
}

fn list(dir: &Path) -> Result<()> {
    let profiles = voices::load_profiles(dir, models::speaker_model_sha256())?;
    if profiles.is_empty() {
        println!("no voices enrolled in {}", dir.display());
    }
    for p in profiles {
        let sources: Vec<String> = p
            .sources
            .iter()
            .map(|s| format!("{} {}", s.uri, s.speaker))
            .collect();
        println!(
            "{}\t{:.0} s\t{}",
            p.name,
            p.speech_ms as f64 / 1000.0,
            sources.join(", ")
        );
    }
    Ok(())
}
