//! The search parameters of `AuditEvent` as this server supports them, turned into the audit
//! log's filter, sort and page (`crate::store::audit::query`).
//!
//! - `date` (on `recorded`): `eq ne gt ge lt le` prefixes at any precision (a year, a day, a
//!   second…), no prefix meaning `eq`.
//! - `patient`: `Patient/ID`, `ID` or the absolute URL.
//! - `agent`: a reference (`Practitioner/1`, or a bare id for any agent type) matched against
//!   the user's FHIR reference; `agent:identifier` (`[system|]value`) matched against the
//!   OAuth client id and the username.
//! - `entity`: `Type/ID` (or the absolute URL).
//! - `action`, `outcome`: the code; `type`, `subtype`: `code` or `system|code` (the code is
//!   compared).
//! - `_sort` by any of those (`date` is `recorded`), `-` for descending; `_count`; `_total`
//!   (`none`, `estimate` and `accurate` all count exactly); `_offset` for paging, up to
//!   [`MAX_OFFSET`].
//!
//! Values separated by commas are alternatives; a repeated parameter must hold each time.
//! Unknown parameters are ignored with a warning (an error under `Prefer: handling=strict`);
//! an unknown modifier or a malformed value is a 400.

use crate::fhir::outcome::{FhirError, FhirResult};
use crate::search::date_range;
use crate::store::audit::query::{AuditAtom, AuditColumn, AuditFilter, AuditSort};

/// The search parameters supported, as the CapabilityStatement lists them.
pub const SEARCH_PARAMS: [&str; 8] = [
    "date", "patient", "agent", "entity", "action", "type", "subtype", "outcome",
];

/// The furthest a page may start: deeper pages need a narrower search (a period).
pub const MAX_OFFSET: i64 = 100_000;

/// Parameters that shape the response, not the search.
const FORMAT_PARAMS: [&str; 2] = ["_format", "_pretty"];

/// The resource types an `AuditEvent.agent.who` may reference, for a bare id.
const AGENT_TYPES: [&str; 6] = [
    "Practitioner",
    "PractitionerRole",
    "Patient",
    "RelatedPerson",
    "Device",
    "Organization",
];

/// A parsed search.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditSearch {
    pub filter: AuditFilter,
    pub sort: Vec<AuditSort>,
    /// `_count`, when given (before capping).
    pub count: Option<i64>,
    pub offset: i64,
    /// `_total`: `Some(true)` counts, `Some(false)` never does, `None` as the page allows.
    pub total: Option<bool>,
    /// Parameters ignored as unknown.
    pub unknown: Vec<String>,
    /// The parameters applied, for the paging links (no `_offset`).
    pub applied: Vec<(String, String)>,
}

/// Parses `params`; `base` is the FHIR base, stripped from absolute references.
pub fn parse(params: &[(String, String)], base: &str) -> FhirResult<AuditSearch> {
    let mut search = AuditSearch {
        filter: AuditFilter::default(),
        sort: Vec::new(),
        count: None,
        offset: 0,
        total: None,
        unknown: Vec::new(),
        applied: Vec::new(),
    };
    let mut seen_controls: Vec<&str> = Vec::new();
    for (name, value) in params {
        if FORMAT_PARAMS.contains(&name.as_str()) {
            continue;
        }
        let (code, modifier) = match name.split_once(':') {
            Some((code, modifier)) => (code, Some(modifier)),
            None => (name.as_str(), None),
        };
        let known = SEARCH_PARAMS.contains(&code)
            || matches!(code, "_sort" | "_count" | "_total" | "_offset");
        if !known {
            if !search.unknown.contains(name) {
                search.unknown.push(name.clone());
            }
            continue;
        }
        if value.is_empty() {
            continue;
        }
        if let Some(modifier) = modifier
            && !(code == "agent" && modifier == "identifier")
        {
            return Err(invalid(
                name,
                format!("the modifier :{modifier} is not supported on {code}"),
            ));
        }
        if code.starts_with('_') {
            if seen_controls.contains(&code) {
                return Err(invalid(name, "may appear only once"));
            }
            seen_controls.push(code);
        }
        match code {
            "_sort" => search.sort = sort(value)?,
            "_count" => search.count = Some(number(name, value)?),
            "_offset" => {
                let offset = number(name, value)?;
                if offset > MAX_OFFSET {
                    return Err(invalid(
                        name,
                        format!(
                            "pages start at most {MAX_OFFSET} events in; narrow the search \
                             (e.g. by date)"
                        ),
                    ));
                }
                search.offset = offset;
                continue;
            }
            "_total" => {
                search.total = Some(match value.as_str() {
                    "none" => false,
                    "estimate" | "accurate" => true,
                    _ => {
                        return Err(invalid(
                            name,
                            format!("'{value}' is not one of none, estimate, accurate"),
                        ));
                    }
                })
            }
            _ => {
                let mut any_of = Vec::new();
                for alternative in value.split(',') {
                    any_of.extend(atoms(code, modifier.is_some(), alternative.trim(), base)?);
                }
                search.filter.require(any_of);
            }
        }
        search.applied.push((name.clone(), value.clone()));
    }
    Ok(search)
}

/// The atoms one alternative of `code` stands for (none: it can match nothing).
fn atoms(code: &str, identifier: bool, value: &str, base: &str) -> FhirResult<Vec<AuditAtom>> {
    let is = |column, value: &str| AuditAtom::Is(column, value.to_owned());
    Ok(match code {
        "date" => vec![date(value)?],
        "patient" => {
            let reference = local(value, base);
            match reference.split_once('/') {
                None => vec![is(AuditColumn::Patient, reference)],
                Some(("Patient", id)) if !id.contains('/') => vec![is(AuditColumn::Patient, id)],
                Some(_) => Vec::new(),
            }
        }
        "agent" if identifier => {
            let value = value.rsplit_once('|').map_or(value, |(_, value)| value);
            vec![
                is(AuditColumn::AgentClient, value),
                is(AuditColumn::AgentUser, value),
            ]
        }
        "agent" => {
            let reference = local(value, base);
            if reference.contains('/') {
                vec![is(AuditColumn::AgentWho, reference)]
            } else {
                AGENT_TYPES
                    .iter()
                    .map(|kind| is(AuditColumn::AgentWho, &format!("{kind}/{reference}")))
                    .collect()
            }
        }
        "entity" => {
            let reference = local(value, base);
            if !reference.contains('/') {
                return Err(invalid(
                    "entity",
                    format!("'{value}' is not a reference like Patient/123"),
                ));
            }
            vec![is(AuditColumn::Entity, reference)]
        }
        "action" => vec![is(AuditColumn::Action, value)],
        "outcome" => vec![is(AuditColumn::Outcome, value)],
        "type" => vec![is(AuditColumn::Type, token_code(value))],
        _ => vec![is(AuditColumn::Subtype, token_code(value))],
    })
}

/// A reference with the server's base taken off.
fn local<'a>(value: &'a str, base: &str) -> &'a str {
    value
        .strip_prefix(base)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(value)
}

/// The code of a `[system|]code` token.
fn token_code(value: &str) -> &str {
    value.split_once('|').map_or(value, |(_, code)| code)
}

/// One `date` alternative as a condition on `recorded`.
fn date(value: &str) -> FhirResult<AuditAtom> {
    let (prefix, text) = match value.get(..2) {
        Some(prefix) if prefix.bytes().all(|b| b.is_ascii_lowercase()) => (prefix, &value[2..]),
        _ => ("eq", value),
    };
    let (from, until) = date_range(text).ok_or_else(|| {
        invalid(
            "date",
            format!("'{text}' is not a date or time like 2024-05-17 or 2024-05-17T10:30:00Z"),
        )
    })?;
    Ok(match prefix {
        "eq" => AuditAtom::Within {
            from: Some(from),
            until: Some(until),
        },
        "ne" => AuditAtom::Outside { from, until },
        "gt" => AuditAtom::Within {
            from: Some(until),
            until: None,
        },
        "ge" => AuditAtom::Within {
            from: Some(from),
            until: None,
        },
        "lt" => AuditAtom::Within {
            from: None,
            until: Some(from),
        },
        "le" => AuditAtom::Within {
            from: None,
            until: Some(until),
        },
        other => {
            return Err(invalid(
                "date",
                format!("the prefix '{other}' is not supported (eq ne gt ge lt le are)"),
            ));
        }
    })
}

/// `_sort`: comma-separated names, `-` for descending.
fn sort(value: &str) -> FhirResult<Vec<AuditSort>> {
    value
        .split(',')
        .map(|key| {
            let (name, descending) = match key.trim().strip_prefix('-') {
                Some(name) => (name, true),
                None => (key.trim(), false),
            };
            let column = match name {
                "date" => AuditColumn::Recorded,
                "patient" => AuditColumn::Patient,
                "agent" => AuditColumn::AgentWho,
                "entity" => AuditColumn::Entity,
                "action" => AuditColumn::Action,
                "type" => AuditColumn::Type,
                "subtype" => AuditColumn::Subtype,
                "outcome" => AuditColumn::Outcome,
                _ => {
                    return Err(invalid(
                        "_sort",
                        format!(
                            "cannot sort AuditEvent by '{name}' (one of {})",
                            SEARCH_PARAMS.join(", ")
                        ),
                    ));
                }
            };
            Ok((column, descending))
        })
        .collect()
}

fn number(name: &str, value: &str) -> FhirResult<i64> {
    value
        .parse::<u32>()
        .map(i64::from)
        .map_err(|_| invalid(name, format!("'{value}' is not a non-negative integer")))
}

fn invalid(name: &str, message: impl Into<String>) -> FhirError {
    FhirError::bad_request(format!("{name}: {}", message.into())).expression_at(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn commas_are_alternatives_and_repeats_must_all_hold() {
        let search = parse(
            &params(&[
                ("patient", "Patient/p1,http://x/fhir/Patient/p2"),
                ("date", "ge2024"),
                ("date", "lt2025-01"),
                ("agent:identifier", "urn:x|app"),
                ("nonsense", "1"),
            ]),
            "http://x/fhir",
        )
        .unwrap();
        assert_eq!(search.filter.conditions.len(), 4);
        assert_eq!(
            search.filter.conditions[0],
            vec![
                AuditAtom::Is(AuditColumn::Patient, "p1".into()),
                AuditAtom::Is(AuditColumn::Patient, "p2".into()),
            ]
        );
        assert_eq!(
            search.filter.conditions[3],
            vec![
                AuditAtom::Is(AuditColumn::AgentClient, "app".into()),
                AuditAtom::Is(AuditColumn::AgentUser, "app".into()),
            ]
        );
        assert_eq!(search.unknown, vec!["nonsense".to_string()]);
        assert_eq!(search.applied.len(), 4);
    }

    #[test]
    fn bad_values_are_400s() {
        for (name, value) in [
            ("date", "sa2024"),
            ("date", "yesterday"),
            ("entity", "123"),
            ("_sort", "color"),
            ("patient:missing", "true"),
            ("_count", "-1"),
            ("_offset", "100001"),
        ] {
            let error = parse(&params(&[(name, value)]), "http://x/fhir").unwrap_err();
            assert_eq!(error.status.as_u16(), 400, "{name}={value}");
        }
    }
}
