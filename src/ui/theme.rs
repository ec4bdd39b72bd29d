//! Colours and symbols. Every state has a symbol as well as a colour, so the screen reads without
//! colour too; the colour-blind theme uses the Okabe-Ito palette.

use ratatui::style::{Color, Modifier, Style};

use crate::config::ThemeName;
use crate::domain::Health;

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: ThemeName,
    pub accent: Color,
    pub text: Color,
    pub dim: Color,
    pub ok: Color,
    pub pending: Color,
    pub fault: Color,
    pub suspended: Color,
    pub idle: Color,
    pub highlight_bg: Color,
}

/// The theme the app has chosen (`:theme`, `ui.theme`).
pub fn of(app: &crate::app::state::App) -> Theme {
    Theme::named(app.theme)
}

impl Theme {
    pub fn named(name: ThemeName) -> Theme {
        match name {
            ThemeName::Default => Theme {
                name,
                accent: Color::Cyan,
                text: Color::Reset,
                dim: Color::DarkGray,
                ok: Color::Green,
                pending: Color::Yellow,
                fault: Color::Red,
                suspended: Color::Magenta,
                idle: Color::Gray,
                highlight_bg: Color::Rgb(40, 52, 70),
            },
            ThemeName::Colorblind => Theme {
                name,
                accent: Color::Rgb(86, 180, 233),
                text: Color::Reset,
                dim: Color::Rgb(128, 128, 128),
                ok: Color::Rgb(0, 114, 178),
                pending: Color::Rgb(230, 159, 0),
                fault: Color::Rgb(213, 94, 0),
                suspended: Color::Rgb(204, 121, 167),
                idle: Color::Rgb(160, 160, 160),
                highlight_bg: Color::Rgb(50, 50, 50),
            },
        }
    }

    /// The symbol and style of a health value.
    pub fn health(&self, h: Health) -> (&'static str, Style) {
        match h {
            Health::Ok => ("●", Style::new().fg(self.ok)),
            Health::Pending => ("◐", Style::new().fg(self.pending)),
            Health::Fault => (
                "✖",
                Style::new().fg(self.fault).add_modifier(Modifier::BOLD),
            ),
            Health::Suspended => ("‖", Style::new().fg(self.suspended)),
            Health::Idle => ("○", Style::new().fg(self.idle)),
        }
    }

    pub fn dim(&self) -> Style {
        Style::new().fg(self.dim)
    }

    pub fn accent(&self) -> Style {
        Style::new().fg(self.accent)
    }

    pub fn error(&self) -> Style {
        Style::new().fg(self.fault)
    }

    pub fn selected(&self) -> Style {
        Style::new()
            .bg(self.highlight_bg)
            .add_modifier(Modifier::BOLD)
    }
}
