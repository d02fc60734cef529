//! Runnable examples of instrumenting with `swarmscope-sdk` (see docs/sdk.md):
//! `src/bin/agent.rs` is an agent working one ticket along the seed's span
//! tree; `src/bin/platform.rs` is a platform API server behind the request
//! middleware. Both read `SWARMSCOPE_URL` and `SWARMSCOPE_API_KEY`.
