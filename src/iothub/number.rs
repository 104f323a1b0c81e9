//! Whether a JSON number survives the merge as the same value.
//!
//! The crate holds twins as `serde_json` values without its `arbitrary_precision` feature, so a
//! number is an `i64`, a `u64` or a double, and is written back from that. The reader refuses a
//! twin number that would come back as another decimal value: neither hub changed it, and an
//! import plan would rewrite the device's twin with the rounded value.

use std::fmt::{self, Write};

/// How serde_json holds a JSON number, and so how it is written back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Held {
    /// Written back as the same decimal value, perhaps spelled otherwise (`1.50` as `1.5`,
    /// `1e2` as `100.0`).
    Exactly,
    /// Held as a double that is written back as another decimal value, this one.
    Rewritten(String),
    /// Beyond a double's range: serde_json refuses to hold it.
    OutOfRange,
}

/// How serde_json, without its `arbitrary_precision` feature, holds the JSON number `number`
/// (text serde_json has accepted).
///
/// An integer that fits `i64` or `u64` is held as one. Anything else becomes a double, which is
/// exact when it is written back as the same decimal value: its text as serde_json writes it
/// (the shortest that reads back as the same double) is compared with `number`, both reduced
/// to significant digits and a power of ten. So `0.1` is exact, although the double is not
/// quite a tenth (it is written and read back as `0.1`), and an integer beyond 64 bits is not,
/// even when the double holds it exactly: 2^70 comes back as `1.1805916207174113e+21`, another
/// decimal value to any reader that does not round it to a double. The crate builds serde_json
/// with `float_roundtrip`, so it reads the closest double; without it, it may read a
/// neighbouring one (`1.1805916207174113e21` as `1.1805916207174112e21`), and the check that
/// the written text reads back as the same double is what would catch that.
pub(crate) fn held(number: &str) -> Held {
    // Most twin numbers are small integers; up to 18 digits always fit an i64.
    let digits = number.strip_prefix('-').unwrap_or(number);
    if digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Held::Exactly;
    }
    let Ok(parsed) = serde_json::from_str::<serde_json::Number>(number) else {
        return Held::OutOfRange;
    };
    if !parsed.is_f64() {
        return Held::Exactly;
    }
    // Written as the writer writes it (a `Number` displays as its JSON text), on the stack: a
    // double's text is at most 24 bytes, and floats are common in reported properties.
    let mut written = NumberText::default();
    if write!(written, "{parsed}").is_err() {
        return Held::Rewritten(parsed.to_string());
    }
    if Decimal::of(number) != Decimal::of(written.as_str()) {
        return Held::Rewritten(written.as_str().to_owned());
    }
    // The text written must read back as the same double, or the next run would read (and
    // write) another value. With `float_roundtrip` it always does; the check keeps this
    // function right if the feature is ever dropped (serde_json then rounds a long digit string
    // through an inexact product, so the double depends on the spelling).
    match serde_json::from_str::<serde_json::Number>(written.as_str()) {
        Ok(again) if again == parsed => Held::Exactly,
        Ok(again) => Held::Rewritten(again.to_string()),
        Err(_) => Held::OutOfRange,
    }
}

/// A number's JSON text, in a buffer long enough for any double's.
#[derive(Default)]
struct NumberText {
    bytes: [u8; 32],
    len: usize,
}

impl NumberText {
    fn as_str(&self) -> &str {
        let written = self.bytes.get(..self.len).unwrap_or_default();
        std::str::from_utf8(written).unwrap_or_default()
    }
}

impl Write for NumberText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The decimal value of a JSON number's text, as `±0.DIGITS × 10^point` with no leading or
/// trailing zero in DIGITS: `1.50`, `15e-1` and `0.0150E2` are all `+0.15 × 10^1`. Zero has no
/// digits, and is equal to itself whatever its sign or spelling (`-0`, `0.0`, `0e5`).
struct Decimal<'a> {
    negative: bool,
    whole: &'a [u8],
    fraction: &'a [u8],
    /// Zeros before the first significant digit, in `whole` then `fraction`.
    leading: usize,
    /// How many significant digits there are.
    significant: usize,
    point: i64,
}

impl<'a> Decimal<'a> {
    /// Reads text serde_json has accepted as a number; anything else gives some value, never
    /// a panic.
    fn of(number: &'a str) -> Self {
        let (negative, unsigned) = match number.strip_prefix('-') {
            Some(unsigned) => (true, unsigned),
            None => (false, number),
        };
        let (mantissa, exponent) = unsigned.split_once(['e', 'E']).unwrap_or((unsigned, ""));
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let (whole, fraction) = (whole.as_bytes(), fraction.as_bytes());
        let digits = whole.iter().chain(fraction);
        let leading = digits.clone().take_while(|&&d| d == b'0').count();
        let trailing = digits.rev().take_while(|&&d| d == b'0').count();
        let significant = (whole.len() + fraction.len()).saturating_sub(leading + trailing);
        // Exponents beyond i64 saturate: no written double comes near them anyway.
        let point = (whole.len() as i64)
            .saturating_sub(leading as i64)
            .saturating_add(exponent_of(exponent));
        Self {
            negative,
            whole,
            fraction,
            leading,
            significant,
            point,
        }
    }

    fn digits(&self) -> impl Iterator<Item = &'a u8> + use<'a> {
        let digits = self.whole.iter().chain(self.fraction);
        digits.skip(self.leading).take(self.significant)
    }
}

impl PartialEq for Decimal<'_> {
    fn eq(&self, other: &Self) -> bool {
        if self.significant == 0 || other.significant == 0 {
            return self.significant == other.significant;
        }
        self.negative == other.negative
            && self.point == other.point
            && self.significant == other.significant
            && self.digits().eq(other.digits())
    }
}

/// The exponent after a number's `e`, signed, saturating at the bounds of `i64`.
fn exponent_of(text: &str) -> i64 {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let digit = |d: u8| i64::from(d.wrapping_sub(b'0'));
    let magnitude = digits
        .bytes()
        .fold(0_i64, |n, d| n.saturating_mul(10).saturating_add(digit(d)));
    if negative { -magnitude } else { magnitude }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_held_exactly_only_when_written_back_as_the_same_decimal() {
        for exact in [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "0e7",
            "1.50",
            "1e2",
            "1E+2",
            "100.0",
            "0.0150E2",
            "0.1",
            "1E-7",
            "123456789012345678",
            "9007199254740993",
            "-9223372036854775808",
            "18446744073709551615",
            "1.7976931348623157e308",
            "2.2250738585072014e-308",
        ] {
            assert_eq!(held(exact), Held::Exactly, "{exact}");
        }
        let rewritten = |text: &str| Held::Rewritten(text.to_owned());
        // 2^70, held exactly by the double, is written as another decimal.
        assert_eq!(
            held("1180591620717411303424"),
            rewritten("1.1805916207174113e+21")
        );
        // Its text, and that text written out, read back as 2^70 (serde_json is built with
        // `float_roundtrip`; without it, they read as the double below).
        assert_eq!(held("1.1805916207174113e21"), Held::Exactly);
        assert_eq!(held("1180591620717411300000"), Held::Exactly);
        // Seventeen digits, the closest double's shortest text.
        assert_eq!(held("0.30000000000000004"), Held::Exactly);
        assert_eq!(held("0.10000000000000000001"), rewritten("0.1"));
        assert_eq!(held("-1e-400"), rewritten("-0.0"));
        assert_eq!(held("1e309"), Held::OutOfRange);
    }
}
