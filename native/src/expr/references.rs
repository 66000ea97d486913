//! The free variables an expression reads.
//!
//! The crate's own `references()` also lists the variables that comprehension macros
//! (`all`, `exists`, `exists_one`, `map`, `filter`) bind, so this walks the AST itself,
//! keeping a stack of the names bound where it is. Names CEL itself resolves are not
//! variables: the qualified functions of the extensions (`optional.of(1)`,
//! `lists.range(3)`) and type names (`int`, `google.protobuf.Timestamp`).

use std::collections::BTreeSet;

use cel::common::ast::{EntryExpr, Expr};
use cel::IdedExpr;

use super::parse::env;

/// The functions called by a qualified name that the environment evaluates (a test checks
/// each against it).
pub const QUALIFIED_FUNCTIONS: [&str; 23] = [
    "base64.decode",
    "base64.encode",
    "lists.range",
    "math.abs",
    "math.bitAnd",
    "math.bitNot",
    "math.bitOr",
    "math.bitShiftLeft",
    "math.bitShiftRight",
    "math.bitXor",
    "math.ceil",
    "math.floor",
    "math.isFinite",
    "math.isInf",
    "math.isNaN",
    "math.round",
    "math.sign",
    "math.sqrt",
    "math.trunc",
    "optional.none",
    "optional.of",
    "optional.ofNonZeroValue",
    "strings.quote",
];

/// `a.b.c` for an identifier or a chain of field selections on one.
fn qualified_name(expr: &IdedExpr) -> Option<String> {
    match &expr.expr {
        Expr::Ident(name) => Some(name.strip_prefix('.').unwrap_or(name).to_owned()),
        Expr::Select(select) if !select.test => {
            let mut name = qualified_name(&select.operand)?;
            name.push('.');
            name.push_str(&select.field);
            Some(name)
        }
        _ => None,
    }
}

/// Whether `expr` spells a type name CEL knows (`int`, `google.protobuf.Timestamp`).
fn is_type_name(expr: &IdedExpr) -> bool {
    qualified_name(expr).is_some_and(|name| env().types().find_type(&name).is_some())
}

/// Sorted, unique top-level identifiers that `expr` reads from its scope.
#[must_use]
pub fn free_variables(expr: &IdedExpr) -> Vec<String> {
    let mut found = BTreeSet::new();
    let mut bound = Vec::new();
    walk(expr, &mut bound, &mut found);
    found.into_iter().collect()
}

fn walk<'a>(expr: &'a IdedExpr, bound: &mut Vec<&'a str>, found: &mut BTreeSet<String>) {
    match &expr.expr {
        Expr::Ident(_) | Expr::Select(_) if is_type_name(expr) => {}
        Expr::Ident(name) => {
            // `.name` is the absolute spelling of `name`; `a.b` parses as a select on `a`.
            let name = name.strip_prefix('.').unwrap_or(name);
            let root = name.split('.').next().unwrap_or(name);
            if !bound.contains(&root) {
                found.insert(root.to_owned());
            }
        }
        Expr::Select(select) => walk(&select.operand, bound, found),
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                let qualified = qualified_name(target)
                    .map(|name| format!("{name}.{}", call.func_name))
                    .is_some_and(|name| QUALIFIED_FUNCTIONS.contains(&name.as_str()));
                if !qualified {
                    walk(target, bound, found);
                }
            }
            for arg in &call.args {
                walk(arg, bound, found);
            }
        }
        Expr::List(list) => {
            for element in &list.elements {
                walk(element, bound, found);
            }
        }
        Expr::Map(map) => {
            for entry in &map.entries {
                if let EntryExpr::MapEntry(e) = &entry.expr {
                    walk(&e.key, bound, found);
                    walk(&e.value, bound, found);
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                match &entry.expr {
                    EntryExpr::StructField(f) => walk(&f.value, bound, found),
                    EntryExpr::MapEntry(e) => {
                        walk(&e.key, bound, found);
                        walk(&e.value, bound, found);
                    }
                }
            }
        }
        Expr::Comprehension(c) => {
            // The range and the accumulator's start are read outside the loop's names.
            walk(&c.iter_range, bound, found);
            walk(&c.accu_init, bound, found);
            let depth = bound.len();
            bound.push(c.iter_var.as_str());
            if let Some(second) = &c.iter_var2 {
                bound.push(second.as_str());
            }
            bound.push(c.accu_var.as_str());
            walk(&c.loop_cond, bound, found);
            walk(&c.loop_step, bound, found);
            walk(&c.result, bound, found);
            bound.truncate(depth);
        }
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

#[cfg(test)]
mod tests {
    use super::free_variables;
    use crate::expr::parse::compile;

    fn refs(source: &str) -> Vec<String> {
        free_variables(&compile(source).unwrap())
    }

    #[test]
    fn macro_variables_are_not_free() {
        assert_eq!(
            refs("totals.rows.exists(r, r.sum > input.threshold)"),
            ["input", "totals"]
        );
        assert_eq!(
            refs("a.map(x, x.filter(y, y > x && y < b).all(z, z != c)).exists_one(w, w == d)"),
            ["a", "b", "c", "d"]
        );
        assert_eq!(refs("x.exists(x, x > 0)"), ["x"]);
        assert_eq!(refs("[1, 2].map(i, i * k)"), ["k"]);
        assert_eq!(
            refs("has(node.field) && {'k': v}.k == .w"),
            ["node", "v", "w"]
        );
    }

    #[test]
    fn qualified_functions_and_types_are_not_variables() {
        assert_eq!(
            refs("optional.of(a).orValue(1) + lists.range(3)[0] + math.abs(b)"),
            ["a", "b"]
        );
        assert_eq!(
            refs("type(t) == google.protobuf.Timestamp && type(1) == int"),
            ["t"]
        );
        assert_eq!(refs("strings.size() + math.x"), ["math", "strings"]);
    }

    #[test]
    fn functions_are_not_variables() {
        assert_eq!(refs("size(a) + int(b) + 1"), ["a", "b"]);
        assert!(refs("1 + 2").is_empty());
    }
}

#[cfg(test)]
mod evaluated {
    use super::QUALIFIED_FUNCTIONS;
    use crate::expr::evaluate::{evaluate, Vars};
    use crate::expr::parse::compile;

    /// Every qualified function accepted as such is one the environment evaluates.
    #[test]
    fn each_qualified_function_evaluates() {
        let calls = [
            "base64.decode('YQ==')",
            "base64.encode(b'a')",
            "lists.range(3)",
            "math.abs(-1)",
            "math.bitAnd(3, 1)",
            "math.bitNot(1)",
            "math.bitOr(2, 1)",
            "math.bitShiftLeft(1, 2)",
            "math.bitShiftRight(4, 1)",
            "math.bitXor(3, 1)",
            "math.ceil(1.5)",
            "math.floor(1.5)",
            "math.isFinite(1.0)",
            "math.isInf(1.0)",
            "math.isNaN(1.0)",
            "math.round(1.5)",
            "math.sign(-2)",
            "math.sqrt(4)",
            "math.trunc(1.5)",
            "optional.none()",
            "optional.of(1)",
            "optional.ofNonZeroValue(1)",
            "strings.quote('a')",
        ];
        assert_eq!(calls.len(), QUALIFIED_FUNCTIONS.len());
        for (call, name) in calls.iter().zip(QUALIFIED_FUNCTIONS) {
            assert!(
                call.starts_with(&format!("{name}(")),
                "{call} is not {name}"
            );
            let expr = compile(call).unwrap();
            let value = evaluate(&expr, &Vars::new(), |v| format!("{v:?}"));
            assert!(value.is_ok(), "{call}: {:?}", value.err());
        }
        for source in [
            "type(timestamp('2024-01-01T00:00:00Z')) == google.protobuf.Timestamp",
            "type(1) == int",
        ] {
            let expr = compile(source).unwrap();
            let value = evaluate(&expr, &Vars::new(), |v| format!("{v:?}")).unwrap();
            assert_eq!(value, "Bool(true)", "{source}");
        }
    }
}
