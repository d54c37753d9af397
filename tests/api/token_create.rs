//! `kiln token create`: a token minted on the command line reads what its scopes and context
//! allow and nothing else, stops working when it is revoked or its client removed, and the
//! command refuses scopes outside the registration and contexts that name nothing stored.

use std::process::Command;

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    a_minted_token_reads_within_its_scopes_until_revoked,
    token_create_refuses_what_could_never_work,
);

fn data() -> Vec<Value> {
    vec![
        json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "One"}]}),
        json!({"resourceType": "Patient", "id": "p2", "name": [{"family": "Two"}]}),
        json!({"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Doc"}]}),
        json!({"resourceType": "Encounter", "id": "e1", "status": "finished",
               "class": {"code": "AMB"}, "subject": {"reference": "Patient/p1"}}),
        json!({"resourceType": "Observation", "id": "o1", "status": "final",
               "code": {"text": "one"}, "subject": {"reference": "Patient/p1"}}),
        json!({"resourceType": "Observation", "id": "o2", "status": "final",
               "code": {"text": "two"}, "subject": {"reference": "Patient/p2"}}),
        json!({"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}}),
    ]
}

const REGISTERED: &str =
    "launch/patient openid fhirUser patient/*.rs user/*.rs system/Patient.read";

async fn started(backend: Backend) -> Option<(Server, String)> {
    let server = Server::start_secured(backend, &[]).await?;
    server.import(&data());
    server.add_users(&[("alice", "Patient/p1"), ("drdoc", "Practitioner/dr1")]);
    let client = server.kiln(&[
        "client",
        "add",
        "--name",
        "Operator app",
        "--type",
        "public",
        "--redirect-uri",
        "https://oauth.pstmn.io/v1/callback",
        "--scope",
        REGISTERED,
    ]);
    let client_id = client["client_id"].as_str().unwrap().to_string();
    Some((server, client_id))
}

async fn get(server: &Server, token: &str, path: &str) -> reqwest::Response {
    server
        .client
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["resource"]["id"].as_str().map(str::to_owned))
        .collect()
}

async fn a_minted_token_reads_within_its_scopes_until_revoked(backend: Backend) {
    let Some((server, client_id)) = started(backend).await else {
        return;
    };
    // A patient app's token, as the token endpoint would answer it.
    let minted = server.kiln(&[
        "token",
        "create",
        "--client-id",
        &client_id,
        "--scope",
        "launch/patient openid fhirUser patient/Observation.rs",
        "--patient",
        "p1",
        "--user",
        "alice",
        "--encounter",
        "e1",
    ]);
    assert_eq!(minted["token_type"], "Bearer", "{minted}");
    assert_eq!(minted["expires_in"], 3600, "{minted}");
    assert_eq!(
        minted["scope"],
        "launch/patient openid fhirUser patient/Observation.rs"
    );
    assert_eq!(minted["patient"], "p1");
    assert_eq!(minted["encounter"], "e1");
    assert!(minted["id_token"].is_string(), "{minted}");
    assert!(minted.get("refresh_token").is_none(), "{minted}");
    let token = minted["access_token"].as_str().unwrap();
    let bundle = expect_json(get(&server, token, "Observation").await, 200).await;
    assert_eq!(ids(&bundle), ["o1"], "only the patient's Observations");
    assert_eq!(get(&server, token, "Observation/o1").await.status(), 200);
    assert_ne!(get(&server, token, "Observation/o2").await.status(), 200);
    expect_outcome(get(&server, token, "Condition").await, 403).await;
    expect_outcome(get(&server, token, "Patient/p1").await, 403).await;

    // A practitioner's user/ token sees every patient; a short lifetime is kept.
    let practitioner = server.kiln(&[
        "token",
        "create",
        "--client-id",
        &client_id,
        "--scope",
        "user/Observation.rs",
        "--user",
        "drdoc",
        "--lifetime",
        "120",
    ]);
    assert_eq!(practitioner["expires_in"], 120);
    let bundle = expect_json(
        get(
            &server,
            practitioner["access_token"].as_str().unwrap(),
            "Observation",
        )
        .await,
        200,
    )
    .await;
    assert_eq!(ids(&bundle).len(), 2, "{bundle}");

    // A system token: every Patient, nothing else.
    let system = server.kiln(&[
        "token",
        "create",
        "--client-id",
        &client_id,
        "--scope",
        "system/Patient.read",
    ]);
    let system_token = system["access_token"].as_str().unwrap();
    assert!(system.get("patient").is_none(), "{system}");
    assert_eq!(get(&server, system_token, "Patient/p2").await.status(), 200);
    expect_outcome(get(&server, system_token, "Observation").await, 403).await;

    // The app revokes its token: it stops at once.
    let revoked = server
        .client
        .post(format!("{}/auth/revoke", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}&client_id={client_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    expect_outcome(get(&server, token, "Observation").await, 401).await;
    assert_eq!(get(&server, system_token, "Patient/p1").await.status(), 200);

    // Removing the client revokes every grant minted for it.
    server.kiln(&["client", "remove", &client_id]);
    expect_outcome(get(&server, system_token, "Patient/p1").await, 401).await;
}

/// Runs `kiln token create` with `args`; returns stderr, asserting that it failed.
fn refused(server: &Server, args: &[&str]) -> String {
    let output = Command::new(kiln_bin())
        .args(["token", "create"])
        .args(args)
        .env("KILN_DATABASE_URL", &server.db.url)
        .env("KILN_BASE_URL", &server.base)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "{args:?} was accepted");
    assert!(output.stdout.is_empty(), "{args:?} printed a token");
    stderr
}

async fn token_create_refuses_what_could_never_work(backend: Backend) {
    let Some((server, client_id)) = started(backend).await else {
        return;
    };
    let id = client_id.as_str();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--client-id", "nope", "--scope", "system/Patient.read"],
            "no client nope",
        ),
        (
            &["--client-id", id, "--scope", "system/*.read"],
            "not within the client's registered scope",
        ),
        (
            &[
                "--client-id",
                id,
                "--scope",
                "patient/*.cruds",
                "--patient",
                "p1",
            ],
            "not within",
        ),
        (&["--client-id", id, "--scope", "patient/*.rs"], "--patient"),
        (&["--client-id", id, "--scope", "user/*.rs"], "--user"),
        (&["--client-id", id, "--scope", "openid fhirUser"], "--user"),
        (
            &[
                "--client-id",
                id,
                "--scope",
                "patient/*.rs",
                "--patient",
                "p9",
            ],
            "no Patient/p9",
        ),
        (
            &[
                "--client-id",
                id,
                "--scope",
                "user/*.rs",
                "--user",
                "mallory",
            ],
            "no user mallory",
        ),
        (
            &[
                "--client-id",
                id,
                "--scope",
                "patient/*.rs",
                "--patient",
                "p1",
                "--encounter",
                "e9",
            ],
            "no Encounter/e9",
        ),
        (
            &["--client-id", id, "--scope", "made/up"],
            "not a SMART scope",
        ),
        (
            &[
                "--client-id",
                id,
                "--scope",
                "system/Patient.read",
                "--lifetime",
                "0",
            ],
            "lifetime",
        ),
    ];
    for (args, says) in cases {
        let stderr = refused(&server, args);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
