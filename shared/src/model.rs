//! Series, samples and their descriptions.
//!
//! A series is a metric name plus a sorted set of labels, e.g.
//! `system.cpu.utilization{cpu="3",state="user"}`. The store gives every
//! series a compact [`SeriesId`]; samples carry that id, a timestamp in
//! milliseconds since the Unix epoch (UTC) and an `f64` value.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC.
pub type TimestampMs = i64;

/// The compact id the store assigns to a series. Ids are dense, starting at 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SeriesId(pub u32);

impl fmt::Display for SeriesId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One observation of one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub series: SeriesId,
    pub ts: TimestampMs,
    pub value: f64,
}

/// How a series' values behave, which decides how queries aggregate them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A value that goes up and down (memory used, temperature).
    Gauge,
    /// A cumulative, monotonic total (bytes sent since boot). Stored as is;
    /// queries turn it into a per-second rate, treating a decrease as a reset.
    Counter,
}

/// Why a series key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeriesKeyError {
    #[error("metric name is empty")]
    EmptyName,
    #[error(
        "metric name {0:?} has a character outside [A-Za-z0-9._/-]; use OpenTelemetry-style names such as system.cpu.utilization"
    )]
    BadName(String),
    #[error("label name {0:?} is empty or has a character outside [A-Za-z0-9._]")]
    BadLabel(String),
    #[error("label {0:?} is given twice")]
    DuplicateLabel(String),
}

/// Labels sorted by name, each name once.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// Sorts the pairs by name and refuses bad or repeated names.
    pub fn new<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self, SeriesKeyError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut pairs: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        pairs.sort();
        for (i, (name, _)) in pairs.iter().enumerate() {
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
            if !ok {
                return Err(SeriesKeyError::BadLabel(name.clone()));
            }
            if i > 0 && pairs[i - 1].0 == *name {
                return Err(SeriesKeyError::DuplicateLabel(name.clone()));
            }
        }
        Ok(Self(pairs))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The identity of a series: metric name and labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SeriesKey {
    pub name: String,
    pub labels: Labels,
}

impl SeriesKey {
    pub fn new(name: impl Into<String>, labels: Labels) -> Result<Self, SeriesKeyError> {
        let name = name.into();
        if name.is_empty() {
            return Err(SeriesKeyError::EmptyName);
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'))
        {
            return Err(SeriesKeyError::BadName(name));
        }
        Ok(Self { name, labels })
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.labels.is_empty() {
            f.write_str("{")?;
            for (i, (k, v)) in self.labels.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{k}={v:?}")?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// Everything the store keeps about a series besides its samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesDesc {
    pub key: SeriesKey,
    pub kind: MetricKind,
    /// UCUM unit as the OpenTelemetry conventions write it: `"1"`, `"By"`, `"s"`, `"Cel"`.
    pub unit: String,
    /// Decimal digits kept: values are rounded to this many places before
    /// they are stored. `None` keeps every bit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<u8>,
    /// For counters: when the count started (e.g. the boot time for kernel counters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ts: Option<TimestampMs>,
}

impl SeriesDesc {
    pub fn gauge(key: SeriesKey, unit: impl Into<String>) -> Self {
        Self {
            key,
            kind: MetricKind::Gauge,
            unit: unit.into(),
            precision: None,
            start_ts: None,
        }
    }

    pub fn counter(key: SeriesKey, unit: impl Into<String>, start_ts: TimestampMs) -> Self {
        Self {
            key,
            kind: MetricKind::Counter,
            unit: unit.into(),
            precision: None,
            start_ts: Some(start_ts),
        }
    }

    pub fn with_precision(mut self, digits: u8) -> Self {
        self.precision = Some(digits);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sorted_and_displayed_like_prometheus() {
        let labels = Labels::new([("state", "user"), ("cpu", "3")]).unwrap();
        let key = SeriesKey::new("system.cpu.utilization", labels).unwrap();
        assert_eq!(
            key.to_string(),
            r#"system.cpu.utilization{cpu="3",state="user"}"#
        );
        assert_eq!(key.labels.get("cpu"), Some("3"));
        assert_eq!(key.labels.get("mode"), None);
    }

    #[test]
    fn bad_names_are_refused_with_the_name() {
        let err = Labels::new([("cpu", "1"), ("cpu", "2")]).unwrap_err();
        assert_eq!(err.to_string(), "label \"cpu\" is given twice");
        let err = SeriesKey::new("cpu usage", Labels::default()).unwrap_err();
        assert!(err.to_string().contains("\"cpu usage\""), "{err}");
        assert!(Labels::new([("", "x")]).is_err());
    }

    #[test]
    fn series_desc_round_trips_through_json() {
        let key = SeriesKey::new(
            "system.network.io",
            Labels::new([("device", "eth0")]).unwrap(),
        )
        .unwrap();
        let desc = SeriesDesc::counter(key, "By", 1_700_000_000_000);
        let json = serde_json::to_string(&desc).unwrap();
        assert_eq!(serde_json::from_str::<SeriesDesc>(&json).unwrap(), desc);
    }
}
