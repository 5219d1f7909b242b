//! Nothing said is lost (issue 11): a long recording of real speech, joined from FLEURS
//! sentences with pauses of different lengths, must come out with every sentence in it, and
//! no text in its pauses; recordings without speech must come out without text.

mod support;

use qualscribe::audio;
use qualscribe::eval::longform;
use qualscribe::pipeline::{Engines, transcribe_file};
use qualscribe::transcript::{Transcript, Word};
use support::{base, config, corpus, one_at_a_time, project, tiny_en};

fn words(t: &Transcript) -> Vec<Word> {
    t.segments.iter().flat_map(|s| s.words.clone()).collect()
}

/// FLEURS `lang` clips `ids`, joined with `pauses_ms` before each, written to a temporary WAV.
fn long_recording(
    lang: &str,
    ids: &[usize],
    pauses_ms: &[u64],
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    Vec<longform::Utterance>,
) {
    let clips: Vec<(Vec<f32>, String)> = ids
        .iter()
        .map(|i| {
            let path = corpus(&format!("fleurs/fleurs-{lang}-{i:03}.ogg"));
            let text = std::fs::read_to_string(path.with_extension("txt")).unwrap();
            (audio::decode_file(&path).unwrap().samples, text)
        })
        .collect();
    let (mut samples, utterances) = longform::concatenate(&clips, pauses_ms);
    samples.resize(samples.len() + 16_000, 0.0);
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join(format!("{lang}-long.wav"));
    audio::write_wav_16k(&wav, &samples).unwrap();
    (dir, wav, utterances)
}

fn assert_nothing_lost(engines: &Engines, lang: &str, ids: &[usize], pauses_ms: &[u64]) {
    let (_dir, wav, utterances) = long_recording(lang, ids, pauses_ms);
    let t = transcribe_file(engines, &wav, &config(lang)).unwrap();
    let s = longform::score(&utterances, &words(&t), lang);
    for u in &s.utterances {
        eprintln!(
            "#{} {:.1}-{:.1}s WER {:.2}{}: {}",
            u.index,
            u.start_ms as f64 / 1000.0,
            u.end_ms as f64 / 1000.0,
            u.wer.wer(),
            if u.missing { " MISSING" } else { "" },
            u.hypothesis
        );
    }
    eprintln!(
        "{lang}: WER {:.3} over {} words; untranscribed {:?}",
        s.total.wer(),
        s.total.reference_words,
        t.untranscribed
    );
    let missing: Vec<usize> = s.missing().map(|u| u.index).collect();
    assert!(missing.is_empty(), "utterances lost: {missing:?}");
    assert!(
        s.invented_words.is_empty(),
        "text in the pauses: {:?}",
        s.invented_words
    );
}

#[test]
fn no_sentence_of_a_long_spanish_recording_is_lost() {
    let _one = one_at_a_time();
    // Ten sentences (about 2 minutes): long and short pauses, so regions are glued into
    // windows with several sentences each and sentences fall on window seams.
    assert_nothing_lost(
        base(),
        "es",
        &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        &[1_000, 300, 2_500, 150, 4_000, 600, 200, 3_000, 400, 1_200],
    );
}

#[test]
fn no_sentence_of_a_long_english_recording_is_lost() {
    let _one = one_at_a_time();
    assert_nothing_lost(
        tiny_en(),
        "en",
        &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        &[500, 2_000, 200, 3_500, 300, 1_000, 150, 2_500, 600, 250],
    );
}

/// Deterministic noise: white, then brown (integrated white, louder at low frequencies), then a
/// mains hum with clicks, 20 s each.
fn noises() -> Vec<f32> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut white = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    };
    let n = 20 * 16_000;
    let mut out: Vec<f32> = (0..n).map(|_| 0.05 * white()).collect();
    let mut brown = 0.0f32;
    out.extend((0..n).map(|_| {
        brown = (brown + 0.02 * white()).clamp(-1.0, 1.0) * 0.999;
        0.3 * brown
    }));
    out.extend((0..n).map(|i| {
        let t = i as f32 / 16_000.0;
        let click = if i % 7_919 < 8 { 0.4 } else { 0.0 };
        0.1 * (2.0 * std::f32::consts::PI * 50.0 * t).sin() + click
    }));
    out
}

/// Also 4 s of hold music (tests/fixtures) where base wrote "y" (p 0.93) into a 380 ms blip
/// that only a Silero model started afresh after a pause hears as speech.
#[test]
fn noise_and_silence_yield_no_words() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let noise = dir.path().join("noise.wav");
    audio::write_wav_16k(&noise, &noises()).unwrap();
    let music = project("tests/fixtures/moh-macroform-robot_dity_4s_8k.wav");
    for clip in [noise, corpus("ami_clips/empty.wav"), music] {
        let t = transcribe_file(base(), &clip, &config("es")).unwrap();
        assert_eq!(
            t.text(),
            "",
            "{} gave words (speech regions {:?})",
            clip.display(),
            t.speech
        );
    }
}
