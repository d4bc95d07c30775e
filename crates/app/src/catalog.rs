//! Stores, their products and their staff.

use ordertrack_domain::text::{check_line, check_lines, normalise_email};
use ordertrack_domain::{ProductId, Role, StoreId, StoreStatus, UserId};
use ordertrack_store::{
    NewProduct, NewStore, Product, ProductPatch, StaffMember, StoreRecord, StoreSettings,
};

use crate::ErrorCode;
use crate::{App, AppError, Caller};

/// Longest product name and station, in characters.
const MAX_NAME_CHARS: usize = 100;
/// Highest price a product may have, in minor units (one million).
pub const MAX_PRICE_MINOR: i64 = 100_000_000;

/// A store, its settings and its catalog.
#[derive(Debug, Clone)]
pub struct StoreWithProducts {
    pub store: StoreRecord,
    pub settings: StoreSettings,
    pub products: Vec<Product>,
}

/// What an owner or manager sees of their store: its catalog and, for
/// those who manage staff, its staff.
#[derive(Debug, Clone)]
pub struct StoreAdmin {
    /// The store, read once.
    pub store: StoreRecord,
    /// The caller's role in the store.
    pub role: Role,
    /// Its catalog.
    pub products: Vec<Product>,
    /// `None` for a caller who does not manage staff.
    pub staff: Option<Vec<StaffMember>>,
}

/// A product as an owner or manager describes it.
#[derive(Debug, Clone, Default)]
pub struct ProductInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub price_minor: Option<i64>,
    pub station: Option<String>,
    pub available: Option<bool>,
}

fn check_text(
    value: Option<String>, field: &'static str, max: usize,
) -> Result<Option<String>, AppError> {
    match value.map(|v| v.trim().to_owned()) {
        Some(v) if v.is_empty() || v.chars().count() > max => Err(AppError::invalid(
            ErrorCode::InvalidProduct,
            format!("{field} needs 1 to {max} characters"),
        )),
        Some(v) => {
            check_line(field, &v)?;
            Ok(Some(v))
        }
        None => Ok(None),
    }
}

fn check_product(input: ProductInput) -> Result<ProductPatch, AppError> {
    if let Some(price) = input.price_minor
        && !(0..=MAX_PRICE_MINOR).contains(&price)
    {
        return Err(AppError::invalid(
            ErrorCode::InvalidProduct,
            format!("price_minor must be between 0 and {MAX_PRICE_MINOR}"),
        ));
    }
    let description = match input.description {
        Some(d) if d.chars().count() > 1000 => {
            return Err(AppError::invalid(
                ErrorCode::InvalidProduct,
                "description is too long",
            ));
        }
        Some(d) => {
            check_lines("description", &d)?;
            Some(d)
        }
        None => None,
    };
    Ok(ProductPatch {
        name: check_text(input.name, "name", MAX_NAME_CHARS)?,
        description,
        price_minor: input.price_minor,
        station: check_text(input.station.map(|s| s.to_lowercase()), "station", 40)?,
        available: input.available,
    })
}

/// Slugs no store may have: words the site's own paths and pages use, and
/// names that would pass for the platform speaking.
const RESERVED_SLUGS: &[&str] = &[
    "about",
    "account",
    "admin",
    "administrator",
    "api",
    "approve",
    "assets",
    "dashboard",
    "help",
    "kitchen",
    "login",
    "logout",
    "manage",
    "me",
    "metrics",
    "new",
    "null",
    "open",
    "orders",
    "ordertrack",
    "platform",
    "readyz",
    "healthz",
    "register",
    "root",
    "settings",
    "signup",
    "static",
    "store",
    "stores",
    "support",
    "system",
    "track",
    "www",
];

/// Checks a store slug: lower-case letters, digits and dashes, 3–40
/// characters, not starting or ending with a dash, not a reserved word.
pub fn check_slug(slug: &str) -> Result<(), AppError> {
    let ok = (3..=40).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if !ok {
        return Err(AppError::invalid(
            ErrorCode::InvalidSlug,
            "a store slug has 3-40 lower-case letters, digits and dashes",
        ));
    }
    if RESERVED_SLUGS.contains(&slug) {
        return Err(AppError::invalid(
            ErrorCode::InvalidSlug,
            format!("`{slug}` is reserved; choose another slug"),
        ));
    }
    Ok(())
}

impl App {
    /// Every live store (public): stores waiting for approval are left out.
    pub async fn stores(&self) -> Result<Vec<StoreRecord>, AppError> {
        Ok(self
            .repo
            .stores_with_settings()
            .await?
            .into_iter()
            .filter(|s| s.settings.status == StoreStatus::Active)
            .map(|s| s.store)
            .collect())
    }

    /// A store by slug, or 404.
    pub async fn store_by_slug(&self, slug: &str) -> Result<StoreRecord, AppError> {
        self.repo
            .store_by_slug(slug)
            .await?
            .ok_or(AppError::NotFound("store"))
    }

    /// A live store with its settings and catalog (public).
    pub async fn store_with_products(&self, slug: &str) -> Result<StoreWithProducts, AppError> {
        let found = self.live_store(slug).await?;
        let products = self.repo.products(found.store.id).await?;
        Ok(StoreWithProducts {
            store: found.store,
            settings: found.settings,
            products,
        })
    }

    /// The store `slug` as its owners and managers manage it (its other
    /// staff: 403; anyone else: 404), the store read once.
    pub async fn store_admin(&self, caller: &Caller, slug: &str) -> Result<StoreAdmin, AppError> {
        let (store, role) = self.managed_store(caller, slug).await?;
        let products = self.repo.products(store.id).await?;
        let staff = if role.manages_staff() {
            Some(self.repo.staff(store.id).await?)
        } else {
            None
        };
        Ok(StoreAdmin {
            store,
            role,
            products,
            staff,
        })
    }

    /// The store `slug` and the caller's role there, for its owners and
    /// managers (and admins); its other staff get 403, anyone else 404.
    pub(crate) async fn managed_store(
        &self, caller: &Caller, slug: &str,
    ) -> Result<(StoreRecord, Role), AppError> {
        let store = self.store_by_slug(slug).await?;
        let role = self
            .staff_role(caller, &store)
            .map_err(|_| AppError::NotFound("store"))?;
        if !role.manages_catalog() {
            return Err(AppError::Forbidden(
                "only owners and managers manage the store".into(),
            ));
        }
        Ok((store, role))
    }

    /// Creates a store without a caller (operator tools).
    pub async fn admin_create_store(&self, new: NewStore) -> Result<StoreRecord, AppError> {
        check_slug(&new.slug)?;
        check_line("name", &new.name)?;
        crate::stores::check_currency(new.currency.code())?;
        self.check_workflow(&new.workflow)?;
        Ok(self.repo.create_store(new).await?)
    }

    /// The caller's role in a store, treating platform admins as owners.
    /// Staff of other stores and customers get 404: a store's back office
    /// does not exist for them. A platform admin is an admin whatever
    /// membership they also hold, so no owner can take their powers away.
    pub fn staff_role(&self, caller: &Caller, store: &StoreRecord) -> Result<Role, AppError> {
        if caller.user.is_admin {
            return Ok(Role::Admin);
        }
        if let Some(role) = caller.role_in(store.id) {
            return Ok(role);
        }
        Err(AppError::Forbidden(
            "you are not staff of this store".into(),
        ))
    }

    /// Adds a product (owner, manager).
    pub async fn create_product(
        &self, caller: &Caller, slug: &str, input: ProductInput,
    ) -> Result<Product, AppError> {
        let store = self.store_by_slug(slug).await?;
        self.require_catalog_role(caller, &store)?;
        let missing = |field: &str| {
            AppError::invalid(ErrorCode::InvalidProduct, format!("{field} is required"))
        };
        let patch = check_product(input)?;
        let new = NewProduct {
            name: patch.name.ok_or_else(|| missing("name"))?,
            description: patch.description.unwrap_or_default(),
            price_minor: patch.price_minor.ok_or_else(|| missing("price_minor"))?,
            station: patch.station.unwrap_or_else(|| "counter".to_owned()),
            available: patch.available.unwrap_or(true),
        };
        Ok(self.repo.create_product(store.id, new).await?)
    }

    /// Changes a product (owner, manager).
    pub async fn update_product(
        &self, caller: &Caller, slug: &str, product: ProductId, input: ProductInput,
    ) -> Result<Product, AppError> {
        let store = self.store_by_slug(slug).await?;
        self.require_catalog_role(caller, &store)?;
        let patch = check_product(input)?;
        self.repo
            .update_product(store.id, product, patch)
            .await?
            .ok_or(AppError::NotFound("product"))
    }

    fn require_catalog_role(&self, caller: &Caller, store: &StoreRecord) -> Result<(), AppError> {
        if self.staff_role(caller, store)?.manages_catalog() {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "only owners and managers change the catalog".into(),
            ))
        }
    }

    fn require_staff_manager(&self, caller: &Caller, store: &StoreRecord) -> Result<(), AppError> {
        if self.staff_role(caller, store)?.manages_staff() {
            Ok(())
        } else {
            Err(AppError::Forbidden("only owners manage staff".into()))
        }
    }

    /// A store's staff (owner). A read of the back office: for anyone who is
    /// not the store's staff it does not exist (404).
    pub async fn staff(&self, caller: &Caller, slug: &str) -> Result<Vec<StaffMember>, AppError> {
        let store = self.store_by_slug(slug).await?;
        self.staff_role(caller, &store)
            .map_err(|_| AppError::NotFound("store"))?;
        self.require_staff_manager(caller, &store)?;
        Ok(self.repo.staff(store.id).await?)
    }

    /// Gives an existing account a staff role in a store (owner), or another
    /// role if they have one: the store logs the change, and every instance
    /// ends the streams the old role opened.
    pub async fn add_staff(
        &self, caller: &Caller, slug: &str, email: &str, role: Role,
    ) -> Result<StaffMember, AppError> {
        let store = self.store_to_staff(caller, slug, role).await?;
        let user = self
            .repo
            .user_credentials(&normalise_email(email))
            .await?
            .ok_or(AppError::NotFound("user"))?
            .user;
        if role != Role::Owner {
            self.keep_an_owner(&store, user.id).await?;
        }
        self.repo.set_membership(user.id, store.id, role).await?;
        Ok(StaffMember { user, role })
    }

    /// The store `caller` gives `role` in: owners (and platform admins)
    /// only, and only a staff role.
    pub(crate) async fn store_to_staff(
        &self, caller: &Caller, slug: &str, role: Role,
    ) -> Result<StoreRecord, AppError> {
        let store = self.store_by_slug(slug).await?;
        self.require_staff_manager(caller, &store)?;
        if !role.is_staff() {
            return Err(AppError::invalid(
                ErrorCode::InvalidRole,
                "staff roles are owner, manager, cashier, kitchen and driver",
            ));
        }
        Ok(store)
    }

    /// Removes someone from a store's staff (owner); their access ends at
    /// once, their open streams on every instance too.
    pub async fn remove_staff(
        &self, caller: &Caller, slug: &str, user_id: UserId,
    ) -> Result<(), AppError> {
        let store = self.store_by_slug(slug).await?;
        self.require_staff_manager(caller, &store)?;
        if user_id == caller.user.id {
            return Err(AppError::conflict(
                ErrorCode::CannotRemoveSelf,
                "owners cannot remove themselves",
            ));
        }
        self.keep_an_owner(&store, user_id).await?;
        // The store logs the removal with it: every instance ends the
        // streams the role opened (see `AccessChange`).
        if self.repo.remove_membership(user_id, store.id).await? {
            Ok(())
        } else {
            Err(AppError::NotFound("staff member"))
        }
    }

    /// Refuses to take `user_id`'s owner role away if they are the store's
    /// only owner: nobody could manage its staff any more.
    pub(crate) async fn keep_an_owner(
        &self, store: &StoreRecord, user_id: UserId,
    ) -> Result<(), AppError> {
        let staff = self.repo.staff(store.id).await?;
        let owners: Vec<UserId> = staff
            .iter()
            .filter(|member| member.role == Role::Owner)
            .map(|member| member.user.id)
            .collect();
        if owners == [user_id] {
            return Err(AppError::conflict(
                ErrorCode::LastOwner,
                "a store keeps at least one owner; make someone else owner first",
            ));
        }
        Ok(())
    }

    /// Gives a staff role without a caller (CLI, demo).
    pub async fn admin_set_membership(
        &self, user: UserId, store: StoreId, role: Role,
    ) -> Result<(), AppError> {
        if !role.is_staff() {
            return Err(AppError::invalid(
                ErrorCode::InvalidRole,
                "not a staff role",
            ));
        }
        Ok(self.repo.set_membership(user, store, role).await?)
    }
}
