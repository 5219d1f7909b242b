//! SubRip (`.srt`) writer.
//!
//! Output, UTF-8 without BOM, cues from `cues` numbered from 1:
//!
//! ```text
//! 1
//! 00:00:01,000 --> 00:00:04,250
//! Ana: first line of text
//! second line
//!
//! 2
//! 00:00:04,250 --> 00:00:06,000
//! …
//! ```
//!
//! A blank line separates cues; the file ends with one newline after the last cue (an empty
//! transcript gives an empty file). A cue with a speaker starts `Name: `. Any `-->` in the text
//! becomes `->` because some readers take a line holding `-->` for a timing line.

use super::clock_ms;
use super::cues::{Cue, build_cues};
use crate::transcript::Transcript;

/// The transcript as SubRip subtitles.
pub(super) fn render(t: &Transcript) -> String {
    let blocks: Vec<String> = build_cues(t)
        .iter()
        .enumerate()
        .map(|(i, cue)| cue_block(i + 1, cue))
        .collect();
    blocks.join("\n")
}

/// One numbered cue, ending in a newline.
fn cue_block(number: usize, cue: &Cue<'_>) -> String {
    let mut block = format!(
        "{number}\n{} --> {}\n",
        clock_ms(cue.start_ms, ','),
        clock_ms(cue.end_ms, ',')
    );
    for (i, line) in cue.lines.iter().enumerate() {
        if i == 0
            && let Some(name) = cue.speaker
        {
            block.push_str(&clean(name));
            block.push_str(": ");
        }
        block.push_str(&clean(line));
        block.push('\n');
    }
    block
}

fn clean(text: &str) -> String {
    text.replace("-->", "->")
}
