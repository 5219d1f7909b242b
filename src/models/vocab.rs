//! Whisper vocabulary from a CT2 `vocabulary.txt`. Each line is a GPT-2 byte-level BPE token:
//! every raw byte is shown as one printable Unicode character (so a space is `Ġ`). whisper.cpp
//! wants the raw bytes, and only the regular tokens (ids below `<|endoftext|>`): it synthesises
//! the special tokens itself from `n_vocab`.

use super::error::ConvertError;
use std::collections::HashMap;
use std::sync::OnceLock;

/// `<|endoftext|>` id of English-only vocabularies (the GPT-2 tokenizer).
const EOT_ENGLISH: usize = 50256;
/// `<|endoftext|>` id of multilingual vocabularies.
const EOT_MULTILINGUAL: usize = 50257;
/// Smallest multilingual `n_vocab`; whisper.cpp uses the same test.
pub(crate) const MULTILINGUAL_MIN_VOCAB: usize = 51865;

/// GPT-2's byte → char table: printable Latin-1 bytes map to themselves, the other 68 bytes to
/// U+0100 onwards, in byte order.
fn byte_to_char() -> [char; 256] {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut table = ['\0'; 256];
    let mut next_extra = 256u32;
    for b in 0..=255u8 {
        table[usize::from(b)] = if printable(b) {
            char::from(b)
        } else {
            let c = char::from_u32(next_extra).unwrap_or('\0');
            next_extra += 1;
            c
        };
    }
    table
}

/// The inverse table, built once.
fn char_to_byte() -> &'static HashMap<char, u8> {
    static TABLE: OnceLock<HashMap<char, u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        byte_to_char()
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect()
    })
}

/// Decodes one byte-level token to its raw bytes; `None` if a char is outside the table.
pub(crate) fn decode_token(token: &str) -> Option<Vec<u8>> {
    let table = char_to_byte();
    token.chars().map(|c| table.get(&c).copied()).collect()
}

/// Encodes raw bytes the GPT-2 way (the inverse of [`decode_token`]).
#[cfg(test)]
pub(crate) fn encode_token(bytes: &[u8]) -> String {
    let table = byte_to_char();
    bytes.iter().map(|&b| table[usize::from(b)]).collect()
}

/// The regular tokens (ids below `<|endoftext|>`) of a vocabulary with `n_vocab` entries, as raw
/// bytes. Checks the line count and that `<|endoftext|>` sits where whisper.cpp expects it.
pub(crate) fn regular_tokens(text: &str, n_vocab: usize) -> Result<Vec<Vec<u8>>, ConvertError> {
    let bad = |reason: String| ConvertError::Vocabulary { reason };
    let lines: Vec<&str> = text
        .strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .collect();
    if lines.len() != n_vocab {
        return Err(bad(format!(
            "{} tokens, but the model has n_vocab = {n_vocab}",
            lines.len()
        )));
    }
    let expected_eot = if n_vocab >= MULTILINGUAL_MIN_VOCAB {
        EOT_MULTILINGUAL
    } else {
        EOT_ENGLISH
    };
    let eot = lines.iter().position(|l| *l == "<|endoftext|>");
    if eot != Some(expected_eot) {
        return Err(bad(format!(
            "<|endoftext|> is at id {eot:?}, expected {expected_eot} for n_vocab = {n_vocab}"
        )));
    }
    lines[..expected_eot]
        .iter()
        .enumerate()
        .map(|(id, line)| {
            decode_token(line).ok_or_else(|| {
                bad(format!(
                    "token {id} ({line:?}) is not GPT-2 byte-level text"
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_gpt2_byte_level_text() {
        assert_eq!(decode_token("Ġhello").unwrap(), b" hello");
        assert_eq!(decode_token("Ã©").unwrap(), "é".as_bytes());
        assert_eq!(decode_token("Ċ").unwrap(), b"\n");
        assert_eq!(decode_token("!").unwrap(), b"!");
        assert!(decode_token("€").is_none());
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let text = encode_token(&all);
        assert_eq!(text.chars().count(), 256);
        assert_eq!(decode_token(&text).unwrap(), all);
        assert_eq!(encode_token(" hello".as_bytes()), "Ġhello");
    }

    fn vocabulary(n_vocab: usize, eot: usize) -> String {
        (0..n_vocab)
            .map(|i| {
                if i == eot {
                    "<|endoftext|>".to_string()
                } else {
                    format!("t{i}")
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    }

    #[test]
    fn keeps_only_ids_below_endoftext() {
        let en = regular_tokens(&vocabulary(51864, 50256), 51864).unwrap();
        assert_eq!(en.len(), 50256);
        assert_eq!(en[7], b"t7");
        let multi = regular_tokens(&vocabulary(51865, 50257), 51865).unwrap();
        assert_eq!(multi.len(), 50257);
    }

    #[test]
    fn rejects_wrong_count_or_endoftext_position() {
        let e = regular_tokens(&vocabulary(51864, 50256), 51865).unwrap_err();
        assert!(e.to_string().contains("51864 tokens"), "{e}");
        let e = regular_tokens(&vocabulary(51865, 50256), 51865).unwrap_err();
        assert!(e.to_string().contains("expected 50257"), "{e}");
    }
}
