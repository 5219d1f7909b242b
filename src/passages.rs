//! Passages: the units that themes and codes are built from, cut from speaker-attributed
//! transcripts.
//!
//! A *turn* is a maximal run of consecutive segments with the same `speaker` (segments without a
//! speaker form turns of their own speaker `None`). Each turn becomes one passage; a turn longer
//! than [`PassageConfig::max_words`] is cut at sentence ends (`.`, `?`, `!`, `…`, optionally
//! followed by closing quotes or brackets) into near-equal pieces of at least
//! [`PassageConfig::min_words`] words where the sentences allow it; a single sentence longer than
//! `max_words` is cut between words.
//!
//! Promises:
//! - **Canonical text.** Offsets refer to [`Transcript::text`]: every segment's `text` joined by
//!   one space, in order. [`TextSpan`] gives both byte offsets (to slice a Rust `&str`) and
//!   character offsets (Unicode scalar values, the positions REFI-QDA's `PlainTextSelection`
//!   counts). `passage.text == transcript.text()[span.byte_start..span.byte_end]`, always: a
//!   passage is sliced out of the canonical text, never rebuilt from words.
//! - **Times** are integer milliseconds on the original audio timeline, taken from the passage's
//!   first and last word (Whisper's word times). When a segment's word list does not line up
//!   with its text's whitespace-separated tokens, tokens get the times of the proportionally
//!   placed word; without words, times are interpolated over the segment.
//! - **Roles.** Every passage is kept. Passages of the moderator are [`Role::Moderator`]; short
//!   agreement turns ("sí", "claro", "yo pienso lo mismo", "exacto", "ajá") are
//!   [`Role::BackChannel`]; everything else is [`Role::Content`], the only role that is
//!   clustered. The moderator of each file is the speaker with the most question sentences
//!   (`¿…?` or `…?`), at least one; in a file without any question mark (Whisper often drops
//!   them on poor audio) a question is a sentence or clause opening with an interrogative word
//!   (`qué`, `cómo`, `what`, `onde`…). [`PassageConfig::moderator`] overrides this for all files.
//! - Passage ids are positions in [`Passages::passages`]: files in input order, then time order.
//!   The output depends only on the input (no randomness).

use std::collections::HashMap;

use crate::transcript::Transcript;

/// What a passage is for the analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Substantive talk: clustered into themes.
    Content,
    /// Agreement or acknowledgement without content of its own ("sí", "claro").
    BackChannel,
    /// The moderator or interviewer (questions, welcomes, thanks).
    Moderator,
}

impl Role {
    /// The role's name as exports write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Content => "content",
            Role::BackChannel => "back-channel",
            Role::Moderator => "moderator",
        }
    }
}

/// Where a passage or quote sits in a transcript's canonical text ([`Transcript::text`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TextSpan {
    /// First byte (inclusive).
    pub byte_start: usize,
    /// Last byte (exclusive).
    pub byte_end: usize,
    /// First character (Unicode scalar value, inclusive).
    pub char_start: usize,
    /// Last character (exclusive).
    pub char_end: usize,
}

/// One passage: a speaker turn or a piece of a long one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Passage {
    /// Position in [`Passages::passages`].
    pub id: usize,
    /// Index of the transcript it comes from, in the order the transcripts were given.
    pub file: usize,
    /// The transcript's `uri`.
    pub uri: String,
    /// The speaker label of its segments.
    pub speaker: Option<String>,
    /// Position of its turn within the file, from 0.
    pub turn: usize,
    /// What it is for the analysis.
    pub role: Role,
    /// Start of its first word, on the original timeline.
    pub start_ms: u64,
    /// End of its last word, on the original timeline.
    pub end_ms: u64,
    /// Where it is in the transcript's canonical text.
    pub span: TextSpan,
    /// The text, exactly `transcript.text()[span.byte_start..span.byte_end]`.
    pub text: String,
    /// Number of whitespace-separated words.
    pub words: usize,
}

/// Settings of [`split`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassageConfig {
    /// Smallest piece a long turn is cut into, in words, where sentence ends allow it (default 20).
    pub min_words: usize,
    /// Longest passage in words; longer turns are cut (default 120).
    pub max_words: usize,
    /// The moderator's speaker label in every file; `None` detects it per file (default).
    pub moderator: Option<String>,
}

impl Default for PassageConfig {
    fn default() -> Self {
        PassageConfig {
            min_words: 20,
            max_words: 120,
            moderator: None,
        }
    }
}

/// Per-file facts found while splitting.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileInfo {
    /// The transcript's `uri`.
    pub uri: String,
    /// The moderator's speaker label, when there is one.
    pub moderator: Option<String>,
    /// The transcript's language code.
    pub language: String,
}

/// The passages of one or more transcripts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Passages {
    /// Every passage, files in input order, then in time order.
    pub passages: Vec<Passage>,
    /// One entry per input transcript, same order.
    pub files: Vec<FileInfo>,
}

impl Passages {
    /// The content passages (the ones that are clustered).
    pub fn content(&self) -> impl Iterator<Item = &Passage> {
        self.passages.iter().filter(|p| p.role == Role::Content)
    }
}

/// Failure to cut passages.
#[derive(Debug, thiserror::Error)]
pub enum PassageError {
    /// Two transcripts share a `uri`, so passages could not be told apart.
    #[error("two transcripts have the same uri `{uri}`")]
    DuplicateUri {
        /// The repeated uri.
        uri: String,
    },
    /// The moderator given does not speak in any transcript.
    #[error("moderator `{name}` is not a speaker in any transcript")]
    UnknownModerator {
        /// The speaker label given.
        name: String,
    },
    /// The limits contradict each other.
    #[error(
        "passage limits: min_words {min_words} must be at least 1 and at most max_words {max_words}"
    )]
    BadLimits {
        /// The configured minimum.
        min_words: usize,
        /// The configured maximum.
        max_words: usize,
    },
}

/// Cuts every transcript into passages and marks their roles (see the module docs).
pub fn split(transcripts: &[Transcript], cfg: &PassageConfig) -> Result<Passages, PassageError> {
    if cfg.min_words == 0 || cfg.min_words > cfg.max_words {
        return Err(PassageError::BadLimits {
            min_words: cfg.min_words,
            max_words: cfg.max_words,
        });
    }
    check_unique_uris(transcripts)?;
    if let Some(name) = &cfg.moderator {
        let speaks = transcripts
            .iter()
            .flat_map(|t| &t.segments)
            .any(|s| s.speaker.as_deref() == Some(name.as_str()));
        if !speaks {
            return Err(PassageError::UnknownModerator { name: name.clone() });
        }
    }
    let mut passages = Vec::new();
    let mut files = Vec::with_capacity(transcripts.len());
    for (file, t) in transcripts.iter().enumerate() {
        let canonical = t.text();
        let mut turns = turns(t, &canonical);
        let moderator = match &cfg.moderator {
            Some(name) => Some(name.clone()).filter(|n| turns.iter().any(|tr| tr.speaker_is(n))),
            None => detect_moderator(&turns),
        };
        for turn in &mut turns {
            turn.role = turn_role(turn, &canonical, moderator.as_deref());
        }
        for turn in &turns {
            for piece in cut_turn(&turn.tokens, cfg) {
                let id = passages.len();
                passages.push(make_passage(t, &canonical, file, turn, piece, id));
            }
        }
        files.push(FileInfo {
            uri: t.uri.clone(),
            moderator,
            language: t.language.code.clone(),
        });
    }
    Ok(Passages { passages, files })
}

fn check_unique_uris(transcripts: &[Transcript]) -> Result<(), PassageError> {
    let mut seen = std::collections::HashSet::new();
    for t in transcripts {
        if !seen.insert(t.uri.as_str()) {
            return Err(PassageError::DuplicateUri { uri: t.uri.clone() });
        }
    }
    Ok(())
}

/// A whitespace-separated token of the canonical text with the time of its word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub byte_start: usize,
    pub byte_end: usize,
    pub char_start: usize,
    pub char_end: usize,
    pub start_ms: u64,
    pub end_ms: u64,
    /// The token closes a sentence (see [`ends_sentence`]).
    pub sentence_end: bool,
    /// The segment it belongs to.
    pub segment: usize,
}

/// Every token of `t`'s canonical text, in order.
pub(crate) fn tokens(t: &Transcript) -> Vec<Token> {
    let mut out = Vec::with_capacity(t.word_count());
    let mut byte_base = 0;
    let mut char_base = 0;
    for (si, seg) in t.segments.iter().enumerate() {
        let spans = token_spans(&seg.text);
        let n = spans.len();
        for (i, (bs, be, cs, ce)) in spans.into_iter().enumerate() {
            let (start_ms, end_ms) = token_time(seg, i, n);
            out.push(Token {
                byte_start: byte_base + bs,
                byte_end: byte_base + be,
                char_start: char_base + cs,
                char_end: char_base + ce,
                start_ms,
                end_ms,
                sentence_end: ends_sentence(&seg.text[bs..be]),
                segment: si,
            });
        }
        // The canonical text joins segments with one space.
        byte_base += seg.text.len() + 1;
        char_base += seg.text.chars().count() + 1;
    }
    out
}

/// (byte start, byte end, char start, char end) of each whitespace-separated token of `s`.
fn token_spans(s: &str) -> Vec<(usize, usize, usize, usize)> {
    let mut spans = Vec::new();
    let mut open: Option<(usize, usize)> = None;
    for (chars, (b, c)) in s.char_indices().enumerate() {
        match (c.is_whitespace(), open) {
            (true, Some((bs, cs))) => {
                spans.push((bs, b, cs, chars));
                open = None;
            }
            (false, None) => open = Some((b, chars)),
            _ => {}
        }
    }
    if let Some((bs, cs)) = open {
        spans.push((bs, s.len(), cs, s.chars().count()));
    }
    spans
}

/// The time of token `i` of `n` in `seg`: its own word when the counts agree, the word at the
/// same relative position when they do not, an interpolation over the segment without words.
fn token_time(seg: &crate::transcript::Segment, i: usize, n: usize) -> (u64, u64) {
    let words = &seg.words;
    if !words.is_empty() {
        let w = if words.len() == n {
            &words[i]
        } else {
            &words[(i * words.len() / n.max(1)).min(words.len() - 1)]
        };
        return (w.start_ms, w.end_ms.max(w.start_ms));
    }
    let span = seg.end_ms.saturating_sub(seg.start_ms);
    let (i, n) = (i as u64, n.max(1) as u64);
    (
        seg.start_ms + span * i / n,
        seg.start_ms + span * (i + 1) / n,
    )
}

/// A run of consecutive segments by one speaker.
struct Turn<'a> {
    index: usize,
    speaker: Option<&'a str>,
    tokens: Vec<Token>,
    /// Number of sentences that are questions.
    questions: usize,
    role: Role,
}

impl Turn<'_> {
    fn speaker_is(&self, name: &str) -> bool {
        self.speaker == Some(name)
    }
}

fn turns<'a>(t: &'a Transcript, canonical: &str) -> Vec<Turn<'a>> {
    let mut out: Vec<Turn<'a>> = Vec::new();
    for token in tokens(t) {
        let speaker = t.segments[token.segment].speaker.as_deref();
        match out.last_mut() {
            Some(turn) if turn.speaker == speaker => turn.tokens.push(token),
            _ => out.push(Turn {
                index: out.len(),
                speaker,
                tokens: vec![token],
                questions: 0,
                role: Role::Content,
            }),
        }
    }
    for turn in &mut out {
        turn.questions = count_questions(canonical, &turn.tokens);
    }
    if out.iter().all(|t| t.questions == 0) {
        for turn in &mut out {
            turn.questions = count_interrogative_openings(canonical, &turn.tokens);
        }
    }
    out
}

/// Interrogative words that open a question in Spanish, English and Portuguese, without
/// accents (Whisper drops them too when it drops question marks).
const INTERROGATIVES: &[&str] = &[
    "que", "como", "cual", "cuales", "donde", "cuando", "quien", "quienes", "cuanto", "cuantos",
    "cuanta", "cuantas", "what", "how", "why", "where", "when", "who", "which", "qual", "quais",
    "onde", "quando", "quem", "quanto", "quantos",
];

/// Words that may come before the interrogative ("y qué…", "and how…").
const OPENERS: &[&str] = &["y", "e", "and", "so", "entonces", "bueno", "pues", "o"];

/// Sentences and clauses (after `,` `;` `:`) of the turn that open with an interrogative word.
fn count_interrogative_openings(canonical: &str, tokens: &[Token]) -> usize {
    let plain = |tok: &Token| -> String {
        use unicode_normalization::UnicodeNormalization;
        canonical[tok.byte_start..tok.byte_end]
            .to_lowercase()
            .nfd()
            .filter(|c| c.is_alphanumeric())
            .collect()
    };
    let mut count = 0;
    let mut at_start = true;
    let mut after_opener = false;
    for tok in tokens {
        let word = plain(tok);
        if (at_start || after_opener) && INTERROGATIVES.contains(&word.as_str()) {
            count += 1;
        }
        after_opener = at_start && OPENERS.contains(&word.as_str());
        let raw = &canonical[tok.byte_start..tok.byte_end];
        at_start = tok.sentence_end || raw.ends_with([',', ';', ':']);
    }
    count
}

/// Counts sentences of the turn that ask something: one ending in `?`, or containing `¿`.
fn count_questions(canonical: &str, tokens: &[Token]) -> usize {
    let mut questions = 0;
    let mut open_question = false;
    for tok in tokens {
        let word = &canonical[tok.byte_start..tok.byte_end];
        open_question |= word.contains('¿');
        if tok.sentence_end {
            if open_question || word.contains('?') {
                questions += 1;
            }
            open_question = false;
        }
    }
    questions + usize::from(open_question)
}

/// True when `word` closes a sentence: its last character that is not a closing quote or
/// bracket is `.`, `?`, `!` or `…`.
pub(crate) fn ends_sentence(word: &str) -> bool {
    word.chars()
        .rev()
        .find(|c| !matches!(c, '"' | '\'' | '»' | '”' | '’' | ')' | ']'))
        .is_some_and(|c| matches!(c, '.' | '?' | '!' | '…'))
}

/// The speaker with the most questions in the file (ties: the one who speaks first); `None`
/// when nobody asks anything or there is only one speaker.
fn detect_moderator(turns: &[Turn<'_>]) -> Option<String> {
    let mut order: Vec<&str> = Vec::new();
    let mut questions: HashMap<&str, usize> = HashMap::new();
    for turn in turns {
        if let Some(s) = turn.speaker {
            if !order.contains(&s) {
                order.push(s);
            }
            *questions.entry(s).or_default() += turn.questions;
        }
    }
    if order.len() < 2 {
        return None;
    }
    let mut best: Option<(&str, usize)> = None;
    for s in order {
        let q = questions.get(s).copied().unwrap_or(0);
        if q > 0 && best.is_none_or(|(_, bq)| q > bq) {
            best = Some((s, q));
        }
    }
    best.map(|(s, _)| s.to_string())
}

fn turn_role(turn: &Turn<'_>, canonical: &str, moderator: Option<&str>) -> Role {
    if moderator.is_some() && turn.speaker == moderator {
        return Role::Moderator;
    }
    let (Some(first), Some(last)) = (turn.tokens.first(), turn.tokens.last()) else {
        return Role::Content;
    };
    if is_back_channel(&canonical[first.byte_start..last.byte_end]) {
        Role::BackChannel
    } else {
        Role::Content
    }
}

/// Words that only acknowledge or agree, in Spanish, English and Portuguese. A turn made only of
/// these (and of a few function words) carries no content of its own.
const BACK_CHANNEL_WORDS: &[&str] = &[
    "sí",
    "si",
    "claro",
    "exacto",
    "exactamente",
    "ajá",
    "aja",
    "vale",
    "bueno",
    "ok",
    "okay",
    "vale",
    "mhm",
    "mm",
    "hmm",
    "eh",
    "ah",
    "oh",
    "correcto",
    "cierto",
    "verdad",
    "también",
    "tambien",
    "totalmente",
    "efectivamente",
    "obvio",
    "seguro",
    "perfecto",
    "pienso",
    "opino",
    "creo",
    "mismo",
    "igual",
    "acuerdo",
    "estoy",
    "de",
    "lo",
    "yo",
    "es",
    "eso",
    "así",
    "asi",
    "pues",
    "no",
    "ya",
    "a",
    "mí",
    "mi",
    "me",
    "pasa",
    "y",
    "yes",
    "yeah",
    "yep",
    "right",
    "sure",
    "exactly",
    "agree",
    "i",
    "too",
    "same",
    "think",
    "so",
    "uh",
    "huh",
    "um",
    "sim",
    "pois",
    "né",
    "isso",
    "concordo",
    "com",
    "você",
    "também",
    "certo",
    "é",
    "o",
    "que",
    "penso",
    "la",
    "el",
    "muy",
    "bien",
    "totally",
    "indeed",
    "true",
    "that's",
    "it",
];

/// Longest back-channel turn, in words.
const BACK_CHANNEL_MAX_WORDS: usize = 6;

/// True when a turn's text only acknowledges: at most a few words, all from the back-channel
/// list ("sí", "claro", "yo pienso lo mismo", "exacto", "ajá").
pub fn is_back_channel(text: &str) -> bool {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    !words.is_empty()
        && words.len() <= BACK_CHANNEL_MAX_WORDS
        && words
            .iter()
            .all(|w| BACK_CHANNEL_WORDS.contains(&w.as_str()))
}

/// Cuts a turn's tokens into passages: ranges of token indices.
fn cut_turn(tokens: &[Token], cfg: &PassageConfig) -> Vec<std::ops::Range<usize>> {
    let n = tokens.len();
    if n <= cfg.max_words {
        return std::iter::once(0..n).collect();
    }
    let target = n.div_ceil(n.div_ceil(cfg.max_words));
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        let end = piece_end(tokens, start, target, cfg);
        out.push(start..end);
        start = end;
    }
    out
}

/// Where the piece that starts at `start` should end: the sentence end closest to
/// `start + target` that keeps the piece within `min_words..=max_words` and leaves no tail
/// shorter than `min_words`; without one, a cut between words at `start + target`.
fn piece_end(tokens: &[Token], start: usize, target: usize, cfg: &PassageConfig) -> usize {
    let n = tokens.len();
    if n - start <= cfg.max_words {
        return n;
    }
    let want = start + target;
    let lo = start + cfg.min_words;
    let hi = (start + cfg.max_words).min(n.saturating_sub(cfg.min_words));
    (lo..=hi)
        .filter(|&end| tokens[end - 1].sentence_end)
        .min_by_key(|&end| (end.abs_diff(want), end))
        .unwrap_or(want)
}

fn make_passage(
    t: &Transcript,
    canonical: &str,
    file: usize,
    turn: &Turn<'_>,
    piece: std::ops::Range<usize>,
    id: usize,
) -> Passage {
    let first = turn.tokens[piece.start];
    let last = turn.tokens[piece.end - 1];
    let span = TextSpan {
        byte_start: first.byte_start,
        byte_end: last.byte_end,
        char_start: first.char_start,
        char_end: last.char_end,
    };
    Passage {
        id,
        file,
        uri: t.uri.clone(),
        speaker: turn.speaker.map(str::to_string),
        turn: turn.index,
        role: turn.role,
        start_ms: first.start_ms,
        end_ms: last.end_ms.max(first.start_ms),
        span,
        text: canonical[span.byte_start..span.byte_end].to_string(),
        words: piece.len(),
    }
}

/// A speaker turn of text with its time, as in a hand-made transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextTurn {
    /// The speaker's label.
    pub speaker: String,
    /// Start on the original timeline.
    pub start_ms: u64,
    /// End on the original timeline.
    pub end_ms: u64,
    /// What was said.
    pub text: String,
}

/// Builds a speaker-attributed [`Transcript`] from text turns (a hand-made or reference
/// transcript): one segment per turn, its whitespace-separated words spread over the turn in
/// proportion to their length. Source and model fields say that no audio or model was used.
pub fn transcript_from_turns(uri: &str, language: &str, turns: &[TextTurn]) -> Transcript {
    use crate::transcript::{
        LanguageInfo, ModelInfo, SCHEMA_NAME, SCHEMA_VERSION, Segment, SourceInfo,
        TranscribeSettings, Word,
    };
    let segments = turns
        .iter()
        .enumerate()
        .map(|(i, turn)| {
            let text = turn.text.split_whitespace().collect::<Vec<_>>().join(" ");
            let lengths: Vec<u64> = text
                .split(' ')
                .map(|w| w.chars().count() as u64 + 1)
                .collect();
            let total: u64 = lengths.iter().sum::<u64>().max(1);
            let span = turn.end_ms.saturating_sub(turn.start_ms);
            let mut before = 0;
            let words = text
                .split(' ')
                .filter(|w| !w.is_empty())
                .zip(&lengths)
                .map(|(w, len)| {
                    let start_ms = turn.start_ms + span * before / total;
                    before += len;
                    Word {
                        text: w.to_string(),
                        start_ms,
                        end_ms: turn.start_ms + span * before / total,
                        probability: 1.0,
                    }
                })
                .collect();
            Segment {
                id: i as u32,
                start_ms: turn.start_ms,
                end_ms: turn.end_ms.max(turn.start_ms),
                text,
                speaker: Some(turn.speaker.clone()),
                no_speech_prob: 0.0,
                avg_logprob: 0.0,
                words,
            }
        })
        .collect();
    Transcript {
        schema: SCHEMA_NAME.to_string(),
        schema_version: SCHEMA_VERSION,
        uri: uri.to_string(),
        source: SourceInfo {
            path: String::new(),
            sha256: String::new(),
            duration_ms: turns.iter().map(|t| t.end_ms).max().unwrap_or(0),
            sample_rate_hz: 0,
            channels: 0,
            codec: "text".to_string(),
            decode: Default::default(),
        },
        language: LanguageInfo {
            code: language.to_string(),
            detected: false,
            probability: None,
        },
        model: ModelInfo {
            name: "text".to_string(),
            sha256: String::new(),
            multilingual: true,
        },
        settings: TranscribeSettings {
            language_requested: language.to_string(),
            beam_size: 0,
            vad_threshold: 0.0,
            qualscribe_version: env!("CARGO_PKG_VERSION").to_string(),
        },
        speech: Vec::new(),
        segments,
        untranscribed: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
