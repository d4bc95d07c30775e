//! Order reads by id, gathered: the read every change of an order starts
//! with (the order, its store, the cache marks) is the most frequent
//! statement there is, and on PostgreSQL each round trip costs the database
//! several times what the statement itself does. So concurrent reads go
//! out together: a read that finds a connection free runs at once, alone;
//! the reads that arrive while every connection is busy wait for the next
//! one to free up and then go as one statement (`WHERE o.id = ANY($1)`).
//!
//! Each waiting read is answered from a statement that began after it
//! arrived, so it is as fresh as a read of its own — its cache marks
//! included, which is what a kept session is checked against.

use std::collections::HashMap;

use ordertrack_domain::OrderId;
use sqlx::postgres::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::orders;
use crate::{OrderInStore, StoreError};

/// Most orders read in one statement.
const MOST_TOGETHER: usize = 256;

/// One waiting read.
struct OrderRead {
    id: OrderId,
    answer: oneshot::Sender<Result<Option<OrderInStore>, StoreError>>,
}

/// Where reads queue; the task that gathers them ends with the last handle.
#[derive(Clone)]
pub struct OrderReads {
    queue: mpsc::UnboundedSender<OrderRead>,
}

impl OrderReads {
    /// Starts the task that gathers the reads and runs them on `pool`.
    pub fn start(pool: PgPool) -> Self {
        let (queue, reads) = mpsc::unbounded_channel();
        tokio::spawn(gather(pool, reads));
        OrderReads { queue }
    }

    /// Order `id` with its store and the cache marks; `None` if there is
    /// no such order.
    pub async fn read(&self, id: OrderId) -> Result<Option<OrderInStore>, StoreError> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(OrderRead { id, answer })
            .map_err(|_| StoreError::Unavailable)?;
        answered.await.map_err(|_| StoreError::Unavailable)?
    }
}

/// Takes a connection, then every read waiting by then, and runs them on
/// it as one statement — in a task of their own, so the next reads gather
/// while these run.
async fn gather(pool: PgPool, mut reads: mpsc::UnboundedReceiver<OrderRead>) {
    while let Some(first) = reads.recv().await {
        let mut conn = match pool.acquire().await {
            Ok(conn) => conn,
            Err(error) => {
                let _ = first.answer.send(Err(error.into()));
                continue;
            }
        };
        let mut together = vec![first];
        while together.len() < MOST_TOGETHER {
            match reads.try_recv() {
                Ok(read) => together.push(read),
                Err(_) => break,
            }
        }
        tokio::spawn(async move {
            let mut ids: Vec<i64> = together.iter().map(|read| read.id.get()).collect();
            ids.sort_unstable();
            ids.dedup();
            match orders::orders_in_store(&mut conn, &ids).await {
                Ok(mut found) => answer_each(together, &mut found),
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

/// Answers each read from what the statement found (an order read twice
/// in one statement goes to both).
fn answer_each(together: Vec<OrderRead>, found: &mut HashMap<OrderId, OrderInStore>) {
    let mut asked: HashMap<OrderId, usize> = HashMap::new();
    for read in &together {
        *asked.entry(read.id).or_default() += 1;
    }
    for read in together {
        let last = asked.get_mut(&read.id).map(|left| {
            *left -= 1;
            *left == 0
        });
        let order = match last {
            Some(true) => found.remove(&read.id),
            _ => found.get(&read.id).cloned(),
        };
        let _ = read.answer.send(Ok(order));
    }
}
