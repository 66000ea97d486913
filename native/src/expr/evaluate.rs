//! Evaluating a program against already-converted variables.

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, ExecutionError, IdedExpr, Value};

use super::parse::env;

/// Variables by name, converted once; `Arc`s so scopes share them.
pub type Vars = HashMap<String, Arc<dyn Val>>;

/// Hands the interpreter borrowed variables: nothing is copied per evaluation.
struct Resolver<'a>(&'a Vars);

impl VariableResolver for Resolver<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        self.0
            .get(variable)
            .map(|v| CowVal::Borrowed(v.as_ref() as &dyn Val))
    }
}

/// Evaluates `expr` with `vars` and hands the result to `f` while it is borrowed.
///
/// # Errors
/// The interpreter's error.
pub fn evaluate<R>(
    expr: &IdedExpr,
    vars: &Vars,
    f: impl FnOnce(&dyn Val) -> R,
) -> Result<R, ExecutionError> {
    let resolver = Resolver(vars);
    let mut context = Context::with_env(Arc::clone(env()));
    context.set_variable_resolver(&resolver);
    let value = Value::resolve_val(expr, &context)?;
    Ok(f(value.as_ref()))
}

/// A short, human-readable description of an evaluation error.
#[must_use]
pub fn describe(err: &ExecutionError) -> String {
    match err {
        ExecutionError::NoSuchKey(key) => format!("no such key: {key}"),
        ExecutionError::UndeclaredReference(name) => format!("undeclared reference to '{name}'"),
        ExecutionError::DivisionByZero(_) => "division by zero".to_owned(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".to_owned(),
        ExecutionError::Overflow(op, a, b) => {
            format!("integer overflow in {op} of {} and {}", brief(a), brief(b))
        }
        ExecutionError::IndexOutOfBounds(index) => {
            format!("index out of bounds: {}", brief(index))
        }
        ExecutionError::UnexpectedType { got, want } => {
            format!("unexpected type: got {got}, want {want}")
        }
        ExecutionError::ValuesNotComparable(a, b) => {
            format!("{} and {} cannot be compared", a.type_of(), b.type_of())
        }
        ExecutionError::UnsupportedBinaryOperator(op, a, b) => format!(
            "operator '{op}' does not apply to {} and {}",
            a.type_of(),
            b.type_of()
        ),
        ExecutionError::UnsupportedIndex(index, target) => {
            format!(
                "cannot index a {} with a {}",
                target.type_of(),
                index.type_of()
            )
        }
        ExecutionError::UnsupportedKeyType(key) => {
            format!("a {} cannot be a map key", key.type_of())
        }
        ExecutionError::DuplicateKey(key) => format!("repeated map key {}", brief(key)),
        ExecutionError::FunctionError { function, message } => {
            format!("error in function '{function}': {message}")
        }
        other => lowercase_first(&other.to_string()),
    }
}

fn brief(value: &Value) -> String {
    match value {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => format!("{u}u"),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_owned(),
        other => format!("a {}", other.type_of()),
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use cel::common::types::{CelInt, CelMap, CelMapKey, CelString};
    use cel::common::value::Val;

    use super::{describe, evaluate, Vars};
    use crate::expr::parse::compile;

    fn vars() -> Vars {
        let mut input: HashMap<CelMapKey<'static>, Box<dyn Val>> = HashMap::new();
        input.insert(CelMapKey::from("threshold"), Box::new(CelInt::from(12)));
        input.insert(
            CelMapKey::from("name".to_owned()),
            Box::new(CelString::from("ada".to_owned())),
        );
        let mut vars = Vars::new();
        vars.insert(
            "input".into(),
            Arc::from(Box::new(CelMap::from(input)) as Box<dyn Val>),
        );
        vars
    }

    fn eval(source: &str) -> Result<String, String> {
        let expr = compile(source).unwrap();
        evaluate(&expr, &vars(), |v| format!("{v:?}")).map_err(|e| describe(&e))
    }

    #[test]
    fn reads_borrowed_variables() {
        assert_eq!(eval("input.threshold > 10").unwrap(), "Bool(true)");
        assert_eq!(eval("input.name + '!'").unwrap(), "String(\"ada!\")");
    }

    #[test]
    fn errors_are_described() {
        assert_eq!(eval("input.nope").unwrap_err(), "no such key: nope");
        assert_eq!(
            eval("missing == 1").unwrap_err(),
            "undeclared reference to 'missing'"
        );
        assert_eq!(eval("1 / 0").unwrap_err(), "division by zero");
    }
}
