//! The audit report (`/admin/audit`): the audit log's events for a period (from/to, dates or
//! times in UTC), narrowed by patient, agent (the user's FHIR reference, username or client
//! id), type (the event type or subtype code) and outcome; every column sortable (a header
//! sorts by it, again reverses), paged, and downloadable as CSV with the same filter and order
//! (`/admin/audit/csv`, streamed; see [`report`]). Read-only: GETs only.

pub mod report;

use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::guard::Admin;
use super::nav::{Card, Console, Section};
use crate::http::form::Fields;
use crate::search::date_range;
use crate::state::AppState;
use crate::store::audit::query::{AuditAtom, AuditColumn, AuditFilter, AuditPageQuery, AuditSort};
use crate::web::error::PageResult;
use crate::web::html::html;
use report::{CsvReport, cell};

pub const SECTION: Section = Section {
    path: "/admin/audit",
    title: "Audit log",
};

/// Events on one page.
const PAGE_SIZE: i64 = 50;
/// The deepest page: past it, narrow the period (the CSV has every row).
const MAX_PAGE: i64 = 2000;
/// The order without a choice: newest first.
const DEFAULT_SORT: &str = "-date";

/// The filter as the form holds it.
#[derive(Default)]
struct Form {
    from: String,
    to: String,
    patient: String,
    agent: String,
    kind: String,
    outcome: String,
    sort: String,
}

impl Form {
    fn read(fields: &Fields) -> Form {
        let field = |name: &str| fields.get(name).unwrap_or("").trim().to_owned();
        Form {
            from: field("from"),
            to: field("to"),
            patient: field("patient"),
            agent: field("agent"),
            kind: field("type"),
            outcome: field("outcome"),
            sort: field("sort"),
        }
    }

    /// The filter's query string, with `sort` and `page` as given (empty fields left out).
    fn query(&self, sort: &str, page: i64) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("from", &self.from),
            ("to", &self.to),
            ("patient", &self.patient),
            ("agent", &self.agent),
            ("type", &self.kind),
            ("outcome", &self.outcome),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        if !sort.is_empty() && sort != DEFAULT_SORT {
            query.append_pair("sort", sort);
        }
        if page > 1 {
            query.append_pair("page", &page.to_string());
        }
        query.finish()
    }

    /// The store's filter, or what is wrong with the form.
    fn filter(&self) -> Result<AuditFilter, String> {
        let mut filter = AuditFilter::default();
        let bound = |text: &str, what: &str| -> Result<Option<(i64, i64)>, String> {
            if text.is_empty() {
                return Ok(None);
            }
            date_range(text).map(Some).ok_or_else(|| {
                format!("{what}: \"{text}\" is not a date or time like 2024-05-17 or 2024-05-17T10:30:00Z")
            })
        };
        let from = bound(&self.from, "From")?.map(|(start, _)| start);
        let until = bound(&self.to, "To")?.map(|(_, end)| end);
        filter.period(from, until);
        let is = |column, value: &str| AuditAtom::Is(column, value.to_owned());
        if !self.patient.is_empty() {
            let id = self
                .patient
                .strip_prefix("Patient/")
                .unwrap_or(&self.patient);
            filter.require(vec![is(AuditColumn::Patient, id)]);
        }
        if !self.agent.is_empty() {
            filter.require(vec![
                is(AuditColumn::AgentWho, &self.agent),
                is(AuditColumn::AgentUser, &self.agent),
                is(AuditColumn::AgentClient, &self.agent),
            ]);
        }
        if !self.kind.is_empty() {
            filter.require(vec![
                is(AuditColumn::Type, &self.kind),
                is(AuditColumn::Subtype, &self.kind),
            ]);
        }
        if !self.outcome.is_empty() {
            if !OUTCOMES.iter().any(|(code, _)| *code == self.outcome) {
                return Err(format!(
                    "Outcome: \"{}\" is not 0, 4, 8 or 12",
                    self.outcome
                ));
            }
            filter.require(vec![is(AuditColumn::Outcome, &self.outcome)]);
        }
        Ok(filter)
    }

    /// The sort keys (the default when none or an unknown column is asked for).
    fn sort_keys(&self) -> Vec<AuditSort> {
        AuditColumn::parse_sort(&self.sort)
            .ok()
            .filter(|keys| !keys.is_empty())
            .unwrap_or_else(|| vec![(AuditColumn::Recorded, true)])
    }
}

/// The outcome codes and what they mean.
const OUTCOMES: [(&str, &str); 4] = [
    ("0", "success"),
    ("4", "minor failure"),
    ("8", "serious failure"),
    ("12", "major failure"),
];

/// A column header: its title, the link that sorts by it, and how the page is sorted by it now.
struct Header {
    title: &'static str,
    href: String,
    /// `ascending`, `descending` or `none` (`aria-sort`).
    sorted: &'static str,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    console: Console,
    form: Form,
    outcomes: &'static [(&'static str, &'static str)],
    message: Option<String>,
    headers: Vec<Header>,
    rows: Vec<Vec<String>>,
    total: i64,
    page: i64,
    previous: Option<String>,
    next: Option<String>,
    csv: String,
}

/// The section's card on the console's home page.
pub async fn card(state: &AppState) -> PageResult<Card> {
    let (events, _) = state.store.audit_head().await?;
    Ok(Card {
        section: &SECTION,
        counts: vec![("Events", usize::try_from(events).unwrap_or(0))],
    })
}

/// `GET /admin/audit`.
pub async fn page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    admin: Admin,
) -> PageResult {
    let fields = Fields::parse(query.unwrap_or_default().as_bytes());
    let form = Form::read(&fields);
    let page = fields
        .get("page")
        .and_then(|page| page.parse::<i64>().ok())
        .unwrap_or(1)
        .clamp(1, MAX_PAGE);
    let sort = form.sort_keys();
    let base = format!(
        "{}{}",
        admin.console(&state, SECTION.path).base,
        SECTION.path
    );
    let headers = AuditColumn::ALL
        .into_iter()
        .map(|column| {
            let sorted = match sort.first() {
                Some((first, false)) if *first == column => "ascending",
                Some((first, true)) if *first == column => "descending",
                _ => "none",
            };
            let next = if sorted == "ascending" {
                format!("-{}", column.name())
            } else {
                column.name().to_owned()
            };
            Header {
                title: title(column),
                href: link(&base, &form.query(&next, 1)),
                sorted,
            }
        })
        .collect();
    let current_sort = if form.sort.is_empty() {
        DEFAULT_SORT.to_owned()
    } else {
        form.sort.clone()
    };
    let csv = link(&format!("{base}/csv"), &form.query(&current_sort, 1));
    let mut view = AuditPage {
        console: admin.console(&state, SECTION.path),
        form,
        outcomes: &OUTCOMES,
        message: None,
        headers,
        rows: Vec::new(),
        total: 0,
        page,
        previous: None,
        next: None,
        csv,
    };
    let filter = match view.form.filter() {
        Ok(filter) => filter,
        Err(message) => {
            view.message = Some(message);
            return Ok(html(StatusCode::BAD_REQUEST, &view));
        }
    };
    state.audit.settled().await?;
    let found = state
        .store
        .audit_page(&AuditPageQuery {
            filter: &filter,
            sort: &sort,
            offset: (page - 1) * PAGE_SIZE,
            limit: PAGE_SIZE,
            total: true,
        })
        .await?;
    view.total = found.total.unwrap_or(0);
    view.rows = found
        .rows
        .iter()
        .map(|row| {
            AuditColumn::ALL
                .into_iter()
                .map(|column| cell(row, column).into_owned())
                .collect()
        })
        .collect();
    if page > 1 {
        view.previous = Some(link(&base, &view.form.query(&current_sort, page - 1)));
    }
    if found.more && page < MAX_PAGE {
        view.next = Some(link(&base, &view.form.query(&current_sort, page + 1)));
    }
    Ok(html(StatusCode::OK, &view))
}

/// `GET /admin/audit/csv`: every event of the filter, in the page's order, as CSV; streamed
/// (a bounded channel between the database walk and the response body).
pub async fn csv(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    _admin: Admin,
) -> PageResult<Response> {
    let fields = Fields::parse(query.unwrap_or_default().as_bytes());
    let form = Form::read(&fields);
    let filter = match form.filter() {
        Ok(filter) => filter,
        Err(message) => return Ok((StatusCode::BAD_REQUEST, message).into_response()),
    };
    let sort = form.sort_keys();
    state.audit.settled().await?;
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let store = state.store.clone();
    tokio::spawn(async move {
        if let Err(error) = stream_csv(&store, &filter, &sort, &sender).await {
            tracing::warn!(%error, "the audit CSV download stopped");
            let _ = sender.send(Err(error)).await;
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|chunk| (chunk, receiver)) },
    ));
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"kiln-audit.csv\""),
    );
    Ok(response)
}

/// Rows this many bytes long (or more) are sent as one chunk.
const CHUNK_BYTES: usize = 64 * 1024;

async fn stream_csv(
    store: &crate::store::Store,
    filter: &AuditFilter,
    sort: &[AuditSort],
    sender: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), std::io::Error> {
    let mut report = CsvReport::new().map_err(std::io::Error::other)?;
    store
        .audit_each(filter, sort, |row| {
            let chunk = report
                .row(&row)
                .map(|()| (report.buffered() >= CHUNK_BYTES).then(|| report.take()));
            send(sender.clone(), chunk)
        })
        .await?;
    send(sender.clone(), Ok(Some(report.take()))).await
}

/// Sends a chunk of CSV (none: nothing yet), waiting while the reader is behind.
async fn send(
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    chunk: csv::Result<Option<Vec<u8>>>,
) -> Result<(), std::io::Error> {
    match chunk.map_err(std::io::Error::other)? {
        Some(chunk) if !chunk.is_empty() => sender
            .send(Ok(Bytes::from(chunk)))
            .await
            .map_err(|_| std::io::Error::other("the download was abandoned")),
        _ => Ok(()),
    }
}

fn title(column: AuditColumn) -> &'static str {
    match column {
        AuditColumn::Seq => "Seq",
        AuditColumn::Recorded => "Recorded (UTC)",
        AuditColumn::Type => "Type",
        AuditColumn::Subtype => "Subtype",
        AuditColumn::Action => "Action",
        AuditColumn::Outcome => "Outcome",
        AuditColumn::AgentWho => "Agent",
        AuditColumn::AgentUser => "User",
        AuditColumn::AgentClient => "Client",
        AuditColumn::Patient => "Patient",
        AuditColumn::Entity => "Entity",
    }
}

fn link(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}
