//! Every write stores its search index rows and Patient compartment in the same transaction:
//! checked in the database itself, since search is not served yet.

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    writes_maintain_index_rows_and_compartments,
    stale_index_rows_are_rebuilt_at_start_and_by_reindex,
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
    let output = std::process::Command::new(kiln_bin())
        .args(["reindex", "--database-url", &db])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("re-indexed 1 resources"));
    assert_eq!(count(&db, "search_token", "Patient", &id).await, tokens);
}
