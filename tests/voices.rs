//! Voice enrolment on real voices: AMI speakers enrolled from one clip of a meeting are named
//! in another clip of the same meeting, and nobody else gets their name; one who says little in
//! another recording keeps a speaker of her own once enrolled.
//!
//! Which person a found speaker is comes from the reference RTTM: the reference speaker who
//! talks most during that speaker's turns. Each enrolled profile is named after that person.

mod support;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use qualscribe::diarize::voices;
use qualscribe::diarize::{Diarization, DiarizeConfig, Method, SpeakerEmbedder, diarize};
use qualscribe::eval::rttm::{Turn, read_rttm};
use qualscribe::models;
use qualscribe::vad::{Vad, VadConfig};
use support::{corpus, models_dir, one_at_a_time, speaker_and_segmentation};

fn embedder() -> &'static SpeakerEmbedder {
    static E: OnceLock<SpeakerEmbedder> = OnceLock::new();
    E.get_or_init(|| {
        let path = models::resolve_speaker(&models_dir()).unwrap_or_else(|e| panic!("{e}"));
        SpeakerEmbedder::load(&path).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// The clip's speakers, and its samples (16 kHz).
fn clip(embedder: &SpeakerEmbedder, uri: &str, cfg: &DiarizeConfig) -> (Diarization, Vec<f32>) {
    let vad = Vad::load(&models::resolve_vad(&models_dir()).unwrap()).unwrap();
    let audio = qualscribe::audio::decode_file(&corpus(&format!("ami_clips/{uri}.wav"))).unwrap();
    let speech = vad.detect(&audio.samples, &VadConfig::default()).unwrap();
    let d = diarize(embedder, uri, &audio.samples, &speech, cfg).unwrap();
    (d, audio.samples)
}

/// The reference speaker who talks most during `id`'s turns.
fn person(d: &Diarization, id: &str, reference: &[Turn]) -> Option<String> {
    let mut talk: BTreeMap<&str, f64> = BTreeMap::new();
    for t in d.turns.iter().filter(|t| t.speaker == id) {
        let (a, b) = (t.start_ms as f64 / 1000.0, t.end_ms as f64 / 1000.0);
        for r in reference.iter().filter(|r| r.uri == d.uri) {
            let o = r.end_s.min(b) - r.start_s.max(a);
            if o > 0.0 {
                *talk.entry(r.speaker.as_str()).or_default() += o;
            }
        }
    }
    talk.into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(s, _)| s.to_string())
}

/// What enrolment from one AMI clip gives in another clip of the same meeting, both diarized
/// with `cfg` by `embedder`.
struct Naming {
    right: usize,
    wrong: usize,
    expected: usize,
    refused: usize,
}

fn enrol_and_name(embedder: &SpeakerEmbedder, cfg: &DiarizeConfig) -> Naming {
    let reference = read_rttm(&corpus("ami_clips/reference.rttm")).unwrap();
    let mut n = Naming {
        right: 0,
        wrong: 0,
        expected: 0,
        refused: 0,
    };
    for (from, to) in [("dev00", "dev01"), ("tst00", "tst01")] {
        let dir = tempfile::tempdir().unwrap();
        let (enrolled_from, samples) = clip(embedder, from, cfg);
        let mut enrolled = Vec::new();
        for s in &enrolled_from.speakers {
            let Some(name) = person(&enrolled_from, &s.id, &reference) else {
                continue;
            };
            // As `speakers enroll` does with the recording at hand: from the cleanest speech.
            let clean = voices::clean_embedding(embedder, &samples, &enrolled_from, &s.id);
            match voices::enroll(dir.path(), &name, &enrolled_from, &s.id, clean.unwrap()) {
                Ok(p) => {
                    assert!(p.speech_ms >= voices::MIN_ENROL_MS, "{p:?}");
                    enrolled.push(name);
                }
                Err(voices::VoiceError::TooLittleSpeech { clean_ms, .. }) => {
                    assert!(clean_ms < voices::MIN_ENROL_MS);
                    eprintln!("{from}: {} ({name}) refused, {clean_ms} ms", s.id);
                    n.refused += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
        let profiles = voices::load_profiles(dir.path(), embedder.model_sha256()).unwrap();
        let named_cfg = DiarizeConfig {
            voices: profiles,
            ..cfg.clone()
        };
        let (named, _) = clip(embedder, to, &named_cfg);
        for s in &named.speakers {
            let truth = person(&named, &s.id, &reference);
            if truth.as_ref().is_some_and(|t| enrolled.contains(t)) {
                n.expected += 1;
            }
            match (&s.name, &truth) {
                (Some(name), Some(t)) if name == t => n.right += 1,
                (Some(name), _) => {
                    n.wrong += 1;
                    eprintln!("{to}: {} named {name}, but is {truth:?}", s.id);
                }
                (None, _) => {}
            }
        }
        eprintln!(
            "{from} → {to}: enrolled {enrolled:?}; named {:?}",
            named
                .speakers
                .iter()
                .map(|s| (s.id.as_str(), s.name.as_deref()))
                .collect::<Vec<_>>()
        );
    }
    eprintln!(
        "named right {} of {} enrolled people found again, wrong {}, {} refused (threshold {})",
        n.right, n.expected, n.wrong, n.refused, cfg.voice_threshold
    );
    n
}

#[test]
fn windows_speakers_are_named_in_another_clip_and_never_given_to_someone_else() {
    let _one = one_at_a_time();
    let cfg = DiarizeConfig {
        method: Method::Windows,
        ..DiarizeConfig::default()
    };
    let n = enrol_and_name(embedder(), &cfg);
    // Measured (profiles from the cleanest speech, threshold 0.60, margins 0.10/0.05): MEE009
    // and MEE012 enrolled from dev00 and named right in dev01; in tst00 MEE073 (3.2 s without
    // overlap) is refused, MEE071 and FEO072 are enrolled and, as measured, named nowhere in
    // tst01 (their speakers there are other people by the reference). Never naming someone
    // else is the hard requirement; every person found again must be named.
    assert_eq!(n.wrong, 0);
    assert!(
        n.right >= 2 && n.right == n.expected,
        "{}/{}",
        n.right,
        n.expected
    );
    assert!(
        n.refused >= 1,
        "a speaker with < 5 s of clean speech is refused"
    );
}

#[test]
fn default_speakers_never_take_someone_elses_name() {
    let _one = one_at_a_time();
    // The default recipe is segmentation.
    let cfg = DiarizeConfig::default();
    assert_eq!(cfg.method, Method::Segmentation);
    let n = enrol_and_name(speaker_and_segmentation(), &cfg);
    // Measured with clean voices (`voices::set_clean_voices`) at 0.60: 2 of 5 speakers whose
    // person was enrolled named right (dev00 → dev01 MEE009 and MEE012; dev01's two ~1.5 s extra
    // speakers and tst01's 1.1 s one are too short), none wrongly, 2 refused (< 5 s of clean
    // speech). With the recipe's own timeline-piece
    // embeddings a speaker segmentation merged from two people of another AMI meeting took a
    // wrong name (trn03 → trn00, held-out pairs); with clean voices nobody does.
    assert_eq!(n.wrong, 0);
    assert!(n.right >= 1, "{}/{}", n.right, n.expected);
}

/// Milliseconds of `id`'s turns inside `[start, end)`, and of all its turns.
fn speech_inside(d: &Diarization, id: &str, (start, end): (u64, u64)) -> (u64, u64) {
    let turns = d.turns.iter().filter(|t| t.speaker == id);
    turns.fold((0, 0), |(inside, all), t| {
        let o = t.end_ms.min(end).saturating_sub(t.start_ms.max(start));
        (inside + o, all + t.end_ms - t.start_ms)
    })
}

/// The speaker whose turns hold most (60 %) of `span` and are mostly (70 %) inside it.
fn own_speaker(d: &Diarization, span: (u64, u64)) -> Option<&qualscribe::diarize::Speaker> {
    d.speakers.iter().find(|s| {
        let (inside, all) = speech_inside(d, &s.id, span);
        inside * 10 >= (span.1 - span.0) * 6 && inside * 10 >= all * 7
    })
}

#[test]
fn a_quiet_enrolled_voice_keeps_a_speaker_of_its_own() {
    let _one = one_at_a_time();
    let embedder = speaker_and_segmentation();
    let reference = read_rttm(&corpus("ami_clips/reference.rttm")).unwrap();
    // FEE083 enrolled from one AMI clip, as `speakers enroll` does.
    let (trn06, samples) = clip(embedder, "trn06", &DiarizeConfig::default());
    let id = trn06
        .speakers
        .iter()
        .map(|s| s.id.clone())
        .find(|id| person(&trn06, id, &reference).as_deref() == Some("FEE083"))
        .expect("FEE083 has a speaker in trn06");
    let clean = voices::clean_embedding(embedder, &samples, &trn06, &id).unwrap();
    let dir = tempfile::tempdir().unwrap();
    voices::enroll(dir.path(), "FEE083", &trn06, &id, clean).unwrap();
    let profiles = voices::load_profiles(dir.path(), embedder.model_sha256()).unwrap();

    // A conversation of five FLEURS readers (6.5-14.5 s of speech each) in which FEE083 says
    // one thing: 4.8 s alone in another clip of her meeting (trn09 6.04-10.84 s; the reference
    // hears only her there).
    let decode = |rel: &str| {
        qualscribe::audio::decode_file(&corpus(rel))
            .unwrap()
            .samples
    };
    let gap = vec![0.0f32; 8_000];
    let trn09 = decode("ami_clips/trn09.wav");
    let hers = &trn09[6_040 * 16..10_840 * 16];
    let mut samples = Vec::new();
    let mut her_ms = (0, 0);
    for (n, lang) in ["es", "fr", "de", "pt", "en"].iter().enumerate() {
        if n == 2 {
            let start = samples.len() as u64 / 16;
            samples.extend_from_slice(hers);
            her_ms = (start, samples.len() as u64 / 16);
            samples.extend_from_slice(&gap);
        }
        samples.extend(decode(&format!("fleurs/fleurs-{lang}-000.ogg")));
        samples.extend_from_slice(&gap);
    }
    let vad = Vad::load(&models::resolve_vad(&models_dir()).unwrap()).unwrap();
    let speech = vad.detect(&samples, &VadConfig::default()).unwrap();
    // A speaker needs 5.5 s of speech alone here, so her 4.8 s are under the floor, as a quiet
    // participant's 30 s are under 1 % of an hour (the default floor); every reader is above.
    let floor = DiarizeConfig {
        segment_min_speaker_ms: 5_500,
        ..DiarizeConfig::default()
    };

    // Without her profile her words go to a reader.
    let unnamed = diarize(embedder, "quiet", &samples, &speech, &floor).unwrap();
    assert!(
        own_speaker(&unnamed, her_ms).is_none(),
        "{:?}",
        unnamed.speakers
    );
    // With it she keeps a speaker, named, and nobody else takes her name.
    let with_voices = DiarizeConfig {
        voices: profiles,
        ..floor
    };
    let named = diarize(embedder, "quiet", &samples, &speech, &with_voices).unwrap();
    let her = own_speaker(&named, her_ms).unwrap_or_else(|| panic!("{:?}", named.turns));
    assert_eq!(her.name.as_deref(), Some("FEE083"));
    let names: Vec<_> = named
        .speakers
        .iter()
        .filter_map(|s| s.name.as_ref())
        .collect();
    assert_eq!(names, ["FEE083"]);
}

#[test]
fn enrolling_a_missing_speaker_or_a_bad_name_is_a_clear_error() {
    let d = Diarization::new(
        "g1",
        Vec::new(),
        Vec::new(),
        serde_json::from_value(serde_json::json!({
            "num_speakers": null, "min_speakers": 1, "max_speakers": 16, "window_ms": 1600,
            "step_ms": 400, "threshold": 0.3, "min_speaker_ms": 800, "smoothing_windows": 3,
            "overlap_margin": null, "overlap_min_similarity": 0.5, "model_sha256": "m",
            "qualscribe_version": "0"
        }))
        .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let e = voices::enroll(dir.path(), "Ana", &d, "SPEAKER_07", None).unwrap_err();
    assert!(e.to_string().contains("no speaker SPEAKER_07 in g1"), "{e}");
    let e = voices::enroll(dir.path(), "../x", &d, "SPEAKER_00", None).unwrap_err();
    assert!(e.to_string().contains("cannot be a voice name"), "{e}");
    let e = voices::load_profiles(&dir.path().join("absent"), "m").unwrap_err();
    assert!(e.to_string().contains("absent"), "{e}");
}

/// A saved diarization of one speaker with `clean_ms` of speech outside overlap.
fn one_speaker(clean_ms: u64) -> Diarization {
    serde_json::from_value(serde_json::json!({
        "schema": qualscribe::diarize::SCHEMA_NAME,
        "schema_version": qualscribe::diarize::SCHEMA_VERSION,
        "uri": "g1",
        "speakers": [{"id": "SPEAKER_00", "speech_ms": clean_ms + 2000,
                      "embedding": [0.6, 0.8]}],
        "turns": [
            {"start_ms": 0, "end_ms": clean_ms, "speaker": "SPEAKER_00", "overlap": false},
            {"start_ms": clean_ms, "end_ms": clean_ms + 2000, "speaker": "SPEAKER_00",
             "overlap": true}
        ],
        "settings": {
            "num_speakers": null, "min_speakers": 1, "max_speakers": 16, "window_ms": 1600,
            "step_ms": 800, "threshold": 0.2, "min_speaker_ms": 800, "smoothing_windows": 3,
            "overlap_margin": null, "overlap_min_similarity": 0.5,
            "model_sha256": embedder().model_sha256(), "qualscribe_version": "0"
        }
    }))
    .unwrap()
}

#[test]
fn the_enroll_command_refuses_too_little_speech_and_warns_below_15_s() {
    let dir = tempfile::tempdir().unwrap();
    let enroll = |clean_ms: u64| {
        let saved = dir.path().join("g1.diarization.json");
        std::fs::write(
            &saved,
            serde_json::to_string(&one_speaker(clean_ms)).unwrap(),
        )
        .unwrap();
        std::process::Command::new(support::qualscribe_bin())
            .args([
                "speakers",
                "enroll",
                "Ana",
                "--speaker",
                "SPEAKER_00",
                "--from",
            ])
            .arg(&saved)
            .arg("--voices")
            .arg(dir.path().join("voices"))
            .output()
            .unwrap()
    };
    let out = enroll(4000);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("g1.diarization.json")
            && err.contains("SPEAKER_00 of g1 has only 4.0 s of speech without overlap")
            && err.contains("enroll this person from a recording where they speak longer"),
        "{err}"
    );
    assert!(!dir.path().join("voices/Ana.voice.json").exists());
    // 10 s: enrolled (from the saved embedding: no recording given), with a warning.
    let out = enroll(10_000);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: SPEAKER_00 has only 10 s of speech without overlap"),
        "{err}"
    );
    let p: voices::VoiceProfile = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("voices/Ana.voice.json")).unwrap(),
    )
    .unwrap();
    assert_eq!((p.speech_ms, p.embedding.clone()), (10_000, vec![0.6, 0.8]));
    // 20 s: no warning.
    let out = enroll(20_000);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
}

/// `qualscribe` with `args`, its output.
fn qualscribe(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(support::qualscribe_bin())
        .args(args)
        .output()
        .unwrap()
}

fn read_diarization(path: &std::path::Path) -> Diarization {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A run without profiles makes no clean voices (a CAM++ pass over up to 30 s of every
/// speaker, used only to compare voices); naming its saved diarization later makes them from
/// the recording, with the same voices and names as a run given the profiles from the start.
/// Without the recording, enrolment from such a diarization is refused, not made from the
/// recipe's own embedding.
#[test]
fn naming_a_saved_diarization_makes_the_voices_a_run_with_profiles_makes() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (plain, eager, voices) = (
        dir.path().join("plain"),
        dir.path().join("eager"),
        dir.path().join("voices"),
    );
    let run = |uri: &str, out: &std::path::Path, profiles: bool| {
        let audio = corpus(&format!("ami_clips/{uri}.wav"));
        let mut args: Vec<&std::ffi::OsStr> = [
            "run",
            "--model",
            "tiny.en",
            "--language",
            "en",
            "--no-themes",
            "--format",
            "json",
            "-o",
        ]
        .iter()
        .map(|s| s.as_ref())
        .collect();
        args.extend([out.as_os_str(), audio.as_os_str()]);
        if profiles {
            args.extend(["--voices".as_ref(), voices.as_os_str()]);
        }
        let o = qualscribe(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run("dev00", &plain, false);
    run("dev01", &plain, false);
    let enrolled_from = read_diarization(&plain.join("dev00.diarization.json"));
    let saved = read_diarization(&plain.join("dev01.diarization.json"));
    assert!(qualscribe::diarize::needs_clean_voices(&saved));
    assert!(saved.speakers.iter().all(|s| s.voice_purity.is_none()));

    // Everyone of dev00 with enough speech is enrolled, under their speaker id.
    let transcript = plain.join("dev00.transcript.json");
    let mut enrolled = 0;
    for s in &enrolled_from.speakers {
        let o = qualscribe(&[
            "speakers".as_ref(),
            "enroll".as_ref(),
            format!("from_{}", s.id).as_ref(),
            "--from".as_ref(),
            transcript.as_os_str(),
            "--speaker".as_ref(),
            s.id.as_ref(),
            "--voices".as_ref(),
            voices.as_os_str(),
        ]);
        enrolled += usize::from(o.status.success());
    }
    assert!(enrolled >= 1, "nobody of dev00 enrolled");

    run("dev01", &eager, true);
    let o = qualscribe(&[
        "diarize".as_ref(),
        plain.join("dev01.transcript.json").as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        "--voices".as_ref(),
        voices.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lazy = read_diarization(&plain.join("dev01.diarization.json"));
    let eager = read_diarization(&eager.join("dev01.diarization.json"));
    assert_eq!(lazy.turns, eager.turns);
    assert_eq!(lazy.speakers, eager.speakers);
    assert!(lazy.speakers.iter().any(|s| s.voice_purity.is_some()));
    // Measured: dev00's MEE009 and MEE012 are named in dev01 (tests above); this pair names
    // at least one, so the comparison above covers names too.
    assert!(
        lazy.speakers.iter().any(|s| s.name.is_some()),
        "{:?}",
        lazy.speakers
    );

    // The saved diarization alone, without its recording: refused, saying what to give.
    let alone = dir.path().join("alone");
    std::fs::create_dir_all(&alone).unwrap();
    let moved = alone.join("dev00.diarization.json");
    std::fs::copy(plain.join("dev00.diarization.json"), &moved).unwrap();
    let id = &enrolled_from.speakers[0].id;
    let o = qualscribe(&[
        "speakers".as_ref(),
        "enroll".as_ref(),
        "Someone".as_ref(),
        "--from".as_ref(),
        moved.as_os_str(),
        "--speaker".as_ref(),
        id.as_ref(),
        "--voices".as_ref(),
        voices.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("dev00.diarization.json") && err.contains("give it with --audio"),
        "{err}"
    );
    assert!(!voices.join("Someone.voice.json").exists());
}
