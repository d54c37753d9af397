//! `kiln token create`: mints an access token for a registered client, as the token endpoint
//! would issue it, and prints the token response (for scripts, CI runs such as the Postman
//! collection's, and support). The checks and the issuing are `auth::oauth::operator`'s;
//! this file finds the client and the user and refuses contexts that name nothing stored,
//! and records the issue in the audit log (`token-issued`, by the command line).

use clap::{Args, Subcommand};

use super::auth::{open, require_resource, resolve_base_url};
use crate::audit::switch::{cli_recorder, record_cli};
use crate::audit::{Security, Subject};
use crate::auth::oauth::issue::Issuer;
use crate::auth::oauth::operator::{Mint, mint};
use crate::cli::CliResult;
use crate::config::DatabaseArgs;
use crate::state::keys::KeyRing;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint an access token for a registered client; prints the token response as JSON.
    Create(TokenCreate),
}

#[derive(Debug, Args)]
pub struct TokenCreate {
    #[arg(long)]
    client_id: String,
    /// Scopes (space separated), each within the client's registered scope.
    #[arg(long)]
    scope: String,
    /// The patient in context (required by `patient/` scopes).
    #[arg(long)]
    patient: Option<String>,
    /// The user the token acts for (required by `user/` scopes, `openid`, `fhirUser`).
    #[arg(long)]
    user: Option<String>,
    /// The encounter in context.
    #[arg(long)]
    encounter: Option<String>,
    /// Seconds the token stays valid.
    #[arg(long, default_value_t = 3600)]
    lifetime: i64,
    /// Public URL of the server (for the `id_token`'s `iss`); by default the one `kiln serve`
    /// recorded.
    #[arg(long, env = "KILN_BASE_URL")]
    base_url: Option<String>,
}

pub async fn token(database: DatabaseArgs, command: TokenCommand) -> CliResult {
    let TokenCommand::Create(create) = command;
    let store = open(&database).await?;
    let client = store
        .client(&create.client_id)
        .await?
        .ok_or_else(|| format!("no client {}", create.client_id))?;
    let user = match &create.user {
        Some(username) => {
            let user = store
                .user(username)
                .await?
                .ok_or_else(|| format!("no user {username}"))?;
            if user.disabled {
                return Err(format!("user {username} is disabled").into());
            }
            Some(user)
        }
        None => None,
    };
    if let Some(patient) = &create.patient {
        require_resource(&store, "Patient", patient, "--patient").await?;
    }
    if let Some(encounter) = &create.encounter {
        require_resource(&store, "Encounter", encounter, "--encounter").await?;
    }
    let base_url = resolve_base_url(&store, create.base_url).await?;
    let keys = KeyRing::new(store.clone(), 0);
    keys.ensure_key().await?;
    let issuer = Issuer {
        store: &store,
        keys: &keys,
        base_url: &base_url,
    };
    let minted = mint(
        &issuer,
        Mint {
            client: &client,
            scope: &create.scope,
            user: user.as_ref(),
            patient: create.patient,
            encounter: create.encounter,
            lifetime: create.lifetime,
        },
        crate::auth::now(),
    )
    .await
    .map_err(|error| format!("{}: {}", error.error, error.description))?;
    let audit = cli_recorder(&store).await?;
    let description = format!(
        "kiln token create: scope {:?}, user {}",
        create.scope,
        create.user.as_deref().unwrap_or("none")
    );
    let subject = Subject::client(client.client_id.as_str());
    record_cli(&audit, Security::TokenIssued, subject, description).await?;
    println!("{minted}");
    store.close().await;
    Ok(())
}
