//! Code proposals: for each theme a label, keywords, a definition, inclusion and exclusion hints,
//! and 3–5 verbatim quotes; plus the seed codes of deductive coding (CSV or REFI-QDA `.qdc`).
//!
//! Promises:
//! - **Quotes are verbatim.** A quote is a slice of its transcript's canonical text
//!   ([`crate::transcript::Transcript::text`]) at the offsets it carries, never rebuilt text.
//!   [`propose`] checks every quote with [`verify_quote`] before returning and fails with
//!   [`CodesError::QuoteMismatch`] otherwise (that would be a bug, not a user error).
//! - **Quotes** are the theme's passages closest to its centroid, one per speaker first (then the
//!   next closest), at most [`CodesConfig::max_quotes`]; a passage longer than
//!   [`CodesConfig::quote_max_words`] is shortened to its run of whole sentences that fits and
//!   holds most of the theme's keywords. Times are integer milliseconds on the original audio
//!   timeline, from the quote's first and last word.
//! - **Labels** come from class-based TF-IDF (each theme is one class, as in BERTopic; passages
//!   are counted, not occurrences) over words and two-word phrases (optionally joined by one stop word: "gastos de envío"), with
//!   Spanish, English and Portuguese stop words removed; a label joins the best 1–3
//!   non-overlapping terms and has 2–5 words where the terms allow it.
//! - Definitions and hints are written in the transcripts' language (Spanish, English or
//!   Portuguese; Spanish otherwise). Seeded themes keep the seed code's name and description.
//! - Deterministic: ties are broken by passage id or term text.

pub mod examples;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::passages::{Passage, Passages, TextSpan, Token, tokens};
use crate::themes::Themes;
use crate::themes::features::{is_content_word, stop_words};
use crate::transcript::Transcript;

/// A code given by the researcher before the analysis (deductive coding).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeedCode {
    /// The code's name.
    pub name: String,
    /// What it means (may be empty).
    pub description: String,
}

/// A verbatim quote backing a code.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quote {
    /// The passage it is taken from.
    pub passage: usize,
    /// The transcript's `uri`.
    pub uri: String,
    /// Who said it.
    pub speaker: Option<String>,
    /// Start of its first word, on the original timeline.
    pub start_ms: u64,
    /// End of its last word, on the original timeline.
    pub end_ms: u64,
    /// Where it is in the transcript's canonical text.
    pub span: TextSpan,
    /// The words, exactly as in the transcript.
    pub text: String,
    /// Cosine of its passage to the theme centroid (centred space).
    pub similarity: f32,
}

/// A proposed code for one theme.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CodeProposal {
    /// The theme it describes.
    pub theme: usize,
    /// Short label (2–5 words), or the seed code's name.
    pub label: String,
    /// Keywords, best first.
    pub keywords: Vec<String>,
    /// One sentence saying what the code covers.
    pub definition: String,
    /// When to apply it.
    pub include: String,
    /// When not to apply it.
    pub exclude: String,
    /// Representative verbatim quotes.
    pub quotes: Vec<Quote>,
    /// The seed code's name, for deductive themes.
    pub seed: Option<String>,
    /// Passages in the theme.
    pub passages: usize,
    /// Distinct speakers (per file) in the theme.
    pub speakers: usize,
    /// Distinct files in the theme.
    pub files: usize,
}

/// The proposed codes, one per non-empty theme, in theme order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Codebook {
    /// The codes.
    pub codes: Vec<CodeProposal>,
    /// The language definitions are written in.
    pub language: String,
}

/// Settings of [`propose`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodesConfig {
    /// Most quotes per code (default 5).
    pub max_quotes: usize,
    /// Longest quote in words before it is shortened to whole sentences (default 60).
    pub quote_max_words: usize,
    /// Keywords listed per code (default 8).
    pub keywords: usize,
}

impl Default for CodesConfig {
    fn default() -> Self {
        CodesConfig {
            max_quotes: 5,
            quote_max_words: 60,
            keywords: 8,
        }
    }
}

/// Failure to read seed codes or to build a codebook.
#[derive(Debug, thiserror::Error)]
pub enum CodesError {
    /// A seed code file could not be read.
    #[error("cannot read seed codes {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A seed code file that is neither `.csv` nor `.qdc`.
    #[error("seed codes {path}: expected a .csv (name,description) or a REFI-QDA .qdc file")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// A CSV row without a name, or with unbalanced quotes.
    #[error("seed codes {path}, line {line}: {problem}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line where the row starts.
        line: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// A `.qdc` file that is not well-formed XML.
    #[error(
        "seed codes {path}, byte {position}: {}",
        crate::error::one_line(source)
    )]
    Qdc {
        /// The file.
        path: PathBuf,
        /// Byte offset of the error.
        position: u64,
        /// The XML parser's error.
        #[source]
        source: quick_xml::Error,
    },
    /// A file with no codes in it.
    #[error("seed codes {path}: no codes found")]
    NoCodes {
        /// The file.
        path: PathBuf,
    },
    /// A passage refers to a transcript that was not given.
    #[error("passage {passage} is from `{uri}`, which is not among the transcripts given")]
    MissingTranscript {
        /// The passage.
        passage: usize,
        /// Its uri.
        uri: String,
    },
    /// A quote is not the transcript text at its offsets (a bug: quotes are sliced, not built).
    #[error(
        "quote from passage {passage} is not verbatim in `{uri}` at characters {char_start}..{char_end}"
    )]
    QuoteMismatch {
        /// The passage.
        passage: usize,
        /// The transcript.
        uri: String,
        /// Claimed start.
        char_start: usize,
        /// Claimed end.
        char_end: usize,
    },
}

/// Reads seed codes from a `.csv` (`name,description`, header optional) or a REFI-QDA `.qdc`.
pub fn read_seed_codes(path: &Path) -> Result<Vec<SeedCode>, CodesError> {
    let text = std::fs::read_to_string(path).map_err(|source| CodesError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let codes = match ext.as_str() {
        "csv" => parse_seed_csv(&text, path)?,
        "qdc" => parse_qdc(&text, path)?,
        _ => {
            return Err(CodesError::UnknownFormat {
                path: path.to_path_buf(),
            });
        }
    };
    if codes.is_empty() {
        return Err(CodesError::NoCodes {
            path: path.to_path_buf(),
        });
    }
    Ok(codes)
}

/// Parses `name,description` rows (RFC 4180 quoting; a first row `name,description` is a
/// header). `path` only names the file in errors.
pub fn parse_seed_csv(text: &str, path: &Path) -> Result<Vec<SeedCode>, CodesError> {
    let mut codes = Vec::new();
    for (line, fields) in csv_rows(text, path)? {
        let name = fields.first().map(|s| s.trim()).unwrap_or("");
        let description = fields.get(1).map(|s| s.trim()).unwrap_or("");
        if codes.is_empty()
            && name.eq_ignore_ascii_case("name")
            && description.eq_ignore_ascii_case("description")
        {
            continue;
        }
        if name.is_empty() {
            if fields.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            return Err(CodesError::Csv {
                path: path.to_path_buf(),
                line,
                problem: "the code has no name",
            });
        }
        codes.push(SeedCode {
            name: name.to_string(),
            description: description.to_string(),
        });
    }
    Ok(codes)
}

/// Splits CSV text into rows of fields, each with the line it starts on.
fn csv_rows(text: &str, path: &Path) -> Result<Vec<(usize, Vec<String>)>, CodesError> {
    let mut rows = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut row_line = 1;
    let mut chars = text.trim_start_matches('\u{feff}').chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '\n') => {
                fields.push(std::mem::take(&mut field));
                rows.push((row_line, std::mem::take(&mut fields)));
                line += 1;
                row_line = line;
            }
            (false, '\r') => {}
            (_, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
        }
    }
    if quoted {
        return Err(CodesError::Csv {
            path: path.to_path_buf(),
            line: row_line,
            problem: "a quoted field is not closed",
        });
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        rows.push((row_line, fields));
    }
    Ok(rows)
}

/// Reads the codes of a REFI-QDA codebook: every `<Code name=…>` (nested ones too, in document
/// order) with its `<Description>`.
pub fn parse_qdc(text: &str, path: &Path) -> Result<Vec<SeedCode>, CodesError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut codes: Vec<SeedCode> = Vec::new();
    // Index in `codes` of each open <Code>.
    let mut open: Vec<usize> = Vec::new();
    let mut description: Option<String> = None;
    let err = |reader: &quick_xml::Reader<&[u8]>, source| CodesError::Qdc {
        path: path.to_path_buf(),
        position: reader.error_position(),
        source,
    };
    loop {
        let event = reader.read_event().map_err(|e| err(&reader, e))?;
        match event {
            Event::Start(e) if e.local_name().as_ref() == "Code" => {
                codes.push(code_named(&e).map_err(|e| err(&reader, e))?);
                open.push(codes.len() - 1);
            }
            Event::Empty(e) if e.local_name().as_ref() == "Code" => {
                codes.push(code_named(&e).map_err(|e| err(&reader, e))?);
            }
            Event::End(e) if e.local_name().as_ref() == "Code" => {
                open.pop();
            }
            Event::Start(e) if e.local_name().as_ref() == "Description" => {
                description = Some(String::new());
            }
            Event::Text(t) => {
                if let Some(d) = description.as_mut() {
                    d.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(d) = description.as_mut() {
                    match r.resolve_char_ref().map_err(|e| err(&reader, e))? {
                        Some(c) => d.push(c),
                        None => {
                            let name = r.xml10_content();
                            if let Some(v) = quick_xml::escape::resolve_predefined_entity(&name) {
                                d.push_str(v);
                            }
                        }
                    }
                }
            }
            Event::CData(t) => {
                if let Some(d) = description.as_mut() {
                    d.push_str(&t.xml10_content());
                }
            }
            Event::End(e) if e.local_name().as_ref() == "Description" => {
                if let (Some(d), Some(&c)) = (description.take(), open.last()) {
                    codes[c].description = d.trim().to_string();
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    codes.retain(|c| !c.name.is_empty());
    Ok(codes)
}

/// A seed code from a `<Code>` element's `name` attribute.
fn code_named(e: &quick_xml::events::BytesStart<'_>) -> Result<SeedCode, quick_xml::Error> {
    let mut name = String::new();
    for attr in e.attributes() {
        let attr = attr.map_err(quick_xml::Error::from)?;
        if attr.key.local_name().as_ref() == "name" {
            name = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)?
                .into_owned();
        }
    }
    Ok(SeedCode {
        name: name.trim().to_string(),
        description: String::new(),
    })
}

/// Checks that `q.text` is the canonical text of its transcript at `q.span`, by bytes and by
/// characters.
pub fn verify_quote(transcripts: &[Transcript], q: &Quote) -> Result<(), CodesError> {
    let mismatch = || CodesError::QuoteMismatch {
        passage: q.passage,
        uri: q.uri.clone(),
        char_start: q.span.char_start,
        char_end: q.span.char_end,
    };
    let t = transcripts
        .iter()
        .find(|t| t.uri == q.uri)
        .ok_or_else(mismatch)?;
    let text = t.text();
    let by_bytes = text.get(q.span.byte_start..q.span.byte_end);
    let by_chars: String = text
        .chars()
        .skip(q.span.char_start)
        .take(q.span.char_end.saturating_sub(q.span.char_start))
        .collect();
    if by_bytes == Some(q.text.as_str()) && by_chars == q.text && !q.text.is_empty() {
        Ok(())
    } else {
        Err(mismatch())
    }
}

/// Proposes one code per non-empty theme (see the module docs). `transcripts` must be the ones
/// the passages were cut from, in the same order.
pub fn propose(
    transcripts: &[Transcript],
    passages: &Passages,
    themes: &Themes,
    seeds: &[SeedCode],
    cfg: &CodesConfig,
) -> Result<Codebook, CodesError> {
    for p in &passages.passages {
        if transcripts.get(p.file).is_none_or(|t| t.uri != p.uri) {
            return Err(CodesError::MissingTranscript {
                passage: p.id,
                uri: p.uri.clone(),
            });
        }
    }
    let language = majority_language(transcripts);
    let heard = word_confidence(transcripts);
    let terms = class_terms(passages, themes, &heard);
    let usage = WordUse::from_texts(passages.passages.iter().map(|p| p.text.as_str()), &language);
    // Each theme's label once: a code's exclusion hint names its nearest theme by its label too.
    let labels: Vec<String> = (0..themes.themes.len())
        .map(|t| label_of(themes, &terms, seeds, t, &language, &usage))
        .collect();
    // What each theme is about, once: its definition names three, its inclusion hint five, and
    // the exclusion hint of a code whose nearest theme it is two.
    let topics: Vec<Vec<String>> = terms
        .iter()
        .map(|ranked| topic_terms(ranked, &language, &usage, 5))
        .collect();
    let file_tokens: Vec<Vec<Token>> = transcripts.iter().map(tokens).collect();
    let mut codes = Vec::new();
    for (t, theme) in themes.themes.iter().enumerate() {
        if theme.members.is_empty() {
            continue;
        }
        let ranked = &terms[t];
        let keywords: Vec<String> = ranked
            .iter()
            .take(cfg.keywords)
            .map(|k| k.surface.clone())
            .collect();
        let seed = theme.seed.and_then(|s| seeds.get(s));
        let label = labels[t].clone();
        let nearest = nearest_other(themes, t);
        let other = nearest.map(|o| (labels[o].as_str(), topics[o].as_slice()));
        let mut quotes = Vec::new();
        for p in pick_quote_passages(passages, themes, t, cfg.max_quotes) {
            let passage = &passages.passages[p];
            let quote = shorten(
                passage,
                &file_tokens[passage.file],
                &transcripts[passage.file],
                ranked,
                cfg.quote_max_words,
                themes.similarity(p, t).unwrap_or(0.0),
            );
            verify_quote(transcripts, &quote)?;
            quotes.push(quote);
        }
        let members: Vec<&Passage> = theme
            .members
            .iter()
            .map(|&p| &passages.passages[p])
            .collect();
        codes.push(CodeProposal {
            theme: t,
            definition: match seed {
                Some(s) if !s.description.trim().is_empty() => s.description.trim().to_string(),
                _ => definition(&language, &topics[t]),
            },
            include: include_hint(&language, &topics[t]),
            exclude: exclude_hint(&language, other),
            label,
            keywords,
            quotes,
            seed: seed.map(|s| s.name.clone()),
            passages: members.len(),
            speakers: members
                .iter()
                .map(|p| (&p.uri, &p.speaker))
                .collect::<HashSet<_>>()
                .len(),
            files: members.iter().map(|p| &p.uri).collect::<HashSet<_>>().len(),
        });
    }
    Ok(Codebook { codes, language })
}

/// Checks every quote of a codebook.
pub fn verify_codebook(transcripts: &[Transcript], codebook: &Codebook) -> Result<(), CodesError> {
    codebook
        .codes
        .iter()
        .flat_map(|c| &c.quotes)
        .try_for_each(|q| verify_quote(transcripts, q))
}

fn majority_language(transcripts: &[Transcript]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for t in transcripts {
        let code: String = t
            .language
            .code
            .chars()
            .take(2)
            .collect::<String>()
            .to_lowercase();
        *counts.entry(code).or_default() += t.word_count().max(1);
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(c, _)| c)
        .filter(|c| matches!(c.as_str(), "es" | "en" | "pt"))
        .unwrap_or_else(|| "es".to_string())
}

/// The theme whose centroid is closest to `t`'s.
fn nearest_other(themes: &Themes, t: usize) -> Option<usize> {
    (0..themes.themes.len())
        .filter(|&o| o != t && !themes.themes[o].members.is_empty())
        .filter_map(|o| Some((o, themes.theme_similarity(t, o)?)))
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(o, _)| o)
}

fn label_of(
    themes: &Themes,
    terms: &[Vec<Term>],
    seeds: &[SeedCode],
    t: usize,
    language: &str,
    usage: &WordUse,
) -> String {
    match themes.themes[t].seed.and_then(|s| seeds.get(s)) {
        Some(s) => s.name.clone(),
        None => label_from(&terms[t], language, usage),
    }
}

/// The theme's passages to quote: closest to the centroid first, those of at least
/// [`QUOTE_MIN_WORDS`] words before shorter ones, and among those one per speaker before any
/// speaker is quoted twice.
fn pick_quote_passages(passages: &Passages, themes: &Themes, t: usize, max: usize) -> Vec<usize> {
    let mut ranked: Vec<(usize, f32)> = themes.themes[t]
        .members
        .iter()
        .map(|&p| (p, themes.similarity(p, t).unwrap_or(f32::NEG_INFINITY)))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let long = |p: usize| passages.passages[p].text.split_whitespace().count() >= QUOTE_MIN_WORDS;
    let mut chosen: Vec<usize> = Vec::new();
    let mut voices: HashSet<(&str, Option<&str>)> = HashSet::new();
    for (p, _) in ranked.iter().copied().filter(|&(p, _)| long(p)) {
        let passage = &passages.passages[p];
        if chosen.len() < max && voices.insert((passage.uri.as_str(), passage.speaker.as_deref())) {
            chosen.push(p);
        }
    }
    // Then the rest: long passages by voices already quoted before short ones.
    let rest = ranked.iter().filter(|&&(p, _)| long(p)).chain(&ranked);
    for &(p, _) in rest {
        if chosen.len() < max && !chosen.contains(&p) {
            chosen.push(p);
        }
    }
    chosen
}

/// Words a passage needs to be quoted before shorter ones: "Es normal." illustrates no theme.
const QUOTE_MIN_WORDS: usize = 6;

/// The passage as a quote, or its best run of whole sentences when it is longer than
/// `max_words`.
fn shorten(
    passage: &Passage,
    file_tokens: &[Token],
    transcript: &Transcript,
    terms: &[Term],
    max_words: usize,
    similarity: f32,
) -> Quote {
    let first = file_tokens.partition_point(|t| t.byte_start < passage.span.byte_start);
    let last = file_tokens.partition_point(|t| t.byte_end <= passage.span.byte_end);
    let toks = &file_tokens[first..last.max(first)];
    let canonical = transcript.text();
    let range = if toks.len() > max_words {
        best_sentence_window(toks, &canonical, terms, max_words)
    } else {
        0..toks.len()
    };
    match (
        toks.get(range.start),
        range.end.checked_sub(1).and_then(|e| toks.get(e)),
    ) {
        (Some(a), Some(b)) => {
            let span = TextSpan {
                byte_start: a.byte_start,
                byte_end: b.byte_end,
                char_start: a.char_start,
                char_end: b.char_end,
            };
            Quote {
                passage: passage.id,
                uri: passage.uri.clone(),
                speaker: passage.speaker.clone(),
                start_ms: a.start_ms,
                end_ms: b.end_ms.max(a.start_ms),
                span,
                text: canonical[span.byte_start..span.byte_end].to_string(),
                similarity,
            }
        }
        _ => Quote {
            passage: passage.id,
            uri: passage.uri.clone(),
            speaker: passage.speaker.clone(),
            start_ms: passage.start_ms,
            end_ms: passage.end_ms,
            span: passage.span,
            text: passage.text.clone(),
            similarity,
        },
    }
}

/// The run of whole sentences of at most `max_words` tokens with the most keyword weight
/// (ties: the earliest); the first `max_words` tokens when no sentence fits.
fn best_sentence_window(
    toks: &[Token],
    canonical: &str,
    terms: &[Term],
    max_words: usize,
) -> std::ops::Range<usize> {
    let weight: HashMap<&str, f64> = terms
        .iter()
        .filter(|t| !t.key.contains(' '))
        .map(|t| (t.key.as_str(), t.score))
        .collect();
    let mut sentences: Vec<std::ops::Range<usize>> = Vec::new();
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        if t.sentence_end || i + 1 == toks.len() {
            sentences.push(start..i + 1);
            start = i + 1;
        }
    }
    let token_weight = |t: &Token| -> f64 {
        words_of(&canonical[t.byte_start..t.byte_end])
            .iter()
            .map(|w| weight.get(w.as_str()).copied().unwrap_or(0.0))
            .sum()
    };
    let mut best: Option<(std::ops::Range<usize>, f64)> = None;
    for a in 0..sentences.len() {
        for b in a..sentences.len() {
            let range = sentences[a].start..sentences[b].end;
            if range.len() > max_words {
                break;
            }
            let w: f64 = toks[range.clone()].iter().map(token_weight).sum();
            if best.as_ref().is_none_or(|(_, bw)| w > *bw) {
                best = Some((range, w));
            }
        }
    }
    best.map(|(r, _)| r).unwrap_or(0..max_words.min(toks.len()))
}

/// A keyword or key phrase of a theme.
#[derive(Debug, Clone, PartialEq)]
struct Term {
    /// Lower-case words joined by spaces (the phrase's stop word included).
    key: String,
    /// The most frequent way it was written (first seen on ties).
    surface: String,
    score: f64,
}

/// Lower-case words of `text`: letters and digits, apostrophes kept inside words.
fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .map(|w| w.trim_matches(|c| c == '\'' || c == '’').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// The stretches of `text` between punctuation marks: terms and word pairs never cross one.
fn phrase_chunks(text: &str) -> impl Iterator<Item = &str> {
    let is_word_char = |c: char| c.is_alphanumeric() || c == '\'' || c == '’';
    text.split(move |c: char| !(is_word_char(c) || c.is_whitespace()))
}

/// Terms of one passage with how they were written: content words, and phrases of two content
/// words, adjacent or with one stop word between, never across punctuation.
fn passage_terms(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for chunk in phrase_chunks(text) {
        let raw: Vec<&str> = chunk.split_whitespace().collect();
        let lower: Vec<String> = raw.iter().map(|w| w.to_lowercase()).collect();
        for i in 0..lower.len() {
            if !is_content_word(&lower[i]) {
                continue;
            }
            out.push((lower[i].clone(), raw[i].to_string()));
            let Some(next) = lower.get(i + 1) else {
                continue;
            };
            if is_content_word(next) {
                out.push((
                    format!("{} {next}", lower[i]),
                    format!("{} {}", raw[i], raw[i + 1]),
                ));
            } else if let Some(after) = lower.get(i + 2)
                && is_content_word(after)
                && stop_words().contains(next.as_str())
            {
                out.push((
                    format!("{} {next} {after}", lower[i]),
                    format!("{} {} {}", raw[i], raw[i + 1], raw[i + 2]),
                ));
            }
        }
    }
    out
}

/// Passages using a term in one class, and how often each way of writing it occurred.
type TermCount = (usize, BTreeMap<String, usize>);

/// Class-based TF-IDF terms of every theme, best first, counting passages rather than
/// occurrences: a term's weight in a theme is the share of the theme's passages that use it,
/// times `ln(1 + A / f)` with `A` the average passages per class and `f` the passages using it
/// anywhere. Counting passages keeps one talkative turn from naming a theme. Unassigned content
/// passages form one more class, so their words count in `f` but label nothing.
fn class_terms(
    passages: &Passages,
    themes: &Themes,
    heard: &HashMap<String, f32>,
) -> Vec<Vec<Term>> {
    let classes = themes.themes.len() + 1;
    let mut counts: Vec<BTreeMap<String, TermCount>> = vec![BTreeMap::new(); classes];
    let mut class_passages = vec![0usize; classes];
    let assignment = themes.assignment();
    for p in passages.content() {
        let class = assignment[p.id].unwrap_or(classes - 1);
        class_passages[class] += 1;
        let mut seen: HashSet<String> = HashSet::new();
        for (key, surface) in passage_terms(&p.text) {
            let entry = counts[class].entry(key.clone()).or_default();
            *entry.1.entry(surface).or_default() += 1;
            if seen.insert(key) {
                entry.0 += 1;
            }
        }
    }
    let mut total: HashMap<&str, usize> = HashMap::new();
    for class in &counts {
        for (k, (n, _)) in class {
            *total.entry(k.as_str()).or_default() += n;
        }
    }
    let avg = class_passages.iter().sum::<usize>() as f64 / classes as f64;
    (0..themes.themes.len())
        .map(|c| {
            let mut terms: Vec<Term> = counts[c]
                .iter()
                .map(|(key, (n, surfaces))| {
                    let tf = *n as f64 / class_passages[c].max(1) as f64;
                    let idf = (1.0 + avg / total[key.as_str()] as f64).ln();
                    // A word the ASR was unsure of is likely misheard: it should not name a
                    // theme. Squared, as a word heard at 0.5 in every passage of a theme still
                    // outscored real words used in half of them (1 h of Spanish: "cuimamo").
                    let sure: f64 = key
                        .split(' ')
                        .filter(|w| is_content_word(w))
                        .map(|w| f64::from(heard.get(w).copied().unwrap_or(1.0)).powi(2))
                        .product();
                    let surface = surfaces
                        .iter()
                        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                        .map(|(s, _)| s.to_lowercase())
                        .unwrap_or_else(|| key.clone());
                    Term {
                        key: key.clone(),
                        surface,
                        score: tf * idf * sure,
                    }
                })
                .collect();
            // Ties prefer phrases: a phrase as frequent as its words says more than either word.
            terms.sort_by(|a, b| {
                b.score
                    .total_cmp(&a.score)
                    .then(b.key.matches(' ').count().cmp(&a.key.matches(' ').count()))
                    .then(a.key.cmp(&b.key))
            });
            terms
        })
        .collect()
}

/// Mean ASR probability of each lower-case word, over its first occurrence in each segment.
/// Why only the first: Whisper decodes a segment conditioned on what it already wrote there, so
/// a word it misheard once comes back near-certain the second time (1 h of Spanish: "cuimamo",
/// for "conocimiento de uno mismo", at 0.37–0.52 where first heard and 0.99 when repeated).
fn word_confidence(transcripts: &[Transcript]) -> HashMap<String, f32> {
    let mut sums: HashMap<String, (f64, usize)> = HashMap::new();
    for t in transcripts {
        for seg in &t.segments {
            let mut seen: HashSet<String> = HashSet::new();
            for w in &seg.words {
                for word in words_of(&w.text) {
                    if !seen.insert(word.clone()) {
                        continue;
                    }
                    let e = sums.entry(word).or_default();
                    e.0 += f64::from(w.probability.clamp(0.0, 1.0));
                    e.1 += 1;
                }
            }
        }
    }
    sums.into_iter()
        .map(|(w, (sum, n))| (w, (sum / n.max(1) as f64) as f32))
        .collect()
}

/// Frequent Spanish verb forms that are not stop words (opinions are voiced with them, so they
/// top every theme's terms, yet name none).
const SPANISH_VERBS: &[&str] = &[
    "creo",
    "cree",
    "creen",
    "pienso",
    "piensa",
    "piensan",
    "quiero",
    "quiere",
    "quieren",
    "puedo",
    "puede",
    "pueden",
    "tengo",
    "tiene",
    "tienen",
    "hace",
    "hacen",
    "hago",
    "digo",
    "dice",
    "dicen",
    "parece",
    "parecen",
    "gusta",
    "gustan",
    "encanta",
    "necesito",
    "necesita",
    "sabe",
    "saben",
    "llega",
    "llegan",
    "pasa",
    "pasan",
    "pide",
    "piden",
    "cambiaría",
    "pagaría",
    "usan",
    "usar",
    "opino",
    "siento",
    "veo",
    "vamos",
    "debería",
    "deberían",
    "habría",
    "aparece",
    "aparecen",
    "entiende",
    "entienden",
    "fueran",
    "trae",
    "traen",
    "llegue",
];

/// A word that is a verb form rather than a thing (Spanish: frequent forms and verb endings;
/// other languages: never), so a label is not made of verbs alone.
fn is_verb_like(word: &str, language: &str) -> bool {
    if language != "es" {
        return false;
    }
    const ENDINGS: &[&str] = &[
        "ando", "iendo", "amos", "emos", "imos", "aron", "ieron", "aban", "íamos", "aría", "ería",
        "iría", "arían", "erían",
    ];
    let long = word.chars().count() >= 5;
    // Infinitives with a clitic pronoun: "devolverme", "hacerlo".
    let bare = [
        "me", "te", "se", "nos", "lo", "la", "le", "los", "las", "les",
    ]
    .iter()
    .find_map(|c| word.strip_suffix(c))
    .filter(|b| ["ar", "er", "ir"].iter().any(|e| b.ends_with(e)));
    // Preterite "causó", "relató": nouns ending in a stressed ó are rare ("dominó").
    let preterite = word.chars().count() >= 4 && word.ends_with('ó');
    SPANISH_VERBS.contains(&word)
        || preterite
        || (long && bare.is_some())
        || (long && ENDINGS.iter().any(|e| word.ends_with(e)))
        || (long && ["ar", "er", "ir"].iter().any(|e| word.ends_with(e)))
}

/// Per language: articles, demonstratives and possessives, after which a noun stands; "no",
/// reflexive or object clitics and subject pronouns, after which a verb stands; and the little
/// words a noun phrase may hold between two content words ("gastos de envío"). Spanish and
/// Portuguese only: English puts adjectives after its articles, and labels are not checked there.
const WORD_PLACES: &[WordPlaces] = &[
    WordPlaces {
        language: "es",
        nouns_after: &[
            "el", "la", "los", "las", "un", "una", "unos", "unas", "del", "al", "mi", "mis", "tu",
            "tus", "su", "sus", "este", "esta", "estos", "estas", "ese", "esa", "esos", "esas",
            "nuestro", "nuestra", "nuestros", "nuestras",
        ],
        verbs_after: &[
            "no", "se", "me", "te", "nos", "os", "les", "yo", "ellos", "ellas", "nosotros",
            "nosotras", "ustedes",
        ],
        connectors: &[
            "de", "del", "en", "con", "para", "por", "sin", "sobre", "entre", "a", "al", "y", "e",
            "o", "u",
        ],
    },
    WordPlaces {
        language: "pt",
        nouns_after: &[
            "os", "as", "um", "uma", "uns", "umas", "do", "da", "dos", "das", "meu", "minha",
            "meus", "minhas", "seu", "sua", "seus", "suas", "este", "esta", "estes", "estas",
            "esse", "essa", "esses", "essas", "nosso", "nossa", "nossos", "nossas",
        ],
        verbs_after: &[
            "não", "se", "me", "te", "nos", "lhe", "lhes", "eu", "eles", "elas", "nós", "você",
            "vocês",
        ],
        connectors: &[
            "de", "do", "da", "dos", "das", "em", "no", "na", "nos", "nas", "com", "para", "por",
            "sem", "sobre", "entre", "a", "ao", "e", "ou",
        ],
    },
];

/// Where nouns and verbs stand in one language, and what joins a noun phrase (see
/// [`WORD_PLACES`]).
struct WordPlaces {
    language: &'static str,
    nouns_after: &'static [&'static str],
    verbs_after: &'static [&'static str],
    connectors: &'static [&'static str],
}

/// How the texts (passages) use their words: how often each stands where a noun does and
/// where a verb does ([`WORD_PLACES`]: "los envíos", "no escriben"). Why: a theme's top terms
/// include adjectives, adverbs and verbs ("imposible", "siquiera", "causó") that name nothing;
/// the transcripts themselves say which words are things, with no dictionary.
#[derive(Debug, Default)]
struct WordUse {
    as_noun: HashMap<String, usize>,
    as_verb: HashMap<String, usize>,
    /// Words allowed between the two content words of a three-word label term.
    connectors: &'static [&'static str],
}

impl WordUse {
    fn from_texts<'a>(texts: impl IntoIterator<Item = &'a str>, language: &str) -> WordUse {
        let Some(places) = WORD_PLACES.iter().find(|p| p.language == language) else {
            return WordUse::default();
        };
        let mut usage = WordUse {
            connectors: places.connectors,
            ..WordUse::default()
        };
        for text in texts {
            for chunk in phrase_chunks(text) {
                let words: Vec<String> = chunk.split_whitespace().map(str::to_lowercase).collect();
                for pair in words.windows(2) {
                    if places.nouns_after.contains(&pair[0].as_str()) {
                        *usage.as_noun.entry(pair[1].clone()).or_default() += 1;
                    } else if places.verbs_after.contains(&pair[0].as_str()) {
                        *usage.as_verb.entry(pair[1].clone()).or_default() += 1;
                    }
                }
            }
        }
        usage
    }

    /// Nothing was learned (another language, or no text).
    fn is_empty(&self) -> bool {
        self.as_noun.is_empty() && self.as_verb.is_empty()
    }

    fn counts(&self, word: &str) -> (usize, usize) {
        let n = self.as_noun.get(word).copied().unwrap_or(0);
        (n, self.as_verb.get(word).copied().unwrap_or(0))
    }

    /// Used as a noun, and at least as often as a verb.
    fn is_noun(&self, word: &str) -> bool {
        let (noun, verb) = self.counts(word);
        noun > 0 && noun >= verb
    }

    /// Used as a verb more often than as a noun.
    fn is_verb(&self, word: &str) -> bool {
        let (noun, verb) = self.counts(word);
        verb > noun
    }

    /// Whether `key` may name a theme: no word used as a verb, a three-word term joined by a
    /// preposition or conjunction ("gastos de envío", not "miembros es imposible"), and, when
    /// `strict`, a first word used as a noun.
    fn fits_label(&self, key: &str, strict: bool) -> bool {
        if self.is_empty() {
            return true;
        }
        let words: Vec<&str> = key.split(' ').collect();
        let content: Vec<&str> = words
            .iter()
            .copied()
            .filter(|w| is_content_word(w))
            .collect();
        let joined = words.len() < 3
            || words[1..words.len() - 1]
                .iter()
                .all(|w| is_content_word(w) || self.connectors.contains(w));
        joined
            && !content.iter().any(|w| self.is_verb(w))
            && (!strict || content.first().is_some_and(|w| self.is_noun(w)))
    }
}

/// A 2–5 word label from the best non-overlapping terms (at most three): terms that are not
/// noun phrases (starting with a verb, or holding a frequent verb form) are skipped, and a term sharing a stem with a chosen one is a near
/// duplicate ("envío" after "gastos de envío"). Where the transcripts show how words are used
/// ([`WordUse`]), terms holding a word used as a verb or clauses are skipped, and terms whose
/// first word is used as a noun come first: the others only when those give no label. Terms
/// under half the best term's score label only when nothing above does, and a phrase nearly as
/// frequent as a chosen word it holds takes the word's place.
fn label_from(terms: &[Term], language: &str, usage: &WordUse) -> String {
    // Strict, then lenient, then every term; each pass only when the one before gave nothing;
    // first among the terms above the floor, then among all.
    [score_floor(terms), f64::NEG_INFINITY]
        .into_iter()
        .flat_map(|floor| STRICTNESS.map(|strict| (floor, strict)))
        .map(|(floor, strict)| label_from_terms(fitting(terms, usage, floor, strict), language))
        .find(|label| !label.is_empty())
        .unwrap_or_else(|| "(sin etiqueta)".to_string())
}

/// The passes of [`label_from`] and [`topic_terms`]: terms whose first word is used as a noun,
/// then terms holding no word used as a verb, then every term ([`WordUse::fits_label`]).
const STRICTNESS: [Option<bool>; 3] = [Some(true), Some(false), None];

/// Half the theme's best term score. Terms far below the best say little about a theme,
/// whatever their kind ("inteligencia, cuimamo": a misheard word used as a noun beat
/// "competencias" by being a noun).
fn score_floor(terms: &[Term]) -> f64 {
    terms.first().map_or(0.0, |t| t.score * LABEL_SCORE_SHARE)
}

/// `terms` (best first) scoring at least `floor` that fit a label at `strict` (`None`: all).
fn fitting<'a>(
    terms: &'a [Term],
    usage: &'a WordUse,
    floor: f64,
    strict: Option<bool>,
) -> impl Iterator<Item = &'a Term> {
    terms
        .iter()
        .take_while(move |t| t.score >= floor)
        .filter(move |t| strict.is_none_or(|strict| usage.fits_label(&t.key, strict)))
}

/// A label term holds at least this share of the theme's best term's score ([`label_from`]).
const LABEL_SCORE_SHARE: f64 = 0.5;
/// A phrase scoring at least this share of a chosen word it holds replaces it in the label
/// ("inteligencia emocional" for "inteligencia").
const PHRASE_SHARE: f64 = 0.9;

/// A term chosen for a label, with its content words' stems.
struct LabelTerm<'a> {
    term: &'a Term,
    stems: Vec<String>,
    words: usize,
}

impl<'a> LabelTerm<'a> {
    /// `None` unless `term` is a noun phrase: it does not start with a verb, and holds no
    /// finite verb of the list.
    fn new(term: &'a Term, language: &str) -> Option<LabelTerm<'a>> {
        let tw: Vec<&str> = term.key.split(' ').collect();
        let content: Vec<&str> = tw.iter().copied().filter(|w| is_content_word(w)).collect();
        let verbal = content.first().is_none_or(|w| is_verb_like(w, language))
            || (language == "es" && content.iter().any(|w| SPANISH_VERBS.contains(w)));
        if verbal {
            return None;
        }
        let stems = content
            .iter()
            .flat_map(|w| crate::themes::features::terms(w, language))
            .collect();
        Some(LabelTerm {
            term,
            stems,
            words: tw.len(),
        })
    }

    /// Whether the two terms share a stem (near duplicates: "envío" and "gastos de envío").
    fn shares_stem(&self, other: &LabelTerm<'_>) -> bool {
        self.stems.iter().any(|s| other.stems.contains(s))
    }
}

/// What a theme is about, for its definition and hints: at most `n` terms chosen as label
/// terms are ([`label_from`]: noun phrases at or above half the best score, those used as nouns
/// if any), no two sharing a stem; the top terms themselves where none qualifies. Why: the top
/// terms include adverbs and adjectives ("hablan de noche, distintas y normalmente").
fn topic_terms(terms: &[Term], language: &str, usage: &WordUse, n: usize) -> Vec<String> {
    let floor = score_floor(terms);
    let topics = STRICTNESS
        .into_iter()
        .map(|strict| {
            let mut chosen: Vec<LabelTerm<'_>> = Vec::new();
            let candidates =
                fitting(terms, usage, floor, strict).filter_map(|t| LabelTerm::new(t, language));
            for candidate in candidates {
                if chosen.len() == n {
                    break;
                }
                if !chosen.iter().any(|c| c.shares_stem(&candidate)) {
                    chosen.push(candidate);
                }
            }
            chosen
        })
        .find(|chosen| !chosen.is_empty());
    match topics {
        Some(chosen) => chosen.iter().map(|c| c.term.surface.clone()).collect(),
        None => terms.iter().take(n).map(|t| t.surface.clone()).collect(),
    }
}

/// [`label_from`]'s choice among `terms`, empty when none qualifies.
fn label_from_terms<'a>(terms: impl IntoIterator<Item = &'a Term>, language: &str) -> String {
    let mut chosen: Vec<LabelTerm<'a>> = Vec::new();
    for candidate in terms
        .into_iter()
        .filter_map(|t| LabelTerm::new(t, language))
    {
        let words: usize = chosen.iter().map(|c| c.words).sum();
        let shared: Vec<usize> = (0..chosen.len())
            .filter(|&i| chosen[i].shares_stem(&candidate))
            .collect();
        match shared.as_slice() {
            [] if words + candidate.words <= 5 => chosen.push(candidate),
            &[i] if upgrades(&chosen[i], &candidate) && words - 1 + candidate.words <= 5 => {
                chosen[i] = candidate;
            }
            _ => continue,
        }
        let words: usize = chosen.iter().map(|c| c.words).sum();
        if (words >= 2 && chosen.len() >= 2) || words >= 3 || chosen.len() == 3 {
            break;
        }
    }
    let label: Vec<&str> = chosen.iter().map(|c| c.term.surface.as_str()).collect();
    label.join(", ")
}

/// Whether `phrase` should stand in a label instead of the single word `word` it holds: it
/// says more and is used almost as much. Two-word phrases only: both are content words, where
/// a longer one may hold a verb between them ("miembros es imposible").
fn upgrades(word: &LabelTerm<'_>, phrase: &LabelTerm<'_>) -> bool {
    word.words == 1
        && phrase.words == 2
        && word.stems.iter().all(|s| phrase.stems.contains(s))
        && phrase.term.score >= PHRASE_SHARE * word.term.score
}

/// "a, b y c" in the language.
fn listing(language: &str, items: &[String], or: bool) -> String {
    let and = match (language, or) {
        ("en", false) => "and",
        ("en", true) => "or",
        ("pt", false) => "e",
        ("pt", true) => "ou",
        (_, false) => "y",
        (_, true) => "o",
    };
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {and} {last}", init.join(", ")),
    }
}

fn definition(language: &str, keywords: &[String]) -> String {
    let k = listing(language, &keywords[..keywords.len().min(3)], false);
    match language {
        "en" => format!("Passages in which participants talk about {k}."),
        "pt" => format!("Trechos em que os participantes falam de {k}."),
        _ => format!("Pasajes en que los participantes hablan de {k}."),
    }
}

fn include_hint(language: &str, keywords: &[String]) -> String {
    let k = listing(language, &keywords[..keywords.len().min(5)], true);
    match language {
        "en" => format!("Include: passages about {k}, even in other words."),
        "pt" => format!("Incluir: trechos sobre {k}, mesmo com outras palavras."),
        _ => format!("Incluir: pasajes sobre {k}, aunque usen otras palabras."),
    }
}

/// `nearest`: the label and topic terms ([`topic_terms`]) of the theme nearest the code's.
fn exclude_hint(language: &str, nearest: Option<(&str, &[String])>) -> String {
    let Some((label, topics)) = nearest else {
        return match language {
            "en" => "Exclude: moderator questions and short agreement.".to_string(),
            "pt" => "Excluir: perguntas do moderador e concordâncias breves.".to_string(),
            _ => "Excluir: preguntas del moderador y asentimientos breves.".to_string(),
        };
    };
    let k = listing(language, &topics[..topics.len().min(2)], true);
    match language {
        "en" => format!("Exclude: passages mainly about {k} (code “{label}”)."),
        "pt" => format!("Excluir: trechos sobretudo sobre {k} (código «{label}»)."),
        _ => format!("Excluir: pasajes centrados en {k} (código «{label}»)."),
    }
}

#[cfg(test)]
mod tests;
