//! Composite search parameters: every component of a value must match within one tuple (one
//! item of the composite's expression), whatever the write path that indexed it.

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    components_match_within_one_tuple,
    code_value_quantity_takes_prefixes_and_units,
    code_value_concept_and_component_concepts,
    code_value_date_and_string,
    or_and_and_of_composite_values,
    reference_components_and_bad_values,
    transaction_import_and_reindex_write_tuples,
);

const LOINC: &str = "http://loinc.org";
const SYSTOLIC: &str = "8480-6";
const DIASTOLIC: &str = "8462-4";

async fn matches(server: &Server, query: &str) -> Vec<String> {
    let bundle = expect_json(server.get(query).await, 200).await;
    assert_eq!(bundle["type"], "searchset", "{bundle}");
    let mut ids: Vec<String> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["search"]["mode"] == "match")
        .map(|entry| entry["resource"]["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

async fn put(server: &Server, resource: &Value) {
    let path = format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap(),
        resource["id"].as_str().unwrap()
    );
    let response = server.put(&path, resource).await;
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
}

fn concept(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

fn mm_hg(value: i64) -> Value {
    json!({"value": value, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"})
}

/// A blood pressure panel of `patient` with its systolic and diastolic components.
fn blood_pressure(id: &str, patient: &str, systolic: i64, diastolic: i64) -> Value {
    json!({
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "code": concept(LOINC, "85354-9"),
        "subject": {"reference": format!("Patient/{patient}")},
        "component": [
            {"code": concept(LOINC, SYSTOLIC), "valueQuantity": mm_hg(systolic)},
            {"code": concept(LOINC, DIASTOLIC), "valueQuantity": mm_hg(diastolic)}
        ]
    })
}

/// An Observation with `code` and `value` (`valueQuantity`, `valueString`, ...).
fn observation(id: &str, code: &str, value: (&str, Value)) -> Value {
    let mut observation = json!({
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "code": concept(LOINC, code),
    });
    observation[value.0] = value.1;
    observation
}

/// bp-low-high: systolic 90, diastolic 120, so "systolic > 100" holds for its components
/// taken separately but not within one of them.
async fn seed_blood_pressures(server: &Server) {
    for (id, family) in [("ann", "Ann"), ("bob", "Bob")] {
        let mut resource = patient(family);
        resource["id"] = json!(id);
        put(server, &resource).await;
    }
    put(server, &blood_pressure("bp-low-high", "ann", 90, 120)).await;
    put(server, &blood_pressure("bp-high", "bob", 130, 85)).await;
    put(server, &blood_pressure("bp-normal", "ann", 110, 70)).await;
    let weight =
        json!({"value": 70, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"});
    put(
        server,
        &observation("weight", "29463-7", ("valueQuantity", weight)),
    )
    .await;
}

async fn components_match_within_one_tuple(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed_blood_pressures(&server).await;
    assert_eq!(
        matches(
            &server,
            "Observation?component-code-value-quantity=http://loinc.org|8480-6$gt100"
        )
        .await,
        ["bp-high", "bp-normal"]
    );
    assert_eq!(
        matches(
            &server,
            "Observation?component-code-value-quantity=8462-4$gt100"
        )
        .await,
        ["bp-low-high"]
    );
    assert_eq!(
        matches(
            &server,
            "Observation?component-code-value-quantity=8480-6$120"
        )
        .await,
        Vec::<String>::new()
    );
    // combo-*: the Observation's own code and value, or one component's.
    assert_eq!(
        matches(
            &server,
            "Observation?combo-code-value-quantity=8480-6$gt100"
        )
        .await,
        ["bp-high", "bp-normal"]
    );
    assert_eq!(
        matches(&server, "Observation?combo-code-value-quantity=29463-7$70").await,
        ["weight"]
    );
    // :missing, also negated.
    assert_eq!(
        matches(
            &server,
            "Observation?component-code-value-quantity:missing=true"
        )
        .await,
        ["weight"]
    );
    assert_eq!(
        matches(
            &server,
            "Observation?component-code-value-quantity:missing=false"
        )
        .await,
        ["bp-high", "bp-low-high", "bp-normal"]
    );
    // Through a reverse chain.
    assert_eq!(
        matches(
            &server,
            "Patient?_has:Observation:subject:component-code-value-quantity=8480-6$gt100"
        )
        .await,
        ["ann", "bob"]
    );
    assert_eq!(
        matches(
            &server,
            "Patient?_has:Observation:subject:component-code-value-quantity=8480-6$gt120"
        )
        .await,
        ["bob"]
    );
    // An update replaces the tuples.
    put(&server, &blood_pressure("bp-low-high", "ann", 140, 120)).await;
    assert_eq!(
        matches(
            &server,
            "Observation?component-code-value-quantity=8480-6$gt135"
        )
        .await,
        ["bp-low-high"]
    );
    assert_eq!(
        matches(
            &server,
            "Observation?component-code-value-quantity=8480-6$90"
        )
        .await,
        Vec::<String>::new()
    );
    // Sorting and :missing by a component's own parameter read its rows, not the tuples'.
    assert_eq!(
        matches(&server, "Observation?component-value-quantity:missing=true").await,
        ["weight"]
    );
    let bundle = expect_json(
        server
            .get("Observation?_sort=component-value-quantity&_count=3")
            .await,
        200,
    )
    .await;
    let order: Vec<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["resource"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["bp-normal", "bp-high", "bp-low-high"]);
}

async fn code_value_quantity_takes_prefixes_and_units(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let kg = |value: f64| json!({"value": value, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"});
    put(
        &server,
        &observation("w70", "29463-7", ("valueQuantity", kg(70.0))),
    )
    .await;
    put(
        &server,
        &observation("w85", "29463-7", ("valueQuantity", kg(85.0))),
    )
    .await;
    let cm =
        json!({"value": 85, "unit": "cm", "system": "http://unitsofmeasure.org", "code": "cm"});
    put(
        &server,
        &observation("h85", "8302-2", ("valueQuantity", cm)),
    )
    .await;
    let cases: [(&str, &[&str]); 10] = [
        ("29463-7$70", &["w70"]),
        ("29463-7$gt70", &["w85"]),
        ("29463-7$ge70", &["w70", "w85"]),
        ("29463-7$lt85", &["w70"]),
        ("29463-7$le85", &["w70", "w85"]),
        ("29463-7$ne70", &["w85"]),
        ("29463-7$lt70", &[]),
        (
            "http://loinc.org|29463-7$85|http://unitsofmeasure.org|kg",
            &["w85"],
        ),
        ("29463-7$85||kg", &["w85"]),
        ("29463-7$85|http://unitsofmeasure.org|cm", &[]),
    ];
    for (value, expected) in cases {
        assert_eq!(
            matches(&server, &format!("Observation?code-value-quantity={value}")).await,
            expected,
            "{value}"
        );
    }
    assert_eq!(
        matches(&server, "Observation?code-value-quantity=8302-2$85").await,
        ["h85"]
    );
}

async fn code_value_concept_and_component_concepts(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let sct = "http://snomed.info/sct";
    let smoking = |id: &str, code: &str, value: &str| {
        observation(id, code, ("valueCodeableConcept", concept(sct, value)))
    };
    put(&server, &smoking("former", "72166-2", "8517006")).await;
    put(&server, &smoking("never", "72166-2", "266919005")).await;
    put(&server, &smoking("other-code", "11111-1", "8517006")).await;
    let cases: [(&str, &[&str]); 5] = [
        (
            "http://loinc.org|72166-2$http://snomed.info/sct|8517006",
            &["former"],
        ),
        ("72166-2$266919005", &["never"]),
        ("72166-2$8517006,72166-2$266919005", &["former", "never"]),
        ("11111-1$266919005", &[]),
        ("72166-2$http://loinc.org|8517006", &[]),
    ];
    for (value, expected) in cases {
        assert_eq!(
            matches(&server, &format!("Observation?code-value-concept={value}")).await,
            expected,
            "{value}"
        );
    }
    // Components pair their own code and concept.
    let survey = json!({
        "resourceType": "Observation",
        "id": "survey",
        "status": "final",
        "code": concept(LOINC, "99999-9"),
        "component": [
            {"code": concept(LOINC, "aaa"), "valueCodeableConcept": concept(sct, "yes")},
            {"code": concept(LOINC, "bbb"), "valueCodeableConcept": concept(sct, "no")}
        ]
    });
    put(&server, &survey).await;
    assert_eq!(
        matches(&server, "Observation?component-code-value-concept=aaa$yes").await,
        ["survey"]
    );
    assert_eq!(
        matches(&server, "Observation?component-code-value-concept=aaa$no").await,
        Vec::<String>::new()
    );
    assert_eq!(
        matches(&server, "Observation?combo-code-value-concept=bbb$no").await,
        ["survey"]
    );
}

async fn code_value_date_and_string(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let dated =
        |id: &str, code: &str, date: &str| observation(id, code, ("valueDateTime", json!(date)));
    put(&server, &dated("may-2020", "11778-8", "2020-05-01")).await;
    put(&server, &dated("march-2021", "11778-8", "2021-03-10")).await;
    put(&server, &dated("other-march-2021", "21112-8", "2021-03-10")).await;
    let period = json!({"start": "2022-01-01", "end": "2022-01-31"});
    put(
        &server,
        &observation("jan-2022", "11778-8", ("valuePeriod", period)),
    )
    .await;
    let cases: [(&str, &[&str]); 7] = [
        ("11778-8$2021-03", &["march-2021"]),
        ("11778-8$2021-03-10", &["march-2021"]),
        ("11778-8$ge2020-06", &["jan-2022", "march-2021"]),
        ("11778-8$lt2021", &["may-2020"]),
        ("11778-8$2022-01", &["jan-2022"]),
        ("21112-8$2021", &["other-march-2021"]),
        ("11778-8$2019", &[]),
    ];
    for (value, expected) in cases {
        assert_eq!(
            matches(&server, &format!("Observation?code-value-date={value}")).await,
            expected,
            "{value}"
        );
    }
    // Strings: prefix, case- and accent-insensitive.
    put(
        &server,
        &observation("note", "8251-1", ("valueString", json!("Zoë was here"))),
    )
    .await;
    put(
        &server,
        &observation("other-note", "8252-9", ("valueString", json!("Zoe"))),
    )
    .await;
    let cases: [(&str, &[&str]); 4] = [
        ("8251-1$zoe", &["note"]),
        ("8251-1$ZOË%20WAS", &["note"]),
        ("8251-1$was", &[]),
        ("8252-9$zoe", &["other-note"]),
    ];
    for (value, expected) in cases {
        assert_eq!(
            matches(&server, &format!("Observation?code-value-string={value}")).await,
            expected,
            "{value}"
        );
    }
}

async fn or_and_and_of_composite_values(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed_blood_pressures(&server).await;
    // OR: each value within one tuple of its own.
    assert_eq!(
        matches(
            &server,
            "Observation?component-code-value-quantity=8480-6$gt125,8462-4$lt75"
        )
        .await,
        ["bp-high", "bp-normal"]
    );
    assert_eq!(
        matches(
            &server,
            "Observation?component-code-value-quantity=8480-6$lt95,8462-4$lt60"
        )
        .await,
        ["bp-low-high"]
    );
    // AND: both values, each within some tuple.
    assert_eq!(
        matches(
            &server,
            "Observation?component-code-value-quantity=8480-6$gt100\
             &component-code-value-quantity=8462-4$lt80"
        )
        .await,
        ["bp-normal"]
    );
    assert_eq!(
        matches(
            &server,
            "Observation?component-code-value-quantity=8480-6$gt100\
             &component-code-value-quantity=8462-4$gt100"
        )
        .await,
        Vec::<String>::new()
    );
    // Counted as matched.
    let bundle = expect_json(
        server
            .get("Observation?component-code-value-quantity=8480-6$gt100,8462-4$gt100&_total=accurate&_count=1")
            .await,
        200,
    )
    .await;
    assert_eq!(bundle["total"], 3);
}

async fn reference_components_and_bad_values(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let document = |id: &str| {
        json!({
            "resourceType": "DocumentReference",
            "id": id,
            "status": "current",
            "content": [{"attachment": {"contentType": "text/plain", "data": "aGk="}}]
        })
    };
    put(&server, &document("a")).await;
    put(&server, &document("b")).await;
    let mut relating = document("relating");
    relating["relatesTo"] = json!([
        {"code": "replaces", "target": {"reference": "DocumentReference/a"}},
        {"code": "appends", "target": {"reference": "DocumentReference/b"}}
    ]);
    put(&server, &relating).await;
    let cases: [(&str, &[&str]); 4] = [
        ("DocumentReference/a$replaces", &["relating"]),
        ("b$appends", &["relating"]),
        ("DocumentReference/a$appends", &[]),
        ("DocumentReference/b$replaces", &[]),
    ];
    for (value, expected) in cases {
        assert_eq!(
            matches(&server, &format!("DocumentReference?relationship={value}")).await,
            expected,
            "{value}"
        );
    }
    // `_include=*` follows the references of reference parameters, once each.
    let bundle = expect_json(
        server
            .get("DocumentReference?_id=relating&_include=*")
            .await,
        200,
    )
    .await;
    let mut included: Vec<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["search"]["mode"] == "include")
        .map(|entry| entry["resource"]["id"].as_str().unwrap())
        .collect();
    included.sort();
    assert_eq!(included, ["a", "b"]);
    // Malformed composite values are the client's error, naming the parameter.
    for value in ["a", "a$replaces$x", "$replaces", "a$"] {
        let query = format!("DocumentReference?relationship={value}");
        let outcome = expect_outcome(server.get(&query).await, 400).await;
        assert_eq!(
            outcome["issue"][0]["expression"][0], "relationship",
            "{value}: {outcome}"
        );
    }
    let outcome = expect_outcome(
        server
            .get("Observation?component-code-value-quantity=8480-6$high")
            .await,
        400,
    )
    .await;
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "component-code-value-quantity"
    );
}

/// Index rows of composite components in one table, straight from the database.
async fn component_rows(db_url: &str, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE tuple_id IS NOT NULL");
    if db_url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(db_url).await.unwrap();
        let count = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        count
    } else {
        let pool = sqlx::SqlitePool::connect(db_url).await.unwrap();
        let count = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        count
    }
}

/// Runs fixed SQL (no client text) against the test database.
async fn execute(db_url: &str, sql: &'static str) {
    if db_url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(db_url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(db_url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

async fn transaction_import_and_reindex_write_tuples(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    // Import.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Observation.ndjson");
    let imported = blood_pressure("imported", "nobody", 150, 95);
    std::fs::write(&file, format!("{imported}\n")).unwrap();
    let output = std::process::Command::new(kiln_bin())
        .args(["import", file.to_str().unwrap(), "--database-url", &db.url])
        .env_remove("KILN_DATABASE_URL")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut server = Server::start_on(db, &["--anonymous-access"]).await;
    // Transaction.
    let entry = |resource: Value| {
        json!({
            "resource": resource,
            "request": {"method": "PUT", "url": format!("Observation/{}", resource["id"].as_str().unwrap())}
        })
    };
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            entry(blood_pressure("in-transaction", "nobody", 90, 120)),
            entry(blood_pressure("in-transaction-high", "nobody", 135, 80))
        ]
    });
    expect_json(server.post("", &bundle).await, 200).await;
    let systolic_over_100 = "Observation?component-code-value-quantity=8480-6$gt100";
    let expected = ["imported", "in-transaction-high"];
    assert_eq!(matches(&server, systolic_over_100).await, expected);
    let db = server.db.url.clone();
    let (tokens, quantities) = (
        component_rows(&db, "search_token").await,
        component_rows(&db, "search_quantity").await,
    );
    // Per panel: 2 components × (component-* and combo-*) tuples, one code and one value each.
    assert_eq!((tokens, quantities), (12, 12));

    // Rows of an older extraction (here: lost) are rebuilt at start.
    server.kill9();
    execute(
        &db,
        "DELETE FROM search_quantity WHERE tuple_id IS NOT NULL",
    )
    .await;
    execute(
        &db,
        "UPDATE kiln_settings SET value = 'stale' WHERE key = 'search_index_version'",
    )
    .await;
    server.restart().await;
    assert_eq!(component_rows(&db, "search_quantity").await, quantities);
    assert_eq!(component_rows(&db, "search_token").await, tokens);
    assert_eq!(matches(&server, systolic_over_100).await, expected);
}
