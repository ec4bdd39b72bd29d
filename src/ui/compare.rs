//! Query's `:compare A B`: both services' answers to the same input in two columns, each with its
//! latency, and what differs.
//!
//! ```text
//! ╭ Compare · A 12 ms · B 15 ms ───────────────────────────────────────────╮
//! │A MINILM_SVC                        │B MINILM_INT8_SVC                   │
//! │0 fever and cough   384 dims        │0 fever and cough   384 dims        │
//! │   cosine A·B 0.9994                                                    │
//! ╰────────────────────────────────────────────────────────────────────────╯
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::app::state::App;
use crate::platform::compare::{Comparison, InputDiff};
use crate::ui::theme::Theme;
use crate::ui::widgets;

pub fn render(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &crate::ui::theme::of(app);
    let q = &app.query;
    let Some((a, b)) = &q.compare else {
        return;
    };
    let Some(c) = q.comparison.as_ref() else {
        let text = if q.busy {
            format!("calling {a} and {b}…")
        } else {
            format!(
                "type a text and send it: it goes to {a} and {b}, answers side by side (:compare none: one service)"
            )
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text, t.dim()))
                .wrap(Wrap { trim: true })
                .block(widgets::block(" Compare ", false, t)),
            area,
        );
        return;
    };
    let block = widgets::block(
        format!(
            " Compare · A {:.0} ms · B {:.0} ms ",
            c.a.latency_ms, c.b.latency_ms
        ),
        false,
        t,
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .spacing(2)
            .areas(inner);
    let (la, lb) = columns(c, t, left.width as usize);
    frame.render_widget(Paragraph::new(la), left);
    frame.render_widget(Paragraph::new(lb), right);
}

/// Each side's lines: its service, then per input what it answered, with what only it found
/// marked; search mode: its top notes with the rank changes.
fn columns<'a>(c: &'a Comparison, t: &Theme, width: usize) -> (Vec<Line<'a>>, Vec<Line<'a>>) {
    let head = |side: &str, name: &str| {
        Line::from(vec![
            Span::styled(format!("{side} "), t.accent()),
            Span::raw(name.to_string()),
        ])
    };
    let mut a = vec![head("A", &c.a.service)];
    let mut b = vec![head("B", &c.b.service)];
    if let Some(s) = &c.search {
        let notes = crate::app::query::demo_notes();
        let note = |i: usize| {
            short(
                notes.get(i).copied().unwrap_or("?"),
                width.saturating_sub(15),
            )
        };
        if let Some(InputDiff::Embeddings { cosine, .. }) = c.inputs.first() {
            let says = cosine.map_or("sizes differ".into(), |x| format!("cosine A·B {x:.4}"));
            a.push(Line::from(Span::styled(says.clone(), t.dim())));
            b.push(Line::from(Span::styled(says, t.dim())));
        }
        for (rank, (n, score)) in s.a.iter().enumerate() {
            let change = s.change(rank, *n);
            a.push(Line::from(vec![
                Span::raw(format!("{}. {score:.3} ", rank + 1)),
                Span::styled(format!("{change:>4} "), moved(&change, t)),
                Span::raw(note(*n)),
            ]));
        }
        for (rank, (n, score)) in s.b.iter().enumerate() {
            let new = !s.a.iter().any(|(x, _)| x == n);
            b.push(Line::from(vec![
                Span::raw(format!("{}. {score:.3} ", rank + 1)),
                Span::styled(
                    format!("{:>4} ", if new { "new" } else { "" }),
                    if new { t.accent() } else { t.dim() },
                ),
                Span::raw(note(*n)),
            ]));
        }
        return (a, b);
    }
    for (i, d) in c.inputs.iter().enumerate() {
        match d {
            InputDiff::Embeddings { cosine, dims } => {
                a.push(Line::raw(format!("{i}: {} dims", dims.0)));
                b.push(Line::raw(format!("{i}: {} dims", dims.1)));
                let (text, style) = match cosine {
                    Some(x) => (
                        format!("   cosine A·B {x:.4}"),
                        if *x >= 0.99 { t.dim() } else { t.error() },
                    ),
                    None => ("   sizes differ: no cosine".into(), t.dim()),
                };
                a.push(Line::from(Span::styled(text.clone(), style)));
                b.push(Line::from(Span::styled(text, style)));
            }
            InputDiff::Features { cosine } => {
                let text = format!(
                    "{i}: cosine A·B of the mean vectors {}",
                    cosine.map_or("-".into(), |x| format!("{x:.4}"))
                );
                a.push(Line::raw(text.clone()));
                b.push(Line::raw(text));
            }
            InputDiff::Entities {
                both,
                only_a,
                only_b,
            } => {
                a.push(Line::raw(format!("{i}:")));
                b.push(Line::raw(format!("{i}:")));
                for (col, own) in [(&mut a, only_a), (&mut b, only_b)] {
                    for w in both {
                        col.push(Line::raw(format!("   {w}")));
                    }
                    for w in own {
                        col.push(Line::from(Span::styled(format!(" ≠ {w}"), t.accent())));
                    }
                    if both.is_empty() && own.is_empty() {
                        col.push(Line::from(Span::styled("   no entities", t.dim())));
                    }
                }
            }
            InputDiff::Images { a: la, b: lb } => {
                let bar_w = width.saturating_sub(30).clamp(4, 30);
                for (col, labels) in [(&mut a, la), (&mut b, lb)] {
                    for (label, score) in labels {
                        let filled = ((score * bar_w as f64).round() as usize).min(bar_w);
                        col.push(Line::from(vec![
                            Span::raw(format!("{:<16} ", short(label, 16))),
                            Span::styled("█".repeat(filled), t.accent()),
                            Span::styled("░".repeat(bar_w - filled), t.dim()),
                            Span::raw(format!(" {:>5.1}%", score * 100.0)),
                        ]));
                    }
                }
            }
        }
    }
    (a, b)
}

fn moved(change: &str, t: &Theme) -> Style {
    match change {
        "=" => t.dim(),
        "out" => t.error(),
        _ => t.accent(),
    }
}

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}
