//! Whether a JSON number in a twin survives the merge as the same value.
//!
//! The crate holds twins as `serde_json` values without its `arbitrary_precision` feature: a
//! number is an `i64`, a `u64` or a double, and is written back from that. A number with a
//! fraction or an exponent is a double to IoT Hub as well (an inference: the service reads
//! JSON floats as doubles, and its exports show at most 17 significant digits), so whatever its
//! spelling (`0.1`, `0.10000000000000001`, `1e2`), it is written back as text that reads as the
//! same double: serde_json is built with `float_roundtrip`, so it reads the closest double and
//! writes the shortest text that reads back as it. An integer beyond 64 bits is another matter:
//! the hub keeps it whole, and it would be written back as a rounded double, a value neither hub
//! holds, which an import plan would then write to the device's twin. So is a negative zero
//! written as an integer (`-0`, the only such spelling JSON allows): the hub reads it as the
//! integer 0 (Json.NET reads `-0` as an integer), serde_json as the double -0.0, written back
//! as `-0.0`.

/// How serde_json holds a JSON number, and so how it is written back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Held {
    /// As the value the hub holds, perhaps spelled otherwise (`1.50` as `1.5`, `1e2` as
    /// `100.0`).
    Exactly,
    /// An integer held as a double (one beyond 64 bits, or `-0`) and written back as this
    /// other value.
    Rewritten(String),
    /// Beyond a double's range: serde_json refuses to hold it.
    OutOfRange,
}

/// How serde_json holds the JSON number `number` (text serde_json has accepted as one).
pub(crate) fn held(number: &str) -> Held {
    let digits = number.strip_prefix('-').unwrap_or(number);
    let integer = digits.bytes().all(|b| b.is_ascii_digit());
    // Most twin numbers are small integers; up to 18 digits always fit an i64, but serde_json
    // reads `-0` as the double -0.0.
    if integer && digits.len() <= 18 && number != "-0" {
        return Held::Exactly;
    }
    let Ok(parsed) = serde_json::from_str::<serde_json::Number>(number) else {
        return Held::OutOfRange;
    };
    if integer && parsed.is_f64() {
        return Held::Rewritten(parsed.to_string());
    }
    Held::Exactly
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_integers_beyond_64_bits_negative_zero_and_numbers_beyond_a_double_are_not_held() {
        for exact in [
            "0",
            "0.0",
            // A negative zero with a fraction or an exponent is the double -0.0 to both.
            "-0.0",
            "-0e0",
            "1.50",
            "1e2",
            "1E+2",
            "0.1",
            "1E-7",
            // Seventeen significant digits, as C's %.17g and .NET's "R" write doubles.
            "0.10000000000000001",
            "0.79999999999999993",
            "3.141592653589793238462643383279",
            "123456789012345678",
            "-9223372036854775808",
            "18446744073709551615",
            "1.7976931348623157e308",
            "1e-400",
        ] {
            assert_eq!(held(exact), Held::Exactly, "{exact}");
        }
        let rewritten = |text: &str| Held::Rewritten(text.to_owned());
        assert_eq!(
            held("18446744073709551616"),
            rewritten("1.8446744073709552e+19")
        );
        assert_eq!(
            held("-9223372036854775809"),
            rewritten("-9.223372036854776e+18")
        );
        // Even when the double holds it exactly, it is written as another decimal (2^70).
        assert_eq!(
            held("1180591620717411303424"),
            rewritten("1.1805916207174113e+21")
        );
        // An integer to IoT Hub (Json.NET reads it as 0), the double -0.0 to serde_json.
        assert_eq!(held("-0"), rewritten("-0.0"));
        assert_eq!(held("1e309"), Held::OutOfRange);
        assert_eq!(held(&format!("1{}", "0".repeat(400))), Held::OutOfRange);
    }
}
