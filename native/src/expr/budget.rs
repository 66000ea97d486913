//! The cost budget of one evaluation: comprehension steps and bytes of values built.
//!
//! The interpreter has no hook for its loops, so after parsing, the tree is instrumented
//! with calls to functions registered here: every comprehension's range passes through
//! `@polyhost.range`, which charges one step per element (and the range's size when the
//! expression built it); every element a `map` or `filter` appends passes through
//! `@polyhost.item`, which charges its size (it is copied into the result); the result of
//! a function that can make a value larger than its arguments (`format`, `join`,
//! `strings.quote`, ...) passes through `@polyhost.grew`; `replace` is ours, sized before
//! it runs. The budget is per thread and per evaluation; once spent, every charge fails
//! and the evaluation reports the limit, even where CEL would absorb an error
//! (`error || true`).

use std::cell::Cell;

use cel::common::ast::{CallExpr, Expr};
use cel::common::types::{
    CelBytes, CelInt, CelList, CelMap, CelString, Kind, DYN_TYPE, INT_TYPE, STRING_TYPE,
};
use cel::common::value::{CowVal, Val};
use cel::{DeclarationError, Env, ExecutionError, IdedExpr};

/// The names of the instrumenting functions: `@` keeps CEL source from calling them.
pub const RANGE: &str = "@polyhost.range";
pub const ITEM: &str = "@polyhost.item";
pub const GREW: &str = "@polyhost.grew";
pub const REPLACE: &str = "@polyhost.replace";

/// Functions whose result may be larger than their arguments: charged by size.
const GROWING: [&str; 7] = [
    "format", "join", "quote", "encode", "split", "range", "flatten",
];

/// What one evaluation may still spend, and which limit it passed.
#[derive(Clone, Copy, Default)]
struct State {
    steps: u64,
    bytes: u64,
    exceeded: Option<Exceeded>,
}

thread_local! {
    static STATE: Cell<State> = const { Cell::new(State { steps: u64::MAX, bytes: u64::MAX, exceeded: None }) };
}

/// The limit an evaluation went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    Steps,
    Memory,
}

/// Runs `f` with a fresh budget of `steps` and `bytes` on this thread; also returns the
/// limit it went past, if any.
pub fn with_budget<R>(steps: u64, bytes: u64, f: impl FnOnce() -> R) -> (R, Option<Exceeded>) {
    let saved = STATE.with(|s| {
        s.replace(State {
            steps,
            bytes,
            exceeded: None,
        })
    });
    let result = f();
    let exceeded = STATE.with(|s| s.replace(saved)).exceeded;
    (result, exceeded)
}

fn charge(function: &str, steps: u64, bytes: u64) -> Result<(), ExecutionError> {
    STATE.with(|cell| {
        let mut state = cell.get();
        let exceeded = if state.exceeded.is_some() {
            state.exceeded
        } else if steps > state.steps {
            Some(Exceeded::Steps)
        } else if bytes > state.bytes {
            Some(Exceeded::Memory)
        } else {
            state.steps -= steps;
            state.bytes -= bytes;
            None
        };
        state.exceeded = exceeded;
        cell.set(state);
        match exceeded {
            None => Ok(()),
            Some(_) => Err(ExecutionError::function_error(
                function,
                "the evaluation's cost budget is spent",
            )),
        }
    })
}

/// Bytes a value takes, roughly: its text, and a few words per element and entry. Only
/// called on values whose cost is about to be paid anyway (they are being built or copied).
fn size_of(value: &dyn Val) -> u64 {
    const WORD: u64 = 16;
    match value.get_type().kind() {
        Kind::String => value
            .downcast_ref::<CelString>()
            .map_or(WORD, |s| WORD + s.inner().len() as u64),
        Kind::Bytes => value
            .downcast_ref::<CelBytes>()
            .map_or(WORD, |b| WORD + b.inner().len() as u64),
        Kind::List => match value.downcast_ref::<CelList>() {
            Some(list) => list
                .inner()
                .iter()
                .fold(WORD, |n, v| n.saturating_add(WORD + size_of(v.as_ref()))),
            None => WORD * (1 + count(value)),
        },
        Kind::Map => match value.downcast_ref::<CelMap>() {
            Some(map) => map.inner().values().fold(WORD, |n, v| {
                n.saturating_add(3 * WORD + size_of(v.as_ref()))
            }),
            None => WORD * (1 + 2 * count(value)),
        },
        _ => WORD,
    }
}

/// Elements of a list or entries of a map (what a comprehension over it iterates).
fn count(value: &dyn Val) -> u64 {
    value
        .as_sizer()
        .map_or(0, |s| u64::try_from(*s.size().inner()).unwrap_or(0))
}

fn one_arg<'b, 'v>(mut args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    args.pop()
        .ok_or_else(|| ExecutionError::function_error(RANGE, "missing argument"))
}

fn range<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let value = one_arg(args)?;
    // A variable's value is borrowed: iterating it builds nothing.
    let bytes = match &value {
        CowVal::Owned(v) => size_of(v.as_ref()),
        CowVal::Borrowed(_) => 0,
    };
    charge(RANGE, count(value.as_ref()).max(1), bytes)?;
    Ok(value)
}

fn item<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let value = one_arg(args)?;
    charge(ITEM, 0, size_of(value.as_ref()))?;
    Ok(value)
}

fn grew<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let value = one_arg(args)?;
    if let CowVal::Owned(v) = &value {
        charge(GREW, 0, size_of(v.as_ref()))?;
    }
    Ok(value)
}

fn text<'a>(value: &'a CowVal<'_, '_>) -> &'a str {
    value
        .downcast_ref::<CelString>()
        .map_or("", CelString::inner)
}

/// `replace`, with the result's size charged before it is built (`s.replace('', s)`
/// squares its length).
fn replace<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (this, from, to) = (text(&args[0]), text(&args[1]), text(&args[2]));
    let limit = match args.get(3).and_then(|n| n.downcast_ref::<CelInt>()) {
        Some(n) => usize::try_from(*n.inner()).ok(),
        None => None,
    };
    let found = if from.is_empty() {
        this.chars().count() + 1
    } else {
        this.matches(from).count()
    };
    let found = limit.map_or(found, |n| found.min(n));
    let size = (this.len() as u64).saturating_add((found as u64).saturating_mul(to.len() as u64));
    charge("replace", 0, size)?;
    let out = match limit {
        Some(n) => this.replacen(from, to, n),
        None => this.replace(from, to),
    };
    Ok(CowVal::owned(CelString::from(out)))
}

/// Registers the instrumenting functions on `env`.
///
/// # Errors
/// Not in practice: the names are this module's own.
pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload(RANGE, "polyhost_range", vec![DYN_TYPE], range)?;
    env.add_overload(ITEM, "polyhost_item", vec![DYN_TYPE], item)?;
    env.add_overload(GREW, "polyhost_grew", vec![DYN_TYPE], grew)?;
    env.add_member_overload(
        REPLACE,
        "polyhost_replace",
        STRING_TYPE,
        vec![STRING_TYPE, STRING_TYPE],
        replace,
    )?;
    env.add_member_overload(
        REPLACE,
        "polyhost_replace_n",
        STRING_TYPE,
        vec![STRING_TYPE, STRING_TYPE, INT_TYPE],
        replace,
    )
}

/// Instruments `expr`; returns whether anything in it can cost more than its size (a
/// comprehension or a growing function): only such expressions need a budget.
pub fn instrument(expr: &mut IdedExpr) -> bool {
    let mut ids = max_id(expr) + 1;
    walk(expr, &mut ids)
}

fn max_id(expr: &IdedExpr) -> u64 {
    let mut top = expr.id;
    each_child(expr, &mut |child| top = top.max(max_id(child)));
    top
}

fn each_child(expr: &IdedExpr, f: &mut impl FnMut(&IdedExpr)) {
    match &expr.expr {
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                f(target);
            }
            call.args.iter().for_each(&mut *f);
        }
        Expr::Select(select) => f(&select.operand),
        Expr::List(list) => list.elements.iter().for_each(&mut *f),
        Expr::Map(map) => {
            for entry in &map.entries {
                if let cel::common::ast::EntryExpr::MapEntry(e) = &entry.expr {
                    f(&e.key);
                    f(&e.value);
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                match &entry.expr {
                    cel::common::ast::EntryExpr::StructField(field) => f(&field.value),
                    cel::common::ast::EntryExpr::MapEntry(e) => {
                        f(&e.key);
                        f(&e.value);
                    }
                }
            }
        }
        Expr::Comprehension(c) => {
            for e in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                f(e);
            }
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn wrap(expr: &mut IdedExpr, function: &str, ids: &mut u64) {
    let inner = std::mem::take(expr);
    *expr = IdedExpr {
        id: *ids,
        expr: Expr::Call(CallExpr {
            func_name: function.to_owned(),
            target: None,
            args: vec![inner],
        }),
    };
    *ids += 1;
}

fn walk(expr: &mut IdedExpr, ids: &mut u64) -> bool {
    let mut costly = false;
    match &mut expr.expr {
        Expr::Call(call) => {
            if let Some(target) = &mut call.target {
                costly |= walk(target, ids);
            }
            for arg in &mut call.args {
                costly |= walk(arg, ids);
            }
            if call.func_name == "replace"
                && call.target.is_some()
                && (2..=3).contains(&call.args.len())
            {
                REPLACE.clone_into(&mut call.func_name);
                costly = true;
            } else if GROWING.contains(&call.func_name.as_str()) {
                wrap(expr, GREW, ids);
                return true;
            }
        }
        Expr::Select(select) => costly |= walk(&mut select.operand, ids),
        Expr::List(list) => {
            for e in &mut list.elements {
                costly |= walk(e, ids);
            }
        }
        Expr::Map(map) => {
            for entry in &mut map.entries {
                if let cel::common::ast::EntryExpr::MapEntry(e) = &mut entry.expr {
                    costly |= walk(&mut e.key, ids);
                    costly |= walk(&mut e.value, ids);
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &mut s.entries {
                match &mut entry.expr {
                    cel::common::ast::EntryExpr::StructField(field) => {
                        costly |= walk(&mut field.value, ids);
                    }
                    cel::common::ast::EntryExpr::MapEntry(e) => {
                        costly |= walk(&mut e.key, ids);
                        costly |= walk(&mut e.value, ids);
                    }
                }
            }
        }
        Expr::Comprehension(c) => {
            for e in [
                &mut c.iter_range,
                &mut c.accu_init,
                &mut c.loop_cond,
                &mut c.loop_step,
                &mut c.result,
            ] {
                walk(e, ids);
            }
            wrap(&mut c.iter_range, RANGE, ids);
            append_items(c.accu_var.as_str(), &mut c.loop_step, ids);
            costly = true;
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
    costly
}

/// Wraps the elements a `map`/`filter` step appends (`@result + [e]`, or
/// `cond ? @result + [e] : @result`) in `@polyhost.item`, keeping the step's shape, which
/// the interpreter recognises to append in place.
fn append_items(accu: &str, step: &mut IdedExpr, ids: &mut u64) {
    let Expr::Call(call) = &mut step.expr else {
        return;
    };
    if call.func_name == cel::common::ast::operators::CONDITIONAL && call.args.len() == 3 {
        append_items(accu, &mut call.args[1], ids);
        return;
    }
    if call.func_name != cel::common::ast::operators::ADD || call.args.len() != 2 {
        return;
    }
    let reads_accu = matches!(&call.args[0].expr, Expr::Ident(name) if name == accu);
    if let (true, Expr::List(list)) = (reads_accu, &mut call.args[1].expr) {
        for element in &mut list.elements {
            wrap(element, ITEM, ids);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{instrument, with_budget, Exceeded};
    use crate::expr::evaluate::{evaluate, Vars};
    use crate::expr::parse::compile;

    fn run(source: &str, steps: u64, bytes: u64) -> (Result<String, String>, Option<Exceeded>) {
        let mut expr = compile(source).unwrap();
        instrument(&mut expr);
        with_budget(steps, bytes, || {
            evaluate(&expr, &Vars::new(), |v| format!("{v:?}")).map_err(|e| format!("{e:?}"))
        })
    }

    #[test]
    fn comprehensions_are_charged_per_element() {
        let (value, exceeded) = run("[1, 2, 3].map(x, x * 2)", 3, 1 << 20);
        assert!(exceeded.is_none(), "{value:?}");
        assert!(value.unwrap().contains('6'));
        let bomb = "[0,1,2,3,4,5,6,7,8,9].map(a, [0,1,2,3,4,5,6,7,8,9].map(b, \
                    [0,1,2,3,4,5,6,7,8,9].map(c, [0,1,2,3,4,5,6,7,8,9].map(d, \
                    [0,1,2,3,4,5,6,7,8,9].map(e, [0,1,2,3,4,5,6,7,8,9])))))";
        let (_, exceeded) = run(bomb, 10_000, u64::MAX);
        assert_eq!(exceeded, Some(Exceeded::Steps));
        // An error the comprehension would absorb still reports the budget.
        let (_, exceeded) = run(
            "[1, 2].exists(x, [1, 2, 3].all(y, y > 0)) || true",
            3,
            u64::MAX,
        );
        assert_eq!(exceeded, Some(Exceeded::Steps));
    }

    #[test]
    fn built_values_are_charged_by_size() {
        let doubling = "['ab'].map(a, [a + a].map(b, [b + b].map(c, [c + c].map(d, \
                        [d + d].map(e, [e + e].map(f, f + f))))))";
        let (_, exceeded) = run(doubling, u64::MAX, 64);
        assert_eq!(exceeded, Some(Exceeded::Memory));
        let (value, exceeded) = run(doubling, u64::MAX, 1 << 20);
        assert!(exceeded.is_none(), "{value:?}");
        let squaring = "'aaaaaaaaaa'.replace('', 'aaaaaaaaaa'.replace('', 'aaaaaaaaaa'))";
        let (_, exceeded) = run(squaring, u64::MAX, 500);
        assert_eq!(exceeded, Some(Exceeded::Memory));
        let (value, _) = run(
            "'a-b-c'.replace('-', '+', 1) + 'x'.replace('x', 'y')",
            9,
            1 << 10,
        );
        assert_eq!(value.unwrap(), "String(\"a+b-cy\")");
        let (_, exceeded) = run(
            "strings.quote(strings.quote(strings.quote('\"\"\"\"')))",
            9,
            40,
        );
        assert_eq!(exceeded, Some(Exceeded::Memory));
    }

    #[test]
    fn cheap_expressions_need_no_budget() {
        let mut expr = compile("input.a + size(input.b) > 3 && string(1) == '1'").unwrap();
        assert!(!instrument(&mut expr));
        let mut expr = compile("input.rows.exists(r, r > 1)").unwrap();
        assert!(instrument(&mut expr));
    }
}
