//! `kiln bench --hostile`: `GET Patient/[id]` latency alone, then while `--concurrency`
//! hostile clients keep costly searches in flight, on the `kiln serve` defaults (a pool of
//! 16 connections, search statements limited as `serve` limits them).
//!
//! The hostile mix: searches at the cost bounds (ten `_has` joins of 50 values each, five
//! 100-value OR lists over every Observation with an exact total and a sort), and searches
//! over them (300 `_has`, 497 `_id` values) that must be refused with a 400. Every hostile
//! answer during the loaded measurement (and within 5 s after it) is counted by status;
//! anything but 200, 400 and 503 fails the run.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::load::{self, Summary};
use super::report::ms;
use super::{
    BenchArgs, BenchDatabase, BenchResult, POOL_CONNECTIONS, Server, client, dataset, get, import,
    on_each_backend,
};
use crate::store::{SearchLimits, Store, set_search_limits};

/// Clients reading `Patient/[id]`, in both measurements.
const READERS: usize = 4;

/// How long the hostile searches in flight at the end of the measurement may still finish.
const DRAIN: Duration = Duration::from_secs(5);

/// What one backend measured.
pub struct Row {
    backend: &'static str,
    alone: Summary,
    under_load: Summary,
    /// Hostile answers by HTTP status, during the loaded measurement.
    hostile: BTreeMap<u16, u64>,
    hostile_latency: Duration,
}

pub async fn run(args: &BenchArgs, postgres: Option<&BenchDatabase>) -> BenchResult<Vec<Row>> {
    // As `kiln serve` sets them with its defaults.
    set_search_limits(SearchLimits {
        timeout: Duration::from_secs(120),
        slots: (POOL_CONNECTIONS / 2) as usize,
    });
    on_each_backend(args, postgres, measure).await
}

async fn measure(
    backend: &'static str,
    store: Store,
    args: &BenchArgs,
    dataset: &dataset::Dataset,
) -> BenchResult<Row> {
    if dataset.patients.is_empty() {
        return Err("the data set has no Patient: give a larger --resources".into());
    }
    import(backend, &store, args, dataset).await?;
    let server = Server::start(store.clone()).await?;
    let base = format!("{}/fhir", server.base);
    let client = client(READERS + args.concurrency)?;
    let reads: Arc<[String]> = dataset
        .patients
        .iter()
        .map(|patient| format!("{base}/Patient/{}", patient.id))
        .collect();
    let read = {
        let client = client.clone();
        move |random: u64| {
            get(
                client.clone(),
                reads[random as usize % reads.len()].clone(),
                None,
            )
        }
    };
    let seconds = Duration::from_secs(args.seconds);
    eprintln!("bench: {backend}: GET Patient/[id] alone, {READERS} clients");
    load::run(READERS, super::WARM_UP, read.clone()).await?;
    let alone = load::run(READERS, seconds, read.clone()).await?;

    eprintln!(
        "bench: {backend}: GET Patient/[id] with {} hostile searches in flight",
        args.concurrency
    );
    let searches: Arc<[String]> = hostile_searches(&base, dataset).into();
    let answers: Arc<Mutex<Vec<(u16, Duration)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut hostile = JoinSet::new();
    for task in 0..args.concurrency {
        let client = client.clone();
        let searches = searches.clone();
        let answers = answers.clone();
        let stop = stop.clone();
        hostile.spawn(async move {
            for next in task.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let url = &searches[next % searches.len()];
                let started = Instant::now();
                let response = client.get(url).send().await?;
                let status = response.status().as_u16();
                response.bytes().await?;
                if !matches!(status, 200 | 400 | 503) {
                    return Err(format!("a hostile search answered {status}: {url:.120}").into());
                }
                lock(&answers).push((status, started.elapsed()));
            }
            BenchResult::Ok(())
        });
    }
    // The hostile load fills the search slots before the measurement.
    tokio::time::sleep(super::WARM_UP).await;
    lock(&answers).clear();
    let under_load = load::run(READERS, seconds, read).await?;
    // The searches that end soon after are counted too; the others are left in flight.
    stop.store(true, Ordering::Relaxed);
    let drained = tokio::time::timeout(DRAIN, async {
        while let Some(finished) = hostile.join_next().await {
            finished??;
        }
        BenchResult::Ok(())
    })
    .await;
    if let Ok(drained) = drained {
        drained?;
    }
    hostile.abort_all();
    let answers = std::mem::take(&mut *lock(&answers));
    drop(client);
    server.stop().await?;
    store.close().await;

    let mut by_status = BTreeMap::new();
    let mut latencies: Vec<Duration> = Vec::new();
    for (status, latency) in answers {
        *by_status.entry(status).or_insert(0) += 1;
        latencies.push(latency);
    }
    latencies.sort_unstable();
    let hostile_latency = latencies
        .get(latencies.len() / 2)
        .copied()
        .unwrap_or_default();
    Ok(Row {
        backend,
        alone,
        under_load,
        hostile: by_status,
        hostile_latency,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The hostile searches, on the data set's Patients.
fn hostile_searches(base: &str, dataset: &dataset::Dataset) -> Vec<String> {
    let codes: Vec<String> = (0..49)
        .map(|i| format!("{}-{}", 1000 + i, i % 10))
        .collect();
    let has = |n: usize, values: &str| {
        (0..n)
            .map(|_| format!("_has:Observation:patient:code={values}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let at_bound_has = has(10, &format!("{},8302-2", codes.join(",")));
    let values: Vec<String> = (0..100).map(|i| format!("ne{i}")).collect();
    let scan = (0..5)
        .map(|_| format!("value-quantity={}", values.join(",")))
        .collect::<Vec<_>>()
        .join("&");
    let ids: Vec<&str> = dataset
        .patients
        .iter()
        .map(|patient| patient.id.as_str())
        .cycle()
        .take(497)
        .collect();
    vec![
        format!("{base}/Patient?{at_bound_has}&_total=accurate"),
        format!("{base}/Observation?{scan}&_total=accurate&_sort=-value-quantity"),
        format!("{base}/Patient?{}", has(300, "8302-2")),
        format!("{base}/Patient?_id={}", ids.join(",")),
    ]
}

pub fn print(args: &BenchArgs, rows: &[Row]) {
    println!(
        "kiln {} bench --hostile: {} resources, pool of {POOL_CONNECTIONS}, {READERS} readers, \
         {} hostile clients, {} s per measurement",
        env!("CARGO_PKG_VERSION"),
        args.resources,
        args.concurrency,
        args.seconds
    );
    println!("{}", super::report::machine_line());
    println!();
    println!(
        "| Backend | GET Patient/[id] alone: req/s | p50 / p95 (ms) | with hostile load: req/s \
         | p50 / p95 (ms) | hostile answers (status: count) | hostile p50 (ms) |"
    );
    println!("|---|--:|--:|--:|--:|---|--:|");
    for row in rows {
        let statuses: Vec<String> = row
            .hostile
            .iter()
            .map(|(status, count)| format!("{status}: {count}"))
            .collect();
        println!(
            "| {} | {:.0} | {} / {} | {:.0} | {} / {} | {} | {} |",
            row.backend,
            row.alone.per_second,
            ms(row.alone.p50),
            ms(row.alone.p95),
            row.under_load.per_second,
            ms(row.under_load.p50),
            ms(row.under_load.p95),
            statuses.join(", "),
            ms(row.hostile_latency)
        );
    }
}
