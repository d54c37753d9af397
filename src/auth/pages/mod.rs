//! The browser side of the authorization server: the HTML pages a person sees, one file per
//! page with its handlers, its template and its text — `authorize` (the request's outcome and
//! the first page), `login`, `patient` (picker), `encounter` (picker), `consent`, `ehr` (Kiln
//! as the EHR, launching apps), `apps` (connected apps, sign out) — and what they share:
//! `steps` (which page comes next), `app_card` (the app's name, logo and links), `session` (cookies, CSRF), `records` (the FHIR reads the
//! pages show), `html` (rendering, redirects, headers) and `error` (the error page). Protocol
//! decisions come from `oauth` (the request's checks, issuing a code); `oauth` never imports
//! the pages.

pub mod app_card;
pub mod apps;
pub mod authorize;
pub mod consent;
pub mod ehr;
pub mod encounter;
pub mod login;
pub mod patient;
pub mod records;
mod steps;
