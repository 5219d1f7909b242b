//! The real binary in a temp folder: outputs, bad input, exit codes, atomic writes.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{corpus, models_dir, one_at_a_time, project, qualscribe_bin};

fn qualscribe(args: &[&str], out_dir: &Path) -> Output {
    Command::new(qualscribe_bin())
        .args(args)
        .arg("-o")
        .arg(out_dir)
        .env("QUALSCRIBE_MODELS", models_dir())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Files left in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Runs `transcribe` on one bad input and returns the one error line about it.
fn error_for(input: &Path) -> String {
    let out = tempfile::tempdir().unwrap();
    let o = qualscribe(
        &["transcribe", "--model", "tiny.en", input.to_str().unwrap()],
        out.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "bad input exits 1: {}",
        stderr(&o)
    );
    let line = stderr(&o).lines().next().unwrap_or_default().to_string();
    assert!(
        line.contains(&input.display().to_string()),
        "error names the file: {line}"
    );
    assert!(!line.contains("panicked"), "{line}");
    assert!(
        files_in(out.path()).is_empty(),
        "no output for a bad file: {:?}",
        files_in(out.path())
    );
    line
}

fn temp_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn run_writes_every_format_named_after_the_input() {
    let _one = one_at_a_time();
    let out = tempfile::tempdir().unwrap();
    let sample = project("audio_samples/fleurs-en-000.ogg");
    let o = qualscribe(
        &[
            "run",
            "--model",
            "tiny.en",
            "--language",
            "en",
            sample.to_str().unwrap(),
        ],
        out.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        files_in(out.path()),
        [
            "analysis.json",
            "codes.csv",
            "codes.md",
            "fleurs-en-000.diarization.json",
            "fleurs-en-000.docx",
            "fleurs-en-000.md",
            "fleurs-en-000.rttm",
            "fleurs-en-000.srt",
            "fleurs-en-000.transcript.json",
            "fleurs-en-000.txt",
            "fleurs-en-000.vtt",
            // One sentence is too little for a theme: the report says so, and no empty
            // REFI-QDA codebook is written.
            "passages.tsv"
        ]
    );
    let json = std::fs::read_to_string(out.path().join("fleurs-en-000.transcript.json")).unwrap();
    let t: qualscribe::transcript::Transcript = serde_json::from_str(&json).unwrap();
    assert_eq!(t.uri, "fleurs-en-000");
    assert!(
        t.text().to_lowercase().contains("communication"),
        "{}",
        t.text()
    );
    let srt = std::fs::read_to_string(out.path().join("fleurs-en-000.srt")).unwrap();
    assert!(srt.starts_with("1\n"));
    let vtt = std::fs::read_to_string(out.path().join("fleurs-en-000.vtt")).unwrap();
    assert!(vtt.starts_with("WEBVTT"));
    // One reader, one speaker, and every segment says who.
    let rttm = std::fs::read_to_string(out.path().join("fleurs-en-000.rttm")).unwrap();
    let speakers: std::collections::BTreeSet<&str> = rttm
        .lines()
        .filter_map(|l| l.split_whitespace().nth(7))
        .collect();
    assert_eq!(speakers.len(), 1, "{rttm}");
    assert!(t.segments.iter().all(|s| s.speaker.is_some()));
}

#[test]
fn one_bad_file_does_not_stop_the_others() {
    let _one = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let bad = temp_file(
        tmp.path(),
        "notes.wav",
        b"these are my interview notes, not audio",
    );
    let good = corpus("fleurs/fleurs-en-002.ogg");
    let out = tmp.path().join("out");
    let o = qualscribe(
        &[
            "transcribe",
            "--model",
            "tiny.en",
            "--format",
            "txt,json",
            bad.to_str().unwrap(),
            good.to_str().unwrap(),
        ],
        &out,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("notes.wav"));
    assert_eq!(
        files_in(&out),
        ["fleurs-en-002.transcript.json", "fleurs-en-002.txt"]
    );
}

#[test]
fn missing_file() {
    let line = error_for(Path::new("/nonexistent/interview.wav"));
    assert!(
        line.to_lowercase().contains("not found") || line.contains("No such file"),
        "{line}"
    );
}

#[test]
fn directory_instead_of_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("recordings.wav");
    std::fs::create_dir(&dir).unwrap();
    let line = error_for(&dir);
    assert!(
        line.contains("directory") || line.contains("folder"),
        "{line}"
    );
}

#[test]
fn empty_file() {
    let tmp = tempfile::tempdir().unwrap();
    let line = error_for(&temp_file(tmp.path(), "empty.wav", b""));
    assert!(line.contains("empty"), "{line}");
}

#[test]
fn text_file_with_an_audio_extension() {
    let tmp = tempfile::tempdir().unwrap();
    let line = error_for(&temp_file(
        tmp.path(),
        "fake.mp3",
        &b"not audio at all\n".repeat(200),
    ));
    assert!(line.contains("not a recognised audio file"), "{line}");
}

#[test]
fn truncated_file() {
    let tmp = tempfile::tempdir().unwrap();
    let full = std::fs::read(corpus("fleurs/fleurs-en-000.ogg")).unwrap();
    let line = error_for(&temp_file(tmp.path(), "cut.ogg", &full[..600]));
    assert!(!line.is_empty());
}

#[test]
fn zero_length_audio() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("zero.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    hound::WavWriter::create(&p, spec)
        .unwrap()
        .finalize()
        .unwrap();
    let line = error_for(&p);
    assert!(
        line.contains("no audio") || line.contains("zero") || line.contains("0 samples"),
        "{line}"
    );
}

#[test]
fn unsupported_codec() {
    // A WAV whose format tag (0x2000, Dolby AC-3) no decoder here handles.
    let mut wav = Vec::new();
    let data = vec![0u8; 4000];
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&0x2000u16.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&16_000u32.to_le_bytes());
    wav.extend_from_slice(&32_000u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    let tmp = tempfile::tempdir().unwrap();
    let line = error_for(&temp_file(tmp.path(), "ac3.wav", &wav));
    assert!(
        line.contains("unsupported") || line.contains("not a recognised"),
        "{line}"
    );
}

#[test]
fn unwritable_output_folder_fails_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let blocker = temp_file(tmp.path(), "a-file", b"x");
    let o = qualscribe(
        &[
            "transcribe",
            corpus("fleurs/fleurs-en-000.ogg").to_str().unwrap(),
        ],
        &blocker.join("out"),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("a-file/out") && err.contains("-o"), "{err}");
}

#[test]
fn model_not_installed_says_how_to_install_it() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(qualscribe_bin())
        .args([
            "transcribe",
            corpus("fleurs/fleurs-en-000.ogg").to_str().unwrap(),
            "-o",
        ])
        .arg(tmp.path().join("out"))
        .arg("--models-dir")
        .arg(tmp.path().join("no-models"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("qualscribe models fetch"), "{err}");
}

#[test]
fn fetch_without_network_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(qualscribe_bin())
        .args(["models", "fetch", "--model", "vad", "--models-dir"])
        .arg(tmp.path())
        // A closed local port stands in for "no network".
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_RETRIES", "0")
        .env("PIP_TIMEOUT", "2")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    let last = err.lines().last().unwrap_or_default();
    assert!(last.contains("silero-vad"), "{err}");
    assert!(
        files_in(tmp.path()).iter().all(|f| !f.ends_with(".onnx")),
        "nothing half-installed"
    );
}

#[test]
fn english_only_model_refuses_another_language() {
    let tmp = tempfile::tempdir().unwrap();
    let o = qualscribe(
        &[
            "transcribe",
            "--model",
            "tiny.en",
            "--language",
            "es",
            corpus("fleurs/fleurs-es-000.ogg").to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("English-only"), "{}", stderr(&o));
}

#[test]
fn eval_der_prints_the_pyannote_numbers() {
    // Expected TOTAL row from tests/fixtures/der/expected.tsv (pyannote.metrics 4.2.0):
    // ami_system with collar 0.25 and the AMI UEM.
    let fixtures = project("tests/fixtures/der");
    let expected = std::fs::read_to_string(fixtures.join("expected.tsv")).unwrap();
    let row: Vec<f64> = expected
        .lines()
        .find(|l| l.starts_with("ami_system_c0.25\tTOTAL"))
        .unwrap()
        .split('\t')
        .skip(2)
        .map(|v| v.parse().unwrap())
        .collect();
    let o = Command::new(qualscribe_bin())
        .args(["eval", "der", "--collar", "0.25", "--ref"])
        .arg(fixtures.join("ami.rttm"))
        .arg("--hyp")
        .arg(fixtures.join("ami_system.rttm"))
        .arg("--uem")
        .arg(fixtures.join("ami.uem"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8(o.stdout).unwrap();
    let total: Vec<f64> = stdout
        .lines()
        .find(|l| l.starts_with("TOTAL"))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    for (got, want) in total[..4].iter().zip(&row[..4]) {
        assert!((got - want).abs() < 0.001, "{stdout}");
    }
    assert!((total[4] - 100.0 * row[4]).abs() < 0.01, "{stdout}");
}

#[test]
fn eval_der_names_a_bad_rttm_line() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = temp_file(
        tmp.path(),
        "bad.rttm",
        b"SPEAKER x 1 zero 1.0 <NA> <NA> A <NA> <NA>\n",
    );
    let o = Command::new(qualscribe_bin())
        .args(["eval", "der", "--ref"])
        .arg(&bad)
        .arg("--hyp")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("bad.rttm:1:") && err.contains("zero"), "{err}");
}

#[test]
fn run_finds_speakers_and_diarize_renames_without_transcribing_again() {
    let _one = one_at_a_time();
    let out = tempfile::tempdir().unwrap();
    let sample = corpus("pyannote_sample/sample.wav");
    let o = qualscribe(
        &[
            "run",
            "--model",
            "tiny.en",
            "--language",
            "en",
            "--format",
            "txt,srt,json",
            sample.to_str().unwrap(),
        ],
        out.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        files_in(out.path()),
        [
            "analysis.json",
            "codebook.qdc",
            "codes.csv",
            "codes.md",
            "passages.tsv",
            "project.qdpx",
            "sample.diarization.json",
            "sample.rttm",
            "sample.srt",
            "sample.transcript.json",
            "sample.txt"
        ]
    );
    let rttm = std::fs::read_to_string(out.path().join("sample.rttm")).unwrap();
    let hyp = qualscribe::eval::rttm::parse_rttm(&rttm).unwrap();
    let speakers: std::collections::BTreeSet<&str> =
        hyp.iter().map(|t| t.speaker.as_str()).collect();
    assert_eq!(speakers.len(), 2, "{rttm}");
    assert!(hyp.iter().all(|t| t.uri == "sample"));

    // Rename: reuses the saved speakers, every export shows the name.
    let transcript = out.path().join("sample.transcript.json");
    let o = Command::new(qualscribe_bin())
        .arg("diarize")
        .arg(&transcript)
        .args(["--rename", "SPEAKER_00=Ana", "--format", "txt,srt,json"])
        .env("QUALSCRIBE_MODELS", models_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let txt = std::fs::read_to_string(out.path().join("sample.txt")).unwrap();
    assert!(txt.contains("Ana:"), "{txt}");
    assert!(
        std::fs::read_to_string(out.path().join("sample.srt"))
            .unwrap()
            .contains("Ana: ")
    );
    assert!(
        std::fs::read_to_string(out.path().join("sample.rttm"))
            .unwrap()
            .contains(" Ana ")
    );
    let saved = std::fs::read_to_string(out.path().join("sample.diarization.json")).unwrap();
    assert!(saved.contains("\"name\": \"Ana\""));

    // An unknown speaker id is named in the error.
    let o = Command::new(qualscribe_bin())
        .arg("diarize")
        .arg(&transcript)
        .args(["--rename", "SPEAKER_09=Luis"])
        .env("QUALSCRIBE_MODELS", models_dir())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("SPEAKER_09"), "{}", stderr(&o));

    // The wrong recording is refused rather than diarized.
    let o = Command::new(qualscribe_bin())
        .arg("diarize")
        .arg(&transcript)
        .args(["--recluster", "--audio"])
        .arg(corpus("ami_clips/dev00.wav"))
        .env("QUALSCRIBE_MODELS", models_dir())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("SHA-256 differs"), "{}", stderr(&o));
}

#[test]
fn impossible_speaker_counts_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = corpus("fleurs/fleurs-en-000.ogg");
    for args in [
        ["--speakers", "0", "", ""],
        ["--min-speakers", "5", "--max-speakers", "3"],
    ] {
        let mut cmd: Vec<&str> = vec!["run", "--model", "tiny.en"];
        cmd.extend(args.iter().filter(|a| !a.is_empty()));
        cmd.push(clip.to_str().unwrap());
        let o = qualscribe(&cmd, tmp.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    }
}

/// The reference turns of a corpus recording as a saved transcript file.
fn reference_transcript(dir: &Path, json: &str) -> PathBuf {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(corpus(json)).unwrap()).unwrap();
    let turns: Vec<qualscribe::passages::TextTurn> = v["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| qualscribe::passages::TextTurn {
            speaker: t["speaker"].as_str().unwrap().to_string(),
            start_ms: (t["start"].as_f64().unwrap() * 1000.0) as u64,
            end_ms: (t["end"].as_f64().unwrap() * 1000.0) as u64,
            text: t["text"].as_str().unwrap().to_string(),
        })
        .collect();
    let uri = v["uri"].as_str().unwrap();
    let t = qualscribe::passages::transcript_from_turns(uri, "es", &turns);
    qualscribe::export::write_all(&t, dir, &[qualscribe::export::Format::Json]).unwrap();
    dir.join(format!("{uri}.transcript.json"))
}

fn xmllint(schema: &str, file: &Path) {
    let o = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/refi-qda")
                .join(schema),
        )
        .arg(file)
        .output()
        .expect("xmllint (libxml2-utils) is installed by scripts/env.sh");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn themes_over_an_archive_write_reports_and_valid_refi_qda() {
    let _one = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let inputs: Vec<PathBuf> = (1..=7)
        .map(|i| {
            reference_transcript(
                tmp.path(),
                &format!("entrevistas_apc/entrevista_exp{i}.json"),
            )
        })
        .collect();
    let out = tmp.path().join("out");
    let o = Command::new(qualscribe_bin())
        .arg("themes")
        .args(&inputs)
        .arg("-o")
        .arg(&out)
        .env("QUALSCRIBE_MODELS", models_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        files_in(&out),
        [
            "analysis.json",
            "codebook.qdc",
            "codes.csv",
            "codes.md",
            "passages.tsv",
            "project.qdpx"
        ]
    );
    xmllint("Codebook.xsd", &out.join("codebook.qdc"));
    let qde = tmp.path().join("project.qde");
    let mut zip =
        zip::ZipArchive::new(std::fs::File::open(out.join("project.qdpx")).unwrap()).unwrap();
    std::io::copy(
        &mut zip.by_name("project.qde").unwrap(),
        &mut std::fs::File::create(&qde).unwrap(),
    )
    .unwrap();
    xmllint("Project.xsd", &qde);
    // Every coded selection reads back as the exact text of its passage.
    let project = qualscribe::export::qda::read_qdpx(&out.join("project.qdpx")).unwrap();
    assert_eq!(project.sources.len(), 7);
    assert!(!project.codings.is_empty());
    let tsv = std::fs::read_to_string(out.join("passages.tsv")).unwrap();
    for c in &project.codings {
        let source = project
            .sources
            .iter()
            .find(|s| s.guid == c.source_guid)
            .unwrap();
        let text: String = source
            .text
            .chars()
            .skip(c.start)
            .take(c.end - c.start)
            .collect();
        assert!(tsv.contains(&text), "coded text is a passage: {text}");
    }
    // The evaluation command scores the output against the human labels of the archive.
    let o = Command::new(qualscribe_bin())
        .args(["eval", "themes", "--ref"])
        .arg(corpus("entrevistas_apc/themes.tsv"))
        .arg("--hyp")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let report = String::from_utf8(o.stdout).unwrap();
    let value = |key: &str| -> f64 {
        let line = report.lines().find(|l| l.starts_with(key)).unwrap();
        line[key.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(value("human themes "), 3.0, "{report}");
    assert!(value("labelled passages") >= 15.0, "{report}");
    let ari = value("adjusted Rand index");
    assert!((-1.0..=1.0).contains(&ari), "{report}");

    // Determinism: a second run writes identical files.
    let out2 = tmp.path().join("out2");
    let o = Command::new(qualscribe_bin())
        .arg("themes")
        .args(&inputs)
        .arg("-o")
        .arg(&out2)
        .env("QUALSCRIBE_MODELS", models_dir())
        .output()
        .unwrap();
    assert!(o.status.success());
    for f in files_in(&out) {
        assert_eq!(
            std::fs::read(out.join(&f)).unwrap(),
            std::fs::read(out2.join(&f)).unwrap(),
            "{f}"
        );
    }
}

/// Issue 14, repros 8 and 9 through `transcribe`: a FIFO and a 0x7FFFFFFF sample rate each get
/// a one-line error (no hang, no growing memory) and no output.
#[cfg(unix)]
#[test]
fn fifo_and_impossible_sample_rate_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("x.wav");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    assert!(error_for(&fifo).contains("not a regular file"));
    let mut wav = std::fs::read(corpus("ami_clips/dev00.wav")).unwrap();
    wav.truncate(256 * 1024);
    wav[24..28].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    let huge = temp_file(tmp.path(), "rate_huge.wav", &wav);
    assert!(error_for(&huge).contains("invalid sample rate (2147483647 Hz)"));
}

/// Issue 14, repro 3 through `transcribe`: a cut-off recording is transcribed as far as it goes
/// with a one-line warning and the decode report in its JSON; `--strict` makes it a failure
/// with nothing written.
#[test]
fn damaged_recording_warns_and_strict_refuses_it() {
    let _one = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let full = std::fs::read(project("audio_samples/fleurs-en-000.ogg")).unwrap();
    let cut = temp_file(tmp.path(), "cut.ogg", &full[..full.len() / 2]);
    let out = tempfile::tempdir().unwrap();
    let args = ["transcribe", "--model", "tiny.en", cut.to_str().unwrap()];
    let o = qualscribe(&args, out.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let warning = stderr(&o)
        .lines()
        .find(|l| l.contains("warning"))
        .unwrap_or_default()
        .to_string();
    assert!(
        warning.contains("cut.ogg") && warning.contains("ended early"),
        "{}",
        stderr(&o)
    );
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("cut.transcript.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["source"]["decode"]["ended_early"], true, "{json}");

    let strict_out = tempfile::tempdir().unwrap();
    let mut strict = args.to_vec();
    strict.push("--strict");
    let o = qualscribe(&strict, strict_out.path());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--strict"), "{}", stderr(&o));
    assert!(files_in(strict_out.path()).is_empty());
}

/// Code by example from the command line: one coded passage per human theme of the focus
/// group; every other passage gets a code and a confidence, or stays unassigned; bad rows of
/// the examples file are refused with the file and line named.
#[test]
fn themes_code_by_example_from_the_command_line() {
    let _one = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let transcript = reference_transcript(tmp.path(), "grupo_focal_reparto/grupo_focal_01.json");
    let labels =
        qualscribe::eval::themes::read_theme_labels(&corpus("grupo_focal_reparto/themes.tsv"))
            .unwrap();
    // The first coded turn of each theme is its example.
    let mut examples = String::from("uri\tstart\tend\tcode\n");
    let mut given: Vec<&str> = Vec::new();
    for l in &labels {
        if !given.contains(&l.theme.as_str()) {
            given.push(&l.theme);
            examples.push_str(&format!(
                "{}\t{:.3}\t{:.3}\t{}\n",
                l.uri,
                l.start_ms as f64 / 1000.0,
                l.end_ms as f64 / 1000.0,
                l.theme
            ));
        }
    }
    assert_eq!(given.len(), 5);
    let file = tmp.path().join("examples.tsv");
    std::fs::write(&file, &examples).unwrap();
    let out = tmp.path().join("out");
    let run = |examples: &Path, out: &Path| {
        Command::new(qualscribe_bin())
            .arg("themes")
            .arg(&transcript)
            .arg("--examples")
            .arg(examples)
            .arg("-o")
            .arg(out)
            .env("QUALSCRIBE_MODELS", models_dir())
            .output()
            .unwrap()
    };
    let o = run(&file, &out);
    assert!(o.status.success(), "{}", stderr(&o));

    let tsv = std::fs::read_to_string(out.join("passages.tsv")).unwrap();
    let mut lines = tsv.lines();
    assert_eq!(
        lines.next(),
        Some("uri\tstart\tend\tspeaker\ttheme\tcode\tconfidence\ttext")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    let (passages, _) =
        qualscribe::eval::themes::read_passages_tsv(&out.join("passages.tsv")).unwrap();
    let human = qualscribe::eval::themes::label_passages(&passages, &labels);
    let mut theme_of_code = std::collections::HashMap::new();
    let (mut examples_seen, mut suggested, mut right, mut unassigned) = (0, 0, 0, 0);
    for (row, h) in rows.iter().zip(&human) {
        let (theme, code, confidence) = (row[4], row[5], row[6]);
        if theme == "moderator" {
            assert_eq!(confidence, "", "{row:?}");
            continue;
        }
        let c: f64 = confidence.parse().unwrap_or_else(|_| panic!("{row:?}"));
        assert!((0.0..=1.0).contains(&c), "{row:?}");
        if theme == "unassigned" {
            assert!(c < 0.7, "below the threshold: {row:?}");
            unassigned += 1;
            continue;
        }
        // The theme column holds the code's theme: one value per code.
        assert_eq!(
            *theme_of_code.entry(code).or_insert(theme),
            theme,
            "{row:?}"
        );
        if confidence == "1.000" && given.contains(&code) && h.as_deref() == Some(code) {
            examples_seen += 1;
        } else {
            suggested += 1;
            right += usize::from(h.as_deref() == Some(code));
        }
    }
    eprintln!(
        "{examples_seen} examples, {suggested} suggested ({right} right), {unassigned} unassigned"
    );
    assert_eq!(examples_seen, 5, "{tsv}");
    assert_eq!(theme_of_code.len(), 5);
    // Measured: 1 suggested above the threshold (right), 10 unassigned with their confidence.
    assert!(suggested >= 1, "{tsv}");
    assert_eq!(right, suggested, "{tsv}");
    assert_eq!(examples_seen + suggested + unassigned, 16, "{tsv}");
    let md = std::fs::read_to_string(out.join("codes.md")).unwrap();
    assert!(md.contains("Examples (1):"), "{md}");
    assert!(md.contains("Suggested passages ("), "{md}");

    // `--example-method balanced` (prototypes re-estimated from every passage, codes kept of
    // similar size) on the same examples: measured 3 suggested above the threshold, all right
    // (the default centroid: 1), so the flag reaches the scoring.
    let balanced_out = tmp.path().join("balanced");
    let o = Command::new(qualscribe_bin())
        .arg("themes")
        .arg(&transcript)
        .arg("--examples")
        .arg(&file)
        .args(["--example-method", "balanced", "-o"])
        .arg(&balanced_out)
        .env("QUALSCRIBE_MODELS", models_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let balanced = std::fs::read_to_string(balanced_out.join("passages.tsv")).unwrap();
    // Assigned = the 5 examples and the suggestions (a suggestion can print 1.000 too).
    let (mut assigned, mut assigned_right) = (0, 0);
    for (line, h) in balanced.lines().skip(1).zip(&human) {
        let row: Vec<&str> = line.split('\t').collect();
        if !matches!(row[4], "moderator" | "unassigned") {
            assigned += 1;
            assigned_right += usize::from(h.as_deref() == Some(row[5]));
        }
    }
    eprintln!(
        "balanced: {} suggested, {assigned_right} of {assigned} assigned right",
        assigned - 5
    );
    assert!(assigned - 5 > suggested, "{balanced}");
    assert_eq!(assigned_right, assigned, "{balanced}");
    let o = Command::new(qualscribe_bin())
        .arg("themes")
        .arg(&transcript)
        .args(["--example-method", "nearest"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("centroid") && stderr(&o).contains("balanced"),
        "{}",
        stderr(&o)
    );

    // Bad rows: the file and line are named, nothing is written.
    let bad = tmp.path().join("bad.tsv");
    for (text, expect) in [
        (
            "uri\tstart\tend\tcode\ngrupo_focal_01\t13.3\t19.8\tprecio\ngrupo_focal_01\tx\t19.8\tprecio\n",
            "line 3: start `x` is not a time",
        ),
        (
            "uri\tstart\tend\tcode\ngrupo_focal_01\t1.0\t5.0\tprecio\n",
            "line 2: the passage at 0.500–13.036 s is the moderator's talk",
        ),
        (
            "uri\tstart\tend\tcode\notra\t1.0\t5.0\tprecio\n",
            "line 2: no transcript `otra`",
        ),
        ("uri,start,end,code\n", "line 1: the first line must be"),
    ] {
        std::fs::write(&bad, text).unwrap();
        let o = run(&bad, &tmp.path().join("bad-out"));
        assert!(!o.status.success());
        let e = stderr(&o);
        assert!(e.contains("bad.tsv") && e.contains(expect), "{e}");
        assert!(!tmp.path().join("bad-out").join("passages.tsv").exists());
    }

    // The evaluation command scores coding by example from the transcripts.
    let o = Command::new(qualscribe_bin())
        .args(["eval", "themes", "--ref"])
        .arg(corpus("grupo_focal_reparto/themes.tsv"))
        .arg("--transcripts")
        .arg(&transcript)
        .env("QUALSCRIBE_MODELS", models_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let report = String::from_utf8(o.stdout).unwrap();
    eprintln!("{report}");
    assert!(report.contains("code by example"), "{report}");
    let k1 = report
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap();
    let accuracy: f64 = k1
        .split_whitespace()
        .nth(1)
        .unwrap()
        .split('±')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(accuracy >= 0.7, "{report}");
    // Leave one out (every other labelled passage an example): measured 15 of 16 right; a
    // passage counted as its own example would make it 16 of 16.
    let all: f64 = report
        .lines()
        .find(|l| l.trim_start().starts_with("all "))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.85..1.0).contains(&all), "{report}");
    assert!(
        report.contains("inductive themes on 40 subsets"),
        "{report}"
    );
    // Labels of another archive (no passage of this transcript is labelled): one line that
    // names the labels file and what to check, not a report of zeros.
    let o = Command::new(qualscribe_bin())
        .args(["eval", "themes", "--ref"])
        .arg(corpus("entrevistas_apc/themes.tsv"))
        .arg("--transcripts")
        .arg(&transcript)
        .env("QUALSCRIBE_MODELS", models_dir())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("entrevistas_apc/themes.tsv") && e.contains("0 of the transcripts'"),
        "{e}"
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("code by example"));
}

/// `--text-model e5+use`: the codebook's codes assigned with both models fused; same files,
/// same `passages.tsv` columns, the fused threshold (0.75) between assigned and unassigned;
/// with neither model installed, one line names both `models fetch` commands.
#[test]
fn themes_with_e5_and_use_fused() {
    let _one = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let transcript = reference_transcript(tmp.path(), "grupo_focal_reparto/grupo_focal_01.json");
    let codebook = project("tests/fixtures/themes/reparto_codebook.csv");
    let args = |dir: &Path| {
        let mut c = Command::new(qualscribe_bin());
        c.arg("themes")
            .arg(&transcript)
            .arg("--codebook")
            .arg(&codebook)
            .args(["--text-model", "e5+use", "-o"])
            .arg(tmp.path().join("out"))
            .env("QUALSCRIBE_MODELS", dir);
        c.output().unwrap()
    };
    let empty = tmp.path().join("no-models");
    std::fs::create_dir(&empty).unwrap();
    let o = args(&empty);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("qualscribe models fetch --model e5")
            && err.contains("qualscribe models fetch --model use"),
        "{err}"
    );
    assert!(files_in(&tmp.path().join("out")).is_empty());

    let o = args(&models_dir());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = tmp.path().join("out");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("analysis.json")).unwrap()).unwrap();
    assert_eq!(json["text_model"], "e5+use");
    let tsv = std::fs::read_to_string(out.join("passages.tsv")).unwrap();
    let mut lines = tsv.lines();
    assert_eq!(
        lines.next(),
        Some("uri\tstart\tend\tspeaker\ttheme\tcode\tconfidence\ttext")
    );
    let (mut assigned, mut unassigned) = (0, 0);
    for row in lines.map(|l| l.split('\t').collect::<Vec<_>>()) {
        if row[4] == "moderator" {
            continue;
        }
        let c: f64 = row[6].parse().unwrap_or_else(|_| panic!("{row:?}"));
        if row[4] == "unassigned" {
            assert!(c < 0.75, "{row:?}");
            unassigned += 1;
        } else {
            assert!(c >= 0.75, "{row:?}");
            assigned += 1;
        }
    }
    eprintln!("{assigned} assigned, {unassigned} unassigned");
    assert!(assigned >= 4, "{tsv}");

    // analysis.json keeps each code's text as a vector of the passages' space (for the review
    // page): closer to the passages assigned to its code than to the others.
    let a: qualscribe::export::analysis_json::AnalysisArtifact =
        serde_json::from_value(json).unwrap();
    let texts = a.code_text_vectors.as_ref().unwrap().unpack().unwrap();
    let passages = a.vectors.as_ref().unwrap().unpack().unwrap();
    assert_eq!(texts[0].1.len(), passages[0].1.len());
    let (mut closer, mut with_members) = (0, 0);
    for code in &a.codebook.codes {
        let text = qualscribe::themes::code_text(&code.label, &code.definition).unwrap();
        let v = &texts.iter().find(|t| t.0 == text).unwrap().1;
        let members = &a.themes[code.theme].members;
        let mean = |own: bool| {
            let dots: Vec<f32> = passages
                .iter()
                .filter(|(id, _)| members.contains(id) == own)
                .map(|(_, p)| p.iter().zip(v).map(|(x, y)| x * y).sum())
                .collect();
            dots.iter().sum::<f32>() / dots.len().max(1) as f32
        };
        if !members.is_empty() {
            with_members += 1;
            closer += usize::from(mean(true) > mean(false));
        }
    }
    eprintln!("{closer} of {with_members} code texts closer to their own passages");
    assert!(
        with_members >= 4 && closer == with_members,
        "{closer} of {with_members}"
    );
}
