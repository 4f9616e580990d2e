//! A request body on every route that takes one, through the agent's real
//! router on a real store (over the socket transport, where no token is
//! needed): the first byte picks the route, the rest is the body. Bad bodies
//! get a 4xx naming the problem; nothing may answer 500 or panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use ward_agent::api::auth::{Guard, Tokens, Transport};
use ward_agent::api::{ApiState, router};
use ward_agent::config::Config;
use ward_agent::store::SharedStore;
use ward_agent::incidents::{Incidents, SharedIncidents};
use ward_agent::jobs::{JobBook, SharedJobs};
use ward_agent::store::{Store, StoreSettings};
use ward_shared::status::{AgentStatus, JobsHealth, StoreHealth};

const ROUTES: [&str; 6] = [
    "/api/v1/query",
    "/api/v1/jobs/events",
    "/api/v1/incidents/1/ack",
    "/api/v1/incidents/1/resolve",
    "/api/v1/incidents/1/notes",
    "/api/v1/incidents/1/feedback",
];

struct Agent {
    rt: tokio::runtime::Runtime,
    router: Router,
    _dir: tempfile::TempDir,
}

fn agent() -> &'static Agent {
    static AGENT: OnceLock<Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = Config::parse("", "defaults", Vec::new()).expect("the default config");
        let store =
            SharedStore::new(Store::open(dir.path(), StoreSettings::default()).expect("a store"));
        let incidents = SharedIncidents::new(
            Incidents::open(store.clone(), 300_000).expect("the incident book"),
        );
        let jobs = SharedJobs::new(
            JobBook::open(store.clone(), config.jobs.health).expect("the job book"),
        );
        let state = ApiState {
            store,
            processes: Default::default(),
            gpus: Default::default(),
            status: Arc::new(|| AgentStatus {
                host: "fuzz".into(),
                version: "0".into(),
                pid: 1,
                started: 0,
                updated: 0,
                state: "running".into(),
                collectors: Vec::new(),
                gpu_unavailable: None,
                gpus: 0,
                store: StoreHealth::default(),
                jobs: JobsHealth::default(),
                detect: None,
                notify: None,
                budget: None,
                exporter: None,
                statsd: None,
            }),
            host: "fuzz".into(),
            incidents,
            jobs,
        };
        let guard = Guard {
            tokens: Arc::new(Tokens::default()),
            transport: Transport::Socket,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        // A failed job opens incident 1, so the incident routes act on one.
        let router = router(state, guard);
        let open = Request::post("/api/v1/jobs/events")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                r#"{"job":"fuzz","run":"r1","kind":"finish","exit_code":1}"#,
            ))
            .expect("a request");
        let answer = rt
            .block_on(router.clone().oneshot(open))
            .expect("an answer");
        assert_eq!(
            answer.status(),
            StatusCode::OK,
            "the seed job event was refused"
        );
        Agent {
            rt,
            router,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let a = agent();
    let request = Request::post(ROUTES[usize::from(pick) % ROUTES.len()])
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
        .expect("a request");
    let answer =
        a.rt.block_on(a.router.clone().oneshot(request))
            .expect("an answer");
    assert_ne!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
});
