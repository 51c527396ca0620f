//! The two byte-level helpers a slot's text goes through: a utilization as `16%`, and the
//! collapsing of the spaces placeholders that render as nothing leave behind.

/// Appends `16%`; junk (negative, or beyond 999%) shows as `?%` or `>999%` rather than a
/// long number. Digits are written by hand: `format!` per window is a tenth of a 1,000-slot
/// render.
pub(super) fn push_percent(out: &mut String, utilization: f64) {
    if utilization.is_nan() || utilization < 0.0 {
        out.push_str("?%");
    } else if utilization > 999.0 {
        out.push_str(">999%");
    } else {
        // In 0..=999 after the checks above: the cast is exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rounded = utilization.round() as u32;
        let digits = [rounded / 100, rounded / 10 % 10, rounded % 10];
        let skip = match rounded {
            0..=9 => 2,
            10..=99 => 1,
            _ => 0,
        };
        for d in &digits[skip..] {
            out.push(char::from(b'0' + u8::try_from(*d).unwrap_or(0)));
        }
        out.push('%');
    }
}

/// Appends `text` with runs of spaces collapsed and the ends trimmed, so placeholders that
/// render as nothing leave no gaps.
pub(super) fn push_collapsed(line: &mut String, text: &str) {
    let text = text.trim_matches(' ');
    // Most slots have no run of spaces left inside (only at the ends, from a placeholder such
    // as `{current}` or `{stale}` rendering nothing): then the text goes in whole.
    if !text.as_bytes().windows(2).any(|pair| pair == b"  ") {
        line.push_str(text);
        return;
    }
    // A byte loop: `split(' ')` costs a search call per word (a fifth of a 1,000-slot render).
    // Cutting at ASCII spaces always lands on character boundaries.
    let bytes = text.as_bytes();
    let (mut i, mut first) = (0, true);
    while i < bytes.len() {
        if bytes[i] == b' ' {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b' ' {
            i += 1;
        }
        if !first {
            line.push(' ');
        }
        first = false;
        line.push_str(&text[start..i]);
    }
}
