//! Speech recognition: Whisper (whisper.cpp through whisper-rs) with word timestamps.
//!
//! The model is loaded once ([`Transcriber::load`]); each call to [`Transcriber::transcribe`]
//! makes its own decoding state, so one loaded model serves many files.
//!
//! Promises:
//! - only speech found by voice activity detection is decoded: silences are cut out before
//!   Whisper sees the audio, and every time is mapped back to the original timeline;
//! - no speech in, no text out (no call to Whisper at all);
//! - every word lies inside its segment, words and segments are in time order;
//! - English-only models are never run on other languages: `auto` is forced to `en`, any other
//!   language is refused, because such models silently produce garbage otherwise;
//! - segments Whisper itself marks as probable non-speech, known silence hallucinations and
//!   repetition loops are dropped or cut (see [`guard`]).

use std::path::{Path, PathBuf};

use whisper_rs::{
    DtwMode, DtwModelPreset, DtwParameters, FullParams, SamplingStrategy, WhisperContext,
    WhisperContextParameters, WhisperSegment, WhisperState,
};

use crate::transcript::{
    FEW_WORDS_MS_PER_WORD, LanguageInfo, MIN_UNTRANSCRIBED_MS, Segment, SpeechRegion,
    UntranscribedReason, UntranscribedSpan, Word, words_text,
};
use crate::vad::{DetectedSpeech, SpeechTimeline, compact_speech};

/// Silence put between speech regions when they are joined for Whisper. Long enough for Whisper
/// to end a sentence, short enough that an hour of scattered speech stays compact.
const GAP_BETWEEN_REGIONS_MS: u64 = 200;

/// Speech is decoded in chunks of at most this much joined audio, each a whole number of
/// speech regions, so a window starts at a pause instead of wherever the previous window's
/// last timestamp fell (often mid-sentence). A little under Whisper's 30 s window, so the last
/// words of a chunk are not at the window's very end.
const CHUNK_MS: u64 = 28_000;

/// Language detection looks at this much speech (Whisper's window).
const LANGUAGE_WINDOW_SAMPLES: usize = 30 * 16_000;

/// Whisper times are in centiseconds.
const MS_PER_WHISPER_TICK: i64 = 10;

/// Settings of the transcription stage.
#[derive(Debug, Clone, PartialEq)]
pub struct AsrConfig {
    /// `"auto"` or an ISO 639-1 code such as `"es"`. Default `"auto"`.
    pub language: String,
    /// CPU threads for Whisper. Default: all available cores.
    pub threads: usize,
    /// Beam width; 1 means greedy decoding. Default 1 (see the benchmark notes in the README).
    pub beam_size: u32,
}

impl Default for AsrConfig {
    fn default() -> Self {
        AsrConfig {
            language: "auto".to_string(),
            threads: default_threads(),
            beam_size: 1,
        }
    }
}

/// Number of hardware threads, at least 1.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What went wrong while transcribing.
#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    /// whisper.cpp could not load the model file.
    #[error(
        "cannot load Whisper model {path}: not a valid whisper.cpp ggml file; run `qualscribe models fetch` or pass a ggml-*.bin"
    )]
    Load {
        /// The model file.
        path: PathBuf,
    },
    /// The language code is not one Whisper knows.
    #[error("unknown language `{code}`: use `auto` or an ISO 639-1 code such as es, en, pt")]
    UnknownLanguage {
        /// What the user asked for.
        code: String,
    },
    /// An English-only model was asked for another language.
    #[error(
        "model {model} is English-only and cannot transcribe `{language}`: use --model base (multilingual) or --language en"
    )]
    EnglishOnlyModel {
        /// The model's name.
        model: String,
        /// The language asked for.
        language: String,
    },
    /// whisper.cpp failed while decoding.
    #[error("Whisper failed during {step}: {source}")]
    Whisper {
        /// What it was doing.
        step: &'static str,
        /// whisper-rs's error.
        #[source]
        source: whisper_rs::WhisperError,
    },
}

fn whisper_err(step: &'static str) -> impl FnOnce(whisper_rs::WhisperError) -> AsrError {
    move |source| AsrError::Whisper { step, source }
}

/// What the transcription stage produces for one recording.
#[derive(Debug, Clone, PartialEq)]
pub struct AsrOutput {
    /// The language the text is in.
    pub language: LanguageInfo,
    /// Segments on the original timeline.
    pub segments: Vec<Segment>,
    /// Speech regions left without words (see [`untranscribed_spans`]).
    pub untranscribed: Vec<UntranscribedSpan>,
}

/// A loaded Whisper model, shared by all files of a run.
pub struct Transcriber {
    ctx: WhisperContext,
    model_name: String,
    multilingual: bool,
}

impl std::fmt::Debug for Transcriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcriber")
            .field("model_name", &self.model_name)
            .field("multilingual", &self.multilingual)
            .finish()
    }
}

impl Transcriber {
    /// Loads a whisper.cpp ggml model. `model_name` is only used in messages.
    pub fn load(path: &Path, model_name: &str) -> Result<Transcriber, AsrError> {
        whisper_rs::install_logging_hooks(); // whisper.cpp would otherwise print to stderr
        let load_err = || AsrError::Load {
            path: path.to_path_buf(),
        };
        let path_str = path.to_str().ok_or_else(load_err)?;
        // Token-level times from cross-attention (DTW) are far closer to the audio than
        // whisper.cpp's heuristic timestamps; they need the model's alignment heads.
        let preset = {
            let probe =
                WhisperContext::new_with_params(path_str, WhisperContextParameters::default())
                    .map_err(|_| load_err())?;
            dtw_preset(
                probe.model_n_text_layer(),
                probe.model_n_text_state(),
                probe.is_multilingual(),
            )
        };
        let ctx = match preset {
            Some(model_preset) => {
                let mut params = WhisperContextParameters::default();
                params.flash_attn(false); // DTW needs the attention weights
                params.dtw_parameters(DtwParameters {
                    mode: DtwMode::ModelPreset { model_preset },
                    ..DtwParameters::default()
                });
                WhisperContext::new_with_params(path_str, params).map_err(|_| load_err())?
            }
            None => WhisperContext::new_with_params(path_str, WhisperContextParameters::default())
                .map_err(|_| load_err())?,
        };
        let multilingual = ctx.is_multilingual();
        Ok(Transcriber {
            ctx,
            model_name: model_name.to_string(),
            multilingual,
        })
    }

    /// Whether the model handles languages other than English.
    pub fn is_multilingual(&self) -> bool {
        self.multilingual
    }

    /// Transcribes the speech regions of `samples_16k` (16 kHz mono).
    pub fn transcribe(
        &self,
        samples_16k: &[f32],
        detected: &DetectedSpeech,
        cfg: &AsrConfig,
    ) -> Result<AsrOutput, AsrError> {
        let speech = &detected.regions[..];
        let requested = self.check_language(&cfg.language)?;
        let (compact, _) = compact_speech(samples_16k, speech, GAP_BETWEEN_REGIONS_MS);
        let threads = cfg.threads.max(1);
        if compact.is_empty() {
            let language = requested.map_or_else(
                || LanguageInfo {
                    code: "und".to_string(),
                    detected: false,
                    probability: None,
                },
                given_language,
            );
            return Ok(AsrOutput {
                language,
                segments: Vec::new(),
                untranscribed: Vec::new(),
            });
        }
        let mut state = self
            .ctx
            .create_state()
            .map_err(whisper_err("state creation"))?;
        let language = match requested {
            Some(code) => given_language(code),
            None => detect_language(&mut state, &compact, threads)?,
        };
        let mut decoded = Vec::new();
        for chunk in window_chunks(speech) {
            let (audio, chunk_timeline) =
                compact_speech(samples_16k, &chunk, GAP_BETWEEN_REGIONS_MS);
            decoded.extend(self.decode(
                &mut state,
                &audio,
                &chunk_timeline,
                &language.code,
                cfg,
            )?);
        }
        let mut segments = guard::clean(decoded.clone());
        // Whisper sometimes ends a 30 s window early ("single timestamp ending" skips the rest
        // of the window) or skips it as non-speech, and the speech glued after that point is
        // never decoded; or it writes far too few words for a region (measured: 4.4 s of a read
        // sentence as the single word "The"). Each such region is decoded again on its own;
        // for a sparse one, the second reading replaces the words inside it when it has more.
        let retry: Vec<(SpeechRegion, UntranscribedReason)> =
            untranscribed_spans(speech, &decoded, &segments)
                .into_iter()
                .filter(|s| {
                    matches!(
                        s.reason,
                        UntranscribedReason::NothingDecoded | UntranscribedReason::FewWordsDecoded
                    )
                })
                .map(|s| {
                    let region = SpeechRegion {
                        start_ms: s.start_ms,
                        end_ms: s.end_ms,
                    };
                    (region, s.reason)
                })
                .collect();
        for (region, reason) in retry {
            let (alone, alone_timeline) = compact_speech(samples_16k, &[region], 0);
            let again = self.decode(&mut state, &alone, &alone_timeline, &language.code, cfg)?;
            decoded.extend(again.iter().cloned());
            let again = guard::clean(again);
            if reason == UntranscribedReason::NothingDecoded {
                segments.extend(again);
            } else {
                replace_if_more_words(&mut segments, &region, again);
            }
        }
        // Dropped after decoding, not cut before it: taking a blip out of the audio moves every
        // later word of its 30 s window (measured on an AMI clip: one sentence lost).
        drop_words_inside(&mut segments, &detected.brief_fresh_only);
        segments.sort_by_key(|s| s.start_ms);
        for (i, s) in segments.iter_mut().enumerate() {
            s.id = i as u32;
        }
        let untranscribed = untranscribed_spans(speech, &decoded, &segments);
        Ok(AsrOutput {
            language,
            segments,
            untranscribed,
        })
    }

    /// Runs Whisper on `audio` (compacted speech) and maps its segments back through
    /// `timeline`; no guard applied yet.
    fn decode(
        &self,
        state: &mut WhisperState,
        audio: &[f32],
        timeline: &SpeechTimeline,
        language: &str,
        cfg: &AsrConfig,
    ) -> Result<Vec<Segment>, AsrError> {
        let params = self.full_params(language, cfg, cfg.threads.max(1));
        state.full(params, audio).map_err(whisper_err("decoding"))?;
        self.collect_segments(state, timeline)
    }

    /// `None` means "detect"; English-only models never detect.
    fn check_language<'a>(&self, language: &'a str) -> Result<Option<&'a str>, AsrError> {
        let language = language.trim();
        if language.eq_ignore_ascii_case("auto") {
            return Ok(if self.multilingual { None } else { Some("en") });
        }
        if whisper_rs::get_lang_id(language).is_none() {
            return Err(AsrError::UnknownLanguage {
                code: language.to_string(),
            });
        }
        if !self.multilingual && language != "en" {
            return Err(AsrError::EnglishOnlyModel {
                model: self.model_name.clone(),
                language: language.to_string(),
            });
        }
        Ok(Some(language))
    }

    fn full_params<'a>(
        &self,
        language: &'a str,
        cfg: &AsrConfig,
        threads: usize,
    ) -> FullParams<'a, 'a> {
        let strategy = if cfg.beam_size > 1 {
            SamplingStrategy::BeamSearch {
                beam_size: cfg.beam_size as i32,
                patience: -1.0,
            }
        } else {
            SamplingStrategy::Greedy { best_of: 1 }
        };
        let mut params = FullParams::new(strategy);
        params.set_n_threads(threads as i32);
        params.set_language(Some(language));
        params.set_translate(false);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_token_timestamps(true);
        // Conditioning on earlier text is the usual way a repetition loop spreads from one
        // window to the next; each window is decoded on its own.
        params.set_no_context(true);
        // Non-speech tokens such as "[Música]" or "(risas)" are not words anybody said.
        params.set_suppress_nst(true);
        params.set_suppress_blank(true);
        params
    }

    fn collect_segments(
        &self,
        state: &WhisperState,
        timeline: &SpeechTimeline,
    ) -> Result<Vec<Segment>, AsrError> {
        let eot = self.ctx.token_eot();
        let mut segments = Vec::new();
        for seg in state.as_iter() {
            if let Some(segment) = segment_from_whisper(&seg, eot, timeline)? {
                segments.push(segment);
            }
        }
        for (i, s) in segments.iter_mut().enumerate() {
            s.id = i as u32;
        }
        Ok(segments)
    }
}

/// Removes the words whose middle lies inside one of `regions` (end inclusive), then the
/// segments left without words. Used for the brief stretches only a fresh VAD model heard
/// ([`DetectedSpeech::brief_fresh_only`]): there Whisper's words are as confident as real
/// speech (measured: "y" at p 0.93, no-speech 6e-6, in hold music), so only the VAD can tell.
fn drop_words_inside(segments: &mut Vec<Segment>, regions: &[SpeechRegion]) {
    if regions.is_empty() {
        return;
    }
    let inside = |w: &Word| {
        let middle = (w.start_ms + w.end_ms) / 2;
        regions
            .iter()
            .any(|r| r.start_ms <= middle && middle <= r.end_ms)
    };
    remove_words(segments, inside);
}

/// Removes the words `inside` picks from `segments`: a segment that loses some keeps its other
/// words (text and times follow them), one that loses all goes.
fn remove_words(segments: &mut Vec<Segment>, inside: impl Fn(&Word) -> bool) {
    for s in segments.iter_mut() {
        if s.words.iter().any(&inside) {
            s.words.retain(|w| !inside(w));
            s.text = words_text(&s.words);
            if let (Some(first), Some(last)) = (s.words.first(), s.words.last()) {
                s.start_ms = first.start_ms;
                s.end_ms = last.end_ms;
            }
        }
    }
    segments.retain(|s| !s.words.is_empty());
}

/// The speech regions in time order, grouped greedily into chunks of at most [`CHUNK_MS`]
/// once joined with [`GAP_BETWEEN_REGIONS_MS`] gaps; a longer region is a chunk of its own.
fn window_chunks(speech: &[SpeechRegion]) -> Vec<Vec<SpeechRegion>> {
    let mut regions = speech.to_vec();
    regions.sort_by_key(|r| r.start_ms);
    let mut chunks: Vec<Vec<SpeechRegion>> = Vec::new();
    let mut joined_ms = 0;
    for r in regions {
        let len = r.end_ms.saturating_sub(r.start_ms);
        match chunks.last_mut() {
            Some(chunk) if joined_ms + GAP_BETWEEN_REGIONS_MS + len <= CHUNK_MS => {
                chunk.push(r);
                joined_ms += GAP_BETWEEN_REGIONS_MS + len;
            }
            _ => {
                chunks.push(vec![r]);
                joined_ms = len;
            }
        }
    }
    chunks
}

/// Puts `again` (a region decoded on its own) in place of the words of `segments` inside
/// `region` when it has more of them. A segment that also holds words of other regions keeps
/// those (Whisper wrote one word of a sentence, skipped the rest and went on with the next
/// region inside the same segment). Returns whether it replaced anything.
fn replace_if_more_words(
    segments: &mut Vec<Segment>,
    region: &SpeechRegion,
    again: Vec<Segment>,
) -> bool {
    let inside = |w: &Word| w.start_ms >= region.start_ms && w.end_ms <= region.end_ms;
    let words_now = segments
        .iter()
        .flat_map(|s| &s.words)
        .filter(|w| inside(w))
        .count();
    let words_again: usize = again.iter().map(|s| s.words.len()).sum();
    if words_again <= words_now {
        return false;
    }
    remove_words(segments, inside);
    segments.extend(again);
    true
}

/// The speech regions of at least [`MIN_UNTRANSCRIBED_MS`] that no word of `kept` touches, in
/// time order. The reason is [`UntranscribedReason::DroppedByGuard`] when a word of `decoded`
/// (Whisper's output before the guards) touched the region, else
/// [`UntranscribedReason::NothingDecoded`]. Regions where fewer than one kept word per
/// [`FEW_WORDS_MS_PER_WORD`] starts are listed too, as [`UntranscribedReason::FewWordsDecoded`]
/// (measured: a 4.8 s read sentence came out as the single word "All").
pub fn untranscribed_spans(
    speech: &[SpeechRegion],
    decoded: &[Segment],
    kept: &[Segment],
) -> Vec<UntranscribedSpan> {
    let kept_words = WordCover::new(kept);
    let decoded_words = WordCover::new(decoded);
    let mut regions: Vec<SpeechRegion> = speech
        .iter()
        .copied()
        .filter(|r| r.end_ms.saturating_sub(r.start_ms) >= MIN_UNTRANSCRIBED_MS)
        .collect();
    regions.sort_by_key(|r| r.start_ms);
    regions
        .into_iter()
        .filter_map(|r| {
            let reason = if kept_words.touches(&r) {
                let words = kept_words.count_in(&r) as u64;
                (words * FEW_WORDS_MS_PER_WORD < r.end_ms - r.start_ms)
                    .then_some(UntranscribedReason::FewWordsDecoded)?
            } else if decoded_words.touches(&r) {
                UntranscribedReason::DroppedByGuard
            } else {
                UntranscribedReason::NothingDecoded
            };
            Some(UntranscribedSpan {
                start_ms: r.start_ms,
                end_ms: r.end_ms,
                reason,
            })
        })
        .collect()
}

/// Word intervals sorted by start, with the running maximum of their ends, so "does any word
/// overlap this region" is one binary search.
struct WordCover {
    starts: Vec<u64>,
    max_end_so_far: Vec<u64>,
}

impl WordCover {
    fn new(segments: &[Segment]) -> WordCover {
        let mut spans: Vec<(u64, u64)> = segments
            .iter()
            .flat_map(|s| s.words.iter().map(|w| (w.start_ms, w.end_ms)))
            .collect();
        spans.sort_unstable();
        let mut max_end = 0;
        let max_end_so_far = spans
            .iter()
            .map(|&(_, end)| {
                max_end = max_end.max(end);
                max_end
            })
            .collect();
        WordCover {
            starts: spans.iter().map(|&(start, _)| start).collect(),
            max_end_so_far,
        }
    }

    /// How many words overlap the region: those starting inside it (edges included), plus
    /// one when a word starting earlier reaches into it.
    fn count_in(&self, r: &SpeechRegion) -> usize {
        let before = self.starts.partition_point(|&s| s < r.start_ms);
        let inside = self.starts.partition_point(|&s| s <= r.end_ms) - before;
        let reaching_in = before
            .checked_sub(1)
            .is_some_and(|last| self.max_end_so_far[last] >= r.start_ms);
        inside + usize::from(reaching_in)
    }

    /// Whether a word overlaps the region (touching an edge counts: words mapped out of the
    /// silence between regions land exactly on a region's edge).
    fn touches(&self, r: &SpeechRegion) -> bool {
        let starting_by_end = self.starts.partition_point(|&s| s <= r.end_ms);
        starting_by_end
            .checked_sub(1)
            .is_some_and(|last| self.max_end_so_far[last] >= r.start_ms)
    }
}

fn given_language(code: &str) -> LanguageInfo {
    LanguageInfo {
        code: code.to_string(),
        detected: false,
        probability: None,
    }
}

/// Detects the language on the first 30 s of speech. Costs one extra encoder pass.
fn detect_language(
    state: &mut WhisperState,
    compact: &[f32],
    threads: usize,
) -> Result<LanguageInfo, AsrError> {
    let window = &compact[..compact.len().min(LANGUAGE_WINDOW_SAMPLES)];
    state
        .pcm_to_mel(window, threads)
        .map_err(whisper_err("language detection"))?;
    let (id, probs) = state
        .lang_detect(0, threads)
        .map_err(whisper_err("language detection"))?;
    let code = whisper_rs::get_lang_str(id).unwrap_or("und").to_string();
    let probability = usize::try_from(id).ok().and_then(|i| probs.get(i)).copied();
    Ok(LanguageInfo {
        code,
        detected: true,
        probability,
    })
}

/// The DTW alignment-head preset for the standard Whisper sizes, recognised by their shape.
fn dtw_preset(text_layers: i32, text_state: i32, multilingual: bool) -> Option<DtwModelPreset> {
    Some(match (text_layers, text_state, multilingual) {
        (4, 384, false) => DtwModelPreset::TinyEn,
        (4, 384, true) => DtwModelPreset::Tiny,
        (6, 512, false) => DtwModelPreset::BaseEn,
        (6, 512, true) => DtwModelPreset::Base,
        (12, 768, false) => DtwModelPreset::SmallEn,
        (12, 768, true) => DtwModelPreset::Small,
        (24, 1024, false) => DtwModelPreset::MediumEn,
        (24, 1024, true) => DtwModelPreset::Medium,
        _ => return None, // large variants differ only in details we cannot see here
    })
}

/// A token on its way into a word: raw bytes (a UTF-8 character may span two tokens).
struct TokenPiece {
    bytes: Vec<u8>,
    probability: f32,
    start_ms: i64,
    end_ms: i64,
}

fn segment_from_whisper(
    seg: &WhisperSegment<'_>,
    eot: i32,
    timeline: &SpeechTimeline,
) -> Result<Option<Segment>, AsrError> {
    let seg_start = seg.start_timestamp() * MS_PER_WHISPER_TICK;
    let seg_end = (seg.end_timestamp() * MS_PER_WHISPER_TICK).max(seg_start);
    let mut pieces = Vec::new();
    let mut logprob_sum = 0.0f32;
    for i in 0..seg.n_tokens() {
        let Some(token) = seg.get_token(i) else {
            continue;
        };
        let data = token.token_data();
        if data.id >= eot {
            continue; // timestamps, language and task markers
        }
        let bytes = token
            .to_bytes()
            .map_err(whisper_err("reading tokens"))?
            .to_vec();
        logprob_sum += data.plog;
        // DTW time (when available) marks where the token is heard; t0/t1 are a fallback.
        let start = if data.t_dtw >= 0 { data.t_dtw } else { data.t0 };
        pieces.push(TokenPiece {
            bytes,
            probability: data.p,
            start_ms: start * MS_PER_WHISPER_TICK,
            end_ms: data.t1 * MS_PER_WHISPER_TICK,
        });
    }
    let avg_logprob = if pieces.is_empty() {
        0.0
    } else {
        logprob_sum / pieces.len() as f32
    };
    // JSON has no NaN or infinity: a transcript with one could not be read back.
    let avg_logprob = if avg_logprob.is_finite() {
        avg_logprob
    } else {
        f32::MIN
    };
    let words = words_from_pieces(&pieces, seg_start, seg_end);
    if words.is_empty() {
        return Ok(None);
    }
    let to_original = |ms: i64| timeline.to_original_ms(ms.max(0) as u64);
    let words: Vec<Word> = words
        .into_iter()
        .map(|w| Word {
            start_ms: to_original(w.start_ms as i64),
            end_ms: timeline.to_original_end_ms(w.start_ms, w.end_ms),
            ..w
        })
        .collect();
    let text = words_text(&words);
    Ok(Some(Segment {
        id: 0,
        start_ms: to_original(seg_start),
        end_ms: to_original(seg_end),
        text,
        speaker: None,
        no_speech_prob: seg.no_speech_probability(),
        avg_logprob,
        words,
    }))
}

/// Joins sub-word tokens into words: a token starting with a space begins a new word,
/// anything else (word pieces, punctuation) attaches to the current one. Times are clamped
/// into the segment and made monotone.
fn words_from_pieces(pieces: &[TokenPiece], seg_start: i64, seg_end: i64) -> Vec<Word> {
    struct Draft {
        bytes: Vec<u8>,
        probs: Vec<f32>,
        start_ms: i64,
        last_end_ms: i64,
    }
    let mut drafts: Vec<Draft> = Vec::new();
    for p in pieces {
        let starts_word = p.bytes.first() == Some(&b' ') || drafts.is_empty();
        if starts_word {
            drafts.push(Draft {
                bytes: Vec::new(),
                probs: Vec::new(),
                start_ms: p.start_ms,
                last_end_ms: p.end_ms,
            });
        }
        if let Some(d) = drafts.last_mut() {
            d.bytes.extend_from_slice(&p.bytes);
            d.probs.push(p.probability);
            d.last_end_ms = p.end_ms;
        }
    }
    let mut words = Vec::with_capacity(drafts.len());
    let mut cursor = seg_start;
    for (i, d) in drafts.iter().enumerate() {
        let text = String::from_utf8_lossy(&d.bytes).trim().to_string();
        if text.is_empty() {
            continue;
        }
        let start = d.start_ms.clamp(cursor, seg_end);
        // DTW marks where each token starts, so a word ends where the next one starts; the
        // last word ends at its last token's end.
        let end = match drafts.get(i + 1) {
            Some(next) => next.start_ms,
            None => d.last_end_ms,
        }
        .clamp(start, seg_end);
        let probability = d.probs.iter().sum::<f32>() / d.probs.len().max(1) as f32;
        let probability = if probability.is_finite() {
            probability.clamp(0.0, 1.0)
        } else {
            0.0
        };
        words.push(Word {
            text,
            start_ms: start as u64,
            end_ms: end as u64,
            probability,
        });
        cursor = start;
    }
    words
}

pub mod guard {
    //! Guards against Whisper's two classic failures: text invented over silence or noise,
    //! and repetition loops ("gracias gracias gracias ..."). Applied after decoding.

    use crate::transcript::Segment;

    /// A segment Whisper thinks is probably not speech and is also unsure about.
    /// The same rule as OpenAI's reference decoder (`no_speech_threshold` 0.6 with
    /// `logprob_threshold` -1.0).
    const NO_SPEECH_PROB: f32 = 0.6;
    const LOW_AVG_LOGPROB: f32 = -1.0;

    /// A phrase (1–4 words) repeated this many times in a row is a loop, not speech.
    const LOOP_REPEATS: usize = 4;

    /// Whole-segment texts Whisper writes over silence: credits from its training subtitles.
    /// Compared after lower-casing and dropping punctuation.
    const SILENCE_HALLUCINATIONS: &[&str] = &[
        "subtitulos realizados por la comunidad de amaraorg",
        "subtítulos realizados por la comunidad de amaraorg",
        "subtitulado por la comunidad de amaraorg",
        "subtítulos por la comunidad de amaraorg",
        "gracias por ver el video",
        "gracias por ver",
        "suscríbete al canal",
        "thanks for watching",
        "thank you for watching",
        "please subscribe",
        "legendas pela comunidade amaraorg",
        "obrigado por assistir",
    ];

    /// No one says more than about 8 words a second (fast Spanish is 4–5; the fastest real
    /// segment in the long-form sets is 5.3); two short words of slack for a quick "sí, sí".
    /// Whisper writing a whole sentence into a third of a second of music (measured: six
    /// words in 348 ms) is invented text, not speech.
    const MAX_WORDS_PER_S: f64 = 8.0;
    const WORD_RATE_SLACK: f64 = 2.0;

    /// Drops non-speech and hallucinated segments, cuts repetition loops, renumbers.
    pub fn clean(segments: Vec<Segment>) -> Vec<Segment> {
        let mut kept: Vec<Segment> = Vec::with_capacity(segments.len());
        for mut s in segments {
            if is_probably_not_speech(&s) || is_known_hallucination(&s.text) {
                continue;
            }
            cut_repetition_loop(&mut s);
            let repeats_previous = kept
                .last()
                .is_some_and(|p| normalized(&p.text) == normalized(&s.text));
            let repeats_twice = repeats_previous
                && kept.len() >= 2
                && normalized(&kept[kept.len() - 2].text) == normalized(&s.text);
            // The third identical segment in a row is a loop across windows.
            if repeats_twice || s.words.is_empty() || is_faster_than_speech(&s) {
                continue;
            }
            kept.push(s);
        }
        for (i, s) in kept.iter_mut().enumerate() {
            s.id = i as u32;
        }
        kept
    }

    fn is_probably_not_speech(s: &Segment) -> bool {
        s.no_speech_prob > NO_SPEECH_PROB && s.avg_logprob < LOW_AVG_LOGPROB
    }

    fn is_faster_than_speech(s: &Segment) -> bool {
        let seconds = s.end_ms.saturating_sub(s.start_ms) as f64 / 1000.0;
        s.words.len() as f64 > WORD_RATE_SLACK + MAX_WORDS_PER_S * seconds
    }

    fn normalized(text: &str) -> String {
        text.to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace())
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn is_known_hallucination(text: &str) -> bool {
        let n = normalized(text);
        SILENCE_HALLUCINATIONS.iter().any(|h| n == *h)
    }

    /// Keeps the first two occurrences of a phrase repeated [`LOOP_REPEATS`]+ times in a row
    /// and drops the rest of the segment from there (what follows a loop is noise).
    fn cut_repetition_loop(s: &mut Segment) {
        let keys: Vec<String> = s.words.iter().map(|w| normalized(&w.text)).collect();
        let Some(cut_at) = loop_cut_index(&keys) else {
            return;
        };
        s.words.truncate(cut_at);
        s.text = crate::transcript::words_text(&s.words);
        if let Some(last) = s.words.last() {
            s.end_ms = last.end_ms.max(s.start_ms);
        }
    }

    /// Index of the first word to drop, if the words contain a loop.
    pub(crate) fn loop_cut_index(keys: &[String]) -> Option<usize> {
        for n in 1..=4usize {
            for start in 0..keys.len() {
                let mut repeats = 1;
                while start + (repeats + 1) * n <= keys.len()
                    && keys[start..start + n]
                        == keys[start + repeats * n..start + (repeats + 1) * n]
                {
                    repeats += 1;
                }
                if repeats >= LOOP_REPEATS {
                    return Some(start + 2 * n);
                }
            }
        }
        None
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::transcript::Word;

        fn seg(text: &str, no_speech: f32, logprob: f32) -> Segment {
            let words: Vec<Word> = text
                .split_whitespace()
                .enumerate()
                .map(|(i, w)| Word {
                    text: w.to_string(),
                    start_ms: i as u64 * 100,
                    end_ms: i as u64 * 100 + 90,
                    probability: 0.9,
                })
                .collect();
            Segment {
                id: 0,
                start_ms: 0,
                end_ms: words.last().map_or(0, |w| w.end_ms),
                text: text.to_string(),
                speaker: None,
                no_speech_prob: no_speech,
                avg_logprob: logprob,
                words,
            }
        }

        #[test]
        fn drops_uncertain_non_speech() {
            let out = clean(vec![seg("hola", 0.9, -1.5), seg("buenos días", 0.9, -0.2)]);
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].text, "buenos días");
        }

        #[test]
        fn drops_subtitle_credits() {
            let out = clean(vec![seg(
                "Subtítulos realizados por la comunidad de Amara.org",
                0.1,
                -0.3,
            )]);
            assert!(out.is_empty());
        }

        #[test]
        fn cuts_a_word_loop_after_two_occurrences() {
            let out = clean(vec![seg(
                "y entonces gracias gracias gracias gracias gracias gracias",
                0.0,
                -0.2,
            )]);
            assert_eq!(out[0].text, "y entonces gracias gracias");
            assert_eq!(out[0].end_ms, out[0].words.last().unwrap().end_ms);
        }

        #[test]
        fn cuts_a_phrase_loop() {
            let keys: Vec<String> = "a b c b c b c b c d".split(' ').map(String::from).collect();
            assert_eq!(loop_cut_index(&keys), Some(5));
        }

        #[test]
        fn keeps_ordinary_repetition() {
            let keys: Vec<String> = "no no no quiero".split(' ').map(String::from).collect();
            assert_eq!(loop_cut_index(&keys), None);
        }

        #[test]
        fn drops_a_sentence_squeezed_into_a_third_of_a_second() {
            let mut squeezed = seg("y por favor no me gustan.", 0.0, -0.7);
            squeezed.end_ms = 348;
            let mut quick_yes = seg("sí, sí.", 0.0, -0.2);
            quick_yes.end_ms = 200;
            let out = clean(vec![squeezed, quick_yes]);
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].text, "sí, sí.");
        }

        #[test]
        fn drops_third_identical_segment_in_a_row() {
            let out = clean(vec![
                seg("lo mismo", 0.0, -0.1),
                seg("lo mismo", 0.0, -0.1),
                seg("lo mismo", 0.0, -0.1),
            ]);
            assert_eq!(out.len(), 2);
            assert_eq!(out[1].id, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(text: &str, start_ms: i64, end_ms: i64) -> TokenPiece {
        TokenPiece {
            bytes: text.as_bytes().to_vec(),
            probability: 0.5,
            start_ms,
            end_ms,
        }
    }

    #[test]
    fn tokens_join_into_words_with_punctuation_attached() {
        let pieces = [
            piece(" Hola", 0, 300),
            piece(",", 300, 320),
            piece(" ¿", 400, 420),
            piece("qué", 420, 600),
            piece(" tal", 600, 800),
            piece("?", 800, 820),
        ];
        let words = words_from_pieces(&pieces, 0, 900);
        let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["Hola,", "¿qué", "tal?"]);
        assert!(words.windows(2).all(|w| w[0].start_ms <= w[1].start_ms));
        assert!(
            words
                .iter()
                .all(|w| w.start_ms <= w.end_ms && w.end_ms <= 900)
        );
    }

    #[test]
    fn a_character_split_across_tokens_is_rebuilt() {
        let e_acute = "é".as_bytes();
        let pieces = [
            TokenPiece {
                bytes: vec![b' ', b'c', b'a', b'f', e_acute[0]],
                probability: 1.0,
                start_ms: 0,
                end_ms: 100,
            },
            TokenPiece {
                bytes: vec![e_acute[1]],
                probability: 0.5,
                start_ms: 100,
                end_ms: 200,
            },
        ];
        let words = words_from_pieces(&pieces, 0, 300);
        assert_eq!(words[0].text, "café");
        assert!((words[0].probability - 0.75).abs() < 1e-6);
    }

    #[test]
    fn times_are_clamped_into_the_segment_and_monotone() {
        let pieces = [
            piece(" a", 500, 400),
            piece(" b", 100, 2000),
            piece(" c", 3000, 3100),
        ];
        let words = words_from_pieces(&pieces, 200, 1000);
        assert!(words.windows(2).all(|w| w[0].start_ms <= w[1].start_ms));
        assert!(
            words
                .iter()
                .all(|w| (200..=1000).contains(&w.start_ms) && w.end_ms <= 1000)
        );
        assert!(words.iter().all(|w| w.start_ms <= w.end_ms));
    }

    fn segment_with_words(words: &[(u64, u64)]) -> Segment {
        let words: Vec<Word> = words
            .iter()
            .map(|&(start_ms, end_ms)| Word {
                text: "palabra".to_string(),
                start_ms,
                end_ms,
                probability: 0.9,
            })
            .collect();
        Segment {
            id: 0,
            start_ms: words.first().map_or(0, |w| w.start_ms),
            end_ms: words.last().map_or(0, |w| w.end_ms),
            text: words_text(&words),
            speaker: None,
            no_speech_prob: 0.0,
            avg_logprob: -0.2,
            words,
        }
    }

    fn region(start_ms: u64, end_ms: u64) -> SpeechRegion {
        SpeechRegion { start_ms, end_ms }
    }

    #[test]
    fn speech_without_words_is_reported_with_its_reason() {
        let speech = [
            region(0, 3_000),       // transcribed
            region(4_000, 6_000),   // words decoded, then dropped by a guard
            region(7_000, 9_500),   // nothing decoded
            region(10_000, 10_600), // too short to report
        ];
        let kept = [segment_with_words(&[(500, 900), (1_000, 2_000)])];
        let decoded = [kept[0].clone(), segment_with_words(&[(4_500, 5_000)])];
        let spans = untranscribed_spans(&speech, &decoded, &kept);
        assert_eq!(
            spans,
            [
                UntranscribedSpan {
                    start_ms: 4_000,
                    end_ms: 6_000,
                    reason: UntranscribedReason::DroppedByGuard
                },
                UntranscribedSpan {
                    start_ms: 7_000,
                    end_ms: 9_500,
                    reason: UntranscribedReason::NothingDecoded
                },
            ]
        );
    }

    #[test]
    fn words_inside_a_brief_fresh_only_region_are_dropped() {
        // The music case: one segment spanning two blips, its only word in the second.
        let mut only_blip = vec![segment_with_words(&[(13_094, 13_114)])];
        let blips = [region(3_906, 4_222), region(12_770, 13_118)];
        drop_words_inside(&mut only_blip, &blips);
        assert!(only_blip.is_empty());
        // Real speech around a blip keeps its words; the segment shrinks to them.
        let mut mixed = vec![segment_with_words(&[
            (1_000, 1_400),
            (3_950, 4_100),
            (5_000, 5_300),
        ])];
        drop_words_inside(&mut mixed, &blips);
        assert_eq!(mixed.len(), 1);
        let times: Vec<(u64, u64)> = mixed[0]
            .words
            .iter()
            .map(|w| (w.start_ms, w.end_ms))
            .collect();
        assert_eq!(times, [(1_000, 1_400), (5_000, 5_300)]);
        assert_eq!((mixed[0].start_ms, mixed[0].end_ms), (1_000, 5_300));
        assert_eq!(mixed[0].text, words_text(&mixed[0].words));
    }

    #[test]
    fn regions_are_grouped_into_whole_window_chunks() {
        let speech = [
            region(0, 10_000),
            region(11_000, 21_000),
            region(22_000, 29_000), // would make 27.4 s with two gaps: fits
            region(30_000, 31_000), // 28.6 s: starts a new chunk
            region(40_000, 80_000), // longer than a window: alone
            region(81_000, 82_000),
        ];
        let sizes: Vec<usize> = window_chunks(&speech).iter().map(Vec::len).collect();
        assert_eq!(sizes, [3, 1, 1, 1]);
    }

    #[test]
    fn a_fuller_second_reading_replaces_only_the_words_inside_a_sparse_region() {
        let region = region(10_000, 15_000);
        let fuller = segment_with_words(&[(10_100, 10_400), (10_500, 11_000), (11_200, 12_000)]);
        // One word inside the region, then Whisper went on with the next region's words.
        let mut segments = vec![
            segment_with_words(&[(1_000, 2_000)]),
            segment_with_words(&[(13_000, 13_500), (16_000, 16_400), (16_500, 17_000)]),
        ];
        // Fewer words on the second reading: the first stays.
        let sparse = segment_with_words(&[(10_500, 10_800)]);
        assert!(!replace_if_more_words(&mut segments, &region, vec![]));
        assert!(!replace_if_more_words(&mut segments, &region, vec![sparse]));
        assert!(replace_if_more_words(&mut segments, &region, vec![fuller]));
        assert_eq!(segments.len(), 3);
        // The next region's words stay, with the segment's bounds and text following them.
        assert_eq!(segments[1].words.len(), 2);
        assert_eq!((segments[1].start_ms, segments[1].end_ms), (16_000, 17_000));
        assert_eq!(segments[1].text, words_text(&segments[1].words));
        assert_eq!(segments[2].words.len(), 3);
    }

    #[test]
    fn a_region_with_far_too_few_words_is_flagged() {
        let speech = [region(0, 4_800), region(10_000, 13_000)];
        // One word in 4.8 s (measured: a read sentence came out as "All"); three in 3 s.
        let kept = [segment_with_words(&[
            (200, 500),
            (10_100, 10_500),
            (11_000, 11_400),
            (12_000, 12_500),
        ])];
        let spans = untranscribed_spans(&speech, &kept, &kept);
        assert_eq!(spans.len(), 1);
        assert_eq!((spans[0].start_ms, spans[0].end_ms), (0, 4_800));
        assert_eq!(spans[0].reason, UntranscribedReason::FewWordsDecoded);
        // Two words in 4.8 s is a slow speaker, not lost speech.
        let two = [segment_with_words(&[(200, 500), (3_000, 3_400)])];
        assert!(untranscribed_spans(&speech[..1], &two, &two).is_empty());
    }

    #[test]
    fn a_long_word_spanning_a_region_covers_it() {
        let speech = [region(1_000, 2_500)];
        let kept = [segment_with_words(&[(0, 3_000)])];
        assert!(untranscribed_spans(&speech, &kept, &kept).is_empty());
        let before = [segment_with_words(&[(0, 900)])];
        assert_eq!(untranscribed_spans(&speech, &before, &before).len(), 1);
    }

    #[test]
    fn standard_shapes_map_to_alignment_heads() {
        assert!(matches!(
            dtw_preset(6, 512, true),
            Some(DtwModelPreset::Base)
        ));
        assert!(matches!(
            dtw_preset(4, 384, false),
            Some(DtwModelPreset::TinyEn)
        ));
        assert!(dtw_preset(32, 1280, true).is_none());
    }
}
