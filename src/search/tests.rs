//! Extraction tests on hand-written resources and on the shared sample data.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

use super::*;

fn values(resource: &Value, code: &str) -> Vec<IndexValue> {
    extract(resource)
        .into_iter()
        .filter(|e| e.param == code)
        .map(|e| e.value)
        .collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn token(system: Option<&str>, code: Option<&str>, display: Option<&str>) -> IndexValue {
    IndexValue::Token {
        system: system.map(Into::into),
        code: code.map(Into::into),
        display: display.map(Into::into),
        identifier_type: None,
    }
}

fn reference(ty: Option<&str>, id: Option<&str>, url: Option<&str>) -> IndexValue {
    IndexValue::Reference {
        target_type: ty.map(Into::into),
        target_id: id.map(Into::into),
        url: url.map(Into::into),
        identifier: None,
    }
}

fn date(text: &str) -> IndexValue {
    let (start, end) = date_range(text).unwrap();
    IndexValue::Date { start, end }
}

fn quantity(v: &IndexValue) -> (f64, f64, f64, Option<&str>, Option<&str>, Option<&str>) {
    match v {
        IndexValue::Quantity {
            value,
            low,
            high,
            system,
            code,
            unit,
        } => (
            *value,
            *low,
            *high,
            system.as_deref(),
            code.as_deref(),
            unit.as_deref(),
        ),
        other => panic!("not a quantity: {other:?}"),
    }
}

fn observation() -> Value {
    let mut o = json!({
        "resourceType": "Observation",
        "id": "o1",
        "meta": {"lastUpdated": "2024-01-02T03:04:05.678Z", "tag": [{"system": "t", "code": "x"}],
                 "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-blood-pressure"]},
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "BP panel"},
                            {"system": "http://snomed.info/sct", "code": "75367002"}],
                 "text": "Blood pressure"},
        "subject": {"reference": "Patient/1"},
        "performer": [{"reference": "Patient/2"}, {"reference": "Practitioner/p"}],
        "effectiveDateTime": "2024-01-02T10:30:00+02:00",
        "valueQuantity": {"value": 1.50, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
             "valueQuantity": {"value": 120, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
             "valueQuantity": {"value": 80, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
        ]
    });
    // `json!` would turn 1.50 into 1.5: parse the text to keep its precision.
    o["valueQuantity"]["value"] = serde_json::from_str("1.50").unwrap();
    o
}

#[test]
fn token_from_codeable_concept_with_two_codings() {
    assert_eq!(
        values(&observation(), "code"),
        [
            token(Some("http://loinc.org"), Some("85354-9"), Some("BP panel")),
            token(Some("http://snomed.info/sct"), Some("75367002"), None),
            token(None, None, Some("Blood pressure")),
        ]
    );
    assert_eq!(
        values(&observation(), "status"),
        [token(None, Some("final"), None)]
    );
    assert_eq!(
        values(&observation(), "_id"),
        [token(None, Some("o1"), None)]
    );
    assert_eq!(
        values(&observation(), "_tag"),
        [token(Some("t"), Some("x"), None)]
    );
    assert_eq!(
        values(&observation(), "_profile"),
        [IndexValue::Uri(
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-blood-pressure".into()
        )]
    );
    assert_eq!(
        values(&observation(), "_lastUpdated"),
        [date("2024-01-02T03:04:05.678Z")]
    );
}

#[test]
fn identifier_with_type_and_contact_points() {
    let p = json!({"resourceType": "Patient", "id": "p",
        "identifier": [{"system": "http://hospital/mrn", "value": "123",
                        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}},
                       {"value": "no-system"}],
        "telecom": [{"system": "phone", "value": "555-1234"}, {"system": "email", "value": "a@b.c"}],
        "active": true});
    assert_eq!(
        values(&p, "identifier"),
        [
            IndexValue::Token {
                system: s("http://hospital/mrn"),
                code: s("123"),
                display: None,
                identifier_type: Some((
                    s("http://terminology.hl7.org/CodeSystem/v2-0203"),
                    "MR".into()
                )),
            },
            token(None, Some("no-system"), None),
        ]
    );
    assert_eq!(
        values(&p, "phone"),
        [token(Some("phone"), Some("555-1234"), None)]
    );
    assert_eq!(
        values(&p, "email"),
        [token(Some("email"), Some("a@b.c"), None)]
    );
    assert_eq!(
        values(&p, "telecom"),
        [
            token(Some("phone"), Some("555-1234"), None),
            token(Some("email"), Some("a@b.c"), None)
        ]
    );
    assert_eq!(values(&p, "active"), [token(None, Some("true"), None)]);
    // `Patient.deceased.exists() and Patient.deceased != false`
    assert_eq!(values(&p, "deceased"), [token(None, Some("false"), None)]);
    let dead = json!({"resourceType": "Patient", "deceasedDateTime": "2020-01-01"});
    assert_eq!(values(&dead, "deceased"), [token(None, Some("true"), None)]);
    assert_eq!(values(&dead, "death-date"), [date("2020-01-01")]);
}

#[test]
fn strings_are_normalized_and_names_split() {
    let p = json!({"resourceType": "Patient",
        "name": [{"use": "official", "family": "Zoë", "given": ["Anne  Marie", "Łucja"], "prefix": ["Dr."]}],
        "address": [{"line": ["1 Rue de l'Église"], "city": "Montréal", "postalCode": "H2X 1Y4", "country": "CA"}]});
    let string = |n: &str, e: &str| IndexValue::String {
        normalized: n.into(),
        exact: e.into(),
    };
    assert_eq!(values(&p, "family"), [string("zoe", "Zoë")]);
    assert_eq!(
        values(&p, "name"),
        [
            string("zoe", "Zoë"),
            string("anne marie", "Anne  Marie"),
            string("lucja", "Łucja"),
            string("dr.", "Dr."),
        ]
    );
    assert_eq!(values(&p, "address-city"), [string("montreal", "Montréal")]);
    assert_eq!(values(&p, "address").len(), 4);
}

#[test]
fn dates_at_every_precision_with_offsets_and_periods() {
    let year = json!({"resourceType": "Patient", "birthDate": "1990"});
    assert_eq!(values(&year, "birthdate"), [date("1990")]);
    let IndexValue::Date { start, end } = values(&year, "birthdate")[0] else {
        unreachable!()
    };
    assert_eq!((start, end), (631_152_000_000_000, 662_688_000_000_000));
    let month = json!({"resourceType": "Patient", "birthDate": "1990-05"});
    assert_eq!(values(&month, "birthdate"), [date("1990-05")]);
    let day = json!({"resourceType": "Patient", "birthDate": "1990-05-17"});
    assert_eq!(values(&day, "birthdate"), [date("1990-05-17")]);

    // 10:30 at +02:00 is 08:30 UTC, to the second.
    let IndexValue::Date { start, end } = values(&observation(), "date")[0] else {
        unreachable!()
    };
    assert_eq!((start, end), (1_704_184_200_000_000, 1_704_184_201_000_000));

    let encounter = |period: Value| json!({"resourceType": "Encounter", "period": period});
    assert_eq!(
        values(
            &encounter(json!({"start": "2020-01-01", "end": "2020-01-03T12:00:00Z"})),
            "date"
        ),
        [IndexValue::Date {
            start: date_range("2020-01-01").unwrap().0,
            end: date_range("2020-01-03T12:00:00Z").unwrap().1,
        }]
    );
    assert_eq!(
        values(&encounter(json!({"start": "2020-01-01"})), "date"),
        [IndexValue::Date {
            start: date_range("2020-01-01").unwrap().0,
            end: i64::MAX
        }]
    );
    assert_eq!(
        values(&encounter(json!({"end": "2020"})), "date"),
        [IndexValue::Date {
            start: i64::MIN,
            end: date_range("2020").unwrap().1
        }]
    );
    assert!(values(&encounter(json!({"start": "not a date"})), "date").is_empty());

    let timing = json!({"resourceType": "CarePlan", "activity": [{"detail": {"scheduledTiming":
        {"event": ["2021-03-01", "2021-01-05T10:00:00Z"]}}}]});
    assert_eq!(
        values(&timing, "activity-date"),
        [IndexValue::Date {
            start: date_range("2021-01-05T10:00:00Z").unwrap().0,
            end: date_range("2021-03-01").unwrap().1,
        }]
    );
}

#[test]
fn reference_forms() {
    let o = json!({"resourceType": "Observation",
        "subject": {"reference": "Patient/1/_history/2"},
        "performer": [{"reference": "https://other.example/fhir/Practitioner/9"},
                      {"reference": "#contained"},
                      {"reference": "Organization?identifier=http://x|1"},
                      {"identifier": {"system": "http://npi", "value": "42"}, "type": "Practitioner"},
                      {"display": "just a name"}],
        "hasMember": [{"reference": "urn:uuid:0b5d0c4e-7f77-4ab4-8a06-3f6c8c8e6d0b"}]});
    assert_eq!(
        values(&o, "subject"),
        [reference(Some("Patient"), Some("1"), None)]
    );
    assert_eq!(
        values(&o, "patient"),
        [reference(Some("Patient"), Some("1"), None)]
    );
    assert_eq!(
        values(&o, "performer"),
        [
            reference(
                Some("Practitioner"),
                Some("9"),
                Some("https://other.example/fhir/Practitioner/9")
            ),
            reference(Some("Organization"), None, None),
            IndexValue::Reference {
                target_type: s("Practitioner"),
                target_id: None,
                url: None,
                identifier: Some((s("http://npi"), "42".into())),
            },
        ]
    );
    assert_eq!(
        values(&o, "has-member"),
        [reference(
            None,
            None,
            Some("urn:uuid:0b5d0c4e-7f77-4ab4-8a06-3f6c8c8e6d0b")
        )]
    );
    // `Bundle.entry[0].resource` is an embedded resource, not a reference: no value.
    let document = json!({"resourceType": "Bundle", "type": "document",
                          "entry": [{"resource": {"resourceType": "Composition", "id": "c"}}]});
    assert!(values(&document, "composition").is_empty());
    // A canonical element of a reference parameter.
    let qr = json!({"resourceType": "QuestionnaireResponse",
                    "questionnaire": "http://example.org/Questionnaire/phq9|1.0"});
    assert_eq!(
        values(&qr, "questionnaire"),
        [reference(
            Some("Questionnaire"),
            Some("phq9"),
            Some("http://example.org/Questionnaire/phq9|1.0")
        )]
    );
}

#[test]
fn where_resolve_is_patient() {
    let by_group = json!({"resourceType": "Observation", "subject": {"reference": "Group/g"}});
    assert_eq!(
        values(&by_group, "subject"),
        [reference(Some("Group"), Some("g"), None)]
    );
    assert!(values(&by_group, "patient").is_empty());
    let absolute =
        json!({"resourceType": "Condition", "subject": {"reference": "http://x/fhir/Patient/7"}});
    assert_eq!(
        values(&absolute, "patient"),
        [reference(
            Some("Patient"),
            Some("7"),
            Some("http://x/fhir/Patient/7")
        )]
    );
}

#[test]
fn quantities_keep_their_precision() {
    let q = values(&observation(), "value-quantity");
    assert_eq!(q.len(), 1);
    let (value, low, high, system, code, unit) = quantity(&q[0]);
    assert_eq!(value, 1.5);
    assert!(
        (low - 1.495).abs() < 1e-12 && (high - 1.505).abs() < 1e-12,
        "{low} {high}"
    );
    assert_eq!(
        (system, code, unit),
        (
            Some("http://unitsofmeasure.org"),
            Some("mmol/L"),
            Some("mmol/L")
        )
    );
    let q = values(&observation(), "component-value-quantity");
    assert_eq!(q.len(), 2);
    let (value, low, high, ..) = quantity(&q[0]);
    assert_eq!((value, low, high), (120.0, 119.5, 120.5));

    let claim =
        json!({"resourceType": "ChargeItem", "priceOverride": {"value": 10.25, "currency": "USD"}});
    let q = values(&claim, "price-override");
    let (value, _, _, system, code, _) = quantity(&q[0]);
    assert_eq!(
        (value, system, code),
        (10.25, Some("urn:iso:std:iso:4217"), Some("USD"))
    );

    let risk = json!({"resourceType": "RiskAssessment", "prediction": [{"probabilityDecimal": 0.25},
        {"probabilityRange": {"low": {"value": 0.1}, "high": {"value": 0.3}}}]});
    let n = values(&risk, "probability");
    assert_eq!(
        n[0],
        IndexValue::Number {
            value: 0.25,
            low: 0.245,
            high: 0.255
        }
    );
    assert_eq!(
        n[1],
        IndexValue::Number {
            value: 0.1,
            low: 0.1,
            high: 0.3
        }
    );
}

#[test]
fn choice_types() {
    let c = json!({"resourceType": "Condition", "onsetPeriod": {"start": "2019-06"},
                   "abatementAge": {"value": 42, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"}});
    assert_eq!(
        values(&c, "onset-date"),
        [IndexValue::Date {
            start: date_range("2019-06").unwrap().0,
            end: i64::MAX
        }]
    );
    assert!(values(&c, "abatement-date").is_empty());
    let (value, ..) = quantity(&values(&c, "abatement-age")[0]);
    assert_eq!(value, 42.0);
    let c = json!({"resourceType": "Condition", "onsetDateTime": "2019-06-01T00:00:00Z", "onsetString": "x"});
    assert_eq!(values(&c, "onset-date"), [date("2019-06-01T00:00:00Z")]);
    let o = json!({"resourceType": "Observation", "valueString": "Positive  Result"});
    assert_eq!(
        values(&o, "value-string"),
        [IndexValue::String {
            normalized: "positive result".into(),
            exact: "Positive  Result".into()
        }]
    );
    assert!(values(&o, "value-quantity").is_empty());
}

#[test]
fn us_core_extensions() {
    let p = json!({"resourceType": "Patient", "id": "85", "extension": [
        {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", "extension": [
            {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3", "display": "White"}},
            {"url": "detailed", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2108-9"}},
            {"url": "text", "valueString": "White"}]},
        {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity", "extension": [
            {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2186-5"}}]},
        {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-genderIdentity",
         "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "446141000124107"}]}}]});
    assert_eq!(
        values(&p, "race"),
        [
            token(None, Some("2106-3"), None),
            token(None, Some("2108-9"), None)
        ]
    );
    assert_eq!(values(&p, "ethnicity"), [token(None, Some("2186-5"), None)]);
    assert_eq!(
        values(&p, "gender-identity"),
        [token(None, Some("446141000124107"), None)]
    );
    let c = json!({"resourceType": "Condition", "extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/condition-assertedDate", "valueDateTime": "2021-07"}]});
    assert_eq!(values(&c, "asserted-date"), [date("2021-07")]);
}

/// `(row param, codes or quantity values)` of each component of each tuple of `code`.
fn tuples(resource: &Value, code: &str) -> Vec<Vec<(&'static str, Vec<String>)>> {
    let text = |v: &IndexValue| match v {
        IndexValue::Token { code, .. } => code.clone().unwrap(),
        other => quantity(other).0.to_string(),
    };
    values(resource, code)
        .iter()
        .map(|v| match v {
            IndexValue::Composite(components) => components
                .iter()
                .map(|c| (c.param, c.values.iter().map(text).collect()))
                .collect(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn composites() {
    let o = observation();
    // One tuple: the Observation, with both codings and its value (the text has no code).
    assert_eq!(
        tuples(&o, "code-value-quantity"),
        [[
            (
                "code-value-quantity$0",
                vec!["85354-9".into(), "75367002".into()]
            ),
            ("code-value-quantity$1", vec!["1.5".into()]),
        ]]
    );
    let IndexValue::Composite(parts) = &values(&o, "code-value-quantity")[0] else {
        panic!()
    };
    assert_eq!(
        parts[0].values[0],
        token(Some("http://loinc.org"), Some("85354-9"), Some("BP panel"))
    );
    // Each component is a tuple of its own code and value.
    assert_eq!(
        tuples(&o, "component-code-value-quantity"),
        [
            [
                ("component-code-value-quantity$0", vec!["8480-6".into()]),
                ("component-code-value-quantity$1", vec!["120".into()]),
            ],
            [
                ("component-code-value-quantity$0", vec!["8462-4".into()]),
                ("component-code-value-quantity$1", vec!["80".into()]),
            ],
        ]
    );
    // combo-*: the Observation's tuple and the components'.
    assert_eq!(values(&o, "combo-code-value-quantity").len(), 3);
    // No item has a value for every component.
    assert!(values(&o, "code-value-concept").is_empty());
}

#[test]
fn compartments_from_stored_bytes_match_the_parsed_resource() {
    let resources = [
        observation(),
        json!({"resourceType": "Patient", "id": "85",
            "link": [{"other": {"reference": "Patient/86"}, "type": "seealso"}]}),
        json!({"resourceType": "Encounter", "id": "e", "text": {"div": "<div>x</div>"},
            "subject": {"reference": "Patient/7"},
            "participant": [{"individual": {"reference": "Practitioner/1"}}]}),
        json!({"resourceType": "Provenance", "target": [{"reference": "Patient/3"}],
            "agent": [{"who": {"reference": "Patient/4"}}]}),
        json!({"resourceType": "Organization", "id": "o"}),
        json!({"resourceType": "Observation", "subject": {"reference": "Group/g"},
            "performer": [{"reference": "Patient/5"}]}),
    ];
    for resource in resources {
        let bytes = serde_json::to_vec(&resource).unwrap();
        let resource_type = resource["resourceType"].as_str().unwrap();
        assert!(
            extract::compartment_elements(resource_type, &bytes).is_some(),
            "{resource}"
        );
        assert_eq!(
            crate::search::patient_compartments_in(resource_type, &bytes),
            patient_compartments(&resource),
            "{resource}"
        );
    }
    assert!(crate::search::patient_compartments_in("Observation", b"not json").is_empty());
    assert!(crate::search::patient_compartments_in("Observation", b"{} trailing").is_empty());
}

#[test]
fn compartments() {
    let o = observation();
    let mut ids = patient_compartments(&o);
    ids.sort();
    assert_eq!(ids, ["1", "2"]);
    let p = json!({"resourceType": "Patient", "id": "85",
        "link": [{"other": {"reference": "Patient/86"}, "type": "seealso"},
                 {"other": {"reference": "RelatedPerson/r"}, "type": "seealso"}]});
    assert_eq!(patient_compartments(&p), ["85", "86"]);
    let absolute =
        json!({"resourceType": "Observation", "subject": {"reference": "http://x/Patient/1"}});
    assert!(patient_compartments(&absolute).is_empty());
    let practitioner = json!({"resourceType": "Practitioner", "id": "x"});
    assert!(patient_compartments(&practitioner).is_empty());
}

#[test]
fn repeated_values_are_indexed_once() {
    // Few values (scanned) and many (hashed).
    for n in [3, 100] {
        let targets: Vec<Value> = (0..2 * n)
            .map(|i| json!({"reference": format!("Observation/{}", i % n)}))
            .collect();
        let p = json!({"resourceType": "Provenance", "target": targets});
        let got = values(&p, "target");
        assert_eq!(got.len(), n);
        assert_eq!(
            got[n - 1],
            reference(Some("Observation"), Some(&(n - 1).to_string()), None)
        );
    }
    let l = json!({"resourceType": "Location", "name": "Main", "alias": ["Main", "Annex"]});
    assert_eq!(values(&l, "name").len(), 2);
}

#[test]
fn never_panics_on_odd_input() {
    for v in [
        json!(null),
        json!([]),
        json!({"resourceType": 3}),
        json!({"resourceType": "Nope"}),
        json!({"resourceType": "Observation", "code": [1, null, "x"], "subject": "Patient/1",
               "valueQuantity": {"value": "1.5"}, "effectivePeriod": {"start": 5},
               "component": {"code": {"coding": "no"}}, "meta": {"lastUpdated": ["x"]}}),
        json!({"resourceType": "Patient", "name": "x", "deceasedBoolean": "yes",
               "extension": [{"url": 1}, null, {"extension": "x"}], "link": [{"other": null}]}),
    ] {
        extract(&v);
        patient_compartments(&v);
    }
}

/// Resources of the shared sample data (Synthea ndjson and the US Core test Bundles); `None`
/// when the data is not there.
fn sample_resources() -> Option<Vec<Value>> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let synthea = data.join("synthea/small");
    let us_core = data.join("us-core-testdata");
    if !synthea.is_dir() || !us_core.is_dir() {
        return None;
    }
    let mut resources = Vec::new();
    for (dir, ext) in [(synthea, "ndjson"), (us_core, "json")] {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            if ext == "ndjson" {
                resources.extend(
                    text.lines()
                        .map(|l| serde_json::from_str::<Value>(l).unwrap()),
                );
            } else {
                let bundle: Value = serde_json::from_str(&text).unwrap();
                match bundle["entry"].as_array() {
                    Some(entries) => resources.extend(resolve_full_urls(entries)),
                    None => resources.push(bundle),
                }
            }
        }
    }
    Some(resources)
}

/// The entries' resources with `urn:uuid:` references rewritten to `Type/id`, as a
/// transaction stores them.
fn resolve_full_urls(entries: &[Value]) -> Vec<Value> {
    fn rewrite(v: &mut Value, ids: &HashMap<&str, String>) {
        match v {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    match child {
                        Value::String(s) if key == "reference" => {
                            if let Some(local) = ids.get(s.as_str()) {
                                *s = local.clone();
                            }
                        }
                        _ => rewrite(child, ids),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| rewrite(i, ids)),
            _ => {}
        }
    }
    let ids: HashMap<&str, String> = entries
        .iter()
        .filter_map(|e| {
            let r = &e["resource"];
            let local = format!("{}/{}", r["resourceType"].as_str()?, r["id"].as_str()?);
            Some((e["fullUrl"].as_str()?, local))
        })
        .collect();
    entries
        .iter()
        .map(|e| {
            let mut r = e["resource"].clone();
            rewrite(&mut r, &ids);
            r
        })
        .collect()
}

#[test]
fn sample_data_extracts_sanely() {
    let Some(resources) = sample_resources() else {
        eprintln!("shared sample data absent: SKIPPED");
        return;
    };
    let mut per_type: HashMap<String, (usize, usize)> = HashMap::new();
    for r in &resources {
        let rt = r["resourceType"].as_str().unwrap();
        let entries = extract(r);
        let has = |code: &str| entries.iter().any(|e| e.param == code);
        let count = per_type.entry(rt.to_owned()).or_default();
        count.0 += 1;
        count.1 += entries.len();
        assert!(has("_id"), "{rt} {}", r["id"]);
        match rt {
            "Observation" => {
                assert!(has("code") && has("status"), "{r}");
                if r["subject"]["reference"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("Patient/"))
                {
                    assert!(has("subject") && has("patient"), "{r}");
                }
                let effective = ["effectiveDateTime", "effectivePeriod", "effectiveInstant"];
                if effective.iter().any(|k| r.get(k).is_some()) {
                    assert!(has("date"), "{r}");
                }
                if r.get("valueQuantity").is_some() {
                    assert!(has("value-quantity") && has("code-value-quantity"), "{r}");
                }
                assert!(!patient_compartments(r).is_empty(), "{r}");
            }
            "Patient" => {
                for code in ["name", "family", "gender", "birthdate", "identifier"] {
                    assert!(has(code), "Patient {code}: {r}");
                }
                assert_eq!(patient_compartments(r), [r["id"].as_str().unwrap()]);
            }
            "Condition" | "Encounter" | "Procedure" | "MedicationRequest" | "Immunization"
            | "DiagnosticReport" | "AllergyIntolerance" | "CarePlan" | "Goal" => {
                assert!(has("patient"), "{rt} patient: {r}");
                assert!(!patient_compartments(r).is_empty(), "{r}");
            }
            _ => {}
        }
    }
    let mut summary: Vec<_> = per_type.into_iter().collect();
    summary.sort();
    for (rt, (n, entries)) in &summary {
        eprintln!("{rt}: {n} resources, {entries} index entries");
    }
    assert!(resources.len() > 1000, "{}", resources.len());
}

/// Extraction speed over the sample data; run in release for meaningful numbers:
/// `cargo test --release --lib search::tests::extraction_speed -- --ignored --nocapture`.
#[test]
#[ignore]
fn extraction_speed() {
    let Some(resources) = sample_resources() else {
        eprintln!("shared sample data absent: SKIPPED");
        return;
    };
    let started = Instant::now();
    extract(&resources[0]); // parses the registry (when this test runs alone)
    eprintln!("first extract: {:?}", started.elapsed());
    let rounds = 20;
    let mut per_type: HashMap<&str, (usize, std::time::Duration)> = HashMap::new();
    for r in &resources {
        let started = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box((extract(r), patient_compartments(r)));
        }
        let t = per_type
            .entry(r["resourceType"].as_str().unwrap())
            .or_default();
        t.0 += rounds;
        t.1 += started.elapsed();
    }
    let (n, total) = per_type
        .values()
        .fold((0, std::time::Duration::ZERO), |a, b| {
            (a.0 + b.0, a.1 + b.1)
        });
    eprintln!(
        "{} resources: {:?} per resource (extract + compartments)",
        resources.len(),
        total / n as u32
    );
    let mut slowest: Vec<_> = per_type
        .into_iter()
        .map(|(rt, (n, t))| (t / n as u32, rt, n / rounds))
        .collect();
    slowest.sort();
    for (t, rt, n) in slowest.iter().rev().take(6) {
        eprintln!("  {rt}: {t:?} per resource ({n} resources)");
    }
}
