//! `qualscribe speakers enroll|list`: voice profiles, so a speaker named once is recognised by
//! name in other recordings (`run`/`batch`/`diarize --voices DIR`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use qualscribe::diarize::voices;
use qualscribe::export;
use qualscribe::models;
use qualscribe::pipeline;

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
    /// A saved transcript (<stem>.transcript.json) with its <stem>.diarization.json beside it
    #[arg(long = "from", value_name = "TRANSCRIPT")]
    from: PathBuf,
    /// The speaker's id in that transcript, e.g. SPEAKER_00
    #[arg(long, value_name = "ID")]
    speaker: String,
    #[command(flatten)]
    dir: VoicesDirArg,
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
    let dir = args.dir.resolve();
    let profile = voices::enroll(&dir, &args.name, &diarization, &args.speaker)?;
    println!(
        "enrolled {} from {} {} ({:.0} s of speech in {} recording(s)) in {}",
        profile.name,
        diarization.uri,
        args.speaker,
        profile.speech_ms as f64 / 1000.0,
        profile.sources.len(),
        voices::profile_path(&dir, &profile.name)?.display()
    );
    Ok(())
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
