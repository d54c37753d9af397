//! OperationOutcome and the error type every FHIR handler returns.

use axum::http::StatusCode;
use serde_json::{Value, json};

/// FHIR `IssueType` codes this server reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueCode {
    Invalid,
    Structure,
    Required,
    Value,
    NotFound,
    Deleted,
    NotSupported,
    Conflict,
    Duplicate,
    Processing,
    TooCostly,
    NoStore,
    Exception,
    Informational,
    Security,
    Login,
    Forbidden,
}

impl IssueCode {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueCode::Invalid => "invalid",
            IssueCode::Structure => "structure",
            IssueCode::Required => "required",
            IssueCode::Value => "value",
            IssueCode::NotFound => "not-found",
            IssueCode::Deleted => "deleted",
            IssueCode::NotSupported => "not-supported",
            IssueCode::Conflict => "conflict",
            IssueCode::Duplicate => "duplicate",
            IssueCode::Processing => "processing",
            IssueCode::TooCostly => "too-costly",
            IssueCode::NoStore => "no-store",
            IssueCode::Exception => "exception",
            IssueCode::Informational => "informational",
            IssueCode::Security => "security",
            IssueCode::Login => "login",
            IssueCode::Forbidden => "forbidden",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// One OperationOutcome.issue.
#[derive(Debug, Clone)]
pub struct Issue {
    pub severity: Severity,
    pub code: IssueCode,
    pub diagnostics: String,
    pub expression: Option<String>,
}

impl Issue {
    pub fn error(code: IssueCode, diagnostics: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Error,
            code,
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }

    pub fn at(mut self, expression: impl Into<String>) -> Self {
        self.expression = Some(expression.into());
        self
    }

    fn to_json(&self) -> Value {
        let mut issue = json!({
            "severity": self.severity.as_str(),
            "code": self.code.as_str(),
            "diagnostics": self.diagnostics,
        });
        if let Some(expression) = &self.expression {
            issue["expression"] = json!([expression]);
        }
        issue
    }
}

/// Builds an OperationOutcome resource from issues.
pub fn operation_outcome(issues: &[Issue]) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": issues.iter().map(Issue::to_json).collect::<Vec<_>>(),
    })
}

/// An informational OperationOutcome, e.g. for `Prefer: return=OperationOutcome`.
pub fn informational(message: impl Into<String>) -> Value {
    operation_outcome(&[Issue {
        severity: Severity::Information,
        code: IssueCode::Informational,
        diagnostics: message.into(),
        expression: None,
    }])
}

/// A failed FHIR interaction: an HTTP status and the issues that explain it.
#[derive(Debug, Clone)]
pub struct FhirError {
    pub status: StatusCode,
    pub issues: Vec<Issue>,
}

pub type FhirResult<T> = Result<T, FhirError>;

impl FhirError {
    pub fn new(status: StatusCode, code: IssueCode, diagnostics: impl Into<String>) -> Self {
        FhirError {
            status,
            issues: vec![Issue::error(code, diagnostics)],
        }
    }

    pub fn with_issues(status: StatusCode, issues: Vec<Issue>) -> Self {
        FhirError { status, issues }
    }

    pub fn bad_request(diagnostics: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, IssueCode::Invalid, diagnostics)
    }

    pub fn not_found(diagnostics: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, IssueCode::NotFound, diagnostics)
    }

    pub fn gone(diagnostics: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, IssueCode::Deleted, diagnostics)
    }

    pub fn conflict(diagnostics: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, IssueCode::Conflict, diagnostics)
    }

    pub fn precondition_failed(diagnostics: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            IssueCode::Conflict,
            diagnostics,
        )
    }

    pub fn unprocessable(issues: Vec<Issue>) -> Self {
        Self::with_issues(StatusCode::UNPROCESSABLE_ENTITY, issues)
    }

    pub fn not_supported(status: StatusCode, diagnostics: impl Into<String>) -> Self {
        Self::new(status, IssueCode::NotSupported, diagnostics)
    }

    /// A server-side failure; the details go to the log, not to the client.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            IssueCode::Exception,
            format!("internal error while {context}"),
        )
    }

    pub fn expression_at(mut self, expression: impl Into<String>) -> Self {
        let expression = expression.into();
        for issue in &mut self.issues {
            issue.expression = Some(expression.clone());
        }
        self
    }

    pub fn outcome(&self) -> Value {
        operation_outcome(&self.issues)
    }

    /// A short line for logs and import reports.
    pub fn summary(&self) -> String {
        self.issues
            .iter()
            .map(|issue| match &issue.expression {
                Some(path) => format!("{} ({path})", issue.diagnostics),
                None => issue.diagnostics.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl std::fmt::Display for FhirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.summary())
    }
}

impl std::error::Error for FhirError {}
