//! `amlprobe serve`: the long-running mode for a DaemonSet or a systemd service. Re-runs the
//! suites on an interval with jitter, keeps the latest report, and answers `/metrics`,
//! `/healthz` and `/report` over a minimal HTTP/1.1 server (no keep-alive, bounded requests).
//!
//! The server is built so idle, slow or hostile clients can't starve the kubelet's `/healthz` and
//! Prometheus's `/metrics`: see [`Slots`].

use crate::cli::settings::RunConfig;
use crate::engine::ProgressFn;
use crate::model::suite::Catalog;
use crate::report::Report;
use crate::report::render::prometheus::{self, Exposition};
use crate::runner;
use crate::wire::http1::{self, HeadError};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// From accept to a complete request head. Real clients (kubelet, Prometheus, curl) send theirs
/// at once; well under the kubelet's 5 s probe timeout, so an idle client never outlives it.
const HEAD_DEADLINE: Duration = Duration::from_secs(2);
/// From accept to the last byte of the answer: the whole request, whatever the client does.
const CLIENT_DEADLINE: Duration = Duration::from_secs(5);
/// Connections served at once; the next one sheds the oldest (see [`Slots`]).
const MAX_CONNECTIONS: usize = 64;
/// Connections one peer (IPv4 address or IPv6 /64) holds at once; its next one sheds its own
/// oldest.
const MAX_PER_PEER: usize = 16;

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

/// One connection being served.
struct Conn {
    peer: IpAddr,
    /// Still waiting for its request head (idle or slow): shed before those being answered.
    reading: bool,
    /// Dropping it (removing the entry) tells the connection's task to close at once.
    _shed: oneshot::Sender<()>,
}

/// The connections being served, oldest first.
///
/// Idle and slow clients must never keep `/healthz` and `/metrics` from answering, so a new
/// connection is never turned away: when its peer already holds [`MAX_PER_PEER`] connections
/// it sheds that peer's oldest, and when all [`MAX_CONNECTIONS`] slots are taken it sheds the
/// oldest overall (in both cases one still reading its request first). A flood from one
/// address thus only churns its own connections, and a kubelet or Prometheus request, which
/// arrives within a millisecond of connecting and is answered as fast, is done long before
/// 64 newer connections could push it out. [`HEAD_DEADLINE`] and [`CLIENT_DEADLINE`], both
/// counted from accept, bound how long any connection holds a slot at all.
#[derive(Default)]
struct Slots {
    next: u64,
    conns: BTreeMap<u64, Conn>,
}

impl Slots {
    /// Registers a connection from `peer`, shedding one first when there is no room; returns
    /// its id and the signal that it was shed.
    fn admit(&mut self, peer: IpAddr) -> (u64, oneshot::Receiver<()>) {
        let peer = peer_key(peer);
        let victim = if self.conns.values().filter(|c| c.peer == peer).count() >= MAX_PER_PEER {
            self.oldest(|c| c.peer == peer)
        } else if self.conns.len() >= MAX_CONNECTIONS {
            self.oldest(|_| true)
        } else {
            None
        };
        if let Some(id) = victim {
            self.conns.remove(&id);
        }
        let (tx, rx) = oneshot::channel();
        let id = self.next;
        self.next += 1;
        self.conns.insert(
            id,
            Conn {
                peer,
                reading: true,
                _shed: tx,
            },
        );
        (id, rx)
    }

    /// The oldest connection `which` accepts, preferring one still reading its request.
    fn oldest(&self, which: impl Fn(&Conn) -> bool) -> Option<u64> {
        let mut matching = self.conns.iter().filter(|(_, c)| which(c));
        let first = matching.clone().next().map(|(id, _)| *id);
        matching.find(|(_, c)| c.reading).map(|(id, _)| *id).or(first)
    }

    /// The connection has its request and is being answered.
    fn answering(&mut self, id: u64) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.reading = false;
        }
    }

    fn leave(&mut self, id: u64) {
        self.conns.remove(&id);
    }
}

/// What counts as one peer: an IPv4 address, or an IPv6 /64 (one host's usual allotment).
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Mutex::new(Slots::default()));
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of file descriptors and the like: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let accepted = tokio::time::Instant::now();
        let (id, shed) = slots.lock().unwrap_or_else(|e| e.into_inner()).admit(peer.ip());
        let shared = shared.clone();
        let slots = slots.clone();
        tokio::spawn(async move {
            let answering = || slots.lock().unwrap_or_else(|e| e.into_inner()).answering(id);
            tokio::select! {
                _ = tokio::time::timeout_at(accepted + CLIENT_DEADLINE, handle(stream, &shared, accepted, answering)) => {}
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
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Reads the request head by [`HEAD_DEADLINE`] after `accepted`: `Err` with the status to answer
/// when it is too large (431, over `http1::MAX_HEAD_BYTES`) or malformed (400, at once for a
/// bare LF); `None` when the client closed or missed the deadline.
async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    accepted: tokio::time::Instant,
) -> Option<Result<Request, u16>> {
    match http1::read_request(stream, accepted + HEAD_DEADLINE).await {
        Ok(head) => Some(Ok(Request {
            path: head.target.split('?').next().unwrap_or("").to_string(),
            authorization: head.header("authorization").map(str::to_string),
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
    answering: impl FnOnce(),
) -> std::io::Result<()> {
    // Buffered: what follows the head is never read, so reading past it costs nothing.
    let Some(request) = read_request(&mut BufReader::new(&mut stream), accepted).await else {
        return Ok(());
    };
    answering();
    let (answer, head_only) = match request {
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

    fn request(method: &str, path: &str, authorization: Option<&str>) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            authorization: authorization.map(Into::into),
        }
    }

    async fn answer_to(raw: &[u8]) -> Option<Result<Request, u16>> {
        read_request(&mut &raw[..], tokio::time::Instant::now()).await
    }

    #[tokio::test]
    async fn request_heads_are_answered_or_refused_with_a_status() {
        assert_eq!(
            answer_to(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await,
            Some(Ok(request("GET", "/metrics", None)))
        );
        assert_eq!(
            answer_to(b"GET /report?x=1 HTTP/1.0\r\nauthorization:  Bearer abc \r\n\r\n").await,
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_full_server_sheds_the_oldest_idle_connection_never_the_newest() {
        let mut slots = Slots::default();
        let mut signals = Vec::new();
        for i in 0..MAX_CONNECTIONS {
            let (id, rx) = slots.admit(ip(&format!("10.0.{}.{}", i / MAX_PER_PEER, i % MAX_PER_PEER)));
            assert_eq!(id, i as u64);
            signals.push(rx);
        }
        assert_eq!(slots.conns.len(), MAX_CONNECTIONS);
        // Connection 0 is being answered: the oldest one still reading (1) goes instead.
        slots.answering(0);
        let (new, _rx) = slots.admit(ip("192.0.2.1"));
        assert_eq!(slots.conns.len(), MAX_CONNECTIONS);
        assert!(slots.conns.contains_key(&new) && slots.conns.contains_key(&0));
        assert!(!slots.conns.contains_key(&1));
        assert!(signals[1].try_recv().is_err(), "connection 1 was told to close");
        assert_eq!(signals[2].try_recv(), Err(oneshot::error::TryRecvError::Empty));
        // When every connection is being answered, the oldest of them goes.
        for id in slots.conns.keys().copied().collect::<Vec<_>>() {
            slots.answering(id);
        }
        slots.admit(ip("192.0.2.2"));
        assert!(!slots.conns.contains_key(&0));
        assert_eq!(slots.conns.len(), MAX_CONNECTIONS);
        slots.leave(new);
        assert_eq!(slots.conns.len(), MAX_CONNECTIONS - 1);
    }

    #[test]
    fn one_peer_only_sheds_its_own_connections() {
        let mut slots = Slots::default();
        let (other, _keep) = slots.admit(ip("192.0.2.9"));
        let mut rxs = Vec::new();
        for _ in 0..MAX_PER_PEER * 3 {
            rxs.push(slots.admit(ip("10.1.2.3")));
        }
        assert_eq!(slots.conns.len(), MAX_PER_PEER + 1);
        assert!(
            slots.conns.contains_key(&other),
            "another peer's connection is never shed"
        );
        // An IPv6 /64 counts as one peer; an IPv4-mapped address as its IPv4 address.
        for i in 0..MAX_PER_PEER * 2 {
            rxs.push(slots.admit(ip(&format!("2001:db8:1:2::{:x}", i + 1))));
        }
        assert_eq!(slots.conns.len(), 2 * MAX_PER_PEER + 1);
        rxs.push(slots.admit(ip("::ffff:10.1.2.3")));
        assert_eq!(slots.conns.len(), 2 * MAX_PER_PEER + 1);
        assert_eq!(peer_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
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
