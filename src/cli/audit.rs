//! `kiln audit`: `verify` walks the audit log's hash chain and names its first break (exit 1);
//! `export` writes the events of a period as NDJSON (their AuditEvents, in seq order); `report` writes a period's events sorted by any columns as CSV or a text table.
//! All three stream: memory stays one event whatever the log's size. The walking is
//! `store::audit`'s, the report's columns `admin::audit::report`'s.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use crate::admin::audit::report::{CsvReport, table_header, table_row};
use crate::audit::balp::audit_event_of;
use crate::config::DatabaseArgs;
use crate::fhir::instant::to_fhir_instant;
use crate::search::date_range;
use crate::store::Store;
use crate::store::audit::query::{AuditColumn, AuditFilter, AuditRow};
use crate::store::audit::verify::{Break, EventMark};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain: every link, every searchable column against its event, no gap
    /// in seq, the head. Exit 1 naming the first altered or missing event.
    Verify,
    /// Write the AuditEvents recorded in a period as NDJSON, in seq order.
    Export {
        /// From this date or time (RFC 3339, or a date: from its start), UTC.
        #[arg(long)]
        since: Option<String>,
        /// Up to this date or time (a date: through its end), UTC.
        #[arg(long)]
        until: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Write a period's events, one line each, sorted (CSV by default).
    Report {
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        /// Columns to sort by, `-` for descending: seq, date, type, subtype, action,
        /// outcome, agent, user, client, patient, entity.
        #[arg(long, default_value = "date", allow_hyphen_values = true)]
        sort: String,
        #[arg(long, value_enum, default_value_t = ReportFormat::Csv)]
        format: ReportFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Csv,
    Table,
}

type AuditResult = Result<ExitCode, Box<dyn std::error::Error + Send + Sync>>;

pub async fn audit(database: DatabaseArgs, command: AuditCommand) -> AuditResult {
    let store = Store::connect(&database.database_url, 2).await?;
    store.migrate().await?;
    let code = match command {
        AuditCommand::Verify => verify(&store).await?,
        AuditCommand::Export {
            since,
            until,
            output,
        } => {
            let filter = period(since.as_deref(), until.as_deref())?;
            let mut out = writer(output.as_ref())?;
            let mut events = 0u64;
            store
                .audit_each(&filter, &[(AuditColumn::Seq, false)], |row| {
                    events += 1;
                    std::future::ready(write_ndjson_line(&mut out, &row))
                })
                .await?;
            out.flush()?;
            eprintln!("exported {events} audit events");
            ExitCode::SUCCESS
        }
        AuditCommand::Report {
            since,
            until,
            sort,
            format,
        } => {
            let filter = period(since.as_deref(), until.as_deref())?;
            let sort = AuditColumn::parse_sort(&sort)
                .map_err(|name| format!("--sort: no column {name:?}"))?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            match format {
                ReportFormat::Csv => {
                    let mut report = CsvReport::new()?;
                    out.write_all(&report.take())?;
                    store
                        .audit_each(&filter, &sort, |row| {
                            let written = report
                                .row(&row)
                                .map_err(std::io::Error::other)
                                .and_then(|()| out.write_all(&report.take()));
                            std::future::ready(written)
                        })
                        .await?;
                }
                ReportFormat::Table => {
                    writeln!(out, "{}", table_header())?;
                    store
                        .audit_each(&filter, &sort, |row| {
                            std::future::ready(writeln!(out, "{}", table_row(&row)))
                        })
                        .await?;
                }
            }
            out.flush()?;
            ExitCode::SUCCESS
        }
    };
    store.close().await;
    Ok(code)
}

async fn verify(store: &Store) -> Result<ExitCode, Box<dyn std::error::Error + Send + Sync>> {
    let verdict = store.audit_verify().await?;
    let Some(broken) = verdict.broken else {
        println!(
            "audit log intact: {} events, last seq {}",
            verdict.events, verdict.last_seq
        );
        return Ok(ExitCode::SUCCESS);
    };
    let mark = |mark: &EventMark| {
        format!(
            "seq {} (event_id {}, recorded {})",
            mark.seq,
            mark.event_id,
            to_fhir_instant(mark.recorded)
        )
    };
    let message = match broken {
        Break::Altered(event) => format!(
            "event {} was altered: its hash does not match its content and the chain before it",
            mark(&event)
        ),
        Break::Columns {
            event,
            column,
            stored,
            recorded,
        } => {
            let shown =
                |value: Option<String>| value.map_or("nothing".into(), |v| format!("{v:?}"));
            if column == "body" {
                format!("event {}: its body is not an AuditEvent", mark(&event))
            } else {
                format!(
                    "event {}: column {column} was altered: it holds {}, its AuditEvent says {}",
                    mark(&event),
                    shown(stored),
                    shown(recorded)
                )
            }
        }
        Break::Missing {
            first,
            last,
            after,
            before,
        } => {
            let which = if first == last {
                format!("event seq {first} is missing")
            } else {
                format!("events seq {first} to {last} are missing")
            };
            let after = after.map_or(String::from("the start of the log"), |e| mark(&e));
            let before = before.map_or(
                String::from("the end of the log (the head names it)"),
                |e| mark(&e),
            );
            format!("{which}: between {after} and {before}")
        }
        Break::Head { head_seq, last } => format!(
            "the chain head (seq {head_seq}) does not match the last event, {}",
            last.map_or(String::from("none"), |e| mark(&e))
        ),
    };
    println!(
        "audit log BROKEN after {} intact events: {message}",
        verdict.events
    );
    Ok(ExitCode::FAILURE)
}

/// `recorded` from the start of `since` to the end of `until` (either may be open).
fn period(since: Option<&str>, until: Option<&str>) -> Result<AuditFilter, String> {
    let bound = |text: &str, flag: &str| {
        date_range(text).ok_or_else(|| {
            format!(
                "{flag}: {text:?} is not a date or time like 2024-05-17 or 2024-05-17T10:30:00Z"
            )
        })
    };
    let from = since.map(|text| bound(text, "--since")).transpose()?;
    let until = until.map(|text| bound(text, "--until")).transpose()?;
    let mut filter = AuditFilter::default();
    filter.period(from.map(|(start, _)| start), until.map(|(_, end)| end));
    Ok(filter)
}

fn writer(output: Option<&PathBuf>) -> std::io::Result<Box<dyn Write>> {
    Ok(match output {
        Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}

/// An event's AuditEvent on one line.
fn write_ndjson_line(out: &mut impl Write, row: &AuditRow) -> std::io::Result<()> {
    let event = audit_event_of(&row.body).ok_or_else(|| {
        std::io::Error::other(format!(
            "the body of audit event {} (seq {}) is damaged: run `kiln audit verify`",
            row.event_id, row.seq
        ))
    })?;
    serde_json::to_writer(&mut *out, &event).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}
