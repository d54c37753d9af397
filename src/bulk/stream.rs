//! Export files streamed from disk in chunks, as they are or gzip-compressed on the fly:
//! memory stays flat whatever the file size.

use std::io::Write;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures_util::Stream;
use tokio::fs::File;
use tokio::io::AsyncReadExt;

const CHUNK: usize = 64 * 1024;

pub fn plain(file: File) -> impl Stream<Item = std::io::Result<Bytes>> {
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buffer = vec![0u8; CHUNK];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((Ok(Bytes::from(buffer)), Some(file)))
            }
            Err(error) => Some((Err(error), None)),
        }
    })
}

pub fn gzip(file: File) -> impl Stream<Item = std::io::Result<Bytes>> {
    let encoder = GzEncoder::new(Vec::new(), Compression::fast());
    futures_util::stream::unfold(Some((file, encoder)), |state| async move {
        let (mut file, mut encoder) = state?;
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let read = match file.read(&mut buffer).await {
                Ok(read) => read,
                Err(error) => return Some((Err(error), None)),
            };
            if read == 0 {
                return Some((encoder.finish().map(Bytes::from), None));
            }
            if let Err(error) = encoder.write_all(&buffer[..read]) {
                return Some((Err(error), None));
            }
            // Compressed output arrives in bursts: send it once there is some.
            if !encoder.get_ref().is_empty() {
                let chunk = std::mem::take(encoder.get_mut());
                return Some((Ok(Bytes::from(chunk)), Some((file, encoder))));
            }
        }
    })
}
