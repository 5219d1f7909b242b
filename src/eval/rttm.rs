//! NIST RTTM speaker turns and UEM evaluation maps: parsing, reading and deterministic writing.
//!
//! Promises: every `SPEAKER` record becomes one [`Turn`] (other record types, `;;` comments and blank
//! lines are skipped); a malformed record is an error that names its line (and, from
//! [`read_rttm`]/[`read_uem`], the file); [`write_rttm`] output is byte-for-byte reproducible and
//! parses back to the same turns (to the millisecond).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One speaker turn: `speaker` talks in `uri` from `start_s` to `end_s` (seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// The recording this turn belongs to (RTTM field 2, "file").
    pub uri: String,
    /// Start time in seconds.
    pub start_s: f64,
    /// End time in seconds (`start + duration` of the RTTM record).
    pub end_s: f64,
    /// Speaker label (RTTM field 8, "name").
    pub speaker: String,
}

/// One evaluated region of a recording (a UEM line `<uri> <channel> <start> <end>`).
#[derive(Debug, Clone, PartialEq)]
pub struct UemSegment {
    /// The recording this region belongs to.
    pub uri: String,
    /// Start time in seconds.
    pub start_s: f64,
    /// End time in seconds.
    pub end_s: f64,
}

/// What is wrong with one line of an RTTM or UEM file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LineProblem {
    /// The record has fewer whitespace-separated fields than its format needs.
    #[error("expected at least {expected} fields, found {found}")]
    TooFewFields {
        /// Fields the format needs.
        expected: usize,
        /// Fields on the line.
        found: usize,
    },
    /// A time field is not a finite decimal number.
    #[error("{field} {value:?} is not a finite number")]
    BadNumber {
        /// Which field (`start`, `duration`, `end`).
        field: &'static str,
        /// The text found there.
        value: String,
    },
    /// A turn or region would end before it starts.
    #[error("negative duration: starts at {start_s} s, ends at {end_s} s")]
    NegativeDuration {
        /// Start time in seconds.
        start_s: f64,
        /// End time in seconds.
        end_s: f64,
    },
}

/// Failure to read or parse an RTTM or UEM file.
#[derive(Debug, thiserror::Error)]
pub enum RttmError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line of in-memory text is malformed (from [`parse_rttm`] / [`parse_uem`]).
    #[error("line {line}: {problem}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: LineProblem,
    },
    /// A line of a file is malformed (from [`read_rttm`] / [`read_uem`]).
    #[error("{path}:{line}: {problem}")]
    FileLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: LineProblem,
    },
}

impl RttmError {
    /// Attaches the file name to a line error, so the message says where to look.
    fn in_file(self, path: &Path) -> Self {
        match self {
            RttmError::Line { line, problem } => RttmError::FileLine {
                path: path.to_path_buf(),
                line,
                problem,
            },
            other => other,
        }
    }
}

/// Fields of a `SPEAKER` record up to and including the speaker name; the trailing `<NA> <NA>`
/// are optional because many tools omit them.
const RTTM_MIN_FIELDS: usize = 8;
/// Fields of a UEM line: uri, channel, start, end.
const UEM_FIELDS: usize = 4;

/// Parses RTTM text: `SPEAKER <uri> <chan> <start> <duration> <NA> <NA> <speaker> <NA> <NA>`.
///
/// Other record types (`SPKR-INFO`, `LEXEME`, …), `;;` comments and blank lines are skipped.
/// Zero-duration turns are kept here (scoring ignores them, as pyannote does).
pub fn parse_rttm(text: &str) -> Result<Vec<Turn>, RttmError> {
    let mut turns = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let fields: Vec<&str> = raw.split_whitespace().collect();
        if fields.first() != Some(&"SPEAKER") {
            continue;
        }
        let line = index + 1;
        let turn =
            parse_speaker_record(&fields).map_err(|problem| RttmError::Line { line, problem })?;
        turns.push(turn);
    }
    Ok(turns)
}

fn parse_speaker_record(fields: &[&str]) -> Result<Turn, LineProblem> {
    if fields.len() < RTTM_MIN_FIELDS {
        return Err(LineProblem::TooFewFields {
            expected: RTTM_MIN_FIELDS,
            found: fields.len(),
        });
    }
    let start_s = parse_time("start", fields[3])?;
    let duration_s = parse_time("duration", fields[4])?;
    let end_s = start_s + duration_s;
    check_order(start_s, end_s)?;
    Ok(Turn {
        uri: fields[1].to_string(),
        start_s,
        end_s,
        speaker: fields[7].to_string(),
    })
}

fn parse_time(field: &'static str, value: &str) -> Result<f64, LineProblem> {
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(LineProblem::BadNumber {
            field,
            value: value.to_string(),
        }),
    }
}

fn check_order(start_s: f64, end_s: f64) -> Result<(), LineProblem> {
    if end_s < start_s {
        return Err(LineProblem::NegativeDuration { start_s, end_s });
    }
    Ok(())
}

/// Reads and parses an RTTM file; errors name the file and line.
pub fn read_rttm(path: &Path) -> Result<Vec<Turn>, RttmError> {
    let text = read_text(path)?;
    parse_rttm(&text).map_err(|e| e.in_file(path))
}

fn read_text(path: &Path) -> Result<String, RttmError> {
    std::fs::read_to_string(path).map_err(|source| RttmError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes turns as RTTM: one `SPEAKER` line each, times with 3 decimals, sorted by uri, start,
/// end, then speaker, so the same turns always give the same bytes.
///
/// Whitespace inside a uri or speaker label would split the field, so it is written as `_`.
pub fn write_rttm(turns: &[Turn]) -> String {
    let mut sorted: Vec<&Turn> = turns.iter().collect();
    sorted.sort_by(|a, b| {
        a.uri
            .cmp(&b.uri)
            .then(a.start_s.total_cmp(&b.start_s))
            .then(a.end_s.total_cmp(&b.end_s))
            .then(a.speaker.cmp(&b.speaker))
    });
    let mut out = String::new();
    for turn in sorted {
        // Writing into a String cannot fail.
        let _ = writeln!(
            out,
            "SPEAKER {} 1 {:.3} {:.3} <NA> <NA> {} <NA> <NA>",
            field_safe(&turn.uri),
            turn.start_s,
            turn.end_s - turn.start_s,
            field_safe(&turn.speaker),
        );
    }
    out
}

fn field_safe(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect()
}

/// Parses UEM text: `<uri> <channel> <start> <end>` per line; blank lines and `;;` comments are
/// skipped.
pub fn parse_uem(text: &str) -> Result<Vec<UemSegment>, RttmError> {
    let mut segments = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let fields: Vec<&str> = raw.split_whitespace().collect();
        if fields.is_empty() || fields[0].starts_with(";;") {
            continue;
        }
        let line = index + 1;
        let segment =
            parse_uem_record(&fields).map_err(|problem| RttmError::Line { line, problem })?;
        segments.push(segment);
    }
    Ok(segments)
}

fn parse_uem_record(fields: &[&str]) -> Result<UemSegment, LineProblem> {
    if fields.len() < UEM_FIELDS {
        return Err(LineProblem::TooFewFields {
            expected: UEM_FIELDS,
            found: fields.len(),
        });
    }
    let start_s = parse_time("start", fields[2])?;
    let end_s = parse_time("end", fields[3])?;
    check_order(start_s, end_s)?;
    Ok(UemSegment {
        uri: fields[0].to_string(),
        start_s,
        end_s,
    })
}

/// Reads and parses a UEM file; errors name the file and line.
pub fn read_uem(path: &Path) -> Result<Vec<UemSegment>, RttmError> {
    let text = read_text(path)?;
    parse_uem(&text).map_err(|e| e.in_file(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_speaker_records_and_skips_the_rest() {
        let text = "\n;; comment\nSPKR-INFO a 1 <NA> <NA> <NA> unknown s1 <NA> <NA>\n\
                    SPEAKER a 1 1.5 2.25 <NA> <NA> s1 <NA> <NA>\n   \nSPEAKER b 1 0 1 <NA> <NA> s2\n";
        let turns = parse_rttm(text).unwrap();
        assert_eq!(
            turns,
            vec![
                Turn {
                    uri: "a".into(),
                    start_s: 1.5,
                    end_s: 3.75,
                    speaker: "s1".into()
                },
                Turn {
                    uri: "b".into(),
                    start_s: 0.0,
                    end_s: 1.0,
                    speaker: "s2".into()
                },
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let err =
            parse_rttm("SPEAKER a 1 0 1 <NA> <NA> s\nSPEAKER a 1 x 1 <NA> <NA> s\n").unwrap_err();
        assert!(matches!(
            err,
            RttmError::Line {
                line: 2,
                problem: LineProblem::BadNumber { field: "start", .. }
            }
        ));
        let err = parse_rttm("SPEAKER a 1 0 1\n").unwrap_err();
        assert!(matches!(
            err,
            RttmError::Line {
                line: 1,
                problem: LineProblem::TooFewFields { found: 5, .. }
            }
        ));
        let err = parse_rttm("SPEAKER a 1 2 -1 <NA> <NA> s\n").unwrap_err();
        assert!(matches!(
            err,
            RttmError::Line {
                line: 1,
                problem: LineProblem::NegativeDuration { .. }
            }
        ));
        let err = parse_rttm("SPEAKER a 1 NaN 1 <NA> <NA> s\n").unwrap_err();
        assert!(matches!(err, RttmError::Line { line: 1, .. }));
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.rttm");
        std::fs::write(&path, "SPEAKER a 1 0 1 <NA> <NA> s\n\nSPEAKER a 1\n").unwrap();
        let err = read_rttm(&path).unwrap_err();
        assert!(matches!(&err, RttmError::FileLine { line: 3, .. }));
        assert!(
            err.to_string()
                .starts_with(&format!("{}:3:", path.display()))
        );
        let missing = dir.path().join("missing.rttm");
        assert!(matches!(read_rttm(&missing), Err(RttmError::Read { .. })));
    }

    #[test]
    fn write_is_sorted_deterministic_and_round_trips() {
        let turns = vec![
            Turn {
                uri: "b".into(),
                start_s: 0.5,
                end_s: 1.0,
                speaker: "x".into(),
            },
            Turn {
                uri: "a".into(),
                start_s: 2.0,
                end_s: 3.1234,
                speaker: "two words".into(),
            },
            Turn {
                uri: "a".into(),
                start_s: 1.0,
                end_s: 2.0,
                speaker: "y".into(),
            },
        ];
        let text = write_rttm(&turns);
        assert_eq!(
            text,
            "SPEAKER a 1 1.000 1.000 <NA> <NA> y <NA> <NA>\n\
             SPEAKER a 1 2.000 1.123 <NA> <NA> two_words <NA> <NA>\n\
             SPEAKER b 1 0.500 0.500 <NA> <NA> x <NA> <NA>\n"
        );
        let mut reversed = turns.clone();
        reversed.reverse();
        assert_eq!(write_rttm(&reversed), text);
        let back = parse_rttm(&text).unwrap();
        assert_eq!(back.len(), 3);
        assert!((back[1].end_s - 3.123).abs() < 1e-9);
    }

    #[test]
    fn parses_uem() {
        let segments = parse_uem("dev00 NA 0.000 30.000\n\n;; x\ndev01 1 1 2\n").unwrap();
        assert_eq!(
            segments,
            vec![
                UemSegment {
                    uri: "dev00".into(),
                    start_s: 0.0,
                    end_s: 30.0
                },
                UemSegment {
                    uri: "dev01".into(),
                    start_s: 1.0,
                    end_s: 2.0
                },
            ]
        );
        let err = parse_uem("a 1 5 4\n").unwrap_err();
        assert!(matches!(
            err,
            RttmError::Line {
                line: 1,
                problem: LineProblem::NegativeDuration { .. }
            }
        ));
    }
}
