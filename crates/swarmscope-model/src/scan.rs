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

/// Scans a JSON body, refusing it when it nests deeper than [`MAX_DEPTH`] or
/// its list holds more than `max_items` items. Syntax is left to the parser:
/// this only counts.
pub fn scan(body: &[u8], max_items: usize) -> Result<JsonShape, DecodeError> {
    // Open containers: whether each is an array, and its items so far.
    let mut stack: Vec<(bool, usize)> = Vec::with_capacity(16);
    let mut shape = JsonShape::default();
    let mut in_string = false;
    let mut escaped = false;
    let mut in_scalar = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        let starts_value = match b {
            b'{' | b'[' | b'"' => true,
            b'}' | b']' | b',' | b':' | b' ' | b'\t' | b'\n' | b'\r' => false,
            _ => !in_scalar,
        };
        in_scalar = !matches!(
            b,
            b'{' | b'[' | b'"' | b'}' | b']' | b',' | b':' | b' ' | b'\t' | b'\n' | b'\r'
        );
        if starts_value {
            // Object keys count as values too: they take memory in the tree.
            shape.values += 1;
            let depth = stack.len();
            let top_is_object = stack.first().is_some_and(|(array, _)| !array);
            if let Some((true, n)) = stack.last_mut() {
                *n += 1;
                if depth == 1 || (depth == 2 && top_is_object) {
                    shape.items = shape.items.max(*n);
                    if shape.items > max_items {
                        return Err(DecodeError::body(format!(
                            "too many items in one request (limit {max_items})"
                        )));
                    }
                }
            }
        }
        match b {
            b'{' | b'[' => {
                if stack.len() >= MAX_DEPTH {
                    return Err(DecodeError::body(format!(
                        "JSON nested deeper than {MAX_DEPTH} levels"
                    )));
                }
                stack.push((b == b'[', 0));
            }
            b'}' | b']' => {
                stack.pop();
            }
            b'"' => in_string = true,
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
