//! What the review page shows, read from the project store: themes → codes → passages, the
//! recordings with their speakers, and one recording's transcript.

use std::collections::HashMap;

use rusqlite::params;
use serde::Serialize;

use super::ReviewError;
use super::reconcile::{CorrectedPassage, StoredPassage, corrected_passages, corrected_words};
use super::store::{Project, untranscribed_position};
use crate::export::inaudible_mark_between;
use crate::transcript::{Segment, Transcript};

/// Everything the page lists.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// The recordings, by uri.
    pub recordings: Vec<RecordingView>,
    /// Themes in order, each with its codes (codes made by the reviewer keep their theme).
    pub themes: Vec<ThemeView>,
    /// The project memo.
    pub memo: String,
    /// Whether there is an action to undo.
    pub can_undo: bool,
}

/// One recording.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingView {
    /// Its id.
    pub uri: String,
    /// Length in ms.
    pub duration_ms: i64,
    /// Language code.
    pub language: String,
    /// Its speakers.
    pub speakers: Vec<SpeakerView>,
}

/// A speaker of a recording.
#[derive(Debug, Clone, Serialize)]
pub struct SpeakerView {
    /// The machine label (`SPEAKER_01`).
    pub label: String,
    /// The name shown.
    pub name: String,
}

/// A theme and its codes.
#[derive(Debug, Clone, Serialize)]
pub struct ThemeView {
    /// `T1`, … (empty for codes outside any theme).
    pub key: String,
    /// Its codes, in order.
    pub codes: Vec<CodeView>,
}

/// A code with its passages.
#[derive(Debug, Clone, Serialize)]
pub struct CodeView {
    /// Row id (what actions refer to).
    pub id: i64,
    /// Its name.
    pub label: String,
    /// `proposed`, `accepted`, `rejected` or `merged`.
    pub status: String,
    /// The code it was merged into.
    pub merged_into: Option<i64>,
    /// The machine's definition.
    pub definition: String,
    /// Keywords, `; `-separated.
    pub keywords: String,
    /// The reviewer's memo.
    pub memo: String,
    /// Its passages, by recording and time.
    pub passages: Vec<PassageView>,
}

/// A passage coded with a code.
#[derive(Debug, Clone, Serialize)]
pub struct PassageView {
    /// Row id.
    pub id: i64,
    /// The recording.
    pub uri: String,
    /// The speaker's machine label.
    pub speaker_label: Option<String>,
    /// The speaker's name.
    pub speaker: Option<String>,
    /// Start, ms on the recording.
    pub start_ms: i64,
    /// End, ms.
    pub end_ms: i64,
    /// The words.
    pub text: String,
    /// One of the machine's chosen quotes.
    pub quote: bool,
    /// The reviewer's memo on it.
    pub memo: String,
}

/// One recording's transcript as reviewed.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptView {
    /// The recording.
    pub uri: String,
    /// Its segments.
    pub segments: Vec<SegmentView>,
}

/// One transcript segment.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentView {
    /// Row id (what `edit_segment` refers to).
    pub id: i64,
    /// Start, ms.
    pub start_ms: i64,
    /// End, ms.
    pub end_ms: i64,
    /// The speaker's machine label.
    pub speaker_label: Option<String>,
    /// The speaker's name.
    pub speaker: Option<String>,
    /// The text (corrected, if it was).
    pub text: String,
    /// Whether the reviewer corrected it.
    pub edited: bool,
    /// For a stretch of speech the machine could not transcribe (machine text empty), its
    /// mark, `[inaudible 00:12:03–00:12:09]`: the reviewer may listen and type what was said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inaudible: Option<String>,
}

impl Project {
    /// Speaker names: (uri, label) → name.
    pub fn speaker_names(&self) -> Result<HashMap<(String, String), String>, ReviewError> {
        let db = self.db();
        let mut stmt = self
            .conn()
            .prepare("SELECT uri, label, name FROM speakers")
            .map_err(&db)?;
        let rows = stmt
            .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
            .map_err(&db)?;
        rows.collect::<Result<_, _>>().map_err(&db)
    }

    fn memos(&self) -> Result<HashMap<String, String>, ReviewError> {
        let db = self.db();
        let mut stmt = self
            .conn()
            .prepare("SELECT target, text FROM memos")
            .map_err(&db)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(&db)?;
        rows.collect::<Result<_, _>>().map_err(&db)
    }

    /// The page's main view.
    pub fn overview(&self) -> Result<Overview, ReviewError> {
        let db = self.db();
        let names = self.speaker_names()?;
        let memos = self.memos()?;
        let mut recordings: Vec<RecordingView> = {
            let mut stmt = self
                .conn()
                .prepare("SELECT uri, duration_ms, language FROM recordings ORDER BY uri")
                .map_err(&db)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(RecordingView {
                        uri: r.get(0)?,
                        duration_ms: r.get(1)?,
                        language: r.get(2)?,
                        speakers: Vec::new(),
                    })
                })
                .map_err(&db)?;
            rows.collect::<Result<_, _>>().map_err(&db)?
        };
        for rec in &mut recordings {
            let mut speakers: Vec<SpeakerView> = names
                .iter()
                .filter(|((uri, _), _)| uri == &rec.uri)
                .map(|((_, label), name)| SpeakerView {
                    label: label.clone(),
                    name: name.clone(),
                })
                .collect();
            speakers.sort_by(|a, b| a.label.cmp(&b.label));
            rec.speakers = speakers;
        }
        let mut codes = self.codes(&names, &memos)?;
        self.correct_passage_texts(&mut codes)?;
        let mut themes: Vec<ThemeView> = Vec::new();
        for (theme, code) in codes {
            match themes.iter_mut().find(|t| t.key == theme) {
                Some(t) => t.codes.push(code),
                None => themes.push(ThemeView {
                    key: theme,
                    codes: vec![code],
                }),
            }
        }
        Ok(Overview {
            recordings,
            themes,
            memo: memos.get("project").cloned().unwrap_or_default(),
            can_undo: self.can_undo()?,
        })
    }

    /// Every code with its theme, in order (position, then id).
    fn codes(
        &self,
        names: &HashMap<(String, String), String>,
        memos: &HashMap<String, String>,
    ) -> Result<Vec<(String, CodeView)>, ReviewError> {
        let db = self.db();
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT id, label, status, merged_into, definition, keywords, theme FROM codes
                 ORDER BY position, id",
            )
            .map_err(&db)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(6)?,
                    CodeView {
                        id: r.get(0)?,
                        label: r.get(1)?,
                        status: r.get(2)?,
                        merged_into: r.get(3)?,
                        definition: r.get(4)?,
                        keywords: r.get(5)?,
                        memo: String::new(),
                        passages: Vec::new(),
                    },
                ))
            })
            .map_err(&db)?;
        let mut codes: Vec<(String, CodeView)> = rows.collect::<Result<_, _>>().map_err(&db)?;
        let mut pstmt = self
            .conn()
            .prepare(
                "SELECT p.id, p.uri, p.speaker, p.start_ms, p.end_ms, p.text, c.quote
                 FROM codings c JOIN passages p ON p.id = c.passage_id
                 WHERE c.code_id = ?1 ORDER BY p.uri, p.start_ms, p.id",
            )
            .map_err(&db)?;
        for (_, code) in &mut codes {
            code.memo = memos
                .get(&format!("code:{}", code.id))
                .cloned()
                .unwrap_or_default();
            let rows = pstmt
                .query_map(params![code.id], |r| {
                    let uri: String = r.get(1)?;
                    let label: Option<String> = r.get(2)?;
                    let id: i64 = r.get(0)?;
                    Ok(PassageView {
                        id,
                        speaker: label.as_ref().map(|l| {
                            names
                                .get(&(uri.clone(), l.clone()))
                                .cloned()
                                .unwrap_or_else(|| l.clone())
                        }),
                        speaker_label: label,
                        uri,
                        start_ms: r.get(3)?,
                        end_ms: r.get(4)?,
                        text: r.get(5)?,
                        quote: r.get(6)?,
                        memo: memos
                            .get(&format!("passage:{id}"))
                            .cloned()
                            .unwrap_or_default(),
                    })
                })
                .map_err(&db)?;
            code.passages = rows.collect::<Result<_, _>>().map_err(&db)?;
        }
        Ok(codes)
    }

    /// One recording's reviewed transcript (`None` if there is no such recording).
    pub fn transcript_view(&self, uri: &str) -> Result<Option<TranscriptView>, ReviewError> {
        let db = self.db();
        if self.audio_path(uri)?.is_none() {
            return Ok(None);
        }
        let names = self.speaker_names()?;
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT id, start_ms, end_ms, speaker, text, text != machine_text, idx < 0
                 FROM segments WHERE uri = ?1 ORDER BY start_ms, idx",
            )
            .map_err(&db)?;
        let rows = stmt
            .query_map([uri], |r| {
                let label: Option<String> = r.get(3)?;
                let (start_ms, end_ms): (i64, i64) = (r.get(1)?, r.get(2)?);
                Ok(SegmentView {
                    id: r.get(0)?,
                    start_ms,
                    end_ms,
                    speaker: label.as_ref().map(|l| {
                        names
                            .get(&(uri.to_string(), l.clone()))
                            .cloned()
                            .unwrap_or_else(|| l.clone())
                    }),
                    speaker_label: label,
                    text: r.get(4)?,
                    edited: r.get(5)?,
                    inaudible: r.get::<_, bool>(6)?.then(|| {
                        let ms = |v: i64| u64::try_from(v).unwrap_or(0);
                        inaudible_mark_between(ms(start_ms), ms(end_ms))
                    }),
                })
            })
            .map_err(&db)?;
        Ok(Some(TranscriptView {
            uri: uri.to_string(),
            segments: rows.collect::<Result<_, _>>().map_err(&db)?,
        }))
    }

    /// Where a recording's audio is (`None` for an unknown uri). The only way the server finds
    /// a file: request paths are never used as file paths.
    pub fn audio_path(&self, uri: &str) -> Result<Option<std::path::PathBuf>, ReviewError> {
        use rusqlite::OptionalExtension;
        let p: Option<String> = self
            .conn()
            .query_row(
                "SELECT audio_path FROM recordings WHERE uri = ?1",
                [uri],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.db())?;
        Ok(p.map(std::path::PathBuf::from))
    }

    /// The transcripts as reviewed: corrected segment text (words the reviewer left as they
    /// were keep their timings, see [`corrected_words`]) and speaker names.
    pub fn reviewed_transcripts(&self) -> Result<Vec<Transcript>, ReviewError> {
        Ok(self
            .transcripts(None)?
            .into_iter()
            .map(|(_, reviewed)| reviewed)
            .collect())
    }

    /// Passage texts as the reviewer corrected them, for passages covering edited segments; a
    /// passage whose words were all deleted reads empty.
    fn correct_passage_texts(&self, codes: &mut [(String, CodeView)]) -> Result<(), ReviewError> {
        let edited = self.edited_recordings()?;
        if edited.is_empty() {
            return Ok(());
        }
        let corrected = self.passage_corrections(Some(&edited))?;
        for p in codes.iter_mut().flat_map(|(_, c)| &mut c.passages) {
            if let Some(c) = corrected.get(&p.id) {
                p.text = c.as_ref().map(|c| c.text.clone()).unwrap_or_default();
            }
        }
        Ok(())
    }

    /// Recordings with at least one corrected segment.
    fn edited_recordings(&self) -> Result<Vec<String>, ReviewError> {
        let db = self.db();
        let mut stmt = self
            .conn()
            .prepare("SELECT DISTINCT uri FROM segments WHERE text != machine_text ORDER BY uri")
            .map_err(&db)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(&db)?;
        rows.collect::<Result<_, _>>().map_err(&db)
    }

    /// Where every passage of the given recordings (all when `None`) lands in the reviewed
    /// transcripts: corrected text and character range. Passages not found are left out.
    fn passage_corrections(
        &self,
        uris: Option<&[String]>,
    ) -> Result<HashMap<i64, Option<CorrectedPassage>>, ReviewError> {
        self.passage_corrections_in(&self.transcripts(uris)?)
    }

    /// [`Self::passage_corrections`] over `(machine, reviewed)` transcripts already loaded.
    pub(crate) fn passage_corrections_in(
        &self,
        transcripts: &[(Transcript, Transcript)],
    ) -> Result<HashMap<i64, Option<CorrectedPassage>>, ReviewError> {
        let db = self.db();
        let mut stmt = self
            .conn()
            .prepare("SELECT id, start_ms, text FROM passages WHERE uri = ?1")
            .map_err(&db)?;
        let mut out = HashMap::new();
        for (machine, reviewed) in transcripts {
            let rows: Vec<(i64, i64, String)> = stmt
                .query_map([&machine.uri], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(&db)?
                .collect::<Result<_, _>>()
                .map_err(&db)?;
            let stored: Vec<StoredPassage<'_>> = rows
                .iter()
                .map(|(id, start_ms, text)| StoredPassage {
                    id: *id,
                    start_ms: *start_ms,
                    text,
                })
                .collect();
            out.extend(corrected_passages(machine, reviewed, &stored));
        }
        Ok(out)
    }

    /// `(machine, reviewed)` transcripts of the given recordings (all when `None`), by uri.
    pub(crate) fn transcripts(
        &self,
        uris: Option<&[String]>,
    ) -> Result<Vec<(Transcript, Transcript)>, ReviewError> {
        let db = self.db();
        let names = self.speaker_names()?;
        let mut stmt = self
            .conn()
            .prepare("SELECT uri, transcript_json FROM recordings ORDER BY uri")
            .map_err(&db)?;
        let rows: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(&db)?
            .collect::<Result<Vec<(String, String)>, _>>()
            .map_err(&db)?
            .into_iter()
            .filter(|(uri, _)| uris.is_none_or(|wanted| wanted.contains(uri)))
            .collect();
        let mut seg_stmt = self
            .conn()
            .prepare(
                "SELECT idx, text, text != machine_text, start_ms, end_ms FROM segments
                 WHERE uri = ?1",
            )
            .map_err(&db)?;
        let mut out = Vec::new();
        for (uri, json) in rows {
            let machine: Transcript =
                serde_json::from_str(&json).map_err(|e| ReviewError::Corrupt {
                    what: format!("transcript of {uri}: {e}"),
                })?;
            let mut machine = machine;
            let mut t = machine.clone();
            let edits: Vec<SegmentRow> = seg_stmt
                .query_map([&uri], |r| {
                    Ok(SegmentRow {
                        idx: r.get(0)?,
                        text: r.get(1)?,
                        edited: r.get(2)?,
                        start_ms: r.get(3)?,
                        end_ms: r.get(4)?,
                    })
                })
                .map_err(&db)?
                .collect::<Result<_, _>>()
                .map_err(&db)?;
            let (segment_edits, typed): (Vec<SegmentRow>, Vec<SegmentRow>) =
                edits.into_iter().partition(|e| e.idx >= 0);
            for SegmentRow {
                idx, text, edited, ..
            } in segment_edits
            {
                if let Some(seg) = usize::try_from(idx)
                    .ok()
                    .and_then(|i| t.segments.get_mut(i))
                    && edited
                {
                    seg.words =
                        corrected_words(&seg.text, &seg.words, &text, (seg.start_ms, seg.end_ms))
                            .unwrap_or_default();
                    seg.text = text;
                }
            }
            add_typed_speech(&mut machine, &mut t, &typed);
            for seg in &mut t.segments {
                if let Some(label) = &seg.speaker
                    && let Some(name) = names.get(&(uri.clone(), label.clone()))
                {
                    seg.speaker = Some(name.clone());
                }
            }
            out.push((machine, t));
        }
        Ok(out)
    }
}

/// One `segments` row as [`Project::transcripts`] reads it.
struct SegmentRow {
    idx: i64,
    text: String,
    edited: bool,
    start_ms: i64,
    end_ms: i64,
}

/// What a reviewer typed for untranscribed spans becomes a segment of the reviewed transcript
/// (words spread over the span, probability 1) and the span's `[inaudible]` mark goes. The
/// machine transcript gets an empty segment at the same place, so the two keep one segment
/// for one segment (passage corrections pair them by position). Ids are renumbered in order.
fn add_typed_speech(machine: &mut Transcript, reviewed: &mut Transcript, rows: &[SegmentRow]) {
    let mut filled = Vec::new();
    for row in rows
        .iter()
        .filter(|r| r.edited && !r.text.trim().is_empty())
    {
        let Some(k) = untranscribed_position(row.idx) else {
            continue;
        };
        if k >= reviewed.untranscribed.len() {
            continue; // a span of an earlier import that this transcript no longer has
        }
        let span = (
            u64::try_from(row.start_ms).unwrap_or(0),
            u64::try_from(row.end_ms).unwrap_or(0),
        );
        let text = row.text.trim().to_string();
        let words = corrected_words("", &[], &text, span).unwrap_or_default();
        let typed = Segment {
            id: 0,
            start_ms: span.0,
            end_ms: span.1,
            text,
            speaker: None,
            no_speech_prob: 0.0,
            avg_logprob: 0.0,
            words,
        };
        let at = reviewed.segments.partition_point(|s| s.start_ms <= span.0);
        machine.segments.insert(
            at,
            Segment {
                text: String::new(),
                words: Vec::new(),
                ..typed.clone()
            },
        );
        reviewed.segments.insert(at, typed);
        filled.push(k);
    }
    let mut k = 0;
    reviewed.untranscribed.retain(|_| {
        k += 1;
        !filled.contains(&(k - 1))
    });
    for t in [machine, reviewed] {
        for (id, seg) in t.segments.iter_mut().enumerate() {
            seg.id = id as u32;
        }
    }
}
