//! REFI-QDA export: every `.qdc` and `project.qde` written here is validated against the
//! standard's XSDs with `xmllint` (Debian `libxml2-utils`), read back, and compared with the
//! input. The realistic fixture is the synthetic Spanish focus group of the corpus: its turns
//! become the transcript text, its `themes.tsv` labels become codes and codings.

mod support;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use qualscribe::export::qda::{
    AudioStorage, QdaCase, QdaCode, QdaCoding, QdaDates, QdaError, QdaProject, QdaSource,
    QdaSyncPoint, QdaUser, QdpxOptions, char_span, guid_for, read_qdc, read_qdpx, write_codebook,
    write_qdc, write_qdpx, write_qdpx_with,
};
use support::{corpus, project};

const ORIGIN: &str = "qualscribe 0.1.0";

/// Links the audio by its canonical path (the read-back equals the input).
const ABSOLUTE: QdpxOptions = QdpxOptions {
    audio: AudioStorage::Absolute,
};

fn dates() -> QdaDates {
    QdaDates {
        created: "2026-11-30T10:00:00Z".to_string(),
        modified: "2026-12-01T09:30:15Z".to_string(),
    }
}

// ---------------------------------------------------------------- schema validation helpers

/// Runs `xmllint --noout --schema <xsd>` on `xml`, failing the test with xmllint's message.
fn assert_valid(xml: &[u8], xsd: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doc.xml");
    std::fs::write(&file, xml).unwrap();
    let schema = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/refi-qda")
        .join(xsd);
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run xmllint ({e}): apt-get install -y libxml2-utils"));
    assert!(
        out.status.success(),
        "{xsd} rejects the document:\n{}\n--- document ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(xml)
    );
}

/// The names of an archive's members, in archive order.
fn zip_names(path: &Path) -> Vec<String> {
    let zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    zip.file_names().map(|n| n.unwrap().into_owned()).collect()
}

/// The bytes of one archive member.
fn zip_member(path: &Path, name: &str) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut bytes = Vec::new();
    zip.by_name(name).unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

/// Writes `project`, validates its `project.qde` against Project.xsd, and returns the path.
fn write_valid_qdpx(dir: &Path, project: &QdaProject, options: &QdpxOptions) -> PathBuf {
    let path = dir.join("project.qdpx");
    write_qdpx_with(&path, project, options).unwrap();
    assert_valid(&zip_member(&path, "project.qde"), "Project.xsd");
    path
}

/// `text[start..end]` counted in characters, as the standard counts.
fn chars_slice(text: &str, start: usize, end: usize) -> String {
    text.chars().skip(start).take(end - start).collect()
}

// ---------------------------------------------------------------- fixtures

#[derive(serde::Deserialize)]
struct Recording {
    uri: String,
    turns: Vec<Turn>,
}

#[derive(serde::Deserialize)]
struct Turn {
    speaker: String,
    start: f64,
    text: String,
}

/// `(turn index, theme)` for each coded turn of `themes.tsv`.
fn themes(uri: &str) -> Vec<(usize, String)> {
    let tsv = std::fs::read_to_string(corpus("grupo_focal_reparto/themes.tsv")).unwrap();
    tsv.lines()
        .skip(1)
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f[0] == uri)
        .map(|f| (f[1].parse().unwrap(), f[5].to_string()))
        .collect()
}

/// Codebook entries for the five themes: definitions with accents and XML special characters.
fn theme_code(theme: &str) -> QdaCode {
    let (name, description, color) = match theme {
        "precio" => (
            "Precio",
            "Costes, tarifas y gastos de envío: «caro» & \"no compensa\" <frente a> antes.",
            "#E6194B",
        ),
        "atencion_cliente" => (
            "Atención al cliente",
            "Contacto con soporte, reclamaciones y devoluciones.",
            "#3CB44B",
        ),
        "diseno_app" => (
            "Diseño de la app",
            "Interfaz, menús, búsqueda y pago.",
            "#4363D8",
        ),
        "tiempos_entrega" => (
            "Tiempos de entrega",
            "Retrasos y puntualidad del reparto.",
            "#F58231",
        ),
        "sostenibilidad" => (
            "Sostenibilidad",
            "Envases, residuos y repartidores.",
            "#911EB4",
        ),
        other => panic!("unknown theme {other}"),
    };
    QdaCode {
        guid: guid_for("code", theme),
        name: name.to_string(),
        description: description.to_string(),
        color: Some(color.to_string()),
        is_codable: true,
        children: Vec::new(),
        note: Some(
            if theme == "precio" {
                "status: accepted"
            } else {
                "status: proposed"
            }
            .to_string(),
        ),
    }
}

/// The focus group as a project: one line per turn (`SPEAKER: text`), a sync point at each
/// line, each labelled turn's text coded with its theme, the speakers as cases.
fn focus_group_project() -> QdaProject {
    let dir = corpus("grupo_focal_reparto");
    let rec: Recording =
        serde_json::from_str(&std::fs::read_to_string(dir.join("grupo_focal_01.json")).unwrap())
            .unwrap();
    let source_guid = guid_for("source", &rec.uri);
    let mut text = String::new();
    let mut sync_points = Vec::new();
    let mut turn_spans = Vec::new(); // character span of each turn's own words
    for (i, turn) in rec.turns.iter().enumerate() {
        let line_start = text.chars().count();
        sync_points.push(QdaSyncPoint {
            guid: guid_for("sync", &format!("{}/{i}", rec.uri)),
            position: line_start,
            time_ms: (turn.start * 1000.0).round() as u64,
        });
        text.push_str(&turn.speaker);
        text.push_str(": ");
        let words_start = text.chars().count();
        text.push_str(&turn.text);
        turn_spans.push((words_start, text.chars().count()));
        text.push('\n');
    }
    let labels = themes(&rec.uri);
    let mut codes: Vec<QdaCode> = Vec::new();
    let mut codings = Vec::new();
    for (turn, theme) in &labels {
        if !codes.iter().any(|c| c.guid == guid_for("code", theme)) {
            codes.push(theme_code(theme));
        }
        let (start, end) = turn_spans[*turn];
        codings.push(QdaCoding {
            guid: guid_for("coding", &format!("{}/{turn}", rec.uri)),
            source_guid: source_guid.clone(),
            start,
            end,
            code_guid: guid_for("code", theme),
            name: Some(rec.turns[*turn].text.clone()),
        });
    }
    let mut cases: Vec<QdaCase> = Vec::new();
    for turn in &rec.turns {
        if !cases.iter().any(|c| c.name == turn.speaker) {
            cases.push(QdaCase {
                guid: guid_for("case", &turn.speaker),
                name: turn.speaker.clone(),
                source_refs: vec![source_guid.clone()],
            });
        }
    }
    QdaProject {
        name: "Grupo focal: app de reparto".to_string(),
        origin: ORIGIN.to_string(),
        created_by: QdaUser {
            guid: guid_for("user", "qualscribe"),
            name: "qualscribe".to_string(),
        },
        codes,
        sources: vec![QdaSource {
            guid: source_guid,
            name: rec.uri.clone(),
            text,
            // Canonical, because the project references the recording by its canonical path.
            audio_path: Some(std::fs::canonicalize(dir.join("grupo_focal_01.wav")).unwrap()),
            sync_points,
        }],
        cases,
        codings,
        notes: vec![(
            guid_for("note", "provenance"),
            "Códigos propuestos automáticamente por qualscribe.\nRevisar antes de aceptarlos."
                .to_string(),
        )],
        dates: dates(),
    }
}

/// A small codebook with a grouping node, sub-codes, notes and awkward characters.
fn nested_codes() -> Vec<QdaCode> {
    let mut service = theme_code("atencion_cliente");
    service.children = vec![theme_code("tiempos_entrega")];
    vec![
        theme_code("precio"),
        QdaCode {
            guid: guid_for("code", "servicio"),
            name: "Servicio & logística <grupo>".to_string(),
            description: String::new(),
            color: None,
            is_codable: false,
            children: vec![service, theme_code("sostenibilidad")],
            note: None,
        },
        QdaCode {
            guid: guid_for("code", "otros"),
            name: "Otros\ttemas".to_string(),
            description: "Línea uno\nlínea dos\r\ncon retorno".to_string(),
            color: Some("#abc".to_string()),
            is_codable: true,
            children: Vec::new(),
            note: Some("status: proposed".to_string()),
        },
    ]
}

// ---------------------------------------------------------------- codebook

#[test]
fn codebook_validates_and_reads_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("codes.qdc");
    let codes = nested_codes();
    write_qdc(&path, &codes, ORIGIN).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_valid(&bytes, "Codebook.xsd");
    assert!(!bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "no BOM");
    assert_eq!(bytes, write_codebook(&codes, ORIGIN).into_bytes());
    assert_eq!(read_qdc(&path).unwrap(), codes);
}

#[test]
fn focus_group_codebook_validates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grupo_focal.qdc");
    let codes = focus_group_project().codes;
    assert_eq!(codes.len(), 5, "the five themes of themes.tsv");
    write_qdc(&path, &codes, ORIGIN).unwrap();
    assert_valid(&std::fs::read(&path).unwrap(), "Codebook.xsd");
    assert_eq!(read_qdc(&path).unwrap(), codes);
}

// ---------------------------------------------------------------- project

#[test]
fn focus_group_project_validates_and_reads_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    let input = focus_group_project();
    assert_eq!(input.codings.len(), 16, "coded turns in themes.tsv");
    assert_eq!(input.sources[0].sync_points.len(), 23, "turns in the json");
    let path = write_valid_qdpx(dir.path(), &input, &ABSOLUTE);
    let back = read_qdpx(&path).unwrap();
    assert_eq!(back, input);
    // Every coding still quotes exactly its turn, counted in characters.
    for coding in &back.codings {
        let quoted = chars_slice(&back.sources[0].text, coding.start, coding.end);
        assert_eq!(Some(&quoted), coding.name.as_ref());
    }
    let qde = String::from_utf8(zip_member(&path, "project.qde")).unwrap();
    let wav = std::fs::canonicalize(corpus("grupo_focal_reparto/grupo_focal_01.wav")).unwrap();
    let reference = format!("path=\"absolute://{}\"", wav.display());
    assert!(
        qde.contains(&reference),
        "audio referenced by canonical path: {qde}"
    );
    // Sync points in milliseconds: turn 2 (ANA) starts at 13.334 s.
    assert!(qde.contains("timeStamp=\"13334\""), "{qde}");
}

#[test]
fn selection_after_accented_characters_is_the_exact_substring() {
    let text = "MOD: ¿Qué opinan del envío? Señora Muñoz, adelante.\nCARMEN: Pues mire, el precio me parece caro.\n";
    let quote = "el precio me parece caro";
    let byte_start = text.find(quote).unwrap();
    let span = char_span(text, byte_start..byte_start + quote.len()).unwrap();
    assert!(
        span.start < byte_start,
        "accents make char and byte offsets differ"
    );
    let source_guid = guid_for("source", "acentos");
    let project = QdaProject {
        name: "acentos".to_string(),
        origin: ORIGIN.to_string(),
        created_by: QdaUser {
            guid: guid_for("user", "u"),
            name: "Añá".to_string(),
        },
        codes: vec![theme_code("precio")],
        sources: vec![QdaSource {
            guid: source_guid.clone(),
            name: "acentos".to_string(),
            text: text.to_string(),
            audio_path: None,
            sync_points: Vec::new(),
        }],
        cases: Vec::new(),
        codings: vec![QdaCoding {
            guid: guid_for("coding", "acentos"),
            source_guid,
            start: span.start,
            end: span.end,
            code_guid: guid_for("code", "precio"),
            name: None,
        }],
        notes: Vec::new(),
        dates: dates(),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = write_valid_qdpx(dir.path(), &project, &QdpxOptions::default());
    let qde = String::from_utf8(zip_member(&path, "project.qde")).unwrap();
    assert!(
        qde.contains(&format!("startPosition=\"{}\"", span.start)),
        "{qde}"
    );
    assert!(
        qde.contains(&format!("endPosition=\"{}\"", span.end)),
        "{qde}"
    );
    let back = read_qdpx(&path).unwrap();
    assert_eq!(back, project);
    let c = &back.codings[0];
    assert_eq!(chars_slice(&back.sources[0].text, c.start, c.end), quote);
}

#[test]
fn archive_layout_and_embedded_audio() {
    let dir = tempfile::tempdir().unwrap();
    let input = focus_group_project();
    let s = &input.sources[0];
    let transcript = guid_for("qdpx-transcript", &s.guid);
    let audio = guid_for("qdpx-audio", &s.guid);

    let referenced = write_valid_qdpx(dir.path(), &input, &ABSOLUTE);
    assert_eq!(
        zip_names(&referenced),
        vec![
            "project.qde".to_string(),
            "Sources/".to_string(),
            format!("Sources/{}.txt", s.guid),
            format!("Sources/{transcript}.txt"),
        ]
    );
    assert_eq!(
        zip_member(&referenced, &format!("Sources/{}.txt", s.guid)),
        s.text.as_bytes()
    );

    let copied_dir = dir.path().join("copy");
    std::fs::create_dir(&copied_dir).unwrap();
    assert_eq!(
        QdpxOptions::default().audio,
        AudioStorage::Embed,
        "self-contained by default"
    );
    let copied = write_valid_qdpx(&copied_dir, &input, &QdpxOptions::default());
    let member = format!("Sources/{audio}.wav");
    assert_eq!(zip_names(&copied).last(), Some(&member));
    assert_eq!(
        zip_member(&copied, &member),
        std::fs::read(s.audio_path.as_ref().unwrap()).unwrap()
    );
    let qde = String::from_utf8(zip_member(&copied, "project.qde")).unwrap();
    assert!(qde.contains(&format!("path=\"internal://{audio}.wav\"")));
    assert!(
        qde.contains("name=\"grupo_focal_01.wav\"")
            && qde.contains("name=\"grupo_focal_01.wav.txt\""),
        "the recording's name, and QualCoder's name for its transcript: {qde}"
    );
    let back = read_qdpx(&copied).unwrap();
    assert_eq!(back.sources[0].audio_path, Some(PathBuf::from(&member)));
    assert_eq!(back.sources[0].sync_points, s.sync_points);

    // Moved to another folder, the project still holds its audio.
    let moved = dir.path().join("elsewhere.qdpx");
    std::fs::rename(&copied, &moved).unwrap();
    assert_eq!(
        zip_member(&moved, &member),
        std::fs::read(s.audio_path.as_ref().unwrap()).unwrap()
    );
}

#[test]
fn relative_audio_links_from_the_project_folder() {
    let dir = tempfile::tempdir().unwrap();
    let recordings = dir.path().join("grabaciones");
    let out = dir.path().join("salida");
    std::fs::create_dir_all(&recordings).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let wav = recordings.join("grupo focal ñ.wav");
    std::fs::copy(corpus("grupo_focal_reparto/grupo_focal_01.wav"), &wav).unwrap();
    let mut input = focus_group_project();
    input.sources[0].audio_path = Some(wav.clone());
    let relative = QdpxOptions {
        audio: AudioStorage::Relative,
    };
    let path = write_valid_qdpx(&out, &input, &relative);
    let qde = String::from_utf8(zip_member(&path, "project.qde")).unwrap();
    assert!(
        qde.contains("path=\"relative:///../grabaciones/grupo focal ñ.wav\""),
        "{qde}"
    );
    let base = std::fs::canonicalize(&out).unwrap();
    assert!(
        qde.contains(&format!("basePath=\"{}\"", base.display())),
        "{qde}"
    );
    // basePath + the relative part names the recording (how QualCoder resolves it).
    let resolved = format!("{}/../grabaciones/grupo focal ñ.wav", base.display());
    assert!(Path::new(&resolved).is_file(), "{resolved}");
    assert_eq!(zip_names(&path).len(), 4, "no audio inside");
}

/// Every element that can carry dates and users does, and the users are declared.
#[test]
fn every_element_is_dated_and_attributed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_valid_qdpx(dir.path(), &focus_group_project(), &QdpxOptions::default());
    let qde = String::from_utf8(zip_member(&path, "project.qde")).unwrap();
    let user = guid_for("user", "qualscribe");
    assert!(qde.contains(&format!("<User guid=\"{user}\"")), "{qde}");
    let mut seen = HashMap::new();
    for element in qde.split('<').skip(1) {
        let name: String = element
            .chars()
            .take_while(|c| c.is_alphanumeric())
            .collect();
        let full = [
            "TextSource",
            "PlainTextSelection",
            "AudioSource",
            "Transcript",
            "Note",
        ];
        if full.contains(&name.as_str()) {
            for attr in [
                format!("creatingUser=\"{user}\""),
                "creationDateTime=\"2026-11-30T10:00:00Z\"".to_string(),
                format!("modifyingUser=\"{user}\""),
                "modifiedDateTime=\"2026-12-01T09:30:15Z\"".to_string(),
            ] {
                assert!(element.contains(&attr), "<{element} lacks {attr}");
            }
        }
        if name == "Coding" {
            assert!(
                element.contains(&format!("creatingUser=\"{user}\""))
                    && element.contains("creationDateTime=\"2026-11-30T10:00:00Z\""),
                "<{element}"
            );
        }
        if name == "Project" {
            assert!(
                element.contains("creationDateTime=\"2026-11-30T10:00:00Z\"")
                    && element.contains("modifiedDateTime=\"2026-12-01T09:30:15Z\"")
                    && element.contains(&format!("modifyingUserGUID=\"{user}\"")),
                "<{element}"
            );
        }
        *seen.entry(name).or_insert(0) += 1;
    }
    for (name, n) in [
        ("TextSource", 1),
        ("PlainTextSelection", 16),
        ("Coding", 16),
        ("AudioSource", 1),
        ("Transcript", 1),
        ("Note", 6),
    ] {
        assert_eq!(seen.get(name), Some(&n), "{name} count");
    }
}

#[test]
fn identical_input_gives_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.qdpx"), dir.path().join("b.qdpx"));
    write_qdpx(&a, &focus_group_project()).unwrap();
    write_qdpx(&b, &focus_group_project()).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let (c, d) = (dir.path().join("c.qdc"), dir.path().join("d.qdc"));
    write_qdc(&c, &nested_codes(), ORIGIN).unwrap();
    write_qdc(&d, &nested_codes(), ORIGIN).unwrap();
    assert_eq!(std::fs::read(&c).unwrap(), std::fs::read(&d).unwrap());
}

// ---------------------------------------------------------------- errors

#[test]
fn unwritable_path_is_one_line_naming_the_file() {
    let qdpx = Path::new("/nonexistent-dir/proyecto.qdpx");
    let qdc = Path::new("/nonexistent-dir/codigos.qdc");
    for (e, path) in [
        (write_qdpx(qdpx, &focus_group_project()).unwrap_err(), qdpx),
        (write_qdc(qdc, &nested_codes(), ORIGIN).unwrap_err(), qdc),
    ] {
        let msg = e.to_string();
        assert!(matches!(e, QdaError::Write(_)), "{e:?}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
    let missing = read_qdpx(Path::new("/nonexistent-dir/x.qdpx"))
        .unwrap_err()
        .to_string();
    assert!(
        missing.starts_with("cannot read /nonexistent-dir/x.qdpx"),
        "{missing}"
    );
}

#[test]
fn reading_something_else_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let not_zip = dir.path().join("not.qdpx");
    std::fs::write(&not_zip, "hola").unwrap();
    let e = read_qdpx(&not_zip).unwrap_err();
    assert!(
        matches!(e, QdaError::Zip { .. }) && e.to_string().contains("not.qdpx"),
        "{e}"
    );
    let project_as_codebook = dir.path().join("p.qdc");
    std::fs::write(
        &project_as_codebook,
        "<Project xmlns=\"urn:QDA-XML:project:1.0\" name=\"x\"/>",
    )
    .unwrap();
    let e = read_qdc(&project_as_codebook).unwrap_err().to_string();
    assert!(
        e.contains("p.qdc") && e.contains("expected {urn:QDA-XML:codebook:1.0}CodeBook"),
        "{e}"
    );
    let broken = dir.path().join("broken.qdc");
    std::fs::write(
        &broken,
        "<CodeBook xmlns=\"urn:QDA-XML:codebook:1.0\"><Codes>",
    )
    .unwrap();
    let e = read_qdc(&broken).unwrap_err();
    assert!(
        matches!(e, QdaError::Xml { .. }) && e.to_string().contains("broken.qdc"),
        "{e}"
    );
}

#[test]
fn input_the_standard_cannot_express_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.qdpx");
    let refuse = |change: &dyn Fn(&mut QdaProject)| -> String {
        let mut p = focus_group_project();
        change(&mut p);
        let e = write_qdpx(&out, &p).unwrap_err().to_string();
        assert!(!out.exists(), "nothing written when the input is refused");
        e
    };
    let chars = focus_group_project().sources[0].text.chars().count();
    let e = refuse(&|p| p.codings[0].end = chars + 1);
    assert!(e.contains(&format!("has {chars} characters")), "{e}");
    let e = refuse(&|p| p.codings[0].code_guid = guid_for("code", "nada"));
    assert!(e.contains("refers to unknown code"), "{e}");
    let e = refuse(&|p| p.sources[0].audio_path = None);
    assert!(e.contains("has sync points but no audio_path"), "{e}");
    let e = refuse(&|p| p.cases[0].guid = "speaker-1".to_string());
    assert!(e.contains("invalid GUID \"speaker-1\""), "{e}");
    let e = refuse(&|p| p.codes[0].color = Some("red".to_string()));
    assert!(e.contains("invalid color \"red\""), "{e}");
    let e = refuse(&|p| p.cases[1].guid = p.cases[0].guid.to_uppercase());
    assert!(e.contains("is used twice"), "{e}");
    let e = refuse(&|p| p.sources[0].audio_path = Some(PathBuf::from("/nonexistent-dir/a.wav")));
    assert!(e.starts_with("cannot read /nonexistent-dir/a.wav"), "{e}");
    let e = refuse(&|p| p.dates.created = "yesterday".to_string());
    assert!(e.contains("\"yesterday\" is not an xs:dateTime"), "{e}");
    let e = write_qdc(&dir.path().join("empty.qdc"), &[], ORIGIN)
        .unwrap_err()
        .to_string();
    assert!(e.contains("would have no codes"), "{e}");
}

// ---------------------------------------------------------------- independent check

/// Runs `scripts/check-qdpx.py` (Python stdlib, its own zip/XML/offset code) on `path`.
fn python_check(path: &Path) -> (bool, String) {
    let out = Command::new("python3")
        .arg(project("scripts/check-qdpx.py"))
        .arg(path)
        .output()
        .expect("python3 runs scripts/check-qdpx.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn python_checker_confirms_every_selection() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_valid_qdpx(dir.path(), &focus_group_project(), &QdpxOptions::default());
    let (ok, report) = python_check(&path);
    assert!(ok, "{report}");
    assert!(report.contains("16 selections"), "{report}");
    assert!(report.contains("23 sync points"), "{report}");

    // The checker is not vacuous: byte offsets (the classic bug) are caught. Every turn after
    // the first accented character is shifted, so at least one selection must mismatch.
    let mut bytes = focus_group_project();
    let text = bytes.sources[0].text.clone();
    let byte_of: HashMap<usize, usize> = text
        .char_indices()
        .enumerate()
        .map(|(c, (b, _))| (c, b))
        .collect();
    // The first turns lie early enough that their byte offsets still fall inside the text.
    bytes.codings.truncate(4);
    for c in &mut bytes.codings {
        c.start = byte_of[&c.start];
        c.end = byte_of[&c.end];
    }
    let bad = dir.path().join("bytes.qdpx");
    write_qdpx(&bad, &bytes).unwrap();
    let (ok, report) = python_check(&bad);
    assert!(!ok, "checker accepted byte offsets:\n{report}");
    assert!(report.contains("mismatch"), "{report}");
}
