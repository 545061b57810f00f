//! `amlprobe serve`: the long-running mode for a DaemonSet or a systemd service. Re-runs the
//! suites on an interval with jitter, keeps the latest report, and answers `/metrics`,
//! `/healthz` and `/report` over a minimal HTTP/1.1 server (no keep-alive, bounded requests).

use crate::config::RunConfig;
use crate::engine::ProgressFn;
use crate::report::Report;
use crate::report::prometheus::{self, Exposition};
use crate::runner;
use crate::suite::Catalog;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Largest request head read; anything longer is answered 431.
const MAX_REQUEST: usize = 8 * 1024;
/// A client gets this long to send its request and read the answer.
const CLIENT_DEADLINE: Duration = Duration::from_secs(5);
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 64;

/// How `serve` runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address of the HTTP endpoints.
    pub listen: SocketAddr,
    /// Time between runs.
    pub interval: Duration,
    /// Random spread added to the first run and to every wait.
    pub jitter: Duration,
}

/// Receives one JSON line per event (the caller prints it).
pub type LogFn = Arc<dyn Fn(String) + Send + Sync>;

/// What the endpoints answer from: rendered once per run, so scrapes cost no rendering.
#[derive(Default)]
struct Latest {
    report_json: Option<Arc<str>>,
    metrics: Option<Arc<str>>,
    runs: u64,
    errors: u64,
    last_finished: Option<Instant>,
}

struct Shared {
    latest: Mutex<Latest>,
    started: Instant,
    /// Longer than this without a finished run means the loop is wedged: `/healthz` says 503.
    stale_after: Duration,
}

/// A small xorshift generator: jitter needs spread across a fleet, not cryptographic quality.
struct Jitter(u64);

impl Jitter {
    fn seeded() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let host = crate::hostinfo::hostname()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        Jitter((nanos ^ host ^ u64::from(std::process::id())) | 1)
    }

    /// A duration in `[0, max)`.
    fn below(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if max.is_zero() {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.0 % max.as_nanos().min(u128::from(u64::MAX)) as u64)
    }
}

fn log_line(value: serde_json::Value) -> String {
    value.to_string()
}

fn run_line(run: u64, report: &Report) -> String {
    let blocked: Vec<serde_json::Value> = report
        .flows
        .iter()
        .filter(|f| report.fails_run(f))
        .map(|f| serde_json::json!({ "id": f.id, "reason": f.reason }))
        .collect();
    log_line(serde_json::json!({
        "ts": report.started_at,
        "event": "run",
        "run": run,
        "duration_ms": report.duration_ms,
        "exit_code": report.exit_code(),
        "summary": report.summary,
        "failing": blocked,
    }))
}

/// Binds `listen`; errors name the address.
pub async fn bind(listen: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(listen).await
}

/// Runs forever: the probe loop and the HTTP endpoints on `listener`.
pub async fn serve(
    serve: ServeConfig,
    listener: TcpListener,
    run: Arc<RunConfig>,
    catalog: Arc<Catalog>,
    suites: Vec<String>,
    log: LogFn,
) {
    let shared = Arc::new(Shared {
        latest: Mutex::new(Latest::default()),
        started: Instant::now(),
        stale_after: (serve.interval + serve.jitter) * 3 + run.engine.timeout * 10 + Duration::from_secs(60),
    });
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    log(log_line(serde_json::json!({
        "ts": crate::hostinfo::now_rfc3339(),
        "event": "listening",
        "address": address,
        "interval_ms": serve.interval.as_millis() as u64,
        "jitter_ms": serve.jitter.as_millis() as u64,
    })));
    tokio::spawn(accept_loop(listener, shared.clone()));
    let mut jitter = Jitter::seeded();
    tokio::time::sleep(jitter.below(serve.jitter)).await;
    let quiet: ProgressFn = Arc::new(|_| {});
    loop {
        let outcome = runner::run_once(&run, &catalog, &suites, quiet.clone()).await;
        let line = {
            let mut latest = shared.latest.lock().unwrap_or_else(|e| e.into_inner());
            latest.last_finished = Some(Instant::now());
            match &outcome {
                Ok(report) => {
                    latest.runs += 1;
                    latest.report_json = Some(Arc::from(report.to_json() + "\n"));
                    latest.metrics = Some(Arc::from(prometheus::render(report)));
                    run_line(latest.runs, report)
                }
                Err(e) => {
                    latest.errors += 1;
                    log_line(serde_json::json!({
                        "ts": crate::hostinfo::now_rfc3339(), "event": "run_error", "error": e.to_string(),
                    }))
                }
            }
        };
        log(line);
        if let Ok(report) = &outcome
            && let Err(e) = runner::save(report, &run)
        {
            log(log_line(serde_json::json!({
                "ts": crate::hostinfo::now_rfc3339(), "event": "save_error", "error": e.to_string(),
            })));
        }
        drop(outcome);
        tokio::time::sleep(serve.interval + jitter.below(serve.jitter)).await;
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors and the like: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CLIENT_DEADLINE, handle(stream, &shared)).await;
            drop(permit);
        });
    }
}

/// The request line's method and path, once the head is complete; `Err` with a status when it
/// can never be.
fn parse_head(head: &[u8]) -> Result<Option<(String, String)>, u16> {
    let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if head.len() >= MAX_REQUEST { Err(431) } else { Ok(None) };
    };
    let text = std::str::from_utf8(&head[..end]).map_err(|_| 400u16)?;
    let mut parts = text.lines().next().unwrap_or("").split(' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(target), Some(version)) if version.starts_with("HTTP/1.") => {
            let path = target.split('?').next().unwrap_or("").to_string();
            Ok(Some((method.to_string(), path)))
        }
        _ => Err(400),
    }
}

struct Answer {
    status: u16,
    content_type: &'static str,
    body: Arc<str>,
}

fn text(status: u16, body: &str) -> Answer {
    Answer {
        status,
        content_type: "text/plain; charset=utf-8",
        body: Arc::from(body),
    }
}

fn statm_rss_bytes() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096.0)
}

fn metrics(shared: &Shared) -> Answer {
    let (report_metrics, runs, errors) = {
        let latest = shared.latest.lock().unwrap_or_else(|e| e.into_inner());
        (latest.metrics.clone(), latest.runs, latest.errors)
    };
    let mut own = Exposition::default();
    own.sample("amlprobe_runs_total", "Runs finished since start.", &[], runs as f64);
    own.sample(
        "amlprobe_run_errors_total",
        "Runs that could not start (resolver or TLS setup failed).",
        &[],
        errors as f64,
    );
    own.sample(
        "amlprobe_uptime_seconds",
        "Seconds since serve started.",
        &[],
        shared.started.elapsed().as_secs_f64(),
    );
    if let Some(rss) = statm_rss_bytes() {
        own.sample(
            "process_resident_memory_bytes",
            "Resident memory of amlprobe.",
            &[],
            rss,
        );
    }
    let body = format!("{}{}", report_metrics.as_deref().unwrap_or(""), own.finish());
    Answer {
        status: 200,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        body: Arc::from(body),
    }
}

fn route(shared: &Shared, method: &str, path: &str) -> Answer {
    if method != "GET" && method != "HEAD" {
        return text(405, "only GET and HEAD\n");
    }
    match path {
        "/metrics" => metrics(shared),
        "/healthz" => {
            let since = {
                let latest = shared.latest.lock().unwrap_or_else(|e| e.into_inner());
                latest.last_finished.unwrap_or(shared.started).elapsed()
            };
            if since > shared.stale_after {
                text(503, &format!("stale: no run finished for {} s\n", since.as_secs()))
            } else {
                text(200, "ok\n")
            }
        }
        "/report" => match shared
            .latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .report_json
            .clone()
        {
            Some(body) => Answer {
                status: 200,
                content_type: "application/json",
                body,
            },
            None => text(503, "no run has finished yet\n"),
        },
        "/" => text(200, "amlprobe serve: /metrics /healthz /report\n"),
        _ => text(404, "not found: try /metrics, /healthz or /report\n"),
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

async fn handle(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let (answer, head_only) = loop {
        match parse_head(&head) {
            Ok(Some((method, path))) => break (route(shared, &method, &path), method == "HEAD"),
            Ok(None) => {}
            Err(status) => break (text(status, "bad request\n"), false),
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n.min(MAX_REQUEST - head.len().min(MAX_REQUEST))]);
    };
    let mut response = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n",
        answer.status,
        reason_phrase(answer.status),
        answer.content_type,
        answer.body.len()
    )
    .into_bytes();
    if !head_only {
        response.extend_from_slice(answer.body.as_bytes());
    }
    stream.write_all(&response).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads_parse_or_fail_cleanly() {
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Ok(Some(("GET".into(), "/metrics".into())))
        );
        assert_eq!(
            parse_head(b"GET /report?x=1 HTTP/1.0\r\n\r\n"),
            Ok(Some(("GET".into(), "/report".into())))
        );
        assert_eq!(parse_head(b"GET /metrics HTTP/1.1\r\nHost"), Ok(None));
        assert_eq!(parse_head(b"\x16\x03\x01\x02\x00\r\n\r\n"), Err(400));
        assert_eq!(parse_head(b"GET /\r\n\r\n"), Err(400));
        assert_eq!(parse_head(&vec![b'a'; MAX_REQUEST]), Err(431));
    }

    #[test]
    fn jitter_stays_below_its_bound_and_spreads() {
        let mut j = Jitter(42);
        let max = Duration::from_secs(30);
        let draws: Vec<Duration> = (0..1000).map(|_| j.below(max)).collect();
        assert!(draws.iter().all(|d| *d < max));
        assert!(draws.iter().any(|d| *d < Duration::from_secs(5)));
        assert!(draws.iter().any(|d| *d > Duration::from_secs(25)));
        assert_eq!(j.below(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn health_turns_503_when_the_loop_is_stale() {
        let shared = Shared {
            latest: Mutex::new(Latest::default()),
            started: Instant::now() - Duration::from_secs(100),
            stale_after: Duration::from_secs(50),
        };
        assert_eq!(route(&shared, "GET", "/healthz").status, 503);
        assert_eq!(route(&shared, "GET", "/report").status, 503);
        shared.latest.lock().unwrap().last_finished = Some(Instant::now());
        assert_eq!(route(&shared, "GET", "/healthz").status, 200);
        assert_eq!(route(&shared, "POST", "/healthz").status, 405);
        assert_eq!(route(&shared, "GET", "/nope").status, 404);
        let m = route(&shared, "GET", "/metrics");
        assert!(m.body.contains("amlprobe_runs_total 0\n"));
    }
}
