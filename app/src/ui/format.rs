//! Figures as a person reads them: ages ("12 s ago"), durations ("3 d 4 h") and sizes ("1.5 GiB").
//! The same on the server's render and in the browser (no clock is read here).

/// "12 s ago", "5 min ago", "3 h ago", "2 d ago" for an age in milliseconds.
pub fn ago(ms: i64) -> String {
    let secs = (ms / 1000).max(0);
    match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

/// "3 d 4 h", "5 h 12 min", "7 min".
pub fn uptime(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min")
    }
}

/// "512 B", "1.5 KiB", "14.9 GiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `ms` (since the epoch) as a UTC date and time, e.g. "2026-11-28 14:05 UTC" (member tables,
/// jobs, and the times in mail), computed without a date library (Howard Hinnant's
/// civil-from-days).
pub fn utc_datetime(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60
    )
}

/// The time of day of `ms` (since the epoch) in UTC, e.g. "14:03:27 UTC".
pub fn clock(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_like_a_person_would_say_them() {
        assert_eq!(ago(12_000), "12 s ago");
        assert_eq!(ago(5 * 60_000), "5 min ago");
        assert_eq!(ago(-5), "0 s ago");
        assert_eq!(uptime(3 * 86_400 + 4 * 3600 + 5), "3 d 4 h");
        assert_eq!(uptime(7 * 60), "7 min");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(16_000_000_000), "14.9 GiB");
        assert_eq!(
            clock(86_400_000 + 14 * 3_600_000 + 3 * 60_000 + 27_500),
            "14:03:27 UTC"
        );
        assert_eq!(utc_datetime(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_datetime(1_795_000_000_000), "2026-11-18 11:06 UTC");
        assert_eq!(utc_datetime(1_795_876_740_000), "2026-11-28 14:39 UTC");
        assert_eq!(utc_datetime(951_782_400_000), "2000-02-29 00:00 UTC");
    }
}
