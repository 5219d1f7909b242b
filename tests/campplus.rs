//! The CAM++ front end and network against the numpy reference
//! (`../shared/prototypes/speaker-campplus/campp_np.py`) on one real AMI window: dev00, 2.0–3.5 s,
//! one speaker. The reference values were made once by `scripts/make-campplus-fixtures.py` and
//! are in tests/fixtures/campplus/.

mod support;

use qualscribe::diarize::SpeakerEmbedder;
use qualscribe::diarize::fbank::{KaldiFbank, N_BINS};
use qualscribe::models;
use serde::Deserialize;
use support::{corpus, models_dir, project};

#[derive(Deserialize)]
struct Reference {
    clip: String,
    start_sample: usize,
    end_sample: usize,
    fbank_frames: usize,
    fbank_first: Vec<Vec<f32>>,
    embedding: Vec<f32>,
}

fn reference() -> (Reference, Vec<f32>) {
    let path = project("tests/fixtures/campplus/dev00_2000_3500.json");
    let r: Reference = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let audio = qualscribe::audio::decode_file(&corpus(&r.clip)).unwrap();
    let window = audio.samples[r.start_sample..r.end_sample].to_vec();
    (r, window)
}

#[test]
fn fbank_matches_the_reference_on_real_audio() {
    let (r, window) = reference();
    let feats = KaldiFbank::new().all_frames(&window);
    assert_eq!(feats.len(), r.fbank_frames * N_BINS);
    let mut worst = 0f32;
    for (row, expected) in feats.chunks_exact(N_BINS).zip(&r.fbank_first) {
        for (a, b) in row.iter().zip(expected) {
            worst = worst.max((a - b).abs());
        }
    }
    eprintln!(
        "fbank: largest difference {worst:.2e} over {} frames",
        r.fbank_first.len()
    );
    // The fixture is rounded to 6 decimals (≤ 5e-7); the rest is float rounding.
    assert!(worst <= 1e-4, "{worst}");
}

#[test]
fn network_matches_the_reference_on_real_audio() {
    let (r, window) = reference();
    let path = models::resolve_speaker(&models_dir()).unwrap_or_else(|e| panic!("{e}"));
    let embedder = SpeakerEmbedder::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let ours = embedder.embed_clip(&window).unwrap().unwrap();
    let norm = r.embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
    let expected: Vec<f32> = r.embedding.iter().map(|x| x / norm).collect();
    let cosine: f32 = ours.iter().zip(&expected).map(|(a, b)| a * b).sum();
    let worst = ours
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    eprintln!("CAM++: cosine to the reference {cosine:.7}, largest difference {worst:.2e}");
    assert!(cosine > 0.99999, "{cosine}");
    assert!(worst < 1e-3, "{worst}");
}
