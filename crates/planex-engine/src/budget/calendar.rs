//! Monthly budget periods in UTC: the current month and the time until the next one starts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 → (year, month) in the proleptic Gregorian calendar (UTC).
fn year_month(days: i64) -> (i64, u32) {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month)
}

/// Days from 1970-01-01 to the first day of (year, month).
fn days_from_civil(year: i64, month: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The current month in UTC as `YYYY-MM` (the period of monthly budgets).
pub fn current_month() -> String {
    let (year, month) = year_month(now_secs().div_euclid(86_400));
    format!("{year:04}-{month:02}")
}

/// The first and the last millisecond (exclusive end) of `month` (`YYYY-MM`, UTC) since the
/// epoch; `None` for text that is not such a month or one before 1970.
pub fn month_bounds_ms(month: &str) -> Option<(u64, u64)> {
    let (year, number) = month.split_once('-')?;
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if year.len() != 4 || number.len() != 2 || !digits(year) || !digits(number) {
        return None;
    }
    let year: i64 = year.parse().ok()?;
    let number: u32 = number.parse().ok()?;
    if !(1..=12).contains(&number) {
        return None;
    }
    let (next_year, next) = if number == 12 {
        (year + 1, 1)
    } else {
        (year, number + 1)
    };
    let start = days_from_civil(year, number) * 86_400_000;
    let end = days_from_civil(next_year, next) * 86_400_000;
    Some((u64::try_from(start).ok()?, u64::try_from(end).ok()?))
}

/// Time until the next month starts (UTC).
pub fn until_next_month() -> Duration {
    let now = now_secs();
    let (year, month) = year_month(now.div_euclid(86_400));
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let next = days_from_civil(ny, nm) * 86_400;
    Duration::from_secs((next - now).max(1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_bounds_cover_the_month_in_utc() {
        assert_eq!(month_bounds_ms("1970-01"), Some((0, 31 * 86_400_000)));
        let (start, end) = month_bounds_ms("2026-12").unwrap_or_default();
        assert_eq!(start, 1_796_083_200_000);
        assert_eq!(end, 1_798_761_600_000);
        for bad in [
            "2026-13", "2026-1", "26-12", "1969-12", "2026/12", "", "2026-+1", "+026-01",
        ] {
            assert_eq!(month_bounds_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn calendar_months_are_right() {
        assert_eq!(year_month(0), (1970, 1));
        assert_eq!(year_month(31), (1970, 2));
        // 2024-02-29 is day 19782; 2024-03-01 is 19783.
        assert_eq!(year_month(19_782), (2024, 2));
        assert_eq!(year_month(19_783), (2024, 3));
        assert_eq!(days_from_civil(2024, 3), 19_783);
        assert_eq!(days_from_civil(1970, 1), 0);
        assert_eq!(current_month().len(), 7);
        assert!(until_next_month() <= Duration::from_secs(31 * 86_400));
    }
}
