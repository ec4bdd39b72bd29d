//! Output shared by the commands: JSON, text tables, one line per model output.

use std::io::Write;

use color_eyre::eyre::{Result, eyre};
use serde::Serialize;

/// Standard output could not be written: a reader that went away (`| head -1`) or a full disk.
/// `main` ends a closed pipe quietly with 141 (128 + SIGPIPE, what a shell shows for a process the
/// signal stopped) and says anything else with exit 1.
#[derive(Debug, thiserror::Error)]
#[error("cannot write to standard output: {0}")]
pub struct OutputError(#[from] pub std::io::Error);

impl OutputError {
    pub fn is_closed_pipe(&self) -> bool {
        self.0.kind() == std::io::ErrorKind::BrokenPipe
    }
}

/// Writes to standard output, an error (never a panic) when it cannot.
pub fn write_out(args: std::fmt::Arguments<'_>) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_fmt(args)
        .map_err(|e| color_eyre::Report::new(OutputError(e)))
}

/// Flushes standard output at the end of a command.
pub fn flush_out() -> std::result::Result<(), OutputError> {
    std::io::stdout().lock().flush().map_err(OutputError)
}

/// `print!` that returns an error instead of panicking when standard output is closed or full.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write_out(format_args!($($arg)*))
    };
}

/// `println!` that returns an error instead of panicking when standard output is closed or full.
macro_rules! outln {
    () => {
        $crate::cli::output::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Asks `question` on the terminal unless `yes`; refuses (an error naming `--yes`) when standard
/// input is not a terminal. `Ok(false)`: the person said no (`declined` is printed).
pub fn confirm(question: &str, yes: bool, declined: &str) -> Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(eyre!(
            "{declined}: confirm with --yes (standard input is not a terminal to ask on)"
        ));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(true)
    } else {
        eprintln!("{declined}");
        Ok(false)
    }
}

pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| eyre!("cannot encode JSON: {e}"))?;
    write_out(format_args!("{text}\n"))
}

/// Left-aligned columns, two spaces apart, with a header row. Control characters in cells are
/// shown escaped, never sent to the terminal.
pub fn text_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| crate::domain::units::printable(c).into_owned())
                .collect()
        })
        .collect();
    let rows = &rows;
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(c.chars().count());
            s.push(' ');
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(pad + 1));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// One readable line for a service's output object (token rows read as entities).
pub fn output_line(o: &serde_json::Value) -> String {
    let mut row = o.clone();
    if let Some(v) = o.get("output") {
        row = serde_json::json!({ "embedding": v });
    } else if o.get("outputs").is_some() {
        row = serde_json::json!({ "entities": crate::domain::entities::group_json(o) });
    } else if let (Some(l), Some(s)) = (o.get("labels"), o.get("scores")) {
        return format!(
            "{} ({})",
            label_scores(l, s),
            crate::inference::clip::RESEARCH_USE
        );
    }
    let line = predict_line(&row);
    line.split_once(": ")
        .map_or(line.clone(), |(_, rest)| rest.to_string())
}

/// `label 81.2%, label 10.3%, ...` from parallel `labels` and `scores` arrays.
pub fn label_scores(labels: &serde_json::Value, scores: &serde_json::Value) -> String {
    labels
        .as_array()
        .into_iter()
        .flatten()
        .zip(scores.as_array().into_iter().flatten())
        .map(|(l, s)| {
            format!(
                "{} {:.1}%",
                l.as_str().unwrap_or(""),
                s.as_f64().unwrap_or(0.0) * 100.0
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One readable line per result; inputs are not echoed (they may be clinical text).
pub fn predict_line(row: &serde_json::Value) -> String {
    let i = row["index"].as_u64().unwrap_or(0);
    let head = |v: &serde_json::Value| {
        let vals: Vec<String> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .take(6)
                    .filter_map(|x| x.as_f64())
                    .map(|x| format!("{x:.4}"))
                    .collect()
            })
            .unwrap_or_default();
        let n = v.as_array().map_or(0, Vec::len);
        format!("dim {n} [{}, …]", vals.join(", "))
    };
    if let Some(e) = row.get("embedding") {
        format!("{i}: {}", head(e))
    } else if let Some(groups) = row.get("entities").and_then(|g| g.as_array()) {
        if groups.is_empty() {
            return format!("{i}: no entities");
        }
        let parts: Vec<String> = groups
            .iter()
            .map(|g| {
                format!(
                    "{} \"{}\" {:.2} [{}..{}]",
                    g["entity_group"].as_str().unwrap_or(""),
                    g["word"].as_str().unwrap_or(""),
                    g["score"].as_f64().unwrap_or(0.0),
                    g["start"],
                    g["end"]
                )
            })
            .collect();
        format!("{i}: {}", parts.join("; "))
    } else {
        format!(
            "{i}: cls {}; mean {}",
            head(&row["cls"]),
            head(&row["mean"])
        )
    }
}
