//! `debug.panic`: a diagnostic node that panics with the given message.
//!
//! It exists to check, in a running host, that a panicking native node fails only its own
//! run (as a `panic` failure) and leaves the process alive.

use serde_json::{json, Value};

use crate::node::{NativeNode, NodeCtx, NodeFailure};
use crate::params::Params;

/// The `debug.panic` node.
pub struct DebugPanic;

impl NativeNode for DebugPanic {
    fn name(&self) -> &'static str {
        "debug.panic"
    }

    fn description(&self) -> &'static str {
        "Diagnostic: panic with `message`, to check that a panicking native node fails only its own run."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"message": {"type": "string", "default": "debug.panic was asked to panic"}},
            "additionalProperties": false,
        })
    }

    fn output_schema(&self) -> Value {
        json!({"type": "object", "additionalProperties": false})
    }

    fn run(&self, params: Value, _ctx: &NodeCtx) -> Result<Value, NodeFailure> {
        let mut p = Params::new(params)?;
        let message = p
            .opt_str("message")?
            .unwrap_or_else(|| "debug.panic was asked to panic".to_owned());
        p.finish()?;
        panic!("{message}");
    }
}
