//! SMART discovery documents, the JWKS, and the operator commands that register apps,
//! users and signing keys.

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    discovery_and_key_rotation,
    clients_and_users_from_the_command_line
);

async fn discovery_and_key_rotation(backend: Backend) {
    let Some(server) = Server::start_secured(backend, &[]).await else {
        return;
    };
    let config = expect_json(server.get(".well-known/smart-configuration").await, 200).await;
    assert_eq!(config["issuer"], server.fhir.as_str());
    assert_eq!(
        config["token_endpoint"],
        format!("{}/auth/token", server.base).as_str()
    );
    assert_eq!(
        config["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    for capability in [
        "launch-ehr",
        "client-confidential-asymmetric",
        "permission-v2",
        "context-banner",
    ] {
        assert!(
            config["capabilities"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == capability),
            "{capability} missing"
        );
    }
    let statement = expect_json(server.get("metadata").await, 200).await;
    let security = &statement["rest"][0]["security"];
    assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    let uris = security["extension"][0]["extension"].as_array().unwrap();
    let uri = |name: &str| uris.iter().find(|u| u["url"] == name).unwrap()["valueUri"].clone();
    assert_eq!(uri("authorize"), config["authorization_endpoint"]);
    assert_eq!(uri("token"), config["token_endpoint"]);
    let openid = expect_json(server.get(".well-known/openid-configuration").await, 200).await;
    assert_eq!(openid["issuer"], config["issuer"]);
    assert_eq!(openid["jwks_uri"], config["jwks_uri"]);

    let jwks_url = config["jwks_uri"].as_str().unwrap();
    let kids = |jwks: serde_json::Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                assert_eq!(k["kty"], "RSA");
                assert_eq!(k["alg"], "RS256");
                assert!(k.get("d").is_none(), "private key material published");
                k["kid"].as_str().unwrap().to_string()
            })
            .collect()
    };
    let before = kids(expect_json(server.client.get(jwks_url).send().await.unwrap(), 200).await);
    assert_eq!(before.len(), 1);
    let rotated = server.kiln(&["keys", "rotate"]);
    // A restart reads the key table afresh (a running replica picks it up within a minute).
    let mut server = server;
    server.restart().await;
    let after = kids(expect_json(server.client.get(jwks_url).send().await.unwrap(), 200).await);
    assert_eq!(after.len(), 2, "the retired key stays published");
    assert!(after.contains(&before[0]));
    assert!(after.contains(&rotated["kid"].as_str().unwrap().to_string()));
}

async fn clients_and_users_from_the_command_line(backend: Backend) {
    let Some(server) = Server::start_secured(backend, &[]).await else {
        return;
    };
    let symmetric = server.kiln(&[
        "client",
        "add",
        "--name",
        "Chart",
        "--type",
        "confidential-symmetric",
        "--redirect-uri",
        "https://app.example/cb",
        "--scope",
        "patient/*.rs openid fhirUser",
    ]);
    let secret = symmetric["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 32);
    let public = server.kiln(&[
        "client",
        "add",
        "--name",
        "Phone",
        "--type",
        "public",
        "--redirect-uri",
        "https://phone.example/cb",
        "--scope",
        "patient/Observation.rs",
    ]);
    assert!(public.get("client_secret").is_none());

    let all = std::process::Command::new(kiln_bin())
        .args(["client", "list"])
        .env("KILN_DATABASE_URL", &server.db.url)
        .output()
        .unwrap();
    let all = String::from_utf8(all.stdout).unwrap();
    assert_eq!(all.lines().count(), 2);
    for client in [&symmetric, &public] {
        assert!(all.contains(client["client_id"].as_str().unwrap()));
    }
    assert!(!all.contains(secret), "the secret is shown only once");

    server.kiln(&["client", "remove", symmetric["client_id"].as_str().unwrap()]);
    assert_eq!(
        server.kiln(&["client", "list"])["client_id"],
        public["client_id"]
    );

    // Refusals: bad scopes, asymmetric without keys, public backend service, bad user.
    for args in [
        vec![
            "client",
            "add",
            "--name",
            "X",
            "--type",
            "public",
            "--redirect-uri",
            "https://x/cb",
            "--scope",
            "patient/Nope.rs",
        ],
        vec![
            "client",
            "add",
            "--name",
            "X",
            "--type",
            "confidential-asymmetric",
            "--grant-type",
            "client-credentials",
            "--scope",
            "system/*.rs",
        ],
        vec![
            "client",
            "add",
            "--name",
            "X",
            "--type",
            "public",
            "--grant-type",
            "client-credentials",
            "--scope",
            "system/*.rs",
        ],
        vec![
            "client",
            "add",
            "--name",
            "X",
            "--type",
            "public",
            "--redirect-uri",
            "https://x/cb#frag",
            "--scope",
            "patient/*.rs",
        ],
        vec![
            "user",
            "add",
            "--username",
            "u",
            "--password",
            "p",
            "--fhir-user",
            "Organization/1",
        ],
    ] {
        let status = std::process::Command::new(kiln_bin())
            .args(&args)
            .env("KILN_DATABASE_URL", &server.db.url)
            .output()
            .unwrap()
            .status;
        assert!(!status.success(), "{args:?} was accepted");
    }
    server.import(&[json!({"resourceType": "Practitioner", "id": "p1"})]);
    let user = server.kiln(&[
        "user",
        "add",
        "--username",
        "dr.who",
        "--password",
        "tardis",
        "--fhir-user",
        "Practitioner/p1",
    ]);
    assert_eq!(user["fhir_user"], "Practitioner/p1");
}
