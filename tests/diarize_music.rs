//! Music is not a speaker: a recording of music (no speech) gives zero or one speaker with
//! both speaker recipes, never an error, also when all of it is handed over as speech.

mod support;

use qualscribe::diarize::{DiarizeConfig, Method, diarize};
use qualscribe::models;
use qualscribe::transcript::SpeechRegion;
use qualscribe::vad::{Vad, VadConfig};
use support::{models_dir, project, speaker_and_segmentation};

#[test]
fn music_gives_zero_or_one_speaker_with_both_recipes() {
    let path = project("tests/fixtures/moh-reno_project-system_20s_8k.ogg");
    let samples = qualscribe::audio::decode_file(&path).unwrap().samples;
    assert!(samples.len() > 19 * 16_000, "{} samples", samples.len());
    let vad = Vad::load(&models::resolve_vad(&models_dir()).unwrap()).unwrap();
    let speech = vad.detect(&samples, &VadConfig::default()).unwrap();
    let everything = [SpeechRegion {
        start_ms: 0,
        end_ms: samples.len() as u64 / 16,
    }];
    let segmentation = DiarizeConfig {
        method: Method::Segmentation,
        ..Default::default()
    };
    let windows = DiarizeConfig {
        method: Method::Windows,
        ..Default::default()
    };
    for (what, regions, cfg) in [
        ("windows, VAD", &speech[..], windows.clone()),
        ("windows, all as speech", &everything[..], windows),
        ("segmentation", &speech[..], segmentation),
    ] {
        let d = diarize(speaker_and_segmentation(), "music", &samples, regions, &cfg)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let secs: Vec<f64> = d
            .speakers
            .iter()
            .map(|s| s.speech_ms as f64 / 1000.0)
            .collect();
        eprintln!("{what}: {} speaker(s), speech {secs:?} s", d.speakers.len());
        assert!(d.speakers.len() <= 1, "{what}: {:?}", d.speakers);
    }
    // Measured: the VAD hears no speech in it, so the default recipe finds nobody.
    assert!(speech.is_empty(), "VAD speech in music: {speech:?}");
}
