#!/bin/sh
# From a fresh Debian machine to a first feed, run as root from a checkout of feedsvc:
#   sudo apt-get install -y python3-venv && sudo sh deploy/install.sh
# Safe to run again: it creates only what is missing and gives feeds/ and state/ back to the
# service user (which also repairs a state left root-owned by a `sudo feedsvc refresh`).
set -eu
SRV=${SRV:-/srv/feedsvc}               # config.toml, .venv/, feeds/ (output_dir), state/
FEEDSVC_USER=${FEEDSVC_USER:-feedsvc}  # the service user: owns feeds/ and state/, nothing else
SRC=$(cd "$(dirname "$0")/.." && pwd)  # this checkout

# 1. A system user that cannot log in, with a group of its own.
id -u "$FEEDSVC_USER" >/dev/null 2>&1 ||
    useradd --system --user-group --home-dir "$SRV" --no-create-home --shell /usr/sbin/nologin "$FEEDSVC_USER"

# 2. Root owns the program and the config, so the service cannot rewrite them; the service user
#    owns what it writes: feeds/ (read by nginx) and state/ (the database, its journal, its lock).
install -d -o root -g root -m 0755 "$SRV"
install -d -o "$FEEDSVC_USER" -g "$FEEDSVC_USER" -m 0755 "$SRV/feeds"
install -d -o "$FEEDSVC_USER" -g "$FEEDSVC_USER" -m 0750 "$SRV/state"
chown -R "$FEEDSVC_USER:$FEEDSVC_USER" "$SRV/feeds" "$SRV/state"

# 3. The shipped example config (its sources are local pages in examples/): edit it afterwards.
if [ ! -e "$SRV/config.toml" ]; then
    cp "$SRC/config.toml" "$SRV/config.toml"
    cp -R "$SRC/examples" "$SRV/examples"
fi

# 4. The program in its own venv (to upgrade later: $SRV/.venv/bin/pip install -U <checkout>).
if [ ! -x "$SRV/.venv/bin/feedsvc" ]; then
    python3 -m venv "$SRV/.venv"
    "$SRV/.venv/bin/pip" install --quiet "$SRC"
fi

# 5. A first refresh as the service user, never as root: files root creates in state/ would
#    be root's, and the service could then not open its lock or database.
cd "$SRV"
runuser -u "$FEEDSVC_USER" -- "$SRV/.venv/bin/feedsvc" --config "$SRV/config.toml" refresh -v
