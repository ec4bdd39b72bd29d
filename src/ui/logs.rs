//! A service's log, full screen: timestamps, follow (new lines keep the view at the bottom until
//! you scroll up), wrap, a case-insensitive regex filter with the matches highlighted, save.
//!
//! ```text
//! ┏ Log · MINI_SVC · 214 lines · /fail/ · following ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
//! ┃ 12:00:01.120 0/model-inference model loaded in 177 ms                                ┃
//! ┃ 12:00:05.310 0/supervisor instance 0 exited with code 137: restarting in 2 s         ┃
//! ┗━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┛
//! ```

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::widgets;
use crate::app::state::{App, LogView};

pub fn render(frame: &mut Frame<'_>, body: Rect, app: &App, view: &LogView) {
    let t = &crate::ui::theme::of(app);
    let source = app.log_source(view);
    let re = regex::RegexBuilder::new(&view.filter)
        .case_insensitive(true)
        .build();
    let matches = source.as_ref().map(|s| app.log_matches(view, s));
    let shown = matches.as_ref().map_or(0, |m| m.len());
    let height = body.height.saturating_sub(2) as usize;
    let end = shown.saturating_sub(view.scroll.min(shown));
    let start = end.saturating_sub(height);
    let what = if view.job {
        "Job log"
    } else if view.previous {
        "Previous log (before the last restart)"
    } else {
        "Log"
    };
    let mut title = format!(" {what} · {} · {} lines", view.service, shown);
    if !view.filter.is_empty() {
        title.push_str(&format!(" · /{}/", view.filter));
    }
    if let Some(secs) = view.window_secs {
        title.push_str(&format!(
            " · last {}",
            crate::app::state::window_label(secs)
        ));
    }
    title.push_str(if view.previous {
        " "
    } else if view.scroll == 0 {
        " · following "
    } else {
        " · scrolled "
    });
    let mut text: Vec<Line<'_>> = match (&source, &matches) {
        (Some(src), Some(m)) => (start..end)
            .map(|k| {
                let l = src.get(m.index(k));
                let mut spans = vec![
                    Span::styled(format!("{} ", l.at.format("%H:%M:%S%.3f")), t.dim()),
                    Span::styled(format!("{}/{} ", l.instance_id, l.container), t.accent()),
                ];
                spans.extend(highlight(
                    l.text,
                    re.as_ref().ok().filter(|_| !view.filter.is_empty()),
                    t,
                ));
                Line::from(spans)
            })
            .collect(),
        _ => Vec::new(),
    };
    if let Some(e) = app.previous_log_error(view) {
        text.push(Line::from(Span::styled(e.to_string(), t.error())));
    } else if source.is_none() {
        text.push(Line::from(Span::styled("loading the log…", t.dim())));
    } else if shown == 0 {
        text.push(Line::from(Span::styled(
            if view.filter.is_empty() {
                "no log lines yet"
            } else {
                "no line matches the filter (esc in the filter clears it)"
            },
            t.dim(),
        )));
    }
    if let Err(e) = &re {
        text.push(Line::from(Span::styled(
            format!("✖ not a regular expression: {e}"),
            t.error(),
        )));
    }
    frame.render_widget(Clear, body);
    let mut p = Paragraph::new(text).block(widgets::block(title, true, t));
    if view.wrap {
        p = p.wrap(Wrap { trim: false });
    }
    frame.render_widget(p, body);
}

/// The line with every match of the filter highlighted.
fn highlight<'a>(line: &str, re: Option<&regex::Regex>, t: &super::theme::Theme) -> Vec<Span<'a>> {
    let Some(re) = re else {
        return vec![Span::raw(line.to_string())];
    };
    let mut spans = Vec::new();
    let mut pos = 0;
    for m in re.find_iter(line) {
        if m.start() > pos {
            spans.push(Span::raw(line[pos..m.start()].to_string()));
        }
        spans.push(Span::styled(
            m.as_str().to_string(),
            Style::new()
                .bg(t.pending)
                .fg(ratatui::style::Color::Black)
                .add_modifier(Modifier::BOLD),
        ));
        pos = m.end();
    }
    spans.push(Span::raw(line[pos..].to_string()));
    spans
}
