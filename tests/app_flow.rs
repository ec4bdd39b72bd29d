//! Whole-app flows driven by keys, actions, mouse events and fake worker messages.

mod support;

use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use hugflake::app::state::{Effect, Msg, Overlay, Tab, TableId};
use hugflake::domain::{PoolState, ServiceStatus};
use hugflake::keys::action::Action;
use support::*;

fn key(app: &mut hugflake::app::state::App, code: KeyCode) -> Vec<Effect> {
    app.handle_event(&Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn typed(app: &mut hugflake::app::state::App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

/// A click on what the last frame showed: the frame is laid out first, as the event loop does.
fn click(app: &mut hugflake::app::state::App, column: u16, row: u16) {
    hugflake::ui::record(app);
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
    typed(&mut app, "biomedclip");
    assert_eq!(app.visible_candidates().len(), 1);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view(TableId::Candidates).filter, "biomedclip");
    assert!(render(&app).contains("Candidates (1/6) /biomedclip"));
    // q first clears the filter (and the Hub search follows it), then quits.
    let effects = key(&mut app, KeyCode::Char('q'));
    assert!(
        matches!(effects.as_slice(), [Effect::HubSearch(r)] if r.query.search.is_none()),
        "{effects:?}"
    );
    assert_eq!(app.visible_candidates().len(), 6);
    assert_eq!(key(&mut app, KeyCode::Char('q')), vec![Effect::Quit]);
    assert!(app.quit);
}

#[test]
fn esc_in_the_filter_clears_it() {
    let mut app = app(120, 30);
    catalog(&mut app);
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "bio");
    assert_eq!(app.visible_candidates().len(), 4);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.visible_candidates().len(), 6);
    assert_eq!(app.overlay, Overlay::None);
}

#[test]
fn selection_moves_and_clamps() {
    let mut app = app(120, 30);
    catalog(&mut app);
    let last = app.visible_candidates().len() - 1;
    for _ in 0..=last {
        key(&mut app, KeyCode::Char('j'));
    }
    assert_eq!(app.view(TableId::Candidates).cursor.selected, last);
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(app.view(TableId::Candidates).cursor.selected, 0);
    app.handle_event(&Event::Key(KeyEvent::new(
        KeyCode::Char('G'),
        KeyModifiers::SHIFT,
    )));
    assert_eq!(app.view(TableId::Candidates).cursor.selected, last);
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
    hugflake::ui::record(&mut app);
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
    let effects = app.update(Action::Refresh);
    assert_eq!(effects[0], Effect::Refresh);
    assert!(matches!(effects[1], Effect::HubSearch(_)), "{effects:?}");
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
    assert_eq!(app.theme, hugflake::config::ThemeName::Colorblind);
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
    assert!(render(&app).contains("Candidates (6)"));
}

fn page(ids: &[&str], next: Option<&str>) -> hugflake::hub::api::SearchPage {
    hugflake::hub::api::SearchPage {
        models: ids
            .iter()
            .map(|id| hugflake::hub::api::ModelSummary {
                id: (*id).into(),
                pipeline_tag: Some("token-classification".into()),
                library_name: Some("transformers".into()),
                downloads: Some(1000),
                likes: Some(3),
                last_modified: None,
                tags: vec![],
            })
            .collect(),
        next: next.map(String::from),
    }
}

fn searches(effects: &[Effect]) -> Vec<hugflake::app::search::SearchRequest> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::HubSearch(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn typing_a_filter_searches_the_hub_and_stale_answers_are_dropped() {
    let mut app = app(140, 32);
    catalog(&mut app);
    key(&mut app, KeyCode::Char('/'));
    let mut requests = Vec::new();
    for c in "ner".chars() {
        requests.extend(searches(&key(&mut app, KeyCode::Char(c))));
    }
    assert_eq!(requests.len(), 3, "one (debounced) request per change");
    assert_eq!(requests[2].query.search.as_deref(), Some("ner"));
    assert!(requests[0].generation < requests[2].generation);
    // An answer to "n" arrives late: dropped.
    app.apply(Msg::HubPage {
        generation: requests[0].generation,
        append: false,
        result: Ok(page(&["old/n-model"], None)),
    });
    assert!(app.hub.results.is_empty());
    app.apply(Msg::HubPage {
        generation: requests[2].generation,
        append: false,
        result: Ok(page(
            &["d4data/biomedical-ner-all", "dmis-lab/biobert-v1.1"],
            None,
        )),
    });
    let handles: Vec<&str> = app
        .visible_candidates()
        .iter()
        .map(|c| c.handle.as_str())
        .collect();
    // Local rows matching "ner" (BioBERT's purpose mentions NER), then the Hub's, without
    // repeating the catalog models the Hub also found.
    assert_eq!(
        handles,
        [
            "dmis-lab/biobert-v1.1",
            "d4data/biomedical-ner-all",
            "alvaroalon2/biobert_diseases_ner"
        ]
    );
}

#[test]
fn scrolling_to_the_end_loads_the_next_page_once() {
    let mut app = app(140, 32);
    catalog(&mut app);
    let first = app.start();
    let generation = searches(&first)[0].generation;
    app.apply(Msg::HubPage {
        generation,
        append: false,
        result: Ok(page(&["a/1", "a/2", "a/3", "a/4"], Some("http://hub/next"))),
    });
    // The catalog's rows, then the Hub's: the next page loads near the end.
    let mut more = Vec::new();
    for _ in 0..app.visible_candidates().len() - 2 {
        more.extend(searches(&key(&mut app, KeyCode::Char('j'))));
    }
    assert_eq!(more.len(), 1, "{more:?}");
    assert_eq!(more[0].page.as_deref(), Some("http://hub/next"));
    app.apply(Msg::HubPage {
        generation,
        append: true,
        result: Ok(page(&["a/5"], None)),
    });
    assert_eq!(app.visible_candidates().len(), 11);
    let effects = key(&mut app, KeyCode::Char('G'));
    assert!(searches(&effects).is_empty(), "no next page left");
}

#[test]
fn details_are_fetched_for_the_selected_row_with_the_pool() {
    let mut app = app(140, 32);
    connected(
        &mut app,
        snapshot(vec![pool("LOCAL_CPU", PoolState::Idle)], vec![], vec![]),
    );
    let effects = app.apply(hugflake::app::state::Msg::Candidates(Ok(
        hugflake::domain::catalog::builtin().unwrap_or_default(),
    )));
    assert!(
        effects.iter().any(
            |e| matches!(e, Effect::HubDetails { handle, pool: Some((p, _)) }
            if handle == "sentence-transformers/all-MiniLM-L6-v2" && p == "LOCAL_CPU")
        ),
        "{effects:?}"
    );
    let effects = key(&mut app, KeyCode::Char('j'));
    assert!(effects.iter().any(
        |e| matches!(e, Effect::HubDetails { handle, .. } if handle == "dmis-lab/biobert-v1.1")
    ));
    // Back up: MiniLM's request is in flight, not asked again.
    let effects = key(&mut app, KeyCode::Char('k'));
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::HubDetails { .. }))
    );
    // A skipped request can be asked again.
    app.apply(Msg::HubDetailsSkipped("dmis-lab/biobert-v1.1".into()));
    let effects = key(&mut app, KeyCode::Char('j'));
    assert!(effects.iter().any(
        |e| matches!(e, Effect::HubDetails { handle, .. } if handle == "dmis-lab/biobert-v1.1")
    ));
}

#[test]
fn sort_and_filters_restart_the_search() {
    let mut app = app(140, 32);
    let effects = key(&mut app, KeyCode::Char('o'));
    assert_eq!(searches(&effects)[0].query.sort.as_deref(), Some("likes"));
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "task token-classification");
    let effects = key(&mut app, KeyCode::Enter);
    let q = &searches(&effects)[0].query;
    assert_eq!(q.pipeline_tag.as_deref(), Some("token-classification"));
    assert_eq!(q.sort.as_deref(), Some("likes"));
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "task none");
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(searches(&effects)[0].query.pipeline_tag, None);
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "sort trending");
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(
        searches(&effects)[0].query.sort.as_deref(),
        Some("trendingScore")
    );
    assert!(render(&app).contains("sort trending"));
}

#[test]
fn offline_asks_nothing_and_says_so() {
    let mut app = app(140, 32);
    app.hub = hugflake::app::search::HubSearch::new(Some("HF_HUB_OFFLINE is set".into()));
    assert!(app.start().is_empty());
    let effects = app.apply(Msg::Candidates(Ok(
        hugflake::domain::catalog::builtin().unwrap_or_default()
    )));
    assert!(effects.is_empty(), "{effects:?}");
    key(&mut app, KeyCode::Char('/'));
    assert!(key(&mut app, KeyCode::Char('x')).is_empty());
    let screen = render(&app);
    assert!(
        screen.contains("Hub offline (HF_HUB_OFFLINE is set)"),
        "{screen}"
    );
}

#[test]
fn d_downloads_the_selected_candidate_once_and_shows_progress() {
    use hugflake::app::state::DownloadState;
    let mut app = app(150, 36);
    catalog(&mut app);
    let effects = key(&mut app, KeyCode::Char('d'));
    let handle = "sentence-transformers/all-MiniLM-L6-v2".to_string();
    assert!(
        effects.contains(&Effect::Download(handle.clone())),
        "{effects:?}"
    );
    let running = DownloadState {
        done: 45_000_000,
        total: 91_600_000,
        files_done: 6,
        files: 13,
        rate: 30_000_000.0,
        eta_secs: Some(2),
        finished: None,
    };
    app.apply(Msg::Download {
        handle: handle.clone(),
        state: running.clone(),
    });
    let effects = key(&mut app, KeyCode::Char('d'));
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Download(_))),
        "no second download"
    );
    let screen = render(&app);
    assert!(
        screen.contains("45.0 MB of 91.6 MB (6/13 files)"),
        "{screen}"
    );
    app.apply(Msg::Download {
        handle: handle.clone(),
        state: DownloadState {
            finished: Some(Err("gated: accept the licence".into())),
            ..running
        },
    });
    assert!(
        app.flash
            .as_ref()
            .is_some_and(|f| f.error && f.text.contains("failed"))
    );
    // Offline: nothing to download from.
    let mut app = support::app(150, 36);
    app.hub = hugflake::app::search::HubSearch::new(Some("HF_HUB_OFFLINE is set".into()));
    catalog(&mut app);
    assert!(key(&mut app, KeyCode::Char('d')).is_empty());
    assert!(
        app.flash
            .as_ref()
            .is_some_and(|f| f.text.contains("offline"))
    );
}

#[test]
fn the_fit_verdict_appears_once_the_pools_are_known() {
    let mut app = app(150, 36);
    catalog(&mut app);
    let info: hugflake::hub::api::ModelInfo = serde_json::from_value(serde_json::json!({
        "id": "sentence-transformers/all-MiniLM-L6-v2", "sha": "1110a243fdf4706b3f48f1d95db1a4f5529b4d41",
        "library_name": "sentence-transformers", "pipeline_tag": "sentence-similarity"
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let tree: Vec<hugflake::hub::api::TreeEntry> = serde_json::from_value(serde_json::json!([
        {"type": "file", "oid": "b", "size": 134, "path": "model.safetensors",
         "lfs": {"oid": "c", "size": 90_868_376u64}}
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    // Details fetched before the daemon answered: no pool, no fit.
    let details = hugflake::hub::details::ModelDetails::build(&info, &tree, None, None);
    app.apply(Msg::HubDetails {
        handle: "sentence-transformers/all-MiniLM-L6-v2".into(),
        result: Ok(Box::new(details)),
    });
    assert!(!render(&app).contains("fits LOCAL_CPU"));
    connected(
        &mut app,
        snapshot(vec![pool("LOCAL_CPU", PoolState::Idle)], vec![], vec![]),
    );
    assert!(render(&app).contains("fits LOCAL_CPU: needs ~0.4 GiB"));
}

#[test]
fn an_unreachable_hub_is_not_asked_for_details_on_every_row() {
    let mut app = started(140, 32);
    let generation = app.hub.generation;
    app.apply(Msg::HubPage {
        generation,
        append: false,
        result: Err("cannot reach the Hub: connection failed".into()),
    });
    let effects = app.apply(Msg::Candidates(Ok(
        hugflake::domain::catalog::builtin().unwrap_or_default()
    )));
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::HubDetails { .. })),
        "{effects:?}"
    );
    // r retries the search (and clears the error when it answers).
    let effects = key(&mut app, KeyCode::Char('r'));
    assert!(effects.iter().any(|e| matches!(e, Effect::HubSearch(_))));
}

#[test]
fn an_import_starts_from_the_form_and_is_followed_to_running() {
    use hugflake::domain::{JobState, Stage};
    let mut app = app(120, 32);
    catalog(&mut app);
    connected(
        &mut app,
        snapshot(vec![pool("LOCAL_CPU", PoolState::Idle)], vec![], vec![]),
    );
    // i opens the form on the selected candidate (MiniLM); editing the model renames the service.
    key(&mut app, KeyCode::Char('i'));
    typed(&mut app, "_X");
    // A bad field is named and nothing starts.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    typed(&mut app, "z");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(render(&app).contains("min instances must be a whole number"));
    key(&mut app, KeyCode::Backspace);
    let effects = key(&mut app, KeyCode::Enter);
    let spec = effects
        .iter()
        .find_map(|e| match e {
            Effect::Import(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no import effect in {effects:?}"));
    assert_eq!(spec.handle, "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(spec.model, "ALL_MINILM_L6_V2_X");
    assert_eq!(spec.service, "ALL_MINILM_L6_V2_X_SVC");
    assert_eq!(spec.task.as_deref(), Some("sentence-similarity"));
    assert_eq!(spec.pool, "LOCAL_CPU");

    // The platform queues it: the app goes to Imports and asks for the job's detail.
    let mut queued = job("ALL_MINILM_L6_V2_X", JobState::Queued, Stage::Resolve, None);
    queued.stage = None;
    let effects = app.apply(Msg::ImportStarted(Ok(queued.clone())));
    assert_eq!(app.tab, Tab::Imports);
    assert!(effects.contains(&Effect::Refresh));
    let mut snap = snapshot(
        vec![pool("LOCAL_CPU", PoolState::Idle)],
        vec![],
        vec![queued.clone()],
    );
    let effects = app.apply(Msg::Snapshot(Ok(snap.clone())));
    assert!(effects.contains(&Effect::JobDetail(queued.id.clone())));
    // Each newer snapshot of a running job asks again; stages advance to ready and the service runs.
    for stage in [Stage::Download, Stage::Build, Stage::Ready] {
        let mut j = queued.clone();
        j.state = JobState::Running;
        j.stage = Some(stage);
        snap.jobs = vec![j.clone()];
        snap.fetched_at += chrono::Duration::seconds(2);
        let effects = app.apply(Msg::Snapshot(Ok(snap.clone())));
        assert!(
            effects.contains(&Effect::JobDetail(j.id.clone())),
            "{stage:?}"
        );
        app.apply(Msg::JobDetail {
            id: j.id.clone(),
            result: Ok(Box::new(job_detail(j, Some(stage), vec![]))),
        });
        assert!(render(&app).contains(&format!("▶ {}", stage.as_str())));
    }
    let mut done = queued.clone();
    done.state = JobState::Done;
    done.stage = Some(Stage::Ready);
    snap.jobs = vec![done.clone()];
    snap.services = vec![service("ALL_MINILM_L6_V2_X_SVC", ServiceStatus::Running, 1)];
    snap.fetched_at += chrono::Duration::seconds(2);
    let effects = app.apply(Msg::Snapshot(Ok(snap.clone())));
    assert!(effects.contains(&Effect::JobDetail(done.id.clone())));
    app.apply(Msg::JobDetail {
        id: done.id.clone(),
        result: Ok(Box::new(job_detail(done, None, vec![]))),
    });
    let screen = render(&app);
    assert!(screen.contains("✔ ready"), "{screen}");
    assert!(screen.contains("done"));
    // A finished job is not asked again on later snapshots.
    snap.fetched_at += chrono::Duration::seconds(2);
    let effects = app.apply(Msg::Snapshot(Ok(snap)));
    assert!(!effects.iter().any(|e| matches!(e, Effect::JobDetail(_))));
    key(&mut app, KeyCode::Char('3'));
    assert!(render(&app).contains("ALL_MINILM_L6_V2_X_SVC"));
}

#[test]
fn cancel_and_suspend_ask_first_and_esc_changes_nothing() {
    use hugflake::app::state::PlatformOp;
    use hugflake::domain::{JobState, Stage};
    let mut app = app(120, 30);
    connected(
        &mut app,
        snapshot(
            vec![pool("LOCAL_CPU", PoolState::Active)],
            vec![service("MINI_SVC", ServiceStatus::Running, 1)],
            vec![job("MINI", JobState::Running, Stage::Download, None)],
        ),
    );
    key(&mut app, KeyCode::Char('2'));
    assert!(key(&mut app, KeyCode::Char('x')).is_empty());
    assert!(render(&app).contains("cancel job job-mini"));
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert!(render(&app).contains("nothing changed"));
    key(&mut app, KeyCode::Char('x'));
    let effects = key(&mut app, KeyCode::Char('y'));
    assert!(effects.contains(&Effect::Platform(PlatformOp::CancelJob("job-mini".into()))));
    // Retry is only for failed or cancelled jobs.
    assert!(key(&mut app, KeyCode::Char('R')).is_empty());
    let screen = render(&app);
    assert!(
        screen.contains("only failed or cancelled jobs are retried"),
        "{screen}"
    );
    key(&mut app, KeyCode::Char('3'));
    key(&mut app, KeyCode::Char('s'));
    let effects = key(&mut app, KeyCode::Enter);
    assert!(effects.contains(&Effect::Platform(PlatformOp::SuspendPool(
        "LOCAL_CPU".into()
    ))));
    key(&mut app, KeyCode::Char('f'));
    key(&mut app, KeyCode::Char('u'));
    let effects = key(&mut app, KeyCode::Enter);
    assert!(
        effects.contains(&Effect::Platform(PlatformOp::ResumeService(
            "MINI_SVC".into()
        )))
    );
    let effects = app.apply(Msg::PlatformDone(Err(
        "could not resume service MINI_SVC: compute pool LOCAL_CPU is SUSPENDED".into(),
    )));
    assert!(effects.contains(&Effect::Refresh));
    assert!(render(&app).contains("could not resume service MINI_SVC"));
}

#[test]
fn query_asks_for_functions_then_sends_what_is_typed_and_searches_the_notes() {
    use hugflake::app::query::{QueryKind, QueryResult};
    let mut app = app(120, 32);
    connected(
        &mut app,
        snapshot(
            vec![pool("LOCAL_CPU", PoolState::Active)],
            vec![service("MINI_SVC", ServiceStatus::Running, 1)],
            vec![],
        ),
    );
    let effects = key(&mut app, KeyCode::Char('4'));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Functions { service, .. } if service == "MINI_SVC"))
    );
    app.apply(Msg::Functions {
        service: "MINI_SVC".into(),
        result: Ok(hugflake::platform::protocol::functions_for(
            "sentence-similarity",
        )),
    });
    // Nothing typed: nothing sent, and the pane says what to type.
    let ctrl_s = Event::Key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    assert!(app.handle_event(&ctrl_s).is_empty());
    assert!(render(&app).contains("nothing to send"));
    key(&mut app, KeyCode::Char('e'));
    typed(&mut app, "fever");
    key(&mut app, KeyCode::Enter);
    typed(&mut app, "cough qm"); // while typing, letters are text, not commands
    assert_eq!(app.tab, Tab::Query);
    let effects = app.handle_event(&ctrl_s);
    let req = effects
        .iter()
        .find_map(|e| match e {
            Effect::Query(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{effects:?}"));
    assert_eq!(req.method, "ENCODE");
    assert_eq!(
        req.inputs,
        vec!["fever".to_string(), "cough qm".to_string()]
    );
    assert!(req.notes.is_empty());
    // One call at a time; a failure is shown where the result would be.
    assert!(app.handle_event(&ctrl_s).is_empty());
    app.apply(Msg::QueryDone {
        request: req,
        result: Err("service MINI_SVC answered 503: no instance ready".into()),
    });
    assert!(render(&app).contains("answered 503"));
    // Search mode: one query plus the demo notes the first time, then the query alone.
    key(&mut app, KeyCode::Char('m'));
    let effects = app.handle_event(&ctrl_s);
    let req = effects
        .iter()
        .find_map(|e| match e {
            Effect::Query(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{effects:?}"));
    assert_eq!(req.inputs, vec!["fever cough qm".to_string()]);
    assert_eq!(req.notes.len(), hugflake::app::query::demo_notes().len());
    let n = req.notes.len();
    let mut outputs = vec![serde_json::json!({"output": [0.0, 1.0]})];
    for i in 0..n {
        let v = if i == 7 { [0.0, 1.0] } else { [1.0, 0.0] };
        outputs.push(serde_json::json!({"output": v}));
    }
    app.apply(Msg::QueryDone {
        request: req,
        result: Ok(Box::new(QueryResult {
            service: "MINI_SVC".into(),
            kind: QueryKind::Embeddings,
            inputs: vec!["fever cough qm".into()],
            outputs,
            latency_ms: 20.0,
            ranking: vec![],
            cache_hits: vec![],
            cache_searched: None,
            thumbnail: None,
            png: None,
            raw_request: serde_json::json!({}),
            raw_response: serde_json::json!({}),
        })),
    });
    let r = app
        .query
        .result
        .clone()
        .unwrap_or_else(|| panic!("no result"));
    assert_eq!(r.ranking[0].0, 7);
    assert!(render(&app).contains("top notes of 30"));
    let effects = app.handle_event(&ctrl_s);
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Query(r) if r.notes.is_empty())),
        "notes are embedded once"
    );
    // The history keeps counts and latency, never the inputs.
    assert_eq!(app.query.history.len(), 2);
    assert!(!format!("{:?}", app.query.history).contains("fever"));
    // y copies the result (OSC 52); J shows the raw JSON.
    app.query.busy = false;
    assert!(
        key(&mut app, KeyCode::Char('y'))
            .iter()
            .any(|e| matches!(e, Effect::Clipboard(_)))
    );
    key(&mut app, KeyCode::Char('J'));
    assert!(render(&app).contains("raw JSON"));
}

#[test]
fn a_job_log_opens_full_screen_and_filters() {
    use hugflake::domain::{JobState, Stage};
    let mut app = app(120, 30);
    let j = job("MINI", JobState::Running, Stage::Download, None);
    connected(
        &mut app,
        snapshot(
            vec![pool("LOCAL_CPU", PoolState::Active)],
            vec![],
            vec![j.clone()],
        ),
    );
    key(&mut app, KeyCode::Char('2'));
    app.apply(Msg::JobDetail {
        id: j.id.clone(),
        result: Ok(Box::new(job_detail(j, Some(Stage::Download), vec![]))),
    });
    key(&mut app, KeyCode::Char('L'));
    let screen = render(&app);
    assert!(screen.contains("Job log · job-mini · 2 lines"), "{screen}");
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "licence");
    key(&mut app, KeyCode::Enter);
    let screen = render(&app);
    assert!(screen.contains("1 lines · /licence/"), "{screen}");
    assert_eq!(app.log_lines_shown().len(), 1);
    // Matches are kept between frames and extended as lines arrive; a new filter starts over.
    let mut more = match &app.job_detail {
        Some(d) => d.clone(),
        None => panic!("no job detail"),
    };
    let last = more.log.last().map_or(0, |l| l.seq);
    for (i, line) in ["licence checked again", "fetched config.json", "LICENCE ok"]
        .iter()
        .enumerate()
    {
        more.log.push(hugflake::domain::JobLogLine {
            seq: last + 1 + i as u64,
            at: now(),
            line: line.to_string(),
        });
    }
    app.apply(Msg::JobDetail {
        id: more.summary.id.clone(),
        result: Ok(Box::new(more)),
    });
    let screen = render(&app);
    assert!(screen.contains("3 lines · /licence/"), "{screen}");
    assert_eq!(
        app.log_lines_shown()
            .last()
            .map(|l| l.ends_with("LICENCE ok")),
        Some(true)
    );
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "|config");
    key(&mut app, KeyCode::Enter);
    assert!(render(&app).contains("4 lines · /licence|config/"));
    key(&mut app, KeyCode::Esc);
    assert!(matches!(app.overlay, Overlay::None));
}

#[test]
fn a_model_version_can_be_queried_directly() {
    let mut app = app(120, 30);
    connected(
        &mut app,
        snapshot(vec![pool("LOCAL_CPU", PoolState::Active)], vec![], vec![]),
    );
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "version all_minilm_l6_v2 v1");
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(app.tab, Tab::Query);
    assert!(
        effects.iter().any(
            |e| matches!(e, Effect::Functions { service, model: Some(m), version: Some(v) }
        if service == "ALL_MINILM_L6_V2 V1" && m == "ALL_MINILM_L6_V2" && v == "V1")
        ),
        "{effects:?}"
    );
    app.apply(Msg::Functions {
        service: "ALL_MINILM_L6_V2 V1".into(),
        result: Ok(hugflake::platform::protocol::functions_for(
            "sentence-similarity",
        )),
    });
    assert!(render(&app).contains("ALL_MINILM_L6_V2 V1 (version, direct)"));
    key(&mut app, KeyCode::Char('e'));
    typed(&mut app, "fever");
    let ctrl_s = Event::Key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    let effects = app.handle_event(&ctrl_s);
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Query(r)
        if r.version == Some(("ALL_MINILM_L6_V2".into(), "V1".into())) && r.method == "ENCODE")),
        "{effects:?}"
    );
}

#[test]
fn a_send_before_the_methods_arrive_goes_out_when_they_do() {
    let mut app = app(120, 30);
    connected(
        &mut app,
        snapshot(
            vec![pool("LOCAL_CPU", PoolState::Active)],
            vec![service("MINI_SVC", ServiceStatus::Running, 1)],
            vec![],
        ),
    );
    key(&mut app, KeyCode::Char('4'));
    key(&mut app, KeyCode::Char('e'));
    typed(&mut app, "fever");
    let ctrl_s = Event::Key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    assert!(
        app.handle_event(&ctrl_s)
            .iter()
            .all(|e| !matches!(e, Effect::Query(_)))
    );
    assert!(!render(&app).contains("not known"));
    let effects = app.apply(Msg::Functions {
        service: "MINI_SVC".into(),
        result: Ok(hugflake::platform::protocol::functions_for(
            "sentence-similarity",
        )),
    });
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Query(r) if r.inputs == vec!["fever".to_string()])),
        "{effects:?}"
    );
}

/// Tables draw only the rows on screen: moving past the bottom scrolls, the selected row stays
/// visible and marked, and moving back up scrolls back.
#[test]
fn a_long_table_scrolls_with_the_cursor() {
    let mut app = started(120, 24);
    let base = hugflake::domain::catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    let rows: Vec<_> = (0..500)
        .map(|i| {
            let mut c = base[i % base.len()].clone();
            c.handle = format!("org/model-{i:03}");
            c
        })
        .collect();
    app.apply(Msg::Candidates(Ok(rows)));
    for _ in 0..40 {
        key(&mut app, KeyCode::Char('j'));
    }
    let screen = render(&app);
    let marked: Vec<&str> = screen.lines().filter(|l| l.contains('▶')).collect();
    assert_eq!(marked.len(), 1, "{screen}");
    assert!(marked[0].contains("org/model-040"), "{screen}");
    assert!(!screen.contains("org/model-000"), "scrolled: {screen}");
    let marked = |app: &hugflake::app::state::App, handle: &str| {
        let screen = render(app);
        assert!(
            screen
                .lines()
                .any(|l| l.contains('▶') && l.contains(handle)),
            "{handle} is not the marked row:\n{screen}"
        );
    };
    key(&mut app, KeyCode::Char('G'));
    marked(&app, "org/model-499");
    key(&mut app, KeyCode::Char('g'));
    marked(&app, "org/model-000");
}

/// Pasted text is text: in Health it is ignored (it once typed `s`, then `y`, and suspended the
/// pool); in a field it is typed, line breaks becoming spaces on one-line fields.
#[test]
fn a_paste_is_text_never_key_presses() {
    let mut app = app(140, 32);
    connected(
        &mut app,
        snapshot(vec![pool("LOCAL_CPU", PoolState::Idle)], vec![], vec![]),
    );
    key(&mut app, KeyCode::Char('3'));
    let effects = app.handle_event(&Event::Paste("symptoms: fever and cough, says yes".into()));
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(app.overlay, Overlay::None);
    assert!(
        app.flash
            .as_ref()
            .is_some_and(|f| f.text.contains("paste ignored")),
        "{:?}",
        app.flash
    );
    // Into the command bar: one line, and Enter is never pasted.
    key(&mut app, KeyCode::Char(':'));
    app.handle_event(&Event::Paste("imp\r\norts".into()));
    assert_eq!(
        app.overlay,
        Overlay::Command {
            input: "imp orts".into(),
            error: None
        }
    );
}

#[test]
fn the_import_form_offers_what_works_instead_and_ctrl_o_switches_to_it() {
    let mut app = app(140, 36);
    catalog(&mut app);
    connected(
        &mut app,
        snapshot(vec![pool("LOCAL_CPU", PoolState::Idle)], vec![], vec![]),
    );
    // BioBERT (second row): its details and its form say what to import for entities.
    key(&mut app, KeyCode::Down);
    let screen = render(&app);
    assert!(
        screen.contains("instead      d4data/biomedical-ner-all for"),
        "{screen}"
    );
    key(&mut app, KeyCode::Char('i'));
    let screen = render(&app);
    assert!(screen.contains("ctrl-o switch model"), "{screen}");
    app.handle_event(&Event::Key(KeyEvent::new(
        KeyCode::Char('o'),
        KeyModifiers::CONTROL,
    )));
    let Overlay::Import(form) = &app.overlay else {
        panic!("the form closed: {:?}", app.overlay);
    };
    assert_eq!(form.fields[0].value, "d4data/biomedical-ner-all");
    assert_eq!(form.fields[1].value, "token-classification");
    assert_eq!(
        app.selected_candidate().map(|c| c.handle.as_str()),
        Some("d4data/biomedical-ner-all")
    );
    let effects = key(&mut app, KeyCode::Enter);
    let spec = effects
        .iter()
        .find_map(|e| match e {
            Effect::Import(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no import effect in {effects:?}"));
    assert_eq!(spec.handle, "d4data/biomedical-ner-all");
    assert_eq!(spec.model, "BIOMEDICAL_NER_ALL");

    // BiomedCLIP runs locally: on the local platform its form offers nothing else, and ctrl-o
    // says so and changes nothing.
    // (The switch selected d4data's row: BiomedCLIP is the one above.)
    key(&mut app, KeyCode::Char('1'));
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Char('i'));
    assert!(!render(&app).contains("ctrl-o"));
    app.handle_event(&Event::Key(KeyEvent::new(
        KeyCode::Char('o'),
        KeyModifiers::CONTROL,
    )));
    let Overlay::Import(form) = &app.overlay else {
        panic!("the form closed");
    };
    assert!(form.fields[0].value.starts_with("microsoft/BiomedCLIP"));
}

#[test]
fn on_snowflake_biomedclip_offers_pubmedclip() {
    let mut app = app(140, 36);
    catalog(&mut app);
    let mut snap = snapshot(vec![pool("ML_POOL", PoolState::Idle)], vec![], vec![]);
    snap.status.kind = hugflake::domain::PlatformKind::Snowflake;
    snap.status.registry = Some(hugflake::domain::RegistryPlace {
        database: "ML".into(),
        schema: "REGISTRY".into(),
        warehouse: Some("ML_WH".into()),
    });
    connected(&mut app, snap);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('i'));
    let screen = render(&app);
    assert!(
        screen.contains("pubmed-clip-vit-base-patch32 instead")
            && screen.contains("ctrl-o switch model"),
        "{screen}"
    );
    app.handle_event(&Event::Key(KeyEvent::new(
        KeyCode::Char('o'),
        KeyModifiers::CONTROL,
    )));
    let Overlay::Import(form) = &app.overlay else {
        panic!("the form closed");
    };
    assert_eq!(
        form.fields[0].value,
        "flaviagiammarino/pubmed-clip-vit-base-patch32"
    );
    assert_eq!(form.fields[1].value, "zero-shot-image-classification");
    // The Snowflake plan is there for the new model.
    assert!(form.snowflake.is_some());
}

#[test]
fn a_cached_revision_is_deleted_from_candidates_after_asking() {
    use hugflake::domain::{CachedRepo, CachedRevision, Candidate};
    let mut app = app(140, 36);
    let mut rows = hugflake::domain::catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    rows.insert(
        0,
        Candidate::from_cache(CachedRepo {
            repo_id: "org/cached".into(),
            path: "/tmp/hf/models--org--cached".into(),
            size_on_disk: 300_000_000,
            revisions: vec![CachedRevision {
                commit: "c".repeat(40),
                refs: vec!["main".into()],
                files: 4,
                size_bytes: 300_000_000,
            }],
            last_modified: None,
            library: None,
            task: None,
            has_head: None,
            incomplete_files: 0,
        }),
    );
    app.apply(Msg::Candidates(Ok(rows)));
    app.apply(Msg::CachePrunable(
        [("org/cached".to_string(), 120_000_000u64)]
            .into_iter()
            .collect(),
    ));
    app.hf_cache = Some("/tmp/hf".into());
    let screen = render(&app);
    assert!(
        screen.contains("cache 300 MB, prune frees ~120 MB"),
        "{screen}"
    );
    assert!(screen.contains("D delete cached"), "{screen}");
    // D asks first, naming the revision and what it frees; n changes nothing.
    key(&mut app, KeyCode::Char('D'));
    let Overlay::Confirm { message, .. } = &app.overlay else {
        panic!("no question: {:?}", app.overlay);
    };
    assert!(
        message.starts_with(
            "delete org/cached@cccccccccccc from the Hugging Face cache (up to 300 MB"
        ),
        "{message}"
    );
    assert!(key(&mut app, KeyCode::Char('n')).is_empty());
    key(&mut app, KeyCode::Char('D'));
    let effects = key(&mut app, KeyCode::Char('y'));
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::Platform(hugflake::app::state::PlatformOp::DeleteCached { repo, .. }) if repo == "org/cached"
        )),
        "{effects:?}"
    );
    // A catalog row that is not cached has nothing to delete.
    key(&mut app, KeyCode::Down);
    assert!(key(&mut app, KeyCode::Char('D')).is_empty());
    assert_eq!(app.overlay, Overlay::None);
}

#[test]
fn the_previous_log_of_a_restarted_instance_opens_full_screen() {
    use hugflake::domain::LogLine;
    let mut app = app(120, 30);
    app.tab = Tab::Health;
    connected(
        &mut app,
        snapshot(
            vec![pool("LOCAL_CPU", PoolState::Active)],
            vec![service("MINI_SVC", ServiceStatus::Running, 1)],
            vec![],
        ),
    );
    // The key bar offers it once the detail shows a restart.
    app.apply(Msg::ServiceDetail(Box::new(service_detail("MINI_SVC"))));
    assert!(render(&app).contains("p previous log"), "{}", render(&app));
    let effects = key(&mut app, KeyCode::Char('p'));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::PreviousLogs(s) if s == "MINI_SVC")),
        "{effects:?}"
    );
    assert!(render(&app).contains("loading the log…"));
    let line = |seq: u64, text: &str| LogLine {
        seq,
        at: now(),
        instance_id: 0,
        container: "model-inference".into(),
        line: text.into(),
    };
    app.apply(Msg::PreviousLogs {
        service: "MINI_SVC".into(),
        result: Ok(vec![
            line(3, "loading sentence-similarity model (int8)"),
            line(9, "memory allocation of 1073741824 bytes failed"),
        ]),
    });
    let screen = render(&app);
    assert!(
        screen.contains("Previous log (before the last restart) · MINI_SVC · 2 lines"),
        "{screen}"
    );
    assert!(
        screen.contains("memory allocation of 1073741824 bytes failed"),
        "{screen}"
    );
    // p again: back to the current log (from the service detail), without asking anything.
    assert!(key(&mut app, KeyCode::Char('p')).is_empty());
    let screen = render(&app);
    assert!(screen.contains("Log · MINI_SVC"), "{screen}");
    assert!(!screen.contains("memory allocation"), "{screen}");
    // And when there is none, the platform's reason is shown instead of a spinner.
    key(&mut app, KeyCode::Char('p'));
    app.apply(Msg::PreviousLogs {
        service: "MINI_SVC".into(),
        result: Err("no instance of MINI_SVC has a previous log".into()),
    });
    let screen = render(&app);
    assert!(
        screen.contains("no instance of MINI_SVC has a previous log"),
        "{screen}"
    );
    assert!(!screen.contains("loading the log"), "{screen}");
}

/// `:scale` in Health: the selected service's scaling, changed after a confirmation that says
/// what each value will do; a bad change is refused in the status line; the detail panel shows
/// the bounds, current/target instances, and a suspension for idleness.
#[test]
fn scale_changes_the_selected_service_after_saying_what_it_will_do() {
    let mut app = app(140, 36);
    app.tab = Tab::Health;
    let mut idle = service("MINI_SVC", ServiceStatus::Suspended, 0);
    idle.min_instances = 0;
    idle.max_instances = 2;
    idle.auto_suspend_secs = Some(300);
    idle.auto_suspended = true;
    idle.current_instances = 0;
    idle.target_instances = 0;
    idle.cold_start_ms = Some(1840);
    connected(
        &mut app,
        snapshot(
            vec![pool("LOCAL_CPU", PoolState::Active)],
            vec![idle],
            vec![],
        ),
    );
    let mut detail = service_detail("MINI_SVC");
    detail.requests = Some(hugflake::domain::Resources {
        gpu: Some(1),
        cpu: None,
        memory: Some("16Gi".into()),
    });
    app.apply(Msg::ServiceDetail(Box::new(detail)));
    let screen = render(&app);
    assert!(screen.contains("SUSPENDED (auto)"), "{screen}");
    assert!(screen.contains("requests 1 GPU · 16Gi"), "{screen}");
    for said in [
        "instances 0/0 · min 0 max 2",
        "suspends after 300 s idle",
        "last cold start 1840 ms",
        "idle: the next call resumes it",
    ] {
        assert!(screen.contains(said), "{said}: {screen}");
    }
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "scale min=1 max=3");
    key(&mut app, KeyCode::Enter);
    let Overlay::Confirm { message, .. } = &app.overlay else {
        panic!("no question: {:?}", app.overlay);
    };
    assert!(
        message.starts_with("change service MINI_SVC: MIN_INSTANCES 0 → 1")
            && message.contains("MAX_INSTANCES 2 → 3"),
        "{message}"
    );
    let effects = key(&mut app, KeyCode::Char('y'));
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::Platform(hugflake::app::state::PlatformOp::AlterService { service, change, .. })
                if service == "MINI_SVC" && change.min_instances == Some(1) && change.max_instances == Some(3)
        )),
        "{effects:?}"
    );
    // Refused before asking: MIN above MAX, and a change that changes nothing.
    for (line, why) in [
        (
            "scale min=5",
            "min instances (5) is above max instances (2)",
        ),
        ("scale max=2", "nothing to change"),
        ("scale NO_SUCH_SVC max=2", "no service NO_SUCH_SVC"),
    ] {
        key(&mut app, KeyCode::Char(':'));
        typed(&mut app, line);
        key(&mut app, KeyCode::Enter);
        assert_eq!(app.overlay, Overlay::None, "{line}");
        assert!(render(&app).contains(why), "{line}: {}", render(&app));
    }
}

/// Query's `:compare A B`: what is typed goes to both services; the answers show in two
/// columns with each latency and the cosine between them, and in search mode both top lists with
/// the rank changes marked.
#[test]
fn compare_sends_to_both_services_and_shows_them_side_by_side() {
    use hugflake::platform::compare::{Comparison, InputDiff, SearchDiff, Side};
    let mut app = app(140, 36);
    connected(
        &mut app,
        snapshot(
            vec![pool("LOCAL_CPU", PoolState::Active)],
            vec![
                service("MINI_SVC", ServiceStatus::Running, 1),
                service("MINI_INT8_SVC", ServiceStatus::Running, 1),
            ],
            vec![],
        ),
    );
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "compare mini_svc mini_int8_svc");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.tab, Tab::Query);
    assert!(render(&app).contains("Input · MINI_SVC vs MINI_INT8_SVC"));
    key(&mut app, KeyCode::Char('e'));
    typed(&mut app, "fever and cough");
    let ctrl_s = Event::Key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    let effects = app.handle_event(&ctrl_s);
    let req = effects
        .iter()
        .find_map(|e| match e {
            Effect::Compare(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{effects:?}"));
    assert_eq!(
        (req.a.as_str(), req.b.as_str()),
        ("MINI_SVC", "MINI_INT8_SVC")
    );
    assert_eq!(req.lines, vec!["fever and cough".to_string()]);
    let side = |name: &str, ms: f64| Side {
        service: name.into(),
        method: "ENCODE".into(),
        latency_ms: ms,
        outputs: vec![serde_json::json!({"output": [0.6, 0.8]})],
    };
    app.apply(Msg::Compared(Ok(Box::new(Comparison {
        a: side("MINI_SVC", 12.0),
        b: side("MINI_INT8_SVC", 9.0),
        inputs: vec![InputDiff::Embeddings {
            cosine: Some(0.9994),
            dims: (384, 384),
        }],
        search: None,
    }))));
    let screen = render(&app);
    for said in [
        "Compare · A 12 ms · B 9 ms",
        "A MINI_SVC",
        "B MINI_INT8_SVC",
        "0: 384 dims",
        "cosine A·B 0.9994",
    ] {
        assert!(screen.contains(said), "{said}: {screen}");
    }
    // Search mode: both top lists, A's with where B put each note.
    app.apply(Msg::Compared(Ok(Box::new(Comparison {
        a: side("MINI_SVC", 12.0),
        b: side("MINI_INT8_SVC", 9.0),
        inputs: vec![InputDiff::Embeddings {
            cosine: Some(0.9991),
            dims: (384, 384),
        }],
        search: Some(SearchDiff {
            a: vec![(0, 0.71), (3, 0.62), (5, 0.55)],
            b: vec![(3, 0.66), (0, 0.65), (6, 0.5)],
        }),
    }))));
    let screen = render(&app);
    assert!(screen.contains("1. 0.710   ↓1 "), "{screen}");
    assert!(screen.contains("2. 0.620   ↑1 "), "{screen}");
    assert!(screen.contains("3. 0.550  out "), "{screen}");
    assert!(screen.contains("3. 0.500  new "), "{screen}");
    // Back to one service.
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "compare none");
    key(&mut app, KeyCode::Enter);
    assert!(!render(&app).contains("MINI_SVC vs MINI_INT8_SVC"));
}

/// The full-screen log view's time window (`t`): the last 5 minutes, 15, an hour… then everything
/// again, with the filter applied inside the window.
#[test]
fn the_log_view_narrows_to_a_time_window() {
    use hugflake::domain::{JobState, Stage};
    let mut app = app(120, 30);
    let j = job("MINI", JobState::Running, Stage::Download, None);
    connected(
        &mut app,
        snapshot(
            vec![pool("LOCAL_CPU", PoolState::Active)],
            vec![],
            vec![j.clone()],
        ),
    );
    key(&mut app, KeyCode::Char('2'));
    let mut detail = job_detail(j, Some(Stage::Download), vec![]);
    detail.log = [
        (7200, "fetched config.json two hours ago"),
        (600, "fetched model.safetensors ten minutes ago"),
        (60, "verified a minute ago"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (secs, line))| hugflake::domain::JobLogLine {
        seq: i as u64 + 1,
        at: ago(*secs),
        line: line.to_string(),
    })
    .collect();
    app.apply(Msg::JobDetail {
        id: detail.summary.id.clone(),
        result: Ok(Box::new(detail)),
    });
    key(&mut app, KeyCode::Char('L'));
    assert!(render(&app).contains("3 lines"), "{}", render(&app));
    key(&mut app, KeyCode::Char('t'));
    let screen = render(&app);
    assert!(screen.contains("1 lines · last 5m"), "{screen}");
    assert!(screen.contains("verified a minute ago") && !screen.contains("ten minutes ago"));
    key(&mut app, KeyCode::Char('t'));
    assert!(render(&app).contains("2 lines · last 15m"));
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "fetched");
    key(&mut app, KeyCode::Enter);
    let screen = render(&app);
    assert!(
        screen.contains("1 lines · /fetched/ · last 15m"),
        "{screen}"
    );
    assert_eq!(app.log_lines_shown().len(), 1);
    for _ in 0..3 {
        key(&mut app, KeyCode::Char('t'));
    }
    assert!(render(&app).contains("2 lines · /fetched/ · last 24h"));
    key(&mut app, KeyCode::Char('t'));
    let screen = render(&app);
    assert!(
        screen.contains("2 lines · /fetched/ ·") && !screen.contains("last"),
        "{screen}"
    );
}

/// Rows sort by health: when a refresh reorders them, the selection stays on the service it was on
/// (on-call acts on the selection).
#[test]
fn the_selection_follows_its_service_when_a_refresh_reorders_the_rows() {
    let mut app = app(120, 30);
    app.tab = Tab::Health;
    let snap = |b: ServiceStatus| {
        snapshot(
            vec![pool("LOCAL_CPU", PoolState::Active)],
            vec![
                service("A_SVC", ServiceStatus::Running, 1),
                service("B_SVC", b, u32::from(b == ServiceStatus::Running)),
            ],
            vec![],
        )
    };
    connected(&mut app, snap(ServiceStatus::Running));
    key(&mut app, KeyCode::Char('f'));
    key(&mut app, KeyCode::Down);
    assert_eq!(
        app.selected_service().map(|s| s.name.clone()).as_deref(),
        Some("B_SVC")
    );
    // B fails and sorts first: still B.
    app.apply(Msg::Snapshot(Ok(snap(ServiceStatus::Failed))));
    assert_eq!(app.visible_services()[0].name, "B_SVC");
    assert_eq!(
        app.selected_service().map(|s| s.name.clone()).as_deref(),
        Some("B_SVC")
    );
}
