//! No input panics: every outcome is a query or a 400 naming the parameter.

use super::*;

/// Pieces that exercise separators, escapes, prefixes and multi-byte characters.
const PIECES: [&str; 26] = [
    "",
    ",",
    "|",
    "$",
    "\\",
    ":",
    ".",
    "_has:",
    "gt",
    "ap",
    "e",
    "1",
    "-",
    "2020-01-01",
    "T10:00",
    "+",
    " ",
    "é",
    "日",
    "Patient",
    "/",
    "http://x",
    "Observation",
    "patient",
    "missing",
    "*",
];

const NAMES: [&str; 14] = [
    "name",
    "birthdate",
    "gender",
    "identifier",
    "general-practitioner",
    "_id",
    "_lastUpdated",
    "_profile",
    "_has",
    "_sort",
    "_include",
    "_count",
    "_elements",
    "_type",
];

/// A deterministic xorshift generator.
struct Random(u64);

impl Random {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below as u64) as usize
    }

    fn text(&mut self, start: &str) -> String {
        let mut text = start.to_owned();
        for _ in 0..self.next(6) {
            text.push_str(PIECES[self.next(PIECES.len())]);
        }
        text
    }
}

#[test]
fn random_requests_never_panic() {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    for round in 0..20_000 {
        let start = NAMES[random.next(NAMES.len())];
        let name = random.text(start);
        let value = random.text("");
        let params = vec![(name.clone(), value.clone())];
        for resource_type in [Some("Patient"), Some("Observation"), None] {
            match parse_search_at(resource_type, &params, NOW) {
                Ok(_) => {}
                Err(error) => {
                    assert_eq!(
                        error.status,
                        StatusCode::BAD_REQUEST,
                        "{round}: {name}={value}"
                    );
                    assert_eq!(error.issues[0].expression.as_deref(), Some(name.as_str()));
                }
            }
        }
    }
}

#[test]
fn extreme_values_never_panic() {
    let long = "9".repeat(400);
    let cases = [
        ("birthdate", "ap9999-12-31T23:59:59.999999999+14:00"),
        ("birthdate", "ap0001"),
        ("birthdate", "ge-001"),
        ("_count", long.as_str()),
        ("probability", long.as_str()),
        ("probability", "ap1e308"),
        ("probability", "1e-400"),
        ("probability", "1e99999999999"),
        ("value-quantity", "ap-1e308||x"),
        ("name", "\\"),
        ("name", "\u{0}"),
        ("subject", "Patient/日本"),
        ("subject:identifier", "\\|\\|"),
        ("_has:Observation:patient:", "x"),
        ("subject:Patient.", "x"),
        (".", "x"),
        (":", "x"),
        ("", "x"),
    ];
    for resource_type in ["Patient", "Observation", "RiskAssessment"] {
        for (name, value) in cases {
            let _ = parse_search_at(Some(resource_type), &pairs(&[(name, value)]), NOW);
        }
    }
}
