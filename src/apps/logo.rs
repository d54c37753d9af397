//! App logos: PNG or JPEG only (recognised by their bytes, whatever the upload declared), at
//! most [`MAX_BYTES`], stored once per content digest and served by Kiln. SVG is refused: it
//! can carry scripts.

use crate::crypto::digest_bytes_hex;
use crate::store::apps::LogoRow;
use crate::store::{Store, StoreResult};

/// The largest logo accepted, in bytes.
pub const MAX_BYTES: usize = 256 * 1024;

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_MAGIC: &[u8] = b"\xff\xd8\xff";

/// A logo that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logo {
    /// SHA-256 of the bytes, hex: the logo's name in `AppRequest::logo` and its URL.
    pub digest: String,
    /// `image/png` or `image/jpeg`.
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// Accepts an upload as a logo, or says why not. `declared` (the upload's content type) is
/// only used to explain a refusal.
pub fn accept(bytes: &[u8], declared: Option<&str>) -> Result<Logo, String> {
    if bytes.is_empty() {
        return Err("the logo file is empty".into());
    }
    if bytes.len() > MAX_BYTES {
        return Err(format!(
            "the logo is {} KiB; at most {} KiB is accepted",
            bytes.len().div_ceil(1024),
            MAX_BYTES / 1024
        ));
    }
    let content_type = if bytes.starts_with(PNG_MAGIC) {
        "image/png"
    } else if bytes.starts_with(JPEG_MAGIC) {
        "image/jpeg"
    } else {
        let svg = declared.is_some_and(|d| d.to_ascii_lowercase().contains("svg"))
            || String::from_utf8_lossy(&bytes[..bytes.len().min(512)])
                .to_ascii_lowercase()
                .contains("<svg");
        return Err(if svg {
            "SVG logos are not accepted (they can carry scripts): upload a PNG or JPEG".into()
        } else {
            "the logo must be a PNG or JPEG image".into()
        });
    };
    Ok(Logo {
        digest: digest_bytes_hex(bytes),
        content_type,
        bytes: bytes.to_vec(),
    })
}

/// Stores an accepted logo; returns its digest.
pub async fn store(store: &Store, logo: &Logo, now: i64) -> StoreResult<String> {
    store
        .put_logo(&LogoRow {
            digest: logo.digest.clone(),
            content_type: logo.content_type.to_string(),
            data: logo.bytes.clone(),
            created_at: now,
        })
        .await?;
    Ok(logo.digest.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_and_jpeg_are_recognised_by_their_bytes() {
        let png = [PNG_MAGIC, b"rest of the image"].concat();
        let logo = accept(&png, Some("application/octet-stream")).unwrap();
        assert_eq!(logo.content_type, "image/png");
        assert_eq!(logo.digest.len(), 64);
        let jpeg = [JPEG_MAGIC, b"\xe0 jfif"].concat();
        assert_eq!(accept(&jpeg, None).unwrap().content_type, "image/jpeg");
    }

    #[test]
    fn svg_oversized_empty_and_other_files_are_refused() {
        let svg = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
        assert!(
            accept(svg, Some("image/svg+xml"))
                .unwrap_err()
                .contains("SVG")
        );
        assert!(accept(svg, Some("image/png")).unwrap_err().contains("SVG"));
        let big = [PNG_MAGIC, &vec![0u8; MAX_BYTES]].concat();
        assert!(
            accept(&big, Some("image/png"))
                .unwrap_err()
                .contains("at most 256 KiB")
        );
        assert!(accept(&big[..MAX_BYTES], None).is_ok());
        assert!(accept(b"", None).is_err());
        assert!(
            accept(b"GIF89a....", Some("image/gif"))
                .unwrap_err()
                .contains("PNG or JPEG")
        );
    }
}
