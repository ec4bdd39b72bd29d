//! Drawing. Pure functions of the app state: `draw(frame, &app)`.
//!
//! ```text
//! ┌ hugflake │ 1 Candidates │ 2 Imports │ 3 Health │ 4 Query ───────────────┐  tabs (1 line)
//! │                                                                         │
//! │  the current pane                                                       │  body
//! │                                                                         │
//! │ local │ daemon pid 4242 on 127.0.0.1:47811 │ data 2s ago        flash   │  status line
//! │ j/k move  / filter  r refresh  : command  ? help  q quit                │  key bar / input
//! └─────────────────────────────────────────────────────────────────────────┘
//! ```
//! `record` stores the layout in the app before each frame, so a click lands where it was drawn.

pub mod candidates;
pub mod compare;
pub mod health;
pub mod help;
pub mod imports;
pub mod logs;
pub mod picture;
pub mod popups;
pub mod query;
pub mod theme;
pub mod widgets;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use crate::app::command;
use crate::app::state::{App, Drawn, Link, Overlay, Tab, TableId};
use crate::domain::PlatformKind;
use crate::domain::units;
use crate::keys::action::Action;

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;
const BRAND: &str = " hugflake ";

/// The four bands of the screen.
pub struct Regions {
    pub tabs: Rect,
    pub body: Rect,
    pub status: Rect,
    pub keys: Rect,
}

pub fn regions(size: Rect) -> Regions {
    let [tabs, body, status, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(size);
    Regions {
        tabs,
        body,
        status,
        keys,
    }
}

/// Where each tab title is drawn on the tab line: (tab, first column, column after the last).
pub fn tab_ranges(area: Rect) -> Vec<(Tab, u16, u16)> {
    let mut x = area.x + BRAND.len() as u16 + 1;
    Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, tab)| {
            let w = format!(" {} {} ", i + 1, tab.title()).chars().count() as u16;
            let range = (*tab, x, x + w);
            x += w + 1;
            range
        })
        .collect()
}

/// The bordered area a table is drawn in.
pub fn table_area(app: &App, id: TableId) -> Option<Rect> {
    if app.size.width < MIN_WIDTH || app.size.height < MIN_HEIGHT {
        return None;
    }
    let body = regions(app.size).body;
    Some(match id {
        TableId::Candidates => candidates::split(body).0,
        TableId::Jobs => imports::split(body, app.visible_jobs().len()).0,
        TableId::Pools => {
            health::split(
                body,
                app.visible_pools().len(),
                app.visible_services().len(),
            )
            .0
        }
        TableId::Services => {
            health::split(
                body,
                app.visible_pools().len(),
                app.visible_services().len(),
            )
            .1
        }
        TableId::QueryServices => query::areas(body, app.visible_query_services().len()).0,
    })
}

/// The rows of a table: inside the border, below the header line.
pub fn table_rows_area(app: &App, id: TableId) -> Option<Rect> {
    let a = table_area(app, id)?;
    (a.width > 2 && a.height > 3).then(|| Rect::new(a.x + 1, a.y + 2, a.width - 2, a.height - 3))
}

/// Records in `app` where the next frame puts the tabs and the table rows, so clicks and paging
/// land where the user sees things. The event loop calls it before each draw.
pub fn record(app: &mut App) {
    app.drawn = layout(app);
}

fn layout(app: &App) -> Drawn {
    if app.size.width < MIN_WIDTH || app.size.height < MIN_HEIGHT {
        return Drawn::default();
    }
    let tabs = regions(app.size).tabs;
    Drawn {
        tabs: tab_ranges(tabs)
            .into_iter()
            .map(|(tab, a, b)| (tab, Rect::new(a, tabs.y, b - a, 1)))
            .collect(),
        tables: app
            .tab
            .tables()
            .into_iter()
            .filter_map(|id| Some((id, table_rows_area(app, id)?)))
            .collect(),
    }
}

pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let size = frame.area();
    if size.width < MIN_WIDTH || size.height < MIN_HEIGHT {
        let text = format!(
            "The terminal is {}x{}; hugflake needs at least {MIN_WIDTH}x{MIN_HEIGHT}. Make it larger, or press q to quit.",
            size.width, size.height
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), size);
        return;
    }
    let r = regions(size);
    draw_tabs(frame, r.tabs, app);
    match app.tab {
        Tab::Candidates => candidates::render(frame, r.body, app),
        Tab::Imports => imports::render(frame, r.body, app),
        Tab::Health => health::render(frame, r.body, app),
        Tab::Query => query::render(frame, r.body, app),
    }
    draw_status(frame, r.status, app);
    draw_keys(frame, r.keys, app);
    match &app.overlay {
        Overlay::Help { scroll } => help::render(frame, r.body, app, *scroll),
        Overlay::Command { input, .. } => draw_completions(frame, r.body, app, input),
        Overlay::Import(form) => popups::import_form(frame, r.body, app, form),
        Overlay::Logs(view) => logs::render(frame, r.body, app, view),
        Overlay::Confirm { message, .. } => popups::confirm(frame, r.body, app, message),
        Overlay::None | Overlay::Filter { .. } => {}
    }
}

fn draw_tabs(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &crate::ui::theme::of(app);
    let mut spans = vec![
        Span::styled(BRAND, t.accent().add_modifier(Modifier::BOLD)),
        Span::styled("│", t.dim()),
    ];
    for (i, tab) in Tab::ALL.iter().enumerate() {
        let label = format!(" {} {} ", i + 1, tab.title());
        let style = if *tab == app.tab {
            t.selected().fg(t.accent)
        } else {
            Style::new()
        };
        spans.push(Span::styled(label, style));
        spans.push(Span::styled("│", t.dim()));
    }
    frame.render_widget(Line::from(spans), area);
}

fn draw_status(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &crate::ui::theme::of(app);
    let mut spans = Vec::new();
    if app.read_only {
        spans.push(Span::styled(" READ-ONLY ", t.selected().fg(t.pending)));
    }
    match &app.link {
        Link::Connecting => {
            spans.push(Span::styled(format!(" {} ", app.platform_kind), t.accent()));
            spans.push(Span::styled("│", t.dim()));
            spans.push(Span::styled(
                match app.platform_kind {
                    PlatformKind::Local => {
                        " connecting to the local daemon (starting it if needed)… "
                    }
                    PlatformKind::Snowflake => " connecting to Snowflake… ",
                },
                Style::new().fg(t.pending),
            ));
        }
        Link::Failed(e) => {
            spans.push(Span::styled(format!(" {} ", app.platform_kind), t.accent()));
            spans.push(Span::styled("│", t.dim()));
            spans.push(Span::styled(
                match app.platform_kind {
                    PlatformKind::Local => " ✖ daemon: ",
                    PlatformKind::Snowflake => " ✖ Snowflake: ",
                },
                t.error(),
            ));
            spans.push(Span::styled(e.clone(), t.error()));
        }
        Link::Connected { kind, .. } => {
            spans.push(Span::styled(format!(" {kind} "), t.accent()));
            spans.push(Span::styled("│", t.dim()));
            if let Some(s) = &app.snapshot.data {
                let pid = s
                    .status
                    .pid
                    .map(|p| format!("pid {p} "))
                    .unwrap_or_default();
                let what = if *kind == PlatformKind::Local {
                    "daemon "
                } else {
                    ""
                };
                spans.push(Span::raw(format!(" {what}{pid}on {} ", s.status.location)));
            } else {
                spans.push(Span::raw(" daemon connected "));
            }
            spans.push(Span::styled("│", t.dim()));
            match app.snapshot.fetched_at {
                Some(at) => spans.push(Span::raw(format!(
                    " data {} ago ",
                    units::duration((app.now - at).num_seconds())
                ))),
                None => spans.push(Span::styled(" loading… ", t.dim())),
            }
            if let Some(e) = &app.snapshot.error {
                spans.push(Span::styled(
                    " STALE ",
                    Style::new().bg(t.fault).add_modifier(Modifier::BOLD),
                ));
                spans.push(Span::styled(format!(" {e}"), t.error()));
            }
        }
    }
    let left = Line::from(spans);
    frame.render_widget(left, area);
    if let Some(flash) = &app.flash {
        let text = format!(" {} ", flash.text);
        let w = (text.chars().count() as u16).min(area.width / 2);
        let rect = Rect::new(area.right().saturating_sub(w), area.y, w, 1);
        let style = if flash.error { t.error() } else { t.dim() };
        frame.render_widget(Clear, rect);
        frame.render_widget(Span::styled(text, style), rect);
    }
}

/// The keys of the current pane, most useful first.
pub fn pane_keys(app: &App) -> Vec<(String, &'static str)> {
    let k = |a: Action| app.keymap.short(a);
    let mut keys = vec![(format!("{}/{}", k(Action::Down), k(Action::Up)), "move")];
    keys.push((k(Action::Filter), "filter"));
    if app.tab == Tab::Health {
        keys.push((k(Action::FocusNext), "next table"));
        keys.push((k(Action::Logs), "logs"));
        // Only once an instance of the selected service has restarted: before that there is none.
        let restarted = app.selected_service().is_some_and(|s| {
            app.service_detail.as_ref().is_some_and(|d| {
                d.name == s.name && d.containers.iter().any(|c| c.restart_count > 0)
            })
        });
        if restarted {
            keys.push((k(Action::PreviousLogs), "previous log"));
        }
        keys.push((k(Action::Tree), "tree"));
        if !app.read_only {
            keys.push((k(Action::Suspend), "suspend"));
            keys.push((k(Action::Resume), "resume"));
        }
    }
    if app.tab == Tab::Candidates {
        if !app.read_only {
            keys.push((k(Action::Import), "import"));
        }
        keys.push((k(Action::CycleSort), "Hub sort"));
        keys.push((k(Action::Download), "download"));
        if !app.read_only && app.selected_candidate().is_some_and(|c| c.cache.is_some()) {
            keys.push((k(Action::DeleteCached), "delete cached"));
        }
    }
    if app.tab == Tab::Imports {
        keys.push((k(Action::Logs), "log"));
    }
    if app.tab == Tab::Imports && !app.read_only {
        keys.push((k(Action::CancelJob), "cancel"));
        keys.push((k(Action::RetryJob), "retry"));
    }
    if app.tab == Tab::Query {
        keys.push((k(Action::EditInput), "type"));
        keys.push((k(Action::RunQuery), "send"));
        keys.push((k(Action::ToggleMode), "compare/search"));
        keys.push((k(Action::RawJson), "JSON"));
        keys.push((k(Action::CopyResult), "copy"));
    }
    keys.push((k(Action::NextTab), "next tab"));
    keys.push((k(Action::Refresh), "refresh"));
    keys.push((k(Action::Command), "command"));
    keys.push((k(Action::Help), "help"));
    keys.push((k(Action::Back), "back/quit"));
    keys
}

fn draw_keys(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &crate::ui::theme::of(app);
    let line = match &app.overlay {
        Overlay::Command { input, error } => {
            let mut spans = vec![
                Span::styled(":", t.accent()),
                Span::raw(input.clone()),
                Span::styled("▏", t.accent()),
            ];
            match error {
                Some(e) => spans.push(Span::styled(format!("  {e}"), t.error())),
                None => spans.push(Span::styled(
                    "  tab complete · enter run · esc cancel",
                    t.dim(),
                )),
            }
            Line::from(spans)
        }
        Overlay::Filter { input } => Line::from(vec![
            Span::styled("/", t.accent()),
            Span::raw(input.clone()),
            Span::styled("▏", t.accent()),
            Span::styled("  enter keep · esc clear · ↑/↓ move", t.dim()),
        ]),
        Overlay::Help { .. } => Line::from(Span::styled(
            " ↑/↓ scroll · any other key closes the help",
            t.dim(),
        )),
        Overlay::Import(form) => Line::from(Span::styled(
            format!(
                " tab/↓ next field · shift-tab/↑ previous · type to edit · enter import · esc cancel{}",
                if form.alternative.is_some() {
                    " · ctrl-o switch model"
                } else {
                    ""
                }
            ),
            t.dim(),
        )),
        Overlay::Confirm { .. } => {
            // The keys as bound, as the question itself names them.
            let keys = |actions: &[Action]| {
                actions
                    .iter()
                    .flat_map(|a| app.keymap.keys(*a))
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join("/")
            };
            Line::from(Span::styled(
                format!(
                    " {} confirm · {} cancel",
                    keys(&[Action::Confirm]),
                    keys(&[Action::Deny, Action::Back])
                ),
                t.dim(),
            ))
        }
        Overlay::Logs(view) if view.editing_filter => Line::from(vec![
            Span::styled(" /", t.accent()),
            Span::raw(view.filter.clone()),
            Span::styled("▏", t.accent()),
            Span::styled("  regex, any case · enter keep · esc clear", t.dim()),
        ]),
        Overlay::Logs(view) => {
            let switch = if view.job {
                String::new()
            } else {
                format!(
                    " · {} {}",
                    app.keymap.short(Action::PreviousLogs),
                    if view.previous {
                        "current log"
                    } else {
                        "run before the restart"
                    }
                )
            };
            Line::from(Span::styled(
                format!(
                    " ↑/↓ scroll · G end (follow) · g start · / filter · {} time · w wrap · s save{switch} · esc back",
                    app.keymap.short(Action::LogWindow)
                ),
                t.dim(),
            ))
        }
        Overlay::None if app.tab == Tab::Query && app.query.editing => Line::from(Span::styled(
            format!(
                " typing: enter new line · {} send · esc stop typing",
                app.keymap.short(Action::RunQuery)
            ),
            t.dim(),
        )),
        Overlay::None => {
            let mut spans = vec![Span::raw(" ")];
            for (key, what) in pane_keys(app) {
                spans.push(Span::styled(key, t.accent().add_modifier(Modifier::BOLD)));
                spans.push(Span::styled(format!(" {what}  "), t.dim()));
            }
            Line::from(spans)
        }
    };
    frame.render_widget(line, area);
}

fn draw_completions(frame: &mut Frame<'_>, body: Rect, app: &App, input: &str) {
    let found = command::matches(input);
    if found.is_empty() {
        return;
    }
    let h = (found.len() as u16 + 2).min(body.height);
    let w = 44.min(body.width);
    let area = Rect::new(body.x, body.bottom().saturating_sub(h), w, h);
    let lines: Vec<Line<'_>> = found
        .iter()
        .map(|(name, what)| {
            Line::from(vec![
                Span::styled(format!(" :{name:<18}"), crate::ui::theme::of(app).accent()),
                Span::styled(*what, crate::ui::theme::of(app).dim()),
            ])
        })
        .collect();
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(widgets::block("commands", true, &crate::ui::theme::of(app))),
        area,
    );
}
