//! Spelling out whole numbers 0–999 999 in Spanish and English, as speech transcripts write them.
//!
//! Spanish follows RAE spelling without accents (they are stripped before comparison anyway):
//! `veintitres`, `treinta y dos`, `cien`, `ciento uno`, `quinientos`, `mil`, `dos mil veinte`,
//! `veintiun mil`. A final 1 is `uno` (the number's name), never `un`/`una`.
//! English uses the form without "and": `one hundred five`, `twenty five` (the hyphen is a word
//! break after normalisation), `two thousand twenty`. Years read as pairs ("twenty twenty") are
//! not attempted.

/// Largest number spelled out; longer digit runs are phone numbers or ids, left as digits.
const MAX_SPELLED: u32 = 999_999;

/// The words for `token` in `lang` when it is a whole number in range, else `None`.
pub(super) fn spell(token: &str, lang: &str) -> Option<Vec<String>> {
    if token.is_empty() || token.len() > 6 || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = token.parse().ok()?;
    if n > MAX_SPELLED {
        return None;
    }
    let primary = lang
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let text = match primary.as_str() {
        "es" => spanish(n),
        "en" => english(n),
        _ => return None,
    };
    Some(text.split(' ').map(str::to_string).collect())
}

const ES_UNITS: [&str; 30] = [
    "cero",
    "uno",
    "dos",
    "tres",
    "cuatro",
    "cinco",
    "seis",
    "siete",
    "ocho",
    "nueve",
    "diez",
    "once",
    "doce",
    "trece",
    "catorce",
    "quince",
    "dieciseis",
    "diecisiete",
    "dieciocho",
    "diecinueve",
    "veinte",
    "veintiuno",
    "veintidos",
    "veintitres",
    "veinticuatro",
    "veinticinco",
    "veintiseis",
    "veintisiete",
    "veintiocho",
    "veintinueve",
];
const ES_TENS: [&str; 10] = [
    "",
    "",
    "",
    "treinta",
    "cuarenta",
    "cincuenta",
    "sesenta",
    "setenta",
    "ochenta",
    "noventa",
];
const ES_HUNDREDS: [&str; 10] = [
    "",
    "ciento",
    "doscientos",
    "trescientos",
    "cuatrocientos",
    "quinientos",
    "seiscientos",
    "setecientos",
    "ochocientos",
    "novecientos",
];

fn spanish(n: u32) -> String {
    let (thousands, rest) = (n / 1000, n % 1000);
    let head = match thousands {
        0 => return spanish_below_1000(rest),
        1 => "mil".to_string(),
        // "veintiún mil", "ciento un mil": a 1 before "mil" loses its final -o.
        t => format!("{} mil", apocope(&spanish_below_1000(t))),
    };
    if rest == 0 {
        head
    } else {
        format!("{head} {}", spanish_below_1000(rest))
    }
}

fn apocope(words: &str) -> String {
    match words.strip_suffix("uno") {
        Some(stem) => format!("{stem}un"),
        None => words.to_string(),
    }
}

fn spanish_below_1000(n: u32) -> String {
    let (hundreds, rest) = (n / 100, n % 100);
    match (hundreds, rest) {
        (0, r) => spanish_below_100(r),
        (1, 0) => "cien".to_string(),
        (h, 0) => ES_HUNDREDS[h as usize].to_string(),
        (h, r) => format!("{} {}", ES_HUNDREDS[h as usize], spanish_below_100(r)),
    }
}

fn spanish_below_100(n: u32) -> String {
    match n {
        0..30 => ES_UNITS[n as usize].to_string(),
        _ if n.is_multiple_of(10) => ES_TENS[(n / 10) as usize].to_string(),
        _ => format!(
            "{} y {}",
            ES_TENS[(n / 10) as usize],
            ES_UNITS[(n % 10) as usize]
        ),
    }
}

const EN_UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const EN_TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

fn english(n: u32) -> String {
    let (thousands, rest) = (n / 1000, n % 1000);
    match (thousands, rest) {
        (0, r) => english_below_1000(r),
        (t, 0) => format!("{} thousand", english_below_1000(t)),
        (t, r) => format!(
            "{} thousand {}",
            english_below_1000(t),
            english_below_1000(r)
        ),
    }
}

fn english_below_1000(n: u32) -> String {
    let (hundreds, rest) = (n / 100, n % 100);
    match (hundreds, rest) {
        (0, r) => english_below_100(r),
        (h, 0) => format!("{} hundred", EN_UNITS[h as usize]),
        (h, r) => format!("{} hundred {}", EN_UNITS[h as usize], english_below_100(r)),
    }
}

fn english_below_100(n: u32) -> String {
    match n {
        0..20 => EN_UNITS[n as usize].to_string(),
        _ if n.is_multiple_of(10) => EN_TENS[(n / 10) as usize].to_string(),
        _ => format!(
            "{} {}",
            EN_TENS[(n / 10) as usize],
            EN_UNITS[(n % 10) as usize]
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spanish_numbers() {
        let cases = [
            (0, "cero"),
            (1, "uno"),
            (16, "dieciseis"),
            (21, "veintiuno"),
            (25, "veinticinco"),
            (30, "treinta"),
            (32, "treinta y dos"),
            (100, "cien"),
            (101, "ciento uno"),
            (115, "ciento quince"),
            (500, "quinientos"),
            (999, "novecientos noventa y nueve"),
            (1000, "mil"),
            (1001, "mil uno"),
            (2020, "dos mil veinte"),
            (21_000, "veintiun mil"),
            (31_000, "treinta y un mil"),
            (100_000, "cien mil"),
            (101_000, "ciento un mil"),
            (
                999_999,
                "novecientos noventa y nueve mil novecientos noventa y nueve",
            ),
        ];
        for (n, words) in cases {
            assert_eq!(spanish(n), words, "{n}");
        }
    }

    #[test]
    fn english_numbers() {
        let cases = [
            (0, "zero"),
            (13, "thirteen"),
            (25, "twenty five"),
            (40, "forty"),
            (105, "one hundred five"),
            (1000, "one thousand"),
            (2020, "two thousand twenty"),
            (
                999_999,
                "nine hundred ninety nine thousand nine hundred ninety nine",
            ),
        ];
        for (n, words) in cases {
            assert_eq!(english(n), words, "{n}");
        }
    }

    #[test]
    fn only_whole_digit_tokens_in_range_and_known_languages() {
        assert_eq!(spell("007", "es"), Some(vec!["siete".to_string()]));
        assert_eq!(spell("1000000", "es"), None);
        assert_eq!(spell("12a", "en"), None);
        assert_eq!(spell("12", "de"), None);
        assert_eq!(spell("12", "ES"), Some(vec!["doce".to_string()]));
    }
}
