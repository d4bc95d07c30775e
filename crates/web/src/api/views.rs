//! What the API sends: response bodies built from domain and store records.

use ordertrack_app::kitchen::KitchenBoard;
use ordertrack_app::orders::OrderView;
use ordertrack_app::reports::{HoursView, SalesView, TimesView};
use ordertrack_domain::report::{SalesFigures, Spread};
use ordertrack_domain::{
    AssignmentStep, Currency, DriverShown, Fulfilment, FulfilmentKind, HistoryEntry, OpeningHours,
    OrderItem, OrderSummary, Payment, PaymentMethod, PaymentStatus, PaymentStep, Role, State,
    StatusKey, StoreStatus, WorkflowName,
};
use ordertrack_store::{Product, Review, StoreRecord, StoreSettings, User};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A user, as shown to themselves.
#[derive(Serialize, ToSchema)]
pub struct UserBody {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
}

impl From<&User> for UserBody {
    fn from(user: &User) -> Self {
        UserBody {
            id: user.id.get(),
            email: user.email.clone(),
            name: user.name.clone(),
            is_admin: user.is_admin,
        }
    }
}

/// A store in the public list.
#[derive(Serialize, ToSchema)]
pub struct StoreBody {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub currency: Currency,
    pub workflow: WorkflowName,
}

impl From<&StoreRecord> for StoreBody {
    fn from(store: &StoreRecord) -> Self {
        StoreBody {
            id: store.id.get(),
            slug: store.slug.clone(),
            name: store.name.clone(),
            currency: store.currency.clone(),
            workflow: store.workflow.clone(),
        }
    }
}

/// A store with its settings, and whether it takes orders now.
#[derive(Serialize, ToSchema)]
pub struct StoreSettingsBody {
    #[serde(flatten)]
    pub store: StoreBody,
    pub status: StoreStatus,
    /// IANA time zone its opening hours are read in.
    pub timezone: String,
    /// False while its staff paused new orders.
    pub accepting_orders: bool,
    /// What it offers: `pickup`, `delivery`.
    pub fulfilment: Vec<FulfilmentKind>,
    /// Per weekday; `null`: open around the clock.
    pub opening_hours: Option<OpeningHours>,
    /// How customers may pay, preferred (the default) first.
    pub payment_methods: Vec<PaymentMethod>,
    /// Whether its drivers take unassigned ready deliveries themselves.
    pub driver_self_assign: bool,
    /// The workflow state whose entry prints an order on the store's
    /// printers.
    pub print_trigger: StatusKey,
    /// What it mails its customers, and when.
    pub email: EmailSettingsBody,
    /// Whether an order placed now is taken.
    pub taking_orders: bool,
    /// What its page says about ordering now, e.g. "Not taking orders
    /// right now, back at 17:00".
    pub ordering_message: String,
}

impl StoreSettingsBody {
    /// The body of `store` with `settings`, as of `now`.
    pub fn new(store: &StoreRecord, settings: &StoreSettings, now: OffsetDateTime) -> Self {
        let intake = ordertrack_app::stores::intake(settings, now);
        StoreSettingsBody {
            store: StoreBody::from(store),
            status: settings.status,
            timezone: settings.timezone.name().to_owned(),
            accepting_orders: settings.accepting_orders,
            fulfilment: settings.fulfilment.kinds().to_vec(),
            opening_hours: settings.opening_hours.clone(),
            payment_methods: settings.payment_methods.methods().to_vec(),
            driver_self_assign: settings.driver_self_assign,
            print_trigger: settings.print_trigger.clone(),
            email: EmailSettingsBody::from(&settings.email),
            taking_orders: intake.is_open(),
            ordering_message: intake.to_string(),
        }
    }
}

/// A store's customer e-mail: the states whose entry mails the customer
/// and the templates in force (the built-in ones unless `custom_*`).
#[derive(Serialize, ToSchema)]
pub struct EmailSettingsBody {
    pub states: Vec<StatusKey>,
    pub subject: String,
    pub body: String,
    pub custom_subject: bool,
    pub custom_body: bool,
}

impl From<&ordertrack_store::EmailSettings> for EmailSettingsBody {
    fn from(email: &ordertrack_store::EmailSettings) -> Self {
        use ordertrack_app::email::template::{DEFAULT_BODY, DEFAULT_SUBJECT};
        EmailSettingsBody {
            states: email.states.clone(),
            subject: email
                .subject
                .as_deref()
                .unwrap_or(DEFAULT_SUBJECT)
                .to_owned(),
            body: email.body.as_deref().unwrap_or(DEFAULT_BODY).to_owned(),
            custom_subject: email.subject.is_some(),
            custom_body: email.body.is_some(),
        }
    }
}

/// A product of a catalog.
#[derive(Serialize, ToSchema)]
pub struct ProductBody {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub price_minor: i64,
    pub station: String,
    pub available: bool,
}

impl From<&Product> for ProductBody {
    fn from(product: &Product) -> Self {
        ProductBody {
            id: product.id.get(),
            name: product.name.clone(),
            description: product.description.clone(),
            price_minor: product.price_minor,
            station: product.station.clone(),
            available: product.available,
        }
    }
}

/// A workflow state, as clients need it to draw trackers and buttons.
#[derive(Serialize, ToSchema)]
pub struct StatusBody {
    pub key: StatusKey,
    pub label: String,
    pub icon: String,
    pub progress: u8,
    pub customer_message: String,
    pub expected_minutes: u32,
    pub terminal: bool,
}

impl From<&State> for StatusBody {
    fn from(state: &State) -> Self {
        StatusBody {
            key: state.key.clone(),
            label: state.label.clone(),
            icon: state.icon.clone(),
            progress: state.progress,
            customer_message: state.customer_message.clone(),
            expected_minutes: state.expected_minutes,
            terminal: state.terminal,
        }
    }
}

/// What every view of an order shows: which order, where it stands, what it
/// costs.
#[derive(Serialize, ToSchema)]
pub struct OrderHeadBody {
    pub id: i64,
    pub number: String,
    pub store: String,
    pub status: StatusKey,
    pub status_label: String,
    pub status_icon: String,
    pub progress: u8,
    pub customer_message: String,
    pub eta_minutes: Option<u32>,
    /// When the order will be done (see docs/eta.md); `null` once terminal.
    pub eta: Option<ordertrack_domain::Eta>,
    pub version: i64,
    pub total_minor: i64,
    pub currency: Currency,
    pub payment: PaymentBody,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&OrderView> for OrderHeadBody {
    fn from(view: &OrderView) -> Self {
        let order = &view.order;
        let summary = OrderSummary::of(
            &view.workflow,
            &order.number,
            &order.status,
            order.fulfilment.kind,
        );
        OrderHeadBody {
            id: order.id.get(),
            number: summary.number,
            store: order.store_slug.clone(),
            status: summary.status,
            status_label: summary.label,
            status_icon: summary.icon,
            progress: summary.progress,
            customer_message: summary.customer_message,
            eta_minutes: summary.eta_minutes,
            eta: view.eta,
            version: order.version,
            total_minor: order.total_minor,
            currency: order.currency.clone(),
            payment: PaymentBody::from(&order.payment),
            created_at: order.created_at,
            updated_at: order.updated_at,
        }
    }
}

/// An order's payment: how, whether, and what was refunded.
#[derive(Serialize, ToSchema)]
pub struct PaymentBody {
    pub method: PaymentMethod,
    pub status: PaymentStatus,
    #[serde(with = "time::serde::rfc3339::option")]
    pub paid_at: Option<OffsetDateTime>,
    pub refunded_minor: i64,
}

impl From<&Payment> for PaymentBody {
    fn from(payment: &Payment) -> Self {
        PaymentBody {
            method: payment.method,
            status: payment.status,
            paid_at: payment.paid_at,
            refunded_minor: payment.refunded_minor,
        }
    }
}

/// An order, as its customer and the store's staff see it.
#[derive(Serialize, ToSchema)]
pub struct OrderBody {
    #[serde(flatten)]
    pub head: OrderHeadBody,
    pub customer_id: i64,
    pub customer_name: String,
    pub items: Vec<OrderItem>,
    pub fulfilment: Fulfilment,
    pub notes: Option<String>,
    pub tracking_token: String,
    /// The driver taking it to the door, `null` while none is assigned
    /// (its customer sees the first name only).
    pub driver: Option<DriverBody>,
    /// Statuses the caller may move this order to now.
    pub next_statuses: Vec<StatusKey>,
    /// The customer's review, once written (on the single order's view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewBody>,
}

impl From<&OrderView> for OrderBody {
    fn from(view: &OrderView) -> Self {
        let order = &view.order;
        let next_statuses = view
            .role
            .map(|role| {
                view.workflow
                    .next_states(role, &order.status, order.fulfilment.kind)
                    .into_iter()
                    .map(|s| s.key.clone())
                    .collect()
            })
            .unwrap_or_default();
        OrderBody {
            head: OrderHeadBody::from(view),
            customer_id: order.customer_id.get(),
            customer_name: order.customer_name.clone(),
            items: order.items.clone(),
            fulfilment: order.fulfilment.clone(),
            notes: order.notes.clone(),
            tracking_token: order.tracking_token.clone(),
            driver: order.driver.as_ref().map(|driver| DriverBody {
                id: driver.id.get(),
                name: if view.role == Some(Role::Customer) {
                    driver.first_name().to_owned()
                } else {
                    driver.name.clone()
                },
            }),
            next_statuses,
            review: None,
        }
    }
}

/// An order's driver: who, by name.
#[derive(Serialize, ToSchema)]
pub struct DriverBody {
    pub id: i64,
    pub name: String,
}

/// A review, as it shows on its order.
#[derive(Serialize, ToSchema)]
pub struct ReviewBody {
    pub rating: u8,
    pub comment: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&Review> for ReviewBody {
    fn from(review: &Review) -> Self {
        ReviewBody {
            rating: review.rating,
            comment: review.comment.clone(),
            created_at: review.created_at,
        }
    }
}

/// A review in a store's list: which order, whose.
#[derive(Serialize, ToSchema)]
pub struct StoreReviewBody {
    pub order_id: i64,
    pub order_number: String,
    pub customer_name: String,
    #[serde(flatten)]
    pub review: ReviewBody,
}

/// A page of a store's reviews with the average and count of all of them.
#[derive(Serialize, ToSchema)]
pub struct StoreReviewsBody {
    pub items: Vec<StoreReviewBody>,
    pub next_cursor: Option<String>,
    /// The mean rating (two decimals); `null` before the first review.
    pub average: Option<f64>,
    pub count: i64,
}

impl From<&ordertrack_app::reviews::StoreReviews> for StoreReviewsBody {
    fn from(found: &ordertrack_app::reviews::StoreReviews) -> Self {
        StoreReviewsBody {
            items: found
                .page
                .reviews
                .iter()
                .map(|review| StoreReviewBody {
                    order_id: review.order_id.get(),
                    order_number: review.order_number.clone(),
                    customer_name: review.customer_name.clone(),
                    review: ReviewBody::from(review),
                })
                .collect(),
            next_cursor: found.page.next_before.map(|id| id.to_string()),
            average: found.average,
            count: found.page.count,
        }
    }
}

/// An order as a guest with the tracking link sees it: progress and items,
/// no customer identity, address or notes.
#[derive(Serialize, ToSchema)]
pub struct TrackedOrderBody {
    #[serde(flatten)]
    pub head: OrderHeadBody,
    pub items: Vec<TrackedItemBody>,
    pub fulfilment: String,
    /// The driver's first name, `null` while none is assigned.
    pub driver: Option<DriverShown>,
    pub history: Vec<TrackedHistoryBody>,
}

/// A line item in the guest view.
#[derive(Serialize, ToSchema)]
pub struct TrackedItemBody {
    pub id: i64,
    pub name: String,
    pub quantity: u32,
    pub unit_price_minor: i64,
    pub status: ordertrack_domain::ItemStatus,
}

/// A history entry as a guest with the tracking link sees it: the actor's
/// role, never who.
#[derive(Serialize, ToSchema)]
pub struct TrackedHistoryBody {
    #[serde(flatten)]
    pub step: HistoryStepBody,
    pub role: Role,
}

impl TrackedOrderBody {
    /// The guest view of an order and its history.
    pub fn new(view: &OrderView, history: &[HistoryEntry]) -> Self {
        TrackedOrderBody {
            head: OrderHeadBody::from(view),
            items: view
                .order
                .items
                .iter()
                .map(|item| TrackedItemBody {
                    id: item.id.get(),
                    name: item.name.clone(),
                    quantity: item.quantity,
                    unit_price_minor: item.unit_price_minor,
                    status: item.status,
                })
                .collect(),
            fulfilment: view.order.fulfilment.kind.as_str().to_owned(),
            driver: view.order.driver.as_ref().map(|driver| DriverShown {
                name: driver.first_name().to_owned(),
            }),
            history: history
                .iter()
                .map(|entry| TrackedHistoryBody {
                    step: HistoryStepBody::from(entry),
                    role: entry.actor.role,
                })
                .collect(),
        }
    }
}

/// What a history entry records, as staff and guests both see it.
#[derive(Serialize, ToSchema)]
pub struct HistoryStepBody {
    pub from: Option<StatusKey>,
    pub to: StatusKey,
    pub note: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// A correction by a manager or owner (its note says why); absent for a
    /// step of the workflow.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub correction: bool,
    /// A payment change (paid, refunded; the status stays); absent for a
    /// status change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentStep>,
    /// A driver assignment change, `assigned` or `unassigned` (the status
    /// stays; who is on the order); absent for other changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignment: Option<&'static str>,
}

impl From<&HistoryEntry> for HistoryStepBody {
    fn from(entry: &HistoryEntry) -> Self {
        HistoryStepBody {
            from: entry.from.clone(),
            to: entry.to.clone(),
            note: entry.note.clone(),
            at: entry.at,
            correction: entry.correction,
            payment: entry.payment,
            assignment: entry.assignment.map(AssignmentStep::as_str),
        }
    }
}

/// One status history entry, as staff and the order's customer see it.
#[derive(Serialize, ToSchema)]
pub struct HistoryBody {
    #[serde(flatten)]
    pub step: HistoryStepBody,
    pub actor: ActorBody,
}

/// Who made a change.
#[derive(Serialize, ToSchema)]
pub struct ActorBody {
    pub id: i64,
    pub role: Role,
}

impl From<&HistoryEntry> for HistoryBody {
    fn from(entry: &HistoryEntry) -> Self {
        HistoryBody {
            step: HistoryStepBody::from(entry),
            actor: ActorBody {
                id: entry.actor.id.get(),
                role: entry.actor.role,
            },
        }
    }
}

/// An order's current state in a stream snapshot.
#[derive(Serialize, ToSchema)]
pub struct OrderSnapshotBody {
    #[serde(flatten)]
    pub head: OrderHeadBody,
    pub items: Vec<SnapshotItemBody>,
}

/// An item's status in a stream snapshot.
#[derive(Serialize, ToSchema)]
pub struct SnapshotItemBody {
    pub id: i64,
    pub status: ordertrack_domain::ItemStatus,
}

impl From<&OrderView> for OrderSnapshotBody {
    fn from(view: &OrderView) -> Self {
        OrderSnapshotBody {
            head: OrderHeadBody::from(view),
            items: view
                .order
                .items
                .iter()
                .map(|item| SnapshotItemBody {
                    id: item.id.get(),
                    status: item.status,
                })
                .collect(),
        }
    }
}

/// A kitchen board: the orders on the kitchen's screen, oldest first.
#[derive(Serialize, ToSchema)]
pub struct KitchenBoardBody {
    pub store: String,
    /// The station the board is for; `null` for every station.
    pub station: Option<String>,
    /// Every station of the store's catalog.
    pub stations: Vec<String>,
    /// Oldest first, each as the order endpoints show it.
    pub items: Vec<OrderBody>,
}

impl From<&KitchenBoard> for KitchenBoardBody {
    fn from(board: &KitchenBoard) -> Self {
        KitchenBoardBody {
            store: board.store.slug.clone(),
            station: board.station.clone(),
            stations: board.stations.clone(),
            items: board.tickets.iter().map(OrderBody::from).collect(),
        }
    }
}

/// A new staff invitation, as its owner sees it once: the token is not
/// stored and cannot be shown again.
#[derive(Serialize, ToSchema)]
pub struct InvitationBody {
    pub token: String,
    /// The invitee's page on this server (a path: the server does not
    /// know the address it is reached under).
    pub url: String,
    pub email: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl From<&ordertrack_app::invitations::IssuedInvitation> for InvitationBody {
    fn from(issued: &ordertrack_app::invitations::IssuedInvitation) -> Self {
        InvitationBody {
            url: ordertrack_app::invitations::invitation_path(&issued.token),
            token: issued.token.clone(),
            email: issued.invitation.email.clone(),
            role: issued.invitation.role,
            expires_at: issued.invitation.expires_at,
        }
    }
}

/// A membership just taken by accepting an invitation.
#[derive(Serialize, ToSchema)]
pub struct MembershipBody {
    pub store: StoreBody,
    pub role: Role,
}

/// One day's (or the whole range's) sales figures.
#[derive(Serialize, ToSchema)]
pub struct SalesFiguresBody {
    pub orders: u64,
    pub completed: u64,
    pub cancelled: u64,
    pub revenue_minor: i64,
    pub average_minor: i64,
}

impl From<&SalesFigures> for SalesFiguresBody {
    fn from(f: &SalesFigures) -> Self {
        SalesFiguresBody {
            orders: f.orders,
            completed: f.completed,
            cancelled: f.cancelled,
            revenue_minor: f.revenue_minor,
            average_minor: f.average_minor,
        }
    }
}

/// One calendar day of the sales report.
#[derive(Serialize, ToSchema)]
pub struct SalesDayBody {
    /// `YYYY-MM-DD`, on the store's wall clock.
    pub date: String,
    #[serde(flatten)]
    pub figures: SalesFiguresBody,
}

/// `GET /stores/{slug}/reports/sales`: every day of the range, and totals.
#[derive(Serialize, ToSchema)]
pub struct SalesBody {
    pub currency: Currency,
    pub days: Vec<SalesDayBody>,
    pub totals: SalesFiguresBody,
}

impl From<&SalesView> for SalesBody {
    fn from(view: &SalesView) -> Self {
        SalesBody {
            currency: view.scope.store.currency.clone(),
            days: view
                .report
                .days
                .iter()
                .map(|day| SalesDayBody {
                    date: day.date.to_string(),
                    figures: SalesFiguresBody::from(&day.figures),
                })
                .collect(),
            totals: SalesFiguresBody::from(&view.report.totals),
        }
    }
}

/// How many durations, their median and 90th percentile (`null` with none).
#[derive(Serialize, ToSchema)]
pub struct SpreadBody {
    pub count: u64,
    pub p50_seconds: Option<i64>,
    pub p90_seconds: Option<i64>,
}

impl From<&Spread> for SpreadBody {
    fn from(s: &Spread) -> Self {
        SpreadBody {
            count: s.count,
            p50_seconds: s.p50_seconds,
            p90_seconds: s.p90_seconds,
        }
    }
}

/// The time finished orders spent in one state.
#[derive(Serialize, ToSchema)]
pub struct StateTimesBody {
    pub status: String,
    #[serde(flatten)]
    pub spread: SpreadBody,
}

/// `GET /stores/{slug}/reports/times`.
#[derive(Serialize, ToSchema)]
pub struct TimesBody {
    pub states: Vec<StateTimesBody>,
    pub to_done: SpreadBody,
}

impl From<&TimesView> for TimesBody {
    fn from(view: &TimesView) -> Self {
        TimesBody {
            states: view
                .report
                .states
                .iter()
                .map(|s| StateTimesBody {
                    status: s.status.clone(),
                    spread: SpreadBody::from(&s.spread),
                })
                .collect(),
            to_done: SpreadBody::from(&view.report.to_done),
        }
    }
}

/// One weekday × hour of the hours report.
#[derive(Serialize, ToSchema)]
pub struct HourCellBody {
    /// `mon` … `sun`.
    pub weekday: &'static str,
    /// 0–23 on the store's wall clock.
    pub hour: u8,
    pub orders: u64,
}

/// `GET /stores/{slug}/reports/hours`: 168 cells, Monday 0:00 first.
#[derive(Serialize, ToSchema)]
pub struct HoursBody {
    pub cells: Vec<HourCellBody>,
}

impl From<&HoursView> for HoursBody {
    fn from(view: &HoursView) -> Self {
        HoursBody {
            cells: view
                .report
                .cells()
                .map(|c| HourCellBody {
                    weekday: c.weekday,
                    hour: c.hour,
                    orders: c.orders,
                })
                .collect(),
        }
    }
}
