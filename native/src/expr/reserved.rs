//! CEL's reserved words as variable names.
//!
//! CEL reserves `var`, `loop` and a few more words, but the workflow format puts `var` and
//! `loop` in scope (and a node id may be any identifier). So before parsing, each reserved
//! word used as an identifier is replaced by an alias of the same length that appears
//! nowhere in the source, and the parsed tree is renamed back: the expression then reads
//! the variable by its real name, and error positions stay exact.

use cel::common::ast::{EntryExpr, Expr};
use cel::IdedExpr;

use super::limits::skip_string;

/// The words CEL's parser refuses as identifiers (`in`, `true`, `false` and `null` are
/// keywords of the grammar itself and stay refused).
const RESERVED: [&str; 17] = [
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "namespace",
    "package",
    "return",
    "var",
    "void",
    "while",
];

/// Reserved words and the aliases standing in for them.
#[derive(Debug, Default)]
pub struct Aliases(Vec<(String, &'static str)>);

impl Aliases {
    fn word(&self, alias: &str) -> Option<&'static str> {
        self.0.iter().find(|(a, _)| a == alias).map(|&(_, w)| w)
    }

    /// `text` with every alias put back, for error messages.
    #[must_use]
    pub fn restore_text(&self, text: &str) -> String {
        self.0.iter().fold(text.to_owned(), |t, (alias, word)| {
            t.replace(alias.as_str(), word)
        })
    }

    fn restore_name(&self, name: &mut String) {
        if !self
            .0
            .iter()
            .any(|(alias, _)| name.contains(alias.as_str()))
        {
            return;
        }
        let renamed: Vec<&str> = name
            .split('.')
            .map(|segment| self.word(segment).unwrap_or(segment))
            .collect();
        *name = renamed.join(".");
    }

    /// Renames the aliases in `expr` back to the reserved words.
    pub fn restore(&self, expr: &mut IdedExpr) {
        if !self.0.is_empty() {
            self.walk(expr);
        }
    }

    fn walk(&self, expr: &mut IdedExpr) {
        match &mut expr.expr {
            Expr::Ident(name) => self.restore_name(name),
            Expr::Select(select) => {
                self.restore_name(&mut select.field);
                self.walk(&mut select.operand);
            }
            Expr::Call(call) => {
                self.restore_name(&mut call.func_name);
                if let Some(target) = &mut call.target {
                    self.walk(target);
                }
                call.args.iter_mut().for_each(|a| self.walk(a));
            }
            Expr::List(list) => list.elements.iter_mut().for_each(|e| self.walk(e)),
            Expr::Map(map) => {
                for entry in &mut map.entries {
                    self.walk_entry(&mut entry.expr);
                }
            }
            Expr::Struct(s) => {
                self.restore_name(&mut s.type_name);
                for entry in &mut s.entries {
                    self.walk_entry(&mut entry.expr);
                }
            }
            Expr::Comprehension(c) => {
                self.restore_name(&mut c.iter_var);
                if let Some(second) = &mut c.iter_var2 {
                    self.restore_name(second);
                }
                self.restore_name(&mut c.accu_var);
                for e in [
                    &mut c.iter_range,
                    &mut c.accu_init,
                    &mut c.loop_cond,
                    &mut c.loop_step,
                    &mut c.result,
                ] {
                    self.walk(e);
                }
            }
            Expr::Literal(_) | Expr::Unspecified => {}
        }
    }

    fn walk_entry(&self, entry: &mut EntryExpr) {
        match entry {
            EntryExpr::StructField(f) => {
                self.restore_name(&mut f.field);
                self.walk(&mut f.value);
            }
            EntryExpr::MapEntry(e) => {
                self.walk(&mut e.key);
                self.walk(&mut e.value);
            }
        }
    }
}

/// `source` with reserved words used as identifiers replaced by same-length aliases.
/// Returns `None` when there is none.
#[must_use]
pub fn hide(source: &str) -> Option<(String, Aliases)> {
    let found = reserved_identifiers(source);
    if found.is_empty() {
        return None;
    }
    let mut aliases = Aliases::default();
    let mut text = source.to_owned();
    for (start, word) in found {
        let known = aliases
            .0
            .iter()
            .find(|(_, w)| *w == word)
            .map(|(a, _)| a.clone());
        let alias = if let Some(alias) = known {
            alias
        } else if let Some(alias) = fresh_alias(source, word.len(), &aliases) {
            aliases.0.push((alias.clone(), word));
            alias
        } else {
            // Every alias is taken (a source written to exhaust them): the parser will
            // report the reserved word.
            continue;
        };
        text.replace_range(start..start + word.len(), &alias);
    }
    Some((text, aliases))
}

/// `_` and base-36 digits: an identifier of `len` characters found nowhere in `source`.
fn fresh_alias(source: &str, len: usize, taken: &Aliases) -> Option<String> {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let width = u32::try_from(len - 1).ok()?;
    let count = DIGITS.len().checked_pow(width).unwrap_or(usize::MAX);
    (0..count)
        .map(|mut k| {
            let mut alias = vec![b'_'; len];
            for slot in alias[1..].iter_mut().rev() {
                *slot = DIGITS[k % DIGITS.len()];
                k /= DIGITS.len();
            }
            String::from_utf8(alias).unwrap_or_default()
        })
        .find(|alias| !source.contains(alias.as_str()) && taken.word(alias).is_none())
}

/// Identifier tokens that are reserved words (start offset, word), outside string literals
/// and comments.
fn reserved_identifiers(source: &str) -> Vec<(usize, &'static str)> {
    let b = source.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'\'' || c == b'"' {
            i = skip_string(b, i, false);
        } else if c.is_ascii_digit() {
            while i < b.len()
                && (is_ident(b[i])
                    || (b[i] == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)))
            {
                i += 1;
            }
        } else if is_ident(c) {
            let start = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            let word = &source[start..i];
            let prefix = matches!(word.to_ascii_lowercase().as_str(), "r" | "b" | "rb" | "br");
            if prefix && i < b.len() && (b[i] == b'\'' || b[i] == b'"') {
                i = skip_string(b, i, word.contains(['r', 'R']));
            } else if let Some(reserved) = RESERVED.iter().find(|r| **r == word) {
                found.push((start, *reserved));
            }
        } else {
            i += 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::hide;

    #[test]
    fn replaces_identifiers_only() {
        let (text, aliases) = hide("var.x + loop.item + 'var' + r\"loop\" // var\n").unwrap();
        assert_eq!(text, "_00.x + _000.item + 'var' + r\"loop\" // var\n");
        assert_eq!(aliases.restore_text("at _00"), "at var");
        assert!(hide("input.variable + loops").is_none());
    }

    #[test]
    fn aliases_avoid_names_in_the_source() {
        let (text, _) = hide("var + _00 + '''it's var'''").unwrap();
        assert_eq!(text, "_01 + _00 + '''it's var'''");
    }
}
