//! The long-form real-speech benchmark (see `scripts/bench-asr.sh`): builds the recordings,
//! runs whisper.cpp alone on them, and scores any system utterance by utterance.
//!
//! ```text
//! longform build CORPUS_DIR OUT_DIR [PROMPTS] # OUT_DIR/<name>.wav and <name>.utterances.json
//! longform plain MODEL LANG THREADS WAV OUT  # whisper.cpp alone on the whole file (no VAD);
//!                                            # MODEL is an installed spec such as `base`
//! longform score SET.utterances.json HYP...  # per-utterance WER, lost utterances, invented words
//! ```
//!
//! The recordings are FLEURS read sentences (real voices, references by FLEURS), joined with
//! pauses: `es-pauses` (pauses of 1.5–7 s), `es-continuous` (0.1–0.5 s, as in fluent talk) and
//! `en-pauses`. Each is at least 5 minutes, so each has many 30 s windows and seams; every
//! clip occurs two or three times, in a different order each pass.
//!
//! With `PROMPTS` (the `es_MX_f_Allison` folder of Debian's `asterisk-core-sounds-es-wav`:
//! professional phone prompts, 8 kHz) a fourth recording, `es-prompts`, joins the prompts of
//! 2–12 s with pauses of 0.8–4 s. The package has no texts, so those utterances only count as
//! missing (no word at all in them), not in the WER.
//!
//! A hypothesis (`HYP`) is a qualscribe `.transcript.json`, this program's `plain` output, or a
//! `bench_faster_whisper.py` JSON line file (its `words`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use qualscribe::audio;
use qualscribe::eval::longform::{self, Utterance};
use qualscribe::transcript::Word;
use serde::{Deserialize, Serialize};
use whisper_rs::{
    DtwMode, DtwModelPreset, DtwParameters, FullParams, SamplingStrategy, WhisperContext,
    WhisperContextParameters,
};

/// A built recording's description, next to its WAV.
#[derive(Serialize, Deserialize)]
struct SetFile {
    language: String,
    wav: String,
    utterances: Vec<Utterance>,
}

/// One recording of the set: language, clip passes, pause range.
struct Recipe {
    name: &'static str,
    language: &'static str,
    passes: usize,
    pause_ms: (u64, u64),
}

const RECIPES: &[Recipe] = &[
    Recipe {
        name: "es-pauses",
        language: "es",
        passes: 2,
        pause_ms: (1_500, 7_000),
    },
    Recipe {
        name: "es-continuous",
        language: "es",
        passes: 3,
        pause_ms: (100, 500),
    },
    Recipe {
        name: "en-pauses",
        language: "en",
        passes: 3,
        pause_ms: (500, 5_000),
    },
];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("build") if args.len() == 3 || args.len() == 4 => {
            build(Path::new(&args[1]), Path::new(&args[2]))?;
            match args.get(3) {
                Some(prompts) => build_prompts(Path::new(prompts), Path::new(&args[2])),
                None => Ok(()),
            }
        }
        Some("plain") if args.len() == 6 => plain(&args[1], &args[2], &args[3], &args[4], &args[5]),
        Some("score") if args.len() >= 3 => score(Path::new(&args[1]), &args[2..]),
        _ => bail!(
            "usage: longform build CORPUS OUT_DIR | plain MODEL LANG THREADS WAV OUT | score SET.utterances.json HYP..."
        ),
    }
}

/// A small deterministic generator: the same set on every machine.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn build(corpus: &Path, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    for (r_ix, r) in RECIPES.iter().enumerate() {
        let wav = out.join(format!("{}.wav", r.name));
        let json = out.join(format!("{}.utterances.json", r.name));
        if wav.exists() && json.exists() {
            println!("{}: already built", wav.display());
            continue;
        }
        let mut clips = Vec::new();
        for i in 0..10 {
            let path = corpus.join(format!("fleurs/fleurs-{}-{i:03}.ogg", r.language));
            let text = std::fs::read_to_string(path.with_extension("txt"))
                .with_context(|| format!("reading the reference of {}", path.display()))?;
            clips.push((audio::decode_file(&path)?.samples, text.trim().to_string()));
        }
        let mut rng = Lcg(0x5eed + r_ix as u64);
        let mut order = Vec::new();
        for _ in 0..r.passes {
            let mut pass: Vec<usize> = (0..clips.len()).collect();
            for i in (1..pass.len()).rev() {
                pass.swap(i, rng.next() as usize % (i + 1));
            }
            order.extend(pass);
        }
        let chosen: Vec<(Vec<f32>, String)> = order.iter().map(|&i| clips[i].clone()).collect();
        let pauses: Vec<u64> = (0..chosen.len())
            .map(|i| {
                if i == 0 {
                    1_000
                } else {
                    rng.between(r.pause_ms.0, r.pause_ms.1)
                }
            })
            .collect();
        let (mut samples, utterances) = longform::concatenate(&chosen, &pauses);
        samples.resize(samples.len() + 16_000, 0.0);
        audio::write_wav_16k(&wav, &samples)?;
        let set = SetFile {
            language: r.language.to_string(),
            wav: wav.display().to_string(),
            utterances,
        };
        std::fs::write(&json, serde_json::to_string_pretty(&set)?)?;
        println!(
            "{}: {:.1} s, {} utterances",
            wav.display(),
            samples.len() as f64 / 16_000.0,
            set.utterances.len()
        );
    }
    Ok(())
}

/// `es-prompts`: phone prompts of 2–12 s, in a fixed shuffled order, until 5.5 minutes.
fn build_prompts(prompts: &Path, out: &Path) -> anyhow::Result<()> {
    let wav = out.join("es-prompts.wav");
    let json = out.join("es-prompts.utterances.json");
    if wav.exists() && json.exists() {
        println!("{}: already built", wav.display());
        return Ok(());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(prompts)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    files.sort();
    let mut rng = Lcg(0x0a57e);
    for i in (1..files.len()).rev() {
        files.swap(i, rng.next() as usize % (i + 1));
    }
    let mut clips = Vec::new();
    let mut total_s = 0.0;
    for f in files {
        let samples = audio::decode_file(&f)?.samples;
        let secs = samples.len() as f64 / 16_000.0;
        if !(2.0..=12.0).contains(&secs) {
            continue;
        }
        total_s += secs + 2.4;
        clips.push((samples, String::new()));
        if total_s >= 330.0 {
            break;
        }
    }
    let pauses: Vec<u64> = (0..clips.len()).map(|_| rng.between(800, 4_000)).collect();
    let (mut samples, utterances) = longform::concatenate(&clips, &pauses);
    samples.resize(samples.len() + 16_000, 0.0);
    audio::write_wav_16k(&wav, &samples)?;
    let set = SetFile {
        language: "es".to_string(),
        wav: wav.display().to_string(),
        utterances,
    };
    std::fs::write(&json, serde_json::to_string_pretty(&set)?)?;
    println!(
        "{}: {:.1} s, {} prompts (no reference texts)",
        wav.display(),
        samples.len() as f64 / 16_000.0,
        set.utterances.len()
    );
    Ok(())
}

/// whisper.cpp's own defaults on the whole file, as `whisper-cli` runs it: no voice activity
/// detection, no guards, greedy; only the language and token times set.
fn plain(model: &str, lang: &str, threads: &str, wav: &str, out: &str) -> anyhow::Result<()> {
    whisper_rs::install_logging_hooks();
    let threads: i32 = threads.parse().context("THREADS must be a number")?;
    let samples = audio::decode_file(Path::new(wav))?.samples;
    let file =
        qualscribe::models::resolve_whisper(&qualscribe::models::default_models_dir(), model)?;
    let path = file.path.to_str().context("model path is not UTF-8")?;
    // Token times from DTW (whisper.cpp's own option; it does not change the text), so words
    // can be scored by where they are heard, as qualscribe's are.
    let mut ctx_params = WhisperContextParameters::default();
    if let Some(model_preset) = dtw_preset(model) {
        ctx_params.flash_attn(false);
        ctx_params.dtw_parameters(DtwParameters {
            mode: DtwMode::ModelPreset { model_preset },
            ..DtwParameters::default()
        });
    }
    let ctx = WhisperContext::new_with_params(path, ctx_params)
        .with_context(|| format!("loading {model}"))?;
    let mut state = ctx.create_state()?;
    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_n_threads(threads);
    params.set_language(Some(lang));
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_special(false);
    params.set_print_timestamps(false);
    params.set_token_timestamps(true);
    let started = std::time::Instant::now();
    state.full(params, &samples)?;
    let wall_s = started.elapsed().as_secs_f64();
    let eot = ctx.token_eot();
    let mut words: Vec<Word> = Vec::new();
    for seg in state.as_iter() {
        for i in 0..seg.n_tokens() {
            let Some(token) = seg.get_token(i) else {
                continue;
            };
            let data = token.token_data();
            if data.id >= eot {
                continue;
            }
            let bytes = token.to_bytes()?.to_vec();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let start = if data.t_dtw >= 0 { data.t_dtw } else { data.t0 };
            let (start_ms, end_ms) = (start.max(0) as u64 * 10, data.t1.max(0) as u64 * 10);
            match words.last_mut() {
                Some(w) if !text.starts_with(' ') => {
                    w.text.push_str(&text);
                    w.end_ms = w.end_ms.max(end_ms);
                }
                _ => words.push(Word {
                    text,
                    start_ms,
                    end_ms: end_ms.max(start_ms),
                    probability: data.p,
                }),
            }
        }
    }
    for w in &mut words {
        w.text = w.text.trim().to_string();
    }
    words.retain(|w| !w.text.is_empty());
    std::fs::write(out, serde_json::to_string(&words)?)?;
    println!(
        "{wav}: whisper.cpp alone, {} words, {wall_s:.1} s decoding",
        words.len()
    );
    Ok(())
}

/// The alignment heads of the standard models, by installed spec.
fn dtw_preset(spec: &str) -> Option<DtwModelPreset> {
    Some(match spec.split('-').next()? {
        "tiny" => DtwModelPreset::Tiny,
        "tiny.en" => DtwModelPreset::TinyEn,
        "base" => DtwModelPreset::Base,
        "base.en" => DtwModelPreset::BaseEn,
        "small" => DtwModelPreset::Small,
        _ => return None,
    })
}

/// The words of a hypothesis file, whatever system wrote it.
fn hypothesis_words(path: &Path, wav: &str) -> anyhow::Result<Vec<Word>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "jsonl") {
        // bench_faster_whisper.py: one line per file; pick the line of this recording.
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line)?;
            if v["file"]
                .as_str()
                .is_some_and(|f| Path::new(f).file_name() == Path::new(wav).file_name())
            {
                return Ok(serde_json::from_value(v["words"].clone())?);
            }
        }
        bail!("{} has no line for {wav}", path.display());
    }
    let v: serde_json::Value = serde_json::from_str(&text)?;
    if let Some(segments) = v["segments"].as_array() {
        let mut words = Vec::new();
        for s in segments {
            words.extend(serde_json::from_value::<Vec<Word>>(s["words"].clone())?);
        }
        return Ok(words);
    }
    Ok(serde_json::from_value(v)?)
}

fn score(set_path: &Path, hyps: &[String]) -> anyhow::Result<()> {
    let set: SetFile = serde_json::from_str(&std::fs::read_to_string(set_path)?)?;
    let name = set_path
        .file_name()
        .map(|n| n.to_string_lossy().replace(".utterances.json", ""))
        .unwrap_or_default();
    for hyp in hyps {
        let hyp = PathBuf::from(hyp);
        let words = hypothesis_words(&hyp, &set.wav)?;
        let s = longform::score(&set.utterances, &words, &set.language);
        let missing: Vec<String> = s
            .missing()
            .map(|u| format!("#{} at {:.1}s", u.index, u.start_ms as f64 / 1000.0))
            .collect();
        println!(
            "{name:14} {:48} WER {:5.1} % whole text, {:5.1} % by utterance (S {} D {} I {} of {})  missing {}/{} {}  invented in pauses {} {:?}",
            hyp.display().to_string(),
            100.0 * s.whole_text.wer(),
            100.0 * s.total.wer(),
            s.total.substitutions,
            s.total.deletions,
            s.total.insertions,
            s.total.reference_words,
            missing.len(),
            s.utterances.len(),
            missing.join(", "),
            s.invented_words.len(),
            s.invented_words,
        );
        for u in &s.utterances {
            if u.wer.wer() > 0.5 {
                eprintln!(
                    "  {name} #{} {:.1}-{:.1}s WER {:.2}: {}",
                    u.index,
                    u.start_ms as f64 / 1000.0,
                    u.end_ms as f64 / 1000.0,
                    u.wer.wer(),
                    u.hypothesis
                );
            }
        }
    }
    Ok(())
}
