//! The `where` language of `csv.query`: parsed and type-checked once, evaluated per row.
//!
//! ```text
//! expr       := or
//! or         := and ("or" and)*
//! and        := unary ("and" unary)*
//! unary      := "not" unary | "(" expr ")" | test
//! test       := column op literal | literal op column
//!             | column ["not"] "in" "(" literal ("," literal)* ")"
//!             | column "is" ["not"] "null"
//! op         := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//! literal    := number | 'text' | "text" | true | false | null
//! column     := name | `any text`
//! ```
//!
//! Keywords are case-insensitive; inside a quoted literal a doubled quote is one quote.
//! A test on a null field is unknown, and logic is three-valued as in SQL (`not unknown`
//! is unknown, `false and unknown` is false); a row passes when the whole predicate is
//! true. `col = null` means `col is null`. Ints and floats compare as numbers; strings
//! compare by code point.

mod parse;

pub use parse::{parse, Ast, Lit, Op};

use super::types::{Cell, ColType};
use crate::node::NodeFailure;
use parse::FIELD;

/// One typed test against a slot's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Int(Op, i64),
    Num(Op, f64),
    Str(Op, Box<str>),
    Bool(Op, bool),
    InInt(Vec<i64>),
    InNum(Vec<f64>),
    InStr(Vec<Box<str>>),
    InBool(Vec<bool>),
}

/// A compiled predicate over the decoded cells of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    Test {
        slot: usize,
        test: Test,
        negated: bool,
    },
    IsNull {
        slot: usize,
        negated: bool,
    },
    And(Vec<Predicate>),
    Or(Vec<Predicate>),
    Not(Box<Predicate>),
}

fn type_error(column: &str, ty: ColType, lit: &Lit, hint: &str) -> NodeFailure {
    NodeFailure::invalid(
        FIELD,
        format!(
            "in `where`, column '{column}' is {} and cannot be compared with {}{hint}",
            ty.name(),
            lit.describe()
        ),
    )
}

fn typed_test(column: &str, ty: ColType, op: Op, lit: &Lit) -> Result<Test, NodeFailure> {
    #[allow(clippy::cast_precision_loss)] // an int literal against a float column
    let test = match (ty, lit) {
        (ColType::Int, Lit::Int(i)) => Test::Int(op, *i),
        (ColType::Int | ColType::Float, Lit::Float(f)) => Test::Num(op, *f),
        (ColType::Float, Lit::Int(i)) => Test::Num(op, *i as f64),
        (ColType::String, Lit::Str(s)) => Test::Str(op, s.as_str().into()),
        (ColType::Bool, Lit::Bool(b)) if matches!(op, Op::Eq | Op::Ne) => Test::Bool(op, *b),
        (ColType::Bool, Lit::Bool(_)) => {
            return Err(NodeFailure::invalid(
                FIELD,
                format!(
                    "in `where`, column '{column}' is bool: use = or != rather than {}",
                    op.symbol()
                ),
            ))
        }
        (ColType::String, Lit::Int(_) | Lit::Float(_)) => {
            return Err(type_error(
                column,
                ty,
                lit,
                "; quote the literal to compare text",
            ))
        }
        _ => return Err(type_error(column, ty, lit, "")),
    };
    Ok(test)
}

fn membership(column: &str, ty: ColType, lits: &[Lit]) -> Result<Test, NodeFailure> {
    let mut tests = Vec::with_capacity(lits.len());
    for lit in lits {
        if *lit == Lit::Null {
            return Err(NodeFailure::invalid(
                FIELD,
                format!("in `where`, `{column} in (...)` cannot list null; use `{column} is null`"),
            ));
        }
        tests.push(typed_test(column, ty, Op::Eq, lit)?);
    }
    let all_int = tests.iter().all(|t| matches!(t, Test::Int(..)));
    Ok(match ty {
        ColType::Int if all_int => Test::InInt(
            tests
                .iter()
                .filter_map(|t| {
                    if let Test::Int(_, i) = t {
                        Some(*i)
                    } else {
                        None
                    }
                })
                .collect(),
        ),
        #[allow(clippy::cast_precision_loss)]
        ColType::Int | ColType::Float => Test::InNum(
            tests
                .iter()
                .filter_map(|t| match t {
                    Test::Int(_, i) => Some(*i as f64),
                    Test::Num(_, f) => Some(*f),
                    _ => None,
                })
                .collect(),
        ),
        ColType::String => Test::InStr(
            tests
                .into_iter()
                .filter_map(|t| {
                    if let Test::Str(_, s) = t {
                        Some(s)
                    } else {
                        None
                    }
                })
                .collect(),
        ),
        ColType::Bool => Test::InBool(
            tests
                .iter()
                .filter_map(|t| {
                    if let Test::Bool(_, b) = t {
                        Some(*b)
                    } else {
                        None
                    }
                })
                .collect(),
        ),
    })
}

impl Predicate {
    /// Resolves the columns of `ast` with `resolve` (name to slot and type) and checks
    /// every literal against its column's type.
    ///
    /// # Errors
    /// `invalid_parameters` for `where`: an unknown column (naming it), or a literal of the
    /// wrong type.
    pub fn compile(
        ast: &Ast,
        resolve: &impl Fn(&str) -> Option<(usize, ColType)>,
        known: &[String],
    ) -> Result<Predicate, NodeFailure> {
        let lookup = |column: &str| {
            resolve(column).ok_or_else(|| {
                NodeFailure::invalid(
                    FIELD,
                    format!(
                        "unknown column '{column}' in `where`; the columns are {}",
                        known.join(", ")
                    ),
                )
            })
        };
        Ok(match ast {
            Ast::Cmp { column, op, lit } => {
                let (slot, ty) = lookup(column)?;
                match (lit, op) {
                    (Lit::Null, Op::Eq | Op::Ne) => Predicate::IsNull {
                        slot,
                        negated: *op == Op::Ne,
                    },
                    (Lit::Null, _) => {
                        return Err(NodeFailure::invalid(
                            FIELD,
                            format!(
                                "in `where`, null can only be compared with = or !=; \
                                 use `{column} is null`"
                            ),
                        ))
                    }
                    _ => Predicate::Test {
                        slot,
                        test: typed_test(column, ty, *op, lit)?,
                        negated: false,
                    },
                }
            }
            Ast::In {
                column,
                lits,
                negated,
            } => {
                let (slot, ty) = lookup(column)?;
                Predicate::Test {
                    slot,
                    test: membership(column, ty, lits)?,
                    negated: *negated,
                }
            }
            Ast::IsNull { column, negated } => Predicate::IsNull {
                slot: lookup(column)?.0,
                negated: *negated,
            },
            Ast::And(terms) => Predicate::And(
                terms
                    .iter()
                    .map(|t| Self::compile(t, resolve, known))
                    .collect::<Result<_, _>>()?,
            ),
            Ast::Or(terms) => Predicate::Or(
                terms
                    .iter()
                    .map(|t| Self::compile(t, resolve, known))
                    .collect::<Result<_, _>>()?,
            ),
            Ast::Not(a) => Predicate::Not(Box::new(Self::compile(a, resolve, known)?)),
        })
    }

    /// True, false, or unknown (`None`) for a row's cells.
    #[must_use]
    pub fn eval(&self, cells: &[Cell<'_>]) -> Option<bool> {
        match self {
            Predicate::Test {
                slot,
                test,
                negated,
            } => test.eval(&cells[*slot]).map(|r| r != *negated),
            Predicate::IsNull { slot, negated } => {
                Some(matches!(cells[*slot], Cell::Null) != *negated)
            }
            // Three-valued: false as soon as a term is false, true when all are true.
            Predicate::And(terms) => {
                let mut known = true;
                for term in terms {
                    match term.eval(cells) {
                        Some(false) => return Some(false),
                        Some(true) => {}
                        None => known = false,
                    }
                }
                known.then_some(true)
            }
            Predicate::Or(terms) => {
                let mut known = true;
                for term in terms {
                    match term.eval(cells) {
                        Some(true) => return Some(true),
                        Some(false) => {}
                        None => known = false,
                    }
                }
                known.then_some(false)
            }
            Predicate::Not(a) => a.eval(cells).map(|r| !r),
        }
    }

    /// The number of tests and operators: the work of one evaluation.
    #[must_use]
    pub fn size(&self) -> usize {
        match self {
            Predicate::Test { .. } | Predicate::IsNull { .. } => 1,
            Predicate::And(terms) | Predicate::Or(terms) => {
                1 + terms.iter().map(Predicate::size).sum::<usize>()
            }
            Predicate::Not(inner) => 1 + inner.size(),
        }
    }

    /// Whether a row passes: the predicate is true (not false, not unknown).
    #[must_use]
    pub fn passes(&self, cells: &[Cell<'_>]) -> bool {
        self.eval(cells) == Some(true)
    }
}

impl Test {
    #[allow(clippy::cast_precision_loss)] // int cells against float literals
    fn eval(&self, cell: &Cell<'_>) -> Option<bool> {
        let number = |cell: &Cell<'_>| match *cell {
            Cell::Int(i) => Some(i as f64),
            Cell::Float(f) => Some(f),
            _ => None,
        };
        Some(match (self, cell) {
            (_, Cell::Null) => return None,
            (Test::Int(op, lit), Cell::Int(v)) => op.holds(v.cmp(lit)),
            (Test::Num(op, lit), _) => op.holds(number(cell)?.partial_cmp(lit)?),
            (Test::Str(op, lit), Cell::Str(v)) => op.holds((*v).cmp(&**lit)),
            (Test::Bool(op, lit), Cell::Bool(v)) => op.holds(v.cmp(lit)),
            (Test::InInt(lits), Cell::Int(v)) => lits.contains(v),
            (Test::InNum(lits), _) => {
                let v = number(cell)?;
                lits.contains(&v)
            }
            (Test::InStr(lits), Cell::Str(v)) => lits.iter().any(|l| &**l == *v),
            (Test::InBool(lits), Cell::Bool(v)) => lits.contains(v),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [(&str, ColType); 4] = [
        ("qty", ColType::Int),
        ("price", ColType::Float),
        ("city", ColType::String),
        ("ok", ColType::Bool),
    ];

    fn compile(source: &str) -> Result<Predicate, NodeFailure> {
        let known: Vec<String> = COLUMNS.iter().map(|(n, _)| (*n).to_owned()).collect();
        let resolve = |name: &str| {
            COLUMNS
                .iter()
                .position(|(n, _)| *n == name)
                .map(|i| (i, COLUMNS[i].1))
        };
        Predicate::compile(&parse(source, 100)?, &resolve, &known)
    }

    fn eval(source: &str, row: &[Cell<'_>]) -> Option<bool> {
        compile(source).unwrap().eval(row)
    }

    const ROW: [Cell<'static>; 4] = [
        Cell::Int(5),
        Cell::Float(2.5),
        Cell::Str("oslo"),
        Cell::Bool(true),
    ];

    #[test]
    fn comparisons_and_logic() {
        assert_eq!(eval("qty > 3 and price <= 2.5", &ROW), Some(true));
        assert_eq!(eval("qty >= 6 or city = 'oslo'", &ROW), Some(true));
        assert_eq!(eval("not (qty = 5)", &ROW), Some(false));
        assert_eq!(eval("3 < qty", &ROW), Some(true));
        assert_eq!(eval("qty > 4.5 AND city <> \"rome\"", &ROW), Some(true));
        assert_eq!(eval("price = 2.5 and ok = true", &ROW), Some(true));
        assert_eq!(eval("price > 2", &ROW), Some(true));
        assert_eq!(eval("city < 'paris'", &ROW), Some(true));
    }

    #[test]
    fn membership_and_nulls() {
        assert_eq!(eval("qty in (1, 5, 9)", &ROW), Some(true));
        assert_eq!(eval("qty not in (1, 2.5)", &ROW), Some(true));
        assert_eq!(eval("city in ('rome', 'oslo')", &ROW), Some(true));
        let nulls = [Cell::Null, Cell::Null, Cell::Str("x"), Cell::Null];
        assert_eq!(eval("qty > 1", &nulls), None);
        assert_eq!(eval("not qty > 1", &nulls), None);
        assert_eq!(eval("qty > 1 or city = 'x'", &nulls), Some(true));
        assert_eq!(eval("qty > 1 and city = 'y'", &nulls), Some(false));
        assert_eq!(
            eval("qty is null and price is not null", &nulls),
            Some(false)
        );
        assert_eq!(eval("qty = null", &nulls), Some(true));
        assert_eq!(eval("city != null", &nulls), Some(true));
    }

    #[test]
    fn unknown_columns_and_type_errors() {
        let err = compile("qty > 1 and pricee < 3").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("where"));
        assert!(err.message.contains("'pricee'"), "{}", err.message);
        assert!(compile("city > 3")
            .unwrap_err()
            .message
            .contains("quote the literal"));
        assert!(compile("qty = 'x'").is_err());
        assert!(compile("ok < true").is_err());
        assert!(compile("qty < null").is_err());
        assert!(compile("qty in (1, null)").is_err());
    }
}
