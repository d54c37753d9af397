//! Every write stores its search index rows and Patient compartment in the same transaction:
//! checked in the database itself, since search is not served yet.

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    writes_maintain_index_rows_and_compartments,
    stale_index_rows_are_rebuilt_at_start_and_by_reindex,
    the_patient_column_is_filled_by_its_migration_and_by_reindex,
    import_indexes_and_versions_what_writes_do,
);

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

/// Index rows of one resource in one table, straight from the database.
async fn count(db_url: &str, table: &str, resource_type: &str, id: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE resource_type = $1 AND resource_id = $2");
    if db_url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(db_url).await.unwrap();
        let count = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(resource_type)
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        count
    } else {
        let pool = sqlx::SqlitePool::connect(db_url).await.unwrap();
        let count = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(resource_type)
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        count
    }
}

async fn writes_maintain_index_rows_and_compartments(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let db = server.db.url.clone();
    let patient = server.create(&patient("Indexed")).await;
    let patient_id = patient["id"].as_str().unwrap();
    // identifier, gender, name parts, birthdate, and its own compartment.
    assert!(count(&db, "search_token", "Patient", patient_id).await >= 2);
    assert!(count(&db, "search_string", "Patient", patient_id).await >= 2);
    assert!(count(&db, "search_date", "Patient", patient_id).await >= 1);
    assert_eq!(
        count(&db, "resource_compartment", "Patient", patient_id).await,
        1
    );

    let observation = server
        .create(&json!({
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
            "subject": {"reference": format!("Patient/{patient_id}")},
            "effectiveDateTime": "2019-03-01T10:00:00Z",
            "valueQuantity": {"value": 6.3, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}
        }))
        .await;
    let id = observation["id"].as_str().unwrap().to_string();
    let tokens = count(&db, "search_token", "Observation", &id).await;
    assert!(tokens >= 3, "status, category, code: {tokens}");
    assert!(
        count(&db, "search_reference", "Observation", &id).await >= 2,
        "subject, patient"
    );
    assert!(count(&db, "search_quantity", "Observation", &id).await >= 1);
    assert!(count(&db, "search_date", "Observation", &id).await >= 1);
    assert_eq!(
        count(&db, "resource_compartment", "Observation", &id).await,
        1
    );

    // An update replaces the rows instead of adding to them.
    let mut changed = observation.clone();
    changed.as_object_mut().unwrap().remove("valueQuantity");
    assert_eq!(
        server
            .put(&format!("Observation/{id}"), &changed)
            .await
            .status(),
        200
    );
    assert_eq!(count(&db, "search_quantity", "Observation", &id).await, 0);
    // Without a value, the code-value-quantity and combo-code-value-quantity tuples go too.
    assert_eq!(
        count(&db, "search_token", "Observation", &id).await,
        tokens - 2
    );

    // A delete removes them all.
    assert_eq!(
        server.delete(&format!("Observation/{id}")).await.status(),
        204
    );
    for table in [
        "search_token",
        "search_reference",
        "search_date",
        "resource_compartment",
    ] {
        assert_eq!(count(&db, table, "Observation", &id).await, 0, "{table}");
    }
}

async fn stale_index_rows_are_rebuilt_at_start_and_by_reindex(backend: Backend) {
    let Some(mut server) = Server::start(backend).await else {
        return;
    };
    let db = server.db.url.clone();
    let created = server.create(&patient("Stale")).await;
    let id = created["id"].as_str().unwrap().to_string();
    let tokens = count(&db, "search_token", "Patient", &id).await;
    assert!(tokens > 0);

    // Rows built by an older extraction (here: lost) are rebuilt when the server starts.
    server.kill9();
    execute(&db, "DELETE FROM search_token").await;
    execute(
        &db,
        "UPDATE kiln_settings SET value = 'stale' WHERE key = 'search_index_version'",
    )
    .await;
    server.restart().await;
    assert_eq!(count(&db, "search_token", "Patient", &id).await, tokens);

    // `kiln reindex` rebuilds them on demand.
    server.kill9();
    execute(&db, "DELETE FROM search_token").await;
    assert!(reindex(&db).contains("re-indexed 1 resources"));
    assert_eq!(count(&db, "search_token", "Patient", &id).await, tokens);
}

/// The Patient of each resource's row (`resources.patient`), by `Type/id`.
async fn row_patients(db_url: &str, keys: &[&str]) -> Vec<Option<String>> {
    const SQL: &str = "SELECT patient FROM resources WHERE resource_type || '/' || id = $1";
    let mut patients = Vec::new();
    for key in keys {
        let patient: Option<String> = crate::common::audit::with_pool!(db_url, pool => {
            sqlx::query_scalar(SQL).bind(*key).fetch_one(&pool).await.unwrap()
        });
        patients.push(patient);
    }
    patients
}

/// Runs `kiln reindex` on the database at `db_url`; returns what it printed.
fn reindex(db_url: &str) -> String {
    let output = std::process::Command::new(kiln_bin())
        .args(["reindex", "--database-url", db_url])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The backfill of the migration that added `resources.patient` (sqlite 0020, postgres
/// 0022): its statements after the `ALTER TABLE`, as the migration runs them.
fn patient_backfill(db_url: &str) -> &'static str {
    let migration = if db_url.starts_with("postgres") {
        include_str!("../../migrations/postgres/0022_resource_patient.sql")
    } else {
        include_str!("../../migrations/sqlite/0020_resource_patient.sql")
    };
    let (_, backfill) = migration
        .split_once("ADD COLUMN patient TEXT;")
        .expect("the migration adds the column, then fills it");
    backfill
}

/// `resources.patient` names the one Patient whose compartment holds a resource, so a
/// read's audit event can name it: filled in for existing rows by the migration that added
/// it, and kept by `kiln reindex`.
async fn the_patient_column_is_filled_by_its_migration_and_by_reindex(backend: Backend) {
    let Some(mut server) = Server::start(backend).await else {
        return;
    };
    let db = server.db.url.clone();
    let patient = server.create(&patient("Backfilled")).await;
    let patient_id = patient["id"].as_str().unwrap().to_string();
    let observation = server
        .create(&json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
            "subject": {"reference": format!("Patient/{patient_id}")}
        }))
        .await;
    let practitioner = server
        .create(&json!({"resourceType": "Practitioner", "name": [{"family": "Nobody's"}]}))
        .await;
    let keys = [
        format!("Patient/{patient_id}"),
        format!("Observation/{}", observation["id"].as_str().unwrap()),
        format!("Practitioner/{}", practitioner["id"].as_str().unwrap()),
    ];
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let expected = vec![Some(patient_id.clone()), Some(patient_id), None];
    assert_eq!(
        row_patients(&db, &keys).await,
        expected,
        "written with each version"
    );
    server.kill9();

    // A database from before the column: the migration's backfill fills it in.
    execute(&db, "UPDATE resources SET patient = NULL").await;
    crate::common::audit::execute(&db, patient_backfill(&db)).await;
    assert_eq!(
        row_patients(&db, &keys).await,
        expected,
        "filled in by the migration"
    );

    // `kiln reindex` writes it again with the index rows.
    execute(&db, "UPDATE resources SET patient = NULL").await;
    reindex(&db);
    assert_eq!(row_patients(&db, &keys).await, expected, "kept by reindex");
}

/// Every index table with its columns (the owner columns come first in every dump).
const INDEX_TABLES: [(&str, &[&str]); 8] = [
    (
        "search_token",
        &[
            "param",
            "system",
            "code",
            "display",
            "type_system",
            "type_code",
            "tuple_id",
        ],
    ),
    (
        "search_string",
        &["param", "normalized", "exact", "tuple_id"],
    ),
    ("search_date", &["param", "start_us", "end_us", "tuple_id"]),
    (
        "search_reference",
        &[
            "param",
            "target_type",
            "target_id",
            "url",
            "identifier_system",
            "identifier_value",
            "tuple_id",
        ],
    ),
    (
        "search_quantity",
        &[
            "param", "value", "low", "high", "system", "code", "unit", "tuple_id",
        ],
    ),
    (
        "search_number",
        &["param", "value", "low", "high", "tuple_id"],
    ),
    ("search_uri", &["param", "uri", "tuple_id"]),
    (
        "resource_compartment",
        &["compartment_type", "compartment_id"],
    ),
];

/// Every row of `sql` (one text column), in order.
async fn text_rows(db_url: &str, sql: String) -> Vec<String> {
    if db_url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(db_url).await.unwrap();
        let rows = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows
    } else {
        let pool = sqlx::SqlitePool::connect(db_url).await.unwrap();
        let rows = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows
    }
}

/// The rows of `table` as text, sorted. `_lastUpdated` rows differ by the time of the write:
/// only their owners are kept.
async fn index_dump(db_url: &str, table: &str, columns: &[&str]) -> Vec<String> {
    let fields: Vec<String> = ["resource_type", "resource_id"]
        .iter()
        .chain(columns)
        .map(|column| {
            if *column == "start_us" || *column == "end_us" {
                format!("CASE WHEN param = '_lastUpdated' THEN '' ELSE COALESCE(CAST({column} AS TEXT), '-') END")
            } else {
                format!("COALESCE(CAST({column} AS TEXT), '-')")
            }
        })
        .collect();
    let row = fields.join(" || '|' || ");
    text_rows(db_url, format!("SELECT {row} FROM {table} ORDER BY 1")).await
}

/// Versions as stored: current rows and history, without their times.
async fn version_dump(db_url: &str) -> Vec<String> {
    let mut rows = text_rows(
        db_url,
        "SELECT 'current|' || resource_type || '|' || id || '|' || CAST(version_id AS TEXT) \
         FROM resources ORDER BY 1"
            .into(),
    )
    .await;
    rows.extend(
        text_rows(
            db_url,
            "SELECT resource_type || '|' || id || '|' || CAST(version_id AS TEXT) || '|' || method \
             FROM resource_versions ORDER BY 1"
                .into(),
        )
        .await,
    );
    rows
}

/// Resources that fill every index table: tokens, strings, dates, references, quantities and
/// composite tuples, numbers, uris and compartments.
fn import_sample() -> Vec<Value> {
    vec![
        json!({"resourceType": "Patient", "id": "imp-p1",
            "identifier": [{"system": "urn:mrn", "value": "1",
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}}],
            "name": [{"family": "Importé", "given": ["Ann", "B."]}], "gender": "female",
            "birthDate": "1970-01-02", "telecom": [{"system": "phone", "value": "555-1234"}],
            "address": [{"city": "Springfield", "postalCode": "12345"}]}),
        json!({"resourceType": "Observation", "id": "imp-o1", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure"}], "text": "BP"},
            "subject": {"reference": "Patient/imp-p1"}, "effectiveDateTime": "2020-01-01T10:00:00Z",
            "component": [
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                 "valueQuantity": {"value": 120, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                 "valueQuantity": {"value": 80.5, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}]}),
        json!({"resourceType": "Observation", "id": "imp-o2", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
            "subject": {"reference": "Patient/imp-p1"},
            "effectivePeriod": {"start": "2019-03-01", "end": "2019-03-02T10:00:00+02:00"},
            "valueQuantity": {"value": 6.30, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}}),
        json!({"resourceType": "RiskAssessment", "id": "imp-r1", "status": "final",
            "subject": {"reference": "Patient/imp-p1"}, "prediction": [{"probabilityDecimal": 0.25}]}),
        json!({"resourceType": "ValueSet", "id": "imp-vs", "url": "http://example.org/fhir/ValueSet/imp",
            "status": "active", "name": "ImportSample"}),
    ]
}

/// `kiln import` (batched, prepared before its transaction) stores the same versions and
/// index rows as the same resources written one by one through the API, for new resources,
/// resources that exist already, and a resource twice in one batch.
async fn import_indexes_and_versions_what_writes_do(backend: Backend) {
    let Some(imported) = Server::start(backend).await else {
        return;
    };
    let Some(written) = Server::start(backend).await else {
        return;
    };
    let first = import_sample();
    let mut changed_patient = first[0].clone();
    changed_patient["name"] = json!([{"family": "Renamed", "given": ["Ann"]}]);
    changed_patient["birthDate"] = json!("1970-01");
    let mut changed_observation = first[2].clone();
    changed_observation["valueQuantity"] = json!({"value": 7, "unit": "mmol/L"});
    changed_observation["status"] = json!("amended");
    let mut twice_changed = changed_observation.clone();
    twice_changed
        .as_object_mut()
        .unwrap()
        .remove("valueQuantity");
    let second = vec![changed_patient, changed_observation, twice_changed];

    imported.import(&first);
    imported.import(&second);
    for resource in first.iter().chain(&second) {
        let path = format!(
            "{}/{}",
            resource["resourceType"].as_str().unwrap(),
            resource["id"].as_str().unwrap()
        );
        let response = written.put(&path, resource).await;
        assert!(
            response.status().is_success(),
            "PUT {path}: {}",
            response.status()
        );
    }

    for (table, columns) in INDEX_TABLES {
        let from_import = index_dump(&imported.db.url, table, columns).await;
        let from_writes = index_dump(&written.db.url, table, columns).await;
        assert!(!from_writes.is_empty(), "{table} has rows");
        assert_eq!(from_import, from_writes, "{table}");
    }
    let versions = version_dump(&imported.db.url).await;
    assert!(versions.contains(&"current|Observation|imp-o2|3".to_string()));
    assert_eq!(versions, version_dump(&written.db.url).await);
}
