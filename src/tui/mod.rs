//! The terminal program: one event loop that turns terminal events into the app's actions, runs
//! the effects the app asks for through the workers, applies their messages and redraws when
//! something changed. It is the only place that joins `app` (state) and `ui` (drawing).

mod workers;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use color_eyre::eyre::{Result, WrapErr};
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    EventStream,
};
use futures::StreamExt;
use ratatui::DefaultTerminal;
use ratatui::layout::Rect;
use tokio::sync::mpsc;

use crate::app::search as state_search;
use crate::app::state::{App, Effect, Msg};
use crate::hub::api::HubClient;
use crate::hub::settings::HubSettings;
use crate::paths::ProcessEnv;
use crate::platform::Platform;
use crate::session::Context;
use workers::Workers;

/// Opens the TUI and restores the terminal on every way out, panics included.
pub async fn run(ctx: Context) -> Result<()> {
    let mouse = ctx.config.ui.mouse;
    let terminal = ratatui::init();
    // Bracketed paste: a paste arrives as one event, never as key presses.
    let _ = crossterm::execute!(std::io::stdout(), EnableBracketedPaste);
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture);
    }
    // ratatui::init's hook restores the screen; paste mode and mouse capture must end too.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::execute!(std::io::stdout(), DisableBracketedPaste);
        if mouse {
            let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
        }
        previous(info);
    }));
    let result = event_loop(terminal, &ctx).await;
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    }
    let _ = crossterm::execute!(std::io::stdout(), DisableBracketedPaste);
    ratatui::restore();
    result
}

async fn event_loop(mut terminal: DefaultTerminal, ctx: &Context) -> Result<()> {
    let size = terminal.size().wrap_err("cannot read the terminal size")?;
    let mut app = App::new(
        &ctx.config,
        Utc::now(),
        Rect::new(0, 0, size.width, size.height),
    );
    app.hf_cache = Some(ctx.paths.hf_cache.path.clone());
    if let Some(problem) = &ctx.log_problem {
        app.set_flash(format!("logging off: {problem}"), true);
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (platform_tx, mut platform_rx) = mpsc::unbounded_channel::<Arc<dyn Platform>>();
    let hub_settings = HubSettings::from_env(&ProcessEnv);
    app.hub = state_search::HubSearch::new(
        hub_settings
            .offline
            .then(|| "HF_HUB_OFFLINE is set".to_string()),
    );
    let mut workers = Workers {
        tx,
        platform: None,
        connecting: false,
        fetching: false,
        hub: HubClient::new(hub_settings),
        latest_search: Arc::default(),
        latest_details: Arc::default(),
        cache: ctx.paths.data_dir.path.join("embeddings.sqlite"),
    };
    app.read_only = ctx.read_only;
    app.picture = crate::app::picture::Protocol::detect(&crate::paths::ProcessEnv);
    let mut shown_picture: Option<(ratatui::layout::Rect, usize)> = None;
    let mut opener = ctx.opener();
    app.platform_kind = match opener.choice {
        crate::config::PlatformChoice::Local => crate::domain::PlatformKind::Local,
        crate::config::PlatformChoice::Snowflake => crate::domain::PlatformKind::Snowflake,
    };
    workers.connect(opener.clone(), platform_tx.clone());
    workers.load_candidates(ctx);
    let mut effects = app.start();

    let mut events = EventStream::new();
    let mut render =
        tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(ctx.config.ui.fps)));
    let mut refresh = tokio::time::interval(Duration::from_secs_f64(ctx.config.ui.refresh_secs));
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    for i in [&mut render, &mut refresh, &mut clock] {
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    }

    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => {
                    effects.extend(app.handle_event(&event));
                    // Everything already read is handled in this turn: after a large paste the
                    // next key (Ctrl-C included) must not wait for yet another key to arrive.
                    // Polled with this task's waker, so a pending poll still wakes the loop.
                    while !app.quit
                        && let std::task::Poll::Ready(Some(Ok(event))) =
                            futures::poll!(events.next())
                    {
                        effects.extend(app.handle_event(&event));
                    }
                }
                Some(Err(e)) => return Err(e).wrap_err("cannot read terminal events"),
                None => break,
            },
            Some(platform) = platform_rx.recv() => {
                workers.platform = Some(platform);
                workers.refresh();
            }
            Some(msg) = rx.recv() => {
                let mut next = Some(msg);
                // Drain everything pending, then draw the latest state once.
                while let Some(msg) = next {
                    match &msg {
                        Msg::Snapshot(_) => workers.fetching = false,
                        Msg::Link(_) => workers.connecting = false,
                        _ => {}
                    }
                    effects.extend(app.apply(msg));
                    next = rx.try_recv().ok();
                }
            }
            _ = refresh.tick() => {
                if workers.platform.is_some() {
                    workers.refresh();
                }
            }
            _ = clock.tick() => app.tick(Utc::now()),
            _ = render.tick() => {
                if app.dirty {
                    crate::ui::record(&mut app);
                    terminal.draw(|frame| crate::ui::draw(frame, &app)).wrap_err("cannot draw")?;
                    app.dirty = false;
                    show_picture(&app, &mut shown_picture);
                }
            }
        }
        for effect in std::mem::take(&mut effects) {
            match effect {
                Effect::Quit => return Ok(()),
                Effect::HubSearch(req) => workers.search(req),
                Effect::HubDetails { handle, pool } => workers.details(handle, pool),
                Effect::Download(handle) => workers.download(handle, ctx),
                Effect::Import(spec) => workers.import(spec),
                Effect::JobDetail(id) => workers.job_detail(id),
                Effect::Functions {
                    service,
                    model,
                    version,
                } => workers.functions(service, model, version),
                Effect::Query(request) => workers.query(request),
                Effect::Compare(request) => workers.compare(request),
                Effect::ServiceDetail(name) => workers.service_detail(name),
                Effect::PreviousLogs(name) => workers.previous_logs(name),
                Effect::SaveLogs { service, lines } => {
                    let path = std::path::PathBuf::from(format!(
                        "hugflake-{}-{}.log",
                        service.to_lowercase(),
                        Utc::now().format("%Y%m%d-%H%M%S")
                    ));
                    let text = lines.join("\n") + "\n";
                    let msg = match std::fs::write(&path, text) {
                        Ok(()) => Ok(format!("saved {} lines to {}", lines.len(), path.display())),
                        Err(e) => Err(format!("cannot write {}: {e}", path.display())),
                    };
                    effects.extend(app.apply(Msg::PlatformDone(msg)));
                }
                Effect::Clipboard(text) => {
                    use base64::Engine;
                    use std::io::Write;
                    let b64 = base64::engine::general_purpose::STANDARD.encode(text);
                    let mut out = std::io::stdout();
                    let _ = write!(out, "\x1b]52;c;{b64}\x07");
                    let _ = out.flush();
                }
                Effect::SwitchPlatform(kind) => {
                    opener.choice = match kind {
                        crate::domain::PlatformKind::Local => crate::config::PlatformChoice::Local,
                        crate::domain::PlatformKind::Snowflake => {
                            crate::config::PlatformChoice::Snowflake
                        }
                    };
                    workers.platform = None;
                    workers.connecting = false;
                    workers.fetching = false;
                    workers.connect(opener.clone(), platform_tx.clone());
                }
                Effect::Platform(op) => workers.platform_op(op),
                Effect::Refresh => {
                    if workers.platform.is_some() {
                        workers.refresh();
                    } else {
                        workers.connect(opener.clone(), platform_tx.clone());
                    }
                    workers.load_candidates(ctx);
                }
            }
        }
        if app.quit {
            break;
        }
    }
    Ok(())
}

/// Draws (or removes) the Query pane's picture with the terminal's graphics protocol, only when
/// what should be shown changed.
fn show_picture(app: &App, shown: &mut Option<(ratatui::layout::Rect, usize)>) {
    use crate::app::picture::Protocol;
    use crate::ui::picture;
    use std::io::Write;
    if app.picture == Protocol::HalfBlocks {
        return;
    }
    let want = crate::ui::query::picture_area(app).and_then(|area| {
        let png = app.query.result.as_ref()?.png.as_ref()?;
        Some((area, png.len(), png))
    });
    let key = want.as_ref().map(|(a, n, _)| (*a, *n));
    if key == *shown {
        return;
    }
    let mut out = std::io::stdout();
    let _ = write!(out, "{}", picture::clear(app.picture));
    if let Some((area, _, png)) = want {
        let _ = write!(out, "{}", picture::escapes(app.picture, png, area));
    }
    let _ = out.flush();
    *shown = key;
}
