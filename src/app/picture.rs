//! Which picture protocol the terminal speaks. The escapes themselves are drawn by `ui::picture`.

use crate::paths::Env;

/// How the Query pane shows a picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Kitty,
    Iterm,
    HalfBlocks,
}

impl Protocol {
    /// What the environment says the terminal understands. Inside tmux or screen the protocols
    /// do not pass through: half-blocks.
    pub fn detect(env: &dyn Env) -> Protocol {
        if env.var("TMUX").is_some() || env.var("TERM").is_some_and(|t| t.starts_with("screen")) {
            return Protocol::HalfBlocks;
        }
        let term = env.var("TERM").unwrap_or_default();
        let program = env.var("TERM_PROGRAM").unwrap_or_default();
        if env.var("KITTY_WINDOW_ID").is_some()
            || term.contains("kitty")
            || matches!(program.as_str(), "WezTerm" | "ghostty")
        {
            Protocol::Kitty
        } else if program == "iTerm.app" {
            Protocol::Iterm
        } else {
            Protocol::HalfBlocks
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Vars(HashMap<&'static str, &'static str>);
    impl Env for Vars {
        fn var(&self, key: &str) -> Option<String> {
            self.0.get(key).map(|v| v.to_string())
        }
    }

    #[test]
    fn detection_follows_the_environment() {
        let v = |pairs: &[(&'static str, &'static str)]| Vars(pairs.iter().copied().collect());
        assert_eq!(
            Protocol::detect(&v(&[("TERM", "xterm-kitty")])),
            Protocol::Kitty
        );
        assert_eq!(
            Protocol::detect(&v(&[("TERM_PROGRAM", "iTerm.app")])),
            Protocol::Iterm
        );
        assert_eq!(
            Protocol::detect(&v(&[("TERM", "xterm-256color")])),
            Protocol::HalfBlocks
        );
        assert_eq!(
            Protocol::detect(&v(&[
                ("TERM", "xterm-kitty"),
                ("TMUX", "/tmp/tmux-0/default")
            ])),
            Protocol::HalfBlocks
        );
    }
}
