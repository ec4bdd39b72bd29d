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
use ratatui::widgets::Cell;

use super::widgets;
use crate::app::state::{App, TableId};
use crate::domain::{Health, units};

/// (pools, services, selected service): the tables are as tall as their rows (pools up to a
/// third, services up to half of the rest); the selected service's insides take what is left.
pub fn split(body: Rect, pools: usize, services: usize) -> (Rect, Rect, Rect) {
    let wanted = (pools.max(1) as u16).saturating_add(3).max(6);
    let pools_h = wanted.min(body.height / 3);
    let [a, rest] =
        Layout::vertical([Constraint::Length(pools_h), Constraint::Fill(1)]).areas(body);
    if services == 0 {
        return (a, rest, Rect::new(rest.x, rest.bottom(), rest.width, 0));
    }
    let services_h = (services as u16)
        .saturating_add(3)
        .max(5)
        .min(rest.height / 2);
    let [b, c] =
        Layout::vertical([Constraint::Length(services_h), Constraint::Fill(1)]).areas(rest);
    (a, b, c)
}

const ERROR_HINT: &str = "r retries; `hugflake doctor` shows the daemon's state and log path.";

pub fn render(frame: &mut Frame<'_>, body: Rect, app: &App) {
    let pools = app.visible_pools();
    let (pools_area, services_area, detail_area) =
        split(body, pools.len(), app.visible_services().len());
    render_pools(frame, pools_area, app);
    render_services(frame, services_area, app);
    if detail_area.height > 2 {
        if app.health_tree {
            render_tree(frame, detail_area, app);
        } else {
            render_detail(frame, detail_area, app);
        }
    }
}

/// The selected service: containers (drill-down), endpoint, sparklines and the log tail.
fn render_detail(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &crate::ui::theme::of(app);
    let Some(svc) = app.selected_service() else {
        return;
    };
    let detail = app.service_detail.as_ref().filter(|d| d.name == svc.name);
    let precision = svc
        .precision
        .filter(|p| p.is_reduced())
        .map(|p| format!(" · {p}"))
        .unwrap_or_default();
    let title = format!(
        " {} · {} {} · pool {}{precision} ",
        svc.name,
        svc.model.as_deref().unwrap_or("model ?"),
        svc.model_version.as_deref().unwrap_or(""),
        svc.compute_pool
    );
    let block = widgets::block(title, false, t);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(d) = detail else {
        frame.render_widget(
            ratatui::widgets::Paragraph::new(Span::styled(
                "loading instances, metrics and logs…",
                t.dim(),
            )),
            inner,
        );
        return;
    };
    let [left, middle, right] = Layout::horizontal([
        Constraint::Percentage(34),
        Constraint::Percentage(30),
        Constraint::Percentage(36),
    ])
    .spacing(2)
    .areas(inner);
    // Drill-down: service → instances → containers → endpoints, under its scaling (SPCS's
    // current/target instances and bounds).
    let mut lines: Vec<Line<'_>> = Vec::new();
    // Said only for a service that scales (a fixed one's count is in the READY column).
    let scaling = svc.scaling();
    if scaling.min_instances != scaling.max_instances || scaling.min_instances == 0 {
        lines.push(Line::from(Span::styled(
            format!(
                "instances {}/{} · min {} max {}",
                svc.current_instances,
                svc.target_instances,
                scaling.min_instances,
                scaling.max_instances
            ),
            t.dim(),
        )));
    }
    if let Some(after) = scaling.suspends_when_idle() {
        lines.push(Line::from(Span::styled(
            format!("suspends after {} s idle", after.as_secs()),
            t.dim(),
        )));
    }
    if let Some(ms) = svc.cold_start_ms {
        lines.push(Line::from(Span::styled(
            format!("last cold start {ms} ms"),
            t.dim(),
        )));
    }
    if svc.auto_suspended {
        lines.push(Line::from(Span::styled(
            "idle: the next call resumes it",
            t.dim(),
        )));
    }
    if let Some(r) = &d.requests {
        lines.push(Line::from(Span::styled(
            format!("requests {}", r.summary()),
            t.dim(),
        )));
    }
    for c in &d.containers {
        let (sym, style) = t.health(c.status.health());
        lines.push(Line::from(vec![
            Span::styled(format!("{sym} "), style),
            Span::raw(format!(
                "instance {} · {} ",
                c.instance_id, c.container_name
            )),
            Span::styled(c.status.to_string(), style),
        ]));
        let mut facts = vec![format!("restarts {}", c.restart_count)];
        if let Some(code) = c.last_exit_code {
            facts.push(format!("last exit {code}"));
        }
        if let Some(m) = c.memory_bytes {
            facts.push(units::bytes(m));
        }
        if let Some(s) = c.start_time {
            facts.push(format!(
                "up {}",
                units::duration((app.now - s).num_seconds())
            ));
        }
        lines.push(Line::from(Span::styled(
            format!("    {}", facts.join(" · ")),
            t.dim(),
        )));
        if let Some(cal) = &c.calibration {
            let style = match cal.shortfall() {
                None => t.dim(),
                Some(_) => t.error(),
            };
            lines.push(Line::from(Span::styled(
                format!("    {}", cal.short()),
                style,
            )));
        }
        if let Some(m) = &c.message {
            lines.push(Line::from(Span::styled(format!("    {m}"), t.dim())));
        }
    }
    if d.containers.is_empty() {
        lines.push(Line::from(Span::styled("no instances running", t.dim())));
    }
    for e in &d.endpoints {
        lines.push(Line::from(vec![
            Span::styled("⇄ ", t.accent()),
            Span::raw(format!("{} {} {}", e.name, e.protocol, e.ingress_url)),
        ]));
    }
    for p in &d.problems {
        lines.push(Line::from(Span::styled(format!("✖ {p}"), t.error())));
    }
    frame.render_widget(
        ratatui::widgets::Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: true }),
        left,
    );
    render_sparklines(frame, middle, app, d);
    // Events (what the platform did: starts, readiness, exits, restarts), newest last, above the
    // log tail; they take up to half the column.
    let right = if d.events.is_empty() {
        right
    } else {
        let want = (d.events.len() as u16 + 1).min(right.height / 2);
        let [top, rest] =
            Layout::vertical([Constraint::Length(want), Constraint::Fill(1)]).areas(right);
        let mut lines = vec![Line::from(Span::styled(
            format!("events ({})", d.events.len()),
            t.dim(),
        ))];
        lines.extend(
            d.events
                .iter()
                .rev()
                .take(want.saturating_sub(1) as usize)
                .rev()
                .map(|e| {
                    let (sym, style) = match e.severity.as_str() {
                        "ERROR" | "FATAL" => ("✖", t.error()),
                        "WARN" | "WARNING" => ("▲", ratatui::style::Style::new().fg(t.pending)),
                        _ => ("·", t.dim()),
                    };
                    Line::from(vec![
                        Span::styled(format!("{} ", e.at.format("%H:%M:%S")), t.dim()),
                        Span::styled(format!("{sym} "), style),
                        Span::raw(e.message.clone()),
                    ])
                }),
        );
        frame.render_widget(ratatui::widgets::Paragraph::new(lines), top);
        rest
    };
    // The log tail (L: the whole log).
    let header = !d.events.is_empty();
    let n = (right.height as usize).saturating_sub(usize::from(header));
    let mut tail: Vec<Line<'_>> = Vec::new();
    if header {
        tail.push(Line::from(Span::styled("log (L: full screen)", t.dim())));
    }
    tail.extend(d.logs.iter().rev().take(n).rev().map(|l| {
        Line::from(vec![
            Span::styled(format!("{} ", l.at.format("%H:%M:%S")), t.dim()),
            Span::raw(l.line.clone()),
        ])
    }));
    frame.render_widget(ratatui::widgets::Paragraph::new(tail), right);
}

/// Latency, throughput, errors and memory over the samples kept, one sparkline each.
fn render_sparklines(
    frame: &mut Frame<'_>,
    area: Rect,
    app: &App,
    d: &crate::platform::ServiceDetail,
) {
    use ratatui::widgets::Sparkline;
    let t = &crate::ui::theme::of(app);
    let width = area.width.saturating_sub(1) as usize;
    let recent: Vec<&crate::domain::MetricSample> =
        d.metrics.iter().rev().take(width).rev().collect();
    let last = recent.last();
    let series: [(&str, Vec<u64>, String, ratatui::style::Color); 4] = [
        (
            "p50 latency",
            recent
                .iter()
                .map(|s| s.p50_ms.unwrap_or(0.0).round() as u64)
                .collect(),
            last.and_then(|s| s.p50_ms)
                .map_or("-".into(), |v| format!("{v:.1} ms")),
            t.accent,
        ),
        (
            "requests",
            recent.iter().map(|s| s.requests).collect(),
            last.map_or("-".into(), |s| {
                format!("{}/{:.0}s", s.requests, s.interval_secs)
            }),
            t.ok,
        ),
        (
            "errors",
            recent.iter().map(|s| s.errors).collect(),
            last.map_or("-".into(), |s| s.errors.to_string()),
            t.fault,
        ),
        (
            "memory",
            recent
                .iter()
                .map(|s| s.memory_bytes / (1024 * 1024))
                .collect(),
            last.map_or("-".into(), |s| units::bytes(s.memory_bytes)),
            t.pending,
        ),
    ];
    let rows = Layout::vertical([Constraint::Length(3); 4]).split(area);
    for ((name, data, now, colour), row) in series.into_iter().zip(rows.iter()) {
        let [label, spark] =
            Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(*row);
        frame.render_widget(
            Line::from(vec![
                Span::styled(format!("{name} "), t.dim()),
                Span::raw(now),
            ]),
            label,
        );
        if data.is_empty() {
            continue;
        }
        frame.render_widget(
            Sparkline::default()
                .data(&data)
                .style(ratatui::style::Style::new().fg(colour)),
            spark,
        );
    }
}

fn render_pools(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let theme = &crate::ui::theme::of(app);
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
    let window = widgets::window(area, app, TableId::Pools, rows.len());
    let table_rows: Vec<Vec<Cell<'_>>> = rows[window.clone()]
        .iter()
        .map(|p| {
            let (sym, style) = theme.health(p.health());
            vec![
                Cell::from(Span::styled(format!("{sym} {}", p.state), style)),
                Cell::from(p.name.clone()),
                Cell::from(format!("{}/{}", p.active_nodes, p.max_nodes)),
                Cell::from(p.num_services.to_string()),
                Cell::from(p.size()),
                Cell::from(Span::styled(p.instance_family.clone(), theme.dim())),
                Cell::from(units::duration((app.now - p.created_on).num_seconds())),
            ]
        })
        .collect();
    let name_w = rows[window.clone()]
        .iter()
        .map(|p| p.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 48) as u16;
    // A GPU family's size says its GPUs too.
    let budget_w = rows[window.clone()]
        .iter()
        .map(|p| p.size().chars().count())
        .max()
        .unwrap_or(18)
        .clamp(18, 44) as u16;
    widgets::fitted_table(
        frame,
        area,
        block,
        &[
            widgets::Col::new("STATE", 12, 0, 0),
            widgets::Col::new("NAME", name_w, 2, 0),
            widgets::Col::new("NODES", 5, 0, 3),
            widgets::Col::new("SERVICES", 8, 0, 4),
            widgets::Col::new("BUDGET", budget_w, 0, 2),
            widgets::Col::new("FAMILY", 10, 1, 5),
            widgets::Col::new("AGE", 7, 0, 6),
        ],
        table_rows,
        window,
        app,
        TableId::Pools,
        focused,
    );
}

fn render_services(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let theme = &crate::ui::theme::of(app);
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
    let window = widgets::window(area, app, TableId::Services, rows.len());
    let table_rows: Vec<Vec<Cell<'_>>> = rows[window.clone()]
        .iter()
        .map(|s| {
            let (sym, style) = theme.health(s.health());
            let since = s.resumed_on.unwrap_or(s.created_on);
            vec![
                Cell::from(Span::styled(format!("{sym} {}", s.status_label()), style)),
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
            ]
        })
        .collect();
    // On a narrow screen the endpoint and uptime give way first, then the pool and model; the
    // name is kept whole.
    let name_w = rows[window.clone()]
        .iter()
        .map(|s| s.qualified_name().chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 48) as u16;
    let model_w = rows[window.clone()]
        .iter()
        .map(|s| match (&s.model, &s.model_version) {
            (Some(m), Some(v)) => m.chars().count() + 1 + v.chars().count(),
            (Some(m), None) => m.chars().count(),
            _ => 1,
        })
        .max()
        .unwrap_or(5)
        .clamp(5, 28) as u16;
    let status_w = rows[window.clone()]
        .iter()
        .map(|s| s.status_label().chars().count() + 2)
        .max()
        .unwrap_or(9)
        .max(9) as u16;
    widgets::fitted_table(
        frame,
        area,
        block,
        &[
            widgets::Col::new("STATUS", status_w, 0, 0),
            widgets::Col::new("NAME", name_w, 1, 0),
            widgets::Col::new("READY", 5, 0, 2),
            widgets::Col::new("POOL", 9, 1, 4),
            widgets::Col::new("MODEL", model_w, 3, 3),
            widgets::Col::new("ENDPOINT", 22, 1, 6),
            widgets::Col::new("UPTIME", 7, 0, 5),
        ],
        table_rows,
        window,
        app,
        TableId::Services,
        focused,
    );
}

/// One line of the roll-up tree: depth, what it is, its own state, and the health rolled up from
/// everything under it (the worst wins: a FAILED container makes its service, version and model
/// read as faulty).
#[derive(Debug, Clone, PartialEq)]
pub struct TreeNode {
    pub depth: usize,
    pub label: String,
    pub health: Health,
}

/// model → version → service → instance → container (→ pool), from the snapshot and the selected
/// service's containers.
pub fn rollup(app: &App) -> Vec<TreeNode> {
    let Some(snap) = app.snapshot.data.as_ref() else {
        return Vec::new();
    };
    let pool_health = |name: &str| {
        snap.pools
            .iter()
            .find(|p| p.name == name)
            .map_or(Health::Pending, |p| p.health())
    };
    let mut out = Vec::new();
    let mut models: Vec<(String, Vec<String>)> = snap
        .models
        .iter()
        .map(|m| (m.name.clone(), m.versions.clone()))
        .collect();
    // Services whose model the registry does not list (Snowflake's SHOW SERVICES names none).
    let orphans: Vec<&crate::domain::Service> = snap
        .services
        .iter()
        .filter(|s| !s.is_job)
        .filter(|s| {
            s.model
                .as_ref()
                .is_none_or(|m| !models.iter().any(|(n, _)| n == m))
        })
        .collect();
    if !orphans.is_empty() {
        models.push((
            "(model not named by the platform)".into(),
            vec![String::new()],
        ));
    }
    for (model, versions) in &models {
        let model_at = out.len();
        out.push(TreeNode {
            depth: 0,
            label: format!("model {model}"),
            health: Health::Idle,
        });
        for version in versions {
            let version_at = out.len();
            if !version.is_empty() {
                out.push(TreeNode {
                    depth: 1,
                    label: format!("version {version}"),
                    health: Health::Idle,
                });
            }
            let services: Vec<&crate::domain::Service> = snap
                .services
                .iter()
                .filter(|s| !s.is_job)
                .filter(|s| {
                    if version.is_empty() {
                        orphans.iter().any(|o| o.name == s.name)
                    } else {
                        s.model.as_deref() == Some(model)
                            && s.model_version.as_deref() == Some(version)
                    }
                })
                .collect();
            for s in services {
                let service_at = out.len();
                out.push(TreeNode {
                    depth: 2,
                    label: format!(
                        "service {} {} · {}/{} ready",
                        s.name,
                        s.status_label(),
                        s.ready_instances,
                        s.target_instances
                    ),
                    health: s.health(),
                });
                let detail = app.service_detail.as_ref().filter(|d| d.name == s.name);
                for c in detail.map(|d| d.containers.as_slice()).unwrap_or_default() {
                    out.push(TreeNode {
                        depth: 3,
                        label: format!(
                            "instance {} · {} {} · restarts {}",
                            c.instance_id, c.container_name, c.status, c.restart_count
                        ),
                        health: c.status.health(),
                    });
                }
                out.push(TreeNode {
                    depth: 3,
                    label: format!("pool {}", s.compute_pool),
                    health: pool_health(&s.compute_pool),
                });
                roll(&mut out, service_at);
            }
            if !version.is_empty() {
                roll(&mut out, version_at);
            }
        }
        roll(&mut out, model_at);
    }
    out
}

/// The node at `at` takes the worst health of itself and the nodes below it.
fn roll(nodes: &mut [TreeNode], at: usize) {
    let depth = nodes[at].depth;
    let worst = nodes[at + 1..]
        .iter()
        .take_while(|n| n.depth > depth)
        .map(|n| n.health)
        .min();
    if let Some(w) = worst {
        nodes[at].health = nodes[at].health.min(w);
    }
}

pub fn render_tree(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &crate::ui::theme::of(app);
    let nodes = rollup(app);
    let mut lines: Vec<Line<'_>> = nodes
        .iter()
        .map(|n| {
            let (sym, style) = t.health(n.health);
            Line::from(vec![
                Span::raw(format!(
                    "{}{}",
                    "  ".repeat(n.depth),
                    if n.depth > 0 { "└ " } else { "" }
                )),
                Span::styled(format!("{sym} "), style),
                Span::raw(n.label.clone()),
            ])
        })
        .collect();
    if lines.is_empty() {
        lines.push(Line::from(Span::styled(
            "no models in the registry yet",
            t.dim(),
        )));
    }
    frame.render_widget(
        ratatui::widgets::Paragraph::new(lines).block(widgets::block(
            " Roll-up (t: back to the selected service) ",
            false,
            t,
        )),
        area,
    );
}
