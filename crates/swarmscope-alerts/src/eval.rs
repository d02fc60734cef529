//! Evaluating an [`Expr`] over the [`History`] at a point in time.
//!
//! Differences from Prometheus, on purpose: `increase` is the sum of the
//! observed rises inside the window (a counter reset adds the new value), not
//! extrapolated to the window's edges; and a series that first appears
//! inside the window counts from zero, so the first spawn failure after a
//! restart is counted (Prometheus misses it, having no earlier sample).

use std::collections::BTreeMap;

use crate::rules::{Expr, Selector};
use crate::samples::{History, Labels, Series};

/// How long a gauge's last sample stays current (as Prometheus's lookback).
pub const STALENESS_SECS: f64 = 300.0;

/// The rise of a counter over `(now - window, now]`.
fn increase(series: &Series, now: f64, window: f64) -> Option<f64> {
    let from = now - window;
    let mut points = series
        .points
        .iter()
        .filter(|(t, _)| *t > from - 1e-9 && *t <= now + 1e-9);
    let (mut total, mut prev) = if series.first_seen > from {
        (0.0, 0.0)
    } else {
        let (_, first) = points.next()?;
        (0.0, *first)
    };
    let mut any = series.first_seen > from;
    for (_, v) in points {
        any = true;
        total += if *v >= prev { v - prev } else { *v };
        prev = *v;
    }
    any.then_some(total)
}

fn group_key(labels: &Labels, by: &[String]) -> Labels {
    by.iter()
        .filter_map(|k| labels.get(k).map(|v| (k.clone(), v.clone())))
        .collect()
}

fn sum_increase(
    history: &History,
    sel: &Selector,
    now: f64,
    window: f64,
    by: &[String],
) -> BTreeMap<Labels, f64> {
    let mut out = BTreeMap::new();
    for (key, series) in history.series(&sel.metric) {
        if !sel.matches(&key.labels) {
            continue;
        }
        if let Some(inc) = increase(series, now, window) {
            *out.entry(group_key(&key.labels, by)).or_insert(0.0) += inc;
        }
    }
    out
}

/// Prometheus's `histogram_quantile` over (upper bound, cumulative count).
pub fn quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> Option<f64> {
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let &(last_le, total) = buckets.last()?;
    if last_le != f64::INFINITY || total <= 0.0 || buckets.len() < 2 {
        return None;
    }
    // Cumulative counts never fall (guards against a torn scrape).
    for i in 1..buckets.len() {
        buckets[i].1 = buckets[i].1.max(buckets[i - 1].1);
    }
    let rank = q.clamp(0.0, 1.0) * total;
    let i = buckets.iter().position(|(_, c)| *c >= rank)?;
    if i == buckets.len() - 1 {
        return Some(buckets[i - 1].0);
    }
    let (start, count_start) = if i == 0 {
        (0.0_f64.min(buckets[0].0), 0.0)
    } else {
        buckets[i - 1]
    };
    let (end, count_end) = buckets[i];
    if count_end == count_start {
        return Some(end);
    }
    Some(start + (end - start) * (rank - count_start) / (count_end - count_start))
}

/// The expression's value per group at `now` (seconds, the history's clock).
/// Groups without data are absent.
pub fn evaluate(expr: &Expr, history: &History, now: f64) -> Vec<(Labels, f64)> {
    match expr {
        Expr::Ratio {
            numerator,
            denominator,
            window,
        } => {
            let w = window.as_secs_f64();
            let num: f64 = sum_increase(history, numerator, now, w, &[]).values().sum();
            let den: f64 = sum_increase(history, denominator, now, w, &[])
                .values()
                .sum();
            if den > 0.0 {
                vec![(Labels::new(), num / den)]
            } else {
                Vec::new()
            }
        }
        Expr::Increase {
            selector,
            window,
            by,
        } => sum_increase(history, selector, now, window.as_secs_f64(), by)
            .into_iter()
            .collect(),
        Expr::Quantile { q, buckets, window } => {
            let mut by_le: BTreeMap<String, f64> = BTreeMap::new();
            for (key, series) in history.series(&buckets.metric) {
                if !buckets.matches(&key.labels) {
                    continue;
                }
                let Some(le) = key.labels.get("le") else {
                    continue;
                };
                if let Some(inc) = increase(series, now, window.as_secs_f64()) {
                    *by_le.entry(le.clone()).or_insert(0.0) += inc;
                }
            }
            let points: Vec<(f64, f64)> = by_le
                .into_iter()
                .filter_map(|(le, c)| {
                    let le = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().ok()?
                    };
                    Some((le, c))
                })
                .collect();
            quantile(*q, points)
                .map(|v| vec![(Labels::new(), v)])
                .unwrap_or_default()
        }
        Expr::Gauge { selector, max, by } => {
            let mut out: BTreeMap<Labels, f64> = BTreeMap::new();
            for (key, series) in history.series(&selector.metric) {
                if !selector.matches(&key.labels) {
                    continue;
                }
                let Some(&(t, v)) = series.points.back() else {
                    continue;
                };
                if now - t > STALENESS_SECS {
                    continue;
                }
                let slot = out.entry(group_key(&key.labels, by));
                if *max {
                    let e = slot.or_insert(f64::NEG_INFINITY);
                    *e = e.max(v);
                } else {
                    *slot.or_insert(0.0) += v;
                }
            }
            out.into_iter().collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::*;
    use crate::samples::Sample;

    /// (time, metric, labels, value).
    type Point<'a> = (f64, &'a str, &'a [(&'a str, &'a str)], f64);

    fn history(points: &[Point<'_>]) -> History {
        let names: HashSet<String> = points.iter().map(|p| p.1.to_owned()).collect();
        let mut h = History::new(names, 3600.0, 1000);
        let mut times: Vec<f64> = points.iter().map(|p| p.0).collect();
        times.dedup();
        for t in times {
            let samples = points
                .iter()
                .filter(|p| p.0 == t)
                .map(|p| Sample {
                    name: p.1.to_owned(),
                    labels: p
                        .2
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    value: p.3,
                })
                .collect();
            h.add(t, samples, &Labels::new());
        }
        h
    }

    #[test]
    fn increase_sums_rises_across_a_reset_and_counts_new_series_from_zero() {
        let old: &[(&str, &str)] = &[("status", "failed"), ("tenant_id", "a")];
        let new: &[(&str, &str)] = &[("status", "failed"), ("tenant_id", "b")];
        let h = history(&[
            (0.0, "c", old, 10.0),
            (60.0, "c", old, 12.0),
            (120.0, "c", old, 1.0), // reset
            (120.0, "c", new, 2.0), // appears
            (180.0, "c", old, 3.0),
            (180.0, "c", new, 4.0),
        ]);
        let expr = Expr::Increase {
            selector: Selector::new("c").eq("status", "failed"),
            window: Duration::from_secs(300),
            by: vec!["tenant_id".into()],
        };
        let got = evaluate(&expr, &h, 180.0);
        let a: Labels = [("tenant_id".to_owned(), "a".to_owned())].into();
        let b: Labels = [("tenant_id".to_owned(), "b".to_owned())].into();
        assert_eq!(got, vec![(a.clone(), 2.0 + 1.0 + 2.0), (b, 4.0)]);
        // A window that starts after the reset sees only the later rise.
        let short = Expr::Increase {
            selector: Selector::new("c"),
            window: Duration::from_secs(60),
            by: vec!["tenant_id".into()],
        };
        assert_eq!(evaluate(&short, &h, 180.0)[0], (a, 2.0));
    }

    #[test]
    fn ratio_of_5xx_and_gauges() {
        let ok: &[(&str, &str)] = &[("status", "200")];
        let bad: &[(&str, &str)] = &[("status", "503")];
        let odd: &[(&str, &str)] = &[("status", "5000")];
        let h = history(&[
            (0.0, "r", ok, 0.0),
            (0.0, "r", bad, 0.0),
            (0.0, "r", odd, 0.0),
            (0.0, "g", ok, 7.0),
            (0.0, "g", bad, 9.0),
            (60.0, "r", ok, 80.0),
            (60.0, "r", bad, 20.0),
            (60.0, "r", odd, 100.0),
        ]);
        let ratio = Expr::Ratio {
            numerator: Selector::new("r").class("status", '5'),
            denominator: Selector::new("r"),
            window: Duration::from_secs(300),
        };
        assert_eq!(evaluate(&ratio, &h, 60.0), vec![(Labels::new(), 0.1)]);
        let sum = Expr::Gauge {
            selector: Selector::new("g"),
            max: false,
            by: vec![],
        };
        assert_eq!(evaluate(&sum, &h, 60.0), vec![(Labels::new(), 16.0)]);
        assert!(evaluate(&sum, &h, 60.0 + STALENESS_SECS + 1.0).is_empty());
    }

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        // 100 observations: 50 ≤ 10, 90 ≤ 100, all ≤ 1000.
        let b = vec![
            (10.0, 50.0),
            (100.0, 90.0),
            (1000.0, 100.0),
            (f64::INFINITY, 100.0),
        ];
        assert_eq!(quantile(0.5, b.clone()), Some(10.0));
        assert_eq!(quantile(0.7, b.clone()), Some(55.0));
        assert_eq!(quantile(0.95, b.clone()), Some(550.0));
        let overflow = vec![(10.0, 1.0), (f64::INFINITY, 10.0)];
        assert_eq!(quantile(0.95, overflow), Some(10.0));
        assert_eq!(quantile(0.5, vec![(10.0, 0.0), (f64::INFINITY, 0.0)]), None);
    }
}
