//! Review-page suggestion benchmark: how long "suggest more passages" takes to update after an
//! action, on a project of N passages. Takes a real `qualscribe themes` (or `run`) output folder,
//! replicates its passages to N (texts repeated, times shifted, e5 vectors perturbed with small
//! Gaussian noise and re-normalised, codings copied), imports that into a fresh project, then
//! accepts suggestions one by one and times each update as the page makes it: the `move` action
//! (one SQLite transaction, `synchronous=FULL`), the overview it answers with, and the code's
//! new suggestions (HTTP on 127.0.0.1 and the page's rendering are not included). Prints one JSON line.
//! `scripts/bench-suggest.sh` builds the folder and runs it. Target: ≤ 200 ms for 2,000 passages.
//!
//! usage: cargo run --release --example bench_suggest -- OUTPUT_DIR [N=2000] [ROUNDS=30]

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use qualscribe::export::analysis_json::{self, PassageVectors, ThemeMembers};
use qualscribe::review::{Action, Project};

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

/// Writes into `out` the transcripts of `src` and an analysis of `n` passages made from its.
fn replicate(src: &Path, out: &Path, n: usize) -> Result<usize> {
    let a = analysis_json::read_analysis_json(&src.join(analysis_json::ANALYSIS_FILE))?;
    let vectors = a.vectors.as_ref().and_then(|v| v.unpack()).context(
        "the analysis has no passage vectors: re-run `qualscribe themes` with this build",
    )?;
    if vectors.is_empty() {
        bail!("the analysis has no content passages");
    }
    for e in std::fs::read_dir(src)?.flatten() {
        let p = e.path();
        if p.to_string_lossy().ends_with(".transcript.json") {
            std::fs::copy(&p, out.join(p.file_name().context("file name")?))?;
        }
    }
    let dim = vectors[0].1.len();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut b = a.clone();
    b.passages.passages.clear();
    b.themes = a
        .themes
        .iter()
        .map(|t| ThemeMembers {
            key: t.key.clone(),
            members: Vec::new(),
        })
        .collect();
    let theme_of = |id: usize| a.themes.iter().position(|t| t.members.contains(&id));
    let mut rows: Vec<(usize, Vec<f32>)> = Vec::new();
    let copies = n.div_ceil(vectors.len());
    'outer: for copy in 0..copies {
        for (id, v) in &vectors {
            if rows.len() == n {
                break 'outer;
            }
            let mut p = a.passages.passages[*id].clone();
            let new_id = b.passages.passages.len();
            let shift = copy as u64 * 10_000_000;
            p.id = new_id;
            p.start_ms += shift;
            p.end_ms += shift;
            b.passages.passages.push(p);
            let mut w: Vec<f32> = v.iter().map(|x| x + 0.02 * rng.normal()).collect();
            let norm = w.iter().map(|x| x * x).sum::<f32>().sqrt();
            w.iter_mut().for_each(|x| *x /= norm);
            rows.push((new_id, w));
            if let Some(t) = theme_of(*id) {
                b.themes[t].members.push(new_id);
            }
        }
    }
    b.vectors = Some(PassageVectors::pack(
        dim,
        rows.iter().map(|(id, v)| (*id, v.as_slice())),
    ));
    std::fs::write(
        out.join(analysis_json::ANALYSIS_FILE),
        serde_json::to_string(&b)?,
    )?;
    Ok(rows.len())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(src) = args.first() else {
        bail!("usage: bench_suggest OUTPUT_DIR [N=2000] [ROUNDS=30]");
    };
    let n: usize = args.get(1).map_or(Ok(2000), |s| s.parse())?;
    let rounds: usize = args.get(2).map_or(Ok(30), |s| s.parse())?;
    let folder = tempfile::tempdir()?;
    let passages = replicate(Path::new(src), folder.path(), n)?;
    let mut project = Project::open(&folder.path().join("bench.sqlite"))?;
    project.import_output(folder.path(), "bench")?;
    let t = Instant::now();
    let index = project
        .suggestion_index()?
        .context("no vectors were imported")?;
    let index_ms = t.elapsed().as_secs_f64() * 1e3;
    let overview = project.overview()?;
    let codes: Vec<i64> = overview
        .themes
        .iter()
        .flat_map(|t| &t.codes)
        .map(|c| c.id)
        .collect();
    if codes.is_empty() {
        bail!("the analysis proposed no codes: use fewer themes");
    }
    let mut update_ms = Vec::new();
    let mut suggest_ms = Vec::new();
    let mut accepted = 0;
    for round in 0..rounds {
        let code = codes[round % codes.len()];
        let s = project.suggest(&index, code, 20)?;
        let Some(first) = s.suggestions.first() else {
            continue;
        };
        let action = Action::Move {
            passage: first.passage,
            from: first.code_now,
            to: code,
        };
        let t = Instant::now();
        project.apply(&action, "bench")?;
        // What the page asks for next: the overview the action returns, then the suggestions.
        let _ = project.overview()?;
        let t_suggest = Instant::now();
        let after = project.suggest(&index, code, 20)?;
        suggest_ms.push(t_suggest.elapsed().as_secs_f64() * 1e3);
        update_ms.push(t.elapsed().as_secs_f64() * 1e3);
        accepted += 1;
        assert!(after.suggestions.iter().all(|g| g.passage != first.passage));
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let median = v.get(v.len() / 2).copied().unwrap_or(f64::NAN);
        let max = v.last().copied().unwrap_or(f64::NAN);
        (median, max)
    };
    let (update_median, update_max) = stats(&mut update_ms);
    let (suggest_median, suggest_max) = stats(&mut suggest_ms);
    println!(
        "{}",
        serde_json::json!({
            "passages": passages,
            "indexed": index.len(),
            "codes": codes.len(),
            "accepted": accepted,
            "index_build_ms": index_ms,
            "update_ms_median": update_median,
            "update_ms_max": update_max,
            "suggest_ms_median": suggest_median,
            "suggest_ms_max": suggest_max,
        })
    );
    Ok(())
}
