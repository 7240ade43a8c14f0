//! Tool results as the model may see them: blocked fields removed at any depth, arrays cut to the row
//! limit, and a note saying what was withheld so the model does not take a partial answer for a whole one.

use serde_json::Value;

use super::Policy;

#[derive(Debug, Clone, PartialEq)]
pub struct Shaped {
    pub value: Value,
    pub removed_fields: usize,
    pub truncated_arrays: usize,
}

impl Shaped {
    /// What to tell the model about the shaping, if anything was withheld.
    pub fn note(&self, policy: &Policy) -> Option<String> {
        let mut notes = Vec::new();
        if self.truncated_arrays > 0 {
            let limit = policy.document.max_rows_per_query.unwrap_or_default();
            notes.push(format!(
                "{} list(s) were cut to {limit} items by the tenant's policy; more rows exist",
                self.truncated_arrays
            ));
        }
        if self.removed_fields > 0 {
            notes.push(format!("{} field(s) were withheld by the tenant's policy", self.removed_fields));
        }
        (!notes.is_empty()).then(|| notes.join("; "))
    }
}

/// Applies the profile's `blocked_fields` and `max_rows_per_query` to a tool result.
pub fn shape(policy: &Policy, mut value: Value) -> Shaped {
    let mut shaped = Shaped { value: Value::Null, removed_fields: 0, truncated_arrays: 0 };
    let limit = policy.document.max_rows_per_query.map(|limit| limit as usize);
    walk(policy, limit, &mut value, &mut shaped);
    shaped.value = value;
    shaped
}

fn walk(policy: &Policy, limit: Option<usize>, value: &mut Value, shaped: &mut Shaped) {
    match value {
        Value::Object(map) => {
            let before = map.len();
            map.retain(|key, _| !policy.blocked_fields.contains(&key.to_lowercase()));
            shaped.removed_fields += before - map.len();
            for child in map.values_mut() {
                walk(policy, limit, child, shaped);
            }
        }
        Value::Array(items) => {
            if let Some(limit) = limit
                && items.len() > limit
            {
                items.truncate(limit);
                shaped.truncated_arrays += 1;
            }
            for item in items {
                walk(policy, limit, item, shaped);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn blocked_fields_go_at_any_depth_and_rows_are_cut() {
        let policy = Policy::from_json(json!({
            "tool_allowlist": ["*"], "blocked_fields": ["SSN", "salary"], "max_rows_per_query": 2
        }))
        .unwrap();
        let result = json!({
            "count": 3,
            "ssn": "top level",
            "rows": [
                { "name": "Ada", "ssn": "078-05-1120", "pay": { "Salary": 1 } },
                { "name": "Bob", "ssn": "219-09-9999" },
                { "name": "Cy" }
            ]
        });
        let shaped = shape(&policy, result);
        assert_eq!(shaped.value, json!({ "count": 3, "rows": [{ "name": "Ada", "pay": {} }, { "name": "Bob" }] }));
        assert_eq!((shaped.removed_fields, shaped.truncated_arrays), (4, 1));
        let note = shaped.note(&policy).unwrap();
        assert!(note.contains("cut to 2 items") && note.contains("4 field(s) were withheld"), "{note}");
    }

    #[test]
    fn an_untouched_result_has_no_note() {
        let policy = Policy::from_json(json!({ "tool_allowlist": ["*"], "blocked_fields": ["ssn"] })).unwrap();
        let shaped = shape(&policy, json!({ "rows": [1, 2, 3] }));
        assert_eq!(shaped.value, json!({ "rows": [1, 2, 3] }));
        assert_eq!(shaped.note(&policy), None);
    }
}
