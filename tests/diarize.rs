//! Speaker diarization on real audio with the installed CAM++ model (`qualscribe models fetch
//! --model speaker`): speaker counts, DER against the corpus references, bad input, determinism,
//! word attribution on a real transcript, and speed.
//!
//! DER is pyannote's (see `eval::der`), overlap scored, collar 0.25 s total (±0.125 s) and 0.
//! Thresholds were set from measured values with a stated margin; each says what was measured.
//! Run with `--nocapture` to see the per-file numbers.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use qualscribe::diarize::{
    self, Diarization, DiarizeConfig, DiarizeError, Method, SpeakerEmbedder, attribute, diarize,
    to_rttm_turns,
};
use qualscribe::eval::der::{DerOptions, DerReport, diarization_error, total};
use qualscribe::eval::rttm::{Turn, read_rttm, read_uem};
use qualscribe::models;
use qualscribe::pipeline::{TranscribeConfig, transcribe_file};
use qualscribe::transcript::SpeechRegion;
use qualscribe::vad::{Vad, VadConfig};
use support::{corpus, models_dir, one_at_a_time, speaker_and_segmentation, tiny_en};

/// The speaker model with the segmentation model: the default recipe needs both.
fn embedder() -> &'static SpeakerEmbedder {
    speaker_and_segmentation()
}

fn vad() -> &'static Vad {
    static V: OnceLock<Vad> = OnceLock::new();
    V.get_or_init(|| Vad::load(&models::resolve_vad(&models_dir()).unwrap()).unwrap())
}

fn stem(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

/// Decoded samples and their speech regions (default VAD settings).
fn speech_of(path: &Path) -> (Vec<f32>, Vec<SpeechRegion>) {
    let audio = qualscribe::audio::decode_file(path).unwrap();
    let speech = vad().detect(&audio.samples, &VadConfig::default()).unwrap();
    (audio.samples, speech)
}

fn run(path: &Path, cfg: &DiarizeConfig) -> Diarization {
    let (samples, speech) = speech_of(path);
    diarize(embedder(), &stem(path), &samples, &speech, cfg).unwrap()
}

/// DER with collar 0.25 and 0 of each file (and their total) against the references.
struct Scores {
    collar: BTreeMap<String, DerReport>,
    strict: BTreeMap<String, DerReport>,
}

impl Scores {
    fn totals(&self) -> (f64, f64) {
        (total(&self.collar).der(), total(&self.strict).der())
    }

    fn print(&self, set: &str) {
        for (uri, r) in &self.collar {
            eprintln!(
                "{set} {uri}: DER {:.1} % (collar 0.25), {:.1} % (no collar); missed {:.1} s, false alarm {:.1} s, confusion {:.1} s of {:.1} s",
                100.0 * r.der(),
                100.0 * self.strict[uri].der(),
                r.missed_s,
                r.false_alarm_s,
                r.confusion_s,
                r.total_s
            );
        }
        let (c, s) = self.totals();
        eprintln!(
            "{set} TOTAL: DER {:.1} % (collar 0.25), {:.1} % (no collar)",
            100.0 * c,
            100.0 * s
        );
    }
}

fn score(reference: &[Turn], hypothesis: &[Turn], uem: Option<&Path>) -> Scores {
    let uem = uem.map(|p| read_uem(p).unwrap());
    let der = |collar_s| {
        let opts = DerOptions {
            collar_s,
            skip_overlap: false,
        };
        diarization_error(reference, hypothesis, uem.as_deref(), &opts)
    };
    Scores {
        collar: der(0.25),
        strict: der(0.0),
    }
}

fn reference_speakers(reference: &[Turn], uri: &str) -> usize {
    let mut names: Vec<&str> = reference
        .iter()
        .filter(|t| t.uri == uri)
        .map(|t| t.speaker.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    names.len()
}

#[test]
fn focus_group_has_five_speakers_and_low_der() {
    let _one = one_at_a_time();
    let wav = corpus("grupo_focal_reparto/grupo_focal_01.wav");
    let d = run(&wav, &DiarizeConfig::default());
    let reference = read_rttm(&wav.with_extension("rttm")).unwrap();
    let scores = score(&reference, &to_rttm_turns(&d), None);
    scores.print("focus group");
    // CAM++ hears two of these synthetic (espeak) voices as one: measured 4 of 5 (GE2E found
    // all 5, DER 4.0 %).
    assert!(d.speakers.len() >= 4, "{:?}", d.speakers);
    let (collar, strict) = scores.totals();
    // Measured 25.0 % / 27.7 % (missed 3.2 %, confusion 21.7 %); margin +4 pts.
    assert!(collar < 0.29, "DER {collar}");
    assert!(strict < 0.32, "DER {strict}");
}

#[test]
fn interviews_have_two_speakers() {
    let _one = one_at_a_time();
    let mut reference = Vec::new();
    let mut hypothesis = Vec::new();
    let mut two = 0;
    for i in 1..=7 {
        let wav = corpus(&format!("entrevistas_apc/entrevista_exp{i}.wav"));
        let d = run(&wav, &DiarizeConfig::default());
        assert!(
            (1..=2).contains(&d.speakers.len()),
            "{}: {:?}",
            d.uri,
            d.speakers
        );
        two += usize::from(d.speakers.len() == 2);
        reference.extend(read_rttm(&wav.with_extension("rttm")).unwrap());
        hypothesis.extend(to_rttm_turns(&d));
    }
    // Measured 6 of 7: in exp2 the two synthetic voices are as alike to CAM++ (0.69) as one
    // voice to itself (0.76), so they merge. GE2E separated all 7.
    assert!(two >= 6, "{two}/7");
    let scores = score(&reference, &hypothesis, None);
    scores.print("interviews");
    let (collar, strict) = scores.totals();
    // Measured 4.8 % / 6.5 % in total (missed 0.8 %, confusion 4.0 %: exp2); margin +2 pts.
    assert!(collar < 0.07, "DER {collar}");
    assert!(strict < 0.085, "DER {strict}");
}

#[test]
fn pyannote_sample_has_two_speakers() {
    let _one = one_at_a_time();
    let wav = corpus("pyannote_sample/sample.wav");
    let d = run(&wav, &DiarizeConfig::default());
    let reference = read_rttm(&wav.with_extension("rttm")).unwrap();
    let scores = score(&reference, &to_rttm_turns(&d), None);
    scores.print("pyannote sample");
    assert_eq!(d.speakers.len(), 2, "{:?}", d.speakers);
    let (collar, strict) = scores.totals();
    // Measured 9.0 % / 15.6 % (missed 4.0 %, confusion 4.9 %; GE2E: 11.6 % / 19.4 %);
    // margin +4 pts.
    assert!(collar < 0.13, "DER {collar}");
    assert!(strict < 0.20, "DER {strict}");
}

const AMI_CLIPS: [&str; 14] = [
    "dev00", "dev01", "trn00", "trn01", "trn02", "trn03", "trn04", "trn05", "trn06", "trn07",
    "trn08", "trn09", "tst00", "tst01",
];

#[test]
fn ami_meeting_clips_der() {
    let _one = one_at_a_time();
    let reference = read_rttm(&corpus("ami_clips/reference.rttm")).unwrap();
    let mut hypothesis = Vec::new();
    let mut right_count = 0;
    for uri in AMI_CLIPS {
        let d = run(
            &corpus(&format!("ami_clips/{uri}.wav")),
            &DiarizeConfig::default(),
        );
        let expected = reference_speakers(&reference, uri);
        eprintln!(
            "ami {uri}: {} speakers found, {expected} in the reference",
            d.speakers.len()
        );
        right_count += usize::from(d.speakers.len() == expected);
        hypothesis.extend(to_rttm_turns(&d));
    }
    let scores = score(
        &reference,
        &hypothesis,
        Some(&corpus("ami_clips/reference.uem")),
    );
    scores.print("ami");
    eprintln!("ami: speaker count right in {right_count}/14 clips");
    let (collar, strict) = scores.totals();
    // Measured 41.6 % / 47.1 % (GE2E: 46.1 % / 51.7 %): 24 % of the reference speech is
    // overlap and the VAD misses another ~13 % of these quiet clips (missed 36.9 % in all);
    // confusion 4.6 % (GE2E 9.1 %). Half of these clips tuned the threshold, so this is a
    // regression guard, not a claim (held-out half: scripts/bench-diarize.sh); margin +5 pts.
    assert!(collar < 0.47, "DER {collar}");
    assert!(strict < 0.53, "DER {strict}");
}

#[test]
fn silence_gives_no_turns() {
    let d = run(&corpus("ami_clips/empty.wav"), &DiarizeConfig::default());
    assert!(d.turns.is_empty() && d.speakers.is_empty(), "{d:?}");
    // Even without the VAD: a region of pure silence must not invent speakers beyond one.
    let (samples, _) = speech_of(&corpus("ami_clips/empty.wav"));
    let all = [SpeechRegion {
        start_ms: 0,
        end_ms: samples.len() as u64 / 16,
    }];
    let d = diarize(
        embedder(),
        "empty",
        &samples,
        &all,
        &DiarizeConfig::default(),
    )
    .unwrap();
    assert!(d.speakers.len() <= 1, "{:?}", d.speakers);
}

#[test]
fn one_speaker_clips_give_one_speaker() {
    let _one = one_at_a_time();
    let mut right = 0;
    for lang in ["es", "en", "pt", "fr", "de"] {
        for i in 0..10 {
            let clip = format!("fleurs-{lang}-{i:03}");
            let d = run(
                &corpus(&format!("fleurs/{clip}.ogg")),
                &DiarizeConfig::default(),
            );
            assert!(!d.speakers.is_empty(), "{clip}: speech but no speaker");
            assert!(d.turns.iter().all(|t| !t.overlap && t.start_ms < t.end_ms));
            if d.speakers.len() == 1 {
                right += 1;
            } else {
                eprintln!("{clip}: {} speakers", d.speakers.len());
            }
        }
    }
    eprintln!("FLEURS: one speaker found in {right}/50 one-speaker clips");
    // Measured 50/50 (GE2E: 48/50, fr-009 and de-009 split in two); margin 2 clips.
    assert!(right >= 48, "{right}/50");
    // The Spanish clips, the product's main language, all come out right.
    for i in 0..10 {
        let d = run(
            &corpus(&format!("fleurs/fleurs-es-{i:03}.ogg")),
            &DiarizeConfig::default(),
        );
        assert_eq!(d.speakers.len(), 1, "es-{i:03}: {:?}", d.speakers);
    }
}

#[test]
fn a_one_second_clip_works() {
    let (samples, _) = speech_of(&corpus("fleurs/fleurs-es-000.ogg"));
    let one_second = &samples[16_000..32_000];
    let speech = vad().detect(one_second, &VadConfig::default()).unwrap();
    let d = diarize(
        embedder(),
        "short",
        one_second,
        &speech,
        &DiarizeConfig::default(),
    )
    .unwrap();
    assert!(d.speakers.len() <= 1, "{:?}", d.speakers);
    for t in &d.turns {
        assert!(t.end_ms <= 1000, "{t:?}");
    }
    // Fewer samples than one frame, and regions past the end of the audio.
    let far = [SpeechRegion {
        start_ms: 0,
        end_ms: 60_000,
    }];
    let d = diarize(
        embedder(),
        "tiny",
        &one_second[..100],
        &far,
        &DiarizeConfig::default(),
    );
    assert!(d.is_ok());
}

#[test]
fn bad_settings_are_refused_with_one_clear_line() {
    let (samples, speech) = speech_of(&corpus("fleurs/fleurs-es-000.ogg"));
    let try_with = |cfg: DiarizeConfig| diarize(embedder(), "x", &samples, &speech, &cfg);
    let e = try_with(DiarizeConfig {
        num_speakers: Some(0),
        ..DiarizeConfig::default()
    })
    .unwrap_err();
    assert!(matches!(e, DiarizeError::ZeroSpeakers), "{e}");
    let e = try_with(DiarizeConfig {
        min_speakers: 4,
        max_speakers: 2,
        ..DiarizeConfig::default()
    })
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "the minimum number of speakers (4) is greater than the maximum (2)"
    );
    assert!(!e.contains('\n'));
}

#[test]
fn fixed_and_bounded_speaker_counts_are_obeyed() {
    let _one = one_at_a_time();
    let wav = corpus("grupo_focal_reparto/grupo_focal_01.wav");
    let (samples, speech) = speech_of(&wav);
    let windows = embedder()
        .embed_windows(&samples, &speech, DiarizeConfig::default().step_ms)
        .unwrap();
    let count = |cfg: DiarizeConfig| {
        diarize::diarize_windows("g", &speech, &windows, &cfg, embedder().model_sha256())
            .unwrap()
            .speakers
            .len()
    };
    for k in [2, 3, 5, 7] {
        let cfg = DiarizeConfig {
            num_speakers: Some(k),
            ..DiarizeConfig::default()
        };
        assert_eq!(count(cfg), k, "num_speakers {k}");
    }
    let at_most_three = DiarizeConfig {
        max_speakers: 3,
        ..DiarizeConfig::default()
    };
    assert_eq!(count(at_most_three), 3);
    let at_least_six = DiarizeConfig {
        min_speakers: 6,
        ..DiarizeConfig::default()
    };
    assert_eq!(count(at_least_six), 6);
}

#[test]
fn same_input_gives_identical_json() {
    let wav = corpus("pyannote_sample/sample.wav");
    let a = serde_json::to_string(&run(&wav, &DiarizeConfig::default())).unwrap();
    let b = serde_json::to_string(&run(&wav, &DiarizeConfig::default())).unwrap();
    assert_eq!(a, b);
    let back: Diarization = serde_json::from_str(&a).unwrap();
    assert_eq!(back.schema, diarize::SCHEMA_NAME);
    assert_eq!(back.settings.model_sha256, embedder().model_sha256());
    // Speakers are numbered by first appearance.
    let first: Vec<&str> =
        back.turns
            .iter()
            .map(|t| t.speaker.as_str())
            .fold(Vec::new(), |mut seen, s| {
                if !seen.contains(&s) {
                    seen.push(s);
                }
                seen
            });
    assert_eq!(first, ["SPEAKER_00", "SPEAKER_01"]);
}

/// Reference turns from an `.stm` (`uri 1 speaker start end text`).
fn stm_turns(path: &Path) -> Vec<Turn> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() >= 5).then(|| Turn {
                uri: f[0].to_string(),
                speaker: f[2].to_string(),
                start_s: f[3].parse().unwrap(),
                end_s: f[4].parse().unwrap(),
            })
        })
        .collect()
}

#[test]
fn attribute_gives_every_word_one_speaker_and_splits_segments() {
    let _one = one_at_a_time();
    let wav: PathBuf = corpus("pyannote_sample/sample.wav");
    let transcript = transcribe_file(tiny_en(), &wav, &TranscribeConfig::default()).unwrap();
    let d = run(&wav, &DiarizeConfig::default());
    let out = attribute(&transcript, &d);

    assert_eq!(out.word_count(), transcript.word_count());
    let names: Vec<&str> = d.speakers.iter().map(|s| s.display_name()).collect();
    for (i, s) in out.segments.iter().enumerate() {
        assert_eq!(s.id as usize, i);
        let speaker = s.speaker.as_deref().expect("every segment has a speaker");
        assert!(names.contains(&speaker), "{speaker}");
        let joined: Vec<&str> = s.words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(s.text, joined.join(" "));
        assert!(
            s.words
                .iter()
                .all(|w| w.start_ms >= s.start_ms && w.end_ms <= s.end_ms)
        );
    }
    assert!(out.segments.len() >= transcript.segments.len());

    // Word-level speaker accuracy against the reference transcript, under the speaker mapping
    // that DER finds optimal.
    let reference = stm_turns(&corpus("pyannote_sample/sample.stm"));
    let report =
        &diarization_error(&reference, &to_rttm_turns(&d), None, &DerOptions::default())["sample"];
    let mapping: BTreeMap<&str, &str> = report
        .mapping
        .iter()
        .filter_map(|(h, r)| Some((h.as_str(), r.as_deref()?)))
        .collect();
    let (mut right, mut scored) = (0, 0);
    for s in &out.segments {
        for w in &s.words {
            let mid = (w.start_ms + w.end_ms) as f64 / 2000.0;
            let truth = reference
                .iter()
                .filter(|t| t.start_s <= mid && mid < t.end_s)
                .map(|t| t.speaker.as_str())
                .collect::<Vec<_>>();
            if truth.len() != 1 {
                continue; // silence or overlapped reference speech: no single truth
            }
            scored += 1;
            right += usize::from(mapping.get(s.speaker.as_deref().unwrap()) == Some(&truth[0]));
        }
    }
    let accuracy = right as f64 / scored as f64;
    eprintln!("pyannote sample: word speaker accuracy {accuracy:.3} ({right}/{scored})");
    // Measured 0.862 (56/65 words; the errors sit at speaker changes); margin 6 pts.
    assert!(accuracy > 0.80, "{accuracy}");
}

#[test]
fn missing_or_damaged_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = models::resolve_speaker(dir.path()).unwrap_err().to_string();
    assert!(e.contains("qualscribe models fetch --model speaker"), "{e}");
    let bad = dir.path().join(models::SPEAKER_FILE);
    std::fs::write(&bad, b"not safetensors").unwrap();
    let e = SpeakerEmbedder::load(&bad).unwrap_err();
    assert!(matches!(e, DiarizeError::ModelUnreadable { .. }), "{e}");
    assert!(e.to_string().contains("--model speaker"), "{e}");
}

fn segmentation_cfg() -> DiarizeConfig {
    DiarizeConfig {
        method: Method::Segmentation,
        ..Default::default()
    }
}

#[test]
fn segmentation_on_the_pyannote_sample() {
    let _one = one_at_a_time();
    let wav = corpus("pyannote_sample/sample.wav");
    let audio = qualscribe::audio::decode_file(&wav).unwrap();
    let d = diarize(
        speaker_and_segmentation(),
        "sample",
        &audio.samples,
        &[],
        &segmentation_cfg(),
    )
    .unwrap();
    let reference = read_rttm(&wav.with_extension("rttm")).unwrap();
    let scores = score(&reference, &to_rttm_turns(&d), None);
    scores.print("pyannote sample, segmentation");
    assert_eq!(d.speakers.len(), 2, "{:?}", d.speakers);
    let (collar, strict) = scores.totals();
    // Measured 1.5 % / 6.0 % (windows recipe: 9.0 % / 15.6 %); margin +3 pts.
    assert!(collar < 0.045, "DER {collar}");
    assert!(strict < 0.09, "DER {strict}");
}

/// Where two or more of `turns` (of different speakers) overlap, as disjoint sorted intervals
/// in seconds.
fn overlapped(turns: &[Turn]) -> Vec<(f64, f64)> {
    let mut pairs = Vec::new();
    for (i, a) in turns.iter().enumerate() {
        for b in &turns[i + 1..] {
            let (s, e) = (a.start_s.max(b.start_s), a.end_s.min(b.end_s));
            if a.speaker != b.speaker && e > s {
                pairs.push((s, e));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<(f64, f64)> = Vec::new();
    for (s, e) in pairs {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

fn intersection(a: &[(f64, f64)], b: &[(f64, f64)]) -> f64 {
    a.iter()
        .flat_map(|x| {
            b.iter()
                .map(move |y| (x.1.min(y.1) - x.0.max(y.0)).max(0.0))
        })
        .sum()
}

#[test]
fn segmentation_finds_overlapping_speech_on_a_real_meeting() {
    let _one = one_at_a_time();
    let wav = corpus("ami_clips/tst00.wav");
    let audio = qualscribe::audio::decode_file(&wav).unwrap();
    // No VAD regions: with segmentation, speech comes from the segmentation model.
    let d = diarize(
        speaker_and_segmentation(),
        "tst00",
        &audio.samples,
        &[],
        &segmentation_cfg(),
    )
    .unwrap();
    let rttm = to_rttm_turns(&d);
    let found = overlapped(&rttm);
    let reference: Vec<Turn> = read_rttm(&corpus("ami_clips/reference.rttm"))
        .unwrap()
        .into_iter()
        .filter(|t| t.uri == "tst00")
        .collect();
    let truth = overlapped(&reference);
    let found_s: f64 = found.iter().map(|(s, e)| e - s).sum();
    let right_s = intersection(&found, &truth);
    eprintln!(
        "tst00: {} speakers, {found_s:.1} s overlapped in the RTTM, {right_s:.1} s of it overlapped in the reference ({:.1} s there)",
        d.speakers.len(),
        truth.iter().map(|(s, e)| e - s).sum::<f64>()
    );
    assert!(d.speakers.len() >= 2, "{:?}", d.speakers);
    // Overlapped turns are marked, and both speakers' turns cover the overlapped time.
    assert!(d.turns.iter().any(|t| t.overlap));
    assert!(d.turns.iter().all(|t| t.start_ms < t.end_ms));
    // Measured: 11.8 s overlapped in the RTTM, 11.4 s of it (97 %) overlapped in the reference,
    // which has 17.8 s (5 speakers found, 4 in the reference). Margins: 8 s and 85 %.
    assert!(found_s >= 8.0, "{found_s} s overlapped");
    assert!(right_s >= 0.85 * found_s, "{right_s} of {found_s} s");
}

#[test]
fn segmentation_that_hears_no_speech_falls_back_to_the_windows() {
    let _one = one_at_a_time();
    // AMI trn01: four people, short quiet utterances. Segmentation hears none of them; with a
    // lower VAD threshold (0.35, as a user may set) the VAD hears two, and Whisper would
    // transcribe them, so those words need a speaker.
    let wav = corpus("ami_clips/trn01.wav");
    let audio = qualscribe::audio::decode_file(&wav).unwrap();
    let vad_cfg = VadConfig {
        threshold: 0.35,
        ..VadConfig::default()
    };
    let speech = vad().detect(&audio.samples, &vad_cfg).unwrap();
    assert!(!speech.is_empty(), "the VAD hears speech in trn01 at 0.35");
    let d = diarize(
        speaker_and_segmentation(),
        "trn01",
        &audio.samples,
        &speech,
        &segmentation_cfg(),
    )
    .unwrap();
    eprintln!("trn01: {:?} {:?}", d.turns, d.settings.fallback);
    // Measured: the windows recipe ran and gave each of the two regions a speaker.
    assert_eq!(d.settings.method, Some(Method::Windows));
    assert!(d.settings.fallback.is_some());
    assert_eq!(
        d.settings.segment_threshold, None,
        "the windows recipe's settings only"
    );
    assert!(!d.speakers.is_empty());
    for r in &speech {
        assert!(
            d.turns
                .iter()
                .any(|t| t.start_ms < r.end_ms && r.start_ms < t.end_ms),
            "VAD region {r:?} has no speaker turn: {:?}",
            d.turns
        );
    }
    // Where segmentation hears the speech (the pyannote sample: 99 % of the VAD's), it is kept.
    let (samples, speech) = speech_of(&corpus("pyannote_sample/sample.wav"));
    let d = diarize(
        speaker_and_segmentation(),
        "sample",
        &samples,
        &speech,
        &segmentation_cfg(),
    )
    .unwrap();
    assert_eq!(d.settings.method, Some(Method::Segmentation));
    assert_eq!(d.settings.fallback, None);
    // The segmentation recipe's own settings are recorded, so a saved result says how it was made.
    let cfg = segmentation_cfg();
    assert_eq!(d.settings.segment_threshold, Some(cfg.segment_threshold));
    assert_eq!(d.settings.split_margin, cfg.split_margin);
    assert_eq!(d.settings.split_min_pieces, Some(cfg.split_min_pieces));
    assert_eq!(d.settings.segment_merge_above, cfg.segment_merge_above);
    assert!(diarize::vad_speech_share(&d, &speech).is_some_and(|s| s > 0.95));
}
