//! String normalization for `string` search: both the index and the query use
//! [`normalize_string`], so `Zoë` is found by `zoe` and `ZOE`.

/// Lower-case, accents removed, whitespace collapsed to single spaces and trimmed.
///
/// Accents: letters of Latin-1 Supplement and Latin Extended-A are folded by a table (their
/// NFD decomposition without combining marks, plus `æ`→`ae`, `ß`→`ss`, `ø`→`o`, `ł`→`l`, ...),
/// and combining marks are dropped (so already-decomposed text folds too). Other precomposed
/// letters (Vietnamese, Latin Extended-B, ...) are only lower-cased.
pub fn normalize_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if is_combining_mark(c) {
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        match c {
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            '\0'..='\x7f' => out.push(c),
            '\u{c0}'..='\u{ff}' => out.push_str(LATIN_1[c as usize - 0xc0]),
            '\u{100}'..='\u{17f}' => out.push_str(LATIN_EXTENDED_A[c as usize - 0x100]),
            _ => out.extend(c.to_lowercase()),
        }
    }
    out
}

fn is_combining_mark(c: char) -> bool {
    matches!(c,
        '\u{300}'..='\u{36f}'
        | '\u{1ab0}'..='\u{1aff}'
        | '\u{1dc0}'..='\u{1dff}'
        | '\u{20d0}'..='\u{20ff}'
        | '\u{fe20}'..='\u{fe2f}')
}

/// U+00C0..=U+00FF folded (× and ÷ are kept; þ has no decomposition).
#[rustfmt::skip]
const LATIN_1: [&str; 64] = [
    "a", "a", "a", "a", "a", "a", "ae", "c", // U+00C0
    "e", "e", "e", "e", "i", "i", "i", "i", // U+00C8
    "d", "n", "o", "o", "o", "o", "o", "×", // U+00D0
    "o", "u", "u", "u", "u", "y", "þ", "ss", // U+00D8
    "a", "a", "a", "a", "a", "a", "ae", "c", // U+00E0
    "e", "e", "e", "e", "i", "i", "i", "i", // U+00E8
    "d", "n", "o", "o", "o", "o", "o", "÷", // U+00F0
    "o", "u", "u", "u", "u", "y", "þ", "y", // U+00F8
];

/// U+0100..=U+017F folded (ĸ and ŋ have no decomposition).
#[rustfmt::skip]
const LATIN_EXTENDED_A: [&str; 128] = [
    "a", "a", "a", "a", "a", "a", "c", "c", // U+0100
    "c", "c", "c", "c", "c", "c", "d", "d", // U+0108
    "d", "d", "e", "e", "e", "e", "e", "e", // U+0110
    "e", "e", "e", "e", "g", "g", "g", "g", // U+0118
    "g", "g", "g", "g", "h", "h", "h", "h", // U+0120
    "i", "i", "i", "i", "i", "i", "i", "i", // U+0128
    "i", "i", "ij", "ij", "j", "j", "k", "k", // U+0130
    "ĸ", "l", "l", "l", "l", "l", "l", "l", // U+0138
    "l", "l", "l", "n", "n", "n", "n", "n", // U+0140
    "n", "n", "ŋ", "ŋ", "o", "o", "o", "o", // U+0148
    "o", "o", "oe", "oe", "r", "r", "r", "r", // U+0150
    "r", "r", "s", "s", "s", "s", "s", "s", // U+0158
    "s", "s", "t", "t", "t", "t", "t", "t", // U+0160
    "u", "u", "u", "u", "u", "u", "u", "u", // U+0168
    "u", "u", "u", "u", "w", "w", "y", "y", // U+0170
    "y", "z", "z", "z", "z", "z", "z", "s", // U+0178
];

#[cfg(test)]
mod tests {
    use super::normalize_string as n;

    #[test]
    fn folds_case_accents_and_whitespace() {
        assert_eq!(n("Zoë"), "zoe");
        assert_eq!(n("  ZOË \t Ångström\n"), "zoe angstrom");
        assert_eq!(n("Zoe\u{308}"), "zoe"); // decomposed input
        assert_eq!(n("Łódź Straße Œuvre Søren"), "lodz strasse oeuvre soren");
        assert_eq!(n("Čapek Dvořák"), "capek dvorak");
        assert_eq!(n("ΑΘΗΝΑ"), "αθηνα");
        assert_eq!(n(""), "");
        assert_eq!(n(" \n "), "");
    }
}
