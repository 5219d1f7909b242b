//! Transcript exporters: turn a [`Transcript`] into the files a researcher opens.
//!
//! | format | file | what it holds |
//! |---|---|---|
//! | [`Format::Txt`] | `<uri>.txt` | plain text, one paragraph per segment (a sentence left unfinished runs on into the next), `[hh:mm:ss]` prefixes, `Name: ` at speaker turns |
//! | [`Format::Srt`] | `<uri>.srt` | SubRip subtitles, `HH:MM:SS,mmm` times, 1-based cue numbers |
//! | [`Format::Vtt`] | `<uri>.vtt` | WebVTT subtitles, `HH:MM:SS.mmm` times, `<v Name>` voice tags |
//! | [`Format::Json`] | `<uri>.transcript.json` | the canonical artifact, pretty JSON plus a trailing newline |
//! | [`Format::Md`] | `<uri>.md` | Markdown: title, metadata table, timestamped text |
//! | [`Format::Docx`] | `<uri>.docx` | Word: title, recording details, one paragraph per speaker turn |
//!
//! Every renderer is pure and deterministic: the same transcript gives byte-identical output.
//! Every text file is UTF-8 with `\n` line ends and ends with a newline (SRT and TXT of a
//! transcript without text are empty).
//! Subtitle cues (SRT and VTT share them, see `cues`) hold at most 2 lines of at most
//! 42 characters and last at most 7 s; they are sorted, non-overlapping and have `end > start`.
//! Files are written atomically ([`crate::atomic`]), so a reader never sees half a file.
//!
//! [`qda`] writes REFI-QDA codebooks (`.qdc`) and projects (`.qdpx`) from its own input model.

pub mod analysis_json;
pub mod codes_qda;
pub mod codes_report;
mod cues;
mod docx;
mod json;
pub(crate) mod md;
pub mod qda;
mod srt;
mod txt;
mod vtt;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::atomic::{WriteError, write_atomic};
use crate::transcript::{Transcript, UntranscribedSpan};

pub use json::read_transcript;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// Plain text (`.txt`).
    Txt,
    /// SubRip subtitles (`.srt`).
    Srt,
    /// WebVTT subtitles (`.vtt`).
    Vtt,
    /// The canonical transcript artifact (`.transcript.json`).
    Json,
    /// Markdown (`.md`).
    Md,
    /// Word document (`.docx`).
    Docx,
}

impl Format {
    /// Every format, in the order `all` expands to.
    pub const ALL: [Format; 6] = [
        Format::Txt,
        Format::Srt,
        Format::Vtt,
        Format::Json,
        Format::Md,
        Format::Docx,
    ];

    /// The lower-case name used on the command line (`txt`, `srt`, `vtt`, `json`, `md`, `docx`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Txt => "txt",
            Format::Srt => "srt",
            Format::Vtt => "vtt",
            Format::Json => "json",
            Format::Md => "md",
            Format::Docx => "docx",
        }
    }

    /// What follows `<uri>` in the file name, dot included.
    pub fn file_suffix(self) -> &'static str {
        match self {
            Format::Txt => ".txt",
            Format::Srt => ".srt",
            Format::Vtt => ".vtt",
            Format::Json => ".transcript.json",
            Format::Md => ".md",
            Format::Docx => ".docx",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = ExportError;

    /// Parses a format name, ignoring case and surrounding spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| ExportError::UnknownFormat {
                name: wanted.to_string(),
            })
    }
}

/// Failure to parse a format list, write an export, or read a transcript back.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A name in a format list is not a format.
    #[error("unknown export format `{name}` (expected txt, srt, vtt, json, md, docx or all)")]
    UnknownFormat {
        /// The name as given.
        name: String,
    },
    /// The format list named no format.
    #[error("no export format given (expected e.g. `txt,srt` or `all`)")]
    NoFormats,
    /// An export file could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A transcript file could not be read.
    #[error("cannot read transcript {path}: {source}")]
    Read {
        /// The transcript file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A transcript file is not valid JSON, or not the shape its schema version promises.
    #[error("invalid transcript {path}: {source}")]
    Parse {
        /// The transcript file.
        path: PathBuf,
        /// What the JSON parser found wrong (one line, with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A JSON file that is not a qualscribe transcript.
    #[error("{path} is not a qualscribe transcript (schema is {found:?}, expected {expected:?})")]
    WrongSchema {
        /// The file.
        path: PathBuf,
        /// The `schema` value found, if there was a string there.
        found: Option<String>,
        /// The schema name this version writes.
        expected: &'static str,
    },
    /// A transcript written by a schema version this build does not know.
    #[error(
        "{path} has transcript schema version {found}, this qualscribe reads version {supported}"
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The `schema_version` found (`missing` or the raw JSON when not a number).
        found: String,
        /// The version this build reads and writes.
        supported: u32,
    },
}

/// Parses a comma-separated format list such as `txt,srt,vtt`, or `all`.
///
/// Names are case-insensitive; spaces and empty items are ignored; duplicates are kept once,
/// in first-seen order, so each file is written once.
pub fn parse_formats(list: &str) -> Result<Vec<Format>, ExportError> {
    let mut formats = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let wanted: Vec<Format> = if item.eq_ignore_ascii_case("all") {
            Format::ALL.to_vec()
        } else {
            vec![item.parse()?]
        };
        for f in wanted {
            if !formats.contains(&f) {
                formats.push(f);
            }
        }
    }
    if formats.is_empty() {
        return Err(ExportError::NoFormats);
    }
    Ok(formats)
}

/// Where format `f` of recording `uri` goes: `<out_dir>/<uri><suffix>`.
///
/// Path separators in `uri` become `_`, because the uri is a file stem and must never steer
/// the write into another folder.
pub fn output_path(out_dir: &Path, uri: &str, f: Format) -> PathBuf {
    let stem: String = uri
        .chars()
        .map(|c| if c == '/' || c == '\\' { '_' } else { c })
        .collect();
    out_dir.join(format!("{stem}{}", f.file_suffix()))
}

/// Renders `t` in format `f`: the file's bytes. Deterministic (the `.docx` also reads the
/// recording's file date, see [`docx`]).
pub fn render(t: &Transcript, f: Format) -> Vec<u8> {
    match f {
        Format::Txt => txt::render(t).into_bytes(),
        Format::Srt => srt::render(t).into_bytes(),
        Format::Vtt => vtt::render(t).into_bytes(),
        Format::Json => json::render(t).into_bytes(),
        Format::Md => md::render(t).into_bytes(),
        Format::Docx => docx::render(t),
    }
}

/// The canonical transcript artifact as text (what `<uri>.transcript.json` holds).
pub fn render_json(t: &Transcript) -> String {
    json::render(t)
}

/// Writes each of `formats` for `t` into `out_dir` (which must exist), atomically.
///
/// Returns the written paths in the order of `formats`. Stops at the first failure; files
/// written before it stay (each one complete).
pub fn write_all(
    t: &Transcript,
    out_dir: &Path,
    formats: &[Format],
) -> Result<Vec<PathBuf>, ExportError> {
    let mut written = Vec::with_capacity(formats.len());
    for &f in formats {
        let path = output_path(out_dir, &t.uri, f);
        write_atomic(&path, &render(t, f))?;
        written.push(path);
    }
    Ok(written)
}

/// A paragraph of the text formats: one or more consecutive segments of one speaker.
struct Paragraph<'a> {
    start_ms: u64,
    /// The segments' speaker, if known.
    speaker: Option<&'a str>,
    /// The speaker's name when this paragraph opens a turn.
    turn_speaker: Option<&'a str>,
    /// The text with whitespace collapsed, so a paragraph stays on one line.
    text: String,
}

/// The longest a paragraph may run on from its first segment. Why: a transcript Whisper left
/// without punctuation would otherwise be one paragraph per turn, with a single time for
/// minutes of speech; a reader needs a time to find a passage in the recording.
const PARAGRAPH_MAX_MS: u64 = 60_000;

impl Paragraph<'_> {
    /// Whether a segment of `speaker` starting at `start_ms` goes on this paragraph. Whisper
    /// ends segments where its 30 s window or a breath falls, often mid-sentence ("…para que
    /// sean más analíticos" / "y críticos a través de…"): a paragraph that stops mid-sentence
    /// takes the next segment of the same speaker.
    fn runs_on_into(&self, speaker: Option<&str>, start_ms: u64) -> bool {
        speaker == self.speaker
            && start_ms.saturating_sub(self.start_ms) < PARAGRAPH_MAX_MS
            && !self
                .text
                .rsplit(' ')
                .next()
                .is_some_and(crate::passages::ends_sentence)
    }
}

/// What the text formats (TXT, MD) show, in time order: paragraphs of text and marks where
/// speech was heard but not transcribed.
enum Block<'a> {
    Said(Paragraph<'a>),
    Inaudible(UntranscribedSpan),
}

/// The non-empty segments as paragraphs (a sentence a segment leaves unfinished goes on into
/// the next segment of its speaker, [`Paragraph::runs_on_into`]), marking where each speaker
/// turn starts, with the transcript's untranscribed spans between them in time order. A
/// paragraph never runs on past a mark, and the one after a mark names its speaker again: who
/// spoke in the gap is not known.
fn blocks(t: &Transcript) -> Vec<Block<'_>> {
    let mut spans = t.untranscribed.iter().copied().peekable();
    let mut out = Vec::with_capacity(t.segments.len() + t.untranscribed.len());
    let mut open: Option<Paragraph<'_>> = None;
    let mut previous_speaker: Option<&str> = None;
    for seg in &t.segments {
        let text = seg.text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            continue;
        }
        let speaker = seg.speaker.as_deref();
        let mut turn_speaker = speaker.filter(|_| speaker != previous_speaker);
        previous_speaker = speaker;
        if spans.peek().is_some_and(|s| s.start_ms <= seg.start_ms) {
            out.extend(open.take().map(Block::Said));
            while let Some(span) = spans.next_if(|s| s.start_ms <= seg.start_ms) {
                out.push(Block::Inaudible(span));
            }
            turn_speaker = speaker;
        }
        match open.as_mut() {
            Some(p) if p.runs_on_into(speaker, seg.start_ms) => {
                p.text.push(' ');
                p.text.push_str(&text);
            }
            _ => {
                out.extend(open.take().map(Block::Said));
                open = Some(Paragraph {
                    start_ms: seg.start_ms,
                    speaker,
                    turn_speaker,
                    text,
                });
            }
        }
    }
    out.extend(open.map(Block::Said));
    out.extend(spans.map(Block::Inaudible));
    out
}

/// `[inaudible 00:12:03–00:12:09]`, the transcribers' mark for speech nobody could write down.
/// The end is rounded up to the second, so the mark covers the whole span.
pub fn inaudible_mark(span: &UntranscribedSpan) -> String {
    inaudible_mark_between(span.start_ms, span.end_ms)
}

/// [`inaudible_mark`] of the span `start_ms..end_ms`.
pub fn inaudible_mark_between(start_ms: u64, end_ms: u64) -> String {
    format!(
        "[inaudible {}–{}]",
        clock(start_ms),
        clock(end_ms.div_ceil(1000) * 1000)
    )
}

/// `HH:MM:SS` plus `sep` and milliseconds, as subtitle formats want it. Hours grow past 99.
fn clock_ms(ms: u64, sep: char) -> String {
    format!("{}{sep}{:03}", clock(ms), ms % 1000)
}

/// `HH:MM:SS`, seconds truncated, as the text formats show it.
pub(crate) fn clock(ms: u64) -> String {
    let secs = ms / 1000;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests;
