//! Keyset paging of `_sort`ed searches: walks that writes between pages do not disturb,
//! previous links, several keys with missing values, and cursors that are checked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    sorted_walk_survives_writes_between_pages,
    previous_links_walk_back_to_the_same_pages,
    every_sort_key_kind_pages_like_one_page,
    tampered_cursors_are_refused,
);

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["search"]["mode"] == "match")
        .map(|entry| entry["resource"]["id"].as_str().unwrap().to_string())
        .collect()
}

fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|link| link["relation"] == relation)
        .map(|link| link["url"].as_str().unwrap().to_string())
}

async fn page(server: &Server, url: &str) -> Value {
    expect_json(server.client.get(url).send().await.unwrap(), 200).await
}

/// An Observation with an optional date and an optional LOINC code (else text only).
fn observation(id: &str, date: Option<&str>, code: Option<&str>) -> Value {
    let mut resource = json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "code": {"text": "test"},
        "subject": {"reference": "Patient/p"},
    });
    if let Some(code) = code {
        resource["code"]["coding"] = json!([{"system": "http://loinc.org", "code": code}]);
    }
    if let Some(date) = date {
        resource["effectiveDateTime"] = json!(date);
    }
    resource
}

async fn put(server: &Server, resource: &Value) {
    let path = format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap(),
        resource["id"].as_str().unwrap()
    );
    let status = server.put(&path, resource).await.status();
    assert!(status.is_success(), "PUT {path}: {status}");
}

async fn delete(server: &Server, path: &str) {
    assert_eq!(server.delete(path).await.status(), 204, "DELETE {path}");
}

/// `-date,code`: latest first, then by code; a missing date or code sorts last.
async fn seed(server: &Server) {
    put(server, &json!({"resourceType": "Patient", "id": "p"})).await;
    for (id, date, code) in [
        ("a", Some("2021-01-01"), Some("X")),
        ("b", Some("2021-01-01"), Some("A")),
        ("c", Some("2020-06-01"), Some("M")),
        ("d", None, Some("B")),
        ("e", None, None),
        ("f", Some("2019-01-01"), None),
        ("g", Some("2021-01-01"), None),
        ("t1", Some("2020-03-01"), Some("Z")),
        ("t2", None, Some("A")),
    ] {
        put(server, &observation(id, date, code)).await;
    }
}

const SORTED: &str = "Observation?_sort=-date,code";

async fn sorted_walk_survives_writes_between_pages(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    assert_eq!(
        ids(&page(&server, &server.url(SORTED)).await),
        ["b", "a", "g", "c", "t1", "f", "t2", "d", "e"]
    );
    let mut url = server.url(&format!("{SORTED}&_count=2"));
    let mut pages = Vec::new();
    loop {
        let bundle = page(&server, &url).await;
        pages.push(ids(&bundle));
        match pages.len() {
            1 => {
                // Before the cursor (never seen), after it (seen), and a row yet to come.
                put(&server, &observation("i", Some("2022-01-01"), Some("A"))).await;
                put(&server, &observation("h", Some("2018-01-01"), Some("A"))).await;
                delete(&server, "Observation/t1").await;
            }
            2 => {
                delete(&server, "Observation/t2").await;
                put(&server, &observation("j", Some("2021-01-01"), Some("Z"))).await;
            }
            _ => {}
        }
        match link(&bundle, "next") {
            Some(next) => url = next,
            None => break,
        }
        assert!(pages.len() < 10, "{pages:?}");
    }
    assert_eq!(
        pages,
        [
            vec!["b", "a"],
            vec!["g", "c"],
            vec!["f", "h"],
            vec!["d", "e"]
        ],
        "every resource that stayed, once, in order; none of those behind the cursor"
    );
}

async fn previous_links_walk_back_to_the_same_pages(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    let mut forward = Vec::new();
    let mut url = server.url(&format!("{SORTED}&_count=4"));
    loop {
        let bundle = page(&server, &url).await;
        forward.push(ids(&bundle));
        match link(&bundle, "next") {
            Some(next) => url = next,
            None => break,
        }
    }
    assert_eq!(
        forward,
        [
            vec!["b", "a", "g", "c"],
            vec!["t1", "f", "t2", "d"],
            vec!["e"]
        ]
    );
    let mut backward = Vec::new();
    loop {
        let bundle = page(&server, &url).await;
        backward.push(ids(&bundle));
        if let Some(next) = link(&bundle, "next") {
            // Each page reached backwards links forward to the page it came from.
            let after = page(&server, &next).await;
            assert_eq!(ids(&after), forward[forward.len() - backward.len() + 1]);
        }
        match link(&bundle, "previous") {
            Some(previous) => url = previous,
            None => break,
        }
        assert!(backward.len() < 10, "{backward:?}");
    }
    backward.reverse();
    assert_eq!(backward, forward);
}

/// All pages of `query` with `_count=2`, which must match the single page of the query.
async fn walk(server: &Server, query: &str) -> Vec<String> {
    let whole = ids(&page(server, &server.url(query)).await);
    let mut url = server.url(&format!("{query}&_count=2"));
    let mut walked = Vec::new();
    loop {
        let bundle = page(server, &url).await;
        walked.extend(ids(&bundle));
        match link(&bundle, "next") {
            Some(next) => url = next,
            None => break,
        }
        assert!(walked.len() < 20, "{walked:?}");
    }
    assert_eq!(walked, whole, "{query}");
    walked
}

async fn every_sort_key_kind_pages_like_one_page(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    for (id, family, birth_date) in [
        ("p1", Some("Young"), Some("1990-02-03")),
        ("p2", Some("adams"), Some("1970")),
        ("p3", Some("Young"), Some("1950-06")),
        ("p4", None, Some("1990-02-03")),
        ("p5", Some("Ádams"), None),
        ("p6", None, None),
    ] {
        let mut patient = json!({"resourceType": "Patient", "id": id});
        if let Some(family) = family {
            patient["name"] = json!([{"family": family}]);
        }
        if let Some(birth_date) = birth_date {
            patient["birthDate"] = json!(birth_date);
        }
        put(&server, &patient).await;
    }
    assert_eq!(
        walk(&server, "Patient?_sort=family,-birthdate").await,
        ["p2", "p5", "p1", "p3", "p4", "p6"]
    );
    assert_eq!(
        walk(&server, "Patient?_sort=-name,birthdate").await,
        ["p3", "p1", "p2", "p5", "p4", "p6"]
    );
    assert_eq!(
        walk(&server, "Patient?_sort=birthdate,-_id").await,
        ["p3", "p2", "p4", "p1", "p6", "p5"]
    );
    assert_eq!(
        walk(&server, "Patient?_sort=-_lastUpdated").await,
        ["p6", "p5", "p4", "p3", "p2", "p1"]
    );
    put(&server, &json!({"resourceType": "Patient", "id": "p"})).await;
    for (id, value, code) in [
        ("q1", Some(2.25), Some("B")),
        ("q2", Some(0.1), None),
        ("q3", None, Some("A")),
        ("q4", Some(2.25), Some("A")),
        ("q5", Some(-7.5), Some("C")),
    ] {
        let mut resource = observation(id, None, code);
        if let Some(value) = value {
            resource["valueQuantity"] =
                json!({"value": value, "system": "http://unitsofmeasure.org", "code": "kg"});
        }
        put(&server, &resource).await;
    }
    assert_eq!(
        walk(&server, "Observation?_sort=value-quantity,code").await,
        ["q5", "q2", "q4", "q1", "q3"]
    );
    assert_eq!(
        walk(&server, "Observation?_sort=-value-quantity,-code").await,
        ["q1", "q4", "q2", "q5", "q3"]
    );
    assert_eq!(
        walk(&server, "Observation?_sort=subject,-code&_id=q1,q3,q5").await,
        ["q5", "q1", "q3"]
    );
}

async fn tampered_cursors_are_refused(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    let first = page(&server, &server.url(&format!("{SORTED}&_count=2"))).await;
    let next = link(&first, "next").unwrap();
    let (_, cursor) = next.split_once("_cursor=").unwrap();
    assert!(cursor.starts_with("k."), "{cursor}");
    let payload = URL_SAFE_NO_PAD.decode(&cursor[2..]).unwrap();
    assert_eq!(
        String::from_utf8(payload).unwrap(),
        format!(
            "[\"Observation\",\"a\",{},\"X\"]",
            // The end of 2021-01-01 in microseconds: the date key's largest value.
            1_609_545_600_000_000_i64
        )
    );
    let encode = |json: &str| format!("k.{}", URL_SAFE_NO_PAD.encode(json));
    let mut flipped = cursor.to_string();
    flipped.replace_range(4..5, if &cursor[4..5] == "A" { "B" } else { "A" });
    for tampered in [
        flipped,
        format!("{cursor}x"),
        format!("z{}", &cursor[1..]),
        "o.2".to_string(),
        encode(r#"["Observation","a","2021","X"]"#),
        encode(r#"["Observation","a",1609545600000000]"#),
        encode(r#"["Patient","p",1609545600000000,"X"]"#),
        encode(r#"["Observation","a",1609545600000000,"X\u0000"]"#),
    ] {
        let url = server.url(&format!("{SORTED}&_count=2&_cursor={tampered}"));
        let outcome = expect_outcome(server.client.get(&url).send().await.unwrap(), 400).await;
        assert_eq!(
            outcome["issue"][0]["expression"][0], "_cursor",
            "{tampered}"
        );
    }
    // A well-formed cursor naming no row still pages from its place: here after every row
    // ending with c's day (2020-06-01) that has no code.
    let crafted = encode(r#"["Observation","zz",1591056000000000,null]"#);
    let url = server.url(&format!("{SORTED}&_count=2&_cursor={crafted}"));
    assert_eq!(ids(&page(&server, &url).await), ["t1", "f"]);
}
