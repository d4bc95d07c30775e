//! `ordertrack-bench`: the load generator behind BENCHMARKS.md.
//!
//! By default it starts the server itself (`--server-bin … demo` on a free
//! loopback port with a fresh data dir), so it knows its pid, can stop it
//! for the bulk load and restart it. `--url` points it at a running server
//! instead (loopback only, always).
//!
//! `--database-url postgres://…` (an admin URL, loopback only) runs every
//! server on PostgreSQL instead: each fresh server gets its own scratch
//! database (`ordertrack_bench_<pid>_<n>`, created on that URL and dropped
//! when its scenario ends), pgbench runs with every ceiling, and the `nats`
//! scenario (two instances, one database, one NATS subject) becomes
//! available.
//!
//! `statements` counts the SQL statements of one request of each kind from
//! the server's own log, on SQLite and, with `--database-url`, also on
//! PostgreSQL (no ceiling: the counts do not depend on the machine).

mod api;
mod bare_broadcast;
mod bare_writer;
mod bulk;
mod bulk_pg;
mod pg;
mod scenarios;
mod server;
mod sse;
mod statements;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use serde_json::json;

use api::Api;
use pg::{PgAdmin, ScratchDb};
use scenarios::{Ceiling, CeilingArgs, FanoutArgs, Outcome};
use server::{Launch, Server};
use stats::ms;

/// The same allocator as the server, for the bare broadcast server that
/// runs from this binary (and the client, which does not mind).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Bulk-load orders with their history, then time the owner's sales
    /// and times reports over 1, 7, 31 and 366 days.
    Reports,
    /// Two instances over NATS (PostgreSQL only): fan-out to subscribers on
    /// the other instance vs on the publishing one.
    Nats,
    /// SQL statements per request of each kind: SQLite, and PostgreSQL too
    /// with --database-url.
    Statements,
    /// C sign-ins at once, then C clients guessing one account's password
    /// while its owner signs in from elsewhere: server RSS, statuses. The
    /// only scenario run with the server's abuse limits in force.
    Logins,
    /// Runs the bare broadcast server (`fanout`'s ceiling) until killed.
    #[command(name = "bare-broadcast", hide = true)]
    BareBroadcast,
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
    /// Concurrent clients (ceiling, create, transitions, logins).
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
    /// reports: timed requests per report and range (a quarter for 31
    /// days, a twentieth for 366, at least 5).
    #[arg(long, global = true, default_value_t = 100)]
    report_samples: usize,
    /// statements: measured requests of each kind (after a warm-up of 3).
    #[arg(long, global = true, default_value_t = 20)]
    requests: usize,
    /// ceiling: also run pgbench (TPC-B, 8 clients) against --pg-url.
    #[arg(long, global = true)]
    pgbench: bool,
    /// ceiling: scratch PostgreSQL database for pgbench (loopback only).
    #[arg(long, global = true)]
    pg_url: Option<String>,
    /// Run every server on PostgreSQL: an admin URL (loopback only) on which
    /// the bench creates (and drops) one scratch database per server and
    /// one for pgbench, e.g. postgres://postgres@127.0.0.1:5432/postgres.
    #[arg(long, global = true, conflicts_with = "url")]
    database_url: Option<String>,
    /// bare-broadcast: the address to listen on.
    #[arg(long, global = true, default_value = "127.0.0.1:0", hide = true)]
    bind: String,
    /// bare-broadcast: the length of each event's `data:` line.
    #[arg(long, global = true, default_value_t = 512, hide = true)]
    data_bytes: usize,
    /// nats: the NATS server both instances use (loopback only).
    #[arg(long, global = true, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
}

#[derive(Serialize)]
struct Report {
    scenario: String,
    /// `sqlite` or `postgresql`, with the server version for PostgreSQL.
    backend: serde_json::Value,
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

/// Which database the servers run on.
enum Backend {
    Sqlite,
    Postgres { admin: PgAdmin, version: String },
}

impl Backend {
    fn admin(&self) -> Option<&PgAdmin> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres { admin, .. } => Some(admin),
        }
    }

    fn describe(&self) -> serde_json::Value {
        match self {
            Backend::Sqlite => json!({ "kind": "sqlite" }),
            Backend::Postgres { admin, version } => {
                // Host and port only: the admin URL may hold a password.
                let host = reqwest::Url::parse(&admin.url).ok().and_then(|u| {
                    u.host_str()
                        .map(|h| format!("{h}:{}", u.port().unwrap_or(5432)))
                });
                json!({
                    "kind": "postgresql",
                    "version": version,
                    "host": host,
                    "scratch_databases":
                        "one per server (ordertrack_bench_<pid>_<n>), dropped after each scenario",
                })
            }
        }
    }

    fn label(&self) -> String {
        match self {
            Backend::Sqlite => "SQLite (one file per server)".into(),
            Backend::Postgres { version, .. } => format!(
                "PostgreSQL ({}; one scratch database per server)",
                version.split(" on ").next().unwrap_or(version)
            ),
        }
    }
}

struct Run {
    opts: Opts,
    server: Server,
    api: Api,
    /// The scratch database of this run's server(s), PostgreSQL only.
    scratch: Option<ScratchDb>,
    /// `nats`: the second instance, on the same database.
    peer: Option<(Server, Api)>,
}

fn nats_subject(n: usize) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    pg::unique_subject(std::process::id(), ms, n)
}

fn random_secret() -> String {
    use std::hash::{BuildHasher, Hasher};
    // 64 hex characters from the std hasher's random keys (no extra crate).
    (0..4)
        .map(|i| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            );
            format!("{:016x}", h.finish())
        })
        .collect()
}

impl Run {
    /// A fresh server (on a fresh scratch database with PostgreSQL); with
    /// `nats`, two instances A and B on that database and one new subject.
    async fn start(opts: &Opts, backend: &Backend, scenario: Scenario) -> anyhow::Result<Run> {
        if let Some(url) = &opts.url {
            let server = Server::external(url, opts.server_pid, opts.data_root.clone())?;
            let api = Api::new(api::client(None), server.base.clone());
            return Ok(Run {
                opts: opts.clone(),
                server,
                api,
                scratch: None,
                peer: None,
            });
        }
        let scratch = match backend.admin() {
            Some(admin) => Some(admin.create_db().await?),
            None => None,
        };
        let started = Self::start_servers(opts, scratch.as_ref(), scenario).await;
        match started {
            Ok((server, peer)) => {
                let api = Api::new(api::client(None), server.base.clone());
                Ok(Run {
                    opts: opts.clone(),
                    server,
                    api,
                    scratch,
                    peer,
                })
            }
            Err(e) => {
                if let (Some(admin), Some(db)) = (backend.admin(), &scratch) {
                    admin.drop_quietly(db).await;
                }
                Err(e)
            }
        }
    }

    async fn start_servers(
        opts: &Opts, scratch: Option<&ScratchDb>, scenario: Scenario,
    ) -> anyhow::Result<(Server, Option<(Server, Api)>)> {
        let mut launch = Launch {
            database_url: scratch.map(|db| db.url.clone()),
            abuse_limits: scenario == Scenario::Logins,
            ..Launch::default()
        };
        if scenario != Scenario::Nats {
            let server = Server::start_fresh(&opts.server_bin, &opts.data_root, launch).await?;
            return Ok((server, None));
        }
        launch.nats = Some((opts.nats_url.clone(), nats_subject(0)));
        launch.secret = Some(random_secret());
        let mut a = Server::start_fresh(&opts.server_bin, &opts.data_root, launch.clone()).await?;
        // B: `demo` again on the seeded database (seeding is skipped when the
        // demo store exists); its own data dir, the same database, subject
        // and secret.
        match Server::start_fresh(&opts.server_bin, &opts.data_root, launch).await {
            Ok(b) => {
                let api = Api::new(api::client(None), b.base.clone());
                Ok((a, Some((b, api))))
            }
            Err(e) => {
                a.stop().await.ok();
                Err(e.context("starting the second instance (B)"))
            }
        }
    }

    async fn ceiling(
        &self, seconds: u64, backend: &Backend,
    ) -> anyhow::Result<(Ceiling, Vec<Outcome>)> {
        std::fs::create_dir_all(&self.server.data_dir)?;
        scenarios::ceiling(
            &self.api,
            CeilingArgs {
                concurrency: self.opts.concurrency,
                duration: Duration::from_secs(seconds),
                fsync_dir: &self.server.data_dir,
                pgbench: self.opts.pgbench,
                pg_url: self.opts.pg_url.as_deref(),
                pg_admin: backend.admin(),
            },
        )
        .await
    }

    /// Stops the server(s) and drops the scratch database.
    async fn stop(mut self, backend: &Backend) -> anyhow::Result<Vec<f64>> {
        let mut starts = Vec::new();
        let mut result = Ok(());
        if let Some((mut peer, _)) = self.peer.take() {
            result = peer.stop().await;
            starts.extend(peer.start_times_ms.iter().copied());
        }
        let stopped = self.server.stop().await;
        if let (Some(admin), Some(db)) = (backend.admin(), &self.scratch) {
            admin.drop_quietly(db).await;
        }
        stopped?;
        result?;
        let mut all = self.server.start_times_ms;
        all.extend(starts);
        Ok(all)
    }
}

/// Why `nats` cannot run with these options, if it cannot.
fn nats_unavailable(opts: &Opts, backend: &Backend) -> Option<String> {
    if opts.url.is_some() {
        return Some("nats starts its own two instances: drop --url".into());
    }
    if matches!(backend, Backend::Sqlite) {
        return Some(
            "nats needs PostgreSQL (the server refuses --nats-url on SQLite): pass --database-url postgres://…"
                .into(),
        );
    }
    None
}

async fn run_scenario(
    scenario: Scenario, opts: &Opts, backend: &Backend, ceiling: &Ceiling, out: &mut Vec<Outcome>,
    starts: &mut Vec<f64>,
) -> anyhow::Result<()> {
    let duration = Duration::from_secs(opts.duration);
    if scenario == Scenario::Statements {
        out.extend(statements(opts, backend).await?);
        return Ok(());
    }
    if scenario == Scenario::Nats
        && let Some(reason) = nats_unavailable(opts, backend)
    {
        eprintln!("[bench] nats skipped: {reason}");
        let mut o = Outcome::new("nats", json!({}));
        o.notes.push(format!("skipped: {reason}"));
        out.push(o);
        return Ok(());
    }
    let mut run = Run::start(opts, backend, scenario).await?;
    eprintln!("[bench] {scenario:?} on {}", run.server.base);
    let fanout_args = FanoutArgs {
        subscribers: opts.subscribers,
        rate: opts.rate,
        duration,
        per_address: opts.per_address,
    };
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
        Scenario::Fanout => {
            scenarios::fanout(&run.api, &run.server, fanout_args, ceiling, &opts.data_root).await
        }
        Scenario::Idle => {
            scenarios::idle(&run.api, &run.server, opts.connections, opts.per_address)
                .await
                .map(|o| vec![o])
        }
        Scenario::History => {
            scenarios::history(
                &run.api,
                &mut run.server,
                scenarios::BulkSize {
                    orders: opts.orders,
                    samples: opts.samples,
                },
                ceiling,
            )
            .await
        }
        Scenario::Reports => {
            scenarios::reports(
                &run.api,
                &mut run.server,
                scenarios::BulkSize {
                    orders: opts.orders,
                    samples: opts.report_samples,
                },
                ceiling,
            )
            .await
        }
        Scenario::Nats => match &run.peer {
            Some((peer, peer_api)) => {
                scenarios::nats(
                    (&run.api, &run.server),
                    (peer_api, peer),
                    fanout_args,
                    ceiling,
                )
                .await
            }
            None => Err(anyhow::anyhow!("the second instance is missing")),
        },
        Scenario::Logins => {
            scenarios::logins(
                &run.api,
                &run.server,
                opts.concurrency,
                duration,
                opts.per_address,
            )
            .await
        }
        Scenario::All | Scenario::Ceiling | Scenario::Statements | Scenario::BareBroadcast => {
            Ok(Vec::new())
        }
    };
    starts.extend(run.stop(backend).await?);
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

/// `statements`: on SQLite, and on a scratch database with PostgreSQL.
async fn statements(opts: &Opts, backend: &Backend) -> anyhow::Result<Vec<Outcome>> {
    if opts.url.is_some() {
        anyhow::bail!("statements starts its own servers (to read their log): drop --url");
    }
    let scratch = match backend.admin() {
        Some(admin) => Some(admin.create_db().await?),
        None => None,
    };
    let result = statements::statements(statements::Args {
        server_bin: &opts.server_bin,
        data_root: &opts.data_root,
        requests: opts.requests,
        postgres: scratch.as_ref().map(|db| db.url.clone()),
    })
    .await;
    if let (Some(admin), Some(db)) = (backend.admin(), &scratch) {
        admin.drop_quietly(db).await;
    }
    result
}

fn print_table(report: &Report, backend: &str) {
    println!(
        "\nordertrack-bench — {} — {} CPUs ({}), load {}",
        report.scenario,
        report.machine["nproc"],
        report.machine["cpu"].as_str().unwrap_or(""),
        report.machine["loadavg"].as_str().unwrap_or("")
    );
    println!("backend: {backend}");
    println!(
        "{:<40} {:>16} {:<14} {:>9} {:>9} {:>9} {:>9}  notes",
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
                        | "per_pgbench_tps"
                        | "per_healthz"
                        | "mean_batch"
                        | "per_engine"
                        | "publish_p99_ms"
                        | "publish_unwatched_p99_ms"
                        | "added_p50_ms"
                        | "added_p99_ms"
                        | "peak_rss_mib"
                )
            })
            .map(|(k, v)| match v.as_f64() {
                Some(f) if f.fract() != 0.0 => format!("{k}={f:.2}"),
                _ => format!("{k}={v}"),
            })
            .collect();
        notes.extend(o.notes.iter().cloned());
        println!(
            "{:<40} {:>16} {:<14} {:>9} {:>9} {:>9} {:>9}  {}",
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
        "ceiling: {:.0} req/s /healthz (p50 {} ms), serial p99 {} ms, {:.0} fsync/s, bare write engine {:.0} writes/s{}; server start {:?} ms",
        report.ceiling.healthz_per_s,
        ms(report.ceiling.healthz_p50_us),
        ms(report.ceiling.healthz_serial_p99_us),
        report.ceiling.fsync_per_s,
        report.ceiling.engine_writes_per_s,
        report
            .ceiling
            .pgbench_tps
            .map(|t| format!(", pgbench {t:.0} tps"))
            .unwrap_or_default(),
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
    if cli.scenario == Scenario::BareBroadcast {
        server::raise_nofile(65_536);
        return bare_broadcast::serve(&opts.bind, opts.data_bytes).await;
    }
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

    pg::check_loopback_nats(&opts.nats_url)?;
    let backend = match &opts.database_url {
        Some(url) => {
            let (admin, version) = PgAdmin::new(url)
                .await
                .context("--database-url: the PostgreSQL admin connection")?;
            Backend::Postgres { admin, version }
        }
        None => Backend::Sqlite,
    };
    eprintln!("[bench] backend: {}", backend.label());
    if cli.scenario == Scenario::Nats
        && let Some(reason) = nats_unavailable(&opts, &backend)
    {
        eprintln!("[bench] nats skipped: {reason}");
        println!("nats skipped: {reason}");
        return Ok(());
    }

    if cli.scenario == Scenario::Statements {
        let results = statements(&opts, &backend).await?;
        statements::print_table(&results);
        let report = Report {
            scenario: "statements".into(),
            backend: backend.describe(),
            command,
            started_at,
            machine: machine(),
            ceiling: Ceiling::default(),
            server_start_ms: Vec::new(),
            results,
        };
        return write_report(&opts, &report);
    }

    let mut results = Vec::new();
    let mut starts = Vec::new();
    // The ceiling, on its own fresh server.
    let seconds = match cli.scenario {
        Scenario::All | Scenario::Ceiling => opts.duration,
        _ => opts.ceiling_secs,
    };
    let run = Run::start(&opts, &backend, Scenario::Ceiling).await?;
    eprintln!("[bench] ceiling on {}", run.server.base);
    let ceiling = run.ceiling(seconds, &backend).await;
    starts.extend(run.stop(&backend).await?);
    let (ceiling, outcomes) = ceiling?;
    results.extend(outcomes);

    let plan: &[Scenario] = match cli.scenario {
        Scenario::All => &[
            Scenario::Create,
            Scenario::Transitions,
            Scenario::Fanout,
            Scenario::Nats,
            Scenario::Idle,
            Scenario::History,
            Scenario::Reports,
            Scenario::Statements,
            Scenario::Logins,
        ],
        Scenario::Ceiling => &[],
        ref one => std::slice::from_ref(one),
    };
    for scenario in plan {
        run_scenario(
            *scenario,
            &opts,
            &backend,
            &ceiling,
            &mut results,
            &mut starts,
        )
        .await?;
    }

    let report = Report {
        scenario: format!("{:?}", cli.scenario).to_lowercase(),
        backend: backend.describe(),
        command,
        started_at,
        machine: machine(),
        ceiling,
        server_start_ms: starts,
        results,
    };
    print_table(&report, &backend.label());
    write_report(&opts, &report)
}

/// Writes the report as JSON where `--json` says, if it says.
fn write_report(opts: &Opts, report: &Report) -> anyhow::Result<()> {
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_vec_pretty(report)?)?;
        eprintln!("[bench] wrote {}", path.display());
    }
    Ok(())
}
