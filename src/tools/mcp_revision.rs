//! Which MCP revision each connector's server speaks, remembered so that later sessions skip the probe.
//!
//! rmcp negotiates one session at a time: its `Auto` lifecycle asks `server/discover` at 2026-07-28 and,
//! when the server answers as an older one, falls back to `initialize` at 2025-11-25 on the same
//! transport. It keeps nothing from one session to the next, where the 2026-07-28 revision says a client
//! SHOULD remember what each server speaks and try that first. This does, in memory, per connector and
//! connector version (`updated_at`: an edited URL or command is probed again): a server of the previous
//! revision gets its `initialize` at once, without the refused `server/discover` first; a server of the
//! new one still gets `server/discover`, which is its handshake (rmcp has no session without it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rmcp::ClientLifecycleMode;
use rmcp::model::ProtocolVersion;

use crate::ids::ConnectorId;

/// Per connector: its version (`updated_at`) and the revision its server negotiated then.
type Known = HashMap<ConnectorId, (DateTime<Utc>, ProtocolVersion)>;

/// The revision each connector's server last negotiated, for the connector version it was negotiated with.
#[derive(Debug, Clone, Default)]
pub struct Revisions(Arc<Mutex<Known>>);

impl Revisions {
    /// What the connector's server spoke last, if it was reached since the connector last changed.
    pub fn known(&self, id: ConnectorId, version: DateTime<Utc>) -> Option<ProtocolVersion> {
        let known = self.0.lock().expect("the revisions lock is never poisoned");
        known.get(&id).filter(|(at, _)| *at == version).map(|(_, protocol)| protocol.clone())
    }

    pub fn record(&self, id: ConnectorId, version: DateTime<Utc>, protocol: ProtocolVersion) {
        self.0.lock().expect("the revisions lock is never poisoned").insert(id, (version, protocol));
    }

    /// Forgets what the server spoke: the next session probes again.
    pub fn forget(&self, id: ConnectorId) {
        self.0.lock().expect("the revisions lock is never poisoned").remove(&id);
    }
}

/// How to open a session with a server that spoke `known` last time (`None`: not known, probe).
pub fn lifecycle(known: Option<&ProtocolVersion>) -> ClientLifecycleMode {
    match known {
        None => ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        },
        Some(known) if known.has_initialize() => ClientLifecycleMode::Initialize,
        Some(known) => ClientLifecycleMode::Discover { preferred_versions: vec![known.clone()] },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_server_is_probed_and_a_known_one_spoken_to_in_its_revision() {
        let auto = ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        };
        let cases = [
            (None, auto),
            (Some(ProtocolVersion::V_2025_11_25), ClientLifecycleMode::Initialize),
            (Some(ProtocolVersion::V_2024_11_05), ClientLifecycleMode::Initialize),
            (
                Some(ProtocolVersion::V_2026_07_28),
                ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] },
            ),
        ];
        for (known, expected) in cases {
            assert_eq!(lifecycle(known.as_ref()), expected, "{known:?}");
        }
    }

    #[test]
    fn a_changed_connector_is_not_known_and_forgetting_forgets() {
        let revisions = Revisions::default();
        let id = ConnectorId::new();
        let version = Utc::now();
        revisions.record(id, version, ProtocolVersion::V_2026_07_28);
        assert_eq!(revisions.known(id, version), Some(ProtocolVersion::V_2026_07_28));
        assert_eq!(revisions.known(id, version + chrono::Duration::seconds(1)), None);
        revisions.forget(id);
        assert_eq!(revisions.known(id, version), None);
    }
}
