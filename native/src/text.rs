//! `text.stats`: character, word and line counts of a text, and its most frequent words.
//!
//! A word is a run of letters and digits, with apostrophes inside it (`don't`), compared
//! in lowercase. Lines are counted as an editor shows them: a final line without a line
//! break counts, an empty text has none.
//!
//! A file is read in chunks, so memory does not grow with its size; what does grow is the
//! table of distinct words kept for `top_words`, bounded by `max_text_vocabulary_bytes`
//! (and not kept at all with `top: 0`).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use serde_json::{json, Value};

use crate::files;
use crate::node::{codes, NativeNode, NodeCtx, NodeFailure};
use crate::params::{absolute_path, Params};

/// The `text.stats` node.
pub struct TextStats;

/// How often, in bytes, the count checks for a cancel; also the size of a file read.
const CHECK_EVERY: usize = 64 * 1024;
const DEFAULT_TOP: u64 = 10;
/// What a distinct word costs in the table besides its text, for the vocabulary limit:
/// the map entry, the string's heap block and the table's spare room.
const WORD_OVERHEAD: u64 = 64;

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

/// Counts a text given in pieces (each whole characters).
struct Counter {
    stats: Stats,
    /// The word being read, lowercased; kept only when `keep_words`.
    word: String,
    in_word: bool,
    pending_apostrophe: bool,
    /// The last character so far; `None` while the text is empty.
    last: Option<char>,
    keep_words: bool,
    /// The estimated memory of `stats.counts` (and of `word`), and its limit.
    vocabulary: u64,
    max_vocabulary: u64,
    /// The parameter the text came from, for errors.
    field: &'static str,
}

impl Counter {
    fn new(keep_words: bool, max_vocabulary: u64, field: &'static str) -> Self {
        Counter {
            stats: Stats::default(),
            word: String::new(),
            in_word: false,
            pending_apostrophe: false,
            last: None,
            keep_words,
            vocabulary: 0,
            max_vocabulary,
            field,
        }
    }

    fn too_many_words(&self) -> NodeFailure {
        let max = self.max_vocabulary;
        NodeFailure::limit(
            "max_text_vocabulary_bytes",
            max,
            format!(
                "the distinct words of `{}` take more than {max} bytes to list the most \
                 frequent; set `top: 0` to count them without listing",
                self.field
            ),
            self.field,
        )
    }

    /// Counts `text`, checking `ctx` for a cancel every 64 KiB.
    fn feed(&mut self, text: &str, ctx: &NodeCtx) -> Result<(), NodeFailure> {
        let Some(last) = text.chars().next_back() else {
            return Ok(());
        };
        self.last = Some(last);
        let mut next_check = CHECK_EVERY;
        for (at, c) in text.char_indices() {
            if at >= next_check {
                ctx.check()?;
                next_check += CHECK_EVERY;
            }
            self.stats.chars += 1;
            if c == '\n' {
                self.stats.lines += 1;
            }
            if is_word_char(c) {
                self.in_word = true;
                if self.keep_words {
                    if self.pending_apostrophe {
                        self.word.push('\'');
                    }
                    self.word.extend(c.to_lowercase());
                    if self.vocabulary + self.word.len() as u64 + WORD_OVERHEAD
                        > self.max_vocabulary
                    {
                        return Err(self.too_many_words());
                    }
                }
                self.pending_apostrophe = false;
            } else if is_apostrophe(c) && self.in_word && !self.pending_apostrophe {
                self.pending_apostrophe = true;
            } else {
                self.pending_apostrophe = false;
                self.end_word()?;
            }
        }
        Ok(())
    }

    fn end_word(&mut self) -> Result<(), NodeFailure> {
        if !self.in_word {
            return Ok(());
        }
        self.in_word = false;
        self.stats.words += 1;
        if !self.keep_words {
            return Ok(());
        }
        if let Some(n) = self.stats.counts.get_mut(self.word.as_str()) {
            *n += 1;
        } else {
            self.vocabulary += self.word.len() as u64 + WORD_OVERHEAD;
            if self.vocabulary > self.max_vocabulary {
                return Err(self.too_many_words());
            }
            self.stats.counts.insert(self.word.clone(), 1);
        }
        self.word.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<Stats, NodeFailure> {
        self.end_word()?;
        if self.last.is_some_and(|c| c != '\n') {
            self.stats.lines += 1;
        }
        Ok(self.stats)
    }
}

/// Counts the UTF-8 file at `path` a chunk at a time.
fn count_file(path: &Path, mut counter: Counter, ctx: &NodeCtx) -> Result<Stats, NodeFailure> {
    let mut file = files::open_read(path, "path")?;
    let not_utf8 = |offset: u64| {
        NodeFailure::new(
            codes::INVALID_INPUT,
            format!(
                "{} is not UTF-8 text (invalid bytes at offset {offset})",
                path.display()
            ),
        )
        .with_field("path")
    };
    let mut buf = vec![0u8; CHECK_EVERY + 4];
    // Bytes of a character cut off by the last read, at the start of `buf`.
    let mut carry = 0;
    let mut offset = 0u64;
    loop {
        ctx.check()?;
        let n = match file.read(&mut buf[carry..carry + CHECK_EVERY]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(NodeFailure::io("read", path, &e).with_field("path")),
        };
        if n == 0 {
            if carry > 0 {
                return Err(not_utf8(offset));
            }
            return counter.finish();
        }
        let avail = carry + n;
        let valid = match std::str::from_utf8(&buf[..avail]) {
            Ok(text) => {
                counter.feed(text, ctx)?;
                avail
            }
            Err(e) if e.error_len().is_some() => {
                return Err(not_utf8(offset + e.valid_up_to() as u64));
            }
            Err(e) => {
                let valid = e.valid_up_to();
                let text = std::str::from_utf8(&buf[..valid]).expect("checked up to here");
                counter.feed(text, ctx)?;
                valid
            }
        };
        buf.copy_within(valid..avail, 0);
        carry = avail - valid;
        offset += valid as u64;
    }
}

impl Stats {
    /// Counts `text`, checking `ctx` for a cancel every 64 KiB and keeping to its
    /// vocabulary limit.
    ///
    /// # Errors
    /// `cancelled`, or `limit_exceeded` for `text`.
    pub fn of(text: &str, ctx: &NodeCtx) -> Result<Self, NodeFailure> {
        let mut counter = Counter::new(true, ctx.limits().max_text_vocabulary_bytes, "text");
        counter.feed(text, ctx)?;
        counter.finish()
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
        let max_vocabulary = ctx.limits().max_text_vocabulary_bytes;
        let stats = match (text, path) {
            (Some(text), None) => {
                let mut counter = Counter::new(top > 0, max_vocabulary, "text");
                counter.feed(&text, ctx)?;
                counter.finish()?
            }
            (None, Some(path)) => {
                let path = absolute_path("path", path)?;
                count_file(&path, Counter::new(top > 0, max_vocabulary, "path"), ctx)?
            }
            _ => {
                return Err(NodeFailure::invalid(
                    "text",
                    "give exactly one of `text` and `path`",
                ))
            }
        };
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
    fn files_are_read_in_chunks_with_characters_cut_between_them() {
        let dir = std::env::temp_dir().join(format!("polyhost-text-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.txt");
        // Multi-byte characters land on every chunk boundary; the inline count agrees.
        let text = "é don't x\n".repeat(3 * CHECK_EVERY / 11 + 7) + "last";
        std::fs::write(&path, &text).unwrap();
        let inline = run(json!({"text": text})).unwrap();
        let file = run(json!({"path": path.to_str().unwrap()})).unwrap();
        assert_eq!(inline, file);
        assert_eq!(file["lines"], 3 * CHECK_EVERY / 11 + 8);
        std::fs::write(&path, b"ok \xff").unwrap();
        let err = run(json!({"path": path.to_str().unwrap()})).unwrap_err();
        assert_eq!(
            (err.code.as_str(), err.field.as_deref()),
            (codes::INVALID_INPUT, Some("path"))
        );
        assert!(err.message.contains("offset 3"), "{}", err.message);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_vocabulary_is_bounded_unless_no_words_are_listed() {
        let limits = crate::node::NativeLimits {
            max_text_vocabulary_bytes: 10_000,
            ..crate::node::NativeLimits::default()
        };
        let ctx = NodeCtx::default().with_limits(limits);
        let mut many = String::new();
        for i in 0..1000 {
            many.push('w');
            many.push_str(&i.to_string());
            many.push(' ');
        }
        let err = TextStats.run(json!({"text": many}), &ctx).unwrap_err();
        assert_eq!(err.code, codes::LIMIT_EXCEEDED);
        assert_eq!(err.field.as_deref(), Some("text"));
        assert!(
            err.message.contains("max_text_vocabulary_bytes = 10000"),
            "{}",
            err.message
        );
        let long = "x".repeat(1_000_000);
        assert_eq!(
            TextStats.run(json!({"text": long}), &ctx).unwrap_err().code,
            codes::LIMIT_EXCEEDED
        );
        let out = TextStats
            .run(json!({"text": many, "top": 0}), &ctx)
            .unwrap();
        assert_eq!(out["words"], 1000);
        let out = TextStats
            .run(json!({"text": long, "top": 0}), &ctx)
            .unwrap();
        assert_eq!(
            (out["words"].as_u64(), out["lines"].as_u64()),
            (Some(1), Some(1))
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
