//! The native nodes this module ships, and how to add one.
//!
//! # Adding a native node
//!
//! 1. Write a module named for its domain (say `native/src/geo.rs`) with a unit struct
//!    that implements [`NativeNode`]: a dotted `name()` such as `"geo.distance"`, a
//!    one-sentence `description()`, an `input_schema()` (a JSON Schema object with
//!    `"additionalProperties": false`) and an `output_schema()`, and `run()`.
//! 2. In `run()`, read the parameters with [`crate::params::Params`] (its errors name the
//!    parameter) and call `finish()` so unknown ones are refused; return a
//!    [`NodeFailure`](crate::node::NodeFailure) with a stable code for anything that goes
//!    wrong; call `ctx.check()?` between chunks of long work (every 64 KiB or 10k rows)
//!    so a cancel lands.
//! 3. Give every file path parameter `"format": "path"` in the input schema (nested ones
//!    too, like `output.path`): the host resolves such parameters against its
//!    `allowed_roots` and refuses paths outside them before the node runs. Still refuse
//!    relative paths in the node (`Params::path` does), and open files through
//!    [`crate::files`], which refuses FIFOs, sockets and devices (they would block the node
//!    past its timeout). Keep to the limits in [`crate::node::NodeCtx::limits`].
//! 4. Declare the module in `lib.rs` and add one line to [`builtin`] below.
//! 5. Add Rust unit tests beside the code and a Python test under `tests/native/`;
//!    `native_nodes()` lists the node and `call_native("geo.distance", ...)` runs it.
//!
//! `run()` is called without the GIL, possibly on several threads at once. A panic is
//! caught and reported as a `panic` failure of that run; it never takes the host down,
//! but it is still a bug.

use std::sync::OnceLock;

use crate::node::NativeNode;

/// Every native node, in the order `native_nodes()` lists them.
#[must_use]
pub fn builtin() -> Vec<Box<dyn NativeNode>> {
    vec![
        Box::new(crate::csv::CsvRead),
        Box::new(crate::csv::CsvQuery),
        Box::new(crate::csv::CsvWrite),
        Box::new(crate::text::TextStats),
        Box::new(crate::diagnostic::DebugPanic),
    ]
}

/// The registered nodes, built once.
pub fn nodes() -> &'static [Box<dyn NativeNode>] {
    static NODES: OnceLock<Vec<Box<dyn NativeNode>>> = OnceLock::new();
    NODES.get_or_init(builtin)
}

/// The node called `name`.
#[must_use]
pub fn find(name: &str) -> Option<&'static dyn NativeNode> {
    nodes().iter().find(|n| n.name() == name).map(AsRef::as_ref)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn names_are_unique_and_schemas_are_closed_objects() {
        let nodes = nodes();
        let mut names: Vec<&str> = nodes.iter().map(|n| n.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), nodes.len());
        for node in nodes {
            let schema = node.input_schema();
            assert_eq!(schema["type"], "object", "{}", node.name());
            assert_eq!(
                schema["additionalProperties"],
                Value::Bool(false),
                "{}",
                node.name()
            );
            assert_eq!(node.output_schema()["type"], "object", "{}", node.name());
            assert!(!node.description().is_empty());
            assert!(std::ptr::eq(find(node.name()).unwrap(), &**node));
        }
        assert!(find("no.such").is_none());
    }

    /// Every property called `path`, at any depth, is marked for the host's root check.
    #[test]
    fn path_parameters_say_so() {
        fn walk(schema: &Value, node: &str) {
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                return;
            };
            for (name, property) in properties {
                if name == "path" {
                    assert_eq!(property["format"], "path", "{node}: {name}");
                }
                walk(property, node);
            }
        }
        for node in nodes() {
            walk(&node.input_schema(), node.name());
        }
    }
}
