//! Exports that reflect the review: accepted and still-proposed codes as codes (status in the
//! note), rejected and merged-away codes dropped, new names used, memos carried as notes;
//! transcripts with corrected text and speaker names.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::ReviewError;
use super::reconcile::CorrectedPassage;
use super::store::Project;
use super::view::CodeView;
use crate::atomic::write_atomic;
use crate::export::codes_qda::{qda_source, speaker_cases};
use crate::export::codes_report::csv_field;
use crate::export::qda::{self, QdaCode, QdaCoding, QdaDates, QdaProject, QdaUser, guid_for};
use crate::export::{self, Format};
use crate::transcript::Transcript;

/// Writes the reviewed `codes.md`, `codes.csv`, `codebook.qdc`, `project.qdpx` and transcripts
/// (`transcripts/<uri>.*`) into `out_dir`, atomically. Returns the paths written.
pub fn export_reviewed(project: &Project, out_dir: &Path) -> Result<Vec<PathBuf>, ReviewError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReviewError::Io { path, source }
    };
    let transcripts_dir = out_dir.join(crate::batch::TRANSCRIPTS_DIR);
    std::fs::create_dir_all(&transcripts_dir).map_err(io(&transcripts_dir))?;
    // Temp files of an export killed mid-write are never read; the project lock (held by
    // `project`) means no other export is writing here now.
    crate::batch::remove_stale_temp_files(out_dir);
    // Machine and reviewed transcripts, parsed once for the files and the passages' spans.
    let loaded = project.transcripts(None)?;
    let transcripts: Vec<Transcript> = loaded.iter().map(|(_, r)| r.clone()).collect();
    // Exported: codes still proposed and those accepted, with their memos, and the passages
    // that still hold words after the reviewer's corrections (texts already corrected).
    let overview = project.overview()?;
    let kept: Vec<CodeView> = overview
        .themes
        .iter()
        .flat_map(|t| &t.codes)
        .filter(|c| c.status == "accepted" || c.status == "proposed")
        .cloned()
        .map(|mut c| {
            c.passages.retain(|p| !p.text.is_empty());
            c
        })
        .collect();
    let spans = project.passage_corrections_in(&loaded)?;
    // Everything is rendered and checked before the first file is replaced, and the files that
    // validate their input (the REFI-QDA ones) go first, so a refused export changes nothing.
    let mut project_qda = qda_project(&transcripts, &kept, &spans, &overview.memo);
    project_qda.dates = review_dates(project)?;
    let md_text = codes_markdown(&kept, &overview.memo);
    let csv_text = codes_csv(&kept);
    // The four codebook files are written under temporary names first and renamed into place
    // together, so a failure while writing (a full disk) leaves the previous set, not a mix.
    let final_names = [
        export::codes_qda::PROJECT_FILE,
        export::codes_qda::CODEBOOK_FILE,
        "codes.md",
        "codes.csv",
    ];
    let staged: Vec<PathBuf> = final_names
        .iter()
        .map(|name| out_dir.join(format!(".qualscribe-staged-{name}.tmp")))
        .collect();
    let staging = (|| -> Result<(), ReviewError> {
        qda::write_qdpx(&staged[0], &project_qda)?;
        qda::write_qdc(&staged[1], &project_qda.codes, &project_qda.origin)?;
        write_atomic(&staged[2], md_text.as_bytes())?;
        write_atomic(&staged[3], csv_text.as_bytes())?;
        Ok(())
    })();
    if let Err(e) = staging {
        for path in &staged {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    let mut written = Vec::new();
    for (from, name) in staged.iter().zip(final_names) {
        let to = out_dir.join(name);
        std::fs::rename(from, &to).map_err(io(&to))?;
        written.push(to);
    }
    for t in &transcripts {
        written.extend(export::write_all(t, &transcripts_dir, &Format::ALL)?);
    }
    Ok(written)
}

/// `HH:MM:SS` of a stored time (never negative; 0 if it were).
fn clock(ms: i64) -> String {
    export::clock(u64::try_from(ms).unwrap_or(0))
}

/// The reviewed codebook as Markdown. Every name and text is escaped the way the transcript
/// Markdown escapes them, so a code called `<img onerror=…>` is shown, never run.
fn codes_markdown(codes: &[CodeView], project_memo: &str) -> String {
    let esc = export::md::escape;
    let mut md = String::from("# Reviewed codebook\n\n");
    if !project_memo.is_empty() {
        let _ = writeln!(md, "Project memo: {}\n", esc(project_memo));
    }
    for c in codes {
        let _ = writeln!(md, "## {} ({})\n", esc(&c.label), c.status);
        if !c.definition.is_empty() {
            let _ = writeln!(md, "{}\n", esc(&c.definition));
        }
        if !c.keywords.is_empty() {
            let _ = writeln!(md, "Keywords: {}\n", esc(&c.keywords));
        }
        if !c.memo.is_empty() {
            let _ = writeln!(md, "Memo: {}\n", esc(&c.memo));
        }
        for p in &c.passages {
            let who = p.speaker.as_deref().unwrap_or("?");
            let _ = writeln!(
                md,
                "- {} {}–{}, {}: «{}»{}",
                esc(&p.uri),
                clock(p.start_ms),
                clock(p.end_ms),
                esc(who),
                esc(&p.text),
                if p.memo.is_empty() {
                    String::new()
                } else {
                    format!(" — memo: {}", esc(&p.memo))
                }
            );
        }
        md.push('\n');
    }
    md
}

fn codes_csv(codes: &[CodeView]) -> String {
    let mut csv = String::from("code,status,definition,keywords,memo,passages,speakers,files\n");
    for c in codes {
        let speakers: std::collections::BTreeSet<(&str, Option<&str>)> = c
            .passages
            .iter()
            .map(|p| (p.uri.as_str(), p.speaker_label.as_deref()))
            .collect();
        let files: std::collections::BTreeSet<&str> =
            c.passages.iter().map(|p| p.uri.as_str()).collect();
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{}",
            csv_field(&c.label),
            c.status,
            csv_field(&c.definition),
            csv_field(&c.keywords),
            csv_field(&c.memo),
            c.passages.len(),
            speakers.len(),
            files.len()
        );
    }
    csv
}

/// The reviewed codes as a REFI-QDA project: a passage is coded over exactly its (corrected)
/// characters, or over the segments its time span covers when it cannot be found in the text.
fn qda_project(
    transcripts: &[Transcript],
    codes: &[CodeView],
    spans: &HashMap<i64, Option<CorrectedPassage>>,
    project_memo: &str,
) -> QdaProject {
    let sources: Vec<_> = transcripts.iter().map(qda_source).collect();
    let qda_codes: Vec<QdaCode> = codes
        .iter()
        .map(|c| {
            let mut note = format!("status: {} (reviewed in qualscribe)", c.status);
            if !c.memo.is_empty() {
                note.push_str(&format!("\nmemo: {}", c.memo));
            }
            let mut description = c.definition.clone();
            if !c.keywords.is_empty() {
                description.push_str(&format!("\nKeywords: {}", c.keywords));
            }
            QdaCode {
                guid: guid_for("reviewed-code", &c.id.to_string()),
                name: c.label.clone(),
                description,
                color: None,
                is_codable: true,
                children: Vec::new(),
                note: Some(note),
            }
        })
        .collect();
    let mut codings = Vec::new();
    for (c, q) in codes.iter().zip(&qda_codes) {
        for p in &c.passages {
            let Some((ti, t)) = transcripts.iter().enumerate().find(|(_, t)| t.uri == p.uri) else {
                continue;
            };
            let range = match spans.get(&p.id) {
                Some(corrected) => corrected.as_ref().map(|c| (c.chars.start, c.chars.end)),
                None => char_range_of_time(t, p.start_ms, p.end_ms),
            };
            let Some((start, end)) = range else {
                continue;
            };
            codings.push(QdaCoding {
                guid: guid_for("reviewed-coding", &format!("{}:{}", c.id, p.id)),
                source_guid: sources[ti].guid.clone(),
                start,
                end,
                code_guid: q.guid.clone(),
                name: None,
            });
        }
    }
    let mut notes = Vec::new();
    if !project_memo.is_empty() {
        // REFI-QDA notes are keyed by GUID; the project memo's is stable across exports.
        notes.push((
            guid_for("reviewed-note", "project"),
            project_memo.to_string(),
        ));
    }
    QdaProject {
        name: "qualscribe reviewed project".to_string(),
        origin: format!("qualscribe {}", env!("CARGO_PKG_VERSION")),
        created_by: QdaUser {
            guid: guid_for("user", "qualscribe"),
            name: "qualscribe".to_string(),
        },
        codes: qda_codes,
        cases: speaker_cases(transcripts, &sources),
        sources,
        codings,
        notes,
        dates: QdaDates::at(std::time::UNIX_EPOCH),
    }
}

/// The project's dates from its audit trail: created at the first import, modified at the last
/// review action (re-opening the page imports again, which changes nothing a reader sees).
fn review_dates(project: &Project) -> Result<QdaDates, ReviewError> {
    let (created, modified): (Option<String>, Option<String>) = project
        .conn()
        .query_row(
            "SELECT MIN(at), MAX(CASE WHEN action != 'import' THEN at END) FROM audit",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(project.db())?;
    let epoch = || qda::xs_date_time(std::time::UNIX_EPOCH);
    let created = created.unwrap_or_else(epoch);
    Ok(QdaDates {
        modified: modified.unwrap_or_else(|| created.clone()),
        created,
    })
}

/// Character range in [`Transcript::text`] of the segments overlapping `[start, end)` ms.
fn char_range_of_time(t: &Transcript, start_ms: i64, end_ms: i64) -> Option<(usize, usize)> {
    let mut pos = 0usize;
    let mut range: Option<(usize, usize)> = None;
    for s in &t.segments {
        let len = s.text.chars().count();
        let overlaps = (s.start_ms as i64) < end_ms && (s.end_ms as i64) > start_ms;
        if overlaps && len > 0 {
            range = Some(match range {
                None => (pos, pos + len),
                Some((a, _)) => (a, pos + len),
            });
        }
        pos += len + 1;
    }
    range
}
