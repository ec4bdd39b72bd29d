//! The log view: a service's or a job's lines, the regex filter and its match cache (a
//! 100,000-line log is scanned once per filter, not once per frame), follow, wrap and save.

use super::*;

/// The lines behind a log view, borrowed from the app's state.
#[derive(Debug, Clone, Copy)]
pub enum LogSource<'a> {
    Service(&'a [crate::domain::LogLine]),
    Job(&'a [crate::domain::JobLogLine]),
}

/// One line of a log source.
pub struct LogRow<'a> {
    pub at: DateTime<Utc>,
    pub instance_id: u32,
    pub container: &'a str,
    pub text: &'a str,
}

impl<'a> LogSource<'a> {
    pub fn len(&self) -> usize {
        match self {
            LogSource::Service(l) => l.len(),
            LogSource::Job(l) => l.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Line `i` (`i < len()`).
    pub fn get(&self, i: usize) -> LogRow<'a> {
        match self {
            LogSource::Service(l) => LogRow {
                at: l[i].at,
                instance_id: l[i].instance_id,
                container: &l[i].container,
                text: &l[i].line,
            },
            LogSource::Job(l) => LogRow {
                at: l[i].at,
                instance_id: 0,
                container: "job",
                text: &l[i].line,
            },
        }
    }

    /// The sequence number of the first line: a different one means another log or a trimmed one.
    pub(super) fn first_seq(&self) -> Option<u64> {
        match self {
            LogSource::Service(l) => l.first().map(|l| l.seq),
            LogSource::Job(l) => l.first().map(|l| l.seq),
        }
    }
}

/// Which source lines a log view shows.
pub enum LogMatches {
    /// Every line in the window (no filter): indices `from..to`.
    All { from: usize, to: usize },
    /// The matching lines' indices, the first `skip` of them before the window.
    Some {
        indices: std::rc::Rc<Vec<usize>>,
        skip: usize,
    },
}

/// The log view's time windows, cycled by `t`: the last N seconds, or everything (`None`).
pub const LOG_WINDOWS: [Option<i64>; 6] = [
    None,
    Some(5 * 60),
    Some(15 * 60),
    Some(3600),
    Some(6 * 3600),
    Some(24 * 3600),
];

/// `5m`, `1h`, `24h`.
pub fn window_label(secs: i64) -> String {
    if secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else {
        format!("{}m", secs / 60)
    }
}

impl LogMatches {
    pub fn len(&self) -> usize {
        match self {
            LogMatches::All { from, to } => to - from,
            LogMatches::Some { indices, skip } => indices.len() - skip,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The source index of the `k`-th line shown.
    pub fn index(&self, k: usize) -> usize {
        match self {
            LogMatches::All { from, .. } => from + k,
            LogMatches::Some { indices, skip } => indices[skip + k],
        }
    }
}

/// The filter's matches so far: for which filter and log, and how far the log has been scanned.
#[derive(Debug, Default)]
pub struct FilterCache {
    key: (String, Option<u64>),
    scanned: usize,
    indices: std::rc::Rc<Vec<usize>>,
}

/// The full-screen log view of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct LogView {
    /// The service, or the job id when `job`.
    pub service: String,
    pub job: bool,
    /// Lines from the bottom; 0 follows new lines.
    pub scroll: usize,
    pub wrap: bool,
    pub filter: String,
    pub editing_filter: bool,
    /// The instances' runs before their last restart, instead of the current log.
    pub previous: bool,
    /// Only the last this many seconds (`t` cycles [`LOG_WINDOWS`]); `None`: everything.
    pub window_secs: Option<i64>,
}

impl App {
    /// The lines behind a log view, borrowed: a service's container log, or a job's log; `None`
    /// while not loaded.
    pub fn log_source(&self, view: &LogView) -> Option<LogSource<'_>> {
        if view.job {
            self.job_detail
                .as_ref()
                .filter(|d| d.summary.id == view.service)
                .map(|d| LogSource::Job(&d.log))
        } else if view.previous {
            match &self.previous_logs {
                Some((name, Ok(lines))) if *name == view.service => Some(LogSource::Service(lines)),
                _ => None,
            }
        } else {
            self.service_detail
                .as_ref()
                .filter(|d| d.name == view.service)
                .map(|d| LogSource::Service(&d.logs))
        }
    }

    /// Why the previous log of the view's service could not be read, once asked.
    pub fn previous_log_error(&self, view: &LogView) -> Option<&str> {
        match &self.previous_logs {
            Some((name, Err(e))) if view.previous && *name == view.service => Some(e),
            _ => None,
        }
    }

    /// The indices of the source lines the log view shows: all of them without a filter, else
    /// those the filter matches. The matches are kept between frames and extended as lines
    /// arrive, so a 100,000-line log is scanned once per filter, not once per frame.
    pub fn log_matches(&self, view: &LogView, source: &LogSource<'_>) -> LogMatches {
        // The window's first line: lines arrive in time order, so a binary search finds it.
        let from = match view.window_secs {
            Some(secs) => {
                let cutoff = self.now - chrono::Duration::seconds(secs);
                let (mut lo, mut hi) = (0, source.len());
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    if source.get(mid).at < cutoff {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                lo
            }
            None => 0,
        };
        if view.filter.is_empty() {
            return LogMatches::All {
                from,
                to: source.len(),
            };
        }
        let none = || LogMatches::Some {
            indices: Vec::new().into(),
            skip: 0,
        };
        let Ok(re) = regex::RegexBuilder::new(&view.filter)
            .case_insensitive(true)
            .build()
        else {
            return none();
        };
        let key = (view.filter.clone(), source.first_seq());
        let mut cache = self.log_filter.borrow_mut();
        let valid = cache
            .as_ref()
            .is_some_and(|c| c.key == key && c.scanned <= source.len());
        if !valid {
            *cache = Some(FilterCache {
                key,
                scanned: 0,
                indices: std::rc::Rc::new(Vec::new()),
            });
        }
        let Some(c) = cache.as_mut() else {
            return none();
        };
        if c.scanned < source.len() {
            let found: Vec<usize> = (c.scanned..source.len())
                .filter(|&i| re.is_match(source.get(i).text))
                .collect();
            std::rc::Rc::make_mut(&mut c.indices).extend(found);
            c.scanned = source.len();
        }
        let skip = c.indices.partition_point(|&i| i < from);
        LogMatches::Some {
            indices: c.indices.clone(),
            skip,
        }
    }

    /// The log lines the log view shows (after its filter), as text with timestamps.
    pub fn log_lines_shown(&self) -> Vec<String> {
        let Overlay::Logs(view) = &self.overlay else {
            return Vec::new();
        };
        let Some(source) = self.log_source(view) else {
            return Vec::new();
        };
        let matches = self.log_matches(view, &source);
        (0..matches.len())
            .map(|k| {
                let l = source.get(matches.index(k));
                format!(
                    "{} {}/{} {}",
                    l.at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                    l.instance_id,
                    l.container,
                    l.text
                )
            })
            .collect()
    }
}
