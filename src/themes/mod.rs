//! Themes: clusters of content passages by meaning, inductive or seeded by codes.
//!
//! Input: the [`Passages`] of one or many transcripts (an interview archive is clustered as one
//! set) and one embedding per content passage from a [`PassageEmbedder`] (multilingual e5 in
//! the product). Only [`Role::Content`] passages are clustered; moderator and back-channel
//! passages are never in a theme.
//!
//! How ([`discover`]):
//! 1. Embeddings are centred on their mean and re-normalised: e5 cosines all sit in 0.75–0.97,
//!    and centring spreads them so every threshold below is relative to the data.
//! 2. Deductive mode: each seed code's embedding (its name and description, embedded as a
//!    query) is compared with every passage by plain cosine (e5 is trained for exactly this
//!    query–passage comparison, so no centring here). The similarities are turned into z-scores
//!    over all passage–code pairs, and a passage goes to its most similar code when that z-score
//!    is at least [`ThemeConfig::seed_min_z`] (default 0: above the average pair).
//! 3. The rest are clustered with spherical k-means (k-means++ seeding, [`ThemeConfig::restarts`]
//!    restarts, fixed seed). The number of themes is [`ThemeConfig::themes`] when given, else the
//!    k in `2..=max_themes` with the best mean silhouette, computed on a sample of at most
//!    1500 passages; k is also at most a third of the passages, because a code needs three
//!    quotes, so a theme should hold three passages on average; for larger sets the chosen centroids are then refined on all passages. Time
//!    is O(n·k·d) and memory O(n·d + 1500²): 100 000 passages fit in well under 2 GB.
//! 4. Themes smaller than [`ThemeConfig::min_theme_size`] are dissolved; their passages, and any
//!    passage whose similarity to its theme is an outlier (more than
//!    [`ThemeConfig::outlier_z`] robust standard deviations below the median similarity), go to
//!    the nearest theme when close enough, else they are *unassigned*.
//!
//! Deterministic: the same passages, embeddings and config give the same themes in the same
//! order (seeded themes first in seed order, then by size, largest first, ties by first
//! passage). Theme ids are positions in [`Themes::themes`]; the review operations
//! ([`Themes::merge`], [`Themes::split`], [`Themes::move_passage`]) say how they shift ids.

pub mod by_example;
pub mod features;
mod kmeans;
mod vectors;
pub mod ward;

pub use features::{Fused, FusedCentroid, FusedSpace};
pub use kmeans::SplitMix64;
pub use vectors::Matrix;

use std::collections::HashMap;

use crate::passages::{Passages, Role};
use kmeans::{Clustering, gram, kmeans, lloyd, nearest, sample_indices, silhouette};
use vectors::{dot, normalise};

/// The seam to the text embedding model: load once, embed many texts.
///
/// Vectors must all have the same length. e5 wants "passage: " and "query: " prefixes; the
/// implementation adds them, callers pass the bare text.
pub trait PassageEmbedder {
    /// The embedder's own error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Embeds passages of talk.
    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Self::Error>;

    /// Embeds short descriptions that passages are compared with (seed codes).
    fn embed_queries(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Self::Error>;
}

/// The product's embedder: multilingual e5 (or MiniLM) adds its own prefixes.
impl PassageEmbedder for crate::embed::TextEmbedder {
    type Error = crate::embed::EmbedError;

    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Self::Error> {
        crate::embed::TextEmbedder::embed_passages(self, texts)
    }

    fn embed_queries(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Self::Error> {
        crate::embed::TextEmbedder::embed_queries(self, texts)
    }
}

/// Settings of [`discover`].
#[derive(Debug, Clone, PartialEq)]
pub struct ThemeConfig {
    /// Number of inductive themes; `None` chooses it by silhouette (default).
    pub themes: Option<usize>,
    /// Most inductive themes the automatic choice considers (default 20).
    pub max_themes: usize,
    /// Smallest theme kept; smaller ones are dissolved (default 2).
    pub min_theme_size: usize,
    /// A passage this many robust standard deviations below the median similarity to its
    /// theme is an outlier (default 2.5).
    pub outlier_z: f32,
    /// A passage joins its most similar seed code when the similarity's z-score over all
    /// passage–code pairs is at least this (default 0.0).
    pub seed_min_z: f32,
    /// k-means++ restarts per k (default 8).
    pub restarts: usize,
    /// Seed of every random choice (default 42).
    pub seed: u64,
    /// How code examples become per-code probabilities (coding by example).
    pub example_method: by_example::ExampleMethod,
    /// Share of the fused similarity that comes from e5 (the rest from TF-IDF).
    pub e5_weight: f32,
    /// Below this best-code probability a passage stays unassigned (coding by example).
    pub confidence_threshold: f32,
    /// [`Self::confidence_threshold`] when several text models are fused at the score level
    /// ([`assign_codes_fused`]).
    pub fused_confidence_threshold: f32,
    /// How inductive themes are clustered.
    pub clustering: ClusterMethod,
}

/// How inductive themes are clustered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClusterMethod {
    /// Spherical k-means on centred e5 vectors.
    #[default]
    KMeans,
    /// Ward agglomerative clustering in the fused e5 + TF-IDF space (k-means above
    /// [`ward::WARD_MAX_PASSAGES`] passages).
    Ward,
}

impl Default for ThemeConfig {
    fn default() -> Self {
        ThemeConfig {
            themes: None,
            max_themes: 20,
            min_theme_size: 2,
            outlier_z: 2.5,
            seed_min_z: 0.0,
            restarts: 8,
            seed: 42,
            example_method: by_example::ExampleMethod::default(),
            e5_weight: features::E5_WEIGHT,
            confidence_threshold: by_example::CONFIDENCE_THRESHOLD,
            fused_confidence_threshold: by_example::FUSED_CONFIDENCE_THRESHOLD,
            clustering: ClusterMethod::default(),
        }
    }
}

/// Embeddings of the content passages: row `i` belongs to passage `passage_ids[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentEmbeddings {
    /// Passage ids, increasing.
    pub passage_ids: Vec<usize>,
    /// One row per id.
    pub vectors: Matrix,
}

/// One theme.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    /// Passage ids of its members, increasing.
    pub members: Vec<usize>,
    /// The seed code it comes from (index into the seed codes given), if deductive.
    pub seed: Option<usize>,
    /// Passage ids the researcher gave as examples of this code, increasing (coding by
    /// example; they are members too).
    pub examples: Vec<usize>,
    /// Unit centroid in the centred embedding space.
    pub centroid: Vec<f32>,
}

/// How the number of inductive themes was chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct KChoice {
    /// The number used.
    pub k: usize,
    /// False when [`ThemeConfig::themes`] fixed it.
    pub automatic: bool,
    /// Mean silhouette of each k tried, in order of k.
    pub silhouettes: Vec<(usize, f64)>,
}

/// The themes of a set of passages, with what is needed to revise them.
#[derive(Debug, Clone, PartialEq)]
pub struct Themes {
    /// The themes; ids are positions.
    pub themes: Vec<Theme>,
    /// Content passages in no theme, increasing.
    pub unassigned: Vec<usize>,
    /// How the inductive count was chosen.
    pub k_choice: KChoice,
    /// Coding by example or codebook: the probability of each passage's best code, indexed by
    /// passage id (None: not a content passage, or inductive themes, where there is none).
    /// A passage below the threshold is unassigned but keeps its probability here.
    pub confidence: Vec<Option<f32>>,
    /// Centred unit vectors of the content passages.
    vectors: Matrix,
    /// Row of each passage id in `vectors` (None: not a content passage).
    row_of: Vec<Option<usize>>,
    /// Centred unit vector of each seed code.
    seed_vectors: Matrix,
    seed: u64,
    /// Mean of the raw passage vectors `vectors` were centred on (to place other texts).
    mean: Vec<f32>,
}

/// Failure to build or revise themes.
#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    /// The embedding model failed.
    #[error("cannot embed {what}: {source}")]
    Embed {
        /// "passages" or "seed codes".
        what: &'static str,
        /// The model's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The embedder returned a different number of vectors than texts.
    #[error("embedder returned {got} vectors for {expected} {what}")]
    EmbeddingCount {
        /// "passages" or "seed codes".
        what: &'static str,
        /// Texts given.
        expected: usize,
        /// Vectors returned.
        got: usize,
    },
    /// Vectors of different lengths, or with NaN/infinite values.
    #[error("{what} embeddings are ragged or not finite")]
    BadEmbeddings {
        /// "passages" or "seed codes".
        what: &'static str,
    },
    /// Embeddings do not belong to the content passages given.
    #[error("embedding row {row} is for passage {passage}, which is not a content passage")]
    NotContent {
        /// The row.
        row: usize,
        /// The passage id it claims.
        passage: usize,
    },
    /// A theme id out of range.
    #[error("no theme {theme} (there are {themes})")]
    UnknownTheme {
        /// The id asked for.
        theme: usize,
        /// How many themes there are.
        themes: usize,
    },
    /// A passage that is not clustered (unknown, moderator or back-channel).
    #[error("passage {passage} is not a content passage")]
    NotClustered {
        /// The passage id.
        passage: usize,
    },
    /// A split into fewer than two parts or more parts than members.
    #[error("cannot split theme {theme} of {members} passages into {k}")]
    BadSplit {
        /// The theme.
        theme: usize,
        /// Parts asked for.
        k: usize,
        /// Its size.
        members: usize,
    },
    /// `merge(a, a)`.
    #[error("cannot merge theme {theme} with itself")]
    SelfMerge {
        /// The theme.
        theme: usize,
    },
}

/// Embeds every content passage (in id order), in one call, so the embedder sorts the whole set
/// by length into batches and spreads them over the cores (1 h of Spanish, 359 passages, 2
/// cores: 9.1 s in calls of 64 passages, one batch at a time; 4.5–5.6 s now).
pub fn embed_content<E: PassageEmbedder>(
    passages: &Passages,
    embedder: &E,
) -> Result<ContentEmbeddings, ThemeError> {
    let content: Vec<_> = passages.content().collect();
    let texts: Vec<&str> = content.iter().map(|p| p.text.as_str()).collect();
    let rows = embed_all(&texts, "passages", |b| embedder.embed_passages(b))?;
    Ok(ContentEmbeddings {
        passage_ids: content.iter().map(|p| p.id).collect(),
        vectors: rows,
    })
}

/// The language most content passages are in (their file's language; "es" when there are
/// none), which picks the TF-IDF stemmer.
pub fn majority_language(passages: &Passages) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for p in passages.content() {
        if let Some(f) = passages.files.get(p.file) {
            *counts.entry(f.language.as_str()).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|&(lang, n)| (n, std::cmp::Reverse(lang)))
        .map_or_else(|| "es".to_string(), |(lang, _)| lang.to_string())
}

/// The fused space (e5 + TF-IDF, see [`features`]) of the content passages, rows in the order
/// of `content.passage_ids`.
pub fn fused_space(passages: &Passages, content: &ContentEmbeddings, e5_weight: f32) -> FusedSpace {
    let texts: Vec<&str> = content
        .passage_ids
        .iter()
        .map(|&id| passages.passages[id].text.as_str())
        .collect();
    FusedSpace::build(
        &texts,
        &content.vectors,
        &majority_language(passages),
        e5_weight,
    )
}

/// Embeds seed codes as queries: `"{name}: {description}"` each.
pub fn embed_seeds<E: PassageEmbedder>(
    seeds: &[(String, String)],
    embedder: &E,
) -> Result<Matrix, ThemeError> {
    let texts: Vec<String> = seeds.iter().map(|(n, d)| seed_text(n, d)).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    embed_all(&refs, "seed codes", |b| embedder.embed_queries(b))
}

/// The text a seed code is embedded as.
pub fn seed_text(name: &str, description: &str) -> String {
    let name = name.replace('_', " ");
    if description.trim().is_empty() {
        name
    } else {
        format!("{name}: {}", description.trim())
    }
}

/// `texts` embedded by `embed`, one row each (a count mismatch is an error); no call for none.
fn embed_all<F, Er>(texts: &[&str], what: &'static str, embed: F) -> Result<Matrix, ThemeError>
where
    F: Fn(&[&str]) -> Result<Vec<Vec<f32>>, Er>,
    Er: std::error::Error + Send + Sync + 'static,
{
    if texts.is_empty() {
        return Ok(Matrix::with_dim(0));
    }
    let rows = embed(texts).map_err(|e| ThemeError::Embed {
        what,
        source: Box::new(e),
    })?;
    if rows.len() != texts.len() {
        return Err(ThemeError::EmbeddingCount {
            what,
            expected: texts.len(),
            got: rows.len(),
        });
    }
    Matrix::from_rows(&rows).ok_or(ThemeError::BadEmbeddings { what })
}

/// Embeds the content passages and seed codes, then [`discover`]s themes.
pub fn run<E: PassageEmbedder>(
    passages: &Passages,
    embedder: &E,
    seeds: &[(String, String)],
    cfg: &ThemeConfig,
) -> Result<Themes, ThemeError> {
    let content = embed_content(passages, embedder)?;
    let seed_vectors = embed_seeds(seeds, embedder)?;
    discover(passages, &content, &seed_vectors, cfg)
}

/// Finds themes among the content passages (see the module docs). `seed_vectors` holds one
/// raw embedding per seed code (empty for purely inductive themes).
pub fn discover(
    passages: &Passages,
    content: &ContentEmbeddings,
    seed_vectors: &Matrix,
    cfg: &ThemeConfig,
) -> Result<Themes, ThemeError> {
    check_content(passages, content)?;
    let dim = content.vectors.dim();
    if seed_vectors.rows() > 0 && content.vectors.rows() > 0 && seed_vectors.dim() != dim {
        return Err(ThemeError::BadEmbeddings { what: "seed codes" });
    }
    let mean = content.vectors.mean();
    let x = content.vectors.centred_unit(&mean);
    let seeds = if seed_vectors.rows() > 0 {
        seed_vectors.centred_unit(&mean)
    } else {
        Matrix::with_dim(dim)
    };
    let mut row_of = vec![None; passages.passages.len()];
    for (row, &id) in content.passage_ids.iter().enumerate() {
        row_of[id] = Some(row);
    }

    // Rows per group: seed groups first, then inductive clusters.
    let seeded = seed_assignment(&content.vectors, seed_vectors, cfg.seed_min_z);
    let rest: Vec<usize> = (0..x.rows()).filter(|&r| seeded[r].is_none()).collect();
    let use_ward = cfg.clustering == ClusterMethod::Ward && rest.len() <= ward::WARD_MAX_PASSAGES;
    let (inductive, k_choice) = if use_ward {
        let space = fused_space(passages, content, cfg.e5_weight);
        cluster_rows_ward(&space.fused, &rest, cfg)
    } else {
        cluster_rows(&x, &rest, cfg)
    };
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); seeds.rows()];
    for (r, s) in seeded.iter().enumerate() {
        if let Some(s) = s {
            groups[*s].push(r);
        }
    }
    groups.extend(inductive);

    let mut themes = Themes {
        themes: Vec::new(),
        unassigned: Vec::new(),
        k_choice,
        confidence: vec![None; passages.passages.len()],
        vectors: x,
        row_of,
        seed_vectors: seeds,
        seed: cfg.seed,
        mean,
    };
    themes.settle(groups, cfg, &content.passage_ids);
    Ok(themes)
}

/// A code to sort passages into: from a codebook (name and description) and/or from the
/// researcher's examples.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CodeSpec {
    /// The code's name.
    pub name: String,
    /// What it means (from a codebook; may be empty).
    pub description: String,
    /// Passage ids given as examples of it (content passages).
    pub examples: Vec<usize>,
    /// True when the code comes from a codebook (its description, even empty, is its
    /// definition). Any code whose name is made of words ([`has_meaningful_name`]) is defined
    /// by its name and description, embedded as a query; the definition has a fixed share
    /// ([`by_example::DEFINITION_SHARE`]) of the code's centroid next to its examples.
    pub from_codebook: bool,
}

impl CodeSpec {
    /// Whether the code has a definition to embed: from a codebook, or a name of words.
    pub fn is_defined(&self) -> bool {
        self.from_codebook || has_meaningful_name(&self.name)
    }
}

/// The text that defines a code, as coding by example builds it: `name: definition`, the name
/// left out when it is not made of words (`C1`), None when nothing is left.
pub fn code_text(label: &str, definition: &str) -> Option<String> {
    match (has_meaningful_name(label), definition.trim().is_empty()) {
        (true, _) => Some(seed_text(label, definition)),
        (false, false) => Some(definition.trim().to_string()),
        (false, true) => None,
    }
}

/// A code name that says something: at least one word of three or more letters ("precio",
/// "atención_cliente"; not "C1" or "T2"). Measured on the focus group, a code's name used as
/// its definition next to one example raised held-out accuracy from 0.48 to 0.86.
pub fn has_meaningful_name(name: &str) -> bool {
    name.split(|c: char| !c.is_alphanumeric())
        .any(|w| w.chars().count() >= 3 && w.chars().all(char::is_alphabetic))
}

/// Embeds the content passages and the codebook codes' definitions, then
/// [`assign_codes`].
pub fn code_passages<E: PassageEmbedder>(
    passages: &Passages,
    embedder: &E,
    codes: &[CodeSpec],
    cfg: &ThemeConfig,
) -> Result<Themes, ThemeError> {
    code_passages_fused(passages, &[embedder], codes, cfg)
}

/// [`code_passages`] with several text models fused at the score level (see
/// [`assign_codes_fused`]); one model is [`code_passages`].
pub fn code_passages_fused<E: PassageEmbedder>(
    passages: &Passages,
    embedders: &[&E],
    codes: &[CodeSpec],
    cfg: &ThemeConfig,
) -> Result<Themes, ThemeError> {
    let defined: Vec<(String, String)> = codes
        .iter()
        .filter(|c| c.is_defined())
        .map(|c| (c.name.clone(), c.description.clone()))
        .collect();
    let mut models = Vec::with_capacity(embedders.len());
    for embedder in embedders {
        let content = embed_content(passages, *embedder)?;
        let vectors = embed_seeds(&defined, *embedder)?;
        let mut rows = 0..vectors.rows();
        let definitions: Vec<Option<Vec<f32>>> = codes
            .iter()
            .map(|c| {
                c.is_defined()
                    .then(|| rows.next().map(|r| vectors.row(r).to_vec()))
                    .flatten()
            })
            .collect();
        models.push((content, definitions));
    }
    let views: Vec<ModelEmbeddings> = models
        .iter()
        .map(|(content, definitions)| ModelEmbeddings {
            content,
            definitions,
        })
        .collect();
    assign_codes_fused(passages, &views, codes, cfg)
}

/// One text model's embeddings for [`assign_codes_fused`]: the content passages, and each
/// code's raw query vector (`None`: the code has no definition).
#[derive(Debug, Clone, Copy)]
pub struct ModelEmbeddings<'a> {
    /// The content passages' embeddings (the same passages in every model).
    pub content: &'a ContentEmbeddings,
    /// Each code's definition as a query vector, in the codes' order.
    pub definitions: &'a [Option<Vec<f32>>],
}

/// Coding by example and by codebook: every content passage goes to its most probable code
/// ([`by_example::code_probabilities`] with [`ThemeConfig::example_method`]) when that
/// probability is at least [`ThemeConfig::confidence_threshold`], else it is unassigned.
/// Examples always belong to their code. One theme per code, in `codes` order, each with
/// `seed` = its position. `definitions` holds each code's raw e5 query vector, if any.
pub fn assign_codes(
    passages: &Passages,
    content: &ContentEmbeddings,
    codes: &[CodeSpec],
    definitions: &[Option<Vec<f32>>],
    cfg: &ThemeConfig,
) -> Result<Themes, ThemeError> {
    let model = ModelEmbeddings {
        content,
        definitions,
    };
    assign_codes_fused(passages, &[model], codes, cfg)
}

/// [`assign_codes`] over several text models fused at the score level
/// ([`by_example::fused_code_probabilities`]): each model's space is dense only (no TF-IDF),
/// its per-code cosines averaged with the others', and a passage is assigned at
/// [`ThemeConfig::fused_confidence_threshold`] (the scores spread differently). The first
/// model's vectors are the themes' vectors (what the review page and analysis.json keep). One
/// model is [`assign_codes`] (e5 + TF-IDF at [`ThemeConfig::e5_weight`]).
pub fn assign_codes_fused(
    passages: &Passages,
    models: &[ModelEmbeddings],
    codes: &[CodeSpec],
    cfg: &ThemeConfig,
) -> Result<Themes, ThemeError> {
    let Some(first) = models.first() else {
        return Err(ThemeError::EmbeddingCount {
            what: "text models",
            expected: 1,
            got: 0,
        });
    };
    for m in models {
        check_content(passages, m.content)?;
        if m.content.passage_ids != first.content.passage_ids {
            return Err(ThemeError::EmbeddingCount {
                what: "passages",
                expected: first.content.passage_ids.len(),
                got: m.content.passage_ids.len(),
            });
        }
    }
    let mut row_of = vec![None; passages.passages.len()];
    for (row, &id) in first.content.passage_ids.iter().enumerate() {
        row_of[id] = Some(row);
    }
    let (weight, threshold) = if models.len() > 1 {
        (1.0, cfg.fused_confidence_threshold)
    } else {
        (cfg.e5_weight, cfg.confidence_threshold)
    };
    let spaces: Vec<FusedSpace> = models
        .iter()
        .map(|m| fused_space(passages, m.content, weight))
        .collect();
    let evidences = spaces
        .iter()
        .zip(models)
        .map(|(space, m)| code_evidence(space, codes, m.definitions, &row_of))
        .collect::<Result<Vec<_>, ThemeError>>()?;
    let views: Vec<by_example::ModelView> = spaces
        .iter()
        .zip(&evidences)
        .map(|(space, codes)| by_example::ModelView {
            fused: &space.fused,
            codes,
        })
        .collect();
    let probabilities = by_example::fused_code_probabilities(&views, cfg.example_method);
    let (space, evidence) = (&spaces[0], &evidences[0]);
    let content = first.content;
    let mut themes: Vec<Theme> = codes
        .iter()
        .enumerate()
        .map(|(c, code)| {
            let mut examples = code.examples.clone();
            examples.sort_unstable();
            examples.dedup();
            Theme {
                members: Vec::new(),
                seed: Some(c),
                examples,
                centroid: Vec::new(),
            }
        })
        .collect();
    let mut confidence = vec![None; passages.passages.len()];
    let mut unassigned = Vec::new();
    for (row, &id) in content.passage_ids.iter().enumerate() {
        let given = themes
            .iter()
            .position(|t| t.examples.binary_search(&id).is_ok());
        let best = by_example::best_code(&probabilities[row]);
        match (given, best) {
            (Some(t), _) => {
                themes[t].members.push(id);
                confidence[id] = Some(1.0);
            }
            (None, Some((t, p))) => {
                confidence[id] = Some(p);
                if p >= threshold {
                    themes[t].members.push(id);
                } else {
                    unassigned.push(id);
                }
            }
            (None, None) => unassigned.push(id),
        }
    }
    let x = space.fused.dense.clone();
    let mut seed_vectors = Matrix::with_dim(x.dim());
    for e in evidence {
        // Stands for a code left without members (see `centroid_of_rows`).
        let mut v = match (&e.definition, e.examples.is_empty()) {
            (_, false) => space.fused.centroid(&e.examples).dense,
            (Some(d), true) => d.dense.clone(),
            (None, true) => vec![0.0; x.dim()],
        };
        normalise(&mut v);
        seed_vectors.push(&v);
    }
    let mut out = Themes {
        themes,
        unassigned,
        k_choice: KChoice {
            k: codes.len(),
            automatic: false,
            silhouettes: Vec::new(),
        },
        confidence,
        vectors: x,
        row_of,
        seed_vectors,
        seed: cfg.seed,
        mean: space.mean.clone(),
    };
    for t in 0..out.themes.len() {
        out.refresh_centroid(t);
    }
    Ok(out)
}

/// Each code's examples (as rows of `space`) and definition (in `space`).
fn code_evidence(
    space: &FusedSpace,
    codes: &[CodeSpec],
    definitions: &[Option<Vec<f32>>],
    row_of: &[Option<usize>],
) -> Result<Vec<by_example::CodeEvidence>, ThemeError> {
    codes
        .iter()
        .enumerate()
        .map(|(c, code)| {
            let examples = code
                .examples
                .iter()
                .map(|&p| {
                    row_of
                        .get(p)
                        .copied()
                        .flatten()
                        .ok_or(ThemeError::NotClustered { passage: p })
                })
                .collect::<Result<Vec<usize>, ThemeError>>()?;
            let definition = definitions
                .get(c)
                .cloned()
                .flatten()
                .map(|q| space.definition(&q, &seed_text(&code.name, &code.description)));
            Ok(by_example::CodeEvidence {
                examples,
                definition,
                definition_share: None,
            })
        })
        .collect()
}

impl Themes {
    /// A raw query vector of the same text model (a code's text) centred like the passages'
    /// vectors and scaled to unit length; None when its length is not theirs.
    pub fn place_query(&self, raw: &[f32]) -> Option<Vec<f32>> {
        (!self.mean.is_empty() && raw.len() == self.mean.len())
            .then(|| vectors::centre_unit(raw, &self.mean))
    }

    /// The members of theme `t` that are not its examples, most confident first.
    pub fn suggestions(&self, t: usize) -> Vec<(usize, f32)> {
        let Some(theme) = self.themes.get(t) else {
            return Vec::new();
        };
        let mut out: Vec<(usize, f32)> = theme
            .members
            .iter()
            .filter(|p| theme.examples.binary_search(p).is_err())
            .map(|&p| (p, self.confidence.get(p).copied().flatten().unwrap_or(0.0)))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }
}

fn check_content(passages: &Passages, content: &ContentEmbeddings) -> Result<(), ThemeError> {
    if content.passage_ids.len() != content.vectors.rows() {
        return Err(ThemeError::EmbeddingCount {
            what: "passages",
            expected: content.passage_ids.len(),
            got: content.vectors.rows(),
        });
    }
    for (row, &id) in content.passage_ids.iter().enumerate() {
        let is_content = passages
            .passages
            .get(id)
            .is_some_and(|p| p.role == Role::Content);
        let increasing = row == 0 || content.passage_ids[row - 1] < id;
        if !is_content || !increasing {
            return Err(ThemeError::NotContent { row, passage: id });
        }
    }
    Ok(())
}

/// For each row of the raw passage embeddings `x`, the seed code it joins (rule of the module
/// docs).
fn seed_assignment(x: &Matrix, seeds: &Matrix, min_z: f32) -> Vec<Option<usize>> {
    let n = x.rows();
    let m = seeds.rows();
    if m == 0 || n == 0 {
        return vec![None; n];
    }
    let cos = |a: &[f32], b: &[f32]| dot(a, b) / (dot(a, a) * dot(b, b)).sqrt().max(1e-12);
    let sims: Vec<f64> = (0..n)
        .flat_map(|i| (0..m).map(move |j| (i, j)))
        .map(|(i, j)| f64::from(cos(x.row(i), seeds.row(j))))
        .collect();
    let mean = sims.iter().sum::<f64>() / sims.len() as f64;
    let sd = (sims.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / sims.len() as f64)
        .sqrt()
        .max(1e-9);
    (0..n)
        .map(|i| {
            let row = &sims[i * m..(i + 1) * m];
            let (best, sim) = row
                .iter()
                .enumerate()
                .fold(
                    (0, f64::NEG_INFINITY),
                    |a, (j, &v)| if v > a.1 { (j, v) } else { a },
                );
            ((sim - mean) / sd >= f64::from(min_z)).then_some(best)
        })
        .collect()
}

/// One group of all of `rest` when there are too few rows to compare partitions (or no themes
/// were asked for); `settle` dissolves it into the seeded themes when it is below the minimum
/// size. `None` when the rows should be clustered.
fn single_group(rest: &[usize], cfg: &ThemeConfig) -> Option<(Vec<Vec<usize>>, KChoice)> {
    let n = rest.len();
    let too_few = n < 2 * cfg.min_theme_size.max(1) || n < 4;
    (too_few || cfg.themes == Some(0)).then(|| {
        (
            vec![rest.to_vec()],
            KChoice {
                k: usize::from(n > 0),
                automatic: cfg.themes.is_none(),
                silhouettes: Vec::new(),
            },
        )
    })
}

/// Ward clustering of the rows `rest` of the fused space; k fixed or the best mean silhouette
/// (fused cosine distance) in `2..=max_themes`, at most a third of the rows.
fn cluster_rows_ward(
    fused: &Fused,
    rest: &[usize],
    cfg: &ThemeConfig,
) -> (Vec<Vec<usize>>, KChoice) {
    if let Some(one) = single_group(rest, cfg) {
        return one;
    }
    let n = rest.len();
    let mut sim = vec![0f32; n * n];
    for i in 0..n {
        for j in i..n {
            let v = fused.sim(rest[i], rest[j]);
            sim[i * n + j] = v;
            sim[j * n + i] = v;
        }
    }
    let merges = ward::ward(&sim, n);
    let (k, silhouettes) = match cfg.themes {
        Some(k) => (k.min(n), Vec::new()),
        None => {
            let k_max = cfg.max_themes.min(n / 3).max(2);
            let scores: Vec<(usize, f64)> = (2..=k_max)
                .map(|k| (k, silhouette(&sim, &ward::cut(&merges, n, k), k)))
                .collect();
            let best = scores
                .iter()
                .fold(None, |b: Option<(usize, f64)>, &(k, s)| match b {
                    Some((_, bs)) if bs + 1e-12 >= s => b,
                    _ => Some((k, s)),
                })
                .map_or(2, |b| b.0);
            (best, scores)
        }
    };
    let labels = ward::cut(&merges, n, k);
    let mut groups = vec![Vec::new(); k];
    for (i, &l) in labels.iter().enumerate() {
        groups[l].push(rest[i]);
    }
    (
        groups,
        KChoice {
            k,
            automatic: cfg.themes.is_none(),
            silhouettes,
        },
    )
}

/// Clusters the rows `rest` of `x`; returns groups of rows and how k was chosen.
fn cluster_rows(x: &Matrix, rest: &[usize], cfg: &ThemeConfig) -> (Vec<Vec<usize>>, KChoice) {
    if let Some(one) = single_group(rest, cfg) {
        return one;
    }
    let n = rest.len();
    let sub = x.select(rest);
    let mut rng = SplitMix64::new(cfg.seed);
    let sample_rows = sample_indices(n, kmeans::SILHOUETTE_SAMPLE, &mut rng);
    let sample = sub.select(&sample_rows);
    let max_iter = 100;
    let (k, silhouettes, sample_fit) = match cfg.themes {
        Some(k) => {
            let k = k.min(n);
            (
                k,
                Vec::new(),
                kmeans(&sample, k, cfg.restarts, max_iter, cfg.seed),
            )
        }
        None => choose_k(&sample, cfg, max_iter),
    };
    let fit: Clustering = if sample_rows.len() == n {
        sample_fit
    } else {
        lloyd(&sub, sample_fit.centroids, max_iter)
    };
    let mut groups = vec![Vec::new(); k];
    for (i, &l) in fit.labels.iter().enumerate() {
        groups[l].push(rest[i]);
    }
    (
        groups,
        KChoice {
            k,
            automatic: cfg.themes.is_none(),
            silhouettes,
        },
    )
}

/// The k in `2..=max_themes` (and at most a third of the sample) with the best mean
/// silhouette; ties go to the smaller k.
fn choose_k(
    sample: &Matrix,
    cfg: &ThemeConfig,
    max_iter: usize,
) -> (usize, Vec<(usize, f64)>, Clustering) {
    let g = gram(sample);
    let k_max = cfg.max_themes.min(sample.rows() / 3).max(2);
    let mut scores = Vec::new();
    let mut best: Option<(usize, f64, Clustering)> = None;
    for k in 2..=k_max {
        let fit = kmeans(
            sample,
            k,
            cfg.restarts,
            max_iter,
            cfg.seed.wrapping_add(k as u64),
        );
        let s = silhouette(&g, &fit.labels, k);
        scores.push((k, s));
        if best.as_ref().is_none_or(|b| s > b.1 + 1e-12) {
            best = Some((k, s, fit));
        }
    }
    match best {
        Some((k, _, fit)) => (k, scores, fit),
        None => (1, scores, kmeans(sample, 1, 1, max_iter, cfg.seed)),
    }
}

/// The robust lower bound of "close enough": median − z · 1.4826 · MAD of `sims`.
fn outlier_threshold(sims: &[f32], z: f32) -> f32 {
    if sims.is_empty() {
        return f32::NEG_INFINITY;
    }
    let median = median_of(sims.to_vec());
    let mad = median_of(sims.iter().map(|s| (s - median).abs()).collect());
    median - z * 1.4826 * mad
}

fn median_of(mut v: Vec<f32>) -> f32 {
    v.sort_by(f32::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl Themes {
    /// Turns groups of rows into themes: dissolves small inductive groups, reassigns or
    /// unassigns outliers, orders and numbers the themes.
    fn settle(&mut self, mut groups: Vec<Vec<usize>>, cfg: &ThemeConfig, ids: &[usize]) {
        let seeded = self.seed_vectors.rows();
        // Dissolve inductive groups below the minimum size, smallest first, one at a time, so
        // their members can join a group that survives.
        let mut homeless: Vec<usize> = Vec::new();
        loop {
            let small = (seeded..groups.len())
                .filter(|&g| !groups[g].is_empty() && groups[g].len() < cfg.min_theme_size)
                .min_by_key(|&g| (groups[g].len(), g));
            match small {
                Some(g) => homeless.append(&mut groups[g]),
                None => break,
            }
        }
        groups.retain_with_index(seeded);
        let centroids = self.centroids_of(&groups);
        // Outlier bound from the members' own similarities.
        let mut own: Vec<f32> = Vec::new();
        for (g, rows) in groups.iter().enumerate() {
            own.extend(
                rows.iter()
                    .map(|&r| dot(self.vectors.row(r), centroids.row(g))),
            );
        }
        let bound = outlier_threshold(&own, cfg.outlier_z);
        let mut unassigned = Vec::new();
        let mut kept: Vec<Vec<usize>> = vec![Vec::new(); groups.len()];
        for (g, rows) in groups.iter().enumerate() {
            for &r in rows {
                if dot(self.vectors.row(r), centroids.row(g)) >= bound {
                    kept[g].push(r);
                } else {
                    unassigned.push(r);
                }
            }
        }
        for r in homeless {
            let (g, s) = nearest(self.vectors.row(r), &centroids);
            if centroids.rows() > 0 && s >= bound && s.is_finite() {
                kept[g].push(r);
            } else {
                unassigned.push(r);
            }
        }
        // Order: seeded in seed order, then inductive by size (desc), then first member.
        let mut order: Vec<usize> = (0..kept.len()).collect();
        order[seeded..].sort_by_key(|&g| {
            (
                std::cmp::Reverse(kept[g].len()),
                kept[g].iter().min().copied().unwrap_or(usize::MAX),
            )
        });
        self.themes = order
            .into_iter()
            .filter(|&g| g < seeded || !kept[g].is_empty())
            .map(|g| {
                let mut members: Vec<usize> = kept[g].iter().map(|&r| ids[r]).collect();
                members.sort_unstable();
                Theme {
                    members,
                    seed: (g < seeded).then_some(g),
                    examples: Vec::new(),
                    centroid: Vec::new(),
                }
            })
            .collect();
        let mut un: Vec<usize> = unassigned.into_iter().map(|r| ids[r]).collect();
        un.sort_unstable();
        self.unassigned = un;
        for t in 0..self.themes.len() {
            self.refresh_centroid(t);
        }
    }

    /// Unit centroid of each group of rows (a seeded group without members: its seed vector).
    fn centroids_of(&self, groups: &[Vec<usize>]) -> Matrix {
        let mut m = Matrix::with_dim(self.vectors.dim());
        for (g, rows) in groups.iter().enumerate() {
            m.push(&self.centroid_of_rows(rows, (g < self.seed_vectors.rows()).then_some(g)));
        }
        m
    }

    fn centroid_of_rows(&self, rows: &[usize], seed: Option<usize>) -> Vec<f32> {
        let dim = self.vectors.dim();
        if rows.is_empty() {
            return match seed {
                Some(s) => self.seed_vectors.row(s).to_vec(),
                None => vec![0.0; dim],
            };
        }
        let mut sum = vec![0f64; dim];
        for &r in rows {
            for (s, v) in sum.iter_mut().zip(self.vectors.row(r)) {
                *s += f64::from(*v);
            }
        }
        let mut c: Vec<f32> = sum.into_iter().map(|s| s as f32).collect();
        normalise(&mut c);
        c
    }

    fn refresh_centroid(&mut self, t: usize) {
        let rows: Vec<usize> = self.themes[t]
            .members
            .iter()
            .filter_map(|&p| self.row_of[p])
            .collect();
        self.themes[t].centroid = self.centroid_of_rows(&rows, self.themes[t].seed);
    }

    /// The centred unit text vector of passage `p` that the themes were computed from (None:
    /// not a content passage). The review page scores passages against codes with these.
    pub fn passage_vector(&self, p: usize) -> Option<&[f32]> {
        let row = (*self.row_of.get(p)?)?;
        Some(self.vectors.row(row))
    }

    /// The theme of passage `p`, if it has one.
    pub fn theme_of(&self, p: usize) -> Option<usize> {
        self.themes
            .iter()
            .position(|t| t.members.binary_search(&p).is_ok())
    }

    /// Theme id of every passage (None: unassigned or not clustered), indexed by passage id.
    pub fn assignment(&self) -> Vec<Option<usize>> {
        let mut a = vec![None; self.row_of.len()];
        for (t, theme) in self.themes.iter().enumerate() {
            for &p in &theme.members {
                a[p] = Some(t);
            }
        }
        a
    }

    /// Cosine (in the centred space) between passage `p` and theme `t`'s centroid.
    pub fn similarity(&self, p: usize, t: usize) -> Option<f32> {
        let row = (*self.row_of.get(p)?)?;
        let theme = self.themes.get(t)?;
        Some(dot(self.vectors.row(row), &theme.centroid))
    }

    /// Cosine (in the centred space) between two content passages.
    pub fn passage_similarity(&self, a: usize, b: usize) -> Option<f32> {
        let ra = (*self.row_of.get(a)?)?;
        let rb = (*self.row_of.get(b)?)?;
        Some(dot(self.vectors.row(ra), self.vectors.row(rb)))
    }

    /// Cosine between the centroids of two themes.
    pub fn theme_similarity(&self, a: usize, b: usize) -> Option<f32> {
        Some(dot(
            &self.themes.get(a)?.centroid,
            &self.themes.get(b)?.centroid,
        ))
    }

    /// Number of clustered (content) passages.
    pub fn content_count(&self) -> usize {
        self.vectors.rows()
    }

    /// Share of content passages that are unassigned (0 when there are none).
    pub fn unassigned_share(&self) -> f64 {
        if self.content_count() == 0 {
            0.0
        } else {
            self.unassigned.len() as f64 / self.content_count() as f64
        }
    }

    fn check_theme(&self, t: usize) -> Result<(), ThemeError> {
        if t < self.themes.len() {
            Ok(())
        } else {
            Err(ThemeError::UnknownTheme {
                theme: t,
                themes: self.themes.len(),
            })
        }
    }

    /// Merges theme `b` into theme `a`. Theme `b` is removed: ids above `b` shift down by one.
    /// The merged theme keeps `a`'s seed code, or `b`'s when `a` has none.
    pub fn merge(&mut self, a: usize, b: usize) -> Result<(), ThemeError> {
        self.check_theme(a)?;
        self.check_theme(b)?;
        if a == b {
            return Err(ThemeError::SelfMerge { theme: a });
        }
        let removed = self.themes.remove(b);
        let a = if b < a { a - 1 } else { a };
        let theme = &mut self.themes[a];
        theme.members.extend(removed.members);
        theme.members.sort_unstable();
        theme.seed = theme.seed.or(removed.seed);
        self.refresh_centroid(a);
        Ok(())
    }

    /// Splits theme `t` into `k` themes with k-means (fixed seed): the largest part stays `t`,
    /// the others are appended at the end, largest first. Other ids do not change.
    pub fn split(&mut self, t: usize, k: usize) -> Result<(), ThemeError> {
        self.check_theme(t)?;
        let members = self.themes[t].members.clone();
        if k < 2 || k > members.len() {
            return Err(ThemeError::BadSplit {
                theme: t,
                k,
                members: members.len(),
            });
        }
        let rows: Vec<usize> = members.iter().filter_map(|&p| self.row_of[p]).collect();
        let fit = kmeans(&self.vectors.select(&rows), k, 8, 100, self.seed);
        let mut parts: Vec<Vec<usize>> = vec![Vec::new(); k];
        for (i, &l) in fit.labels.iter().enumerate() {
            parts[l].push(members[i]);
        }
        parts.retain(|p| !p.is_empty());
        parts.sort_by_key(|p| (std::cmp::Reverse(p.len()), p[0]));
        let mut parts = parts.into_iter();
        if let Some(first) = parts.next() {
            self.themes[t].members = first;
        }
        self.refresh_centroid(t);
        for members in parts {
            self.themes.push(Theme {
                members,
                seed: None,
                examples: Vec::new(),
                centroid: Vec::new(),
            });
            let last = self.themes.len() - 1;
            self.refresh_centroid(last);
        }
        Ok(())
    }

    /// Moves content passage `p` into theme `to`, or to the unassigned passages with `None`.
    /// A theme left empty stays (with no members) so ids do not change.
    pub fn move_passage(&mut self, p: usize, to: Option<usize>) -> Result<(), ThemeError> {
        if self.row_of.get(p).copied().flatten().is_none() {
            return Err(ThemeError::NotClustered { passage: p });
        }
        if let Some(t) = to {
            self.check_theme(t)?;
        }
        let from = self.theme_of(p);
        if let Some(f) = from {
            self.themes[f].members.retain(|&m| m != p);
            self.refresh_centroid(f);
        }
        self.unassigned.retain(|&m| m != p);
        match to {
            Some(t) => {
                let members = &mut self.themes[t].members;
                if let Err(pos) = members.binary_search(&p) {
                    members.insert(pos, p);
                }
                self.refresh_centroid(t);
            }
            None => {
                if let Err(pos) = self.unassigned.binary_search(&p) {
                    self.unassigned.insert(pos, p);
                }
            }
        }
        Ok(())
    }

    /// Theme counts per file, files in input order.
    pub fn by_file(&self, passages: &Passages) -> Vec<GroupSummary> {
        self.summarise(passages, |p| (p.uri.clone(), None))
    }

    /// Theme counts per speaker of each file (speaker labels are per file), in order of first
    /// appearance.
    pub fn by_speaker(&self, passages: &Passages) -> Vec<GroupSummary> {
        self.summarise(passages, |p| (p.uri.clone(), p.speaker.clone()))
    }

    fn summarise(
        &self,
        passages: &Passages,
        key: impl Fn(&crate::passages::Passage) -> (String, Option<String>),
    ) -> Vec<GroupSummary> {
        let assignment = self.assignment();
        let mut index: HashMap<(String, Option<String>), usize> = HashMap::new();
        let mut out: Vec<GroupSummary> = Vec::new();
        for p in &passages.passages {
            let k = key(p);
            let i = *index.entry(k.clone()).or_insert_with(|| {
                out.push(GroupSummary {
                    uri: k.0.clone(),
                    speaker: k.1.clone(),
                    passages: 0,
                    content: 0,
                    per_theme: vec![0; self.themes.len()],
                    unassigned: 0,
                });
                out.len() - 1
            });
            let g = &mut out[i];
            g.passages += 1;
            if p.role != Role::Content {
                continue;
            }
            g.content += 1;
            match assignment.get(p.id).copied().flatten() {
                Some(t) => g.per_theme[t] += 1,
                None => g.unassigned += 1,
            }
        }
        out
    }
}

/// How many passages of one file (or one speaker in one file) fall in each theme.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupSummary {
    /// The file.
    pub uri: String,
    /// The speaker (per-speaker summaries only).
    pub speaker: Option<String>,
    /// All passages, whatever their role.
    pub passages: usize,
    /// Content passages.
    pub content: usize,
    /// Content passages per theme id.
    pub per_theme: Vec<usize>,
    /// Content passages in no theme.
    pub unassigned: usize,
}

trait RetainWithIndex {
    /// Drops empty groups at or after `from` (earlier groups are seeded and always kept).
    fn retain_with_index(&mut self, from: usize);
}

impl RetainWithIndex for Vec<Vec<usize>> {
    fn retain_with_index(&mut self, from: usize) {
        let mut i = 0;
        self.retain(|g| {
            let keep = i < from || !g.is_empty();
            i += 1;
            keep
        });
    }
}

#[cfg(test)]
mod tests;
