//! Embedding throughput on the corpus turns (focus group + 7 interviews).
//! usage: RAYON_NUM_THREADS=2 cargo run --release --example bench_embed -- [e5|minilm|<folder>] [reps]
//! Prints passages/s and tokens/s for batch sizes 8, 16 and 32, and memory (VmHWM, VmRSS).

use qualscribe::embed::{EmbedConfig, TextEmbedder};
use qualscribe::models::{default_models_dir, resolve_text_model};
use std::path::PathBuf;
use std::time::Instant;

fn corpus_turns() -> anyhow::Result<Vec<String>> {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let mut files = vec![corpus.join("grupo_focal_reparto/grupo_focal_01.stm")];
    files.extend((1..=7).map(|i| corpus.join(format!("entrevistas_apc/entrevista_exp{i}.stm"))));
    let mut turns = Vec::new();
    for file in files {
        for line in std::fs::read_to_string(&file)?.lines() {
            if let Some(text) = line.splitn(6, ' ').nth(5) {
                turns.push(text.to_string());
            }
        }
    }
    Ok(turns)
}

/// A memory line of /proc/self/status in MB (`VmHWM:` peak, `VmRSS:` now); 0 if unavailable.
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
    let spec = args.get(1).map_or("e5", String::as_str);
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let model = resolve_text_model(&default_models_dir(), spec)?;
    let turns = corpus_turns()?;
    let texts: Vec<&str> = turns.iter().map(String::as_str).collect();
    let started = Instant::now();
    let probe = TextEmbedder::load(&model)?;
    println!(
        "{spec}: load {:.2} s, peak RSS during load {:.0} MB, RSS after load {:.0} MB, threads {}",
        started.elapsed().as_secs_f64(),
        status_mb("VmHWM:"),
        status_mb("VmRSS:"),
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into())
    );
    let tokens: usize = texts
        .iter()
        .map(|t| probe.passage_tokens(t))
        .sum::<Result<usize, _>>()?;
    println!(
        "{} passages, {:.1} tokens each on average (prefix and special tokens included)",
        texts.len(),
        tokens as f64 / texts.len() as f64
    );
    drop(probe);
    for batch_size in [8, 16, 32] {
        let embedder = TextEmbedder::load_with(&model, &EmbedConfig { batch_size })?;
        embedder.embed_passages(&texts[..batch_size.min(texts.len())])?; // warm-up
        let t = Instant::now();
        for _ in 0..reps {
            embedder.embed_passages(&texts)?;
        }
        let secs = t.elapsed().as_secs_f64() / reps as f64;
        println!(
            "batch {batch_size:>2}: {:.1} passages/s, {:.0} tokens/s ({:.2} s per pass, mean of {reps} passes)",
            texts.len() as f64 / secs,
            tokens as f64 / secs,
            secs
        );
    }
    println!(
        "peak RSS {:.0} MB, RSS at the end {:.0} MB",
        status_mb("VmHWM:"),
        status_mb("VmRSS:")
    );
    Ok(())
}
