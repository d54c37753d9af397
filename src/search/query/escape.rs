//! The escaping rules of search values: `\,` `\$` `\|` `\\` stand for the literal character,
//! so splitting on `,` (OR), `$` (composite) and `|` (system / code) skips escaped ones, and
//! escapes are removed only once a value is split down to its parts.

/// Splits `text` at each `sep` that is not escaped; the parts keep their escapes.
pub(super) fn split(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Removes the backslash of `\,` `\$` `\|` `\\`; any other backslash is literal.
pub(super) fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&next @ (',' | '$' | '|' | '\\'))) => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_unescaped_separators_only() {
        assert_eq!(split("a,b,,c", ','), ["a", "b", "", "c"]);
        assert_eq!(split(r"a\,b,c", ','), [r"a\,b", "c"]);
        assert_eq!(split(r"a\\,b", ','), [r"a\\", "b"]);
        assert_eq!(split(r"x\|y|z", '|'), [r"x\|y", "z"]);
        assert_eq!(split("é|ü", '|'), ["é", "ü"]);
        assert_eq!(split("", ','), [""]);
        assert_eq!(split("trailing\\", ','), ["trailing\\"]);
    }

    #[test]
    fn unescapes_the_four_escapes() {
        assert_eq!(unescape(r"a\,b\$c\|d\\e"), r"a,b$c|d\e");
        assert_eq!(unescape(r"C:\temp\"), r"C:\temp\");
        assert_eq!(unescape(r"\\\,"), r"\,");
    }
}
