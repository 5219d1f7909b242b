//! The analysis report: `codes.md`, `codes.csv` and `passages.tsv` for a set of transcripts.
//!
//! | file | what it holds |
//! |---|---|
//! | `codes.md` | readable report: overview, how themes were chosen, provenance, then per code its label, definition, keywords, hints and quotes (`> text` then `— SPEAKER, uri [hh:mm:ss–hh:mm:ss]`), theme counts per file and per speaker, and the unassigned passages |
//! | `codes.csv` | one row per code (RFC 4180): `theme,code,seed,keywords,definition,include,exclude,passages,speakers,files,quote_1…quote_5`; keywords joined by `; `; a quote cell is `SPEAKER, uri hh:mm:ss.mmm–hh:mm:ss.mmm: text` |
//! | `passages.tsv` | one row per passage, header `uri start end speaker theme code confidence text`; `confidence` is the probability of the passage's best code when coding by example or codebook (3 decimals; examples 1.000; empty otherwise); times in seconds with 3 decimals; `theme` is `T1`, `T2`… or `unassigned`, `moderator`, `back-channel`; `code` is the code's label (empty when none); `\`, tab, newline and carriage return in fields are written `\\`, `\t`, `\n`, `\r` |
//!
//! Themes are numbered from 1 in the files (`T1` is theme id 0). Renderers are pure: the same
//! inputs give byte-identical files (no dates, stable orders). Files are UTF-8 with `\n` line
//! ends, written atomically.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{ExportError, clock};
use crate::atomic::write_atomic;
use crate::codes::{Codebook, Quote};
use crate::passages::{Passages, Role};
use crate::themes::Themes;

/// Everything the report describes.
#[derive(Debug, Clone, Copy)]
pub struct CodesReport<'a> {
    /// The passages of all files.
    pub passages: &'a Passages,
    /// The themes over them.
    pub themes: &'a Themes,
    /// The proposed codes.
    pub codebook: &'a Codebook,
    /// What produced it (model names and hashes, settings), as `key: value` lines.
    pub provenance: &'a [(String, String)],
}

/// File names written by [`write_codes_report`], in order.
pub const REPORT_FILES: [&str; 3] = ["codes.md", "codes.csv", "passages.tsv"];

/// Writes `codes.md`, `codes.csv` and `passages.tsv` into `out_dir` (which must exist).
pub fn write_codes_report(
    out_dir: &Path,
    r: &CodesReport<'_>,
) -> Result<Vec<PathBuf>, ExportError> {
    let bodies = [
        render_codes_md(r),
        render_codes_csv(r),
        render_passages_tsv(r),
    ];
    let mut written = Vec::with_capacity(3);
    for (name, body) in REPORT_FILES.iter().zip(bodies) {
        let path = out_dir.join(name);
        write_atomic(&path, body.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

fn theme_name(t: usize) -> String {
    format!("T{}", t + 1)
}

/// `hh:mm:ss–hh:mm:ss` of a quote.
fn quote_time(q: &Quote) -> String {
    format!("{}–{}", clock(q.start_ms), clock(q.end_ms))
}

fn speaker_name(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("(unknown speaker)")
}

/// Single line, `|` escaped, for Markdown table cells and headings.
fn md_inline(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// The readable report.
pub fn render_codes_md(r: &CodesReport<'_>) -> String {
    let mut out = String::new();
    let p = r.passages;
    let count = |role| p.passages.iter().filter(|x| x.role == role).count();
    let _ = writeln!(out, "# Proposed codes\n");
    let _ = writeln!(
        out,
        "{} file(s) · {} passages ({} content, {} moderator, {} back-channel) · {} codes · {} unassigned ({:.1} % of content)\n",
        p.files.len(),
        p.passages.len(),
        count(Role::Content),
        count(Role::Moderator),
        count(Role::BackChannel),
        r.codebook.codes.len(),
        r.themes.unassigned.len(),
        100.0 * r.themes.unassigned_share()
    );
    let k = &r.themes.k_choice;
    if k.automatic {
        let tried: Vec<String> = k
            .silhouettes
            .iter()
            .map(|(k, s)| format!("{k}: {s:.3}"))
            .collect();
        let _ = writeln!(
            out,
            "Inductive themes: {} (chosen by mean silhouette; tried {}).\n",
            k.k,
            if tried.is_empty() {
                "none".to_string()
            } else {
                tried.join(", ")
            }
        );
    } else {
        let _ = writeln!(out, "Inductive themes: {} (fixed).\n", k.k);
    }
    let moderators: Vec<String> = p
        .files
        .iter()
        .map(|f| format!("{}: {}", f.uri, f.moderator.as_deref().unwrap_or("none")))
        .collect();
    let _ = writeln!(out, "Moderator per file: {}.\n", moderators.join(", "));
    if !r.provenance.is_empty() {
        let _ = writeln!(out, "| setting | value |\n|---|---|");
        for (k, v) in r.provenance {
            let _ = writeln!(out, "| {} | {} |", md_inline(k), md_inline(v));
        }
        out.push('\n');
    }
    for c in &r.codebook.codes {
        let _ = writeln!(
            out,
            "## {} · {}\n",
            theme_name(c.theme),
            md_inline(&c.label)
        );
        let _ = writeln!(out, "*{}*\n", md_inline(&c.definition));
        if let Some(seed) = &c.seed {
            let _ = writeln!(out, "- Seed code: {}", md_inline(seed));
        }
        let _ = writeln!(out, "- Keywords: {}", md_inline(&c.keywords.join(", ")));
        let _ = writeln!(out, "- {}", md_inline(&c.include));
        let _ = writeln!(out, "- {}", md_inline(&c.exclude));
        let _ = writeln!(
            out,
            "- {} passages · {} speakers · {} file(s)\n",
            c.passages, c.speakers, c.files
        );
        for q in &c.quotes {
            let _ = writeln!(out, "> {}\n>", md_inline(&q.text));
            let _ = writeln!(
                out,
                "> — {}, {} [{}]\n",
                md_inline(speaker_name(&q.speaker)),
                md_inline(&q.uri),
                quote_time(q)
            );
        }
        examples_and_suggestions(&mut out, r, c.theme);
    }
    summary_tables(&mut out, r);
    unassigned_list(&mut out, r);
    out
}

/// Coding by example: the code's examples, then the passages suggested for it, most confident
/// first.
fn examples_and_suggestions(out: &mut String, r: &CodesReport<'_>, t: usize) {
    let Some(theme) = r.themes.themes.get(t) else {
        return;
    };
    let suggestions = r.themes.suggestions(t);
    if theme.examples.is_empty() && r.themes.confidence.iter().all(Option::is_none) {
        return;
    }
    let line = |p: usize| {
        let p = &r.passages.passages[p];
        format!(
            "{}, {} [{}–{}]: {}",
            md_inline(speaker_name(&p.speaker)),
            md_inline(&p.uri),
            clock_ms(p.start_ms),
            clock_ms(p.end_ms),
            md_inline(&p.text)
        )
    };
    let _ = writeln!(out, "Examples ({}):\n", theme.examples.len());
    for &p in &theme.examples {
        let _ = writeln!(out, "- {}", line(p));
    }
    let _ = writeln!(
        out,
        "\nSuggested passages ({}), by confidence:\n",
        suggestions.len()
    );
    for (p, c) in suggestions {
        let _ = writeln!(out, "- {c:.2} · {}", line(p));
    }
    out.push('\n');
}

fn summary_tables(out: &mut String, r: &CodesReport<'_>) {
    let n = r.themes.themes.len();
    let header: Vec<String> = (0..n).map(theme_name).collect();
    let rule = "|---".repeat(n + 2);
    let _ = writeln!(out, "## Themes per file\n");
    let _ = writeln!(
        out,
        "| file | {} | unassigned |\n{rule}|",
        header.join(" | ")
    );
    for g in r.themes.by_file(r.passages) {
        let counts: Vec<String> = g.per_theme.iter().map(usize::to_string).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            md_inline(&g.uri),
            counts.join(" | "),
            g.unassigned
        );
    }
    let _ = writeln!(out, "\n## Themes per speaker\n");
    let _ = writeln!(
        out,
        "| file | speaker | {} | unassigned |\n{rule}---|",
        header.join(" | ")
    );
    for g in r.themes.by_speaker(r.passages) {
        if g.content == 0 {
            continue;
        }
        let counts: Vec<String> = g.per_theme.iter().map(usize::to_string).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            md_inline(&g.uri),
            md_inline(speaker_name(&g.speaker)),
            counts.join(" | "),
            g.unassigned
        );
    }
    out.push('\n');
}

fn unassigned_list(out: &mut String, r: &CodesReport<'_>) {
    if r.themes.unassigned.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Unassigned passages\n");
    for &id in &r.themes.unassigned {
        let p = &r.passages.passages[id];
        let _ = writeln!(
            out,
            "- {}, {} [{}–{}]: {}",
            md_inline(speaker_name(&p.speaker)),
            md_inline(&p.uri),
            clock(p.start_ms),
            clock(p.end_ms),
            md_inline(&p.text)
        );
    }
    out.push('\n');
}

/// RFC 4180 field: quoted when it holds a comma, quote or line break. A cell a spreadsheet would
/// run as a formula (starting with `=`, `+`, `-`, `@`, tab or carriage return) gets a leading `'`
/// so it is shown as text (OWASP "CSV injection"): code names and quotes come from speech and
/// from reviewers, and researchers open these files in Excel.
pub(crate) fn csv_field(s: &str) -> String {
    let guarded;
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        guarded = format!("'{s}");
        guarded.as_str()
    } else {
        s
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `hh:mm:ss.mmm`.
fn clock_ms(ms: u64) -> String {
    super::clock_ms(ms, '.')
}

/// One row per code.
pub fn render_codes_csv(r: &CodesReport<'_>) -> String {
    let max_quotes = r
        .codebook
        .codes
        .iter()
        .map(|c| c.quotes.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut header: Vec<String> = [
        "theme",
        "code",
        "seed",
        "keywords",
        "definition",
        "include",
        "exclude",
        "passages",
        "speakers",
        "files",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    header.extend((1..=max_quotes).map(|i| format!("quote_{i}")));
    let mut out = header.join(",");
    out.push('\n');
    for c in &r.codebook.codes {
        let mut row = vec![
            theme_name(c.theme),
            c.label.clone(),
            c.seed.clone().unwrap_or_default(),
            c.keywords.join("; "),
            c.definition.clone(),
            c.include.clone(),
            c.exclude.clone(),
            c.passages.to_string(),
            c.speakers.to_string(),
            c.files.to_string(),
        ];
        for i in 0..max_quotes {
            row.push(c.quotes.get(i).map_or_else(String::new, |q| {
                format!(
                    "{}, {} {}–{}: {}",
                    speaker_name(&q.speaker),
                    q.uri,
                    clock_ms(q.start_ms),
                    clock_ms(q.end_ms),
                    q.text
                )
            }));
        }
        let fields: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// Backslash escapes for a TSV field.
fn tsv_field(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// One row per passage.
pub fn render_passages_tsv(r: &CodesReport<'_>) -> String {
    let assignment = r.themes.assignment();
    let labels: std::collections::HashMap<usize, &str> = r
        .codebook
        .codes
        .iter()
        .map(|c| (c.theme, c.label.as_str()))
        .collect();
    let mut out = String::from("uri\tstart\tend\tspeaker\ttheme\tcode\tconfidence\ttext\n");
    for p in &r.passages.passages {
        let (theme, code) = match (p.role, assignment.get(p.id).copied().flatten()) {
            (Role::Content, Some(t)) => (theme_name(t), labels.get(&t).copied().unwrap_or("")),
            (Role::Content, None) => ("unassigned".to_string(), ""),
            (role, _) => (role.as_str().to_string(), ""),
        };
        let fields = [
            tsv_field(&p.uri),
            seconds(p.start_ms),
            seconds(p.end_ms),
            tsv_field(p.speaker.as_deref().unwrap_or("")),
            theme,
            tsv_field(code),
            r.themes
                .confidence
                .get(p.id)
                .copied()
                .flatten()
                .map_or(String::new(), |c| format!("{c:.3}")),
            tsv_field(&p.text),
        ];
        out.push_str(&fields.join("\t"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_fields_escape_tabs_newlines_and_backslashes() {
        assert_eq!(tsv_field("a\tb\nc\\d\re"), "a\\tb\\nc\\\\d\\re");
        assert_eq!(seconds(83_005), "83.005");
        assert_eq!(seconds(7), "0.007");
    }

    #[test]
    fn csv_fields_quote_only_when_needed() {
        assert_eq!(csv_field("precio"), "precio");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("dijo \"no\""), "\"dijo \"\"no\"\"\"");
        assert_eq!(csv_field("a\nb"), "\"a\nb\"");
    }

    #[test]
    fn csv_fields_never_start_a_formula() {
        assert_eq!(
            csv_field("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(csv_field("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0");
        assert_eq!(csv_field("@SUM(1+1)"), "'@SUM(1+1)");
        assert_eq!(csv_field("-2"), "'-2");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(csv_field("\rx"), "\"'\rx\"");
        assert_eq!(csv_field("a=b"), "a=b");
    }
}
