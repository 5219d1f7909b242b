//! `qualscribe models fetch|list`: install pinned model wheels and convert them; show what is
//! installed.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use qualscribe::models::{self, FetchOptions, ModelId, Quantization};

use super::args::ModelsDirArg;

#[derive(Subcommand)]
pub enum ModelsAction {
    /// Download, verify and convert models (idempotent)
    Fetch {
        /// Model to install: base (multilingual, default), tiny.en (English only), vad, e5 (multilingual text), minilm (English text), use (Universal Sentence Encoder multilingual v3 text), speaker (with onnxruntime on Linux x86-64), segmentation, onnxruntime (the library that runs the speaker and segmentation models faster)
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

pub fn run(action: &ModelsAction) -> Result<ExitCode> {
    match action {
        ModelsAction::Fetch {
            models,
            quantize,
            force,
            dir,
        } => fetch(&dir.resolve(), models, quantize, *force)?,
        ModelsAction::List { dir } => list(&dir.resolve())?,
    }
    Ok(ExitCode::SUCCESS)
}

fn fetch(dir: &Path, names: &[String], quantize: &str, force: bool) -> Result<()> {
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
    // The default speaker recipe needs the segmentation model (from the same wheel).
    if ids.contains(&ModelId::Speaker) && !ids.contains(&ModelId::Segmentation) {
        ids.push(ModelId::Segmentation);
    }
    // The speaker model runs in onnxruntime where its library can be installed.
    if ids.contains(&ModelId::Speaker)
        && models::ONNXRUNTIME_SUPPORTED
        && !ids.contains(&ModelId::Onnxruntime)
    {
        ids.push(ModelId::Onnxruntime);
    }
    for id in ids {
        let installed = models::fetch(dir, id, &opts, &mut |msg| eprintln!("{msg}"))?;
        for m in installed {
            println!("{}\t{}\t{}", m.id, m.path.display(), m.sha256);
        }
    }
    Ok(())
}

fn list(dir: &Path) -> Result<()> {
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
