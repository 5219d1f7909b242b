//! The fused representation of passages: centred e5 vectors plus Spanish (or English,
//! Portuguese) TF-IDF over stemmed content words.
//!
//! Why both: e5-small places passages by overall meaning but blurs topic words ("envío",
//! "precio") that a researcher's categories often hinge on; TF-IDF catches exactly those words
//! but knows no synonyms. Fusing them 50/50 (`w·cos_e5 + (1−w)·cos_tfidf`, the cosine of the two
//! unit vectors concatenated with weights √w and √(1−w)) beat either alone on both labelled
//! corpus sets (see `tests/themes.rs`).
//!
//! TF-IDF: words are lower-cased letters and digits, stop words (Spanish, English, Portuguese)
//! and words under three letters dropped, then stemmed with the Snowball stemmer of the
//! transcripts' language (`rust-stemmers`); term frequency is sublinear (`1 + ln tf`), idf is
//! smoothed (`ln((1 + n) / (1 + df)) + 1`, as scikit-learn), rows are L2-normalised.

use std::collections::{HashMap, HashSet};

use rust_stemmers::{Algorithm, Stemmer};

use super::vectors::{Matrix, dot};

/// A sparse vector: `(term id, weight)` pairs sorted by term id.
pub type Sparse = Vec<(u32, f32)>;

/// Dot product of two sparse vectors sorted by term id.
pub fn sparse_dot(a: &[(u32, f32)], b: &[(u32, f32)]) -> f32 {
    let (mut i, mut j, mut s) = (0, 0, 0f32);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                s += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    s
}

/// Spanish, English and Portuguese stop words (lower-case).
pub fn stop_words() -> &'static HashSet<&'static str> {
    static SET: std::sync::OnceLock<HashSet<&'static str>> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        ["es", "en", "pt"]
            .iter()
            .filter_map(|l| stop_words::lookup(l))
            .flat_map(|words| words.iter().copied())
            .collect()
    })
}

/// Lower-case words of `text`: runs of letters and digits.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A word that can carry a topic: three letters or more, not a number, not a stop word.
pub fn is_content_word(w: &str) -> bool {
    w.chars().count() >= 3 && !w.chars().all(|c| c.is_ascii_digit()) && !stop_words().contains(w)
}

fn stemmer_for(language: &str) -> Option<Stemmer> {
    let algorithm = match language {
        "es" => Algorithm::Spanish,
        "en" => Algorithm::English,
        "pt" => Algorithm::Portuguese,
        "fr" => Algorithm::French,
        "de" => Algorithm::German,
        "it" => Algorithm::Italian,
        _ => return None,
    };
    Some(Stemmer::create(algorithm))
}

/// Stemmed content words of `text` (the TF-IDF terms), in order.
pub fn terms(text: &str, language: &str) -> Vec<String> {
    let stemmer = stemmer_for(language);
    words(text)
        .into_iter()
        .filter(|w| is_content_word(w))
        .map(|w| match &stemmer {
            Some(s) => s.stem(&w).into_owned(),
            None => w,
        })
        .collect()
}

/// TF-IDF vectors of a set of texts, with the vocabulary and idf to vectorise more texts
/// (code definitions) in the same space.
#[derive(Debug, Clone)]
pub struct TfIdf {
    language: String,
    vocab: HashMap<String, u32>,
    idf: Vec<f32>,
    /// One unit (or empty) row per text given to [`TfIdf::fit`].
    pub rows: Vec<Sparse>,
}

impl TfIdf {
    /// Fits idf on `texts` and vectorises them.
    pub fn fit(texts: &[&str], language: &str) -> TfIdf {
        let docs: Vec<Vec<String>> = texts.iter().map(|t| terms(t, language)).collect();
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut df: Vec<u32> = Vec::new();
        for doc in &docs {
            let distinct: HashSet<&String> = doc.iter().collect();
            let mut sorted: Vec<&String> = distinct.into_iter().collect();
            sorted.sort();
            for term in sorted {
                let next = vocab.len() as u32;
                let id = *vocab.entry(term.clone()).or_insert(next);
                if id as usize == df.len() {
                    df.push(0);
                }
                df[id as usize] += 1;
            }
        }
        let n = docs.len() as f32;
        let idf = df
            .iter()
            .map(|&d| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0)
            .collect();
        let mut model = TfIdf {
            language: language.to_string(),
            vocab,
            idf,
            rows: Vec::new(),
        };
        model.rows = docs.iter().map(|d| model.vector_of_terms(d)).collect();
        model
    }

    /// The unit TF-IDF vector of a new text (words outside the vocabulary are ignored).
    pub fn vectorise(&self, text: &str) -> Sparse {
        self.vector_of_terms(&terms(text, &self.language))
    }

    fn vector_of_terms(&self, doc: &[String]) -> Sparse {
        let mut tf: HashMap<u32, f32> = HashMap::new();
        for t in doc {
            if let Some(&id) = self.vocab.get(t) {
                *tf.entry(id).or_default() += 1.0;
            }
        }
        let mut v: Sparse = tf
            .into_iter()
            .map(|(id, c)| (id, (1.0 + c.ln()) * self.idf[id as usize]))
            .collect();
        v.sort_by_key(|e| e.0);
        let norm = v.iter().map(|e| e.1 * e.1).sum::<f32>().sqrt();
        if norm > 0.0 {
            for e in &mut v {
                e.1 /= norm;
            }
        }
        v
    }
}

/// Share of the fused similarity that comes from e5 (the rest from TF-IDF).
pub const E5_WEIGHT: f32 = 0.5;

/// Passages in the fused space: row `i` is a centred unit e5 vector and a unit TF-IDF vector.
#[derive(Debug, Clone)]
pub struct Fused {
    /// Centred unit e5 vectors.
    pub dense: Matrix,
    /// Unit TF-IDF vectors (empty when a passage has no content word).
    pub lexical: Vec<Sparse>,
    /// Weight of the dense part, `0..=1`.
    pub weight: f32,
}

/// A mean of fused rows (or a code definition), ready for cosine comparisons.
#[derive(Debug, Clone, PartialEq)]
pub struct FusedCentroid {
    /// Dense part (not normalised).
    pub dense: Vec<f32>,
    /// Lexical part (not normalised).
    pub lexical: Sparse,
    /// Norm of the weighted concatenation.
    pub norm: f32,
}

impl Fused {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.lexical.len()
    }

    /// Fused cosine of rows `i` and `j`.
    pub fn sim(&self, i: usize, j: usize) -> f32 {
        self.weight * dot(self.dense.row(i), self.dense.row(j))
            + (1.0 - self.weight) * sparse_dot(&self.lexical[i], &self.lexical[j])
    }

    /// Mean of `rows`.
    pub fn centroid(&self, rows: &[usize]) -> FusedCentroid {
        let dim = self.dense.dim();
        let mut dense = vec![0f32; dim];
        let mut lex: HashMap<u32, f32> = HashMap::new();
        let n = rows.len().max(1) as f32;
        for &r in rows {
            for (d, v) in dense.iter_mut().zip(self.dense.row(r)) {
                *d += v / n;
            }
            for &(id, v) in &self.lexical[r] {
                *lex.entry(id).or_default() += v / n;
            }
        }
        let mut lexical: Sparse = lex.into_iter().collect();
        lexical.sort_by_key(|e| e.0);
        FusedCentroid::new(dense, lexical, self.weight)
    }

    /// Sum of the rows weighted by `weights` (one per row), as a centroid (not divided by the
    /// total weight; its `norm` is that of the sum).
    pub fn weighted_sum(&self, weights: &[f32]) -> FusedCentroid {
        let mut dense = vec![0f32; self.dense.dim()];
        let mut lex: HashMap<u32, f32> = HashMap::new();
        for (r, &w) in weights.iter().enumerate().take(self.rows()) {
            if w == 0.0 {
                continue;
            }
            for (d, v) in dense.iter_mut().zip(self.dense.row(r)) {
                *d += w * v;
            }
            for &(id, v) in &self.lexical[r] {
                *lex.entry(id).or_default() += w * v;
            }
        }
        let mut lexical: Sparse = lex.into_iter().collect();
        lexical.sort_by_key(|e| e.0);
        FusedCentroid::new(dense, lexical, self.weight)
    }

    /// Fused cosine of row `i` with a centroid.
    pub fn sim_to(&self, i: usize, c: &FusedCentroid) -> f32 {
        if c.norm <= 0.0 {
            return 0.0;
        }
        (self.weight * dot(self.dense.row(i), &c.dense)
            + (1.0 - self.weight) * sparse_dot(&self.lexical[i], &c.lexical))
            / c.norm
    }

    /// All pairwise fused cosines, row-major `n × n`.
    pub fn similarity_matrix(&self) -> Vec<f32> {
        let n = self.rows();
        let mut s = vec![0f32; n * n];
        for i in 0..n {
            for j in i..n {
                let v = self.sim(i, j);
                s[i * n + j] = v;
                s[j * n + i] = v;
            }
        }
        s
    }
}

impl FusedCentroid {
    /// A centroid from its two parts (weight as in [`Fused::weight`]).
    pub fn new(dense: Vec<f32>, lexical: Sparse, weight: f32) -> FusedCentroid {
        let norm = (weight * dot(&dense, &dense)
            + (1.0 - weight) * lexical.iter().map(|e| e.1 * e.1).sum::<f32>())
        .sqrt();
        FusedCentroid {
            dense,
            lexical,
            norm,
        }
    }
}

/// The fused space of a set of passages: their fused rows, and what is needed to place a code
/// definition in the same space (the TF-IDF vocabulary and the e5 mean used for centring).
#[derive(Debug, Clone)]
pub struct FusedSpace {
    /// The passages' rows.
    pub fused: Fused,
    /// The TF-IDF fitted on the passages.
    pub tfidf: TfIdf,
    /// Mean of the raw e5 passage vectors.
    pub mean: Vec<f32>,
}

impl FusedSpace {
    /// Builds the space from passage texts and their raw e5 vectors (same order).
    pub fn build(texts: &[&str], vectors: &Matrix, language: &str, weight: f32) -> FusedSpace {
        let mean = vectors.mean();
        let tfidf = TfIdf::fit(texts, language);
        FusedSpace {
            fused: Fused {
                dense: vectors.centred_unit(&mean),
                lexical: tfidf.rows.clone(),
                weight,
            },
            tfidf,
            mean,
        }
    }

    /// A code definition as a unit point of the space: its e5 query vector centred like the
    /// passages, and the TF-IDF of its text.
    pub fn definition(&self, query_vector: &[f32], text: &str) -> FusedCentroid {
        FusedCentroid::new(
            super::vectors::centre_unit(query_vector, &self.mean),
            self.tfidf.vectorise(text),
            self.fused.weight,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spanish_terms_are_stemmed_content_words() {
        let t = terms("Los envíos llegan tarde y el envío cuesta demasiado", "es");
        assert!(!t.iter().any(|w| w == "los" || w == "el"), "{t:?}");
        let envio: Vec<&String> = t.iter().filter(|w| w.starts_with("env")).collect();
        assert_eq!(envio.len(), 2, "{t:?}");
        assert_eq!(
            envio[0], envio[1],
            "singular and plural share a stem: {t:?}"
        );
    }

    #[test]
    fn tfidf_rows_are_unit_and_shared_words_make_texts_similar() {
        let m = TfIdf::fit(
            &[
                "el precio del envío es caro",
                "los precios de los envíos suben",
                "la aplicación tiene un diseño claro",
            ],
            "es",
        );
        for r in &m.rows {
            let n: f32 = r.iter().map(|e| e.1 * e.1).sum();
            assert!((n - 1.0).abs() < 1e-5);
        }
        assert!(sparse_dot(&m.rows[0], &m.rows[1]) > 0.3);
        assert_eq!(sparse_dot(&m.rows[0], &m.rows[2]), 0.0);
        assert!(sparse_dot(&m.vectorise("precio"), &m.rows[0]) > 0.0);
    }
}
