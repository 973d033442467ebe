//! Mail: what Mudmap sends ([`templates`]) and how it leaves ([`Mailer`]).
//!
//! A [`Mailer`] is built once from `[smtp]` settings: with `smtp.host` set it relays through that
//! SMTP server (STARTTLS, TLS or plain, one connection per mail, a timeout on every step); without
//! it, every message is written as an `.eml` file under `<data_dir>/mail/`, so a fresh install
//! works and the operator can read what would have been sent. [`sink`] is a loopback SMTP server
//! for tests, benchmarks and `mudmap mail-sink`.
//!
//! What it must not do: decide when to retry (that is the job queue's call, from
//! [`MailError::is_permanent`]), or log a full address, a body, a link or a token: logs carry the
//! template, the masked recipient ([`mask_address`]) and the transport only.

pub mod sink;
pub mod templates;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::address::Envelope;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::PoolConfig;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::config::{SmtpSecurity, SmtpSettings};

pub use templates::{RenderedMail, Template};

/// Bound on connecting to the SMTP server (TCP, per resolved address, and the TLS handshake for
/// `tls`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a whole delivery: connect, greeting, STARTTLS, login, MAIL, RCPT, DATA. lettre only
/// bounds the connect, so a server that accepts and then stays silent would hang a job forever.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on saying QUIT once a delivery is over. It runs in the background: the mail has been
/// accepted (or refused) by then, and a slow goodbye must neither delay nor fail the job.
const QUIT_TIMEOUT: Duration = Duration::from_secs(10);
/// What AUTH may use, in order of preference (lettre's default).
const AUTH_MECHANISMS: &[Mechanism] = &[Mechanism::Plain, Mechanism::Login];

/// The header naming the template of a message (for tests and for filtering in a mailbox).
const TEMPLATE_HEADER: &str = "X-Mudmap-Template";

/// Why a mail was not sent. Messages are sentences an operator can act on; they never contain
/// the recipient's full address.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Worth retrying later: the server is unreachable or slow, deferred the mail (4xx), or the
    /// mail directory could not be written.
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help: an invalid address, a rejection (5xx), a refused login.
    #[error("{0}")]
    Permanent(String),
    /// The `[smtp]` settings cannot work (from [`Mailer::from_settings`]).
    #[error("{0}")]
    Config(String),
}

impl MailError {
    /// True when sending the same mail again cannot succeed without someone changing something.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Transient(_))
    }
}

/// Sends rendered mail through SMTP or into files. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    from: Mailbox,
    transport: Transport,
    send_timeout: Duration,
}

enum Transport {
    Smtp {
        route: SmtpRoute,
        host: String,
        port: u16,
        security: SmtpSecurity,
        username: Option<String>,
    },
    Files {
        dir: PathBuf,
    },
}

/// How a mail reaches the SMTP server.
enum SmtpRoute {
    /// `none` and `starttls`: a TCP connection of our own with TCP_NODELAY ([`connect_tcp`]),
    /// driven by lettre's [`AsyncSmtpConnection`]. lettre's transport opens its socket with
    /// Nagle's algorithm on and writes the message and the `.` that ends it in two writes, so
    /// every mail would wait for the server's delayed ACK (~40 ms on Linux).
    Direct(DirectSmtp),
    /// `tls` (implicit TLS, usually port 465): lettre's transport, which does the TLS handshake
    /// before the greeting. Its socket keeps Nagle's algorithm, so each mail may wait for a
    /// delayed ACK; relays that want speed use `starttls` (or `none` on loopback).
    Lettre(AsyncSmtpTransport<Tokio1Executor>),
}

struct DirectSmtp {
    /// `Some` for `starttls`: the upgrade is required, never skipped.
    starttls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    /// The EHLO name: the host name, as lettre's transport sends.
    hello: ClientId,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("transport", &self.describe())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Build the mailer the settings describe: SMTP when `smtp.host` is set, otherwise files
    /// under `<data_dir>/mail/` (created here). An empty `smtp.from` falls back to the default
    /// sender, `Mudmap <mudmap@localhost>`. Must be called inside a Tokio runtime (SMTP
    /// delivery spawns tasks: lettre's pool cleanup for `tls`, the closing QUIT otherwise).
    pub fn from_settings(smtp: &SmtpSettings, data_dir: &Path) -> Result<Mailer, MailError> {
        let from_text = match smtp.from.trim() {
            "" => SmtpSettings::default().from,
            from => from.to_owned(),
        };
        let from: Mailbox = from_text.parse().map_err(|e| {
            MailError::Config(format!(
                "smtp.from {from_text:?} is not a valid sender ({e}): use e.g. \"Mudmap <mudmap@example.com>\""
            ))
        })?;

        let host = smtp
            .host
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty());
        let transport = match host {
            Some(host) => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(MailError::Config(
                        "the SMTP mailer must be created inside the Tokio runtime".to_owned(),
                    ));
                }
                let port = smtp.port.unwrap_or(match smtp.security {
                    SmtpSecurity::Starttls => 587,
                    SmtpSecurity::Tls => 465,
                    SmtpSecurity::None => 25,
                });
                let tls_error = |e: lettre::transport::smtp::Error| {
                    MailError::Config(format!(
                        "cannot set up TLS for smtp.host {host:?}: {e} — check smtp.host and smtp.security"
                    ))
                };
                let credentials = smtp.username.as_ref().map(|username| {
                    let password = smtp
                        .password
                        .as_ref()
                        .map(|p| p.expose().to_owned())
                        .unwrap_or_default();
                    Credentials::new(username.clone(), password)
                });
                // No connection is reused: a delivery cut off by SEND_TIMEOUT must not leave a
                // half-finished conversation for the next mail to read the wrong replies from.
                // Mail is rare enough that one connection per message costs nothing that
                // matters.
                let route = match smtp.security {
                    SmtpSecurity::Starttls | SmtpSecurity::None => {
                        let starttls = match smtp.security {
                            SmtpSecurity::Starttls => {
                                Some(TlsParameters::new(host.to_owned()).map_err(tls_error)?)
                            }
                            _ => None,
                        };
                        SmtpRoute::Direct(DirectSmtp {
                            starttls,
                            credentials,
                            hello: ClientId::default(),
                        })
                    }
                    SmtpSecurity::Tls => {
                        // A pool of size 0 closes each connection after its mail.
                        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                            .map_err(tls_error)?
                            .port(port)
                            .timeout(Some(CONNECT_TIMEOUT))
                            .pool_config(PoolConfig::new().min_idle(0).max_size(0));
                        if let Some(credentials) = credentials {
                            builder = builder.credentials(credentials);
                        }
                        SmtpRoute::Lettre(builder.build())
                    }
                };
                Transport::Smtp {
                    route,
                    host: host.to_owned(),
                    port,
                    security: smtp.security,
                    username: smtp.username.clone(),
                }
            }
            None => {
                let dir = data_dir.join("mail");
                std::fs::create_dir_all(&dir).map_err(|e| {
                    MailError::Config(format!(
                        "cannot create the mail directory {}: {e} — make data_dir writable, or set smtp.host to send mail",
                        dir.display()
                    ))
                })?;
                Transport::Files { dir }
            }
        };
        Ok(Mailer {
            inner: Arc::new(Inner {
                from,
                transport,
                send_timeout: SEND_TIMEOUT,
            }),
        })
    }

    /// Where mail goes, for the startup log: `"SMTP smtp.example.com:587 (STARTTLS)"` or
    /// `"files under ./data/mail"`.
    pub fn describe(&self) -> String {
        match &self.inner.transport {
            Transport::Smtp {
                host,
                port,
                security,
                username,
                ..
            } => {
                let security = match security {
                    SmtpSecurity::Starttls => "STARTTLS",
                    SmtpSecurity::Tls => "TLS",
                    SmtpSecurity::None => "unencrypted",
                };
                let user = username
                    .as_ref()
                    .map(|u| format!(", user {u}"))
                    .unwrap_or_default();
                format!("SMTP {}:{port} ({security}{user})", bracket_ipv6(host))
            }
            Transport::Files { dir } => format!("files under {}", dir.display()),
        }
    }

    /// The sender every mail carries (`smtp.from`, or the default).
    pub fn from_address(&self) -> String {
        self.inner.from.to_string()
    }

    fn transport_name(&self) -> &'static str {
        match self.inner.transport {
            Transport::Smtp { .. } => "smtp",
            Transport::Files { .. } => "file",
        }
    }

    /// Send `mail` to `to` as multipart/alternative (text + HTML) with the header
    /// `Message-ID: <{message_id}@mudmap>`: pass the job id, so a redelivered job can be
    /// recognised. Logs one line with the template, the masked recipient and the transport.
    pub async fn send(
        &self,
        to: &str,
        mail: &RenderedMail,
        message_id: &str,
    ) -> Result<(), MailError> {
        let masked = mask_address(to);
        let transport = self.transport_name();
        let result = self.deliver(to, &masked, mail, message_id).await;
        match &result {
            Ok(None) => tracing::info!(
                mail.template = mail.template,
                mail.to = %masked,
                mail.transport = transport,
                mail.message_id = message_id,
                "mail sent"
            ),
            Ok(Some(path)) => tracing::info!(
                mail.template = mail.template,
                mail.to = %masked,
                mail.transport = transport,
                mail.message_id = message_id,
                mail.path = %path.display(),
                "no SMTP server configured: mail written to {}",
                path.display()
            ),
            Err(e) => tracing::warn!(
                mail.template = mail.template,
                mail.to = %masked,
                mail.transport = transport,
                mail.message_id = message_id,
                mail.permanent = e.is_permanent(),
                error = %e,
                "mail not sent"
            ),
        }
        result.map(|_| ())
    }

    /// Returns the file written, for the file transport.
    async fn deliver(
        &self,
        to: &str,
        masked: &str,
        mail: &RenderedMail,
        message_id: &str,
    ) -> Result<Option<PathBuf>, MailError> {
        let message = self.build_message(to, masked, mail, message_id)?;
        match &self.inner.transport {
            Transport::Smtp {
                route, host, port, ..
            } => {
                let envelope = message.envelope();
                let raw = message.formatted();
                let delivery = async {
                    match route {
                        SmtpRoute::Direct(direct) => {
                            deliver_direct(direct, host, *port, envelope, &raw, to, masked).await
                        }
                        SmtpRoute::Lettre(transport) => transport
                            .send_raw(envelope, &raw)
                            .await
                            .map(drop)
                            .map_err(|e| smtp_error(&e, host, *port, to, masked)),
                    }
                };
                match tokio::time::timeout(self.inner.send_timeout, delivery).await {
                    Ok(delivered) => delivered.map(|()| None),
                    Err(_) => Err(MailError::Transient(format!(
                        "the SMTP server at {}:{port} did not finish the delivery within {} s — check that smtp.host/smtp.port point to an SMTP server and that smtp.security matches it (tls for port 465, starttls for 587)",
                        bracket_ipv6(host),
                        self.inner.send_timeout.as_secs()
                    ))),
                }
            }
            Transport::Files { dir } => {
                let short_id = uuid::Uuid::new_v4().simple().to_string();
                let name = format!(
                    "{}-{}-{}.eml",
                    unix_ms(),
                    mail.template,
                    short_id.get(..8).unwrap_or(&short_id)
                );
                let written = async {
                    tokio::fs::create_dir_all(dir).await?;
                    write_atomically(dir, &name, &message.formatted()).await
                }
                .await;
                written.map_err(|e| {
                    MailError::Transient(format!(
                        "cannot write mail to {}: {e} — check that data_dir is writable and the disk is not full",
                        dir.display()
                    ))
                })?;
                Ok(Some(dir.join(name)))
            }
        }
    }

    fn build_message(
        &self,
        to: &str,
        masked: &str,
        mail: &RenderedMail,
        message_id: &str,
    ) -> Result<Message, MailError> {
        let address: Address = to.trim().parse().map_err(|_| {
            MailError::Permanent(format!(
                "the recipient address {masked} is not a valid email address"
            ))
        })?;
        Message::builder()
            .from(self.inner.from.clone())
            .to(Mailbox::new(None, address))
            .subject(mail.subject.clone())
            .message_id(Some(format!("<{}@mudmap>", message_id_part(message_id))))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str(TEMPLATE_HEADER),
                mail.template.to_owned(),
            ))
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .map_err(|e| {
                MailError::Permanent(format!("cannot build the {} mail: {e}", mail.template))
            })
    }
}

/// Deliver one mail over a connection of our own ([`SmtpRoute::Direct`]): connect with
/// TCP_NODELAY, greeting and EHLO, STARTTLS when configured (required: without it the mail is
/// not sent), AUTH when credentials are configured, MAIL/RCPT/DATA; then QUIT in the background.
/// The caller bounds the whole by [`SEND_TIMEOUT`].
async fn deliver_direct(
    direct: &DirectSmtp,
    host: &str,
    port: u16,
    envelope: &Envelope,
    raw: &[u8],
    to: &str,
    masked: &str,
) -> Result<(), MailError> {
    let lettre_error = |e: lettre::transport::smtp::Error| smtp_error(&e, host, port, to, masked);
    let stream = connect_tcp(host, port, CONNECT_TIMEOUT)
        .await
        .map_err(|e| connect_error(&e, host, port))?;
    let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &direct.hello)
        .await
        .map_err(lettre_error)?;
    let result = async {
        if let Some(tls) = &direct.starttls {
            if !conn.can_starttls() {
                return Err(MailError::Permanent(format!(
                    "the SMTP server at {}:{port} does not offer STARTTLS, so the mail was not sent (it would have gone unencrypted) — check smtp.security: tls if the server expects TLS from the start (usually port 465), none only for a trusted relay",
                    bracket_ipv6(host)
                )));
            }
            conn.starttls(tls.clone(), &direct.hello)
                .await
                .map_err(lettre_error)?;
        }
        if let Some(credentials) = &direct.credentials {
            conn.auth(AUTH_MECHANISMS, credentials)
                .await
                .map_err(lettre_error)?;
        }
        conn.send(envelope, raw).await.map_err(lettre_error)?;
        Ok(())
    }
    .await;
    close_in_background(conn);
    result
}

/// Open a TCP connection to `host:port` with TCP_NODELAY set, trying each address the name
/// resolves to in turn, each within `timeout` (as lettre does). Without TCP_NODELAY, lettre's
/// second small write (the `.` ending DATA) waits for the ACK of the first, which a server with
/// delayed ACK holds back for ~40 ms.
async fn connect_tcp(host: &str, port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Ok(Err(e)) => last_error = Some(e),
            Err(_) => {
                last_error = Some(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connection timed out",
                ))
            }
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} resolves to no address"),
        )
    }))
}

/// Say QUIT and close, without making the caller wait for the server's goodbye. A connection
/// that lettre already gave up on (after an error) is only closed.
fn close_in_background(mut conn: AsyncSmtpConnection) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(QUIT_TIMEOUT, conn.abort()).await;
    });
}

/// The [`MailError`] for a TCP connection that could not be opened, in the words
/// [`smtp_error`] uses for the same failures inside lettre.
fn connect_error(error: &std::io::Error, host: &str, port: u16) -> MailError {
    let server = format!("{}:{port}", bracket_ipv6(host));
    if error.kind() == std::io::ErrorKind::TimedOut {
        MailError::Transient(format!(
            "cannot connect to the SMTP server at {server} within {} s — check smtp.host/smtp.port and that a firewall lets this host reach it",
            CONNECT_TIMEOUT.as_secs()
        ))
    } else {
        MailError::Transient(format!(
            "cannot reach the SMTP server at {server}: {error} — check smtp.host/smtp.port"
        ))
    }
}

/// Turn lettre's error into a transient or permanent [`MailError`] with a sentence that names
/// the setting to check. The server's reply is included, with the recipient's address masked.
fn smtp_error(
    error: &lettre::transport::smtp::Error,
    host: &str,
    port: u16,
    to: &str,
    masked: &str,
) -> MailError {
    let server = format!("{}:{port}", bracket_ipv6(host));
    let detail = std::error::Error::source(error)
        .map(ToString::to_string)
        .unwrap_or_else(|| error.to_string());
    let to = to.trim();
    let detail = if to.is_empty() {
        detail
    } else {
        detail.replace(to, masked)
    };

    if let Some(code) = error.status() {
        let code = u16::from(code);
        return if error.is_permanent() {
            if matches!(code, 530 | 534 | 535 | 538) {
                MailError::Permanent(format!(
                    "the SMTP server at {server} refused the login ({code} {detail}) — check smtp.username and smtp.password"
                ))
            } else {
                MailError::Permanent(format!(
                    "the SMTP server at {server} rejected the mail ({code} {detail}) — check the recipient address and smtp.from"
                ))
            }
        } else {
            MailError::Transient(format!(
                "the SMTP server at {server} deferred the mail ({code} {detail}); it will be retried"
            ))
        };
    }
    if error.is_timeout() {
        return MailError::Transient(format!(
            "cannot connect to the SMTP server at {server} within {} s — check smtp.host/smtp.port and that a firewall lets this host reach it",
            CONNECT_TIMEOUT.as_secs()
        ));
    }
    if error.is_tls() {
        return MailError::Transient(format!(
            "TLS with the SMTP server at {server} failed: {detail} — check smtp.security (tls usually means port 465, starttls port 587)"
        ));
    }
    if error.is_client() {
        return MailError::Permanent(format!(
            "cannot send through the SMTP server at {server}: {detail} — check smtp.security and smtp.username"
        ));
    }
    if error.is_response() {
        return MailError::Transient(format!(
            "the SMTP server at {server} sent a reply that cannot be read ({detail}) — check that smtp.host/smtp.port point to an SMTP server"
        ));
    }
    MailError::Transient(format!(
        "cannot reach the SMTP server at {server}: {detail} — check smtp.host/smtp.port"
    ))
}

/// `jane.doe@example.com` → `j***@example.com`; anything that is not an address → `***`.
/// The only form of a recipient that may appear in logs and error messages.
pub fn mask_address(address: &str) -> String {
    let address = address.trim();
    let Some((local, domain)) = address.rsplit_once('@') else {
        return "***".to_owned();
    };
    let bad = |part: &str| {
        part.is_empty()
            || part
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '@'))
    };
    if bad(local) || bad(domain) {
        return "***".to_owned();
    }
    let mut chars = local.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(_)) => format!("{first}***@{domain}"),
        _ => format!("***@{domain}"),
    }
}

/// The part of a Message-ID before `@mudmap`: the caller's id with anything outside RFC 5322's
/// `atext` (and `.`) replaced by `-`, or a random id when empty.
fn message_id_part(id: &str) -> String {
    let cleaned: String = id
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_matches('.').to_owned();
    if cleaned.is_empty() {
        uuid::Uuid::new_v4().simple().to_string()
    } else {
        cleaned
    }
}

fn bracket_ipv6(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Write `dir/name` through a hidden temporary file (`.name.tmp`), flushed to disk, then a
/// rename: a reader, or a crash, never sees half a file.
pub(crate) async fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = async {
        let mut file = tokio::fs::File::create(&tmp).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&tmp, dir.join(name)).await
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::sink::{self, SmtpSink};
    use super::*;
    use crate::config::Secret;

    const LINK: &str = "http://127.0.0.1:3000/verify?token=s3cr3t-t0ken&next=%2Fdevices";

    fn sink_settings(addr: SocketAddr) -> SmtpSettings {
        SmtpSettings {
            host: Some(addr.ip().to_string()),
            port: Some(addr.port()),
            security: SmtpSecurity::None,
            username: None,
            password: None,
            from: "Mudmap Test <noreply@mudmap.test>".to_owned(),
        }
    }

    fn verify_mail() -> RenderedMail {
        Template::VerifyEmail {
            link: LINK.to_owned(),
        }
        .render()
    }

    async fn start_sink() -> SmtpSink {
        SmtpSink::start(SocketAddr::from(([127, 0, 0, 1], 0)), None)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn smtp_delivers_to_the_sink_with_headers_and_link() {
        let sink = start_sink().await;
        let data_dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::from_settings(&sink_settings(sink.addr()), data_dir.path()).unwrap();
        assert_eq!(
            mailer.describe(),
            format!("SMTP 127.0.0.1:{} (unencrypted)", sink.addr().port())
        );
        let mail = verify_mail();

        mailer
            .send("jane.doe@example.com", &mail, "job-42")
            .await
            .unwrap();

        let messages = sink.wait_for(1, Duration::from_secs(10)).await;
        assert_eq!(messages.len(), 1);
        let received = &messages[0];
        assert_eq!(received.from, "noreply@mudmap.test");
        assert_eq!(received.to, vec!["jane.doe@example.com".to_owned()]);
        assert_eq!(received.header("Subject"), Some(mail.subject.clone()));
        assert_eq!(
            received.header("To").as_deref(),
            Some("jane.doe@example.com")
        );
        let from = received.header("From").unwrap();
        assert!(from.contains("noreply@mudmap.test"), "{from}");
        assert_eq!(
            received.header("Message-ID").as_deref(),
            Some("<job-42@mudmap>")
        );
        assert_eq!(
            received.header(TEMPLATE_HEADER).as_deref(),
            Some("verify_email")
        );
        let content_type = received.header("Content-Type").unwrap();
        assert!(
            content_type.starts_with("multipart/alternative"),
            "{content_type}"
        );
        let body = received.body_text();
        assert!(body.contains(LINK), "link in the text part:\n{body}");
        let escaped = LINK.replace('&', "&amp;");
        assert!(
            body.contains(&format!("href=\"{escaped}\"")),
            "link in the html part:\n{body}"
        );
        assert_eq!(received.links(), vec![LINK.to_owned()]);
        sink.stop().await;
    }

    #[tokio::test]
    async fn smtp_logs_in_when_given_credentials() {
        let sink = start_sink().await;
        let data_dir = tempfile::tempdir().unwrap();
        let settings = SmtpSettings {
            username: Some("mudmap".to_owned()),
            password: Some(Secret::new("hunter2")),
            ..sink_settings(sink.addr())
        };
        let mailer = Mailer::from_settings(&settings, data_dir.path()).unwrap();
        assert!(mailer.describe().ends_with("(unencrypted, user mudmap)"));
        mailer
            .send("ops@example.com", &verify_mail(), "job-1")
            .await
            .unwrap();
        assert_eq!(sink.wait_for(1, Duration::from_secs(10)).await.len(), 1);
        sink.stop().await;
    }

    #[tokio::test]
    async fn a_deferral_is_transient_and_the_retry_succeeds() {
        let sink = start_sink().await;
        let data_dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::from_settings(&sink_settings(sink.addr()), data_dir.path()).unwrap();
        let mail = verify_mail();

        sink.set_reject(true);
        let error = mailer
            .send("jane.doe@example.com", &mail, "job-7")
            .await
            .unwrap_err();
        assert!(matches!(error, MailError::Transient(_)), "{error:?}");
        assert!(!error.is_permanent());
        let message = error.to_string();
        assert!(message.contains("451"), "{message}");
        assert!(message.contains(&sink.addr().to_string()), "{message}");
        assert!(sink.messages().is_empty());

        sink.set_reject(false);
        mailer
            .send("jane.doe@example.com", &mail, "job-7")
            .await
            .unwrap();
        let messages = sink.wait_for(1, Duration::from_secs(10)).await;
        assert_eq!(messages.len(), 1);
        assert_eq!(
            messages[0].header("Message-ID").as_deref(),
            Some("<job-7@mudmap>")
        );
        sink.stop().await;
    }

    #[tokio::test]
    async fn several_mails_at_once_all_arrive() {
        let sink = start_sink().await;
        let data_dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::from_settings(&sink_settings(sink.addr()), data_dir.path()).unwrap();
        let sends = (0..6).map(|i| {
            let mailer = mailer.clone();
            async move {
                mailer
                    .send(
                        &format!("user{i}@example.com"),
                        &verify_mail(),
                        &format!("job-{i}"),
                    )
                    .await
            }
        });
        for result in futures::future::join_all(sends).await {
            result.unwrap();
        }
        let messages = sink.wait_for(6, Duration::from_secs(10)).await;
        let mut ids: Vec<String> = messages
            .iter()
            .map(|m| m.header("Message-ID").unwrap())
            .collect();
        ids.sort();
        let expected: Vec<String> = (0..6).map(|i| format!("<job-{i}@mudmap>")).collect();
        assert_eq!(ids, expected);
        sink.stop().await;
    }

    #[tokio::test]
    async fn the_delivery_connection_has_tcp_nodelay() {
        // Nagle's algorithm would hold lettre's last write of a mail (the "." ending DATA) until
        // the server ACKs the body, which a delayed-ACK server does ~40 ms later: every
        // connection a Direct route delivers over comes from connect_tcp.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = connect_tcp("127.0.0.1", addr.port(), CONNECT_TIMEOUT)
            .await
            .unwrap();
        assert!(stream.nodelay().unwrap());
        assert_eq!(stream.peer_addr().unwrap(), addr);
        let (accepted, _) = listener.accept().await.unwrap();
        assert_eq!(accepted.peer_addr().unwrap(), stream.local_addr().unwrap());

        let data_dir = tempfile::tempdir().unwrap();
        for security in [SmtpSecurity::None, SmtpSecurity::Starttls] {
            let settings = SmtpSettings {
                security,
                ..sink_settings(addr)
            };
            let mailer = Mailer::from_settings(&settings, data_dir.path()).unwrap();
            assert!(
                matches!(
                    &mailer.inner.transport,
                    Transport::Smtp {
                        route: SmtpRoute::Direct(_),
                        ..
                    }
                ),
                "{security:?}"
            );
        }
    }

    #[tokio::test]
    async fn starttls_without_server_support_is_permanent_and_sends_nothing() {
        let sink = start_sink().await;
        let data_dir = tempfile::tempdir().unwrap();
        let settings = SmtpSettings {
            security: SmtpSecurity::Starttls,
            username: Some("mudmap".to_owned()),
            password: Some(Secret::new("hunter2")),
            ..sink_settings(sink.addr())
        };
        let mailer = Mailer::from_settings(&settings, data_dir.path()).unwrap();
        let error = mailer
            .send("jane.doe@example.com", &verify_mail(), "job-12")
            .await
            .unwrap_err();
        assert!(matches!(error, MailError::Permanent(_)), "{error:?}");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "the SMTP server at {} does not offer STARTTLS",
                sink.addr()
            )),
            "{message}"
        );
        assert!(message.contains("check smtp.security"), "{message}");
        assert!(!message.contains("jane.doe"), "{message}");
        assert!(sink.messages().is_empty());
        sink.stop().await;
    }

    #[tokio::test]
    async fn an_unreachable_server_is_transient_and_says_what_to_check() {
        // A port that was free a moment ago: the connection is refused.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let data_dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::from_settings(
            &sink_settings(SocketAddr::from(([127, 0, 0, 1], port))),
            data_dir.path(),
        )
        .unwrap();
        let error = mailer
            .send("jane.doe@example.com", &verify_mail(), "job-9")
            .await
            .unwrap_err();
        assert!(!error.is_permanent(), "{error:?}");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("cannot reach the SMTP server at 127.0.0.1:{port}")),
            "{message}"
        );
        assert!(message.contains("check smtp.host/smtp.port"), "{message}");
        assert!(!message.contains("jane.doe"), "{message}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out_as_transient() {
        // Accepts connections and never says a word (e.g. a TLS port with security = starttls).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        let data_dir = tempfile::tempdir().unwrap();
        let mut mailer = Mailer::from_settings(&sink_settings(addr), data_dir.path()).unwrap();
        Arc::get_mut(&mut mailer.inner).unwrap().send_timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let error = mailer
            .send("jane.doe@example.com", &verify_mail(), "job-11")
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!error.is_permanent(), "{error:?}");
        assert!(
            error.to_string().contains("did not finish the delivery"),
            "{error}"
        );
        held.abort();
    }

    #[tokio::test]
    async fn without_a_host_mail_is_written_to_one_file() {
        let data_dir = tempfile::tempdir().unwrap();
        let settings = SmtpSettings {
            from: String::new(),
            ..SmtpSettings::default()
        };
        let mailer = Mailer::from_settings(&settings, data_dir.path()).unwrap();
        let dir = data_dir.path().join("mail");
        assert_eq!(mailer.describe(), format!("files under {}", dir.display()));
        assert_eq!(mailer.from_address(), "Mudmap <mudmap@localhost>");
        let mail = verify_mail();

        mailer
            .send("jane.doe@example.com", &mail, "job-3")
            .await
            .unwrap();

        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names.len(),
            1,
            "exactly one file, no temporary left: {names:?}"
        );
        let name = &names[0];
        assert!(name.ends_with(".eml"), "{name}");
        assert!(name.contains("-verify_email-"), "{name}");
        let raw = std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(sink::header(&raw, "Subject"), Some(mail.subject.clone()));
        assert_eq!(
            sink::header(&raw, "Message-ID").as_deref(),
            Some("<job-3@mudmap>")
        );
        assert_eq!(
            sink::header(&raw, "From").as_deref(),
            Some("Mudmap <mudmap@localhost>")
        );
        assert!(sink::body_text(&raw).contains(LINK));
    }

    #[tokio::test]
    async fn an_invalid_recipient_is_permanent_and_nothing_is_written() {
        let data_dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::from_settings(&SmtpSettings::default(), data_dir.path()).unwrap();
        let error = mailer
            .send("not an address", &verify_mail(), "job-5")
            .await
            .unwrap_err();
        assert!(error.is_permanent(), "{error:?}");
        assert_eq!(
            error.to_string(),
            "the recipient address *** is not a valid email address"
        );
        let files = std::fs::read_dir(data_dir.path().join("mail"))
            .unwrap()
            .count();
        assert_eq!(files, 0);
    }

    #[test]
    fn an_invalid_sender_is_a_config_error() {
        let data_dir = tempfile::tempdir().unwrap();
        let settings = SmtpSettings {
            from: "not a sender".to_owned(),
            ..SmtpSettings::default()
        };
        let error = Mailer::from_settings(&settings, data_dir.path()).unwrap_err();
        assert!(matches!(error, MailError::Config(_)), "{error:?}");
        assert!(error.to_string().starts_with("smtp.from \"not a sender\""));
    }

    #[tokio::test]
    async fn describes_each_security_with_its_default_port() {
        let data_dir = tempfile::tempdir().unwrap();
        for (security, expected) in [
            (
                SmtpSecurity::Starttls,
                "SMTP smtp.example.com:587 (STARTTLS)",
            ),
            (SmtpSecurity::Tls, "SMTP smtp.example.com:465 (TLS)"),
            (SmtpSecurity::None, "SMTP smtp.example.com:25 (unencrypted)"),
        ] {
            let settings = SmtpSettings {
                host: Some("smtp.example.com".to_owned()),
                security,
                ..SmtpSettings::default()
            };
            let mailer = Mailer::from_settings(&settings, data_dir.path()).unwrap();
            assert_eq!(mailer.describe(), expected);
        }
        // Building an SMTP mailer creates no mail directory.
        assert!(!data_dir.path().join("mail").exists());
    }

    #[test]
    fn mask_address_keeps_the_first_letter_and_the_domain() {
        assert_eq!(mask_address("jane.doe@example.com"), "j***@example.com");
        assert_eq!(mask_address("  Bob@Example.org "), "B***@Example.org");
        assert_eq!(mask_address("a@example.com"), "***@example.com");
        assert_eq!(mask_address("élodie@exemple.fr"), "é***@exemple.fr");
        assert_eq!(mask_address("user@sub@example.com"), "***");
        for invalid in [
            "",
            "no-at-sign",
            "@example.com",
            "jane@",
            "Jane <jane@x.com>",
            "a b@c.d",
        ] {
            assert_eq!(mask_address(invalid), "***", "{invalid:?}");
        }
    }

    #[test]
    fn message_ids_are_made_safe() {
        assert_eq!(message_id_part("job-42"), "job-42");
        assert_eq!(message_id_part("01J<x>@y z"), "01J-x--y-z");
        assert_eq!(message_id_part("").len(), 32);
    }

    #[test]
    fn errors_know_whether_a_retry_can_help() {
        assert!(!MailError::Transient("x".to_owned()).is_permanent());
        assert!(MailError::Permanent("x".to_owned()).is_permanent());
        assert!(MailError::Config("x".to_owned()).is_permanent());
    }
}
