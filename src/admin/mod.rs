//! The admin console at `/admin`, for EHR users with the admin role: one page module per
//! section (`users`: EHR user management; `apps`: the review queue and app management;
//! `developers`: developer accounts; `audit`: the audit log's report), the home page with each section's counts
//! (`home`), the section navigation around every page (`nav`), and the one door every
//! handler passes (`guard::Admin`: a signed-in admin, and on a POST the CSRF token). Pages use
//! `crate::web` (layout, sessions, errors) and Kiln's login form (`auth::pages::login`).
//! Imports the store, the application state, `apps` (the lifecycle), `web`, `http` and
//! `auth`'s login page; nothing imports the console but the router.

pub mod apps;
pub mod audit;
pub mod developers;
pub mod guard;
pub mod home;
pub mod nav;
pub mod users;
