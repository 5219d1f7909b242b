//! Theme clustering benchmark on synthetic e5-like embeddings (384-d, unit length, all cosines
//! in a narrow band around a shared direction), with planted clusters. Prints one JSON line:
//! passages, planted and chosen theme count, seconds, ARI against the planted clusters and
//! the unassigned share. `scripts/bench-themes.sh` runs it under `/usr/bin/time` for memory.
//!
//! usage: cargo run --release --example bench_themes -- N [PLANTED=12] [DIM=384]

use std::time::Instant;

use anyhow::{Context, Result};
use qualscribe::eval::themes::adjusted_rand_index;
use qualscribe::passages::{Passage, Passages, Role, TextSpan};
use qualscribe::themes::{ContentEmbeddings, Matrix, ThemeConfig, discover};

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().context("N passages")?.parse().context("N")?;
    let planted: usize = args
        .next()
        .map_or(Ok(12), |s| s.parse())
        .context("PLANTED")?;
    let dim: usize = args.next().map_or(Ok(384), |s| s.parse()).context("DIM")?;

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let shared = rng.unit(dim);
    let centres: Vec<Vec<f32>> = (0..planted).map(|_| rng.unit(dim)).collect();
    let mut truth = Vec::with_capacity(n);
    let mut vectors = Matrix::with_dim(dim);
    for i in 0..n {
        let c = i % planted;
        let noise = rng.unit(dim);
        // Shared direction dominates (as in e5: cosines ~0.8-0.95), then topic, then noise.
        let mut v: Vec<f32> = (0..dim)
            .map(|d| 2.2 * shared[d] + 0.8 * centres[c][d] + 0.55 * noise[d])
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        vectors.push(&v);
        truth.push(c);
    }
    let passages = Passages {
        passages: (0..n)
            .map(|id| Passage {
                id,
                file: 0,
                uri: "synthetic".into(),
                speaker: None,
                turn: id,
                role: Role::Content,
                start_ms: 0,
                end_ms: 0,
                span: TextSpan {
                    byte_start: 0,
                    byte_end: 0,
                    char_start: 0,
                    char_end: 0,
                },
                text: String::new(),
                words: 0,
            })
            .collect(),
        files: Vec::new(),
    };
    let content = ContentEmbeddings {
        passage_ids: (0..n).collect(),
        vectors,
    };
    let started = Instant::now();
    let themes = discover(
        &passages,
        &content,
        &Matrix::with_dim(dim),
        &ThemeConfig::default(),
    )?;
    let secs = started.elapsed().as_secs_f64();
    let assignment = themes.assignment();
    let predicted: Vec<usize> = assignment
        .iter()
        .enumerate()
        .map(|(i, a)| a.unwrap_or(usize::MAX / 2 + i))
        .collect();
    eprintln!("silhouettes: {:?}", themes.k_choice.silhouettes);
    println!(
        "{{\"passages\": {n}, \"dim\": {dim}, \"planted\": {planted}, \"themes\": {}, \"seconds\": {secs:.3}, \"ari\": {:.4}, \"unassigned_share\": {:.4}}}",
        themes.themes.len(),
        adjusted_rand_index(&truth, &predicted),
        themes.unassigned_share()
    );
    Ok(())
}
