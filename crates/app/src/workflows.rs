//! The workflows stores run: the built-ins by name, and each store's own
//! versions (an order runs the version it was placed under until it ends;
//! new orders run the newest). Version 0 of a store is the built-in its
//! record names.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use ordertrack_domain::{StoreId, Workflow, WorkflowProblem};
use ordertrack_store::{NewStoreWorkflow, StoreRecord, StoreWorkflow};

use crate::{App, AppError, Caller, ErrorCode};

/// Loaded, validated workflows: the built-ins by name, and the stores'
/// own versions by `(store, version)` once read (a version never changes).
pub struct Workflows {
    by_name: HashMap<String, Arc<Workflow>>,
    versions: RwLock<HashMap<(StoreId, i64), Arc<Workflow>>>,
}

impl Workflows {
    /// The built-in workflows (`restaurant`, `kitchen`, `retail`).
    pub fn builtin() -> Self {
        let by_name = Workflow::BUILTIN_NAMES
            .iter()
            .filter_map(|name| Workflow::builtin(name))
            .map(|workflow| (workflow.name().to_owned(), Arc::new(workflow)))
            .collect();
        Workflows {
            by_name,
            versions: RwLock::new(HashMap::new()),
        }
    }

    /// The built-in workflow called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<Workflow>, AppError> {
        self.by_name
            .get(name)
            .cloned()
            .ok_or_else(|| AppError::Internal(format!("store uses unknown workflow `{name}`")))
    }

    /// The built-in workflows, in [`Workflow::BUILTIN_NAMES`] order.
    pub fn builtins(&self) -> Vec<Arc<Workflow>> {
        Workflow::BUILTIN_NAMES
            .iter()
            .filter_map(|name| self.by_name.get(*name).cloned())
            .collect()
    }

    /// Whether a built-in workflow of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    fn cached(&self, store: StoreId, version: i64) -> Option<Arc<Workflow>> {
        self.versions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(store, version))
            .cloned()
    }

    fn remember(&self, store: StoreId, version: i64, workflow: Arc<Workflow>) {
        self.versions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((store, version), workflow);
    }
}

/// A version of a store's workflow.
#[derive(Debug, Clone)]
pub struct StoreWorkflowView {
    /// 0 while the store runs the built-in it was opened with; from 1 up,
    /// one per upload.
    pub version: i64,
    pub workflow: Arc<Workflow>,
}

/// What an owner sets a store's workflow to.
#[derive(Debug, Clone)]
pub enum WorkflowUpload {
    /// A copy of the built-in of this name.
    Builtin(String),
    /// A whole workflow as JSON text, in the built-ins' schema.
    Definition(String),
}

impl App {
    /// The workflow of `version` of `store` (what an order placed under it runs).
    pub async fn workflow_at(
        &self, store: &StoreRecord, version: i64,
    ) -> Result<Arc<Workflow>, AppError> {
        if version == 0 {
            return self.workflows.get(&store.workflow);
        }
        if let Some(workflow) = self.workflows.cached(store.id, version) {
            return Ok(workflow);
        }
        let stored = self
            .repo
            .store_workflow(store.id, version)
            .await?
            .ok_or_else(|| {
                AppError::Internal(format!(
                    "store `{}` has no workflow version {version}",
                    store.slug
                ))
            })?;
        self.load_version(store.id, version, &stored.definition)
    }

    /// The newest workflow of `store` and its version: what new orders run.
    pub async fn current_workflow(
        &self, store: &StoreRecord,
    ) -> Result<StoreWorkflowView, AppError> {
        let stored = self.repo.latest_store_workflow(store.id).await?;
        self.workflow_view(store, stored)
    }

    /// The workflow `store` runs given its newest stored version (`None`:
    /// its built-in), parsed once per version.
    pub(crate) fn workflow_view(
        &self, store: &StoreRecord, stored: Option<StoreWorkflow>,
    ) -> Result<StoreWorkflowView, AppError> {
        let Some(stored) = stored else {
            return Ok(StoreWorkflowView {
                version: 0,
                workflow: self.workflows.get(&store.workflow)?,
            });
        };
        let workflow = match self.workflows.cached(store.id, stored.version) {
            Some(workflow) => workflow,
            None => self.load_version(store.id, stored.version, &stored.definition)?,
        };
        Ok(StoreWorkflowView {
            version: stored.version,
            workflow,
        })
    }

    fn load_version(
        &self, store: StoreId, version: i64, definition: &str,
    ) -> Result<Arc<Workflow>, AppError> {
        let workflow = Arc::new(Workflow::from_json(definition).map_err(|e| {
            AppError::Internal(format!(
                "stored workflow version {version} is unreadable: {e}"
            ))
        })?);
        self.workflows.remember(store, version, workflow.clone());
        Ok(workflow)
    }

    /// The workflow a store runs now, for its staff (anyone else: 404).
    pub async fn store_workflow(
        &self, caller: &Caller, slug: &str,
    ) -> Result<StoreWorkflowView, AppError> {
        let store = self.store_by_slug(slug).await?;
        self.staff_role(caller, &store)
            .map_err(|_| AppError::NotFound("store"))?;
        self.current_workflow(&store).await
    }

    /// The workflow a store runs now, for its owners to edit (its other
    /// staff: 403; anyone else: 404).
    pub async fn owned_store_workflow(
        &self, caller: &Caller, slug: &str,
    ) -> Result<StoreWorkflowView, AppError> {
        let store = self.store_by_slug(slug).await?;
        let role = self
            .staff_role(caller, &store)
            .map_err(|_| AppError::NotFound("store"))?;
        if !role.manages_staff() {
            return Err(AppError::Forbidden(
                "only owners change a store's workflow".into(),
            ));
        }
        self.current_workflow(&store).await
    }

    /// Sets the workflow new orders of a store run (owners and platform
    /// admins): a new version; orders placed before keep theirs. A
    /// definition with problems is refused with every one of them.
    pub async fn set_store_workflow(
        &self, caller: &Caller, slug: &str, upload: WorkflowUpload,
    ) -> Result<StoreWorkflowView, AppError> {
        let store = self.store_by_slug(slug).await?;
        if !self.staff_role(caller, &store)?.manages_staff() {
            return Err(AppError::Forbidden(
                "only owners change a store's workflow".into(),
            ));
        }
        let workflow = match upload {
            WorkflowUpload::Builtin(name) => {
                if !self.workflows.contains(&name) {
                    return Err(AppError::invalid(
                        ErrorCode::UnknownWorkflow,
                        format!(
                            "`{name}` is not a built-in workflow (built-ins: {})",
                            Workflow::BUILTIN_NAMES.join(", ")
                        ),
                    ));
                }
                self.workflows.get(&name)?
            }
            WorkflowUpload::Definition(text) => {
                Arc::new(Workflow::check_json(&text).map_err(AppError::InvalidWorkflow)?)
            }
        };
        let definition =
            serde_json::to_string(&*workflow).map_err(|e| AppError::Internal(e.to_string()))?;
        let stored = self
            .repo
            .add_store_workflow(NewStoreWorkflow {
                store_id: store.id,
                name: workflow.name().to_owned(),
                definition,
                at: crate::now(),
            })
            .await?;
        self.workflows
            .remember(store.id, stored.version, workflow.clone());
        Ok(StoreWorkflowView {
            version: stored.version,
            workflow,
        })
    }
}

/// Every problem of a refused workflow, for [`AppError::InvalidWorkflow`].
pub(crate) fn describe(problems: &[WorkflowProblem]) -> String {
    match problems {
        [one] => format!("the workflow has a problem: {}", one.error),
        _ => format!("the workflow has {} problems", problems.len()),
    }
}
