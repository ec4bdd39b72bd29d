//! The app's state and how actions, terminal events and worker messages change it. No I/O here:
//! `update` returns effects for the event loop to carry out, so flows are testable without a
//! terminal or a daemon. Along its seams: `input` (keys, mouse, actions and the command bar),
//! `messages` (what workers send and what the state asks for), `tables` (tabs, tables and cursors), `logs` (the log view and its filter cache); a
//! service's detail is fetched beside the platform snapshot (`crate::platform::ServiceDetail`).

mod input;
mod logs;
mod messages;
mod tables;

pub use crate::platform::ServiceDetail;
pub use logs::{FilterCache, LOG_WINDOWS, LogMatches, LogRow, LogSource, LogView, window_label};
pub use messages::{DownloadState, Effect, Flash, Link, Msg, PlatformOp};
pub use tables::{Cursor, Remote, Tab, TableId, TableView};

use chrono::{DateTime, Utc};
use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};

use super::command::{self, Command};
use super::import_form::ImportForm;
use super::query::{QueryRequest, QueryResult, QueryState};
use super::search::{self, HubSearch, SearchRequest};
use crate::config::{Config, ThemeName};
use crate::domain::candidate::Alternative;
use crate::domain::{
    Candidate, ComputePool, ImportSpec, JobDetail, JobState, JobSummary, PlatformKind, Service,
    ServiceStatus,
};
use crate::hub::api::SearchPage;
use crate::hub::details::ModelDetails;
use crate::keys::action::Action;
use crate::keys::keymap::{KeyChord, Keymap};
use crate::platform::Snapshot;

/// What covers the panes, if anything.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    None,
    Help {
        scroll: u16,
    },
    Command {
        input: String,
        error: Option<String>,
    },
    Filter {
        input: String,
    },
    /// The import form, over the Candidates pane.
    Import(Box<ImportForm>),
    /// A service's log, full screen.
    Logs(Box<LogView>),
    /// A question before something that changes the platform: y/enter does it, n/esc does not.
    Confirm {
        message: String,
        effect: Box<Effect>,
    },
}

/// The TUI's whole state: what every pane shows and how keys and worker messages change it.
pub struct App {
    pub tab: Tab,
    pub overlay: Overlay,
    /// The log view's filter matches, kept between frames (drawing takes `&App`).
    pub log_filter: std::cell::RefCell<Option<FilterCache>>,
    pub link: Link,
    pub candidates: Remote<Vec<Candidate>>,
    pub hub: HubSearch,
    /// Hub details by handle, fetched for the selected row.
    pub details: std::collections::HashMap<String, Remote<ModelDetails>>,
    pub snapshot: Remote<Snapshot>,
    /// Downloads started here, by handle.
    pub downloads: std::collections::HashMap<String, DownloadState>,
    /// What `hugflake cache prune` would free in each repo, once measured.
    pub cache_prunable: Option<std::collections::BTreeMap<String, u64>>,
    /// The shared Hugging Face cache (where `D` deletes from); unknown in tests.
    pub hf_cache: Option<std::path::PathBuf>,
    /// The selected job's detail, and the job whose detail was asked for last (with the snapshot
    /// time it was asked at: a newer snapshot asks again while the job runs).
    pub job_detail: Option<JobDetail>,
    /// Batch runs recorded on this machine (`hugflake batch ...`), newest first.
    pub batch_runs: Vec<crate::domain::BatchRun>,
    /// The platform being talked to (or connected to).
    pub platform_kind: PlatformKind,
    pub query: QueryState,
    pub service_detail: Option<ServiceDetail>,
    /// The previous log asked for last (service, lines or why not).
    pub previous_logs: Option<(String, Result<Vec<crate::domain::LogLine>, String>)>,
    service_detail_asked: Option<(String, Option<DateTime<Utc>>)>,
    /// On-call screens: every action that changes something is hidden and refused.
    pub read_only: bool,
    /// Health shows the roll-up tree instead of the selected service's insides.
    pub health_tree: bool,
    /// How pictures are drawn (graphics protocol or half-blocks).
    pub picture: super::picture::Protocol,
    job_detail_asked: Option<(String, Option<DateTime<Utc>>)>,
    pub views: std::collections::HashMap<TableId, TableView>,
    /// The focused table of the Health pane.
    pub health_focus: TableId,
    pub keymap: Keymap,
    /// The colour theme by name; `ui` holds the colours.
    pub theme: crate::config::ThemeName,
    pub mouse: bool,
    pub now: DateTime<Utc>,
    /// Terminal size, for layout-dependent scrolling and clicks.
    pub size: Rect,
    /// Where the last frame put the tabs and the table rows: clicks and paging read these, so a
    /// click lands on what the user saw. `ui::record` fills it before each draw.
    pub drawn: Drawn,
    pub flash: Option<Flash>,
    pub dirty: bool,
    pub quit: bool,
}

/// The screen areas of the last frame that input needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drawn {
    /// Each tab title's cells on the tab line.
    pub tabs: Vec<(Tab, Rect)>,
    /// Each shown table's row area (inside its border, below its header).
    pub tables: Vec<(TableId, Rect)>,
}

impl Drawn {
    pub fn tab_at(&self, at: Position) -> Option<Tab> {
        self.tabs
            .iter()
            .find(|(_, r)| r.contains(at))
            .map(|(t, _)| *t)
    }

    pub fn rows_of(&self, id: TableId) -> Option<Rect> {
        self.tables.iter().find(|(t, _)| *t == id).map(|(_, r)| *r)
    }
}

impl App {
    pub fn new(config: &Config, now: DateTime<Utc>, size: Rect) -> App {
        App {
            tab: Tab::Candidates,
            overlay: Overlay::None,
            log_filter: Default::default(),
            link: Link::Connecting,
            candidates: Remote::default(),
            hub: HubSearch::new(None),
            details: Default::default(),
            snapshot: Remote::default(),
            downloads: Default::default(),
            cache_prunable: None,
            hf_cache: None,
            job_detail: None,
            batch_runs: Vec::new(),
            job_detail_asked: None,
            platform_kind: PlatformKind::Local,
            query: QueryState::default(),
            service_detail: None,
            previous_logs: None,
            service_detail_asked: None,
            read_only: false,
            health_tree: false,
            picture: super::picture::Protocol::HalfBlocks,
            views: Default::default(),
            health_focus: TableId::Pools,
            keymap: config.keymap.clone(),
            theme: config.ui.theme,
            mouse: config.ui.mouse,
            now,
            size,
            drawn: Drawn::default(),
            flash: None,
            dirty: true,
            quit: false,
        }
    }

    pub fn view(&self, id: TableId) -> TableView {
        self.views.get(&id).cloned().unwrap_or_default()
    }

    fn view_mut(&mut self, id: TableId) -> &mut TableView {
        self.views.entry(id).or_default()
    }

    /// The table that keys move in.
    pub fn focused_table(&self) -> TableId {
        match self.tab {
            Tab::Candidates => TableId::Candidates,
            Tab::Imports => TableId::Jobs,
            Tab::Health => self.health_focus,
            Tab::Query => TableId::QueryServices,
        }
    }

    // ----- rows as shown (filtered, sorted) -----

    fn matches(filter: &str, haystack: &str) -> bool {
        filter.is_empty() || haystack.to_lowercase().contains(&filter.to_lowercase())
    }

    /// Catalog and cache rows matching the filter, then the Hub's hits for it (the Hub did the
    /// matching; a handle already listed is not repeated).
    pub fn visible_candidates(&self) -> Vec<&Candidate> {
        let f = self.view(TableId::Candidates).filter.to_lowercase();
        let all = self.candidates.data.iter().flatten();
        let mut rows: Vec<&Candidate> = if f.is_empty() {
            all.collect()
        } else {
            all.filter(|c| c.haystack().to_lowercase().contains(&f))
                .collect()
        };
        if !self.hub.results.is_empty() {
            let local: std::collections::HashSet<&str> = self
                .candidates
                .data
                .iter()
                .flatten()
                .map(|c| c.handle.as_str())
                .collect();
            rows.extend(
                self.hub
                    .results
                    .iter()
                    .filter(|c| !local.contains(c.handle.as_str())),
            );
        }
        rows
    }

    /// Whether the registry is Snowflake's (the platform reports a database and schema).
    pub fn on_snowflake(&self) -> bool {
        self.snapshot
            .data
            .as_ref()
            .is_some_and(|s| s.status.registry.is_some())
    }

    /// The first alternative to offer for a candidate on this platform.
    pub fn alternative_for<'a>(&self, c: &'a Candidate) -> Option<&'a Alternative> {
        let on_snowflake = self.on_snowflake();
        c.alternatives.iter().find(|a| a.applies(on_snowflake))
    }

    pub fn selected_candidate(&self) -> Option<&Candidate> {
        let sel = self.view(TableId::Candidates).cursor.selected;
        self.visible_candidates().get(sel).copied()
    }

    /// The registry model imported from a Hub repo, if any.
    pub fn registered_as(&self, handle: &str) -> Option<String> {
        self.snapshot
            .data
            .as_ref()?
            .models
            .iter()
            .find(|m| m.source.as_deref() == Some(handle))
            .map(|m| match &m.default_version {
                Some(v) => format!("{} ({v})", m.name),
                None => m.name.clone(),
            })
    }

    /// The pool a model's fit is checked against: the platform's default pool, else the first.
    pub fn fit_pool(&self) -> Option<(String, f64)> {
        let data = self.snapshot.data.as_ref()?;
        let pools = &data.pools;
        pools
            .iter()
            .find(|p| Some(&p.name) == data.status.default_pool.as_ref())
            .or_else(|| pools.first())
            .map(|p| (p.name.clone(), p.memory_gib))
    }

    /// What the app wants next for what is on screen: more Hub results when the selection nears
    /// the end of the list, details for the selected row.
    pub fn follow_up(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.tab == Tab::Imports {
            effects.extend(self.job_detail_wanted());
        }
        let logs_open = matches!(&self.overlay, Overlay::Logs(v) if !v.job);
        if self.tab == Tab::Health || logs_open {
            let name = match &self.overlay {
                Overlay::Logs(v) => Some(v.service.clone()),
                _ => self.selected_service().map(|s| s.name.clone()),
            };
            if let Some(name) = name {
                let fetched = self.snapshot.data.as_ref().map(|s| s.fetched_at);
                let stale = match &self.service_detail_asked {
                    Some((n, at)) => *n != name || *at != fetched,
                    None => true,
                };
                if stale {
                    self.service_detail_asked = Some((name.clone(), fetched));
                    effects.push(Effect::ServiceDetail(name));
                }
            }
        }
        if self.tab == Tab::Query
            && let Some((m, v)) = self.query.version_target.clone()
            && !self.query.functions.contains_key(&format!("{m} {v}"))
        {
            let key = format!("{m} {v}");
            self.query
                .functions
                .insert(key.clone(), Err(super::query::LOADING.into()));
            effects.push(Effect::Functions {
                service: key,
                model: Some(m),
                version: Some(v),
            });
        } else if self.tab == Tab::Query
            && self.query.version_target.is_none()
            && let Some(s) = self.selected_query_service()
            && !self.query.functions.contains_key(&s.name)
        {
            let (service, model, version) =
                (s.name.clone(), s.model.clone(), s.model_version.clone());
            self.query
                .functions
                .insert(service.clone(), Err(super::query::LOADING.into()));
            effects.push(Effect::Functions {
                service,
                model,
                version,
            });
        }
        if self.tab != Tab::Candidates {
            return effects;
        }
        let len = self.visible_candidates().len();
        let sel = self.view(TableId::Candidates).cursor.selected;
        if len > 0
            && sel + 3 >= len
            && let Some(req) = self.hub.more()
        {
            effects.push(Effect::HubSearch(req));
        }
        // An unreachable Hub (the search said so) is not asked again for every row; `r` retries.
        if self.hub.online()
            && self.hub.error.is_none()
            && let Some(handle) = self.selected_candidate().map(|c| c.handle.clone())
            && !self.details.contains_key(&handle)
        {
            self.details.insert(handle.clone(), Remote::default());
            effects.push(Effect::HubDetails {
                handle,
                pool: self.fit_pool(),
            });
        }
        effects
    }

    /// Whether a model fits the local pool. Details fetched before the pools were known have no
    /// fit yet: the weights and the pool say it.
    pub fn fit_of(&self, d: &ModelDetails) -> Option<crate::hub::details::FitVerdict> {
        d.fit.clone().or_else(|| {
            self.fit_pool().map(|(pool, budget)| {
                crate::hub::details::FitVerdict::estimate(d.weight_bytes, &pool, budget)
            })
        })
    }

    /// The selected job's detail, when it is not loaded yet or the job moved on.
    fn job_detail_wanted(&mut self) -> Option<Effect> {
        let job = self.selected_job()?;
        let (id, running) = (
            job.id.clone(),
            matches!(job.state, JobState::Queued | JobState::Running),
        );
        let fetched = self.snapshot.data.as_ref().map(|s| s.fetched_at);
        let asked = self.job_detail_asked.as_ref();
        let stale = match asked {
            Some((a, at)) if *a == id => running && *at != fetched,
            _ => true,
        };
        // A finished job's detail is asked once more after it ends, then kept.
        let ended_since = self
            .job_detail
            .as_ref()
            .is_some_and(|d| d.summary.id == id && d.summary.state != job.state);
        if !stale && !ended_since {
            return None;
        }
        self.job_detail_asked = Some((id.clone(), fetched));
        Some(Effect::JobDetail(id))
    }

    pub fn selected_service(&self) -> Option<&Service> {
        let rows = self.visible_services();
        rows.get(self.view(TableId::Services).cursor.selected)
            .copied()
    }

    pub fn selected_query_service(&self) -> Option<&Service> {
        let rows = self.visible_query_services();
        rows.get(self.view(TableId::QueryServices).cursor.selected)
            .copied()
    }

    pub fn selected_job(&self) -> Option<&JobSummary> {
        let rows = self.visible_jobs();
        rows.get(self.view(TableId::Jobs).cursor.selected).copied()
    }

    /// The Hub query follows the Candidates filter.
    fn candidates_filter_changed(&mut self) -> Vec<Effect> {
        let text = self.view(TableId::Candidates).filter;
        let wanted = (!text.trim().is_empty()).then(|| text.trim().to_string());
        if self.hub.query.search == wanted {
            return Vec::new();
        }
        self.hub.query.search = wanted;
        self.restart_search()
    }

    fn restart_search(&mut self) -> Vec<Effect> {
        self.hub
            .restart()
            .map(Effect::HubSearch)
            .into_iter()
            .collect()
    }

    /// The first requests of a session.
    pub fn start(&mut self) -> Vec<Effect> {
        self.restart_search()
    }

    /// Pools, faults first, then by name.
    pub fn visible_pools(&self) -> Vec<&ComputePool> {
        let f = self.view(TableId::Pools).filter;
        let mut rows: Vec<&ComputePool> = self
            .snapshot
            .data
            .iter()
            .flat_map(|s| &s.pools)
            .filter(|p| Self::matches(&f, &format!("{} {} {}", p.name, p.state, p.instance_family)))
            .collect();
        rows.sort_by(|a, b| a.health().cmp(&b.health()).then(a.name.cmp(&b.name)));
        rows
    }

    /// Services, faults first, then by name.
    pub fn visible_services(&self) -> Vec<&Service> {
        let f = self.view(TableId::Services).filter;
        let mut rows: Vec<&Service> = self
            .snapshot
            .data
            .iter()
            .flat_map(|s| &s.services)
            .filter(|s| Self::matches(&f, &service_haystack(s)))
            .collect();
        rows.sort_by(|a, b| a.health().cmp(&b.health()).then(a.name.cmp(&b.name)));
        rows
    }

    pub fn visible_jobs(&self) -> Vec<&JobSummary> {
        let f = self.view(TableId::Jobs).filter;
        self.snapshot
            .data
            .iter()
            .flat_map(|s| &s.jobs)
            .filter(|j| {
                Self::matches(
                    &f,
                    &format!("{} {} {} {}", j.handle, j.model, j.state, j.target),
                )
            })
            .collect()
    }

    /// Services that can answer a query: RUNNING model services, and those suspended for
    /// idleness (a call resumes them).
    pub fn visible_query_services(&self) -> Vec<&Service> {
        let f = self.view(TableId::QueryServices).filter;
        self.snapshot
            .data
            .iter()
            .flat_map(|s| &s.services)
            .filter(|s| (s.status == ServiceStatus::Running || s.auto_suspended) && !s.is_job)
            .filter(|s| Self::matches(&f, &service_haystack(s)))
            .collect()
    }

    pub fn set_flash(&mut self, text: impl Into<String>, error: bool) {
        self.flash = Some(Flash {
            text: text.into(),
            error,
            at: self.now,
        });
    }

    /// Applies a worker message.
    pub fn apply(&mut self, msg: Msg) -> Vec<Effect> {
        self.dirty = true;
        match msg {
            Msg::Link(link) => {
                if let Link::Connected { description, .. } = &link {
                    self.set_flash(description.clone(), false);
                }
                if let Link::Failed(e) = &link {
                    self.snapshot.loading = false;
                    self.snapshot.error = Some(e.clone());
                }
                self.link = link;
            }
            Msg::Snapshot(result) => {
                // Rows sort by health, so a refresh can reorder them: the selection follows the
                // pool or service it was on, not its old row number (on-call acts on the selection).
                let names = |app: &App| {
                    (
                        app.visible_pools()
                            .get(app.view(TableId::Pools).cursor.selected)
                            .map(|p| p.name.clone()),
                        app.visible_services()
                            .get(app.view(TableId::Services).cursor.selected)
                            .map(|s| s.name.clone()),
                        app.visible_query_services()
                            .get(app.view(TableId::QueryServices).cursor.selected)
                            .map(|s| s.name.clone()),
                    )
                };
                let (pool, service, query) = names(self);
                self.snapshot.set(result, self.now);
                if let Some(i) =
                    pool.and_then(|n| self.visible_pools().iter().position(|p| p.name == n))
                {
                    self.view_mut(TableId::Pools).cursor.selected = i;
                }
                if let Some(i) =
                    service.and_then(|n| self.visible_services().iter().position(|s| s.name == n))
                {
                    self.view_mut(TableId::Services).cursor.selected = i;
                }
                if let Some(i) = query.and_then(|n| {
                    self.visible_query_services()
                        .iter()
                        .position(|s| s.name == n)
                }) {
                    self.view_mut(TableId::QueryServices).cursor.selected = i;
                }
            }
            Msg::BatchRuns(runs) => self.batch_runs = runs,
            Msg::Candidates(result) => self.candidates.set(result, self.now),
            Msg::HubPage {
                generation,
                append,
                result,
            } => {
                self.hub.apply(generation, append, result, self.now);
            }
            Msg::HubDetails { handle, result } => {
                self.details
                    .entry(handle)
                    .or_default()
                    .set(result.map(|d| *d), self.now);
            }
            Msg::HubDetailsSkipped(handle) => {
                self.details.remove(&handle);
            }
            Msg::Download { handle, state } => {
                match &state.finished {
                    Some(Ok(_)) => {
                        self.set_flash(format!("downloaded {handle} into the HF cache"), false)
                    }
                    Some(Err(e)) => {
                        self.set_flash(format!("download of {handle} failed: {e}"), true)
                    }
                    None => {}
                }
                self.downloads.insert(handle, state);
            }
            Msg::ImportStarted(result) => match result {
                Ok(job) => {
                    self.set_flash(
                        format!("import of {} queued as job {}", job.handle, job.id),
                        false,
                    );
                    self.tab = Tab::Imports;
                    self.view_mut(TableId::Jobs).cursor.selected = 0;
                    self.view_mut(TableId::Jobs).filter.clear();
                    self.clamp_cursors();
                    return vec![Effect::Refresh];
                }
                Err(e) => self.set_flash(format!("import refused: {e}"), true),
            },
            Msg::JobDetail { id, result } => match result {
                Ok(d) => self.job_detail = Some(*d),
                Err(e) => {
                    if self.job_detail.as_ref().is_none_or(|d| d.summary.id == id) {
                        self.set_flash(format!("job {id}: {e}"), true);
                    }
                }
            },
            Msg::ServiceDetail(d) => self.service_detail = Some(*d),
            Msg::PreviousLogs { service, result } => self.previous_logs = Some((service, result)),
            Msg::Functions { service, result } => {
                self.query.functions.insert(service.clone(), result);
                if self.query.send_when_ready && self.query_target() == Some(service) {
                    self.query.send_when_ready = false;
                    if let Some(e) = self.query_request() {
                        let mut effects = vec![e];
                        effects.extend(self.follow_up());
                        return effects;
                    }
                }
            }
            Msg::QueryDone { request, result } => self.query_done(request, result),
            Msg::Compared(result) => {
                self.query.busy = false;
                match result {
                    Ok(c) => {
                        self.query.error = None;
                        self.query.comparison = Some(c);
                    }
                    Err(e) => self.query.error = Some(e),
                }
            }
            Msg::CachePrunable(bytes) => self.cache_prunable = Some(bytes),
            Msg::PlatformDone(result) => {
                match result {
                    Ok(m) => self.set_flash(m, false),
                    Err(e) => self.set_flash(e, true),
                }
                self.clamp_cursors();
                return vec![Effect::Refresh];
            }
        }
        self.clamp_cursors();
        self.follow_up()
    }

    /// Advances the clock (data ages and flashes expire).
    pub fn tick(&mut self, now: DateTime<Utc>) {
        self.now = now;
        if self
            .flash
            .as_ref()
            .is_some_and(|f| (now - f.at).num_seconds() >= 8)
        {
            self.flash = None;
        }
        self.dirty = true;
    }

    pub fn resize(&mut self, width: u16, height: u16) {
        self.size = Rect::new(0, 0, width, height);
        self.clamp_cursors();
        self.dirty = true;
    }
}

fn service_haystack(s: &Service) -> String {
    format!(
        "{} {} {} {} {}",
        s.name,
        s.status,
        s.compute_pool,
        s.model.as_deref().unwrap_or(""),
        s.endpoint.as_deref().unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_scrolls_to_keep_the_selection_visible() {
        let mut c = Cursor::default();
        c.select(7, 20, 5);
        assert_eq!((c.selected, c.offset), (7, 3));
        c.select(2, 20, 5);
        assert_eq!((c.selected, c.offset), (2, 2));
        c.select(100, 20, 5);
        assert_eq!((c.selected, c.offset), (19, 15));
        c.select(0, 0, 5);
        assert_eq!((c.selected, c.offset), (0, 0));
    }
}
