//! A delay line between a device's socket and its SSH server: every byte is held for the
//! configured one-way latency (plus jitter) in each direction, so every SSH round trip pays the
//! simulated RTT just as it would on a WAN. Order is preserved; throughput is not limited. The
//! stall fault holds all traffic until it is cleared.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Latency settings for one device.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    /// Round-trip time; each direction gets half.
    pub rtt: Duration,
    /// Extra random delay, up to this much, per chunk and direction.
    pub jitter: Duration,
}

const CHUNK: usize = 16 * 1024;
const IN_FLIGHT_CHUNKS: usize = 64;

/// Put a delay line in front of `socket`. Returns the stream the SSH server should use. The pump
/// tasks end when either side closes.
pub fn delay_line<S>(
    socket: S,
    latency: Latency,
    stall: Arc<AtomicBool>,
    seed: u64,
    kill: watch::Receiver<bool>,
) -> DuplexStream
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (server_side, pump_side) = tokio::io::duplex(CHUNK * 4);
    let (socket_read, socket_write) = tokio::io::split(socket);
    let (pump_read, pump_write) = tokio::io::split(pump_side);
    let one_way = latency.rtt / 2;
    spawn_direction(
        socket_read,
        pump_write,
        one_way,
        latency.jitter,
        stall.clone(),
        seed,
        kill.clone(),
    );
    spawn_direction(
        pump_read,
        socket_write,
        one_way,
        latency.jitter,
        stall,
        seed ^ 0x9e37_79b9_7f4a_7c15,
        kill,
    );
    server_side
}

/// Pump one direction: a reader task stamps each chunk with its due time, a writer task delivers
/// it then. Setting `kill` ends both at once, which closes the socket under the SSH session.
fn spawn_direction<R, W>(
    mut from: R,
    mut to: W,
    delay: Duration,
    jitter: Duration,
    stall: Arc<AtomicBool>,
    seed: u64,
    mut kill: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT_CHUNKS);
    let mut kill_writer = kill.clone();
    tokio::spawn(async move {
        let mut rng = seed | 1;
        let mut last = Instant::now();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = tokio::select! {
                read = from.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                },
                _ = kill.changed() => break,
            };
            let extra = if jitter.is_zero() {
                Duration::ZERO
            } else {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                jitter.mul_f64((rng % 10_000) as f64 / 10_000.0)
            };
            // Never deliver before an earlier chunk: TCP keeps order.
            let due = (Instant::now() + delay + extra).max(last);
            last = due;
            if tx.send((due, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let deliver = async {
            while let Some((due, bytes)) = rx.recv().await {
                tokio::time::sleep_until(due).await;
                while stall.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if to.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            let _ = to.shutdown().await;
        };
        tokio::select! {
            () = deliver => {}
            _ = kill_writer.changed() => {}
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn both_directions_pay_half_the_rtt_each() {
        let (client, far) = tokio::io::duplex(1024);
        let latency = Latency {
            rtt: Duration::from_millis(80),
            jitter: Duration::ZERO,
        };
        let (_kill, kill) = watch::channel(false);
        let mut server = delay_line(far, latency, Arc::new(AtomicBool::new(false)), 1, kill);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let started = Instant::now();
        client_write.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).await.unwrap();
        let one_way = started.elapsed();
        server.write_all(b"pong").await.unwrap();
        client_read.read_exact(&mut buf).await.unwrap();
        let round_trip = started.elapsed();
        assert_eq!(&buf, b"pong");
        assert!(one_way >= Duration::from_millis(40), "{one_way:?}");
        assert!(round_trip >= Duration::from_millis(80), "{round_trip:?}");
    }

    #[tokio::test]
    async fn stall_holds_traffic_until_cleared() {
        let (client, far) = tokio::io::duplex(1024);
        let stall = Arc::new(AtomicBool::new(true));
        let (_kill, kill) = watch::channel(false);
        let mut server = delay_line(far, Latency::default(), stall.clone(), 1, kill);
        let (_r, mut w) = tokio::io::split(client);
        w.write_all(b"x").await.unwrap();
        let mut buf = [0u8; 1];
        let held =
            tokio::time::timeout(Duration::from_millis(200), server.read_exact(&mut buf)).await;
        assert!(held.is_err(), "traffic passed a stalled line");
        stall.store(false, Ordering::Relaxed);
        tokio::time::timeout(Duration::from_secs(2), server.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
    }
}
