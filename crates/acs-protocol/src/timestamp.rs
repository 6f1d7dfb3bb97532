//! Fast, allocation-free ISO-8601 / RFC 3339 timestamps as ACS sends them
//! (`2024-11-15T19:16:12.925Z`, `2022-08-23T11:48:05Z`).
//!
//! Dates are converted with Howard Hinnant's days-from-civil arithmetic (proleptic Gregorian
//! calendar), so there is no table and no time-zone database.

/// A parsed timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Milliseconds since 1970-01-01T00:00:00Z (negative before); fractional seconds are
    /// truncated (floored) to the millisecond.
    pub unix_ms: i64,
    /// Whether the string had a fractional-seconds part (ACS's .NET test vector has none).
    pub precise: bool,
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|z|±HH:MM|±HHMM)`.
///
/// * The date/time separator may be `T`, `t` or a space.
/// * Years are exactly four digits (0000–9999); month, day (per month, leap years included),
///   hour (≤ 23), minute (≤ 59) and offset (≤ 23:59) are validated.
/// * 1 to 9 fractional digits; digits past the millisecond are truncated.
/// * A leap second (`:60`) is accepted and clamped to `:59.999` of the same minute, so time stays
///   monotonic and never lands on the next minute.
/// * No time-zone designator, trailing characters, or anything else → `None`.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = num2(b, 0)? * 100 + num2(b, 2)?;
    let month = num2(b, 5)?;
    let day = num2(b, 8)?;
    let hour = num2(b, 11)?;
    let minute = num2(b, 14)?;
    let second = num2(b, 17)?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }

    let mut i = 19;
    let mut ms = 0u32;
    let mut precise = false;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while let Some(&c) = b.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            if i - start < 3 {
                ms = ms * 10 + u32::from(c - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 || digits > 9 {
            return None;
        }
        for _ in digits..3 {
            ms *= 10;
        }
        precise = true;
    }

    let offset_secs: i64 = match *b.get(i)? {
        b'Z' | b'z' => {
            i += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            let oh = num2(b, i + 1)?;
            let mut j = i + 3;
            if b.get(j) == Some(&b':') {
                j += 1;
            }
            let om = num2(b, j)?;
            if oh > 23 || om > 59 {
                return None;
            }
            i = j + 2;
            let off = i64::from(oh * 3600 + om * 60);
            if sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    if i != b.len() {
        return None;
    }

    let (second, ms) = if second == 60 {
        (59, 999)
    } else {
        (second, ms)
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    Some(Timestamp {
        unix_ms: secs * 1000 + i64::from(ms),
        precise,
    })
}

/// Appends `unix_ms` to `out` as UTC with exactly three fractional digits, e.g.
/// `2024-11-15T19:16:12.925Z`. Nothing is allocated beyond `out`'s growth.
///
/// Years 0000–9999 (the range [`parse_timestamp`] reads back) use four digits; others use the
/// ISO-8601 expanded form with a sign and at least six digits (e.g. `+010000-01-01T…`). Works for
/// every `i64`.
pub fn format_timestamp(unix_ms: i64, out: &mut String) {
    let days = unix_ms.div_euclid(86_400_000);
    let ms_of_day = unix_ms.rem_euclid(86_400_000) as u32; // < 86_400_000
    let (year, month, day) = civil_from_days(days);

    if (0..=9999).contains(&year) {
        let y = year as u32;
        push2(out, y / 100);
        push2(out, y % 100);
    } else {
        out.push(if year < 0 { '-' } else { '+' });
        let mut digits = [b'0'; 20];
        let mut n = year.unsigned_abs();
        let mut k = digits.len();
        while n > 0 {
            k -= 1;
            digits[k] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let k = k.min(digits.len() - 6);
        for &d in &digits[k..] {
            out.push(char::from(d));
        }
    }
    out.push('-');
    push2(out, month);
    out.push('-');
    push2(out, day);
    out.push('T');
    let secs = ms_of_day / 1000;
    push2(out, secs / 3600);
    out.push(':');
    push2(out, secs / 60 % 60);
    out.push(':');
    push2(out, secs % 60);
    out.push('.');
    let ms = ms_of_day % 1000;
    out.push(char::from(b'0' + (ms / 100) as u8));
    push2(out, ms % 100);
    out.push('Z');
}

/// Two ASCII digits at `b[at..at + 2]`.
#[inline]
fn num2(b: &[u8], at: usize) -> Option<u32> {
    let hi = b.get(at)?.wrapping_sub(b'0');
    let lo = b.get(at + 1)?.wrapping_sub(b'0');
    if hi < 10 && lo < 10 {
        Some(u32::from(hi) * 10 + u32::from(lo))
    } else {
        None
    }
}

/// Appends `v` (< 100) as two digits.
#[inline]
fn push2(out: &mut String, v: u32) {
    out.push(char::from(b'0' + (v / 10) as u8));
    out.push(char::from(b'0' + (v % 10) as u8));
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = (y - era * 400) as u32; // [0, 399]
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + i64::from(doe) - 719_468
}

/// Inverse of [`days_from_civil`]: `(year, month, day)`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = (z - era * 146_097) as u32; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = i64::from(yoe) + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        parse_timestamp(s)
            .unwrap_or_else(|| panic!("rejected {s}"))
            .unix_ms
    }

    fn fmt(unix_ms: i64) -> String {
        let mut s = String::new();
        format_timestamp(unix_ms, &mut s);
        s
    }

    /// Small deterministic generator (SplitMix64) so the property tests need no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(ms("1970-01-01T00:00:00Z"), 0);
        assert_eq!(ms("2024-11-15T19:16:12.925Z"), 1_731_698_172_925);
        assert_eq!(ms("2024-05-30T06:25:02.948Z"), 1_717_050_302_948);
        let t = parse_timestamp("2022-08-23T11:48:05Z").unwrap();
        assert_eq!(t.unix_ms, 1_661_255_285_000);
        assert!(!t.precise);
        assert!(parse_timestamp("2024-11-15T19:16:12.925Z").unwrap().precise);
        assert_eq!(ms("2000-02-29T12:00:00Z"), 951_825_600_000);
        assert_eq!(ms("2038-01-19T03:14:07Z"), 2_147_483_647_000);
    }

    #[test]
    fn separators_and_zulu_casing() {
        let base = ms("2024-11-15T19:16:12.925Z");
        assert_eq!(ms("2024-11-15t19:16:12.925z"), base);
        assert_eq!(ms("2024-11-15 19:16:12.925Z"), base);
    }

    #[test]
    fn offsets() {
        let utc = ms("2024-11-15T19:16:12Z");
        assert_eq!(ms("2024-11-15T20:16:12+01:00"), utc);
        assert_eq!(ms("2024-11-15T20:16:12+0100"), utc);
        assert_eq!(ms("2024-11-15T13:46:12-05:30"), utc);
        assert_eq!(ms("2024-11-15T19:16:12+00:00"), utc);
        assert_eq!(ms("2024-11-15T19:16:12-00:00"), utc);
        // Offset crossing midnight and a year boundary.
        assert_eq!(ms("2025-01-01T00:30:00+01:00"), ms("2024-12-31T23:30:00Z"));
    }

    #[test]
    fn fractional_digits_truncate_to_ms() {
        let base = ms("2024-11-15T19:16:12Z");
        let cases = [
            (".9", 900),
            (".92", 920),
            (".925", 925),
            (".9259", 925),
            (".92599", 925),
            (".925999", 925),
            (".9259999", 925),
            (".92599999", 925),
            (".925999999", 925),
            (".000000001", 0),
        ];
        for (frac, extra) in cases {
            let s = format!("2024-11-15T19:16:12{frac}Z");
            let t = parse_timestamp(&s).unwrap();
            assert_eq!(t.unix_ms, base + extra, "{s}");
            assert!(t.precise);
        }
        // 10 digits is too many; a bare dot is not a fraction.
        assert_eq!(parse_timestamp("2024-11-15T19:16:12.9259999999Z"), None);
        assert_eq!(parse_timestamp("2024-11-15T19:16:12.Z"), None);
    }

    #[test]
    fn before_1970_is_negative() {
        assert_eq!(ms("1969-12-31T23:59:59Z"), -1000);
        assert_eq!(ms("1969-12-31T23:59:59.999Z"), -1);
        assert_eq!(ms("1900-01-01T00:00:00Z"), -2_208_988_800_000);
        assert_eq!(ms("0000-01-01T00:00:00Z"), -62_167_219_200_000);
        assert_eq!(ms("9999-12-31T23:59:59.999Z"), 253_402_300_799_999);
    }

    #[test]
    fn leap_second_is_clamped() {
        assert_eq!(ms("2016-12-31T23:59:60Z"), ms("2016-12-31T23:59:59.999Z"));
        assert_eq!(ms("2016-12-31T23:59:60.5Z"), ms("2016-12-31T23:59:59.999Z"));
        assert_eq!(parse_timestamp("2016-12-31T23:59:61Z"), None);
    }

    #[test]
    fn invalid_strings_are_rejected() {
        for s in [
            "",
            "garbage",
            "2024-11-15",
            "2024-11-15T19:16:12",  // no zone
            "2024-13-15T19:16:12Z", // month 13
            "2024-00-15T19:16:12Z",
            "2024-02-30T19:16:12Z",
            "2023-02-29T00:00:00Z", // not a leap year
            "1900-02-29T00:00:00Z", // not a leap year (century)
            "2024-04-31T00:00:00Z",
            "2024-11-00T19:16:12Z",
            "2024-11-15T24:00:00Z",
            "2024-11-15T19:60:12Z",
            "2024-11-15T19:16:12ZZ", // trailing junk
            "2024-11-15T19:16:12.925Z ",
            "2024-11-15T19:16:12.925Zjunk",
            "2024-11-15T19:16:12+01",
            "2024-11-15T19:16:12+01:0",
            "2024-11-15T19:16:12+24:00",
            "2024-11-15T19:16:12+01:60",
            "2024-11-15T19:16:12+01:00:00",
            "2024-11-15X19:16:12Z",
            "2024/11/15T19:16:12Z",
            "24-11-15T19:16:12.000Z",
            "+2024-11-15T19:16:12Z",
            "2024-1a-15T19:16:12Z",
            "２０２４-11-15T19:16:12Z",
            "2024-11-15T19:16:1é2Z",
        ] {
            assert_eq!(parse_timestamp(s), None, "accepted {s:?}");
        }
        assert!(parse_timestamp("2024-02-29T00:00:00Z").is_some());
        assert!(parse_timestamp("2000-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn format_known_values() {
        assert_eq!(fmt(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(fmt(1_731_698_172_925), "2024-11-15T19:16:12.925Z");
        assert_eq!(fmt(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(fmt(951_825_600_007), "2000-02-29T12:00:00.007Z");
        assert_eq!(fmt(253_402_300_800_000), "+010000-01-01T00:00:00.000Z");
        assert_eq!(fmt(-62_167_219_200_001), "-000001-12-31T23:59:59.999Z");
        // Extremes do not panic.
        assert!(fmt(i64::MAX).ends_with('Z'));
        assert!(fmt(i64::MIN).starts_with('-'));
        // Appends.
        let mut s = String::from("t=");
        format_timestamp(0, &mut s);
        assert_eq!(s, "t=1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn format_then_parse_round_trips() {
        const MIN: i64 = -62_167_219_200_000; // 0000-01-01
        const MAX: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999
        let mut rng = Rng(0x5EED);
        let mut s = String::with_capacity(32);
        let check = |v: i64, s: &mut String| {
            s.clear();
            format_timestamp(v, s);
            assert_eq!(s.len(), 24, "{s}");
            let t = parse_timestamp(s).unwrap_or_else(|| panic!("rejected {s}"));
            assert_eq!(t.unix_ms, v, "{s}");
            assert!(t.precise);
        };
        for v in [MIN, MAX, 0, -1, 1, 86_399_999, 86_400_000, -86_400_000] {
            check(v, &mut s);
        }
        for _ in 0..20_000 {
            let v = MIN + rng.below((MAX - MIN) as u64 + 1) as i64;
            check(v, &mut s);
        }
        // Dense around "now" and around the epoch.
        for _ in 0..20_000 {
            check(
                1_700_000_000_000 + rng.below(400_000_000_000) as i64,
                &mut s,
            );
            check(rng.below(200_000_000_000) as i64 - 100_000_000_000, &mut s);
        }
        // Every day boundary over several centuries (exercises all leap-year rules).
        let mut day = -200_000i64;
        while day < 200_000 {
            check(day * 86_400_000, &mut s);
            check(day * 86_400_000 - 1, &mut s);
            day += 1;
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in -1_000_000..1_000_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn agrees_with_chrono() {
        let mut rng = Rng(42);
        let mut accepted = 0;
        for i in 0..600 {
            let year = 1900 + rng.below(201);
            let month = 1 + rng.below(12);
            // Sometimes generate day 29..31 regardless of month, to exercise rejections.
            let day = if i % 5 == 0 {
                29 + rng.below(3)
            } else {
                1 + rng.below(28)
            };
            let (h, mi, sec) = (rng.below(24), rng.below(60), rng.below(60));
            let digits = rng.below(10) as usize;
            let frac = if digits == 0 {
                String::new()
            } else {
                let f = format!("{:09}", rng.below(1_000_000_000));
                format!(".{}", &f[..digits])
            };
            let zone = match rng.below(4) {
                0 | 1 => "Z".to_owned(),
                _ => format!(
                    "{}{:02}:{:02}",
                    if rng.below(2) == 0 { '+' } else { '-' },
                    rng.below(24),
                    rng.below(60)
                ),
            };
            let s = format!("{year:04}-{month:02}-{day:02}T{h:02}:{mi:02}:{sec:02}{frac}{zone}");
            let ours = parse_timestamp(&s).map(|t| t.unix_ms);
            let theirs = chrono::DateTime::parse_from_rfc3339(&s)
                .ok()
                .map(|d| d.timestamp_millis());
            assert_eq!(ours, theirs, "{s}");
            accepted += usize::from(ours.is_some());
        }
        assert!(accepted > 500, "{accepted}");
    }
}
