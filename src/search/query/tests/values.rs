//! Values by parameter type, modifiers, prefixes, escaping, OR and AND.

use super::*;
use crate::search::date_range;

fn string(v: StringValue) -> Value {
    Value::String(v)
}

fn code(system: SystemMatch, code: Option<&str>) -> Value {
    Value::Token(TokenValue::Code(SystemCode {
        system,
        code: code.map(Into::into),
    }))
}

fn is(system: &str) -> SystemMatch {
    SystemMatch::Is(system.into())
}

fn date(prefix: Prefix, text: &str) -> Value {
    let (start, end) = date_range(text).unwrap();
    Value::Date(DateValue { prefix, start, end })
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn number(v: &Value) -> NumberValue {
    match v {
        Value::Number(n) => *n,
        other => panic!("{other:?}"),
    }
}

fn quantity(v: Value) -> QuantityValue {
    match v {
        Value::Quantity(q) => q,
        other => panic!("{other:?}"),
    }
}

#[test]
fn string_default_is_a_normalized_prefix() {
    let c = criterion("Patient", "name", "  Zoë  ÅNG ");
    assert_eq!(c.name, "name");
    assert_eq!(c.param, "name");
    assert_eq!(c.kind, ParamType::String);
    assert_eq!(c.resource_type, Some("Patient"));
    assert!(c.chain.is_empty());
    assert_eq!(
        c.test,
        Test::Any(vec![string(StringValue::StartsWith("zoe ang".into()))])
    );
}

#[test]
fn string_exact_and_contains() {
    assert_eq!(
        value("Patient", "family:exact", "Zoë"),
        string(StringValue::Exact("Zoë".into()))
    );
    assert_eq!(
        value("Patient", "family:contains", "OË"),
        string(StringValue::Contains("oe".into()))
    );
    let message = invalid_param("Patient", "family:text", "x");
    assert!(message.contains("unknown modifier ':text'"), "{message}");
    invalid_param("Patient", "family:not", "x");
    // Even when every item is empty.
    invalid_param("Patient", "family:bogus", ",");
}

#[test]
fn missing_on_every_type() {
    for (rt, name) in [
        ("Patient", "name:missing"),
        ("Patient", "gender:missing"),
        ("Patient", "birthdate:missing"),
        ("Patient", "organization:missing"),
        ("Observation", "value-quantity:missing"),
        ("RiskAssessment", "probability:missing"),
        ("ValueSet", "url:missing"),
        ("Observation", "code-value-quantity:missing"),
    ] {
        assert_eq!(criterion(rt, name, "true").test, Test::Missing(true));
        assert_eq!(criterion(rt, name, "false").test, Test::Missing(false));
        let message = invalid_param(rt, name, "yes");
        assert!(message.contains("true or false"), "{message}");
        invalid_param(rt, name, "true,false");
    }
}

#[test]
fn token_forms() {
    assert_eq!(
        value("Patient", "gender", "male"),
        code(SystemMatch::Any, Some("male"))
    );
    assert_eq!(
        value("Observation", "code", "http://loinc.org|8480-6"),
        code(is("http://loinc.org"), Some("8480-6"))
    );
    assert_eq!(
        value("Observation", "code", "|8480-6"),
        code(SystemMatch::Absent, Some("8480-6"))
    );
    assert_eq!(
        value("Observation", "code", "http://loinc.org|"),
        code(is("http://loinc.org"), None)
    );
    // Booleans are tokens.
    assert_eq!(
        value("Patient", "active", "true"),
        code(SystemMatch::Any, Some("true"))
    );
    invalid_param("Observation", "code", "|");
    let message = invalid_param("Observation", "code", "a|b|c");
    assert!(message.contains("more than one"), "{message}");
}

#[test]
fn token_not_text_and_of_type() {
    assert_eq!(
        criterion("Patient", "gender:not", "male,female").test,
        Test::NotAny(vec![
            code(SystemMatch::Any, Some("male")),
            code(SystemMatch::Any, Some("female")),
        ])
    );
    assert_eq!(
        value("Observation", "code:text", "Blood  PRESSURE"),
        Value::Token(TokenValue::Text("blood pressure".into()))
    );
    assert_eq!(
        value(
            "Patient",
            "identifier:of-type",
            "http://terminology.hl7.org/CodeSystem/v2-0203|MR|446053"
        ),
        Value::Token(TokenValue::OfType {
            type_system: Some("http://terminology.hl7.org/CodeSystem/v2-0203".into()),
            type_code: "MR".into(),
            value: "446053".into(),
        })
    );
    assert_eq!(
        value("Patient", "identifier:of-type", "|MR|446053"),
        Value::Token(TokenValue::OfType {
            type_system: None,
            type_code: "MR".into(),
            value: "446053".into(),
        })
    );
    invalid_param("Patient", "identifier:of-type", "MR|446053");
    invalid_param("Patient", "identifier:of-type", "sys||446053");
    invalid_param("Patient", "identifier:of-type", "sys|MR|");
}

#[test]
fn token_modifiers_unknown_or_unsupported() {
    for m in ["in", "not-in", "above", "below"] {
        let name = format!("code:{m}");
        rejected(
            Some("Observation"),
            &[(&name, "http://vs")],
            &name,
            IssueCode::NotSupported,
        );
    }
    let message = invalid_param("Observation", "code:exact", "x");
    assert!(message.contains("token"), "{message}");
}

#[test]
fn date_precisions_and_prefixes() {
    assert_eq!(
        value("Patient", "birthdate", "1990"),
        date(Prefix::Eq, "1990")
    );
    for (text, prefix) in [
        ("eq", Prefix::Eq),
        ("ne", Prefix::Ne),
        ("gt", Prefix::Gt),
        ("lt", Prefix::Lt),
        ("ge", Prefix::Ge),
        ("le", Prefix::Le),
        ("sa", Prefix::Sa),
        ("eb", Prefix::Eb),
    ] {
        assert_eq!(
            value("Patient", "birthdate", &format!("{text}1990-05-17")),
            date(prefix, "1990-05-17")
        );
    }
    assert_eq!(
        value("Observation", "date", "2015-02-07T13:28:17.239+02:00"),
        date(Prefix::Eq, "2015-02-07T13:28:17.239+02:00")
    );
    assert_eq!(
        value("Observation", "_lastUpdated", "gt2024-06"),
        date(Prefix::Gt, "2024-06")
    );
    // A `+` that form decoding turned into a space.
    assert_eq!(
        value("Observation", "date", "ge2015-02-07T13:28:17 02:00"),
        date(Prefix::Ge, "2015-02-07T13:28:17+02:00")
    );
}

#[test]
fn date_ap_widens_by_a_tenth_of_the_distance_to_now() {
    let (start, end) = date_range("2015-01-01").unwrap();
    let widen = (NOW - end) / 10;
    assert_eq!(
        value("Patient", "birthdate", "ap2015-01-01"),
        Value::Date(DateValue {
            prefix: Prefix::Ap,
            start: start - widen,
            end: end + widen,
        })
    );
    // In the future too; and a range holding now is not widened.
    let (start, end) = date_range("2035").unwrap();
    let widen = (start - NOW) / 10;
    assert_eq!(
        value("Patient", "birthdate", "ap2035"),
        Value::Date(DateValue {
            prefix: Prefix::Ap,
            start: start - widen,
            end: end + widen,
        })
    );
    assert_eq!(
        value("Patient", "birthdate", "ap2025"),
        date(Prefix::Ap, "2025")
    );
}

#[test]
fn bad_dates_and_prefixes_name_the_parameter() {
    for bad in [
        "2020-13",
        "2020-02-30",
        "yesterday",
        "20200101",
        "2020-01-01T25:00Z",
        "ge",
        "1990-05-17T10:00:00+15:00",
    ] {
        let message = invalid_param("Patient", "birthdate", bad);
        assert!(
            message.starts_with("Search parameter 'birthdate': "),
            "{message}"
        );
    }
    let message = invalid_param("Patient", "birthdate", "xx2020");
    assert!(message.contains("unknown prefix 'xx'"), "{message}");
    let message = invalid_param("Patient", "birthdate:exact", "2020");
    assert!(message.contains("unknown modifier ':exact'"), "{message}");
}

#[test]
fn numbers_with_precision_and_prefixes() {
    let n = number(&value("RiskAssessment", "probability", "1.5"));
    assert_eq!(n.prefix, Prefix::Eq);
    assert!(close(n.value, 1.5) && close(n.low, 1.45) && close(n.high, 1.55));
    // The precision of `1e2` is one significant figure.
    let n = number(&value("RiskAssessment", "probability", "gt1e2"));
    assert_eq!(n.prefix, Prefix::Gt);
    assert!(close(n.value, 100.0) && close(n.low, 50.0) && close(n.high, 150.0));
    let n = number(&value("RiskAssessment", "probability", "1.00e2"));
    assert!(close(n.low, 99.5) && close(n.high, 100.5));
    let n = number(&value("RiskAssessment", "probability", "le-0.25E-1"));
    assert_eq!(n.prefix, Prefix::Le);
    assert!(close(n.value, -0.025) && close(n.low, -0.0255) && close(n.high, -0.0245));
    // `ap`: 10% of the value, or the precision when wider.
    let n = number(&value("RiskAssessment", "probability", "ap100"));
    assert!(close(n.low, 90.0) && close(n.high, 110.0), "{n:?}");
    let n = number(&value("RiskAssessment", "probability", "ap0"));
    assert!(close(n.low, -0.5) && close(n.high, 0.5), "{n:?}");
    for bad in [
        "abc", "1.", ".5", "+5", "inf", "NaN", "1e", "1e999", "1,5e", "0x10",
    ] {
        invalid_param("RiskAssessment", "probability", bad);
    }
    let message = invalid_param("RiskAssessment", "probability", "gx5");
    assert!(message.contains("unknown prefix"), "{message}");
}

#[test]
fn quantities() {
    let q = quantity(value(
        "Observation",
        "value-quantity",
        "gt5.4|http://unitsofmeasure.org|mg",
    ));
    assert_eq!(q.prefix, Prefix::Gt);
    assert!(close(q.value, 5.4) && close(q.low, 5.35) && close(q.high, 5.45));
    assert_eq!(q.system.as_deref(), Some("http://unitsofmeasure.org"));
    assert_eq!(q.code.as_deref(), Some("mg"));
    let q = quantity(value("Observation", "value-quantity", "5.4||mg"));
    assert_eq!((q.system, q.code.as_deref()), (None, Some("mg")));
    let q = quantity(value("Observation", "value-quantity", "1e2"));
    assert!(close(q.value, 100.0) && q.system.is_none() && q.code.is_none());
    let q = quantity(value("Observation", "value-quantity", "ap100||mg"));
    assert_eq!(q.prefix, Prefix::Ap);
    assert!(close(q.low, 90.0) && close(q.high, 110.0));
    for bad in [
        "5.4|mg",
        "5.4|http://unitsofmeasure.org|",
        "x||mg",
        "5|a|b|c",
    ] {
        invalid_param("Observation", "value-quantity", bad);
    }
}

#[test]
fn references() {
    let local = |target_type: Option<&'static str>, id: &str| {
        Value::Reference(ReferenceValue::Local {
            target_type,
            id: id.into(),
        })
    };
    assert_eq!(value("Observation", "subject", "123"), local(None, "123"));
    assert_eq!(
        value("Observation", "subject", "Patient/123"),
        local(Some("Patient"), "123")
    );
    assert_eq!(
        value("Observation", "subject", "Patient/123/_history/2"),
        local(Some("Patient"), "123")
    );
    assert_eq!(
        value("Observation", "subject:Patient", "123"),
        local(Some("Patient"), "123")
    );
    assert_eq!(
        value("Observation", "subject:Patient", "Patient/123"),
        local(Some("Patient"), "123")
    );
    let url = "https://other.example/fhir/Patient/9";
    assert_eq!(
        value("Observation", "subject", url),
        Value::Reference(ReferenceValue::Url {
            url: url.into(),
            local: Some(("Patient", "9".into())),
        })
    );
    let urn = "urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7";
    assert_eq!(
        value("Observation", "subject", urn),
        Value::Reference(ReferenceValue::Url {
            url: urn.into(),
            local: None,
        })
    );
    assert_eq!(
        value(
            "Observation",
            "subject:identifier",
            "http://hospital/mrn|42"
        ),
        Value::Reference(ReferenceValue::Identifier(SystemCode {
            system: SystemMatch::Is("http://hospital/mrn".into()),
            code: Some("42".into()),
        }))
    );
}

#[test]
fn bad_references() {
    for bad in [
        "Practitioner/1",
        "Nope/1",
        "Patient/bad id",
        "bad id",
        "Patient/",
    ] {
        invalid_param("Observation", "subject", bad);
    }
    let message = invalid_param("Observation", "subject:Patient", "Group/1");
    assert!(message.contains("modifier ':Patient'"), "{message}");
    invalid_param(
        "Observation",
        "subject:Patient",
        "http://x.example/fhir/Group/1",
    );
    let message = invalid_param("Observation", "subject:Practitioner", "1");
    assert!(message.contains("not a target type"), "{message}");
    invalid_param("Observation", "subject:nope", "1");
    rejected(
        Some("Observation"),
        &[("subject:below", "1")],
        "subject:below",
        IssueCode::NotSupported,
    );
    invalid_param("Observation", "subject:identifier", "|");
}

#[test]
fn uris() {
    let uri = "http://hl7.org/fhir/ValueSet/x";
    assert_eq!(
        value("ValueSet", "url", uri),
        Value::Uri(UriValue::Exact(uri.into()))
    );
    assert_eq!(
        value("ValueSet", "url:above", uri),
        Value::Uri(UriValue::Above(uri.into()))
    );
    assert_eq!(
        value("ValueSet", "url:below", "http://hl7.org/fhir/"),
        Value::Uri(UriValue::Below("http://hl7.org/fhir/".into()))
    );
    invalid_param("ValueSet", "url:contains", uri);
}

#[test]
fn composites_parse_each_component_by_its_type() {
    let c = criterion(
        "Observation",
        "code-value-quantity",
        "http://loinc.org|8480-6$gt100",
    );
    assert_eq!(c.kind, ParamType::Composite);
    let Test::Any(list) = c.test else {
        panic!("{:?}", c.test)
    };
    let [Value::Composite(parts)] = list.as_slice() else {
        panic!("{list:?}")
    };
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].param, "code-value-quantity$0");
    assert_eq!(parts[0].value, code(is("http://loinc.org"), Some("8480-6")));
    assert_eq!(parts[1].param, "code-value-quantity$1");
    let q = quantity(parts[1].value.clone());
    assert_eq!(q.prefix, Prefix::Gt);
    assert!(close(q.value, 100.0));

    let Value::Composite(parts) = value("Observation", "code-value-date", "1234-5$ge2020") else {
        panic!()
    };
    assert_eq!(parts[1].value, date(Prefix::Ge, "2020"));
    let Value::Composite(parts) = value("Observation", "code-value-string", "x$Zoë") else {
        panic!()
    };
    assert_eq!(
        parts[1].value,
        string(StringValue::StartsWith("zoe".into()))
    );

    // OR of composites.
    assert_eq!(
        values("Observation", "code-value-concept", "a$b,c$d").len(),
        2
    );
    for bad in ["8480-6", "a$b$c", "$gt100", "8480-6$", "8480-6$xx100"] {
        invalid_param("Observation", "code-value-quantity", bad);
    }
    invalid_param("Observation", "code-value-quantity:exact", "a$1");
}

#[test]
fn common_parameters() {
    assert_eq!(criterion("Patient", "_id", "a1").kind, ParamType::Token);
    assert_eq!(
        value("Patient", "_id", "a1"),
        code(SystemMatch::Any, Some("a1"))
    );
    assert_eq!(
        value("Patient", "_tag", "http://tags|t1"),
        code(is("http://tags"), Some("t1"))
    );
    assert_eq!(
        value("Patient", "_security", "http://sec|R"),
        code(is("http://sec"), Some("R"))
    );
    assert_eq!(
        value("Patient", "_profile", "http://p"),
        Value::Uri(UriValue::Exact("http://p".into()))
    );
    assert_eq!(
        value("Patient", "_source", "http://s"),
        Value::Uri(UriValue::Exact("http://s".into()))
    );
    assert_eq!(
        criterion("Patient", "_lastUpdated", "2024").kind,
        ParamType::Date
    );
}

#[test]
fn or_lists_respect_escapes() {
    assert_eq!(
        values("Patient", "family", r"a\,b,c\\,d\$e\|f"),
        vec![
            string(StringValue::StartsWith("a,b".into())),
            string(StringValue::StartsWith(r"c\".into())),
            string(StringValue::StartsWith("d$e|f".into())),
        ]
    );
    assert_eq!(
        value("Observation", "code", r"http://x\|y|a\,b"),
        code(is("http://x|y"), Some("a,b"))
    );
    assert_eq!(
        value("ValueSet", "url", r"http://x/a\,b"),
        Value::Uri(UriValue::Exact("http://x/a,b".into()))
    );
    // Composite parts split on unescaped `$` only.
    let Value::Composite(parts) = value("Observation", "code-value-string", r"a\$b$c\$d") else {
        panic!()
    };
    assert_eq!(parts[0].value, code(SystemMatch::Any, Some("a$b")));
    assert_eq!(
        parts[1].value,
        string(StringValue::StartsWith("c$d".into()))
    );
}

#[test]
fn repeats_are_and_and_empty_values_are_ignored() {
    let query = parse(
        Some("Patient"),
        &[
            ("given", "a,b"),
            ("given", "c"),
            ("family", ""),
            ("gender", ",,"),
            ("birthdate", "ge2000,"),
            ("gender:not", ","),
        ],
    );
    assert_eq!(query.criteria.len(), 3);
    assert!(query.criteria.iter().take(2).all(|c| c.param == "given"));
    assert_eq!(
        query.criteria[0].test,
        Test::Any(vec![
            string(StringValue::StartsWith("a".into())),
            string(StringValue::StartsWith("b".into())),
        ])
    );
    assert_eq!(
        query.criteria[2].test,
        Test::Any(vec![date(Prefix::Ge, "2000")])
    );
}

#[test]
fn unknown_parameters_are_listed_not_rejected() {
    let query = parse(
        Some("Patient"),
        &[
            ("nope", "1"),
            ("nope", "2"),
            ("nope:exact", "1"),
            ("foo.bar", "1"),
            ("_text", "x"),
            ("_type", "Patient"),
            ("_format", "json"),
            ("_pretty", "true"),
            ("name", "x"),
        ],
    );
    assert_eq!(
        query.unknown,
        ["nope", "nope:exact", "foo.bar", "_text", "_type"]
    );
    assert_eq!(query.criteria.len(), 1);
    assert_eq!(query.resource_type, Some("Patient"));
}

#[test]
fn unknown_resource_type_is_not_found() {
    let error = parse_search_at(Some("Nope"), &[], NOW).unwrap_err();
    assert_eq!(error.status, StatusCode::NOT_FOUND);
}

#[test]
fn system_level_takes_common_parameters_and_type() {
    let query = parse(
        None,
        &[
            ("_id", "1,2"),
            ("_lastUpdated", "ge2024"),
            ("_tag", "t"),
            ("_profile", "http://p"),
            ("_security", "s"),
            ("_source", "http://s"),
            ("_type", "Patient,Observation"),
            ("name", "x"),
            ("_has:Observation:patient:code", "1"),
        ],
    );
    assert_eq!(query.resource_type, None);
    assert_eq!(query.types, ["Patient", "Observation"]);
    assert_eq!(query.criteria.len(), 6);
    assert!(query.criteria.iter().all(|c| c.resource_type.is_none()));
    assert_eq!(query.unknown, ["name", "_has:Observation:patient:code"]);
    rejected(
        None,
        &[("_type", "Patient,Nope")],
        "_type",
        IssueCode::Invalid,
    );
    rejected(
        None,
        &[("_type", "Patient"), ("_type", "Group")],
        "_type",
        IssueCode::Invalid,
    );
    rejected(
        None,
        &[("_type:x", "Patient")],
        "_type:x",
        IssueCode::Invalid,
    );
    rejected(None, &[("_id.name", "x")], "_id.name", IssueCode::Invalid);
}

#[test]
fn parse_search_uses_the_clock() {
    let params = pairs(&[("birthdate", "ap2000")]);
    let now = parse_search(Some("Patient"), &params).unwrap();
    let before = parse_search_at(Some("Patient"), &params, NOW).unwrap();
    // The clock is past NOW, so the range is at least as wide.
    let range = |q: &SearchQuery| match &q.criteria[0].test {
        Test::Any(v) => match v[0] {
            Value::Date(d) => d.end - d.start,
            _ => panic!(),
        },
        _ => panic!(),
    };
    assert!(range(&now) >= range(&before));
}
