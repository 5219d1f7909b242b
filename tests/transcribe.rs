//! Transcription on real models and real audio: accuracy (WER), word timing, silence,
//! language handling and determinism.

mod support;

use qualscribe::eval::{normalize_text_lang, word_error_rate};
use qualscribe::pipeline::{Engines, transcribe_file};
use qualscribe::transcript::Transcript;
use support::{base, config, corpus, one_at_a_time, tiny_en};

/// Corpus WER over FLEURS clips `lang`-000..009: (errors, reference words).
fn fleurs_wer(engines: &Engines, lang: &str) -> f64 {
    let mut errors = 0;
    let mut words = 0;
    for i in 0..10 {
        let audio = corpus(&format!("fleurs/fleurs-{lang}-{i:03}.ogg"));
        let reference = std::fs::read_to_string(audio.with_extension("txt")).unwrap();
        let t = transcribe_file(engines, &audio, &config(lang)).unwrap();
        let hyp = t.text();
        let r = word_error_rate(
            &normalize_text_lang(&reference, lang).join(" "),
            &normalize_text_lang(&hyp, lang).join(" "),
        );
        eprintln!("{lang}-{i:03}: WER {:.3}  hyp: {hyp}", r.wer());
        errors += r.substitutions + r.deletions + r.insertions;
        words += r.reference_words;
    }
    let wer = errors as f64 / words as f64;
    eprintln!("FLEURS {lang}: corpus WER {wer:.4} over {words} words");
    wer
}

fn assert_well_formed(t: &Transcript) {
    let duration = t.source.duration_ms;
    let mut last_start = 0;
    for s in &t.segments {
        assert!(
            s.start_ms <= s.end_ms,
            "segment {} ends before it starts",
            s.id
        );
        assert!(
            s.end_ms <= duration + 50,
            "segment {} ends after the audio",
            s.id
        );
        assert!(
            s.start_ms >= last_start,
            "segments out of order at {}",
            s.id
        );
        last_start = s.start_ms;
        assert!(!s.words.is_empty());
        let mut word_start = s.start_ms;
        for w in &s.words {
            assert!(w.start_ms >= word_start, "word `{}` out of order", w.text);
            assert!(
                w.start_ms <= w.end_ms,
                "word `{}` ends before it starts",
                w.text
            );
            assert!(
                w.start_ms >= s.start_ms && w.end_ms <= s.end_ms,
                "word `{}` outside its segment",
                w.text
            );
            assert!((0.0..=1.0).contains(&w.probability));
            word_start = w.start_ms;
        }
        let joined: Vec<&str> = s.words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(joined.join(" "), s.text, "segment text is its words");
    }
}

// Thresholds: measured corpus WER on these 10 clips per language with these models
// (2026-11: es/base 0.097, en/tiny.en 0.146, pt/base 0.185, greedy decoding) plus a margin of
// about 2.5–6.5 points for float noise across CPUs and SIMD paths. A real regression (wrong mel
// filters, wrong language, broken resampling or timeline mapping) moves WER by tens of points.

#[test]
fn spanish_fleurs_with_base_is_accurate() {
    let _one = one_at_a_time();
    let wer = fleurs_wer(base(), "es");
    assert!(wer < 0.12, "Spanish WER {wer:.3}");
}

#[test]
fn english_fleurs_with_tiny_en_is_accurate() {
    let _one = one_at_a_time();
    let wer = fleurs_wer(tiny_en(), "en");
    assert!(wer < 0.20, "English WER {wer:.3}");
}

#[test]
fn portuguese_fleurs_with_base_is_usable() {
    let _one = one_at_a_time();
    let wer = fleurs_wer(base(), "pt");
    assert!(wer < 0.25, "Portuguese WER {wer:.3}");
}

#[test]
fn spanish_is_detected_and_words_are_timed() {
    let _one = one_at_a_time();
    let t = transcribe_file(base(), &corpus("fleurs/fleurs-es-002.ogg"), &config("auto")).unwrap();
    assert_eq!(t.language.code, "es");
    assert!(t.language.detected);
    assert!(t.language.probability.unwrap() > 0.5);
    assert!(t.word_count() >= 15);
    assert_well_formed(&t);
    // Speech starts near the first VAD region, not at 0 by default.
    let first_word = &t.segments[0].words[0];
    let first_speech = t.speech[0];
    assert!(first_word.start_ms + 500 >= first_speech.start_ms);
}

#[test]
fn word_times_follow_the_reference_turns_of_a_long_recording() {
    // 129 s focus group with reference turn times: every segment must fall inside the audio,
    // and the first words of the participant ANA (13.3 s) must be timed near 13.3 s.
    let _one = one_at_a_time();
    let t = transcribe_file(
        base(),
        &corpus("grupo_focal_reparto/grupo_focal_01.wav"),
        &config("es"),
    )
    .unwrap();
    assert_well_formed(&t);
    let word = t
        .segments
        .iter()
        .flat_map(|s| &s.words)
        .find(|w| w.start_ms > 12_000 && normalize_text_lang(&w.text, "es") == ["lo"])
        .expect("ANA's `Lo primero que pienso` is transcribed");
    assert!(
        (word.start_ms as i64 - 13_334).abs() < 700,
        "`Lo` at {} ms",
        word.start_ms
    );
}

#[test]
fn silence_yields_no_words() {
    let _one = one_at_a_time();
    let t = transcribe_file(base(), &corpus("ami_clips/empty.wav"), &config("auto")).unwrap();
    assert!(t.speech.is_empty());
    assert_eq!(t.word_count(), 0);
}

#[test]
fn english_only_model_is_forced_to_english_and_refuses_spanish() {
    let _one = one_at_a_time();
    let clip = corpus("fleurs/fleurs-en-001.ogg");
    let t = transcribe_file(tiny_en(), &clip, &config("auto")).unwrap();
    assert_eq!(t.language.code, "en");
    assert!(!t.language.detected);
    let err = transcribe_file(tiny_en(), &clip, &config("es")).unwrap_err();
    assert!(err.to_string().contains("English-only"), "{err}");
}

#[test]
fn same_input_gives_identical_transcript() {
    let _one = one_at_a_time();
    let clip = corpus("fleurs/fleurs-en-003.ogg");
    let a = transcribe_file(tiny_en(), &clip, &config("en")).unwrap();
    let b = transcribe_file(tiny_en(), &clip, &config("en")).unwrap();
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}
