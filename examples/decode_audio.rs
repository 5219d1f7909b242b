//! Decodes audio files to 16 kHz mono and prints what came out and how fast, e.g.
//! `cargo run --release --example decode_audio -- a.ogg b.flac [--wav out.wav]`.
//! Used to measure decode speed (× realtime) and, under `/usr/bin/time -v`, peak memory.

use std::path::PathBuf;
use std::time::Instant;

use qualscribe::audio;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let mut wav_out: Option<PathBuf> = None;
    let mut inputs = Vec::new();
    while let Some(arg) = args.next() {
        if arg == "--wav" {
            wav_out = args.next().map(PathBuf::from);
        } else {
            inputs.push(PathBuf::from(arg));
        }
    }
    for path in &inputs {
        let started = Instant::now();
        let (decoded, stats) = audio::decode_file_with_stats(path)?;
        let secs = started.elapsed().as_secs_f64();
        let audio_secs = decoded.samples.len() as f64 / f64::from(audio::SAMPLE_RATE);
        println!(
            "{}: codec {} {} Hz {} ch -> {} samples ({:.3} s), skipped {}, ended early {}, {:.3} s wall, {:.0}x realtime",
            path.display(),
            decoded.codec,
            decoded.source_sample_rate,
            decoded.source_channels,
            decoded.samples.len(),
            audio_secs,
            stats.skipped_packets,
            stats.ended_early,
            secs,
            audio_secs / secs.max(1e-9),
        );
        if let Some(out) = &wav_out {
            audio::write_wav_16k(out, &decoded.samples)?;
        }
    }
    Ok(())
}
