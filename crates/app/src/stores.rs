//! Opening and running a store: who may open one (the operator's signup
//! mode), a platform admin's approval, and a store's settings — name, time
//! zone, the pause switch, fulfilment offered, opening hours — which decide
//! whether it takes an order right now.

use std::fmt;
use std::str::FromStr;

use ordertrack_domain::text::{check_line, normalise_email};
use ordertrack_domain::{
    Currency, FulfilmentKind, Fulfilments, Intake, OpeningHours, PaymentMethod, PaymentMethods,
    Role, StatusKey, StoreHours, StoreStatus, StoreZone, WorkflowName, ordering_at,
};
use ordertrack_store::{
    NewStore, StoreOpening, StoreSettings, StoreSettingsPatch, StoreWithSettings,
};
use time::OffsetDateTime;

use crate::catalog::check_slug;
use crate::{App, AppError, Caller, ErrorCode};

/// Longest store name, in characters.
const MAX_STORE_NAME_CHARS: usize = 100;

/// Who may open a store through the API and the pages (the operator's
/// choice, `--store-signup`). Platform admins always may.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StoreSignup {
    /// Platform admins only.
    #[default]
    Closed,
    /// Any signed-in user; the store waits for an admin's approval.
    Approval,
    /// Any signed-in user; the store is live at once.
    Open,
}

impl StoreSignup {
    /// The mode's name: `closed`, `approval` or `open`.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreSignup::Closed => "closed",
            StoreSignup::Approval => "approval",
            StoreSignup::Open => "open",
        }
    }
}

impl fmt::Display for StoreSignup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StoreSignup {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "closed" => Ok(StoreSignup::Closed),
            "approval" => Ok(StoreSignup::Approval),
            "open" => Ok(StoreSignup::Open),
            other => Err(format!(
                "`{other}` is not a signup mode: closed, approval or open"
            )),
        }
    }
}

/// A new store as its future owner describes it.
#[derive(Debug, Clone)]
pub struct StoreSetup {
    pub slug: String,
    pub name: String,
    pub currency: String,
    pub workflow: WorkflowName,
    /// IANA name; `None`: UTC.
    pub timezone: Option<String>,
}

/// Changes to a store's settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SettingsInput {
    pub name: Option<String>,
    pub accepting_orders: Option<bool>,
    pub timezone: Option<String>,
    pub fulfilment: Option<Vec<FulfilmentKind>>,
    /// `Some(None)`: no hours, open around the clock.
    pub opening_hours: Option<Option<OpeningHours>>,
    /// The payment methods offered, preferred first.
    pub payment_methods: Option<Vec<PaymentMethod>>,
    /// Whether drivers may take unassigned ready deliveries themselves.
    pub driver_self_assign: Option<bool>,
    /// The workflow state whose entry prints an order.
    pub print_trigger: Option<String>,
    /// What the store mails its customers, and on which states.
    pub email: Option<crate::email::EmailInput>,
}

impl SettingsInput {
    /// Whether only the fields a manager may change are set: the pause
    /// switch, the opening hours, what triggers printing and the customer
    /// e-mail.
    fn for_managers(&self) -> bool {
        self.name.is_none()
            && self.timezone.is_none()
            && self.fulfilment.is_none()
            && self.payment_methods.is_none()
            && self.driver_self_assign.is_none()
    }
}

/// Whether the store takes orders at `at`.
pub fn intake(settings: &StoreSettings, at: OffsetDateTime) -> Intake {
    ordering_at(
        &StoreHours {
            status: settings.status,
            accepting_orders: settings.accepting_orders,
            zone: &settings.timezone,
            opening_hours: settings.opening_hours.as_ref(),
        },
        at,
    )
}

/// Refuses an order the store cannot take now: closed (paused, outside its
/// hours) or a fulfilment it does not offer — 409 `store_closed`.
pub(crate) fn check_open(
    found: &StoreWithSettings, fulfilment: FulfilmentKind, at: OffsetDateTime,
) -> Result<(), AppError> {
    match intake(&found.settings, at) {
        Intake::Open => {}
        Intake::NotApproved => return Err(AppError::NotFound("store")),
        closed => {
            return Err(AppError::conflict(
                ErrorCode::StoreClosed,
                format!(
                    "{} is {}",
                    found.store.name,
                    lower_first(&closed.to_string())
                ),
            ));
        }
    }
    if !found.settings.fulfilment.offers(fulfilment) {
        return Err(AppError::conflict(
            ErrorCode::StoreClosed,
            format!(
                "{} does not offer {} right now",
                found.store.name,
                fulfilment.as_str()
            ),
        ));
    }
    Ok(())
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn parse_zone(name: &str) -> Result<StoreZone, AppError> {
    StoreZone::parse(name).map_err(|e| AppError::invalid(ErrorCode::InvalidTimezone, e.to_string()))
}

fn check_store_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_STORE_NAME_CHARS {
        return Err(AppError::invalid(
            ErrorCode::InvalidName,
            format!("a store name has 1 to {MAX_STORE_NAME_CHARS} characters"),
        ));
    }
    check_line("name", name)?;
    Ok(name.to_owned())
}

/// The prefix of a new store's order numbers: the first letter of its
/// slug, upper-case (`R-000123` for `rosie-pizza`).
fn order_prefix(slug: &str) -> String {
    slug.chars()
        .find(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_uppercase().to_string())
        .unwrap_or_else(|| "S".to_owned())
}

/// A currency a new store may price in (ISO 4217, in circulation).
pub(crate) fn check_currency(code: &str) -> Result<Currency, AppError> {
    Currency::parse_iso4217(code)
        .map_err(|e| AppError::invalid(ErrorCode::InvalidCurrency, e.to_string()))
}

impl App {
    /// Refuses a workflow name that is not one of the built-ins.
    pub(crate) fn check_workflow(&self, name: &str) -> Result<(), AppError> {
        if self.workflows.contains(name) {
            Ok(())
        } else {
            Err(AppError::invalid(
                ErrorCode::UnknownWorkflow,
                format!("no workflow named `{name}`: restaurant, kitchen or retail"),
            ))
        }
    }

    /// Who may open a store here.
    pub fn store_signup(&self) -> StoreSignup {
        self.store_signup
    }

    /// Whether the caller may open a store (the "Open a store" page).
    pub fn may_open_store(&self, caller: &Caller) -> bool {
        caller.user.is_admin || self.store_signup != StoreSignup::Closed
    }

    /// Checks a new store's description and turns it into what is stored.
    fn checked_opening(&self, setup: StoreSetup) -> Result<(NewStore, StoreSettings), AppError> {
        check_slug(&setup.slug)?;
        let name = check_store_name(&setup.name)?;
        let currency = check_currency(&setup.currency)?;
        self.check_workflow(&setup.workflow)?;
        let timezone = match &setup.timezone {
            Some(zone) => parse_zone(zone)?,
            None => StoreZone::utc(),
        };
        Ok((
            NewStore {
                order_prefix: order_prefix(&setup.slug),
                slug: setup.slug,
                name,
                currency,
                workflow: setup.workflow,
            },
            StoreSettings {
                timezone,
                ..StoreSettings::default()
            },
        ))
    }

    /// Opens a store for the caller, who becomes its owner. Platform admins
    /// always may, and their stores are live; anyone else as the signup
    /// mode says (`approval`: the store waits for an admin).
    pub async fn open_store(
        &self, caller: &Caller, setup: StoreSetup,
    ) -> Result<StoreWithSettings, AppError> {
        let status = match (caller.user.is_admin, self.store_signup) {
            (true, _) | (false, StoreSignup::Open) => StoreStatus::Active,
            (false, StoreSignup::Approval) => StoreStatus::PendingApproval,
            (false, StoreSignup::Closed) => {
                return Err(AppError::Forbidden(
                    "only platform admins open stores here".into(),
                ));
            }
        };
        let (store, mut settings) = self.checked_opening(setup)?;
        settings.status = status;
        Ok(self
            .repo
            .open_store(StoreOpening {
                store,
                settings,
                owner: Some(caller.user.id),
            })
            .await?)
    }

    /// Opens a live store owned by an existing account (operator tools: the
    /// CLI). An unknown owner e-mail is [`AppError::NotFound`].
    pub async fn admin_open_store(
        &self, setup: StoreSetup, owner_email: &str,
    ) -> Result<StoreWithSettings, AppError> {
        let (store, settings) = self.checked_opening(setup)?;
        let owner = self
            .repo
            .user_credentials(&normalise_email(owner_email))
            .await?
            .ok_or(AppError::NotFound("owner account"))?
            .user;
        Ok(self
            .repo
            .open_store(StoreOpening {
                store,
                settings,
                owner: Some(owner.id),
            })
            .await?)
    }

    /// A store with its settings, whoever asks (callers check access).
    pub(crate) async fn store_with_settings(
        &self, slug: &str,
    ) -> Result<StoreWithSettings, AppError> {
        self.repo
            .store_with_settings(slug)
            .await?
            .ok_or(AppError::NotFound("store"))
    }

    /// A live store with its settings (public): a store waiting for
    /// approval does not exist for the public.
    pub async fn live_store(&self, slug: &str) -> Result<StoreWithSettings, AppError> {
        let found = self.store_with_settings(slug).await?;
        if found.settings.status == StoreStatus::Active {
            Ok(found)
        } else {
            Err(AppError::NotFound("store"))
        }
    }

    /// The stores waiting for approval (platform admins).
    pub async fn pending_stores(
        &self, caller: &Caller,
    ) -> Result<Vec<StoreWithSettings>, AppError> {
        require_admin(caller)?;
        let mut stores = self.repo.stores_with_settings().await?;
        stores.retain(|s| s.settings.status == StoreStatus::PendingApproval);
        Ok(stores)
    }

    /// Makes a store live (platform admins); approving a live store changes
    /// nothing.
    pub async fn approve_store(
        &self, caller: &Caller, slug: &str,
    ) -> Result<StoreWithSettings, AppError> {
        require_admin(caller)?;
        let found = self.store_with_settings(slug).await?;
        if found.settings.status == StoreStatus::Active {
            return Ok(found);
        }
        self.repo
            .update_store_settings(
                found.store.id,
                StoreSettingsPatch {
                    status: Some(StoreStatus::Active),
                    ..StoreSettingsPatch::default()
                },
            )
            .await?
            .ok_or(AppError::NotFound("store"))
    }

    /// A store with its settings as its staff see it (the dashboard): its
    /// staff and platform admins; anyone else gets 404.
    pub async fn store_settings(
        &self, caller: &Caller, slug: &str,
    ) -> Result<(StoreWithSettings, Role), AppError> {
        let found = self.store_with_settings(slug).await?;
        let role = self
            .staff_role(caller, &found.store)
            .map_err(|_| AppError::NotFound("store"))?;
        Ok((found, role))
    }

    /// Changes a store's settings: its owners (and platform admins) all of
    /// them, its managers the pause switch and the opening hours.
    pub async fn update_store_settings(
        &self, caller: &Caller, slug: &str, input: SettingsInput,
    ) -> Result<StoreWithSettings, AppError> {
        let found = self.store_with_settings(slug).await?;
        let role = self.staff_role(caller, &found.store)?;
        let allowed = role.manages_staff() || (role == Role::Manager && input.for_managers());
        if !allowed {
            return Err(AppError::Forbidden(if role == Role::Manager {
                "managers change the pause switch, the opening hours, the print trigger \
                 and the customer e-mail only"
                    .into()
            } else {
                "only owners and managers change a store's settings".into()
            }));
        }
        let workflow = match input.print_trigger.is_some() || input.email.is_some() {
            true => Some(self.current_workflow(&found.store).await?.workflow),
            false => None,
        };
        let email = match (input.email, &workflow) {
            (Some(email), Some(workflow)) => Some(email.check(workflow)?),
            _ => None,
        };
        let print_trigger = match (&input.print_trigger, &workflow) {
            (Some(key), Some(workflow)) => {
                if workflow.state(key).is_none() {
                    return Err(AppError::invalid(
                        ErrorCode::UnknownStatus,
                        format!("the store's workflow has no state `{key}` to print on"),
                    ));
                }
                Some(StatusKey::from(key.as_str()))
            }
            _ => None,
        };
        let (email_states, email_subject, email_body) = match email {
            Some(email) => (email.states, email.subject, email.body),
            None => (None, None, None),
        };
        let patch = StoreSettingsPatch {
            name: input.name.as_deref().map(check_store_name).transpose()?,
            status: None,
            timezone: input.timezone.as_deref().map(parse_zone).transpose()?,
            accepting_orders: input.accepting_orders,
            fulfilment: input
                .fulfilment
                .map(|kinds| {
                    Fulfilments::new(&kinds)
                        .map_err(|e| AppError::invalid(ErrorCode::InvalidFulfilment, e.to_string()))
                })
                .transpose()?,
            opening_hours: match input.opening_hours {
                Some(Some(hours)) => {
                    hours.check().map_err(|e| {
                        AppError::invalid(ErrorCode::InvalidOpeningHours, e.to_string())
                    })?;
                    Some(Some(hours))
                }
                other => other,
            },
            payment_methods: input
                .payment_methods
                .map(|methods| {
                    PaymentMethods::new(&methods).map_err(|e| {
                        AppError::invalid(ErrorCode::InvalidPaymentMethods, e.to_string())
                    })
                })
                .transpose()?,
            driver_self_assign: input.driver_self_assign,
            print_trigger,
            email_states,
            email_subject,
            email_body,
        };
        let zone_changes = patch
            .timezone
            .as_ref()
            .is_some_and(|zone| zone.name() != found.settings.timezone.name());
        let updated = self
            .repo
            .update_store_settings(found.store.id, patch)
            .await?
            .ok_or(AppError::NotFound("store"))?;
        if zone_changes {
            // The reports' days are the store's calendar days: rebuild
            // them on the new clock (until done, reports read the orders).
            self.rebuild_report_rollups(&updated.store).await?;
        }
        Ok(updated)
    }
}

fn require_admin(caller: &Caller) -> Result<(), AppError> {
    if caller.user.is_admin {
        Ok(())
    } else {
        Err(AppError::Forbidden("only platform admins do this".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signup_modes_read_as_their_names() {
        for mode in [
            StoreSignup::Closed,
            StoreSignup::Approval,
            StoreSignup::Open,
        ] {
            assert_eq!(mode.as_str().parse::<StoreSignup>(), Ok(mode));
        }
        assert!("anyone".parse::<StoreSignup>().is_err());
        assert_eq!(StoreSignup::default(), StoreSignup::Closed);
    }

    #[test]
    fn order_numbers_start_with_the_slugs_first_letter() {
        assert_eq!(order_prefix("rosie-pizza"), "R");
        assert_eq!(order_prefix("24-7-shop"), "S");
        assert_eq!(order_prefix("7eleven"), "E");
    }
}
