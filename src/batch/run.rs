//! Running rows through a service in batches: shrink on failure or slowness, split a failing batch
//! until the row that fails is alone, commit each finished batch, stop cleanly when asked.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::BatchError;
use super::cache::Cache;
use super::input::Note;
use crate::platform::{Platform, PlatformError};

/// How a batch run is paced.
#[derive(Debug, Clone)]
pub struct Pacing {
    /// Rows per call to start with.
    pub batch_size: usize,
    /// A call slower than this halves the batch size (Snowflake's ingress gives up after 60 s).
    pub slow_call: Duration,
}

impl Default for Pacing {
    fn default() -> Pacing {
        Pacing {
            batch_size: 32,
            slow_call: Duration::from_secs(20),
        }
    }
}

/// Progress after each batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub done: usize,
    pub failed: usize,
    pub total: usize,
    pub elapsed: Duration,
    pub batch_size: usize,
}

impl Progress {
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Estimated time left, once something is done.
    pub fn eta(&self) -> Option<Duration> {
        let left = self.total.saturating_sub(self.done + self.failed);
        (self.done > 0).then(|| Duration::from_secs_f64(left as f64 / self.rate()))
    }

    /// `[#####.....] 1,200/2,000  310 notes/s  ETA 3 s` for a terminal line.
    pub fn line(&self, unit: &str) -> String {
        let width = 30;
        let frac = if self.total == 0 {
            1.0
        } else {
            (self.done + self.failed) as f64 / self.total as f64
        };
        let filled = (frac * width as f64).round() as usize;
        let eta = self
            .eta()
            .map(|d| {
                format!(
                    "  ETA {}",
                    crate::domain::units::duration(d.as_secs() as i64)
                )
            })
            .unwrap_or_default();
        let failed = if self.failed > 0 {
            format!("  {} failed", self.failed)
        } else {
            String::new()
        };
        format!(
            "[{}{}] {}/{}  {:.0} {unit}/s{failed}{eta}",
            "#".repeat(filled.min(width)),
            ".".repeat(width - filled.min(width)),
            self.done,
            self.total,
            self.rate()
        )
    }
}

/// A row that could not be processed, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Failure {
    pub id: String,
    pub reason: String,
}

/// What a run did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    pub computed: usize,
    pub unchanged: usize,
    pub failed: Vec<Failure>,
    pub interrupted: bool,
    pub seconds: f64,
}

/// How often a call that met a passing fault (429, 502, 503, 504: a throttled or restarting
/// service) is tried again, with waits doubling from `TRANSIENT_FIRST_WAIT`, before the batch is
/// split as a failing one.
const TRANSIENT_TRIES: u32 = 8;
const TRANSIENT_FIRST_WAIT: Duration = Duration::from_millis(250);

fn transient(e: &PlatformError) -> bool {
    matches!(e, PlatformError::Api { status, .. } if crate::http::transient_status(*status))
}

/// Calls `method` on `service` for `rows` in batches; `done` receives each finished batch (indices
/// into `rows` and their outputs) and may fail the run. A call that meets a passing fault (the
/// service throttled or restarting an instance) is tried again after a wait; a failed call is
/// split in halves and retried, down to single rows, which are then reported as failures; a slow
/// call halves the batch size from then on. When the platform itself stops answering the run ends
/// at once (every finished batch is already saved) instead of failing every remaining row.
#[allow(clippy::too_many_arguments)]
pub async fn call_in_batches<F>(
    platform: &dyn Platform,
    service: &str,
    method: &str,
    rows: &[Vec<Value>],
    ids: &[String],
    pacing: &Pacing,
    stop: &AtomicBool,
    mut done: F,
    mut progress: impl FnMut(Progress),
) -> Result<(Vec<Failure>, bool), BatchError>
where
    F: FnMut(&[usize], Vec<Value>) -> Result<(), BatchError>,
{
    let started = Instant::now();
    let mut size = pacing.batch_size.max(1);
    let mut failures = Vec::new();
    let mut finished = 0;
    // Work: ranges of row indices, processed front to back.
    let mut queue: std::collections::VecDeque<(usize, usize)> = std::collections::VecDeque::new();
    let mut next = 0;
    let mut tries = 0u32;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok((failures, true));
        }
        let (lo, hi) = match queue.pop_front() {
            Some(r) => r,
            None if next < rows.len() => {
                let r = (next, (next + size).min(rows.len()));
                next = r.1;
                r
            }
            None => break,
        };
        let t = Instant::now();
        match platform.predict(service, method, &rows[lo..hi]).await {
            Ok(p) if p.outputs.len() == hi - lo => {
                tries = 0;
                let idx: Vec<usize> = (lo..hi).collect();
                done(&idx, p.outputs)?;
                finished += hi - lo;
                if t.elapsed() > pacing.slow_call && size > 1 {
                    size = (size / 2).max(1);
                }
            }
            Ok(p) => {
                return Err(BatchError::Invalid(format!(
                    "{service} {method} answered {} rows for {}",
                    p.outputs.len(),
                    hi - lo
                )));
            }
            Err(e) if transient(&e) && tries < TRANSIENT_TRIES => {
                let wait = TRANSIENT_FIRST_WAIT * 2u32.pow(tries.min(4));
                tries += 1;
                tracing::warn!("{service} {method}: {e}; trying again in {wait:?}");
                queue.push_front((lo, hi));
                tokio::time::sleep(wait).await;
                continue;
            }
            Err(e @ PlatformError::Unreachable { .. }) => {
                if finished == 0 {
                    // Nothing has worked yet: the plain error says it best.
                    return Err(e.into());
                }
                return Err(BatchError::Invalid(format!(
                    "{e}: {finished} of {} are done and saved; run the same command again to \
                     continue from there",
                    rows.len()
                )));
            }
            Err(e) if hi - lo > 1 => {
                // Split and retry; also send smaller batches from now on.
                tracing::warn!(
                    "{service} {method}: a batch of {} failed ({e}); splitting it",
                    hi - lo
                );
                let mid = lo + (hi - lo) / 2;
                queue.push_front((mid, hi));
                queue.push_front((lo, mid));
                size = (size / 2).max(1);
            }
            Err(e) => {
                failures.push(Failure {
                    id: ids.get(lo).cloned().unwrap_or_default(),
                    reason: e.to_string(),
                });
            }
        }
        progress(Progress {
            done: finished,
            failed: failures.len(),
            total: rows.len(),
            elapsed: started.elapsed(),
            batch_size: size,
        });
    }
    Ok((failures, false))
}

/// Which notes need computing under `model`/`version`: new ones, changed ones (text hash), and ones
/// embedded by another version. Returns their indices and how many are current.
pub fn stale(
    cache: &Cache,
    notes: &[Note],
    model: &str,
    version: &str,
) -> Result<(Vec<usize>, usize), BatchError> {
    let entries = cache.entries(model)?;
    let mut todo = Vec::new();
    for (i, n) in notes.iter().enumerate() {
        match entries.get(&n.id) {
            Some(e) if e.intact && e.version == version && e.content_hash == n.content_hash() => {}
            _ => todo.push(i),
        }
    }
    let current = notes.len() - todo.len();
    Ok((todo, current))
}

/// Embeds the notes [`stale`] found (`(indices, current)`) through `service` and stores them in
/// the cache, batch by batch.
#[allow(clippy::too_many_arguments)]
pub async fn embed(
    platform: &dyn Platform,
    service: &str,
    method: &str,
    (model, version): (&str, &str),
    notes: &[Note],
    (todo, unchanged): (Vec<usize>, usize),
    cache: &mut Cache,
    pacing: &Pacing,
    stop: &Arc<AtomicBool>,
    progress: impl FnMut(Progress),
) -> Result<Report, BatchError> {
    let started = Instant::now();
    let rows: Vec<Vec<Value>> = todo
        .iter()
        .map(|&i| vec![Value::String(notes[i].text.clone())])
        .collect();
    let ids: Vec<String> = todo.iter().map(|&i| notes[i].id.clone()).collect();
    let mut computed = 0;
    let (failed, interrupted) = call_in_batches(
        platform,
        service,
        method,
        &rows,
        &ids,
        pacing,
        stop,
        |idx, outputs| {
            let mut items = Vec::with_capacity(idx.len());
            for (&k, out) in idx.iter().zip(&outputs) {
                let note = &notes[todo[k]];
                let v = crate::platform::call::embedding(out).ok_or_else(|| {
                    BatchError::Invalid(format!(
                        "{service} {method} did not answer an embedding for note {}: is it a sentence-embedding service?",
                        note.id
                    ))
                })?;
                items.push((note.id.clone(), note.content_hash(), v));
            }
            cache.store(model, version, &items)?;
            computed += items.len();
            Ok(())
        },
        progress,
    )
    .await?;
    Ok(Report {
        computed,
        unchanged,
        failed,
        interrupted,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_has_rate_and_eta() {
        let p = Progress {
            done: 500,
            failed: 0,
            total: 1000,
            elapsed: Duration::from_secs(5),
            batch_size: 32,
        };
        assert_eq!(p.rate(), 100.0);
        assert_eq!(p.eta(), Some(Duration::from_secs(5)));
        let line = p.line("notes");
        assert!(
            line.starts_with("[###############...............] 500/1000  100 notes/s"),
            "{line}"
        );
        assert!(line.contains("ETA"), "{line}");
    }

    #[test]
    fn embeddings_are_read_from_both_shapes() {
        assert_eq!(
            crate::platform::call::embedding(&serde_json::json!({"output": [1.0, 2.5]})),
            Some(vec![1.0, 2.5])
        );
        assert_eq!(
            crate::platform::call::embedding(&serde_json::json!([0.5])),
            Some(vec![0.5])
        );
        assert_eq!(
            crate::platform::call::embedding(&serde_json::json!({"outputs": []})),
            None
        );
    }
}
