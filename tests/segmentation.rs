//! The pyannote segmentation-3.0 network against the numpy reference
//! (`../shared/prototypes/speaker-campplus/seg_np.py`) on one real 10 s AMI chunk: dev00,
//! 10–20 s. The reference values were made once by `scripts/make-segmentation-fixtures.py` and
//! are in tests/fixtures/segmentation/.

mod support;

use qualscribe::diarize::segment::{CHUNK_FRAMES, Segmenter};
use qualscribe::models;
use serde::Deserialize;
use support::{corpus, models_dir, project};

#[derive(Deserialize)]
struct Reference {
    clip: String,
    start_sample: usize,
    end_sample: usize,
    frames: usize,
    every: usize,
    log_probs: Vec<Vec<f32>>,
}

#[test]
fn network_matches_the_reference_on_real_audio() {
    let path = project("tests/fixtures/segmentation/dev00_10000_20000.json");
    let r: Reference = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let audio = qualscribe::audio::decode_file(&corpus(&r.clip)).unwrap();
    let chunk = &audio.samples[r.start_sample..r.end_sample];
    let model = models::resolve_segmentation(&models_dir()).unwrap_or_else(|e| panic!("{e}"));
    let segmenter = Segmenter::load(&model).unwrap_or_else(|e| panic!("{e}"));
    let ours = segmenter.log_probs(&[chunk]).unwrap().remove(0);
    assert_eq!((ours.len(), r.frames), (CHUNK_FRAMES, CHUNK_FRAMES));
    // Log-probabilities below ln(1e-4) are compared as probabilities: there float rounding
    // through 4 LSTM layers moves the log by ~1e-3 although the probability moves by < 1e-7.
    let (mut worst, mut worst_prob) = (0f32, 0f32);
    let mut same_class = 0;
    for (frame, expected) in ours.iter().step_by(r.every).zip(&r.log_probs) {
        for (a, b) in frame.iter().zip(expected) {
            worst_prob = worst_prob.max((a.exp() - b.exp()).abs());
            if *b > 1e-4f32.ln() {
                worst = worst.max((a - b).abs());
            }
        }
        let argmax = |v: &[f32]| (0..7).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap();
        same_class += usize::from(argmax(frame) == argmax(expected));
    }
    eprintln!(
        "segmentation: largest log-prob difference {worst:.2e} (probability {worst_prob:.2e}), same class on {same_class} of {} frames",
        r.log_probs.len()
    );
    // The fixture is rounded to 6 decimals; the rest is float rounding.
    assert!(worst <= 1e-3, "{worst}");
    assert!(worst_prob <= 1e-4, "{worst_prob}");
    assert_eq!(same_class, r.log_probs.len());
}
