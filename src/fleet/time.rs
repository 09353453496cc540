//! RFC 3339 timestamps to and from unix seconds, for the `expires:` fact in a
//! signature's trusted comment ([`super::signed`]). Own calendar arithmetic
//! (days from the civil date, proleptic Gregorian), no time crate.

/// Why a timestamp is not RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an RFC 3339 time ({why}); use e.g. 2027-01-31T00:00:00Z")]
pub struct TimeError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Days since 1970-01-01 of a civil date (valid for any year).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parse `YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm)` to unix seconds (the
/// fraction is dropped; `t` and `z` are accepted as RFC 3339 allows).
pub fn parse_rfc3339(text: &str) -> Result<i64, TimeError> {
    let err = |why| TimeError {
        text: text.to_owned(),
        why,
    };
    let b = text.as_bytes();
    // Digits at fixed places: `num(i, n)` reads b[i..i+n].
    let num = |i: usize, n: usize| -> Result<u32, TimeError> {
        let s = b.get(i..i + n).ok_or_else(|| err("too short"))?;
        s.iter().try_fold(0u32, |acc, &c| {
            if c.is_ascii_digit() {
                Ok(acc * 10 + u32::from(c - b'0'))
            } else {
                Err(err("a digit is expected"))
            }
        })
    };
    let sep = |i: usize, want: &[u8], why| -> Result<(), TimeError> {
        match b.get(i) {
            Some(c) if want.contains(c) => Ok(()),
            _ => Err(err(why)),
        }
    };
    let year = i64::from(num(0, 4)?);
    sep(4, b"-", "`-` after the year")?;
    let month = num(5, 2)?;
    sep(7, b"-", "`-` after the month")?;
    let day = num(8, 2)?;
    sep(10, b"Tt", "`T` between date and time")?;
    let (hour, min, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    sep(13, b":", "`:` after the hour")?;
    sep(16, b":", "`:` after the minutes")?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(err("no such date"));
    }
    // 60 is a leap second; unix time folds it into the next.
    if hour > 23 || min > 59 || sec > 60 {
        return Err(err("no such time of day"));
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(err("digits after the `.`"));
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&c @ (b'+' | b'-')) if i + 6 == b.len() => {
            sep(i + 3, b":", "`:` in the offset")?;
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return Err(err("no such offset"));
            }
            let secs = i64::from(oh * 3600 + om * 60);
            if c == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return Err(err("`Z` or an offset such as +01:00 must end it")),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + min * 60 + sec) - offset;
    // An offset can carry 0000-01-01 or 9999-12-31 out of four-digit years,
    // which the format cannot write back.
    if !(MIN..=MAX).contains(&secs) {
        return Err(err("outside the years 0000 to 9999 in UTC"));
    }
    Ok(secs)
}

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
const MIN: i64 = -62_167_219_200;
const MAX: i64 = 253_402_300_799;

/// `secs` as `YYYY-MM-DDTHH:MM:SSZ` (UTC), clamped to the years 0000 to
/// 9999 (what [`parse_rfc3339`] gives is always inside).
pub fn format_rfc3339(secs: i64) -> String {
    let secs = secs.clamp(MIN, MAX);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("2000-02-29T12:34:56Z", 951_827_696),
            ("2038-01-19T03:14:08Z", 1 << 31),
            ("1969-12-31T23:59:59Z", -1),
            ("2026-12-02T01:45:00Z", 1_796_175_900),
            ("0000-01-01T00:00:00Z", MIN),
            ("9999-12-31T23:59:59Z", MAX),
        ];
        for (text, secs) in cases {
            assert_eq!(parse_rfc3339(text), Ok(secs), "{text}");
            assert_eq!(format_rfc3339(secs), text);
        }
    }

    #[test]
    fn offsets_and_fractions() {
        let z = parse_rfc3339("2027-01-31T00:00:00Z").unwrap();
        assert_eq!(parse_rfc3339("2027-01-31T01:30:00+01:30"), Ok(z));
        assert_eq!(parse_rfc3339("2027-01-30T19:00:00-05:00"), Ok(z));
        assert_eq!(parse_rfc3339("2027-01-31t00:00:00.999999z"), Ok(z));
    }

    #[test]
    fn roundtrip_over_many_days() {
        for days in (-719_000i64..2_900_000).step_by(997) {
            let secs = days * 86_400 + 3_723;
            assert_eq!(parse_rfc3339(&format_rfc3339(secs)), Ok(secs));
        }
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "2027-01-31",
            "2027-01-31 00:00:00Z",
            "2027-13-01T00:00:00Z",
            "2027-02-29T00:00:00Z",
            "2027-01-31T24:00:00Z",
            "2027-01-31T00:00:00",
            "2027-01-31T00:00:00.Z",
            "2027-01-31T00:00:00+0100",
            "2027-01-31T00:00:00Zjunk",
            "+027-01-31T00:00:00Z",
            "9999-12-31T23:59:59-00:01",
            "0000-01-01T00:00:00+00:01",
        ] {
            let e = parse_rfc3339(bad).unwrap_err();
            assert!(e.to_string().contains("is not an RFC 3339 time"), "{bad}");
        }
    }
}
