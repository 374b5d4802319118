//! One visit of the built-in browser, told from start to end: what the
//! demo does three times per item, and the lab's page on demand.
//!
//! ```text
//!  VisitStarted ─► the browser looks up (A and AAAA) and fetches, or asks one
//!                  question ─► the resolver's events ─► VisitEnded (what happened)
//! ```
//!
//! A visit is an [`Item`]: a URL to visit, or a name and type to ask for.
//! Its [`VisitReport`] holds its events, its story lines and a verdict in
//! words, judged from the events: answered from the cache, or which servers
//! were asked, and whether the page (or an answer) came back.

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::{Record, RecordType};
use serde::Serialize;

use crate::browse::{Browser, Visit};
use crate::story::Line;
use crate::trace::{RecordView, TraceEvent, TraceSink, TraceSubscriber, Traced};

/// How long the browser waits for a visit.
pub const VISIT_TIMEOUT: Duration = Duration::from_secs(5);

/// One thing the browser does in each round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// Visit a URL: look its host up (A and AAAA), fetch the page.
    Visit(String),
    /// Ask the resolver one question, as the browser's stub would.
    Ask(String, RecordType),
}

impl Item {
    /// `blog.example.com/AAAA`, or a name alone for its A record.
    pub fn parse_ask(text: &str) -> Result<Item, String> {
        let (name, rtype) = match text.rsplit_once('/') {
            Some((name, rtype)) => (
                name,
                rtype
                    .to_ascii_uppercase()
                    .parse::<RecordType>()
                    .map_err(|_| format!("--ask {text}: `{rtype}` is not a record type"))?,
            ),
            None => (text, RecordType::A),
        };
        if name.is_empty() {
            return Err(format!("--ask {text}: no name"));
        }
        Ok(Item::Ask(name.trim_end_matches('.').to_string(), rtype))
    }

    /// What the visit is about, as its title says it.
    pub fn target(&self) -> String {
        match self {
            Item::Visit(url) => url.clone(),
            Item::Ask(name, rtype) => format!("{name}. {rtype}"),
        }
    }

    /// The same item, its URL on another port.
    pub fn on_port(self, port: u16) -> Item {
        match self {
            Item::Visit(url) => match reqwest::Url::parse(&url) {
                Ok(mut parsed) => {
                    let _ = parsed.set_port(Some(port));
                    Item::Visit(parsed.into())
                }
                Err(_) => Item::Visit(url),
            },
            ask => ask,
        }
    }

    /// What the user does, as step 1 tells it.
    pub fn doing(&self) -> String {
        match self {
            Item::Visit(_) => format!("type {} into the browser", self.host()),
            Item::Ask(name, rtype) => format!("ask for {name}'s {rtype} records, as `dig` would"),
        }
    }

    /// The name the browser looks up.
    pub fn host(&self) -> String {
        match self {
            Item::Visit(url) => reqwest::Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| url.clone()),
            Item::Ask(name, _) => name.clone(),
        }
    }
}

/// What a visit came back with: a page, or the records asked for.
#[derive(Debug, Clone)]
pub enum Returned {
    Page(Box<Visit>),
    Records(Vec<Record>),
}

/// One visit: what happened, in events and in story lines.
#[derive(Debug, Clone, Serialize)]
pub struct VisitReport {
    pub number: u32,
    pub label: String,
    pub title: String,
    pub target: String,
    /// Browser and resolver events, in the order they happened.
    pub events: Vec<Arc<Traced>>,
    pub lines: Vec<Line>,
    /// What really happened, in words.
    pub summary: String,
    /// Whether the visit did what it set out to: the page (200), or an
    /// answer from the resolver.
    pub ok: bool,
    #[serde(skip)]
    pub outcome: Result<Returned, String>,
}

impl VisitReport {
    pub fn upstream_queries(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e.event, TraceEvent::UpstreamQuery { .. }))
            .count()
    }

    /// The servers asked, by name, each once, in the order first asked.
    pub fn servers_asked(&self) -> Vec<String> {
        let mut asked: Vec<String> = Vec::new();
        for e in &self.events {
            if let TraceEvent::UpstreamQuery { server, .. } = &e.event {
                let name = server.name.trim_end_matches('.').to_string();
                if !asked.contains(&name) {
                    asked.push(name);
                }
            }
        }
        asked
    }

    /// The page, if the visit got one.
    pub fn page(&self) -> Option<&Visit> {
        match &self.outcome {
            Ok(Returned::Page(visit)) => Some(visit),
            _ => None,
        }
    }
}

/// Do one item, telling its start and end, and gather its events.
pub async fn visit(
    sink: &TraceSink,
    browser: &Browser,
    watch: &mut TraceSubscriber,
    item: &Item,
    number: u32,
    label: String,
    title: String,
) -> VisitReport {
    sink.emit(
        0,
        TraceEvent::VisitStarted {
            visit: number,
            label: label.clone(),
            title: title.clone(),
            target: item.target(),
            doing: item.doing(),
        },
    );
    let outcome = match item {
        Item::Visit(url) => browser
            .visit(url)
            .await
            .map(|v| Returned::Page(Box::new(v)))
            .map_err(|e| e.to_string()),
        Item::Ask(name, rtype) => browser
            .ask(name, *rtype)
            .await
            .map(Returned::Records)
            .map_err(|e| e.to_string()),
    };
    // The visit's events: from its start to now (the resolver's work for
    // it is done once the browser has its answer).
    let mut events = Vec::new();
    while let Some(event) = watch.try_recv() {
        let starts =
            matches!(&event.event, TraceEvent::VisitStarted { visit, .. } if *visit == number);
        if starts {
            events.clear();
        }
        events.push(event);
    }
    let (ok, summary) = judge(item, &outcome, &events);
    let ended = sink.emit(
        0,
        TraceEvent::VisitEnded {
            visit: number,
            ok,
            summary: summary.clone(),
        },
    );
    events.retain(|e| {
        !matches!(
            e.event,
            TraceEvent::VisitStarted { .. } | TraceEvent::VisitEnded { .. }
        )
    });
    drop(ended);
    let lines = crate::story::tell_all(&item.doing(), &events);
    VisitReport {
        number,
        label,
        title,
        target: item.target(),
        events,
        lines,
        summary,
        ok,
        outcome,
    }
}

/// What really happened in a visit, in words, and whether it did what it
/// set out to do.
pub fn judge(
    item: &Item,
    outcome: &Result<Returned, String>,
    events: &[Arc<Traced>],
) -> (bool, String) {
    let sent = events
        .iter()
        .filter(|e| matches!(e.event, TraceEvent::UpstreamQuery { .. }))
        .count();
    let mut queries: Vec<String> = Vec::new();
    for e in events {
        if let TraceEvent::UpstreamQuery { server, .. } = &e.event {
            let name = server.name.trim_end_matches('.').to_string();
            if !queries.contains(&name) {
                queries.push(name);
            }
        }
    }
    let asked = |n: usize| {
        if sent == n {
            crate::story::plural(n, "name server", "name servers")
        } else {
            format!(
                "{} to {}",
                crate::story::plural(sent, "query", "queries"),
                crate::story::plural(n, "name server", "name servers")
            )
        }
    };
    // Whether a delegation saved the walk is a matter of the question the
    // visit is about (A for a page): its companion may start later and find
    // what the first walk cached.
    let asked_type = match item {
        Item::Visit(_) => RecordType::A,
        Item::Ask(_, rtype) => *rtype,
    };
    let primary = events.iter().find_map(|e| match &e.event {
        TraceEvent::QuestionReceived { question, .. } if question.rtype == asked_type => {
            Some(e.resolution)
        }
        _ => None,
    });
    let skipped = events
        .iter()
        .filter(|e| Some(e.resolution) == primary)
        .find_map(|e| match &e.event {
            TraceEvent::CacheDelegationHit { zone, skipped, .. } if !skipped.is_empty() => {
                Some((zone.clone(), skipped.len()))
            }
            _ => None,
        });
    let how = match (queries.len(), skipped) {
        (0, _) => "answered from the resolver's cache: no name server was asked".to_string(),
        (n, Some((zone, k))) => format!(
            "the name servers of {zone} were in the cache: {} asked ({}), {k} zone{} above skipped",
            asked(n),
            queries.join(", "),
            if k == 1 { "" } else { "s" }
        ),
        (n, None) => format!("the resolver asked {} ({})", asked(n), queries.join(", ")),
    };
    match outcome {
        Err(error) => (false, format!("failed: {error}; {how}")),
        Ok(Returned::Page(visit)) => (
            visit.status == 200,
            format!(
                "the page came back: {} \"{}\"; {how}",
                visit.status,
                visit.title.as_deref().unwrap_or("(no title)")
            ),
        ),
        Ok(Returned::Records(records)) => {
            let what = match item {
                Item::Ask(name, rtype) => format!("{name}. {rtype}"),
                Item::Visit(url) => url.clone(),
            };
            let data: Vec<String> = records
                .iter()
                .map(|r| {
                    let v = RecordView::from(r);
                    format!("{} {}", v.rtype, v.data)
                })
                .collect();
            (true, format!("{what} ⇒ {}; {how}", data.join(", ")))
        }
    }
}
