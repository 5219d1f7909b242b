//! Subtitle cues shared by the SRT and VTT writers, so both files show the same cues.
//!
//! Each untranscribed span is one cue holding its `[inaudible …]` mark. Each segment is cut into cues of at most [`MAX_LINES`] lines of at most [`MAX_LINE_CHARS`]
//! characters (the speaker's `Name: ` counts against the first line) lasting at most
//! [`MAX_CUE_MS`]: common subtitling guidance. Cuts fall between words, after a clause-ending
//! punctuation mark when one lies in the second half of the cue. Cue times come from the word
//! timestamps; a segment without words has its time shared out by character count.
//!
//! The result is sorted by start, non-overlapping, and every cue has `end_ms > start_ms`
//! (degenerate input such as overlapping segments or zero-length words is trimmed to fit).
//! A single word longer than a line stays whole on its own line: words are never broken.

use crate::transcript::{Segment, Transcript, UntranscribedSpan};

/// Longest line, in characters.
pub(super) const MAX_LINE_CHARS: usize = 42;
/// Most lines per cue.
pub(super) const MAX_LINES: usize = 2;
/// Longest cue.
pub(super) const MAX_CUE_MS: u64 = 7_000;

/// One subtitle cue, text already broken into lines (no speaker prefix, no escaping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cue<'a> {
    pub start_ms: u64,
    pub end_ms: u64,
    pub lines: Vec<String>,
    pub speaker: Option<&'a str>,
}

/// A word (or fallback token) with times inside its segment.
#[derive(Debug, Clone)]
struct Timed {
    text: String,
    chars: usize,
    start_ms: u64,
    end_ms: u64,
}

/// All cues of the transcript, ready to number and print: its words, and an
/// `[inaudible 00:12:03–00:12:09]` cue for each stretch of speech nobody transcribed.
pub(super) fn build_cues(t: &Transcript) -> Vec<Cue<'_>> {
    let mut cues: Vec<Cue<'_>> = t.segments.iter().flat_map(segment_cues).collect();
    cues.extend(t.untranscribed.iter().map(inaudible_cue));
    make_playable(&mut cues);
    cues
}

/// The mark of an untranscribed span as a cue over the span (at most [`MAX_CUE_MS`]; the
/// mark itself names the whole span).
fn inaudible_cue<'a>(span: &UntranscribedSpan) -> Cue<'a> {
    Cue {
        start_ms: span.start_ms,
        end_ms: span.end_ms.min(span.start_ms + MAX_CUE_MS),
        lines: vec![super::inaudible_mark(span)],
        speaker: None,
    }
}

/// How much of the first line the speaker label takes (`Name: `).
fn prefix_chars(speaker: Option<&str>) -> usize {
    speaker.map_or(0, |s| s.chars().count() + 2)
}

fn segment_cues(seg: &Segment) -> Vec<Cue<'_>> {
    let speaker = seg.speaker.as_deref();
    let prefix = prefix_chars(speaker);
    let tokens = segment_tokens(seg);
    let mut cues = Vec::new();
    let mut start = 0;
    while start < tokens.len() {
        let end = start + chunk_len(&tokens[start..], prefix);
        let chunk = &tokens[start..end];
        let first = chunk[0].start_ms;
        let last = chunk[chunk.len() - 1].end_ms;
        cues.push(Cue {
            start_ms: first,
            end_ms: last.min(first + MAX_CUE_MS),
            lines: layout(chunk, prefix),
            speaker,
        });
        start = end;
    }
    cues
}

/// The segment's words with clean text and monotone times clamped to the segment.
fn segment_tokens(seg: &Segment) -> Vec<Timed> {
    let end_ms = seg.end_ms.max(seg.start_ms);
    let mut tokens = if seg.words.is_empty() {
        tokens_from_text(&seg.text, seg.start_ms, end_ms)
    } else {
        seg.words
            .iter()
            .filter_map(|w| timed(&w.text, w.start_ms, w.end_ms))
            .collect()
    };
    let mut floor = seg.start_ms;
    for tok in &mut tokens {
        tok.start_ms = tok.start_ms.clamp(floor, end_ms);
        tok.end_ms = tok.end_ms.clamp(tok.start_ms, end_ms);
        floor = tok.start_ms;
    }
    tokens
}

/// A token from a word's text, its inner whitespace (even newlines) collapsed to one space
/// because a newline inside cue text would end the cue early; `None` for a blank word.
fn timed(text: &str, start_ms: u64, end_ms: u64) -> Option<Timed> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return None;
    }
    let chars = text.chars().count();
    Some(Timed {
        text,
        chars,
        start_ms,
        end_ms,
    })
}

/// Without word timestamps, each word gets a share of the segment proportional to its length
/// (plus one for the space), which is close enough for reading along.
fn tokens_from_text(text: &str, start_ms: u64, end_ms: u64) -> Vec<Timed> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let total: u64 = words.iter().map(|w| w.chars().count() as u64 + 1).sum();
    let span = end_ms - start_ms;
    let mut done = 0u64;
    let mut tokens = Vec::with_capacity(words.len());
    for w in words {
        let weight = w.chars().count() as u64 + 1;
        let a = start_ms + span * done / total;
        done += weight;
        let b = start_ms + span * done / total;
        tokens.extend(timed(w, a, b));
    }
    tokens
}

/// How many tokens from the front go into the next cue (at least one).
fn chunk_len(tokens: &[Timed], prefix: usize) -> usize {
    let mut len = 1;
    while len < tokens.len() && fits(&tokens[..=len], prefix) {
        len += 1;
    }
    if len == tokens.len() {
        return len;
    }
    clause_break(&tokens[..len]).unwrap_or(len)
}

/// Whether `tokens` can be one cue: short enough in time and in text.
fn fits(tokens: &[Timed], prefix: usize) -> bool {
    let duration = tokens[tokens.len() - 1].end_ms - tokens[0].start_ms;
    duration <= MAX_CUE_MS && best_split(tokens, prefix).is_some()
}

/// Characters of `tokens` joined by single spaces.
fn joined_chars(tokens: &[Timed]) -> usize {
    tokens.iter().map(|t| t.chars).sum::<usize>() + tokens.len().saturating_sub(1)
}

/// Where to break the cue's text into lines: `Some(None)` for one line, `Some(Some(i))` for
/// lines `..i` and `i..`, `None` when no layout fits the limits.
fn best_split(tokens: &[Timed], prefix: usize) -> Option<Option<usize>> {
    if prefix + joined_chars(tokens) <= MAX_LINE_CHARS {
        return Some(None);
    }
    debug_assert_eq!(MAX_LINES, 2, "the layout below makes at most two lines");
    (1..tokens.len())
        .filter(|&i| {
            prefix + joined_chars(&tokens[..i]) <= MAX_LINE_CHARS
                && joined_chars(&tokens[i..]) <= MAX_LINE_CHARS
        })
        // Balanced lines read best; between equals, prefer ending line one at a clause.
        .min_by_key(|&i| {
            let longest = (prefix + joined_chars(&tokens[..i])).max(joined_chars(&tokens[i..]));
            (longest, !ends_clause(&tokens[i - 1].text), i)
        })
        .map(Some)
}

/// The cue's lines. Falls back to one word per line split when nothing fits (an overlong word).
fn layout(tokens: &[Timed], prefix: usize) -> Vec<String> {
    let join = |ts: &[Timed]| {
        ts.iter()
            .map(|t| t.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    match best_split(tokens, prefix) {
        Some(None) => vec![join(tokens)],
        Some(Some(i)) => vec![join(&tokens[..i]), join(&tokens[i..])],
        // Only a chunk of one overlong word, or two words of which one is overlong, gets here.
        None if tokens.len() >= 2 => vec![join(&tokens[..1]), join(&tokens[1..])],
        None => vec![join(tokens)],
    }
}

/// The longest prefix of `tokens` ending at a clause mark, if it keeps at least half the words;
/// cutting there makes cues that read as units rather than stopping mid-phrase.
fn clause_break(tokens: &[Timed]) -> Option<usize> {
    (1..=tokens.len())
        .rev()
        .take_while(|&k| 2 * k >= tokens.len())
        .find(|&k| ends_clause(&tokens[k - 1].text))
}

/// Whether a word ends a sentence or clause, looking through closing quotes and brackets.
fn ends_clause(word: &str) -> bool {
    let core = word.trim_end_matches(['"', '\'', '”', '’', '»', ')', ']']);
    core.ends_with(['.', ',', ';', ':', '?', '!', '…'])
}

/// Sorts cues and trims them so players accept them: no overlap and `end > start`.
fn make_playable(cues: &mut [Cue<'_>]) {
    cues.sort_by_key(|c| c.start_ms);
    for i in 1..cues.len() {
        let next_start = cues[i].start_ms;
        let prev = &mut cues[i - 1];
        prev.end_ms = prev.end_ms.min(next_start);
    }
    // Zero-length cues (equal starts, zero-length words) get one millisecond, pushing later
    // starts forward when needed; durations only shrink, so the 7 s limit still holds.
    let mut prev_end = 0;
    for cue in cues.iter_mut() {
        cue.start_ms = cue.start_ms.max(prev_end);
        cue.end_ms = cue.end_ms.max(cue.start_ms + 1);
        prev_end = cue.end_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(text: &str, start_ms: u64, end_ms: u64) -> Timed {
        timed(text, start_ms, end_ms).unwrap()
    }

    #[test]
    fn splits_lines_balanced_within_limits() {
        let words: Vec<Timed> = "uno dos tres cuatro cinco seis siete ocho nueve diez once doce"
            .split(' ')
            .enumerate()
            .map(|(i, w)| tok(w, i as u64 * 100, i as u64 * 100 + 90))
            .collect();
        let lines = layout(&words, 0);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.chars().count() <= MAX_LINE_CHARS));
    }

    #[test]
    fn prefers_clause_end_for_cue_break() {
        let toks = vec![
            tok("a", 0, 1),
            tok("b,", 1, 2),
            tok("c", 2, 3),
            tok("d", 3, 4),
        ];
        assert_eq!(clause_break(&toks), Some(2));
        let toks = vec![
            tok("a,", 0, 1),
            tok("b", 1, 2),
            tok("c", 2, 3),
            tok("d", 3, 4),
        ];
        assert_eq!(
            clause_break(&toks),
            None,
            "a break before half the words is not taken"
        );
        assert!(ends_clause("dijo.»"));
    }

    #[test]
    fn overlapping_and_zero_length_cues_are_fixed() {
        let cue = |s, e| Cue {
            start_ms: s,
            end_ms: e,
            lines: vec!["x".into()],
            speaker: None,
        };
        let mut cues = vec![cue(1000, 1500), cue(1000, 1200), cue(500, 500)];
        make_playable(&mut cues);
        let times: Vec<(u64, u64)> = cues.iter().map(|c| (c.start_ms, c.end_ms)).collect();
        assert_eq!(times, vec![(500, 501), (1000, 1001), (1001, 1200)]);
    }

    #[test]
    fn text_without_words_shares_time_by_length() {
        let toks = tokens_from_text("ab  cd", 0, 600);
        assert_eq!((toks[0].start_ms, toks[0].end_ms), (0, 300));
        assert_eq!((toks[1].start_ms, toks[1].end_ms), (300, 600));
    }
}
