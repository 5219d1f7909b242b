//! Checks a [`QdaProject`] (or a code list) before anything is written, so every file that
//! leaves qualscribe validates against the schema and imports without dangling references.
//!
//! Checked: GUID syntax (the schemas' `GUIDType`), GUIDs unique across the whole project (derived
//! ones included), colours (`RGBType`), coding → source and code references, case → source
//! references, coding spans and sync points inside their text (in characters), and sync points
//! only where an audio file carries them.

use std::collections::{HashMap, HashSet};

use super::codebook::code_note_guid;
use super::project::{audio_guid, selection_guid, transcript_guid};
use super::{QdaCode, QdaError, QdaProject};

/// True when `s` matches the schemas' GUID pattern (`8-4-4-4-12` hex, optionally in braces).
pub(super) fn is_guid(s: &str) -> bool {
    let inner = s
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or(s);
    let groups: Vec<&str> = inner.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// True when `s` matches the schemas' colour pattern (`#RRGGBB` or `#RGB`).
fn is_color(s: &str) -> bool {
    s.strip_prefix('#').is_some_and(|hex| {
        (hex.len() == 6 || hex.len() == 3) && hex.chars().all(|c| c.is_ascii_hexdigit())
    })
}

/// GUIDs seen so far and who owns each, to report the first clash.
#[derive(Default)]
struct GuidRegistry {
    owners: HashMap<String, String>,
}

impl GuidRegistry {
    fn claim(&mut self, guid: &str, what: impl Fn() -> String) -> Result<(), QdaError> {
        if !is_guid(guid) {
            return Err(QdaError::InvalidGuid {
                what: what(),
                guid: guid.to_string(),
            });
        }
        let key = canonical(guid);
        if let Some(first) = self.owners.get(&key) {
            return Err(QdaError::DuplicateGuid {
                guid: guid.to_string(),
                first: first.clone(),
                second: what(),
            });
        }
        self.owners.insert(key, what());
        Ok(())
    }
}

/// GUIDs compare case-insensitively and with or without braces.
pub(super) fn canonical(guid: &str) -> String {
    guid.trim_start_matches('{')
        .trim_end_matches('}')
        .to_ascii_lowercase()
}

/// Checks a code tree on its own (for a `.qdc`).
pub(super) fn codes(codes: &[QdaCode]) -> Result<(), QdaError> {
    claim_codes(codes, &mut GuidRegistry::default(), false)
}

fn claim_codes(
    codes: &[QdaCode],
    guids: &mut GuidRegistry,
    with_notes: bool,
) -> Result<(), QdaError> {
    for code in codes {
        guids.claim(&code.guid, || format!("code {:?}", code.name))?;
        if with_notes && code.note.is_some() {
            guids.claim(&code_note_guid(&code.guid), || {
                format!("the note of code {:?}", code.name)
            })?;
        }
        if let Some(color) = &code.color
            && !is_color(color)
        {
            return Err(QdaError::InvalidColor {
                code: code.name.clone(),
                color: color.clone(),
            });
        }
        claim_codes(&code.children, guids, with_notes)?;
    }
    Ok(())
}

/// True when `s` is an `xs:dateTime` in UTC as this crate writes them (RFC 3339 with `Z`,
/// optionally with fractions of a second).
fn is_date_time(s: &str) -> bool {
    s.ends_with('Z') && humantime::parse_rfc3339(s).is_ok()
}

/// Checks a whole project.
pub(super) fn project(p: &QdaProject) -> Result<(), QdaError> {
    for date in [&p.dates.created, &p.dates.modified] {
        if !is_date_time(date) {
            return Err(QdaError::InvalidDate {
                value: date.clone(),
            });
        }
    }
    let mut guids = GuidRegistry::default();
    guids.claim(&p.created_by.guid, || {
        format!("user {:?}", p.created_by.name)
    })?;
    claim_codes(&p.codes, &mut guids, true)?;
    let mut source_chars: HashMap<String, usize> = HashMap::new();
    for s in &p.sources {
        guids.claim(&s.guid, || format!("source {}", s.name))?;
        let chars = s.text.chars().count();
        source_chars.insert(canonical(&s.guid), chars);
        check_sync_points(s, chars, &mut guids)?;
    }
    for c in &p.cases {
        guids.claim(&c.guid, || format!("case {:?}", c.name))?;
        for r in &c.source_refs {
            if !source_chars.contains_key(&canonical(r)) {
                return Err(dangling(format!("case {:?}", c.name), "source", r));
            }
        }
    }
    let mut code_guids = HashSet::new();
    collect_code_guids(&p.codes, &mut code_guids);
    for coding in &p.codings {
        let what = || format!("coding {}", coding.guid);
        guids.claim(&coding.guid, what)?;
        guids.claim(&selection_guid(&coding.guid), || {
            format!("the selection of coding {}", coding.guid)
        })?;
        let Some(&chars) = source_chars.get(&canonical(&coding.source_guid)) else {
            return Err(dangling(what(), "source", &coding.source_guid));
        };
        if !code_guids.contains(&canonical(&coding.code_guid)) {
            return Err(dangling(what(), "code", &coding.code_guid));
        }
        if coding.start > coding.end || coding.end > chars {
            return Err(QdaError::SpanOutOfRange {
                coding: coding.guid.clone(),
                source_guid: coding.source_guid.clone(),
                start: coding.start,
                end: coding.end,
                chars,
            });
        }
    }
    for (guid, _) in &p.notes {
        guids.claim(guid, || format!("project note {guid}"))?;
    }
    Ok(())
}

fn check_sync_points(
    s: &super::QdaSource,
    chars: usize,
    guids: &mut GuidRegistry,
) -> Result<(), QdaError> {
    if s.audio_path.is_none() {
        if s.sync_points.is_empty() {
            return Ok(());
        }
        return Err(QdaError::SyncPointsWithoutAudio {
            source_guid: s.guid.clone(),
        });
    }
    guids.claim(&audio_guid(&s.guid), || {
        format!("the audio of source {}", s.name)
    })?;
    guids.claim(&transcript_guid(&s.guid), || {
        format!("the transcript of source {}", s.name)
    })?;
    for sp in &s.sync_points {
        guids.claim(&sp.guid, || {
            format!("sync point {} of source {}", sp.guid, s.name)
        })?;
        if sp.position > chars {
            return Err(QdaError::SyncPointOutOfRange {
                sync_point: sp.guid.clone(),
                source_guid: s.guid.clone(),
                position: sp.position,
                chars,
            });
        }
    }
    Ok(())
}

fn collect_code_guids(codes: &[QdaCode], out: &mut HashSet<String>) {
    for code in codes {
        out.insert(canonical(&code.guid));
        collect_code_guids(&code.children, out);
    }
}

fn dangling(what: String, kind: &'static str, guid: &str) -> QdaError {
    QdaError::DanglingRef {
        what,
        kind,
        guid: guid.to_string(),
    }
}
