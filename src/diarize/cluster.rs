//! Grouping window embeddings into speakers when the number of speakers is unknown.
//!
//! 1. **Agglomerative clustering** (average linkage on cosine distance, built with the
//!    nearest-neighbour-chain algorithm in O(n²)) of the full-length windows, which are the
//!    reliable ones. Above [`MAX_AHC_POINTS`] windows an evenly spaced subset is clustered and
//!    the rest join in step 3, so memory stays bounded (≈ 16 MB) on recordings of any length.
//! 2. **Choosing the count**: the dendrogram is cut where merging would join clusters whose
//!    average similarity is below `threshold` (or into `num_speakers` when given). Clusters
//!    with fewer than `min_cluster_windows` windows are outliers (noise, overlap, laughter), not
//!    speakers: when too few large clusters remain for `min_speakers`/`num_speakers`, the cut is
//!    made finer until enough appear; the largest clusters (at most `max_speakers`, or
//!    `num_speakers`) are kept and every other window joins its nearest kept cluster.
//! 3. **Refinement**: every window (short ones too) goes to its nearest centroid, centroids are
//!    recomputed from the full windows, a few rounds (spherical k-means).
//!
//! Promises: deterministic (fixed orders, ties broken by index, no randomness); labels are
//! `0..k` with no gaps; with `n ≥ 1` windows there is at least one speaker and never more than
//! `max_speakers` (or exactly `min(num_speakers, n)` when given, unless refinement empties a
//! cluster, which can only lower the count).

use candle_core::{Device, Tensor};

use super::embed::l2_normalize;

/// Most windows clustered by the O(n²) agglomerative step (a 2000 × 2000 f32 matrix).
pub const MAX_AHC_POINTS: usize = 2000;
/// Rounds of centroid refinement.
const REFINE_ROUNDS: usize = 5;

/// What the clustering needs to know.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClusterParams {
    /// Exact speaker count, when known.
    pub num_speakers: Option<usize>,
    /// Fewest speakers to return.
    pub min_speakers: usize,
    /// Most speakers to return.
    pub max_speakers: usize,
    /// Clusters whose average cosine similarity is at least this are the same speaker.
    pub threshold: f32,
    /// Clusters with fewer windows than this are outliers, not speakers.
    pub min_cluster_windows: usize,
}

/// Speaker labels (`0..k`) of each window, and the `k` unit-length centroids.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Clustering {
    pub labels: Vec<usize>,
    pub centroids: Vec<Vec<f32>>,
}

/// Clusters `embeddings` (unit length); `reliable[i]` marks full-length windows.
pub(crate) fn cluster(
    embeddings: &[Vec<f32>],
    reliable: &[bool],
    params: &ClusterParams,
) -> Result<Clustering, candle_core::Error> {
    let n = embeddings.len();
    if n == 0 {
        return Ok(Clustering {
            labels: Vec::new(),
            centroids: Vec::new(),
        });
    }
    let mut points: Vec<usize> = (0..n).filter(|&i| reliable[i]).collect();
    if points.len() < 2 {
        points = (0..n).collect();
    }
    let points = evenly_spaced(&points, MAX_AHC_POINTS);
    let sample: Vec<&[f32]> = points.iter().map(|&i| embeddings[i].as_slice()).collect();

    let merges = average_linkage(&sample)?;
    let labels = choose_clusters(&sample, &merges, params);

    let mut centroids = centroids_of(&sample, &labels);
    let weights: Vec<bool> = (0..n).map(|i| reliable[i]).collect();
    let mut all_labels = nearest_centroid(embeddings, &centroids);
    for _ in 0..REFINE_ROUNDS {
        let (kept, relabelled) = refit(embeddings, &weights, &all_labels, centroids.len());
        let next = nearest_centroid(embeddings, &kept);
        let stable = next == relabelled;
        centroids = kept;
        all_labels = next;
        if stable {
            break;
        }
    }
    let (refined, refined_centroids) = compact(all_labels, centroids);
    let wanted = cluster_sizes(&labels).len();
    let promised = params.num_speakers.is_some() || refined_centroids.len() < params.min_speakers;
    if !promised || refined_centroids.len() >= wanted {
        return Ok(Clustering {
            labels: refined,
            centroids: refined_centroids,
        });
    }
    // A fixed count (or minimum) is a promise, but refinement emptied a cluster (two voices the
    // model hears as alike): keep the agglomerative clusters, the others joining the nearest.
    let initial = centroids_of(&sample, &labels);
    let mut all = nearest_centroid(embeddings, &initial);
    for (&i, &l) in points.iter().zip(&labels) {
        all[i] = l;
    }
    let (labels, centroids) = compact(all, initial);
    Ok(Clustering { labels, centroids })
}

/// At most `max` items of `items`, evenly spaced, first one included.
fn evenly_spaced(items: &[usize], max: usize) -> Vec<usize> {
    if items.len() <= max {
        return items.to_vec();
    }
    (0..max).map(|j| items[j * items.len() / max]).collect()
}

/// One merge of two clusters, identified by a member point each, at a cosine distance.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Merge {
    a: usize,
    b: usize,
    distance: f32,
}

/// The average-linkage dendrogram of unit vectors under cosine distance, as `n - 1` merges
/// sorted by distance (nearest-neighbour chain; average linkage is reducible, so sorting the
/// chain's merges gives the same hierarchy as the naive algorithm).
fn average_linkage(points: &[&[f32]]) -> Result<Vec<Merge>, candle_core::Error> {
    let n = points.len();
    let mut dist = cosine_distances(points)?;
    let mut size = vec![1usize; n];
    let mut active = vec![true; n];
    let mut chain: Vec<usize> = Vec::with_capacity(n);
    let mut merges = Vec::with_capacity(n.saturating_sub(1));
    let mut remaining = n;
    while remaining > 1 {
        if chain.is_empty() {
            chain.push(active.iter().position(|&a| a).unwrap_or(0));
        }
        let a = chain[chain.len() - 1];
        let previous = chain.len().checked_sub(2).map(|i| chain[i]);
        // Nearest active cluster; the chain's previous element wins ties so the chain ends.
        let mut best = previous.unwrap_or(usize::MAX);
        let mut best_d = previous.map_or(f32::INFINITY, |p| dist[a * n + p]);
        for c in 0..n {
            if c != a && active[c] && dist[a * n + c] < best_d {
                best = c;
                best_d = dist[a * n + c];
            }
        }
        if Some(best) != previous {
            chain.push(best);
            continue;
        }
        chain.truncate(chain.len() - 2);
        let (keep, gone) = (a.min(best), a.max(best));
        merges.push(Merge {
            a: keep,
            b: gone,
            distance: best_d,
        });
        // Lance–Williams update for average linkage.
        let (sk, sg) = (size[keep] as f32, size[gone] as f32);
        for c in 0..n {
            if active[c] && c != keep && c != gone {
                let d = (sk * dist[keep * n + c] + sg * dist[gone * n + c]) / (sk + sg);
                dist[keep * n + c] = d;
                dist[c * n + keep] = d;
            }
        }
        size[keep] += size[gone];
        active[gone] = false;
        remaining -= 1;
    }
    merges.sort_by(|x, y| x.distance.total_cmp(&y.distance));
    Ok(merges)
}

/// `1 - cos` between every pair, row-major `n × n`.
fn cosine_distances(points: &[&[f32]]) -> Result<Vec<f32>, candle_core::Error> {
    let n = points.len();
    let dim = points.first().map_or(0, |p| p.len());
    let flat: Vec<f32> = points.iter().flat_map(|p| p.iter().copied()).collect();
    let m = Tensor::from_vec(flat, (n, dim), &Device::Cpu)?;
    let sims = m.matmul(&m.t()?)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(sims.into_iter().map(|s| 1.0 - s).collect())
}

/// The speakers among the sample: the dendrogram is cut (at the threshold, or finer until
/// enough clusters have `min_cluster_windows` members), the largest clusters that the count
/// allows are kept, and every other point joins the nearest kept cluster.
fn choose_clusters(points: &[&[f32]], merges: &[Merge], params: &ClusterParams) -> Vec<usize> {
    let n = points.len();
    let min_size = params.min_cluster_windows.max(1);
    let (wanted_min, wanted_max) = match params.num_speakers {
        Some(k) => (k, k),
        None => (params.min_speakers.max(1), params.max_speakers.max(1)),
    };
    let max_distance = 1.0 - params.threshold;
    let natural = n - merges.iter().filter(|m| m.distance <= max_distance).count();
    let mut k = match params.num_speakers {
        Some(wanted) => wanted.min(n),
        None => natural,
    };
    let mut labels = cut(merges, n, k);
    // Outliers split off first in average linkage, so a cut may need to be finer than the
    // count wanted before that many real (large enough) clusters appear.
    while count_large(&labels, min_size) < wanted_min && k < n {
        k += 1;
        labels = cut(merges, n, k);
    }
    let keep = largest_clusters(&labels, min_size, wanted_max);
    let kept_labels: Vec<usize> = labels
        .iter()
        .map(|l| keep.iter().position(|c| c == l).unwrap_or(usize::MAX))
        .collect();
    let kept_points: Vec<&[f32]> = points
        .iter()
        .zip(&kept_labels)
        .filter(|(_, l)| **l != usize::MAX)
        .map(|(p, _)| *p)
        .collect();
    let kept_only: Vec<usize> = kept_labels
        .iter()
        .copied()
        .filter(|&l| l != usize::MAX)
        .collect();
    let centroids = centroids_of(&kept_points, &kept_only);
    let joined: Vec<usize> = points
        .iter()
        .zip(kept_labels)
        .map(|(p, l)| {
            if l == usize::MAX {
                nearest(p, &centroids, None)
            } else {
                l
            }
        })
        .collect();
    renumber(&joined)
}

/// Clusters with at least `min_size` members.
fn count_large(labels: &[usize], min_size: usize) -> usize {
    cluster_sizes(labels)
        .iter()
        .filter(|&&s| s >= min_size)
        .count()
}

fn cluster_sizes(labels: &[usize]) -> Vec<usize> {
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let mut sizes = vec![0usize; k];
    labels.iter().for_each(|&l| sizes[l] += 1);
    sizes
}

/// Labels of the clusters to keep: those with at least `min_size` members, at most `max` of
/// them (largest first, ties by label), and at least the largest one.
fn largest_clusters(labels: &[usize], min_size: usize, max: usize) -> Vec<usize> {
    let sizes = cluster_sizes(labels);
    let mut by_size: Vec<usize> = (0..sizes.len()).collect();
    by_size.sort_by_key(|&c| (std::cmp::Reverse(sizes[c]), c));
    let mut keep: Vec<usize> = by_size
        .iter()
        .copied()
        .filter(|&c| sizes[c] >= min_size)
        .take(max.max(1))
        .collect();
    if keep.is_empty() {
        keep.extend(by_size.first());
    }
    keep.sort_unstable();
    keep
}

/// Labels after applying the first `n - k` merges, numbered by first member.
fn cut(merges: &[Merge], n: usize, k: usize) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for m in merges.iter().take(n.saturating_sub(k)) {
        let (ra, rb) = (root(&mut parent, m.a), root(&mut parent, m.b));
        let (lo, hi) = (ra.min(rb), ra.max(rb));
        parent[hi] = lo;
    }
    let roots: Vec<usize> = (0..n).map(|i| root(&mut parent, i)).collect();
    renumber(&roots)
}

/// Maps arbitrary ids to `0..k` in order of first appearance.
fn renumber(ids: &[usize]) -> Vec<usize> {
    let mut seen: Vec<usize> = Vec::new();
    ids.iter()
        .map(|id| match seen.iter().position(|s| s == id) {
            Some(p) => p,
            None => {
                seen.push(*id);
                seen.len() - 1
            }
        })
        .collect()
}

/// Unit-length mean of each label's points.
fn centroids_of(points: &[&[f32]], labels: &[usize]) -> Vec<Vec<f32>> {
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let dim = points.first().map_or(0, |p| p.len());
    let mut sums = vec![vec![0f32; dim]; k];
    for (p, &l) in points.iter().zip(labels) {
        sums[l].iter_mut().zip(p.iter()).for_each(|(s, x)| *s += x);
    }
    sums.iter_mut().for_each(|c| l2_normalize(c));
    sums
}

/// Index of the most similar centroid (lowest index on ties), skipping `exclude`.
fn nearest(p: &[f32], centroids: &[Vec<f32>], exclude: Option<usize>) -> usize {
    let mut best = 0;
    let mut best_sim = f32::NEG_INFINITY;
    for (c, centroid) in centroids.iter().enumerate() {
        if Some(c) == exclude {
            continue;
        }
        let sim = dot(p, centroid);
        if sim > best_sim {
            best = c;
            best_sim = sim;
        }
    }
    best
}

pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn nearest_centroid(embeddings: &[Vec<f32>], centroids: &[Vec<f32>]) -> Vec<usize> {
    embeddings
        .iter()
        .map(|e| nearest(e, centroids, None))
        .collect()
}

/// New centroids from the reliable windows of each label (all its windows if it has no
/// reliable one); labels left with no window are dropped. Returns the centroids and the labels
/// renumbered to match them.
fn refit(
    embeddings: &[Vec<f32>],
    reliable: &[bool],
    labels: &[usize],
    k: usize,
) -> (Vec<Vec<f32>>, Vec<usize>) {
    let has_reliable: Vec<bool> = (0..k)
        .map(|c| labels.iter().zip(reliable).any(|(&l, &r)| l == c && r))
        .collect();
    let dim = embeddings.first().map_or(0, |e| e.len());
    let mut sums = vec![vec![0f32; dim]; k];
    let mut counts = vec![0usize; k];
    for ((e, &l), &r) in embeddings.iter().zip(labels).zip(reliable) {
        if r || !has_reliable[l] {
            sums[l].iter_mut().zip(e).for_each(|(s, x)| *s += x);
            counts[l] += 1;
        }
    }
    let kept: Vec<usize> = (0..k).filter(|&c| counts[c] > 0).collect();
    let centroids = kept
        .iter()
        .map(|&c| {
            let mut v = sums[c].clone();
            l2_normalize(&mut v);
            v
        })
        .collect();
    let relabelled = labels
        .iter()
        .map(|l| kept.iter().position(|c| c == l).unwrap_or(0))
        .collect();
    (centroids, relabelled)
}

/// Drops centroids no window chose and renumbers labels `0..k` keeping centroid order.
fn compact(labels: Vec<usize>, centroids: Vec<Vec<f32>>) -> (Vec<usize>, Vec<Vec<f32>>) {
    let used: Vec<usize> = (0..centroids.len())
        .filter(|c| labels.contains(c))
        .collect();
    let labels = labels
        .iter()
        .map(|l| used.iter().position(|c| c == l).unwrap_or(0))
        .collect();
    let centroids = used.iter().map(|&c| centroids[c].clone()).collect();
    (labels, centroids)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit vectors near one of `k` orthogonal directions.
    fn blobs(assign: &[usize], jitter: f32) -> Vec<Vec<f32>> {
        assign
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let mut v = vec![0f32; 16];
                v[c] = 1.0;
                v[8 + i % 8] = jitter;
                l2_normalize(&mut v);
                v
            })
            .collect()
    }

    fn params() -> ClusterParams {
        ClusterParams {
            num_speakers: None,
            min_speakers: 1,
            max_speakers: 16,
            threshold: 0.5,
            min_cluster_windows: 1,
        }
    }

    #[test]
    fn finds_an_unknown_number_of_well_separated_groups() {
        let assign: Vec<usize> = (0..60).map(|i| (i / 4) % 6).collect();
        let e = blobs(&assign, 0.3);
        let c = cluster(&e, &vec![true; e.len()], &params()).unwrap();
        assert_eq!(c.centroids.len(), 6);
        // Same group ⇔ same label.
        for i in 0..e.len() {
            for j in 0..e.len() {
                assert_eq!(assign[i] == assign[j], c.labels[i] == c.labels[j]);
            }
        }
        assert_eq!(c.labels[0], 0, "labels are numbered by first appearance");
    }

    #[test]
    fn fixed_and_bounded_counts_are_obeyed() {
        let assign: Vec<usize> = (0..40).map(|i| i % 4).collect();
        let e = blobs(&assign, 0.3);
        let fixed = ClusterParams {
            num_speakers: Some(2),
            ..params()
        };
        assert_eq!(cluster(&e, &[true; 40], &fixed).unwrap().centroids.len(), 2);
        let capped = ClusterParams {
            max_speakers: 3,
            ..params()
        };
        assert_eq!(
            cluster(&e, &[true; 40], &capped).unwrap().centroids.len(),
            3
        );
        let one_group = blobs(&[0; 10], 0.3);
        let at_least = ClusterParams {
            min_speakers: 2,
            ..params()
        };
        let c = cluster(&one_group, &[true; 10], &at_least).unwrap();
        assert!(c.centroids.len() <= 2 && !c.centroids.is_empty());
    }

    #[test]
    fn tiny_clusters_are_absorbed() {
        let mut assign = vec![0usize; 12];
        assign.extend([1usize; 12]);
        assign.push(2); // one outlier window
        let e = blobs(&assign, 0.2);
        let p = ClusterParams {
            min_cluster_windows: 3,
            ..params()
        };
        let c = cluster(&e, &vec![true; e.len()], &p).unwrap();
        assert_eq!(c.centroids.len(), 2);
    }

    #[test]
    fn degenerate_inputs() {
        let none = cluster(&[], &[], &params()).unwrap();
        assert!(none.labels.is_empty());
        let one = blobs(&[3], 0.0);
        assert_eq!(cluster(&one, &[false], &params()).unwrap().labels, [0]);
    }

    #[test]
    fn subsampling_keeps_ends_and_spacing() {
        let items: Vec<usize> = (0..10).collect();
        assert_eq!(evenly_spaced(&items, 4), [0, 2, 5, 7]);
        assert_eq!(evenly_spaced(&items, 20), items);
    }
}
