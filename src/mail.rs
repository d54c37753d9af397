//! Outgoing mail: plain-text messages (the developer portal's verification and reset links)
//! sent over SMTP with `lettre`, configured by `KILN_SMTP_URL` and `KILN_MAIL_FROM`. With no
//! SMTP server configured, a message is written to the log instead (INFO), link included, so
//! a developer machine works without one. Imports only `config`.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::MailConfig;

/// Seconds one message may take to send (connect, TLS, the SMTP dialogue) before it fails.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// Sends Kiln's mail; cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
}

/// Why mail could not be set up or sent.
#[derive(Debug)]
pub enum MailError {
    /// `KILN_SMTP_URL` or `KILN_MAIL_FROM` is unusable (at start).
    Config(String),
    /// The recipient's address is not one mail can go to.
    Recipient(String),
    /// The SMTP server could not be reached or refused the message.
    Send(String),
}

impl std::fmt::Display for MailError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MailError::Config(detail) => write!(formatter, "mail settings: {detail}"),
            MailError::Recipient(detail) => write!(formatter, "mail recipient: {detail}"),
            MailError::Send(detail) => write!(formatter, "sending mail failed: {detail}"),
        }
    }
}

impl std::error::Error for MailError {}

impl Mailer {
    /// The mailer of `config`: SMTP when `smtp_url` is set (`smtp://host:port`,
    /// `smtps://user:pass@host`, `smtp://host?tls=required`), the log otherwise.
    pub fn from_config(config: &MailConfig) -> Result<Mailer, MailError> {
        let from = config.mail_from.parse::<Mailbox>().map_err(|error| {
            MailError::Config(format!("KILN_MAIL_FROM {:?}: {error}", config.mail_from))
        })?;
        let transport = match &config.smtp_url {
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    // The URL may hold a password: only the error kind is shown.
                    .map_err(|error| MailError::Config(format!("KILN_SMTP_URL: {error}")))?
                    .timeout(Some(SEND_TIMEOUT))
                    .build(),
            ),
            None => None,
        };
        Ok(Mailer { transport, from })
    }

    /// Whether mail goes out over SMTP (rather than to the log).
    pub fn is_configured(&self) -> bool {
        self.transport.is_some()
    }

    /// Sends a plain-text message to `to` (an address, e.g. `dev@example.org`).
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), MailError> {
        let recipient = to
            .parse::<Mailbox>()
            .map_err(|error| MailError::Recipient(error.to_string()))?;
        let Some(transport) = &self.transport else {
            tracing::info!(
                to = %recipient,
                subject,
                body,
                "mail not sent: no SMTP server is configured (KILN_SMTP_URL); the message follows"
            );
            return Ok(());
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(recipient)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|error| MailError::Recipient(error.to_string()))?;
        transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|error| MailError::Send(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(smtp_url: Option<&str>, from: &str) -> MailConfig {
        MailConfig {
            smtp_url: smtp_url.map(|url| url.to_string().into()),
            mail_from: from.to_string(),
        }
    }

    #[test]
    fn settings_are_checked_at_start() {
        let default = Mailer::from_config(&MailConfig::default()).expect("default settings");
        assert!(!default.is_configured());
        for url in [
            "smtp://127.0.0.1:2525",
            "smtps://user:pass@mail.example.org",
            "smtp://mail.example.org?tls=required",
        ] {
            let mailer = Mailer::from_config(&config(Some(url), "Kiln <kiln@example.org>"))
                .unwrap_or_else(|error| panic!("{url}: {error}"));
            assert!(mailer.is_configured());
        }
        assert!(Mailer::from_config(&config(Some("http://mail.example.org"), "a@b.org")).is_err());
        assert!(Mailer::from_config(&config(None, "not an address")).is_err());
    }

    #[test]
    fn a_password_in_the_url_stays_out_of_errors() {
        let error = Mailer::from_config(&config(Some("ftp://user:hunter2@host"), "a@b.org"))
            .err()
            .expect("refused");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}
