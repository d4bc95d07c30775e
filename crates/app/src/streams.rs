//! Live streams, authorised: who may follow which topic, and what a stream
//! starts from (the events a resuming client missed, or a snapshot).
//!
//! A [`StreamSpec`] is built only here, by functions that check the caller
//! may read what the stream shows, exactly as a read over HTTP does (the
//! same 404s and 401s): holding one is proof of that check. The transports
//! (SSE, WebSocket) subscribe, replay and follow the live tail with it, and
//! get their data through [`App::subscribe`] and [`App::replay`]; they never
//! read the store themselves.
//!
//! Every stream opened by a signed-in caller carries their session (it ends
//! on logout and expiry) and, when a staff role let them open it, that
//! store (it ends when the role changes or is taken away): the hub of every
//! instance applies the store's [`ordertrack_store::AccessChange`]s. A
//! change committed while a stream was being authorised is caught by
//! [`App::subscribe`], which checks the access again once the subscription
//! is in place (from then on the hub ends it).

use std::sync::Arc;

use ordertrack_domain::{FulfilmentKind, OrderId, StoreId, UserId};
use ordertrack_realtime::{LiveEvent, SubscribeOptions, Subscription, Topic};
use ordertrack_store::{EventFilter, OrderQuery, OrderScope, StoreRecord};

use crate::ErrorCode;
use crate::auth::SessionRef;
use crate::orders::{MAX_PAGE, OrderView, order_role};
use crate::{App, AppError, Caller};

/// Longest kitchen station name a store stream may filter by.
const MAX_STATION_CHARS: usize = 40;

/// What a client may watch: a topic it was authorised for, and who watches
/// (so the hub can end the stream when their access ends). Only `app`
/// builds one.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    topic: Topic,
    options: SubscribeOptions,
    /// Why the caller may watch it: checked again once subscribed.
    grant: Grant,
}

/// The rule that let a caller open a stream.
#[derive(Debug, Clone)]
enum Grant {
    /// A tracking link: whoever holds it.
    Guest,
    /// The caller's own orders.
    Own(SessionRef),
    /// One order: its store's staff, its customer, platform admins.
    Order {
        session: SessionRef,
        store: StoreId,
        customer: UserId,
        fulfilment: FulfilmentKind,
    },
    /// A store's orders: its staff and platform admins.
    Store {
        session: SessionRef,
        store: StoreRecord,
    },
}

impl StreamSpec {
    /// The topic followed.
    pub fn topic(&self) -> Topic {
        self.topic
    }

    /// Whether a guest with a tracking link watches: events reach them
    /// without what names the customer ([`LiveEvent::for_guest`]).
    pub fn is_guest(&self) -> bool {
        matches!(self.grant, Grant::Guest)
    }

    /// The kitchen station a store stream is filtered by.
    pub fn station(&self) -> Option<&str> {
        self.options.station.as_deref()
    }

    fn filter(&self) -> EventFilter {
        match self.topic {
            Topic::Order(id) => EventFilter::Order(id),
            Topic::Customer(id) => EventFilter::Customer(id),
            Topic::Store(id) => EventFilter::Store(id),
        }
    }
}

/// Why a resuming client gets a snapshot instead of the events it missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotReason {
    /// It named a position the server never issued.
    UnknownPosition,
    /// It missed more events than a replay sends.
    TooFarBehind,
}

impl SnapshotReason {
    /// The reason as clients read it.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotReason::UnknownPosition => "unknown_position",
            SnapshotReason::TooFarBehind => "too_far_behind",
        }
    }
}

/// What a resuming stream sends before its live tail.
#[derive(Debug)]
pub enum Replay {
    /// The missed events of the topic (of its station, if filtered), oldest
    /// first, each serialised once; `through` is the last position read, so
    /// the tail drops live events at or below it.
    Events {
        events: Vec<Arc<LiveEvent>>,
        through: i64,
    },
    /// The current state of the topic's orders instead.
    Snapshot {
        reason: SnapshotReason,
        orders: Vec<OrderView>,
    },
}

/// Who watches: their user, session and its expiry.
fn watcher(caller: &Caller) -> SubscribeOptions {
    SubscribeOptions {
        user_id: Some(caller.user.id),
        session_id: Some(caller.session_id.clone()),
        expires_at: Some(caller.session_expires_at),
        staff_of: None,
        station: None,
        fulfilment: None,
    }
}

impl App {
    /// Authorises a stream of one order: for whoever may read the order.
    pub async fn order_stream(
        &self, caller: &Caller, order: OrderId,
    ) -> Result<StreamSpec, AppError> {
        let view = self.order(caller, order).await?;
        let store = view.order.store_id;
        Ok(StreamSpec {
            topic: Topic::Order(order),
            options: SubscribeOptions {
                // Seen as staff: a change of that role ends the stream.
                staff_of: caller.role_in(store).map(|_| store),
                ..watcher(caller)
            },
            grant: Grant::Order {
                session: SessionRef::of(caller),
                store,
                customer: view.order.customer_id,
                fulfilment: view.order.fulfilment.kind,
            },
        })
    }

    /// Authorises a guest stream of one order by its tracking token.
    pub async fn tracking_stream(&self, token: &str) -> Result<StreamSpec, AppError> {
        let view = self.track(token).await?;
        Ok(StreamSpec {
            topic: Topic::Order(view.order.id),
            options: SubscribeOptions::default(),
            grant: Grant::Guest,
        })
    }

    /// A customer's stream of all their own orders.
    pub fn customer_stream(&self, caller: &Caller) -> StreamSpec {
        StreamSpec {
            topic: Topic::Customer(caller.user.id),
            options: watcher(caller),
            grant: Grant::Own(SessionRef::of(caller)),
        }
    }

    /// Authorises a store's stream, optionally of one kitchen station: for
    /// its staff in any role, who may list all its orders (for anyone else
    /// the store does not exist).
    pub async fn store_stream(
        &self, caller: &Caller, slug: &str, station: Option<String>,
    ) -> Result<StreamSpec, AppError> {
        let store = self.store_by_slug(slug).await?;
        let role = self
            .staff_role(caller, &store)
            .map_err(|_| AppError::NotFound("store"))?;
        if let Some(station) = &station
            && (station.is_empty() || station.chars().count() > MAX_STATION_CHARS)
        {
            return Err(AppError::invalid(
                ErrorCode::InvalidStation,
                "unknown station",
            ));
        }
        Ok(StreamSpec {
            topic: Topic::Store(store.id),
            options: SubscribeOptions {
                staff_of: caller.role_in(store.id).map(|_| store.id),
                station,
                fulfilment: role.only_fulfilment(),
                ..watcher(caller)
            },
            grant: Grant::Store {
                session: SessionRef::of(caller),
                store,
            },
        })
    }

    /// Subscribes to the live events of an authorised stream, then checks
    /// that the caller's access still allows it, reading their session and
    /// memberships afresh. A logout or staff change committed after this
    /// check reaches the subscription through the hub and ends it; one
    /// committed since the stream was authorised is refused here, as a
    /// request would be (401, 404).
    ///
    /// Subscribe *before* reading the replay, then drop replayed ids at the
    /// seam: nothing falls between.
    pub async fn subscribe(&self, spec: &StreamSpec) -> Result<Subscription, AppError> {
        let subscription = self.hub.subscribe(spec.topic, spec.options.clone());
        match &spec.grant {
            Grant::Guest => {}
            Grant::Own(session) => {
                self.session_caller(session).await?;
            }
            Grant::Order {
                session,
                store,
                customer,
                fulfilment,
            } => {
                let caller = self.session_caller(session).await?;
                order_role(&caller, *store, *customer, *fulfilment)
                    .ok_or(AppError::NotFound("order"))?;
            }
            Grant::Store { session, store } => {
                let caller = self.session_caller(session).await?;
                self.staff_role(&caller, store)
                    .map_err(|_| AppError::NotFound("store"))?;
            }
        }
        Ok(subscription)
    }

    /// What a client resuming after position `after` missed, up to `limit`
    /// events; further behind, or at a position past `position` (the newest
    /// the server has issued), a snapshot of the topic's orders.
    pub async fn replay(
        &self, spec: &StreamSpec, after: i64, position: i64, limit: u32,
    ) -> Result<Replay, AppError> {
        if after > position {
            return self.snapshot(spec, SnapshotReason::UnknownPosition).await;
        }
        let stored = self
            .repo
            .events_after(spec.filter(), after, limit.saturating_add(1))
            .await?;
        if stored.len() > limit as usize {
            return self.snapshot(spec, SnapshotReason::TooFarBehind).await;
        }
        let through = stored.last().map_or(after, |event| event.id.max(after));
        // The store keeps events as written, not as sent: each event this
        // replay sends is serialised once, here (skipping other stations'
        // before serialising), and shared by the transport.
        let events = stored
            .iter()
            .filter(|stored| {
                spec.options
                    .wants(&stored.event.stations, stored.event.summary.fulfilment)
            })
            .map(|stored| Arc::new(LiveEvent::new(stored)))
            .collect();
        Ok(Replay::Events { events, through })
    }

    /// The current state behind an authorised stream: its order, or the
    /// newest orders of its customer or store.
    async fn snapshot(
        &self, spec: &StreamSpec, reason: SnapshotReason,
    ) -> Result<Replay, AppError> {
        let scope = match spec.topic {
            Topic::Order(id) => {
                let (order, workflow) = self.load(id).await?;
                let eta = self.eta_of(&order, &workflow).await?;
                return Ok(Replay::Snapshot {
                    reason,
                    orders: vec![OrderView {
                        order,
                        workflow,
                        role: None,
                        eta,
                    }],
                });
            }
            Topic::Customer(id) => OrderScope::Customer(id),
            Topic::Store(id) => OrderScope::Store(id),
        };
        let page = self
            .repo
            .orders(OrderQuery {
                fulfilment: spec.options.fulfilment,
                ..OrderQuery::newest(scope, MAX_PAGE)
            })
            .await?;
        Ok(Replay::Snapshot {
            reason,
            orders: self.views(page.orders, None).await?,
        })
    }
}
