//! How many instances a service runs, as SPCS has it: `MIN_INSTANCES`, `MAX_INSTANCES` and
//! `AUTO_SUSPEND_SECS`, the change `ALTER SERVICE … SET` asks for, and the local daemon's
//! autoscaling rule (scale to zero when idle, out when calls queue, in when idle again).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A service's instance bounds and idle suspension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scaling {
    pub min_instances: u32,
    pub max_instances: u32,
    /// Seconds without calls after which a service with `min_instances = 0` suspends; 0: never;
    /// `None`: the model-serving default ([`MODEL_SERVICE_AUTO_SUSPEND_SECS`]).
    #[serde(default)]
    pub auto_suspend_secs: Option<u64>,
}

/// A model service with MIN_INSTANCES 0 and no AUTO_SUSPEND_SECS suspends after 30 minutes
/// without traffic (docs.snowflake.com, developer-guide/snowflake-ml/inference/service-management,
/// "Scale-to-Zero"; snowflake-ml-python's `create_service` leaves the time to the server).
pub const MODEL_SERVICE_AUTO_SUSPEND_SECS: u64 = 1800;

/// Snowflake takes AUTO_SUSPEND_SECS 0 (never) or at least 300 (docs.snowflake.com,
/// sql-reference/sql/create-service).
pub const SNOWFLAKE_MIN_AUTO_SUSPEND_SECS: u64 = 300;

impl Scaling {
    /// SPCS's rule: MAX_INSTANCES at least 1, MIN_INSTANCES at most MAX_INSTANCES. Refused, never
    /// adjusted.
    pub fn check(&self) -> Result<(), String> {
        if self.max_instances == 0 {
            return Err(
                "max instances is 0: a service runs at least one instance (MAX_INSTANCES ≥ 1)"
                    .into(),
            );
        }
        if self.min_instances > self.max_instances {
            return Err(format!(
                "min instances ({}) is above max instances ({}): MIN_INSTANCES must not exceed MAX_INSTANCES",
                self.min_instances, self.max_instances
            ));
        }
        Ok(())
    }

    /// Instances kept while the service runs: MIN_INSTANCES, or one when it is 0 (a service with
    /// MIN_INSTANCES 0 starts with one and suspends when idle, as SPCS does).
    pub fn base(&self) -> u32 {
        self.min_instances.max(1)
    }

    /// Whether idleness suspends the service.
    pub fn suspends_when_idle(&self) -> Option<Duration> {
        if self.min_instances > 0 {
            return None;
        }
        match self
            .auto_suspend_secs
            .unwrap_or(MODEL_SERVICE_AUTO_SUSPEND_SECS)
        {
            0 => None,
            s => Some(Duration::from_secs(s)),
        }
    }

    /// `min 0 · max 2 · suspends after 60 s idle`.
    pub fn summary(&self) -> String {
        let idle = match self.suspends_when_idle() {
            Some(d) => format!("suspends after {} s idle", d.as_secs()),
            None if self.min_instances == 0 => "never suspends (AUTO_SUSPEND_SECS 0)".into(),
            None => "keeps MIN_INSTANCES running".into(),
        };
        format!(
            "min {} · max {} · {idle}",
            self.min_instances, self.max_instances
        )
    }
}

/// What `ALTER SERVICE … SET` changes; `None` keeps the current value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_instances: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_suspend_secs: Option<u64>,
}

impl ScalingChange {
    /// Snowflake's own rule, checked before asking: AUTO_SUSPEND_SECS 0 or at least 300.
    pub fn check_snowflake(&self) -> Result<(), String> {
        match self.auto_suspend_secs {
            Some(s) if s > 0 && s < SNOWFLAKE_MIN_AUTO_SUSPEND_SECS => Err(format!(
                "AUTO_SUSPEND_SECS {s}: Snowflake takes 0 (never) or at least {SNOWFLAKE_MIN_AUTO_SUSPEND_SECS} seconds"
            )),
            _ => Ok(()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.min_instances.is_none()
            && self.max_instances.is_none()
            && self.auto_suspend_secs.is_none()
    }

    /// The scaling after the change, checked.
    pub fn apply(&self, now: Scaling) -> Result<Scaling, String> {
        if self.is_empty() {
            return Err("nothing to change: give --min, --max or --auto-suspend-secs".into());
        }
        let next = Scaling {
            min_instances: self.min_instances.unwrap_or(now.min_instances),
            max_instances: self.max_instances.unwrap_or(now.max_instances),
            auto_suspend_secs: self.auto_suspend_secs.or(now.auto_suspend_secs),
        };
        next.check()?;
        Ok(next)
    }

    /// One line per changed value with what it will do, for the confirmation.
    pub fn plan(&self, service: &str, now: Scaling) -> Result<Vec<String>, String> {
        let next = self.apply(now)?;
        let mut lines = Vec::new();
        let secs = |s: Option<u64>| match s {
            Some(v) => v.to_string(),
            None => format!("unset ({MODEL_SERVICE_AUTO_SUSPEND_SECS} for models)"),
        };
        if next.min_instances != now.min_instances {
            lines.push(format!(
                "MIN_INSTANCES {} → {}: {}",
                now.min_instances,
                next.min_instances,
                if next.min_instances == 0 {
                    match next.suspends_when_idle() {
                        Some(d) => format!(
                            "the service suspends after {} s without calls and resumes on the next call (that call waits for the cold start)",
                            d.as_secs()
                        ),
                        None => "one instance keeps running (AUTO_SUSPEND_SECS 0: never suspends)"
                            .to_string(),
                    }
                } else {
                    format!(
                        "{} instance(s) kept running while the service runs",
                        next.min_instances
                    )
                }
            ));
        }
        if next.max_instances != now.max_instances {
            lines.push(format!(
                "MAX_INSTANCES {} → {}: {}",
                now.max_instances,
                next.max_instances,
                if next.max_instances > now.max_instances {
                    "more instances may start when calls queue (each takes the pool's memory)"
                        .to_string()
                } else {
                    format!("instances above {} are stopped", next.max_instances)
                }
            ));
        }
        if next.auto_suspend_secs != now.auto_suspend_secs {
            lines.push(format!(
                "AUTO_SUSPEND_SECS {} → {}: {}",
                secs(now.auto_suspend_secs),
                secs(next.auto_suspend_secs),
                match next.suspends_when_idle() {
                    Some(d) => format!("suspends after {} s without calls", d.as_secs()),
                    None if next.min_instances > 0 => {
                        "has no effect while MIN_INSTANCES is above 0".into()
                    }
                    None => "never suspends for idleness".into(),
                }
            ));
        }
        if lines.is_empty() {
            return Err(format!(
                "nothing to change: {service} already has {}",
                now.summary()
            ));
        }
        Ok(lines)
    }
}

/// The local daemon's autoscaling thresholds (`[daemon]` in the config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// A call that waited this long in an instance's queue counts as "the queue is deep".
    pub queue_ms: f64,
    /// How long the queue stays deep before another instance starts.
    pub deep_for: Duration,
    /// How long without calls before an instance above the base is stopped.
    pub idle_for: Duration,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            queue_ms: 200.0,
            deep_for: Duration::from_secs(3),
            idle_for: Duration::from_secs(60),
        }
    }
}

/// What the daemon sees of a running service at one tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observed {
    /// Instances wanted now (running or starting).
    pub target: u32,
    /// Calls in progress.
    pub in_flight: u64,
    /// Since when the queue has been deep without a break, if it is.
    pub deep_for: Option<Duration>,
    /// Since the last call ended (zero while calls are in progress).
    pub idle_for: Duration,
    /// Memory of the pool not taken by running services, in GiB.
    pub free_gib: f64,
    /// Memory one more instance needs, in GiB.
    pub per_instance_gib: f64,
}

/// What to do at this tick.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Hold,
    /// Start instances until `to` run.
    Out {
        to: u32,
        why: String,
    },
    /// Stop instances until `to` run.
    In {
        to: u32,
        why: String,
    },
    /// Stop every instance; the next call resumes the service.
    Suspend {
        why: String,
    },
    /// The queue is deep but no instance may start; said once per episode.
    Capped {
        why: String,
    },
}

pub fn decide(s: &Scaling, p: &Policy, o: &Observed) -> Decision {
    let idle = o.in_flight == 0;
    if idle
        && let Some(after) = s.suspends_when_idle()
        && o.idle_for >= after
    {
        return Decision::Suspend {
            why: format!(
                "no calls for {} s (AUTO_SUSPEND_SECS {}): suspended; the next call resumes it",
                o.idle_for.as_secs(),
                after.as_secs()
            ),
        };
    }
    if o.target > s.max_instances {
        return Decision::In {
            to: s.max_instances,
            why: format!("MAX_INSTANCES is {}", s.max_instances),
        };
    }
    if o.target < s.base() {
        return Decision::Out {
            to: s.base(),
            why: format!("MIN_INSTANCES is {}", s.min_instances),
        };
    }
    if let Some(deep) = o.deep_for
        && deep >= p.deep_for
    {
        if o.target >= s.max_instances {
            return Decision::Capped {
                why: format!(
                    "calls have queued over {:.0} ms for {} s, but the service runs MAX_INSTANCES ({})",
                    p.queue_ms,
                    deep.as_secs(),
                    s.max_instances
                ),
            };
        }
        if o.free_gib < o.per_instance_gib {
            return Decision::Capped {
                why: format!(
                    "calls have queued over {:.0} ms for {} s, but another instance needs ~{:.2} GiB and the pool has {:.2} GiB free",
                    p.queue_ms,
                    deep.as_secs(),
                    o.per_instance_gib,
                    o.free_gib.max(0.0)
                ),
            };
        }
        return Decision::Out {
            to: o.target + 1,
            why: format!(
                "calls have queued over {:.0} ms for {} s",
                p.queue_ms,
                deep.as_secs()
            ),
        };
    }
    if idle && o.target > s.base() && o.idle_for >= p.idle_for {
        return Decision::In {
            to: o.target - 1,
            why: format!("no calls for {} s", o.idle_for.as_secs()),
        };
    }
    Decision::Hold
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scaling(min: u32, max: u32, idle: Option<u64>) -> Scaling {
        Scaling {
            min_instances: min,
            max_instances: max,
            auto_suspend_secs: idle,
        }
    }

    fn seen(target: u32) -> Observed {
        Observed {
            target,
            in_flight: 0,
            deep_for: None,
            idle_for: Duration::ZERO,
            free_gib: 10.0,
            per_instance_gib: 1.0,
        }
    }

    #[test]
    fn an_idle_service_with_min_zero_suspends_after_its_time_and_not_before() {
        let s = scaling(0, 1, Some(30));
        let p = Policy::default();
        let mut o = seen(1);
        o.idle_for = Duration::from_secs(29);
        assert_eq!(decide(&s, &p, &o), Decision::Hold);
        o.idle_for = Duration::from_secs(30);
        assert!(matches!(decide(&s, &p, &o), Decision::Suspend { .. }));
        // A call in progress holds it up.
        o.in_flight = 1;
        assert_eq!(decide(&s, &p, &o), Decision::Hold);
        // MIN_INSTANCES 1, or AUTO_SUSPEND_SECS 0: never.
        o.in_flight = 0;
        assert_eq!(decide(&scaling(1, 1, Some(30)), &p, &o), Decision::Hold);
        assert_eq!(decide(&scaling(0, 1, Some(0)), &p, &o), Decision::Hold);
        // Unset: the model-serving default of 30 minutes.
        assert_eq!(decide(&scaling(0, 1, None), &p, &o), Decision::Hold);
        o.idle_for = Duration::from_secs(MODEL_SERVICE_AUTO_SUSPEND_SECS);
        assert!(matches!(
            decide(&scaling(0, 1, None), &p, &o),
            Decision::Suspend { .. }
        ));
    }

    #[test]
    fn a_deep_queue_adds_one_instance_within_max_and_the_pools_memory() {
        let s = scaling(1, 3, None);
        let p = Policy::default();
        let mut o = seen(1);
        o.in_flight = 8;
        o.deep_for = Some(Duration::from_secs(2));
        assert_eq!(
            decide(&s, &p, &o),
            Decision::Hold,
            "not deep for long enough"
        );
        o.deep_for = Some(Duration::from_secs(3));
        assert!(matches!(decide(&s, &p, &o), Decision::Out { to: 2, .. }));
        o.target = 3;
        assert!(
            matches!(decide(&s, &p, &o), Decision::Capped { ref why } if why.contains("MAX_INSTANCES (3)"))
        );
        o.target = 2;
        o.free_gib = 0.5;
        assert!(
            matches!(decide(&s, &p, &o), Decision::Capped { ref why } if why.contains("0.50 GiB free"))
        );
    }

    #[test]
    fn extra_instances_stop_when_idle_down_to_the_base() {
        let s = scaling(0, 3, Some(600));
        let p = Policy::default();
        let mut o = seen(3);
        o.idle_for = Duration::from_secs(59);
        assert_eq!(decide(&s, &p, &o), Decision::Hold);
        o.idle_for = Duration::from_secs(60);
        assert!(matches!(decide(&s, &p, &o), Decision::In { to: 2, .. }));
        o.target = 1;
        assert_eq!(
            decide(&s, &p, &o),
            Decision::Hold,
            "one stays until suspension"
        );
        // A lowered MAX_INSTANCES stops the extra ones at once, busy or not.
        let mut busy = seen(3);
        busy.in_flight = 4;
        assert!(matches!(
            decide(&scaling(1, 1, None), &p, &busy),
            Decision::In { to: 1, .. }
        ));
        // A raised MIN_INSTANCES starts them.
        assert!(matches!(
            decide(&scaling(2, 3, None), &p, &seen(1)),
            Decision::Out { to: 2, .. }
        ));
    }

    #[test]
    fn a_change_is_checked_and_says_what_it_will_do() {
        let now = scaling(1, 1, None);
        let change = ScalingChange {
            min_instances: Some(0),
            max_instances: Some(2),
            auto_suspend_secs: Some(300),
        };
        let plan = change.plan("S", now).unwrap_or_default();
        assert_eq!(plan.len(), 3, "{plan:?}");
        assert!(plan[0].starts_with("MIN_INSTANCES 1 → 0"));
        assert!(plan[2].contains("suspends after 300 s"));
        let bad = ScalingChange {
            min_instances: Some(3),
            ..Default::default()
        };
        assert!(
            bad.plan("S", now)
                .is_err_and(|e| e.contains("must not exceed"))
        );
        assert!(
            ScalingChange::default()
                .plan("S", now)
                .is_err_and(|e| e.contains("nothing to change"))
        );
        let same = ScalingChange {
            max_instances: Some(1),
            ..Default::default()
        };
        assert!(
            same.plan("S", now)
                .is_err_and(|e| e.contains("already has"))
        );
    }
}
