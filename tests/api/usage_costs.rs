//! What a run cost: the cached, cache-written and reasoning tokens each provider reports in its own fields are
//! normalised (cache reads and writes inside the input, reasoning inside the output), priced by the model
//! catalog to the exact decimal, and shown the same on the run, on its `usage` event and on the `/v1` door; a
//! model the catalog does not know is recorded unpriced, never as free.

use std::str::FromStr as _;

use futures::StreamExt as _;
use mock_upstream::{Reply, UsageDetails};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::helpers::{SseEvent, TestApp, TestTenant};

/// A model's prices as `models/catalog.toml` writes them: US dollars per million tokens. A price the
/// catalog leaves out costs as `input` does.
struct Prices {
    input: &'static str,
    cached_input: &'static str,
    cache_write: &'static str,
    output: &'static str,
}

/// One provider's turn: what the scripted model reports on the wire, what Switchboard should make of it,
/// and what that costs.
struct Case {
    provider: &'static str,
    model: &'static str,
    /// (input, output) as the script gives them: every prompt token, every output token.
    usage: (u32, u32),
    details: UsageDetails,
    /// The normalised counts: cache reads, cache writes and reasoning as the provider can report them.
    cached: u64,
    cache_write: u64,
    reasoning: u64,
    prices: Prices,
    /// The cost worked out by hand from `prices`, in US dollars.
    cost: &'static str,
}

fn cases() -> [Case; 3] {
    [
        // OpenAI reports cache reads and reasoning, never cache writes.
        // (1200 − 1000) × 0.15 + 1000 × 0.075 + 300 × 0.60 = 30 + 75 + 180 = 285 per million.
        Case {
            provider: "openai",
            model: "gpt-4o-mini",
            usage: (1200, 300),
            details: UsageDetails { cache_read: 1000, cache_write: 0, reasoning: 100 },
            cached: 1000,
            cache_write: 0,
            reasoning: 100,
            prices: Prices { input: "0.15", cached_input: "0.075", cache_write: "0.15", output: "0.60" },
            cost: "0.000285",
        },
        // Anthropic reports cache reads and writes apart from `input_tokens`; its thinking is inside
        // `output_tokens` with no count of its own, so no reasoning is reported.
        // (2000 − 1500 − 400) × 3.00 + 1500 × 0.30 + 400 × 3.75 + 250 × 15.00 = 300 + 450 + 1500 + 3750 = 6000.
        Case {
            provider: "anthropic",
            model: "claude-sonnet-4-5",
            usage: (2000, 250),
            details: UsageDetails { cache_read: 1500, cache_write: 400, reasoning: 50 },
            cached: 1500,
            cache_write: 400,
            reasoning: 0,
            prices: Prices { input: "3.00", cached_input: "0.30", cache_write: "3.75", output: "15.00" },
            cost: "0.006",
        },
        // Gemini counts the cache inside the prompt and the thoughts outside the candidates.
        // (800 − 600) × 0.30 + 600 × 0.075 + 400 × 2.50 = 60 + 45 + 1000 = 1105 per million.
        Case {
            provider: "gemini",
            model: "gemini-2.5-flash",
            usage: (800, 400),
            details: UsageDetails { cache_read: 600, cache_write: 0, reasoning: 150 },
            cached: 600,
            cache_write: 0,
            reasoning: 150,
            prices: Prices { input: "0.30", cached_input: "0.075", cache_write: "0.30", output: "2.50" },
            cost: "0.001105",
        },
    ]
}

impl Case {
    fn reply(&self) -> Reply {
        Reply {
            text: "Cached and thought through.".into(),
            usage: Some(self.usage),
            details: Some(self.details),
            ..Reply::default()
        }
    }

    fn input(&self) -> u64 {
        u64::from(self.usage.0)
    }

    fn output(&self) -> u64 {
        u64::from(self.usage.1)
    }

    /// Uncached input, cache reads, cache writes and output, each at its price, per million.
    fn hand_cost(&self) -> Decimal {
        let price = |text: &str| Decimal::from_str(text).expect("a price");
        let fresh = self.input() - self.cached - self.cache_write;
        (Decimal::from(fresh) * price(self.prices.input)
            + Decimal::from(self.cached) * price(self.prices.cached_input)
            + Decimal::from(self.cache_write) * price(self.prices.cache_write)
            + Decimal::from(self.output()) * price(self.prices.output))
            / Decimal::from(1_000_000)
    }
}

/// A decimal string of the API, compared by value (the database keeps ten places: "0.0060000000").
fn decimal(value: &Value) -> Decimal {
    let text = value.as_str().unwrap_or_else(|| panic!("a decimal string, not {value}"));
    Decimal::from_str(text).unwrap_or_else(|error| panic!("{text}: {error}"))
}

async fn tenant_on(app: &TestApp, provider: &str, model: &str) -> TestTenant {
    let tenant = app.create_tenant(&format!("costs-{}", provider.replace('_', "-"))).await;
    app.configure(&tenant, json!({ "default_provider": provider, "default_model": model })).await;
    if provider == "openai_compatible" {
        let credential = json!({ "api_key": "tenant-compat-key", "base_url": app.mock_base(provider) });
        app.put_provider_key(&tenant, provider, credential).await;
    }
    tenant
}

/// The turn's one `usage` event.
fn usage_event(events: &[SseEvent]) -> &Value {
    let usage: Vec<&SseEvent> = events.iter().filter(|event| event.event == "usage").collect();
    assert_eq!(usage.len(), 1, "{events:#?}");
    &usage[0].data
}

#[tokio::test]
async fn each_providers_cached_and_reasoning_tokens_are_normalised_and_priced_by_the_catalog() {
    let app = TestApp::spawn().await;
    for case in cases() {
        let provider = case.provider;
        assert_eq!(case.hand_cost(), Decimal::from_str(case.cost).unwrap(), "{provider}: the hand computation");
        let tenant = tenant_on(&app, provider, case.model).await;
        let key = &tenant.admin_key;
        let session = app.create_session(key).await;
        app.mock.push(case.reply());
        let events = app.stream_turn(key, &session, "What did that cost?").await;
        assert_eq!(events.last().unwrap().event, "run.completed", "{provider}: {events:#?}");

        let usage = usage_event(&events);
        assert_eq!(usage["input_tokens"], case.input(), "{provider}: {usage}");
        assert_eq!(usage["output_tokens"], case.output(), "{provider}: {usage}");
        assert_eq!(usage["total_tokens"], case.input() + case.output(), "{provider}: {usage}");
        assert_eq!(usage["cached_tokens"], case.cached, "{provider}: {usage}");
        assert_eq!(usage["reasoning_tokens"], case.reasoning, "{provider}: {usage}");
        assert_eq!(usage["estimated"], false, "{provider}: the provider's report");
        assert_eq!(decimal(&usage["cost_usd"]), case.hand_cost(), "{provider}: {usage}");

        let run_id = usage["run_id"].as_str().unwrap();
        let run = app.get_json(&format!("/api/v1/runs/{run_id}"), key).await;
        let totals = &run["usage"];
        assert_eq!(totals["input_tokens"], case.input(), "{provider}: {run}");
        assert_eq!(totals["output_tokens"], case.output(), "{provider}: {run}");
        assert_eq!(totals["total_tokens"], case.input() + case.output(), "{provider}: {run}");
        assert_eq!(totals["cached_tokens"], case.cached, "{provider}: {run}");
        assert_eq!(totals["reasoning_tokens"], case.reasoning, "{provider}: {run}");
        assert_eq!(totals["priced"], true, "{provider}: {run}");
        assert_eq!(decimal(&totals["cost_usd"]), case.hand_cost(), "{provider}: {run}");
    }
}

#[tokio::test]
async fn a_model_the_catalog_does_not_know_is_recorded_unpriced_not_free() {
    let app = TestApp::spawn().await;
    let tenant = tenant_on(&app, "openai_compatible", "house-model-7b").await;
    let key = &tenant.admin_key;
    let session = app.create_session(key).await;
    let details = UsageDetails { cache_read: 40, cache_write: 0, reasoning: 10 };
    app.mock.push(Reply {
        text: "Priced by nobody.".into(),
        usage: Some((90, 30)),
        details: Some(details),
        ..Reply::default()
    });
    let events = app.stream_turn(key, &session, "What did that cost?").await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");

    let usage = usage_event(&events);
    assert_eq!((&usage["input_tokens"], &usage["output_tokens"]), (&json!(90), &json!(30)), "{usage}");
    assert_eq!((&usage["cached_tokens"], &usage["reasoning_tokens"]), (&json!(40), &json!(10)), "{usage}");
    assert!(usage["cost_usd"].is_null(), "no price, so no cost (not 0): {usage}");

    let run_id = usage["run_id"].as_str().unwrap();
    let run = app.get_json(&format!("/api/v1/runs/{run_id}"), key).await;
    let totals = &run["usage"];
    assert_eq!((&totals["input_tokens"], &totals["output_tokens"]), (&json!(90), &json!(30)), "{run}");
    assert_eq!((&totals["cached_tokens"], &totals["reasoning_tokens"]), (&json!(40), &json!(10)), "{run}");
    assert_eq!(totals.get("cost_usd"), Some(&Value::Null), "{run}");
    assert_eq!(totals["priced"], false, "{run}");
}

/// The `chat.completion.chunk`s of a streamed completion, up to `[DONE]`.
async fn completion_chunks(response: reqwest::Response) -> Vec<Value> {
    assert_eq!(response.status(), 200);
    let mut events = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    let mut chunks = Vec::new();
    while let Some(event) = events.next().await {
        let data = event.expect("well-formed SSE").data;
        if data == "[DONE]" {
            return chunks;
        }
        chunks.push(serde_json::from_str(&data).expect("a JSON chunk"));
    }
    panic!("the stream ended without [DONE]");
}

#[tokio::test]
async fn the_openai_door_reports_cached_and_reasoning_tokens_whole_and_streamed() {
    let app = TestApp::spawn().await;
    for case in cases() {
        let provider = case.provider;
        let tenant = tenant_on(&app, provider, case.model).await;
        let key = &tenant.admin_key;
        let expected = json!({
            "prompt_tokens": case.input(),
            "completion_tokens": case.output(),
            "total_tokens": case.input() + case.output(),
            "cached": case.cached,
            "reasoning": case.reasoning,
        });
        let seen = |usage: &Value| {
            json!({
                "prompt_tokens": usage["prompt_tokens"],
                "completion_tokens": usage["completion_tokens"],
                "total_tokens": usage["total_tokens"],
                "cached": usage["prompt_tokens_details"]["cached_tokens"],
                "reasoning": usage["completion_tokens_details"]["reasoning_tokens"],
            })
        };

        app.mock.push(case.reply());
        let whole = json!({ "model": case.model, "messages": [{ "role": "user", "content": "What did that cost?" }] });
        let response = app.post("/v1/chat/completions", key, &whole).send().await.unwrap();
        assert_eq!(response.status(), 200, "{provider}");
        let completion: Value = response.json().await.unwrap();
        assert_eq!(seen(&completion["usage"]), expected, "{provider}: {completion}");

        app.mock.push(case.reply());
        let streamed = json!({
            "model": case.model,
            "stream": true,
            "stream_options": { "include_usage": true },
            "messages": [{ "role": "user", "content": "What did that cost?" }],
        });
        let response = app.post("/v1/chat/completions", key, &streamed).send().await.unwrap();
        let chunks = completion_chunks(response).await;
        let last = chunks.last().expect("chunks");
        assert_eq!(last["choices"], json!([]), "{provider}: the usage chunk comes last");
        assert_eq!(seen(&last["usage"]), expected, "{provider}: {last}");
    }
}
