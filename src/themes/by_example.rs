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
//!   passages between it and the examples;
//! - [`ExampleMethod::Balanced`]: transductive: each code's prototype is re-estimated from the
//!   passages softly assigned to it (a few EM rounds), the assignment kept balanced across codes
//!   by Sinkhorn scaling, so one broad code cannot swallow the others. It assumes codes of
//!   similar size (see [`balanced_probabilities`]).
//!
//! Several text models can be fused at the score level ([`fused_code_probabilities`]): each
//! model's per-code similarities are averaged, instead of concatenating the vectors.
//!
//! Measured with e5 + TF-IDF and code names + k = 1..3 examples (20 draws, reference and
//! Whisper text of both corpus sets) and not kept, because none won on both sets: self-training
//! (the most confident passages join their code's centroid, 1–6 rounds), logistic regression on
//! the fused rows (examples and definitions as training points), harmonic label propagation
//! over the 3- or 5-nearest-neighbour graph mixed with the names' scores, each example also
//! embedded as an e5 query (whole text, or its 3–8 top TF-IDF words), every passage embedded
//! with e5's "query: " prefix instead of "passage: ", the examples' TF-IDF cut
//! to their top words, names' scores centred per code, and smoothing over neighbouring passages
//! of a recording. The interviews stay near 0.62–0.68 with e5: with every other labelled passage
//! as an example (`eval themes`, row `all`) the centroid reaches 0.71 on reference text and 0.64
//! on Whisper text, so the gap is the representation, not the number of examples.
//!
//! Ways of combining e5 (+ TF-IDF) with USE were measured the same way (the weight of each
//! chosen on the focus group, reference and Whisper text, reported on the interviews) and not
//! kept: each model's centroid scores standardised per passage, per code or overall and then
//! averaged with a weight, rank fusion (Borda, reciprocal rank per passage or per code), the
//! models' probabilities or log-probabilities averaged, TF-IDF as a third view, the fusion
//! inside each [`ExampleMethod::Balanced`] round, and each model's own method (centroid or
//! balanced) before averaging. Chosen on the focus group, USE ends up a tie-break at most and
//! the interviews do not move; every variant that lifts the interviews (those with e5 balanced)
//! loses the focus group's Whisper text, as [`ExampleMethod::Balanced`] alone does.
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

/// [`CONFIDENCE_THRESHOLD`] for several text models fused at the score level (each dense only,
/// per-code cosines averaged: `--text-model e5+use`). Calibrated the same way (names + k = 1..3
/// examples, lowest threshold with [`TARGET_PRECISION`] right) on the interviews, reported on
/// the focus group: 45 / 52 / 57 % of the held-out passages assigned, 92 / 96 / 97 % of them
/// right (`tests/themes.rs`, `fused_threshold_is_calibrated_on_the_interviews`).
pub const FUSED_CONFIDENCE_THRESHOLD: f32 = 0.75;

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
    /// Prototypes re-estimated from all passages, assignments balanced across codes.
    Balanced,
}

impl ExampleMethod {
    /// Every method, for measurement.
    pub const ALL: [ExampleMethod; 4] = [
        ExampleMethod::Centroid,
        ExampleMethod::Nearest,
        ExampleMethod::Propagation,
        ExampleMethod::Balanced,
    ];

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            ExampleMethod::Centroid => "centroid",
            ExampleMethod::Nearest => "nearest",
            ExampleMethod::Propagation => "propagation",
            ExampleMethod::Balanced => "balanced",
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
        ExampleMethod::Balanced => {
            balanced_probabilities(&[ModelView { fused, codes }], BALANCED_TEMPERATURE)
        }
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

/// One text model's view of the codes: its fused space and each code's evidence in it (the
/// same codes, in the same order, in every view; example rows are the same passages).
#[derive(Debug, Clone, Copy)]
pub struct ModelView<'a> {
    /// The passages in this model's fused space.
    pub fused: &'a Fused,
    /// The codes' evidence in this space.
    pub codes: &'a [CodeEvidence],
}

/// [`fused_code_probabilities`] for codes known only by their definitions (a zero-shot
/// codebook): one `(fused space, each code's definition)` pair per text model.
pub fn definition_probabilities<F, D>(views: &[(F, D)], method: ExampleMethod) -> Vec<Vec<f32>>
where
    F: std::borrow::Borrow<Fused>,
    D: AsRef<[Option<FusedCentroid>]>,
{
    let codes: Vec<Vec<CodeEvidence>> = views
        .iter()
        .map(|(_, definitions)| {
            definitions
                .as_ref()
                .iter()
                .map(|d| CodeEvidence {
                    definition: d.clone(),
                    ..CodeEvidence::default()
                })
                .collect()
        })
        .collect();
    let model_views: Vec<ModelView> = views
        .iter()
        .zip(&codes)
        .map(|((fused, _), codes)| ModelView {
            fused: fused.borrow(),
            codes,
        })
        .collect();
    fused_code_probabilities(&model_views, method)
}

/// Per-row probability of each code from several text models fused at the score level: the
/// per-code cosines of every view are averaged before the softmax ([`ExampleMethod::Balanced`]:
/// before each balancing round). With one view this is [`code_probabilities`].
pub fn fused_code_probabilities(views: &[ModelView], method: ExampleMethod) -> Vec<Vec<f32>> {
    let Some(first) = views.first() else {
        return Vec::new();
    };
    if views.len() == 1 {
        return code_probabilities(first.fused, first.codes, method);
    }
    let m = first.codes.len();
    if m == 0 {
        return vec![Vec::new(); first.fused.rows()];
    }
    match method {
        ExampleMethod::Balanced => balanced_probabilities(views, BALANCED_TEMPERATURE),
        // Label spreading has no score-level form: its prior is the fused centroid score.
        ExampleMethod::Propagation | ExampleMethod::Centroid | ExampleMethod::Nearest => {
            let method = if method == ExampleMethod::Nearest {
                method
            } else {
                ExampleMethod::Centroid
            };
            mean_scores(
                views
                    .iter()
                    .map(|v| cosine_scores(v.fused, v.codes, method)),
            )
            .into_iter()
            .map(|s| softmax(&s, TEMPERATURE))
            .collect()
        }
    }
}

/// Element-wise mean of several `n × m` score tables.
fn mean_scores(tables: impl Iterator<Item = Vec<Vec<f32>>>) -> Vec<Vec<f32>> {
    let mut sum: Vec<Vec<f32>> = Vec::new();
    let mut count = 0f32;
    for t in tables {
        if sum.is_empty() {
            sum = t;
        } else {
            for (a, b) in sum.iter_mut().zip(&t) {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
            }
        }
        count += 1.0;
    }
    for row in &mut sum {
        for x in row.iter_mut() {
            *x /= count.max(1.0);
        }
    }
    sum
}

/// Softmax temperature of [`ExampleMethod::Balanced`], relative to the standard deviation of
/// the round's scores (so the same value fits models whose cosines spread differently). Chosen
/// on the focus group among 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0 (e5 + USE fused at the score
/// level) and reported on the interviews; chosen on the interviews, 0.3 or 0.4 would win
/// (`tests/themes.rs`, `balanced_code_by_example_with_e5_and_use_fused`). A fixed temperature
/// was measured first: 0.02 won on the interviews and 0.05 on the focus group, and the
/// interviews fell from 0.83 to 0.74 (k = 3) between the two, hence the relative one.
pub const BALANCED_TEMPERATURE: f32 = 0.5;

/// EM rounds of [`ExampleMethod::Balanced`] after the first assignment.
pub const BALANCED_ROUNDS: usize = 5;

/// Sinkhorn scaling steps per round.
pub const SINKHORN_STEPS: usize = 20;

/// Transductive code probabilities (the [`ExampleMethod::Balanced`] method), averaged over
/// `views` at the score level.
///
/// A code's score for passage `i` is `s·cos(i, definition) + (1−s)·Σ_j W_jc cos(i, j) / Σ_j W_jc`
/// (`s` the definition share; the sum is the cosine to a weighted sum of rows, so no `n × n`
/// matrix is built). `W` starts one-hot on the examples; each round every non-example passage
/// adds its current probabilities to `W`, so a code's prototype moves towards the passages it
/// wins. Probabilities are the softmax of the scores at temperature `t` times the standard
/// deviation of all the round's scores, then scaled by Sinkhorn
/// steps so every code holds the same total mass (rows still sum to 1): a code whose prototype
/// is close to everything cannot take every passage. The price: codes are assumed to be of
/// similar size; with one code much rarer than the others it loses accuracy (measured in
/// `tests/themes.rs`).
pub fn balanced_probabilities(views: &[ModelView], t: f32) -> Vec<Vec<f32>> {
    let Some(first) = views.first() else {
        return Vec::new();
    };
    let n = first.fused.rows();
    let m = first.codes.len();
    if m == 0 || n == 0 {
        return vec![Vec::new(); n];
    }
    let mut is_example = vec![None; n];
    for (c, code) in first.codes.iter().enumerate() {
        for &e in &code.examples {
            is_example[e] = Some(c);
        }
    }
    // Definition similarities do not change between rounds.
    let definition_scores: Vec<Vec<Vec<f32>>> = views
        .iter()
        .map(|v| {
            v.codes
                .iter()
                .map(|c| {
                    let d = c.definition.as_ref();
                    (0..n)
                        .map(|i| d.map_or(0.0, |d| v.fused.sim_to(i, d)))
                        .collect()
                })
                .collect()
        })
        .collect();
    let mut weights: Vec<Vec<f32>> = (0..n)
        .map(|i| {
            (0..m)
                .map(|c| if is_example[i] == Some(c) { 1.0 } else { 0.0 })
                .collect()
        })
        .collect();
    let mut p = Vec::new();
    for _ in 0..=BALANCED_ROUNDS {
        let scores = mean_scores(
            views
                .iter()
                .zip(&definition_scores)
                .map(|(v, defs)| weighted_scores(v, defs, &weights)),
        );
        let t = t * score_sd(&scores).max(1e-6);
        p = sinkhorn(scores.iter().map(|s| softmax(s, t)).collect(), m);
        for i in 0..n {
            if is_example[i].is_none() {
                weights[i].clone_from(&p[i]);
            }
        }
    }
    p
}

/// Population standard deviation of every entry of a score table.
fn score_sd(scores: &[Vec<f32>]) -> f32 {
    let values: Vec<f32> = scores.iter().flatten().copied().collect();
    let n = values.len().max(1) as f32;
    let mean = values.iter().sum::<f32>() / n;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n).sqrt()
}

/// One view's scores for [`balanced_probabilities`]: per passage and code, the definition share
/// of the definition cosine plus the rest of the `weights`-weighted mean cosine to the passages.
fn weighted_scores(
    view: &ModelView,
    definitions: &[Vec<f32>],
    weights: &[Vec<f32>],
) -> Vec<Vec<f32>> {
    let n = view.fused.rows();
    let prototypes: Vec<Option<(FusedCentroid, f32)>> = view
        .codes
        .iter()
        .enumerate()
        .map(|(c, _)| {
            let column: Vec<f32> = weights.iter().map(|w| w[c]).collect();
            let total: f32 = column.iter().sum();
            (total > 0.0).then(|| (view.fused.weighted_sum(&column), total))
        })
        .collect();
    (0..n)
        .map(|i| {
            view.codes
                .iter()
                .enumerate()
                .map(|(c, code)| {
                    let examples = prototypes[c]
                        .as_ref()
                        .map(|(p, total)| view.fused.sim_to(i, p) * p.norm / total);
                    let share = code
                        .definition_share
                        .unwrap_or(DEFINITION_SHARE)
                        .clamp(0.0, 1.0);
                    match (examples, code.definition.is_some()) {
                        (Some(e), true) => share * definitions[c][i] + (1.0 - share) * e,
                        (Some(e), false) => e,
                        (None, _) => definitions[c][i],
                    }
                })
                .collect()
        })
        .collect()
}

/// Sinkhorn scaling of an `n × m` probability table: columns to equal mass `n/m`, rows to 1,
/// alternately ([`SINKHORN_STEPS`] times; rows last, so each is a distribution).
fn sinkhorn(mut p: Vec<Vec<f32>>, m: usize) -> Vec<Vec<f32>> {
    let target = p.len() as f32 / m as f32;
    for _ in 0..SINKHORN_STEPS {
        let mut mass = vec![0f32; m];
        for row in &p {
            for (s, v) in mass.iter_mut().zip(row) {
                *s += v;
            }
        }
        for row in &mut p {
            for (v, s) in row.iter_mut().zip(&mass) {
                if *s > 0.0 {
                    *v *= target / s;
                }
            }
            let sum: f32 = row.iter().sum();
            if sum > 0.0 {
                row.iter_mut().for_each(|v| *v /= sum);
            }
        }
    }
    p
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
    fn balanced_keeps_a_code_close_to_everything_from_taking_every_passage() {
        // Code 0's example (80°) and three passages near it (85–100°); code 1's example (0°)
        // and three passages spread towards code 0 (35–50°). By centroid code 0 takes the
        // passages at 45° and 50°; balanced, each code keeps its four.
        let rows: Vec<Vec<f32>> = [80f32, 0.0, 85.0, 95.0, 100.0, 35.0, 45.0, 50.0]
            .iter()
            .map(|a| vec![a.to_radians().cos(), a.to_radians().sin()])
            .collect();
        let dense = Matrix::from_rows(&rows).unwrap();
        let f = Fused {
            dense: dense.centred_unit(&[0.0, 0.0]),
            lexical: vec![Vec::new(); 8],
            weight: 1.0,
        };
        let codes = vec![
            CodeEvidence {
                examples: vec![0],
                ..CodeEvidence::default()
            },
            CodeEvidence {
                examples: vec![1],
                ..CodeEvidence::default()
            },
        ];
        let best = |method| -> Vec<usize> {
            code_probabilities(&f, &codes, method)
                .iter()
                .map(|r| best_code(r).unwrap().0)
                .collect()
        };
        assert_eq!(best(ExampleMethod::Centroid), [0, 1, 0, 0, 0, 1, 0, 0]);
        assert_eq!(best(ExampleMethod::Balanced), [0, 1, 0, 0, 0, 1, 1, 1]);
    }

    #[test]
    fn fused_views_average_the_models_scores() {
        let f = toy();
        let codes = vec![
            CodeEvidence {
                examples: vec![0],
                ..CodeEvidence::default()
            },
            CodeEvidence {
                examples: vec![2],
                ..CodeEvidence::default()
            },
        ];
        let one = code_probabilities(&f, &codes, ExampleMethod::Centroid);
        let views = [
            ModelView {
                fused: &f,
                codes: &codes,
            },
            ModelView {
                fused: &f,
                codes: &codes,
            },
        ];
        // Two identical views give the scores of one.
        let two = fused_code_probabilities(&views, ExampleMethod::Centroid);
        for (a, b) in one.iter().zip(&two) {
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-5);
            }
        }
        let balanced = fused_code_probabilities(&views, ExampleMethod::Balanced);
        let best: Vec<usize> = balanced.iter().map(|r| best_code(r).unwrap().0).collect();
        assert_eq!(best, [0, 0, 1, 1, 0]);
    }

    #[test]
    fn softmax_of_a_tie_is_uniform_and_a_clear_lead_is_confident() {
        assert_eq!(softmax(&[0.3, 0.3], TEMPERATURE), [0.5, 0.5]);
        assert!(softmax(&[0.5, 0.2], TEMPERATURE)[0] > 0.99);
    }
}
