//! The scenarios. Each returns [`Outcome`]s for the table and the JSON.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::{Client, Url};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, Semaphore, watch};

use crate::api::{Api, OrderInfo, STORE};
use crate::bare_writer;
use crate::pg::PgAdmin;
use crate::server::{Launch, Server};
use crate::sse::{FrameParser, event_stamp, now_micros};
use crate::stats::{Summary, summarize};

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub scenario: String,
    pub params: Value,
    /// Operations per second (see `unit`).
    pub throughput: Option<f64>,
    pub unit: String,
    pub latency: Option<Summary>,
    /// Against the ceiling of the same run; `ratio_basis` says how.
    pub ratio: Option<f64>,
    pub ratio_basis: String,
    pub metrics: Map<String, Value>,
    pub notes: Vec<String>,
}

impl Outcome {
    pub fn new(scenario: &str, params: Value) -> Self {
        Outcome {
            scenario: scenario.to_owned(),
            params,
            throughput: None,
            unit: String::new(),
            latency: None,
            ratio: None,
            ratio_basis: String::new(),
            metrics: Map::new(),
            notes: Vec::new(),
        }
    }

    pub fn metric(&mut self, key: &str, value: impl Into<Value>) {
        self.metrics.insert(key.to_owned(), value.into());
    }
}

/// The ceiling figures other scenarios are compared with.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Ceiling {
    pub healthz_per_s: f64,
    pub healthz_p50_us: u64,
    /// One client, one request at a time: the bare HTTP round trip.
    pub healthz_serial_p50_us: u64,
    pub healthz_serial_p99_us: u64,
    pub fsync_per_s: f64,
    /// pgbench TPC-B (8 clients) when it ran: the PostgreSQL ceiling.
    pub pgbench_tps: Option<f64>,
    /// The bare write engine on the run's backend, `concurrency` clients:
    /// what durable writes are compared with.
    pub engine_writes_per_s: f64,
}

/// When the k-th of a fixed-rate series is due, from the series' start.
pub fn scheduled_offset(k: u64, rate_per_s: f64) -> Duration {
    Duration::from_secs_f64(k as f64 / rate_per_s)
}

/// How many changes a publisher makes at `rate_per_s` for `seconds`.
pub fn events_for(rate_per_s: f64, seconds: u64) -> usize {
    (rate_per_s * seconds as f64).round().max(1.0) as usize
}

/// Source addresses for `connections` when one address carries at most
/// `per_address`: none (the default route) when one is enough, else
/// 127.0.0.2, 127.0.0.3, …
pub fn source_addresses(connections: usize, per_address: usize) -> Vec<Option<IpAddr>> {
    if connections <= per_address {
        return vec![None];
    }
    let n = connections.div_ceil(per_address.max(1)).min(250);
    (0..n)
        .map(|i| Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8))))
        .collect()
}

/// Parses `tps = 2412.5 (without initial connection time)` from pgbench.
pub fn parse_pgbench_tps(output: &str) -> Option<f64> {
    output
        .lines()
        .filter(|line| line.trim_start().starts_with("tps = "))
        .find(|line| !line.contains("including"))
        .or_else(|| {
            output
                .lines()
                .find(|line| line.trim_start().starts_with("tps = "))
        })
        .and_then(|line| {
            line.trim_start()["tps = ".len()..]
                .split_whitespace()
                .next()
        })
        .and_then(|n| n.parse().ok())
}

// ---------------------------------------------------------------- ceiling

async fn healthz_load(api: &Api, concurrency: usize, duration: Duration) -> (f64, Vec<u64>, u64) {
    let url = api.url("/healthz");
    let started = Instant::now();
    let deadline = started + duration;
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, errors) = (api.client.clone(), url.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let ok = match client.get(url.clone()).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    latencies.push(t0.elapsed().as_micros() as u64);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap_or_default());
    }
    let elapsed = started.elapsed().as_secs_f64();
    (
        all.len() as f64 / elapsed,
        all,
        errors.load(Ordering::Relaxed),
    )
}

/// 4 KiB write + fdatasync, `n` times (at most `max` long).
pub fn fsync_rate(dir: &Path, n: usize, max: Duration) -> anyhow::Result<(f64, Summary)> {
    use std::io::Write;
    let path = dir.join("fsync-probe.bin");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    let block = [0x5au8; 4096];
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        latencies.push(t0.elapsed().as_micros() as u64);
        if started.elapsed() > max {
            break;
        }
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok((rate, summarize(&mut latencies)))
}

pub struct CeilingArgs<'a> {
    pub concurrency: usize,
    pub duration: Duration,
    pub fsync_dir: &'a Path,
    pub pgbench: bool,
    pub pg_url: Option<&'a str>,
    /// PostgreSQL backend: pgbench always runs, in its own scratch database.
    pub pg_admin: Option<&'a PgAdmin>,
}

pub async fn ceiling(api: &Api, args: CeilingArgs<'_>) -> anyhow::Result<(Ceiling, Vec<Outcome>)> {
    let mut out = Vec::new();
    // Warm the pool.
    healthz_load(api, args.concurrency, Duration::from_millis(300)).await;
    let (rate, mut latencies, errors) = healthz_load(api, args.concurrency, args.duration).await;
    let summary = summarize(&mut latencies);
    let mut o = Outcome::new(
        "ceiling: GET /healthz",
        json!({ "concurrency": args.concurrency, "seconds": args.duration.as_secs_f64() }),
    );
    o.throughput = Some(rate);
    o.unit = "req/s".into();
    o.latency = Some(summary);
    o.ratio = Some(1.0);
    o.ratio_basis = "is the ceiling".into();
    o.metric("errors", errors);
    out.push(o);

    let (_, mut serial, _) = healthz_load(api, 1, Duration::from_secs(2)).await;
    let serial = summarize(&mut serial);
    let mut o = Outcome::new(
        "ceiling: GET /healthz, 1 client",
        json!({ "concurrency": 1, "seconds": 2 }),
    );
    o.throughput = Some(serial.count as f64 / 2.0);
    o.unit = "req/s".into();
    o.latency = Some(serial);
    o.ratio_basis = "bare round trip".into();
    out.push(o);

    let dir = args.fsync_dir.to_path_buf();
    let (fsync, fsync_summary) =
        tokio::task::spawn_blocking(move || fsync_rate(&dir, 5000, Duration::from_secs(5)))
            .await??;
    let mut o = Outcome::new(
        "ceiling: 4 KiB write+fdatasync",
        json!({ "dir": args.fsync_dir.display().to_string() }),
    );
    o.throughput = Some(fsync);
    o.unit = "fsync/s".into();
    o.latency = Some(fsync_summary);
    o.ratio_basis = "disk ceiling".into();
    out.push(o);

    let engine = match args.pg_admin {
        Some(admin) => {
            let db = admin.create_db().await?;
            let measured = bare_writer::measure(
                bare_writer::Target::Postgres(&db.url),
                args.concurrency,
                args.duration,
            )
            .await;
            admin.drop_quietly(&db).await;
            measured?
        }
        None => {
            bare_writer::measure(
                bare_writer::Target::Sqlite(args.fsync_dir),
                args.concurrency,
                args.duration,
            )
            .await?
        }
    };
    let engine_writes_per_s = engine.throughput.unwrap_or(0.0);
    out.push(engine);

    if let Some(admin) = args.pg_admin {
        let db = admin.create_db().await?;
        let mut o = pgbench(Some(&db.url), args.duration).await;
        admin.drop_quietly(&db).await;
        o.params["database"] = json!("scratch");
        out.push(o);
    } else if args.pgbench {
        out.push(pgbench(args.pg_url, args.duration).await);
    }
    let pgbench_tps = out
        .iter()
        .find(|o| o.scenario == PGBENCH)
        .and_then(|o| o.throughput);

    Ok((
        Ceiling {
            healthz_per_s: rate,
            healthz_p50_us: summary.p50_us,
            healthz_serial_p50_us: serial.p50_us,
            healthz_serial_p99_us: serial.p99_us,
            fsync_per_s: fsync,
            pgbench_tps,
            engine_writes_per_s,
        },
        out,
    ))
}

const PGBENCH: &str = "ceiling: pgbench TPC-B";

async fn pgbench(pg_url: Option<&str>, duration: Duration) -> Outcome {
    let mut o = Outcome::new(PGBENCH, json!({ "clients": 8, "threads": 2 }));
    o.unit = "tps".into();
    o.ratio_basis = "PostgreSQL ceiling".into();
    let Some(url) = pg_url else {
        o.notes.push("skipped: no --pg-url".into());
        return o;
    };
    if let Err(e) = crate::server::check_loopback_pg(url) {
        o.notes.push(format!("skipped: {e}"));
        return o;
    }
    let run = |args: Vec<String>| async move {
        tokio::process::Command::new("pgbench")
            .args(args)
            .output()
            .await
    };
    match run(vec!["-i".into(), "-q".into(), url.into()]).await {
        Err(e) => {
            o.notes.push(format!("skipped: pgbench not runnable ({e})"));
            return o;
        }
        Ok(init) if !init.status.success() => {
            o.notes.push(format!(
                "skipped: pgbench -i failed: {}",
                String::from_utf8_lossy(&init.stderr).trim()
            ));
            return o;
        }
        Ok(_) => {}
    }
    let secs = duration.as_secs().max(1).to_string();
    match run(vec![
        "-c".into(),
        "8".into(),
        "-j".into(),
        "2".into(),
        "-T".into(),
        secs,
        url.into(),
    ])
    .await
    {
        Ok(output) => {
            let text = String::from_utf8_lossy(&output.stdout);
            o.throughput = parse_pgbench_tps(&text);
            if o.throughput.is_none() {
                o.notes.push("could not read tps from pgbench".into());
            }
        }
        Err(e) => o.notes.push(format!("pgbench failed: {e}")),
    }
    o
}

// ---------------------------------------------------------------- orders

/// Demo products: one grill item for the workflow, a drink for variety.
pub async fn menu(api: &Api) -> anyhow::Result<(i64, i64)> {
    let products = api.products().await?;
    let grill = products
        .iter()
        .find(|p| p.station == "grill")
        .context("no grill product")?
        .id;
    let drink = products
        .iter()
        .find(|p| p.station == "drinks")
        .map_or(grill, |p| p.id);
    Ok((grill, drink))
}

/// Places `n` orders of `items` with `concurrency` customers in parallel.
pub async fn precreate(
    api: &Api, customers: &[String], items: &[i64], n: usize, concurrency: usize,
) -> anyhow::Result<Vec<OrderInfo>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (api, next) = (api.clone(), next.clone());
        let token = customers[w % customers.len()].clone();
        let items = items.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut placed = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                placed.push(api.place(&token, &items).await?);
            }
            Ok::<_, anyhow::Error>(placed)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for task in tasks {
        all.extend(task.await??);
    }
    all.sort_by_key(|o| o.id);
    Ok(all)
}

pub async fn customers(api: &Api) -> anyhow::Result<Vec<String>> {
    Ok(vec![
        api.login("alice@demo.test").await?,
        api.login("bob@demo.test").await?,
    ])
}

pub async fn create(
    api: &Api, concurrency: usize, duration: Duration, ceiling: &Ceiling,
) -> anyhow::Result<Outcome> {
    let tokens = customers(api).await?;
    let (grill, drink) = menu(api).await?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let api = api.clone();
        let token = tokens[w % tokens.len()].clone();
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), Vec::new());
            while Instant::now() < deadline {
                let t0 = Instant::now();
                match api.place(&token, &[grill, drink]).await {
                    Ok(_) => latencies.push(t0.elapsed().as_micros() as u64),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (latencies, errors)
        }));
    }
    let (mut all, mut errors) = (Vec::new(), Vec::new());
    for task in tasks {
        let (l, e) = task.await?;
        all.extend(l);
        errors.extend(e);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut o = Outcome::new(
        "create",
        json!({ "concurrency": concurrency, "seconds": duration.as_secs_f64(), "items_per_order": 2 }),
    );
    o.throughput = Some(all.len() as f64 / elapsed);
    o.unit = "orders/s".into();
    o.latency = Some(summarize(&mut all));
    o.ratio = Some(o.throughput.unwrap_or(0.0) / ceiling.healthz_per_s);
    o.ratio_basis = "÷ healthz req/s".into();
    o.metric(
        "per_engine",
        o.throughput.unwrap_or(0.0) / ceiling.engine_writes_per_s.max(1.0),
    );
    o.metric("errors", errors.len());
    if let Some(first) = errors.first() {
        o.notes.push(format!("first error: {first}"));
    }
    o.metric(
        "per_fsync",
        o.throughput.unwrap_or(0.0) / ceiling.fsync_per_s.max(1.0),
    );
    if let Some(tps) = ceiling.pgbench_tps {
        o.metric(
            "per_pgbench_tps",
            o.throughput.unwrap_or(0.0) / tps.max(1.0),
        );
    }
    Ok(o)
}

// ---------------------------------------------------------------- transitions

/// The steps a cashier takes an order through: confirmed, preparing,
/// cooking, the item ready (which moves the order to ready by itself),
/// completed. Every step is one durable, acknowledged write.
pub const STEPS: [&str; 5] = [
    "confirmed",
    "preparing",
    "cooking",
    "item:ready",
    "completed",
];

pub async fn transitions(
    api: &Api, concurrency: usize, duration: Duration, orders: usize, ceiling: &Ceiling,
) -> anyhow::Result<Outcome> {
    let cashier = api.login("cashier@demo.test").await?;
    let tokens = customers(api).await?;
    let (grill, _) = menu(api).await?;
    let t0 = Instant::now();
    let pool = precreate(api, &tokens, &[grill], orders, 32).await?;
    let precreate_s = t0.elapsed().as_secs_f64();
    let pool = Arc::new(Mutex::new(pool));
    let exhausted = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (api, pool, token, exhausted) = (
            api.clone(),
            pool.clone(),
            cashier.clone(),
            exhausted.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), Vec::new());
            'orders: while Instant::now() < deadline {
                let Some(mut order) = pool.lock().await.pop() else {
                    exhausted.store(true, Ordering::Relaxed);
                    break;
                };
                for step in STEPS {
                    if Instant::now() >= deadline {
                        break 'orders;
                    }
                    let t = Instant::now();
                    let result = match step.strip_prefix("item:") {
                        Some(status) => {
                            api.item_status(&token, order.id, order.items[0].id, status)
                                .await
                        }
                        None => api.transition(&token, order.id, step, order.version).await,
                    };
                    match result {
                        Ok(next) => {
                            latencies.push(t.elapsed().as_micros() as u64);
                            order = next;
                        }
                        Err(e) => {
                            errors.push(format!("{step}: {e}"));
                            continue 'orders;
                        }
                    }
                    if step.starts_with("item:") && order.status != "ready" {
                        errors.push(format!("item ready left the order {}", order.status));
                        continue 'orders;
                    }
                }
            }
            (latencies, errors, Instant::now())
        }));
    }
    let (mut all, mut errors) = (Vec::new(), Vec::new());
    let mut last = started;
    for task in tasks {
        let (l, e, end) = task.await?;
        all.extend(l);
        errors.extend(e);
        last = last.max(end);
    }
    let elapsed = (last - started).as_secs_f64();
    let mut o = Outcome::new(
        "transitions",
        json!({ "concurrency": concurrency, "seconds": duration.as_secs_f64(), "orders": orders,
                "steps": STEPS }),
    );
    let rate = all.len() as f64 / elapsed;
    o.throughput = Some(rate);
    o.unit = "transitions/s".into();
    o.latency = Some(summarize(&mut all));
    o.ratio = Some(rate / ceiling.engine_writes_per_s.max(1.0));
    o.ratio_basis = "÷ the bare write engine's writes/s (same run, same clients)".into();
    o.metric("per_healthz", rate / ceiling.healthz_per_s.max(1.0));
    o.metric("errors", errors.len());
    o.metric("elapsed_s", elapsed);
    o.metric("precreate_s", precreate_s);
    o.metric("per_fsync", rate / ceiling.fsync_per_s.max(1.0));
    if let Some(tps) = ceiling.pgbench_tps {
        o.metric("per_pgbench_tps", rate / tps.max(1.0));
    }
    if exhausted.load(Ordering::Relaxed) {
        o.notes.push(format!(
            "order pool ran out after {elapsed:.1} s (raise --tx-orders)"
        ));
    }
    if let Some(first) = errors.first() {
        o.notes.push(format!("first error: {first}"));
    }
    Ok(o)
}

// ---------------------------------------------------------------- SSE subscribers

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|ticks| {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
        ticks as f64 / hz as f64
    })
}

/// utime + stime (fields 14 and 15) from `/proc/<pid>/stat`.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces: count after its `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

struct Shared {
    index: HashMap<i64, u32>,
    events: usize,
    ready: AtomicUsize,
    received: AtomicU64,
    connect: Semaphore,
    /// The length of the first order event's `data:` line seen.
    data_bytes: AtomicUsize,
}

#[derive(Default)]
struct SubResult {
    latencies: Vec<u32>,
    negative: u64,
    error: Option<String>,
    ended: bool,
}

const MISSING: u32 = u32::MAX;

async fn subscriber(
    client: Client, url: Url, token: String, shared: Arc<Shared>, mut stop: watch::Receiver<bool>,
) -> SubResult {
    let mut result = SubResult {
        latencies: vec![MISSING; shared.events],
        ..SubResult::default()
    };
    let mut permit = match shared.connect.acquire().await {
        Ok(p) => Some(p),
        Err(_) => return result,
    };
    let mut response = match client.get(url).bearer_auth(&token).send().await {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            result.error = Some(format!("status {}", r.status()));
            return result;
        }
        Err(e) => {
            result.error = Some(format!("{e:?}"));
            return result;
        }
    };
    let mut parser = FrameParser::default();
    let mut frames = Vec::new();
    loop {
        tokio::select! {
            chunk = response.chunk() => match chunk {
                Ok(Some(bytes)) => {
                    let now = now_micros();
                    parser.push(&bytes, &mut frames);
                    for frame in frames.drain(..) {
                        match frame.event.as_deref() {
                            Some("ready") | Some("snapshot") => {
                                if permit.take().is_some() {
                                    shared.ready.fetch_add(1, Ordering::Relaxed);
                                }
                                continue;
                            }
                            Some("reconnect") => result.ended = true,
                            _ => {}
                        }
                        let Some(stamp) = event_stamp(&frame.data) else { continue };
                        if stamp.order_version != 2 {
                            continue;
                        }
                        if let Some(&i) = shared.index.get(&stamp.order_id) {
                            if shared.data_bytes.load(Ordering::Relaxed) == 0 {
                                shared.data_bytes.store(frame.data.len(), Ordering::Relaxed);
                            }
                            let slot = &mut result.latencies[i as usize];
                            if *slot == MISSING {
                                let d = now - stamp.at_us;
                                if d < 0 {
                                    result.negative += 1;
                                }
                                *slot = d.clamp(0, i64::from(MISSING - 1)) as u32;
                                shared.received.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
                Ok(None) => { result.ended = true; break; }
                Err(e) => { result.error = Some(format!("{e:?}")); break; }
            },
            _ = stop.changed() => break,
        }
    }
    result
}

struct Subscribers {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<SubResult>>,
    connect_s: f64,
    connected: usize,
}

async fn open_subscribers(
    api: &Api, token: &str, n: usize, per_address: usize, index: HashMap<i64, u32>, events: usize,
) -> anyhow::Result<Subscribers> {
    let url = api.url(&format!("/api/v1/stores/{STORE}/events"));
    let loopback_v4 = matches!(api.base.host_str(), Some(h) if h.starts_with("127."));
    let addresses = if loopback_v4 {
        source_addresses(n, per_address)
    } else {
        vec![None]
    };
    let clients: Vec<Client> = addresses
        .iter()
        .map(|a| crate::api::stream_client(*a))
        .collect();
    let shared = Arc::new(Shared {
        index,
        events,
        ready: AtomicUsize::new(0),
        received: AtomicU64::new(0),
        connect: Semaphore::new(256),
        data_bytes: AtomicUsize::new(0),
    });
    let (stop, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        tasks.push(tokio::spawn(subscriber(
            clients[i % clients.len()].clone(),
            url.clone(),
            token.to_owned(),
            shared.clone(),
            stop_rx.clone(),
        )));
    }
    // Wait until every subscriber has its `ready` (or has failed).
    let limit = Instant::now() + Duration::from_secs(180);
    loop {
        let ready = shared.ready.load(Ordering::Relaxed);
        let finished = tasks.iter().filter(|t| t.is_finished()).count();
        if ready + finished >= n || Instant::now() > limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connected = shared.ready.load(Ordering::Relaxed);
    Ok(Subscribers {
        shared,
        stop,
        tasks,
        connect_s: started.elapsed().as_secs_f64(),
        connected,
    })
}

impl Subscribers {
    async fn close(self) -> Vec<SubResult> {
        let _ = self.stop.send(true);
        let mut results = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            results.push(task.await.unwrap_or_default());
        }
        results
    }
}

pub struct FanoutArgs {
    pub subscribers: usize,
    pub rate: f64,
    pub duration: Duration,
    pub per_address: usize,
}

/// Who publishes a fan-out's events.
#[derive(Clone)]
enum Publisher {
    /// ordertrack: the cashier moves each order `pending → confirmed`
    /// (committed, authorised, then fanned out).
    Ordertrack { api: Api, cashier: String },
    /// The bare broadcast server: `POST /publish/{store}/{order}`.
    Bare { api: Api },
}

impl Publisher {
    fn api(&self) -> &Api {
        match self {
            Publisher::Ordertrack { api, .. } | Publisher::Bare { api } => api,
        }
    }

    /// Publishes the event of `order`; whether the server accepted it.
    async fn publish(&self, order: i64) -> bool {
        match self {
            Publisher::Ordertrack { api, cashier } => {
                api.transition(cashier, order, "confirmed", 1).await.is_ok()
            }
            Publisher::Bare { api } => api
                .client
                .post(api.url(&format!("/publish/{STORE}/{order}")))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success()),
        }
    }
}

/// The subscribers' side of a fan-out: their server (for RSS and CPU) and
/// the token they subscribe with.
struct Audience<'a> {
    api: &'a Api,
    token: &'a str,
    server: &'a Server,
}

/// `fanout`: the bare broadcast server and ordertrack, one after the other
/// with the same client, subscribers and rate; ordertrack's ratio is its
/// p99 over the bare server's. The bare server's events are padded to the
/// size of ordertrack's, so both put the same bytes on the wire.
pub async fn fanout(
    api: &Api, server: &Server, args: FanoutArgs, ceiling: &Ceiling, data_root: &Path,
) -> anyhow::Result<Vec<Outcome>> {
    let mut real = measure_fanout("fanout", api, api, server, &args, ceiling).await?;
    let data_bytes = real
        .metrics
        .get("event_data_bytes")
        .and_then(Value::as_u64)
        .unwrap_or(512) as usize;
    let bare = bare_fanout(&args, ceiling, data_root, data_bytes).await?;
    if let (Some(r), Some(b)) = (real.latency, bare.latency) {
        if let Some(healthz) = real.ratio {
            real.metric("per_serial_healthz_p99", healthz);
        }
        real.ratio = Some(r.p99_us as f64 / b.p99_us.max(1) as f64);
        real.ratio_basis = "p99 ÷ the bare broadcast server's p99 (same run, same client)".into();
    }
    Ok(vec![bare, real])
}

/// The bare broadcast server (this binary, as a child process) under the
/// fan-out's load.
async fn bare_fanout(
    args: &FanoutArgs, ceiling: &Ceiling, data_root: &Path, data_bytes: usize,
) -> anyhow::Result<Outcome> {
    let exe = std::env::current_exe().context("the bench binary's path")?;
    let mut server =
        Server::start_fresh(&exe, data_root, Launch::bare_broadcast(data_bytes)).await?;
    let api = Api::new(crate::api::client(None), server.base.clone());
    let events = events_for(args.rate, args.duration.as_secs()) as i64;
    let orders: Vec<i64> = (1..=events).collect();
    let audience = Audience {
        api: &api,
        token: "bare",
        server: &server,
    };
    let source = Publisher::Bare { api: api.clone() };
    let measured = deliver(
        "fanout bare broadcast",
        &source,
        &orders,
        audience,
        args,
        ceiling,
    )
    .await;
    server.stop().await?;
    measured
}

/// The fan-out measurement behind `fanout` and `nats`: orders placed and
/// moved `pending → confirmed` through `publisher` at `args.rate`, with
/// `args.subscribers` store-stream subscribers on `listener` (whose server
/// is `listener_server`, for RSS and CPU); latency = arrival − the event's
/// `at` (commit time, same clock).
pub async fn measure_fanout(
    name: &str, publisher: &Api, listener: &Api, listener_server: &Server, args: &FanoutArgs,
    ceiling: &Ceiling,
) -> anyhow::Result<Outcome> {
    let cashier = publisher.login("cashier@demo.test").await?;
    let listener_cashier = if listener.base == publisher.base {
        cashier.clone()
    } else {
        listener.login("cashier@demo.test").await?
    };
    let tokens = customers(publisher).await?;
    let (grill, _) = menu(publisher).await?;
    let events = events_for(args.rate, args.duration.as_secs());
    let orders: Vec<i64> = precreate(publisher, &tokens, &[grill], 2 * events, 16)
        .await?
        .iter()
        .map(|o| o.id)
        .collect();
    let (alone, watched) = orders.split_at(events);
    let source = Publisher::Ordertrack {
        api: publisher.clone(),
        cashier,
    };
    // The same transitions at the same rate with nobody watching first: what
    // a fan-out adds to the cashier's own request.
    let mut unwatched = publish_on_schedule(&source, alone, args.rate)
        .await?
        .latencies;
    let unwatched = summarize(&mut unwatched);
    let audience = Audience {
        api: listener,
        token: &listener_cashier,
        server: listener_server,
    };
    let mut o = deliver(name, &source, watched, audience, args, ceiling).await?;
    o.metric("publish_unwatched_p50_ms", millis(unwatched.p50_us));
    o.metric("publish_unwatched_p99_ms", millis(unwatched.p99_us));
    if let Some(watched_p99) = o.metrics.get("publish_p99_ms").and_then(Value::as_f64) {
        o.metric(
            "publish_p99_per_unwatched",
            watched_p99 / millis(unwatched.p99_us).max(0.001),
        );
    }
    Ok(o)
}

fn millis(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// What [`publish_on_schedule`] did: the indexes of the accepted
/// publications and each one's request latency (µs).
struct Publishing {
    accepted: Vec<usize>,
    latencies: Vec<u64>,
}

/// Publishes one event per order of `orders`, `rate` per second on a fixed
/// schedule (each in its own task, so a slow answer never delays the next).
async fn publish_on_schedule(
    source: &Publisher, orders: &[i64], rate: f64,
) -> anyhow::Result<Publishing> {
    let started = tokio::time::Instant::now();
    let mut sends = Vec::with_capacity(orders.len());
    for (k, &order) in orders.iter().enumerate() {
        tokio::time::sleep_until(started + scheduled_offset(k as u64, rate)).await;
        let source = source.clone();
        sends.push(tokio::spawn(async move {
            let t = Instant::now();
            source
                .publish(order)
                .await
                .then(|| t.elapsed().as_micros() as u64)
        }));
    }
    let mut publishing = Publishing {
        accepted: Vec::new(),
        latencies: Vec::new(),
    };
    for (k, send) in sends.into_iter().enumerate() {
        if let Some(us) = send.await? {
            publishing.accepted.push(k);
            publishing.latencies.push(us);
        }
    }
    Ok(publishing)
}

/// Subscribes `args.subscribers` clients, publishes one event per order of
/// `orders` on schedule and measures each delivery: arrival − the event's
/// `at` (stamped by the server, same clock).
async fn deliver(
    name: &str, source: &Publisher, orders: &[i64], audience: Audience<'_>, args: &FanoutArgs,
    ceiling: &Ceiling,
) -> anyhow::Result<Outcome> {
    let (listener, server) = (audience.api, audience.server);
    let events = orders.len();
    let index: HashMap<i64, u32> = orders
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, i as u32))
        .collect();
    let rss_before = server.rss_kib().ok();
    let subs = open_subscribers(
        listener,
        audience.token,
        args.subscribers,
        args.per_address,
        index,
        events,
    )
    .await?;
    if subs.connected < args.subscribers {
        let connected = subs.connected;
        let results = subs.close().await;
        let first = results
            .iter()
            .find_map(|r| r.error.clone())
            .unwrap_or_default();
        bail!(
            "only {connected} of {} subscribers connected (first error: {first})",
            args.subscribers
        );
    }
    let rss_connected = server.rss_kib().ok();

    let server_cpu0 = server.pid.and_then(cpu_seconds);
    let bench_cpu0 = cpu_seconds(std::process::id());
    let started = tokio::time::Instant::now();
    let publishing = publish_on_schedule(source, orders, args.rate).await?;
    let publish_s = started.elapsed().as_secs_f64();
    let ok = publishing.accepted;
    let mut publish_latencies = publishing.latencies;
    let publish = summarize(&mut publish_latencies);
    let expected = (ok.len() * subs.connected) as u64;
    let drain_limit = Instant::now() + Duration::from_secs(15);
    while subs.shared.received.load(Ordering::Relaxed) < expected && Instant::now() < drain_limit {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss_after = server.rss_kib().ok();
    let busy_s = started.elapsed().as_secs_f64();
    let server_cpu = server
        .pid
        .and_then(cpu_seconds)
        .zip(server_cpu0)
        .map(|(b, a)| b - a);
    let bench_cpu = cpu_seconds(std::process::id())
        .zip(bench_cpu0)
        .map(|(b, a)| b - a);
    let connect_s = subs.connect_s;
    let connected = subs.connected;
    let subs_data_bytes = subs.shared.data_bytes.load(Ordering::Relaxed);
    let results = subs.close().await;

    let mut latencies = Vec::with_capacity(expected as usize);
    let (mut missed, mut negative, mut ended, mut failed) = (0u64, 0u64, 0usize, 0usize);
    for r in &results {
        negative += r.negative;
        ended += usize::from(r.ended);
        failed += usize::from(r.error.is_some());
        for &k in &ok {
            match r.latencies[k] {
                MISSING => missed += 1,
                us => latencies.push(u64::from(us)),
            }
        }
    }
    let summary = summarize(&mut latencies);
    let mut o = Outcome::new(
        name,
        json!({ "subscribers": args.subscribers, "rate_per_s": args.rate,
                "seconds": args.duration.as_secs_f64(), "stream": format!("/api/v1/stores/{STORE}/events"),
                "publisher": source.api().base.as_str(), "subscribers_on": listener.base.as_str() }),
    );
    let deliveries_per_s = latencies.len() as f64 / publish_s;
    o.throughput = Some(deliveries_per_s);
    o.unit = "deliveries/s".into();
    o.latency = Some(summary);
    o.ratio = Some(summary.p99_us as f64 / ceiling.healthz_serial_p99_us.max(1) as f64);
    o.ratio_basis = "p99 ÷ serial healthz p99".into();
    o.metric("missed", missed);
    o.metric("published", ok.len());
    o.metric("publish_p50_ms", millis(publish.p50_us));
    o.metric("publish_p99_ms", millis(publish.p99_us));
    o.metric("publish_errors", events - ok.len());
    o.metric("connected", connected);
    o.metric("connect_s", connect_s);
    o.metric("subscriber_errors", failed);
    o.metric("streams_ended", ended);
    o.metric("negative_latencies", negative);
    o.metric("event_data_bytes", subs_data_bytes);
    if let Some(cpu) = server_cpu {
        o.metric("server_cpu_cores", cpu / busy_s);
    }
    if let Some(cpu) = bench_cpu {
        o.metric("bench_cpu_cores", cpu / busy_s);
    }
    if let (Some(b), Some(c), Some(a)) = (rss_before, rss_connected, rss_after) {
        o.metric("server_rss_before_kib", b);
        o.metric("server_rss_connected_kib", c);
        o.metric("server_rss_after_kib", a);
    }
    if missed > 0 {
        o.notes
            .push(format!("{missed} (subscriber, event) pairs missed"));
    }
    Ok(o)
}

// ---------------------------------------------------------------- nats

/// Waits until `/readyz` answers 200 (database and event bus up).
pub async fn wait_ready(api: &Api, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(r) = api.client.get(api.url("/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} /readyz did not answer 200 within {limit:?}", api.base);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What crossing instances adds: `cross − single` for p50 and p99, in ms.
pub fn added_latency(single: &Summary, cross: &Summary) -> (f64, f64) {
    let ms = |a: u64, b: u64| (a as f64 - b as f64) / 1000.0;
    (
        ms(cross.p50_us, single.p50_us),
        ms(cross.p99_us, single.p99_us),
    )
}

/// Two instances A and B on one database and one NATS subject. The
/// publisher works through A; the same fan-out measurement runs with the
/// subscribers on A (single instance), then on B (cross-instance). A feeds
/// its own hub from NATS too (every instance does), so the difference is
/// what reaching another instance adds; `fanout` on PostgreSQL is the
/// no-NATS baseline.
pub async fn nats(
    a: (&Api, &Server), b: (&Api, &Server), args: FanoutArgs, ceiling: &Ceiling,
) -> anyhow::Result<Vec<Outcome>> {
    wait_ready(a.0, Duration::from_secs(30)).await?;
    wait_ready(b.0, Duration::from_secs(30)).await?;
    let single =
        measure_fanout("nats: single instance (A→A)", a.0, a.0, a.1, &args, ceiling).await?;
    let cross = measure_fanout("nats: cross-instance (A→B)", a.0, b.0, b.1, &args, ceiling).await?;
    let mut added = Outcome::new(
        "nats: added (cross − single)",
        json!({ "subscribers": args.subscribers, "rate_per_s": args.rate,
                "seconds": args.duration.as_secs_f64() }),
    );
    if let (Some(s), Some(c)) = (single.latency, cross.latency) {
        let (p50, p99) = added_latency(&s, &c);
        added.throughput = Some(p99);
        added.unit = "ms p99 added".into();
        added.ratio = Some(p99 / 10.0);
        added.ratio_basis = "added p99 ÷ 10 ms (DESIGN §7 target)".into();
        added.metric("added_p50_ms", p50);
        added.metric("added_p99_ms", p99);
        added.metric("added_max_ms", (c.max_us as f64 - s.max_us as f64) / 1000.0);
    }
    let missed = |o: &Outcome| o.metrics.get("missed").and_then(Value::as_u64).unwrap_or(0);
    added.metric("missed", missed(&single) + missed(&cross));
    Ok(vec![single, cross, added])
}

pub async fn idle(
    api: &Api, server: &Server, connections: usize, per_address: usize,
) -> anyhow::Result<Outcome> {
    let cashier = api.login("cashier@demo.test").await?;
    // Warm-up: one stream and a few requests, so one-time allocations
    // (thread stacks, caches) land in the baseline.
    let warm = open_subscribers(api, &cashier, 8, per_address, HashMap::new(), 0).await?;
    warm.close().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server.rss_kib()?;
    let subs = open_subscribers(api, &cashier, connections, per_address, HashMap::new(), 0).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = server.rss_kib()?;
    let connected = subs.connected;
    let connect_s = subs.connect_s;
    let results = subs.close().await;
    let first_error = results.iter().find_map(|r| r.error.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let closed = server.rss_kib()?;
    let per_conn_kib = (after.saturating_sub(before)) as f64 / connected.max(1) as f64;
    let mut o = Outcome::new("idle", json!({ "connections": connections }));
    o.unit = "KiB/conn".into();
    o.throughput = Some(per_conn_kib);
    o.ratio_basis = "n/a".into();
    o.metric("connected", connected);
    o.metric("connect_s", connect_s);
    o.metric("server_rss_before_kib", before);
    o.metric("server_rss_connected_kib", after);
    o.metric("server_rss_after_close_kib", closed);
    o.metric("kib_per_connection", per_conn_kib);
    if let Some(e) = first_error {
        o.notes.push(format!("first error: {e}"));
    }
    if connected < connections {
        o.notes
            .push(format!("only {connected} of {connections} connected"));
    }
    Ok(o)
}

// ---------------------------------------------------------------- history

/// A server restarted on a bulk-loaded database: the load's figures and
/// the restart time.
struct Loaded {
    api: Api,
    stats: crate::bulk::BulkStats,
    restart_ms: f64,
}

/// Stops the server, bulk-loads `orders` straight into its database
/// (SQLite or PostgreSQL) and starts it again.
async fn bulk_loaded(
    api: &Api, server: &mut Server, orders: usize, scenario: &str,
) -> anyhow::Result<Loaded> {
    if !server.managed() {
        bail!(
            "{scenario} bulk-loads the database file: let the benchmark start the server (no --url)"
        );
    }
    server.stop().await?;
    let stats = match server.database_url() {
        Some(url) => crate::bulk_pg::load(url, STORE, orders).await?,
        None => {
            let db = server.db_path();
            tokio::task::spawn_blocking(move || crate::bulk::load(&db, STORE, orders)).await??
        }
    };
    let rollups_s =
        crate::bulk::build_rollups(server.database_url(), &server.db_path(), STORE).await?;
    eprintln!("report rollups built from the loaded orders in {rollups_s:.1} s");
    server.start().await?;
    let restart_ms = server.start_times_ms.last().copied().unwrap_or(0.0);
    Ok(Loaded {
        api: Api::new(api.client.clone(), server.base.clone()),
        stats,
        restart_ms,
    })
}

/// `samples` sequential GETs of `path` as `token` (after `warm_up`
/// untimed): the outcome row, its ratio to the serial healthz p99.
async fn timed_gets(
    api: &Api, name: &str, token: &str, path: &str, (warm_up, samples): (usize, usize),
    params: Value, ceiling: &Ceiling,
) -> anyhow::Result<Outcome> {
    for _ in 0..warm_up {
        api.get_ok(Some(token), path).await?;
    }
    let mut latencies = Vec::with_capacity(samples);
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..samples {
        let t = Instant::now();
        bytes = api.get_ok(Some(token), path).await?;
        latencies.push(t.elapsed().as_micros() as u64);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let summary = summarize(&mut latencies);
    let mut o = Outcome::new(name, params);
    o.throughput = Some(samples as f64 / elapsed);
    o.unit = "pages/s".into();
    o.latency = Some(summary);
    o.ratio = Some(summary.p99_us as f64 / ceiling.healthz_serial_p99_us.max(1) as f64);
    o.ratio_basis = "p99 ÷ serial healthz p99".into();
    o.metric("body_bytes", bytes);
    Ok(o)
}

/// The bulk load's figures on an outcome row.
fn load_metrics(o: &mut Outcome, loaded: &Loaded) {
    let stats = &loaded.stats;
    o.metric("bulk_load_s", stats.seconds);
    o.metric("db_bytes", stats.db_bytes);
    o.metric("alice_orders", stats.alice_orders);
    o.metric("confirmed_orders", stats.confirmed_orders);
    o.metric("order_items", stats.items);
    o.metric("restart_ms", loaded.restart_ms);
}

/// How big a bulk-loaded scenario runs: the orders loaded, and the timed
/// requests per figure.
#[derive(Debug, Clone, Copy)]
pub struct BulkSize {
    pub orders: usize,
    pub samples: usize,
}

pub async fn history(
    api: &Api, server: &mut Server, size: BulkSize, ceiling: &Ceiling,
) -> anyhow::Result<Vec<Outcome>> {
    let BulkSize { orders, samples } = size;
    let loaded = bulk_loaded(api, server, orders, "history").await?;
    let api = &loaded.api;
    let alice = api.login("alice@demo.test").await?;
    let cashier = api.login("cashier@demo.test").await?;
    let pages = [
        (
            "history: customer page",
            alice,
            "/api/v1/orders?limit=20".to_owned(),
        ),
        (
            "history: staff status page",
            cashier,
            format!("/api/v1/orders?store={STORE}&status=confirmed&limit=20"),
        ),
    ];
    let mut out = Vec::new();
    for (name, token, path) in pages {
        let params =
            json!({ "path": path, "samples": samples, "orders_stored": orders, "concurrency": 1 });
        let mut o = timed_gets(api, name, &token, &path, (50, samples), params, ceiling).await?;
        load_metrics(&mut o, &loaded);
        out.push(o);
    }
    Ok(out)
}

// ---------------------------------------------------------------- reports

/// Report ranges timed: days ending today (UTC), and what the samples are
/// divided by for it (the longer ranges read many more orders: fewer).
const REPORT_RANGES: [(i64, usize); 4] = [(1, 1), (7, 1), (31, 4), (366, 20)];

/// `from=…&to=…` for the `days` ending on `today`.
pub fn report_range(today: time::Date, days: i64) -> String {
    let from = today - time::Duration::days(days - 1);
    format!("from={from}&to={today}")
}

/// Bulk-loads the store (history included), then times the owner's sales
/// and times reports over ranges of 1, 7, 31 and 366 days, one request at
/// a time.
pub async fn reports(
    api: &Api, server: &mut Server, size: BulkSize, ceiling: &Ceiling,
) -> anyhow::Result<Vec<Outcome>> {
    let BulkSize { orders, samples } = size;
    let loaded = bulk_loaded(api, server, orders, "reports").await?;
    let api = &loaded.api;
    let owner = api.login("owner@demo.test").await?;
    let today = time::OffsetDateTime::now_utc().date();
    let mut out = Vec::new();
    for report in ["sales", "times"] {
        for (days, divisor) in REPORT_RANGES {
            let path = format!(
                "/api/v1/stores/{STORE}/reports/{report}?{}",
                report_range(today, days)
            );
            let samples = (samples / divisor).max(5);
            let name = format!("reports: {report}, {days} days");
            let params = json!({
                "path": path, "samples": samples, "orders_stored": orders, "concurrency": 1,
                "days": days,
            });
            let warm_up = 3;
            let gets = (warm_up, samples);
            // A range the server refuses (e.g. past its statement timeout)
            // is reported as such; the other ranges still run.
            let mut o = timed_gets(api, &name, &owner, &path, gets, params.clone(), ceiling)
                .await
                .unwrap_or_else(|e| {
                    let mut failed = Outcome::new(&name, params);
                    failed.notes.push(format!("FAILED: {e:#}"));
                    failed
                });
            load_metrics(&mut o, &loaded);
            o.metric(
                "orders_in_range",
                (days * 86_400 / crate::bulk::ORDER_SPACING_S).min(orders as i64),
            );
            out.push(o);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_ranges_end_today_and_include_it() {
        let today = time::macros::date!(2026 - 03 - 31);
        assert_eq!(report_range(today, 1), "from=2026-03-31&to=2026-03-31");
        assert_eq!(report_range(today, 31), "from=2026-03-01&to=2026-03-31");
    }

    #[test]
    fn fixed_rate_schedule() {
        assert_eq!(scheduled_offset(0, 100.0), Duration::ZERO);
        assert_eq!(scheduled_offset(100, 100.0), Duration::from_secs(1));
        assert_eq!(scheduled_offset(1, 4.0), Duration::from_millis(250));
        assert_eq!(events_for(100.0, 10), 1000);
        assert_eq!(events_for(0.5, 3), 2);
        assert_eq!(events_for(0.0, 10), 1);
        // The last of a series is due just before the duration ends.
        let n = events_for(250.0, 4) as u64;
        assert!(scheduled_offset(n - 1, 250.0) < Duration::from_secs(4));
    }

    #[test]
    fn source_addresses_spread_connections() {
        assert_eq!(source_addresses(1000, 4000), vec![None]);
        let many = source_addresses(10_000, 4000);
        assert_eq!(many.len(), 3);
        assert_eq!(many[0], Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))));
        assert_eq!(many[2], Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4))));
        assert!(many.iter().all(|a| a.is_some_and(|ip| ip.is_loopback())));
    }

    #[test]
    fn reads_cpu_ticks() {
        let stat = "4242 (ordertrack (x)) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0";
        assert_eq!(parse_cpu_ticks(stat), Some(175));
        assert!(cpu_seconds(std::process::id()).is_some());
    }

    #[test]
    fn reads_pgbench_tps() {
        let out = "number of transactions actually processed: 24000\n\
                   latency average = 3.3 ms\n\
                   initial connection time = 12.1 ms\n\
                   tps = 2412.345678 (without initial connection time)\n";
        assert_eq!(parse_pgbench_tps(out), Some(2412.345678));
        let old = "tps = 2400.1 (including connections establishing)\n\
                   tps = 2410.5 (excluding connections establishing)\n";
        assert_eq!(parse_pgbench_tps(old), Some(2410.5));
        assert_eq!(parse_pgbench_tps("nothing"), None);
    }

    #[test]
    fn added_latency_is_cross_minus_single() {
        let single = Summary {
            count: 10,
            p50_us: 1_000,
            p99_us: 4_000,
            max_us: 5_000,
            mean_us: 1_200.0,
        };
        let cross = Summary {
            p50_us: 1_500,
            p99_us: 6_500,
            ..single
        };
        assert_eq!(added_latency(&single, &cross), (0.5, 2.5));
        assert_eq!(added_latency(&cross, &single), (-0.5, -2.5));
    }

    #[test]
    fn workflow_steps_are_the_restaurant_path() {
        assert_eq!(STEPS.len(), 5);
        assert_eq!(STEPS[0], "confirmed");
        assert_eq!(STEPS[STEPS.len() - 1], "completed");
    }
}

// ---------------------------------------------------------------- logins

/// The demo accounts (all share [`crate::api::PASSWORD`]).
const DEMO_ACCOUNTS: [&str; 5] = [
    "alice@demo.test",
    "bob@demo.test",
    "owner@demo.test",
    "cashier@demo.test",
    "kitchen@demo.test",
];

/// Where the owner signs in from during the attack: an address no
/// attacker uses ([`source_addresses`] hands out 127.0.0.1–127.0.0.251).
const OWNER_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 1, 1);

/// Samples the server's VmRSS every 20 ms until `stop` turns true; the
/// highest, KiB.
fn peak_rss(pid: u32, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            if let Ok(kib) = crate::server::rss_kib(pid) {
                peak = peak.max(kib);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak
    })
}

/// Statuses of sign-in answers, by code (`error` for no answer).
#[derive(Default)]
struct Statuses(HashMap<String, usize>);

impl Statuses {
    fn add(&mut self, answer: &Result<reqwest::StatusCode, reqwest::Error>) {
        let key = match answer {
            Ok(status) => status.as_u16().to_string(),
            Err(_) => "error".to_owned(),
        };
        *self.0.entry(key).or_default() += 1;
    }

    fn merge(&mut self, other: Statuses) {
        for (key, n) in other.0 {
            *self.0.entry(key).or_default() += n;
        }
    }

    fn json(&self) -> Value {
        json!(self.0)
    }

    fn note(&self) -> String {
        let mut codes: Vec<_> = self.0.iter().collect();
        codes.sort();
        codes
            .iter()
            .map(|(code, n)| format!("{code}×{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

async fn sign_in(
    client: &Client, url: &Url, email: &str, password: &str,
) -> Result<reqwest::StatusCode, reqwest::Error> {
    let response = client
        .post(url.clone())
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await?;
    let status = response.status();
    // Read the answer to the end so the connection can be reused.
    response.bytes().await?;
    Ok(status)
}

/// `logins`: what password checking costs the server under abuse, with the
/// server's own limits in force.
///
/// 1. Burst: `concurrency` sign-ins at once with the right passwords of the
///    demo accounts (every one wants a password hash, the most memory a
///    sign-in can cost), each source address carrying `per_address`.
/// 2. Attack: `concurrency` clients send wrong passwords for
///    `owner@demo.test` back to back for `duration`, spread the same way,
///    while the owner signs in with the right password from an address of
///    their own every 0.5 s.
///
/// Peak server RSS is sampled every 20 ms through both.
pub async fn logins(
    api: &Api, server: &Server, concurrency: usize, duration: Duration, per_address: usize,
) -> anyhow::Result<Vec<Outcome>> {
    let pid = server
        .pid
        .context("logins measures the server's memory: it needs its pid (--server-pid)")?;
    let url = api.url("/api/v1/auth/login");
    let addresses = source_addresses(concurrency, per_address);
    let clients: Vec<Client> = addresses.iter().map(|ip| crate::api::client(*ip)).collect();
    // Warm-up: one sign-in, so the first hash's allocations are in the baseline.
    api.login("alice@demo.test").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = server.rss_kib()?;

    // 1. The burst.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = peak_rss(pid, stop.clone());
    let started = Instant::now();
    let burst: Vec<_> = (0..concurrency)
        .map(|i| {
            let (client, url) = (clients[i % clients.len()].clone(), url.clone());
            tokio::spawn(async move {
                let t = Instant::now();
                let email = DEMO_ACCOUNTS[i % DEMO_ACCOUNTS.len()];
                let answer = sign_in(&client, &url, email, crate::api::PASSWORD).await;
                (answer, t.elapsed().as_micros() as u64)
            })
        })
        .collect();
    let (mut statuses, mut latencies) = (Statuses::default(), Vec::new());
    for task in burst {
        let (answer, us) = task.await?;
        statuses.add(&answer);
        latencies.push(us);
    }
    let burst_s = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let burst_peak = sampler.await?;
    let mut burst_outcome = Outcome::new(
        "logins burst",
        json!({ "concurrency": concurrency, "source_addresses": addresses.len(),
                "accounts": DEMO_ACCOUNTS.len(), "password": "right" }),
    );
    burst_outcome.throughput = Some(concurrency as f64 / burst_s);
    burst_outcome.unit = "sign-ins/s".into();
    burst_outcome.latency = Some(summarize(&mut latencies));
    burst_outcome.ratio_basis = "n/a".into();
    burst_outcome.metric("server_rss_before_kib", baseline);
    burst_outcome.metric("server_rss_peak_kib", burst_peak);
    burst_outcome.metric("peak_rss_mib", burst_peak as f64 / 1024.0);
    burst_outcome.metric("statuses", statuses.json());
    burst_outcome.notes.push(statuses.note());

    // 2. The attack, and the owner signing in elsewhere meanwhile.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = peak_rss(pid, stop.clone());
    let deadline = Instant::now() + duration;
    let attackers: Vec<_> = (0..concurrency)
        .map(|i| {
            let (client, url) = (clients[i % clients.len()].clone(), url.clone());
            tokio::spawn(async move {
                let mut statuses = Statuses::default();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let guess = format!("wrong guess {i}-{n}");
                    statuses.add(&sign_in(&client, &url, "owner@demo.test", &guess).await);
                }
                statuses
            })
        })
        .collect();
    let owner_client = crate::api::client(Some(IpAddr::V4(OWNER_ADDRESS)));
    let (mut owner, mut owner_latencies) = (Statuses::default(), Vec::new());
    while Instant::now() < deadline {
        let t = Instant::now();
        let answer = sign_in(&owner_client, &url, "owner@demo.test", crate::api::PASSWORD).await;
        owner_latencies.push(t.elapsed().as_micros() as u64);
        owner.add(&answer);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut attack = Statuses::default();
    for task in attackers {
        attack.merge(task.await?);
    }
    stop.store(true, Ordering::Relaxed);
    let attack_peak = sampler.await?;
    let attempts: usize = attack.0.values().sum();
    let owner_attempts: usize = owner.0.values().sum();
    let owner_ok = owner.0.get("200").copied().unwrap_or(0);

    let mut attack_outcome = Outcome::new(
        "logins attack",
        json!({ "attackers": concurrency, "source_addresses": addresses.len(),
                "seconds": duration.as_secs_f64(), "target": "owner@demo.test" }),
    );
    attack_outcome.throughput = Some(attempts as f64 / duration.as_secs_f64());
    attack_outcome.unit = "attempts/s".into();
    attack_outcome.ratio_basis = "n/a".into();
    attack_outcome.metric("server_rss_peak_kib", attack_peak);
    attack_outcome.metric("peak_rss_mib", attack_peak as f64 / 1024.0);
    attack_outcome.metric("statuses", attack.json());
    attack_outcome.notes.push(attack.note());

    let mut owner_outcome = Outcome::new(
        "logins owner, elsewhere",
        json!({ "address": OWNER_ADDRESS.to_string(), "every_ms": 500 }),
    );
    owner_outcome.throughput = Some(owner_ok as f64);
    owner_outcome.unit = "signed in".into();
    owner_outcome.latency = Some(summarize(&mut owner_latencies));
    owner_outcome.ratio_basis = "n/a".into();
    owner_outcome.metric("owner_signed_in", owner_ok);
    owner_outcome.metric("owner_attempts", owner_attempts);
    owner_outcome.metric("statuses", owner.json());
    owner_outcome
        .notes
        .push(format!("{owner_ok} of {owner_attempts}: {}", owner.note()));
    Ok(vec![burst_outcome, attack_outcome, owner_outcome])
}
