//! Which provider answers a model name, and which models a tenant can name at all. A name is
//! `provider/model` (the provider said outright), a model the tenant declared for its own server, a
//! name or alias in the model catalog, or the tenant's default or fallback model. A bare name nothing
//! knows goes to the default provider only when that is the tenant's own OpenAI-compatible server
//! (whose models nobody else can list); otherwise it is unknown, never guessed.

use std::sync::Arc;

use crate::catalog::{Catalog, ModelInfo};
use crate::providers::{ProviderKind, local};

/// What routing needs to know of a tenant.
#[derive(Debug, Clone)]
pub struct TenantModels<'a> {
    pub default_provider: ProviderKind,
    pub default_model: &'a str,
    pub fallback_model: Option<&'a str>,
    /// The models the tenant declared for its OpenAI-compatible server.
    pub declared: &'a [Arc<ModelInfo>],
    pub catalog: &'a Catalog,
    /// The providers the tenant has a key for, its own or the platform's (the local one needs none).
    pub usable: &'a [ProviderKind],
}

/// A name routed: the provider and the model as that provider is asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub provider: ProviderKind,
    pub model: String,
}

/// A model name this tenant cannot use, and why (in words for the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct UnknownModel {
    pub name: String,
    pub reason: String,
}

/// One model the tenant can name: `id` routes back to `provider`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsableModel {
    pub id: String,
    pub provider: ProviderKind,
}

impl TenantModels<'_> {
    fn can_use(&self, provider: ProviderKind) -> bool {
        provider == ProviderKind::Local || self.usable.contains(&provider)
    }

    /// The provider and model for `name`. The default provider is always routable (a turn on it
    /// without a key is accepted and fails as `provider_not_configured`, keeping the user's message);
    /// another provider must have a key.
    pub fn route(&self, name: &str) -> Result<Route, UnknownModel> {
        let route = self.find(name).ok_or_else(|| UnknownModel {
            name: name.to_owned(),
            reason: format!(
                "The model `{name}` does not exist or you do not have access to it. \
                 GET /v1/models lists the models you can use; name one the catalog does not list as provider/model."
            ),
        })?;
        if route.provider != self.default_provider && !self.can_use(route.provider) {
            return Err(UnknownModel {
                name: name.to_owned(),
                reason: format!(
                    "The model `{name}` is served by {}, for which neither this tenant nor the platform has a key.",
                    route.provider.as_str()
                ),
            });
        }
        Ok(route)
    }

    fn find(&self, name: &str) -> Option<Route> {
        let routed = |provider: ProviderKind, model: &str| Some(Route { provider, model: model.to_owned() });
        if name.trim().is_empty() {
            return None;
        }
        if let Some((prefix, model)) = name.split_once('/')
            && let Some(provider) = ProviderKind::parse(prefix)
        {
            return (!model.is_empty()).then(|| Route { provider, model: model.to_owned() });
        }
        if name.eq_ignore_ascii_case(local::MODEL_NAME) {
            return routed(ProviderKind::Local, local::MODEL_NAME);
        }
        if self.declared.iter().any(|model| model.name.eq_ignore_ascii_case(name)) {
            return routed(ProviderKind::OpenAiCompatible, name);
        }
        if let Some(provider) = self.catalog_provider(name) {
            return routed(provider, name);
        }
        let defaults = [Some(self.default_model), self.fallback_model];
        if self.default_provider == ProviderKind::OpenAiCompatible || defaults.contains(&Some(name)) {
            return routed(self.default_provider, name);
        }
        None
    }

    /// The provider of a catalog model by this name: the default provider's when it has one, else a
    /// provider the tenant can use, else any.
    fn catalog_provider(&self, name: &str) -> Option<ProviderKind> {
        let providers: Vec<ProviderKind> = ProviderKind::ALL
            .into_iter()
            .filter(|provider| self.catalog.find(provider.as_str(), name).is_some())
            .collect();
        let preferred =
            [self.default_provider].into_iter().chain(providers.iter().copied().filter(|p| self.can_use(*p)));
        preferred.into_iter().find(|provider| providers.contains(provider)).or_else(|| providers.first().copied())
    }

    /// Every model the tenant can name, once each, by provider: the default provider's default and
    /// fallback models, the declared models, and the catalog's models of every provider it can use.
    /// An id is the bare name when that routes back to the same provider, else `provider/name`.
    pub fn list(&self) -> Vec<UsableModel> {
        let mut candidates: Vec<(ProviderKind, String)> = [Some(self.default_model), self.fallback_model]
            .into_iter()
            .flatten()
            .filter_map(|name| self.find(name))
            .map(|route| (route.provider, route.model))
            .collect();
        candidates.extend(self.declared.iter().map(|model| (ProviderKind::OpenAiCompatible, model.name.clone())));
        for model in self.catalog.models() {
            if let Some(provider) = ProviderKind::parse(&model.provider)
                && (provider == self.default_provider || self.can_use(provider))
            {
                candidates.push((provider, model.name.clone()));
            }
        }
        let mut listed: Vec<UsableModel> = Vec::new();
        for (provider, name) in candidates {
            if provider != self.default_provider && !self.can_use(provider) {
                continue;
            }
            let routes_back = self.find(&name).is_some_and(|route| route.provider == provider);
            let id = if routes_back { name } else { format!("{}/{name}", provider.as_str()) };
            if !listed.iter().any(|known| known.id == id) {
                listed.push(UsableModel { id, provider });
            }
        }
        listed
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;

    const CATALOG: &str = r#"
[[model]]
provider = "openai"
name = "gpt-4o-mini"
aliases = ["gpt-4o-mini-2024-07-18"]
context_window = 128000
max_output_tokens = 16384
input = "0.15"
output = "0.60"

[[model]]
provider = "anthropic"
name = "claude-sonnet-4-5"
context_window = 200000
max_output_tokens = 64000
input = "3"
output = "15"

[[model]]
provider = "openai_compatible"
name = "gpt-4o-mini"
context_window = 8192
max_output_tokens = 1024
input = "0"
output = "0"
"#;

    fn catalog() -> Catalog {
        // One file per call: the tests run at once.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("routing-catalog-{}-{call}.toml", std::process::id()));
        std::fs::write(&path, format!("replace = true\n{CATALOG}")).expect("a temporary file");
        Catalog::with_operator_file(&path).expect("a valid catalog")
    }

    fn tenant<'a>(
        catalog: &'a Catalog,
        default_provider: ProviderKind,
        usable: &'a [ProviderKind],
    ) -> TenantModels<'a> {
        TenantModels {
            default_provider,
            default_model: "house-model",
            fallback_model: Some("house-fallback"),
            declared: &[],
            catalog,
            usable,
        }
    }

    #[expect(clippy::unnecessary_wraps, reason = "compared with what `route` answers")]
    fn route(provider: ProviderKind, model: &str) -> Result<Route, UnknownModel> {
        Ok(Route { provider, model: model.to_owned() })
    }

    #[test]
    fn a_provider_prefix_routes_to_that_provider_whatever_the_catalog_says() {
        let catalog = catalog();
        let tenant = tenant(&catalog, ProviderKind::OpenAi, &[ProviderKind::OpenAi, ProviderKind::Anthropic]);
        assert_eq!(tenant.route("anthropic/claude-opus-9"), route(ProviderKind::Anthropic, "claude-opus-9"));
        assert_eq!(tenant.route("openai/gpt-9"), route(ProviderKind::OpenAi, "gpt-9"));
        // A slash after something that is not a provider is part of the model's own name.
        assert!(tenant.route("meta-llama/Llama-3").is_err());
        assert!(tenant.route("anthropic/").is_err());
    }

    #[test]
    fn catalog_names_and_aliases_route_to_their_provider_preferring_the_default() {
        let catalog = catalog();
        let tenant = tenant(&catalog, ProviderKind::OpenAi, &[ProviderKind::OpenAi, ProviderKind::Anthropic]);
        assert_eq!(tenant.route("claude-sonnet-4-5"), route(ProviderKind::Anthropic, "claude-sonnet-4-5"));
        assert_eq!(tenant.route("gpt-4o-mini-2024-07-18"), route(ProviderKind::OpenAi, "gpt-4o-mini-2024-07-18"));
        let own_server = tenant_with_default(&catalog, ProviderKind::OpenAiCompatible);
        assert_eq!(own_server.route("gpt-4o-mini"), route(ProviderKind::OpenAiCompatible, "gpt-4o-mini"));
    }

    fn tenant_with_default(catalog: &Catalog, default_provider: ProviderKind) -> TenantModels<'_> {
        tenant(catalog, default_provider, &[ProviderKind::OpenAi])
    }

    #[test]
    fn unknown_names_and_providers_without_a_key_are_refused_with_the_reason() {
        let catalog = catalog();
        let tenant = tenant(&catalog, ProviderKind::OpenAi, &[ProviderKind::OpenAi]);
        let unknown = tenant.route("gpt-9").expect_err("nothing knows gpt-9");
        assert!(unknown.reason.contains("does not exist"), "{unknown}");
        let keyless = tenant.route("claude-sonnet-4-5").expect_err("no anthropic key");
        assert!(keyless.reason.contains("anthropic"), "{keyless}");
        assert_eq!(tenant.route("house-model"), route(ProviderKind::OpenAi, "house-model"));
        assert_eq!(tenant.route("house-fallback"), route(ProviderKind::OpenAi, "house-fallback"));
        assert_eq!(tenant.route(local::MODEL_NAME), route(ProviderKind::Local, local::MODEL_NAME));
    }

    #[test]
    fn the_tenants_own_server_takes_any_name_and_its_declared_models_route_to_it() {
        let catalog = catalog();
        let declared = [Arc::new(ModelInfo {
            provider: "openai_compatible".to_owned(),
            name: "qwen3-8b".to_owned(),
            context_window: 1024,
            max_output_tokens: 256,
            prices: crate::catalog::Prices {
                input: Decimal::ZERO,
                output: Decimal::ZERO,
                cached_input: Decimal::ZERO,
                cache_write: Decimal::ZERO,
            },
        })];
        let mut tenant =
            tenant(&catalog, ProviderKind::OpenAi, &[ProviderKind::OpenAi, ProviderKind::OpenAiCompatible]);
        tenant.declared = &declared;
        assert_eq!(tenant.route("qwen3-8b"), route(ProviderKind::OpenAiCompatible, "qwen3-8b"));
        tenant.default_provider = ProviderKind::OpenAiCompatible;
        assert_eq!(tenant.route("anything-at-all"), route(ProviderKind::OpenAiCompatible, "anything-at-all"));
    }

    #[test]
    fn the_list_holds_every_usable_model_once_and_each_id_routes_back_to_its_provider() {
        let catalog = catalog();
        let tenant = tenant(&catalog, ProviderKind::OpenAiCompatible, &[ProviderKind::OpenAi]);
        let listed = tenant.list();
        let ids: Vec<&str> = listed.iter().map(|model| model.id.as_str()).collect();
        assert!(ids.contains(&"house-model") && ids.contains(&"openai/gpt-4o-mini"), "{ids:?}");
        assert!(!ids.iter().any(|id| id.contains("claude")), "no anthropic key: {ids:?}");
        for model in &listed {
            assert_eq!(tenant.route(&model.id).map(|route| route.provider), Ok(model.provider), "{}", model.id);
        }
    }
}
