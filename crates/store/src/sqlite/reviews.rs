//! Reviews on SQLite: adding one (once per order), reading one, a store's
//! page of them with its totals. Columns are read by name.

use ordertrack_domain::{OrderId, StoreId};
use rusqlite::{Connection, params};

use super::rows::{all, first};
use super::users::unique;
use crate::codec::{self, micros, review_select};
use crate::{NewReview, Review, ReviewPage, StoreError};

/// Writes `new`; a second review of the order is a conflict.
pub fn add_review(conn: &Connection, new: &NewReview) -> Result<Review, StoreError> {
    conn.prepare_cached(
        "INSERT INTO reviews (order_id, store_id, customer_id, rating, comment, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        new.order_id.get(),
        new.store_id.get(),
        new.customer_id.get(),
        new.rating,
        new.comment,
        micros(new.at)
    ])
    .map_err(unique("a review of this order"))?;
    review(conn, new.order_id)?.ok_or(StoreError::NotFound("review"))
}

pub fn review(conn: &Connection, order: OrderId) -> Result<Option<Review>, StoreError> {
    first(
        conn,
        concat!(review_select!(), " WHERE r.order_id = ?1"),
        [order.get()],
        |row| codec::review(row),
    )
}

pub fn store_reviews(
    conn: &Connection,
    store: StoreId,
    before: Option<OrderId>,
    limit: u32,
) -> Result<ReviewPage, StoreError> {
    // One extra row tells whether another page follows.
    let mut reviews = all(
        conn,
        concat!(
            review_select!(),
            " WHERE r.store_id = ?1 AND (?2 IS NULL OR r.order_id < ?2)
              ORDER BY r.order_id DESC LIMIT ?3"
        ),
        params![store.get(), before.map(OrderId::get), i64::from(limit) + 1],
        |row| codec::review(row),
    )?;
    let (count, rating_sum) = first(
        conn,
        "SELECT COUNT(*) AS n, COALESCE(SUM(rating), 0) AS total FROM reviews WHERE store_id = ?1",
        [store.get()],
        |row| Ok((row.get("n")?, row.get("total")?)),
    )?
    .unwrap_or((0, 0));
    let next_before = codec::next_review_page(&mut reviews, limit);
    Ok(ReviewPage {
        reviews,
        next_before,
        count,
        rating_sum,
    })
}
