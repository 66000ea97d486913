//! Parsing CEL source into a program, with one environment shared by every expression.

use std::sync::{Arc, OnceLock};

use cel::{extensions, DeclarationError, Env, IdedExpr, ParseErrors};

use super::limits::skip_string;
use super::{budget, reserved};

type Extension = fn(&mut Env) -> Result<(), DeclarationError>;

/// The standard library, its macros, the strings, math, lists and encoders extensions and
/// the functions that charge an evaluation's budget; built once.
///
/// # Panics
/// Not in practice: the standard extensions declare nothing twice.
pub fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        let all: [Extension; 4] = [
            extensions::strings,
            extensions::math,
            extensions::lists,
            extensions::encoders,
        ];
        for extension in all {
            env.add_extension(extension)
                .expect("the standard extensions do not conflict");
        }
        budget::register(&mut env).expect("the budget's functions have names of their own");
        Arc::new(env)
    })
}

/// Parses `source`, expanding macros. CEL's reserved words (`var`, `loop`, ...) are
/// accepted as variable names: see [`reserved`]; so are quoted fields (`` m.`a-b` ``).
///
/// # Errors
/// One description per error, e.g. `Syntax error at 1:5: mismatched input ...`, joined
/// with `; `.
pub fn compile(source: &str) -> Result<IdedExpr, String> {
    let quoted = quoted_fields(source);
    let source = quoted.as_deref().unwrap_or(source);
    match reserved::hide(source) {
        None => env().parser().parse(source).map_err(|e| describe(&e)),
        Some((text, aliases)) => {
            let mut expr = env()
                .parser()
                .parse(&text)
                .map_err(|e| aliases.restore_text(&describe(&e)))?;
            aliases.restore(&mut expr);
            Ok(expr)
        }
    }
}

/// `source` with each quoted field selection (`` a.`content-type` ``, `` a.?`b` ``) written
/// as the index it means (`a["content-type"]`, `a[?"b"]`), which the parser knows; `None`
/// when there is none. String literals and comments are left alone.
fn quoted_fields(source: &str) -> Option<String> {
    if !source.contains('`') {
        return None;
    }
    let b = source.as_bytes();
    let mut out = String::with_capacity(source.len() + 8);
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'\'' | b'"' => {
                let raw = i > 0 && b[i - 1].eq_ignore_ascii_case(&b'r')
                    || (i > 1
                        && b[i - 2].eq_ignore_ascii_case(&b'r')
                        && b[i - 1].eq_ignore_ascii_case(&b'b'));
                i = skip_string(b, i, raw);
            }
            b'.' => {
                let mut j = i + 1;
                let optional = b.get(j) == Some(&b'?');
                if optional {
                    j += 1;
                }
                if b.get(j) == Some(&b'`') {
                    let start = j + 1;
                    let len = b[start..].iter().position(|&c| c == b'`' || c == b'\n')?;
                    if b[start + len] != b'`' {
                        return None;
                    }
                    out.push_str(&source[copied..i]);
                    out.push_str(if optional { "[?\"" } else { "[\"" });
                    for c in source[start..start + len].chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push_str("\"]");
                    i = start + len + 1;
                    copied = i;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out.push_str(&source[copied..]);
    Some(out)
}

fn describe(errors: &ParseErrors) -> String {
    if errors.errors.is_empty() {
        return "Syntax error".to_owned();
    }
    let parts: Vec<String> = errors
        .errors
        .iter()
        .map(|e| {
            let (line, column) = e.pos;
            let msg = e.msg.strip_prefix("Syntax error: ").unwrap_or(&e.msg);
            if line > 0 && column > 0 {
                format!("Syntax error at {line}:{column}: {msg}")
            } else {
                format!("Syntax error: {msg}")
            }
        })
        .collect();
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::compile;

    #[test]
    fn errors_name_the_position() {
        let err = compile("a +").unwrap_err();
        assert!(err.starts_with("Syntax error at 1:"), "{err}");
        assert!(compile("a + b * 2").is_ok());
    }

    #[test]
    fn quoted_fields_are_indexes() {
        let expr = compile("m.`content-type` + m.?`a.b`.orValue('') + '.`x`'").unwrap();
        let text = format!("{expr:?}");
        assert!(
            text.contains("content-type") && text.contains("a.b"),
            "{text}"
        );
        assert_eq!(
            super::quoted_fields("m.`a\"b` + 'm.`c`'").as_deref(),
            Some("m[\"a\\\"b\"] + 'm.`c`'")
        );
    }

    #[test]
    fn reserved_words_are_variables() {
        let expr = compile("var.currency + loop.item").unwrap();
        let text = format!("{expr:?}");
        assert!(
            text.contains("Ident(\"var\")") && text.contains("Ident(\"loop\")"),
            "{text}"
        );
        let err = compile("var +").unwrap_err();
        assert!(!err.contains("_00"), "{err}");
    }
}
