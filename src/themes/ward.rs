//! Ward agglomerative clustering of unit vectors given by their pairwise cosines.
//!
//! For unit vectors the squared Euclidean distance is `2 − 2·cos`, so a similarity matrix is
//! all Ward needs. The nearest-neighbour-chain algorithm with the Lance–Williams update gives
//! the exact Ward hierarchy in O(n²) time and memory (an `n × n` matrix of f64), so it is used
//! up to [`WARD_MAX_PASSAGES`] passages; larger sets are clustered with k-means.
//! Deterministic: ties go to the lower index.

/// Largest set clustered with Ward (its distance matrix is n² f64: 200 MB at 5000).
pub const WARD_MAX_PASSAGES: usize = 5000;

/// One merge of the hierarchy: the two clusters (each named by its lowest original row, its
/// "slot") and the Ward distance at which they merge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Merge {
    /// Slot that survives.
    pub keep: usize,
    /// Slot merged into it.
    pub gone: usize,
    /// Ward linkage distance (increase in within-cluster sum of squares, scaled).
    pub distance: f64,
}

/// The Ward hierarchy of `n` unit vectors whose cosines are `sim` (row-major `n × n`); merges
/// in increasing distance.
pub fn ward(sim: &[f32], n: usize) -> Vec<Merge> {
    if n < 2 {
        return Vec::new();
    }
    let mut d: Vec<f64> = sim
        .iter()
        .map(|&s| (2.0 - 2.0 * f64::from(s)).max(0.0))
        .collect();
    let mut size = vec![1f64; n];
    let mut active = vec![true; n];
    let mut merges = Vec::with_capacity(n - 1);
    let mut chain: Vec<usize> = Vec::new();
    while merges.len() < n - 1 {
        if chain.is_empty() {
            chain.push(active.iter().position(|&a| a).unwrap_or(0));
        }
        loop {
            let a = chain[chain.len() - 1];
            let prev = (chain.len() >= 2).then(|| chain[chain.len() - 2]);
            let mut best = prev;
            let mut best_d = prev.map_or(f64::INFINITY, |p| d[a * n + p]);
            for b in 0..n {
                if b != a && active[b] && d[a * n + b] < best_d {
                    best_d = d[a * n + b];
                    best = Some(b);
                }
            }
            match best {
                Some(b) if Some(b) != prev => chain.push(b),
                _ => break,
            }
        }
        let a = chain.pop().unwrap_or(0);
        let b = chain.pop().unwrap_or(0);
        let (keep, gone) = (a.min(b), a.max(b));
        let dab = d[keep * n + gone];
        for k in 0..n {
            if !active[k] || k == keep || k == gone {
                continue;
            }
            let (sa, sb, sk) = (size[keep], size[gone], size[k]);
            let v = ((sa + sk) * d[keep * n + k] + (sb + sk) * d[gone * n + k] - sk * dab)
                / (sa + sb + sk);
            d[keep * n + k] = v;
            d[k * n + keep] = v;
        }
        size[keep] += size[gone];
        active[gone] = false;
        merges.push(Merge {
            keep,
            gone,
            distance: dab,
        });
    }
    merges.sort_by(|x, y| x.distance.total_cmp(&y.distance));
    merges
}

/// The flat clustering into `k` clusters from a hierarchy of `n` rows: labels `0..k`, numbered
/// by first row.
pub fn cut(merges: &[Merge], n: usize, k: usize) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for m in merges.iter().take(n.saturating_sub(k.max(1))) {
        let (a, b) = (root(&mut parent, m.keep), root(&mut parent, m.gone));
        parent[a.max(b)] = a.min(b);
    }
    let mut label_of_root = vec![usize::MAX; n];
    let mut next = 0;
    (0..n)
        .map(|i| {
            let r = root(&mut parent, i);
            if label_of_root[r] == usize::MAX {
                label_of_root[r] = next;
                next += 1;
            }
            label_of_root[r]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cosines of unit 2-d vectors at the given angles (radians).
    fn sims(angles: &[f32]) -> Vec<f32> {
        let n = angles.len();
        let mut s = vec![0f32; n * n];
        for i in 0..n {
            for j in 0..n {
                s[i * n + j] = (angles[i] - angles[j]).cos();
            }
        }
        s
    }

    #[test]
    fn ward_separates_tight_groups_and_cuts_at_any_k() {
        // Three groups of points on the circle.
        let a = [0.0, 0.05, 0.1, 2.0, 2.05, 2.1, 2.15, 4.0, 4.1];
        let m = ward(&sims(&a), a.len());
        assert_eq!(m.len(), a.len() - 1);
        assert!(m.windows(2).all(|w| w[0].distance <= w[1].distance));
        assert_eq!(cut(&m, a.len(), 3), [0, 0, 0, 1, 1, 1, 1, 2, 2]);
        assert_eq!(cut(&m, a.len(), 1), [0; 9]);
        assert_eq!(cut(&m, a.len(), 9), (0..9).collect::<Vec<_>>());
    }
}
