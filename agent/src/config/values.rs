//! Values of the config file parsed by their types, once, as the file is
//! read: durations and sizes written as text, bounded counts, and keys
//! that take one of a few words. Each type keeps what the user wrote, so
//! `ward-agent default-config` prints the defaults as they are written
//! here, and each refuses a bad value with what it expected; the config
//! step adds the key and the value (see `super::file`).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// How a refusal of one of these types starts, so the config step can tell
/// it from serde's own errors (unknown keys, wrong types).
pub(super) const EXPECTED: &str = "expected ";

fn refuse<E: de::Error>(expected: impl fmt::Display) -> E {
    E::custom(format_args!("{EXPECTED}{expected}"))
}

/// Parses "1s", "500ms", "7d", "1h30m": numbers each followed by ms, s, m, h or d.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms_per = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(Duration::from_millis(n.checked_mul(ms_per)?))?;
    }
    Some(total)
}

/// Parses "1GiB", "500MB", "8MiB", "4096" (bytes).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n: u64 = text[..digits].parse().ok()?;
    let mult: u64 = match text[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// A duration as the config writes it: "1d", "5m", "500ms".
pub(super) fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        ms if ms % 86_400_000 == 0 => format!("{}d", ms / 86_400_000),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// What a duration between `min` and `max` is expected to look like.
pub(super) fn duration_expected(min: Duration, max: Duration) -> String {
    format!(
        "a duration from {} to {}, such as \"1s\", \"500ms\", \"7d\" or \"1h30m\"",
        fmt_duration(min),
        fmt_duration(max)
    )
}

/// Reads a string, for the types below.
struct Text;

impl Visitor<'_> for Text {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// A duration written as text, from `MIN_MS` to `MAX_MS` milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationIn<const MIN_MS: u64, const MAX_MS: u64> {
    pub value: Duration,
    text: String,
}

impl<const MIN_MS: u64, const MAX_MS: u64> DurationIn<MIN_MS, MAX_MS> {
    pub const MIN: Duration = Duration::from_millis(MIN_MS);
    pub const MAX: Duration = Duration::from_millis(MAX_MS);

    /// The value of `text`, if it is a duration within the bounds.
    pub fn parse(text: &str) -> Option<Self> {
        parse_duration(text)
            .filter(|d| (Self::MIN..=Self::MAX).contains(d))
            .map(|value| Self {
                value,
                text: text.to_string(),
            })
    }

    /// The duration as the user wrote it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// A default, written as `text`; one outside the bounds is a bug.
    pub(super) fn default_of(text: &str) -> Self {
        Self {
            value: parse_duration(text).unwrap_or(Self::MIN),
            text: text.to_string(),
        }
    }
}

impl<const A: u64, const B: u64> Serialize for DurationIn<A, B> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de, const A: u64, const B: u64> Deserialize<'de> for DurationIn<A, B> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = d.deserialize_str(Text)?;
        Self::parse(&text).ok_or_else(|| refuse(duration_expected(Self::MIN, Self::MAX)))
    }
}

/// A size written as text, of at least `MIN` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeAtLeast<const MIN: u64> {
    pub bytes: u64,
    text: String,
}

impl<const MIN: u64> SizeAtLeast<MIN> {
    pub(super) fn default_of(text: &str) -> Self {
        Self {
            bytes: parse_size(text).unwrap_or(MIN),
            text: text.to_string(),
        }
    }
}

impl<const MIN: u64> Serialize for SizeAtLeast<MIN> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de, const MIN: u64> Deserialize<'de> for SizeAtLeast<MIN> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = d.deserialize_str(Text)?;
        match parse_size(&text) {
            Some(bytes) if bytes >= MIN => Ok(Self { bytes, text }),
            _ => Err(refuse(format_args!(
                "a size of at least {MIN} bytes, such as \"1GiB\", \"500MB\" or \"8MiB\""
            ))),
        }
    }
}

/// A whole number from `MIN` to `MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Bounded<const MIN: i64, const MAX: i64>(i64);

impl<const MIN: i64, const MAX: i64> Bounded<MIN, MAX> {
    pub(super) const fn new(n: i64) -> Self {
        Self(n)
    }

    /// The number as a count; the bounds of every key are within `u32`.
    pub fn as_u32(self) -> u32 {
        self.0.clamp(0, i64::from(u32::MAX)) as u32
    }

    pub fn as_usize(self) -> usize {
        self.as_u32() as usize
    }
}

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        if (MIN..=MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(refuse(format_args!("a number from {MIN} to {MAX}")))
        }
    }
}

/// A key that takes one of a few words.
pub trait Choice: Copy + PartialEq + fmt::Debug + 'static {
    /// The words and what each means.
    const WORDS: &'static [(&'static str, Self)];
    /// What a refusal says was expected.
    const EXPECTED: &'static str;
    /// Whether "WARN" is read as "warn".
    const ANY_CASE: bool = false;
}

/// The value of a [`Choice`] key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chosen<T>(pub T);

impl<T: Choice> Serialize for Chosen<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match T::WORDS.iter().find(|(_, v)| *v == self.0) {
            Some((word, _)) => s.serialize_str(word),
            None => Err(serde::ser::Error::custom(format_args!(
                "{:?} has no word",
                self.0
            ))),
        }
    }
}

impl<'de, T: Choice> Deserialize<'de> for Chosen<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = d.deserialize_str(Text)?;
        T::WORDS
            .iter()
            .find(|(word, _)| {
                if T::ANY_CASE {
                    word.eq_ignore_ascii_case(&text)
                } else {
                    *word == text
                }
            })
            .map(|(_, v)| Chosen(*v))
            .ok_or_else(|| refuse(T::EXPECTED))
    }
}

/// A key whose empty value turns something off: `""` or a `T`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Off<T>(pub Option<T>);

impl<T: Serialize> Serialize for Off<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(v) => v.serialize(s),
            None => s.serialize_str(""),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Off<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = d.deserialize_str(Text)?;
        if text.is_empty() {
            return Ok(Off(None));
        }
        let inner = de::value::StrDeserializer::<D::Error>::new(&text);
        T::deserialize(inner).map(|v| Off(Some(v)))
    }
}
