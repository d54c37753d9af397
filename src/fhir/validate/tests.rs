use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;

/// `../shared/data` next to the crate; tests that need it are skipped when it is absent.
fn shared_data() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    dir.is_dir().then_some(dir)
}

fn issues(v: &Value) -> Vec<(String, IssueKind)> {
    validate_resource(v)
        .into_iter()
        .map(|i| (i.path, i.kind))
        .collect()
}

/// Asserts that validation yields exactly one issue, at `path` with `kind`; returns its message.
#[track_caller]
fn one_issue(v: Value, path: &str, kind: IssueKind) -> String {
    let found = validate_resource(&v);
    assert_eq!(found.len(), 1, "expected exactly one issue, got {found:#?}");
    assert_eq!(found[0].path, path, "{found:#?}");
    assert_eq!(found[0].kind, kind, "{found:#?}");
    found[0].message.clone()
}

#[track_caller]
fn valid(v: Value) {
    let found = validate_resource(&v);
    assert!(found.is_empty(), "expected no issues, got {found:#?}");
}

fn patient(extra: Value) -> Value {
    let mut p = json!({"resourceType": "Patient", "id": "p1"});
    if let (Some(p), Value::Object(extra)) = (p.as_object_mut(), extra) {
        p.extend(extra);
    }
    p
}

fn observation(extra: Value) -> Value {
    let mut o = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"}
    });
    if let (Some(o), Value::Object(extra)) = (o.as_object_mut(), extra) {
        o.extend(extra);
    }
    o
}

// ---------------------------------------------------------------- definitions / API

#[test]
fn resource_type_list() {
    let types = resource_types();
    assert_eq!(types.len(), 146);
    assert!(types.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
    for t in [
        "Bundle",
        "Parameters",
        "Binary",
        "Patient",
        "Observation",
        "QuestionnaireResponse",
    ] {
        assert!(is_resource_type(t), "{t}");
        assert!(types.iter().any(|x| x == t), "{t}");
    }
    for t in [
        "Resource",
        "DomainResource",
        "MetadataResource",
        "patient",
        "Quantity",
        "",
        "Observation.component",
    ] {
        assert!(!is_resource_type(t), "{t}");
    }
}

#[test]
fn definitions_are_consistent() {
    let d = definitions::defs();
    for td in &d.types {
        assert!(td.elements.len() <= 128, "{}", td.name);
        for el in &td.elements {
            assert!(!el.name.is_empty(), "{}", td.name);
        }
    }
    // Every resource type has the Resource base elements.
    for rt in resource_types() {
        let td = &d.types[d.resource_index[rt.as_str()] as usize];
        for name in ["id", "meta", "implicitRules", "language"] {
            assert!(td.lookup.contains_key(name), "{rt}.{name}");
        }
    }
}

// ---------------------------------------------------------------- real data

#[test]
fn synthea_small_resources_are_valid() {
    let Some(data) = shared_data() else {
        eprintln!("skipping: ../shared/data not found");
        return;
    };
    let dir = data.join("synthea/small");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("read synthea/small")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    files.sort();
    let mut count = 0;
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read ndjson");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).expect("parse ndjson line");
            let found = validate_resource(&v);
            if !found.is_empty() && failures.len() < 20 {
                failures.push((v["resourceType"].clone(), v["id"].clone(), found));
            }
            count += 1;
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    eprintln!("validated {count} Synthea resources");
    assert_eq!(count, 1880);
}

#[test]
fn us_core_testdata_is_valid() {
    let Some(data) = shared_data() else {
        eprintln!("skipping: ../shared/data not found");
        return;
    };
    let dir = data.join("us-core-testdata");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("read us-core-testdata")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut count = 0;
    for file in &files {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(file).expect("read")).expect("parse");
        // The whole document (Bundles validate their entries recursively) ...
        let found = validate_resource(&v);
        assert!(
            found.is_empty(),
            "{}: {:#?}",
            file.display(),
            &found[..found.len().min(20)]
        );
        // ... and each entry on its own, as a transaction would store it.
        if let Some(entries) = v.get("entry").and_then(Value::as_array) {
            for e in entries {
                let found = validate_resource(&e["resource"]);
                assert!(found.is_empty(), "{}: {found:#?}", e["fullUrl"]);
                count += 1;
            }
        } else {
            count += 1;
        }
    }
    eprintln!("validated {count} US Core test resources");
    assert_eq!(count, 264 + 473 + 1 + 2);
}

#[test]
fn valid_hand_written_resources() {
    valid(patient(json!({
        "meta": {"lastUpdated": "2024-01-02T03:04:05.678+01:00", "profile": ["http://example.org/p"]},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
        "active": true,
        "name": [{"family": "Doe", "given": ["Jo", "Ann"], "_given": [null, {"extension": [
            {"url": "http://example.org/e", "valueString": "x"}
        ]}]}],
        "birthDate": "1990-01",
        "_birthDate": {"extension": [{"url": "http://example.org/time", "valueDateTime": "1990-01-01T10:00:00Z"}]},
        "multipleBirthInteger": 2,
        "deceasedBoolean": false,
        "extension": [{"url": "http://example.org/nested", "extension": [
            {"url": "a", "valueCoding": {"system": "http://loinc.org", "code": "1-2"}},
            {"url": "b", "valueDecimal": 1.50}
        ]}],
        "fhir_comments": ["ignored"]
    })));
    // A primitive with only extensions (no value), and the value-less array entry.
    valid(patient(json!({
        "_gender": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]},
        "name": [{"given": [null, "B"], "_given": [{"id": "g0", "extension": [{"url": "u", "valueBoolean": true}]}, null]}]
    })));
    valid(observation(json!({
        "valueQuantity": {"value": 1e3, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"},
        "effectiveDateTime": "2020-02-29T23:59:60Z",
        "_effectiveDateTime": {"id": "x"},
        "issued": "2020-01-01T00:00:00.123-05:00",
        "component": [{"code": {"text": "c"}, "valueSampledData": {
            "origin": {"value": 0}, "period": 1.0, "dimensions": 1, "data": "1 2 3"
        }}]
    })));
    valid(json!({"resourceType": "Binary", "contentType": "text/plain", "data": "aGVsbG8="}));
    valid(json!({"resourceType": "Parameters", "parameter": [
        {"name": "a", "valueInteger": -2147483648},
        {"name": "b", "resource": {"resourceType": "Patient", "active": true}},
        {"name": "c", "part": [{"name": "d", "valueUnsignedInt": 0}]}
    ]}));
    valid(
        json!({"resourceType": "Questionnaire", "status": "draft", "item": [
            {"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "string", "item": [
                {"linkId": "1.1.1", "type": "boolean"}
            ]}]}
        ]}),
    );
}

// ---------------------------------------------------------------- resource level

#[test]
fn not_a_resource() {
    one_issue(json!([]), "", IssueKind::Invalid);
    one_issue(json!("Patient"), "", IssueKind::Invalid);
    one_issue(json!({"id": "x"}), "resourceType", IssueKind::Invalid);
    one_issue(
        json!({"resourceType": 1}),
        "resourceType",
        IssueKind::Invalid,
    );
    let msg = one_issue(
        json!({"resourceType": "Foo"}),
        "resourceType",
        IssueKind::Invalid,
    );
    assert!(msg.contains("Foo"), "{msg}");
    one_issue(
        json!({"resourceType": "DomainResource"}),
        "resourceType",
        IssueKind::Invalid,
    );
    valid(json!({"resourceType": "Patient"}));
}

#[test]
fn unknown_elements() {
    let msg = one_issue(
        patient(json!({"foo": 1})),
        "Patient.foo",
        IssueKind::Structure,
    );
    assert!(msg.contains("'foo'"), "{msg}");
    one_issue(
        patient(json!({"name": [{"family": "x", "nickname": "y"}]})),
        "Patient.name[0].nickname",
        IssueKind::Structure,
    );
    one_issue(
        patient(json!({"name": [{"family": "x", "resourceType": "HumanName"}]})),
        "Patient.name[0].resourceType",
        IssueKind::Structure,
    );
    // modifierExtension exists on backbone elements and resources only.
    one_issue(
        patient(
            json!({"maritalStatus": {"coding": [{"code": "M", "modifierExtension": [{"url": "u", "valueBoolean": true}]}]}}),
        ),
        "Patient.maritalStatus.coding[0].modifierExtension",
        IssueKind::Structure,
    );
    valid(patient(
        json!({"contact": [{"modifierExtension": [{"url": "u", "valueBoolean": true}], "gender": "male"}]}),
    ));
    // `_x` only for primitives.
    one_issue(
        patient(json!({"_name": {"id": "a"}})),
        "Patient._name",
        IssueKind::Structure,
    );
    one_issue(
        patient(json!({"_unknown": {"id": "a"}})),
        "Patient._unknown",
        IssueKind::Structure,
    );
    // a choice element is only known by its typed names
    one_issue(
        observation(json!({"value": 1})),
        "Observation.value",
        IssueKind::Structure,
    );
    one_issue(
        observation(json!({"valueFoo": 1})),
        "Observation.valueFoo",
        IssueKind::Structure,
    );
    // Observation.value[x] does not allow Reference
    one_issue(
        observation(json!({"valueReference": {"reference": "Patient/1"}})),
        "Observation.valueReference",
        IssueKind::Structure,
    );
}

// ---------------------------------------------------------------- primitives

#[test]
fn primitive_json_kinds() {
    one_issue(
        patient(json!({"active": "true"})),
        "Patient.active",
        IssueKind::Value,
    );
    one_issue(
        patient(json!({"active": 1})),
        "Patient.active",
        IssueKind::Value,
    );
    one_issue(
        patient(json!({"birthDate": 19900101})),
        "Patient.birthDate",
        IssueKind::Value,
    );
    one_issue(
        patient(json!({"multipleBirthInteger": "2"})),
        "Patient.multipleBirthInteger",
        IssueKind::Value,
    );
    one_issue(
        patient(json!({"name": [{"given": [1]}]})),
        "Patient.name[0].given[0]",
        IssueKind::Value,
    );
    one_issue(
        observation(json!({"valueQuantity": {"value": "1.5"}})),
        "Observation.valueQuantity.value",
        IssueKind::Value,
    );
    one_issue(
        observation(json!({"valueBoolean": "false"})),
        "Observation.valueBoolean",
        IssueKind::Value,
    );
}

#[test]
fn integers() {
    let int = |v: &str| {
        patient(serde_json::from_str(&format!(r#"{{"multipleBirthInteger": {v}}}"#)).unwrap())
    };
    valid(int("0"));
    valid(int("-5"));
    valid(int("2147483647"));
    one_issue(int("1.0"), "Patient.multipleBirthInteger", IssueKind::Value);
    one_issue(int("1e2"), "Patient.multipleBirthInteger", IssueKind::Value);
    one_issue(
        int("2147483648"),
        "Patient.multipleBirthInteger",
        IssueKind::Value,
    );
    one_issue(
        int("-2147483649"),
        "Patient.multipleBirthInteger",
        IssueKind::Value,
    );
    one_issue(
        int("99999999999999999999999"),
        "Patient.multipleBirthInteger",
        IssueKind::Value,
    );

    let freq = |v: i64| {
        json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "medicationCodeableConcept": {"text": "m"}, "subject": {"reference": "Patient/1"},
            "dosageInstruction": [{"timing": {"repeat": {"frequency": v}}}]})
    };
    valid(freq(1));
    one_issue(
        freq(0),
        "MedicationRequest.dosageInstruction[0].timing.repeat.frequency",
        IssueKind::Value,
    );
    let size = |v: i64| {
        json!({"resourceType": "DocumentReference", "status": "current",
            "content": [{"attachment": {"contentType": "text/plain", "size": v}}]})
    };
    valid(size(0));
    one_issue(
        size(-1),
        "DocumentReference.content[0].attachment.size",
        IssueKind::Value,
    );
}

#[test]
fn decimals() {
    for v in [
        "0",
        "-0.5",
        "1.000",
        "1e-3",
        "12345678901234567890.123456789",
    ] {
        let obs: Value = serde_json::from_str(&format!(
            r#"{{"resourceType":"Observation","status":"final","code":{{"text":"x"}},"valueQuantity":{{"value":{v}}}}}"#
        ))
        .unwrap();
        valid(obs);
    }
}

#[test]
fn strings_and_formats() {
    one_issue(
        patient(json!({"name": [{"given": ["A", ""]}]})),
        "Patient.name[0].given[1]",
        IssueKind::Value,
    );
    one_issue(
        patient(json!({"gender": ""})),
        "Patient.gender",
        IssueKind::Value,
    );
    one_issue(
        patient(json!({"birthDate": "1990-13-01"})),
        "Patient.birthDate",
        IssueKind::Value,
    );
    one_issue(
        patient(json!({"birthDate": "1990-01-01T00:00:00Z"})),
        "Patient.birthDate",
        IssueKind::Value,
    );
    one_issue(
        patient(json!({"deceasedDateTime": "2020-01-01T10:00:00"})),
        "Patient.deceasedDateTime",
        IssueKind::Value,
    );
    valid(patient(json!({"deceasedDateTime": "2020"})));
    valid(patient(
        json!({"deceasedDateTime": "2020-01-01T10:00:00+14:00"}),
    ));
    one_issue(
        observation(json!({"issued": "2020-01-01"})),
        "Observation.issued",
        IssueKind::Value,
    );
    one_issue(
        observation(json!({"valueTime": "25:00:00"})),
        "Observation.valueTime",
        IssueKind::Value,
    );
    valid(observation(json!({"valueTime": "23:59:59.5"})));
    one_issue(
        patient(json!({"gender": "fe  male"})),
        "Patient.gender",
        IssueKind::Value,
    );
    one_issue(
        patient(json!({"gender": " male"})),
        "Patient.gender",
        IssueKind::Value,
    );
    valid(patient(json!({"language": "en US"})));
    one_issue(
        patient(json!({"implicitRules": "http://x y"})),
        "Patient.implicitRules",
        IssueKind::Value,
    );
    // uri / url are only checked for whitespace
    valid(patient(
        json!({"identifier": [{"system": "urn:oid:1.2.x", "value": "1"}], "photo": [{"url": "urn:uuid:X"}]}),
    ));
    valid(json!({"resourceType": "Binary", "contentType": "a/b", "data": "aGVsbG8= \n"}));
    one_issue(
        json!({"resourceType": "Binary", "contentType": "a/b", "data": "abc"}),
        "Binary.data",
        IssueKind::Value,
    );
    one_issue(
        patient(json!({"text": {"status": "generated", "div": "plain text"}})),
        "Patient.text.div",
        IssueKind::Value,
    );
    // id of a resource
    let msg = one_issue(
        patient(json!({"id": "bad id!"})),
        "Patient.id",
        IssueKind::Value,
    );
    assert!(msg.contains("bad id!"), "{msg}");
    one_issue(
        patient(json!({"id": "a".repeat(65)})),
        "Patient.id",
        IssueKind::Value,
    );
    valid(patient(json!({"id": "A-z.0".repeat(12)})));
    // Element.id of a datatype is a plain string
    valid(patient(
        json!({"name": [{"id": "any thing!", "family": "x"}]}),
    ));
}

#[test]
fn oid_uuid_formats() {
    let ident = |system: &str| patient(json!({"identifier": [{"system": system}]}));
    valid(ident("urn:oid:2.16.840.1"));
    let vs = |url: &str| json!({"resourceType": "ValueSet", "status": "draft", "expansion": {"identifier": url, "timestamp": "2020-01-01"}});
    valid(vs("urn:uuid:0f8c2b1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"));
    // expansion.identifier is a uri; a malformed uuid is still a valid uri
    valid(vs("urn:uuid:XYZ"));
    let oid = |v: &str| {
        json!({"resourceType": "NamingSystem", "name": "n", "status": "draft", "kind": "codesystem",
        "date": "2020", "uniqueId": [{"type": "oid", "value": "x"}],
        "extension": [{"url": "u", "valueOid": v}]})
    };
    valid(oid("urn:oid:1.2.3"));
    one_issue(
        oid("1.2.3"),
        "NamingSystem.extension[0].valueOid",
        IssueKind::Value,
    );
    let uuid = |v: &str| patient(json!({"extension": [{"url": "u", "valueUuid": v}]}));
    valid(uuid("urn:uuid:0f8c2b1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"));
    one_issue(
        uuid("urn:uuid:0F8C2B1E-1c2d-4e5f-8a9b-0c1d2e3f4a5b"),
        "Patient.extension[0].valueUuid",
        IssueKind::Value,
    );
}

#[test]
fn calendar_dates() {
    let birth = |d: &str| patient(json!({"birthDate": d}));
    for ok in [
        "1960-02-29",
        "2000-02-29",
        "2019-02-28",
        "2021-04-30",
        "2021-12-31",
        "2021-02",
        "2021",
    ] {
        valid(birth(ok));
    }
    let msg = one_issue(birth("2019-02-30"), "Patient.birthDate", IssueKind::Value);
    assert!(
        msg.contains("2019-02-30") && msg.contains("February 2019"),
        "{msg}"
    );
    let msg = one_issue(birth("2021-02-29"), "Patient.birthDate", IssueKind::Value);
    assert!(msg.contains("not a leap year"), "{msg}");
    one_issue(birth("1900-02-29"), "Patient.birthDate", IssueKind::Value);
    let msg = one_issue(birth("2021-04-31"), "Patient.birthDate", IssueKind::Value);
    assert!(msg.contains("April"), "{msg}");
    let msg = one_issue(birth("2021-13"), "Patient.birthDate", IssueKind::Value);
    assert!(msg.contains("month 13"), "{msg}");
    one_issue(birth("2021-00-10"), "Patient.birthDate", IssueKind::Value);
    // in datatypes, extensions and nested resources
    one_issue(
        patient(json!({"extension": [{"url": "u", "valueDate": "2019-06-31"}]})),
        "Patient.extension[0].valueDate",
        IssueKind::Value,
    );
    one_issue(
        json!({"resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "period": {"start": "2019-11-30T10:00:00Z", "end": "2019-11-31T10:00:00Z"}}),
        "Encounter.period.end",
        IssueKind::Value,
    );
    one_issue(
        patient(json!({"contained": [{"resourceType": "Patient", "birthDate": "2023-02-29"}]})),
        "Patient.contained[0].birthDate",
        IssueKind::Value,
    );
}

#[test]
fn calendar_times() {
    let dt = |d: &str| patient(json!({"deceasedDateTime": d}));
    for ok in [
        "2020-02-29T23:59:59Z",
        "2020-01-01T00:00:00.000+14:00",
        "2020-01-01T00:00:00-14:00",
        "2020-01-01T00:00:00+05:45",
        // a leap second is accepted (as FHIR's regex does)
        "2016-12-31T23:59:60Z",
    ] {
        valid(dt(ok));
    }
    let msg = one_issue(
        dt("2020-06-31T10:00:00Z"),
        "Patient.deceasedDateTime",
        IssueKind::Value,
    );
    assert!(msg.contains("June"), "{msg}");
    let msg = one_issue(
        dt("2020-01-01T24:00:00Z"),
        "Patient.deceasedDateTime",
        IssueKind::Value,
    );
    assert!(msg.contains("hour 24"), "{msg}");
    one_issue(
        dt("2020-01-01T10:61:00Z"),
        "Patient.deceasedDateTime",
        IssueKind::Value,
    );
    one_issue(
        dt("2020-01-01T10:00:61Z"),
        "Patient.deceasedDateTime",
        IssueKind::Value,
    );
    let msg = one_issue(
        dt("2020-01-01T10:00:00+14:30"),
        "Patient.deceasedDateTime",
        IssueKind::Value,
    );
    assert!(msg.contains("+14:30"), "{msg}");
    one_issue(
        dt("2020-01-01T10:00:00-15:00"),
        "Patient.deceasedDateTime",
        IssueKind::Value,
    );
    // instant
    valid(observation(json!({"issued": "2020-02-29T12:00:00.5Z"})));
    one_issue(
        observation(json!({"issued": "2019-02-29T12:00:00Z"})),
        "Observation.issued",
        IssueKind::Value,
    );
    one_issue(
        patient(json!({"meta": {"lastUpdated": "2021-09-31T00:00:00+01:00"}})),
        "Patient.meta.lastUpdated",
        IssueKind::Value,
    );
    // time
    valid(observation(json!({"valueTime": "00:00:00"})));
    valid(observation(json!({"valueTime": "23:59:60"})));
    let msg = one_issue(
        observation(json!({"valueTime": "24:00:00"})),
        "Observation.valueTime",
        IssueKind::Value,
    );
    assert!(msg.contains("hour 24"), "{msg}");
    one_issue(
        observation(json!({"valueTime": "12:60:00"})),
        "Observation.valueTime",
        IssueKind::Value,
    );
    one_issue(
        observation(json!({"component": [{"code": {"text": "c"}, "valueTime": "10:00:99"}]})),
        "Observation.component[0].valueTime",
        IssueKind::Value,
    );
}

// ---------------------------------------------------------------- required bindings

#[test]
fn binding_definitions() {
    let d = definitions::defs();
    let binding = |ty: &str, elem: &str| {
        let td = d.types.iter().find(|t| &*t.name == ty).expect(ty);
        let el = td.elements.iter().find(|e| &*e.name == elem).expect(elem);
        el.binding.map(|b| &d.value_sets[usize::from(b)])
    };
    let gender = binding("Patient", "gender").expect("Patient.gender is bound");
    assert_eq!(
        &*gender.url,
        "http://hl7.org/fhir/ValueSet/administrative-gender"
    );
    let codes: Vec<&str> = gender.codes.iter().map(|c| &**c).collect();
    assert_eq!(codes, ["male", "female", "other", "unknown"]);
    for (ty, elem) in [
        ("Observation", "status"),
        ("Bundle", "type"),
        ("Encounter", "status"),
        ("Narrative", "status"),
        ("Quantity", "comparator"),
        ("ContactPoint", "system"),
        ("HumanName", "use"),
        ("Identifier", "use"),
        ("Address", "use"),
        ("Timing.repeat", "periodUnit"),
    ] {
        assert!(binding(ty, elem).is_some(), "{ty}.{elem}");
    }
    // not enumerable (external code systems) or not required: not checked
    for (ty, elem) in [
        ("Money", "currency"),
        ("Attachment", "contentType"),
        ("Patient", "language"),
        ("Quantity", "code"),
    ] {
        assert!(binding(ty, elem).is_none(), "{ty}.{elem}");
    }
    // only `code` elements carry bindings
    for td in &d.types {
        for el in &td.elements {
            if el.binding.is_some() {
                let child = td.lookup.get(&*el.name).expect("non-choice");
                assert!(
                    matches!(child.ty, definitions::TypeRef::Primitive(p)
                        if &*d.primitives[usize::from(p)].name == "code"),
                    "{}.{}",
                    td.name,
                    el.name
                );
            }
        }
    }
}

#[test]
fn required_bindings() {
    for g in ["male", "female", "other", "unknown"] {
        valid(patient(json!({"gender": g})));
    }
    let msg = one_issue(
        patient(json!({"gender": "Male"})),
        "Patient.gender",
        IssueKind::Value,
    );
    assert!(
        msg.contains("'Male'")
            && msg.contains("http://hl7.org/fhir/ValueSet/administrative-gender")
            && msg.contains("male, female, other, unknown"),
        "{msg}"
    );
    one_issue(
        observation(json!({"status": "done"})),
        "Observation.status",
        IssueKind::Value,
    );
    // codes nested in the code system hierarchy (corrected is a child of amended)
    valid(observation(json!({"status": "corrected"})));
    one_issue(
        json!({"resourceType": "Bundle", "type": "list"}),
        "Bundle.type",
        IssueKind::Value,
    );
    // datatypes
    one_issue(
        patient(json!({"name": [{"family": "x"}, {"use": "nick", "family": "y"}]})),
        "Patient.name[1].use",
        IssueKind::Value,
    );
    valid(patient(
        json!({"name": [{"use": "maiden", "family": "x"}], "telecom": [{"system": "phone", "use": "mobile", "value": "1"}],
        "identifier": [{"use": "official", "value": "1"}], "address": [{"use": "home", "type": "both"}]}),
    ));
    one_issue(
        patient(json!({"telecom": [{"system": "mobile", "value": "1"}]})),
        "Patient.telecom[0].system",
        IssueKind::Value,
    );
    one_issue(
        patient(json!({"identifier": [{"use": "primary", "value": "1"}]})),
        "Patient.identifier[0].use",
        IssueKind::Value,
    );
    one_issue(
        patient(json!({"address": [{"use": "house", "city": "x"}]})),
        "Patient.address[0].use",
        IssueKind::Value,
    );
    one_issue(
        patient(
            json!({"text": {"status": "auto", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}}),
        ),
        "Patient.text.status",
        IssueKind::Value,
    );
    valid(observation(
        json!({"valueQuantity": {"value": 1, "comparator": "<="}}),
    ));
    one_issue(
        observation(json!({"valueQuantity": {"value": 1, "comparator": "=<"}})),
        "Observation.valueQuantity.comparator",
        IssueKind::Value,
    );
    // a repeating code element
    let allergy = |cats: Value| json!({"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/1"}, "category": cats});
    valid(allergy(json!(["food", "medication"])));
    one_issue(
        allergy(json!(["food", "drug"])),
        "AllergyIntolerance.category[1]",
        IssueKind::Value,
    );
    // value sets over several code systems, and concepts listed from an external one (UCUM)
    let timing = |repeat: Value| {
        json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "medicationCodeableConcept": {"text": "m"}, "subject": {"reference": "Patient/1"},
            "dosageInstruction": [{"timing": {"repeat": repeat}}]})
    };
    valid(timing(
        json!({"period": 1, "periodUnit": "d", "when": ["HS", "MORN"]}),
    ));
    one_issue(
        timing(json!({"period": 1, "periodUnit": "day"})),
        "MedicationRequest.dosageInstruction[0].timing.repeat.periodUnit",
        IssueKind::Value,
    );
    one_issue(
        timing(json!({"when": ["NOON", "LUNCH"]})),
        "MedicationRequest.dosageInstruction[0].timing.repeat.when[1]",
        IssueKind::Value,
    );
    // large value sets: the message lists a few codes and the count
    let msg = one_issue(
        json!({"resourceType": "Questionnaire", "status": "draft", "subjectType": ["Patient", "Person", "Human"]}),
        "Questionnaire.subjectType[2]",
        IssueKind::Value,
    );
    assert!(
        msg.contains("resource-types") && msg.contains("codes)"),
        "{msg}"
    );
    // embedded resources
    assert_eq!(
        issues(
            &json!({"resourceType": "Bundle", "type": "collection", "entry": [
                {"resource": {"resourceType": "Patient", "gender": "m"}},
                {"resource": {"resourceType": "OperationOutcome", "issue": [{"severity": "fatal", "code": "too-long"}]}},
                {"resource": {"resourceType": "OperationOutcome", "issue": [{"severity": "bad", "code": "structure"}]}}
            ]})
        ),
        vec![
            (
                "Bundle.entry[0].resource.gender".to_owned(),
                IssueKind::Value
            ),
            (
                "Bundle.entry[2].resource.issue[0].severity".to_owned(),
                IssueKind::Value
            ),
        ]
    );
    // only a format problem is reported for a malformed code
    one_issue(
        patient(json!({"gender": "ma le "})),
        "Patient.gender",
        IssueKind::Value,
    );
    // not checked: bindings that are not required, value sets that cannot be enumerated,
    // codes in Coding / CodeableConcept, extension values, value-less primitives
    valid(patient(json!({"language": "xx-YY"})));
    valid(
        json!({"resourceType": "Account", "status": "active", "extension": [
            {"url": "u", "valueMoney": {"value": 1, "currency": "XYZ"}}
        ]}),
    );
    valid(patient(json!({"photo": [{"contentType": "foo/bar"}]})));
    valid(patient(
        json!({"maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "nope"}]}}),
    ));
    valid(patient(
        json!({"extension": [{"url": "u", "valueCode": "anything"}]}),
    ));
    valid(patient(
        json!({"_gender": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}}),
    ));
}

// ---------------------------------------------------------------- primitive extensions

#[test]
fn primitive_extensions() {
    // bad content of `_birthDate`
    one_issue(
        patient(json!({"_birthDate": {"foo": 1}})),
        "Patient.birthDate.foo",
        IssueKind::Structure,
    );
    one_issue(
        patient(json!({"birthDate": "2000", "_birthDate": {"extension": [{"valueString": "x"}]}})),
        "Patient.birthDate.extension[0].url",
        IssueKind::Required,
    );
    one_issue(
        patient(json!({"_birthDate": "x"})),
        "Patient.birthDate",
        IssueKind::Structure,
    );
    one_issue(
        patient(json!({"_birthDate": [{"id": "a"}]})),
        "Patient.birthDate",
        IssueKind::Structure,
    );
    one_issue(
        patient(json!({"_birthDate": {}})),
        "Patient.birthDate",
        IssueKind::Structure,
    );
    one_issue(
        patient(json!({"_birthDate": {"id": "a"}})),
        "Patient.birthDate",
        IssueKind::Structure,
    );
    valid(patient(
        json!({"birthDate": "2000", "_birthDate": {"id": "a"}}),
    ));
    // parallel arrays
    one_issue(
        patient(json!({"name": [{"given": ["a", "b"], "_given": [null]}]})),
        "Patient.name[0].given",
        IssueKind::Structure,
    );
    one_issue(
        patient(json!({"name": [{"given": ["a", null]}]})),
        "Patient.name[0].given[1]",
        IssueKind::Structure,
    );
    one_issue(
        patient(
            json!({"name": [{"given": ["a", null], "_given": [{"id": "x", "extension": [{"url": "u", "valueCode": "c"}]}, null]}]}),
        ),
        "Patient.name[0].given[1]",
        IssueKind::Structure,
    );
    one_issue(
        patient(
            json!({"name": [{"_given": [null, {"extension": [{"url": "u", "valueCode": "c"}]}]}]}),
        ),
        "Patient.name[0].given[0]",
        IssueKind::Structure,
    );
    one_issue(
        patient(json!({"name": [{"given": ["a"], "_given": {"id": "x"}}]})),
        "Patient.name[0].given",
        IssueKind::Structure,
    );
    one_issue(
        patient(
            json!({"name": [{"given": ["a"], "_given": [{"extension": [{"url": "u", "valueCode": 1}]}]}]}),
        ),
        "Patient.name[0].given[0].extension[0].valueCode",
        IssueKind::Value,
    );
}

// ---------------------------------------------------------------- choice types

#[test]
fn choice_types() {
    let msg = one_issue(
        observation(json!({"valueQuantity": {"value": 1}, "valueString": "x"})),
        "Observation.valueString",
        IssueKind::Structure,
    );
    assert!(msg.contains("value[x]"), "{msg}");
    one_issue(
        observation(
            json!({"valueString": "x", "_valueBoolean": {"extension": [{"url": "u", "valueCode": "c"}]}}),
        ),
        "Observation._valueBoolean",
        IssueKind::Structure,
    );
    valid(observation(
        json!({"_valueString": {"id": "a", "extension": [{"url": "u", "valueString": "v"}]}, "valueString": "x"}),
    ));
    one_issue(
        observation(json!({"valueQuantity": [{"value": 1}]})),
        "Observation.valueQuantity",
        IssueKind::Structure,
    );
    one_issue(
        observation(json!({"valueQuantity": "1 mg"})),
        "Observation.valueQuantity",
        IssueKind::Structure,
    );
}

// ---------------------------------------------------------------- cardinality

#[test]
fn cardinality() {
    let msg = one_issue(
        patient(json!({"birthDate": ["2000"]})),
        "Patient.birthDate",
        IssueKind::Structure,
    );
    assert!(msg.contains("birthDate"), "{msg}");
    one_issue(
        patient(json!({"name": {"family": "x"}})),
        "Patient.name",
        IssueKind::Structure,
    );
    one_issue(
        patient(json!({"name": []})),
        "Patient.name",
        IssueKind::Structure,
    );
    one_issue(
        patient(json!({"name": [null]})),
        "Patient.name[0]",
        IssueKind::Structure,
    );
    one_issue(
        patient(json!({"birthDate": null})),
        "Patient.birthDate",
        IssueKind::Structure,
    );
    one_issue(
        patient(json!({"maritalStatus": {}})),
        "Patient.maritalStatus",
        IssueKind::Structure,
    );
    one_issue(
        patient(json!({"maritalStatus": {"id": "x"}})),
        "Patient.maritalStatus",
        IssueKind::Structure,
    );
    // a repeating element given as single value: reported, and the value still validated
    let found = issues(&patient(json!({"name": {"family": 1}})));
    assert_eq!(
        found,
        vec![
            ("Patient.name".to_owned(), IssueKind::Structure),
            ("Patient.name.family".to_owned(), IssueKind::Value)
        ]
    );
}

#[test]
fn required_elements() {
    let found = validate_resource(&json!({"resourceType": "Observation"}));
    let got: Vec<_> = found.iter().map(|i| (i.path.as_str(), i.kind)).collect();
    assert_eq!(
        got,
        vec![
            ("Observation.status", IssueKind::Required),
            ("Observation.code", IssueKind::Required)
        ]
    );
    assert!(found[0].message.contains("status"), "{}", found[0].message);

    one_issue(
        json!({"resourceType": "Bundle"}),
        "Bundle.type",
        IssueKind::Required,
    );
    one_issue(
        observation(json!({"component": [{"valueString": "x"}]})),
        "Observation.component[0].code",
        IssueKind::Required,
    );
    one_issue(
        patient(json!({"text": {"div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}})),
        "Patient.text.status",
        IssueKind::Required,
    );
    one_issue(
        patient(json!({"link": [{"type": "seealso"}]})),
        "Patient.link[0].other",
        IssueKind::Required,
    );
    // Reference, Coding, Quantity have no required elements
    valid(observation(
        json!({"subject": {"display": "x"}, "valueQuantity": {"unit": "x"},
        "category": [{"coding": [{"display": "d"}]}]}),
    ));
    // presence through the `_` companion counts
    valid(json!({
        "resourceType": "Observation",
        "_status": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]},
        "code": {"text": "x"}
    }));
    // recursive backbone through contentReference
    one_issue(
        json!({"resourceType": "Questionnaire", "status": "draft", "item": [
            {"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "item": [{"type": "display", "linkId": "x"}]}]}
        ]}),
        "Questionnaire.item[0].item[0].type",
        IssueKind::Required,
    );
}

// ---------------------------------------------------------------- nested resources

#[test]
fn nested_resources() {
    one_issue(
        patient(json!({"contained": [{"resourceType": "Patient", "birthDate": "x"}]})),
        "Patient.contained[0].birthDate",
        IssueKind::Value,
    );
    one_issue(
        patient(json!({"contained": [{"id": "x"}]})),
        "Patient.contained[0].resourceType",
        IssueKind::Invalid,
    );
    one_issue(
        patient(json!({"contained": [{"resourceType": "Nope"}]})),
        "Patient.contained[0].resourceType",
        IssueKind::Invalid,
    );
    one_issue(
        patient(json!({"contained": ["x"]})),
        "Patient.contained[0]",
        IssueKind::Structure,
    );
    one_issue(
        patient(json!({"contained": [{"resourceType": "Organization", "id": "bad id"}]})),
        "Patient.contained[0].id",
        IssueKind::Value,
    );
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}},
        {"resource": {"resourceType": "Patient", "birthDate": "yesterday"}},
        {"resource": {"resourceType": "Observation", "code": {"text": "x"}}}
    ]});
    assert_eq!(
        issues(&bundle),
        vec![
            (
                "Bundle.entry[2].resource.birthDate".to_owned(),
                IssueKind::Value
            ),
            (
                "Bundle.entry[3].resource.status".to_owned(),
                IssueKind::Required
            ),
        ]
    );
    one_issue(
        json!({"resourceType": "Parameters", "parameter": [{"name": "p", "resource": {"resourceType": "Patient", "foo": 1}}]}),
        "Parameters.parameter[0].resource.foo",
        IssueKind::Structure,
    );
    one_issue(
        json!({"resourceType": "Bundle", "type": "batch-response", "entry": [
            {"response": {"status": "400", "outcome": {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}}}
        ]}),
        "Bundle.entry[0].response.outcome.issue[0].code",
        IssueKind::Required,
    );
    // a bundle inside a bundle
    one_issue(
        json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource":
            {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Patient", "active": "yes"}}]}
        }]}),
        "Bundle.entry[0].resource.entry[0].resource.active",
        IssueKind::Value,
    );
}

// ---------------------------------------------------------------- extensions

#[test]
fn extensions() {
    one_issue(
        patient(json!({"extension": [{"valueString": "x"}]})),
        "Patient.extension[0].url",
        IssueKind::Required,
    );
    let msg = one_issue(
        patient(
            json!({"extension": [{"url": "u", "valueString": "x", "extension": [{"url": "v", "valueCode": "c"}]}]}),
        ),
        "Patient.extension[0]",
        IssueKind::Invalid,
    );
    assert!(msg.contains("not both"), "{msg}");
    one_issue(
        patient(json!({"extension": [{"url": "u"}]})),
        "Patient.extension[0]",
        IssueKind::Invalid,
    );
    one_issue(
        patient(json!({"extension": [{"url": "u", "extension": [{"url": "v"}]}]})),
        "Patient.extension[0].extension[0]",
        IssueKind::Invalid,
    );
    one_issue(
        patient(json!({"extension": [{"url": "u", "valueFoo": 1}]})),
        "Patient.extension[0].valueFoo",
        IssueKind::Structure,
    );
    one_issue(
        patient(json!({"extension": [{"url": "", "valueCode": "x"}]})),
        "Patient.extension[0].url",
        IssueKind::Value,
    );
    one_issue(
        patient(
            json!({"modifierExtension": [{"url": "u", "valueReference": {"reference": "Patient/1"}, "valueString": "x"}]}),
        ),
        "Patient.modifierExtension[0].valueString",
        IssueKind::Structure,
    );
    // extensions on datatypes
    one_issue(
        patient(json!({"address": [{"extension": [{"url": "u", "valueBoolean": "true"}]}]})),
        "Patient.address[0].extension[0].valueBoolean",
        IssueKind::Value,
    );
}

// ---------------------------------------------------------------- robustness

#[test]
fn deep_nesting_is_capped() {
    // QuestionnaireResponse.item.item... nested far beyond the limit
    let mut item = json!({"linkId": "leaf"});
    for i in 0..200 {
        item = json!({"linkId": i.to_string(), "item": [item]});
    }
    let qr =
        json!({"resourceType": "QuestionnaireResponse", "status": "completed", "item": [item]});
    let found = validate_resource(&qr);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, IssueKind::Invalid);
    assert!(found[0].message.contains("depth"), "{}", found[0].message);
    assert!(
        found[0]
            .path
            .starts_with("QuestionnaireResponse.item[0].item[0]")
    );

    // deep garbage under an unknown element is not descended into
    let mut junk = json!(1);
    for _ in 0..150 {
        junk = json!({"a": [junk]});
    }
    one_issue(
        patient(json!({"junk": junk})),
        "Patient.junk",
        IssueKind::Structure,
    );
    // a deep extension tree
    let mut ext = json!({"url": "u", "valueString": "x"});
    for _ in 0..200 {
        ext = json!({"url": "u", "extension": [ext]});
    }
    let found = validate_resource(&patient(json!({"extension": [ext]})));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, IssueKind::Invalid);
}

#[test]
fn issue_count_is_capped() {
    let mut p = serde_json::Map::new();
    p.insert("resourceType".into(), json!("Patient"));
    for i in 0..5000 {
        p.insert(format!("x{i}"), json!(i));
    }
    let found = validate_resource(&Value::Object(p));
    assert_eq!(found.len(), walker::MAX_ISSUES + 1);
    assert_eq!(found.last().map(|i| i.kind), Some(IssueKind::Invalid));
}

#[test]
fn never_panics_on_odd_input() {
    let odd = [
        json!(null),
        json!({"resourceType": "Patient", "_": 1, "": 2, "_id": {"extension": []}}),
        json!({"resourceType": "Patient", "name": [[], {}, null, 1, "x", [null]]}),
        json!({"resourceType": "Patient", "contained": [{"resourceType": "Patient", "contained": [{"resourceType": "Bundle"}]}]}),
        json!({"resourceType": "Observation", "valueQuantity": null, "_valueQuantity": null, "component": [null]}),
        json!({"resourceType": "Patient", "name": [{"given": [null, null], "_given": [null, null, null]}]}),
        json!({"resourceType": "Patient", "_birthDate": null, "_active": [], "_gender": [null]}),
        json!({"resourceType": "Patient", "text": {"status": "generated", "div": "\u{0}"}}),
        json!({"resourceType": "Patient", "id": "é", "birthDate": "２０２０"}),
    ];
    for v in &odd {
        let _ = validate_resource(v);
    }
    // fuzz-ish: mutate a real-looking resource by replacing each value with odd values
    let base = patient(json!({
        "name": [{"given": ["a"], "family": "b"}],
        "extension": [{"url": "u", "valueString": "x"}],
        "contact": [{"name": {"text": "c"}}],
    }));
    let replacements = [
        json!(null),
        json!([]),
        json!({}),
        json!(0),
        json!(""),
        json!([null]),
        json!({"id": 1}),
    ];
    fn paths(v: &Value, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(prefix.clone());
        match v {
            Value::Object(o) => o.iter().for_each(|(k, c)| {
                let mut p = prefix.clone();
                p.push(k.clone());
                paths(c, p, out);
            }),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| {
                let mut p = prefix.clone();
                p.push(i.to_string());
                paths(c, p, out);
            }),
            _ => {}
        }
    }
    let mut all = Vec::new();
    paths(&base, Vec::new(), &mut all);
    for p in &all {
        for r in &replacements {
            let mut v = base.clone();
            let mut slot = &mut v;
            for seg in p {
                slot = match slot {
                    Value::Object(o) => o.get_mut(seg).unwrap(),
                    Value::Array(a) => &mut a[seg.parse::<usize>().unwrap()],
                    _ => unreachable!(),
                };
            }
            *slot = r.clone();
            let _ = validate_resource(&v);
        }
    }
}
