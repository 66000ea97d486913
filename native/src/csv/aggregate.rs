//! Grouping and aggregates: the only state a grouped query keeps while it streams.
//!
//! Groups are found by a byte encoding of their typed key in a hash map and kept in order
//! of first appearance. Aggregates skip null values: `count` without a column counts rows,
//! with one counts its non-null values; `sum` of no values is 0, `min`, `max` and `mean` of
//! none are null. Int sums stay exact (128-bit) and are returned as floats only beyond the
//! 64-bit range.

use hashbrown::HashMap;

use super::scan::{Flow, Sink};
use super::types::{Cell, ColType, Scalar};
use crate::node::NodeFailure;

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOp {
    Count,
    Sum,
    Min,
    Max,
    Mean,
}

impl AggOp {
    /// The function called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "count" => AggOp::Count,
            "sum" => AggOp::Sum,
            "min" => AggOp::Min,
            "max" => AggOp::Max,
            "mean" => AggOp::Mean,
            _ => return None,
        })
    }
}

/// One aggregate of a query: the function, and the slot and type of its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggSpec {
    pub op: AggOp,
    pub input: Option<(usize, ColType)>,
}

impl AggSpec {
    fn start(&self) -> State {
        match (self.op, self.input) {
            (AggOp::Count, _) => State::Count(0),
            (AggOp::Sum, Some((_, ColType::Int))) => State::SumInt(0),
            (AggOp::Sum, _) => State::SumFloat(0.0),
            (AggOp::Min, _) => State::Extreme(Scalar::Null, false),
            (AggOp::Max, _) => State::Extreme(Scalar::Null, true),
            (AggOp::Mean, _) => State::Mean(0.0, 0),
        }
    }
}

/// The running value of one aggregate in one group.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Count(u64),
    SumInt(i128),
    SumFloat(f64),
    /// The best value so far, and whether the best is the largest.
    Extreme(Scalar, bool),
    Mean(f64, u64),
}

/// Whether `cell` should replace `best` in a min (`max == false`) or max.
fn beats(cell: &Cell<'_>, best: &Scalar, max: bool) -> bool {
    #[allow(clippy::cast_precision_loss)] // only a float column meets floats
    let ord = match (cell, best) {
        (_, Scalar::Null) => return true,
        (Cell::Int(a), Scalar::Int(b)) => a.cmp(b),
        (Cell::Float(a), Scalar::Float(b)) => a.total_cmp(b),
        (Cell::Str(a), Scalar::Str(b)) => (*a).cmp(&**b),
        (Cell::Bool(a), Scalar::Bool(b)) => a.cmp(b),
        _ => return false,
    };
    if max {
        ord.is_gt()
    } else {
        ord.is_lt()
    }
}

impl State {
    #[allow(clippy::cast_precision_loss)] // sums and means of ints are floats by design
    fn update(&mut self, cell: Option<&Cell<'_>>) {
        match (self, cell) {
            (State::Count(n), cell) if !matches!(cell, Some(Cell::Null)) => *n += 1,
            (_, None | Some(Cell::Null)) => {}
            (State::SumInt(s), Some(Cell::Int(v))) => *s += i128::from(*v),
            (State::SumFloat(s), Some(Cell::Float(v))) => *s += v,
            (State::SumFloat(s), Some(Cell::Int(v))) => *s += *v as f64,
            (State::Mean(s, n), Some(Cell::Float(v))) => {
                *s += v;
                *n += 1;
            }
            (State::Mean(s, n), Some(Cell::Int(v))) => {
                *s += *v as f64;
                *n += 1;
            }
            (State::Extreme(best, max), Some(cell)) if beats(cell, best, *max) => {
                *best = Scalar::from(*cell);
            }
            _ => {}
        }
    }

    fn merge(&mut self, other: State) {
        match (self, other) {
            (State::Count(a), State::Count(b)) => *a += b,
            (State::SumInt(a), State::SumInt(b)) => *a += b,
            (State::SumFloat(a), State::SumFloat(b)) => *a += b,
            (State::Mean(s, n), State::Mean(t, m)) => {
                *s += t;
                *n += m;
            }
            (State::Extreme(best, max), State::Extreme(other, _)) => {
                let replace = match (&*best, &other) {
                    (_, Scalar::Null) => false,
                    (Scalar::Null, _) => true,
                    (a, b) => {
                        let ord = b.order(a);
                        if *max {
                            ord.is_gt()
                        } else {
                            ord.is_lt()
                        }
                    }
                };
                if replace {
                    *best = other;
                }
            }
            _ => unreachable!("states of the same aggregate"),
        }
    }

    #[allow(clippy::cast_precision_loss)]
    fn finish(self) -> Scalar {
        match self {
            State::Count(n) => i64::try_from(n).map_or(Scalar::Float(n as f64), Scalar::Int),
            State::SumInt(s) => i64::try_from(s).map_or(Scalar::Float(s as f64), Scalar::Int),
            State::SumFloat(s) => Scalar::Float(s),
            State::Extreme(best, _) => best,
            State::Mean(_, 0) => Scalar::Null,
            State::Mean(s, n) => Scalar::Float(s / n as f64),
        }
    }
}

/// Appends a byte encoding of `cell` to `key` that is equal for equal values.
fn encode_key(cell: &Cell<'_>, key: &mut Vec<u8>) {
    match cell {
        Cell::Null => key.push(0),
        Cell::Int(i) => {
            key.push(1);
            key.extend_from_slice(&i.to_le_bytes());
        }
        Cell::Float(f) => {
            key.push(2);
            // -0.0 and 0.0 are one group.
            let f = if *f == 0.0 { 0.0 } else { *f };
            key.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Cell::Bool(b) => key.extend_from_slice(&[3, u8::from(*b)]),
        Cell::Str(s) => {
            key.push(4);
            #[allow(clippy::cast_possible_truncation)] // fields are far below 4 GiB
            key.extend_from_slice(&(s.len() as u32).to_le_bytes());
            key.extend_from_slice(s.as_bytes());
        }
    }
}

/// Groups and their aggregate states, in order of first appearance.
#[derive(Debug, Clone)]
pub struct Groups<'a> {
    keys: &'a [usize],
    aggs: &'a [AggSpec],
    index: HashMap<Box<[u8]>, u32>,
    key_values: Vec<Vec<Scalar>>,
    states: Vec<State>,
    scratch: Vec<u8>,
    limit: usize,
}

impl<'a> Groups<'a> {
    /// Empty groups keyed by the slots `keys`, computing `aggs`. Without keys there is
    /// exactly one group, even with no rows; more than `max_groups` groups is an error.
    #[must_use]
    pub fn new(keys: &'a [usize], aggs: &'a [AggSpec], max_groups: usize) -> Self {
        let mut groups = Groups {
            keys,
            aggs,
            index: HashMap::new(),
            key_values: Vec::new(),
            states: Vec::new(),
            scratch: Vec::new(),
            limit: max_groups,
        };
        if keys.is_empty() {
            groups.push_group(Vec::new());
        }
        groups
    }

    fn push_group(&mut self, key: Vec<Scalar>) -> u32 {
        #[allow(clippy::cast_possible_truncation)] // max_groups is far below 2^32
        let id = self.key_values.len() as u32;
        self.key_values.push(key);
        self.states.extend(self.aggs.iter().map(AggSpec::start));
        id
    }

    /// The number of groups so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.key_values.len()
    }

    /// Whether there are no groups.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.key_values.is_empty()
    }

    fn group_of(&mut self, cells: &[Cell<'_>]) -> Result<u32, NodeFailure> {
        if self.keys.is_empty() {
            return Ok(0);
        }
        self.scratch.clear();
        for &slot in self.keys {
            encode_key(&cells[slot], &mut self.scratch);
        }
        if let Some(&id) = self.index.get(&self.scratch[..]) {
            return Ok(id);
        }
        if self.len() >= self.limit {
            return Err(too_many_groups(self.limit));
        }
        let key = self.keys.iter().map(|&s| Scalar::from(cells[s])).collect();
        let id = self.push_group(key);
        self.index.insert(self.scratch.as_slice().into(), id);
        Ok(id)
    }

    /// Adds the groups and states of `other`, a later part of the same input.
    ///
    /// # Errors
    /// When the merged groups exceed the limit.
    ///
    /// # Panics
    /// When `other` computes other aggregates.
    pub fn merge(&mut self, other: Groups<'_>) -> Result<(), NodeFailure> {
        let n = self.aggs.len();
        let mut states = other.states.into_iter();
        if self.keys.is_empty() {
            for state in &mut self.states {
                state.merge(states.next().expect("one state per aggregate"));
            }
            return Ok(());
        }
        let mut by_id: Vec<(&[u8], u32)> = other.index.iter().map(|(k, &v)| (&**k, v)).collect();
        by_id.sort_unstable_by_key(|&(_, id)| id);
        for ((key_bytes, _), key) in by_id.into_iter().zip(other.key_values) {
            let id = if let Some(&id) = self.index.get(key_bytes) {
                id
            } else {
                if self.len() >= self.limit {
                    return Err(too_many_groups(self.limit));
                }
                let id = self.push_group(key);
                self.index.insert(key_bytes.into(), id);
                id
            };
            let base = id as usize * n;
            for state in &mut self.states[base..base + n] {
                state.merge(states.next().expect("one state per aggregate"));
            }
        }
        Ok(())
    }

    /// One row per group, in order of first appearance: the key values, then the
    /// aggregates.
    #[must_use]
    pub fn finish(self) -> Vec<Vec<Scalar>> {
        let n = self.aggs.len();
        let mut states = self.states.into_iter();
        self.key_values
            .into_iter()
            .map(|mut row| {
                row.extend(states.by_ref().take(n).map(State::finish));
                row
            })
            .collect()
    }
}

fn too_many_groups(max: usize) -> NodeFailure {
    NodeFailure::new(
        crate::node::codes::TOO_MANY_ROWS,
        format!("the query has more than {max} groups; raise `max_rows` or group by fewer columns"),
    )
    .with_field("max_rows")
}

impl Sink for Groups<'_> {
    fn accept(&mut self, cells: &[Cell<'_>]) -> Result<Flow, NodeFailure> {
        let id = self.group_of(cells)? as usize;
        let n = self.aggs.len();
        for (spec, state) in self.aggs.iter().zip(&mut self.states[id * n..(id + 1) * n]) {
            state.update(spec.input.map(|(slot, _)| &cells[slot]));
        }
        Ok(Flow::More)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(op: AggOp, input: Option<(usize, ColType)>) -> AggSpec {
        AggSpec { op, input }
    }

    fn rows() -> Vec<[Cell<'static>; 2]> {
        vec![
            [Cell::Str("a"), Cell::Int(1)],
            [Cell::Str("b"), Cell::Int(10)],
            [Cell::Str("a"), Cell::Null],
            [Cell::Null, Cell::Int(4)],
            [Cell::Str("a"), Cell::Int(3)],
        ]
    }

    fn aggs() -> Vec<AggSpec> {
        let v = Some((1, ColType::Int));
        vec![
            spec(AggOp::Count, None),
            spec(AggOp::Count, v),
            spec(AggOp::Sum, v),
            spec(AggOp::Min, v),
            spec(AggOp::Max, v),
            spec(AggOp::Mean, v),
        ]
    }

    #[test]
    fn groups_in_first_appearance_order() {
        let aggs = aggs();
        let mut groups = Groups::new(&[0], &aggs, 100);
        for row in rows() {
            groups.accept(&row).unwrap();
        }
        let out = groups.finish();
        assert_eq!(
            out[0],
            vec![
                Scalar::Str("a".into()),
                Scalar::Int(3),
                Scalar::Int(2),
                Scalar::Int(4),
                Scalar::Int(1),
                Scalar::Int(3),
                Scalar::Float(2.0)
            ]
        );
        assert_eq!(out[1][0], Scalar::Str("b".into()));
        assert_eq!(out[2][0], Scalar::Null);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn no_keys_is_one_group_even_without_rows() {
        let aggs = aggs();
        let groups = Groups::new(&[], &aggs, 100);
        let out = groups.finish();
        assert_eq!(
            out,
            vec![vec![
                Scalar::Int(0),
                Scalar::Int(0),
                Scalar::Int(0),
                Scalar::Null,
                Scalar::Null,
                Scalar::Null
            ]]
        );
    }

    #[test]
    fn merging_equals_one_pass() {
        let aggs = aggs();
        let rows = rows();
        let mut whole = Groups::new(&[0], &aggs, 100);
        for row in &rows {
            whole.accept(row).unwrap();
        }
        let mut first = Groups::new(&[0], &aggs, 100);
        let mut second = Groups::new(&[0], &aggs, 100);
        for row in &rows[..2] {
            first.accept(row).unwrap();
        }
        for row in &rows[2..] {
            second.accept(row).unwrap();
        }
        first.merge(second).unwrap();
        assert_eq!(first.finish(), whole.finish());
    }

    #[test]
    fn the_group_limit_is_enforced() {
        let aggs = aggs();
        let mut groups = Groups::new(&[0], &aggs, 2);
        let rows = rows();
        groups.accept(&rows[0]).unwrap();
        groups.accept(&rows[1]).unwrap();
        assert_eq!(groups.accept(&rows[3]).unwrap_err().code, "too_many_rows");
    }

    #[test]
    fn int_sums_do_not_overflow() {
        let aggs = [spec(AggOp::Sum, Some((0, ColType::Int)))];
        let mut groups = Groups::new(&[], &aggs, 1);
        groups.accept(&[Cell::Int(i64::MAX)]).unwrap();
        groups.accept(&[Cell::Int(i64::MAX)]).unwrap();
        assert!(matches!(groups.finish()[0][0], Scalar::Float(f) if f > 1e19));
    }
}
