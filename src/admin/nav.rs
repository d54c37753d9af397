//! The console's sections and what every console page shows around its own content
//! (`templates/admin/console.html`): the section navigation, who is signed in, sign-out.
//! A new section is one page module (its `SECTION`, handlers and `card`), one more entry in
//! [`SECTIONS`], its routes in `router::admin` and its card on the home page (`home.rs`).

/// One section of the console.
pub struct Section {
    /// The section's page, under the base URL.
    pub path: &'static str,
    pub title: &'static str,
}

/// Every section, in the navigation's order; each page module owns its `SECTION`.
pub const SECTIONS: &[Section] = &[
    super::users::SECTION,
    super::apps::SECTION,
    super::developers::SECTION,
    super::audit::SECTION,
];

/// A section's card on the home page: its counts, each with what it counts.
pub struct Card {
    pub section: &'static Section,
    pub counts: Vec<(&'static str, usize)>,
}

/// The console's frame around a page, for its template (`console.…`).
pub struct Console {
    /// The public base URL without its trailing `/`: links are `{{ console.base }}/admin/…`.
    pub base: String,
    pub csrf_token: String,
    /// The signed-in administrator.
    pub username: String,
    pub sections: &'static [Section],
    /// The path of the page's section (`/admin` on the home page).
    pub current: &'static str,
}
