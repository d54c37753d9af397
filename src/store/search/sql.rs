//! A small SQL text builder: `$n` placeholders (both engines accept them) and the values
//! to bind, so one compiled search runs on PostgreSQL and SQLite alike.

/// A value to bind.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Debug, Clone, Default)]
pub struct Sql {
    pub text: String,
    pub binds: Vec<Bind>,
}

impl Sql {
    /// Appends fixed SQL (never client text).
    pub fn push(&mut self, fixed: &str) -> &mut Self {
        self.text.push_str(fixed);
        self
    }

    /// Appends a placeholder for `value`.
    pub fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        self.text.push('$');
        self.text.push_str(&self.binds.len().to_string());
        self
    }

    pub fn text(&mut self, value: impl Into<String>) -> &mut Self {
        self.bind(Bind::Text(value.into()))
    }

    pub fn int(&mut self, value: i64) -> &mut Self {
        self.bind(Bind::Int(value))
    }

    pub fn float(&mut self, value: f64) -> &mut Self {
        self.bind(Bind::Float(value))
    }

    /// Appends `other`, renumbering its placeholders to follow this one's.
    pub fn append(&mut self, other: Sql) -> &mut Self {
        let offset = self.binds.len();
        let mut chars = other.text.chars().peekable();
        while let Some(c) = chars.next() {
            self.text.push(c);
            if c == '$' {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let number: usize = digits.parse().unwrap_or(0);
                self.text.push_str(&(number + offset).to_string());
            }
        }
        self.binds.extend(other.binds);
        self
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub fn like_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The smallest string above every string that starts with `prefix` (byte order).
pub fn prefix_upper_bound(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_in_order() {
        let mut sql = Sql::default();
        sql.push("a = ").text("x").push(" AND b = ").int(2);
        assert_eq!(sql.text, "a = $1 AND b = $2");
        assert_eq!(sql.binds, [Bind::Text("x".into()), Bind::Int(2)]);
        assert_eq!(like_escape("50%_a\\"), "50\\%\\_a\\\\");
        let mut other = Sql::default();
        other.push("c = ").int(3);
        sql.push(" AND ").append(other);
        assert_eq!(sql.text, "a = $1 AND b = $2 AND c = $3");
    }
}
