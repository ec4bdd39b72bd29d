//! A time window for logs, events and metrics: `--since 10m`, `--until 2026-12-06T10:00:00Z`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// `[since, until]`, either end open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl Window {
    /// From the command line's `--since` and `--until`, relative to `now`.
    pub fn parse(
        since: Option<&str>,
        until: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Window, String> {
        let w = Window {
            since: since.map(|s| when(s, now)).transpose()?,
            until: until.map(|s| when(s, now)).transpose()?,
        };
        if let (Some(a), Some(b)) = (w.since, w.until)
            && a > b
        {
            return Err(format!(
                "--since ({}) is after --until ({})",
                a.to_rfc3339(),
                b.to_rfc3339()
            ));
        }
        Ok(w)
    }

    pub fn is_open(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }
}

/// `10m`, `2h`, `3d`, `1w` ago, or a time: RFC 3339, `YYYY-MM-DD HH:MM[:SS]` (UTC) or a date.
pub fn when(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Some(unit) = s.chars().last()
        && s.len() > 1
        && s[..s.len() - 1].bytes().all(|b| b.is_ascii_digit())
    {
        let n: i64 = s[..s.len() - 1].parse().map_err(|_| bad(s))?;
        let d = match unit {
            's' => chrono::Duration::try_seconds(n),
            'm' => chrono::Duration::try_minutes(n),
            'h' => chrono::Duration::try_hours(n),
            'd' => chrono::Duration::try_days(n),
            'w' => chrono::Duration::try_weeks(n),
            _ => None,
        }
        .ok_or_else(|| bad(s))?;
        return now.checked_sub_signed(d).ok_or_else(|| bad(s));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(|| bad(s));
    }
    Err(bad(s))
}

fn bad(s: &str) -> String {
    format!(
        "`{s}`: give a duration ago (30s, 10m, 2h, 3d, 1w) or a time (2026-12-06T10:00:00Z, \"2026-12-06 10:00\" UTC, 2026-12-06)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_parse() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let at = |s: &str| when(s, now).map(|t| t.to_rfc3339()).unwrap_or_else(|e| e);
        assert_eq!(at("10m"), "2026-12-06T11:50:00+00:00");
        assert_eq!(at("2h"), "2026-12-06T10:00:00+00:00");
        assert_eq!(at("1w"), "2026-11-29T12:00:00+00:00");
        assert_eq!(at("2026-12-06T09:30:00+01:00"), "2026-12-06T08:30:00+00:00");
        assert_eq!(at("2026-12-06 09:30"), "2026-12-06T09:30:00+00:00");
        assert_eq!(at("2026-12-05"), "2026-12-05T00:00:00+00:00");
        assert!(at("yesterday").contains("give a duration"));
        assert!(at("10y").contains("give a duration"));
        assert!(at("99999999999999999999m").contains("give a duration"));
        let w = Window::parse(Some("2h"), Some("1h"), now).unwrap_or_default();
        assert!(w.contains(now - chrono::Duration::minutes(90)));
        assert!(!w.contains(now - chrono::Duration::minutes(30)));
        assert!(Window::parse(Some("1h"), Some("2h"), now).is_err());
        assert!(Window::default().is_open());
    }
}
