//! The data set: the bundled Synthea sample cloned with fresh ids (and, for the search
//! benchmark, shifted dates) up to the asked size.

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
    /// Every Patient written, with the values the search benchmark searches them by.
    pub patients: Vec<PatientKey>,
}

/// A Patient of the data set: its id, first family name and birth date (as written).
#[derive(Clone)]
pub struct PatientKey {
    pub id: String,
    pub family: String,
    pub birth_date: String,
}

/// Writes `count` resources: the sample over and over, copy `k` with every id and every
/// `Type/id` reference to a sample resource renamed the same way, so copies never collide
/// and their references stay inside the copy. With `shift_dates`, every date, dateTime and
/// instant of copy `k` also moves [`shift_days`]`(k)` days back, so that copies differ in
/// their dates too (birth dates, observation times) and date searches stay selective.
pub fn build(count: usize, shift_dates: bool) -> BenchResult<Dataset> {
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
    let mut patients = Vec::new();
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
        if shift_dates {
            shift_all_dates(&mut resource, shift_days(copy))?;
        }
        if resource_type == "Patient" {
            patients.push(PatientKey {
                id: id.clone(),
                family: resource["name"][0]["family"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                birth_date: field(&resource, "birthDate")
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        serde_json::to_writer(&mut out, &resource)?;
        out.write_all(b"\n")?;
        keys.push((resource_type, id));
    }
    out.into_inner()
        .map_err(|error| error.into_error())?
        .sync_all()?;
    Ok(Dataset {
        file,
        keys,
        patients,
    })
}

/// Days copy `copy` is moved back: distinct for the first 3,653 copies, at most ten years.
pub fn shift_days(copy: usize) -> i64 {
    (copy as i64 * 7) % 3653
}

/// Moves every string that starts with a full date (`YYYY-MM-DD`, alone or followed by a
/// time) `days` days back; partial dates (`YYYY`, `YYYY-MM`) stay as they are.
fn shift_all_dates(value: &mut Value, days: i64) -> BenchResult<()> {
    match value {
        Value::String(text) if days != 0 && starts_with_date(text) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            let date = time::Date::parse(&text[..10], format)?;
            let shifted = (date - time::Duration::days(days)).format(format)?;
            text.replace_range(..10, &shifted);
        }
        Value::Object(map) => {
            for child in map.values_mut() {
                shift_all_dates(child, days)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                shift_all_dates(item, days)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn starts_with_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 10
        && (bytes.len() == 10 || bytes[10] == b'T')
        && bytes[..10]
            .iter()
            .enumerate()
            .all(|(index, byte)| match index {
                4 | 7 => *byte == b'-',
                _ => byte.is_ascii_digit(),
            })
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
        let dataset = build(5000, false).unwrap();
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

    #[test]
    fn shifted_copies_move_full_dates_only() {
        let mut resource = serde_json::json!({
            "birthDate": "2000-03-01",
            "effectiveDateTime": "2019-01-01T10:00:00+01:00",
            "partial": "2019-05",
            "id": "2019-01-01-not-a-date",
            "nested": [{"issued": "2019-01-01T00:00:00.000Z"}],
        });
        shift_all_dates(&mut resource, 1).unwrap();
        assert_eq!(resource["birthDate"], "2000-02-29");
        assert_eq!(resource["effectiveDateTime"], "2018-12-31T10:00:00+01:00");
        assert_eq!(resource["partial"], "2019-05");
        assert_eq!(resource["id"], "2019-01-01-not-a-date");
        assert_eq!(resource["nested"][0]["issued"], "2018-12-31T00:00:00.000Z");
        assert_eq!(shift_days(0), 0);
        assert_ne!(shift_days(1), shift_days(2));

        // Exactly two copies of the sample (1,880 resources, 10 of them Patients).
        let dataset = build(3760, true).unwrap();
        assert_eq!(dataset.patients.len(), 20);
        let (first, second) = (&dataset.patients[0], &dataset.patients[10]);
        assert_eq!(first.family, second.family);
        assert_ne!(first.birth_date, second.birth_date);
    }
}
