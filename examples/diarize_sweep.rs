//! Clustering-threshold sweep for diarization: each recording is decoded, voice-detected and
//! embedded once, then clustered at every threshold; prints DER (pyannote definitions, overlap
//! scored, collar 0.25 and 0) and speaker-count hits per threshold. With `--rttm-dir DIR`, the
//! RTTM and diarization JSON (speaker embeddings included) of the first threshold are written
//! there (one file each per recording), to score with `qualscribe eval der`.
//!
//! usage: cargo run --release --example diarize_sweep -- --ref REF.rttm [--uem UEM]
//!        [--thresholds 0.2,0.3] [--step-ms 400] [--rttm-dir DIR] AUDIO...

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use qualscribe::diarize::{DiarizeConfig, SpeakerEmbedder, diarize_windows, to_rttm_turns};
use qualscribe::eval::der::{DerOptions, diarization_error, total};
use qualscribe::eval::rttm::{Turn, read_rttm, read_uem, write_rttm};
use qualscribe::models;
use qualscribe::vad::{Vad, VadConfig};

struct Args {
    reference: PathBuf,
    uem: Option<PathBuf>,
    thresholds: Vec<f32>,
    step_ms: u64,
    rttm_dir: Option<PathBuf>,
    audio: Vec<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let mut args = Args {
        reference: PathBuf::new(),
        uem: None,
        thresholds: vec![DiarizeConfig::default().threshold],
        step_ms: DiarizeConfig::default().step_ms,
        rttm_dir: None,
        audio: Vec::new(),
    };
    while let Some(a) = it.next() {
        let mut value = || it.next().context("missing value");
        match a.as_str() {
            "--ref" => args.reference = value()?.into(),
            "--uem" => args.uem = Some(value()?.into()),
            "--step-ms" => args.step_ms = value()?.parse()?,
            "--rttm-dir" => args.rttm_dir = Some(value()?.into()),
            "--thresholds" => {
                args.thresholds = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            _ => args.audio.push(a.into()),
        }
    }
    if args.audio.is_empty() || args.reference.as_os_str().is_empty() {
        bail!("usage: diarize_sweep --ref REF.rttm [--uem UEM] [--thresholds a,b] AUDIO...");
    }
    Ok(args)
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn speakers_in(reference: &[Turn], uri: &str) -> usize {
    let mut names: Vec<&str> = reference
        .iter()
        .filter(|t| t.uri == uri)
        .map(|t| t.speaker.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    names.len()
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let dir = models::default_models_dir();
    let embedder = SpeakerEmbedder::load(&models::resolve_speaker(&dir)?)?;
    let vad = Vad::load(&models::resolve_vad(&dir)?)?;
    let reference = read_rttm(&args.reference)?;
    let uem = args.uem.as_deref().map(read_uem).transpose()?;
    let mut prepared = Vec::new();
    let started = std::time::Instant::now();
    for path in &args.audio {
        let audio = qualscribe::audio::decode_file(path)?;
        let speech = vad.detect(&audio.samples, &VadConfig::default())?;
        let windows = embedder.embed_windows(&audio.samples, &speech, args.step_ms)?;
        prepared.push((stem(path), speech, windows));
    }
    eprintln!("embedded in {:.1} s", started.elapsed().as_secs_f64());
    // Only the recordings given are scored (the reference may hold more).
    let reference: Vec<Turn> = reference
        .into_iter()
        .filter(|t| prepared.iter().any(|(uri, _, _)| *uri == t.uri))
        .collect();
    for (i, &threshold) in args.thresholds.iter().enumerate() {
        let cfg = DiarizeConfig {
            threshold,
            step_ms: args.step_ms,
            ..Default::default()
        };
        let mut hypothesis = Vec::new();
        let mut hits = 0;
        let mut counts = Vec::new();
        for (uri, speech, windows) in &prepared {
            let d = diarize_windows(uri, speech, windows, &cfg, embedder.model_sha256())?;
            let turns = to_rttm_turns(&d);
            if i == 0
                && let Some(out) = &args.rttm_dir
            {
                std::fs::create_dir_all(out)?;
                std::fs::write(out.join(format!("{uri}.rttm")), write_rttm(&turns))?;
                std::fs::write(
                    out.join(format!("{uri}.diarization.json")),
                    qualscribe::pipeline::diarization_json(&d),
                )?;
            }
            let expected = speakers_in(&reference, uri);
            hits += usize::from(d.speakers.len() == expected);
            counts.push(format!("{}/{}", d.speakers.len(), expected));
            hypothesis.extend(turns);
        }
        let der = |collar_s| {
            let opts = DerOptions {
                collar_s,
                skip_overlap: false,
            };
            let reports: BTreeMap<_, _> =
                diarization_error(&reference, &hypothesis, uem.as_deref(), &opts);
            total(&reports)
        };
        let (c, s) = (der(0.25), der(0.0));
        println!(
            "threshold {threshold:.2}: DER {:.1} % (collar 0.25; missed {:.1} %, false alarm {:.1} %, confusion {:.1} %), {:.1} % (no collar); count right {hits}/{} [{}]",
            100.0 * c.der(),
            100.0 * c.missed_s / c.total_s,
            100.0 * c.false_alarm_s / c.total_s,
            100.0 * c.confusion_s / c.total_s,
            100.0 * s.der(),
            prepared.len(),
            counts.join(" ")
        );
    }
    Ok(())
}
