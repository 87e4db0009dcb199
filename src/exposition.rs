//! Metric families written straight to the Prometheus text format, and kept compressed
//! ([`gzip`]). The snapshot's families are rendered with them: a large tenant has over a
//! hundred thousand series, where building the `prometheus` crate's objects first cost about
//! 1.6 KiB a series (docs/performance.md). Small families collect their series in a
//! [`Family`]; the per-app and per-endpoint ones are written series by series as the snapshot
//! is walked ([`write_family`], [`write_histogram`]), so no family is held whole in memory.

pub mod gzip;
mod kept;

pub use kept::{CounterVec, Histogram};

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write;

/// A gauge family: its series by label values, written sorted, each label set once (a later
/// value replaces an earlier one, as with a `GaugeVec`).
pub struct Family {
    name: &'static str,
    help: &'static str,
    labels: Vec<&'static str>,
    series: RefCell<BTreeMap<Vec<String>, f64>>,
    /// `gauge`, or `counter` for a total kept elsewhere and written as it stands.
    kind: &'static str,
}

/// One series of a family, to set.
pub struct Series<'a> {
    family: &'a Family,
    values: Vec<String>,
}

impl Series<'_> {
    pub fn set(self, value: f64) {
        self.family.series.borrow_mut().insert(self.values, value);
    }
}

impl Family {
    pub fn new(name: &'static str, help: &'static str, labels: &[&'static str]) -> Family {
        Family {
            name,
            help,
            labels: labels.to_vec(),
            series: RefCell::new(BTreeMap::new()),
            kind: "gauge",
        }
    }

    /// A counter family: its name ends in `_total`; the values are totals kept elsewhere.
    pub fn counter(name: &'static str, help: &'static str, labels: &[&'static str]) -> Family {
        Family {
            kind: "counter",
            ..Family::new(name, help, labels)
        }
    }

    /// The series with these label values, in the order the family's labels were given. A
    /// value longer than [`LABEL_LIMIT`] bytes is cut there and marked, so a 10 MB string in a
    /// connector's file or a tenant's name cannot ride on every scrape.
    pub fn with_label_values<V: AsRef<str>>(&self, values: &[V]) -> Series<'_> {
        Series {
            family: self,
            values: values
                .iter()
                .map(|v| capped(v.as_ref()).into_owned())
                .collect(),
        }
    }

    /// The family's only series, when it has no labels.
    pub fn set(&self, value: f64) {
        self.with_label_values::<&str>(&[]).set(value);
    }

    /// Appends the family in the text format; nothing when it has no series.
    pub fn write(&self, out: &mut impl Write) {
        let series = self.series.borrow();
        write_family(
            out,
            self.name,
            self.help,
            self.kind,
            &self.labels,
            series
                .iter()
                .map(|(values, value)| (values.as_slice(), *value)),
        );
    }
}

/// Writes one family: its `# HELP` and `# TYPE` lines, then one line per series (label values
/// in the order of `labels`, capped as in [`Family::with_label_values`]); nothing at all when
/// `series` is empty.
pub fn write_family<V: AsRef<str>>(
    out: &mut impl Write,
    name: &str,
    help: &str,
    kind: &str,
    labels: &[&str],
    series: impl IntoIterator<Item = (impl AsRef<[V]>, f64)>,
) {
    let order = name_order(labels);
    let mut header = Some((name, help, kind));
    for (values, value) in series {
        if let Some((name, help, kind)) = header.take() {
            write_header(out, name, help, kind);
        }
        write_series(out, name, labels, &order, values.as_ref(), &[], value);
    }
}

/// Labels are written in name order, as Prometheus' own encoders write them (`le` last).
fn name_order(labels: &[&str]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by_key(|&i| labels[i]);
    order
}

/// One histogram series: its label values, the upper bounds with their cumulative counts
/// (without `+Inf`, which is `count`), the sum of the observations and their count.
pub struct HistogramSeries<'a, V> {
    pub labels: &'a [V],
    pub buckets: &'a [(f64, u64)],
    pub sum: f64,
    pub count: u64,
}

/// Writes one histogram family, as [`write_family`] writes a gauge.
pub fn write_histogram<'a, V: AsRef<str> + 'a>(
    out: &mut impl Write,
    name: &str,
    help: &str,
    labels: &[&str],
    series: impl IntoIterator<Item = HistogramSeries<'a, V>>,
) {
    let order = name_order(labels);
    let mut header = Some(());
    let (bucket, sum, count) = (
        format!("{name}_bucket"),
        format!("{name}_sum"),
        format!("{name}_count"),
    );
    for s in series {
        if header.take().is_some() {
            write_header(out, name, help, "histogram");
        }
        let mut le = String::new();
        for (bound, cumulative) in s.buckets {
            le.clear();
            write_value(&mut le, *bound);
            let at = [("le", le.as_str())];
            write_series(
                out,
                &bucket,
                labels,
                &order,
                s.labels,
                &at,
                *cumulative as f64,
            );
        }
        let inf = [("le", "+Inf")];
        write_series(out, &bucket, labels, &order, s.labels, &inf, s.count as f64);
        write_series(out, &sum, labels, &order, s.labels, &[], s.sum);
        write_series(out, &count, labels, &order, s.labels, &[], s.count as f64);
    }
}

fn write_header(out: &mut impl Write, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn write_series<V: AsRef<str>>(
    out: &mut impl Write,
    name: &str,
    labels: &[&str],
    order: &[usize],
    values: &[V],
    extra: &[(&str, &str)],
    value: f64,
) {
    let _ = out.write_str(name);
    let value_of = |i: usize| capped(values.get(i).map_or("", AsRef::as_ref));
    let pairs = order.iter().map(|&i| (labels[i], value_of(i))).chain(
        extra
            .iter()
            .map(|(l, v)| (*l, std::borrow::Cow::Borrowed(*v))),
    );
    let mut first = true;
    for (label, text) in pairs {
        let _ = out.write_str(if first { "{" } else { "," });
        first = false;
        let _ = write!(out, "{label}=\"{}\"", escape_value(&text));
    }
    if !first {
        let _ = out.write_char('}');
    }
    let _ = out.write_char(' ');
    write_value(out, value);
    let _ = out.write_char('\n');
}

/// The longest label value written, in bytes (URLs and names are far shorter).
pub const LABEL_LIMIT: usize = 512;

/// What marks a value that was cut.
pub const CUT_MARKER: &str = "…[cut]";

fn capped(value: &str) -> std::borrow::Cow<'_, str> {
    if value.len() <= LABEL_LIMIT {
        return value.into();
    }
    let mut end = LABEL_LIMIT;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT_MARKER}", &value[..end]).into()
}

fn write_value(out: &mut impl Write, value: f64) {
    let _ = if value.is_nan() {
        out.write_str("NaN")
    } else if value.is_infinite() {
        out.write_str(if value > 0.0 { "+Inf" } else { "-Inf" })
    } else {
        write!(out, "{value}")
    };
}

fn escape_value(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['\\', '"', '\n']) {
        return text.into();
    }
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_label_value_is_cut_and_marked() {
        let family = Family::new("x", "help", &["proxy_url"]);
        family.with_label_values(&["h".repeat(10_000_000)]).set(1.0);
        let mut out = String::new();
        family.write(&mut out);
        assert!(out.len() < 1000, "{} bytes", out.len());
        assert!(out.contains(&format!("{}{CUT_MARKER}\"", "h".repeat(LABEL_LIMIT))));
    }

    #[test]
    fn writes_sorted_labels_escaped_values_and_skips_empty_families() {
        let family = Family::new("appproxy_x", "Help with a \\ backslash.", &["step", "app"]);
        family.with_label_values(&["3", "a\"b"]).set(1.0);
        family.with_label_values(&["3", "a\"b"]).set(2.0);
        family.with_label_values(&["1", "c\\d\ne"]).set(0.5);
        let mut out = String::new();
        family.write(&mut out);
        assert_eq!(
            out,
            "# HELP appproxy_x Help with a \\\\ backslash.\n# TYPE appproxy_x gauge\n\
             appproxy_x{app=\"c\\\\d\\ne\",step=\"1\"} 0.5\nappproxy_x{app=\"a\\\"b\",step=\"3\"} 2\n"
        );
        let empty = Family::new("appproxy_y", "h", &[]);
        let mut none = String::new();
        empty.write(&mut none);
        assert!(none.is_empty());
        empty.set(f64::INFINITY);
        empty.write(&mut none);
        assert!(none.ends_with("appproxy_y +Inf\n"), "{none}");
    }
}
