//! The project store: one SQLite database per project holding the transcripts, speakers,
//! passages, themes, codes, memos and an audit trail of every review action.
//!
//! Promises:
//! - every action is one transaction: it happens completely or not at all, whatever kills the
//!   process (SQLite WAL, `synchronous=FULL`);
//! - every action is in the audit trail (who, what, when) with the rows it changed as they were
//!   before, which is what [`Project::undo`] restores;
//! - importing the machine's output again adds what is new and never overwrites a decision
//!   (a code's status, label or memo, a speaker's name, an edited segment, a moved passage).

use std::path::{Path, PathBuf};

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::ReviewError;
use crate::export::analysis_json::{self, ANALYSIS_FILE, AnalysisArtifact};
use crate::export::{self, Format};
use crate::transcript::Transcript;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS recordings(
    id INTEGER PRIMARY KEY, uri TEXT NOT NULL UNIQUE, audio_path TEXT NOT NULL,
    duration_ms INTEGER NOT NULL, language TEXT NOT NULL, transcript_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS speakers(
    id INTEGER PRIMARY KEY, uri TEXT NOT NULL, label TEXT NOT NULL, name TEXT NOT NULL,
    UNIQUE(uri, label));
-- idx >= 0: the transcript's segment idx; idx < 0: its untranscribed span -idx-1 (machine_text
-- empty: a reviewer may listen and type what was said).
CREATE TABLE IF NOT EXISTS segments(
    id INTEGER PRIMARY KEY, uri TEXT NOT NULL, idx INTEGER NOT NULL, start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL, speaker TEXT, text TEXT NOT NULL, machine_text TEXT NOT NULL,
    UNIQUE(uri, idx));
CREATE TABLE IF NOT EXISTS passages(
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, uri TEXT NOT NULL, speaker TEXT,
    start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL, role TEXT NOT NULL, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS codes(
    id INTEGER PRIMARY KEY, machine_key TEXT UNIQUE, label TEXT NOT NULL,
    definition TEXT NOT NULL DEFAULT '', keywords TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'proposed'
        CHECK(status IN ('proposed', 'accepted', 'rejected', 'merged')),
    merged_into INTEGER, theme TEXT NOT NULL DEFAULT '', position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS codings(
    id INTEGER PRIMARY KEY, code_id INTEGER NOT NULL, passage_id INTEGER NOT NULL,
    quote INTEGER NOT NULL DEFAULT 0, reviewed INTEGER NOT NULL DEFAULT 0,
    UNIQUE(code_id, passage_id));
CREATE TABLE IF NOT EXISTS memos(id INTEGER PRIMARY KEY, target TEXT NOT NULL UNIQUE, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS passage_vectors(
    passage_id INTEGER PRIMARY KEY, version INTEGER NOT NULL, vector BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS code_text_vectors(
    text TEXT PRIMARY KEY, version INTEGER NOT NULL, vector BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS audit(
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL,
    detail TEXT NOT NULL, before TEXT NOT NULL, undone_by INTEGER);
"#;

/// Tables an action may change (and undo may restore). Names are never taken from requests.
const UNDOABLE_TABLES: [&str; 5] = ["speakers", "segments", "codes", "codings", "memos"];

/// File name of the project database inside a project folder.
pub const PROJECT_DB: &str = "review.qualscribe.sqlite";

/// A review project (one SQLite database).
pub struct Project {
    conn: Connection,
    path: PathBuf,
    /// Held while the project is open: one writer per project (two review pages on one folder
    /// would undo each other's work and fight over the database).
    _lock: std::fs::File,
}

impl std::fmt::Debug for Project {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Project").field("path", &self.path).finish()
    }
}

/// What an import added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// Recordings new to the project.
    pub new_recordings: usize,
    /// Passages new to the project.
    pub new_passages: usize,
    /// Proposed codes new to the project.
    pub new_codes: usize,
}

/// A review decision, as the page sends it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Keep a code.
    Accept {
        /// The code.
        code: i64,
    },
    /// Drop a code from the exports.
    Reject {
        /// The code.
        code: i64,
    },
    /// Back to "proposed".
    Reopen {
        /// The code.
        code: i64,
    },
    /// Give a code a new name.
    Rename {
        /// The code.
        code: i64,
        /// Its new name.
        label: String,
    },
    /// Fold codes into another: their passages join it, they disappear from the exports.
    Merge {
        /// The code that stays.
        into: i64,
        /// The codes folded into it.
        from: Vec<i64>,
    },
    /// Move some of a code's passages into a new code.
    Split {
        /// The code split.
        code: i64,
        /// The passages that go to the new code.
        passages: Vec<i64>,
        /// The new code's name.
        label: String,
    },
    /// Take a passage out of one code (if given) and put it into another.
    Move {
        /// The passage.
        passage: i64,
        /// The code it leaves, if any.
        from: Option<i64>,
        /// The code it joins.
        to: i64,
    },
    /// Start a new code from a passage ("new code from this passage"): the code is accepted
    /// and the passage leaves the code it was in, if any.
    NewCode {
        /// The new code's name.
        label: String,
        /// The passage that is its first example.
        passage: i64,
        /// The code the passage leaves, if any (it must be the code it is in now).
        from: Option<i64>,
    },
    /// Write (or, with empty text, delete) a memo on a code, a passage or the project.
    Memo {
        /// `project`, `code:<id>` or `passage:<id>`.
        target: String,
        /// The memo.
        text: String,
    },
    /// Name a speaker of a recording.
    RenameSpeaker {
        /// The recording.
        uri: String,
        /// The speaker's label in the machine output (`SPEAKER_01`).
        label: String,
        /// The name to show.
        name: String,
    },
    /// Correct the text of a transcript segment.
    EditSegment {
        /// The segment's row id.
        segment: i64,
        /// The corrected text.
        text: String,
    },
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Increasing id.
    pub id: i64,
    /// UTC time, RFC 3339.
    pub at: String,
    /// Who did it.
    pub who: String,
    /// What (`accept`, `merge`, `undo`, `import`, …).
    pub action: String,
    /// The request, as JSON.
    pub detail: Value,
    /// The audit id of the undo that reverted it, if any.
    pub undone_by: Option<i64>,
}

/// Rows as they were before an action: `(table, row id, row or null if it did not exist)`.
type BeforeImages = Vec<(String, i64, Value)>;

impl Project {
    /// Opens (creating if needed) the project database at `path`.
    /// Refuses ([`ReviewError::Busy`]) while another process or handle has it open.
    pub fn open(path: &Path) -> Result<Project, ReviewError> {
        let lock = lock_project(path)?;
        let db = db_err(path.to_path_buf());
        let conn = Connection::open(path).map_err(&db)?;
        // WAL: readers never block the writer and a crash never corrupts committed state;
        // FULL: a committed action survives a power cut, not only a process kill.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(&db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(&db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(&db)?;
        conn.execute_batch(SCHEMA).map_err(&db)?;
        add_reviewed_column(&conn).map_err(&db)?;
        Ok(Project {
            conn,
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns a SQLite error into one naming this project's database.
    pub(super) fn db(&self) -> impl Fn(rusqlite::Error) -> ReviewError + use<> {
        db_err(self.path.clone())
    }

    /// Imports a `qualscribe run` or `batch` output folder: transcripts (`transcripts/` or the
    /// folder itself) and `analysis.json`. Adds what is new; keeps every review decision.
    pub fn import_output(&mut self, dir: &Path, who: &str) -> Result<ImportSummary, ReviewError> {
        let transcripts = read_transcripts(dir)?;
        if transcripts.is_empty() {
            return Err(ReviewError::NothingToImport {
                dir: dir.to_path_buf(),
            });
        }
        let analysis_path = dir.join(ANALYSIS_FILE);
        let analysis = if analysis_path.is_file() {
            Some(analysis_json::read_analysis_json(&analysis_path)?)
        } else {
            None
        };
        let db = self.db();
        let tx = self.conn.transaction().map_err(&db)?;
        let mut summary = ImportSummary::default();
        for (t, transcript_path) in &transcripts {
            summary.new_recordings += import_transcript(&tx, t, transcript_path).map_err(&db)?;
        }
        if let Some(a) = &analysis {
            import_analysis(&tx, a, &mut summary).map_err(&db)?;
        }
        let detail = json!({"dir": dir, "summary": summary});
        insert_audit(&tx, who, "import", &detail, &Vec::new()).map_err(&db)?;
        tx.commit().map_err(&db)?;
        Ok(summary)
    }

    /// Applies one review action in one transaction, with its audit entry. Returns the audit id.
    pub fn apply(&mut self, action: &Action, who: &str) -> Result<i64, ReviewError> {
        let db = self.db();
        let tx = self.conn.transaction().map_err(&db)?;
        let mut before = BeforeImages::new();
        apply_in(&tx, action, &mut before)?;
        let detail = serde_json::to_value(action).expect("actions serialise");
        let name = detail["action"].as_str().unwrap_or("action").to_string();
        let id = insert_audit(&tx, who, &name, &detail, &before).map_err(&db)?;
        tx.commit().map_err(&db)?;
        Ok(id)
    }

    /// Reverts the latest action not yet undone (imports are not undone). Returns the entry
    /// undone, or `None` when there is nothing to undo.
    pub fn undo(&mut self, who: &str) -> Result<Option<AuditEntry>, ReviewError> {
        let db = self.db();
        let tx = self.conn.transaction().map_err(&db)?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, before FROM audit WHERE undone_by IS NULL AND action NOT IN ('undo', 'import')
                 ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(&db)?;
        let Some((id, before)) = last else {
            return Ok(None);
        };
        let images: BeforeImages = serde_json::from_str(&before).unwrap_or_default();
        let mut undo_before = BeforeImages::new();
        for (table, row, image) in images.iter().rev() {
            snapshot(&tx, table, *row, &mut undo_before).map_err(&db)?;
            restore(&tx, table, *row, image).map_err(&db)?;
        }
        let undo_id =
            insert_audit(&tx, who, "undo", &json!({"undid": id}), &undo_before).map_err(&db)?;
        tx.execute(
            "UPDATE audit SET undone_by = ?1 WHERE id = ?2",
            params![undo_id, id],
        )
        .map_err(&db)?;
        tx.commit().map_err(&db)?;
        Ok(self.audit()?.into_iter().find(|e| e.id == id))
    }

    /// The audit trail, oldest first.
    pub fn audit(&self) -> Result<Vec<AuditEntry>, ReviewError> {
        let db = self.db();
        let mut stmt = self
            .conn
            .prepare("SELECT id, at, who, action, detail, undone_by FROM audit ORDER BY id")
            .map_err(&db)?;
        let rows = stmt
            .query_map([], |r| {
                let detail: String = r.get(4)?;
                Ok(AuditEntry {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    who: r.get(2)?,
                    action: r.get(3)?,
                    detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
                    undone_by: r.get(5)?,
                })
            })
            .map_err(&db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&db)
    }

    /// Whether [`Project::undo`] has something to revert.
    pub fn can_undo(&self) -> Result<bool, ReviewError> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM audit WHERE undone_by IS NULL AND action NOT IN ('undo', 'import')",
                [],
                |r| r.get(0),
            )
            .map_err(self.db())?;
        Ok(n > 0)
    }

    /// What breaks the store's rules right now (empty when all hold): a passage in two codes, a
    /// merged code that still has passages or points at a missing, merged or itself code, a
    /// coding of a missing code or passage. For tests and `--check`-style audits.
    pub fn rule_violations(&self) -> Result<Vec<String>, ReviewError> {
        const CHECKS: [(&str, &str); 5] = [
            (
                "passage in more than one code",
                "SELECT passage_id FROM codings GROUP BY passage_id HAVING COUNT(*) > 1",
            ),
            (
                "merged code still has passages",
                "SELECT DISTINCT c.id FROM codes c JOIN codings g ON g.code_id = c.id
                 WHERE c.status = 'merged'",
            ),
            (
                "merged code points at itself, a missing code or a merged code",
                "SELECT c.id FROM codes c LEFT JOIN codes t ON t.id = c.merged_into
                 WHERE c.status = 'merged'
                   AND (t.id IS NULL OR t.id = c.id OR t.status = 'merged')",
            ),
            (
                "coding of a missing code",
                "SELECT g.id FROM codings g LEFT JOIN codes c ON c.id = g.code_id WHERE c.id IS NULL",
            ),
            (
                "coding of a missing passage",
                "SELECT g.id FROM codings g LEFT JOIN passages p ON p.id = g.passage_id
                 WHERE p.id IS NULL",
            ),
        ];
        let db = self.db();
        let mut found = Vec::new();
        for (what, sql) in CHECKS {
            let mut stmt = self.conn.prepare(sql).map_err(&db)?;
            let ids: Vec<i64> = stmt
                .query_map([], |r| r.get(0))
                .map_err(&db)?
                .collect::<Result<_, _>>()
                .map_err(&db)?;
            found.extend(ids.into_iter().map(|id| format!("{what}: {id}")));
        }
        Ok(found)
    }

    /// The connection, for the read models in [`super::view`].
    pub(super) fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// Projects made before `codings.reviewed` existed get the column (0: placed by the machine).
fn add_reviewed_column(conn: &Connection) -> rusqlite::Result<()> {
    let has: i64 = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('codings') WHERE name = 'reviewed'",
        [],
        |r| r.get(0),
    )?;
    if has == 0 {
        conn.execute(
            "ALTER TABLE codings ADD COLUMN reviewed INTEGER NOT NULL DEFAULT 0",
            [],
        )?;
    }
    Ok(())
}

/// Takes the exclusive lock `<database>.lock`; the OS drops it when the process dies.
fn lock_project(db: &Path) -> Result<std::fs::File, ReviewError> {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| ReviewError::Io {
            path: lock_path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(ReviewError::Busy {
            path: db.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(ReviewError::Io {
            path: lock_path,
            source,
        }),
    }
}

fn db_err(path: PathBuf) -> impl Fn(rusqlite::Error) -> ReviewError {
    move |source| ReviewError::Db {
        path: path.clone(),
        source,
    }
}

fn read_transcripts(dir: &Path) -> Result<Vec<(Transcript, PathBuf)>, ReviewError> {
    let mut paths = Vec::new();
    for folder in [dir.join(crate::batch::TRANSCRIPTS_DIR), dir.to_path_buf()] {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.to_string_lossy().ends_with(Format::Json.file_suffix()) {
                paths.push(p);
            }
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|p| Ok((export::read_transcript(&p)?, p)))
        .collect()
}

/// Adds a recording (1) or refreshes machine text that nobody edited (0).
fn import_transcript(
    tx: &Transaction<'_>,
    t: &Transcript,
    transcript_path: &Path,
) -> rusqlite::Result<usize> {
    let resolved = resolve_audio(&t.source.path, transcript_path);
    let found = resolved.is_some();
    let audio = resolved.unwrap_or_else(|| t.source.path.clone());
    let json = export::render_json(t);
    // A path found at an earlier import is kept when this import (from another folder, say)
    // cannot find the file.
    let new = tx.execute(
        "INSERT INTO recordings(uri, audio_path, duration_ms, language, transcript_json)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(uri) DO UPDATE SET
             audio_path = CASE WHEN ?6 THEN excluded.audio_path ELSE recordings.audio_path END,
             duration_ms = excluded.duration_ms, language = excluded.language,
             transcript_json = excluded.transcript_json",
        params![
            t.uri,
            audio,
            t.source.duration_ms as i64,
            t.language.code,
            json,
            found
        ],
    )?;
    let existed: i64 = tx.query_row(
        "SELECT COUNT(*) FROM segments WHERE uri = ?1 AND idx >= 0",
        [&t.uri],
        |r| r.get(0),
    )?;
    for (i, s) in t.segments.iter().enumerate() {
        tx.execute(
            "INSERT INTO segments(uri, idx, start_ms, end_ms, speaker, text, machine_text)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT(uri, idx) DO UPDATE SET
                 text = CASE WHEN segments.text = segments.machine_text THEN excluded.text ELSE segments.text END,
                 machine_text = excluded.machine_text, start_ms = excluded.start_ms,
                 end_ms = excluded.end_ms, speaker = excluded.speaker",
            params![t.uri, i as i64, s.start_ms as i64, s.end_ms as i64, s.speaker, s.text.trim()],
        )?;
        if let Some(label) = &s.speaker {
            tx.execute(
                "INSERT OR IGNORE INTO speakers(uri, label, name) VALUES (?1, ?2, ?2)",
                params![t.uri, label],
            )?;
        }
    }
    for (k, span) in t.untranscribed.iter().enumerate() {
        tx.execute(
            "INSERT INTO segments(uri, idx, start_ms, end_ms, speaker, text, machine_text)
             VALUES (?1, ?2, ?3, ?4, NULL, '', '')
             ON CONFLICT(uri, idx) DO UPDATE SET
                 start_ms = excluded.start_ms, end_ms = excluded.end_ms",
            params![
                t.uri,
                untranscribed_idx(k),
                span.start_ms as i64,
                span.end_ms as i64
            ],
        )?;
    }
    Ok(usize::from(new > 0 && existed == 0))
}

/// The `segments.idx` of a transcript's `k`-th untranscribed span (negative: segment rows
/// keep their transcript positions 0, 1, …).
pub(crate) fn untranscribed_idx(k: usize) -> i64 {
    -1 - k as i64
}

/// Which untranscribed span a negative `segments.idx` is (`None` for a segment's idx).
pub(crate) fn untranscribed_position(idx: i64) -> Option<usize> {
    usize::try_from(-1 - idx).ok()
}

/// The recording as an absolute path that works whatever folder the server runs from, or
/// `None` when it cannot be found. The transcript keeps the path as the user gave it, relative
/// to where `run` or `batch` was started; that folder is not known here, so a relative path is
/// tried from the current folder, then from the transcript's folder and each folder above it
/// (the output folder usually sits inside the folder the command ran in).
fn resolve_audio(source: &str, transcript_path: &Path) -> Option<String> {
    let p = Path::new(source);
    let absolute = |c: &Path| {
        c.canonicalize()
            .unwrap_or_else(|_| c.to_path_buf())
            .display()
            .to_string()
    };
    if p.is_absolute() || p.is_file() {
        return p.is_file().then(|| absolute(p));
    }
    let start = transcript_path
        .canonicalize()
        .unwrap_or_else(|_| transcript_path.to_path_buf());
    start
        .ancestors()
        .skip(1)
        .map(|dir| dir.join(p))
        .find(|c| c.is_file())
        .map(|c| absolute(&c))
}

fn passage_key(uri: &str, start_ms: u64, end_ms: u64) -> String {
    format!("{uri}@{start_ms}-{end_ms}")
}

fn import_analysis(
    tx: &Transaction<'_>,
    a: &AnalysisArtifact,
    summary: &mut ImportSummary,
) -> rusqlite::Result<()> {
    let mut row_of = std::collections::HashMap::new();
    for p in &a.passages.passages {
        let key = passage_key(&p.uri, p.start_ms, p.end_ms);
        let added = tx.execute(
            "INSERT OR IGNORE INTO passages(key, uri, speaker, start_ms, end_ms, role, text)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                key,
                p.uri,
                p.speaker,
                p.start_ms as i64,
                p.end_ms as i64,
                p.role.as_str(),
                p.text
            ],
        )?;
        summary.new_passages += added;
        let id: i64 = tx.query_row("SELECT id FROM passages WHERE key = ?1", [&key], |r| {
            r.get(0)
        })?;
        row_of.insert(p.id, id);
    }
    import_vectors(tx, a, &row_of)?;
    import_code_text_vectors(tx, a)?;
    let mut position: i64 =
        tx.query_row("SELECT COALESCE(MAX(position), 0) FROM codes", [], |r| {
            r.get(0)
        })?;
    for code in &a.codebook.codes {
        let theme = format!("T{}", code.theme + 1);
        let machine_key = format!("{theme}:{}", code.label);
        let exists: Option<i64> = tx
            .query_row(
                "SELECT id FROM codes WHERE machine_key = ?1",
                [&machine_key],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            continue; // already imported: whatever the reviewer did with it stands
        }
        position += 1;
        tx.execute(
            "INSERT INTO codes(machine_key, label, definition, keywords, theme, position)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                machine_key,
                code.label,
                code.definition,
                code.keywords.join("; "),
                theme,
                position
            ],
        )?;
        let code_id = tx.last_insert_rowid();
        summary.new_codes += 1;
        let quotes: std::collections::HashSet<usize> =
            code.quotes.iter().map(|q| q.passage).collect();
        let members = a
            .themes
            .get(code.theme)
            .map(|t| t.members.as_slice())
            .unwrap_or(&[]);
        for m in members {
            if let Some(&pid) = row_of.get(m) {
                // A passage is in at most one code: one coded earlier keeps its code.
                tx.execute(
                    "INSERT INTO codings(code_id, passage_id, quote) SELECT ?1, ?2, ?3
                     WHERE NOT EXISTS (SELECT 1 FROM codings WHERE passage_id = ?2)",
                    params![code_id, pid, quotes.contains(m)],
                )?;
            }
        }
    }
    Ok(())
}

/// A vector as stored in the vector tables: its `f32`s little-endian.
fn vector_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A vector stored by [`vector_blob`].
pub(crate) fn blob_vector(blob: &[u8]) -> Vec<f32> {
    blob.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Stores the passages' text vectors (machine data, not a decision: a newer analysis's vectors
/// replace older ones). An artifact without them, or with damaged ones, leaves what is stored.
fn import_vectors(
    tx: &Transaction<'_>,
    a: &AnalysisArtifact,
    row_of: &std::collections::HashMap<usize, i64>,
) -> rusqlite::Result<()> {
    let Some(rows) = a.vectors.as_ref().and_then(|v| v.unpack()) else {
        return Ok(());
    };
    let mut insert = tx.prepare(
        "INSERT OR REPLACE INTO passage_vectors(passage_id, version, vector) VALUES (?1, ?2, ?3)",
    )?;
    for (id, v) in rows {
        if let Some(&pid) = row_of.get(&id) {
            insert.execute(params![
                pid,
                analysis_json::VECTORS_VERSION,
                vector_blob(&v)
            ])?;
        }
    }
    Ok(())
}

/// Stores the codes' texts as vectors (machine data, like the passages' vectors: a newer
/// analysis's replace older ones; without them, what is stored stays).
fn import_code_text_vectors(tx: &Transaction<'_>, a: &AnalysisArtifact) -> rusqlite::Result<()> {
    let Some(rows) = a.code_text_vectors.as_ref().and_then(|v| v.unpack()) else {
        return Ok(());
    };
    let mut insert = tx.prepare(
        "INSERT OR REPLACE INTO code_text_vectors(text, version, vector) VALUES (?1, ?2, ?3)",
    )?;
    for (text, v) in rows {
        insert.execute(params![
            text,
            analysis_json::VECTORS_VERSION,
            vector_blob(&v)
        ])?;
    }
    Ok(())
}

fn apply_in(
    tx: &Transaction<'_>,
    action: &Action,
    before: &mut BeforeImages,
) -> Result<(), ReviewError> {
    check_action(tx, action)?;
    let db = |source| ReviewError::Db {
        path: PathBuf::from(tx.path().unwrap_or("project")),
        source,
    };
    let set_status = |code: i64, status: &str, before: &mut BeforeImages| {
        snapshot(tx, "codes", code, before).map_err(db)?;
        tx.execute(
            "UPDATE codes SET status = ?1 WHERE id = ?2",
            params![status, code],
        )
        .map_err(db)?;
        Ok::<(), ReviewError>(())
    };
    match action {
        Action::Accept { code } => set_status(*code, "accepted", before)?,
        Action::Reject { code } => set_status(*code, "rejected", before)?,
        Action::Reopen { code } => set_status(*code, "proposed", before)?,
        Action::Rename { code, label } => {
            snapshot(tx, "codes", *code, before).map_err(db)?;
            tx.execute(
                "UPDATE codes SET label = ?1 WHERE id = ?2",
                params![label.trim(), code],
            )
            .map_err(db)?;
        }
        Action::Merge { into, from } => merge(tx, *into, from, before).map_err(db)?,
        Action::Split {
            code,
            passages,
            label,
        } => {
            let (theme, position): (String, i64) = tx
                .query_row(
                    "SELECT theme, position FROM codes WHERE id = ?1",
                    [code],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(db)?;
            tx.execute(
                "INSERT INTO codes(label, status, theme, position) VALUES (?1, 'accepted', ?2, ?3)",
                params![label.trim(), theme, position],
            )
            .map_err(db)?;
            let new = tx.last_insert_rowid();
            before.push(("codes".to_string(), new, Value::Null));
            for (coding, passage, flags) in codings_of(tx, *code).map_err(db)? {
                if passages.contains(&passage) {
                    snapshot(tx, "codings", coding, before).map_err(db)?;
                    tx.execute("DELETE FROM codings WHERE id = ?1", [coding])
                        .map_err(db)?;
                    add_coding(tx, new, passage, flags, before).map_err(db)?;
                }
            }
        }
        Action::Move { passage, from, to } => {
            if let Some(f) = from {
                remove_coding(tx, *f, *passage, before).map_err(db)?;
            }
            add_coding(tx, *to, *passage, CodingFlags::BY_REVIEWER, before).map_err(db)?;
        }
        Action::NewCode {
            label,
            passage,
            from,
        } => {
            if let Some(f) = from {
                remove_coding(tx, *f, *passage, before).map_err(db)?;
            }
            tx.execute(
                "INSERT INTO codes(label, status, theme, position)
                 VALUES (?1, 'accepted', '', (SELECT COALESCE(MAX(position), 0) + 1 FROM codes))",
                params![label.trim()],
            )
            .map_err(db)?;
            let new = tx.last_insert_rowid();
            before.push(("codes".to_string(), new, Value::Null));
            add_coding(tx, new, *passage, CodingFlags::BY_REVIEWER, before).map_err(db)?;
        }
        Action::Memo { target, text } => {
            let existing: Option<i64> = tx
                .query_row("SELECT id FROM memos WHERE target = ?1", [target], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db)?;
            match (existing, text.trim().is_empty()) {
                (Some(id), true) => {
                    snapshot(tx, "memos", id, before).map_err(db)?;
                    tx.execute("DELETE FROM memos WHERE id = ?1", [id])
                        .map_err(db)?;
                }
                (Some(id), false) => {
                    snapshot(tx, "memos", id, before).map_err(db)?;
                    tx.execute(
                        "UPDATE memos SET text = ?1 WHERE id = ?2",
                        params![text, id],
                    )
                    .map_err(db)?;
                }
                (None, true) => {}
                (None, false) => {
                    tx.execute(
                        "INSERT INTO memos(target, text) VALUES (?1, ?2)",
                        params![target, text],
                    )
                    .map_err(db)?;
                    before.push(("memos".to_string(), tx.last_insert_rowid(), Value::Null));
                }
            }
        }
        Action::RenameSpeaker { uri, label, name } => {
            let id: i64 = tx
                .query_row(
                    "SELECT id FROM speakers WHERE uri = ?1 AND label = ?2",
                    params![uri, label],
                    |r| r.get(0),
                )
                .map_err(db)?;
            snapshot(tx, "speakers", id, before).map_err(db)?;
            tx.execute(
                "UPDATE speakers SET name = ?1 WHERE id = ?2",
                params![name.trim(), id],
            )
            .map_err(db)?;
        }
        Action::EditSegment { segment, text } => {
            snapshot(tx, "segments", *segment, before).map_err(db)?;
            tx.execute(
                "UPDATE segments SET text = ?1 WHERE id = ?2",
                params![text.trim(), segment],
            )
            .map_err(db)?;
        }
    }
    Ok(())
}

/// Folds `from` into `into`: their passages join it, they become `merged`, and codes merged
/// into them earlier now point at `into` (so no code is ever merged into a merged code).
fn merge(
    tx: &Transaction<'_>,
    into: i64,
    from: &[i64],
    before: &mut BeforeImages,
) -> rusqlite::Result<()> {
    for &f in from {
        for (coding, passage, flags) in codings_of(tx, f)? {
            snapshot(tx, "codings", coding, before)?;
            tx.execute("DELETE FROM codings WHERE id = ?1", [coding])?;
            add_coding(tx, into, passage, flags, before)?;
        }
        let earlier: Vec<i64> = {
            let mut stmt = tx.prepare("SELECT id FROM codes WHERE merged_into = ?1")?;
            stmt.query_map([f], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        for e in earlier {
            snapshot(tx, "codes", e, before)?;
            tx.execute(
                "UPDATE codes SET merged_into = ?1 WHERE id = ?2",
                params![into, e],
            )?;
        }
        snapshot(tx, "codes", f, before)?;
        tx.execute(
            "UPDATE codes SET status = 'merged', merged_into = ?1 WHERE id = ?2",
            params![into, f],
        )?;
    }
    Ok(())
}

fn refused(reason: impl Into<String>) -> ReviewError {
    ReviewError::Refused {
        reason: reason.into(),
    }
}

/// The status of `code`; `NoSuch` when there is no such code.
fn code_status(tx: &Transaction<'_>, code: i64) -> Result<String, ReviewError> {
    tx.query_row("SELECT status FROM codes WHERE id = ?1", [code], |r| {
        r.get(0)
    })
    .optional()
    .map_err(|source| ReviewError::Db {
        path: PathBuf::from(tx.path().unwrap_or("project")),
        source,
    })?
    .ok_or_else(|| ReviewError::NoSuch {
        what: "code",
        id: code.to_string(),
    })
}

/// The status of `code`, refusing a code that was merged away (it has no passages left and is
/// not in the exports: undo the merge to bring it back).
fn live_code_status(tx: &Transaction<'_>, code: i64) -> Result<String, ReviewError> {
    let status = code_status(tx, code)?;
    if status == "merged" {
        return Err(refused(format!(
            "code {code} was merged into another code; undo the merge to change it"
        )));
    }
    Ok(status)
}

fn row_exists(tx: &Transaction<'_>, table: &str, id: i64) -> Result<bool, ReviewError> {
    debug_assert!(["passages", "segments"].contains(&table));
    tx.query_row(
        &format!("SELECT COUNT(*) FROM {table} WHERE id = ?1"),
        [id],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(|source| ReviewError::Db {
        path: PathBuf::from(tx.path().unwrap_or("project")),
        source,
    })
}

fn require_passage(tx: &Transaction<'_>, passage: i64) -> Result<(), ReviewError> {
    if row_exists(tx, "passages", passage)? {
        Ok(())
    } else {
        Err(ReviewError::NoSuch {
            what: "passage",
            id: passage.to_string(),
        })
    }
}

/// The codes `passage` is coded in now (at most one while the store's rules hold).
fn codes_of_passage(tx: &Transaction<'_>, passage: i64) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = tx.prepare("SELECT code_id FROM codings WHERE passage_id = ?1 ORDER BY id")?;
    let rows = stmt.query_map([passage], |r| r.get(0))?;
    rows.collect()
}

/// The store's rules, checked before an action changes anything, in this one place:
/// - every id named exists (code, passage, segment, speaker, memo target);
/// - a merged code is gone: no action may change it (undo the merge instead);
/// - merge goes into a live code (not merged, not rejected), from at least one other code,
///   never from itself, no code twice;
/// - a passage is in at most one code: `move` must name the code it is in now as `from` (no
///   `from` when it is in none) and go somewhere else;
/// - split moves at least one passage, each coded in the code being split;
/// - a new code from a passage follows the same `from` rule as `move`;
/// - names are not empty.
///
/// A refused action changes nothing and leaves no audit entry.
fn check_action(tx: &Transaction<'_>, action: &Action) -> Result<(), ReviewError> {
    let db = |source| ReviewError::Db {
        path: PathBuf::from(tx.path().unwrap_or("project")),
        source,
    };
    match action {
        Action::Accept { code } | Action::Reject { code } | Action::Reopen { code } => {
            live_code_status(tx, *code)?;
        }
        Action::Rename { code, label } => {
            non_empty(label, "code name")?;
            live_code_status(tx, *code)?;
        }
        Action::Merge { into, from } => {
            if live_code_status(tx, *into)? == "rejected" {
                return Err(refused(format!(
                    "code {into} is rejected; accept or reopen it before merging into it"
                )));
            }
            if from.is_empty() {
                return Err(refused("merge needs at least one code to fold in (`from`)"));
            }
            let mut seen = std::collections::HashSet::new();
            for &f in from {
                if f == *into {
                    return Err(refused(format!("code {f} cannot be merged into itself")));
                }
                if !seen.insert(f) {
                    return Err(refused(format!("code {f} is named twice in `from`")));
                }
                live_code_status(tx, f)?;
            }
        }
        Action::Split {
            code,
            passages,
            label,
        } => {
            non_empty(label, "code name")?;
            live_code_status(tx, *code)?;
            if passages.is_empty() {
                return Err(refused("split needs at least one passage for the new code"));
            }
            let members: std::collections::HashSet<i64> = codings_of(tx, *code)
                .map_err(db)?
                .into_iter()
                .map(|(_, p, _)| p)
                .collect();
            if let Some(p) = passages.iter().find(|p| !members.contains(p)) {
                require_passage(tx, *p)?;
                return Err(refused(format!("passage {p} is not in code {code}")));
            }
        }
        Action::Move { passage, from, to } => {
            require_passage(tx, *passage)?;
            live_code_status(tx, *to)?;
            if let Some(f) = from {
                code_status(tx, *f)?;
            }
            let now = codes_of_passage(tx, *passage).map_err(db)?;
            check_leaves(*passage, now.first(), from.as_ref())?;
            if now.first() == Some(to) {
                return Err(refused(format!(
                    "passage {passage} is already in code {to}"
                )));
            }
        }
        Action::NewCode {
            label,
            passage,
            from,
        } => {
            non_empty(label, "code name")?;
            require_passage(tx, *passage)?;
            if let Some(f) = from {
                code_status(tx, *f)?;
            }
            let now = codes_of_passage(tx, *passage).map_err(db)?;
            check_leaves(*passage, now.first(), from.as_ref())?;
        }
        Action::Memo { target, .. } => check_memo_target(tx, target)?,
        Action::RenameSpeaker { uri, label, name } => {
            non_empty(name, "speaker name")?;
            let n: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM speakers WHERE uri = ?1 AND label = ?2",
                    params![uri, label],
                    |r| r.get(0),
                )
                .map_err(db)?;
            if n == 0 {
                return Err(ReviewError::NoSuch {
                    what: "speaker",
                    id: format!("{uri}/{label}"),
                });
            }
        }
        Action::EditSegment { segment, .. } => {
            if !row_exists(tx, "segments", *segment)? {
                return Err(ReviewError::NoSuch {
                    what: "segment",
                    id: segment.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// A passage in code `now` (or in none) may leave only the code it is in: `from` must name it.
fn check_leaves(passage: i64, now: Option<&i64>, from: Option<&i64>) -> Result<(), ReviewError> {
    match (now, from) {
        (Some(c), Some(f)) if c == f => Ok(()),
        (Some(c), _) => Err(refused(format!(
            "passage {passage} is in code {c}; move it from there (`from`: {c})"
        ))),
        (None, Some(f)) => Err(refused(format!(
            "passage {passage} is not in code {f} (it is in no code; leave out `from`)"
        ))),
        (None, None) => Ok(()),
    }
}

fn non_empty<'a>(s: &'a str, what: &'static str) -> Result<&'a str, ReviewError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(ReviewError::Empty { what });
    }
    Ok(s)
}

/// `project`, or `code:<id>` / `passage:<id>` naming a code or passage that exists.
fn check_memo_target(tx: &Transaction<'_>, target: &str) -> Result<(), ReviewError> {
    if target == "project" {
        return Ok(());
    }
    let no_such = || ReviewError::NoSuch {
        what: "memo target",
        id: target.to_string(),
    };
    if let Some(id) = target.strip_prefix("code:") {
        let id = id.parse::<i64>().map_err(|_| no_such())?;
        return code_status(tx, id).map(|_| ()).map_err(|_| no_such());
    }
    if let Some(id) = target.strip_prefix("passage:") {
        let id = id.parse::<i64>().map_err(|_| no_such())?;
        return require_passage(tx, id).map_err(|_| no_such());
    }
    Err(no_such())
}

/// How a passage is coded: as one of the code's quotes, and whether a reviewer put it there
/// (`move`, `new_code`; kept through merge and split) rather than the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CodingFlags {
    quote: bool,
    reviewed: bool,
}

impl CodingFlags {
    const BY_REVIEWER: CodingFlags = CodingFlags {
        quote: false,
        reviewed: true,
    };
}

fn codings_of(tx: &Transaction<'_>, code: i64) -> rusqlite::Result<Vec<(i64, i64, CodingFlags)>> {
    let mut stmt = tx.prepare(
        "SELECT id, passage_id, quote, reviewed FROM codings WHERE code_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([code], |r| {
        let flags = CodingFlags {
            quote: r.get(2)?,
            reviewed: r.get(3)?,
        };
        Ok((r.get(0)?, r.get(1)?, flags))
    })?;
    rows.collect()
}

fn add_coding(
    tx: &Transaction<'_>,
    code: i64,
    passage: i64,
    flags: CodingFlags,
    before: &mut BeforeImages,
) -> rusqlite::Result<()> {
    let added = tx.execute(
        "INSERT OR IGNORE INTO codings(code_id, passage_id, quote, reviewed) VALUES (?1, ?2, ?3, ?4)",
        params![code, passage, flags.quote, flags.reviewed],
    )?;
    if added > 0 {
        before.push(("codings".to_string(), tx.last_insert_rowid(), Value::Null));
    }
    Ok(())
}

/// Takes `passage` out of `code` (a move's or a new code's source), keeping the row's before-image.
fn remove_coding(
    tx: &Transaction<'_>,
    code: i64,
    passage: i64,
    before: &mut BeforeImages,
) -> rusqlite::Result<()> {
    let coding: Option<i64> = tx
        .query_row(
            "SELECT id FROM codings WHERE code_id = ?1 AND passage_id = ?2",
            params![code, passage],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = coding {
        snapshot(tx, "codings", id, before)?;
        tx.execute("DELETE FROM codings WHERE id = ?1", [id])?;
    }
    Ok(())
}

/// Records row `id` of `table` as it is now (null if absent), before it changes.
fn snapshot(
    tx: &Transaction<'_>,
    table: &str,
    id: i64,
    before: &mut BeforeImages,
) -> rusqlite::Result<()> {
    assert!(
        UNDOABLE_TABLES.contains(&table),
        "not an undoable table: {table}"
    );
    let mut stmt = tx.prepare(&format!("SELECT * FROM {table} WHERE id = ?1"))?;
    let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
    let row = stmt
        .query_row([id], |r| {
            let mut m = Map::new();
            for (i, n) in names.iter().enumerate() {
                m.insert(n.clone(), sql_to_json(r.get_ref(i)?));
            }
            Ok(Value::Object(m))
        })
        .optional()?;
    before.push((table.to_string(), id, row.unwrap_or(Value::Null)));
    Ok(())
}

/// Puts row `id` of `table` back as `image` (deleting it when `image` is null).
fn restore(tx: &Transaction<'_>, table: &str, id: i64, image: &Value) -> rusqlite::Result<()> {
    if !UNDOABLE_TABLES.contains(&table) {
        return Ok(()); // never from this program; ignore rather than trust it
    }
    tx.execute(&format!("DELETE FROM {table} WHERE id = ?1"), [id])?;
    let Value::Object(m) = image else {
        return Ok(());
    };
    let cols: Vec<&String> = m.keys().collect();
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO {table}({}) VALUES ({})",
        cols.iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", "),
        marks.join(", ")
    );
    let values: Vec<SqlValue> = m.values().map(json_to_sql).collect();
    tx.execute(&sql, rusqlite::params_from_iter(values))?;
    Ok(())
}

fn sql_to_json(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => json!(i),
        ValueRef::Real(f) => json!(f),
        ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => json!(b),
    }
}

fn json_to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(SqlValue::Integer)
            .unwrap_or_else(|| SqlValue::Real(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

fn insert_audit(
    tx: &Transaction<'_>,
    who: &str,
    action: &str,
    detail: &Value,
    before: &BeforeImages,
) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO audit(at, who, action, detail, before) VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?1, ?2, ?3, ?4)",
        params![who, action, detail.to_string(), serde_json::to_string(before).unwrap_or_default()],
    )?;
    Ok(tx.last_insert_rowid())
}
