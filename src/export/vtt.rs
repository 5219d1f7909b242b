//! WebVTT (`.vtt`) writer.
//!
//! Output, UTF-8 without BOM, the same cues as the SRT file:
//!
//! ```text
//! WEBVTT
//!
//! 00:00:01.000 --> 00:00:04.250
//! <v Ana>first line of text
//! second line
//!
//! 00:00:04.250 --> 00:00:06.000
//! …
//! ```
//!
//! The file starts `WEBVTT` and a blank line (also when there are no cues: `WEBVTT\n\n`), a
//! blank line separates cues, and it ends with one newline after the last cue.
//! Cues carry no identifiers. A cue with a speaker opens with the voice tag `<v Name>`, which
//! lasts to the cue's end. `&`, `<` and `>` in text and names are written `&amp;`, `&lt;`,
//! `&gt;`, so no cue text can hold `-->` or be taken for markup.

use super::clock_ms;
use super::cues::{Cue, build_cues};
use crate::transcript::Transcript;

/// The transcript as WebVTT subtitles.
pub(super) fn render(t: &Transcript) -> String {
    // The blank line after the magic is required even with no cues.
    let blocks: Vec<String> = build_cues(t).iter().map(cue_block).collect();
    format!("WEBVTT\n\n{}", blocks.join("\n"))
}

/// One cue, ending in a newline.
fn cue_block(cue: &Cue<'_>) -> String {
    let mut block = format!(
        "{} --> {}\n",
        clock_ms(cue.start_ms, '.'),
        clock_ms(cue.end_ms, '.')
    );
    for (i, line) in cue.lines.iter().enumerate() {
        if i == 0
            && let Some(name) = cue.speaker
        {
            block.push_str(&format!("<v {}>", escape(name)));
        }
        block.push_str(&escape(line));
        block.push('\n');
    }
    block
}

/// Escapes the characters WebVTT cue text reserves.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
