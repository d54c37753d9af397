//! `kiln app …`: the app lifecycle from the command line (list, show, create from a request
//! file, approve, request changes, reject, suspend, reactivate, retire, rotate the secret),
//! all through `crate::apps::lifecycle` as the operator. An app is named by its app id or
//! its client id. `create` applies the validation and approval policy the last `kiln serve`
//! on this database recorded (`--sandbox`, `--approval-policy`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::apps::lifecycle::{self, Approved, Submitted, Transitioned};
use crate::apps::request::AppRequest;
use crate::apps::{Actor, Status, policy, view};
use crate::audit::switch::cli_recorder;
use crate::cli::CliResult;
use crate::config::DatabaseArgs;
use crate::store::Store;
use crate::store::apps::AppFilter;

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// List apps, most recently changed first.
    List(ListArgs),
    /// Show one app: status, revisions with their checks, history, client id, activity.
    Show { app: String },
    /// Register an app from a request file (JSON of the registration request): it is
    /// checked and submitted, and the approval policy applies. Prints its app_id and status,
    /// and, if approved, its client_id (and secret, shown only this once).
    Create {
        #[arg(long)]
        request: PathBuf,
        /// The developer account the app belongs to (its e-mail address or account id): the
        /// app then shows in that developer's portal.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Replace an app's request with a request file and submit it: a draft or an app sent
    /// back for changes goes to review again; an active app keeps working while the new
    /// revision waits for review. The approval policy applies.
    Update {
        app: String,
        #[arg(long)]
        request: PathBuf,
    },
    /// Submit an app's edited revision (or resubmit one sent back for changes) for review.
    Submit { app: String },
    /// Approve the revision waiting for review; prints the client_id (and, at the first
    /// approval of a confidential-symmetric app, the secret, shown only this once).
    Approve(Decision),
    /// Send the revision waiting for review back to the developer (--reason required).
    RequestChanges(Decision),
    /// Reject the revision waiting for review (--reason required).
    Reject(Decision),
    /// Suspend an active app: its tokens stop working at once (--reason required).
    Suspend(Decision),
    /// Reactivate a suspended app (its old tokens stay revoked).
    Reactivate(Decision),
    /// Retire an app for good.
    Retire(Decision),
    /// Give an active confidential-symmetric app a new secret (printed only this once); the
    /// previous one keeps working for --keep-old-for seconds.
    RotateSecret {
        app: String,
        #[arg(long)]
        keep_old_for: i64,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only apps in this status (draft, pending_review, changes_requested, active,
    /// rejected, suspended, retired).
    #[arg(long, value_parser = parse_status)]
    status: Option<Status>,
    /// Only apps of this developer account.
    #[arg(long)]
    owner: Option<String>,
    /// Only apps with a revision waiting for review (new apps and edits of active ones).
    #[arg(long)]
    awaiting_review: bool,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct Decision {
    /// App id or client id.
    app: String,
    /// Why (shown to the developer; required to request changes, reject or suspend).
    #[arg(long)]
    reason: Option<String>,
}

fn parse_status(text: &str) -> Result<Status, String> {
    Status::parse(text).ok_or_else(|| {
        let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown status {text:?}: one of {}", names.join(", "))
    })
}

pub async fn app(database: DatabaseArgs, command: AppCommand) -> CliResult {
    let store = Store::connect(&database.database_url, 2).await?;
    // A command that revokes answers once its notification came back (see
    // `store::auth::revocation`).
    let _listening = store.listen_revocations_live().await;
    store.migrate().await?;
    let result = run(&store, command).await;
    store.close().await;
    result
}

async fn run(store: &Store, command: AppCommand) -> CliResult {
    let now = crate::fhir::instant::now_secs();
    let actor = Actor::Operator;
    let recorder = cli_recorder(store).await?;
    let audit = lifecycle::Audit::cli(&recorder);
    match command {
        AppCommand::List(args) => {
            let filter = AppFilter {
                app_id: None,
                status: args.status.map(Status::as_str),
                owner: args.owner.as_deref(),
                awaiting_review: args.awaiting_review,
            };
            let apps = view::list(store, &filter).await?;
            for app in &apps {
                if args.json {
                    println!("{}", serde_json::to_string(app)?);
                } else {
                    println!(
                        "{}  {:<17}  {:<32}  {}{}",
                        app.app_id,
                        app.status.as_str(),
                        app.client_id.as_deref().unwrap_or("-"),
                        app.name,
                        if app.awaiting_review {
                            "  (awaiting review)"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
        AppCommand::Show { app } => {
            let detail = view::show(store, &app).await?;
            println!("{}", serde_json::to_string(&detail)?);
        }
        AppCommand::Create { request, owner } => {
            let parsed = read_request(&request)?;
            let owner = match owner {
                Some(owner) => Some(owner_account(store, &owner).await?),
                None => None,
            };
            let settings = policy::recorded(store).await?;
            let (created, submitted) = lifecycle::register(
                store,
                &audit,
                &settings,
                &actor,
                owner.as_deref(),
                &parsed,
                now,
            )
            .await?;
            println!(
                "{}",
                submitted_json(store, &created.app_id, submitted).await?
            );
        }
        AppCommand::Update { app, request } => {
            let parsed = read_request(&request)?;
            let settings = policy::recorded(store).await?;
            lifecycle::save(store, &audit, &actor, &app, &parsed, now).await?;
            let submitted = lifecycle::submit(store, &audit, &settings, &actor, &app, now).await?;
            let app_id = lifecycle::app_id_of(store, &app).await?;
            println!("{}", submitted_json(store, &app_id, submitted).await?);
        }
        AppCommand::Submit { app } => {
            let settings = policy::recorded(store).await?;
            let submitted = lifecycle::submit(store, &audit, &settings, &actor, &app, now).await?;
            let app_id = lifecycle::app_id_of(store, &app).await?;
            println!("{}", submitted_json(store, &app_id, submitted).await?);
        }
        AppCommand::Approve(decision) => {
            let approved = lifecycle::approve(
                store,
                &audit,
                &actor,
                &decision.app,
                decision.reason.as_deref(),
                now,
            )
            .await?;
            println!("{}", approved_json(&approved));
        }
        AppCommand::RequestChanges(d) => {
            let done =
                lifecycle::request_changes(store, &audit, &actor, &d.app, d.reason.as_deref(), now)
                    .await?;
            print_transition(store, &d.app, &done).await?;
        }
        AppCommand::Reject(d) => {
            let done =
                lifecycle::reject(store, &audit, &actor, &d.app, d.reason.as_deref(), now).await?;
            print_transition(store, &d.app, &done).await?;
        }
        AppCommand::Suspend(d) => {
            let done =
                lifecycle::suspend(store, &audit, &actor, &d.app, d.reason.as_deref(), now).await?;
            print_transition(store, &d.app, &done).await?;
        }
        AppCommand::Reactivate(d) => {
            let done =
                lifecycle::reactivate(store, &audit, &actor, &d.app, d.reason.as_deref(), now)
                    .await?;
            print_transition(store, &d.app, &done).await?;
        }
        AppCommand::Retire(d) => {
            let done =
                lifecycle::retire(store, &audit, &actor, &d.app, d.reason.as_deref(), now).await?;
            print_transition(store, &d.app, &done).await?;
        }
        AppCommand::RotateSecret { app, keep_old_for } => {
            let rotated =
                lifecycle::rotate_secret(store, &audit, &actor, &app, keep_old_for, now).await?;
            println!(
                "{}",
                json!({
                    "client_id": rotated.client_id,
                    "client_secret": rotated.client_secret,
                    "previous_secret_valid_until": rotated.previous_valid_until,
                })
            );
        }
    }
    Ok(())
}

/// The account id of the developer named by e-mail address or account id.
async fn owner_account(store: &Store, owner: &str) -> Result<String, String> {
    let found = if owner.contains('@') {
        let email = owner.trim().to_lowercase();
        store
            .developer_login(&email)
            .await
            .map_err(|error| error.to_string())?
            .map(|login| login.developer)
    } else {
        store
            .developer(owner)
            .await
            .map_err(|error| error.to_string())?
    };
    found
        .map(|developer| developer.account_id)
        .ok_or_else(|| format!("no developer account {owner:?}"))
}

fn read_request(path: &std::path::Path) -> Result<AppRequest, String> {
    let text =
        std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|error| format!("{}: not a registration request: {error}", path.display()))
}

/// A submission's outcome: the app's status, and its credentials if it was approved.
async fn submitted_json(
    store: &Store,
    app_id: &str,
    submitted: Submitted,
) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    let (mut out, checks) = match submitted {
        Submitted::PendingReview { revision, checks } => {
            let status = view::show(store, app_id).await?.summary.status;
            let out = json!({
                "app_id": app_id,
                "status": status.as_str(),
                "revision": revision,
                "awaiting_review": true,
            });
            (out, checks)
        }
        Submitted::Approved { approved, checks } => (approved_json(&approved), checks),
    };
    out["warnings"] = json!(checks.warnings);
    Ok(out)
}

fn approved_json(approved: &Approved) -> Value {
    let mut out = json!({
        "app_id": approved.app_id,
        "status": Status::Active.as_str(),
        "revision": approved.revision,
        "client_id": approved.client_id,
    });
    if let Some(secret) = &approved.client_secret {
        out["client_secret"] = json!(secret);
    }
    out
}

async fn print_transition(store: &Store, app: &str, done: &Transitioned) -> CliResult {
    let app_id = lifecycle::app_id_of(store, app).await?;
    println!(
        "{}",
        json!({
            "app_id": app_id,
            "from": done.from.as_str(),
            "status": done.to.as_str(),
            "revision": done.revision,
        })
    );
    Ok(())
}
