//! Search plans (src/store/search/plan.rs, count.rs): the probe order keeps every result,
//! and each `_total` mode answers as documented: `accurate` the exact count, `estimate` a
//! number (exact up to 1,000 matches), `none` no total, absent a total only when the first
//! page holds every match. One Patient's record of thousands of Observations is paged in
//! order from its reference, both ways, and counted on the index tables.

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    probed_criteria_keep_their_results,
    totals_by_mode,
    grown_record_pages_in_order,
);

async fn search(server: &Server, query: &str) -> Value {
    let bundle = expect_json(server.get(query).await, 200).await;
    assert_eq!(bundle["resourceType"], "Bundle", "{query}");
    bundle
}

async fn matches(server: &Server, query: &str) -> Vec<String> {
    let bundle = search(server, query).await;
    let mut ids: Vec<String> = bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|entry| entry["search"]["mode"] == "match")
                .map(|entry| entry["resource"]["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn observation(id: &str, patient: &str, category: &str, date: &str, value: Option<i64>) -> Value {
    let mut observation = json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": category
        }]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": date
    });
    if let Some(value) = value {
        observation["valueQuantity"] =
            json!({"value": value, "system": "http://unitsofmeasure.org", "code": "mg/dL"});
    }
    observation
}

async fn probed_criteria_keep_their_results(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let mut resources = vec![
        json!({"resourceType": "Patient", "id": "a"}),
        json!({"resourceType": "Patient", "id": "b"}),
        observation("a1", "a", "laboratory", "2021-03-01", Some(90)),
        observation("a2", "a", "laboratory", "2014-03-01", None),
        observation("a3", "a", "vital-signs", "2022-03-01", Some(120)),
    ];
    // Patient b's many labs: the common code that must not be scanned per match.
    resources.extend((0..40).map(|i| {
        observation(
            &format!("b{i:02}"),
            "b",
            "laboratory",
            "2020-01-01",
            Some(i),
        )
    }));
    server.import(&resources);
    let cases: [(&str, &[&str]); 9] = [
        ("Observation?patient=a&category=laboratory", &["a1", "a2"]),
        ("Observation?category=laboratory&patient=a", &["a1", "a2"]),
        (
            "Observation?patient=a&category=laboratory&date=ge2015-01-01",
            &["a1"],
        ),
        (
            "Observation?category=laboratory&date=ge2015-01-01&patient=Patient/a",
            &["a1"],
        ),
        ("Observation?patient=a&category:not=laboratory", &["a3"]),
        ("Observation?patient=a&value-quantity:missing=true", &["a2"]),
        (
            "Observation?patient=a&value-quantity:missing=false&category=laboratory",
            &["a1"],
        ),
        ("Observation?patient=a&value-quantity=gt100", &["a3"]),
        (
            "Patient/a/Observation?category=laboratory&date=lt2015",
            &["a2"],
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(matches(&server, query).await, expected, "{query}");
    }
    let labs = search(
        &server,
        "Observation?category=laboratory&_total=accurate&_count=5",
    )
    .await;
    assert_eq!(labs["total"], 42);
    let b_labs = search(
        &server,
        "Observation?patient=b&category=laboratory&value-quantity=lt10&_count=100",
    )
    .await;
    assert_eq!(b_labs["total"], 10);
}

async fn totals_by_mode(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    // Past the 1,000 matches an estimate counts exactly.
    let mut resources = vec![json!({"resourceType": "Patient", "id": "g"})];
    resources.extend((0..1_050).map(|i| {
        let category = if i < 1_020 {
            "laboratory"
        } else {
            "vital-signs"
        };
        observation(&format!("g{i}"), "g", category, "2020-01-01", Some(i))
    }));
    server.import(&resources);
    let base = "Observation?patient=g&category=laboratory&_count=10";

    let accurate = search(&server, &format!("{base}&_total=accurate")).await;
    assert_eq!(accurate["total"], 1_020);
    assert_eq!(accurate["entry"].as_array().unwrap().len(), 10);

    let estimate = search(&server, &format!("{base}&_total=estimate")).await;
    let estimated = estimate["total"].as_i64().expect("an estimate is a number");
    match backend {
        Backend::Sqlite => assert_eq!(estimated, 1_020),
        Backend::Postgres => assert!(estimated > 1_000, "estimate {estimated}"),
    }
    let small = search(
        &server,
        "Observation?patient=g&category=vital-signs&_count=10&_total=estimate",
    )
    .await;
    assert_eq!(small["total"], 30);

    let none = search(&server, &format!("{base}&_total=none")).await;
    assert!(none.get("total").is_none(), "{none}");
    let fits = search(
        &server,
        "Observation?patient=g&category=vital-signs&_total=none",
    )
    .await;
    assert!(fits.get("total").is_none(), "{fits}");
    assert_eq!(fits["entry"].as_array().unwrap().len(), 30);

    let absent = search(&server, base).await;
    assert!(absent.get("total").is_none(), "{absent}");
    let absent_fits = search(&server, "Observation?patient=g&category=vital-signs").await;
    assert_eq!(absent_fits["total"], 30);

    let count = search(
        &server,
        "Observation?patient=g&category=laboratory&_summary=count",
    )
    .await;
    assert_eq!(count["total"], 1_020);
}

fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|link| link["relation"] == relation)
        .and_then(|link| link["url"].as_str())
        .map(str::to_string)
}

fn match_ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|entry| entry["resource"]["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Patient g holds 3,000 Observations among others' (ids on both sides of g's): the search
/// driven by g's reference pages through every lab since 2015 in id order, back again, and
/// counts them; on PostgreSQL the first page's plan walks g's lookup rows in id order into a
/// LIMIT (no Sort over every match; `migrations/postgres/0018_reference_lookup_order.sql`).
async fn grown_record_pages_in_order(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let mut resources = vec![
        json!({"resourceType": "Patient", "id": "g"}),
        json!({"resourceType": "Patient", "id": "h"}),
    ];
    let mut expected = Vec::new();
    for i in 0..3_000 {
        let id = format!("g{i:04}");
        let category = if i % 10 == 3 {
            "vital-signs"
        } else {
            "laboratory"
        };
        let date = if i % 4 == 0 {
            "2010-05-01"
        } else {
            "2019-05-01"
        };
        if category == "laboratory" && date > "2015" {
            expected.push(id.clone());
        }
        resources.push(observation(&id, "g", category, date, Some(i)));
    }
    for i in 0..300 {
        for prefix in ["a", "z"] {
            let id = format!("{prefix}{i:04}");
            resources.push(observation(&id, "h", "laboratory", "2019-05-01", None));
        }
    }
    server.import(&resources);
    expected.sort();
    assert_eq!(expected.len(), 1_950);

    let query = "Observation?patient=g&category=laboratory&date=ge2015-01-01";
    let first = search(&server, &format!("{query}&_count=500&_total=accurate")).await;
    assert_eq!(first["total"], 1_950);
    let mut pages = vec![match_ids(&first)];
    let mut bundle = first;
    while let Some(next) = link(&bundle, "next") {
        bundle = expect_json(server.client.get(&next).send().await.unwrap(), 200).await;
        pages.push(match_ids(&bundle));
        assert!(pages.len() <= 5, "more pages than matches");
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [500, 500, 500, 450]
    );
    assert_eq!(pages.concat(), expected);
    // Back from the last page: the third again.
    let previous = link(&bundle, "previous").expect("a previous link");
    let back = expect_json(server.client.get(&previous).send().await.unwrap(), 200).await;
    assert_eq!(match_ids(&back), pages[2]);

    let plain = search(
        &server,
        "Observation?patient=g&category=laboratory&_count=3",
    )
    .await;
    assert_eq!(match_ids(&plain), ["g0000", "g0001", "g0002"]);
    let estimate = search(&server, &format!("{query}&_count=1&_total=estimate")).await;
    assert!(estimate["total"].as_i64().unwrap() > 1_000, "{estimate}");

    if backend == Backend::Postgres {
        first_page_plan_is_ordered(&server.db.url).await;
    }
}

/// The first page's SQL as `src/store/search/plan.rs` writes it for PostgreSQL (the reference
/// drives, read in id order, each candidate looked up with its probes): its plan has no
/// Sort, and its Limit sits over the ordered lookup.
async fn first_page_plan_is_ordered(url: &str) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let sql = "EXPLAIN SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.body \
        FROM (SELECT DISTINCT resource_id FROM search_reference WHERE resource_type = 'Observation' \
        AND param = 'patient' AND ((target_id = 'g' AND target_type = 'Patient'))) d \
        CROSS JOIN LATERAL (SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.body \
        FROM resources r WHERE r.id = d.resource_id AND r.deleted = false \
        AND r.resource_type = 'Observation' \
        AND EXISTS (SELECT 1 FROM search_token t WHERE t.resource_type = 'Observation' \
        AND t.resource_id = r.id AND t.param = 'category' AND ((code = 'laboratory'))) LIMIT 1) r \
        WHERE r.resource_type = 'Observation' ORDER BY r.resource_type ASC, d.resource_id ASC LIMIT 51";
    let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    let text = lines.join("\n");
    assert!(lines[0].starts_with("Limit"), "{text}");
    assert!(!text.contains("Sort"), "a Sort over the matches: {text}");
    assert!(text.contains("search_reference_lookup"), "{text}");
}
