//! The pyannote segmentation-3.0 network against the numpy reference
//! (`../shared/prototypes/speaker-campplus/seg_np.py`) on one real 10 s AMI chunk: dev00,
//! 10–20 s. The reference values were made once by `scripts/make-segmentation-fixtures.py` and
//! are in tests/fixtures/segmentation/.

mod support;

use qualscribe::diarize::segment::{CHUNK_FRAMES, CHUNK_SAMPLES, Segmenter};
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

/// The onnxruntime path (graph built in memory from the same weights) against candle, the
/// checked reference, on real 10 s chunks of two AMI clips and a short last chunk: probabilities
/// within 1e-3 (4 LSTM layers of float rounding; onnxruntime is the closer of the two to the
/// numpy reference above), and the same class on every frame whose two likeliest classes are
/// not a near tie (1e-3 apart).
#[test]
fn onnxruntime_matches_candle_on_real_chunks() {
    let dir = models_dir();
    let model = models::resolve_segmentation(&dir).unwrap_or_else(|e| panic!("{e}"));
    let ort = Segmenter::load(&model).unwrap_or_else(|e| panic!("{e}"));
    if models::ONNXRUNTIME_SUPPORTED {
        assert!(
            models::installed_onnxruntime(&dir).is_some(),
            "run `qualscribe models fetch --model onnxruntime`"
        );
        assert_eq!(ort.backend(), "onnxruntime");
    }
    let candle = Segmenter::load_candle(&model).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(candle.backend(), "candle");
    let mut chunks: Vec<Vec<f32>> = Vec::new();
    for clip in ["ami_clips/dev00.wav", "ami_clips/dev01.wav"] {
        let audio = qualscribe::audio::decode_file(&corpus(clip)).unwrap();
        for start in [0, 80_000, 240_000] {
            let end = (start + 160_000).min(audio.samples.len());
            if start < end {
                chunks.push(audio.samples[start..end].to_vec());
            }
        }
        let tail = audio.samples.len().saturating_sub(50_000);
        chunks.push(audio.samples[tail..].to_vec());
    }
    let refs: Vec<&[f32]> = chunks.iter().map(Vec::as_slice).collect();
    let a = ort.log_probs(&refs).unwrap();
    let b = candle.log_probs(&refs).unwrap();
    assert_eq!(a.len(), b.len());
    let (mut worst_prob, mut frames, mut same) = (0f32, 0, 0);
    let argmax = |v: &[f32; 7]| (0..7).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.len(), y.len());
        for (p, q) in x.iter().zip(y) {
            for (u, v) in p.iter().zip(q) {
                worst_prob = worst_prob.max((u.exp() - v.exp()).abs());
            }
            let mut probs: Vec<f32> = q.iter().map(|v| v.exp()).collect();
            probs.sort_by(|u, v| v.total_cmp(u));
            if probs[0] - probs[1] > 1e-3 {
                frames += 1;
                same += usize::from(argmax(p) == argmax(q));
            }
        }
    }
    eprintln!(
        "{} chunks: largest probability difference {worst_prob:.2e}, same class on {same} of {frames} frames without a near tie",
        a.len()
    );
    assert!(worst_prob <= 1e-3, "{worst_prob}");
    assert_eq!(same, frames);
    assert!(frames > 4_000, "{frames}");
}

/// Chunks of one recording with the SincNet convolution shared (computed once over the audio,
/// each chunk's waveform instance norm applied after it) against the network run whole on each
/// chunk, on two real AMI clips: chunks every 2.5 s (the default) and every 2 s (the shared
/// frames then cross the convolution's block edges inside a chunk), a last chunk padded with
/// zeros, and a recording shorter than a chunk. Same class on every frame whose two likeliest
/// classes are not a near tie, probabilities within 1e-4; a chunk's output does not depend on
/// which other chunks share the call; starts off the convolution's stride run per chunk.
#[test]
fn shared_sinc_convolution_matches_per_chunk_on_real_audio() {
    let dir = models_dir();
    let model = models::resolve_segmentation(&dir).unwrap_or_else(|e| panic!("{e}"));
    let segmenter = Segmenter::load(&model).unwrap_or_else(|e| panic!("{e}"));
    if models::ONNXRUNTIME_SUPPORTED {
        assert_eq!(segmenter.backend(), "onnxruntime");
    }
    let argmax = |v: &[f32; 7]| (0..7).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap();
    let (mut worst_prob, mut worst_log, mut frames, mut same) = (0f32, 0f32, 0, 0);
    for clip in ["ami_clips/dev00.wav", "ami_clips/trn01.wav"] {
        let audio = qualscribe::audio::decode_file(&corpus(clip)).unwrap();
        let full = &audio.samples;
        let short = &audio.samples[..5 * 16_000];
        for (samples, step) in [(full, 40_000), (full, 32_000), (&short.to_vec(), 40_000)] {
            let starts: Vec<usize> = (0..)
                .map(|k| k * step)
                .take_while(|&s| s == 0 || s + CHUNK_SAMPLES - step < samples.len())
                .collect();
            assert!(starts.last().unwrap() + CHUNK_SAMPLES >= samples.len());
            let shared = segmenter.log_probs_in_recording(samples, &starts).unwrap();
            let chunks: Vec<&[f32]> = starts
                .iter()
                .map(|&s| &samples[s..(s + CHUNK_SAMPLES).min(samples.len())])
                .collect();
            let whole = segmenter.log_probs(&chunks).unwrap();
            assert_eq!(shared.len(), whole.len());
            for (x, y) in shared.iter().zip(&whole) {
                assert_eq!((x.len(), y.len()), (CHUNK_FRAMES, CHUNK_FRAMES));
                for (p, q) in x.iter().zip(y) {
                    for (u, v) in p.iter().zip(q) {
                        worst_prob = worst_prob.max((u.exp() - v.exp()).abs());
                        if *v > 1e-4f32.ln() {
                            worst_log = worst_log.max((u - v).abs());
                        }
                    }
                    let mut probs: Vec<f32> = q.iter().map(|v| v.exp()).collect();
                    probs.sort_by(|u, v| v.total_cmp(u));
                    if probs[0] - probs[1] > 1e-3 {
                        frames += 1;
                        same += usize::from(argmax(p) == argmax(q));
                    }
                }
            }
            // The same chunks in other company: all but the first, in one call.
            if starts.len() > 2 {
                let later = segmenter
                    .log_probs_in_recording(samples, &starts[1..])
                    .unwrap();
                let moved = later
                    .iter()
                    .zip(&shared[1..])
                    .flat_map(|(x, y)| x.iter().zip(y))
                    .flat_map(|(p, q)| p.iter().zip(q))
                    .map(|(u, v)| (u - v).abs())
                    .fold(0f32, f32::max);
                assert!(moved <= 1e-5, "{clip}: {moved}");
            }
        }
        // A start off the stride of 10 samples: the per-chunk path, exactly.
        let starts = [0, 40_005];
        let chunks: Vec<&[f32]> = starts
            .iter()
            .map(|&s| &full[s..s + CHUNK_SAMPLES])
            .collect();
        assert_eq!(
            segmenter.log_probs_in_recording(full, &starts).unwrap(),
            segmenter.log_probs(&chunks).unwrap()
        );
    }
    eprintln!(
        "shared SincNet convolution: largest probability difference {worst_prob:.2e}, log-probability {worst_log:.2e}, same class on {same} of {frames} frames without a near tie"
    );
    assert!(worst_prob <= 1e-4, "{worst_prob}");
    assert!(worst_log <= 1e-3, "{worst_log}");
    assert_eq!(same, frames);
    assert!(frames > 20_000, "{frames}");
}
