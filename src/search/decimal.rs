//! FHIR decimals with their implicit precision, read from the number's text (serde_json
//! keeps it: the `arbitrary_precision` feature).

/// `(value, low, high)`: the value and the half-open range `[low, high)` its written
/// precision implies: `1.5` → `[1.45, 1.55)`, `1.50` → ±0.005, `100` → ±0.5, `1.5e2` → ±5.
/// `None` if `text` is not a finite number.
pub fn decimal_range(text: &str) -> Option<(f64, f64, f64)> {
    let value = text.parse::<f64>().ok().filter(|v| v.is_finite())?;
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let decimals = mantissa
        .split_once('.')
        .map_or(0, |(_, fraction)| fraction.len());
    let scale = exponent.saturating_sub(i32::try_from(decimals).ok()?);
    let half = 0.5 * 10f64.powi(scale);
    Some((value, value - half, value + half))
}

#[cfg(test)]
mod tests {
    use super::decimal_range;

    fn close(got: Option<(f64, f64, f64)>, want: (f64, f64, f64)) {
        let (v, lo, hi) = got.expect("parsed");
        for (a, b) in [(v, want.0), (lo, want.1), (hi, want.2)] {
            assert!((a - b).abs() < 1e-12, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn precision_from_text() {
        close(decimal_range("1.5"), (1.5, 1.45, 1.55));
        close(decimal_range("1.50"), (1.5, 1.495, 1.505));
        close(decimal_range("100"), (100.0, 99.5, 100.5));
        close(decimal_range("-0.001"), (-0.001, -0.0015, -0.0005));
        close(decimal_range("1.5e2"), (150.0, 145.0, 155.0));
        close(decimal_range("2E-3"), (0.002, 0.0015, 0.0025));
        assert_eq!(decimal_range("abc"), None);
        assert_eq!(decimal_range("inf"), None);
        assert_eq!(decimal_range("1e999"), None);
        assert_eq!(decimal_range(""), None);
    }
}
