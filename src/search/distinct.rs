//! Index entries without repeats: a union (`name | alias`), repeated codings or references
//! must give one row each.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{DefaultHasher, Hash, Hasher};

use super::{IndexEntry, IndexValue};

/// Values a parameter has more of than this are deduplicated by hash, not by scanning (a
/// Provenance can target thousands of resources).
const LINEAR_DEDUP: usize = 16;

/// Entries collected one parameter at a time, each parameter's values distinct.
#[derive(Default)]
pub struct DistinctEntries {
    entries: Vec<IndexEntry>,
    /// Where the current parameter's entries start.
    start: usize,
    /// Fingerprint → first entry with it, filled once the parameter has many values.
    seen: HashMap<u64, usize>,
}

impl DistinctEntries {
    /// Starts the values of the next parameter.
    pub fn next_param(&mut self) {
        self.start = self.entries.len();
        self.seen.clear();
    }

    /// Adds `entry` unless the current parameter already has its value.
    pub fn push(&mut self, entry: IndexEntry) {
        let current = &self.entries[self.start..];
        if current.len() < LINEAR_DEDUP {
            if !current.contains(&entry) {
                self.entries.push(entry);
            }
            return;
        }
        if self.seen.is_empty() {
            for (i, e) in current.iter().enumerate() {
                self.seen
                    .entry(fingerprint(&e.value))
                    .or_insert(self.start + i);
            }
        }
        match self.seen.entry(fingerprint(&entry.value)) {
            Entry::Occupied(first) if self.entries[*first.get()] == entry => {}
            // A hash collision between different values: keep both.
            Entry::Occupied(_) => self.entries.push(entry),
            Entry::Vacant(slot) => {
                slot.insert(self.entries.len());
                self.entries.push(entry);
            }
        }
    }

    pub fn into_vec(self) -> Vec<IndexEntry> {
        self.entries
    }
}

fn fingerprint(value: &IndexValue) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// Consistent with `PartialEq`: floats hash by their bits, with `-0.0` as `0.0`.
impl Hash for IndexValue {
    fn hash<H: Hasher>(&self, state: &mut H) {
        fn float<H: Hasher>(f: f64, state: &mut H) {
            let bits = if f == 0.0 { 0 } else { f.to_bits() };
            bits.hash(state);
        }
        std::mem::discriminant(self).hash(state);
        match self {
            IndexValue::String { normalized, exact } => (normalized, exact).hash(state),
            IndexValue::Token {
                system,
                code,
                display,
                identifier_type,
            } => (system, code, display, identifier_type).hash(state),
            IndexValue::Date { start, end } => (start, end).hash(state),
            IndexValue::Reference {
                target_type,
                target_id,
                url,
                identifier,
            } => (target_type, target_id, url, identifier).hash(state),
            IndexValue::Quantity {
                value,
                low,
                high,
                system,
                code,
                unit,
            } => {
                for f in [value, low, high] {
                    float(*f, state);
                }
                (system, code, unit).hash(state);
            }
            IndexValue::Number { value, low, high } => {
                for f in [value, low, high] {
                    float(*f, state);
                }
            }
            IndexValue::Uri(uri) => uri.hash(state),
            IndexValue::Composite(parts) => parts.hash(state),
        }
    }
}
