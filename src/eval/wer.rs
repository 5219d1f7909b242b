//! Word error rate: how far a hypothesis transcript is from a reference, in word edits.
//!
//! Both texts are normalised ([`super::normalize_text`]), then aligned word by word with
//! Levenshtein distance (substitution, deletion and insertion each cost 1). The report counts
//! the edits of one minimal alignment; WER = (S + D + I) / N, N being the reference's words.
//! Among alignments of equal cost the one preferring substitutions, then deletions, then
//! insertions is counted, so the breakdown is deterministic.
//! Memory is linear in the hypothesis length, so hour-long transcripts are fine.

use std::ops::{Add, AddAssign};

use serde::Serialize;

use super::normalize_text_lang;

/// Edit counts from aligning a hypothesis against a reference.
///
/// Reports add up (`+`, `+=`, `sum()`), giving corpus WER as total edits over total reference
/// words, the usual way to score many recordings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WerReport {
    /// Reference words replaced by another word.
    pub substitutions: usize,
    /// Reference words missing from the hypothesis.
    pub deletions: usize,
    /// Hypothesis words with no reference counterpart.
    pub insertions: usize,
    /// Words in the normalised reference (N).
    pub reference_words: usize,
}

impl WerReport {
    /// Total edits: S + D + I.
    pub fn errors(&self) -> usize {
        self.substitutions + self.deletions + self.insertions
    }

    /// (S + D + I) / N. Can exceed 1 when there are many insertions.
    ///
    /// With an empty reference it is 0.0 if the hypothesis is empty too and 1.0 otherwise,
    /// rather than NaN or infinity, so averages and tables stay finite.
    pub fn wer(&self) -> f64 {
        match (self.reference_words, self.errors()) {
            (0, 0) => 0.0,
            (0, _) => 1.0,
            (n, e) => e as f64 / n as f64,
        }
    }
}

impl Add for WerReport {
    type Output = WerReport;

    fn add(self, other: WerReport) -> WerReport {
        WerReport {
            substitutions: self.substitutions + other.substitutions,
            deletions: self.deletions + other.deletions,
            insertions: self.insertions + other.insertions,
            reference_words: self.reference_words + other.reference_words,
        }
    }
}

impl AddAssign for WerReport {
    fn add_assign(&mut self, other: WerReport) {
        *self = *self + other;
    }
}

impl std::iter::Sum for WerReport {
    fn sum<I: Iterator<Item = WerReport>>(iter: I) -> WerReport {
        iter.fold(WerReport::default(), Add::add)
    }
}

/// Word error rate of `hypothesis` against `reference`, both normalised without number spelling.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> WerReport {
    word_error_rate_lang(reference, hypothesis, "")
}

/// Like [`word_error_rate`], with numbers spelled out in `lang` first (see
/// [`super::normalize_text_lang`]), so `25` and `veinticinco` match.
pub fn word_error_rate_lang(reference: &str, hypothesis: &str, lang: &str) -> WerReport {
    align(
        &normalize_text_lang(reference, lang),
        &normalize_text_lang(hypothesis, lang),
    )
}

/// Cost so far plus the edits that make it up, for one cell of the alignment table.
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    cost: usize,
    report: WerReport,
}

impl Cell {
    fn with(self, edit: fn(&mut WerReport)) -> Cell {
        let mut next = self;
        next.cost += 1;
        edit(&mut next.report);
        next
    }
}

/// Levenshtein alignment over words, keeping two rows of the table, each cell carrying the
/// edit counts of its best path (counts cannot be recovered from costs alone without the
/// full table, which for two hour-long transcripts would take gigabytes).
fn align(reference: &[String], hypothesis: &[String]) -> WerReport {
    // Row for zero reference words: every hypothesis word so far is an insertion.
    let mut row: Vec<Cell> = Vec::with_capacity(hypothesis.len() + 1);
    row.push(Cell::default());
    for j in 0..hypothesis.len() {
        row.push(row[j].with(|r| r.insertions += 1));
    }
    for ref_word in reference {
        let mut next = Vec::with_capacity(row.len());
        next.push(row[0].with(|r| r.deletions += 1));
        for (j, hyp_word) in hypothesis.iter().enumerate() {
            let diagonal = if ref_word == hyp_word {
                row[j]
            } else {
                row[j].with(|r| r.substitutions += 1)
            };
            let deletion = row[j + 1].with(|r| r.deletions += 1);
            let insertion = next[j].with(|r: &mut WerReport| r.insertions += 1);
            // min_by_key keeps the first of equals: substitution, then deletion, then insertion.
            let best = [diagonal, deletion, insertion]
                .into_iter()
                .min_by_key(|c| c.cost)
                .unwrap_or(diagonal);
            next.push(best);
        }
        row = next;
    }
    let mut report = row[hypothesis.len()].report;
    report.reference_words = reference.len();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(r: &WerReport) -> (usize, usize, usize, usize) {
        (
            r.substitutions,
            r.deletions,
            r.insertions,
            r.reference_words,
        )
    }

    #[test]
    fn identical_is_zero() {
        let r = word_error_rate("hola a todos", "Hola, a todos.");
        assert_eq!(counts(&r), (0, 0, 0, 3));
        assert_eq!(r.wer(), 0.0);
    }

    #[test]
    fn one_substitution() {
        let r = word_error_rate("el gato negro", "el pato negro");
        assert_eq!(counts(&r), (1, 0, 0, 3));
        assert!((r.wer() - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn one_deletion() {
        let r = word_error_rate("el gato negro", "el negro");
        assert_eq!(counts(&r), (0, 1, 0, 3));
    }

    #[test]
    fn one_insertion() {
        let r = word_error_rate("el gato negro", "el gato muy negro");
        assert_eq!(counts(&r), (0, 0, 1, 3));
    }

    #[test]
    fn empty_hypothesis_is_all_deletions() {
        let r = word_error_rate("uno dos tres cuatro", "");
        assert_eq!(counts(&r), (0, 4, 0, 4));
        assert_eq!(r.wer(), 1.0);
    }

    #[test]
    fn empty_reference_is_finite() {
        assert_eq!(word_error_rate("", "").wer(), 0.0);
        let r = word_error_rate("¿?", "hola");
        assert_eq!(counts(&r), (0, 0, 1, 0));
        assert_eq!(r.wer(), 1.0);
    }

    #[test]
    fn insertions_can_push_wer_above_one() {
        let r = word_error_rate("sí", "no no no");
        assert_eq!(r.errors(), 3);
        assert_eq!(r.wer(), 3.0);
    }

    #[test]
    fn mixed_edits_are_minimal() {
        // b→x (S), d deleted (D).
        let r = word_error_rate("a b c d e", "a x c e");
        assert_eq!(counts(&r), (1, 1, 0, 5));
        // Two words inserted (I) in the middle.
        let r = word_error_rate("a b c", "a b z z2 c");
        assert_eq!(counts(&r), (0, 0, 2, 3));
    }

    #[test]
    fn equal_cost_alignments_prefer_substitutions() {
        // One D + one S + one I, or three S: both cost 3; the report counts three S.
        let r = word_error_rate("a b c d e", "a x c e f");
        assert_eq!(counts(&r), (3, 0, 0, 5));
    }

    #[test]
    fn accents_and_punctuation_do_not_count() {
        let r = word_error_rate("«¿Qué tal?», dijo Óscar.", "que tal dijo oscar");
        assert_eq!(r.errors(), 0);
    }

    #[test]
    fn numbers_match_their_words_with_a_language() {
        let reference = "Tengo veinticinco años y vivo aquí desde dos mil veinte";
        let hypothesis = "Tengo 25 años y vivo aquí desde 2020.";
        assert_eq!(
            word_error_rate_lang(reference, hypothesis, "es").errors(),
            0
        );
        assert!(word_error_rate(reference, hypothesis).errors() > 0);
    }

    #[test]
    fn reports_add_into_corpus_wer() {
        let total: WerReport = [
            word_error_rate("a b", "a c"),
            word_error_rate("d e f g", "d e f g"),
        ]
        .into_iter()
        .sum();
        assert_eq!(counts(&total), (1, 0, 0, 6));
        assert!((total.wer() - 1.0 / 6.0).abs() < 1e-12);
    }
}
