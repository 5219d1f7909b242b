//! The review page's server on a real port, spoken to with a few lines of raw HTTP: the token and
//! Host checks, path traversal, byte ranges on audio, actions, undo and export, and the
//! `qualscribe review` command itself. No models: the fixture is a small synthetic output folder
//! pointing at a real audio file of the repository.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use qualscribe::codes::{CodeProposal, Codebook, Quote};
use qualscribe::export::analysis_json::{self, AnalysisArtifact, PassageVectors, ThemeMembers};
use qualscribe::passages::{
    FileInfo, Passage, Passages, Role, TextSpan, TextTurn, transcript_from_turns,
};
use qualscribe::review::{PROJECT_DB, Project, ReviewServer, ServeOptions};
use qualscribe::transcript::{Transcript, UntranscribedReason, UntranscribedSpan};
use serde_json::{Value, json};
use support::{project, qualscribe_bin};

const AUDIO: &str = "audio_samples/fleurs-en-000.ogg";
/// A second recording whose id needs percent-encoding in a URL.
const ODD_URI: &str = "grupo focal ñ";

const LINES: [(&str, &str); 4] = [
    ("SPEAKER_00", "We talk about the weather today."),
    ("SPEAKER_01", "The rain was heavy in the north."),
    ("SPEAKER_00", "Prices at the market went up again."),
    ("SPEAKER_01", "Food costs more than last year."),
];

/// The lines as 3-second turns, pointing at the real audio file.
fn transcript(uri: &str) -> Transcript {
    let turns: Vec<TextTurn> = LINES
        .iter()
        .enumerate()
        .map(|(i, (speaker, text))| TextTurn {
            speaker: speaker.to_string(),
            start_ms: i as u64 * 3000,
            end_ms: i as u64 * 3000 + 2600,
            text: text.to_string(),
        })
        .collect();
    let mut t = transcript_from_turns(uri, "en", &turns);
    t.source.path = project(AUDIO).display().to_string();
    t.source.duration_ms = 12_000;
    t
}

/// Hand-made unit "text vectors" of the four lines: weather lines near one axis, price lines
/// near another (this file uses no models).
const VECTORS: [[f32; 3]; 4] = [
    [0.96, 0.28, 0.0],
    [0.96, 0.0, 0.28],
    [0.28, 0.96, 0.0],
    [0.0, 0.96, 0.28],
];

/// One passage per line; theme 0 = weather (passages 0, 1), theme 1 = prices (2, 3).
fn analysis(t: &Transcript) -> AnalysisArtifact {
    let full = t.text();
    let passages: Vec<Passage> = t
        .segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let at = full
                .find(&s.text)
                .expect("segment text is in the transcript");
            Passage {
                id: i,
                file: 0,
                uri: t.uri.clone(),
                speaker: s.speaker.clone(),
                turn: i,
                role: Role::Content,
                start_ms: s.start_ms,
                end_ms: s.end_ms,
                span: TextSpan {
                    byte_start: at,
                    byte_end: at + s.text.len(),
                    char_start: at,
                    char_end: at + s.text.len(),
                },
                text: s.text.clone(),
                words: s.words.len(),
            }
        })
        .collect();
    let code = |theme: usize, label: &str, keywords: &[&str], quote: &Passage| CodeProposal {
        theme,
        label: label.to_string(),
        keywords: keywords.iter().map(|k| k.to_string()).collect(),
        definition: format!("Talk about {label}."),
        include: String::new(),
        exclude: String::new(),
        quotes: vec![Quote {
            passage: quote.id,
            uri: quote.uri.clone(),
            speaker: quote.speaker.clone(),
            start_ms: quote.start_ms,
            end_ms: quote.end_ms,
            span: quote.span,
            text: quote.text.clone(),
            similarity: 0.8,
        }],
        seed: None,
        passages: 2,
        speakers: 2,
        files: 1,
    };
    let codebook = Codebook {
        codes: vec![
            code(0, "weather", &["rain", "weather"], &passages[1]),
            code(1, "cost of living", &["prices", "food"], &passages[2]),
        ],
        language: "en".to_string(),
    };
    AnalysisArtifact {
        schema: analysis_json::SCHEMA_NAME.to_string(),
        schema_version: analysis_json::SCHEMA_VERSION,
        themes: vec![
            ThemeMembers {
                key: "T1".to_string(),
                members: vec![0, 1],
            },
            ThemeMembers {
                key: "T2".to_string(),
                members: vec![2, 3],
            },
        ],
        passages: Passages {
            passages,
            files: vec![FileInfo {
                uri: t.uri.clone(),
                moderator: None,
                language: "en".to_string(),
            }],
        },
        codebook,
        vectors: Some(PassageVectors::pack(
            3,
            VECTORS.iter().enumerate().map(|(i, v)| (i, &v[..])),
        )),
        text_model: None,
        code_text_vectors: None,
    }
}

/// A `qualscribe run` output folder: two transcripts (one with an odd id) and `analysis.json`.
fn output_folder() -> tempfile::TempDir {
    output_folder_with(true)
}

/// The output folder, with or without the passage vectors (an analysis from before they were
/// stored).
fn output_folder_with(vectors: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let main = transcript("fleurs-en-000");
    for t in [&main, &transcript(ODD_URI)] {
        let json = serde_json::to_string_pretty(t).unwrap();
        std::fs::write(dir.path().join(format!("{}.transcript.json", t.uri)), json).unwrap();
    }
    let mut a = analysis(&main);
    if !vectors {
        a.vectors = None;
    }
    let a = serde_json::to_string_pretty(&a).unwrap();
    std::fs::write(dir.path().join(analysis_json::ANALYSIS_FILE), a).unwrap();
    dir
}

struct Fixture {
    dir: tempfile::TempDir,
    server: Option<ReviewServer>,
    port: u16,
    token: String,
}

impl Fixture {
    fn start() -> Fixture {
        Fixture::start_with(ServeOptions::default().threads)
    }

    /// A server answering at most `connections` connections at a time.
    fn start_with(connections: usize) -> Fixture {
        Fixture::serve(output_folder(), connections)
    }

    /// A server on the project imported from the output folder `dir`.
    fn serve(dir: tempfile::TempDir, connections: usize) -> Fixture {
        let mut project = Project::open(&dir.path().join(PROJECT_DB)).unwrap();
        project.import_output(dir.path(), "test").unwrap();
        let opts = ServeOptions {
            who: "tester".to_string(),
            threads: connections,
            ..ServeOptions::default()
        };
        let server = ReviewServer::start(project, &opts).unwrap();
        let (port, token) = parse_url(server.url());
        Fixture {
            dir,
            server: Some(server),
            port,
            token,
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `path` under `/<token>/`.
    fn get(&self, path: &str) -> Resp {
        self.send("GET", &format!("/{}/{path}", self.token), &[], None)
    }

    fn post(&self, path: &str, body: &Value) -> Resp {
        let body = body.to_string();
        self.send(
            "POST",
            &format!("/{}/{path}", self.token),
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        )
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let host = self.host();
        let mut all = vec![("Host", host.as_str())];
        all.extend_from_slice(headers);
        http(self.port, method, path, &all, body)
    }

    fn overview(&self) -> Value {
        let r = self.get("api/overview");
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }
}

/// `http://127.0.0.1:PORT/TOKEN/` → (port, token).
fn parse_url(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://127.0.0.1:").expect(url);
    let (port, token) = rest.split_once('/').expect(url);
    let token = token.trim_end_matches('/');
    assert_eq!(token.len(), 32, "token of 32 hex chars: {url}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{url}");
    (port.parse().unwrap(), token.to_string())
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

/// One request on its own connection; the response body is read by its Content-Length.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    if let Some(b) = body {
        s.write_all(b).unwrap();
    }
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    assert!(
        !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("Transfer-Encoding")),
        "responses carry a Content-Length"
    );
    let mut body = vec![0; if method == "HEAD" { 0 } else { len }];
    r.read_exact(&mut body).unwrap();
    Resp {
        status,
        headers,
        body,
    }
}

fn code_by_label<'a>(ov: &'a Value, label: &str) -> &'a Value {
    code_by_label_opt(ov, label).unwrap_or_else(|| panic!("no code {label} in {ov}"))
}

fn code_by_label_opt<'a>(ov: &'a Value, label: &str) -> Option<&'a Value> {
    ov["themes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["codes"].as_array().unwrap())
        .find(|c| c["label"] == label)
}

#[test]
fn token_is_required() {
    let f = Fixture::start();
    assert_eq!(f.get("api/overview").status, 200);
    let wrong = {
        let mut t = f.token.clone().into_bytes();
        t[31] = if t[31] == b'0' { b'1' } else { b'0' };
        String::from_utf8(t).unwrap()
    };
    for path in [
        "/".to_string(),
        "/api/overview".to_string(),
        "/app.js".to_string(),
        format!("/{wrong}/"),
        format!("/{wrong}/api/overview"),
        format!("/{}/api/overview", &f.token[..31]),
        format!("/{}0/api/overview", f.token),
        format!("/{}/api/overview", f.token.to_uppercase()),
        format!("/x/{}/api/overview", f.token),
        "/audio/fleurs-en-000".to_string(),
    ] {
        let r = f.send("GET", &path, &[], None);
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(r.text(), "forbidden", "403 says nothing else: {path}");
    }
    let r = f.send(
        "POST",
        &format!("/{wrong}/api/action"),
        &[],
        Some(br#"{"action":"accept","code":1}"#),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        code_by_label(&f.overview(), "weather")["status"],
        "proposed"
    );
}

#[test]
fn host_and_origin_are_checked() {
    let f = Fixture::start();
    let path = format!("/{}/api/overview", f.token);
    let ok_hosts = [f.host(), format!("localhost:{}", f.port)];
    for host in &ok_hosts {
        let r = http(f.port, "GET", &path, &[("Host", host)], None);
        assert_eq!(r.status, 200, "{host}");
    }
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{}", f.port),
        format!("127.0.0.1:{}", f.port + 1),
        format!("127.0.0.1.evil.example:{}", f.port),
        "127.0.0.1".to_string(),
    ] {
        let r = http(f.port, "GET", &path, &[("Host", &host)], None);
        assert_eq!(r.status, 403, "{host}");
    }
    // No Host at all.
    assert_eq!(http(f.port, "GET", &path, &[], None).status, 403);
    // A cross-site page posting an action.
    let r = f.send(
        "POST",
        &format!("/{}/api/action", f.token),
        &[("Origin", "http://evil.example")],
        Some(br#"{"action":"accept","code":1}"#),
    );
    assert_eq!(r.status, 403);
    let origin = format!("http://{}", f.host());
    let r = f.send(
        "POST",
        &format!("/{}/api/action", f.token),
        &[("Origin", &origin)],
        Some(br#"{"action":"accept","code":1}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn page_and_assets() {
    let f = Fixture::start();
    let r = f.get("");
    assert_eq!(r.status, 200);
    assert!(r.header("Content-Type").unwrap().starts_with("text/html"));
    assert!(
        r.text().contains(r#"<html lang="es">"#),
        "Spanish by default"
    );
    assert!(
        r.header("Content-Security-Policy")
            .unwrap()
            .contains("default-src 'self'")
    );
    assert_eq!(r.header("Referrer-Policy"), Some("no-referrer"));
    assert!(f.get("?lang=en").text().contains(r#"<html lang="en">"#));
    assert!(f.get("?lang=xx").text().contains(r#"<html lang="es">"#));
    let js = f.get("app.js");
    assert_eq!(js.status, 200);
    assert!(
        js.header("Content-Type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.text().contains("api/overview"));
    let css = f.get("style.css");
    assert!(css.header("Content-Type").unwrap().starts_with("text/css"));
    // Nothing on the page comes from the network.
    for body in [r.text(), js.text(), css.text()] {
        assert!(
            !body.contains("https://") && !body.contains("http://"),
            "{body}"
        );
    }
    let r = f.send("GET", &format!("/{}", f.token), &[], None);
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("Location"),
        Some(format!("/{}/", f.token).as_str())
    );
    assert_eq!(f.get("nope").status, 404);
    assert_eq!(
        f.send("DELETE", &format!("/{}/api/overview", f.token), &[], None)
            .status,
        405
    );
}

#[test]
fn paths_cannot_escape_the_store() {
    let f = Fixture::start();
    let t = &f.token;
    for path in [
        format!("/{t}/audio/..%2F..%2Fetc%2Fpasswd"),
        format!("/{t}/audio/../../etc/passwd"),
        format!("/{t}/../etc/passwd"),
        format!("/{t}/audio/%2Fetc%2Fpasswd"),
        format!("/{t}/audio/..%2F{}", PROJECT_DB),
        format!("/{t}/audio/{}", PROJECT_DB),
        format!("/{t}/audio/unknown"),
        format!("/{t}/audio/"),
        format!("/{t}/api/transcript/..%2F..%2Fetc%2Fpasswd"),
        format!("/{t}/api/transcript/unknown"),
    ] {
        let r = f.send("GET", &path, &[], None);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(!r.text().contains("root:"), "{path}");
        assert!(!r.text().contains("SQLite"), "{path}");
    }
    // A bad escape is a bad request, not a lookup.
    assert_eq!(f.get("audio/%ZZ").status, 400);
    assert_eq!(f.get("audio/%FF").status, 400);
}

#[test]
fn audio_with_byte_ranges() {
    let f = Fixture::start();
    let bytes = std::fs::read(project(AUDIO)).unwrap();
    let len = bytes.len();
    let full = f.get("audio/fleurs-en-000");
    assert_eq!(full.status, 200);
    assert_eq!(full.header("Accept-Ranges"), Some("bytes"));
    assert_eq!(full.header("Content-Type"), Some("audio/ogg"));
    assert!(full.body == bytes, "whole file");

    let range = |r: &str| {
        f.send(
            "GET",
            &format!("/{}/audio/fleurs-en-000", f.token),
            &[("Range", r)],
            None,
        )
    };
    let r = range("bytes=0-99");
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes 0-99/{len}").as_str())
    );
    assert_eq!(r.header("Content-Length"), Some("100"));
    assert!(r.body == bytes[..100]);

    let r = range("bytes=1000-");
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes 1000-{}/{len}", len - 1).as_str())
    );
    assert!(r.body == bytes[1000..]);

    let r = range("bytes=-500");
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes {}-{}/{len}", len - 500, len - 1).as_str())
    );
    assert!(r.body == bytes[len - 500..]);

    let r = range(&format!("bytes=100-{}", len + 10_000));
    assert_eq!(r.status, 206, "an end past the file means to the end");
    assert!(r.body == bytes[100..]);

    for outside in [
        format!("bytes={len}-"),
        format!("bytes={}-{}", len + 1, len + 5),
        "bytes=-0".to_string(),
    ] {
        let r = range(&outside);
        assert_eq!(r.status, 416, "{outside}");
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes */{len}").as_str())
        );
    }
    // Malformed or several ranges: ignored, the whole file (RFC 9110 §14.2).
    for ignored in [
        "bytes=50-10",
        "bytes=x-y",
        "lines=0-1",
        "bytes=0-1,5-9",
        "bytes=0-99, 200-299",
        "bytes=",
    ] {
        let r = range(ignored);
        assert_eq!(r.status, 200, "{ignored}");
        assert!(r.body == bytes, "{ignored}");
    }

    // An id with a space and a non-ASCII letter, percent-encoded as browsers send it.
    let r = f.get("audio/grupo%20focal%20%C3%B1");
    assert_eq!(r.status, 200);
    assert!(r.body == bytes);
    let r = f.get("api/transcript/grupo%20focal%20%C3%B1");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["uri"], ODD_URI);
}

#[test]
fn actions_undo_audit_and_export() {
    let f = Fixture::start();
    let ov = f.overview();
    assert_eq!(ov["can_undo"], false);
    let weather = code_by_label(&ov, "weather")["id"].as_i64().unwrap();
    let cost = code_by_label(&ov, "cost of living")["id"].as_i64().unwrap();
    assert_eq!(code_by_label(&ov, "weather")["status"], "proposed");

    let ov = f
        .post("api/action", &json!({"action": "accept", "code": weather}))
        .json();
    assert_eq!(code_by_label(&ov, "weather")["status"], "accepted");
    assert_eq!(ov["can_undo"], true);

    let ov = f
        .post(
            "api/action",
            &json!({"action": "rename", "code": weather, "label": "Clima y lluvia"}),
        )
        .json();
    assert_eq!(code_by_label(&ov, "Clima y lluvia")["id"], weather);

    let ov = f
        .post(
            "api/action",
            &json!({"action": "merge", "into": weather, "from": [cost]}),
        )
        .json();
    assert_eq!(code_by_label(&ov, "cost of living")["status"], "merged");
    assert_eq!(code_by_label(&ov, "cost of living")["merged_into"], weather);
    assert_eq!(
        code_by_label(&ov, "Clima y lluvia")["passages"]
            .as_array()
            .unwrap()
            .len(),
        4
    );

    // Mistakes are 400 with a message, and change nothing.
    for (body, needle) in [
        (json!({"action": "accept", "code": 999}), "no code 999"),
        (
            json!({"action": "rename", "code": weather, "label": "  "}),
            "cannot be empty",
        ),
        (json!({"action": "explode"}), "not a review action"),
        (json!({"code": 1}), "not a review action"),
    ] {
        let r = f.post("api/action", &body);
        assert_eq!(r.status, 400, "{body}");
        assert!(
            r.json()["error"].as_str().unwrap().contains(needle),
            "{}",
            r.text()
        );
    }
    let r = f.send(
        "POST",
        &format!("/{}/api/action", f.token),
        &[],
        Some(b"{not json"),
    );
    assert_eq!(r.status, 400);

    // Undo takes back the merge only.
    let r = f.send("POST", &format!("/{}/api/undo", f.token), &[], None);
    assert_eq!(r.status, 200);
    let ov = r.json();
    assert_eq!(code_by_label(&ov, "cost of living")["status"], "proposed");
    assert_eq!(
        code_by_label(&ov, "Clima y lluvia")["passages"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(f.overview()["themes"], ov["themes"], "the undo is stored");

    let audit = f.get("api/audit").json();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["import", "accept", "rename", "merge", "undo"]);
    assert!(
        audit.as_array().unwrap()[1..]
            .iter()
            .all(|e| e["who"] == "tester")
    );

    // Transcript edits and speaker names through the same endpoint.
    let tv = f.get("api/transcript/fleurs-en-000").json();
    let seg = tv["segments"][0]["id"].as_i64().unwrap();
    f.post("api/action", &json!({"action": "edit_segment", "segment": seg, "text": "We talk about the climate today."}));
    f.post("api/action", &json!({"action": "rename_speaker", "uri": "fleurs-en-000", "label": "SPEAKER_00", "name": "Ana"}));
    let tv = f.get("api/transcript/fleurs-en-000").json();
    assert_eq!(
        tv["segments"][0]["text"],
        "We talk about the climate today."
    );
    assert_eq!(tv["segments"][0]["edited"], true);
    assert_eq!(tv["segments"][0]["speaker"], "Ana");

    // Merge again, then export into <folder>/reviewed/.
    f.post(
        "api/action",
        &json!({"action": "merge", "into": weather, "from": [cost]}),
    );
    let r = f.send("POST", &format!("/{}/api/export", f.token), &[], None);
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    let reviewed = f.dir.path().join("reviewed");
    assert_eq!(PathBuf::from(out["dir"].as_str().unwrap()), reviewed);
    assert!(out["paths"].as_array().unwrap().len() >= 4);
    let md = std::fs::read_to_string(reviewed.join("codes.md")).unwrap();
    assert!(md.contains("Clima y lluvia"), "{md}");
    assert!(
        !md.contains("cost of living"),
        "merged-away code is gone: {md}"
    );
    assert!(reviewed.join("project.qdpx").is_file());
}

/// Passage row id of the line starting with `start` in the overview.
fn passage_id(ov: &Value, start: &str) -> i64 {
    ov["themes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["codes"].as_array().unwrap())
        .flat_map(|c| c["passages"].as_array().unwrap())
        .find(|p| p["text"].as_str().unwrap().starts_with(start))
        .unwrap_or_else(|| panic!("no passage {start}"))["id"]
        .as_i64()
        .unwrap()
}

fn suggested(f: &Fixture, code: i64) -> Vec<(i64, Option<i64>)> {
    let r = f.get(&format!("api/suggestions?code={code}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["passage"].as_i64().unwrap(), s["code_now"].as_i64()))
        .collect()
}

#[test]
fn suggestions_follow_each_move_without_a_rerun() {
    let f = Fixture::start();
    let ov = f.overview();
    let weather = code_by_label(&ov, "weather")["id"].as_i64().unwrap();
    let cost = code_by_label(&ov, "cost of living")["id"].as_i64().unwrap();
    let rain = passage_id(&ov, "The rain");
    let food = passage_id(&ov, "Food costs");
    // The machine's codes are right: nothing to suggest.
    assert_eq!(suggested(&f, weather), []);
    assert_eq!(suggested(&f, cost), []);

    // A reviewer's slip: the rain line is moved to prices. A passage a reviewer placed is
    // never pulled elsewhere…
    f.post(
        "api/action",
        &json!({"action": "move", "passage": rain, "from": weather, "to": cost}),
    );
    assert_eq!(suggested(&f, weather), []);
    // …but the machine's own passages are: after undoing, move the rain line with `split`
    // (which keeps it a machine placement) into a new code, then merge that into prices.
    f.post("api/undo", &json!({}));
    let ov = f
        .post(
            "api/action",
            &json!({"action": "split", "code": weather, "passages": [rain], "label": "tmp"}),
        )
        .json();
    let tmp = code_by_label(&ov, "tmp")["id"].as_i64().unwrap();
    f.post(
        "api/action",
        &json!({"action": "merge", "into": cost, "from": [tmp]}),
    );
    let r = f.get(&format!("api/suggestions?code={weather}"));
    let s = r.json();
    assert_eq!(s["examples"], 1, "{s}");
    assert_eq!(s["suggestions"][0]["passage"], rain, "{s}");
    assert_eq!(s["suggestions"][0]["code_now"], cost, "{s}");
    let confidence = s["suggestions"][0]["confidence"].as_f64().unwrap();
    assert!(confidence > 0.5 && confidence <= 1.0, "{s}");
    assert_eq!(suggested(&f, cost), []);

    // Accepting the suggestion is an ordinary move; the suggestions update at once.
    let ov = f
        .post(
            "api/action",
            &json!({"action": "move", "passage": rain, "from": cost, "to": weather}),
        )
        .json();
    assert_eq!(
        code_by_label(&ov, "weather")["passages"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(suggested(&f, weather), []);

    // "New code from this passage": the food line starts its own code, accepted; undo takes
    // it back and the line returns to prices.
    let ov = f
        .post(
            "api/action",
            &json!({"action": "new_code", "label": "food", "passage": food, "from": cost}),
        )
        .json();
    let food_code = code_by_label(&ov, "food");
    assert_eq!(food_code["status"], "accepted");
    assert_eq!(food_code["passages"][0]["id"], food);
    let r = f.get(&format!("api/suggestions?code={}", food_code["id"]));
    assert_eq!(r.json()["examples"], 1, "{}", r.text());
    let r = f.post(
        "api/action",
        &json!({"action": "new_code", "label": "again", "passage": food, "from": cost}),
    );
    assert_eq!(
        r.status,
        400,
        "the line is no longer in prices: {}",
        r.text()
    );
    let ov = f
        .send("POST", &format!("/{}/api/undo", f.token), &[], None)
        .json();
    assert!(code_by_label_opt(&ov, "food").is_none());
    assert_eq!(
        code_by_label(&ov, "cost of living")["passages"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Bad requests.
    assert_eq!(f.get("api/suggestions").status, 400);
    assert_eq!(f.get("api/suggestions?code=999").status, 400);
    f.post("api/action", &json!({"action": "reject", "code": cost}));
    let r = f.get(&format!("api/suggestions?code={cost}"));
    assert_eq!(r.status, 400);
    assert!(r.text().contains("rejected"), "{}", r.text());
    let chances = f.get(&format!("api/passage-codes?passage={rain}")).json();
    assert_eq!(chances[0]["code"], weather, "{chances}");
}

#[test]
fn a_project_without_vectors_opens_and_says_to_rerun_themes() {
    let f = Fixture::serve(output_folder_with(false), ServeOptions::default().threads);
    let ov = f.overview();
    let weather = code_by_label(&ov, "weather")["id"].as_i64().unwrap();
    let r = f.get(&format!("api/suggestions?code={weather}"));
    assert_eq!(r.status, 409);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("re-run `qualscribe themes`"),
        "{}",
        r.text()
    );
    // Everything else works as before.
    let r = f.post("api/action", &json!({"action": "accept", "code": weather}));
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn untranscribed_speech_is_listed_playable_and_typed_text_is_exported() {
    // The main recording with the speech after its last turn left untranscribed.
    let dir = output_folder();
    let mut t = transcript("fleurs-en-000");
    t.untranscribed.push(UntranscribedSpan {
        start_ms: 11_700,
        end_ms: 12_000,
        reason: UntranscribedReason::NothingDecoded,
    });
    let json = serde_json::to_string_pretty(&t).unwrap();
    std::fs::write(dir.path().join("fleurs-en-000.transcript.json"), json).unwrap();
    let f = Fixture::serve(dir, ServeOptions::default().threads);

    let tv = f.get("api/transcript/fleurs-en-000").json();
    let rows = tv["segments"].as_array().unwrap();
    let row = rows.iter().find(|s| s.get("inaudible").is_some()).unwrap();
    assert_eq!(row["inaudible"], "[inaudible 00:00:11–00:00:12]");
    assert_eq!(
        (row["start_ms"].as_i64(), row["end_ms"].as_i64()),
        (Some(11_700), Some(12_000))
    );
    assert_eq!(row["text"], "");
    assert_eq!(
        rows.iter().filter(|s| s.get("inaudible").is_some()).count(),
        1
    );
    // Ordinary segments carry no mark; rows come in time order.
    assert!(
        rows.windows(2)
            .all(|w| w[0]["start_ms"].as_i64() <= w[1]["start_ms"].as_i64())
    );

    let typed = "and they all went home early";
    let r = f.post(
        "api/action",
        &json!({"action": "edit_segment", "segment": row["id"], "text": typed}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let tv = f.get("api/transcript/fleurs-en-000").json();
    let row = tv["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s.get("inaudible").is_some())
        .unwrap()
        .clone();
    assert_eq!(
        (row["text"].as_str(), row["edited"].as_bool()),
        (Some(typed), Some(true))
    );

    let r = f.send("POST", &format!("/{}/api/export", f.token), &[], None);
    assert_eq!(r.status, 200, "{}", r.text());
    let reviewed = f.dir.path().join("reviewed/transcripts");
    let txt = std::fs::read_to_string(reviewed.join("fleurs-en-000.txt")).unwrap();
    assert!(txt.contains(typed) && !txt.contains("[inaudible"), "{txt}");
    let srt = std::fs::read_to_string(reviewed.join("fleurs-en-000.srt")).unwrap();
    assert!(srt.contains(typed) && !srt.contains("[inaudible"), "{srt}");
}

#[test]
fn parallel_requests() {
    let f = Fixture::start();
    let (port, token, host) = (f.port, f.token.clone(), f.host());
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (token, host) = (token.clone(), host.clone());
            std::thread::spawn(move || {
                let path = if i % 2 == 0 {
                    format!("/{token}/api/overview")
                } else {
                    format!("/{token}/audio/fleurs-en-000")
                };
                (0..5)
                    .map(|_| http(port, "GET", &path, &[("Host", &host)], None).status)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap().iter().all(|&s| s == 200));
    }
}

fn review_cmd(folder: &Path) -> Command {
    let mut c = Command::new(qualscribe_bin());
    c.arg("review").arg(folder);
    c
}

#[test]
fn cli_export_only_keeps_decisions() {
    let dir = output_folder();
    {
        let mut p = Project::open(&dir.path().join(PROJECT_DB)).unwrap();
        p.import_output(dir.path(), "test").unwrap();
        let ov = p.overview().unwrap();
        let id = ov.themes[1].codes[0].id;
        p.apply(&qualscribe::review::Action::Reject { code: id }, "test")
            .unwrap();
    }
    let out = review_cmd(dir.path())
        .arg("--export-only")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(dir.path().join("reviewed/codes.md")).unwrap();
    assert!(md.contains("weather"), "{md}");
    assert!(
        !md.contains("cost of living"),
        "the rejection survived the re-import: {md}"
    );

    let out = review_cmd(&dir.path().join("missing"))
        .arg("--export-only")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a folder"));
}

#[test]
fn cli_serves_and_prints_the_url() {
    let dir = output_folder();
    let mut child = review_cmd(dir.path())
        .args(["--no-browser", "--lang", "en"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("review page: ")
        .unwrap_or_else(|| panic!("first stdout line: {line:?}"))
        .to_string();
    let (port, token) = parse_url(&url);
    let host = format!("127.0.0.1:{port}");
    let page = http(port, "GET", &format!("/{token}/"), &[("Host", &host)], None);
    let ov = http(
        port,
        "GET",
        &format!("/{token}/api/overview"),
        &[("Host", &host)],
        None,
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(page.status, 200);
    assert!(page.text().contains(r#"<html lang="en">"#));
    assert_eq!(ov.status, 200);
    assert!(dir.path().join(PROJECT_DB).is_file());
}

/// Issue 14, repro 6: a 300 MB header line and 10 MB URLs were read to the end before the token
/// was even looked at. Now they are refused at the limit, quickly.
#[test]
fn oversized_requests_are_refused_at_the_limit() {
    let f = Fixture::start();
    let started = std::time::Instant::now();
    let long_url = format!("/{}/api/overview?{}", f.token, "a".repeat(100_000));
    let r = raw(
        f.port,
        format!("GET {long_url} HTTP/1.1\r\nHost: {}\r\n\r\n", f.host()).as_bytes(),
    );
    assert!(r.starts_with("HTTP/1.1 414"), "{r}");
    // A header line that never ends: the server stops reading at its limit and answers.
    let mut s = TcpStream::connect(("127.0.0.1", f.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(format!("GET /{}/ HTTP/1.1\r\nX-Big: ", f.token).as_bytes());
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..16 {
        if s.write_all(&chunk).is_err() {
            break; // the server has closed its side: fine
        }
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(f.get("api/overview").status, 200);
}

/// Writes `request` on a new connection and returns all that comes back.
fn raw(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(request);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// Issue 14, repro 7: four stalled clients (an audio download that stops reading, a POST that
/// trickles one byte a second) took every worker and the page stopped answering.
#[test]
fn stalled_clients_do_not_block_the_page() {
    let f = Fixture::start();
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(("127.0.0.1", f.port)).unwrap();
        let req = format!(
            "GET /{}/audio/fleurs-en-000 HTTP/1.1\r\nHost: {}\r\nRange: bytes=0-\r\n\r\n",
            f.token,
            f.host()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut first = [0u8; 100];
        s.read_exact(&mut first).unwrap();
        stalled.push(s); // and never read again
    }
    for _ in 0..4 {
        let mut s = TcpStream::connect(("127.0.0.1", f.port)).unwrap();
        let req = format!(
            "POST /{}/api/action HTTP/1.1\r\nHost: {}\r\nContent-Length: 100\r\n\r\n{{",
            f.token,
            f.host()
        );
        s.write_all(req.as_bytes()).unwrap();
        stalled.push(s); // the other 99 bytes never come
    }
    let started = std::time::Instant::now();
    let r = f.get("api/overview");
    assert_eq!(r.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the page waited {:?} behind stalled clients",
        started.elapsed()
    );
    drop(stalled);
}

/// Issue 14, repro 6: 500 idle connections made 445 threads. Connections past the bound are
/// told 503 at once, and idle ones are dropped at the read deadline, after which the page answers.
#[test]
fn connections_are_bounded_and_idle_ones_time_out() {
    let f = Fixture::start_with(4);
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(("127.0.0.1", f.port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let r = raw(
        f.port,
        format!(
            "GET /{}/api/overview HTTP/1.1\r\nHost: {}\r\n\r\n",
            f.token,
            f.host()
        )
        .as_bytes(),
    );
    assert!(r.starts_with("HTTP/1.1 503"), "{r}");
    // The idle ones are cut at the 10 s read deadline; then the page answers again.
    let started = std::time::Instant::now();
    loop {
        let r = f.get("api/overview");
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503);
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "idle connections never dropped"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(idle);
}
