//! Environment overrides: `WARD_<SECTION>_<KEY>` over the file's value,
//! every key's variable named from the defaults, so a new key gets its
//! variable with no code here. An unknown variable of a known section is an
//! error that lists the section's variables.

use super::ConfigError;
use super::file::RawConfig;

/// Every key of the config as `(section path, key, default value)`.
pub(super) fn known_keys() -> Vec<(Vec<String>, String, toml::Value)> {
    fn walk(
        path: &mut Vec<String>,
        table: &toml::Table,
        out: &mut Vec<(Vec<String>, String, toml::Value)>,
    ) {
        for (k, v) in table {
            match v {
                toml::Value::Table(t) => {
                    path.push(k.clone());
                    walk(path, t, out);
                    path.pop();
                }
                v => out.push((path.clone(), k.clone(), v.clone())),
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(toml::Value::Table(t)) = toml::Value::try_from(RawConfig::default()) {
        walk(&mut Vec::new(), &t, &mut out);
    }
    out
}

fn env_name(section: &[String], key: &str) -> String {
    let mut name = String::from("WARD");
    for part in section.iter().map(String::as_str).chain([key]) {
        name.push('_');
        name.push_str(&part.to_ascii_uppercase());
    }
    name
}

/// Sets `WARD_<SECTION>_<KEY>` values over the file's.
pub(super) fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let keys = known_keys();
    let sections: Vec<String> = keys
        .iter()
        .map(|(s, _, _)| env_name(s, "").trim_end_matches('_').to_string() + "_")
        .collect();
    for (var, value) in env {
        if !var.starts_with("WARD_") {
            continue;
        }
        let Some((section, key, default)) = keys.iter().find(|(s, k, _)| env_name(s, k) == var)
        else {
            if let Some(prefix) = sections.iter().find(|p| var.starts_with(p.as_str())) {
                let known: Vec<String> = keys
                    .iter()
                    .map(|(s, k, _)| env_name(s, k))
                    .filter(|n| n.starts_with(prefix.as_str()))
                    .collect();
                return Err(ConfigError::UnknownEnv {
                    var,
                    known: known.join(", "),
                });
            }
            continue;
        };
        let value = match default {
            toml::Value::Integer(_) => value
                .parse::<i64>()
                .map(toml::Value::Integer)
                .unwrap_or(toml::Value::String(value)),
            toml::Value::Float(_) => value
                .parse::<f64>()
                .map(toml::Value::Float)
                .unwrap_or(toml::Value::String(value)),
            toml::Value::Boolean(_) => value
                .parse::<bool>()
                .map(toml::Value::Boolean)
                .unwrap_or(toml::Value::String(value)),
            // Lists are written comma-separated: WARD_COLLECT_DISABLED=process,disk
            toml::Value::Array(_) => toml::Value::Array(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| toml::Value::String(v.to_string()))
                    .collect(),
            ),
            _ => toml::Value::String(value),
        };
        let mut t = &mut *table;
        for part in section {
            let entry = t
                .entry(part.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(inner) = entry.as_table_mut() else {
                return Err(ConfigError::Syntax {
                    origin: var.clone(),
                    message: format!("[{part}] is not a table in the config file"),
                });
            };
            t = inner;
        }
        t.insert(key.clone(), value);
    }
    Ok(())
}
