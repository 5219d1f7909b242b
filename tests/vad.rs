//! Voice activity detection on real audio with the installed Silero model
//! (`qualscribe models fetch` puts it in `models::default_models_dir()`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use qualscribe::models::{VAD_FILE, default_models_dir};
use qualscribe::transcript::SpeechRegion;
use qualscribe::vad::{CHUNK_SAMPLES, Vad, VadConfig, VadError, compact_speech};

fn vad() -> &'static Vad {
    static VAD: OnceLock<Vad> = OnceLock::new();
    VAD.get_or_init(|| {
        let path = default_models_dir().join(VAD_FILE);
        Vad::load(&path).unwrap_or_else(|err| panic!("{err}"))
    })
}

fn corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus")
        .join(rel)
}

/// Reads a 16 kHz mono 16-bit WAV from the shared corpus.
fn read_wav(rel: &str) -> Vec<f32> {
    let mut reader = hound::WavReader::open(corpus(rel)).expect("corpus wav");
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (16_000, 1, 16)
    );
    reader
        .samples::<i16>()
        .map(|s| f32::from(s.expect("sample")) / 32768.0)
        .collect()
}

fn duration_ms(samples: &[f32]) -> u64 {
    samples.len() as u64 / 16
}

fn speech_ms(regions: &[SpeechRegion]) -> u64 {
    regions.iter().map(|r| r.end_ms - r.start_ms).sum()
}

fn assert_well_formed(regions: &[SpeechRegion], duration_ms: u64) {
    for r in regions {
        assert!(r.start_ms < r.end_ms, "empty region {r:?}");
        assert!(
            r.end_ms <= duration_ms,
            "{r:?} ends past the audio ({duration_ms} ms)"
        );
    }
    for pair in regions.windows(2) {
        assert!(
            pair[0].end_ms <= pair[1].start_ms,
            "unsorted or overlapping: {pair:?}"
        );
    }
}

/// Reference speech turns `(start_ms, end_ms)` from an RTTM file.
fn rttm_turns(rel: &str) -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string(corpus(rel)).expect("rttm");
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let start: f64 = fields.get(3)?.parse().ok()?;
            let len: f64 = fields.get(4)?.parse().ok()?;
            Some((
                (start * 1000.0).round() as u64,
                ((start + len) * 1000.0).round() as u64,
            ))
        })
        .collect()
}

/// Milliseconds of `a` that are also in `b`.
fn overlap_ms(a: &[(u64, u64)], b: &[SpeechRegion]) -> u64 {
    a.iter()
        .flat_map(|&(s, e)| {
            b.iter()
                .map(move |r| e.min(r.end_ms).saturating_sub(s.max(r.start_ms)))
        })
        .sum()
}

#[test]
fn silence_has_no_speech() {
    let samples = read_wav("ami_clips/empty.wav");
    let regions = vad()
        .detect(&samples, &VadConfig::default())
        .expect("detect");
    assert!(regions.is_empty(), "{regions:?}");
}

/// Hold music (tests/fixtures): a model started afresh after a pause hears a 380 ms blip that
/// silero-vad's own pass does not. The blip stays a speech region (the speaker stage sees what
/// the VAD heard) but is set apart: words Whisper writes there are dropped.
#[test]
fn a_music_blip_only_a_fresh_model_hears_is_set_apart() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/moh-macroform-robot_dity_4s_8k.wav");
    let samples = qualscribe::audio::decode_file(&path)
        .expect("fixture")
        .samples;
    let detected = vad()
        .detect_speech(&samples, &VadConfig::default())
        .expect("detect");
    assert!(!detected.regions.is_empty(), "the blip is no longer heard");
    assert_eq!(detected.brief_fresh_only, detected.regions);
}

#[test]
fn empty_and_tiny_inputs_do_not_fail() {
    let cfg = VadConfig::default();
    assert!(vad().probabilities(&[]).expect("empty").is_empty());
    assert!(vad().detect(&[], &cfg).expect("empty").is_empty());
    let tiny = vec![0.1f32; 300];
    assert_eq!(vad().probabilities(&tiny).expect("tiny").len(), 1);
    assert!(vad().detect(&tiny, &cfg).expect("tiny").is_empty());
}

#[test]
fn one_probability_per_chunk() {
    let samples = read_wav("ami_clips/dev00.wav");
    let probs = vad().probabilities(&samples).expect("probabilities");
    assert_eq!(probs.len(), samples.len().div_ceil(CHUNK_SAMPLES));
    assert!(probs.iter().all(|p| (0.0..=1.0).contains(p)));
}

#[test]
fn meeting_clip_is_mostly_speech() {
    let samples = read_wav("ami_clips/dev00.wav");
    let regions = vad()
        .detect(&samples, &VadConfig::default())
        .expect("detect");
    let duration = duration_ms(&samples);
    assert_well_formed(&regions, duration);
    assert!(speech_ms(&regions) * 10 > duration * 6, "{regions:?}");
}

#[test]
fn interview_regions_match_reference_turns() {
    let samples = read_wav("entrevistas_apc/entrevista_exp1.wav");
    let regions = vad()
        .detect(&samples, &VadConfig::default())
        .expect("detect");
    assert_well_formed(&regions, duration_ms(&samples));
    let turns = rttm_turns("entrevistas_apc/entrevista_exp1.rttm");
    let reference_ms: u64 = turns.iter().map(|(s, e)| e - s).sum();
    let found = overlap_ms(&turns, &regions);
    // Recall: nearly all reference speech is found; precision: little else is.
    assert!(
        found * 100 > reference_ms * 95,
        "found {found} of {reference_ms} ms"
    );
    assert!(
        found * 100 > speech_ms(&regions) * 85,
        "found {found} in {regions:?}"
    );
}

#[test]
fn speech_placed_at_known_offset_is_found_there() {
    // The first interviewer turn (0.500–3.454 s in the reference) placed after 4 s of silence.
    let interview = read_wav("entrevistas_apc/entrevista_exp1.wav");
    let turn = &interview[500 * 16..3454 * 16];
    let offset_ms = 4000;
    let mut samples = vec![0.0f32; offset_ms as usize * 16];
    samples.extend_from_slice(turn);
    samples.extend(std::iter::repeat_n(0.0, 2000 * 16));

    let regions = vad()
        .detect(&samples, &VadConfig::default())
        .expect("detect");
    assert_well_formed(&regions, duration_ms(&samples));
    let first = regions.first().expect("speech found");
    let last = regions.last().expect("speech found");
    assert!(first.start_ms.abs_diff(offset_ms) <= 100, "{regions:?}");
    assert!(last.end_ms.abs_diff(offset_ms + 2954) <= 150, "{regions:?}");
}

#[test]
fn compacted_speech_keeps_the_speech() {
    let samples = read_wav("entrevistas_apc/entrevista_exp1.wav");
    let regions = vad()
        .detect(&samples, &VadConfig::default())
        .expect("detect");
    let (compact, timeline) = compact_speech(&samples, &regions, 200);
    let gaps = 200 * (regions.len() as u64 - 1);
    assert_eq!(compact.len() as u64, (speech_ms(&regions) + gaps) * 16);
    // Every region's start and end map back exactly.
    for (piece, region) in timeline.pieces().iter().zip(&regions) {
        assert_eq!(
            timeline.to_original_ms(piece.compact_start_ms),
            region.start_ms
        );
        assert_eq!(
            timeline.to_original_ms(piece.compact_start_ms + piece.len_ms),
            region.end_ms
        );
    }
    // The compacted audio still holds speech almost everywhere.
    let again = vad()
        .detect(&compact, &VadConfig::default())
        .expect("detect");
    assert!(
        speech_ms(&again) * 10 > duration_ms(&compact) * 8,
        "{again:?}"
    );
}

#[test]
fn threads_can_share_one_model() {
    let samples = read_wav("ami_clips/dev01.wav");
    let alone = vad().probabilities(&samples).expect("probabilities");
    let together: Vec<Vec<f32>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| vad().probabilities(&samples).expect("probabilities")))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(together.iter().all(|probs| *probs == alone));
}

#[test]
fn missing_model_names_the_file_and_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("absent.onnx");
    let err = Vad::load(&path).expect_err("missing model must fail");
    assert!(matches!(err, VadError::ModelUnreadable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains("run `qualscribe models fetch`"),
        "{message}"
    );
}

#[test]
fn corrupt_model_names_the_file_and_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(VAD_FILE);
    std::fs::write(&path, b"this is not an onnx model").expect("write");
    let err = Vad::load(&path).expect_err("corrupt model must fail");
    assert!(matches!(err, VadError::ModelInvalid { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains("run `qualscribe models fetch`"),
        "{message}"
    );
}
