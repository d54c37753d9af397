//! What the portal's forms accept: the password policy, the shape of an e-mail address and
//! the short texts (name, organization) — each refusal worded for the field it is shown by.

/// Shortest and longest password accepted (in characters).
const PASSWORD_MIN: usize = 8;
const PASSWORD_MAX: usize = 128;
/// Longest name or organization accepted (in characters).
const TEXT_MAX: usize = 200;
/// Longest e-mail address (RFC 5321's path limit less the brackets).
const EMAIL_MAX: usize = 254;

/// The password policy: 8 to 128 characters with at least one capital letter and one
/// special character (neither a letter nor a digit). `None` when it is met.
pub fn password_problem(password: &str) -> Option<String> {
    let length = password.chars().count();
    if length > PASSWORD_MAX {
        return Some(format!("Use at most {PASSWORD_MAX} characters."));
    }
    let mut missing = Vec::new();
    if length < PASSWORD_MIN {
        missing.push(format!("at least {PASSWORD_MIN} characters"));
    }
    if !password.chars().any(char::is_uppercase) {
        missing.push("a capital letter".to_string());
    }
    if !password.chars().any(|c| !c.is_alphanumeric()) {
        missing.push("a special character (not a letter or digit)".to_string());
    }
    match missing.as_slice() {
        [] => None,
        _ => Some(format!("The password needs {}.", missing.join(", "))),
    }
}

/// A new password and its confirmation: the policy, then the match.
pub fn new_password_problems(
    password: &str,
    confirm: &str,
) -> (Option<String>, Option<&'static str>) {
    let policy = password_problem(password);
    let mismatch =
        (policy.is_none() && password != confirm).then_some("The passwords do not match.");
    (policy, mismatch)
}

/// An e-mail address of the usual shape (`local@domain.tld`, no spaces), lower-cased.
pub fn email(raw: &str) -> Result<String, &'static str> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err("Enter your e-mail address.");
    }
    let shaped = email.len() <= EMAIL_MAX
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"\\()[]".contains(c))
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && domain.split('.').all(|label| {
                    !label.is_empty() && !label.starts_with('-') && !label.ends_with('-')
                })
        });
    if shaped {
        Ok(email)
    } else {
        Err("Enter an e-mail address like name@example.org.")
    }
}

/// A name or organization: trimmed, at most 200 characters, no control characters; `None`
/// when empty.
pub fn text(raw: &str, what: &str) -> Result<Option<String>, String> {
    let text = raw.trim();
    if text.chars().count() > TEXT_MAX {
        return Err(format!("Keep the {what} to {TEXT_MAX} characters."));
    }
    if text.chars().any(char::is_control) {
        return Err(format!(
            "The {what} cannot contain line breaks or control characters."
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_policy() {
        assert_eq!(password_problem("Secret!1"), None);
        assert_eq!(password_problem("Ünïcode köln €"), None);
        let short = password_problem("Ab!").unwrap();
        assert!(short.contains("at least 8 characters"), "{short}");
        let no_capital = password_problem("secret!12").unwrap();
        assert!(no_capital.contains("capital"), "{no_capital}");
        assert!(!no_capital.contains("special"), "{no_capital}");
        let no_special = password_problem("Secret123").unwrap();
        assert!(no_special.contains("special"), "{no_special}");
        let all = password_problem("abc").unwrap();
        assert!(all.contains("8") && all.contains("capital") && all.contains("special"));
        assert!(
            password_problem(&format!("A!{}", "x".repeat(127)))
                .unwrap()
                .contains("at most")
        );
        assert_eq!(password_problem(&format!("A!{}", "x".repeat(126))), None);
        assert_eq!(
            new_password_problems("Secret!1", "Secret!2").1,
            Some("The passwords do not match.")
        );
    }

    #[test]
    fn email_shapes() {
        assert_eq!(email(" Dev@Example.ORG ").unwrap(), "dev@example.org");
        assert_eq!(
            email("a.b+tag@sub.example.co.uk").unwrap(),
            "a.b+tag@sub.example.co.uk"
        );
        for bad in [
            "",
            "dev",
            "dev@",
            "@example.org",
            "dev@example",
            "de v@example.org",
            "dev@@example.org",
            "a@b@example.org",
            "dev@example..org",
            "<dev@example.org>",
            "dev@-example.org",
        ] {
            assert!(email(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn short_texts() {
        assert_eq!(
            text("  Acme  ", "organization").unwrap().as_deref(),
            Some("Acme")
        );
        assert_eq!(text("   ", "name").unwrap(), None);
        assert!(text("a\nb", "name").is_err());
        assert!(text(&"x".repeat(201), "name").is_err());
    }
}
