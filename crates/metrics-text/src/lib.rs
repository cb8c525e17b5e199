//! The Prometheus text exposition format (version 0.0.4), written: each family once with its
//! `# HELP` and `# TYPE`, then its samples, label values escaped. The host's `/metrics` and
//! the app's both write with it, so the two scrapes read alike.

use std::fmt::{self, Write};

/// The `Content-Type` of a scrape's answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a family's samples mean to Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (restarting from 0 when the process does); named `..._total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Counts of observations at or below each bound, their sum and count.
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// A scrape's body, written family by family.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// A sample's value: an integer, or a float written as Prometheus reads it.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    Int(i64),
    Float(f64),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        i64::try_from(v).map_or(Self::Float(v as f64), Self::Int)
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Self::from(v as u64)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Int(v) => write!(f, "{v}"),
            Self::Float(v) if v.is_nan() => f.write_str("NaN"),
            Self::Float(v) if v.is_infinite() => f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" }),
            Self::Float(v) => write!(f, "{v}"),
        }
    }
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family: its help line and its type. Its samples follow.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.name());
        self
    }

    /// One sample of the current family (`name` is the family's, or for a histogram one of
    /// its `_bucket`, `_sum` and `_count` series).
    pub fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: impl Into<Value>,
    ) -> &mut Self {
        self.out.push_str(name);
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", value.into());
        self
    }

    /// A histogram's series for one set of labels: `bounds` are the buckets' upper bounds,
    /// ascending, `counts` the observations in each (not cumulative; one more than `bounds`:
    /// the last is above every bound), `sum` the observations' sum.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
    ) -> &mut Self {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (i, count) in counts.iter().enumerate() {
            cumulative += count;
            let le = bounds
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| Value::Float(*b).to_string());
            self.out.push_str(&bucket);
            write_labels(&mut self.out, labels, Some(&le));
            let _ = writeln!(self.out, " {cumulative}");
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, cumulative);
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
    for (name, value) in all {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escaped_labels_are_written_as_prometheus_reads_them() {
        let mut e = Exposition::new();
        e.family("x_total", Kind::Counter, "Things\ncounted.")
            .sample("x_total", &[("a", "q\"u\\o\nte")], 3u64)
            .sample("x_total", &[], 0.5);
        assert_eq!(
            e.finish(),
            "# HELP x_total Things\\ncounted.\n# TYPE x_total counter\n\
             x_total{a=\"q\\\"u\\\\o\\nte\"} 3\nx_total 0.5\n"
        );
    }

    #[test]
    fn a_histogram_has_cumulative_buckets_up_to_inf_a_sum_and_a_count() {
        let mut e = Exposition::new();
        e.family("d_seconds", Kind::Histogram, "Durations.")
            .histogram("d_seconds", &[("c", "p")], &[0.01, 0.1], &[2, 0, 1], 0.75);
        assert_eq!(
            e.finish(),
            "# HELP d_seconds Durations.\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{c=\"p\",le=\"0.01\"} 2\nd_seconds_bucket{c=\"p\",le=\"0.1\"} 2\n\
             d_seconds_bucket{c=\"p\",le=\"+Inf\"} 3\nd_seconds_sum{c=\"p\"} 0.75\n\
             d_seconds_count{c=\"p\"} 3\n"
        );
    }

    #[test]
    fn values_are_written_as_prometheus_reads_them() {
        assert_eq!(Value::from(f64::INFINITY).to_string(), "+Inf");
        assert_eq!(Value::from(f64::NAN).to_string(), "NaN");
        assert_eq!(Value::from(u64::MAX).to_string(), "18446744073709552000");
        assert_eq!(Value::from(1e-3).to_string(), "0.001");
    }
}
