//! Reviews on PostgreSQL: adding one (once per order), reading one, a
//! store's page of them with its totals. Columns are read by name.

use ordertrack_domain::{OrderId, StoreId};
use sqlx::Row;
use sqlx::postgres::PgConnection;

use super::rows::{Result, unique};
use crate::codec::{self, micros, review_select};
use crate::{NewReview, Review, ReviewPage, StoreError};

/// Writes `new`; a second review of the order is a conflict.
pub async fn add_review(conn: &mut PgConnection, new: &NewReview) -> Result<Review> {
    sqlx::query(
        "INSERT INTO reviews (order_id, store_id, customer_id, rating, comment, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(new.order_id.get())
    .bind(new.store_id.get())
    .bind(new.customer_id.get())
    .bind(i64::from(new.rating))
    .bind(&new.comment)
    .bind(micros(new.at))
    .execute(&mut *conn)
    .await
    .map_err(unique("a review of this order"))?;
    review(conn, new.order_id)
        .await?
        .ok_or_else(|| StoreError::NotFound("review").into())
}

pub async fn review(conn: &mut PgConnection, order: OrderId) -> Result<Option<Review>> {
    let row = sqlx::query(concat!(review_select!(), " WHERE r.order_id = $1"))
        .bind(order.get())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(codec::review).transpose()?)
}

pub async fn store_reviews(
    conn: &mut PgConnection,
    store: StoreId,
    before: Option<OrderId>,
    limit: u32,
) -> Result<ReviewPage> {
    // One extra row tells whether another page follows.
    let mut reviews = sqlx::query(concat!(
        review_select!(),
        " WHERE r.store_id = $1 AND ($2::BIGINT IS NULL OR r.order_id < $2)
          ORDER BY r.order_id DESC LIMIT $3"
    ))
    .bind(store.get())
    .bind(before.map(OrderId::get))
    .bind(i64::from(limit) + 1)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(codec::review)
    .collect::<std::result::Result<Vec<_>, _>>()?;
    let totals = sqlx::query(
        "SELECT COUNT(*) AS n, COALESCE(SUM(rating), 0)::BIGINT AS total
         FROM reviews WHERE store_id = $1",
    )
    .bind(store.get())
    .fetch_one(&mut *conn)
    .await?;
    let next_before = codec::next_review_page(&mut reviews, limit);
    Ok(ReviewPage {
        reviews,
        next_before,
        count: totals.try_get("n")?,
        rating_sum: totals.try_get("total")?,
    })
}
