//! Fault injection for the test suite: `HUGFLAKE_FAULT=<point>` makes the named point fail the way
//! a bug would, so tests can check what users and logs get to see when it happens. Unset, every
//! point is a no-op.

/// The environment variable that names the point to fail.
pub const VAR: &str = "HUGFLAKE_FAULT";

/// Fails at `point` as a full disk would, when `HUGFLAKE_FAULT` names it.
pub fn io_point(point: &str) -> std::io::Result<()> {
    if std::env::var(VAR).is_ok_and(|v| v == point) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            format!("fault injected at {point}: no space left on device"),
        ));
    }
    Ok(())
}

/// Panics at `point` when `HUGFLAKE_FAULT` names it, with `detail` in the message (tests pass text
/// that must be scrubbed from the report, such as a credential, to prove it is).
pub fn panic_point(point: &str, detail: impl FnOnce() -> String) {
    if std::env::var(VAR).is_ok_and(|v| v == point) {
        panic!("fault injected at {point}: {}", detail());
    }
}
