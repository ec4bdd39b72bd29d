//! Shared test helpers: fixed data, rendering to text, and a daemon under test.
#![allow(dead_code)]

pub mod hub_server;
pub mod sim_setup;
pub mod snowflake_server;
pub mod spiked;

use chrono::{DateTime, TimeZone, Utc};
use hugflake::app::state::{App, Msg};
use hugflake::config::Config;
use hugflake::domain::*;
use hugflake::platform::Snapshot;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

pub fn ago(secs: i64) -> DateTime<Utc> {
    now() - chrono::Duration::seconds(secs)
}

pub fn app(width: u16, height: u16) -> App {
    let config = Config::defaults().unwrap_or_else(|e| panic!("{e}"));
    App::new(&config, now(), Rect::new(0, 0, width, height))
}

/// An app whose Hub search has started (as the event loop does at launch).
pub fn started(width: u16, height: u16) -> App {
    let mut a = app(width, height);
    a.start();
    a
}

pub fn pool(name: &str, state: PoolState) -> ComputePool {
    ComputePool {
        name: name.into(),
        state,
        min_nodes: 1,
        max_nodes: 1,
        instance_family: "LOCAL_HOST".into(),
        vcpu: 2.0,
        memory_gib: 17.6,
        gpu: 0,
        gpu_type: None,
        gpu_memory_gib: 0.0,
        active_nodes: u32::from(state != PoolState::Suspended),
        idle_nodes: u32::from(state == PoolState::Idle),
        num_services: 0,
        num_jobs: 0,
        auto_suspend_secs: None,
        auto_resume: true,
        created_on: ago(185),
        resumed_on: None,
        updated_on: None,
        comment: None,
        error_code: None,
        status_message: None,
    }
}

pub fn service(name: &str, status: ServiceStatus, ready: u32) -> Service {
    Service {
        name: name.into(),
        database: None,
        schema: None,
        status,
        compute_pool: "LOCAL_CPU".into(),
        current_instances: 1,
        target_instances: 1,
        min_instances: 1,
        max_instances: 1,
        auto_suspend_secs: None,
        auto_suspended: false,
        cold_start_ms: None,
        ready_instances: ready,
        model: Some("ALL_MINILM_L6_V2".into()),
        model_version: Some("V1".into()),
        endpoint: Some("http://127.0.0.1:47900".into()),
        is_job: false,
        created_on: ago(3_700),
        resumed_on: None,
        suspended_on: None,
        precision: None,
        calibration: None,
        message: None,
    }
}

pub fn job(model: &str, state: JobState, stage: Stage, error: Option<&str>) -> JobSummary {
    JobSummary {
        id: format!("job-{}", model.to_lowercase()),
        handle: "sentence-transformers/all-MiniLM-L6-v2".into(),
        model: model.into(),
        version: "V1".into(),
        target: "LOCAL_CPU".into(),
        state,
        stage: Some(stage),
        created_on: ago(95),
        updated_on: ago(5),
        finished_on: None,
        error: error.map(String::from),
    }
}

pub fn snapshot(
    pools: Vec<ComputePool>,
    services: Vec<Service>,
    jobs: Vec<JobSummary>,
) -> Snapshot {
    Snapshot {
        status: PlatformStatus {
            kind: PlatformKind::Local,
            location: "~/.local/share/hugflake/daemon.sock".into(),
            version: "0.1.0".into(),
            pid: Some(4242),
            started_at: Some(ago(600)),
            details: vec![],
            default_pool: Some("LOCAL_CPU".into()),
            registry: None,
        },
        pools,
        services,
        models: vec![],
        jobs,
        fetched_at: ago(5),
    }
}

/// An app connected to a local platform whose data arrived 5 s ago.
pub fn connected(app: &mut App, snap: Snapshot) {
    app.apply(Msg::Link(hugflake::app::state::Link::Connected {
        kind: PlatformKind::Local,
        description: "connected to the local daemon (pid 4242)".into(),
    }));
    app.flash = None;
    app.now = ago(5);
    app.apply(Msg::Snapshot(Ok(snap)));
    app.now = now();
}

pub fn catalog(app: &mut App) {
    let rows = hugflake::domain::catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    app.apply(Msg::Candidates(Ok(rows)));
}

/// Draws the app on a test terminal and returns the screen as text, one line per row.
pub fn render(app: &App) -> String {
    let size = app.size;
    let mut terminal =
        Terminal::new(TestBackend::new(size.width, size.height)).unwrap_or_else(|e| panic!("{e}"));
    terminal
        .draw(|f| hugflake::ui::draw(f, app))
        .unwrap_or_else(|e| panic!("{e}"));
    let buf = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A job's detail as the platform answers it, with the stages up to `running` done.
pub fn job_detail(
    summary: JobSummary,
    running: Option<Stage>,
    files: Vec<FileProgress>,
) -> JobDetail {
    let spec = ImportSpec::with_defaults(&summary.handle, &summary.target);
    let stages = Stage::ALL
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let state = match running {
                Some(r) if *s < r => StageState::Done,
                Some(r) if *s == r => StageState::Running,
                None => StageState::Done,
                _ => StageState::Pending,
            };
            StageRecord {
                stage: *s,
                state,
                started_on: (state != StageState::Pending).then(|| ago(90 - i as i64 * 10)),
                finished_on: (state == StageState::Done).then(|| ago(85 - i as i64 * 10)),
                bytes_done: 0,
                bytes_total: None,
                error: None,
            }
        })
        .collect();
    let log = vec![
        JobLogLine {
            seq: 0,
            at: ago(90),
            line: "resolve: sentence-transformers/all-MiniLM-L6-v2@main is commit 1110a243fdf4; licence apache-2.0; not gated".into(),
        },
        JobLogLine {
            seq: 1,
            at: ago(88),
            line: "resolve: task sentence-similarity; 11 files, 90.9 MB of weights; needs ~0.36 GiB per instance, 17.6 GiB free on LOCAL_CPU".into(),
        },
    ];
    JobDetail {
        summary,
        spec,
        stages,
        files,
        log,
    }
}

/// A running service's insides: one READY container that restarted once, metrics, a log.
pub fn service_detail(name: &str) -> hugflake::app::state::ServiceDetail {
    hugflake::app::state::ServiceDetail {
        name: name.into(),
        containers: vec![Container {
            service: name.into(),
            service_status: ServiceStatus::Running,
            instance_id: 0,
            instance_status: InstanceStatus::Ready,
            container_name: "model-inference".into(),
            status: InstanceStatus::Ready,
            message: None,
            restart_count: 1,
            start_time: Some(ago(300)),
            last_exit_code: Some(137),
            pid: Some(4343),
            memory_bytes: Some(160_000_000),
            calibration: None,
        }],
        endpoints: vec![Endpoint {
            name: "inference".into(),
            port: 47900,
            protocol: "HTTP".into(),
            is_public: true,
            ingress_url: "127.0.0.1:47900".into(),
        }],
        metrics: (0..12)
            .map(|i| MetricSample {
                at: ago(60 - i * 5),
                interval_secs: 5.0,
                requests: (i * 3 % 7) as u64,
                errors: u64::from(i == 7),
                p50_ms: Some(10.0 + i as f64),
                p95_ms: Some(20.0 + i as f64),
                p99_ms: Some(30.0 + i as f64),
                queue_depth: 0,
                memory_bytes: 150_000_000 + i as u64 * 1_000_000,
            })
            .collect(),
        logs: vec![
            LogLine {
                seq: 0,
                at: ago(310),
                instance_id: 0,
                container: "supervisor".into(),
                line: "instance 0 started (pid 4242)".into(),
            },
            LogLine {
                seq: 1,
                at: ago(305),
                instance_id: 0,
                container: "supervisor".into(),
                line: "instance 0 was killed by signal 9; restarting in 1 s".into(),
            },
            LogLine {
                seq: 2,
                at: ago(300),
                instance_id: 0,
                container: "model-inference".into(),
                line: "model loaded in 177 ms".into(),
            },
            LogLine {
                seq: 3,
                at: ago(299),
                instance_id: 0,
                container: "supervisor".into(),
                line: "instance 0 READY".into(),
            },
        ],
        events: [
            (310, "INFO", "instance 0 started (pid 4242)"),
            (
                305,
                "ERROR",
                "instance 0 was killed by signal 9; restarting in 1 s",
            ),
            (299, "INFO", "instance 0 READY"),
        ]
        .into_iter()
        .map(|(secs, severity, message)| ServiceEvent {
            at: ago(secs),
            severity: severity.into(),
            name: "CONTAINER.STATUS_CHANGE".into(),
            instance_id: Some(0),
            container: Some("model-inference".into()),
            message: message.into(),
        })
        .collect(),
        requests: None,
        problems: vec![],
    }
}

/// Every file under `dir` whose bytes contain one of the canaries: (file, canary).
pub fn leaks(dir: &std::path::Path, canaries: &[&str]) -> Vec<(std::path::PathBuf, String)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                for c in canaries {
                    if bytes.windows(c.len()).any(|w| w == c.as_bytes()) {
                        found.push((p.clone(), c.to_string()));
                    }
                }
            }
        }
    }
    found
}
