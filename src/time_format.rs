//! Times in the JSON documents (status API, reports) as RFC 3339 UTC
//! strings (`2026-12-04T09:30:00.123Z`), held as Unix seconds inside.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2026-12-04T09:30:00.123Z`
pub fn format(unix: f64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis((unix.max(0.0) * 1000.0).round() as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Unix seconds from an RFC 3339 time (a bare number is taken as seconds).
pub fn parse(s: &str) -> Option<f64> {
    if let Ok(n) = s.parse::<f64>() {
        return Some(n);
    }
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_secs_f64())
}

/// Now, as Unix seconds.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `#[serde(with = "crate::time_format::rfc3339")]` on an `f64` of Unix seconds.
pub mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let s = String::deserialize(d)?;
        super::parse(&s).ok_or_else(|| D::Error::custom(format!("not an RFC 3339 time: {s}")))
    }
}

/// The same for an `Option<f64>` (null when None).
pub mod rfc3339_opt {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::format(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => super::parse(&s)
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("not an RFC 3339 time: {s}"))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_to_the_millisecond() {
        let t = 1_700_000_000.123;
        assert_eq!(super::format(t), "2023-11-14T22:13:20.123Z");
        let back = super::parse(&super::format(t)).unwrap();
        assert!((back - t).abs() < 0.001);
    }
}
