//! Streaming SHA-256 helpers: files, readers and writers are hashed as they flow, never buffered
//! whole just to be hashed.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// Lower-case hex of a digest.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]])
        .map(char::from)
        .collect()
}

/// SHA-256 of a file as lower-case hex, read in 1 MiB pieces. A file hashed before in this
/// process and unchanged since (same length and modification time) is not read again: one run
/// checks the same model files several times (the onnxruntime library, 35 MB, once per network
/// that uses it), and each check read the whole file.
pub fn sha256_file(path: &Path) -> Result<String, io::Error> {
    let stamp = FileStamp::of(path)?;
    if let Some(known) = hashed().lock().ok().and_then(|m| m.get(&stamp).cloned()) {
        return Ok(known);
    }
    let digest = sha256_read(path)?;
    // Keep it only if the file did not change while it was read.
    if FileStamp::of(path)? == stamp
        && let Ok(mut m) = hashed().lock()
    {
        m.insert(stamp, digest.clone());
    }
    Ok(digest)
}

/// What identifies one version of a file for [`sha256_file`]'s memory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileStamp {
    path: std::path::PathBuf,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    fn of(path: &Path) -> Result<Self, io::Error> {
        let meta = std::fs::metadata(path)?;
        Ok(FileStamp {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

/// Digests of the files hashed in this process.
fn hashed() -> &'static Mutex<HashMap<FileStamp, String>> {
    static HASHED: OnceLock<Mutex<HashMap<FileStamp, String>>> = OnceLock::new();
    HASHED.get_or_init(Default::default)
}

fn sha256_read(path: &Path) -> Result<String, io::Error> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(hex(&hasher.finalize()))
}

/// Hashes everything read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// Hex digest of the bytes read so far.
    pub fn hex_digest(&self) -> String {
        hex(&self.hasher.clone().finalize())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Hashes and counts everything written through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Flushes and returns (hex digest, byte count).
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        self.inner.flush()?;
        Ok((hex(&self.hasher.finalize()), self.bytes))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn file_reader_and_writer_agree_with_known_digest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(sha256_file(&p).unwrap(), ABC);

        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"ab").unwrap();
        w.write_all(b"c").unwrap();
        assert_eq!(w.finish().unwrap(), (ABC.to_string(), 3));
    }
}
