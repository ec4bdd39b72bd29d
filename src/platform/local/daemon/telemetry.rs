//! A service's telemetry on the local platform: its log (the last lines in memory, every line in a
//! file, redacted and stripped of terminal escapes), its event history, and its request metrics
//! sampled into a store pruned by count.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;

use crate::domain::{LogLine, MetricSample, ServiceEvent};

const LOG_CAPACITY: usize = 5000;
const SAMPLES_KEPT: usize = 720;

/// Events kept per service (the oldest go first).
const EVENT_CAPACITY: usize = 500;

/// A service's log: the last lines in memory, every line in a file.
pub struct LogRing {
    pub(super) lines: Mutex<(VecDeque<LogLine>, u64)>,
    pub(super) events: Mutex<VecDeque<ServiceEvent>>,
    pub(super) file: Mutex<Option<std::fs::File>>,
    pub changed: Notify,
}

impl LogRing {
    pub(super) fn new(path: Option<PathBuf>) -> LogRing {
        let file = path.and_then(|p| {
            if let Some(dir) = p.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        LogRing {
            lines: Mutex::new((VecDeque::new(), 0)),
            events: Mutex::new(VecDeque::new()),
            file: Mutex::new(file),
            changed: Notify::new(),
        }
    }

    /// Records an event, and writes it to the log as the supervisor's line.
    pub fn event(&self, instance_id: Option<u32>, severity: &str, name: &str, message: &str) {
        self.push(instance_id.unwrap_or(0), "supervisor", message);
        if let Ok(mut e) = self.events.lock() {
            e.push_back(ServiceEvent {
                at: Utc::now(),
                severity: severity.into(),
                name: name.into(),
                instance_id,
                container: instance_id.map(|_| "model-inference".to_string()),
                message: crate::secret::redact(&crate::domain::units::strip_control(message))
                    .into_owned(),
            });
            while e.len() > EVENT_CAPACITY {
                e.pop_front();
            }
        }
    }

    pub fn events(&self) -> Vec<ServiceEvent> {
        self.events
            .lock()
            .map(|e| e.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn push(&self, instance_id: u32, container: &str, line: &str) {
        let at = Utc::now();
        let line = crate::secret::redact(&crate::domain::units::strip_control(line)).into_owned();
        if let Ok(mut g) = self.lines.lock() {
            let seq = g.1;
            g.1 += 1;
            g.0.push_back(LogLine {
                seq,
                at,
                instance_id,
                container: container.to_string(),
                line: line.clone(),
            });
            while g.0.len() > LOG_CAPACITY {
                g.0.pop_front();
            }
        }
        if let Ok(mut f) = self.file.lock()
            && let Some(f) = f.as_mut()
        {
            let _ = writeln!(
                f,
                "{} {instance_id}/{container} {line}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            );
        }
        self.changed.notify_waiters();
    }

    /// Lines after `since` (all kept lines when `None`), at most `limit` of the newest.
    pub fn since(&self, since: Option<u64>, limit: usize) -> Vec<LogLine> {
        let Ok(g) = self.lines.lock() else {
            return Vec::new();
        };
        let lines: Vec<LogLine> =
            g.0.iter()
                .filter(|l| since.is_none_or(|s| l.seq > s))
                .cloned()
                .collect();
        let skip = lines.len().saturating_sub(limit);
        lines.into_iter().skip(skip).collect()
    }
}

/// Request counters and latencies since the last sample, and the samples kept.
#[derive(Default)]
pub struct Metrics {
    pub(super) latencies_ms: Mutex<Vec<f64>>,
    pub(super) requests: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) in_flight: AtomicU64,
    pub(super) samples: Mutex<VecDeque<MetricSample>>,
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

impl Metrics {
    pub(super) fn record(&self, ms: f64, error: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut l) = self.latencies_ms.lock() {
            l.push(ms);
        }
    }

    pub(super) fn sample(&self, interval: Duration, memory_bytes: u64) {
        let mut lat = self
            .latencies_ms
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        lat.sort_by(f64::total_cmp);
        let s = MetricSample {
            at: Utc::now(),
            interval_secs: interval.as_secs_f64(),
            requests: self.requests.swap(0, Ordering::Relaxed),
            errors: self.errors.swap(0, Ordering::Relaxed),
            p50_ms: percentile(&lat, 50.0),
            p95_ms: percentile(&lat, 95.0),
            p99_ms: percentile(&lat, 99.0),
            queue_depth: self.in_flight.load(Ordering::Relaxed),
            memory_bytes,
        };
        if let Ok(mut samples) = self.samples.lock() {
            samples.push_back(s);
            while samples.len() > SAMPLES_KEPT {
                samples.pop_front();
            }
        }
    }

    pub fn samples(&self) -> Vec<MetricSample> {
        self.samples
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[3.0], 99.0), Some(3.0));
    }

    #[test]
    fn the_log_ring_keeps_the_newest_lines() {
        let ring = LogRing::new(None);
        for i in 0..(LOG_CAPACITY + 10) {
            ring.push(0, "model-inference", &format!("line {i}"));
        }
        let all = ring.since(None, usize::MAX);
        assert_eq!(all.len(), LOG_CAPACITY);
        assert_eq!(all[0].line, "line 10");
        let tail = ring.since(Some(all[all.len() - 3].seq), 100);
        assert_eq!(tail.len(), 2);
        assert_eq!(ring.since(None, 5).len(), 5);
        ring.push(0, "x", "colour \u{1b}[31mred\u{1b}[0m");
        assert_eq!(ring.since(None, 1)[0].line, "colour red");
    }
}
