//! Chains (`subject:Patient.name`), reverse chains (`_has`) and their validation.

use super::*;

fn forward(source_type: &'static str, param: &'static str, target_type: &'static str) -> Hop {
    Hop {
        direction: Direction::Forward,
        source_type,
        param,
        target_type,
    }
}

fn reverse(source_type: &'static str, param: &'static str, target_type: &'static str) -> Hop {
    Hop {
        direction: Direction::Reverse,
        source_type,
        param,
        target_type,
    }
}

#[test]
fn chain_with_type_modifier() {
    let c = criterion("Observation", "subject:Patient.name", "peter");
    assert_eq!(c.chain, [forward("Observation", "subject", "Patient")]);
    assert_eq!(c.resource_type, Some("Patient"));
    assert_eq!(c.param, "name");
    assert_eq!(c.kind, ParamType::String);
    assert_eq!(
        c.test,
        Test::Any(vec![Value::String(StringValue::StartsWith("peter".into()))])
    );
    // The leaf takes its own modifier.
    let c = criterion("Observation", "subject:Patient.name:exact", "Peter");
    assert_eq!(
        c.test,
        Test::Any(vec![Value::String(StringValue::Exact("Peter".into()))])
    );
}

#[test]
fn chain_without_modifier_follows_the_one_fitting_target() {
    // One target type.
    let c = criterion("Patient", "organization.name", "acme");
    assert_eq!(
        c.chain,
        [forward("Patient", "organization", "Organization")]
    );
    // Observation.patient targets Patient only (its expression resolves to Patient).
    let c = criterion("Observation", "patient.name", "peter");
    assert_eq!(c.chain, [forward("Observation", "patient", "Patient")]);
    // Patient and Group both have `identifier`, but Encounter.patient targets Patient only.
    let c = criterion("Encounter", "patient.identifier", "urn:x|1");
    assert_eq!(c.chain, [forward("Encounter", "patient", "Patient")]);
    // Device, Group, Location, Patient: Location and Patient have `name`.
    let message = invalid_param("Observation", "subject.name", "peter");
    assert!(
        message.contains("Location, Patient") && message.contains("subject:Location.name"),
        "{message}"
    );
}

#[test]
fn multi_level_chains() {
    let c = criterion("Observation", "patient.organization.name", "acme");
    assert_eq!(
        c.chain,
        [
            forward("Observation", "patient", "Patient"),
            forward("Patient", "organization", "Organization"),
        ]
    );
    assert_eq!(c.resource_type, Some("Organization"));
    assert_eq!(c.param, "name");
    let c = criterion(
        "Encounter",
        "subject:Patient.general-practitioner:Practitioner.identifier",
        "http://npi|1",
    );
    assert_eq!(c.chain.len(), 2);
    assert_eq!(c.chain[1].target_type, "Practitioner");
    assert_eq!(c.kind, ParamType::Token);
}

#[test]
fn chain_errors_name_the_parameter() {
    let message = invalid_param("Patient", "name.family", "x");
    assert!(message.contains("not a reference"), "{message}");
    let message = invalid_param("Observation", "subject:Patient.nope", "x");
    assert!(
        message.contains("Patient has no search parameter 'nope'"),
        "{message}"
    );
    let message = invalid_param("Patient", "organization.nope", "x");
    assert!(
        message.contains("Organization has no search parameter 'nope'"),
        "{message}"
    );
    let message = invalid_param("Observation", "subject:Practitioner.name", "x");
    assert!(message.contains("not a target type"), "{message}");
    invalid_param("Observation", "subject:Nope.name", "x");
    invalid_param("Observation", "subject:identifier.name", "x");
    let message = invalid_param("Observation", "subject.nope", "x");
    assert!(message.contains("no target type"), "{message}");
    // A bad value or modifier at the end of a chain names the whole parameter too.
    invalid_param("Observation", "subject:Patient.birthdate", "2020-13");
    invalid_param("Observation", "subject:Patient.name:bogus", "x");
    invalid_param("Observation", "patient.organization.nope", "x");
}

#[test]
fn reverse_chains() {
    let c = criterion("Patient", "_has:Observation:patient:code", "1234-5");
    assert_eq!(c.chain, [reverse("Observation", "patient", "Patient")]);
    assert_eq!(c.resource_type, Some("Observation"));
    assert_eq!(c.param, "code");
    assert_eq!(c.kind, ParamType::Token);
    // Nested, and with a modifier at the end.
    let c = criterion(
        "Patient",
        "_has:Observation:patient:_has:AuditEvent:entity:agent:missing",
        "false",
    );
    assert_eq!(
        c.chain,
        [
            reverse("Observation", "patient", "Patient"),
            reverse("AuditEvent", "entity", "Observation"),
        ]
    );
    assert_eq!(c.param, "agent");
    assert_eq!(c.test, Test::Missing(false));
    // A chain inside `_has`, and `_has` at the end of a chain.
    let c = criterion(
        "Patient",
        "_has:Observation:patient:performer:Practitioner.name",
        "x",
    );
    assert_eq!(
        c.chain,
        [
            reverse("Observation", "patient", "Patient"),
            forward("Observation", "performer", "Practitioner"),
        ]
    );
    let c = criterion(
        "Observation",
        "patient._has:Appointment:patient:status",
        "x",
    );
    assert_eq!(
        c.chain,
        [
            forward("Observation", "patient", "Patient"),
            reverse("Appointment", "patient", "Patient"),
        ]
    );
    // Observation.patient refers to Patient only, so the `_has` continues there.
    let c = criterion("Observation", "patient._has:Condition:subject:code", "x");
    assert_eq!(
        c.chain,
        [
            forward("Observation", "patient", "Patient"),
            reverse("Condition", "subject", "Patient"),
        ]
    );
    invalid_param(
        "Observation",
        "patient:Group._has:Condition:subject:code",
        "x",
    );
    // Condition.subject may refer to a Group or a Patient, as Observation.subject may.
    let message = invalid_param("Observation", "subject._has:Condition:subject:code", "x");
    assert!(message.contains("Group, Patient"), "{message}");
    let c = criterion(
        "Observation",
        "subject:Group._has:Condition:subject:code",
        "x",
    );
    assert_eq!(c.chain[1], reverse("Condition", "subject", "Group"));
}

#[test]
fn reverse_chain_errors() {
    for bad in [
        "_has:Observation:patient",
        "_has:Observation",
        "_has:",
        "_has:Nope:patient:code",
        "_has:Observation:nope:code",
        "_has:Observation:code:code",
        "_has:Observation:patient:nope",
        // Observation.encounter does not refer to Patient.
        "_has:Observation:encounter:code",
    ] {
        invalid_param("Patient", bad, "x");
    }
    let message = invalid_param("Patient", "_has:Observation:encounter:code", "x");
    assert!(message.contains("does not refer to Patient"), "{message}");
}

#[test]
fn chains_are_limited() {
    let ok = "patient.organization.partof.partof.name";
    assert_eq!(criterion("Observation", ok, "x").chain.len(), MAX_HOPS);
    let too_long = "patient.organization.partof.partof.partof.name";
    rejected(
        Some("Observation"),
        &[(too_long, "x")],
        too_long,
        IssueCode::NotSupported,
    );
}
