//! What the load tests need: changes and reads straight through the App
//! (faster than HTTP, for floods and for checking against the store), a
//! replayable PRNG, and this process's memory use and open-file limit (the
//! server runs in the test process).

use ordertrack_app::Caller;
use ordertrack_app::orders::OrderRequest;
use ordertrack_domain::{
    Fulfilment, FulfilmentKind, ItemId, ItemStatus, OrderId, ProductId, RequestedLine,
};
use ordertrack_store::{EventFilter, StoredEvent};

use super::TestApp;

impl TestApp {
    /// Places a pickup order through the App (fast, for bulk changes).
    pub async fn place_direct(
        &self, caller: &Caller, store: &str, products: &[i64],
    ) -> (i64, Vec<i64>) {
        let placed = self
            .app
            .place_order(
                caller,
                OrderRequest {
                    store: store.to_owned(),
                    items: products
                        .iter()
                        .map(|p| RequestedLine {
                            product: ProductId::new(*p),
                            quantity: 1,
                            notes: None,
                        })
                        .collect(),
                    fulfilment: Fulfilment {
                        kind: FulfilmentKind::Pickup,
                        address: None,
                    },
                    notes: None,
                    payment_method: None,
                },
                None,
            )
            .await
            .expect("place an order");
        let order = placed.view.order;
        (
            order.id.get(),
            order.items.iter().map(|i| i.id.get()).collect(),
        )
    }

    /// Sets an item's status through the App.
    pub async fn set_item_direct(
        &self, caller: &Caller, order: i64, item: i64, status: ItemStatus,
    ) {
        self.app
            .set_item_status(caller, OrderId::new(order), ItemId::new(item), status, None)
            .await
            .expect("set the item status");
    }

    /// The newest event position.
    pub async fn position(&self) -> i64 {
        self.store.last_event_position().await.expect("position")
    }

    /// The truth: every event of `filter` after `after`, in commit order.
    pub async fn events_after(&self, filter: EventFilter, after: i64) -> Vec<StoredEvent> {
        self.store
            .events_after(filter, after, 1_000_000)
            .await
            .expect("events")
    }
}

/// The resident set size of this process (the server runs in it), in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// The soft limit on open files of this process.
pub fn open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(u64::MAX)
}

/// A tiny deterministic PRNG (xorshift64*), so runs can be replayed from the seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// A seed from the clock, printed so a failing run can be repeated.
    pub fn from_clock(label: &str) -> Rng {
        let seed = std::env::var("STREAM_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        println!("{label}: STREAM_TEST_SEED={seed}");
        Rng::new(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `range`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }
}
