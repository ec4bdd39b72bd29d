//! Every pane in its loading, empty, data and error states, the overlays, and the small-terminal
//! message, drawn on a fixed-size TestBackend and compared with reviewed snapshots.

mod support;

use hugflake::app::state::{Link, Msg, Tab};
use hugflake::domain::{JobState, PoolState, ServiceStatus, Stage};
use hugflake::keys::action::Action;
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
    app.update(Action::Down);
    app.update(Action::Down);
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
    let mut app = app(120, 50);
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
    app.theme = hugflake::config::ThemeName::Colorblind;
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

fn hub_page(ids: &[(&str, &str, &str)]) -> hugflake::hub::api::SearchPage {
    hugflake::hub::api::SearchPage {
        models: ids
            .iter()
            .map(|(id, task, lib)| hugflake::hub::api::ModelSummary {
                id: (*id).into(),
                pipeline_tag: Some((*task).into()),
                library_name: Some((*lib).into()),
                downloads: Some(1000),
                likes: Some(3),
                last_modified: None,
                tags: vec![],
            })
            .collect(),
        next: Some("http://hub/next".into()),
    }
}

fn ner_details() -> hugflake::hub::details::ModelDetails {
    let info: hugflake::hub::api::ModelInfo = serde_json::from_value(serde_json::json!({
        "id": "d4data/biomedical-ner-all",
        "sha": "0123456789abcdef0123456789abcdef01234567",
        "pipeline_tag": "token-classification",
        "library_name": "transformers",
        "gated": false,
        "downloads": 123456,
        "likes": 140,
        "lastModified": "2024-06-01T10:00:00.000Z",
        "tags": ["transformers", "license:apache-2.0"],
        "config": {"architectures": ["DistilBertForTokenClassification"]},
        "safetensors": {"total": 66_403_584u64}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let tree: Vec<hugflake::hub::api::TreeEntry> = serde_json::from_value(serde_json::json!([
        {"type": "file", "oid": "a", "size": 850, "path": "config.json"},
        {"type": "file", "oid": "b", "size": 134, "path": "model.safetensors",
         "lfs": {"oid": "c", "size": 265_667_456u64}},
        {"type": "file", "oid": "d", "size": 134, "path": "pytorch_model.bin",
         "lfs": {"oid": "e", "size": 265_700_000u64}},
        {"type": "file", "oid": "f", "size": 2100, "path": "README.md"}
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    hugflake::hub::details::ModelDetails::build(
        &info,
        &tree,
        Some("# biomedical-ner-all\nRecognises 107 biomedical entities.\n".into()),
        Some(("LOCAL_CPU", 17.6)),
    )
}

#[test]
fn candidates_with_hub_results_and_details() {
    let mut app = started(150, 36);
    connected(
        &mut app,
        snapshot(vec![pool("LOCAL_CPU", PoolState::Idle)], vec![], vec![]),
    );
    catalog(&mut app);
    let generation = app.hub.generation;
    app.apply(Msg::HubPage {
        generation,
        append: false,
        result: Ok(hub_page(&[
            (
                "d4data/biomedical-ner-all",
                "token-classification",
                "transformers",
            ),
            (
                "openai/clip-vit-base-patch32",
                "zero-shot-image-classification",
                "transformers",
            ),
        ])),
    });
    // d4data is a catalog row the Hub also found: one row, with the Hub's details.
    for _ in 0..3 {
        app.update(Action::Down);
    }
    app.apply(Msg::HubDetails {
        handle: "d4data/biomedical-ner-all".into(),
        result: Ok(Box::new(ner_details())),
    });
    assert_snapshot!(render(&app));
}

#[test]
fn candidates_when_the_hub_is_unreachable() {
    let mut app = started(120, 20);
    catalog(&mut app);
    let generation = app.hub.generation;
    app.apply(Msg::HubPage {
        generation,
        append: false,
        result: Err("cannot reach the Hub at https://huggingface.co: connection failed".into()),
    });
    app.apply(Msg::HubDetails {
        handle: "sentence-transformers/all-MiniLM-L6-v2".into(),
        result: Err("cannot reach the Hub at https://huggingface.co: connection failed".into()),
    });
    assert_snapshot!(render(&app));
}

#[test]
fn candidates_offline() {
    let mut app = app(120, 20);
    app.hub = hugflake::app::search::HubSearch::new(Some("HF_HUB_OFFLINE is set".into()));
    catalog(&mut app);
    assert_snapshot!(render(&app));
}

#[test]
fn imports_detail_shows_stages_file_progress_and_log() {
    let mut app = app(120, 32);
    app.tab = Tab::Imports;
    let running = job("ALL_MINILM_L6_V2", JobState::Running, Stage::Download, None);
    connected(&mut app, snapshot(vec![], vec![], vec![running.clone()]));
    let files = vec![
        hugflake::domain::FileProgress {
            path: "model.safetensors".into(),
            size: 90_868_376,
            done: 40_000_000,
            reused: false,
        },
        hugflake::domain::FileProgress {
            path: "tokenizer.json".into(),
            size: 466_247,
            done: 466_247,
            reused: true,
        },
    ];
    app.apply(Msg::JobDetail {
        id: running.id.clone(),
        result: Ok(Box::new(job_detail(running, Some(Stage::Download), files))),
    });
    assert_snapshot!(render(&app));
}

#[test]
fn import_form_shows_fields_plan_and_verdicts() {
    let mut app = app(120, 32);
    catalog(&mut app);
    connected(
        &mut app,
        snapshot(vec![pool("LOCAL_CPU", PoolState::Idle)], vec![], vec![]),
    );
    app.update(Action::Import);
    assert_snapshot!(render(&app));
}

#[test]
fn confirmation_before_suspending_a_service() {
    let mut app = app(120, 24);
    app.tab = Tab::Health;
    connected(&mut app, health_data());
    app.update(Action::FocusNext);
    app.update(Action::Suspend);
    assert_snapshot!(render(&app));
}

#[test]
fn import_form_on_snowflake_shows_the_statements_and_specs() {
    let mut app = app(140, 40);
    catalog(&mut app);
    let mut snap = snapshot(vec![pool("ML_CPU_POOL", PoolState::Idle)], vec![], vec![]);
    snap.status.kind = hugflake::domain::PlatformKind::Snowflake;
    snap.status.location = "SIM12345 (https://sim12345.snowflakecomputing.com)".into();
    snap.status.details = vec![("schema".into(), "ML.PUBLIC".into())];
    snap.status.default_pool = None;
    snap.status.registry = Some(hugflake::domain::RegistryPlace {
        database: "ML".into(),
        schema: "PUBLIC".into(),
        warehouse: None,
    });
    snap.status.pid = None;
    app.platform_kind = hugflake::domain::PlatformKind::Snowflake;
    app.apply(Msg::Link(Link::Connected {
        kind: hugflake::domain::PlatformKind::Snowflake,
        description: "Snowflake connection `sim`".into(),
    }));
    app.flash = None;
    app.now = ago(5);
    app.apply(Msg::Snapshot(Ok(snap)));
    app.now = now();
    app.update(Action::Import);
    let screen = render(&app);
    assert!(screen.contains("SELECT SYSTEM$IMPORT_MODEL(?)"));
    assert!(screen.contains("model_name: ML.PUBLIC.ALL_MINILM_L6_V2"));
    // Autocapture is left out of the spec (off, as snowflake-ml-python leaves it) and the plan says so.
    assert!(screen.contains("autocapture off") && !screen.contains("autocapture:"));
    assert_snapshot!(screen);
}

fn query_app(functions: Vec<hugflake::domain::Function>) -> hugflake::app::state::App {
    let mut app = app(120, 32);
    app.tab = Tab::Query;
    connected(
        &mut app,
        snapshot(
            vec![pool("LOCAL_CPU", PoolState::Active)],
            vec![service("MINI_SVC", ServiceStatus::Running, 1)],
            vec![],
        ),
    );
    app.apply(Msg::Functions {
        service: "MINI_SVC".into(),
        result: Ok(functions),
    });
    app
}

fn query_result(
    kind: hugflake::app::query::QueryKind,
    inputs: &[&str],
    outputs: Vec<serde_json::Value>,
) -> hugflake::app::query::QueryResult {
    hugflake::app::query::QueryResult {
        service: "MINI_SVC".into(),
        kind,
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: outputs.clone(),
        latency_ms: 12.0,
        ranking: vec![],
        cache_hits: vec![],
        cache_searched: None,
        thumbnail: None,
        png: None,
        raw_request: serde_json::json!({"data": [[0, inputs.first().copied().unwrap_or("")]]}),
        raw_response: serde_json::json!({"data": outputs}),
    }
}

#[test]
fn query_embeddings_compared_with_a_cosine_matrix() {
    use hugflake::app::query::QueryKind;
    let mut app = query_app(hugflake::platform::protocol::functions_for(
        "sentence-similarity",
    ));
    app.query.input = "fever in a child\nchild with fever\nbroken wrist".into();
    app.query.result = Some(query_result(
        QueryKind::Embeddings,
        &["fever in a child", "child with fever", "broken wrist"],
        vec![
            serde_json::json!({"output": [0.6, 0.8, 0.0]}),
            serde_json::json!({"output": [0.8, 0.6, 0.0]}),
            serde_json::json!({"output": [0.0, 0.0, 1.0]}),
        ],
    ));
    let screen = render(&app);
    assert!(screen.contains("0.960★"), "{screen}");
    assert_snapshot!(screen);
}

#[test]
fn query_entities_are_highlighted_and_listed() {
    use hugflake::app::query::QueryKind;
    let mut app = query_app(hugflake::platform::protocol::functions_for(
        "token-classification",
    ));
    app.query.result = Some(query_result(
        QueryKind::Entities,
        &["Amoxicillin for otitis media."],
        vec![serde_json::json!({"outputs": [
            {"entity": "B-DRUG", "score": 0.91, "index": 1, "word": "amoxicillin", "start": 0, "end": 11},
            {"entity": "B-DISEASE", "score": 0.88, "index": 3, "word": "otitis", "start": 16, "end": 22},
            {"entity": "I-DISEASE", "score": 0.84, "index": 4, "word": "media", "start": 23, "end": 28}
        ]})],
    ));
    let screen = render(&app);
    assert!(
        screen.contains("Amoxicillin⟨DRUG⟩ for otitis media⟨DISEASE⟩."),
        "{screen}"
    );
    assert_snapshot!(screen);
}

#[test]
fn query_zero_shot_shows_bars_the_picture_and_the_research_notice() {
    use hugflake::app::query::QueryKind;
    let mut app = query_app(hugflake::platform::protocol::functions_for(
        "zero-shot-image-classification",
    ));
    let mut r = query_result(
        QueryKind::Images,
        &[
            "assets/demo/chest-xray-synthetic.png",
            "chest X-ray, brain MRI",
        ],
        vec![serde_json::json!({"labels": ["chest X-ray", "brain MRI"], "scores": [0.8, 0.2]})],
    );
    r.thumbnail = Some((4, 4, vec![200; 48]));
    app.query.result = Some(r);
    let screen = render(&app);
    assert!(
        screen.contains("research use only, not for diagnosis"),
        "{screen}"
    );
    assert!(screen.contains("80.0%") && screen.contains("▀"));
    assert_snapshot!(screen);
}

#[test]
fn health_shows_the_selected_service_instances_sparklines_and_log() {
    let mut app = app(140, 40);
    app.tab = Tab::Health;
    connected(
        &mut app,
        snapshot(
            vec![pool("LOCAL_CPU", PoolState::Active)],
            vec![service("ALL_MINILM_L6_V2_SVC", ServiceStatus::Running, 1)],
            vec![],
        ),
    );
    app.apply(Msg::ServiceDetail(Box::new(service_detail(
        "ALL_MINILM_L6_V2_SVC",
    ))));
    let screen = render(&app);
    assert!(screen.contains("restarts 1 · last exit 137"), "{screen}");
    assert!(screen.contains("p50 latency 21.0 ms"), "{screen}");
    assert_snapshot!(screen);
}

#[test]
fn logs_view_filters_with_a_regex_and_highlights() {
    let mut app = app(120, 24);
    app.tab = Tab::Health;
    connected(
        &mut app,
        snapshot(
            vec![pool("LOCAL_CPU", PoolState::Active)],
            vec![service("ALL_MINILM_L6_V2_SVC", ServiceStatus::Running, 1)],
            vec![],
        ),
    );
    app.apply(Msg::ServiceDetail(Box::new(service_detail(
        "ALL_MINILM_L6_V2_SVC",
    ))));
    app.update(Action::Logs);
    let key = |c| crossterm::event::KeyEvent::new(c, crossterm::event::KeyModifiers::NONE);
    app.handle_key(&key(crossterm::event::KeyCode::Char('/')));
    for c in "signal|ready".chars() {
        app.handle_key(&key(crossterm::event::KeyCode::Char(c)));
    }
    app.handle_key(&key(crossterm::event::KeyCode::Enter));
    let screen = render(&app);
    assert!(screen.contains("2 lines · /signal|ready/"), "{screen}");
    assert!(!screen.contains("model loaded"));
    assert_snapshot!(screen);
}

#[test]
fn read_only_hides_every_action() {
    let mut app = app(120, 24);
    app.read_only = true;
    app.tab = Tab::Health;
    connected(&mut app, health_data());
    app.update(Action::Suspend);
    let screen = render(&app);
    assert!(screen.contains("READ-ONLY"));
    assert!(screen.contains("read-only mode"));
    assert!(!screen.contains("s suspend"));
    assert!(!matches!(
        app.overlay,
        hugflake::app::state::Overlay::Confirm { .. }
    ));
    assert_snapshot!(screen);
}

#[test]
fn health_tree_rolls_a_failed_container_up_to_its_model() {
    let mut app = app(120, 30);
    app.tab = Tab::Health;
    let mut snap = snapshot(
        vec![pool("LOCAL_CPU", PoolState::Active)],
        vec![service("ALL_MINILM_L6_V2_SVC", ServiceStatus::Running, 1)],
        vec![],
    );
    snap.models = vec![hugflake::domain::RegisteredModel {
        name: "ALL_MINILM_L6_V2".into(),
        database: None,
        schema: None,
        default_version: Some("V1".into()),
        versions: vec!["V1".into()],
        source: Some("sentence-transformers/all-MiniLM-L6-v2".into()),
        comment: None,
        created_on: ago(4000),
    }];
    connected(&mut app, snap);
    let mut d = service_detail("ALL_MINILM_L6_V2_SVC");
    d.containers[0].status = hugflake::domain::InstanceStatus::Failed;
    app.apply(Msg::ServiceDetail(Box::new(d)));
    app.update(Action::Tree);
    let screen = render(&app);
    assert!(screen.contains("✖ model ALL_MINILM_L6_V2"), "{screen}");
    assert!(screen.contains("✖ version V1"), "{screen}");
    assert!(screen.contains("└ ● pool LOCAL_CPU"), "{screen}");
    assert_snapshot!(screen);
}

#[test]
fn with_a_graphics_protocol_the_picture_cells_are_left_to_the_terminal() {
    use hugflake::app::query::QueryKind;
    let mut app = query_app(hugflake::platform::protocol::functions_for(
        "zero-shot-image-classification",
    ));
    let mut r = query_result(
        QueryKind::Images,
        &[
            "assets/demo/chest-xray-synthetic.png",
            "chest X-ray, brain MRI",
        ],
        vec![serde_json::json!({"labels": ["chest X-ray", "brain MRI"], "scores": [0.8, 0.2]})],
    );
    r.thumbnail = Some((4, 4, vec![200; 48]));
    r.png = Some(vec![0x89, b'P', b'N', b'G']);
    app.query.result = Some(r);
    app.picture = hugflake::app::picture::Protocol::Kitty;
    let screen = render(&app);
    assert!(!screen.contains("▀"), "{screen}");
    assert!(screen.contains("80.0%"));
    let area = hugflake::ui::query::picture_area(&app).unwrap_or_else(|| panic!("no picture area"));
    assert!(area.width > 10 && area.height > 5, "{area:?}");
    // Anything over the pane takes the picture away.
    app.update(Action::Help);
    assert!(hugflake::ui::query::picture_area(&app).is_none());
}

#[test]
fn query_search_over_the_embedding_cache_lists_note_ids() {
    use hugflake::app::query::{CacheSearched, QueryKind};
    use hugflake::batch::cache::Hit;
    let mut app = query_app(hugflake::platform::protocol::functions_for(
        "sentence-similarity",
    ));
    app.query.search = true;
    app.query.input = "wheezing at night".into();
    let mut r = query_result(
        QueryKind::Embeddings,
        &["wheezing at night"],
        vec![serde_json::json!({"output": [0.6, 0.8, 0.0]})],
    );
    r.cache_hits = vec![
        Hit {
            id: "N000417".into(),
            score: 0.912,
        },
        Hit {
            id: "N001288".into(),
            score: 0.874,
        },
    ];
    r.cache_searched = Some(CacheSearched {
        notes: 2000,
        model: "ALL_MINILM_L6_V2".into(),
        version: "V1".into(),
    });
    app.query.result = Some(r);
    let screen = render(&app);
    assert!(
        screen.contains("top notes of 2000 in the embedding cache (ALL_MINILM_L6_V2 V1)"),
        "{screen}"
    );
    assert!(screen.contains(" 1. 0.912 N000417"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn imports_show_batch_runs_with_progress() {
    use hugflake::domain::BatchRun;
    let mut app = app(140, 30);
    app.tab = Tab::Imports;
    connected(
        &mut app,
        snapshot(
            vec![],
            vec![],
            vec![job("ALL_MINILM_L6_V2", JobState::Done, Stage::Ready, None)],
        ),
    );
    let at = |secs: i64| app.now - chrono::TimeDelta::seconds(secs);
    let run = |kind: &str, state: JobState, done: u64, total: u64, started: i64| BatchRun {
        id: format!("{kind}-{done}"),
        kind: kind.into(),
        platform: "local".into(),
        service: "ALL_MINILM_L6_V2_SVC".into(),
        input: "/home/ml/notes.csv".into(),
        state,
        done,
        failed: 0,
        skipped: 3,
        total,
        unchanged: 0,
        started_on: at(started),
        updated_on: at(1),
        finished_on: (state != JobState::Running).then(|| at(started - 13)),
        message: match state {
            JobState::Running => None,
            JobState::Cancelled => {
                Some("the process stopped before the run finished (killed?)".into())
            }
            _ => Some("embedded 2000 note(s), 0 already current, 0 failed".into()),
        },
    };
    app.batch_runs = vec![
        run("embed", JobState::Running, 1200, 2000, 8),
        run("embed", JobState::Cancelled, 400, 2000, 600),
        run("embed", JobState::Done, 2000, 2000, 900),
    ];
    let screen = render(&app);
    assert!(screen.contains("Batch runs (3)"), "{screen}");
    assert!(screen.contains("1200/2000"), "{screen}");
    assert_snapshot!(screen);
}

/// On-call screens are often 80×24: every pane there, with data. Columns give way by priority
/// (endpoints and uptimes first, names never cut) and panels keep a gap between them.
mod at_80x24 {
    use super::*;

    fn health_app() -> hugflake::app::state::App {
        let mut app = app(80, 24);
        app.tab = Tab::Health;
        connected(&mut app, health_data());
        app.update(Action::FocusNext);
        app.update(Action::Down);
        app.update(Action::Down);
        app.apply(Msg::ServiceDetail(Box::new(service_detail(
            "ALL_MINILM_L6_V2_SVC",
        ))));
        app
    }

    #[test]
    fn health() {
        let screen = render(&health_app());
        // Whole names, not ALL_MINILM_L.
        assert!(screen.contains("ALL_MINILM_L6_V2_SVC"), "{screen}");
        assert!(!screen.contains("http://127.0 "), "{screen}");
        assert_snapshot!(screen);
    }

    #[test]
    fn candidates() {
        let mut app = app(80, 24);
        catalog(&mut app);
        assert_snapshot!(render(&app));
    }

    #[test]
    fn imports() {
        let mut app = app(80, 24);
        app.tab = Tab::Imports;
        connected(
            &mut app,
            snapshot(
                vec![],
                vec![],
                vec![
                    job("ALL_MINILM_L6_V2", JobState::Running, Stage::Download, None),
                    job(
                        "BIOMEDICAL_NER_ALL",
                        JobState::Failed,
                        Stage::Verify,
                        Some("pytorch_model.bin: sha256 mismatch"),
                    ),
                ],
            ),
        );
        assert_snapshot!(render(&app));
    }

    #[test]
    fn query() {
        let mut app = app(80, 24);
        app.tab = Tab::Query;
        connected(&mut app, health_data());
        assert_snapshot!(render(&app));
    }

    /// `:compare` at 80×24: both columns, each latency, search mode's rank changes.
    #[test]
    fn query_compare() {
        use hugflake::platform::compare::{Comparison, InputDiff, SearchDiff, Side};
        let mut app = app(80, 24);
        connected(&mut app, health_data());
        app.update(Action::Command);
        for c in "compare all_minilm_l6_v2_svc minilm_int8_svc".chars() {
            app.handle_event(&crossterm::event::Event::Key(
                crossterm::event::KeyEvent::new(
                    crossterm::event::KeyCode::Char(c),
                    crossterm::event::KeyModifiers::NONE,
                ),
            ));
        }
        app.handle_event(&crossterm::event::Event::Key(
            crossterm::event::KeyEvent::new(
                crossterm::event::KeyCode::Enter,
                crossterm::event::KeyModifiers::NONE,
            ),
        ));
        let side = |name: &str, ms: f64| Side {
            service: name.into(),
            method: "ENCODE".into(),
            latency_ms: ms,
            outputs: vec![],
        };
        app.apply(Msg::Compared(Ok(Box::new(Comparison {
            a: side("ALL_MINILM_L6_V2_SVC", 365.0),
            b: side("MINILM_INT8_SVC", 330.0),
            inputs: vec![InputDiff::Embeddings {
                cosine: Some(0.9997),
                dims: (384, 384),
            }],
            search: Some(SearchDiff {
                a: vec![(2, 0.648), (7, 0.504), (1, 0.449), (9, 0.449), (4, 0.413)],
                b: vec![(2, 0.649), (7, 0.504), (9, 0.451), (1, 0.448), (12, 0.41)],
            }),
        }))));
        assert_snapshot!(render(&app));
    }

    #[test]
    fn the_smallest_screen_keeps_names_and_states() {
        let mut app = health_app();
        app.resize(60, 15);
        let screen = render(&app);
        assert!(screen.contains("ALL_MINILM_L6_V2_SVC"), "{screen}");
        assert_snapshot!(screen);
    }
}
