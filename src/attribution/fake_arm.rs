//! An in-process fake ARM (and IMDS) for the read tests: plain HTTP on 127.0.0.1, an ephemeral
//! port, answers chosen per request by a route function, every request head recorded. Plain HTTP
//! keeps the fake small; TLS to ARM is the client's own, tested in `http_client` and tests/it.

use crate::http_client::Url;
use crate::wire::http1;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};

/// One answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Held this long before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn raw(status: u16, body: String) -> Reply {
        Reply {
            status,
            headers: vec![],
            body,
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    pub fn not_found() -> Reply {
        Reply::json(404, serde_json::json!({"error": {"code": "ResourceNotFound"}}))
    }
}

/// A running fake.
pub struct Fake {
    pub url: Url,
    /// `METHOD target` and the `Authorization` header (if any) of every request, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
    /// The most requests it was answering at once.
    pub most_at_once: Arc<AtomicUsize>,
}

impl Fake {
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// Starts a fake answering with `route(method, target)`.
pub async fn start(route: impl Fn(&str, &str) -> Reply + Send + Sync + 'static) -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let open = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let route = Arc::new(route);
    let (log, open_count, most_count) = (seen.clone(), open.clone(), most.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (log, route, open, most) = (log.clone(), route.clone(), open_count.clone(), most_count.clone());
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                if let Ok(head) = http1::read_request(&mut stream, deadline).await {
                    // Counted from the request to the answer: the client can't be done earlier.
                    let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let auth = head
                        .header("authorization")
                        .map(|a| format!(" [{a}]"))
                        .unwrap_or_default();
                    log.lock()
                        .unwrap()
                        .push(format!("{} {}{auth}", head.method, head.target));
                    let reply = route(&head.method, &head.target);
                    tokio::time::sleep(reply.delay).await;
                    open.fetch_sub(1, Ordering::SeqCst);
                    let mut out = format!(
                        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                        reply.status,
                        reply.body.len()
                    );
                    for (n, v) in &reply.headers {
                        out.push_str(&format!("{n}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    let stream = stream.get_mut();
                    let _ = stream.write_all(out.as_bytes()).await;
                    let _ = stream.write_all(reply.body.as_bytes()).await;
                    let _ = stream.shutdown().await;
                }
            });
        }
    });
    Fake {
        url: Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        seen,
        most_at_once: most,
    }
}
