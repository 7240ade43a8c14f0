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
            map.retain(|key, _| !blocks(policy, key));
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

/// Whether `key` is one of the blocked fields, without regard to case: the same in lower case or in upper
/// case. Lower case alone lets `SS` past a block on `ß` (and `S` past `ſ`); upper case alone, `k` past the
/// Kelvin sign.
fn blocks(policy: &Policy, key: &str) -> bool {
    if policy.blocked_fields.is_empty() {
        return false;
    }
    let (lower, upper) = (key.to_lowercase(), key.to_uppercase());
    policy
        .blocked_fields
        .iter()
        .any(|(blocked_lower, blocked_upper)| *blocked_lower == lower || *blocked_upper == upper)
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

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// Whether a key is a blocked field "without regard to case": the same in lower case, or in upper case
        /// (`ß` and `SS`, `ſ` and `s`, the Kelvin sign and `k`).
        fn same_field(key: &str, blocked: &str) -> bool {
            key.to_lowercase() == blocked.to_lowercase() || key.to_uppercase() == blocked.to_uppercase()
        }

        /// The result as the profile must leave it, with the fields removed and the lists cut: a walk of its own.
        fn expected(value: &Value, blocked: &[String], limit: Option<usize>, counts: &mut (usize, usize)) -> Value {
            match value {
                Value::Object(fields) => {
                    let mut kept = serde_json::Map::new();
                    for (key, value) in fields {
                        if blocked.iter().any(|field| same_field(key, field)) {
                            counts.0 += 1;
                        } else {
                            kept.insert(key.clone(), expected(value, blocked, limit, counts));
                        }
                    }
                    Value::Object(kept)
                }
                Value::Array(items) => {
                    let kept = limit.unwrap_or(usize::MAX).min(items.len());
                    counts.1 += usize::from(kept < items.len());
                    Value::Array(items[..kept].iter().map(|item| expected(item, blocked, limit, counts)).collect())
                }
                other => other.clone(),
            }
        }

        /// A blocked field's name with each letter as written, in upper case or in lower case.
        fn variant(name: &str) -> impl Strategy<Value = String> + use<> {
            let letters: Vec<char> = name.chars().collect();
            prop::collection::vec(0..3u8, letters.len()).prop_map(move |cases| {
                letters
                    .iter()
                    .zip(cases)
                    .map(|(letter, case)| match case {
                        0 => letter.to_string(),
                        1 => letter.to_uppercase().collect(),
                        _ => letter.to_lowercase().collect(),
                    })
                    .collect()
            })
        }

        /// A tool result whose keys are often the blocked fields in any case, with lists of any length.
        fn result(blocked: &[String]) -> impl Strategy<Value = Value> + use<> {
            let mut keys: Vec<BoxedStrategy<String>> = blocked.iter().map(|name| variant(name).boxed()).collect();
            keys.push("[a-z_]{1,6}".boxed());
            keys.push("(?s).{0,6}".boxed());
            let key = prop::strategy::Union::new(keys);
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<i64>().prop_map(Value::from),
                "(?s).{0,8}".prop_map(Value::from),
                any::<bool>().prop_map(Value::from),
            ];
            leaf.prop_recursive(5, 96, 8, move |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                    prop::collection::vec((key.clone(), inner), 0..8)
                        .prop_map(|fields| Value::Object(fields.into_iter().collect())),
                ]
            })
        }

        fn profile() -> impl Strategy<Value = (Vec<String>, Option<u32>)> {
            let name = "[a-zA-Z_0-9ßẞſσςΣİıKﬀ]{1,6}".prop_filter("not blank", |name: &String| !name.trim().is_empty());
            (prop::collection::vec(name, 0..4), proptest::option::of(1..5u32))
        }

        proptest! {
            #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(256) })]

            /// No blocked field survives at any depth, in any case; no list is longer than the limit; all else is
            /// kept as it was; the counts and the note say what was withheld; shaping again changes nothing.
            #[test]
            fn blocked_fields_never_reach_the_model_and_lists_keep_to_the_limit(
                ((blocked, limit), value) in profile().prop_flat_map(|profile| {
                    let value = result(&profile.0);
                    (Just(profile), value)
                }),
            ) {
                let policy = Policy::from_json(json!({ "blocked_fields": blocked, "max_rows_per_query": limit }))
                    .expect("a valid profile");
                let shaped = shape(&policy, value.clone());
                let mut counts = (0, 0);
                let want = expected(&value, &blocked, limit.map(|limit| limit as usize), &mut counts);
                prop_assert_eq!(&shaped.value, &want);
                prop_assert_eq!((shaped.removed_fields, shaped.truncated_arrays), counts);
                prop_assert_eq!(shaped.note(&policy).is_some(), counts != (0, 0));
                let again = shape(&policy, shaped.value.clone());
                prop_assert_eq!(again, Shaped { value: shaped.value, removed_fields: 0, truncated_arrays: 0 });
            }
        }
    }

    #[test]
    fn a_blocked_field_is_removed_whichever_way_its_case_is_written() {
        // Found by the property below: `SSg` passed a block on `ßg` (lower case alone compared them).
        let policy = Policy::from_json(json!({ "blocked_fields": ["ßg", "ſsn", "\u{212A}ey"] })).unwrap();
        let shaped = shape(&policy, json!({ "SSg": 1, "ẞG": 2, "SSN": 3, "ssn": 4, "key": 5, "kept": 6 }));
        assert_eq!(shaped.value, json!({ "kept": 6 }));
        assert_eq!(shaped.removed_fields, 5);
    }

    #[test]
    fn an_untouched_result_has_no_note() {
        let policy = Policy::from_json(json!({ "tool_allowlist": ["*"], "blocked_fields": ["ssn"] })).unwrap();
        let shaped = shape(&policy, json!({ "rows": [1, 2, 3] }));
        assert_eq!(shaped.value, json!({ "rows": [1, 2, 3] }));
        assert_eq!(shaped.note(&policy), None);
    }
}
