//! Accounts, organisations and roles through the real path: a server booted on loopback, server
//! functions called over HTTP, mail delivered over SMTP to a sink started by the test.

use std::time::Duration;

use crate::support::{capture_logs, token_in, with_smtp, Api, TestDbRef, TestServer};
use mudmap::mail::sink::{ReceivedMail, SmtpSink};
use serde_json::{json, Value};

const PASSWORD: &str = "plover-granite-tundra-42";

pub(crate) struct Env {
    pub(crate) server: TestServer,
    sink: SmtpSink,
}

pub(crate) async fn start(db: &TestDbRef) -> Env {
    let sink = SmtpSink::start("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let settings = with_smtp(db.settings.clone(), sink.addr());
    let server = TestServer::start(settings).await;
    Env { server, sink }
}

impl Env {
    /// The next mail to `to` whose subject contains `subject` (waits for it).
    async fn mail(&self, to: &str, subject: &str) -> ReceivedMail {
        for _ in 0..200 {
            let found = self.sink.messages().into_iter().find(|m| {
                m.to.iter().any(|t| t.contains(to))
                    && m.header("subject").is_some_and(|s| s.contains(subject))
            });
            if let Some(mail) = found {
                return mail;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no mail to {to} about {subject:?}; got {:?}",
            self.sink
                .messages()
                .iter()
                .map(|m| (m.to.clone(), m.header("subject")))
                .collect::<Vec<_>>()
        );
    }

    /// How many mails to `to` have a subject containing `subject` so far.
    fn mails_about(&self, to: &str, subject: &str) -> usize {
        self.sink
            .messages()
            .iter()
            .filter(|m| {
                m.to.iter().any(|t| t.contains(to))
                    && m.header("subject").is_some_and(|s| s.contains(subject))
            })
            .count()
    }

    fn mails_to(&self, to: &str) -> usize {
        self.sink
            .messages()
            .iter()
            .filter(|m| m.to.iter().any(|t| t.contains(to)))
            .count()
    }

    /// Register `email`, open the verification link from the mail, sign in.
    pub(crate) async fn member(&self, email: &str, org: &str) -> Api {
        let api = Api::new(&self.server);
        let (status, body) = api
            .call(
                "auth/register",
                &[("email", email), ("password", PASSWORD), ("org_name", org)],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let mail = self.mail(email, "Confirm").await;
        let token = token_in(&mail, "/verify-email");
        let (status, body) = api.call("auth/verify-email", &[("token", &token)]).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = api
            .call("auth/login", &[("email", email), ("password", PASSWORD)])
            .await;
        assert_eq!(status, 200, "{body}");
        api
    }
}

async fn me(api: &Api) -> Value {
    let (status, body) = api.call("auth/me", &[]).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn error_text(body: &Value) -> String {
    body.as_object()
        .and_then(|o| o.values().next())
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

async fn sign_up_verify_and_sign_in_with_mail_over_smtp(db: &TestDbRef) {
    // Every log line of this process, at every level, from before the server starts.
    let logs = capture_logs();
    let env = start(db).await;
    let api = Api::new(&env.server);
    // Bad input is refused with a sentence and creates nothing.
    let (status, body) = api
        .call(
            "auth/register",
            &[
                ("email", "not-an-address"),
                ("password", PASSWORD),
                ("org_name", ""),
            ],
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = api
        .call(
            "auth/register",
            &[
                ("email", "ann@example.com"),
                ("password", "password123"),
                ("org_name", ""),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(!error_text(&body).is_empty());

    let (status, body) = api
        .call(
            "auth/register",
            &[
                ("email", "Ann@Example.com"),
                ("password", PASSWORD),
                ("org_name", "Ann's MSP"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["VerificationSent"]["email"], "ann@example.com");
    // A second registration for the same address is refused.
    let (status, _) = api
        .call(
            "auth/register",
            &[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("org_name", ""),
            ],
        )
        .await;
    assert_eq!(status, 409);

    // Signing in before verifying says what to do.
    let (status, body) = api
        .call(
            "auth/login",
            &[("email", "ann@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.get("Unverified").is_some(), "{body}");

    let mail = env.mail("ann@example.com", "Confirm").await;
    assert!(
        mail.header("message-id").unwrap().ends_with("@mudmap>"),
        "the job id names the message"
    );
    let token = token_in(&mail, "/verify-email");
    let (status, body) = api.call("auth/verify-email", &[("token", &token)]).await;
    assert_eq!((status, body.as_str()), (200, Some("ann@example.com")));
    // Single use.
    let (status, _) = api.call("auth/verify-email", &[("token", &token)]).await;
    assert_eq!(status, 409);
    // A forged token (right id, wrong MAC) is not valid.
    let forged = format!("{}.AAAA", token.split('.').next().unwrap());
    let (status, _) = api.call("auth/verify-email", &[("token", &forged)]).await;
    assert_eq!(status, 422);

    let (status, body) = api
        .call(
            "auth/login",
            &[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("next", "/settings"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["SignedIn"]["next"], "/settings");
    let me = me(&api).await;
    assert_eq!(me["email"], "ann@example.com");
    assert_eq!(me["current"]["name"], "Ann's MSP");
    assert_eq!(me["current"]["role"], "owner");
    // Pages need a session; with one they render.
    assert_eq!(api.page("/settings").await.0, 200);
    let anonymous = Api::new(&env.server);
    let (status, location) = anonymous.page("/settings/members").await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/login?next=/settings/members"));
    // Signing out ends the session on the server.
    let (status, _) = api.call("auth/logout", &[]).await;
    assert_eq!(status, 200);
    assert!(api.signed_out());
    assert_eq!(me_status(&anonymous).await, Value::Null);
    env.server.stop().await.unwrap();

    // The logs name the recipient only masked, and never carry the link's token.
    let text = logs.text();
    assert!(
        text.contains("a***@example.com"),
        "the mail's log line (masked recipient) was not captured ({} bytes of logs)",
        text.len()
    );
    for secret in ["ann@example.com", "Ann@Example.com", token.as_str()] {
        let leaks: Vec<&str> = text.lines().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "{secret:?} is in the logs: {leaks:#?}");
    }
}

async fn me_status(api: &Api) -> Value {
    api.call("auth/me", &[]).await.1
}

async fn password_reset_links_are_single_use_and_expire(db: &TestDbRef) {
    let env = start(db).await;
    let ann = env.member("ann@example.com", "").await;
    let other = Api::new(&env.server);
    // Unknown addresses get the same answer and no mail.
    let (status, _) = other
        .call("auth/forgot-password", &[("email", "nobody@example.com")])
        .await;
    assert_eq!(status, 200);
    let (status, _) = other
        .call("auth/forgot-password", &[("email", "ann@example.com")])
        .await;
    assert_eq!(status, 200);
    let mail = env.mail("ann@example.com", "password").await;
    let token = token_in(&mail, "/reset-password");
    let (status, _) = other
        .call(
            "auth/reset-password",
            &[("token", &token), ("password", "short")],
        )
        .await;
    assert_eq!(
        status, 422,
        "a weak password is refused and the link stays valid"
    );
    let new_password = "quartz-meadow-lantern-7";
    let (status, body) = other
        .call(
            "auth/reset-password",
            &[("token", &token), ("password", new_password)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = other
        .call(
            "auth/reset-password",
            &[("token", &token), ("password", "another-fine-pass-9")],
        )
        .await;
    assert_eq!(status, 409, "single use");
    // The reset signed out every session, and only the new password works.
    assert_eq!(me_status(&ann).await, Value::Null);
    let (status, _) = other
        .call(
            "auth/login",
            &[("email", "ann@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = other
        .call(
            "auth/login",
            &[("email", "ann@example.com"), ("password", new_password)],
        )
        .await;
    assert_eq!(status, 200);

    // An expired link says so.
    let (status, _) = other
        .call("auth/forgot-password", &[("email", "ann@example.com")])
        .await;
    assert_eq!(status, 200);
    crate::support::eventually(Duration::from_secs(20), || async {
        (env.mails_to("ann@example.com") >= 3).then_some(())
    })
    .await;
    let latest = env
        .sink
        .messages()
        .into_iter()
        .rev()
        .find(|m| m.header("subject").is_some_and(|s| s.contains("password")))
        .unwrap();
    let token = token_in(&latest, "/reset-password");
    assert_ne!(token_in(&mail, "/reset-password"), token);
    let store = mudmap::store::Store::connect(&db.url, &db.settings.database)
        .await
        .unwrap();
    sqlx::query("UPDATE email_tokens SET expires_at = 1 WHERE purpose = 'password_reset' AND used_at IS NULL")
        .execute(store.pool())
        .await
        .unwrap();
    let (status, body) = other
        .call(
            "auth/reset-password",
            &[("token", &token), ("password", "yet-another-pass-11")],
        )
        .await;
    assert_eq!(status, 422);
    assert!(error_text(&body).contains("expired"), "{body}");
    env.server.stop().await.unwrap();
}

async fn repeated_failures_lock_the_account_then_the_address(db: &TestDbRef) {
    let env = start(db).await;
    env.member("ann@example.com", "").await;
    let api = Api::new(&env.server);
    for attempt in 1..=4 {
        let (status, _) = api
            .call(
                "auth/login",
                &[
                    ("email", "ann@example.com"),
                    ("password", "wrong-password-x"),
                ],
            )
            .await;
        assert_eq!(status, 422, "attempt {attempt}");
    }
    let (status, body) = api
        .call(
            "auth/login",
            &[
                ("email", "ann@example.com"),
                ("password", "wrong-password-x"),
            ],
        )
        .await;
    assert_eq!(status, 429, "the fifth failure locks: {body}");
    assert!(
        error_text(&body).contains("Try again in 15 minutes"),
        "{body}"
    );
    // While locked, even the right password is refused, with the same clear message.
    let (status, body) = api
        .call(
            "auth/login",
            &[("email", "ann@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(status, 429);
    assert!(error_text(&body).contains("this account"), "{body}");

    // Per address: 20 failures across many accounts lock the address.
    let mut last = 0;
    for n in 0..20 {
        let email = format!("guess{n}@example.com");
        last = api
            .call(
                "auth/login",
                &[("email", &email), ("password", "wrong-password-x")],
            )
            .await
            .0;
    }
    assert_eq!(last, 429);
    let (status, body) = api
        .call(
            "auth/login",
            &[
                ("email", "fresh@example.com"),
                ("password", "whatever-pass-1"),
            ],
        )
        .await;
    assert_eq!(status, 429);
    assert!(error_text(&body).contains("network address"), "{body}");
    env.server.stop().await.unwrap();
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn decode_base32(text: &str) -> Vec<u8> {
    data_encoding::BASE32_NOPAD.decode(text.as_bytes()).unwrap()
}

async fn two_factor_sign_in_with_codes_and_recovery_codes(db: &TestDbRef) {
    let env = start(db).await;
    let ann = env.member("ann@example.com", "").await;
    let (status, enrolment) = ann.call("auth/totp-begin", &[]).await;
    assert_eq!(status, 200, "{enrolment}");
    assert!(enrolment["uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    let secret = decode_base32(enrolment["secret"].as_str().unwrap());
    let (status, _) = ann.call("auth/totp-enable", &[("code", "000000")]).await;
    assert_eq!(status, 422, "a wrong first code does not enable");
    let code = mudmap::accounts::totp::code_at(&secret, now_secs(), 6);
    let (status, codes) = ann.call("auth/totp-enable", &[("code", &code)]).await;
    assert_eq!(status, 200, "{codes}");
    let codes: Vec<String> = serde_json::from_value(codes).unwrap();
    assert_eq!(codes.len(), 10);
    assert_eq!(me(&ann).await["totp_enabled"], true);

    // Password alone now leads to the second step, which is not a session.
    let api = Api::new(&env.server);
    let (status, body) = api
        .call(
            "auth/login",
            &[("email", "ann@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!((status, body.as_str()), (200, Some("SecondFactor")));
    assert_eq!(
        me_status(&api).await,
        Value::Null,
        "no access before the code"
    );
    assert_eq!(api.page("/settings").await.0, 303);
    let (status, _) = api.call("auth/login-code", &[("code", "123456")]).await;
    assert_eq!(status, 422);
    // The code used to enable cannot be replayed; the next one works.
    let (status, _) = api.call("auth/login-code", &[("code", &code)]).await;
    assert_eq!(status, 422, "replay refused");
    let next = mudmap::accounts::totp::code_at(&secret, now_secs() + 30, 6);
    let (status, body) = api.call("auth/login-code", &[("code", &next)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(me(&api).await["email"], "ann@example.com");

    // A recovery code works once.
    let again = Api::new(&env.server);
    again
        .call(
            "auth/login",
            &[("email", "ann@example.com"), ("password", PASSWORD)],
        )
        .await;
    let (status, _) = again.call("auth/login-code", &[("code", &codes[0])]).await;
    assert_eq!(status, 200);
    let third = Api::new(&env.server);
    third
        .call(
            "auth/login",
            &[("email", "ann@example.com"), ("password", PASSWORD)],
        )
        .await;
    let (status, _) = third.call("auth/login-code", &[("code", &codes[0])]).await;
    assert_eq!(status, 422, "a recovery code is single use");

    // Turning it off needs the password.
    let (status, _) = ann
        .call("auth/totp-disable", &[("password", "nope-nope-nope")])
        .await;
    assert_eq!(status, 422);
    let (status, _) = ann
        .call("auth/totp-disable", &[("password", PASSWORD)])
        .await;
    assert_eq!(status, 200);
    assert_eq!(me(&ann).await["totp_enabled"], false);
    env.server.stop().await.unwrap();
}

async fn member_ids(api: &Api) -> Vec<(String, String, String)> {
    let (status, body) = api.call("orgs/members", &[("search", "")]).await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_owned(),
                m["user_id"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn id_of(members: &[(String, String, String)], email: &str) -> String {
    members.iter().find(|m| m.0 == email).unwrap().1.clone()
}

/// Invite `email` as `role` from `inviter`; the invitee registers through the mailed link.
pub(crate) async fn invite_and_join(env: &Env, inviter: &Api, email: &str, role: &str) -> Api {
    let (status, body) = inviter
        .call("orgs/invite", &[("email", email), ("role", role)])
        .await;
    assert_eq!(status, 200, "{body}");
    let mail = env.mail(email, "invit").await;
    let token = token_in(&mail, "/invite");
    let invitee = Api::new(&env.server);
    let (status, preview) = invitee
        .call("orgs/invitation-preview", &[("token", &token)])
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["account_exists"], false);
    let (status, body) = invitee
        .call(
            "auth/register",
            &[
                ("email", email),
                ("password", PASSWORD),
                ("org_name", ""),
                ("invitation", &token),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Joined"]["role"], role);
    invitee
}

async fn roles_decide_who_may_change_what(db: &TestDbRef) {
    let env = start(db).await;
    let owner = env.member("owner@example.com", "Acme").await;
    let viewer = invite_and_join(&env, &owner, "vera@example.com", "viewer").await;
    assert_eq!(me(&viewer).await["current"]["name"], "Acme");
    assert_eq!(me(&viewer).await["current"]["role"], "viewer");
    // The welcome mail and the owners' notice went out.
    env.mail("vera@example.com", "Welcome").await;
    env.mail("owner@example.com", "joined").await;

    let members = member_ids(&owner).await;
    assert_eq!(members.len(), 2);
    let owner_id = id_of(&members, "owner@example.com");
    let vera_id = id_of(&members, "vera@example.com");

    // Viewer: reads, never writes.
    assert_eq!(member_ids(&viewer).await.len(), 2);
    for (endpoint, form) in [
        ("orgs/rename", vec![("name", "Pwned")]),
        (
            "orgs/invite",
            vec![("email", "x@example.com"), ("role", "viewer")],
        ),
        (
            "orgs/set-role",
            vec![("user_id", vera_id.as_str()), ("role", "owner")],
        ),
        ("orgs/remove-member", vec![("user_id", owner_id.as_str())]),
        ("orgs/invitations", vec![]),
        ("orgs/jobs", vec![("failed_only", "false")]),
        ("orgs/delete", vec![("confirm_name", "Acme")]),
        ("audit/list", audit_form()),
        ("audit/export", audit_form()),
        (
            "changes/preview",
            vec![("device_ids", "any"), ("operations", PREVIEW_OPS)],
        ),
    ] {
        let (status, body) = viewer.call(endpoint, &form).await;
        assert_eq!(status, 403, "viewer {endpoint}: {body}");
    }

    // Operator: operates devices (later) but cannot manage members.
    let (status, _) = owner
        .call(
            "orgs/set-role",
            &[("user_id", &vera_id), ("role", "operator")],
        )
        .await;
    assert_eq!(status, 200);
    for (endpoint, form) in [
        (
            "orgs/invite",
            vec![("email", "x@example.com"), ("role", "viewer")],
        ),
        (
            "orgs/set-role",
            vec![("user_id", owner_id.as_str()), ("role", "viewer")],
        ),
        ("orgs/remove-member", vec![("user_id", owner_id.as_str())]),
        ("orgs/rename", vec![("name", "Pwned")]),
        ("audit/list", audit_form()),
        ("audit/export", audit_form()),
    ] {
        let (status, body) = viewer.call(endpoint, &form).await;
        assert_eq!(status, 403, "operator {endpoint}: {body}");
    }

    // Admin: everything but ownership.
    let (status, _) = owner
        .call("orgs/set-role", &[("user_id", &vera_id), ("role", "admin")])
        .await;
    assert_eq!(status, 200);
    let admin = viewer;
    let (status, _) = admin
        .call(
            "orgs/invite",
            &[("email", "olga@example.com"), ("role", "owner")],
        )
        .await;
    assert_eq!(status, 403, "admins cannot make owners");
    let (status, _) = admin
        .call(
            "orgs/set-role",
            &[("user_id", &owner_id), ("role", "viewer")],
        )
        .await;
    assert_eq!(status, 403, "admins cannot demote owners");
    let (status, _) = admin
        .call("orgs/remove-member", &[("user_id", &owner_id)])
        .await;
    assert_eq!(status, 403, "admins cannot remove owners");
    let (status, _) = admin.call("orgs/delete", &[("confirm_name", "Acme")]).await;
    assert_eq!(status, 403, "admins cannot delete the organisation");
    let (status, _) = admin.call("orgs/rename", &[("name", "Acme IT")]).await;
    assert_eq!(status, 200);
    let (status, _) = admin
        .call(
            "orgs/invite",
            &[("email", "olga@example.com"), ("role", "operator")],
        )
        .await;
    assert_eq!(status, 200);

    // The last owner can neither leave nor be demoted; with a second owner both work.
    let (status, body) = owner
        .call(
            "orgs/set-role",
            &[("user_id", &owner_id), ("role", "admin")],
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(error_text(&body).contains("last owner"));
    let (status, _) = owner.call("orgs/leave", &[]).await;
    assert_eq!(status, 409);
    let (status, _) = owner
        .call("orgs/set-role", &[("user_id", &vera_id), ("role", "owner")])
        .await;
    assert_eq!(status, 200);
    let (status, _) = owner
        .call(
            "orgs/set-role",
            &[("user_id", &owner_id), ("role", "viewer")],
        )
        .await;
    assert_eq!(status, 200);

    // Removal is effective at once: the removed member's next request has no organisation.
    let (status, _) = admin
        .call("orgs/remove-member", &[("user_id", &owner_id)])
        .await;
    assert_eq!(status, 200);
    let (status, _) = owner.call("orgs/members", &[("search", "")]).await;
    assert_eq!(status, 422, "no organisation any more");
    assert!(me(&owner).await["current"].is_null());
    env.server.stop().await.unwrap();
}

/// One line of the isolation matrix: endpoint, form, status expected for the outsider.
type Row<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16);

/// Every server function, called by a member of organisation B with A's ids, is refused or acts
/// on B only; afterwards A is exactly as it was.
async fn organisations_are_isolated_from_each_other(db: &TestDbRef) {
    let env = start(db).await;
    let alice = env.member("alice@example.com", "Alpha").await;
    let bob = env.member("bob@example.com", "Bravo").await;
    let (status, invitation) = alice
        .call(
            "orgs/invite",
            &[("email", "carol@example.com"), ("role", "viewer")],
        )
        .await;
    assert_eq!(status, 200);
    let invitation_id = invitation["id"].as_str().unwrap().to_owned();
    let carol_token = token_in(&env.mail("carol@example.com", "invit").await, "/invite");
    let alpha_members = member_ids(&alice).await;
    let alice_id = id_of(&alpha_members, "alice@example.com");
    let alpha_id = me(&alice).await["current"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, alpha_jobs) = alice.call("orgs/jobs", &[("failed_only", "false")]).await;
    let alpha_job = alpha_jobs[0]["id"].as_str().unwrap().to_owned();
    let (status, device) = alice
        .call(
            "devices/add",
            &[
                ("name", "alpha-fw"),
                ("host", "192.0.2.1"),
                ("port", "22"),
                ("tags", "hq"),
                ("notes", ""),
            ],
        )
        .await;
    assert_eq!(status, 200, "{device}");
    let alpha_device = device["id"].as_str().unwrap().to_owned();
    let (status, group) = alice
        .call("groups/create", &[("name", "Alpha customers")])
        .await;
    assert_eq!(status, 200, "{group}");
    let alpha_group = group["id"].as_str().unwrap().to_owned();
    let (status, _) = alice
        .call(
            "groups/set-member",
            &[
                ("id", &alpha_group),
                ("device_id", &alpha_device),
                ("member", "true"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let (_, group) = bob.call("groups/create", &[("name", "Bravo sites")]).await;
    let bravo_group = group["id"].as_str().unwrap().to_owned();
    // Make Alpha's job failed, so retrying it would be possible for Alpha.
    let store = mudmap::store::Store::connect(&db.url, &db.settings.database)
        .await
        .unwrap();
    sqlx::query("UPDATE jobs SET state = 'failed' WHERE id = $1")
        .bind(&alpha_job)
        .execute(store.pool())
        .await
        .unwrap();
    // Alpha's firewall has search facts (as its backup writes them, on this engine).
    let config = mudmap::pfsense::Config::parse(
        "<pfsense><system><hostname>alpha</hostname><user><name>admin</name></user></system></pfsense>",
    )
    .unwrap();
    let mut tx = store.begin().await.unwrap();
    let written = mudmap::search::facts::refresh(
        &mut tx,
        &alpha_id,
        &alpha_device,
        "revision-1",
        "sha256:alpha",
        Some(&config),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(written > 0);
    let (status, found) = alice
        .call("search/run", &[("query", "user.name is admin")])
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found["hits"][0]["device_id"],
        alpha_device.as_str(),
        "{found}"
    );
    assert_eq!(found["hits"][0]["label"], "user admin", "{found}");
    let (_, found) = bob
        .call("search/run", &[("query", "user.name is admin")])
        .await;
    assert_eq!(found["hits"], serde_json::json!([]), "{found}");

    let matrix: Vec<Row> = vec![
        ("orgs/switch", vec![("org_id", &alpha_id)], 404),
        (
            "orgs/set-role",
            vec![("user_id", &alice_id), ("role", "viewer")],
            404,
        ),
        ("orgs/remove-member", vec![("user_id", &alice_id)], 404),
        ("orgs/revoke-invitation", vec![("id", &invitation_id)], 404),
        ("orgs/retry-job", vec![("id", &alpha_job)], 404),
        (
            "devices/update",
            vec![
                ("id", &alpha_device),
                ("name", "pwned"),
                ("host", "192.0.2.9"),
                ("port", "22"),
                ("tags", ""),
                ("notes", ""),
            ],
            404,
        ),
        ("devices/delete", vec![("id", &alpha_device)], 404),
        // Refused before any connection is made (Alpha's device is not Bob's to reach).
        ("devices/probe", vec![("id", &alpha_device)], 404),
        ("devices/detail", vec![("id", &alpha_device)], 404),
        (
            "devices/service",
            vec![
                ("id", &alpha_device),
                ("service", "unbound"),
                ("action", "stop"),
            ],
            404,
        ),
        (
            "devices/activate",
            vec![
                ("id", &alpha_device),
                ("username", "admin"),
                ("password", "guess"),
                ("fingerprint", "SHA256:x"),
            ],
            404,
        ),
        ("devices/activation", vec![("id", "no-such-run")], 404),
        ("devices/tables", vec![("id", &alpha_device)], 404),
        ("devices/revisions", vec![("id", &alpha_device)], 404),
        ("devices/backup", vec![("id", &alpha_device)], 404),
        (
            "devices/compare",
            vec![("to", "no-such-revision"), ("reveal", "false")],
            404,
        ),
        (
            "devices/compare",
            vec![("to", "no-such-revision"), ("reveal", "true")],
            404,
        ),
        (
            "devices/revision-download",
            vec![("id", "no-such-revision")],
            404,
        ),
        (
            "devices/acknowledge-drift",
            vec![("id", &alpha_device)],
            404,
        ),
        (
            "devices/power",
            vec![
                ("id", &alpha_device),
                ("action", "reboot"),
                ("confirm", "alpha-fw"),
            ],
            404,
        ),
        ("groups/get", vec![("id", &alpha_group)], 404),
        (
            "groups/rename",
            vec![("id", &alpha_group), ("name", "pwned")],
            404,
        ),
        ("groups/delete", vec![("id", &alpha_group)], 404),
        (
            "groups/set-member",
            vec![
                ("id", &alpha_group),
                ("device_id", &alpha_device),
                ("member", "false"),
            ],
            404,
        ),
        // Alpha's device cannot be put in Bob's own group either.
        (
            "groups/set-member",
            vec![
                ("id", &bravo_group),
                ("device_id", &alpha_device),
                ("member", "true"),
            ],
            404,
        ),
        ("groups/list", vec![], 200),
        // The same name in another organisation is not a duplicate.
        ("groups/create", vec![("name", "Alpha customers")], 200),
        // The same address in another organisation is not a duplicate.
        (
            "devices/add",
            vec![
                ("name", "bravo-fw"),
                ("host", "192.0.2.1"),
                ("port", "22"),
                ("tags", ""),
                ("notes", ""),
            ],
            200,
        ),
        ("devices/list", vec![], 200),
        ("fleet/list", vec![("search", "alpha")], 200),
        // Scoped to Bob's own organisation by construction (the search test shows it finds
        // nothing of another's).
        ("search/run", vec![("query", "user.name is admin")], 200),
        (
            "changes/preview",
            vec![("device_ids", &alpha_device), ("operations", PREVIEW_OPS)],
            404,
        ),
        // Scoped to Bob's own organisation by construction (the audit test shows it).
        ("audit/list", audit_form(), 200),
        ("audit/export", audit_form(), 200),
        ("orgs/accept-invitation", vec![("token", &carol_token)], 409),
        // Scoped to Bob's own organisation by construction:
        ("orgs/members", vec![("search", "")], 200),
        ("orgs/invitations", vec![], 200),
        ("orgs/jobs", vec![("failed_only", "false")], 200),
        ("orgs/rename", vec![("name", "Bravo 2")], 200),
        (
            "orgs/invite",
            vec![("email", "dave@example.com"), ("role", "viewer")],
            200,
        ),
        (
            "orgs/invitation-preview",
            vec![("token", &carol_token)],
            200,
        ),
        ("orgs/create", vec![("name", "Bravo Labs")], 200),
        ("orgs/leave", vec![], 409),
        ("orgs/delete", vec![("confirm_name", "Bravo Labs")], 200),
        ("auth/me", vec![], 200),
        (
            "auth/change-password",
            vec![("current", "wrong-one-here"), ("password", "x")],
            422,
        ),
        ("auth/totp-begin", vec![], 200),
        ("auth/totp-enable", vec![("code", "000000")], 422),
        (
            "auth/totp-disable",
            vec![("password", "wrong-one-here")],
            422,
        ),
        ("auth/verify-email", vec![("token", &carol_token)], 422),
        (
            "auth/reset-password",
            vec![("token", &carol_token), ("password", "a-fine-pass-123")],
            422,
        ),
        (
            "auth/resend-verification",
            vec![("email", "alice@example.com")],
            200,
        ),
        (
            "auth/forgot-password",
            vec![("email", "bob@example.com")],
            200,
        ),
        ("auth/login-code", vec![("code", "123456")], 422),
        (
            "auth/register",
            vec![
                ("email", "bob@example.com"),
                ("password", PASSWORD),
                ("org_name", ""),
            ],
            409,
        ),
        (
            "auth/login",
            vec![("email", "bob@example.com"), ("password", PASSWORD)],
            200,
        ),
        ("auth/logout", vec![], 200),
        ("system/status", vec![], 200),
    ];
    // Every registered server function is in the matrix.
    let registered: std::collections::BTreeSet<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.trim_start_matches("/api/").to_owned())
        .collect();
    let covered: std::collections::BTreeSet<String> =
        matrix.iter().map(|(e, _, _)| (*e).to_owned()).collect();
    assert_eq!(
        registered, covered,
        "the isolation matrix must list every server function"
    );

    for (endpoint, form, expected) in &matrix {
        let (status, body) = bob.call(endpoint, form).await;
        assert_eq!(status, *expected, "bob {endpoint}: {body}");
        // The invitation link is itself the capability to read that invitation (it went to the
        // invitee's inbox); everything else must show Bob nothing of Alpha.
        if *expected == 200
            && (endpoint.starts_with("orgs/")
                || endpoint.starts_with("fleet/")
                || endpoint.starts_with("groups/"))
            && *endpoint != "orgs/invitation-preview"
        {
            let text = body.to_string();
            assert!(
                !text.contains("alice@example.com")
                    && !text.contains("Alpha\"")
                    && !text.contains("alpha-fw"),
                "{endpoint} leaked Alpha's data: {text}"
            );
        }
    }
    // Signed out, every non-public function asks to sign in.
    let anonymous = Api::new(&env.server);
    for (endpoint, form, _) in &matrix {
        if !(endpoint.starts_with("orgs/")
            || endpoint.starts_with("devices/")
            || endpoint.starts_with("groups/")
            || endpoint.starts_with("fleet/"))
            || *endpoint == "orgs/invitation-preview"
        {
            continue;
        }
        let (status, _) = anonymous.call(endpoint, form).await;
        assert_eq!(status, 401, "anonymous {endpoint}");
    }

    // Alpha is untouched.
    let (_, devices) = alice.call("devices/list", &[]).await;
    assert_eq!(devices[0]["name"], "alpha-fw");
    assert_eq!(devices.as_array().unwrap().len(), 1);
    let (_, groups) = alice.call("groups/list", &[]).await;
    assert_eq!(groups[0]["name"], "Alpha customers");
    assert_eq!(groups[0]["devices"], 1, "{groups}");
    assert_eq!(groups.as_array().unwrap().len(), 1);
    assert_eq!(member_ids(&alice).await, alpha_members);
    assert_eq!(me(&alice).await["current"]["name"], "Alpha");
    let (_, invitations) = alice.call("orgs/invitations", &[]).await;
    assert_eq!(invitations[0]["id"], invitation_id.as_str());
    let (_, jobs) = alice.call("orgs/jobs", &[("failed_only", "true")]).await;
    assert_eq!(
        jobs[0]["id"],
        alpha_job.as_str(),
        "still failed: not retried by Bob"
    );
    env.server.stop().await.unwrap();
}

async fn an_existing_account_accepts_an_invitation_and_switches_organisations(db: &TestDbRef) {
    let env = start(db).await;
    let alice = env.member("alice@example.com", "Alpha").await;
    let bob = env.member("bob@example.com", "Bravo").await;
    let (status, _) = alice
        .call(
            "orgs/invite",
            &[("email", "bob@example.com"), ("role", "operator")],
        )
        .await;
    assert_eq!(status, 200);
    let token = token_in(&env.mail("bob@example.com", "invit").await, "/invite");
    let (_, preview) = bob
        .call("orgs/invitation-preview", &[("token", &token)])
        .await;
    assert_eq!(preview["account_exists"], true);
    assert_eq!(preview["signed_in_as"], "bob@example.com");
    // Registering again through the link is refused: the account exists.
    let anonymous = Api::new(&env.server);
    let (status, _) = anonymous
        .call(
            "auth/register",
            &[
                ("email", "bob@example.com"),
                ("password", PASSWORD),
                ("org_name", ""),
                ("invitation", &token),
            ],
        )
        .await;
    assert_eq!(status, 409);
    let (status, body) = bob
        .call("orgs/accept-invitation", &[("token", &token)])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Alpha");
    let me_now = me(&bob).await;
    assert_eq!(me_now["orgs"].as_array().unwrap().len(), 2);
    assert_eq!(
        me_now["current"]["name"], "Alpha",
        "accepting switches to the new organisation"
    );
    assert_eq!(me_now["current"]["role"], "operator");
    // Single use.
    let (status, _) = bob
        .call("orgs/accept-invitation", &[("token", &token)])
        .await;
    assert_eq!(status, 409);
    // Switch back: every page and call is now scoped to Bravo.
    let bravo = me_now["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Bravo")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = bob.call("orgs/switch", &[("org_id", &bravo)]).await;
    assert_eq!(status, 200);
    assert_eq!(me(&bob).await["current"]["role"], "owner");
    let emails: Vec<String> = member_ids(&bob).await.into_iter().map(|m| m.0).collect();
    assert_eq!(emails, vec!["bob@example.com".to_owned()]);
    env.server.stop().await.unwrap();
}

pub(crate) fn device_form<'a>(
    name: &'a str,
    host: &'a str,
    port: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("host", host),
        ("port", port),
        ("tags", "Acme, HQ"),
        ("notes", "rack 3"),
    ]
}

async fn devices_are_added_edited_and_deleted_by_the_right_roles(db: &TestDbRef) {
    let env = start(db).await;
    let owner = env.member("owner@example.com", "Acme").await;
    let viewer = invite_and_join(&env, &owner, "vera@example.com", "viewer").await;
    let operator = invite_and_join(&env, &owner, "otto@example.com", "operator").await;

    // Bad input: one sentence per problem, nothing stored.
    let (status, body) = operator
        .call(
            "devices/add",
            &device_form("", "https://fw.example.com", "70000"),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let text = error_text(&body);
    assert!(
        text.contains("Enter a name") && text.contains("without http://") && text.contains("65535"),
        "{text}"
    );

    let (status, fw) = operator
        .call(
            "devices/add",
            &device_form("acme-hq", "FW1.Example.com", ""),
        )
        .await;
    assert_eq!(status, 200, "{fw}");
    assert_eq!(fw["host"], "fw1.example.com");
    assert_eq!(fw["port"], 22, "the SSH port defaults to 22");
    assert_eq!(
        fw["state"], "inactive",
        "a new device is inactive until activated"
    );
    assert_eq!(fw["tags"], json!(["acme", "hq"]));
    let id = fw["id"].as_str().unwrap().to_owned();

    // The same host and port again is refused, naming the device that has it.
    let (status, body) = owner
        .call(
            "devices/add",
            &device_form("acme-hq-2", "fw1.example.com", "22"),
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        error_text(&body).contains("acme-hq already uses fw1.example.com port 22"),
        "{body}"
    );
    let (status, _) = owner
        .call(
            "devices/add",
            &device_form("acme-branch", "2001:db8::1", "2222"),
        )
        .await;
    assert_eq!(status, 200);

    // Viewers read only; operators edit but do not delete.
    assert_eq!(
        viewer
            .call("devices/list", &[])
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (status, _) = viewer
        .call("devices/add", &device_form("x", "192.0.2.50", "22"))
        .await;
    assert_eq!(status, 403);
    let mut edit = device_form("acme-hq", "fw1.example.com", "22");
    edit.insert(0, ("id", id.as_str()));
    let (status, _) = viewer.call("devices/update", &edit).await;
    assert_eq!(status, 403);
    let (status, _) = operator.call("devices/delete", &[("id", &id)]).await;
    assert_eq!(status, 403);
    // Viewers cannot reach a firewall at all: no probe, no activation (refused before any
    // connection is made).
    let (status, _) = viewer.call("devices/probe", &[("id", &id)]).await;
    assert_eq!(status, 403);
    let activate = [
        ("id", id.as_str()),
        ("username", "admin"),
        ("password", "x"),
        ("fingerprint", "SHA256:x"),
    ];
    let (status, _) = viewer.call("devices/activate", &activate).await;
    assert_eq!(status, 403);
    let stop = [
        ("id", id.as_str()),
        ("service", "unbound"),
        ("action", "stop"),
    ];
    let (status, _) = viewer.call("devices/service", &stop).await;
    assert_eq!(
        status, 403,
        "a viewer cannot stop a service, even by calling the server directly"
    );
    // Viewers read the configuration history but cannot start a backup.
    let (status, body) = viewer.call("devices/revisions", &[("id", &id)]).await;
    assert_eq!((status, body), (200, serde_json::json!([])));
    let (status, _) = viewer.call("devices/backup", &[("id", &id)]).await;
    assert_eq!(status, 403);
    // Only owners and admins see secrets or download a configuration: refused before any lookup.
    for caller in [&viewer, &operator] {
        let (status, _) = caller
            .call("devices/revision-download", &[("id", "any")])
            .await;
        assert_eq!(status, 403);
        let (status, _) = caller
            .call("devices/compare", &[("to", "any"), ("reveal", "true")])
            .await;
        assert_eq!(status, 403);
    }
    let (status, _) = viewer
        .call("devices/acknowledge-drift", &[("id", &id)])
        .await;
    assert_eq!(status, 403, "a viewer cannot acknowledge a change");
    let (status, body) = operator
        .call("devices/acknowledge-drift", &[("id", &id)])
        .await;
    assert_eq!(status, 409, "nothing to acknowledge: {body}");
    let (status, _) = viewer
        .call("devices/compare", &[("to", "any"), ("reveal", "false")])
        .await;
    assert_eq!(
        status, 404,
        "members compare their own organisation's backups"
    );
    let (status, body) = operator.call("devices/backup", &[("id", &id)]).await;
    assert_eq!(
        status, 422,
        "an inactive device cannot be backed up: {body}"
    );

    // A new address forgets the pinned host key (a different machine must be confirmed again).
    let store = mudmap::store::Store::connect(&db.url, &db.settings.database)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE devices SET host_key_fingerprint = 'SHA256:pinned', state = 'active' WHERE id = $1",
    )
    .bind(&id)
    .execute(store.pool())
    .await
    .unwrap();
    let mut renamed = device_form("acme-hq-main", "fw1.example.com", "22");
    renamed.insert(0, ("id", id.as_str()));
    let (status, body) = operator.call("devices/update", &renamed).await;
    assert_eq!(status, 200, "{body}");
    let pinned: (Option<String>,) =
        sqlx::query_as("SELECT host_key_fingerprint FROM devices WHERE id = $1")
            .bind(&id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(
        pinned.0.as_deref(),
        Some("SHA256:pinned"),
        "same address keeps the key"
    );
    let mut moved = device_form("acme-hq-main", "192.0.2.7", "22");
    moved.insert(0, ("id", id.as_str()));
    let (status, _) = operator.call("devices/update", &moved).await;
    assert_eq!(status, 200);
    let pinned: (Option<String>, String) =
        sqlx::query_as("SELECT host_key_fingerprint, state FROM devices WHERE id = $1")
            .bind(&id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(
        pinned,
        (None, "quarantined".to_owned()),
        "a new address must have its key confirmed again (by re-activating) before it is used"
    );

    let (status, _) = owner.call("devices/delete", &[("id", &id)]).await;
    assert_eq!(status, 200);
    let (status, _) = owner.call("devices/delete", &[("id", &id)]).await;
    assert_eq!(status, 404);
    let audit: Vec<(String,)> = sqlx::query_as(
        "SELECT action FROM audit_log WHERE action LIKE 'device.%' ORDER BY created_at, id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let actions: Vec<String> = audit.into_iter().map(|(a,)| a).collect();
    assert_eq!(
        actions,
        [
            "device.added",
            "device.added",
            "device.updated",
            "device.updated",
            "device.deleted"
        ]
    );
    store.close().await;
    env.server.stop().await.unwrap();
}

/// A direct connection to the test's database, for setting up states the API cannot reach
/// (expired links, failed jobs) and for checking what was stored.
async fn store_of(db: &TestDbRef) -> mudmap::store::Store {
    mudmap::store::Store::connect(&db.url, &db.settings.database)
        .await
        .unwrap()
}

/// Wait until the mail jobs whose payload matches `pattern` (SQL LIKE) are all in `state`;
/// returns their (state, attempts).
async fn wait_jobs(
    store: &mudmap::store::Store,
    pattern: &str,
    expected: usize,
    state: &str,
) -> Vec<(String, i64)> {
    let mut rows: Vec<(String, i64)> = Vec::new();
    for _ in 0..400 {
        rows = sqlx::query_as(
            "SELECT state, attempts FROM jobs WHERE kind = 'mail' AND payload LIKE $1",
        )
        .bind(pattern)
        .fetch_all(store.pool())
        .await
        .unwrap();
        if rows.len() == expected && rows.iter().all(|(s, _)| s == state) {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("wanted {expected} jobs {state} for {pattern:?}; got {rows:?}");
}

async fn adding_a_device_mails_the_owners_and_admins(db: &TestDbRef) {
    let env = start(db).await;
    let owner = env.member("owner@example.com", "Acme").await;
    invite_and_join(&env, &owner, "ada@example.com", "admin").await;
    let operator = invite_and_join(&env, &owner, "otto@example.com", "operator").await;

    let (status, fw) = operator
        .call("devices/add", &device_form("acme-hq", "192.0.2.10", "22"))
        .await;
    assert_eq!(status, 200, "{fw}");
    let id = fw["id"].as_str().unwrap().to_owned();
    for admin in ["owner@example.com", "ada@example.com"] {
        let mail = env.mail(admin, "Firewall acme-hq was added to Acme").await;
        let links = mail.links();
        assert!(
            links.iter().any(|l| l.ends_with(&format!("/devices/{id}"))),
            "the mail links to the firewall: {links:?}"
        );
    }
    // One job per owner and admin (not the operator), carrying ids: the name is read at send time.
    let store = store_of(db).await;
    let payloads: Vec<(String,)> = sqlx::query_as(
        "SELECT payload FROM jobs WHERE kind = 'mail' AND payload LIKE '%device_added%'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(payloads.len(), 2, "{payloads:?}");
    for (payload,) in &payloads {
        assert!(
            payload.contains(&id) && !payload.contains("acme-hq"),
            "{payload}"
        );
    }

    // A device deleted before its mail goes out is not announced: SMTP refuses for a while, the
    // device is deleted meanwhile, and the retried mail is skipped.
    env.sink.set_reject(true);
    let (status, temp) = owner
        .call("devices/add", &device_form("temp-fw", "192.0.2.11", "22"))
        .await;
    assert_eq!(status, 200, "{temp}");
    let temp_id = temp["id"].as_str().unwrap().to_owned();
    // Payload keys are in alphabetical order: the device id comes first.
    let pattern = format!("%{temp_id}%device_added%");
    let mut attempted = false;
    for _ in 0..400 {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT state, attempts FROM jobs WHERE kind = 'mail' AND payload LIKE $1",
        )
        .bind(&pattern)
        .fetch_all(store.pool())
        .await
        .unwrap();
        if rows.len() == 2 && rows.iter().all(|(s, a)| s == "queued" && *a >= 1) {
            attempted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(attempted, "the refused mails were not waiting for a retry");
    let (status, body) = owner.call("devices/delete", &[("id", &temp_id)]).await;
    assert_eq!(status, 200, "{body}");
    env.sink.set_reject(false);
    // Due now rather than after the backoff.
    sqlx::query("UPDATE jobs SET run_at = 0 WHERE state = 'queued'")
        .execute(store.pool())
        .await
        .unwrap();
    // Done (skipped) on the attempt after the deletion; had it been sent, it would be in the sink
    // by now.
    let rows = wait_jobs(&store, &pattern, 2, "done").await;
    assert!(rows.iter().all(|(_, attempts)| *attempts >= 2), "{rows:?}");
    assert_eq!(
        env.mails_about("example.com", "temp-fw was added"),
        0,
        "a deleted device is not announced as added"
    );
    store.close().await;
    env.server.stop().await.unwrap();
}

/// The jobs page of `api`'s organisation.
async fn org_jobs(api: &Api, failed_only: bool) -> Vec<Value> {
    let flag = if failed_only { "true" } else { "false" };
    let (status, jobs) = api.call("orgs/jobs", &[("failed_only", flag)]).await;
    assert_eq!(status, 200, "{jobs}");
    jobs.as_array().unwrap().clone()
}

async fn a_failed_job_is_retried_by_an_admin(db: &TestDbRef) {
    let env = start(db).await;
    let owner = env.member("owner@example.com", "Acme").await;
    let viewer = invite_and_join(&env, &owner, "vera@example.com", "viewer").await;
    env.mail("owner@example.com", "joined").await;
    // The owners' "new member" notice, once it has been sent.
    let mut notice = Value::Null;
    for _ in 0..200 {
        notice = org_jobs(&owner, false)
            .await
            .into_iter()
            .find(|j| j["title"] == "Mail: new member notice")
            .unwrap_or(Value::Null);
        if notice["state"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(notice["state"], "done", "{notice}");
    let id = notice["id"].as_str().unwrap().to_owned();

    // It failed for good (as after SMTP refused it eight times).
    let store = store_of(db).await;
    sqlx::query(
        "UPDATE jobs SET state = 'failed', attempts = max_attempts, last_error = 'SMTP refused', \
         finished_at = NULL WHERE id = $1",
    )
    .bind(&id)
    .execute(store.pool())
    .await
    .unwrap();
    let failed = org_jobs(&owner, true).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["id"], id.as_str());
    assert_eq!(failed[0]["last_error"], "SMTP refused");

    let (status, _) = viewer.call("orgs/retry-job", &[("id", &id)]).await;
    assert_eq!(status, 403, "a viewer cannot retry jobs");
    let (status, body) = owner.call("orgs/retry-job", &[("id", &id)]).await;
    assert_eq!(status, 200, "{body}");
    let mut retried = audit_form();
    retried[2] = ("action", "job.retried");
    let (_, page) = owner.call("audit/list", &retried).await;
    assert_eq!(
        page["entries"][0]["subject"],
        id.as_str(),
        "the retry is audited: {page:#}"
    );
    // Back in the queue with a fresh set of attempts (the worker may already have taken it).
    let (state, attempts): (String, i64) =
        sqlx::query_as("SELECT state, attempts FROM jobs WHERE id = $1")
            .bind(&id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(
        ["queued", "running", "done"].contains(&state.as_str()) && attempts <= 1,
        "{state} after {attempts} attempts"
    );
    // It runs again: done after one attempt (without the reset it would have given up), and the
    // notice arrives a second time.
    let mut row = (String::new(), 0i64);
    for _ in 0..200 {
        row = sqlx::query_as("SELECT state, attempts FROM jobs WHERE id = $1")
            .bind(&id)
            .fetch_one(store.pool())
            .await
            .unwrap();
        if row.0 != "queued" && row.0 != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(row, ("done".to_owned(), 1), "the retried job's outcome");
    for _ in 0..200 {
        if env.mails_about("owner@example.com", "joined") >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(env.mails_about("owner@example.com", "joined"), 2);
    assert!(
        org_jobs(&owner, true).await.is_empty(),
        "no failed job is left"
    );
    // Only failed jobs can be retried.
    let (status, _) = owner.call("orgs/retry-job", &[("id", &id)]).await;
    assert_eq!(status, 404);
    store.close().await;
    env.server.stop().await.unwrap();
}

/// The emails `api` sees when searching the members of its organisation for `term`.
async fn member_search(api: &Api, term: &str) -> Vec<String> {
    let (status, body) = api.call("orgs/members", &[("search", term)]).await;
    assert_eq!(status, 200, "{body}");
    let mut emails: Vec<String> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap().to_owned())
        .collect();
    emails.sort();
    emails
}

async fn count(store: &mudmap::store::Store, sql: &'static str, id: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql)
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    n
}

async fn members_search_leave_and_organisations_are_deleted_whole(db: &TestDbRef) {
    let env = start(db).await;
    let owner = env.member("owner@example.com", "Acme").await;
    let acme_id = me(&owner).await["current"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = invite_and_join(&env, &owner, "vera@example.com", "admin").await;
    let operator = invite_and_join(&env, &owner, "otto@example.com", "operator").await;
    let second_owner = invite_and_join(&env, &owner, "olga@example.com", "owner").await;

    // Search matches part of the address, in any case; a wildcard is searched for literally.
    assert_eq!(member_search(&owner, "").await.len(), 4);
    assert_eq!(member_search(&owner, "vera").await, ["vera@example.com"]);
    assert_eq!(member_search(&owner, "OTT").await, ["otto@example.com"]);
    assert_eq!(
        member_search(&operator, "o").await.len(),
        4,
        "every address has an o"
    );
    assert_eq!(member_search(&owner, "ol").await, ["olga@example.com"]);
    assert!(member_search(&owner, "%").await.is_empty());
    assert!(member_search(&owner, "nobody").await.is_empty());

    // An admin leaves: no longer a member, no organisation left.
    let (status, body) = admin.call("orgs/leave", &[]).await;
    assert_eq!(status, 200, "{body}");
    let vera = me(&admin).await;
    assert!(vera["current"].is_null(), "{vera}");
    assert!(vera["orgs"].as_array().unwrap().is_empty(), "{vera}");
    let (status, _) = admin.call("orgs/members", &[("search", "")]).await;
    assert_eq!(status, 422, "no organisation any more");
    assert!(member_search(&owner, "vera").await.is_empty());
    // An owner may leave while another owner stays; the last one may not.
    let (status, body) = second_owner.call("orgs/leave", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        member_search(&owner, "").await,
        ["otto@example.com", "owner@example.com"]
    );
    let (status, _) = owner.call("orgs/leave", &[]).await;
    assert_eq!(status, 409);

    // Deleting takes the members, devices and invitations with it; the owner's session falls
    // back to their other organisation.
    let (status, fw) = owner
        .call("devices/add", &device_form("acme-hq", "192.0.2.10", "22"))
        .await;
    assert_eq!(status, 200, "{fw}");
    let (status, _) = owner
        .call(
            "orgs/invite",
            &[("email", "ines@example.com"), ("role", "viewer")],
        )
        .await;
    assert_eq!(status, 200);
    let (status, backup) = owner.call("orgs/create", &[("name", "Backup")]).await;
    assert_eq!(status, 200, "{backup}");
    let (status, _) = owner.call("orgs/switch", &[("org_id", &acme_id)]).await;
    assert_eq!(status, 200);
    let (status, body) = owner.call("orgs/delete", &[("confirm_name", "acme")]).await;
    assert_eq!(status, 422, "the name must match exactly: {body}");
    let (status, body) = owner.call("orgs/delete", &[("confirm_name", "Acme")]).await;
    assert_eq!(status, 200, "{body}");

    let store = store_of(db).await;
    for sql in [
        "SELECT COUNT(*) FROM organisations WHERE id = $1",
        "SELECT COUNT(*) FROM memberships WHERE org_id = $1",
        "SELECT COUNT(*) FROM devices WHERE org_id = $1",
        "SELECT COUNT(*) FROM invitations WHERE org_id = $1",
    ] {
        assert_eq!(count(&store, sql, &acme_id).await, 0, "{sql}");
    }
    store.close().await;
    let now = me(&owner).await;
    assert_eq!(now["current"]["name"], "Backup", "{now}");
    assert_eq!(now["orgs"].as_array().unwrap().len(), 1, "{now}");
    let otto = me(&operator).await;
    assert!(otto["current"].is_null(), "{otto}");
    assert!(otto["orgs"].as_array().unwrap().is_empty(), "{otto}");
    let (status, _) = operator.call("devices/list", &[]).await;
    assert_eq!(
        status, 422,
        "the deleted organisation's devices are out of reach"
    );
    env.server.stop().await.unwrap();
}

async fn expired_verification_and_invitation_links_are_refused(db: &TestDbRef) {
    let env = start(db).await;
    let store = store_of(db).await;

    // Verification: refused as expired; the address stays unconfirmed and the link unused.
    let ann = Api::new(&env.server);
    let (status, body) = ann
        .call(
            "auth/register",
            &[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("org_name", "Ann's MSP"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = token_in(
        &env.mail("ann@example.com", "Confirm").await,
        "/verify-email",
    );
    sqlx::query("UPDATE email_tokens SET expires_at = 1 WHERE purpose = 'verify_email'")
        .execute(store.pool())
        .await
        .unwrap();
    let (status, body) = ann.call("auth/verify-email", &[("token", &token)]).await;
    assert_eq!(status, 422, "{body}");
    assert!(error_text(&body).contains("expired"), "{body}");
    let (verified, used): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT u.email_verified_at, t.used_at FROM users u \
         JOIN email_tokens t ON t.user_id = u.id WHERE u.email = $1",
    )
    .bind("ann@example.com")
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!((verified, used), (None, None));
    let (status, body) = ann
        .call(
            "auth/login",
            &[("email", "ann@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(status, 403, "still unverified: {body}");
    assert!(body.get("Unverified").is_some(), "{body}");

    // Invitations: to a new address and to an existing account, both expired before use.
    let owner = env.member("owner@example.com", "Acme").await;
    let dave = env.member("dave@example.com", "Dave Co").await;
    for email in ["carol@example.com", "dave@example.com"] {
        let (status, body) = owner
            .call("orgs/invite", &[("email", email), ("role", "viewer")])
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let carol_token = token_in(&env.mail("carol@example.com", "invit").await, "/invite");
    let dave_token = token_in(&env.mail("dave@example.com", "invit").await, "/invite");
    sqlx::query("UPDATE invitations SET expires_at = 1")
        .execute(store.pool())
        .await
        .unwrap();

    let carol = Api::new(&env.server);
    let (status, body) = carol
        .call("orgs/invitation-preview", &[("token", &carol_token)])
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(error_text(&body).contains("expired"), "{body}");
    let (status, body) = carol
        .call(
            "auth/register",
            &[
                ("email", "carol@example.com"),
                ("password", PASSWORD),
                ("org_name", ""),
                ("invitation", &carol_token),
            ],
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(error_text(&body).contains("expired"), "{body}");
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM users WHERE email = $1",
            "carol@example.com"
        )
        .await,
        0,
        "no account was created"
    );
    let (status, body) = dave
        .call("orgs/accept-invitation", &[("token", &dave_token)])
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(error_text(&body).contains("expired"), "{body}");
    let dave_now = me(&dave).await;
    assert_eq!(dave_now["orgs"].as_array().unwrap().len(), 1, "{dave_now}");
    assert_eq!(dave_now["current"]["name"], "Dave Co");
    assert_eq!(member_search(&owner, "").await, ["owner@example.com"]);
    let (accepted,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM invitations WHERE accepted_at IS NOT NULL OR accepted_by IS NOT NULL",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(accepted, 0);
    store.close().await;
    env.server.stop().await.unwrap();
}

async fn cross_site_writes_are_refused(db: &TestDbRef) {
    let env = start(db).await;
    let alice = env.member("alice@example.com", "Alpha").await;
    for headers in [
        vec![("origin", "http://evil.example")],
        vec![
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://evil.example"),
        ],
        vec![("sec-fetch-site", "same-site")],
    ] {
        let (status, _) = alice
            .call_with("orgs/rename", &[("name", "Pwned")], &headers)
            .await;
        assert_eq!(status, 403, "{headers:?}");
    }
    assert_eq!(me(&alice).await["current"]["name"], "Alpha");
    let origin = env.server.url("");
    let (status, _) = alice
        .call_with(
            "orgs/rename",
            &[("name", "Alpha 2")],
            &[("origin", &origin), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(status, 200);
    env.server.stop().await.unwrap();
}

async fn the_audit_log_is_filtered_paged_and_exported(db: &TestDbRef) {
    let env = start(db).await;
    let alice = env.member("alice@example.com", "Alpha").await;
    let bob = env.member("bob@example.com", "Bravo").await;
    let (status, device) = alice
        .call(
            "devices/add",
            &[
                ("name", "alpha-fw"),
                ("host", "192.0.2.1"),
                ("port", "22"),
                ("tags", ""),
                ("notes", ""),
            ],
        )
        .await;
    assert_eq!(status, 200, "{device}");
    let form = |actor: &'static str, subject: &'static str, action: &'static str| {
        vec![
            ("actor", actor),
            ("subject", subject),
            ("action", action),
            ("since", ""),
            ("until", ""),
        ]
    };
    let (status, page) = alice.call("audit/list", &form("", "", "device.")).await;
    assert_eq!(status, 200, "{page}");
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{page:#}");
    assert_eq!(entries[0]["action"], "device.added");
    assert_eq!(entries[0]["subject"], "alpha-fw");
    assert_eq!(entries[0]["actor_email"], "alice@example.com");
    // Who, subject and the exact action narrow it; another organisation sees none of it.
    let (_, page) = alice
        .call("audit/list", &form("ALICE@", "alpha", "device.added"))
        .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1, "{page:#}");
    let (_, page) = alice.call("audit/list", &form("bob", "", "")).await;
    assert_eq!(page["entries"], serde_json::json!([]), "{page:#}");
    let (_, page) = bob.call("audit/list", &form("", "alpha", "")).await;
    assert_eq!(page["entries"], serde_json::json!([]), "{page:#}");
    // A bad day is named.
    let mut bad = form("", "", "");
    bad[3] = ("since", "last week");
    let (status, body) = alice.call("audit/list", &bad).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("From: use a date"), "{body}");

    // Pages of 100, newest first, each entry once.
    let store = mudmap::store::Store::connect(&db.url, &db.settings.database)
        .await
        .unwrap();
    let alpha_id = me(&alice).await["current"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for n in 0..150i64 {
        sqlx::query(
            "INSERT INTO audit_log (id, org_id, actor_id, action, subject, detail, created_at, actor_email) \
             VALUES ($1, $2, NULL, 'device.drift', $3, '', $4, '')",
        )
        .bind(format!("seeded-{n:03}"))
        .bind(&alpha_id)
        .bind(format!("fw-{n:03}"))
        .bind(1_000_000 + n / 2)
        .execute(store.pool())
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let mut f = form("", "fw-", "device.drift");
        f.push(("after", after.as_str()));
        let (status, page) = alice.call("audit/list", &f).await;
        assert_eq!(status, 200, "{page}");
        for e in page["entries"].as_array().unwrap() {
            seen.push(e["subject"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 150);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 150, "each entry once");
    assert_eq!(seen[0], "fw-149", "newest first");

    // The export: every match as CSV, a formula defused, and the export itself audited.
    let (status, export) = alice.call("audit/export", &form("", "", "")).await;
    assert_eq!(status, 200, "{export}");
    let csv = export["csv"].as_str().unwrap();
    assert!(
        csv.starts_with("time (UTC),actor,action,subject,detail\r\n"),
        "{csv}"
    );
    let rows = export["rows"].as_u64().unwrap() as usize;
    assert!(rows >= 151, "150 seeded and device.added at least: {csv}");
    assert_eq!(
        csv.matches("\r\n").count(),
        rows + 1,
        "a header and a line per entry"
    );
    assert!(csv.contains(",Mudmap,device.drift,fw-000,"), "{csv}");
    assert!(export["file_name"].as_str().unwrap().starts_with("audit-"));
    let (_, page) = alice
        .call("audit/list", &form("", "", "audit.exported"))
        .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1, "{page:#}");
    store.close().await;
}

on_both_engines!(
    sign_up_verify_and_sign_in_with_mail_over_smtp,
    devices_are_added_edited_and_deleted_by_the_right_roles,
    adding_a_device_mails_the_owners_and_admins,
    a_failed_job_is_retried_by_an_admin,
    members_search_leave_and_organisations_are_deleted_whole,
    expired_verification_and_invitation_links_are_refused,
    an_existing_account_accepts_an_invitation_and_switches_organisations,
    roles_decide_who_may_change_what,
    organisations_are_isolated_from_each_other,
    the_audit_log_is_filtered_paged_and_exported,
);

// Behaviour that does not depend on the engine's SQL dialect beyond what the tests above cover.
on_sqlite!(
    password_reset_links_are_single_use_and_expire,
    repeated_failures_lock_the_account_then_the_address,
    two_factor_sign_in_with_codes_and_recovery_codes,
    cross_site_writes_are_refused,
);

/// An audit filter that matches everything.
fn audit_form() -> Vec<(&'static str, &'static str)> {
    vec![
        ("actor", ""),
        ("subject", ""),
        ("action", ""),
        ("since", ""),
        ("until", ""),
    ]
}

/// A change set of one operation, as the browser sends it.
const PREVIEW_OPS: &str =
    r#"[{"op":"alias_add","alias":{"name":"MAIL","kind":"host","entries":[["10.0.0.25",""]]}}]"#;
