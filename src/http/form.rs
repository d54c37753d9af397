//! Form fields as a browser sends them (a query string or an urlencoded body), repeated names
//! kept in order: what the pages read, and what the authorization request's checks read.

/// Decoded `application/x-www-form-urlencoded` fields (or query parameters), in order.
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn parse(bytes: &[u8]) -> Fields {
        Fields(form_urlencoded::parse(bytes).into_owned().collect())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// How many times `name` was sent.
    pub fn count(&self, name: &str) -> usize {
        self.all(name).count()
    }
}
