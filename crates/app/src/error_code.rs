//! The stable machine-readable codes of refusals: the `code` of every
//! problem+json answer and WebSocket error. The strings are contract.

use std::fmt;

use serde::{Serialize, Serializer};

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident => $code:literal,)*) => {
        /// Why a request was refused, as clients match on it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, for documentation and tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as clients see it, e.g. `version_conflict`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }
        }
    };
}

error_codes! {
    /// No valid credentials were presented.
    Unauthenticated => "unauthenticated",
    /// E-mail and password did not match.
    BadCredentials => "bad_credentials",
    /// Too many failed sign-ins.
    TooManyAttempts => "too_many_attempts",
    /// Too much password hashing at once.
    Busy => "busy",
    /// The caller may not do this.
    Forbidden => "forbidden",
    /// No such resource (or the caller may not know it exists).
    NotFound => "not_found",
    /// The path exists, the method does not.
    MethodNotAllowed => "method_not_allowed",
    /// Something failed on our side.
    Internal => "internal",
    /// The body is JSON of the wrong shape.
    InvalidBody => "invalid_body",
    /// The body is not JSON.
    MalformedJson => "malformed_json",
    /// The body is not sent as JSON.
    UnsupportedMediaType => "unsupported_media_type",
    /// The body is larger than allowed.
    BodyTooLarge => "body_too_large",
    /// A path parameter does not parse.
    InvalidPath => "invalid_path",
    /// A query parameter does not parse.
    InvalidQuery => "invalid_query",
    /// A unique thing (e-mail, slug) is taken.
    AlreadyExists => "already_exists",
    /// The order changed since the version the client sent.
    VersionConflict => "version_conflict",
    /// A state needs every item ready first.
    ItemsNotReady => "items_not_ready",
    /// The workflow has no such state.
    UnknownStatus => "unknown_status",
    /// The order is in a terminal state.
    TerminalStatus => "terminal_status",
    /// The workflow or role does not allow this move.
    TransitionNotAllowed => "transition_not_allowed",
    /// The order is finished; its items no longer change.
    OrderFinished => "order_finished",
    /// The item already has that status (or nothing is left to do).
    ItemUnchanged => "item_unchanged",
    /// The order request is not acceptable.
    InvalidOrder => "invalid_order",
    /// The order names a product the store does not have.
    UnknownProduct => "unknown_product",
    /// The order names a product that is not available.
    UnavailableProduct => "unavailable_product",
    /// A note is too long or not acceptable.
    InvalidNote => "invalid_note",
    /// A correction without a reason.
    ReasonRequired => "reason_required",
    /// The idempotency key was already used for another request.
    IdempotencyKeyReused => "idempotency_key_reused",
    /// The first request with this idempotency key is still running.
    IdempotencyKeyInProgress => "idempotency_key_in_progress",
    /// The idempotency key is not acceptable.
    InvalidIdempotencyKey => "invalid_idempotency_key",
    /// The cursor is not one we gave out.
    InvalidCursor => "invalid_cursor",
    /// The search text is not acceptable.
    InvalidSearch => "invalid_search",
    /// `Last-Event-ID` is not a position.
    InvalidLastEventId => "invalid_last_event_id",
    /// A WebSocket message is not one we understand.
    InvalidMessage => "invalid_message",
    /// The socket already has a subscription with this id, or too many.
    SubscriptionRefused => "subscription_refused",
    /// A WebSocket subscription names no topic we know.
    UnknownTopic => "unknown_topic",
    /// The store has no such kitchen station.
    InvalidStation => "invalid_station",
    /// The e-mail address is not acceptable.
    InvalidEmail => "invalid_email",
    /// The password is not acceptable.
    InvalidPassword => "invalid_password",
    /// The name is not acceptable.
    InvalidName => "invalid_name",
    /// The store slug is not acceptable.
    InvalidSlug => "invalid_slug",
    /// The currency is not an ISO 4217 code.
    InvalidCurrency => "invalid_currency",
    /// There is no such built-in workflow.
    UnknownWorkflow => "unknown_workflow",
    /// The product is not acceptable.
    InvalidProduct => "invalid_product",
    /// The price is not acceptable.
    InvalidPrice => "invalid_price",
    /// Not a staff role.
    InvalidRole => "invalid_role",
    /// Staff cannot remove themselves.
    CannotRemoveSelf => "cannot_remove_self",
    /// A store must keep at least one owner.
    LastOwner => "last_owner",
    /// Free text holds control or bidi formatting characters.
    InvalidCharacters => "invalid_characters",
    /// The order is past the kitchen; its items stay ready.
    KitchenDone => "kitchen_done",
    /// Too many new accounts from one address.
    TooManyRegistrations => "too_many_registrations",
    /// Too many changes from one session.
    TooManyWrites => "too_many_writes",
    /// Too many live streams for one user or address.
    TooManyStreams => "too_many_streams",
    /// Too many connections from one address.
    TooManyConnections => "too_many_connections",
    /// The store is not taking orders right now (paused, outside its
    /// hours), or not with the fulfilment asked for.
    StoreClosed => "store_closed",
    /// The time zone is not an IANA name.
    InvalidTimezone => "invalid_timezone",
    /// The opening hours are not acceptable.
    InvalidOpeningHours => "invalid_opening_hours",
    /// The fulfilment offered is not pickup, delivery or both.
    InvalidFulfilment => "invalid_fulfilment",
    /// A report's dates are malformed, reversed or span too many days.
    InvalidDateRange => "invalid_date_range",
    /// The invitation was accepted before; it serves once.
    InvitationUsed => "invitation_used",
    /// The invitation is past its expiry.
    InvitationExpired => "invitation_expired",
    /// A workflow upload has problems (listed in `errors`).
    InvalidWorkflow => "invalid_workflow",
    /// The request body did not arrive in time.
    BodyTimeout => "body_timeout",
    /// A cookie-signed WebSocket from another site.
    CrossOrigin => "cross_origin",
    /// A WebSocket endpoint asked without a valid handshake.
    InvalidWebsocketUpgrade => "invalid_websocket_upgrade",
    /// The state requires the order to be paid first.
    PaymentRequired => "payment_required",
    /// The order names a payment method the store does not offer.
    PaymentMethodNotOffered => "payment_method_not_offered",
    /// A store's payment methods are not acceptable (none).
    InvalidPaymentMethods => "invalid_payment_methods",
    /// The order is already paid (or was, and was refunded).
    AlreadyPaid => "already_paid",
    /// Only a paid order can be refunded.
    NotPaid => "not_paid",
    /// A refund larger than what is left of the payment.
    RefundTooLarge => "refund_too_large",
    /// An amount that is not a positive number of minor units.
    InvalidAmount => "invalid_amount",
    /// An order is reviewed once it is done.
    OrderNotDone => "order_not_done",
    /// The order has been reviewed already; a review is written once.
    AlreadyReviewed => "already_reviewed",
    /// A rating is a whole number from 1 to 5.
    InvalidRating => "invalid_rating",
    /// The user named as an order's driver is not a driver of its store.
    NotADriver => "not_a_driver",
    /// Only a delivery order has a driver.
    NotADelivery => "not_a_delivery",
    /// The order has a driver already (a driver takes only unassigned ones).
    AlreadyAssigned => "already_assigned",
    /// A `driver` filter other than `me`.
    InvalidDriverFilter => "invalid_driver_filter",
    /// A printer's name, address or stations are not acceptable.
    InvalidPrinter => "invalid_printer",
    /// A printer's host is not among those the operator allows
    /// (`--printer-hosts`).
    PrinterHostNotAllowed => "printer_host_not_allowed",
    /// A webhook URL that is malformed, not http(s) or does not resolve.
    InvalidWebhookUrl => "invalid_webhook_url",
    /// A webhook URL whose host is (or resolves to) a loopback, private,
    /// link-local or metadata address.
    WebhookAddressRefused => "webhook_address_refused",
    /// A webhook's events are not known event types (or `["*"]`).
    InvalidWebhookEvents => "invalid_webhook_events",
    /// A store has as many webhooks as it may.
    TooManyWebhooks => "too_many_webhooks",
    /// A store's e-mail template uses an unknown placeholder, has an
    /// unbalanced brace or is too long.
    InvalidEmailTemplate => "invalid_email_template",
    /// A Web Push subscription whose endpoint or keys are unusable.
    InvalidPushSubscription => "invalid_push_subscription",
    /// A push endpoint whose host is (or resolves to) a loopback, private,
    /// link-local or metadata address.
    PushAddressRefused => "push_address_refused",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_code_is_distinct_snake_case() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(
                text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{text}"
            );
        }
    }
}
