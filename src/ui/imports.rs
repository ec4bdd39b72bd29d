//! Imports: the platform's import jobs, newest first, with the selected job below.
//!
//! ```text
//! ┏ Import jobs (2) ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
//! ┃  STATE      MODEL             VERSION HANDLE              STAGE     ELAPSED ┃
//! ┗━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┛
//! ╭ Job ───────────────────────────────────────────────────────────────────────╮
//! │ id, target, stage, times, error                                            │
//! ╰────────────────────────────────────────────────────────────────────────────╯
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Wrap};

use super::widgets::{self, kv};
use crate::app::state::{App, TableId};
use crate::domain::{FileProgress, Health, JobDetail, JobSummary, StageState, units};

/// (jobs, details): the job list takes what its rows need, up to half; the selected job the rest.
pub fn split(body: Rect, jobs: usize) -> (Rect, Rect) {
    let wanted = (jobs.max(3) as u16).saturating_add(3).min(body.height / 2);
    let [a, b] = Layout::vertical([Constraint::Length(wanted), Constraint::Fill(1)]).areas(body);
    (a, b)
}

fn elapsed(app: &App, j: &JobSummary) -> String {
    let end = j.finished_on.unwrap_or(app.now);
    units::duration((end - j.created_on).num_seconds())
}

pub fn render(frame: &mut Frame<'_>, body: Rect, app: &App) {
    // Batch runs of this machine, when there are any, take the bottom of the tab.
    let body = if app.batch_runs.is_empty() {
        body
    } else {
        let want = (app.batch_runs.len().min(6) as u16 + 3).min(body.height / 3);
        let [top, bottom] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(want)]).areas(body);
        batch_runs(frame, bottom, app);
        top
    };
    let theme = &crate::ui::theme::of(app);
    let rows = app.visible_jobs();
    let (table_area, details_area) = split(body, rows.len());
    let total = app.snapshot.data.as_ref().map_or(0, |s| s.jobs.len());
    let view = app.view(TableId::Jobs);
    let block = widgets::block(
        widgets::title("Import jobs", rows.len(), total, &view.filter, theme),
        true,
        theme,
    );
    let details = widgets::block(" Job ", false, theme);
    if let Some(p) = widgets::remote_placeholder(
        &app.snapshot,
        rows.len(),
        total,
        &view.filter,
        "Loading import jobs…",
        (
            "No import jobs yet.",
            "An import is a job with stages (resolve, download, verify, register, build, deploy, ready). \
             Jobs run in the platform, keep running when the TUI closes, and are listed here.",
        ),
        "r retries; `hugflake doctor` shows the daemon's state.",
    ) {
        widgets::placeholder(frame, table_area, block, p, theme);
        frame.render_widget(
            Paragraph::new(Span::styled("Select a job to see its stages.", theme.dim()))
                .block(details),
            details_area,
        );
        return;
    }
    let window = widgets::window(table_area, app, TableId::Jobs, rows.len());
    let table_rows: Vec<Vec<Cell<'_>>> = rows[window.clone()]
        .iter()
        .map(|j| {
            let (sym, style) = theme.health(j.state.health());
            vec![
                Cell::from(Span::styled(format!("{sym} {}", j.state), style)),
                Cell::from(j.model.clone()),
                Cell::from(j.version.clone()),
                Cell::from(j.handle.clone()),
                Cell::from(j.stage.map_or("-".to_string(), |s| s.to_string())),
                Cell::from(elapsed(app, j)),
            ]
        })
        .collect();
    let model_w = rows[window.clone()]
        .iter()
        .map(|j| j.model.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 40) as u16;
    // The handle is not cut: on a narrow screen it gives way (the job panel shows it).
    let handle_w = rows[window.clone()]
        .iter()
        .map(|j| j.handle.chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 48) as u16;
    widgets::fitted_table(
        frame,
        table_area,
        block,
        &[
            widgets::Col::new("STATE", 12, 0, 0),
            widgets::Col::new("MODEL", model_w, 2, 0),
            widgets::Col::new("VERSION", 7, 0, 4),
            widgets::Col::new("HANDLE", handle_w, 3, 5),
            widgets::Col::new("STAGE", 9, 0, 3),
            widgets::Col::new("ELAPSED", 8, 0, 6),
        ],
        table_rows,
        window,
        app,
        TableId::Jobs,
        true,
    );
    let Some(j) = rows.get(view.cursor.selected) else {
        return;
    };
    let detail = app.job_detail.as_ref().filter(|d| d.summary.id == j.id);
    let mut lines = vec![
        kv(
            "import",
            format!("{} → {} {} on {}", j.handle, j.model, j.version, j.target),
            theme,
        ),
        kv(
            "state",
            format!(
                "{}{} · started {} · {}",
                j.state,
                j.stage.map(|s| format!(" at {s}")).unwrap_or_default(),
                j.created_on.format("%Y-%m-%d %H:%M:%S UTC"),
                elapsed(app, j)
            ),
            theme,
        ),
        kv("job", j.id.clone(), theme),
    ];
    if let Some(e) = &j.error {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<12} ", "error"), theme.dim()),
            Span::styled(e.clone(), theme.error()),
        ]));
    }
    let Some(d) = detail else {
        lines.push(Line::from(Span::styled("loading stages…", theme.dim())));
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(details),
            details_area,
        );
        return;
    };
    let inner = details.inner(details_area);
    frame.render_widget(details, details_area);
    let head = (lines.len() as u16 + 1).min(inner.height);
    let [head_area, rest] =
        Layout::vertical([Constraint::Length(head), Constraint::Fill(1)]).areas(inner);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), head_area);
    let [stages_area, right] =
        Layout::horizontal([Constraint::Length(30), Constraint::Fill(1)]).areas(rest);
    frame.render_widget(Paragraph::new(stage_lines(app, d)), stages_area);
    let files = file_lines(app, d, right.width as usize);
    let file_rows = (files.len() as u16).min(right.height / 2);
    let [files_area, log_area] =
        Layout::vertical([Constraint::Length(file_rows), Constraint::Fill(1)]).areas(right);
    frame.render_widget(Paragraph::new(files), files_area);
    let n = log_area.height as usize;
    let log: Vec<Line<'_>> = d
        .log
        .iter()
        .rev()
        .take(n)
        .rev()
        .map(|l| {
            Line::from(vec![
                Span::styled(format!("{} ", l.at.format("%H:%M:%S")), theme.dim()),
                Span::raw(l.line.clone()),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(log), log_area);
}

/// `hugflake batch ...` runs: kind, service, input, a progress bar with counts and rate, state.
fn batch_runs(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &crate::ui::theme::of(app);
    let block = widgets::block(
        format!(" Batch runs ({}) · hugflake batch … ", app.batch_runs.len()),
        false,
        t,
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let bar_w = 16usize;
    let lines: Vec<Line<'_>> = app
        .batch_runs
        .iter()
        .take(inner.height as usize)
        .map(|r| {
            let (sym, style) = t.health(r.state.health());
            let frac = if r.total == 0 {
                if r.finished_on.is_some() { 1.0 } else { 0.0 }
            } else {
                ((r.done + r.failed) as f64 / r.total as f64).clamp(0.0, 1.0)
            };
            let filled = (frac * bar_w as f64).round() as usize;
            let input = std::path::Path::new(&r.input)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| r.input.clone());
            let mut spans = vec![
                Span::styled(format!("{sym} {:<9} ", r.state.as_str()), style),
                Span::raw(format!("{:<15} ", widgets::fit(&r.kind, 15))),
                Span::raw(format!("{:<22} ", widgets::fit(&r.service, 22))),
                Span::raw(format!("{:<18} ", widgets::fit(&input, 18))),
                Span::styled("█".repeat(filled), t.accent()),
                Span::styled("░".repeat(bar_w - filled), t.dim()),
                Span::raw(format!(" {}/{} ", r.done, r.total)),
                Span::styled(format!("{:.0}/s ", r.rate()), t.dim()),
            ];
            if r.failed > 0 {
                spans.push(Span::styled(format!("{} failed ", r.failed), t.error()));
            }
            if r.skipped > 0 {
                spans.push(Span::styled(format!("{} skipped ", r.skipped), t.dim()));
            }
            let took =
                units::duration((r.finished_on.unwrap_or(app.now) - r.started_on).num_seconds());
            let message = crate::domain::units::strip_control(r.message.as_deref().unwrap_or(""));
            spans.push(Span::styled(
                if message.is_empty() {
                    took
                } else {
                    format!("{took} · {message}")
                },
                t.dim(),
            ));
            Line::from(spans)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The stage timeline: each stage with its state and how long it took (or has run).
fn stage_lines<'a>(app: &App, d: &JobDetail) -> Vec<Line<'a>> {
    let t = &crate::ui::theme::of(app);
    d.stages
        .iter()
        .map(|s| {
            let (sym, style) = match s.state {
                StageState::Done => ("✔", t.health(Health::Ok).1),
                StageState::Running => ("▶", t.health(Health::Pending).1),
                StageState::Failed => ("✖", t.error()),
                StageState::Skipped => ("–", t.dim()),
                StageState::Pending => ("·", t.dim()),
            };
            let took = match (s.started_on, s.finished_on) {
                (Some(a), Some(b)) => seconds((b - a).num_milliseconds()),
                (Some(a), None) if s.state == StageState::Running => {
                    seconds((app.now - a).num_milliseconds())
                }
                _ => String::new(),
            };
            Line::from(vec![
                Span::styled(format!("{sym} "), style),
                Span::styled(format!("{:<9}", s.stage.as_str()), style),
                Span::styled(format!("{:<8}", s.state.as_str()), t.dim()),
                Span::raw(format!("{took:>7}")),
            ])
        })
        .collect()
}

fn seconds(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        units::duration(ms / 1000)
    }
}

/// Per-file progress bars of the download, largest files first.
fn file_lines<'a>(app: &App, d: &JobDetail, width: usize) -> Vec<Line<'a>> {
    let t = &crate::ui::theme::of(app);
    let mut files: Vec<&FileProgress> = d.files.iter().collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.size));
    let bar_w = 16usize;
    let name_w = width.saturating_sub(bar_w + 26).max(8);
    files
        .into_iter()
        .map(|f| {
            let frac = if f.size == 0 {
                1.0
            } else {
                (f.done as f64 / f.size as f64).clamp(0.0, 1.0)
            };
            let filled = (frac * bar_w as f64).round() as usize;
            Line::from(vec![
                Span::raw(format!("{:<name_w$} ", widgets::fit(&f.path, name_w))),
                Span::styled("█".repeat(filled), t.accent()),
                Span::styled("░".repeat(bar_w - filled), t.dim()),
                Span::raw(format!(
                    " {:>3.0}% {:>9}",
                    frac * 100.0,
                    units::bytes(f.size)
                )),
                Span::styled(if f.reused { " cached" } else { "" }, t.dim()),
            ])
        })
        .collect()
}
