//! The data set: the bundled Synthea sample cloned with fresh ids up to the asked size.

use std::collections::HashSet;
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;

use serde_json::Value;

use super::BenchResult;
use crate::engine::conditional::for_each_reference;

/// A temporary file or directory, removed on drop so that a failed run leaves nothing behind.
pub struct TempPath(pub PathBuf);

impl TempPath {
    /// A unique path in the system temporary directory (not created).
    pub fn new(suffix: &str) -> Self {
        let name = format!("kiln-bench-{}{suffix}", uuid::Uuid::new_v4().simple());
        TempPath(std::env::temp_dir().join(name))
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = if self.0.is_dir() {
            std::fs::remove_dir_all(&self.0)
        } else {
            std::fs::remove_file(&self.0)
        };
    }
}

/// The ndjson file to import and the `(type, id)` of every resource in it.
pub struct Dataset {
    pub file: TempPath,
    pub keys: Vec<(String, String)>,
}

/// Writes `count` resources: the sample over and over, copy `k` with every id and every
/// `Type/id` reference to a sample resource renamed the same way, so copies never collide
/// and their references stay inside the copy.
pub fn build(count: usize) -> BenchResult<Dataset> {
    let mut sample = Vec::new();
    for line in crate::sample::synthea_ndjson().lines() {
        let line = line?;
        if !line.trim().is_empty() {
            sample.push(serde_json::from_str::<Value>(&line)?);
        }
    }
    let known: HashSet<String> = sample
        .iter()
        .filter_map(|resource| {
            Some(format!(
                "{}/{}",
                field(resource, "resourceType")?,
                field(resource, "id")?
            ))
        })
        .collect();
    let file = TempPath::new(".ndjson");
    let mut out = BufWriter::new(File::create(&file.0)?);
    let mut keys = Vec::with_capacity(count);
    for (index, original) in sample.iter().cycle().take(count).enumerate() {
        let copy = index / sample.len();
        let mut resource = original.clone();
        for_each_reference(&mut resource, &mut |reference| {
            if known.contains(reference.as_str())
                && let Some((resource_type, id)) = reference.split_once('/')
            {
                *reference = format!("{resource_type}/{}", copy_id(id, copy));
            }
        });
        let resource_type = field(&resource, "resourceType")
            .unwrap_or_default()
            .to_string();
        let id = copy_id(field(&resource, "id").unwrap_or_default(), copy);
        resource["id"] = Value::String(id.clone());
        serde_json::to_writer(&mut out, &resource)?;
        out.write_all(b"\n")?;
        keys.push((resource_type, id));
    }
    out.into_inner()
        .map_err(|error| error.into_error())?
        .sync_all()?;
    Ok(Dataset { file, keys })
}

fn field<'a>(resource: &'a Value, name: &str) -> Option<&'a str> {
    resource.get(name).and_then(Value::as_str)
}

/// `{id}-{copy}`, or a hash of the id in its place when that would pass the 64-character
/// limit of FHIR ids.
fn copy_id(id: &str, copy: usize) -> String {
    let renamed = format!("{id}-{copy}");
    if renamed.len() <= 64 {
        return renamed;
    }
    let mut hasher = DefaultHasher::new();
    id.hash(&mut hasher);
    format!("{:016x}-{copy}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::id::is_valid_id;

    #[test]
    fn copy_ids_are_valid_and_distinct() {
        assert_eq!(copy_id("abc", 3), "abc-3");
        let long = "a".repeat(64);
        assert!(is_valid_id(&copy_id(&long, 12)));
        assert_ne!(copy_id(&long, 1), copy_id(&long, 2));
        assert_ne!(copy_id(&long, 1), copy_id(&"b".repeat(64), 1));
    }

    #[test]
    fn copies_have_unique_ids_and_references_inside_the_copy() {
        let dataset = build(5000).unwrap();
        assert_eq!(dataset.keys.len(), 5000);
        let keys: HashSet<String> = dataset
            .keys
            .iter()
            .map(|(t, id)| format!("{t}/{id}"))
            .collect();
        assert_eq!(keys.len(), 5000, "ids collide");
        let text = std::fs::read_to_string(&dataset.file.0).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5000);
        // The sample has more than 1000 resources: these all belong to copy 0.
        for line in &lines[..1000] {
            let mut resource: Value = serde_json::from_str(line).unwrap();
            assert!(is_valid_id(field(&resource, "id").unwrap()));
            for_each_reference(&mut resource, &mut |reference| {
                if reference.contains('/') {
                    assert!(reference.ends_with("-0"), "{reference} escapes copy 0");
                    assert!(
                        keys.contains(reference.as_str()),
                        "{reference} has no target"
                    );
                }
            });
        }
        let path = dataset.file.0.clone();
        drop(dataset);
        assert!(!path.exists(), "the temporary file is removed");
    }
}
