//! The network between a browser and a test server, with a switch: the
//! browser talks to the link's own port, which forwards each connection to
//! the server — until the link is cut, which closes every open connection
//! (live streams included) and refuses new ones, as a dropped Wi-Fi does for
//! the pages and the service worker alike. The server keeps running: the
//! test can change things through the API meanwhile.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// A switchable link to a server.
pub struct NetLink {
    /// `http://127.0.0.1:PORT`: the origin the browser uses.
    pub base: String,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<AbortHandle>>>,
    accepting: JoinHandle<()>,
}

impl NetLink {
    /// A link to the server at `server`, connected.
    pub async fn to(server: SocketAddr) -> NetLink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the link's port");
        let base = format!(
            "http://{}",
            listener.local_addr().expect("the link's address")
        );
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accepting = tokio::spawn({
            let (cut, open) = (cut.clone(), open.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if cut.load(Ordering::SeqCst) {
                        // No network: the connection goes nowhere.
                        drop(inbound);
                        continue;
                    }
                    let forward = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(server).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    let mut open = open.lock().expect("the link's connections");
                    open.retain(|handle| !handle.is_finished());
                    open.push(forward.abort_handle());
                }
            }
        });
        NetLink {
            base,
            cut,
            open,
            accepting,
        }
    }

    /// The URL of a page through the link.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Cuts the network: open connections close, new ones are refused.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for handle in self.open.lock().expect("the link's connections").drain(..) {
            handle.abort();
        }
    }

    /// Brings the network back.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for NetLink {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}
