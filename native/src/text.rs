//! `text.stats`: character, word and line counts of a text, and its most frequent words.
//!
//! A word is a run of letters and digits, with apostrophes inside it (`don't`), compared
//! in lowercase. Lines are counted as an editor shows them: a final line without a line
//! break counts, an empty text has none.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::node::{codes, NativeNode, NodeCtx, NodeFailure};
use crate::params::{absolute_path, Params};

/// The `text.stats` node.
pub struct TextStats;

/// How often, in bytes, the count checks for a cancel.
const CHECK_EVERY: usize = 64 * 1024;
const DEFAULT_TOP: u64 = 10;

/// The counts of one text.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub chars: u64,
    pub words: u64,
    pub lines: u64,
    /// Word frequencies.
    pub counts: HashMap<String, u64>,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

impl Stats {
    /// Counts `text`, checking `ctx` for a cancel every 64 KiB.
    ///
    /// # Errors
    /// `cancelled`.
    pub fn of(text: &str, ctx: &NodeCtx) -> Result<Self, NodeFailure> {
        let mut stats = Stats {
            lines: text.lines().count() as u64,
            ..Stats::default()
        };
        let mut word = String::new();
        let mut pending_apostrophe = false;
        let mut next_check = CHECK_EVERY;
        for (at, c) in text.char_indices() {
            if at >= next_check {
                ctx.check()?;
                next_check += CHECK_EVERY;
            }
            stats.chars += 1;
            if is_word_char(c) {
                if pending_apostrophe {
                    word.push('\'');
                    pending_apostrophe = false;
                }
                word.extend(c.to_lowercase());
            } else if is_apostrophe(c) && !word.is_empty() && !pending_apostrophe {
                pending_apostrophe = true;
            } else {
                pending_apostrophe = false;
                stats.end_word(&mut word);
            }
        }
        stats.end_word(&mut word);
        Ok(stats)
    }

    fn end_word(&mut self, word: &mut String) {
        if word.is_empty() {
            return;
        }
        self.words += 1;
        if let Some(n) = self.counts.get_mut(word.as_str()) {
            *n += 1;
        } else {
            self.counts.insert(word.clone(), 1);
        }
        word.clear();
    }

    /// The `n` most frequent words, most frequent first, ties in alphabetical order.
    #[must_use]
    pub fn top(&self, n: usize) -> Vec<(&str, u64)> {
        let mut all: Vec<(&str, u64)> = self.counts.iter().map(|(w, &c)| (w.as_str(), c)).collect();
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        all.truncate(n);
        all
    }
}

impl NativeNode for TextStats {
    fn name(&self) -> &'static str {
        "text.stats"
    }

    fn description(&self) -> &'static str {
        "Count the characters, words and lines of a text (given inline or as a UTF-8 file) and list its most frequent words."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "the text; give this or `path`"},
                "path": {"type": "string", "format": "path", "description": "absolute path of a UTF-8 text file"},
                "top": {"type": "integer", "minimum": 0, "default": DEFAULT_TOP,
                        "description": "how many frequent words to list"},
            },
            "additionalProperties": false,
        })
    }

    fn output_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "chars": {"type": "integer"},
                "words": {"type": "integer"},
                "lines": {"type": "integer"},
                "top_words": {
                    "type": "array",
                    "items": {
                        "type": "array",
                        "prefixItems": [{"type": "string"}, {"type": "integer"}],
                        "minItems": 2, "maxItems": 2
                    }
                },
            },
            "required": ["chars", "words", "lines", "top_words"],
            "additionalProperties": false,
        })
    }

    fn run(&self, params: Value, ctx: &NodeCtx) -> Result<Value, NodeFailure> {
        let mut p = Params::new(params)?;
        let text = p.opt_str("text")?;
        let path = p.opt_str("path")?;
        let top = p.opt_u64("top")?.unwrap_or(DEFAULT_TOP);
        p.finish()?;
        let text = match (text, path) {
            (Some(text), None) => text,
            (None, Some(path)) => {
                let path = absolute_path("path", path)?;
                let bytes = std::fs::read(&path).map_err(|e| NodeFailure::io("read", &path, &e))?;
                String::from_utf8(bytes).map_err(|e| {
                    NodeFailure::new(
                        codes::INVALID_INPUT,
                        format!(
                            "{} is not UTF-8 text (invalid bytes at offset {})",
                            path.display(),
                            e.utf8_error().valid_up_to()
                        ),
                    )
                    .with_field("path")
                })?
            }
            _ => {
                return Err(NodeFailure::invalid(
                    "text",
                    "give exactly one of `text` and `path`",
                ))
            }
        };
        let stats = Stats::of(&text, ctx)?;
        let top = stats.top(usize::try_from(top).unwrap_or(usize::MAX));
        Ok(json!({
            "chars": stats.chars,
            "words": stats.words,
            "lines": stats.lines,
            "top_words": top.iter().map(|(w, c)| json!([w, c])).collect::<Vec<_>>(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(params: Value) -> Result<Value, NodeFailure> {
        TextStats.run(params, &NodeCtx::default())
    }

    #[test]
    fn counts_and_top_words() {
        let out = run(json!({"text": "The cat. the DOG\ndon't  'quoted' cat\u{e9}\n", "top": 3}))
            .unwrap();
        assert_eq!(out["chars"], 38);
        assert_eq!(out["words"], 7);
        assert_eq!(out["lines"], 2);
        assert_eq!(
            out["top_words"],
            json!([["the", 2], ["cat", 1], ["caté", 1]])
        );
        let stats = Stats::of("don't 'quoted'", &NodeCtx::default()).unwrap();
        assert!(stats.counts.contains_key("don't"));
        assert!(stats.counts.contains_key("quoted"));
    }

    #[test]
    fn empty_text() {
        let out = run(json!({"text": ""})).unwrap();
        assert_eq!(
            out,
            json!({"chars": 0, "words": 0, "lines": 0, "top_words": []})
        );
    }

    #[test]
    fn exactly_one_source() {
        assert_eq!(run(json!({})).unwrap_err().code, codes::INVALID_PARAMETERS);
        assert_eq!(
            run(json!({"text": "a", "path": "/x"})).unwrap_err().code,
            codes::INVALID_PARAMETERS
        );
        assert_eq!(
            run(json!({"path": "rel.txt"})).unwrap_err().code,
            codes::INVALID_PATH
        );
    }

    #[test]
    fn cancel_stops_long_texts() {
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let ctx = NodeCtx::new(flag, "n");
        let text = "word ".repeat(100_000);
        assert_eq!(Stats::of(&text, &ctx).unwrap_err().code, codes::CANCELLED);
    }
}
