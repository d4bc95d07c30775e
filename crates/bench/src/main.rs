//! `ordertrack-bench`: the load generator behind BENCHMARKS.md.
//!
//! By default it starts the server itself (`--server-bin … demo` on a free
//! loopback port with a fresh data dir), so it knows its pid, can stop it
//! for the bulk load and restart it. `--url` points it at a running server
//! instead (loopback only, always).

mod api;
mod bulk;
mod scenarios;
mod server;
mod sse;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use serde_json::json;

use api::Api;
use scenarios::{Ceiling, CeilingArgs, FanoutArgs, Outcome};
use server::Server;
use stats::ms;

#[derive(Parser)]
#[command(
    name = "ordertrack-bench",
    about = "Load generator for ordertrack (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    #[command(flatten)]
    opts: Opts,
}

#[derive(Subcommand, Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    /// Every scenario below, in order, with one ceiling measured first.
    All,
    /// GET /healthz at full concurrency, the disk's fsync rate, pgbench.
    Ceiling,
    /// Staff moving orders through the workflow (durable, acknowledged).
    Transitions,
    /// Customers placing orders.
    Create,
    /// N SSE subscribers of the store stream, a publisher at a fixed rate.
    Fanout,
    /// M idle SSE connections: server memory per connection.
    Idle,
    /// Bulk-load orders, then time history pages.
    History,
}

#[derive(Args, Clone)]
struct Opts {
    /// The server binary to start (`… demo --bind 127.0.0.1:0 --data-dir …`).
    #[arg(long, global = true, default_value = "target/release/ordertrack")]
    server_bin: PathBuf,
    /// Where to make each run's fresh data dir (must be a real disk for fsync figures).
    #[arg(long, global = true, default_value = "target/bench-data")]
    data_root: PathBuf,
    /// Use this running server instead (loopback only).
    #[arg(long, global = true)]
    url: Option<String>,
    /// With --url: the server's pid (for RSS figures).
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Write the results as JSON here.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Seconds per timed scenario.
    #[arg(long, global = true, default_value_t = 10)]
    duration: u64,
    /// Concurrent clients (ceiling, create, transitions).
    #[arg(long, global = true, default_value_t = 64)]
    concurrency: usize,
    /// Seconds of /healthz load for the ceiling taken before a single scenario.
    #[arg(long, global = true, default_value_t = 5)]
    ceiling_secs: u64,
    /// transitions: orders placed beforehand (5 transitions each).
    #[arg(long, global = true, default_value_t = 30_000)]
    tx_orders: usize,
    /// fanout: SSE subscribers of the store stream.
    #[arg(long, global = true, default_value_t = 1_000)]
    subscribers: usize,
    /// fanout: changes per second.
    #[arg(long, global = true, default_value_t = 100.0)]
    rate: f64,
    /// idle: SSE connections.
    #[arg(long, global = true, default_value_t = 5_000)]
    connections: usize,
    /// Connections per source address before spreading over 127.0.0.2, .3, …
    #[arg(long, global = true, default_value_t = 4_000)]
    per_address: usize,
    /// history: orders to bulk-load.
    #[arg(long, global = true, default_value_t = 1_000_000)]
    orders: usize,
    /// history: timed requests per page.
    #[arg(long, global = true, default_value_t = 2_000)]
    samples: usize,
    /// ceiling: also run pgbench (TPC-B, 8 clients) against --pg-url.
    #[arg(long, global = true)]
    pgbench: bool,
    /// ceiling: scratch PostgreSQL database for pgbench (loopback only).
    #[arg(long, global = true)]
    pg_url: Option<String>,
}

#[derive(Serialize)]
struct Report {
    scenario: String,
    command: String,
    started_at: String,
    machine: serde_json::Value,
    ceiling: Ceiling,
    server_start_ms: Vec<f64>,
    results: Vec<Outcome>,
}

fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "mem_gib": mem_kib as f64 / 1024.0 / 1024.0,
        "loadavg": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    })
}

struct Run {
    opts: Opts,
    server: Server,
    api: Api,
}

impl Run {
    async fn start(opts: &Opts) -> anyhow::Result<Run> {
        let server = match &opts.url {
            Some(url) => Server::external(url, opts.server_pid, opts.data_root.clone())?,
            None => Server::start_fresh(&opts.server_bin, &opts.data_root).await?,
        };
        let api = Api::new(api::client(None), server.base.clone());
        Ok(Run {
            opts: opts.clone(),
            server,
            api,
        })
    }

    async fn ceiling(&self, seconds: u64) -> anyhow::Result<(Ceiling, Vec<Outcome>)> {
        std::fs::create_dir_all(&self.server.data_dir)?;
        scenarios::ceiling(
            &self.api,
            CeilingArgs {
                concurrency: self.opts.concurrency,
                duration: Duration::from_secs(seconds),
                fsync_dir: &self.server.data_dir,
                pgbench: self.opts.pgbench,
                pg_url: self.opts.pg_url.as_deref(),
            },
        )
        .await
    }

    async fn stop(mut self) -> anyhow::Result<Vec<f64>> {
        self.server.stop().await?;
        Ok(self.server.start_times_ms)
    }
}

async fn run_scenario(
    scenario: Scenario,
    opts: &Opts,
    ceiling: &Ceiling,
    out: &mut Vec<Outcome>,
    starts: &mut Vec<f64>,
) -> anyhow::Result<()> {
    let duration = Duration::from_secs(opts.duration);
    let mut run = Run::start(opts).await?;
    eprintln!("[bench] {scenario:?} on {}", run.server.base);
    let result = match scenario {
        Scenario::Create => scenarios::create(&run.api, opts.concurrency, duration, ceiling)
            .await
            .map(|o| vec![o]),
        Scenario::Transitions => scenarios::transitions(
            &run.api,
            opts.concurrency,
            duration,
            opts.tx_orders,
            ceiling,
        )
        .await
        .map(|o| vec![o]),
        Scenario::Fanout => scenarios::fanout(
            &run.api,
            &run.server,
            FanoutArgs {
                subscribers: opts.subscribers,
                rate: opts.rate,
                duration,
                per_address: opts.per_address,
            },
            ceiling,
        )
        .await
        .map(|o| vec![o]),
        Scenario::Idle => {
            scenarios::idle(&run.api, &run.server, opts.connections, opts.per_address)
                .await
                .map(|o| vec![o])
        }
        Scenario::History => {
            scenarios::history(
                &run.api,
                &mut run.server,
                opts.orders,
                opts.samples,
                ceiling,
            )
            .await
        }
        Scenario::All | Scenario::Ceiling => Ok(Vec::new()),
    };
    starts.extend(run.stop().await?);
    match result {
        Ok(outcomes) => out.extend(outcomes),
        Err(e) => {
            let mut o = Outcome::new(&format!("{scenario:?}").to_lowercase(), json!({}));
            o.notes.push(format!("FAILED: {e:#}"));
            out.push(o);
        }
    }
    Ok(())
}

fn print_table(report: &Report) {
    println!(
        "\nordertrack-bench — {} — {} CPUs ({}), load {}",
        report.scenario,
        report.machine["nproc"],
        report.machine["cpu"].as_str().unwrap_or(""),
        report.machine["loadavg"].as_str().unwrap_or("")
    );
    println!(
        "{:<34} {:>16} {:<14} {:>9} {:>9} {:>9} {:>9}  notes",
        "scenario", "throughput", "unit", "p50 ms", "p99 ms", "max ms", "ratio"
    );
    for o in &report.results {
        let (p50, p99, max) = o
            .latency
            .map(|l| (ms(l.p50_us), ms(l.p99_us), ms(l.max_us)))
            .unwrap_or_default();
        let mut notes: Vec<String> = o
            .metrics
            .iter()
            .filter(|(k, _)| {
                matches!(
                    k.as_str(),
                    "missed"
                        | "errors"
                        | "connected"
                        | "per_fsync"
                        | "kib_per_connection"
                        | "bulk_load_s"
                        | "restart_ms"
                        | "publish_errors"
                )
            })
            .map(|(k, v)| match v.as_f64() {
                Some(f) if f.fract() != 0.0 => format!("{k}={f:.2}"),
                _ => format!("{k}={v}"),
            })
            .collect();
        notes.extend(o.notes.iter().cloned());
        println!(
            "{:<34} {:>16} {:<14} {:>9} {:>9} {:>9} {:>9}  {}",
            o.scenario,
            o.throughput.map(|t| format!("{t:.1}")).unwrap_or_default(),
            o.unit,
            p50,
            p99,
            max,
            o.ratio.map(|r| format!("{r:.3}")).unwrap_or_default(),
            notes.join(" ")
        );
    }
    println!(
        "ceiling: {:.0} req/s /healthz (p50 {} ms), serial p99 {} ms, {:.0} fsync/s; server start {:?} ms",
        report.ceiling.healthz_per_s,
        ms(report.ceiling.healthz_p50_us),
        ms(report.ceiling.healthz_serial_p99_us),
        report.ceiling.fsync_per_s,
        report
            .server_start_ms
            .iter()
            .map(|v| (v * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let opts = cli.opts.clone();
    if let Some(url) = &opts.url {
        server::check_loopback(url)?;
    }
    let want = if opts.subscribers.max(opts.connections) > 5_000 {
        65_536
    } else {
        20_000
    };
    let nofile = server::raise_nofile(want);
    eprintln!("[bench] RLIMIT_NOFILE = {nofile}");
    let started_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let command = std::env::args().collect::<Vec<_>>().join(" ");

    let mut results = Vec::new();
    let mut starts = Vec::new();
    // The ceiling, on its own fresh server.
    let seconds = match cli.scenario {
        Scenario::All | Scenario::Ceiling => opts.duration,
        _ => opts.ceiling_secs,
    };
    let run = Run::start(&opts).await?;
    eprintln!("[bench] ceiling on {}", run.server.base);
    let (ceiling, outcomes) = run.ceiling(seconds).await?;
    results.extend(outcomes);
    starts.extend(run.stop().await?);

    let plan: &[Scenario] = match cli.scenario {
        Scenario::All => &[
            Scenario::Create,
            Scenario::Transitions,
            Scenario::Fanout,
            Scenario::Idle,
            Scenario::History,
        ],
        Scenario::Ceiling => &[],
        ref one => std::slice::from_ref(one),
    };
    for scenario in plan {
        run_scenario(*scenario, &opts, &ceiling, &mut results, &mut starts).await?;
    }

    let report = Report {
        scenario: format!("{:?}", cli.scenario).to_lowercase(),
        command,
        started_at,
        machine: machine(),
        ceiling,
        server_start_ms: starts,
        results,
    };
    print_table(&report);
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
        eprintln!("[bench] wrote {}", path.display());
    }
    Ok(())
}
