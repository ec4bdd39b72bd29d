//! A service's telemetry on the local platform: its log (the last lines in memory, every line in a
//! file, redacted and stripped of terminal escapes), its event history, and its request metrics
//! sampled into a store pruned by count.

use std::collections::{HashMap, VecDeque};
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

/// Lines kept of one instance process's own log (its current run, and its previous one).
const INSTANCE_LOG_CAPACITY: usize = 5000;

/// Each instance's own lines: the running process's, and the one before its last restart.
#[derive(Default)]
pub(super) struct InstanceLogs {
    current: HashMap<u32, VecDeque<LogLine>>,
    previous: HashMap<u32, Vec<LogLine>>,
}

/// A service's log: the last lines in memory, every line in a file.
pub struct LogRing {
    pub(super) lines: Mutex<(VecDeque<LogLine>, u64)>,
    pub(super) events: Mutex<VecDeque<ServiceEvent>>,
    pub(super) file: Mutex<Option<std::fs::File>>,
    pub(super) instances: Mutex<InstanceLogs>,
    /// Where the previous runs' logs are written (`<service>.instance-N.previous.log`).
    previous_dir: Option<(PathBuf, String)>,
    pub changed: Notify,
}

impl LogRing {
    pub(super) fn new(path: Option<PathBuf>) -> LogRing {
        let previous_dir = path.as_ref().and_then(|p| {
            let stem = p.file_stem()?.to_string_lossy().to_string();
            Some((p.parent()?.to_path_buf(), stem))
        });
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
            instances: Mutex::new(InstanceLogs::default()),
            previous_dir,
            changed: Notify::new(),
        }
    }

    /// An instance process ended: its lines become its previous log (in memory, and in
    /// `<service>.instance-N.previous.log` beside the service's log), and its next run starts a
    /// new one. A run that wrote nothing leaves the previous log as it was.
    pub fn instance_ended(&self, instance_id: u32) {
        let Ok(mut g) = self.instances.lock() else {
            return;
        };
        let Some(lines) = g.current.remove(&instance_id).filter(|l| !l.is_empty()) else {
            return;
        };
        let lines: Vec<LogLine> = lines.into_iter().collect();
        if let Some((dir, stem)) = &self.previous_dir {
            let text: String = lines
                .iter()
                .map(|l| {
                    format!(
                        "{} {}/{} {}\n",
                        l.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        l.instance_id,
                        l.container,
                        l.line
                    )
                })
                .collect();
            let _ = std::fs::write(
                dir.join(format!("{stem}.instance-{instance_id}.previous.log")),
                text,
            );
        }
        g.previous.insert(instance_id, lines);
    }

    /// The log of each instance's run before its last restart (one instance, or all), oldest
    /// first, at most `limit` of the newest lines.
    pub fn previous(&self, instance_id: Option<u32>, limit: usize) -> Vec<LogLine> {
        let Ok(g) = self.instances.lock() else {
            return Vec::new();
        };
        let mut ids: Vec<&u32> = g
            .previous
            .keys()
            .filter(|id| instance_id.is_none_or(|i| i == **id))
            .collect();
        ids.sort();
        let lines: Vec<LogLine> = ids
            .into_iter()
            .flat_map(|id| g.previous[id].iter().cloned())
            .collect();
        let skip = lines.len().saturating_sub(limit);
        lines.into_iter().skip(skip).collect()
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
            let entry = LogLine {
                seq,
                at,
                instance_id,
                container: container.to_string(),
                line: line.clone(),
            };
            // The instance process's own lines (not the supervisor's about it).
            if container == "model-inference"
                && let Ok(mut inst) = self.instances.lock()
            {
                let run = inst.current.entry(instance_id).or_default();
                run.push_back(entry.clone());
                while run.len() > INSTANCE_LOG_CAPACITY {
                    run.pop_front();
                }
            }
            g.0.push_back(entry);
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

    #[test]
    fn an_instance_run_becomes_its_previous_log_when_it_ends() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ring = LogRing::new(Some(dir.path().join("SVC.log")));
        ring.push(0, "model-inference", "run 1 of instance 0");
        ring.push(1, "model-inference", "run 1 of instance 1");
        ring.push(0, "supervisor", "instance 0 exited with code 137");
        assert!(ring.previous(None, 100).is_empty(), "nothing ended yet");
        ring.instance_ended(0);
        ring.push(0, "model-inference", "run 2 of instance 0");
        let prev = ring.previous(None, 100);
        let lines: Vec<&str> = prev.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(
            lines,
            ["run 1 of instance 0"],
            "the supervisor's lines are not the run's"
        );
        assert!(ring.previous(Some(1), 100).is_empty());
        let saved = std::fs::read_to_string(dir.path().join("SVC.instance-0.previous.log"))
            .unwrap_or_default();
        assert!(
            saved.contains("0/model-inference run 1 of instance 0"),
            "{saved}"
        );
        // A run that wrote nothing (killed at once) keeps the previous log as it was.
        ring.instance_ended(0);
        ring.instance_ended(0);
        assert_eq!(ring.previous(Some(0), 100)[0].line, "run 2 of instance 0");
        assert_eq!(ring.previous(Some(0), 100).len(), 1);
        ring.instance_ended(1);
        assert_eq!(ring.previous(None, 100).len(), 2);
        assert_eq!(ring.previous(None, 1)[0].line, "run 1 of instance 1");
    }
}
