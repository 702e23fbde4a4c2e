#!/usr/bin/env bash
# A throwaway S3 API server on loopback for tests and the demo: PyPI's moto[server] (S3 over HTTP, with
# conditional writes and multipart uploads), installed with pyarrow (the tests' independent S3 reader) into
# .tools/py on first use.
#
#   scripts/s3-server.sh start [DIR]   start moto in DIR (default: a new temp dir), create the bucket
#                                      `quantbot-test`, print shell exports
#   scripts/s3-server.sh stop DIR      stop the server started in DIR and remove DIR
#
# `start` prints the standard AWS variables (endpoint, allow-http, test credentials, region), the bucket
# (S3_TEST_BUCKET), S3_TEST_PYTHON (the venv's python, with pyarrow) and S3_TEST_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO=5.2.5
PYARROW=26.0.1
BUCKET=quantbot-test
log() { echo "s3-server.sh: $*" >&2; }

install_tools() {
  if .tools/py/bin/python -c "import moto, pyarrow; assert moto.__version__ == '$MOTO' and pyarrow.__version__ == '$PYARROW'" 2>/dev/null; then
    return
  fi
  log "installing moto[server] $MOTO and pyarrow $PYARROW into .tools/py"
  python3 -m venv .tools/py
  .tools/py/bin/pip install --quiet --disable-pip-version-check "moto[server]==$MOTO" "pyarrow==$PYARROW" >&2
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

start() {
  install_tools
  local dir port url
  dir=${1:-$(mktemp -d -t quantbot-s3.XXXXXX)}
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  port=$(free_port)
  (exec setsid .tools/py/bin/moto_server -H 127.0.0.1 -p "$port" >"$dir/server.log" 2>&1 </dev/null) &
  echo $! > "$dir/pid"
  url="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    # moto answers its own dashboard path once it serves requests.
    if curl -fsS "$url/moto-api/" >/dev/null 2>&1; then
      curl -fsS -X PUT "$url/$BUCKET" >/dev/null
      log "ready at $url (dir $dir, pid $(cat "$dir/pid"))"
      echo "export AWS_ENDPOINT_URL=$url"
      echo "export AWS_ALLOW_HTTP=true"
      echo "export AWS_ACCESS_KEY_ID=quantbot-test-key"
      echo "export AWS_SECRET_ACCESS_KEY=quantbot-test-secret"
      echo "export AWS_REGION=us-east-1"
      echo "export S3_TEST_BUCKET=$BUCKET"
      echo "export S3_TEST_PYTHON=$PWD/.tools/py/bin/python"
      echo "export S3_TEST_DIR=$dir"
      return
    fi
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      log "moto exited during start-up; its log:"
      cat "$dir/server.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  log "moto did not answer within 10 s; its log:"
  cat "$dir/server.log" >&2
  stop "$dir"
  exit 1
}

stop() {
  local dir=$1
  if [ -f "$dir/pid" ]; then
    kill -- "-$(cat "$dir/pid")" 2>/dev/null || kill "$(cat "$dir/pid")" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 start [DIR] | stop DIR" >&2; exit 2 ;;
esac
