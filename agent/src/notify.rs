//! Notifications: incidents pushed to where the on-call engineer looks.
//!
//! Targets, from `[notify]`: a generic webhook (the incident as JSON), a
//! Slack-compatible incoming webhook (`{"text": ...}`: Slack, Mattermost,
//! Rocket.Chat), and PagerDuty's Events API v2 (trigger, acknowledge and
//! resolve under one dedup key per incident, so PagerDuty keeps one alert).
//!
//! - What is sent: an incident opened, its severity raised, acknowledged,
//!   resolved. Incidents under `notify.min_severity` are not sent, nor is
//!   what follows them.
//! - Each target has a queue of its own, sent in order: one slow or failing
//!   target delays no other. A failed send (connection refused, timeout, 5xx,
//!   429) is retried with exponential backoff and jitter, from 1 s up to five
//!   tries, honouring `Retry-After`; a 4xx other than 429 is not retried.
//! - Each target sends at most `notify.max_per_minute`; past it, notices are
//!   dropped and counted, never queued without bound.
//! - HTTPS with the system's root certificates; secrets (the PagerDuty
//!   routing key, webhook URLs' paths) are never logged.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use hyper::{StatusCode, Uri};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{info, warn};
use ward_shared::incident::{Incident, Severity};

/// What happened to an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Opened,
    Escalated,
    Acknowledged,
    Resolved,
}

impl Event {
    fn word(self) -> &'static str {
        match self {
            Event::Opened => "opened",
            Event::Escalated => "escalated",
            Event::Acknowledged => "acknowledged",
            Event::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Notice {
    pub event: Event,
    pub incident: Incident,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Webhook,
    Slack,
    PagerDuty { routing_key: String },
}

/// One place notices go.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: Kind,
    pub url: Uri,
}

impl Target {
    /// What logs may say of it: the kind and host, never a path or a key.
    pub fn name(&self) -> String {
        let kind = match self.kind {
            Kind::Webhook => "webhook",
            Kind::Slack => "slack",
            Kind::PagerDuty { .. } => "pagerduty",
        };
        format!("{kind} {}", self.url.host().unwrap_or("?"))
    }
}

#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub targets: Vec<Target>,
    pub min_severity: Severity,
    pub max_per_minute: u32,
    pub host: String,
    /// First retry delay; doubles each try.
    pub backoff: Duration,
    pub tries: u32,
    pub timeout: Duration,
}

/// Counts for the status and the tests.
#[derive(Debug, Default)]
pub struct NotifyStats {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub rate_limited: AtomicU64,
    pub queue_full: AtomicU64,
}

/// The incident book's side: never waits.
#[derive(Debug, Clone)]
pub struct Notifier {
    tx: mpsc::Sender<Notice>,
    stats: Arc<NotifyStats>,
}

impl Notifier {
    pub fn notify(&self, event: Event, incident: &Incident) {
        let notice = Notice {
            event,
            incident: incident.clone(),
        };
        if self.tx.try_send(notice).is_err() {
            self.stats.queue_full.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Starts a sender task per target on the current tokio runtime.
pub fn start(settings: NotifySettings) -> (Notifier, Arc<NotifyStats>) {
    let stats = Arc::new(NotifyStats::default());
    let (tx, mut rx) = mpsc::channel::<Notice>(1024);
    let tls = tls_config();
    let mut queues = Vec::new();
    for target in settings.targets.clone() {
        let (qtx, qrx) = mpsc::channel::<Notice>(256);
        queues.push(qtx);
        tokio::spawn(send_loop(
            target,
            settings.clone(),
            tls.clone(),
            qrx,
            stats.clone(),
        ));
    }
    let fan_stats = stats.clone();
    tokio::spawn(async move {
        while let Some(n) = rx.recv().await {
            for q in &queues {
                if q.try_send(n.clone()).is_err() {
                    fan_stats.queue_full.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    (
        Notifier {
            tx,
            stats: stats.clone(),
        },
        stats,
    )
}

fn tls_config() -> Option<Arc<rustls::ClientConfig>> {
    match ward_shared::client::system_tls() {
        Ok((config, 0)) => {
            warn!("no system root certificates found: HTTPS notification targets will fail");
            Some(config)
        }
        Ok((config, _)) => Some(config),
        Err(e) => {
            warn!(error = %e, "TLS unavailable: HTTPS notification targets will fail");
            None
        }
    }
}

/// RFC 3339 in UTC.
fn rfc3339(ms: i64) -> String {
    let t = ward_shared::time::utc(ms);
    format!("{}T{}", &t[..10], &t[11..])
}

/// The request body for `target`.
pub fn body(target: &Target, n: &Notice, host: &str) -> serde_json::Value {
    let i = &n.incident;
    match &target.kind {
        Kind::Webhook => json!({
            "version": 1,
            "event": n.event.word(),
            "host": host,
            "incident": i,
        }),
        Kind::Slack => {
            let mark = match (n.event, i.severity) {
                (Event::Resolved, _) => "✓",
                (_, Severity::Critical) => "‼",
                (_, Severity::Warning) => "!",
                (_, Severity::Info) => "·",
            };
            let why: Vec<String> = i
                .signals
                .iter()
                .take(3)
                .map(|s| format!("• {}: {} {}", s.what, s.observed, s.unit))
                .collect();
            json!({
                "text": format!(
                    "{mark} [{}] {} on {host}: {} (incident #{}, since {})\n{}",
                    i.severity.word(),
                    n.event.word(),
                    i.title,
                    i.id,
                    ward_shared::time::utc(i.opened),
                    why.join("\n")
                )
            })
        }
        Kind::PagerDuty { routing_key } => {
            let action = match n.event {
                Event::Opened | Event::Escalated => "trigger",
                Event::Acknowledged => "acknowledge",
                Event::Resolved => "resolve",
            };
            let summary: String = i.title.chars().take(1024).collect();
            json!({
                "routing_key": routing_key,
                "event_action": action,
                "dedup_key": format!("ward:{host}:{}:{}", i.key, i.id),
                "payload": {
                    "summary": summary,
                    "source": host,
                    "severity": i.severity.word(),
                    "timestamp": rfc3339(i.updated),
                    "component": i.key,
                    "group": format!("{:?}", i.source).to_lowercase(),
                    "custom_details": {
                        "incident": i.id,
                        "signals": i.signals,
                        "context": i.context,
                    },
                },
            })
        }
    }
}

/// A token bucket: `per_minute` sends, refilled evenly.
struct Bucket {
    tokens: f64,
    per_minute: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.per_minute / 60.0;
        self.tokens = (self.tokens + refill).min(self.per_minute);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

async fn send_loop(
    target: Target,
    settings: NotifySettings,
    tls: Option<Arc<rustls::ClientConfig>>,
    mut rx: mpsc::Receiver<Notice>,
    stats: Arc<NotifyStats>,
) {
    let per_minute = f64::from(settings.max_per_minute);
    let mut bucket = Bucket {
        tokens: per_minute,
        per_minute,
        at: Instant::now(),
    };
    // Incidents this target was told of: what follows them is sent too.
    let mut told: HashSet<u64> = HashSet::new();
    // Dedupe: the last event sent per incident.
    let mut last: HashMap<u64, Event> = HashMap::new();
    while let Some(n) = rx.recv().await {
        let id = n.incident.id;
        // What follows an incident this target was told of is sent; a new
        // one only from the minimum severity up.
        let relevant = told.contains(&id)
            || (matches!(n.event, Event::Opened | Event::Escalated)
                && n.incident.severity >= settings.min_severity);
        if !relevant {
            continue;
        }
        if last.get(&id) == Some(&n.event) && n.event != Event::Escalated {
            continue;
        }
        if !bucket.take() {
            stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            warn!(target = %target.name(), incident = id, "notification dropped: over notify.max_per_minute");
            continue;
        }
        let body = body(&target, &n, &settings.host);
        match deliver(&target, &body, &settings, tls.as_ref()).await {
            Ok(()) => {
                stats.sent.fetch_add(1, Ordering::Relaxed);
                told.insert(id);
                last.insert(id, n.event);
                if n.event == Event::Resolved {
                    told.remove(&id);
                    last.remove(&id);
                }
                info!(target = %target.name(), incident = id, event = n.event.word(), "notification sent");
            }
            Err(e) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                warn!(target = %target.name(), incident = id, error = %e, "notification failed");
            }
        }
    }
}

/// Sends with retries; the error says what the last try met.
async fn deliver(
    target: &Target,
    body: &serde_json::Value,
    settings: &NotifySettings,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<(), String> {
    let bytes = Bytes::from(serde_json::to_vec(body).map_err(|e| e.to_string())?);
    let mut delay = settings.backoff;
    let mut last = String::new();
    for attempt in 1..=settings.tries {
        let outcome =
            tokio::time::timeout(settings.timeout, post(&target.url, bytes.clone(), tls)).await;
        let retry_after = match outcome {
            Ok(Ok((status, _))) if status.is_success() => return Ok(()),
            Ok(Ok((status, retry_after))) => {
                last = format!("HTTP {status}");
                if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
                    return Err(format!("{last}: refused, not retried"));
                }
                retry_after
            }
            Ok(Err(e)) => {
                last = e;
                None
            }
            Err(_) => {
                last = format!("no answer in {:?}", settings.timeout);
                None
            }
        };
        if attempt == settings.tries {
            break;
        }
        tokio::time::sleep(retry_after.unwrap_or(delay) + crate::outbound::jitter(delay)).await;
        delay = delay.saturating_mul(2);
    }
    Err(format!("{last} after {} tries", settings.tries))
}

/// One POST; the status and any `Retry-After` (seconds).
async fn post(
    url: &Uri,
    body: Bytes,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<(StatusCode, Option<Duration>), String> {
    let json = [(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    )];
    let response = crate::outbound::post(url, &json, body, tls).await?;
    Ok((response.status(), crate::outbound::retry_after(&response)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A local HTTP receiver: records every request; `/flaky` fails its first
    /// two, `/busy` answers 429 with Retry-After once, `/bad` always 400.
    type Seen = Arc<Mutex<Vec<(String, serde_json::Value)>>>;
    type Hits = Arc<Mutex<HashMap<String, u32>>>;

    async fn receiver() -> (String, Seen) {
        use axum::extract::{Path, State};
        use axum::http::StatusCode as S;
        use axum::response::IntoResponse;
        let seen: Seen = Arc::default();
        let hits: Hits = Arc::default();
        let app = axum::Router::new()
            .route(
                "/{name}",
                axum::routing::post(
                    |State((seen, hits)): State<(Seen, Hits)>,
                     Path(name): Path<String>,
                     body: String| async move {
                        let n = {
                            let mut h = hits.lock().unwrap();
                            let n = h.entry(name.clone()).or_default();
                            *n += 1;
                            *n
                        };
                        let json = serde_json::from_str(&body).unwrap();
                        seen.lock().unwrap().push((name.clone(), json));
                        match (name.as_str(), n) {
                            ("flaky", 1 | 2) => S::INTERNAL_SERVER_ERROR.into_response(),
                            ("busy", 1) => {
                                (S::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response()
                            }
                            ("bad", _) => S::BAD_REQUEST.into_response(),
                            _ => S::ACCEPTED.into_response(),
                        }
                    },
                ),
            )
            .with_state((seen.clone(), hits));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), seen)
    }

    fn incident(id: u64, severity: Severity) -> Incident {
        let at = 1_795_305_600_000;
        Incident {
            title: format!("job etl{id} failed (exit code 2)"),
            severity,
            opened: at,
            updated: at,
            peak: at,
            ..ward_shared::fixtures::incident(id, &format!("job:etl{id}:failed"))
        }
    }

    fn settings(base: &str, targets: &[(&str, Kind)], per_minute: u32) -> NotifySettings {
        NotifySettings {
            targets: targets
                .iter()
                .map(|(path, kind)| Target {
                    kind: kind.clone(),
                    url: format!("{base}/{path}").parse().unwrap(),
                })
                .collect(),
            min_severity: Severity::Warning,
            max_per_minute: per_minute,
            host: "db-7".into(),
            backoff: Duration::from_millis(50),
            tries: 5,
            timeout: Duration::from_secs(2),
        }
    }

    async fn until(what: &str, ok: impl Fn() -> bool) {
        for _ in 0..100 {
            if ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}");
    }

    #[tokio::test]
    async fn incidents_reach_a_webhook_slack_and_pagerduty_in_order_through_failures() {
        let (base, seen) = receiver().await;
        let pd = Kind::PagerDuty {
            routing_key: "R0UT1NG".into(),
        };
        let (notifier, stats) = start(settings(
            &base,
            &[("flaky", Kind::Webhook), ("slack", Kind::Slack), ("pd", pd)],
            20,
        ));
        let a = incident(1, Severity::Warning);
        notifier.notify(Event::Opened, &a);
        notifier.notify(Event::Acknowledged, &a);
        notifier.notify(Event::Resolved, &a);
        // Below the bar: not sent; escalated past it: sent from then on.
        let mut b = incident(2, Severity::Info);
        notifier.notify(Event::Opened, &b);
        b.severity = Severity::Critical;
        notifier.notify(Event::Escalated, &b);
        until("every notice", || stats.sent.load(Ordering::Relaxed) == 12).await;
        let seen = seen.lock().unwrap().clone();
        let at = |name: &str| -> Vec<serde_json::Value> {
            seen.iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .collect()
        };
        // The webhook failed twice with 500, and still got every event, in order.
        let hook: Vec<String> = at("flaky")
            .iter()
            .map(|v| format!("{} {}", v["incident"]["id"], v["event"].as_str().unwrap()))
            .collect();
        assert_eq!(
            hook,
            [
                "1 opened",
                "1 opened",
                "1 opened",
                "1 acknowledged",
                "1 resolved",
                "2 escalated"
            ]
        );
        assert_eq!(at("flaky")[0]["host"], "db-7");
        let pd = at("pd");
        let actions: Vec<&str> = pd
            .iter()
            .map(|v| v["event_action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["trigger", "acknowledge", "resolve", "trigger"]);
        assert_eq!(pd[0]["dedup_key"], "ward:db-7:job:etl1:failed:1");
        assert!(
            pd[..3].iter().all(|v| v["dedup_key"] == pd[0]["dedup_key"]),
            "one PagerDuty alert per incident"
        );
        assert_eq!(pd[0]["routing_key"], "R0UT1NG");
        assert_eq!(pd[0]["payload"]["severity"], "warning");
        assert_eq!(pd[0]["payload"]["timestamp"], "2026-11-22T00:00:00Z");
        assert_eq!(pd[3]["payload"]["severity"], "critical");
        let slack = at("slack");
        assert!(
            slack[0]["text"]
                .as_str()
                .unwrap()
                .starts_with("! [warning] opened on db-7: job etl1 failed (exit code 2) (incident #1, since 2026-11-22 00:00:00Z)"),
            "{}",
            slack[0]["text"]
        );
        assert!(
            slack[2]["text"]
                .as_str()
                .unwrap()
                .starts_with("✓ [warning] resolved on db-7")
        );
        assert_eq!(stats.failed.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn floods_are_rate_limited_and_refusals_are_not_retried() {
        let (base, seen) = receiver().await;
        let (notifier, stats) = start(settings(&base, &[("hook", Kind::Webhook)], 3));
        for id in 1..=5 {
            notifier.notify(Event::Opened, &incident(id, Severity::Critical));
        }
        until("the rate limit", || {
            stats.rate_limited.load(Ordering::Relaxed) == 2
        })
        .await;
        assert_eq!(stats.sent.load(Ordering::Relaxed), 3);

        let (notifier, stats) = start(settings(
            &base,
            &[("bad", Kind::Webhook), ("busy", Kind::Webhook)],
            20,
        ));
        notifier.notify(Event::Opened, &incident(9, Severity::Critical));
        until("the refusal and the retry", || {
            stats.failed.load(Ordering::Relaxed) == 1 && stats.sent.load(Ordering::Relaxed) == 1
        })
        .await;
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen.iter().filter(|(n, _)| n == "bad").count(),
            1,
            "a 400 is not retried"
        );
        assert_eq!(
            seen.iter().filter(|(n, _)| n == "busy").count(),
            2,
            "a 429 is retried after Retry-After"
        );
    }
}
