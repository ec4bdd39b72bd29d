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

/// The rows of a table of `len` rows that fit in `area` (borders and header taken off), around the
/// cursor: panes build cells for these only, so a frame costs the same at 10 or 10,000 rows.
pub fn window(area: Rect, app: &App, id: TableId, len: usize) -> std::ops::Range<usize> {
    let height = (area.height.saturating_sub(3) as usize).max(1);
    let cursor = app.view(id).cursor;
    let mut start = cursor.offset;
    if cursor.selected < start {
        start = cursor.selected;
    } else if cursor.selected >= start + height {
        start = cursor.selected + 1 - height;
    }
    let start = start.min(len.saturating_sub(1));
    start..(start + height).min(len)
}

/// A table with a header and the rows in `window` (from `window()`), the app's cursor for `id`
/// highlighted when focused.
#[allow(clippy::too_many_arguments)]
pub fn table(
    frame: &mut Frame<'_>,
    area: Rect,
    block: Block<'_>,
    header: &[&str],
    rows: Vec<Row<'_>>,
    window: std::ops::Range<usize>,
    widths: &[Constraint],
    app: &App,
    id: TableId,
    focused: bool,
) {
    let theme = &crate::ui::theme::of(app);
    let cursor = app.view(id).cursor;
    let header = Row::new(
        header
            .iter()
            .map(|h| Span::styled(h.to_string(), theme.dim().add_modifier(Modifier::BOLD))),
    );
    let mut state = TableState::default().with_selected(
        window
            .contains(&cursor.selected)
            .then(|| cursor.selected - window.start),
    );
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

/// A table column for [`fitted_table`]: its header, the least width it is useful at, how much of
/// the spare width it takes (0: none), and when it gives way on a narrow screen (0: never; the
/// highest goes first).
pub struct Col {
    pub header: &'static str,
    pub min: u16,
    pub grow: u16,
    pub drop: u8,
}

impl Col {
    pub const fn new(header: &'static str, min: u16, grow: u16, drop: u8) -> Col {
        Col {
            header,
            min,
            grow,
            drop,
        }
    }
}

/// Which columns fit in a table of `width` (borders and highlight symbol included), and each
/// one's width: columns give way highest `drop` first until their least widths fit, then the
/// spare width is shared by `grow`.
pub fn fit_columns(cols: &[Col], width: u16) -> Vec<(usize, u16)> {
    // Borders, the highlight symbol, and one column of air before the right border.
    let inner = width.saturating_sub(4);
    let mut kept: Vec<usize> = (0..cols.len()).collect();
    let need = |kept: &[usize]| -> u16 {
        kept.iter().map(|&i| cols[i].min).sum::<u16>() + kept.len().saturating_sub(1) as u16
    };
    while need(&kept) > inner {
        let Some(pos) = kept
            .iter()
            .enumerate()
            .filter(|(_, i)| cols[**i].drop > 0)
            .max_by_key(|(_, i)| cols[**i].drop)
            .map(|(p, _)| p)
        else {
            break;
        };
        kept.remove(pos);
    }
    let spare = inner.saturating_sub(need(&kept));
    let total_grow: u16 = kept.iter().map(|&i| cols[i].grow).sum();
    let mut given = 0;
    let mut out: Vec<(usize, u16)> = kept
        .iter()
        .map(|&i| {
            let extra = if total_grow == 0 {
                0
            } else {
                (spare as u32 * cols[i].grow as u32 / total_grow as u32) as u16
            };
            given += extra;
            (i, cols[i].min + extra)
        })
        .collect();
    // What integer division left over goes to the first growing column.
    if let Some(first) = out.iter_mut().find(|(i, _)| cols[*i].grow > 0) {
        first.1 += spare.saturating_sub(given);
    }
    out
}

/// A table whose columns give way by priority on narrow screens (see [`fit_columns`]); `rows`
/// hold every column's cell, in the order of `cols`.
#[allow(clippy::too_many_arguments)]
pub fn fitted_table(
    frame: &mut Frame<'_>,
    area: Rect,
    block: Block<'_>,
    cols: &[Col],
    rows: Vec<Vec<ratatui::widgets::Cell<'_>>>,
    window: std::ops::Range<usize>,
    app: &App,
    id: TableId,
    focused: bool,
) {
    let fitted = fit_columns(cols, area.width);
    let header: Vec<&str> = fitted.iter().map(|(i, _)| cols[*i].header).collect();
    let widths: Vec<Constraint> = fitted.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    let rows: Vec<Row<'_>> = rows
        .into_iter()
        .map(|cells| {
            let mut cells: Vec<Option<ratatui::widgets::Cell<'_>>> =
                cells.into_iter().map(Some).collect();
            Row::new(
                fitted
                    .iter()
                    .filter_map(|(i, _)| cells.get_mut(*i).and_then(Option::take)),
            )
        })
        .collect();
    table(
        frame, area, block, &header, rows, window, &widths, app, id, focused,
    );
}

/// Width of the key column of details panels.
pub const KEY_WIDTH: usize = 13;

/// A `key  value` line for a details panel.
pub fn kv<'a>(key: &str, value: impl Into<String>, theme: &Theme) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{key:<w$}", w = KEY_WIDTH), theme.dim()),
        Span::raw(value.into()),
    ])
}

/// A `key  value` entry whose value wraps under itself (a hanging indent), for `width` columns.
pub fn kv_wrapped<'a>(
    key: &str,
    value: &str,
    style: Style,
    width: u16,
    theme: &Theme,
) -> Vec<Line<'a>> {
    let room = (width as usize).saturating_sub(KEY_WIDTH).max(10);
    wrap(value, room)
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let k = if i == 0 { key } else { "" };
            Line::from(vec![
                Span::styled(format!("{k:<w$}", w = KEY_WIDTH), theme.dim()),
                Span::styled(part, style),
            ])
        })
        .collect()
}

/// Greedy word wrap by characters; words longer than the width are split.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        loop {
            let used = line.chars().count();
            let need = word.chars().count() + usize::from(used > 0);
            if used + need <= width {
                if used > 0 {
                    line.push(' ');
                }
                line.push_str(&word);
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(head);
            if word.is_empty() {
                break;
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Cuts text to `width` characters, marking the cut with `…`.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else if width == 0 {
        String::new()
    } else {
        let mut s: String = text.chars().take(width - 1).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_fits() {
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("", 5), [""]);
        assert_eq!(fit("microsoft/BiomedCLIP", 10), "microsoft…");
        assert_eq!(fit("short", 10), "short");
    }

    #[test]
    fn columns_give_way_by_priority_and_share_the_rest() {
        let cols = [
            Col::new("STATUS", 11, 0, 0),
            Col::new("NAME", 20, 3, 0),
            Col::new("POOL", 9, 1, 4),
            Col::new("ENDPOINT", 22, 1, 6),
            Col::new("UPTIME", 6, 0, 5),
        ];
        // Wide: everything, and the widths fill the inner width exactly.
        let wide = fit_columns(&cols, 120);
        assert_eq!(wide.len(), 5);
        assert_eq!(wide.iter().map(|c| c.1).sum::<u16>() + 4, 116);
        // 80 columns: the endpoint goes first; the name keeps at least its length.
        let mid = fit_columns(&cols, 60);
        let kept: Vec<&str> = mid.iter().map(|(i, _)| cols[*i].header).collect();
        assert_eq!(kept, ["STATUS", "NAME", "POOL", "UPTIME"]);
        assert!(mid[1].1 >= 20);
        // Then the uptime, then the pool; never the name or the status.
        let narrow: Vec<&str> = fit_columns(&cols, 46)
            .iter()
            .map(|(i, _)| cols[*i].header)
            .collect();
        assert_eq!(narrow, ["STATUS", "NAME", "POOL"]);
        let tiny: Vec<&str> = fit_columns(&cols, 10)
            .iter()
            .map(|(i, _)| cols[*i].header)
            .collect();
        assert_eq!(tiny, ["STATUS", "NAME"]);
    }
}
