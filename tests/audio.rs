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

/// Set in the child process that [`unreadable_file_is_permission_denied`] starts as an
/// unprivileged user: the path of the locked file to decode.
const LOCKED_WAV_VAR: &str = "QUALSCRIBE_TEST_LOCKED_WAV";

#[cfg(unix)]
#[test]
fn unreadable_file_is_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    if let Some(path) = std::env::var_os(LOCKED_WAV_VAR) {
        assert_decode_is_permission_denied(Path::new(&path));
        return;
    }
    let dir = tempdir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = dir.path().join("locked.wav");
    std::fs::copy(corpus("ami_clips/empty.wav"), &path).expect("copy");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    if std::fs::File::open(&path).is_ok() {
        // Root reads anything (CI runs as root): the same check runs again in a child process
        // that is this test binary started as the unprivileged user `nobody`.
        assert_permission_denied_as_nobody(dir.path(), &path);
    } else {
        assert_decode_is_permission_denied(&path);
    }
}

#[cfg(unix)]
fn assert_decode_is_permission_denied(path: &Path) {
    let err = decode_file(path).expect_err("must fail");
    assert!(matches!(err, AudioError::PermissionDenied { .. }), "{err}");
    assert_one_line_naming(&err, path);
}

/// Runs this test in a copy of this test binary (root's build folder is private) as uid/gid
/// 65534 and checks that it passed there.
#[cfg(unix)]
fn assert_permission_denied_as_nobody(dir: &Path, locked: &Path) {
    use std::os::unix::process::CommandExt;
    let exe = dir.join("audio-test");
    std::fs::copy(std::env::current_exe().expect("test binary"), &exe).expect("copy binary");
    let out = std::process::Command::new(&exe)
        .args([
            "--exact",
            "unreadable_file_is_permission_denied",
            "--test-threads",
            "1",
        ])
        .env(LOCKED_WAV_VAR, locked)
        .current_dir(dir)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("start the test binary as nobody");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "as nobody: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- issue 14: hostile and damaged files ----

/// A WAV with the given `fmt ` fields (block align and byte rate derived unless `block` is
/// given), `data` as its samples and `claimed` as the data chunk's size (default: the truth).
fn wav_with(fields: WavFields, data: &[u8]) -> Vec<u8> {
    let block = fields
        .block
        .unwrap_or((u32::from(fields.channels) * u32::from(fields.bits) / 8) as u16);
    let byte_rate = fields.rate.wrapping_mul(u32::from(block));
    let claimed = fields.claimed.unwrap_or(data.len() as u32);
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36u32.wrapping_add(claimed)).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&fields.tag.to_le_bytes());
    v.extend_from_slice(&fields.channels.to_le_bytes());
    v.extend_from_slice(&fields.rate.to_le_bytes());
    v.extend_from_slice(&byte_rate.to_le_bytes());
    v.extend_from_slice(&block.to_le_bytes());
    v.extend_from_slice(&fields.bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&claimed.to_le_bytes());
    v.extend_from_slice(data);
    v
}

#[derive(Clone, Copy)]
struct WavFields {
    tag: u16,
    channels: u16,
    rate: u32,
    bits: u16,
    block: Option<u16>,
    claimed: Option<u32>,
}

const PCM16_MONO_16K: WavFields = WavFields {
    tag: 1,
    channels: 1,
    rate: 16_000,
    bits: 16,
    block: None,
    claimed: None,
};

/// The samples of a corpus WAV (16 kHz mono 16-bit), without its header.
fn corpus_pcm() -> Vec<u8> {
    std::fs::read(corpus("ami_clips/dev00.wav")).expect("read")[44..].to_vec()
}

/// Runs `f` on a thread and fails the test if it has not finished within `secs` (a hang would
/// otherwise stall the whole suite).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .expect("did not finish in time: it hangs")
}

/// Issue 14, repro 8: a sample-rate field of 0x7FFFFFFF made decoding run forever, growing.
#[test]
fn huge_sample_rate_is_refused_at_once() {
    let dir = tempdir();
    let path = dir.path().join("rate_huge.wav");
    let mut pcm = corpus_pcm();
    pcm.truncate(256 * 1024);
    let fields = WavFields {
        rate: 0x7FFF_FFFF,
        ..PCM16_MONO_16K
    };
    std::fs::write(&path, wav_with(fields, &pcm)).expect("write");
    let p = path.clone();
    let err = within(20, move || decode_file(&p)).expect_err("must fail");
    assert!(
        matches!(
            err,
            AudioError::InvalidSampleRate {
                rate: 0x7FFF_FFFF,
                ..
            }
        ),
        "{err}"
    );
    assert_one_line_naming(&err, &path);
    assert_eq!(audio::probe_duration_s(&path), None);
}

/// Issue 14, repro 12: zero channels, 7-bit samples and 64 channels were all "truncated or
/// corrupt"; each now says what is wrong.
#[test]
fn impossible_headers_say_what_is_wrong() {
    let dir = tempdir();
    let pcm = vec![0u8; 64 * 2 * 1600];
    let cases: [(&str, WavFields, &str); 5] = [
        (
            "zero_channels.wav",
            WavFields {
                channels: 0,
                block: Some(2),
                ..PCM16_MONO_16K
            },
            "0 channels",
        ),
        (
            "seven_bit.wav",
            WavFields {
                bits: 7,
                block: Some(1),
                ..PCM16_MONO_16K
            },
            "7-bit",
        ),
        (
            "sixty_four.wav",
            WavFields {
                channels: 64,
                ..PCM16_MONO_16K
            },
            "64 channels",
        ),
        (
            "forty_ext.wav",
            WavFields {
                tag: 0xFFFE,
                channels: 40,
                ..PCM16_MONO_16K
            },
            "40 channels",
        ),
        (
            "zero_rate.wav",
            WavFields {
                rate: 0,
                ..PCM16_MONO_16K
            },
            "invalid sample rate (0 Hz)",
        ),
    ];
    for (name, fields, says) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, wav_with(fields, &pcm)).expect("write");
        let err = decode_file(&path).expect_err(name);
        let msg = err.to_string();
        assert!(msg.contains(says), "{name}: {msg}");
        assert!(!msg.contains("corrupt"), "{name}: {msg}");
        assert_one_line_naming(&err, &path);
    }
}

/// Issue 14, repro 9: a FIFO named like audio blocked forever.
#[cfg(unix)]
#[test]
fn fifo_is_refused_without_blocking() {
    let dir = tempdir();
    let path = dir.path().join("x.wav");
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let p = path.clone();
    let (decoded, hashed, probed) = within(20, move || {
        (
            decode_file(&p),
            qualscribe::pipeline::hash_recording(&p),
            audio::probe_duration_s(&p),
        )
    });
    let err = decoded.expect_err("a FIFO is not audio");
    assert!(matches!(err, AudioError::NotRegularFile { .. }), "{err}");
    assert_one_line_naming(&err, &path);
    assert!(hashed.is_err() && probed.is_none());
}

/// Cuts `src` to `fraction` of its bytes in `dir`.
fn cut(src: &Path, dir: &Path, fraction: f64) -> PathBuf {
    let bytes = std::fs::read(src).expect("read");
    let keep = (bytes.len() as f64 * fraction) as usize;
    let name = format!(
        "cut{}_{}",
        (fraction * 100.0) as u32,
        src.file_name().expect("name").to_string_lossy()
    );
    let path = dir.join(name);
    std::fs::write(&path, &bytes[..keep]).expect("write");
    path
}

/// Issue 14, repro 3: WAV, FLAC, MP3 and Opus files cut at 10 % and 50 % passed as fine. They
/// still decode as far as they go, and the report says they ended early.
#[test]
fn truncated_recordings_are_reported() {
    let dir = tempdir();
    let sources = [
        corpus("ami_clips/dev00.wav"),
        corpus(FLEURS_FLAC),
        fixture("fleurs-de-000_2s5_22k.mp3"),
        corpus(FLEURS_OPUS),
    ];
    for src in &sources {
        let full = decode_file(src).expect("decode the whole file");
        assert!(
            full.report.is_clean(),
            "{}: {:?}",
            src.display(),
            full.report
        );
        for fraction in [0.1, 0.5] {
            let path = cut(src, dir.path(), fraction);
            match audio::decode_file_with_stats(&path) {
                Ok((audio, _)) => {
                    assert!(
                        audio.report.ended_early,
                        "{}: not reported: {:?}",
                        path.display(),
                        audio.report
                    );
                    assert!(!audio.report.summary().is_empty());
                }
                // Too little left to decode anything: an error is a clear report too.
                Err(err) => {
                    assert!(matches!(err, AudioError::Corrupt { .. }), "{err}");
                    assert_one_line_naming(&err, &path);
                }
            }
        }
    }
}

/// Issue 14, repro 3: a WAV whose header claims 37 h but holds 8 s.
#[test]
fn header_claiming_more_than_the_file_holds_is_reported() {
    let dir = tempdir();
    let path = dir.path().join("claims_37h.wav");
    let mut pcm = corpus_pcm();
    pcm.truncate(8 * 16_000 * 2);
    let fields = WavFields {
        claimed: Some(37 * 3600 * 16_000 * 2),
        ..PCM16_MONO_16K
    };
    std::fs::write(&path, wav_with(fields, &pcm)).expect("write");
    let audio = decode_file(&path).expect("the 8 s that are there decode");
    assert!(
        audio.duration_ms().abs_diff(8_000) <= 20,
        "{}",
        audio.duration_ms()
    );
    assert!(audio.report.ended_early, "{:?}", audio.report);
    assert_eq!(audio.report.header_duration_ms, Some(37 * 3600 * 1000));
    assert!(audio.report.summary().contains("header says 133200.0 s"));
    // The batch's estimate is what the file holds, not the header's 37 h.
    let est = audio::probe_duration_s(&path).expect("estimate");
    assert!((est - 8.0).abs() < 0.1, "{est}");
}

/// Issue 14, repro 3: a float WAV with NaN and infinite samples gave 0 segments silently.
#[test]
fn non_finite_samples_are_replaced_and_counted() {
    let dir = tempdir();
    let path = dir.path().join("nan.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(&path, spec).expect("create");
    let mut bad = 0u64;
    for i in 0..32_000 {
        let s = match i % 1000 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            _ => (i as f32 * 0.05).sin() * 0.5,
        };
        bad += u64::from(!s.is_finite());
        w.write_sample(s).expect("write");
    }
    w.finalize().expect("finalize");
    let audio = decode_file(&path).expect("decode");
    assert_eq!(audio.report.non_finite_samples, bad);
    assert!(audio.samples.iter().all(|s| s.is_finite()));
    assert!(
        audio.report.summary().contains("NaN/infinite"),
        "{:?}",
        audio.report
    );
}
