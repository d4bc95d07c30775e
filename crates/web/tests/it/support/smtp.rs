//! An SMTP sink for the tests: `aiosmtpd` (smtp_sink.py), a real SMTP
//! server independent of the order desk's client, on a loopback port, run
//! as a child process that the test stops and starts again on the same
//! port (the mail server down for a while). Each message it takes is a
//! JSON file, parsed by Python's `email` package.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A message the sink took.
#[derive(Debug, Clone)]
pub struct Mail(pub Value);

impl Mail {
    fn field(&self, name: &str) -> &str {
        self.0[name].as_str().unwrap_or_default()
    }
    pub fn subject(&self) -> &str {
        self.field("subject")
    }
    pub fn to(&self) -> &str {
        self.field("to")
    }
    pub fn text(&self) -> &str {
        self.field("text")
    }
    pub fn html(&self) -> &str {
        self.field("html")
    }
    pub fn list_unsubscribe(&self) -> &str {
        self.field("list_unsubscribe")
    }
    pub fn list_unsubscribe_post(&self) -> &str {
        self.field("list_unsubscribe_post")
    }
    /// The envelope's recipients.
    pub fn rcpt_tos(&self) -> Vec<String> {
        self.0["rcpt_tos"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
    /// The unsubscribe address inside `List-Unsubscribe`'s angle brackets.
    pub fn unsubscribe_url(&self) -> String {
        self.list_unsubscribe()
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned()
    }
}

/// The sink: its port, where it writes, and the running server (if up).
pub struct SmtpSink {
    pub port: u16,
    dir: TempDir,
    child: Option<Child>,
}

/// Whether the sink runs here (Python 3 with `aiosmtpd`); when it does
/// not, the caller skips (and under `CI=true` fails).
pub fn smtp_sink_available() -> bool {
    super::python_has(
        "aiosmtpd",
        "python3 with the aiosmtpd package (pip install aiosmtpd)",
    )
}

impl SmtpSink {
    /// Starts a sink on a free loopback port.
    pub async fn start() -> SmtpSink {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut sink = SmtpSink {
            port,
            dir: tempfile::tempdir().expect("a directory for mail"),
            child: None,
        };
        sink.up().await;
        sink
    }

    /// `smtp://127.0.0.1:PORT` (plain SMTP, as a local relay speaks it).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port; returns once it listens.
    pub async fn up(&mut self) {
        assert!(self.child.is_none(), "the sink is already up");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut child = Command::new("python3")
                .arg(super::python_script("smtp_sink.py"))
                .arg("127.0.0.1")
                .arg(self.port.to_string())
                .arg(self.dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .expect("run the SMTP sink");
            let stdout = child.stdout.take().expect("the sink's stdout");
            let mut lines = BufReader::new(stdout).lines();
            if let Ok(Ok(Some(line))) =
                tokio::time::timeout(Duration::from_secs(15), lines.next_line()).await
                && line == "ready"
            {
                self.child = Some(child);
                return;
            }
            // The port may still be held by the last run: try again.
            let _ = child.kill().await;
            assert!(Instant::now() < deadline, "the SMTP sink did not start");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the server: connections to its port are refused until
    /// [`up`](Self::up).
    pub async fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("stop the SMTP sink");
        }
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("the sink's directory")
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        files.sort();
        files
    }

    /// Every message taken so far, in arrival order.
    pub fn mails(&self) -> Vec<Mail> {
        self.files()
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).expect("a message file");
                Mail(serde_json::from_str(&text).expect("a message as JSON"))
            })
            .collect()
    }

    /// Waits until at least `count` messages arrived (at most 20 s); all.
    pub async fn wait_for(&self, count: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mails = self.mails();
            if mails.len() >= count {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "{} mails arrived, waiting for {count}: {mails:#?}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
