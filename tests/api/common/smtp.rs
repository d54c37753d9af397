//! A real SMTP server for tests: `smtp_sink.py` (Python's `aiosmtpd`, `python3 -m pip install
//! aiosmtpd`) on a free loopback port, writing each message it receives as a JSON line;
//! stopped when dropped.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use super::free_port;

static SMTP_SKIP_NOTICE: Once = Once::new();

/// One message the sink received.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    pub from: String,
    pub subject: String,
    pub body: String,
}

pub struct SmtpSink {
    /// `smtp://127.0.0.1:<port>`, for `KILN_SMTP_URL`.
    pub url: String,
    file: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl SmtpSink {
    /// A running sink, or `None` (after a banner) when aiosmtpd is not installed, unless
    /// `KILN_REQUIRE_SMTP=1`.
    pub async fn start() -> Option<SmtpSink> {
        let installed = Command::new("python3")
            .args(["-c", "import aiosmtpd.controller"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            if std::env::var("KILN_REQUIRE_SMTP").is_ok_and(|v| v == "1") {
                panic!("KILN_REQUIRE_SMTP=1 but aiosmtpd is not installed (pip install aiosmtpd)");
            }
            SMTP_SKIP_NOTICE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "\n*** SMTP tests SKIPPED: python3 -m pip install aiosmtpd to run them ***\n"
                );
            });
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("mail.jsonl");
        let ready = dir.path().join("ready");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/common/smtp_sink.py");
        // The port is free when picked, but another test's server may take it before the
        // sink binds it: the sink then exits, and starts again on another port. A connection
        // alone would not tell: it may reach whoever took the port.
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new("python3")
                .arg(script)
                .arg(port.to_string())
                .arg(&file)
                .arg(&ready)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn the SMTP sink");
            let deadline = Instant::now() + Duration::from_secs(30);
            let started = loop {
                if ready.exists() {
                    break true;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break false;
                }
                assert!(Instant::now() < deadline, "the SMTP sink did not start");
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            if started {
                return Some(SmtpSink {
                    url: format!("smtp://127.0.0.1:{port}"),
                    file,
                    child,
                    _dir: dir,
                });
            }
        }
        panic!("the SMTP sink could not bind a port in five tries");
    }

    /// The file the sink appends each message to, as a JSON line.
    pub fn mailbox(&self) -> &std::path::Path {
        &self.file
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let text = std::fs::read_to_string(&self.file).unwrap_or_default();
        text.lines()
            .map(|line| {
                let record: serde_json::Value = serde_json::from_str(line).expect("mail record");
                let text = |name: &str| record[name].as_str().unwrap_or_default().to_string();
                Mail {
                    to: record["to"]
                        .as_array()
                        .map(|to| {
                            to.iter()
                                .filter_map(|a| a.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                    from: text("from"),
                    subject: text("subject"),
                    body: text("body"),
                }
            })
            .collect()
    }

    /// Messages to `to`, oldest first.
    pub fn messages_to(&self, to: &str) -> Vec<Mail> {
        self.messages()
            .into_iter()
            .filter(|mail| mail.to.iter().any(|a| a == to))
            .collect()
    }

    /// Waits (up to 30 s: CI runs many servers at once) for the `n`th message (1-based) to `to`.
    pub async fn wait_for(&self, to: &str, n: usize) -> Mail {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mails = self.messages_to(to);
            if mails.len() >= n {
                return mails[n - 1].clone();
            }
            assert!(
                Instant::now() < deadline,
                "no message {n} to {to}; received: {:?}",
                self.messages()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
