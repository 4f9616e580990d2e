//! The fetch worker: a thread with its own async runtime that polls the
//! agent every second for what the current view shows, and answers explicit
//! requests (a chart for a series and range). Results come back as
//! [`Update`]s on a channel; failures come back too, so that the screen can
//! say the data is stale instead of freezing.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use ward_shared::api::{Aggregation, QueryRequest};
use ward_shared::client::{Client, Endpoint};
use ward_shared::time::now_ms;

use crate::message::{Action, Overview, Request, Trend, Update, feedback_word};

/// Overview span and step.
const OVERVIEW_SPAN: i64 = 5 * 60_000;
const OVERVIEW_STEP: i64 = 5_000;
const CHART_POINTS: i64 = 240;

/// Sums series point by point (same step, aligned timestamps).
fn sum(series: &[Vec<(i64, f64)>]) -> Trend {
    let mut by_ts: std::collections::BTreeMap<i64, f64> = Default::default();
    for s in series {
        for &(t, v) in s {
            *by_ts.entry(t).or_default() += v;
        }
    }
    Trend {
        points: by_ts.into_iter().collect(),
    }
}

struct Worker {
    client: Client,
    out: Sender<Update>,
    /// Series ids the overview needs, by role, learnt once.
    roles: Option<HashMap<&'static str, Vec<u32>>>,
}

impl Worker {
    async fn roles(&mut self) -> Result<HashMap<&'static str, Vec<u32>>, String> {
        if let Some(r) = &self.roles {
            return Ok(r.clone());
        }
        let all = self.client.series("").await.map_err(|e| e.to_string())?;
        let mut roles: HashMap<&'static str, Vec<u32>> = HashMap::new();
        for s in &all {
            let role = if s.key.starts_with("system.cpu.utilization{")
                && s.key.contains(r#"cpu.mode="idle""#)
            {
                "cpu_idle"
            } else if s.key.starts_with("system.memory.utilization{") {
                "memory"
            } else if s.key.starts_with("system.network.io{") && !s.key.contains(r#"name="lo""#) {
                if s.key.contains(r#""receive""#) {
                    "rx"
                } else {
                    "tx"
                }
            } else if s.key.starts_with("system.disk.io{") {
                "disk"
            } else if s.key.starts_with("system.cpu.load_average.1m{") {
                "load"
            } else if s.key.starts_with("hw.gpu.utilization{") && !s.key.contains("hw.parent") {
                "gpu"
            } else if s.key.starts_with("ward.anomaly.rate{") {
                "anomaly"
            } else if s.key.starts_with("ward.jobs.running{") {
                "jobs"
            } else if s.key.starts_with("ward.incidents.active{") {
                "incidents"
            } else {
                continue;
            };
            roles.entry(role).or_default().push(s.id);
        }
        // Until the collectors have written once, try again next time.
        if roles.contains_key("cpu_idle") {
            self.roles = Some(roles.clone());
        }
        Ok(roles)
    }

    async fn overview(&mut self) -> Result<Overview, String> {
        let roles = self.roles().await?;
        let end = now_ms();
        let trend = |role: &str, agg: Aggregation| {
            let ids = roles.get(role).cloned().unwrap_or_default();
            let client = self.client.clone();
            async move {
                if ids.is_empty() {
                    return Ok(Trend::default());
                }
                let q = QueryRequest {
                    series: ids,
                    start: end - OVERVIEW_SPAN,
                    end,
                    step: Some(OVERVIEW_STEP),
                    agg,
                };
                let answer = client.query(&q).await.map_err(|e| e.to_string())?;
                Ok::<_, String>(sum(&answer
                    .into_iter()
                    .map(|s| s.points)
                    .collect::<Vec<_>>()))
            }
        };
        let idle = trend("cpu_idle", Aggregation::Avg).await?;
        Ok(Overview {
            cpu_busy: Trend {
                points: idle
                    .points
                    .iter()
                    .map(|&(t, v)| (t, (1.0 - v).clamp(0.0, 1.0)))
                    .collect(),
            },
            memory_used: trend("memory", Aggregation::Avg).await?,
            network_rx: trend("rx", Aggregation::Rate).await?,
            network_tx: trend("tx", Aggregation::Rate).await?,
            disk_io: trend("disk", Aggregation::Rate).await?,
            load: trend("load", Aggregation::Avg).await?,
            gpu_busy: {
                let gpus = roles.get("gpu").map_or(1, Vec::len).max(1) as f64;
                let sum = trend("gpu", Aggregation::Avg).await?;
                Trend {
                    points: sum.points.iter().map(|&(t, v)| (t, v / gpus)).collect(),
                }
            },
            anomaly: trend("anomaly", Aggregation::Avg).await?,
            jobs_running: trend("jobs", Aggregation::Max).await?,
            incidents_active: trend("incidents", Aggregation::Max).await?,
        })
    }

    async fn tick(&mut self) {
        let results = [
            self.client
                .status()
                .await
                .map(|s| Update::Status(Box::new(s)))
                .map_err(|e| e.to_string()),
            self.overview().await.map(Update::Overview),
            self.client
                .processes()
                .await
                .map(Update::Processes)
                .map_err(|e| e.to_string()),
            self.client
                .gpus()
                .await
                .map(Update::Gpus)
                .map_err(|e| e.to_string()),
            self.client
                .incidents(true)
                .await
                .map(Update::Incidents)
                .map_err(|e| e.to_string()),
            self.client
                .jobs()
                .await
                .map(Update::Jobs)
                .map_err(|e| e.to_string()),
        ];
        for r in results {
            let update = r.unwrap_or_else(Update::Failed);
            if self.out.send(update).is_err() {
                return;
            }
        }
    }

    async fn answer(&mut self, request: Request) {
        let update = match request {
            Request::Series(text) => self
                .client
                .series(&text)
                .await
                .map(Update::Series)
                .map_err(|e| e.to_string()),
            Request::Chart { series, end, span } => {
                let end = end.unwrap_or_else(now_ms);
                let step = (span / CHART_POINTS).max(1000);
                let q = QueryRequest {
                    series: vec![series],
                    start: end - span,
                    end,
                    step: Some(step),
                    agg: Aggregation::Avg,
                };
                self.client
                    .query(&q)
                    .await
                    .map(|mut a| Update::Chart {
                        series,
                        start: end - span,
                        end,
                        points: a.pop().map(|s| s.points).unwrap_or_default(),
                    })
                    .map_err(|e| e.to_string())
            }
            Request::Act { incident, action } => {
                let c = &self.client;
                let done = match &action {
                    Action::Acknowledge => c
                        .acknowledge(incident, None)
                        .await
                        .map(|_| "acknowledged".to_string()),
                    Action::Resolve => c
                        .resolve(incident, None)
                        .await
                        .map(|_| "resolved".to_string()),
                    Action::Note(text) => c
                        .note(incident, text, None)
                        .await
                        .map(|_| "noted".to_string()),
                    Action::Feedback(f) => c
                        .feedback(incident, *f, None)
                        .await
                        .map(|_| format!("marked {}", feedback_word(*f))),
                };
                match done {
                    Ok(what) => {
                        let _ = self
                            .out
                            .send(Update::Done(format!("incident {incident} {what}")));
                        self.client
                            .incidents(true)
                            .await
                            .map(Update::Incidents)
                            .map_err(|e| e.to_string())
                    }
                    Err(e) => Err(format!("incident {incident}: {e}")),
                }
            }
            Request::IncidentChart {
                incident,
                key,
                start,
                end,
            } => {
                let end = end.unwrap_or_else(now_ms);
                match self.client.series(&key).await {
                    Ok(found) => match found.into_iter().find(|s| s.key == key) {
                        // Not a series (a job's measure, a rule's projection): no chart.
                        None => return,
                        Some(s) => {
                            let q = QueryRequest {
                                series: vec![s.id],
                                start,
                                end,
                                step: Some(((end - start) / CHART_POINTS).max(1000)),
                                agg: Aggregation::Avg,
                            };
                            self.client
                                .query(&q)
                                .await
                                .map(|mut a| Update::IncidentChart {
                                    incident,
                                    key,
                                    start,
                                    end,
                                    points: a.pop().map(|s| s.points).unwrap_or_default(),
                                })
                                .map_err(|e| e.to_string())
                        }
                    },
                    Err(e) => Err(e.to_string()),
                }
            }
            Request::JobRuns(job) => self
                .client
                .job_runs(&job)
                .await
                .map(|runs| Update::JobRuns { job, runs })
                .map_err(|e| e.to_string()),
            Request::Connect {
                address,
                token,
                ca_file,
            } => {
                self.client = Client::new(Endpoint::parse(&address))
                    .with_timeout(Duration::from_secs(2))
                    .with_token(token)
                    .with_ca_file(ca_file.as_deref());
                self.roles = None;
                return;
            }
            Request::Stop => return,
        };
        let _ = self.out.send(update.unwrap_or_else(Update::Failed));
    }
}

/// Runs the worker on this thread until `Request::Stop` or the UI goes away.
pub fn run(client: Client, requests: Receiver<Request>, out: Sender<Update>, every: Duration) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        let _ = out.send(Update::Failed("could not start the fetch runtime".into()));
        return;
    };
    let mut worker = Worker {
        client,
        out,
        roles: None,
    };
    rt.block_on(async {
        let mut last = Instant::now() - every;
        loop {
            loop {
                match requests.try_recv() {
                    Ok(Request::Stop) | Err(TryRecvError::Disconnected) => return,
                    Ok(r) => worker.answer(r).await,
                    Err(TryRecvError::Empty) => break,
                }
            }
            if last.elapsed() >= every {
                last = Instant::now();
                worker.tick().await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}
