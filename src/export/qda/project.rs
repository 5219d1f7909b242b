//! Writes a `.qdpx`: `project.qde` (validating against `Project.xsd`) plus `Sources/`, zipped.
//!
//! Archive layout, in this order: `project.qde`, the folder entry `Sources/`, then per source
//! `Sources/<source guid>.txt` (the text) and, with audio, `Sources/<transcript guid>.txt` (the
//! transcript's copy of the text); last, with [`AudioStorage::Copy`], the recordings as
//! `Sources/<audio guid>.<ext>` (extension lower-cased).
//! Text entries are deflated, audio is stored as is (it is compressed already, or large and
//! cheap to keep fast). Every entry has the DOS date 1980-01-01 and mode 0644 (folder 0755), so
//! the archive depends on nothing but the input.

use std::fs::File;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::codebook::{NoteStyle, code_note_guid, write_codes};
use super::validate::canonical;
use super::xml::XmlOut;
use super::{
    AudioStorage, PROJECT_NAMESPACE, QdaCode, QdaError, QdaProject, QdaSource, QdpxOptions,
    guid_for,
};
use crate::atomic::write_atomic_with;

/// GUID of the `AudioSource` written for the source with GUID `source_guid`.
pub(super) fn audio_guid(source_guid: &str) -> String {
    guid_for("qdpx-audio", source_guid)
}

/// GUID of the `Transcript` inside that `AudioSource`.
pub(super) fn transcript_guid(source_guid: &str) -> String {
    guid_for("qdpx-transcript", source_guid)
}

/// GUID of the `PlainTextSelection` that holds the coding with GUID `coding_guid`.
pub(super) fn selection_guid(coding_guid: &str) -> String {
    guid_for("qdpx-selection", coding_guid)
}

/// How one source's audio appears in the project.
struct AudioEntry {
    /// The `AudioSource path` attribute (`absolute://…` or `internal://…`).
    path_attr: String,
    /// The `AudioSource name`: the file's name.
    name: String,
    /// With [`AudioStorage::Copy`]: the archive member and the file to copy into it.
    copy: Option<(String, PathBuf)>,
}

/// Writes the archive atomically. The project has been validated.
pub(super) fn write(
    path: &Path,
    project: &QdaProject,
    options: &QdpxOptions,
) -> Result<(), QdaError> {
    let audio = project
        .sources
        .iter()
        .map(|s| audio_entry(s, options.audio))
        .collect::<Result<Vec<_>, _>>()?;
    // Open the audio files before the archive exists, so a missing recording is reported
    // against the recording, not the archive.
    let mut copies = Vec::new();
    for (member, file) in audio.iter().filter_map(|a| a.as_ref()?.copy.as_ref()) {
        let opened = File::open(file).map_err(|source| QdaError::Read {
            path: file.clone(),
            source,
        })?;
        copies.push((member.clone(), opened));
    }
    let qde = render(project, &audio);
    write_atomic_with(path, |file| {
        write_zip(file, &qde, project, copies).map_err(std::io::Error::other)
    })?;
    Ok(())
}

fn audio_entry(s: &QdaSource, storage: AudioStorage) -> Result<Option<AudioEntry>, QdaError> {
    let Some(audio) = &s.audio_path else {
        return Ok(None);
    };
    let name = audio
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let guid = audio_guid(&s.guid);
    let entry = match storage {
        AudioStorage::Reference => {
            // Canonical, so the reference has no `..` and a missing recording is caught now,
            // not when a researcher opens the project.
            let absolute = std::fs::canonicalize(audio).map_err(|source| QdaError::Read {
                path: audio.clone(),
                source,
            })?;
            let text = absolute.to_str().ok_or_else(|| QdaError::NonUtf8Path {
                path: audio.clone(),
            })?;
            // Windows canonical paths carry the verbatim prefix `\\?\`, which other programs
            // do not expect; the standard's URLs use forward slashes on every platform.
            let text = text.strip_prefix(r"\\?\").unwrap_or(text);
            AudioEntry {
                path_attr: format!("absolute://{}", text.replace('\\', "/")),
                name,
                copy: None,
            }
        }
        AudioStorage::Copy => {
            let file_name = match audio.extension().and_then(|e| e.to_str()) {
                Some(ext) => format!("{guid}.{}", ext.to_ascii_lowercase()),
                None => guid.clone(),
            };
            AudioEntry {
                path_attr: format!("internal://{file_name}"),
                name,
                copy: Some((format!("Sources/{file_name}"), audio.clone())),
            }
        }
    };
    Ok(Some(entry))
}

/// `project.qde` as text. Pure and deterministic.
fn render(p: &QdaProject, audio: &[Option<AudioEntry>]) -> String {
    let user = p.created_by.guid.as_str();
    let mut out = XmlOut::new();
    out.start(
        "Project",
        &[
            ("xmlns", Some(PROJECT_NAMESPACE)),
            ("name", Some(p.name.as_str())),
            ("origin", Some(p.origin.as_str())),
            ("creatingUserGUID", Some(user)),
        ],
    );
    out.start("Users", &[]);
    out.empty(
        "User",
        &[
            ("guid", Some(user)),
            ("name", Some(p.created_by.name.as_str())),
        ],
    );
    out.end("Users");
    // Codes, Cases, Sources and Notes each need at least one child when present.
    if !p.codes.is_empty() {
        out.start("CodeBook", &[]);
        write_codes(&mut out, &p.codes, NoteStyle::NoteRef);
        out.end("CodeBook");
    }
    write_cases(&mut out, p);
    if !p.sources.is_empty() {
        out.start("Sources", &[]);
        for (source, audio) in p.sources.iter().zip(audio) {
            write_text_source(&mut out, p, source);
            if let Some(audio) = audio {
                write_audio_source(&mut out, user, source, audio);
            }
        }
        out.end("Sources");
    }
    write_notes(&mut out, p);
    for (guid, _) in &p.notes {
        out.empty("NoteRef", &[("targetGUID", Some(guid.as_str()))]);
    }
    out.end("Project");
    out.finish()
}

fn write_cases(out: &mut XmlOut, p: &QdaProject) {
    if p.cases.is_empty() {
        return;
    }
    out.start("Cases", &[]);
    for case in &p.cases {
        let attrs = [
            ("guid", Some(case.guid.as_str())),
            ("name", Some(case.name.as_str())),
        ];
        if case.source_refs.is_empty() {
            out.empty("Case", &attrs);
            continue;
        }
        out.start("Case", &attrs);
        for source in &case.source_refs {
            out.empty("SourceRef", &[("targetGUID", Some(source.as_str()))]);
        }
        out.end("Case");
    }
    out.end("Cases");
}

fn write_text_source(out: &mut XmlOut, p: &QdaProject, s: &QdaSource) {
    let user = Some(p.created_by.guid.as_str());
    let text_path = format!("internal://{}.txt", s.guid);
    out.start(
        "TextSource",
        &[
            ("guid", Some(s.guid.as_str())),
            ("name", Some(s.name.as_str())),
            ("plainTextPath", Some(text_path.as_str())),
            ("creatingUser", user),
        ],
    );
    let source_key = canonical(&s.guid);
    for coding in p
        .codings
        .iter()
        .filter(|c| canonical(&c.source_guid) == source_key)
    {
        let selection = selection_guid(&coding.guid);
        let (start, end) = (coding.start.to_string(), coding.end.to_string());
        out.start(
            "PlainTextSelection",
            &[
                ("guid", Some(selection.as_str())),
                ("name", coding.name.as_deref()),
                ("startPosition", Some(start.as_str())),
                ("endPosition", Some(end.as_str())),
                ("creatingUser", user),
            ],
        );
        out.start(
            "Coding",
            &[("guid", Some(coding.guid.as_str())), ("creatingUser", user)],
        );
        out.empty(
            "CodeRef",
            &[("targetGUID", Some(coding.code_guid.as_str()))],
        );
        out.end("Coding");
        out.end("PlainTextSelection");
    }
    out.end("TextSource");
}

fn write_audio_source(out: &mut XmlOut, user: &str, s: &QdaSource, audio: &AudioEntry) {
    let guid = audio_guid(&s.guid);
    let transcript = transcript_guid(&s.guid);
    let transcript_path = format!("internal://{transcript}.txt");
    out.start(
        "AudioSource",
        &[
            ("guid", Some(guid.as_str())),
            ("name", Some(audio.name.as_str())),
            ("path", Some(audio.path_attr.as_str())),
            ("creatingUser", Some(user)),
        ],
    );
    let attrs = [
        ("guid", Some(transcript.as_str())),
        ("name", Some(s.name.as_str())),
        ("plainTextPath", Some(transcript_path.as_str())),
        ("creatingUser", Some(user)),
    ];
    if s.sync_points.is_empty() {
        out.empty("Transcript", &attrs);
    } else {
        out.start("Transcript", &attrs);
        for sp in &s.sync_points {
            let (time, position) = (sp.time_ms.to_string(), sp.position.to_string());
            out.empty(
                "SyncPoint",
                &[
                    ("guid", Some(sp.guid.as_str())),
                    ("timeStamp", Some(time.as_str())),
                    ("position", Some(position.as_str())),
                ],
            );
        }
        out.end("Transcript");
    }
    out.end("AudioSource");
}

/// Code notes first (in codebook order), then the project's own notes.
fn write_notes(out: &mut XmlOut, p: &QdaProject) {
    let mut code_notes = Vec::new();
    collect_code_notes(&p.codes, &mut code_notes);
    if code_notes.is_empty() && p.notes.is_empty() {
        return;
    }
    out.start("Notes", &[]);
    let user = Some(p.created_by.guid.as_str());
    for (code, note) in code_notes {
        let guid = code_note_guid(&code.guid);
        out.start(
            "Note",
            &[
                ("guid", Some(guid.as_str())),
                ("name", Some(code.name.as_str())),
                ("creatingUser", user),
            ],
        );
        out.text_element("PlainTextContent", note);
        out.end("Note");
    }
    for (guid, text) in &p.notes {
        out.start(
            "Note",
            &[("guid", Some(guid.as_str())), ("creatingUser", user)],
        );
        out.text_element("PlainTextContent", text);
        out.end("Note");
    }
    out.end("Notes");
}

fn collect_code_notes<'a>(codes: &'a [QdaCode], out: &mut Vec<(&'a QdaCode, &'a str)>) {
    for code in codes {
        if let Some(note) = &code.note {
            out.push((code, note));
        }
        collect_code_notes(&code.children, out);
    }
}

fn write_zip<W: Write + Seek>(
    sink: W,
    qde: &str,
    p: &QdaProject,
    copies: Vec<(String, File)>,
) -> zip::result::ZipResult<()> {
    let text = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644);
    let stored = text.compression_method(CompressionMethod::Stored);
    let folder = text.unix_permissions(0o755);
    let mut zip = ZipWriter::new(sink);
    zip.start_file("project.qde", text)?;
    zip.write_all(qde.as_bytes())?;
    zip.add_directory("Sources/", folder)?;
    for s in &p.sources {
        zip.start_file(format!("Sources/{}.txt", s.guid), text)?;
        zip.write_all(s.text.as_bytes())?;
        if s.audio_path.is_some() {
            zip.start_file(format!("Sources/{}.txt", transcript_guid(&s.guid)), text)?;
            zip.write_all(s.text.as_bytes())?;
        }
    }
    for (member, mut file) in copies {
        zip.start_file(member, stored)?;
        std::io::copy(&mut file, &mut zip)?;
    }
    zip.finish()?;
    Ok(())
}
