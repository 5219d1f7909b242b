//! Reads `.qdc` codebooks and `.qdpx` projects back into the input model.
//!
//! What qualscribe writes comes back equal to what was written (see the module docs of
//! [`super`] for the two lossy corners: a `.qdc` note is recovered from the description's last
//! `Note: ` paragraph, and copied audio comes back as its archive member `Sources/<file>`).
//! Files from other programs are read leniently where the standard allows variation: GUIDs
//! match case-insensitively and with or without braces, the `Sources` folder may be lower-case,
//! a text may be inline (`PlainTextContent`) or a file, a byte-order mark is skipped, and
//! elements of other namespaces are ignored. An `AudioSource` is paired with the `TextSource`
//! it was written for (by GUID, else by identical transcript text); an unpaired one becomes a
//! source of its own with its transcript as text.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use zip::ZipArchive;

use super::codebook::split_note;
use super::project::audio_guid;
use super::validate::canonical;
use super::xml::{Element, parse};
use super::{
    CODEBOOK_NAMESPACE, PROJECT_NAMESPACE, QdaCase, QdaCode, QdaCoding, QdaDates, QdaError,
    QdaProject, QdaSource, QdaSyncPoint, QdaUser,
};

/// Reads a `.qdc` codebook.
pub fn read_qdc(path: &Path) -> Result<Vec<QdaCode>, QdaError> {
    let bytes = std::fs::read(path).map_err(|source| QdaError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = utf8(bytes, path)?;
    let root = parse(&text, path)?;
    let doc = Doc { path };
    doc.expect_root(&root, CODEBOOK_NAMESPACE, "CodeBook")?;
    let codes = doc.required_child(&root, "Codes")?;
    doc.codes(codes, true)
}

/// Reads a `.qdpx` project: `project.qde` and the texts it references under `Sources/`.
pub fn read_qdpx(path: &Path) -> Result<QdaProject, QdaError> {
    let file = File::open(path).map_err(|source| QdaError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut archive = Archive::open(file, path)?;
    let qde = archive.read_text("project.qde")?;
    let qde_path = PathBuf::from(format!("{}!project.qde", path.display()));
    let root = parse(&qde, &qde_path)?;
    ProjectReader {
        doc: Doc { path: &qde_path },
        archive: &mut archive,
    }
    .project(&root)
}

/// Strips a UTF-8 byte-order mark and checks the encoding.
fn utf8(bytes: Vec<u8>, path: &Path) -> Result<String, QdaError> {
    let mut text = String::from_utf8(bytes).map_err(|e| QdaError::Read {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    Ok(text)
}

/// The zip and a case-insensitive index of its members.
struct Archive {
    path: PathBuf,
    zip: ZipArchive<File>,
    members: HashMap<String, String>,
}

impl Archive {
    fn open(file: File, path: &Path) -> Result<Archive, QdaError> {
        let zip_err = |source| QdaError::Zip {
            path: path.to_path_buf(),
            source,
        };
        let zip = ZipArchive::new(file).map_err(zip_err)?;
        let mut members = HashMap::new();
        for name in zip.file_names() {
            let name = name.map_err(zip_err)?;
            members.insert(name.to_lowercase(), name.into_owned());
        }
        Ok(Archive {
            path: path.to_path_buf(),
            zip,
            members,
        })
    }

    /// The exact member name matching `entry` ignoring case, if any.
    fn member(&self, entry: &str) -> Option<&String> {
        self.members.get(&entry.to_lowercase())
    }

    fn read_text(&mut self, entry: &str) -> Result<String, QdaError> {
        let missing = || QdaError::MissingEntry {
            path: self.path.clone(),
            entry: entry.to_string(),
        };
        let name = self.member(entry).cloned().ok_or_else(missing)?;
        let mut member = self.zip.by_name(&name).map_err(|source| QdaError::Zip {
            path: self.path.clone(),
            source,
        })?;
        let mut bytes = Vec::new();
        member
            .read_to_end(&mut bytes)
            .map_err(|source| QdaError::Read {
                path: PathBuf::from(format!("{}!{name}", self.path.display())),
                source,
            })?;
        utf8(bytes, &self.path)
    }
}

/// Attribute and child lookups that name the file in their errors.
struct Doc<'p> {
    path: &'p Path,
}

impl Doc<'_> {
    fn expect_root(&self, root: &Element, namespace: &str, name: &str) -> Result<(), QdaError> {
        if root.namespace == namespace && root.name == name {
            return Ok(());
        }
        Err(QdaError::WrongRoot {
            path: self.path.to_path_buf(),
            found: format!("{{{}}}{}", root.namespace, root.name),
            expected: format!("{{{namespace}}}{name}"),
        })
    }

    fn missing(&self, element: &Element, what: &str) -> QdaError {
        QdaError::Missing {
            path: self.path.to_path_buf(),
            element: element.name.clone(),
            attribute: what.to_string(),
        }
    }

    fn bad(&self, element: &Element, attribute: &str, value: &str) -> QdaError {
        QdaError::BadValue {
            path: self.path.to_path_buf(),
            element: element.name.clone(),
            attribute: attribute.to_string(),
            value: value.to_string(),
        }
    }

    fn required<'e>(&self, element: &'e Element, attribute: &str) -> Result<&'e str, QdaError> {
        element
            .attr(attribute)
            .ok_or_else(|| self.missing(element, attribute))
    }

    fn required_child<'e>(
        &self,
        element: &'e Element,
        name: &str,
    ) -> Result<&'e Element, QdaError> {
        element
            .child(name)
            .ok_or_else(|| self.missing(element, name))
    }

    fn number<T: std::str::FromStr>(
        &self,
        element: &Element,
        attribute: &str,
    ) -> Result<T, QdaError> {
        let raw = self.required(element, attribute)?;
        raw.trim()
            .parse()
            .map_err(|_| self.bad(element, attribute, raw))
    }

    fn boolean(&self, element: &Element, attribute: &str) -> Result<bool, QdaError> {
        match self.required(element, attribute)?.trim() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(self.bad(element, attribute, other)),
        }
    }

    /// The `Code` children of `parent`. In a `.qdc` (`fold_notes`) a note comes out of the
    /// description; in a project the caller fills notes from `NoteRef`s.
    fn codes(&self, parent: &Element, fold_notes: bool) -> Result<Vec<QdaCode>, QdaError> {
        parent
            .children_named("Code")
            .map(|c| self.code(c, fold_notes))
            .collect()
    }

    fn code(&self, e: &Element, fold_notes: bool) -> Result<QdaCode, QdaError> {
        let raw_description = e
            .child("Description")
            .map(|d| d.text.clone())
            .unwrap_or_default();
        let (description, note) = if fold_notes {
            split_note(&raw_description)
        } else {
            (raw_description, None)
        };
        Ok(QdaCode {
            guid: self.required(e, "guid")?.to_string(),
            name: self.required(e, "name")?.to_string(),
            description,
            color: e.attr("color").map(str::to_string),
            is_codable: self.boolean(e, "isCodable")?,
            children: self.codes(e, fold_notes)?,
            note,
        })
    }
}

struct ProjectReader<'a> {
    doc: Doc<'a>,
    archive: &'a mut Archive,
}

impl ProjectReader<'_> {
    fn project(&mut self, root: &Element) -> Result<QdaProject, QdaError> {
        self.doc.expect_root(root, PROJECT_NAMESPACE, "Project")?;
        let notes = self.notes(root)?;
        let mut codes = match root.child("CodeBook") {
            Some(book) => self
                .doc
                .codes(self.doc.required_child(book, "Codes")?, false)?,
            None => Vec::new(),
        };
        let mut used_by_codes = HashSet::new();
        let note_index: HashMap<String, &str> = notes
            .iter()
            .map(|(g, t)| (canonical(g), t.as_str()))
            .collect();
        if let Some(book) = root.child("CodeBook") {
            let codes_element = self.doc.required_child(book, "Codes")?;
            attach_code_notes(codes_element, &mut codes, &note_index, &mut used_by_codes);
        }
        let (sources, codings) = self.sources(root)?;
        Ok(QdaProject {
            name: self.doc.required(root, "name")?.to_string(),
            origin: root.attr("origin").unwrap_or_default().to_string(),
            created_by: self.created_by(root)?,
            codes,
            sources,
            cases: self.cases(root)?,
            codings,
            notes: notes
                .into_iter()
                .filter(|(g, _)| !used_by_codes.contains(&canonical(g)))
                .collect(),
            dates: QdaDates {
                created: root
                    .attr("creationDateTime")
                    .unwrap_or_default()
                    .to_string(),
                modified: root
                    .attr("modifiedDateTime")
                    .unwrap_or_default()
                    .to_string(),
            },
        })
    }

    /// The user named by `creatingUserGUID`, else the first user.
    fn created_by(&self, root: &Element) -> Result<QdaUser, QdaError> {
        let users: Vec<&Element> = root
            .child("Users")
            .map(|u| u.children_named("User").collect())
            .unwrap_or_default();
        let wanted = root.attr("creatingUserGUID").map(canonical);
        let user = users
            .iter()
            .find(|u| u.attr("guid").map(canonical) == wanted)
            .or(users.first())
            .ok_or_else(|| self.doc.missing(root, "Users"))?;
        Ok(QdaUser {
            guid: self.doc.required(user, "guid")?.to_string(),
            name: user.attr("name").unwrap_or_default().to_string(),
        })
    }

    fn cases(&self, root: &Element) -> Result<Vec<QdaCase>, QdaError> {
        let Some(cases) = root.child("Cases") else {
            return Ok(Vec::new());
        };
        cases
            .children_named("Case")
            .map(|c| {
                Ok(QdaCase {
                    guid: self.doc.required(c, "guid")?.to_string(),
                    name: c.attr("name").unwrap_or_default().to_string(),
                    source_refs: c
                        .children_named("SourceRef")
                        .map(|r| self.doc.required(r, "targetGUID").map(str::to_string))
                        .collect::<Result<_, _>>()?,
                })
            })
            .collect()
    }

    /// `(guid, text)` of every `Note`, in document order.
    fn notes(&mut self, root: &Element) -> Result<Vec<(String, String)>, QdaError> {
        let Some(notes) = root.child("Notes") else {
            return Ok(Vec::new());
        };
        notes
            .children_named("Note")
            .map(|n| Ok((self.doc.required(n, "guid")?.to_string(), self.text_of(n)?)))
            .collect()
    }

    /// The plain text of a text-bearing element: inline `PlainTextContent`, or the file its
    /// `plainTextPath` names.
    fn text_of(&mut self, e: &Element) -> Result<String, QdaError> {
        if let Some(content) = e.child("PlainTextContent") {
            return Ok(content.text.clone());
        }
        let reference = self.doc.required(e, "plainTextPath")?;
        if let Some(file) = reference.strip_prefix("internal://") {
            return self.archive.read_text(&format!("Sources/{file}"));
        }
        if let Some(file) = reference.strip_prefix("absolute://") {
            let path = PathBuf::from(file);
            let bytes = std::fs::read(&path).map_err(|source| QdaError::Read {
                path: path.clone(),
                source,
            })?;
            return utf8(bytes, &path);
        }
        Err(self.doc.bad(e, "plainTextPath", reference))
    }

    fn sources(&mut self, root: &Element) -> Result<(Vec<QdaSource>, Vec<QdaCoding>), QdaError> {
        let mut sources = Vec::new();
        let mut codings = Vec::new();
        let Some(all) = root.child("Sources") else {
            return Ok((sources, codings));
        };
        for e in all.children_named("TextSource") {
            let source = QdaSource {
                guid: self.doc.required(e, "guid")?.to_string(),
                name: e.attr("name").unwrap_or_default().to_string(),
                text: self.text_of(e)?,
                audio_path: None,
                sync_points: Vec::new(),
            };
            self.selections(e, &source, &mut codings)?;
            sources.push(source);
        }
        for e in all.children_named("AudioSource") {
            self.audio(e, &mut sources)?;
        }
        Ok((sources, codings))
    }

    fn selections(
        &self,
        e: &Element,
        source: &QdaSource,
        out: &mut Vec<QdaCoding>,
    ) -> Result<(), QdaError> {
        let chars = source.text.chars().count();
        for sel in e.children_named("PlainTextSelection") {
            let start: usize = self.doc.number(sel, "startPosition")?;
            let end: usize = self.doc.number(sel, "endPosition")?;
            if start > end || end > chars {
                let value = format!("{end} (start {start}, text has {chars} characters)");
                return Err(self.doc.bad(sel, "endPosition", &value));
            }
            for coding in sel.children_named("Coding") {
                let code_ref = self.doc.required_child(coding, "CodeRef")?;
                out.push(QdaCoding {
                    guid: self.doc.required(coding, "guid")?.to_string(),
                    source_guid: source.guid.clone(),
                    start,
                    end,
                    code_guid: self.doc.required(code_ref, "targetGUID")?.to_string(),
                    name: sel.attr("name").map(str::to_string),
                });
            }
        }
        Ok(())
    }

    /// Attaches an `AudioSource` to its text source, or adds it as a source of its own.
    fn audio(&mut self, e: &Element, sources: &mut Vec<QdaSource>) -> Result<(), QdaError> {
        let guid = self.doc.required(e, "guid")?.to_string();
        let audio_path = e.attr("path").map(audio_path_of);
        let (text, sync_points) = match e.child("Transcript") {
            Some(t) => (Some(self.text_of(t)?), self.sync_points(t)?),
            None => (None, Vec::new()),
        };
        let key = canonical(&guid);
        let by_guid = sources
            .iter()
            .position(|s| canonical(&audio_guid(&s.guid)) == key);
        let by_text = || {
            sources
                .iter()
                .position(|s| s.audio_path.is_none() && Some(&s.text) == text.as_ref())
        };
        match by_guid.or_else(by_text) {
            Some(i) => {
                sources[i].audio_path = audio_path;
                sources[i].sync_points = sync_points;
            }
            None => sources.push(QdaSource {
                guid,
                name: e.attr("name").unwrap_or_default().to_string(),
                text: text.unwrap_or_default(),
                audio_path,
                sync_points,
            }),
        }
        Ok(())
    }

    fn sync_points(&self, transcript: &Element) -> Result<Vec<QdaSyncPoint>, QdaError> {
        transcript
            .children_named("SyncPoint")
            .map(|sp| {
                Ok(QdaSyncPoint {
                    guid: self.doc.required(sp, "guid")?.to_string(),
                    position: self.doc.number(sp, "position")?,
                    time_ms: self.doc.number(sp, "timeStamp")?,
                })
            })
            .collect()
    }
}

/// An `AudioSource path` as a path: `absolute://` is stripped, `internal://X` becomes the
/// archive member `Sources/X`, anything else is kept as written.
fn audio_path_of(raw: &str) -> PathBuf {
    if let Some(file) = raw.strip_prefix("absolute://") {
        return PathBuf::from(file);
    }
    if let Some(file) = raw.strip_prefix("internal://") {
        return PathBuf::from("Sources").join(file);
    }
    PathBuf::from(raw)
}

/// Fills each code's note from its first `NoteRef`, walking the XML and the parsed codes in step.
fn attach_code_notes(
    parent: &Element,
    codes: &mut [QdaCode],
    notes: &HashMap<String, &str>,
    used: &mut HashSet<String>,
) {
    for (element, code) in parent.children_named("Code").zip(codes.iter_mut()) {
        let note_ref = element
            .children_named("NoteRef")
            .filter_map(|r| r.attr("targetGUID"))
            .map(canonical)
            .find(|g| notes.contains_key(g));
        if let Some(guid) = note_ref {
            code.note = notes.get(&guid).map(|t| t.to_string());
            used.insert(guid);
        }
        attach_code_notes(element, &mut code.children, notes, used);
    }
}
