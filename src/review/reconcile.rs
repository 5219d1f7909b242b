//! Corrections carried into what was built from the machine text.
//!
//! Passages (and the quotes among them) are slices of a transcript's canonical text, cut when the
//! machine transcribed it. When a reviewer corrects a segment, each passage that covers it must
//! read the corrected words, and the reviewed exports must code exactly those characters. The
//! corrected and the machine text are aligned word by word (a Myers diff from `similar`): a word
//! kept keeps its place and its timing, a replaced word takes the place of the one it replaces,
//! an inserted word belongs to the word before it (to the first word at the very start).

use std::collections::HashMap;
use std::ops::Range;

use similar::{Algorithm, DiffTag, capture_diff_slices};

use crate::passages::{Token, tokens};
use crate::transcript::{Transcript, Word};

/// Where each machine word of one segment begins among the corrected words.
///
/// `begins[i]` is the index of the first corrected word that stands for machine word `i`;
/// `begins[n]` (one past the last machine word) is the corrected word count. Non-decreasing, so a
/// machine word range `a..b` becomes the corrected range `begins[a]..begins[b]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WordMap {
    begins: Vec<usize>,
    /// For each corrected word, the machine word it is equal to (`None`: typed by the reviewer).
    kept: Vec<Option<usize>>,
}

impl WordMap {
    /// Aligns the whitespace-separated words of `machine` and `corrected`.
    pub(crate) fn new(machine: &str, corrected: &str) -> WordMap {
        let old: Vec<&str> = machine.split_whitespace().collect();
        let new: Vec<&str> = corrected.split_whitespace().collect();
        let mut begins = vec![0; old.len() + 1];
        let mut kept = vec![None; new.len()];
        for op in capture_diff_slices(Algorithm::Myers, &old, &new) {
            let (tag, o, n) = op.as_tag_tuple();
            for (j, i) in o.clone().enumerate() {
                begins[i] = match tag {
                    DiffTag::Equal => n.start + j,
                    // Replaced words share the replacement in proportion; deleted ones collapse.
                    _ => n.start + j * n.len() / o.len().max(1),
                };
            }
            if tag == DiffTag::Equal {
                for (j, k) in n.enumerate() {
                    kept[k] = Some(o.start + j);
                }
            }
        }
        begins[old.len()] = new.len();
        if let Some(first) = begins.first_mut() {
            // Words typed before the first machine word belong to it.
            *first = 0;
        }
        WordMap { begins, kept }
    }

    /// The corrected words that stand for machine words `range`.
    pub(crate) fn map(&self, range: Range<usize>) -> Range<usize> {
        let at = |i: usize| self.begins[i.min(self.begins.len() - 1)];
        at(range.start)..at(range.end).max(at(range.start))
    }
}

/// Word timings for a corrected segment: a word the reviewer left as it was keeps the machine
/// word's times and probability; a typed word is spread over the gap between its kept
/// neighbours, with probability 1 (a person wrote it). `None` when the machine words do not
/// line up one to one with the machine text's words (their times could not be trusted then).
pub(crate) fn corrected_words(
    machine_text: &str,
    machine_words: &[Word],
    corrected: &str,
    seg_span: (u64, u64),
) -> Option<Vec<Word>> {
    if machine_words.len() != machine_text.split_whitespace().count() {
        return None;
    }
    let map = WordMap::new(machine_text, corrected);
    let texts: Vec<&str> = corrected.split_whitespace().collect();
    let mut out: Vec<Word> = Vec::with_capacity(texts.len());
    let mut i = 0;
    while i < texts.len() {
        if let Some(m) = map.kept[i] {
            let w = &machine_words[m];
            out.push(Word {
                text: texts[i].to_string(),
                ..w.clone()
            });
            i += 1;
            continue;
        }
        // A run of typed words, between the previous kept word's end and the next one's start.
        let run_end = (i..texts.len())
            .find(|&k| map.kept[k].is_some())
            .unwrap_or(texts.len());
        let from = out.last().map_or(seg_span.0, |w| w.end_ms);
        let to = map.kept[run_end..]
            .first()
            .copied()
            .flatten()
            .map_or(seg_span.1, |m| machine_words[m].start_ms)
            .max(from);
        let n = (run_end - i) as u64;
        for (j, text) in texts[i..run_end].iter().enumerate() {
            let j = j as u64;
            out.push(Word {
                text: (*text).to_string(),
                start_ms: from + (to - from) * j / n,
                end_ms: from + (to - from) * (j + 1) / n,
                probability: 1.0,
            });
        }
        i = run_end;
    }
    Some(out)
}

/// A passage as it reads in the reviewed transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CorrectedPassage {
    /// The corrected text (a slice of the reviewed canonical text).
    pub text: String,
    /// Character offsets of `text` in the reviewed canonical text (REFI-QDA counts characters).
    pub chars: Range<usize>,
}

/// A passage as the store keeps it: where it was cut and what it read.
pub(crate) struct StoredPassage<'a> {
    pub id: i64,
    pub start_ms: i64,
    pub text: &'a str,
}

/// Where each stored passage of one recording lands in its reviewed transcript.
///
/// `machine` is the transcript as imported and `reviewed` the same one with corrected segment
/// texts (same segments, same order). A passage whose words were all deleted maps to `None`;
/// a passage not found in the machine text (imported from elsewhere) is left out of the map.
pub(crate) fn corrected_passages(
    machine: &Transcript,
    reviewed: &Transcript,
    passages: &[StoredPassage<'_>],
) -> HashMap<i64, Option<CorrectedPassage>> {
    let canonical = machine.text();
    let old_tokens = tokens(machine);
    let new_tokens = tokens(reviewed);
    let old_by_seg = first_token_of_segment(&old_tokens, machine.segments.len());
    let new_by_seg = first_token_of_segment(&new_tokens, reviewed.segments.len());
    let maps: Vec<WordMap> = machine
        .segments
        .iter()
        .zip(&reviewed.segments)
        .map(|(m, r)| WordMap::new(&m.text, &r.text))
        .collect();
    let reviewed_text = reviewed.text();
    let mut out = HashMap::new();
    for p in passages {
        let Some(range) = find_tokens(&canonical, &old_tokens, p) else {
            continue;
        };
        // Corrected token range, segment by segment, in global token indices.
        let mut first: Option<usize> = None;
        let mut last: Option<usize> = None;
        for seg in old_tokens[range.start].segment..=old_tokens[range.end - 1].segment {
            let (Some(map), Some(&old_base), Some(&new_base)) =
                (maps.get(seg), old_by_seg.get(seg), new_by_seg.get(seg))
            else {
                continue;
            };
            let old_count = old_by_seg[seg + 1] - old_base;
            let local = range.start.max(old_base) - old_base
                ..range.end.min(old_base + old_count) - old_base;
            let mapped = map.map(local);
            if mapped.is_empty() {
                continue;
            }
            first.get_or_insert(new_base + mapped.start);
            last = Some(new_base + mapped.end - 1);
        }
        let corrected = match (first, last) {
            (Some(a), Some(b)) => Some(CorrectedPassage {
                text: reviewed_text[new_tokens[a].byte_start..new_tokens[b].byte_end].to_string(),
                chars: new_tokens[a].char_start..new_tokens[b].char_end,
            }),
            _ => None,
        };
        out.insert(p.id, corrected);
    }
    out
}

/// `v[s]` = index of segment `s`'s first token; `v[segments]` = the token count.
fn first_token_of_segment(tokens: &[Token], segments: usize) -> Vec<usize> {
    let mut v = vec![0; segments + 1];
    let mut counts = vec![0usize; segments];
    for t in tokens {
        counts[t.segment] += 1;
    }
    for s in 0..segments {
        v[s + 1] = v[s] + counts[s];
    }
    v
}

/// The machine tokens a stored passage was sliced from: the occurrence of its text that starts
/// on a token boundary nearest its start time (the same words can be said twice).
fn find_tokens(canonical: &str, tokens: &[Token], p: &StoredPassage<'_>) -> Option<Range<usize>> {
    // Token by token, not as one string: a reviewer's typed speech puts an empty placeholder
    // segment into the machine text (see `view::add_typed_speech`), which doubles a space.
    let wanted: Vec<&str> = p.text.split_whitespace().collect();
    if wanted.is_empty() {
        return None;
    }
    let text = |t: &Token| &canonical[t.byte_start..t.byte_end];
    let mut best: Option<(u64, Range<usize>)> = None;
    for a in 0..tokens.len().saturating_sub(wanted.len() - 1) {
        let run = &tokens[a..a + wanted.len()];
        if !run.iter().zip(&wanted).all(|(t, w)| text(t) == *w) {
            continue;
        }
        let distance = tokens[a]
            .start_ms
            .abs_diff(u64::try_from(p.start_ms).unwrap_or(0));
        if best.as_ref().is_none_or(|(d, _)| distance < *d) {
            best = Some((distance, a..a + wanted.len()));
        }
    }
    best.map(|(_, r)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_words_keep_their_place_and_typed_words_join_their_neighbour() {
        let map = WordMap::new(
            "el viernes vamos al cine",
            "el miércoles por la tarde vamos al cine",
        );
        // "viernes" (1) was replaced by "miércoles por la tarde" (1..5).
        assert_eq!(map.map(0..1), 0..1);
        assert_eq!(map.map(1..2), 1..5);
        assert_eq!(map.map(2..5), 5..8);
        assert_eq!(map.map(0..5), 0..8);
    }

    #[test]
    fn deleted_words_map_to_nothing() {
        let map = WordMap::new("eh bueno yo creo que sí", "yo creo que sí");
        assert!(map.map(0..2).is_empty());
        assert_eq!(map.map(2..6), 0..4);
    }

    fn word(text: &str, start_ms: u64, end_ms: u64) -> Word {
        Word {
            text: text.to_string(),
            start_ms,
            end_ms,
            probability: 0.5,
        }
    }

    #[test]
    fn unchanged_words_keep_their_timings() {
        let machine = [
            word("el", 0, 100),
            word("viernes", 100, 500),
            word("vamos", 600, 900),
        ];
        let words = corrected_words("el viernes vamos", &machine, "el lunes vamos", (0, 1000))
            .expect("aligned");
        assert_eq!(words[0], word("el", 0, 100));
        assert_eq!(words[2], word("vamos", 600, 900));
        assert_eq!((words[1].start_ms, words[1].end_ms), (100, 600));
        assert_eq!(words[1].probability, 1.0);
        assert_eq!(words[1].text, "lunes");
    }
}
