-- Payments. A store offers payment methods (comma-separated, preferred
-- first; existing stores: cash). An order has its method, whether it is
-- paid (and when) and how much was refunded; existing orders are cash,
-- unpaid. A status-history entry may record a payment change (the status
-- stays): its resulting payment status and the amount paid or refunded.
ALTER TABLE stores ADD COLUMN payment_methods text NOT NULL DEFAULT 'cash';
ALTER TABLE orders ADD COLUMN payment_method text NOT NULL DEFAULT 'cash'
    CHECK (payment_method IN ('cash', 'card_at_counter', 'card_on_delivery', 'prepaid_external'));
ALTER TABLE orders ADD COLUMN payment_status text NOT NULL DEFAULT 'unpaid'
    CHECK (payment_status IN ('unpaid', 'paid', 'refunded', 'partially_refunded'));
ALTER TABLE orders ADD COLUMN paid_at bigint;
ALTER TABLE orders ADD COLUMN refunded_minor bigint NOT NULL DEFAULT 0
    CHECK (refunded_minor >= 0);
ALTER TABLE status_history ADD COLUMN payment_status text;
ALTER TABLE status_history ADD COLUMN payment_amount_minor bigint;
