//! Randomised inputs for every parser of outside data: audio container headers, RTTM, seed
//! codebooks (CSV and REFI-QDA `.qdc`) and review actions (JSON from the page). Valid inputs
//! are made here, then mutated (bytes overwritten, cut short, lines dropped or repeated); every
//! parser must answer with a value or an error (one line, no panic, no hang).
//!
//! The suite runs a few cases per parser; `scripts/fuzz.sh` runs many more (`PROPTEST_CASES`).

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use qualscribe::audio::{self, SAMPLE_RATE};
use qualscribe::codes::{parse_qdc, parse_seed_csv};
use qualscribe::eval::rttm::{Turn, parse_rttm, write_rttm};
use qualscribe::export::qda::{self, QdaCode};
use qualscribe::review::Action;

/// Cases per parser: `PROPTEST_CASES` when set (the fuzz script), else `default`.
fn runner(default: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// A mutation of a byte string: bytes overwritten (at positions taken modulo the length, most
/// in the first `head` bytes where the headers are), then optionally cut to a fraction.
#[derive(Debug, Clone)]
struct Mutation {
    writes: Vec<(usize, u8, bool)>,
    cut: Option<f64>,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (
        proptest::collection::vec((any::<usize>(), any::<u8>(), any::<bool>()), 0..8),
        proptest::option::of(0.0f64..1.0),
    )
        .prop_map(|(writes, cut)| Mutation { writes, cut })
}

fn mutate(bytes: &[u8], m: &Mutation, head: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if out.is_empty() {
        return out;
    }
    for &(at, value, in_head) in &m.writes {
        let span = if in_head {
            head.min(out.len())
        } else {
            out.len()
        };
        let i = at % span.max(1);
        out[i] = value;
    }
    if let Some(f) = m.cut {
        out.truncate((out.len() as f64 * f) as usize);
    }
    out
}

fn one_line(e: &impl std::fmt::Display) -> bool {
    !e.to_string().contains('\n')
}

/// Half a second of a 440 Hz tone as a 16 kHz mono 16-bit WAV.
fn small_wav(dir: &Path) -> Vec<u8> {
    let path = dir.join("tone.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..8000 {
        let s = (i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin() * 0.3;
        w.write_sample((s * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
    std::fs::read(&path).unwrap()
}

/// Mutated WAV, FLAC, MP3, Opus and Vorbis files: decoding answers quickly with audio (finite,
/// in range, no more than the watchdog allows) or a one-line error.
#[test]
fn mutated_audio_files_decode_or_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let sources: Vec<(String, Vec<u8>)> = vec![
        ("wav".into(), small_wav(dir.path())),
        (
            "flac".into(),
            std::fs::read(support::corpus("fleurs/flac/fleurs-de-000.flac")).unwrap(),
        ),
        (
            "mp3".into(),
            std::fs::read(support::project("tests/fixtures/fleurs-de-000_2s5_22k.mp3")).unwrap(),
        ),
        (
            "ogg".into(),
            std::fs::read(support::project("tests/fixtures/fleurs-de-000_2s5_16k.ogg")).unwrap(),
        ),
        (
            "opus".into(),
            std::fs::read(support::project("audio_samples/fleurs-en-000.ogg")).unwrap(),
        ),
    ];
    for (ext, bytes) in &sources {
        let path: PathBuf = dir.path().join(format!("mutant.{ext}"));
        runner(12)
            .run(&mutation(), |m| {
                let mutant = mutate(bytes, &m, 256);
                std::fs::write(&path, &mutant).unwrap();
                let started = Instant::now();
                let _ = audio::parse_wav_header(&mutant);
                let _ = audio::probe_duration_s(&path);
                match audio::decode_file(&path) {
                    Ok(a) => {
                        prop_assert!(a.samples.iter().all(|s| s.is_finite() && s.abs() <= 1.0));
                        let limit = (mutant.len() as u64 * 1000).max(600 * 16_000);
                        prop_assert!(a.samples.len() as u64 <= limit + 16_000);
                    }
                    Err(e) => prop_assert!(one_line(&e), "{}", e),
                }
                prop_assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "{ext}: {:?}",
                    started.elapsed()
                );
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{ext}: {e}"));
    }
}

/// Arbitrary bytes as a WAV header: never a panic, and a header found has its fields in place.
#[test]
fn wav_header_parser_takes_any_bytes() {
    runner(256)
        .run(
            &proptest::collection::vec(any::<u8>(), 0..128),
            |mut bytes| {
                let _ = audio::parse_wav_header(&bytes);
                if bytes.len() >= 12 {
                    bytes[..4].copy_from_slice(b"RIFF");
                    bytes[8..12].copy_from_slice(b"WAVE");
                }
                if let Some(h) = audio::parse_wav_header(&bytes) {
                    prop_assert!(h.data_offset as usize <= bytes.len());
                }
                Ok(())
            },
        )
        .unwrap();
}

fn turns() -> impl Strategy<Value = Vec<Turn>> {
    proptest::collection::vec(
        ("[a-z_]{1,8}", 0u32..100_000, 1u32..10_000, "SPEAKER_0[0-9]"),
        0..12,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(uri, start, dur, speaker)| Turn {
                uri,
                start_s: f64::from(start) / 1000.0,
                end_s: f64::from(start + dur) / 1000.0,
                speaker,
            })
            .collect()
    })
}

/// RTTM: written turns read back the same; mutated text parses or fails with a one-line error.
#[test]
fn rttm_round_trips_and_survives_mutation() {
    runner(64)
        .run(&(turns(), mutation()), |(turns, m)| {
            let text = write_rttm(&turns);
            let back = parse_rttm(&text).unwrap();
            prop_assert_eq!(back.len(), turns.len());
            for t in &back {
                prop_assert!(turns.iter().any(|u| u.uri == t.uri
                    && u.speaker == t.speaker
                    && (u.start_s - t.start_s).abs() < 0.001
                    && (u.end_s - t.end_s).abs() < 0.001));
            }
            let mutant =
                String::from_utf8_lossy(&mutate(text.as_bytes(), &m, text.len())).into_owned();
            if let Err(e) = parse_rttm(&mutant) {
                prop_assert!(one_line(&e), "{}", e);
            }
            Ok(())
        })
        .unwrap();
}

fn code_names() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(
        (
            "[A-Za-zñé=<>&][A-Za-zñé ,\"'=<>&]{0,11}",
            "[a-z ,\"\n]{0,20}",
        ),
        1..6,
    )
}

/// Seed codebooks: a CSV written with quoting reads back its names; mutated CSV and `.qdc`
/// files parse or fail with a one-line error.
#[test]
fn seed_codebooks_survive_mutation() {
    let path = Path::new("seed.csv");
    let dir = tempfile::tempdir().unwrap();
    let qdc_file = dir.path().join("codebook.qdc");
    runner(64)
        .run(&(code_names(), mutation()), |(codes, m)| {
            let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
            let mut csv = String::from("name,description\n");
            for (name, description) in &codes {
                csv.push_str(&format!("{},{}\n", quote(name), quote(description)));
            }
            if let Ok(back) = parse_seed_csv(&csv, path) {
                for (seed, (name, _)) in back.iter().zip(&codes) {
                    prop_assert_eq!(seed.name.as_str(), name.trim());
                }
            }
            let mutant =
                String::from_utf8_lossy(&mutate(csv.as_bytes(), &m, csv.len())).into_owned();
            if let Err(e) = parse_seed_csv(&mutant, path) {
                prop_assert!(one_line(&e), "{}", e);
            }

            let qda_codes: Vec<QdaCode> = codes
                .iter()
                .enumerate()
                .map(|(i, (name, description))| QdaCode {
                    guid: qda::guid_for("fuzz", &i.to_string()),
                    name: name.clone(),
                    description: description.clone(),
                    color: None,
                    is_codable: true,
                    children: Vec::new(),
                    note: None,
                })
                .collect();
            let qdc = qda::write_codebook(&qda_codes, "fuzz");
            let back = parse_qdc(&qdc, Path::new("seed.qdc")).unwrap();
            prop_assert_eq!(back.len(), codes.len());
            let mutant =
                String::from_utf8_lossy(&mutate(qdc.as_bytes(), &m, qdc.len())).into_owned();
            if let Err(e) = parse_qdc(&mutant, Path::new("seed.qdc")) {
                prop_assert!(one_line(&e), "{}", e);
            }
            // The REFI-QDA reader (import of a codebook file) too.
            std::fs::write(&qdc_file, &mutant).unwrap();
            if let Err(e) = qda::read_qdc(&qdc_file) {
                prop_assert!(one_line(&e), "{}", e);
            }
            Ok(())
        })
        .unwrap();
}

fn action() -> impl Strategy<Value = Action> {
    let id = -3i64..1000;
    let text = "[a-zñ \"\\\\<]{0,10}";
    prop_oneof![
        id.clone().prop_map(|code| Action::Accept { code }),
        id.clone().prop_map(|code| Action::Reject { code }),
        (id.clone(), text).prop_map(|(code, label)| Action::Rename { code, label }),
        (id.clone(), proptest::collection::vec(id.clone(), 0..4))
            .prop_map(|(into, from)| Action::Merge { into, from }),
        (
            id.clone(),
            proptest::collection::vec(id.clone(), 0..4),
            text
        )
            .prop_map(|(code, passages, label)| Action::Split {
                code,
                passages,
                label
            }),
        (id.clone(), proptest::option::of(id.clone()), id.clone())
            .prop_map(|(passage, from, to)| Action::Move { passage, from, to }),
        (text, text).prop_map(|(target, text)| Action::Memo { target, text }),
        (id, text).prop_map(|(segment, text)| Action::EditSegment { segment, text }),
    ]
}

/// Review actions as the page sends them: every action survives JSON, and mutated JSON is an
/// action or a serde error, never a panic.
#[test]
fn review_action_json_round_trips_and_survives_mutation() {
    runner(256)
        .run(&(action(), mutation()), |(a, m)| {
            let json = serde_json::to_string(&a).unwrap();
            let back: Action = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(&back, &a);
            let mutant = mutate(json.as_bytes(), &m, json.len());
            let _ = serde_json::from_slice::<Action>(&mutant);
            Ok(())
        })
        .unwrap();
}
