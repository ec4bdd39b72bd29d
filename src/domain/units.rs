//! Human-readable sizes, counts and durations.

/// Bytes in SI units as the Hub shows them (`90.9 MB`, `784 MB`, `1.2 GB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    if v < 10.0 {
        format!("{v:.2} {unit}")
    } else if v < 100.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.0} {unit}")
    }
}

/// Parameter counts as model cards write them (`22.7M`, `109M`, `1.3B`).
pub fn count(n: u64) -> String {
    let v = n as f64;
    let (v, unit) = if n >= 1_000_000_000 {
        (v / 1e9, "B")
    } else if n >= 1_000_000 {
        (v / 1e6, "M")
    } else if n >= 1_000 {
        (v / 1e3, "k")
    } else {
        return n.to_string();
    };
    if v < 100.0 {
        format!("{v:.1}{unit}")
    } else {
        format!("{v:.0}{unit}")
    }
}

/// A duration in its two largest units (`42s`, `3m 05s`, `2h 10m`, `3d 4h`).
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A value from user data made safe to print on one terminal line: control characters (escapes,
/// bells, newlines, C1 codes) are shown as `\x1b`-style escapes instead of being sent to the
/// terminal, where an id such as `"\x1b]0;PWNED\x07"` would retitle the window.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    // Controls, and the bidirectional overrides that make a terminal show text in another order.
    let hidden =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hidden(c) {
            let n = c as u32;
            if n <= 0xff {
                out.push_str(&format!("\\x{n:02x}"));
            } else {
                out.push_str(&format!("\\u{{{n:x}}}"));
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_counts_durations() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(90_868_376), "90.9 MB");
        assert_eq!(bytes(783_771_000), "784 MB");
        assert_eq!(bytes(1_234_000_000), "1.23 GB");
        assert_eq!(count(22_713_216), "22.7M");
        assert_eq!(count(195_902_721), "196M");
        assert_eq!(count(950), "950");
        assert_eq!(duration(5), "5s");
        assert_eq!(duration(185), "3m 05s");
        assert_eq!(duration(7_800), "2h 10m");
        assert_eq!(duration(-3), "0s");
    }
}

/// Text from outside (logs, model cards, file names) without terminal escape sequences or other
/// control characters, so it cannot move the cursor or recolour the screen. Tabs become spaces.
pub fn strip_control(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ params final-byte; OSC: ESC ] ... BEL or ESC \; others: one char.
                match chars.peek() {
                    Some('[') => {
                        chars.next();
                        for c in chars.by_ref() {
                            if ('@'..='~').contains(&c) {
                                break;
                            }
                        }
                    }
                    Some(']') => {
                        chars.next();
                        while let Some(c) = chars.next() {
                            if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some())
                            {
                                break;
                            }
                        }
                    }
                    Some(_) => {
                        chars.next();
                    }
                    None => {}
                }
            }
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod strip_tests {
    use super::{printable, strip_control};

    #[test]
    fn escapes_and_controls_are_removed() {
        assert_eq!(strip_control("a\u{1b}[1;31mred\u{1b}[0m b"), "ared b");
        assert_eq!(strip_control("t\u{1b}]0;title\u{7}x"), "tx");
        assert_eq!(strip_control("t\u{1b}]8;;http://x\u{1b}\\y"), "ty");
        assert_eq!(strip_control("bell\u{7}\rcr\ttab"), "bellcr tab");
        assert_eq!(strip_control("résumé ✓"), "résumé ✓");
    }

    #[test]
    fn printable_escapes_what_a_terminal_would_obey() {
        assert_eq!(printable("N0001"), "N0001");
        assert_eq!(
            printable("\u{1b}]0;PWNED\u{7}\u{1b}[2J"),
            "\\x1b]0;PWNED\\x07\\x1b[2J"
        );
        assert_eq!(printable("a\nb\u{9b}c"), "a\\x0ab\\x9bc");
    }
}
