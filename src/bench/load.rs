//! Closed-loop load: concurrent tasks each run one operation after another until a deadline.

use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::BenchResult;

/// Throughput and latency of one measurement.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Operations completed in the measurement.
    pub count: usize,
    pub per_second: f64,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
}

impl Summary {
    /// The mean of several measurements of one load (rate and each percentile).
    pub fn mean(summaries: &[Summary]) -> Summary {
        let count = summaries.len().max(1) as u32;
        let mean =
            |pick: fn(&Summary) -> Duration| summaries.iter().map(pick).sum::<Duration>() / count;
        Summary {
            count: summaries.iter().map(|s| s.count).sum::<usize>() / count as usize,
            per_second: summaries.iter().map(|s| s.per_second).sum::<f64>() / f64::from(count),
            p50: mean(|s| s.p50),
            p95: mean(|s| s.p95),
            p99: mean(|s| s.p99),
        }
    }

    /// This measurement of `window` with `tail` more time to finish the work its operations
    /// left behind: the throughput counts the whole time, the latencies stay as measured.
    pub fn with_tail(self, window: Duration, tail: Duration) -> Summary {
        let whole = (window + tail).as_secs_f64();
        Summary {
            per_second: self.per_second * window.as_secs_f64() / whole,
            ..self
        }
    }
}

/// Runs `operation` in `concurrency` tasks for `duration`; each call gets a fresh random
/// number to pick its target with. The first failure stops the load and is returned.
pub async fn run<F, Fut>(
    concurrency: usize,
    duration: Duration,
    operation: F,
) -> BenchResult<Summary>
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = BenchResult<()>> + Send + 'static,
{
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = JoinSet::new();
    for task in 0..concurrency {
        let operation = operation.clone();
        tasks.spawn(async move {
            let mut random = SplitMix64(task as u64);
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let begun = Instant::now();
                operation(random.next_u64()).await?;
                latencies.push(begun.elapsed());
            }
            BenchResult::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    // Returning early drops the set, which aborts the tasks still running.
    while let Some(finished) = tasks.join_next().await {
        latencies.extend(finished??);
    }
    let elapsed = started.elapsed();
    if latencies.is_empty() {
        return Err("no operation completed in the measurement window".into());
    }
    latencies.sort_unstable();
    Ok(Summary {
        count: latencies.len(),
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 50),
        p95: percentile(&latencies, 95),
        p99: percentile(&latencies, 99),
    })
}

/// Nearest-rank percentile of sorted, non-empty `latencies`.
fn percentile(latencies: &[Duration], percent: usize) -> Duration {
    let rank = (latencies.len() * percent).div_ceil(100).max(1);
    latencies[rank - 1]
}

/// SplitMix64: tiny and well spread, enough to pick targets uniformly without a crate.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let latencies: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&latencies, 50), Duration::from_millis(50));
        assert_eq!(percentile(&latencies, 99), Duration::from_millis(99));
        assert_eq!(percentile(&latencies[..1], 99), Duration::from_millis(1));
    }

    #[tokio::test]
    async fn load_counts_and_stops_on_failure() {
        let summary = run(4, Duration::from_millis(50), |_| async { Ok(()) })
            .await
            .unwrap();
        assert!(summary.per_second > 0.0);
        let failed = run(4, Duration::from_secs(5), |_| async { Err("boom".into()) }).await;
        assert_eq!(failed.unwrap_err().to_string(), "boom");
    }
}
