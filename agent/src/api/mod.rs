//! The local API: JSON over HTTP under `/api/v1/`, on a Unix socket by
//! default (mode 0660: who may read it is who may connect) and on TCP when
//! `api.listen` is set: loopback, or any address with TLS (`api.tls_cert`,
//! `api.tls_key`; see [`tls`]).
//!
//! Series, queries, status, processes, GPUs, incidents (list, detail,
//! acknowledge, resolve, notes, feedback), jobs and their runs, job
//! events. Who may call what is decided by
//! [`auth`]: bearer tokens with roles, required on TCP. The bodies are
//! the types of `ward_shared::api`; errors are `{"error": "..."}` naming
//! what was wrong.

pub mod auth;
mod settings;
pub mod tls;

pub use settings::{ApiSettings, CredentialError, Credentials, TlsFiles};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path as AxumPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use ward_shared::SeriesId;
use ward_shared::api::{ApiError, Health, QueryRequest, SeriesInfo, SeriesPoints};
use ward_shared::incident::{FeedbackRequest, Incident, IncidentAction, NoteRequest};
use ward_shared::jobs::{JobEvent, JobRun, JobSummary};
use ward_shared::status::AgentStatus;

use auth::Role;

use crate::collect::gpu::GpuTable;
use crate::collect::process::ProcessTable;
use crate::incidents::{IncidentError, SharedIncidents};
use crate::jobs::{JobError, SharedJobs};
use crate::store::Query as StoreQuery;
use crate::store::SharedStore;
use ward_shared::time::now_ms;

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
    pub incidents: SharedIncidents,
    pub jobs: SharedJobs,
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
        .route("/api/v1/incidents", get(incidents))
        .route("/api/v1/incidents/{id}", get(incident))
        .route("/api/v1/incidents/{id}/ack", post(acknowledge))
        .route("/api/v1/incidents/{id}/resolve", post(resolve))
        .route("/api/v1/incidents/{id}/notes", post(note))
        .route("/api/v1/incidents/{id}/feedback", post(feedback))
        .route("/api/v1/jobs", get(jobs))
        .route("/api/v1/jobs/events", post(job_event))
        .route("/api/v1/jobs/{name}/runs", get(job_runs))
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentParams {
    /// `active` (default) or `all`.
    #[serde(default)]
    state: Option<String>,
}

async fn incidents(
    State(s): State<ApiState>,
    params: Result<Query<IncidentParams>, QueryRejection>,
) -> Result<Json<Vec<Incident>>, Failure> {
    let Query(params) = params.map_err(|e| bad(e.body_text()))?;
    let all = match params.state.as_deref() {
        None | Some("active") => false,
        Some("all") => true,
        Some(other) => {
            return Err(bad(format!(
                "state={other:?} is not valid: expected \"active\" or \"all\""
            )));
        }
    };
    Ok(Json(s.incidents.lock().list(all)))
}

fn incident_id(id: Result<AxumPath<String>, PathRejection>) -> Result<u64, Failure> {
    let AxumPath(id) = id.map_err(|e| bad(e.body_text()))?;
    id.parse().map_err(|_| {
        bad(format!(
            "incident id {id:?} is not valid: expected a number"
        ))
    })
}

fn incident_failure(e: IncidentError) -> Failure {
    match e {
        IncidentError::NotFound(_) => Failure(StatusCode::NOT_FOUND, e.to_string()),
        IncidentError::Resolved(..) => Failure(StatusCode::CONFLICT, e.to_string()),
        IncidentError::BadNote => bad(e.to_string()),
        IncidentError::Store(_) => Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Who acted: what the body says, else the caller's role.
fn actor(by: Option<String>, role: Role) -> Result<String, Failure> {
    match by {
        Some(b) if b.trim().is_empty() || b.len() > 100 || b.chars().any(char::is_control) => {
            Err(bad(format!(
                "by = {b:?} is not valid: expected 1 to 100 printable characters"
            )))
        }
        Some(b) => Ok(format!("{} ({})", b.trim(), role.name())),
        None => Ok(role.name().to_string()),
    }
}

async fn incident(
    State(s): State<ApiState>,
    id: Result<AxumPath<String>, PathRejection>,
) -> Result<Json<Incident>, Failure> {
    let id = incident_id(id)?;
    s.incidents
        .lock()
        .get(id)
        .map(Json)
        .ok_or_else(|| incident_failure(IncidentError::NotFound(id)))
}

/// What every operator action shares: the id, the body, who acts; then
/// `act` on the book.
fn on_incident<B>(
    s: &ApiState,
    role: Role,
    id: Result<AxumPath<String>, PathRejection>,
    body: Result<Json<B>, JsonRejection>,
    by: impl FnOnce(&B) -> Option<String>,
    act: impl FnOnce(&mut crate::incidents::Incidents, u64, &str, B) -> Result<Incident, IncidentError>,
) -> Result<Json<Incident>, Failure> {
    let id = incident_id(id)?;
    let Json(body) = body.map_err(|e| bad(e.body_text()))?;
    let who = actor(by(&body), role)?;
    let out = act(&mut s.incidents.lock(), id, &who, body);
    out.map(Json).map_err(incident_failure)
}

async fn acknowledge(
    State(s): State<ApiState>,
    Extension(role): Extension<Role>,
    id: Result<AxumPath<String>, PathRejection>,
    body: Result<Json<IncidentAction>, JsonRejection>,
) -> Result<Json<Incident>, Failure> {
    on_incident(
        &s,
        role,
        id,
        body,
        |a| a.by.clone(),
        |book, id, by, _| book.acknowledge(id, by, now_ms()),
    )
}

async fn resolve(
    State(s): State<ApiState>,
    Extension(role): Extension<Role>,
    id: Result<AxumPath<String>, PathRejection>,
    body: Result<Json<IncidentAction>, JsonRejection>,
) -> Result<Json<Incident>, Failure> {
    on_incident(
        &s,
        role,
        id,
        body,
        |a| a.by.clone(),
        |book, id, by, _| book.resolve(id, by, now_ms()),
    )
}

async fn note(
    State(s): State<ApiState>,
    Extension(role): Extension<Role>,
    id: Result<AxumPath<String>, PathRejection>,
    body: Result<Json<NoteRequest>, JsonRejection>,
) -> Result<Json<Incident>, Failure> {
    on_incident(
        &s,
        role,
        id,
        body,
        |n| n.by.clone(),
        |book, id, by, n| book.note(id, by, &n.text, now_ms()),
    )
}

async fn feedback(
    State(s): State<ApiState>,
    Extension(role): Extension<Role>,
    id: Result<AxumPath<String>, PathRejection>,
    body: Result<Json<FeedbackRequest>, JsonRejection>,
) -> Result<Json<Incident>, Failure> {
    on_incident(
        &s,
        role,
        id,
        body,
        |f| f.by.clone(),
        |book, id, by, f| book.feedback(id, by, f.feedback, now_ms()),
    )
}

async fn jobs(State(s): State<ApiState>) -> Json<Vec<JobSummary>> {
    Json(s.jobs.lock().summaries())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunsParams {
    #[serde(default)]
    limit: Option<usize>,
}

async fn job_runs(
    State(s): State<ApiState>,
    name: Result<AxumPath<String>, PathRejection>,
    params: Result<Query<RunsParams>, QueryRejection>,
) -> Result<Json<Vec<JobRun>>, Failure> {
    let AxumPath(name) = name.map_err(|e| bad(e.body_text()))?;
    let Query(params) = params.map_err(|e| bad(e.body_text()))?;
    let limit = params.limit.unwrap_or(100).min(crate::jobs::KEEP_RUNS);
    s.jobs
        .lock()
        .runs(&name, limit)
        .map(Json)
        .ok_or_else(|| Failure(StatusCode::NOT_FOUND, format!("no job named {name:?}")))
}

async fn job_event(
    State(s): State<ApiState>,
    body: Result<Json<JobEvent>, JsonRejection>,
) -> Result<Json<JobRun>, Failure> {
    let Json(event) = match body {
        Ok(b) => b,
        Err(e) => {
            // Counted like any refused event.
            s.jobs.lock().refused += 1;
            return Err(bad(e.body_text()));
        }
    };
    let mut jobs = s.jobs.lock();
    let mut incidents = s.incidents.lock();
    match jobs.apply(&event, now_ms(), &mut incidents) {
        Ok(run) => Ok(Json(run)),
        Err(e @ JobError::Invalid(_)) => Err(bad(e.to_string())),
        Err(e @ JobError::Store(_)) => {
            Err(Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
        }
    }
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
    tls: Option<Arc<rustls::ServerConfig>>,
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
    if !parsed.ip().is_loopback() && tls.is_none() {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "a non-loopback address needs TLS: set api.tls_cert and api.tls_key, or listen on 127.0.0.1",
        )));
    }
    let listener = tokio::net::TcpListener::bind(parsed).await.map_err(err)?;
    let bound = listener.local_addr().map_err(err)?;
    info!(addr = %bound, tls = tls.is_some(), "api listening on tcp");
    Ok(tokio::spawn(async move {
        let served = match tls {
            Some(config) => {
                let listener = tls::TlsListener {
                    tcp: listener,
                    acceptor: tokio_rustls::TlsAcceptor::from(config),
                };
                axum::serve(listener, router)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
            }
            None => {
                axum::serve(listener, router)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
            }
        };
        if let Err(e) = served {
            warn!(error = %e, "api stopped");
        }
    }))
}
