//! failbackd: holds a recovering CARP/VRRP master demoted until its gateways, tunnels and
//! services are ready, then releases it; observable through Prometheus, traces and syslog.
//!
//! The core is [`machine`], a pure state machine. Everything else is an edge: [`config`],
//! [`carp`] backends, [`probe`]s, the [`control`] socket, the HTTP [`server`], [`telemetry`],
//! and the [`daemon`] driver that connects them.
#![forbid(unsafe_code)]

pub mod atomic;
pub mod carp;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod exec;
pub mod machine;
pub mod probe;
pub mod ready;
pub mod server;
pub mod sim;
pub mod statefile;
pub mod status;
pub mod telemetry;
pub mod url;
