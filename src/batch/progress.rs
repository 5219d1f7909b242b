//! Showing a batch's progress: bars on a terminal (overall ETA from audio duration, one line per
//! running job with its stage), plain lines otherwise, nothing with `--quiet`, and optionally a
//! machine-readable log of JSON lines for scripts.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use super::{Event, Recording};

/// How the batch reports as it goes.
pub struct Progress {
    bars: Option<Bars>,
    quiet: bool,
    log: Option<Mutex<Box<dyn Write + Send>>>,
    started: Instant,
    /// Estimated audio seconds of each recording (header duration, or the mean of the others).
    estimates: HashMap<String, f64>,
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    jobs: Mutex<HashMap<String, ProgressBar>>,
}

impl Progress {
    /// `durations` are the header durations of the recordings (`None` when unknown); bars are
    /// drawn only when `bars` (a terminal) and not `quiet`.
    pub fn new(
        recordings: &[(Recording, Option<f64>)],
        bars: bool,
        quiet: bool,
        log: Option<Box<dyn Write + Send>>,
    ) -> Progress {
        let known: Vec<f64> = recordings.iter().filter_map(|(_, d)| *d).collect();
        let mean = if known.is_empty() {
            60.0
        } else {
            known.iter().sum::<f64>() / known.len() as f64
        };
        let estimates: HashMap<String, f64> = recordings
            .iter()
            .map(|(r, d)| (r.uri.clone(), d.unwrap_or(mean)))
            .collect();
        let total_ms = (estimates.values().sum::<f64>() * 1000.0) as u64;
        let bars = (bars && !quiet).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(total_ms.max(1)));
            overall.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:32.cyan/blue}] {percent:>3}% of the audio · ETA {eta} · {msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            overall.set_message(format!("0/{} files", recordings.len()));
            overall.enable_steady_tick(Duration::from_millis(500));
            Bars {
                multi,
                overall,
                jobs: Mutex::new(HashMap::new()),
            }
        });
        Progress {
            bars,
            quiet,
            log: log.map(Mutex::new),
            started: Instant::now(),
            estimates,
        }
    }

    /// Reacts to one event (called from the worker threads).
    pub fn event(&self, event: &Event<'_>) {
        match event {
            Event::Started { recording } => self.started_file(recording),
            Event::Stage {
                recording,
                stage,
                reused,
            } => {
                if let Some(b) = &self.bars
                    && let Some(bar) = lock(&b.jobs).get(&recording.uri)
                {
                    let how = if *reused { " (saved)" } else { "" };
                    bar.set_message(format!("{}{how}", stage.name()));
                }
                self.log(json!({
                    "event": "stage", "file": recording.path, "uri": recording.uri,
                    "stage": stage, "reused": reused,
                }));
            }
            Event::Finished { recording, result } => {
                let line = match &result.row.failure {
                    None if !result.row.warnings.is_empty() => format!(
                        "done    {} ({:.1} s of audio in {:.1} s{}) — warning: {}",
                        recording.path.display(),
                        result.row.audio_s.unwrap_or(0.0),
                        result.wall_s,
                        reused_note(&result.reused),
                        result.row.warnings
                    ),
                    None => format!(
                        "done    {} ({:.1} s of audio in {:.1} s{})",
                        recording.path.display(),
                        result.row.audio_s.unwrap_or(0.0),
                        result.wall_s,
                        reused_note(&result.reused)
                    ),
                    Some((stage, _)) => format!("FAILED  {} at {stage}", recording.path.display()),
                };
                if let Some(b) = &self.bars {
                    if let Some(bar) = lock(&b.jobs).remove(&recording.uri) {
                        bar.finish_and_clear();
                        b.multi.remove(&bar);
                    }
                    b.overall.inc((self.estimate(recording) * 1000.0) as u64);
                    let done = b.overall.message();
                    b.overall.set_message(bump_count(&done));
                    let _ = b.multi.println(&line);
                } else if !self.quiet {
                    println!("{line}");
                }
                let (status, stage, error) = match &result.row.failure {
                    None => ("ok", None, None),
                    Some((s, e)) => ("failed", Some(s.as_str()), Some(e.as_str())),
                };
                self.log(json!({
                    "event": "file_done", "file": recording.path, "uri": recording.uri,
                    "status": status, "stage": stage, "error": error,
                    "audio_s": result.row.audio_s, "wall_s": result.wall_s,
                    "warnings": result.row.warnings,
                    "reused": result.reused, "times": result.times,
                }));
            }
        }
    }

    fn started_file(&self, recording: &Recording) {
        if let Some(b) = &self.bars {
            let bar = b.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("  {spinner} {prefix}: {msg} ({elapsed})")
                    .expect("a valid template"),
            );
            bar.set_prefix(recording.uri.clone());
            bar.set_message("starting");
            bar.enable_steady_tick(Duration::from_millis(200));
            lock(&b.jobs).insert(recording.uri.clone(), bar);
        }
        self.log(json!({"event": "file_start", "file": recording.path, "uri": recording.uri}));
    }

    fn estimate(&self, recording: &Recording) -> f64 {
        self.estimates.get(&recording.uri).copied().unwrap_or(0.0)
    }

    /// Prints a line (above the bars on a terminal), unless quiet.
    pub fn println(&self, line: &str) {
        match &self.bars {
            Some(b) => {
                let _ = b.multi.println(line);
            }
            None if !self.quiet => println!("{line}"),
            None => {}
        }
    }

    /// Appends one record to the JSON-lines log (a `time` field is added: seconds since the
    /// batch started).
    pub fn log(&self, mut record: Value) {
        let Some(log) = &self.log else {
            return;
        };
        if let Value::Object(map) = &mut record {
            let t = self.started.elapsed().as_secs_f64();
            map.insert("t".to_string(), json!((t * 1000.0).round() / 1000.0));
            let unix = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            map.insert("unix_time".to_string(), json!(unix));
        }
        let mut w = lock(log);
        let _ = writeln!(w, "{record}");
        let _ = w.flush();
    }

    /// Removes the bars (before the summary is printed).
    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            b.overall.finish_and_clear();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn reused_note(reused: &[super::Stage]) -> String {
    if reused.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = reused.iter().map(|s| s.name()).collect();
    format!("; reused saved {}", names.join(", "))
}

/// `"3/8 files"` → `"4/8 files"`.
fn bump_count(message: &str) -> String {
    let parse = || {
        let (done, rest) = message.split_once('/')?;
        Some(format!("{}/{rest}", done.parse::<usize>().ok()? + 1))
    };
    parse().unwrap_or_else(|| message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_count_in_the_bar_message_increments() {
        assert_eq!(bump_count("3/8 files"), "4/8 files");
        assert_eq!(bump_count("odd"), "odd");
    }
}
