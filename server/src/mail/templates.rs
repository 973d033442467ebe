//! The mails Mudmap sends, as data ([`Template`]) and as rendered text + HTML ([`RenderedMail`]).
//!
//! Every template is built from one small content model (heading, paragraphs, at most one action
//! link, notes) so that the plain-text and HTML versions always say the same thing and carry the
//! same link. The HTML is one inline-styled layout with no external assets (mail clients block
//! them), and every interpolated value is HTML-escaped. Links carry tokens, so neither type prints
//! its fields in `Debug`.

use std::fmt;

/// A mail to send, with everything its text needs. Links are absolute URLs built by the caller.
#[derive(Clone, PartialEq, Eq)]
pub enum Template {
    /// Confirm the address a new account signed up with.
    VerifyEmail { link: String },
    /// A password reset link, valid for `expires_minutes`.
    PasswordReset { link: String, expires_minutes: u32 },
    /// An invitation to join an organisation, valid for `expires_hours`.
    Invitation {
        org_name: String,
        inviter_email: String,
        role: String,
        link: String,
        expires_hours: u32,
    },
    /// To the new member, once they joined an organisation.
    Welcome {
        org_name: String,
        role: String,
        link: String,
    },
    /// To the organisation's owners, when someone joined.
    MemberJoined {
        org_name: String,
        member_email: String,
        role: String,
        link: String,
    },
    /// A firewall was registered (not yet activated).
    DeviceAdded {
        org_name: String,
        device_name: String,
        link: String,
    },
    /// A firewall was activated: Mudmap now manages it.
    DeviceActivated {
        org_name: String,
        device_name: String,
        link: String,
    },
    /// A firewall was removed from the organisation.
    DeviceDeleted {
        org_name: String,
        device_name: String,
        actor_email: String,
    },
    /// A firewall stopped answering; `since` is a human-readable time (e.g. "14:05 UTC").
    DeviceOffline {
        org_name: String,
        device_name: String,
        since: String,
        link: String,
    },
    /// A firewall that was offline answers again.
    DeviceBack {
        org_name: String,
        device_name: String,
        link: String,
    },
    /// A gateway of a firewall went down (dpinger: no answer from its monitor IP); `since` as in
    /// `DeviceOffline`.
    GatewayDown {
        org_name: String,
        device_name: String,
        gateway: String,
        since: String,
        link: String,
    },
    /// A gateway whose "down" mail went out is up again.
    GatewayUp {
        org_name: String,
        device_name: String,
        gateway: String,
        link: String,
    },
    /// Configurations changed outside Mudmap (one mail for the marks of one hold-down);
    /// `more`: there were more than the mail lists.
    ConfigDrift {
        org_name: String,
        devices: Vec<DriftLine>,
        more: bool,
        link: String,
    },
}

/// One firewall in a drift mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftLine {
    pub device_name: String,
    /// When the change was first seen (UTC, formatted).
    pub since: String,
    /// pfSense's record of who made it ("" if it has none).
    pub by: String,
}

/// A rendered mail: what the transport sends.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedMail {
    /// The template's stable name, e.g. `"verify_email"` (logs, file names, a mail header).
    pub template: &'static str,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Links carry tokens: name the template only.
        f.debug_struct("Template")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RenderedMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bodies carry links with tokens: show the template and subject only.
        f.debug_struct("RenderedMail")
            .field("template", &self.template)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// The content model every template fills in; rendered once as text and once as HTML.
struct Content {
    subject: String,
    heading: String,
    paragraphs: Vec<String>,
    /// Button label and link.
    action: Option<(&'static str, String)>,
    /// Smaller print under the action: expiry, "ignore this if it was not you".
    notes: Vec<String>,
}

impl Template {
    /// The stable name of the template, e.g. `"password_reset"`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::VerifyEmail { .. } => "verify_email",
            Self::PasswordReset { .. } => "password_reset",
            Self::Invitation { .. } => "invitation",
            Self::Welcome { .. } => "welcome",
            Self::MemberJoined { .. } => "member_joined",
            Self::DeviceAdded { .. } => "device_added",
            Self::DeviceActivated { .. } => "device_activated",
            Self::DeviceDeleted { .. } => "device_deleted",
            Self::DeviceOffline { .. } => "device_offline",
            Self::DeviceBack { .. } => "device_back",
            Self::GatewayDown { .. } => "gateway_down",
            Self::GatewayUp { .. } => "gateway_up",
            Self::ConfigDrift { .. } => "config_drift",
        }
    }

    /// Render the subject, the plain-text body and the HTML body.
    pub fn render(&self) -> RenderedMail {
        let content = self.content();
        RenderedMail {
            template: self.name(),
            subject: one_line(&content.subject),
            text: render_text(&content),
            html: render_html(&content),
        }
    }

    fn content(&self) -> Content {
        match self {
            Self::VerifyEmail { link } => Content {
                subject: "Confirm your email address for Mudmap".to_owned(),
                heading: "Confirm your email address".to_owned(),
                paragraphs: vec![
                    "Thanks for signing up for Mudmap. Confirm that this address is yours to finish \
                     setting up your account."
                        .to_owned(),
                ],
                action: Some(("Confirm my email address", link.clone())),
                notes: vec![
                    "The link works once and expires after a while. If it has expired, sign in and \
                     ask for a new one."
                        .to_owned(),
                    "If you did not sign up for Mudmap, ignore this email: nothing happens without \
                     the link."
                        .to_owned(),
                ],
            },
            Self::PasswordReset {
                link,
                expires_minutes,
            } => Content {
                subject: "Reset your Mudmap password".to_owned(),
                heading: "Reset your password".to_owned(),
                paragraphs: vec![
                    "Someone, hopefully you, asked to reset the password of your Mudmap account. \
                     Choose a new password with the link below."
                        .to_owned(),
                ],
                action: Some(("Choose a new password", link.clone())),
                notes: vec![
                    format!(
                        "The link works once and expires in {}.",
                        minutes_in_words(*expires_minutes)
                    ),
                    "If you did not ask for this, ignore this email: your password stays as it is."
                        .to_owned(),
                ],
            },
            Self::Invitation {
                org_name,
                inviter_email,
                role,
                link,
                expires_hours,
            } => Content {
                subject: format!("{inviter_email} invited you to {org_name} on Mudmap"),
                heading: format!("Join {org_name} on Mudmap"),
                paragraphs: vec![
                    format!(
                        "{inviter_email} invited you to join the organisation {org_name} on Mudmap, \
                         with the {role} role. Mudmap is where {org_name} monitors and manages its \
                         pfSense firewalls."
                    ),
                    "If you do not have a Mudmap account yet, you can create one when you accept."
                        .to_owned(),
                ],
                action: Some(("Accept the invitation", link.clone())),
                notes: vec![
                    format!(
                        "The invitation expires in {}. After that, ask {inviter_email} for a new one.",
                        hours_in_words(*expires_hours)
                    ),
                    "If you were not expecting this invitation, ignore this email.".to_owned(),
                ],
            },
            Self::Welcome {
                org_name,
                role,
                link,
            } => Content {
                subject: format!("Welcome to {org_name} on Mudmap"),
                heading: format!("Welcome to {org_name}"),
                paragraphs: vec![format!(
                    "You are now a member of {org_name} on Mudmap, with the {role} role. Its \
                     firewalls are on your dashboard."
                )],
                action: Some(("Open Mudmap", link.clone())),
                notes: vec![],
            },
            Self::MemberJoined {
                org_name,
                member_email,
                role,
                link,
            } => Content {
                subject: format!("{member_email} joined {org_name} on Mudmap"),
                heading: format!("A new member joined {org_name}"),
                paragraphs: vec![format!(
                    "{member_email} accepted the invitation and joined {org_name}, with the {role} \
                     role."
                )],
                action: Some(("See the members", link.clone())),
                notes: vec![format!(
                    "You receive this email because you manage {org_name}. If this member should \
                     not have access, remove them on the members page: it takes effect immediately."
                )],
            },
            Self::DeviceAdded {
                org_name,
                device_name,
                link,
            } => Content {
                subject: format!("Firewall {device_name} was added to {org_name}"),
                heading: "A firewall was added".to_owned(),
                paragraphs: vec![
                    format!("The firewall {device_name} was registered in {org_name}."),
                    "Mudmap does not manage it yet: activate it to connect over SSH and install the \
                     Mudmap agent."
                        .to_owned(),
                ],
                action: Some(("Open the firewall", link.clone())),
                notes: vec![
                    "If you did not expect this firewall, delete it on the devices page.".to_owned(),
                ],
            },
            Self::DeviceActivated {
                org_name,
                device_name,
                link,
            } => Content {
                subject: format!("Firewall {device_name} is now managed in {org_name}"),
                heading: "A firewall was activated".to_owned(),
                paragraphs: vec![format!(
                    "Mudmap connected to {device_name} in {org_name}, installed its agent and now \
                     monitors it. Its status and settings are on the firewall's page."
                )],
                action: Some(("Open the firewall", link.clone())),
                notes: vec![],
            },
            Self::DeviceDeleted {
                org_name,
                device_name,
                actor_email,
            } => Content {
                subject: format!("Firewall {device_name} was deleted from {org_name}"),
                heading: "A firewall was deleted".to_owned(),
                paragraphs: vec![format!(
                    "{actor_email} deleted the firewall {device_name} from {org_name}. Mudmap no \
                     longer connects to it."
                )],
                action: None,
                notes: vec![
                    "If this was a mistake, add the firewall again and activate it.".to_owned(),
                ],
            },
            Self::DeviceOffline {
                org_name,
                device_name,
                since,
                link,
            } => Content {
                subject: format!("Firewall {device_name} in {org_name} is unreachable"),
                heading: format!("{device_name} is unreachable"),
                paragraphs: vec![
                    format!(
                        "Mudmap has not been able to reach the firewall {device_name} in {org_name} \
                         since {since}."
                    ),
                    "Check that it is powered on, that its network is up and that it accepts SSH \
                     connections from the Mudmap server. Mudmap keeps trying and emails you when it \
                     is back."
                        .to_owned(),
                ],
                action: Some(("Open the firewall", link.clone())),
                notes: vec![],
            },
            Self::ConfigDrift {
                org_name,
                devices,
                more,
                link,
            } => {
                let subject = match devices.as_slice() {
                    [one] => format!(
                        "Firewall {} in {org_name} was changed outside Mudmap",
                        one.device_name
                    ),
                    _ => format!(
                        "{}{} firewalls in {org_name} were changed outside Mudmap",
                        devices.len(),
                        if *more { "+" } else { "" }
                    ),
                };
                let mut paragraphs = vec![format!(
                    "Mudmap noticed configuration changes it did not make, in {org_name}. Each is \
                     backed up; the firewall's History tab shows what changed."
                )];
                paragraphs.extend(devices.iter().map(|d| {
                    let by = if d.by.is_empty() {
                        String::new()
                    } else {
                        format!(" by {}", d.by)
                    };
                    format!("{}: changed{by}, first seen {}.", d.device_name, d.since)
                }));
                if *more {
                    paragraphs.push("…and more: the fleet page marks every one.".to_owned());
                }
                Content {
                    subject,
                    heading: "Changed outside Mudmap".to_owned(),
                    paragraphs,
                    action: Some((
                        if devices.len() == 1 {
                            "See what changed"
                        } else {
                            "Open the fleet"
                        },
                        link.clone(),
                    )),
                    notes: vec![
                        "If the change was expected, acknowledge it on the firewall's page to clear \
                         the mark."
                            .to_owned(),
                    ],
                }
            }
            Self::DeviceBack {
                org_name,
                device_name,
                link,
            } => Content {
                subject: format!("Firewall {device_name} in {org_name} is reachable again"),
                heading: format!("{device_name} is back"),
                paragraphs: vec![format!(
                    "Mudmap can reach the firewall {device_name} in {org_name} again, and monitors \
                     it as before."
                )],
                action: Some(("Open the firewall", link.clone())),
                notes: vec![],
            },
            Self::GatewayDown {
                org_name,
                device_name,
                gateway,
                since,
                link,
            } => Content {
                subject: format!("Gateway {gateway} on {device_name} ({org_name}) is down"),
                heading: format!("{gateway} is down on {device_name}"),
                paragraphs: vec![
                    format!(
                        "The firewall {device_name} in {org_name} reports its gateway {gateway} \
                         down since {since}: its monitor address does not answer."
                    ),
                    "Traffic routed through this gateway is failing or has moved to another one. \
                     Check the uplink and the provider's status; the firewall's Interfaces tab in \
                     Mudmap shows the gateway's latency and loss. Mudmap emails you when it is \
                     back up."
                        .to_owned(),
                ],
                action: Some(("Open the firewall", link.clone())),
                notes: vec![],
            },
            Self::GatewayUp {
                org_name,
                device_name,
                gateway,
                link,
            } => Content {
                subject: format!("Gateway {gateway} on {device_name} ({org_name}) is back up"),
                heading: format!("{gateway} is back up on {device_name}"),
                paragraphs: vec![format!(
                    "The firewall {device_name} in {org_name} reports its gateway {gateway} up \
                     again."
                )],
                action: Some(("Open the firewall", link.clone())),
                notes: vec![],
            },
        }
    }
}

fn render_text(content: &Content) -> String {
    let mut out = String::new();
    out.push_str(&content.heading);
    out.push_str("\n\n");
    for paragraph in &content.paragraphs {
        out.push_str(paragraph);
        out.push_str("\n\n");
    }
    if let Some((label, link)) = &content.action {
        out.push_str(label);
        out.push_str(":\n");
        out.push_str(link);
        out.push_str("\n\n");
    }
    for note in &content.notes {
        out.push_str(note);
        out.push_str("\n\n");
    }
    out.push_str("-- \nSent by Mudmap\n");
    out
}

const FONT: &str =
    "font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;";

fn render_html(content: &Content) -> String {
    let mut body = String::new();
    body.push_str(&format!(
        "<h1 style=\"margin:0 0 16px;font-size:20px;line-height:1.3;color:#1b1f24;\">{}</h1>\n",
        escape_html(&content.heading)
    ));
    for paragraph in &content.paragraphs {
        body.push_str(&format!(
            "<p style=\"margin:0 0 16px;\">{}</p>\n",
            escape_html(paragraph)
        ));
    }
    if let Some((label, link)) = &content.action {
        let href = escape_html(link);
        body.push_str(&format!(
            "<p style=\"margin:24px 0;\"><a href=\"{href}\" style=\"display:inline-block;\
             background:#1f5fbf;color:#ffffff;text-decoration:none;font-weight:600;\
             padding:10px 18px;border-radius:6px;\">{}</a></p>\n\
             <p style=\"margin:0 0 16px;font-size:13px;color:#5b6470;\">If the button does not \
             work, copy this address into your browser:<br>\
             <a href=\"{href}\" style=\"color:#1f5fbf;word-break:break-all;\">{href}</a></p>\n",
            escape_html(label)
        ));
    }
    for note in &content.notes {
        body.push_str(&format!(
            "<p style=\"margin:0 0 12px;font-size:13px;color:#5b6470;\">{}</p>\n",
            escape_html(note)
        ));
    }
    format!(
        "<!DOCTYPE html>\n\
         <html lang=\"en\">\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n\
         </head>\n\
         <body style=\"margin:0;padding:0;background:#f6f7f9;\">\n\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" \
         style=\"background:#f6f7f9;\">\n\
         <tr><td align=\"center\" style=\"padding:24px 12px;\">\n\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" \
         style=\"max-width:560px;background:#ffffff;border:1px solid #d9dde3;border-radius:10px;\">\n\
         <tr><td style=\"padding:16px 28px;border-bottom:1px solid #d9dde3;{FONT}font-size:16px;\
         font-weight:600;color:#1b1f24;\">Mudmap</td></tr>\n\
         <tr><td style=\"padding:24px 28px 12px;{FONT}font-size:14px;line-height:1.5;color:#1b1f24;\">\n\
         {body}\
         </td></tr>\n\
         </table>\n\
         <p style=\"margin:16px 0 0;{FONT}font-size:12px;color:#5b6470;\">Sent by Mudmap</p>\n\
         </td></tr>\n\
         </table>\n\
         </body>\n\
         </html>\n",
        title = escape_html(&content.subject),
    )
}

/// Escape text for HTML element content and double- or single-quoted attribute values.
pub fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A subject is one line: control characters (a newline in an org name) become spaces.
fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn minutes_in_words(minutes: u32) -> String {
    if minutes >= 60 && minutes.is_multiple_of(60) {
        hours_in_words(minutes / 60)
    } else if minutes == 1 {
        "1 minute".to_owned()
    } else {
        format!("{minutes} minutes")
    }
}

fn hours_in_words(hours: u32) -> String {
    if hours >= 48 && hours.is_multiple_of(24) {
        format!("{} days", hours / 24)
    } else if hours == 1 {
        "1 hour".to_owned()
    } else {
        format!("{hours} hours")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "https://mudmap.example.com/x?token=t0k3n&next=%2F";

    fn all() -> Vec<Template> {
        let s = |v: &str| v.to_owned();
        vec![
            Template::VerifyEmail { link: s(LINK) },
            Template::PasswordReset {
                link: s(LINK),
                expires_minutes: 30,
            },
            Template::Invitation {
                org_name: s("Acme"),
                inviter_email: s("owner@acme.test"),
                role: s("admin"),
                link: s(LINK),
                expires_hours: 72,
            },
            Template::Welcome {
                org_name: s("Acme"),
                role: s("member"),
                link: s(LINK),
            },
            Template::MemberJoined {
                org_name: s("Acme"),
                member_email: s("new@acme.test"),
                role: s("member"),
                link: s(LINK),
            },
            Template::DeviceAdded {
                org_name: s("Acme"),
                device_name: s("fw-paris"),
                link: s(LINK),
            },
            Template::DeviceActivated {
                org_name: s("Acme"),
                device_name: s("fw-paris"),
                link: s(LINK),
            },
            Template::DeviceDeleted {
                org_name: s("Acme"),
                device_name: s("fw-paris"),
                actor_email: s("owner@acme.test"),
            },
            Template::DeviceOffline {
                org_name: s("Acme"),
                device_name: s("fw-paris"),
                since: s("14:05 UTC"),
                link: s(LINK),
            },
            Template::DeviceBack {
                org_name: s("Acme"),
                device_name: s("fw-paris"),
                link: s(LINK),
            },
            Template::GatewayDown {
                org_name: s("Acme"),
                device_name: s("fw-paris"),
                gateway: s("WAN_DHCP"),
                since: s("14:05 UTC"),
                link: s(LINK),
            },
            Template::GatewayUp {
                org_name: s("Acme"),
                device_name: s("fw-paris"),
                gateway: s("WAN_DHCP"),
                link: s(LINK),
            },
        ]
    }

    #[test]
    fn every_template_renders_with_subject_and_link_in_both_bodies() {
        let templates = all();
        let mut names: Vec<&str> = templates.iter().map(Template::name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 12, "template names must be distinct");

        for template in &templates {
            let mail = template.render();
            assert_eq!(mail.template, template.name());
            assert!(!mail.subject.trim().is_empty(), "{}", mail.template);
            assert!(!mail.subject.contains('\n'), "{}", mail.template);
            assert!(mail.text.contains("Mudmap"), "{}", mail.template);
            assert!(
                mail.html.starts_with("<!DOCTYPE html>"),
                "{}",
                mail.template
            );
            assert!(
                mail.html.trim_end().ends_with("</html>"),
                "{}",
                mail.template
            );
            assert!(!mail.html.contains("http://fonts"), "no external assets");
            if matches!(template, Template::DeviceDeleted { .. }) {
                assert!(
                    !mail.text.contains("https://"),
                    "device_deleted has no link"
                );
                continue;
            }
            assert!(mail.text.contains(LINK), "{}: link in text", mail.template);
            let escaped = LINK.replace('&', "&amp;");
            assert!(
                mail.html.contains(&format!("href=\"{escaped}\"")),
                "{}: link in html",
                mail.template
            );
        }
    }

    #[test]
    fn the_copy_says_what_to_do() {
        let reset = Template::PasswordReset {
            link: LINK.to_owned(),
            expires_minutes: 60,
        }
        .render();
        assert!(reset.text.contains("expires in 1 hour"), "{}", reset.text);
        assert!(reset.text.contains("ignore this email"));

        let verify = Template::VerifyEmail {
            link: LINK.to_owned(),
        }
        .render();
        assert_eq!(verify.template, "verify_email");
        assert!(verify.text.contains("expires"));
        assert!(verify.text.contains("did not sign up"));

        let invitation = all().swap_remove(2).render();
        assert_eq!(
            invitation.subject,
            "owner@acme.test invited you to Acme on Mudmap"
        );
        assert!(invitation.text.contains("expires in 3 days"));
        assert!(invitation.text.contains("admin role"));

        let offline = all().swap_remove(8).render();
        assert!(offline.text.contains("since 14:05 UTC"));
    }

    #[test]
    fn interpolated_values_are_escaped_in_html() {
        let mail = Template::Welcome {
            org_name: "<script>alert(1)</script> & \"Co\"".to_owned(),
            role: "member".to_owned(),
            link: "https://x.test/a?b=1&c=\"><img src=x>".to_owned(),
        }
        .render();
        assert!(!mail.html.contains("<script>"), "{}", mail.html);
        assert!(!mail.html.contains("<img"), "{}", mail.html);
        assert!(mail
            .html
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;"));
        assert!(mail
            .html
            .contains("href=\"https://x.test/a?b=1&amp;c=&quot;&gt;&lt;img src=x&gt;\""));
        // The text version is not HTML: it keeps the value as written.
        assert!(mail.text.contains("<script>alert(1)</script> & \"Co\""));
        // The subject is a header: one line, not escaped.
        assert_eq!(
            mail.subject,
            "Welcome to <script>alert(1)</script> & \"Co\" on Mudmap"
        );
    }

    #[test]
    fn subjects_are_one_line() {
        let mail = Template::DeviceBack {
            org_name: "Acme\r\nBcc: victim@example.com".to_owned(),
            device_name: "fw".to_owned(),
            link: LINK.to_owned(),
        }
        .render();
        assert!(!mail.subject.contains('\n') && !mail.subject.contains('\r'));
        assert!(mail.subject.contains("Acme  Bcc"));
    }

    #[test]
    fn escape_html_escapes_the_five_characters() {
        assert_eq!(
            escape_html(r#"<a href='x'>"&"</a>"#),
            "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(escape_html("plain text é"), "plain text é");
    }

    #[test]
    fn debug_output_hides_links() {
        let template = Template::VerifyEmail {
            link: LINK.to_owned(),
        };
        assert!(!format!("{template:?}").contains("t0k3n"));
        assert!(!format!("{:?}", template.render()).contains("t0k3n"));
    }

    #[test]
    fn durations_in_words() {
        assert_eq!(minutes_in_words(1), "1 minute");
        assert_eq!(minutes_in_words(30), "30 minutes");
        assert_eq!(minutes_in_words(120), "2 hours");
        assert_eq!(hours_in_words(1), "1 hour");
        assert_eq!(hours_in_words(24), "24 hours");
        assert_eq!(hours_in_words(168), "7 days");
    }
}
