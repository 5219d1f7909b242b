//! Word (`.docx`) writer: the transcript as researchers hand it on (and as NVivo, MAXQDA and
//! ATLAS.ti import transcripts with speakers and timestamps).
//!
//! Layout, built with `docx-rs` (no hand-written XML):
//!
//! ```text
//! grupo_focal_01                                   (Heading 1)
//! Recording: grupo_focal_01.ogg
//! Date: 2026-11-30
//! Duration: 00:03:12
//! Language: es (detected)
//! Model: base
//!
//! Moderadora: [00:00:00] Buenos días, ¿empezamos?   (name in bold; one paragraph per turn)
//! Participante 2: [00:00:04] Sí, claro. Cuando llegué…
//! ```
//!
//! A turn is a run of consecutive segments by one speaker; without speakers the paragraphs are
//! the TXT export's (one per segment, an unfinished sentence running on into the next). Speech
//! that was heard but not transcribed is marked in place, in italics, as
//! `[inaudible hh:mm:ss–hh:mm:ss]`. `Date` is the recording file's modification date when the
//! file can still be read, and is left out otherwise. The package's own dates are
//! fixed, so the same transcript gives the same bytes.

use std::path::Path;
use std::time::SystemTime;

use docx_rs::{Docx, Paragraph, Run, Style, StyleType};

use super::{Block, blocks, clock, inaudible_mark};
use crate::transcript::Transcript;

/// The package dates written into `docProps/core.xml`, fixed so the output is reproducible.
const PACKAGE_DATE: &str = "1970-01-01T00:00:00Z";

/// docx-rs's body style; named on every paragraph because its style sheet marks no default.
const NORMAL: &str = "Normal";

/// The transcript as a `.docx` package.
pub(super) fn render(t: &Transcript) -> Vec<u8> {
    let mut doc = Docx::new()
        .add_style(heading_style())
        .created_at(PACKAGE_DATE)
        .updated_at(PACKAGE_DATE)
        .add_paragraph(
            Paragraph::new()
                .style("Heading1")
                .add_run(Run::new().add_text(&t.uri)),
        );
    for (label, value) in metadata(t) {
        doc = doc.add_paragraph(
            Paragraph::new()
                .style(NORMAL)
                .add_run(Run::new().add_text(format!("{label}: ")).bold())
                .add_run(Run::new().add_text(value)),
        );
    }
    doc = doc.add_paragraph(Paragraph::new().style(NORMAL));
    for turn in turns(blocks(t)) {
        doc = doc.add_paragraph(match turn {
            Turn::Said(said) => said_paragraph(&said),
            Turn::Inaudible(mark) => Paragraph::new()
                .style(NORMAL)
                .add_run(Run::new().add_text(mark).italic()),
        });
    }
    let mut bytes = std::io::Cursor::new(Vec::new());
    // Packing into memory cannot fail for lack of space or permissions; an error here would be
    // a docx-rs bug, and the file is then written empty rather than half.
    if doc.pack(&mut bytes).is_err() {
        return Vec::new();
    }
    bytes.into_inner()
}

/// Word's built-in "Heading 1" id, defined here so readers show it as a title.
fn heading_style() -> Style {
    Style::new("Heading1", StyleType::Paragraph)
        .name("Heading 1")
        .size(32)
        .bold()
}

/// The header lines: what was recorded, when, how long, in which language, by which model.
fn metadata(t: &Transcript) -> Vec<(&'static str, String)> {
    let recording = Path::new(&t.source.path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| t.source.path.clone());
    let language = if t.language.detected {
        format!("{} (detected)", t.language.code)
    } else {
        t.language.code.clone()
    };
    let mut lines = vec![("Recording", recording)];
    if let Some(date) = recording_date(Path::new(&t.source.path)) {
        lines.push(("Date", date));
    }
    lines.push(("Duration", clock(t.source.duration_ms)));
    lines.push(("Language", language));
    lines.push(("Model", t.model.name.clone()));
    lines
}

/// `YYYY-MM-DD` of the recording file's modification time, if it can be read.
fn recording_date(path: &Path) -> Option<String> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    if modified < SystemTime::UNIX_EPOCH {
        return None;
    }
    let stamp = humantime::format_rfc3339_seconds(modified).to_string();
    stamp.get(..10).map(str::to_string)
}

/// One paragraph of the document.
enum Turn<'a> {
    /// A speaker turn, or one unattributed segment.
    Said(Said<'a>),
    /// `[inaudible hh:mm:ss–hh:mm:ss]` where speech was not transcribed.
    Inaudible(String),
}

struct Said<'a> {
    start_ms: u64,
    speaker: Option<&'a str>,
    text: String,
}

/// Joins consecutive segments of one speaker into turns (segments without a speaker stay
/// apart; an inaudible mark ends a turn).
fn turns(blocks: Vec<Block<'_>>) -> Vec<Turn<'_>> {
    let mut out: Vec<Turn<'_>> = Vec::new();
    for block in blocks {
        let seg = match block {
            Block::Inaudible(span) => {
                out.push(Turn::Inaudible(inaudible_mark(&span)));
                continue;
            }
            Block::Said(seg) => seg,
        };
        match out.last_mut() {
            Some(Turn::Said(last)) if seg.speaker.is_some() && seg.turn_speaker.is_none() => {
                last.text.push(' ');
                last.text.push_str(&seg.text);
            }
            _ => out.push(Turn::Said(Said {
                start_ms: seg.start_ms,
                speaker: seg.speaker,
                text: seg.text,
            })),
        }
    }
    out
}

fn said_paragraph(turn: &Said<'_>) -> Paragraph {
    let mut p = Paragraph::new().style(NORMAL);
    if let Some(name) = turn.speaker {
        p = p.add_run(Run::new().add_text(format!("{name}: ")).bold());
    }
    p.add_run(Run::new().add_text(format!("[{}] {}", clock(turn.start_ms), turn.text)))
}
