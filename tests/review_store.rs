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
        let mut transcripts = Vec::new();
        for i in 1..=3 {
            let name = format!("entrevista_exp{i}.transcript.json");
            let src = project("tests/fixtures/review").join(&name);
            std::fs::copy(&src, dir.path().join(&name)).unwrap();
            transcripts.push(export::read_transcript(&src).unwrap());
        }
        let mut cfg = AnalysisConfig::default();
        cfg.themes.themes = Some(3);
        let embedder = pipeline::load_text_embedder(&models_dir(), "e5").unwrap();
        let analysis = pipeline::analyse(&transcripts, &embedder, &cfg).unwrap();
        assert!(analysis.codebook.codes.len() >= 3, "fixture needs 3 codes");
        pipeline::write_analysis(
            dir.path(),
            &transcripts,
            &analysis,
            &[],
            &Default::default(),
        )
        .unwrap();
        dir
    })
    .path()
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

    let project = qda::read_qdpx(&out.join("project.qdpx")).unwrap();
    let source = project
        .sources
        .iter()
        .find(|s| s.name == passage.uri)
        .unwrap();
    let coded: Vec<String> = project
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
        .collect();
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
