//! Bounds checked on an expression's source before anything recursive sees it.
//!
//! The CEL parser and evaluator recurse once per level of the syntax tree and have no
//! depth limit of their own for operator and selector chains (`1+1+...`, `a.b.c...`,
//! `!!!...`): the parser builds them left-deep. A linear scan of the tokens gives an upper
//! bound of the tree's depth, so an expression deeper than the limit is refused before the
//! parser runs and every later walk (references, evaluation, dropping the tree) is bounded.

/// Why a source was refused: the `Limits` field, its value, and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLimitError {
    pub limit: &'static str,
    pub value: u64,
    pub detail: String,
}

/// Checks `source` against the size and depth limits.
///
/// # Errors
/// `max_expression_bytes` for a longer source, `max_expression_depth` for one whose
/// syntax tree may be deeper.
pub fn check_source(
    source: &str,
    max_bytes: usize,
    max_depth: u32,
) -> Result<(), SourceLimitError> {
    if source.len() > max_bytes {
        return Err(SourceLimitError {
            limit: "max_expression_bytes",
            value: max_bytes as u64,
            detail: format!("the expression is {} bytes long", source.len()),
        });
    }
    let depth = depth_bound(source, max_depth);
    if depth > max_depth {
        return Err(SourceLimitError {
            limit: "max_expression_depth",
            value: u64::from(max_depth),
            detail: format!(
                "the expression nests operators, selectors or brackets more than {max_depth} \
                 levels deep"
            ),
        });
    }
    Ok(())
}

/// One bracket level of the scan.
#[derive(Default)]
struct Level {
    /// Operators (binary, unary, ternary) in the current argument: each adds at most one
    /// level above its operands.
    ops: u32,
    /// Depth of the operand being read: its selectors, index and call brackets.
    operand: u32,
    /// Deepest finished operand of the current argument.
    widest: u32,
    /// Deepest finished argument (arguments are separated by commas).
    best: u32,
    /// Whether the bracket that opened this level follows an operand (`a[..]`, `f(..)`)
    /// rather than starting one (`(..)`, `[..]`, `{..}`).
    postfix: bool,
}

impl Level {
    fn end_operand(&mut self) {
        self.widest = self.widest.max(self.operand);
        self.operand = 0;
    }

    fn end_argument(&mut self) {
        self.end_operand();
        self.best = self.best.max(self.ops.saturating_add(self.widest));
        self.ops = 0;
        self.widest = 0;
    }

    fn depth(&self) -> u32 {
        self.ops
            .saturating_add(self.widest.max(self.operand))
            .max(self.best)
    }
}

/// An upper bound of the depth of the syntax tree of `source` (more than `stop` once it is
/// known to pass it). Linear in the length; strings, bytes and comments are skipped.
///
/// # Panics
/// Not in practice: the outermost level is never popped.
#[must_use]
#[allow(clippy::too_many_lines)] // one pass over the tokens reads best as one loop
pub fn depth_bound(source: &str, stop: u32) -> u32 {
    let b = source.as_bytes();
    let mut levels: Vec<Level> = vec![Level::default()];
    // Whether the last token ended an operand: then `(`, `[`, `{` and `.` apply to it.
    let mut after_operand = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let top = levels.len() - 1;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c => {
                i += 1;
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\'' | b'"' => {
                i = skip_string(b, i, false);
                after_operand = true;
                continue;
            }
            b'`' => {
                // A quoted field name: part of a selector.
                i += 1;
                while i < b.len() && b[i] != b'`' && b[i] != b'\n' {
                    i += 1;
                }
                i += 1;
                after_operand = true;
                continue;
            }
            b'(' | b'[' | b'{' => {
                levels.push(Level {
                    postfix: after_operand,
                    ..Level::default()
                });
                after_operand = false;
            }
            b')' | b']' | b'}' => {
                if levels.len() > 1 {
                    let mut child = levels.pop().unwrap_or_default();
                    child.end_argument();
                    let inner = child.best.saturating_add(1);
                    let parent = levels.last_mut().expect("the outermost level stays");
                    parent.operand = if child.postfix {
                        parent.operand.max(inner).saturating_add(1)
                    } else {
                        inner
                    };
                    if parent.depth() > stop {
                        return parent.depth();
                    }
                }
                after_operand = true;
            }
            b',' => {
                levels[top].end_argument();
                after_operand = false;
            }
            b'.' if after_operand && !b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                levels[top].operand = levels[top].operand.saturating_add(1);
                if levels[top].depth() > stop {
                    return levels[top].depth();
                }
                // A selector's field (or a method name) follows; it ends the operand again.
                after_operand = false;
            }
            b'0'..=b'9' | b'.' => {
                i = skip_number(b, i);
                after_operand = true;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let word = &b[start..i];
                let prefix = word.len() <= 2
                    && word
                        .iter()
                        .all(|c| matches!(c.to_ascii_lowercase(), b'r' | b'b'));
                if prefix && i < b.len() && (b[i] == b'\'' || b[i] == b'"') {
                    i = skip_string(b, i, word.iter().any(|c| c.eq_ignore_ascii_case(&b'r')));
                    after_operand = true;
                } else if word == b"in" {
                    operator(&mut levels[top]);
                    after_operand = false;
                } else {
                    // An identifier after `.` is a field: the operand goes on.
                    after_operand = true;
                }
                continue;
            }
            b'=' | b'!' | b'<' | b'>' | b'&' | b'|' => {
                // Two-character operators count once; `!!` is two operators.
                let next = b.get(i + 1).copied();
                let pair = matches!(
                    (c, next),
                    (b'=' | b'!' | b'<' | b'>', Some(b'='))
                        | (b'&', Some(b'&'))
                        | (b'|', Some(b'|'))
                );
                operator(&mut levels[top]);
                after_operand = false;
                i += if pair { 2 } else { 1 };
                if levels[top].depth() > stop {
                    return levels[top].depth();
                }
                continue;
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'?' | b':' => {
                operator(&mut levels[top]);
                after_operand = false;
                if levels[top].depth() > stop {
                    return levels[top].depth();
                }
            }
            _ => {}
        }
        i += 1;
    }
    while levels.len() > 1 {
        // Unclosed brackets: the parser reports them; count them as closed.
        let mut child = levels.pop().unwrap_or_default();
        child.end_argument();
        let parent = levels.last_mut().expect("the outermost level stays");
        parent.operand = parent.operand.max(child.best).saturating_add(1);
    }
    let mut outer = levels.pop().unwrap_or_default();
    outer.end_argument();
    outer.best.saturating_add(u32::from(!source.is_empty()))
}

fn operator(level: &mut Level) {
    level.end_operand();
    level.ops = level.ops.saturating_add(1);
}

fn skip_number(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        let c = b[i];
        let sign = (c == b'+' || c == b'-') && matches!(b[i - 1], b'e' | b'E') && !is_hex(b, i);
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || sign {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// Whether the number ending before `i` is hexadecimal (where `e` is a digit).
fn is_hex(b: &[u8], i: usize) -> bool {
    let mut j = i;
    while j > 0 && (b[j - 1].is_ascii_alphanumeric() || b[j - 1] == b'.') {
        j -= 1;
    }
    b.get(j..j + 2)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"0x"))
}

/// The index just past the string literal whose opening quote is at `q` (single, double
/// or triple quotes; `raw` for `r'..'`, where a backslash escapes nothing).
#[must_use]
pub fn skip_string(b: &[u8], q: usize, raw: bool) -> usize {
    let quote = b[q];
    let triple = b.get(q..q + 3) == Some(&[quote; 3][..]);
    let mut i = q + if triple { 3 } else { 1 };
    while i < b.len() {
        if !raw && b[i] == b'\\' {
            i += 2;
        } else if triple && b.get(i..i + 3) == Some(&[quote; 3][..]) {
            return i + 3;
        } else if !triple && b[i] == quote {
            return i + 1;
        } else if !triple && b[i] == b'\n' {
            return i;
        } else {
            i += 1;
        }
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::{check_source, depth_bound};

    fn depth(source: &str) -> u32 {
        depth_bound(source, u32::MAX)
    }

    #[test]
    fn chains_count_each_link() {
        assert_eq!(depth("1"), 1);
        assert!(depth("1+1+1+1") >= 4);
        let sum = vec!["1"; 1000].join("+");
        assert!(depth(&sum) >= 999);
        let members = format!("m{}", ".x".repeat(500));
        assert!(depth(&members) >= 500);
        assert!(depth(&format!("{}true", "!".repeat(300))) >= 300);
        assert!(depth(&format!("m{}", "['x']".repeat(300))) >= 300);
        assert!(depth(&format!("'a'{}", ".lowerAscii()".repeat(300))) >= 300);
    }

    #[test]
    fn arguments_and_elements_do_not_add_up() {
        let list = format!("[{}]", vec!["a.b.c + 1"; 1000].join(", "));
        assert!(depth(&list) < 10, "{}", depth(&list));
        let sum = vec!["a.b.c"; 100].join(" + ");
        assert!(depth(&sum) < 110, "{}", depth(&sum));
    }

    #[test]
    fn groups_add_to_the_chain_around_them() {
        let inner = vec!["1"; 50].join("+");
        let nested = format!("({inner}) + 1 + 1 + 1");
        assert!(depth(&nested) >= 53, "{}", depth(&nested));
        let deep = format!("{}1{}", "(1+".repeat(200), ")".repeat(200));
        assert!(depth(&deep) >= 400);
    }

    #[test]
    fn strings_and_comments_are_skipped() {
        let text = format!(
            "'{}' + \"{}\" + '''{}''' + r'\\' // {}\n+ 1",
            "+".repeat(5000),
            "(".repeat(5000),
            "'.x".repeat(900),
            "+".repeat(999)
        );
        assert!(depth(&text) < 10, "{}", depth(&text));
        assert!(depth("1e-5 + 0x1e-1") < 6);
    }

    #[test]
    fn limits_name_themselves() {
        let err = check_source(&"1+".repeat(600), 1 << 20, 500).unwrap_err();
        assert_eq!(err.limit, "max_expression_depth");
        let err = check_source("1 + 1", 3, 500).unwrap_err();
        assert_eq!(err.limit, "max_expression_bytes");
        assert!(check_source(&vec!["x.y"; 300].join(" + "), 1 << 20, 500).is_ok());
    }
}
