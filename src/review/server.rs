//! The local review page: a small HTTP server (tiny_http) on 127.0.0.1 that serves the page and a
//! JSON API over one [`Project`].
//!
//! Who can reach it: only this machine (bound to 127.0.0.1), only with the random token that is
//! part of every path (so other local users and web pages cannot guess the URL), and only under
//! the Host names `127.0.0.1:<port>` / `localhost:<port>` (so a DNS-rebinding page cannot talk to
//! it through its own name). Audio is found through the store only ([`Project::audio_path`]):
//! a request path is never turned into a file path.
//!
//! ```text
//! GET  /<token>/                      the page (?lang=es|en)
//! GET  /<token>/app.js, style.css     its assets (embedded in the binary)
//! GET  /<token>/api/overview          themes → codes → passages, recordings, can_undo
//! GET  /<token>/api/transcript/<uri>  one recording's segments
//! GET  /<token>/api/audit             the audit trail
//! GET  /<token>/api/suggestions?code=<id>[&limit=<n>]
//!                                     passages whose most likely code it is (409 without vectors)
//! GET  /<token>/api/passage-codes?passage=<id>
//!                                     the live codes for one passage, most likely first
//! POST /<token>/api/action            an Action as JSON → the new overview
//! POST /<token>/api/undo              → the new overview
//! POST /<token>/api/export            reviewed exports into <project folder>/reviewed/
//! GET  /<token>/audio/<uri>           the recording, with Range support
//! ```

mod http;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use serde_json::{Value, json};
use tiny_http::{Header, Method, Response, StatusCode};

pub use http::Limits;
use http::{Reply, Request};

use super::ReviewError;
use super::export::export_reviewed;
use super::store::{Action, Project};
use super::suggest::{NO_VECTORS, SuggestIndex};

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const STYLE_CSS: &str = include_str!("page/style.css");

/// Largest request body accepted (an action is a few hundred bytes; a long memo a few KB).
const MAX_BODY: u64 = 1 << 20;

/// Folder (next to the project database) that the page's Export button writes into.
pub const REVIEWED_DIR: &str = "reviewed";

/// The page's interface language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Spanish (the default: the project's first users are Spanish-speaking researchers).
    #[default]
    Es,
    /// English.
    En,
}

impl Lang {
    /// `es` or `en`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Es => "es",
            Lang::En => "en",
        }
    }
}

impl std::str::FromStr for Lang {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "es" => Ok(Lang::Es),
            "en" => Ok(Lang::En),
            other => Err(format!("unknown page language `{other}`: use es or en")),
        }
    }
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Default interface language (a `?lang=` on the page URL overrides it).
    pub lang: Lang,
    /// Name written into the audit trail for every action.
    pub who: String,
    /// Connections answered at the same time (each on its own thread); more are told 503.
    /// Slow or stalled clients each hold one only until their deadline (see [`Limits`]).
    pub threads: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            lang: Lang::default(),
            who: default_reviewer(),
            threads: Limits::default().connections,
        }
    }
}

/// The OS user (`$USER`, `$USERNAME` on Windows), or `reviewer`.
pub fn default_reviewer() -> String {
    ["USER", "USERNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "reviewer".to_string())
}

/// What every worker shares.
struct State {
    project: Mutex<Project>,
    token: String,
    port: u16,
    lang: Lang,
    who: String,
    export_dir: PathBuf,
    /// The passages' fused vectors (None: the project has none; see [`NO_VECTORS`]).
    suggest: Option<SuggestIndex>,
}

impl State {
    /// The project, even after a worker panicked while holding it: every change is one SQLite
    /// transaction, so a panic mid-action leaves nothing half-written to protect against.
    fn project(&self) -> MutexGuard<'_, Project> {
        self.project.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running review server. Dropping it does not stop it; call [`ReviewServer::stop`].
pub struct ReviewServer {
    url: String,
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for ReviewServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewServer")
            .field("url", &self.url)
            .finish()
    }
}

impl ReviewServer {
    /// Binds 127.0.0.1 on a free port and starts accepting. Reviewed exports go to
    /// `reviewed/` next to the project database.
    pub fn start(project: Project, opts: &ServeOptions) -> Result<ReviewServer, ReviewError> {
        let token = random_token()?;
        let serve_error = |e: std::io::Error| ReviewError::Serve {
            message: format!("cannot listen on 127.0.0.1: {e}"),
        };
        let listener = TcpListener::bind("127.0.0.1:0").map_err(serve_error)?;
        let addr = listener.local_addr().map_err(serve_error)?;
        let port = addr.port();
        let export_dir = project
            .path()
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(REVIEWED_DIR);
        let suggest = project.suggestion_index()?;
        let state = Arc::new(State {
            suggest,
            project: Mutex::new(project),
            token,
            port,
            lang: opts.lang,
            who: opts.who.clone(),
            export_dir,
        });
        let url = format!("http://127.0.0.1:{port}/{}/", state.token);
        let stopping = Arc::new(AtomicBool::new(false));
        let limits = Limits {
            connections: opts.threads.max(1),
            ..Limits::default()
        };
        let handler: Arc<dyn Fn(&Request) -> Reply + Send + Sync> =
            Arc::new(move |rq: &Request| handle(rq, &state));
        let accept = {
            let stopping = stopping.clone();
            std::thread::spawn(move || http::serve(&listener, limits, &stopping, handler))
        };
        Ok(ReviewServer {
            url,
            addr,
            stopping,
            accept,
        })
    }

    /// `http://127.0.0.1:PORT/TOKEN/`: the page.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Serves until the process ends (Ctrl-C).
    pub fn join(self) {
        let _ = self.accept.join();
    }

    /// Stops accepting connections and waits for the accept loop to end (requests being
    /// answered finish on their own threads).
    pub fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stopping`.
        let _ = TcpStream::connect(self.addr);
        self.join();
    }
}

/// Serves `project` until the process ends, calling `ready` with the page URL once listening.
pub fn serve(
    project: Project,
    opts: &ServeOptions,
    ready: impl FnOnce(&str),
) -> Result<(), ReviewError> {
    let server = ReviewServer::start(project, opts)?;
    ready(server.url());
    server.join();
    Ok(())
}

/// Tries to show `url` in the desktop's browser. Failing is fine: the caller prints the URL.
pub fn open_browser(url: &str) -> bool {
    let openers: &[&str] = if cfg!(target_os = "macos") {
        &["open"]
    } else if cfg!(windows) {
        &["explorer"]
    } else {
        &["xdg-open"]
    };
    openers.iter().any(|cmd| {
        std::process::Command::new(cmd)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
    })
}

/// 32 hex characters from the OS's random source: unguessable, unlike std's hasher seeds.
fn random_token() -> Result<String, ReviewError> {
    let path = Path::new("/dev/urandom");
    let mut bytes = [0u8; 16];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|source| ReviewError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
    let len = body.len();
    Response::new(
        StatusCode(status),
        vec![header("Content-Type", content_type)],
        Box::new(std::io::Cursor::new(body)) as Box<dyn Read + Send>,
        Some(len),
        None,
    )
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("header names and values are ASCII")
}

fn text(status: u16, body: &str) -> Reply {
    reply(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

fn json_reply(status: u16, value: &Value) -> Reply {
    reply(
        status,
        "application/json; charset=utf-8",
        value.to_string().into_bytes(),
    )
}

fn json_ok<T: serde::Serialize>(value: &T) -> Reply {
    match serde_json::to_value(value) {
        Ok(v) => json_reply(200, &v),
        Err(e) => json_error(500, &e.to_string()),
    }
}

fn json_error(status: u16, message: &str) -> Reply {
    json_reply(status, &json!({ "error": message }))
}

/// A failed store call: the user's mistake (unknown id, empty name) is 400, the rest 500.
fn review_error(e: &ReviewError) -> Reply {
    let status = match e {
        ReviewError::NoSuch { .. } | ReviewError::Empty { .. } | ReviewError::Refused { .. } => 400,
        _ => 500,
    };
    json_error(status, &e.to_string())
}

fn handle(rq: &Request, state: &State) -> Reply {
    // Security headers on everything: the token is in the URL, so never leak it as a referrer;
    // the page loads nothing from anywhere else.
    route(rq, state)
        .with_header(header("Referrer-Policy", "no-referrer"))
        .with_header(header("X-Content-Type-Options", "nosniff"))
        .with_header(header("Cache-Control", "no-store"))
        .with_header(header(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; media-src 'self'; \
             img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
             form-action 'none'",
        ))
        .with_chunked_threshold(usize::MAX)
}

fn request_header<'a>(rq: &'a Request, name: &'static str) -> Option<&'a str> {
    rq.headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

/// Only the names this server is reached by on this machine: anything else is a page that
/// resolved its own domain to 127.0.0.1 (DNS rebinding).
fn host_allowed(host: Option<&str>, port: u16) -> bool {
    let Some(host) = host else {
        return false;
    };
    let host = host.trim().to_ascii_lowercase();
    host == format!("127.0.0.1:{port}") || host == format!("localhost:{port}")
}

/// A browser sends Origin on cross-site requests; only our own origin may post actions.
fn origin_allowed(origin: Option<&str>, port: u16) -> bool {
    match origin {
        None => true,
        Some(o) => {
            let o = o.trim().to_ascii_lowercase();
            o == format!("http://127.0.0.1:{port}") || o == format!("http://localhost:{port}")
        }
    }
}

/// Compares without stopping at the first difference, so timing says nothing about the token.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn route(rq: &Request, state: &State) -> Reply {
    if !host_allowed(request_header(rq, "Host"), state.port)
        || !origin_allowed(request_header(rq, "Origin"), state.port)
    {
        return text(403, "forbidden");
    }
    let url = rq.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let Some(rest) = path.strip_prefix('/') else {
        return text(403, "forbidden");
    };
    let (token, rest) = match rest.split_once('/') {
        Some((t, r)) => (t, Some(r)),
        None => (rest, None),
    };
    if !same_token(token, &state.token) {
        return text(403, "forbidden");
    }
    let Some(rest) = rest else {
        // `/<token>`: relative asset and API paths need the trailing slash.
        return text(308, "").with_header(header("Location", &format!("/{token}/")));
    };
    let method = rq.method().clone();
    match (&method, rest) {
        (Method::Get | Method::Head, "") => page(state, query),
        (Method::Get | Method::Head, "app.js") => asset(APP_JS, "text/javascript; charset=utf-8"),
        (Method::Get | Method::Head, "style.css") => asset(STYLE_CSS, "text/css; charset=utf-8"),
        (Method::Get, "api/overview") => overview(state),
        (Method::Get, "api/suggestions") => suggestions(state, query),
        (Method::Get, "api/passage-codes") => passage_codes(state, query),
        (Method::Get, "api/audit") => match state.project().audit() {
            Ok(a) => json_ok(&a),
            Err(e) => review_error(&e),
        },
        (Method::Post, "api/action") => action(rq, state),
        (Method::Post, "api/undo") => undo(state),
        (Method::Post, "api/export") => export(state),
        (Method::Get, r) if r.starts_with("api/transcript/") => {
            transcript(state, &r["api/transcript/".len()..])
        }
        (Method::Get | Method::Head, r) if r.starts_with("audio/") => {
            audio(rq, state, &r["audio/".len()..])
        }
        (_, "" | "app.js" | "style.css" | "api/overview" | "api/audit")
        | (_, "api/suggestions" | "api/passage-codes")
        | (_, "api/action" | "api/undo" | "api/export") => text(405, "method not allowed"),
        _ => text(404, "not found"),
    }
}

fn asset(body: &str, content_type: &str) -> Reply {
    reply(200, content_type, body.as_bytes().to_vec())
}

/// The page, in the language asked for (`?lang=`) or the server's default.
fn page(state: &State, query: &str) -> Reply {
    let lang = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("lang="))
        .find_map(|v| v.parse::<Lang>().ok())
        .unwrap_or(state.lang);
    let html = INDEX_HTML.replace("{{LANG}}", lang.as_str());
    reply(200, "text/html; charset=utf-8", html.into_bytes())
}

fn overview(state: &State) -> Reply {
    match state.project().overview() {
        Ok(o) => json_ok(&o),
        Err(e) => review_error(&e),
    }
}

/// Suggestions shown at most, unless the page asks for another number.
const SUGGESTIONS_SHOWN: usize = 20;

/// The integer value of `name` in a query string.
fn query_number(query: &str, name: &str) -> Option<i64> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
}

fn suggestions(state: &State, query: &str) -> Reply {
    let Some(code) = query_number(query, "code") else {
        return json_error(400, "give the code: api/suggestions?code=<id>");
    };
    let limit = query_number(query, "limit")
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(SUGGESTIONS_SHOWN);
    let Some(index) = &state.suggest else {
        return json_error(409, NO_VECTORS);
    };
    match state.project().suggest(index, code, limit) {
        Ok(s) => json_ok(&s),
        Err(e) => review_error(&e),
    }
}

fn passage_codes(state: &State, query: &str) -> Reply {
    let Some(passage) = query_number(query, "passage") else {
        return json_error(400, "give the passage: api/passage-codes?passage=<id>");
    };
    let Some(index) = &state.suggest else {
        return json_error(409, NO_VECTORS);
    };
    match state.project().code_chances(index, passage) {
        Ok(c) => json_ok(&c),
        Err(e) => review_error(&e),
    }
}

fn action(rq: &Request, state: &State) -> Reply {
    // The body's size was checked while reading it (413 past `MAX_BODY`).
    let action: Action = match serde_json::from_slice(rq.body()) {
        Ok(a) => a,
        Err(e) => return json_error(400, &format!("not a review action: {e}")),
    };
    let mut project = state.project();
    if let Err(e) = project.apply(&action, &state.who) {
        return review_error(&e);
    }
    match project.overview() {
        Ok(o) => json_ok(&o),
        Err(e) => review_error(&e),
    }
}

fn undo(state: &State) -> Reply {
    let mut project = state.project();
    if let Err(e) = project.undo(&state.who) {
        return review_error(&e);
    }
    match project.overview() {
        Ok(o) => json_ok(&o),
        Err(e) => review_error(&e),
    }
}

fn export(state: &State) -> Reply {
    let project = state.project();
    match export_reviewed(&project, &state.export_dir) {
        Ok(paths) => json_reply(
            200,
            &json!({
                "dir": state.export_dir.display().to_string(),
                "paths": paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            }),
        ),
        Err(e) => review_error(&e),
    }
}

fn transcript(state: &State, raw_uri: &str) -> Reply {
    let Some(uri) = percent_decode(raw_uri) else {
        return json_error(400, "bad recording id in the path");
    };
    match state.project().transcript_view(&uri) {
        Ok(Some(t)) => json_ok(&t),
        Ok(None) => json_error(404, &format!("no recording {uri} in this project")),
        Err(e) => review_error(&e),
    }
}

/// `%XX` decoding of one path segment; `None` for a bad escape or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Content type from the file's extension (what the browser's `<audio>` needs to pick a decoder).
fn audio_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "wav" | "wave" => "audio/wav",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "flac" => "audio/flac",
        "m4a" | "mp4" | "aac" => "audio/mp4",
        "webm" => "audio/webm",
        _ => "application/octet-stream",
    }
}

/// A `Range` header against a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No Range header: the whole file.
    Whole,
    /// Bytes `start..=end` (inclusive, as HTTP counts).
    Part {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// A range this server cannot satisfy (outside the file, malformed, or several ranges).
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n`. A header this server does not understand
/// (malformed, another unit, several ranges) is ignored and the whole file sent, as RFC 9110
/// §14.2 allows; only a well-formed single range outside the file is unsatisfiable.
pub fn parse_range(header: Option<&str>, len: u64) -> ByteRange {
    let Some(h) = header else {
        return ByteRange::Whole;
    };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.is_empty(), b.is_empty()) {
        // bytes=-n: the last n bytes
        (true, false) => match num(b) {
            None => return ByteRange::Whole,
            Some(n) => (n > 0 && len > 0).then(|| (len.saturating_sub(n), len - 1)),
        },
        // bytes=a-
        (false, true) => match num(a) {
            None => return ByteRange::Whole,
            Some(s) => (s < len).then(|| (s, len - 1)),
        },
        // bytes=a-b (b past the end means "to the end")
        (false, false) => match (num(a), num(b)) {
            (Some(s), Some(e)) if s > e => return ByteRange::Whole,
            (Some(s), Some(e)) => (s < len).then(|| (s, e.min(len - 1))),
            _ => return ByteRange::Whole,
        },
        (true, true) => return ByteRange::Whole,
    };
    match range {
        Some((start, end)) => ByteRange::Part { start, end },
        None => ByteRange::Unsatisfiable,
    }
}

fn audio(rq: &Request, state: &State, raw_uri: &str) -> Reply {
    let Some(uri) = percent_decode(raw_uri) else {
        return text(400, "bad recording id in the path");
    };
    // The store is the only map from ids to files: `../` in a uri is just an unknown id.
    let path = match state.project().audio_path(&uri) {
        Ok(Some(p)) => p,
        Ok(None) => return text(404, "no such recording"),
        Err(e) => return review_error(&e),
    };
    let Ok(mut file) = File::open(&path) else {
        return text(404, "the recording's audio file is missing");
    };
    let len = match file.metadata() {
        Ok(m) if m.is_file() => m.len(),
        _ => return text(404, "the recording's audio file is missing"),
    };
    let content_type = audio_type(&path);
    let (status, start, count) = match parse_range(request_header(rq, "Range"), len) {
        ByteRange::Whole => (200, 0, len),
        ByteRange::Part { start, end } => (206, start, end - start + 1),
        ByteRange::Unsatisfiable => {
            return text(416, "range not satisfiable")
                .with_header(header("Content-Range", &format!("bytes */{len}")))
                .with_header(header("Accept-Ranges", "bytes"));
        }
    };
    if file.seek(SeekFrom::Start(start)).is_err() {
        return text(500, "cannot read the audio file");
    }
    let Ok(count_usize) = usize::try_from(count) else {
        return text(500, "audio file too large for this platform");
    };
    let mut headers = vec![
        header("Content-Type", content_type),
        header("Accept-Ranges", "bytes"),
    ];
    if status == 206 {
        headers.push(header(
            "Content-Range",
            &format!("bytes {start}-{}/{len}", start + count - 1),
        ));
    }
    Response::new(
        StatusCode(status),
        headers,
        Box::new(file.take(count)) as Box<dyn Read + Send>,
        Some(count_usize),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), ByteRange::Whole);
        assert_eq!(
            parse_range(Some("bytes=0-3"), 10),
            ByteRange::Part { start: 0, end: 3 }
        );
        assert_eq!(
            parse_range(Some("bytes=4-"), 10),
            ByteRange::Part { start: 4, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-3"), 10),
            ByteRange::Part { start: 7, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-30"), 10),
            ByteRange::Part { start: 0, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=5-100"), 10),
            ByteRange::Part { start: 5, end: 9 }
        );
        for outside in ["bytes=10-", "bytes=-0", "bytes=10-20"] {
            assert_eq!(
                parse_range(Some(outside), 10),
                ByteRange::Unsatisfiable,
                "{outside}"
            );
        }
        // Not understood: ignored, the whole file is sent (RFC 9110 §14.2).
        for ignored in [
            "bytes=5-4",
            "bytes=-",
            "items=0-1",
            "bytes=a-b",
            "bytes=0-1,3-4",
            "bytes=0-1, 5-6",
            "bytes=+1-2",
            "bytes=1",
            "garbage",
            "",
        ] {
            assert_eq!(
                parse_range(Some(ignored), 10),
                ByteRange::Whole,
                "{ignored}"
            );
        }
        assert_eq!(parse_range(Some("bytes=0-"), 0), ByteRange::Unsatisfiable);
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(
            percent_decode("..%2F..%2Fetc").as_deref(),
            Some("../../etc")
        );
        assert_eq!(percent_decode("%C3%B1").as_deref(), Some("ñ"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%FF"), None);
    }

    #[test]
    fn hosts_and_tokens() {
        assert!(host_allowed(Some("127.0.0.1:8080"), 8080));
        assert!(host_allowed(Some("LOCALHOST:8080"), 8080));
        assert!(!host_allowed(Some("evil.example:8080"), 8080));
        assert!(!host_allowed(Some("127.0.0.1:8081"), 8080));
        assert!(!host_allowed(None, 8080));
        assert!(origin_allowed(None, 1));
        assert!(!origin_allowed(Some("http://evil.example"), 1));
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
    }
}
