//! Helpers every command shares: error lines, the output folder check, first-use model installs.

use std::path::Path;

use anyhow::{Context, Result, bail};

use qualscribe::diarize::Method;
use qualscribe::models::{self, FetchOptions, ModelId};

/// The error and its causes on one line, without repeating a cause the message already holds.
pub fn error_line(e: &anyhow::Error) -> String {
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

/// Creates the output folder and proves it is writable before any work starts, so an hour
/// of transcription is never lost to a permissions problem at the end.
pub fn prepare_output_dir(dir: &Path) -> Result<()> {
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

/// `run` and `batch` install what they need on first use; `transcribe` expects models to be
/// there. A missing user-supplied model file is not installable and stays an error for later.
pub fn install_missing_models(
    dir: &Path,
    model_spec: &str,
    speakers: Option<Method>,
    quiet: bool,
) -> Result<()> {
    if models::resolve_vad(dir).is_err() {
        fetch_one(dir, ModelId::Vad, &FetchOptions::default(), quiet)?;
    }
    if speakers.is_some() && models::resolve_speaker(dir).is_err() {
        fetch_one(dir, ModelId::Speaker, &FetchOptions::default(), quiet)?;
    }
    // Without the onnxruntime library the speaker model still runs (in candle, ~3x slower), so a
    // failed install is a warning, not an error.
    if speakers.is_some()
        && models::ONNXRUNTIME_SUPPORTED
        && models::installed_onnxruntime(dir).is_none()
        && let Err(e) = fetch_one(dir, ModelId::Onnxruntime, &FetchOptions::default(), quiet)
    {
        eprintln!("warning: {e:#}; speakers are found with the slower candle path");
    }
    if speakers == Some(Method::Segmentation) && models::resolve_segmentation(dir).is_err() {
        fetch_one(dir, ModelId::Segmentation, &FetchOptions::default(), quiet)?;
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

/// The text models named by `--text-model` (`e5`, or several joined by `+`) that are ours
/// (fetchable) and not installed in `dir`. A user's own model folder is never "missing" here:
/// its loader reports what is wrong with it.
pub fn missing_text_models(dir: &Path, spec: &str) -> Vec<ModelId> {
    spec.split('+')
        .map(str::trim)
        .filter(|one| models::resolve_text_model(dir, one).is_err())
        .filter_map(|one| one.parse::<ModelId>().ok())
        .collect()
}

/// Installs the text models named by `--text-model` when they are ours and missing.
pub fn install_missing_text_model(dir: &Path, spec: &str, quiet: bool) -> Result<()> {
    for id in missing_text_models(dir, spec) {
        fetch_one(dir, id, &FetchOptions::default(), quiet)?;
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
