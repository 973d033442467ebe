//! Benchmarks (`mudmap bench …`): print figures as JSON lines, one object per measurement, so runs
//! can be compared by a script. Not tests: nothing here asserts a number.

pub mod backups;
pub mod dashboard;
pub mod fanout;
pub mod jobs;

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Start `mudmap sim` as a child process (killed when dropped) and wait until it is ready.
pub async fn spawn_simulator(
    devices: u32,
    base_port: u16,
    rtt: Duration,
    seed: u64,
) -> anyhow::Result<tokio::process::Child> {
    let exe = std::env::current_exe().context("finding the mudmap binary")?;
    let mut sim = tokio::process::Command::new(exe)
        .args([
            "sim",
            "--devices",
            &devices.to_string(),
            "--base-port",
            &base_port.to_string(),
            "--rtt",
            &format!("{}ms", rtt.as_millis()),
            "--seed",
            &seed.to_string(),
        ])
        .env("MUDMAP_LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting the simulator")?;
    let stdout = sim.stdout.take().context("simulator stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
        .await
        .context("the simulator did not become ready within 120 s")??
        .context("the simulator exited before it was ready")?;
    anyhow::ensure!(
        ready.contains("\"ready\":true"),
        "unexpected simulator output: {ready}"
    );
    Ok(sim)
}

/// Resident set size of process `pid`, KiB.
pub fn process_rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Resident set size of this process, KiB (Linux `/proc`).
pub fn rss_kib() -> u64 {
    process_rss_kib("self")
}

/// CPU time (user + system) used by this process so far, ms.
pub fn cpu_ms() -> u64 {
    process_cpu_ms("self")
}

/// CPU time used so far by process `pid` ("self" for this one), ms.
pub fn process_cpu_ms(pid: &str) -> u64 {
    // Fields 14 and 15 of /proc/<pid>/stat, in clock ticks (USER_HZ, 100 on Linux).
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some(after_name) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After the name, field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
    (ticks(11) + ticks(12)) * 10
}

/// p50 and p99 of a set of durations, ms.
pub fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i.min(samples.len() - 1)].as_secs_f64() * 1000.0
    };
    (round1(at(0.50)), round1(at(0.99)))
}

pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Parse `50ms`, `1.5s`, `2m` or a bare number of milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "ms"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 50ms or 1s"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: use ms, s or m")),
    };
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("50ms").unwrap(), Duration::from_millis(50));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("20").unwrap(), Duration::from_millis(20));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn percentiles_pick_the_right_samples() {
        let mut s: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentiles(&mut s), (51.0, 99.0));
        assert_eq!(percentiles(&mut []), (0.0, 0.0));
    }

    #[test]
    fn process_figures_are_read() {
        assert!(rss_kib() > 0);
        let _ = cpu_ms();
    }
}
