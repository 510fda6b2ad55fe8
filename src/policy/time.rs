//! Time windows: on which days and at which hours a user may log in.
//!
//! A window is read in local time of its [`Zone`]: either a fixed offset from UTC written in
//! the policy (`utc_offset`, no daylight saving time), or an IANA time zone (`tz`, e.g.
//! `"Europe/Berlin"`) whose rules come from the system's tzdata (/usr/share/zoneinfo, through
//! the `jiff` crate) and are read once, when the policy is loaded: the check at login only
//! asks the loaded rules for the offset in force at that instant (a binary search over the
//! zone's transitions), so daylight saving time is right and nothing is read from disk.
//! The rest is plain integer arithmetic on Unix seconds (1970-01-01 was a Thursday).
//!
//! Hours may wrap past midnight (`"22:00-02:00"`): the part after midnight belongs to the day
//! the window started on, so a Saturday window of 22:00-02:00 covers Sunday 01:00 but not
//! Saturday 01:00.

use std::fmt;

use crate::limits::MAX_UTC_OFFSET_MINUTES;

/// Minutes in a day; `end_minute` may be this (24:00).
pub const MINUTES_PER_DAY: u16 = 24 * 60;

/// Day names as written in the policy, index 0 = Monday.
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_FULL_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// The local time a window is read in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Zone {
    /// Local time = UTC + this many minutes, all year.
    Fixed(i16),
    /// An IANA time zone, its rules loaded from the system's tzdata.
    Named {
        /// The name as written in the policy (`"Europe/Berlin"`).
        name: String,
        rules: jiff::tz::TimeZone,
    },
}

impl Zone {
    /// Seconds east of UTC in force at the instant `unix_seconds`.
    pub fn offset_seconds(&self, unix_seconds: i64) -> i64 {
        match self {
            Zone::Fixed(minutes) => i64::from(*minutes) * 60,
            Zone::Named { rules, .. } => {
                // jiff's instants span the years -9999 to 9999; outside them the offset
                // of the nearest end stands in (no zone has rules there anyway).
                let instant =
                    jiff::Timestamp::from_second(unix_seconds).unwrap_or(if unix_seconds < 0 {
                        jiff::Timestamp::MIN
                    } else {
                        jiff::Timestamp::MAX
                    });
                i64::from(rules.to_offset(instant).seconds())
            }
        }
    }

    /// Loads the rules of the IANA time zone `name` from the system's tzdata.
    pub(crate) fn named(name: &str) -> Result<Zone, String> {
        match jiff::tz::db().get(name) {
            Ok(rules) => Ok(Zone::Named {
                name: name.to_owned(),
                rules,
            }),
            Err(_) if jiff::tz::db().is_definitively_empty() => Err(format!(
                "{name:?}: the system has no time-zone database (/usr/share/zoneinfo); \
                 install tzdata, or use utc_offset"
            )),
            Err(_) => Err(format!(
                "{name:?} is not a time zone of the system's time-zone database \
                 (/usr/share/zoneinfo); use an IANA name such as \"Europe/Berlin\", \
                 \"America/New_York\" or \"UTC\""
            )),
        }
    }
}

impl fmt::Display for Zone {
    /// `+01:00` or `Europe/Berlin`, as written in the policy.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Fixed(minutes) => f.write_str(&offset_text(*minutes)),
            Zone::Named { name, .. } => f.write_str(name),
        }
    }
}

/// One window: the days it starts on and the minutes of the day, in local time of its zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeWindow {
    /// The days the window starts on; index 0 = Monday.
    pub days: [bool; 7],
    /// First minute of the window, 0 to 1439.
    pub start_minute: u16,
    /// First minute after the window, 0 to 1440 (exclusive end). Below `start_minute`, the
    /// window wraps past midnight into the next day. Equal to `start_minute`: empty.
    pub end_minute: u16,
    /// The local time the days and minutes are read in.
    pub zone: Zone,
}

impl TimeWindow {
    /// Whether the instant `unix_seconds` (seconds since 1970-01-01T00:00:00Z) falls in the
    /// window.
    pub fn contains(&self, unix_seconds: i64) -> bool {
        let local = unix_seconds.saturating_add(self.zone.offset_seconds(unix_seconds));
        let day = local.div_euclid(86_400);
        let minute = local.rem_euclid(86_400) / 60;
        // 1970-01-01 (day 0) was a Thursday, index 3.
        let weekday = usize::try_from((day + 3).rem_euclid(7)).unwrap_or(0);
        let yesterday = (weekday + 6) % 7;
        let starts_today = self.days.get(weekday).copied().unwrap_or(false);
        let started_yesterday = self.days.get(yesterday).copied().unwrap_or(false);
        let (start, end) = (i64::from(self.start_minute), i64::from(self.end_minute));
        if start < end {
            starts_today && (start..end).contains(&minute)
        } else if start > end {
            (starts_today && minute >= start) || (started_yesterday && minute < end)
        } else {
            false
        }
    }
}

/// Whether any of `windows` contains the instant; an empty list places no restriction.
pub fn windows_allow(windows: &[TimeWindow], unix_seconds: i64) -> bool {
    windows.is_empty() || windows.iter().any(|w| w.contains(unix_seconds))
}

impl fmt::Display for TimeWindow {
    /// `mon-fri 08:00-18:00 +01:00` or `mon-fri 08:00-18:00 Europe/Berlin`, as it could be
    /// written in the policy.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}-{} {}",
            days_text(&self.days),
            clock(self.start_minute),
            clock(self.end_minute),
            self.zone
        )
    }
}

/// `all`, or runs of days such as `mon-fri,sun`.
fn days_text(days: &[bool; 7]) -> String {
    if days.iter().all(|&d| d) {
        return "all".to_owned();
    }
    let mut runs: Vec<String> = Vec::new();
    // (first, last) of the run being built.
    let mut run: Option<(usize, usize)> = None;
    for (i, &on) in days.iter().chain([&false]).enumerate() {
        match (on, run) {
            (true, None) => run = Some((i, i)),
            (true, Some((first, _))) => run = Some((first, i)),
            (false, Some((first, last))) => {
                let name = |d: usize| DAY_NAMES.get(d).copied().unwrap_or("?");
                runs.push(if first == last {
                    name(first).to_owned()
                } else {
                    format!("{}-{}", name(first), name(last))
                });
                run = None;
            }
            (false, None) => {}
        }
    }
    if runs.is_empty() {
        "none".to_owned()
    } else {
        runs.join(",")
    }
}

fn clock(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

fn offset_text(minutes: i16) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let abs = minutes.unsigned_abs();
    format!("{sign}{:02}:{:02}", abs / 60, abs % 60)
}

/// A day name: `mon` or `monday`, any case.
fn day(text: &str) -> Option<usize> {
    let lower = text.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|&name| name == lower)
        .or_else(|| DAY_FULL_NAMES.iter().position(|&name| name == lower))
}

const DAYS_HELP: &str = "use a day (\"sat\"), a range (\"mon-fri\", \"fri-mon\"), \"all\" \
                         or \"daily\"; days are mon, tue, wed, thu, fri, sat, sun";

/// One element of `days`: a day, a range of days (wrapping allowed), `all` or `daily`.
pub(crate) fn parse_days(text: &str, days: &mut [bool; 7]) -> Result<(), String> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("all") || trimmed.eq_ignore_ascii_case("daily") {
        *days = [true; 7];
        return Ok(());
    }
    let range = match trimmed.split_once('-') {
        Some((first, last)) => day(first).zip(day(last)),
        None => day(trimmed).map(|d| (d, d)),
    };
    let Some((first, last)) = range else {
        return Err(format!(
            "{text:?} is not a day or range of days; {DAYS_HELP}"
        ));
    };
    let mut d = first;
    loop {
        if let Some(slot) = days.get_mut(d) {
            *slot = true;
        }
        if d == last {
            break;
        }
        d = (d + 1) % 7;
    }
    Ok(())
}

/// `HH:MM-HH:MM`: the first and the exclusive last minute.
pub(crate) fn parse_hours(text: &str) -> Result<(u16, u16), String> {
    let help = || {
        format!(
            "{text:?} is not a span of hours; write \"HH:MM-HH:MM\" in 24-hour time, e.g. \
             \"08:00-18:00\" (the end is exclusive; \"22:00-02:00\" runs past midnight; \
             \"00:00-24:00\" is the whole day)"
        )
    };
    let (start, end) = text.split_once('-').ok_or_else(help)?;
    let start = clock_minute(start.trim()).ok_or_else(help)?;
    let end = clock_minute(end.trim()).ok_or_else(help)?;
    if start == MINUTES_PER_DAY {
        return Err(format!(
            "{text:?}: a window cannot start at 24:00; use 00:00"
        ));
    }
    if start == end {
        return Err(format!(
            "{text:?}: the window is empty (start and end are the same); \"00:00-24:00\" is \
             the whole day"
        ));
    }
    Ok((start, end))
}

/// `HH:MM` (one or two digits of hours, two of minutes), 00:00 to 24:00.
fn clock_minute(text: &str) -> Option<u16> {
    let (hours, minutes) = text.split_once(':')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(hours) || hours.len() > 2 || !digits(minutes) || minutes.len() != 2 {
        return None;
    }
    let hours: u16 = hours.parse().ok()?;
    let minutes: u16 = minutes.parse().ok()?;
    if minutes >= 60 || hours > 24 || (hours == 24 && minutes != 0) {
        return None;
    }
    Some(hours * 60 + minutes)
}

/// `+HH:MM`, `-HH:MM` or `Z`: minutes east of UTC.
pub(crate) fn parse_offset(text: &str) -> Result<i16, String> {
    let help = || {
        format!(
            "{text:?} is not an offset from UTC; write \"+HH:MM\" or \"-HH:MM\" (e.g. \
             \"+01:00\"), or \"Z\" for UTC; the offset is fixed, with no daylight saving \
             time (for that, give an IANA time zone in \"tz\" instead)"
        )
    };
    if text == "Z" || text == "z" {
        return Ok(0);
    }
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, text.get(1..).unwrap_or("")),
        Some(b'-') => (-1, text.get(1..).unwrap_or("")),
        _ => return Err(help()),
    };
    let (hours, minutes) = rest.split_once(':').ok_or_else(help)?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(hours) || !two_digits(minutes) {
        return Err(help());
    }
    let hours: i16 = hours.parse().map_err(|_| help())?;
    let minutes: i16 = minutes.parse().map_err(|_| help())?;
    if minutes >= 60 {
        return Err(help());
    }
    let total = hours * 60 + minutes;
    if total > MAX_UTC_OFFSET_MINUTES {
        return Err(format!(
            "{text:?}: offsets from UTC go from -14:00 to +14:00"
        ));
    }
    Ok(sign * total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MON: usize = 0;
    const THU: usize = 3;
    const SAT: usize = 5;
    const SUN: usize = 6;

    /// Unix seconds of 1970-01-01 + `day` days, at `hh:mm` UTC. Day 0 is a Thursday, so
    /// day 4 is Monday 1970-01-05.
    fn at(day: i64, hh: i64, mm: i64) -> i64 {
        day * 86_400 + hh * 3600 + mm * 60
    }

    fn window(days: &[usize], hours: &str, offset: &str) -> TimeWindow {
        let mut set = [false; 7];
        for &d in days {
            set[d] = true;
        }
        let (start_minute, end_minute) = parse_hours(hours).expect("hours");
        TimeWindow {
            days: set,
            start_minute,
            end_minute,
            zone: Zone::Fixed(parse_offset(offset).expect("offset")),
        }
    }

    #[test]
    fn the_epoch_was_a_thursday() {
        let thursday = window(&[THU], "00:00-24:00", "Z");
        assert!(thursday.contains(0));
        assert!(thursday.contains(at(0, 23, 59)));
        assert!(!thursday.contains(at(1, 0, 0)));
        assert!(!thursday.contains(-1), "1969-12-31 was a Wednesday");
        assert!(thursday.contains(at(7, 12, 0)));
        assert!(thursday.contains(at(-7, 12, 0)));
        // 2024-01-01T00:00:00Z was a Monday.
        let monday = window(&[MON], "00:00-24:00", "Z");
        assert!(monday.contains(1_704_067_200));
        assert!(monday.contains(1_704_067_200 + 86_399));
        assert!(!monday.contains(1_704_067_200 - 1));
        assert!(!monday.contains(1_704_067_200 + 86_400));
    }

    #[test]
    fn day_boundaries_and_exclusive_end() {
        // Monday 1970-01-05 is day 4.
        let w = window(&[MON, 1, 2, 3, 4], "08:00-18:00", "Z");
        assert!(!w.contains(at(4, 7, 59) + 59));
        assert!(w.contains(at(4, 8, 0)));
        assert!(w.contains(at(4, 17, 59) + 59));
        assert!(!w.contains(at(4, 18, 0)), "the end is exclusive");
        assert!(w.contains(at(8, 12, 0)), "Friday");
        assert!(!w.contains(at(9, 12, 0)), "Saturday");
        assert!(!w.contains(at(10, 12, 0)), "Sunday");
        let until_midnight = window(&[SAT], "22:00-24:00", "Z");
        // Saturday 1970-01-03 is day 2.
        assert!(until_midnight.contains(at(2, 23, 59)));
        assert!(!until_midnight.contains(at(3, 0, 0)));
        assert!(!until_midnight.contains(at(2, 21, 59)));
    }

    #[test]
    fn wrapping_past_midnight_belongs_to_the_starting_day() {
        // Saturday 1970-01-03 is day 2, Sunday day 3.
        let w = window(&[SAT], "22:00-02:00", "Z");
        assert!(w.contains(at(2, 22, 0)));
        assert!(w.contains(at(2, 23, 30)));
        assert!(w.contains(at(3, 1, 0)), "Sunday 01:00");
        assert!(w.contains(at(3, 1, 59)));
        assert!(!w.contains(at(3, 2, 0)));
        assert!(!w.contains(at(2, 1, 0)), "Saturday 01:00 belongs to Friday");
        assert!(!w.contains(at(3, 22, 30)), "Sunday night");
        assert!(!w.contains(at(2, 21, 59)));
        // Sunday night wraps into Monday (across the end of the week's indexes).
        let w = window(&[SUN], "23:00-01:00", "Z");
        assert!(w.contains(at(4, 0, 30)), "Monday 00:30");
        assert!(w.contains(at(3, 23, 30)), "Sunday 23:30");
        assert!(!w.contains(at(5, 0, 30)), "Tuesday 00:30");
        // "22:00-00:00" ends at midnight.
        let w = window(&[SAT], "22:00-00:00", "Z");
        assert!(w.contains(at(2, 23, 0)));
        assert!(!w.contains(at(3, 0, 0)));
    }

    #[test]
    fn offsets_move_the_day() {
        // Monday 08:00 at +01:00 is Monday 07:00 UTC.
        let w = window(&[MON], "08:00-18:00", "+01:00");
        assert!(!w.contains(at(4, 6, 59)));
        assert!(w.contains(at(4, 7, 0)));
        assert!(w.contains(at(4, 16, 59)));
        assert!(!w.contains(at(4, 17, 0)));
        // Monday 00:00-06:00 at +05:30 starts Sunday 18:30 UTC.
        let w = window(&[MON], "00:00-06:00", "+05:30");
        assert!(w.contains(at(3, 18, 30)), "Sunday 18:30 UTC");
        assert!(!w.contains(at(3, 18, 29)));
        assert!(!w.contains(at(4, 0, 30)), "Monday 00:30 UTC is 06:00 local");
        // Saturday 22:00-02:00 at -05:30: Sunday 03:30 to 07:30 UTC.
        let w = window(&[SAT], "22:00-02:00", "-05:30");
        assert!(w.contains(at(3, 3, 30)));
        assert!(w.contains(at(3, 7, 29)));
        assert!(!w.contains(at(3, 7, 30)));
        assert!(!w.contains(at(3, 3, 29)));
        // Friday 23:00 at -02:00 is Saturday 01:00 UTC.
        let w = window(&[4], "23:00-24:00", "-02:00");
        assert!(w.contains(at(2, 1, 0)));
        assert!(!w.contains(at(1, 23, 0)));
        // The extremes.
        let w = window(&[THU], "00:00-01:00", "+14:00");
        assert!(w.contains(at(-1, 10, 0)), "Wednesday 10:00 UTC");
        let w = window(&[THU], "00:00-01:00", "-14:00");
        assert!(w.contains(at(0, 14, 0)));
    }

    #[test]
    fn whole_days_and_lists() {
        let always = window(&[0, 1, 2, 3, 4, 5, 6], "00:00-24:00", "Z");
        for t in [i64::MIN, -1, 0, 1, at(5, 12, 0), i64::MAX] {
            assert!(always.contains(t), "{t}");
        }
        assert!(windows_allow(&[], 0), "no windows: always");
        let weekday = window(&[0, 1, 2, 3, 4], "08:00-18:00", "Z");
        let weekend = window(&[SAT, SUN], "10:00-12:00", "Z");
        let both = [weekday.clone(), weekend];
        assert!(windows_allow(&both, at(4, 9, 0)));
        assert!(windows_allow(&both, at(2, 11, 0)));
        assert!(!windows_allow(&both, at(2, 9, 0)));
        assert!(!windows_allow(&both, at(4, 19, 0)));
        // An empty window (not produced by the loader) contains nothing.
        let mut empty = weekday.clone();
        empty.end_minute = empty.start_minute;
        assert!(!empty.contains(at(4, 8, 0)));
        // No day: never.
        let mut none = weekday;
        none.days = [false; 7];
        assert!(!none.contains(at(4, 9, 0)));
    }

    /// Unix seconds of `day` 00:00 UTC plus `hh:mm` UTC.
    fn utc(day: i64, hh: i64, mm: i64) -> i64 {
        day + hh * 3600 + mm * 60
    }

    fn berlin(days: &[usize], hours: &str) -> TimeWindow {
        let mut w = window(days, hours, "Z");
        w.zone = Zone::named("Europe/Berlin").expect("tzdata has Europe/Berlin");
        w
    }

    // Midnight UTC of the days around Europe/Berlin's changes of 2026: clocks go from 02:00
    // CET (+01:00) to 03:00 CEST (+02:00) at 01:00 UTC on Sunday 29 March, and from 03:00
    // CEST back to 02:00 CET at 01:00 UTC on Sunday 25 October.
    const SAT_2026_03_28: i64 = 1_774_656_000;
    const SUN_2026_03_29: i64 = 1_774_742_400;
    const MON_2026_03_30: i64 = 1_774_828_800;
    const SAT_2026_10_24: i64 = 1_792_800_000;
    const SUN_2026_10_25: i64 = 1_792_886_400;
    const MON_2026_10_26: i64 = 1_792_972_800;

    #[test]
    fn a_named_zone_follows_daylight_saving_time() {
        let office = berlin(&[0, 1, 2, 3, 4, 5, 6], "08:00-18:00");
        // Saturday before the spring change: 08:00 CET is 07:00 UTC.
        assert!(!office.contains(utc(SAT_2026_03_28, 6, 59)));
        assert!(office.contains(utc(SAT_2026_03_28, 7, 0)));
        assert!(office.contains(utc(SAT_2026_03_28, 16, 59)));
        assert!(!office.contains(utc(SAT_2026_03_28, 17, 0)));
        // The Sunday of the change and the Monday after: 08:00 CEST is 06:00 UTC.
        for day in [SUN_2026_03_29, MON_2026_03_30] {
            assert!(!office.contains(utc(day, 5, 59)));
            assert!(office.contains(utc(day, 6, 0)));
            assert!(office.contains(utc(day, 15, 59)));
            assert!(!office.contains(utc(day, 16, 0)));
        }
        // A fixed +01:00 does not move: on Monday it opens an hour late by the wall clock.
        let fixed = window(&[0, 1, 2, 3, 4, 5, 6], "08:00-18:00", "+01:00");
        assert!(!fixed.contains(utc(MON_2026_03_30, 6, 0)));
        assert!(fixed.contains(utc(MON_2026_03_30, 7, 0)));
        // Autumn: 08:00 CEST is 06:00 UTC on Saturday, 08:00 CET is 07:00 UTC from Sunday.
        assert!(office.contains(utc(SAT_2026_10_24, 6, 0)));
        assert!(!office.contains(utc(SAT_2026_10_24, 16, 0)));
        for day in [SUN_2026_10_25, MON_2026_10_26] {
            assert!(!office.contains(utc(day, 6, 59)));
            assert!(office.contains(utc(day, 7, 0)));
            assert!(office.contains(utc(day, 16, 59)));
            assert!(!office.contains(utc(day, 17, 0)));
        }
    }

    #[test]
    fn the_hours_a_change_skips_or_repeats() {
        // 02:00-03:00 does not exist on 29 March: the window is empty that night.
        let night = berlin(&[SUN], "02:00-03:00");
        for minute in (0..180).step_by(1) {
            let t = SUN_2026_03_29 - 3600 + minute * 60;
            assert!(!night.contains(t), "{t}");
        }
        // 01:00-03:00 ends at 01:00 UTC (03:00 CEST), after one hour of wall clock time.
        let early = berlin(&[SUN], "01:00-03:00");
        assert!(!early.contains(utc(SUN_2026_03_29, 0, 0) - 1));
        assert!(early.contains(utc(SUN_2026_03_29, 0, 0)));
        assert!(early.contains(utc(SUN_2026_03_29, 0, 59)));
        assert!(!early.contains(utc(SUN_2026_03_29, 1, 0)));
        // 02:00-03:00 happens twice on 25 October: 00:00 to 02:00 UTC.
        assert!(!night.contains(utc(SUN_2026_10_25, 0, 0) - 1));
        assert!(night.contains(utc(SUN_2026_10_25, 0, 0)));
        assert!(night.contains(utc(SUN_2026_10_25, 0, 59)));
        assert!(
            night.contains(utc(SUN_2026_10_25, 1, 0)),
            "02:00 CET, the second time"
        );
        assert!(night.contains(utc(SUN_2026_10_25, 1, 59)));
        assert!(!night.contains(utc(SUN_2026_10_25, 2, 0)));
        // The day of the week is the local one: Saturday 23:30 UTC is Sunday 01:30 CEST.
        let sunday = berlin(&[SUN], "00:00-24:00");
        assert!(sunday.contains(utc(SAT_2026_10_24, 23, 30)));
        assert!(!sunday.contains(utc(SAT_2026_10_24, 21, 59)));
        assert!(sunday.contains(utc(SAT_2026_10_24, 22, 0)));
        assert!(sunday.contains(utc(SUN_2026_10_25, 22, 59)));
        assert!(!sunday.contains(utc(SUN_2026_10_25, 23, 0)));
    }

    #[test]
    fn named_zones_load_from_the_system_and_display_by_name() {
        let w = berlin(&[0, 1, 2, 3, 4], "08:00-18:00");
        assert_eq!(w.to_string(), "mon-fri 08:00-18:00 Europe/Berlin");
        assert_eq!(Zone::named("UTC").map(|z| z.offset_seconds(0)), Ok(0));
        let tokyo = Zone::named("Asia/Tokyo").expect("Asia/Tokyo");
        assert_eq!(tokyo.offset_seconds(SUN_2026_03_29), 9 * 3600);
        // Out of jiff's range of years: the nearest end's offset (local mean time before
        // the first rule), no panic.
        assert_eq!(tokyo.offset_seconds(i64::MAX), 9 * 3600);
        assert_eq!(tokyo.offset_seconds(i64::MIN), 9 * 3600 + 18 * 60 + 59);
        for t in [i64::MIN, i64::MAX] {
            let _ = w.contains(t);
        }
        for bad in [
            "Europe/Berlinn",
            "",
            "../etc/passwd",
            "/etc/localtime",
            "Mars/Olympus",
        ] {
            let err = Zone::named(bad).expect_err(bad);
            assert!(err.contains("is not a time zone"), "{bad}: {err}");
        }
    }

    #[test]
    fn parses_days() {
        let days = |text: &str| {
            let mut set = [false; 7];
            parse_days(text, &mut set).map(|()| set)
        };
        let set = |list: &[usize]| {
            let mut set = [false; 7];
            for &d in list {
                set[d] = true;
            }
            set
        };
        assert_eq!(days("mon-fri"), Ok(set(&[0, 1, 2, 3, 4])));
        assert_eq!(days("Fri-Mon"), Ok(set(&[4, 5, 6, 0])));
        assert_eq!(days("sat"), Ok(set(&[5])));
        assert_eq!(days("SUNDAY"), Ok(set(&[6])));
        assert_eq!(days("tue-tue"), Ok(set(&[1])));
        assert_eq!(days("sun-sat"), Ok(set(&[0, 1, 2, 3, 4, 5, 6])));
        assert_eq!(days("all"), Ok([true; 7]));
        assert_eq!(days("Daily"), Ok([true; 7]));
        assert_eq!(days(" mon - wed "), Ok(set(&[0, 1, 2])));
        for bad in [
            "",
            "mo",
            "mon-",
            "-fri",
            "mon-fri-sat",
            "weekdays",
            "montag",
        ] {
            let err = days(bad).expect_err(bad);
            assert!(err.contains("is not a day or range of days"), "{err}");
        }
    }

    #[test]
    fn parses_hours() {
        assert_eq!(parse_hours("08:00-18:00"), Ok((480, 1080)));
        assert_eq!(parse_hours("8:00 - 18:30"), Ok((480, 1110)));
        assert_eq!(parse_hours("00:00-24:00"), Ok((0, 1440)));
        assert_eq!(parse_hours("22:00-02:00"), Ok((1320, 120)));
        assert_eq!(parse_hours("23:59-00:00"), Ok((1439, 0)));
        for bad in [
            "",
            "08:00",
            "08-18",
            "08:00-18",
            "8:0-18:00",
            "25:00-26:00",
            "08:60-09:00",
            "24:01-01:00",
            "08:00-24:30",
            "-1:00-02:00",
            "08:00:00-09:00",
            "٠٨:00-09:00",
        ] {
            let err = parse_hours(bad).expect_err(bad);
            assert!(err.contains("is not a span of hours"), "{bad}: {err}");
        }
        assert_eq!(
            parse_hours("24:00-02:00"),
            Err("\"24:00-02:00\": a window cannot start at 24:00; use 00:00".to_owned())
        );
        assert!(
            parse_hours("08:00-08:00")
                .expect_err("empty")
                .contains("the window is empty")
        );
        assert!(parse_hours("00:00-00:00").is_err());
    }

    #[test]
    fn parses_offsets() {
        assert_eq!(parse_offset("Z"), Ok(0));
        assert_eq!(parse_offset("z"), Ok(0));
        assert_eq!(parse_offset("+00:00"), Ok(0));
        assert_eq!(parse_offset("-00:00"), Ok(0));
        assert_eq!(parse_offset("+01:00"), Ok(60));
        assert_eq!(parse_offset("-05:30"), Ok(-330));
        assert_eq!(parse_offset("+14:00"), Ok(840));
        assert_eq!(parse_offset("-14:00"), Ok(-840));
        assert_eq!(
            parse_offset("+14:01"),
            Err("\"+14:01\": offsets from UTC go from -14:00 to +14:00".to_owned())
        );
        for bad in [
            "",
            "UTC",
            "CET",
            "Europe/Berlin",
            "+1:00",
            "+0100",
            "01:00",
            "+01",
            "+01:60",
            "+01:0",
            "++1:00",
            "+é:00",
            "+01:00 ",
        ] {
            let err = parse_offset(bad).expect_err(bad);
            assert!(err.contains("is not an offset from UTC"), "{bad}: {err}");
        }
    }

    #[test]
    fn displays_as_written() {
        assert_eq!(
            window(&[0, 1, 2, 3, 4], "08:00-18:00", "+01:00").to_string(),
            "mon-fri 08:00-18:00 +01:00"
        );
        assert_eq!(
            window(&[SAT], "22:00-02:00", "-05:30").to_string(),
            "sat 22:00-02:00 -05:30"
        );
        assert_eq!(
            window(&[0, 1, 2, 3, 4, 5, 6], "00:00-24:00", "Z").to_string(),
            "all 00:00-24:00 +00:00"
        );
        assert_eq!(
            window(&[0, 2, 3, 6], "00:00-24:00", "Z").to_string(),
            "mon,wed-thu,sun 00:00-24:00 +00:00"
        );
        assert_eq!(days_text(&[false; 7]), "none");
    }
}
