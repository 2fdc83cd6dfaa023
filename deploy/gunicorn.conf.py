"""gunicorn settings for the assistant's web process: `gunicorn -c deploy/gunicorn.conf.py 'assistant:create_app()'`.

assistant-web.service runs it. The application reads its own settings (ASSISTANT_*,
TWILIO_*) from the environment; this file reads only the web server's:

  WEB_BIND             where to listen (default 127.0.0.1:8000: the reverse proxy's side only)
  WEB_CONCURRENCY      worker processes (default 2; about 2 per core is plenty, each takes
                       up to 10 database connections)
  FORWARDED_ALLOW_IPS  the proxy addresses gunicorn trusts for X-Forwarded-Proto (default
                       127.0.0.1,::1)
  ASSISTANT_LOG_LEVEL  gunicorn's error log level too (default INFO)
"""

import os

from assistant.logs import gunicorn_logconfig

bind = os.environ.get("WEB_BIND") or "127.0.0.1:8000"
workers = int(os.environ.get("WEB_CONCURRENCY") or "2")
# Sync workers: one request at a time each, a database transaction each; replies are
# sent from a background thread after the commit, not while Twilio waits.
worker_class = "sync"

# Twilio gives up on a webhook after 15 s. A worker stuck for 10 s is killed and
# replaced, so Twilio sees an error (and retries or uses the fallback URL) before it
# times out, and a hung database call never holds a worker for long.
timeout = 10
graceful_timeout = 10
# A fresh worker now and then: nothing grows without bound in a long-running process.
max_requests = 2000
max_requests_jitter = 200
# Each worker builds its own database pool after the fork: never share one across processes.
preload_app = False
# The heartbeat files live in memory, not on a disk that can stall.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# Only the reverse proxy may say a request came over https. The application's own
# ProxyFix (ASSISTANT_PROXY_HOPS) sets the client address, scheme and host it sees;
# Twilio signatures are checked against ASSISTANT_PUBLIC_URL either way.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1,::1"

# Logs: JSON lines on stderr (journald), phone numbers redacted. An access line has the
# method, the path without its query string, status, size and time: never a body,
# header or query string.
accesslog = "-"
errorlog = "-"
access_log_format = "%(m)s %(U)s %(s)s %(B)s bytes %(M)s ms"
loglevel = (os.environ.get("ASSISTANT_LOG_LEVEL") or "INFO").lower()
logconfig_dict = gunicorn_logconfig(loglevel)
proc_name = "assistant-web"
# No control socket in the service user's home (read-only under systemd): `systemctl
# reload assistant-web` (SIGHUP) and `systemctl restart` manage the workers.
control_socket_disable = True


def post_worker_init(worker: object) -> None:
    """Each worker, once it has built the app: its lifelong objects out of the collector's way."""
    from assistant.runtime import settle_process

    settle_process()
