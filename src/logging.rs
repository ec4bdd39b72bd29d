//! Tracing to a log file in the XDG state dir, never to the terminal (the TUI owns it).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

/// A writer that scrubs known secrets (`crate::secret::redact`) from each event before it is
/// written. The formatter hands over one whole event per write.
struct Redacting<W>(W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(crate::secret::redact(text).as_bytes())?,
            Err(_) => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Sends `tracing` output to `file` at `level` (overridden by `HUGFLAKE_LOG`). If the file cannot
/// be opened, logging is off and the reason is returned for the caller to show.
pub fn init(file: &Path, level: &str) -> Result<(), String> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(|e| format!("cannot open the log file {}: {e}", file.display()))?;
    let filter = EnvFilter::try_from_env("HUGFLAKE_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,hugflake={level}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Mutex::new(Redacting(out)))
        .try_init()
        .map_err(|e| e.to_string())
}
