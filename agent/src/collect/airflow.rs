//! Airflow over StatsD: its metric names carry the DAG, task, pool or
//! state inside them, which [`split`] takes out as labels; and a DAG run's
//! duration timer is a job run ([`dag_run`]), so an Airflow DAG shows as a
//! job with no setup on the Airflow side.

use ward_shared::jobs::{JobEvent, JobEventKind};

/// Airflow's StatsD names carry identifiers inside them; this takes them out
/// as labels: `airflow.dagrun.duration.success.etl` becomes
/// `airflow.dagrun.duration{dag_id="etl",state="success"}`. Names it does
/// not know are kept as they are.
pub fn split(name: &str) -> (String, Vec<(String, String)>) {
    let Some(rest) = name.strip_prefix("airflow.") else {
        return (name.to_string(), Vec::new());
    };
    let parts: Vec<&str> = rest.split('.').collect();
    let l = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let n = |s: &str| format!("airflow.{s}");
    match parts.as_slice() {
        ["dagrun", "duration", state @ ("success" | "failed"), dag] => (
            n("dagrun.duration"),
            l(&[("state", state), ("dag_id", dag)]),
        ),
        ["dagrun", "schedule_delay", dag] => (n("dagrun.schedule_delay"), l(&[("dag_id", dag)])),
        ["dagrun", dag, "first_task_scheduling_delay"] => (
            n("dagrun.first_task_scheduling_delay"),
            l(&[("dag_id", dag)]),
        ),
        ["dag", dag, task, "duration"] => {
            (n("task.duration"), l(&[("dag_id", dag), ("task_id", task)]))
        }
        ["ti", "finish", dag, task, state] => (
            n("ti.finish"),
            l(&[("dag_id", dag), ("task_id", task), ("state", state)]),
        ),
        ["ti", "start", dag, task] => (n("ti.start"), l(&[("dag_id", dag), ("task_id", task)])),
        [
            "pool",
            stat @ ("open_slots" | "queued_slots" | "running_slots" | "starving_tasks"),
            pool,
        ] => (n(&format!("pool.{stat}")), l(&[("pool", pool)])),
        [
            "executor",
            stat @ ("open_slots" | "queued_tasks" | "running_tasks"),
        ] => (n(&format!("executor.{stat}")), Vec::new()),
        _ => (name.to_string(), Vec::new()),
    }
}

/// An Airflow DAG run's duration timer as a job run: the DAG is the job.
/// Both the plain names (`airflow.dagrun.duration.failed.etl`) and
/// DogStatsD's (`airflow.dagrun.duration.failed` tagged `dag_id:etl`) count.
pub fn dag_run(
    name: &str,
    labels: &[(String, String)],
    ms: f64,
    seq: &mut u64,
) -> Option<JobEvent> {
    let label = |k: &str| labels.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    let state = match name {
        "airflow.dagrun.duration" => label("state")?,
        "airflow.dagrun.duration.success" => "success",
        "airflow.dagrun.duration.failed" => "failed",
        _ => return None,
    };
    let dag = label("dag_id")?;
    *seq += 1;
    // StatsD carries no run id: the arrival time and a sequence number make one.
    let run = format!("statsd-{}-{seq}", ward_shared::time::now_ms());
    let mut e = JobEvent::new(dag, &run, JobEventKind::Finish);
    e.duration_s = (ms.is_finite() && ms > 0.0).then_some(ms / 1000.0);
    e.success = Some(state == "success");
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn airflow_names_become_job_labels() {
        let (name, labels) = split("airflow.dagrun.duration.success.etl_daily");
        assert_eq!(name, "airflow.dagrun.duration");
        assert_eq!(
            labels,
            vec![
                ("state".into(), "success".into()),
                ("dag_id".into(), "etl_daily".into())
            ]
        );
        let (name, labels) = split("airflow.ti.finish.etl_daily.load.failed");
        assert_eq!(name, "airflow.ti.finish");
        assert_eq!(labels.len(), 3);
        assert_eq!(
            split("airflow.pool.open_slots.default_pool").0,
            "airflow.pool.open_slots"
        );
        assert_eq!(
            split("airflow.scheduler_heartbeat"),
            ("airflow.scheduler_heartbeat".into(), vec![])
        );
        assert_eq!(split("myapp.requests").0, "myapp.requests");
    }
}
