//! A minimal SMTP server on loopback that accepts every message: the mail sink for tests,
//! benchmarks, the browser tests and `mudmap mail-sink`.
//!
//! It speaks what lettre needs (EHLO/HELO, AUTH PLAIN/LOGIN accepting any credentials, MAIL, RCPT,
//! DATA with dot-unstuffing, RSET, NOOP, QUIT), one tokio task per connection. Messages are kept
//! in memory and, when a directory is given, also written there as `.eml` files (temporary file,
//! then rename). [`SmtpSink::set_reject`] makes it defer every `MAIL FROM` with a 4xx, for retry
//! tests. [`header`] and [`body_text`] decode a raw message enough for a test to read a subject
//! or find a link. It is not a mail server: no TLS, no relaying, no queue.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

/// Largest message accepted (advertised with `SIZE`).
const MAX_MESSAGE_BYTES: usize = 25 * 1024 * 1024;
/// Messages kept in memory (the oldest are dropped beyond this; files are kept).
const MAX_KEPT: usize = 10_000;
/// Longest command line; longer lines close the connection.
const MAX_COMMAND_LINE: usize = 4096;
/// Longest chunk read at once inside DATA (longer lines are kept, in pieces).
const MAX_DATA_CHUNK: usize = 64 * 1024;
/// A connection silent for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const NAME: &str = "mudmap-sink";

/// A message as the sink received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// Envelope sender (`MAIL FROM`), without angle brackets; empty for a null sender.
    pub from: String,
    /// Envelope recipients (`RCPT TO`), in order.
    pub to: Vec<String>,
    /// The raw message (headers and body), dot-unstuffed, with CRLF line ends.
    pub data: String,
    pub received_at: Instant,
}

impl ReceivedMail {
    /// The decoded value of the top-level header `name` (see [`header`]).
    pub fn header(&self, name: &str) -> Option<String> {
        header(&self.data, name)
    }

    /// Every text part, decoded (see [`body_text`]).
    pub fn body_text(&self) -> String {
        body_text(&self.data)
    }

    /// The http(s) links in the decoded text parts (see [`links`]).
    pub fn links(&self) -> Vec<String> {
        links(&self.data)
    }
}

struct Shared {
    messages: Mutex<VecDeque<ReceivedMail>>,
    /// The number of messages received (including any dropped beyond [`MAX_KEPT`]), for
    /// [`SmtpSink::wait_for`].
    count: watch::Sender<usize>,
    reject: AtomicBool,
    sequence: AtomicU64,
    dir: Option<PathBuf>,
}

impl Shared {
    fn messages(&self) -> std::sync::MutexGuard<'_, VecDeque<ReceivedMail>> {
        // A panic while holding the lock cannot leave the queue half-updated: keep going.
        self.messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running SMTP sink. Dropping it stops accepting and closes its connections; [`SmtpSink::stop`]
/// does the same and waits for it.
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSink")
            .field("addr", &self.addr)
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

impl SmtpSink {
    /// Listen on `addr` (port 0 picks a free port) and accept mail until stopped. With `dir`, the
    /// directory is created and every message is also written there as `<n>-<unix-ms>.eml`.
    pub async fn start(addr: SocketAddr, dir: Option<PathBuf>) -> std::io::Result<SmtpSink> {
        if let Some(dir) = &dir {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot create the mail directory {}: {e}", dir.display()),
                )
            })?;
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        let addr = listener.local_addr()?;
        let (count, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            messages: Mutex::new(VecDeque::new()),
            count,
            reject: AtomicBool::new(false),
            sequence: AtomicU64::new(0),
            dir,
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, shared.clone(), stopped));
        tracing::debug!(sink.addr = %addr, "SMTP sink listening");
        Ok(SmtpSink {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address it listens on (with the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The directory messages are written to, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.shared.dir.as_deref()
    }

    /// Every message received so far, oldest first (the latest 10 000 in a long-running sink).
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.messages().iter().cloned().collect()
    }

    /// Wait until at least `count` messages have arrived, or `timeout` has passed; returns every
    /// message received by then (so fewer than `count` on timeout).
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let mut received = self.shared.count.subscribe();
        // The sender lives in `shared`, so `wait_for` only ends by the predicate or the timeout.
        let _ = tokio::time::timeout(timeout, received.wait_for(|n| *n >= count)).await;
        self.messages()
    }

    /// When on, every `MAIL FROM` is answered `451 4.3.0 try again later`.
    pub fn set_reject(&self, on: bool) {
        self.shared.reject.store(on, Ordering::SeqCst);
    }

    /// Stop accepting, close every connection and wait until they are gone.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            // Aborting the accept loop drops its JoinSet, which aborts every connection task.
            task.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let shared = shared.clone();
                    connections.spawn(async move {
                        if let Err(e) = serve(stream, &shared).await {
                            tracing::debug!(sink.peer = %peer, error = %e, "SMTP sink connection ended");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "SMTP sink cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// The state of one SMTP transaction.
#[derive(Default)]
struct Transaction {
    from: Option<String>,
    to: Vec<String>,
}

async fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut transaction = Transaction::default();
    let mut line = Vec::with_capacity(256);

    reply(&mut write, &format!("220 {NAME} ESMTP ready")).await?;
    loop {
        line.clear();
        let n = read_limited(&mut reader, &mut line, MAX_COMMAND_LINE).await?;
        if n == 0 {
            return Ok(());
        }
        if !line.ends_with(b"\n") {
            reply(&mut write, "500 5.5.6 line too long").await?;
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let command = text.trim_end_matches(['\r', '\n']);
        let (verb, argument) = match command.split_once(' ') {
            Some((verb, argument)) => (verb.to_ascii_uppercase(), argument.trim()),
            None => (command.to_ascii_uppercase(), ""),
        };
        match verb.as_str() {
            "EHLO" => {
                transaction = Transaction::default();
                let lines = [
                    NAME.to_owned(),
                    "8BITMIME".to_owned(),
                    "SMTPUTF8".to_owned(),
                    format!("SIZE {MAX_MESSAGE_BYTES}"),
                    "AUTH PLAIN LOGIN".to_owned(),
                ];
                let mut response = String::new();
                for (i, l) in lines.iter().enumerate() {
                    let separator = if i + 1 == lines.len() { ' ' } else { '-' };
                    response.push_str(&format!("250{separator}{l}\r\n"));
                }
                write.write_all(response.as_bytes()).await?;
            }
            "HELO" => {
                transaction = Transaction::default();
                reply(&mut write, &format!("250 {NAME}")).await?;
            }
            "AUTH" => auth(&mut reader, &mut write, argument).await?,
            "MAIL" => {
                let Some(address) = path_argument(argument, "FROM:") else {
                    reply(&mut write, "501 5.5.4 syntax: MAIL FROM:<address>").await?;
                    continue;
                };
                if shared.reject.load(Ordering::SeqCst) {
                    reply(&mut write, "451 4.3.0 try again later").await?;
                } else if transaction.from.is_some() {
                    reply(&mut write, "503 5.5.1 sender already given").await?;
                } else {
                    transaction.from = Some(address);
                    reply(&mut write, "250 2.1.0 OK").await?;
                }
            }
            "RCPT" => {
                let Some(address) = path_argument(argument, "TO:") else {
                    reply(&mut write, "501 5.5.4 syntax: RCPT TO:<address>").await?;
                    continue;
                };
                if transaction.from.is_none() {
                    reply(&mut write, "503 5.5.1 MAIL first").await?;
                } else if address.is_empty() {
                    reply(&mut write, "501 5.1.3 empty recipient").await?;
                } else {
                    transaction.to.push(address);
                    reply(&mut write, "250 2.1.5 OK").await?;
                }
            }
            "DATA" => {
                let Some(from) = transaction.from.clone() else {
                    reply(&mut write, "503 5.5.1 MAIL first").await?;
                    continue;
                };
                if transaction.to.is_empty() {
                    reply(&mut write, "554 5.5.1 no valid recipients").await?;
                    continue;
                }
                reply(&mut write, "354 end data with <CR><LF>.<CR><LF>").await?;
                let data = read_data(&mut reader).await?;
                let to = std::mem::take(&mut transaction.to);
                transaction = Transaction::default();
                match data {
                    None => reply(&mut write, "552 5.3.4 message too big").await?,
                    Some(data) => {
                        let response = store(shared, from, to, data).await;
                        reply(&mut write, &response).await?;
                    }
                }
            }
            "RSET" => {
                transaction = Transaction::default();
                reply(&mut write, "250 2.0.0 OK").await?;
            }
            "NOOP" => reply(&mut write, "250 2.0.0 OK").await?,
            "VRFY" => reply(&mut write, "252 2.5.0 cannot verify, will accept").await?,
            "QUIT" => {
                reply(&mut write, "221 2.0.0 bye").await?;
                return Ok(());
            }
            _ => reply(&mut write, "500 5.5.2 command not recognized").await?,
        }
    }
}

async fn reply(write: &mut (impl AsyncWriteExt + Unpin), line: &str) -> std::io::Result<()> {
    write.write_all(format!("{line}\r\n").as_bytes()).await
}

/// Read up to `max` bytes through the next `\n` (inclusive); 0 at end of stream. Times out after
/// [`IDLE_TIMEOUT`].
async fn read_limited<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<usize> {
    let mut limited = (&mut *reader).take(max as u64);
    match tokio::time::timeout(IDLE_TIMEOUT, limited.read_until(b'\n', buf)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "client idle for too long",
        )),
    }
}

/// `FROM:<a@b> BODY=8BITMIME` → `a@b`; `None` when the prefix or the brackets are missing.
fn path_argument(argument: &str, prefix: &str) -> Option<String> {
    let head = argument.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = argument[prefix.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].to_owned())
}

/// AUTH PLAIN and LOGIN, with or without an initial response; any credentials are accepted.
async fn auth<R, W>(reader: &mut R, write: &mut W, argument: &str) -> std::io::Result<()>
where
    R: tokio::io::AsyncBufRead + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut words = argument.split_whitespace();
    let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
    let initial = words.next();
    // Base64 of "Username:" and "Password:".
    let prompts: &[&str] = match (mechanism.as_str(), initial) {
        ("PLAIN", Some(_)) => &[],
        ("PLAIN", None) => &[""],
        ("LOGIN", Some(_)) => &["UGFzc3dvcmQ6"],
        ("LOGIN", None) => &["VXNlcm5hbWU6", "UGFzc3dvcmQ6"],
        _ => {
            return reply(write, "504 5.5.4 unrecognized authentication type").await;
        }
    };
    let mut line = Vec::new();
    for prompt in prompts {
        reply(write, &format!("334 {prompt}")).await?;
        line.clear();
        if read_limited(reader, &mut line, MAX_COMMAND_LINE).await? == 0 {
            return Ok(());
        }
        if line.trim_ascii() == b"*" {
            return reply(write, "501 5.0.0 authentication cancelled").await;
        }
    }
    reply(write, "235 2.7.0 authentication successful").await
}

/// Read a DATA section up to the lone `.` line, dot-unstuffed. `None` when it exceeded
/// [`MAX_MESSAGE_BYTES`] (the rest is read and discarded so the session stays in sync).
async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<String>> {
    let mut data: Vec<u8> = Vec::new();
    let mut chunk = Vec::with_capacity(1024);
    let mut at_line_start = true;
    let mut too_big = false;
    loop {
        chunk.clear();
        if read_limited(reader, &mut chunk, MAX_DATA_CHUNK).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed inside DATA",
            ));
        }
        let mut piece = chunk.as_slice();
        if at_line_start {
            if piece == b".\r\n" || piece == b".\n" {
                break;
            }
            if piece.first() == Some(&b'.') {
                piece = &piece[1..];
            }
        }
        at_line_start = chunk.ends_with(b"\n");
        if data.len() + piece.len() > MAX_MESSAGE_BYTES {
            too_big = true;
        }
        if !too_big {
            data.extend_from_slice(piece);
        }
    }
    if too_big {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&data).into_owned()))
}

/// Keep the message (and write it to the directory); returns the SMTP reply.
async fn store(shared: &Shared, from: String, to: Vec<String>, data: String) -> String {
    let n = shared.sequence.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(dir) = &shared.dir {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let name = format!("{n}-{ms}.eml");
        if let Err(e) = super::write_atomically(dir, &name, data.as_bytes()).await {
            tracing::warn!(error = %e, dir = %dir.display(), "SMTP sink cannot write a message");
            return format!("451 4.3.0 cannot write the message to {}", dir.display());
        }
    }
    tracing::info!(
        sink.message = n,
        mail.recipients = to.len(),
        bytes = data.len(),
        "SMTP sink received a message"
    );
    let mail = ReceivedMail {
        from,
        to,
        data,
        received_at: Instant::now(),
    };
    {
        let mut messages = shared.messages();
        if messages.len() == MAX_KEPT {
            messages.pop_front();
        }
        messages.push_back(mail);
        // Counted under the lock, so the count never runs ahead of what `messages()` returns.
        shared.count.send_modify(|count| *count += 1);
    }
    format!("250 2.0.0 OK queued as {n}")
}

// ---------- Reading messages ----------

/// Split a message (or a MIME part) into its header block and its body.
fn split_head_body(raw: &str) -> (&str, &str) {
    let crlf = raw.find("\r\n\r\n").map(|i| (i, i + 4));
    let lf = raw.find("\n\n").map(|i| (i, i + 2));
    let split = match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    };
    match split {
        Some((head_end, body_start)) => (&raw[..head_end], &raw[body_start..]),
        // Only headers, or a part that starts with its blank line.
        None if raw.starts_with("\r\n") => ("", &raw[2..]),
        None if raw.starts_with('\n') => ("", &raw[1..]),
        None => (raw, ""),
    }
}

/// The raw (unfolded, undecoded) value of the first header `name` in a header block.
fn raw_header(head: &str, name: &str) -> Option<String> {
    let mut found: Option<String> = None;
    for line in head.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(value) = found.as_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if found.is_some() {
            break;
        }
        if let Some((key, value)) = line.split_once(':') {
            if key.trim().eq_ignore_ascii_case(name) {
                found = Some(value.trim().to_owned());
            }
        }
    }
    found
}

/// The value of the top-level header `name` (case-insensitive): unfolded, with RFC 2047 encoded
/// words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`) decoded.
pub fn header(raw: &str, name: &str) -> Option<String> {
    let (head, _) = split_head_body(raw);
    raw_header(head, name).map(|v| decode_encoded_words(&v))
}

/// Every `text/*` part of the message (or its single body), transfer-decoded (base64 or
/// quoted-printable) and joined with blank lines, in message order: enough for a test to find a
/// link or a sentence. Assumes UTF-8.
pub fn body_text(raw: &str) -> String {
    let (head, body) = split_head_body(raw);
    let mut out = String::new();
    collect_text(head, body, &mut out, 0);
    out
}

/// The distinct http(s) links in the decoded text parts, in order of appearance. Links found in
/// HTML attributes are unescaped (`&amp;` → `&`).
pub fn links(raw: &str) -> Vec<String> {
    let text = body_text(raw);
    let mut found: Vec<String> = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = ["http://", "https://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        let candidate = &rest[start..];
        let end = candidate
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>'))
            .unwrap_or(candidate.len());
        let link = candidate[..end].replace("&amp;", "&");
        if !found.contains(&link) {
            found.push(link);
        }
        rest = &candidate[end..];
    }
    found
}

fn collect_text(head: &str, body: &str, out: &mut String, depth: usize) {
    let content_type = raw_header(head, "Content-Type").unwrap_or_else(|| "text/plain".to_owned());
    let lower = content_type.to_ascii_lowercase();
    if lower.starts_with("multipart/") {
        if let (Some(boundary), true) = (parameter(&content_type, "boundary"), depth < 8) {
            for part in mime_parts(body, &boundary) {
                let (part_head, part_body) = split_head_body(&part);
                collect_text(part_head, part_body, out, depth + 1);
            }
        }
        return;
    }
    if !lower.starts_with("text/") {
        return;
    }
    let encoding = raw_header(head, "Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let decoded = match encoding.as_str() {
        "base64" => decode_base64(body).unwrap_or_else(|| body.as_bytes().to_vec()),
        "quoted-printable" => decode_quoted_printable(body, false),
        _ => body.as_bytes().to_vec(),
    };
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
    }
    out.push_str(&String::from_utf8_lossy(&decoded));
}

/// A `name=value` or `name="value"` parameter of a structured header value.
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|item| {
        let (key, v) = item.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case(name) {
            return None;
        }
        let v = v.trim();
        Some(
            v.strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or(v)
                .to_owned(),
        )
    })
}

/// The parts of a multipart body between `--boundary` lines, up to `--boundary--`.
fn mime_parts(body: &str, boundary: &str) -> Vec<String> {
    let delimiter = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let mut parts = Vec::new();
    let mut current: Option<String> = None;
    for line in body.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\r', '\n']).trim_end();
        if bare == close {
            if let Some(part) = current.take() {
                parts.push(part);
            }
            break;
        }
        if bare == delimiter {
            if let Some(part) = current.take() {
                parts.push(part);
            }
            current = Some(String::new());
            continue;
        }
        if let Some(part) = current.as_mut() {
            part.push_str(line);
        }
    }
    if let Some(part) = current.take() {
        parts.push(part);
    }
    // The line break before a delimiter belongs to the delimiter (RFC 2046).
    for part in &mut parts {
        if part.ends_with("\r\n") {
            part.truncate(part.len() - 2);
        } else if part.ends_with('\n') {
            part.truncate(part.len() - 1);
        }
    }
    parts
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurpose};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        general_purpose::PAD.with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    LENIENT.decode(compact).ok()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Quoted-printable (RFC 2045), or the `Q` encoding of headers (RFC 2047) when `header` is set
/// (`_` is a space there).
fn decode_quoted_printable(text: &str, header: bool) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' => {
                let rest = &bytes[i + 1..];
                // A soft line break: "=" then optional trailing blanks then the line end.
                let blanks = rest
                    .iter()
                    .take_while(|b| **b == b' ' || **b == b'\t')
                    .count();
                let after = &rest[blanks..];
                if after.starts_with(b"\r\n") {
                    i += 1 + blanks + 2;
                } else if after.starts_with(b"\n") {
                    i += 1 + blanks + 1;
                } else if let (Some(hi), Some(lo)) = (
                    rest.first().copied().and_then(hex_value),
                    rest.get(1).copied().and_then(hex_value),
                ) {
                    out.push(hi << 4 | lo);
                    i += 3;
                } else {
                    out.push(b'=');
                    i += 1;
                }
            }
            b'_' if header => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// Decode the `=?charset?B|Q?text?=` words of a header value (UTF-8 assumed). Whitespace between
/// two encoded words is dropped, as RFC 2047 says.
fn decode_encoded_words(value: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut rest = value;
    loop {
        match next_encoded_word(rest) {
            Some((start, end, bytes)) => {
                let between = &rest[..start];
                if pending.is_empty() || !between.trim().is_empty() {
                    out.push_str(&String::from_utf8_lossy(&pending));
                    pending.clear();
                    out.push_str(between);
                }
                pending.extend(bytes);
                rest = &rest[end..];
            }
            None => {
                out.push_str(&String::from_utf8_lossy(&pending));
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// The first well-formed encoded word in `text`: (start, end, decoded bytes).
fn next_encoded_word(text: &str) -> Option<(usize, usize, Vec<u8>)> {
    let mut from = 0;
    while let Some(offset) = text[from..].find("=?") {
        let start = from + offset;
        if let Some((len, bytes)) = parse_encoded_word(&text[start..]) {
            return Some((start, start + len, bytes));
        }
        from = start + 2;
    }
    None
}

fn parse_encoded_word(word: &str) -> Option<(usize, Vec<u8>)> {
    let inner = word.strip_prefix("=?")?;
    let (charset, rest) = inner.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let text = &rest[..end];
    if charset.is_empty() || charset.contains(char::is_whitespace) || text.contains(' ') {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => decode_base64(text)?,
        "Q" | "q" => decode_quoted_printable(text, true),
        _ => return None,
    };
    let len = 2 + charset.len() + 1 + encoding.len() + 1 + end + 2;
    Some((len, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    /// A line-oriented SMTP client for driving the sink by hand.
    struct Client {
        reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
        writer: tokio::net::tcp::OwnedWriteHalf,
    }

    impl Client {
        async fn connect(addr: SocketAddr) -> Client {
            let stream = TcpStream::connect(addr).await.unwrap();
            let (read, writer) = stream.into_split();
            let mut client = Client {
                reader: BufReader::new(read),
                writer,
            };
            assert!(client.response().await.starts_with("220 "));
            client
        }

        /// Read one (possibly multi-line) response.
        async fn response(&mut self) -> String {
            let mut all = String::new();
            loop {
                let mut line = String::new();
                self.reader.read_line(&mut line).await.unwrap();
                assert!(!line.is_empty(), "connection closed");
                all.push_str(&line);
                if line.as_bytes().get(3) != Some(&b'-') {
                    return all;
                }
            }
        }

        async fn send(&mut self, line: &str) -> String {
            self.writer
                .write_all(format!("{line}\r\n").as_bytes())
                .await
                .unwrap();
            self.response().await
        }
    }

    #[tokio::test]
    async fn speaks_smtp_and_unstuffs_dots() {
        let sink = SmtpSink::start(loopback(), None).await.unwrap();
        let mut c = Client::connect(sink.addr()).await;
        let ehlo = c.send("EHLO test").await;
        assert!(ehlo.contains("250-8BITMIME"), "{ehlo}");
        assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
        assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
        assert!(c.send("DATA").await.starts_with("503"));
        assert!(c.send("RCPT TO:<a@b.test>").await.starts_with("503"));
        assert!(c
            .send("MAIL FROM:<from@x.test> BODY=8BITMIME")
            .await
            .starts_with("250"));
        assert!(c.send("RSET").await.starts_with("250"));
        assert!(c.send("NOOP").await.starts_with("250"));
        assert!(c.send("mail from:<from@x.test>").await.starts_with("250"));
        assert!(c.send("RCPT TO:<one@x.test>").await.starts_with("250"));
        assert!(c.send("RCPT TO:<two@x.test>").await.starts_with("250"));
        assert!(c.send("DATA").await.starts_with("354"));
        let reply = c
            .send("Subject: dots\r\n\r\n..leading dot\r\nmiddle . dot\r\n.")
            .await;
        assert!(reply.starts_with("250"), "{reply}");
        assert!(c.send("BOGUS").await.starts_with("500"));
        assert!(c.send("QUIT").await.starts_with("221"));

        let messages = sink.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(messages.len(), 1);
        let mail = &messages[0];
        assert_eq!(mail.from, "from@x.test");
        assert_eq!(mail.to, vec!["one@x.test", "two@x.test"]);
        assert_eq!(
            mail.data,
            "Subject: dots\r\n\r\n.leading dot\r\nmiddle . dot\r\n"
        );
        assert_eq!(mail.header("subject").as_deref(), Some("dots"));
        sink.stop().await;
    }

    #[tokio::test]
    async fn accepts_any_login_and_rejects_when_asked() {
        let sink = SmtpSink::start(loopback(), None).await.unwrap();
        let mut c = Client::connect(sink.addr()).await;
        c.send("EHLO test").await;
        assert!(c
            .send("AUTH PLAIN AHVzZXIAcGFzcw==")
            .await
            .starts_with("235"));
        assert!(c.send("AUTH LOGIN").await.starts_with("334 VXNlcm5hbWU6"));
        assert!(c.send("dXNlcg==").await.starts_with("334 UGFzc3dvcmQ6"));
        assert!(c.send("cGFzcw==").await.starts_with("235"));
        assert!(c.send("AUTH CRAM-MD5").await.starts_with("504"));

        sink.set_reject(true);
        assert_eq!(
            c.send("MAIL FROM:<a@x.test>").await,
            "451 4.3.0 try again later\r\n"
        );
        sink.set_reject(false);
        assert!(c.send("MAIL FROM:<a@x.test>").await.starts_with("250"));
        sink.stop().await;
    }

    #[tokio::test]
    async fn writes_each_message_to_the_directory_and_serves_connections_concurrently() {
        let dir = tempfile::tempdir().unwrap();
        let sink = SmtpSink::start(loopback(), Some(dir.path().join("mail")))
            .await
            .unwrap();
        let addr = sink.addr();
        // Hold one connection idle while others deliver: connections do not wait on each other.
        let mut idle = Client::connect(addr).await;
        idle.send("EHLO idle").await;
        let mut tasks = JoinSet::new();
        for i in 0..5 {
            tasks.spawn(async move {
                let mut c = Client::connect(addr).await;
                c.send("HELO test").await;
                c.send("MAIL FROM:<>").await;
                c.send(&format!("RCPT TO:<r{i}@x.test>")).await;
                c.send("DATA").await;
                let reply = c
                    .send(&format!("Subject: number {i}\r\n\r\nbody\r\n."))
                    .await;
                assert!(reply.starts_with("250"), "{reply}");
                c.send("QUIT").await;
            });
        }
        while let Some(result) = tasks.join_next().await {
            result.unwrap();
        }
        let messages = sink.wait_for(5, Duration::from_secs(5)).await;
        assert_eq!(messages.len(), 5);
        assert!(messages.iter().all(|m| m.from.is_empty()));

        let mut names: Vec<String> = std::fs::read_dir(dir.path().join("mail"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 5, "{names:?}");
        assert!(names
            .iter()
            .all(|n| n.ends_with(".eml") && !n.starts_with('.')));
        let first = names.iter().find(|n| n.starts_with("1-")).unwrap();
        let content = std::fs::read_to_string(dir.path().join("mail").join(first)).unwrap();
        assert!(header(&content, "Subject").unwrap().starts_with("number "));
        assert!(idle.send("NOOP").await.starts_with("250"));
        sink.stop().await;
    }

    #[tokio::test]
    async fn wait_for_returns_what_it_has_at_the_timeout() {
        let sink = SmtpSink::start(loopback(), None).await.unwrap();
        let started = Instant::now();
        let messages = sink.wait_for(1, Duration::from_millis(100)).await;
        assert!(messages.is_empty());
        assert!(started.elapsed() >= Duration::from_millis(100));
        let addr = sink.addr();
        sink.stop().await;
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "stopped sink still listens"
        );
    }

    #[test]
    fn header_unfolds_and_decodes_encoded_words() {
        let raw = "From: a@x.test\r\nSubject: =?utf-8?b?Q2Fmw6k=?=\r\n =?utf-8?q?_cr=C3=A8me?= and\r\n\tmore\r\nX-Empty:\r\n\r\nSubject: not a header\r\n";
        assert_eq!(
            header(raw, "subject").as_deref(),
            Some("Café crème and more")
        );
        assert_eq!(header(raw, "X-Empty").as_deref(), Some(""));
        assert_eq!(header(raw, "To"), None);
        assert_eq!(decode_encoded_words("plain =?x text"), "plain =?x text");
    }

    #[test]
    fn body_text_decodes_base64_and_quoted_printable_parts() {
        let link = "https://mudmap.test/verify?token=abc&x=1";
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("Open {link} now"));
        let raw = format!(
            "Subject: t\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary=\"XyZ\"\r\n\r\n\
             --XyZ\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             {}\r\n{}\r\n\
             --XyZ\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
             <a href=3D\"https://mudmap.test/verify?token=3Dabc&amp;x=3D1\">caf=C3=A9 =\r\nlink</a>\r\n\
             --XyZ\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n\
             --XyZ--\r\n",
            &b64[..10],
            &b64[10..]
        );
        let text = body_text(&raw);
        assert!(text.contains(&format!("Open {link} now")), "{text}");
        assert!(text.contains("café link</a>"), "{text}");
        assert!(!text.contains("PNG"), "{text}");
        assert_eq!(links(&raw), vec![link.to_owned()]);
    }

    #[test]
    fn body_text_of_a_single_part_message() {
        assert_eq!(body_text("Subject: x\r\n\r\nhello\r\n"), "hello\r\n");
        assert_eq!(
            body_text("Content-Transfer-Encoding: quoted-printable\n\na=3Db=\nc\n"),
            "a=bc\n"
        );
    }
}
