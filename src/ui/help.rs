//! The help overlay: every key binding from the keymap, and the `:` commands.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::widgets;
use crate::app::command::COMMANDS;
use crate::app::state::App;
use crate::keys::action::Action;

/// All help lines (the overlay scrolls through them).
pub fn lines(app: &App) -> Vec<Line<'static>> {
    let t = &crate::ui::theme::of(app);
    let mut lines = vec![Line::from(Span::styled(
        "Keys (remap them in [keymap] of the config file)",
        t.accent().add_modifier(Modifier::BOLD),
    ))];
    for action in Action::ALL {
        lines.push(Line::from(vec![
            Span::styled(format!("  {:<22}", app.keymap.label(action)), t.accent()),
            Span::raw(action.describe()),
        ]));
    }
    lines.push(Line::from(
        "  mouse                 click a tab or row to select, wheel to scroll",
    ));
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "Commands (type : then a command; Tab completes)",
        t.accent().add_modifier(Modifier::BOLD),
    )));
    for (name, what) in COMMANDS {
        lines.push(Line::from(vec![
            Span::styled(format!("  :{name:<21}"), t.accent()),
            Span::raw(*what),
        ]));
    }
    lines
}

pub fn render(frame: &mut Frame<'_>, body: Rect, app: &App, scroll: u16) {
    let lines = lines(app);
    let w = 90.min(body.width.saturating_sub(2));
    let h = (lines.len() as u16 + 2).min(body.height);
    let area = Rect::new(
        body.x + (body.width.saturating_sub(w)) / 2,
        body.y + (body.height.saturating_sub(h)) / 2,
        w,
        h,
    );
    let max_scroll = (lines.len() as u16 + 2).saturating_sub(h);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((scroll.min(max_scroll), 0))
            .block(widgets::block(" Help ", true, &crate::ui::theme::of(app))),
        area,
    );
}
