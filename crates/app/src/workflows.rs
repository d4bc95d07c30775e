//! The workflows stores can run, by name.

use std::collections::HashMap;
use std::sync::Arc;

use ordertrack_domain::Workflow;

use crate::AppError;

/// Loaded, validated workflows by name.
pub struct Workflows {
    by_name: HashMap<String, Arc<Workflow>>,
}

impl Workflows {
    /// The built-in workflows (`restaurant`, `kitchen`, `retail`).
    pub fn builtin() -> Self {
        let by_name = Workflow::BUILTIN_NAMES
            .iter()
            .filter_map(|name| Workflow::builtin(name))
            .map(|workflow| (workflow.name().to_owned(), Arc::new(workflow)))
            .collect();
        Workflows { by_name }
    }

    /// The workflow called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<Workflow>, AppError> {
        self.by_name
            .get(name)
            .cloned()
            .ok_or_else(|| AppError::Internal(format!("store uses unknown workflow `{name}`")))
    }

    /// Whether a workflow of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }
}
