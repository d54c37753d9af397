//! Export files gzip-compressed on the fly as they stream from the store: memory stays flat
//! whatever the file size.

use std::io::Write;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures_util::{Stream, StreamExt};

use crate::state::export_files::ByteStream;

pub fn gzip(file: ByteStream) -> impl Stream<Item = std::io::Result<Bytes>> {
    let encoder = GzEncoder::new(Vec::new(), Compression::fast());
    futures_util::stream::unfold(Some((file, encoder)), |state| async move {
        let (mut file, mut encoder) = state?;
        loop {
            let chunk = match file.next().await {
                Some(Ok(chunk)) => chunk,
                Some(Err(error)) => return Some((Err(error), None)),
                None => return Some((encoder.finish().map(Bytes::from), None)),
            };
            if let Err(error) = encoder.write_all(&chunk) {
                return Some((Err(error), None));
            }
            // Compressed output arrives in bursts: send it once there is some.
            if !encoder.get_ref().is_empty() {
                let compressed = std::mem::take(encoder.get_mut());
                return Some((Ok(Bytes::from(compressed)), Some((file, encoder))));
            }
        }
    })
}
