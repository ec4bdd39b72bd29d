//! A service endpoint's HTTP server, bounded: at most `max_connections` at once (more are closed
//! on arrival, and the refusals logged at most every 10 s), and a connection that takes longer
//! than `header_timeout` to send a request's headers, or sits idle that long between requests, is
//! closed. Idle or slow clients (slow-loris) cannot take the daemon's file descriptors, so the
//! control socket and the other services keep answering.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The bounds of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// How often a refusal is written to the service's log at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `stop`; `log` receives the (rate-limited) refusals.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    stop: CancellationToken,
    log: impl Fn(&str) + Send + 'static,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut refused = 0u64;
    let mut last_log: Option<Instant> = None;
    let mut say = |what: String, refused: &mut u64| {
        if last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            log(&what);
            tracing::warn!("{what}");
            last_log = Some(Instant::now());
            *refused = 0;
        }
    };
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors (EMFILE) or a transient error: wait a moment, never spin.
                say(
                    format!("endpoint: cannot accept a connection: {e}"),
                    &mut refused,
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused += 1;
            drop(stream);
            let n = refused;
            say(
                format!(
                    "endpoint: {} connection(s) open, the most it holds (daemon.endpoint_max_connections); refused {n} since the last note",
                    limits.max_connections
                ),
                &mut refused,
            );
            continue;
        };
        let app = app.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true);
            let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
    }
}

/// Raises this process's soft limit of open files to its hard limit (the common soft limit of
/// 1,024 is low for a daemon holding many service endpoints). Returns the limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (lim.current, lim.maximum)
        && cur < max
    {
        lim.current = Some(max);
        if setrlimit(Resource::Nofile, lim).is_err() {
            return Some(cur);
        }
    }
    getrlimit(Resource::Nofile).current
}
