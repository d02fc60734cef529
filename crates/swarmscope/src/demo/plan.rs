//! The demo's script: what each ticket is and what will happen to it.
//!
//! Every ticket is drawn from its own random generator seeded by the demo
//! seed and the ticket's number, so the same `--seed` gives the same tickets
//! and the same outcomes however the agents' work interleaves. Durations here
//! are the real-world ones (an LLM call takes seconds, a ticket minutes);
//! [`Clock`] compresses them when the demo runs.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use swarmscope_model::price::{PriceTable, TokenUsage};

/// The demo's tenants: name, ticket prefix and relative size.
pub(crate) const TENANTS: [(&str, &str, u32); 8] = [
    ("acme", "ACME", 40),
    ("globex", "GLX", 25),
    ("initech", "INI", 15),
    ("umbrella", "UMB", 8),
    ("hooli", "HOO", 5),
    ("stark", "STK", 4),
    ("wayne", "WAY", 2),
    ("wonka", "WON", 1),
];

/// The model mix: (model, share in percent).
const MODELS: [(&str, u32); 4] = [
    ("claude-sonnet-4-5", 62),
    ("claude-haiku-4-5", 22),
    ("claude-opus-4-5", 12),
    ("claude-opus-4-1", 4),
];

/// An error the Claude API answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum LlmError {
    /// HTTP 529 `overloaded_error`.
    Overloaded,
    /// HTTP 429 `rate_limit_error`.
    RateLimited,
}

impl LlmError {
    /// The API's error type.
    pub(crate) fn error_type(self) -> &'static str {
        match self {
            LlmError::Overloaded => "overloaded_error",
            LlmError::RateLimited => "rate_limit_error",
        }
    }

    /// The HTTP status the API answers with.
    pub(crate) fn http_status(self) -> u16 {
        match self {
            LlmError::Overloaded => 529,
            LlmError::RateLimited => 429,
        }
    }
}

/// One `llm.generate` call, with the failed attempts before it (if any).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LlmCall {
    /// The model.
    pub(crate) model: String,
    /// Uncached input tokens.
    pub(crate) input_tokens: u64,
    /// Output tokens.
    pub(crate) output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub(crate) cache_read_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub(crate) cache_write_tokens: u64,
    /// Real-world latency of the successful attempt, ms.
    pub(crate) latency_ms: f64,
    /// Errors of the attempts before the successful one; when there are
    /// [`MAX_LLM_ATTEMPTS`] of them, the call never succeeds.
    pub(crate) errors: Vec<LlmError>,
}

/// Attempts of one LLM call before the agent gives up.
pub(crate) const MAX_LLM_ATTEMPTS: usize = 4;

impl LlmCall {
    /// Token usage of the successful attempt.
    pub(crate) fn usage(&self) -> TokenUsage {
        TokenUsage {
            input: self.input_tokens,
            output: self.output_tokens,
            cache_read: self.cache_read_tokens,
            cache_write: self.cache_write_tokens,
        }
    }

    /// Whether some attempt succeeds.
    pub(crate) fn succeeds(&self) -> bool {
        self.errors.len() < MAX_LLM_ATTEMPTS
    }
}

/// How the ticket's run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// A pull request is open.
    Completed,
    /// The agent gave up (LLM errors exhausted, push rejected twice).
    Failed,
    /// The VM died mid-execution; the collector closes its spans.
    Killed,
}

/// One ticket and its fate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TicketPlan {
    /// Sequence number in the demo (0-based).
    pub(crate) index: u64,
    /// Ticket id, e.g. `ACME-1007`.
    pub(crate) ticket_id: String,
    /// The tenant.
    pub(crate) tenant: String,
    /// feature, bugfix, refactor, test or docs.
    pub(crate) ticket_type: String,
    /// low, medium or high.
    pub(crate) complexity: String,
    /// Which agent kind works it.
    pub(crate) agent_type: String,
    /// Repository to clone.
    pub(crate) repo_url: String,
    /// VM spawns that fail before one succeeds (each a 503 to the claim).
    pub(crate) spawn_failures: u32,
    /// `restore` from a snapshot or cold `boot`.
    pub(crate) spawn_method: String,
    /// Real-world spawn time, ms.
    pub(crate) spawn_ms: f64,
    /// Real-world clone time, ms.
    pub(crate) clone_ms: f64,
    /// The LLM calls, in order.
    pub(crate) llm_calls: Vec<LlmCall>,
    /// Files written.
    pub(crate) file_count: u64,
    /// Bytes written.
    pub(crate) total_bytes: u64,
    /// Commit id.
    pub(crate) commit_sha: String,
    /// Pushes rejected (non-fast-forward) before one is accepted; 2 = gives up.
    pub(crate) push_rejections: u32,
    /// Pull request number.
    pub(crate) pr_number: u64,
    /// A slow ticket: many more LLM calls than its complexity suggests.
    pub(crate) slow: bool,
    /// The VM dies during this LLM call (index into `llm_calls`).
    pub(crate) killed_at_call: Option<usize>,
    /// After its LLM calls the agent cannot make the tests pass and gives up.
    pub(crate) gives_up: bool,
    /// An earlier ticket of the same tenant that must finish first.
    pub(crate) depends_on: Option<u64>,
    /// How the run ends.
    pub(crate) outcome: Outcome,
}

/// Pushes rejected in a row before the agent gives up.
pub(crate) const MAX_PUSH_ATTEMPTS: u32 = 2;

/// Mixes the seed and a stream number into one generator seed (splitmix64).
fn mix(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn pick<'a>(rng: &mut StdRng, weighted: &[(&'a str, u32)]) -> &'a str {
    let total: u32 = weighted.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total.max(1));
    for (item, w) in weighted {
        if roll < *w {
            return item;
        }
        roll -= w;
    }
    weighted.first().map(|(item, _)| *item).unwrap_or("")
}

/// A log-normal draw with the given median and spread (sigma of ln).
fn lognormal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
    // Box–Muller: one standard normal from two uniforms.
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    median * (sigma * z).exp()
}

/// Failure probabilities.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rates {
    spawn_failure: f64,
    overloaded: f64,
    rate_limited: f64,
}

impl Rates {
    const REALISTIC: Rates = Rates {
        spawn_failure: 0.02,
        overloaded: 0.035,
        rate_limited: 0.02,
    };
    /// `--inject-failures`: enough to trip the error-rate, spawn-failure and
    /// Claude-error alerts within a minute.
    const INJECTED: Rates = Rates {
        spawn_failure: 0.5,
        overloaded: 0.15,
        rate_limited: 0.08,
    };
}

/// The script of a demo run: tenants and tickets, all from one seed.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    seed: u64,
    tenants: Vec<(&'static str, &'static str, u32)>,
    rates: Rates,
}

impl Scenario {
    /// The first `tenants` demo tenants (1–8).
    pub(crate) fn new(seed: u64, tenants: usize) -> Scenario {
        Scenario {
            seed,
            tenants: TENANTS[..tenants.clamp(1, TENANTS.len())].to_vec(),
            rates: Rates::REALISTIC,
        }
    }

    /// The same tenants with failures injected at high rates.
    pub(crate) fn with_injected_failures(mut self) -> Scenario {
        self.rates = Rates::INJECTED;
        self
    }

    /// Tenant names, largest first.
    pub(crate) fn tenants(&self) -> Vec<&'static str> {
        self.tenants.iter().map(|(name, _, _)| *name).collect()
    }

    /// How many of `agents` work for each tenant: at least one each, the
    /// rest by tenant size.
    pub(crate) fn agents_per_tenant(&self, agents: usize) -> Vec<usize> {
        let n = self.tenants.len();
        let mut counts = vec![1usize; n];
        let spare = agents.saturating_sub(n);
        let total: u32 = self.tenants.iter().map(|t| t.2).sum();
        let mut given = 0;
        for (i, t) in self.tenants.iter().enumerate() {
            let share = spare * t.2 as usize / total as usize;
            counts[i] += share;
            given += share;
        }
        for i in 0..spare - given {
            counts[i % n] += 1;
        }
        counts
    }

    /// A generator for things that are not tickets (arrival gaps).
    pub(crate) fn stream(&self, stream: u64) -> StdRng {
        StdRng::seed_from_u64(mix(self.seed, u64::MAX - stream))
    }

    /// The tenant of ticket `index`: the first draw of its generator.
    fn tenant_of(&self, rng: &mut StdRng) -> &'static str {
        let weights: Vec<(&'static str, u32)> = self.tenants.iter().map(|t| (t.0, t.2)).collect();
        pick(rng, &weights)
    }

    /// Ticket number `index`.
    pub(crate) fn ticket(&self, index: u64) -> TicketPlan {
        let rng = &mut StdRng::seed_from_u64(mix(self.seed, index));
        let tenant = self.tenant_of(rng);
        let prefix = self
            .tenants
            .iter()
            .find(|t| t.0 == tenant)
            .map_or("T", |t| t.1);
        let ticket_type = pick(
            rng,
            &[
                ("bugfix", 38),
                ("feature", 32),
                ("refactor", 12),
                ("test", 10),
                ("docs", 8),
            ],
        );
        let complexity = pick(rng, &[("low", 45), ("medium", 38), ("high", 17)]);
        let agent_type = match ticket_type {
            "bugfix" => "fixer",
            "test" => "tester",
            "docs" => "scribe",
            _ => "forge",
        };
        let repo = pick(
            rng,
            &[
                ("api", 4),
                ("web", 3),
                ("billing", 2),
                ("infra", 1),
                ("mobile", 2),
            ],
        );
        let slow = rng.random_bool(0.03);
        let calls = match (complexity, slow) {
            (_, true) => rng.random_range(24..=40),
            ("low", _) => rng.random_range(2..=5),
            ("medium", _) => rng.random_range(4..=10),
            _ => rng.random_range(8..=18),
        };
        // Spawn: mostly a snapshot restore (2–10 ms), sometimes a cold boot
        // (100–300 ms); 2% of spawns fail and the claim is retried.
        let restore = rng.random_bool(0.88);
        let spawn_ms = if restore {
            rng.random_range(2.0..10.0)
        } else {
            rng.random_range(100.0..300.0)
        };
        let mut spawn_failures = 0;
        while spawn_failures < 3 && rng.random_bool(self.rates.spawn_failure) {
            spawn_failures += 1;
        }
        let model = pick(rng, &MODELS);
        let mut llm_calls = Vec::with_capacity(calls);
        let mut context = lognormal(rng, 6_000.0, 0.5).clamp(800.0, 60_000.0);
        for i in 0..calls {
            // One model per ticket, with an occasional cheaper helper call.
            let model = if i > 0 && rng.random_bool(0.15) {
                "claude-haiku-4-5"
            } else {
                model
            };
            let output = lognormal(rng, 700.0, 0.7).clamp(40.0, 8_000.0) as u64;
            let fresh = lognormal(rng, 1_500.0, 0.8).clamp(100.0, 30_000.0);
            // The conversation so far is cached after the first call.
            let (cache_read, cache_write) = if i == 0 {
                (0, context as u64)
            } else {
                (context as u64, fresh as u64)
            };
            let input = if i == 0 { 400 } else { fresh as u64 / 4 + 50 };
            context = (context + fresh + output as f64).min(180_000.0);
            let tokens_per_s = match model {
                "claude-haiku-4-5" => rng.random_range(120.0..180.0),
                m if m.starts_with("claude-opus") => rng.random_range(35.0..60.0),
                _ => rng.random_range(55.0..90.0),
            };
            let ttft_ms = rng.random_range(400.0..2_000.0);
            let latency_ms = ttft_ms + output as f64 / tokens_per_s * 1_000.0;
            let mut errors = Vec::new();
            while errors.len() < MAX_LLM_ATTEMPTS {
                let roll: f64 = rng.random();
                if roll < self.rates.overloaded {
                    errors.push(LlmError::Overloaded);
                } else if roll < self.rates.overloaded + self.rates.rate_limited {
                    errors.push(LlmError::RateLimited);
                } else {
                    break;
                }
            }
            llm_calls.push(LlmCall {
                model: model.to_owned(),
                input_tokens: input,
                output_tokens: output,
                cache_read_tokens: cache_read,
                cache_write_tokens: cache_write,
                latency_ms,
                errors,
            });
        }
        let killed_at_call = rng
            .random_bool(0.02)
            .then(|| rng.random_range(0..llm_calls.len()));
        let gives_up = rng.random_bool(match complexity {
            "low" => 0.02,
            "medium" => 0.04,
            _ => 0.09,
        });
        let mut push_rejections = 0;
        while push_rejections < MAX_PUSH_ATTEMPTS && rng.random_bool(0.05) {
            push_rejections += 1;
        }
        let commit_sha: String = (0..40)
            .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
            .collect();
        let file_count = rng.random_range(
            1..=match complexity {
                "low" => 3,
                "medium" => 8,
                _ => 20,
            },
        );
        let total_bytes = file_count * rng.random_range(400..6_000);
        let pr_number = 1_000 + index * 3 + rng.random_range(0..3);
        let clone_ms = lognormal(rng, 1_800.0, 0.5).clamp(300.0, 15_000.0);
        // One ticket in eight builds on a recent ticket of the same tenant.
        let depends_on = if rng.random_bool(0.125) {
            (index.saturating_sub(12)..index)
                .rev()
                .find(|&j| self.tenant_of(&mut StdRng::seed_from_u64(mix(self.seed, j))) == tenant)
        } else {
            None
        };

        // The outcome follows from the failures, in the order they happen.
        let outcome = match killed_at_call {
            Some(k) if llm_calls[..=k].iter().all(LlmCall::succeeds) => Outcome::Killed,
            _ if !llm_calls.iter().all(LlmCall::succeeds) => Outcome::Failed,
            _ if gives_up => Outcome::Failed,
            _ if push_rejections >= MAX_PUSH_ATTEMPTS => Outcome::Failed,
            _ => Outcome::Completed,
        };
        TicketPlan {
            index,
            ticket_id: format!("{prefix}-{}", 1_000 + index),
            tenant: tenant.to_owned(),
            ticket_type: ticket_type.to_owned(),
            complexity: complexity.to_owned(),
            agent_type: agent_type.to_owned(),
            repo_url: format!("https://git.example.com/{tenant}/{repo}.git"),
            spawn_failures,
            spawn_method: if restore { "restore" } else { "boot" }.to_owned(),
            spawn_ms,
            clone_ms,
            llm_calls,
            file_count,
            total_bytes,
            commit_sha,
            push_rejections,
            pr_number,
            slow,
            killed_at_call,
            gives_up,
            depends_on,
            outcome,
        }
    }
}

/// Time compression: real-world durations up to [`Clock::REAL_UP_TO`] run
/// as they are (a snapshot restore, an API call); the part beyond is divided
/// by the speed (an LLM call of 12 s runs in 0.5 s at 60×, minus the first
/// 300 ms which run as they are).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    speed: f64,
}

impl Clock {
    /// Durations up to this run in real time.
    pub(crate) const REAL_UP_TO: f64 = 300.0;

    /// A clock running `speed` times faster than the world beyond 300 ms.
    pub(crate) fn new(speed: f64) -> Clock {
        Clock {
            speed: speed.max(1.0),
        }
    }

    /// How long a real-world `ms` lasts in the demo.
    pub(crate) fn scaled(&self, ms: f64) -> Duration {
        let ms = ms.max(0.0);
        let demo_ms = if ms <= Self::REAL_UP_TO {
            ms
        } else {
            Self::REAL_UP_TO + (ms - Self::REAL_UP_TO) / self.speed
        };
        Duration::from_secs_f64(demo_ms / 1_000.0)
    }

    /// The demo's duration of a whole ticket's work, for pacing arrivals.
    pub(crate) fn ticket_time(&self, plan: &TicketPlan) -> Duration {
        let mut total = self.scaled(plan.spawn_ms) + self.scaled(plan.clone_ms);
        for call in &plan.llm_calls {
            total += self.scaled(call.latency_ms);
            for (n, _) in call.errors.iter().enumerate() {
                total += self.scaled(500.0) + self.scaled(backoff_ms(n));
            }
        }
        total + self.scaled(400.0) * 4
    }
}

/// Real-world wait before retry `n` (0-based) of an LLM call: 1 s, 2 s, 4 s.
pub(crate) fn backoff_ms(n: usize) -> f64 {
    1_000.0 * f64::from(1u32 << n.min(6))
}

/// Cost of a call's successful attempt (failed attempts are not billed).
pub(crate) fn call_cost(prices: &PriceTable, call: &LlmCall) -> f64 {
    prices.cost(&call.model, &call.usage()).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans(seed: u64, n: u64) -> Vec<TicketPlan> {
        let s = Scenario::new(seed, 3);
        (0..n).map(|i| s.ticket(i)).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_tickets_and_outcomes() {
        assert_eq!(plans(7, 300), plans(7, 300));
        assert_ne!(plans(7, 50), plans(8, 50));
    }

    #[test]
    fn a_few_hundred_tickets_hold_every_kind_of_failure_at_a_modest_rate() {
        let all = plans(42, 1_000);
        let count = |f: &dyn Fn(&TicketPlan) -> bool| all.iter().filter(|p| f(p)).count();
        let killed = count(&|p| p.outcome == Outcome::Killed);
        let failed = count(&|p| p.outcome == Outcome::Failed);
        let spawn = count(&|p| p.spawn_failures > 0);
        let rejected = count(&|p| p.push_rejections > 0);
        let overloaded = count(&|p| {
            p.llm_calls
                .iter()
                .any(|c| c.errors.contains(&LlmError::Overloaded))
        });
        let limited = count(&|p| {
            p.llm_calls
                .iter()
                .any(|c| c.errors.contains(&LlmError::RateLimited))
        });
        let boots = count(&|p| p.spawn_method == "boot");
        let slow = count(&|p| p.slow);
        for (what, n, low, high) in [
            ("killed", killed, 5, 40),
            ("failed", failed, 25, 80),
            ("spawn failures", spawn, 8, 45),
            ("push rejections", rejected, 25, 80),
            ("overloaded", overloaded, 100, 400),
            ("rate limited", limited, 60, 300),
            ("cold boots", boots, 80, 170),
            ("slow", slow, 15, 50),
        ] {
            assert!((low..=high).contains(&n), "{what}: {n} of 1000");
        }
        let dependent = count(&|p| p.depends_on.is_some());
        assert!((80..=170).contains(&dependent), "dependent: {dependent}");
        for p in all.iter().filter(|p| p.depends_on.is_some()) {
            let d = p.depends_on.unwrap_or(u64::MAX);
            assert!(d < p.index && p.index - d <= 12);
            assert_eq!(all[d as usize].tenant, p.tenant);
        }
        // Every tenant gets work, the biggest the most.
        let per = |t: &str| count(&|p| p.tenant == t);
        assert!(per("acme") > per("globex") && per("globex") > per("initech"));
        assert!(per("initech") > 0);
    }

    #[test]
    fn durations_and_tokens_are_in_realistic_ranges() {
        for p in plans(3, 200) {
            match p.spawn_method.as_str() {
                "restore" => assert!((2.0..10.0).contains(&p.spawn_ms)),
                _ => assert!((100.0..300.0).contains(&p.spawn_ms)),
            }
            for c in &p.llm_calls {
                assert!(c.latency_ms > 400.0 && c.latency_ms < 240_000.0, "{c:?}");
                assert!(c.output_tokens >= 40 && c.input_tokens > 0);
            }
            assert_eq!(p.commit_sha.len(), 40);
        }
    }

    #[test]
    fn the_clock_keeps_short_things_real_and_compresses_long_ones() {
        let c = Clock::new(60.0);
        assert_eq!(c.scaled(5.0), Duration::from_millis(5));
        assert_eq!(c.scaled(300.0), Duration::from_millis(300));
        assert_eq!(c.scaled(6_300.0), Duration::from_millis(400));
    }

    #[test]
    fn agents_are_spread_by_tenant_size_with_at_least_one_each() {
        let s = Scenario::new(1, 3);
        assert_eq!(s.agents_per_tenant(50).iter().sum::<usize>(), 50);
        assert_eq!(s.agents_per_tenant(3), vec![1, 1, 1]);
        let big = s.agents_per_tenant(50);
        assert!(big[0] > big[1] && big[1] > big[2], "{big:?}");
    }
}
