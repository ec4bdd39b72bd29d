//! Health: compute pools above, services below, faults first in each.
//!
//! ```text
//! ┏ Compute pools (1) ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
//! ┃  STATE      NAME       NODES SERVICES BUDGET            FAMILY      AGE  ┃
//! ┃▶ ○ IDLE     LOCAL_CPU  1/1   0        2 vCPU · 17.5 GiB LOCAL_HOST  3m   ┃
//! ┗━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┛
//! ╭ Services (0) ─────────────────────────────────────────────────────────────╮
//! │ empty state: how to get a service                                         │
//! ╰───────────────────────────────────────────────────────────────────────────╯
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row};

use super::widgets;
use crate::app::state::{App, TableId};
use crate::domain::{Health, units};

/// (pools, services): the pools table is as tall as its rows, up to half the body.
pub fn split(body: Rect, pools: usize) -> (Rect, Rect) {
    let wanted = (pools.max(1) as u16).saturating_add(3).max(6);
    let pools_h = wanted.min(body.height / 2);
    let [a, b] = Layout::vertical([Constraint::Length(pools_h), Constraint::Min(3)]).areas(body);
    (a, b)
}

const ERROR_HINT: &str = "r retries; `hugflake doctor` shows the daemon's state and log path.";

pub fn render(frame: &mut Frame<'_>, body: Rect, app: &App) {
    let pools = app.visible_pools();
    let (pools_area, services_area) = split(body, pools.len());
    render_pools(frame, pools_area, app);
    render_services(frame, services_area, app);
}

fn render_pools(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let theme = &app.theme;
    let rows = app.visible_pools();
    let total = app.snapshot.data.as_ref().map_or(0, |s| s.pools.len());
    let view = app.view(TableId::Pools);
    let focused = app.health_focus == TableId::Pools;
    let block = widgets::block(
        widgets::title("Compute pools", rows.len(), total, &view.filter, theme),
        focused,
        theme,
    );
    if let Some(p) = widgets::remote_placeholder(
        &app.snapshot,
        rows.len(),
        total,
        &view.filter,
        "Loading compute pools…",
        (
            "No compute pools.",
            "The local daemon creates LOCAL_CPU on first start; a missing pool means the registry was changed by hand.",
        ),
        ERROR_HINT,
    ) {
        widgets::placeholder(frame, area, block, p, theme);
        return;
    }
    let table_rows: Vec<Row<'_>> = rows
        .iter()
        .map(|p| {
            let (sym, style) = theme.health(p.health());
            Row::new(vec![
                Cell::from(Span::styled(format!("{sym} {}", p.state), style)),
                Cell::from(p.name.clone()),
                Cell::from(format!("{}/{}", p.active_nodes, p.max_nodes)),
                Cell::from(p.num_services.to_string()),
                Cell::from(format!("{} vCPU · {:.1} GiB", p.vcpu, p.memory_gib)),
                Cell::from(Span::styled(p.instance_family.clone(), theme.dim())),
                Cell::from(units::duration((app.now - p.created_on).num_seconds())),
            ])
        })
        .collect();
    widgets::table(
        frame,
        area,
        block,
        &[
            "STATE", "NAME", "NODES", "SERVICES", "BUDGET", "FAMILY", "AGE",
        ],
        table_rows,
        &[
            Constraint::Length(12),
            Constraint::Fill(1),
            Constraint::Length(5),
            Constraint::Length(8),
            Constraint::Length(18),
            Constraint::Fill(1),
            Constraint::Length(8),
        ],
        app,
        TableId::Pools,
        focused,
    );
}

fn render_services(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let theme = &app.theme;
    let rows = app.visible_services();
    let total = app.snapshot.data.as_ref().map_or(0, |s| s.services.len());
    let view = app.view(TableId::Services);
    let focused = app.health_focus == TableId::Services;
    let mut block = widgets::block(
        widgets::title("Services", rows.len(), total, &view.filter, theme),
        focused,
        theme,
    );
    // The first fault's cause, where it cannot be missed (faults sort first).
    if let Some(s) = rows
        .iter()
        .find(|s| s.health() == Health::Fault && s.message.is_some())
    {
        block = block.title_bottom(Line::from(Span::styled(
            format!(
                " ✖ {}: {} ",
                s.name,
                s.message.as_deref().unwrap_or_default()
            ),
            theme.error(),
        )));
    }
    if let Some(p) = widgets::remote_placeholder(
        &app.snapshot,
        rows.len(),
        total,
        &view.filter,
        "Loading services…",
        (
            "No services yet.",
            "A service appears here when a model is imported and deployed to a pool (for example LOCAL_CPU), \
             with its instances, endpoint and health.",
        ),
        ERROR_HINT,
    ) {
        widgets::placeholder(frame, area, block, p, theme);
        return;
    }
    let table_rows: Vec<Row<'_>> = rows
        .iter()
        .map(|s| {
            let (sym, style) = theme.health(s.health());
            let since = s.resumed_on.unwrap_or(s.created_on);
            Row::new(vec![
                Cell::from(Span::styled(format!("{sym} {}", s.status), style)),
                Cell::from(s.qualified_name()),
                Cell::from(format!("{}/{}", s.ready_instances, s.target_instances)),
                Cell::from(s.compute_pool.clone()),
                Cell::from(match (&s.model, &s.model_version) {
                    (Some(m), Some(v)) => format!("{m} {v}"),
                    (Some(m), None) => m.clone(),
                    _ => "-".into(),
                }),
                Cell::from(s.endpoint.clone().unwrap_or_else(|| "-".into())),
                Cell::from(units::duration((app.now - since).num_seconds())),
            ])
        })
        .collect();
    widgets::table(
        frame,
        area,
        block,
        &[
            "STATUS", "NAME", "READY", "POOL", "MODEL", "ENDPOINT", "UPTIME",
        ],
        table_rows,
        &[
            Constraint::Length(16),
            Constraint::Fill(2),
            Constraint::Length(5),
            Constraint::Fill(1),
            Constraint::Fill(2),
            Constraint::Fill(2),
            Constraint::Length(8),
        ],
        app,
        TableId::Services,
        focused,
    );
}
