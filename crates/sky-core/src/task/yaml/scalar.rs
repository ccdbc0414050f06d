//! YAML 1.1 scalar resolution, as PyYAML's `SafeLoader` does it, and Python's rendering of the
//! values it produces.
//!
//! Numbers are parsed with checked arithmetic: an integer that matches YAML's integer syntax but
//! does not fit in an `i64` is an error naming the value, never a wrap, a panic or a silent string.

use std::borrow::Cow;

use saphyr_parser::{ScalarStyle, Tag};

use super::Scalar;

/// Python's `repr` of a float, for the values users actually write (`1.0`, `0.5`, `1e+20`).
pub(super) fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "inf".to_owned()
        } else {
            "-inf".to_owned()
        };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        let s = format!("{f:e}");
        // Rust writes `1e20`; Python writes `1e+20`.
        return match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        };
    }
    let s = format!("{f}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// YAML 1.1 resolution as PyYAML's SafeLoader does it. `Err` (a message) when an explicit core
/// tag (`!!int`) does not fit the text, or an integer is out of range.
pub(super) fn resolve_scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Cow<'_, Tag>>,
) -> Result<Scalar, String> {
    let mismatch = || format!("value '{}' does not match its tag", shorten(text));
    if let Some(tag) = tag
        && tag.is_yaml_core_schema()
    {
        return match tag.suffix.as_str() {
            "str" => Ok(Scalar::Str(text.to_owned())),
            "int" => match parse_int(text) {
                Int::Value(i) => Ok(Scalar::Int(i)),
                Int::OutOfRange => Err(out_of_range(text)),
                Int::NotAnInteger => Err(mismatch()),
            },
            "float" => match (parse_float(text), parse_int(text)) {
                (Some(f), _) => Ok(Scalar::Float(f)),
                (None, Int::Value(i)) => Ok(Scalar::Float(i as f64)),
                (None, Int::OutOfRange) => Err(out_of_range(text)),
                (None, Int::NotAnInteger) => Err(mismatch()),
            },
            "bool" => parse_bool(text).map(Scalar::Bool).ok_or_else(mismatch),
            "null" => is_null(text).then_some(Scalar::Null).ok_or_else(mismatch),
            _ => Ok(Scalar::Str(text.to_owned())),
        };
    }
    if style != ScalarStyle::Plain {
        return Ok(Scalar::Str(text.to_owned()));
    }
    if is_null(text) {
        return Ok(Scalar::Null);
    }
    if let Some(b) = parse_bool(text) {
        return Ok(Scalar::Bool(b));
    }
    match parse_int(text) {
        Int::Value(i) => return Ok(Scalar::Int(i)),
        Int::OutOfRange => return Err(out_of_range(text)),
        Int::NotAnInteger => {}
    }
    Ok(match parse_float(text) {
        Some(f) => Scalar::Float(f),
        None => Scalar::Str(text.to_owned()),
    })
}

/// PyYAML would load such a number as a Python big integer; Sky keeps integers in 64 bits, and
/// turning the value into a string or a float behind the user's back would change its meaning.
fn out_of_range(text: &str) -> String {
    format!(
        "integer {} is out of range (Sky reads integers from {} to {}); quote it to keep it as text",
        shorten(text),
        i64::MIN,
        i64::MAX
    )
}

/// Scalars can be long (up to the scalar limit): messages show their start only.
fn shorten(text: &str) -> Cow<'_, str> {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => Cow::Owned(format!("{}...", &text[..i])),
        None => Cow::Borrowed(text),
    }
}

pub(super) fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn split_sign(text: &str) -> (bool, &str) {
    if let Some(rest) = text.strip_prefix('-') {
        (true, rest)
    } else {
        (false, text.strip_prefix('+').unwrap_or(text))
    }
}

/// What a plain scalar is as an integer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Int {
    NotAnInteger,
    Value(i64),
    /// YAML integer syntax, but beyond `i64`.
    OutOfRange,
}

/// YAML 1.1 integers: decimal, `0b`, `0x`, leading-zero octal, `_` separators. Digits are
/// checked against the radix by hand (not left to `from_str_radix`, which also takes a sign, so
/// `0x-1` or `0-1` would have passed as numbers), and the value is accumulated with checked
/// arithmetic, negative numbers downwards so that `-0x8000000000000000` (`i64::MIN`) fits.
pub(super) fn parse_int(text: &str) -> Int {
    let (negative, body) = split_sign(text);
    let (radix, digits) = if let Some(b) = body.strip_prefix("0b") {
        (2, b)
    } else if let Some(h) = body.strip_prefix("0x") {
        (16, h)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        // Decimal must start with a digit: `_1` is a string, as in PyYAML.
        if !body.starts_with(|c: char| c.is_ascii_digit()) {
            return Int::NotAnInteger;
        }
        (10, body)
    };
    if !digits.chars().all(|c| c == '_' || c.is_digit(radix)) {
        return Int::NotAnInteger;
    }
    let mut value: i64 = 0;
    let mut any = false;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else {
            continue; // `_`
        };
        any = true;
        let d = i64::from(d);
        let next = value.checked_mul(i64::from(radix)).and_then(|v| {
            if negative {
                v.checked_sub(d)
            } else {
                v.checked_add(d)
            }
        });
        match next {
            Some(v) => value = v,
            None => return Int::OutOfRange,
        }
    }
    if any {
        Int::Value(value)
    } else {
        Int::NotAnInteger
    }
}

/// YAML 1.1 floats: a dot is required (`1.5`, `1.`, `.5`, `1.0e+3`), plus `.inf` and `.nan`.
fn parse_float(text: &str) -> Option<f64> {
    let (negative, body) = split_sign(text);
    let sign = if negative { -1.0 } else { 1.0 };
    match body {
        ".inf" | ".Inf" | ".INF" => return Some(sign * f64::INFINITY),
        ".nan" | ".NaN" | ".NAN" if !negative && !text.starts_with('+') => return Some(f64::NAN),
        _ => {}
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.')?;
    let int_ok = int_part.is_empty()
        || (int_part.starts_with(|c: char| c.is_ascii_digit())
            && int_part.chars().all(|c| c.is_ascii_digit() || c == '_'));
    let frac_ok = frac_part.chars().all(|c| c.is_ascii_digit() || c == '_');
    if !int_ok || !frac_ok || (int_part.is_empty() && frac_part.is_empty()) {
        return None;
    }
    if int_part.is_empty() && (text.starts_with('-') || text.starts_with('+')) {
        // PyYAML's `\.[0-9_]+` alternative takes no sign.
        return None;
    }
    if let Some(exp) = exponent {
        let digits = exp.strip_prefix(['+', '-'])?;
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    let cleaned: String = body.chars().filter(|c| *c != '_').collect();
    let cleaned = if cleaned.ends_with('.') {
        format!("{cleaned}0")
    } else {
        cleaned
    };
    // Rust's float parser saturates to infinity on huge exponents rather than failing.
    cleaned.parse::<f64>().ok().map(|f| sign * f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str) -> Scalar {
        resolve_scalar(text, ScalarStyle::Plain, None).expect("plain scalars resolve")
    }

    #[test]
    fn yaml_1_1_scalars_resolve_like_pyyaml() {
        assert_eq!(scalar("yes"), Scalar::Bool(true));
        assert_eq!(scalar("Off"), Scalar::Bool(false));
        assert_eq!(scalar("~"), Scalar::Null);
        assert_eq!(scalar("010"), Scalar::Int(8));
        assert_eq!(scalar("1_000"), Scalar::Int(1000));
        assert_eq!(scalar("0x1F"), Scalar::Int(31));
        assert_eq!(scalar("1.5"), Scalar::Float(1.5));
        assert_eq!(scalar(".5"), Scalar::Float(0.5));
        assert_eq!(scalar("1.0e+3"), Scalar::Float(1000.0));
        assert_eq!(scalar("1e3"), Scalar::Str("1e3".to_owned()));
        assert_eq!(scalar("8+"), Scalar::Str("8+".to_owned()));
        assert_eq!(scalar("V100:4"), Scalar::Str("V100:4".to_owned()));
        assert_eq!(
            resolve_scalar("yes", ScalarStyle::DoubleQuoted, None),
            Ok(Scalar::Str("yes".to_owned()))
        );
    }

    #[test]
    fn integers_at_and_past_the_i64_edges() {
        assert_eq!(scalar("-0x8000000000000000"), Scalar::Int(i64::MIN));
        assert_eq!(scalar("0x7fffffffffffffff"), Scalar::Int(i64::MAX));
        assert_eq!(scalar("-9223372036854775808"), Scalar::Int(i64::MIN));
        assert_eq!(
            scalar("-0b1000000000000000000000000000000000000000000000000000000000000000"),
            Scalar::Int(i64::MIN)
        );
        assert_eq!(scalar("-01000000000000000000000"), Scalar::Int(i64::MIN));
        for past in [
            "0x8000000000000000",
            "-0x8000000000000001",
            "9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999999999",
        ] {
            let err = resolve_scalar(past, ScalarStyle::Plain, None).expect_err(past);
            assert!(err.contains("out of range"), "{past}: {err}");
            assert!(err.contains("quote it"), "{err}");
        }
        // A sign inside the digits used to reach `from_str_radix`, which accepts one: `0x-1` was
        // -1 and `-0x-8000000000000000` overflowed on negation (a panic in debug builds).
        assert_eq!(scalar("0x-1"), Scalar::Str("0x-1".to_owned()));
        assert_eq!(scalar("0-1"), Scalar::Str("0-1".to_owned()));
        assert_eq!(
            scalar("-0x-8000000000000000"),
            Scalar::Str("-0x-8000000000000000".to_owned())
        );
        assert_eq!(scalar("0b"), Scalar::Str("0b".to_owned()));
        assert_eq!(scalar("0x_"), Scalar::Str("0x_".to_owned()));
        assert_eq!(scalar("-0"), Scalar::Int(0));
        assert!(resolve_scalar("0x1g", ScalarStyle::Plain, None).is_ok());
        // Quoted, a huge number is just text.
        assert_eq!(
            resolve_scalar("99999999999999999999", ScalarStyle::SingleQuoted, None),
            Ok(Scalar::Str("99999999999999999999".to_owned()))
        );
    }

    #[test]
    fn python_str_matches_python() {
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(0.5), "0.5");
        assert_eq!(python_float(1e20), "1e+20");
    }
}
