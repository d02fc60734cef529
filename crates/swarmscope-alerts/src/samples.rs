//! Samples: parsing Prometheus text exposition, and the bounded history of
//! the series the rules read.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// A label set, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// One sample of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name as exposed (`swarm_vms_total`, `..._bucket`).
    pub name: String,
    /// Its labels.
    pub labels: Labels,
    /// Its value.
    pub value: f64,
}

/// Parses Prometheus text exposition (0.0.4 or OpenMetrics); comments,
/// blank lines and lines it cannot read are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = closing_brace(line, open)?;
            (
                &line[..open],
                parse_labels(&line[open + 1..close])?,
                &line[close + 1..],
            )
        }
        None => {
            let space = line.find(' ')?;
            (&line[..space], Labels::new(), &line[space..])
        }
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The `}` closing the label set opened at `open`, skipping quoted values.
fn closing_brace(line: &str, open: usize) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line[open..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return Some(open + i),
            _ => {}
        }
    }
    None
}

fn parse_labels(text: &str) -> Option<Labels> {
    let mut labels = Labels::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let name = rest[..eq].trim().to_owned();
        rest = rest[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        labels.insert(name, value);
        rest = rest[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Some(labels)
}

/// A series: name and labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// Metric name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
}

/// A series' recent points and when it was first seen.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// (time in seconds, value), oldest first.
    pub points: VecDeque<(f64, f64)>,
    /// When the engine first saw the series.
    pub first_seen: f64,
}

/// Recent samples of the metrics the rules read, bounded in time (the
/// longest rule window plus a margin) and in series count.
#[derive(Debug)]
pub struct History {
    wanted: HashSet<String>,
    retention: f64,
    max_series: usize,
    series: HashMap<SeriesKey, Series>,
    /// When the first samples arrived: a series seen after that is new.
    started: Option<f64>,
    /// Series not kept because the cap was reached.
    pub dropped_series: u64,
}

impl History {
    /// A history of the metrics named in `wanted` (exact names, e.g.
    /// `swarm_vms_total`, `swarm_api_request_duration_ms_bucket`), keeping
    /// `retention_secs` of points for at most `max_series` series.
    pub fn new(wanted: HashSet<String>, retention_secs: f64, max_series: usize) -> History {
        History {
            wanted,
            retention: retention_secs,
            max_series,
            series: HashMap::new(),
            started: None,
            dropped_series: 0,
        }
    }

    /// Adds a scrape taken at `now` (seconds), with `extra` labels (such as
    /// `instance`) added to every sample, and forgets points older than the
    /// retention.
    pub fn add(&mut self, now: f64, samples: Vec<Sample>, extra: &Labels) {
        let started = *self.started.get_or_insert(now);
        for s in samples {
            if !self.wanted.contains(&s.name) || s.value.is_nan() {
                continue;
            }
            let mut labels = s.labels;
            for (k, v) in extra {
                labels.entry(k.clone()).or_insert_with(|| v.clone());
            }
            let key = SeriesKey {
                name: s.name,
                labels,
            };
            let len = self.series.len();
            let series = match self.series.get_mut(&key) {
                Some(series) => series,
                None if len >= self.max_series => {
                    self.dropped_series += 1;
                    continue;
                }
                None => self.series.entry(key).or_insert_with(|| Series {
                    points: VecDeque::new(),
                    // Series present at the first scrape existed before.
                    first_seen: if now > started {
                        now
                    } else {
                        f64::NEG_INFINITY
                    },
                }),
            };
            series.points.push_back((now, s.value));
        }
        let horizon = now - self.retention;
        self.series.retain(|_, s| {
            while s.points.front().is_some_and(|(t, _)| *t < horizon) {
                s.points.pop_front();
            }
            !s.points.is_empty()
        });
    }

    /// Series of metric `name`.
    pub fn series<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = (&'a SeriesKey, &'a Series)> + 'a {
        self.series.iter().filter(move |(k, _)| k.name == name)
    }

    /// Series held.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether no series is held.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_lines_are_read_with_their_labels() {
        let text = "# HELP x y\n# TYPE swarm_vms_total counter\n\
            swarm_vms_total{tenant_id=\"acme\",status=\"failed\"} 3\n\
            swarm_vms_active 2\n\
            b_bucket{le=\"+Inf\",path=\"/a{b}\\\"c\"} 7 1700000000\n\
            broken{x=\"1\" 5\n";
        let s = parse(text);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].name, "swarm_vms_total");
        assert_eq!(s[0].labels["status"], "failed");
        assert_eq!(s[0].value, 3.0);
        assert_eq!(s[1].labels.len(), 0);
        assert_eq!(s[2].labels["path"], "/a{b}\"c");
        assert_eq!(s[2].labels["le"], "+Inf");
    }

    #[test]
    fn history_keeps_only_wanted_metrics_within_retention_and_cap() {
        let wanted: HashSet<String> = ["a".to_owned()].into();
        let mut h = History::new(wanted, 10.0, 2);
        let sample = |n: &str, l: &str, v: f64| Sample {
            name: n.into(),
            labels: [("k".to_owned(), l.to_owned())].into(),
            value: v,
        };
        h.add(
            0.0,
            vec![sample("a", "1", 1.0), sample("b", "1", 1.0)],
            &Labels::new(),
        );
        assert_eq!(h.len(), 1);
        h.add(
            5.0,
            vec![sample("a", "2", 1.0), sample("a", "3", 1.0)],
            &Labels::new(),
        );
        assert_eq!(h.len(), 2, "capped at 2 series");
        assert_eq!(h.dropped_series, 1);
        h.add(20.0, vec![sample("a", "2", 2.0)], &Labels::new());
        assert_eq!(h.len(), 1, "series without recent points are forgotten");
        let (_, s) = h.series("a").next().expect("series");
        assert_eq!(s.points.len(), 1);
        assert_eq!(s.first_seen, 5.0, "appeared after the first scrape");
    }
}
