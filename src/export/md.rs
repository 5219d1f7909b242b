//! Markdown (`.md`) writer: the transcript as a readable, shareable document.
//!
//! Output (CommonMark with a GFM table):
//!
//! ```text
//! # entrevista-03
//!
//! | Duration | Language | Model |
//! |---|---|---|
//! | 00:41:07 | es (detected) | base |
//!
//! [00:00:00] Buenos días, ¿empezamos?
//!
//! **Ana:** [00:00:04] Sí, claro.
//!
//! [00:00:07] Cuando llegué a la ciudad…
//! ```
//!
//! Paragraphs follow the TXT rules (one per segment, an unfinished sentence running on into the
//! next, speaker name at each turn, here in bold).
//! Untranscribed speech shows as its own paragraph `\[inaudible 00:12:03–00:12:09\]` (the
//! brackets escaped), as in TXT.
//! Language reads `es (detected)` when Whisper detected it and `es` when the user gave it.
//! Markdown punctuation in the uri, names and text is backslash-escaped so speech never turns
//! into markup. The file ends with a newline.

use super::{Block, Paragraph, blocks, clock, inaudible_mark};
use crate::transcript::Transcript;

/// The transcript as Markdown.
pub(super) fn render(t: &Transcript) -> String {
    let mut out = format!("# {}\n\n{}", escape(&t.uri), metadata_table(t));
    for block in blocks(t) {
        out.push('\n');
        match block {
            Block::Said(p) => out.push_str(&paragraph(&p)),
            Block::Inaudible(span) => {
                out.push_str(&escape(&inaudible_mark(&span)));
                out.push('\n');
            }
        }
    }
    out
}

fn metadata_table(t: &Transcript) -> String {
    let language = if t.language.detected {
        format!("{} (detected)", t.language.code)
    } else {
        t.language.code.clone()
    };
    format!(
        "| Duration | Language | Model |\n|---|---|---|\n| {} | {} | {} |\n",
        clock(t.source.duration_ms),
        escape(&language),
        escape(&t.model.name)
    )
}

fn paragraph(p: &Paragraph<'_>) -> String {
    let name = p
        .turn_speaker
        .map(|s| format!("**{}:** ", escape(s)))
        .unwrap_or_default();
    format!(
        "{name}[{}] {}\n",
        clock(p.start_ms),
        escape(p.text.as_str())
    )
}

/// Backslash-escapes the ASCII punctuation Markdown (and GFM tables) could read as markup.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '&' | '~'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
