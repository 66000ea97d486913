//! Lexing and parsing the `where` language into an [`Ast`]; the grammar is in the parent
//! module's docs. Errors name the 1-based character position.

use std::cmp::Ordering;

use crate::node::NodeFailure;

/// The parameter every error of the language names.
pub(super) const FIELD: &str = "where";

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
    Op(Op),
    LParen,
    RParen,
    Comma,
    And,
    Or,
    Not,
    In,
    Is,
    Null,
    True,
    False,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    pub(super) fn holds(self, ord: Ordering) -> bool {
        match self {
            Op::Eq => ord == Ordering::Equal,
            Op::Ne => ord != Ordering::Equal,
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
        }
    }

    /// The operator with its operands swapped: `5 < x` is `x > 5`.
    fn flipped(self) -> Op {
        match self {
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            other => other,
        }
    }

    pub(super) fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// A literal as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl Lit {
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Lit::Null => "null",
            Lit::Int(_) | Lit::Float(_) => "a number",
            Lit::Bool(_) => "a boolean",
            Lit::Str(_) => "a string",
        }
    }
}

/// A parsed predicate; column names are not resolved yet. A chain of `and` (or of `or`)
/// is one node with a term each, so only `not` and parentheses make the tree deeper.
#[derive(Debug, Clone, PartialEq)]
pub enum Ast {
    Cmp {
        column: String,
        op: Op,
        lit: Lit,
    },
    In {
        column: String,
        lits: Vec<Lit>,
        negated: bool,
    },
    IsNull {
        column: String,
        negated: bool,
    },
    And(Vec<Ast>),
    Or(Vec<Ast>),
    Not(Box<Ast>),
}

impl Ast {
    /// Every column name the predicate reads, in order of appearance (with repeats).
    #[must_use]
    pub fn columns(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_columns(&mut out);
        out
    }

    fn collect_columns<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Ast::Cmp { column, .. } | Ast::In { column, .. } | Ast::IsNull { column, .. } => {
                out.push(column);
            }
            Ast::And(terms) | Ast::Or(terms) => {
                for term in terms {
                    term.collect_columns(out);
                }
            }
            Ast::Not(a) => a.collect_columns(out),
        }
    }
}

fn syntax_error(source: &str, at: usize, what: &str) -> NodeFailure {
    let position = source[..at.min(source.len())].chars().count() + 1;
    NodeFailure::invalid(
        FIELD,
        format!("syntax error in `where` at position {position}: {what}"),
    )
}

/// Splits `source` into tokens, each with its byte offset.
fn lex(source: &str) -> Result<Vec<(usize, Token)>, NodeFailure> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let token = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => {
                i += 1;
                Token::LParen
            }
            b')' => {
                i += 1;
                Token::RParen
            }
            b',' => {
                i += 1;
                Token::Comma
            }
            b'=' | b'!' | b'<' | b'>' => {
                let two = bytes.get(i + 1).copied();
                let (op, len) = match (c, two) {
                    (b'=', Some(b'=')) => (Op::Eq, 2),
                    (b'=', _) => (Op::Eq, 1),
                    (b'!', Some(b'=')) | (b'<', Some(b'>')) => (Op::Ne, 2),
                    (b'<', Some(b'=')) => (Op::Le, 2),
                    (b'<', _) => (Op::Lt, 1),
                    (b'>', Some(b'=')) => (Op::Ge, 2),
                    (b'>', _) => (Op::Gt, 1),
                    _ => return Err(syntax_error(source, i, "expected `!=` after `!`")),
                };
                i += len;
                Token::Op(op)
            }
            b'\'' | b'"' => {
                let (text, end) = quoted(source, i, c)
                    .ok_or_else(|| syntax_error(source, start, "unterminated string literal"))?;
                i = end;
                Token::Str(text)
            }
            b'`' => {
                let (text, end) = quoted(source, i, c).ok_or_else(|| {
                    syntax_error(source, start, "unterminated `quoted` column name")
                })?;
                i = end;
                Token::Name(text)
            }
            b'0'..=b'9' | b'-' | b'+' | b'.' => {
                let (token, end) = number(source, i)?;
                i = end;
                token
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &source[start..i];
                match word.to_ascii_lowercase().as_str() {
                    "and" => Token::And,
                    "or" => Token::Or,
                    "not" => Token::Not,
                    "in" => Token::In,
                    "is" => Token::Is,
                    "null" => Token::Null,
                    "true" => Token::True,
                    "false" => Token::False,
                    _ => Token::Name(word.to_owned()),
                }
            }
            _ => {
                let ch = source[i..].chars().next().unwrap_or('?');
                return Err(syntax_error(
                    source,
                    i,
                    &format!("unexpected character {ch:?}"),
                ));
            }
        };
        out.push((start, token));
    }
    Ok(out)
}

/// The text of a literal quoted by `q` starting at `start`, and the offset after it.
fn quoted(source: &str, start: usize, q: u8) -> Option<(String, usize)> {
    let bytes = source.as_bytes();
    let mut text = String::new();
    let mut i = start + 1;
    let mut run = i;
    while i < bytes.len() {
        if bytes[i] == q {
            text.push_str(&source[run..i]);
            if bytes.get(i + 1) == Some(&q) {
                text.push(q as char);
                i += 2;
                run = i;
                continue;
            }
            return Some((text, i + 1));
        }
        i += 1;
    }
    None
}

fn number(source: &str, start: usize) -> Result<(Token, usize), NodeFailure> {
    let bytes = source.as_bytes();
    let mut i = start;
    if matches!(bytes[i], b'-' | b'+') {
        i += 1;
    }
    let mut float = false;
    while i < bytes.len() {
        match bytes[i] {
            b'0'..=b'9' => {}
            b'.' => float = true,
            b'e' | b'E' => {
                float = true;
                if matches!(bytes.get(i + 1), Some(b'-' | b'+')) {
                    i += 1;
                }
            }
            _ => break,
        }
        i += 1;
    }
    let text = &source[start..i];
    let token = if float {
        text.parse().ok().map(Token::Float)
    } else {
        text.parse()
            .ok()
            .map(Token::Int)
            .or_else(|| text.parse().ok().map(Token::Float))
    };
    token
        .filter(|_| text.bytes().any(|b| b.is_ascii_digit()))
        .map(|t| (t, i))
        .ok_or_else(|| syntax_error(source, start, &format!("bad number {text:?}")))
}

struct Parser<'s> {
    source: &'s str,
    tokens: Vec<(usize, Token)>,
    at: usize,
    /// `not`s and parentheses open around the current token, and the most allowed.
    depth: u64,
    max_depth: u64,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.tokens
            .get(self.at)
            .map_or(self.source.len(), |(offset, _)| *offset)
    }

    fn error(&self, what: &str) -> NodeFailure {
        let found = if self.peek().is_none() {
            "the end".to_owned()
        } else {
            let rest = &self.source[self.offset()..];
            let word: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace())
                .take(20)
                .collect();
            format!("`{word}`")
        };
        syntax_error(
            self.source,
            self.offset(),
            &format!("expected {what}, found {found}"),
        )
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == Some(token) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &Token, what: &str) -> Result<(), NodeFailure> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn or(&mut self) -> Result<Ast, NodeFailure> {
        let mut terms = vec![self.and()?];
        while self.eat(&Token::Or) {
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.swap_remove(0)
        } else {
            Ast::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Ast, NodeFailure> {
        let mut terms = vec![self.unary()?];
        while self.eat(&Token::And) {
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 {
            terms.swap_remove(0)
        } else {
            Ast::And(terms)
        })
    }

    /// Enters one more `not` or parenthesis: the parser, the tree and every walk of it
    /// recurse once per level, so the depth is bounded to keep them on the stack.
    fn deeper(&mut self) -> Result<(), NodeFailure> {
        self.depth += 1;
        if self.depth > self.max_depth {
            let position = self.source[..self.offset()].chars().count() + 1;
            return Err(NodeFailure::limit(
                "max_csv_where_depth",
                self.max_depth,
                format!(
                    "`where` nests `not` and parentheses more than {} deep (at position \
                     {position})",
                    self.max_depth
                ),
                FIELD,
            ));
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Ast, NodeFailure> {
        if self.peek() == Some(&Token::Not) {
            self.deeper()?;
            self.at += 1;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Ast::Not(Box::new(inner)));
        }
        if self.peek() == Some(&Token::LParen) {
            self.deeper()?;
            self.at += 1;
            let inner = self.or()?;
            self.expect(&Token::RParen, "`)`")?;
            self.depth -= 1;
            return Ok(inner);
        }
        self.test()
    }

    fn literal(&mut self) -> Option<Lit> {
        let lit = match self.peek()? {
            Token::Int(i) => Lit::Int(*i),
            Token::Float(f) => Lit::Float(*f),
            Token::Str(s) => Lit::Str(s.clone()),
            Token::True => Lit::Bool(true),
            Token::False => Lit::Bool(false),
            Token::Null => Lit::Null,
            _ => return None,
        };
        self.at += 1;
        Some(lit)
    }

    fn op(&mut self) -> Option<Op> {
        match self.peek()? {
            Token::Op(op) => {
                let op = *op;
                self.at += 1;
                Some(op)
            }
            _ => None,
        }
    }

    fn test(&mut self) -> Result<Ast, NodeFailure> {
        if let Some(lit) = self.literal() {
            let op = self
                .op()
                .ok_or_else(|| self.error("a comparison operator"))?;
            let Some(Token::Name(column)) = self.peek().cloned() else {
                return Err(self.error("a column name (a test compares a column with a literal)"));
            };
            self.at += 1;
            return Ok(Ast::Cmp {
                column,
                op: op.flipped(),
                lit,
            });
        }
        let Some(Token::Name(column)) = self.peek().cloned() else {
            return Err(self.error("a column name, a literal, `not` or `(`"));
        };
        self.at += 1;
        if let Some(op) = self.op() {
            let lit = self
                .literal()
                .ok_or_else(|| self.error("a literal (a test compares a column with a literal)"))?;
            return Ok(Ast::Cmp { column, op, lit });
        }
        if self.eat(&Token::Is) {
            let negated = self.eat(&Token::Not);
            self.expect(&Token::Null, "`null`")?;
            return Ok(Ast::IsNull { column, negated });
        }
        let negated = self.eat(&Token::Not);
        if self.eat(&Token::In) {
            self.expect(&Token::LParen, "`(` after `in`")?;
            let mut lits = vec![self.literal().ok_or_else(|| self.error("a literal"))?];
            while self.eat(&Token::Comma) {
                lits.push(self.literal().ok_or_else(|| self.error("a literal"))?);
            }
            self.expect(&Token::RParen, "`,` or `)`")?;
            return Ok(Ast::In {
                column,
                lits,
                negated,
            });
        }
        Err(self.error(if negated {
            "`in`"
        } else {
            "a comparison operator, `in` or `is`"
        }))
    }
}

/// Parses a predicate that nests `not` and parentheses at most `max_depth` deep.
///
/// # Errors
/// `invalid_parameters` for the field `where`, naming the position of a syntax error;
/// `limit_exceeded` past `max_depth`.
pub fn parse(source: &str, max_depth: u64) -> Result<Ast, NodeFailure> {
    let tokens = lex(source)?;
    let mut parser = Parser {
        source,
        tokens,
        at: 0,
        depth: 0,
        max_depth,
    };
    if parser.peek().is_none() {
        return Err(syntax_error(source, 0, "the predicate is empty"));
    }
    let ast = parser.or()?;
    if parser.peek().is_some() {
        return Err(parser.error("`and`, `or` or the end"));
    }
    Ok(ast)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(source: &str) -> Result<Ast, NodeFailure> {
        super::parse(source, 100)
    }

    #[test]
    fn quoted_names_and_escapes() {
        let ast = parse("`my col` = 'it''s'").unwrap();
        assert_eq!(
            ast,
            Ast::Cmp {
                column: "my col".into(),
                op: Op::Eq,
                lit: Lit::Str("it's".into())
            }
        );
        assert_eq!(ast.columns(), vec!["my col"]);
    }

    #[test]
    fn precedence_and_binds_tighter_than_or() {
        let ast = parse("qty = 1 or qty = 2 and price = 3").unwrap();
        let Ast::Or(terms) = ast else {
            panic!("{ast:?}")
        };
        assert_eq!(terms.len(), 2);
        assert!(matches!(&terms[1], Ast::And(t) if t.len() == 2));
    }

    #[test]
    fn chains_are_flat_and_nesting_is_bounded() {
        let chain = vec!["qty = 1"; 50_000].join(" and ");
        assert!(matches!(parse(&chain).unwrap(), Ast::And(t) if t.len() == 50_000));
        for deep in [
            format!("{}qty = 1{}", "(".repeat(10_000), ")".repeat(10_000)),
            format!("{}qty = 1", "not ".repeat(20_000)),
            format!("{}qty = 1", "not (".repeat(20_000)),
        ] {
            let err = parse(&deep).unwrap_err();
            assert_eq!(err.code, "limit_exceeded");
            assert_eq!(err.field.as_deref(), Some("where"));
            assert!(
                err.message.contains("max_csv_where_depth = 100"),
                "{}",
                err.message
            );
        }
        let ok = format!("{}qty = 1{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&ok).is_ok());
        let ok = format!("{}qty = 1", "not ".repeat(100));
        assert!(parse(&ok).is_ok());
        assert!(parse(&format!("{}qty = 1", "not ".repeat(101))).is_err());
    }

    #[test]
    fn syntax_errors_name_the_position() {
        for (source, position) in [
            ("qty >", 6),
            ("qty > 1 and", 12),
            ("(qty > 1", 9),
            ("qty ~ 1", 5),
            ("city = 'x", 8),
            ("qty 1", 5),
            ("", 1),
            ("qty > 1 2", 9),
        ] {
            let err = parse(source).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("where"));
            assert!(
                err.message.contains(&format!("position {position}:")),
                "{source}: {}",
                err.message
            );
        }
    }
}
