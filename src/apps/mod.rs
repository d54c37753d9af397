//! The app lifecycle: a developer's (or operator's, or dynamically registering client's)
//! registration request, its review, and the credentials an approved app gets. Layer 5: it
//! imports `store`, `access`, `config`, `crypto` and `fhir`, never `state`, `web` or `auth`;
//! the portal, the admin console, dynamic registration and the `kiln app` commands all go
//! through it.
//!
//! - `request`: [`AppRequest`], what is asked for (one revision of an app).
//! - `validate`: the checks of a draft and of a submission, as per-field [`Problem`]s.
//! - `jwks_check`: the JWK Set of a key-pair app, fetched and checked at submission.
//! - `logo`: PNG/JPEG logos, size-limited, stored by digest.
//! - `policy`: which submissions are approved without review; the onboarding settings
//!   `kiln serve` records for the command line.
//! - `lifecycle`: the state machine (create, save, submit, approve, request changes,
//!   reject, suspend, reactivate, retire, rotate the secret), each a typed outcome or a
//!   [`LifecycleError`], each recorded in the app's history in the same transaction.
//! - `view`: listings and the full picture of one app (revisions, history, credentials,
//!   activity) for pages and commands.
//!
//! Statuses: DRAFT → PENDING REVIEW → ACTIVE | CHANGES REQUESTED | REJECTED; ACTIVE ⇄
//! SUSPENDED; anything but RETIRED → RETIRED. Editing an ACTIVE app makes a new draft
//! revision; once submitted and approved it replaces the active one, which keeps working
//! meanwhile.

pub mod jwks_check;
pub mod lifecycle;
pub mod logo;
pub mod policy;
pub mod request;
pub mod validate;
pub mod view;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use lifecycle::LifecycleError;
pub use request::AppRequest;
pub use validate::Problem;

/// Where an app stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    PendingReview,
    ChangesRequested,
    Active,
    Rejected,
    Suspended,
    Retired,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Draft,
        Status::PendingReview,
        Status::ChangesRequested,
        Status::Active,
        Status::Rejected,
        Status::Suspended,
        Status::Retired,
    ];

    /// The stored name (`pending_review`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::PendingReview => "pending_review",
            Status::ChangesRequested => "changes_requested",
            Status::Active => "active",
            Status::Rejected => "rejected",
            Status::Suspended => "suspended",
            Status::Retired => "retired",
        }
    }

    /// The stored name, or its display form (`PENDING REVIEW`, `pending-review`).
    pub fn parse(text: &str) -> Option<Status> {
        let normal = text.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        Status::ALL.into_iter().find(|s| s.as_str() == normal)
    }

    /// Why the client of an app in this status is refused (the app is not ACTIVE, or its
    /// client was disabled): "this client is awaiting review".
    pub fn refusal(self) -> &'static str {
        match self {
            Status::PendingReview => "this client is awaiting review",
            Status::ChangesRequested => "this client's registration was sent back for changes",
            Status::Rejected => "this client's registration was rejected",
            Status::Suspended => "this app is suspended",
            Status::Retired => "this app is retired",
            Status::Draft | Status::Active => "this client is disabled",
        }
    }

    /// How pages and messages show it: `PENDING REVIEW`.
    pub fn label(self) -> String {
        self.as_str().replace('_', " ").to_ascii_uppercase()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// Who made a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A developer account (its id).
    Developer(String),
    /// A signed-in admin (username).
    Admin(String),
    /// The command line.
    Operator,
    /// The approval policy, automatically.
    Policy,
    /// A client through dynamic registration.
    Client,
}

impl Actor {
    /// The stored form: `developer:ID`, `admin:NAME`, `operator`, `policy`, `client`.
    pub fn stored(&self) -> String {
        match self {
            Actor::Developer(id) => format!("developer:{id}"),
            Actor::Admin(name) => format!("admin:{name}"),
            Actor::Operator => "operator".into(),
            Actor::Policy => "policy".into(),
            Actor::Client => "client".into(),
        }
    }

    pub fn parse(text: &str) -> Option<Actor> {
        Some(match text.split_once(':') {
            Some(("developer", id)) => Actor::Developer(id.into()),
            Some(("admin", name)) => Actor::Admin(name.into()),
            None if text == "operator" => Actor::Operator,
            None if text == "policy" => Actor::Policy,
            None if text == "client" => Actor::Client,
            _ => return None,
        })
    }
}

/// What was done to an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Save,
    Submit,
    Approve,
    RequestChanges,
    Reject,
    Suspend,
    Reactivate,
    Retire,
    RotateSecret,
    IssueSecret,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Save => "save",
            Action::Submit => "submit",
            Action::Approve => "approve",
            Action::RequestChanges => "request_changes",
            Action::Reject => "reject",
            Action::Suspend => "suspend",
            Action::Reactivate => "reactivate",
            Action::Retire => "retire",
            Action::RotateSecret => "rotate_secret",
            Action::IssueSecret => "issue_secret",
        }
    }

    /// The history's name for the action: "Changes requested".
    pub fn label(self) -> &'static str {
        match self {
            Action::Create => "Created",
            Action::Save => "Edited",
            Action::Submit => "Submitted",
            Action::Approve => "Approved",
            Action::RequestChanges => "Changes requested",
            Action::Reject => "Rejected",
            Action::Suspend => "Suspended",
            Action::Reactivate => "Reactivated",
            Action::Retire => "Retired",
            Action::RotateSecret => "Secret rotated",
            Action::IssueSecret => "First secret issued",
        }
    }

    /// The passive phrase: "an app in REJECTED cannot be {suspended}".
    pub fn passive(self) -> &'static str {
        match self {
            Action::Create => "created",
            Action::Save => "edited",
            Action::Submit => "submitted",
            Action::Approve => "approved",
            Action::RequestChanges => "sent back for changes",
            Action::Reject => "rejected",
            Action::Suspend => "suspended",
            Action::Reactivate => "reactivated",
            Action::Retire => "retired",
            Action::RotateSecret => "given a new secret",
            Action::IssueSecret => "given its first secret",
        }
    }

    /// Whether the action needs a reason (shown to the developer).
    pub fn needs_reason(self) -> bool {
        matches!(
            self,
            Action::RequestChanges | Action::Reject | Action::Suspend
        )
    }
}
