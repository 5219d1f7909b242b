//! `qualscribe themes`: themes and proposed codes over saved transcripts (one interview or a
//! whole archive); also the analysis step `run`, `batch` and `merge` end with.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use qualscribe::export;
use qualscribe::pipeline;
use qualscribe::transcript::Transcript;

use super::args::{AnalysisArgs, AnalysisSettings, ModelsDirArg};
use super::common::prepare_output_dir;

#[derive(Args, Clone)]
pub struct ThemesArgs {
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
}

pub fn run(args: &ThemesArgs) -> Result<ExitCode> {
    let settings = args.analysis.settings()?;
    prepare_output_dir(&args.output_dir)?;
    let transcripts = args
        .transcripts
        .iter()
        .map(|p| export::read_transcript(p))
        .collect::<Result<Vec<_>, _>>()?;
    analyse_and_write(
        &transcripts,
        &args.output_dir,
        &settings,
        &args.dir.resolve(),
        false,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// With several text models (`e5+use`) of which more than one is missing, one line naming
/// every `models fetch` to run (one missing model: the loader's own error says it).
fn check_text_models_installed(models_dir: &Path, spec: &str) -> Result<()> {
    let missing = super::common::missing_text_models(models_dir, spec);
    if missing.len() > 1 {
        let fetch: Vec<String> = missing
            .iter()
            .map(|m| format!("`qualscribe models fetch --model {m}`"))
            .collect();
        anyhow::bail!(
            "text models {} are not installed in {}; run {}",
            missing
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(" and "),
            models_dir.display(),
            fetch.join(" and ")
        );
    }
    Ok(())
}

/// Themes and proposed codes over the transcripts, written into `out_dir`.
pub fn analyse_and_write(
    transcripts: &[Transcript],
    out_dir: &Path,
    settings: &AnalysisSettings,
    models_dir: &Path,
    quiet: bool,
) -> Result<()> {
    let started = Instant::now();
    // Several models serve only to assign codes; inductive themes use the first.
    let deductive = settings.cfg.examples.is_some() || !settings.cfg.seeds.is_empty();
    let spec = match settings.text_model.split_once('+') {
        Some((first, _)) if !deductive => first,
        _ => settings.text_model.as_str(),
    };
    check_text_models_installed(models_dir, spec)?;
    let embedders = pipeline::load_text_embedders(models_dir, spec)?;
    let refs: Vec<&_> = embedders.iter().collect();
    let analysis = pipeline::analyse_with(transcripts, &refs, &settings.cfg)?;
    let provenance = vec![
        (
            "qualscribe".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        ("text model".to_string(), analysis.text_model.clone()),
        (
            "recordings".to_string(),
            transcripts
                .iter()
                .map(|t| t.uri.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ];
    let written =
        pipeline::write_analysis(out_dir, transcripts, &analysis, &provenance, &settings.qdpx)?;
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
