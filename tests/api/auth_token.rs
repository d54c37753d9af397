//! The token endpoint for backend services (private_key_jwt with RS384 and ES384 keys from
//! a JWKS URL or an inline JWK Set), client secrets, introspection and revocation.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::backend_tests;
use crate::common::backend::*;
use crate::common::*;

backend_tests!(
    backend_services_with_rs384_and_es384,
    client_assertion_refusals,
    client_assertion_crit_iat_and_size_limits,
    client_secrets_introspection_and_revocation
);

fn add_backend_client(server: &Server, jwks: (&str, &str)) -> String {
    let client = server.kiln(&[
        "client",
        "add",
        "--name",
        "Backend",
        "--type",
        "confidential-asymmetric",
        jwks.0,
        jwks.1,
        "--grant-type",
        "client-credentials",
        "--scope",
        "system/*.rs",
    ]);
    client["client_id"].as_str().unwrap().to_string()
}

/// A form POST to `path`, ready for more headers.
fn form_request(server: &Server, path: &str, form: &[(&str, &str)]) -> reqwest::RequestBuilder {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    server
        .client
        .post(format!("{}{path}", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
}

async fn post_form(server: &Server, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    form_request(server, path, form).send().await.unwrap()
}

async fn backend_token(server: &Server, assertion: &str, scope: &str) -> reqwest::Response {
    post_form(
        server,
        "/auth/token",
        &[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ],
    )
    .await
}

/// Asserts an RFC 6749 §5.2 error with no-store headers; returns its description.
async fn expect_oauth_error(response: reqwest::Response, status: u16, error: &str) -> String {
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body = expect_json(response, status).await;
    assert_eq!(body["error"], error, "{body}");
    body["error_description"].as_str().unwrap().to_string()
}

async fn backend_services_with_rs384_and_es384(backend: Backend) {
    let Some(server) = Server::start_secured(backend, &[]).await else {
        return;
    };
    let rsa = AppKey::rs384("rsa-1");
    let ec = AppKey::es384("ec-1");
    let jwks = JwksServer::start(vec![rsa.jwk.clone(), ec.jwk.clone()]).await;
    let client_id = add_backend_client(&server, ("--jwks-uri", &jwks.url));

    let mut token = String::new();
    for key in [&rsa, &ec] {
        let assertion = key.sign(|_| {}, &claims(&server, &client_id));
        let response = backend_token(
            &server,
            &assertion,
            "system/Patient.rs system/Observation.read",
        )
        .await;
        assert_eq!(response.status(), 200, "{:?}", key.alg);
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["pragma"], "no-cache");
        let body = expect_json(response, 200).await;
        let fields: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            ["access_token", "token_type", "expires_in", "scope"]
        );
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 300);
        assert_eq!(body["scope"], "system/Patient.rs system/Observation.read");
        assert!(body["access_token"].as_str().unwrap().len() >= 43);
        token = body["access_token"].as_str().unwrap().to_string();
    }
    // The token reaches every patient's records of its types, and nothing else.
    let fhir = |method: reqwest::Method, path: &str| {
        server
            .client
            .request(method, server.url(path))
            .bearer_auth(&token)
    };
    let search = fhir(reqwest::Method::GET, "Patient").send().await.unwrap();
    assert_eq!(search.status(), 200);
    let observations = fhir(reqwest::Method::GET, "Observation")
        .send()
        .await
        .unwrap();
    assert_eq!(observations.status(), 200);
    let encounters = fhir(reqwest::Method::GET, "Encounter")
        .send()
        .await
        .unwrap();
    expect_outcome(encounters, 403).await;
    let create = fhir(reqwest::Method::POST, "Patient")
        .json(&patient("Backend"))
        .send()
        .await
        .unwrap();
    expect_outcome(create, 403).await;
    // Cached under the JWKS's max-age: both keys came from one fetch.
    assert_eq!(jwks.fetches(), 1);

    // A key added later is found by refetching on its unknown kid.
    let rotated = AppKey::es384("ec-2");
    jwks.keys.lock().unwrap().push(rotated.jwk.clone());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let assertion = rotated.sign(|_| {}, &claims(&server, &client_id));
    assert_eq!(
        backend_token(&server, &assertion, "system/*.rs")
            .await
            .status(),
        200
    );
    assert_eq!(jwks.fetches(), 2);

    // A `jku` equal to the registered JWKS URL is accepted.
    let url = jwks.url.clone();
    let assertion = rsa.sign(|h| h.jku = Some(url), &claims(&server, &client_id));
    assert_eq!(
        backend_token(&server, &assertion, "system/*.rs")
            .await
            .status(),
        200
    );

    // An inline JWK Set registered from a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    let inline = AppKey::es384("inline-ec");
    let set = JwkSet {
        keys: vec![inline.jwk.clone()],
    };
    std::fs::write(&file, serde_json::to_string(&set).unwrap()).unwrap();
    let inline_id = add_backend_client(&server, ("--jwks-file", file.to_str().unwrap()));
    let assertion = inline.sign(|_| {}, &claims(&server, &inline_id));
    let body = expect_json(
        backend_token(&server, &assertion, "system/Observation.rs").await,
        200,
    )
    .await;
    assert_eq!(body["scope"], "system/Observation.rs");
    // Another client's key does not sign for this one.
    let assertion = rsa.sign(|_| {}, &claims(&server, &inline_id));
    expect_oauth_error(
        backend_token(&server, &assertion, "system/*.rs").await,
        401,
        "invalid_client",
    )
    .await;
}

async fn client_assertion_refusals(backend: Backend) {
    let Some(server) = Server::start_secured(backend, &[]).await else {
        return;
    };
    let rsa = AppKey::rs384("rsa-1");
    let jwks = JwksServer::start(vec![rsa.jwk.clone()]).await;
    let client_id = add_backend_client(&server, ("--jwks-uri", &jwks.url));
    let valid = claims(&server, &client_id);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = claims(&server, &client_id);
        change(&mut claims);
        claims
    };

    let b64 = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"})),
        b64(&valid)
    );
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some("rsa-1".into());
    let hs256 = jsonwebtoken::encode(
        &hs_header,
        &with(&|_| {}),
        &EncodingKey::from_secret(b"guessable"),
    )
    .unwrap();
    let refused: Vec<(&str, String, &str)> = vec![
        ("alg none", unsigned, "RS384 or ES384"),
        ("HS256", hs256, "RS384 or ES384"),
        (
            "expired",
            rsa.sign(|_| {}, &with(&|c| c["exp"] = json!(now() - 120))),
            "expired",
        ),
        (
            "too far ahead",
            rsa.sign(|_| {}, &with(&|c| c["exp"] = json!(now() + 600))),
            "five minutes",
        ),
        (
            "no exp",
            rsa.sign(
                |_| {},
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
            ),
            "exp",
        ),
        (
            "wrong aud",
            rsa.sign(
                |_| {},
                &with(&|c| c["aud"] = json!(format!("{}/fhir", server.base))),
            ),
            "aud",
        ),
        (
            "iss differs from sub",
            rsa.sign(|_| {}, &with(&|c| c["iss"] = json!("someone-else"))),
            "iss and sub",
        ),
        (
            "no jti",
            rsa.sign(
                |_| {},
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("jti");
                }),
            ),
            "jti",
        ),
        (
            "unknown kid",
            rsa.sign(|h| h.kid = Some("nope".into()), &with(&|_| {})),
            "no key nope",
        ),
        ("no kid", rsa.sign(|h| h.kid = None, &with(&|_| {})), "kid"),
        (
            "foreign jku",
            rsa.sign(
                |h| h.jku = Some("https://attacker.example/jwks.json".into()),
                &with(&|_| {}),
            ),
            "jku",
        ),
        (
            "signed by another key",
            AppKey::rs384("rsa-1").sign(|_| {}, &with(&|_| {})),
            "signature",
        ),
    ];
    for (case, assertion, reason) in refused {
        let description = expect_oauth_error(
            backend_token(&server, &assertion, "system/*.rs").await,
            401,
            "invalid_client",
        )
        .await;
        assert!(description.contains(reason), "{case}: {description}");
    }

    // A replayed jti is refused.
    let once = rsa.sign(|_| {}, &valid);
    assert_eq!(
        backend_token(&server, &once, "system/*.rs").await.status(),
        200
    );
    let description = expect_oauth_error(
        backend_token(&server, &once, "system/*.rs").await,
        401,
        "invalid_client",
    )
    .await;
    assert!(description.contains("already used"), "{description}");

    // Scopes: only registered system/ scopes.
    for scope in [
        "patient/*.rs",
        "user/Observation.rs",
        "system/Patient.c",
        "openid",
        "system/*.rs launch",
    ] {
        let assertion = rsa.sign(|_| {}, &with(&|_| {}));
        expect_oauth_error(
            backend_token(&server, &assertion, scope).await,
            400,
            "invalid_scope",
        )
        .await;
    }
    let assertion = rsa.sign(|_| {}, &with(&|_| {}));
    let missing = post_form(
        &server,
        "/auth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    expect_oauth_error(missing, 400, "invalid_scope").await;

    // Grant types: unknown, and one the client is not registered for.
    let assertion = rsa.sign(|_| {}, &with(&|_| {}));
    let password = post_form(
        &server,
        "/auth/token",
        &[
            ("grant_type", "password"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    expect_oauth_error(password, 400, "unsupported_grant_type").await;
    let refresh = post_form(
        &server,
        "/auth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "whatever"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    expect_oauth_error(refresh, 400, "unauthorized_client").await;

    // An unknown client, a wrong assertion type, a body that is not a form.
    let stranger = rsa.sign(|_| {}, &claims(&server, "no-such-client"));
    let description = expect_oauth_error(
        backend_token(&server, &stranger, "system/*.rs").await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(description, "unknown client");
    let assertion = rsa.sign(|_| {}, &with(&|_| {}));
    let wrong_type = post_form(
        &server,
        "/auth/token",
        &[
            ("grant_type", "client_credentials"),
            ("scope", "system/*.rs"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            ),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    expect_oauth_error(wrong_type, 401, "invalid_client").await;
    let json_body = server
        .client
        .post(format!("{}/auth/token", server.base))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    expect_oauth_error(json_body, 400, "invalid_request").await;
    let repeated = post_form(
        &server,
        "/auth/token",
        &[
            ("grant_type", "client_credentials"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    expect_oauth_error(repeated, 400, "invalid_request").await;
}

async fn client_assertion_crit_iat_and_size_limits(backend: Backend) {
    let Some(server) = Server::start_secured(backend, &[]).await else {
        return;
    };
    let rsa = AppKey::rs384("rsa-1");
    let jwks = JwksServer::start(vec![rsa.jwk.clone()]).await;
    let client_id = add_backend_client(&server, ("--jwks-uri", &jwks.url));
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = claims(&server, &client_id);
        change(&mut claims);
        claims
    };
    let refused = async |assertion: &str, reason: &str| {
        let description = expect_oauth_error(
            backend_token(&server, assertion, "system/*.rs").await,
            401,
            "invalid_client",
        )
        .await;
        assert!(description.contains(reason), "{reason}: {description}");
    };

    // RFC 7515 §4.1.11: a crit extension Kiln does not understand voids the assertion.
    let crit = rsa.sign(
        |h| h.crit = Some(vec!["http://example.org/ext".into()]),
        &with(&|c| c["http://example.org/ext"] = json!(true)),
    );
    refused(&crit, "crit").await;
    // Issued a day, or ten minutes, from now: the client's clock cannot be trusted.
    for ahead in [86_400, 600] {
        let assertion = rsa.sign(|_| {}, &with(&|c| c["iat"] = json!(now() + ahead)));
        refused(&assertion, "iat").await;
    }
    // An iat of now (or a little in the past) is fine.
    let assertion = rsa.sign(|_| {}, &with(&|c| c["iat"] = json!(now() - 5)));
    assert_eq!(
        backend_token(&server, &assertion, "system/*.rs")
            .await
            .status(),
        200
    );

    // A 20 KiB assertion is refused before it is decoded.
    let padding = "x".repeat(20 * 1024);
    let large = rsa.sign(|_| {}, &with(&|c| c["pad"] = json!(padding)));
    refused(&large, "larger than 16384 bytes").await;
    // A 2 MB body is refused by its length at every form endpoint, and without a length too.
    let huge = "a".repeat(2 * 1024 * 1024);
    for path in ["/auth/token", "/auth/introspect", "/auth/revoke"] {
        let response = post_form(
            &server,
            path,
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &huge),
            ],
        )
        .await;
        let description = expect_oauth_error(response, 413, "invalid_request").await;
        assert!(description.contains("32768 bytes"), "{path}: {description}");
    }
    // Streamed (chunked, no length): refused as well once past the limit.
    let chunks = futures_util::stream::iter(
        (0..64).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'a'; 32 * 1024]))),
    );
    let streamed = server
        .client
        .post(format!("{}/auth/token", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    expect_oauth_error(streamed, 413, "invalid_request").await;
}

async fn client_secrets_introspection_and_revocation(backend: Backend) {
    let Some(server) = Server::start_secured(backend, &[]).await else {
        return;
    };
    let rsa = AppKey::rs384("rsa-1");
    let jwks = JwksServer::start(vec![rsa.jwk.clone()]).await;
    let backend_id = add_backend_client(&server, ("--jwks-uri", &jwks.url));
    let issue = async || {
        let assertion = rsa.sign(|_| {}, &claims(&server, &backend_id));
        let body = expect_json(backend_token(&server, &assertion, "system/*.rs").await, 200).await;
        body["access_token"].as_str().unwrap().to_string()
    };
    let token = issue().await;

    let resource_server = server.kiln(&[
        "client",
        "add",
        "--name",
        "Resource server",
        "--type",
        "confidential-symmetric",
        "--redirect-uri",
        "https://rs.example/cb",
        "--scope",
        "patient/*.rs",
    ]);
    let rs_id = resource_server["client_id"].as_str().unwrap();
    let rs_secret = resource_server["client_secret"].as_str().unwrap();
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
        "patient/*.rs",
    ]);
    let public_id = public["client_id"].as_str().unwrap();

    let introspect_basic = async |id: &str, secret: &str, token: &str| {
        form_request(&server, "/auth/introspect", &[("token", token)])
            .basic_auth(id, Some(secret))
            .send()
            .await
            .unwrap()
    };
    let introspect_bearer = async |bearer: &str, token: &str| {
        form_request(&server, "/auth/introspect", &[("token", token)])
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap()
    };

    // A backend service asks about its own token with its bearer token...
    let caller = issue().await;
    let response = introspect_bearer(&caller, &token).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let active = expect_json(response, 200).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["scope"], "system/*.rs");
    assert_eq!(active["client_id"], backend_id.as_str());
    assert_eq!(active["token_type"], "Bearer");
    assert_eq!(active["iss"], server.fhir.as_str());
    let (iat, exp) = (
        active["iat"].as_i64().unwrap(),
        active["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 300);
    assert!((iat - now()).abs() < 60);
    assert!(active.get("sub").is_none() && active.get("patient").is_none());
    // ... or with a client assertion for the introspection endpoint.
    let mut for_introspection = claims(&server, &backend_id);
    for_introspection["aud"] = json!(format!("{}/auth/introspect", server.base));
    let by_assertion = post_form(
        &server,
        "/auth/introspect",
        &[
            ("token", &token),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &rsa.sign(|_| {}, &for_introspection)),
        ],
    )
    .await;
    assert_eq!(expect_json(by_assertion, 200).await, active);
    // Another client's live token is answered as an unknown one: by Basic, by post, and
    // to another backend service's bearer token.
    let inactive = json!({"active": false});
    let by_basic = introspect_basic(rs_id, rs_secret, &token).await;
    assert_eq!(expect_json(by_basic, 200).await, inactive);
    let by_post = post_form(
        &server,
        "/auth/introspect",
        &[
            ("token", &token),
            ("client_id", rs_id),
            ("client_secret", rs_secret),
        ],
    )
    .await;
    assert_eq!(expect_json(by_post, 200).await, inactive);
    let other_key = AppKey::rs384("rsa-2");
    let other_jwks = JwksServer::start(vec![other_key.jwk.clone()]).await;
    let other_backend = add_backend_client(&server, ("--jwks-uri", &other_jwks.url));
    let other_assertion = other_key.sign(|_| {}, &claims(&server, &other_backend));
    let other_body = expect_json(
        backend_token(&server, &other_assertion, "system/*.rs").await,
        200,
    )
    .await;
    let other_token = other_body["access_token"].as_str().unwrap();
    let by_other_bearer = introspect_bearer(other_token, &token).await;
    assert_eq!(expect_json(by_other_bearer, 200).await, inactive);
    let unknown = introspect_basic(rs_id, rs_secret, "not-a-token").await;
    assert_eq!(expect_json(unknown, 200).await, inactive);

    // Refused: no credentials, a bogus bearer, a public client, wrong secrets.
    let anonymous = post_form(&server, "/auth/introspect", &[("token", &token)]).await;
    expect_oauth_error(anonymous, 401, "invalid_client").await;
    let bogus = form_request(&server, "/auth/introspect", &[("token", &token)])
        .bearer_auth("bogus")
        .send()
        .await
        .unwrap();
    assert_eq!(
        bogus.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    expect_oauth_error(bogus, 401, "invalid_token").await;
    let by_public = post_form(
        &server,
        "/auth/introspect",
        &[("token", &token), ("client_id", public_id)],
    )
    .await;
    expect_oauth_error(by_public, 401, "invalid_client").await;
    let wrong_basic = introspect_basic(rs_id, "wrong-secret", &token).await;
    assert_eq!(
        wrong_basic.headers()["www-authenticate"],
        "Basic realm=\"kiln\""
    );
    expect_oauth_error(wrong_basic, 401, "invalid_client").await;
    let wrong_post = post_form(
        &server,
        "/auth/introspect",
        &[
            ("token", &token),
            ("client_id", rs_id),
            ("client_secret", "wrong-secret"),
        ],
    )
    .await;
    assert!(wrong_post.headers().get("www-authenticate").is_none());
    expect_oauth_error(wrong_post, 401, "invalid_client").await;
    let unknown_basic = introspect_basic("no-such-client", rs_secret, &token).await;
    expect_oauth_error(unknown_basic, 401, "invalid_client").await;

    // The same secrets at the token endpoint.
    for (form, status, error) in [
        (
            vec![("client_id", rs_id), ("client_secret", "wrong")],
            401,
            "invalid_client",
        ),
        (
            vec![("client_id", rs_id), ("client_secret", rs_secret)],
            400,
            "invalid_grant",
        ),
        (vec![("client_id", rs_id)], 401, "invalid_client"),
        (vec![("client_id", public_id)], 400, "invalid_grant"),
    ] {
        let mut form = form;
        form.extend([
            ("grant_type", "refresh_token"),
            ("refresh_token", "unknown"),
        ]);
        expect_oauth_error(
            post_form(&server, "/auth/token", &form).await,
            status,
            error,
        )
        .await;
    }
    let basic_token = form_request(
        &server,
        "/auth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "unknown"),
        ],
    )
    .basic_auth(rs_id, Some("wrong"))
    .send()
    .await
    .unwrap();
    assert_eq!(
        basic_token.headers()["www-authenticate"],
        "Basic realm=\"kiln\""
    );
    expect_oauth_error(basic_token, 401, "invalid_client").await;
    // A symmetric client may not use client_credentials.
    let symmetric_backend = post_form(
        &server,
        "/auth/token",
        &[
            ("grant_type", "client_credentials"),
            ("scope", "system/*.rs"),
            ("client_id", rs_id),
            ("client_secret", rs_secret),
        ],
    )
    .await;
    expect_oauth_error(symmetric_backend, 400, "unauthorized_client").await;

    // Revocation: another client's token is left alone; the owner's revocation is immediate.
    let revoke = async |form: Vec<(&str, String)>| {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        post_form(&server, "/auth/revoke", &form).await
    };
    let by_other = revoke(vec![
        ("token", token.clone()),
        ("client_id", rs_id.to_string()),
        ("client_secret", rs_secret.to_string()),
    ])
    .await;
    assert_eq!(by_other.status(), 200);
    let still = introspect_bearer(&caller, &token).await;
    assert_eq!(expect_json(still, 200).await["active"], true);
    let assertion = rsa.sign(|_| {}, &claims(&server, &backend_id));
    let by_owner = revoke(vec![
        ("token", token.clone()),
        ("client_assertion_type", JWT_BEARER.to_string()),
        ("client_assertion", assertion),
    ])
    .await;
    assert_eq!(by_owner.status(), 200);
    assert_eq!(by_owner.headers()["cache-control"], "no-store");
    let revoked = introspect_bearer(&caller, &token).await;
    assert_eq!(expect_json(revoked, 200).await, json!({"active": false}));
    // The backend's other token is unaffected; unknown tokens get 200; callers must authenticate.
    let other = introspect_bearer(&caller, &caller).await;
    assert_eq!(expect_json(other, 200).await["active"], true);
    let unknown = revoke(vec![
        ("token", "no-such-token".to_string()),
        ("client_id", public_id.to_string()),
    ])
    .await;
    assert_eq!(unknown.status(), 200);
    let anonymous = revoke(vec![("token", caller.clone())]).await;
    expect_oauth_error(anonymous, 401, "invalid_client").await;
    let no_token = revoke(vec![("client_id", public_id.to_string())]).await;
    expect_oauth_error(no_token, 400, "invalid_request").await;
}
