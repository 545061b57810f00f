//! `amlprobe serve`: the long-running mode for a DaemonSet or a systemd service. Re-runs the
//! suites on an interval with jitter, keeps the latest report, and answers `/metrics`,
//! `/healthz` and `/report` over a minimal HTTP/1.1 server (no keep-alive, bounded requests).
//!
//! The server is built so idle, slow or hostile clients can't starve the kubelet's `/healthz` and
//! Prometheus's `/metrics`: see [`Slots`]. It answers only requests whose `Host` is an IP
//! address, `localhost` or a name the operator allowed (`--allow-host`), so a web page whose
//! name a browser resolved to this machine (DNS rebinding) cannot read it: see [`host_allowed`].

use crate::cli::settings::RunConfig;
use crate::engine::ProgressFn;
use crate::model::suite::Catalog;
use crate::report::Report;
use crate::report::render::prometheus::{self, Exposition};
use crate::runner;
use crate::wire::http1::{self, HeadError};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// From accept to a complete request line. Real clients (kubelet, Prometheus, curl) send their
/// request at once; a connection that has said nothing by then is closed.
const LINE_DEADLINE: Duration = Duration::from_secs(1);
/// From accept to a complete request head; well under the kubelet's probe timeout.
const HEAD_DEADLINE: Duration = Duration::from_secs(2);
/// From accept to the last byte of the answer: the whole request, whatever the client does.
const CLIENT_DEADLINE: Duration = Duration::from_secs(5);
/// Connections served at once; the next one sheds one of them (see [`Slots`]).
const MAX_CONNECTIONS: usize = 256;
/// How long a new connection has to send its request line before a newer one may shed it
/// ahead of others: a real client's line arrives within a millisecond of connecting.
const LINE_GRACE: Duration = Duration::from_millis(200);

/// Who may read `/report`: it names hosts, addresses and proxies, so it can be turned off or put
/// behind a bearer token.
#[derive(Clone, Default)]
pub enum ReportAccess {
    /// Anyone who can reach the listener.
    #[default]
    Open,
    /// Nobody (`--metrics-only`): 404.
    Off,
    /// Requests with `Authorization: Bearer <token>` (`--report-token-file`); others get 401.
    Token(Arc<[u8]>),
}

impl ReportAccess {
    fn label(&self) -> &'static str {
        match self {
            ReportAccess::Open => "open",
            ReportAccess::Off => "off",
            ReportAccess::Token(_) => "bearer_token",
        }
    }
}

/// Never prints the token.
impl std::fmt::Debug for ReportAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// How `serve` runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Time between runs.
    pub interval: Duration,
    /// Random spread added to the first run and to every wait.
    pub jitter: Duration,
    /// Who may read `/report`.
    pub report: ReportAccess,
    /// Host names requests may carry besides IP addresses and `localhost` (`--allow-host`),
    /// lower case.
    pub allowed_hosts: Vec<String>,
}

/// Receives one JSON line per event (the caller prints it).
pub type LogFn = Arc<dyn Fn(String) + Send + Sync>;

/// What the endpoints answer from: rendered once per run, so scrapes cost no rendering.
#[derive(Default)]
struct Latest {
    report_json: Option<Arc<str>>,
    /// The same run as the page `/` answers with.
    report_html: Option<Arc<str>>,
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
    report: ReportAccess,
    /// `--allow-host` names.
    allowed_hosts: Vec<String>,
}

/// A small xorshift generator: jitter needs spread across a fleet, not cryptographic quality.
struct Jitter(u64);

impl Jitter {
    fn seeded() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let host = crate::env::hostinfo::hostname()
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
        .map(|f| serde_json::json!({ "id": f.id, "reason": f.reason, "cause": f.cause }))
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
        stale_after: (serve.interval + serve.jitter) * 3 + run.run.engine.timeout * 10 + Duration::from_secs(60),
        report: serve.report.clone(),
        allowed_hosts: serve.allowed_hosts.clone(),
    });
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    log(log_line(serde_json::json!({
        "ts": crate::env::hostinfo::now_rfc3339(),
        "event": "listening",
        "address": address,
        "interval_ms": serve.interval.as_millis() as u64,
        "jitter_ms": serve.jitter.as_millis() as u64,
        "report": serve.report.label(),
    })));
    tokio::spawn(accept_loop(listener, shared.clone()));
    let mut jitter = Jitter::seeded();
    tokio::time::sleep(jitter.below(serve.jitter)).await;
    let quiet: ProgressFn = Arc::new(|_| {});
    // The command checked the selection before starting; a failure here is still told, not a panic.
    let chosen = match catalog.select(&suites) {
        Ok(chosen) => chosen,
        Err(e) => {
            log(log_line(serde_json::json!({
                "ts": crate::env::hostinfo::now_rfc3339(), "event": "run_error", "error": e,
            })));
            return;
        }
    };
    loop {
        let outcome = runner::run_once(&run.run, &catalog, &chosen, quiet.clone()).await;
        let line = {
            let mut latest = shared.latest.lock().unwrap_or_else(|e| e.into_inner());
            latest.last_finished = Some(Instant::now());
            match &outcome {
                Ok(report) => {
                    latest.runs += 1;
                    latest.report_json = Some(Arc::from(report.to_json() + "\n"));
                    latest.report_html = Some(Arc::from(crate::report::render::html::render(report)));
                    latest.metrics = Some(Arc::from(prometheus::render(report)));
                    run_line(latest.runs, report)
                }
                Err(e) => {
                    latest.errors += 1;
                    log_line(serde_json::json!({
                        "ts": crate::env::hostinfo::now_rfc3339(), "event": "run_error", "error": e.to_string(),
                    }))
                }
            }
        };
        log(line);
        if let Ok(report) = &outcome
            && let Err(e) = runner::save(report, &run.output)
        {
            log(log_line(serde_json::json!({
                "ts": crate::env::hostinfo::now_rfc3339(), "event": "save_error", "error": e.to_string(),
            })));
        }
        drop(outcome);
        tokio::time::sleep(serve.interval + jitter.below(serve.jitter)).await;
    }
}

/// Where a connection is in its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Its request line has not arrived yet.
    Reading,
    /// It asked for `/healthz` or `/metrics`: what the kubelet and Prometheus must always get.
    Probe,
    /// It asked for anything else.
    Other,
}

/// One connection being served.
struct Conn {
    admitted: tokio::time::Instant,
    stage: Stage,
    /// Dropping it (removing the entry) tells the connection's task to close at once.
    _shed: oneshot::Sender<()>,
}

/// The connections being served, oldest first.
///
/// A new connection is never turned away: when all [`MAX_CONNECTIONS`] slots are taken it sheds
/// one, chosen by what each asked for, read from its request line: first the oldest that has
/// sent no request line for [`LINE_GRACE`], then the oldest asking for anything but `/healthz`
/// and `/metrics`, then the oldest still within its grace, and a `/healthz` or `/metrics`
/// request last. A kubelet or Prometheus request, whose line arrives within a millisecond of
/// connecting and which is answered at once from memory, thus outlives any number of idle,
/// slow or reconnecting clients, from its own address or many, unless hundreds of connections
/// arrive within its first [`LINE_GRACE`] and none of them is older. [`LINE_DEADLINE`],
/// [`HEAD_DEADLINE`] and [`CLIENT_DEADLINE`], all counted from accept, bound how long any
/// connection holds a slot.
#[derive(Default)]
struct Slots {
    next: u64,
    conns: BTreeMap<u64, Conn>,
}

impl Slots {
    /// Registers a connection accepted at `now`, shedding one first when there is no room;
    /// returns its id and the signal that it was shed.
    fn admit(&mut self, now: tokio::time::Instant) -> (u64, oneshot::Receiver<()>) {
        if self.conns.len() >= MAX_CONNECTIONS
            && let Some(victim) = self.victim(now)
        {
            self.conns.remove(&victim);
        }
        let (tx, rx) = oneshot::channel();
        let id = self.next;
        self.next += 1;
        self.conns.insert(
            id,
            Conn {
                admitted: now,
                stage: Stage::Reading,
                _shed: tx,
            },
        );
        (id, rx)
    }

    /// The connection to shed at `now` (see [`Slots`]).
    fn victim(&self, now: tokio::time::Instant) -> Option<u64> {
        let oldest = |which: &dyn Fn(&Conn) -> bool| self.conns.iter().find(|(_, c)| which(c)).map(|(id, _)| *id);
        let silent = |c: &Conn| c.stage == Stage::Reading && now.duration_since(c.admitted) >= LINE_GRACE;
        oldest(&silent)
            .or_else(|| oldest(&|c| c.stage == Stage::Other))
            .or_else(|| oldest(&|c| c.stage == Stage::Reading))
            .or_else(|| oldest(&|_| true))
    }

    /// The connection's request line asked for `stage`.
    fn asked(&mut self, id: u64, stage: Stage) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.stage = stage;
        }
    }

    fn leave(&mut self, id: u64) {
        self.conns.remove(&id);
    }
}

/// What a request line asks for: `/healthz` and `/metrics` (any method: the answer is small and
/// immediate either way) are the probes that must never be shed.
fn stage_of(line: &[u8]) -> Stage {
    let target = line.split(|&b| b == b' ').nth(1).unwrap_or_default();
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    if path == b"/healthz" || path == b"/metrics" {
        Stage::Probe
    } else {
        Stage::Other
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Mutex::new(Slots::default()));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors and the like: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let accepted = tokio::time::Instant::now();
        let (id, shed) = slots.lock().unwrap_or_else(|e| e.into_inner()).admit(accepted);
        let shared = shared.clone();
        let slots = slots.clone();
        tokio::spawn(async move {
            let asked = |stage| slots.lock().unwrap_or_else(|e| e.into_inner()).asked(id, stage);
            tokio::select! {
                _ = tokio::time::timeout_at(accepted + CLIENT_DEADLINE, handle(stream, &shared, accepted, asked)) => {}
                _ = shed => {}
            }
            slots.lock().unwrap_or_else(|e| e.into_inner()).leave(id);
        });
    }
}

/// A complete request head.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    /// The `Authorization` header's value.
    authorization: Option<String>,
    /// The `Host` header's value.
    host: Option<String>,
}

/// Whether a request naming `host` (its `Host` header) may be answered: an IP address (with a
/// port or without), `localhost`, or a name in `allowed`. A browser always sends the name it
/// resolved, so a page whose name was rebound to this machine's address is refused; kubelet
/// and Prometheus send the address they connect to. A request without `Host` (HTTP/1.0 tools)
/// comes from no browser.
fn host_allowed(host: Option<&str>, allowed: &[String]) -> bool {
    let Some(host) = host else {
        return true;
    };
    let Ok((name, _)) = crate::model::netaddr::split_host_port(host, 0) else {
        return false;
    };
    if name.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = name.strip_suffix('.').unwrap_or(&name).to_ascii_lowercase();
    name == "localhost" || allowed.contains(&name)
}

/// Whether `authorization` carries `Bearer <token>`, compared in constant time: the time taken
/// depends on the token's length only, never on how much of it a guess got right.
fn bearer_matches(token: &[u8], authorization: Option<&str>) -> bool {
    let given = authorization
        .and_then(|a| a.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or(&b""[..], |(_, t)| t.trim().as_bytes());
    let mut diff = token.len() ^ given.len();
    for (i, t) in token.iter().enumerate() {
        diff |= usize::from(t ^ given.get(i).copied().unwrap_or(0));
    }
    std::hint::black_box(diff) == 0 && !token.is_empty()
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

/// The refusal when `/report` (and the page at `/`, which shows the same) is off or needs a
/// token the request lacks.
fn refused(shared: &Shared, authorization: Option<&str>) -> Option<Answer> {
    match &shared.report {
        ReportAccess::Off => Some(text(404, "not found: /report is off (--metrics-only)\n")),
        ReportAccess::Token(token) if !bearer_matches(token, authorization) => Some(text(
            401,
            "/report needs Authorization: Bearer <token> (--report-token-file)\n",
        )),
        _ => None,
    }
}

/// The latest run, as JSON (`/report`) or as the HTML page (`/`).
fn report(shared: &Shared, authorization: Option<&str>, html: bool) -> Answer {
    if let Some(refusal) = refused(shared, authorization) {
        return refusal;
    }
    let latest = shared.latest.lock().unwrap_or_else(|e| e.into_inner());
    let (body, content_type) = if html {
        (latest.report_html.clone(), "text/html; charset=utf-8")
    } else {
        (latest.report_json.clone(), "application/json")
    };
    match body {
        Some(body) => Answer {
            status: 200,
            content_type,
            body,
        },
        None => text(503, "no run has finished yet\n"),
    }
}

fn statm_rss_bytes() -> Option<f64> {
    let statm = crate::files::read_text(std::path::Path::new("/proc/self/statm")).ok()?;
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

fn route(shared: &Shared, method: &str, path: &str, authorization: Option<&str>) -> Answer {
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
        "/report" => report(shared, authorization, false),
        "/" if matches!(shared.report, ReportAccess::Off) => text(200, "amlprobe serve: /metrics /healthz\n"),
        "/" => report(shared, authorization, true),
        _ => text(404, "not found: try /metrics, /healthz or /report\n"),
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Reads the request head by [`HEAD_DEADLINE`] after `accepted`, its request line by
/// [`LINE_DEADLINE`] (told to `asked` as soon as it is in): `Err` with the status to answer when
/// it is too large (431, over `http1::MAX_HEAD_BYTES`) or malformed (400, at once for a bare
/// LF); `None` when the client closed or missed a deadline.
async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    accepted: tokio::time::Instant,
    asked: impl FnOnce(Stage),
) -> Option<Result<Request, u16>> {
    let line = |line: &[u8]| asked(stage_of(line));
    match http1::read_request_line_first(stream, accepted + LINE_DEADLINE, accepted + HEAD_DEADLINE, line).await {
        Ok(head) => Some(Ok(Request {
            path: head.target.split('?').next().unwrap_or("").to_string(),
            authorization: head.header("authorization").map(str::to_string),
            host: head.header("host").map(str::to_string),
            method: head.method,
        })),
        Err(HeadError::TooLarge { .. } | HeadError::TooManyHeaders) => Some(Err(431)),
        Err(HeadError::Malformed(_)) => Some(Err(400)),
        Err(HeadError::TimedOut | HeadError::Closed | HeadError::HungUp { .. } | HeadError::Io(_)) => None,
    }
}

async fn handle(
    mut stream: TcpStream,
    shared: &Shared,
    accepted: tokio::time::Instant,
    asked: impl FnOnce(Stage),
) -> std::io::Result<()> {
    // Buffered: what follows the head is never read, so reading past it costs nothing.
    let Some(request) = read_request(&mut BufReader::new(&mut stream), accepted, asked).await else {
        return Ok(());
    };
    let (answer, head_only) = match request {
        // Misdirected: not for this server by its name. No body, nothing of the report.
        Ok(r) if !host_allowed(r.host.as_deref(), &shared.allowed_hosts) => (text(421, ""), false),
        Ok(r) => (
            route(shared, &r.method, &r.path, r.authorization.as_deref()),
            r.method == "HEAD",
        ),
        Err(status) => (text(status, "bad request\n"), false),
    };
    let mut response = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n{}{}\r\n",
        answer.status,
        reason_phrase(answer.status),
        answer.content_type,
        answer.body.len(),
        if answer.status == 401 {
            "WWW-Authenticate: Bearer realm=\"amlprobe\"\r\n"
        } else {
            ""
        },
        // The page's own meta tag says the same; the header also covers a browser that
        // sniffs or a proxy that rewrites the page.
        if answer.content_type.starts_with("text/html") {
            format!(
                "Content-Security-Policy: {}\r\nX-Content-Type-Options: nosniff\r\n",
                crate::report::render::html::CSP
            )
        } else {
            String::new()
        }
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
    use tokio::io::AsyncWriteExt;

    fn request(method: &str, path: &str, authorization: Option<&str>) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            authorization: authorization.map(Into::into),
            host: Some("x".into()),
        }
    }

    async fn answer_to(raw: &[u8]) -> Option<Result<Request, u16>> {
        read_request(&mut &raw[..], tokio::time::Instant::now(), |_| {}).await
    }

    #[tokio::test]
    async fn request_heads_are_answered_or_refused_with_a_status() {
        assert_eq!(
            answer_to(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await,
            Some(Ok(request("GET", "/metrics", None)))
        );
        assert_eq!(
            answer_to(b"GET /report?x=1 HTTP/1.0\r\nauthorization:  Bearer abc \r\nHost: x\r\n\r\n").await,
            Some(Ok(request("GET", "/report", Some("Bearer abc"))))
        );
        assert_eq!(answer_to(b"GET /metrics HTTP/1.1\r\nHost").await, None);
        assert_eq!(answer_to(b"\x16\x03\x01\x02\x00\r\n\r\n").await, Some(Err(400)));
        assert_eq!(answer_to(b"GET /\r\n\r\n").await, Some(Err(400)));
        assert_eq!(answer_to(b"GET /healthz HTTP/1.1\r\nHost: x\n").await, Some(Err(400)));
        assert_eq!(answer_to(&vec![b'a'; http1::MAX_HEAD_BYTES]).await, Some(Err(431)));
        let crowded = format!("GET / HTTP/1.1\r\n{}\r\n", "a: b\r\n".repeat(http1::MAX_HEADERS + 1));
        assert_eq!(answer_to(crowded.as_bytes()).await, Some(Err(431)));
    }

    #[test]
    fn bearer_tokens_match_exactly() {
        let token = b"s3cret-token";
        assert!(bearer_matches(token, Some("Bearer s3cret-token")));
        assert!(bearer_matches(token, Some("bearer  s3cret-token ")));
        for wrong in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer "),
            Some("Bearer s3cret-toke"),
            Some("Bearer s3cret-token2"),
            Some("Bearer S3cret-token"),
            Some("Basic s3cret-token"),
            Some("s3cret-token"),
        ] {
            assert!(!bearer_matches(token, wrong), "{wrong:?}");
        }
        assert!(!bearer_matches(b"", Some("Bearer ")));
    }

    /// What a request line says, as the server reads it.
    #[tokio::test]
    async fn the_request_line_is_told_before_the_headers_arrive() {
        let (mut client, server) = tokio::io::duplex(64);
        client
            .write_all(b"GET /healthz?x HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        let told = Arc::new(Mutex::new(None));
        let record = told.clone();
        let reading = tokio::spawn(async move {
            let mut server = server;
            read_request(&mut server, tokio::time::Instant::now(), move |stage| {
                *record.lock().unwrap() = Some(stage);
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            *told.lock().unwrap(),
            Some(Stage::Probe),
            "told with the headers still to come"
        );
        client.write_all(b"\r\n").await.unwrap();
        assert!(matches!(reading.await.unwrap(), Some(Ok(_))));
        assert_eq!(stage_of(b"GET /metrics HTTP/1.1"), Stage::Probe);
        assert_eq!(stage_of(b"HEAD /healthz HTTP/1.0"), Stage::Probe);
        for other in [
            &b"GET /report HTTP/1.1"[..],
            b"GET /healthzz HTTP/1.1",
            b"GET / HTTP/1.1",
            b"junk",
        ] {
            assert_eq!(stage_of(other), Stage::Other, "{}", String::from_utf8_lossy(other));
        }
    }

    /// A client that connects and says nothing is closed by [`LINE_DEADLINE`], well before
    /// [`HEAD_DEADLINE`]; one that sent its line has until the head deadline.
    #[tokio::test]
    async fn a_silent_client_is_closed_at_the_line_deadline() {
        let (_client, mut server) = tokio::io::duplex(64);
        let early = LINE_DEADLINE
            .checked_sub(Duration::from_millis(100))
            .expect("the line deadline is over 100 ms");
        let accepted = tokio::time::Instant::now()
            .checked_sub(early)
            .expect("the clock is past it");
        let started = std::time::Instant::now();
        assert_eq!(read_request(&mut server, accepted, |_| {}).await, None);
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
        let waiting = tokio::spawn(async move { read_request(&mut server, accepted, |_| {}).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "past the line deadline, the head may still come"
        );
        client.write_all(b"Host: x\r\n\r\n").await.unwrap();
        assert!(matches!(waiting.await.unwrap(), Some(Ok(_))));
    }

    fn later(ms: u64) -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_millis(ms)
    }

    #[test]
    fn a_full_server_sheds_silent_then_other_then_new_connections_and_probes_last() {
        let mut slots = Slots::default();
        let start = tokio::time::Instant::now();
        let mut signals = Vec::new();
        for i in 0..MAX_CONNECTIONS {
            let (id, rx) = slots.admit(start);
            assert_eq!(id, i as u64);
            signals.push(rx);
        }
        // 0 asks for /healthz, 1 and 2 for /report; the rest have said nothing.
        slots.asked(0, Stage::Probe);
        slots.asked(1, Stage::Other);
        slots.asked(2, Stage::Other);
        // Past the grace: the oldest silent connection (3) goes first.
        let now = start + LINE_GRACE;
        let (new, _rx) = slots.admit(now);
        assert_eq!(slots.conns.len(), MAX_CONNECTIONS);
        assert!(!slots.conns.contains_key(&3) && slots.conns.contains_key(&new));
        assert!(signals[3].try_recv().is_err(), "connection 3 was told to close");
        assert_eq!(signals[4].try_recv(), Err(oneshot::error::TryRecvError::Empty));
        // Everyone says something: the other requests go before the probe.
        for id in slots.conns.keys().copied().collect::<Vec<_>>() {
            if id != 0 {
                slots.asked(id, Stage::Other);
            }
        }
        slots.asked(new, Stage::Reading);
        slots.admit(now);
        assert!(slots.conns.contains_key(&0) && !slots.conns.contains_key(&1));
        // Only probes and new connections left: the new ones go first, the probe last.
        for id in slots.conns.keys().copied().collect::<Vec<_>>() {
            slots.asked(id, if id == 0 { Stage::Probe } else { Stage::Reading });
        }
        slots.admit(now);
        assert!(slots.conns.contains_key(&0));
        for id in slots.conns.keys().copied().collect::<Vec<_>>() {
            slots.asked(id, Stage::Probe);
        }
        slots.admit(now);
        assert!(!slots.conns.contains_key(&0), "when all are probes, the oldest goes");
        slots.leave(new);
        assert_eq!(slots.conns.len(), MAX_CONNECTIONS - 1);
    }

    /// Reconnecting clients (all silent, any address) churn only among themselves: a probe
    /// connection is never the one shed while it reads its request line.
    #[test]
    fn a_reconnect_storm_never_sheds_a_new_probe_connection() {
        let mut slots = Slots::default();
        let start = tokio::time::Instant::now();
        for _ in 0..MAX_CONNECTIONS {
            slots.admit(start);
        }
        let (probe, _rx) = slots.admit(later(300));
        for _ in 0..MAX_CONNECTIONS - 1 {
            slots.admit(later(300));
        }
        assert!(slots.conns.contains_key(&probe), "the older silent ones went first");
        slots.asked(probe, Stage::Probe);
        for _ in 0..MAX_CONNECTIONS * 4 {
            slots.admit(later(400));
        }
        assert!(
            slots.conns.contains_key(&probe),
            "a probe outlasts any storm of silent clients"
        );
    }

    #[test]
    fn only_ip_addresses_localhost_and_allowed_names_are_served() {
        let allowed = vec!["amlprobe.internal".to_string()];
        for host in [
            None,
            Some("127.0.0.1"),
            Some("127.0.0.1:9477"),
            Some("10.1.2.3:9477"),
            Some("[::1]:9477"),
            Some("[fe80::1]"),
            Some("localhost"),
            Some("LOCALHOST:9477"),
            Some("localhost.:9477"),
            Some("amlprobe.internal:9477"),
            Some("AMLPROBE.INTERNAL"),
        ] {
            assert!(host_allowed(host, &allowed), "{host:?}");
        }
        for host in [
            Some("evil.example"),
            Some("evil.example:9477"),
            Some("127.0.0.1.nip.io"),
            Some("localhost.evil.example"),
            Some("amlprobe.internal.evil.example"),
            Some(""),
            Some("::1"),
            Some("127.0.0.1:notaport"),
        ] {
            assert!(!host_allowed(host, &allowed), "{host:?}");
        }
        assert!(!host_allowed(Some("amlprobe.internal"), &[]));
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

    fn shared(report: ReportAccess) -> Shared {
        Shared {
            latest: Mutex::new(Latest::default()),
            started: Instant::now()
                .checked_sub(Duration::from_secs(100))
                .expect("the clock is past 100 s"),
            stale_after: Duration::from_secs(50),
            report,
            allowed_hosts: Vec::new(),
        }
    }

    #[test]
    fn health_turns_503_when_the_loop_is_stale() {
        let shared = shared(ReportAccess::Open);
        assert_eq!(route(&shared, "GET", "/healthz", None).status, 503);
        assert_eq!(route(&shared, "GET", "/report", None).status, 503);
        shared.latest.lock().unwrap().last_finished = Some(Instant::now());
        assert_eq!(route(&shared, "GET", "/healthz", None).status, 200);
        assert_eq!(route(&shared, "POST", "/healthz", None).status, 405);
        assert_eq!(route(&shared, "GET", "/nope", None).status, 404);
        let m = route(&shared, "GET", "/metrics", None);
        assert!(m.body.contains("amlprobe_runs_total 0\n"));
    }

    #[test]
    fn report_access_is_off_or_needs_the_token() {
        let off = shared(ReportAccess::Off);
        off.latest.lock().unwrap().report_json = Some(Arc::from("{}"));
        assert_eq!(route(&off, "GET", "/report", Some("Bearer x")).status, 404);
        assert!(!route(&off, "GET", "/", None).body.contains("/report"));
        assert_eq!(route(&off, "GET", "/metrics", None).status, 200);
        let token = shared(ReportAccess::Token(Arc::from(&b"t0ken"[..])));
        token.latest.lock().unwrap().report_json = Some(Arc::from("{}"));
        assert_eq!(route(&token, "GET", "/report", None).status, 401);
        assert_eq!(route(&token, "GET", "/report", Some("Bearer t0ke")).status, 401);
        let ok = route(&token, "GET", "/report", Some("Bearer t0ken"));
        assert_eq!((ok.status, &*ok.body), (200, "{}"));
        assert_eq!(route(&token, "GET", "/metrics", None).status, 200);
        assert!(!format!("{:?}", token.report).contains("t0ken"));
    }

    #[test]
    fn the_root_page_is_the_latest_run_behind_the_report_access() {
        let open = shared(ReportAccess::Open);
        assert_eq!(route(&open, "GET", "/", None).status, 503, "no run yet");
        open.latest.lock().unwrap().report_html = Some(Arc::from("<!DOCTYPE html>"));
        let page = route(&open, "GET", "/", None);
        assert_eq!(
            (page.status, page.content_type, &*page.body),
            (200, "text/html; charset=utf-8", "<!DOCTYPE html>")
        );
        let off = shared(ReportAccess::Off);
        off.latest.lock().unwrap().report_html = Some(Arc::from("<!DOCTYPE html>"));
        let index = route(&off, "GET", "/", None);
        assert_eq!(
            (index.status, &*index.body),
            (200, "amlprobe serve: /metrics /healthz\n")
        );
        let token = shared(ReportAccess::Token(Arc::from(&b"t0ken"[..])));
        token.latest.lock().unwrap().report_html = Some(Arc::from("<!DOCTYPE html>"));
        assert_eq!(route(&token, "GET", "/", None).status, 401);
        assert_eq!(route(&token, "GET", "/", Some("Bearer t0ken")).status, 200);
    }
}
