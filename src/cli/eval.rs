//! `qualscribe eval themes|der`: score outputs against references.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum EvalMetric {
    /// Agreement of proposed themes with human theme labels: adjusted Rand index, NMI and
    /// human themes matched
    Themes {
        /// Human labels (`uri turn speaker start end theme`, tab-separated)
        #[arg(long = "ref", value_name = "TSV")]
        reference: PathBuf,
        /// qualscribe output: a folder holding passages.tsv, or the file itself
        #[arg(long = "hyp", value_name = "OUTPUT")]
        hypothesis: Option<PathBuf>,
        /// Saved transcripts: also score coding by example (k = 1, 2, 3 examples per human
        /// theme, 20 draws each) and inductive themes on 40 random subsets of 80 %
        #[arg(long, value_name = "TRANSCRIPT", num_args = 1..)]
        transcripts: Vec<PathBuf>,
        /// Text model the transcripts' passages are embedded with: e5, use, minilm or a folder;
        /// two joined by `+` (e.g. `e5+use`) are fused at the score level for coding by example
        /// (each model's vectors alone, without TF-IDF; inductive themes use the first)
        #[arg(long, default_value = "e5", value_name = "MODEL")]
        text_model: String,
        /// How examples become codes: centroid, nearest, propagation or balanced (default: the
        /// product's)
        #[arg(long, value_name = "METHOD")]
        example_method: Option<String>,
        /// Codebook (as `themes --codebook`): a human theme with an entry of the same name is
        /// defined by its name and definition (otherwise by its name alone)
        #[arg(long, value_name = "FILE")]
        codebook: Option<PathBuf>,
        #[command(flatten)]
        dir: super::args::ModelsDirArg,
    },
    /// Diarization error rate (pyannote.metrics definitions: optimal speaker mapping, overlap scored)
    Der {
        /// Reference RTTM
        #[arg(long = "ref", value_name = "RTTM")]
        reference: PathBuf,
        /// Hypothesis RTTM
        #[arg(long = "hyp", value_name = "RTTM")]
        hypothesis: PathBuf,
        /// Scored regions (UEM); default: the extent of reference and hypothesis
        #[arg(long, value_name = "UEM")]
        uem: Option<PathBuf>,
        /// Total width of the no-score zone around each reference boundary, in seconds
        /// (pyannote convention: 0.25 = ±0.125 s)
        #[arg(long, default_value_t = 0.0)]
        collar: f64,
        /// Do not score regions where the reference has overlapping speakers
        #[arg(long)]
        skip_overlap: bool,
    },
}

pub fn run(metric: &EvalMetric) -> Result<ExitCode> {
    match metric {
        EvalMetric::Themes {
            reference,
            hypothesis,
            transcripts,
            text_model,
            example_method,
            codebook,
            dir,
        } => {
            if hypothesis.is_none() && transcripts.is_empty() {
                bail!("give --hyp (a qualscribe output) and/or --transcripts to score");
            }
            if let Some(h) = hypothesis {
                themes(reference, h)?;
            }
            if !transcripts.is_empty() {
                let method = match example_method {
                    None => qualscribe::themes::ThemeConfig::default().example_method,
                    Some(name) => example_method_named(name)?,
                };
                let book = match codebook {
                    Some(path) => qualscribe::codes::read_seed_codes(path)?,
                    None => Vec::new(),
                };
                themes_by_example(
                    reference,
                    transcripts,
                    text_model,
                    method,
                    &book,
                    &dir.resolve(),
                )?;
            }
        }
        EvalMetric::Der {
            reference,
            hypothesis,
            uem,
            collar,
            skip_overlap,
        } => der(
            reference,
            hypothesis,
            uem.as_deref(),
            *collar,
            *skip_overlap,
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

fn themes(reference: &Path, hypothesis: &Path) -> Result<()> {
    use qualscribe::eval::themes;
    let tsv = if hypothesis.is_dir() {
        hypothesis.join("passages.tsv")
    } else {
        hypothesis.to_path_buf()
    };
    let labels = themes::read_theme_labels(reference)?;
    let (passages, assignment) = themes::read_passages_tsv(&tsv)?;
    let a = themes::evaluate(&passages, &assignment, &labels);
    if a.labelled_passages == 0 {
        bail!(
            "{}: no passage of {} overlaps a labelled turn: {LABELS_MATCH_HINT}",
            reference.display(),
            tsv.display()
        );
    }
    println!("labelled passages   {}", a.labelled_passages);
    println!("human themes        {}", a.human_themes);
    println!("proposed themes     {}", a.proposed_themes);
    println!("unassigned          {}", a.unassigned);
    println!("adjusted Rand index {:.3}", a.ari);
    println!("NMI                 {:.3}", a.nmi);
    println!(
        "human themes matched {} of {} ({:.0} %)",
        a.matched,
        a.human_themes,
        100.0 * a.matched_share
    );
    Ok(())
}

fn example_method_named(name: &str) -> Result<qualscribe::themes::by_example::ExampleMethod> {
    use qualscribe::themes::by_example::ExampleMethod;
    match ExampleMethod::ALL.iter().find(|m| m.name() == name) {
        Some(&m) => Ok(m),
        None => bail!(
            "--example-method {name:?}: use one of {}",
            ExampleMethod::ALL.map(|m| m.name()).join(", ")
        ),
    }
}

/// What to check when human labels match no passage (both `eval themes` forms say it).
const LABELS_MATCH_HINT: &str = "check that the `uri` column names the transcripts (their file \
     stem) and the times are the recording's";

/// Coding by example and inductive themes on bootstrap subsets, from saved transcripts.
fn themes_by_example(
    reference: &Path,
    transcripts: &[PathBuf],
    text_model: &str,
    method: qualscribe::themes::by_example::ExampleMethod,
    codebook: &[qualscribe::codes::SeedCode],
    models_dir: &Path,
) -> Result<()> {
    use qualscribe::eval::themes::{
        by_example_draws, content_truth, example_classifier, fused_by_example_draws,
        fused_example_classifier, inductive_subsets, leave_one_out, read_theme_labels,
        summarise_draws,
    };
    use qualscribe::themes::{self, ThemeConfig};
    let labels = read_theme_labels(reference)?;
    let ts = transcripts
        .iter()
        .map(|p| qualscribe::export::read_transcript(p))
        .collect::<Result<Vec<_>, _>>()?;
    let passages =
        qualscribe::passages::split(&ts, &qualscribe::passages::PassageConfig::default())?;
    let specs: Vec<&str> = text_model.split('+').collect();
    let embedders = specs
        .iter()
        .map(|spec| Ok(qualscribe::pipeline::load_text_embedder(models_dir, spec)?))
        .collect::<Result<Vec<_>>>()?;
    let contents = embedders
        .iter()
        .map(|e| themes::embed_content(&passages, e))
        .collect::<Result<Vec<_>, _>>()?;
    let (truth, categories) = content_truth(&passages, &contents[0], &labels);
    let labelled = truth.iter().flatten().count();
    let mut labelled_themes: Vec<usize> = truth.iter().flatten().copied().collect();
    labelled_themes.sort_unstable();
    labelled_themes.dedup();
    if labelled_themes.len() < 2 {
        bail!(
            "{}: {labelled} of the transcripts' {} content passages overlap a labelled turn, with \
             {} human theme(s); scoring needs labelled passages of at least two themes: \
             {LABELS_MATCH_HINT}, and make the transcripts with `run`, whose speaker turns cut the \
             passages the labels mark",
            reference.display(),
            truth.len(),
            labelled_themes.len()
        );
    }
    let cfg = ThemeConfig::default();
    // Several models: each alone (weight 1), fused at the score level.
    let weight = if embedders.len() > 1 {
        1.0
    } else {
        cfg.e5_weight
    };
    // Each human theme's name is its code's name, and defines it as `--examples` does (with
    // its codebook entry's definition, when there is one).
    let entry = |c: &str| codebook.iter().find(|s| s.name == c);
    let names: Vec<String> = categories
        .iter()
        .map(|c| themes::seed_text(c, entry(c).map_or("", |s| s.description.as_str())))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut views = Vec::new();
    for (embedder, content) in embedders.iter().zip(&contents) {
        let space = themes::fused_space(&passages, content, weight);
        let queries = embedder.embed_queries(&refs)?;
        let definitions: Vec<_> = categories
            .iter()
            .zip(queries.iter().zip(&names))
            .map(|(c, (q, n))| {
                (entry(c).is_some() || themes::has_meaningful_name(c))
                    .then(|| space.definition(q, n))
            })
            .collect();
        views.push((space.fused, definitions));
    }
    let model_names: Vec<&str> = embedders.iter().map(|e| e.name()).collect();
    let threshold = if embedders.len() > 1 {
        cfg.fused_confidence_threshold
    } else {
        cfg.confidence_threshold
    };
    println!("text model {}", model_names.join(" + "));
    println!(
        "code by example ({}, {} labelled of {} content passages, {} human themes; threshold {:.2})",
        method.name(),
        labelled,
        truth.len(),
        categories.len(),
        threshold
    );
    println!("  k  accuracy      ARI    assigned  precision");
    if !codebook.is_empty() {
        // k = 0: the definitions alone (zero-shot), every labelled passage held out.
        use qualscribe::themes::by_example::{best_code, definition_probabilities};
        let held_out: Vec<qualscribe::eval::themes::HeldOut> =
            definition_probabilities(&views, method)
                .iter()
                .zip(&truth)
                .filter_map(|(p, t)| {
                    let (predicted, confidence) = best_code(p).unwrap_or((0, 0.0));
                    t.map(|truth| qualscribe::eval::themes::HeldOut {
                        truth,
                        predicted,
                        confidence,
                    })
                })
                .collect();
        let s = summarise_draws(&[held_out], threshold);
        println!(
            "  0  {:.3}         {:.3}  {:.2}      {:.3}   (codebook alone)",
            s.accuracy, s.ari, s.assigned, s.precision
        );
    }
    for k in 1..=3 {
        let draws = if views.len() == 1 {
            by_example_draws(&views[0].0, &truth, k, 20, 7, method, &views[0].1, None)
        } else {
            let refs: Vec<_> = views.iter().map(|(f, d)| (f, d.as_slice())).collect();
            fused_by_example_draws(&refs, &truth, k, 20, 7, method)
        };
        let s = summarise_draws(&draws, threshold);
        println!(
            "  {k}  {:.3}±{:.3}  {:.3}  {:.2}      {:.3}",
            s.accuracy, s.accuracy_sd, s.ari, s.assigned, s.precision
        );
    }
    // Every other labelled passage as an example: what more examples could reach at best.
    let held_out = if views.len() == 1 {
        leave_one_out(
            &truth,
            example_classifier(&views[0].0, method, &views[0].1, None),
        )
    } else {
        let refs: Vec<_> = views.iter().map(|(f, d)| (f, d.as_slice())).collect();
        leave_one_out(&truth, fused_example_classifier(&refs, method))
    };
    let s = summarise_draws(&[held_out], threshold);
    println!(
        "  all  {:.3}         {:.3}  {:.2}      {:.3}   (leave one out: every other labelled passage an example)",
        s.accuracy, s.ari, s.assigned, s.precision
    );
    let s = inductive_subsets(&passages, &contents[0], &truth, &cfg, 40, 11)?;
    println!(
        "inductive themes on {} subsets of 80 %: ARI {:.3} ± {:.3}, NMI {:.3}",
        s.subsets, s.ari, s.ari_sd, s.nmi
    );
    Ok(())
}

fn der(
    reference: &Path,
    hypothesis: &Path,
    uem: Option<&Path>,
    collar_s: f64,
    skip_overlap: bool,
) -> Result<()> {
    use qualscribe::eval::{der, rttm};
    if !(collar_s >= 0.0 && collar_s.is_finite()) {
        bail!("--collar must be a number of seconds ≥ 0, got {collar_s}");
    }
    let reference = rttm::read_rttm(reference)?;
    let hypothesis = rttm::read_rttm(hypothesis)?;
    let uem = uem.map(rttm::read_uem).transpose()?;
    let opts = der::DerOptions {
        collar_s,
        skip_overlap,
    };
    let reports = der::diarization_error(&reference, &hypothesis, uem.as_deref(), &opts);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<24} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "uri", "total s", "missed s", "false s", "confus s", "DER %"
    );
    let mut row = |uri: &str, r: &der::DerReport| {
        let _ = writeln!(
            out,
            "{uri:<24} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>8.2}",
            r.total_s,
            r.missed_s,
            r.false_alarm_s,
            r.confusion_s,
            100.0 * r.der()
        );
    };
    for (uri, r) in &reports {
        row(uri, r);
    }
    row("TOTAL", &der::total(&reports));
    Ok(())
}
