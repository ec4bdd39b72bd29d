//! Candidates: the curated catalog and the local Hugging Face cache, with a details panel.
//!
//! ```text
//! ┏ Candidates (3) ━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓╭ Details ────────────────────╮
//! ┃  HANDLE              TASK        SIZE  SF   ┃│ handle, task, library,      │
//! ┃▶ sentence-transfor…  sentence-…  90 MB yes  ┃│ licence, parameters, size,  │
//! ┃  …                                          ┃│ verdicts, cache, notes      │
//! ┗━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┛╰─────────────────────────────╯
//! ```
//! Side by side from 110 columns, stacked below that.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Wrap};

use super::widgets::{self, kv};
use crate::app::state::{App, TableId};
use crate::domain::{Candidate, units};

/// (table, details)
pub fn split(body: Rect) -> (Rect, Rect) {
    if body.width >= 110 {
        let [a, b] = Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)])
            .areas(body);
        (a, b)
    } else {
        let [a, b] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body);
        (a, b)
    }
}

fn size_text(c: &Candidate) -> String {
    match (c.weight_bytes, &c.cache) {
        (Some(b), _) => format!(
            "{}{}",
            if c.weight_bytes_approx { "~" } else { "" },
            units::bytes(b)
        ),
        (None, Some(repo)) => units::bytes(repo.size_on_disk),
        (None, None) => "?".into(),
    }
}

pub fn render(frame: &mut Frame<'_>, body: Rect, app: &App) {
    let (table_area, details_area) = split(body);
    let theme = &app.theme;
    let rows = app.visible_candidates();
    let total = app.candidates.data.as_ref().map_or(0, Vec::len);
    let view = app.view(TableId::Candidates);
    let block = widgets::block(
        widgets::title("Candidates", rows.len(), total, &view.filter, theme),
        true,
        theme,
    );
    if let Some(p) = widgets::remote_placeholder(
        &app.candidates,
        rows.len(),
        total,
        &view.filter,
        "Reading the catalog and the Hugging Face cache…",
        (
            "No candidates.",
            "The catalog is empty and no model is in the Hugging Face cache.",
        ),
        "Check the HF cache path with `hugflake doctor`.",
    ) {
        widgets::placeholder(frame, table_area, block, p, theme);
        render_details(frame, details_area, app, None);
        return;
    }
    let table_rows: Vec<Row<'_>> = rows
        .iter()
        .map(|c| {
            let (sf, sf_style) = match c.snowflake.supported {
                Some(true) => ("yes", Style::new().fg(theme.ok)),
                Some(false) => ("no", Style::new().fg(theme.fault)),
                None => ("?", theme.dim()),
            };
            Row::new(vec![
                Cell::from(c.handle.clone()),
                Cell::from(c.task.clone().unwrap_or_else(|| "?".into())),
                Cell::from(size_text(c)),
                Cell::from(Span::styled(c.source.label(), theme.dim())),
                Cell::from(Span::styled(sf, sf_style)),
            ])
        })
        .collect();
    widgets::table(
        frame,
        table_area,
        block,
        &["HANDLE", "TASK", "SIZE", "SOURCE", "SNOWFLAKE"],
        table_rows,
        &[
            Constraint::Fill(3),
            Constraint::Fill(2),
            Constraint::Length(9),
            Constraint::Length(13),
            Constraint::Length(9),
        ],
        app,
        TableId::Candidates,
        true,
    );
    let selected = rows.get(view.cursor.selected).copied();
    render_details(frame, details_area, app, selected);
}

fn render_details(frame: &mut Frame<'_>, area: Rect, app: &App, c: Option<&Candidate>) {
    let theme = &app.theme;
    let block = widgets::block(" Details ", false, theme);
    let Some(c) = c else {
        frame.render_widget(
            Paragraph::new(Span::styled(
                "Select a model to see its details.",
                theme.dim(),
            ))
            .block(block),
            area,
        );
        return;
    };
    let mut lines = vec![
        Line::from(Span::styled(
            c.handle.clone(),
            theme.accent().add_modifier(Modifier::BOLD),
        )),
        kv(
            "task",
            c.task.clone().unwrap_or_else(|| "unknown".into()),
            theme,
        ),
        kv(
            "library",
            c.library.clone().unwrap_or_else(|| "unknown".into()),
            theme,
        ),
        kv(
            "licence",
            c.license.clone().unwrap_or_else(|| "unknown".into()),
            theme,
        ),
        kv(
            "parameters",
            c.parameters
                .map(|p| {
                    if c.parameters_estimated {
                        format!(
                            "~{} (estimated: the repo ships only a .bin)",
                            units::count(p)
                        )
                    } else {
                        units::count(p)
                    }
                })
                .unwrap_or_else(|| "unknown".into()),
            theme,
        ),
        kv("weights", size_text(c), theme),
        kv("source", c.source.label(), theme),
    ];
    if let Some(p) = &c.purpose {
        lines.push(kv("for", p.clone(), theme));
    }
    let (sf_symbol, sf_style) = match c.snowflake.supported {
        Some(true) => ("✔ ", Style::new().fg(theme.ok)),
        Some(false) => ("✖ ", Style::new().fg(theme.fault)),
        None => ("? ", theme.dim()),
    };
    lines.push(Line::from(vec![
        Span::styled(format!("{:<12} ", "Snowflake"), theme.dim()),
        Span::styled(sf_symbol, sf_style),
        Span::styled(c.snowflake.summary(), sf_style),
    ]));
    lines.push(Line::from(Span::styled(
        format!("{:13}{}", "", c.snowflake.reason),
        theme.dim(),
    )));
    for r in &c.requires {
        lines.push(kv("needs", r.clone(), theme));
    }
    match &c.cache {
        None => lines.push(kv("cache", "not downloaded", theme)),
        Some(repo) => {
            lines.push(kv(
                "cache",
                format!(
                    "{} on disk, {} revision{}{}",
                    units::bytes(repo.size_on_disk),
                    repo.revisions.len(),
                    if repo.revisions.len() == 1 { "" } else { "s" },
                    if repo.incomplete_files > 0 {
                        format!(", {} unfinished download(s)", repo.incomplete_files)
                    } else {
                        String::new()
                    }
                ),
                theme,
            ));
            for rev in &repo.revisions {
                let refs = if rev.refs.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", rev.refs.join(", "))
                };
                lines.push(Line::from(Span::styled(
                    format!(
                        "{:13}{}{refs}: {} files, {}",
                        "",
                        &rev.commit[..rev.commit.len().min(12)],
                        rev.files,
                        units::bytes(rev.size_bytes)
                    ),
                    theme.dim(),
                )));
            }
        }
    }
    for note in &c.notes {
        lines.push(Line::from(vec![
            Span::styled("• ", Style::new().fg(theme.pending)),
            Span::raw(note.clone()),
        ]));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}
