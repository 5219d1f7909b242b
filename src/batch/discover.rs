//! Finding the recordings of an archive, naming them uniquely, and slicing them into shards.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest, Sha256};

use super::BatchError;

/// File extensions searched for inside folders (files named explicitly are always taken).
pub const AUDIO_EXTENSIONS: &[&str] = &[
    "wav", "wave", "flac", "mp3", "m4a", "m4b", "mp4", "aac", "ogg", "oga", "opus", "webm", "mka",
    "mkv", "aif", "aiff", "caf",
];

/// One recording of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// The file, as found (input folder joined with the path inside it).
    pub path: PathBuf,
    /// The path inside the input folder (the file name for files given directly): what a shard
    /// is decided by, so the slice does not depend on where the archive is mounted.
    pub relative: String,
    /// Unique id in the batch: the file stem, or the relative path when stems repeat.
    pub uri: String,
}

/// What [`discover`] found.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Recordings, sorted by path, each once.
    pub recordings: Vec<Recording>,
    /// Inputs that do not exist or cannot be listed, with the reason.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Finds recordings in `inputs`: files are taken as given, folders are searched recursively for
/// audio extensions (hidden entries and `exclude`, the output folder, are skipped).
pub fn discover(inputs: &[PathBuf], exclude: Option<&Path>) -> Discovery {
    let exclude = exclude.and_then(|p| p.canonicalize().ok());
    let mut found: Vec<(PathBuf, String)> = Vec::new();
    let mut unreadable = Vec::new();
    let mut visited = HashSet::new();
    for input in inputs {
        if input.is_dir() {
            walk(
                input,
                input,
                exclude.as_deref(),
                &mut visited,
                &mut found,
                &mut unreadable,
            );
        } else if input.exists() {
            let name = input
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            found.push((input.clone(), name));
        } else {
            unreadable.push((
                input.clone(),
                "no such file or folder: check the path".to_string(),
            ));
        }
    }
    found.sort();
    let mut seen = HashSet::new();
    found.retain(|(p, _)| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())));
    let uris = unique_uris(&found);
    let recordings = found
        .into_iter()
        .zip(uris)
        .map(|((path, relative), uri)| Recording {
            path,
            relative,
            uri,
        })
        .collect();
    Discovery {
        recordings,
        unreadable,
    }
}

fn walk(
    root: &Path,
    dir: &Path,
    exclude: Option<&Path>,
    visited: &mut HashSet<PathBuf>,
    found: &mut Vec<(PathBuf, String)>,
    unreadable: &mut Vec<(PathBuf, String)>,
) {
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if Some(canonical.as_path()) == exclude || !visited.insert(canonical) {
        return; // the output folder, or a folder already seen through a link
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            unreadable.push((dir.to_path_buf(), format!("cannot list folder: {e}")));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, exclude, visited, found, unreadable);
        } else if has_audio_extension(&path) {
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            found.push((path, relative));
        }
    }
}

fn has_audio_extension(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.as_str()))
}

/// File stems where they are unique; the relative path (without extension, `/` → `_`) where a
/// stem repeats; a numeric suffix if even that repeats.
fn unique_uris(found: &[(PathBuf, String)]) -> Vec<String> {
    let stem = |p: &Path| crate::pipeline::recording_id(p);
    let mut stem_count: HashMap<String, usize> = HashMap::new();
    for (p, _) in found {
        *stem_count.entry(stem(p)).or_default() += 1;
    }
    let mut taken = HashSet::new();
    found
        .iter()
        .map(|(p, relative)| {
            let s = stem(p);
            let base = if stem_count[&s] == 1 {
                s
            } else {
                let without_ext = Path::new(relative).with_extension("");
                without_ext.to_string_lossy().replace(['/', '\\'], "_")
            };
            let mut uri = base.clone();
            let mut n = 2;
            while !taken.insert(uri.clone()) {
                uri = format!("{base}_{n}");
                n += 1;
            }
            uri
        })
        .collect()
}

/// Shard `index` of `count` (1-based, as Slurm array indices usually are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which slice, 1..=count.
    pub index: usize,
    /// How many slices.
    pub count: usize,
}

impl Shard {
    /// Whether `recording` belongs to this shard. Decided by a hash of its relative path, so a
    /// file stays in its shard when others are added to the archive.
    pub fn contains(&self, recording: &Recording) -> bool {
        let digest = Sha256::digest(recording.relative.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first) % self.count as u64) as usize == self.index - 1
    }
}

impl FromStr for Shard {
    type Err = BatchError;

    fn from_str(s: &str) -> Result<Shard, BatchError> {
        let bad = || BatchError::BadShard {
            given: s.to_string(),
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = k.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(relative: &str) -> Recording {
        Recording {
            path: PathBuf::from("/archive").join(relative),
            relative: relative.to_string(),
            uri: String::new(),
        }
    }

    #[test]
    fn shards_partition_the_archive() {
        let recs: Vec<Recording> = (0..200).map(|i| rec(&format!("a/{i}.wav"))).collect();
        let shards: Vec<Shard> = (1..=3).map(|k| Shard { index: k, count: 3 }).collect();
        let mut sizes = [0; 3];
        for r in &recs {
            let owners: Vec<usize> = shards
                .iter()
                .filter(|s| s.contains(r))
                .map(|s| s.index)
                .collect();
            assert_eq!(owners.len(), 1, "{} in shards {owners:?}", r.relative);
            sizes[owners[0] - 1] += 1;
        }
        assert!(sizes.iter().all(|&n| n > 40), "unbalanced {sizes:?}");
    }

    #[test]
    fn shard_parses_k_of_n() {
        assert_eq!(
            "2/5".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 5 }
        );
        for bad in ["0/3", "4/3", "1/0", "x/2", "3", "1/2/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn repeated_stems_get_their_folder_in_the_uri() {
        let found = vec![
            (PathBuf::from("/x/2019/ana.wav"), "2019/ana.wav".to_string()),
            (PathBuf::from("/x/2020/ana.mp3"), "2020/ana.mp3".to_string()),
            (
                PathBuf::from("/x/2020/luis.wav"),
                "2020/luis.wav".to_string(),
            ),
        ];
        assert_eq!(unique_uris(&found), ["2019_ana", "2020_ana", "luis"]);
    }

    #[test]
    fn discovery_walks_folders_skips_hidden_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(root.join(".hidden")).unwrap();
        std::fs::create_dir_all(root.join("out")).unwrap();
        for f in [
            "a.wav",
            "notes.txt",
            "sub/b.MP3",
            "sub/deeper/c.flac",
            ".hidden/d.wav",
            "out/e.wav",
        ] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        let missing = root.join("nope.wav");
        let d = discover(
            &[root.to_path_buf(), missing.clone()],
            Some(&root.join("out")),
        );
        let rel: Vec<&str> = d.recordings.iter().map(|r| r.relative.as_str()).collect();
        assert_eq!(rel, ["a.wav", "sub/b.MP3", "sub/deeper/c.flac"]);
        assert_eq!(d.unreadable.len(), 1);
        assert_eq!(d.unreadable[0].0, missing);
    }
}
