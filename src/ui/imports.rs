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
use ratatui::widgets::{Cell, Paragraph, Row, Wrap};

use super::widgets::{self, kv};
use crate::app::state::{App, TableId};
use crate::domain::{JobSummary, units};

/// (jobs, details)
pub fn split(body: Rect) -> (Rect, Rect) {
    let [a, b] =
        Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(body);
    (a, b)
}

fn elapsed(app: &App, j: &JobSummary) -> String {
    let end = j.finished_on.unwrap_or(app.now);
    units::duration((end - j.created_on).num_seconds())
}

pub fn render(frame: &mut Frame<'_>, body: Rect, app: &App) {
    let (table_area, details_area) = split(body);
    let theme = &app.theme;
    let rows = app.visible_jobs();
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
    let table_rows: Vec<Row<'_>> = rows
        .iter()
        .map(|j| {
            let (sym, style) = theme.health(j.state.health());
            Row::new(vec![
                Cell::from(Span::styled(format!("{sym} {}", j.state), style)),
                Cell::from(j.model.clone()),
                Cell::from(j.version.clone()),
                Cell::from(j.handle.clone()),
                Cell::from(j.stage.map_or("-".to_string(), |s| s.to_string())),
                Cell::from(elapsed(app, j)),
            ])
        })
        .collect();
    widgets::table(
        frame,
        table_area,
        block,
        &["STATE", "MODEL", "VERSION", "HANDLE", "STAGE", "ELAPSED"],
        table_rows,
        &[
            Constraint::Length(12),
            Constraint::Fill(2),
            Constraint::Length(7),
            Constraint::Fill(3),
            Constraint::Length(9),
            Constraint::Length(8),
        ],
        app,
        TableId::Jobs,
        true,
    );
    let Some(j) = rows.get(view.cursor.selected) else {
        return;
    };
    let mut lines = vec![
        kv("job", j.id.clone(), theme),
        kv(
            "import",
            format!("{} → {} {}", j.handle, j.model, j.version),
            theme,
        ),
        kv("target", j.target.clone(), theme),
        kv(
            "state",
            format!(
                "{}{}",
                j.state,
                j.stage.map(|s| format!(" at {s}")).unwrap_or_default()
            ),
            theme,
        ),
        kv(
            "started",
            j.created_on.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            theme,
        ),
        kv("elapsed", elapsed(app, j), theme),
    ];
    if let Some(e) = &j.error {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<12} ", "error"), theme.dim()),
            Span::styled(e.clone(), theme.error()),
        ]));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(details),
        details_area,
    );
}
