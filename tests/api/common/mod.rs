//! Test harness: a fresh database per test and the real `kiln` binary serving it over HTTP.

pub mod audit;
pub mod backend;
pub mod console;
pub mod haproxy;
pub mod portal;
pub mod s3;
pub mod smart;
pub mod smtp;
pub mod standby;

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

pub use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test only.
pub struct TestDb {
    pub url: String,
    admin_url: Option<String>,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

static PG_SKIP_NOTICE: Once = Once::new();

impl TestDb {
    /// A fresh database, or `None` when PostgreSQL is not configured (and not required).
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/kiln.db", dir.path().display());
                Some(TestDb {
                    url,
                    admin_url: None,
                    name: String::new(),
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let Ok(admin_url) = std::env::var("KILN_TEST_DATABASE_URL") else {
                    if std::env::var("KILN_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                        panic!("KILN_REQUIRE_POSTGRES=1 but KILN_TEST_DATABASE_URL is not set");
                    }
                    PG_SKIP_NOTICE.call_once(|| {
                        // Written straight to stderr so the test harness does not capture it.
                        let _ = writeln!(
                            std::io::stderr(),
                            "\n*** PostgreSQL tests SKIPPED: set KILN_TEST_DATABASE_URL=postgres://… to run them ***\n"
                        );
                    });
                    return None;
                };
                let name = format!("kiln_test_{}", uuid::Uuid::new_v4().simple());
                let admin = sqlx::PgPool::connect(&admin_url)
                    .await
                    .expect("connect to KILN_TEST_DATABASE_URL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await
                    .expect("create test database");
                admin.close().await;
                let url = replace_database(&admin_url, &name);
                Some(TestDb {
                    url,
                    admin_url: Some(admin_url),
                    name,
                    _dir: None,
                })
            }
        }
    }
}

impl TestDb {
    /// A database the test made some other way (its own cluster); dropping it leaves it.
    pub fn existing(url: &str) -> TestDb {
        TestDb {
            url: url.to_string(),
            admin_url: None,
            name: String::new(),
            _dir: None,
        }
    }

    /// The same database for another server process, as a second replica; dropping it
    /// leaves the database to its owner.
    pub fn shared(&self) -> TestDb {
        TestDb {
            url: self.url.clone(),
            admin_url: None,
            name: String::new(),
            _dir: None,
        }
    }
}

fn replace_database(url: &str, name: &str) -> String {
    let (without_query, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = without_query
        .find("://")
        .map(|start| {
            without_query[start + 3..]
                .find('/')
                .map_or(without_query.len(), |slash| start + 3 + slash)
        })
        .unwrap_or(without_query.len());
    let mut result = format!("{}/{name}", &without_query[..authority_end]);
    if let Some(query) = query {
        result.push('?');
        result.push_str(query);
    }
    result
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(admin_url) = self.admin_url.clone() else {
            return;
        };
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee: use a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(admin) = sqlx::PgPool::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&admin)
                    .await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

/// The `kiln` binary under test.
pub fn kiln_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kiln"))
}

/// A running `kiln serve` process on a free loopback port.
pub struct Server {
    pub base: String,
    pub fhir: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    child: Option<Child>,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
    port: u16,
    log_path: PathBuf,
    _log_dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("free port")
}

impl Server {
    /// Starts a server on a fresh database of `backend` that serves data without a token
    /// (`--anonymous-access`); `None` when that backend is skipped.
    pub async fn start(backend: Backend) -> Option<Server> {
        Self::start_with(backend, &[]).await
    }

    /// [`Server::start`] with more `kiln serve` arguments.
    pub async fn start_with(backend: Backend, extra_args: &[&str]) -> Option<Server> {
        let db = TestDb::new(backend).await?;
        let mut args = vec!["--anonymous-access"];
        args.extend_from_slice(extra_args);
        Some(Self::start_on(db, &args).await)
    }

    /// Starts a server that requires a SMART access token for every data request.
    pub async fn start_secured(backend: Backend, extra_args: &[&str]) -> Option<Server> {
        let db = TestDb::new(backend).await?;
        Some(Self::start_on(db, extra_args).await)
    }

    /// Loads resources (ids kept) with `kiln import` on this server's database, as an
    /// operator would on a server that needs tokens for the API.
    pub fn import(&self, resources: &[Value]) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("resources.ndjson");
        let lines: Vec<String> = resources.iter().map(Value::to_string).collect();
        std::fs::write(&path, lines.join("\n")).expect("write ndjson");
        let output = Command::new(kiln_bin())
            .arg("import")
            .arg(&path)
            .env("KILN_DATABASE_URL", &self.db.url)
            .output()
            .expect("run kiln import");
        assert!(
            output.status.success(),
            "kiln import failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Adds users `(username, fhirUser)`, each with the password `pw-1`.
    pub fn add_users(&self, users: &[(&str, &str)]) {
        for (username, fhir_user) in users {
            self.kiln(&[
                "user",
                "add",
                "--username",
                username,
                "--password",
                "pw-1",
                "--fhir-user",
                fhir_user,
            ]);
        }
    }

    /// Adds an EHR user with the admin role (the admin console's sign-in).
    pub fn add_admin(&self, username: &str, password: &str, fhir_user: &str) {
        self.kiln(&[
            "user",
            "add",
            "--username",
            username,
            "--password",
            password,
            "--fhir-user",
            fhir_user,
            "--admin",
        ]);
    }

    /// Runs a `kiln` admin command (e.g. `["client", "add", …]`) on this server's database
    /// and returns the JSON it printed last; panics if it fails.
    pub fn kiln(&self, args: &[&str]) -> Value {
        let output = Command::new(kiln_bin())
            .args(args)
            .env("KILN_DATABASE_URL", &self.db.url)
            .env("KILN_BASE_URL", &self.base)
            .output()
            .expect("run kiln");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "kiln {args:?} failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
        let last = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last).unwrap_or_else(|_| panic!("kiln {args:?} printed {stdout}"))
    }

    pub async fn start_on(db: TestDb, extra_args: &[&str]) -> Server {
        Self::start_on_with_env(db, extra_args, &[]).await
    }

    /// A replica behind a load balancer at `public_base`: it listens on its own port, and
    /// `base`, `fhir` and the links it writes are the balancer's.
    pub async fn start_behind(
        db: TestDb,
        public_base: &str,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        Self::start_at(db, Some(public_base), extra_args, env).await
    }

    /// [`Server::start_on`] with more environment variables for `kiln serve`.
    pub async fn start_on_with_env(
        db: TestDb,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        Self::start_at(db, None, extra_args, env).await
    }

    async fn start_at(
        db: TestDb,
        public_base: Option<&str>,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let port = free_port();
        let log_dir = tempfile::tempdir().expect("log dir");
        let base = public_base.map_or_else(|| format!("http://127.0.0.1:{port}"), str::to_string);
        let mut server = Server {
            fhir: format!("{base}/fhir"),
            base,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            db,
            child: None,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            port,
            log_path: log_dir.path().join("kiln.log"),
            _log_dir: log_dir,
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("log file");
        let child = Command::new(kiln_bin())
            .arg("serve")
            .arg("--bind")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--base-url")
            .arg(&self.base)
            .arg("--database-url")
            .arg(&self.db.url)
            .args(&self.extra_args)
            .env_remove("KILN_DATABASE_URL")
            .env_remove("KILN_BASE_URL")
            .env_remove("KILN_BIND")
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn kiln serve");
        self.child = Some(child);
        self.wait_ready().await;
        audit::register(&self.db.url, &self.direct());
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = self
                .client
                .get(format!("{}/healthz", self.direct()))
                .send()
                .await
                && response.status() == 200
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("kiln exited during start ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "kiln did not start:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// This process's own address (not a load balancer's in front of it).
    pub fn direct(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Kills the process without warning (SIGKILL), as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and returns the process, to wait for its exit.
    pub fn terminate(&mut self) -> Child {
        let child = self.child.take().expect("running server");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        child
    }

    /// Starts the process again on the same port and database.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.fhir, path.trim_start_matches('/'))
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .expect("POST")
    }

    pub async fn put(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .expect("PUT")
    }

    /// Sends FHIR JSON with extra headers (Prefer, If-Match, If-None-Exist…).
    pub async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request")
    }

    /// Sends `body` exactly as given (malformed JSON, control characters…) as FHIR JSON.
    pub async fn post_raw(&self, path: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .expect("POST")
    }

    /// A DELETE with an `If-Match` header.
    pub async fn delete_if_match(&self, path: &str, tag: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .header("if-match", tag)
            .send()
            .await
            .expect("DELETE")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .expect("DELETE")
    }

    /// Creates a resource and returns the stored representation.
    pub async fn create(&self, resource: &Value) -> Value {
        let resource_type = resource["resourceType"].as_str().expect("resourceType");
        let response = self.post(resource_type, resource).await;
        assert_eq!(response.status(), 201, "create failed");
        response.json().await.expect("json")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Reads a JSON body, asserting the status and a FHIR JSON content type.
pub async fn expect_json(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    assert!(
        content_type.starts_with("application/fhir+json")
            || content_type.starts_with("application/json"),
        "content type {content_type:?} for body {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("invalid JSON ({e}): {text}"))
}

/// Asserts an OperationOutcome with the status, and returns it.
pub async fn expect_outcome(response: reqwest::Response, status: u16) -> Value {
    let outcome = expect_json(response, status).await;
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    let issue = &outcome["issue"][0];
    assert!(issue["severity"].is_string(), "{outcome}");
    assert!(issue["code"].is_string(), "{outcome}");
    assert!(issue["diagnostics"].is_string(), "{outcome}");
    outcome
}

/// A minimal valid Patient.
pub fn patient(family: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "http://example.org/mrn", "value": family}],
        "name": [{"family": family, "given": ["Test"]}],
        "gender": "female",
        "birthDate": "1970-01-01"
    })
}

/// Runs each named `async fn(Backend)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            )*
        }
    };
}
