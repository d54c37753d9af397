//! The CPU time this process has used (Linux `/proc/self/stat`): user and system time of
//! all its threads, so the server, the load's clients and the audit log's loader together.

use std::time::Duration;

/// Clock ticks per second of `/proc/self/stat`'s times (`USER_HZ`, fixed at 100 in Linux's
/// interface whatever the kernel's own tick rate).
const TICKS_PER_SECOND: u64 = 100;

/// User plus system time so far; `None` where `/proc/self/stat` does not exist.
pub fn used() -> Option<Duration> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// Fields 14 and 15 (`utime`, `stime`). The second field, the command name, is in
/// parentheses and may hold spaces and parentheses itself: the fields are counted from the
/// last `)`.
fn parse_stat(stat: &str) -> Option<Duration> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_ascii_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis(
        (user + system) * 1000 / TICKS_PER_SECOND,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_system_ticks() {
        let stat = "4242 (kiln (bench) x) R 1 4242 4242 0 -1 4194560 900 0 0 0 250 75 0 0 20 0 9 0";
        assert_eq!(parse_stat(stat), Some(Duration::from_millis(3250)));
        assert_eq!(parse_stat("4242 (kiln) R 1"), None);
    }

    #[test]
    fn it_grows_with_work() {
        let before = used().expect("Linux has /proc/self/stat");
        let started = std::time::Instant::now();
        let mut spent = 0u64;
        while used().unwrap() < before + Duration::from_millis(20) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no CPU time counted"
            );
            for number in 0..1_000_000u64 {
                spent = spent.wrapping_add(std::hint::black_box(number).rotate_left(7));
            }
        }
        std::hint::black_box(spent);
    }
}
