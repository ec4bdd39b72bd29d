//! `hugflake status --watch`: the platform's state as a stream of changes, one line each, for a
//! terminal beside the dashboard or a pipe into a pager or an alerter.

use std::collections::BTreeMap;
use std::time::Duration;

use color_eyre::eyre::Result;
use serde::Serialize;

use crate::platform::{self as engine, Snapshot};
use crate::session::Context;

/// One change. `from` is absent on the first look (what is there when watching starts).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub at: chrono::DateTime<chrono::Utc>,
    /// `platform`, `pool`, `service` or `job`.
    pub kind: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What is compared between two looks: each object's state as words, and why, by (kind, name).
type States = BTreeMap<(&'static str, String), (String, Option<String>)>;

fn states(snap: &Snapshot) -> States {
    let mut out = States::new();
    for p in &snap.pools {
        out.insert(
            ("pool", p.name.clone()),
            (p.state.to_string(), p.status_message.clone()),
        );
    }
    for s in snap.services.iter().filter(|s| !s.is_job) {
        out.insert(
            ("service", s.name.clone()),
            (
                format!(
                    "{} ({}/{} ready)",
                    s.status_label(),
                    s.ready_instances,
                    s.target_instances
                ),
                s.message.clone(),
            ),
        );
    }
    for j in &snap.jobs {
        out.insert(
            ("job", format!("{} ({})", j.id, j.model)),
            (j.state.to_string(), j.error.clone()),
        );
    }
    out
}

/// The changes from `before` (None: the first look) to `now`; objects that went away say `gone`.
pub fn changes(
    before: Option<&States>,
    now: &States,
    at: chrono::DateTime<chrono::Utc>,
) -> Vec<Change> {
    let mut out = Vec::new();
    for ((kind, name), (state, message)) in now {
        let was = before.and_then(|b| b.get(&(*kind, name.clone())));
        if was.map(|(s, _)| s) == Some(state) {
            continue;
        }
        out.push(Change {
            at,
            kind,
            name: name.clone(),
            from: match (before, was) {
                (None, _) => None,
                (Some(_), None) => Some("absent".into()),
                (Some(_), Some((s, _))) => Some(s.clone()),
            },
            to: state.clone(),
            message: message.clone(),
        });
    }
    for ((kind, name), (state, _)) in before.into_iter().flatten() {
        if !now.contains_key(&(*kind, name.clone())) {
            out.push(Change {
                at,
                kind,
                name: name.clone(),
                from: Some(state.clone()),
                to: "gone".into(),
                message: None,
            });
        }
    }
    out
}

fn say(c: &Change, json: bool) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string(c)?)?;
    } else {
        let units = crate::domain::units::printable;
        outln!(
            "{}  {:<8} {}  {}{}",
            c.at.format("%H:%M:%S"),
            c.kind,
            units(&c.name),
            match &c.from {
                Some(f) => format!("{f} → {}", c.to),
                None => c.to.clone(),
            },
            c.message
                .as_deref()
                .map(|m| format!("  ({})", units(m)))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

/// Watches until interrupted (or, with `fail_on_unhealthy`, until a fault: exit 3).
pub async fn run(ctx: &Context, json: bool, fail_on_unhealthy: bool) -> Result<()> {
    let opener = ctx.opener();
    let (mut client, opened) = opener.open().await?;
    eprintln!("{}", opened.describe());
    let every = Duration::from_secs_f64(ctx.config.ui.refresh_secs.clamp(0.2, 60.0));
    let mut before: Option<States> = None;
    let mut away = false;
    // Polls in a row that found the platform away (a fault under --fail-on-unhealthy at 3).
    let mut misses = 0u32;
    loop {
        let now = chrono::Utc::now();
        match engine::snapshot(client.as_ref()).await {
            Ok(snap) => {
                misses = 0;
                if away {
                    away = false;
                    say(
                        &Change {
                            at: now,
                            kind: "platform",
                            name: snap.status.location.clone(),
                            from: Some("UNREACHABLE".into()),
                            to: "REACHABLE".into(),
                            message: None,
                        },
                        json,
                    )?;
                }
                let states = states(&snap);
                for c in changes(before.as_ref(), &states, now) {
                    say(&c, json)?;
                }
                before = Some(states);
                let faults = crate::cli::platform::unhealthy(&snap);
                if fail_on_unhealthy && !faults.is_empty() {
                    for f in &faults {
                        eprintln!("unhealthy: {f}");
                    }
                    std::process::exit(3);
                }
            }
            Err(e) => {
                misses += 1;
                if !away {
                    away = true;
                    say(
                        &Change {
                            at: now,
                            kind: "platform",
                            name: "platform".into(),
                            from: Some("REACHABLE".into()),
                            to: "UNREACHABLE".into(),
                            message: Some(e.to_string()),
                        },
                        json,
                    )?;
                }
                if fail_on_unhealthy && misses >= 3 {
                    eprintln!("unhealthy: the platform is unreachable: {e}");
                    std::process::exit(3);
                }
                // A restarted local daemon has a new address and token: find it again (never
                // start one: a watcher only looks).
                if opener.choice == crate::config::PlatformChoice::Local
                    && let Ok((c, _)) =
                        crate::platform::local::lifecycle::connect(&opener.data_dir).await
                {
                    client = std::sync::Arc::new(c);
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(items: &[(&'static str, &str, &str)]) -> States {
        items
            .iter()
            .map(|(k, n, s)| ((*k, n.to_string()), (s.to_string(), None)))
            .collect()
    }

    #[test]
    fn only_changes_are_said_and_what_went_away_too() {
        let at = chrono::Utc::now();
        let first = st(&[
            ("pool", "P", "IDLE"),
            ("service", "S", "RUNNING (1/1 ready)"),
        ]);
        let all = changes(None, &first, at);
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|c| c.from.is_none()));
        assert!(changes(Some(&first), &first, at).is_empty());
        let next = st(&[
            ("pool", "P", "IDLE"),
            ("service", "S", "FAILED (0/1 ready)"),
            ("job", "j1", "RUNNING"),
        ]);
        let c = changes(Some(&first), &next, at);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].name, "j1");
        assert_eq!(c[0].from.as_deref(), Some("absent"));
        assert_eq!(c[1].from.as_deref(), Some("RUNNING (1/1 ready)"));
        assert_eq!(c[1].to, "FAILED (0/1 ready)");
        let gone = changes(Some(&next), &st(&[("pool", "P", "IDLE")]), at);
        assert_eq!(
            gone.iter().map(|c| c.to.as_str()).collect::<Vec<_>>(),
            ["gone", "gone"]
        );
    }
}
