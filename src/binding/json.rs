//! A small JSON writer for event payloads: V8's `JSON.parse` builds the objects faster
//! than setting their properties one by one across napi.

use std::fmt::Write;

/// Builds one JSON text.
#[derive(Debug, Default)]
pub struct Json {
    out: String,
    first: Vec<bool>,
}

impl Json {
    /// An empty writer.
    pub fn new() -> Json {
        Json {
            out: String::with_capacity(256),
            first: Vec::with_capacity(4),
        }
    }

    fn sep(&mut self) {
        if let Some(first) = self.first.last_mut() {
            if *first {
                *first = false;
            } else {
                self.out.push(',');
            }
        }
    }

    fn string(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                    let _ = write!(self.out, "\\u{:04x}", c as u32);
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    /// Starts an object (as a value, or under `key` inside an object).
    pub fn begin(&mut self, key: Option<&str>) -> &mut Self {
        self.sep();
        if let Some(k) = key {
            self.string(k);
            self.out.push(':');
        }
        self.out.push('{');
        self.first.push(true);
        self
    }

    /// Ends the current object.
    pub fn end(&mut self) -> &mut Self {
        self.first.pop();
        self.out.push('}');
        self
    }

    /// Starts an array under `key` (or as a value).
    pub fn begin_array(&mut self, key: Option<&str>) -> &mut Self {
        self.sep();
        if let Some(k) = key {
            self.string(k);
            self.out.push(':');
        }
        self.out.push('[');
        self.first.push(true);
        self
    }

    /// Ends the current array.
    pub fn end_array(&mut self) -> &mut Self {
        self.first.pop();
        self.out.push(']');
        self
    }

    fn key(&mut self, key: Option<&str>) {
        self.sep();
        if let Some(k) = key {
            self.string(k);
            self.out.push(':');
        }
    }

    /// A string member (or array element when `key` is `None`).
    pub fn str(&mut self, key: Option<&str>, value: &str) -> &mut Self {
        self.key(key);
        self.string(value);
        self
    }

    /// A number member; non-finite numbers are written as `null`.
    pub fn num(&mut self, key: Option<&str>, value: f64) -> &mut Self {
        self.key(key);
        if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
            // integers (ports, sizes, counters) skip the float formatter
            let _ = write!(self.out, "{}", value as i64);
        } else if value.is_finite() {
            let _ = write!(self.out, "{value}");
        } else {
            self.out.push_str("null");
        }
        self
    }

    /// A boolean member.
    pub fn bool(&mut self, key: Option<&str>, value: bool) -> &mut Self {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    /// A `null` member.
    pub fn null(&mut self, key: Option<&str>) -> &mut Self {
        self.key(key);
        self.out.push_str("null");
        self
    }

    /// The finished text.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_json() {
        let mut j = Json::new();
        j.begin(None)
            .str(Some("a"), "x\"y\n\u{1}\u{2028}é")
            .num(Some("n"), 25.0)
            .num(Some("f"), 1.5)
            .bool(Some("t"), true)
            .null(Some("z"));
        j.begin_array(Some("l"))
            .str(None, "p")
            .num(None, 1.0)
            .end_array();
        j.begin(Some("o")).end();
        j.end();
        assert_eq!(
            j.finish(),
            r#"{"a":"x\"y\n\u0001\u2028é","n":25,"f":1.5,"t":true,"z":null,"l":["p",1],"o":{}}"#
        );
    }
}
