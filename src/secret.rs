//! A string that must never reach the screen, a log or a panic message.
//!
//! Every `Secret` made in this process is also remembered (its value, in memory only) so that text
//! on its way out — the log file, a panic report, an error printed at exit — can be scrubbed of it
//! by `redact`, even when a bug formatted the value into a message.

use std::borrow::Cow;
use std::fmt;
use std::sync::Mutex;

/// Values shorter than this are not scrubbed (they would match ordinary words).
const MIN_REDACTED: usize = 8;
/// At most this many values are remembered (the oldest go first): service tokens change at every
/// instance start, and a long-running TUI must not grow without bound.
const MAX_REMEMBERED: usize = 256;
/// What a scrubbed value is replaced with.
pub const MASK: &str = "********";

static KNOWN: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn remember(value: &str) {
    if value.len() < MIN_REDACTED {
        return;
    }
    if let Ok(mut known) = KNOWN.lock() {
        if known.iter().any(|k| k == value) {
            return;
        }
        if known.len() >= MAX_REMEMBERED {
            known.remove(0);
        }
        known.push(value.to_string());
    }
}

/// `text` with every secret this process knows replaced by `MASK`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let Ok(known) = KNOWN.lock() else {
        return Cow::Borrowed(text);
    };
    let mut out = Cow::Borrowed(text);
    // Longest first, so a secret that contains another is masked whole.
    let mut values: Vec<&String> = known.iter().filter(|k| text.contains(k.as_str())).collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in values {
        if out.contains(v.as_str()) {
            out = Cow::Owned(out.replace(v.as_str(), MASK));
        }
    }
    out
}

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        let value = value.into();
        remember(&value);
        Secret(value)
    }

    /// The value itself, for the one place that sends it (an HTTP header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A fresh random token: 32 bytes from the OS, hex-encoded.
    pub fn random() -> Result<Secret, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Secret::new(
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        ))
    }

    /// Compares in time independent of where the first difference is.
    pub fn matches(&self, other: &str) -> bool {
        let a = self.0.as_bytes();
        let b = other.as_bytes();
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(********) ********");
        assert!(s.matches("hunter2"));
        assert!(!s.matches("hunter3"));
        assert!(!s.matches("hunter"));
        let r = Secret::random().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.expose().len(), 64);
    }

    #[test]
    fn known_values_are_scrubbed_from_any_text() {
        let pat = Secret::new("pat-canary-5d1e0c9b");
        let long = Secret::new("pat-canary-5d1e0c9b-and-more");
        let _short = Secret::new("abc");
        let text = format!(
            "header Snowflake Token=\"{}\" then {} and abc",
            long.expose(),
            pat.expose()
        );
        assert_eq!(
            redact(&text),
            "header Snowflake Token=\"********\" then ******** and abc"
        );
        assert!(matches!(redact("nothing secret here"), Cow::Borrowed(_)));
    }
}
