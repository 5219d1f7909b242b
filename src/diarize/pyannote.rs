//! Diarization the pyannote.audio 3.x way (`SpeakerDiarization`): segmentation finds who speaks
//! when inside each 10 s chunk, embeddings join the chunks' local speakers into global ones.
//!
//! ```text
//! samples ─ Segmenter over 10 s chunks every step ─▶ per chunk and frame: active local speakers (≤ 3, ≤ 2 at once)
//!         ─ CAM++ per single-voice timeline piece ─▶ an embedding per (chunk, local speaker)
//!         ─ cluster (the windows path's AHC)     ─▶ a global speaker per (chunk, local speaker)
//!         ─ reconstruct                          ─▶ per frame: the `count` most active global speakers
//! ```
//!
//! - **Speech** comes from segmentation, not from the VAD: speech the VAD missed (quiet,
//!   overlapped) can be found.
//! - **Count per frame**: the number of active local speakers, averaged over the chunks covering
//!   the frame and rounded (pyannote's `speaker_count`); the most active global speakers fill
//!   it, so two may speak at once (turns marked `overlap`).
//! - **Embeddings**: the timeline's single-voice stretches (each frame judged by the chunk it
//!   is most central in) are cut into ~2 s pieces, each through CAM++ once; a local speaker's
//!   embedding is the mean of the pieces its chunk hears it alone in (one that owns no piece:
//!   its own alone frames, or all its frames when never alone, as before). Chunks overlap 4×,
//!   so this is about 6× less CAM++ work than embedding each chunk's speakers whole and in
//!   pieces (`embed_local_speakers_per_chunk`, kept for comparison). Only speakers with at least
//!   `min_alone_ms` alone in a chunk build clusters; the others are then assigned to the
//!   nearest centroid. Within one chunk two local speakers never get the same global speaker
//!   (pyannote's constrained assignment).
//!
//! Deterministic: fixed orders, no randomness.

use super::cluster::{self, ClusterParams};
use super::segment::{
    CHUNK_FRAMES, CHUNK_SAMPLES, FRAME_SPAN_SAMPLES, FRAME_STEP_SAMPLES, LOCAL_SPEAKERS, POWERSET,
    Segmenter,
};
use super::{DiarizeConfig, DiarizeError, SpeakerEmbedder, SpeakerTurn};
use rayon::prelude::*;

/// Chunks pushed through the segmentation network together (in onnxruntime they share one
/// SincNet convolution: 16 chunks every 2.5 s convolve 19 × 2.5 s instead of 64 × 2.5 s).
const SEG_BATCH: usize = 16;
/// Least audio for an embedding at all (shorter ones are too noisy, and CAM++ needs a few
/// frames).
const EMBED_MIN_MS: u64 = 250;
/// Samples per millisecond.
const SAMPLES_PER_MS: usize = 16;
/// [`EMBED_MIN_MS`] in samples.
const EMBED_MIN_SAMPLES: usize = EMBED_MIN_MS as usize * SAMPLES_PER_MS;

/// The segmentation of one recording: each chunk's start and its frames' active local
/// speakers (bit `k` set: local speaker `k` speaks).
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSegmentation {
    /// Recording length in samples.
    pub n_samples: usize,
    /// Each chunk's first sample.
    pub chunk_starts: Vec<usize>,
    /// `[chunk][frame]` active local speakers as bits.
    pub active: Vec<Vec<u8>>,
}

/// One embedded (chunk, local speaker).
#[derive(Debug, Clone, PartialEq)]
pub struct LocalEmbedding {
    /// The chunk.
    pub chunk: usize,
    /// The local speaker (0–2).
    pub local: usize,
    /// Milliseconds the speaker speaks alone in the chunk.
    pub alone_ms: u64,
    /// Unit-length CAM++ embedding.
    pub embedding: Vec<f32>,
    /// The same speech cut into consecutive pieces of about [`PIECE_MS`], each embedded: where
    /// one is nearer another speaker, segmentation gave two voices one local speaker ([`piece_runs`]).
    pub pieces: Vec<Piece>,
}

/// A consecutive part of a local speaker's embedded frames.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// Its first frame in the chunk.
    pub first_frame: usize,
    /// Unit-length CAM++ embedding.
    pub embedding: Vec<f32>,
}

/// Speech per piece (a shorter last piece joins the one before it when under half of this).
pub const PIECE_MS: u64 = 2000;

/// Chunk starts covering `n` samples every `step` samples; the last chunk ends at or past the
/// end (pyannote zero-pads it), and a recording shorter than a chunk gets one chunk.
fn chunk_starts(n: usize, step: usize) -> Vec<usize> {
    let mut starts = vec![0];
    while starts.last().is_some_and(|&s| s + CHUNK_SAMPLES < n) {
        let next = starts.last().map_or(0, |s| s + step);
        starts.push(next);
    }
    starts
}

/// Runs segmentation over 10 s chunks every `step_ms` and keeps each frame's most likely
/// powerset class, as the set of active local speakers.
pub fn segment_recording(
    segmenter: &Segmenter,
    samples_16k: &[f32],
    step_ms: u64,
) -> Result<LocalSegmentation, DiarizeError> {
    let step = usize::try_from(step_ms).unwrap_or(usize::MAX).max(1) * SAMPLES_PER_MS;
    let starts = if samples_16k.is_empty() {
        Vec::new()
    } else {
        chunk_starts(samples_16k.len(), step)
    };
    let mut active = Vec::with_capacity(starts.len());
    for batch in starts.chunks(SEG_BATCH) {
        for frames in segmenter.log_probs_in_recording(samples_16k, batch)? {
            active.push(
                frames
                    .iter()
                    .map(|lp| {
                        let best = (0..lp.len())
                            .max_by(|&i, &j| lp[i].total_cmp(&lp[j]).then(j.cmp(&i)))
                            .unwrap_or(0);
                        POWERSET[best]
                    })
                    .collect(),
            );
        }
    }
    Ok(LocalSegmentation {
        n_samples: samples_16k.len(),
        chunk_starts: starts,
        active,
    })
}

/// Sample range of frame `f` of a chunk starting at `start`: from halfway between the previous
/// frame's centre and its own to halfway to the next one's.
fn frame_samples(start: usize, f: usize) -> (usize, usize) {
    let centre = start + f * FRAME_STEP_SAMPLES + FRAME_SPAN_SAMPLES / 2;
    let half = FRAME_STEP_SAMPLES / 2;
    (
        centre.saturating_sub(half),
        centre + FRAME_STEP_SAMPLES - half,
    )
}

/// The earlier recipe, kept for comparison (`examples/diarize_sweep --per-chunk`): each
/// (chunk, local speaker) embedded whole and in ~2 s pieces, so each second of speech goes
/// through CAM++ about 8 times (chunks overlap 4×).
pub fn embed_local_speakers_per_chunk(
    embedder: &SpeakerEmbedder,
    samples_16k: &[f32],
    seg: &LocalSegmentation,
) -> Result<Vec<LocalEmbedding>, DiarizeError> {
    let frame_ms = FRAME_STEP_SAMPLES as u64 / SAMPLES_PER_MS as u64;
    let mut out = Vec::new();
    for (chunk, (&start, frames)) in seg.chunk_starts.iter().zip(&seg.active).enumerate() {
        for local in 0..LOCAL_SPEAKERS {
            let (on, n_alone) = own_frames(frames, local);
            let Some(clip) = own_clip(samples_16k, start, &on) else {
                continue;
            };
            let Some(embedding) = embedder.embed_clip(&clip)? else {
                continue;
            };
            let mut pieces = Vec::new();
            for frames in piece_frames(&on, frame_ms) {
                if let Some(e) = embedder.embed_clip(&frames_audio(samples_16k, start, frames))? {
                    pieces.push(Piece {
                        first_frame: frames[0],
                        embedding: e,
                    });
                }
            }
            out.push(LocalEmbedding {
                chunk,
                local,
                alone_ms: n_alone as u64 * frame_ms,
                embedding,
                pieces,
            });
        }
    }
    Ok(out)
}

/// One CAM++ embedding per (chunk, local speaker) that speaks alone somewhere in its chunk,
/// built from [`timeline_pieces`] so that each second of speech goes through CAM++ once, not
/// once per chunk covering it (chunks overlap about 4×): a local speaker's embedding is the
/// normalised mean of the pieces its chunk hears it speak alone in (weighted by those frames),
/// and with two or more such pieces it keeps them for [`piece_runs`].
pub fn embed_local_speakers(
    embedder: &SpeakerEmbedder,
    samples_16k: &[f32],
    seg: &LocalSegmentation,
) -> Result<Vec<LocalEmbedding>, DiarizeError> {
    embed_local_speakers_in_pieces(embedder, samples_16k, seg, PIECE_MS)
}

/// [`embed_local_speakers`] with timeline pieces of about `piece_ms` (for sweeps).
pub fn embed_local_speakers_in_pieces(
    embedder: &SpeakerEmbedder,
    samples_16k: &[f32],
    seg: &LocalSegmentation,
    piece_ms: u64,
) -> Result<Vec<LocalEmbedding>, DiarizeError> {
    let clip_of = |&(start, end): &(usize, usize)| {
        &samples_16k[start.min(samples_16k.len())..end.min(samples_16k.len())]
    };
    let ranges: Vec<(usize, usize)> = timeline_pieces(seg, piece_ms)
        .into_iter()
        .filter(|r| clip_of(r).len() >= EMBED_MIN_SAMPLES)
        .collect();
    let clips: Vec<&[f32]> = ranges.iter().map(clip_of).collect();
    let pieces: Vec<(usize, usize, Vec<f32>)> = ranges
        .iter()
        .zip(embedder.embed_clips(&clips)?)
        .filter_map(|(&(start, end), e)| e.map(|e| (start, end, e)))
        .collect();
    let mut local = local_speakers_from_pieces(seg, &pieces);
    local.extend(embed_unpieced(embedder, samples_16k, seg, &local)?);
    local.sort_by_key(|e| (e.chunk, e.local));
    Ok(local)
}

/// Embeddings of the local speakers no timeline piece belongs to (they speak only in overlap
/// or in bits too short for a piece), from their own frames as in the per-chunk recipe: without
/// them their speech would get no speaker in their chunk.
fn embed_unpieced(
    embedder: &SpeakerEmbedder,
    samples_16k: &[f32],
    seg: &LocalSegmentation,
    pieced: &[LocalEmbedding],
) -> Result<Vec<LocalEmbedding>, DiarizeError> {
    let frame_ms = FRAME_STEP_SAMPLES as u64 / SAMPLES_PER_MS as u64;
    let pieced: std::collections::BTreeSet<(usize, usize)> =
        pieced.iter().map(|e| (e.chunk, e.local)).collect();
    // (chunk, local speaker, alone ms, clip) of each one to embed.
    let mut wanted = Vec::new();
    for (chunk, (&start, frames)) in seg.chunk_starts.iter().zip(&seg.active).enumerate() {
        for local in 0..LOCAL_SPEAKERS {
            if pieced.contains(&(chunk, local)) {
                continue;
            }
            let (on, n_alone) = own_frames(frames, local);
            if let Some(clip) = own_clip(samples_16k, start, &on) {
                wanted.push((chunk, local, n_alone as u64 * frame_ms, clip));
            }
        }
    }
    let clips: Vec<&[f32]> = wanted.iter().map(|w| w.3.as_slice()).collect();
    let embedded = embedder.embed_clips(&clips)?;
    Ok(wanted
        .iter()
        .zip(embedded)
        .filter_map(|(&(chunk, local, alone_ms, _), e)| {
            e.map(|embedding| LocalEmbedding {
                chunk,
                local,
                alone_ms,
                embedding,
                pieces: Vec::new(),
            })
        })
        .collect())
}

/// The frames a local speaker is embedded from when no timeline piece stands for it (and in
/// the per-chunk recipe): those where its chunk hears it alone, or, when it is never alone,
/// every frame it speaks in. Returns them and how many are alone.
fn own_frames(frames: &[u8], local: usize) -> (Vec<usize>, usize) {
    let bit = 1u8 << local;
    let alone: Vec<usize> = (0..frames.len()).filter(|&f| frames[f] == bit).collect();
    if alone.is_empty() {
        let any = (0..frames.len())
            .filter(|&f| frames[f] & bit != 0)
            .collect();
        return (any, 0);
    }
    let n = alone.len();
    (alone, n)
}

/// The audio of these frames of a chunk starting at `start`, when there is enough of it to
/// embed ([`EMBED_MIN_MS`]).
fn own_clip(samples_16k: &[f32], start: usize, frames: &[usize]) -> Option<Vec<f32>> {
    let clip = frames_audio(samples_16k, start, frames);
    (clip.len() >= EMBED_MIN_SAMPLES).then_some(clip)
}

/// Sample at the centre of frame `f` of a chunk starting at `start`.
fn frame_centre(start: usize, f: usize) -> usize {
    start + f * FRAME_STEP_SAMPLES + FRAME_SPAN_SAMPLES / 2
}

/// Per chunk, the samples nearer its centre than any other chunk's: the part of the timeline
/// whose frames that chunk speaks for in [`timeline_pieces`].
fn home_ranges(seg: &LocalSegmentation) -> Vec<(usize, usize)> {
    let centres: Vec<usize> = seg
        .chunk_starts
        .iter()
        .map(|s| s + CHUNK_SAMPLES / 2)
        .collect();
    (0..centres.len())
        .map(|i| {
            let from = if i == 0 {
                0
            } else {
                centres[i - 1].midpoint(centres[i])
            };
            let to = centres
                .get(i + 1)
                .map_or(seg.n_samples, |&next| centres[i].midpoint(next));
            (from, to)
        })
        .collect()
}

/// The single-voice stretches of the timeline cut into pieces of about `piece_ms`, as sample
/// ranges in time order. Each frame is judged by the chunk it is most central in (its home,
/// [`home_ranges`]): a stretch runs while that chunk hears one local speaker alone, and goes
/// on into the next chunk's home when the next chunk hears its own alone speaker already in
/// the frame before (so both chunks agree no one else spoke at the seam).
pub(crate) fn timeline_pieces(seg: &LocalSegmentation, piece_ms: u64) -> Vec<(usize, usize)> {
    let mut stretches: Vec<(usize, usize)> = Vec::new();
    // The open stretch: its sample range, chunk, local speaker and last frame.
    let mut open: Option<(usize, usize, usize, u8, usize)> = None;
    for (i, ((&start, frames), (from, to))) in seg
        .chunk_starts
        .iter()
        .zip(&seg.active)
        .zip(home_ranges(seg))
        .enumerate()
    {
        for (f, &bits) in frames.iter().enumerate() {
            let centre = frame_centre(start, f);
            if centre < from || centre >= to {
                continue;
            }
            let alone = bits.count_ones() == 1;
            let continues = open.is_some_and(|(_, _, chunk, bit, last)| {
                alone
                    && f > 0
                    && frames[f - 1] == bits
                    && ((chunk == i && bit == bits && last + 1 == f) || chunk + 1 == i)
            });
            let (a, b) = frame_samples(start, f);
            match open.as_mut() {
                Some(o) if continues => *o = (o.0, b, i, bits, f),
                _ => {
                    if let Some((a0, b0, ..)) = open.take() {
                        stretches.push((a0, b0));
                    }
                    if alone {
                        open = Some((a, b, i, bits, f));
                    }
                }
            }
        }
    }
    stretches.extend(open.map(|(a, b, ..)| (a, b)));
    stretches
        .into_iter()
        .flat_map(|s| cut_stretch(s, piece_ms))
        .collect()
}

/// A stretch cut into equal pieces of about `piece_ms` (at least one).
fn cut_stretch((start, end): (usize, usize), piece_ms: u64) -> Vec<(usize, usize)> {
    let piece = (usize::try_from(piece_ms).unwrap_or(usize::MAX) * SAMPLES_PER_MS).max(1);
    let n = ((end - start + piece / 2) / piece).max(1);
    (0..n)
        .map(|j| {
            (
                start + (end - start) * j / n,
                start + (end - start) * (j + 1) / n,
            )
        })
        .collect()
}

/// Whether a piece whose frames in a chunk are `inside` belongs to `local` there, and if so
/// its first frame where `local` speaks alone: the chunk must hear `local` alone in at least
/// half of those frames (so a piece belongs to at most one local speaker per chunk).
fn piece_owner(frames: &[u8], inside: &[usize], local: usize) -> Option<usize> {
    let bit = 1u8 << local;
    let alone = inside.iter().filter(|&&f| frames[f] == bit).count();
    if alone == 0 || 2 * alone < inside.len() {
        return None;
    }
    inside.iter().copied().find(|&f| frames[f] == bit)
}

/// Local speakers' embeddings from embedded timeline pieces (`(start, end, embedding)`, in
/// time order): each piece counts for its [`piece_owner`] in every chunk it falls in. Local
/// speakers no piece belongs to are left out (see [`embed_unpieced`]).
pub(crate) fn local_speakers_from_pieces(
    seg: &LocalSegmentation,
    pieces: &[(usize, usize, Vec<f32>)],
) -> Vec<LocalEmbedding> {
    let frame_ms = FRAME_STEP_SAMPLES as u64 / SAMPLES_PER_MS as u64;
    let mut out = Vec::new();
    for (chunk, (&start, frames)) in seg.chunk_starts.iter().zip(&seg.active).enumerate() {
        let span_end = frame_centre(start, frames.len());
        let near: Vec<&(usize, usize, Vec<f32>)> = pieces
            .iter()
            .filter(|(a, b, _)| *b > start && *a < span_end)
            .collect();
        for local in 0..LOCAL_SPEAKERS {
            let bit = 1u8 << local;
            let n_alone = frames.iter().filter(|&&a| a == bit).count();
            let mut sum = vec![0f32; near.first().map_or(0, |p| p.2.len())];
            let mut mine = Vec::new();
            for (a, b, e) in &near {
                let inside: Vec<usize> = (0..frames.len())
                    .filter(|&f| (*a..*b).contains(&frame_centre(start, f)))
                    .collect();
                let Some(first_frame) = piece_owner(frames, &inside, local) else {
                    continue;
                };
                let w = inside.iter().filter(|&&f| frames[f] == bit).count() as f32;
                sum.iter_mut().zip(e).for_each(|(s, x)| *s += w * x);
                mine.push(Piece {
                    first_frame,
                    embedding: e.clone(),
                });
            }
            if mine.is_empty() {
                continue;
            }
            super::embed::l2_normalize(&mut sum);
            if mine.len() < 2 {
                mine.clear();
            }
            out.push(LocalEmbedding {
                chunk,
                local,
                alone_ms: n_alone as u64 * frame_ms,
                embedding: sum,
                pieces: mine,
            });
        }
    }
    out
}

/// The samples of these frames of a chunk starting at `start`, joined.
fn frames_audio(samples_16k: &[f32], start: usize, frames: &[usize]) -> Vec<f32> {
    let mut clip = Vec::new();
    for &f in frames {
        let (a, b) = frame_samples(start, f);
        let (a, b) = (a.min(samples_16k.len()), b.min(samples_16k.len()));
        clip.extend_from_slice(&samples_16k[a..b]);
    }
    clip
}

/// `frames` (in time order) cut into consecutive runs of about [`PIECE_MS`]; a last run under
/// half of that joins the one before. Fewer than two pieces' worth: no pieces.
fn piece_frames(frames: &[usize], frame_ms: u64) -> Vec<&[usize]> {
    let per = usize::try_from(PIECE_MS / frame_ms.max(1))
        .unwrap_or(usize::MAX)
        .max(1);
    if frames.len() < 2 * per {
        return Vec::new();
    }
    let mut out: Vec<&[usize]> = frames.chunks(per).collect();
    if out.len() > 1 && out.last().is_some_and(|l| l.len() < per / 2) {
        let n = out.len();
        let joined = frames.len() - out[n - 2].len() - out[n - 1].len();
        out.truncate(n - 2);
        out.push(&frames[joined..]);
    }
    out
}

/// The clustering threshold for this recording (see [`DiarizeConfig::segment_margin`]): how
/// alike one voice sounds to itself here, measured between chunks that do not overlap.
pub fn recording_threshold(embeddings: &[LocalEmbedding], cfg: &DiarizeConfig) -> f32 {
    let Some(margin) = cfg.segment_margin else {
        return cfg.segment_threshold;
    };
    // Chunk indices this far apart do not overlap (chunks are 10 s, every step).
    let apart = CHUNK_SAMPLES.div_ceil(cfg.chunk_step_ms.max(1) as usize * SAMPLES_PER_MS);
    // Every pair is compared (quadratic: ~2,500 local speakers in 1 h), so on every core.
    let mut nearest: Vec<f32> = embeddings
        .par_iter()
        .filter(|e| e.alone_ms >= cfg.min_alone_ms)
        .filter_map(|a| {
            embeddings
                .iter()
                .filter(|b| b.chunk.abs_diff(a.chunk) >= apart && b.alone_ms >= cfg.min_alone_ms)
                .map(|b| cluster::dot(&a.embedding, &b.embedding))
                .max_by(f32::total_cmp)
        })
        .collect();
    // Too little to measure (a recording of ~20 s or less): the threshold stays fixed.
    if nearest.len() < 5 {
        return cfg.segment_threshold;
    }
    nearest.sort_by(f32::total_cmp);
    (nearest[nearest.len() / 2] - margin).max(cfg.segment_threshold)
}

/// Global speakers (cluster indices) of the embedded local speakers and the centroids.
pub fn assign_global(
    embeddings: &[LocalEmbedding],
    cfg: &DiarizeConfig,
    threshold: f32,
) -> Result<(Vec<usize>, Vec<Vec<f32>>), DiarizeError> {
    let points: Vec<Vec<f32>> = embeddings.iter().map(|e| e.embedding.clone()).collect();
    let reliable: Vec<bool> = embeddings
        .iter()
        .map(|e| e.alone_ms >= cfg.min_alone_ms)
        .collect();
    let params = ClusterParams {
        num_speakers: cfg.num_speakers,
        min_speakers: cfg.min_speakers,
        max_speakers: cfg.max_speakers,
        threshold,
        min_cluster_windows: min_cluster_size(cfg.min_cluster_chunks, &reliable),
    };
    let clustering = cluster::cluster(&points, &reliable, &params)
        .map_err(|source| DiarizeError::Inference { source })?;
    let mut labels = clustering.labels.clone();
    constrain_per_chunk(embeddings, &clustering.centroids, &mut labels);
    Ok((labels, clustering.centroids))
}

/// Global speakers re-cut by their pieces ([`DiarizeConfig::split_margin`]): each speaker's
/// distinct pieces are split in two by two-means; where both groups have at least
/// `split_min_pieces` pieces and their centroids are less alike than `threshold + margin`, the
/// larger group becomes the speaker and the smaller one a new speaker, unless it is at least
/// `threshold` alike another speaker (it is that one's voice: its pieces go there anyway).
/// Every local speaker then takes its nearest speaker, and the per-chunk constraint is applied
/// again. `None` when no speaker splits (or the result would exceed `max_speakers`).
pub fn split_by_pieces(
    embeddings: &[LocalEmbedding],
    labels: &[usize],
    centroids: &[Vec<f32>],
    threshold: f32,
    margin: f32,
    cfg: &DiarizeConfig,
) -> Option<(Vec<usize>, Vec<Vec<f32>>)> {
    let mut kept: Vec<Vec<f32>> = Vec::with_capacity(centroids.len());
    // (the speaker it came from, the group's centroid)
    let mut shed: Vec<(usize, Vec<f32>)> = Vec::new();
    for (c, centroid) in centroids.iter().enumerate() {
        let pieces = distinct_pieces(embeddings, labels, c);
        let groups = two_means(&pieces);
        let sizes = [0, 1].map(|k| groups.iter().filter(|&&g| g == k).count());
        let means = [0, 1].map(|k| {
            unit_mean(
                pieces
                    .iter()
                    .zip(&groups)
                    .filter(|(_, g)| **g == k)
                    .map(|(p, _)| *p),
            )
        });
        let enough = sizes.iter().all(|&n| n >= cfg.split_min_pieces.max(1));
        if enough && cluster::dot(&means[0], &means[1]) < threshold + margin {
            let larger = usize::from(sizes[1] > sizes[0]);
            kept.push(means[larger].clone());
            shed.push((c, means[1 - larger].clone()));
        } else {
            kept.push(centroid.clone());
        }
    }
    if shed.is_empty() {
        return None;
    }
    let n_kept = kept.len();
    let mut centroids = kept;
    for (from, group) in shed {
        let someone_else = centroids[..n_kept]
            .iter()
            .enumerate()
            .any(|(c, centroid)| c != from && cluster::dot(&group, centroid) >= threshold);
        if !someone_else {
            centroids.push(group);
        }
    }
    if centroids.len() > cfg.max_speakers.max(1) {
        return None;
    }
    let mut labels: Vec<usize> = embeddings
        .iter()
        .map(|e| nearest_centroid(&e.embedding, &centroids))
        .collect();
    constrain_per_chunk(embeddings, &centroids, &mut labels);
    Some((labels, centroids))
}

/// Per global speaker, its speech alone (no one else active) in ms in the per-frame speaker
/// sets of [`reconstruct`]. Alone rather than all speech: on the AMI tuning half the stray
/// speakers of overlap-heavy clips (tst00: one voice in three) have seconds of speech, nearly
/// all of it overlapped; counted with overlap, no minimum up to 4 s removed them.
pub fn alone_ms_per_speaker(active: &[Vec<usize>], n_clusters: usize) -> Vec<u64> {
    let mut frames = vec![0u64; n_clusters];
    for set in active.iter().filter(|set| set.len() == 1) {
        for &c in set {
            if let Some(n) = frames.get_mut(c) {
                *n += 1;
            }
        }
    }
    let frame_us = (FRAME_STEP_SAMPLES * 1000 / SAMPLES_PER_MS) as u64;
    frames.into_iter().map(|n| n * frame_us / 1000).collect()
}

/// pyannote's small-cluster rule in seconds of speech ([`DiarizeConfig::segment_min_speaker_ms`]):
/// a speaker with less speech alone than `min_ms` is not a person of its own but a stray part of
/// someone (an overlap, a cough, one voice segmentation cut in three): its local speakers join
/// the large speaker whose centroid is most alike, as pyannote's `AgglomerativeClustering`
/// reassigns clusters under `min_cluster_size`. The largest small ones stay when fewer than
/// `min_speakers` would be left (at least one always stays), and so do the speakers `known`
/// marks (an enrolled voice's own: [`super::voices::enrolled_clusters`]). Then the per-chunk
/// constraint is applied again. `None` when every speaker is large enough.
pub fn absorb_small_speakers(
    embeddings: &[LocalEmbedding],
    labels: &[usize],
    centroids: &[Vec<f32>],
    speech_ms: &[u64],
    min_ms: u64,
    min_speakers: usize,
    known: &[bool],
) -> Option<(Vec<usize>, Vec<Vec<f32>>)> {
    let stays = |c: usize| speech_ms[c] >= min_ms || known.get(c).copied().unwrap_or(false);
    let mut by_speech: Vec<usize> = (0..centroids.len()).collect();
    // Speakers that stay first, then by speech.
    by_speech.sort_by(|&a, &b| {
        stays(b)
            .cmp(&stays(a))
            .then(speech_ms[b].cmp(&speech_ms[a]))
            .then(a.cmp(&b))
    });
    let large_enough = by_speech.iter().filter(|&&c| stays(c)).count();
    let keep = large_enough.max(min_speakers).max(1).min(by_speech.len());
    if keep == by_speech.len() {
        return None;
    }
    let mut large: Vec<usize> = by_speech[..keep].to_vec();
    large.sort_unstable();
    let kept: Vec<Vec<f32>> = large.iter().map(|&c| centroids[c].clone()).collect();
    let new_label = |c: usize| match large.iter().position(|&l| l == c) {
        Some(i) => i,
        None => nearest_centroid(&centroids[c], &kept),
    };
    let mut labels: Vec<usize> = labels.iter().map(|&c| new_label(c)).collect();
    constrain_per_chunk(embeddings, &kept, &mut labels);
    Some((labels, kept))
}

/// Speakers whose voices are at least `min_cos` alike become one
/// ([`DiarizeConfig::segment_merge_above`]): the most alike pair first, the merged centroid
/// recomputed from its local speakers and every voice made again (`voices(labels, centroids)`:
/// one vector per speaker), until no pair is that alike; then the per-chunk constraint is
/// applied again. Why: average linkage compares clusters by their mean pairwise similarity,
/// which for a voice that varies a lot stays under the threshold however many of its
/// embeddings there are, so on long recordings such a voice ends as several speakers (on the
/// 90 min long90t, centroids 0.9-0.99 alike; a voice recorded in many sessions, as July's GSM
/// prompts in a 30 min interview, as several of 20-40 s). `None` when none merge.
pub fn merge_alike_speakers(
    embeddings: &[LocalEmbedding],
    labels: &[usize],
    centroids: &[Vec<f32>],
    min_cos: f32,
    voices: impl Fn(&[usize], &[Vec<f32>]) -> Vec<Vec<f32>>,
) -> Option<(Vec<usize>, Vec<Vec<f32>>)> {
    let mut labels = labels.to_vec();
    let mut centroids = centroids.to_vec();
    let mut merged = false;
    loop {
        let voices = voices(&labels, &centroids);
        let mut best: Option<(usize, usize, f32)> = None;
        for a in 0..voices.len() {
            for b in a + 1..voices.len() {
                let c = cluster::dot(&voices[a], &voices[b]);
                if c >= min_cos && best.is_none_or(|(_, _, d)| c > d) {
                    best = Some((a, b, c));
                }
            }
        }
        let Some((a, b, _)) = best else { break };
        merged = true;
        for l in labels.iter_mut() {
            if *l == b {
                *l = a;
            } else if *l > b {
                *l -= 1;
            }
        }
        centroids.remove(b);
        centroids[a] = unit_mean(
            embeddings
                .iter()
                .zip(&labels)
                .filter(|(_, l)| **l == a)
                .map(|(e, _)| e.embedding.as_slice()),
        );
    }
    if !merged {
        return None;
    }
    constrain_per_chunk(embeddings, &centroids, &mut labels);
    Some((labels, centroids))
}

/// Index of the centroid most alike `v` (lowest index on ties).
fn nearest_centroid(v: &[f32], centroids: &[Vec<f32>]) -> usize {
    (0..centroids.len())
        .max_by(|&a, &b| {
            cluster::dot(v, &centroids[a])
                .total_cmp(&cluster::dot(v, &centroids[b]))
                .then(b.cmp(&a))
        })
        .unwrap_or(0)
}

/// The pieces of the local speakers labelled `c`, each once (a timeline piece belongs to the
/// local speakers of every chunk it lies in, with the same embedding), in order.
fn distinct_pieces<'a>(
    embeddings: &'a [LocalEmbedding],
    labels: &[usize],
    c: usize,
) -> Vec<&'a [f32]> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<&[f32]> = Vec::new();
    for (e, _) in embeddings.iter().zip(labels).filter(|(_, l)| **l == c) {
        for p in &e.pieces {
            let bits: Vec<u32> = p.embedding.iter().map(|x| x.to_bits()).collect();
            if seen.insert(bits) {
                out.push(&p.embedding);
            }
        }
    }
    out
}

/// Two groups (0/1) of unit vectors by two-means, started from the point least alike their
/// mean and the point least alike that one (fixed order, ties to the first: deterministic).
/// Fewer than two points: all in group 0.
fn two_means(points: &[&[f32]]) -> Vec<usize> {
    let n = points.len();
    if n < 2 {
        return vec![0; n];
    }
    let least_alike = |to: &[f32]| {
        (0..n)
            .min_by(|&i, &j| {
                cluster::dot(points[i], to)
                    .total_cmp(&cluster::dot(points[j], to))
                    .then(i.cmp(&j))
            })
            .unwrap_or(0)
    };
    let a = least_alike(&unit_mean(points.iter().copied()));
    let b = least_alike(points[a]);
    let mut means = [points[a].to_vec(), points[b].to_vec()];
    let mut groups = Vec::new();
    for _ in 0..20 {
        let next: Vec<usize> = points
            .iter()
            .map(|p| usize::from(cluster::dot(p, &means[1]) > cluster::dot(p, &means[0])))
            .collect();
        if next == groups {
            break;
        }
        groups = next;
        for (k, mean) in means.iter_mut().enumerate() {
            let members = points.iter().zip(&groups).filter(|(_, g)| **g == k);
            if members.clone().next().is_some() {
                *mean = unit_mean(members.map(|(p, _)| *p));
            }
        }
    }
    groups
}

/// The unit-length mean of unit vectors (empty: an empty vector).
fn unit_mean<'a>(vectors: impl Iterator<Item = &'a [f32]>) -> Vec<f32> {
    let mut sum: Vec<f32> = Vec::new();
    for v in vectors {
        if sum.is_empty() {
            sum = vec![0.0; v.len()];
        }
        sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
    }
    super::embed::l2_normalize(&mut sum);
    sum
}

/// pyannote's `min_cluster_size` heuristic: at most `wanted`, and at most a tenth of the
/// clustered embeddings (at least 1), so a short recording's quieter people still count.
fn min_cluster_size(wanted: usize, reliable: &[bool]) -> usize {
    let n = reliable.iter().filter(|&&r| r).count();
    wanted.min(((n as f64 * 0.1).round() as usize).max(1))
}

/// Within each chunk, gives its local speakers distinct global speakers, maximising the total
/// similarity (at most 3 local speakers: every assignment is tried).
fn constrain_per_chunk(
    embeddings: &[LocalEmbedding],
    centroids: &[Vec<f32>],
    labels: &mut [usize],
) {
    let k = centroids.len();
    let mut i = 0;
    while i < embeddings.len() {
        let chunk = embeddings[i].chunk;
        let end = (i..embeddings.len())
            .find(|&j| embeddings[j].chunk != chunk)
            .unwrap_or(embeddings.len());
        let members: Vec<usize> = (i..end).collect();
        if members.len() > 1 && members.len() <= k {
            let sims: Vec<Vec<f32>> = members
                .iter()
                .map(|&m| {
                    centroids
                        .iter()
                        .map(|c| cluster::dot(&embeddings[m].embedding, c))
                        .collect()
                })
                .collect();
            let mut best: Option<(f32, Vec<usize>)> = None;
            let mut current = Vec::with_capacity(members.len());
            best_assignment(&sims, k, &mut current, 0.0, &mut best);
            if let Some((_, choice)) = best {
                for (&m, c) in members.iter().zip(choice) {
                    labels[m] = c;
                }
            }
        }
        i = end;
    }
}

/// Exhaustive search for distinct clusters maximising the summed similarity (first found wins
/// ties, so the result is deterministic).
fn best_assignment(
    sims: &[Vec<f32>],
    k: usize,
    current: &mut Vec<usize>,
    score: f32,
    best: &mut Option<(f32, Vec<usize>)>,
) {
    if current.len() == sims.len() {
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            *best = Some((score, current.clone()));
        }
        return;
    }
    let row = &sims[current.len()];
    for (c, &sim) in row.iter().enumerate().take(k) {
        if current.contains(&c) {
            continue;
        }
        current.push(c);
        best_assignment(sims, k, current, score + sim, best);
        current.pop();
    }
}

/// Per global frame (step [`FRAME_STEP_SAMPLES`] from sample 0): the active global speakers,
/// as sorted cluster indices (pyannote's `reconstruct` + `to_diarization`): the frame's speaker
/// count (averaged over the chunks covering it) goes to the speakers heard there by the most
/// chunks. Summed over chunks, as pyannote does (`skip_average`): a local speaker the per-chunk
/// constraint pushed onto a second-best speaker in one chunk does not outvote the speaker
/// three other chunks hear in the same frames (the bundled sample's "Oravec 2002" went to
/// another person that way).
pub(crate) fn reconstruct(
    seg: &LocalSegmentation,
    embeddings: &[LocalEmbedding],
    labels: &[usize],
    n_clusters: usize,
) -> Vec<Vec<usize>> {
    let runs: Vec<Vec<(usize, usize)>> = labels.iter().map(|&l| vec![(0, l)]).collect();
    reconstruct_runs(seg, embeddings, &runs, n_clusters)
}

/// Per embedded local speaker, its global speaker from each piece on (`(first_frame, cluster)`,
/// in frame order): a piece much nearer another centroid than its own speaker's (by at least
/// `margin`) takes that one, so a voice segmentation left inside another's local speaker still
/// gets its own frames.
pub(crate) fn piece_runs(
    embeddings: &[LocalEmbedding],
    labels: &[usize],
    centroids: &[Vec<f32>],
    margin: f32,
) -> Vec<Vec<(usize, usize)>> {
    embeddings
        .iter()
        .zip(labels)
        .map(|(e, &own)| {
            let mut runs = vec![(0, own)];
            for p in &e.pieces {
                let label = piece_speaker(p, own, centroids, margin);
                if runs.len() == 1 && p.first_frame == e.pieces[0].first_frame {
                    runs[0].1 = label;
                } else if runs.last().is_some_and(|r| r.1 != label) {
                    runs.push((p.first_frame, label));
                }
            }
            runs
        })
        .collect()
}

/// The global speaker of a piece of a local speaker labelled `own`: the nearest centroid when
/// it beats `own`'s by at least `margin`, else `own`.
pub(crate) fn piece_speaker(
    piece: &Piece,
    own: usize,
    centroids: &[Vec<f32>],
    margin: f32,
) -> usize {
    let own_sim = centroids
        .get(own)
        .map_or(0.0, |c| cluster::dot(&piece.embedding, c));
    let best = centroids
        .iter()
        .enumerate()
        .map(|(c, centroid)| (cluster::dot(&piece.embedding, centroid), c))
        .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
    match best {
        Some((sim, c)) if sim - own_sim >= margin => c,
        _ => own,
    }
}

/// [`reconstruct`] with each local speaker's global speaker given per run of frames.
pub(crate) fn reconstruct_runs(
    seg: &LocalSegmentation,
    embeddings: &[LocalEmbedding],
    runs: &[Vec<(usize, usize)>],
    n_clusters: usize,
) -> Vec<Vec<usize>> {
    let n_frames = seg.n_samples.div_ceil(FRAME_STEP_SAMPLES);
    let mut count_sum = vec![0f32; n_frames];
    let mut count_n = vec![0u32; n_frames];
    let mut act_sum = vec![0f32; n_frames * n_clusters];
    let mut runs_of = vec![vec![None::<&[(usize, usize)]>; LOCAL_SPEAKERS]; seg.chunk_starts.len()];
    for (e, r) in embeddings.iter().zip(runs) {
        runs_of[e.chunk][e.local] = Some(r.as_slice());
    }
    let global_at = |chunk: usize, k: usize, f: usize| -> Option<usize> {
        let r = runs_of[chunk][k]?;
        r.iter()
            .rev()
            .find(|(first, _)| *first <= f)
            .or(r.first())
            .map(|x| x.1)
    };
    for (chunk, (&start, frames)) in seg.chunk_starts.iter().zip(&seg.active).enumerate() {
        let offset = (start as f64 / FRAME_STEP_SAMPLES as f64).round() as usize;
        let present: Vec<usize> = {
            let mut p: Vec<usize> = runs_of[chunk]
                .iter()
                .flatten()
                .flat_map(|r| r.iter().map(|x| x.1))
                .collect();
            p.sort_unstable();
            p.dedup();
            p
        };
        for (f, &bits) in frames.iter().enumerate().take(CHUNK_FRAMES) {
            let g = offset + f;
            if g >= n_frames {
                break;
            }
            count_sum[g] += bits.count_ones() as f32;
            count_n[g] += 1;
            for &c in &present {
                let on = (0..LOCAL_SPEAKERS)
                    .any(|k| bits & (1 << k) != 0 && global_at(chunk, k, f) == Some(c));
                act_sum[g * n_clusters + c] += f32::from(u8::from(on));
            }
        }
    }
    (0..n_frames)
        .map(|g| {
            if count_n[g] == 0 || n_clusters == 0 {
                return Vec::new();
            }
            let count = (count_sum[g] / count_n[g] as f32).round() as usize;
            let mut scored: Vec<(f32, usize)> = (0..n_clusters)
                .map(|c| (act_sum[g * n_clusters + c], c))
                .filter(|&(a, _)| a > 0.0)
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut top: Vec<usize> = scored.into_iter().take(count).map(|(_, c)| c).collect();
            top.sort_unstable();
            top
        })
        .collect()
}

/// Turns per cluster from the per-frame speaker sets: runs of frames, split where the overlap
/// state changes. Returns `(cluster, start_ms, end_ms, overlap)` sorted by cluster then start.
pub(crate) fn frame_turns(
    active: &[Vec<usize>],
    n_clusters: usize,
) -> Vec<(usize, u64, u64, bool)> {
    let to_ms = |frame: usize| {
        let sample = frame * FRAME_STEP_SAMPLES + (FRAME_SPAN_SAMPLES - FRAME_STEP_SAMPLES) / 2;
        (sample / SAMPLES_PER_MS) as u64
    };
    let mut out = Vec::new();
    for c in 0..n_clusters {
        // The run being built: its first frame and whether it is overlapped.
        let mut run: Option<(usize, bool)> = None;
        for f in 0..=active.len() {
            let here = active
                .get(f)
                .and_then(|set| set.contains(&c).then_some(set.len() > 1));
            if run.map(|r| r.1) != here {
                if let Some((start, overlap)) = run {
                    out.push((c, to_ms(start), to_ms(f), overlap));
                }
                run = here.map(|overlap| (f, overlap));
            }
        }
    }
    out
}

/// Speaker turns in the form [`super::turns`] uses: `SpeakerTurn`s with ids given by first
/// appearance, plus the cluster index of each speaker in id order.
pub(crate) fn number_speakers(raw: &[(usize, u64, u64, bool)]) -> (Vec<usize>, Vec<SpeakerTurn>) {
    let mut first: Vec<(u64, usize)> = Vec::new();
    for &(c, s, _, _) in raw {
        match first.iter_mut().find(|(_, cc)| *cc == c) {
            Some(entry) => entry.0 = entry.0.min(s),
            None => first.push((s, c)),
        }
    }
    first.sort_unstable();
    let order: Vec<usize> = first.iter().map(|&(_, c)| c).collect();
    let mut turns: Vec<SpeakerTurn> = raw
        .iter()
        .filter(|t| t.2 > t.1)
        .map(|&(c, start_ms, end_ms, overlap)| SpeakerTurn {
            start_ms,
            end_ms,
            speaker: super::turns::speaker_id(order.iter().position(|&o| o == c).unwrap_or(0)),
            overlap,
        })
        .collect();
    turns.sort_by(|a, b| {
        (a.start_ms, a.end_ms, &a.speaker).cmp(&(b.start_ms, b.end_ms, &b.speaker))
    });
    (order, turns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_voice_across_a_chunk_seam_is_one_stretch_embedded_once() {
        // Two chunks 2.5 s apart; local speaker 0 of chunk 0 and local speaker 1 of chunk 1 are
        // one voice speaking alone from 2 s to 8.5 s, then nobody; chunk 1 also hears its
        // speaker 0 alone from 10 s on.
        let starts = vec![0, 40_000];
        let frame_at = |start: usize, s: f64| {
            ((s * 16_000.0 - (start + FRAME_SPAN_SAMPLES / 2) as f64) / FRAME_STEP_SAMPLES as f64)
                .round() as usize
        };
        let mut active = vec![vec![0u8; CHUNK_FRAMES]; 2];
        active[0][frame_at(0, 2.0)..frame_at(0, 8.5)].fill(0b001);
        active[1][..frame_at(40_000, 8.5)].fill(0b010);
        active[1][frame_at(40_000, 10.0)..].fill(0b001);
        let seg = LocalSegmentation {
            n_samples: 200_000,
            chunk_starts: starts,
            active,
        };
        let pieces = timeline_pieces(&seg, PIECE_MS);
        // 2–8.5 s: 6.5 s, in 3 pieces of about 2 s; 10–12.5 s: one piece.
        let seconds: Vec<f64> = pieces
            .iter()
            .map(|(a, b)| (b - a) as f64 / 16_000.0)
            .collect();
        assert_eq!(pieces.len(), 4, "{seconds:?}");
        assert!(
            seconds[..3].iter().all(|s| (2.1..=2.25).contains(s)),
            "{seconds:?}"
        );
        assert!(
            pieces.windows(2).all(|w| w[0].1 <= w[1].0),
            "pieces overlap"
        );
        // Each piece belongs to the local speaker its chunk hears alone there.
        let embedded: Vec<(usize, usize, Vec<f32>)> = pieces
            .iter()
            .enumerate()
            .map(|(i, &(a, b))| (a, b, vec![i as f32, 1.0]))
            .collect();
        let local = local_speakers_from_pieces(&seg, &embedded);
        let owners: Vec<(usize, usize, usize)> = local
            .iter()
            .map(|e| (e.chunk, e.local, e.pieces.len()))
            .collect();
        assert_eq!(owners, vec![(0, 0, 3), (1, 0, 0), (1, 1, 3)]);
    }

    #[test]
    fn a_speaker_whose_pieces_hold_two_voices_is_split() {
        let unit = |v: [f32; 3]| {
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.map(|x| x / n).to_vec()
        };
        let piece = |first_frame, v: [f32; 3]| Piece {
            first_frame,
            embedding: unit(v),
        };
        // One local speaker per chunk, all clustered as one speaker; their pieces are voice A
        // (x) and voice B (y), slightly different each time.
        let local = |chunk, pieces: Vec<Piece>| LocalEmbedding {
            chunk,
            local: 0,
            alone_ms: 8000,
            embedding: unit([0.8, 0.6, 0.0]),
            pieces,
        };
        let two_voices = vec![
            local(
                0,
                vec![piece(0, [1.0, 0.1, 0.0]), piece(100, [0.1, 1.0, 0.0])],
            ),
            local(
                1,
                vec![piece(0, [1.0, 0.0, 0.1]), piece(100, [0.0, 1.0, 0.1])],
            ),
        ];
        let cfg = DiarizeConfig {
            split_min_pieces: 2,
            ..DiarizeConfig::default()
        };
        let centroids = vec![unit([0.8, 0.6, 0.0])];
        let (labels, split) =
            split_by_pieces(&two_voices, &[0, 0], &centroids, 0.5, 0.0, &cfg).unwrap();
        assert_eq!(split.len(), 2);
        assert!(split.iter().any(|c| c[0] > 0.95) && split.iter().any(|c| c[1] > 0.95));
        assert_eq!(labels.len(), 2);
        // Fewer pieces per group than asked, or one voice throughout: no split.
        let strict = DiarizeConfig {
            split_min_pieces: 3,
            ..DiarizeConfig::default()
        };
        assert!(split_by_pieces(&two_voices, &[0, 0], &centroids, 0.5, 0.0, &strict).is_none());
        let one_voice = vec![
            local(
                0,
                vec![piece(0, [1.0, 0.1, 0.0]), piece(100, [1.0, 0.0, 0.1])],
            ),
            local(
                1,
                vec![piece(0, [1.0, 0.1, 0.1]), piece(100, [1.0, 0.2, 0.0])],
            ),
        ];
        assert!(split_by_pieces(&one_voice, &[0, 0], &centroids, 0.5, 0.0, &cfg).is_none());
        // Two voices 0.6 alike, split with a margin of 0.2 over the threshold 0.5: the smaller
        // group is a new speaker though it is as alike as the threshold to the group it left.
        let alike = vec![
            local(
                0,
                vec![piece(0, [1.0, 0.0, 0.0]), piece(100, [0.6, 0.8, 0.0])],
            ),
            local(
                1,
                vec![piece(0, [1.0, 0.0, 0.05]), piece(100, [0.6, 0.8, 0.05])],
            ),
        ];
        let (_, split) = split_by_pieces(&alike, &[0, 0], &centroids, 0.5, 0.2, &cfg).unwrap();
        assert_eq!(split.len(), 2);
    }

    #[test]
    fn chunks_cover_the_recording() {
        assert_eq!(chunk_starts(1000, 40_000), vec![0]);
        assert_eq!(chunk_starts(CHUNK_SAMPLES, 40_000), vec![0]);
        assert_eq!(chunk_starts(CHUNK_SAMPLES + 1, 40_000), vec![0, 40_000]);
        let s = chunk_starts(30 * 16_000, 40_000);
        assert_eq!(
            s.last().map(|l| l + CHUNK_SAMPLES >= 30 * 16_000),
            Some(true)
        );
        assert_eq!(s.len(), 9);
    }

    /// A local speaker of `chunk` with a 2-d embedding and 3 s of speech alone, no pieces.
    fn local_2d(chunk: usize, local: usize, v: [f32; 2]) -> LocalEmbedding {
        LocalEmbedding {
            chunk,
            local,
            alone_ms: 3000,
            embedding: v.to_vec(),
            pieces: Vec::new(),
        }
    }

    #[test]
    fn a_chunk_never_gives_two_local_speakers_one_global_speaker() {
        // Both local speakers of chunk 0 are nearest to centroid 0; the second fits 1 better
        // than the first does.
        let embeddings = [
            local_2d(0, 0, [1.0, 0.0]),
            local_2d(0, 1, [0.8, 0.6]),
            local_2d(1, 0, [0.0, 1.0]),
        ];
        let centroids = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let mut labels = vec![0, 0, 1];
        constrain_per_chunk(&embeddings, &centroids, &mut labels);
        assert_eq!(labels, vec![0, 1, 1]);
    }

    #[test]
    fn a_speaker_with_little_speech_alone_joins_the_most_alike_large_one() {
        let embeddings = [
            local_2d(0, 0, [1.0, 0.0]),
            local_2d(1, 0, [0.0, 1.0]),
            local_2d(2, 0, [0.6, 0.8]),
        ];
        let centroids = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.6, 0.8]];
        // Speaker 2 speaks alone for 2 frames only (the overlapped frames do not count).
        let frame = vec![vec![0]; 300];
        let mut active = [frame.clone(), vec![vec![1]; 300], vec![vec![2]; 2]].concat();
        active.extend(vec![vec![0, 2]; 300]);
        let alone = alone_ms_per_speaker(&active, 3);
        assert!(alone[2] < 100 && alone[0] > 4000, "{alone:?}");
        let (labels, kept) =
            absorb_small_speakers(&embeddings, &[0, 1, 2], &centroids, &alone, 750, 1, &[])
                .unwrap();
        assert_eq!(labels, vec![0, 1, 1]);
        assert_eq!(kept.len(), 2);
        // min_speakers keeps it; nothing small: nothing to do.
        assert!(
            absorb_small_speakers(&embeddings, &[0, 1, 2], &centroids, &alone, 750, 3, &[])
                .is_none()
        );
        assert!(
            absorb_small_speakers(&embeddings, &[0, 1, 2], &centroids, &alone, 0, 1, &[]).is_none()
        );
        // An enrolled voice's speaker stays however little it says.
        let known = [false, false, true];
        assert!(
            absorb_small_speakers(&embeddings, &[0, 1, 2], &centroids, &alone, 750, 1, &known)
                .is_none()
        );
    }

    #[test]
    fn speakers_with_nearly_the_same_voice_become_one() {
        let embeddings = [
            local_2d(0, 0, [1.0, 0.0]),
            local_2d(1, 0, [0.99, 0.141]),
            local_2d(2, 0, [0.0, 1.0]),
        ];
        let centroids = vec![vec![1.0, 0.0], vec![0.99, 0.141], vec![0.0, 1.0]];
        // Each speaker's voice: here its centroid.
        let voices = |_: &[usize], c: &[Vec<f32>]| c.to_vec();
        let (labels, merged) =
            merge_alike_speakers(&embeddings, &[0, 1, 2], &centroids, 0.85, voices).unwrap();
        assert_eq!(labels, vec![0, 0, 1]);
        assert_eq!(merged.len(), 2);
        // Distinct voices stay apart.
        assert!(merge_alike_speakers(&embeddings, &[0, 1, 2], &centroids, 0.999, voices).is_none());
        // The voices compared are the ones given, made again after each merge: speakers 0 and 2
        // sound alike although their centroids do not (and each chunk keeps its local speaker
        // on the speaker it had: one per chunk, nothing to resolve).
        let swapped = |l: &[usize], c: &[Vec<f32>]| {
            let mut v = c.to_vec();
            if l.contains(&2) {
                v[2] = c[0].clone();
            }
            v
        };
        let (labels, _) =
            merge_alike_speakers(&embeddings, &[0, 1, 2], &centroids, 0.999, swapped).unwrap();
        assert_eq!(labels, vec![0, 1, 0]);
    }

    #[test]
    fn a_piece_nearer_another_speaker_takes_its_frames() {
        let piece = |first_frame, v: [f32; 2]| Piece {
            first_frame,
            embedding: v.to_vec(),
        };
        // Clustered as speaker 0 as a whole, but its second piece is speaker 1's voice.
        let e = LocalEmbedding {
            chunk: 0,
            local: 0,
            alone_ms: 8000,
            embedding: vec![0.8, 0.6],
            pieces: vec![
                piece(10, [1.0, 0.0]),
                piece(200, [0.1, 0.99]),
                piece(320, [0.2, 0.98]),
            ],
        };
        let centroids = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        assert_eq!(
            piece_runs(std::slice::from_ref(&e), &[0], &centroids, 0.0),
            vec![vec![(0, 0), (200, 1)]]
        );
        // A margin larger than the difference keeps the local speaker whole.
        assert_eq!(piece_runs(&[e], &[0], &centroids, 2.0), vec![vec![(0, 0)]]);
        assert_eq!(piece_frames(&(0..100).collect::<Vec<_>>(), 16).len(), 0);
        let frames: Vec<usize> = (0..300).collect();
        let cut = piece_frames(&frames, 16);
        assert_eq!(cut.iter().map(|p| p.len()).collect::<Vec<_>>(), [125, 175]);
    }

    #[test]
    fn a_frame_goes_to_the_speaker_most_chunks_hear_not_one_chunk_alone() {
        // Four chunks 2.5 s apart all cover the frame at 8.3 s. Chunks 0-2 hear local speaker 0
        // (speaker 0) there; chunk 3 hears its local speaker 1 (speaker 1: it could not be
        // speaker 0, whom chunk 3 hears later). One voice per frame, so the frame takes the
        // speaker three chunks hear, as pyannote sums activations over chunks; averaging only
        // over the chunks where a speaker was assigned gave speaker 1 a full score from one.
        let starts = vec![0, 40_000, 80_000, 120_000];
        let mut active = vec![vec![0b001u8; CHUNK_FRAMES]; 4];
        active[3][..100].fill(0b010);
        let seg = LocalSegmentation {
            n_samples: 280_000,
            chunk_starts: starts,
            active,
        };
        let embedding = |chunk, local| LocalEmbedding {
            chunk,
            local,
            alone_ms: 5000,
            embedding: vec![1.0, 0.0],
            pieces: Vec::new(),
        };
        let local = vec![
            embedding(0, 0),
            embedding(1, 0),
            embedding(2, 0),
            embedding(3, 0),
            embedding(3, 1),
        ];
        let frames = reconstruct(&seg, &local, &[0, 0, 0, 0, 1], 2);
        let frame = 120_000 / FRAME_STEP_SAMPLES + 50;
        assert_eq!(frames[frame], vec![0]);
        assert!(!frames.iter().any(|f| f.contains(&1)));
    }

    #[test]
    fn overlapping_frames_give_overlapping_turns() {
        let frames = vec![vec![0], vec![0], vec![0, 1], vec![0, 1], vec![1], vec![]];
        let raw = frame_turns(&frames, 2);
        assert_eq!(raw.len(), 4);
        assert!(raw.iter().filter(|t| t.3).count() == 2);
        let (order, turns) = number_speakers(&raw);
        assert_eq!(order, vec![0, 1]);
        let a = turns
            .iter()
            .find(|t| t.speaker == "SPEAKER_00" && t.overlap)
            .unwrap();
        let b = turns
            .iter()
            .find(|t| t.speaker == "SPEAKER_01" && t.overlap)
            .unwrap();
        assert_eq!((a.start_ms, a.end_ms), (b.start_ms, b.end_ms));
    }
}
