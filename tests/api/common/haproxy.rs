//! HAProxy (the Debian package) on loopback in front of `kiln serve` replicas: round robin
//! per request, health checks on `/readyz`, a stats page to see which replicas are up, and
//! its request log (which replica answered each request), stopped when dropped.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use super::{Server, free_port};

static HAPROXY_SKIP_NOTICE: Once = Once::new();

/// One request as HAProxy logged it.
#[derive(Debug, Clone)]
pub struct Served {
    /// The replica's name in the configuration (`kiln0`, `kiln1`…), or `<NOSRV>`.
    pub server: String,
    pub status: u16,
    pub method: String,
    pub path: String,
    /// Times HAProxy tried again (on another replica after `option redispatch`).
    pub retries: String,
}

pub struct Balancer {
    /// `http://127.0.0.1:<port>`: what clients and the replicas' `--base-url` use.
    pub base: String,
    port: u16,
    stats: String,
    child: Option<Child>,
    log_path: PathBuf,
    dir: tempfile::TempDir,
}

impl Balancer {
    /// A balancer to be started on a free port, or `None` (after a banner) when HAProxy is
    /// not installed, unless `KILN_REQUIRE_HAPROXY=1`.
    pub fn plan() -> Option<Balancer> {
        let installed = Command::new(binary())
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            if std::env::var("KILN_REQUIRE_HAPROXY").is_ok_and(|v| v == "1") {
                panic!(
                    "KILN_REQUIRE_HAPROXY=1 but haproxy is not installed (apt-get install haproxy)"
                );
            }
            HAPROXY_SKIP_NOTICE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "\n*** Scale-out tests SKIPPED: apt-get install haproxy to run them ***\n"
                );
            });
            return None;
        }
        let port = free_port();
        let dir = tempfile::tempdir().expect("haproxy dir");
        Some(Balancer {
            base: format!("http://127.0.0.1:{port}"),
            port,
            stats: format!("http://127.0.0.1:{}/stats;csv", free_port()),
            child: None,
            log_path: dir.path().join("haproxy.log"),
            dir,
        })
    }

    /// Starts HAProxy in front of `replicas` (`kiln0`, `kiln1`… in this order) and waits
    /// until its health checks see every one up.
    pub async fn start(&mut self, replicas: &[&Server]) {
        let servers: String = replicas
            .iter()
            .enumerate()
            .map(|(index, replica)| {
                format!(
                    "    server kiln{index} 127.0.0.1:{} check\n",
                    replica.port()
                )
            })
            .collect();
        let stats_port = self
            .stats
            .trim_start_matches("http://127.0.0.1:")
            .trim_end_matches("/stats;csv");
        // Round robin per request: `http-server-close` opens a new connection to a replica
        // for each request, so consecutive requests go to different replicas. A replica is
        // out after one failed check and back after one good one (fast, for the test).
        // A request whose connection a replica refused (it stopped listening) is sent to
        // another; one it answered is never sent twice.
        let config = format!(
            "global
    log stdout format raw local0
    maxconn 512

defaults
    mode http
    log global
    log-format \"%s %ST %HM %HP %rc\"
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response

frontend kiln_front
    bind 127.0.0.1:{port}
    default_backend kiln

backend kiln
    balance roundrobin
    option http-server-close
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 200ms fastinter 100ms downinter 200ms fall 1 rise 1
{servers}
listen stats
    bind 127.0.0.1:{stats_port}
    no log
    stats enable
    stats uri /stats
",
            port = self.port,
        );
        let config_path = self.dir.path().join("haproxy.cfg");
        std::fs::write(&config_path, config).expect("write haproxy.cfg");
        let log = std::fs::File::create(&self.log_path).expect("haproxy log");
        let errors = log.try_clone().expect("haproxy log");
        let child = Command::new(binary())
            .arg("-db")
            .arg("-f")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(errors)
            .spawn()
            .expect("spawn haproxy");
        self.child = Some(child);
        self.wait_up(replicas.len()).await;
    }

    /// Waits until exactly `count` replicas are up.
    pub async fn wait_up(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.up().await.len() == count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "HAProxy does not see {count} replicas up: {:?}\n{}",
                self.up().await,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The replicas HAProxy's health checks see up now.
    pub async fn up(&self) -> Vec<String> {
        let Ok(response) = reqwest::get(&self.stats).await else {
            return Vec::new();
        };
        let text = response.text().await.unwrap_or_default();
        let mut lines = text.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let column = |name: &str| header.iter().position(|c| *c == name);
        let (Some(proxy), Some(server), Some(status)) =
            (column("pxname"), column("svname"), column("status"))
        else {
            return Vec::new();
        };
        lines
            .map(|line| line.split(',').collect::<Vec<_>>())
            .filter(|fields| {
                fields.get(proxy) == Some(&"kiln")
                    && fields.get(server).is_some_and(|s| s.starts_with("kiln"))
                    && fields.get(status).is_some_and(|s| s.starts_with("UP"))
            })
            .map(|fields| fields[server].to_string())
            .collect()
    }

    /// Every request logged so far, in order.
    pub fn served(&self) -> Vec<Served> {
        self.log()
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let [server, status, method, path, retries] = fields[..] else {
                    return None;
                };
                Some(Served {
                    server: server.to_string(),
                    status: status.parse().ok()?,
                    method: method.to_string(),
                    path: path.to_string(),
                    retries: retries.to_string(),
                })
            })
            .collect()
    }

    /// The requests with this method and a path starting with `prefix`, once there are at
    /// least `count`: HAProxy writes a request's line just after answering it, so this waits
    /// for the lines.
    pub async fn wait_count(&self, method: &str, prefix: &str, count: usize) -> Vec<Served> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found: Vec<Served> = self
                .served()
                .into_iter()
                .filter(|served| served.method == method && served.path.starts_with(prefix))
                .collect();
            if found.len() >= count {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "fewer than {count} {method} {prefix} in the log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

fn binary() -> &'static str {
    if std::path::Path::new("/usr/sbin/haproxy").exists() {
        "/usr/sbin/haproxy"
    } else {
        "haproxy"
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
