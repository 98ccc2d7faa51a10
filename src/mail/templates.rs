//! Barong's mailer templates: e-mail confirmation, password reset and the
//! "New Login" notice, in English and Russian. A language without a template falls back to
//! English. Every value put into the HTML is escaped.

use crate::domain::NewMail;

/// What every template needs from the settings.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `BARONG_DOMAIN`: prefix of the links.
    pub domain: String,
    /// `BARONG_SMTP_LOGO_LINK`.
    pub logo: String,
}

/// The languages we have templates for; anything else is sent in English.
fn supported(language: &str) -> &'static str {
    match language.to_lowercase().as_str() {
        "ru" => "ru",
        _ => "en",
    }
}

/// Escapes text for HTML content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn layout(settings: &MailSettings, content: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<body style=\"font-family: Arial, sans-serif;\">\n\
         <div><img src=\"{logo}\" alt=\"logo\" height=\"40\"></div>\n{content}\n\
         <hr>\n<p style=\"color: #888888; font-size: 12px;\">This is an automated message, \
         please do not reply. / Это автоматическое сообщение, не отвечайте на него.</p>\n\
         </body>\n</html>\n",
        logo = escape_html(&settings.logo)
    )
}

fn button(href: &str, label: &str) -> String {
    format!(
        "<p><a href=\"{}\" style=\"background: #2f80ed; color: #ffffff; padding: 10px 20px; \
         text-decoration: none;\">{label}</a></p>\n<p>{}</p>",
        escape_html(href),
        escape_html(href)
    )
}

/// `user.email.confirmation.token`: "Registration Confirmation".
pub fn confirmation(settings: &MailSettings, email: &str, token: &str, language: &str) -> NewMail {
    let lang = supported(language);
    let link = format!(
        "{}/accounts/confirmation?confirmation_token={token}&lang={lang}",
        settings.domain
    );
    let email_html = escape_html(email);
    let (subject, content) = match lang {
        "ru" => (
            "Подтверждение Регистрации",
            format!(
                "<h2>Здравствуйте!</h2>\n<p>Используйте эту ссылку, чтобы подтвердить ваш \
                 адрес электронной почты {email_html}.</p>\n{}",
                button(&link, "Подтвердить")
            ),
        ),
        _ => (
            "Registration Confirmation",
            format!(
                "<h2>Hello!</h2>\n<p>Use this unique link to confirm your email \
                 {email_html}.</p>\n{}",
                button(&link, "Confirm")
            ),
        ),
    };
    NewMail {
        kind: "email_confirmation".into(),
        recipient: email.into(),
        language: lang.into(),
        subject: subject.into(),
        body_html: layout(settings, &content),
        confirmation: None,
    }
}

/// `user.password.reset.token`: "Password Reset".
pub fn password_reset(
    settings: &MailSettings,
    email: &str,
    token: &str,
    language: &str,
) -> NewMail {
    let lang = supported(language);
    let link = format!(
        "{}/accounts/password_reset?reset_token={token}&lang={lang}",
        settings.domain
    );
    let email_html = escape_html(email);
    let (subject, content) = match lang {
        "ru" => (
            "Сброс Пароля",
            format!(
                "<h2>Здравствуйте!</h2>\n<p>Используйте эту ссылку, чтобы сбросить пароль \
                 для {email_html}.</p>\n{}",
                button(&link, "Сбросить")
            ),
        ),
        _ => (
            "Password Reset",
            format!(
                "<h2>Hello!</h2>\n<p>Use this unique link to reset your password for \
                 {email_html}.</p>\n{}",
                button(&link, "Reset")
            ),
        ),
    };
    NewMail {
        kind: "password_reset".into(),
        recipient: email.into(),
        language: lang.into(),
        subject: subject.into(),
        body_html: layout(settings, &content),
        confirmation: None,
    }
}

/// `session.create`: "New Login".
pub fn new_login(
    settings: &MailSettings,
    email: &str,
    ip: &str,
    user_agent: &str,
    language: &str,
) -> NewMail {
    let lang = supported(language);
    let (ip, agent) = (escape_html(ip), escape_html(user_agent));
    let (subject, content) = match lang {
        "ru" => (
            "Новый Вход",
            format!(
                "<h2>Здравствуйте!</h2>\n<p>Мы обнаружили вход в ваш аккаунт.</p>\n\
                 <p>IP-адрес: {ip}</p>\n<p>Браузер: {agent}</p>\n<p>Если это были не вы, \
                 немедленно смените пароль.</p>"
            ),
        ),
        _ => (
            "New Login",
            format!(
                "<h2>Hello!</h2>\n<p>We detected a login to your account.</p>\n\
                 <p>IP address: {ip}</p>\n<p>User agent: {agent}</p>\n<p>If this was not you, \
                 change your password immediately.</p>"
            ),
        ),
    };
    NewMail {
        kind: "new_login".into(),
        recipient: email.into(),
        language: lang.into(),
        subject: subject.into(),
        body_html: layout(settings, &content),
        confirmation: None,
    }
}

/// What the new-device notice tells: the device, the address and its country, the time.
pub struct DeviceNotice<'a> {
    pub device: &'a str,
    pub ip: &'a str,
    pub country: Option<&'a str>,
    pub time: &'a str,
}

/// `session.new_device`: "New Device".
pub fn new_device(
    settings: &MailSettings,
    email: &str,
    notice: &DeviceNotice<'_>,
    language: &str,
) -> NewMail {
    let lang = supported(language);
    let device = escape_html(notice.device);
    let ip = escape_html(notice.ip);
    let country = notice.country.map(escape_html);
    let time = escape_html(notice.time);
    let (subject, content) = match lang {
        "ru" => {
            let place = country.map(|c| format!(" ({c})")).unwrap_or_default();
            (
                "Вход с Нового Устройства",
                format!(
                    "<h2>Здравствуйте!</h2>\n<p>В ваш аккаунт вошли с устройства или из сети, \
                     которых мы раньше не видели.</p>\n<p>Устройство: {device}</p>\n\
                     <p>IP-адрес: {ip}{place}</p>\n<p>Время: {time}</p>\n<p>Если это были \
                     не вы, завершите этот сеанс и немедленно смените пароль.</p>"
                ),
            )
        }
        _ => {
            let place = country.map(|c| format!(" ({c})")).unwrap_or_default();
            (
                "New Device",
                format!(
                    "<h2>Hello!</h2>\n<p>Your account was signed in to from a device or \
                     network we have not seen before.</p>\n<p>Device: {device}</p>\n\
                     <p>IP address: {ip}{place}</p>\n<p>Time: {time}</p>\n<p>If this was \
                     not you, end that session and change your password immediately.</p>"
                ),
            )
        }
    };
    NewMail {
        kind: "new_device".into(),
        recipient: email.into(),
        language: lang.into(),
        subject: subject.into(),
        body_html: layout(settings, &content),
        confirmation: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> MailSettings {
        MailSettings {
            domain: "https://example.com".into(),
            logo: "https://example.com/logo.png".into(),
        }
    }

    #[test]
    fn links_and_languages() {
        let m = confirmation(&settings(), "a@b.com", "tok.en.x", "RU");
        assert_eq!(m.subject, "Подтверждение Регистрации");
        assert!(m.body_html.contains(
            "https://example.com/accounts/confirmation?confirmation_token=tok.en.x&amp;lang=ru"
        ));
        let m = password_reset(&settings(), "a@b.com", "t", "fr");
        assert_eq!(
            (m.subject.as_str(), m.language.as_str()),
            ("Password Reset", "en")
        );
        assert!(
            m.body_html
                .contains("/accounts/password_reset?reset_token=t&amp;lang=en")
        );
        let m = new_login(&settings(), "a@b.com", "1.2.3.4", "<script>", "en");
        assert!(m.body_html.contains("&lt;script&gt;"));
    }
}
