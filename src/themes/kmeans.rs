//! Spherical k-means on unit vectors, k-means++ seeding, and the silhouette score that picks k.
//!
//! Deterministic: the only randomness is [`SplitMix64`] from a fixed seed, and the parallel
//! steps (rayon) work on fixed chunks whose results are combined in order, so the same input
//! gives the same clusters whatever the thread count. Memory is O(n·d + k·d), plus an s×s
//! similarity matrix for the silhouette sample (s ≤ [`SILHOUETTE_SAMPLE`]).

use rayon::prelude::*;

use super::vectors::{Matrix, dot, normalise};

/// Largest sample the silhouette is computed on (its similarity matrix is s² floats).
pub const SILHOUETTE_SAMPLE: usize = 1500;

/// Rows per parallel work item. Fixed, so partial sums combine in the same order every run.
const CHUNK: usize = 1024;

/// SplitMix64: tiny, fast, good enough for seeding and sampling, and identical everywhere.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `0..1`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform index in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_f64() * n as f64) as usize % n.max(1)
    }
}

/// `m` distinct indices of `0..n` in increasing order (all of them when `m >= n`).
pub fn sample_indices(n: usize, m: usize, rng: &mut SplitMix64) -> Vec<usize> {
    if m >= n {
        return (0..n).collect();
    }
    // Partial Fisher–Yates over an index vector: O(n) memory, fine for 100k rows.
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..m {
        let j = i + rng.below(n - i);
        idx.swap(i, j);
    }
    let mut chosen = idx[..m].to_vec();
    chosen.sort_unstable();
    chosen
}

/// A k-means result.
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    /// Unit-length centroids, one per cluster.
    pub centroids: Matrix,
    /// The cluster of each row.
    pub labels: Vec<usize>,
    /// Each row's cosine to its centroid.
    pub similarity: Vec<f32>,
    /// Sum of `similarity` (higher is better).
    pub objective: f64,
}

/// Spherical k-means of the unit rows of `x` into `k` clusters: `restarts` k-means++ seedings,
/// the best objective kept.
pub fn kmeans(x: &Matrix, k: usize, restarts: usize, max_iter: usize, seed: u64) -> Clustering {
    let mut rng = SplitMix64::new(seed);
    let mut best: Option<Clustering> = None;
    for _ in 0..restarts.max(1) {
        let init = kmeans_pp(x, k, &mut rng);
        let c = lloyd(x, init, max_iter);
        if best.as_ref().is_none_or(|b| c.objective > b.objective) {
            best = Some(c);
        }
    }
    best.unwrap_or_else(|| lloyd(x, kmeans_pp(x, k, &mut rng), max_iter))
}

/// Greedy k-means++ seeding (as scikit-learn's): squared Euclidean distance between unit
/// vectors (`2 - 2 cos`); at each step `2 + ln k` candidates are drawn in proportion to it and
/// the one that lowers the total distance most is kept. Plain k-means++ often puts two seeds
/// in one cluster when clusters are many; the local trials make that rare.
pub fn kmeans_pp(x: &Matrix, k: usize, rng: &mut SplitMix64) -> Matrix {
    let n = x.rows();
    let mut centroids = Matrix::with_dim(x.dim());
    if n == 0 {
        return centroids;
    }
    let sq = |i: usize, c: &[f32]| f64::from(2.0 - 2.0 * dot(x.row(i), c)).max(0.0);
    let first = rng.below(n);
    centroids.push(x.row(first));
    let mut dist: Vec<f64> = (0..n).map(|i| sq(i, x.row(first))).collect();
    let trials = 2 + (k as f64).ln().floor() as usize;
    while centroids.rows() < k.min(n) {
        let total: f64 = dist.iter().sum();
        let mut best: Option<(usize, f64, Vec<f64>)> = None;
        for _ in 0..trials {
            let pick = if total <= 0.0 {
                rng.below(n)
            } else {
                draw(&dist, rng.next_f64() * total)
            };
            let cand: Vec<f64> = (0..n).map(|i| dist[i].min(sq(i, x.row(pick)))).collect();
            let potential: f64 = cand.iter().sum();
            if best.as_ref().is_none_or(|b| potential < b.1) {
                best = Some((pick, potential, cand));
            }
        }
        if let Some((pick, _, cand)) = best {
            centroids.push(x.row(pick));
            dist = cand;
        }
    }
    centroids
}

/// The index where the running sum of `weights` passes `target` (the last positive one at
/// worst).
fn draw(weights: &[f64], mut target: f64) -> usize {
    let mut last_positive = 0;
    for (i, w) in weights.iter().enumerate() {
        if *w > 0.0 {
            last_positive = i;
            target -= w;
            if target <= 0.0 {
                return i;
            }
        }
    }
    last_positive
}

/// Lloyd iterations from `centroids` until no label changes or `max_iter` rounds.
pub fn lloyd(x: &Matrix, mut centroids: Matrix, max_iter: usize) -> Clustering {
    let mut labels = vec![usize::MAX; x.rows()];
    let mut similarity = vec![0f32; x.rows()];
    for _ in 0..max_iter.max(1) {
        let (new_labels, new_sim) = assign(x, &centroids);
        let changed = new_labels != labels;
        labels = new_labels;
        similarity = new_sim;
        if !changed {
            break;
        }
        centroids = update_centroids(x, &labels, &similarity, centroids.rows());
    }
    let objective = similarity.iter().map(|s| f64::from(*s)).sum();
    Clustering {
        centroids,
        labels,
        similarity,
        objective,
    }
}

/// Each row's nearest centroid (ties: the lower index) and its cosine.
pub fn assign(x: &Matrix, centroids: &Matrix) -> (Vec<usize>, Vec<f32>) {
    let n = x.rows();
    let parts: Vec<(Vec<usize>, Vec<f32>)> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let rows = c * CHUNK..((c + 1) * CHUNK).min(n);
            let mut labels = Vec::with_capacity(rows.len());
            let mut sims = Vec::with_capacity(rows.len());
            for i in rows {
                let (l, s) = nearest(x.row(i), centroids);
                labels.push(l);
                sims.push(s);
            }
            (labels, sims)
        })
        .collect();
    let mut labels = Vec::with_capacity(n);
    let mut sims = Vec::with_capacity(n);
    for (l, s) in parts {
        labels.extend(l);
        sims.extend(s);
    }
    (labels, sims)
}

/// The nearest centroid to `v` and its cosine.
pub fn nearest(v: &[f32], centroids: &Matrix) -> (usize, f32) {
    let mut best = (0, f32::NEG_INFINITY);
    for c in 0..centroids.rows() {
        let s = dot(v, centroids.row(c));
        if s > best.1 {
            best = (c, s);
        }
    }
    best
}

/// New centroids: normalised member sums. An empty cluster takes the row worst served by its
/// own centroid, so k stays k.
fn update_centroids(x: &Matrix, labels: &[usize], sim: &[f32], k: usize) -> Matrix {
    let dim = x.dim();
    let n = x.rows();
    let partial: Vec<Vec<f64>> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut sums = vec![0f64; k * dim];
            for i in c * CHUNK..((c + 1) * CHUNK).min(n) {
                let dst = &mut sums[labels[i] * dim..(labels[i] + 1) * dim];
                for (s, v) in dst.iter_mut().zip(x.row(i)) {
                    *s += f64::from(*v);
                }
            }
            sums
        })
        .collect();
    let mut sums = vec![0f64; k * dim];
    for p in partial {
        for (s, v) in sums.iter_mut().zip(p) {
            *s += v;
        }
    }
    let mut counts = vec![0usize; k];
    for &l in labels {
        counts[l] += 1;
    }
    let mut taken = vec![false; n];
    let mut out = Matrix::with_dim(dim);
    for c in 0..k {
        if counts[c] == 0 {
            let worst = (0..n)
                .filter(|&i| !taken[i])
                .min_by(|&a, &b| sim[a].total_cmp(&sim[b]).then(a.cmp(&b)));
            match worst {
                Some(i) => {
                    taken[i] = true;
                    out.push(x.row(i));
                }
                None => out.push(&vec![0.0; dim]),
            }
            continue;
        }
        let mut v: Vec<f32> = sums[c * dim..(c + 1) * dim]
            .iter()
            .map(|s| *s as f32)
            .collect();
        normalise(&mut v);
        out.push(&v);
    }
    out
}

/// Cosine similarities between all rows of `x` (s × s, row-major).
pub fn gram(x: &Matrix) -> Vec<f32> {
    let s = x.rows();
    let rows: Vec<Vec<f32>> = (0..s)
        .into_par_iter()
        .map(|i| (0..s).map(|j| dot(x.row(i), x.row(j))).collect())
        .collect();
    rows.concat()
}

/// Mean silhouette (cosine distance) of `labels` over the rows behind the `gram` matrix, as
/// scikit-learn computes it: a singleton cluster's member scores 0.
pub fn silhouette(gram: &[f32], labels: &[usize], k: usize) -> f64 {
    let s = labels.len();
    if s < 2 || k < 2 {
        return 0.0;
    }
    let mut sizes = vec![0usize; k];
    for &l in labels {
        sizes[l] += 1;
    }
    let mut total = 0.0;
    let mut dist_sum = vec![0f64; k];
    for i in 0..s {
        dist_sum.iter_mut().for_each(|d| *d = 0.0);
        for j in 0..s {
            if i != j {
                dist_sum[labels[j]] += f64::from(1.0 - gram[i * s + j]);
            }
        }
        let own = labels[i];
        if sizes[own] < 2 {
            continue;
        }
        let a = dist_sum[own] / (sizes[own] - 1) as f64;
        let b = (0..k)
            .filter(|&c| c != own && sizes[c] > 0)
            .map(|c| dist_sum[c] / sizes[c] as f64)
            .fold(f64::INFINITY, f64::min);
        if b.is_finite() && a.max(b) > 0.0 {
            total += (b - a) / a.max(b);
        }
    }
    total / s as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `per` points around each of `k` orthogonal directions, unit length.
    fn blobs(k: usize, per: usize, dim: usize, noise: f32, seed: u64) -> (Matrix, Vec<usize>) {
        let mut rng = SplitMix64::new(seed);
        let mut m = Matrix::with_dim(dim);
        let mut truth = Vec::new();
        for c in 0..k {
            for _ in 0..per {
                let mut v: Vec<f32> = (0..dim)
                    .map(|_| (rng.next_f64() as f32 - 0.5) * noise)
                    .collect();
                v[c] += 1.0;
                normalise(&mut v);
                m.push(&v);
                truth.push(c);
            }
        }
        (m, truth)
    }

    #[test]
    fn recovers_well_separated_clusters() {
        let (x, truth) = blobs(4, 25, 16, 0.3, 7);
        let c = kmeans(&x, 4, 4, 50, 1);
        // Same partition up to renaming: members of a true cluster share a label.
        for t in 0..4 {
            let labels: Vec<usize> = (0..truth.len())
                .filter(|&i| truth[i] == t)
                .map(|i| c.labels[i])
                .collect();
            assert!(labels.iter().all(|l| *l == labels[0]), "cluster {t} split");
        }
        assert_eq!(c.centroids.rows(), 4);
    }

    #[test]
    fn same_seed_same_result() {
        let (x, _) = blobs(3, 30, 8, 1.0, 3);
        assert_eq!(kmeans(&x, 3, 3, 50, 9), kmeans(&x, 3, 3, 50, 9));
    }

    #[test]
    fn silhouette_prefers_the_true_k() {
        let (x, _) = blobs(5, 10, 12, 0.4, 11);
        let g = gram(&x);
        let score = |k| silhouette(&g, &kmeans(&x, k, 4, 50, 5).labels, k);
        let true_k = score(5);
        for k in [2, 3, 4, 7, 9] {
            assert!(
                true_k > score(k),
                "k=5 scores {true_k}, k={k} scores higher"
            );
        }
    }

    #[test]
    fn silhouette_matches_scikit_learn() {
        // sklearn.metrics.silhouette_score(X, [0,0,1,1,1], metric="cosine") for the rows below
        // = 0.8280867786696214 (computed once with scikit-learn 1.9.1).
        let rows = [
            [1.0f32, 0.0],
            [0.9, 0.436],
            [0.0, 1.0],
            [-0.6, 0.8],
            [0.2, 0.98],
        ];
        let mut m = Matrix::with_dim(2);
        for r in rows {
            let mut v = r.to_vec();
            normalise(&mut v);
            m.push(&v);
        }
        let s = silhouette(&gram(&m), &[0, 0, 1, 1, 1], 2);
        assert!((s - SKLEARN_SILHOUETTE).abs() < 1e-4, "got {s}");
    }

    const SKLEARN_SILHOUETTE: f64 = 0.828_086_778_669_621_4;

    #[test]
    fn sample_is_sorted_distinct_and_deterministic() {
        let a = sample_indices(1000, 50, &mut SplitMix64::new(4));
        let b = sample_indices(1000, 50, &mut SplitMix64::new(4));
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(a.len(), 50);
        assert_eq!(
            sample_indices(5, 50, &mut SplitMix64::new(4)),
            vec![0, 1, 2, 3, 4]
        );
    }
}
