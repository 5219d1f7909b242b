//! The batch report: one row per recording (done or failed, at which stage, why), kept as
//! `batch-report.tsv` in the output folder and printed as a table.
//!
//! The file holds only what the results are, never how they were reached (no times, no "reused"
//! flags), so an interrupted-and-resumed batch and a sharded-and-merged one write the same report
//! as an uninterrupted one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::BatchError;
use crate::atomic::write_atomic;

/// File name of the report in a batch output folder.
pub const REPORT_FILE: &str = "batch-report.tsv";

const HEADER: &str = "file\turi\tstatus\tstage\taudio_s\terror\twarnings";

/// The header before the `warnings` column was added: such reports are still read (resume, merge).
const HEADER_V1: &str = "file\turi\tstatus\tstage\taudio_s\terror";

/// One recording's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    /// The input file as found.
    pub file: String,
    /// Its id in the outputs (`transcripts/<uri>.*`).
    pub uri: String,
    /// `None` when every stage succeeded.
    pub failure: Option<(String, String)>,
    /// Audio length in seconds, when decoded.
    pub audio_s: Option<f64>,
    /// What was wrong with the recording although it was processed (cut off, damaged packets,
    /// …; see [`crate::transcript::DecodeReport`]); empty when nothing was.
    pub warnings: String,
}

impl ReportRow {
    /// Whether the recording was processed completely.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// Writes the report (rows sorted by file) atomically.
pub fn write_report(out_dir: &Path, rows: &[ReportRow]) -> Result<PathBuf, BatchError> {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| a.file.cmp(&b.file));
    let mut text = String::from(HEADER);
    text.push('\n');
    for r in &rows {
        let (status, stage, error) = match &r.failure {
            None => ("ok", "", ""),
            Some((stage, error)) => ("failed", stage.as_str(), error.as_str()),
        };
        let audio = r.audio_s.map(|s| format!("{s:.1}")).unwrap_or_default();
        let _ = writeln!(
            text,
            "{}\t{}\t{status}\t{stage}\t{audio}\t{}\t{}",
            clean(&r.file),
            clean(&r.uri),
            clean(error),
            clean(&r.warnings)
        );
    }
    let path = out_dir.join(REPORT_FILE);
    write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

/// Tabs and newlines would break the table; they never matter to the meaning.
fn clean(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

/// Reads a report written by [`write_report`].
pub fn read_report(path: &Path) -> Result<Vec<ReportRow>, BatchError> {
    let text = std::fs::read_to_string(path).map_err(|source| BatchError::NotABatchFolder {
        path: path.to_path_buf(),
        reason: source.to_string(),
    })?;
    let mut lines = text.lines();
    if !matches!(lines.next(), Some(HEADER | HEADER_V1)) {
        return Err(BatchError::NotABatchFolder {
            path: path.to_path_buf(),
            reason: "unexpected header".to_string(),
        });
    }
    lines
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, line)| {
            parse_row(line).ok_or_else(|| BatchError::NotABatchFolder {
                path: path.to_path_buf(),
                reason: format!("line {} is not `{HEADER}`", i + 2),
            })
        })
        .collect()
}

fn parse_row(line: &str) -> Option<ReportRow> {
    let f: Vec<&str> = line.split('\t').collect();
    if !(6..=7).contains(&f.len()) {
        return None;
    }
    let failure = match f[2] {
        "ok" => None,
        "failed" => Some((f[3].to_string(), f[5].to_string())),
        _ => return None,
    };
    let audio_s = if f[4].is_empty() {
        None
    } else {
        Some(f[4].parse().ok()?)
    };
    Some(ReportRow {
        file: f[0].to_string(),
        uri: f[1].to_string(),
        failure,
        audio_s,
        warnings: f.get(6).map_or_else(String::new, |w| w.to_string()),
    })
}

/// The failures as an aligned table (`file  stage  error`), for the terminal.
pub fn failure_table(rows: &[ReportRow]) -> String {
    let failed: Vec<(&str, &str, &str)> = rows
        .iter()
        .filter_map(|r| {
            r.failure
                .as_ref()
                .map(|(stage, error)| (r.file.as_str(), stage.as_str(), error.as_str()))
        })
        .collect();
    if failed.is_empty() {
        return String::new();
    }
    let w_file = failed
        .iter()
        .map(|f| f.0.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let w_stage = failed.iter().map(|f| f.1.len()).max().unwrap_or(5).max(5);
    let mut out = format!("{:<w_file$}  {:<w_stage$}  error\n", "file", "stage");
    for (file, stage, error) in failed {
        let _ = writeln!(out, "{file:<w_file$}  {stage:<w_stage$}  {error}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<ReportRow> {
        vec![
            ReportRow {
                file: "b/x.wav".into(),
                uri: "x".into(),
                failure: Some(("decode".into(), "b/x.wav is not audio\twith tab".into())),
                audio_s: None,
                warnings: String::new(),
            },
            ReportRow {
                file: "a/y.wav".into(),
                uri: "y".into(),
                failure: None,
                audio_s: Some(61.24),
                warnings: "ended early (cut off or incompletely copied)".into(),
            },
        ]
    }

    #[test]
    fn report_round_trips_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_report(dir.path(), &rows()).unwrap();
        let back = read_report(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].file, "a/y.wav");
        assert!(back[0].ok());
        assert_eq!(back[0].audio_s, Some(61.2));
        assert_eq!(
            back[0].warnings,
            "ended early (cut off or incompletely copied)"
        );
        assert_eq!(
            back[1].failure,
            Some(("decode".into(), "b/x.wav is not audio with tab".into()))
        );
    }

    #[test]
    fn reports_without_the_warnings_column_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(REPORT_FILE);
        std::fs::write(&path, format!("{HEADER_V1}\nx.wav\tx\tok\t\t1.0\t\n")).unwrap();
        let back = read_report(&path).unwrap();
        assert_eq!(back.len(), 1);
        assert!(back[0].ok() && back[0].warnings.is_empty());
    }

    #[test]
    fn failure_table_lists_only_failures() {
        let t = failure_table(&rows());
        assert!(t.starts_with("file"), "{t}");
        assert!(t.contains("b/x.wav  decode  b/x.wav is not audio"), "{t}");
        assert!(!t.contains("a/y.wav"), "{t}");
    }
}
