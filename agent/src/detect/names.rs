//! Series as people name them in an incident title: `system.disk.io
//! {direction="write",system.device="nvme0n1"}` is "disk writes on nvme0n1".
//! A series with no phrase of its own is its metric followed by the values
//! of its labels, without the host's name (the title says the host):
//! `myapp.requests{host.name="db-7",route="/a"}` is "myapp.requests (/a)".

use ward_shared::SeriesKey;

/// A short phrase for a series; its metric and label values when no better
/// is known.
pub fn human(key: &SeriesKey) -> String {
    let l = |k: &str| key.labels.get(k).unwrap_or("").to_string();
    let device = l("system.device");
    let interface = l("network.interface.name");
    let dir = l("direction");
    let net_dir = l("network.io.direction");
    let on = |what: &str, place: &str| {
        if place.is_empty() {
            what.to_string()
        } else {
            format!("{what} on {place}")
        }
    };
    match key.name.as_str() {
        "system.disk.io" | "system.disk.operations" => {
            let what = match dir.as_str() {
                "read" => "disk reads",
                "write" => "disk writes",
                _ => "disk I/O",
            };
            on(what, &device)
        }
        "system.linux.disk.await" => on("disk I/O latency", &device),
        "system.disk.io_time" | "system.disk.weighted_io_time" => on("disk busy time", &device),
        "system.disk.pending_operations" => on("disk queue depth", &device),
        "system.network.io" | "system.network.packet.count" => {
            let what = match net_dir.as_str() {
                "receive" => "network traffic in",
                "transmit" => "network traffic out",
                _ => "network traffic",
            };
            on(what, &interface)
        }
        "system.network.errors" | "system.network.packet.dropped" => {
            on("network errors", &interface)
        }
        "system.cpu.utilization" | "system.cpu.time" => match l("cpu.mode").as_str() {
            "iowait" => "iowait".to_string(),
            "steal" => "CPU steal".to_string(),
            "" => "CPU".to_string(),
            mode => format!("CPU {mode}"),
        },
        n if n.starts_with("system.cpu.load_average") => "load average".to_string(),
        "system.memory.usage" | "system.memory.utilization" | "system.linux.memory.available" => {
            "memory".to_string()
        }
        "system.linux.memory.oom_kills" => "OOM kills".to_string(),
        "system.linux.pressure.stalled" => format!("{} pressure", l("resource")),
        "system.filesystem.usage" | "system.filesystem.utilization" => {
            on("filesystem space", &l("system.filesystem.mountpoint"))
        }
        "system.filesystem.inodes.usage" => {
            on("filesystem inodes", &l("system.filesystem.mountpoint"))
        }
        "system.linux.context_switches" => "context switches".to_string(),
        "system.linux.interrupts" => "interrupts".to_string(),
        "system.linux.processes.created" => "process creation".to_string(),
        "system.linux.cgroup.cpu.time" | "container.cpu.time" => {
            format!("CPU of {}", cgroup(key))
        }
        "system.linux.cgroup.memory.usage" | "container.memory.usage" => {
            format!("memory of {}", cgroup(key))
        }
        n if n.starts_with("hw.gpu") || n.starts_with("hw.power") => {
            let what = n
                .trim_start_matches("hw.gpu.")
                .trim_start_matches("hw.")
                .replace(['.', '_'], " ");
            on(&format!("GPU {what}"), &l("hw.id"))
        }
        _ => metric_and_values(key),
    }
}

/// `myapp.requests (/a, GET)`: the metric, then the values that tell its
/// series apart; the host's name is left to the title.
fn metric_and_values(key: &SeriesKey) -> String {
    let values: Vec<&str> = key
        .labels
        .iter()
        .filter(|(k, _)| *k != "host.name")
        .map(|(_, v)| v)
        .collect();
    if values.is_empty() {
        key.name.clone()
    } else {
        format!("{} ({})", key.name, values.join(", "))
    }
}

fn cgroup(key: &SeriesKey) -> String {
    ["systemd.unit", "container.id"]
        .iter()
        .find_map(|k| key.labels.get(k))
        .unwrap_or("a service")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::key;

    #[test]
    fn series_read_as_people_say_them() {
        let k = |name: &str, labels: &[(&str, &str)]| human(&key(name, labels));
        assert_eq!(
            k(
                "system.disk.io",
                &[("direction", "write"), ("system.device", "nvme0n1")]
            ),
            "disk writes on nvme0n1"
        );
        assert_eq!(
            k("system.linux.disk.await", &[("system.device", "sda")]),
            "disk I/O latency on sda"
        );
        assert_eq!(
            k("system.cpu.utilization", &[("cpu.mode", "iowait")]),
            "iowait"
        );
        assert_eq!(
            k(
                "system.network.io",
                &[
                    ("network.io.direction", "receive"),
                    ("network.interface.name", "eth0")
                ]
            ),
            "network traffic in on eth0"
        );
        assert_eq!(
            k(
                "system.linux.cgroup.cpu.time",
                &[("systemd.unit", "nginx.service")]
            ),
            "CPU of nginx.service"
        );
        assert_eq!(
            k(
                "system.filesystem.usage",
                &[("system.filesystem.mountpoint", "/var")]
            ),
            "filesystem space on /var"
        );
        assert_eq!(
            k("hw.gpu.temperature", &[("hw.id", "GPU-1")]),
            "GPU temperature on GPU-1"
        );
        assert_eq!(
            k(
                "system.filesystem.inodes.usage",
                &[
                    ("host.name", "vm"),
                    ("system.device", "/dev/vda"),
                    ("system.filesystem.mountpoint", "/"),
                    ("system.filesystem.state", "free"),
                    ("system.filesystem.type", "ext4")
                ]
            ),
            "filesystem inodes on /"
        );
        assert_eq!(
            k("myapp.requests", &[("host.name", "db-7"), ("route", "/a")]),
            "myapp.requests (/a)"
        );
        assert_eq!(k("myapp.up", &[("host.name", "db-7")]), "myapp.up");
    }
}
