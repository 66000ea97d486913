//! JSON Schema `pattern`s: ECMA-262 regular expressions run by a linear-time engine.
//!
//! JSON Schema says a pattern is an ECMA-262 regular expression. A backtracking engine takes
//! exponential time on patterns such as `^(a+)+$`, so patterns are translated to the syntax of
//! the `regex` crate, whose matching time is linear in the text. The translation keeps ECMA-262
//! meaning where the two differ: `\d`, `\w` and `\b` are ASCII, `\s` is ECMA's white space,
//! `.` stops at any line terminator, `[^]` is any character, `\cX`, `\uXXXX` (surrogate pairs
//! included) and `\u{...}` escapes, and every literal is emitted as `\x{...}` so that nothing
//! the `regex` crate treats as syntax (`&&`, `--`, nested `[`) changes meaning. Patterns use
//! the Unicode semantics of ECMA-262's `u` flag (`\p{Letter}`), while escaping punctuation that
//! needs no escape (`\-`, `\:`) is accepted as in browsers. Backreferences and lookaround cannot
//! run in linear time and are refused with a message that says so.

use std::fmt::Write as _;

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;
use regex::{Regex, RegexBuilder};

create_exception!(
    polyhost._native,
    PatternError,
    PyValueError,
    "An ECMA-262 pattern is not valid, uses a feature a linear-time engine cannot run \
     (backreferences, lookaround), or compiles to a program over its size limit."
);

/// The default bound on a compiled pattern (bytes), for the program and for its lazy DFA.
pub const DEFAULT_SIZE_LIMIT: usize = 1 << 20;

/// The parser's own nesting bound: groups nested deeper than this are refused.
const NEST_LIMIT: u32 = 200;

/// ECMA-262 `\s`: the `WhiteSpace` and `LineTerminator` productions.
const ECMA_SPACE: &str = r"\t\n\x0B\x0C\r\x20\xA0\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}";
const ECMA_DIGIT: &str = "0-9";
const ECMA_WORD: &str = "0-9A-Za-z_";

/// A compiled pattern: `search(text)` is true when the pattern matches anywhere in `text`.
#[pyclass(module = "polyhost._native", frozen)]
pub struct Pattern {
    source: String,
    regex: Regex,
}

#[pymethods]
impl Pattern {
    /// Compiles the ECMA-262 `source`; raises `PatternError`.
    #[new]
    #[pyo3(signature = (source, size_limit = DEFAULT_SIZE_LIMIT))]
    fn new(source: String, size_limit: usize) -> PyResult<Self> {
        let regex = compile(&source, size_limit).map_err(PatternError::new_err)?;
        Ok(Pattern { source, regex })
    }

    /// The ECMA-262 source.
    #[getter]
    fn source(&self) -> &str {
        &self.source
    }

    /// Whether the pattern matches somewhere in `text` (JSON Schema patterns are not anchored).
    /// A string holding lone surrogates is matched with each one replaced by U+FFFD.
    fn search(&self, py: Python<'_>, text: &Bound<'_, PyString>) -> bool {
        let text = text.to_string_lossy();
        if text.len() < 4096 {
            return self.regex.is_match(&text);
        }
        let regex = &self.regex;
        let text: &str = &text;
        py.detach(|| regex.is_match(text))
    }

    fn __repr__(&self) -> String {
        format!("Pattern({:?})", self.source)
    }
}

/// Registers the class and its exception on the module.
///
/// # Errors
/// When the module refuses the names.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Pattern>()?;
    m.add("PatternError", m.py().get_type::<PatternError>())?;
    Ok(())
}

/// Translates and compiles an ECMA-262 pattern, bounding the compiled program by `size_limit`.
///
/// # Errors
/// A message that names the problem and its position (counted in characters from 0).
pub fn compile(source: &str, size_limit: usize) -> Result<Regex, String> {
    let translated = translate(source)?;
    RegexBuilder::new(&translated)
        .size_limit(size_limit)
        .dfa_size_limit(size_limit)
        .nest_limit(NEST_LIMIT)
        .build()
        .map_err(|err| match err {
            regex::Error::CompiledTooBig(limit) => format!(
                "the pattern compiles to more than {limit} bytes; simplify it \
                 (large repetition counts of wide classes grow it fastest)"
            ),
            regex::Error::Syntax(message) => {
                // The crate's message quotes the translated pattern; keep only its last line.
                let last = message.lines().rev().find(|l| !l.trim().is_empty());
                format!("invalid pattern: {}", last.unwrap_or("syntax error").trim())
            }
            _ => format!("invalid pattern: {err}"),
        })
}

/// One class item: a single character, or a set (`\d`, `\p{L}`...) already in `regex` syntax.
enum ClassAtom {
    Char(char),
    Set(String),
}

/// ECMA-262 source to `regex` syntax. Iterative: nesting costs no stack.
///
/// # Errors
/// A message naming the problem and its character position.
pub fn translate(source: &str) -> Result<String, String> {
    let mut t = Translator {
        chars: source.chars().collect(),
        pos: 0,
        out: String::with_capacity(source.len() * 2),
    };
    t.run()?;
    Ok(t.out)
}

struct Translator {
    chars: Vec<char>,
    pos: usize,
    out: String,
}

impl Translator {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn run(&mut self) -> Result<(), String> {
        let mut depth: usize = 0;
        // Whether the last thing emitted can take a quantifier.
        let mut atom = false;
        while let Some(c) = self.peek() {
            let at = self.pos;
            self.pos += 1;
            match c {
                '\\' => atom = self.escape(at)?,
                '.' => {
                    self.out.push_str(r"[^\n\r\x{2028}\x{2029}]");
                    atom = true;
                }
                '^' | '$' => {
                    self.out.push(c);
                    atom = false;
                }
                '|' => {
                    self.out.push('|');
                    atom = false;
                }
                '(' => {
                    self.group(at)?;
                    depth += 1;
                    atom = false;
                }
                ')' => {
                    if depth == 0 {
                        return err(at, "unmatched ')'");
                    }
                    depth -= 1;
                    self.out.push(')');
                    atom = true;
                }
                '*' | '+' | '?' => {
                    if !atom {
                        return err(at, &format!("nothing to repeat before '{c}'"));
                    }
                    self.out.push(c);
                    self.lazy();
                    atom = false;
                }
                '{' => {
                    if let Some((min, max)) = self.quantifier()? {
                        if !atom {
                            return err(at, "nothing to repeat before '{'");
                        }
                        match max {
                            Some(max) if max < min => {
                                return err(at, "numbers out of order in {} quantifier");
                            }
                            Some(max) if max == min => write!(self.out, "{{{min}}}"),
                            Some(max) => write!(self.out, "{{{min},{max}}}"),
                            None => write!(self.out, "{{{min},}}"),
                        }
                        .map_err(|e| e.to_string())?;
                        self.lazy();
                        atom = false;
                    } else {
                        // Not a quantifier: a literal brace, as browsers read it.
                        literal(&mut self.out, '{');
                        atom = true;
                    }
                }
                '[' => {
                    self.class(at)?;
                    atom = true;
                }
                _ => {
                    literal(&mut self.out, c);
                    atom = true;
                }
            }
        }
        if depth > 0 {
            return err(self.chars.len(), "unclosed group '('");
        }
        Ok(())
    }

    fn lazy(&mut self) {
        if self.peek() == Some('?') {
            self.pos += 1;
            self.out.push('?');
        }
    }

    /// After `{`: `n}`, `n,}` or `n,m}` as a quantifier, else `None` (and nothing consumed).
    fn quantifier(&mut self) -> Result<Option<(u32, Option<u32>)>, String> {
        let start = self.pos;
        let Some(min) = self.number()? else {
            return Ok(None);
        };
        let max = if self.peek() == Some(',') {
            self.pos += 1;
            if self.peek() == Some('}') {
                None
            } else if let Some(max) = self.number()? {
                Some(max)
            } else {
                self.pos = start;
                return Ok(None);
            }
        } else {
            Some(min)
        };
        if self.peek() != Some('}') {
            self.pos = start;
            return Ok(None);
        }
        self.pos += 1;
        Ok(Some((min, max)))
    }

    fn number(&mut self) -> Result<Option<u32>, String> {
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
            value = value * 10 + u64::from(d);
            if value > 100_000 {
                return err(start, "a repetition count over 100000");
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Ok(None);
        }
        Ok(Some(u32::try_from(value).unwrap_or(u32::MAX)))
    }

    /// After `(`: a group. Every group is emitted non-capturing: nothing reads captures.
    fn group(&mut self, at: usize) -> Result<(), String> {
        if self.peek() != Some('?') {
            self.out.push_str("(?:");
            return Ok(());
        }
        match (self.peek_at(1), self.peek_at(2)) {
            (Some(':'), _) => {
                self.pos += 2;
                self.out.push_str("(?:");
                Ok(())
            }
            (Some('=' | '!'), _) => unsupported(at, "a lookahead '(?=' or '(?!'"),
            (Some('<'), Some('=' | '!')) => unsupported(at, "a lookbehind '(?<=' or '(?<!'"),
            (Some('<'), _) => {
                self.pos += 2;
                let name_start = self.pos;
                while let Some(c) = self.peek() {
                    if c == '>' {
                        break;
                    }
                    if !(c.is_alphanumeric() || c == '_' || c == '$') {
                        return err(self.pos, "invalid character in a group name");
                    }
                    self.pos += 1;
                }
                if self.peek() != Some('>') || self.pos == name_start {
                    return err(at, "invalid group name");
                }
                self.pos += 1;
                self.out.push_str("(?:");
                Ok(())
            }
            _ => err(at, "invalid group '(?'"),
        }
    }

    /// After `\` outside a class; returns whether the result can take a quantifier.
    fn escape(&mut self, at: usize) -> Result<bool, String> {
        let Some(c) = self.peek() else {
            return err(at, "'\\' at the end of the pattern");
        };
        match c {
            'b' => {
                self.pos += 1;
                self.out.push_str(r"(?-u:\b)");
                Ok(false)
            }
            'B' => {
                self.pos += 1;
                self.out.push_str(r"(?-u:\B)");
                Ok(false)
            }
            '1'..='9' => unsupported(at, "a backreference"),
            'k' if self.peek_at(1) == Some('<') => {
                unsupported(at, "a named backreference '\\k<...>'")
            }
            _ => {
                match self.class_escape(at, false)? {
                    ClassAtom::Char(ch) => literal(&mut self.out, ch),
                    ClassAtom::Set(set) => {
                        self.out.push('[');
                        self.out.push_str(&set);
                        self.out.push(']');
                    }
                }
                Ok(true)
            }
        }
    }

    /// An escape valid both in and out of a class (the `\` consumed, `at` is its position).
    fn class_escape(&mut self, at: usize, in_class: bool) -> Result<ClassAtom, String> {
        let Some(c) = self.peek() else {
            return err(at, "'\\' at the end of the pattern");
        };
        self.pos += 1;
        let set = |s: String| Ok(ClassAtom::Set(s));
        match c {
            'd' => set(format!("[{ECMA_DIGIT}]")),
            'D' => set(format!("[^{ECMA_DIGIT}]")),
            'w' => set(format!("[{ECMA_WORD}]")),
            'W' => set(format!("[^{ECMA_WORD}]")),
            's' => set(format!("[{ECMA_SPACE}]")),
            'S' => set(format!("[^{ECMA_SPACE}]")),
            'p' | 'P' => self.property(at, c == 'P'),
            't' => Ok(ClassAtom::Char('\t')),
            'n' => Ok(ClassAtom::Char('\n')),
            'v' => Ok(ClassAtom::Char('\x0B')),
            'f' => Ok(ClassAtom::Char('\x0C')),
            'r' => Ok(ClassAtom::Char('\r')),
            'b' if in_class => Ok(ClassAtom::Char('\x08')),
            '0' if !self.peek().is_some_and(|d| d.is_ascii_digit()) => Ok(ClassAtom::Char('\0')),
            'c' => match self.peek() {
                Some(letter) if letter.is_ascii_alphabetic() => {
                    self.pos += 1;
                    Ok(ClassAtom::Char(char::from(letter as u8 % 32)))
                }
                _ => err(at, "'\\c' must be followed by a letter"),
            },
            'x' => match self.hex_digits(2).and_then(char::from_u32) {
                Some(ch) => Ok(ClassAtom::Char(ch)),
                None => err(at, "'\\x' must be followed by two hex digits"),
            },
            'u' => self.unicode_escape(at).map(ClassAtom::Char),
            c if c.is_ascii_alphanumeric() => err(at, &format!("invalid escape '\\{c}'")),
            // Punctuation and other characters stand for themselves (`\/`, `\.`, `\-`, `\:`).
            c => Ok(ClassAtom::Char(c)),
        }
    }

    fn property(&mut self, at: usize, negated: bool) -> Result<ClassAtom, String> {
        if self.peek() != Some('{') {
            return err(at, "'\\p' must be followed by '{name}'");
        }
        self.pos += 1;
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == '}' {
                break;
            }
            if !(c.is_ascii_alphanumeric() || c == '_' || c == '=') {
                return err(self.pos, "invalid character in a '\\p{...}' name");
            }
            self.pos += 1;
        }
        if self.peek() != Some('}') || self.pos == start {
            return err(at, "unclosed or empty '\\p{...}'");
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        self.pos += 1;
        let letter = if negated { 'P' } else { 'p' };
        Ok(ClassAtom::Set(format!("\\{letter}{{{name}}}")))
    }

    fn hex_digits(&mut self, count: usize) -> Option<u32> {
        let mut value = 0;
        for i in 0..count {
            value = value * 16 + self.peek_at(i)?.to_digit(16)?;
        }
        self.pos += count;
        Some(value)
    }

    /// After `\u`: `XXXX` (a surrogate pair written as two escapes is one character) or `{X...}`.
    fn unicode_escape(&mut self, at: usize) -> Result<char, String> {
        if self.peek() == Some('{') {
            self.pos += 1;
            let start = self.pos;
            let mut value: u32 = 0;
            while let Some(d) = self.peek().and_then(|c| c.to_digit(16)) {
                value = value.saturating_mul(16).saturating_add(d);
                self.pos += 1;
            }
            if self.pos == start || self.peek() != Some('}') {
                return err(at, "'\\u{' must hold hex digits and a '}'");
            }
            self.pos += 1;
            return char::from_u32(value)
                .map_or_else(|| err(at, "'\\u{...}' is not a Unicode scalar value"), Ok);
        }
        let Some(unit) = self.hex_digits(4) else {
            return err(at, "'\\u' must be followed by four hex digits or '{...}'");
        };
        if (0xD800..0xDC00).contains(&unit)
            && self.peek() == Some('\\')
            && self.peek_at(1) == Some('u')
        {
            let save = self.pos;
            self.pos += 2;
            if let Some(low) = self.hex_digits(4) {
                if (0xDC00..0xE000).contains(&low) {
                    let value = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                    if let Some(ch) = char::from_u32(value) {
                        return Ok(ch);
                    }
                }
            }
            self.pos = save;
        }
        char::from_u32(unit).map_or_else(
            || {
                err(
                    at,
                    "a lone surrogate '\\u' escape cannot match a JSON string",
                )
            },
            Ok,
        )
    }

    /// After `[`: a class, emitted with every literal as `\x{...}`.
    fn class(&mut self, at: usize) -> Result<(), String> {
        let negated = self.peek() == Some('^');
        if negated {
            self.pos += 1;
        }
        if self.peek() == Some(']') {
            self.pos += 1;
            // `[]` matches nothing, `[^]` any character.
            self.out
                .push_str(if negated { r"[\s\S]" } else { r"[^\s\S]" });
            return Ok(());
        }
        self.out.push_str(if negated { "[^" } else { "[" });
        loop {
            let Some(c) = self.peek() else {
                return err(at, "unclosed character class '['");
            };
            if c == ']' {
                self.pos += 1;
                break;
            }
            let first = self.class_atom(at)?;
            let is_range = self.peek() == Some('-') && self.peek_at(1).is_some_and(|n| n != ']');
            if !is_range {
                emit_atom(&mut self.out, first);
                continue;
            }
            let dash = self.pos;
            self.pos += 1;
            let last = self.class_atom(at)?;
            match (first, last) {
                (ClassAtom::Char(lo), ClassAtom::Char(hi)) => {
                    if lo > hi {
                        return err(dash, "range out of order in character class");
                    }
                    literal(&mut self.out, lo);
                    self.out.push('-');
                    literal(&mut self.out, hi);
                }
                // `[\w-.]`: a dash next to a set is a literal dash, as browsers read it.
                (first, last) => {
                    emit_atom(&mut self.out, first);
                    literal(&mut self.out, '-');
                    emit_atom(&mut self.out, last);
                }
            }
        }
        self.out.push(']');
        Ok(())
    }

    fn class_atom(&mut self, at: usize) -> Result<ClassAtom, String> {
        let Some(c) = self.peek() else {
            return err(at, "unclosed character class '['");
        };
        let here = self.pos;
        self.pos += 1;
        if c != '\\' {
            return Ok(ClassAtom::Char(c));
        }
        match self.peek() {
            Some('B') => err(here, "'\\B' in a character class"),
            Some('1'..='9') => unsupported(here, "a backreference"),
            Some('-') => {
                self.pos += 1;
                Ok(ClassAtom::Char('-'))
            }
            _ => self.class_escape(here, true),
        }
    }
}

fn err<T>(at: usize, what: &str) -> Result<T, String> {
    Err(format!("{what} at position {at}"))
}

fn unsupported<T>(at: usize, what: &str) -> Result<T, String> {
    Err(format!(
        "{what} at position {at} cannot run in linear time and is not supported \
         (patterns run on a linear-time engine)"
    ))
}

fn emit_atom(out: &mut String, atom: ClassAtom) {
    match atom {
        ClassAtom::Char(c) => literal(out, c),
        ClassAtom::Set(set) => out.push_str(&set),
    }
}

/// A literal character in `regex` syntax: alphanumerics as they are, everything else escaped.
fn literal(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() {
        out.push(c);
    } else {
        // Writing to a String cannot fail.
        let _ = write!(out, "\\x{{{:X}}}", u32::from(c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(pattern: &str, text: &str) -> bool {
        compile(pattern, DEFAULT_SIZE_LIMIT)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .is_match(text)
    }

    fn refused(pattern: &str) -> String {
        compile(pattern, DEFAULT_SIZE_LIMIT).expect_err(pattern)
    }

    #[test]
    fn catastrophic_backtracking_is_linear() {
        let text = format!("{}!", "a".repeat(100_000));
        let start = std::time::Instant::now();
        assert!(!search("^(a+)+$", &text));
        assert!(!search("^(a|aa)*$", &text));
        assert!(start.elapsed().as_secs() < 2);
    }

    #[test]
    fn ecma_classes_are_ascii_where_ecma_says_so() {
        assert!(search(r"^\d+$", "0123"));
        assert!(!search(r"^\d+$", "\u{09EA}\u{09E8}"));
        assert!(!search(r"\w", "\u{e9}"));
        assert!(search(r"\W", "\u{e9}"));
        assert!(search(r"^\s$", "\u{FEFF}"));
        assert!(search(r"^\s$", "\u{A0}"));
        assert!(!search(r"^\s$", "\u{85}"));
        assert!(search(r"^\S$", "\u{85}"));
        assert!(search(r"\bcole", "l'\u{e9}cole"));
    }

    #[test]
    fn unicode_properties() {
        assert!(search(r"\p{Letter}cole", "l'\u{e9}cole"));
        assert!(search(r"^\p{L}+$", "\u{e9}t\u{e9}"));
        assert!(search(r"^\P{L}+$", "123"));
        assert!(search(r"^\p{Script=Greek}+$", "\u{3b1}\u{3b2}"));
        assert!(search(r"^[\p{Lu}\d]+$", "A1"));
        assert!(refused(r"\p{NoSuchProperty}").contains("invalid pattern"));
    }

    #[test]
    fn dollar_does_not_match_before_a_final_newline() {
        assert!(!search("^abc$", "abc\n"));
        assert!(search("^abc$", "abc"));
        assert!(!search("^a.c$", "a\nc"));
        assert!(!search("^a.c$", "a\u{2028}c"));
        assert!(search("^a[^]c$", "a\nc"));
        assert!(!search("a[]", "a"));
    }

    #[test]
    fn escapes() {
        assert!(search(r"^\/$", "/"));
        assert!(search(r"^\cJ$", "\n"));
        assert!(search(r"^\x41\u0042\u{43}$", "ABC"));
        assert!(search(r"^\uD83D\uDE00$", "\u{1F600}"));
        assert!(search(r"^[\w\-.]+@x$", "a-b.c@x"));
        assert!(search(r"^[\w-.]+$", "a-."));
        assert!(search(r"^[\b]$", "\x08"));
        assert!(search(r"^\0$", "\0"));
        assert!(refused(r"\a").contains("invalid escape"));
        assert!(refused(r"\uD800").contains("lone surrogate"));
    }

    #[test]
    fn rust_syntax_inside_classes_stays_literal() {
        assert!(search(r"^[a&&b]+$", "a&b"));
        assert!(search(r"^[[a]+$", "[a"));
        assert!(search(r"^[--/]+$", "-."));
        assert!(refused(r"[a--b]").contains("out of order"));
        assert!(search(r"^[ ~]+$", "~ "));
    }

    #[test]
    fn quantifiers_and_groups() {
        assert!(search("^a{2}$", "aa"));
        assert!(search("^a{2,}$", "aaaa"));
        assert!(search("^a{1,2}?$", "aa"));
        assert!(search("^a{,2}$", "a{,2}"));
        assert!(search("^x{$", "x{"));
        assert!(search("^(?<year>[0-9]{4})-(?:x|y)$", "2024-y"));
        assert!(refused("a{2,1}").contains("out of order"));
        assert!(refused("*a").contains("nothing to repeat"));
        assert!(refused("a**").contains("nothing to repeat"));
        assert!(refused("(a").contains("unclosed group"));
        assert!(refused("a)").contains("unmatched"));
        assert!(refused("(?i)a").contains("invalid group"));
    }

    #[test]
    fn features_a_linear_engine_cannot_run_are_named() {
        assert!(refused(r"(a)\1").contains("backreference"));
        assert!(refused(r"(?<n>a)\k<n>").contains("named backreference"));
        assert!(refused(r"a(?=b)").contains("lookahead"));
        assert!(refused(r"a(?!b)").contains("lookahead"));
        assert!(refused(r"(?<=a)b").contains("lookbehind"));
        assert!(refused(r"(?<!a)b").contains("lookbehind"));
    }

    #[test]
    fn the_program_size_is_bounded() {
        assert!(refused(r"\p{L}{1000}{1000}").contains("nothing to repeat"));
        assert!(refused(r"(?:\p{L}{100}){100}").contains("bytes"));
        assert!(refused("(((a{100}){100}){100})").contains("bytes"));
        let deep = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(compile(&deep, DEFAULT_SIZE_LIMIT).is_err());
    }
}
