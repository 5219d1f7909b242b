//! Prints Silero VAD probabilities, speech regions and speed for 16 kHz mono WAV files, as JSON
//! lines (one per file). Used by `scripts/check-vad-reference.py` to compare with silero-vad.
//!
//! usage: cargo run --release --example vad_dump -- [--model PATH] [--max-speech-ms N] FILE.wav...

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use qualscribe::models::{VAD_FILE, default_models_dir};
use qualscribe::vad::{Vad, VadConfig};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    let mut model = default_models_dir().join(VAD_FILE);
    let mut cfg = VadConfig::default();
    while let Some(flag) = args.next_if(|a| a.starts_with("--")) {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--model" => model = PathBuf::from(value),
            "--max-speech-ms" => cfg.max_speech_ms = value.parse().context("--max-speech-ms")?,
            _ => bail!("unknown option {flag}"),
        }
    }
    let started = Instant::now();
    let vad = Vad::load(&model)?;
    eprintln!("model loaded in {:.3} s", started.elapsed().as_secs_f64());
    for path in args {
        let samples = read_wav(&path)?;
        let started = Instant::now();
        let probs = vad.probabilities(&samples)?;
        let seconds = started.elapsed().as_secs_f64();
        let regions = qualscribe::vad::regions_from_probabilities(&probs, samples.len(), &cfg);
        // What the pipeline uses: the reference regions plus those only a fresh model finds.
        let pipeline_regions = vad.detect(&samples, &cfg)?;
        let line = serde_json::json!({
            "path": path,
            "samples": samples.len(),
            "vad_seconds": seconds,
            "probs": probs,
            "regions": regions.iter().map(|r| [r.start_ms, r.end_ms]).collect::<Vec<_>>(),
            "pipeline_regions": pipeline_regions.iter().map(|r| [r.start_ms, r.end_ms]).collect::<Vec<_>>(),
        });
        println!("{line}");
    }
    Ok(())
}

fn read_wav(path: &str) -> Result<Vec<f32>> {
    let mut reader = hound::WavReader::open(path).with_context(|| format!("reading {path}"))?;
    let spec = reader.spec();
    if (spec.sample_rate, spec.channels, spec.bits_per_sample) != (16_000, 1, 16) {
        bail!("{path}: need 16 kHz mono 16-bit PCM, got {spec:?}");
    }
    reader
        .samples::<i16>()
        .map(|s| Ok(f32::from(s?) / 32768.0))
        .collect::<Result<_>>()
        .with_context(|| format!("decoding {path}"))
}
