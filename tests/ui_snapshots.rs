//! Every pane in its loading, empty, data and error states, the overlays, and the small-terminal
//! message, drawn on a fixed-size TestBackend and compared with reviewed snapshots.

mod support;

use hugflake::app::action::Action;
use hugflake::app::state::{Link, Msg, Tab};
use hugflake::domain::{JobState, PoolState, ServiceStatus, Stage};
use insta::assert_snapshot;
use support::*;

fn health_data() -> hugflake::platform::Snapshot {
    let mut failed = service("BIOBERT_SVC", ServiceStatus::Failed, 0);
    failed.message = Some("instance exited with code 137 (out of memory)".into());
    failed.model = Some("BIOBERT_V1_1".into());
    let mut pending = service("CLIP_SVC", ServiceStatus::Pending, 0);
    pending.model = Some("BIOMEDCLIP".into());
    snapshot(
        vec![
            pool("LOCAL_CPU", PoolState::Active),
            pool("BIG_POOL", PoolState::Suspended),
        ],
        vec![
            service("ALL_MINILM_L6_V2_SVC", ServiceStatus::Running, 1),
            failed,
            pending,
        ],
        vec![],
    )
}

#[test]
fn candidates_loading() {
    let mut app = app(120, 24);
    app.tab = Tab::Candidates;
    assert_snapshot!(render(&app));
}

#[test]
fn candidates_data() {
    let mut app = app(140, 32);
    catalog(&mut app);
    assert_snapshot!(render(&app));
}

#[test]
fn candidates_data_narrow_and_biomedclip_selected() {
    let mut app = app(90, 40);
    catalog(&mut app);
    app.update(Action::Bottom);
    assert_snapshot!(render(&app));
}

#[test]
fn candidates_error() {
    let mut app = app(120, 20);
    app.apply(Msg::Candidates(Err(
        "cannot read the Hugging Face cache at /data/hf: Permission denied (os error 13)".into(),
    )));
    assert_snapshot!(render(&app));
}

#[test]
fn candidates_filter_without_match() {
    let mut app = app(120, 20);
    catalog(&mut app);
    app.update(Action::Filter);
    for c in "zzz".chars() {
        app.handle_key(&crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::Char(c),
        ));
    }
    assert_snapshot!(render(&app));
}

#[test]
fn health_connecting() {
    let mut app = app(120, 20);
    app.tab = Tab::Health;
    assert_snapshot!(render(&app));
}

#[test]
fn health_empty_services() {
    let mut app = app(120, 24);
    app.tab = Tab::Health;
    connected(
        &mut app,
        snapshot(vec![pool("LOCAL_CPU", PoolState::Idle)], vec![], vec![]),
    );
    assert_snapshot!(render(&app));
}

#[test]
fn health_data_faults_first() {
    let mut app = app(140, 24);
    app.tab = Tab::Health;
    connected(&mut app, health_data());
    assert_snapshot!(render(&app));
}

#[test]
fn health_daemon_unreachable() {
    let mut app = app(120, 20);
    app.tab = Tab::Health;
    app.apply(Msg::Link(Link::Failed(
        "cannot reach the local daemon: it did not answer within 15s (connection refused)".into(),
    )));
    assert_snapshot!(render(&app));
}

#[test]
fn health_stale_data_after_a_failed_refresh() {
    let mut app = app(120, 20);
    app.tab = Tab::Health;
    connected(&mut app, health_data());
    app.now = ago(-20);
    app.apply(Msg::Snapshot(Err(
        "cannot reach the local daemon at 127.0.0.1:47811: connection refused".into(),
    )));
    assert_snapshot!(render(&app));
}

#[test]
fn imports_loading() {
    let mut app = app(120, 20);
    app.tab = Tab::Imports;
    assert_snapshot!(render(&app));
}

#[test]
fn imports_empty() {
    let mut app = app(120, 20);
    app.tab = Tab::Imports;
    connected(
        &mut app,
        snapshot(vec![pool("LOCAL_CPU", PoolState::Idle)], vec![], vec![]),
    );
    assert_snapshot!(render(&app));
}

#[test]
fn imports_data_with_a_failed_job_selected() {
    let mut app = app(120, 24);
    app.tab = Tab::Imports;
    connected(
        &mut app,
        snapshot(
            vec![],
            vec![],
            vec![
                job("ALL_MINILM_L6_V2", JobState::Running, Stage::Download, None),
                job(
                    "BIOBERT_V1_1",
                    JobState::Failed,
                    Stage::Verify,
                    Some("pytorch_model.bin: sha256 mismatch (expected 8f2c…, got 01ab…)"),
                ),
            ],
        ),
    );
    app.update(Action::Down);
    assert_snapshot!(render(&app));
}

#[test]
fn imports_error() {
    let mut app = app(120, 20);
    app.tab = Tab::Imports;
    app.apply(Msg::Snapshot(Err(
        "the local daemon refused the credentials: wrong bearer token".into(),
    )));
    assert_snapshot!(render(&app));
}

#[test]
fn query_empty() {
    let mut app = app(120, 20);
    app.tab = Tab::Query;
    connected(
        &mut app,
        snapshot(vec![pool("LOCAL_CPU", PoolState::Idle)], vec![], vec![]),
    );
    assert_snapshot!(render(&app));
}

#[test]
fn query_lists_running_model_services_only() {
    let mut app = app(120, 20);
    app.tab = Tab::Query;
    connected(&mut app, health_data());
    assert_snapshot!(render(&app));
}

#[test]
fn query_loading_and_error() {
    let mut app = app(100, 16);
    app.tab = Tab::Query;
    let loading = render(&app);
    app.apply(Msg::Snapshot(Err(
        "cannot reach the local daemon: connection refused".into(),
    )));
    assert_snapshot!(format!("{loading}\n{}", render(&app)));
}

#[test]
fn help_overlay_lists_every_binding() {
    let mut app = app(120, 40);
    catalog(&mut app);
    app.update(Action::Help);
    let screen = render(&app);
    for action in Action::ALL {
        assert!(screen.contains(action.describe()), "help lacks {action}");
    }
    assert_snapshot!(screen);
}

#[test]
fn command_bar_with_completions() {
    let mut app = app(100, 20);
    catalog(&mut app);
    app.update(Action::Command);
    app.handle_key(&crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('h'),
    ));
    assert_snapshot!(render(&app));
}

#[test]
fn terminal_too_small() {
    let app = app(50, 10);
    assert_snapshot!(render(&app));
}

#[test]
fn colorblind_theme_colours_states_with_okabe_ito() {
    let mut app = app(120, 20);
    app.tab = Tab::Health;
    app.theme = hugflake::ui::theme::Theme::named(hugflake::config::ThemeName::Colorblind);
    connected(&mut app, health_data());
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 20))
        .unwrap_or_else(|e| panic!("{e}"));
    terminal
        .draw(|f| hugflake::ui::draw(f, &app))
        .unwrap_or_else(|e| panic!("{e}"));
    let buf = terminal.backend().buffer();
    // The services table is below the pools; find the FAILED row's symbol and check its colour.
    let mut found = false;
    for y in 0..20 {
        for x in 0..120 {
            if buf[(x, y)].symbol() == "✖" {
                assert_eq!(buf[(x, y)].fg, ratatui::style::Color::Rgb(213, 94, 0));
                found = true;
            }
        }
    }
    assert!(found, "no fault symbol drawn");
}
