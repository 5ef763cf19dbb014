//! The calendar month (UTC) of a wall-clock time, for `monthlyQuota`, which providers reset
//! at the start of each month.

/// The UTC month of epoch milliseconds `ms` as `yyyymm` (202611 for November 2026).
pub fn utc_month(ms: u64) -> u32 {
    // Civil-from-days (H. Hinnant), on days since 1970-01-01. Epoch ms from a u64 fit easily.
    let days = (ms / 86_400_000) as i64 + 719_468;
    let era = days / 146_097;
    let doe = days - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    u32::try_from(year * 100 + month).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::utc_month;

    #[test]
    fn months_turn_at_utc_midnight() {
        assert_eq!(utc_month(0), 197_001);
        // 2026-11-30T23:59:59.999Z and 2026-12-01T00:00:00Z
        assert_eq!(utc_month(1_796_083_199_999), 202_611);
        assert_eq!(utc_month(1_796_083_200_000), 202_612);
        // 2024-02-29 (leap day) and 2024-03-01
        assert_eq!(utc_month(1_709_164_800_000), 202_402);
        assert_eq!(utc_month(1_709_251_200_000), 202_403);
        assert_eq!(utc_month(u64::MAX), u32::MAX);
    }
}
