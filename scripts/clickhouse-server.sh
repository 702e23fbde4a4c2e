#!/usr/bin/env bash
# A throwaway ClickHouse server on loopback for tests, benchmarks and the demo.
#
#   scripts/clickhouse-server.sh start [DIR]   install Debian's clickhouse-server if missing, start it in DIR
#                                              (default: a new temp dir), wait for /ping, print shell exports
#   scripts/clickhouse-server.sh stop DIR      stop the server started in DIR (by its pid) and remove DIR
#   scripts/clickhouse-server.sh restart DIR   start the server of DIR again (after it died), on the same ports and
#                                              data; prints `export CLICKHOUSE_PID=...`
#
# `start` prints `export CLICKHOUSE_URL=... CLICKHOUSE_TEST_DIR=...` lines, so `eval "$(... start)"` works.
# CLICKHOUSE_MAX_MEMORY_USAGE (bytes per query, default 4000000000) and CLICKHOUSE_LOG_QUERIES (0 or 1, default 0)
# set the `default` user's profile; the benchmark lowers the first and turns on the second (system.query_log).
#
# The server also serves HTTPS with a certificate for 127.0.0.1 and localhost signed by a private CA, both made here
# with openssl: `start` exports CLICKHOUSE_HTTPS_URL and CLICKHOUSE_TEST_CA (the CA's PEM file).
set -euo pipefail

log() { echo "clickhouse-server.sh: $*" >&2; }

find_server() {
  command -v clickhouse-server 2>/dev/null || { [ -x /usr/sbin/clickhouse-server ] && echo /usr/sbin/clickhouse-server; } || true
}

install_server() {
  if [ -n "$(find_server)" ] && command -v curl >/dev/null && command -v openssl >/dev/null; then return; fi
  if [ "$(id -u)" != 0 ]; then
    log "clickhouse-server, curl or openssl is not installed; run 'sudo apt-get install -y clickhouse-server curl openssl' (Debian) and retry"
    exit 1
  fi
  log "installing Debian's clickhouse-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends clickhouse-server curl openssl >&2
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

start() {
  install_server
  local server dir http_port tcp_port https_port
  server=$(find_server)
  dir=${1:-$(mktemp -d -t quantbot-clickhouse.XXXXXX)}
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/tls"
  dir=$(cd "$dir" && pwd)
  http_port=$(free_port)
  tcp_port=$(free_port)
  while [ "$tcp_port" = "$http_port" ]; do tcp_port=$(free_port); done
  https_port=$(free_port)
  while [ "$https_port" = "$http_port" ] || [ "$https_port" = "$tcp_port" ]; do https_port=$(free_port); done
  # A private CA and a server certificate it signs, as a self-managed deployment has them.
  (
    cd "$dir/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=quantbot-lake test CA" -keyout ca.key -out ca.pem
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout key.pem -out server.csr
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile ext.cnf -out cert.pem
  ) >/dev/null 2>&1
  cat > "$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$dir/server.log</log><errorlog>$dir/server.err.log</errorlog><console>0</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$http_port</http_port>
  <tcp_port>$tcp_port</tcp_port>
  <https_port>$https_port</https_port>
  <openSSL><server><certificateFile>$dir/tls/cert.pem</certificateFile><privateKeyFile>$dir/tls/key.pem</privateKeyFile><verificationMode>none</verificationMode><loadDefaultCAFile>false</loadDefaultCAFile></server></openSSL>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>64</max_concurrent_queries>
  <query_log><database>system</database><table>query_log</table><flush_interval_milliseconds>1000</flush_interval_milliseconds></query_log>
</yandex>
XML
  # `tester` has a password so that the tests can prove authentication errors and password redaction; `logged`
  # has its queries in system.query_log, so that a test can tell which queries an export sent;
  # `limited` hits max_result_rows after rows were already sent, which is how 18.16 produces an exception in the
  # middle of a 200 answer (the tests prove it fails the export instead of becoming rows); `reader` is read-only
  # (readonly=1: no settings may be sent), as production users often are.
  cat > "$dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles>
    <default><max_memory_usage>${CLICKHOUSE_MAX_MEMORY_USAGE:-4000000000}</max_memory_usage><log_queries>${CLICKHOUSE_LOG_QUERIES:-0}</log_queries></default>
    <readonly><readonly>1</readonly></readonly>
    <logged><max_memory_usage>4000000000</max_memory_usage><log_queries>1</log_queries></logged>
    <limited><max_memory_usage>4000000000</max_memory_usage><max_result_rows>50000</max_result_rows><max_block_size>1000</max_block_size><result_overflow_mode>throw</result_overflow_mode></limited>
  </profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default>
    <reader><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>readonly</profile><quota>default</quota></reader>
    <limited><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>limited</profile><quota>default</quota></limited>
    <logged><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>logged</profile><quota>default</quota></logged>
    <tester><password>s3cret-pa55</password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></tester>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
XML
  if ! launch "$server" "$dir" "$http_port"; then
    stop "$dir"
    exit 1
  fi
  if ! curl -fsS --cacert "$dir/tls/ca.pem" "https://127.0.0.1:$https_port/ping" >/dev/null 2>&1; then
    log "HTTP answers but HTTPS on port $https_port does not; see $dir/server.err.log"
    stop "$dir"
    exit 1
  fi
  echo "export CLICKHOUSE_URL=http://127.0.0.1:$http_port"
  echo "export CLICKHOUSE_HTTPS_URL=https://127.0.0.1:$https_port"
  echo "export CLICKHOUSE_TEST_CA=$dir/tls/ca.pem"
  echo "export CLICKHOUSE_TEST_DIR=$dir"
  echo "export CLICKHOUSE_PID=$(cat "$dir/pid")"
}

# Starts the server of DIR in the background and waits until it answers /ping on its HTTP port.
launch() {
  local server=$1 dir=$2 http_port=$3
  (cd "$dir" && exec setsid "$server" --config-file="$dir/config.xml" >>"$dir/stdout.log" 2>&1 </dev/null) &
  echo $! > "$dir/pid"
  local url="http://127.0.0.1:$http_port"
  for _ in $(seq 1 300); do
    if curl -fsS "$url/ping" >/dev/null 2>&1; then
      log "ready at $url (dir $dir, pid $(cat "$dir/pid"))"
      return 0
    fi
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      log "the server exited during start-up; its logs:"
      tail -n 30 "$dir/stdout.log" "$dir/server.err.log" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.1
  done
  log "no answer on $url/ping after 30 s; see $dir/server.err.log"
  return 1
}

restart() {
  local dir=${1:?usage: clickhouse-server.sh restart DIR}
  local server http_port
  server=$(find_server)
  http_port=$(sed -n 's:.*<http_port>\([0-9]*\)</http_port>.*:\1:p' "$dir/config.xml")
  launch "$server" "$dir" "$http_port" || exit 1
  echo "export CLICKHOUSE_PID=$(cat "$dir/pid")"
}

stop() {
  local dir=${1:?usage: clickhouse-server.sh stop DIR}
  if [ -f "$dir/pid" ]; then
    local pid
    pid=$(cat "$dir/pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # Only remove what looks like a directory this script made.
  if [ -f "$dir/config.xml" ] && [ -d "$dir/data" ]; then rm -rf "$dir"; fi
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  restart) shift; restart "$@" ;;
  *) echo "usage: $0 start [DIR] | stop DIR | restart DIR" >&2; exit 2 ;;
esac
