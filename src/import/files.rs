//! Finding the files to import and opening them as line readers.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ndjson,
    NdjsonGz,
    Json,
}

#[derive(Debug, Clone)]
pub struct ImportFile {
    pub path: PathBuf,
    pub kind: Kind,
    pub size: u64,
}

/// Types that other resources usually point at, imported first so that conditional
/// references find their targets.
const REFERENCED_FIRST: [&str; 7] = [
    "Organization",
    "Location",
    "Practitioner",
    "PractitionerRole",
    "Patient",
    "Medication",
    "Device",
];

fn kind_of(path: &Path) -> Option<Kind> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    if name.ends_with(".ndjson.gz") {
        Some(Kind::NdjsonGz)
    } else if name.ends_with(".ndjson") {
        Some(Kind::Ndjson)
    } else if name.ends_with(".json") {
        Some(Kind::Json)
    } else {
        None
    }
}

/// Expands directories (recursively) and orders files so referenced types load first.
pub fn collect(paths: &[PathBuf]) -> std::io::Result<Vec<ImportFile>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut files)?;
        } else {
            let kind = kind_of(path).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "{}: not a .ndjson, .ndjson.gz or .json file",
                        path.display()
                    ),
                )
            })?;
            let size = std::fs::metadata(path)?.len();
            files.push(ImportFile {
                path: path.clone(),
                kind,
                size,
            });
        }
    }
    files.sort_by_key(|file| (rank(file), file.path.clone()));
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<ImportFile>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|entry| entry.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files)?;
            continue;
        }
        // A Bulk Data client's `log.ndjson` records the export, not FHIR data.
        if path.file_name().is_some_and(|name| name == "log.ndjson") {
            eprintln!(
                "{}: skipped (a bulk export log, not FHIR resources)",
                path.display()
            );
            continue;
        }
        if let Some(kind) = kind_of(&path) {
            files.push(ImportFile {
                size: entry.metadata()?.len(),
                path,
                kind,
            });
        }
    }
    Ok(())
}

fn rank(file: &ImportFile) -> usize {
    if file.kind == Kind::Json {
        return REFERENCED_FIRST.len() + 1;
    }
    let name = file
        .path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("");
    let resource_type = name.split('.').next().unwrap_or("");
    REFERENCED_FIRST
        .iter()
        .position(|first| *first == resource_type)
        .unwrap_or(REFERENCED_FIRST.len())
}

/// A reader over the file's decompressed lines.
pub fn open_lines(file: &ImportFile) -> std::io::Result<Box<dyn BufRead>> {
    let raw = File::open(&file.path)?;
    let reader: Box<dyn Read> = match file.kind {
        Kind::NdjsonGz => Box::new(MultiGzDecoder::new(raw)),
        Kind::Ndjson | Kind::Json => Box::new(raw),
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, reader)))
}
