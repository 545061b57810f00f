//! ARM requests for attribution, with the guarantees the reads need: one total budget, at most
//! N requests in flight, the token only ever sent to the ARM origin, every path checked before
//! it is sent, long-running operations polled (202 + `Location`, honouring `Retry-After`),
//! `nextLink` pages followed (same origin only, bounded), and every failure a typed reason that
//! names the permission it needed.

use crate::discovery::token::ArmToken;
use crate::http_client::{Client, Request, Response, Url};
use crate::model::duration::FlagDuration;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How much attribution may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// All reads together (issue 25: "say 10 s total, flag to change").
    pub budget: Duration,
    /// Requests in flight at once.
    pub in_flight: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            budget: Duration::from_secs(10),
            in_flight: 4,
        }
    }
}

/// Why a piece of configuration could not be read: one line for `context.warnings` each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// No ARM token at all.
    #[error("no ARM token to read the network configuration with ({0})")]
    NoToken(String),
    /// Not an Azure VM (or IMDS not asked): this machine's NIC can't be found.
    #[error("this machine's network interface can't be found: {0}")]
    NotAzureVm(String),
    /// 403.
    #[error("reading {what} needs {permission} (HTTP 403{code})")]
    Forbidden {
        /// What was being read.
        what: String,
        /// The Azure RBAC action that would allow it.
        permission: &'static str,
        /// ` (AuthorizationFailed)` or empty.
        code: String,
    },
    /// 404.
    #[error("{what} does not exist (HTTP 404{code})")]
    NotFound {
        /// What was being read.
        what: String,
        /// ` (ResourceNotFound)` or empty.
        code: String,
    },
    /// Any other status.
    #[error("reading {what}: ARM answered HTTP {status}{code}")]
    Status {
        /// What was being read.
        what: String,
        /// The status.
        status: u16,
        /// ` (Code)` or empty.
        code: String,
    },
    /// No answer, or a broken one.
    #[error("reading {what}: {why}")]
    Unreachable {
        /// What was being read.
        what: String,
        /// The transport's one-line reason (never a body).
        why: String,
    },
    /// The budget ran out first.
    #[error("reading {what}: the {budget} budget for Azure reads ran out")]
    Timeout {
        /// What was being read.
        what: String,
        /// The budget, as the flag would take it.
        budget: String,
    },
    /// An answer that is not the JSON expected (or larger than the client reads).
    #[error("reading {what}: ARM's answer is not the expected JSON")]
    Malformed {
        /// What was being read.
        what: String,
    },
    /// A path, `Location` or `nextLink` that was not followed.
    #[error("reading {what}: {why}")]
    Refused {
        /// What was being read.
        what: String,
        /// Why it was refused.
        why: String,
    },
    /// A uniform scale set instance: its NICs have no effective-rules API.
    #[error(
        "this machine is an instance of the uniform scale set {scale_set}: its network interfaces live under Microsoft.Compute/virtualMachineScaleSets, which has no effective security rules or routes API"
    )]
    UniformScaleSet {
        /// The scale set's name.
        scale_set: String,
    },
    /// An Azure ML compute whose VM and NIC sit in a Microsoft-owned subscription.
    #[error(
        "this Azure ML compute's VM and network interface ({vm}) are in a Microsoft-owned subscription (its Batch pool) and can't be read; only its subnet's rules can"
    )]
    MicrosoftOwnedNic {
        /// The VM's ARM id as IMDS gives it.
        vm: String,
    },
}

impl Unavailable {
    /// The line for `context.warnings`.
    pub fn warning(&self) -> String {
        format!("Azure attribution: {self}")
    }
}

/// Pages of one list followed at most.
const MAX_PAGES: usize = 10;
/// `Retry-After` when an accepted operation gives none, and the most honoured.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(10);

/// ARM, as attribution speaks to it.
pub struct Arm<'a> {
    client: &'a Client,
    base: &'a Url,
    token: &'a ArmToken,
    deadline: Instant,
    budget: Duration,
    slots: Semaphore,
}

impl<'a> Arm<'a> {
    /// ARM at `base` with `token`, within `limits` from now.
    pub fn new(client: &'a Client, base: &'a Url, token: &'a ArmToken, limits: &Limits) -> Arm<'a> {
        Arm {
            client,
            base,
            token,
            deadline: Instant::now() + limits.budget,
            budget: limits.budget,
            slots: Semaphore::new(limits.in_flight.max(1)),
        }
    }

    /// What is left of the budget.
    pub fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn timeout(&self, what: &str) -> Unavailable {
        Unavailable::Timeout {
            what: what.to_string(),
            budget: FlagDuration(self.budget).to_string(),
        }
    }

    async fn send(&self, method: &str, path: &str, what: &str) -> Result<Response, Unavailable> {
        let path = checked_path(path, what)?;
        let _slot = self.slots.acquire().await.map_err(|_| self.timeout(what))?;
        let left = self.left();
        if left.is_zero() {
            return Err(self.timeout(what));
        }
        let url = self.base.join(path);
        let request = Request {
            method,
            url: &url,
            headers: vec![("Authorization", self.token.bearer())],
            body: None,
        };
        self.client.send(request, left).await.map_err(|why| {
            if self.left().is_zero() {
                self.timeout(what)
            } else {
                Unavailable::Unreachable {
                    what: what.to_string(),
                    why,
                }
            }
        })
    }

    /// GETs one document. Paths and descriptions are owned so that many reads can be built in
    /// a loop and awaited together.
    pub async fn get(
        &self,
        path: impl Into<String>,
        what: impl Into<String>,
        permission: &'static str,
    ) -> Result<Value, Unavailable> {
        let (path, what) = (path.into(), what.into());
        let response = self.send("GET", &path, &what).await?;
        json(response, &what, permission)
    }

    /// GETs a list, following `nextLink` on the ARM origin for at most [`MAX_PAGES`] pages.
    pub async fn list(
        &self,
        path: impl Into<String>,
        what: impl Into<String>,
        permission: &'static str,
    ) -> Result<Vec<Value>, Unavailable> {
        let what = what.into();
        let mut items = Vec::new();
        let mut next = Some(path.into());
        for _ in 0..MAX_PAGES {
            let Some(page) = next.take() else { break };
            let v = self.get(page, what.as_str(), permission).await?;
            items.extend(v.get("value").and_then(Value::as_array).into_iter().flatten().cloned());
            next = match v.get("nextLink").and_then(Value::as_str).filter(|l| !l.is_empty()) {
                Some(link) => Some(self.on_arm(link, &what)?),
                None => None,
            };
        }
        Ok(items)
    }

    /// POSTs a long-running action: 200 with the result, or 202 and a `Location` polled (after
    /// `Retry-After` seconds) until it answers 200.
    pub async fn post_lro(
        &self,
        path: impl Into<String>,
        what: impl Into<String>,
        permission: &'static str,
    ) -> Result<Value, Unavailable> {
        let (path, what) = (path.into(), what.into());
        let what = what.as_str();
        let mut response = self.send("POST", &path, what).await?;
        while response.status == 202 {
            let location = response
                .header("location")
                .map(str::to_string)
                .ok_or_else(|| Unavailable::Refused {
                    what: what.to_string(),
                    why: "ARM accepted the request but gave no Location to poll".into(),
                })?;
            let poll = self.on_arm(&location, what)?;
            let wait = response
                .header("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(DEFAULT_RETRY, Duration::from_secs)
                .min(MAX_RETRY);
            if wait >= self.left() {
                return Err(self.timeout(what));
            }
            tokio::time::sleep(wait).await;
            response = self.send("GET", &poll, what).await?;
        }
        json(response, what, permission)
    }

    /// The path of a link ARM gave (`Location`, `nextLink`), if it is on the ARM origin: the
    /// token is never sent anywhere else.
    fn on_arm(&self, link: &str, what: &str) -> Result<String, Unavailable> {
        let refused = || Unavailable::Refused {
            what: what.to_string(),
            why: format!(
                "a link outside {} was not followed (the token is sent to ARM only): '{}'",
                self.base.origin(),
                crate::sanitize::echo(link)
            ),
        };
        let url = Url::parse(link).map_err(|_| refused())?;
        if url.origin() != self.base.origin() {
            return Err(refused());
        }
        url.path
            .strip_prefix(self.base.path.trim_end_matches('/'))
            .map(str::to_string)
            .ok_or_else(refused)
    }
}

/// A path is sent only if it is an ARM path: it starts with `/`, and holds no control
/// character, space, backslash, fragment or `..` segment (ids come from ARM answers, and a
/// hostile one must not turn into another request).
fn checked_path<'p>(path: &'p str, what: &str) -> Result<&'p str, Unavailable> {
    let (route, _) = path.split_once('?').unwrap_or((path, ""));
    let bad = !path.starts_with('/')
        || path
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\' || c == '#')
        || route.split('/').any(|segment| segment == "..")
        || route.contains('%');
    if bad {
        return Err(Unavailable::Refused {
            what: what.to_string(),
            why: format!("'{}' is not an ARM path; it was not sent", crate::sanitize::echo(path)),
        });
    }
    Ok(path)
}

/// The body of a 200 as JSON, or the typed reason it is not one.
fn json(response: Response, what: &str, permission: &'static str) -> Result<Value, Unavailable> {
    let code = error_code(&response.body);
    let what = what.to_string();
    match response.status {
        200 => serde_json::from_str(&response.body).map_err(|_| Unavailable::Malformed { what }),
        403 => Err(Unavailable::Forbidden { what, permission, code }),
        404 => Err(Unavailable::NotFound { what, code }),
        status => Err(Unavailable::Status { what, status, code }),
    }
}

/// ARM's `error.code`, shown as ` (Code)`.
fn error_code(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/code").and_then(Value::as_str).map(str::to_string))
        .map(|c| format!(" ({})", crate::sanitize::echo(&c)))
        .unwrap_or_default()
}

/// Runs futures concurrently (they borrow the one [`Arm`], so they can't be spawned); the
/// semaphore in [`Arm`] bounds how many requests they have in flight.
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("every future finished")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_arm_paths_are_sent() {
        for good in [
            "/subscriptions/s/resourceGroups/rg(1)/providers/x",
            "/subscriptions?api-version=2022-12-01&$skipToken=a%3Db",
            "//subscriptions/s/x/operationResults/1?api-version=1",
        ] {
            assert!(checked_path(good, "x").is_ok(), "{good}");
        }
        for bad in [
            "subscriptions/s",
            "/subscriptions/s\r\nHost: evil",
            "/subscriptions/s x",
            "/subscriptions/../../x",
            "/subscriptions/%2e%2e/x",
            "/subscriptions/s#frag",
            "/subscriptions/s\\x",
        ] {
            let e = checked_path(bad, "the NIC").unwrap_err();
            assert!(e.to_string().contains("is not an ARM path"), "{bad}: {e}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }

    #[test]
    fn warnings_name_the_permission() {
        let e = Unavailable::Forbidden {
            what: "the effective security rules of network interface nic1".into(),
            permission: "Microsoft.Network/networkInterfaces/effectiveNetworkSecurityGroups/action",
            code: error_code(r#"{"error":{"code":"AuthorizationFailed","message":"..."}}"#),
        };
        assert_eq!(
            e.warning(),
            "Azure attribution: reading the effective security rules of network interface nic1 needs Microsoft.Network/networkInterfaces/effectiveNetworkSecurityGroups/action (HTTP 403 (AuthorizationFailed))"
        );
    }

    #[tokio::test]
    async fn join_all_keeps_order() {
        let futures: Vec<_> = [30u64, 0, 10]
            .into_iter()
            .map(|ms| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                ms
            })
            .collect();
        assert_eq!(join_all(futures).await, [30, 0, 10]);
    }
}
