//! The last steps of a run, kept cheaply (formatted only when a property fails).

use super::Ms;
use std::collections::VecDeque;
use std::fmt::Write;

/// How many steps a violation report shows.
pub const KEEP: usize = 60;

#[derive(Debug, Clone)]
pub enum Entry {
    /// Something the world did (a fault, a CARP transition, a backend call's effect).
    World(String),
    /// An event stepped into a node's machine, and the actions it returned.
    Step { event: crate::machine::Event, actions: Vec<crate::machine::Action> },
}

#[derive(Debug, Default)]
pub struct Trace {
    pub(super) items: VecDeque<(Ms, usize, Entry)>,
    /// Print every step as it happens (`FAILBACKD_SIM_PRINT=1`).
    pub print: bool,
}

impl Trace {
    pub fn push(&mut self, at: Ms, node: usize, e: Entry) {
        if self.items.len() == KEEP {
            self.items.pop_front();
        }
        if self.print {
            eprintln!("{}", render((at, node, &e)));
        }
        self.items.push_back((at, node, e));
    }

    pub fn render(&self) -> Vec<String> {
        self.items.iter().map(|(at, node, e)| render((*at, *node, e))).collect()
    }
}

fn render((at, node, e): (Ms, usize, &Entry)) -> String {
    {
        {
            {
                let mut s = format!("{:>10.3}s {} ", at as f64 / 1000.0, ["A", "B"][node]);
                match e {
                    Entry::World(w) => s.push_str(w),
                    Entry::Step { event, actions } => {
                        let _ = write!(s, "step {} -> {}", short_event(event), short_actions(actions));
                    }
                }
                s
            }
        }
    }
}

fn short_event(e: &crate::machine::Event) -> String {
    use crate::machine::Event;
    match e {
        Event::Reconfigure(c) => {
            let probes: Vec<_> = c
                .probes
                .iter()
                .map(|p| {
                    format!("{}({}{})", p.name, p.identity, if p.track.is_some() { ", tracked" } else { "" })
                })
                .collect();
            format!("Reconfigure[{}]", probes.join(" "))
        }
        Event::Observed(o) => {
            let carp =
                o.carp.as_ref().map(|c| c.iter().map(|r| r.state.as_str()).collect::<Vec<_>>().join(","));
            format!("Observed{{held: {:?}, foreign: {}, carp: {:?}}}", o.held, o.foreign, carp)
        }
        other => format!("{other:?}"),
    }
}

fn short_actions(actions: &[crate::machine::Action]) -> String {
    if actions.is_empty() {
        return "[]".into();
    }
    let parts: Vec<String> = actions.iter().map(|a| format!("{a:?}")).collect();
    parts.join(", ")
}
