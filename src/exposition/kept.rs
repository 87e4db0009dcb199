//! Counters and histograms the running process keeps (Graph's requests, tasks' panics), written
//! at scrape time by the same writer as every other family: one system for every series.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use super::{HistogramSeries, write_family, write_histogram};

/// A counter family: a total per label set, from the first time the set is touched.
#[derive(Debug)]
pub struct CounterVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    totals: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl CounterVec {
    pub fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        CounterVec {
            name,
            help,
            labels,
            totals: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds one to the series of `values` (in the order of the family's labels).
    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    /// Makes the series of `values` exist, at 0 until something counts in it.
    pub fn touch(&self, values: &[&str]) {
        self.add(values, 0);
    }

    /// The total of `values`.
    pub fn get(&self, values: &[&str]) -> u64 {
        let key: Vec<String> = values.iter().map(|v| (*v).to_string()).collect();
        self.lock().get(&key).copied().unwrap_or(0)
    }

    pub fn write(&self, out: &mut impl Write) {
        let totals = self.lock();
        write_family(
            out,
            self.name,
            self.help,
            "counter",
            self.labels,
            totals
                .iter()
                .map(|(values, n)| (values.as_slice(), *n as f64)),
        );
    }

    fn add(&self, values: &[&str], n: u64) {
        let key: Vec<String> = values.iter().map(|v| (*v).to_string()).collect();
        *self.lock().entry(key).or_insert(0) += n;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<String>, u64>> {
        // A poisoned lock only means a writer panicked mid-increment; the totals are whole.
        self.totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A histogram without labels, over fixed bucket bounds.
#[derive(Debug)]
pub struct Histogram {
    name: &'static str,
    help: &'static str,
    bounds: &'static [f64],
    state: Mutex<Observed>,
}

#[derive(Debug, Default)]
struct Observed {
    /// Observations at or below each bound.
    at_or_below: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub fn new(name: &'static str, help: &'static str, bounds: &'static [f64]) -> Self {
        Histogram {
            name,
            help,
            bounds,
            state: Mutex::new(Observed {
                at_or_below: vec![0; bounds.len()],
                ..Observed::default()
            }),
        }
    }

    pub fn observe(&self, value: f64) {
        let mut state = self.lock();
        for (bound, n) in self.bounds.iter().zip(&mut state.at_or_below) {
            if value <= *bound {
                *n += 1;
            }
        }
        state.sum += value;
        state.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.lock().count
    }

    pub fn write(&self, out: &mut impl Write) {
        let state = self.lock();
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .copied()
            .zip(state.at_or_below.iter().copied())
            .collect();
        let no_labels: [&str; 0] = [];
        write_histogram(
            out,
            self.name,
            self.help,
            &[],
            [HistogramSeries {
                labels: &no_labels,
                buckets: &buckets,
                sum: state.sum,
                count: state.count,
            }],
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Observed> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_writes_each_touched_series_with_its_total() {
        let counter = CounterVec::new("x_total", "Things.", &["kind", "code"]);
        counter.touch(&["a", "200"]);
        counter.inc(&["b", "500"]);
        counter.inc(&["b", "500"]);
        let mut out = String::new();
        counter.write(&mut out);
        assert_eq!(
            out,
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total{code=\"200\",kind=\"a\"} 0\nx_total{code=\"500\",kind=\"b\"} 2\n"
        );
        assert_eq!(counter.get(&["b", "500"]), 2);
    }

    #[test]
    fn a_histogram_counts_at_or_below_each_bound() {
        let histogram = Histogram::new("t_seconds", "Time.", &[0.5, 1.0]);
        for value in [0.1, 0.5, 0.7, 3.0] {
            histogram.observe(value);
        }
        let mut out = String::new();
        histogram.write(&mut out);
        assert!(out.contains("t_seconds_bucket{le=\"0.5\"} 2\n"), "{out}");
        assert!(out.contains("t_seconds_bucket{le=\"1\"} 3\n"), "{out}");
        assert!(out.contains("t_seconds_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("t_seconds_sum 4.3\n"), "{out}");
        assert!(out.contains("t_seconds_count 4\n"), "{out}");
    }
}
