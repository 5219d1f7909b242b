//! From labelled windows to speaker turns, and from turns to speaker-attributed transcripts.
//!
//! **Turns.** Inside each speech region, every instant belongs to the window whose centre is
//! nearest (boundaries halfway between consecutive centres; the region's own start and end
//! close the first and last slot). Consecutive slots of one speaker form a turn. Where a window
//! has a second speaker (overlap detection), both speakers get that slot and their turns there
//! are split off and marked `overlap: true`.
//!
//! **Words.** [`attribute`] gives each transcript word the speaker whose turns cover most of it
//! (overlapped time counts half, since either voice may be the one transcribed; a word no turn
//! touches goes to the nearest turn), then corrects two typical errors:
//! - a single word between two words of another speaker, with no pause around it, is a flip and
//!   joins its neighbours;
//! - at each change of speaker, the boundary may move up to [`BOUNDARY_SEARCH_WORDS`] words
//!   either way to where the words themselves show a change — a sentence end and a pause —
//!   because windowed embeddings place changes late or early by a few hundred ms, which credits
//!   the end of one person's sentence to the next person.
//!
//! Segments are then split wherever the speaker changes, so all words of a segment share one
//! speaker; `segment.speaker` is the speaker's display name (its `name`, else its id).

use serde::{Deserialize, Serialize};

use super::{Speaker, SpeakerWindow, WindowLabel};
use crate::eval::rttm;
use crate::transcript::{Segment, SpeechRegion, Transcript, Word};

/// How far (in words) a speaker change may move to a better boundary.
pub const BOUNDARY_SEARCH_WORDS: usize = 3;
/// A gap between words at least this long is a pause.
const PAUSE_MS: u64 = 250;

/// One stretch of one speaker's speech.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeakerTurn {
    /// Start on the original timeline.
    pub start_ms: u64,
    /// End on the original timeline (exclusive).
    pub end_ms: u64,
    /// The speaker's id (`SPEAKER_00`…); see [`super::Diarization::display_name`].
    pub speaker: String,
    /// True when another speaker is talking at the same time.
    pub overlap: bool,
}

/// Each window's label replaced by the most common label among it and `radius` windows either
/// side within the same region (ties keep the window's own label, then the lowest label).
pub(crate) fn majority_filter(labels: &[usize], regions: &[usize], radius: usize) -> Vec<usize> {
    if radius == 0 {
        return labels.to_vec();
    }
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let mut counts = vec![0usize; k];
    (0..labels.len())
        .map(|i| {
            let lo = i.saturating_sub(radius);
            let hi = (i + radius + 1).min(labels.len());
            counts.iter_mut().for_each(|c| *c = 0);
            for j in lo..hi {
                if regions[j] == regions[i] {
                    counts[labels[j]] += 1;
                }
            }
            let own = labels[i];
            (0..k).fold(
                own,
                |best, c| {
                    if counts[c] > counts[best] { c } else { best }
                },
            )
        })
        .collect()
}

/// A piece of a speech region given to one window's speaker(s).
#[derive(Debug, Clone, Copy)]
struct Slot {
    start_ms: u64,
    end_ms: u64,
    label: WindowLabel,
}

/// Speakers (numbered by first appearance) and sorted turns from labelled windows.
pub(crate) fn build(
    speech: &[SpeechRegion],
    windows: &[SpeakerWindow],
    labels: &[WindowLabel],
) -> (Vec<Speaker>, Vec<SpeakerTurn>) {
    let slots = slots(speech, windows, labels);
    let k = labels
        .iter()
        .flat_map(|l| [Some(l.primary), l.secondary])
        .flatten()
        .max()
        .map_or(0, |m| m + 1);
    let mut by_cluster: Vec<Vec<(u64, u64, bool)>> = vec![Vec::new(); k];
    for slot in &slots {
        let overlap = slot.label.secondary.is_some();
        for c in [Some(slot.label.primary), slot.label.secondary]
            .into_iter()
            .flatten()
        {
            let runs = &mut by_cluster[c];
            match runs.last_mut() {
                Some(run) if run.1 == slot.start_ms && run.2 == overlap => run.1 = slot.end_ms,
                _ => runs.push((slot.start_ms, slot.end_ms, overlap)),
            }
        }
    }
    // Number speakers by their first turn; clusters with no time are dropped.
    let mut order: Vec<(u64, usize)> = by_cluster
        .iter()
        .enumerate()
        .filter_map(|(c, runs)| runs.first().map(|r| (r.0, c)))
        .collect();
    order.sort_unstable();
    let mut speakers = Vec::with_capacity(order.len());
    let mut turns = Vec::new();
    for (n, &(_, c)) in order.iter().enumerate() {
        let id = speaker_id(n);
        let runs = &by_cluster[c];
        speakers.push(Speaker {
            id: id.clone(),
            name: None,
            speech_ms: runs.iter().map(|r| r.1 - r.0).sum(),
            embedding: None,
            voice_purity: None,
        });
        turns.extend(runs.iter().map(|&(start_ms, end_ms, overlap)| SpeakerTurn {
            start_ms,
            end_ms,
            speaker: id.clone(),
            overlap,
        }));
    }
    turns.sort_by(|a, b| {
        (a.start_ms, a.end_ms, &a.speaker).cmp(&(b.start_ms, b.end_ms, &b.speaker))
    });
    (speakers, turns)
}

/// Cuts each region into slots, one per window, at the midpoints between window centres.
fn slots(speech: &[SpeechRegion], windows: &[SpeakerWindow], labels: &[WindowLabel]) -> Vec<Slot> {
    let mut out = Vec::with_capacity(windows.len());
    let mut i = 0;
    while i < windows.len() {
        let region = windows[i].region;
        let mut j = i;
        while j < windows.len() && windows[j].region == region {
            j += 1;
        }
        let group = &windows[i..j];
        let last_end = group.iter().map(|w| w.end_ms).max().unwrap_or(0);
        let (start, end) = speech
            .get(region)
            .map_or((group[0].start_ms, last_end), |r| {
                (r.start_ms, r.end_ms.min(last_end))
            });
        let mut from = start;
        for (n, w) in group.iter().enumerate() {
            let to = match group.get(n + 1) {
                Some(next) => ((w.center_ms() + next.center_ms()) / 2).clamp(from, end),
                None => end,
            };
            if to > from {
                out.push(Slot {
                    start_ms: from,
                    end_ms: to,
                    label: labels[i + n],
                });
            }
            from = to;
        }
        i = j;
    }
    out
}

/// The id of the `n`-th speaker of a recording, counted from 0 by first appearance:
/// `SPEAKER_00`, `SPEAKER_01`, … (pyannote's convention; `--rename` and names refer to it).
pub fn speaker_id(n: usize) -> String {
    format!("SPEAKER_{n:02}")
}

/// RTTM turns of a diarization, speaker label = display name (turns marked overlap included:
/// each voice is one RTTM turn).
pub fn to_rttm_turns(d: &super::Diarization) -> Vec<rttm::Turn> {
    d.turns
        .iter()
        .map(|t| rttm::Turn {
            uri: d.uri.clone(),
            start_s: t.start_ms as f64 / 1000.0,
            end_s: t.end_ms as f64 / 1000.0,
            speaker: d.display_name(&t.speaker).to_string(),
        })
        .collect()
}

/// The transcript with every word given a speaker (see the module docs), segments split at
/// speaker changes and renumbered from 0, `segment.speaker` set to display names. With no turns
/// at all (silence) the transcript is returned unchanged.
pub fn attribute(transcript: &Transcript, diarization: &super::Diarization) -> Transcript {
    let mut out = transcript.clone();
    if diarization.turns.is_empty() {
        return out;
    }
    let words: Vec<&Word> = transcript
        .segments
        .iter()
        .flat_map(|s| s.words.iter())
        .collect();
    let mut speakers: Vec<&str> = words
        .iter()
        .map(|w| speaker_of(w, &diarization.turns))
        .collect();
    fix_one_word_flips(&words, &mut speakers);
    move_boundaries_to_sentence_ends(&words, &mut speakers);

    let mut next = speakers.iter();
    let mut segments = Vec::with_capacity(transcript.segments.len());
    for segment in &transcript.segments {
        let own: Vec<&str> = next.by_ref().take(segment.words.len()).copied().collect();
        if own.is_empty() {
            let mut s = segment.clone();
            s.speaker = Some(
                diarization
                    .display_name(speaker_of_span(
                        segment.start_ms,
                        segment.end_ms,
                        &diarization.turns,
                    ))
                    .to_string(),
            );
            segments.push(s);
            continue;
        }
        segments.extend(split_by_speaker(segment, &own, diarization));
    }
    for (id, s) in segments.iter_mut().enumerate() {
        s.id = u32::try_from(id).unwrap_or(u32::MAX);
    }
    out.segments = segments;
    out
}

/// The speaker whose turns cover most of the word (overlapped turns count half); the nearest
/// turn's speaker when none covers it. Ties go to the earlier turn in the list.
fn speaker_of<'a>(word: &Word, turns: &'a [SpeakerTurn]) -> &'a str {
    speaker_of_span(word.start_ms, word.end_ms, turns)
}

fn speaker_of_span(start_ms: u64, end_ms: u64, turns: &[SpeakerTurn]) -> &str {
    // A zero-length word still has a position: give it 1 ms.
    let end_ms = end_ms.max(start_ms + 1);
    let mut scores: Vec<(&str, u64)> = Vec::new();
    for t in turns {
        let covered = end_ms
            .min(t.end_ms)
            .saturating_sub(start_ms.max(t.start_ms));
        if covered == 0 {
            continue;
        }
        // Doubled so that half weight stays an integer.
        let weight = if t.overlap { covered } else { 2 * covered };
        match scores.iter_mut().find(|(s, _)| *s == t.speaker) {
            Some(entry) => entry.1 += weight,
            None => scores.push((&t.speaker, weight)),
        }
    }
    let best = scores
        .iter()
        .fold(None::<(&str, u64)>, |best, &(s, w)| match best {
            Some((_, bw)) if bw >= w => best,
            _ => Some((s, w)),
        });
    if let Some((speaker, _)) = best {
        return speaker;
    }
    let distance = |t: &SpeakerTurn| {
        if t.end_ms <= start_ms {
            start_ms - t.end_ms
        } else {
            t.start_ms.saturating_sub(end_ms)
        }
    };
    turns
        .iter()
        .min_by_key(|t| distance(t))
        .map_or("", |t| t.speaker.as_str())
}

/// Silence between two consecutive words.
fn gap_ms(words: &[&Word], i: usize) -> u64 {
    words[i].start_ms.saturating_sub(words[i - 1].end_ms)
}

/// A lone word between two words of one other speaker, with no pause on either side, joins them.
fn fix_one_word_flips(words: &[&Word], speakers: &mut [&str]) {
    for i in 1..words.len().saturating_sub(1) {
        let (before, after) = (speakers[i - 1], speakers[i + 1]);
        if before == after
            && speakers[i] != before
            && gap_ms(words, i) < PAUSE_MS
            && gap_ms(words, i + 1) < PAUSE_MS
        {
            speakers[i] = before;
        }
    }
}

fn ends_sentence(word: &Word) -> bool {
    let text = word.text.trim_end_matches(['"', '\'', '»', '”', ')']);
    text.ends_with(['.', '?', '!', '…'])
}

/// How much the words say "a new speaker starts at word `i`": a sentence end before it and a
/// pause (up to 1 s counts) between them.
fn boundary_evidence(words: &[&Word], i: usize) -> f64 {
    let sentence = if ends_sentence(words[i - 1]) {
        1.0
    } else {
        0.0
    };
    let pause = (gap_ms(words, i) as f64 / 1000.0).min(1.0);
    sentence + pause
}

/// Moves each speaker change to the nearby word boundary with the clearest evidence of a change,
/// if it is clearly better than where the embeddings put it.
fn move_boundaries_to_sentence_ends(words: &[&Word], speakers: &mut [&str]) {
    /// Evidence a new boundary needs beyond the current one's: the embeddings' choice stands
    /// unless the words clearly disagree.
    const MARGIN: f64 = 0.5;
    let mut i = 1;
    while i < words.len() {
        if speakers[i] == speakers[i - 1] {
            i += 1;
            continue;
        }
        let (left, right) = (speakers[i - 1], speakers[i]);
        // Each side keeps at least one word, and the move stays inside the two runs.
        let run_start = (0..i)
            .rev()
            .take_while(|&j| speakers[j] == left)
            .last()
            .unwrap_or(i - 1);
        let run_end = (i..words.len())
            .take_while(|&j| speakers[j] == right)
            .last()
            .unwrap_or(i);
        let lo = (run_start + 1).max(i.saturating_sub(BOUNDARY_SEARCH_WORDS));
        let hi = run_end.min(i + BOUNDARY_SEARCH_WORDS);
        let current = boundary_evidence(words, i);
        let mut best = (i, current + MARGIN);
        for j in lo..=hi {
            let e = boundary_evidence(words, j);
            if e > best.1 {
                best = (j, e);
            }
        }
        let b = best.0;
        for s in speakers.iter_mut().take(i).skip(b) {
            *s = right;
        }
        for s in speakers.iter_mut().take(b).skip(i) {
            *s = left;
        }
        i = b.max(i) + 1;
    }
}

/// One segment cut into runs of one speaker. The first piece keeps the segment's start and the
/// last its end; inner cuts fall on word times.
fn split_by_speaker(
    segment: &Segment,
    speakers: &[&str],
    diarization: &super::Diarization,
) -> Vec<Segment> {
    let mut pieces = Vec::new();
    let mut from = 0;
    while from < segment.words.len() {
        let to = (from..segment.words.len())
            .find(|&j| speakers[j] != speakers[from])
            .unwrap_or(segment.words.len());
        let words: Vec<Word> = segment.words[from..to].to_vec();
        let start_ms = if from == 0 {
            segment.start_ms
        } else {
            words[0].start_ms
        };
        let end_ms = if to == segment.words.len() {
            segment.end_ms
        } else {
            words[words.len() - 1].end_ms
        };
        pieces.push(Segment {
            id: segment.id,
            start_ms,
            end_ms: end_ms.max(start_ms),
            text: crate::transcript::words_text(&words),
            speaker: Some(diarization.display_name(speakers[from]).to_string()),
            no_speech_prob: segment.no_speech_prob,
            avg_logprob: segment.avg_logprob,
            words,
        });
        from = to;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diarize::{Diarization, DiarizeSettings};

    fn turn(start_ms: u64, end_ms: u64, speaker: &str, overlap: bool) -> SpeakerTurn {
        SpeakerTurn {
            start_ms,
            end_ms,
            speaker: speaker.into(),
            overlap,
        }
    }

    fn word(text: &str, start_ms: u64, end_ms: u64) -> Word {
        Word {
            text: text.into(),
            start_ms,
            end_ms,
            probability: 0.9,
        }
    }

    fn diarization(turns: Vec<SpeakerTurn>) -> Diarization {
        let mut ids: Vec<String> = turns.iter().map(|t| t.speaker.clone()).collect();
        ids.sort();
        ids.dedup();
        Diarization::new(
            "rec",
            ids.into_iter()
                .map(|id| Speaker {
                    name: (id == "SPEAKER_01").then(|| "Ana".to_string()),
                    id,
                    speech_ms: 0,
                    embedding: None,
                    voice_purity: None,
                })
                .collect(),
            turns,
            DiarizeSettings {
                num_speakers: None,
                min_speakers: 1,
                max_speakers: 16,
                window_ms: 1600,
                step_ms: 400,
                threshold: 0.8,
                threshold_margin: None,
                threshold_used: None,
                min_speaker_ms: 4000,
                smoothing_windows: 3,
                overlap_margin: None,
                overlap_min_similarity: 0.5,
                method: None,
                chunk_step_ms: None,
                segment_threshold: None,
                split_margin: None,
                split_min_pieces: None,
                segment_merge_above: None,
                voice_merge_above: None,
                fallback: None,
                model_sha256: String::new(),
                qualscribe_version: String::new(),
            },
        )
    }

    fn transcript(segments: Vec<Vec<Word>>) -> Transcript {
        let json = serde_json::json!({
            "schema": "qualscribe.transcript", "schema_version": 1, "uri": "rec",
            "source": {"path": "rec.wav", "sha256": "", "duration_ms": 10000,
                       "sample_rate_hz": 16000, "channels": 1, "codec": "pcm_s16le"},
            "language": {"code": "es", "detected": false},
            "model": {"name": "base", "sha256": "", "multilingual": true},
            "settings": {"language_requested": "es", "beam_size": 1, "vad_threshold": 0.5,
                         "qualscribe_version": "0"},
            "speech": [], "segments": []
        });
        let mut t: Transcript = serde_json::from_value(json).unwrap();
        t.segments = segments
            .into_iter()
            .enumerate()
            .map(|(id, words)| Segment {
                id: id as u32,
                start_ms: words[0].start_ms,
                end_ms: words[words.len() - 1].end_ms,
                text: words
                    .iter()
                    .map(|w| w.text.clone())
                    .collect::<Vec<_>>()
                    .join(" "),
                speaker: None,
                no_speech_prob: 0.0,
                avg_logprob: -0.2,
                words,
            })
            .collect();
        t
    }

    #[test]
    fn majority_filter_removes_isolated_flips_within_a_region() {
        let labels = [0, 0, 1, 0, 0, 1, 1, 1];
        let regions = [0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(
            majority_filter(&labels, &regions, 1),
            [0, 0, 0, 0, 0, 1, 1, 1]
        );
        assert_eq!(majority_filter(&labels, &regions, 0), labels);
    }

    #[test]
    fn turns_join_slots_and_mark_overlap_for_both_voices() {
        let w = |start_ms, region| SpeakerWindow {
            start_ms,
            end_ms: start_ms + 1600,
            region,
            embedding: vec![],
        };
        let windows = [w(0, 0), w(400, 0), w(800, 0), w(5000, 1)];
        let l = |primary, secondary| WindowLabel { primary, secondary };
        let labels = [l(1, None), l(1, Some(0)), l(0, None), l(1, None)];
        let speech = [
            SpeechRegion {
                start_ms: 0,
                end_ms: 2400,
            },
            SpeechRegion {
                start_ms: 5000,
                end_ms: 6600,
            },
        ];
        let (speakers, turns) = build(&speech, &windows, &labels);
        // Cluster 1 speaks first, so it is SPEAKER_00.
        assert_eq!(speakers[0].id, "SPEAKER_00");
        assert_eq!(
            turns,
            [
                turn(0, 1000, "SPEAKER_00", false),
                turn(1000, 1400, "SPEAKER_00", true),
                turn(1000, 1400, "SPEAKER_01", true),
                turn(1400, 2400, "SPEAKER_01", false),
                turn(5000, 6600, "SPEAKER_00", false),
            ]
        );
        assert_eq!(speakers[0].speech_ms, 1000 + 400 + 1600);
    }

    #[test]
    fn segments_are_split_at_speaker_changes_with_display_names() {
        let d = diarization(vec![
            turn(0, 2000, "SPEAKER_00", false),
            turn(2000, 4000, "SPEAKER_01", false),
        ]);
        let t = transcript(vec![vec![
            word("Hola,", 100, 500),
            word("¿qué", 600, 900),
            word("tal?", 900, 1400),
            word("Muy", 2500, 2800),
            word("bien.", 2800, 3300),
        ]]);
        let out = attribute(&t, &d);
        assert_eq!(out.segments.len(), 2);
        assert_eq!(out.segments[0].text, "Hola, ¿qué tal?");
        assert_eq!(out.segments[0].speaker.as_deref(), Some("SPEAKER_00"));
        assert_eq!(out.segments[1].text, "Muy bien.");
        assert_eq!(out.segments[1].speaker.as_deref(), Some("Ana"));
        assert_eq!((out.segments[1].id, out.segments[1].start_ms), (1, 2500));
        assert_eq!(out.word_count(), t.word_count());
    }

    #[test]
    fn a_late_boundary_moves_back_to_the_sentence_end() {
        // The embeddings put the change at 2600 ms, inside "caro." — which ends A's sentence.
        let d = diarization(vec![
            turn(0, 2600, "SPEAKER_00", false),
            turn(2600, 6000, "SPEAKER_01", false),
        ]);
        let t = transcript(vec![vec![
            word("El", 0, 300),
            word("precio", 300, 900),
            word("es", 900, 1200),
            word("muy", 1200, 2400),
            word("caro.", 2450, 2900),
            word("Yo", 3600, 3800),
            word("no", 3800, 4000),
            word("creo.", 4000, 4500),
        ]]);
        let out = attribute(&t, &d);
        assert_eq!(out.segments[0].text, "El precio es muy caro.");
        assert_eq!(out.segments[1].text, "Yo no creo.");
    }

    #[test]
    fn lone_flipped_words_join_their_neighbours_but_answers_after_pauses_stay() {
        let d = diarization(vec![
            turn(0, 1000, "SPEAKER_00", false),
            turn(1000, 1300, "SPEAKER_01", false),
            turn(1300, 5000, "SPEAKER_00", false),
        ]);
        let t = transcript(vec![vec![
            word("uno", 500, 950),
            word("dos", 1000, 1300),
            word("tres", 1350, 1800),
        ]]);
        let out = attribute(&t, &d);
        assert_eq!(out.segments.len(), 1);

        let d = diarization(vec![
            turn(0, 1000, "SPEAKER_00", false),
            turn(1500, 1900, "SPEAKER_01", false),
            turn(2400, 5000, "SPEAKER_00", false),
        ]);
        let t = transcript(vec![vec![
            word("¿Verdad?", 400, 950),
            word("Sí.", 1500, 1900),
            word("Bueno", 2400, 2800),
        ]]);
        let out = attribute(&t, &d);
        assert_eq!(out.segments.len(), 3, "{:?}", out.segments);
    }

    #[test]
    fn words_outside_turns_go_to_the_nearest_and_overlap_counts_half() {
        let turns = [
            turn(0, 1000, "SPEAKER_00", false),
            turn(1000, 1600, "SPEAKER_00", true),
            turn(1000, 1600, "SPEAKER_01", true),
            turn(1600, 2000, "SPEAKER_01", false),
        ];
        assert_eq!(speaker_of(&word("x", 3000, 3100), &turns), "SPEAKER_01");
        assert_eq!(speaker_of(&word("x", 1100, 1700), &turns), "SPEAKER_01");
        assert_eq!(speaker_of(&word("x", 900, 1500), &turns), "SPEAKER_00");
    }

    #[test]
    fn no_turns_leaves_the_transcript_alone() {
        let t = transcript(vec![vec![word("hola", 0, 500)]]);
        assert_eq!(attribute(&t, &diarization(vec![])), t);
    }
}
