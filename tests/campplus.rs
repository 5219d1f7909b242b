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

/// The onnxruntime path (graph built in memory from the same weights) against candle, the
/// checked reference, on every 1.6 s window (400 ms apart) of a real AMI clip (up to 60 s), and
/// on clips of several lengths (segment pooling's partial last segment, a sub-window clip).
#[test]
fn onnxruntime_matches_candle_on_real_windows() {
    let dir = models_dir();
    let path = models::resolve_speaker(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        models::installed_onnxruntime(&dir).is_some() || !models::ONNXRUNTIME_SUPPORTED,
        "run `qualscribe models fetch --model onnxruntime`"
    );
    let started = std::time::Instant::now();
    let ort = SpeakerEmbedder::load(&path).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "load with the onnxruntime graph: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    if models::ONNXRUNTIME_SUPPORTED {
        assert_eq!(ort.backend(), "onnxruntime");
    }
    let candle = SpeakerEmbedder::load_candle(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(candle.backend(), "candle");

    let audio = qualscribe::audio::decode_file(&corpus("ami_clips/dev00.wav")).unwrap();
    let samples = &audio.samples[..audio.samples.len().min(60 * 16_000)];
    let regions = [qualscribe::transcript::SpeechRegion {
        start_ms: 0,
        end_ms: samples.len() as u64 / 16,
    }];
    let a = ort.embed_windows(samples, &regions, 400).unwrap();
    let b = candle.embed_windows(samples, &regions, 400).unwrap();
    assert_eq!(a.len(), b.len());
    assert!(a.len() > 50, "{}", a.len());
    let cosine = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    let lowest = a
        .iter()
        .zip(&b)
        .map(|(x, y)| cosine(&x.embedding, &y.embedding))
        .fold(1f32, f32::min);
    eprintln!("{} windows: lowest cosine {lowest:.7}", a.len());
    assert!(lowest >= 0.9999, "{lowest}");

    let clips: Vec<&[f32]> = [8_000, 35_000, 160_000, 250_000]
        .iter()
        .map(|&n| &samples[16_000..16_000 + n])
        .collect();
    let a = ort.embed_clips(&clips).unwrap();
    let b = candle.embed_clips(&clips).unwrap();
    for ((x, y), clip) in a.iter().zip(&b).zip(&clips) {
        let (x, y) = (x.as_ref().unwrap(), y.as_ref().unwrap());
        let c = cosine(x, y);
        eprintln!("clip of {} samples: cosine {c:.7}", clip.len());
        assert!(c >= 0.9999, "{} samples: {c}", clip.len());
    }
}

/// A library file that is not the pinned one is never loaded: the embedder runs in candle (and
/// gives the same embeddings), it does not fail or crash.
#[test]
fn a_damaged_onnxruntime_library_falls_back_to_candle() {
    let path = models::resolve_speaker(&models_dir()).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(path.file_name().unwrap());
    std::fs::copy(&path, &copy).unwrap();
    std::fs::write(
        dir.path().join("libonnxruntime.so.1.32.0"),
        b"not a shared library",
    )
    .unwrap();
    assert_eq!(models::installed_onnxruntime(dir.path()), None);
    let embedder = SpeakerEmbedder::load(&copy).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(embedder.backend(), "candle");
    let (_, window) = reference();
    assert!(embedder.embed_clip(&window).unwrap().is_some());
}
