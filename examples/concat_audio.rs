//! Builds a long benchmark recording: decodes the given files to 16 kHz mono and appends them
//! in turn (half a second of silence between) until `SECONDS` of audio, then writes a WAV.
//! `cargo run --release --example concat_audio -- OUT.wav SECONDS FILE...`

use std::path::PathBuf;

use anyhow::{Context, bail};
use qualscribe::audio;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        bail!("usage: concat_audio OUT.wav SECONDS FILE...");
    }
    let out = PathBuf::from(&args[0]);
    let seconds: f64 = args[1].parse().context("SECONDS must be a number")?;
    let rate = audio::SAMPLE_RATE as usize;
    let target = (seconds * rate as f64) as usize;
    let clips = args[2..]
        .iter()
        .map(|f| audio::decode_file(f.as_ref()).map(|a| a.samples))
        .collect::<Result<Vec<_>, _>>()?;
    if clips.iter().all(Vec::is_empty) {
        bail!("the inputs hold no audio");
    }
    let gap = vec![0f32; rate / 2];
    let mut samples = Vec::with_capacity(target + rate);
    for clip in clips.iter().cycle() {
        if samples.len() >= target {
            break;
        }
        samples.extend_from_slice(clip);
        samples.extend_from_slice(&gap);
    }
    samples.truncate(target);
    audio::write_wav_16k(&out, &samples)?;
    println!(
        "{}: {:.1} s from {} files",
        out.display(),
        samples.len() as f64 / rate as f64,
        clips.len()
    );
    Ok(())
}
