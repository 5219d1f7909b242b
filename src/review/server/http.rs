//! The review server's HTTP/1.1 connection handling, with the limits a hostile local client
//! cannot get past: a bounded number of connections served at once, a size limit on the request
//! line, the headers and the body, and deadlines for reading the request and for writing the
//! answer, so no client can hold the page up by being slow or by sending without end.
//!
//! Each connection carries one request (answers say `Connection: close`): the page makes a few
//! requests at a time, and one request per connection keeps the limits simple. Answers are
//! `tiny_http` responses, written with its own serializer.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tiny_http::{HTTPVersion, Header, Method, Response, StatusCode};

/// What a client may send and how long it may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections answered at the same time; more are told 503 and closed.
    pub connections: usize,
    /// Longest request target (path and query), in bytes.
    pub url: usize,
    /// Longest request head (request line and headers), in bytes.
    pub head: usize,
    /// Largest request body, in bytes.
    pub body: u64,
    /// Time to receive the whole request (head and body), however it trickles in.
    pub read: Duration,
    /// Time any one write of the answer may block (a client that stops reading).
    pub write: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 32,
            url: 4 * 1024,
            head: 16 * 1024,
            body: super::MAX_BODY,
            read: Duration::from_secs(10),
            write: Duration::from_secs(20),
        }
    }
}

/// A request as read from a connection, body included.
#[derive(Debug)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<Header>,
    body: Vec<u8>,
}

impl Request {
    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request target (`/token/api/overview?x=y`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The headers in the order sent.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The body (empty when none was sent).
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// An answer: a `tiny_http` response with a boxed body.
pub type Reply = Response<Box<dyn Read + Send>>;

/// Accepts connections until `stopping` is set (and a connection wakes the loop), answering
/// each on its own thread with `handle`, at most `limits.connections` at a time.
pub fn serve(
    listener: &TcpListener,
    limits: Limits,
    stopping: &AtomicBool,
    handle: Arc<dyn Fn(&Request) -> Reply + Send + Sync>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else {
            // Out of file descriptors, say: wait a little instead of spinning on the error.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        if active.fetch_add(1, Ordering::SeqCst) >= limits.connections {
            active.fetch_sub(1, Ordering::SeqCst);
            refuse_busy(stream, limits);
            continue;
        }
        // Moved into the thread: released when it ends, or at once if no thread can be made.
        let slot = Release(active.clone());
        let handle = handle.clone();
        let _ = std::thread::Builder::new()
            .name("review-connection".into())
            .spawn(move || {
                let _slot = slot;
                connection(stream, limits, handle.as_ref());
            });
    }
}

/// Gives a connection slot back when dropped, however the connection ends.
struct Release(Arc<AtomicUsize>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Too many connections: a short 503, written without waiting on the client.
fn refuse_busy(mut stream: TcpStream, limits: Limits) {
    let _ = stream.set_write_timeout(Some(limits.write.min(Duration::from_secs(1))));
    let _ = stream.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\nRetry-After: 1\r\n\r\n",
    );
}

/// Reads one request within the limits, answers it, closes.
fn connection(
    stream: TcpStream,
    limits: Limits,
    handle: &(dyn Fn(&Request) -> Reply + Send + Sync),
) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(limits.write));
    let mut reader = io::BufReader::new(Deadline {
        stream: &stream,
        until: Instant::now() + limits.read,
    });
    let (reply, head_only) = match read_request(&mut reader, limits) {
        Ok(rq) => {
            let head_only = *rq.method() == Method::Head;
            // A bug in one handler must not take the connection thread down silently.
            let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(&rq)))
                .unwrap_or_else(|_| plain(500, "internal error"));
            (reply, head_only)
        }
        Err(Refusal::Gone) => return,
        Err(Refusal::Status(code, why)) => (plain(code, why), false),
    };
    let reply = reply.with_header(header("Connection", "close"));
    let _ = reply.raw_print(&stream, HTTPVersion(1, 1), &[], head_only, None);
    let _ = (&stream).flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("header names and values are ASCII")
}

fn plain(status: u16, body: &'static str) -> Reply {
    Response::new(
        StatusCode(status),
        vec![header("Content-Type", "text/plain; charset=utf-8")],
        Box::new(io::Cursor::new(body.as_bytes())) as Box<dyn Read + Send>,
        Some(body.len()),
        None,
    )
}

/// Why no request was read.
#[derive(Debug)]
enum Refusal {
    /// The client went away or ran out of time: nothing to answer.
    Gone,
    /// Answer with this status and text.
    Status(u16, &'static str),
}

/// A reader that fails once the request's deadline has passed, however the bytes trickle in
/// (a per-read timeout alone lets a client send one byte every few seconds forever).
struct Deadline<'a> {
    stream: &'a TcpStream,
    until: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "request too slow"));
        }
        self.stream.set_read_timeout(Some(left))?;
        (&mut &*self.stream).read(buf)
    }
}

/// Reads the head byte by byte in small chunks up to the blank line, never more than
/// `limits.head` bytes, then the body by its Content-Length.
fn read_request(r: &mut impl Read, limits: Limits) -> Result<Request, Refusal> {
    let head = read_head(r, limits)?;
    let text = std::str::from_utf8(&head).map_err(|_| Refusal::Status(400, "bad request"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(url), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Status(400, "bad request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(Refusal::Status(505, "HTTP version not supported"));
    }
    if url.len() > limits.url {
        return Err(Refusal::Status(414, "URI too long"));
    }
    let method: Method = method
        .parse()
        .map_err(|_| Refusal::Status(400, "bad method"))?;
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or(Refusal::Status(400, "bad header"))?;
        let h = Header::from_bytes(name.trim().as_bytes(), value.trim().as_bytes())
            .map_err(|_| Refusal::Status(400, "bad header"))?;
        headers.push(h);
    }
    let value_of = |name: &'static str| {
        headers
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_string())
    };
    if value_of("Transfer-Encoding").is_some() {
        return Err(Refusal::Status(411, "send a Content-Length"));
    }
    let length: u64 = match value_of("Content-Length") {
        None => 0,
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| Refusal::Status(400, "bad Content-Length"))?,
    };
    if length > limits.body {
        return Err(Refusal::Status(413, "request too large"));
    }
    let mut body = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    r.take(length)
        .read_to_end(&mut body)
        .map_err(|_| Refusal::Gone)?;
    if (body.len() as u64) < length {
        return Err(Refusal::Gone);
    }
    Ok(Request {
        method,
        url: url.to_string(),
        headers,
        body,
    })
}

/// The request head without its final blank line: 414 when the request line runs past the URL
/// limit, 431 when the head runs past its limit.
fn read_head(r: &mut impl Read, limits: Limits) -> Result<Vec<u8>, Refusal> {
    // Room for the method and the version around the URL.
    let max_line = limits.url + 32;
    let mut line_done = false;
    let mut head = Vec::with_capacity(1024);
    let mut byte = [0u8; 1];
    loop {
        match r.read(&mut byte) {
            Ok(0) => return Err(Refusal::Gone),
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(Refusal::Gone),
        }
        if head.ends_with(b"\r\n\r\n") {
            head.truncate(head.len() - 4);
            return Ok(head);
        }
        if !line_done {
            line_done = head.ends_with(b"\r\n");
            if !line_done && head.len() > max_line {
                return Err(Refusal::Status(414, "URI too long"));
            }
        }
        if head.len() > limits.head {
            return Err(Refusal::Status(431, "request header fields too large"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<Request, Refusal> {
        read_request(&mut io::Cursor::new(bytes.to_vec()), Limits::default())
    }

    fn status(bytes: &[u8]) -> u16 {
        match read(bytes) {
            Ok(_) => 200,
            Err(Refusal::Status(s, _)) => s,
            Err(Refusal::Gone) => 0,
        }
    }

    #[test]
    fn reads_a_request_with_its_body() {
        let rq =
            read(b"POST /t/api/action HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!(*rq.method(), Method::Post);
        assert_eq!(rq.url(), "/t/api/action");
        assert_eq!(rq.body(), b"{}");
        assert!(rq.headers().iter().any(|h| h.field.equiv("host")));
    }

    #[test]
    fn refuses_what_is_too_big_or_malformed() {
        let long_url = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(5000));
        assert_eq!(status(long_url.as_bytes()), 414);
        let longer_than_the_head = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(100_000));
        assert_eq!(status(longer_than_the_head.as_bytes()), 414);
        let long_head = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
        assert_eq!(status(long_head.as_bytes()), 431);
        // Endless header line: refused at the limit, not read to the end.
        let endless = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 100_000]].concat();
        assert_eq!(status(&endless), 431);
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"),
            413
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            411
        );
        assert_eq!(status(b"GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(status(b"GET /\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nno colon\r\n\r\n"), 400);
        // Cut off before the blank line or the end of the body: nothing to answer.
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: x\r\n"), 0);
        assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n{}"), 0);
    }
}
