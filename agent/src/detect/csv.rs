//! The `timestamp,value` CSV that `ward-agent detect` reads, and the
//! `timestamp,value,anomaly_score` CSV it writes.
//!
//! A header line, then one row a line (LF or CRLF, the last newline
//! optional). Timestamps are `YYYY-MM-DD HH:MM:SS` or RFC 3339; they are
//! checked and written back as given. A bad row is an error that names its
//! line and what is wrong with it.

use std::io::Write;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CsvError {
    #[error("the input is empty: expected a `timestamp,value` header and rows")]
    Empty,
    #[error("line {line}: {problem}: {text:?}")]
    Row {
        line: usize,
        problem: String,
        text: String,
    },
}

/// Whether `t` looks like `YYYY-MM-DD HH:MM:SS` or RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`).
pub fn valid_timestamp(t: &str) -> bool {
    let b = t.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let base = b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b' ' || b[10] == b'T')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !base {
        return false;
    }
    let mut rest = &t[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest {
        "" => true,
        "Z" => b[10] == b'T',
        tz => {
            let z = tz.as_bytes();
            b[10] == b'T'
                && z.len() == 6
                && (z[0] == b'+' || z[0] == b'-')
                && z[3] == b':'
                && z[1..3].iter().chain(&z[4..6]).all(u8::is_ascii_digit)
        }
    }
}

/// The rows of a `timestamp,value` CSV.
pub fn parse(text: &str) -> Result<Vec<(String, f64)>, CsvError> {
    let mut lines = text.split('\n').enumerate();
    let Some((_, header)) = lines.next().filter(|(_, h)| !h.trim().is_empty()) else {
        return Err(CsvError::Empty);
    };
    let header = header.trim_end_matches('\r');
    if header.split(',').next().is_some_and(valid_timestamp) {
        return Err(CsvError::Row {
            line: 1,
            problem: "expected a header such as timestamp,value".into(),
            text: header.into(),
        });
    }
    let mut rows = Vec::new();
    for (i, line) in lines {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let bad = |problem: &str| CsvError::Row {
            line: i + 1,
            problem: problem.into(),
            text: line.into(),
        };
        let (t, v) = line
            .split_once(',')
            .ok_or_else(|| bad("expected two fields, timestamp,value"))?;
        let t = t.trim();
        if !valid_timestamp(t) {
            return Err(bad(
                "the timestamp is neither YYYY-MM-DD HH:MM:SS nor RFC 3339",
            ));
        }
        let v: f64 = v
            .trim()
            .parse()
            .map_err(|_| bad("the value is not a number"))?;
        if !v.is_finite() {
            return Err(bad("the value is not finite"));
        }
        rows.push((t.to_string(), v));
    }
    Ok(rows)
}

/// Writes `timestamp,value,anomaly_score` rows.
pub fn write(out: &mut impl Write, rows: &[(String, f64)], scores: &[f64]) -> std::io::Result<()> {
    writeln!(out, "timestamp,value,anomaly_score")?;
    for ((t, v), s) in rows.iter().zip(scores) {
        writeln!(out, "{t},{v},{s}")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_timestamp_forms_and_line_endings() {
        let rows = parse("timestamp,value\r\n2014-04-01 00:00:00,1.5\r\n2014-04-01T00:05:00Z,2\n2014-04-01T00:10:00.250+02:00,3").unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1], ("2014-04-01T00:05:00Z".into(), 2.0));
    }

    #[test]
    fn bad_rows_name_their_line_and_problem() {
        let err =
            parse("timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,abc\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"line 3: the value is not a number: "2014-04-01 00:05:00,abc""#
        );
        let err = parse("timestamp,value\n04/01/2014,1\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 2: the timestamp is neither"),
            "{err}"
        );
        let err = parse("2014-04-01 00:00:00,1\n").unwrap_err();
        assert!(err.to_string().contains("expected a header"), "{err}");
        assert_eq!(parse(""), Err(CsvError::Empty));
        assert!(parse("timestamp,value\n2014-04-01 00:00:00,inf\n").is_err());
    }
}
