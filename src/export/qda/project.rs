//! Writes a `.qdpx`: `project.qde` (validating against `Project.xsd`) plus `Sources/`, zipped.
//!
//! Archive layout, in this order: `project.qde`, the folder entry `Sources/`, then per source
//! `Sources/<source guid>.txt` (the text) and, with audio, `Sources/<transcript guid>.txt` (the
//! transcript's copy of the text); last, with [`AudioStorage::Embed`], the recordings as
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
    /// The `AudioSource path` attribute (`internal://…`, `relative://…` or `absolute://…`).
    path_attr: String,
    /// The `AudioSource name`: the recording's id with the file's extension (QualCoder saves
    /// the embedded file under this name, so it must be unique and a plain file name).
    name: String,
    /// With [`AudioStorage::Embed`]: the archive member and the file to copy into it.
    copy: Option<(String, PathBuf)>,
}

/// Attributes every dated element carries: who made it and when, who changed it last and when.
struct Stamp<'a> {
    user: &'a str,
    created: &'a str,
    modified: &'a str,
}

impl<'a> Stamp<'a> {
    fn of(p: &'a QdaProject) -> Stamp<'a> {
        Stamp {
            user: &p.created_by.guid,
            created: &p.dates.created,
            modified: &p.dates.modified,
        }
    }

    /// `creatingUser`, `creationDateTime`, `modifyingUser`, `modifiedDateTime`.
    fn full(&self) -> [(&'static str, Option<&'a str>); 4] {
        [
            ("creatingUser", Some(self.user)),
            ("creationDateTime", Some(self.created)),
            ("modifyingUser", Some(self.user)),
            ("modifiedDateTime", Some(self.modified)),
        ]
    }
}

/// Writes the archive atomically. The project has been validated.
pub(super) fn write(
    path: &Path,
    project: &QdaProject,
    options: &QdpxOptions,
) -> Result<(), QdaError> {
    // Only relative links need the folder (it may not exist yet for the other storages, and a
    // write into a missing folder is reported against the archive).
    let project_dir = match options.audio {
        AudioStorage::Relative => Some(project_folder(path)?),
        _ => None,
    };
    let audio = project
        .sources
        .iter()
        .map(|s| audio_entry(s, options.audio, project_dir.as_deref()))
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
    let base_path = project_dir
        .as_deref()
        .map(|dir| utf8_path(dir, dir))
        .transpose()?;
    let qde = render(project, &audio, base_path.as_deref());
    write_atomic_with(path, |file| {
        write_zip(file, &qde, project, copies).map_err(std::io::Error::other)
    })?;
    Ok(())
}

/// The canonical folder the project file is written in (relative links start there).
fn project_folder(path: &Path) -> Result<PathBuf, QdaError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::canonicalize(&dir).map_err(|source| QdaError::Read { path: dir, source })
}

/// `path` as text with forward slashes (the standard's URLs use them on every platform).
fn utf8_path(path: &Path, reported: &Path) -> Result<String, QdaError> {
    let text = path.to_str().ok_or_else(|| QdaError::NonUtf8Path {
        path: reported.to_path_buf(),
    })?;
    // Windows canonical paths carry the verbatim prefix `\\?\`, which other programs do not
    // expect.
    let text = text.strip_prefix(r"\\?\").unwrap_or(text);
    Ok(text.replace('\\', "/"))
}

/// `target` relative to the folder `from` (both canonical), with `..` where needed.
fn relative_to(target: &Path, from: &Path) -> PathBuf {
    let t: Vec<_> = target.components().collect();
    let f: Vec<_> = from.components().collect();
    let common = t.iter().zip(&f).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..f.len() {
        rel.push("..");
    }
    for c in &t[common..] {
        rel.push(c);
    }
    rel
}

fn audio_entry(
    s: &QdaSource,
    storage: AudioStorage,
    project_dir: Option<&Path>,
) -> Result<Option<AudioEntry>, QdaError> {
    let Some(audio) = &s.audio_path else {
        return Ok(None);
    };
    let extension = audio
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    // The recording's id is unique in a project; its `/` (recordings in sub-folders of an
    // archive) would make the name a path in the importing tool.
    let stem = s.name.replace(['/', '\\'], "_");
    let name = match &extension {
        Some(ext) if !stem.ends_with(&format!(".{ext}")) => format!("{stem}.{ext}"),
        _ => stem,
    };
    let guid = audio_guid(&s.guid);
    // Canonical, so a link has no `..` of its own and a missing recording is caught now, not
    // when a researcher opens the project.
    let canonical = || {
        std::fs::canonicalize(audio).map_err(|source| QdaError::Read {
            path: audio.clone(),
            source,
        })
    };
    let entry = match storage {
        AudioStorage::Absolute => AudioEntry {
            path_attr: format!("absolute://{}", utf8_path(&canonical()?, audio)?),
            name,
            copy: None,
        },
        AudioStorage::Relative => {
            let from = project_dir.expect("relative links are computed from the project folder");
            let rel = relative_to(&canonical()?, from);
            AudioEntry {
                path_attr: format!("relative:///{}", utf8_path(&rel, audio)?),
                name,
                copy: None,
            }
        }
        AudioStorage::Embed => {
            let file_name = match &extension {
                Some(ext) => format!("{guid}.{ext}"),
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
fn render(p: &QdaProject, audio: &[Option<AudioEntry>], base_path: Option<&str>) -> String {
    let user = p.created_by.guid.as_str();
    let stamp = Stamp::of(p);
    let mut out = XmlOut::new();
    out.start(
        "Project",
        &[
            ("xmlns", Some(PROJECT_NAMESPACE)),
            ("name", Some(p.name.as_str())),
            ("origin", Some(p.origin.as_str())),
            ("creatingUserGUID", Some(user)),
            ("creationDateTime", Some(stamp.created)),
            ("modifyingUserGUID", Some(user)),
            ("modifiedDateTime", Some(stamp.modified)),
            ("basePath", base_path),
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
                write_audio_source(&mut out, &stamp, source, audio);
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

/// `attrs` followed by the stamp's four attributes.
fn with_stamp<'a>(
    attrs: &[(&'a str, Option<&'a str>)],
    stamp: &Stamp<'a>,
) -> Vec<(&'a str, Option<&'a str>)> {
    let mut all = attrs.to_vec();
    all.extend(stamp.full());
    all
}

fn write_text_source(out: &mut XmlOut, p: &QdaProject, s: &QdaSource) {
    let stamp = Stamp::of(p);
    let text_path = format!("internal://{}.txt", s.guid);
    out.start(
        "TextSource",
        &with_stamp(
            &[
                ("guid", Some(s.guid.as_str())),
                ("name", Some(s.name.as_str())),
                ("plainTextPath", Some(text_path.as_str())),
            ],
            &stamp,
        ),
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
            &with_stamp(
                &[
                    ("guid", Some(selection.as_str())),
                    ("name", coding.name.as_deref()),
                    ("startPosition", Some(start.as_str())),
                    ("endPosition", Some(end.as_str())),
                ],
                &stamp,
            ),
        );
        out.start(
            "Coding",
            &[
                ("guid", Some(coding.guid.as_str())),
                ("creatingUser", Some(stamp.user)),
                ("creationDateTime", Some(stamp.created)),
            ],
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

fn write_audio_source(out: &mut XmlOut, stamp: &Stamp<'_>, s: &QdaSource, audio: &AudioEntry) {
    let guid = audio_guid(&s.guid);
    let transcript = transcript_guid(&s.guid);
    let transcript_path = format!("internal://{transcript}.txt");
    out.start(
        "AudioSource",
        &with_stamp(
            &[
                ("guid", Some(guid.as_str())),
                ("name", Some(audio.name.as_str())),
                ("path", Some(audio.path_attr.as_str())),
            ],
            stamp,
        ),
    );
    let transcript_name = format!("{}.txt", audio.name);
    let attrs = with_stamp(
        &[
            ("guid", Some(transcript.as_str())),
            ("name", Some(transcript_name.as_str())),
            ("plainTextPath", Some(transcript_path.as_str())),
        ],
        stamp,
    );
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
    let stamp = Stamp::of(p);
    for (code, note) in code_notes {
        let guid = code_note_guid(&code.guid);
        out.start(
            "Note",
            &with_stamp(
                &[
                    ("guid", Some(guid.as_str())),
                    ("name", Some(code.name.as_str())),
                ],
                &stamp,
            ),
        );
        out.text_element("PlainTextContent", note);
        out.end("Note");
    }
    for (guid, text) in &p.notes {
        out.start(
            "Note",
            &with_stamp(&[("guid", Some(guid.as_str()))], &stamp),
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
