//! The REST protocol of a Snowflake model service, which local services speak too
//! (SNOWFLAKE.md §3): `POST /<method>` with `{"data": [[row, input, ...], ...]}` (flat: inputs in
//! signature order) or `{"data": [[row, {"name": value}], ...]}` (wide), answered with
//! `{"data": [[row, {output: value}], ...]}`. Also the signatures each task gets (§2, DESIGN.md).

use serde_json::{Value, json};

use crate::domain::{Column, Function};

fn col(name: &str, kind: &str) -> Column {
    Column {
        name: name.into(),
        kind: kind.into(),
    }
}

/// The functions a task is served with, named as Snowflake names them.
pub fn functions_for(task: &str) -> Vec<Function> {
    match task {
        "sentence-similarity" => ["ENCODE", "ENCODE_QUERY", "ENCODE_DOCUMENT"]
            .iter()
            .map(|name| Function {
                name: (*name).into(),
                arguments: vec![col("sentence", "STRING")],
                returns: vec![col("output", "ARRAY")],
                required: None,
            })
            .collect(),
        "token-classification" => vec![Function {
            name: "__CALL__".into(),
            arguments: vec![col("inputs", "STRING")],
            returns: vec![col("outputs", "ARRAY")],
            required: None,
        }],
        "feature-extraction" => vec![Function {
            name: "__CALL__".into(),
            arguments: vec![col("inputs", "STRING")],
            returns: vec![col("cls", "ARRAY"), col("mean", "ARRAY")],
            required: None,
        }],
        "zero-shot-image-classification" => vec![Function {
            name: "__CALL__".into(),
            arguments: vec![col("images", "BINARY"), col("candidate_labels", "ARRAY")],
            returns: vec![col("labels", "ARRAY"), col("scores", "ARRAY")],
            required: None,
        }],
        _ => Vec::new(),
    }
}

/// The function a REST path names: `/encode-query` → `ENCODE_QUERY`.
pub fn function_for_path<'a>(functions: &'a [Function], path: &str) -> Option<&'a Function> {
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    functions.iter().find(|f| f.rest_path() == path)
}

/// One request row: its id and its inputs in signature order.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: Value,
    pub inputs: Vec<Value>,
}

/// Reads a request body in the flat or wide form against a signature.
pub fn parse_request(body: &Value, arguments: &[Column]) -> Result<Vec<Row>, String> {
    let data = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or("the body must be a JSON object with a `data` array: {\"data\": [[0, ...], ...]}")?;
    let names: Vec<&str> = arguments.iter().map(|c| c.name.as_str()).collect();
    data.iter()
        .enumerate()
        .map(|(i, row)| {
            let row = row
                .as_array()
                .ok_or_else(|| format!("data[{i}] must be an array: [row id, inputs...]"))?;
            let id = row
                .first()
                .cloned()
                .ok_or_else(|| format!("data[{i}] is empty: it needs a row id first"))?;
            let rest = &row[1..];
            let inputs = match rest {
                [Value::Object(wide)] => names
                    .iter()
                    .map(|n| {
                        wide.get(*n).cloned().ok_or_else(|| {
                            format!(
                                "data[{i}] has no `{n}` (the inputs are {})",
                                names.join(", ")
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                flat if flat.len() == names.len() => flat.to_vec(),
                other => {
                    return Err(format!(
                        "data[{i}] has {} input(s); this method takes {}: {}",
                        other.len(),
                        names.len(),
                        names.join(", ")
                    ));
                }
            };
            Ok(Row { id, inputs })
        })
        .collect()
}

/// Writes a response body: each row id with its output object.
pub fn response(rows: Vec<(Value, Value)>) -> Value {
    json!({ "data": rows.into_iter().map(|(id, out)| json!([id, out])).collect::<Vec<_>>() })
}

/// Builds a request body in the flat form.
pub fn request(rows: &[Vec<Value>]) -> Value {
    json!({
        "data": rows
            .iter()
            .enumerate()
            .map(|(i, inputs)| {
                let mut row = vec![json!(i)];
                row.extend(inputs.iter().cloned());
                Value::Array(row)
            })
            .collect::<Vec<_>>()
    })
}

/// Reads a response body back into outputs ordered as the request rows were (by row id).
pub fn parse_response(body: &Value, rows: usize) -> Result<Vec<Value>, String> {
    let data = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or("the response has no `data` array")?;
    let mut out = vec![Value::Null; rows];
    for row in data {
        let (Some(id), Some(value)) = (row.get(0).and_then(Value::as_u64), row.get(1)) else {
            return Err("a response row is not [row id, output]".into());
        };
        let slot = out
            .get_mut(id as usize)
            .ok_or_else(|| format!("the response names row {id}, which was not sent"))?;
        *slot = value.clone();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_snowflake() {
        let f = functions_for("sentence-similarity");
        assert_eq!(f[0].rest_path(), "/encode");
        assert_eq!(f[1].rest_path(), "/encode-query");
        let call = functions_for("token-classification");
        assert_eq!(call[0].rest_path(), "/--call--");
        assert_eq!(
            function_for_path(&f, "encode-document").map(|f| f.name.as_str()),
            Some("ENCODE_DOCUMENT")
        );
        assert!(function_for_path(&f, "/--call--").is_none());
    }

    #[test]
    fn flat_and_wide_forms_read_the_same() {
        let sig = &functions_for("sentence-similarity")[0].arguments;
        let flat = parse_request(&json!({"data": [[0, "a"], [1, "b"]]}), sig);
        let wide = parse_request(
            &json!({"data": [[0, {"sentence": "a"}], [1, {"sentence": "b"}]]}),
            sig,
        );
        assert_eq!(flat, wide);
        assert_eq!(flat.map(|r| r.len()), Ok(2));
        let zs = &functions_for("zero-shot-image-classification")[0].arguments;
        let rows =
            parse_request(&json!({"data": [[7, "aGk=", ["x", "y"]]]}), zs).unwrap_or_default();
        assert_eq!(rows[0].id, json!(7));
        assert_eq!(rows[0].inputs[1], json!(["x", "y"]));
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        let sig = &functions_for("sentence-similarity")[0].arguments;
        let e = |v: Value| parse_request(&v, sig).err().unwrap_or_default();
        assert!(e(json!({"rows": []})).contains("`data` array"));
        assert!(e(json!({"data": ["x"]})).contains("data[0] must be an array"));
        assert!(e(json!({"data": [[]]})).contains("row id"));
        assert!(e(json!({"data": [[0, "a", "b"]]})).contains("takes 1: sentence"));
        assert!(e(json!({"data": [[0, {"text": "a"}]]})).contains("no `sentence`"));
    }

    #[test]
    fn responses_come_back_in_row_order() {
        let body = response(vec![
            (json!(1), json!({"o": 2})),
            (json!(0), json!({"o": 1})),
        ]);
        assert_eq!(
            parse_response(&body, 2),
            Ok(vec![json!({"o": 1}), json!({"o": 2})])
        );
        assert!(parse_response(&body, 1).is_err());
        assert_eq!(request(&[vec![json!("a")]]), json!({"data": [[0, "a"]]}));
    }
}
