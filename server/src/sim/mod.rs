//! The pfSense device simulator (`mudmap sim`): N simulated firewalls on loopback, one SSH port
//! each, speaking the agent protocol like a real device, with latency and faults that tests and
//! benchmarks switch at run time. It powers the demo fleet, the tests and the benchmarks.
//!
//! It owns sockets, SSH sessions and device models; it knows nothing of Mudmap's database.

pub mod agent;
pub mod control;
pub mod device;
pub mod latency;
pub mod layout;
pub mod model;
pub mod ssh;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub use device::{host_key, service_key, FaultPatch, Faults, SimDevice};
pub use latency::Latency;

/// How to build the fleet.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub devices: u32,
    /// First port; device `i` listens on `base_port + i`. `0` picks free ports (tests).
    pub base_port: u16,
    pub bind: IpAddr,
    /// Identity seed: the same seed gives the same host keys, credentials and configs.
    pub seed: u64,
    pub latency: Latency,
    /// Password of root/admin on every device.
    pub password: String,
    /// Pre-install the seed-derived service key on every device (demo fleet, benchmarks).
    pub authorize_service_keys: bool,
    /// How long a device is down after `diag.reboot`.
    pub reboot_duration: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            devices: 10,
            base_port: 0,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            seed: 1,
            latency: Latency::default(),
            password: "pfsense".to_owned(),
            authorize_service_keys: true,
            reboot_duration: Duration::from_secs(8),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr} for simulated device {index}: {cause} (choose another --base-port)")]
    Bind {
        addr: SocketAddr,
        index: u32,
        cause: std::io::Error,
    },
    #[error("refusing to bind the simulator to {0}: it only serves loopback addresses")]
    NotLoopback(IpAddr),
}

/// A running simulated fleet. Dropping it stops every device.
pub struct Simulator {
    devices: Vec<Arc<SimDevice>>,
    tasks: JoinSet<()>,
    pub options: SimOptions,
}

impl Simulator {
    pub async fn start(options: SimOptions) -> Result<Self, SimError> {
        if !options.bind.is_loopback() {
            return Err(SimError::NotLoopback(options.bind));
        }
        raise_fd_limit(options.devices);
        let mut devices = Vec::with_capacity(options.devices as usize);
        let mut tasks = JoinSet::new();
        for index in 0..options.devices {
            let wanted = if options.base_port == 0 {
                0
            } else {
                options
                    .base_port
                    .saturating_add(u16::try_from(index).unwrap_or(u16::MAX))
            };
            let addr = SocketAddr::new(options.bind, wanted);
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|cause| SimError::Bind { addr, index, cause })?;
            let port = listener.local_addr().map(|a| a.port()).unwrap_or(wanted);
            let mut device = SimDevice::new(
                options.seed,
                index,
                port,
                options.password.clone(),
                options.latency,
            );
            device.reboot_duration = options.reboot_duration;
            let device = Arc::new(device);
            if options.authorize_service_keys {
                device.authorize(
                    service_key(options.seed, index).public_key(),
                    &crate::agent::keys::comment("sim", &format!("fw-{index:04}")),
                );
                device
                    .agent_installed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            tasks.spawn(serve_device(device.clone(), listener, options.bind));
            devices.push(device);
        }
        Ok(Self {
            devices,
            tasks,
            options,
        })
    }

    pub fn devices(&self) -> &[Arc<SimDevice>] {
        &self.devices
    }

    pub fn device(&self, index: u32) -> Option<&Arc<SimDevice>> {
        self.devices.get(index as usize)
    }

    pub fn addr(&self, index: u32) -> Option<SocketAddr> {
        self.device(index)
            .map(|d| SocketAddr::new(self.options.bind, d.port))
    }

    pub fn patch_all(&self, patch: FaultPatch) {
        for d in &self.devices {
            d.patch_faults(patch);
        }
    }

    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

/// Accept loop of one device. While `refuse` is on, the listener is closed so connects are refused
/// by the kernel, exactly like a stopped sshd.
async fn serve_device(device: Arc<SimDevice>, listener: TcpListener, bind: IpAddr) {
    let mut faults = device.watch_faults();
    let normal = ssh::server_config(device.host_key.clone());
    let impostor = ssh::server_config(device.changed_host_key.clone());
    let mut listener = Some(listener);
    let mut connections = JoinSet::new();
    loop {
        let current = *faults.borrow_and_update();
        if current.refuse {
            listener = None;
        } else if listener.is_none() {
            listener = bind_retry(SocketAddr::new(bind, device.port)).await;
        }
        let Some(active) = listener.as_ref() else {
            if faults.changed().await.is_err() {
                return;
            }
            continue;
        };
        tokio::select! {
            accepted = active.accept() => {
                let (socket, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, typically: the connection stays queued, so
                        // retrying at once would spin. Pause, as a real sshd under load does.
                        tracing::warn!(device = device.index, error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let _ = socket.set_nodelay(true);
                let config = if current.host_key_changed { impostor.clone() } else { normal.clone() };
                connections.spawn(serve_connection(device.clone(), socket, peer, config));
            }
            changed = faults.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn bind_retry(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..50 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return Some(l);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!(%addr, "simulated device could not listen again");
    None
}

async fn serve_connection(
    device: Arc<SimDevice>,
    socket: tokio::net::TcpStream,
    peer: SocketAddr,
    config: Arc<russh::server::Config>,
) {
    let mut faults = device.watch_faults();
    let drops_at_start = faults.borrow_and_update().drops;
    if device.is_locked_out(peer.ip()) {
        // sshguard blocks the address in the firewall: the client hears nothing at all.
        let _hold = socket;
        wait_for_drop(&mut faults, drops_at_start).await;
        return;
    }
    let stall = Arc::new(std::sync::atomic::AtomicBool::new(faults.borrow().stall));
    let (kill_tx, kill_rx) = tokio::sync::watch::channel(false);
    let stream = latency::delay_line(
        socket,
        device.latency,
        stall.clone(),
        u64::from(device.index),
        kill_rx,
    );
    let handler = ssh::DeviceSession::new(device.clone(), peer.ip());
    let kill = |kill_tx: &tokio::sync::watch::Sender<bool>| {
        let _ = kill_tx.send(true);
    };
    // Phase 1: the SSH banner exchange (a drop during it kills the connection too).
    let mut drop_watch = faults.clone();
    let running = tokio::select! {
        started = russh::server::run_stream(config, stream, handler) => match started {
            Ok(running) => running,
            Err(_) => return kill(&kill_tx),
        },
        () = wait_for_drop(&mut drop_watch, drops_at_start) => return kill(&kill_tx),
    };
    tokio::pin!(running);
    // Phase 2: follow fault changes (stall on/off, drop) until the session ends.
    loop {
        tokio::select! {
            _ = &mut running => return kill(&kill_tx),
            changed = faults.changed() => {
                if changed.is_err() {
                    return kill(&kill_tx);
                }
                let now = *faults.borrow_and_update();
                stall.store(now.stall, std::sync::atomic::Ordering::Relaxed);
                if now.drops != drops_at_start {
                    return kill(&kill_tx);
                }
            }
        }
    }
}

async fn wait_for_drop(faults: &mut tokio::sync::watch::Receiver<Faults>, drops_at_start: u64) {
    while faults.changed().await.is_ok() {
        if faults.borrow_and_update().drops != drops_at_start {
            return;
        }
    }
}

/// A thousand devices (and as many client connections) need more file descriptors than the usual
/// soft limit of 1024: raise it to the hard limit.
/// Each device needs a listening socket and one per connection: raise the open-file limit as far
/// as allowed (the hard limit too, where the process may), and say so when the fleet will not fit.
fn raise_fd_limit(devices: u32) {
    use rlimit::Resource;
    let wanted = u64::from(devices) * 2 + 256;
    if let Ok((soft, hard)) = rlimit::getrlimit(Resource::NOFILE) {
        if hard < wanted {
            // Allowed for root (CAP_SYS_RESOURCE) up to fs.nr_open; harmless to try otherwise.
            let _ = rlimit::setrlimit(Resource::NOFILE, soft.max(wanted), wanted);
        }
    }
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < wanted => tracing::warn!(
            limit,
            wanted,
            "the open-file limit is too low for this many devices: some will refuse connections \
             (raise it with `ulimit -n`)"
        ),
        Ok(limit) => tracing::debug!(limit, "file descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the file descriptor limit"),
    }
}
