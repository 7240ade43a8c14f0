//! Chunks fit the embedder: the local model reads 256 word pieces at once, and nothing a chunk says may
//! be invisible to vector search. A fact at the end of a long paragraph is found by `mode: vector` with
//! the real local model; the chunks of the shared documentation fit the model's window; and a text longer
//! than the window is read whole (in windows), not cut.

use std::path::PathBuf;

use serde_json::{Value, json};
use switchboard::embeddings::local::WINDOW;
use switchboard::embeddings::{Embedder, Purpose};
use switchboard::retrieval::{chunking, vectors};

use crate::helpers::{TestApp, shared_local_embedder};

const FACT: &str = "The quokka vault passphrase is rotated every ninety days by the night porter.";
const QUESTION: &str = "How often is the quokka vault passphrase rotated?";

/// Prose on one subject (old maps), far from the question, in `count` distinct sentences from `first` on.
fn cartography(first: usize, count: usize) -> String {
    const SENTENCES: [&str; 24] = [
        "Early portolan charts were drawn on vellum and showed coastlines as seen by sailors rather than surveyors.",
        "Mercator's projection of 1569 kept compass bearings straight at the cost of swelling the lands near the poles.",
        "Medieval mappae mundi placed Jerusalem at the centre and filled the margins with monsters and legends.",
        "The triangulation of France by the Cassini family took four generations and most of the eighteenth century.",
        "Engravers cut the plates in reverse, so that a single slip of the burin could ruin weeks of patient work.",
        "Ptolemy's Geography listed thousands of places by latitude and longitude long before anyone could measure the latter.",
        "Dutch publishers in Amsterdam sold lavish atlases whose hand colouring was often added after the sale.",
        "Contour lines first appeared on maps of river beds before surveyors used them to show hills and valleys.",
        "The Great Trigonometrical Survey of India measured an arc of the meridian across the whole subcontinent.",
        "Sea charts marked soundings in fathoms, and a careful navigator compared them with his own lead line.",
        "Woodcut maps of the fifteenth century were bold and simple because the grain of the block resisted fine lines.",
        "Cartouches framed the title of a map with allegories of trade, empire and the four known continents.",
        "Estate surveyors drew field boundaries so that landlords could settle quarrels over hedges and ditches.",
        "The Peutinger Table stretched the roads of the Roman world into a long ribbon a traveller could follow.",
        "Celestial globes showed the constellations as seen from outside the sphere, reversed from the night sky.",
        "Railway companies printed their own maps, straightening the lines so the network looked faster than it was.",
        "Military engineers mapped fortresses in relief models that kings kept locked away as secrets of state.",
        "Lithography made maps cheap enough for schoolrooms, and colour printing followed within a few decades.",
        "Explorers left blank spaces on their charts where they had not been, inviting others to fill them in.",
        "The prime meridian was fixed at Greenwich in 1884 after a conference of twenty-five nations in Washington.",
        "Aerial photography after the First World War let surveyors map in weeks what had once taken years.",
        "Thematic maps of cholera deaths in London helped show that the disease spread through a water pump.",
        "Road atlases for motorists listed garages and hotels alongside the routes between market towns.",
        "Orienteering maps use a special palette so that runners can read vegetation and rock at a glance.",
    ];
    (first..first + count).map(|index| SENTENCES[index % SENTENCES.len()]).collect::<Vec<_>>().join(" ")
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn a_fact_at_the_end_of_a_long_paragraph_is_found_by_vector_search() {
    // One paragraph the old budget (150 to 350 tokens) kept as one chunk, of which the model read about
    // the first three quarters: the fact at its end was invisible to vector search.
    let paragraph = format!("{} {FACT}", cartography(0, 13));
    let tokens = switchboard::tokens::count(&paragraph);
    assert!((260..350).contains(&tokens), "{tokens} tokens");
    let markdown = format!("# Atlas notes\n\n{paragraph}\n");

    // Every chunk of it, as it is embedded (with its heading path), fits what the model reads at once.
    let local = shared_local_embedder();
    let chunks = chunking::chunk(&markdown);
    for chunk in &chunks {
        let pieces = local.word_pieces(&vectors::embedding_text(&chunk.heading_path, &chunk.content)).await.unwrap();
        assert!(pieces <= WINDOW, "{pieces} word pieces in {:?}", chunk.content);
    }
    let holding = chunks.iter().find(|chunk| chunk.content.contains(FACT)).unwrap();
    assert!(holding.content.trim_end().ends_with(FACT), "the fact ends its chunk");
    assert!(holding.token_count >= chunking::CHUNK_TOKENS.start, "a long chunk: {} tokens", holding.token_count);

    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("atlas").await;
    let mut documents = vec![("atlas.md".to_owned(), markdown)];
    // Other chunks on the same subject, which a vector blind to the fact would rank alike.
    for index in 0..4 {
        documents.push((format!("maps-{index}.md"), format!("# Maps {index}\n\n{}\n", cartography(5 * index + 3, 6))));
    }
    for (source_path, content) in &documents {
        let body = json!({"source_path": source_path, "content": content});
        let response = app.post("/api/v1/documents", &tenant.admin_key, &body).send().await.unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
    let body = json!({"query": QUESTION, "k": 3, "mode": "vector"});
    let answer: Value =
        app.post("/api/v1/search", &tenant.admin_key, &body).send().await.unwrap().json().await.unwrap();
    let first = &answer["results"][0];
    assert_eq!(first["source_path"], "atlas.md", "{answer:#}");
    assert!(first["content"].as_str().unwrap().contains(FACT), "{answer:#}");
}

#[tokio::test]
async fn a_text_longer_than_the_window_is_read_to_its_end() {
    let embedder = Embedder::Local(shared_local_embedder());
    let without = cartography(0, 16);
    let with = format!("{without} {FACT}");
    let pieces = shared_local_embedder().word_pieces(&without).await.unwrap();
    assert!(pieces > WINDOW + 20, "{pieces} word pieces: the fact must lie past the window");
    let texts = vec![with, without];
    let vectors = embedder.embed(&texts, Purpose::Document).await.unwrap();
    let (question, _) = embedder.embed_query(QUESTION).await.unwrap();
    let (seen, unseen) = (cosine(&question, &vectors[0]), cosine(&question, &vectors[1]));
    // Cut at the window, both texts would have one vector, and the same similarity.
    assert!(seen > unseen + 0.05, "with the fact {seen}, without {unseen}");
    let norm = vectors[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
}

#[tokio::test]
async fn the_shared_documentation_is_chunked_to_fit_the_local_model() {
    let local = shared_local_embedder();
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs_corpus");
    let mut pieces = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|extension| extension == "md") {
            for chunk in chunking::chunk(&std::fs::read_to_string(&path).unwrap()) {
                let text = vectors::embedding_text(&chunk.heading_path, &chunk.content);
                pieces.push(local.word_pieces(&text).await.unwrap());
            }
        }
    }
    pieces.sort_unstable();
    let over = pieces.iter().filter(|count| **count > WINDOW).count();
    let percentile = |share: usize| pieces[(pieces.len() * share / 100).min(pieces.len() - 1)];
    eprintln!(
        "{} chunks: word pieces p50 {}, p95 {}, max {}; {over} over the window",
        pieces.len(),
        percentile(50),
        percentile(95),
        pieces.last().unwrap()
    );
    // Tables and code run denser in word pieces than prose; those few are read in windows.
    assert!(over * 20 <= pieces.len(), "{over} of {} chunks are over {WINDOW} word pieces", pieces.len());
}

#[tokio::test]
async fn concurrent_callers_share_passes_and_each_gets_its_own_vectors() {
    let embedder = Embedder::Local(shared_local_embedder());
    // Short and long texts (one read in windows), asked at once: they are joined in passes of the model.
    let texts: Vec<String> = (0..12)
        .map(|index| match index % 3 {
            0 => format!("Question {index}: {QUESTION}"),
            1 => cartography(index, 2),
            _ => format!("{} {FACT}", cartography(index, 16)),
        })
        .collect();
    let together = futures::future::join_all(texts.iter().map(|text| embedder.embed_query(text))).await;
    for (text, answer) in texts.iter().zip(together) {
        let (vector, _) = answer.unwrap();
        let (alone, _) = embedder.embed_query(text).await.unwrap();
        assert!(cosine(&vector, &alone) > 0.999_99, "{text}");
    }
}
