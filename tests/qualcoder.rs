//! Our REFI-QDA files opened by a real client: QualCoder's own importer, run headless by
//! `../shared/clients/qualcoder/harness.py` (QualCoder's unmodified source; README there), on
//! what the real binary writes. Schema-valid is not the same as "opens": QualCoder crashed on
//! projects that passed xmllint (no dates on `<Transcript>` and `<Note>`).
//!
//! Asserted on QualCoder's resulting database: no exception, every code, every coding with
//! exactly the text qualscribe coded, every speaker as a case, the recordings imported as audio
//! files of the project (embedded in the `.qdpx`, so the project works on another machine).
//!
//! The reviewed Word transcripts are opened with python-docx (the library Word-processing tools
//! in Python use) and must read exactly as the transcripts: title, details, one paragraph per
//! speaker turn with the name in bold.
//!
//! The Python packages QualCoder needs are installed by `scripts/test.sh` (`need_clients_venv`)
//! into the cache; `QUALSCRIBE_CLIENTS_PYTHON` names that interpreter.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{clients_python, corpus, project, qualscribe_bin};

/// Runs QualCoder's importer on `qdpx` (and `qdc`, `passages`) and returns its `result.json`.
fn qualcoder_import(qdpx: &Path, qdc: Option<&Path>, passages: Option<&Path>) -> Value {
    let work = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(clients_python());
    cmd.arg(corpus("../clients/qualcoder/harness.py"))
        .arg("--qdpx")
        .arg(qdpx)
        .env("QC_WORK", work.path())
        .env("QT_QPA_PLATFORM", "offscreen");
    if let Some(qdc) = qdc {
        cmd.arg("--qdc").arg(qdc);
    }
    if let Some(p) = passages {
        cmd.arg("--passages").arg(p);
    }
    let out = cmd.output().expect("the harness runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let result = std::fs::read_to_string(work.path().join("result.json"))
        .unwrap_or_else(|e| panic!("no result.json ({e}); harness output:\n{log}"));
    serde_json::from_str(&result).unwrap()
}

/// `qualscribe themes` (real models: e5) over three saved interview transcripts, copied into
/// `out` as a `run` would leave them (the recordings named by absolute path).
fn analyse_interviews(out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    let mut transcripts = Vec::new();
    for i in 1..=3 {
        let name = format!("entrevista_exp{i}.transcript.json");
        let text =
            std::fs::read_to_string(project(&format!("tests/fixtures/review/{name}"))).unwrap();
        let mut t: Value = serde_json::from_str(&text).unwrap();
        let wav = corpus(&format!("entrevistas_apc/entrevista_exp{i}.wav"));
        t["source"]["path"] = Value::from(wav.canonicalize().unwrap().to_str().unwrap());
        let path = out.join(name);
        std::fs::write(&path, serde_json::to_string_pretty(&t).unwrap()).unwrap();
        transcripts.push(path);
    }
    let status = Command::new(qualscribe_bin())
        .arg("themes")
        .args(&transcripts)
        .arg("-o")
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success(), "qualscribe themes failed");
}

fn as_array<'a>(v: &'a Value, what: &str) -> &'a Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what} is not a list: {v}"))
}

/// What every QualCoder import of one of our projects must show.
fn assert_imported_whole(import: &Value, expect: &Value, label: &str) {
    assert!(
        import["exception"].is_null(),
        "{label}: QualCoder's import raised:\n{}",
        import["exception"]
    );
    let db = &import["db"];
    let expected_codes = expect["codes"].as_object().unwrap().len();
    assert!(expected_codes > 0, "{label}: the project has codes");
    assert_eq!(
        as_array(&db["code_name"], "code_name").len(),
        expected_codes,
        "{label}: every code"
    );
    let cmp = &import["compare"];
    let expected_codings = expect["n_codings"].as_u64().unwrap();
    assert!(expected_codings > 0, "{label}: the project has codings");
    assert_eq!(cmp["n_missing"], 0, "{label}: every coding arrives: {cmp}");
    assert_eq!(cmp["n_extra"], 0, "{label}: no coding invented: {cmp}");
    assert_eq!(
        cmp["seltext_equals_qdpx_slice"].as_u64(),
        Some(expected_codings),
        "{label}: every coding's text exactly: {cmp}"
    );
    assert!(
        as_array(&db["code_text_mismatches"], "mismatches").is_empty(),
        "{label}: stored texts equal their source slices"
    );
    let cases: Vec<&str> = as_array(&db["cases"], "cases")
        .iter()
        .map(|c| c[1].as_str().unwrap())
        .collect();
    let expected_cases: Vec<&str> = as_array(&expect["cases"], "cases")
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(!expected_cases.is_empty(), "{label}: speakers as cases");
    assert_eq!(cases, expected_cases, "{label}: every case");
    // Each recording became an audio file of the QualCoder project, copied out of the .qdpx.
    let audio = as_array(&expect["audio"], "audio");
    let sources = as_array(&db["source"], "source");
    let files = as_array(&db["project_files"], "project_files");
    for a in audio {
        let name = a["name"].as_str().unwrap();
        assert!(
            a["path"].as_str().unwrap().starts_with("internal://"),
            "{label}: audio embedded: {a}"
        );
        let media = format!("/audio/{name}");
        assert!(
            sources
                .iter()
                .any(|s| s[3].as_str() == Some(media.as_str())),
            "{label}: QualCoder has the audio source {media}: {sources:?}"
        );
        assert!(
            files
                .iter()
                .any(|f| f.as_str().unwrap().starts_with(&format!("audio/{name} ("))),
            "{label}: {name} copied into the QualCoder project: {files:?}"
        );
        // QualCoder's name for a recording's transcript.
        let transcript = format!("{name}.txt");
        assert!(
            sources
                .iter()
                .any(|s| s[1].as_str() == Some(transcript.as_str())),
            "{label}: transcript {transcript} imported"
        );
    }
}

#[test]
fn qualcoder_imports_the_analysis_whole() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("salida");
    analyse_interviews(&out);
    let result = qualcoder_import(
        &out.join("project.qdpx"),
        Some(&out.join("codebook.qdc")),
        Some(&out.join("passages.tsv")),
    );
    let expect = &result["qdpx_expectation"];
    assert_eq!(
        as_array(&expect["audio"], "audio").len(),
        3,
        "one audio source per recording"
    );
    assert_imported_whole(&result["qdpx"], expect, "project.qdpx");
    let compare = &result["qdpx"]["passages_compare"];
    assert_eq!(
        compare["same_counts"], true,
        "QualCoder's codings per code equal passages.tsv: {compare}"
    );
    // The codebook on its own.
    let qdc = &result["qdc"];
    assert!(qdc["exception"].is_null(), "{}", qdc["exception"]);
    assert_eq!(
        as_array(&qdc["db"]["code_name"], "codes").len(),
        as_array(&qdc["qdc_codes_in_file"], "codes in file").len(),
        "every code of codebook.qdc"
    );
}

#[test]
fn qualcoder_imports_the_reviewed_project_whole() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("salida");
    analyse_interviews(&out);
    let status = Command::new(qualscribe_bin())
        .current_dir(project(""))
        .args(["review", "--export-only"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "review --export-only failed");
    let reviewed = out.join("reviewed");
    let result = qualcoder_import(&reviewed.join("project.qdpx"), None, None);
    assert_imported_whole(
        &result["qdpx"],
        &result["qdpx_expectation"],
        "reviewed/project.qdpx",
    );
}

/// The paragraphs of a `.docx` as python-docx reads them: style, text and the bold runs.
fn docx_paragraphs(docx: &Path) -> Vec<Value> {
    let script = "import sys, json, docx\n\
        d = docx.Document(sys.argv[1])\n\
        print(json.dumps([{'style': p.style.name, 'text': p.text,\n\
        'bold': [r.text for r in p.runs if r.bold]} for p in d.paragraphs]))\n";
    let out = Command::new(clients_python())
        .arg("-c")
        .arg(script)
        .arg(docx)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python-docx cannot open {}: {}",
        docx.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `[hh:mm:ss]` of a time in ms.
fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// The turns a transcript JSON holds, as the Word export must show them: consecutive segments
/// of one speaker joined, `Name: [hh:mm:ss] text`.
fn expected_turns(t: &Value) -> Vec<(Option<String>, String)> {
    let mut turns: Vec<(Option<String>, u64, String)> = Vec::new();
    for seg in as_array(&t["segments"], "segments") {
        let text = seg["text"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if text.is_empty() {
            continue;
        }
        let speaker = seg["speaker"].as_str().map(str::to_string);
        match turns.last_mut() {
            Some(last) if speaker.is_some() && last.0 == speaker => {
                last.2.push(' ');
                last.2.push_str(&text);
            }
            _ => turns.push((speaker, seg["start_ms"].as_u64().unwrap(), text)),
        }
    }
    turns
        .into_iter()
        .map(|(speaker, start, text)| {
            let name = speaker
                .as_ref()
                .map(|s| format!("{s}: "))
                .unwrap_or_default();
            (speaker, format!("{name}[{}] {text}", clock(start)))
        })
        .collect()
}

/// The reviewed Word transcripts open in python-docx and read exactly as the transcripts.
#[test]
fn word_transcripts_open_and_match_the_transcripts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("salida");
    analyse_interviews(&out);
    let status = Command::new(qualscribe_bin())
        .args(["review", "--export-only"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "review --export-only failed");
    let transcripts = out.join("reviewed/transcripts");
    for i in 1..=3 {
        let uri = format!("entrevista_exp{i}");
        let json: Value = serde_json::from_str(
            &std::fs::read_to_string(transcripts.join(format!("{uri}.transcript.json"))).unwrap(),
        )
        .unwrap();
        let paragraphs = docx_paragraphs(&transcripts.join(format!("{uri}.docx")));
        assert_eq!(paragraphs[0]["style"], "Heading 1", "{uri}: title");
        assert_eq!(paragraphs[0]["text"], uri.as_str());
        let texts: Vec<&str> = paragraphs
            .iter()
            .map(|p| p["text"].as_str().unwrap())
            .collect();
        let duration = clock(json["source"]["duration_ms"].as_u64().unwrap());
        for line in [
            format!("Duration: {duration}"),
            format!("Model: {}", json["model"]["name"].as_str().unwrap()),
            "Recording: entrevista_exp".to_string() + &format!("{i}.wav"),
        ] {
            assert!(
                texts.contains(&line.as_str()),
                "{uri}: `{line}` in {texts:?}"
            );
        }
        assert!(
            texts.iter().any(|t| t.starts_with("Language: es")),
            "{uri}: language"
        );
        let blank = texts
            .iter()
            .position(|t| t.is_empty())
            .expect("a blank line after the details");
        let turns = expected_turns(&json);
        assert!(turns.len() > 5, "{uri}: the fixture has turns");
        let body: Vec<&str> = texts[blank + 1..].to_vec();
        let wanted: Vec<&str> = turns.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            body, wanted,
            "{uri}: one paragraph per turn, text as in the transcript"
        );
        for (p, (speaker, _)) in paragraphs[blank + 1..].iter().zip(&turns) {
            let bold: Vec<&str> = as_array(&p["bold"], "bold")
                .iter()
                .map(|b| b.as_str().unwrap())
                .collect();
            match speaker {
                Some(name) => {
                    assert_eq!(bold, [format!("{name}: ").as_str()], "{uri}: name in bold")
                }
                None => assert!(bold.is_empty(), "{uri}: nothing bold without a speaker"),
            }
        }
    }
}
