//! Whole-app flows driven by keys, actions, mouse events and fake worker messages.

mod support;

use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use hugflake::app::action::Action;
use hugflake::app::state::{Effect, Overlay, Tab, TableId};
use hugflake::domain::{PoolState, ServiceStatus};
use support::*;

fn key(app: &mut hugflake::app::state::App, code: KeyCode) -> Vec<Effect> {
    app.handle_event(&Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn typed(app: &mut hugflake::app::state::App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn click(app: &mut hugflake::app::state::App, column: u16, row: u16) {
    app.handle_event(&Event::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column,
        row,
        modifiers: KeyModifiers::NONE,
    }));
}

#[test]
fn tabs_cycle_by_key_number_and_command() {
    let mut app = app(120, 30);
    assert_eq!(app.tab, Tab::Candidates);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.tab, Tab::Imports);
    key(&mut app, KeyCode::BackTab);
    key(&mut app, KeyCode::BackTab);
    assert_eq!(app.tab, Tab::Query);
    key(&mut app, KeyCode::Char('3'));
    assert_eq!(app.tab, Tab::Health);
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "cand");
    key(&mut app, KeyCode::Tab);
    assert_eq!(
        app.overlay,
        Overlay::Command {
            input: "candidates".into(),
            error: None
        }
    );
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.tab, Tab::Candidates);
    assert_eq!(app.overlay, Overlay::None);
}

#[test]
fn unknown_command_says_so_and_keeps_the_input() {
    let mut app = app(120, 30);
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "launch");
    let effects = key(&mut app, KeyCode::Enter);
    assert!(effects.is_empty());
    match &app.overlay {
        Overlay::Command { input, error } => {
            assert_eq!(input, "launch");
            assert!(
                error
                    .as_deref()
                    .is_some_and(|e| e.contains("unknown command `launch`"))
            );
        }
        other => panic!("command bar closed: {other:?}"),
    }
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.overlay, Overlay::None);
    assert!(!app.quit);
}

#[test]
fn filter_narrows_rows_and_back_clears_it_before_quitting() {
    let mut app = app(120, 30);
    catalog(&mut app);
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "clip");
    assert_eq!(app.visible_candidates().len(), 1);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view(TableId::Candidates).filter, "clip");
    assert!(render(&app).contains("Candidates (1/3) /clip"));
    // q first clears the filter, then quits.
    assert!(key(&mut app, KeyCode::Char('q')).is_empty());
    assert_eq!(app.visible_candidates().len(), 3);
    assert_eq!(key(&mut app, KeyCode::Char('q')), vec![Effect::Quit]);
    assert!(app.quit);
}

#[test]
fn esc_in_the_filter_clears_it() {
    let mut app = app(120, 30);
    catalog(&mut app);
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "bio");
    assert_eq!(app.visible_candidates().len(), 2);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.visible_candidates().len(), 3);
    assert_eq!(app.overlay, Overlay::None);
}

#[test]
fn selection_moves_and_clamps() {
    let mut app = app(120, 30);
    catalog(&mut app);
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.view(TableId::Candidates).cursor.selected, 2);
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(app.view(TableId::Candidates).cursor.selected, 0);
    app.handle_event(&Event::Key(KeyEvent::new(
        KeyCode::Char('G'),
        KeyModifiers::SHIFT,
    )));
    assert_eq!(app.view(TableId::Candidates).cursor.selected, 2);
    // Fewer rows after a refresh: the cursor follows.
    let mut rows = hugflake::domain::catalog::builtin().unwrap_or_default();
    rows.truncate(1);
    app.apply(hugflake::app::state::Msg::Candidates(Ok(rows)));
    assert_eq!(app.view(TableId::Candidates).cursor.selected, 0);
}

#[test]
fn health_focus_switches_tables() {
    let mut app = app(120, 30);
    app.tab = Tab::Health;
    connected(
        &mut app,
        snapshot(
            vec![pool("LOCAL_CPU", PoolState::Idle)],
            vec![
                service("A_SVC", ServiceStatus::Running, 1),
                service("B_SVC", ServiceStatus::Running, 1),
            ],
            vec![],
        ),
    );
    assert_eq!(app.focused_table(), TableId::Pools);
    key(&mut app, KeyCode::Char('f'));
    assert_eq!(app.focused_table(), TableId::Services);
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.view(TableId::Services).cursor.selected, 1);
    assert_eq!(app.view(TableId::Pools).cursor.selected, 0);
}

#[test]
fn mouse_clicks_select_tabs_and_rows() {
    let mut app = app(140, 32);
    catalog(&mut app);
    // Row 3 is the first data row (tabs, border, header); row 5 is the third.
    click(&mut app, 10, 5);
    assert_eq!(app.view(TableId::Candidates).cursor.selected, 2);
    // The Health tab title on the tab line.
    let health = hugflake::ui::tab_ranges(ratatui::layout::Rect::new(0, 0, 140, 1))
        .into_iter()
        .find(|(t, _, _)| *t == Tab::Health)
        .map(|(_, a, _)| a)
        .unwrap_or_default();
    click(&mut app, health + 1, 0);
    assert_eq!(app.tab, Tab::Health);
    // Wheel scrolls the table under the pointer.
    app.tab = Tab::Candidates;
    app.handle_event(&Event::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollUp,
        column: 10,
        row: 5,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(app.view(TableId::Candidates).cursor.selected, 1);
}

#[test]
fn help_opens_closes_and_passes_other_keys_on() {
    let mut app = app(120, 30);
    key(&mut app, KeyCode::Char('?'));
    assert!(matches!(app.overlay, Overlay::Help { .. }));
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.overlay, Overlay::Help { scroll: 1 });
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.overlay, Overlay::None);
    assert!(!app.quit, "esc in help closes it, it does not quit");
    key(&mut app, KeyCode::Char('?'));
    key(&mut app, KeyCode::Char('3'));
    assert_eq!(app.overlay, Overlay::None);
    assert_eq!(app.tab, Tab::Health);
}

#[test]
fn refresh_and_ctrl_c() {
    let mut app = app(120, 30);
    assert_eq!(app.update(Action::Refresh), vec![Effect::Refresh]);
    key(&mut app, KeyCode::Char(':'));
    let effects = app.handle_event(&Event::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    assert_eq!(
        effects,
        vec![Effect::Quit],
        "ctrl-c quits even from the command bar"
    );
}

#[test]
fn theme_command_switches_palette() {
    let mut app = app(120, 30);
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "theme colorblind");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.theme.name, hugflake::config::ThemeName::Colorblind);
}

#[test]
fn resize_below_minimum_shows_a_message_and_back_is_safe() {
    let mut app = app(120, 30);
    catalog(&mut app);
    app.handle_event(&Event::Resize(40, 8));
    let small = render(&app).replace('\n', " ");
    assert!(
        small.contains("60x15") && small.contains("is 40x8"),
        "{small}"
    );
    // Moving in a table whose area does not exist must not panic.
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::PageDown);
    click(&mut app, 3, 3);
    app.handle_event(&Event::Resize(120, 30));
    assert!(render(&app).contains("Candidates (3)"));
}
