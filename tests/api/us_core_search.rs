//! The US Core search matrix over the Synthea sample and US Core patient 85: every SHALL/SHOULD
//! parameter combination of each resource type in the data must return exactly the set the
//! test computes itself by scanning the source files (never by asking Kiln).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::backend_tests;
use crate::common::*;

backend_tests!(us_core_search_matrix);

type Ids = BTreeSet<String>;

/// The source resources by type, with the Bundle's `urn:uuid:` references made `Type/id`.
struct Data {
    by_type: BTreeMap<String, Vec<Value>>,
}

impl Data {
    fn load(synthea: &Path, bundle: &Path) -> Data {
        let mut by_type: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(synthea)
            .expect("read synthea dir")
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "ndjson"))
            .collect();
        files.sort();
        for file in files {
            for line in std::fs::read_to_string(&file).unwrap().lines() {
                if line.trim().is_empty() {
                    continue;
                }
                let resource: Value = serde_json::from_str(line).unwrap();
                let kind = resource["resourceType"].as_str().unwrap().to_string();
                by_type.entry(kind).or_default().push(resource);
            }
        }
        let bundle: Value =
            serde_json::from_str(&std::fs::read_to_string(bundle).unwrap()).unwrap();
        let entries = bundle["entry"].as_array().unwrap();
        let mut urls = BTreeMap::new();
        for entry in entries {
            let resource = &entry["resource"];
            urls.insert(
                entry["fullUrl"].as_str().unwrap().to_string(),
                format!(
                    "{}/{}",
                    resource["resourceType"].as_str().unwrap(),
                    resource["id"].as_str().unwrap()
                ),
            );
        }
        for entry in entries {
            let mut resource = entry["resource"].clone();
            rewrite_references(&mut resource, &urls);
            let kind = resource["resourceType"].as_str().unwrap().to_string();
            by_type.entry(kind).or_default().push(resource);
        }
        Data { by_type }
    }

    fn all(&self, kind: &str) -> &[Value] {
        self.by_type.get(kind).map_or(&[], Vec::as_slice)
    }

    /// Ids of the `kind` resources that pass `filter`.
    fn ids(&self, kind: &str, filter: impl Fn(&Value) -> bool) -> Ids {
        self.all(kind)
            .iter()
            .filter(|r| filter(r))
            .map(id)
            .collect()
    }
}

fn rewrite_references(value: &mut Value, urls: &BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "reference"
                    && let Some(text) = child.as_str()
                    && let Some(local) = urls.get(text)
                {
                    *child = Value::String(local.clone());
                } else {
                    rewrite_references(child, urls);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rewrite_references(item, urls)),
        _ => {}
    }
}

fn id(resource: &Value) -> String {
    resource["id"].as_str().unwrap().to_string()
}

/// Every (system, code) of a code, Coding or CodeableConcept (or an array of them).
fn codes(value: &Value) -> Vec<(Option<String>, String)> {
    match value {
        Value::String(code) => vec![(None, code.clone())],
        Value::Array(items) => items.iter().flat_map(codes).collect(),
        Value::Object(map) => {
            if let Some(codings) = map.get("coding") {
                return codes(codings);
            }
            let code = map.get("code").or_else(|| map.get("value"));
            match code.and_then(Value::as_str) {
                Some(code) => vec![(
                    map.get("system")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    code.to_string(),
                )],
                None => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// A token search value (`system|code` or `code`, comma-separated alternatives) against an element.
fn token_matches(element: &Value, query: &str) -> bool {
    let have = codes(element);
    query
        .split(',')
        .any(|alternative| match alternative.split_once('|') {
            Some((system, code)) => have
                .iter()
                .any(|(s, c)| s.as_deref() == Some(system) && c == code),
            None => have.iter().any(|(_, c)| c == alternative),
        })
}

/// `[start, end)` in seconds of a date, dateTime (second precision) or Period (open ends unbounded).
fn range(value: &Value) -> Option<(i64, i64)> {
    match value {
        Value::String(text) => Some(text_range(text)),
        Value::Object(period) => {
            let start = period.get("start").and_then(Value::as_str);
            let end = period.get("end").and_then(Value::as_str);
            if start.is_none() && end.is_none() {
                return None;
            }
            Some((
                start.map_or(i64::MIN, |s| text_range(s).0),
                end.map_or(i64::MAX, |e| text_range(e).1),
            ))
        }
        _ => None,
    }
}

fn text_range(text: &str) -> (i64, i64) {
    use time::format_description::well_known::Rfc3339;
    if text.len() == 10 {
        let date = time::Date::parse(
            text,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .unwrap_or_else(|e| panic!("{text}: {e}"));
        let start = date.midnight().assume_utc().unix_timestamp();
        return (start, start + 86_400);
    }
    let instant =
        time::OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(
        instant.nanosecond(),
        0,
        "test data uses whole seconds: {text}"
    );
    let start = instant.unix_timestamp();
    (start, start + 1)
}

/// A date search value (`ge2019-01-01`, `lt2019-01-01T00:00:00Z`) against a target range,
/// as R4 search.html defines the prefixes over ranges.
fn date_matches(target: Option<(i64, i64)>, query: &str) -> bool {
    let Some((t_start, t_end)) = target else {
        return false;
    };
    let (prefix, text) = query.split_at(2);
    let (s_start, s_end) = text_range(text);
    match prefix {
        "eq" => t_start >= s_start && t_end <= s_end,
        "ge" => t_end > s_start,
        "le" => t_start < s_end,
        "gt" => t_end > s_end,
        "lt" => t_start < s_start,
        other => panic!("prefix {other}"),
    }
}

/// Any of the resource's date elements (the `[x]` choices of one parameter) matches.
fn dated(resource: &Value, fields: &[&str], query: &str) -> bool {
    fields
        .iter()
        .any(|field| date_matches(range(&resource[*field]), query))
}

/// The string search (case-insensitive starts-with) against any of the given text values.
fn starts(texts: &[&str], query: &str) -> bool {
    let query = query.to_lowercase();
    texts.iter().any(|t| t.to_lowercase().starts_with(&query))
}

/// The searchable parts of HumanName(s) or Address(es).
fn name_parts(value: &Value) -> Vec<&str> {
    let mut parts = Vec::new();
    for item in value.as_array().map_or(&[][..], Vec::as_slice) {
        for key in [
            "text",
            "family",
            "given",
            "prefix",
            "suffix",
            "line",
            "city",
            "district",
            "state",
            "postalCode",
            "country",
        ] {
            match &item[key] {
                Value::String(s) => parts.push(s.as_str()),
                Value::Array(items) => parts.extend(items.iter().filter_map(Value::as_str)),
                _ => {}
            }
        }
    }
    parts
}

fn refers(resource: &Value, field: &str, target: &str) -> bool {
    match &resource[field] {
        Value::Array(items) => items.iter().any(|item| item["reference"] == target),
        item => item["reference"] == target,
    }
}

fn enc(text: &str) -> String {
    text.replace('+', "%2B")
        .replace('|', "%7C")
        .replace(' ', "%20")
}

/// The matches and includes of a search, walking every `next` link.
async fn search_all(server: &Server, query: &str) -> (Ids, Ids) {
    let mut url = server.url(query);
    let (mut matches, mut includes) = (Ids::new(), Ids::new());
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 500, "{query}: too many pages");
        let bundle = expect_json(server.client.get(&url).send().await.expect("GET"), 200).await;
        assert_eq!(bundle["type"], "searchset", "{query}");
        for entry in bundle["entry"].as_array().map_or(&[][..], Vec::as_slice) {
            let resource = &entry["resource"];
            let key = format!(
                "{}/{}",
                resource["resourceType"].as_str().unwrap(),
                resource["id"].as_str().unwrap()
            );
            let set = match entry["search"]["mode"].as_str() {
                Some("match") => &mut matches,
                _ => &mut includes,
            };
            // A match is never repeated, on one page or across pages.
            let fresh = set.insert(key.clone());
            assert!(
                fresh || set_is_includes(entry),
                "{query}: {key} returned twice"
            );
        }
        let next = bundle["link"]
            .as_array()
            .and_then(|links| links.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
            .map(str::to_string);
        match next {
            Some(next) => url = next,
            None => break,
        }
    }
    (matches, includes)
}

fn set_is_includes(entry: &Value) -> bool {
    entry["search"]["mode"] != "match"
}

/// `Type/id` keys of the ids.
fn keyed(kind: &str, ids: &Ids) -> Ids {
    ids.iter().map(|id| format!("{kind}/{id}")).collect()
}

struct Checker<'a> {
    server: &'a Server,
    checked: usize,
    non_empty: usize,
}

impl Checker<'_> {
    /// Asserts the search (one page of up to 1000) returns exactly `expected` (ids of `query`'s type).
    async fn check(&mut self, query: &str, expected: &Ids) {
        let kind = query.split('?').next().unwrap();
        let separator = if query.contains('?') { '&' } else { '?' };
        let full = format!("{query}{separator}_count=1000");
        let bundle = expect_json(self.server.get(&full).await, 200).await;
        assert!(
            !bundle["link"]
                .as_array()
                .is_some_and(|links| links.iter().any(|l| l["relation"] == "next")),
            "{full}: one page expected"
        );
        let mut got = Ids::new();
        for entry in bundle["entry"].as_array().map_or(&[][..], Vec::as_slice) {
            if entry["search"]["mode"] == "match" {
                assert_eq!(entry["resource"]["resourceType"], kind, "{full}");
                let fresh = got.insert(id(&entry["resource"]));
                assert!(fresh, "{full}: duplicate {}", entry["resource"]["id"]);
            }
        }
        if bundle["total"].is_number() {
            assert_eq!(
                bundle["total"].as_u64(),
                Some(got.len() as u64),
                "{full}: total"
            );
        }
        let missing: Vec<_> = expected.difference(&got).collect();
        let extra: Vec<_> = got.difference(expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{full}: expected {} got {}; missing {missing:?}; unexpected {extra:?}",
            expected.len(),
            got.len()
        );
        self.checked += 1;
        if !expected.is_empty() {
            self.non_empty += 1;
        }
    }
}

fn kiln_import(database_url: &str, paths: &[&Path]) {
    let output = Command::new(kiln_bin())
        .arg("import")
        .arg("--database-url")
        .arg(database_url)
        .args(paths)
        .env_remove("KILN_DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run kiln import");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "import failed:\n{stderr}");
    assert!(!stderr.contains("failed"), "{stderr}");
}

/// The most frequent value of `values` (ties: the smallest), if any.
fn most_common(values: impl IntoIterator<Item = String>) -> Option<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for value in values {
        *counts.entry(value).or_default() += 1;
    }
    let best = counts.values().copied().max()?;
    counts.into_iter().find(|(_, n)| *n == best).map(|(v, _)| v)
}

/// The middle value of a resource set's date element, as the raw text (for a split that
/// leaves matches on both sides).
fn median_date(resources: &[&Value], field: &str) -> Option<String> {
    let mut dates: Vec<(i64, String)> = resources
        .iter()
        .filter_map(|r| {
            let value = &r[field];
            let text = value
                .as_str()
                .or_else(|| value["start"].as_str())?
                .to_string();
            Some((text_range(&text).0, text))
        })
        .collect();
    dates.sort();
    dates.get(dates.len() / 2).map(|(_, text)| text.clone())
}

/// A first code (`system|code`) of an element, if any.
fn first_code(value: &Value) -> Option<String> {
    codes(value)
        .into_iter()
        .find_map(|(s, c)| s.map(|s| format!("{s}|{c}")))
}

/// The forms of an instant `text`: its UTC day, the second with `Z`, `+00:00` and `-05:00`,
/// and `text` as written.
fn date_forms(text: &str) -> Vec<String> {
    let instant = time::OffsetDateTime::from_unix_timestamp(text_range(text).0).unwrap();
    let date = format!(
        "{:04}-{:02}-{:02}",
        instant.year(),
        u8::from(instant.month()),
        instant.day()
    );
    let seconds = format!(
        "{date}T{:02}:{:02}:{:02}",
        instant.hour(),
        instant.minute(),
        instant.second()
    );
    let west = instant - time::Duration::hours(5);
    let west = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}-05:00",
        west.year(),
        u8::from(west.month()),
        west.day(),
        west.hour(),
        west.minute(),
        west.second()
    );
    vec![
        date,
        format!("{seconds}Z"),
        format!("{seconds}+00:00"),
        west,
        text.to_string(),
    ]
}

async fn us_core_search_matrix(backend: Backend) {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if !shared.exists() {
        eprintln!("../shared/data is absent: US Core search matrix skipped");
        return;
    }
    let synthea = shared.join("synthea/small");
    let bundle = shared.join("us-core-testdata/uscore_bundle_patient_85.json");
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    kiln_import(&db.url, &[&synthea, &bundle]);
    let data = Data::load(&synthea, &bundle);
    let server = Server::start_on(db, &["--anonymous-access"]).await;
    let mut c = Checker {
        server: &server,
        checked: 0,
        non_empty: 0,
    };

    // Patient: _id, identifier, name, family+gender, birthdate+name, gender+name, birthdate+family.
    for patient in data.all("Patient") {
        let pid = id(patient);
        c.check(&format!("Patient?_id={pid}"), &[pid.clone()].into())
            .await;
        for identifier in patient["identifier"].as_array().unwrap() {
            let (Some(system), Some(value)) =
                (identifier["system"].as_str(), identifier["value"].as_str())
            else {
                continue;
            };
            for query in [format!("{system}|{value}"), value.to_string()] {
                let expected = data.ids("Patient", |r| token_matches(&r["identifier"], &query));
                c.check(&format!("Patient?identifier={}", enc(&query)), &expected)
                    .await;
            }
        }
        let name = &patient["name"][0];
        let family = name["family"].as_str().unwrap();
        let given = name["given"][0].as_str().unwrap();
        let gender = patient["gender"].as_str().unwrap();
        let birthdate = patient["birthDate"].as_str().unwrap();
        let family_of = |r: &Value| -> Vec<String> {
            r["name"]
                .as_array()
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .filter_map(|n| n["family"].as_str().map(str::to_string))
                .collect()
        };
        let has_family = |r: &Value, q: &str| {
            let families = family_of(r);
            starts(&families.iter().map(String::as_str).collect::<Vec<_>>(), q)
        };
        for query in [
            given.to_string(),
            family[..3].to_lowercase(),
            family.to_uppercase(),
        ] {
            let expected = data.ids("Patient", |r| starts(&name_parts(&r["name"]), &query));
            c.check(&format!("Patient?name={}", enc(&query)), &expected)
                .await;
        }
        let expected = data.ids("Patient", |r| {
            has_family(r, family) && r["gender"] == gender
        });
        c.check(
            &format!("Patient?family={family}&gender={gender}"),
            &expected,
        )
        .await;
        let expected = data.ids("Patient", |r| {
            date_matches(range(&r["birthDate"]), &format!("eq{birthdate}"))
                && starts(&name_parts(&r["name"]), given)
        });
        c.check(
            &format!("Patient?birthdate={birthdate}&name={given}"),
            &expected,
        )
        .await;
        let expected = data.ids("Patient", |r| {
            r["gender"] == gender && starts(&name_parts(&r["name"]), family)
        });
        c.check(&format!("Patient?gender={gender}&name={family}"), &expected)
            .await;
        let expected = data.ids("Patient", |r| {
            date_matches(range(&r["birthDate"]), &format!("eq{birthdate}")) && has_family(r, family)
        });
        c.check(
            &format!("Patient?birthdate={birthdate}&family={family}"),
            &expected,
        )
        .await;
        let year = &birthdate[..4];
        let expected = data.ids("Patient", |r| {
            date_matches(range(&r["birthDate"]), &format!("ge{year}-01-01"))
                && r["gender"] == gender
        });
        c.check(
            &format!("Patient?birthdate=ge{year}&gender={gender}"),
            &expected,
        )
        .await;
    }

    // The clinical types, patient by patient, with values taken from that patient's data.
    let (mut saw_medication, mut saw_provenance) = (false, false);
    for patient in data.all("Patient") {
        let pid = id(patient);
        let reference = format!("Patient/{pid}");
        let mine = |kind: &str, field: &str| -> Vec<&Value> {
            data.all(kind)
                .iter()
                .filter(|r| refers(r, field, &reference))
                .collect()
        };
        let of = |kind: &str, field: &str, filter: &dyn Fn(&Value) -> bool| -> Ids {
            data.ids(kind, |r| refers(r, field, &reference) && filter(r))
        };

        // Observation: patient+category, patient+code, patient+category+date,
        // patient+code+date, patient+category+status.
        let observations = mine("Observation", "subject");
        for patient_form in [reference.clone(), pid.clone()] {
            for category in [
                "laboratory",
                "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs",
                "laboratory,social-history",
            ] {
                let expected = of("Observation", "subject", &|r| {
                    token_matches(&r["category"], category)
                });
                c.check(
                    &format!(
                        "Observation?patient={patient_form}&category={}",
                        enc(category)
                    ),
                    &expected,
                )
                .await;
            }
        }
        let code = most_common(observations.iter().filter_map(|r| first_code(&r["code"])));
        if let Some(code) = &code {
            let bare = code.rsplit('|').next().unwrap();
            for query in [code.as_str(), bare] {
                let expected = of("Observation", "subject", &|r| {
                    token_matches(&r["code"], query)
                });
                c.check(
                    &format!("Observation?patient={pid}&code={}", enc(query)),
                    &expected,
                )
                .await;
            }
        }
        let labs: Vec<&Value> = observations
            .iter()
            .copied()
            .filter(|r| token_matches(&r["category"], "laboratory"))
            .collect();
        if let Some(middle) = median_date(&labs, "effectiveDateTime") {
            for form in date_forms(&middle) {
                for prefix in ["ge", "le", "gt", "lt"] {
                    let value = format!("{prefix}{form}");
                    let expected = of("Observation", "subject", &|r| {
                        token_matches(&r["category"], "laboratory")
                            && dated(r, &["effectiveDateTime", "effectivePeriod"], &value)
                    });
                    c.check(
                        &format!(
                            "Observation?patient={pid}&category=laboratory&date={}",
                            enc(&value)
                        ),
                        &expected,
                    )
                    .await;
                }
            }
            // A range: two date parameters are ANDed.
            let year: i32 = middle[..4].parse().unwrap();
            let (low, high) = (
                format!("ge{}-01-01", year - 1),
                format!("lt{}-07-01", year + 1),
            );
            let expected = of("Observation", "subject", &|r| {
                token_matches(&r["category"], "laboratory")
                    && dated(r, &["effectiveDateTime"], &low)
                    && dated(r, &["effectiveDateTime"], &high)
            });
            c.check(
                &format!("Observation?patient={pid}&category=laboratory&date={low}&date={high}"),
                &expected,
            )
            .await;
            if let Some(code) = &code {
                let value = format!("ge{}", &middle[..10]);
                let expected = of("Observation", "subject", &|r| {
                    token_matches(&r["code"], code) && dated(r, &["effectiveDateTime"], &value)
                });
                c.check(
                    &format!("Observation?patient={pid}&code={}&date={value}", enc(code)),
                    &expected,
                )
                .await;
            }
        }
        for status in ["final", "final,amended", "preliminary"] {
            let expected = of("Observation", "subject", &|r| {
                token_matches(&r["category"], "vital-signs") && token_matches(&r["status"], status)
            });
            c.check(
                &format!("Observation?patient={pid}&category=vital-signs&status={status}"),
                &expected,
            )
            .await;
        }

        // Condition: patient, patient+category, patient+clinical-status, patient+onset-date,
        // patient+code.
        let conditions = mine("Condition", "subject");
        c.check(
            &format!("Condition?patient={reference}"),
            &of("Condition", "subject", &|_| true),
        )
        .await;
        for category in [
            "encounter-diagnosis",
            "http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item,http://terminology.hl7.org/CodeSystem/condition-category|encounter-diagnosis",
        ] {
            let expected = of("Condition", "subject", &|r| {
                token_matches(&r["category"], category)
            });
            c.check(
                &format!("Condition?patient={pid}&category={}", enc(category)),
                &expected,
            )
            .await;
        }
        for status in [
            "active",
            "resolved,inactive",
            "http://terminology.hl7.org/CodeSystem/condition-clinical|resolved",
        ] {
            let expected = of("Condition", "subject", &|r| {
                token_matches(&r["clinicalStatus"], status)
            });
            c.check(
                &format!("Condition?patient={pid}&clinical-status={}", enc(status)),
                &expected,
            )
            .await;
        }
        if let Some(middle) = median_date(&conditions, "onsetDateTime") {
            for prefix in ["ge", "lt"] {
                let value = format!("{prefix}{}", &middle[..10]);
                let expected = of("Condition", "subject", &|r| {
                    dated(r, &["onsetDateTime", "onsetPeriod"], &value)
                });
                c.check(
                    &format!("Condition?patient={pid}&onset-date={value}"),
                    &expected,
                )
                .await;
            }
        }
        if let Some(code) = most_common(conditions.iter().filter_map(|r| first_code(&r["code"]))) {
            let expected = of("Condition", "subject", &|r| {
                token_matches(&r["code"], &code)
            });
            c.check(
                &format!("Condition?patient={pid}&code={}", enc(&code)),
                &expected,
            )
            .await;
        }

        // Encounter: patient, _id, date+patient, identifier, class+patient, patient+type,
        // patient+status.
        let encounters = mine("Encounter", "subject");
        c.check(
            &format!("Encounter?patient={pid}"),
            &of("Encounter", "subject", &|_| true),
        )
        .await;
        if let Some(first) = encounters.first() {
            let eid = id(first);
            c.check(&format!("Encounter?_id={eid}"), &[eid.clone()].into())
                .await;
            for identifier in first["identifier"]
                .as_array()
                .map_or(&[][..], Vec::as_slice)
            {
                let query = format!(
                    "{}|{}",
                    identifier["system"].as_str().unwrap(),
                    identifier["value"].as_str().unwrap()
                );
                let expected = data.ids("Encounter", |r| token_matches(&r["identifier"], &query));
                c.check(&format!("Encounter?identifier={}", enc(&query)), &expected)
                    .await;
            }
        }
        if let Some(middle) = median_date(&encounters, "period") {
            for form in date_forms(&middle) {
                for prefix in ["ge", "le", "gt", "lt"] {
                    let value = format!("{prefix}{form}");
                    let expected = of("Encounter", "subject", &|r| dated(r, &["period"], &value));
                    c.check(
                        &format!("Encounter?date={}&patient={pid}", enc(&value)),
                        &expected,
                    )
                    .await;
                }
            }
        }
        for class in [
            "AMB",
            "http://terminology.hl7.org/CodeSystem/v3-ActCode|AMB",
            "EMER,IMP",
        ] {
            let expected = of("Encounter", "subject", &|r| {
                token_matches(&r["class"], class)
            });
            c.check(
                &format!("Encounter?class={}&patient={pid}", enc(class)),
                &expected,
            )
            .await;
        }
        if let Some(kind) = most_common(encounters.iter().filter_map(|r| first_code(&r["type"]))) {
            let expected = of("Encounter", "subject", &|r| {
                token_matches(&r["type"], &kind)
            });
            c.check(
                &format!("Encounter?patient={pid}&type={}", enc(&kind)),
                &expected,
            )
            .await;
        }
        for status in ["finished", "in-progress,finished", "cancelled"] {
            let expected = of("Encounter", "subject", &|r| {
                token_matches(&r["status"], status)
            });
            c.check(
                &format!("Encounter?patient={pid}&status={status}"),
                &expected,
            )
            .await;
        }

        // Immunization: patient, patient+date, patient+status.
        let immunizations = mine("Immunization", "patient");
        c.check(
            &format!("Immunization?patient={reference}"),
            &of("Immunization", "patient", &|_| true),
        )
        .await;
        if let Some(middle) = median_date(&immunizations, "occurrenceDateTime") {
            for prefix in ["ge", "lt"] {
                for form in date_forms(&middle) {
                    let value = format!("{prefix}{form}");
                    let expected = of("Immunization", "patient", &|r| {
                        dated(r, &["occurrenceDateTime"], &value)
                    });
                    c.check(
                        &format!("Immunization?patient={pid}&date={}", enc(&value)),
                        &expected,
                    )
                    .await;
                }
            }
        }
        for status in ["completed", "not-done,entered-in-error"] {
            let expected = of("Immunization", "patient", &|r| {
                token_matches(&r["status"], status)
            });
            c.check(
                &format!("Immunization?patient={pid}&status={status}"),
                &expected,
            )
            .await;
        }

        // MedicationRequest: patient+intent (+status, +authoredon), with the medication included.
        let requests = mine("MedicationRequest", "subject");
        for intent in ["order", "order,plan", "proposal"] {
            let expected = of("MedicationRequest", "subject", &|r| {
                token_matches(&r["intent"], intent)
            });
            let query = format!(
                "MedicationRequest?patient={pid}&intent={intent}&_include=MedicationRequest:medication"
            );
            c.check(&query, &expected).await;
            let (matches, includes) = search_all(&server, &query).await;
            assert_eq!(matches, keyed("MedicationRequest", &expected), "{query}");
            let medications: Ids = data
                .all("MedicationRequest")
                .iter()
                .filter(|r| expected.contains(&id(r)))
                .filter_map(|r| r["medicationReference"]["reference"].as_str())
                .map(str::to_string)
                .filter(|key| {
                    data.all("Medication")
                        .iter()
                        .any(|m| format!("Medication/{}", id(m)) == *key)
                })
                .collect();
            assert_eq!(includes, medications, "{query}: included medications");
            saw_medication |= !includes.is_empty();
        }
        for status in ["active", "stopped,completed", "active,on-hold"] {
            let expected = of("MedicationRequest", "subject", &|r| {
                token_matches(&r["intent"], "order") && token_matches(&r["status"], status)
            });
            c.check(
                &format!("MedicationRequest?patient={pid}&intent=order&status={status}"),
                &expected,
            )
            .await;
        }
        if let Some(middle) = median_date(&requests, "authoredOn") {
            for prefix in ["ge", "le", "gt", "lt"] {
                for form in date_forms(&middle) {
                    let value = format!("{prefix}{form}");
                    let expected = of("MedicationRequest", "subject", &|r| {
                        token_matches(&r["intent"], "order") && dated(r, &["authoredOn"], &value)
                    });
                    c.check(
                        &format!(
                            "MedicationRequest?patient={pid}&intent=order&authoredon={}",
                            enc(&value)
                        ),
                        &expected,
                    )
                    .await;
                }
            }
        }

        // Procedure: patient, patient+date, patient+code+date, patient+status.
        let procedures = mine("Procedure", "subject");
        c.check(
            &format!("Procedure?patient={pid}"),
            &of("Procedure", "subject", &|_| true),
        )
        .await;
        let procedure_dates = ["performedDateTime", "performedPeriod"];
        let middle = median_date(&procedures, "performedPeriod")
            .or_else(|| median_date(&procedures, "performedDateTime"));
        if let Some(middle) = middle {
            for prefix in ["ge", "le", "gt", "lt"] {
                for form in date_forms(&middle) {
                    let value = format!("{prefix}{form}");
                    let expected = of("Procedure", "subject", &|r| {
                        dated(r, &procedure_dates, &value)
                    });
                    c.check(
                        &format!("Procedure?patient={pid}&date={}", enc(&value)),
                        &expected,
                    )
                    .await;
                }
            }
            if let Some(code) =
                most_common(procedures.iter().filter_map(|r| first_code(&r["code"])))
            {
                let value = format!("ge{}", &middle[..4]);
                let expected = of("Procedure", "subject", &|r| {
                    token_matches(&r["code"], &code)
                        && dated(r, &procedure_dates, &format!("ge{}-01-01", &middle[..4]))
                });
                c.check(
                    &format!("Procedure?patient={pid}&code={}&date={value}", enc(&code)),
                    &expected,
                )
                .await;
            }
        }
        for status in ["completed", "completed,in-progress", "not-done"] {
            let expected = of("Procedure", "subject", &|r| {
                token_matches(&r["status"], status)
            });
            c.check(
                &format!("Procedure?patient={pid}&status={status}"),
                &expected,
            )
            .await;
        }

        // DiagnosticReport: patient+category, patient+code, patient+category+date, patient+status.
        let reports = mine("DiagnosticReport", "subject");
        let category = most_common(reports.iter().filter_map(|r| first_code(&r["category"])));
        if let Some(category) = &category {
            let bare = category.rsplit('|').next().unwrap().to_string();
            for query in [category.clone(), bare] {
                let expected = of("DiagnosticReport", "subject", &|r| {
                    token_matches(&r["category"], &query)
                });
                c.check(
                    &format!("DiagnosticReport?patient={pid}&category={}", enc(&query)),
                    &expected,
                )
                .await;
            }
            if let Some(middle) = median_date(&reports, "effectiveDateTime") {
                for prefix in ["ge", "le", "gt", "lt"] {
                    for form in date_forms(&middle) {
                        let value = format!("{prefix}{form}");
                        let expected = of("DiagnosticReport", "subject", &|r| {
                            token_matches(&r["category"], category)
                                && dated(r, &["effectiveDateTime", "effectivePeriod"], &value)
                        });
                        c.check(
                            &format!(
                                "DiagnosticReport?patient={pid}&category={}&date={}",
                                enc(category),
                                enc(&value)
                            ),
                            &expected,
                        )
                        .await;
                    }
                }
            }
        }
        if let Some(code) = most_common(reports.iter().filter_map(|r| first_code(&r["code"]))) {
            let expected = of("DiagnosticReport", "subject", &|r| {
                token_matches(&r["code"], &code)
            });
            c.check(
                &format!("DiagnosticReport?patient={pid}&code={}", enc(&code)),
                &expected,
            )
            .await;
        }
        for status in ["final", "final,amended", "preliminary"] {
            let expected = of("DiagnosticReport", "subject", &|r| {
                token_matches(&r["status"], status)
            });
            c.check(
                &format!("DiagnosticReport?patient={pid}&status={status}"),
                &expected,
            )
            .await;
        }

        // CarePlan: patient+category, patient+category+date, patient+category+status.
        let plans = mine("CarePlan", "subject");
        if let Some(category) = most_common(plans.iter().filter_map(|r| first_code(&r["category"])))
        {
            let expected = of("CarePlan", "subject", &|r| {
                token_matches(&r["category"], &category)
            });
            c.check(
                &format!("CarePlan?patient={pid}&category={}", enc(&category)),
                &expected,
            )
            .await;
            if let Some(middle) = median_date(&plans, "period") {
                for prefix in ["ge", "le", "gt", "lt"] {
                    for form in date_forms(&middle) {
                        let value = format!("{prefix}{form}");
                        let expected = of("CarePlan", "subject", &|r| {
                            token_matches(&r["category"], &category)
                                && dated(r, &["period"], &value)
                        });
                        c.check(
                            &format!(
                                "CarePlan?patient={pid}&category={}&date={}",
                                enc(&category),
                                enc(&value)
                            ),
                            &expected,
                        )
                        .await;
                    }
                }
            }
            for status in ["active", "completed", "active,completed"] {
                let expected = of("CarePlan", "subject", &|r| {
                    token_matches(&r["category"], &category) && token_matches(&r["status"], status)
                });
                c.check(
                    &format!(
                        "CarePlan?patient={pid}&category={}&status={status}",
                        enc(&category)
                    ),
                    &expected,
                )
                .await;
            }
        }

        // Goal: patient, patient+lifecycle-status.
        c.check(
            &format!("Goal?patient={reference}"),
            &of("Goal", "subject", &|_| true),
        )
        .await;
        for status in ["accepted", "active,completed", "proposed"] {
            let expected = of("Goal", "subject", &|r| {
                token_matches(&r["lifecycleStatus"], status)
            });
            c.check(
                &format!("Goal?patient={pid}&lifecycle-status={status}"),
                &expected,
            )
            .await;
        }

        // AllergyIntolerance: patient, patient+clinical-status.
        c.check(
            &format!("AllergyIntolerance?patient={pid}"),
            &of("AllergyIntolerance", "patient", &|_| true),
        )
        .await;
        for status in [
            "active",
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical|active",
            "inactive,resolved",
        ] {
            let expected = of("AllergyIntolerance", "patient", &|r| {
                token_matches(&r["clinicalStatus"], status)
            });
            c.check(
                &format!(
                    "AllergyIntolerance?patient={pid}&clinical-status={}",
                    enc(status)
                ),
                &expected,
            )
            .await;
        }

        // _revinclude=Provenance:target on the Patient.
        let query = format!("Patient?_id={pid}&_revinclude=Provenance:target");
        let (matches, includes) = search_all(&server, &query).await;
        assert_eq!(matches, [reference.clone()].into(), "{query}");
        let provenances = keyed(
            "Provenance",
            &data.ids("Provenance", |r| refers(r, "target", &reference)),
        );
        assert_eq!(includes, provenances, "{query}: included provenance");
        saw_provenance |= !includes.is_empty();
    }

    assert!(
        saw_medication,
        "some MedicationRequest includes its Medication"
    );
    assert!(saw_provenance, "some Patient has a Provenance");

    // Organization: name, address. Practitioner: name, identifier.
    for organization in data.all("Organization") {
        let name = organization["name"].as_str().unwrap();
        let query: String = name.chars().take(6).collect::<String>().to_lowercase();
        let expected = data.ids("Organization", |r| {
            r["name"].as_str().is_some_and(|n| starts(&[n], &query))
                || r["alias"].as_array().is_some_and(|a| {
                    starts(
                        &a.iter().filter_map(Value::as_str).collect::<Vec<_>>(),
                        &query,
                    )
                })
        });
        c.check(&format!("Organization?name={}", enc(&query)), &expected)
            .await;
        if let Some(city) = organization["address"][0]["city"].as_str() {
            let expected = data.ids("Organization", |r| starts(&name_parts(&r["address"]), city));
            c.check(&format!("Organization?address={}", enc(city)), &expected)
                .await;
        }
    }
    for practitioner in data.all("Practitioner") {
        let family = practitioner["name"][0]["family"].as_str().unwrap();
        let expected = data.ids("Practitioner", |r| starts(&name_parts(&r["name"]), family));
        c.check(&format!("Practitioner?name={}", enc(family)), &expected)
            .await;
        for identifier in practitioner["identifier"].as_array().unwrap() {
            let query = format!(
                "{}|{}",
                identifier["system"].as_str().unwrap(),
                identifier["value"].as_str().unwrap()
            );
            let expected = data.ids("Practitioner", |r| token_matches(&r["identifier"], &query));
            c.check(
                &format!("Practitioner?identifier={}", enc(&query)),
                &expected,
            )
            .await;
        }
    }

    // Paging: the patient with the most observations, seven per page, every page walked.
    let busiest = most_common(
        data.all("Observation")
            .iter()
            .filter_map(|r| r["subject"]["reference"].as_str().map(str::to_string)),
    )
    .unwrap();
    let expected = data.ids("Observation", |r| refers(r, "subject", &busiest));
    assert!(expected.len() > 20, "{busiest} has many observations");
    let query = format!("Observation?patient={busiest}&_count=7");
    let (matches, includes) = search_all(&server, &query).await;
    assert!(includes.is_empty(), "{query}");
    assert_eq!(
        matches,
        keyed("Observation", &expected),
        "{query}: walked pages"
    );

    eprintln!(
        "US Core search matrix ({backend:?}): {} searches, {} with a non-empty expected set",
        c.checked, c.non_empty
    );
    assert!(
        c.non_empty * 2 > c.checked,
        "most combinations match something"
    );
}
