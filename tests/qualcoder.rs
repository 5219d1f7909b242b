//! Our REFI-QDA files opened by a real client: QualCoder's own importer, run headless by
//! `../shared/clients/qualcoder/harness.py` (QualCoder's unmodified source; README there), on
//! what the real binary writes. Schema-valid is not the same as "opens": QualCoder crashed on
//! projects that passed xmllint (no dates on `<Transcript>` and `<Note>`).
//!
//! Asserted on QualCoder's resulting database: no exception, every code, every coding with
//! exactly the text qualscribe coded, every speaker as a case, the recordings imported as audio
//! files of the project (embedded in the `.qdpx`, so the project works on another machine).
//!
//! The Python packages QualCoder needs are installed by `scripts/test.sh` (`need_clients_venv`)
//! into the cache; `QUALSCRIBE_CLIENTS_PYTHON` names that interpreter.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{corpus, project, qualscribe_bin};

/// The interpreter with QualCoder's packages (never skipped: the test command installs it).
fn clients_python() -> PathBuf {
    let python = std::env::var_os("QUALSCRIBE_CLIENTS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            qualscribe::models::default_models_dir()
                .parent()
                .expect("the models folder lies in the cache folder")
                .join("clients-venv/bin/python")
        });
    assert!(
        python.is_file(),
        "{} missing: run the tests with `bash scripts/test.sh`, which installs QualCoder's packages",
        python.display()
    );
    python
}

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
