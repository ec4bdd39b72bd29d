//! Pieces every pane uses: framed blocks, tables with selection, and the loading / empty / error
//! placeholders (no pane is ever blank).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Row, Table, TableState, Wrap};

use super::theme::Theme;
use crate::app::state::{App, Remote, TableId};

pub fn block<'a>(title: impl Into<Line<'a>>, focused: bool, theme: &Theme) -> Block<'a> {
    let border = if focused { theme.accent() } else { theme.dim() };
    Block::default()
        .borders(Borders::ALL)
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Rounded
        })
        .border_style(border)
        .title(title)
}

/// A table's title: name, row counts (shown/total when filtered) and the filter.
pub fn title<'a>(name: &str, shown: usize, total: usize, filter: &str, theme: &Theme) -> Line<'a> {
    let mut spans = vec![Span::styled(
        format!(" {name} "),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    if filter.is_empty() {
        spans.push(Span::styled(format!("({total}) "), theme.dim()));
    } else {
        spans.push(Span::styled(format!("({shown}/{total}) "), theme.dim()));
        spans.push(Span::styled(format!("/{filter} "), theme.accent()));
    }
    Line::from(spans)
}

/// What a pane shows when it has no rows to show.
pub enum Placeholder<'a> {
    Loading(&'a str),
    /// Nothing there yet, and what to do next.
    Empty {
        what: &'a str,
        hint: &'a str,
    },
    /// Nothing matched the filter.
    NoMatch(&'a str),
    /// A failure and its cause.
    Error {
        cause: &'a str,
        hint: &'a str,
    },
}

pub fn placeholder(
    frame: &mut Frame<'_>,
    area: Rect,
    block: Block<'_>,
    p: Placeholder<'_>,
    theme: &Theme,
) {
    let lines: Vec<Line<'_>> = match p {
        Placeholder::Loading(what) => vec![Line::from(Span::styled(
            format!("◐ {what}"),
            Style::new().fg(theme.pending),
        ))],
        Placeholder::Empty { what, hint } => vec![
            Line::from(Span::styled(
                what.to_string(),
                Style::new().add_modifier(Modifier::BOLD),
            )),
            Line::from(""),
            Line::from(Span::styled(hint.to_string(), theme.dim())),
        ],
        Placeholder::NoMatch(filter) => vec![
            Line::from(format!("No row matches /{filter}.")),
            Line::from(Span::styled("Esc or q clears the filter.", theme.dim())),
        ],
        Placeholder::Error { cause, hint } => vec![
            Line::from(Span::styled(
                "✖ Error",
                theme.error().add_modifier(Modifier::BOLD),
            )),
            Line::from(Span::styled(cause.to_string(), theme.error())),
            Line::from(""),
            Line::from(Span::styled(hint.to_string(), theme.dim())),
        ],
    };
    frame.render_widget(
        Paragraph::new(Text::from(lines))
            .wrap(Wrap { trim: true })
            .block(block.padding(ratatui::widgets::Padding::new(1, 1, 1, 0))),
        area,
    );
}

/// The placeholder for a remote list that has no rows, or `None` when rows exist to draw.
pub fn remote_placeholder<'a, T>(
    remote: &'a Remote<T>,
    shown: usize,
    total: usize,
    filter: &'a str,
    loading: &'a str,
    empty: (&'a str, &'a str),
    error_hint: &'a str,
) -> Option<Placeholder<'a>> {
    if shown > 0 {
        return None;
    }
    if remote.data.is_none() {
        return Some(match &remote.error {
            Some(e) => Placeholder::Error {
                cause: e,
                hint: error_hint,
            },
            None => Placeholder::Loading(loading),
        });
    }
    if total > 0 {
        return Some(Placeholder::NoMatch(filter));
    }
    Some(Placeholder::Empty {
        what: empty.0,
        hint: empty.1,
    })
}

/// A table with a header, the app's cursor for `id` and the selection highlighted when focused.
#[allow(clippy::too_many_arguments)]
pub fn table(
    frame: &mut Frame<'_>,
    area: Rect,
    block: Block<'_>,
    header: &[&str],
    rows: Vec<Row<'_>>,
    widths: &[Constraint],
    app: &App,
    id: TableId,
    focused: bool,
) {
    let theme = &app.theme;
    let cursor = app.view(id).cursor;
    let header = Row::new(
        header
            .iter()
            .map(|h| Span::styled(h.to_string(), theme.dim().add_modifier(Modifier::BOLD))),
    );
    let mut state = TableState::default()
        .with_offset(cursor.offset)
        .with_selected(Some(cursor.selected));
    let highlight = if focused {
        theme.selected()
    } else {
        Style::new().add_modifier(Modifier::BOLD)
    };
    let table = Table::new(rows, widths.to_vec())
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(highlight)
        .highlight_symbol(if focused { "▶" } else { " " })
        .highlight_spacing(ratatui::widgets::HighlightSpacing::Always);
    frame.render_stateful_widget(table, area, &mut state);
}

/// `key  value` lines for a details panel; long values wrap in the paragraph.
pub fn kv<'a>(key: &str, value: impl Into<String>, theme: &Theme) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{key:<12} "), theme.dim()),
        Span::raw(value.into()),
    ])
}
