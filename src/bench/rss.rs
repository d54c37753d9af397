//! The resident memory of this process (Linux `/proc/self`): the current size, the peak
//! since a reset, and samples taken at a fixed interval.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::BenchResult;

/// Resident set sizes in KiB, as `/proc/self/status` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the most resident since the process started or the mark was last reset.
    pub peak_kib: u64,
}

/// This process's memory now; `None` where `/proc/self/status` does not exist.
pub fn read() -> Option<Memory> {
    parse_status(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// Lowers the peak mark (`VmHWM`) to the current size: "5" to `clear_refs` (Linux 4.0+).
pub fn reset_peak() -> BenchResult<()> {
    std::fs::write("/proc/self/clear_refs", "5")
        .map_err(|error| format!("cannot reset the peak RSS mark: {error}"))?;
    Ok(())
}

fn parse_status(status: &str) -> Option<Memory> {
    let kib = |name: &str| -> Option<u64> {
        let line = status.lines().find_map(|line| line.strip_prefix(name))?;
        line.trim().strip_suffix("kB")?.trim().parse().ok()
    };
    Some(Memory {
        rss_kib: kib("VmRSS:")?,
        peak_kib: kib("VmHWM:")?,
    })
}

/// `VmRSS` every `interval` from its start until stopped, in the background.
pub struct Sampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Vec<Sample>>,
}

/// One sample: when, since the sampler started, and the resident size then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub at: Duration,
    pub rss_kib: u64,
}

impl Sampler {
    pub fn start(interval: Duration) -> Sampler {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut samples = Vec::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticks.tick() => {
                        if let Some(memory) = read() {
                            samples.push(Sample { at: started.elapsed(), rss_kib: memory.rss_kib });
                        }
                    }
                }
            }
            samples
        });
        Sampler { stop, task }
    }

    /// The samples, in time order.
    pub async fn stop(self) -> BenchResult<Vec<Sample>> {
        let _ = self.stop.send(());
        Ok(self.task.await?)
    }
}

/// The size at `percent` % of `total`: the last sample taken by then (the first one when
/// none was taken that early).
pub fn at_percent(samples: &[Sample], total: Duration, percent: u32) -> Option<u64> {
    let by = total.mul_f64(f64::from(percent) / 100.0);
    samples
        .iter()
        .take_while(|sample| sample.at <= by)
        .last()
        .or(samples.first())
        .map(|sample| sample.rss_kib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_resident_sizes_of_proc_status() {
        let status = "Name:\tkiln\nVmPeak:\t 2000000 kB\nVmHWM:\t   81234 kB\n\
                      VmRSS:\t   70000 kB\nThreads:\t5\n";
        assert_eq!(
            parse_status(status),
            Some(Memory {
                rss_kib: 70000,
                peak_kib: 81234
            })
        );
        assert_eq!(parse_status("Name:\tkiln\nVmRSS:\t 7 kB\n"), None);
        assert_eq!(parse_status("VmRSS:\t lots kB\nVmHWM:\t 7 kB\n"), None);
    }

    #[test]
    fn this_process_has_a_resident_size_and_a_resettable_peak() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let memory = read().expect("/proc/self/status");
        assert!(memory.rss_kib > 0 && memory.peak_kib >= memory.rss_kib);
        reset_peak().unwrap();
    }

    #[test]
    fn picks_the_last_sample_by_each_share_of_the_time() {
        let samples: Vec<Sample> = (0..5)
            .map(|index| Sample {
                at: Duration::from_millis(250 * index),
                rss_kib: 100 + index,
            })
            .collect();
        let total = Duration::from_millis(1000);
        assert_eq!(at_percent(&samples, total, 25), Some(101));
        assert_eq!(at_percent(&samples, total, 50), Some(102));
        assert_eq!(at_percent(&samples, total, 60), Some(102));
        assert_eq!(at_percent(&samples, total, 100), Some(104));
        let late = [Sample {
            at: Duration::from_millis(300),
            rss_kib: 7,
        }];
        assert_eq!(at_percent(&late, total, 25), Some(7));
        assert_eq!(at_percent(&[], total, 50), None);
    }
}
