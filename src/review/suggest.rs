//! Code by example in the review page: "suggest more passages" for a code, and the codes a
//! passage most likely belongs to ("this passage is an example of code X").
//!
//! Passages live in the fused space of [`crate::themes::features`] (the centred e5 vectors that
//! `themes` stored in `analysis.json`, plus TF-IDF fitted here on the project's passages). Each
//! live code (proposed or accepted) is the centroid of the passages coded with it *now*, so a
//! passage accepted into a code, or moved out of one, changes the next suggestions without
//! re-running anything. A passage is scored against its own code with itself left out of that
//! code's centroid, so a passage the machine put in a code can still be suggested for a better
//! one. A passage a reviewer placed (`move`, `new_code`) is never suggested elsewhere, nor is
//! the only passage of a code (it is what defines it). Probabilities are a softmax over the codes' cosines with
//! [`crate::themes::by_example::TEMPERATURE`], as on the command line.
//!
//! A code's name and definition count as on the command line too (`--examples`, `--codebook`):
//! the code's text (`name: definition`, the name only when it is made of words) is a point of
//! the fused space mixed with its examples' centroid, both as unit points, the text's share
//! [`DEFINITION_SHARE`]; a code with a text and no passages is its text alone, so it gets
//! suggestions too. The review page has no text model: the text's dense half is the vector
//! `themes` stored for it in `analysis.json` (`code_text_vectors`, placed like the passages'
//! vectors); a text without one (a code renamed or made here, an older analysis) counts by its
//! TF-IDF half alone. Measured with the command line's mixing on the labelled corpus sets
//! (e5 + TF-IDF, k = 1 example per code, 20 draws): names' words alone raised held-out accuracy
//! on the focus group from 0.48 to 0.59 (codebook definitions 0.63; with the e5 half too 0.86)
//! and left the interviews at 0.54 (their category names occur in no passage; codebook
//! definitions 0.62).
//!
//! Nothing here writes: accepting a suggestion is an ordinary `move` (or `new_code`) action,
//! with its audit entry and undo.

use std::collections::{HashMap, HashSet};

use rusqlite::params;
use serde::Serialize;

use super::ReviewError;
use super::store::{Project, blob_vector};
use crate::themes::by_example::{CONFIDENCE_THRESHOLD, DEFINITION_SHARE, TEMPERATURE, softmax};
use crate::themes::code_text;
use crate::themes::features::{E5_WEIGHT, Sparse, TfIdf, sparse_dot};

fn dot_product(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// What to tell the page when the project has no passage vectors.
pub const NO_VECTORS: &str = "suggestions need the passages' vectors, which this project's analysis does not have: re-run `qualscribe themes` (or `run`/`batch`) on the transcripts and import the output again";

/// The passages' fused representation, built once per review session (passages and their
/// vectors change only on import, which the page does not do).
#[derive(Debug, Clone)]
pub struct SuggestIndex {
    /// Passage row id of each row.
    ids: Vec<i64>,
    /// Row of each passage row id.
    row_of: HashMap<i64, usize>,
    /// Centred unit text vectors, row-major `ids.len() × dim`.
    dense: Vec<f32>,
    dim: usize,
    /// The TF-IDF of the passages (`rows`: unit rows, `(term, weight)` sorted by term), also
    /// to place code texts in the same space.
    tfidf: TfIdf,
    /// Code texts' dense vectors stored by the analysis (same space as `dense`).
    text_vectors: HashMap<String, Vec<f32>>,
    /// Terms in the vocabulary (bound of every term id).
    vocabulary: usize,
    /// Share of the dense part in the fused cosine.
    weight: f32,
}

/// One suggested passage for a code.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    /// Passage row id.
    pub passage: i64,
    /// Recording.
    pub uri: String,
    /// Start, ms.
    pub start_ms: i64,
    /// End, ms.
    pub end_ms: i64,
    /// Speaker label.
    pub speaker: Option<String>,
    /// The passage's text.
    pub text: String,
    /// Probability of the code for this passage.
    pub confidence: f32,
    /// At or above the calibrated threshold ([`CONFIDENCE_THRESHOLD`]).
    pub confident: bool,
    /// The code the passage is in now (a `move` must name it as `from`).
    pub code_now: Option<i64>,
}

/// The passages suggested for one code, by confidence.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestions {
    /// The code.
    pub code: i64,
    /// Its passages that have vectors (its examples).
    pub examples: usize,
    /// Passages whose most likely code it is, most confident first.
    pub suggestions: Vec<Suggestion>,
}

/// A code's probability for one passage.
#[derive(Debug, Clone, Serialize)]
pub struct CodeChance {
    /// The code.
    pub code: i64,
    /// Its name.
    pub label: String,
    /// Probability.
    pub confidence: f32,
}

/// What the store says now: live codes (proposed or accepted) in order with their texts
/// (see [`code_text`]), every coding `(code, passage)`, and the passages a reviewer placed.
struct Coding {
    live: Vec<i64>,
    texts: Vec<Option<String>>,
    codings: Vec<(i64, i64)>,
    reviewed: HashSet<i64>,
}

/// The live codes' members and the sums of their fused rows.
struct CodeSums {
    codes: Vec<i64>,
    /// Rows coded with each code.
    members: Vec<Vec<usize>>,
    /// Sum of the members' dense parts, `codes.len() × dim`.
    dense: Vec<f32>,
    /// Sum of the members' lexical parts, dense over the vocabulary, `codes.len() × vocabulary`.
    lexical: Vec<f32>,
    /// Weighted squared norm of each sum.
    norm2: Vec<f32>,
    /// Code of each row (None: in no live code).
    code_of_row: Vec<Option<usize>>,
    /// Each code's text in the fused space (None: no text, or none of its words in the
    /// passages).
    definitions: Vec<Option<Definition>>,
}

/// A code's text as a point of the fused space.
struct Definition {
    /// Its dense vector, when the analysis stored one for this text.
    dense: Option<Vec<f32>>,
    /// Its TF-IDF vector.
    lexical: Sparse,
    /// Its weighted squared norm.
    norm2: f32,
    /// Weighted dot product with the code's sum of members.
    dot_sum: f32,
}

impl SuggestIndex {
    /// Builds the index from `(passage row id, text, vector)` rows; `None` without rows.
    pub fn build(rows: Vec<(i64, String, Vec<f32>)>, language: &str) -> Option<SuggestIndex> {
        let dim = rows.first()?.2.len();
        let rows: Vec<_> = rows.into_iter().filter(|r| r.2.len() == dim).collect();
        let texts: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
        let tfidf = TfIdf::fit(&texts, language);
        let vocabulary = tfidf
            .rows
            .iter()
            .flat_map(|r| r.iter().map(|e| e.0 as usize + 1))
            .max()
            .unwrap_or(0);
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        Some(SuggestIndex {
            row_of: ids.iter().enumerate().map(|(i, &id)| (id, i)).collect(),
            ids,
            dense: rows.iter().flat_map(|r| r.2.iter().copied()).collect(),
            dim,
            tfidf,
            text_vectors: HashMap::new(),
            vocabulary,
            weight: E5_WEIGHT,
        })
    }

    /// Adds the code texts' dense vectors (those of another length are left out).
    pub fn with_text_vectors(
        mut self,
        vectors: impl IntoIterator<Item = (String, Vec<f32>)>,
    ) -> Self {
        self.text_vectors = vectors
            .into_iter()
            .filter(|(_, v)| v.len() == self.dim)
            .collect();
        self
    }

    /// Passages in the index.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn dense_row(&self, i: usize) -> &[f32] {
        &self.dense[i * self.dim..(i + 1) * self.dim]
    }

    /// Weighted squared norm of row `i` (1, or the dense share alone without content words).
    fn norm2(&self, i: usize) -> f32 {
        let d: f32 = self.dense_row(i).iter().map(|v| v * v).sum();
        let l: f32 = self.tfidf.rows[i].iter().map(|e| e.1 * e.1).sum();
        self.weight * d + (1.0 - self.weight) * l
    }

    fn sums(&self, codings: &[(i64, i64)], live: &[i64], texts: &[Option<String>]) -> CodeSums {
        let index_of: HashMap<i64, usize> =
            live.iter().enumerate().map(|(c, &id)| (id, c)).collect();
        let m = live.len();
        let mut s = CodeSums {
            codes: live.to_vec(),
            members: vec![Vec::new(); m],
            dense: vec![0f32; m * self.dim],
            lexical: vec![0f32; m * self.vocabulary],
            norm2: vec![0f32; m],
            code_of_row: vec![None; self.ids.len()],
            definitions: Vec::with_capacity(m),
        };
        for (code, passage) in codings {
            let (Some(&c), Some(&r)) = (index_of.get(code), self.row_of.get(passage)) else {
                continue;
            };
            s.members[c].push(r);
            s.code_of_row[r] = Some(c);
            let dense = &mut s.dense[c * self.dim..(c + 1) * self.dim];
            for (a, v) in dense.iter_mut().zip(self.dense_row(r)) {
                *a += v;
            }
            let lexical = &mut s.lexical[c * self.vocabulary..(c + 1) * self.vocabulary];
            for &(t, v) in &self.tfidf.rows[r] {
                lexical[t as usize] += v;
            }
        }
        for c in 0..m {
            let d: f32 = s.dense[c * self.dim..(c + 1) * self.dim]
                .iter()
                .map(|v| v * v)
                .sum();
            let l: f32 = s.lexical[c * self.vocabulary..(c + 1) * self.vocabulary]
                .iter()
                .map(|v| v * v)
                .sum();
            s.norm2[c] = self.weight * d + (1.0 - self.weight) * l;
        }
        s.definitions = (0..m)
            .map(|c| {
                let text = texts.get(c)?.as_deref()?;
                let lexical = self.tfidf.vectorise(text);
                let dense = self.text_vectors.get(text).cloned();
                let dense_sum = &s.dense[c * self.dim..(c + 1) * self.dim];
                let (dense2, dense_dot) = dense.as_ref().map_or((0.0, 0.0), |d| {
                    (dot_product(d, d), dot_product(d, dense_sum))
                });
                let sum = &s.lexical[c * self.vocabulary..(c + 1) * self.vocabulary];
                let norm2 = self.weight * dense2
                    + (1.0 - self.weight) * lexical.iter().map(|e| e.1 * e.1).sum::<f32>();
                let dot_sum = self.weight * dense_dot
                    + (1.0 - self.weight)
                        * lexical
                            .iter()
                            .map(|&(t, v)| v * sum[t as usize])
                            .sum::<f32>();
                (norm2 > 1e-9).then_some(Definition {
                    dense,
                    lexical,
                    norm2,
                    dot_sum,
                })
            })
            .collect();
        s
    }

    /// Weighted dot product of row `i` with code `c`'s sum.
    fn dot_sum(&self, i: usize, s: &CodeSums, c: usize) -> f32 {
        let dense = &s.dense[c * self.dim..(c + 1) * self.dim];
        let d: f32 = self
            .dense_row(i)
            .iter()
            .zip(dense)
            .map(|(a, b)| a * b)
            .sum();
        let lexical = &s.lexical[c * self.vocabulary..(c + 1) * self.vocabulary];
        let l: f32 = self.tfidf.rows[i]
            .iter()
            .map(|&(t, v)| v * lexical[t as usize])
            .sum();
        self.weight * d + (1.0 - self.weight) * l
    }

    /// Probability of each live code for row `i` (codes with no evidence left: 0). The row's
    /// own code is scored without the row itself.
    fn probabilities(&self, i: usize, s: &CodeSums) -> Vec<f32> {
        let m = s.codes.len();
        let own = s.code_of_row[i];
        let self2 = self.norm2(i);
        let mut cosines = vec![f32::NEG_INFINITY; m];
        for (c, cos) in cosines.iter_mut().enumerate() {
            let mut dot = self.dot_sum(i, s, c);
            let mut norm2 = s.norm2[c];
            let mut members = s.members[c].len();
            let definition = s.definitions[c].as_ref().map(|d| {
                let dense = d
                    .dense
                    .as_ref()
                    .map_or(0.0, |v| dot_product(v, self.dense_row(i)));
                let to_row = self.weight * dense
                    + (1.0 - self.weight) * sparse_dot(&self.tfidf.rows[i], &d.lexical);
                (d, to_row)
            });
            let mut cross = definition.as_ref().map_or(0.0, |(d, _)| d.dot_sum);
            if own == Some(c) {
                // Leave the row out of its own code: S' = S − x.
                norm2 += self2 - 2.0 * dot;
                dot -= self2;
                members -= 1;
                cross -= definition.as_ref().map_or(0.0, |(_, to_row)| *to_row);
            }
            let examples = (members > 0 && norm2 > 1e-9).then(|| (dot, norm2.sqrt()));
            *cos = match (examples, definition) {
                (Some((dot, norm)), None) => dot / norm,
                (None, Some((d, to_row))) => to_row / d.norm2.sqrt(),
                (Some((dot, norm)), Some((d, to_row))) => {
                    // Cosine to (1−s)·S'/|S'| + s·d/|d|, as the command line mixes them.
                    let share = DEFINITION_SHARE;
                    let dn = d.norm2.sqrt();
                    let along = (1.0 - share) * dot / norm + share * to_row / dn;
                    let point2 = (1.0 - share).powi(2)
                        + share * share
                        + 2.0 * share * (1.0 - share) * cross / (norm * dn);
                    along / point2.max(1e-12).sqrt()
                }
                (None, None) => f32::NEG_INFINITY,
            };
        }
        if cosines.iter().all(|c| *c == f32::NEG_INFINITY) {
            return vec![0.0; m];
        }
        softmax(&cosines, TEMPERATURE)
    }
}

impl Project {
    /// The suggestion index of this project, or `None` when its analysis stored no passage
    /// vectors (projects imported before they existed: see [`NO_VECTORS`]).
    pub fn suggestion_index(&self) -> Result<Option<SuggestIndex>, ReviewError> {
        let db = self.db();
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT p.id, p.text, v.vector FROM passages p
                 JOIN passage_vectors v ON v.passage_id = p.id ORDER BY p.id",
            )
            .map_err(&db)?;
        let rows = stmt
            .query_map([], |r| {
                let vector = blob_vector(&r.get::<_, Vec<u8>>(2)?);
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, vector))
            })
            .map_err(&db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&db)?;
        let language: String = self
            .conn()
            .query_row(
                "SELECT language FROM recordings GROUP BY language ORDER BY COUNT(*) DESC, language LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap_or_else(|_| "es".to_string());
        let texts = self
            .conn()
            .prepare("SELECT text, vector FROM code_text_vectors WHERE version = ?1")
            .map_err(&db)?
            .query_map([crate::export::analysis_json::VECTORS_VERSION], |r| {
                let vector = blob_vector(&r.get::<_, Vec<u8>>(1)?);
                Ok((r.get::<_, String>(0)?, vector))
            })
            .map_err(&db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&db)?;
        Ok(SuggestIndex::build(rows, &language).map(|ix| ix.with_text_vectors(texts)))
    }

    /// The codes and codings as they are now.
    fn live_codes_and_codings(&self) -> Result<Coding, ReviewError> {
        let db = self.db();
        let codes = self
            .conn()
            .prepare("SELECT id, label, definition FROM codes WHERE status IN ('proposed', 'accepted') ORDER BY position, id")
            .map_err(&db)?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(&db)?
            .collect::<Result<Vec<(i64, String, String)>, _>>()
            .map_err(&db)?;
        let live = codes.iter().map(|c| c.0).collect();
        let texts = codes.iter().map(|c| code_text(&c.1, &c.2)).collect();
        let rows = self
            .conn()
            .prepare("SELECT code_id, passage_id, reviewed FROM codings ORDER BY id")
            .map_err(&db)?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(&db)?
            .collect::<Result<Vec<(i64, i64, bool)>, _>>()
            .map_err(&db)?;
        let reviewed = rows.iter().filter(|r| r.2).map(|r| r.1).collect();
        let codings = rows.into_iter().map(|(c, p, _)| (c, p)).collect();
        Ok(Coding {
            live,
            texts,
            codings,
            reviewed,
        })
    }

    /// The passages whose most likely code is `code`, most confident first (at most `limit`),
    /// leaving out the passages already in it.
    pub fn suggest(
        &self,
        index: &SuggestIndex,
        code: i64,
        limit: usize,
    ) -> Result<Suggestions, ReviewError> {
        let Coding {
            live,
            texts,
            codings,
            reviewed,
        } = self.live_codes_and_codings()?;
        let Some(target) = live.iter().position(|&c| c == code) else {
            return Err(self.not_live(code)?);
        };
        let sums = index.sums(&codings, &live, &texts);
        let code_now: HashMap<i64, i64> = codings.iter().map(|&(c, p)| (p, c)).collect();
        let candidate = |i: usize| match sums.code_of_row[i] {
            Some(c) => {
                c != target && sums.members[c].len() > 1 && !reviewed.contains(&index.ids[i])
            }
            None => !reviewed.contains(&index.ids[i]),
        };
        let mut found: Vec<(usize, f32)> = (0..index.len())
            .filter(|&i| candidate(i))
            .filter_map(|i| {
                let p = index.probabilities(i, &sums);
                let best = crate::themes::by_example::best_code(&p)?;
                (best.0 == target && best.1 > 0.0).then_some((i, best.1))
            })
            .collect();
        found.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        found.truncate(limit);
        let db = self.db();
        let mut stmt = self
            .conn()
            .prepare("SELECT uri, start_ms, end_ms, speaker, text FROM passages WHERE id = ?1")
            .map_err(&db)?;
        let mut suggestions = Vec::with_capacity(found.len());
        for (i, confidence) in found {
            let passage = index.ids[i];
            let s = stmt
                .query_row(params![passage], |r| {
                    Ok(Suggestion {
                        passage,
                        uri: r.get(0)?,
                        start_ms: r.get(1)?,
                        end_ms: r.get(2)?,
                        speaker: r.get(3)?,
                        text: r.get(4)?,
                        confidence,
                        confident: confidence >= CONFIDENCE_THRESHOLD,
                        code_now: code_now.get(&passage).copied(),
                    })
                })
                .map_err(&db)?;
            suggestions.push(s);
        }
        Ok(Suggestions {
            code,
            examples: sums.members[target].len(),
            suggestions,
        })
    }

    /// The live codes for `passage`, most likely first (its own code scored without it).
    /// Empty when the passage has no vector (a moderator's passage, say).
    pub fn code_chances(
        &self,
        index: &SuggestIndex,
        passage: i64,
    ) -> Result<Vec<CodeChance>, ReviewError> {
        let Coding {
            live,
            texts,
            codings,
            ..
        } = self.live_codes_and_codings()?;
        let Some(&row) = index.row_of.get(&passage) else {
            return Ok(Vec::new());
        };
        let sums = index.sums(&codings, &live, &texts);
        let p = index.probabilities(row, &sums);
        let db = self.db();
        let mut stmt = self
            .conn()
            .prepare("SELECT label FROM codes WHERE id = ?1")
            .map_err(&db)?;
        let mut chances = Vec::new();
        for (&code, &confidence) in live.iter().zip(&p) {
            if confidence > 0.0 {
                let label: String = stmt.query_row([code], |r| r.get(0)).map_err(&db)?;
                chances.push(CodeChance {
                    code,
                    label,
                    confidence,
                });
            }
        }
        chances.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        Ok(chances)
    }

    /// The error for suggestions asked of a code that is not live.
    fn not_live(&self, code: i64) -> Result<ReviewError, ReviewError> {
        let status: Option<String> = self
            .conn()
            .query_row("SELECT status FROM codes WHERE id = ?1", [code], |r| {
                r.get(0)
            })
            .ok();
        Ok(match status {
            None => ReviewError::NoSuch {
                what: "code",
                id: code.to_string(),
            },
            Some(s) => ReviewError::Refused {
                reason: format!(
                    "code {code} is {s}; reopen it (or undo the merge) to get suggestions for it"
                ),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> SuggestIndex {
        let rows = vec![
            (10, "el precio del envío es caro", vec![1.0, 0.0]),
            (11, "pagar tanto por el envío es caro", vec![0.9, 0.1]),
            (12, "la aplicación tiene un diseño claro", vec![0.0, 1.0]),
            (13, "el diseño de la aplicación confunde", vec![0.1, 0.9]),
            (14, "el envío cuesta un precio alto", vec![0.8, 0.2]),
        ];
        let rows = rows
            .into_iter()
            .map(|(id, t, v): (i64, &str, Vec<f32>)| {
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                (id, t.to_string(), v.iter().map(|x| x / n).collect())
            })
            .collect();
        SuggestIndex::build(rows, "es").unwrap()
    }

    #[test]
    fn a_passage_leans_to_the_code_of_its_neighbours_and_is_left_out_of_its_own() {
        let ix = index();
        let live = [1, 2];
        // Code 1 has passages 10 and 12 (12 misplaced by the machine), code 2 has 13.
        let sums = ix.sums(&[(1, 10), (1, 12), (2, 13)], &live, &[]);
        let p = ix.probabilities(ix.row_of[&12], &sums);
        assert!(p[1] > 0.9, "12 is about design, like 13: {p:?}");
        let p = ix.probabilities(ix.row_of[&14], &sums);
        assert!(p[0] > p[1], "14 is about prices: {p:?}");
        // A code whose only member is the row itself gives it no evidence.
        let sums = ix.sums(&[(1, 10), (2, 13)], &live, &[]);
        assert_eq!(ix.probabilities(ix.row_of[&13], &sums)[1], 0.0);
    }

    #[test]
    fn a_code_with_a_definition_and_no_passages_gets_the_passages_its_words_describe() {
        let ix = index();
        let live = [1, 2];
        // Code 1 has passage 12 (design); code 2 has no passage, only its name and definition.
        let texts = [
            code_text("diseño", ""),
            code_text("precio_envio", "lo que cuesta el envío"),
        ];
        let sums = ix.sums(&[(1, 12)], &live, &texts);
        for id in [10, 11, 14] {
            let p = ix.probabilities(ix.row_of[&id], &sums);
            assert!(p[1] > 0.9, "{id} is about the price of shipping: {p:?}");
        }
        let p = ix.probabilities(ix.row_of[&13], &sums);
        assert!(p[0] > 0.9, "13 is about design: {p:?}");
        // Without texts, code 2 has no evidence at all.
        let sums = ix.sums(&[(1, 12)], &live, &[None, None]);
        assert_eq!(ix.probabilities(ix.row_of[&10], &sums)[1], 0.0);
    }

    #[test]
    fn a_definition_counts_by_its_stored_meaning_when_its_words_are_in_no_passage() {
        let live = [1, 2];
        // Code 2's words occur in no passage: by TF-IDF alone it has no evidence.
        let texts = [
            code_text("diseño", ""),
            code_text("coste", "gastos de transporte"),
        ];
        let ix = index();
        let sums = ix.sums(&[(1, 12)], &live, &texts);
        assert_eq!(ix.probabilities(ix.row_of[&10], &sums)[1], 0.0);
        // With the vector the analysis stored for its text, it gets the passages it means.
        let stored = texts[1].clone().unwrap();
        let ix = index().with_text_vectors([(stored, vec![1.0, 0.0]), ("x".into(), vec![1.0])]);
        assert_eq!(
            ix.text_vectors.len(),
            1,
            "a vector of another length is left out"
        );
        let sums = ix.sums(&[(1, 12)], &live, &texts);
        for id in [10, 11, 14] {
            let p = ix.probabilities(ix.row_of[&id], &sums);
            assert!(p[1] > 0.9, "{id} is about what shipping costs: {p:?}");
        }
        let p = ix.probabilities(ix.row_of[&13], &sums);
        assert!(p[0] > 0.9, "13 is about design: {p:?}");
    }

    #[test]
    fn a_name_mixes_with_the_examples_as_on_the_command_line() {
        let n = (0.95f32 * 0.95 + 0.05 * 0.05).sqrt();
        let stored = [
            ("precio".to_string(), vec![0.95 / n, 0.05 / n]),
            ("diseño".to_string(), vec![0.0, 1.0]),
        ];
        // The text's TF-IDF half alone, and with its stored dense half.
        for ix in [index(), index().with_text_vectors(stored.clone())] {
            name_mixes_like_the_command_line(&ix);
        }
    }

    fn name_mixes_like_the_command_line(ix: &SuggestIndex) {
        let w = ix.weight;
        // A fused point as unit parts (dense, lexical).
        let unit = |dense: Vec<f32>, lex: Sparse| {
            let n = (w * dense.iter().map(|v| v * v).sum::<f32>()
                + (1.0 - w) * lex.iter().map(|e| e.1 * e.1).sum::<f32>())
            .sqrt();
            let dense: Vec<f32> = dense.iter().map(|v| v / n).collect();
            let lex: Sparse = lex.iter().map(|&(t, v)| (t, v / n)).collect();
            (dense, lex)
        };
        // The command line's point: (1−s)·unit(example) + s·unit(text), then its cosine.
        let cosine = |row: usize, example: usize, text: &str| {
            let e = unit(
                ix.dense_row(example).to_vec(),
                ix.tfidf.rows[example].clone(),
            );
            let dense = ix.text_vectors.get(text).cloned();
            let d = unit(
                dense.unwrap_or_else(|| vec![0.0; ix.dim]),
                ix.tfidf.vectorise(text),
            );
            let s = DEFINITION_SHARE;
            let dense =
                e.0.iter()
                    .zip(&d.0)
                    .map(|(a, b)| (1.0 - s) * a + s * b)
                    .collect();
            let mut lex: std::collections::BTreeMap<u32, f32> = Default::default();
            for &(t, v) in &e.1 {
                *lex.entry(t).or_default() += (1.0 - s) * v;
            }
            for &(t, v) in &d.1 {
                *lex.entry(t).or_default() += s * v;
            }
            let (pd, pl) = unit(dense, lex.into_iter().collect());
            w * ix
                .dense_row(row)
                .iter()
                .zip(&pd)
                .map(|(a, b)| a * b)
                .sum::<f32>()
                + (1.0 - w) * sparse_dot(&ix.tfidf.rows[row], &pl)
        };
        let texts = [code_text("precio", ""), code_text("diseño", "")];
        let sums = ix.sums(&[(1, 10), (2, 12)], &[1, 2], &texts);
        let row = ix.row_of[&14];
        let p = ix.probabilities(row, &sums);
        let expected = softmax(
            &[
                cosine(row, ix.row_of[&10], "precio"),
                cosine(row, ix.row_of[&12], "diseño"),
            ],
            TEMPERATURE,
        );
        assert!((p[0] - expected[0]).abs() < 1e-4, "{p:?} vs {expected:?}");
        assert!(p[0] > 0.5, "14 is about prices: {p:?}");
    }
}
