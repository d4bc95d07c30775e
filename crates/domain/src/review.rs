//! Reviews: a customer rates a finished order once, 1 to 5, with an
//! optional comment. This module decides whether a review may be written;
//! the store keeps it (once per order).

use crate::order::{MAX_NOTE_CHARS, Order, UserId};
use crate::text::{UnsafeText, check_lines};
use crate::workflow::Workflow;

/// The lowest and highest rating.
pub const RATINGS: std::ops::RangeInclusive<i64> = 1..=5;

/// Why a review was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("only the order's customer reviews it")]
    NotTheCustomer,
    #[error("an order can be reviewed once it is done; this one is `{status}`")]
    NotDone { status: String },
    #[error("a rating is a whole number from 1 to 5")]
    BadRating,
    #[error("a comment may have at most {MAX_NOTE_CHARS} characters")]
    CommentTooLong,
    #[error(transparent)]
    UnsafeText(#[from] UnsafeText),
}

/// Whether `order` is done as far as reviews go: in a state its workflow
/// counts as done (`delivered`, `completed`), or any other final state that
/// is not a cancellation.
pub fn is_done(workflow: &Workflow, order: &Order) -> bool {
    let status = &order.status;
    workflow.is_done(status) || (workflow.is_terminal(status) && !workflow.is_cancelled(status))
}

/// Checks a review of `order` by `customer`: theirs, done, a rating of 1
/// to 5 and a comment within bounds. Returns the rating and the trimmed
/// comment (`None` when empty).
pub fn check_review(
    workflow: &Workflow, order: &Order, customer: UserId, rating: i64, comment: Option<&str>,
) -> Result<(u8, Option<String>), ReviewError> {
    if order.customer_id != customer {
        return Err(ReviewError::NotTheCustomer);
    }
    if !RATINGS.contains(&rating) {
        return Err(ReviewError::BadRating);
    }
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    if let Some(text) = comment {
        if text.chars().count() > MAX_NOTE_CHARS {
            return Err(ReviewError::CommentTooLong);
        }
        check_lines("comment", text)?;
    }
    if !is_done(workflow, order) {
        return Err(ReviewError::NotDone {
            status: order.status.to_string(),
        });
    }
    let rating = u8::try_from(rating).map_err(|_| ReviewError::BadRating)?;
    Ok((rating, comment.map(str::to_owned)))
}
