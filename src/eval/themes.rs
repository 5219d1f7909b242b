//! Agreement between proposed themes and human theme labels (`themes.tsv`).
//!
//! `themes.tsv` has a header and one row per coded turn: `uri turn speaker start end theme`,
//! times in seconds. A passage takes the label of the labelled turn of the same `uri` that
//! overlaps it most in time, when that overlap covers at least half of the passage; passages
//! without a label (moderator questions, back-channel talk) are not scored.
//!
//! Scores over the labelled passages:
//! - [`adjusted_rand_index`] and [`normalized_mutual_info`] (arithmetic-mean normalisation),
//!   both equal to scikit-learn's `adjusted_rand_score` and `normalized_mutual_info_score`;
//!   for these a labelled passage that is in no proposed theme (unassigned, or not clustered)
//!   counts as a cluster of its own, so leaving passages out is never rewarded.
//! - "human themes matched": the share of human themes whose passages fall mostly (> 50 %) in
//!   one proposed theme that is mostly (> 50 % of its labelled passages) theirs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::passages::Passages;

/// One human-coded turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThemeLabel {
    /// The recording.
    pub uri: String,
    /// The turn's number in the reference.
    pub turn: usize,
    /// Who spoke.
    pub speaker: String,
    /// Start on the original timeline.
    pub start_ms: u64,
    /// End on the original timeline.
    pub end_ms: u64,
    /// The human theme.
    pub theme: String,
}

/// Failure to read theme labels.
#[derive(Debug, thiserror::Error)]
pub enum ThemeLabelError {
    /// The file could not be read.
    #[error("cannot read theme labels {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A row that is not `uri turn speaker start end theme`.
    #[error("theme labels {path}, line {line}: {problem}")]
    Row {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        problem: &'static str,
    },
}

/// Reads a `passages.tsv` written by qualscribe (header `uri start end speaker theme code
/// [confidence] text`; columns found by their header name) back into the passages and their
/// proposed theme, so [`evaluate`] can score a finished output.
/// Theme ids are numbered by first appearance; `moderator`, `back-channel` and `unassigned`
/// rows are in no theme.
pub fn read_passages_tsv(path: &Path) -> Result<(Passages, Vec<Option<usize>>), ThemeLabelError> {
    let text = std::fs::read_to_string(path).map_err(|source| ThemeLabelError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let row_err = |line: usize, problem| ThemeLabelError::Row {
        path: path.to_path_buf(),
        line,
        problem,
    };
    let header: Vec<&str> = text.lines().next().unwrap_or("").split('\t').collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (Some(c_theme), Some(c_text)) = (column("theme"), column("text")) else {
        return Err(row_err(
            1,
            "expected a header with `theme` and `text` columns",
        ));
    };
    let width = c_theme.max(c_text).max(3) + 1;
    let mut passages = Vec::new();
    let mut assignment = Vec::new();
    let mut theme_ids: BTreeMap<String, usize> = BTreeMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < width {
            return Err(row_err(i + 1, "fewer columns than the header"));
        }
        let secs = |v: &str| v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0);
        let (Some(start), Some(end)) = (secs(f[1]), secs(f[2])) else {
            return Err(row_err(i + 1, "start and end must be seconds"));
        };
        let theme = f[c_theme];
        let is_theme = !theme.is_empty()
            && !matches!(
                theme,
                "moderator" | "back-channel" | "backchannel" | "unassigned"
            );
        assignment.push(is_theme.then(|| {
            let next = theme_ids.len();
            *theme_ids.entry(theme.to_string()).or_insert(next)
        }));
        let id = passages.len();
        passages.push(crate::passages::Passage {
            id,
            file: 0,
            uri: f[0].to_string(),
            speaker: (!f[3].is_empty()).then(|| f[3].to_string()),
            turn: id,
            role: crate::passages::Role::Content,
            start_ms: (start * 1000.0).round() as u64,
            end_ms: (end * 1000.0).round() as u64,
            span: crate::passages::TextSpan {
                byte_start: 0,
                byte_end: 0,
                char_start: 0,
                char_end: 0,
            },
            text: f[c_text].to_string(),
            words: f[c_text].split_whitespace().count(),
        });
    }
    Ok((
        Passages {
            passages,
            files: Vec::new(),
        },
        assignment,
    ))
}

/// Reads a `themes.tsv` file.
pub fn read_theme_labels(path: &Path) -> Result<Vec<ThemeLabel>, ThemeLabelError> {
    let text = std::fs::read_to_string(path).map_err(|source| ThemeLabelError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_theme_labels(&text, path)
}

/// Parses `themes.tsv` text (header line first); `path` only names the file in errors.
pub fn parse_theme_labels(text: &str, path: &Path) -> Result<Vec<ThemeLabel>, ThemeLabelError> {
    let row_err = |line, problem| ThemeLabelError::Row {
        path: path.to_path_buf(),
        line,
        problem,
    };
    let mut labels = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').map(str::trim).collect();
        if f.len() != 6 {
            return Err(row_err(i + 1, "expected 6 tab-separated fields"));
        }
        let turn = f[1]
            .parse()
            .map_err(|_| row_err(i + 1, "turn is not a number"))?;
        let secs = |s: &str| {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map(|v| (v * 1000.0).round() as u64)
        };
        let start_ms =
            secs(f[3]).ok_or_else(|| row_err(i + 1, "start is not a time in seconds"))?;
        let end_ms = secs(f[4]).ok_or_else(|| row_err(i + 1, "end is not a time in seconds"))?;
        labels.push(ThemeLabel {
            uri: f[0].to_string(),
            turn,
            speaker: f[2].to_string(),
            start_ms,
            end_ms,
            theme: f[5].to_string(),
        });
    }
    Ok(labels)
}

/// The agreement of proposed themes with human labels.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ThemeAgreement {
    /// Passages that got a human label (the ones scored).
    pub labelled_passages: usize,
    /// Labelled turns no passage matched.
    pub unmatched_labels: usize,
    /// Distinct human themes among the labelled passages.
    pub human_themes: usize,
    /// Distinct proposed themes among the labelled passages.
    pub proposed_themes: usize,
    /// Labelled passages in no proposed theme.
    pub unassigned: usize,
    /// Adjusted Rand index.
    pub ari: f64,
    /// Normalised mutual information (arithmetic mean).
    pub nmi: f64,
    /// Human themes matched (see the module docs).
    pub matched: usize,
    /// `matched / human_themes`.
    pub matched_share: f64,
}

/// The human label of each passage (None: not labelled), indexed by passage id.
pub fn label_passages(passages: &Passages, labels: &[ThemeLabel]) -> Vec<Option<String>> {
    let mut by_uri: HashMap<&str, Vec<&ThemeLabel>> = HashMap::new();
    for l in labels {
        by_uri.entry(l.uri.as_str()).or_default().push(l);
    }
    passages
        .passages
        .iter()
        .map(|p| {
            let candidates = by_uri.get(p.uri.as_str())?;
            let duration = p.end_ms.saturating_sub(p.start_ms).max(1);
            let (best, overlap) = candidates
                .iter()
                .map(|l| {
                    let o = p
                        .end_ms
                        .min(l.end_ms)
                        .saturating_sub(p.start_ms.max(l.start_ms));
                    (*l, o)
                })
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.turn.cmp(&a.0.turn)))?;
            (overlap * 2 >= duration && overlap > 0).then(|| best.theme.clone())
        })
        .collect()
}

/// Scores `assignment` (proposed theme of each passage id, as [`crate::themes::Themes::assignment`]
/// gives it) against human `labels`.
pub fn evaluate(
    passages: &Passages,
    assignment: &[Option<usize>],
    labels: &[ThemeLabel],
) -> ThemeAgreement {
    let human = label_passages(passages, labels);
    let mut matched_turns = std::collections::HashSet::new();
    for (p, h) in passages.passages.iter().zip(&human) {
        if h.is_some() {
            for l in labels.iter().filter(|l| l.uri == p.uri) {
                let o = p
                    .end_ms
                    .min(l.end_ms)
                    .saturating_sub(p.start_ms.max(l.start_ms));
                if o > 0 && Some(&l.theme) == h.as_ref() {
                    matched_turns.insert((l.uri.clone(), l.turn));
                }
            }
        }
    }
    let mut human_ids: BTreeMap<&str, usize> = BTreeMap::new();
    let mut truth = Vec::new();
    let mut predicted = Vec::new();
    let mut predicted_opt = Vec::new();
    let themes = assignment.iter().flatten().max().map_or(0, |m| m + 1);
    let mut unassigned = 0;
    for (id, h) in human.iter().enumerate() {
        let Some(h) = h else { continue };
        let next = human_ids.len();
        truth.push(*human_ids.entry(h.as_str()).or_insert(next));
        let a = assignment.get(id).copied().flatten();
        predicted_opt.push(a);
        predicted.push(a.unwrap_or_else(|| {
            unassigned += 1;
            themes + unassigned
        }));
    }
    let (matched, human_themes) = human_themes_matched(&truth, &predicted_opt);
    ThemeAgreement {
        labelled_passages: truth.len(),
        unmatched_labels: labels.len().saturating_sub(matched_turns.len()),
        human_themes,
        proposed_themes: predicted_opt
            .iter()
            .flatten()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        unassigned,
        ari: adjusted_rand_index(&truth, &predicted),
        nmi: normalized_mutual_info(&truth, &predicted),
        matched,
        matched_share: if human_themes == 0 {
            0.0
        } else {
            matched as f64 / human_themes as f64
        },
    }
}

/// (matched, total) human themes: a human theme is matched when more than half of its passages
/// are in one proposed theme, and more than half of that theme's passages are its own.
/// Passages in no proposed theme (`None`) never match.
pub fn human_themes_matched(truth: &[usize], predicted: &[Option<usize>]) -> (usize, usize) {
    let mut joint: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    let mut truth_size: BTreeMap<usize, usize> = BTreeMap::new();
    let mut pred_size: BTreeMap<usize, usize> = BTreeMap::new();
    for (&t, p) in truth.iter().zip(predicted) {
        *truth_size.entry(t).or_default() += 1;
        if let Some(p) = p {
            *joint.entry((t, *p)).or_default() += 1;
            *pred_size.entry(*p).or_default() += 1;
        }
    }
    let matched = truth_size
        .iter()
        .filter(|&(&t, &size)| {
            joint
                .iter()
                .any(|(&(jt, p), &n)| jt == t && 2 * n > size && 2 * n > pred_size[&p])
        })
        .count();
    (matched, truth_size.len())
}

/// Contingency table of two labelings: counts per (a, b) pair, and the row and column sums.
fn contingency(a: &[usize], b: &[usize]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut ai: BTreeMap<usize, usize> = BTreeMap::new();
    let mut bi: BTreeMap<usize, usize> = BTreeMap::new();
    for &x in a {
        let n = ai.len();
        ai.entry(x).or_insert(n);
    }
    for &x in b {
        let n = bi.len();
        bi.entry(x).or_insert(n);
    }
    let mut cells: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    let mut rows = vec![0f64; ai.len()];
    let mut cols = vec![0f64; bi.len()];
    for (x, y) in a.iter().zip(b) {
        let (i, j) = (ai[x], bi[y]);
        *cells.entry((i, j)).or_default() += 1.0;
        rows[i] += 1.0;
        cols[j] += 1.0;
    }
    (cells.into_values().collect(), rows, cols)
}

fn pairs(n: f64) -> f64 {
    n * (n - 1.0) / 2.0
}

/// Adjusted Rand index of two labelings of the same items (1 = identical partitions, about 0 =
/// chance), as scikit-learn's `adjusted_rand_score`.
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let (cells, rows, cols) = contingency(a, b);
    let index: f64 = cells.iter().map(|&c| pairs(c)).sum();
    let sum_a: f64 = rows.iter().map(|&r| pairs(r)).sum();
    let sum_b: f64 = cols.iter().map(|&c| pairs(c)).sum();
    let expected = if n < 2 {
        0.0
    } else {
        sum_a * sum_b / pairs(n as f64)
    };
    let max = (sum_a + sum_b) / 2.0;
    if (max - expected).abs() < 1e-12 {
        // Both labelings trivial in the same way (one cluster, or all singletons).
        return 1.0;
    }
    (index - expected) / (max - expected)
}

/// Normalised mutual information with arithmetic-mean normalisation, as scikit-learn's
/// `normalized_mutual_info_score` (1 = identical, 0 = independent).
pub fn normalized_mutual_info(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let (_, rows, cols) = contingency(a, b);
    if (rows.len() == 1 && cols.len() == 1) || n == 0 {
        return 1.0;
    }
    let nf = n as f64;
    let entropy = |v: &[f64]| -> f64 {
        v.iter()
            .filter(|&&c| c > 0.0)
            .map(|&c| -(c / nf) * (c / nf).ln())
            .sum()
    };
    let mut joint: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    let ai = index_of(a);
    let bi = index_of(b);
    for (x, y) in a.iter().zip(b) {
        *joint.entry((ai[x], bi[y])).or_default() += 1.0;
    }
    let mi: f64 = joint
        .iter()
        .map(|(&(i, j), &c)| (c / nf) * ((c * nf) / (rows[i] * cols[j])).ln())
        .sum();
    if mi <= 0.0 {
        return 0.0;
    }
    let norm = (entropy(&rows) + entropy(&cols)) / 2.0;
    mi / norm.max(f64::EPSILON)
}

fn index_of(v: &[usize]) -> BTreeMap<usize, usize> {
    let mut m = BTreeMap::new();
    for &x in v {
        let n = m.len();
        m.entry(x).or_insert(n);
    }
    m
}

/// One held-out labelled passage of a code-by-example draw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeldOut {
    /// Its human category.
    pub truth: usize,
    /// The code it got (the category whose examples were given as that code).
    pub predicted: usize,
    /// The probability of that code.
    pub confidence: f32,
}

/// Code-by-example draws: for each draw, `k` passages of every human category are given as
/// examples (drawn with `seed`; a category keeps at least one passage held out), `classify`
/// gets the example rows of each category and returns every row's best category and its
/// probability, and the labelled rows that were not examples are the draw's outcome.
/// `truth` is the human category of each row (None: unlabelled, never drawn nor scored).
pub fn example_draws<F>(
    truth: &[Option<usize>],
    k: usize,
    draws: usize,
    seed: u64,
    mut classify: F,
) -> Vec<Vec<HeldOut>>
where
    F: FnMut(&[Vec<usize>]) -> Vec<(usize, f32)>,
{
    let categories = truth.iter().flatten().max().map_or(0, |m| m + 1);
    let members: Vec<Vec<usize>> = (0..categories)
        .map(|c| (0..truth.len()).filter(|&r| truth[r] == Some(c)).collect())
        .collect();
    let mut rng = crate::themes::SplitMix64::new(seed);
    (0..draws)
        .map(|_| {
            let examples: Vec<Vec<usize>> = members
                .iter()
                .map(|rows| {
                    let take = k.min(rows.len().saturating_sub(1)).max(1).min(rows.len());
                    let mut rows = rows.clone();
                    for i in 0..take {
                        let j = i + rng.below(rows.len() - i);
                        rows.swap(i, j);
                    }
                    rows.truncate(take);
                    rows
                })
                .collect();
            let predicted = classify(&examples);
            let is_example = |r: usize| examples.iter().any(|e| e.contains(&r));
            (0..truth.len())
                .filter_map(|r| {
                    let t = truth[r]?;
                    (!is_example(r)).then(|| HeldOut {
                        truth: t,
                        predicted: predicted[r].0,
                        confidence: predicted[r].1,
                    })
                })
                .collect()
        })
        .collect()
}

/// Leave-one-out, the most examples the labelled data can give: each labelled row in turn is
/// held out and every other labelled row is an example of its category (`classify` as in
/// [`example_draws`]). One outcome per labelled row, as one draw: its accuracy is what more
/// examples of the same kind could reach at best with this classifier.
pub fn leave_one_out<F>(truth: &[Option<usize>], mut classify: F) -> Vec<HeldOut>
where
    F: FnMut(&[Vec<usize>]) -> Vec<(usize, f32)>,
{
    let categories = truth.iter().flatten().max().map_or(0, |m| m + 1);
    (0..truth.len())
        .filter_map(|held| {
            let t = truth[held]?;
            let examples: Vec<Vec<usize>> = (0..categories)
                .map(|c| {
                    (0..truth.len())
                        .filter(|&r| r != held && truth[r] == Some(c))
                        .collect()
                })
                .collect();
            let (predicted, confidence) = classify(&examples)[held];
            Some(HeldOut {
                truth: t,
                predicted,
                confidence,
            })
        })
        .collect()
}

/// Code-by-example scores over draws, each a mean over draws.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExampleScore {
    /// Draws averaged.
    pub draws: usize,
    /// Held-out passages per draw.
    pub held_out: f64,
    /// Share of held-out passages whose best code is their category (nothing left unassigned).
    pub accuracy: f64,
    /// Standard deviation of `accuracy` over draws.
    pub accuracy_sd: f64,
    /// ARI of the best codes against the categories, on the held-out passages.
    pub ari: f64,
    /// Share of held-out passages at or above the confidence threshold.
    pub assigned: f64,
    /// Share of those that are right.
    pub precision: f64,
    /// Share of all held-out passages assigned and right.
    pub right: f64,
}

/// One draw's scores (the fields of [`ExampleScore`] before averaging).
struct DrawScore {
    held_out: f64,
    accuracy: f64,
    ari: f64,
    assigned: f64,
    precision: f64,
    right: f64,
}

fn score_draw(d: &[HeldOut], threshold: f32) -> DrawScore {
    let n = d.len() as f64;
    let right = d.iter().filter(|h| h.truth == h.predicted).count() as f64;
    let truth: Vec<usize> = d.iter().map(|h| h.truth).collect();
    let predicted: Vec<usize> = d.iter().map(|h| h.predicted).collect();
    let assigned: Vec<&HeldOut> = d.iter().filter(|h| h.confidence >= threshold).collect();
    let assigned_right = assigned.iter().filter(|h| h.truth == h.predicted).count() as f64;
    DrawScore {
        held_out: n,
        accuracy: right / n,
        ari: adjusted_rand_index(&truth, &predicted),
        assigned: assigned.len() as f64 / n,
        precision: if assigned.is_empty() {
            1.0
        } else {
            assigned_right / assigned.len() as f64
        },
        right: assigned_right / n,
    }
}

/// Scores draws from [`example_draws`] with a confidence `threshold` for assigning.
pub fn summarise_draws(draws: &[Vec<HeldOut>], threshold: f32) -> ExampleScore {
    let per_draw: Vec<DrawScore> = draws
        .iter()
        .filter(|d| !d.is_empty())
        .map(|d| score_draw(d, threshold))
        .collect();
    let count = per_draw.len().max(1) as f64;
    let mean = |f: fn(&DrawScore) -> f64| per_draw.iter().map(f).sum::<f64>() / count;
    let accuracy = mean(|d| d.accuracy);
    ExampleScore {
        draws: per_draw.len(),
        held_out: mean(|d| d.held_out),
        accuracy,
        accuracy_sd: (per_draw
            .iter()
            .map(|d| (d.accuracy - accuracy).powi(2))
            .sum::<f64>()
            / count)
            .sqrt(),
        ari: mean(|d| d.ari),
        assigned: mean(|d| d.assigned),
        precision: mean(|d| d.precision),
        right: mean(|d| d.right),
    }
}

/// The lowest confidence threshold (of 0, 0.05, …, 0.95) at which at least `precision` of the
/// `outcomes` at or above it are right; the most precise threshold when none reaches it.
pub fn calibrate_threshold(outcomes: &[HeldOut], precision: f64) -> f32 {
    let mut best = (0.0f32, f64::NEG_INFINITY);
    for step in 0..20 {
        let t = step as f32 * 0.05;
        let above: Vec<&HeldOut> = outcomes.iter().filter(|h| h.confidence >= t).collect();
        if above.is_empty() {
            break;
        }
        let p = above.iter().filter(|h| h.truth == h.predicted).count() as f64 / above.len() as f64;
        if p >= precision {
            return t;
        }
        if p > best.1 + 1e-9 {
            best = (t, p);
        }
    }
    best.0
}

/// The human category of each content row (None: unlabelled), categories numbered in the
/// order of their sorted names, and the names.
pub fn content_truth(
    passages: &Passages,
    content: &crate::themes::ContentEmbeddings,
    labels: &[ThemeLabel],
) -> (Vec<Option<usize>>, Vec<String>) {
    let human = label_passages(passages, labels);
    let mut categories: Vec<String> = human.iter().flatten().cloned().collect();
    categories.sort();
    categories.dedup();
    let truth = content
        .passage_ids
        .iter()
        .map(|&id| {
            human[id]
                .as_ref()
                .and_then(|h| categories.iter().position(|c| c == h))
        })
        .collect();
    (truth, categories)
}

/// Code-by-example draws ([`example_draws`]) in a fused space with one of the methods;
/// `definitions` (one per category, or empty) are the codebook's definitions, mixed with the
/// examples with the share `definition_share` (None: the default).
#[allow(clippy::too_many_arguments)]
pub fn by_example_draws(
    fused: &crate::themes::Fused,
    truth: &[Option<usize>],
    k: usize,
    draws: usize,
    seed: u64,
    method: crate::themes::by_example::ExampleMethod,
    definitions: &[Option<crate::themes::FusedCentroid>],
    definition_share: Option<f32>,
) -> Vec<Vec<HeldOut>> {
    let classify = example_classifier(fused, method, definitions, definition_share);
    example_draws(truth, k, draws, seed, classify)
}

/// The classifier of [`by_example_draws`]: given each category's example rows, every row's
/// best category and its probability.
pub fn example_classifier<'a>(
    fused: &'a crate::themes::Fused,
    method: crate::themes::by_example::ExampleMethod,
    definitions: &'a [Option<crate::themes::FusedCentroid>],
    definition_share: Option<f32>,
) -> impl FnMut(&[Vec<usize>]) -> Vec<(usize, f32)> + 'a {
    use crate::themes::by_example::{CodeEvidence, best_code, code_probabilities};
    move |examples| {
        let codes: Vec<CodeEvidence> = examples
            .iter()
            .enumerate()
            .map(|(c, e)| CodeEvidence {
                examples: e.clone(),
                definition: definitions.get(c).cloned().flatten(),
                definition_share,
            })
            .collect();
        code_probabilities(fused, &codes, method)
            .iter()
            .map(|p| best_code(p).unwrap_or((0, 0.0)))
            .collect()
    }
}

/// [`by_example_draws`] with several text models fused at the score level
/// ([`crate::themes::by_example::fused_code_probabilities`]): one `(fused space, definitions)`
/// pair per model, the same passages in the same row order in each.
pub fn fused_by_example_draws(
    views: &[(
        &crate::themes::Fused,
        &[Option<crate::themes::FusedCentroid>],
    )],
    truth: &[Option<usize>],
    k: usize,
    draws: usize,
    seed: u64,
    method: crate::themes::by_example::ExampleMethod,
) -> Vec<Vec<HeldOut>> {
    example_draws(
        truth,
        k,
        draws,
        seed,
        fused_example_classifier(views, method),
    )
}

/// The classifier of [`fused_by_example_draws`].
pub fn fused_example_classifier<'a>(
    views: &'a [(
        &'a crate::themes::Fused,
        &'a [Option<crate::themes::FusedCentroid>],
    )],
    method: crate::themes::by_example::ExampleMethod,
) -> impl FnMut(&[Vec<usize>]) -> Vec<(usize, f32)> + 'a {
    use crate::themes::by_example::{CodeEvidence, ModelView, best_code, fused_code_probabilities};
    move |examples| {
        let codes: Vec<Vec<CodeEvidence>> = views
            .iter()
            .map(|(_, definitions)| {
                examples
                    .iter()
                    .enumerate()
                    .map(|(c, e)| CodeEvidence {
                        examples: e.clone(),
                        definition: definitions.get(c).cloned().flatten(),
                        definition_share: None,
                    })
                    .collect()
            })
            .collect();
        let model_views: Vec<ModelView> = views
            .iter()
            .zip(&codes)
            .map(|((fused, _), codes)| ModelView { fused, codes })
            .collect();
        fused_code_probabilities(&model_views, method)
            .iter()
            .map(|p| best_code(p).unwrap_or((0, 0.0)))
            .collect()
    }
}

/// Inductive agreement over random subsets of the content passages.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SubsetScore {
    /// Subsets drawn.
    pub subsets: usize,
    /// Mean ARI.
    pub ari: f64,
    /// Standard deviation of the ARI.
    pub ari_sd: f64,
    /// Mean NMI.
    pub nmi: f64,
}

/// Inductive themes ([`crate::themes::discover`] with `cfg`) on `subsets` random subsets of
/// 80 % of the content passages (drawn with `seed`), each scored on its labelled passages
/// (an unassigned passage counts as a cluster of its own, as in [`evaluate`]).
pub fn inductive_subsets(
    passages: &Passages,
    content: &crate::themes::ContentEmbeddings,
    truth: &[Option<usize>],
    cfg: &crate::themes::ThemeConfig,
    subsets: usize,
    seed: u64,
) -> Result<SubsetScore, crate::themes::ThemeError> {
    let mut rng = crate::themes::SplitMix64::new(seed);
    let n = content.passage_ids.len();
    let (mut aris, mut nmis) = (Vec::new(), Vec::new());
    for _ in 0..subsets {
        let mut rows: Vec<usize> = (0..n).collect();
        let take = (n * 4).div_ceil(5);
        for i in 0..take {
            let j = i + rng.below(n - i);
            rows.swap(i, j);
        }
        rows.truncate(take);
        rows.sort_unstable();
        let sub = crate::themes::ContentEmbeddings {
            passage_ids: rows.iter().map(|&r| content.passage_ids[r]).collect(),
            vectors: content.vectors.select(&rows),
        };
        let none = crate::themes::Matrix::with_dim(content.vectors.dim());
        let assignment = crate::themes::discover(passages, &sub, &none, cfg)?.assignment();
        let (mut t, mut p) = (Vec::new(), Vec::new());
        let mut own = usize::MAX / 2;
        for &r in &rows {
            if let Some(h) = truth[r] {
                t.push(h);
                p.push(assignment[content.passage_ids[r]].unwrap_or_else(|| {
                    own += 1;
                    own
                }));
            }
        }
        aris.push(adjusted_rand_index(&t, &p));
        nmis.push(normalized_mutual_info(&t, &p));
    }
    let count = aris.len().max(1) as f64;
    let ari = aris.iter().sum::<f64>() / count;
    Ok(SubsetScore {
        subsets: aris.len(),
        ari,
        ari_sd: (aris.iter().map(|a| (a - ari).powi(2)).sum::<f64>() / count).sqrt(),
        nmi: nmis.iter().sum::<f64>() / count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (truth, predicted, sklearn ARI, sklearn NMI), computed once with scikit-learn 1.9.1.
    const SKLEARN: &[(&[usize], &[usize], f64, f64)] = &[
        (&[0, 0, 1, 1, 2, 2], &[0, 0, 1, 1, 2, 2], 1.0, 1.0),
        (&[0, 0, 1, 1, 2, 2], &[1, 1, 0, 0, 2, 2], 1.0, 1.0),
        (
            &[0, 0, 0, 1, 1, 1],
            &[0, 0, 1, 1, 2, 2],
            0.242_424_242_424_242_43,
            0.515_803_742_979_388_9,
        ),
        (&[0, 0, 1, 1], &[0, 1, 0, 1], -0.5, 0.0),
        (
            &[0, 0, 0, 1, 1, 1, 2, 2, 2, 2],
            &[0, 0, 1, 1, 1, 2, 2, 2, 0, 3],
            0.074_074_074_074_074_07,
            0.429_541_698_786_619_74,
        ),
        (&[0, 1, 2, 3], &[0, 0, 0, 0], 0.0, 0.0),
        (
            &[0, 0, 1, 2, 2, 2, 1, 0, 1, 3, 3],
            &[1, 1, 1, 0, 0, 2, 2, 2, 3, 3, 0],
            0.022_222_222_222_222_223,
            0.437_118_982_350_142_74,
        ),
    ];

    #[test]
    fn leave_one_out_holds_out_each_labelled_row_once_with_all_others_as_examples() {
        let truth = [Some(0), None, Some(1), Some(0), Some(1), Some(1)];
        let mut seen = Vec::new();
        let outcomes = leave_one_out(&truth, |examples| {
            seen.push(examples.to_vec());
            // Predicts category 1 for every row, with probability 0.9.
            vec![(1, 0.9); truth.len()]
        });
        assert_eq!(
            seen,
            [
                vec![vec![3], vec![2, 4, 5]],
                vec![vec![0, 3], vec![4, 5]],
                vec![vec![0], vec![2, 4, 5]],
                vec![vec![0, 3], vec![2, 5]],
                vec![vec![0, 3], vec![2, 4]],
            ]
        );
        let truths: Vec<usize> = outcomes.iter().map(|h| h.truth).collect();
        assert_eq!(truths, [0, 1, 0, 1, 1]);
        assert_eq!(summarise_draws(&[outcomes], 0.0).accuracy, 0.6);
    }

    #[test]
    fn ari_and_nmi_match_scikit_learn() {
        for (a, b, ari, nmi) in SKLEARN {
            assert!(
                (adjusted_rand_index(a, b) - ari).abs() < 1e-12,
                "ARI {a:?} {b:?}"
            );
            assert!(
                (normalized_mutual_info(a, b) - nmi).abs() < 1e-12,
                "NMI {a:?} {b:?}"
            );
        }
    }

    #[test]
    fn human_themes_matched_needs_a_majority_both_ways() {
        // Theme 0 sits in cluster 5; theme 1 is split; theme 2 shares cluster 7 with theme 3.
        let truth = [0, 0, 0, 1, 1, 2, 2, 3, 3, 3];
        let pred = [
            Some(5),
            Some(5),
            None,
            Some(6),
            Some(8),
            Some(7),
            Some(7),
            Some(7),
            Some(7),
            Some(7),
        ];
        assert_eq!(
            human_themes_matched(&truth, &pred),
            (2, 4),
            "themes 0 and 3"
        );
        assert_eq!(human_themes_matched(&[0, 0], &[None, None]), (0, 1));
    }

    #[test]
    fn labels_parse_and_bad_rows_name_their_line() {
        let text = "uri\tturn\tspeaker\tstart\tend\ttheme\ng\t2\tANA\t13.334\t19.82\tprecio\n";
        let l = parse_theme_labels(text, Path::new("t.tsv")).unwrap();
        assert_eq!(
            l,
            [ThemeLabel {
                uri: "g".into(),
                turn: 2,
                speaker: "ANA".into(),
                start_ms: 13334,
                end_ms: 19820,
                theme: "precio".into()
            }]
        );
        let bad = "h\ng\t2\tANA\tx\t19.82\tprecio\n";
        assert!(matches!(
            parse_theme_labels(bad, Path::new("t.tsv")),
            Err(ThemeLabelError::Row { line: 2, .. })
        ));
    }
}
