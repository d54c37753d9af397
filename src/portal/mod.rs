//! The developer portal at `/developer` and Kiln's landing page at `/`: developer accounts
//! (sign-up with the password policy, e-mail verification, sign-in and out, password reset),
//! the "My Applications" home and the developer's apps; on a sandbox deployment, each
//! developer's test personas (`sandbox`) and the launch simulator (`simulator`). One file per
//! page or flow — `landing`, `account` (sign-up, verification), `signin` (in and out), `reset`,
//! `home`, `apps` (the app pages, over `crate::apps`) with `app_form` (the registration form)
//! and `terms` (the operator's terms), `logo` (app logos at `/apps/logo/…`), `simulator` — and
//! what they share:
//! `signed_in` (the developer of this browser, for every page behind sign-in), `checks`
//! (what the forms accept), `mail` (the mailed single-use links) and `notice` (one-message
//! pages). Pages come from `web` (layout, sessions, CSRF, errors); accounts from
//! `store::developers`; mail goes out through the state's `Mailer`. From `auth` only the
//! pages' record lookups, the EHR launch and the token endpoint (the simulator); `auth`
//! never imports the portal.

pub mod account;
mod app_form;
pub mod apps;
mod checks;
pub mod home;
pub mod landing;
pub mod logo;
mod mail;
mod notice;
pub mod reset;
pub mod sandbox;
pub mod signed_in;
pub mod signin;
pub mod simulator;
pub mod terms;
