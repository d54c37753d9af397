//! The operator's terms of use that a developer accepts on the app registration form: the
//! file `--operator-terms-file` names (text or Markdown, rendered with the docs' Markdown
//! renderer, raw HTML shown as text), or a short generic text.

use crate::config::PortalConfig;
use crate::web::error::{PageError, PageResult};

/// Shown when the operator gave no terms file.
pub const DEFAULT_TERMS: &str = "\
By registering an app you agree that:

- the app uses the data it receives only for the purpose described in this request, and \
  only with the consent of the people it belongs to;
- you keep the app's credentials secret, and tell the operator at once if they leak;
- you protect the data the app receives and delete it when it is no longer needed;
- the operator may suspend or retire the app if it misuses data or breaks these terms.
";

/// The largest terms file read, in bytes.
const MAX_BYTES: u64 = 256 * 1024;

/// Checked when the server starts: a terms file that is set must be readable text.
pub async fn check(config: &PortalConfig) -> Result<(), String> {
    source(config).await.map(|_| ())
}

/// The terms as HTML (operator text through the Markdown renderer; raw HTML escaped).
pub async fn html(config: &PortalConfig) -> PageResult<String> {
    let text = source(config).await.map_err(PageError::internal)?;
    Ok(crate::docs::markdown::to_html(&text))
}

async fn source(config: &PortalConfig) -> Result<String, String> {
    let Some(path) = &config.operator_terms_file else {
        return Ok(DEFAULT_TERMS.to_string());
    };
    let unreadable = |error: std::io::Error| {
        format!(
            "cannot read the operator terms file {}: {error}",
            path.display()
        )
    };
    let size = tokio::fs::metadata(path).await.map_err(unreadable)?.len();
    if size > MAX_BYTES {
        return Err(format!(
            "the operator terms file {} is larger than {MAX_BYTES} bytes",
            path.display()
        ));
    }
    let bytes = tokio::fs::read(path).await.map_err(unreadable)?;
    String::from_utf8(bytes).map_err(|_| {
        format!(
            "the operator terms file {} is not UTF-8 text",
            path.display()
        )
    })
}
