//! Operator commands: `kiln client …`, `kiln user …`, `kiln launch create`, `kiln keys rotate`.
//! They refuse what could never work (a grant the client type cannot use, a FHIR user or launch
//! context that names no stored resource), and print URLs with the base URL `kiln serve`
//! recorded in the database. Every change is recorded in the audit log (a Kiln security
//! alert by the CLI agent) in the change's own transaction; never a secret or a launch token.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use crate::access::scope::ScopeSet;
use crate::audit::switch::{cli_event, cli_recorder, cli_rows};
use crate::audit::{Agent, Event, Origin, Security, Subject};
use crate::cli::CliResult;
use crate::config::{DEFAULT_BASE_URL, DatabaseArgs};
use crate::crypto::{digest_hex, hash_secret, random_token};
use crate::store::Store;
use crate::store::audit::chain::AuditRow;
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

/// Both spellings are accepted: the OAuth name (`authorization_code`) and the command-line
/// style (`authorization-code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GrantType {
    #[value(alias = "authorization_code")]
    AuthorizationCode,
    #[value(alias = "client_credentials")]
    ClientCredentials,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register an app; prints its client_id (and secret, shown only this once).
    Add(ClientAdd),
    /// List registered apps.
    List,
    /// Show one app's registration.
    Show { client_id: String },
    /// Remove a client added with `client add`; its tokens stop working at once. (A client
    /// that belongs to a registered app is retired with `kiln app retire`.)
    Remove { client_id: String },
    /// Give a confidential-symmetric app a new secret (printed only this once); the old
    /// secret stops working at once.
    RotateSecret { client_id: String },
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
        /// `admin` may use the admin console; `user` (the default) may not.
        #[arg(long, value_enum, conflicts_with = "admin")]
        role: Option<Role>,
        /// The same as `--role admin`.
        #[arg(long)]
        admin: bool,
    },
    /// List users (username, FHIR user, admin, disabled).
    List,
    /// Disable a user: they cannot sign in, their browser sessions end and the grants they
    /// gave are revoked, so their apps' tokens stop working at once.
    Disable { username: String },
    /// Enable a disabled user again (their apps must ask for access again).
    Enable { username: String },
    /// Remove a user; the grants they gave are revoked, so their apps' tokens stop working.
    Remove { username: String },
    /// Set a user's password; their browser sessions end.
    Passwd {
        username: String,
        #[arg(long)]
        password: String,
    },
}

/// What a user may do beyond signing in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    Admin,
    User,
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
        /// Public URL of the server (for `iss`); by default the one `kiln serve` recorded.
        #[arg(long, env = "KILN_BASE_URL")]
        base_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key; the old one stays published until its tokens expire.
    Rotate,
}

pub(super) async fn open(
    database: &DatabaseArgs,
) -> Result<Store, Box<dyn std::error::Error + Send + Sync>> {
    let store = Store::connect(&database.database_url, 2).await?;
    // A command that revokes answers once its notification came back (see
    // `store::auth::revocation`).
    let _listening = store.listen_revocations_live().await;
    store.migrate().await?;
    Ok(store)
}

pub async fn client(database: DatabaseArgs, command: ClientCommand) -> CliResult {
    let store = open(&database).await?;
    match command {
        ClientCommand::Add(add) => {
            let (client, secret) = new_client(add)?;
            let audit = cli_recorder(&store).await?;
            let description = format!(
                "client added (name {:?}, type {}, scope {}, grants {})",
                client.name,
                client.client_type,
                client.scope,
                client.grant_types.join(" ")
            );
            let subject = Subject::client(client.client_id.as_str());
            let event = cli_event(Security::AdminAction, subject, description);
            store
                .insert_client(&client, &cli_rows(&audit, &event))
                .await?;
            let mut out = json!({ "client_id": client.client_id });
            if let Some(secret) = secret {
                out["client_secret"] = json!(secret);
            }
            println!("{out}");
        }
        ClientCommand::List => {
            for client in store.clients().await? {
                println!("{}", client_json(&client));
            }
        }
        ClientCommand::Show { client_id } => {
            let client = store
                .client(&client_id)
                .await?
                .ok_or_else(|| format!("no client {client_id}"))?;
            println!("{}", client_json(&client));
        }
        ClientCommand::Remove { client_id } => {
            let app_id = store.client(&client_id).await?.and_then(|c| c.app_id);
            if let Some(app_id) = app_id {
                return Err(format!(
                    "client {client_id} belongs to app {app_id}: retire the app with `kiln app \
                     retire {app_id}` (its registration and history stay)"
                )
                .into());
            }
            let audit = cli_recorder(&store).await?;
            let subject = Subject::client(client_id.as_str());
            let event = cli_event(Security::AdminAction, subject, "client removed");
            if !store
                .remove_client(&client_id, &cli_rows(&audit, &event))
                .await?
            {
                return Err(format!("no client {client_id}").into());
            }
            println!("{}", json!({ "removed": client_id }));
        }
        ClientCommand::RotateSecret { client_id } => {
            let client = store
                .client(&client_id)
                .await?
                .ok_or_else(|| format!("no client {client_id}"))?;
            if client.client_type != ClientType::ConfidentialSymmetric.as_str() {
                return Err(format!(
                    "client {client_id} is {}: only a confidential-symmetric client has a secret",
                    client.client_type
                )
                .into());
            }
            let secret = random_token();
            let audit = cli_recorder(&store).await?;
            let subject = Subject::client(client_id.as_str());
            let event = cli_event(Security::AdminAction, subject, "client secret rotated");
            if !store
                .set_client_secret(&client_id, &hash_secret(&secret), &cli_rows(&audit, &event))
                .await?
            {
                return Err(format!("no client {client_id}").into());
            }
            println!(
                "{}",
                json!({ "client_id": client_id, "client_secret": secret })
            );
        }
    }
    store.close().await;
    Ok(())
}

/// A registration as `client list` and `client show` print it (never the secret's hash).
fn client_json(client: &Client) -> serde_json::Value {
    json!({
        "client_id": client.client_id,
        "name": client.name,
        "type": client.client_type,
        "redirect_uris": client.redirect_uris,
        "launch_uri": client.launch_uri,
        "scope": client.scope,
        "grant_types": client.grant_types,
        "jwks_uri": client.jwks_uri,
        "jwks": client.jwks.is_some(),
        "created_at": client.created_at,
    })
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
    if grant_types.contains(&GrantType::ClientCredentials)
        && add.client_type != ClientType::ConfidentialAsymmetric
    {
        // The token endpoint issues client_credentials tokens only to SMART Backend Services,
        // which authenticate with private_key_jwt.
        return Err(format!(
            "client_credentials needs --type confidential-asymmetric: SMART Backend Services \
             authenticate with a signed JWT (private_key_jwt, keys from --jwks-uri or \
             --jwks-file), so a {} client could never get a token",
            add.client_type.as_str()
        ));
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
        created_at: crate::auth::now(),
        app_id: None,
        disabled: false,
        previous_secret_hash: None,
        previous_secret_expires_at: None,
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
    let store = open(&database).await?;
    match command {
        UserCommand::Add {
            username,
            password,
            fhir_user,
            role,
            admin,
        } => {
            let admin = admin || role == Some(Role::Admin);
            if username.is_empty() || password.is_empty() {
                return Err("--username and --password must not be empty".into());
            }
            if let Some(problem) = store.fhir_user_problem(&fhir_user).await? {
                return Err(format!("--fhir-user: {problem}").into());
            }
            let user = User {
                password_hash: hash_secret(&password),
                username,
                fhir_user,
                admin,
                disabled: false,
            };
            let description = format!(
                "user added or replaced (fhir user {}, role {})",
                user.fhir_user,
                if user.admin { "admin" } else { "user" }
            );
            let audit = user_rows(&store, &user.username, description).await?;
            store.upsert_user(&user, crate::auth::now(), &audit).await?;
            println!(
                "{}",
                json!({
                    "username": user.username,
                    "fhir_user": user.fhir_user,
                    "role": if user.admin { "admin" } else { "user" },
                })
            );
        }
        UserCommand::List => {
            for user in store.users().await? {
                println!(
                    "{}",
                    json!({
                        "username": user.username,
                        "fhir_user": user.fhir_user,
                        "admin": user.admin,
                        "disabled": user.disabled,
                        "created_at": user.created_at,
                    })
                );
            }
        }
        UserCommand::Disable { username } => {
            let audit = user_rows(&store, &username, "user disabled").await?;
            if !store.set_disabled(&username, true, &audit).await? {
                return Err(format!("no user {username}").into());
            }
            println!("{}", json!({ "username": username, "disabled": true }));
        }
        UserCommand::Enable { username } => {
            let audit = user_rows(&store, &username, "user enabled").await?;
            if !store.set_disabled(&username, false, &audit).await? {
                return Err(format!("no user {username}").into());
            }
            println!("{}", json!({ "username": username, "disabled": false }));
        }
        UserCommand::Remove { username } => {
            let audit = user_rows(&store, &username, "user removed").await?;
            if !store.remove_user(&username, &audit).await? {
                return Err(format!("no user {username}").into());
            }
            println!("{}", json!({ "removed": username }));
        }
        UserCommand::Passwd { username, password } => {
            if password.is_empty() {
                return Err("--password must not be empty".into());
            }
            let audit = user_rows(&store, &username, "password reset").await?;
            if !store
                .set_password(&username, &hash_secret(&password), &audit)
                .await?
            {
                return Err(format!("no user {username}").into());
            }
            println!(
                "{}",
                json!({ "username": username, "password_changed": true })
            );
        }
    }
    store.close().await;
    Ok(())
}

/// The stored rows of a change to an EHR user made at the command line (`user-changed`),
/// for the store to append in the change's transaction.
async fn user_rows(
    store: &Store,
    username: &str,
    description: impl Into<String>,
) -> Result<Vec<AuditRow>, Box<dyn std::error::Error + Send + Sync>> {
    let audit = cli_recorder(store).await?;
    let event = cli_event(Security::UserChanged, Subject::user(username), description);
    Ok(cli_rows(&audit, &event))
}

/// Refuses a reference to a resource that is not stored (or is deleted): a token would carry
/// it as context, and every request the app made with it would find nothing.
pub(super) async fn require_resource(
    store: &Store,
    resource_type: &str,
    id: &str,
    flag: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if !store.is_live(resource_type, id).await? {
        return Err(format!(
            "{flag}: there is no {resource_type}/{id} on this server (import it first)"
        )
        .into());
    }
    Ok(())
}

/// The base URL for links the command prints: the one given (flag or `KILN_BASE_URL`), else
/// the one `kiln serve` recorded; a warning on stderr when the two differ, or when no server
/// has recorded one yet.
pub(super) async fn resolve_base_url(
    store: &Store,
    explicit: Option<String>,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let recorded = store.setting(crate::store::BASE_URL_SETTING).await?;
    let trim = |url: &str| url.trim_end_matches('/').to_string();
    Ok(match (explicit, recorded) {
        (Some(explicit), Some(recorded)) => {
            if trim(&explicit) != trim(&recorded) {
                eprintln!(
                    "kiln: warning: using base URL {explicit}, but the server on this database \
                     runs with {recorded}"
                );
            }
            trim(&explicit)
        }
        (Some(explicit), None) => trim(&explicit),
        (None, Some(recorded)) => trim(&recorded),
        (None, None) => {
            eprintln!(
                "kiln: warning: no server has run on this database yet; using {DEFAULT_BASE_URL} \
                 (give --base-url to choose)"
            );
            DEFAULT_BASE_URL.to_string()
        }
    })
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
    match store.user(&user).await? {
        None => return Err(format!("no user {user}").into()),
        Some(found) if found.disabled => return Err(format!("user {user} is disabled").into()),
        Some(_) => {}
    }
    require_resource(&store, "Patient", &patient, "--patient").await?;
    if let Some(encounter) = &encounter {
        require_resource(&store, "Encounter", encounter, "--encounter").await?;
    }
    let base_url = resolve_base_url(&store, base_url).await?;
    let launch = random_token();
    let audit = cli_recorder(&store).await?;
    let event = Event::launch(
        Security::AdminAction,
        Agent::cli(),
        Origin::default(),
        &client_id,
        &user,
        &patient,
        encounter.as_deref(),
    );
    store
        .insert_launch(
            &Launch {
                launch_hash: digest_hex(&launch),
                client_id,
                username: user,
                patient: Some(patient),
                encounter,
                expires_at: crate::auth::now() + LAUNCH_LIFETIME_SECS,
                used: false,
            },
            &cli_rows(&audit, &event),
        )
        .await?;
    let iss = format!("{base_url}/fhir");
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
    let ring = crate::state::keys::KeyRing::new(store.clone(), 0);
    let audit = cli_recorder(&store).await?;
    let kid = ring
        .rotate(|kid| {
            let event = cli_event(
                Security::AdminAction,
                Subject::key(kid),
                "signing key rotated: the new key signs from now on; the previous one stays \
                 published until its tokens expire",
            );
            cli_rows(&audit, &event)
        })
        .await?;
    println!("{}", json!({ "kid": kid }));
    store.close().await;
    Ok(())
}
