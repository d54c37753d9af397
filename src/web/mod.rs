//! What every HTML page of Kiln shares — the authorization pages (`auth::pages`), the developer
//! portal, the admin console and the documentation: the page layout and its one stylesheet
//! (served by Kiln, no CDN), rendering and redirects, the security headers every page gets
//! (CSP with `frame-ancestors 'none'`, no caching), browser sessions with their CSRF token,
//! the throttling of sign-in attempts, and the error page. Imports `state`, `store`, `http`
//! and `crypto`; never a page module.

pub mod assets;
pub mod error;
pub mod html;
pub mod session;
pub mod throttle;
