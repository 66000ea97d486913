//! The free variables an expression reads.
//!
//! The crate's own `references()` also lists the variables that comprehension macros
//! (`all`, `exists`, `exists_one`, `map`, `filter`) bind, so this walks the AST itself,
//! keeping a stack of the names bound where it is.

use std::collections::BTreeSet;

use cel::common::ast::{EntryExpr, Expr};
use cel::IdedExpr;

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
                walk(target, bound, found);
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
    fn functions_are_not_variables() {
        assert_eq!(refs("size(a) + int(b) + 1"), ["a", "b"]);
        assert!(refs("1 + 2").is_empty());
    }
}
