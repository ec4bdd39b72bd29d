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
    /// Query sends to two services side by side (None: back to one).
    Compare(Option<(String, String)>),
    /// Change a service's scaling (None: the service selected in Health).
    Scale(Option<String>, crate::domain::ScalingChange),
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
    (
        "compare ",
        "A B: Query sends to both services side by side; none: back to one",
    ),
    (
        "scale ",
        "[SERVICE] min=N max=N idle=SECS: ALTER SERVICE … SET (selected service by default)",
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
        ["scale", rest @ ..] => parse_scale(rest),
        ["compare"] | ["compare", "none"] => Ok(Command::Compare(None)),
        ["compare", a, b] => Ok(Command::Compare(Some((
            a.to_ascii_uppercase(),
            b.to_ascii_uppercase(),
        )))),
        ["compare", ..] => Err(
            "`:compare` takes two services (e.g. :compare MINILM_SVC MINILM_INT8_SVC), or none"
                .into(),
        ),
        [] => Err("empty command: try :help".into()),
        _ => Err(format!(
            "unknown command `{}`: Tab completes, :help lists the keys",
            line.trim()
        )),
    }
}

/// `:scale [SERVICE] min=0 max=2 idle=300`.
fn parse_scale(words: &[&str]) -> Result<Command, String> {
    const USAGE: &str =
        "`:scale` takes [SERVICE] and min=N, max=N or idle=SECS (e.g. :scale min=0 max=2 idle=300)";
    let mut service = None;
    let mut change = crate::domain::ScalingChange::default();
    for (i, w) in words.iter().enumerate() {
        match w.split_once('=') {
            Some((key, value)) => {
                let n: u64 = value
                    .parse()
                    .map_err(|_| format!("`{w}`: {value} is not a whole number; {USAGE}"))?;
                let small =
                    || u32::try_from(n).map_err(|_| format!("`{w}`: {n} instances is too many"));
                match key {
                    "min" => change.min_instances = Some(small()?),
                    "max" => change.max_instances = Some(small()?),
                    "idle" | "auto_suspend_secs" => change.auto_suspend_secs = Some(n),
                    _ => return Err(format!("unknown setting `{key}`: {USAGE}")),
                }
            }
            None if i == 0 => service = Some(w.to_ascii_uppercase()),
            None => return Err(format!("`{w}`: {USAGE}")),
        }
    }
    if change.is_empty() {
        return Err(USAGE.into());
    }
    Ok(Command::Scale(service, change))
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
        assert_eq!(
            parse("scale minilm_svc min=0 idle=300"),
            Ok(Command::Scale(
                Some("MINILM_SVC".into()),
                crate::domain::ScalingChange {
                    min_instances: Some(0),
                    max_instances: None,
                    auto_suspend_secs: Some(300),
                }
            ))
        );
        assert!(parse("scale max=2").is_ok_and(|c| matches!(c, Command::Scale(None, _))));
        assert!(parse("scale").is_err_and(|e| e.contains("min=N")));
        assert!(parse("scale min=two").is_err_and(|e| e.contains("not a whole number")));
        assert!(parse("scale cpu=2").is_err_and(|e| e.contains("unknown setting `cpu`")));
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
