//! Counting what a JSON body holds before parsing it.
//!
//! serde_json builds the whole tree at once, and each value of it takes far
//! more memory than its text: `[{},{},…]` is 3 bytes an item on the wire and
//! about a hundred in the tree. [`scan`] reads the bytes once, without
//! allocating, and answers how many values the tree will hold, how deep it
//! nests and how many items its top-level list has, so a body can be refused
//! (or made to wait for memory) before it is parsed.

use crate::seed::DecodeError;

/// Bytes one parsed JSON value takes, about: the `Value` itself, its share of
/// its parent's array or map, and an object key.
pub const BYTES_PER_VALUE: usize = 96;

/// Deepest nesting any body may have (serde_json's own limit is 128).
pub const MAX_DEPTH: usize = 64;

/// What [`scan`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonShape {
    /// Values (objects, arrays, strings, numbers, literals), about: the tree's
    /// node count, never less.
    pub values: usize,
    /// Items of the body's list: the top-level array's, or for an object the
    /// longest array directly inside it (`{"spans": [...]}`, OTLP's
    /// `resourceSpans`).
    pub items: usize,
    /// Bytes the parsed tree will take, about.
    pub decoded_bytes: usize,
}

/// Keys of a top-level object whose array holds the body's items.
const LIST_KEYS: &[&[u8]] = &[b"spans", b"logs"];

/// Scans a JSON body, refusing it when it nests deeper than [`MAX_DEPTH`] or
/// its list holds more than `max_items` items. Syntax is left to the parser:
/// this only counts.
pub fn scan(body: &[u8], max_items: usize) -> Result<JsonShape, DecodeError> {
    // Open containers: whether each is an array, its items so far, and
    // whether its items are the body's (the top-level array, or the array
    // of a top-level `spans` / `logs` key).
    let mut stack: Vec<(bool, usize, bool)> = Vec::with_capacity(16);
    let mut shape = JsonShape::default();
    let mut in_string = false;
    let mut escaped = false;
    let mut in_scalar = false;
    // The top-level object's keys: whether the next string is one, and the
    // start of the last one (enough to recognise the list keys).
    let mut expect_key = false;
    let mut key: Option<Vec<u8>> = None;
    let mut last_key: Vec<u8> = Vec::new();
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                if let Some(k) = key.take() {
                    last_key = k;
                }
                continue;
            }
            if let Some(k) = key.as_mut() {
                if k.len() <= 16 {
                    k.push(b);
                }
            }
            continue;
        }
        let delimiter = matches!(
            b,
            b'{' | b'[' | b'"' | b'}' | b']' | b',' | b':' | b' ' | b'\t' | b'\n' | b'\r'
        );
        let starts_value = match b {
            b'{' | b'[' | b'"' => true,
            _ => !delimiter && !in_scalar,
        };
        in_scalar = !delimiter;
        if starts_value {
            // Object keys count as values too: they take memory in the tree.
            shape.values += 1;
            if let Some((true, n, counted)) = stack.last_mut() {
                *n += 1;
                if *counted {
                    shape.items = shape.items.max(*n);
                    if shape.items > max_items {
                        return Err(DecodeError::body(format!(
                            "too many items in one request (limit {max_items})"
                        )));
                    }
                }
            }
        }
        let top_object = stack.len() == 1 && stack.first().is_some_and(|(array, ..)| !array);
        match b {
            b'{' | b'[' => {
                if stack.len() >= MAX_DEPTH {
                    return Err(DecodeError::body(format!(
                        "JSON nested deeper than {MAX_DEPTH} levels"
                    )));
                }
                let counted = b == b'['
                    && (stack.is_empty()
                        || (top_object && LIST_KEYS.contains(&last_key.as_slice())));
                stack.push((b == b'[', 0, counted));
                expect_key = b == b'{' && stack.len() == 1;
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => expect_key = top_object,
            b':' => expect_key = false,
            b'"' => {
                in_string = true;
                if expect_key && top_object {
                    key = Some(Vec::new());
                }
            }
            _ => {}
        }
    }
    shape.decoded_bytes = shape
        .values
        .saturating_mul(BYTES_PER_VALUE)
        .saturating_add(body.len());
    Ok(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_items_of_the_top_list_and_of_a_spans_list() {
        let s = scan(br#"[{"a":1},{"b":"x,y]"},{}]"#, 10).expect("ok");
        assert_eq!(s.items, 3);
        let s = scan(br#"{"spans":[{"a":[1,2,3,4,5,6]},{"b":2}]}"#, 10).expect("ok");
        assert_eq!(s.items, 2, "the nested [1..6] is not a list of items");
        // A lone span's own arrays are not the body's items, however long.
        let s = scan(br#"{"name":"x","tags":[1,2,3,4,5,6,7,8,9,10,11,12]}"#, 10).expect("ok");
        assert_eq!(s.items, 0);
        let s = scan(br#"{"x":"spans","logs":[1,2,3]}"#, 10).expect("ok");
        assert_eq!(s.items, 3, "a key, not a value, names the list");
        assert_eq!(scan(b"[]", 10).map(|s| s.items), Ok(0));
        assert_eq!(scan(br#"{"name":"x"}"#, 10).map(|s| s.items), Ok(0));
        // An escaped quote does not end a string.
        let s = scan(br#"["a\"],[,", 1]"#, 10).expect("ok");
        assert_eq!(s.items, 2);
    }

    #[test]
    fn values_count_every_node() {
        // array, 2 objects, 2 keys, 2 scalars
        let s = scan(br#"[{"a":1},{"b":true}]"#, 10).expect("ok");
        assert_eq!(s.values, 7);
        assert_eq!(s.decoded_bytes, 7 * BYTES_PER_VALUE + 20);
    }

    #[test]
    fn bombs_are_refused_while_counting() {
        let mut bomb = b"[".to_vec();
        bomb.extend(b"{},".repeat(100_000));
        bomb.extend(b"{}]");
        let e = scan(&bomb, 10_000).expect_err("refused");
        assert!(e.message.contains("limit 10000"), "{e}");
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert!(scan(deep.as_bytes(), 10).is_err());
        assert!(scan("[".repeat(MAX_DEPTH).as_bytes(), 10).is_ok());
    }
}
