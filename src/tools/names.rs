//! Tool names. People and policies say `connector.tool`; model providers allow only `[A-Za-z0-9_-]` (OpenAI
//! and Anthropic, up to 64 and 128 characters; Gemini also allows dots), so each turn gives every visible
//! tool a wire name that suits them all, and maps the model's calls back through the same table.

use std::collections::HashMap;

/// The longest name every provider accepts.
const MAX_WIRE_NAME: usize = 64;

/// `connector.tool`, the name policies match.
pub fn qualified(connector: &str, tool: &str) -> String {
    format!("{connector}.{tool}")
}

/// Wire names for one turn's tools, unique, in the order given.
#[derive(Debug, Clone, Default)]
pub struct WireNames {
    by_wire: HashMap<String, String>,
}

impl WireNames {
    /// Adds a qualified name and returns the wire name the model will see for it.
    pub fn add(&mut self, qualified: &str) -> String {
        // `crm.find` and `crm_find` must not collide: the separator becomes a double underscore.
        let base = match qualified.split_once('.') {
            Some((connector, tool)) => format!("{}__{}", sanitize(connector), sanitize(tool)),
            None => sanitize(qualified),
        };
        let mut candidate = truncate(&base, MAX_WIRE_NAME);
        let mut suffix = 2;
        while self.by_wire.contains_key(&candidate) {
            let tail = format!("_{suffix}");
            candidate = format!("{}{tail}", truncate(&base, MAX_WIRE_NAME - tail.len()));
            suffix += 1;
        }
        self.by_wire.insert(candidate.clone(), qualified.to_owned());
        candidate
    }

    /// The qualified name behind a wire name the model used; `None` for a name it made up.
    pub fn qualified(&self, wire: &str) -> Option<&str> {
        self.by_wire.get(wire).map(String::as_str)
    }
}

fn sanitize(part: &str) -> String {
    part.chars()
        .map(|character| if character.is_ascii_alphanumeric() || character == '-' { character } else { '_' })
        .collect()
}

fn truncate(name: &str, max: usize) -> String {
    name.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_suit_every_provider_and_map_back() {
        let mut names = WireNames::default();
        let plain = names.add("crm.find_customer");
        assert_eq!(plain, "crm__find_customer");
        let dotted = names.add("crm.orders.list v2");
        assert_eq!(dotted, "crm__orders_list_v2");
        let long = names.add(&format!("crm.{}", "x".repeat(100)));
        let again = names.add(&format!("crm.{}y", "x".repeat(100)));
        for wire in [&plain, &dotted, &long, &again] {
            assert!(wire.len() <= 64 && wire.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
        }
        assert_ne!(long, again);
        assert_eq!(names.qualified(&plain), Some("crm.find_customer"));
        assert_eq!(names.qualified(&again), Some(format!("crm.{}y", "x".repeat(100)).as_str()));
        assert_eq!(names.qualified("crm__unknown"), None);
    }
}
