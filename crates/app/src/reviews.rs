//! Reviews: the customer of a finished order rates it once; the store's
//! owners and managers read them, a page at a time, with the average.

use ordertrack_domain::{OrderId, ReviewError, Role, check_review};
use ordertrack_store::{NewReview, Review, ReviewPage, StoreError, StoreRecord};

use crate::orders::{MAX_PAGE, OrderView, parse_cursor};
use crate::{App, AppError, Caller, ErrorCode};

/// A page of a store's reviews with the average of all of them.
#[derive(Debug, Clone)]
pub struct StoreReviews {
    pub store: StoreRecord,
    pub page: ReviewPage,
    /// The mean rating, `None` before the first review.
    pub average: Option<f64>,
}

impl From<ReviewError> for AppError {
    fn from(error: ReviewError) -> Self {
        let message = error.to_string();
        match error {
            ReviewError::NotTheCustomer => AppError::Forbidden(message),
            ReviewError::NotDone { .. } => AppError::conflict(ErrorCode::OrderNotDone, message),
            ReviewError::BadRating => AppError::invalid(ErrorCode::InvalidRating, message),
            ReviewError::CommentTooLong => AppError::invalid(ErrorCode::InvalidNote, message),
            ReviewError::UnsafeText(error) => error.into(),
        }
    }
}

/// The mean of `count` ratings summing to `sum`, to two decimals.
fn average(count: i64, sum: i64) -> Option<f64> {
    // Counts and sums of 1–5 ratings are far below 2^52: exact as f64.
    (count > 0).then(|| ((sum as f64 / count as f64) * 100.0).round() / 100.0)
}

impl App {
    /// The caller's review of order `id`: only its customer (others who see
    /// the order: 403; anyone else: 404), once it is done (409
    /// `order_not_done`), once (409 `already_reviewed`).
    pub async fn review_order(
        &self, caller: &Caller, id: OrderId, rating: i64, comment: Option<&str>,
    ) -> Result<Review, AppError> {
        let (order, workflow) = self.load(id).await?;
        self.access(caller, &order)?;
        let (rating, comment) = check_review(&workflow, &order, caller.user.id, rating, comment)?;
        self.repo
            .add_review(NewReview {
                order_id: order.id,
                store_id: order.store_id,
                customer_id: order.customer_id,
                rating,
                comment,
                at: crate::now(),
            })
            .await
            .map_err(|error| match error {
                StoreError::Conflict(_) => AppError::conflict(
                    ErrorCode::AlreadyReviewed,
                    "this order has been reviewed already",
                ),
                other => other.into(),
            })
    }

    /// The review of an order the caller has (its view, read through an
    /// access-checked use case); checked again here, without a read.
    pub async fn review_of(
        &self, caller: &Caller, view: &OrderView,
    ) -> Result<Option<Review>, AppError> {
        self.access(caller, &view.order)?;
        Ok(self.repo.review(view.order.id).await?)
    }

    /// A page of the store `slug`'s reviews, newest first, with the average
    /// of all of them: for its owners and managers (and admins); its other
    /// staff get 403, anyone else 404.
    pub async fn store_reviews(
        &self, caller: &Caller, slug: &str, cursor: Option<&str>, limit: Option<u32>,
    ) -> Result<StoreReviews, AppError> {
        let store = self.store_by_slug(slug).await?;
        let role = self
            .staff_role(caller, &store)
            .map_err(|_| AppError::NotFound("store"))?;
        if !matches!(role, Role::Admin | Role::Owner | Role::Manager) {
            return Err(AppError::Forbidden(
                "only owners and managers read reviews".into(),
            ));
        }
        let before = parse_cursor(cursor)?;
        let limit = limit.unwrap_or(20).clamp(1, MAX_PAGE);
        let page = self.repo.store_reviews(store.id, before, limit).await?;
        Ok(StoreReviews {
            average: average(page.count, page.rating_sum),
            store,
            page,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_has_two_decimals() {
        assert_eq!(average(0, 0), None);
        assert_eq!(average(3, 11), Some(3.67));
        assert_eq!(average(2, 10), Some(5.0));
    }
}
