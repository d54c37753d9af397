//! `kiln bench --soak`: a mixed load on PostgreSQL for `--minutes`, with every request
//! carrying a SMART backend token, while one Patient's record grows: reads by id, searches
//! of random Patients' labs, the grown Patient's first page of labs since 2015 (and now and
//! then with `_total=accurate`), and writes of new Observations of the grown Patient. Each
//! interval prints its throughput, p50 and p99 (all kinds, and the grown Patient's searches
//! alone), the failures and the grown record's size, so whether the tail holds as the
//! record grows can be read off the lines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinSet;

use super::dataset::{self, PatientKey};
use super::report::ms;
use super::{BenchArgs, BenchDatabase, BenchResult, POOL_CONNECTIONS, Server};

/// Intervals a run is reported in.
const INTERVALS: u32 = 10;

/// What one request of the mix does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    PatientLabs,
    GrownLabs,
    GrownTotal,
    Write,
}

impl Op {
    /// Out of 100 requests: 45 reads, 20 Patient lab searches, 15 grown-Patient first
    /// pages, 2 with `_total=accurate`, 18 writes.
    fn pick(random: u64) -> Op {
        match random % 100 {
            0..45 => Op::Read,
            45..65 => Op::PatientLabs,
            65..80 => Op::GrownLabs,
            80..82 => Op::GrownTotal,
            _ => Op::Write,
        }
    }

    fn grown(self) -> bool {
        matches!(self, Op::GrownLabs | Op::GrownTotal)
    }
}

/// One interval's figures.
pub struct Interval {
    end: Duration,
    requests: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
    grown_p50: Option<Duration>,
    grown_p99: Option<Duration>,
    failures: u64,
    /// Observations of the grown Patient at the interval's end.
    grown_record: u64,
    rss_mib: Option<u64>,
}

pub struct Report {
    resources: usize,
    intervals: Vec<Interval>,
}

/// A finished request: its kind, its latency, and whether it answered as expected.
type Done = (Op, Duration, bool);

pub async fn run(args: &BenchArgs, database: &BenchDatabase) -> BenchResult<Report> {
    eprintln!(
        "bench: writing {} resources cloned from the bundled Synthea sample, dates shifted",
        args.resources
    );
    let count = args.resources;
    let dataset = tokio::task::spawn_blocking(move || dataset::build(count, true)).await??;
    let Some(grown) = dataset.patients.first().cloned() else {
        return Err("the data set has no Patient: give a larger --resources".into());
    };
    let store = database.store(POOL_CONNECTIONS).await?;
    super::import("PostgreSQL", &store, args, &dataset).await?;
    store.analyze().await?;
    let token: Arc<str> = super::scoped_token(&store, "system/*.cruds").await?.into();
    let server = Server::start(store.clone()).await?;
    let client = super::client(args.concurrency)?;
    let base: Arc<str> = format!("{}/fhir", server.base).into();
    let urls: Arc<[String]> = dataset
        .keys
        .iter()
        .map(|(resource_type, id)| format!("{base}/{resource_type}/{id}"))
        .collect();
    let patients: Arc<[PatientKey]> = dataset.patients.clone().into();
    let grown_record = Arc::new(AtomicU64::new(
        observations(&client, &base, &token, &grown.id).await?,
    ));
    let failures = Arc::new(AtomicU64::new(0));
    let done: Arc<Mutex<Vec<Done>>> = Arc::default();
    let total = Duration::from_secs(args.minutes * 60);
    let started = Instant::now();
    let deadline = started + total;
    eprintln!(
        "bench: PostgreSQL: soak, {} clients for {} min, Patient {} growing",
        args.concurrency, args.minutes, grown.id
    );
    let mut tasks = JoinSet::new();
    for task in 0..args.concurrency {
        let context = Context {
            client: client.clone(),
            base: base.clone(),
            token: token.clone(),
            urls: urls.clone(),
            patients: patients.clone(),
            grown: grown.id.clone(),
            grown_record: grown_record.clone(),
            failures: failures.clone(),
        };
        let done = done.clone();
        tasks.spawn(async move {
            let mut random = task as u64;
            while Instant::now() < deadline {
                random = mix(random);
                let op = Op::pick(random);
                let begun = Instant::now();
                let ok = context.request(op, random >> 8).await;
                let elapsed = begun.elapsed();
                done.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((op, elapsed, ok));
            }
        });
    }
    let mut intervals = Vec::new();
    let step = total / INTERVALS;
    for index in 1..=INTERVALS {
        tokio::time::sleep_until((started + step * index).into()).await;
        let batch = std::mem::take(&mut *done.lock().unwrap_or_else(|e| e.into_inner()));
        let interval = summarize(
            &batch,
            started.elapsed(),
            step,
            failures.swap(0, Ordering::Relaxed),
            grown_record.load(Ordering::Relaxed),
        );
        eprintln!("bench: {}", line(&interval));
        intervals.push(interval);
    }
    while tasks.join_next().await.is_some() {}
    drop(client);
    server.stop().await?;
    store.close().await;
    Ok(Report {
        resources: args.resources,
        intervals,
    })
}

/// What the clients share.
struct Context {
    client: reqwest::Client,
    base: Arc<str>,
    token: Arc<str>,
    urls: Arc<[String]>,
    patients: Arc<[PatientKey]>,
    grown: String,
    grown_record: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
}

impl Context {
    /// Sends one request of `op`; a failure (transport error, or a status other than the
    /// expected one) is counted in the interval's figures and the load goes on.
    async fn request(&self, op: Op, random: u64) -> bool {
        let base = &self.base;
        let grown_labs = format!(
            "{base}/Observation?patient={}&category=laboratory&date=ge2015-01-01",
            self.grown
        );
        let (request, expected) = match op {
            Op::Read => (
                self.client
                    .get(&self.urls[random as usize % self.urls.len()]),
                reqwest::StatusCode::OK,
            ),
            Op::PatientLabs => {
                let patient = &self.patients[random as usize % self.patients.len()];
                (
                    self.client.get(format!(
                        "{base}/Observation?patient={}&category=laboratory",
                        patient.id
                    )),
                    reqwest::StatusCode::OK,
                )
            }
            Op::GrownLabs => (self.client.get(grown_labs), reqwest::StatusCode::OK),
            Op::GrownTotal => (
                self.client.get(format!("{grown_labs}&_total=accurate")),
                reqwest::StatusCode::OK,
            ),
            Op::Write => (
                self.client
                    .post(format!("{base}/Observation"))
                    .header("content-type", "application/fhir+json")
                    .body(grown_observation(&self.grown, random).to_string()),
                reqwest::StatusCode::CREATED,
            ),
        };
        let answered = request.bearer_auth(&*self.token).send().await;
        let ok = match answered {
            Ok(response) => {
                let status = response.status();
                response.bytes().await.is_ok() && status == expected
            }
            Err(_) => false,
        };
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        } else if op == Op::Write {
            self.grown_record.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }
}

/// A laboratory Observation (one in ten a vital sign) of `patient`, dated within the last
/// ten years.
fn grown_observation(patient: &str, random: u64) -> serde_json::Value {
    let category = if random.is_multiple_of(10) {
        "vital-signs"
    } else {
        "laboratory"
    };
    let day = 16_436 + random % 3_650; // days since 1970: 2015-01-01 on
    let date = time::Date::from_julian_day(2_440_588 + day as i32)
        .map_or_else(|_| "2020-01-01".to_string(), |date| date.to_string());
    json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": category
        }]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": format!("{}-{}", 1000 + random % 300, random % 10)}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": date,
        "valueQuantity": {"value": random % 200, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}
    })
}

/// The grown Patient's Observations before the load (`_summary=count`).
async fn observations(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    patient: &str,
) -> BenchResult<u64> {
    let bundle: serde_json::Value = client
        .get(format!(
            "{base}/Observation?patient={patient}&_summary=count"
        ))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(bundle["total"].as_u64().unwrap_or(0))
}

fn summarize(
    batch: &[Done],
    end: Duration,
    length: Duration,
    failures: u64,
    grown_record: u64,
) -> Interval {
    let mut all: Vec<Duration> = batch.iter().map(|(_, latency, _)| *latency).collect();
    let mut grown: Vec<Duration> = batch
        .iter()
        .filter(|(op, _, _)| op.grown())
        .map(|(_, latency, _)| *latency)
        .collect();
    all.sort_unstable();
    grown.sort_unstable();
    Interval {
        end,
        requests: batch.len(),
        per_second: batch.len() as f64 / length.as_secs_f64(),
        p50: percentile(&all, 50).unwrap_or_default(),
        p99: percentile(&all, 99).unwrap_or_default(),
        grown_p50: percentile(&grown, 50),
        grown_p99: percentile(&grown, 99),
        failures,
        grown_record,
        rss_mib: super::rss::read().map(|memory| memory.rss_kib / 1024),
    }
}

/// Nearest-rank percentile of sorted `latencies`; `None` when there are none.
fn percentile(latencies: &[Duration], percent: usize) -> Option<Duration> {
    let rank = (latencies.len() * percent).div_ceil(100).max(1);
    latencies.get(rank - 1).copied()
}

/// SplitMix64's step, as in `load`: a fresh well-spread number from the last.
fn mix(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn line(interval: &Interval) -> String {
    let optional = |value: Option<Duration>| value.map_or("–".to_string(), ms);
    format!(
        "| {:.0} | {} | {:.0} | {} / {} | {} / {} | {} | {} | {} |",
        interval.end.as_secs_f64(),
        interval.requests,
        interval.per_second,
        ms(interval.p50),
        ms(interval.p99),
        optional(interval.grown_p50),
        optional(interval.grown_p99),
        interval.failures,
        interval.grown_record,
        interval
            .rss_mib
            .map_or("–".to_string(), |mib| mib.to_string()),
    )
}

pub fn print(args: &BenchArgs, report: &Report) {
    println!(
        "kiln {} bench --soak: {} resources on PostgreSQL, {} clients with a SMART token, {} min",
        env!("CARGO_PKG_VERSION"),
        report.resources,
        args.concurrency,
        args.minutes
    );
    println!("{}", super::report::machine_line());
    println!(
        "mix: 45 % read by id, 20 % Observation?patient=P&category=laboratory, 15 % the grown \
         Patient's labs since 2015 (first page), 2 % the same with _total=accurate, 18 % POST \
         Observation of the grown Patient"
    );
    println!();
    println!(
        "| s | requests | req/s | p50 / p99 (ms) | grown Patient's searches p50 / p99 (ms) \
         | failures | grown record | RSS (MiB) |"
    );
    println!("|--:|--:|--:|--:|--:|--:|--:|--:|");
    for interval in &report.intervals {
        println!("{}", line(interval));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_and_the_written_dates() {
        let picked: Vec<Op> = (0..100).map(Op::pick).collect();
        let share = |op: Op| picked.iter().filter(|picked| **picked == op).count();
        assert_eq!(
            [
                Op::Read,
                Op::PatientLabs,
                Op::GrownLabs,
                Op::GrownTotal,
                Op::Write
            ]
            .map(share),
            [45, 20, 15, 2, 18]
        );
        assert_eq!(grown_observation("g", 0)["effectiveDateTime"], "2015-01-01");
        assert_eq!(
            percentile(&[Duration::from_millis(3)], 99),
            Some(Duration::from_millis(3))
        );
        assert_eq!(percentile(&[], 50), None);
    }
}
