//! The `:` command bar: commands, parsing and completion.

use crate::config::ThemeName;

use super::state::Tab;

/// A command typed after `:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Go(Tab),
    Help,
    Refresh,
    Theme(ThemeName),
    Quit,
    /// Hub sort order (API name).
    Sort(&'static str),
    /// Set or clear (None) a Hub search filter.
    HubFilter(HubField, Option<String>),
    /// Talk to another platform.
    Platform(crate::domain::PlatformKind),
    /// Query a model version directly (None: the selected service again).
    Version(Option<(String, String)>),
}

/// The Hub search filters the command bar sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubField {
    Task,
    Author,
    Library,
}

/// Every command with its arguments and a description, for completion and help.
pub const COMMANDS: &[(&str, &str)] = &[
    ("candidates", "go to Candidates"),
    ("imports", "go to Imports"),
    ("health", "go to Health"),
    ("query", "go to Query"),
    ("help", "show the key bindings"),
    ("refresh", "refresh platform data now"),
    ("theme default", "the default colours"),
    ("theme colorblind", "the colour-blind-safe palette"),
    ("sort downloads", "Hub results by downloads"),
    ("sort likes", "Hub results by likes"),
    ("sort trending", "Hub results by trending score"),
    ("sort modified", "Hub results by last modified"),
    ("sort created", "Hub results by creation date"),
    (
        "task ",
        "Hub: only this task (e.g. token-classification); none clears",
    ),
    (
        "author ",
        "Hub: only this author or organisation; none clears",
    ),
    (
        "library ",
        "Hub: only this library (e.g. sentence-transformers); none clears",
    ),
    (
        "version ",
        "Query: call MODEL VERSION directly (warehouse on Snowflake); none: services",
    ),
    (
        "platform local",
        "the local platform (a daemon on this machine)",
    ),
    (
        "platform snowflake",
        "Snowflake ([platform] snowflake_connection)",
    ),
    ("quit", "leave hugflake (also :q)"),
];

pub fn parse(line: &str) -> Result<Command, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["candidates" | "c"] => Ok(Command::Go(Tab::Candidates)),
        ["imports" | "i"] => Ok(Command::Go(Tab::Imports)),
        ["health" | "h"] => Ok(Command::Go(Tab::Health)),
        ["query"] => Ok(Command::Go(Tab::Query)),
        ["help"] => Ok(Command::Help),
        ["refresh" | "r"] => Ok(Command::Refresh),
        ["theme", "default"] => Ok(Command::Theme(ThemeName::Default)),
        ["theme", "colorblind"] => Ok(Command::Theme(ThemeName::Colorblind)),
        ["theme", other] => Err(format!(
            "unknown theme `{other}`: try `default` or `colorblind`"
        )),
        ["theme"] => Err("`:theme` needs a name: default or colorblind".into()),
        ["quit" | "q" | "q!" | "qa"] => Ok(Command::Quit),
        ["version"] | ["version", "none"] => Ok(Command::Version(None)),
        ["version", m, v] => Ok(Command::Version(Some((
            m.to_ascii_uppercase(),
            v.to_ascii_uppercase(),
        )))),
        ["version", ..] => Err(
            "`:version` takes a model and a version (e.g. :version ALL_MINILM_L6_V2 V1), or none"
                .into(),
        ),
        ["platform", "local"] => Ok(Command::Platform(crate::domain::PlatformKind::Local)),
        ["platform", "snowflake"] => Ok(Command::Platform(crate::domain::PlatformKind::Snowflake)),
        ["platform", ..] => Err("`:platform` takes local or snowflake".into()),
        ["sort", key] => super::search::sort_api(key)
            .map(Command::Sort)
            .ok_or_else(|| {
                format!("unknown sort `{key}`: try downloads, likes, trending, modified or created")
            }),
        ["sort"] => {
            Err("`:sort` needs an order: downloads, likes, trending, modified, created".into())
        }
        [field @ ("task" | "author" | "library"), rest @ ..] => {
            let field = match *field {
                "task" => HubField::Task,
                "author" => HubField::Author,
                _ => HubField::Library,
            };
            let value = rest.join(" ");
            Ok(Command::HubFilter(
                field,
                (!value.is_empty() && value != "none").then_some(value),
            ))
        }
        [] => Err("empty command: try :help".into()),
        _ => Err(format!(
            "unknown command `{}`: Tab completes, :help lists the keys",
            line.trim()
        )),
    }
}

/// Commands that start with what was typed.
pub fn matches(input: &str) -> Vec<(&'static str, &'static str)> {
    let typed = input.trim_start();
    COMMANDS
        .iter()
        .filter(|(name, _)| name.starts_with(typed))
        .copied()
        .collect()
}

/// Tab completion: the longest common prefix of the matches (the whole command when one matches).
pub fn complete(input: &str) -> Option<String> {
    let found = matches(input);
    let first = found.first()?.0;
    let common = found.iter().fold(first.len(), |len, (name, _)| {
        first
            .bytes()
            .zip(name.bytes())
            .take(len)
            .take_while(|(a, b)| a == b)
            .count()
    });
    let completed = &first[..common];
    (completed.len() > input.trim_start().len()).then(|| completed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_clearly() {
        assert_eq!(parse("health"), Ok(Command::Go(Tab::Health)));
        assert_eq!(parse(" q "), Ok(Command::Quit));
        assert_eq!(
            parse("theme colorblind"),
            Ok(Command::Theme(ThemeName::Colorblind))
        );
        assert!(parse("explode").is_err_and(|e| e.contains("unknown command `explode`")));
        assert!(parse("theme dark").is_err_and(|e| e.contains("colorblind")));
    }

    #[test]
    fn completes_the_common_prefix() {
        assert_eq!(
            complete("h").as_deref(),
            Some("he"),
            "health and help share `he`"
        );
        assert_eq!(complete("he"), None);
        assert_eq!(complete("hea").as_deref(), Some("health"));
        assert_eq!(complete("th").as_deref(), Some("theme "));
        assert_eq!(complete("theme c").as_deref(), Some("theme colorblind"));
        assert_eq!(complete("zzz"), None);
        assert_eq!(matches("").len(), COMMANDS.len());
    }
}
