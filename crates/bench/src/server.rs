//! The server under test: loopback check, starting/stopping `ordertrack demo`,
//! its memory, and the open-file limit.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::Url;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::{bare_broadcast, statements};

/// Parses `url` and refuses anything that is not loopback (127.0.0.0/8, ::1,
/// `localhost`): the benchmark must never load someone else's server.
pub fn check_loopback(url: &str) -> anyhow::Result<Url> {
    let parsed = Url::parse(url).with_context(|| format!("invalid URL {url}"))?;
    if !is_loopback_url(&parsed) {
        bail!(
            "refusing to run against {url}: only loopback (127.0.0.0/8, ::1, localhost) is allowed"
        );
    }
    Ok(parsed)
}

pub fn is_loopback_url(url: &Url) -> bool {
    url.host_str().is_some_and(host_is_loopback)
}

/// `localhost` (or a `*.localhost` name), 127.0.0.0/8 or ::1.
pub fn host_is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let lower = host.to_ascii_lowercase();
    lower == "localhost"
        || lower.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks a `postgres://` URL's host the same way (pgbench, `--database-url`).
pub fn check_loopback_pg(url: &str) -> anyhow::Result<()> {
    let parsed = Url::parse(url).with_context(|| format!("invalid URL {url}"))?;
    // No host: a Unix socket, local by definition.
    let host_ok = parsed
        .host_str()
        .is_none_or(|host| host.is_empty() || host_is_loopback(host));
    // A `host=` parameter overrides the URL's host (libpq, sqlx).
    let param_ok = parsed
        .query_pairs()
        .filter(|(k, _)| k == "host" || k == "hostaddr")
        .all(|(_, v)| v.starts_with('/') || v.split(',').all(host_is_loopback));
    if !host_ok || !param_ok {
        bail!("refusing to use PostgreSQL at {url}: only loopback is allowed");
    }
    Ok(())
}

/// How the bench starts a server: the command (`demo` seeds, `serve` does
/// not) and the flags that pick its backend and event bus.
#[derive(Debug, Clone)]
pub struct Launch {
    pub command: &'static str,
    /// `--database-url` (PostgreSQL); none: SQLite in the data dir.
    pub database_url: Option<String>,
    /// `--nats-url` and `--nats-subject`.
    pub nats: Option<(String, String)>,
    /// `--secret` (instances sharing a database share it).
    pub secret: Option<String>,
    /// Log every SQL statement and answered request
    /// ([`statements::LOG_FILTER`]) and hand the log to
    /// [`Server::log_lines`]; otherwise only warnings, discarded.
    pub log_statements: bool,
    /// Keep the server's limits on connections, live streams and writes
    /// per client. Off for the throughput and fan-out scenarios, which
    /// are one client on one address on purpose (thousands of streams of
    /// one cashier, tens of thousands of writes a second with one token);
    /// the sign-in limits stay on either way.
    pub abuse_limits: bool,
    /// With the bare broadcast server's command: the length of each
    /// event's `data:` line.
    pub bare_data_bytes: usize,
}

impl Default for Launch {
    fn default() -> Self {
        Launch {
            command: "demo",
            database_url: None,
            nats: None,
            secret: None,
            log_statements: false,
            abuse_limits: false,
            bare_data_bytes: 0,
        }
    }
}

impl Launch {
    /// The bare broadcast server (this bench binary), events of
    /// `data_bytes` each.
    pub fn bare_broadcast(data_bytes: usize) -> Self {
        Launch {
            command: bare_broadcast::COMMAND,
            bare_data_bytes: data_bytes,
            ..Launch::default()
        }
    }

    /// The arguments after the binary (the data dir comes from the server).
    pub fn args(&self, data_dir: &Path) -> Vec<std::ffi::OsString> {
        if self.command == bare_broadcast::COMMAND {
            return vec![
                self.command.into(),
                "--bind".into(),
                "127.0.0.1:0".into(),
                "--data-bytes".into(),
                self.bare_data_bytes.to_string().into(),
            ];
        }
        let mut args: Vec<std::ffi::OsString> = vec![
            self.command.into(),
            "--bind".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            data_dir.into(),
        ];
        if let Some(url) = &self.database_url {
            args.extend(["--database-url".into(), url.into()]);
        }
        if let Some((url, subject)) = &self.nats {
            args.extend([
                "--nats-url".into(),
                url.into(),
                "--nats-subject".into(),
                subject.into(),
            ]);
        }
        if let Some(secret) = &self.secret {
            args.extend(["--secret".into(), secret.into()]);
        }
        if !self.abuse_limits {
            for flag in [
                "--connections-per-ip",
                "--streams-per-user",
                "--streams-per-ip",
                "--writes-per-token",
            ] {
                args.extend([flag.into(), "0".into()]);
            }
        }
        args
    }
}

/// A server this process started (or one given by `--url`).
pub struct Server {
    pub base: Url,
    pub pid: Option<u32>,
    pub data_dir: PathBuf,
    child: Option<Child>,
    bin: Option<PathBuf>,
    _temp: Option<tempfile::TempDir>,
    launch: Launch,
    /// Spawn → first `/healthz` 200, per start.
    pub start_times_ms: Vec<f64>,
    /// With [`Launch::log_statements`]: the server's output after it started
    /// listening, line by line (replaced at each start).
    pub log_lines: Option<mpsc::UnboundedReceiver<String>>,
}

impl Server {
    /// An already running server.
    pub fn external(url: &str, pid: Option<u32>, data_dir: PathBuf) -> anyhow::Result<Self> {
        Ok(Server {
            base: check_loopback(url)?,
            pid,
            data_dir,
            child: None,
            bin: None,
            _temp: None,
            launch: Launch::default(),
            start_times_ms: Vec::new(),
            log_lines: None,
        })
    }

    /// Starts `bin demo` (or `launch.command`) on a free loopback port with a
    /// fresh data dir under `root`.
    pub async fn start_fresh(bin: &Path, root: &Path, launch: Launch) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root)?;
        let temp = tempfile::Builder::new()
            .prefix("ordertrack-bench-")
            .tempdir_in(root)?;
        let mut server = Server {
            base: Url::parse("http://127.0.0.1:1/")?,
            pid: None,
            data_dir: temp.path().to_path_buf(),
            child: None,
            bin: Some(bin.to_path_buf()),
            _temp: Some(temp),
            launch,
            start_times_ms: Vec::new(),
            log_lines: None,
        };
        server.start().await?;
        Ok(server)
    }

    pub fn managed(&self) -> bool {
        self.bin.is_some()
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("ordertrack.db")
    }

    /// The PostgreSQL database it runs on, if any.
    pub fn database_url(&self) -> Option<&str> {
        self.launch.database_url.as_deref()
    }

    /// (Re)starts the managed server on the same data dir.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let Some(bin) = self.bin.clone() else {
            bail!("this server was not started by the benchmark");
        };
        let started = Instant::now();
        let mut child = Command::new(&bin)
            .args(self.launch.args(&self.data_dir))
            .env(
                "ORDERTRACK_LOG",
                if self.launch.log_statements {
                    statements::LOG_FILTER
                } else {
                    "warn"
                },
            )
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let address = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    return Ok::<_, anyhow::Error>(rest.trim().to_owned());
                }
            }
            bail!("the server exited before listening")
        })
        .await
        .context("the server did not start within 60 s")??;
        // Keep draining its output so it never blocks on a full pipe.
        let (forward, log_lines) = mpsc::unbounded_channel();
        let forward = self.launch.log_statements.then_some(forward);
        self.log_lines = forward.is_some().then_some(log_lines);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(forward) = &forward {
                    let _ = forward.send(line);
                }
            }
        });
        self.base = check_loopback(&address)?;
        self.pid = child.id();
        self.child = Some(child);
        let client = reqwest::Client::new();
        let health = self.base.join("/healthz")?;
        loop {
            if let Ok(response) = client.get(health.clone()).send().await
                && response.status().is_success()
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("/healthz did not answer within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.start_times_ms
            .push(started.elapsed().as_secs_f64() * 1000.0);
        Ok(())
    }

    /// Stops the managed server gracefully (SIGTERM; SIGKILL after 15 s).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            // SAFETY: signalling our own child by its id.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        match tokio::time::timeout(Duration::from_secs(15), child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                child.kill().await?;
            }
        }
        self.pid = None;
        Ok(())
    }

    /// The server's resident memory, KiB (`VmRSS`).
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let pid = self
            .pid
            .context("the server's pid is unknown: pass --server-pid")?;
        rss_kib(pid)
    }
}

/// `VmRSS` of a process, KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vmrss(&status).context("no VmRSS line")
}

pub fn parse_vmrss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// Raises RLIMIT_NOFILE (soft, and hard when permitted) towards `want`;
/// returns the soft limit in force. Children (the server) inherit it.
pub fn raise_nofile(want: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_max < want {
            let raised = libc::rlimit {
                rlim_cur: want,
                rlim_max: want,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return want;
            }
        }
        let soft = libc::rlimit {
            rlim_cur: want.min(limit.rlim_max),
            rlim_max: limit.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &soft) == 0 {
            return soft.rlim_cur;
        }
        limit.rlim_cur
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_loopback() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.3.2.1/",
            "http://localhost:1234/x",
            "http://LOCALHOST",
            "http://[::1]:8080/",
        ] {
            assert!(check_loopback(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for url in [
            "http://10.0.0.1:8080",
            "http://example.com",
            "http://localhost.example.com",
            "http://[2001:db8::1]/",
            "http://0.0.0.0:8080",
            "not a url",
        ] {
            assert!(check_loopback(url).is_err(), "{url}");
        }
    }

    #[test]
    fn pg_urls() {
        assert!(check_loopback_pg("postgres://u:p@127.0.0.1:5432/db").is_ok());
        assert!(check_loopback_pg("postgres://u@localhost/db").is_ok());
        assert!(check_loopback_pg("postgres://u@[::1]/db").is_ok());
        assert!(check_loopback_pg("postgres://u@db.example.com/db").is_err());
        assert!(check_loopback_pg("postgres://u@localhost/db?host=/var/run/postgresql").is_ok());
        assert!(check_loopback_pg("postgres://u@127.0.0.1/db?host=db.example.com").is_err());
    }

    #[test]
    fn launch_arguments() {
        let dir = Path::new("/tmp/d");
        let strings = |launch: &Launch| -> Vec<String> {
            launch
                .args(dir)
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect()
        };
        let plain = Launch {
            abuse_limits: true,
            ..Launch::default()
        };
        assert_eq!(
            strings(&plain),
            ["demo", "--bind", "127.0.0.1:0", "--data-dir", "/tmp/d"]
        );
        // By default the per-client limits are lifted: the load is one
        // client on purpose.
        let lifted = strings(&Launch::default());
        assert_eq!(lifted.len(), 5 + 8, "{lifted:?}");
        // The bare broadcast server takes only its address and event size.
        assert_eq!(
            strings(&Launch::bare_broadcast(640)),
            [
                "bare-broadcast",
                "--bind",
                "127.0.0.1:0",
                "--data-bytes",
                "640"
            ]
        );
        assert!(lifted.windows(2).any(|w| w == ["--streams-per-user", "0"]));
        let full = Launch {
            command: "serve",
            database_url: Some("postgres://u@127.0.0.1/db".into()),
            nats: Some(("nats://127.0.0.1:4222".into(), "s.x".into())),
            secret: Some("k".repeat(40)),
            log_statements: true,
            abuse_limits: false,
            bare_data_bytes: 0,
        };
        let args: Vec<String> = full
            .args(dir)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(args[0], "serve");
        let after = |flag: &str| args[args.iter().position(|a| a == flag).unwrap() + 1].clone();
        assert_eq!(after("--database-url"), "postgres://u@127.0.0.1/db");
        assert_eq!(after("--nats-url"), "nats://127.0.0.1:4222");
        assert_eq!(after("--nats-subject"), "s.x");
        assert_eq!(after("--secret").len(), 40);
    }

    #[test]
    fn reads_vmrss() {
        let status = "Name:\tordertrack\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vmrss(status), Some(12345));
        assert_eq!(parse_vmrss("Name: x\n"), None);
        // Our own process has one.
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }
}
