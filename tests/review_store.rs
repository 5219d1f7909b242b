//! The review project store: import, every action, undo, audit trail, exports that reflect the
//! decisions, and crash safety (a process killed in the middle of writing).
//!
//! Fixture: three interviews of the corpus transcribed by qualscribe (committed transcripts,
//! `tests/fixtures/review/`), analysed here with the real e5 model into three themes.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use qualscribe::export::{self, qda};
use qualscribe::pipeline::{self, AnalysisConfig};
use qualscribe::review::view::{CodeView, Overview};
use qualscribe::review::{Action, Project, ReviewError, export_reviewed};
use support::{models_dir, project};

/// A `run`-style output folder: the three transcripts and their analysis.
fn output_folder() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        for i in 1..=3 {
            let name = format!("entrevista_exp{i}.transcript.json");
            std::fs::copy(fixture_file(&name), dir.path().join(&name)).unwrap();
        }
        write_three_theme_analysis(dir.path(), &fixture_transcripts());
        dir
    })
    .path()
}

fn fixture_file(name: &str) -> std::path::PathBuf {
    project("tests/fixtures/review").join(name)
}

/// The three interview transcripts of `tests/fixtures/review`.
fn fixture_transcripts() -> Vec<qualscribe::transcript::Transcript> {
    (1..=3)
        .map(|i| {
            export::read_transcript(&fixture_file(&format!("entrevista_exp{i}.transcript.json")))
                .unwrap()
        })
        .collect()
}

/// Analyses `transcripts` into three themes with the real e5 model and writes the analysis
/// into `dir`, as `run` does.
fn write_three_theme_analysis(dir: &Path, transcripts: &[qualscribe::transcript::Transcript]) {
    let mut cfg = AnalysisConfig::default();
    cfg.themes.themes = Some(3);
    let embedder = pipeline::load_text_embedder(&models_dir(), "e5").unwrap();
    let analysis = pipeline::analyse(transcripts, &embedder, &cfg).unwrap();
    assert!(analysis.codebook.codes.len() >= 3, "fixture needs 3 codes");
    pipeline::write_analysis(dir, transcripts, &analysis, &[], &Default::default()).unwrap();
}

/// A fresh project with the fixture imported.
fn fresh() -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Project::open(&dir.path().join("p.sqlite")).unwrap();
    p.import_output(output_folder(), "tester").unwrap();
    (dir, p)
}

fn codes(o: &Overview) -> Vec<&CodeView> {
    o.themes.iter().flat_map(|t| &t.codes).collect()
}

fn code(o: &Overview, id: i64) -> &CodeView {
    codes(o).into_iter().find(|c| c.id == id).unwrap()
}

fn json(o: &Overview) -> serde_json::Value {
    let mut v = serde_json::to_value(o).unwrap();
    v["can_undo"] = serde_json::Value::Null; // differs by design after an undo
    v
}

#[test]
fn import_brings_recordings_speakers_passages_and_codes() {
    let (_d, p) = fresh();
    let o = p.overview().unwrap();
    assert_eq!(o.recordings.len(), 3);
    assert!(
        o.recordings.iter().all(|r| r.speakers.len() == 2),
        "{:?}",
        o.recordings
    );
    let cs = codes(&o);
    assert!(cs.len() >= 3);
    assert!(
        cs.iter()
            .all(|c| c.status == "proposed" && !c.passages.is_empty())
    );
    assert!(cs.iter().any(|c| c.passages.iter().any(|q| q.quote)));
    let t = p.transcript_view("entrevista_exp1").unwrap().unwrap();
    assert!(t.segments.len() > 3 && t.segments.iter().all(|s| !s.edited));
    let audio = p.audio_path("entrevista_exp1").unwrap().unwrap();
    assert!(audio.is_file(), "{}", audio.display());
    assert!(p.audio_path("../etc/passwd").unwrap().is_none());
    assert!(!p.can_undo().unwrap(), "an import is not undone");
}

#[test]
fn every_action_changes_what_it_says_and_undo_restores_it_exactly() {
    let (_d, mut p) = fresh();
    let o = p.overview().unwrap();
    let ids: Vec<i64> = codes(&o).iter().map(|c| c.id).collect();
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    let passages_of =
        |o: &Overview, id| -> Vec<i64> { code(o, id).passages.iter().map(|q| q.id).collect() };
    let pa = passages_of(&o, a);
    let pb = passages_of(&o, b);
    let (pa0, pb0, merged_min) = (pa[0], pb[0], pa.len() + pb.len());
    let seg = p
        .transcript_view("entrevista_exp2")
        .unwrap()
        .unwrap()
        .segments[1]
        .id;
    let speaker = o.recordings[0].speakers[1].label.clone();
    let uri = o.recordings[0].uri.clone();

    type Check = Box<dyn Fn(&Project)>;
    let cases: Vec<(Action, Check)> = vec![
        (
            Action::Accept { code: a },
            Box::new(move |p| assert_eq!(code(&p.overview().unwrap(), a).status, "accepted")),
        ),
        (
            Action::Reject { code: b },
            Box::new(move |p| assert_eq!(code(&p.overview().unwrap(), b).status, "rejected")),
        ),
        (
            Action::Rename {
                code: a,
                label: "Aprendizaje entre pares".into(),
            },
            Box::new(move |p| {
                assert_eq!(
                    code(&p.overview().unwrap(), a).label,
                    "Aprendizaje entre pares"
                )
            }),
        ),
        // Before the merge: once b and c are merged away, a move from or to them is refused.
        (
            Action::Move {
                passage: pb0,
                from: Some(b),
                to: c,
            },
            Box::new(move |p| {
                let o = p.overview().unwrap();
                assert!(!code(&o, b).passages.iter().any(|q| q.id == pb0));
                assert!(code(&o, c).passages.iter().any(|q| q.id == pb0));
            }),
        ),
        (
            Action::Merge {
                into: a,
                from: vec![b, c],
            },
            Box::new(move |p| {
                let o = p.overview().unwrap();
                assert_eq!(code(&o, b).status, "merged");
                assert_eq!(code(&o, b).merged_into, Some(a));
                assert!(code(&o, b).passages.is_empty() && code(&o, c).passages.is_empty());
                assert!(code(&o, a).passages.len() >= merged_min);
            }),
        ),
        (
            Action::Split {
                code: a,
                passages: vec![pa0],
                label: "Nuevo".into(),
            },
            Box::new(move |p| {
                let o = p.overview().unwrap();
                let new = codes(&o).into_iter().find(|c| c.label == "Nuevo").unwrap();
                assert_eq!(
                    new.passages.iter().map(|q| q.id).collect::<Vec<_>>(),
                    vec![pa[0]]
                );
                assert!(!code(&o, a).passages.iter().any(|q| q.id == pa0));
            }),
        ),
        (
            Action::Memo {
                target: format!("code:{a}"),
                text: "revisar con el equipo".into(),
            },
            Box::new(move |p| {
                assert_eq!(
                    code(&p.overview().unwrap(), a).memo,
                    "revisar con el equipo"
                )
            }),
        ),
        (
            Action::Memo {
                target: "project".into(),
                text: "primera ronda".into(),
            },
            Box::new(|p| assert_eq!(p.overview().unwrap().memo, "primera ronda")),
        ),
        (
            Action::RenameSpeaker {
                uri: uri.clone(),
                label: speaker.clone(),
                name: "Experta".into(),
            },
            Box::new(move |p| {
                let o = p.overview().unwrap();
                assert!(o.recordings[0].speakers.iter().any(|s| s.name == "Experta"));
            }),
        ),
        (
            Action::EditSegment {
                segment: seg,
                text: "Texto corregido.".into(),
            },
            Box::new(move |p| {
                let t = p.transcript_view("entrevista_exp2").unwrap().unwrap();
                let s = t.segments.iter().find(|s| s.id == seg).unwrap();
                assert!(s.edited && s.text == "Texto corregido.");
            }),
        ),
    ];
    for (action, check) in cases {
        let before = json(&p.overview().unwrap());
        let transcript_before = p.transcript_view("entrevista_exp2").unwrap();
        let audit_id = p.apply(&action, "ana").unwrap();
        check(&p);
        let entry = p
            .audit()
            .unwrap()
            .into_iter()
            .find(|e| e.id == audit_id)
            .unwrap();
        assert_eq!(entry.who, "ana");
        assert_eq!(entry.detail, serde_json::to_value(&action).unwrap());
        let undone = p.undo("ana").unwrap().unwrap();
        assert_eq!(undone.id, audit_id);
        assert_eq!(json(&p.overview().unwrap()), before, "undo of {action:?}");
        assert_eq!(
            serde_json::to_value(p.transcript_view("entrevista_exp2").unwrap()).unwrap(),
            serde_json::to_value(transcript_before).unwrap()
        );
        // Then do it for real, so the next action works on a changed project.
        p.apply(&action, "ana").unwrap();
    }
    // Undo walks back through the kept actions, newest first, and stops at the import.
    let mut undone = 0;
    while p.undo("ana").unwrap().is_some() {
        undone += 1;
    }
    assert_eq!(undone, 10);
    assert_eq!(
        json(&p.overview().unwrap()),
        json(&fresh().1.overview().unwrap())
    );
    let trail = p.audit().unwrap();
    assert_eq!(trail[0].action, "import");
    assert_eq!(trail.iter().filter(|e| e.action == "undo").count(), 10 + 10);
}

#[test]
fn bad_actions_change_nothing_and_leave_no_audit_entry() {
    let (_d, mut p) = fresh();
    let before = json(&p.overview().unwrap());
    let trail = p.audit().unwrap().len();
    let a = codes(&p.overview().unwrap())[0].id;
    for bad in [
        Action::Accept { code: 9999 },
        Action::Rename {
            code: a,
            label: "   ".into(),
        },
        Action::Merge {
            into: a,
            from: vec![9999],
        },
        Action::Memo {
            target: "../x".into(),
            text: "x".into(),
        },
        Action::RenameSpeaker {
            uri: "nope".into(),
            label: "SPEAKER_00".into(),
            name: "X".into(),
        },
        Action::EditSegment {
            segment: -1,
            text: "x".into(),
        },
    ] {
        let err = p.apply(&bad, "ana").unwrap_err();
        assert!(
            matches!(err, ReviewError::NoSuch { .. } | ReviewError::Empty { .. }),
            "{err}"
        );
    }
    assert_eq!(json(&p.overview().unwrap()), before);
    assert_eq!(p.audit().unwrap().len(), trail);
}

#[test]
fn reimport_keeps_every_decision() {
    let (_d, mut p) = fresh();
    let o = p.overview().unwrap();
    let ids: Vec<i64> = codes(&o).iter().map(|c| c.id).collect();
    let seg = p
        .transcript_view("entrevista_exp1")
        .unwrap()
        .unwrap()
        .segments[0]
        .id;
    let label = o.recordings[0].speakers[0].label.clone();
    for a in [
        Action::Accept { code: ids[0] },
        Action::Rename {
            code: ids[0],
            label: "Mi código".into(),
        },
        Action::Reject { code: ids[1] },
        Action::Memo {
            target: format!("code:{}", ids[0]),
            text: "nota".into(),
        },
        Action::RenameSpeaker {
            uri: "entrevista_exp1".into(),
            label,
            name: "Entrevistadora".into(),
        },
        Action::EditSegment {
            segment: seg,
            text: "Corregido a mano.".into(),
        },
    ] {
        p.apply(&a, "ana").unwrap();
    }
    let reviewed = json(&p.overview().unwrap());
    let transcript = serde_json::to_value(p.transcript_view("entrevista_exp1").unwrap()).unwrap();
    let summary = p.import_output(output_folder(), "ana").unwrap();
    assert_eq!(
        (
            summary.new_recordings,
            summary.new_passages,
            summary.new_codes
        ),
        (0, 0, 0)
    );
    assert_eq!(json(&p.overview().unwrap()), reviewed);
    assert_eq!(
        serde_json::to_value(p.transcript_view("entrevista_exp1").unwrap()).unwrap(),
        transcript
    );
}

#[test]
fn exports_reflect_the_review() {
    let (dir, mut p) = fresh();
    let o = p.overview().unwrap();
    let cs = codes(&o);
    let (a, b, c) = (cs[0].id, cs[1].id, cs[2].id);
    let (b_label, c_label) = (cs[1].label.clone(), cs[2].label.clone());
    let label = o.recordings[0].speakers[0].label.clone();
    let uri = o.recordings[0].uri.clone();
    let seg = p.transcript_view(&uri).unwrap().unwrap().segments[0].id;
    for action in [
        Action::Accept { code: a },
        Action::Rename {
            code: a,
            label: "Comunidades de aprendizaje".into(),
        },
        Action::Memo {
            target: format!("code:{a}"),
            text: "definición acordada en equipo".into(),
        },
        Action::Reject { code: b },
        Action::Merge {
            into: a,
            from: vec![c],
        },
        Action::RenameSpeaker {
            uri: uri.clone(),
            label,
            name: "Entrevistadora".into(),
        },
        Action::EditSegment {
            segment: seg,
            text: "Texto revisado por la investigadora.".into(),
        },
    ] {
        p.apply(&action, "ana").unwrap();
    }
    let out = dir.path().join("reviewed");
    let written = export_reviewed(&p, &out).unwrap();
    assert!(written.iter().all(|f| f.is_file()));

    let md = std::fs::read_to_string(out.join("codes.md")).unwrap();
    assert!(
        md.contains("## Comunidades de aprendizaje (accepted)"),
        "{md}"
    );
    assert!(md.contains("definición acordada en equipo"));
    assert!(
        !md.contains(&format!("## {b_label} ")),
        "rejected code exported:\n{md}"
    );
    assert!(
        !md.contains(&format!("## {c_label} ")),
        "merged code exported:\n{md}"
    );

    let qdc = qda::read_qdc(&out.join("codebook.qdc")).unwrap();
    let names: Vec<&str> = qdc.iter().map(|c| c.name.as_str()).collect();
    assert!(names.contains(&"Comunidades de aprendizaje"), "{names:?}");
    assert!(!names.contains(&b_label.as_str()) && !names.contains(&c_label.as_str()));
    let note = qdc
        .iter()
        .find(|c| c.name == "Comunidades de aprendizaje")
        .unwrap()
        .note
        .clone()
        .unwrap();
    assert!(
        note.contains("accepted") && note.contains("definición acordada"),
        "{note}"
    );

    let project = qda::read_qdpx(&out.join("project.qdpx")).unwrap();
    let merged_code = project
        .codes
        .iter()
        .find(|c| c.name == "Comunidades de aprendizaje")
        .unwrap();
    let coded = project
        .codings
        .iter()
        .filter(|k| k.code_guid == merged_code.guid)
        .count();
    let expected = code(&p.overview().unwrap(), a).passages.len();
    assert_eq!(coded, expected, "every passage of the merged code is coded");
    assert!(project.cases.iter().any(|c| c.name == "Entrevistadora"));

    let txt = std::fs::read_to_string(out.join(format!("transcripts/{uri}.txt"))).unwrap();
    assert!(
        txt.contains("Entrevistadora") && txt.contains("Texto revisado por la investigadora."),
        "{txt}"
    );
}

/// A corrected segment reaches everything built from it: the passage that covers it (page and
/// codes.md), the exact characters coded in the .qdpx, and the reviewed .docx transcript.
#[test]
fn a_corrected_segment_reaches_passages_quotes_and_every_reviewed_export() {
    let (dir, mut p) = fresh();
    let o = p.overview().unwrap();
    // A coded passage and a segment lying wholly inside it.
    let (code_id, passage, seg) = codes(&o)
        .into_iter()
        .flat_map(|c| c.passages.iter().map(move |pv| (c.id, pv)))
        .find_map(|(code_id, pv)| {
            let view = p.transcript_view(&pv.uri).unwrap().unwrap();
            view.segments
                .into_iter()
                .find(|s| {
                    s.start_ms >= pv.start_ms
                        && s.text.split_whitespace().count() >= 3
                        && pv.text.contains(&s.text)
                })
                .map(|s| (code_id, pv.clone(), s))
        })
        .expect("a coded passage holding a whole segment");
    let first_word = seg.text.split_whitespace().next().unwrap();
    let corrected_segment = seg.text.replacen(first_word, "Palabracorregida", 1);
    let expected = passage.text.replacen(&seg.text, &corrected_segment, 1);
    p.apply(
        &Action::EditSegment {
            segment: seg.id,
            text: corrected_segment.clone(),
        },
        "ana",
    )
    .unwrap();

    let shown = code(&p.overview().unwrap(), code_id)
        .passages
        .iter()
        .find(|pv| pv.id == passage.id)
        .unwrap()
        .text
        .clone();
    assert_eq!(shown, expected, "the page shows the corrected passage");

    let out = dir.path().join("reviewed");
    export_reviewed(&p, &out).unwrap();
    let md = std::fs::read_to_string(out.join("codes.md")).unwrap();
    assert!(
        md.contains(&expected),
        "codes.md quotes the corrected text:\n{md}"
    );

    let coded = coded_texts(&out.join("project.qdpx"), &passage.uri);
    assert!(
        coded.contains(&expected),
        "the .qdpx codes exactly the corrected passage: {coded:#?}"
    );

    let docx = std::fs::File::open(out.join(format!("transcripts/{}.docx", passage.uri))).unwrap();
    let mut document = String::new();
    std::io::Read::read_to_string(
        &mut zip::ZipArchive::new(docx)
            .unwrap()
            .by_name("word/document.xml")
            .unwrap(),
        &mut document,
    )
    .unwrap();
    assert!(
        document.contains("Palabracorregida"),
        "the reviewed .docx is corrected"
    );
}

/// Crash safety: the test re-runs itself as a child process that applies renames in a loop, and
/// kills it with SIGKILL at a moment that varies; the database must be intact and its state must
/// match its audit trail (an action and its audit entry are committed together or not at all).
#[test]
fn a_killed_writer_leaves_the_last_committed_state() {
    if let Some(db) = std::env::var_os("QUALSCRIBE_REVIEW_CHILD_DB") {
        write_until_killed(&PathBuf::from(db));
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.sqlite");
    {
        let mut p = Project::open(&db).unwrap();
        p.import_output(output_folder(), "tester").unwrap();
    }
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_killed_writer_leaves_the_last_committed_state",
                "--nocapture",
            ])
            .env("QUALSCRIBE_REVIEW_CHILD_DB", &db)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(700 + 300 * round));
        child.kill().unwrap();
        child.wait().unwrap();

        let p = Project::open(&db).unwrap();
        let o = p.overview().unwrap();
        let first = codes(&o)[0];
        let renames: Vec<_> = p
            .audit()
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "rename")
            .collect();
        let last = renames
            .last()
            .expect("the child committed at least one rename");
        assert_eq!(
            first.label, last.detail["label"],
            "round {round}: state and audit trail disagree"
        );
    }
    let conn = rusqlite::Connection::open(&db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

/// The child's loop: renames the first code until the parent kills the process.
fn write_until_killed(db: &Path) -> ! {
    let mut p = Project::open(db).unwrap();
    let first = codes(&p.overview().unwrap())[0].id;
    for i in 0.. {
        p.apply(
            &Action::Rename {
                code: first,
                label: format!("nombre {i}"),
            },
            "child",
        )
        .unwrap();
    }
    unreachable!("the loop ends only when the process is killed")
}

/// Asserts that `bad` is refused with a 400-class error and leaves state and audit trail as
/// they were.
fn assert_refused(p: &mut Project, bad: &Action) {
    let before = json(&p.overview().unwrap());
    let trail = p.audit().unwrap().len();
    let err = p.apply(bad, "ana").unwrap_err();
    assert!(
        matches!(
            err,
            ReviewError::NoSuch { .. } | ReviewError::Empty { .. } | ReviewError::Refused { .. }
        ),
        "{bad:?}: {err}"
    );
    assert!(!err.to_string().contains('\n'), "{err}");
    assert_eq!(
        json(&p.overview().unwrap()),
        before,
        "{bad:?} changed the project"
    );
    assert_eq!(p.audit().unwrap().len(), trail, "{bad:?} was audited");
    assert_eq!(p.rule_violations().unwrap(), Vec::<String>::new());
}

/// Issue 14, repro 1: `merge 1←3` then `merge 3←1` made both codes vanish with their passages.
#[test]
fn merge_cycles_are_refused_and_no_passage_vanishes() {
    let (_d, mut p) = fresh();
    let o = p.overview().unwrap();
    let (a, b, c) = (codes(&o)[0].id, codes(&o)[1].id, codes(&o)[2].id);
    let total: usize = codes(&o).iter().map(|c| c.passages.len()).sum();
    p.apply(
        &Action::Merge {
            into: a,
            from: vec![b],
        },
        "ana",
    )
    .unwrap();
    for bad in [
        Action::Merge {
            into: b,
            from: vec![a],
        },
        Action::Merge {
            into: a,
            from: vec![a],
        },
        Action::Merge {
            into: a,
            from: vec![],
        },
        Action::Merge {
            into: c,
            from: vec![b],
        },
        Action::Merge {
            into: a,
            from: vec![c, c],
        },
        Action::Accept { code: b },
        Action::Rename {
            code: b,
            label: "vuelve".into(),
        },
    ] {
        assert_refused(&mut p, &bad);
    }
    // A chain: a (holding b) merged into c. b now points at c, never at the merged a.
    p.apply(
        &Action::Merge {
            into: c,
            from: vec![a],
        },
        "ana",
    )
    .unwrap();
    let o = p.overview().unwrap();
    assert_eq!(code(&o, b).merged_into, Some(c));
    assert_eq!(code(&o, a).merged_into, Some(c));
    let live: usize = codes(&o).iter().map(|c| c.passages.len()).sum();
    assert_eq!(live, total, "passages were lost");
    assert_eq!(code(&o, c).passages.len(), total - rest(&o, &[a, b, c]));
    assert_eq!(p.rule_violations().unwrap(), Vec::<String>::new());
    // A rejected code takes no merges until it is accepted or reopened again.
    let d = codes(&o)
        .iter()
        .map(|c| c.id)
        .find(|&id| ![a, b, c].contains(&id));
    if let Some(d) = d {
        p.apply(&Action::Reject { code: c }, "ana").unwrap();
        assert_refused(
            &mut p,
            &Action::Merge {
                into: c,
                from: vec![d],
            },
        );
    }
}

/// Passages of every code except `ids`.
fn rest(o: &Overview, ids: &[i64]) -> usize {
    codes(o)
        .iter()
        .filter(|c| !ids.contains(&c.id))
        .map(|c| c.passages.len())
        .sum()
}

/// Issue 14, repro 10: impossible requests were answered 200 and audited.
#[test]
fn impossible_actions_are_refused_and_not_audited() {
    let (_d, mut p) = fresh();
    let o = p.overview().unwrap();
    let (a, b) = (codes(&o)[0].id, codes(&o)[1].id);
    let pa = code(&o, a).passages[0].id;
    let pb = code(&o, b).passages[0].id;
    for bad in [
        // a passage of a moved "from" b: it would end in two codes
        Action::Move {
            passage: pa,
            from: Some(b),
            to: b,
        },
        Action::Move {
            passage: pa,
            from: None,
            to: b,
        },
        Action::Move {
            passage: pa,
            from: Some(a),
            to: a,
        },
        Action::Move {
            passage: 999_999,
            from: Some(a),
            to: b,
        },
        Action::Move {
            passage: pa,
            from: Some(a),
            to: 999_999,
        },
        Action::Split {
            code: a,
            passages: vec![],
            label: "vacío".into(),
        },
        Action::Split {
            code: a,
            passages: vec![999_999],
            label: "fantasma".into(),
        },
        Action::Split {
            code: a,
            passages: vec![pb],
            label: "ajeno".into(),
        },
        Action::Memo {
            target: "code:99999".into(),
            text: "x".into(),
        },
        Action::Memo {
            target: "passage:99999".into(),
            text: "x".into(),
        },
        Action::Merge {
            into: a,
            from: vec![a],
        },
        Action::Merge {
            into: a,
            from: vec![],
        },
    ] {
        assert_refused(&mut p, &bad);
    }
    // The right `from` works, and the passage is then in exactly one code.
    p.apply(
        &Action::Move {
            passage: pa,
            from: Some(a),
            to: b,
        },
        "ana",
    )
    .unwrap();
    let o = p.overview().unwrap();
    assert!(code(&o, b).passages.iter().any(|q| q.id == pa));
    assert!(!code(&o, a).passages.iter().any(|q| q.id == pa));
    assert_eq!(p.rule_violations().unwrap(), Vec::<String>::new());
}

/// Issue 14, repro 2: a project memo made the export fail half-way (old project.qdpx kept).
#[test]
fn project_memo_exports_with_every_file() {
    let (dir, mut p) = fresh();
    p.apply(
        &Action::Memo {
            target: "project".into(),
            text: "hola".into(),
        },
        "ana",
    )
    .unwrap();
    let out = dir.path().join("reviewed");
    let written = export_reviewed(&p, &out).unwrap();
    assert!(written.iter().all(|f| f.is_file()));
    let project = qda::read_qdpx(&out.join("project.qdpx")).unwrap();
    assert!(
        project.notes.iter().any(|(_, text)| text == "hola"),
        "{:?}",
        project.notes
    );
    // A second export replaces them all again (the memo's GUID is stable).
    export_reviewed(&p, &out).unwrap();
}

/// Issue 14, repros 4 and 5: names that are formulas or HTML are written so that a spreadsheet
/// shows them as text and a Markdown viewer does not run them.
#[test]
fn exported_codes_are_safe_to_open() {
    let (dir, mut p) = fresh();
    let o = p.overview().unwrap();
    let ids: Vec<i64> = codes(&o).iter().map(|c| c.id).collect();
    let names = [
        "=HYPERLINK(\"http://x\")",
        "+cmd|' /C calc'!A0",
        "@SUM(1+1)",
    ];
    for (id, name) in ids.iter().zip(names) {
        p.apply(
            &Action::Rename {
                code: *id,
                label: name.into(),
            },
            "ana",
        )
        .unwrap();
    }
    p.apply(
        &Action::Memo {
            target: format!("code:{}", ids[0]),
            text: "<img src=x onerror=alert(1)>".into(),
        },
        "ana",
    )
    .unwrap();
    let out = dir.path().join("reviewed");
    export_reviewed(&p, &out).unwrap();
    let csv = std::fs::read_to_string(out.join("codes.csv")).unwrap();
    for line in csv.lines().skip(1) {
        let first = line.trim_start_matches('"');
        assert!(
            !first.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "formula cell: {line}"
        );
    }
    assert!(csv.contains("'@SUM(1+1)"), "{csv}");
    let md = std::fs::read_to_string(out.join("codes.md")).unwrap();
    let raw_tag = md.match_indices('<').any(|(i, _)| !md[..i].ends_with('\\'));
    assert!(!raw_tag, "raw HTML in codes.md:\n{md}");
    assert!(md.contains("\\<img src=x onerror=alert(1)\\>"), "{md}");
}

/// Issue 14, repro 13: temp files of an export killed mid-write are removed by the next one.
#[test]
fn stale_export_temp_files_are_removed() {
    let (dir, p) = fresh();
    let out = dir.path().join("reviewed");
    std::fs::create_dir_all(out.join("transcripts")).unwrap();
    let stale = [
        out.join(".qualscribe-abc123.tmp"),
        out.join("transcripts/.qualscribe-def456.tmp"),
    ];
    for s in &stale {
        std::fs::write(s, "half").unwrap();
    }
    export_reviewed(&p, &out).unwrap();
    for s in &stale {
        assert!(!s.exists(), "{} left behind", s.display());
    }
}

/// Issue 14, repro 11: a second server on one folder made half of the writes fail.
#[test]
fn a_project_is_open_in_one_place_at_a_time() {
    let (dir, p) = fresh();
    let err = Project::open(&dir.path().join("p.sqlite")).unwrap_err();
    assert!(matches!(err, ReviewError::Busy { .. }), "{err}");
    assert!(err.to_string().contains("another"), "{err}");
    drop(p);
    Project::open(&dir.path().join("p.sqlite")).unwrap();
}

/// Issue 14, repro 14: the audio path must work whatever folder the review server runs from.
/// The transcript names its audio relative to the folder `run` ran in (`<run>/audio/…`), which
/// is not the test's folder; import finds it above the transcript and stores it absolute.
#[test]
fn audio_paths_survive_another_current_folder() {
    let run = tempfile::tempdir().unwrap();
    let audio_dir = run.path().join("audio_issue14");
    std::fs::create_dir_all(&audio_dir).unwrap();
    let wav = audio_dir.join("entrevista_exp1.wav");
    std::fs::write(&wav, b"RIFF").unwrap();
    let out = run.path().join("out/x");
    std::fs::create_dir_all(&out).unwrap();
    let src = fixture_file("entrevista_exp1.transcript.json");
    let mut t = export::read_transcript(&src).unwrap();
    t.source.path = "audio_issue14/entrevista_exp1.wav".into();
    std::fs::write(
        out.join("entrevista_exp1.transcript.json"),
        export::render(&t, export::Format::Json),
    )
    .unwrap();
    assert!(
        !Path::new(&t.source.path).exists(),
        "test must not run from the run folder"
    );
    let mut p = Project::open(&out.join("p.sqlite")).unwrap();
    p.import_output(&out, "ana").unwrap();
    let stored = p.audio_path(&t.uri).unwrap().unwrap();
    assert!(stored.is_absolute(), "{}", stored.display());
    assert_eq!(stored, wav.canonicalize().unwrap());
    // Importing again from somewhere the file cannot be found keeps the path found before.
    std::fs::rename(&audio_dir, run.path().join("moved")).unwrap();
    p.import_output(&out, "ana").unwrap();
    assert_eq!(p.audit().unwrap().len(), 2);
    let kept = p.audio_path(&t.uri).unwrap().unwrap();
    assert_eq!(kept, stored);
}

/// Code by example in the review page, on the real e5 analysis of the fixture: the stored
/// vectors reach the project, each code's suggestions are the passages whose most likely code
/// it is, and an action changes the next suggestions without re-running anything.
#[test]
fn suggestions_follow_the_codes_as_they_are_now() {
    let (_d, mut p) = fresh();
    let analysis = qualscribe::export::analysis_json::read_analysis_json(
        &output_folder().join(qualscribe::export::analysis_json::ANALYSIS_FILE),
    )
    .unwrap();
    let stored = analysis
        .vectors
        .expect("themes stores the passages' vectors");
    let index = p.suggestion_index().unwrap().expect("import keeps them");
    assert_eq!(index.len(), stored.passages.len());
    assert!(index.len() >= 10, "{}", index.len());

    // Each machine-coded passage, scored against the other passages of the codes, mostly
    // leans to its own code (k-means on e5 made them; the fused space agrees with it).
    let o = p.overview().unwrap();
    let ids: Vec<i64> = codes(&o).iter().map(|c| c.id).collect();
    let mut agree = 0;
    let mut total = 0;
    let mut own_best = None;
    for c in codes(&o) {
        for q in &c.passages {
            let chances = p.code_chances(&index, q.id).unwrap();
            if chances.is_empty() {
                continue;
            }
            let sum: f32 = chances.iter().map(|x| x.confidence).sum();
            assert!((sum - 1.0).abs() < 1e-3, "{chances:?}");
            total += 1;
            if chances[0].code == c.id {
                agree += 1;
                if c.passages.len() >= 3 && own_best.is_none() {
                    own_best = Some((q.id, c.id));
                }
            }
        }
    }
    assert!(
        agree * 10 >= total * 6,
        "{agree} of {total} lean to their own code"
    );

    // Suggestions agree with the per-passage chances, most confident first, none from the code.
    for &c in &ids {
        let s = p.suggest(&index, c, 1000).unwrap();
        assert!(s.examples > 0);
        for w in s.suggestions.windows(2) {
            assert!(w[0].confidence >= w[1].confidence);
        }
        for g in &s.suggestions {
            assert_ne!(g.code_now, Some(c));
            assert_eq!(p.code_chances(&index, g.passage).unwrap()[0].code, c);
        }
    }

    // The machine misplaces a passage (split out of its code, merged into another: both keep
    // it a machine placement). Its own code now suggests it, and accepting the suggestion (a
    // move, audited and undoable) takes it off every list at once.
    let (passage, home) = own_best.expect("a code of 3+ passages with one leaning to it");
    let other = *ids.iter().find(|&&c| c != home).unwrap();
    p.apply(
        &Action::Split {
            code: home,
            passages: vec![passage],
            label: "tmp".into(),
        },
        "tester",
    )
    .unwrap();
    let tmp = codes(&p.overview().unwrap())
        .iter()
        .find(|c| c.label == "tmp")
        .unwrap()
        .id;
    p.apply(
        &Action::Merge {
            into: other,
            from: vec![tmp],
        },
        "tester",
    )
    .unwrap();
    let s = p.suggest(&index, home, 1000).unwrap();
    let g = s
        .suggestions
        .iter()
        .find(|g| g.passage == passage)
        .expect("the misplaced passage is suggested back");
    assert_eq!(g.code_now, Some(other));
    p.apply(
        &Action::Move {
            passage,
            from: Some(other),
            to: home,
        },
        "tester",
    )
    .unwrap();
    for &c in &ids {
        let s = p.suggest(&index, c, 1000).unwrap();
        assert!(s.suggestions.iter().all(|g| g.passage != passage));
    }
    assert!(p.rule_violations().unwrap().is_empty());

    // "New code from this passage", then undo: the code is gone and the passage is back.
    let before = p.suggest(&index, home, 1000).unwrap().suggestions.len();
    p.apply(
        &Action::NewCode {
            label: "nuevo".into(),
            passage,
            from: Some(home),
        },
        "tester",
    )
    .unwrap();
    let o = p.overview().unwrap();
    let all = codes(&o);
    let nuevo = all.iter().find(|c| c.label == "nuevo").unwrap();
    assert_eq!(nuevo.status, "accepted");
    assert_eq!(p.suggest(&index, nuevo.id, 5).unwrap().examples, 1);
    p.undo("tester").unwrap();
    let o = p.overview().unwrap();
    assert!(codes(&o).iter().all(|c| c.label != "nuevo"));
    assert!(code(&o, home).passages.iter().any(|q| q.id == passage));
    assert_eq!(
        p.suggest(&index, home, 1000).unwrap().suggestions.len(),
        before
    );
}

/// A project made before passages had vectors and codings a `reviewed` column still opens,
/// gains the column, and says suggestions need a new analysis.
#[test]
fn an_older_project_opens_without_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.sqlite");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "CREATE TABLE codings(id INTEGER PRIMARY KEY, code_id INTEGER NOT NULL,
             passage_id INTEGER NOT NULL, quote INTEGER NOT NULL DEFAULT 0,
             UNIQUE(code_id, passage_id));",
        )
        .unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(output_folder()).unwrap().flatten() {
        std::fs::copy(e.path(), out.path().join(e.file_name())).unwrap();
    }
    let path = out
        .path()
        .join(qualscribe::export::analysis_json::ANALYSIS_FILE);
    let mut a = qualscribe::export::analysis_json::read_analysis_json(&path).unwrap();
    a.vectors = None;
    std::fs::write(&path, serde_json::to_string(&a).unwrap()).unwrap();
    let mut p = Project::open(&db).unwrap();
    p.import_output(out.path(), "tester").unwrap();
    assert!(p.suggestion_index().unwrap().is_none());
    let o = p.overview().unwrap();
    let (a, b) = (codes(&o)[0].id, codes(&o)[1].id);
    let passage = code(&o, a).passages[0].id;
    p.apply(
        &Action::Move {
            passage,
            from: Some(a),
            to: b,
        },
        "tester",
    )
    .unwrap();
    assert!(
        code(&p.overview().unwrap(), b)
            .passages
            .iter()
            .any(|q| q.id == passage)
    );
}

/// Number of random cases: `PROPTEST_CASES` (scripts/fuzz.sh sets it high), else `default`.
fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A review step in terms of positions in the project's current lists (resolved to ids when
/// applied, so most steps hit real codes and passages; positions past the end are unknown ids).
#[derive(Debug, Clone)]
enum Step {
    Accept(usize),
    Reject(usize),
    Reopen(usize),
    Rename(usize, String),
    Merge(usize, Vec<usize>),
    Split(usize, Vec<usize>, String),
    Move(usize, Option<usize>, usize),
    NewCode(usize, Option<usize>, String),
    Memo(usize, String),
    Undo,
}

fn step_strategy() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    let code = 0usize..8;
    let passage = 0usize..40;
    let name = || proptest::string::string_regex("[a-zñ =+<@]{0,6}").unwrap();
    prop_oneof![
        code.clone().prop_map(Step::Accept),
        code.clone().prop_map(Step::Reject),
        code.clone().prop_map(Step::Reopen),
        (code.clone(), name()).prop_map(|(c, n)| Step::Rename(c, n)),
        (code.clone(), proptest::collection::vec(code.clone(), 0..3))
            .prop_map(|(c, f)| Step::Merge(c, f)),
        (
            code.clone(),
            proptest::collection::vec(passage.clone(), 0..3),
            name()
        )
            .prop_map(|(c, p, n)| Step::Split(c, p, n)),
        (
            passage.clone(),
            proptest::option::of(code.clone()),
            code.clone()
        )
            .prop_map(|(p, f, t)| Step::Move(p, f, t)),
        (passage, proptest::option::of(code.clone()), name())
            .prop_map(|(p, f, n)| Step::NewCode(p, f, n)),
        (code, name()).prop_map(|(c, n)| Step::Memo(c, n)),
        Just(Step::Undo),
        Just(Step::Undo),
    ]
}

/// Code ids (all, merged ones too) and passage ids in a stable order.
fn id_lists(p: &Project) -> (Vec<i64>, Vec<i64>) {
    let o = p.overview().unwrap();
    let mut code_ids: Vec<i64> = codes(&o).iter().map(|c| c.id).collect();
    code_ids.sort();
    let mut passage_ids: Vec<i64> = codes(&o)
        .iter()
        .flat_map(|c| c.passages.iter().map(|q| q.id))
        .collect();
    passage_ids.sort();
    passage_ids.dedup();
    (code_ids, passage_ids)
}

fn to_action(step: &Step, codes: &[i64], passages: &[i64]) -> Option<Action> {
    let c = |i: usize| codes.get(i).copied().unwrap_or(900_000 + i as i64);
    let q = |i: usize| passages.get(i).copied().unwrap_or(900_000 + i as i64);
    Some(match step {
        Step::Accept(i) => Action::Accept { code: c(*i) },
        Step::Reject(i) => Action::Reject { code: c(*i) },
        Step::Reopen(i) => Action::Reopen { code: c(*i) },
        Step::Rename(i, n) => Action::Rename {
            code: c(*i),
            label: n.clone(),
        },
        Step::Merge(i, f) => Action::Merge {
            into: c(*i),
            from: f.iter().map(|&j| c(j)).collect(),
        },
        Step::Split(i, ps, n) => Action::Split {
            code: c(*i),
            passages: ps.iter().map(|&j| q(j)).collect(),
            label: n.clone(),
        },
        Step::Move(p, f, t) => Action::Move {
            passage: q(*p),
            from: f.map(c),
            to: c(*t),
        },
        Step::NewCode(p, f, n) => Action::NewCode {
            label: n.clone(),
            passage: q(*p),
            from: f.map(c),
        },
        Step::Memo(i, text) => Action::Memo {
            target: format!("code:{}", c(*i)),
            text: text.clone(),
        },
        Step::Undo => return None,
    })
}

/// The project state rebuilt from a fresh import plus the audit trail's actions that stand
/// (neither undone nor undos), in order: it must equal the live state.
fn replayed(p: &Project, scratch: &Path) -> serde_json::Value {
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).unwrap();
    let mut q = Project::open(&scratch.join("replay.sqlite")).unwrap();
    q.import_output(output_folder(), "tester").unwrap();
    for e in p.audit().unwrap() {
        if e.action == "import" || e.action == "undo" || e.undone_by.is_some() {
            continue;
        }
        let action: Action = serde_json::from_value(e.detail.clone()).unwrap();
        q.apply(&action, &e.who)
            .unwrap_or_else(|err| panic!("replay of {action:?} failed: {err}"));
    }
    json(&q.overview().unwrap())
}

/// Random sequences of review actions (valid and invalid, with undos): after every step the
/// store's rules hold, a refused action changed nothing and left no audit entry, and replaying
/// the audit trail gives the same project.
#[test]
fn random_review_sessions_keep_the_rules_and_replay_from_the_audit_trail() {
    use proptest::test_runner::{Config, TestRunner};
    let config = Config {
        cases: proptest_cases(6),
        failure_persistence: None,
        ..Config::default()
    };
    let sessions = proptest::collection::vec(step_strategy(), 1..10);
    let base = tempfile::tempdir().unwrap();
    let mut runner = TestRunner::new(config);
    let n = std::cell::Cell::new(0u32);
    runner
        .run(&sessions, |steps| {
            n.set(n.get() + 1);
            let dir = base.path().join(format!("case{}", n.get()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut p = Project::open(&dir.join("p.sqlite")).unwrap();
            p.import_output(output_folder(), "tester").unwrap();
            for step in &steps {
                let (code_ids, passage_ids) = id_lists(&p);
                let before = json(&p.overview().unwrap());
                let trail = p.audit().unwrap().len();
                match to_action(step, &code_ids, &passage_ids) {
                    None => {
                        p.undo("prop").unwrap();
                    }
                    Some(action) => {
                        if p.apply(&action, "prop").is_err() {
                            proptest::prop_assert_eq!(&json(&p.overview().unwrap()), &before);
                            proptest::prop_assert_eq!(p.audit().unwrap().len(), trail);
                        }
                    }
                }
                let broken = p.rule_violations().unwrap();
                proptest::prop_assert!(broken.is_empty(), "after {:?}: {:?}", step, broken);
                let live = json(&p.overview().unwrap());
                proptest::prop_assert_eq!(&replayed(&p, &dir.join("replay")), &live);
            }
            Ok(())
        })
        .unwrap();
}

/// Issue 14, repro 2 (the mixed folder): an export that fails part-way leaves the previous set
/// of codebook files as it was, byte for byte, and no temporary files. Here the second export
/// fails because every code is rejected (a codebook without codes is refused).
#[test]
fn a_failed_export_leaves_the_previous_set() {
    let (dir, mut p) = fresh();
    let out = dir.path().join("reviewed");
    export_reviewed(&p, &out).unwrap();
    let names = ["project.qdpx", "codebook.qdc", "codes.md", "codes.csv"];
    let before: Vec<Vec<u8>> = names
        .iter()
        .map(|n| std::fs::read(out.join(n)).unwrap())
        .collect();
    let ids: Vec<i64> = codes(&p.overview().unwrap()).iter().map(|c| c.id).collect();
    for id in ids {
        p.apply(&Action::Reject { code: id }, "ana").unwrap();
    }
    export_reviewed(&p, &out).unwrap_err();
    for (name, bytes) in names.iter().zip(&before) {
        assert!(
            std::fs::read(out.join(name)).unwrap() == *bytes,
            "{name} changed"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A `run`-style output folder where one sentence of the first interview was lost: its segment
/// is gone and an untranscribed span covers its time, as `run` writes when Whisper decodes
/// nothing for a stretch of speech. Returns the folder, the uri and the lost segment.
fn output_folder_with_lost_speech() -> (tempfile::TempDir, String, qualscribe::transcript::Segment)
{
    use qualscribe::transcript::{UntranscribedReason, UntranscribedSpan};
    let dir = tempfile::tempdir().unwrap();
    let mut transcripts = fixture_transcripts();
    let t = &mut transcripts[0];
    let lost = t.segments.remove(t.segments.len() / 2);
    for (id, s) in t.segments.iter_mut().enumerate() {
        s.id = id as u32;
    }
    t.untranscribed.push(UntranscribedSpan {
        start_ms: lost.start_ms,
        end_ms: lost.end_ms,
        reason: UntranscribedReason::NothingDecoded,
    });
    for t in &transcripts {
        export::write_all(t, dir.path(), &[export::Format::Json]).unwrap();
    }
    write_three_theme_analysis(dir.path(), &transcripts);
    (dir, transcripts[0].uri.clone(), lost)
}

#[test]
fn untranscribed_speech_is_shown_and_what_the_reviewer_types_reaches_the_exports() {
    let (output, uri, lost) = output_folder_with_lost_speech();
    let dir = tempfile::tempdir().unwrap();
    let mut p = Project::open(&dir.path().join("p.sqlite")).unwrap();
    p.import_output(output.path(), "tester").unwrap();

    // The transcript panel lists the span in time order, with its mark and times to play.
    let view = p.transcript_view(&uri).unwrap().unwrap();
    let at = view
        .segments
        .iter()
        .position(|s| s.inaudible.is_some())
        .expect("the untranscribed span is listed");
    let row = &view.segments[at];
    let mark = export::inaudible_mark_between(lost.start_ms, lost.end_ms);
    assert_eq!(row.inaudible.as_deref(), Some(mark.as_str()));
    assert_eq!(
        (row.start_ms, row.end_ms),
        (lost.start_ms as i64, lost.end_ms as i64)
    );
    assert_eq!(row.text, "");
    assert!(
        view.segments[..at]
            .iter()
            .all(|s| s.start_ms <= row.start_ms)
    );
    assert!(
        view.segments[at + 1..]
            .iter()
            .all(|s| s.start_ms >= row.end_ms)
    );
    let before_typing = export_txt(&p, &dir.path().join("before"), &uri);
    assert!(before_typing.contains(&mark), "{before_typing}");

    // The reviewer listens and types the sentence: it becomes a segment in its place.
    p.apply(
        &Action::EditSegment {
            segment: row.id,
            text: lost.text.clone(),
        },
        "ana",
    )
    .unwrap();
    let reviewed = p.reviewed_transcripts().unwrap();
    let t = reviewed.iter().find(|t| t.uri == uri).unwrap();
    assert!(
        t.untranscribed.is_empty(),
        "the typed span is no longer inaudible"
    );
    let typed = t.segments.iter().find(|s| s.text == lost.text).unwrap();
    assert_eq!((typed.start_ms, typed.end_ms), (lost.start_ms, lost.end_ms));
    assert_eq!(typed.words.len(), lost.text.split_whitespace().count());
    assert!(
        t.segments
            .windows(2)
            .all(|w| w[0].start_ms <= w[1].start_ms)
    );
    assert!(
        t.segments
            .iter()
            .enumerate()
            .all(|(i, s)| s.id as usize == i)
    );
    let view = p.transcript_view(&uri).unwrap().unwrap();
    assert!(view.segments[at].edited && view.segments[at].text == lost.text);

    let out = dir.path().join("reviewed");
    let txt = export_txt(&p, &out, &uri);
    assert!(
        txt.contains(&lost.text) && !txt.contains("[inaudible"),
        "{txt}"
    );
    // Passages around the typed sentence still code exactly their own words in the .qdpx.
    let coded = coded_texts(&out.join("project.qdpx"), &uri);
    let passages: Vec<String> = codes(&p.overview().unwrap())
        .into_iter()
        .filter(|c| c.status != "rejected" && c.status != "merged")
        .flat_map(|c| &c.passages)
        .filter(|pv| pv.uri == uri && !pv.text.is_empty())
        .map(|pv| pv.text.clone())
        .collect();
    assert!(!passages.is_empty());
    for text in &passages {
        assert!(
            coded.contains(text),
            "{text:?} not coded exactly in {coded:#?}"
        );
    }

    // Undo brings the mark back.
    p.undo("ana").unwrap();
    let again = export_txt(&p, &dir.path().join("undone"), &uri);
    assert!(
        again.contains(&mark) && !again.contains(&lost.text),
        "{again}"
    );
}

/// The reviewed TXT transcript of `uri`, exported into `out`.
fn export_txt(p: &Project, out: &Path, uri: &str) -> String {
    export_reviewed(p, out).unwrap();
    std::fs::read_to_string(out.join(format!("transcripts/{uri}.txt"))).unwrap()
}

/// The exact text of every coding on recording `uri` in the project file `qdpx`.
fn coded_texts(qdpx: &Path, uri: &str) -> Vec<String> {
    let project = qda::read_qdpx(qdpx).unwrap();
    let source = project.sources.iter().find(|s| s.name == uri).unwrap();
    project
        .codings
        .iter()
        .filter(|k| k.source_guid == source.guid)
        .map(|k| {
            source
                .text
                .chars()
                .skip(k.start)
                .take(k.end - k.start)
                .collect()
        })
        .collect()
}
