//! The portal's mail: single-use links (verification: 24 hours; password reset: 1 hour),
//! their messages, and a cap on the mail one address receives (sign-up, "send the link
//! again" and reset requests cannot be used to flood someone's inbox).

use axum::http::StatusCode;

use crate::crypto::{digest_hex, random_token};
use crate::state::AppState;
use crate::store::developers::{Developer, LinkPurpose};
use crate::web::error::{PageError, PageResult};
use crate::web::html::url;

/// Seconds a verification link stays valid.
pub const VERIFY_LIFETIME: i64 = 24 * 3600;
/// Seconds a password-reset link stays valid.
pub const RESET_LIFETIME: i64 = 3600;
/// Messages one address may receive in [`MAIL_WINDOW`]; more are dropped silently (the page
/// answers the same, so nothing is learned about the address).
const MAX_MAILS: i64 = 5;
const MAIL_WINDOW: i64 = 3600;

/// What to mail an account.
pub enum Message {
    /// A link that verifies the address.
    Verify,
    /// Someone signed up with an address that already has an account.
    AlreadyRegistered,
    /// A link to choose a new password.
    Reset,
}

/// Mails `message` to `developer` (with a new link when it carries one). A failure to send
/// is logged and shown as "could not send mail, try again" (503).
pub async fn send(state: &AppState, developer: &Developer, message: Message) -> PageResult<()> {
    let now = crate::fhir::instant::now_secs();
    let key = format!("mail {}", developer.email);
    let sent = state
        .store
        .reserve_login_attempt(&key, now, now - MAIL_WINDOW, MAX_MAILS)
        .await?;
    if sent.count > MAX_MAILS {
        tracing::warn!(account = %developer.account_id, "portal mail dropped: too many to one address");
        return Ok(());
    }
    let config = &state.config;
    let (subject, body) = match message {
        Message::Verify => {
            let link = link(state, developer, LinkPurpose::Verify, now).await?;
            (
                "Verify your Kiln developer account",
                format!(
                    "Hello {name},\n\nto finish creating your developer account on {base}, \
                     open this link within 24 hours:\n\n{verify}?token={link}\n\nIt works \
                     once. If you did not sign up, ignore this message.\n",
                    name = developer.name,
                    base = config.base_url,
                    verify = url(config, "/developer/verify"),
                ),
            )
        }
        Message::AlreadyRegistered => (
            "Your Kiln developer account",
            format!(
                "Hello {name},\n\nsomeone (perhaps you) tried to create a developer account on \
                 {base} with this address, which already has one.\n\nSign in: {signin}\n\
                 Forgot your password? {reset}\n\nIf it was not you, ignore this message.\n",
                name = developer.name,
                base = config.base_url,
                signin = url(config, "/developer/signin"),
                reset = url(config, "/developer/reset"),
            ),
        ),
        Message::Reset => {
            let link = link(state, developer, LinkPurpose::Reset, now).await?;
            (
                "Reset your Kiln developer password",
                format!(
                    "Hello {name},\n\nto choose a new password for your developer account on \
                     {base}, open this link within 1 hour:\n\n{reset}?token={link}\n\nIt works \
                     once. If you did not ask for it, ignore this message: your password stays \
                     as it is.\n",
                    name = developer.name,
                    base = config.base_url,
                    reset = url(config, "/developer/reset/new"),
                ),
            )
        }
    };
    state
        .mailer
        .send(&developer.email, subject, &body)
        .await
        .map_err(|error| {
            tracing::error!(%error, account = %developer.account_id, "portal mail not sent");
            PageError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Could not send mail",
                "Kiln could not send the message. Please try again in a moment.",
            )
        })
}

/// A new single-use link of `purpose` for `developer`: the token to mail (only its digest
/// is stored).
async fn link(
    state: &AppState,
    developer: &Developer,
    purpose: LinkPurpose,
    now: i64,
) -> PageResult<String> {
    let token = random_token();
    let lifetime = match purpose {
        LinkPurpose::Verify => VERIFY_LIFETIME,
        LinkPurpose::Reset => RESET_LIFETIME,
    };
    state
        .store
        .insert_developer_link(
            &digest_hex(&token),
            &developer.account_id,
            purpose,
            now + lifetime,
            now,
        )
        .await?;
    Ok(token)
}
