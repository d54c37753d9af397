//! Checks for FHIR primitive values in JSON.

use regex::Regex;
use serde_json::Value;

use super::calendar::{Temporal, calendar_error};

/// Which JSON kind represents a primitive type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonKind {
    Boolean,
    /// integer, unsignedInt, positiveInt: a JSON number without fraction / exponent.
    Integer,
    /// decimal: any JSON number.
    Number,
    String,
}

/// Lexical check of a string primitive (derived from the type's regex).
#[derive(Debug)]
enum Check {
    /// Anything (besides the universal non-empty rule).
    Any,
    /// `\S*` (uri, url, canonical): no whitespace.
    NoWhitespace,
    /// `[^\s]+(\s[^\s]+)*` (code): no leading / trailing / repeated whitespace.
    Code,
    /// `[A-Za-z0-9\-\.]{1,64}` (id).
    Id,
    /// Any other pattern, anchored.
    Regex(Regex),
}

/// One FHIR primitive type.
#[derive(Debug)]
pub(crate) struct PrimitiveDef {
    pub name: Box<str>,
    pub json: JsonKind,
    check: Check,
    max_len: Option<usize>,
    /// Inclusive range of integer types.
    int_range: (i64, i64),
    xhtml: bool,
    /// date, dateTime, instant, time: calendar fields are range-checked too.
    temporal: Option<Temporal>,
}

const STRING_REGEX: &str = r"[ \r\n\t\S]+";
const NO_WS_REGEX: &str = r"\S*";
const CODE_REGEX: &str = r"[^\s]+(\s[^\s]+)*";
const ID_REGEX: &str = r"[A-Za-z0-9\-\.]{1,64}";

impl PrimitiveDef {
    /// Builds a primitive from its generated entry `{"json": .., "regex": .., "maxLength": ..}`.
    pub(crate) fn new(name: &str, info: &Value) -> Result<PrimitiveDef, String> {
        let json = match info.get("json").and_then(Value::as_str) {
            Some("boolean") => JsonKind::Boolean,
            Some("integer") => JsonKind::Integer,
            Some("number") => JsonKind::Number,
            Some("string") => JsonKind::String,
            other => return Err(format!("{name}: bad json kind {other:?}")),
        };
        let pattern = info.get("regex").and_then(Value::as_str);
        let check = match pattern {
            None | Some(STRING_REGEX) => Check::Any,
            Some(NO_WS_REGEX) => Check::NoWhitespace,
            Some(CODE_REGEX) => Check::Code,
            Some(ID_REGEX) => Check::Id,
            // Integer and boolean lexical forms are checked directly on the JSON value.
            Some(_) if json != JsonKind::String => Check::Any,
            Some(p) => {
                let anchored = format!("^(?:{})$", xsd_whitespace(p));
                Check::Regex(Regex::new(&anchored).map_err(|e| format!("{name}: {e}"))?)
            }
        };
        let max_len = info
            .get("maxLength")
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok());
        let int_range = match name {
            "unsignedInt" => (0, i64::from(i32::MAX)),
            "positiveInt" => (1, i64::from(i32::MAX)),
            _ => (i64::from(i32::MIN), i64::from(i32::MAX)),
        };
        Ok(PrimitiveDef {
            name: name.into(),
            json,
            check,
            max_len,
            int_range,
            xhtml: name == "xhtml",
            temporal: Temporal::of_type(name),
        })
    }

    /// Checks a (non-null) JSON value against this primitive type. The error is a
    /// message for a `Value` issue.
    pub(crate) fn check(&self, value: &Value) -> Result<(), String> {
        match (self.json, value) {
            (JsonKind::Boolean, Value::Bool(_)) => Ok(()),
            (JsonKind::Number, Value::Number(_)) => Ok(()),
            (JsonKind::Integer, Value::Number(n)) => {
                let text = n.as_str();
                let lexical_ok =
                    !text.is_empty() && text.bytes().all(|b| b == b'-' || b.is_ascii_digit());
                match n.as_i64() {
                    Some(i) if lexical_ok => {
                        let (lo, hi) = self.int_range;
                        if i < lo || i > hi {
                            Err(format!(
                                "Value {i} is out of range for type {} ({lo}..={hi})",
                                self.name
                            ))
                        } else {
                            Ok(())
                        }
                    }
                    _ => Err(format!(
                        "Value {} is not a valid {}: expected a JSON integer without fraction or exponent",
                        excerpt(text),
                        self.name
                    )),
                }
            }
            (JsonKind::String, Value::String(s)) => self.check_string(s),
            _ => Err(format!(
                "Type {} must be represented as a JSON {}, found {}",
                self.name,
                match self.json {
                    JsonKind::Boolean => "boolean",
                    JsonKind::Integer => "integer number",
                    JsonKind::Number => "number",
                    JsonKind::String => "string",
                },
                json_kind_name(value)
            )),
        }
    }

    fn check_string(&self, s: &str) -> Result<(), String> {
        if s.is_empty() {
            return Err(format!(
                "Empty string is not a valid {} (omit the element instead)",
                self.name
            ));
        }
        // R4 datatypes: strings hold no character below U+0020 but tab, CR and LF.
        if let Some(control) = s
            .chars()
            .find(|c| (*c as u32) < 0x20 && !matches!(c, '\t' | '\r' | '\n'))
        {
            return Err(format!(
                "The {} contains the control character U+{:04X}, which FHIR strings may not hold",
                self.name, control as u32
            ));
        }
        if let Some(max) = self.max_len
            && s.len() > max
            && s.chars().count() > max
        {
            return Err(format!(
                "Value exceeds the maximum length {max} of type {}",
                self.name
            ));
        }
        // Before the regex, so that e.g. a month 13 gets a precise message.
        if let Some(kind) = self.temporal
            && let Some(problem) = calendar_error(kind, s)
        {
            return Err(format!(
                "The value '{}' is not a valid {}: {problem}",
                excerpt(s),
                self.name
            ));
        }
        let ok = match &self.check {
            Check::Any => true,
            Check::NoWhitespace => !s.bytes().any(is_xsd_space),
            Check::Code => {
                let b = s.as_bytes();
                !is_xsd_space(b[0])
                    && !is_xsd_space(b[b.len() - 1])
                    && !b
                        .windows(2)
                        .any(|w| is_xsd_space(w[0]) && is_xsd_space(w[1]))
            }
            Check::Id => {
                s.len() <= 64
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            }
            Check::Regex(re) => re.is_match(s),
        };
        if !ok {
            return Err(format!(
                "The value '{}' is not a valid {}",
                excerpt(s),
                self.name
            ));
        }
        if self.xhtml {
            let t = s.trim_start();
            if !(t.starts_with("<div") && t.trim_end().ends_with('>')) {
                return Err("Narrative div must be an XHTML <div> element".to_owned());
            }
        }
        Ok(())
    }
}

/// XML Schema `\s`: space, tab, CR, LF (FHIR regexes follow XSD, not Unicode).
#[inline]
fn is_xsd_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Rewrites `\s` / `\S` to XML Schema's whitespace set, inside and outside classes.
fn xsd_whitespace(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut in_class = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('s') if in_class => out.push_str(r" \t\n\r"),
                Some('s') => out.push_str(r"[ \t\n\r]"),
                Some('S') => out.push_str(r"[^ \t\n\r]"),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '[' => {
                in_class = true;
                out.push(c);
            }
            ']' => {
                in_class = false;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// The value for a message, shortened to at most 64 characters.
pub(crate) fn excerpt(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

/// Name of a JSON value's kind for messages.
pub(crate) fn json_kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xsd_whitespace_rewrite() {
        assert_eq!(
            xsd_whitespace(r"[^\s]+(\s[^\s]+)*"),
            r"[^ \t\n\r]+([ \t\n\r][^ \t\n\r]+)*"
        );
        assert_eq!(
            xsd_whitespace(r"(\s*([0-9a-zA-Z\+/=]){4}\s*)+"),
            r"([ \t\n\r]*([0-9a-zA-Z\+/=]){4}[ \t\n\r]*)+"
        );
        assert_eq!(xsd_whitespace(r"[ \r\n\t\S]+"), r"[ \r\n\t[^ \t\n\r]]+");
    }
}
