//! The client side of a Bulk Data export, as the benchmark drives it: the kick-off, status
//! polls (which may carry a partial manifest), manifest pages, and file downloads streamed
//! and counted line by line.

use reqwest::header::{ACCEPT, CONTENT_LOCATION, CONTENT_TYPE};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

use super::BenchResult;

/// The files a manifest (or one page of it) lists in `output`, and its `next` page.
#[derive(Debug, PartialEq, Eq)]
pub struct Manifest {
    pub output: Vec<OutputFile>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub url: String,
    /// The `count` the server states, when it does.
    pub count: Option<u64>,
}

/// What a poll of the status URL answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    /// 202, with a partial manifest when the server hands out finished files early.
    Running(Option<Manifest>),
    /// 200: the manifest, or its first page.
    Complete(Manifest),
}

/// Starts a system-level export of everything; returns the status URL.
pub async fn kick_off(client: &Client, base: &str) -> BenchResult<String> {
    let url = format!("{base}/fhir/$export?allowPartialManifests=true");
    let response = client
        .get(&url)
        .header(ACCEPT, "application/fhir+json")
        .header("prefer", "respond-async")
        .send()
        .await?;
    if response.status() != StatusCode::ACCEPTED {
        return Err(unexpected(&url, response).await);
    }
    let status_url = response
        .headers()
        .get(CONTENT_LOCATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| format!("GET {url} answered 202 without Content-Location"))?;
    Ok(status_url.to_owned())
}

pub async fn status(client: &Client, url: &str) -> BenchResult<Status> {
    read_status(url, client.get(url).send().await?).await
}

/// The answer of the status URL: a manifest, partial or complete, or only "still running".
async fn read_status(url: &str, response: Response) -> BenchResult<Status> {
    match response.status() {
        StatusCode::OK => Ok(Status::Complete(manifest(url, response).await?)),
        StatusCode::ACCEPTED if is_manifest(&response) => {
            Ok(Status::Running(Some(manifest(url, response).await?)))
        }
        StatusCode::ACCEPTED => {
            response.bytes().await?;
            Ok(Status::Running(None))
        }
        _ => Err(unexpected(url, response).await),
    }
}

/// A further page of a complete manifest, from its `next` link.
pub async fn manifest_page(client: &Client, url: &str) -> BenchResult<Manifest> {
    let response = client.get(url).send().await?;
    if response.status() != StatusCode::OK {
        return Err(unexpected(url, response).await);
    }
    manifest(url, response).await
}

/// A manifest is plain JSON; other 202 bodies (an OperationOutcome) are FHIR JSON.
fn is_manifest(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim() == "application/json")
}

async fn manifest(url: &str, response: Response) -> BenchResult<Manifest> {
    let body: Value = serde_json::from_slice(&response.bytes().await?)
        .map_err(|error| format!("GET {url}: the manifest is not JSON: {error}"))?;
    parse_manifest(&body).map_err(|error| format!("GET {url}: {error}").into())
}

fn parse_manifest(body: &Value) -> Result<Manifest, String> {
    let entries = body["output"]
        .as_array()
        .ok_or("the manifest has no output array")?;
    let mut output = Vec::with_capacity(entries.len());
    for entry in entries {
        let url = entry["url"]
            .as_str()
            .ok_or("an output entry of the manifest has no url")?;
        output.push(OutputFile {
            url: url.to_owned(),
            count: entry["count"].as_u64(),
        });
    }
    let next = body["link"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|link| link["relation"] == "next")
        .and_then(|link| link["url"].as_str())
        .map(str::to_owned);
    Ok(Manifest { output, next })
}

/// Lines and bytes of a downloaded file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LineCount {
    pub bytes: u64,
    newlines: u64,
    ends_with_newline: bool,
}

impl LineCount {
    pub fn feed(&mut self, chunk: &[u8]) {
        let Some(&last) = chunk.last() else {
            return;
        };
        self.bytes += chunk.len() as u64;
        self.newlines += chunk.iter().filter(|&&byte| byte == b'\n').count() as u64;
        self.ends_with_newline = last == b'\n';
    }

    /// Newline-terminated lines, plus a last line without its newline.
    pub fn lines(&self) -> u64 {
        self.newlines + u64::from(self.bytes > 0 && !self.ends_with_newline)
    }
}

/// Downloads a file chunk by chunk, as it arrives, keeping none of it.
pub async fn download(client: &Client, url: &str) -> BenchResult<LineCount> {
    let mut response = client.get(url).send().await?;
    if response.status() != StatusCode::OK {
        return Err(unexpected(url, response).await);
    }
    let mut count = LineCount::default();
    while let Some(chunk) = response.chunk().await? {
        count.feed(&chunk);
    }
    Ok(count)
}

/// An error naming the request, the status and the start of the body (an OperationOutcome).
async fn unexpected(url: &str, response: Response) -> Box<dyn std::error::Error + Send + Sync> {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let body: String = body.chars().take(500).collect();
    format!("GET {url} answered {status}: {body}").into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_output_files_and_the_next_page() {
        let manifest = parse_manifest(&json!({
            "transactionTime": "2026-01-01T00:00:00Z",
            "output": [
                {"type": "Patient", "url": "http://x/fhir/$export-file/j/0", "count": 10},
                {"type": "Observation", "url": "http://x/fhir/$export-file/j/1"},
            ],
            "error": [{"type": "OperationOutcome", "url": "http://x/fhir/$export-file/j/2"}],
            "link": [
                {"relation": "self", "url": "http://x/page/1"},
                {"relation": "next", "url": "http://x/page/2"},
            ],
        }))
        .unwrap();
        assert_eq!(
            manifest.output,
            [
                OutputFile {
                    url: "http://x/fhir/$export-file/j/0".into(),
                    count: Some(10)
                },
                OutputFile {
                    url: "http://x/fhir/$export-file/j/1".into(),
                    count: None
                },
            ]
        );
        assert_eq!(manifest.next.as_deref(), Some("http://x/page/2"));

        let last = parse_manifest(&json!({"output": []})).unwrap();
        assert!(last.output.is_empty() && last.next.is_none());
        assert!(parse_manifest(&json!({"resourceType": "OperationOutcome"})).is_err());
        assert!(parse_manifest(&json!({"output": [{"type": "Patient"}]})).is_err());
    }

    fn response(status: u16, content_type: &str, body: &str) -> Response {
        let mut response = axum::http::Response::builder().status(status);
        if !content_type.is_empty() {
            response = response.header("content-type", content_type);
        }
        Response::from(response.body(body.to_owned()).unwrap())
    }

    #[tokio::test]
    async fn reads_partial_and_complete_manifests_from_status_polls() {
        let manifest = r#"{"output":[{"type":"Patient","url":"http://x/f/0","count":2}]}"#;
        let files = || Manifest {
            output: vec![OutputFile {
                url: "http://x/f/0".into(),
                count: Some(2),
            }],
            next: None,
        };
        let status = |response| read_status("http://x/status", response);
        assert_eq!(
            status(response(202, "", "")).await.unwrap(),
            Status::Running(None)
        );
        assert_eq!(
            status(response(202, "application/json; charset=utf-8", manifest))
                .await
                .unwrap(),
            Status::Running(Some(files()))
        );
        let outcome = r#"{"resourceType":"OperationOutcome","issue":[]}"#;
        assert_eq!(
            status(response(202, "application/fhir+json", outcome))
                .await
                .unwrap(),
            Status::Running(None)
        );
        assert_eq!(
            status(response(200, "application/json", manifest))
                .await
                .unwrap(),
            Status::Complete(files())
        );
        let failed = status(response(500, "application/fhir+json", outcome))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            failed.contains("500") && failed.contains("OperationOutcome"),
            "{failed}"
        );
        assert!(
            status(response(200, "application/json", "{}"))
                .await
                .is_err()
        );
    }

    #[test]
    fn counts_lines_across_chunks() {
        let mut count = LineCount::default();
        for chunk in [&b"{\"a\":1}\n{\"b\""[..], b"", b":2}\n", b"{\"c\":3}"] {
            count.feed(chunk);
        }
        assert_eq!(count.lines(), 3);
        assert_eq!(count.bytes, 23);
        count.feed(b"\n");
        assert_eq!(count.lines(), 3);
        assert_eq!(LineCount::default().lines(), 0);
    }
}
