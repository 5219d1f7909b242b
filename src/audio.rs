//! Decodes any supported audio file to 16 kHz mono `f32`, the input every later stage expects.
//!
//! Supported: WAV, FLAC, MP3, M4A/AAC, Ogg Vorbis and Ogg Opus (Symphonia, plus libopus for Opus),
//! at any sample rate and channel count.
//!
//! Promises:
//! - Output is mono at [`SAMPLE_RATE`] (16 kHz), samples in `[-1, 1]`; channels are averaged.
//! - Timing is preserved: codec delay/padding is trimmed (gapless decoding) and the resampler's
//!   latency is compensated, so a sound at `t` s in the file is at sample `t * 16000`.
//! - Length: a source of `n` frames at `r` Hz gives `round(n * 16000 / r)` samples.
//! - Streaming: the file is decoded packet by packet, mixed down and resampled in small chunks, so
//!   memory is the 16 kHz output (about 230 MB per hour) plus a few small buffers, never the whole
//!   recording at its source rate.
//! - A few corrupt packets are skipped and counted ([`DecodeStats`]), and the audio they held is
//!   replaced by silence so everything after the damage keeps its time; a file where nothing
//!   decodes is an error. Every failure is an [`AudioError`] whose message is one line naming the file and
//!   what to do; nothing here panics on bad input.

mod mp4_edit;
mod resample;

use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use symphonia::core::codecs::audio::well_known as codec_ids;
use symphonia::core::codecs::audio::{
    AudioCodecId, AudioCodecParameters, AudioDecoder, AudioDecoderOptions,
};
use symphonia::core::codecs::registry::CodecRegistry;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, Track, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::packet::Packet;
use symphonia::core::units::TimeBase;

pub use resample::ResampleFailure;
use resample::To16k;

pub use crate::transcript::DecodeReport;

/// Sample rate of every [`Audio`] produced here, in Hz.
pub const SAMPLE_RATE: u32 = 16_000;

/// After this many packet errors in a row with nothing decoding in between, the rest of the file
/// is taken to be unreadable (a demuxer that cannot resync would otherwise loop forever).
const MAX_CONSECUTIVE_PACKET_ERRORS: u32 = 100;

/// Never reserve more than this many output samples up front (12 h), whatever a header claims.
const MAX_RESERVED_SAMPLES: u64 = 12 * 3600 * SAMPLE_RATE as u64;

/// Sample rates accepted from a header, in Hz: anything outside is a damaged or hostile header
/// (a rate of 2^31 made the resampler allocate without end).
const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 1_000..=768_000;

/// Most channels a file may have (Symphonia's channel layouts stop at 32).
const MAX_CHANNELS: u16 = 32;

/// Decode watchdog: at most this many 16 kHz output samples per byte of file. The most compact
/// real audio (Opus at 6 kbit/s) gives about 21 per byte, digital silence in FLAC a few hundred;
/// beyond this a file is making audio out of nothing (bogus timestamps or headers), and decoding
/// stops before it takes all memory.
const MAX_OUTPUT_SAMPLES_PER_BYTE: u64 = 1_000;

/// The watchdog never stops a file before this much output (10 minutes), however small it is.
const MIN_OUTPUT_LIMIT: u64 = 600 * SAMPLE_RATE as u64;

/// A header length that differs from the decoded length by more than this is reported.
const DURATION_MISMATCH_MS: u64 = 1_000;

/// Decoded audio: 16 kHz mono `f32` plus what the source was.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Mono samples at [`SAMPLE_RATE`], each in `[-1, 1]`.
    pub samples: Vec<f32>,
    /// Sample rate of the file, in Hz.
    pub source_sample_rate: u32,
    /// Channel count of the file (averaged into `samples`).
    pub source_channels: u16,
    /// Short codec name as Symphonia reports it, e.g. `"opus"`, `"flac"`, `"pcm_s16le"`.
    pub codec: String,
    /// What was wrong with the file (cut off, damaged packets, NaN samples, a header that
    /// claims another length); clean for a sound file.
    pub report: DecodeReport,
}

impl Audio {
    /// Length of `samples` in milliseconds (rounded down).
    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 * 1000 / u64::from(SAMPLE_RATE)
    }
}

/// What happened while decoding, for warnings ("3 damaged packets skipped").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Packets that could not be read or decoded and were skipped.
    pub skipped_packets: u64,
    /// The file ended in the middle of its data (e.g. a recording that was cut off or not fully
    /// copied); everything before the cut was decoded.
    pub ended_early: bool,
    /// Frames at the source rate fed to the output (decoded plus inserted silence).
    pub source_frames: u64,
    /// Source-rate frames of silence inserted where packets were lost, so that everything after
    /// the damage stays at its original time.
    pub silence_inserted_frames: u64,
    /// NaN or infinite samples, replaced by 0 (they would poison every later stage).
    pub non_finite_samples: u64,
}

/// Why a file could not be turned into 16 kHz audio. Each message is one line that names the file
/// and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// There is no file at this path.
    #[error("{path}: file not found; check the path and spelling")]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The path is a folder.
    #[error("{path} is a folder, not an audio file; pass the audio files inside it one by one")]
    IsDirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The path is a pipe, device or socket: reading it could block forever.
    #[error(
        "{path} is not a regular file (a pipe, device or socket); copy the recording into a file and pass that"
    )]
    NotRegularFile {
        /// The path given.
        path: PathBuf,
    },
    /// The header describes audio that cannot exist or is not supported.
    #[error(
        "{path}: {what}; convert it with e.g. `ffmpeg -i in -ar 16000 -ac 1 out.wav`, or export it again if it is damaged"
    )]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong, e.g. "the header says 0 channels".
        what: String,
    },
    /// Decoding produced far more audio than the file's size can hold.
    #[error(
        "{path}: decoding gave over {seconds} s of audio from {bytes} bytes, more than such a file can hold; it is damaged, export or copy it again"
    )]
    Runaway {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// Seconds decoded when stopped.
        seconds: u64,
    },
    /// The file has 0 bytes.
    #[error(
        "{path} is empty (0 bytes); the recording was not saved or copied completely, copy it again"
    )]
    EmptyFile {
        /// The path given.
        path: PathBuf,
    },
    /// The file exists but may not be read by this user.
    #[error(
        "{path}: permission denied; make the file readable (e.g. chmod +r) or copy it to a folder you own"
    )]
    PermissionDenied {
        /// The path given.
        path: PathBuf,
    },
    /// Another I/O error while reading.
    #[error(
        "cannot read {path}: {source}; check the disk and that the file is not still being copied"
    )]
    Read {
        /// The file being read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// No supported container was recognised.
    #[error(
        "{path} is not a recognised audio file (supported: wav, flac, mp3, m4a/aac, ogg vorbis, opus); convert it with e.g. ffmpeg"
    )]
    NotAudio {
        /// The file.
        path: PathBuf,
    },
    /// The container was recognised but holds no audio track (e.g. a video-only file).
    #[error("{path} contains no audio track; export the audio (e.g. `ffmpeg -i in -vn out.wav`)")]
    NoAudioTrack {
        /// The file.
        path: PathBuf,
    },
    /// The audio is in a codec that cannot be decoded here.
    #[error(
        "{path} uses the {codec} codec, which is not supported ({reason}); convert it with e.g. `ffmpeg -i in -ar 16000 -ac 1 out.wav`"
    )]
    UnsupportedCodec {
        /// The file.
        path: PathBuf,
        /// The codec's name (or id when unknown).
        codec: String,
        /// What exactly is unsupported, as the decoder put it.
        reason: &'static str,
    },
    /// Nothing could be decoded: the file is cut off or damaged.
    #[error(
        "{path} is truncated or corrupt: no audio could be decoded ({skipped_packets} damaged packets); copy or export the recording again, or try repairing it with ffmpeg"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Packets that failed before giving up.
        skipped_packets: u64,
    },
    /// The file is valid but holds no samples.
    #[error("{path} contains no audio (0 seconds long); check that the right file was exported")]
    ZeroLength {
        /// The file.
        path: PathBuf,
    },
    /// The file's sample rate is missing or impossible.
    #[error(
        "{path} has an invalid sample rate ({rate} Hz); convert it with e.g. `ffmpeg -i in -ar 16000 -ac 1 out.wav`"
    )]
    InvalidSampleRate {
        /// The file.
        path: PathBuf,
        /// The rate found (0 when missing).
        rate: u32,
    },
    /// Conversion to 16 kHz failed.
    #[error(
        "{path}: cannot convert {rate} Hz audio to 16 kHz: {source}; convert it with e.g. `ffmpeg -i in -ar 16000 -ac 1 out.wav`"
    )]
    Resample {
        /// The file.
        path: PathBuf,
        /// The source sample rate.
        rate: u32,
        /// What failed.
        #[source]
        source: ResampleFailure,
    },
    /// A debug WAV could not be written.
    #[error("cannot write WAV {path}: {source}; check that the folder exists and is writable")]
    WriteWav {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Decodes `path` to 16 kHz mono. See the module docs for what is promised.
pub fn decode_file(path: &Path) -> Result<Audio, AudioError> {
    decode_file_with_stats(path).map(|(audio, _)| audio)
}

/// Like [`decode_file`], also reporting skipped packets and early ends so the caller can warn.
pub fn decode_file_with_stats(path: &Path) -> Result<(Audio, DecodeStats), AudioError> {
    let (file, bytes) = open_audio_file(path)?;
    let wav = check_wav_header(path)?;
    let mut format = probe_format(path, file)?;
    let track = select_audio_track(path, format.as_ref())?;
    let params = audio_params(path, &track)?;
    check_params(path, &params)?;
    let mut decoder = make_decoder(path, &params)?;
    let codec = decoder.codec_info().short_name.to_string();
    let mut stream = MonoStream::new(path, reserve_hint(&track, &params, wav.as_ref(), bytes));
    // What the header claims (for WAV its own `data` size, which Symphonia may clip).
    stream.expected_frames = wav.map(|w| w.claimed_frames()).or(track.num_frames);
    stream.max_output = bytes
        .saturating_mul(MAX_OUTPUT_SAMPLES_PER_BYTE)
        .max(MIN_OUTPUT_LIMIT);
    stream.file_bytes = bytes;
    stream.priming_left = priming_frames(path, format.as_ref(), &params);
    let mut gaps = GapTracker::new(track.time_base);
    decode_packets(
        path,
        format.as_mut(),
        decoder.as_mut(),
        (track.id, &mut gaps),
        &mut stream,
    )?;
    stream.into_audio(params, codec)
}

/// Checks that `path` is a regular, non-empty file without opening it for reading (opening a
/// FIFO blocks until a writer comes). Every reader of a recording calls this first. Returns its
/// size in bytes.
pub fn check_input_file(path: &Path) -> Result<u64, AudioError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    if meta.is_dir() {
        return Err(AudioError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    if !meta.is_file() {
        return Err(AudioError::NotRegularFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() == 0 {
        return Err(AudioError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(meta.len())
}

/// The rate and channels Symphonia read from any container, checked before decoding.
fn check_params(path: &Path, params: &AudioCodecParameters) -> Result<(), AudioError> {
    if let Some(rate) = params.sample_rate
        && !SAMPLE_RATES.contains(&rate)
    {
        return Err(AudioError::InvalidSampleRate {
            path: path.to_path_buf(),
            rate,
        });
    }
    if let Some(channels) = &params.channels {
        check_channel_count(path, channels.count())?;
    }
    Ok(())
}

fn check_channel_count(path: &Path, channels: usize) -> Result<(), AudioError> {
    let bad = |what: String| AudioError::BadHeader {
        path: path.to_path_buf(),
        what,
    };
    if channels == 0 {
        return Err(bad(
            "the header says 0 channels (the file is damaged)".to_string()
        ));
    }
    if channels > usize::from(MAX_CHANNELS) {
        return Err(bad(format!(
            "it has {channels} channels; at most {MAX_CHANNELS} are supported (mix it down to mono)"
        )));
    }
    Ok(())
}

/// What a WAV `fmt ` chunk and `data` chunk header say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavHeader {
    /// `wFormatTag` (1 PCM, 3 float, 0xFFFE extensible, …).
    pub format_tag: u16,
    /// Channel count.
    pub channels: u16,
    /// Frames per second.
    pub sample_rate: u32,
    /// Bytes per frame.
    pub block_align: u16,
    /// Bits per sample.
    pub bits_per_sample: u16,
    /// Where the samples start.
    pub data_offset: u64,
    /// The `data` chunk's size as the header gives it.
    pub data_len: u64,
}

impl WavHeader {
    /// Frames the header claims.
    pub fn claimed_frames(&self) -> u64 {
        self.data_len / u64::from(self.block_align.max(1))
    }

    /// Frames a file of `file_len` bytes can hold after the header.
    pub fn present_frames(&self, file_len: u64) -> u64 {
        file_len.saturating_sub(self.data_offset) / u64::from(self.block_align.max(1))
    }
}

/// Reads the `fmt ` and `data` chunk headers at the start of a RIFF/WAVE file: `None` for any
/// other file, or a RIFF file whose chunks cannot be walked (Symphonia then has its say).
pub fn parse_wav_header(bytes: &[u8]) -> Option<WavHeader> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let u16_at = |i: usize| -> Option<u16> {
        Some(u16::from_le_bytes(bytes.get(i..i + 2)?.try_into().ok()?))
    };
    let u32_at = |i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(i..i + 4)?.try_into().ok()?))
    };
    let mut pos = 12usize;
    let mut fmt: Option<(u16, u16, u32, u16, u16)> = None;
    while pos.checked_add(8)? <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = usize::try_from(u32_at(pos + 4)?).ok()?;
        let body = pos + 8;
        if id == b"fmt " {
            if len < 16 {
                return None;
            }
            fmt = Some((
                u16_at(body)?,
                u16_at(body + 2)?,
                u32_at(body + 4)?,
                u16_at(body + 12)?,
                u16_at(body + 14)?,
            ));
        } else if id == b"data" {
            let (format_tag, channels, sample_rate, block_align, bits_per_sample) = fmt?;
            return Some(WavHeader {
                format_tag,
                channels,
                sample_rate,
                block_align,
                bits_per_sample,
                data_offset: body as u64,
                data_len: len as u64,
            });
        }
        // Chunks are padded to an even length.
        pos = body.checked_add(len)?.checked_add(len % 2)?;
    }
    None
}

/// For a WAV file: checks channels, rate and sample size before Symphonia sees them, so each
/// impossible value gets a message that names it (Symphonia calls them all "corrupt", and a
/// rate of 2^31 made decoding run without end).
fn check_wav_header(path: &Path) -> Result<Option<WavHeader>, AudioError> {
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_end(&mut head))
        .map_err(|e| io_error(path, e))?;
    let Some(h) = parse_wav_header(&head) else {
        return Ok(None);
    };
    check_wav_fields(path, &h)?;
    Ok(Some(h))
}

fn check_wav_fields(path: &Path, h: &WavHeader) -> Result<(), AudioError> {
    const PCM: u16 = 1;
    const FLOAT: u16 = 3;
    const EXTENSIBLE: u16 = 0xFFFE;
    let bad = |what: String| AudioError::BadHeader {
        path: path.to_path_buf(),
        what,
    };
    check_channel_count(path, usize::from(h.channels))?;
    if !SAMPLE_RATES.contains(&h.sample_rate) {
        return Err(AudioError::InvalidSampleRate {
            path: path.to_path_buf(),
            rate: h.sample_rate,
        });
    }
    let bits = h.bits_per_sample;
    match h.format_tag {
        PCM | EXTENSIBLE if !matches!(bits, 8 | 16 | 24 | 32) => {
            return Err(bad(format!(
                "the header says {bits}-bit samples; PCM WAV has 8, 16, 24 or 32 bits"
            )));
        }
        FLOAT if !matches!(bits, 32 | 64) => {
            return Err(bad(format!(
                "the header says {bits}-bit float samples; float WAV has 32 or 64 bits"
            )));
        }
        _ => {}
    }
    let frame = u32::from(h.channels) * u32::from(bits) / 8;
    if matches!(h.format_tag, PCM | FLOAT | EXTENSIBLE) && u32::from(h.block_align) != frame {
        return Err(bad(format!(
            "the header's frame size ({} bytes) does not match {} channels of {bits} bits",
            h.block_align, h.channels
        )));
    }
    Ok(())
}

/// The length of a recording in seconds from its header, without decoding; `None` when the
/// container does not say (some MP3s) or the file cannot be opened. For progress estimates only.
pub fn probe_duration_s(path: &Path) -> Option<f64> {
    let (file, bytes) = open_audio_file(path).ok()?;
    let wav = check_wav_header(path).ok()?;
    let format = probe_format(path, file).ok()?;
    let track = select_audio_track(path, format.as_ref()).ok()?;
    let params = audio_params(path, &track).ok()?;
    check_params(path, &params).ok()?;
    let rate = params.sample_rate?;
    // For WAV never more than the file holds (a header claiming 37 h in 8 s of data).
    let frames = match wav {
        Some(w) => w.claimed_frames().min(w.present_frames(bytes)),
        None => track.num_frames?,
    };
    (rate > 0).then(|| frames as f64 / f64::from(rate))
}

/// Writes `samples` as a 16 kHz, 16-bit PCM mono WAV (atomically), for debugging and tests.
/// Samples outside `[-1, 1]` are clipped.
pub fn write_wav_16k(path: &Path, samples: &[f32]) -> Result<(), AudioError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    crate::atomic::write_atomic_with(path, |file| {
        let mut writer = hound::WavWriter::new(io::BufWriter::new(file), spec).map_err(hound_io)?;
        for &s in samples {
            writer.write_sample(f32_to_i16(s)).map_err(hound_io)?;
        }
        writer.finalize().map_err(hound_io)
    })
    .map_err(|e| AudioError::WriteWav {
        path: path.to_path_buf(),
        source: e.source,
    })
}

fn f32_to_i16(s: f32) -> i16 {
    // Clamped first, so the cast cannot wrap.
    (s.clamp(-1.0, 1.0) * f32::from(i16::MAX)).round() as i16
}

fn hound_io(e: hound::Error) -> io::Error {
    match e {
        hound::Error::IoError(e) => e,
        other => io::Error::other(other),
    }
}

/// Checks the path (exists, is a regular file, not empty, readable) and opens it. Returns the
/// file and its size.
fn open_audio_file(path: &Path) -> Result<(std::fs::File, u64), AudioError> {
    let bytes = check_input_file(path)?;
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    Ok((file, bytes))
}

/// Maps an I/O error to the variant that tells the user what to do.
fn io_error(path: &Path, e: io::Error) -> AudioError {
    let path = path.to_path_buf();
    match e.kind() {
        io::ErrorKind::NotFound => AudioError::NotFound { path },
        io::ErrorKind::PermissionDenied => AudioError::PermissionDenied { path },
        io::ErrorKind::IsADirectory => AudioError::IsDirectory { path },
        _ => AudioError::Read { path, source: e },
    }
}

/// Symphonia's default codecs plus libopus, built once. Symphonia has no Opus decoder of its own.
fn codec_registry() -> &'static CodecRegistry {
    static REGISTRY: LazyLock<CodecRegistry> = LazyLock::new(|| {
        let mut registry = CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut registry);
        registry.register_audio_decoder::<symphonia_adapter_libopus::OpusDecoder>();
        registry
    });
    &REGISTRY
}

fn probe_format(
    path: &Path,
    file: std::fs::File,
) -> Result<Box<dyn FormatReader + 'static>, AudioError> {
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| probe_error(path, e))
}

fn probe_error(path: &Path, e: SymphoniaError) -> AudioError {
    match e {
        // A container header that ends before it is complete: a cut-off file.
        SymphoniaError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            AudioError::Corrupt {
                path: path.to_path_buf(),
                skipped_packets: 0,
            }
        }
        SymphoniaError::IoError(e) => io_error(path, e),
        SymphoniaError::DecodeError(_) => AudioError::Corrupt {
            path: path.to_path_buf(),
            skipped_packets: 0,
        },
        _ => AudioError::NotAudio {
            path: path.to_path_buf(),
        },
    }
}

/// The default audio track, else the first track with audio codec parameters.
fn select_audio_track(path: &Path, format: &dyn FormatReader) -> Result<Track, AudioError> {
    let is_audio = |t: &&Track| t.codec_params.as_ref().is_some_and(|p| p.is_audio());
    format
        .default_track(TrackType::Audio)
        .filter(is_audio)
        .or_else(|| format.tracks().iter().find(is_audio))
        .cloned()
        .ok_or_else(|| AudioError::NoAudioTrack {
            path: path.to_path_buf(),
        })
}

fn audio_params(path: &Path, track: &Track) -> Result<AudioCodecParameters, AudioError> {
    track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .cloned()
        .ok_or_else(|| AudioError::NoAudioTrack {
            path: path.to_path_buf(),
        })
}

fn make_decoder(
    path: &Path,
    params: &AudioCodecParameters,
) -> Result<Box<dyn AudioDecoder>, AudioError> {
    let unsupported = |reason| AudioError::UnsupportedCodec {
        path: path.to_path_buf(),
        codec: codec_name(params.codec),
        reason,
    };
    if codec_registry().get_audio_decoder(params.codec).is_none() {
        return Err(unsupported("no decoder for it is built in"));
    }
    // Gapless (the default) trims encoder delay and padding, which keeps timestamps aligned.
    let opts = AudioDecoderOptions::default().gapless(true);
    codec_registry()
        .make_audio_decoder(params, &opts)
        .map_err(|e| match e {
            SymphoniaError::Unsupported(reason) => unsupported(reason),
            SymphoniaError::IoError(e) => io_error(path, e),
            _ => AudioError::Corrupt {
                path: path.to_path_buf(),
                skipped_packets: 0,
            },
        })
}

/// A readable name for codecs that have no decoder registered (so no `CodecInfo` to ask).
fn codec_name(id: AudioCodecId) -> String {
    if let Some(registered) = codec_registry().get_audio_decoder(id) {
        return registered.codec.info.short_name.to_string();
    }
    let known = [
        (codec_ids::CODEC_ID_AC3, "AC-3"),
        (codec_ids::CODEC_ID_SPEEX, "Speex"),
        (codec_ids::CODEC_ID_MUSEPACK, "Musepack"),
        (codec_ids::CODEC_ID_MP1, "MP1"),
        (codec_ids::CODEC_ID_MP2, "MP2"),
        (codec_ids::CODEC_ID_ADPCM_G722, "G.722"),
        (codec_ids::CODEC_ID_ADPCM_G726, "G.726"),
    ];
    known
        .iter()
        .find(|(known_id, _)| *known_id == id)
        .map(|(_, name)| (*name).to_string())
        .unwrap_or_else(|| format!("unknown (id {id})"))
}

/// Encoder priming frames Symphonia leaves in: it does not apply MP4 edit lists, so M4A/AAC
/// would otherwise start 1024–2112 frames late. Other containers are trimmed by Symphonia.
fn priming_frames(path: &Path, format: &dyn FormatReader, params: &AudioCodecParameters) -> u64 {
    match (format.format_info().short_name, params.sample_rate) {
        ("isomp4", Some(rate)) => mp4_edit::audio_priming_frames(path, rate).unwrap_or(0),
        _ => 0,
    }
}

/// Output samples to reserve up front, from the header's frame count when it has one, so the
/// output vector is allocated once instead of doubling (which would briefly need 1.5–2× memory).
/// A WAV header's claim is capped by what the file can hold.
fn reserve_hint(
    track: &Track,
    params: &AudioCodecParameters,
    wav: Option<&WavHeader>,
    bytes: u64,
) -> usize {
    let (Some(frames), Some(rate)) = (track.num_frames, params.sample_rate) else {
        return 0;
    };
    let frames = match wav {
        Some(w) => frames.min(w.present_frames(bytes)),
        None => frames,
    };
    let samples = resample::expected_output_frames(frames, rate).min(MAX_RESERVED_SAMPLES);
    usize::try_from(samples).unwrap_or(0)
}

/// Pulls packets from `format`, decodes those of `track_id` and feeds them to `stream`.
fn decode_packets(
    path: &Path,
    format: &mut dyn FormatReader,
    decoder: &mut dyn AudioDecoder,
    (track_id, gaps): (u32, &mut GapTracker),
    stream: &mut MonoStream,
) -> Result<(), AudioError> {
    let mut consecutive_errors = 0u32;
    loop {
        if consecutive_errors >= MAX_CONSECUTIVE_PACKET_ERRORS {
            stream.stats.ended_early = true;
            return Ok(());
        }
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => return Ok(()),
            // A new chained Ogg stream; recordings are a single stream, so stop at the first.
            Err(SymphoniaError::ResetRequired) => return Ok(()),
            Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                stream.stats.ended_early = true;
                return Ok(());
            }
            Err(SymphoniaError::IoError(e)) => return Err(io_error(path, e)),
            Err(_) => {
                stream.stats.skipped_packets += 1;
                consecutive_errors += 1;
                continue;
            }
        };
        if packet.track_id != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buf) => {
                consecutive_errors = 0;
                let missing = gaps.missing_frames(&packet, buf.spec().rate());
                stream.push_decoded(&buf, missing)?;
                gaps.advance(&packet);
            }
            Err(SymphoniaError::ResetRequired) => decoder.reset(),
            Err(SymphoniaError::Unsupported(reason)) => {
                stream.last_unsupported = Some(reason);
                stream.stats.skipped_packets += 1;
                consecutive_errors += 1;
            }
            // Damaged packet: skip it and keep going.
            Err(_) => {
                stream.stats.skipped_packets += 1;
                consecutive_errors += 1;
            }
        }
    }
}

/// Keeps the output on the file's timeline when audio goes missing: a damaged Ogg page or FLAC
/// frame is dropped by the demuxer, and a packet that fails to decode yields nothing, so without
/// this everything after the damage would come out early. Gaps are found from packet timestamps.
struct GapTracker {
    time_base: Option<TimeBase>,
    /// Where the next packet should start, in time-base ticks (end of the last decoded packet).
    next_pts: Option<i64>,
}

impl GapTracker {
    fn new(time_base: Option<TimeBase>) -> Self {
        Self {
            time_base,
            next_pts: None,
        }
    }

    /// Source frames missing between the last decoded packet and `packet`. Jitter under 10 ms is
    /// ignored (timestamp rounding), and so are jumps over 10 minutes (a bogus timestamp is
    /// likelier than that much lost audio).
    fn missing_frames(&self, packet: &Packet, rate: u32) -> u64 {
        let (Some(expected), Some(tb)) = (self.next_pts, self.time_base) else {
            return 0;
        };
        let Ok(ticks) = u64::try_from(packet.pts.get().saturating_sub(expected)) else {
            return 0;
        };
        let frames = u128::from(ticks) * u128::from(tb.numer.get()) * u128::from(rate)
            / u128::from(tb.denom.get());
        let frames = u64::try_from(frames).unwrap_or(u64::MAX);
        let rate = u64::from(rate);
        if frames < rate / 100 || frames > rate * 600 {
            return 0;
        }
        frames
    }

    /// Marks `packet` as decoded. Its full span counts: `dur` excludes the trimmed frames, but the
    /// next packet's timestamp follows all of them.
    fn advance(&mut self, packet: &Packet) {
        let span = packet
            .dur
            .get()
            .saturating_add(packet.trim_start.get())
            .saturating_add(packet.trim_end.get());
        let span = i64::try_from(span).unwrap_or(i64::MAX);
        self.next_pts = Some(packet.pts.get().saturating_add(span));
    }
}

/// Mixes decoded buffers to mono and converts them to 16 kHz as they arrive.
struct MonoStream {
    path: PathBuf,
    out: Vec<f32>,
    resampler: Option<To16k>,
    /// Rate and channel count of the first decoded buffer.
    source: Option<(u32, u16)>,
    interleaved: Vec<f32>,
    mono: Vec<f32>,
    stats: DecodeStats,
    last_unsupported: Option<&'static str>,
    /// Source frames the header says the file has, when it says.
    expected_frames: Option<u64>,
    /// Source frames still to drop from the start (encoder priming not trimmed by the decoder).
    priming_left: u64,
    /// The decode watchdog: more output samples than this and the file is refused.
    max_output: u64,
    /// The file's size, for the watchdog's message.
    file_bytes: u64,
}

impl MonoStream {
    fn new(path: &Path, reserve: usize) -> Self {
        Self {
            path: path.to_path_buf(),
            out: Vec::with_capacity(reserve),
            resampler: None,
            source: None,
            interleaved: Vec::new(),
            mono: Vec::new(),
            stats: DecodeStats::default(),
            last_unsupported: None,
            expected_frames: None,
            priming_left: 0,
            max_output: u64::MAX,
            file_bytes: 0,
        }
    }

    /// Stops a file that decodes to far more audio than its size allows (see
    /// [`MAX_OUTPUT_SAMPLES_PER_BYTE`]) before it takes all memory.
    fn watchdog(&self) -> Result<(), AudioError> {
        if self.out.len() as u64 > self.max_output {
            return Err(AudioError::Runaway {
                path: self.path.clone(),
                bytes: self.file_bytes,
                seconds: self.out.len() as u64 / u64::from(SAMPLE_RATE),
            });
        }
        Ok(())
    }

    /// Appends `buf`, preceded by `silence_frames` of silence standing in for lost audio.
    fn push_decoded(
        &mut self,
        buf: &symphonia::core::audio::GenericAudioBufferRef<'_>,
        silence_frames: u64,
    ) -> Result<(), AudioError> {
        let rate = buf.spec().rate();
        let channels = buf.spec().channels().count();
        if buf.frames() == 0 || channels == 0 {
            return Ok(());
        }
        if self.resampler.is_none() {
            self.start(rate, channels)?;
        }
        // A mid-stream rate change (seen in damaged MP3s) cannot be stitched in without a new
        // resampler; such packets are treated as damaged.
        if self.source.is_some_and(|(r, _)| r != rate) {
            self.stats.skipped_packets += 1;
            return Ok(());
        }
        let Some(resampler) = self.resampler.as_mut() else {
            return Ok(());
        };
        let resample_error = |source| AudioError::Resample {
            path: self.path.clone(),
            rate,
            source,
        };
        if silence_frames > 0 {
            self.stats.silence_inserted_frames += silence_frames;
            push_silence(resampler, silence_frames, &mut self.out).map_err(resample_error)?;
        }
        buf.copy_to_vec_interleaved::<f32>(&mut self.interleaved);
        self.stats.non_finite_samples += mix_to_mono(&self.interleaved, channels, &mut self.mono);
        let drop = usize::try_from(self.priming_left)
            .unwrap_or(usize::MAX)
            .min(self.mono.len());
        self.priming_left -= drop as u64;
        resampler
            .push(&self.mono[drop..], &mut self.out)
            .map_err(resample_error)?;
        self.watchdog()
    }

    /// Sets up the converter once the first buffer tells us the real rate and channel count.
    fn start(&mut self, rate: u32, channels: usize) -> Result<(), AudioError> {
        if rate == 0 {
            return Err(AudioError::InvalidSampleRate {
                path: self.path.clone(),
                rate,
            });
        }
        let resampler = To16k::new(rate).map_err(|source| AudioError::Resample {
            path: self.path.clone(),
            rate,
            source,
        })?;
        self.source = Some((rate, u16::try_from(channels).unwrap_or(u16::MAX)));
        self.resampler = Some(resampler);
        Ok(())
    }

    fn into_audio(
        mut self,
        params: AudioCodecParameters,
        codec: String,
    ) -> Result<(Audio, DecodeStats), AudioError> {
        let (Some(resampler), Some((rate, channels))) = (self.resampler.take(), self.source) else {
            return Err(self.nothing_decoded(&params, codec));
        };
        self.stats.source_frames = resampler.source_frames();
        // Missing more than 0.1 s of what the header promised: the file was cut off.
        if self
            .expected_frames
            .is_some_and(|n| self.stats.source_frames + u64::from(rate / 10) < n)
        {
            self.stats.ended_early = true;
        }
        resampler
            .finish(&mut self.out)
            .map_err(|source| AudioError::Resample {
                path: self.path.clone(),
                rate,
                source,
            })?;
        if self.out.is_empty() {
            return Err(AudioError::ZeroLength { path: self.path });
        }
        // Give back an over-estimated reservation; for large buffers this is a remap, not a copy.
        if self.out.capacity() > self.out.len() + SAMPLE_RATE as usize {
            self.out.shrink_to_fit();
        }
        let report = self.report(rate);
        let audio = Audio {
            samples: self.out,
            source_sample_rate: rate,
            source_channels: channels,
            codec,
            report,
        };
        Ok((audio, self.stats))
    }

    /// The user-facing summary of [`DecodeStats`] and the header's claim.
    fn report(&self, rate: u32) -> DecodeReport {
        let decoded_ms = self.out.len() as u64 * 1000 / u64::from(SAMPLE_RATE);
        let header_ms = self
            .expected_frames
            .map(|n| {
                u64::try_from(u128::from(n) * 1000 / u128::from(rate.max(1))).unwrap_or(u64::MAX)
            })
            .filter(|&h| h.abs_diff(decoded_ms) > DURATION_MISMATCH_MS);
        DecodeReport {
            ended_early: self.stats.ended_early,
            skipped_packets: self.stats.skipped_packets,
            non_finite_samples: self.stats.non_finite_samples,
            header_duration_ms: header_ms,
            decoded_duration_ms: header_ms.map(|_| decoded_ms),
        }
    }

    /// The error for a file that produced no samples at all.
    fn nothing_decoded(self, params: &AudioCodecParameters, codec: String) -> AudioError {
        if let Some(reason) = self.last_unsupported {
            return AudioError::UnsupportedCodec {
                path: self.path,
                codec,
                reason,
            };
        }
        let header_promised_audio = self.expected_frames.is_some_and(|n| n > 0);
        if self.stats.skipped_packets > 0 || self.stats.ended_early || header_promised_audio {
            return AudioError::Corrupt {
                path: self.path,
                skipped_packets: self.stats.skipped_packets,
            };
        }
        // A header that still lacks a usable rate means we never had a chance to decode.
        if params.sample_rate == Some(0) {
            return AudioError::InvalidSampleRate {
                path: self.path,
                rate: 0,
            };
        }
        AudioError::ZeroLength { path: self.path }
    }
}

/// Feeds `frames` of silence, a block at a time so a long gap needs no big buffer.
fn push_silence(
    resampler: &mut To16k,
    frames: u64,
    out: &mut Vec<f32>,
) -> Result<(), ResampleFailure> {
    const BLOCK: usize = 4096;
    let zeros = [0.0f32; BLOCK];
    let mut left = frames;
    while left > 0 {
        let n = usize::try_from(left).unwrap_or(BLOCK).min(BLOCK);
        resampler.push(&zeros[..n], out)?;
        left -= n as u64;
    }
    Ok(())
}

/// Averages interleaved frames of `channels` samples into `mono` (replacing its contents),
/// clipped to `[-1, 1]` since float decoders may overshoot slightly. NaN and infinite samples
/// (a damaged float WAV) become 0; returns how many there were.
fn mix_to_mono(interleaved: &[f32], channels: usize, mono: &mut Vec<f32>) -> u64 {
    mono.clear();
    let mut non_finite = 0u64;
    let mut finite = |s: f32| {
        if s.is_finite() {
            s
        } else {
            non_finite += 1;
            0.0
        }
    };
    if channels == 1 {
        mono.extend(interleaved.iter().map(|&s| finite(s).clamp(-1.0, 1.0)));
        return non_finite;
    }
    let scale = 1.0 / channels as f32;
    mono.extend(
        interleaved
            .chunks_exact(channels)
            .map(|frame| (frame.iter().map(|&s| finite(s)).sum::<f32>() * scale).clamp(-1.0, 1.0)),
    );
    non_finite
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_averages_channels() {
        let mut mono = Vec::new();
        mix_to_mono(&[1.0, 0.0, -0.5, 0.5, 0.25, 0.25], 2, &mut mono);
        assert_eq!(mono, vec![0.5, 0.0, 0.25]);
        mix_to_mono(&[2.0, -3.0], 1, &mut mono);
        assert_eq!(mono, vec![1.0, -1.0]);
    }

    #[test]
    fn watchdog_stops_output_past_the_limit() {
        let mut stream = MonoStream::new(Path::new("x.ogg"), 0);
        stream.max_output = 16_000;
        stream.file_bytes = 16;
        stream.out = vec![0.0; 16_000];
        assert!(stream.watchdog().is_ok());
        stream.out.push(0.0);
        let err = stream.watchdog().unwrap_err();
        assert!(
            matches!(
                err,
                AudioError::Runaway {
                    bytes: 16,
                    seconds: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("x.ogg: decoding gave over 1 s of audio from 16 bytes")
        );
    }

    #[test]
    fn wav_headers_are_found_behind_other_chunks() {
        let mut v = b"RIFF\0\0\0\0WAVE".to_vec();
        v.extend_from_slice(b"LIST\x03\0\0\0abc\0"); // odd length: padded
        v.extend_from_slice(b"fmt \x10\0\0\0\x01\0\x02\0\x80\x3e\0\0\0\xfa\0\0\x04\0\x10\0");
        v.extend_from_slice(b"data\x08\0\0\0");
        let h = parse_wav_header(&v).unwrap();
        assert_eq!(
            (h.channels, h.sample_rate, h.bits_per_sample),
            (2, 16_000, 16)
        );
        assert_eq!(
            (h.data_offset, h.data_len, h.claimed_frames()),
            (v.len() as u64, 8, 2)
        );
        assert_eq!(h.present_frames(v.len() as u64 + 4), 1);
        assert_eq!(parse_wav_header(&v[..v.len() - 9]), None);
        assert_eq!(parse_wav_header(b"OggS"), None);
    }

    #[test]
    fn mix_replaces_non_finite_samples_and_counts_them() {
        let mut mono = Vec::new();
        let n = mix_to_mono(
            &[f32::NAN, 0.5, f32::INFINITY, f32::NEG_INFINITY],
            1,
            &mut mono,
        );
        assert_eq!((n, &mono), (3, &vec![0.0, 0.5, 0.0, 0.0]));
        let n = mix_to_mono(&[f32::NAN, 0.5], 2, &mut mono);
        assert_eq!((n, &mono), (1, &vec![0.25]));
    }

    #[test]
    fn f32_to_i16_clips_and_rounds() {
        assert_eq!(f32_to_i16(0.0), 0);
        assert_eq!(f32_to_i16(1.0), i16::MAX);
        assert_eq!(f32_to_i16(-1.0), -i16::MAX);
        assert_eq!(f32_to_i16(7.0), i16::MAX);
        assert_eq!(f32_to_i16(-7.0), -i16::MAX);
    }

    #[test]
    fn io_errors_map_to_variants() {
        let p = Path::new("x.wav");
        let kind = |k| io_error(p, io::Error::from(k));
        assert!(matches!(
            kind(io::ErrorKind::NotFound),
            AudioError::NotFound { .. }
        ));
        assert!(matches!(
            kind(io::ErrorKind::PermissionDenied),
            AudioError::PermissionDenied { .. }
        ));
        assert!(matches!(
            kind(io::ErrorKind::Interrupted),
            AudioError::Read { .. }
        ));
    }

    #[test]
    fn duration_ms_counts_16k_samples() {
        let audio = Audio {
            samples: vec![0.0; 16_000 * 3 + 15],
            source_sample_rate: 48_000,
            source_channels: 2,
            codec: "pcm".into(),
            report: DecodeReport::default(),
        };
        assert_eq!(audio.duration_ms(), 3000);
    }

    #[test]
    fn unknown_codec_has_a_name() {
        assert_eq!(codec_name(codec_ids::CODEC_ID_AC3), "AC-3");
        assert_eq!(codec_name(codec_ids::CODEC_ID_OPUS), "opus");
    }
}
