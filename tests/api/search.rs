//! Search over the index tables: parameter types, modifiers, chains, includes, paging.

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    string_token_and_date_searches,
    references_chains_and_reverse_chains,
    includes_and_revincludes,
    paging_sorting_and_totals,
    compartment_and_post_search,
    unknown_and_malformed_parameters,
    patient_everything_and_docref,
    untyped_chain_follows_the_parameters_targets,
    self_link_shows_only_applied_parameters,
    costly_searches_are_refused_with_the_limit,
    values_under_the_limits_work,
    everything_sends_each_resource_once_per_walk,
    timed_out_searches_free_their_connection,
);

/// Ids of the entries with `mode`, in order.
fn ids(bundle: &Value, mode: &str) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|entry| entry["search"]["mode"] == mode)
                .map(|entry| entry["resource"]["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn search(server: &Server, query: &str) -> Value {
    let bundle = expect_json(server.get(query).await, 200).await;
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "searchset");
    bundle
}

async fn matches(server: &Server, query: &str) -> Vec<String> {
    let mut found = ids(&search(server, query).await, "match");
    found.sort();
    found
}

async fn put(server: &Server, resource: Value) {
    let path = format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap(),
        resource["id"].as_str().unwrap()
    );
    let response = server.put(&path, &resource).await;
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
}

/// Two patients with observations and a practitioner, all with known ids.
async fn seed(server: &Server) {
    put(
        server,
        json!({"resourceType": "Practitioner", "id": "doc", "name": [{"family": "Welby"}]}),
    )
    .await;
    put(
        server,
        json!({"resourceType": "Organization", "id": "org", "name": "Clinic"}),
    )
    .await;
    put(server, json!({
        "resourceType": "Patient", "id": "ana",
        "identifier": [{"system": "http://example.org/mrn", "value": "A1"}],
        "name": [{"family": "Zoë", "given": ["Ana"]}], "gender": "female", "birthDate": "1980-05-17",
        "generalPractitioner": [{"reference": "Practitioner/doc"}],
        "managingOrganization": {"reference": "Organization/org"}
    })).await;
    put(
        server,
        json!({
            "resourceType": "Patient", "id": "bo",
            "identifier": [{"system": "http://example.org/mrn", "value": "B2"}],
            "name": [{"family": "Boyd", "given": ["Bo"]}], "gender": "male", "birthDate": "1975"
        }),
    )
    .await;
    for (id, patient, code, value, date) in [
        ("o1", "ana", "8302-2", 165.0, "2019-03-01T10:00:00Z"),
        ("o2", "ana", "29463-7", 60.5, "2020-07-15T08:30:00+02:00"),
        ("o3", "bo", "8302-2", 180.0, "2021-01-02"),
    ] {
        put(server, json!({
            "resourceType": "Observation", "id": id, "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code}], "text": "Vital"},
            "subject": {"reference": format!("Patient/{patient}")},
            "performer": [{"reference": "Practitioner/doc"}],
            "effectiveDateTime": date,
            "valueQuantity": {"value": value, "unit": "cm", "system": "http://unitsofmeasure.org", "code": "cm"}
        })).await;
    }
    put(
        server,
        json!({
            "resourceType": "Provenance", "id": "prov", "recorded": "2020-01-01T00:00:00Z",
            "target": [{"reference": "Patient/ana"}],
            "agent": [{"who": {"reference": "Practitioner/doc"}}]
        }),
    )
    .await;
}

async fn string_token_and_date_searches(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    // Strings: prefix, case- and accent-insensitive; :exact; :contains.
    assert_eq!(matches(&server, "Patient?name=zoe").await, ["ana"]);
    assert_eq!(matches(&server, "Patient?family=BOY").await, ["bo"]);
    assert_eq!(matches(&server, "Patient?name:exact=Zoë").await, ["ana"]);
    assert!(matches(&server, "Patient?name:exact=zoe").await.is_empty());
    assert_eq!(matches(&server, "Patient?name:contains=oy").await, ["bo"]);
    // Tokens: code, system|code, |code, system|, :not; comma is OR, repeats are AND.
    assert_eq!(matches(&server, "Patient?gender=female").await, ["ana"]);
    assert_eq!(
        matches(&server, "Patient?identifier=http://example.org/mrn|B2").await,
        ["bo"]
    );
    assert!(matches(&server, "Patient?identifier=|B2").await.is_empty());
    assert_eq!(
        matches(&server, "Patient?identifier=http://example.org/mrn|").await,
        ["ana", "bo"]
    );
    assert_eq!(matches(&server, "Patient?gender:not=female").await, ["bo"]);
    assert_eq!(
        matches(&server, "Observation?code=8302-2,29463-7").await,
        ["o1", "o2", "o3"]
    );
    assert_eq!(
        matches(
            &server,
            "Observation?code=http://loinc.org|8302-2&subject=Patient/bo"
        )
        .await,
        ["o3"]
    );
    assert_eq!(
        matches(&server, "Observation?code:text=vit").await,
        ["o1", "o2", "o3"]
    );
    assert_eq!(matches(&server, "Patient?_id=ana,bo").await, ["ana", "bo"]);
    // Dates at every precision, with prefixes; Z and +00:00 are the same instant.
    assert_eq!(matches(&server, "Patient?birthdate=1980").await, ["ana"]);
    assert_eq!(matches(&server, "Patient?birthdate=1980-05").await, ["ana"]);
    assert_eq!(matches(&server, "Patient?birthdate=lt1978").await, ["bo"]);
    assert_eq!(
        matches(&server, "Observation?date=ge2020-01-01").await,
        ["o2", "o3"]
    );
    assert_eq!(
        matches(&server, "Observation?date=2020-07-15").await,
        ["o2"]
    );
    assert_eq!(
        matches(&server, "Observation?date=2019-03-01T10:00:00%2B00:00").await,
        ["o1"]
    );
    assert_eq!(
        matches(&server, "Observation?date=2019-03-01T10:00:00Z").await,
        ["o1"]
    );
    assert_eq!(
        matches(&server, "Observation?date=ge2019-01-01&date=lt2021").await,
        ["o1", "o2"]
    );
    // Quantities and composites.
    assert_eq!(
        matches(&server, "Observation?value-quantity=gt170").await,
        ["o3"]
    );
    assert_eq!(
        matches(
            &server,
            "Observation?value-quantity=165|http://unitsofmeasure.org|cm"
        )
        .await,
        ["o1"]
    );
    assert_eq!(
        matches(&server, "Observation?value-quantity=60.5").await,
        ["o2"]
    );
    assert_eq!(
        matches(
            &server,
            "Observation?code-value-quantity=http://loinc.org|8302-2$gt170"
        )
        .await,
        ["o3"]
    );
    // :missing.
    assert_eq!(
        matches(&server, "Patient?general-practitioner:missing=true").await,
        ["bo"]
    );
    assert_eq!(
        matches(&server, "Patient?general-practitioner:missing=false").await,
        ["ana"]
    );
}

async fn references_chains_and_reverse_chains(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    assert_eq!(
        matches(&server, "Observation?patient=ana").await,
        ["o1", "o2"]
    );
    assert_eq!(
        matches(&server, "Observation?patient=Patient/ana").await,
        ["o1", "o2"]
    );
    assert_eq!(
        matches(&server, "Observation?subject:Patient=bo").await,
        ["o3"]
    );
    let absolute = format!("Observation?subject={}/Patient/bo", server.fhir);
    assert_eq!(matches(&server, &absolute).await, ["o3"]);
    assert_eq!(
        matches(&server, "Observation?subject:Patient.name=zoe").await,
        ["o1", "o2"]
    );
    assert_eq!(
        matches(
            &server,
            "Observation?patient.general-practitioner:Practitioner.name=welby"
        )
        .await,
        ["o1", "o2"]
    );
    assert_eq!(
        matches(&server, "Patient?_has:Observation:patient:code=8302-2").await,
        ["ana", "bo"]
    );
    assert_eq!(
        matches(&server, "Patient?_has:Observation:patient:code=29463-7").await,
        ["ana"]
    );
}

async fn includes_and_revincludes(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    let bundle = search(
        &server,
        "Observation?patient=bo&_include=Observation:subject",
    )
    .await;
    assert_eq!(ids(&bundle, "match"), ["o3"]);
    assert_eq!(ids(&bundle, "include"), ["bo"]);
    let bundle = search(&server, "Patient?_id=ana&_revinclude=Provenance:target").await;
    assert_eq!(ids(&bundle, "include"), ["prov"]);
    let bundle = search(
        &server,
        "Observation?_id=o1&_include=Observation:patient&_include:iterate=Patient:organization",
    )
    .await;
    let mut included = ids(&bundle, "include");
    included.sort();
    assert_eq!(included, ["ana", "org"]);
}

async fn paging_sorting_and_totals(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    // Walk every page of two; a write between pages does not disturb the walk.
    let mut url = server.url("Observation?_count=2");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let bundle = expect_json(server.client.get(&url).send().await.unwrap(), 200).await;
        seen.extend(ids(&bundle, "match"));
        pages += 1;
        if pages == 1 {
            put(&server, json!({"resourceType": "Observation", "id": "o0", "status": "final", "code": {"text": "late"}})).await;
        }
        match bundle["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|link| link["relation"] == "next")
        {
            Some(next) => url = next["url"].as_str().unwrap().to_string(),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(seen, ["o1", "o2", "o3"], "keyset paging by id");
    // And back again through the `previous` links, from the last page.
    let mut back = Vec::new();
    let mut pages_back = 0;
    loop {
        let bundle = expect_json(server.client.get(&url).send().await.unwrap(), 200).await;
        let mut page = ids(&bundle, "match");
        page.extend(back);
        back = page;
        pages_back += 1;
        let links = bundle["link"].as_array().unwrap();
        match links.iter().find(|link| link["relation"] == "previous") {
            Some(previous) => {
                assert!(links.iter().any(|link| link["relation"] == "first"));
                url = previous["url"].as_str().unwrap().to_string();
            }
            None => break,
        }
        assert!(pages_back < 10);
    }
    assert_eq!(
        back,
        ["o0", "o1", "o2", "o3"],
        "previous pages, including the late write"
    );
    let sorted = search(&server, "Patient?_sort=-birthdate").await;
    assert_eq!(ids(&sorted, "match"), ["ana", "bo"]);
    let sorted = search(&server, "Patient?_sort=birthdate").await;
    assert_eq!(ids(&sorted, "match"), ["bo", "ana"]);
    let sorted = search(&server, "Observation?_sort=-date&_count=2").await;
    assert_eq!(ids(&sorted, "match"), ["o3", "o2"]);
    let next = sorted["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap();
    let page = expect_json(
        server
            .client
            .get(next["url"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(ids(&page, "match")[0], "o1");
    let previous = page["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "previous")
        .expect("a sorted page after the first links back");
    let first = expect_json(
        server
            .client
            .get(previous["url"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(ids(&first, "match"), ["o3", "o2"]);
    let total = search(&server, "Observation?_total=accurate&_count=1").await;
    assert_eq!(total["total"], 4);
    let count = search(&server, "Observation?_summary=count").await;
    assert_eq!(count["total"], 4);
    assert!(count["entry"].as_array().unwrap().is_empty());
    let summary = search(&server, "Patient?_id=ana&_elements=gender").await;
    let resource = &summary["entry"][0]["resource"];
    assert_eq!(resource["gender"], "female");
    assert!(resource.get("name").is_none());
}

async fn compartment_and_post_search(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    assert_eq!(
        matches(&server, "Patient/ana/Observation").await,
        ["o1", "o2"]
    );
    assert_eq!(
        matches(&server, "Patient/ana/Observation?code=29463-7").await,
        ["o2"]
    );
    let response = server
        .client
        .post(server.url("Observation/_search"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("patient=bo&code=8302-2")
        .send()
        .await
        .unwrap();
    let bundle = expect_json(response, 200).await;
    assert_eq!(ids(&bundle, "match"), ["o3"]);
    let system = search(&server, "?_type=Patient&_id=bo").await;
    assert_eq!(ids(&system, "match"), ["bo"]);
}

async fn unknown_and_malformed_parameters(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    let bundle = search(&server, "Patient?gender=male&unknown-thing=1").await;
    assert_eq!(ids(&bundle, "match"), ["bo"]);
    let outcome = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["search"]["mode"] == "outcome")
        .expect("an OperationOutcome entry reports the ignored parameter");
    assert!(outcome["resource"].to_string().contains("unknown-thing"));
    let strict = server
        .client
        .get(server.url("Patient?unknown-thing=1"))
        .header("prefer", "handling=strict")
        .send()
        .await
        .unwrap();
    expect_outcome(strict, 400).await;
    for (query, param) in [
        ("Observation?date=2020-13-45", "date"),
        ("Observation?date=xx2020", "date"),
        ("Observation?value-quantity=abc", "value-quantity"),
        ("Patient?birthdate=ge", "birthdate"),
        ("Observation?subject.nope=1", "subject.nope"),
        ("Patient?_sort=nope", "_sort"),
        ("Patient?_count=-1", "_count"),
        ("Patient?gender:exact=male", "gender:exact"),
    ] {
        let outcome = expect_outcome(server.get(query).await, 400).await;
        let text = outcome.to_string();
        assert!(text.contains(param), "{query}: {text}");
    }
    expect_outcome(server.get("Nope?name=x").await, 404).await;
    expect_outcome(server.get("Patient?_cursor=bogus").await, 400).await;
}

async fn patient_everything_and_docref(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    put(
        &server,
        json!({
            "resourceType": "DocumentReference", "id": "doc1", "status": "current",
            "type": {"coding": [{"system": "http://loinc.org", "code": "34133-9"}]},
            "subject": {"reference": "Patient/ana"},
            "content": [{"attachment": {"contentType": "text/plain", "data": "aGVsbG8="}}],
            "context": {"period": {"start": "2020-02-01", "end": "2020-02-03"}}
        }),
    )
    .await;
    let everything = search(&server, "Patient/ana/$everything").await;
    let mut matched = ids(&everything, "match");
    matched.sort();
    assert_eq!(matched, ["ana", "doc1", "o1", "o2", "prov"]);
    let mut included = ids(&everything, "include");
    included.sort();
    assert_eq!(included, ["doc", "org"], "what the compartment references");
    let typed = search(&server, "Patient/ana/$everything?_type=Observation").await;
    let mut typed_ids = ids(&typed, "match");
    typed_ids.sort();
    assert_eq!(typed_ids, ["o1", "o2"]);
    // Pages of one follow their next links with the operation's own parameters.
    let mut url = server.url("Patient/ana/$everything?_count=1&_type=Observation");
    let mut walked = Vec::new();
    for _ in 0..5 {
        let page = expect_json(server.client.get(&url).send().await.unwrap(), 200).await;
        walked.extend(ids(&page, "match"));
        match page["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
        {
            Some(next) => {
                url = next["url"].as_str().unwrap().to_string();
                assert!(url.contains("$everything"), "{url}");
            }
            None => break,
        }
    }
    assert_eq!(walked, ["o1", "o2"]);
    expect_outcome(server.get("Patient/nobody/$everything").await, 404).await;
    expect_outcome(server.get("Patient/ana/$everything?color=red").await, 400).await;

    assert_eq!(
        ids(
            &search(&server, "DocumentReference/$docref?patient=ana").await,
            "match"
        ),
        ["doc1"]
    );
    let inside = search(
        &server,
        "DocumentReference/$docref?patient=ana&start=2020-01-01&end=2020-12-31",
    )
    .await;
    assert_eq!(ids(&inside, "match"), ["doc1"]);
    let outside = search(
        &server,
        "DocumentReference/$docref?patient=ana&start=2021-01-01",
    )
    .await;
    assert!(ids(&outside, "match").is_empty());
    assert!(
        ids(
            &search(&server, "DocumentReference/$docref?patient=bo").await,
            "match"
        )
        .is_empty()
    );
    expect_outcome(server.get("DocumentReference/$docref").await, 400).await;
}

/// R4 `Encounter.patient` (`clinical-patient`) resolves to Patient only: a chain needs no
/// type even though Group also has `identifier`.
async fn untyped_chain_follows_the_parameters_targets(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    put(
        &server,
        json!({
            "resourceType": "Encounter", "id": "enc", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": "Patient/ana"}
        }),
    )
    .await;
    put(
        &server,
        json!({
            "resourceType": "Group", "id": "grp", "type": "person", "actual": true,
            "identifier": [{"system": "http://example.org/mrn", "value": "A1"}]
        }),
    )
    .await;
    assert_eq!(
        matches(
            &server,
            "Encounter?patient.identifier=http://example.org/mrn|A1"
        )
        .await,
        ["enc"]
    );
    assert_eq!(
        matches(&server, "Observation?patient.identifier=B2").await,
        ["o3"]
    );
    // `subject` may refer to a Group or a Patient: there the type is needed.
    let outcome = expect_outcome(server.get("Encounter?subject.identifier=A1").await, 400).await;
    assert!(outcome.to_string().contains("Group, Patient"), "{outcome}");
}

fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|link| link["relation"] == relation)
        .map(|link| link["url"].as_str().unwrap().to_string())
}

/// R4 search: the self link holds the parameters the server applied, not those it ignored.
async fn self_link_shows_only_applied_parameters(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    let bundle = search(
        &server,
        "Observation?patient=ana&unknown-thing=x&code=&_count=1",
    )
    .await;
    let own = link(&bundle, "self").unwrap();
    assert!(
        own.contains("patient=ana") && own.contains("_count=1"),
        "{own}"
    );
    assert!(
        !own.contains("unknown-thing") && !own.contains("code="),
        "{own}"
    );
    let next = link(&bundle, "next").unwrap();
    assert!(!next.contains("unknown-thing"), "{next}");
    // The ignored parameter is still reported.
    assert!(bundle.to_string().contains("unknown-thing"));
    let page = search(
        &server,
        next.trim_start_matches(&format!("{}/", server.fhir)),
    )
    .await;
    assert_eq!(ids(&page, "match").len(), 1);
}

/// A costly search is a 400 `too-costly` naming the limit, before any SQL runs (never a 500
/// from SQLite's expression depth or PostgreSQL's bind limit).
async fn costly_searches_are_refused_with_the_limit(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    let ids_list = |n: usize| {
        (0..n)
            .map(|i| format!("id{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let repeated = |name: &str, value: &str, n: usize| {
        (0..n)
            .map(|_| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let too_costly = |query: String, limit: &'static str| {
        let server = &server;
        async move {
            let response = server
                .client
                .post(server.url("Patient/_search"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(query.clone())
                .send()
                .await
                .unwrap();
            let outcome = expect_outcome(response, 400).await;
            assert_eq!(outcome["issue"][0]["code"], "too-costly", "{outcome}");
            let text = outcome["issue"][0]["diagnostics"].as_str().unwrap();
            assert!(text.contains(limit), "{query:.80}: {text}");
        }
    };
    too_costly(format!("_id={}", ids_list(101)), "100 OR values").await;
    too_costly(format!("_id={}", ids_list(497)), "100 OR values").await;
    too_costly(format!("_id={}", ids_list(65_530)), "100 OR values").await;
    too_costly(repeated("gender", "male", 991), "100 parameters").await;
    too_costly(repeated("_id", &ids_list(100), 6), "500 values").await;
    too_costly(
        repeated("_has:Observation:patient:code", "8302-2", 11),
        "10 chained",
    )
    .await;
    too_costly(
        repeated("_include", "Patient:general-practitioner", 101),
        "100 parameters",
    )
    .await;
    too_costly(format!("_sort={}", ["name"; 11].join(",")), "at most 10").await;
    // The same bounds hold for a GET.
    let outcome = expect_outcome(
        server
            .get(&format!("Patient?{}", repeated("gender", "male", 300)))
            .await,
        400,
    )
    .await;
    assert_eq!(outcome["issue"][0]["code"], "too-costly");
}

/// Searches at the limits run on both engines.
async fn values_under_the_limits_work(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    let post = |query: String| {
        let server = &server;
        async move {
            let response = server
                .client
                .post(server.url("Patient/_search"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(query)
                .send()
                .await
                .unwrap();
            let mut found = ids(&expect_json(response, 200).await, "match");
            found.sort();
            found
        }
    };
    let with = |known: &str, n: usize| {
        let mut values: Vec<String> = (1..n).map(|i| format!("id{i}")).collect();
        values.push(known.to_string());
        values.join(",")
    };
    // 100 `_id` values in one parameter.
    assert_eq!(post(format!("_id={}", with("ana", 100))).await, ["ana"]);
    // 100 parameters.
    let hundred: Vec<String> = (0..100).map(|_| "gender=male".to_string()).collect();
    assert_eq!(post(hundred.join("&")).await, ["bo"]);
    // 500 values in all.
    let five: Vec<String> = (0..5).map(|_| format!("_id={}", with("bo", 100))).collect();
    assert_eq!(post(five.join("&")).await, ["bo"]);
    // 10 `_has` of 50 values each, every one a join.
    let codes: Vec<String> = (1..50).map(|i| format!("c{i}")).collect();
    let has: Vec<String> = (0..10)
        .map(|_| format!("_has:Observation:patient:code={},8302-2", codes.join(",")))
        .collect();
    assert_eq!(post(has.join("&")).await, ["ana", "bo"]);
    // 10 sort keys.
    let sorted = search(
        &server,
        &format!("Patient?_sort={}", ["-birthdate"; 10].join(",")),
    )
    .await;
    assert_eq!(ids(&sorted, "match"), ["ana", "bo"]);
}

/// Walked to the end, `$everything` sends each resource once: what the compartment
/// references comes as `include` once, never again on a later page, and never when it is
/// itself a match.
async fn everything_sends_each_resource_once_per_walk(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    // An Encounter of ana's that her Observations point at: a match, never an include.
    put(
        &server,
        json!({
            "resourceType": "Encounter", "id": "enc", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": "Patient/ana"},
            "serviceProvider": {"reference": "Organization/org"}
        }),
    )
    .await;
    for id in ["o1", "o2"] {
        let mut observation =
            expect_json(server.get(&format!("Observation/{id}")).await, 200).await;
        observation["encounter"] = json!({"reference": "Encounter/enc"});
        put(&server, observation).await;
    }
    for count in [1, 2, 3, 50] {
        let mut url = server.url(&format!("Patient/ana/$everything?_count={count}"));
        let mut seen: Vec<(String, String)> = Vec::new();
        for _ in 0..20 {
            let page = expect_json(server.client.get(&url).send().await.unwrap(), 200).await;
            for entry in page["entry"].as_array().unwrap() {
                let id = entry["resource"]["id"].as_str().unwrap().to_string();
                seen.push((id, entry["search"]["mode"].as_str().unwrap().to_string()));
            }
            match link(&page, "next") {
                Some(next) => url = next,
                None => break,
            }
        }
        seen.sort();
        let expected: Vec<(String, String)> = [
            ("ana", "match"),
            ("doc", "include"),
            ("enc", "match"),
            ("o1", "match"),
            ("o2", "match"),
            ("org", "include"),
            ("prov", "match"),
        ]
        .iter()
        .map(|(id, mode)| (id.to_string(), mode.to_string()))
        .collect();
        assert_eq!(seen, expected, "_count={count}");
    }
}

/// With a short search time limit, searches that run too long answer 503 with
/// `Retry-After` and an OperationOutcome, and give their connection back at once: reads
/// on a small pool keep answering quickly while many of them are in flight.
async fn timed_out_searches_free_their_connection(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let server = Server::start_on(
        db,
        &[
            "--anonymous-access",
            "--database-max-connections",
            "4",
            "--search-timeout-ms",
            "1",
        ],
    )
    .await;
    let mut resources = vec![json!({"resourceType": "Patient", "id": "p"})];
    for i in 0..5000 {
        resources.push(json!({
            "resourceType": "Observation", "id": format!("o{i}"), "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": format!("c{}", i % 50)}]},
            "subject": {"reference": "Patient/p"},
            "valueQuantity": {"value": i, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
        }));
    }
    server.import(&resources);
    let values: Vec<String> = (0..100).map(|i| format!("ne{i}")).collect();
    let hostile: String = (0..5)
        .map(|_| format!("value-quantity={}", values.join(",")))
        .collect::<Vec<_>>()
        .join("&")
        + "&_total=accurate&_sort=-value-quantity";
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let client = server.client.clone();
            let url = server.url(&format!("Observation?{hostile}"));
            tokio::spawn(async move { client.get(url).send().await.unwrap() })
        })
        .collect();
    let mut slowest = std::time::Duration::ZERO;
    for _ in 0..20 {
        let started = std::time::Instant::now();
        let read = server.get("Patient/p").await;
        assert_eq!(read.status(), 200);
        slowest = slowest.max(started.elapsed());
    }
    assert!(slowest < std::time::Duration::from_secs(2), "{slowest:?}");
    for task in tasks {
        let response = task.await.unwrap();
        assert_eq!(response.headers()["retry-after"], "5");
        let outcome = expect_outcome(response, 503).await;
        assert_eq!(outcome["issue"][0]["code"], "too-costly", "{outcome}");
    }
    // The pool is whole again.
    assert_eq!(server.get("Patient/p").await.status(), 200);
    assert!(server.log().contains("search stopped at its time limit"));
}
