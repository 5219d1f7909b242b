//! Long-form scoring: a recording built from utterances with known texts and times, scored
//! utterance by utterance, so a lost sentence shows as a lost sentence instead of a fraction of
//! a point of WER.
//!
//! [`concatenate`] builds the recording: clips joined with the given pauses, each clip's span
//! remembered as an [`Utterance`]. [`score`] hands every hypothesis word to the utterance its
//! start falls in (a word's end is the less reliable of its times) (or the nearest one within [`WORD_SLACK_MS`], since word times are
//! approximate); words farther from every utterance lie in a pause and are counted as
//! invented. An utterance is *missing* when at most [`MISSING_RECALL`] of its reference words
//! came out right. An utterance may come without a reference text (empty `text`): it then only
//! counts as missing when no word at all starts in it, and it adds nothing to the WER.

use serde::{Deserialize, Serialize};

use super::wer::{WerReport, word_error_rate_lang};
use crate::transcript::Word;

/// A word this far outside an utterance still belongs to it (word times are estimates).
pub const WORD_SLACK_MS: u64 = 1_000;

/// An utterance with this share of its words right, or less, counts as missing.
pub const MISSING_RECALL: f64 = 0.2;

/// One utterance of a long-form recording: where it is and what was said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Utterance {
    /// Start in the recording.
    pub start_ms: u64,
    /// End in the recording.
    pub end_ms: u64,
    /// The reference text.
    pub text: String,
}

/// Joins 16 kHz clips into one recording: `pauses_ms[i]` of silence before clip `i` (missing
/// entries mean no pause). Returns the samples and each clip's place.
pub fn concatenate(clips: &[(Vec<f32>, String)], pauses_ms: &[u64]) -> (Vec<f32>, Vec<Utterance>) {
    const SAMPLES_PER_MS: usize = 16;
    let mut samples = Vec::new();
    let mut utterances = Vec::with_capacity(clips.len());
    for (i, (clip, text)) in clips.iter().enumerate() {
        let pause = pauses_ms.get(i).copied().unwrap_or(0) as usize * SAMPLES_PER_MS;
        samples.resize(samples.len() + pause, 0.0);
        let start_ms = (samples.len() / SAMPLES_PER_MS) as u64;
        samples.extend_from_slice(clip);
        utterances.push(Utterance {
            start_ms,
            end_ms: (samples.len() / SAMPLES_PER_MS) as u64,
            text: text.clone(),
        });
    }
    (samples, utterances)
}

/// How one utterance came out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UtteranceScore {
    /// Position in the recording, from 0.
    pub index: usize,
    /// Where the utterance is.
    pub start_ms: u64,
    /// Where it ends.
    pub end_ms: u64,
    /// The edits against its reference.
    pub wer: WerReport,
    /// The words given to it, joined by spaces.
    pub hypothesis: String,
    /// Whether it counts as lost (see [`MISSING_RECALL`]).
    pub missing: bool,
}

/// A whole recording's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LongformScore {
    /// Each utterance, in order.
    pub utterances: Vec<UtteranceScore>,
    /// The sum over utterances.
    pub total: WerReport,
    /// The whole recording's text against all references joined, ignoring word times (fair to
    /// systems whose word times drift; blind to which utterance a word went to).
    pub whole_text: WerReport,
    /// Hypothesis words in pauses, far from every utterance: text invented over silence.
    pub invented_words: Vec<String>,
}

impl LongformScore {
    /// The utterances that count as lost.
    pub fn missing(&self) -> impl Iterator<Item = &UtteranceScore> {
        self.utterances.iter().filter(|u| u.missing)
    }
}

/// Scores hypothesis `words` (any order) against `utterances` in `lang`.
pub fn score(utterances: &[Utterance], words: &[Word], lang: &str) -> LongformScore {
    let mut words: Vec<&Word> = words.iter().collect();
    words.sort_by_key(|w| w.start_ms);
    let all_references: Vec<&str> = utterances
        .iter()
        .filter(|u| !u.text.trim().is_empty())
        .map(|u| u.text.as_str())
        .collect();
    let all_words: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
    let whole_text = if all_references.is_empty() {
        WerReport::default()
    } else {
        word_error_rate_lang(&all_references.join(" "), &all_words.join(" "), lang)
    };
    let mut given: Vec<Vec<&str>> = vec![Vec::new(); utterances.len()];
    let mut invented_words = Vec::new();
    for w in words {
        match owner(utterances, w.start_ms) {
            Some(ix) => given[ix].push(&w.text),
            None => invented_words.push(w.text.clone()),
        }
    }
    let scored: Vec<UtteranceScore> = utterances
        .iter()
        .zip(given)
        .enumerate()
        .map(|(index, (u, hyp))| {
            let hypothesis = hyp.join(" ");
            let (wer, missing) = if u.text.trim().is_empty() {
                (WerReport::default(), hyp.is_empty())
            } else {
                let wer = word_error_rate_lang(&u.text, &hypothesis, lang);
                let right = wer.reference_words - wer.substitutions - wer.deletions;
                (
                    wer,
                    right as f64 <= MISSING_RECALL * wer.reference_words as f64,
                )
            };
            UtteranceScore {
                index,
                start_ms: u.start_ms,
                end_ms: u.end_ms,
                wer,
                hypothesis,
                missing,
            }
        })
        .collect();
    LongformScore {
        total: scored.iter().map(|u| u.wer).sum(),
        whole_text,
        utterances: scored,
        invented_words,
    }
}

/// The utterance a word starting at `at_ms` belongs to: the one containing it, else the
/// nearest within [`WORD_SLACK_MS`].
fn owner(utterances: &[Utterance], at_ms: u64) -> Option<usize> {
    let distance = |u: &Utterance| {
        if at_ms < u.start_ms {
            u.start_ms - at_ms
        } else {
            at_ms.saturating_sub(u.end_ms)
        }
    };
    utterances
        .iter()
        .enumerate()
        .map(|(ix, u)| (distance(u), ix))
        .min()
        .filter(|&(d, _)| d <= WORD_SLACK_MS)
        .map(|(_, ix)| ix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, start_ms: u64) -> Word {
        Word {
            text: text.to_string(),
            start_ms,
            end_ms: start_ms + 300,
            probability: 0.9,
        }
    }

    #[test]
    fn concatenation_remembers_where_each_clip_is() {
        let clips = vec![
            (vec![0.1; 16_000], "uno".to_string()),
            (vec![0.1; 8_000], "dos".to_string()),
        ];
        let (samples, utts) = concatenate(&clips, &[0, 2_000]);
        assert_eq!(samples.len(), 16_000 + 32_000 + 8_000);
        assert_eq!((utts[0].start_ms, utts[0].end_ms), (0, 1_000));
        assert_eq!((utts[1].start_ms, utts[1].end_ms), (3_000, 3_500));
    }

    #[test]
    fn a_lost_utterance_and_words_in_a_pause_are_shown() {
        let utts = vec![
            Utterance {
                start_ms: 0,
                end_ms: 2_000,
                text: "hola a todos".to_string(),
            },
            Utterance {
                start_ms: 10_000,
                end_ms: 12_000,
                text: "buenas noches".to_string(),
            },
        ];
        let words = [
            word("Hola", 100),
            word("a", 600),
            word("todos.", 2_500), // late, still the first utterance's
            word("dos.", 4_000),
            word("Gracias.", 6_000),
        ];
        let s = score(&utts, &words, "es");
        assert_eq!(s.utterances[0].wer.errors(), 0);
        assert!(!s.utterances[0].missing);
        assert!(s.utterances[1].missing);
        assert_eq!(s.missing().count(), 1);
        assert_eq!(s.invented_words, ["dos.", "Gracias."]);
        assert_eq!(s.total.deletions, 2);
    }

    #[test]
    fn an_utterance_without_reference_is_missing_only_without_words() {
        let utts = vec![Utterance {
            start_ms: 0,
            end_ms: 2_000,
            text: String::new(),
        }];
        let heard = score(&utts, &[word("algo", 500)], "es");
        assert!(!heard.utterances[0].missing);
        assert_eq!(heard.total, WerReport::default());
        assert!(score(&utts, &[], "es").utterances[0].missing);
    }
}
