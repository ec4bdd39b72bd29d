//! The TUI at scale: 10,000 candidates, 500 services, 1,000 import jobs and a 100,000-line service
//! log. For each screen it times a frame (`ui::draw` into a 140×40 buffer, as the terminal backend
//! gets it) and key-to-screen (a key handled, then the frame drawn), p50/p99/max over several
//! hundred frames, and the process's resident memory once the data is loaded.
//!
//!     cargo bench --bench ui -- [--frames 400]
//!
//! `scripts/bench-ui.sh` runs it with the cold-start and idle-CPU measurements of the real binary.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use hugflake::app::state::{App, Msg, Tab};
use hugflake::domain::*;
use hugflake::keys::action::Action;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use support::*;

const WIDTH: u16 = 140;
const HEIGHT: u16 = 40;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// Draws `frames` frames, pressing `keys` in turn before each; prints frame and key-to-screen times.
/// The last screen must show `expect` (so the numbers are for the screen they claim to be).
fn measure(name: &str, app: &mut App, keys: &[KeyCode], frames: usize, expect: &str) {
    let mut terminal = match Terminal::new(TestBackend::new(WIDTH, HEIGHT)) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    let mut draw = |app: &App| {
        let t = Instant::now();
        if let Err(e) = terminal.draw(|f| hugflake::ui::draw(f, app)) {
            panic!("{e}");
        }
        t.elapsed()
    };
    for _ in 0..10 {
        draw(app);
    }
    let mut frame = Vec::with_capacity(frames);
    let mut key_to_screen = Vec::with_capacity(frames);
    for i in 0..frames {
        let t = Instant::now();
        app.handle_key(&key(keys[i % keys.len()]));
        let handled = t.elapsed();
        let drawn = draw(app);
        frame.push(drawn);
        key_to_screen.push(handled + drawn);
    }
    let screen = render(app);
    assert!(
        screen.contains(expect),
        "{name}: the screen does not show {expect:?}:\n{screen}"
    );
    frame.sort();
    key_to_screen.sort();
    println!(
        "{name:<44} frame p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms | key-to-screen p50 {:>6.2} ms  p99 {:>6.2} ms",
        percentile(&frame, 0.5),
        percentile(&frame, 0.99),
        percentile(&frame, 1.0),
        percentile(&key_to_screen, 0.5),
        percentile(&key_to_screen, 0.99),
    );
}

fn candidates(n: usize) -> Vec<Candidate> {
    let base = hugflake::domain::catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    (0..n)
        .map(|i| {
            let mut c = base[i % base.len()].clone();
            c.handle = format!("org-{}/clinical-model-{i:05}", i % 97);
            c.parameters = Some(1_000_000 + i as u64 * 7_919);
            c
        })
        .collect()
}

fn main() {
    let frames = arg("--frames", 400);
    let before = rss_mib();
    println!(
        "hugflake UI benchmark: {WIDTH}x{HEIGHT}, {frames} frames per screen, release build\n"
    );

    // Candidates: 10,000 rows, moving down, paging, filtering.
    let mut app = started(WIDTH, HEIGHT);
    app.apply(Msg::Candidates(Ok(candidates(10_000))));
    measure(
        "Candidates, 10,000 rows (j/k, PgDn)",
        &mut app,
        &[
            KeyCode::Char('j'),
            KeyCode::PageDown,
            KeyCode::Char('j'),
            KeyCode::Char('k'),
        ],
        frames,
        "clinical-model-0",
    );

    // Health: 500 services over 20 pools, the list and the roll-up tree.
    let pools: Vec<ComputePool> = (0..20)
        .map(|i| pool(&format!("POOL_{i:02}"), PoolState::Active))
        .collect();
    let services: Vec<Service> = (0..500)
        .map(|i| {
            let status = match i % 50 {
                0 => ServiceStatus::Failed,
                1 => ServiceStatus::Pending,
                2 => ServiceStatus::Suspended,
                _ => ServiceStatus::Running,
            };
            let mut s = service(
                &format!("MODEL_{i:03}_SVC"),
                status,
                u32::from(status == ServiceStatus::Running),
            );
            s.compute_pool = format!("POOL_{:02}", i % 20);
            s.model = Some(format!("MODEL_{i:03}"));
            s
        })
        .collect();
    let jobs: Vec<JobSummary> = (0..1_000)
        .map(|i| {
            let (state, stage) = match i % 10 {
                0 => (JobState::Failed, Stage::Download),
                1 => (JobState::Running, Stage::Verify),
                _ => (JobState::Done, Stage::Ready),
            };
            let mut j = job(
                &format!("MODEL_{i:04}"),
                state,
                stage,
                (state == JobState::Failed).then_some("the Hub answered 503"),
            );
            j.id = format!("job-{i:05}");
            j
        })
        .collect();
    let mut app = started(WIDTH, HEIGHT);
    connected(&mut app, snapshot(pools, services, jobs));
    app.tab = Tab::Health;
    app.apply(Msg::ServiceDetail(Box::new(service_detail(
        "MODEL_003_SVC",
    ))));
    measure(
        "Health, 500 services (j/k)",
        &mut app,
        &[KeyCode::Char('j'), KeyCode::Char('j'), KeyCode::Char('k')],
        frames,
        "MODEL_0",
    );
    app.update(Action::Tree);
    measure(
        "Health tree, 500 services (j/k)",
        &mut app,
        &[KeyCode::Char('j'), KeyCode::Char('k')],
        frames,
        "MODEL_0",
    );
    app.update(Action::Tree);

    // Imports: 1,000 jobs.
    app.tab = Tab::Imports;
    measure(
        "Imports, 1,000 jobs (j/k)",
        &mut app,
        &[KeyCode::Char('j'), KeyCode::Char('j'), KeyCode::Char('k')],
        frames,
        "MODEL_0",
    );

    // A service log of 100,000 lines, full screen: following, scrolling, then filtered.
    app.tab = Tab::Health;
    let selected = app
        .selected_service()
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let mut detail = service_detail(&selected);
    detail.logs = (0..100_000u64)
        .map(|i| LogLine {
            seq: i,
            at: ago(100_000 - i as i64),
            instance_id: (i % 2) as u32,
            container: "model-inference".into(),
            line: format!(
                "POST /encode rows={} ms={} status=200 request {i}",
                i % 32 + 1,
                i % 17 + 3
            ),
        })
        .collect();
    app.apply(Msg::ServiceDetail(Box::new(detail)));
    app.update(Action::Logs);
    measure(
        "Log view, 100,000 lines (k/j scroll)",
        &mut app,
        &[KeyCode::Char('k'), KeyCode::Char('k'), KeyCode::Char('j')],
        frames,
        "request 99",
    );
    app.handle_key(&key(KeyCode::Char('/')));
    for c in "rows=3[12]".chars() {
        app.handle_key(&key(KeyCode::Char(c)));
    }
    app.handle_key(&key(KeyCode::Enter));
    measure(
        "Log view, 100,000 lines, regex filter",
        &mut app,
        &[KeyCode::Char('k'), KeyCode::Char('j')],
        frames,
        "lines · /rows=3[12]/",
    );
    println!(
        "\nresident memory: {:.0} MiB before the data, {:.0} MiB with all of it loaded",
        before,
        rss_mib()
    );
}
