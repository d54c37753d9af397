//! Result parameters.

use super::*;

fn controls(resource_type: Option<&str>, query: &[(&str, &str)]) -> Controls {
    let parsed = parse(resource_type, query);
    assert!(parsed.criteria.is_empty() && parsed.unknown.is_empty());
    parsed.controls
}

fn include(
    source_type: Option<&'static str>,
    param: Option<&'static str>,
    target_type: Option<&'static str>,
    iterate: bool,
) -> Include {
    Include {
        source_type,
        param,
        target_type,
        iterate,
    }
}

#[test]
fn count() {
    assert_eq!(
        controls(Some("Patient"), &[("_count", "10")]).count,
        Some(10)
    );
    assert_eq!(controls(Some("Patient"), &[("_count", "0")]).count, Some(0));
    assert_eq!(
        controls(Some("Patient"), &[("_count", "99999999999")]).count,
        Some(u32::MAX)
    );
    assert_eq!(controls(Some("Patient"), &[]).count, None);
    for bad in ["-1", "ten", "1.5", "+5", " 5"] {
        invalid_param("Patient", "_count", bad);
    }
    rejected(
        Some("Patient"),
        &[("_count", "1"), ("_count", "2")],
        "_count",
        IssueCode::Invalid,
    );
    invalid_param("Patient", "_count:exact", "1");
}

#[test]
fn sort() {
    let sort = controls(
        Some("Patient"),
        &[("_sort", "-birthdate,name,_id,-_lastUpdated")],
    )
    .sort;
    assert_eq!(
        sort,
        [
            SortKey {
                param: "birthdate",
                kind: ParamType::Date,
                descending: true
            },
            SortKey {
                param: "name",
                kind: ParamType::String,
                descending: false
            },
            SortKey {
                param: "_id",
                kind: ParamType::Token,
                descending: false
            },
            SortKey {
                param: "_lastUpdated",
                kind: ParamType::Date,
                descending: true
            },
        ]
    );
    assert_eq!(
        controls(None, &[("_sort", "-_lastUpdated")]).sort[0].param,
        "_lastUpdated"
    );
    let message = invalid_param("Patient", "_sort", "name,nope");
    assert!(message.contains("'nope'"), "{message}");
    invalid_param("Patient", "_sort", "-");
    rejected(None, &[("_sort", "name")], "_sort", IssueCode::Invalid);
    rejected(
        Some("Observation"),
        &[("_sort", "code-value-quantity")],
        "_sort",
        IssueCode::NotSupported,
    );
    rejected(
        Some("Patient"),
        &[("_sort", "name"), ("_sort", "birthdate")],
        "_sort",
        IssueCode::Invalid,
    );
}

#[test]
fn total_summary_elements_cursor() {
    for (text, total) in [
        ("none", Total::None),
        ("estimate", Total::Estimate),
        ("accurate", Total::Accurate),
    ] {
        assert_eq!(
            controls(Some("Patient"), &[("_total", text)]).total,
            Some(total)
        );
    }
    invalid_param("Patient", "_total", "all");
    for (text, summary) in [
        ("true", Summary::True),
        ("false", Summary::False),
        ("text", Summary::Text),
        ("data", Summary::Data),
        ("count", Summary::Count),
    ] {
        assert_eq!(
            controls(Some("Patient"), &[("_summary", text)]).summary,
            Some(summary)
        );
    }
    let message = invalid_param("Patient", "_summary", "yes");
    assert!(message.contains("'yes'"), "{message}");
    assert_eq!(
        controls(
            Some("Patient"),
            &[("_elements", "identifier,name,,Patient.birthDate")]
        )
        .elements,
        ["identifier", "name", "Patient.birthDate"]
    );
    invalid_param("Patient", "_elements", "name,bad name");
    assert_eq!(
        controls(Some("Patient"), &[("_cursor", "opaque/+=")])
            .cursor
            .as_deref(),
        Some("opaque/+=")
    );
    rejected(
        Some("Patient"),
        &[("_cursor", "a"), ("_cursor", "b")],
        "_cursor",
        IssueCode::Invalid,
    );
}

#[test]
fn includes() {
    let c = controls(
        Some("Observation"),
        &[
            ("_include", "Observation:patient"),
            ("_include", "Observation:subject:Patient"),
            ("_include:iterate", "Patient:organization"),
            ("_include:recurse", "Organization:partof"),
            ("_include", "*"),
            ("_include", "Observation:*"),
            ("_revinclude", "Provenance:target"),
            ("_revinclude:iterate", "DiagnosticReport:result:Observation"),
        ],
    );
    assert_eq!(
        c.include,
        [
            include(Some("Observation"), Some("patient"), None, false),
            include(Some("Observation"), Some("subject"), Some("Patient"), false),
            include(Some("Patient"), Some("organization"), None, true),
            include(Some("Organization"), Some("partof"), None, true),
            include(None, None, None, false),
            include(Some("Observation"), None, None, false),
        ]
    );
    assert_eq!(
        c.revinclude,
        [
            include(Some("Provenance"), Some("target"), None, false),
            include(
                Some("DiagnosticReport"),
                Some("result"),
                Some("Observation"),
                true
            ),
        ]
    );
    assert_eq!(
        controls(None, &[("_include", "Patient:organization")])
            .include
            .len(),
        1
    );
}

#[test]
fn bad_includes() {
    for bad in [
        "Observation",
        "Nope:patient",
        "Observation:nope",
        "Observation:code",
        "Observation:subject:Practitioner",
        "Observation:subject:Patient:x",
        "Observation:patient,Observation:subject",
    ] {
        invalid_param("Observation", "_include", bad);
        invalid_param("Observation", "_revinclude", bad);
    }
    invalid_param("Observation", "_include:deep", "Observation:patient");
}

#[test]
fn contained_is_not_supported() {
    for name in ["_contained", "_containedType"] {
        rejected(
            Some("Patient"),
            &[(name, "true")],
            name,
            IssueCode::NotSupported,
        );
    }
}

#[test]
fn controls_mix_with_criteria() {
    let query = parse(
        Some("Observation"),
        &[
            ("code", "8480-6"),
            ("_count", "5"),
            ("_sort", "-date"),
            ("_format", "json"),
            ("_summary", "count"),
        ],
    );
    assert_eq!(query.criteria.len(), 1);
    assert_eq!(query.controls.count, Some(5));
    assert_eq!(query.controls.summary, Some(Summary::Count));
    assert!(query.unknown.is_empty());
}
