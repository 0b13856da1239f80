//! FILE_CHECK: a real server follows a tracked file's value (keepalived's
//! rules, as pure functions; the watching is [`crate::track_file`]'s).
//!
//! With weight 0, a non-zero value takes the real server down and 0 brings
//! it up (`reverse` swaps the two). Otherwise the value times the weight
//! (negated with `reverse`) moves the real server's IPVS weight from its
//! configured one, kept within 0..=65535; a product below -65535 takes it
//! down.

use super::probe::ProbeResult;
use crate::config::model::FileCheck;

/// The highest IPVS weight.
pub const IPVS_WEIGHT_MAX: i64 = 65535;

/// The verdict on a value of the tracked file.
pub fn judge(value: i64, check: &FileCheck) -> ProbeResult {
    if check.weight == 0 {
        return if (value != 0) != check.reverse {
            ProbeResult::down(format!("{} holds {value}", check.path.display()))
        } else {
            ProbeResult::up(format!("{} holds {value}", check.path.display()))
        };
    }
    let sign: i128 = if check.reverse { -1 } else { 1 };
    let product = i128::from(value) * i128::from(check.weight) * sign;
    if product < -i128::from(IPVS_WEIGHT_MAX) {
        return ProbeResult::down(format!(
            "{} holds {value}: weight {product} is below -{IPVS_WEIGHT_MAX}",
            check.path.display()
        ));
    }
    let weight = (i128::from(check.base_weight) + product).clamp(0, i128::from(IPVS_WEIGHT_MAX));
    ProbeResult {
        ok: true,
        reason: format!("{} holds {value}: weight {weight}", check.path.display()).into(),
        weight: Some(weight as u32),
        local: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(weight: i32, reverse: bool, base: u32) -> FileCheck {
        FileCheck {
            name: "f".into(),
            path: "/run/f".into(),
            weight,
            reverse,
            base_weight: base,
        }
    }

    #[test]
    fn weight_zero_is_up_or_down() {
        let c = check(0, false, 5);
        assert!(judge(0, &c).ok);
        assert_eq!(judge(0, &c).weight, None, "the configured weight stays");
        assert!(!judge(1, &c).ok);
        assert!(!judge(-1, &c).ok);
        let r = check(0, true, 5);
        assert!(!judge(0, &r).ok);
        assert!(judge(2, &r).ok);
    }

    #[test]
    fn weights_move_from_the_configured_one() {
        let c = check(2, false, 10);
        assert_eq!(judge(0, &c).weight, Some(10));
        assert_eq!(judge(5, &c).weight, Some(20));
        assert_eq!(judge(-3, &c).weight, Some(4));
        assert_eq!(judge(-50, &c).weight, Some(0), "clamped at 0, still up");
        assert!(judge(-50, &c).ok);
        assert_eq!(judge(40000, &c).weight, Some(65535));
        assert!(!judge(-40000, &c).ok, "below -65535: down");
        let r = check(2, true, 10);
        assert_eq!(judge(3, &r).weight, Some(4));
        assert!(!judge(i64::MAX, &r).ok);
    }
}
