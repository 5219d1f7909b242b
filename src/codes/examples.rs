//! Code examples given by the researcher: `examples.tsv`, a header `uri start end code` and one
//! row per example, times in seconds on the recording's timeline. Each row picks the passage of
//! that recording that overlaps its time span most (ties: the earlier passage).

use std::path::{Path, PathBuf};

use crate::passages::{Passages, Role};

/// One row of `examples.tsv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeExample {
    /// The recording (a transcript's `uri`).
    pub uri: String,
    /// Start, milliseconds.
    pub start_ms: u64,
    /// End, milliseconds.
    pub end_ms: u64,
    /// The code's name.
    pub code: String,
    /// 1-based line in the file (for errors).
    pub line: usize,
}

/// A bad examples file or row: says which file, which line and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ExamplesError {
    /// The file could not be read.
    #[error("cannot read examples {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A row (or the header) that is wrong.
    #[error("examples {path}, line {line}: {problem}")]
    Row {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and what to do.
        problem: String,
    },
    /// A file with a header and no rows.
    #[error("examples {path}: no examples (one row per example: uri, start, end, code)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

const HEADER: [&str; 4] = ["uri", "start", "end", "code"];

/// Reads `examples.tsv`.
pub fn read_examples(path: &Path) -> Result<Vec<CodeExample>, ExamplesError> {
    let text = std::fs::read_to_string(path).map_err(|source| ExamplesError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_examples(&text, path)
}

/// Parses `examples.tsv` text; `path` only names the file in errors.
pub fn parse_examples(text: &str, path: &Path) -> Result<Vec<CodeExample>, ExamplesError> {
    let row_err = |line: usize, problem: String| ExamplesError::Row {
        path: path.to_path_buf(),
        line,
        problem,
    };
    let mut lines = text.lines().enumerate();
    let header: Vec<String> = lines
        .next()
        .map(|(_, h)| h.split('\t').map(|f| f.trim().to_lowercase()).collect())
        .unwrap_or_default();
    if header != HEADER {
        return Err(row_err(
            1,
            "the first line must be the tab-separated header `uri start end code`".into(),
        ));
    }
    let mut out = Vec::new();
    for (i, line) in lines {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').map(str::trim).collect();
        if f.len() != 4 {
            return Err(row_err(
                line_no,
                format!(
                    "expected 4 tab-separated fields (uri, start, end, code), found {}",
                    f.len()
                ),
            ));
        }
        let secs = |v: &str, what: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .map(|x| (x * 1000.0).round() as u64)
                .ok_or_else(|| {
                    row_err(
                        line_no,
                        format!("{what} `{v}` is not a time in seconds (e.g. 12.5)"),
                    )
                })
        };
        let (start_ms, end_ms) = (secs(f[1], "start")?, secs(f[2], "end")?);
        if end_ms <= start_ms {
            return Err(row_err(line_no, "end must be after start".into()));
        }
        if f[0].is_empty() || f[3].is_empty() {
            return Err(row_err(line_no, "uri and code must not be empty".into()));
        }
        out.push(CodeExample {
            uri: f[0].to_string(),
            start_ms,
            end_ms,
            code: f[3].to_string(),
            line: line_no,
        });
    }
    if out.is_empty() {
        return Err(ExamplesError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// The passage id of each example: the passage of its recording that overlaps it most, which
/// must be a content passage (not the moderator's, not back-channel talk).
pub fn resolve_examples(
    passages: &Passages,
    examples: &[CodeExample],
    path: &Path,
) -> Result<Vec<usize>, ExamplesError> {
    examples
        .iter()
        .map(|e| {
            let row_err = |problem: String| ExamplesError::Row {
                path: path.to_path_buf(),
                line: e.line,
                problem,
            };
            let mut of_uri = passages.passages.iter().filter(|p| p.uri == e.uri).peekable();
            if of_uri.peek().is_none() {
                return Err(row_err(format!(
                    "no transcript `{}` among the ones given (the uri is the transcript's name)",
                    e.uri
                )));
            }
            let best = of_uri
                .map(|p| {
                    let overlap = p.end_ms.min(e.end_ms).saturating_sub(p.start_ms.max(e.start_ms));
                    (p, overlap)
                })
                .filter(|(_, o)| *o > 0)
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.id.cmp(&a.0.id)));
            let Some((p, _)) = best else {
                return Err(row_err(format!(
                    "no passage of `{}` overlaps {:.3}–{:.3} s",
                    e.uri,
                    e.start_ms as f64 / 1000.0,
                    e.end_ms as f64 / 1000.0
                )));
            };
            if p.role != Role::Content {
                return Err(row_err(format!(
                    "the passage at {:.3}–{:.3} s is {} talk, not content: give an example from a participant's answer",
                    p.start_ms as f64 / 1000.0,
                    p.end_ms as f64 / 1000.0,
                    match p.role {
                        Role::Moderator => "the moderator's",
                        _ => "back-channel",
                    }
                )));
            }
            Ok(p.id)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_and_bad_rows_name_their_line() {
        let p = Path::new("ex.tsv");
        let ok = parse_examples("uri\tstart\tend\tcode\ng\t13.3\t19.8\tprecio\n\n", p).unwrap();
        assert_eq!(
            ok,
            [CodeExample {
                uri: "g".into(),
                start_ms: 13300,
                end_ms: 19800,
                code: "precio".into(),
                line: 2
            }]
        );
        let err = |text: &str| parse_examples(text, p).unwrap_err().to_string();
        assert!(err("uri,start,end,code\n").contains("line 1: the first line"));
        assert!(
            err("uri\tstart\tend\tcode\ng\t1\t2\tprecio\ng\tx\t2\tprecio\n")
                .contains("examples ex.tsv, line 3: start `x` is not a time")
        );
        assert!(
            err("uri\tstart\tend\tcode\ng\t5\t2\tprecio\n")
                .contains("line 2: end must be after start")
        );
        assert!(err("uri\tstart\tend\tcode\ng\t1\t2\n").contains("line 2: expected 4"));
        assert!(err("uri\tstart\tend\tcode\n").contains("no examples"));
    }
}
