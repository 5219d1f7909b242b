//! Plain-text (`.txt`) writer: the transcript to read or paste into an analysis tool.
//!
//! Output: one paragraph per segment, paragraphs separated by a blank line, each starting with
//! its start time as `[hh:mm:ss]` (seconds truncated); a segment whose text stops mid-sentence
//! runs on into the next segment of its speaker (Whisper cuts where its window ends, not where a
//! sentence does), for at most a minute. When segments carry speakers, the first paragraph of
//! each turn (a run of consecutive segments by one speaker) starts with `Name: `:
//!
//! ```text
//! [00:00:00] Buenos días, ¿empezamos?
//!
//! Ana: [00:00:04] Sí, claro.
//!
//! [00:00:07] Cuando llegué a la ciudad…
//! ```
//!
//! Speech that was heard but not transcribed (the transcript's `untranscribed` spans) shows as
//! its own paragraph `[inaudible 00:12:03–00:12:09]` in time order; the paragraph after it names
//! its speaker again.
//!
//! Whitespace inside a segment's text is collapsed to single spaces so a paragraph stays one
//! line; segments with no text are left out. The file ends with a newline (empty if no text).

use super::{Block, Paragraph, blocks, clock, inaudible_mark};
use crate::transcript::Transcript;

/// The transcript as plain text.
pub(super) fn render(t: &Transcript) -> String {
    let mut out = String::new();
    for (i, block) in blocks(t).iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match block {
            Block::Said(p) => out.push_str(&paragraph(p)),
            Block::Inaudible(span) => {
                out.push_str(&inaudible_mark(span));
                out.push('\n');
            }
        }
    }
    out
}

fn paragraph(p: &Paragraph<'_>) -> String {
    let name = p.turn_speaker.map(|s| format!("{s}: ")).unwrap_or_default();
    format!("{name}[{}] {}\n", clock(p.start_ms), p.text)
}
