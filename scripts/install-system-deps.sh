#!/usr/bin/env bash
# System packages and services the test suite needs (Debian/Ubuntu, run as root):
#   postgresql (+ contrib for pg_stat_statements) and postgresql-<major>-hypopg, chromium for the
#   browser tests, pgbadger for the benchmark, redis and mariadb servers, memcached (the tests
#   start their own memcached and MariaDB processes from these binaries).
# Idempotent: installs only what is missing and starts services that are not answering.
set -euo pipefail

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

pg_major=""
if command -v pg_config >/dev/null 2>&1; then
  pg_major=$(pg_config --version | sed -E 's/[^0-9]*([0-9]+).*/\1/')
fi
if [ -z "$pg_major" ]; then
  pg_major=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1 || true)
fi

for pkg in chromium pgbadger; do have_pkg "$pkg" || need+=("$pkg"); done
if [ -n "$pg_major" ]; then
  have_pkg "postgresql-$pg_major-hypopg" || need+=("postgresql-$pg_major-hypopg")
else
  need+=(postgresql postgresql-contrib)
fi
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v memcached >/dev/null 2>&1 || need+=(memcached)
command -v mariadbd >/dev/null 2>&1 || command -v mysqld >/dev/null 2>&1 || need+=(mariadb-server)
command -v mariadb-install-db >/dev/null 2>&1 || command -v mysql_install_db >/dev/null 2>&1 || need+=(mariadb-server)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 5432; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -n | tail -n 1)" main start || true
fi
if ! port_open 6379; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
fi
if ! port_open 3306; then
  echo "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec "$(command -v mariadbd || command -v mysqld)" || true
fi
for _ in $(seq 1 30); do
  port_open 5432 && port_open 6379 && break
  sleep 1
done
