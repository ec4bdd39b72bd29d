//! The record of batch runs on this machine (`batch_runs.sqlite` in the data dir): each run's
//! kind, service, input, progress and outcome, written by the command as it goes and read by the
//! TUI's Imports tab. A run whose process is gone without finishing (killed, machine restarted)
//! reads as cancelled, with that said.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::BatchError;
use crate::domain::{BatchRun, JobState};

/// File name in the data dir.
pub const FILE: &str = "batch_runs.sqlite";

/// Progress is written at most this often (the last update is always written).
const WRITE_EVERY: Duration = Duration::from_millis(500);

/// A run still marked running with no update for this long is taken as gone when its process
/// cannot be checked.
const STALE_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(120);

fn err(path: &Path) -> impl Fn(rusqlite::Error) -> BatchError + '_ {
    move |e| BatchError::Cache {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

fn open(path: &Path) -> Result<Connection, BatchError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| BatchError::Cache {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    }
    let conn = Connection::open(path).map_err(err(path))?;
    conn.busy_timeout(Duration::from_secs(2))
        .map_err(err(path))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE IF NOT EXISTS runs (
             id TEXT PRIMARY KEY,
             kind TEXT NOT NULL,
             platform TEXT NOT NULL,
             service TEXT NOT NULL,
             input TEXT NOT NULL,
             state TEXT NOT NULL,
             done INTEGER NOT NULL DEFAULT 0,
             failed INTEGER NOT NULL DEFAULT 0,
             skipped INTEGER NOT NULL DEFAULT 0,
             total INTEGER NOT NULL DEFAULT 0,
             unchanged INTEGER NOT NULL DEFAULT 0,
             started_on TEXT NOT NULL,
             updated_on TEXT NOT NULL,
             finished_on TEXT,
             message TEXT,
             pid INTEGER NOT NULL
         );",
    )
    .map_err(err(path))?;
    Ok(conn)
}

/// The run this process is making.
pub struct Recorder {
    conn: Connection,
    path: PathBuf,
    pub run: BatchRun,
    last_write: Option<Instant>,
}

impl Recorder {
    /// Records a new running run.
    pub fn start(
        path: &Path,
        kind: &str,
        platform: &str,
        service: &str,
        input: &str,
    ) -> Result<Recorder, BatchError> {
        let conn = open(path)?;
        let now = Utc::now();
        let run = BatchRun {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            kind: kind.into(),
            platform: platform.into(),
            service: service.into(),
            input: input.into(),
            state: JobState::Running,
            done: 0,
            failed: 0,
            skipped: 0,
            total: 0,
            unchanged: 0,
            started_on: now,
            updated_on: now,
            finished_on: None,
            message: None,
        };
        conn.execute(
            "INSERT INTO runs (id, kind, platform, service, input, state, started_on, updated_on, pid)
             VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?6, ?7)",
            params![run.id, kind, platform, service, input, now.to_rfc3339(), std::process::id()],
        )
        .map_err(err(path))?;
        Ok(Recorder {
            conn,
            path: path.to_path_buf(),
            run,
            last_write: None,
        })
    }

    fn write(&mut self) -> Result<(), BatchError> {
        let r = &self.run;
        self.conn
            .execute(
                "UPDATE runs SET state = ?2, done = ?3, failed = ?4, skipped = ?5, total = ?6,
                 unchanged = ?7, updated_on = ?8, finished_on = ?9, message = ?10 WHERE id = ?1",
                params![
                    r.id,
                    r.state.as_str(),
                    r.done as i64,
                    r.failed as i64,
                    r.skipped as i64,
                    r.total as i64,
                    r.unchanged as i64,
                    r.updated_on.to_rfc3339(),
                    r.finished_on.map(|t| t.to_rfc3339()),
                    r.message,
                ],
            )
            .map_err(err(&self.path))?;
        self.last_write = Some(Instant::now());
        Ok(())
    }

    /// Counts known before any call.
    pub fn plan(&mut self, total: u64, skipped: u64, unchanged: u64) {
        self.run.total = total;
        self.run.skipped = skipped;
        self.run.unchanged = unchanged;
        self.run.updated_on = Utc::now();
        if let Err(e) = self.write() {
            tracing::warn!("batch run record: {e}");
        }
    }

    /// Progress; written at most twice a second (a failed write is logged, never fatal).
    pub fn progress(&mut self, done: u64, failed: u64) {
        self.run.done = done;
        self.run.failed = failed;
        self.run.updated_on = Utc::now();
        if self.last_write.is_none_or(|t| t.elapsed() >= WRITE_EVERY)
            && let Err(e) = self.write()
        {
            tracing::warn!("batch run record: {e}");
        }
    }

    /// The outcome.
    pub fn finish(&mut self, state: JobState, message: impl Into<String>) {
        let now = Utc::now();
        self.run.state = state;
        self.run.updated_on = now;
        self.run.finished_on = Some(now);
        self.run.message = Some(crate::domain::units::strip_control(&message.into()));
        if let Err(e) = self.write() {
            tracing::warn!("batch run record: {e}");
        }
    }
}

/// Whether a process still runs, where that can be told (`None`: cannot tell here).
fn alive(pid: u32) -> Option<bool> {
    let proc = Path::new("/proc");
    proc.is_dir().then(|| proc.join(pid.to_string()).exists())
}

/// The newest `limit` runs, newest first.
pub fn list(path: &Path, limit: usize) -> Result<Vec<BatchRun>, BatchError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let conn = open(path)?;
    let mut stmt = conn
        .prepare(
            "SELECT id, kind, platform, service, input, state, done, failed, skipped, total,
             unchanged, started_on, updated_on, finished_on, message, pid
             FROM runs ORDER BY started_on DESC LIMIT ?1",
        )
        .map_err(err(path))?;
    let time = |s: String| {
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    };
    let rows = stmt
        .query_map(params![limit as i64], |r| {
            let state: String = r.get(5)?;
            Ok((
                BatchRun {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    platform: r.get(2)?,
                    service: r.get(3)?,
                    input: r.get(4)?,
                    state: match state.as_str() {
                        "done" => JobState::Done,
                        "failed" => JobState::Failed,
                        "cancelled" => JobState::Cancelled,
                        "queued" => JobState::Queued,
                        _ => JobState::Running,
                    },
                    done: r.get::<_, i64>(6)? as u64,
                    failed: r.get::<_, i64>(7)? as u64,
                    skipped: r.get::<_, i64>(8)? as u64,
                    total: r.get::<_, i64>(9)? as u64,
                    unchanged: r.get::<_, i64>(10)? as u64,
                    started_on: time(r.get(11)?),
                    updated_on: time(r.get(12)?),
                    finished_on: r.get::<_, Option<String>>(13)?.map(time),
                    message: r.get(14)?,
                },
                r.get::<_, i64>(15)? as u32,
            ))
        })
        .map_err(err(path))?;
    let now = Utc::now();
    let mut out = Vec::new();
    for row in rows {
        let (mut run, pid) = row.map_err(err(path))?;
        if run.state == JobState::Running {
            let gone = match alive(pid) {
                Some(a) => !a,
                None => now - run.updated_on > STALE_AFTER,
            };
            if gone {
                run.state = JobState::Cancelled;
                run.message = Some(
                    "the process stopped before the run finished (killed?): run the same command again to continue"
                        .into(),
                );
            }
        }
        out.push(run);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_recorded_progresses_and_finishes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join(FILE);
        let mut r = Recorder::start(&path, "embed", "local", "MINI_SVC", "notes.csv")
            .unwrap_or_else(|e| panic!("{e}"));
        r.plan(100, 2, 5);
        r.progress(40, 1);
        let now = list(&path, 10).unwrap_or_default();
        assert_eq!(now.len(), 1);
        assert_eq!(now[0].state, JobState::Running, "this process is alive");
        assert_eq!(
            (now[0].total, now[0].skipped, now[0].unchanged),
            (100, 2, 5)
        );
        r.progress(99, 1);
        r.finish(JobState::Done, "embedded 99 note(s)\x1b[31m");
        let done = list(&path, 10).unwrap_or_default();
        assert_eq!(done[0].state, JobState::Done);
        assert_eq!(
            (done[0].done, done[0].failed),
            (99, 1),
            "the last progress is written"
        );
        assert_eq!(done[0].message.as_deref(), Some("embedded 99 note(s)"));
    }

    #[test]
    fn a_run_whose_process_is_gone_reads_as_cancelled() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join(FILE);
        let r = Recorder::start(&path, "embed", "local", "S", "x.csv")
            .unwrap_or_else(|e| panic!("{e}"));
        // A pid that does not run (beyond Linux's pid_max) and an old heartbeat.
        r.conn
            .execute(
                "UPDATE runs SET pid = 4294967, updated_on = '2026-01-01T00:00:00+00:00'",
                [],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let runs = list(&path, 10).unwrap_or_default();
        assert_eq!(runs[0].state, JobState::Cancelled);
        assert!(runs[0].message.as_deref().unwrap_or("").contains("killed?"));
        assert!(
            list(&dir.path().join("none.sqlite"), 10)
                .unwrap_or_default()
                .is_empty()
        );
    }
}
