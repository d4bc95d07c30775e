//! A network printer for the tests: a real TCP listener on the loopback
//! interface that takes each connection's bytes as one document, and a
//! reader of the ESC/POS those bytes hold — reset first, cut last, text
//! lines between — so a test sees what would come out on paper.

use std::net::SocketAddr;
use std::time::Duration;

use ordertrack_app::escpos::{ESC, GS, LF, decode_byte};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What one document printed: its text lines, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printed {
    pub lines: Vec<String>,
}

impl Printed {
    /// Whether a line is exactly `text`.
    pub fn has_line(&self, text: &str) -> bool {
        self.lines.iter().any(|line| line.trim_end() == text)
    }

    /// Whether any line contains `text`.
    pub fn mentions(&self, text: &str) -> bool {
        self.lines.iter().any(|line| line.contains(text))
    }

    /// The item lines (`N x Name`).
    pub fn items(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter(|line| {
                line.split_once(" x ")
                    .is_some_and(|(n, _)| n.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|line| line.trim_end().to_owned())
            .collect()
    }
}

/// Reads an ESC/POS document: it must start with `ESC @` (reset) and end
/// with `GS V` (cut); every command between must be one the order desk
/// writes. Panics on anything else.
pub fn parse_escpos(bytes: &[u8]) -> Printed {
    assert!(
        bytes.starts_with(&[ESC, b'@']),
        "a document starts with ESC @: {bytes:?}"
    );
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut cut = false;
    let mut at = 2;
    while at < bytes.len() {
        assert!(!cut, "nothing follows the cut: {:?}", &bytes[at..]);
        match bytes[at] {
            ESC => {
                let command = bytes.get(at + 1).copied();
                assert!(
                    matches!(command, Some(b't' | b'E' | b'd')),
                    "unknown ESC command {command:?}"
                );
                at += 3;
            }
            GS => match bytes.get(at + 1).copied() {
                Some(b'!') => at += 3,
                Some(b'V') => {
                    let mode = bytes.get(at + 2).copied();
                    at += if matches!(mode, Some(65 | 66)) { 4 } else { 3 };
                    cut = true;
                }
                other => panic!("unknown GS command {other:?}"),
            },
            LF => {
                lines.push(std::mem::take(&mut line));
                at += 1;
            }
            byte => {
                assert!(byte >= 0x20, "a control byte {byte:#x} in text");
                line.push(decode_byte(byte));
                at += 1;
            }
        }
    }
    assert!(cut, "a document ends with a cut (GS V)");
    assert!(line.is_empty(), "text after the last line feed: {line:?}");
    Printed { lines }
}

/// A printer listening on the loopback interface.
pub struct TestPrinter {
    pub addr: SocketAddr,
    documents: mpsc::UnboundedReceiver<Vec<u8>>,
    task: JoinHandle<()>,
}

impl Drop for TestPrinter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestPrinter {
    /// A printer on a free port.
    pub async fn start() -> TestPrinter {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a printer port");
        TestPrinter::serve(listener)
    }

    /// A printer on `addr` (a port that was free a moment ago).
    pub async fn on(addr: SocketAddr) -> TestPrinter {
        let mut tries = 0;
        loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => return TestPrinter::serve(listener),
                Err(error) if tries < 50 => {
                    tries += 1;
                    eprintln!("binding the printer on {addr} failed ({error}); retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("could not bind the printer on {addr}: {error}"),
            }
        }
    }

    fn serve(listener: TcpListener) -> TestPrinter {
        let addr = listener.local_addr().expect("the printer's address");
        let (sender, documents) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let sender = sender.clone();
                tokio::spawn(async move {
                    let mut bytes = Vec::new();
                    if socket.read_to_end(&mut bytes).await.is_ok() && !bytes.is_empty() {
                        let _ = sender.send(bytes);
                    }
                });
            }
        });
        TestPrinter {
            addr,
            documents,
            task,
        }
    }

    /// A free loopback address nobody listens on: connections are refused
    /// until a [`TestPrinter::on`] it starts.
    pub async fn refusing() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
        listener.local_addr().expect("its address")
    }

    /// The next document printed (waits up to 20 s).
    pub async fn next(&mut self) -> Printed {
        let bytes = tokio::time::timeout(Duration::from_secs(20), self.documents.recv())
            .await
            .expect("a document within 20 s")
            .expect("the printer is running");
        parse_escpos(&bytes)
    }

    /// Whether a document arrived that was not read yet.
    pub fn has_more(&mut self) -> bool {
        !self.documents.is_empty()
    }
}
