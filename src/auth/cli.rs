//! Operator commands: `kiln client …`, `kiln user …`, `kiln launch create`, `kiln keys rotate`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::crypto::{digest_hex, hash_secret, random_token};
use super::scope::ScopeSet;
use crate::cli::CliResult;
use crate::config::DatabaseArgs;
use crate::store::Store;
use crate::store::auth::{Client, Launch, User};

/// How long a launch made on the command line waits for the app.
const LAUNCH_LIFETIME_SECS: i64 = 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientType {
    Public,
    ConfidentialSymmetric,
    ConfidentialAsymmetric,
}

impl ClientType {
    fn as_str(self) -> &'static str {
        match self {
            ClientType::Public => "public",
            ClientType::ConfidentialSymmetric => "confidential-symmetric",
            ClientType::ConfidentialAsymmetric => "confidential-asymmetric",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GrantType {
    AuthorizationCode,
    ClientCredentials,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register an app; prints its client_id (and secret, shown only this once).
    Add(ClientAdd),
    /// List registered apps.
    List,
    /// Remove an app; its tokens stop working at once.
    Remove { client_id: String },
}

#[derive(Debug, Args)]
pub struct ClientAdd {
    #[arg(long)]
    name: String,
    #[arg(long = "type", value_enum)]
    client_type: ClientType,
    /// Exact redirect URI (repeatable).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// Where Kiln sends an EHR launch.
    #[arg(long)]
    launch_uri: Option<String>,
    /// The widest scopes the app may be granted (space separated).
    #[arg(long)]
    scope: String,
    /// JWK Set URL of an asymmetric client.
    #[arg(long, conflicts_with = "jwks_file")]
    jwks_uri: Option<String>,
    /// JWK Set file of an asymmetric client.
    #[arg(long)]
    jwks_file: Option<PathBuf>,
    /// Grant type (repeatable; default authorization_code).
    #[arg(long = "grant-type", value_enum)]
    grant_types: Vec<GrantType>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (or reset an existing user's password and FHIR user).
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        password: String,
        /// `Patient/ID` or `Practitioner/ID`.
        #[arg(long)]
        fhir_user: String,
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LaunchCommand {
    /// Record an EHR launch context; prints `{"launch": …, "url": …}`.
    Create {
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        patient: String,
        #[arg(long)]
        encounter: Option<String>,
        /// Public URL of the server (for `iss`).
        #[arg(long, env = "KILN_BASE_URL", default_value = "http://localhost:8080")]
        base_url: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key; the old one stays published until its tokens expire.
    Rotate,
}

async fn open(database: &DatabaseArgs) -> Result<Store, Box<dyn std::error::Error + Send + Sync>> {
    let store = Store::connect(&database.database_url, 2).await?;
    store.migrate().await?;
    Ok(store)
}

pub async fn client(database: DatabaseArgs, command: ClientCommand) -> CliResult {
    let store = open(&database).await?;
    match command {
        ClientCommand::Add(add) => {
            let (client, secret) = new_client(add)?;
            store.insert_client(&client).await?;
            let mut out = json!({ "client_id": client.client_id });
            if let Some(secret) = secret {
                out["client_secret"] = json!(secret);
            }
            println!("{out}");
        }
        ClientCommand::List => {
            for client in store.clients().await? {
                println!(
                    "{}",
                    json!({
                        "client_id": client.client_id,
                        "name": client.name,
                        "type": client.client_type,
                        "redirect_uris": client.redirect_uris,
                        "launch_uri": client.launch_uri,
                        "scope": client.scope,
                        "grant_types": client.grant_types,
                        "jwks_uri": client.jwks_uri,
                    })
                );
            }
        }
        ClientCommand::Remove { client_id } => {
            if !store.remove_client(&client_id).await? {
                return Err(format!("no client {client_id}").into());
            }
            println!("{}", json!({ "removed": client_id }));
        }
    }
    store.close().await;
    Ok(())
}

fn new_client(add: ClientAdd) -> Result<(Client, Option<String>), String> {
    let grant_types = if add.grant_types.is_empty() {
        vec![GrantType::AuthorizationCode]
    } else {
        add.grant_types.clone()
    };
    let asymmetric = add.client_type == ClientType::ConfidentialAsymmetric;
    if asymmetric != (add.jwks_uri.is_some() || add.jwks_file.is_some()) {
        return Err("--jwks-uri or --jwks-file is required for, and only for, a confidential-asymmetric client".into());
    }
    if grant_types.contains(&GrantType::ClientCredentials) && add.client_type == ClientType::Public
    {
        return Err("a public client cannot use client_credentials".into());
    }
    if grant_types.contains(&GrantType::AuthorizationCode) && add.redirect_uris.is_empty() {
        return Err("--redirect-uri is required for the authorization_code grant".into());
    }
    for uri in add.redirect_uris.iter().chain(add.launch_uri.iter()) {
        check_uri(uri)?;
    }
    if let Some(uri) = &add.jwks_uri {
        check_uri(uri)?;
    }
    let scope = ScopeSet::parse(&add.scope);
    let unknown: Vec<&str> = add
        .scope
        .split_ascii_whitespace()
        .filter(|s| !scope.iter().any(|known| known.to_string() == *s))
        .collect();
    if !unknown.is_empty() || scope.is_empty() {
        return Err(format!("unknown or malformed scopes: {unknown:?}"));
    }
    let jwks = match &add.jwks_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| format!("{}: {error}", path.display()))?;
            serde_json::from_str::<jsonwebtoken::jwk::JwkSet>(&text)
                .map_err(|error| format!("{}: not a JWK Set: {error}", path.display()))?;
            Some(text)
        }
        None => None,
    };
    let secret = (add.client_type == ClientType::ConfidentialSymmetric).then(random_token);
    let mut grant_names: Vec<String> = Vec::new();
    for grant in &grant_types {
        let names: &[&str] = match grant {
            GrantType::AuthorizationCode => &["authorization_code", "refresh_token"],
            GrantType::ClientCredentials => &["client_credentials"],
        };
        grant_names.extend(names.iter().map(|n| n.to_string()));
    }
    let client = Client {
        // Hex, so an id never starts with `-` (which a command line would take for a flag).
        client_id: uuid::Uuid::new_v4().simple().to_string(),
        name: add.name,
        client_type: add.client_type.as_str().into(),
        secret_hash: secret.as_deref().map(hash_secret),
        redirect_uris: add.redirect_uris,
        launch_uri: add.launch_uri,
        scope: scope.to_string(),
        grant_types: grant_names,
        jwks,
        jwks_uri: add.jwks_uri,
        created_at: super::now(),
    };
    Ok((client, secret))
}

/// Redirect, launch and JWKS URIs must be absolute http(s) URLs without a fragment.
fn check_uri(uri: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(uri).map_err(|error| format!("{uri}: {error}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.fragment().is_some() {
        return Err(format!("{uri}: must be an http(s) URL without a fragment"));
    }
    Ok(())
}

pub async fn user(database: DatabaseArgs, command: UserCommand) -> CliResult {
    let UserCommand::Add {
        username,
        password,
        fhir_user,
        admin,
    } = command;
    let valid_fhir_user = fhir_user.split_once('/').is_some_and(|(kind, id)| {
        matches!(kind, "Patient" | "Practitioner") && crate::fhir::id::is_valid_id(id)
    });
    if !valid_fhir_user {
        return Err("--fhir-user must be Patient/ID or Practitioner/ID".into());
    }
    if username.is_empty() || password.is_empty() {
        return Err("--username and --password must not be empty".into());
    }
    let store = open(&database).await?;
    let user = User {
        password_hash: hash_secret(&password),
        username,
        fhir_user,
        admin,
    };
    store.upsert_user(&user, super::now()).await?;
    println!(
        "{}",
        json!({ "username": user.username, "fhir_user": user.fhir_user })
    );
    store.close().await;
    Ok(())
}

pub async fn launch(database: DatabaseArgs, command: LaunchCommand) -> CliResult {
    let LaunchCommand::Create {
        client_id,
        user,
        patient,
        encounter,
        base_url,
    } = command;
    let store = open(&database).await?;
    let client = store
        .client(&client_id)
        .await?
        .ok_or_else(|| format!("no client {client_id}"))?;
    let launch_uri = client
        .launch_uri
        .clone()
        .ok_or_else(|| format!("client {client_id} has no launch URI"))?;
    if store.user(&user).await?.is_none() {
        return Err(format!("no user {user}").into());
    }
    let launch = random_token();
    store
        .insert_launch(&Launch {
            launch_hash: digest_hex(&launch),
            client_id,
            username: user,
            patient: Some(patient),
            encounter,
            expires_at: super::now() + LAUNCH_LIFETIME_SECS,
            used: false,
        })
        .await?;
    let iss = format!("{}/fhir", base_url.trim_end_matches('/'));
    let mut url = reqwest::Url::parse(&launch_uri)?;
    url.query_pairs_mut()
        .append_pair("iss", &iss)
        .append_pair("launch", &launch);
    println!("{}", json!({ "launch": launch, "url": url.as_str() }));
    store.close().await;
    Ok(())
}

pub async fn keys(database: DatabaseArgs, command: KeysCommand) -> CliResult {
    let KeysCommand::Rotate = command;
    let store = open(&database).await?;
    let ring = super::keys::KeyRing::new(store.clone(), 0);
    let kid = ring.rotate().await?;
    println!("{}", json!({ "kid": kid }));
    store.close().await;
    Ok(())
}
