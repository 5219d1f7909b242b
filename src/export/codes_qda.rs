//! Turns an analysis (transcripts, passages, themes, proposed codes) into REFI-QDA files:
//! `codebook.qdc` (the proposed codes) and `project.qdpx` (transcripts as text sources linked to
//! their audio with one sync point per segment, speakers as cases, every passage of a theme
//! coded with that theme's code).
//!
//! Promises: offsets index [`Transcript::text`] in characters, as the passages' spans do; every
//! code carries its definition, inclusion/exclusion hints and keywords in its description and
//! the status "proposed" in its note; GUIDs are derived from content, so identical input gives
//! byte-identical files.

use std::collections::BTreeMap;
use std::path::Path;

use crate::codes::{CodeProposal, Codebook};
use crate::export::qda::{
    self, QdaCase, QdaCode, QdaCoding, QdaDates, QdaError, QdaProject, QdaSource, QdaSyncPoint,
    QdaUser, QdpxOptions, guid_for,
};
use crate::passages::Passages;
use crate::themes::Themes;
use crate::transcript::Transcript;

/// File name of the codebook written by [`write_qda`].
pub const CODEBOOK_FILE: &str = "codebook.qdc";
/// File name of the project written by [`write_qda`].
pub const PROJECT_FILE: &str = "project.qdpx";

/// A palette readable on white, so codes are told apart in the QDA tools.
const COLORS: [&str; 10] = [
    "#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#E377C2", "#7F7F7F",
    "#BCBD22", "#17BECF",
];

/// The proposed codes as REFI-QDA codes, in codebook order.
pub fn qda_codes(codebook: &Codebook) -> Vec<QdaCode> {
    codebook
        .codes
        .iter()
        .enumerate()
        .map(|(i, c)| QdaCode {
            guid: code_guid(c),
            name: c.label.clone(),
            description: code_description(c),
            color: Some(COLORS[i % COLORS.len()].to_string()),
            is_codable: true,
            children: Vec::new(),
            note: Some("status: proposed (qualscribe; not yet reviewed)".to_string()),
        })
        .collect()
}

fn code_guid(c: &CodeProposal) -> String {
    guid_for("code", &format!("{}:{}", c.theme, c.label))
}

fn code_description(c: &CodeProposal) -> String {
    let mut d = c.definition.clone();
    for (what, text) in [("Include", &c.include), ("Exclude", &c.exclude)] {
        if !text.is_empty() {
            d.push_str(&format!("\n{what}: {text}"));
        }
    }
    if !c.keywords.is_empty() {
        d.push_str(&format!("\nKeywords: {}", c.keywords.join(", ")));
    }
    d
}

/// The whole analysis as a REFI-QDA project.
pub fn qda_project(
    transcripts: &[Transcript],
    passages: &Passages,
    themes: &Themes,
    codebook: &Codebook,
) -> QdaProject {
    let codes = qda_codes(codebook);
    let sources: Vec<QdaSource> = transcripts.iter().map(qda_source).collect();
    let code_of_theme: BTreeMap<usize, &QdaCode> = codebook
        .codes
        .iter()
        .zip(&codes)
        .map(|(c, q)| (c.theme, q))
        .collect();
    let mut codings = Vec::new();
    for (t, theme) in themes.themes.iter().enumerate() {
        let Some(code) = code_of_theme.get(&t) else {
            continue;
        };
        for &p in &theme.members {
            let Some(passage) = passages.passages.get(p) else {
                continue;
            };
            codings.push(QdaCoding {
                guid: guid_for(
                    "coding",
                    &format!("{}:{}:{}", passage.uri, passage.id, code.guid),
                ),
                source_guid: sources[passage.file].guid.clone(),
                start: passage.span.char_start,
                end: passage.span.char_end,
                code_guid: code.guid.clone(),
                name: None,
            });
        }
    }
    QdaProject {
        name: "qualscribe analysis".to_string(),
        origin: format!("qualscribe {}", env!("CARGO_PKG_VERSION")),
        created_by: QdaUser {
            guid: guid_for("user", "qualscribe"),
            name: "qualscribe".to_string(),
        },
        codes,
        cases: speaker_cases(transcripts, &sources),
        sources,
        codings,
        notes: Vec::new(),
        dates: recordings_dates(transcripts),
    }
}

/// The dates of an analysis: the newest modification time of its recordings, so that the same
/// recordings give the same files (`SOURCE_DATE_EPOCH`, seconds since 1970, overrides it, as
/// for reproducible builds). Without any recording on disk: 1970-01-01.
pub(crate) fn recordings_dates(transcripts: &[Transcript]) -> QdaDates {
    let from_env = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
    let newest = || {
        transcripts
            .iter()
            .filter_map(|t| std::fs::metadata(&t.source.path).ok()?.modified().ok())
            .max()
    };
    QdaDates::at(from_env.or_else(newest).unwrap_or(std::time::UNIX_EPOCH))
}

/// One text source per transcript; the audio is linked only when the recording is still where
/// the transcript says (a project must not point at a file that is gone).
pub(crate) fn qda_source(t: &Transcript) -> QdaSource {
    let audio = Path::new(&t.source.path);
    let audio_path = audio.is_file().then(|| audio.to_path_buf());
    let mut sync_points = Vec::new();
    if audio_path.is_some() {
        let mut position = 0usize;
        for s in &t.segments {
            sync_points.push(QdaSyncPoint {
                guid: guid_for("sync", &format!("{}:{}", t.uri, s.id)),
                position,
                time_ms: s.start_ms,
            });
            position += s.text.chars().count() + 1; // Transcript::text joins with one space
        }
    }
    QdaSource {
        guid: guid_for("source", &t.uri),
        name: t.uri.clone(),
        text: t.text(),
        audio_path,
        sync_points,
    }
}

pub(crate) fn speaker_cases(transcripts: &[Transcript], sources: &[QdaSource]) -> Vec<QdaCase> {
    let mut by_speaker: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (t, source) in transcripts.iter().zip(sources) {
        for s in &t.segments {
            if let Some(speaker) = s.speaker.as_deref() {
                let refs = by_speaker.entry(speaker).or_default();
                if !refs.contains(&source.guid) {
                    refs.push(source.guid.clone());
                }
            }
        }
    }
    by_speaker
        .into_iter()
        .map(|(name, source_refs)| QdaCase {
            guid: guid_for("case", name),
            name: name.to_string(),
            source_refs,
        })
        .collect()
}

/// Writes `codebook.qdc` and `project.qdpx` into `out_dir`, atomically.
pub fn write_qda(
    out_dir: &Path,
    transcripts: &[Transcript],
    passages: &Passages,
    themes: &Themes,
    codebook: &Codebook,
    qdpx: &QdpxOptions,
) -> Result<Vec<std::path::PathBuf>, QdaError> {
    let project = qda_project(transcripts, passages, themes, codebook);
    let qdc = out_dir.join(CODEBOOK_FILE);
    qda::write_qdc(&qdc, &project.codes, &project.origin)?;
    let project_path = out_dir.join(PROJECT_FILE);
    qda::write_qdpx_with(&project_path, &project, qdpx)?;
    Ok(vec![qdc, project_path])
}
