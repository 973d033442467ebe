//! `mudmap bench fanout`: the SSH engine against a simulated fleet in a separate process.
//!
//! Phases (one JSON line each): `connect` — the first `status` on every device, cold (TCP, SSH
//! handshake, auth, agent channel, hello, request); `warm` — R rounds of `status` on every device
//! over the held connections; `fresh` — a new connection per request (connect, auth, one-shot
//! exec, disconnect), the way a fleet manager without an engine works.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{cpu_ms, percentiles, round1, rss_kib};
use crate::sim::{host_key, service_key};
use crate::ssh::{
    Credentials, DeviceId, DeviceTarget, Engine, EngineConfig, HostKeyStore, MemoryHostKeys,
};

#[derive(Debug, Clone, clap::Args)]
pub struct FanoutArgs {
    /// Simulated devices.
    #[arg(long, default_value_t = 1000)]
    pub devices: u32,
    /// Simulated round-trip time, e.g. 50ms.
    #[arg(long, default_value = "50ms", value_parser = super::parse_duration)]
    pub rtt: Duration,
    /// Warm rounds of `status` on every device.
    #[arg(long, default_value_t = 5)]
    pub rounds: u32,
    /// Rounds of the fresh-connection-per-request comparison (0 to skip).
    #[arg(long, default_value_t = 1)]
    pub fresh_rounds: u32,
    /// First port of the simulated fleet.
    #[arg(long, default_value_t = 20000)]
    pub base_port: u16,
    /// Connects in progress at once.
    #[arg(long, default_value_t = 256)]
    pub max_connecting: usize,
}

const SEED: u64 = 7;

pub async fn run(args: FanoutArgs) -> anyhow::Result<()> {
    let mut sim = super::spawn_simulator(args.devices, args.base_port, args.rtt, SEED).await?;

    let keys = Arc::new(MemoryHostKeys::new());
    let config = EngineConfig {
        max_connecting: args.max_connecting,
        ..EngineConfig::default()
    };
    let engine = Engine::new(config.clone(), keys.clone());
    let mut targets = Vec::with_capacity(args.devices as usize);
    for i in 0..args.devices {
        let id = DeviceId::new(format!("sim-{i}"));
        keys.pin(&id, host_key(SEED, i).public_key()).await;
        let target = DeviceTarget {
            id: id.clone(),
            host: "127.0.0.1".to_owned(),
            port: args.base_port + u16::try_from(i).unwrap_or(0),
            username: crate::activation::remote::ROOT_USER.to_owned(),
            credentials: Credentials::Key(service_key(SEED, i)),
            agent_command: "mudmap-agent serve".to_owned(),
            self_heal: None,
        };
        engine.upsert(target.clone());
        targets.push(target);
    }
    let ids: Vec<DeviceId> = targets.iter().map(|t| t.id.clone()).collect();
    let rtt_ms = args.rtt.as_millis() as u64;
    // The simulator shares the machine; its CPU is reported next to the client's.
    let sim_pid = sim.id().map(|p| p.to_string()).unwrap_or_default();
    let sim_cpu = || super::process_cpu_ms(&sim_pid);

    let rss_before = rss_kib();
    let sim_before = sim_cpu();
    let line = round(&engine, &ids, "connect", 0, args.devices, rtt_ms).await;
    let rss_after = rss_kib();
    let connected = engine.connected_count().max(1) as u64;
    let per_connection = rss_after.saturating_sub(rss_before) * 1024 / connected;
    print_line(
        json!({
            "rss_before_kib": rss_before,
            "connected": engine.connected_count(),
            "rss_per_connection_bytes": per_connection,
            "sim_cpu_ms": sim_cpu() - sim_before,
        }),
        line,
    );

    for r in 1..=args.rounds {
        let sim_before = sim_cpu();
        let line = round(&engine, &ids, "warm", r, args.devices, rtt_ms).await;
        print_line(json!({ "sim_cpu_ms": sim_cpu() - sim_before }), line);
    }
    // What holding the connections costs once the handshakes' transient memory has been reused
    // by the warm rounds (the "connect" figure includes 256 handshakes' peak).
    let held = rss_kib();
    println!(
        "{}",
        json!({
            "phase": "held", "round": 0, "devices": args.devices, "rtt_ms": rtt_ms,
            "connected": engine.connected_count(), "rss_kib": held,
            "rss_per_connection_bytes": held.saturating_sub(rss_before) * 1024 / connected,
        })
    );

    let host_keys: Arc<dyn HostKeyStore> = keys.clone();
    for r in 1..=args.fresh_rounds {
        let cpu_start = cpu_ms();
        let sim_before = sim_cpu();
        let started = Instant::now();
        let permits = Arc::new(tokio::sync::Semaphore::new(args.max_connecting));
        let mut tasks = tokio::task::JoinSet::new();
        for target in &targets {
            let (target, config, host_keys, permits) = (
                target.clone(),
                config.clone(),
                host_keys.clone(),
                permits.clone(),
            );
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let t = Instant::now();
                let request = b"{\"v\":1,\"id\":1,\"method\":\"status\"}\n".to_vec();
                let r = crate::ssh::one_shot_exec(
                    &target,
                    &config,
                    host_keys,
                    "mudmap-agent call",
                    Some(request),
                )
                .await;
                (t.elapsed(), r.is_ok_and(|o| o.exit_status == Some(0)))
            });
        }
        let mut samples = Vec::new();
        let mut errors = 0;
        while let Some(Ok((elapsed, ok))) = tasks.join_next().await {
            samples.push(elapsed);
            if !ok {
                errors += 1;
            }
        }
        let (p50, p99) = percentiles(&mut samples);
        println!(
            "{}",
            json!({
                "phase": "fresh", "round": r, "devices": args.devices, "rtt_ms": rtt_ms,
                "wall_ms": round1(started.elapsed().as_secs_f64() * 1000.0),
                "p50_ms": p50, "p99_ms": p99, "errors": errors,
                "rss_kib": rss_kib(), "cpu_ms": cpu_ms() - cpu_start,
                "sim_cpu_ms": sim_cpu() - sim_before,
            })
        );
    }

    engine.shutdown().await;
    let _ = sim.kill().await;
    Ok(())
}

async fn round(
    engine: &Engine,
    ids: &[DeviceId],
    phase: &str,
    round: u32,
    devices: u32,
    rtt_ms: u64,
) -> serde_json::Value {
    let cpu_start = cpu_ms();
    let started = Instant::now();
    let mut fanout = engine.fanout(ids, "status", json!({}));
    let mut samples = Vec::with_capacity(ids.len());
    let mut errors = 0;
    let mut first_error = None;
    while let Some(result) = fanout.next().await {
        samples.push(result.elapsed);
        if let Err(e) = result.result {
            errors += 1;
            first_error.get_or_insert_with(|| e.to_string());
        }
    }
    let wall = started.elapsed();
    let (p50, p99) = percentiles(&mut samples);
    json!({
        "phase": phase, "round": round, "devices": devices, "rtt_ms": rtt_ms,
        "wall_ms": round1(wall.as_secs_f64() * 1000.0), "p50_ms": p50, "p99_ms": p99,
        "errors": errors, "first_error": first_error,
        "rss_kib": rss_kib(), "cpu_ms": cpu_ms() - cpu_start,
    })
}

fn print_line(extra: serde_json::Value, mut line: serde_json::Value) {
    if let (Some(target), Some(extra)) = (line.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            target.insert(k.clone(), v.clone());
        }
    }
    println!("{line}");
}
