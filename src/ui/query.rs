//! Query: pick a running service, type inputs, read the results the way people read them.
//!
//! ```text
//! ┏ Services to query (1) ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
//! ┃  SERVICE          MODEL               ENDPOINT                                           ┃
//! ┗━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┛
//! ╭ Input · ENCODE · compare ─────────────╮╭ Result · 12 ms ───────────────────────────────────╮
//! │ chest pain in a child▏                 ││ [0] dim 384 · norm 1.000 · [0.039, 0.090, …]       │
//! │ fever and cough                        ││ cosine   [0]    [1]                                │
//! │ hint · history (this session only)     ││ [0]     1.000  0.412★                              │
//! ╰───────────────────────────────────────╯╰────────────────────────────────────────────────────╯
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Wrap};

use super::theme::Theme;
use super::widgets;
use crate::app::query::{self, QueryKind, QueryResult};
use crate::app::state::{App, TableId};
use crate::inference::clip::RESEARCH_USE;

/// (services, input, result)
pub fn areas(body: Rect, services: usize) -> (Rect, Rect, Rect) {
    let table_h = (services.max(1) as u16 + 3).min(7).min(body.height / 3);
    let [top, rest] =
        Layout::vertical([Constraint::Length(table_h), Constraint::Fill(1)]).areas(body);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(42), Constraint::Percentage(58)]).areas(rest);
    (top, left, right)
}

fn entity_colour(t: &Theme, i: usize) -> Color {
    [t.accent, t.ok, t.pending, t.suspended, t.fault, t.idle][i % 6]
}

pub fn render(frame: &mut Frame<'_>, body: Rect, app: &App) {
    let theme = &crate::ui::theme::of(app);
    let rows = app.visible_query_services();
    let (table_area, input_area, result_area) = areas(body, rows.len());
    let total = app.snapshot.data.as_ref().map_or(0, |s| {
        s.services
            .iter()
            .filter(|s| !s.is_job && s.status == crate::domain::ServiceStatus::Running)
            .count()
    });
    let view = app.view(TableId::QueryServices);
    let block = widgets::block(
        widgets::title("Services to query", rows.len(), total, &view.filter, theme),
        !app.query.editing,
        theme,
    );
    if let Some(p) = widgets::remote_placeholder(
        &app.snapshot,
        rows.len(),
        total,
        &view.filter,
        "Loading services…",
        (
            "No running model service to query.",
            "Import a model (Candidates, i); once its service is RUNNING it is listed here.",
        ),
        "r retries; `hugflake doctor` shows the platform's state.",
    ) {
        if app.query.version_target.is_none() {
            let [a, b] = Layout::vertical([Constraint::Fill(1), Constraint::Length(4)]).areas(body);
            widgets::placeholder(frame, a, block, p, theme);
            privacy(frame, b, app);
            return;
        }
        // A version is queried directly: no service needed.
        widgets::placeholder(frame, table_area, block, p, theme);
        input(frame, input_area, app);
        result(frame, result_area, app);
        return;
    }
    let window = widgets::window(table_area, app, TableId::QueryServices, rows.len());
    let table_rows: Vec<Vec<Cell<'_>>> = rows[window.clone()]
        .iter()
        .map(|s| {
            vec![
                Cell::from(s.qualified_name()),
                Cell::from(format!(
                    "{} {}",
                    s.model.as_deref().unwrap_or("-"),
                    s.model_version.as_deref().unwrap_or("")
                )),
                Cell::from(s.endpoint.clone().unwrap_or_else(|| "-".into())),
            ]
        })
        .collect();
    let name_w = rows[window.clone()]
        .iter()
        .map(|s| s.qualified_name().chars().count())
        .max()
        .unwrap_or(7)
        .clamp(7, 48) as u16;
    widgets::fitted_table(
        frame,
        table_area,
        block,
        &[
            widgets::Col::new("SERVICE", name_w, 2, 0),
            widgets::Col::new("MODEL", 12, 2, 1),
            widgets::Col::new("ENDPOINT", 22, 1, 2),
        ],
        table_rows,
        window,
        app,
        TableId::QueryServices,
        true,
    );
    input(frame, input_area, app);
    result(frame, result_area, app);
}

fn privacy(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let notes = vec![
        Line::from(Span::raw(
            "Nothing typed here is logged or stored: inputs may be clinical text (PHI).",
        )),
        Line::from(Span::styled(
            "Results of BiomedCLIP are for research use only, not for diagnosis.",
            crate::ui::theme::of(app).dim(),
        )),
    ];
    frame.render_widget(
        Paragraph::new(notes)
            .wrap(Wrap { trim: true })
            .block(widgets::block(
                " Privacy ",
                false,
                &crate::ui::theme::of(app),
            )),
        area,
    );
}

fn input(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &crate::ui::theme::of(app);
    let q = &app.query;
    let service = app.query_target();
    let kind = app.query_kind();
    let functions = service.as_ref().and_then(|s| q.functions.get(s));
    let method = kind.as_ref().map_or("…".to_string(), |(_, m)| m.clone());
    let mode = match kind.as_ref().map(|k| k.0) {
        Some(QueryKind::Embeddings) if q.search => " · search notes",
        Some(QueryKind::Embeddings) => " · compare",
        _ => "",
    };
    let title = match (&q.compare, &q.version_target) {
        (Some((a, b)), _) => format!(
            " Input · {a} vs {b}{} ",
            if q.search { " · search notes" } else { "" }
        ),
        (None, Some((m, v))) => format!(" Input · {m} {v} (version, direct) · {method}{mode} "),
        (None, None) => format!(" Input · {method}{mode} "),
    };
    let mut lines: Vec<Line<'_>> = Vec::new();
    match (kind, functions) {
        _ if q.compare.is_some() => lines.push(Line::from(Span::styled(
            if q.search {
                "a question: both services rank the demo notes against it"
            } else {
                "one text per line (an image: its path, then labels a, b, c): both services answer each"
            },
            t.dim(),
        ))),
        (Some((k, _)), _) => {
            lines.push(Line::from(Span::styled(k.hint(q.search), t.dim())));
        }
        (None, Some(Err(e))) => lines.push(Line::from(Span::styled(e.clone(), t.dim()))),
        (None, Some(Ok(_))) => lines.push(Line::from(Span::styled(
            "this service lists no method the Query pane knows",
            t.error(),
        ))),
        (None, None) => lines.push(Line::from(Span::styled("select a service", t.dim()))),
    }
    lines.push(Line::raw(""));
    let typed: Vec<&str> = q.input.split('\n').collect();
    for (i, l) in typed.iter().enumerate() {
        let mut spans = vec![Span::raw((*l).to_string())];
        if q.editing && i + 1 == typed.len() {
            spans.push(Span::styled("▏", t.accent()));
        }
        lines.push(Line::from(spans));
    }
    if q.input.is_empty() && !q.editing {
        let k = |a| app.keymap.short(a);
        lines.push(Line::from(Span::styled(
            format!(
                "{} to type, {} to send{}",
                k(crate::keys::action::Action::EditInput),
                k(crate::keys::action::Action::RunQuery),
                if matches!(app.query_kind(), Some((QueryKind::Embeddings, _))) {
                    format!(
                        ", {} compare/search",
                        k(crate::keys::action::Action::ToggleMode)
                    )
                } else {
                    String::new()
                }
            ),
            t.dim(),
        )));
    }
    if let Some(e) = &q.error {
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled(format!("✖ {e}"), t.error())));
    }
    if !q.history.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled(
            "this session's calls (kept in memory only)",
            t.dim(),
        )));
        for h in q.history.iter().rev().take(5) {
            lines.push(Line::from(Span::styled(
                format!(
                    "{} {} {} {} input(s) {}",
                    h.at.format("%H:%M:%S"),
                    if h.ok { "✔" } else { "✖" },
                    h.method,
                    h.inputs,
                    h.latency_ms
                        .map_or("failed".into(), |l| format!("{l:.0} ms"))
                ),
                t.dim(),
            )));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(Span::styled(
        "nothing typed here is logged or stored",
        t.dim(),
    )));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(widgets::block(title, q.editing, t)),
        area,
    );
}

fn result(frame: &mut Frame<'_>, area: Rect, app: &App) {
    if app.query.compare.is_some() {
        return super::compare::render(frame, area, app);
    }
    let t = &crate::ui::theme::of(app);
    let q = &app.query;
    let target = app.query_target();
    let Some(r) = q
        .result
        .as_ref()
        .filter(|r| target.as_ref().is_some_and(|t| *t == r.service))
    else {
        let text = if q.busy {
            "calling the service…"
        } else {
            "the result shows here"
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text, t.dim())).block(widgets::block(" Result ", false, t)),
            area,
        );
        return;
    };
    let title = format!(
        " Result · {:.0} ms{} ",
        r.latency_ms,
        if q.raw { " · raw JSON" } else { "" }
    );
    let block = widgets::block(title, false, t);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = inner.width as usize;
    if q.raw {
        let mut text = String::from("request\n");
        text.push_str(&truncate_json(&r.raw_request));
        text.push_str("\nresponse\n");
        text.push_str(&truncate_json(&r.raw_response));
        frame.render_widget(Paragraph::new(text), inner);
        return;
    }
    match r.kind {
        QueryKind::Embeddings if r.cache_searched.is_some() => {
            frame.render_widget(Paragraph::new(cache_lines(r, t)), inner)
        }
        QueryKind::Embeddings if !r.ranking.is_empty() => {
            frame.render_widget(Paragraph::new(search_lines(r, t, width)), inner)
        }
        QueryKind::Embeddings | QueryKind::Features => {
            frame.render_widget(Paragraph::new(vector_lines(r, t)), inner)
        }
        QueryKind::Entities => frame.render_widget(
            Paragraph::new(entity_lines(r, t)).wrap(Wrap { trim: false }),
            inner,
        ),
        QueryKind::Images => image_result(frame, inner, r, app),
    }
}

/// Long vectors shortened so the JSON fits on screen.
fn truncate_json(v: &serde_json::Value) -> String {
    fn shorten(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Array(a) if a.len() > 6 && a.iter().all(|x| x.is_number()) => {
                let mut head: Vec<serde_json::Value> = a.iter().take(4).cloned().collect();
                head.push(serde_json::json!(format!("… {} more", a.len() - 4)));
                serde_json::Value::Array(head)
            }
            serde_json::Value::Array(a) => {
                serde_json::Value::Array(a.iter().map(shorten).collect())
            }
            serde_json::Value::Object(o) => {
                serde_json::Value::Object(o.iter().map(|(k, v)| (k.clone(), shorten(v))).collect())
            }
            serde_json::Value::String(s) if s.len() > 80 => {
                serde_json::json!(format!(
                    "{}… ({} chars)",
                    s.chars().take(60).collect::<String>(),
                    s.len()
                ))
            }
            other => other.clone(),
        }
    }
    serde_json::to_string_pretty(&shorten(v)).unwrap_or_default()
}

fn vectors(r: &QueryResult) -> Vec<Vec<f32>> {
    r.outputs
        .iter()
        .map(|o| {
            let v = if o.get("output").is_some() {
                &o["output"]
            } else {
                &o["mean"]
            };
            crate::platform::call::embedding(v).unwrap_or_default()
        })
        .collect()
}

fn vector_lines<'a>(r: &QueryResult, t: &Theme) -> Vec<Line<'a>> {
    let vs = vectors(r);
    let mut lines = Vec::new();
    for (i, v) in vs.iter().enumerate() {
        let head: Vec<String> = v.iter().take(4).map(|x| format!("{x:.3}")).collect();
        lines.push(Line::from(vec![
            Span::styled(format!("[{i}] "), t.accent()),
            Span::raw(format!(
                "dim {} · norm {:.3} · [{}, …]",
                v.len(),
                query::norm(v),
                head.join(", ")
            )),
        ]));
        if let Some(text) = r.inputs.get(i) {
            lines.push(Line::from(Span::styled(
                format!("    {}", widgets::fit(text, 60)),
                t.dim(),
            )));
        }
    }
    if vs.len() > 1 {
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled(
            "cosine similarity (★ best match of each row)",
            t.accent().add_modifier(Modifier::BOLD),
        )));
        let mut header = vec![Span::raw("      ")];
        for j in 0..vs.len() {
            header.push(Span::styled(format!("{:>8}", format!("[{j}]")), t.dim()));
        }
        lines.push(Line::from(header));
        for (i, a) in vs.iter().enumerate() {
            let scores: Vec<f32> = vs.iter().map(|b| query::cosine(a, b)).collect();
            let best = scores
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .max_by(|x, y| x.1.total_cmp(y.1))
                .map(|(j, _)| j);
            let mut spans = vec![Span::styled(format!("{:<6}", format!("[{i}]")), t.dim())];
            for (j, s) in scores.iter().enumerate() {
                let mark = if Some(j) == best { "★" } else { " " };
                let style = if Some(j) == best {
                    t.accent().add_modifier(Modifier::BOLD)
                } else if i == j {
                    t.dim()
                } else {
                    Style::new()
                };
                spans.push(Span::styled(format!("{s:>7.3}{mark}"), style));
            }
            lines.push(Line::from(spans));
        }
    }
    lines
}

/// A search over the embedding cache: note ids and scores (the cache holds no note text).
fn cache_lines<'a>(r: &QueryResult, t: &Theme) -> Vec<Line<'a>> {
    let Some(c) = &r.cache_searched else {
        return Vec::new();
    };
    let mut lines = vec![
        Line::from(Span::styled(
            format!(
                "top notes of {} in the embedding cache ({} {})",
                c.notes, c.model, c.version
            ),
            t.accent().add_modifier(Modifier::BOLD),
        )),
        Line::from(Span::styled(
            "ids only; the cache keeps no text (batch search --input shows it)",
            t.dim(),
        )),
    ];
    for (rank, h) in r.cache_hits.iter().enumerate() {
        lines.push(Line::from(vec![
            Span::styled(format!("{:>2}. ", rank + 1), t.dim()),
            Span::styled(format!("{:.3} ", h.score), t.accent()),
            Span::raw(crate::domain::units::strip_control(&h.id)),
        ]));
    }
    lines
}

fn search_lines<'a>(r: &QueryResult, t: &Theme, width: usize) -> Vec<Line<'a>> {
    let notes = query::demo_notes();
    let mut lines = vec![Line::from(Span::styled(
        format!("top notes of {} (synthetic demo notes)", notes.len()),
        t.accent().add_modifier(Modifier::BOLD),
    ))];
    for (rank, (i, score)) in r.ranking.iter().take(8).enumerate() {
        let text = notes.get(*i).copied().unwrap_or("");
        let wrapped = widgets::wrap(text, width.saturating_sub(12).max(10));
        for (k, w) in wrapped.into_iter().take(2).enumerate() {
            if k == 0 {
                lines.push(Line::from(vec![
                    Span::styled(format!("{:>2}. ", rank + 1), t.dim()),
                    Span::styled(format!("{score:.3} "), t.accent()),
                    Span::raw(w),
                ]));
            } else {
                lines.push(Line::from(Span::raw(format!("           {w}"))));
            }
        }
    }
    lines
}

fn entity_lines<'a>(r: &QueryResult, t: &Theme) -> Vec<Line<'a>> {
    let mut types: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    for (i, out) in r.outputs.iter().enumerate() {
        let text = r.inputs.get(i).cloned().unwrap_or_default();
        let groups = query::group_entities(&out["outputs"]);
        for g in &groups {
            if !types.contains(&g.entity_group) {
                types.push(g.entity_group.clone());
            }
        }
        // The text with each entity span coloured by its type.
        let mut spans = vec![Span::styled(format!("[{i}] "), t.dim())];
        let mut pos = 0;
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let byte_of = |c: usize| chars.get(c).map_or(text.len(), |(b, _)| *b);
        for g in &groups {
            let (s, e) = (byte_of(g.start).max(pos), byte_of(g.end));
            if s >= e || e > text.len() {
                continue;
            }
            spans.push(Span::raw(text[pos..s].to_string()));
            let colour = entity_colour(
                t,
                types.iter().position(|x| x == &g.entity_group).unwrap_or(0),
            );
            spans.push(Span::styled(
                text[s..e].to_string(),
                Style::new().fg(Color::Black).bg(colour),
            ));
            spans.push(Span::styled(
                format!("⟨{}⟩", g.entity_group),
                Style::new().fg(colour),
            ));
            pos = e;
        }
        spans.push(Span::raw(text[pos.min(text.len())..].to_string()));
        lines.push(Line::from(spans));
        if groups.is_empty() {
            lines.push(Line::from(Span::styled("    no entities", t.dim())));
        }
        // The type column is as wide as its longest type (d4data's `Biological_structure`), capped.
        let width = groups
            .iter()
            .map(|g| g.entity_group.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(9, 24)
            + 1;
        for g in &groups {
            let colour = entity_colour(
                t,
                types.iter().position(|x| x == &g.entity_group).unwrap_or(0),
            );
            let word = &g.word;
            lines.push(Line::from(vec![
                Span::raw("    "),
                Span::styled(
                    format!("{:<width$}", g.entity_group),
                    Style::new().fg(colour),
                ),
                Span::raw(format!(
                    "{:.3}  [{}..{}]  {}",
                    g.score, g.start, g.end, word
                )),
            ]));
        }
        lines.push(Line::raw(""));
    }
    lines
}

/// (notice, picture, bars) inside the result block.
fn image_areas(area: Rect) -> (Rect, Rect, Rect) {
    let [notice, rest] = Layout::vertical([Constraint::Length(2), Constraint::Fill(1)]).areas(area);
    let pic_w = (rest.width / 2).min(34);
    let [pic, bars] =
        Layout::horizontal([Constraint::Length(pic_w), Constraint::Fill(1)]).areas(rest);
    (notice, pic, bars)
}

/// Where the picture goes on screen, when the Query pane shows an image result and nothing covers
/// it (for the graphics protocols, drawn after the frame).
pub fn picture_area(app: &App) -> Option<Rect> {
    use crate::app::state::{Overlay, Tab};
    if app.tab != Tab::Query || !matches!(app.overlay, Overlay::None) || app.query.raw {
        return None;
    }
    let r = app.query.result.as_ref()?;
    let shown = app.query_target().is_some_and(|t| t == r.service);
    if r.kind != QueryKind::Images || !shown {
        return None;
    }
    if app.size.width < super::MIN_WIDTH || app.size.height < super::MIN_HEIGHT {
        return None;
    }
    let body = super::regions(app.size).body;
    let (_, _, result) = areas(body, app.visible_query_services().len());
    let inner = widgets::block("", false, &crate::ui::theme::of(app)).inner(result);
    let (_, pic, _) = image_areas(inner);
    (pic.width > 0 && pic.height > 0).then_some(pic)
}

fn image_result(frame: &mut Frame<'_>, area: Rect, r: &QueryResult, app: &App) {
    let t = &crate::ui::theme::of(app);
    let (notice, pic, bars) = image_areas(area);
    frame.render_widget(
        Paragraph::new(Span::styled(
            RESEARCH_USE.to_string(),
            t.error().add_modifier(Modifier::BOLD),
        )),
        notice,
    );
    let protocol = app.picture != crate::app::picture::Protocol::HalfBlocks && r.png.is_some();
    if let Some((w, h, px)) = r.thumbnail.as_ref().filter(|_| !protocol) {
        frame.render_widget(
            Paragraph::new(half_blocks(*w, *h, px, pic.width, pic.height)),
            pic,
        );
    }
    let out = r.outputs.first().cloned().unwrap_or_default();
    let labels: Vec<&str> = out["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str())
        .collect();
    let scores: Vec<f64> = out["scores"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_f64())
        .collect();
    let mut lines = Vec::new();
    let bar_w = (bars.width as usize).saturating_sub(8).clamp(4, 40);
    for (l, s) in labels.iter().zip(&scores) {
        let filled = (s * bar_w as f64).round() as usize;
        lines.push(Line::from(Span::raw((*l).to_string())));
        lines.push(Line::from(vec![
            Span::styled("█".repeat(filled.min(bar_w)), t.accent()),
            Span::styled("░".repeat(bar_w - filled.min(bar_w)), t.dim()),
            Span::raw(format!(" {:>5.1}%", s * 100.0)),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), bars);
}

/// An RGB image as half-block characters: each cell shows two pixels (fg top, bg bottom).
fn half_blocks<'a>(w: u32, h: u32, px: &[u8], max_w: u16, max_h: u16) -> Vec<Line<'a>> {
    if w == 0 || h == 0 {
        return Vec::new();
    }
    let cols = (max_w as u32).min(w).max(1);
    let rows = ((max_h as u32) * 2).min(h * cols / w.max(1)).max(2);
    let pixel = |x: u32, y: u32| -> Color {
        let sx = (x * w / cols).min(w - 1);
        let sy = (y * h / rows).min(h - 1);
        let i = ((sy * w + sx) * 3) as usize;
        match px.get(i..i + 3) {
            Some(p) => Color::Rgb(p[0], p[1], p[2]),
            None => Color::Reset,
        }
    };
    (0..rows / 2)
        .map(|cy| {
            Line::from(
                (0..cols)
                    .map(|x| {
                        Span::styled(
                            "▀",
                            Style::new().fg(pixel(x, cy * 2)).bg(pixel(x, cy * 2 + 1)),
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .collect()
}
