//! Integration tests for `qualscribe::audio` on real files: the shared corpus
//! (`../shared/corpus`, relative to the project root) and the small fixtures in `tests/fixtures`.

use std::path::{Path, PathBuf};

use qualscribe::audio::{self, AudioError, SAMPLE_RATE, decode_file, write_wav_16k};

fn corpus(rel: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus")
        .join(rel);
    assert!(
        path.exists(),
        "test corpus file missing: {} (the shared corpus lives next to the project)",
        path.display()
    );
    path
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

const FLEURS_OPUS: &str = "fleurs/fleurs-de-000.ogg";
const FLEURS_FLAC: &str = "fleurs/flac/fleurs-de-000.flac";
/// The fixtures are 2.5 s cut from FLEURS_FLAC starting at this second (see fixtures/README.md).
const FIXTURE_START_S: f64 = 1.0;
const FIXTURE_LEN_S: f64 = 2.5;

/// Best normalised cross-correlation of `a` against `b` over lags in `-max_lag..=max_lag`
/// samples (positive lag: `a` is late), returned as (correlation, lag).
fn best_correlation(a: &[f32], b: &[f32], max_lag: i64) -> (f64, i64) {
    let mut best = (f64::MIN, 0);
    for lag in -max_lag..=max_lag {
        let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
        for (i, &y) in b.iter().enumerate() {
            let j = i as i64 + lag;
            if j < 0 || j >= a.len() as i64 {
                continue;
            }
            let x = f64::from(a[j as usize]);
            let y = f64::from(y);
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        let c = ab / (aa.sqrt() * bb.sqrt()).max(1e-12);
        if c > best.0 {
            best = (c, lag);
        }
    }
    best
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Writes a 44.1 kHz stereo 16-bit WAV of `secs` seconds, each sample from `f(t)` (left) and
/// `g(t)` (right).
fn write_44k_stereo(path: &Path, secs: f64, f: impl Fn(usize) -> f32, g: impl Fn(usize) -> f32) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    let n = (secs * 44_100.0) as usize;
    for i in 0..n {
        for s in [f(i), g(i)] {
            w.write_sample((s * 32767.0).round() as i16)
                .expect("write sample");
        }
    }
    w.finalize().expect("finalize wav");
}

#[test]
fn opus_and_flac_twins_match() {
    let opus = decode_file(&corpus(FLEURS_OPUS)).expect("decode opus");
    let flac = decode_file(&corpus(FLEURS_FLAC)).expect("decode flac");
    assert_eq!(opus.codec, "opus");
    assert_eq!(opus.source_sample_rate, 48_000);
    assert_eq!(flac.codec, "flac");
    assert_eq!(flac.source_sample_rate, 16_000);
    assert!(
        opus.duration_ms().abs_diff(flac.duration_ms()) <= 50,
        "opus {} ms vs flac {} ms",
        opus.duration_ms(),
        flac.duration_ms()
    );
    // Same recording: the signals must line up (no codec or resampler delay) and correlate.
    let (corr, lag) = best_correlation(&opus.samples, &flac.samples, 160);
    eprintln!("opus vs flac: correlation {corr:.3} at lag {lag}");
    assert!(corr > 0.9, "correlation {corr}");
    assert!(lag.abs() <= 4, "opus is {lag} samples off the flac");
    assert!(opus.samples.iter().all(|s| (-1.0..=1.0).contains(s)));
}

#[test]
fn ami_wav_at_16k_is_unchanged() {
    let path = corpus("ami_clips/dev00.wav");
    let audio = decode_file(&path).expect("decode wav");
    let mut reader = hound::WavReader::open(&path).expect("hound open");
    let original: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| f32::from(s.expect("sample")) / 32768.0)
        .collect();
    assert_eq!(audio.source_sample_rate, SAMPLE_RATE);
    assert_eq!(audio.source_channels, 1);
    assert_eq!(audio.samples.len(), original.len());
    let max_diff = audio
        .samples
        .iter()
        .zip(&original)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max_diff < 1e-4, "max diff {max_diff}");
}

#[test]
fn wav_44k_stereo_sine_keeps_length_and_frequency() {
    let dir = tempdir();
    let path = dir.path().join("sine.wav");
    let freq = 440.0f64;
    let sine =
        |i: usize| (0.5 * (2.0 * std::f64::consts::PI * freq * i as f64 / 44_100.0).sin()) as f32;
    // Right channel is silent: the mono mix is the sine at half amplitude.
    write_44k_stereo(&path, 2.0, sine, |_| 0.0);
    let audio = decode_file(&path).expect("decode");
    assert_eq!(audio.source_sample_rate, 44_100);
    assert_eq!(audio.source_channels, 2);
    assert_eq!(audio.samples.len(), 32_000);
    // Frequency from zero crossings away from the edges.
    let body = &audio.samples[1600..30_400];
    let crossings = body
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    let measured = crossings as f64 / 2.0 / (body.len() as f64 / f64::from(SAMPLE_RATE));
    assert!((measured - freq).abs() < 2.0, "measured {measured} Hz");
    let peak = body.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!((peak - 0.25).abs() < 0.01, "peak {peak}");
}

#[test]
fn wav_44k_stereo_impulse_keeps_its_time() {
    let dir = tempdir();
    let path = dir.path().join("click.wav");
    let click_s = 1.234;
    let click = (click_s * 44_100.0f64).round() as usize;
    let impulse = move |i: usize| if i == click { 0.9 } else { 0.0 };
    write_44k_stereo(&path, 3.0, impulse, impulse);
    let audio = decode_file(&path).expect("decode");
    assert_eq!(audio.samples.len(), 48_000);
    let peak = audio
        .samples
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .map(|(i, _)| i)
        .expect("non-empty");
    let err_ms = (peak as f64 / 16.0 - click_s * 1000.0).abs();
    assert!(err_ms <= 1.0, "impulse at {peak} ({err_ms} ms off)");
}

/// Each lossy fixture decodes to 2.5 s and lines up with the lossless source it was cut from.
fn check_fixture(name: &str, codec: &str, rate: u32) {
    let audio = decode_file(&fixture(name)).expect("decode fixture");
    assert_eq!(audio.codec, codec);
    assert_eq!(audio.source_sample_rate, rate);
    let expected_ms = (FIXTURE_LEN_S * 1000.0) as u64;
    assert!(
        audio.duration_ms().abs_diff(expected_ms) <= 40,
        "{name}: {} ms",
        audio.duration_ms()
    );
    let flac = decode_file(&corpus(FLEURS_FLAC)).expect("decode flac");
    let start = (FIXTURE_START_S * 16_000.0) as usize;
    let reference = &flac.samples[start..start + (FIXTURE_LEN_S * 16_000.0) as usize];
    let (corr, lag) = best_correlation(&audio.samples, reference, 800);
    eprintln!(
        "{name}: {} ms, correlation {corr:.3} at lag {lag}",
        audio.duration_ms()
    );
    assert!(corr > 0.8, "{name}: correlation {corr}");
    assert!(lag.abs() <= 4, "{name}: {lag} samples late");
}

#[test]
fn mp3_fixture_decodes() {
    check_fixture("fleurs-de-000_2s5_22k.mp3", "mp3", 22_050);
}

#[test]
fn m4a_aac_fixture_decodes() {
    check_fixture("fleurs-de-000_2s5_44k.m4a", "aac", 44_100);
}

#[test]
fn ogg_vorbis_fixture_decodes() {
    check_fixture("fleurs-de-000_2s5_16k.ogg", "vorbis", 16_000);
}

#[test]
fn write_wav_16k_round_trips() {
    let dir = tempdir();
    let path = dir.path().join("out.wav");
    let samples: Vec<f32> = (0..1600).map(|i| (i as f32 / 1600.0) - 0.5).collect();
    write_wav_16k(&path, &samples).expect("write");
    let back = decode_file(&path).expect("decode");
    assert_eq!(back.samples.len(), samples.len());
    assert!(
        back.samples
            .iter()
            .zip(&samples)
            .all(|(a, b)| (a - b).abs() < 1e-4)
    );
}

#[test]
fn write_wav_16k_into_missing_folder_fails_cleanly() {
    let dir = tempdir();
    let path = dir.path().join("no/such/folder/out.wav");
    let err = write_wav_16k(&path, &[0.0]).expect_err("must fail");
    assert!(matches!(err, AudioError::WriteWav { .. }), "{err}");
}

// ---- bad inputs: each gives its own variant, with a one-line message naming the file ----

fn assert_one_line_naming(err: &AudioError, path: &Path) {
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "multi-line message: {msg}");
    assert!(
        msg.contains(&path.display().to_string()),
        "message does not name the file: {msg}"
    );
}

#[test]
fn missing_file_is_not_found() {
    let dir = tempdir();
    let path = dir.path().join("nope.wav");
    let err = decode_file(&path).expect_err("must fail");
    assert!(matches!(err, AudioError::NotFound { .. }), "{err}");
    assert_one_line_naming(&err, &path);
}

#[test]
fn directory_is_rejected() {
    let dir = tempdir();
    let err = decode_file(dir.path()).expect_err("must fail");
    assert!(matches!(err, AudioError::IsDirectory { .. }), "{err}");
    assert_one_line_naming(&err, dir.path());
}

#[test]
fn zero_byte_file_is_empty() {
    let dir = tempdir();
    let path = dir.path().join("empty.m4a");
    std::fs::write(&path, b"").expect("write");
    let err = decode_file(&path).expect_err("must fail");
    assert!(matches!(err, AudioError::EmptyFile { .. }), "{err}");
    assert_one_line_naming(&err, &path);
}

#[test]
fn text_renamed_to_wav_is_not_audio() {
    let dir = tempdir();
    let path = dir.path().join("notes.wav");
    std::fs::write(
        &path,
        "Interview notes\nThis is not audio at all.\n".repeat(50),
    )
    .expect("write");
    let err = decode_file(&path).expect_err("must fail");
    assert!(matches!(err, AudioError::NotAudio { .. }), "{err}");
    assert_one_line_naming(&err, &path);
    assert!(err.to_string().contains("ffmpeg"), "{err}");
}

#[test]
fn unsupported_codec_is_named() {
    // A WAV header declaring an audio format tag Symphonia has no decoder for (0x0055 is MP3 in
    // WAV, tag 0x2000 is AC-3); use a tag nobody decodes: 0x1234.
    let dir = tempdir();
    let path = dir.path().join("odd.wav");
    std::fs::write(&path, wav_with_format_tag(0x1234)).expect("write");
    let err = decode_file(&path).expect_err("must fail");
    match &err {
        AudioError::UnsupportedCodec { .. } | AudioError::NotAudio { .. } => {}
        other => panic!("unexpected {other}"),
    }
    assert_one_line_naming(&err, &path);
}

/// A minimal WAV with `tag` as its format code, mono 16 kHz, and 1 s of zero data.
fn wav_with_format_tag(tag: u16) -> Vec<u8> {
    let data_len: u32 = 32_000;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes()); // channels
    v.extend_from_slice(&16_000u32.to_le_bytes()); // rate
    v.extend_from_slice(&32_000u32.to_le_bytes()); // byte rate
    v.extend_from_slice(&2u16.to_le_bytes()); // block align
    v.extend_from_slice(&16u16.to_le_bytes()); // bits
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    v.resize(v.len() + data_len as usize, 0);
    v
}

fn first_kib_of(src: &Path, dir: &Path) -> PathBuf {
    let bytes = std::fs::read(src).expect("read");
    let name = src.file_name().expect("file name");
    let path = dir.join(name);
    std::fs::write(&path, &bytes[..1024]).expect("write");
    path
}

#[test]
fn truncated_opus_is_corrupt() {
    let dir = tempdir();
    let path = first_kib_of(&corpus(FLEURS_OPUS), dir.path());
    let err = decode_file(&path).expect_err("must fail");
    assert!(matches!(err, AudioError::Corrupt { .. }), "{err}");
    assert_one_line_naming(&err, &path);
}

#[test]
fn truncated_flac_is_corrupt() {
    let dir = tempdir();
    let path = first_kib_of(&corpus(FLEURS_FLAC), dir.path());
    let err = decode_file(&path).expect_err("must fail");
    assert!(matches!(err, AudioError::Corrupt { .. }), "{err}");
    assert_one_line_naming(&err, &path);
}

#[test]
fn truncated_wav_keeps_what_is_there() {
    // A WAV cut short still has valid samples before the cut: they are returned, flagged.
    let dir = tempdir();
    let src = corpus("ami_clips/dev00.wav");
    let bytes = std::fs::read(&src).expect("read");
    let path = dir.path().join("cut.wav");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
    let (audio, stats) = audio::decode_file_with_stats(&path).expect("decode");
    assert!(
        audio.duration_ms().abs_diff(15_000) <= 20,
        "{} ms",
        audio.duration_ms()
    );
    // Symphonia's WAV reader may or may not notice the cut; what matters is no error.
    let _ = stats.ended_early;
}

/// Flips 200 bytes in the middle of a corpus file and decodes it.
fn decode_damaged(rel: &str, dir: &Path) -> (audio::Audio, audio::DecodeStats) {
    let mut bytes = std::fs::read(corpus(rel)).expect("read");
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 200] {
        *b ^= 0x5a;
    }
    let path = dir.join(Path::new(rel).file_name().expect("name"));
    std::fs::write(&path, &bytes).expect("write");
    audio::decode_file_with_stats(&path).expect("decode despite damage")
}

/// Damage in the middle is bridged with silence: same length, and the end still lines up.
fn check_damage_is_bridged(rel: &str) {
    let dir = tempdir();
    let (damaged, stats) = decode_damaged(rel, dir.path());
    let clean = decode_file(&corpus(rel)).expect("decode clean");
    eprintln!("{rel}: damaged {stats:?}");
    assert!(
        damaged.duration_ms().abs_diff(clean.duration_ms()) <= 50,
        "{rel}: {} ms vs {} ms",
        damaged.duration_ms(),
        clean.duration_ms()
    );
    let tail = 4 * 16_000;
    let (corr, lag) = best_correlation(
        &damaged.samples[damaged.samples.len() - tail..],
        &clean.samples[clean.samples.len() - tail..],
        1600,
    );
    assert!(
        corr > 0.95 && lag.abs() <= 4,
        "{rel}: tail correlation {corr} at lag {lag}"
    );
}

#[test]
fn damaged_opus_keeps_its_timeline() {
    check_damage_is_bridged(FLEURS_OPUS);
}

#[test]
fn damaged_flac_keeps_its_timeline() {
    check_damage_is_bridged(FLEURS_FLAC);
}

#[test]
fn wav_with_no_samples_is_zero_length() {
    let dir = tempdir();
    let path = dir.path().join("silence0.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    hound::WavWriter::create(&path, spec)
        .expect("create")
        .finalize()
        .expect("finalize");
    let err = decode_file(&path).expect_err("must fail");
    assert!(matches!(err, AudioError::ZeroLength { .. }), "{err}");
    assert_one_line_naming(&err, &path);
}

#[cfg(unix)]
#[test]
fn unreadable_file_is_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let path = dir.path().join("locked.wav");
    std::fs::copy(corpus("ami_clips/empty.wav"), &path).expect("copy");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    if std::fs::File::open(&path).is_ok() {
        // Running as root: permissions are not enforced, nothing to test here
        // (the io::ErrorKind mapping is unit-tested in the module).
        eprintln!("skipping: running with permission to read anything");
        return;
    }
    let err = decode_file(&path).expect_err("must fail");
    assert!(matches!(err, AudioError::PermissionDenied { .. }), "{err}");
    assert_one_line_naming(&err, &path);
}
