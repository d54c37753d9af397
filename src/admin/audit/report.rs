//! The audit report's rows as the console's CSV download and `kiln audit report` write them:
//! one column per field of the log (`AuditColumn::ALL`), CSV through the `csv` crate with
//! every cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, carriage
//! return first) prefixed with `'`, or a plain-text table of fixed widths. Both stream: one row
//! at a time.

use std::borrow::Cow;

use crate::fhir::instant::to_fhir_instant;
use crate::store::audit::query::{AuditColumn, AuditRow};

/// A row's value in `column`, as text (empty when absent).
pub fn cell(row: &AuditRow, column: AuditColumn) -> Cow<'_, str> {
    fn text(value: &Option<String>) -> Cow<'_, str> {
        Cow::Borrowed(value.as_deref().unwrap_or(""))
    }
    match column {
        AuditColumn::Seq => Cow::Owned(row.seq.to_string()),
        AuditColumn::Recorded => Cow::Owned(to_fhir_instant(row.recorded)),
        AuditColumn::Type => Cow::Borrowed(row.type_code.as_str()),
        AuditColumn::Subtype => text(&row.subtype),
        AuditColumn::Action => Cow::Borrowed(row.action.as_str()),
        AuditColumn::Outcome => Cow::Borrowed(row.outcome.as_str()),
        AuditColumn::AgentWho => text(&row.agent_who),
        AuditColumn::AgentUser => text(&row.agent_user),
        AuditColumn::AgentClient => text(&row.agent_client),
        AuditColumn::Patient => text(&row.patient),
        AuditColumn::Entity => text(&row.entity),
    }
}

/// `text` made safe for a spreadsheet: a leading formula character is neutralised with `'`.
pub fn formula_safe(text: &str) -> Cow<'_, str> {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{text}")),
        _ => Cow::Borrowed(text),
    }
}

/// The report as CSV, built up in a buffer the caller drains ([`take`](Self::take)) as it
/// goes: a header, then a record per row.
pub struct CsvReport {
    buffer: Vec<u8>,
}

impl CsvReport {
    pub fn new() -> csv::Result<Self> {
        let mut report = CsvReport { buffer: Vec::new() };
        let names = AuditColumn::ALL.iter().map(|column| column.name());
        report.record(names.chain(["event_id"]))?;
        Ok(report)
    }

    pub fn row(&mut self, row: &AuditRow) -> csv::Result<()> {
        let cells: Vec<Cow<'_, str>> = AuditColumn::ALL
            .into_iter()
            .map(|column| cell(row, column))
            .chain([Cow::Borrowed(row.event_id.as_str())])
            .collect();
        self.record(cells.iter().map(|cell| formula_safe(cell).into_owned()))
    }

    fn record<I, T>(&mut self, cells: I) -> csv::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        let mut writer = csv::WriterBuilder::new()
            .buffer_capacity(1024)
            .from_writer(&mut self.buffer);
        writer.write_record(cells)?;
        writer.flush()?;
        Ok(())
    }

    /// Bytes written and not yet taken.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The bytes written since the last take.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buffer)
    }
}

/// The widths of the text table's columns, in characters.
fn width(column: AuditColumn) -> usize {
    match column {
        AuditColumn::Seq => 8,
        AuditColumn::Recorded => 27,
        AuditColumn::Type => 8,
        AuditColumn::Subtype => 16,
        AuditColumn::Action => 6,
        AuditColumn::Outcome => 7,
        AuditColumn::AgentWho => 24,
        AuditColumn::AgentUser => 16,
        AuditColumn::AgentClient => 20,
        AuditColumn::Patient => 16,
        AuditColumn::Entity => 28,
    }
}

/// One line of the text table: each value cut to its column's width (`…` marks a cut),
/// control characters shown as spaces.
fn table_line(values: impl Iterator<Item = (AuditColumn, String)>) -> String {
    let mut line = String::new();
    for (column, value) in values {
        let width = width(column);
        let clean: String = value
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let shown: String = if clean.chars().count() > width {
            clean.chars().take(width - 1).chain(['…']).collect()
        } else {
            clean
        };
        line.push_str(&format!("{shown:<width$} "));
    }
    line.trim_end().to_owned()
}

/// The text table's header line.
pub fn table_header() -> String {
    table_line(
        AuditColumn::ALL
            .into_iter()
            .map(|column| (column, column.name().to_owned())),
    )
}

/// A row of the text table.
pub fn table_row(row: &AuditRow) -> String {
    table_line(
        AuditColumn::ALL
            .into_iter()
            .map(|column| (column, cell(row, column).into_owned())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> AuditRow {
        AuditRow {
            seq: 7,
            event_id: "e7".into(),
            recorded: 0,
            type_code: "rest".into(),
            subtype: Some("read".into()),
            action: "R".into(),
            outcome: "0".into(),
            agent_who: Some("=HYPERLINK(\"http://evil\")".into()),
            agent_user: Some("@SUM(1)".into()),
            agent_client: Some("a,b\"c".into()),
            patient: Some("-1+1".into()),
            entity: None,
            body: b"{}".to_vec(),
            hash: vec![0; 32],
        }
    }

    #[test]
    fn csv_cells_cannot_be_formulas() {
        let mut report = CsvReport::new().unwrap();
        report.row(&row()).unwrap();
        let text = String::from_utf8(report.take()).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "seq,date,type,subtype,action,outcome,agent,user,client,patient,entity,event_id"
        );
        assert_eq!(
            lines.next().unwrap(),
            "7,1970-01-01T00:00:00Z,rest,read,R,0,\"'=HYPERLINK(\"\"http://evil\"\")\",'@SUM(1),\
             \"a,b\"\"c\",'-1+1,,e7"
        );
    }

    #[test]
    fn table_cuts_long_values() {
        let mut long = row();
        long.entity = Some(format!("Observation/{}", "x".repeat(40)));
        let line = table_row(&long);
        assert!(line.contains("Observation/xxxxxxxxxxxxxxx…"), "{line}");
        assert!(table_header().starts_with("seq      date"));
    }
}
