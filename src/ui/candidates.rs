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
use ratatui::widgets::{Cell, Paragraph};

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

pub fn render(frame: &mut Frame<'_>, body: Rect, app: &App) {
    let (table_area, details_area) = split(body);
    let theme = &crate::ui::theme::of(app);
    let rows = app.visible_candidates();
    let total = app.candidates.data.as_ref().map_or(0, Vec::len);
    // Hub hits that are also local rows are shown once, so they count once.
    let hub_only = app
        .hub
        .results
        .iter()
        .filter(|h| {
            !app.candidates
                .data
                .iter()
                .flatten()
                .any(|c| c.handle == h.handle)
        })
        .count();
    let view = app.view(TableId::Candidates);
    let hub_style = if app.hub.error.is_some() {
        theme.error()
    } else {
        theme.dim()
    };
    let block = widgets::block(
        widgets::title(
            "Candidates",
            rows.len(),
            total + hub_only,
            &view.filter,
            theme,
        ),
        true,
        theme,
    )
    .title_bottom(Line::from(vec![
        Span::styled(format!(" {} ", app.hub.describe()), hub_style),
        Span::styled(cache_footer(app).unwrap_or_default(), theme.dim()),
    ]));
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
    // The handle is kept whole (up to 40 characters); on a narrow screen the source and the size
    // give way first (the details panel shows both), then the task is cut.
    let window = widgets::window(table_area, app, TableId::Candidates, rows.len());
    let handle_w = rows[window.clone()]
        .iter()
        .map(|c| c.handle.chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 40);
    let cols = [
        widgets::Col::new("HANDLE", handle_w as u16, 2, 0),
        widgets::Col::new("TASK", 19, 1, 2),
        widgets::Col::new("SIZE", 8, 0, 3),
        widgets::Col::new("SOURCE", 9, 0, 4),
        widgets::Col::new("SNOWFLAKE", 9, 0, 1),
    ];
    let task_w = widgets::fit_columns(&cols, table_area.width)
        .iter()
        .find(|(i, _)| *i == 1)
        .map_or(19, |(_, w)| *w as usize);
    let table_rows: Vec<Vec<Cell<'_>>> = rows[window.clone()]
        .iter()
        .map(|c| {
            let (sf, sf_style) = match c.snowflake.supported {
                Some(true) => ("✔ yes", Style::new().fg(theme.ok)),
                Some(false) => ("✖ no", Style::new().fg(theme.fault)),
                None => ("? unknown", theme.dim()),
            };
            vec![
                Cell::from(widgets::fit(&c.handle, handle_w.max(40))),
                Cell::from(widgets::fit(c.task.as_deref().unwrap_or("?"), task_w)),
                Cell::from(
                    app.details
                        .get(&c.handle)
                        .and_then(|r| r.data.as_ref())
                        .filter(|d| d.weight_bytes > 0)
                        .map_or_else(|| c.size_label(), |d| units::bytes(d.weight_bytes)),
                ),
                Cell::from(Span::styled(c.source.short_label(), theme.dim())),
                Cell::from(Span::styled(sf, sf_style)),
            ]
        })
        .collect();
    widgets::fitted_table(
        frame,
        table_area,
        block,
        &cols,
        table_rows,
        window,
        app,
        TableId::Candidates,
        true,
    );
    let selected = rows.get(view.cursor.selected).copied();
    render_details(frame, details_area, app, selected);
}

fn render_details(frame: &mut Frame<'_>, area: Rect, app: &App, c: Option<&Candidate>) {
    let theme = &crate::ui::theme::of(app);
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
    let hub = app.details.get(&c.handle);
    let d = hub.and_then(|r| r.data.as_ref());
    let width = area.width.saturating_sub(2);
    let plain = Style::new();
    let mut lines = vec![Line::from(Span::styled(
        c.handle.clone(),
        theme.accent().add_modifier(Modifier::BOLD),
    ))];
    let add = |lines: &mut Vec<Line<'_>>, key: &str, value: &str, style: Style| {
        lines.extend(kv_wrapped(key, value, style, width, theme));
    };
    // The Hub's facts win over the catalog's, which win over "unknown".
    let pick = |hub: Option<&Option<String>>, local: &Option<String>| {
        hub.and_then(|h| h.clone())
            .or_else(|| local.clone())
            .unwrap_or_else(|| "unknown".into())
    };
    add(
        &mut lines,
        "task",
        &pick(d.map(|d| &d.pipeline_tag), &c.task),
        plain,
    );
    add(
        &mut lines,
        "library",
        &pick(d.map(|d| &d.library), &c.library),
        plain,
    );
    add(
        &mut lines,
        "licence",
        &pick(d.map(|d| &d.license), &c.license),
        plain,
    );
    if let Some(d) = d {
        let access = if d.gated {
            "gated: accept the licence on the model page, then set HF_TOKEN"
        } else if d.private {
            "private"
        } else {
            "public"
        };
        add(&mut lines, "access", access, plain);
        add(
            &mut lines,
            "popularity",
            &format!(
                "{} downloads, {} likes{}",
                d.downloads.map_or("?".into(), units::count),
                d.likes.map_or("?".into(), |l| l.to_string()),
                d.last_modified
                    .as_deref()
                    .map(|m| format!(", modified {}", &m[..m.len().min(10)]))
                    .unwrap_or_default()
            ),
            plain,
        );
    }
    let (params, estimated) = match d {
        Some(d) if d.parameters.is_some() => (d.parameters, d.parameters_estimated),
        _ => (c.parameters, c.parameters_estimated),
    };
    let params = params.map_or("unknown".into(), |p| {
        if estimated {
            format!("~{} (estimated: no safetensors metadata)", units::count(p))
        } else {
            units::count(p)
        }
    });
    add(&mut lines, "parameters", &params, plain);
    let weights = match d {
        Some(d) => format!(
            "{} ({} in {} files)",
            units::bytes(d.weight_bytes),
            units::bytes(d.total_bytes),
            d.files.len()
        ),
        None => match &c.weight_file {
            Some(f) => format!("{} ({f})", c.size_label()),
            None => c.size_label(),
        },
    };
    add(&mut lines, "weights", &weights, plain);
    if let Some(d) = d {
        let mut files: Vec<_> = d.files.iter().collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.size));
        for (i, f) in files.iter().take(5).enumerate() {
            let key = if i == 0 { "files" } else { "" };
            add(
                &mut lines,
                key,
                &format!("{:>9}  {}", units::bytes(f.size), f.path),
                theme.dim(),
            );
        }
        if files.len() > 5 {
            add(
                &mut lines,
                "",
                &format!("… and {} more", files.len() - 5),
                theme.dim(),
            );
        }
    }
    if d.is_some_and(|d| d.custom_code) {
        add(
            &mut lines,
            "custom code",
            "yes: needs trust_remote_code",
            Style::new().fg(theme.pending),
        );
    }
    add(&mut lines, "source", c.source.label(), plain);
    if let Some(name) = app.registered_as(&c.handle) {
        add(
            &mut lines,
            "registry",
            &format!("● imported as {name}"),
            Style::new().fg(theme.ok),
        );
    }
    if let Some(p) = &c.purpose {
        add(&mut lines, "for", p, plain);
    }
    let verdict = d.map_or(&c.snowflake, |d| &d.snowflake);
    let (sf_symbol, sf_style) = match verdict.supported {
        Some(true) => ("✔", Style::new().fg(theme.ok)),
        Some(false) => ("✖", Style::new().fg(theme.fault)),
        None => ("?", theme.dim()),
    };
    add(
        &mut lines,
        "Snowflake",
        &format!("{sf_symbol} {}", verdict.summary()),
        sf_style,
    );
    add(&mut lines, "", &verdict.reason, theme.dim());
    if let Some(a) = app.alternative_for(c) {
        add(
            &mut lines,
            "instead",
            &format!("{} for {}: i, then ctrl-o", a.handle, a.purpose),
            Style::new().fg(theme.pending),
        );
    }
    // Details fetched before the pools were known have no fit yet: the weights and the pool say it.
    let fit = d.and_then(|d| app.fit_of(d));
    if let Some(fit) = &fit {
        let style = Style::new().fg(if fit.fits { theme.ok } else { theme.fault });
        let symbol = if fit.fits { "✔" } else { "✖" };
        add(
            &mut lines,
            "local",
            &format!("{symbol} {}", fit.summary()),
            style,
        );
    }
    for r in &c.requires {
        add(&mut lines, "needs", r, plain);
    }
    if let Some(dl) = app.downloads.get(&c.handle) {
        let (text, style) = match &dl.finished {
            None => (
                format!(
                    "◐ {} of {} ({}/{} files), {}/s, ETA {}",
                    units::bytes(dl.done),
                    units::bytes(dl.total),
                    dl.files_done,
                    dl.files,
                    units::bytes(dl.rate as u64),
                    dl.eta_secs
                        .map_or("-".into(), |s| units::duration(s as i64))
                ),
                Style::new().fg(theme.pending),
            ),
            Some(Ok(path)) => (format!("✔ done: {path}"), Style::new().fg(theme.ok)),
            Some(Err(e)) => (format!("✖ {e}"), theme.error()),
        };
        add(&mut lines, "download", &text, style);
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
            add(&mut lines, "cache", &summary, plain);
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
                add(&mut lines, "", &text, theme.dim());
            }
        }
    }
    for note in &c.notes {
        add(&mut lines, "note", note, Style::new().fg(theme.pending));
    }
    match hub {
        Some(r) if r.loading && r.data.is_none() => {
            add(
                &mut lines,
                "Hub",
                "◐ loading details…",
                Style::new().fg(theme.pending),
            );
        }
        Some(r) => {
            if let Some(e) = &r.error {
                add(&mut lines, "Hub", &format!("✖ {e}"), theme.error());
            }
        }
        None if !app.hub.online() => add(
            &mut lines,
            "Hub",
            "offline: details from the catalog and cache only",
            theme.dim(),
        ),
        None => {}
    }
    if let Some(card) = d.and_then(|d| d.card.as_deref()) {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            "model card",
            theme.dim().add_modifier(Modifier::BOLD),
        )));
        for l in card.lines().filter(|l| !l.trim().is_empty()).take(40) {
            for part in widgets::wrap(l, width as usize) {
                lines.push(Line::from(Span::raw(part)));
            }
        }
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// `· cache 1.2 GB, prune frees ~300 MB ` once the cache was read (nothing when it is empty).
fn cache_footer(app: &App) -> Option<String> {
    let rows = app.candidates.data.as_ref()?;
    let total: u64 = rows
        .iter()
        .filter_map(|c| c.cache.as_ref())
        .map(|r| r.size_on_disk)
        .sum();
    if total == 0 {
        return None;
    }
    // Registered models' repos are left out: their revisions in use are never pruned.
    let prunable: u64 = app
        .cache_prunable
        .iter()
        .flatten()
        .filter(|(repo, _)| app.registered_as(repo).is_none())
        .map(|(_, b)| b)
        .sum();
    Some(if prunable > 0 {
        format!(
            "· cache {}, prune frees ~{} ",
            units::bytes(total),
            units::bytes(prunable)
        )
    } else {
        format!("· cache {} ", units::bytes(total))
    })
}
