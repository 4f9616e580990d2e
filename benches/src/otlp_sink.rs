//! An OTLP/HTTP receiver on loopback for the benches: it decodes every
//! request with the generated protobuf types (prost) and counts data points
//! and log records, on a thread of its own.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;

/// What the receiver has decoded so far.
#[derive(Debug, Default)]
pub struct Counts {
    pub points: AtomicU64,
    pub logs: AtomicU64,
    pub requests: AtomicU64,
}

/// A running receiver: its base URL (`http://127.0.0.1:PORT`) and counts.
#[derive(Debug)]
pub struct Sink {
    pub url: String,
    pub counts: Arc<Counts>,
}

fn body(headers: &HeaderMap, body: &Bytes) -> Vec<u8> {
    let gzip = headers
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes() == b"gzip");
    let mut out = Vec::new();
    if gzip
        && flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .is_ok()
    {
        return out;
    }
    body.to_vec()
}

async fn metrics(State(c): State<Arc<Counts>>, headers: HeaderMap, raw: Bytes) -> &'static str {
    if let Ok(req) = ExportMetricsServiceRequest::decode(&body(&headers, &raw)[..]) {
        let n: usize = req
            .resource_metrics
            .iter()
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics)
            .map(|m| match &m.data {
                Some(Data::Gauge(g)) => g.data_points.len(),
                Some(Data::Sum(s)) => s.data_points.len(),
                _ => 0,
            })
            .sum();
        c.points.fetch_add(n as u64, Ordering::Relaxed);
        c.requests.fetch_add(1, Ordering::Relaxed);
    }
    ""
}

async fn logs(State(c): State<Arc<Counts>>, headers: HeaderMap, raw: Bytes) -> &'static str {
    if let Ok(req) = ExportLogsServiceRequest::decode(&body(&headers, &raw)[..]) {
        let n: usize = req
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .map(|sl| sl.log_records.len())
            .sum();
        c.logs.fetch_add(n as u64, Ordering::Relaxed);
        c.requests.fetch_add(1, Ordering::Relaxed);
    }
    ""
}

/// Starts a receiver on a free loopback port.
pub fn start() -> Sink {
    let counts = Arc::new(Counts::default());
    let (tx, rx) = std::sync::mpsc::channel();
    let c = counts.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let _ = tx.send(listener.local_addr().expect("addr").to_string());
            let app = Router::new()
                .route("/v1/metrics", post(metrics))
                .route("/v1/logs", post(logs))
                .with_state(c);
            let _ = axum::serve(listener, app).await;
        });
    });
    Sink {
        url: format!("http://{}", rx.recv().expect("receiver address")),
        counts,
    }
}
