//! PostgreSQL's binary `COPY … FROM STDIN`: the cheapest way to append many rows (no
//! statement to plan, no arrays to unpack, no per-row executor), used for the rows a write
//! only adds: history versions and search index rows.

use sqlx::PgConnection;

/// Rows in PostgreSQL's binary COPY format, built in memory.
pub(super) struct CopyRows {
    data: Vec<u8>,
}

/// A value of one column, written as its binary COPY field (NULL for `None`).
pub(super) trait CopyValue {
    fn put(&self, rows: &mut CopyRows);
}

impl CopyRows {
    /// An empty table: the signature, no flags, no header extension.
    pub(super) fn new() -> Self {
        let mut data = Vec::with_capacity(64 * 1024);
        data.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        data.extend_from_slice(&0i32.to_be_bytes());
        data.extend_from_slice(&0i32.to_be_bytes());
        CopyRows { data }
    }

    /// Starts a row of `fields` columns.
    pub(super) fn row(&mut self, fields: usize) {
        let fields = i16::try_from(fields).expect("a table has fewer than 32768 columns");
        self.data.extend_from_slice(&fields.to_be_bytes());
    }

    pub(super) fn put(&mut self, value: impl CopyValue) {
        value.put(self);
    }

    fn field(&mut self, bytes: &[u8]) {
        let length = i32::try_from(bytes.len()).expect("a field is smaller than 2 GiB");
        self.data.extend_from_slice(&length.to_be_bytes());
        self.data.extend_from_slice(bytes);
    }

    fn null(&mut self) {
        self.data.extend_from_slice(&(-1i32).to_be_bytes());
    }

    /// Sends the rows with `statement` (a `COPY … FROM STDIN (FORMAT binary)` naming the
    /// columns in the order they were put).
    pub(super) async fn send(
        mut self,
        conn: &mut PgConnection,
        statement: &str,
    ) -> Result<u64, sqlx::Error> {
        self.data.extend_from_slice(&(-1i16).to_be_bytes());
        let mut copy = conn.copy_in_raw(statement).await?;
        let sent = copy.send(self.data).await.map(|_| ());
        match sent {
            Ok(()) => copy.finish().await,
            Err(error) => {
                copy.abort(error.to_string()).await?;
                Err(error)
            }
        }
    }
}

impl CopyValue for &str {
    fn put(&self, rows: &mut CopyRows) {
        rows.field(self.as_bytes());
    }
}

impl CopyValue for &[u8] {
    fn put(&self, rows: &mut CopyRows) {
        rows.field(self);
    }
}

impl CopyValue for i64 {
    fn put(&self, rows: &mut CopyRows) {
        rows.field(&self.to_be_bytes());
    }
}

impl CopyValue for f64 {
    fn put(&self, rows: &mut CopyRows) {
        rows.field(&self.to_bits().to_be_bytes());
    }
}

impl CopyValue for bool {
    fn put(&self, rows: &mut CopyRows) {
        rows.field(&[u8::from(*self)]);
    }
}

impl<T: CopyValue> CopyValue for Option<T> {
    fn put(&self, rows: &mut CopyRows) {
        match self {
            Some(value) => value.put(rows),
            None => rows.null(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_the_binary_copy_layout() {
        let mut rows = CopyRows::new();
        rows.row(3);
        rows.put("ab");
        rows.put(None::<i64>);
        rows.put(1.5f64);
        let mut expected = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
        expected.extend_from_slice(&[0, 3, 0, 0, 0, 2, b'a', b'b', 0xff, 0xff, 0xff, 0xff]);
        expected.extend_from_slice(&[0, 0, 0, 8]);
        expected.extend_from_slice(&1.5f64.to_bits().to_be_bytes());
        assert_eq!(rows.data, expected);
    }
}
