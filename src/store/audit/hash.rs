//! The link of the audit chain: each event's hash covers the previous event's hash, its own
//! sequence number and its stored bytes, so an altered, removed or reordered row breaks every
//! link after it.

use aws_lc_rs::digest::{Context, SHA256};

/// The hash before the first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// SHA-256(previous hash || seq as 8 big-endian bytes || body).
pub fn link(previous: &[u8], seq: i64, body: &[u8]) -> [u8; 32] {
    let mut context = Context::new(&SHA256);
    context.update(previous);
    context.update(&seq.to_be_bytes());
    context.update(body);
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_changes_the_link() {
        let first = link(&GENESIS, 1, b"{}");
        assert_ne!(first, link(&GENESIS, 2, b"{}"));
        assert_ne!(first, link(&GENESIS, 1, b"{ }"));
        assert_ne!(first, link(&first, 1, b"{}"));
        assert_eq!(first, link(&GENESIS, 1, b"{}"));
    }
}
