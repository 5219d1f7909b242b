//! Evaluation against references: word error rate ([`wer`]) with its text normalisation, and
//! diarization error rate ([`der`]) with the RTTM/UEM files it reads ([`rttm`]).
//!
//! [`normalize_text`] turns text into the word list that scoring compares:
//!
//! 1. lower-case;
//! 2. accents stripped: Unicode NFD, then combining marks dropped (`é`→`e`, `ñ`→`n`, `ü`→`u`,
//!    `ç`→`c`); letters without a decomposition (`ß`, `ø`, `æ`) stay as they are;
//! 3. a `.` or `,` between digits that is followed by exactly three digits is a thousands
//!    separator and is removed (`25.000`, `25,000` → `25000`);
//! 4. apostrophes (`'` `’` `‘` `ʼ` `` ` ``) are removed, joining the word (`don't` → `dont`);
//! 5. every other character that is not a letter or digit (punctuation such as `« » ¿ ¡ “ ” —`,
//!    hyphens, symbols) separates words, and whitespace collapses.
//!
//! `«¿Qué tal?», dijo Óscar` → `["que", "tal", "dijo", "oscar"]`.
//!
//! [`normalize_text_lang`] then spells out tokens made only of digits, 0 to 999 999, in Spanish
//! (`es`) or English (`en`), because references and Whisper disagree on `25` vs
//! `veinticinco`: `32` → `treinta y dos`, `2020` → `dos mil veinte`, `25` → `twenty five`.
//! Number words are written without accents (`veintitres`), as step 2 leaves references.

pub mod der;
pub mod longform;
mod numbers;
pub mod rttm;
pub mod themes;
pub mod wer;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

pub use wer::{WerReport, word_error_rate, word_error_rate_lang};

/// Normalises `s` for scoring (see the module docs): lower-case, no accents, no punctuation.
pub fn normalize_text(s: &str) -> Vec<String> {
    normalize_text_lang(s, "")
}

/// Like [`normalize_text`], and spells out numbers 0–999 999 in `lang`'s words.
///
/// `lang` is an ISO 639-1 code, optionally with a region (`es`, `es-MX`, `en_GB`); for any
/// language but Spanish and English digits stay digits.
pub fn normalize_text_lang(s: &str, lang: &str) -> Vec<String> {
    let plain = join_thousands(&strip_accents(&s.to_lowercase()));
    let mut words = Vec::new();
    for token in tokenize(&plain) {
        match numbers::spell(&token, lang) {
            Some(spelled) => words.extend(spelled),
            None => words.push(token),
        }
    }
    words
}

/// Decomposes (NFD) and drops combining marks. Runs after lower-casing because lower-casing
/// some letters (`İ`) adds a combining mark that this then removes.
fn strip_accents(s: &str) -> String {
    s.nfd().filter(|c| !is_combining_mark(*c)).collect()
}

/// Removes thousands separators: `.` or `,` with a digit before and exactly three after.
fn join_thousands(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let is_digit_at = |i: usize| chars.get(i).is_some_and(char::is_ascii_digit);
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        let separator = matches!(c, '.' | ',')
            && i > 0
            && is_digit_at(i - 1)
            && (1..=3).all(|k| is_digit_at(i + k))
            && !is_digit_at(i + 4);
        if !separator {
            out.push(c);
        }
    }
    out
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | '‘' | 'ʼ' | '`')
}

/// Splits into words of letters and digits; apostrophes vanish, anything else separates.
fn tokenize(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    for c in s.chars() {
        if c.is_alphanumeric() {
            current.push(c);
        } else if !is_apostrophe(c) && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        normalize_text(s).join(" ")
    }

    #[test]
    fn spanish_punctuation_and_accents_go() {
        assert_eq!(norm("«¿Qué tal?», dijo Óscar"), "que tal dijo oscar");
        assert_eq!(
            norm("¡Señor Muñoz! “Pingüino” — ¿cómo está?"),
            "senor munoz pinguino como esta"
        );
        assert_eq!(norm("Français, garçon; niño…"), "francais garcon nino");
    }

    #[test]
    fn apostrophes_join_and_hyphens_split() {
        assert_eq!(
            norm("Don't say 'no' — it’s twenty-five"),
            "dont say no its twenty five"
        );
    }

    #[test]
    fn whitespace_collapses() {
        assert_eq!(normalize_text("  a \n\t b  "), ["a", "b"]);
        assert!(normalize_text(" ¿? … ").is_empty());
    }

    #[test]
    fn digits_stay_without_language() {
        assert_eq!(norm("Tengo 25 años"), "tengo 25 anos");
        assert_eq!(norm("25.000 personas, 1,5 km"), "25000 personas 1 5 km");
    }

    #[test]
    fn numbers_are_spelled_in_spanish_and_english() {
        let es = |s: &str| normalize_text_lang(s, "es").join(" ");
        let en = |s: &str| normalize_text_lang(s, "en-US").join(" ");
        assert_eq!(es("Tengo 25 años"), "tengo veinticinco anos");
        assert_eq!(es("veinticinco"), "veinticinco");
        assert_eq!(
            es("En 2020 éramos 32."),
            "en dos mil veinte eramos treinta y dos"
        );
        assert_eq!(es("25.000 personas"), "veinticinco mil personas");
        assert_eq!(
            en("I was 25 in 1,999"),
            "i was twenty five in one thousand nine hundred ninety nine"
        );
        assert_eq!(en("7 days"), normalize_text("seven days").join(" "));
        assert_eq!(normalize_text_lang("25", "fr"), ["25"]);
        assert_eq!(
            normalize_text_lang("1234567", "es"),
            ["1234567"],
            "beyond 999999 stays"
        );
        assert_eq!(
            normalize_text_lang("3er", "es"),
            ["3er"],
            "only whole digit tokens"
        );
    }
}
