//! Reading a node's parameters with errors that name the parameter.
//!
//! ```
//! # use serde_json::json;
//! # use _native::params::Params;
//! let mut p = Params::new(json!({"text": "hi", "top": 3})).unwrap();
//! let text = p.opt_str("text").unwrap();
//! let top = p.opt_u64("top").unwrap().unwrap_or(10);
//! p.finish().unwrap(); // refuses any parameter not taken
//! assert_eq!((text.as_deref(), top), (Some("hi"), 3));
//! ```

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::node::{codes, NodeFailure};

/// The parameters object, taken key by key.
#[derive(Debug)]
pub struct Params {
    map: Map<String, Value>,
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `invalid_parameters` for `field`: expected `what`, got `value`.
#[must_use]
pub fn wrong_type(field: &str, what: &str, value: &Value) -> NodeFailure {
    NodeFailure::invalid(
        field,
        format!("`{field}` must be {what}, not {}", kind(value)),
    )
}

impl Params {
    /// Wraps `params`, which must be an object.
    ///
    /// # Errors
    /// `invalid_parameters` when `params` is not an object.
    pub fn new(params: Value) -> Result<Self, NodeFailure> {
        match params {
            Value::Object(map) => Ok(Params { map }),
            other => Err(NodeFailure::new(
                codes::INVALID_PARAMETERS,
                format!("parameters must be an object, not {}", kind(&other)),
            )),
        }
    }

    /// Takes `field` out; `None` when absent or null.
    pub fn take(&mut self, field: &str) -> Option<Value> {
        match self.map.shift_remove(field) {
            None | Some(Value::Null) => None,
            some => some,
        }
    }

    /// A string parameter.
    ///
    /// # Errors
    /// `invalid_parameters` when present but not a string.
    pub fn opt_str(&mut self, field: &str) -> Result<Option<String>, NodeFailure> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type(field, "a string", &other)),
        }
    }

    /// A required string parameter.
    ///
    /// # Errors
    /// `invalid_parameters` when absent or not a string.
    pub fn str(&mut self, field: &str) -> Result<String, NodeFailure> {
        self.opt_str(field)?
            .ok_or_else(|| NodeFailure::invalid(field, format!("`{field}` is required")))
    }

    /// A boolean parameter, `default` when absent.
    ///
    /// # Errors
    /// `invalid_parameters` when present but not a boolean.
    pub fn bool_or(&mut self, field: &str, default: bool) -> Result<bool, NodeFailure> {
        match self.take(field) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(b),
            Some(other) => Err(wrong_type(field, "a boolean", &other)),
        }
    }

    /// A non-negative integer parameter.
    ///
    /// # Errors
    /// `invalid_parameters` when present but not a non-negative integer.
    pub fn opt_u64(&mut self, field: &str) -> Result<Option<u64>, NodeFailure> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(other) => Err(wrong_type(field, "a non-negative integer", &other)),
        }
    }

    /// A single ASCII character, e.g. a delimiter; `default` when absent.
    ///
    /// # Errors
    /// `invalid_parameters` when present but not a one-character ASCII string.
    pub fn byte_or(&mut self, field: &str, default: u8) -> Result<u8, NodeFailure> {
        match self.opt_str(field)? {
            None => Ok(default),
            Some(s) if s.len() == 1 && s.is_ascii() && s != "\n" && s != "\r" => {
                Ok(s.as_bytes()[0])
            }
            Some(s) => Err(NodeFailure::invalid(
                field,
                format!("`{field}` must be one ASCII character other than a line break, not {s:?}"),
            )),
        }
    }

    /// A list of strings.
    ///
    /// # Errors
    /// `invalid_parameters` when present but not an array of strings.
    pub fn opt_str_list(&mut self, field: &str) -> Result<Option<Vec<String>>, NodeFailure> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    other => Err(wrong_type(field, "an array of strings", &other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(wrong_type(field, "an array of strings", &other)),
        }
    }

    /// An object parameter.
    ///
    /// # Errors
    /// `invalid_parameters` when present but not an object.
    pub fn opt_object(&mut self, field: &str) -> Result<Option<Map<String, Value>>, NodeFailure> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(wrong_type(field, "an object", &other)),
        }
    }

    /// An absolute path parameter.
    ///
    /// # Errors
    /// `invalid_parameters` when absent or not a string, `invalid_path` when relative.
    pub fn path(&mut self, field: &str) -> Result<PathBuf, NodeFailure> {
        absolute_path(field, self.str(field)?)
    }

    /// Succeeds when every parameter was taken.
    ///
    /// # Errors
    /// `invalid_parameters` naming the first parameter nobody took.
    pub fn finish(self) -> Result<(), NodeFailure> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(key) => Err(NodeFailure::invalid(
                key.as_str(),
                format!("unknown parameter `{key}`"),
            )),
        }
    }
}

/// `path` as a `PathBuf`, refused unless absolute.
///
/// # Errors
/// `invalid_path` for an empty or relative path.
pub fn absolute_path(field: &str, path: String) -> Result<PathBuf, NodeFailure> {
    let buf = PathBuf::from(path);
    if buf.is_absolute() {
        Ok(buf)
    } else {
        Err(NodeFailure::new(
            codes::INVALID_PATH,
            format!(
                "`{field}` must be an absolute path, not {:?}",
                buf.display().to_string()
            ),
        )
        .with_field(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_name_the_parameter() {
        let mut p = Params::new(json!({"a": 1, "b": "x", "c": null})).unwrap();
        let err = p.opt_str("a").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("a"));
        assert!(err.message.contains("not a number"), "{}", err.message);
        assert_eq!(p.opt_str("c").unwrap(), None);
        let err = p.finish().unwrap_err();
        assert_eq!(
            (err.code.as_str(), err.field.as_deref()),
            (codes::INVALID_PARAMETERS, Some("b"))
        );
    }

    #[test]
    fn paths_must_be_absolute() {
        let err = absolute_path("path", "data.csv".into()).unwrap_err();
        assert_eq!(err.code, codes::INVALID_PATH);
        assert!(absolute_path("path", "/tmp/x.csv".into()).is_ok());
    }

    #[test]
    fn single_bytes() {
        let mut p = Params::new(json!({"d": ";", "e": "ab", "f": "\n"})).unwrap();
        assert_eq!(p.byte_or("d", b',').unwrap(), b';');
        assert!(p.byte_or("e", b',').is_err());
        assert!(p.byte_or("f", b',').is_err());
        assert_eq!(p.byte_or("g", b',').unwrap(), b',');
    }
}
