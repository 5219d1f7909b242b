//! Writes the code tree, both as a stand-alone `.qdc` codebook and inside `project.qde`.
//!
//! The two schemas differ in one place: a project `Code` may point to `Note`s (`NoteRef`), a
//! codebook `Code` may not. So in a `.qdc` a code's note is folded into its description as a last
//! paragraph `Note: <note>` ([`NOTE_MARKER`]); in a project it is a `Note` the code refers to.

use super::xml::XmlOut;
use super::{CODEBOOK_NAMESPACE, QdaCode, guid_for};

/// Separates a description from the folded-in note in a `.qdc` (`<description>\n\nNote: <note>`).
pub(super) const NOTE_MARKER: &str = "Note: ";

/// How a code's note is written.
#[derive(Clone, Copy)]
pub(super) enum NoteStyle {
    /// Appended to the description (`.qdc`).
    InDescription,
    /// As a `NoteRef` to the `Note` with GUID [`code_note_guid`] (`project.qde`).
    NoteRef,
}

/// The GUID of the `Note` that holds a code's note in a project.
pub(super) fn code_note_guid(code_guid: &str) -> String {
    guid_for("qdpx-code-note", code_guid)
}

/// Renders `codes` as a `.qdc` codebook (`Codebook.xsd`), tagged with `origin`.
///
/// Pure and deterministic. It does not check its input: [`super::write_qdc`] does, and refuses an
/// empty list (the schema needs at least one code; this function would write an empty `<Codes>`).
pub fn write_codebook(codes: &[QdaCode], origin: &str) -> String {
    let mut out = XmlOut::new();
    out.start(
        "CodeBook",
        &[
            ("xmlns", Some(CODEBOOK_NAMESPACE)),
            ("origin", Some(origin)),
        ],
    );
    write_codes(&mut out, codes, NoteStyle::InDescription);
    out.end("CodeBook");
    out.finish()
}

/// Writes `<Codes>` with every code and its children.
pub(super) fn write_codes(out: &mut XmlOut, codes: &[QdaCode], style: NoteStyle) {
    out.start("Codes", &[]);
    for code in codes {
        write_code(out, code, style);
    }
    out.end("Codes");
}

fn write_code(out: &mut XmlOut, code: &QdaCode, style: NoteStyle) {
    let attrs = [
        ("guid", Some(code.guid.as_str())),
        ("name", Some(code.name.as_str())),
        (
            "isCodable",
            Some(if code.is_codable { "true" } else { "false" }),
        ),
        ("color", code.color.as_deref()),
    ];
    let description = match style {
        NoteStyle::InDescription => description_with_note(&code.description, code.note.as_deref()),
        NoteStyle::NoteRef => code.description.clone(),
    };
    let note_ref = matches!(style, NoteStyle::NoteRef) && code.note.is_some();
    if description.is_empty() && !note_ref && code.children.is_empty() {
        out.empty("Code", &attrs);
        return;
    }
    out.start("Code", &attrs);
    if !description.is_empty() {
        out.text_element("Description", &description);
    }
    if note_ref {
        let note_guid = code_note_guid(&code.guid);
        out.empty("NoteRef", &[("targetGUID", Some(note_guid.as_str()))]);
    }
    for child in &code.children {
        write_code(out, child, style);
    }
    out.end("Code");
}

/// `description`, then the note as a last paragraph (`.qdc` has no other place for it).
fn description_with_note(description: &str, note: Option<&str>) -> String {
    match note {
        None => description.to_string(),
        Some(note) if description.is_empty() => format!("{NOTE_MARKER}{note}"),
        Some(note) => format!("{description}\n\n{NOTE_MARKER}{note}"),
    }
}

/// Splits a `.qdc` description back into the description and the note folded into it.
pub(super) fn split_note(text: &str) -> (String, Option<String>) {
    if let Some(note) = text.strip_prefix(NOTE_MARKER) {
        return (String::new(), Some(note.to_string()));
    }
    match text.rsplit_once(&format!("\n\n{NOTE_MARKER}")) {
        Some((description, note)) => (description.to_string(), Some(note.to_string())),
        None => (text.to_string(), None),
    }
}
