//! Candidates: the curated catalog and the local Hugging Face cache, with a details panel.
//!
//! ```text
//! ┏ Candidates (3) ━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓╭ Details ────────────────────╮
//! ┃  HANDLE              TASK        SIZE  SF   ┃│ handle, task, library,      │
//! ┃▶ sentence-transfor…  sentence-…  90 MB yes  ┃│ licence, parameters, size,  │
//! ┃  …                                          ┃│ verdicts, cache, notes      │
//! ┗━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┛╰─────────────────────────────╯
//! ```
//! Side by side from 130 columns, stacked below that.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Wrap};

use super::widgets::{self, kv, kv_wrapped};
use crate::app::state::{App, TableId};
use crate::domain::{Candidate, units};

/// (table, details)
pub fn split(body: Rect) -> (Rect, Rect) {
    if body.width >= 130 {
        let [a, b] = Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)])
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
    // Fixed columns; the handle takes what is left and is cut with an ellipsis.
    const TASK: u16 = 19;
    const SIZE: u16 = 8;
    const SOURCE: u16 = 9;
    const SF: u16 = 9;
    let handle_w = table_area
        .width
        .saturating_sub(2 + 1 + TASK + SIZE + SOURCE + SF + 5) as usize;
    let table_rows: Vec<Row<'_>> = rows
        .iter()
        .map(|c| {
            let (sf, sf_style) = match c.snowflake.supported {
                Some(true) => ("✔ yes", Style::new().fg(theme.ok)),
                Some(false) => ("✖ no", Style::new().fg(theme.fault)),
                None => ("? unknown", theme.dim()),
            };
            Row::new(vec![
                Cell::from(widgets::fit(&c.handle, handle_w)),
                Cell::from(widgets::fit(
                    c.task.as_deref().unwrap_or("?"),
                    TASK as usize,
                )),
                Cell::from(size_text(c)),
                Cell::from(Span::styled(c.source.short_label(), theme.dim())),
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
            Constraint::Fill(1),
            Constraint::Length(TASK),
            Constraint::Length(SIZE),
            Constraint::Length(SOURCE),
            Constraint::Length(SF),
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
    let width = area.width.saturating_sub(2);
    let plain = Style::new();
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
    ];
    let params = c
        .parameters
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
        .unwrap_or_else(|| "unknown".into());
    lines.extend(kv_wrapped("parameters", &params, plain, width, theme));
    let weights = match &c.weight_file {
        Some(f) => format!("{} ({f})", size_text(c)),
        None => size_text(c),
    };
    lines.extend(kv_wrapped("weights", &weights, plain, width, theme));
    lines.push(kv("source", c.source.label(), theme));
    if let Some(p) = &c.purpose {
        lines.extend(kv_wrapped("for", p, plain, width, theme));
    }
    let (sf_symbol, sf_style) = match c.snowflake.supported {
        Some(true) => ("✔", Style::new().fg(theme.ok)),
        Some(false) => ("✖", Style::new().fg(theme.fault)),
        None => ("?", theme.dim()),
    };
    lines.extend(kv_wrapped(
        "Snowflake",
        &format!("{sf_symbol} {}", c.snowflake.summary()),
        sf_style,
        width,
        theme,
    ));
    lines.extend(kv_wrapped(
        "",
        &c.snowflake.reason,
        theme.dim(),
        width,
        theme,
    ));
    for r in &c.requires {
        lines.extend(kv_wrapped("needs", r, plain, width, theme));
    }
    match &c.cache {
        None => lines.push(kv("cache", "not downloaded", theme)),
        Some(repo) => {
            let summary = format!(
                "{} on disk, {} revision{}{}",
                units::bytes(repo.size_on_disk),
                repo.revisions.len(),
                if repo.revisions.len() == 1 { "" } else { "s" },
                if repo.incomplete_files > 0 {
                    format!(", {} unfinished download(s)", repo.incomplete_files)
                } else {
                    String::new()
                }
            );
            lines.extend(kv_wrapped("cache", &summary, plain, width, theme));
            for rev in &repo.revisions {
                let refs = if rev.refs.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", rev.refs.join(", "))
                };
                let text = format!(
                    "{}{refs}: {} files, {}",
                    &rev.commit[..rev.commit.len().min(12)],
                    rev.files,
                    units::bytes(rev.size_bytes)
                );
                lines.extend(kv_wrapped("", &text, theme.dim(), width, theme));
            }
        }
    }
    for note in &c.notes {
        lines.extend(kv_wrapped(
            "note",
            note,
            Style::new().fg(theme.pending),
            width,
            theme,
        ));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}
