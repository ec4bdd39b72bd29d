//! Query: pick a running model service to try.
//!
//! ```text
//! ┏ Services to query (1) ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
//! ┃  SERVICE          MODEL               ENDPOINT                            ┃
//! ┗━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┛
//! ╭ Privacy ───────────────────────────────────────────────────────────────────╮
//! ╰────────────────────────────────────────────────────────────────────────────╯
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Wrap};

use super::widgets;
use crate::app::state::{App, TableId};

/// (services, notes)
pub fn split(body: Rect) -> (Rect, Rect) {
    let [a, b] = Layout::vertical([Constraint::Min(5), Constraint::Length(5)]).areas(body);
    (a, b)
}

pub fn render(frame: &mut Frame<'_>, body: Rect, app: &App) {
    let (table_area, notes_area) = split(body);
    let theme = &app.theme;
    let rows = app.visible_query_services();
    let total = app.snapshot.data.as_ref().map_or(0, |s| {
        s.services
            .iter()
            .filter(|s| s.model.is_some() && !s.is_job)
            .count()
    });
    let view = app.view(TableId::QueryServices);
    let block = widgets::block(
        widgets::title("Services to query", rows.len(), total, &view.filter, theme),
        true,
        theme,
    );
    let notes = vec![
        Line::from(Span::raw(
            "Nothing typed here is logged or stored: inputs may be clinical text (PHI).",
        )),
        Line::from(Span::styled(
            "Results of BiomedCLIP are for research use only, not for diagnosis.",
            theme.dim(),
        )),
    ];
    frame.render_widget(
        Paragraph::new(notes)
            .wrap(Wrap { trim: true })
            .block(widgets::block(" Privacy ", false, theme)),
        notes_area,
    );
    if let Some(p) = widgets::remote_placeholder(
        &app.snapshot,
        rows.len(),
        total,
        &view.filter,
        "Loading services…",
        (
            "No running model service to query.",
            "Deploy an imported model to a pool; once its service is RUNNING it is listed here with its methods.",
        ),
        "r retries; `hugflake doctor` shows the daemon's state.",
    ) {
        widgets::placeholder(frame, table_area, block, p, theme);
        return;
    }
    let table_rows: Vec<Row<'_>> = rows
        .iter()
        .map(|s| {
            Row::new(vec![
                Cell::from(s.qualified_name()),
                Cell::from(format!(
                    "{} {}",
                    s.model.as_deref().unwrap_or("-"),
                    s.model_version.as_deref().unwrap_or("")
                )),
                Cell::from(s.endpoint.clone().unwrap_or_else(|| "-".into())),
            ])
        })
        .collect();
    widgets::table(
        frame,
        table_area,
        block,
        &["SERVICE", "MODEL", "ENDPOINT"],
        table_rows,
        &[
            Constraint::Fill(2),
            Constraint::Fill(2),
            Constraint::Fill(3),
        ],
        app,
        TableId::QueryServices,
        true,
    );
}
