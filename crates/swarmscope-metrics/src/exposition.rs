//! Rendering a registry for a scrape: Prometheus text format 0.0.4 by default,
//! OpenMetrics 1.0 when the scraper asks for it.
//!
//! prometheus-client writes OpenMetrics only. Its counters are named without
//! `_total` in `# HELP`/`# TYPE`, which `promtool check metrics` (a Prometheus
//! text checker) reports as "no help text"; and `_created` samples and
//! `# EOF` are not Prometheus text. So the text format is derived from the
//! OpenMetrics output by renaming counter families to their `_total` sample
//! name and dropping `# UNIT`, `_created` and `# EOF` lines.

use std::collections::HashSet;

use prometheus_client::registry::Registry;

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for (OpenMetrics only when named).
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Renders `registry` in `format`.
pub fn render(registry: &Registry, format: Format) -> String {
    let mut open = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut open, registry);
    match format {
        Format::OpenMetrics => open,
        Format::Prometheus => to_prometheus_text(&open),
    }
}

/// Converts OpenMetrics text (as prometheus-client writes it) to Prometheus
/// text format 0.0.4.
pub fn to_prometheus_text(open: &str) -> String {
    let counters: HashSet<&str> = open
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open.len());
    for line in open.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
        {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let kind = &line[..7];
            if counters.contains(name) {
                out.push_str(&format!("{kind}{name}_total {tail}\n"));
            } else {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        let metric = line.split(['{', ' ']).next().unwrap_or("");
        if metric.ends_with("_created") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::*;

    #[test]
    fn counters_get_total_in_help_and_type_and_eof_goes() {
        let m = SwarmMetrics::new();
        let mut registry = Registry::default();
        m.register(&mut registry);
        m.api_requests
            .get_or_create(&ApiLabels {
                method: "POST".into(),
                path: "/claim".into(),
                status: "200".into(),
            })
            .inc();
        m.claude_api_cost_usd
            .get_or_create(&TenantModelLabels {
                tenant_id: "acme".into(),
                model: "claude-sonnet-4-5".into(),
            })
            .inc_by(0.25);
        m.vm_boot_duration_ms
            .get_or_create(&BootLabels {
                method: "restore".into(),
            })
            .observe(4.0);
        let text = render(&registry, Format::Prometheus);
        assert!(
            text.contains("# HELP swarm_api_requests_total HTTP requests.\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE swarm_api_requests_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "swarm_api_requests_total{method=\"POST\",path=\"/claim\",status=\"200\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("swarm_claude_api_cost_usd_total{tenant_id=\"acme\",model=\"claude-sonnet-4-5\"} 0.25\n"), "{text}");
        assert!(
            text.contains("swarm_vm_boot_duration_ms_bucket{le=\"5.0\",method=\"restore\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"));
        let open = render(&registry, Format::OpenMetrics);
        assert!(open.ends_with("# EOF\n"));
        assert!(open.contains("# TYPE swarm_api_requests counter"));
    }

    #[test]
    fn accept_headers_pick_the_format() {
        assert_eq!(Format::from_accept(None), Format::Prometheus);
        assert_eq!(Format::from_accept(Some("text/plain")), Format::Prometheus);
        assert_eq!(
            Format::from_accept(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
            )),
            Format::OpenMetrics
        );
    }
}
