//! Reads gathered: the read every change of an order starts with (the
//! order, its store, the cache marks) and the one every new order starts
//! with (the store's menu) are the most frequent statements there are, and
//! on PostgreSQL each round trip costs the database several times what the
//! statement itself does. So concurrent reads of one kind go out together:
//! a read that finds a connection free runs at once, alone; the reads that
//! arrive while every connection is busy wait for the next one to free up
//! and then go as one statement (`WHERE … = ANY($1)`), each key once.
//!
//! Each waiting read is answered from a statement that began after it
//! arrived, so it is as fresh as a read of its own — its cache marks
//! included, which is what a kept session is checked against.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;

use sqlx::postgres::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};

use super::rows;
use crate::StoreError;

/// Most reads answered by one statement.
const MOST_TOGETHER: usize = 256;

/// Reads the rows of several keys in one statement; a key with no row is
/// left out.
pub type ReadMany<K, V> =
    for<'c> fn(
        &'c mut PgConnection,
        Vec<K>,
    ) -> Pin<Box<dyn Future<Output = rows::Result<HashMap<K, V>>> + Send + 'c>>;

/// One waiting read.
struct Waiting<K, V> {
    key: K,
    answer: oneshot::Sender<Result<Option<V>, StoreError>>,
}

/// Where reads of one kind queue; the task that gathers them ends with the
/// last handle.
pub struct Gathered<K, V> {
    queue: mpsc::UnboundedSender<Waiting<K, V>>,
}

impl<K, V> Gathered<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Starts the task that gathers the reads and runs them with
    /// `read_many` on `pool`'s connections.
    pub fn start(pool: PgPool, read_many: ReadMany<K, V>) -> Self {
        let (queue, waiting) = mpsc::unbounded_channel();
        tokio::spawn(gather(pool, waiting, read_many));
        Gathered { queue }
    }

    /// The row of `key`; `None` if there is none.
    pub async fn read(&self, key: K) -> Result<Option<V>, StoreError> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Waiting { key, answer })
            .map_err(|_| StoreError::Unavailable)?;
        answered.await.map_err(|_| StoreError::Unavailable)?
    }
}

/// Takes a connection, then every read waiting by then, and runs them on
/// it as one statement — in a task of their own, so the next reads gather
/// while these run.
async fn gather<K, V>(
    pool: PgPool, mut waiting: mpsc::UnboundedReceiver<Waiting<K, V>>, read_many: ReadMany<K, V>,
) where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    while let Some(first) = waiting.recv().await {
        let mut conn = match pool.acquire().await {
            Ok(conn) => conn,
            Err(error) => {
                let _ = first.answer.send(Err(error.into()));
                continue;
            }
        };
        let mut together = vec![first];
        while together.len() < MOST_TOGETHER {
            match waiting.try_recv() {
                Ok(read) => together.push(read),
                Err(_) => break,
            }
        }
        tokio::spawn(async move {
            let keys: Vec<K> = {
                let mut seen = HashSet::with_capacity(together.len());
                together
                    .iter()
                    .filter(|read| seen.insert(&read.key))
                    .map(|read| read.key.clone())
                    .collect()
            };
            match read_many(&mut conn, keys).await {
                Ok(found) => {
                    for read in together {
                        let _ = read.answer.send(Ok(found.get(&read.key).cloned()));
                    }
                }
                Err(failure) => {
                    let error = StoreError::from(failure);
                    for read in together {
                        let _ = read.answer.send(Err(error.clone()));
                    }
                }
            }
        });
    }
}
