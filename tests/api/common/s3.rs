//! An S3-compatible server for tests: moto's (`python3 -m pip install 'moto[server]'`) on a
//! free loopback port, stopped when dropped.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use super::free_port;

static S3_SKIP_NOTICE: Once = Once::new();

/// moto does not check signatures: any signed-looking request acts as the bucket owner
/// (objects are private to anonymous requests).
const OWNER: &str = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, \
    SignedHeaders=host, Signature=0";

pub struct S3Server {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    pub client: reqwest::Client,
    child: Child,
}

impl S3Server {
    /// A running server, or `None` (after a banner) when moto is not installed, unless
    /// `KILN_REQUIRE_S3=1`.
    pub async fn start() -> Option<S3Server> {
        let installed = Command::new("python3")
            .args(["-c", "import moto.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            if std::env::var("KILN_REQUIRE_S3").is_ok_and(|v| v == "1") {
                panic!("KILN_REQUIRE_S3=1 but moto is not installed (pip install 'moto[server]')");
            }
            S3_SKIP_NOTICE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "\n*** S3 export tests SKIPPED: python3 -m pip install 'moto[server]' to run them ***\n"
                );
            });
            return None;
        }
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto server");
        let mut server = S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            child,
        };
        server.wait_ready().await;
        Some(server)
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = self.client.get(&self.endpoint).send().await
                && response.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the moto server exited during start ({status})");
            }
            assert!(Instant::now() < deadline, "the moto server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn create_bucket(&self, bucket: &str) {
        let response = self
            .client
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .expect("create bucket");
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// The keys under `prefix`, sorted (ListObjectsV2).
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("list-type", "2")
            .append_pair("prefix", prefix)
            .finish();
        let response = self
            .client
            .get(format!("{}/{bucket}?{query}", self.endpoint))
            .send()
            .await
            .expect("list objects");
        assert!(response.status().is_success(), "{}", response.status());
        let xml = response.text().await.expect("listing");
        assert!(!xml.contains("<IsTruncated>true"), "{xml}");
        let mut keys: Vec<String> = xml
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>"))
            .map(|(key, _)| key.to_string())
            .collect();
        keys.sort();
        keys
    }

    /// The bytes of an object, read straight from the store.
    pub async fn object(&self, bucket: &str, key: &str) -> Vec<u8> {
        let response = self
            .client
            .get(format!("{}/{bucket}/{key}", self.endpoint))
            .header("authorization", OWNER)
            .send()
            .await
            .expect("get object");
        assert!(
            response.status().is_success(),
            "{key}: {}",
            response.status()
        );
        response.bytes().await.expect("object").to_vec()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
