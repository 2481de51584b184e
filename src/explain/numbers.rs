//! How plan figures read in the plan view, the comparison and the findings'
//! texts: durations (`2.41 s`), factors (`×12`) and counts with thousands
//! separators (`100,000`). A leaf of `explain`: it imports nothing, so
//! `html`, `compare` and `findings` share it without importing each other.

/// A duration in ms, readable: `0.012 ms`, `9.12 ms`, `412.3 ms`, `2.41 s`.
pub fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.1} ms")
    } else if v >= 1.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.3} ms")
    }
}

/// `×12`, `×1.5`, `×1,200`.
pub fn factor(v: f64) -> String {
    if v < 10.0 {
        format!("×{v:.1}")
    } else {
        format!("×{}", group_digits(v))
    }
}

/// A count with thousands separators: `100,000`.
pub fn group_digits(v: f64) -> String {
    if !v.is_finite() {
        return "?".to_string();
    }
    let s = format!("{:.0}", v.abs());
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if v < -0.5 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(group_digits(100000.0), "100,000");
        assert_eq!(group_digits(12.0), "12");
        assert_eq!(group_digits(f64::NAN), "?");
        assert_eq!(ms(0.0123), "0.012 ms");
        assert_eq!(ms(2410.0), "2.41 s");
        assert_eq!(factor(333.3), "×333");
    }
}
