//! `kiln bench --search`: US Core searches on PostgreSQL, one client at a time.
//!
//! The sample is cloned with fresh ids and shifted dates up to `--resources`, imported, then
//! vacuumed and analysed (as autovacuum would after a bulk load). Each kind of search runs
//! back to back for `--seconds` against the in-process server, with a random Patient of the
//! clones per request, twice: with the server's connections as `kiln serve` opens them, and
//! with `plan_cache_mode = force_custom_plan` on them (PostgreSQL otherwise may switch a
//! prepared statement to a generic plan, blind to the parameter values, after five runs).
//! Before the clones, the bundled sample alone is loaded and searched right away (fresh:
//! only the statistics the loader gathers); after them one Patient's record grows to
//! `search_skew::GROWN` Observations, searched by date with and without a total.
//! Finally each kind runs once more on connections that load `auto_explain`, first with
//! custom plans forced and then with generic plans forced, so that both plans (with actual
//! times) are in the server log, under the database's name.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{Connection, PgConnection};

use super::dataset::{self, PatientKey};
use super::load::{self, Summary};
use super::report::ms;
use super::search_skew::{self, FRESH_KINDS, GROWN, GROWN_KINDS};
use super::{BenchArgs, BenchDatabase, BenchResult, POOL_CONNECTIONS, Server, WARM_UP};
use crate::engine::search::{PageLimits, SearchRequest, searchset};
use crate::store::Store;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// One kind of search: its name in the report and its parameters for a given Patient.
pub struct Kind {
    pub name: &'static str,
    pub resource_type: &'static str,
    pub params: fn(&PatientKey) -> Vec<(String, String)>,
}

pub fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// The mix: the US Core searches a patient-facing app makes most.
const KINDS: [Kind; 5] = [
    Kind {
        name: "Observation?patient=P&category=laboratory&date=ge2019-01-01",
        resource_type: "Observation",
        params: |patient| {
            pairs(&[
                ("patient", &patient.id),
                ("category", "laboratory"),
                ("date", "ge2019-01-01"),
            ])
        },
    },
    Kind {
        name: "Condition?patient=P",
        resource_type: "Condition",
        params: |patient| pairs(&[("patient", &patient.id)]),
    },
    Kind {
        name: "Patient?name=FAMILY&birthdate=DATE",
        resource_type: "Patient",
        params: |patient| {
            pairs(&[
                ("name", &patient.family),
                ("birthdate", &patient.birth_date),
            ])
        },
    },
    Kind {
        name: "MedicationRequest?patient=P&intent=order",
        resource_type: "MedicationRequest",
        params: |patient| pairs(&[("patient", &patient.id), ("intent", "order")]),
    },
    Kind {
        name: "Patient?_id=P&_revinclude=Encounter:patient",
        resource_type: "Patient",
        params: |patient| pairs(&[("_id", &patient.id), ("_revinclude", "Encounter:patient")]),
    },
];

/// The figures of one kind of search.
pub struct KindRow {
    name: &'static str,
    summary: Summary,
    /// With `plan_cache_mode = force_custom_plan` (measured for the mix only).
    custom: Option<Summary>,
    /// Bundle entries (matches and included resources) per response, on average.
    entries: f64,
}

pub struct Report {
    /// `None`: a database reused from an earlier run.
    import_per_second: Option<f64>,
    patients: usize,
    database: String,
    rows: Vec<KindRow>,
}

pub async fn run(args: &BenchArgs, database: &BenchDatabase) -> BenchResult<Report> {
    eprintln!(
        "bench: writing {} resources cloned from the bundled Synthea sample, dates shifted",
        args.resources
    );
    let count = args.resources;
    let dataset = tokio::task::spawn_blocking(move || dataset::build(count, true)).await??;
    if dataset.patients.is_empty() {
        return Err("the data set has no Patient: give a larger --resources".into());
    }
    // First the bundled sample alone, right after loading, as `serve --load-sample-data`.
    let fresh_store = Store::Postgres(pool(&database.options, POOL_CONNECTIONS).await?);
    fresh_store.migrate().await?;
    if !database.reused {
        eprintln!("bench: PostgreSQL: loading the bundled sample");
        search_skew::load_sample(&fresh_store).await?;
    }
    let sample_patient: Arc<[PatientKey]> = vec![PatientKey {
        id: "85".into(),
        family: String::new(),
        birth_date: String::new(),
    }]
    .into();
    let fresh = measure(args, fresh_store, &sample_patient, &FRESH_KINDS, "").await?;

    let store = Store::Postgres(pool(&database.options, POOL_CONNECTIONS).await?);
    // One Patient of the clones with a record grown to `GROWN` Observations.
    let grown_patient: Arc<[PatientKey]> = vec![dataset.patients[0].clone()].into();
    let import_per_second = if database.reused {
        None
    } else {
        let per_second = super::import("PostgreSQL", &store, args, &dataset).await?;
        eprintln!(
            "bench: PostgreSQL: {GROWN} Observations of Patient {}",
            grown_patient[0].id
        );
        search_skew::grow(&store, &grown_patient[0]).await?;
        eprintln!("bench: PostgreSQL: VACUUM ANALYZE");
        let started = Instant::now();
        let mut connection = PgConnection::connect_with(&database.options).await?;
        sqlx::query("VACUUM ANALYZE")
            .execute(&mut connection)
            .await?;
        connection.close().await?;
        eprintln!(
            "bench: PostgreSQL: VACUUM ANALYZE took {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Some(per_second)
    };

    let patients: Arc<[PatientKey]> = dataset.patients.into();
    let summaries = measure(args, store, &patients, &KINDS, "").await?;
    let custom_options = with_custom_plans(&database.options);
    let custom_store = Store::Postgres(pool(&custom_options, POOL_CONNECTIONS).await?);
    let custom = measure(
        args,
        custom_store,
        &patients,
        &KINDS,
        ", custom plans forced",
    )
    .await?;
    let grown_store = Store::Postgres(pool(&database.options, POOL_CONNECTIONS).await?);
    let grown = measure(args, grown_store, &grown_patient, &GROWN_KINDS, "").await?;
    let mut rows: Vec<KindRow> = KINDS
        .iter()
        .zip(summaries.into_iter().zip(custom))
        .map(|(kind, ((summary, entries), (custom, _)))| KindRow {
            name: kind.name,
            summary,
            custom: Some(custom),
            entries,
        })
        .collect();
    for (kinds, figures) in [(&FRESH_KINDS[..], fresh), (&GROWN_KINDS[..], grown)] {
        rows.extend(
            kinds
                .iter()
                .zip(figures)
                .map(|(kind, (summary, entries))| KindRow {
                    name: kind.name,
                    summary,
                    custom: None,
                    entries,
                }),
        );
    }
    // A Patient of the last copy, the one with the most shifted dates.
    let patient = &patients[patients.len() - 1];
    let generic = database
        .options
        .clone()
        .options([("plan_cache_mode", "force_generic_plan")]);
    // Loading auto_explain this way needs a superuser: without one, the figures still count.
    for options in [&custom_options, &generic] {
        if let Err(error) = explain(options, patient).await {
            eprintln!("bench: PostgreSQL: no auto_explain plans: {error}");
            break;
        }
    }
    Ok(Report {
        import_per_second,
        patients: patients.len(),
        database: database.name.clone(),
        rows,
    })
}

async fn pool(options: &PgConnectOptions, connections: u32) -> BenchResult<sqlx::PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options.clone())
        .await?)
}

fn with_custom_plans(options: &PgConnectOptions) -> PgConnectOptions {
    options
        .clone()
        .options([("plan_cache_mode", "force_custom_plan")])
}

/// Each kind of search for `--seconds` through the server on `store`: its figures and the
/// entries per Bundle.
async fn measure(
    args: &BenchArgs,
    store: Store,
    patients: &Arc<[PatientKey]>,
    kinds: &[Kind],
    what: &str,
) -> BenchResult<Vec<(Summary, f64)>> {
    let server = Server::start(store.clone()).await?;
    let client = super::client(1)?;
    let mut rows = Vec::new();
    for kind in kinds {
        eprintln!(
            "bench: PostgreSQL: {}{what}, 1 client for {} s",
            kind.name, args.seconds
        );
        let counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let operation = {
            let client = client.clone();
            let patients = patients.clone();
            let counts = counts.clone();
            let url = format!("{}/fhir/{}", server.base, kind.resource_type);
            let params = kind.params;
            move |random: u64| {
                let patient = &patients[random as usize % patients.len()];
                let request = client.get(format!("{url}?{}", encode(&params(patient))));
                let counts = counts.clone();
                async move {
                    let entries = bundle_entries(request).await?;
                    counts.0.fetch_add(1, Ordering::Relaxed);
                    counts.1.fetch_add(entries, Ordering::Relaxed);
                    Ok(())
                }
            }
        };
        load::run(1, WARM_UP, operation.clone()).await?;
        counts.0.store(0, Ordering::Relaxed);
        counts.1.store(0, Ordering::Relaxed);
        let summary = load::run(1, Duration::from_secs(args.seconds), operation).await?;
        let requests = counts.0.load(Ordering::Relaxed).max(1);
        let entries = counts.1.load(Ordering::Relaxed) as f64 / requests as f64;
        rows.push((summary, entries));
    }
    drop(client);
    server.stop().await?;
    store.close().await;
    Ok(rows)
}

/// Runs each kind once on connections of `options` with `auto_explain` loaded: its
/// `EXPLAIN ANALYZE` of every statement goes to the PostgreSQL server log.
async fn explain(options: &PgConnectOptions, patient: &PatientKey) -> BenchResult<()> {
    let options = options.clone().options([
        ("session_preload_libraries", "auto_explain"),
        ("auto_explain.log_min_duration", "0"),
        ("auto_explain.log_analyze", "on"),
        ("auto_explain.log_buffers", "on"),
    ]);
    let store = Store::Postgres(pool(&options, 1).await?);
    for kind in &KINDS {
        let params = (kind.params)(patient);
        searchset(
            &store,
            &SearchRequest {
                resource_type: Some(kind.resource_type),
                params: &params,
                patient_compartment: None,
                strict: true,
                limits: PageLimits {
                    default: 50,
                    max: 1000,
                },
                base: "http://127.0.0.1/fhir",
                access: &crate::access::reach::Access::Full,
                link: None,
            },
        )
        .await
        .map_err(|error| format!("{}: {error:?}", kind.name))?;
    }
    store.close().await;
    Ok(())
}

fn encode(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// Sends the search, which must answer 200 with a Bundle; returns its number of entries.
async fn bundle_entries(request: reqwest::RequestBuilder) -> BenchResult<u64> {
    let response = request.send().await?;
    let status = response.status();
    let url = response.url().to_string();
    let body = response.bytes().await?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("GET {url} answered {status}").into());
    }
    let bundle: Value = serde_json::from_slice(&body)?;
    if bundle["resourceType"] != "Bundle" {
        return Err(format!("GET {url} answered no Bundle").into());
    }
    Ok(bundle["entry"]
        .as_array()
        .map_or(0, |entries| entries.len()) as u64)
}

pub fn print(args: &BenchArgs, report: &Report) {
    println!(
        "kiln {} bench --search: {} resources ({} Patients) on PostgreSQL, 1 client, {} s per search",
        env!("CARGO_PKG_VERSION"),
        args.resources,
        report.patients,
        args.seconds
    );
    println!("{}", super::report::machine_line());
    match report.import_per_second {
        Some(per_second) => println!("import: {per_second:.0} resources/s"),
        None => println!("import: none, database {} reused", report.database),
    }
    println!();
    println!(
        "| Search | req/s | p50 / p95 / p99 (ms) | custom plans forced: req/s | p50 / p95 / p99 (ms) \
         | entries per Bundle |"
    );
    println!("|---|--:|--:|--:|--:|--:|");
    for row in &report.rows {
        let custom = row.custom.as_ref().map_or("– | –".to_string(), |custom| {
            format!(
                "{:.0} | {} / {} / {}",
                custom.per_second,
                ms(custom.p50),
                ms(custom.p95),
                ms(custom.p99)
            )
        });
        println!(
            "| `{}` | {:.0} | {} / {} / {} | {custom} | {:.1} |",
            row.name,
            row.summary.per_second,
            ms(row.summary.p50),
            ms(row.summary.p95),
            ms(row.summary.p99),
            row.entries
        );
    }
    println!();
    println!(
        "EXPLAIN ANALYZE of one search of each kind (auto_explain), custom plans forced then \
         generic plans forced: the PostgreSQL server log, lines of database {}",
        report.database
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_encode_their_values() {
        let patient = PatientKey {
            id: "p-1".into(),
            family: "Müller".into(),
            birth_date: "1970-01-02".into(),
        };
        assert_eq!(
            encode(&(KINDS[2].params)(&patient)),
            "name=M%C3%BCller&birthdate=1970-01-02"
        );
        assert_eq!(
            encode(&(KINDS[0].params)(&patient)),
            "patient=p-1&category=laboratory&date=ge2019-01-01"
        );
    }
}
