//! Keys as data: chords parsed from strings, bindings from the embedded defaults with the user's
//! overrides on top.

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;

/// One key with its modifiers, as written in the config (`"ctrl-c"`, `"G"`, `"shift-tab"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyChord {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl KeyChord {
    pub fn parse(text: &str) -> Result<KeyChord, String> {
        let expected = "expected a key such as \"q\", \"?\", \"enter\", \"ctrl-c\", \"alt-x\", \"shift-tab\" or \"f5\"";
        if text.is_empty() {
            return Err(format!("empty key: {expected}"));
        }
        let mut mods = KeyModifiers::NONE;
        let mut rest = text;
        // A lone "-" is a key; otherwise split off modifier prefixes.
        while let Some((head, tail)) = rest.split_once('-') {
            if tail.is_empty() {
                break;
            }
            match head.to_ascii_lowercase().as_str() {
                "ctrl" | "c" | "control" => mods |= KeyModifiers::CONTROL,
                "alt" | "a" | "meta" | "m" => mods |= KeyModifiers::ALT,
                "shift" | "s" => mods |= KeyModifiers::SHIFT,
                _ => return Err(format!("unknown modifier `{head}` in `{text}`: {expected}")),
            }
            rest = tail;
        }
        let lower = rest.to_ascii_lowercase();
        let code = match lower.as_str() {
            "enter" | "return" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "tab" if mods.contains(KeyModifiers::SHIFT) => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" | "pgup" => KeyCode::PageUp,
            "pagedown" | "pgdn" => KeyCode::PageDown,
            "space" => KeyCode::Char(' '),
            "backspace" => KeyCode::Backspace,
            "delete" | "del" => KeyCode::Delete,
            "insert" | "ins" => KeyCode::Insert,
            f if f.len() >= 2
                && f.starts_with('f')
                && f[1..].chars().all(|c| c.is_ascii_digit()) =>
            {
                match f[1..].parse::<u8>() {
                    Ok(n @ 1..=12) => KeyCode::F(n),
                    _ => return Err(format!("unknown key `{text}`: function keys are f1..f12")),
                }
            }
            _ => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => {
                        if mods.contains(KeyModifiers::SHIFT) && c.is_ascii_alphabetic() {
                            mods.remove(KeyModifiers::SHIFT);
                            KeyCode::Char(c.to_ascii_uppercase())
                        } else {
                            KeyCode::Char(c)
                        }
                    }
                    _ => return Err(format!("unknown key `{text}`: {expected}")),
                }
            }
        };
        Ok(KeyChord { code, mods })
    }

    /// The chord a terminal key event stands for, normalised the way `parse` normalises.
    pub fn from_event(ev: &KeyEvent) -> KeyChord {
        let mut mods =
            ev.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match ev.code {
            // Terminals report "G" as Char('G') with SHIFT; the config writes it as "G".
            KeyCode::Char(c) => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::Char(c)
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        KeyChord { code, mods }
    }
}

impl fmt::Display for KeyChord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("del"),
            KeyCode::Insert => f.write_str("ins"),
            KeyCode::F(n) => write!(f, "f{n}"),
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Bindings from keys to actions. Built from the defaults with the user's table on top: an
/// action the user lists gets exactly the user's keys, and a key the user binds is taken away from
/// whichever action had it by default.
#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: Vec<(KeyChord, Action)>,
}

impl Keymap {
    pub fn build(
        defaults: &BTreeMap<Action, Vec<KeyChord>>,
        user: &BTreeMap<Action, Vec<KeyChord>>,
    ) -> Keymap {
        // A key the user binds is taken from the default actions of the same place only: binding
        // `s` on the panes leaves the log view's `s` (save) alone, and the reverse.
        let user_keys = |overlay: bool| -> Vec<KeyChord> {
            user.iter()
                .filter(|(a, _)| a.overlay_only() == overlay)
                .flat_map(|(_, k)| k.iter().copied())
                .collect()
        };
        let (pane_keys, overlay_keys) = (user_keys(false), user_keys(true));
        let mut bindings = Vec::new();
        for action in Action::ALL {
            if let Some(keys) = user.get(&action) {
                bindings.extend(keys.iter().map(|k| (*k, action)));
            } else if let Some(keys) = defaults.get(&action) {
                let taken = if action.overlay_only() {
                    &overlay_keys
                } else {
                    &pane_keys
                };
                bindings.extend(
                    keys.iter()
                        .filter(|k| !taken.contains(k))
                        .map(|k| (*k, action)),
                );
            }
        }
        Keymap { bindings }
    }

    pub fn action(&self, chord: &KeyChord) -> Option<Action> {
        self.bindings
            .iter()
            .find(|(k, _)| k == chord)
            .map(|(_, a)| *a)
    }

    /// The action a chord means where only `among` apply (an overlay's own keys), so an
    /// overlay's key may repeat a pane's key.
    pub fn action_among(&self, chord: &KeyChord, among: &[Action]) -> Option<Action> {
        self.bindings
            .iter()
            .find(|(k, a)| k == chord && among.contains(a))
            .map(|(_, a)| *a)
    }

    pub fn keys(&self, action: Action) -> Vec<KeyChord> {
        self.bindings
            .iter()
            .filter(|(_, a)| *a == action)
            .map(|(k, _)| *k)
            .collect()
    }

    /// The keys of an action joined for display (`"q/esc"`), or `"unbound"`.
    pub fn label(&self, action: Action) -> String {
        let keys = self.keys(action);
        if keys.is_empty() {
            "unbound".into()
        } else {
            keys.iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join("/")
        }
    }

    /// The first key of an action, for the compact key bar.
    pub fn short(&self, action: Action) -> String {
        self.keys(action)
            .first()
            .map(|k| k.to_string())
            .unwrap_or_else(|| "unbound".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let c = |s| KeyChord::parse(s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c("q").code, KeyCode::Char('q'));
        assert_eq!(c("G").code, KeyCode::Char('G'));
        assert_eq!(c("shift-g").code, KeyCode::Char('G'));
        assert_eq!(c("ctrl-c").mods, KeyModifiers::CONTROL);
        assert_eq!(c("shift-tab").code, KeyCode::BackTab);
        assert_eq!(c("f12").code, KeyCode::F(12));
        assert_eq!(c("-").code, KeyCode::Char('-'));
        assert_eq!(c("space").code, KeyCode::Char(' '));
        assert!(KeyChord::parse("f13").is_err());
        assert!(KeyChord::parse("hyper-x").is_err());
        assert!(KeyChord::parse("qq").is_err());
        assert!(KeyChord::parse("").is_err());
    }

    #[test]
    fn terminal_events_match_config_chords() {
        let ev = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(
            KeyChord::from_event(&ev),
            KeyChord::parse("G").unwrap_or_else(|e| panic!("{e}"))
        );
        let ev = KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(
            KeyChord::from_event(&ev),
            KeyChord::parse("shift-tab").unwrap_or_else(|e| panic!("{e}"))
        );
    }

    #[test]
    fn user_binding_takes_the_key_from_the_default_action() {
        let k = |s| KeyChord::parse(s).unwrap_or_else(|e| panic!("{e}"));
        let defaults = BTreeMap::from([
            (Action::Back, vec![k("q"), k("esc")]),
            (Action::Quit, vec![k("ctrl-c")]),
        ]);
        let user = BTreeMap::from([(Action::Quit, vec![k("q")])]);
        let map = Keymap::build(&defaults, &user);
        assert_eq!(map.action(&k("q")), Some(Action::Quit));
        assert_eq!(map.action(&k("ctrl-c")), None);
        assert_eq!(map.action(&k("esc")), Some(Action::Back));
        assert_eq!(map.label(Action::Back), "esc");
    }
}
