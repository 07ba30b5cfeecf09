//! The engine benchmarks' printed tables: aligned percentile rows and the target verdict.

use crate::stats::Summary;

/// A row of percentiles (one decimal), labelled `name`.
pub(crate) fn row(name: &str, s: &Summary) -> String {
    format!(
        "{name:<44} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
        s.p50, s.p90, s.p99, s.max, s.mean
    )
}

/// A row of ratios (four decimals), labelled `name`.
pub(crate) fn ratio_row(name: &str, s: &Summary) -> String {
    format!(
        "{name:<44} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>9.4}",
        s.p50, s.p90, s.p99, s.max, s.mean
    )
}

/// The column header, with the rows' `unit`.
pub(crate) fn header(unit: &str) -> String {
    format!(
        "{:<44} {:>9} {:>9} {:>9} {:>9} {:>9}",
        format!("({unit})"),
        "p50",
        "p90",
        "p99",
        "max",
        "mean"
    )
}

/// PASS or FAIL.
pub(crate) fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}
