//! Clustering-threshold sweep for diarization: each recording is decoded, voice-detected and
//! embedded once, then clustered at every threshold; prints DER (pyannote definitions, overlap
//! scored, collar 0.25 and 0) and speaker-count hits per threshold. With `--rttm-dir DIR`, the
//! RTTM and diarization JSON (speaker embeddings included) of the first threshold are written
//! there (one file each per recording), to score with `qualscribe eval der`; the speakers'
//! embeddings there are what `diarize` names them by, for `scripts/measure-voices.py`: the
//! windows recipe's own (`--clean-voices`: their clean voices), the segmentation recipe's clean
//! voices (`--recipe-embeddings`: its own timeline-piece means, as naming compared before).
//!
//! With `--segmentation`, the segmentation recipe runs instead (pyannote segmentation-3.0
//! chunks every `--chunk-step-ms`, single-voice timeline pieces of `--piece-ms` embedded once
//! and shared by the chunks' local speakers; `--per-chunk`: the earlier recipe that embeds each
//! chunk's local speakers whole and in pieces), and the sweep is over `--thresholds` ×
//! `--min-chunks`. Stage costs are printed in CPU seconds. As in `diarize`, a recording whose
//! segmentation covers too little of the VAD's speech falls back to the windows recipe (each
//! recording's covered share is printed); `--no-fallback` scores segmentation alone.
//!
//! usage: cargo run --release --example diarize_sweep -- --ref REF.rttm [--uem UEM]
//!        [--thresholds 0.2,0.3] [--min-speaker-ms 1000,4000] [--smoothing 1,3] [--step-ms 400]
//!        [--rttm-dir DIR [--clean-voices] [--recipe-embeddings]] [--refine]
//!        [--segmentation [--chunk-step-ms 2500] [--min-chunks 1,2] [--min-alone-ms 1000,2000]
//!        [--no-fallback] [--per-chunk] [--piece-ms 2000] [--merge-above 0.85,none]
//!        [--voice-merge-above 0.58|none] [--voices DIR]] AUDIO...
//!
//! `--voice-merge-above` (one value, default the library's) merges speakers by their clean
//! voices after clustering, as `diarize` does (`voices::merge_alike_voices`). `--voices DIR`
//! clusters with those enrolled profiles, as `run --voices` does (an enrolled voice's speaker
//! is kept however little it says); naming is left to `scripts/measure-voices.py`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use qualscribe::diarize::segment::Segmenter;
use qualscribe::diarize::{
    DiarizeConfig, LocalEmbedding, LocalSegmentation, Method, Piece, SpeakerEmbedder,
    SpeakerWindow, diarize_segmented, diarize_windows, needs_windows_fallback, pyannote,
    to_rttm_turns, vad_speech_share, windows_fallback,
};
use qualscribe::eval::der::{DerOptions, diarization_error, total};
use qualscribe::eval::rttm::{Turn, read_rttm, read_uem, write_rttm};
use qualscribe::models;
use qualscribe::transcript::SpeechRegion;
use qualscribe::vad::{Vad, VadConfig};

/// A window as cached: start ms, end ms, region, embedding.
type CachedWindow = (u64, u64, usize, Vec<f32>);
/// A segmented recording as cached: samples, chunk starts, active local speakers per chunk and
/// frame, and (chunk, local speaker, alone ms, embedding) per embedded local speaker.
type CachedSegmentation = (usize, Vec<usize>, Vec<Vec<u8>>, Vec<CachedLocal>);
/// chunk, local speaker, alone ms, embedding, pieces (first frame, embedding).
type CachedLocal = (usize, usize, u64, Vec<f32>, Vec<(usize, Vec<f32>)>);

struct Args {
    reference: PathBuf,
    uem: Option<PathBuf>,
    thresholds: Vec<f32>,
    min_speaker_ms: Vec<u64>,
    smoothing: Vec<usize>,
    refine: bool,
    margins: Vec<Option<f32>>,
    step_ms: u64,
    vad: VadConfig,
    rttm_dir: Option<PathBuf>,
    recipe_embeddings: bool,
    clean_voices: bool,
    voices_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    dump: bool,
    purity: bool,
    calibration: bool,
    audio: Vec<PathBuf>,
    segmentation: bool,
    chunk_step_ms: u64,
    min_chunks: Vec<usize>,
    min_alone_ms: Vec<u64>,
    piece_margins: Vec<Option<f32>>,
    split_margins: Vec<Option<f32>>,
    split_min_pieces: Vec<usize>,
    seg_min_speaker_ms: Vec<u64>,
    merge_above: Vec<Option<f32>>,
    voice_merge_above: Option<f32>,
    no_fallback: bool,
    per_chunk: bool,
    piece_ms: u64,
}

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let mut args = Args {
        reference: PathBuf::new(),
        uem: None,
        thresholds: vec![DiarizeConfig::default().threshold],
        min_speaker_ms: vec![DiarizeConfig::default().min_speaker_ms],
        smoothing: vec![DiarizeConfig::default().smoothing_windows],
        refine: false,
        margins: vec![DiarizeConfig::default().threshold_margin],
        step_ms: DiarizeConfig::default().step_ms,
        vad: VadConfig::default(),
        rttm_dir: None,
        recipe_embeddings: false,
        clean_voices: false,
        voices_dir: None,
        cache_dir: None,
        dump: false,
        purity: false,
        calibration: false,
        audio: Vec::new(),
        segmentation: false,
        chunk_step_ms: DiarizeConfig::default().chunk_step_ms,
        min_chunks: vec![DiarizeConfig::default().min_cluster_chunks],
        min_alone_ms: vec![DiarizeConfig::default().min_alone_ms],
        piece_margins: vec![DiarizeConfig::default().piece_margin],
        split_margins: vec![DiarizeConfig::default().split_margin],
        split_min_pieces: vec![DiarizeConfig::default().split_min_pieces],
        seg_min_speaker_ms: vec![DiarizeConfig::default().segment_min_speaker_ms],
        merge_above: vec![DiarizeConfig::default().segment_merge_above],
        voice_merge_above: DiarizeConfig::default().voice_merge_above,
        no_fallback: false,
        per_chunk: false,
        piece_ms: pyannote::PIECE_MS,
    };
    let (mut thresholds_given, mut margins_given) = (false, false);
    while let Some(a) = it.next() {
        let mut value = || it.next().context("missing value");
        match a.as_str() {
            "--ref" => args.reference = value()?.into(),
            "--uem" => args.uem = Some(value()?.into()),
            "--step-ms" => args.step_ms = value()?.parse()?,
            "--segmentation" => args.segmentation = true,
            "--dump" => args.dump = true,
            "--purity" => args.purity = true,
            "--calibration" => args.calibration = true,
            "--no-fallback" => args.no_fallback = true,
            "--per-chunk" => args.per_chunk = true,
            "--piece-ms" => args.piece_ms = value()?.parse()?,
            "--chunk-step-ms" => args.chunk_step_ms = value()?.parse()?,
            "--min-alone-ms" => args.min_alone_ms = list(&value()?)?,
            "--min-chunks" => args.min_chunks = list(&value()?)?,
            "--vad-threshold" => args.vad.threshold = value()?.parse()?,
            "--vad-pad-ms" => args.vad.speech_pad_ms = value()?.parse()?,
            "--rttm-dir" => args.rttm_dir = Some(value()?.into()),
            "--cache-dir" => args.cache_dir = Some(value()?.into()),
            "--piece-margins" => args.piece_margins = optional_list(&value()?)?,
            "--split-margins" => args.split_margins = optional_list(&value()?)?,
            "--split-min-pieces" => args.split_min_pieces = list(&value()?)?,
            "--seg-min-speaker-ms" => args.seg_min_speaker_ms = list(&value()?)?,
            "--merge-above" => args.merge_above = optional_list(&value()?)?,
            "--voice-merge-above" => {
                args.voice_merge_above = optional_list(&value()?)?.first().copied().flatten()
            }
            "--margins" => {
                args.margins = optional_list(&value()?)?;
                margins_given = true;
            }
            "--min-speaker-ms" => args.min_speaker_ms = list(&value()?)?,
            "--smoothing" => args.smoothing = list(&value()?)?,
            "--refine" => args.refine = true,
            "--recipe-embeddings" => args.recipe_embeddings = true,
            "--clean-voices" => args.clean_voices = true,
            "--voices" => args.voices_dir = Some(value()?.into()),
            "--thresholds" => {
                args.thresholds = list(&value()?)?;
                thresholds_given = true;
            }
            _ => args.audio.push(a.into()),
        }
    }
    if args.segmentation {
        // The segmentation recipe's own defaults, unless the sweep names its own values.
        let d = DiarizeConfig::default();
        if !thresholds_given {
            args.thresholds = vec![d.segment_threshold];
        }
        if !margins_given {
            args.margins = vec![d.segment_margin];
        }
    }
    if args.audio.is_empty() || args.reference.as_os_str().is_empty() {
        bail!("usage: diarize_sweep --ref REF.rttm [--uem UEM] [--thresholds a,b] AUDIO...");
    }
    Ok(args)
}

/// CPU seconds (user + system) this process has used so far (Linux `/proc/self/stat`; 0 where
/// it cannot be read): stage costs on a shared machine, where wall time counts other work.
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with the last ')'): utime and stime are the
    // 12th and 13th, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

/// "0.3,0.4" → [0.3, 0.4].
fn list<T: std::str::FromStr>(csv: &str) -> Result<Vec<T>, T::Err> {
    csv.split(',').map(str::parse).collect()
}

/// As [`list`], where "none" turns the setting off.
fn optional_list(csv: &str) -> Result<Vec<Option<f32>>, std::num::ParseFloatError> {
    csv.split(',')
        .map(|m| {
            if m == "none" {
                Ok(None)
            } else {
                m.parse().map(Some)
            }
        })
        .collect()
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn speakers_in(reference: &[Turn], uri: &str) -> usize {
    let mut names: Vec<&str> = reference
        .iter()
        .filter(|t| t.uri == uri)
        .map(|t| t.speaker.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    names.len()
}

/// The reference speaker alone in the window (for ≥ 90 % of it), if any.
fn window_speaker<'a>(
    reference: &'a [Turn],
    uri: &str,
    start_ms: u64,
    end_ms: u64,
) -> Option<&'a str> {
    let (a, b) = (start_ms as f64 / 1000.0, end_ms as f64 / 1000.0);
    let mut cover: BTreeMap<&str, f64> = BTreeMap::new();
    for t in reference.iter().filter(|t| t.uri == uri) {
        let o = t.end_s.min(b) - t.start_s.max(a);
        if o > 0.0 {
            *cover.entry(t.speaker.as_str()).or_default() += o;
        }
    }
    let len = b - a;
    let others: f64 = cover.values().sum();
    cover
        .iter()
        .find(|(_, c)| **c >= 0.9 * len && others - **c < 0.1 * len)
        .map(|(s, _)| *s)
}

/// Speech found, windows, and mean window cosine within / between reference speakers.
fn print_separation(
    uri: &str,
    speech: &[SpeechRegion],
    windows: &[SpeakerWindow],
    reference: &[Turn],
) {
    let speech_s: u64 = speech.iter().map(|r| r.end_ms - r.start_ms).sum();
    let labels: Vec<Option<&str>> = windows
        .iter()
        .map(|w| window_speaker(reference, uri, w.start_ms, w.end_ms))
        .collect();
    let (mut same, mut diff) = (Vec::new(), Vec::new());
    for i in 0..windows.len() {
        for j in i + 1..windows.len() {
            if let (Some(a), Some(b)) = (labels[i], labels[j]) {
                let c: f32 = windows[i]
                    .embedding
                    .iter()
                    .zip(&windows[j].embedding)
                    .map(|(x, y)| x * y)
                    .sum();
                if a == b { same.push(c) } else { diff.push(c) }
            }
        }
    }
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len().max(1) as f32;
    eprintln!(
        "{uri}: speech {:.1} s, {} windows ({} single-speaker); window cosine same {:.2} ({}), different {:.2} ({})",
        speech_s as f64 / 1000.0,
        windows.len(),
        labels.iter().flatten().count(),
        mean(&same),
        same.len(),
        mean(&diff),
        diff.len()
    );
}

/// The reference speaker most heard in the frames a local speaker is embedded from, and the
/// share of those frames' reference speech that is theirs.
fn local_truth<'a>(
    reference: &'a [Turn],
    uri: &str,
    seg: &LocalSegmentation,
    e: &LocalEmbedding,
) -> Option<(&'a str, f64)> {
    use qualscribe::diarize::segment::{FRAME_SPAN_SAMPLES, FRAME_STEP_SAMPLES};
    let start = seg.chunk_starts[e.chunk];
    let frames = &seg.active[e.chunk];
    let bit = 1u8 << e.local;
    let alone = frames.contains(&bit);
    let mut cover: BTreeMap<&str, f64> = BTreeMap::new();
    let turns: Vec<&Turn> = reference.iter().filter(|t| t.uri == uri).collect();
    for (f, &a) in frames.iter().enumerate() {
        if !(if alone { a == bit } else { a & bit != 0 }) {
            continue;
        }
        let c = (start + f * FRAME_STEP_SAMPLES + FRAME_SPAN_SAMPLES / 2) as f64 / 16_000.0;
        for t in &turns {
            if t.start_s <= c && c < t.end_s {
                *cover.entry(t.speaker.as_str()).or_default() += 1.0;
            }
        }
    }
    let sum: f64 = cover.values().sum();
    cover
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(s, n)| (s, n / sum))
}

/// How pure the embedded local speakers are, and how alike pure ones of the same / different
/// reference speakers are (`--purity`).
fn print_purity(uri: &str, seg: &LocalSegmentation, local: &[LocalEmbedding], reference: &[Turn]) {
    let truth: Vec<Option<(&str, f64)>> = local
        .iter()
        .map(|e| local_truth(reference, uri, seg, e))
        .collect();
    let impure = truth
        .iter()
        .filter(|t| t.is_none_or(|(_, p)| p < 0.8))
        .count();
    let (mut same, mut diff) = (Vec::new(), Vec::new());
    for i in 0..local.len() {
        for j in i + 1..local.len() {
            if let (Some((a, pa)), Some((b, pb))) = (truth[i], truth[j])
                && pa >= 0.9
                && pb >= 0.9
            {
                let c: f32 = local[i]
                    .embedding
                    .iter()
                    .zip(&local[j].embedding)
                    .map(|(x, y)| x * y)
                    .sum();
                if a == b { same.push(c) } else { diff.push(c) }
            }
        }
    }
    let q = |v: &mut Vec<f32>, f: f64| {
        v.sort_by(f32::total_cmp);
        v.get(((v.len() as f64 - 1.0) * f) as usize)
            .copied()
            .unwrap_or(f32::NAN)
    };
    let mut speakers: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for (t, e) in truth.iter().zip(local) {
        if let Some((s, p)) = t
            && *p >= 0.8
        {
            let entry = speakers.entry(s).or_default();
            entry.0 += 1;
            entry.1 += e.alone_ms;
        }
    }
    if std::env::var_os("SWEEP_IMPURE").is_some() {
        for (t, e) in truth.iter().zip(local) {
            if t.is_none_or(|(_, p)| p < 0.8) {
                let frames = &seg.active[e.chunk];
                let any = frames.iter().filter(|&&a| a & (1 << e.local) != 0).count();
                eprintln!(
                    "  impure chunk {} local {}: alone {} ms, active {} frames, {:?}",
                    e.chunk, e.local, e.alone_ms, any, t
                );
            }
        }
    }
    let per: Vec<String> = speakers
        .iter()
        .map(|(s, (n, ms))| format!("{s} {n} ({:.0} s alone)", *ms as f64 / 1000.0))
        .collect();
    eprintln!(
        "{uri}: {} local speakers, {impure} impure (< 80 %); pure ones: {}; cosine same p10/p50 {:.2}/{:.2} ({}), different p50/p90 {:.2}/{:.2} ({})",
        local.len(),
        per.join(", "),
        q(&mut same, 0.1),
        q(&mut same, 0.5),
        same.len(),
        q(&mut diff, 0.5),
        q(&mut diff, 0.9),
        diff.len()
    );
}

/// The reference speaker heard most in `[t, t + 1.5 s]` and their share of it.
fn truth_at<'a>(reference: &'a [Turn], uri: &str, t: f64) -> Option<(&'a str, f64)> {
    let mut cover: BTreeMap<&str, f64> = BTreeMap::new();
    for r in reference.iter().filter(|r| r.uri == uri) {
        let o = r.end_s.min(t + 1.5) - r.start_s.max(t);
        if o > 0.0 {
            *cover.entry(r.speaker.as_str()).or_default() += o;
        }
    }
    let sum: f64 = cover.values().sum();
    cover
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(s, n)| (s, n / sum))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn unit_mean<'a>(vs: impl Iterator<Item = &'a Vec<f32>>) -> Vec<f32> {
    let mut sum: Vec<f32> = Vec::new();
    for v in vs {
        if sum.is_empty() {
            sum = vec![0.0; v.len()];
        }
        sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
    }
    let n = sum.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
    sum.iter_mut().for_each(|x| *x /= n);
    sum
}

/// Two-means of unit vectors (started from the least alike pair), as labels 0/1.
fn two_means(points: &[&Vec<f32>]) -> Vec<usize> {
    let n = points.len();
    let (mut a, mut b, mut low) = (0, 0, f32::INFINITY);
    for i in 0..n {
        for j in i + 1..n {
            let c = dot(points[i], points[j]);
            if c < low {
                (a, b, low) = (i, j, c);
            }
        }
    }
    let mut centres = [points[a].clone(), points[b].clone()];
    let mut labels = vec![0; n];
    for _ in 0..10 {
        labels = points
            .iter()
            .map(|p| usize::from(dot(p, &centres[1]) > dot(p, &centres[0])))
            .collect();
        for (k, centre) in centres.iter_mut().enumerate() {
            let members: Vec<&Vec<f32>> = points
                .iter()
                .zip(&labels)
                .filter(|(_, l)| **l == k)
                .map(|(p, _)| *p)
                .collect();
            if !members.is_empty() {
                *centre = unit_mean(members.into_iter());
            }
        }
    }
    labels
}

/// Per recording (`--calibration`): the clustering threshold used and the median nearest
/// similarity it comes from, the true speakers' centroid cosines (from pure local speakers),
/// the found clusters' centroid cosines, and per found cluster a two-means split of its
/// pieces: the halves' centroid cosine, sizes and the true speakers in each half.
fn print_calibration(
    uri: &str,
    seg: &LocalSegmentation,
    local: &[LocalEmbedding],
    reference: &[Turn],
    cfg: &DiarizeConfig,
) -> Result<()> {
    use qualscribe::diarize::segment::{FRAME_SPAN_SAMPLES, FRAME_STEP_SAMPLES};
    let used = pyannote::recording_threshold(local, cfg);
    let (labels, centroids) = pyannote::assign_global(local, cfg, used)?;
    let truth: Vec<Option<(&str, f64)>> = local
        .iter()
        .map(|e| local_truth(reference, uri, seg, e))
        .collect();
    let mut by_true: BTreeMap<&str, Vec<&Vec<f32>>> = BTreeMap::new();
    for (e, t) in local.iter().zip(&truth) {
        if let Some((s, p)) = t
            && *p >= 0.9
            && e.alone_ms >= cfg.min_alone_ms
        {
            by_true.entry(s).or_default().push(&e.embedding);
        }
    }
    let true_centroids: Vec<(&str, usize, Vec<f32>)> = by_true
        .iter()
        .map(|(s, v)| (*s, v.len(), unit_mean(v.iter().copied())))
        .collect();
    let mut pairs = Vec::new();
    for i in 0..true_centroids.len() {
        for j in i + 1..true_centroids.len() {
            pairs.push(format!(
                "{}~{} {:.2}",
                true_centroids[i].0,
                true_centroids[j].0,
                dot(&true_centroids[i].2, &true_centroids[j].2)
            ));
        }
    }
    let sizes: Vec<String> = true_centroids
        .iter()
        .map(|(s, n, _)| format!("{s} {n}"))
        .collect();
    let mut found = Vec::new();
    for i in 0..centroids.len() {
        for j in i + 1..centroids.len() {
            found.push(format!("{i}~{j} {:.2}", dot(&centroids[i], &centroids[j])));
        }
    }
    // Piece self-similarity: each distinct piece's best match among pieces 10 s or more away.
    let mut all: Vec<(f64, &Vec<f32>)> = Vec::new();
    for e in local {
        for p in &e.pieces {
            if all.iter().any(|(_, q)| *q == &p.embedding) {
                continue;
            }
            let t =
                (seg.chunk_starts[e.chunk] + p.first_frame * FRAME_STEP_SAMPLES) as f64 / 16_000.0;
            all.push((t, &p.embedding));
        }
    }
    let mut nearest: Vec<f32> = all
        .iter()
        .filter_map(|(t, e)| {
            all.iter()
                .filter(|(u, _)| (u - t).abs() >= 10.0)
                .map(|(_, f)| dot(e, f))
                .max_by(f32::total_cmp)
        })
        .collect();
    nearest.sort_by(f32::total_cmp);
    let piece_median = nearest.get(nearest.len() / 2).copied().unwrap_or(f32::NAN);
    println!(
        "CAL {uri}: piece median nearest {piece_median:.2} ({} pieces); threshold {used:.2} (floor {:.2}, margin {:?}, median nearest {:.2}); true [{}] centroid cos [{}]; found {} cos [{}]",
        all.len(),
        cfg.segment_threshold,
        cfg.segment_margin,
        threshold_median(local, cfg),
        sizes.join(", "),
        pairs.join(", "),
        centroids.len(),
        found.join(", ")
    );
    for c in 0..centroids.len() {
        // The cluster's pieces, each timeline piece once (chunks share them).
        let mut pieces: Vec<(f64, &Vec<f32>)> = Vec::new();
        for (e, _) in local.iter().zip(&labels).filter(|(_, l)| **l == c) {
            for p in &e.pieces {
                if pieces.iter().any(|(_, q)| *q == &p.embedding) {
                    continue;
                }
                let t = (seg.chunk_starts[e.chunk]
                    + p.first_frame * FRAME_STEP_SAMPLES
                    + FRAME_SPAN_SAMPLES / 2) as f64
                    / 16_000.0;
                pieces.push((t, &p.embedding));
            }
        }
        if pieces.len() < 4 {
            println!("CAL {uri}   cluster {c}: {} pieces", pieces.len());
            continue;
        }
        let points: Vec<&Vec<f32>> = pieces.iter().map(|(_, e)| *e).collect();
        let halves = two_means(&points);
        let mut desc = Vec::new();
        let mut cents = Vec::new();
        for k in 0..2 {
            let members: Vec<usize> = (0..points.len()).filter(|&i| halves[i] == k).collect();
            cents.push(unit_mean(members.iter().map(|&i| points[i])));
            let mut who: BTreeMap<&str, usize> = BTreeMap::new();
            for &i in &members {
                let s = truth_at(reference, uri, pieces[i].0).map_or("-", |(s, _)| s);
                *who.entry(s).or_default() += 1;
            }
            let who: Vec<String> = who.iter().map(|(s, n)| format!("{s} {n}")).collect();
            desc.push(format!("{} [{}]", members.len(), who.join(", ")));
        }
        println!(
            "CAL {uri}   cluster {c}: {} pieces, halves cos {:.2}: {} | {}",
            pieces.len(),
            dot(&cents[0], &cents[1]),
            desc[0],
            desc[1]
        );
    }
    Ok(())
}

/// The median nearest similarity between local speakers of chunks that do not overlap
/// (what the adapted threshold subtracts its margin from), with a margin of 0 and no floor.
fn threshold_median(local: &[LocalEmbedding], cfg: &DiarizeConfig) -> f32 {
    pyannote::recording_threshold(
        local,
        &DiarizeConfig {
            segment_margin: Some(0.0),
            segment_threshold: -1.0,
            ..cfg.clone()
        },
    )
}

/// Per found speaker: seconds, and seconds shared with each reference speaker (`--dump`).
fn dump_clusters(uri: &str, reference: &[Turn], hypothesis: &[Turn]) {
    let mut found: BTreeMap<&str, (f64, BTreeMap<&str, f64>)> = BTreeMap::new();
    for h in hypothesis.iter().filter(|t| t.uri == uri) {
        let entry = found.entry(h.speaker.as_str()).or_default();
        entry.0 += h.end_s - h.start_s;
        for r in reference.iter().filter(|t| t.uri == uri) {
            let o = r.end_s.min(h.end_s) - r.start_s.max(h.start_s);
            if o > 0.0 {
                *entry.1.entry(r.speaker.as_str()).or_default() += o;
            }
        }
    }
    let mut truth: BTreeMap<&str, f64> = BTreeMap::new();
    for r in reference.iter().filter(|t| t.uri == uri) {
        *truth.entry(r.speaker.as_str()).or_default() += r.end_s - r.start_s;
    }
    let truth: Vec<String> = truth.iter().map(|(s, t)| format!("{s} {t:.1}")).collect();
    eprintln!("  {uri}: true [{}]", truth.join(", "));
    for (speaker, (seconds, shared)) in &found {
        let shared: Vec<String> = shared.iter().map(|(s, t)| format!("{s} {t:.1}")).collect();
        eprintln!("    {speaker} {seconds:.1} s: {}", shared.join(", "));
    }
}

/// One scored sweep point: DER at collar 0.25 and 0, and the speaker counts found / true.
fn score(
    label: &str,
    reference: &[Turn],
    hypothesis: &[Turn],
    uem: Option<&[qualscribe::eval::rttm::UemSegment]>,
    counts: &[(usize, usize)],
) {
    let der = |collar_s| {
        let opts = DerOptions {
            collar_s,
            skip_overlap: false,
        };
        let reports: BTreeMap<_, _> = diarization_error(reference, hypothesis, uem, &opts);
        total(&reports)
    };
    let (c, s) = (der(0.25), der(0.0));
    let hits = counts.iter().filter(|(a, b)| a == b).count();
    let shown: Vec<String> = counts.iter().map(|(a, b)| format!("{a}/{b}")).collect();
    println!(
        "{label}: DER {:.1} % (collar 0.25; missed {:.1} %, false alarm {:.1} %, confusion {:.1} %), {:.1} % (no collar; missed {:.1} %, false alarm {:.1} %, confusion {:.1} %); count right {hits}/{} [{}]",
        100.0 * c.der(),
        100.0 * c.missed_s / c.total_s,
        100.0 * c.false_alarm_s / c.total_s,
        100.0 * c.confusion_s / c.total_s,
        100.0 * s.der(),
        100.0 * s.missed_s / s.total_s,
        100.0 * s.false_alarm_s / s.total_s,
        100.0 * s.confusion_s / s.total_s,
        counts.len(),
        shown.join(" ")
    );
}

/// The segmentation recipe: segment and embed each recording once, then sweep the clustering.
fn sweep_segmentation(args: &Args, embedder: &SpeakerEmbedder) -> Result<()> {
    let dir = models::default_models_dir();
    let segmenter = Segmenter::load(&models::resolve_segmentation(&dir)?)?;
    let vad = Vad::load(&models::resolve_vad(&dir)?)?;
    let reference = read_rttm(&args.reference)?;
    let uem = args.uem.as_deref().map(read_uem).transpose()?;
    let mut prepared = Vec::new();
    let (mut seg_s, mut emb_s, mut n_emb, mut audio_s) = (0.0, 0.0, 0, 0.0);
    for path in &args.audio {
        // Segmentation and embeddings are cached per model, file and chunk step: sweeps
        // re-cluster only.
        let cache = args.cache_dir.as_ref().map(|d| {
            let name = |kind: &str| {
                d.join(format!(
                    "{kind}-{}-{}-{}.json",
                    &embedder.model_sha256()[..12],
                    stem(path),
                    args.chunk_step_ms
                ))
            };
            // seg2: the per-chunk embeddings (`--per-chunk`); seg3: the timeline pieces. Their
            // segmentation is the same, so seg3 takes it from a seg2 file when there is one.
            let kind = if args.per_chunk {
                "seg2".to_string()
            } else {
                format!("seg3p{}", args.piece_ms)
            };
            (name(&kind), name("seg2"))
        });
        let audio = qualscribe::audio::decode_file(path)?;
        let speech = vad.detect(&audio.samples, &args.vad)?;
        if let Some((c, _)) = cache.as_ref().filter(|c| c.0.is_file()) {
            let (n_samples, chunk_starts, active, local): CachedSegmentation =
                serde_json::from_str(&std::fs::read_to_string(c)?)?;
            audio_s += n_samples as f64 / 16_000.0;
            let local: Vec<LocalEmbedding> = local
                .into_iter()
                .map(
                    |(chunk, local, alone_ms, embedding, pieces)| LocalEmbedding {
                        chunk,
                        local,
                        alone_ms,
                        embedding,
                        pieces: pieces
                            .into_iter()
                            .map(|(first_frame, embedding)| Piece {
                                first_frame,
                                embedding,
                            })
                            .collect(),
                    },
                )
                .collect();
            n_emb += local.len();
            let seg = LocalSegmentation {
                n_samples,
                chunk_starts,
                active,
            };
            prepared.push((stem(path), seg, local, speech, audio.samples));
            continue;
        }
        audio_s += audio.samples.len() as f64 / 16_000.0;
        let t = cpu_s();
        let seg = match cache.as_ref().filter(|c| c.1.is_file()) {
            Some((_, seg2)) => {
                let (n_samples, chunk_starts, active, _): CachedSegmentation =
                    serde_json::from_str(&std::fs::read_to_string(seg2)?)?;
                LocalSegmentation {
                    n_samples,
                    chunk_starts,
                    active,
                }
            }
            None => pyannote::segment_recording(&segmenter, &audio.samples, args.chunk_step_ms)?,
        };
        seg_s += cpu_s() - t;
        let t = cpu_s();
        let local = if args.per_chunk {
            pyannote::embed_local_speakers_per_chunk(embedder, &audio.samples, &seg)?
        } else {
            pyannote::embed_local_speakers_in_pieces(embedder, &audio.samples, &seg, args.piece_ms)?
        };
        emb_s += cpu_s() - t;
        n_emb += local.len();
        if let Some((c, _)) = &cache {
            std::fs::create_dir_all(c.parent().unwrap_or(Path::new(".")))?;
            let flat: CachedSegmentation = (
                seg.n_samples,
                seg.chunk_starts.clone(),
                seg.active.clone(),
                local
                    .iter()
                    .map(|e| {
                        let pieces = e
                            .pieces
                            .iter()
                            .map(|p| (p.first_frame, p.embedding.clone()))
                            .collect();
                        (e.chunk, e.local, e.alone_ms, e.embedding.clone(), pieces)
                    })
                    .collect(),
            );
            std::fs::write(c, serde_json::to_string(&flat)?)?;
        }
        prepared.push((stem(path), seg, local, speech, audio.samples));
    }
    let n_chunks: usize = prepared
        .iter()
        .map(|(_, seg, ..)| seg.chunk_starts.len())
        .sum();
    let n_pieces: usize = prepared
        .iter()
        .flat_map(|(_, _, local, ..)| local.iter().map(|e| e.pieces.len()))
        .sum();
    eprintln!(
        "{audio_s:.0} s of audio: {n_chunks} segmentation chunks {seg_s:.1} CPU-s, {n_emb} local speakers + {n_pieces} pieces embedded in {emb_s:.1} CPU-s (chunk step {} ms, {})",
        args.chunk_step_ms,
        if args.per_chunk {
            "per-chunk embeddings"
        } else {
            "timeline pieces"
        }
    );
    // Audio through CAM++: whole local speakers (their alone frames) and pieces.
    let (whole_s, piece_s): (f64, f64) = prepared
        .iter()
        .flat_map(|(_, _, local, ..)| local.iter())
        .map(|e| {
            let s = e.alone_ms as f64 / 1000.0;
            (s, if e.pieces.is_empty() { 0.0 } else { s })
        })
        .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    if args.per_chunk {
        eprintln!("  CAM++ audio: {whole_s:.0} s whole local speakers + {piece_s:.0} s in pieces");
    }
    let reference: Vec<Turn> = reference
        .into_iter()
        .filter(|t| prepared.iter().any(|(uri, ..)| *uri == t.uri))
        .collect();
    // Windows embeddings of the recordings that fall back, made when first needed.
    let mut fallback_windows: BTreeMap<String, Vec<SpeakerWindow>> = BTreeMap::new();
    if args.purity {
        for (uri, seg, local, ..) in &prepared {
            print_purity(uri, seg, local, &reference);
        }
    }
    let voices = match &args.voices_dir {
        Some(dir) => qualscribe::diarize::voices::load_profiles(dir, embedder.model_sha256())?,
        None => Vec::new(),
    };
    let mut first = true;
    let mut grid = Vec::new();
    for &piece in &args.piece_margins {
        for &margin in &args.margins {
            for &alone in &args.min_alone_ms {
                for &min_chunks in &args.min_chunks {
                    for &threshold in &args.thresholds {
                        for &split in &args.split_margins {
                            for &split_min in &args.split_min_pieces {
                                for &min_speaker in &args.seg_min_speaker_ms {
                                    for &merge in &args.merge_above {
                                        grid.push((
                                            piece,
                                            margin,
                                            alone,
                                            min_chunks,
                                            threshold,
                                            split,
                                            split_min,
                                            min_speaker,
                                            merge,
                                        ));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    {
        for (
            piece_margin,
            segment_margin,
            min_alone_ms,
            min_chunks,
            threshold,
            split_margin,
            split_min_pieces,
            segment_min_speaker_ms,
            segment_merge_above,
        ) in grid
        {
            let cfg = DiarizeConfig {
                split_margin,
                split_min_pieces,
                segment_min_speaker_ms,
                segment_merge_above,
                voice_merge_above: args.voice_merge_above,
                piece_margin,
                segment_margin,
                min_alone_ms,
                method: Method::Segmentation,
                segment_threshold: threshold,
                min_cluster_chunks: min_chunks,
                chunk_step_ms: args.chunk_step_ms,
                voices: voices.clone(),
                ..Default::default()
            };
            let mut hypothesis = Vec::new();
            let mut counts = Vec::new();
            let mut fell_back = Vec::new();
            let t_cluster = cpu_s();
            for (uri, seg, local, speech, samples) in &prepared {
                if args.calibration {
                    print_calibration(uri, seg, local, &reference, &cfg)?;
                }
                let mut d = diarize_segmented(uri, seg, local, &cfg, embedder.model_sha256())?;
                if first {
                    let share = vad_speech_share(&d, speech).map(|s| 100.0 * s);
                    eprintln!("  {uri}: segmentation covers {share:.0?} % of the VAD's speech");
                }
                if !args.no_fallback && needs_windows_fallback(&d, speech) {
                    if !fallback_windows.contains_key(uri) {
                        let w = embedder.embed_windows(samples, speech, cfg.step_ms)?;
                        fallback_windows.insert(uri.clone(), w);
                    }
                    let windows = &fallback_windows[uri];
                    d = windows_fallback(uri, speech, windows, &cfg, embedder.model_sha256())?;
                    fell_back.push(uri.as_str());
                }
                if cfg.voice_merge_above.is_some() {
                    qualscribe::diarize::voices::set_clean_voices(embedder, samples, &mut d)?;
                    qualscribe::diarize::merge_alike_voices(embedder, samples, &mut d, &cfg)?;
                }
                let turns = to_rttm_turns(&d);
                if first && let Some(out) = &args.rttm_dir {
                    let clean = !args.recipe_embeddings;
                    write_diarization(out, &mut d, &turns, embedder, samples, clean)?;
                }
                counts.push((d.speakers.len(), speakers_in(&reference, uri)));
                if args.dump {
                    dump_clusters(uri, &reference, &turns);
                }
                hypothesis.extend(turns);
            }
            if first {
                eprintln!(
                    "  clustering + reconstruction: {:.2} CPU-s",
                    cpu_s() - t_cluster
                );
            }
            first = false;
            let label = format!(
                "segmentation split {split_margin:?}/{split_min_pieces} pieces {piece_margin:?} threshold {threshold:.2}, margin {segment_margin:?}, min chunks {min_chunks}, min alone {min_alone_ms} ms, min speaker {segment_min_speaker_ms} ms, merge above {segment_merge_above:?}, voice merge above {:?}, windows fallback on [{}]",
                args.voice_merge_above,
                fell_back.join(" ")
            );
            score(&label, &reference, &hypothesis, uem.as_deref(), &counts);
        }
    }
    Ok(())
}

/// Writes `<uri>.rttm` and `<uri>.diarization.json` into `out`. With `clean`, the speakers'
/// embeddings are first their clean voices (`voices::set_clean_voices`), as `diarize` makes
/// them for naming with the segmentation recipe.
fn write_diarization(
    out: &Path,
    d: &mut qualscribe::diarize::Diarization,
    turns: &[Turn],
    embedder: &SpeakerEmbedder,
    samples: &[f32],
    clean: bool,
) -> Result<()> {
    if clean {
        qualscribe::diarize::voices::set_clean_voices(embedder, samples, d)?;
    }
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join(format!("{}.rttm", d.uri)), write_rttm(turns))?;
    std::fs::write(
        out.join(format!("{}.diarization.json", d.uri)),
        qualscribe::pipeline::diarization_json(d),
    )?;
    Ok(())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let dir = models::default_models_dir();
    if args.segmentation {
        let embedder = SpeakerEmbedder::load(&models::resolve_speaker(&dir)?)?;
        return sweep_segmentation(&args, &embedder);
    }
    let embedder = SpeakerEmbedder::load(&models::resolve_speaker(&dir)?)?;
    let vad = Vad::load(&models::resolve_vad(&dir)?)?;
    let reference = read_rttm(&args.reference)?;
    let uem = args.uem.as_deref().map(read_uem).transpose()?;
    let mut prepared = Vec::new();
    let started = std::time::Instant::now();
    for path in &args.audio {
        // Embeddings are cached per model, file, VAD threshold and step: sweeps re-cluster only.
        let cache = args.cache_dir.as_ref().map(|d| {
            d.join(format!(
                "{}-{}-{}-{}.json",
                &embedder.model_sha256()[..12],
                stem(path),
                args.vad.threshold,
                args.step_ms
            ))
        });
        if let Some(c) = cache.as_ref().filter(|c| c.is_file()) {
            let (speech, windows): (Vec<SpeechRegion>, Vec<CachedWindow>) =
                serde_json::from_str(&std::fs::read_to_string(c)?)?;
            let windows = windows
                .into_iter()
                .map(|(start_ms, end_ms, region, embedding)| SpeakerWindow {
                    start_ms,
                    end_ms,
                    region,
                    embedding,
                })
                .collect();
            prepared.push((stem(path), speech, windows));
            continue;
        }
        let audio = qualscribe::audio::decode_file(path)?;
        let speech = vad.detect(&audio.samples, &args.vad)?;
        let windows = embedder.embed_windows(&audio.samples, &speech, args.step_ms)?;
        if let Some(c) = &cache {
            std::fs::create_dir_all(c.parent().unwrap_or(Path::new(".")))?;
            let flat: Vec<(u64, u64, usize, &Vec<f32>)> = windows
                .iter()
                .map(|w| (w.start_ms, w.end_ms, w.region, &w.embedding))
                .collect();
            std::fs::write(c, serde_json::to_string(&(&speech, flat))?)?;
        }
        prepared.push((stem(path), speech, windows));
    }
    let n_windows: usize = prepared.iter().map(|(_, _, w)| w.len()).sum();
    eprintln!(
        "{n_windows} CAM++ windows embedded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for (uri, speech, windows) in &prepared {
        print_separation(uri, speech, windows, &reference);
    }
    if args.refine {
        let mut kept = 0;
        for (_, speech, windows) in &mut prepared {
            *windows = refined_windows(speech, windows, embedder.model_sha256())?;
            kept += windows.len();
        }
        eprintln!("--refine: {kept} of {n_windows} windows embedded");
    }
    // Only the recordings given are scored (the reference may hold more).
    let reference: Vec<Turn> = reference
        .into_iter()
        .filter(|t| prepared.iter().any(|(uri, _, _)| *uri == t.uri))
        .collect();
    let mut grid: Vec<(f32, u64, Option<f32>, usize)> = Vec::new();
    for &smoothing in &args.smoothing {
        for &margin in &args.margins {
            for &m in &args.min_speaker_ms {
                for &t in &args.thresholds {
                    grid.push((t, m, margin, smoothing));
                }
            }
        }
    }
    for (i, &(threshold, min_speaker_ms, threshold_margin, smoothing_windows)) in
        grid.iter().enumerate()
    {
        let cfg = DiarizeConfig {
            threshold,
            min_speaker_ms,
            threshold_margin,
            smoothing_windows,
            step_ms: args.step_ms,
            ..Default::default()
        };
        let mut hypothesis = Vec::new();
        let mut hits = 0;
        let mut counts = Vec::new();
        for (uri, speech, windows) in &prepared {
            let mut d = diarize_windows(uri, speech, windows, &cfg, embedder.model_sha256())?;
            let turns = to_rttm_turns(&d);
            if i == 0
                && let Some(out) = &args.rttm_dir
            {
                let path = args.audio.iter().find(|p| stem(p) == *uri);
                let audio = path
                    .filter(|_| args.clean_voices)
                    .map(|p| qualscribe::audio::decode_file(p))
                    .transpose()?;
                let samples = audio.as_ref().map_or(&[][..], |a| &a.samples[..]);
                write_diarization(out, &mut d, &turns, &embedder, samples, args.clean_voices)?;
            }
            let expected = speakers_in(&reference, uri);
            hits += usize::from(d.speakers.len() == expected);
            counts.push(format!("{}/{}", d.speakers.len(), expected));
            hypothesis.extend(turns);
        }
        let der = |collar_s| {
            let opts = DerOptions {
                collar_s,
                skip_overlap: false,
            };
            let reports: BTreeMap<_, _> =
                diarization_error(&reference, &hypothesis, uem.as_deref(), &opts);
            total(&reports)
        };
        let (c, s) = (der(0.25), der(0.0));
        println!(
            "threshold {threshold:.2}, margin {threshold_margin:?}, min speaker {min_speaker_ms} ms, smoothing {smoothing_windows}: DER {:.1} % (collar 0.25; missed {:.1} %, false alarm {:.1} %, confusion {:.1} %), {:.1} % (no collar); count right {hits}/{} [{}]",
            100.0 * c.der(),
            100.0 * c.missed_s / c.total_s,
            100.0 * c.false_alarm_s / c.total_s,
            100.0 * c.confusion_s / c.total_s,
            100.0 * s.der(),
            prepared.len(),
            counts.join(" ")
        );
    }
    Ok(())
}

/// `--refine` (an experiment on windows embedded at a step of 800 ms): the windows a coarse pass
/// at twice the step would embed (every second one per region, plus each region's last), then,
/// between two neighbouring coarse windows whose speakers differ after clustering them (step
/// 1600, smoothing 2), the fine windows in between: the 800 ms resolution at speaker changes,
/// the coarse cost elsewhere.
fn refined_windows(
    speech: &[SpeechRegion],
    fine: &[SpeakerWindow],
    model_sha256: &str,
) -> Result<Vec<SpeakerWindow>> {
    let mut coarse_ix = Vec::new();
    for (i, w) in fine.iter().enumerate() {
        let first = fine.iter().position(|v| v.region == w.region).unwrap_or(i);
        let last = fine.iter().rposition(|v| v.region == w.region).unwrap_or(i);
        if (i - first) % 2 == 0 || i == last {
            coarse_ix.push(i);
        }
    }
    let coarse: Vec<SpeakerWindow> = coarse_ix.iter().map(|&i| fine[i].clone()).collect();
    let cfg = DiarizeConfig {
        step_ms: 1600,
        smoothing_windows: 2,
        ..Default::default()
    };
    let d = diarize_windows("coarse", speech, &coarse, &cfg, model_sha256)?;
    let speaker_at = |ms: u64| {
        d.turns
            .iter()
            .find(|t| t.start_ms <= ms && ms < t.end_ms)
            .map(|t| t.speaker.clone())
    };
    let mut keep: Vec<bool> = vec![false; fine.len()];
    for &i in &coarse_ix {
        keep[i] = true;
    }
    for pair in coarse_ix.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if fine[a].region == fine[b].region
            && speaker_at(fine[a].center_ms()) != speaker_at(fine[b].center_ms())
        {
            keep[a..b].iter_mut().for_each(|k| *k = true);
        }
    }
    Ok(fine
        .iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(w, _)| w.clone())
        .collect())
}
