//! Popups over the panes: the import form (fields, plan, verdicts) and the confirmation that comes
//! before any change to the platform.
//!
//! ```text
//! ╭ Import sentence-transformers/all-MiniLM-L6-v2 ───────────────╮
//! │ handle         sentence-transformers/all-MiniLM-L6-v2        │
//! │ task           sentence-similarity                           │
//! │ model        ▸ ALL_MINILM_L6_V2▏                              │
//! │ ...                                                          │
//! │ plan: 1. resolve ...                                         │
//! │ ✔ fits LOCAL_CPU: needs ~0.4 GiB of 17.6 GiB                  │
//! ╰──────────────────────────────────────────────────────────────╯
//! ```

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::widgets;
use crate::app::import_form::ImportForm;
use crate::app::state::App;
use crate::keys::action::Action;

fn centered(body: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(body.width);
    let h = height.min(body.height);
    Rect::new(
        body.x + (body.width - w) / 2,
        body.y + (body.height - h) / 2,
        w,
        h,
    )
}

pub fn import_form(frame: &mut Frame<'_>, body: Rect, app: &App, form: &ImportForm) {
    let t = &crate::ui::theme::of(app);
    let mut lines: Vec<Line<'_>> = Vec::new();
    // What works instead goes first, where a form too tall for the screen still shows it.
    if let Some(a) = &form.alternative {
        lines.push(Line::from(vec![
            Span::styled(" ➜ ", t.accent()),
            Span::raw(a.sentence()),
            Span::styled(" · ctrl-o switches to it", t.accent()),
        ]));
        lines.push(Line::raw(""));
    }
    for (i, f) in form.fields.iter().enumerate() {
        let focused = i == form.focus;
        let marker = if focused { "▸ " } else { "  " };
        let mut spans = vec![
            Span::styled(
                format!("{marker}{:<14}", f.label),
                if focused { t.accent() } else { t.dim() },
            ),
            Span::styled(
                f.value.clone(),
                if focused {
                    t.selected()
                } else {
                    ratatui::style::Style::new()
                },
            ),
        ];
        if focused {
            spans.push(Span::styled("▏", t.accent()));
        }
        if !f.hint.is_empty() && (focused || f.value.is_empty()) {
            spans.push(Span::styled(format!("  {}", f.hint), t.dim()));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(Span::styled(
        "plan",
        t.accent().add_modifier(Modifier::BOLD),
    )));
    for (i, step) in form.plan().iter().enumerate() {
        lines.push(Line::from(vec![
            Span::styled(format!(" {}. ", i + 1), t.dim()),
            Span::raw(step.clone()),
        ]));
    }
    if !form.notes.is_empty() {
        lines.push(Line::raw(""));
        for (ok, note) in &form.notes {
            let (sym, style) = if *ok {
                ("✔", t.accent())
            } else {
                ("✖", t.error())
            };
            lines.push(Line::from(vec![
                Span::styled(format!(" {sym} "), style),
                Span::raw(note.clone()),
            ]));
        }
    }
    if let Some(e) = &form.error {
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled(format!(" ✖ {e}"), t.error())));
    }
    let title = format!(
        " Import {} ",
        form.fields.first().map_or("", |f| f.value.as_str())
    );
    let sql: Option<Vec<Line<'_>>> = form.snowflake_plan().map(|plan| match plan {
        Ok(text) => text
            .into_iter()
            .map(|l| {
                if l.starts_with("  ") {
                    Line::from(Span::raw(l))
                } else {
                    Line::from(Span::styled(l, t.accent()))
                }
            })
            .collect(),
        Err(e) => vec![Line::from(Span::styled(format!("✖ {e}"), t.error()))],
    });
    let height = (lines.len().max(sql.as_ref().map_or(0, |s| s.len() + 1))) as u16 + 4;
    let width = if sql.is_some() { 136 } else { 96 };
    let area = centered(body, width, height);
    frame.render_widget(Clear, area);
    let block = widgets::block(title, true, t);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    match sql {
        None => frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner),
        Some(sql) => {
            let [left, right] = ratatui::layout::Layout::horizontal([
                ratatui::layout::Constraint::Percentage(52),
                ratatui::layout::Constraint::Percentage(48),
            ])
            .areas(inner);
            frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), left);
            let mut with_title = vec![Line::from(Span::styled(
                "what will run on Snowflake (autocapture off)",
                t.accent().add_modifier(Modifier::BOLD),
            ))];
            with_title.extend(sql);
            frame.render_widget(Paragraph::new(with_title), right);
        }
    }
}

pub fn confirm(frame: &mut Frame<'_>, body: Rect, app: &App, message: &str) {
    let t = &crate::ui::theme::of(app);
    // The keys as bound: the question answers through the keymap.
    let yes = app.keymap.label(Action::Confirm);
    let mut no = app.keymap.keys(Action::Deny);
    no.extend(app.keymap.keys(Action::Back));
    let no = no
        .iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join("/");
    let lines = vec![
        Line::raw(""),
        Line::from(Span::raw(format!(" {message}?"))),
        Line::raw(""),
        Line::from(vec![
            Span::styled(format!(" {yes}"), t.accent().add_modifier(Modifier::BOLD)),
            Span::styled(" do it   ", t.dim()),
            Span::styled(no, t.accent().add_modifier(Modifier::BOLD)),
            Span::styled(" leave it", t.dim()),
        ]),
    ];
    let width = (message.chars().count() as u16 + 6).clamp(40, 100);
    let area = centered(body, width, 8);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(widgets::block(" Confirm ", true, t)),
        area,
    );
}
