//! Choosing the provider, model and key for a turn from the tenant's settings and credentials. A turn
//! whose provider cannot be used is still accepted (so the user's message is kept) and fails with
//! `provider_not_configured`.

use std::sync::Arc;

use sqlx::PgConnection;

use super::routing::{TenantModels, UnknownModel, UsableModel};
use crate::catalog::ModelInfo;
use crate::crypto::MasterKeys;
use crate::ids::TenantId;
use crate::providers::credentials::{self, CredentialError, PlatformProviders};
use crate::providers::http::HttpClient;
use crate::providers::{Provider, ProviderError, ProviderErrorKind, ProviderKind, local};
use crate::tenants;

/// What the engine needs to reach model providers.
#[derive(Debug, Clone)]
pub struct ProviderSetup {
    /// For the platform's own endpoints (the operator's configuration).
    pub http: HttpClient,
    /// For tenants' own keys and base URLs: resolves through the outbound policy.
    pub tenant_http: HttpClient,
    pub platform: PlatformProviders,
    pub keys: Arc<MasterKeys>,
    /// Context windows, output ceilings and prices of the models.
    pub catalog: crate::catalog::Catalog,
}

#[derive(Debug, Clone)]
pub struct Resolved {
    pub provider: Result<Provider, ProviderError>,
    pub provider_name: &'static str,
    pub model: String,
    pub fallback_model: Option<String>,
    pub is_byok: bool,
    /// The models the tenant declared for its own server (for an OpenAI-compatible provider).
    pub declared_models: Vec<Arc<ModelInfo>>,
}

/// The provider, model and key for a turn: the requested model routed (see [`routing`]), else the
/// tenant's default. A requested model this tenant cannot use is refused before anything is recorded.
pub async fn resolve(
    connection: &mut PgConnection,
    setup: &ProviderSetup,
    tenant_id: TenantId,
    requested_model: Option<&str>,
) -> Result<Result<Resolved, UnknownModel>, sqlx::Error> {
    // A named model is routed: everything routing reads comes in one round trip.
    let (config, known) = match requested_model {
        Some(_) => {
            let (config, known) = settings_and_known(connection, setup).await?;
            (config, Some(known))
        }
        None => (tenants::store::get_config(connection).await?, None),
    };
    let default_kind = default_provider(&config);
    let route = match (requested_model, &known) {
        (Some(name), Some(known)) => match known.models(&config, default_kind, &setup.catalog).route(name) {
            Ok(route) => Some(route),
            Err(unknown) => return Ok(Err(unknown)),
        },
        _ => None,
    };
    let (declared, stored) = known.map(|known| (known.declared, known.credentials)).unzip();
    let kind = route.as_ref().map_or(default_kind, |route| route.provider);
    if kind == ProviderKind::Local {
        return Ok(Ok(Resolved {
            provider: Ok(Provider::Local(local::LocalAnswerer)),
            provider_name: local::PROVIDER_NAME,
            model: local::MODEL_NAME.to_owned(),
            fallback_model: None,
            is_byok: false,
            declared_models: Vec::new(),
        }));
    }
    let requested_model = route.map(|route| route.model);
    let tenant = match stored {
        // Read with the providers it can reach: opened, not read again.
        Some(stored) => stored.open(&setup.keys, tenant_id, kind).map_err(CredentialError::from),
        None => credentials::tenant_credential(connection, &setup.keys, tenant_id, kind).await,
    };
    let tenant = match tenant {
        Ok(tenant) => tenant,
        Err(CredentialError::Database(error)) => return Err(error),
        Err(CredentialError::Crypto(error)) => {
            tracing::error!(%tenant_id, provider = kind.as_str(), %error, "a stored provider key does not open");
            let failure = ProviderError::new(
                ProviderErrorKind::NotConfigured,
                "the stored provider key cannot be decrypted with the configured master key",
            );
            return Ok(Ok(unusable(kind, failure, requested_model.as_deref())));
        }
    };
    let on_default = kind == default_kind;
    let model = requested_model
        .or_else(|| (on_default && config.default_model != local::MODEL_NAME).then(|| config.default_model.clone()))
        .or_else(|| tenant.as_ref().and_then(|tenant| tenant.default_model.clone()))
        .unwrap_or_else(|| kind.default_model().to_owned());
    let Some(chosen) = credentials::choose(kind, tenant.as_ref(), &setup.platform) else {
        let failure = ProviderError::new(
            ProviderErrorKind::NotConfigured,
            format!("no {} key is configured for this tenant or for the platform", kind.as_str()),
        );
        return Ok(Ok(unusable(kind, failure, Some(&model))));
    };
    let is_byok = chosen.is_byok;
    Ok(Ok(Resolved {
        provider: Ok(Provider::new(kind, chosen, if is_byok { &setup.tenant_http } else { &setup.http })),
        provider_name: kind.as_str(),
        model,
        fallback_model: config.fallback_model.filter(|_| on_default),
        is_byok,
        declared_models: match (kind, declared) {
            (ProviderKind::OpenAiCompatible, Some(declared)) => declared,
            (ProviderKind::OpenAiCompatible, None) => crate::catalog::tenant::declared(connection).await?,
            _ => Vec::new(),
        },
    }))
}

/// Every model this tenant can name, for `/v1/models`.
pub async fn usable_models(
    connection: &mut PgConnection,
    setup: &ProviderSetup,
) -> Result<Vec<UsableModel>, sqlx::Error> {
    let (config, known) = settings_and_known(connection, setup).await?;
    Ok(known.models(&config, default_provider(&config), &setup.catalog).list())
}

/// The tenant's default provider: the offline one when the setting names none known.
fn default_provider(config: &tenants::store::TenantConfig) -> ProviderKind {
    ProviderKind::parse(&config.default_provider).unwrap_or(ProviderKind::Local)
}

/// The settings and what routing reads besides them, in one round trip.
async fn settings_and_known(
    connection: &mut PgConnection,
    setup: &ProviderSetup,
) -> Result<(tenants::store::TenantConfig, Known), sqlx::Error> {
    let reads = [tenants::store::CONFIG_SELECT, crate::catalog::tenant::DECLARED, credentials::StoredCredentials::READ];
    let [config, declared, stored] = crate::db::read_together(connection, reads).await?;
    let credentials = credentials::StoredCredentials::of_rows(&stored)?;
    let usable = credentials.reachable(&setup.platform);
    let known = Known { declared: crate::catalog::tenant::declared_of(&declared)?, usable, credentials };
    Ok((tenants::store::config_of(&config)?, known))
}

/// What routing reads besides the settings: the tenant's declared models and the providers it can reach.
struct Known {
    declared: Vec<Arc<ModelInfo>>,
    usable: Vec<ProviderKind>,
    credentials: credentials::StoredCredentials,
}

impl Known {
    fn models<'a>(
        &'a self,
        config: &'a tenants::store::TenantConfig,
        default_provider: ProviderKind,
        catalog: &'a crate::catalog::Catalog,
    ) -> TenantModels<'a> {
        TenantModels {
            default_provider,
            default_model: &config.default_model,
            fallback_model: config.fallback_model.as_deref(),
            declared: &self.declared,
            catalog,
            usable: &self.usable,
        }
    }
}

fn unusable(kind: ProviderKind, failure: ProviderError, model: Option<&str>) -> Resolved {
    Resolved {
        provider: Err(failure),
        provider_name: kind.as_str(),
        model: model.map_or_else(|| kind.default_model().to_owned(), str::to_owned),
        fallback_model: None,
        is_byok: false,
        declared_models: Vec::new(),
    }
}
