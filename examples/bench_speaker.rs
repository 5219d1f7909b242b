//! Speaker-embedding throughput (CAM++ over sliding windows) on one recording, not a test.
//! usage: cargo run --release --example bench_speaker -- FILE.wav [step_ms=400] [seconds=all] [reps=1]
//! The recording is cut into 10 s "speech regions" (the VAD's typical size) so the windowing is
//! the pipeline's; prints windows, seconds per pass, milliseconds per window, and peak memory.
//! `BENCH_SPEAKER_BACKEND=candle` runs the candle path even where onnxruntime is installed.

use qualscribe::diarize::SpeakerEmbedder;
use qualscribe::models::{default_models_dir, resolve_speaker};
use qualscribe::transcript::SpeechRegion;
use std::time::Instant;

/// A memory line of /proc/self/status in MB (`VmHWM:` peak); 0 if unavailable.
fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let file = args
        .get(1)
        .ok_or_else(|| anyhow::anyhow!("usage: FILE.wav [step_ms] [seconds] [reps]"))?;
    let step_ms: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(400);
    let seconds: Option<f64> = args.get(3).and_then(|s| s.parse().ok());
    let reps: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(1);
    let audio = qualscribe::audio::decode_file(std::path::Path::new(file))?;
    let mut samples = audio.samples;
    if let Some(s) = seconds {
        samples.truncate((s * 16_000.0) as usize);
    }
    let total_ms = samples.len() as u64 / 16;
    let regions: Vec<SpeechRegion> = (0..total_ms)
        .step_by(10_000)
        .map(|start_ms| SpeechRegion {
            start_ms,
            end_ms: (start_ms + 9_500).min(total_ms),
        })
        .collect();
    // BENCH_SPEAKER_BACKEND=candle measures the candle path where onnxruntime is installed.
    let loading = Instant::now();
    let model = resolve_speaker(&default_models_dir())?;
    let embedder = match std::env::var("BENCH_SPEAKER_BACKEND").as_deref() {
        Ok("candle") => SpeakerEmbedder::load_candle(&model)?,
        _ => SpeakerEmbedder::load(&model)?,
    };
    println!(
        "backend {}, loaded in {:.2} s",
        embedder.backend(),
        loading.elapsed().as_secs_f64()
    );
    let mut first: Option<Vec<Vec<f32>>> = None;
    for _ in 0..reps {
        let t0 = Instant::now();
        let windows = embedder.embed_windows(&samples, &regions, step_ms)?;
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "{} s of audio, step {step_ms} ms: {} windows in {secs:.2} s ({:.1} ms/window, {:.3} s per audio s), peak {:.0} MB",
            total_ms / 1000,
            windows.len(),
            1000.0 * secs / windows.len().max(1) as f64,
            secs / (total_ms as f64 / 1000.0),
            status_mb("VmHWM:")
        );
        let embs: Vec<Vec<f32>> = windows.into_iter().map(|w| w.embedding).collect();
        if let Some(f) = &first {
            let worst = f
                .iter()
                .zip(&embs)
                .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>())
                .fold(1f32, f32::min);
            println!("lowest cosine to the first pass: {worst:.7}");
        }
        first.get_or_insert(embs);
    }
    if let Ok(path) = std::env::var("BENCH_SPEAKER_DUMP") {
        let flat: Vec<String> = first
            .unwrap_or_default()
            .iter()
            .map(|e| {
                e.iter()
                    .map(|x| format!("{x:.6}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        std::fs::write(path, flat.join("\n"))?;
    }
    Ok(())
}
