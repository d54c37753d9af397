//! The app a person is asked about, as the sign-in and consent pages show it: for a client
//! that belongs to a registered app (`Client.app_id`), the name, logo and links (app URL,
//! privacy policy, terms) of the app's approved revision; for any other client its name.

use crate::apps::request::AppRequest;
use crate::store::Store;
use crate::store::auth::Client;
use crate::web::error::PageResult;

/// What the pages show of an app.
pub struct AppCard {
    pub name: String,
    /// The logo's digest (served at `/apps/logo/{digest}`).
    pub logo: Option<String>,
    pub app_url: Option<String>,
    pub privacy_url: Option<String>,
    pub terms_url: Option<String>,
}

impl AppCard {
    pub fn has_links(&self) -> bool {
        self.app_url.is_some() || self.privacy_url.is_some() || self.terms_url.is_some()
    }
}

/// The card of `client`.
pub async fn of_client(store: &Store, client: &Client) -> PageResult<AppCard> {
    let plain = AppCard {
        name: client.name.clone(),
        logo: None,
        app_url: None,
        privacy_url: None,
        terms_url: None,
    };
    let Some(app_id) = &client.app_id else {
        return Ok(plain);
    };
    let Some(active) = store.app(app_id).await?.and_then(|app| app.active_revision) else {
        return Ok(plain);
    };
    let revisions = store.app_revisions(app_id).await?;
    let Some(row) = revisions.iter().find(|row| row.revision == active) else {
        return Ok(plain);
    };
    let request: AppRequest = serde_json::from_str(&row.request).unwrap_or_default();
    let link = |url: &str| {
        let url = url.trim();
        (url.starts_with("https://") || url.starts_with("http://")).then(|| url.to_string())
    };
    Ok(AppCard {
        name: if request.name.trim().is_empty() {
            client.name.clone()
        } else {
            request.name.trim().to_string()
        },
        logo: request
            .logo
            .filter(|digest| digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit())),
        app_url: link(&request.app_url),
        privacy_url: link(&request.privacy_url),
        terms_url: link(&request.terms_url),
    })
}
