//! Column types, typed field values, and type inference.
//!
//! An empty field is null whatever the column's type. Ints are 64-bit, written as an
//! optional sign and digits; floats are decimal numbers with an optional exponent (never
//! `inf` or `nan`, so names like "Nan" stay text); bools are `true` or `false` in any case.

use std::cmp::Ordering;

use serde_json::Value;

/// How many data rows type inference looks at.
pub const INFER_ROWS: usize = 1000;

/// The type of a column, declared or inferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    String,
    Int,
    Float,
    Bool,
}

impl ColType {
    /// The name used in parameters and messages.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ColType::String => "string",
            ColType::Int => "int",
            ColType::Float => "float",
            ColType::Bool => "bool",
        }
    }

    /// The type called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "string" => ColType::String,
            "int" => ColType::Int,
            "float" => ColType::Float,
            "bool" => ColType::Bool,
            _ => return None,
        })
    }

    /// Whether values of this type are numbers.
    #[must_use]
    pub fn is_numeric(self) -> bool {
        matches!(self, ColType::Int | ColType::Float)
    }
}

/// A field's typed value, borrowing its text from the record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(&'a str),
}

/// Why a field does not parse as its column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellError {
    /// The bytes are not UTF-8.
    NotUtf8,
    /// The text is not a value of the type.
    NotA(ColType),
}

/// Parses `bytes` as a value of `ty`.
///
/// # Errors
/// When the field is not valid UTF-8 text (strings) or not a value of `ty`.
pub fn parse_cell(bytes: &[u8], ty: ColType) -> Result<Cell<'_>, CellError> {
    if bytes.is_empty() {
        return Ok(Cell::Null);
    }
    match ty {
        ColType::String => std::str::from_utf8(bytes)
            .map(Cell::Str)
            .map_err(|_| CellError::NotUtf8),
        ColType::Int => parse_int(bytes).map(Cell::Int).ok_or(CellError::NotA(ty)),
        ColType::Float => parse_float(bytes)
            .map(Cell::Float)
            .ok_or(CellError::NotA(ty)),
        ColType::Bool => parse_bool(bytes).map(Cell::Bool).ok_or(CellError::NotA(ty)),
    }
}

/// An optional sign and decimal digits, within `i64`.
#[must_use]
pub fn parse_int(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    // Accumulate negatively so that i64::MIN parses.
    let mut value: i64 = 0;
    for &d in digits {
        let digit = d.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(digit))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

/// Powers of ten that are exact as `f64`.
const EXACT_POWERS: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// A decimal number with an optional sign, fraction and exponent; no `inf` or `nan`.
#[must_use]
pub fn parse_float(bytes: &[u8]) -> Option<f64> {
    // Fast path (Clinger): up to 15 digits and no exponent make an exact integer and an
    // exact power of ten, and one division of exact operands rounds correctly.
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, bytes),
    };
    let mut mantissa: u64 = 0;
    let mut count = 0;
    let mut fraction: Option<usize> = None;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                count += 1;
                if count > 15 {
                    return parse_float_slow(bytes);
                }
                if let Some(f) = &mut fraction {
                    *f += 1;
                }
            }
            b'.' if fraction.is_none() => fraction = Some(0),
            _ => return parse_float_slow(bytes),
        }
    }
    if count == 0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)] // below 10^15, so exact
    let value = mantissa as f64 / EXACT_POWERS[fraction.unwrap_or(0)];
    Some(if negative { -value } else { value })
}

fn parse_float_slow(bytes: &[u8]) -> Option<f64> {
    let mut digits = false;
    for &b in bytes {
        match b {
            b'0'..=b'9' => digits = true,
            b'+' | b'-' | b'.' | b'e' | b'E' => {}
            _ => return None,
        }
    }
    if !digits {
        return None;
    }
    // Only ASCII got here, so this cannot fail.
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// `true` or `false`, in any case.
#[must_use]
pub fn parse_bool(bytes: &[u8]) -> Option<bool> {
    if bytes.eq_ignore_ascii_case(b"true") {
        Some(true)
    } else if bytes.eq_ignore_ascii_case(b"false") {
        Some(false)
    } else {
        None
    }
}

/// Infers one column's type from the fields seen so far.
#[derive(Debug, Clone, Copy)]
#[allow(clippy::struct_excessive_bools)] // one flag per candidate type
pub struct Inference {
    seen: bool,
    int: bool,
    float: bool,
    bool: bool,
}

impl Default for Inference {
    fn default() -> Self {
        Inference {
            seen: false,
            int: true,
            float: true,
            bool: true,
        }
    }
}

impl Inference {
    /// Takes one field into account; empty fields say nothing.
    pub fn observe(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.seen = true;
        if self.int && parse_int(bytes).is_none() {
            self.int = false;
        }
        if self.float && parse_float(bytes).is_none() {
            self.float = false;
        }
        if self.bool && parse_bool(bytes).is_none() {
            self.bool = false;
        }
    }

    /// The narrowest type every field seen fits: int, float, bool, else string (also for a
    /// column with no non-empty field).
    #[must_use]
    pub fn result(&self) -> ColType {
        if !self.seen {
            ColType::String
        } else if self.int {
            ColType::Int
        } else if self.float {
            ColType::Float
        } else if self.bool {
            ColType::Bool
        } else {
            ColType::String
        }
    }
}

/// An owned typed value: a group key, a kept row's field, an aggregate's result.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(Box<str>),
}

impl From<Cell<'_>> for Scalar {
    fn from(cell: Cell<'_>) -> Self {
        match cell {
            Cell::Null => Scalar::Null,
            Cell::Int(i) => Scalar::Int(i),
            Cell::Float(f) => Scalar::Float(f),
            Cell::Bool(b) => Scalar::Bool(b),
            Cell::Str(s) => Scalar::Str(s.into()),
        }
    }
}

impl Cell<'_> {
    /// As JSON; a non-finite float is null.
    #[must_use]
    pub fn to_json(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Int(i) => Value::from(*i),
            Cell::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Str(s) => Value::String((*s).to_owned()),
        }
    }
}

impl Scalar {
    /// The value as a cell borrowing this scalar's text.
    #[must_use]
    pub fn as_cell(&self) -> Cell<'_> {
        match self {
            Scalar::Null => Cell::Null,
            Scalar::Int(i) => Cell::Int(*i),
            Scalar::Float(f) => Cell::Float(*f),
            Scalar::Bool(b) => Cell::Bool(*b),
            Scalar::Str(s) => Cell::Str(s),
        }
    }

    /// As JSON; a non-finite float is null.
    #[must_use]
    pub fn to_json(&self) -> Value {
        self.as_cell().to_json()
    }

    /// Ascending order with nulls last; ints and floats compare as numbers.
    #[must_use]
    pub fn order(&self, other: &Scalar) -> Ordering {
        match (self, other) {
            (Scalar::Null, Scalar::Null) => Ordering::Equal,
            (Scalar::Null, _) => Ordering::Greater,
            (_, Scalar::Null) => Ordering::Less,
            (Scalar::Int(a), Scalar::Int(b)) => a.cmp(b),
            (Scalar::Str(a), Scalar::Str(b)) => a.cmp(b),
            (Scalar::Bool(a), Scalar::Bool(b)) => a.cmp(b),
            (a, b) => a.as_f64().total_cmp(&b.as_f64()),
        }
    }

    #[allow(clippy::cast_precision_loss)] // mixed int/float ordering compares as floats
    fn as_f64(&self) -> f64 {
        match self {
            Scalar::Int(i) => *i as f64,
            Scalar::Float(f) => *f,
            _ => f64::NAN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_are_strict_and_64_bit() {
        assert_eq!(parse_int(b"-42"), Some(-42));
        assert_eq!(parse_int(b"+7"), Some(7));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int(b"9223372036854775808"), None);
        for bad in [&b""[..], b"-", b"1.0", b" 1", b"1e3", b"0x10"] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn floats_are_decimal_numbers_only() {
        assert_eq!(parse_float(b"1.5e3"), Some(1500.0));
        assert_eq!(parse_float(b"-.5"), Some(-0.5));
        assert_eq!(parse_float(b"3"), Some(3.0));
        assert_eq!(parse_float(b"-0.1"), Some(-0.1));
        assert_eq!(parse_float(b"137.51"), Some(137.51));
        assert_eq!(
            parse_float(b"0.30000000000000004"),
            Some(0.300_000_000_000_000_04)
        );
        assert_eq!(
            parse_float(b"123456789012345678"),
            Some(123_456_789_012_345_680.0)
        );
        assert_eq!(parse_float(b"5."), Some(5.0));
        for text in [
            "0.1",
            "2.675",
            "1e-5",
            "9007199254740993",
            "0.000123456789012345",
        ] {
            assert_eq!(parse_float(text.as_bytes()), text.parse().ok(), "{text}");
        }
        for bad in [
            &b"nan"[..],
            b"inf",
            b"Nan",
            b".",
            b"1.2.3",
            b"1,5",
            b"-",
            b"+.",
            b"",
        ] {
            assert_eq!(parse_float(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn inference_picks_the_narrowest_type() {
        let infer = |fields: &[&str]| {
            let mut inference = Inference::default();
            for f in fields {
                inference.observe(f.as_bytes());
            }
            inference.result()
        };
        assert_eq!(infer(&["1", "", "-3"]), ColType::Int);
        assert_eq!(infer(&["1", "2.5"]), ColType::Float);
        assert_eq!(infer(&["true", "FALSE", ""]), ColType::Bool);
        assert_eq!(infer(&["1", "x"]), ColType::String);
        assert_eq!(infer(&["", ""]), ColType::String);
        assert_eq!(infer(&["1", "true"]), ColType::String);
    }

    #[test]
    fn cells_parse_by_type_and_empty_is_null() {
        assert_eq!(parse_cell(b"", ColType::Int), Ok(Cell::Null));
        assert_eq!(parse_cell(b"", ColType::String), Ok(Cell::Null));
        assert_eq!(
            parse_cell(b"x", ColType::Int),
            Err(CellError::NotA(ColType::Int))
        );
        assert_eq!(
            parse_cell(b"\xff", ColType::String),
            Err(CellError::NotUtf8)
        );
        assert_eq!(parse_cell(b"TRUE", ColType::Bool), Ok(Cell::Bool(true)));
    }

    #[test]
    fn scalars_order_with_nulls_last() {
        let mut values = vec![
            Scalar::Null,
            Scalar::Float(2.5),
            Scalar::Int(3),
            Scalar::Int(-1),
        ];
        values.sort_by(Scalar::order);
        assert_eq!(
            values,
            vec![
                Scalar::Int(-1),
                Scalar::Float(2.5),
                Scalar::Int(3),
                Scalar::Null
            ]
        );
    }
}
