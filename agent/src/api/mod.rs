//! The local API: JSON over HTTP under `/api/v1/`, on a Unix socket by
//! default (mode 0660: who may read it is who may connect) and on TCP when
//! `api.listen` is set (loopback only until TLS is supported).
//!
//! Reads only so far: series, queries, status, processes, GPUs; routes that
//! act on incidents arrive with them. Who may call what is decided by
//! [`auth`]: bearer tokens with roles, required on TCP. The bodies are
//! the types of `ward_shared::api`; errors are `{"error": "..."}` naming
//! what was wrong.

pub mod auth;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use ward_shared::SeriesId;
use ward_shared::api::{ApiError, Health, QueryRequest, SeriesInfo, SeriesPoints};
use ward_shared::status::AgentStatus;

use crate::collect::gpu::GpuTable;
use crate::collect::process::ProcessTable;
use crate::daemon::SharedStore;
use crate::store::Query as StoreQuery;

/// Most bytes a request body may have.
pub const BODY_LIMIT: usize = 64 << 10;
/// Most series one query may ask for, and most points it may return.
const MAX_QUERY_SERIES: usize = 1000;
const MAX_POINTS: usize = 2_000_000;

#[derive(Debug, Error)]
pub enum ApiStartError {
    #[error("API socket {path}: {source}")]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("API address {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// What the handlers read.
#[derive(Clone)]
pub struct ApiState {
    pub store: SharedStore,
    pub processes: ProcessTable,
    pub gpus: GpuTable,
    pub status: Arc<dyn Fn() -> AgentStatus + Send + Sync>,
    pub host: String,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// An error answer: status code and message.
#[derive(Debug)]
pub struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(ApiError { error: self.1 })).into_response()
    }
}

fn bad(msg: impl Into<String>) -> Failure {
    Failure(StatusCode::BAD_REQUEST, msg.into())
}

/// The routes, guarded for the transport they are served on.
pub fn router(state: ApiState, guard: auth::Guard) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/status", get(status))
        .route("/api/v1/series", get(series))
        .route("/api/v1/query", post(query))
        .route("/api/v1/processes", get(processes))
        .route("/api/v1/gpus", get(gpus))
        .fallback(|| async {
            Failure(
                StatusCode::NOT_FOUND,
                "no such route; routes are under /api/v1/".into(),
            )
        })
        .layer(axum::middleware::from_fn_with_state(guard, auth::check))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

async fn health(State(s): State<ApiState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        host: s.host,
    })
}

async fn status(State(s): State<ApiState>) -> Json<AgentStatus> {
    Json((s.status)())
}

#[derive(Debug, Deserialize)]
struct SeriesParams {
    #[serde(default, rename = "match")]
    matching: String,
}

async fn series(
    State(s): State<ApiState>,
    params: Result<Query<SeriesParams>, QueryRejection>,
) -> Result<Json<Vec<SeriesInfo>>, Failure> {
    let Query(params) = params.map_err(|e| bad(e.body_text()))?;
    let store = s.store.lock();
    Ok(Json(
        store
            .series()
            .filter_map(|(id, d)| {
                let key = d.key.to_string();
                key.contains(&params.matching).then(|| SeriesInfo {
                    id: id.0,
                    key,
                    name: d.key.name.clone(),
                    kind: d.kind,
                    unit: d.unit.clone(),
                })
            })
            .collect(),
    ))
}

async fn query(
    State(s): State<ApiState>,
    body: Result<Json<QueryRequest>, JsonRejection>,
) -> Result<Json<Vec<SeriesPoints>>, Failure> {
    let Json(q) = body.map_err(|e| bad(e.body_text()))?;
    if q.series.len() > MAX_QUERY_SERIES {
        return Err(bad(format!(
            "{} series asked for; at most {MAX_QUERY_SERIES} per query",
            q.series.len()
        )));
    }
    if q.end < q.start {
        return Err(bad(format!("end {} is before start {}", q.end, q.start)));
    }
    let store = s.store.clone();
    tokio::task::spawn_blocking(move || {
        let store = store.lock();
        let mut out = Vec::with_capacity(q.series.len());
        let mut total = 0;
        for id in q.series {
            let points = store
                .query(&StoreQuery {
                    series: SeriesId(id),
                    start: q.start,
                    end: q.end,
                    step: q.step,
                    agg: q.agg,
                })
                .map_err(|e| bad(e.to_string()))?;
            total += points.len();
            if total > MAX_POINTS {
                return Err(bad(format!(
                    "more than {MAX_POINTS} points; ask for a larger step"
                )));
            }
            out.push(SeriesPoints {
                series: id,
                points: points.into_iter().map(|p| (p.ts, p.value)).collect(),
            });
        }
        Ok(Json(out))
    })
    .await
    .map_err(|e| {
        Failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("query failed: {e}"),
        )
    })?
}

async fn processes(State(s): State<ApiState>) -> Json<ward_shared::api::ProcessSnapshot> {
    Json(s.processes.latest())
}

async fn gpus(State(s): State<ApiState>) -> Json<ward_shared::api::GpuState> {
    Json(s.gpus.latest())
}

/// The socket path when `api.socket` is empty: `$XDG_RUNTIME_DIR/ward/api.sock`
/// when the session has one, else `api.sock` in the data directory.
pub fn default_socket(data_dir: &Path) -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(run) => PathBuf::from(run).join("ward/api.sock"),
        None => data_dir.join("api.sock"),
    }
}

/// Serves `router` on a Unix socket until `stop`.
pub async fn serve_unix(
    path: &Path,
    router: Router,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, ApiStartError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |source| ApiStartError::Socket {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    // A socket file left by an agent that died: nobody answers on it.
    if path.exists() && std::os::unix::net::UnixStream::connect(path).is_err() {
        std::fs::remove_file(path).map_err(err)?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
    info!(socket = %path.display(), "api listening");
    let owned = path.to_path_buf();
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
        {
            warn!(error = %e, "api stopped");
        }
        let _ = std::fs::remove_file(owned);
    }))
}

/// Serves `router` on TCP until `stop`; only loopback addresses, since
/// there is no TLS yet.
pub async fn serve_tcp(
    addr: &str,
    router: Router,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, ApiStartError> {
    let err = |source| ApiStartError::Listen {
        addr: addr.to_string(),
        source,
    };
    let parsed: std::net::SocketAddr = addr.parse().map_err(|e| {
        err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{e}"),
        ))
    })?;
    if !parsed.ip().is_loopback() {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "a non-loopback address needs TLS, which the API does not have yet; listen on 127.0.0.1 or use the socket",
        )));
    }
    let listener = tokio::net::TcpListener::bind(parsed).await.map_err(err)?;
    let bound = listener.local_addr().map_err(err)?;
    info!(addr = %bound, "api listening on tcp");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
        {
            warn!(error = %e, "api stopped");
        }
    }))
}
