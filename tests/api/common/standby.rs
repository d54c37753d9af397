//! A PostgreSQL primary and a streaming standby of it, made for one test: its own clusters
//! (`initdb`, then `pg_basebackup -R` for the standby) on free loopback ports in a temporary
//! directory, stopped when dropped. The server binaries must be installed (the Debian
//! `postgresql` package); PostgreSQL refuses to run as root, so as root they run as the
//! `postgres` user.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Once;

use super::free_port;

static STANDBY_SKIP_NOTICE: Once = Once::new();

pub struct Replicated {
    /// `postgres://postgres@127.0.0.1:<port>/postgres` of the primary.
    pub primary_url: String,
    /// The same database on the standby.
    pub standby_url: String,
    bin: PathBuf,
    primary: PathBuf,
    standby: PathBuf,
    dir: tempfile::TempDir,
}

/// The newest installed PostgreSQL's server binaries.
fn binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_basebackup").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

impl Replicated {
    /// A running primary and standby, or `None` (after a banner) when PostgreSQL's server
    /// binaries are not installed, unless `KILN_REQUIRE_READ_REPLICA=1`.
    pub fn start() -> Option<Replicated> {
        let Some(bin) = binaries() else {
            if std::env::var("KILN_REQUIRE_READ_REPLICA").is_ok_and(|v| v == "1") {
                panic!(
                    "KILN_REQUIRE_READ_REPLICA=1 but no /usr/lib/postgresql/*/bin (apt-get install postgresql)"
                );
            }
            STANDBY_SKIP_NOTICE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "\n*** Read-replica tests SKIPPED: apt-get install postgresql to run them ***\n"
                );
            });
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let (primary_port, standby_port) = (free_port(), free_port());
        let replicated = Replicated {
            primary_url: format!("postgres://postgres@127.0.0.1:{primary_port}/postgres"),
            standby_url: format!("postgres://postgres@127.0.0.1:{standby_port}/postgres"),
            primary: dir.path().join("primary"),
            standby: dir.path().join("standby"),
            bin,
            dir,
        };
        if is_root() {
            replicated.run(
                "chown",
                &["postgres:postgres", &replicated.path(replicated.dir.path())],
            );
        }
        let primary = replicated.path(&replicated.primary);
        let standby = replicated.path(&replicated.standby);
        let sockets = replicated.path(replicated.dir.path());
        replicated.pg(
            "initdb",
            &[
                "-D",
                &primary,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
        );
        replicated.append(
            &replicated.primary.join("postgresql.conf"),
            &format!(
                "port = {primary_port}\nlisten_addresses = '127.0.0.1'\n\
                 unix_socket_directories = '{sockets}'\nwal_level = replica\nfsync = off\n\
                 max_wal_senders = 4\nmax_connections = 100\nshared_buffers = 32MB\n"
            ),
        );
        replicated.append(
            &replicated.primary.join("pg_hba.conf"),
            "host replication all 127.0.0.1/32 trust\n",
        );
        let primary_log = replicated.path(&replicated.dir.path().join("primary.log"));
        replicated.pg(
            "pg_ctl",
            &["-D", &primary, "-l", &primary_log, "-w", "start"],
        );
        replicated.pg(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary_port.to_string(),
                "-U",
                "postgres",
                "-D",
                &standby,
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
            ],
        );
        // The last setting wins: the copied configuration names the primary's port.
        replicated.append(
            &replicated.standby.join("postgresql.conf"),
            &format!("port = {standby_port}\nhot_standby = on\n"),
        );
        let standby_log = replicated.path(&replicated.dir.path().join("standby.log"));
        replicated.pg(
            "pg_ctl",
            &["-D", &standby, "-l", &standby_log, "-w", "start"],
        );
        Some(replicated)
    }

    fn path(&self, path: &Path) -> String {
        path.to_str().expect("utf-8 path").to_string()
    }

    /// Runs a PostgreSQL binary (as `postgres` when we are root); panics if it fails.
    fn pg(&self, program: &str, args: &[&str]) -> Output {
        let binary = self.bin.join(program);
        let binary = self.path(&binary);
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--", &binary]);
            command
        } else {
            Command::new(&binary)
        };
        let output = command
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run a PostgreSQL binary");
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn run(&self, program: &str, args: &[&str]) {
        let status = Command::new(program).args(args).status().expect(program);
        assert!(status.success(), "{program} {args:?}");
    }

    fn append(&self, file: &Path, text: &str) {
        let mut handle = std::fs::OpenOptions::new()
            .append(true)
            .open(file)
            .expect("open a PostgreSQL configuration file");
        handle.write_all(text.as_bytes()).expect("append");
    }

    /// The servers' logs, for a failing assertion.
    pub fn logs(&self) -> String {
        ["primary.log", "standby.log"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
                format!("--- {name} ---\n{text}")
            })
            .collect()
    }
}

impl Drop for Replicated {
    fn drop(&mut self) {
        for data in [&self.standby, &self.primary] {
            if data.exists() {
                let data = self.path(data);
                let binary = self.path(&self.bin.join("pg_ctl"));
                let mut command = if is_root() {
                    let mut command = Command::new("runuser");
                    command.args(["-u", "postgres", "--", &binary]);
                    command
                } else {
                    Command::new(&binary)
                };
                let _ = command
                    .args(["-D", &data, "stop", "-m", "immediate"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}
