use super::*;
use crate::passages::{PassageConfig, TextTurn, split, transcript_from_turns};
use crate::themes::{PassageEmbedder, ThemeConfig, run};

fn turn(speaker: &str, start_ms: u64, text: &str) -> TextTurn {
    TextTurn {
        speaker: speaker.into(),
        start_ms,
        end_ms: start_ms + 5000,
        text: text.into(),
    }
}

fn transcript() -> Transcript {
    transcript_from_turns(
        "grupo",
        "es",
        &[
            turn("MOD", 0, "¿Qué opinan del precio y de la aplicación?"),
            turn(
                "ANA",
                5000,
                "Los gastos de envío son carísimos, el precio sube cada mes.",
            ),
            turn(
                "LUIS",
                10000,
                "Los gastos de envío ya no compensan, todo tiene un precio excesivo.",
            ),
            turn(
                "EVA",
                15000,
                "Pagar tanto por los gastos de envío me parece un abuso del precio.",
            ),
            turn(
                "ANA",
                20000,
                "Los menús de la aplicación son confusos y la letra es pequeña.",
            ),
            turn(
                "LUIS",
                25000,
                "La letra de la aplicación es diminuta, los menús no se entienden.",
            ),
            turn(
                "EVA",
                30000,
                "Con los menús de la aplicación me pierdo, y la letra cansa la vista.",
            ),
            turn("LUIS", 35000, "Sí, claro."),
        ],
    )
}

/// Planted vectors: texts about prices point one way, texts about the app another.
struct ByTopic;

impl PassageEmbedder for ByTopic {
    type Error = std::io::Error;
    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Self::Error> {
        Ok(texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let topic = usize::from(t.contains("aplicación"));
                let mut v = vec![3.0, 0.0, 0.0, 0.01 * i as f32];
                v[1 + topic] = 1.0;
                v
            })
            .collect())
    }
    fn embed_queries(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Self::Error> {
        self.embed_passages(texts)
    }
}

fn codebook() -> (Vec<Transcript>, Codebook) {
    let ts = vec![transcript()];
    let passages = split(&ts, &PassageConfig::default()).unwrap();
    let themes = run(&passages, &ByTopic, &[], &ThemeConfig::default()).unwrap();
    let book = propose(&ts, &passages, &themes, &[], &CodesConfig::default()).unwrap();
    (ts, book)
}

#[test]
fn codes_have_labels_keywords_definitions_and_verbatim_quotes() {
    let (ts, book) = codebook();
    assert_eq!(book.codes.len(), 2);
    assert_eq!(book.language, "es");
    let labels: Vec<&str> = book.codes.iter().map(|c| c.label.as_str()).collect();
    assert!(
        labels
            .iter()
            .any(|l| l.contains("gastos de envío") || l.contains("precio")),
        "{labels:?}"
    );
    assert!(
        labels
            .iter()
            .any(|l| l.contains("menús") || l.contains("letra") || l.contains("aplicación")),
        "{labels:?}"
    );
    for c in &book.codes {
        let words = c.label.split([' ', ',']).filter(|w| !w.is_empty()).count();
        assert!((2..=5).contains(&words), "label {:?}", c.label);
        assert_eq!(c.quotes.len(), 3);
        let speakers: HashSet<_> = c.quotes.iter().map(|q| q.speaker.clone()).collect();
        assert_eq!(speakers.len(), 3, "one quote per speaker");
        assert!(
            c.definition
                .starts_with("Pasajes en que los participantes hablan de")
        );
        assert!(c.include.starts_with("Incluir:"));
        assert!(
            c.exclude.contains('«'),
            "points to the other code: {}",
            c.exclude
        );
        assert_eq!((c.passages, c.speakers, c.files), (3, 3, 1));
        for q in &c.quotes {
            verify_quote(&ts, q).unwrap();
            assert!(q.start_ms < q.end_ms);
        }
    }
    verify_codebook(&ts, &book).unwrap();
}

#[test]
fn short_passages_are_quoted_only_when_longer_ones_run_out() {
    // Planted vectors put the short passage at the price theme's centre: quoted first by
    // closeness alone.
    let ts = vec![transcript_from_turns(
        "grupo",
        "es",
        &[
            turn(
                "ANA",
                0,
                "Los gastos de envío son carísimos, el precio sube cada mes.",
            ),
            turn(
                "LUIS",
                5000,
                "Los gastos de envío ya no compensan, el precio es excesivo.",
            ),
            turn("MAR", 10000, "El precio, carísimo."),
            turn(
                "EVA",
                15000,
                "Pagar tanto por los gastos de envío me parece un abuso.",
            ),
            turn(
                "JOSE",
                20000,
                "El precio de cada pedido sube todos los meses sin aviso.",
            ),
            turn(
                "ANA",
                25000,
                "La letra de la aplicación es diminuta y no se lee.",
            ),
            turn(
                "LUIS",
                30000,
                "Los menús de la aplicación no se entienden nada bien.",
            ),
            turn(
                "EVA",
                35000,
                "Con los menús de la aplicación me pierdo siempre.",
            ),
        ],
    )];
    let passages = split(&ts, &PassageConfig::default()).unwrap();
    let themes = run(&passages, &ByTopic, &[], &ThemeConfig::default()).unwrap();
    let quoted = |max_quotes: usize| -> Vec<String> {
        let cfg = CodesConfig {
            max_quotes,
            ..CodesConfig::default()
        };
        let book = propose(&ts, &passages, &themes, &[], &cfg).unwrap();
        let price = book
            .codes
            .iter()
            .find(|c| c.quotes.iter().any(|q| q.text.contains("gastos")))
            .unwrap();
        price.quotes.iter().map(|q| q.text.clone()).collect()
    };
    let two = quoted(2);
    assert_eq!(two.len(), 2);
    assert!(
        !two.contains(&"El precio, carísimo.".to_string()),
        "{two:?}"
    );
    // With fewer long passages than quotes wanted, the short one is quoted too, last.
    let all = quoted(5);
    assert!(all.len() >= 3, "{all:?}");
    assert_eq!(all.last().unwrap(), "El precio, carísimo.");
}

#[test]
fn a_tampered_quote_fails_verification() {
    let (ts, book) = codebook();
    let mut q = book.codes[0].quotes[0].clone();
    q.text.push('!');
    assert!(matches!(
        verify_quote(&ts, &q),
        Err(CodesError::QuoteMismatch { .. })
    ));
    let mut q = book.codes[0].quotes[0].clone();
    q.span.char_start += 1;
    assert!(verify_quote(&ts, &q).is_err());
}

#[test]
fn long_passages_are_quoted_by_their_best_whole_sentences() {
    let filler = "Hablamos de muchas cosas distintas durante la tarde sin llegar a nada.";
    let key = "Los gastos de envío y el precio son el problema.";
    let text = format!("{filler} {filler} {filler} {key} {filler} {filler} {filler}");
    let t = transcript_from_turns("x", "es", &[turn("A", 0, &text)]);
    let ts = vec![t];
    let passages = split(&ts, &PassageConfig::default()).unwrap();
    let toks = tokens(&ts[0]);
    let terms = vec![Term {
        key: "precio".into(),
        surface: "precio".into(),
        score: 1.0,
    }];
    let q = shorten(&passages.passages[0], &toks, &ts[0], &terms, 30, 0.5);
    assert!(q.text.contains(key), "{}", q.text);
    assert!(q.text.split_whitespace().count() <= 30);
    assert!(q.text.ends_with('.'));
    verify_quote(&ts, &q).unwrap();
}

#[test]
fn identical_input_gives_identical_codebooks() {
    assert_eq!(codebook().1, codebook().1);
}

#[test]
fn seed_csv_with_header_quotes_and_blank_lines() {
    let csv = "name,description\r\nprecio,\"Costes, tarifas y \"\"gastos\"\" de envío\"\n\ndiseño de la app,Menús y letra\n";
    let codes = parse_seed_csv(csv, Path::new("s.csv")).unwrap();
    assert_eq!(
        codes,
        [
            SeedCode {
                name: "precio".into(),
                description: "Costes, tarifas y \"gastos\" de envío".into()
            },
            SeedCode {
                name: "diseño de la app".into(),
                description: "Menús y letra".into()
            },
        ]
    );
    assert!(matches!(
        parse_seed_csv("a,b\n,sin nombre\n", Path::new("s.csv")),
        Err(CodesError::Csv { line: 2, .. })
    ));
    assert!(matches!(
        parse_seed_csv("a,\"abierto\n", Path::new("s.csv")),
        Err(CodesError::Csv { line: 1, .. })
    ));
}

#[test]
fn seed_qdc_reads_names_descriptions_and_nested_codes() {
    let qdc = r#"<?xml version="1.0" encoding="utf-8"?>
<CodeBook xmlns="urn:QDA-XML:codebook:1.0" origin="test">
  <Codes>
    <Code guid="11111111-1111-1111-1111-111111111111" name="Precio &amp; envío" isCodable="true">
      <Description>Costes &lt;y&gt; tarifas&#46;</Description>
      <Code guid="22222222-2222-2222-2222-222222222222" name="Gastos" isCodable="true"/>
    </Code>
    <Code guid="33333333-3333-3333-3333-333333333333" name="Diseño" isCodable="true">
      <Description><![CDATA[Menús & letra]]></Description>
    </Code>
  </Codes>
</CodeBook>"#;
    let codes = parse_qdc(qdc, Path::new("c.qdc")).unwrap();
    assert_eq!(
        codes,
        [
            SeedCode {
                name: "Precio & envío".into(),
                description: "Costes <y> tarifas.".into()
            },
            SeedCode {
                name: "Gastos".into(),
                description: String::new()
            },
            SeedCode {
                name: "Diseño".into(),
                description: "Menús & letra".into()
            },
        ]
    );
    assert!(matches!(
        parse_qdc(
            "<CodeBook><Codes><Code name='a'></Codes>",
            Path::new("c.qdc")
        ),
        Err(CodesError::Qdc { .. })
    ));
}

#[test]
fn seed_files_are_read_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("seeds.csv");
    std::fs::write(&csv, "precio,Costes\n").unwrap();
    assert_eq!(read_seed_codes(&csv).unwrap().len(), 1);
    let txt = dir.path().join("seeds.txt");
    std::fs::write(&txt, "precio,Costes\n").unwrap();
    assert!(matches!(
        read_seed_codes(&txt),
        Err(CodesError::UnknownFormat { .. })
    ));
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "name,description\n").unwrap();
    assert!(matches!(
        read_seed_codes(&empty),
        Err(CodesError::NoCodes { .. })
    ));
    assert!(matches!(
        read_seed_codes(&dir.path().join("missing.csv")),
        Err(CodesError::Read { .. })
    ));
}

#[test]
fn phrases_skip_stop_words_at_their_ends() {
    let terms: Vec<String> = passage_terms("Los gastos de envío del pedido")
        .into_iter()
        .map(|t| t.0)
        .collect();
    assert!(terms.contains(&"gastos de envío".to_string()), "{terms:?}");
    assert!(terms.contains(&"envío del pedido".to_string()), "{terms:?}");
    assert!(
        !terms
            .iter()
            .any(|t| t.starts_with("los") || t.ends_with(" de")),
        "{terms:?}"
    );
}

/// A term written as its key.
fn term(key: &str, score: f64) -> Term {
    Term {
        key: key.into(),
        surface: key.into(),
        score,
    }
}

/// Terms written as their keys, best first.
fn terms(list: &[(&str, f64)]) -> Vec<Term> {
    list.iter().map(|&(key, score)| term(key, score)).collect()
}

#[test]
fn labels_skip_verbs_and_near_duplicates() {
    let terms = vec![
        term("quiero", 0.9),
        term("gastos de envío", 0.8),
        term("envíos", 0.7),
        term("pagar", 0.65),
        term("tarifas", 0.6),
    ];
    assert_eq!(
        label_from(&terms, "es", &WordUse::default()),
        "gastos de envío"
    );
    let terms = vec![
        term("quiero", 0.9),
        term("envío", 0.8),
        term("envíos", 0.7),
        term("tarifas caras", 0.6),
    ];
    assert_eq!(
        label_from(&terms, "es", &WordUse::default()),
        "envío, tarifas caras"
    );
    // Only Spanish verbs are recognised; other languages keep their terms.
    assert_eq!(
        label_from(&[term("quiero", 1.0)], "en", &WordUse::default()),
        "quiero"
    );
    assert_eq!(
        label_from(&[term("quiero", 1.0)], "es", &WordUse::default()),
        "(sin etiqueta)"
    );
}

#[test]
fn misheard_words_weigh_less() {
    let mut t = transcript();
    for seg in &mut t.segments {
        for w in &mut seg.words {
            if w.text.to_lowercase().starts_with("precio") {
                w.probability = 0.2;
            }
        }
    }
    let heard = word_confidence(&[t]);
    assert!((heard["precio"] - 0.2).abs() < 1e-6);
    assert_eq!(heard.get("aplicación").copied(), Some(1.0));
}

#[test]
fn a_word_repeated_in_its_segment_counts_as_first_heard() {
    let mut t = transcript_from_turns(
        "grupo",
        "es",
        &[
            turn("ANA", 0, "El cuimamo y el cuimamo de uno mismo."),
            turn("LUIS", 5000, "Hablo del cuimamo."),
        ],
    );
    // Whisper copies what it already wrote: the repeat comes back near-certain.
    let mut seen = 0;
    for seg in &mut t.segments {
        for w in &mut seg.words {
            if w.text.starts_with("cuimamo") {
                w.probability = [0.4, 0.99, 0.6][seen];
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 3);
    let heard = word_confidence(&[t]);
    assert!((heard["cuimamo"] - 0.5).abs() < 1e-6, "{heard:?}");
}

#[test]
fn labels_leave_out_terms_far_below_the_best_and_prefer_a_phrase_to_its_word() {
    let terms = terms(&[
        ("competencias", 0.95),
        ("emocional", 0.94),
        ("inteligencia", 0.88),
        ("inteligencia emocional", 0.84),
        ("cuimamo", 0.29),
    ]);
    let texts = [
        "Competencias como la inteligencia emocional y el cuimamo.",
        "Hablamos de competencias, de la inteligencia emocional.",
    ];
    let usage = WordUse::from_texts(texts, "es");
    assert!(usage.is_noun("cuimamo") && !usage.is_noun("competencias"));
    assert_eq!(label_from(&terms, "es", &usage), "inteligencia emocional");
    // A phrase used much less than its word does not replace it.
    let terms = vec![
        term("inteligencia", 0.9),
        term("inteligencia emocional", 0.6),
        term("competencia", 0.55),
    ];
    assert_eq!(
        label_from(&terms, "es", &WordUse::default()),
        "inteligencia, competencia"
    );
    // Below the floor, a term still labels when nothing else can.
    let terms = vec![term("quiero", 0.9), term("cuimamo", 0.2)];
    assert_eq!(label_from(&terms, "es", &WordUse::default()), "cuimamo");
}

#[test]
fn definitions_name_what_the_transcripts_use_as_nouns() {
    let terms = terms(&[
        ("noche", 0.24),
        ("distintas", 0.238),
        ("normalmente", 0.231),
        ("diseño", 0.229),
        ("diseños", 0.2),
        ("venir", 0.19),
        ("retraso", 0.05),
    ]);
    let texts = [
        "Por la noche las pantallas son distintas y normalmente confusas.",
        "El diseño es bonito, los diseños cambian; el retraso molesta.",
    ];
    let usage = WordUse::from_texts(texts, "es");
    assert_eq!(topic_terms(&terms, "es", &usage, 3), ["noche", "diseño"]);
    assert_eq!(
        definition("es", &topic_terms(&terms, "es", &usage, 3)),
        "Pasajes en que los participantes hablan de noche y diseño."
    );
    // Nothing learned about word use: noun phrases above the floor, no verb.
    assert_eq!(
        topic_terms(&terms, "es", &WordUse::default(), 3),
        ["noche", "distintas", "normalmente"]
    );
    // No term qualifies: the top terms themselves.
    assert_eq!(
        topic_terms(&[term("quiero", 1.0)], "es", &usage, 3),
        ["quiero"]
    );
}

#[test]
fn labels_are_noun_phrases() {
    let terms = vec![
        term("aparece", 0.9),
        term("sostenibilidad debería", 0.8),
        term("devolverme el dinero", 0.75),
        term("letra", 0.7),
        term("botones diminutos", 0.6),
    ];
    assert_eq!(
        label_from(&terms, "es", &WordUse::default()),
        "letra, botones diminutos"
    );
}

#[test]
fn labels_prefer_words_the_transcripts_use_as_nouns() {
    let terms = vec![
        term("imposible", 0.95),
        term("miembros es imposible", 0.9),
        term("confusos", 0.85),
        term("mensajes", 0.8),
        term("personas escriben", 0.78),
        term("siquiera", 0.75),
        term("pantallas", 0.7),
    ];
    let texts = [
        "Es imposible, los mensajes son confusos; los miembros es imposible que lo vean.",
        "Ni siquiera miro las pantallas; mis mensajes llegan tarde y no escriben.",
        "Las personas escriben poco.",
    ];
    let usage = WordUse::from_texts(texts, "es");
    assert!(usage.is_noun("mensajes") && usage.is_noun("pantallas"));
    assert!(!usage.is_noun("imposible") && !usage.is_noun("siquiera"));
    assert!(usage.is_verb("escriben") && !usage.is_verb("mensajes"));
    assert_eq!(label_from(&terms, "es", &usage), "mensajes, pantallas");
    // Without a noun among them, terms holding no verb and no clause still label.
    assert_eq!(label_from(&terms[..3], "es", &usage), "imposible, confusos");
    // English puts adjectives after articles: nothing is learned, labels as before.
    assert!(WordUse::from_texts(texts, "en").is_empty());
    assert_eq!(
        label_from(&terms[..3], "en", &WordUse::from_texts(texts, "en")),
        "imposible, confusos"
    );
}

#[test]
fn preterite_verbs_do_not_label() {
    assert!(is_verb_like("causó", "es") && is_verb_like("relató", "es"));
    assert!(!is_verb_like("causa", "es") && !is_verb_like("causó", "en"));
}
