//! A metric family written straight to the Prometheus text format. The snapshot's families are
//! rendered with it: hundreds of thousands of series on a large tenant, where building the
//! `prometheus` crate's objects first cost about 1.6 KiB a series (docs/performance.md).

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
            values: values.iter().map(|v| capped(v.as_ref())).collect(),
        }
    }

    /// The family's only series, when it has no labels.
    pub fn set(&self, value: f64) {
        self.with_label_values::<&str>(&[]).set(value);
    }

    /// Appends the family in the text format; nothing when it has no series.
    pub fn write(&self, out: &mut String) {
        let series = self.series.borrow();
        if series.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, escape_help(self.help));
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        // Labels in name order, as Prometheus' own encoders write them.
        let mut order: Vec<usize> = (0..self.labels.len()).collect();
        order.sort_by_key(|&i| self.labels[i]);
        for (values, value) in series.iter() {
            out.push_str(self.name);
            if !order.is_empty() {
                out.push('{');
                for (n, &i) in order.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    let _ = write!(
                        out,
                        "{}=\"{}\"",
                        self.labels[i],
                        escape_value(values.get(i).map_or("", String::as_str))
                    );
                }
                out.push('}');
            }
            out.push(' ');
            write_value(out, *value);
            out.push('\n');
        }
    }
}

/// The longest label value written, in bytes (URLs and names are far shorter).
pub const LABEL_LIMIT: usize = 512;

/// What marks a value that was cut.
pub const CUT_MARKER: &str = "…[cut]";

fn capped(value: &str) -> String {
    if value.len() <= LABEL_LIMIT {
        return value.to_string();
    }
    let mut end = LABEL_LIMIT;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT_MARKER}", &value[..end])
}

fn write_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{value}");
    }
}

fn escape_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
