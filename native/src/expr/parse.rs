//! Parsing CEL source into a program, with one environment shared by every expression.

use std::sync::{Arc, OnceLock};

use cel::{extensions, DeclarationError, Env, IdedExpr, ParseErrors};

use super::reserved;

type Extension = fn(&mut Env) -> Result<(), DeclarationError>;

/// The standard library, its macros and the strings, math, lists and encoders extensions;
/// built once.
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
        Arc::new(env)
    })
}

/// Parses `source`, expanding macros. CEL's reserved words (`var`, `loop`, ...) are
/// accepted as variable names: see [`reserved`].
///
/// # Errors
/// One description per error, e.g. `Syntax error at 1:5: mismatched input ...`, joined
/// with `; `.
pub fn compile(source: &str) -> Result<IdedExpr, String> {
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
