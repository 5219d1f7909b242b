//! Coding by example: the researcher marks a few passages with a code, every other content
//! passage gets the most likely code and a confidence.
//!
//! Scores live in the fused space of [`super::features`]. Three ways to turn examples into
//! per-code probabilities were measured on the labelled corpus sets (`tests/themes.rs`,
//! `code_by_example_*`); [`ExampleMethod::default`] is the one that won there:
//! - [`ExampleMethod::Centroid`]: cosine to the mean of each code's examples (and its
//!   definition, when the codebook gives one), softmax with temperature [`TEMPERATURE`];
//! - [`ExampleMethod::Nearest`]: the same with the most similar single example of each code;
//! - [`ExampleMethod::Propagation`]: label spreading (Zhou et al. 2004) over the graph of each
//!   passage's [`NEIGHBOURS`] most similar passages, so a passage can inherit a code through
//!   passages between it and the examples.
//!
//! A passage whose best probability is below [`CONFIDENCE_THRESHOLD`] stays unassigned (the
//! threshold was calibrated on one corpus set and reported on the other; see the constant).

use super::features::{Fused, FusedCentroid};

/// Softmax temperature for cosine scores: fused cosines of a passage to different codes differ
/// by 0.02–0.2, so 0.05 turns a clear lead into a confident choice and a tie into 1/m.
pub const TEMPERATURE: f32 = 0.05;

/// Neighbours per passage in the label-spreading graph.
pub const NEIGHBOURS: usize = 5;

/// Share of a passage's score that comes from its neighbours in label spreading.
pub const SPREAD_ALPHA: f32 = 0.5;

/// Label spreading keeps an `n × n` similarity matrix; above this many passages the centroid
/// method is used instead (memory and time stay O(n·m)).
pub const MAX_PROPAGATION_PASSAGES: usize = 4000;

/// Below this best-code probability a passage stays unassigned. Calibrated on the interviews
/// (`entrevistas_apc`, real quotes) as the lowest threshold whose assigned passages were
/// [`TARGET_PRECISION`] right (k = 1..3 examples per category, each code's name as its
/// definition), reported on the focus group (`grupo_focal_reparto`): a third of the held-out
/// passages assigned, all of them right (`tests/themes.rs`).
pub const CONFIDENCE_THRESHOLD: f32 = 0.7;

/// The share of assigned passages that should be right: [`CONFIDENCE_THRESHOLD`] is the
/// lowest threshold that reached it on the calibration set.
pub const TARGET_PRECISION: f64 = 0.85;

/// How examples become per-code probabilities (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExampleMethod {
    /// Cosine to the mean of the code's examples.
    #[default]
    Centroid,
    /// Cosine to the code's most similar example.
    Nearest,
    /// Label spreading over the passage graph.
    Propagation,
}

impl ExampleMethod {
    /// Every method, for measurement.
    pub const ALL: [ExampleMethod; 3] = [
        ExampleMethod::Centroid,
        ExampleMethod::Nearest,
        ExampleMethod::Propagation,
    ];

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            ExampleMethod::Centroid => "centroid",
            ExampleMethod::Nearest => "nearest",
            ExampleMethod::Propagation => "propagation",
        }
    }
}

/// What is known about one code: its example rows and, from a codebook, its definition as a
/// point of the fused space.
#[derive(Debug, Clone, Default)]
pub struct CodeEvidence {
    /// Rows of the fused matrix that the researcher marked with this code.
    pub examples: Vec<usize>,
    /// The code's definition (name and description) in the fused space.
    pub definition: Option<FusedCentroid>,
    /// Share of the definition in the code's centroid when there are examples too (`None`:
    /// [`DEFINITION_SHARE`]).
    pub definition_share: Option<f32>,
}

/// Share of a code's definition in its centroid when examples are given too. Chosen on the
/// focus group among 0.25, 0.5 and 0.75 (0.75 won with names and with codebook definitions,
/// k = 1..3) and reported on the interviews (`tests/themes.rs`).
pub const DEFINITION_SHARE: f32 = 0.75;

/// Per-row probability of each code (rows of `fused`, codes in `codes` order). Every row sums
/// to 1 (a row with no evidence at all gets `1/m` each).
pub fn code_probabilities(
    fused: &Fused,
    codes: &[CodeEvidence],
    method: ExampleMethod,
) -> Vec<Vec<f32>> {
    let m = codes.len();
    if m == 0 {
        return vec![Vec::new(); fused.rows()];
    }
    let cosine = |method| -> Vec<Vec<f32>> {
        let scores = cosine_scores(fused, codes, method);
        scores
            .into_iter()
            .map(|s| softmax(&s, TEMPERATURE))
            .collect()
    };
    match method {
        ExampleMethod::Propagation
            if fused.rows() <= MAX_PROPAGATION_PASSAGES
                && codes.iter().any(|c| !c.examples.is_empty()) =>
        {
            let prior = cosine(ExampleMethod::Centroid);
            spread(fused, codes, &prior)
        }
        ExampleMethod::Propagation => cosine(ExampleMethod::Centroid),
        other => cosine(other),
    }
}

/// Cosine of each row to each code (centroid of examples plus definition, or nearest example).
fn cosine_scores(fused: &Fused, codes: &[CodeEvidence], method: ExampleMethod) -> Vec<Vec<f32>> {
    let centroids: Vec<Option<FusedCentroid>> =
        codes.iter().map(|c| evidence_centroid(fused, c)).collect();
    (0..fused.rows())
        .map(|i| {
            codes
                .iter()
                .zip(&centroids)
                .map(|(c, centroid)| match method {
                    ExampleMethod::Nearest if !c.examples.is_empty() => c
                        .examples
                        .iter()
                        .map(|&e| fused.sim(i, e))
                        .fold(f32::NEG_INFINITY, f32::max),
                    _ => centroid.as_ref().map_or(0.0, |c| fused.sim_to(i, c)),
                })
                .collect()
        })
        .collect()
}

/// The mean of a code's examples, with its definition counted as one more example.
fn evidence_centroid(fused: &Fused, code: &CodeEvidence) -> Option<FusedCentroid> {
    let examples = (!code.examples.is_empty()).then(|| fused.centroid(&code.examples));
    match (examples, &code.definition) {
        (None, None) => None,
        (Some(e), None) => Some(e),
        (None, Some(d)) => Some(unit(d, fused.weight)),
        (Some(e), Some(d)) => {
            // Both as unit points, mixed by the definition's share.
            let share = code
                .definition_share
                .unwrap_or(DEFINITION_SHARE)
                .clamp(0.0, 1.0);
            let (e, d) = (unit(&e, fused.weight), unit(d, fused.weight));
            let dense = e
                .dense
                .iter()
                .zip(&d.dense)
                .map(|(a, b)| (1.0 - share) * a + share * b)
                .collect();
            let mut lex: std::collections::BTreeMap<u32, f32> = std::collections::BTreeMap::new();
            for &(id, v) in &e.lexical {
                *lex.entry(id).or_default() += (1.0 - share) * v;
            }
            for &(id, v) in &d.lexical {
                *lex.entry(id).or_default() += share * v;
            }
            Some(FusedCentroid::new(
                dense,
                lex.into_iter().collect(),
                fused.weight,
            ))
        }
    }
}

fn unit(c: &FusedCentroid, weight: f32) -> FusedCentroid {
    let s = if c.norm > 0.0 { 1.0 / c.norm } else { 0.0 };
    FusedCentroid::new(
        c.dense.iter().map(|v| v * s).collect(),
        c.lexical.iter().map(|&(id, v)| (id, v * s)).collect(),
        weight,
    )
}

/// Softmax of `scores / t`.
pub fn softmax(scores: &[f32], t: f32) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = scores.iter().map(|s| ((s - max) / t).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// Label spreading: `F ← α·S·F + (1−α)·Y` over the symmetric k-nearest-neighbour graph `S`
/// (normalised `D^-½ W D^-½`, weights the positive fused cosines). `Y` is one-hot on the
/// examples and the cosine `prior` elsewhere, so a passage far from every example still
/// leans to its closest code.
fn spread(fused: &Fused, codes: &[CodeEvidence], prior: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let n = fused.rows();
    let m = codes.len();
    let sims = fused.similarity_matrix();
    let mut w = vec![0f32; n * n];
    for i in 0..n {
        let mut order: Vec<usize> = (0..n).filter(|&j| j != i).collect();
        order.sort_by(|&a, &b| sims[i * n + b].total_cmp(&sims[i * n + a]).then(a.cmp(&b)));
        for &j in order.iter().take(NEIGHBOURS) {
            let v = sims[i * n + j].max(0.0);
            w[i * n + j] = w[i * n + j].max(v);
            w[j * n + i] = w[j * n + i].max(v);
        }
    }
    let degree: Vec<f32> = (0..n).map(|i| w[i * n..(i + 1) * n].iter().sum()).collect();
    let mut y: Vec<Vec<f32>> = prior.to_vec();
    for (c, code) in codes.iter().enumerate() {
        for &e in &code.examples {
            y[e] = (0..m).map(|k| if k == c { 1.0 } else { 0.0 }).collect();
        }
    }
    let mut f = y.clone();
    for _ in 0..30 {
        let mut next = vec![vec![0f32; m]; n];
        for i in 0..n {
            for j in 0..n {
                let wij = w[i * n + j];
                if wij > 0.0 {
                    let s = wij / (degree[i] * degree[j]).sqrt();
                    for k in 0..m {
                        next[i][k] += s * f[j][k];
                    }
                }
            }
            for k in 0..m {
                next[i][k] = SPREAD_ALPHA * next[i][k] + (1.0 - SPREAD_ALPHA) * y[i][k];
            }
        }
        f = next;
    }
    f.into_iter()
        .map(|row| {
            let sum: f32 = row.iter().sum();
            if sum > 0.0 {
                row.into_iter().map(|v| v / sum).collect()
            } else {
                vec![1.0 / m as f32; m]
            }
        })
        .collect()
}

/// The best code of a probability row and its probability (ties: the first code).
pub fn best_code(p: &[f32]) -> Option<(usize, f32)> {
    p.iter()
        .copied()
        .enumerate()
        .fold(None, |best: Option<(usize, f32)>, (c, v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((c, v)),
        })
}

#[cfg(test)]
mod tests {
    use super::super::features::{Fused, TfIdf};
    use super::super::vectors::Matrix;
    use super::*;

    fn toy() -> Fused {
        let texts = [
            "el precio del envío es caro",
            "pagar tanto por el envío es caro",
            "la aplicación tiene un diseño claro",
            "el diseño de la aplicación confunde",
            "el envío cuesta un precio alto",
        ];
        let dense = Matrix::from_rows(&[
            vec![1.0, 0.0],
            vec![0.9, 0.1],
            vec![0.0, 1.0],
            vec![0.1, 0.9],
            vec![0.8, 0.2],
        ])
        .unwrap();
        let dense = dense.centred_unit(&dense.mean());
        Fused {
            dense,
            lexical: TfIdf::fit(&texts, "es").rows,
            weight: 0.5,
        }
    }

    #[test]
    fn one_example_per_code_sorts_the_rest() {
        let f = toy();
        let codes = vec![
            CodeEvidence {
                examples: vec![0],
                definition: None,
                definition_share: None,
            },
            CodeEvidence {
                examples: vec![2],
                definition: None,
                definition_share: None,
            },
        ];
        for method in ExampleMethod::ALL {
            let p = code_probabilities(&f, &codes, method);
            let best: Vec<usize> = p.iter().map(|r| best_code(r).unwrap().0).collect();
            assert_eq!(best, [0, 0, 1, 1, 0], "{}", method.name());
            for r in &p {
                assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn softmax_of_a_tie_is_uniform_and_a_clear_lead_is_confident() {
        assert_eq!(softmax(&[0.3, 0.3], TEMPERATURE), [0.5, 0.5]);
        assert!(softmax(&[0.5, 0.2], TEMPERATURE)[0] > 0.99);
    }
}
