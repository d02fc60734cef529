// PM2 ecosystem entry for swarm-platform (the seed's Express API on :8080)
// instrumented with swarmscope's Node.js tracer (clients/node/tracer.js,
// copied to /opt/swarm-platform/lib/tracer.js).
//
//   pm2 start deploy/pm2/ecosystem.config.js     (or copy it next to server.js)
//   pm2 save                                      keep it across reboots (with `pm2 startup`)
//
// Every SWARMSCOPE_* variable below is read by tracer.js when an AgentTracer
// is constructed; options passed to the constructor win over them.
//
// Logs: PM2 appends the app's stdout/stderr to ~/.pm2/logs/swarm-platform-*.log
// and does not rotate them by itself; the seed's choice is PM2-native
// rotation: `pm2 install pm2-logrotate`. (The collector itself logs to the
// journal; see deploy/README.md.)

'use strict';

const fs = require('fs');

// The API key is a secret: keep it out of this file (and out of git). It is
// read from SWARMSCOPE_API_KEY in the environment of `pm2 start`, else from
// a 0600 file holding just the key, readable by the user PM2 runs as, e.g.
//   (umask 077; swarmscope keys add --config /etc/swarmscope/swarmscope.toml \
//     --role admin --name swarm-platform > /etc/swarm-platform/swarmscope-key)
// (then restore the config's owner and mode and restart the collector, as
// deploy/README.md shows).
// A platform that writes spans for several tenants needs an admin key (a
// tenant key may only ingest for its own tenant); a single-tenant service
// can use `--tenant T --role ingest`. Left unset, the tracer sends no
// Authorization header (fine only for a collector without keys).
function readKey(file) {
  try {
    return fs.readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

module.exports = {
  apps: [
    {
      name: 'swarm-platform',
      cwd: '/opt/swarm-platform',
      script: 'server.js',
      // One process: the tracer's spool file (SWARMSCOPE_SPOOL below) must
      // have a single writer. For cluster mode, leave SWARMSCOPE_SPOOL unset
      // (each process then spools to $TMPDIR/swarmscope-spool-<pid>.jsonl)
      // or pass spoolPath per worker in code.
      exec_mode: 'fork',
      instances: 1,

      // PM2 stops and restarts an app with SIGINT, then SIGKILL after
      // kill_timeout ms (default 1600). On SIGINT (and SIGTERM) the tracer
      // flushes every tracer with pending data -- one flush takes at most
      // timeoutMs (5000 ms by default), retries included, and whatever is
      // still unsent is appended to the spool -- then exits with 130 (143).
      // 10 s covers that deadline twice over; at 1.6 s the flush would be
      // SIGKILLed half way and its spans lost.
      kill_timeout: 10000,

      autorestart: true,
      restart_delay: 1000,
      // Prefix each line of PM2's log files with a timestamp.
      time: true,

      env: {
        NODE_ENV: 'production',
        PORT: '8080',
        // The collector. swarm-platform runs on the collector's host, so it
        // goes straight to loopback (deploy/systemd/swarmscope.toml), not
        // through Caddy; from elsewhere: https://api.example.com.
        SWARMSCOPE_URL: 'http://127.0.0.1:4318',
        SWARMSCOPE_API_KEY:
          process.env.SWARMSCOPE_API_KEY || readKey('/etc/swarm-platform/swarmscope-key'),
        // Added to every span as `service`.
        SWARMSCOPE_SERVICE: 'swarm-platform',
        // Where a flush puts what the collector did not accept in time (JSON
        // lines). Outside /tmp so it survives a reboot; the directory must
        // exist and be writable by the app's user. Ship it at startup,
        // before the first tracer is created, with
        // `await require('./lib/tracer').pushSpool()` (reads this variable),
        // or with `swarmscope spool push /var/lib/swarm-platform/` while the
        // app is stopped.
        SWARMSCOPE_SPOOL: '/var/lib/swarm-platform/swarmscope-spool.jsonl',
        // SWARMSCOPE_VM_ID is for agents inside a VM (added to spans as
        // vm_id); the platform is not in one, so it stays unset here.
      },
    },
  ],
};
