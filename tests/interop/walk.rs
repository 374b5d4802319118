//! A walk down a hierarchy as an iterative resolver takes it, with nothing
//! but single questions (RD clear): ask a root server, follow each
//! referral to the first server it names (by its glue, or by walking for
//! the server's own address when the referral has none), follow an alias
//! from the root again, until an answer with authority.
//!
//! The path and the answer are compared between name-server
//! implementations, and with what the resolvers answered.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use dnstrail::exchange::Transport;
use hickory_proto::rr::{RData, RecordType};

use crate::ask::{Ask, ask};
use crate::compare::{Kind, Rr, View, ns_name};
use crate::hierarchy::Hierarchy;
use crate::questions::Question;
use crate::subjects::DNS_PORT;

/// The most questions one walk may ask.
const MAX_HOPS: usize = 24;

#[derive(Debug, Clone)]
pub struct Walk {
    /// Every server asked, in order (walks for servers' addresses included).
    pub hops: Vec<IpAddr>,
    /// The records of the answers, aliases followed, TTLs as sent.
    pub answer: BTreeSet<Rr>,
    /// The last answer.
    pub last: View,
}

impl Walk {
    pub fn path(&self) -> String {
        let hops: Vec<String> = self.hops.iter().map(ToString::to_string).collect();
        hops.join(" → ")
    }
}

pub async fn walk(
    hierarchy: &Hierarchy,
    question: &Question,
    transcript: &Path,
) -> Result<Walk, String> {
    let mut hops = Vec::new();
    let mut answer = BTreeSet::new();
    let mut current = question.clone();
    let mut aliases = 0;
    loop {
        let last = descend(hierarchy, &current, &mut hops, transcript).await?;
        answer.extend(last.answer.iter().cloned());
        let cname = last
            .answer
            .iter()
            .find(|r| r.rtype == RecordType::CNAME && r.name == current.name.to_string())
            .map(|r| r.data.clone());
        let complete = last.answer.iter().any(|r| r.rtype == current.rtype);
        match cname {
            Some(target) if !complete && aliases < 8 => {
                aliases += 1;
                current = Question::parse(&target, current.rtype);
            }
            _ => return Ok(Walk { hops, answer, last }),
        }
    }
}

/// From the root to the answer with authority for one name.
async fn descend(
    hierarchy: &Hierarchy,
    question: &Question,
    hops: &mut Vec<IpAddr>,
    transcript: &Path,
) -> Result<View, String> {
    let mut servers: Vec<IpAddr> = hierarchy.root_addrs();
    loop {
        if hops.len() >= MAX_HOPS {
            return Err(format!(
                "no answer for {question} after {MAX_HOPS} questions"
            ));
        }
        let server = *servers
            .first()
            .ok_or_else(|| format!("nowhere to ask {question} (after {hops:?})"))?;
        hops.push(server);
        let reply = ask(
            SocketAddr::new(server, DNS_PORT),
            &Ask::norec(question, Transport::Udp),
            transcript,
        )
        .await?;
        let view = View::of(&reply);
        match view.kind() {
            Kind::Referral => {
                servers = next_servers(hierarchy, &reply.message, hops, transcript).await?;
            }
            _ if view.aa => return Ok(view),
            _ => {
                return Err(format!(
                    "{server} neither answered {question} with authority nor referred: {}",
                    view.summary()
                ));
            }
        }
    }
}

/// The addresses of a referral's first server in name order: its glue,
/// or else (a server outside the zone's bailiwick) its address, walked for.
async fn next_servers(
    hierarchy: &Hierarchy,
    referral: &hickory_proto::op::Message,
    hops: &mut Vec<IpAddr>,
    transcript: &Path,
) -> Result<Vec<IpAddr>, String> {
    let mut targets: Vec<String> = referral.authorities.iter().filter_map(ns_name).collect();
    targets.sort();
    let first = targets.first().ok_or("a referral without NS records")?;
    let glue: Vec<IpAddr> = referral
        .additionals
        .iter()
        .filter(|r| r.name.to_lowercase().to_string() == *first)
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect();
    if !glue.is_empty() {
        return Ok(glue);
    }
    let view = Box::pin(descend(
        hierarchy,
        &Question::parse(first, RecordType::A),
        hops,
        transcript,
    ))
    .await?;
    let found: Vec<IpAddr> = view
        .answer
        .iter()
        .filter(|r| r.rtype == RecordType::A)
        .filter_map(|r| r.data.parse().ok())
        .collect();
    if found.is_empty() {
        Err(format!(
            "no glue for {first}, and walking for its address found none"
        ))
    } else {
        Ok(found)
    }
}
