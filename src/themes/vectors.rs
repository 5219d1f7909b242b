//! Dense row-major vectors and the few operations clustering needs.
//!
//! e5 sentence embeddings are anisotropic: every pair of texts scores 0.75–0.97 in cosine, so
//! absolute cosine thresholds mean nothing. [`Matrix::centred_unit`] subtracts the mean of the
//! rows and re-normalises, which spreads the scores over roughly -1..1 and lets thresholds be
//! relative to the data at hand.

/// A row-major `rows × dim` matrix of `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    dim: usize,
    data: Vec<f32>,
}

impl Matrix {
    /// An empty matrix whose rows will have `dim` columns.
    pub fn with_dim(dim: usize) -> Matrix {
        Matrix {
            dim,
            data: Vec::new(),
        }
    }

    /// Builds a matrix from rows; `None` when the rows differ in length or contain a
    /// non-finite value.
    pub fn from_rows<R: AsRef<[f32]>>(rows: &[R]) -> Option<Matrix> {
        let dim = rows.first().map_or(0, |r| r.as_ref().len());
        let mut m = Matrix {
            dim,
            data: Vec::with_capacity(dim * rows.len()),
        };
        for r in rows {
            let r = r.as_ref();
            if r.len() != dim || r.iter().any(|x| !x.is_finite()) {
                return None;
            }
            m.data.extend_from_slice(r);
        }
        Some(m)
    }

    /// Number of columns.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Appends a row (must have `dim` values).
    pub fn push(&mut self, row: &[f32]) {
        debug_assert_eq!(row.len(), self.dim);
        self.data.extend_from_slice(row);
    }

    /// The mean of the rows (zeros when empty).
    pub fn mean(&self) -> Vec<f32> {
        let mut sum = vec![0f64; self.dim];
        for i in 0..self.rows() {
            for (s, x) in sum.iter_mut().zip(self.row(i)) {
                *s += f64::from(*x);
            }
        }
        let n = self.rows().max(1) as f64;
        sum.into_iter().map(|s| (s / n) as f32).collect()
    }

    /// Every row minus `mean`, scaled to unit length (a zero row stays zero).
    pub fn centred_unit(&self, mean: &[f32]) -> Matrix {
        let mut out = Matrix {
            dim: self.dim,
            data: Vec::with_capacity(self.data.len()),
        };
        for i in 0..self.rows() {
            out.data.extend(centre_unit(self.row(i), mean));
        }
        out
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Matrix {
        let mut out = Matrix {
            dim: self.dim,
            data: Vec::with_capacity(indices.len() * self.dim),
        };
        for &i in indices {
            out.data.extend_from_slice(self.row(i));
        }
        out
    }
}

/// `v - mean`, scaled to unit length (zero stays zero).
pub fn centre_unit(v: &[f32], mean: &[f32]) -> Vec<f32> {
    let mut out: Vec<f32> = v.iter().zip(mean).map(|(x, m)| x - m).collect();
    normalise(&mut out);
    out
}

/// Scales `v` to unit length in place; a zero vector stays zero.
pub fn normalise(v: &mut [f32]) {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

/// Dot product with eight independent accumulators, so the compiler can vectorise it. The
/// summation order is fixed, so results are identical on every run.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        let (x, y) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = 0f32;
    for i in chunks * 8..a.len().min(b.len()) {
        tail += a[i] * b[i];
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_sum() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4);
    }

    #[test]
    fn centring_spreads_a_narrow_cosine_band() {
        // Two groups around a shared dominant direction: raw cosines all near 1.
        let rows = vec![
            vec![10.0, 1.0, 0.0],
            vec![10.0, 1.1, 0.1],
            vec![10.0, 0.0, 1.0],
            vec![10.0, 0.1, 1.1],
        ];
        let m = Matrix::from_rows(&rows).unwrap();
        let raw =
            dot(m.row(0), m.row(2)) / (dot(m.row(0), m.row(0)) * dot(m.row(2), m.row(2))).sqrt();
        assert!(raw > 0.98);
        let c = m.centred_unit(&m.mean());
        assert!(
            dot(c.row(0), c.row(2)) < -0.9,
            "groups opposite after centring"
        );
        assert!(dot(c.row(0), c.row(1)) > 0.9, "group members stay together");
    }

    #[test]
    fn ragged_or_non_finite_rows_are_refused() {
        assert!(Matrix::from_rows(&[vec![1.0, 2.0], vec![1.0]]).is_none());
        assert!(Matrix::from_rows(&[vec![1.0, f32::NAN]]).is_none());
    }
}
