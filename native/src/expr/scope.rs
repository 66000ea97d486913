//! `Scope`: named variables, converted to CEL once, shared cheaply between scopes.

use std::sync::Arc;

use pyo3::prelude::*;

use super::convert::to_cel;
use super::evaluate::Vars;

/// Variables for evaluating expressions.
#[pyclass(module = "polyhost._native")]
#[derive(Default)]
pub struct Scope {
    pub(crate) vars: Arc<Vars>,
}

#[pymethods]
impl Scope {
    /// An empty scope.
    #[new]
    fn new() -> Self {
        Scope::default()
    }

    /// Binds `name` to `value`, converted to CEL now.
    fn set(&mut self, name: String, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let value = Arc::from(to_cel(value)?);
        Arc::make_mut(&mut self.vars).insert(name, value);
        Ok(())
    }

    /// Unbinds `name`, if bound.
    fn remove(&mut self, name: &str) {
        if self.vars.contains_key(name) {
            Arc::make_mut(&mut self.vars).remove(name);
        }
    }

    fn __contains__(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    /// The bound names, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.vars.keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// A new scope with this scope's variables as they are now; cheap.
    fn child(&self) -> Scope {
        Scope {
            vars: Arc::clone(&self.vars),
        }
    }

    fn __repr__(&self) -> String {
        format!("Scope({})", self.names().join(", "))
    }
}
